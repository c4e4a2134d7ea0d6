/* daecl opencl backend — what the files of the plugin share: the opened
 * device (one context, one in-order queue), its kernels and programs, and the
 * cross-file internals (daecl__ocl_*). Nothing here is seen by the core, which
 * knows the backend only through daecl_backend_ops.
 * Test hook: DAECL_FAULT=alloc:N,enqueue:N,build:N (any of them) makes the
 * Nth buffer creation, enqueue (kernels, copies, reads, writes, fills, CLBlast
 * GEMMs) or program build of an opened device fail (ocl_fault.c). */
#ifndef DAECL_OCL_H
#define DAECL_OCL_H

#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "daecl/backend.h"
#include "daecl/plugin.h"

/* The hint every "cannot happen" refusal ends with. */
#define DAECL__OCL_BUG "this is a bug in daecl, please report it"

/* A device buffer: the cl_mem and the size the core asked for (the cl_mem
 * itself may be a little larger: OpenCL refuses empty buffers). */
struct daecl_buf {
    cl_mem mem;
    size_t n_bytes;
};

/* A kernel and the work-group size it may use on this device: the least of
 * CL_KERNEL_WORK_GROUP_SIZE, CL_DEVICE_MAX_WORK_GROUP_SIZE, the first
 * CL_DEVICE_MAX_WORK_ITEM_SIZES and 256 (a size that suits GPUs and CPUs),
 * rounded down to a power of two. */
typedef struct daecl__ocl_kernel {
    cl_kernel k;
    const char *name;
    size_t wg;
} daecl__ocl_kernel;

/* The built-in op kernels (kernels/ops.cl), in the order of ocl_ops.c's
 * name table. */
enum {
    DAECL__K_BIAS_ACT,
    DAECL__K_ACT_GRAD,
    DAECL__K_COL_SUM,
    DAECL__K_SUM,
    DAECL__K_GATHER,
    DAECL__K_OPTIM_UPDATE,
    DAECL__K_MAT_SCALE,
    DAECL__K_SOFTMAX_XENT,
    DAECL__K_ACT_GRAD_COL_SUM,
    DAECL__K_COUNT
};

/* What the `gemm` parameter asks for (schema order of its choices), and
 * what runs. */
typedef enum daecl__ocl_gemm_choice {
    DAECL__GEMM_AUTO = 0,
    DAECL__GEMM_ASK_CLBLAST = 1,
    DAECL__GEMM_ASK_DAECL = 2,
    DAECL__GEMM_ASK_DAECL_CPU = 3
} daecl__ocl_gemm_choice;
typedef enum daecl__ocl_gemm_mode {
    DAECL__GEMM_CLBLAST,
    DAECL__GEMM_DAECL,    /* the tiled kernel (kernels/gemm.cl) at every shape */
    DAECL__GEMM_DAECL_CPU /* the CPU kernels (kernels/gemm_cpu.cl), one variant */
} daecl__ocl_gemm_mode;
/* How one GEMM runs in CLBlast mode: CLBlast on the row-major call, CLBlast
 * on the same product as C^T = op(B)^T op(A)^T in column-major (no
 * transposition of C inside CLBlast), daecl's tiled kernel, or one of
 * daecl's CPU kernel variants (ocl_tuning.c picks). */
typedef enum daecl__ocl_gemm_by {
    DAECL__GEMM_BY_CLBLAST_ROW,
    DAECL__GEMM_BY_CLBLAST_COL,
    DAECL__GEMM_BY_DAECL,
    DAECL__GEMM_BY_DAECL_CPU
} daecl__ocl_gemm_by;
/* A variant of daecl's CPU GEMM kernels (kernels/gemm_cpu.cl): MR x NV
 * accumulators of VW lanes per work-item, k unrolled KU times. */
