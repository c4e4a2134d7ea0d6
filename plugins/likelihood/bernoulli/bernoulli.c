/* bernoulli — the Bernoulli likelihood plugin: the decoder emits one logit per
 * dimension; the loss is the (binary) cross-entropy in nats. The host ops and
 * the OpenCL source both come from bernoulli.cl. */
#include "daecl/elementwise.h"

#include "bernoulli.cl"

DAECL_DEFINE_HOST_LIKELIHOOD(bernoulli, 1)

#include "bernoulli_cl.h"

static const daecl_likelihood_ops ops = {
    .size = sizeof(daecl_likelihood_ops),
    .params_per_dim = 1,
    .host_loss_grad = bernoulli_loss_grad,
    .host_mean = bernoulli_mean,
    .host_sample = bernoulli_sample,
    .cl_source = daecl_cl_source,
    /* Normalised on {0, 1} only; grey values in [0, 1] are scored by the
     * cross-entropy, which is no log-density there (docs/plugins.md). */
    .support = DAECL_SUPPORT_DISCRETE,
    .support_lo = 0.0,
    .support_hi = 1.0,
    .data_lo = 0.0,
    .data_hi = 1.0,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
    .name = "bernoulli",
    .version = "1.0.0",
    .summary = "Bernoulli outputs from logits: binary cross-entropy for data in [0, 1].",
    .license = "MIT",
    .params = NULL,
    .n_params = 0,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
