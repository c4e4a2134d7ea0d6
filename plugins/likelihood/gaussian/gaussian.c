/* gaussian — the fixed-variance Gaussian likelihood plugin: the decoder emits
 * the mean of each dimension, sigma is a parameter; with sigma = 1 the loss is
 * half the squared error plus a constant. Ops and OpenCL source: gaussian.cl. */
#include <math.h>

#include "daecl/elementwise.h"

#include "gaussian.cl"

DAECL_DEFINE_HOST_LIKELIHOOD(gaussian, 1)

#include "gaussian_cl.h"

static const daecl_param_spec params[] = {
    {.name = "sigma", .type = DAECL_PARAM_FLOAT, .def = {1.0, 0.0}, .min = 1e-12, .max = 1e6,
     .doc = "standard deviation of every output dimension, in data units"},
};

static const daecl_likelihood_ops ops = {
    .size = sizeof(daecl_likelihood_ops),
    .params_per_dim = 1,
    .host_loss_grad = gaussian_loss_grad,
    .host_mean = gaussian_mean,
    .host_sample = gaussian_sample,
    .cl_source = daecl_cl_source,
    .support = DAECL_SUPPORT_CONTINUOUS, /* the real line */
    .support_lo = -INFINITY,
    .support_hi = INFINITY,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
    .name = "gaussian",
    .version = "1.0.0",
    .summary = "Gaussian outputs N(a, sigma^2) with a fixed sigma: scaled squared error in nats.",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
