/* daecl tests — "fail_at", a corruption plugin that fails mid-run on purpose:
 * it passes its input through unchanged until the training step reaches its
 * `step` parameter, then its host_apply refuses with its own sentence. It has
 * no device code, so every backend runs it on the host. */
#include "daecl/plugin.h"

#include <string.h>

static const daecl_host *host;

static int fail_at_init(const daecl_host *h, daecl_err *err)
{
    (void)err;
    host = h;
    return 0;
}

/* xt (n_rows, dim) = x (n_rows, dim); an error from training step p[0] on.
 * Evaluation draws from another stream and is never refused. */
static int fail_at_apply(const float *x, float *xt, size_t n_rows, size_t dim,
                         const daecl_noise_key *key, const float *params, daecl_err *err)
{
    if (key->stream == DAECL_STREAM_TRAIN_CORRUPTION && (double)key->step >= (double)params[0])
        return host->error(err, DAECL_EPLUGIN,
                           "fail_at refuses training step %u as its step parameter (%.0f) asks; "
                           "raise corruption.step to train further",
                           (unsigned)key->step, (double)params[0]);
    memcpy(xt, x, n_rows * dim * sizeof *x);
    return 0;
}

static const daecl_param_spec params[] = {
    {.name = "step",
     .type = DAECL_PARAM_INT,
     .def = {1e6},
     .min = 0,
     .max = 1e6,
     .doc = "the first training step (0-based) whose corruption fails"},
};

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = fail_at_apply,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "fail_at",
    .version = "0.0.1",
    .summary = "identity corruption that fails from a given training step (a test plugin)",
    .license = "MIT",
    .params = params,
    .n_params = 1,
    .init = fail_at_init,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
