/* masking - masking noise in shared kernel C (include/daecl/clc.h): each
 * input is set to 0 with probability p (packed p[0]), from word x of the
 * element's Philox block. Integer and compare only: bit-identical everywhere. */

static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
{
    /* u01 is in [0, 1 - 2^-24], so p = 0 keeps every input and p = 1 masks all. */
    return daecl_u01(r.x) < p[0] ? 0.0f : x;
}
