/* salt_pepper — the salt-and-pepper corruption plugin (Vincent et al. 2010):
 * each input, with probability p, is replaced by min or max with equal
 * chance. The host op and the OpenCL source both come from salt_pepper.cl. */
#include <float.h>
#include <stdio.h>

#include "daecl/elementwise.h"

#include "salt_pepper.cl"

DAECL_DEFINE_HOST_CORRUPTION(salt_pepper_host_apply)

#include "salt_pepper_cl.h"

enum { P_P, P_MIN, P_MAX }; /* schema order */

static const daecl_param_spec params[] = {
    [P_P] = {.name = "p", .type = DAECL_PARAM_FLOAT, .def = {0.1, 0.0}, .min = 0.0, .max = 1.0,
             .doc = "probability that an input is replaced by min or max"},
    [P_MIN] = {.name = "min", .type = DAECL_PARAM_FLOAT, .def = {0.0, 0.0}, .min = -FLT_MAX,
               .max = FLT_MAX, .doc = "the pepper value, in data units; must be below max"},
    [P_MAX] = {.name = "max", .type = DAECL_PARAM_FLOAT, .def = {1.0, 0.0}, .min = -FLT_MAX,
               .max = FLT_MAX, .doc = "the salt value, in data units; must be above min"},
};

#define MIN_MAX_MSG                                                                 \
    "the salt_pepper corruption needs min below max, but min is %g and max is %g: swap " \
    "them or change one"

static int check(const daecl_param_value *values, daecl_err *err)
{
    double lo = values[P_MIN].num[0], hi = values[P_MAX].num[0];
    if (lo < hi)
        return 0;
    return daecl_plugin_error(err, DAECL_ECONFIG, MIN_MAX_MSG, lo, hi);
}

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = salt_pepper_host_apply,
    .cl_source = daecl_cl_source,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "salt_pepper",
    .version = "1.0.0",
    .summary = "Salt-and-pepper noise: with probability p an input becomes min or max.",
    .license = "MIT",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .check = check,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
