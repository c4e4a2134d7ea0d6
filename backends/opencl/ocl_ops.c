/* daecl opencl backend — the built-in ops (kernels/ops.cl): building their
 * program at open, checking every slice against its buffer like the cpu
 * backend does, and enqueueing the kernels. Ops only enqueue: no host sync,
 * no allocation per call. */
#include <stdio.h>
#include <string.h>

#include "ocl.h"
#include "ops_cl.h" /* ops_src: kernels/clc_prelude.cl + kernels/ops.cl */

enum { ELEM = sizeof(float) }; /* every buffer element is 4 bytes */
enum { RUN = 8 }; /* elements per work-item of the element-wise kernels: kernels/ops.cl's */

/* Kernel names, in the order of the DAECL__K_* enum. */
static const char *const kernel_names[DAECL__K_COUNT] = {
    "bias_act",     "act_grad",  "col_sum",      "sum_all",          "gather",
    "optim_update", "mat_scale", "softmax_xent", "act_grad_col_sum",
};

size_t daecl__ocl_ops_parts(const char **parts, size_t max)
{
    if (max < 1)
        return 0;
    parts[0] = ops_src;
    return 1;
}

int daecl__ocl_ops_init(daecl__ocl *o, daecl_err *err)
{
    const char *parts[1];
    size_t n = daecl__ocl_ops_parts(parts, 1);
    int rc = daecl__ocl_program_get(o, "daecl-kernels", parts, n, &o->ops_program, err);
    for (int i = 0; rc == 0 && i < DAECL__K_COUNT; i++)
        rc = daecl__ocl_kernel_create(o, o->ops_program, kernel_names[i], &o->kern[i], err);
    return rc;
}

void daecl__ocl_ops_release(daecl__ocl *o)
{
    for (int i = 0; i < DAECL__K_COUNT; i++)
        daecl__ocl_kernel_release(&o->kern[i]);
    if (o->ops_program)
        clReleaseProgram(o->ops_program);
    o->ops_program = NULL;
}

/* ---- launching ---------------------------------------------------------------- */

static size_t ceil_pow2(size_t x)
{
    size_t p = 1;
    while (p < x && p <= ((size_t)-1) / 2)
        p *= 2;
    return p;
}

int daecl__ocl_launch(daecl__ocl *o, const daecl__ocl_kernel *k, const daecl__ocl_arg *args,
                      size_t n_args, unsigned dims, const size_t *global, const size_t *local,
                      daecl_err *err)
{
    int rc;
    for (size_t i = 0; i < n_args; i++)
        if ((rc = DAECL__OCL_CHECK(o, clSetKernelArg(k->k, (cl_uint)i, args[i].size, args[i].value),
                                   "clSetKernelArg", k->name, err)))
            return rc;
    size_t loc[2] = {1, 1}, glob[2] = {1, 1};
    for (unsigned d = 0; d < dims; d++)
        if (global[d] == 0)
            return 0; /* nothing to do */
    if (local) {
        for (unsigned d = 0; d < dims; d++)
            loc[d] = local[d];
    } else if (dims == 1) {
        loc[0] = k->wg;
    } else {
        /* (columns, rows): as many columns as fit, the rest of the group on
         * rows, so a narrow matrix still fills a group of k->wg. */
        loc[0] = ceil_pow2(global[0]) < k->wg ? ceil_pow2(global[0]) : k->wg;
        loc[1] = k->wg / loc[0];
        size_t rows = ceil_pow2(global[1]);
        if (loc[1] > rows)
            loc[1] = rows;
        if (loc[1] > o->max_item[1])
            loc[1] = o->max_item[1] ? o->max_item[1] : 1;
    }
    for (unsigned d = 0; d < dims; d++) {
        size_t g = (global[d] + loc[d] - 1) / loc[d] * loc[d];
        if (g < global[d])
            return daecl__ocl_fail(
                o->host, err, DAECL_EINVAL,
                "kernel %s was asked for %zu work-items, which overflows; " DAECL__OCL_BUG, k->name,
                global[d]);
        glob[d] = g;
    }
    return DAECL__OCL_CHECK(
        o,
        DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                          clEnqueueNDRangeKernel(o->queue, k->k, dims, NULL, glob, loc, 0, NULL,
                                                 NULL)),
        "clEnqueueNDRangeKernel", k->name, err);
}

/* Work-items for n elements in runs of RUN. */
static size_t runs(size_t n)
{
    return n / RUN + (n % RUN != 0);
}

