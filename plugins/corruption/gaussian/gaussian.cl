/* gaussian - additive Gaussian noise in shared kernel C (include/daecl/clc.h):
 * x~ = clamp(x + sigma * n, lo, hi), n ~ N(0, 1) from words x, y of the
 * element's Philox block. Packed: p[0] = sigma, p[1] = lo, p[2] = hi. One mul,
 * one add and min/max: bit-identical on every IEEE device. */

static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
{
    float v = x + p[0] * daecl_normal(r.x, r.y);
    /* The default clip [-inf, inf] leaves v as it is. */
    return DAECL_FMIN(DAECL_FMAX(v, p[1]), p[2]);
}
