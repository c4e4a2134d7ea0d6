/* daecl - daecl's own GEMM kernel, after kernels/clc_prelude.cl: what the
 * opencl backend runs with `gemm: daecl`, and with `binaries: DIR`, since
 * CLBlast always compiles from source (backends/opencl/ocl_gemm.c).
 *
 *   C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C,  row-major,
 *   op(A)[i][p] = trans_a ? a[p*lda + i] : a[i*lda + p], likewise B;
 *   beta = 0 ignores C's old contents (NaN included).
 *
 * A work-group of 16 x 16 work-items computes a T x T tile of C (T = 64 in
 * gemm_tiled64, 32 in gemm_tiled32 for products too small to fill the
 * device with 64-tiles); each work-item P x P of it (P = T / 16), at rows
 * ty + 16 y and columns tx + 16 x, so stores and local-memory reads of
 * neighbouring work-items are neighbours. Tiles of op(A) (T x 16) and op(B)
 * (16 x T) go through local memory, loaded so that neighbouring work-items
 * read neighbouring global addresses whatever the transpose; out-of-range
 * elements load as 0, so no size, offset or leading dimension needs to be a
 * multiple of anything. */

/* Bit identity is not asked of a GEMM (the cpu backend's OpenBLAS sums in
 * another order anyway): let the compiler fuse the multiply-adds. */
#pragma OPENCL FP_CONTRACT ON

#define TILE_K 16
#define WG_SIDE 16 /* work-items along n (x) and along m (y) */
#define WG_SIZE (WG_SIDE * WG_SIDE)
#define MAX_PER 4
#define MAX_TILE (WG_SIDE * MAX_PER)
#define LD_TILE (MAX_TILE + 1) /* +1: the transposed tile stores hit distinct banks */

/* The kernels' body for P = per (4 or 2, a constant once inlined, so the
 * loops unroll); as and bs are the local tiles, TILE_K x LD_TILE each. */
static inline void gemm_body(const int per, ulong m, ulong n, ulong k, float alpha, float beta,
                             int trans_a, int trans_b, __global const float *a, ulong a_off,
                             ulong lda, __global const float *b, ulong b_off, ulong ldb,
                             __global float *c, ulong c_off, ulong ldc, __local float *as,
                             __local float *bs)
{
    const uint tile = WG_SIDE * (uint)per;
    const uint tx = (uint)get_local_id(0), ty = (uint)get_local_id(1);
    const uint t = ty * WG_SIDE + tx;
    const ulong row0 = (ulong)get_group_id(1) * tile;
    const ulong col0 = (ulong)get_group_id(0) * tile;

    float acc[MAX_PER][MAX_PER];
    for (int y = 0; y < per; y++)
        for (int x = 0; x < per; x++)
            acc[y][x] = 0.0f;

    for (ulong p0 = 0; p0 < k; p0 += TILE_K) {
        /* tile * TILE_K elements of each operand, per of them per work-item. */
        for (int l = 0; l < per; l++) {
            uint e = t + (uint)l * WG_SIZE;
            /* A stored (k, m) when transposed: run along i; else along p. */
            uint ii = trans_a ? e % tile : e / TILE_K;
            uint pp = trans_a ? e / tile : e % TILE_K;
            ulong gi = row0 + ii, gp = p0 + pp;
            float v = 0.0f;
            if (gi < m && gp < k)
                v = trans_a ? a[a_off + gp * lda + gi] : a[a_off + gi * lda + gp];
            as[pp * LD_TILE + ii] = v;
        }
        for (int l = 0; l < per; l++) {
            uint e = t + (uint)l * WG_SIZE;
            /* B stored (n, k) when transposed: run along p; else along j. */
            uint jj = trans_b ? e / TILE_K : e % tile;
            uint pp = trans_b ? e % TILE_K : e / tile;
            ulong gj = col0 + jj, gp = p0 + pp;
            float v = 0.0f;
            if (gj < n && gp < k)
                v = trans_b ? b[b_off + gj * ldb + gp] : b[b_off + gp * ldb + gj];
            bs[pp * LD_TILE + jj] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int pp = 0; pp < TILE_K; pp++) {
            float av[MAX_PER], bv[MAX_PER];
            for (int y = 0; y < per; y++)
                av[y] = as[pp * LD_TILE + ty + WG_SIDE * y];
            for (int x = 0; x < per; x++)
                bv[x] = bs[pp * LD_TILE + tx + WG_SIDE * x];
            for (int y = 0; y < per; y++)
                for (int x = 0; x < per; x++)
                    acc[y][x] += av[y] * bv[x];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int y = 0; y < per; y++) {
        ulong gi = row0 + ty + WG_SIDE * y;
        if (gi >= m)
            continue;
        for (int x = 0; x < per; x++) {
            ulong gj = col0 + tx + WG_SIDE * x;
            if (gj >= n)
                continue;
            ulong q = c_off + gi * ldc + gj;
            float r = alpha * acc[y][x];
            c[q] = beta == 0.0f ? r : r + beta * c[q];
        }
    }
}

__kernel __attribute__((reqd_work_group_size(WG_SIDE, WG_SIDE, 1))) void
gemm_tiled64(ulong m, ulong n, ulong k, float alpha, float beta, int trans_a, int trans_b,
             __global const float *a, ulong a_off, ulong lda, __global const float *b,
             ulong b_off, ulong ldb, __global float *c, ulong c_off, ulong ldc)
{
    __local float as[TILE_K * LD_TILE], bs[TILE_K * LD_TILE];
    gemm_body(4, m, n, k, alpha, beta, trans_a, trans_b, a, a_off, lda, b, b_off, ldb, c, c_off,
              ldc, as, bs);
}

__kernel __attribute__((reqd_work_group_size(WG_SIDE, WG_SIDE, 1))) void
gemm_tiled32(ulong m, ulong n, ulong k, float alpha, float beta, int trans_a, int trans_b,
             __global const float *a, ulong a_off, ulong lda, __global const float *b,
             ulong b_off, ulong ldb, __global float *c, ulong c_off, ulong ldc)
{
    __local float as[TILE_K * LD_TILE], bs[TILE_K * LD_TILE];
    gemm_body(2, m, n, k, alpha, beta, trans_a, trans_b, a, a_off, lda, b, b_off, ldb, c, c_off,
              ldc, as, bs);
}
