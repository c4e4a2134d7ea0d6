/* laplace - the Laplace likelihood with a fixed scale b (packed p[0]) in
 * shared kernel C (daecl/clc.h): x ~ Laplace(a, b), with density
 * exp(-|x - a| / b) / (2 b). The decoder emits the location a, one value per
 * dimension (a.x), which is also the mean. Minimising the nll is L1
 * regression: robust to outliers, where the Gaussian's squared error is not.
 *
 * Like dropout.cl, this text is compiled as C (laplace.c) and as OpenCL C.
 * nll, grad and mean need agreement within a tolerance only, so they may use
 * `/` and DAECL_LOG; sample draws noise and keeps to add and mul. */

/* -log p(x | a) = |x - a| / b + log(2 b), in nats. */
static inline float daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
{
    float b = p[0];
    return DAECL_FABS(x - a.x) / b + DAECL_LOG(2.0f * b);
}

/* d nll / d a = sign(a - x) / b; at the kink a = x, 0 (a subgradient). */
static inline daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
{
    float s = a.x > x ? 1.0f : (a.x < x ? -1.0f : 0.0f);
#ifdef DAECL_TEMPLATE_BROKEN_GRADIENT
    /* Test hook only: tests/test_sdk.c builds the host side with this sign
     * flipped and expects `daecl plugin check` to fail on the gradient. */
    s = -s;
#endif
    return daecl_f4_make(s / p[0], 0.0f, 0.0f, 0.0f);
}

/* E[x | a] = a: the reconstruction. */
static inline float daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return a.x;
}

/* The inverse CDF split in two: |x - a| = b E with E = -log u ~ Exp(1)
 * (u in (0, 1] from word r.x), and a fair sign from word r.y. The log is
 * daecl_portable_log (add and mul only), so every device draws the same bits. */
static inline float daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
{
    float e = -daecl_portable_log(daecl_u01_open0(r.x));
    float s = (r.y & 1u) ? 1.0f : -1.0f;
    return a.x + s * (p[0] * e);
}
