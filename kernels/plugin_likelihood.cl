/* daecl - the kernels around a likelihood plugin's element functions. The
 * opencl backend (backends/opencl/ocl_plugins.c) builds them after
 * kernels/clc_prelude.cl, include/daecl/philox.h, a line defining
 * DAECL_LIK_K (the plugin's params_per_dim, 1..4) and the plugin's
 * cl_source, which defines daecl_lik_nll, daecl_lik_grad, daecl_lik_mean and
 * daecl_lik_sample (include/daecl/plugin.h). The decoder output a is blocked
 * per row: a[r*k*dim + c*dim + j] is parameter c of dimension j of row r. */

#define LIK_MAX_WG 256

/* The k values of dimension j of the row starting at a_row; unused ones 0. */
static inline daecl_f4 lik_gather(__global const float *a_row, ulong dim, ulong j)
{
    daecl_f4 v = daecl_f4_make(a_row[j], 0.0f, 0.0f, 0.0f);
#if DAECL_LIK_K > 1
    v.y = a_row[dim + j];
#endif
#if DAECL_LIK_K > 2
    v.z = a_row[2 * dim + j];
#endif
#if DAECL_LIK_K > 3
    v.w = a_row[3 * dim + j];
#endif
    return v;
}

/* (s, c) += x, Knuth's two-sum (FP_CONTRACT is off): the row's nll keeps
 * about float precision squared, close to the host's double sum. */
static inline void lik_acc_add(float *s, float *c, float x)
{
    float t = *s + x;
    float bp = t - *s;
    float e = (*s - (t - bp)) + (x - bp);
    *s = t;
    *c = *c + e;
}

/* One work-group per row r (a power-of-two size L, at most 256): work-item l
 * takes dimensions l, l + L, ...; the row's nll is reduced by a pairwise
 * tree into nll_rows[r] when want_nll, and grad (n_rows, k*dim) =
 * scale * dnll/da is written when want_grad. Absent outputs get a stand-in
 * buffer that is never touched. */
__kernel void daecl_lik_loss_grad(__global const float *x, ulong x_off,
                                  __global const float *a, ulong a_off, ulong n_rows, ulong dim,
                                  float scale, int want_nll, __global float *nll_rows,
                                  ulong nll_off, int want_grad, __global float *grad,
                                  ulong grad_off, __global const float *params)
{
    __local float ls[LIK_MAX_WG], lc[LIK_MAX_WG];
    ulong r = get_group_id(0);
    uint l = (uint)get_local_id(0), L = (uint)get_local_size(0);
    if (r >= n_rows)
        return; /* the whole group leaves: no barrier is skipped by a part of it */
    __global const float *xr = x + x_off + r * dim;
    __global const float *ar = a + a_off + r * DAECL_LIK_K * dim;
    float s = 0.0f, c = 0.0f;
    for (ulong j = l; j < dim; j += L) {
        daecl_f4 aj = lik_gather(ar, dim, j);
        if (want_nll)
            lik_acc_add(&s, &c, daecl_lik_nll(xr[j], aj, params));
        if (want_grad) {
            __global float *gr = grad + grad_off + r * DAECL_LIK_K * dim;
            daecl_f4 g = daecl_lik_grad(xr[j], aj, params);
            gr[j] = scale * g.x;
#if DAECL_LIK_K > 1
            gr[dim + j] = scale * g.y;
#endif
#if DAECL_LIK_K > 2
            gr[2 * dim + j] = scale * g.z;
#endif
#if DAECL_LIK_K > 3
            gr[3 * dim + j] = scale * g.w;
#endif
        }
    }
    if (!want_nll)
        return; /* uniform across the group */
    ls[l] = s;
    lc[l] = c;
    for (uint stride = L / 2; stride > 0; stride /= 2) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (l < stride) {
            float s2 = ls[l], c2 = lc[l];
            lik_acc_add(&s2, &c2, ls[l + stride]);
            ls[l] = s2;
            lc[l] = c2 + lc[l + stride];
        }
    }
    if (l == 0)
        nll_rows[nll_off + r] = isfinite(ls[0]) ? ls[0] + lc[0] : ls[0];
}

/* The loss, gradient and sums of a training step (backend.h:
 * lik_loss_grad_sums). Work-item j takes dimension j down the rows in
 * order: grad (n_rows, k*dim) = scale * dnll/da; grad_sums[c*dim + j] = the
 * sum over the rows of grad's parameter c of dimension j; nll_sums[j] =
 * element j's nll summed over the first sum_rows rows. Adjacent work-items
 * read and write adjacent columns. Global dim. */
