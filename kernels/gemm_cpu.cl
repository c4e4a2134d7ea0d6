/* daecl - daecl's GEMM kernels for CPU OpenCL devices (POCL), after
 * kernels/clc_prelude.cl and a line of #defines that picks the variant
 * (backends/opencl/ocl_gemm_cpu.c writes it, the equivalent of -D options;
 * the program cache hashes it with the source):
 *
 *   MR  rows of C per work-item              (1 to 8)
 *   NV  vector registers per row of the tile (1 to 4)
 *   VW  lanes of a vector: 4, 8 or 16 floats (AVX2: 8, AVX-512: 16)
 *   KU  steps of k unrolled                  (1, 2 or 4)
 *
 *   C (m, n) = alpha op(A) (m, k) op(B) (k, n) + beta C,  row-major,
 *   op(A)[i][p] = trans_a ? a[p*lda + i] : a[i*lda + p], likewise B;
 *   beta = 0 ignores C's old contents (NaN included). Same contract as
 *   kernels/gemm.cl; no size, offset or leading dimension needs to be a
 *   multiple of anything.
 *
 * A GPU kernel shares tiles through local memory; a CPU has no local
 * memory to speak of, and POCL runs a work-group as a loop over its
 * work-items. Here each work-item keeps MR x NV accumulators of VW lanes in
 * registers (MR NV <= 32, the AVX-512 register file) and reads its operands
 * straight from memory, which the caches serve:
 *
 * - gemm_cpu_nn, gemm_cpu_tn (op(B) = B): lanes run along C's columns, so a
 *   work-item owns an MR x (NV VW) tile of C. Each step of k is an outer
 *   product: MR scalars of op(A), broadcast, times NV vectors of row p of B
 *   (contiguous loads), MR NV fused multiply-adds.
 * - gemm_cpu_nt (op(B) = B^T, B stored (n, k)): a column of op(B) is a row
 *   of B, so lanes run along k. A work-item owns an MR x NV tile of C; each
 *   element is a VW-lane partial dot product of a row of A with a row of B,
 *   summed across its lanes at the end. Per VW steps of k: MR + NV vector
 *   loads, MR NV fused multiply-adds.
 *
 * Edges: rows of op(A) past m (and, in nt, rows of B past n) are read at
 * the last valid index and never stored, so interior and edge work-items
 * run the same code. In nn and tn a tile reaching past column n runs the
 * same body with element-wise, guarded loads and stores (only the last
 * tile of each row of tiles, when NV VW does not divide n: 1000 columns in
 * 64-column tiles leave 40 to it). In nt the k % VW last steps are
 * scalar. op(A) op(B) with both transposed (no training step uses it) is
 * kernels/gemm.cl's. */

/* Bit identity is not asked of a GEMM: let the compiler fuse. */
#pragma OPENCL FP_CONTRACT ON

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define VT CAT(float, VW)
#define VLOAD CAT(vload, VW)
#define VSTORE CAT(vstore, VW)
#define HSUM CAT(hsum, VW)
/* Every loop over the tile is unrolled, so that the accumulators live in
 * registers (POCL's default passes left them in memory). */
#define UNROLL _Pragma("unroll")

static inline float hsum4(float4 v)
{
    float2 t = v.lo + v.hi;
    return t.x + t.y;
}
static inline float hsum8(float8 v)
{
    return hsum4(v.lo + v.hi);
}
static inline float hsum16(float16 v)
{
    return hsum8(v.lo + v.hi);
}

/* VW floats of row from column j on, lanes at or past n read as 0. */
static inline VT load_edge(__global const float *row, ulong j, ulong n)
{
    float l[VW];
    UNROLL
    for (int q = 0; q < VW; q++)
        l[q] = j + (ulong)q < n ? row[j + (ulong)q] : 0.0f;
    return VLOAD(0, l);
}

/* alpha v + beta c into VW elements of row from column j; edge: only
 * columns before n. */
