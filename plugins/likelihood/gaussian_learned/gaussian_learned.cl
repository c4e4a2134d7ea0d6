/* gaussian_learned - the heteroscedastic Gaussian likelihood in shared kernel
 * C (include/daecl/clc.h): per dimension a.x = mean mu, a.y = log-variance s,
 * clamped to s_c = clamp(s, p[0], p[1]) so exp(-s_c) stays finite. Like
 * torch.clamp, the clamp stops the gradient: d nll / d s is 0 where s lies
 * outside [p[0], p[1]] (the ends themselves pass it). */

#define GAUSSIAN_LEARNED_LOG_2PI 1.83787706640934548f

static inline float gaussian_learned_log_var(daecl_f4 a, DAECL_PARAMS p)
{
    return DAECL_FMIN(DAECL_FMAX(a.y, p[0]), p[1]);
}

/* -log p(x | mu, s) = (log(2 pi) + s_c + (x - mu)^2 exp(-s_c)) / 2, with the
 * square formed as z^2, z = (x - mu) exp(-s_c / 2), to delay overflow. */
static inline float daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
{
    float s = gaussian_learned_log_var(a, p);
    float z = (x - a.x) * DAECL_EXP(-0.5f * s);
    return 0.5f * (GAUSSIAN_LEARNED_LOG_2PI + s + z * z);
}

/* d/d mu = (mu - x) exp(-s_c);  d/d s = (1 - (x - mu)^2 exp(-s_c)) / 2 inside
 * the clamp, 0 outside it. */
static inline daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
{
    float s = gaussian_learned_log_var(a, p);
    float e = DAECL_EXP(-0.5f * s);
    float z = (x - a.x) * e;
    float g_s = (a.y >= p[0] && a.y <= p[1]) ? 0.5f * (1.0f - z * z) : 0.0f;
    return daecl_f4_make(-z * e, g_s, 0.0f, 0.0f);
}

static inline float daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return a.x;
}

static inline float daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
{
    float s = gaussian_learned_log_var(a, p);
    return a.x + DAECL_EXP(0.5f * s) * daecl_normal(r.x, r.y);
}
