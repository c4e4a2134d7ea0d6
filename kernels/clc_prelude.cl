/* daecl - the OpenCL side of the "shared kernel C" dialect (see
 * include/daecl/clc.h for the C side). Prepended to every program daecl
 * builds, before include/daecl/philox.h and any plugin source. */
#pragma OPENCL FP_CONTRACT OFF
#define DAECL_OPENCL 1

typedef uint daecl_u32;
typedef uint4 daecl_u4;
typedef float4 daecl_f4;

#define DAECL_PARAMS __global const float *
#define DAECL_GLOBAL __global

static inline daecl_u4 daecl_u4_make(uint x, uint y, uint z, uint w)
{
    return (uint4)(x, y, z, w);
}

static inline daecl_f4 daecl_f4_make(float x, float y, float z, float w)
{
    return (float4)(x, y, z, w);
}

static inline uint daecl_mulhi(uint a, uint b)
{
    return mul_hi(a, b);
}

static inline uint daecl_as_u32(float f)
{
    return as_uint(f);
}

static inline float daecl_as_f32(uint u)
{
    return as_float(u);
}

#define DAECL_EXP(x) exp(x)
#define DAECL_LOG(x) log(x)
#define DAECL_LOG1P(x) log1p(x)
#define DAECL_FABS(x) fabs(x)
#define DAECL_FMAX(a, b) fmax((a), (b))
#define DAECL_FMIN(a, b) fmin((a), (b))
#define DAECL_SQRT(x) sqrt(x)
#define DAECL_ISFINITE(x) isfinite(x)
