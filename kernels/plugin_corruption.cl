/* daecl - the kernel around a corruption plugin's function. The opencl
 * backend (backends/opencl/ocl_plugins.c) builds it after
 * kernels/clc_prelude.cl, include/daecl/philox.h, a line that defines
 * DAECL_CORRUPT_ROWWISE for a row-granular plugin, and the plugin's
 * cl_source, which defines
 *     float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)          (element-wise)
 *     float daecl_corrupt_row(DAECL_GLOBAL const float *x, daecl_u32 j,
 *                             const daecl_row *row, DAECL_PARAMS p)    (row-granular).
 * Row r of a call is the example at position pos0 + r; element j of it
 * draws block j of that position (element-wise), or the row draws what it
 * needs from its own stream (row-granular), exactly as the host reference
 * does (include/daecl/elementwise.h), so the device's corruption is
 * bit-identical to the host's. */

/* Element-wise: a work-item corrupts a run of CORRUPT_RUN elements of one
 * row, drawing their blocks in one daecl_philox4x32_10_x16 (the last run
 * of a row draws past dim and stores only what is in it). */
#define CORRUPT_RUN 16

/* xt (n_rows, dim): element j of row r is daecl_corrupt(x, block(j, pos0 + r))
 * (global (ceil(dim / CORRUPT_RUN), n_rows)) or, row-granular,
 * daecl_corrupt_row(x row r, j, row r) (global (dim, n_rows)). */
__kernel void daecl_corrupt_rows(__global const float *x, ulong x_off, __global float *xt,
                                 ulong xt_off, ulong n_rows, ulong dim, uint seed_lo,
                                 uint seed_hi, uint word3, uint epoch, uint pos0, uint rank,
                                 uint4 shape, __global const float *params)
{
    ulong q = get_global_id(0), r = get_global_id(1);
#ifndef DAECL_CORRUPT_ROWWISE
    ulong j0 = q * CORRUPT_RUN;
    if (j0 >= dim || r >= n_rows)
        return;
    uint16 c0 = (uint16)((uint)j0) +
                (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    uint16 c1 = (uint16)(pos0 + (uint)r), c2 = (uint16)epoch, c3 = (uint16)word3;
    daecl_philox4x32_10_x16(&c0, &c1, &c2, &c3, seed_lo, seed_hi);
    uint u0[CORRUPT_RUN], u1[CORRUPT_RUN], u2[CORRUPT_RUN], u3[CORRUPT_RUN];
    vstore16(c0, 0, u0);
    vstore16(c1, 0, u1);
    vstore16(c2, 0, u2);
    vstore16(c3, 0, u3);
    uint m = dim - j0 < CORRUPT_RUN ? (uint)(dim - j0) : CORRUPT_RUN;
    __global const float *xr = x + x_off + r * dim + j0;
    __global float *tr = xt + xt_off + r * dim + j0;
    for (uint t = 0; t < m; t++)
        tr[t] = daecl_corrupt(xr[t], daecl_u4_make(u0[t], u1[t], u2[t], u3[t]), params);
#else
    ulong j = q;
    if (j >= dim || r >= n_rows)
        return;
    daecl_row row;
    row.seed_lo = seed_lo;
    row.seed_hi = seed_hi;
    row.word3 = word3;
    row.epoch = epoch;
    row.pos = pos0 + (uint)r;
    row.dim = (uint)dim;
    row.rank = rank;
    row.shape[0] = shape.x;
    row.shape[1] = shape.y;
    row.shape[2] = shape.z;
    row.shape[3] = shape.w;
    xt[xt_off + r * dim + j] = daecl_corrupt_row(x + x_off + r * dim, (uint)j, &row, params);
#endif
}
