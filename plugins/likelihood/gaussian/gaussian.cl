/* gaussian - the fixed-variance Gaussian likelihood in shared kernel C
 * (include/daecl/clc.h): one mean a.x per dimension, x ~ N(a, sigma^2) with
 * sigma = p[0]. The nll includes log(sigma) + log(2 pi) / 2, so it is a true
 * density in nats per dimension. */

#define GAUSSIAN_HALF_LOG_2PI 0.918938533204672742f

/* -log p(x | a) = z^2 / 2 + log(sigma) + log(2 pi) / 2, z = (x - a) / sigma. */
static inline float daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
{
    float sigma = p[0];
    float z = (x - a.x) / sigma;
    return 0.5f * z * z + DAECL_LOG(sigma) + GAUSSIAN_HALF_LOG_2PI;
}

/* d nll / d a = (a - x) / sigma^2 = -z / sigma (never forms sigma^2, which
 * underflows sooner). */
static inline daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
{
    float sigma = p[0];
    float z = (x - a.x) / sigma;
    return daecl_f4_make(-z / sigma, 0.0f, 0.0f, 0.0f);
}

static inline float daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return a.x;
}

static inline float daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
{
    return a.x + p[0] * daecl_normal(r.x, r.y);
}
