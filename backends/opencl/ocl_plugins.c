/* daecl opencl backend — corruption and likelihood plugins on the device:
 * bind (one program from the prelude, philox.h, the plugin's cl_source and a
 * wrapper from kernels/plugin_*.cl), their ops, and precompile. A plugin
 * without cl_source gets DAECL_ENOTSUP: the core runs its host ops instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/philox.h"
#include "ocl.h"
#include "plugin_corruption_cl.h" /* corruption_tmpl_src */
#include "plugin_head_cl.h"       /* plugin_head_src: prelude + philox.h */
#include "plugin_likelihood_cl.h" /* likelihood_tmpl_src */

enum { K_CORRUPT = 0, K_LOSS_GRAD = 0, K_MEAN = 1, K_SAMPLE = 2, K_LOSS_GRAD_SUMS = 3, MAX_KERNELS = 4 };
enum { CORRUPT_RUN = 16 }; /* elements per work-item: kernels/plugin_corruption.cl's */

/* A bound plugin: its program, kernels and parameters on the device. */
typedef struct bound {
    const daecl_plugin *plugin;
    unsigned k; /* params_per_dim; 0 for a corruption */
    cl_program program;
    daecl__ocl_kernel kern[MAX_KERNELS];
    cl_mem params; /* DAECL_MAX_PACKED_PARAMS floats, zero-padded */
    char name[96]; /* "corruption/masking", the program's name in messages */
} bound;

/* The source parts of a plugin's program: the key of its binary hashes
 * these, so bind and precompile must assemble them identically. k_line is
 * caller storage for the DAECL_LIK_K line. */
static size_t plugin_parts(const daecl_plugin *p, const char **parts, char *k_line, size_t n_line)
{
    size_t n = 0;
    parts[n++] = plugin_head_src;
    if (p->kind == DAECL_KIND_CORRUPTION) {
        const daecl_corruption_ops *ops = p->ops;
        snprintf(k_line, n_line, "%s",
                 ops->granularity == DAECL_GRAIN_ROW ? "\n#define DAECL_CORRUPT_ROWWISE 1\n"
                                                     : "\n");
        parts[n++] = k_line;
        parts[n++] = ops->cl_source;
        parts[n++] = "\n";
        parts[n++] = corruption_tmpl_src;
    } else {
        const daecl_likelihood_ops *ops = p->ops;
        snprintf(k_line, n_line, "\n#define DAECL_LIK_K %u\n", ops->params_per_dim);
        parts[n++] = k_line;
        parts[n++] = ops->cl_source;
        parts[n++] = "\n";
        parts[n++] = likelihood_tmpl_src;
    }
    return n;
}

static void program_name(const daecl_plugin *p, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", p->kind == DAECL_KIND_CORRUPTION ? "corruption" : "likelihood",
             p->name ? p->name : "?");
}

/* Checks what bind needs of a plugin; ENOTSUP when it has no cl_source. */
static int check_plugin(const daecl__ocl *o, const daecl_plugin *p, daecl_err *err)
{
    if (!p || (p->kind != DAECL_KIND_CORRUPTION && p->kind != DAECL_KIND_LIKELIHOOD))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: bind was given %s%s%s, not a corruption or "
                               "likelihood plugin; " DAECL__OCL_BUG,
                               p ? "plugin '" : "no plugin", p && p->name ? p->name : "",
                               p ? "'" : "");
    const char *name = p->name ? p->name : "?";
    if (!p->ops)
        return daecl__ocl_fail(o->host, err, DAECL_EPLUGIN,
                               "opencl backend: plugin '%s' has no ops table; fix the plugin",
                               name);
    const char *src;
    if (p->kind == DAECL_KIND_CORRUPTION) {
        src = ((const daecl_corruption_ops *)p->ops)->cl_source;
    } else {
        const daecl_likelihood_ops *ops = p->ops;
        if (ops->params_per_dim < 1 || ops->params_per_dim > 4)
            return daecl__ocl_fail(o->host, err, DAECL_EPLUGIN,
                                   "opencl backend: likelihood plugin '%s' has params_per_dim "
                                   "%u, outside 1..4; fix the plugin's ops table",
                                   name, ops->params_per_dim);
        src = ops->cl_source;
    }
    if (!src)
        return daecl__ocl_fail(o->host, err, DAECL_ENOTSUP,
                               "opencl backend: plugin '%s' has no OpenCL source, so its host "
                               "ops run instead",
                               name);
    return 0;
}

