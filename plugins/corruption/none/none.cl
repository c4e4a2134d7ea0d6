/* none - the identity corruption, in shared kernel C (include/daecl/clc.h):
 * x~ = x, so a denoising autoencoder becomes a plain one. Draws no noise. */

static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
{
    (void)r;
    (void)p;
    return x;
}
