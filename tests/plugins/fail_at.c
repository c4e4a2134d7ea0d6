/* daecl tests — "fail_at", a corruption plugin that fails mid-run on purpose:
 * it passes its input through unchanged until training reaches the epoch
 * and position $DAECL_FAIL_AT ("EPOCH:POSITION", both 0-based; the noise
 * key 2.0 knows no step), then its host_apply refuses with its own
 * sentence. The place is read from the environment, not from a parameter, so the run
 * resumes with the same config once the variable is unset (a resumed run may
 * not change its corruption). No device code: every backend runs it on the
 * host. */
#include "daecl/plugin.h"

#include <stdlib.h>
#include <string.h>

static const daecl_host *host;

static int fail_at_init(const daecl_host *h, daecl_err *err)
{
    (void)err;
    host = h;
    return 0;
}

/* xt (n_rows, dim) = x (n_rows, dim); an error for a training batch at or
 * after $DAECL_FAIL_AT (never when it is unset). Evaluation draws from
 * another stream and is never refused. */
static int fail_at_apply(const float *x, float *xt, size_t n_rows, size_t dim,
                         const daecl_shape *shape, const daecl_noise_key *key,
                         const float *params, daecl_err *err)
{
    (void)params;
    (void)shape;
    const char *at = getenv("DAECL_FAIL_AT");
    char *end = NULL;
    unsigned long epoch = at && *at ? strtoul(at, &end, 10) : 0;
    unsigned long pos = end && *end == ':' ? strtoul(end + 1, NULL, 10) : 0;
    if (at && *at && key->stream == DAECL_STREAM_TRAIN_CORRUPTION &&
        (key->epoch > epoch || (key->epoch == epoch && key->pos0 >= pos)))
        return host->error(err, DAECL_EPLUGIN,
                           "fail_at refuses training epoch %u position %u as DAECL_FAIL_AT=%s "
                           "asks; unset it to train further",
                           (unsigned)key->epoch, (unsigned)key->pos0, at);
    memcpy(xt, x, n_rows * dim * sizeof *x);
    return 0;
}

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = fail_at_apply,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "fail_at",
    .version = "0.0.1",
    .summary = "identity corruption that fails from a given training position (a test plugin)",
    .license = "MIT",
    .init = fail_at_init,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