/* Builds (or loads) the program of a checked plugin into *prog. */
static int plugin_program(daecl__ocl *o, const daecl_plugin *p, cl_program *prog, daecl_err *err)
{
    const char *parts[8];
    char k_line[64], name[96];
    size_t n = plugin_parts(p, parts, k_line, sizeof k_line);
    program_name(p, name, sizeof name);
    return daecl__ocl_program_get(o, name, parts, n, prog, err);
}

int daecl__ocl_bind(void *ctx, const daecl_plugin *plugin, const float *params, size_t n_params,
                    void **out, daecl_err *err)
{
    daecl__ocl *o = ctx;
    *out = NULL;
    int rc = check_plugin(o, plugin, err);
    if (rc)
        return rc;
    if (n_params > DAECL_MAX_PACKED_PARAMS || (n_params > 0 && !params))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: bind of plugin '%s' was given %zu packed "
                               "parameters%s (at most %d); " DAECL__OCL_BUG,
                               plugin->name, n_params, params ? "" : " but no array",
                               DAECL_MAX_PACKED_PARAMS);
    bound *b = calloc(1, sizeof *b);
    if (!b)
        return daecl__ocl_fail(o->host, err, DAECL_ENOMEM,
                               "opencl backend: out of memory binding plugin '%s'", plugin->name);
    b->plugin = plugin;
    program_name(plugin, b->name, sizeof b->name);
    if ((rc = plugin_program(o, plugin, &b->program, err)))
        goto fail;
    if (plugin->kind == DAECL_KIND_CORRUPTION) {
        rc =
            daecl__ocl_kernel_create(o, b->program, "daecl_corrupt_rows", &b->kern[K_CORRUPT], err);
    } else {
        b->k = ((const daecl_likelihood_ops *)plugin->ops)->params_per_dim;
        if ((rc = daecl__ocl_kernel_create(o, b->program, "daecl_lik_loss_grad",
                                           &b->kern[K_LOSS_GRAD], err)) ||
            (rc = daecl__ocl_kernel_create(o, b->program, "daecl_lik_mean_rows", &b->kern[K_MEAN],
                                           err)))
            goto fail;
        if ((rc = daecl__ocl_kernel_create(o, b->program, "daecl_lik_sample_rows",
                                           &b->kern[K_SAMPLE], err)))
            goto fail;
        rc = daecl__ocl_kernel_create(o, b->program, "daecl_lik_loss_grad_sums",
                                      &b->kern[K_LOSS_GRAD_SUMS], err);
    }
    if (rc)
        goto fail;
    float packed[DAECL_MAX_PACKED_PARAMS] = {0};
    if (n_params > 0)
        memcpy(packed, params, n_params * sizeof *params);
    cl_int cr;
    b->params = DAECL__OCL_FAULTY_CREATE(o, DAECL__FAULT_ALLOC, &cr,
                                         clCreateBuffer(o->context,
                                                        CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                                        sizeof packed, packed, &cr));
    if ((rc = DAECL__OCL_CHECK(o, cr, "clCreateBuffer", b->name, err))) {
        b->params = NULL;
        goto fail;
    }
    daecl__ocl_log_counts(o);
    *out = b;
    return 0;
fail:
    daecl__ocl_unbind(o, b);
    return rc;
}

