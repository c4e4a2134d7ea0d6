/* daecl cpu backend — the plugin: descriptor, device description, host-memory
 * buffers, and running corruption and likelihood plugins in place. Each op
 * checks its slices against the buffers (a cheap guard against core bugs)
 * and hands plain pointers to the numerical code in cpu_math.c and
 * cpu_gemm.c. Ops run synchronously, on the caller's thread and the
 * context's pool (core/pool.h, compiled into this plugin), so finish() has
 * nothing to wait for. */
#include <cblas.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_math.h"
#include "daecl/backend.h"
#include "daecl/plugin.h"

/* Host memory, 64-byte aligned (a cache line, and AVX-512 loads) and
 * zero-filled; holds floats or uint32 (gather's index), 4 bytes each. */
struct daecl_buf {
    float *p;
    size_t n_bytes;
};

typedef struct cpu {
    const daecl_host *host;
    daecl_device_info info;
    daecl_pool *pool; /* threads for the parallel ops, this one's included */
    daecl_cpu_gemm_kind gemm;
    daecl_cpu_gemm_ws gemm_ws;
} cpu;

/* A corruption or likelihood plugin with a copy of its packed parameters. */
typedef struct bound {
    const daecl_plugin *plugin;
    float params[DAECL_MAX_PACKED_PARAMS];
} bound;

enum { ELEM = sizeof(float) }; /* every buffer element is 4 bytes */

/* The host table from init(), for list_devices calls made before open(). */
static const daecl_host *init_host;

/* ---- errors ---------------------------------------------------------------- */

/* Fills err through the host table (the backend never links libdaecl). */
__attribute__((format(printf, 4, 5))) static int fail(const daecl_host *host, daecl_err *err,
                                                      int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    daecl_plugin_verror(host, err, status, fmt, ap);
    va_end(ap);
    return status;
}

#define BUG_HINT "this is a bug in daecl, please report it"

/* s points at n elements of its buffer: *p gets the first. */
static int span(const cpu *c, daecl_slice s, size_t n, const char *op, const char *what,
                float **p, daecl_err *err)
{
    *p = NULL;
    if (!s.buf)
        return fail(c->host, err, DAECL_EINVAL, "cpu backend: %s was given no %s buffer; " BUG_HINT,
                    op, what);
    size_t have = s.buf->n_bytes / ELEM;
    if (s.off > have || n > have - s.off)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: %s needs %zu elements of %s from element %zu, past the end of "
                    "its buffer of %zu elements; " BUG_HINT,
                    op, n, what, s.off, have);
    *p = s.buf->p + s.off;
    return 0;
}

/* Like span(), but a NULL slice is allowed and gives *p = NULL. */
static int span_opt(const cpu *c, daecl_slice s, size_t n, const char *op, const char *what,
                    float **p, daecl_err *err)
{
    if (!s.buf) {
        *p = NULL;
        return 0;
    }
    return span(c, s, n, op, what, p, err);
}

/* *out = a * b, or an error naming op when it overflows size_t. */
static int mul_size(const cpu *c, size_t a, size_t b, size_t *out, const char *op, daecl_err *err)
{
    if (__builtin_mul_overflow(a, b, out))
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: %s was asked for %zu x %zu elements, which overflows; " BUG_HINT,
                    op, a, b);
    return 0;
}

/* ---- device ---------------------------------------------------------------- */

/* The value of `key` in /proc/cpuinfo ("model name", "vendor_id") into out;
 * 0 when found. Only the first processor's block is read. */
static int cpuinfo_field(const char *key, char *out, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return -1;
    char line[512];
    size_t klen = strlen(key);
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '\n')
            break; /* end of the first processor */
        if (strncmp(line, key, klen) != 0 || (line[klen] != '\t' && line[klen] != ' ' &&
                                              line[klen] != ':'))
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            continue;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t len = strcspn(v, "\n");
        if (len == 0)
            continue;
        snprintf(out, n, "%.*s", (int)len, v);
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

