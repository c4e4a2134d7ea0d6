/* daecl - what a compute backend implements.
 *
 * The core talks to a device only through this table and never includes a
 * vendor header. The shapes follow OpenCL + CLBlast so that backend maps onto
 * it directly: buffers are opaque handles, offsets into them are counted in
 * 4-byte elements (float or uint32), GEMMs are row-major with leading
 * dimensions, and every compute op is enqueued on one in-order queue and may
 * return before it has run. Only read() and finish() wait. An op's err is
 * filled only by problems found when it is enqueued; a device fault may
 * surface at the next read() or finish(). A slice or byte range past its
 * buffer's end is refused with DAECL_EINVAL in a sentence naming the op.
 * `daecl plugin check` holds a backend to all of this (core/conformance.c). */
#ifndef DAECL_BACKEND_H
#define DAECL_BACKEND_H

#include "daecl/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A device buffer. Each backend defines struct daecl_buf privately. */
typedef struct daecl_buf daecl_buf;

/* A position in a buffer: `off` is in elements, not bytes. A slice whose
 * buf is NULL means "not wanted" where an op says it may be. */
typedef struct daecl_slice {
    daecl_buf *buf;
    size_t off;
} daecl_slice;

typedef enum daecl_act {
    DAECL_ACT_LINEAR = 0,
    DAECL_ACT_SIGMOID = 1,
    DAECL_ACT_TANH = 2,
    DAECL_ACT_RELU = 3
} daecl_act;

typedef enum daecl_optim_kind {
    DAECL_OPTIM_SGD = 0,  /* momentum 0 = plain SGD; s1 is the velocity */
    DAECL_OPTIM_ADAM = 1, /* weight decay added to the gradient (L2) */
    DAECL_OPTIM_ADAMW = 2 /* weight decay applied to the weight (decoupled) */
} daecl_optim_kind;

/* One update, PyTorch's conventions (torch.optim.SGD, Adam, AdamW):
 *   SGD:   g' = g + wd w;  v = mu v + g';  d = nesterov ? g' + mu v : v;  w -= lr d
 *   Adam:  g' = g + wd w;  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
 *          w -= lr (m / bc1) / (sqrt(v / bc2) + eps)
 *   AdamW: w -= lr wd w, then Adam with wd = 0.
 * bc1 = 1 - b1^t and bc2 = 1 - b2^t for the step t (1-based) being taken. */
typedef struct daecl_optim_step {
    uint32_t kind;
    uint32_t nesterov;
    float lr;
    float momentum;
    float weight_decay;
    float beta1, beta2, eps;
    float bias_corr1, bias_corr2;
} daecl_optim_step;

/* What `daecl devices` shows of one device. Strings are NUL-terminated.
 * May grow by appending: describe() and list_devices() take the size the
 * caller allocated per element and fill only that much. */
typedef struct daecl_device_info {
    char platform[128];
    char name[128];
    char vendor[128];
    char type[16];        /* "cpu", "gpu", "accelerator", "other" */
    char c_version[64];   /* OpenCL C version, or "" */
    char driver[64];
    uint32_t platform_index;
    uint32_t device_index;
    uint32_t compute_units;
    uint64_t global_mem_bytes;
    uint64_t max_alloc_bytes;
    uint8_t fp16, fp64, compiler;
    uint8_t is_default;   /* what an `any` choice would open */
    char note[256];       /* why it is the default, or why it was passed over */
} daecl_device_info;

/* One GEMM shape for tune_gemm (as gemm() takes it) and what tuning found
 * for it. The caller fills the shape, `runs` and `beta`; tune_gemm the rest.
 * May grow by appending: tune_gemm takes the size of one element. */
typedef struct daecl_gemm_shape {
    uint32_t trans_a, trans_b;
    uint64_t m, n, k;
    uint32_t runs;   /* times one training step runs it: weights the search */
    float beta;      /* the beta a step runs it with (nonzero: C is read, and timed so) */
    double before;   /* GFLOP/s with the implementation's own defaults; 0: not measured */
    double after;    /* GFLOP/s of what gemm() runs for this shape after tuning */
    char choice[64]; /* that, in words ("CLBlast, tuned set 1 (indirect), column-major") */
} daecl_gemm_shape;

