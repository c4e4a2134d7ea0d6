/* continuous_bernoulli - the continuous Bernoulli likelihood (Loaiza-Ganem &
 * Cunningham, NeurIPS 2019) in shared kernel C (include/daecl/clc.h): one
 * logit a.x = eta per dimension, lambda = sigmoid(eta), and the density on
 * [0, 1]
 *     p(x | lambda) = C(lambda) lambda^x (1 - lambda)^(1 - x),
 *     C(lambda) = 2 atanh(1 - 2 lambda) / (1 - 2 lambda)  (C(1/2) = 2).
 * In the logit it is the exponential family p(x) = exp(eta x - A(eta)) with
 *     A(eta) = log((e^eta - 1) / eta) = eta / 2 + S(eta / 2),
 *     S(y)   = log(sinh(y) / y)      (even, S(0) = 0),
 * so -log p = eta (1/2 - x) + S(eta / 2); d/d eta = mean - x; and
 *     mean   = A'(eta) = (1 + L(eta / 2)) / 2,   L(y) = coth(y) - 1/y = S'(y).
 * S and L have removable singularities at y = 0 (lambda = 1/2): below
 * |y| = 1/2 (|eta| = 1) both are Taylor series, above it closed forms whose
 * cancellation is small there. The branches meet within a few float ulps
 * of the nll (tests/test_likelihood.c measures it; docs/plugins.md says why
 * the checker needs that). No parameters. */

#define CB_SWITCH 0.5f /* |y| below: the series; at or above: the closed form */

/* S(y) = log(sinh y / y) = y^2/6 - y^4/180 + y^6/2835 - y^8/37800 + y^10/467775 - ...
 * (coefficients 2^2n B_2n / (2n (2n)!)); at |y| = 1/2 the first term left
 * out is 1e-9 of S. Above: |y| - log(2|y|) + log(1 - e^(-2|y|)), where the
 * last log loses at most 4e-8 (absolute) to e^(-2|y|) <= e^-1. */
static inline float cb_log_sinhc(float y)
{
    float t = DAECL_FABS(y);
    if (t < CB_SWITCH) {
        float t2 = t * t;
        float s = 2.1377799155576933e-06f;
        s = s * t2 - 2.6455026455026455e-05f;
        s = s * t2 + 3.5273368606701940e-04f;
        s = s * t2 - 5.5555555555555556e-03f;
        s = s * t2 + 1.6666666666666667e-01f;
        return s * t2;
    }
    return t - DAECL_LOG(2.0f * t) + DAECL_LOG1P(-DAECL_EXP(-2.0f * t));
}

/* L(y) = coth y - 1/y = y/3 - y^3/45 + 2 y^5/945 - y^7/4725 + 2 y^9/93555 - ...
 * (coefficients 2^2n B_2n / (2n)!), odd; at |y| = 1/2 the first term left
 * out is 2e-10 of L. Above: coth t = (1 + e) / (1 - e), e = e^(-2t) <= e^-1. */
static inline float cb_langevin(float y)
{
    float t = DAECL_FABS(y), l;
    if (t < CB_SWITCH) {
        float t2 = t * t;
        l = -2.1644042808063972e-06f;
        l = l * t2 + 2.1377799155576933e-05f;
        l = l * t2 - 2.1164021164021164e-04f;
        l = l * t2 + 2.1164021164021164e-03f;
        l = l * t2 - 2.2222222222222222e-02f;
        l = l * t2 + 3.3333333333333333e-01f;
        l = l * t;
    } else {
        float e = DAECL_EXP(-2.0f * t);
        l = (1.0f + e) / (1.0f - e) - 1.0f / t;
    }
    return y < 0.0f ? -l : l;
}

/* -log p(x | eta) = eta (1/2 - x) + S(eta / 2): the Bernoulli cross-entropy
 * softplus(eta) - x eta minus log C, in one expression that stays finite for
 * any finite eta (nothing is exponentiated upwards). Negative where the
 * density exceeds 1. */
static inline float daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return a.x * (0.5f - x) + cb_log_sinhc(0.5f * a.x);
}

static inline float cb_mean(float eta)
{
    return 0.5f + 0.5f * cb_langevin(0.5f * eta);
}

/* d nll / d eta = 1/2 - x + L(eta / 2) / 2 = mean - x (an exponential
 * family's score), differentiating daecl_lik_nll term by term. */
static inline daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return daecl_f4_make((0.5f - x) + 0.5f * cb_langevin(0.5f * a.x), 0.0f, 0.0f, 0.0f);
}

static inline float daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return cb_mean(a.x);
}

/* e^t - 1 for t <= 0: the Taylor series to t^8 below |t| = 1/2 (first term
 * left out: 1.4e-8 relative), exp(t) - 1 above (at most 9e-8 relative). */
static inline float cb_expm1_neg(float t)
{
    if (t > -0.5f) {
        float s = 2.4801587301587302e-05f;
        s = s * t + 1.9841269841269841e-04f;
        s = s * t + 1.3888888888888889e-03f;
        s = s * t + 8.3333333333333333e-03f;
        s = s * t + 4.1666666666666667e-02f;
        s = s * t + 1.6666666666666667e-01f;
        s = s * t + 0.5f;
        s = s * t + 1.0f;
        return s * t;
    }
    return DAECL_EXP(t) - 1.0f;
}

/* Inverse CDF. For eta <= 0, F(x) = (e^(eta x) - 1) / (e^eta - 1), so
 * x = log1p(u (e^eta - 1)) / eta; eta > 0 mirrors it (1 - X has logit
 * -eta), so e^eta is never formed. 1 + u (e^eta - 1) >= e^eta > 0, but it
 * may round to 0 at |eta| > 17, hence the clamp to [0, 1]. |eta| below
 * 2^-20 is uniform within 1e-6. */
static inline float daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
{
    (void)p;
    float u = daecl_u01(r.x);
    float t = -DAECL_FABS(a.x);
    float w = a.x > 0.0f ? 1.0f - u : u;
    float v = w;
    if (t < -9.5367431640625e-07f)
        v = DAECL_FMIN(DAECL_LOG1P(w * cb_expm1_neg(t)) / t, 1.0f);
    return a.x > 0.0f ? 1.0f - v : v;
}