/* A 1-D work-group size for `global` work-items of k that still leaves
 * two groups per compute unit where it can: POCL runs a group on one core,
 * so 98 work-items in one group of 256 would keep one core busy. */
static size_t spread(const daecl__ocl *o, const daecl__ocl_kernel *k, size_t global)
{
    size_t local = k->wg, want = 2 * (size_t)(o->info.compute_units ? o->info.compute_units : 1);
    while (local > 16 && (global + local - 1) / local < want)
        local /= 2;
    return local;
}

/* ---- checks -------------------------------------------------------------------- */

int daecl__ocl_span(const daecl__ocl *o, daecl_slice s, size_t n, const char *op, const char *what,
                    daecl_err *err)
{
    if (!s.buf)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: %s was given no %s buffer; " DAECL__OCL_BUG, op,
                               what);
    size_t have = s.buf->n_bytes / ELEM;
    if (s.off > have || n > have - s.off)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: %s needs %zu elements of %s from element %zu, "
                               "past the end of its buffer of %zu elements; " DAECL__OCL_BUG,
                               op, n, what, s.off, have);
    return 0;
}

int daecl__ocl_mul(const daecl__ocl *o, size_t a, size_t b, size_t *out, const char *op,
                   daecl_err *err)
{
    if (__builtin_mul_overflow(a, b, out))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: %s was asked for %zu x %zu elements, which "
                               "overflows; " DAECL__OCL_BUG,
                               op, a, b);
    return 0;
}

static int check_act(const daecl__ocl *o, daecl_act act, const char *op, daecl_err *err)
{
    if (act == DAECL_ACT_LINEAR || act == DAECL_ACT_SIGMOID || act == DAECL_ACT_TANH ||
        act == DAECL_ACT_RELU)
        return 0;
    return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                           "opencl backend: %s was given unknown activation %d; " DAECL__OCL_BUG,
                           op, (int)act);
}

/* ---- the ops ---------------------------------------------------------------------- */

int daecl__ocl_bias_act(void *ctx, daecl_slice z, daecl_slice bias, size_t n_rows, size_t dim,
                        daecl_act act, daecl_err *err)
{
    daecl__ocl *o = ctx;
    size_t n;
    int rc;
    if ((rc = check_act(o, act, "bias_act", err)) ||
        (rc = daecl__ocl_mul(o, n_rows, dim, &n, "bias_act", err)) ||
        (rc = daecl__ocl_span(o, z, n, "bias_act", "z", err)) ||
        (bias.buf && (rc = daecl__ocl_span(o, bias, dim, "bias_act", "bias", err))))
        return rc;
    /* z (n_rows, dim), bias (dim); without a bias z's buffer stands in (unread). */
    cl_mem zm = z.buf->mem, bm = bias.buf ? bias.buf->mem : z.buf->mem;
    cl_ulong z_off_elems = z.off, b_off_elems = bias.buf ? bias.off : 0, rows = n_rows, cols = dim;
    cl_int has_bias = bias.buf != NULL, a = (cl_int)act;
    daecl__ocl_arg args[] = {
        DAECL__ARG(zm),       DAECL__ARG(z_off_elems), DAECL__ARG(bm),   DAECL__ARG(b_off_elems),
        DAECL__ARG(has_bias), DAECL__ARG(rows),        DAECL__ARG(cols), DAECL__ARG(a)};
    size_t global[2] = {runs(dim), n_rows};
    return daecl__ocl_launch(o, &o->kern[DAECL__K_BIAS_ACT], args, DAECL__NARGS(args), 2, global,
                             NULL, err);
}

int daecl__ocl_act_grad(void *ctx, daecl_slice dh, daecl_slice h, size_t n, daecl_act act,
                        daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc;
    if ((rc = check_act(o, act, "act_grad", err)) ||
        (rc = daecl__ocl_span(o, dh, n, "act_grad", "dh", err)) ||
        (rc = daecl__ocl_span(o, h, n, "act_grad", "h", err)))
        return rc;
    if (act == DAECL_ACT_LINEAR)
        return 0; /* linear' = 1: dh stays */
    cl_mem dm = dh.buf->mem, hm = h.buf->mem;
    cl_ulong d_off_elems = dh.off, h_off_elems = h.off, count = n;
    cl_int a = (cl_int)act;
    daecl__ocl_arg args[] = {DAECL__ARG(dm),          DAECL__ARG(d_off_elems), DAECL__ARG(hm),
                             DAECL__ARG(h_off_elems), DAECL__ARG(count),       DAECL__ARG(a)};
    const daecl__ocl_kernel *k = &o->kern[DAECL__K_ACT_GRAD];
    size_t global = runs(n), local = spread(o, k, global);
    return daecl__ocl_launch(o, k, args, DAECL__NARGS(args), 1, &global, &local, err);
}