/* The backend table, ABI 2.1. Four parts:
 *   - the required core, open .. finish: what training needs of any device;
 *     the registry refuses a backend that leaves one of these NULL;
 *   - optional slots with the core's fallback: fill (the core writes the
 *     values through write()) and lik_sample (the core reads the decoder's
 *     output, runs the plugin's host_sample and writes the result);
 *   - the optional group behind bind: running corruption and likelihood
 *     plugins on the device. When bind is NULL none of the group is needed
 *     and the core runs every plugin on the host; when it is set, unbind,
 *     corrupt, lik_loss_grad and lik_mean are required too;
 *   - optional fused ops (2.1, after lik_sample): NULL runs the ops they
 *     fuse, so a backend built for 2.0 still trains.
 * Tooling (device listing, precompiling, GEMM tuning and what comes later)
 * is not in the table: get_extension() hands it out by name, so the table
 * stays what a training step uses. Later minors append at the end
 * (asynchronous read and write for scale-out, more fused ops); a slot
 * beyond a plugin's `size` reads as NULL in the core. tests/test_abi.c
 * pins this. */
typedef struct daecl_backend_ops {
    uint32_t size;

    /* ==== required ==== */

    /* ---- lifecycle ---- */
    /* Opens a device chosen by the backend's parameters (schema order;
     * daecl_param_value is frozen: it never grows). */
    int (*open)(const daecl_host *host, const daecl_param_value *values, void **ctx,
                daecl_err *err);
    void (*close)(void *ctx); /* accepts NULL; frees what open made */
    /* Describes the opened device into out, of out_size bytes (the
     * caller's sizeof(daecl_device_info)): fills at most that many. */
    void (*describe)(void *ctx, daecl_device_info *out, size_t out_size);

    /* ---- memory ---- */
    /* A zero-filled buffer of n_bytes; `what` names it in an out-of-memory
     * sentence ("train set", "layer 1 activations"). */
    int (*alloc)(void *ctx, size_t n_bytes, const char *what, daecl_buf **out, daecl_err *err);
    void (*free)(void *ctx, daecl_buf *buf); /* accepts NULL */
    /* Blocking copies: src may be reused, dst read, when they return. */
    int (*write)(void *ctx, daecl_buf *dst, size_t off_bytes, const void *src, size_t n_bytes,
                 daecl_err *err);
    int (*read)(void *ctx, daecl_buf *src, size_t off_bytes, void *dst, size_t n_bytes,
                daecl_err *err);
    /* dst[0..n) = src[0..n); the ranges do not overlap. */
    int (*copy)(void *ctx, daecl_slice dst, daecl_slice src, size_t n, daecl_err *err);

    /* ---- dense algebra ---- */
    /* C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C, row-major;
     * op(X) = X^T when trans_x. A is (m, k) or (k, m) with leading dimension
     * lda, likewise B; beta = 0 ignores C's old contents, NaN included. */
    int (*gemm)(void *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                daecl_slice a, size_t lda, daecl_slice b, size_t ldb, float beta, daecl_slice c,
                size_t ldc, daecl_err *err);

    /* ---- elementwise and reductions ---- */
    /* z (n_rows, dim) = act(z + bias) in place; bias (dim), NULL for none. */
    int (*bias_act)(void *ctx, daecl_slice z, daecl_slice bias, size_t n_rows, size_t dim,
                    daecl_act act, daecl_err *err);
    /* dh[i] *= act'(.) for n elements, from the activation's output h. */
    int (*act_grad)(void *ctx, daecl_slice dh, daecl_slice h, size_t n, daecl_act act,
                    daecl_err *err);
    /* dst (dim) = beta dst + sum over rows of src (n_rows, dim). */
    int (*col_sum)(void *ctx, daecl_slice src, size_t n_rows, size_t dim, float beta,
                   daecl_slice dst, daecl_err *err);
    /* dst[0] = sum of src[0..n). */
    int (*sum)(void *ctx, daecl_slice src, size_t n, daecl_slice dst, daecl_err *err);
    /* out (n_rows, dim) row r = data row idx[r]; idx holds uint32 row numbers
     * below the data's row count (the core guarantees it). */
    int (*gather)(void *ctx, daecl_slice data, size_t dim, daecl_slice idx, size_t n_rows,
                  daecl_slice out, daecl_err *err);
    /* Softmax cross-entropy of logits (n_rows, n_classes) against labels
     * (n_rows): class indices stored as floats (0.0, 1.0, ...), the core
     * guarantees them in range. loss_rows[r] = logsumexp(z_r) - z_r[y_r]
     * (NULL slice: not wanted); grad (n_rows, n_classes) = scale *
     * (softmax(z_r) - onehot(y_r)) (NULL slice: not wanted). For the linear
     * probe of `daecl eval`. */
    int (*softmax_xent)(void *ctx, daecl_slice logits, daecl_slice labels, size_t n_rows,
                        size_t n_classes, float scale, daecl_slice loss_rows, daecl_slice grad,
                        daecl_err *err);

    /* ---- optimiser ---- */
    /* One optimiser step over n parameters w with gradients g and state
     * s1, s2 (unused state may be NULL slices). daecl_optim_step is frozen:
     * a new optimiser comes as a new op. */
    int (*optim_update)(void *ctx, const daecl_optim_step *step, daecl_slice w, daecl_slice g,
                        daecl_slice s1, daecl_slice s2, size_t n, daecl_err *err);

    /* ---- synchronisation ---- */
    /* Waits until everything enqueued has run; reports deferred faults. */
    int (*finish)(void *ctx, daecl_err *err);

    /* ==== optional, with the core's fallback ==== */

    /* dst[0..n) = value. NULL: the core writes the values with write(). */
    int (*fill)(void *ctx, daecl_slice dst, size_t n, float value, daecl_err *err);

    /* ==== optional: tooling, by name ==== */

    /* The extension table called `name` (DAECL_EXT_* below), or NULL when
     * this backend has none by that name. The table is static, starts with
     * its own size and only grows by appending; an incompatible change takes
     * a new name. NULL slot: no extension at all. */
    const void *(*get_extension)(const char *name);

    /* ==== optional group: plugins on the device ====
     * bind() prepares a corruption or likelihood plugin with its packed
     * parameters (compiles its cl_source, uploads the parameters). It returns
     * DAECL_ENOTSUP when this backend cannot run the plugin itself; the core
     * then runs the plugin's host ops around read() and write(). A NULL bind
     * means the same for every plugin, and the rest of the group may be NULL;
     * with bind set, unbind, corrupt, lik_loss_grad and lik_mean are
     * required. */
    int (*bind)(void *ctx, const daecl_plugin *plugin, const float *params, size_t n_params,
                void **bound, daecl_err *err);
    void (*unbind)(void *ctx, void *bound); /* accepts NULL */
    /* Corruption: xt (n_rows, dim) from x, examples of the given shape;
     * row r is the example at position key->pos0 + r (plugin.h). */
    int (*corrupt)(void *ctx, void *bound, daecl_slice x, daecl_slice xt, size_t n_rows,
                   size_t dim, const daecl_shape *shape, const daecl_noise_key *key,
                   daecl_err *err);
    /* Likelihood ops as in daecl_likelihood_ops, on device slices; nll_rows
     * (n_rows) and grad (n_rows, k*dim) may be NULL slices. */
    int (*lik_loss_grad)(void *ctx, void *bound, daecl_slice x, daecl_slice a, size_t n_rows,
                         size_t dim, float scale, daecl_slice nll_rows, daecl_slice grad,
                         daecl_err *err);
    int (*lik_mean)(void *ctx, void *bound, daecl_slice a, size_t n_rows, size_t dim,
                    daecl_slice mean, daecl_err *err);
    /* out (n_rows, dim) ~ p(x | a); row r at position key->pos0 + r.
     * Optional even with bind: NULL runs the plugin's host_sample. */
    int (*lik_sample)(void *ctx, void *bound, daecl_slice a, size_t n_rows, size_t dim,
                      const daecl_noise_key *key, daecl_slice out, daecl_err *err);

    /* ==== ABI 2.1: optional fused ops; NULL runs the ops they fuse ==== */

    /* dh (n_rows, dim) *= act'(.) from h, as act_grad does, then dst (dim) =
     * beta dst + the column sums of the new dh, as col_sum does: a hidden
     * layer's pre-activation gradient and its bias gradient in one pass
     * over dh. The same results as act_grad followed by col_sum. */
    int (*act_grad_col_sum)(void *ctx, daecl_slice dh, daecl_slice h, size_t n_rows, size_t dim,
                            daecl_act act, float beta, daecl_slice dst, daecl_err *err);

    /* A likelihood's loss and gradient for a training step with the sums
     * the step needs, in one pass over (x, a) (bind group: bound is a
     * likelihood bind() gave): grad (n_rows, k*dim) = scale * dnll/da, as
     * lik_loss_grad gives it; grad_sums (k*dim) = the column sums of grad,
     * the output layer's bias gradient; nll_sums (dim) = for each dimension
     * j, element j's nll summed over the first sum_rows rows (sum_rows <=
     * n_rows), so the sum of nll_sums is those rows' loss. */
    int (*lik_loss_grad_sums)(void *ctx, void *bound, daecl_slice x, daecl_slice a,
                              size_t n_rows, size_t sum_rows, size_t dim, float scale,
                              daecl_slice grad, daecl_slice grad_sums, daecl_slice nll_sums,
                              daecl_err *err);

    /* optim_update over n parameters where only the first n_decay (<= n)
     * take the step's weight decay and the rest none: a model's weights,
     * then its biases, which the core otherwise updates in two calls. */
    int (*optim_update_split)(void *ctx, const daecl_optim_step *step, size_t n_decay,
                              daecl_slice w, daecl_slice g, daecl_slice s1, daecl_slice s2,
                              size_t n, daecl_err *err);

    /* ABI 2.2 and later append here. */
} daecl_backend_ops;