void daecl__ocl_unbind(void *ctx, void *bp)
{
    (void)ctx;
    bound *b = bp;
    if (!b)
        return;
    for (int i = 0; i < MAX_KERNELS; i++)
        daecl__ocl_kernel_release(&b->kern[i]);
    if (b->program)
        clReleaseProgram(b->program);
    if (b->params)
        clReleaseMemObject(b->params);
    free(b);
}

/* The bound plugin of the wanted kind, or an error naming op. */
static bound *bound_of(const daecl__ocl *o, void *bp, uint32_t kind, const char *op, daecl_err *err)
{
    bound *b = bp;
    if (b && b->plugin->kind == kind)
        return b;
    daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                    "opencl backend: %s was given %s%s%s, not a bound %s plugin; " DAECL__OCL_BUG,
                    op, b ? "plugin '" : "nothing bound",
                    b && b->plugin->name ? b->plugin->name : "", b ? "'" : "",
                    kind == DAECL_KIND_CORRUPTION ? "corruption" : "likelihood");
    return NULL;
}

int daecl__ocl_corrupt(void *ctx, void *bp, daecl_slice x, daecl_slice xt, size_t n_rows,
                       size_t dim, const daecl_shape *shape, const daecl_noise_key *key,
                       daecl_err *err)
{
    daecl__ocl *o = ctx;
    bound *b = bound_of(o, bp, DAECL_KIND_CORRUPTION, "corrupt", err);
    if (!b)
        return DAECL_EINVAL;
    if (!key || !shape || shape->rank < 1 || shape->rank > DAECL_MAX_RANK)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: corrupt was given %s; " DAECL__OCL_BUG,
                               !key ? "no noise key" : "no valid example shape");
    size_t n;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, "corrupt", err)) ||
        (rc = daecl__ocl_span(o, x, n, "corrupt", "x", err)) ||
        (rc = daecl__ocl_span(o, xt, n, "corrupt", "xt", err)))
        return rc;
    if (n == 0)
        return 0;
    /* x, xt (n_rows, dim). */
    cl_mem xm = x.buf->mem, tm = xt.buf->mem;
    cl_ulong x_off_elems = x.off, t_off_elems = xt.off, rows = n_rows, cols = dim;
    cl_uint seed_lo = (cl_uint)key->seed, seed_hi = (cl_uint)(key->seed >> 32),
            word3 = daecl_noise_word3(key->stream, key->stage, key->substep), epoch = key->epoch,
            pos0 = key->pos0, rank = shape->rank;
    cl_uint4 sh;
    for (unsigned i = 0; i < 4; i++)
        sh.s[i] = i < shape->rank ? shape->dims[i] : 1u;
    daecl__ocl_arg args[] = {DAECL__ARG(xm),          DAECL__ARG(x_off_elems), DAECL__ARG(tm),
                             DAECL__ARG(t_off_elems), DAECL__ARG(rows),        DAECL__ARG(cols),
                             DAECL__ARG(seed_lo),     DAECL__ARG(seed_hi),     DAECL__ARG(word3),
                             DAECL__ARG(epoch),       DAECL__ARG(pos0),        DAECL__ARG(rank),
                             DAECL__ARG(sh),          DAECL__ARG(b->params)};
    /* Element-wise, a work-item takes a run of CORRUPT_RUN elements of a row;
     * row-granular, one element. */
    int rowwise = ((const daecl_corruption_ops *)b->plugin->ops)->granularity == DAECL_GRAIN_ROW;
    size_t global[2] = {rowwise ? dim : dim / CORRUPT_RUN + (dim % CORRUPT_RUN != 0), n_rows};
    return daecl__ocl_launch(o, &b->kern[K_CORRUPT], args, DAECL__NARGS(args), 2, global, NULL,
                             err);
}

