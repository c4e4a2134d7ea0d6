/* daecl - the plugin ABI: everything a plugin author needs.
 *
 * A plugin is a shared object exporting one symbol,
 *     const daecl_plugin *daecl_plugin_entry(void);
 * that returns a static descriptor. The descriptor and each ops table start
 * with their own size and only ever grow by appending fields (tests/test_abi.c
 * pins the offsets). A NULL op slot means "not provided": the core falls back.
 * Plugins call into the core only through the daecl_host table handed to
 * init(), so they never link against libdaecl. */
#ifndef DAECL_PLUGIN_H
#define DAECL_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daecl/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Major must equal the core's; a plugin's minor must not be newer. 2.0: the
 * backend table's required core and optional groups, backend tooling by
 * extension, element sizes on arrays, va_list forms in the host table.
 * 2.1: the backend table's optional fused ops (act_grad_col_sum,
 * lik_loss_grad_sums, optim_update_split). */
#define DAECL_ABI_MAJOR 2
#define DAECL_ABI_MINOR 1

/* The sizes check: a plugin built for another data model is refused. */
#define DAECL_ABI_SIZES \
    ((uint32_t)sizeof(float) | (uint32_t)sizeof(size_t) << 8 | (uint32_t)sizeof(void *) << 16)

#define DAECL_PLUGIN_ENTRY_SYMBOL "daecl_plugin_entry"

typedef enum daecl_plugin_kind {
    DAECL_KIND_CORRUPTION = 1,
    DAECL_KIND_LIKELIHOOD = 2,
    DAECL_KIND_BACKEND = 3,
    DAECL_KIND_COMM = 4 /* a communicator between processes (comm.h) */
} daecl_plugin_kind;

/* ---- Parameter schema ------------------------------------------------------
 * The core validates a config section against the schema (unknown names,
 * types, ranges, with file:line:col), fills defaults, and `daecl plugins NAME`
 * prints it. Numeric bounds are inclusive; +-INFINITY means unbounded. */
typedef enum daecl_param_type {
    DAECL_PARAM_FLOAT = 1,  /* number; def[0] */
    DAECL_PARAM_INT = 2,    /* whole number; def[0] */
    DAECL_PARAM_BOOL = 3,   /* true/false; def[0] is 0 or 1 */
    DAECL_PARAM_STRING = 4, /* text; def_str (may be "") */
    DAECL_PARAM_ENUM = 5,   /* one of `choices` ("a|b|c"); def_str */
    DAECL_PARAM_FLOAT2 = 6  /* [lo, hi] pair; def[0], def[1]; needs lo <= hi */
} daecl_param_type;

typedef struct daecl_param_spec {
    const char *name; /* lower_snake_case */
    daecl_param_type type;
    double def[2];
    const char *def_str;
    double min, max;
    const char *choices;
    const char *doc; /* one line: what it does, its unit */
} daecl_param_spec;

/* A resolved value, in schema order. `str` is owned by the core and stays
 * valid while the plugin is in use. Frozen: this struct never grows, so
 * arrays of it cross the ABI without an element size. */
typedef struct daecl_param_value {
    double num[2];
    const char *str;
} daecl_param_value;

/* Packed parameters: what corruption and likelihood ops receive, on the host
 * and on a device alike (`DAECL_PARAMS p` in shared kernel C). Values in
 * schema order, as floats: FLOAT, INT, BOOL take one slot, FLOAT2 two, ENUM
 * one (the index of the choice), STRING none. */
#define DAECL_MAX_PACKED_PARAMS 16

/* ---- Host table: the only way back into the core -------------------------- */
enum { DAECL_LOG_ERROR = 0, DAECL_LOG_WARN = 1, DAECL_LOG_INFO = 2, DAECL_LOG_DEBUG = 3 };