static void device_info(daecl_device_info *out)
{
    memset(out, 0, sizeof *out);
    char model[sizeof out->name - 8];
    if (cpuinfo_field("model name", model, sizeof model) == 0)
        snprintf(out->name, sizeof out->name, "cpu (%s)", model);
    else
        snprintf(out->name, sizeof out->name, "cpu");
    if (cpuinfo_field("vendor_id", out->vendor, sizeof out->vendor) != 0)
        out->vendor[0] = '\0';
    snprintf(out->platform, sizeof out->platform, "daecl cpu");
    snprintf(out->type, sizeof out->type, "cpu");
    /* OpenBLAS's build string ("OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...
     * Zen MAX_THREADS=64") may not fit: cut it at a word, not mid-word. */
    const char *config = openblas_get_config();
    size_t len = strlen(config);
    if (len >= sizeof out->driver) {
        len = sizeof out->driver - 1;
        while (len > 0 && config[len] != ' ')
            len--;
    }
    snprintf(out->driver, sizeof out->driver, "%.*s", (int)len, config);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    out->compute_units = cores > 0 ? (uint32_t)cores : 1;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
        out->global_mem_bytes = (uint64_t)pages * (uint64_t)page;
    out->max_alloc_bytes = out->global_mem_bytes;
    out->fp64 = 1;
    out->is_default = 1;
    daecl_cpu_gemm_kind best = daecl__cpu_gemm_best();
    snprintf(out->note, sizeof out->note,
             "the reference backend: plain C on the host; GEMM: %s (backend.gemm: auto)",
             best == DAECL_CPU_GEMM_OPENBLAS ? "OpenBLAS"
             : best == DAECL_CPU_GEMM_AVX512 ? "daecl's AVX-512 kernel"
                                             : "daecl's AVX2 kernel");
}

static int cpu_init(const daecl_host *host, daecl_err *err)
{
    (void)err;
    init_host = host;
    return 0;
}

/* Copies an info into a caller's element of out_size bytes. */
static void give_info(const daecl_device_info *info, void *out, size_t out_size)
{
    memset(out, 0, out_size);
    memcpy(out, info, out_size < sizeof *info ? out_size : sizeof *info);
}

static int cpu_list_devices(const daecl_host *host, daecl_device_info *out, size_t info_size,
                            size_t max, size_t *n, daecl_err *err)
{
    (void)host;
    (void)err;
    if (out && max > 0) {
        daecl_device_info info;
        device_info(&info);
        give_info(&info, out, info_size);
    }
    if (n)
        *n = 1;
    return 0;
}

static const daecl_ext_devices ext_devices = {
    .size = sizeof(daecl_ext_devices),
    .list_devices = cpu_list_devices,
};

/* Tooling: only the device listing (nothing to precompile or tune). */
static const void *cpu_get_extension(const char *name)
{
    if (name && strcmp(name, DAECL_EXT_DEVICES) == 0)
        return &ext_devices;
    return NULL;
}

/* backend.gemm: auto is the fastest this CPU runs; a named kernel must be
 * one it runs. */
static int gemm_kind(const daecl_host *h, const char *name, daecl_cpu_gemm_kind *out,
                     daecl_err *err)
{
    static const daecl_cpu_gemm_kind kinds[] = { DAECL_CPU_GEMM_OPENBLAS, DAECL_CPU_GEMM_AVX2,
                                                 DAECL_CPU_GEMM_AVX512 };
    if (!name || strcmp(name, "auto") == 0) {
        *out = daecl__cpu_gemm_best();
        return 0;
    }
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(name, daecl__cpu_gemm_name(kinds[i])) != 0)
            continue;
        if (!daecl__cpu_gemm_supported(kinds[i]))
            return fail(h, err, DAECL_ENOTSUP,
                        "cpu backend: gemm = %s needs a CPU with %s, and this one lacks it; set "
                        "backend.gemm to auto (here: %s) or openblas",
                        name, kinds[i] == DAECL_CPU_GEMM_AVX512 ? "AVX-512F" : "AVX2 and FMA",
                        daecl__cpu_gemm_name(daecl__cpu_gemm_best()));
        *out = kinds[i];
        return 0;
    }
    return fail(h, err, DAECL_EINVAL,
                "cpu backend: gemm = '%s' is not one of auto, openblas, avx2, avx512", name);
}

static int cpu_open(const daecl_host *host, const daecl_param_value *values, void **ctx,
                    daecl_err *err)
{
    const daecl_host *h = host ? host : init_host;
    double threads = values ? values[0].num[0] : 0.0;
    *ctx = NULL;
    if (!(threads >= 0.0 && threads <= 1024.0))
        return fail(h, err, DAECL_EINVAL,
                    "cpu backend: threads = %g is outside [0, 1024]; set backend.threads to 0 "
                    "(the CPUs this process may use) or a thread count",
                    threads);
    daecl_cpu_gemm_kind gemm = DAECL_CPU_GEMM_OPENBLAS;
    int rc = gemm_kind(h, values ? values[1].str : NULL, &gemm, err);
    if (rc)
        return rc;
    cpu *c = calloc(1, sizeof *c);
    if (!c)
        return fail(h, err, DAECL_ENOMEM, "cpu backend: out of memory opening the device");
    c->host = h;
    c->gemm = gemm;
    device_info(&c->info);
    /* OpenBLAS runs single-threaded inside the chunks the pool hands it:
     * one set of threads, not two fighting for cores. The setting is global
     * to OpenBLAS, and every open() makes the same one. */
    openblas_set_num_threads(1);
    /* threads 0: the CPUs of the affinity mask, lowered to the cgroup quota */
    int prc = daecl_pool_create((unsigned)threads, &c->pool);
    if (prc) {
        unsigned want = threads > 0.0 ? (unsigned)threads : daecl_pool_default_threads();
        free(c);
        if (prc == ENOMEM)
            return fail(h, err, DAECL_ENOMEM, "cpu backend: out of memory opening the device");
        return fail(h, err, DAECL_EDEVICE,
                    "cpu backend: could not start %u threads (%s); set backend.threads lower",
                    want, strerror(prc));
    }
    *ctx = c;
    return 0;
}

