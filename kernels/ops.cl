/* daecl - the built-in op kernels of the opencl backend (backends/opencl/
 * ocl_ops.c enqueues them), after kernels/clc_prelude.cl. Each is the formula
 * of include/daecl/backend.h, checked against the cpu backend. Buffers come
 * with their offsets in elements (ulong); every kernel guards its global ids,
 * since global sizes are rounded up to the work-group size. Sums are
 * compensated (two-sum) in a fixed order, so results do not depend on the
 * work-group size and stay within a few float ulps of a double sum.
 *
 * The element-wise kernels give a work-item a run of RUN consecutive
 * elements of a row, as one float8 (vload8/vstore8) and a scalar tail where
 * the row ends inside a run: POCL runs a work-group as loops over its
 * work-items and leaves one element per work-item unvectorised. */
#define RUN 8

/* ---- compensated sums ----------------------------------------------------------- */

/* (s, c) += x by Knuth's two-sum: s + c holds the sum to about float
 * precision squared. FP_CONTRACT is off (prelude), so nothing is fused.
 * For float and, lane by lane, float8 (RUN columns at once). */
#define ACC_ADD(T, name)                                                                           \
    static inline void name(T *s, T *c, T x)                                                       \
    {                                                                                              \
        T t = *s + x;                                                                              \
        T bp = t - *s;                                                                             \
        T e = (*s - (t - bp)) + (x - bp);                                                          \
        *s = t;                                                                                    \
        *c = *c + e;                                                                               \
    }
ACC_ADD(float, acc_add)
ACC_ADD(float8, acc_add8)

/* (s, c) += (s2, c2). */
static inline void acc_merge(float *s, float *c, float s2, float c2)
{
    acc_add(s, c, s2);
    *c = *c + c2;
}

/* The sum's value; an infinite or NaN s is the answer as it is (the
 * compensation would turn inf into NaN). */
static inline float acc_value(float s, float c)
{
    return isfinite(s) ? s + c : s;
}

static inline float8 acc_value8(float8 s, float8 c)
{
    return select(s, s + c, isfinite(s));
}

/* ---- activations ------------------------------------------------------------------- */

enum { ACT_LINEAR = 0, ACT_SIGMOID = 1, ACT_TANH = 2, ACT_RELU = 3 };

/* sigmoid without overflow: for x < 0, e / (1 + e) with e = exp(x) <= 1;
 * NaN fails x >= 0 and stays NaN through exp. */
static inline float act_forward(float x, int act)
{
    if (act == ACT_SIGMOID) {
        if (x >= 0.0f)
            return 1.0f / (1.0f + exp(-x));
        float e = exp(x);
        return e / (1.0f + e);
    }
    if (act == ACT_TANH)
        return tanh(x);
    if (act == ACT_RELU)
        return x < 0.0f ? 0.0f : x; /* NaN passes: a diverging run must stop */
    return x;
}

/* act_forward on RUN lanes, the same operations lane by lane: exp(-|x|)
 * is exp(-x) for x >= 0 and exp(x) below; NaN takes the x < 0 lane. */
static inline float8 act_forward8(float8 x, int act)
{
    if (act == ACT_SIGMOID) {
        float8 e = exp(-fabs(x));
        return select(e / (1.0f + e), 1.0f / (1.0f + e), x >= 0.0f);
    }
    if (act == ACT_TANH)
        return tanh(x);
    if (act == ACT_RELU)
        return select(x, (float8)0.0f, x < 0.0f);
    return x;
}

/* The run of row r that starts at column j0 of a (n_rows, dim) matrix: its
 * length, RUN but where the row ends; 0 past the matrix. */
static inline uint run_len(ulong j0, ulong r, ulong n_rows, ulong dim)
{
    return j0 >= dim || r >= n_rows ? 0u : dim - j0 < RUN ? (uint)(dim - j0) : RUN;
}

/* z (n_rows, dim) = act(z + bias), bias (dim) when has_bias.
 * Global (ceil(dim / RUN), n_rows): a run of a row per work-item. */
__kernel void bias_act(__global float *z, ulong z_off, __global const float *bias,
                       ulong bias_off, int has_bias, ulong n_rows, ulong dim, int act)
{
    ulong j0 = get_global_id(0) * RUN, r = get_global_id(1);
    uint len = run_len(j0, r, n_rows, dim);
    __global float *zr = z + z_off + r * dim + j0;
    __global const float *br = bias + bias_off + j0;
    if (len == RUN) {
        float8 v = vload8(0, zr);
        if (has_bias)
            v = v + vload8(0, br);
        vstore8(act_forward8(v, act), 0, zr);
        return;
    }
    for (uint t = 0; t < len; t++) {
        float v = zr[t];
        if (has_bias)
            v = v + br[t];
        zr[t] = act_forward(v, act);
    }
}