__kernel void daecl_lik_loss_grad_sums(__global const float *x, ulong x_off,
                                       __global const float *a, ulong a_off, ulong n_rows,
                                       ulong sum_rows, ulong dim, float scale,
                                       __global float *grad, ulong grad_off,
                                       __global float *grad_sums, ulong gs_off,
                                       __global float *nll_sums, ulong ns_off,
                                       __global const float *params)
{
    ulong j = get_global_id(0);
    if (j >= dim)
        return;
    /* the sums in (s, c) pairs, one per parameter of the dimension: plain
     * variables, not arrays, so each stays in a register */
    float ns = 0.0f, nc = 0.0f, s0 = 0.0f, c0 = 0.0f;
#if DAECL_LIK_K > 1
    float s1 = 0.0f, c1 = 0.0f;
#endif
#if DAECL_LIK_K > 2
    float s2 = 0.0f, c2 = 0.0f;
#endif
#if DAECL_LIK_K > 3
    float s3 = 0.0f, c3 = 0.0f;
#endif
    __global const float *xp = x + x_off + j;
    __global const float *ap = a + a_off;
    __global float *gp = grad + grad_off + j;
    for (ulong r = 0; r < n_rows; r++) {
        float xj = xp[r * dim];
        daecl_f4 aj = lik_gather(ap + r * DAECL_LIK_K * dim, dim, j);
        if (r < sum_rows)
            lik_acc_add(&ns, &nc, daecl_lik_nll(xj, aj, params));
        daecl_f4 g = daecl_lik_grad(xj, aj, params);
        __global float *gr = gp + r * DAECL_LIK_K * dim;
        float v = scale * g.x;
        gr[0] = v;
        lik_acc_add(&s0, &c0, v);
#if DAECL_LIK_K > 1
        v = scale * g.y;
        gr[dim] = v;
        lik_acc_add(&s1, &c1, v);
#endif
#if DAECL_LIK_K > 2
        v = scale * g.z;
        gr[2 * dim] = v;
        lik_acc_add(&s2, &c2, v);
#endif
#if DAECL_LIK_K > 3
        v = scale * g.w;
        gr[3 * dim] = v;
        lik_acc_add(&s3, &c3, v);
#endif
    }
    __global float *gs = grad_sums + gs_off + j;
    gs[0] = isfinite(s0) ? s0 + c0 : s0;
#if DAECL_LIK_K > 1
    gs[dim] = isfinite(s1) ? s1 + c1 : s1;
#endif
#if DAECL_LIK_K > 2
    gs[2 * dim] = isfinite(s2) ? s2 + c2 : s2;
#endif
#if DAECL_LIK_K > 3
    gs[3 * dim] = isfinite(s3) ? s3 + c3 : s3;
#endif
    nll_sums[ns_off + j] = isfinite(ns) ? ns + nc : ns;
}

/* mean (n_rows, dim) = E[x | a]. Global (dim, n_rows). */
__kernel void daecl_lik_mean_rows(__global const float *a, ulong a_off, ulong n_rows, ulong dim,
                                  __global float *mean, ulong mean_off,
                                  __global const float *params)
{
    ulong j = get_global_id(0), r = get_global_id(1);
    if (j >= dim || r >= n_rows)
        return;
    daecl_f4 aj = lik_gather(a + a_off + r * DAECL_LIK_K * dim, dim, j);
    mean[mean_off + r * dim + j] = daecl_lik_mean(aj, params);
}

/* out (n_rows, dim) ~ p(x | a), element j of row r from block j of position
 * pos0 + r (plugin.h: the noise key 2.0). Global (dim, n_rows). */
__kernel void daecl_lik_sample_rows(__global const float *a, ulong a_off, ulong n_rows,
                                    ulong dim, __global float *out, ulong out_off, uint seed_lo,
                                    uint seed_hi, uint word3, uint epoch, uint pos0,
                                    __global const float *params)
{
    ulong j = get_global_id(0), r = get_global_id(1);
    if (j >= dim || r >= n_rows)
        return;
    daecl_u4 u = daecl_philox_block(seed_lo, seed_hi, word3, epoch, pos0 + (uint)r, (uint)j);
    daecl_f4 aj = lik_gather(a + a_off + r * DAECL_LIK_K * dim, dim, j);
    out[out_off + r * dim + j] = daecl_lik_sample(aj, u, params);
}
