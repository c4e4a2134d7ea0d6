/* daecl - Philox4x32-10 and the noise it yields, in shared kernel C.
 *
 * This one text is compiled as C (core, plugins, cpu backend) and as OpenCL C
 * (the opencl backend embeds it after its prelude), so the host and every
 * device draw identical bits. The noise key 2.0 (plugin.h: daecl_noise_key):
 * block i of the example at position `pos` of epoch `epoch`, in stream
 * `stream`, stage `stage` and sub-step `substep`, under seed `seed`, is
 *     key     = {seed & 0xffffffff, seed >> 32}
 *     counter = {i, pos, epoch, stream | stage << 8 | substep << 16}
 * a pure function of the example and never of the step, the batch or the
 * call that drew it: results depend on neither work-group size nor chunking
 * nor how a batch is split over devices, and a resumed run draws what an
 * uninterrupted one would. An element-wise op gives dimension j block j.
 * Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011. */
#ifndef DAECL_PHILOX_H
#define DAECL_PHILOX_H

#ifndef DAECL_OPENCL
#include "daecl/clc.h"
#endif

#define DAECL_PHILOX_M0 0xD2511F53u
#define DAECL_PHILOX_M1 0xCD9E8D57u
#define DAECL_PHILOX_W0 0x9E3779B9u
#define DAECL_PHILOX_W1 0xBB67AE85u

