/* dropout - inverted dropout in shared kernel C (daecl/clc.h): each input is
 * set to 0 with probability p (packed p[0]) and every kept one is scaled by
 * 1 / (1 - p), so E[x~ | x] = x and the encoder sees inputs of one scale in
 * training and at test time (Srivastava et al., JMLR 2014). daecl's masking
 * plugin is the same noise without the rescaling.
 *
 * This text is compiled twice: as C, included by dropout.c (the host
 * reference), and as OpenCL C, embedded as cl_source (the device kernel).
 * Corruption must give the same bits on every device, so only integer ops,
 * compares and IEEE add, sub and mul may shape the result. */

/* 1 / d for a normal float d > 0 without `/`, which an OpenCL device may
 * compute 2.5 ulp off: a bit trick guesses within 13% and each Newton step
 * r = r (2 - d r) squares the relative error, so 4 steps reach float
 * precision (within 2 ulp of the rounded quotient, the same bits everywhere). */
static inline float dropout_recip(float d)
{
    float r = daecl_as_f32(0x7EF311C3u - daecl_as_u32(d));
    r = r * (2.0f - d * r);
    r = r * (2.0f - d * r);
    r = r * (2.0f - d * r);
    r = r * (2.0f - d * r);
    return r;
}

/* One element: x, its Philox block r (four random words of its own) and the
 * packed parameters p. Word r.x decides; u01 is in [0, 1 - 2^-24]. */
static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
{
    float drop = p[0];
    return daecl_u01(r.x) < drop ? 0.0f : x * dropout_recip(1.0f - drop);
}