/* dh[i] *= act'(z) written from h = act(z):
 * sigmoid' = h (1 - h), tanh' = 1 - h^2, relu' = [h > 0], linear' = 1.
 * For float and, lane by lane, float8. */
#define ACT_DERIV(T, name)                                                                         \
    static inline T name(T d, T y, int act)                                                        \
    {                                                                                              \
        if (act == ACT_SIGMOID)                                                                    \
            return d * (y * (1.0f - y));                                                           \
        if (act == ACT_TANH)                                                                       \
            return d * (1.0f - y * y);                                                             \
        if (act == ACT_RELU)                                                                       \
            return select((T)0.0f, d, y > 0.0f);                                                   \
        return d;                                                                                  \
    }
ACT_DERIV(float, act_deriv)
ACT_DERIV(float8, act_deriv8)

/* dh (n) *= act'(h). Global ceil(n / RUN). */
__kernel void act_grad(__global float *dh, ulong dh_off, __global const float *h, ulong h_off,
                       ulong n, int act)
{
    ulong i0 = get_global_id(0) * RUN;
    uint len = run_len(i0, 0, 1, n);
    __global float *d = dh + dh_off + i0;
    __global const float *y = h + h_off + i0;
    if (len == RUN) {
        vstore8(act_deriv8(vload8(0, d), vload8(0, y), act), 0, d);
        return;
    }
    for (uint t = 0; t < len; t++)
        d[t] = act_deriv(d[t], y[t], act);
}

/* ---- reductions -------------------------------------------------------------------- */

/* dst (dim) = beta dst + column sums of src (n_rows, dim). A work-item
 * sums a run of RUN columns, each down its rows in order: the same sum
 * whatever the work-group size, and each step reads a contiguous run of
 * a row. Global ceil(dim / RUN). */
__kernel void col_sum(__global const float *src, ulong src_off, ulong n_rows, ulong dim,
                      float beta, __global float *dst, ulong dst_off)
{
    ulong j0 = get_global_id(0) * RUN;
    uint len = run_len(j0, 0, 1, dim);
    __global const float *p = src + src_off + j0;
    __global float *d = dst + dst_off + j0;
    if (len == RUN) {
        float8 s = 0.0f, c = 0.0f;
        for (ulong r = 0; r < n_rows; r++)
            acc_add8(&s, &c, vload8(0, p + r * dim));
        float8 total = acc_value8(s, c);
        vstore8(beta == 0.0f ? total : beta * vload8(0, d) + total, 0, d);
        return;
    }
    for (uint t = 0; t < len; t++) {
        float s = 0.0f, c = 0.0f;
        for (ulong r = 0; r < n_rows; r++)
            acc_add(&s, &c, p[r * dim + t]);
        float total = acc_value(s, c);
        d[t] = beta == 0.0f ? total : beta * d[t] + total;
    }
}

/* act_grad then col_sum in one pass (backend.h: act_grad_col_sum): dh
 * (n_rows, dim) *= act'(h) and dst (dim) = beta dst + the column sums of
 * the new dh. A work-item takes a run of RUN columns down the rows in
 * order, as col_sum does, so the results are act_grad's and col_sum's to
 * the bit. Global ceil(dim / RUN). */
__kernel void act_grad_col_sum(__global float *dh, ulong dh_off, __global const float *h,
                               ulong h_off, ulong n_rows, ulong dim, int act, float beta,
                               __global float *dst, ulong dst_off)
{
    ulong j0 = get_global_id(0) * RUN;
    uint len = run_len(j0, 0, 1, dim);
    __global float *p = dh + dh_off + j0;
    __global const float *y = h + h_off + j0;
    __global float *d = dst + dst_off + j0;
    if (len == RUN) {
        float8 s = 0.0f, c = 0.0f;
        for (ulong r = 0; r < n_rows; r++) {
            float8 g = act_deriv8(vload8(0, p + r * dim), vload8(0, y + r * dim), act);
            vstore8(g, 0, p + r * dim);
            acc_add8(&s, &c, g);
        }
        float8 total = acc_value8(s, c);
        vstore8(beta == 0.0f ? total : beta * vload8(0, d) + total, 0, d);
        return;
    }
    for (uint t = 0; t < len; t++) {
        float s = 0.0f, c = 0.0f;
        for (ulong r = 0; r < n_rows; r++) {
            float g = act_deriv(p[r * dim + t], y[r * dim + t], act);
            p[r * dim + t] = g;
            acc_add(&s, &c, g);
        }
        float total = acc_value(s, c);
        d[t] = beta == 0.0f ? total : beta * d[t] + total;
    }
}