static void cpu_close(void *ctx)
{
    cpu *c = ctx;
    if (!c)
        return;
    daecl_pool_destroy(c->pool);
    daecl__cpu_gemm_ws_free(&c->gemm_ws);
    free(c);
}

static void cpu_describe(void *ctx, daecl_device_info *out, size_t out_size)
{
    give_info(&((cpu *)ctx)->info, out, out_size);
}

/* ---- memory ---------------------------------------------------------------- */

static int cpu_alloc(void *ctx, size_t n_bytes, const char *what, daecl_buf **out, daecl_err *err)
{
    cpu *c = ctx;
    /* Round up to whole cache lines; alloc(0) still gets one, so every
     * buffer has a valid pointer. */
    size_t cap = n_bytes == 0 ? 64 : n_bytes;
    if (cap > SIZE_MAX - 63)
        goto nomem;
    cap = (cap + 63) & ~(size_t)63;
    daecl_buf *b = malloc(sizeof *b);
    if (!b)
        goto nomem;
    void *p = NULL;
    if (posix_memalign(&p, 64, cap) != 0) {
        free(b);
        goto nomem;
    }
    memset(p, 0, cap);
    b->p = p;
    b->n_bytes = n_bytes;
    *out = b;
    return 0;
nomem:
    return fail(c->host, err, DAECL_ENOMEM,
                "cpu backend: out of host memory allocating %zu bytes for %s; lower "
                "train.batch_size or the layer sizes, or free memory",
                n_bytes, what ? what : "a buffer");
}

static void cpu_free(void *ctx, daecl_buf *buf)
{
    (void)ctx;
    if (!buf)
        return;
    free(buf->p);
    free(buf);
}

/* Byte range [off, off + n) of buf, for read and write. */
static int byte_range(const cpu *c, const daecl_buf *buf, size_t off, size_t n, const void *host_p,
                      const char *op, daecl_err *err)
{
    if (!buf)
        return fail(c->host, err, DAECL_EINVAL, "cpu backend: %s was given no buffer; " BUG_HINT,
                    op);
    if (off > buf->n_bytes || n > buf->n_bytes - off)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: %s of %zu bytes at byte %zu runs past the end of a buffer of "
                    "%zu bytes; " BUG_HINT,
                    op, n, off, buf->n_bytes);
    if (n > 0 && !host_p)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: %s of %zu bytes was given no host memory; " BUG_HINT, op, n);
    return 0;
}

static int cpu_write(void *ctx, daecl_buf *dst, size_t off_bytes, const void *src, size_t n_bytes,
                     daecl_err *err)
{
    int rc = byte_range(ctx, dst, off_bytes, n_bytes, src, "write", err);
    if (rc == 0 && n_bytes > 0)
        memcpy((char *)dst->p + off_bytes, src, n_bytes);
    return rc;
}

static int cpu_read(void *ctx, daecl_buf *src, size_t off_bytes, void *dst, size_t n_bytes,
                    daecl_err *err)
{
    int rc = byte_range(ctx, src, off_bytes, n_bytes, dst, "read", err);
    if (rc == 0 && n_bytes > 0)
        memcpy(dst, (const char *)src->p + off_bytes, n_bytes);
    return rc;
}

static int cpu_fill(void *ctx, daecl_slice dst, size_t n, float value, daecl_err *err)
{
    float *d;
    int rc = span(ctx, dst, n, "fill", "destination", &d, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        d[i] = value;
    return 0;
}

static int cpu_copy(void *ctx, daecl_slice dst, daecl_slice src, size_t n, daecl_err *err)
{
    cpu *c = ctx;
    float *d, *s;
    int rc;
    if ((rc = span(c, dst, n, "copy", "destination", &d, err)) ||
        (rc = span(c, src, n, "copy", "source", &s, err)))
        return rc;
    if (n > 0 && d < s + n && s < d + n)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: copy of %zu elements from element %zu to element %zu of the "
                    "same buffer overlaps itself; " BUG_HINT,
                    n, src.off, dst.off);
    if (n > 0)
        memcpy(d, s, n * ELEM);
    return 0;
}

/* ---- dense algebra --------------------------------------------------------- */

