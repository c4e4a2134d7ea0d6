/* gaussian — the additive Gaussian corruption plugin: x~ = x + N(0, sigma^2),
 * clamped into an optional [lo, hi]. The host op and the OpenCL source both
 * come from gaussian.cl. */
#include <math.h>

#include "daecl/elementwise.h"

#include "gaussian.cl"

DAECL_DEFINE_HOST_CORRUPTION(gaussian_host_apply)

#include "gaussian_cl.h"

static const daecl_param_spec params[] = {
    {.name = "sigma", .type = DAECL_PARAM_FLOAT, .def = {0.1, 0.0}, .min = 0.0, .max = 1e6,
     .doc = "standard deviation of the additive noise, in data units"},
    {.name = "clip", .type = DAECL_PARAM_FLOAT2, .def = {-INFINITY, INFINITY},
     .min = -INFINITY, .max = INFINITY,
     .doc = "clamp the corrupted value into [lo, hi]; default: no clipping"},
};

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = gaussian_host_apply,
    .cl_source = daecl_cl_source,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "gaussian",
    .version = "1.0.0",
    .summary = "Additive Gaussian noise N(0, sigma^2) on each input, optionally clipped.",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
