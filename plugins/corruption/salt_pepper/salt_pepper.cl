/* salt_pepper - salt-and-pepper noise in shared kernel C (include/daecl/clc.h):
 * with probability p (p[0], word x decides) an input becomes min (p[1]) or
 * max (p[2]) with equal chance (word y decides). Compares only: bit-identical. */

static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
{
    if (!(daecl_u01(r.x) < p[0]))
        return x;
    return daecl_u01(r.y) < 0.5f ? p[1] : p[2];
}