/* A stored matrix (rows, cols) with row stride ld in slice s. */
static int matrix(const cpu *c, daecl_slice s, size_t rows, size_t cols, size_t ld,
                  const char *name, float **p, daecl_err *err)
{
    if (ld < cols || ld > INT_MAX)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: gemm was given ld%s = %zu for %s with %zu columns (it must be "
                    "at least the column count and at most %d); " BUG_HINT,
                    name, ld, name, cols, INT_MAX);
    size_t extent = 0;
    if (rows > 0 && cols > 0) {
        if (__builtin_mul_overflow(rows - 1, ld, &extent) ||
            __builtin_add_overflow(extent, cols, &extent))
            return fail(c->host, err, DAECL_EINVAL,
                        "cpu backend: gemm matrix %s of %zu rows with stride %zu overflows; "
                        BUG_HINT,
                        name, rows, ld);
    }
    return span(c, s, extent, "gemm", name, p, err);
}

static int cpu_gemm(void *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                    daecl_slice a, size_t lda, daecl_slice b, size_t ldb, float beta,
                    daecl_slice cs, size_t ldc, daecl_err *err)
{
    cpu *c = ctx;
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return fail(c->host, err, DAECL_ENOTSUP,
                    "cpu backend: gemm of (%zu x %zu) by (%zu x %zu) has a side over %d, more than "
                    "OpenBLAS's 32-bit interface takes; lower train.batch_size or the layer sizes",
                    m, k, k, n, INT_MAX);
    float *pa, *pb, *pc;
    int rc;
    if ((rc = matrix(c, a, trans_a ? k : m, trans_a ? m : k, lda, "A", &pa, err)) ||
        (rc = matrix(c, b, trans_b ? n : k, trans_b ? k : n, ldb, "B", &pb, err)) ||
        (rc = matrix(c, cs, m, n, ldc, "C", &pc, err)))
        return rc;
    if (daecl__cpu_gemm(c->pool, &c->gemm_ws, c->gemm, trans_a, trans_b, m, n, k, alpha, pa, lda,
                        pb, ldb, beta, pc, ldc))
        return fail(c->host, err, DAECL_ENOMEM,
                    "cpu backend: out of host memory packing a gemm of (%zu x %zu) by (%zu x %zu); "
                    "lower train.batch_size or the layer sizes, or free memory",
                    m, k, k, n);
    return 0;
}

/* ---- elementwise and reductions ------------------------------------------- */

static int check_act(const cpu *c, daecl_act act, const char *op, daecl_err *err)
{
    if (act == DAECL_ACT_LINEAR || act == DAECL_ACT_SIGMOID || act == DAECL_ACT_TANH ||
        act == DAECL_ACT_RELU)
        return 0;
    return fail(c->host, err, DAECL_EINVAL,
                "cpu backend: %s was given unknown activation %d; " BUG_HINT, op, (int)act);
}

static int cpu_bias_act(void *ctx, daecl_slice z, daecl_slice bias, size_t n_rows, size_t dim,
                        daecl_act act, daecl_err *err)
{
    cpu *c = ctx;
    size_t n;
    float *pz, *pb;
    int rc;
    if ((rc = check_act(c, act, "bias_act", err)) ||
        (rc = mul_size(c, n_rows, dim, &n, "bias_act", err)) ||
        (rc = span(c, z, n, "bias_act", "z", &pz, err)) ||
        (rc = span_opt(c, bias, dim, "bias_act", "bias", &pb, err)))
        return rc;
    daecl__cpu_bias_act_forward(c->pool, pz, pb, n_rows, dim, act);
    return 0;
}

static int cpu_act_grad(void *ctx, daecl_slice dh, daecl_slice h, size_t n, daecl_act act,
                        daecl_err *err)
{
    cpu *c = ctx;
    float *pd, *ph;
    int rc;
    if ((rc = check_act(c, act, "act_grad", err)) ||
        (rc = span(c, dh, n, "act_grad", "dh", &pd, err)) ||
        (rc = span(c, h, n, "act_grad", "h", &ph, err)))
        return rc;
    daecl__cpu_act_backward(c->pool, pd, ph, n, act);
    return 0;
}

static int cpu_col_sum(void *ctx, daecl_slice src, size_t n_rows, size_t dim, float beta,
                       daecl_slice dst, daecl_err *err)
{
    cpu *c = ctx;
    size_t n;
    float *ps, *pd;
    int rc;
    if ((rc = mul_size(c, n_rows, dim, &n, "col_sum", err)) ||
        (rc = span(c, src, n, "col_sum", "src", &ps, err)) ||
        (rc = span(c, dst, dim, "col_sum", "dst", &pd, err)))
        return rc;
    daecl__cpu_col_sum(c->pool, ps, n_rows, dim, beta, pd);
    return 0;
}