int daecl__ocl_col_sum(void *ctx, daecl_slice src, size_t n_rows, size_t dim, float beta,
                       daecl_slice dst, daecl_err *err)
{
    daecl__ocl *o = ctx;
    size_t n;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, "col_sum", err)) ||
        (rc = daecl__ocl_span(o, src, n, "col_sum", "src", err)) ||
        (rc = daecl__ocl_span(o, dst, dim, "col_sum", "dst", err)))
        return rc;
    /* src (n_rows, dim), dst (dim). */
    cl_mem sm = src.buf->mem, dm = dst.buf->mem;
    cl_ulong s_off_elems = src.off, d_off_elems = dst.off, rows = n_rows, cols = dim;
    cl_float b = beta;
    daecl__ocl_arg args[] = {DAECL__ARG(sm),         DAECL__ARG(s_off_elems), DAECL__ARG(rows),
                             DAECL__ARG(cols),       DAECL__ARG(b),           DAECL__ARG(dm),
                             DAECL__ARG(d_off_elems)};
    const daecl__ocl_kernel *k = &o->kern[DAECL__K_COL_SUM];
    size_t global = runs(dim), local = spread(o, k, global);
    return daecl__ocl_launch(o, k, args, DAECL__NARGS(args), 1, &global, &local, err);
}

int daecl__ocl_act_grad_col_sum(void *ctx, daecl_slice dh, daecl_slice h, size_t n_rows, size_t dim,
                                daecl_act act, float beta, daecl_slice dst, daecl_err *err)
{
    daecl__ocl *o = ctx;
    size_t n;
    int rc;
    if ((rc = check_act(o, act, "act_grad_col_sum", err)) ||
        (rc = daecl__ocl_mul(o, n_rows, dim, &n, "act_grad_col_sum", err)) ||
        (rc = daecl__ocl_span(o, dh, n, "act_grad_col_sum", "dh", err)) ||
        (rc = daecl__ocl_span(o, h, n, "act_grad_col_sum", "h", err)) ||
        (rc = daecl__ocl_span(o, dst, dim, "act_grad_col_sum", "dst", err)))
        return rc;
    /* dh and h (n_rows, dim), dst (dim). */
    cl_mem dm = dh.buf->mem, hm = h.buf->mem, sm = dst.buf->mem;
    cl_ulong d_off_elems = dh.off, h_off_elems = h.off, s_off_elems = dst.off, rows = n_rows,
             cols = dim;
    cl_int a = (cl_int)act;
    cl_float b = beta;
    daecl__ocl_arg args[] = { DAECL__ARG(dm),          DAECL__ARG(d_off_elems), DAECL__ARG(hm),
                              DAECL__ARG(h_off_elems), DAECL__ARG(rows),        DAECL__ARG(cols),
                              DAECL__ARG(a),           DAECL__ARG(b),           DAECL__ARG(sm),
                              DAECL__ARG(s_off_elems) };
    const daecl__ocl_kernel *k = &o->kern[DAECL__K_ACT_GRAD_COL_SUM];
    size_t global = runs(dim), local = spread(o, k, global);
    return daecl__ocl_launch(o, k, args, DAECL__NARGS(args), 1, &global, &local, err);
}

int daecl__ocl_sum(void *ctx, daecl_slice src, size_t n, daecl_slice dst, daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc;
    if ((rc = daecl__ocl_span(o, src, n, "sum", "src", err)) ||
        (rc = daecl__ocl_span(o, dst, 1, "sum", "dst", err)))
        return rc;
    cl_mem sm = src.buf->mem, dm = dst.buf->mem;
    cl_ulong s_off_elems = src.off, d_off_elems = dst.off, count = n;
    daecl__ocl_arg args[] = {DAECL__ARG(sm), DAECL__ARG(s_off_elems), DAECL__ARG(count),
                             DAECL__ARG(dm), DAECL__ARG(d_off_elems)};
    /* One work-group of the kernel's fixed size: the summation order (and so
     * the result) is the same at every call on this device. */
    const daecl__ocl_kernel *k = &o->kern[DAECL__K_SUM];
    size_t one_group = k->wg;
    return daecl__ocl_launch(o, k, args, DAECL__NARGS(args), 1, &one_group, &one_group, err);
}