static inline void store_c(const int edge, VT v, __global float *row, ulong j, ulong n,
                           float alpha, float beta)
{
    if (!edge) {
        VT r = alpha * v;
        if (beta != 0.0f)
            r += beta * VLOAD(0, row + j);
        VSTORE(r, 0, row + j);
        return;
    }
    float l[VW];
    VSTORE(v, 0, l);
    UNROLL
    for (int q = 0; q < VW && j + (ulong)q < n; q++) {
        float r = alpha * l[q];
        row[j + q] = beta == 0.0f ? r : r + beta * row[j + q];
    }
}

/* Zeroes the MR x NV accumulators. */
#define ZERO_ACC(acc)                                                                              \
    do {                                                                                           \
        UNROLL                                                                                     \
        for (int y = 0; y < MR; y++)                                                               \
            UNROLL                                                                                 \
            for (int x = 0; x < NV; x++)                                                           \
                (acc)[y][x] = (VT)(0.0f);                                                          \
    } while (0)

/* One k step of the outer-product kernels: row p of op(A) into av (MR
 * scalars), of B into the accumulators. */
#define OUTER_STEP(p)                                                                              \
    do {                                                                                           \
        __global const float *brow = b + (p) * ldb + j0;                                           \
        VT bv[NV];                                                                                 \
        UNROLL                                                                                     \
        for (int v = 0; v < NV; v++)                                                               \
            bv[v] = edge ? load_edge(b + (p) * ldb, j0 + (ulong)(v * VW), n)                      \
                         : VLOAD(0, brow + v * VW);                                                \
        UNROLL                                                                                     \
        for (int y = 0; y < MR; y++) {                                                             \
            float av = trans_a ? arow[y][(p) * lda] : arow[y][(p)];                                \
            UNROLL                                                                                 \
            for (int v = 0; v < NV; v++)                                                           \
                acc[y][v] += av * bv[v];                                                           \
        }                                                                                          \
    } while (0)

/* The MR x (NV VW) tile at (i0, j0) of nn (trans_a 0) or tn (1). a, b, c
 * already point at their offsets. edge: columns past n are guarded. */
static inline void outer_tile(const int trans_a, const int edge, ulong m, ulong n, ulong k,
                              float alpha, float beta, __global const float *a, ulong lda,
                              __global const float *b, ulong ldb, __global float *c, ulong ldc,
                              ulong i0, ulong j0)
{
    __global const float *arow[MR];
    UNROLL
    for (int y = 0; y < MR; y++) {
        ulong i = min(i0 + (ulong)y, m - 1);
        arow[y] = trans_a ? a + i : a + i * lda;
    }
    VT acc[MR][NV];
    ZERO_ACC(acc);
    ulong p = 0;
    for (; p + KU <= k; p += KU)
        UNROLL
        for (int u = 0; u < KU; u++)
            OUTER_STEP(p + (ulong)u);
    for (; p < k; p++)
        OUTER_STEP(p);
    UNROLL
    for (int y = 0; y < MR; y++) {
        if (i0 + (ulong)y >= m)
            break;
        __global float *crow = c + (i0 + (ulong)y) * ldc;
        UNROLL
        for (int v = 0; v < NV; v++) {
            ulong j = j0 + (ulong)(v * VW);
            if (edge && j >= n)
                break;
            store_c(edge && j + VW > n, acc[y][v], crow, j, n, alpha, beta);
        }
    }
}

/* Work-item (x, y) owns the tile at rows MR x, columns NV VW y: the
 * work-items of a group share a panel of B and walk down op(A). */
static inline void outer_kernel(const int trans_a, ulong m, ulong n, ulong k, float alpha,
                                float beta, __global const float *a, ulong a_off, ulong lda,
                                __global const float *b, ulong b_off, ulong ldb, __global float *c,
                                ulong c_off, ulong ldc)
{
    const ulong i0 = (ulong)get_global_id(0) * MR, j0 = (ulong)get_global_id(1) * (NV * VW);
    if (i0 >= m || j0 >= n)
        return;
    if (j0 + NV * VW <= n)
        outer_tile(trans_a, 0, m, n, k, alpha, beta, a + a_off, lda, b + b_off, ldb, c + c_off,
                   ldc, i0, j0);
    else
        outer_tile(trans_a, 1, m, n, k, alpha, beta, a + a_off, lda, b + b_off, ldb, c + c_off,
                   ldc, i0, j0);
}

