/* daecl tests — a likelihood N(a, 1) that `daecl plugin check` must fail in
 * exactly the way its definition says: OFF_BY_LOG2 (nll log 2 too small in
 * host and device code alike, so exp(-nll) integrates to 2), MEAN_OFF
 * (mean() a + 1/2 while nll and sample agree on a) or WRONG_SUPPORT (declares
 * [0, inf) for a density on the real line). Every other check passes. */
#include <math.h>

#include "daecl/elementwise.h"

#ifdef OFF_BY_LOG2
#define WRONG_CONST 0.69314718f
#else
#define WRONG_CONST 0.0f
#endif

static inline float daecl_lik_nll(float x, daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    float d = x - a.x;
    return 0.5f * d * d + 0.918938533f - WRONG_CONST;
}

static inline daecl_f4 daecl_lik_grad(float x, daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
    return daecl_f4_make(a.x - x, 0.0f, 0.0f, 0.0f);
}

static inline float daecl_lik_mean(daecl_f4 a, DAECL_PARAMS p)
{
    (void)p;
#ifdef MEAN_OFF
    return a.x + 0.5f;
#else
    return a.x;
#endif
}

static inline float daecl_lik_sample(daecl_f4 a, daecl_u4 r, DAECL_PARAMS p)
{
    (void)p;
    return a.x + daecl_normal(r.x, r.y);
}

DAECL_DEFINE_HOST_LIKELIHOOD(wrong, 1)

static const daecl_likelihood_ops ops = {
    .size = sizeof(daecl_likelihood_ops),
    .params_per_dim = 1,
    .host_loss_grad = wrong_loss_grad,
    .host_mean = wrong_mean,
    .host_sample = wrong_sample,
    .support = DAECL_SUPPORT_CONTINUOUS,
#ifdef WRONG_SUPPORT
    .support_lo = 0.0,
#else
    .support_lo = -INFINITY,
#endif
    .support_hi = INFINITY,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
    .name = "wrong",
    .version = "0.0.1",
    .summary = "test likelihood, wrong on purpose",
    .license = "MIT",
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
