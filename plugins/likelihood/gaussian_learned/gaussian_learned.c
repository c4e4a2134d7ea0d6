/* gaussian_learned — the Gaussian likelihood with a learned variance: the
 * decoder emits a mean and a log-variance per dimension (k = 2), the latter
 * clamped to [min_log_var, max_log_var]. Ops and OpenCL source come from
 * gaussian_learned.cl. */
#include <math.h>
#include <stdio.h>

#include "daecl/elementwise.h"

#include "gaussian_learned.cl"

DAECL_DEFINE_HOST_LIKELIHOOD(gaussian_learned, 2)

#include "gaussian_learned_cl.h"

enum { P_MIN_LOG_VAR, P_MAX_LOG_VAR }; /* schema order */

static const daecl_param_spec params[] = {
    [P_MIN_LOG_VAR] = {.name = "min_log_var", .type = DAECL_PARAM_FLOAT, .def = {-9.0, 0.0},
                       .min = -50.0, .max = 50.0,
                       .doc = "lower clamp of the predicted log-variance (natural log)"},
    [P_MAX_LOG_VAR] = {.name = "max_log_var", .type = DAECL_PARAM_FLOAT, .def = {9.0, 0.0},
                       .min = -50.0, .max = 50.0,
                       .doc = "upper clamp of the predicted log-variance (natural log)"},
};

#define MIN_MAX_MSG                                                                         \
    "the gaussian_learned likelihood needs min_log_var below max_log_var, but they are %g " \
    "and %g: swap them or change one"

static int check(const daecl_param_value *values, daecl_err *err)
{
    double lo = values[P_MIN_LOG_VAR].num[0], hi = values[P_MAX_LOG_VAR].num[0];
    if (lo < hi)
        return 0;
    return daecl_plugin_error(err, DAECL_ECONFIG, MIN_MAX_MSG, lo, hi);
}

static const daecl_likelihood_ops ops = {
    .size = sizeof(daecl_likelihood_ops),
    .params_per_dim = 2,
    .host_loss_grad = gaussian_learned_loss_grad,
    .host_mean = gaussian_learned_mean,
    .host_sample = gaussian_learned_sample,
    .cl_source = daecl_cl_source,
    .support = DAECL_SUPPORT_CONTINUOUS, /* the real line */
    .support_lo = -INFINITY,
    .support_hi = INFINITY,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
    .name = "gaussian_learned",
    .version = "1.0.0",
    .summary = "Gaussian outputs with a learned, clamped log-variance per dimension (k = 2).",
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
