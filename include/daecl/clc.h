/* daecl - the C side of the "shared kernel C" dialect.
 *
 * Element functions that must give the same bits on the host and on an OpenCL
 * device (Philox, corruption, likelihoods) are written once, in the common
 * subset of C99 and OpenCL C 1.2, using the names below. A C file includes
 * this header before the shared code; an OpenCL program gets the same names
 * from the backend's prelude (kernels/clc_prelude.cl, which also defines
 * DAECL_OPENCL). Only IEEE add, sub and mul (correctly rounded everywhere)
 * and integer ops may feed results that must be bit-identical; build C with -ffp-contract=off (the CMake package
 * does) so no FMA sneaks in, as the OpenCL prelude does with FP_CONTRACT OFF. */
#ifndef DAECL_CLC_H
#define DAECL_CLC_H

#ifndef DAECL_OPENCL
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t daecl_u32;
typedef struct daecl_u4 { uint32_t x, y, z, w; } daecl_u4;
typedef struct daecl_f4 { float x, y, z, w; } daecl_f4;

/* Plugin parameters as packed floats (plugin.h: "Packed parameters"). */
#define DAECL_PARAMS const float *
/* The address space of a device buffer (__global in OpenCL C). */
#define DAECL_GLOBAL

static inline daecl_u4 daecl_u4_make(uint32_t x, uint32_t y, uint32_t z, uint32_t w)
{
    daecl_u4 r = {x, y, z, w};
    return r;
}

static inline daecl_f4 daecl_f4_make(float x, float y, float z, float w)
{
    daecl_f4 r = {x, y, z, w};
    return r;
}

static inline uint32_t daecl_mulhi(uint32_t a, uint32_t b)
{
    return (uint32_t)(((uint64_t)a * b) >> 32);
}

static inline uint32_t daecl_as_u32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float daecl_as_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fmaxf/fminf as C99 and OpenCL define them (a NaN argument yields the
 * other one), as compares the compiler can vectorise instead of calls. */
static inline float daecl_fmaxf(float a, float b)
{
    return (a >= b || b != b) ? a : b;
}

static inline float daecl_fminf(float a, float b)
{
    return (a <= b || b != b) ? a : b;
}

/* Math for code that needs agreement within a tolerance, not bit identity.
 * exp and log1p are daecl's own (mathfn.h, about 1 ulp): no libm call in an
 * element loop, so the compiler can vectorise it. */
#define DAECL_EXP(x) daecl_expf(x)
#define DAECL_LOG(x) logf(x)
#define DAECL_LOG1P(x) daecl_log1pf(x)
#define DAECL_FABS(x) fabsf(x)
#define DAECL_FMAX(a, b) daecl_fmaxf((a), (b))
#define DAECL_FMIN(a, b) daecl_fminf((a), (b))
#define DAECL_SQRT(x) sqrtf(x)
#define DAECL_ISFINITE(x) isfinite(x)
#endif /* !DAECL_OPENCL */

#endif

#ifndef DAECL_OPENCL
#include "daecl/mathfn.h"
#endif