static int cpu_sum(void *ctx, daecl_slice src, size_t n, daecl_slice dst, daecl_err *err)
{
    cpu *c = ctx;
    float *ps, *pd;
    int rc;
    if ((rc = span(c, src, n, "sum", "src", &ps, err)) ||
        (rc = span(c, dst, 1, "sum", "dst", &pd, err)))
        return rc;
    *pd = daecl__cpu_sum(ps, n);
    return 0;
}

static int cpu_gather(void *ctx, daecl_slice data, size_t dim, daecl_slice idx, size_t n_rows,
                      daecl_slice out, daecl_err *err)
{
    cpu *c = ctx;
    size_t n;
    float *pdata, *pidx, *pout;
    int rc;
    if ((rc = mul_size(c, n_rows, dim, &n, "gather", err)) ||
        (rc = span(c, data, 0, "gather", "data", &pdata, err)) ||
        (rc = span(c, idx, n_rows, "gather", "idx", &pidx, err)) ||
        (rc = span(c, out, n, "gather", "out", &pout, err)))
        return rc;
    /* The rows the data buffer holds from data.off on: the index is checked
     * against them so a bad index is an error, not a wild read. */
    size_t n_data_rows = dim ? (data.buf->n_bytes / ELEM - data.off) / dim : SIZE_MAX;
    const uint32_t *ix = (const uint32_t *)(const void *)pidx;
    size_t bad = daecl__cpu_gather(c->pool, pdata, n_data_rows, dim, ix, n_rows, pout);
    if (bad < n_rows)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: gather index %u at position %zu is past the %zu rows of the "
                    "data; " BUG_HINT,
                    ix[bad], bad, n_data_rows);
    return 0;
}

static int cpu_optim_update(void *ctx, const daecl_optim_step *step, daecl_slice w, daecl_slice g,
                            daecl_slice s1, daecl_slice s2, size_t n, daecl_err *err)
{
    cpu *c = ctx;
    if (!step || step->kind > DAECL_OPTIM_ADAMW)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: optim_update was given %s; " BUG_HINT,
                    step ? "an unknown optimiser kind" : "no step");
    int adam = step->kind != DAECL_OPTIM_SGD;
    if (adam && !(step->bias_corr1 > 0.0f && step->bias_corr1 <= 1.0f &&
                  step->bias_corr2 > 0.0f && step->bias_corr2 <= 1.0f))
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: optim_update was given bias corrections %g and %g outside "
                    "(0, 1]; " BUG_HINT,
                    (double)step->bias_corr1, (double)step->bias_corr2);
    float *pw, *pg, *p1 = NULL, *p2 = NULL;
    int rc;
    if ((rc = span(c, w, n, "optim_update", "w", &pw, err)) ||
        (rc = span(c, g, n, "optim_update", "g", &pg, err)))
        return rc;
    if ((adam || step->momentum != 0.0f) &&
        (rc = span(c, s1, n, "optim_update", adam ? "m (s1)" : "velocity (s1)", &p1, err)))
        return rc;
    if (adam && (rc = span(c, s2, n, "optim_update", "v (s2)", &p2, err)))
        return rc;
    daecl__cpu_optim_update(c->pool, step, pw, pg, p1, p2, n);
    return 0;
}

/* ---- plugins --------------------------------------------------------------- */

static int cpu_bind(void *ctx, const daecl_plugin *plugin, const float *params, size_t n_params,
                    void **out, daecl_err *err)
{
    cpu *c = ctx;
    if (!plugin || (plugin->kind != DAECL_KIND_CORRUPTION && plugin->kind != DAECL_KIND_LIKELIHOOD))
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: bind was given %s%s%s, not a corruption or likelihood "
                    "plugin; " BUG_HINT,
                    plugin ? "plugin '" : "no plugin", plugin && plugin->name ? plugin->name : "",
                    plugin ? "'" : "");
    const char *name = plugin->name ? plugin->name : "?";
    int ok = plugin->ops != NULL;
    if (ok && plugin->kind == DAECL_KIND_CORRUPTION) {
        const daecl_corruption_ops *ops = plugin->ops;
        ok = ops->host_apply != NULL;
    } else if (ok) {
        const daecl_likelihood_ops *ops = plugin->ops;
        ok = ops->host_loss_grad && ops->host_mean && ops->host_sample &&
             ops->params_per_dim >= 1 && ops->params_per_dim <= 4;
    }
    if (!ok)
        return fail(c->host, err, DAECL_EPLUGIN,
                    "cpu backend: plugin '%s' lacks a required host op (or has params_per_dim "
                    "outside 1..4); fix the plugin's ops table",
                    name);
    if (n_params > DAECL_MAX_PACKED_PARAMS || (n_params > 0 && !params))
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: bind of plugin '%s' was given %zu packed parameters%s (at most "
                    "%d); " BUG_HINT,
                    name, n_params, params ? "" : " but no array", DAECL_MAX_PACKED_PARAMS);
    bound *b = calloc(1, sizeof *b);
    if (!b)
        return fail(c->host, err, DAECL_ENOMEM, "cpu backend: out of memory binding plugin '%s'",
                    name);
    b->plugin = plugin;
    if (n_params > 0)
        memcpy(b->params, params, n_params * sizeof *params);
    *out = b;
    return 0;
}