int daecl__ocl_lik_loss_grad(void *ctx, void *bp, daecl_slice x, daecl_slice a, size_t n_rows,
                             size_t dim, float scale, daecl_slice nll_rows, daecl_slice grad,
                             daecl_err *err)
{
    daecl__ocl *o = ctx;
    bound *b = bound_of(o, bp, DAECL_KIND_LIKELIHOOD, "lik_loss_grad", err);
    if (!b)
        return DAECL_EINVAL;
    size_t n, na;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, "lik_loss_grad", err)) ||
        (rc = daecl__ocl_mul(o, n, b->k, &na, "lik_loss_grad", err)) ||
        (rc = daecl__ocl_span(o, x, n, "lik_loss_grad", "x", err)) ||
        (rc = daecl__ocl_span(o, a, na, "lik_loss_grad", "a", err)) ||
        (nll_rows.buf &&
         (rc = daecl__ocl_span(o, nll_rows, n_rows, "lik_loss_grad", "nll_rows", err))) ||
        (grad.buf && (rc = daecl__ocl_span(o, grad, na, "lik_loss_grad", "grad", err))))
        return rc;
    if ((!nll_rows.buf && !grad.buf) || n_rows == 0)
        return 0;
    /* x (n_rows, dim), a and grad (n_rows, k*dim), nll_rows (n_rows); an
     * absent output gets a's buffer, which the kernel then never writes. */
    cl_mem xm = x.buf->mem, am = a.buf->mem;
    cl_mem nm = nll_rows.buf ? nll_rows.buf->mem : am, gm = grad.buf ? grad.buf->mem : am;
    cl_ulong x_off_elems = x.off, a_off_elems = a.off, rows = n_rows, cols = dim,
             n_off_elems = nll_rows.buf ? nll_rows.off : 0, g_off_elems = grad.buf ? grad.off : 0;
    cl_float s = scale;
    cl_int want_nll = nll_rows.buf != NULL, want_grad = grad.buf != NULL;
    daecl__ocl_arg args[] = {DAECL__ARG(xm),          DAECL__ARG(x_off_elems), DAECL__ARG(am),
                             DAECL__ARG(a_off_elems), DAECL__ARG(rows),        DAECL__ARG(cols),
                             DAECL__ARG(s),           DAECL__ARG(want_nll),    DAECL__ARG(nm),
                             DAECL__ARG(n_off_elems), DAECL__ARG(want_grad),   DAECL__ARG(gm),
                             DAECL__ARG(g_off_elems), DAECL__ARG(b->params)};
    /* One work-group per row, of 32 work-items (a power of two, as the
     * kernel's reduction needs; fewer where the kernel allows fewer): POCL
     * runs each level of the group's reduction tree as a loop over all its
     * work-items, and 256 of them made R1's loss about 12% slower than 32
     * or 16 (throwaway timing on POCL, under load). */
    const daecl__ocl_kernel *k = &b->kern[K_LOSS_GRAD];
    size_t local = 32, global;
    while (local > 1 && local > k->wg)
        local /= 2;
    if ((rc = daecl__ocl_mul(o, n_rows, local, &global, "lik_loss_grad", err)))
        return rc;
    return daecl__ocl_launch(o, k, args, DAECL__NARGS(args), 1, &global, &local, err);
}