int daecl__ocl_gather(void *ctx, daecl_slice data, size_t dim, daecl_slice idx, size_t n_rows,
                      daecl_slice out, daecl_err *err)
{
    daecl__ocl *o = ctx;
    size_t n;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, dim, &n, "gather", err)) ||
        (rc = daecl__ocl_span(o, data, 0, "gather", "data", err)) ||
        (rc = daecl__ocl_span(o, idx, n_rows, "gather", "idx", err)) ||
        (rc = daecl__ocl_span(o, out, n, "gather", "out", err)))
        return rc;
    /* data (n_data_rows, dim) from data.off on, idx (n_rows) uint32, out
     * (n_rows, dim); the kernel checks each index against n_data_rows. */
    size_t n_data_rows = dim ? (data.buf->n_bytes / ELEM - data.off) / dim : 0;
    cl_mem dm = data.buf->mem, im = idx.buf->mem, om = out.buf->mem;
    cl_ulong d_off_elems = data.off, d_rows = n_data_rows, cols = dim, i_off_elems = idx.off,
             rows = n_rows, o_off_elems = out.off;
    daecl__ocl_arg args[] = {DAECL__ARG(dm),   DAECL__ARG(d_off_elems), DAECL__ARG(d_rows),
                             DAECL__ARG(cols), DAECL__ARG(im),          DAECL__ARG(i_off_elems),
                             DAECL__ARG(rows), DAECL__ARG(om),          DAECL__ARG(o_off_elems)};
    size_t global[2] = {runs(dim), n_rows};
    return daecl__ocl_launch(o, &o->kern[DAECL__K_GATHER], args, DAECL__NARGS(args), 2, global,
                             NULL, err);
}

/* optim_update with weight decay on the first n_decay parameters only. */
static int update(daecl__ocl *o, const daecl_optim_step *step, size_t n_decay, daecl_slice w,
                  daecl_slice g, daecl_slice s1, daecl_slice s2, size_t n, daecl_err *err)
{
    if (!step || step->kind > DAECL_OPTIM_ADAMW)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: optim_update was given %s; " DAECL__OCL_BUG,
                               step ? "an unknown optimiser kind" : "no step");
    int adam = step->kind != DAECL_OPTIM_SGD;
    if (adam && !(step->bias_corr1 > 0.0f && step->bias_corr1 <= 1.0f && step->bias_corr2 > 0.0f &&
                  step->bias_corr2 <= 1.0f))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: optim_update was given bias corrections %g and "
                               "%g outside (0, 1]; " DAECL__OCL_BUG,
                               (double)step->bias_corr1, (double)step->bias_corr2);
    int rc;
    int use_s1 = adam || step->momentum != 0.0f;
    if ((rc = daecl__ocl_span(o, w, n, "optim_update", "w", err)) ||
        (rc = daecl__ocl_span(o, g, n, "optim_update", "g", err)) ||
        (use_s1 && (rc = daecl__ocl_span(o, s1, n, "optim_update",
                                         adam ? "m (s1)" : "velocity (s1)", err))) ||
        (adam && (rc = daecl__ocl_span(o, s2, n, "optim_update", "v (s2)", err))))
        return rc;
    /* w, g, s1, s2 are (n); unused state gets w's buffer, which the kernel
     * does not read for that step. */
    cl_mem wm = w.buf->mem, gm = g.buf->mem;
    cl_mem m1 = use_s1 ? s1.buf->mem : wm, m2 = adam ? s2.buf->mem : wm;
    cl_ulong w_off_elems = w.off, g_off_elems = g.off, s1_off_elems = use_s1 ? s1.off : 0,
             s2_off_elems = adam ? s2.off : 0, count = n, decayed = n_decay;
    cl_uint kind = step->kind, nesterov = step->nesterov != 0;
    cl_float lr = step->lr, mu = step->momentum, wd = step->weight_decay, b1 = step->beta1,
             b2 = step->beta2, eps = step->eps, bc1 = step->bias_corr1, bc2 = step->bias_corr2;
    daecl__ocl_arg args[] = {
        DAECL__ARG(wm),    DAECL__ARG(w_off_elems),  DAECL__ARG(gm),       DAECL__ARG(g_off_elems),
        DAECL__ARG(m1),    DAECL__ARG(s1_off_elems), DAECL__ARG(m2),       DAECL__ARG(s2_off_elems),
        DAECL__ARG(count), DAECL__ARG(decayed),      DAECL__ARG(kind),     DAECL__ARG(nesterov),
        DAECL__ARG(lr),
        DAECL__ARG(mu),    DAECL__ARG(wd),           DAECL__ARG(b1),       DAECL__ARG(b2),
        DAECL__ARG(eps),   DAECL__ARG(bc1),          DAECL__ARG(bc2)};
    const daecl__ocl_kernel *k = &o->kern[DAECL__K_OPTIM_UPDATE];
    size_t global = runs(n), local = spread(o, k, global);
    return daecl__ocl_launch(o, k, args, DAECL__NARGS(args), 1, &global, &local, err);
}