typedef struct daecl_host {
    uint32_t size;
    uint16_t abi_major, abi_minor;
    /* Log one line; `who` names the plugin. */
    void (*log)(int level, const char *who, const char *fmt, ...);
    /* Fill err with one sentence; returns `status` for `return host->error(...)`. */
    int (*error)(daecl_err *err, int status, const char *fmt, ...);
    void *(*alloc)(size_t n_bytes); /* NULL on failure */
    void (*free)(void *p);
    /* daecl's cache folder for this user, or NULL when caching is disabled. */
    const char *(*cache_dir)(void);
    /* Writes n bytes to path atomically (temporary file, fsync, rename);
     * creates missing folders. `what` names the file in err's sentence. */
    int (*write_file_atomic)(const char *path, const void *data, size_t n, const char *what,
                             daecl_err *err);
    /* 2.0: the va_list forms of log and error (as SQLite's vmprintf), so a
     * plugin's own variadic helper formats once. */
    void (*vlog)(int level, const char *who, const char *fmt, va_list ap);
    int (*verror)(daecl_err *err, int status, const char *fmt, va_list ap);
    /* Later minors append here; check `size` before using a newer slot. */
} daecl_host;

/* ---- Noise addressing: the noise key 2.0 (philox.h) ------------------------
 * The noise of an example is a pure function of (seed, stream, stage,
 * substep, epoch, position): the example's position in the epoch's
 * permutation, not the step or the batch it came in. So any split of a batch
 * over calls, threads, devices or processes draws the same bytes. A call on
 * n_rows rows passes the position of its first row, pos0; row r is at
 * position pos0 + r. Within a row, block i (i = 0, 1, ...) is
 *     Philox4x32-10 under key {seed lo, seed hi} at counter
 *     {i, pos0 + r, epoch, stream | stage << 8 | substep << 16}.
 * An element-wise op gives dimension j of row r block j; a row-granular
 * corruption draws blocks 0, 1, ... of its row as it needs them (the same
 * space, so the two forms never collide). Limits: positions and blocks per
 * row below 2^32, epochs below 2^32, stream and stage below 256, substep
 * below 65536 (the core keeps to them). */
typedef struct daecl_noise_key {
    uint64_t seed;
    uint32_t stream;  /* DAECL_STREAM_*, < 256 */
    uint32_t stage;   /* the stage of stacked training; 0 for one DAE, < 256 */
    uint32_t substep; /* walkback or chain step; 0 for none, < 65536 */
    uint32_t epoch;   /* 0-based; streams without epochs use 0 */
    uint32_t pos0;    /* position of the call's first row; pos0 + n_rows <= 2^32 */
} daecl_noise_key;

/* Standard streams; plugins may not invent their own. */
enum {
    DAECL_STREAM_TRAIN_CORRUPTION = 0, /* epoch, position in the epoch's shuffle */
    DAECL_STREAM_SHUFFLE = 1,          /* epoch; position i: the Fisher-Yates draw of slot i */
    DAECL_STREAM_EVAL_CORRUPTION = 2,  /* epoch 0, position = test row */
    DAECL_STREAM_INIT = 3,             /* epoch 0, position = layer, block = weight index */
    DAECL_STREAM_SAMPLE = 4,           /* substep = chain step, position = row */
    DAECL_STREAM_PROBE = 5,
    DAECL_STREAM_TOY = 6,              /* core/toy.c; epoch = split (0 train, 1 test), position = row */
    DAECL_STREAM_WALKBACK = 7          /* epoch, position; substep j: whether walkback goes on to step j */
};

/* The shape of one example (rows excluded), row-major: dims[0..rank), whose
 * product is the row's dim; unused dims are 1. MNIST's is {2, {28, 28}};
 * data without a known shape is {1, {dim}}. */
#define DAECL_MAX_RANK 4
typedef struct daecl_shape {
    uint32_t rank; /* 1..DAECL_MAX_RANK */
    uint32_t dims[DAECL_MAX_RANK];
} daecl_shape;

/* Host ops treat rows independently and keep no mutable state: a backend
 * may call one op concurrently from several threads on disjoint blocks of
 * rows (with the pointers moved to each block, and the key's pos0 moved by
 * the block's first row), and must get the same bits as one call over all
 * rows. */