int daecl__ocl_lik_loss_grad_sums(void *ctx, void *bp, daecl_slice x, daecl_slice a,
                                  size_t n_rows, size_t sum_rows, size_t dim, float scale,
                                  daecl_slice grad, daecl_slice grad_sums, daecl_slice nll_sums,
                                  daecl_err *err)
{
    daecl__ocl *o = ctx;
    const char *op = "lik_loss_grad_sums";
    bound *b = bound_of(o, bp, DAECL_KIND_LIKELIHOOD, op, err);
    if (!b)
        return DAECL_EINVAL;
    size_t n, na, nk;
    int rc;
    if (sum_rows > n_rows)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: %s was asked to sum %zu of %zu rows; " DAECL__OCL_BUG,
                               op, sum_rows, n_rows);
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, op, err)) ||
        (rc = daecl__ocl_mul(o, n, b->k, &na, op, err)) ||
        (rc = daecl__ocl_mul(o, dim, b->k, &nk, op, err)) ||
        (rc = daecl__ocl_span(o, x, n, op, "x", err)) ||
        (rc = daecl__ocl_span(o, a, na, op, "a", err)) ||
        (rc = daecl__ocl_span(o, grad, na, op, "grad", err)) ||
        (rc = daecl__ocl_span(o, grad_sums, nk, op, "grad_sums", err)) ||
        (rc = daecl__ocl_span(o, nll_sums, dim, op, "nll_sums", err)))
        return rc;
    if (dim == 0)
        return 0;
    /* x (n_rows, dim), a and grad (n_rows, k*dim), grad_sums (k*dim),
     * nll_sums (dim); zero rows leave zero sums. */
    cl_mem xm = x.buf->mem, am = a.buf->mem, gm = grad.buf->mem, sm = grad_sums.buf->mem,
           nm = nll_sums.buf->mem;
    cl_ulong x_off_elems = x.off, a_off_elems = a.off, rows = n_rows, summed = sum_rows,
             cols = dim, g_off_elems = grad.off, s_off_elems = grad_sums.off,
             n_off_elems = nll_sums.off;
    cl_float s = scale;
    daecl__ocl_arg args[] = {DAECL__ARG(xm),          DAECL__ARG(x_off_elems), DAECL__ARG(am),
                             DAECL__ARG(a_off_elems), DAECL__ARG(rows),        DAECL__ARG(summed),
                             DAECL__ARG(cols),        DAECL__ARG(s),           DAECL__ARG(gm),
                             DAECL__ARG(g_off_elems), DAECL__ARG(sm),          DAECL__ARG(s_off_elems),
                             DAECL__ARG(nm),          DAECL__ARG(n_off_elems), DAECL__ARG(b->params)};
    size_t global = dim;
    return daecl__ocl_launch(o, &b->kern[K_LOSS_GRAD_SUMS], args, DAECL__NARGS(args), 1, &global,
                             NULL, err);
}

int daecl__ocl_lik_mean(void *ctx, void *bp, daecl_slice a, size_t n_rows, size_t dim,
                        daecl_slice mean, daecl_err *err)
{
    daecl__ocl *o = ctx;
    bound *b = bound_of(o, bp, DAECL_KIND_LIKELIHOOD, "lik_mean", err);
    if (!b)
        return DAECL_EINVAL;
    size_t n, na;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, "lik_mean", err)) ||
        (rc = daecl__ocl_mul(o, n, b->k, &na, "lik_mean", err)) ||
        (rc = daecl__ocl_span(o, a, na, "lik_mean", "a", err)) ||
        (rc = daecl__ocl_span(o, mean, n, "lik_mean", "mean", err)))
        return rc;
    cl_mem am = a.buf->mem, mm = mean.buf->mem;
    cl_ulong a_off_elems = a.off, rows = n_rows, cols = dim, m_off_elems = mean.off;
    daecl__ocl_arg args[] = {DAECL__ARG(am),       DAECL__ARG(a_off_elems), DAECL__ARG(rows),
                             DAECL__ARG(cols),     DAECL__ARG(mm),          DAECL__ARG(m_off_elems),
                             DAECL__ARG(b->params)};
    size_t global[2] = {dim, n_rows};
    return daecl__ocl_launch(o, &b->kern[K_MEAN], args, DAECL__NARGS(args), 2, global, NULL, err);
}