typedef struct daecl__ocl_cpuvar {
    int mr, nv, vw, ku;
} daecl__ocl_cpuvar;
/* A built variant: its program and kernels (nn, tn, nt). */
enum { DAECL__OCL_MAX_CPU_GEMM = 16 };
typedef struct daecl__ocl_cpugemm {
    daecl__ocl_cpuvar var;
    cl_program program;
    daecl__ocl_kernel kern[3];
} daecl__ocl_cpugemm;
/* A device's GEMM tuning from `daecl tune` (ocl_tune.h). */
typedef struct daecl__ocl_tuning daecl__ocl_tuning;

/* What the `type` parameter asks for (schema order of its choices). */
typedef enum daecl__ocl_type {
    DAECL__TYPE_ANY = 0,
    DAECL__TYPE_GPU = 1,
    DAECL__TYPE_CPU = 2,
    DAECL__TYPE_ACCELERATOR = 3
} daecl__ocl_type;

/* The device choice: the schema's parameters after DAECL_DEVICE. */
typedef struct daecl__ocl_choice {
    char platform[128];  /* "" = any */
    int type;            /* daecl__ocl_type */
    long index;          /* -1 = the best one */
    char binaries[1024]; /* "" = compile (or use the cache) */
    int gemm;            /* daecl__ocl_gemm_choice */
    char gemm_cpu[64];   /* the variant `gemm: daecl_cpu` runs; "" = the device's default */
} daecl__ocl_choice;

/* One device of the listing, with its handles. */
typedef struct daecl__ocl_device {
    cl_platform_id platform;
    cl_device_id device;
    daecl_device_info info;
    int oclgrind; /* on the Oclgrind simulator's platform */
} daecl__ocl_device;

/* Programs built so far in this context, by where they came from. */
typedef struct daecl__ocl_counts {
    unsigned compiled, from_cache, from_binaries;
} daecl__ocl_counts;

/* The classes of calls DAECL_FAULT can make fail, and the code each fails
 * with: CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES,
 * CL_BUILD_PROGRAM_FAILURE. */
typedef enum daecl__ocl_fault_class {
    DAECL__FAULT_ALLOC,   /* clCreateBuffer */
    DAECL__FAULT_ENQUEUE, /* clEnqueue* and CLBlast's GEMMs */
    DAECL__FAULT_BUILD,   /* clBuildProgram (from source or binary) */
    DAECL__FAULT_COUNT
} daecl__ocl_fault_class;

/* Calls counted since open, and the one to fail (1-based; 0 none). */
typedef struct daecl__ocl_faults {
    int armed; /* DAECL_FAULT was set: only then are calls counted */
    unsigned long at[DAECL__FAULT_COUNT];
    unsigned long seen[DAECL__FAULT_COUNT];
} daecl__ocl_faults;

/* The opened device: the `ctx` of every backend op. */
typedef struct daecl__ocl {
    const daecl_host *host;
    cl_platform_id platform;
    cl_device_id device;
    cl_context context;
    cl_command_queue queue; /* in order: an op runs after the ones before it */
    int updated; /* an optimiser update was enqueued: a training step ran */
    int saving;  /* daecl__ocl_program_save_start was called for this device */
    daecl_device_info info;
    /* What the program key hashes besides source and options. */
    char device_version[128], platform_version[128];
    size_t max_wg;      /* CL_DEVICE_MAX_WORK_GROUP_SIZE */
    size_t max_item[3]; /* CL_DEVICE_MAX_WORK_ITEM_SIZES */
    cl_ulong local_mem; /* CL_DEVICE_LOCAL_MEM_SIZE */
    daecl__ocl_choice choice;
    daecl__ocl_gemm_mode gemm_mode;
    cl_program ops_program;
    daecl__ocl_kernel kern[DAECL__K_COUNT];
    cl_program gemm_program;        /* the daecl GEMM (kernels/gemm.cl), when used */
    daecl__ocl_kernel gemm_kern[2]; /* 64 x 64 and 32 x 32 tiles of C */
    daecl__ocl_cpugemm cpu_gemm[DAECL__OCL_MAX_CPU_GEMM]; /* CPU variants built so far */
    int n_cpu_gemm;
    int cpu_gemm_fixed; /* daecl_cpu mode: the variant every GEMM runs (in cpu_gemm); with
                         * cpu_auto, the one untuned shapes run */
    int cpu_auto; /* `gemm: auto` on a CPU device: shapes no tuning entry lists run
                   * cpu_gemm_fixed instead of CLBlast (ocl_tuning.c routes) */
    cl_mem clblast_tmp;             /* CLBlast's GEMM scratch, grown to the largest need */
    size_t clblast_tmp_bytes;
    daecl__ocl_counts counts;
    daecl__ocl_tuning *tuning; /* tuned GEMM routes; NULL: none (daecl__ocl_tune_route) */
    daecl__ocl_faults faults; /* DAECL_FAULT (ocl_fault.c) */
} daecl__ocl;

