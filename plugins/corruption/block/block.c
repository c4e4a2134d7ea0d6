/* block — the block-occlusion corruption plugin: one k x k square of each
 * example is occluded, filled with a value or with uniform noise. A
 * row-granular plugin: the host op and the OpenCL source both come from
 * block.cl, so cpu and opencl give the same bytes. */
#include <float.h>

#include "daecl/elementwise.h"

#include "block.cl"

DAECL_DEFINE_HOST_ROW_CORRUPTION(block_host_apply)

#include "block_cl.h"

enum { P_K, P_FILL, P_VALUE, P_NOISE }; /* schema order */

static const daecl_param_spec params[] = {
    [P_K] = {.name = "k", .type = DAECL_PARAM_INT, .def = {10, 0}, .min = 1, .max = 65536,
             .doc = "side of the square in pixels; clipped to the image's height and width"},
    [P_FILL] = {.name = "fill", .type = DAECL_PARAM_ENUM, .def_str = "value",
                .choices = "value|noise",
                .doc = "what the square holds: `value`, or uniform noise in `noise` [lo, hi)"},
    [P_VALUE] = {.name = "value", .type = DAECL_PARAM_FLOAT, .def = {0.0, 0.0}, .min = -FLT_MAX,
                 .max = FLT_MAX, .doc = "the fill value of fill: value, in data units"},
    /* +-1e30 keeps hi - lo finite in float. */
    [P_NOISE] = {.name = "noise", .type = DAECL_PARAM_FLOAT2, .def = {0.0, 1.0},
                 .min = -1e30, .max = 1e30,
                 .doc = "[lo, hi] of the uniform noise of fill: noise, in data units"},
};

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = block_host_apply,
    .cl_source = daecl_cl_source,
    .granularity = DAECL_GRAIN_ROW,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "block",
    .version = "1.0.0",
    .summary = "Block occlusion: one k x k square per example, uniform over the image, set to a "
               "value or to noise.",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