static void cpu_unbind(void *ctx, void *b)
{
    (void)ctx;
    free(b);
}

/* The bound plugin's ops of the wanted kind, or an error naming op. */
static const void *bound_ops(const cpu *c, const bound *b, uint32_t kind, const char *op,
                             daecl_err *err)
{
    if (b && b->plugin->kind == kind)
        return b->plugin->ops;
    fail(c->host, err, DAECL_EINVAL,
         "cpu backend: %s was given %s%s%s, not a bound %s plugin; " BUG_HINT, op,
         b ? "plugin '" : "nothing bound", b && b->plugin->name ? b->plugin->name : "",
         b ? "'" : "",
         kind == DAECL_KIND_CORRUPTION ? "corruption" : "likelihood");
    return NULL;
}

/* ---- plugins on chunks of rows -------------------------------------------------
 * A plugin's host ops treat rows independently (plugin.h), so the backend
 * cuts the rows into chunks (daecl__cpu_rows_per_chunk: by size alone) and
 * the pool runs each as one call, its pointers and the noise key's pos0
 * moved to the chunk: the output is the same bits for any thread count.
 * Every chunk runs; when several fail, the lowest chunk's sentence is kept,
 * so the error does not depend on which thread ran what. */
enum { OP_CORRUPT, OP_LOSS_GRAD, OP_MEAN, OP_SAMPLE };

typedef struct row_job {
    int op;
    const bound *b;
    size_t dim, k;        /* values per row: dim in x, k * dim in a */
    const float *x, *a;
    float *out, *nll, *grad;
    float scale;
    const daecl_noise_key *key;
    const daecl_shape *shape;
    size_t n_rows, rows;  /* rows in all, and per chunk */
    /* the lowest failing chunk (SIZE_MAX: none), its status and sentence */
    pthread_mutex_t lock;
    size_t failed;
    int rc;
    daecl_err e;
} row_job;

static int run_rows(const row_job *j, size_t r0, size_t n, daecl_err *err)
{
    const void *ops = j->b->plugin->ops;
    const float *p = j->b->params;
    size_t d = j->dim, kd = j->k * j->dim;
    daecl_noise_key key;
    if (j->key) {
        key = *j->key;
        key.pos0 += (uint32_t)r0;
    }
    switch (j->op) {
    case OP_CORRUPT:
        return ((const daecl_corruption_ops *)ops)
            ->host_apply(j->x + r0 * d, j->out + r0 * d, n, d, j->shape, &key, p, err);
    case OP_LOSS_GRAD:
        return ((const daecl_likelihood_ops *)ops)
            ->host_loss_grad(j->x + r0 * d, j->a + r0 * kd, n, d, p, j->scale,
                             j->nll ? j->nll + r0 : NULL, j->grad ? j->grad + r0 * kd : NULL, err);
    case OP_MEAN:
        return ((const daecl_likelihood_ops *)ops)
            ->host_mean(j->a + r0 * kd, j->out + r0 * d, n, d, p, err);
    default:
        return ((const daecl_likelihood_ops *)ops)
            ->host_sample(j->a + r0 * kd, j->out + r0 * d, n, d, &key, p, err);
    }
}

/* Names the failing plugin op in the sentence, as the core does for a
 * plugin it runs itself (core/session.c), so a plugin's failure reads the
 * same on every backend. */
static int plugin_failed(const cpu *c, const row_job *j, int rc, daecl_err *err)
{
    static const char *const op_name[] = {"host_apply", "host_loss_grad", "host_mean",
                                          "host_sample"};
    char msg[DAECL_ERR_MSG_MAX];
    if (err && err->msg[0])
        snprintf(msg, sizeof msg, "%s", err->msg);
    else
        snprintf(msg, sizeof msg, "it returned status %d without a sentence", rc);
    return fail(c->host, err, rc == DAECL_ENOMEM ? rc : DAECL_EPLUGIN,
                "%s plugin '%s' failed in %s: %s",
                j->op == OP_CORRUPT ? "corruption" : "likelihood", j->b->plugin->name,
                op_name[j->op], msg);
}

