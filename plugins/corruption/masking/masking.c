/* masking — the masking-noise corruption plugin (Vincent et al. 2008): each
 * input is zeroed with probability p. The host op and the OpenCL source both
 * come from masking.cl. */
#include "daecl/elementwise.h"

#include "masking.cl"

DAECL_DEFINE_HOST_CORRUPTION(masking_host_apply)

#include "masking_cl.h"

static const daecl_param_spec params[] = {
    {.name = "p", .type = DAECL_PARAM_FLOAT, .def = {0.25, 0.0}, .min = 0.0, .max = 1.0,
     .doc = "probability that an input is set to 0"},
};

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = masking_host_apply,
    .cl_source = daecl_cl_source,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "masking",
    .version = "1.0.0",
    .summary = "Masking noise: each input is set to 0 with probability p.",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