#define SUM_MAX_WG 256

/* dst[0] = sum of src[0..n), by ONE work-group of a power-of-two size (at
 * most 256; the host fixes it per device): work-item l sums elements l,
 * l + L, l + 2L, ..., then a pairwise tree. The order depends only on L. */
__kernel void sum_all(__global const float *src, ulong src_off, ulong n, __global float *dst,
                  ulong dst_off)
{
    __local float ls[SUM_MAX_WG], lc[SUM_MAX_WG];
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    float s = 0.0f, c = 0.0f;
    for (ulong i = l; i < n; i += L)
        acc_add(&s, &c, src[src_off + i]);
    ls[l] = s;
    lc[l] = c;
    for (uint stride = L / 2; stride > 0; stride /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (l < stride) {
            float s2 = ls[l], c2 = lc[l];
            acc_merge(&s2, &c2, ls[l + stride], lc[l + stride]);
            ls[l] = s2;
            lc[l] = c2;
        }
    }
    if (l == 0)
        dst[dst_off] = acc_value(ls[0], lc[0]);
}

/* ---- data movement --------------------------------------------------------------- */

/* out (n_rows, dim) row r = data row idx[r]. An index at or past
 * n_data_rows (a core bug) yields a NaN row instead of a wild read, so the
 * loss turns non-finite and training stops. Global (ceil(dim / RUN),
 * n_rows). */
__kernel void gather(__global const float *data, ulong data_off, ulong n_data_rows, ulong dim,
                     __global const uint *idx, ulong idx_off, ulong n_rows, __global float *out,
                     ulong out_off)
{
    ulong j0 = get_global_id(0) * RUN, r = get_global_id(1);
    uint len = run_len(j0, r, n_rows, dim);
    if (len == 0)
        return;
    ulong row = idx[idx_off + r];
    __global const float *from = data + data_off + row * dim + j0;
    __global float *to = out + out_off + r * dim + j0;
    if (len == RUN)
        vstore8(row < n_data_rows ? vload8(0, from) : (float8)NAN, 0, to);
    else
        for (uint t = 0; t < len; t++)
            to[t] = row < n_data_rows ? from[t] : NAN;
}

/* C (m, n) with row stride ldc = beta C; beta = 0 writes zeros whatever C
 * held (NaN included). Global (n, m). */
__kernel void mat_scale(__global float *c, ulong c_off, ulong m, ulong n, ulong ldc, float beta)
{
    ulong j = get_global_id(0), i = get_global_id(1);
    if (j >= n || i >= m)
        return;
    ulong p = c_off + i * ldc + j;
    c[p] = beta == 0.0f ? 0.0f : beta * c[p];
}

/* ---- optimisers ------------------------------------------------------------------- */

enum { OPTIM_SGD = 0, OPTIM_ADAM = 1, OPTIM_ADAMW = 2 };

/* One step of one parameter, PyTorch's formulas (backend.h), in the cpu
 * backend's order of operations:
 *   SGD:  g' = g + wd w;  v = mu v + g';  d = nesterov ? g' + mu v : v;  w -= lr d
 *   Adam: g' = g + wd w (AdamW: w -= lr wd w instead);  m = b1 m + (1-b1) g';
 *         v = b2 v + (1-b2) g'^2;  w -= lr (m / bc1) / (sqrt(v / bc2) + eps).
 * Returns the new w; *m1 and *m2 hold s1 and s2 in and out, read only when
 * the step uses them. For float and, lane by lane, float8. */