static void rows_chunk(void *arg, size_t chunk)
{
    row_job *j = arg;
    size_t r0 = chunk * j->rows, n = j->n_rows - r0 < j->rows ? j->n_rows - r0 : j->rows;
    daecl_err e = {0};
    int rc = run_rows(j, r0, n, &e);
    if (!rc)
        return;
    pthread_mutex_lock(&j->lock);
    if (chunk < j->failed) {
        j->failed = chunk;
        j->rc = rc;
        j->e = e;
    }
    pthread_mutex_unlock(&j->lock);
}

static int run_rows_parallel(const cpu *c, row_job *j, size_t n_rows, daecl_err *err)
{
    j->n_rows = n_rows;
    j->rows = daecl__cpu_rows_per_chunk(n_rows, j->dim * j->k);
    size_t chunks = n_rows ? (n_rows + j->rows - 1) / j->rows : 1;
    if (chunks <= 1) {
        int rc = run_rows(j, 0, n_rows, err);
        return rc ? plugin_failed(c, j, rc, err) : 0;
    }
    j->failed = SIZE_MAX;
    pthread_mutex_init(&j->lock, NULL);
    daecl_pool_run(c->pool, chunks, rows_chunk, j);
    pthread_mutex_destroy(&j->lock);
    if (j->failed == SIZE_MAX)
        return 0;
    if (err)
        *err = j->e;
    return plugin_failed(c, j, j->rc, err);
}

static int cpu_corrupt(void *ctx, void *bp, daecl_slice x, daecl_slice xt, size_t n_rows,
                       size_t dim, const daecl_shape *shape, const daecl_noise_key *key,
                       daecl_err *err)
{
    cpu *c = ctx;
    const bound *b = bp;
    const daecl_corruption_ops *ops = bound_ops(c, b, DAECL_KIND_CORRUPTION, "corrupt", err);
    if (!ops)
        return DAECL_EINVAL;
    if (!key || !shape)
        return fail(c->host, err, DAECL_EINVAL, "cpu backend: corrupt was given no %s; " BUG_HINT,
                    key ? "example shape" : "noise key");
    size_t n;
    float *px, *pxt;
    int rc;
    if ((rc = mul_size(c, n_rows, dim, &n, "corrupt", err)) ||
        (rc = span(c, x, n, "corrupt", "x", &px, err)) ||
        (rc = span(c, xt, n, "corrupt", "xt", &pxt, err)))
        return rc;
    (void)ops;
    row_job j = {.op = OP_CORRUPT, .b = b, .dim = dim, .k = 1, .x = px, .out = pxt, .key = key,
                 .shape = shape};
    return run_rows_parallel(c, &j, n_rows, err);
}

static int cpu_lik_loss_grad(void *ctx, void *bp, daecl_slice x, daecl_slice a, size_t n_rows,
                             size_t dim, float scale, daecl_slice nll_rows, daecl_slice grad,
                             daecl_err *err)
{
    cpu *c = ctx;
    const bound *b = bp;
    const daecl_likelihood_ops *ops = bound_ops(c, b, DAECL_KIND_LIKELIHOOD, "lik_loss_grad", err);
    if (!ops)
        return DAECL_EINVAL;
    size_t n, na;
    float *px, *pa, *pn, *pg;
    int rc;
    if ((rc = mul_size(c, n_rows, dim, &n, "lik_loss_grad", err)) ||
        (rc = mul_size(c, n, ops->params_per_dim, &na, "lik_loss_grad", err)) ||
        (rc = span(c, x, n, "lik_loss_grad", "x", &px, err)) ||
        (rc = span(c, a, na, "lik_loss_grad", "a", &pa, err)) ||
        (rc = span_opt(c, nll_rows, n_rows, "lik_loss_grad", "nll_rows", &pn, err)) ||
        (rc = span_opt(c, grad, na, "lik_loss_grad", "grad", &pg, err)))
        return rc;
    row_job j = {.op = OP_LOSS_GRAD, .b = b, .dim = dim, .k = ops->params_per_dim, .x = px,
                 .a = pa, .nll = pn, .grad = pg, .scale = scale};
    return run_rows_parallel(c, &j, n_rows, err);
}

static int cpu_lik_mean(void *ctx, void *bp, daecl_slice a, size_t n_rows, size_t dim,
                        daecl_slice mean, daecl_err *err)
{
    cpu *c = ctx;
    const bound *b = bp;
    const daecl_likelihood_ops *ops = bound_ops(c, b, DAECL_KIND_LIKELIHOOD, "lik_mean", err);
    if (!ops)
        return DAECL_EINVAL;
    size_t n, na;
    float *pa, *pm;
    int rc;
    if ((rc = mul_size(c, n_rows, dim, &n, "lik_mean", err)) ||
        (rc = mul_size(c, n, ops->params_per_dim, &na, "lik_mean", err)) ||
        (rc = span(c, a, na, "lik_mean", "a", &pa, err)) ||
        (rc = span(c, mean, n, "lik_mean", "mean", &pm, err)))
        return rc;
    row_job j = {.op = OP_MEAN, .b = b, .dim = dim, .k = ops->params_per_dim, .a = pa, .out = pm};
    return run_rows_parallel(c, &j, n_rows, err);
}