/* ---- ocl_check.c: the one checker ------------------------------------------- */

/* "CL_OUT_OF_RESOURCES", "kInvalidMatrixA", or "error -1234" (in a static
 * buffer for unknown codes: not thread-safe, fine for error paths). */
const char *daecl__ocl_code_name(int code);
/* What the user can do about the code, one clause. */
const char *daecl__ocl_code_hint(int code);
/* 0 when code is CL_SUCCESS (CLBlastSuccess); else fills err with "CALL(WHAT)
 * failed on DEVICE: NAME; HINT" and returns DAECL_ENOMEM for allocation
 * failures, DAECL_EDEVICE otherwise. what and device may be NULL. */
int daecl__ocl_check(const daecl_host *host, const char *device, int code, const char *call,
                     const char *what, daecl_err *err);
/* The checker for an opened device. */
#define DAECL__OCL_CHECK(o, code, call, what, err)                                                 \
    daecl__ocl_check((o)->host, (o)->info.name, (code), (call), (what), (err))
/* Fills err with one formatted sentence (through the host table, never
 * allocating) and returns status. */
int daecl__ocl_fail(const daecl_host *host, daecl_err *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* One log line of `level` through the host table (nothing without one). */
void daecl__ocl_say(const daecl__ocl *o, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- ocl_fault.c: injected faults, a test hook -------------------------------- */

/* Reads DAECL_FAULT into o->faults (at open, before any other call); a
 * malformed value is DAECL_EUSAGE. */
int daecl__ocl_fault_init(daecl__ocl *o, daecl_err *err);
/* Counts one call of class c; nonzero when DAECL_FAULT picks it to fail. */
int daecl__ocl_fault_hit(daecl__ocl *o, daecl__ocl_fault_class c);
/* The code an injected fault of class c fails with. */
int daecl__ocl_fault_code(daecl__ocl_fault_class c);
/* Logs the calls counted (at close, only when DAECL_FAULT is set). */
void daecl__ocl_fault_report(const daecl__ocl *o);
/* The code of `call`, or, without making the call, the injected code when
 * DAECL_FAULT picks it. For calls that return a status code. */
#define DAECL__OCL_FAULTY(o, c, call)                                                              \
    (daecl__ocl_fault_hit((o), (c)) ? daecl__ocl_fault_code(c) : (call))
/* The same for clCreate* calls that return an object and their code through
 * `errcode`: an injected fault gives NULL and sets *errcode. */
#define DAECL__OCL_FAULTY_CREATE(o, c, errcode, call)                                              \
    (daecl__ocl_fault_hit((o), (c)) ? (*(errcode) = daecl__ocl_fault_code(c), NULL) : (call))

/* ---- ocl_device.c: listing and choice ---------------------------------------- */

/* Every device of every platform, up to max, into out (max entries), each
 * with its default mark and note; *n gets the count. Fails with the "no
 * platform" sentence when there is none. */
int daecl__ocl_list(const daecl_host *host, daecl__ocl_device *out, size_t max, size_t *n,
                    daecl_err *err);
/* Reads the schema values (NULL: defaults) and then DAECL_DEVICE into *c. */
int daecl__ocl_choice_parse(const daecl_host *host, const daecl_param_value *values,
                            daecl__ocl_choice *c, daecl_err *err);
/* A string property of a platform (dev NULL) or device, trimmed and cut to
 * n bytes ("" when unknown). */
void daecl__ocl_info_str(cl_platform_id plat, cl_device_id dev, cl_uint param, char *out, size_t n);
/* Picks the device for *c; *out gets it, its note saying why. */
int daecl__ocl_choose(const daecl_host *host, const daecl__ocl_choice *c, daecl__ocl_device *out,
                      daecl_err *err);

/* ---- ocl_program.c: building, the cache, precompiled binaries ---------------- */

/* Builds program `name` from the concatenation of the n parts: from
 * choice.binaries when set (never compiling), else from the on-disk cache,
 * else from source; a compiled program is then queued for the cache,
 * which a thread writes once daecl__ocl_program_save_start was called.
 * Counts and logs where it came from. */
int daecl__ocl_program_get(daecl__ocl *o, const char *name, const char *const *parts, size_t n,
                           cl_program *out, daecl_err *err);
/* Writes the binary of a built program (the same `parts`) into dir under its
 * key, as `binaries: dir` will look it up. */
int daecl__ocl_program_save(daecl__ocl *o, const char *name, const char *const *parts, size_t n,
                            cl_program prog, const char *dir, daecl_err *err);
/* Lets the writer save the programs queued so far and those compiled
 * from now on (process-wide): called when the device has run kernels (the
 * first read or finish), so that saving does not hold up their first
 * launch. */
void daecl__ocl_program_save_start(void);
/* Starts the writer and waits until the programs compiled so far, in this
 * process, are in the cache (or failed to be written, which is only
 * logged). The backend's close calls it, so o stays valid for the
 * writer's log lines. */
void daecl__ocl_program_wait_saved(void);
/* Logs the counters at debug level (the wording the lead's tests match). */
void daecl__ocl_log_counts(const daecl__ocl *o);
/* Creates kernel `name` of prog into *k with its work-group size. */
int daecl__ocl_kernel_create(daecl__ocl *o, cl_program prog, const char *name, daecl__ocl_kernel *k,
                             daecl_err *err);
void daecl__ocl_kernel_release(daecl__ocl_kernel *k);

/* ---- ocl_ops.c: the op kernels and their launches ----------------------------- */

/* One kernel argument: its size and where its value is. */
typedef struct daecl__ocl_arg {
    size_t size;
    const void *value;
} daecl__ocl_arg;
#define DAECL__ARG(x) ((daecl__ocl_arg){sizeof(x), &(x)})
#define DAECL__NARGS(args) (sizeof(args) / sizeof((args)[0]))

/* The source parts of the ops program (its key hashes them), for precompile. */
size_t daecl__ocl_ops_parts(const char **parts, size_t max);
/* Builds the ops program and creates its kernels (at open). */
int daecl__ocl_ops_init(daecl__ocl *o, daecl_err *err);
void daecl__ocl_ops_release(daecl__ocl *o);
/* Sets the arguments and enqueues k over global[0..dims) (each rounded up
 * to local, which the kernel must guard against); local NULL picks one from
 * k->wg. */
int daecl__ocl_launch(daecl__ocl *o, const daecl__ocl_kernel *k, const daecl__ocl_arg *args,
                      size_t n_args, unsigned dims, const size_t *global, const size_t *local,
                      daecl_err *err);
/* Checks that slice s holds n elements: the cl_mem and the element offset. */
int daecl__ocl_span(const daecl__ocl *o, daecl_slice s, size_t n, const char *op, const char *what,
                    daecl_err *err);
/* *out = a * b, or an error naming op when it overflows. */
int daecl__ocl_mul(const daecl__ocl *o, size_t a, size_t b, size_t *out, const char *op,
                   daecl_err *err);
/* C (m, n) with stride ldc = beta C, beta = 0 writing zeros (NaN included). */
int daecl__ocl_mat_scale(daecl__ocl *o, daecl_slice c, size_t m, size_t n, size_t ldc, float beta,
                         daecl_err *err);

/* ---- ocl_gemm.c ---------------------------------------------------------------- */

int daecl__ocl_gemm_init(daecl__ocl *o, daecl_err *err); /* the daecl GEMM program */
void daecl__ocl_gemm_release(daecl__ocl *o);
/* The parts of the daecl GEMM program, for precompile. */
size_t daecl__ocl_gemm_parts(const char **parts, size_t max);
int daecl__ocl_gemm(void *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                    daecl_slice a, size_t lda, daecl_slice b, size_t ldb, float beta, daecl_slice c,
                    size_t ldc, daecl_err *err);
/* The two ways gemm() runs a product, without routing: CLBlast on the
 * device's current parameters (col_major: as C^T = op(B)^T op(A)^T in
 * column-major), and daecl's kernel (after daecl__ocl_gemm_init). */
int daecl__ocl_clblast_gemm(daecl__ocl *o, int col_major, int trans_a, int trans_b, size_t m,
                            size_t n, size_t k, float alpha, daecl_slice a, size_t lda,
                            daecl_slice b, size_t ldb, float beta, daecl_slice c, size_t ldc,
                            daecl_err *err);
int daecl__ocl_kernel_gemm(daecl__ocl *o, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                           float alpha, daecl_slice a, size_t lda, daecl_slice b, size_t ldb,
                           float beta, daecl_slice c, size_t ldc, daecl_err *err);

/* ---- ocl_gemm_cpu.c: daecl's CPU GEMM kernels ---------------------------------------- */

/* MR 1-8, NV 1-4, MR NV <= 32, VW 4, 8 or 16, KU 1, 2 or 4. */
int daecl__ocl_cpuvar_valid(const daecl__ocl_cpuvar *v);
int daecl__ocl_cpuvar_equal(const daecl__ocl_cpuvar *a, const daecl__ocl_cpuvar *b);
/* "MR=4 NV=2 VW=16 KU=1" into out; parse reads the same (0, or -1 when it
 * is not a valid variant). */
void daecl__ocl_cpuvar_describe(const daecl__ocl_cpuvar *v, char *out, size_t n);
int daecl__ocl_cpuvar_parse(const char *text, daecl__ocl_cpuvar *v);
/* The variants `daecl tune` tries, in order (a static table). */
size_t daecl__ocl_cpuvar_tried(const daecl__ocl_cpuvar **out);
/* The variant `gemm: daecl_cpu` runs when backend.gemm_cpu is empty. */
void daecl__ocl_cpuvar_default(const daecl__ocl *o, daecl__ocl_cpuvar *v);
/* The source parts of variant v's program (defines: a buffer of n bytes
 * for its #define line), for building and precompile. */
size_t daecl__ocl_gemm_cpu_parts(const daecl__ocl_cpuvar *v, char *defines, size_t n,
                                 const char **parts, size_t max);
/* The index of variant v in o->cpu_gemm, building it when it is not yet. */
int daecl__ocl_gemm_cpu_get(daecl__ocl *o, const daecl__ocl_cpuvar *v, int *index,
                            daecl_err *err);
void daecl__ocl_gemm_cpu_release(daecl__ocl *o);
/* A GEMM on built variant `index`; both transposed runs the tiled kernel
 * (after daecl__ocl_gemm_init). */
int daecl__ocl_gemm_cpu_run(daecl__ocl *o, int index, int trans_a, int trans_b, size_t m, size_t n,
                            size_t k, float alpha, daecl_slice a, size_t lda, daecl_slice b,
                            size_t ldb, float beta, daecl_slice c, size_t ldc, daecl_err *err);

/* ---- ocl_tuning.c, ocl_tune.c: GEMM tuning ---------------------------------------- */

/* At open: reads the device's tuning file from the cache folder into
 * o->tuning. Never fails: a missing, stale or corrupt file leaves
 * CLBlast's defaults, with a debug note saying why. */
void daecl__ocl_tune_open(daecl__ocl *o);
void daecl__ocl_tune_release(daecl__ocl *o); /* frees o->tuning */
/* How gemm() runs this shape (*by): as its tuning entry says; a shape
 * without one on daecl's CPU kernel (cpu_auto), else as the tuning's
 * [default] (CLBlast's built-in parameters without a tuning). CLBlast is set
 * to the shape's tuned parameters when it runs there; *cpu gets the built
 * CPU variant's index when *by is DAECL__GEMM_BY_DAECL_CPU. */
int daecl__ocl_tune_route(daecl__ocl *o, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                          daecl__ocl_gemm_by *by, int *cpu, daecl_err *err);
/* The tuning file applied, or NULL. */
const char *daecl__ocl_tune_file(const daecl__ocl *o);
/* The backend op (backend.h): search, store, apply. */
int daecl__ocl_tune_gemm(void *ctx, daecl_gemm_shape *shapes, size_t n, double budget_s,
                         daecl_err *err);

/* ---- ocl_plugins.c --------------------------------------------------------------- */

int daecl__ocl_bind(void *ctx, const daecl_plugin *plugin, const float *params, size_t n_params,
                    void **bound, daecl_err *err);
void daecl__ocl_unbind(void *ctx, void *bound);
int daecl__ocl_corrupt(void *ctx, void *bound, daecl_slice x, daecl_slice xt, size_t n_rows,
                       size_t dim, const daecl_shape *shape, const daecl_noise_key *key,
                       daecl_err *err);
int daecl__ocl_lik_loss_grad(void *ctx, void *bound, daecl_slice x, daecl_slice a, size_t n_rows,
                             size_t dim, float scale, daecl_slice nll_rows, daecl_slice grad,
                             daecl_err *err);
int daecl__ocl_lik_loss_grad_sums(void *ctx, void *bound, daecl_slice x, daecl_slice a,
                                  size_t n_rows, size_t sum_rows, size_t dim, float scale,
                                  daecl_slice grad, daecl_slice grad_sums, daecl_slice nll_sums,
                                  daecl_err *err);
int daecl__ocl_lik_mean(void *ctx, void *bound, daecl_slice a, size_t n_rows, size_t dim,
                        daecl_slice mean, daecl_err *err);
int daecl__ocl_lik_sample(void *ctx, void *bound, daecl_slice a, size_t n_rows, size_t dim,
                          const daecl_noise_key *key, daecl_slice out, daecl_err *err);
int daecl__ocl_precompile(void *ctx, const daecl_plugin *const *plugins, size_t n, const char *dir,
                          daecl_err *err);

/* ---- the op entry points of ocl_ops.c ------------------------------------------ */

int daecl__ocl_bias_act(void *ctx, daecl_slice z, daecl_slice bias, size_t n_rows, size_t dim,
                        daecl_act act, daecl_err *err);
int daecl__ocl_act_grad(void *ctx, daecl_slice dh, daecl_slice h, size_t n, daecl_act act,
                        daecl_err *err);
int daecl__ocl_col_sum(void *ctx, daecl_slice src, size_t n_rows, size_t dim, float beta,
                       daecl_slice dst, daecl_err *err);
int daecl__ocl_act_grad_col_sum(void *ctx, daecl_slice dh, daecl_slice h, size_t n_rows, size_t dim,
                                daecl_act act, float beta, daecl_slice dst, daecl_err *err);
int daecl__ocl_sum(void *ctx, daecl_slice src, size_t n, daecl_slice dst, daecl_err *err);
int daecl__ocl_gather(void *ctx, daecl_slice data, size_t dim, daecl_slice idx, size_t n_rows,
                      daecl_slice out, daecl_err *err);
int daecl__ocl_optim_update(void *ctx, const daecl_optim_step *step, daecl_slice w, daecl_slice g,
                            daecl_slice s1, daecl_slice s2, size_t n, daecl_err *err);
int daecl__ocl_optim_update_split(void *ctx, const daecl_optim_step *step, size_t n_decay,
                                  daecl_slice w, daecl_slice g, daecl_slice s1, daecl_slice s2,
                                  size_t n, daecl_err *err);
int daecl__ocl_softmax_xent(void *ctx, daecl_slice logits, daecl_slice labels, size_t n_rows,
                            size_t n_classes, float scale, daecl_slice loss_rows, daecl_slice grad,
                            daecl_err *err);

#endif
