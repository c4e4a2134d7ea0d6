/* none — the identity corruption plugin: x~ = x, the plain-autoencoder
 * baseline. The host op and the OpenCL source come from none.cl. */
#include "daecl/elementwise.h"

#include "none.cl"

DAECL_DEFINE_HOST_CORRUPTION(none_host_apply)

#include "none_cl.h"

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = none_host_apply,
    .cl_source = daecl_cl_source,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "none",
    .version = "1.0.0",
    .summary = "No corruption: the input is passed through unchanged (plain autoencoder).",
    .license = "MIT",
    .params = NULL,
    .n_params = 0,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