int daecl__ocl_lik_sample(void *ctx, void *bp, daecl_slice a, size_t n_rows, size_t dim,
                          const daecl_noise_key *key, daecl_slice out, daecl_err *err)
{
    daecl__ocl *o = ctx;
    bound *b = bound_of(o, bp, DAECL_KIND_LIKELIHOOD, "lik_sample", err);
    if (!b)
        return DAECL_EINVAL;
    if (!key)
        return daecl__ocl_fail(
            o->host, err, DAECL_EINVAL,
            "opencl backend: lik_sample was given no noise key; " DAECL__OCL_BUG);
    size_t n, na;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, "lik_sample", err)) ||
        (rc = daecl__ocl_mul(o, n, b->k, &na, "lik_sample", err)) ||
        (rc = daecl__ocl_span(o, a, na, "lik_sample", "a", err)) ||
        (rc = daecl__ocl_span(o, out, n, "lik_sample", "out", err)))
        return rc;
    cl_mem am = a.buf->mem, om = out.buf->mem;
    cl_ulong a_off_elems = a.off, rows = n_rows, cols = dim, o_off_elems = out.off;
    cl_uint seed_lo = (cl_uint)key->seed, seed_hi = (cl_uint)(key->seed >> 32),
            word3 = daecl_noise_word3(key->stream, key->stage, key->substep), epoch = key->epoch,
            pos0 = key->pos0;
    daecl__ocl_arg args[] = {DAECL__ARG(am),      DAECL__ARG(a_off_elems), DAECL__ARG(rows),
                             DAECL__ARG(cols),    DAECL__ARG(om),          DAECL__ARG(o_off_elems),
                             DAECL__ARG(seed_lo), DAECL__ARG(seed_hi),     DAECL__ARG(word3),
                             DAECL__ARG(epoch),   DAECL__ARG(pos0),        DAECL__ARG(b->params)};
    size_t global[2] = {dim, n_rows};
    return daecl__ocl_launch(o, &b->kern[K_SAMPLE], args, DAECL__NARGS(args), 2, global, NULL, err);
}

int daecl__ocl_precompile(void *ctx, const daecl_plugin *const *plugins, size_t n, const char *dir,
                          daecl_err *err)
{
    daecl__ocl *o = ctx;
    if (!dir || !*dir)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: precompile was given no folder; give --out DIR");
    const char *parts[8];
    char k_line[64], name[96];
    /* The op kernels (built at open) and the daecl GEMM, which the
     * binaries path uses (and, opened with gemm: daecl_cpu, its CPU
     * variant, which binaries with gemm: daecl_cpu use). */
    size_t n_parts = daecl__ocl_ops_parts(parts, 8);
    int rc = daecl__ocl_program_save(o, "daecl-kernels", parts, n_parts, o->ops_program, dir, err);
    if (rc)
        return rc;
    if ((rc = daecl__ocl_gemm_init(o, err)))
        return rc;
    n_parts = daecl__ocl_gemm_parts(parts, 8);
    if ((rc = daecl__ocl_program_save(o, "daecl-gemm", parts, n_parts, o->gemm_program, dir, err)))
        return rc;
    if (o->gemm_mode == DAECL__GEMM_DAECL_CPU) { /* the variant `gemm: daecl_cpu` runs */
        const daecl__ocl_cpugemm *g = &o->cpu_gemm[o->cpu_gemm_fixed];
        char defines[128];
        n_parts = daecl__ocl_gemm_cpu_parts(&g->var, defines, sizeof defines, parts, 8);
        if ((rc = daecl__ocl_program_save(o, "daecl-gemm-cpu", parts, n_parts, g->program, dir,
                                          err)))
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const daecl_plugin *p = plugins[i];
        if (!p || (p->kind != DAECL_KIND_CORRUPTION && p->kind != DAECL_KIND_LIKELIHOOD))
            continue; /* backends and comm plugins have no device program */
        daecl_err why = {0};
        rc = check_plugin(o, p, &why);
        if (rc == DAECL_ENOTSUP) {
            o->host->log(DAECL_LOG_DEBUG, "opencl", "precompile: %s", why.msg);
            continue;
        }
        if (rc) {
            *err = why;
            return rc;
        }
        cl_program prog = NULL;
        if ((rc = plugin_program(o, p, &prog, err)))
            return rc;
        n_parts = plugin_parts(p, parts, k_line, sizeof k_line);
        program_name(p, name, sizeof name);
        rc = daecl__ocl_program_save(o, name, parts, n_parts, prog, dir, err);
        clReleaseProgram(prog);
        if (rc)
            return rc;
    }
    daecl__ocl_log_counts(o);
    return 0;
}