/* ---- Corruption: x~ ~ C(x~ | x) ------------------------------------------- */
enum {
    DAECL_GRAIN_ELEMENT = 0, /* cl_source defines daecl_corrupt: one element, one block */
    DAECL_GRAIN_ROW = 1      /* cl_source defines daecl_corrupt_row: sees the whole example */
};

typedef struct daecl_corruption_ops {
    uint32_t size;
    /* Required. The reference: xt (n_rows, dim) from x (n_rows, dim), both
     * row-major host arrays that do not overlap; shape is the examples'
     * shape (never NULL; its product is dim). Row r draws its noise from
     * the key's blocks of position key->pos0 + r only (elementwise.h:
     * daecl_noise_block, daecl_row_make). */
    int (*host_apply)(const float *x, float *xt, size_t n_rows, size_t dim,
                      const daecl_shape *shape, const daecl_noise_key *key, const float *params,
                      daecl_err *err);
    /* Optional. Shared kernel C; with DAECL_GRAIN_ELEMENT it defines
     *     float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
     * for one element with its Philox block r; with DAECL_GRAIN_ROW
     *     float daecl_corrupt_row(DAECL_GLOBAL const float *x, daecl_u32 j,
     *                             const daecl_row *row, DAECL_PARAMS p)
     * for output element j of an example from its whole input row x, its
     * position, shape and Philox stream (philox.h: daecl_row). NULL runs
     * host_apply instead (correct everywhere, slower on a device). */
    const char *cl_source;
    /* DAECL_GRAIN_ELEMENT (0, also what a table without this field means)
     * or DAECL_GRAIN_ROW: which function cl_source defines. */
    uint32_t granularity;
} daecl_corruption_ops;

/* ---- Likelihood: -log p_decoder(x | a) -------------------------------------
 * The decoder emits k = params_per_dim values per data dimension, blocked per
 * row: a[r*k*dim + c*dim + j] is parameter c of dimension j of row r. */
typedef struct daecl_likelihood_ops {
    uint32_t size;
    uint32_t params_per_dim; /* k, 1..4 */
    /* Required. nll_rows[r] = sum_j -log p(x[r,j] | a[r,:,j]) in nats
     * (NULL: not wanted); grad (n_rows, k*dim) = scale * dnll/da (NULL: not
     * wanted). Stable in float32 for any finite a. */
    int (*host_loss_grad)(const float *x, const float *a, size_t n_rows, size_t dim,
                          const float *params, float scale, float *nll_rows, float *grad,
                          daecl_err *err);
    /* Required. mean (n_rows, dim) = E[x | a]: the reconstruction. */
    int (*host_mean)(const float *a, float *mean, size_t n_rows, size_t dim, const float *params,
                     daecl_err *err);
    /* Required. out (n_rows, dim) ~ p(x | a); element j of row r from
     * daecl_noise_block(key, r, j) (block j of position key->pos0 + r). */
    int (*host_sample)(const float *a, float *out, size_t n_rows, size_t dim,
                       const daecl_noise_key *key, const float *params, daecl_err *err);
    /* Optional. Shared kernel C defining, for one dimension with its k values
     * in a.x, a.y, ... (unused ones are 0):
     *     float    daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
     *     daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
     *     float    daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
     *     float    daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
     * NULL runs the host ops instead. */
    const char *cl_source;
    /* Optional: where p(x | a) lives, a daecl_support over [support_lo,
     * support_hi] (inclusive; +-INFINITY for an open end). `daecl plugin
     * check` tests normalisation over it; NONE (0, as a table that leaves it
     * unset reads) declares nothing: no normalisation check (the report
     * warns) and no data check. */
    uint32_t support;
    double support_lo, support_hi;
    /* Optional: the data values daecl train accepts, which may be wider than
     * the support (bernoulli scores grey values in [0, 1] though it is
     * normalised on {0, 1} only). Both 0: the support's [lo, hi]. */
    double data_lo, data_hi;
} daecl_likelihood_ops;