/* Philox4x32 with 10 rounds on counter c under key (k0, k1). */
static inline daecl_u4 daecl_philox4x32_10(daecl_u4 c, daecl_u32 k0, daecl_u32 k1)
{
    for (int round = 0; round < 10; round++) {
        daecl_u32 hi0 = daecl_mulhi(DAECL_PHILOX_M0, c.x);
        daecl_u32 lo0 = DAECL_PHILOX_M0 * c.x;
        daecl_u32 hi1 = daecl_mulhi(DAECL_PHILOX_M1, c.z);
        daecl_u32 lo1 = DAECL_PHILOX_M1 * c.z;
        c = daecl_u4_make(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
        k0 += DAECL_PHILOX_W0;
        k1 += DAECL_PHILOX_W1;
    }
    return c;
}

#ifdef DAECL_OPENCL
/* The same rounds on 16 counters at once, word by word in uint16 lanes
 * (lane t of c0, c1, c2, c3 is counter t's x, y, z, w), for CPU devices:
 * POCL vectorises neither a work-item's loop of scalar blocks nor scalar
 * blocks across work-items, and sixteen 32-bit lanes fill an AVX-512
 * register (R1's masking: about 15 times faster on POCL). The same
 * operations as daecl_philox4x32_10, lane by lane: the same bits
 * (tests/test_backend_conformance.c compares with the host). */
static inline void daecl_philox4x32_10_x16(uint16 *c0, uint16 *c1, uint16 *c2, uint16 *c3,
                                           daecl_u32 k0, daecl_u32 k1)
{
    uint16 x = *c0, y = *c1, z = *c2, w = *c3;
    for (int round = 0; round < 10; round++) {
        uint16 hi0 = mul_hi((uint16)DAECL_PHILOX_M0, x);
        uint16 lo0 = (uint16)DAECL_PHILOX_M0 * x;
        uint16 hi1 = mul_hi((uint16)DAECL_PHILOX_M1, z);
        uint16 lo1 = (uint16)DAECL_PHILOX_M1 * z;
        x = hi1 ^ y ^ (uint16)k0;
        y = lo1;
        z = hi0 ^ w ^ (uint16)k1;
        w = lo0;
        k0 += DAECL_PHILOX_W0;
        k1 += DAECL_PHILOX_W1;
    }
    *c0 = x, *c1 = y, *c2 = z, *c3 = w;
}
#endif

/* The fourth counter word: stream (8 bits), stage (8), substep (16). */
static inline daecl_u32 daecl_noise_word3(daecl_u32 stream, daecl_u32 stage, daecl_u32 substep)
{
    return (stream & 0xffu) | (stage & 0xffu) << 8 | substep << 16;
}

/* Block i of the example at position pos in (epoch, word3) under the
 * seed's two key words: the one addressing rule every daecl noise source
 * uses. */
static inline daecl_u4 daecl_philox_block(daecl_u32 seed_lo, daecl_u32 seed_hi, daecl_u32 word3,
                                          daecl_u32 epoch, daecl_u32 pos, daecl_u32 i)
{
    return daecl_philox4x32_10(daecl_u4_make(i, pos, epoch, word3), seed_lo, seed_hi);
}

/* One example as a row-granular corruption sees it (plugin.h,
 * DAECL_GRAIN_ROW): its Philox stream, position, and shape. The host loop
 * (elementwise.h) and the device kernel (kernels/plugin_corruption.cl) fill
 * it identically. */
typedef struct daecl_row {
    daecl_u32 seed_lo, seed_hi;
    daecl_u32 word3;    /* daecl_noise_word3(stream, stage, substep) */
    daecl_u32 epoch;
    daecl_u32 pos;      /* the example's position in the epoch's permutation */
    daecl_u32 dim;      /* values in the example: the product of shape */
    daecl_u32 rank;     /* 1..4 */
    daecl_u32 shape[4]; /* shape[0..rank), row-major; unused ones are 1 */
} daecl_row;

/* Block i (0, 1, ...) of the example's own Philox stream. */
static inline daecl_u4 daecl_row_block(const daecl_row *row, daecl_u32 i)
{
    return daecl_philox_block(row->seed_lo, row->seed_hi, row->word3, row->epoch, row->pos, i);
}

/* The image a row holds: its last two dimensions are (height, width); any
 * leading ones are planes (channels) that share one spatial pattern. A rank
 * 1 example is one row of pixels (height 1). */
static inline daecl_u32 daecl_row_height(const daecl_row *row)
{
    return row->rank >= 2u ? row->shape[row->rank - 2u] : 1u;
}

static inline daecl_u32 daecl_row_width(const daecl_row *row)
{
    return row->shape[row->rank - 1u];
}

/* An integer uniform in [0, n) from one word, by multiply-shift (bias below
 * n / 2^32): integer ops only, identical everywhere. */
static inline daecl_u32 daecl_uniform_below(daecl_u32 u, daecl_u32 n)
{
    return daecl_mulhi(u, n);
}

/* Uniform in [0, 1) with 24 random bits: exact in float. */
static inline float daecl_u01(daecl_u32 u)
{
    return (float)(u >> 8) * 5.9604644775390625e-08f; /* 2^-24 */
}

/* Uniform in (0, 1]: safe to take the log of. */
static inline float daecl_u01_open0(daecl_u32 u)
{
    return (float)((u >> 8) + 1u) * 5.9604644775390625e-08f;
}

/* 1/d for d in [1, 4), by Newton steps from a bit-trick guess: only mul and
 * sub, so host and device agree to the bit (a device's `/` may be 2.5 ulp). */
static inline float daecl__recip_1_4(float d)
{
    float r = daecl_as_f32(0x7EF311C3u - daecl_as_u32(d));
    r = r * (2.0f - d * r);
    r = r * (2.0f - d * r);
    r = r * (2.0f - d * r);
    r = r * (2.0f - d * r);
    return r;
}

/* Natural log of a normal float u in (0, 1] (daecl_u01_open0 never gives a
 * subnormal one), within about 1 ulp, from mul and add alone:
 * u = m 2^e with m in [0.75, 1.5), f = m - 1, and log(1 + f) evaluated as
 * fdlibm's log1p does, with s = f / (2 + f) and 2 atanh(s) = 2s + s r. */
static inline float daecl_portable_log(float u)
{
    daecl_u32 bits = daecl_as_u32(u);
    int e = (int)((bits >> 23) & 0xffu) - 127;
    float m = daecl_as_f32((bits & 0x007fffffu) | 0x3f800000u); /* [1, 2) */
    if (m >= 1.5f) {
        m = m * 0.5f;
        e = e + 1;
    }
    float f = m - 1.0f;                       /* [-0.25, 0.5) */
    float s = f * daecl__recip_1_4(2.0f + f); /* |s| < 0.2 */
    float s2 = s * s;
    float r = 0.1538461538f;                  /* 2/13, 2/11, ..., 2/3 */
    r = r * s2 + 0.1818181818f;
    r = r * s2 + 0.2222222222f;
    r = r * s2 + 0.2857142857f;
    r = r * s2 + 0.4f;
    r = r * s2 + 0.6666666667f;
    r = r * s2;
    float hfsq = 0.5f * f * f;
    float ln_m = f - (hfsq - s * (hfsq + r));
    float fe = (float)e; /* ln 2 split in hi + lo so that fe * hi is exact */
    return fe * 6.9313812256e-01f + (fe * 9.0580006145e-06f + ln_m);
}

/* sqrt(x) for a normal x >= 0 (or 0) from an inverse-sqrt guess and Newton
 * steps (mul/sub); subnormal x are outside its contract. */
static inline float daecl_portable_sqrt(float x)
{
    if (x <= 0.0f)
        return 0.0f;
    float y = daecl_as_f32(0x5f3759dfu - (daecl_as_u32(x) >> 1));
    float hx = 0.5f * x;
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    return x * y;
}

/* cos(2 pi t) for t = (v >> 8) * 2^-24: the top two bits pick the quadrant,
 * the other 22 the angle within it, so no range reduction is inexact. */
static inline float daecl_portable_cos2pi(daecl_u32 v)
{
    daecl_u32 quadrant = v >> 30;
    float frac = (float)((v >> 8) & 0x3fffffu) * 2.384185791015625e-07f; /* 2^-22 */
    float x = frac * 1.57079632679489662f;  /* [0, pi/2) */
    float x2 = x * x;
    float c = -1.1470745597729725e-11f;     /* -1/16! */
    c = c * x2 + 2.08767569878681e-09f;     /* 1/14! */
    c = c * x2 - 2.755731922398589e-07f;    /* -1/10! ... */
    c = c * x2 + 2.48015873015873e-05f;
    c = c * x2 - 1.388888888888889e-03f;
    c = c * x2 + 4.166666666666667e-02f;
    c = c * x2 - 0.5f;
    c = c * x2 + 1.0f;
    float s = 7.647163731819816e-13f;       /* 1/15! */
    s = s * x2 - 1.605904383682161e-10f;
    s = s * x2 + 2.505210838544172e-08f;
    s = s * x2 - 2.755731922398589e-06f;
    s = s * x2 + 1.984126984126984e-04f;
    s = s * x2 - 8.333333333333333e-03f;
    s = s * x2 + 1.666666666666667e-01f;
    s = s * x2;
    s = x - x * s;                          /* sin x */
    if (quadrant == 0u)
        return c;
    if (quadrant == 1u)
        return -s;
    if (quadrant == 2u)
        return -c;
    return s;
}

/* A standard normal from two words (Box-Muller), bit-identical on every
 * device that rounds add and mul as IEEE 754 requires. */
static inline float daecl_normal(daecl_u32 a, daecl_u32 b)
{
    float r = daecl_portable_sqrt(-2.0f * daecl_portable_log(daecl_u01_open0(a)));
    return r * daecl_portable_cos2pi(b);
}

#endif