#define OPTIM_RULE(T, name)                                                                        \
    static inline T name(T wi, T gi, T *m1, T *m2, uint kind, uint nesterov, float lr, float mu,   \
                         float wd, float b1, float b2, float eps, float bc1, float bc2)            \
    {                                                                                              \
        if (kind == OPTIM_SGD) {                                                                   \
            if (wd != 0.0f)                                                                        \
                gi = gi + wd * wi;                                                                 \
            T d = gi;                                                                              \
            if (mu != 0.0f) {                                                                      \
                T v = mu * *m1 + gi;                                                               \
                *m1 = v;                                                                           \
                d = nesterov ? gi + mu * v : v;                                                    \
            }                                                                                      \
            return wi - lr * d;                                                                    \
        }                                                                                          \
        if (wd != 0.0f) {                                                                          \
            if (kind == OPTIM_ADAMW)                                                               \
                wi = wi - (lr * wd) * wi;                                                          \
            else                                                                                   \
                gi = gi + wd * wi;                                                                 \
        }                                                                                          \
        T m = b1 * *m1 + (1.0f - b1) * gi;                                                         \
        T v = b2 * *m2 + (1.0f - b2) * (gi * gi);                                                  \
        *m1 = m;                                                                                   \
        *m2 = v;                                                                                   \
        return wi - lr * (m / bc1) / (sqrt(v / bc2) + eps);                                        \
    }
OPTIM_RULE(float, optim_rule)
OPTIM_RULE(float8, optim_rule8)

/* One step over w, g, s1, s2 (n). s1 and s2 are only touched when the step
 * uses them. Global ceil(n / RUN). */
__kernel void optim_update(__global float *w, ulong w_off, __global const float *g, ulong g_off,
                           __global float *s1, ulong s1_off, __global float *s2, ulong s2_off,
                           ulong n, ulong n_decay, uint kind, uint nesterov, float lr,
                           float mu, float wd, float b1, float b2, float eps, float bc1,
                           float bc2)
{
    ulong i0 = get_global_id(0) * RUN;
    uint len = run_len(i0, 0, 1, n);
    int use1 = kind != OPTIM_SGD || mu != 0.0f, use2 = kind != OPTIM_SGD;
    __global float *wp = w + w_off + i0, *p1 = s1 + s1_off + i0, *p2 = s2 + s2_off + i0;
    __global const float *gp = g + g_off + i0;
    /* weight decay on parameters below n_decay only; a run that straddles
     * n_decay takes the scalar path */
    if (len == RUN && (i0 + RUN <= n_decay || i0 >= n_decay)) {
        float wdr = i0 < n_decay ? wd : 0.0f;
        float8 m1 = use1 ? vload8(0, p1) : (float8)0.0f, m2 = use2 ? vload8(0, p2) : (float8)0.0f;
        float8 wn = optim_rule8(vload8(0, wp), vload8(0, gp), &m1, &m2, kind, nesterov, lr, mu,
                                wdr, b1, b2, eps, bc1, bc2);
        if (use1)
            vstore8(m1, 0, p1);
        if (use2)
            vstore8(m2, 0, p2);
        vstore8(wn, 0, wp);
        return;
    }
    for (uint t = 0; t < len; t++) {
        float m1 = use1 ? p1[t] : 0.0f, m2 = use2 ? p2[t] : 0.0f;
        float wn = optim_rule(wp[t], gp[t], &m1, &m2, kind, nesterov, lr, mu,
                              i0 + t < n_decay ? wd : 0.0f, b1, b2, eps, bc1, bc2);
        if (use1)
            p1[t] = m1;
        if (use2)
            p2[t] = m2;
        wp[t] = wn;
    }
}

/* ---- classification -------------------------------------------------------------- */

/* Softmax cross-entropy of logits (n_rows, n_classes) against float class
 * indices (n_rows): loss[r] = logsumexp(z_r) - z_r[y_r] (has_loss), grad
 * (n_rows, n_classes) = scale (softmax(z_r) - onehot(y_r)) (has_grad). One
 * work-item per row; the max is subtracted so no logit overflows. */
__kernel void softmax_xent(__global const float *z, ulong z_off, __global const float *y,
                           ulong y_off, ulong n_rows, ulong n_classes, float scale,
                           __global float *loss, ulong loss_off, int has_loss,
                           __global float *grad, ulong grad_off, int has_grad)
{
    ulong r = get_global_id(0);
    if (r >= n_rows)
        return;
    __global const float *zr = z + z_off + r * n_classes;
    ulong label = (ulong)y[y_off + r];
    float zmax = zr[0];
    for (ulong c = 1; c < n_classes; c++)
        zmax = fmax(zmax, zr[c]);
    float sum = 0.0f;
    for (ulong c = 0; c < n_classes; c++)
        sum += exp(zr[c] - zmax);
    if (has_loss)
        loss[loss_off + r] = zmax + log(sum) - zr[label];
    if (has_grad) {
        float inv = 1.0f / sum;
        for (ulong c = 0; c < n_classes; c++) {
            float p = exp(zr[c] - zmax) * inv;
            grad[grad_off + r * n_classes + c] = scale * (p - (c == label ? 1.0f : 0.0f));
        }
    }
}