int daecl__ocl_optim_update(void *ctx, const daecl_optim_step *step, daecl_slice w, daecl_slice g,
                            daecl_slice s1, daecl_slice s2, size_t n, daecl_err *err)
{
    return update(ctx, step, n, w, g, s1, s2, n, err);
}

int daecl__ocl_optim_update_split(void *ctx, const daecl_optim_step *step, size_t n_decay,
                                  daecl_slice w, daecl_slice g, daecl_slice s1, daecl_slice s2,
                                  size_t n, daecl_err *err)
{
    daecl__ocl *o = ctx;
    if (n_decay > n)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: optim_update_split was given %zu decayed of %zu "
                               "parameters; " DAECL__OCL_BUG,
                               n_decay, n);
    return update(o, step, n_decay, w, g, s1, s2, n, err);
}

int daecl__ocl_mat_scale(daecl__ocl *o, daecl_slice c, size_t m, size_t n, size_t ldc, float beta,
                         daecl_err *err)
{
    cl_mem cm = c.buf->mem;
    cl_ulong c_off_elems = c.off, rows = m, cols = n, ld = ldc;
    cl_float b = beta;
    daecl__ocl_arg args[] = {DAECL__ARG(cm),   DAECL__ARG(c_off_elems), DAECL__ARG(rows),
                             DAECL__ARG(cols), DAECL__ARG(ld),          DAECL__ARG(b)};
    size_t global[2] = {n, m};
    return daecl__ocl_launch(o, &o->kern[DAECL__K_MAT_SCALE], args, DAECL__NARGS(args), 2, global,
                             NULL, err);
}

int daecl__ocl_softmax_xent(void *ctx, daecl_slice logits, daecl_slice labels, size_t n_rows,
                            size_t n_classes, float scale, daecl_slice loss_rows, daecl_slice grad,
                            daecl_err *err)
{
    daecl__ocl *o = ctx;
    size_t n;
    int rc;
    if ((rc = daecl__ocl_mul(o, n_rows, n_classes, &n, "softmax_xent", err)) ||
        (rc = daecl__ocl_span(o, logits, n, "softmax_xent", "logits", err)) ||
        (rc = daecl__ocl_span(o, labels, n_rows, "softmax_xent", "labels", err)) ||
        (loss_rows.buf && (rc = daecl__ocl_span(o, loss_rows, n_rows, "softmax_xent", "loss_rows",
                                                err))) ||
        (grad.buf && (rc = daecl__ocl_span(o, grad, n, "softmax_xent", "grad", err))))
        return rc;
    /* logits (n_rows, n_classes), labels (n_rows); an absent output gets the
     * logits' buffer, never written for it. */
    cl_mem zm = logits.buf->mem, ym = labels.buf->mem;
    cl_mem lm = loss_rows.buf ? loss_rows.buf->mem : zm, gm = grad.buf ? grad.buf->mem : zm;
    cl_ulong z_off_elems = logits.off, y_off_elems = labels.off, rows = n_rows, classes = n_classes,
             l_off_elems = loss_rows.buf ? loss_rows.off : 0, g_off_elems = grad.buf ? grad.off : 0;
    cl_float sc = scale;
    cl_int has_loss = loss_rows.buf != NULL, has_grad = grad.buf != NULL;
    daecl__ocl_arg args[] = {
        DAECL__ARG(zm),          DAECL__ARG(z_off_elems), DAECL__ARG(ym),
        DAECL__ARG(y_off_elems), DAECL__ARG(rows),        DAECL__ARG(classes),
        DAECL__ARG(sc),          DAECL__ARG(lm),          DAECL__ARG(l_off_elems),
        DAECL__ARG(has_loss),    DAECL__ARG(gm),          DAECL__ARG(g_off_elems),
        DAECL__ARG(has_grad)};
    return daecl__ocl_launch(o, &o->kern[DAECL__K_SOFTMAX_XENT], args, DAECL__NARGS(args), 1,
                             &n_rows, NULL, err);
}
