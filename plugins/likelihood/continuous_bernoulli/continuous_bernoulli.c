/* continuous_bernoulli — the continuous Bernoulli likelihood plugin: the
 * decoder emits one logit per dimension, and the loss is the negative log
 * of a density on [0, 1] (Loaiza-Ganem & Cunningham 2019), the properly
 * normalised counterpart of bernoulli for grey values. Ops and OpenCL
 * source come from continuous_bernoulli.cl. */
#include <math.h>

#include "daecl/elementwise.h"

#include "continuous_bernoulli.cl"

DAECL_DEFINE_HOST_LIKELIHOOD(continuous_bernoulli, 1)

#include "continuous_bernoulli_cl.h"

static const daecl_likelihood_ops ops = {
    .size = sizeof(daecl_likelihood_ops),
    .params_per_dim = 1,
    .host_loss_grad = continuous_bernoulli_loss_grad,
    .host_mean = continuous_bernoulli_mean,
    .host_sample = continuous_bernoulli_sample,
    .cl_source = daecl_cl_source,
    .support = DAECL_SUPPORT_CONTINUOUS,
    .support_lo = 0.0,
    .support_hi = 1.0,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
    .name = "continuous_bernoulli",
    .version = "1.0.0",
    .summary = "Continuous Bernoulli density on [0, 1] from logits: a normalised likelihood "
               "for grey values.",
    .license = "MIT",
    .params = NULL,
    .n_params = 0,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