__kernel void gemm_cpu_nn(ulong m, ulong n, ulong k, float alpha, float beta,
                          __global const float *a, ulong a_off, ulong lda,
                          __global const float *b, ulong b_off, ulong ldb, __global float *c,
                          ulong c_off, ulong ldc)
{
    outer_kernel(0, m, n, k, alpha, beta, a, a_off, lda, b, b_off, ldb, c, c_off, ldc);
}

__kernel void gemm_cpu_tn(ulong m, ulong n, ulong k, float alpha, float beta,
                          __global const float *a, ulong a_off, ulong lda,
                          __global const float *b, ulong b_off, ulong ldb, __global float *c,
                          ulong c_off, ulong ldc)
{
    outer_kernel(1, m, n, k, alpha, beta, a, a_off, lda, b, b_off, ldb, c, c_off, ldc);
}

/* VW steps of k from q in gemm_cpu_nt: a vector of each row of A and of B
 * into the accumulators. */
#define DOT_STEP(q)                                                                                \
    do {                                                                                           \
        VT av[MR], bv[NV];                                                                         \
        UNROLL                                                                                     \
        for (int y = 0; y < MR; y++)                                                               \
            av[y] = VLOAD(0, arow[y] + (q));                                                       \
        UNROLL                                                                                     \
        for (int x = 0; x < NV; x++)                                                               \
            bv[x] = VLOAD(0, brow[x] + (q));                                                       \
        UNROLL                                                                                     \
        for (int y = 0; y < MR; y++)                                                               \
            UNROLL                                                                                 \
            for (int x = 0; x < NV; x++)                                                           \
                acc[y][x] += av[y] * bv[x];                                                        \
    } while (0)

/* Work-item (x, y) owns C's rows MR x.. and columns NV y..: rows of A and
 * of B (columns of op(B)) dotted VW lanes at a time. */
__kernel void gemm_cpu_nt(ulong m, ulong n, ulong k, float alpha, float beta,
                          __global const float *a, ulong a_off, ulong lda,
                          __global const float *b, ulong b_off, ulong ldb, __global float *c,
                          ulong c_off, ulong ldc)
{
    const ulong i0 = (ulong)get_global_id(0) * MR, j0 = (ulong)get_global_id(1) * NV;
    if (i0 >= m || j0 >= n)
        return;
    __global const float *arow[MR], *brow[NV];
    UNROLL
    for (int y = 0; y < MR; y++)
        arow[y] = a + a_off + min(i0 + (ulong)y, m - 1) * lda;
    UNROLL
    for (int x = 0; x < NV; x++)
        brow[x] = b + b_off + min(j0 + (ulong)x, n - 1) * ldb;
    VT acc[MR][NV];
    ZERO_ACC(acc);
    ulong p = 0;
    for (; p + KU * VW <= k; p += KU * VW)
        UNROLL
        for (int u = 0; u < KU; u++)
            DOT_STEP(p + (ulong)(u * VW));
    for (; p + VW <= k; p += VW)
        DOT_STEP(p);
    float sum[MR][NV];
    UNROLL
    for (int y = 0; y < MR; y++)
        UNROLL
        for (int x = 0; x < NV; x++)
            sum[y][x] = HSUM(acc[y][x]);
    for (; p < k; p++)
        UNROLL
        for (int y = 0; y < MR; y++)
            UNROLL
            for (int x = 0; x < NV; x++)
                sum[y][x] += arow[y][p] * brow[x][p];
    UNROLL
    for (int y = 0; y < MR && i0 + (ulong)y < m; y++) {
        __global float *crow = c + c_off + (i0 + (ulong)y) * ldc;
        UNROLL
        for (int x = 0; x < NV && j0 + (ulong)x < n; x++) {
            float r = alpha * sum[y][x];
            ulong j = j0 + (ulong)x;
            crow[j] = beta == 0.0f ? r : r + beta * crow[j];
        }
    }
}
