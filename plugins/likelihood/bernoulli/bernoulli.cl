/* bernoulli - the Bernoulli likelihood in shared kernel C (include/daecl/clc.h):
 * one logit a.x per dimension, p(x = 1 | a) = sigmoid(a). Every function is
 * written to stay finite in float32 for any finite logit (|a| = 100 included).
 * For x strictly between 0 and 1 the nll is the cross-entropy, not a normalised
 * density. No parameters. */

/* sigmoid(-|a|) in (0, 1/2], without overflow: exp only ever sees -|a| <= 0. */
static inline float bernoulli_sigmoid_neg_abs(float a)
{
    float e = DAECL_EXP(-DAECL_FABS(a));
    return e / (1.0f + e);
}

static inline float bernoulli_sigmoid(float a)
{
    float t = bernoulli_sigmoid_neg_abs(a);
    return a >= 0.0f ? 1.0f - t : t;
}

/* -log p(x | a) = softplus(a) - x a = max(a, 0) - x a + log1p(exp(-|a|)). */
static inline float daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    float l = a.x;
    return DAECL_FMAX(l, 0.0f) - x * l + DAECL_LOG1P(DAECL_EXP(-DAECL_FABS(l)));
}

/* d nll / d a = sigmoid(a) - x, as (1 - x) - sigmoid(-a) for a >= 0: the
 * small sigmoid(-|a|) is never rounded against 1 first, so the gradient
 * stays exact to float where sigmoid(a) rounds to 1 (a = 20, x = 1 gives
 * -2.1e-9, not 0). */
static inline daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    float t = bernoulli_sigmoid_neg_abs(a.x);
    float g = a.x >= 0.0f ? (1.0f - x) - t : t - x;
    return daecl_f4_make(g, 0.0f, 0.0f, 0.0f);
}

static inline float daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return bernoulli_sigmoid(a.x);
}

static inline float daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
{
    (void)p;
    return daecl_u01(r.x) < bernoulli_sigmoid(a.x) ? 1.0f : 0.0f;
}