static int cpu_lik_sample(void *ctx, void *bp, daecl_slice a, size_t n_rows, size_t dim,
                          const daecl_noise_key *key, daecl_slice out, daecl_err *err)
{
    cpu *c = ctx;
    const bound *b = bp;
    const daecl_likelihood_ops *ops = bound_ops(c, b, DAECL_KIND_LIKELIHOOD, "lik_sample", err);
    if (!ops)
        return DAECL_EINVAL;
    if (!key)
        return fail(c->host, err, DAECL_EINVAL,
                    "cpu backend: lik_sample was given no noise key; " BUG_HINT);
    size_t n, na;
    float *pa, *po;
    int rc;
    if ((rc = mul_size(c, n_rows, dim, &n, "lik_sample", err)) ||
        (rc = mul_size(c, n, ops->params_per_dim, &na, "lik_sample", err)) ||
        (rc = span(c, a, na, "lik_sample", "a", &pa, err)) ||
        (rc = span(c, out, n, "lik_sample", "out", &po, err)))
        return rc;
    row_job j = {.op = OP_SAMPLE, .b = b, .dim = dim, .k = ops->params_per_dim, .a = pa,
                 .out = po, .key = key};
    return run_rows_parallel(c, &j, n_rows, err);
}

static int cpu_softmax_xent(void *ctx, daecl_slice logits, daecl_slice labels, size_t n_rows,
                            size_t n_classes, float scale, daecl_slice loss_rows, daecl_slice grad,
                            daecl_err *err)
{
    cpu *c = ctx;
    size_t n;
    float *pz, *py, *pl, *pg;
    int rc;
    if ((rc = mul_size(c, n_rows, n_classes, &n, "softmax_xent", err)) ||
        (rc = span(c, logits, n, "softmax_xent", "logits", &pz, err)) ||
        (rc = span(c, labels, n_rows, "softmax_xent", "labels", &py, err)) ||
        (rc = span_opt(c, loss_rows, n_rows, "softmax_xent", "loss_rows", &pl, err)) ||
        (rc = span_opt(c, grad, n, "softmax_xent", "grad", &pg, err)))
        return rc;
    daecl__cpu_softmax_xent(pz, py, n_rows, n_classes, scale, pl, pg);
    return 0;
}

static int cpu_finish(void *ctx, daecl_err *err)
{
    (void)ctx;
    (void)err;
    return 0; /* every op ran before it returned */
}

/* ---- descriptor ------------------------------------------------------------ */

static const daecl_backend_ops ops = {
    .size = sizeof(daecl_backend_ops),
    .open = cpu_open,
    .close = cpu_close,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .write = cpu_write,
    .read = cpu_read,
    .copy = cpu_copy,
    .gemm = cpu_gemm,
    .bias_act = cpu_bias_act,
    .act_grad = cpu_act_grad,
    .col_sum = cpu_col_sum,
    .sum = cpu_sum,
    .gather = cpu_gather,
    .softmax_xent = cpu_softmax_xent,
    .optim_update = cpu_optim_update,
    .finish = cpu_finish,
    .fill = cpu_fill,
    .get_extension = cpu_get_extension,
    .bind = cpu_bind,
    .unbind = cpu_unbind,
    .corrupt = cpu_corrupt,
    .lik_loss_grad = cpu_lik_loss_grad,
    .lik_mean = cpu_lik_mean,
    .lik_sample = cpu_lik_sample,
};

static const daecl_param_spec params[] = {
    { .name = "threads",
      .type = DAECL_PARAM_INT,
      .def = { 0, 0 },
      .min = 0,
      .max = 1024,
      .doc = "threads the ops run on, the caller's included; 0 = the CPUs this process may "
             "use (its affinity mask, lowered to its cgroup's CPU quota, shared with the other "
             "MPI ranks on its node)" },
    { .name = "gemm",
      .type = DAECL_PARAM_ENUM,
      .def = { 0, 0 },
      .def_str = "auto",
      .choices = "auto|openblas|avx2|avx512",
      .doc = "GEMM implementation: daecl's own kernels for AVX-512 or AVX2 + FMA, OpenBLAS, "
             "or auto (the widest of daecl's kernels this CPU runs, OpenBLAS without AVX2)" },
};

static const daecl_plugin plugin = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_BACKEND),
    .name = "cpu",
    .version = "1.0.0",
    .summary = "reference backend: plain C on the host, GEMM by daecl's AVX2/AVX-512 kernels or "
               "OpenBLAS",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .init = cpu_init,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &plugin;
}
