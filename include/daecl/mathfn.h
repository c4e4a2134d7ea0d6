/* daecl - exp and log1p for element functions on the host, in shared
 * kernel C: plain mul/add/compare code with no library call, so a compiler
 * vectorises the loops that use them (libm's expf and log1pf are scalar
 * calls), within about 1 ulp of the true value (tests/test_philox.c checks
 * them against libm). clc.h maps DAECL_EXP and DAECL_LOG1P to them on the host; the OpenCL prelude maps the same names to the device's own
 * functions, which the OpenCL spec bounds to a few ulp. */
#ifndef DAECL_MATHFN_H
#define DAECL_MATHFN_H

#ifndef DAECL_OPENCL
#include "daecl/clc.h"
#endif

/* 2^n for an integer n in [-252, 254] given as a float, by two exponent
 * fields so that the full range of float results (subnormals, overflow to
 * infinity) comes out of the final multiplications. */
static inline float daecl__exp2i(float n, float p)
{
    int ni = (int)n;
    int n1 = ni / 2, n2 = ni - n1;
    return p * daecl_as_f32((daecl_u32)(n1 + 127) << 23) * daecl_as_f32((daecl_u32)(n2 + 127) << 23);
}

/* e^x: 2^n e^r with n = round(x / ln 2) and |r| <= ln 2 / 2, e^r by Cephes'
 * degree-7 polynomial. NaN stays NaN; -inf gives 0, +inf gives inf. */
static inline float daecl_expf(float x)
{
    int is_nan = !(x == x);
    float xc = is_nan ? 0.0f : x;
    xc = xc > 89.0f ? 89.0f : xc;
    xc = xc < -104.0f ? -104.0f : xc;
    /* round(xc log2 e) by the 1.5 * 2^23 trick: exact for |values| < 2^22 */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;  /* Cody-Waite: ln 2 = C1 - C2 */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    float y = daecl__exp2i(n, p);
    return is_nan ? x : y;
}

/* log(1 + x) for x > -1, about 1 ulp: u = 1 + x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), log(m) by the fdlibm series in s = f / (2 + f), and
 * c = (x - (u - 1)) / u restoring what rounding 1 + x lost. x = -1 gives
 * -inf, x < -1 NaN, +inf inf, NaN NaN. */
static inline float daecl_log1pf(float x)
{
    float u = 1.0f + x;
    daecl_u32 bits = daecl_as_u32(u);
    int e = (int)((bits >> 23) & 0xffu) - 127;
    daecl_u32 mant = bits & 0x007fffffu;
    /* m in [sqrt(1/2), sqrt(2)): 0x3504f3 is the mantissa of sqrt(2) */
    int up = mant >= 0x003504f3u;
    float m = daecl_as_f32(mant | (up ? 0x3f000000u : 0x3f800000u));
    e = e + up;
    /* e == 0 means m == u: then x itself is the exact f; otherwise f = m - 1
     * is exact and c restores what rounding 1 + x lost. */
    float c = (x - (u - 1.0f)) / u; /* computed always: a branch-free loop vectorises */
    c = (e == 0) ? 0.0f : c;
    float f = (e == 0) ? x : m - 1.0f;
    float s = f / (2.0f + f);
    float s2 = s * s;
    float r = 0.1538461538f;
    r = r * s2 + 0.1818181818f;
    r = r * s2 + 0.2222222222f;
    r = r * s2 + 0.2857142857f;
    r = r * s2 + 0.4f;
    r = r * s2 + 0.6666666667f;
    r = r * s2;
    float hfsq = 0.5f * f * f;
    float fe = (float)e;
    float y = fe * 6.9313812256e-01f + ((fe * 9.0580006145e-06f + c) + (f - (hfsq - s * (hfsq + r))));
    /* tiny x: log1p(x) = x to the last bit; the edges by their definitions */
    y = (x < 5.9604644775390625e-8f && x > -5.9604644775390625e-8f) ? x : y;
    y = (u == 0.0f) ? -INFINITY : y;
    y = (x < -1.0f || !(x == x)) ? NAN : y;
    y = (x > 3.0e38f) ? x : y;
    return y;
}

#endif
