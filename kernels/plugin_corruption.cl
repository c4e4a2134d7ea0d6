/* daecl - the kernel around a corruption plugin's element function. The
 * opencl backend (backends/opencl/ocl_plugins.c) builds it after
 * kernels/clc_prelude.cl, include/daecl/philox.h and the plugin's cl_source,
 * which defines
 *     float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p).
 * Element i of a call draws the Philox block of element elem0 + i of
 * (seed, stream, step), exactly as the host reference does
 * (daecl_noise_block in include/daecl/elementwise.h), so the device's
 * corruption is bit-identical to the host's. */

/* xt (n) = daecl_corrupt(x (n), block(elem0 + i), params); n = n_rows * dim. */
__kernel void daecl_corrupt_rows(__global const float *x, ulong x_off, __global float *xt,
                                 ulong xt_off, ulong n, uint seed_lo, uint seed_hi, uint stream,
                                 uint step, ulong elem0, __global const float *params)
{
    ulong i = get_global_id(0);
    if (i >= n)
        return;
    ulong e = elem0 + i;
    daecl_u4 r = daecl_philox_block(seed_lo, seed_hi, stream, step, (uint)e, (uint)(e >> 32));
    xt[xt_off + i] = daecl_corrupt(x[x_off + i], r, params);
}