typedef enum daecl_support {
    DAECL_SUPPORT_NONE = 0,
    DAECL_SUPPORT_DISCRETE = 1,  /* the integers in [lo, hi]: a mass function; lo finite */
    DAECL_SUPPORT_CONTINUOUS = 2 /* the interval [lo, hi]: a density */
} daecl_support;

/* ---- The descriptor --------------------------------------------------------
 * Its first 12 bytes (size, abi_major, abi_minor, abi_sizes) are frozen for
 * every ABI to come, so any later daecl can read them from any plugin and
 * refuse an old one in one sentence. */
typedef struct daecl_plugin {
    uint32_t size;       /* sizeof(daecl_plugin) as the plugin was built */
    uint16_t abi_major;  /* DAECL_ABI_MAJOR */
    uint16_t abi_minor;  /* DAECL_ABI_MINOR */
    uint32_t abi_sizes;  /* DAECL_ABI_SIZES */
    uint32_t kind;       /* daecl_plugin_kind */
    const char *name;    /* [a-z][a-z0-9_]*: what configs say */
    const char *version; /* the plugin's own, e.g. "1.0.0" */
    const char *summary; /* one line */
    const char *license; /* SPDX identifier */
    const daecl_param_spec *params; /* n_params elements of param_size bytes */
    uint32_t n_params;
    uint32_t param_size; /* sizeof(daecl_param_spec) as built; DAECL_PLUGIN_HEAD sets it */
    /* Optional. Called once after loading; keep `host` for later use. */
    int (*init)(const daecl_host *host, daecl_err *err);
    /* Optional. Checks values beyond the schema (e.g. min < max). */
    int (*check)(const daecl_param_value *values, daecl_err *err);
    /* The kind's ops table (daecl_corruption_ops, daecl_likelihood_ops,
     * daecl_backend_ops from backend.h or daecl_comm_ops from comm.h); it
     * starts with its own size. */
    const void *ops;
} daecl_plugin;

/* Fills err with one sentence and returns status, without allocating: the
 * va_list form that every plugin's own error helper can wrap. With a host
 * table whose `verror` is set the sentence goes through it, formatted once;
 * without one, err is filled here. The status returned is always the
 * caller's, whatever the host's returns, so no caller goes on with an output
 * left unset. err and host may be NULL. */
static inline int daecl_plugin_verror(const daecl_host *host, daecl_err *err, int status,
                                      const char *fmt, va_list ap)
{
    if (host && host->verror) {
        host->verror(err, status, fmt, ap);
        return status;
    }
    if (err) {
        /* through a copy: an argument may be err->msg itself */
        char msg[DAECL_ERR_MSG_MAX];
        vsnprintf(msg, sizeof msg, fmt, ap);
        err->status = status;
        err->line = err->col = 0;
        err->file[0] = '\0';
        snprintf(err->msg, sizeof err->msg, "%s", msg);
    }
    return status;
}

/* The same without the host table: for a plugin's check() or ops, also when
 * a caller used the descriptor without init(). */
static inline int daecl_plugin_error(daecl_err *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static inline int daecl_plugin_error(daecl_err *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    daecl_plugin_verror(NULL, err, status, fmt, ap);
    va_end(ap);
    return status;
}

/* Fills the fixed head of a descriptor: size, ABI, sizes check, kind and
 * the element size of the parameter schema. */
#define DAECL_PLUGIN_HEAD(kind_)                                                          \
    .size = sizeof(daecl_plugin), .abi_major = DAECL_ABI_MAJOR, .abi_minor = DAECL_ABI_MINOR, \
    .abi_sizes = DAECL_ABI_SIZES, .kind = (kind_), .param_size = sizeof(daecl_param_spec)

#if defined(_WIN32)
#define DAECL_EXPORT __declspec(dllexport)
#else
#define DAECL_EXPORT __attribute__((visibility("default")))
#endif

/* The one symbol a plugin exports. */
typedef const daecl_plugin *(*daecl_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif
