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
 * bit-identical to the host's. Global (dim, n_rows) either way. */

/* xt (n_rows, dim): element j of row r is daecl_corrupt(x, block(j, pos0 + r))
 * or, row-granular, daecl_corrupt_row(x row r, j, row r). */
__kernel void daecl_corrupt_rows(__global const float *x, ulong x_off, __global float *xt,
                                 ulong xt_off, ulong n_rows, ulong dim, uint seed_lo,
                                 uint seed_hi, uint word3, uint epoch, uint pos0, uint rank,
                                 uint4 shape, __global const float *params)
{
    ulong j = get_global_id(0), r = get_global_id(1);
    if (j >= dim || r >= n_rows)
        return;
#ifndef DAECL_CORRUPT_ROWWISE
    daecl_u4 u = daecl_philox_block(seed_lo, seed_hi, word3, epoch, pos0 + (uint)r, (uint)j);
    xt[xt_off + r * dim + j] = daecl_corrupt(x[x_off + r * dim + j], u, params);
#else
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