/* ---- Extensions: tooling a backend may offer, by name --------------------- */

/* `daecl devices`: lists the devices this backend can open, before any is
 * opened. out holds max elements of info_size bytes each (the caller's
 * sizeof(daecl_device_info)); *n gets how many exist (may exceed max;
 * out may be NULL with max 0 to count). */
#define DAECL_EXT_DEVICES "daecl.devices"
typedef struct daecl_ext_devices {
    uint32_t size;
    int (*list_devices)(const daecl_host *host, daecl_device_info *out, size_t info_size,
                        size_t max, size_t *n, daecl_err *err);
} daecl_ext_devices;

/* `daecl precompile`: writes into folder `dir` every device program this
 * backend would build for the opened device ctx: its own kernels and those
 * of the n plugins, so a device without an online compiler can load them
 * (the FPGA flow). The device is the one open() chose from its values. */
#define DAECL_EXT_PRECOMPILE "daecl.precompile"
typedef struct daecl_ext_precompile {
    uint32_t size;
    int (*precompile)(void *ctx, const daecl_plugin *const *plugins, size_t n, const char *dir,
                      daecl_err *err);
} daecl_ext_precompile;

/* `daecl tune`: searches for about budget_s seconds (a candidate that has
 * started finishes) how the opened device runs the n shapes fastest (each
 * element shape_size bytes: the caller's sizeof(daecl_gemm_shape)), timing
 * each candidate after a warm-up call; makes gemm() use the winners from
 * now on and stores them where open() finds them on later runs. Fills each
 * shape's before, after and choice. May take minutes. */
#define DAECL_EXT_TUNE_GEMM "daecl.tune_gemm"
typedef struct daecl_ext_tune_gemm {
    uint32_t size;
    int (*tune_gemm)(void *ctx, daecl_gemm_shape *shapes, size_t shape_size, size_t n,
                     double budget_s, daecl_err *err);
} daecl_ext_tune_gemm;

/* The extension `name` of a backend's table when it is at least min_size
 * bytes (the offset just past the slot the caller needs), else NULL. */
static inline const void *daecl_backend_extension(const daecl_backend_ops *ops, const char *name,
                                                  size_t min_size)
{
    if (!ops || !ops->get_extension)
        return NULL;
    const void *ext = ops->get_extension(name);
    if (!ext || *(const uint32_t *)ext < min_size)
        return NULL;
    return ext;
}

#ifdef __cplusplus
}
#endif

#endif
