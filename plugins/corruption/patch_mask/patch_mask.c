/* patch_mask — the patch-masking corruption plugin (masked autoencoders,
 * He et al. 2022): each p x p patch of an example is masked with
 * probability q. A row-granular plugin: the host op and the OpenCL source
 * both come from patch_mask.cl, so cpu and opencl give the same bytes. */
#include <float.h>

#include "daecl/elementwise.h"

#include "patch_mask.cl"

DAECL_DEFINE_HOST_ROW_CORRUPTION(patch_mask_host_apply)

#include "patch_mask_cl.h"

static const daecl_param_spec params[] = {
    {.name = "p", .type = DAECL_PARAM_INT, .def = {4, 0}, .min = 1, .max = 65536,
     .doc = "side of a patch in pixels; patches tile the image from its top-left corner"},
    {.name = "q", .type = DAECL_PARAM_FLOAT, .def = {0.5, 0.0}, .min = 0.0, .max = 1.0,
     .doc = "probability that a patch is masked"},
    {.name = "value", .type = DAECL_PARAM_FLOAT, .def = {0.0, 0.0}, .min = -FLT_MAX,
     .max = FLT_MAX, .doc = "what a masked pixel becomes, in data units"},
};

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = patch_mask_host_apply,
    .cl_source = daecl_cl_source,
    .granularity = DAECL_GRAIN_ROW,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "patch_mask",
    .version = "1.0.0",
    .summary = "Patch masking as in masked autoencoders: each p x p patch is set to value with "
               "probability q.",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
