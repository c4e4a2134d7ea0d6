/* daecl — an opened device with the run's plugins bound, and the core's
 * fallbacks: host ops for plugins the device cannot run, and fill and
 * lik_sample for a backend that leaves those optional slots NULL. */
#include "core/session.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/registry.h"

static int bind_plugin(daecl_session *s, const daecl_plugin_cfg *pc, void **bound, daecl_err *err)
{
    *bound = NULL;
    if (!s->be->bind)
        return 0;
    daecl_err why = {0};
    int rc = s->be->bind(s->ctx, pc->plugin, pc->packed, pc->n_packed, bound, &why);
    if (rc == DAECL_ENOTSUP) {
        daecl_log(DAECL_LOG_INFO, NULL,
                  "%s plugin '%s' runs on the host (%s): correct, but each step copies data "
                  "between host and device",
                  daecl_plugin_kind_name(pc->plugin->kind), pc->name,
                  why.msg[0] ? why.msg : "the backend cannot run it on the device");
        *bound = NULL;
        return 0;
    }
    if (rc) {
        *err = why;
        return rc;
    }
    return 0;
}

/* Whether to fuse the loss on this device. The fused loss walks each
 * dimension down the rows, one work-item per dimension: on a GPU that
 * reads adjacent columns together and saves two launches, but POCL's CPU
 * device runs it scalar, and R1 trained 8-13% slower with it than with the
 * row kernel, col_sum and sum (quiet, alternating runs, 2026-12-05). So
 * CPU devices keep the three ops. DAECL_FUSED_LOSS=always|never overrides
 * the choice (a test hook: docs/testing.md). Decided once, at open. */
static int fuse_loss_on(const daecl_device_info *device)
{
    const char *force = getenv("DAECL_FUSED_LOSS");
    if (force && strcmp(force, "always") == 0)
        return 1;
    if (force && strcmp(force, "never") == 0)
        return 0;
    return strcmp(device->type, "cpu") != 0;
}

int daecl_session_create(const daecl_config *cfg, const daecl_plugin_cfg *backend,
                         daecl_session **out, daecl_err *err)
{
    if (!backend)
        backend = &cfg->backend;
    *out = NULL;
    daecl_session *s = calloc(1, sizeof *s);
    if (!s)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory opening the backend");
    int rc;
    s->backend = backend->plugin;
    s->be = backend->plugin->ops;
    /* tests/bad's "pre" cases look for this line's absence: refused before
     * a device opened */
    daecl_log(DAECL_LOG_DEBUG, NULL, "opening the %s backend", backend->name);
    rc = s->be->open(daecl_host_table(), backend->values, &s->ctx, err);
    if (rc)
        goto fail;
    s->be->describe(s->ctx, &s->device, sizeof s->device);
    s->fuse_loss_here = fuse_loss_on(&s->device);
    s->corruption = cfg->corruption.plugin;
    s->corruption_cfg = &cfg->corruption;
    s->likelihood = cfg->likelihood.plugin;
    s->likelihood_cfg = &cfg->likelihood;
    rc = bind_plugin(s, &cfg->corruption, &s->corruption_bound, err);
    if (rc)
        goto fail;
    rc = bind_plugin(s, &cfg->likelihood, &s->likelihood_bound, err);
    if (rc)
        goto fail;
    *out = s;
    return 0;
fail:
    daecl_session_destroy(s);
    return rc;
}

int daecl_session_rebind(daecl_session *s, const daecl_config *cfg, daecl_err *err)
{
    if (s->corruption_cfg == &cfg->corruption && s->likelihood_cfg == &cfg->likelihood)
        return 0;
    if (s->be->unbind) {
        s->be->unbind(s->ctx, s->corruption_bound);
        s->be->unbind(s->ctx, s->likelihood_bound);
    }
    s->corruption_bound = s->likelihood_bound = NULL;
    s->corruption = cfg->corruption.plugin;
    s->corruption_cfg = &cfg->corruption;
    s->likelihood = cfg->likelihood.plugin;
    s->likelihood_cfg = &cfg->likelihood;
    int rc = bind_plugin(s, &cfg->corruption, &s->corruption_bound, err);
    return rc ? rc : bind_plugin(s, &cfg->likelihood, &s->likelihood_bound, err);
}

void daecl_session_destroy(daecl_session *s)
{
    if (!s)
        return;
    if (s->ctx) {
        if (s->be->unbind) {
            s->be->unbind(s->ctx, s->corruption_bound);
            s->be->unbind(s->ctx, s->likelihood_bound);
        }
        s->be->close(s->ctx);
    }
    for (int i = 0; i < 4; i++)
        free(s->stage[i]);
    free(s->held);
    free(s);
}

const char *daecl_session_device_name(const daecl_session *s)
{
    return s->device.name;
}

int daecl_session_read(daecl_session *s, daecl_slice src, float *dst, size_t n_floats,
                       daecl_err *err)
{
    return s->be->read(s->ctx, src.buf, src.off * sizeof(float), dst, n_floats * sizeof(float),
                       err);
}

static const daecl_ext_tune_gemm *tuning(const daecl_session *s)
{
    const daecl_ext_tune_gemm *tune = daecl_backend_extension(
        s->be, DAECL_EXT_TUNE_GEMM, offsetof(daecl_ext_tune_gemm, tune_gemm) + sizeof(void *));
    return tune && tune->tune_gemm ? tune : NULL;
}

int daecl_session_can_tune(const daecl_session *s)
{
    return tuning(s) != NULL;
}

int daecl_session_tune_gemm(daecl_session *s, daecl_gemm_shape *shapes, size_t n, double budget_s,
                            daecl_err *err)
{
    const daecl_ext_tune_gemm *tune = tuning(s);
    if (!tune)
        return DAECL_ENOTSUP;
    return tune->tune_gemm(s->ctx, shapes, sizeof shapes[0], n, budget_s, err);
}

int daecl_session_alloc(daecl_session *s, size_t n_floats, const char *what, daecl_buf **out,
                        daecl_err *err)
{
    if (s->n_held == s->cap_held) {
        size_t cap = s->cap_held ? 2 * s->cap_held : 32;
        void *p = realloc(s->held, cap * sizeof *s->held);
        if (!p)
            return daecl_err_set(err, DAECL_ENOMEM, "out of memory allocating the %s", what);
        s->held = p;
        s->cap_held = cap;
    }
    size_t bytes = n_floats * sizeof(float);
    int rc = s->be->alloc(s->ctx, bytes, what, out, err);
    if (rc)
        return rc;
    s->held[s->n_held].buf = *out;
    s->held[s->n_held++].bytes = bytes;
    s->device_bytes += bytes;
    if (s->device_bytes > s->device_peak)
        s->device_peak = s->device_bytes;
    return 0;
}

void daecl_session_free(daecl_session *s, daecl_buf *buf)
{
    if (!buf)
        return;
    for (size_t i = 0; i < s->n_held; i++)
        if (s->held[i].buf == buf) {
            s->device_bytes -= s->held[i].bytes;
            s->held[i] = s->held[--s->n_held];
            break;
        }
    s->be->free(s->ctx, buf);
}

/* stage[i] with room for n floats. */
static float *stage(daecl_session *s, int i, size_t n, daecl_err *err)
{
    if (s->stage_floats[i] < n) {
        float *p = realloc(s->stage[i], n * sizeof(float));
        if (!p) {
            daecl_err_set(err, DAECL_ENOMEM, "out of memory staging %zu floats for a host plugin", n);
            return NULL;
        }
        s->stage[i] = p;
        s->stage_floats[i] = n;
    }
    return s->stage[i];
}

static int write_slice(daecl_session *s, daecl_slice dst, const float *src, size_t n,
                       daecl_err *err)
{
    return s->be->write(s->ctx, dst.buf, dst.off * sizeof(float), src, n * sizeof(float), err);
}

/* Names a failing plugin op in the sentence if the plugin did not. */
static int plugin_failed(const daecl_plugin *p, const char *op, int rc, daecl_err *err)
{
    char msg[DAECL_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg[0] ? err->msg : daecl_status_message(rc));
    daecl_err_set(err, rc == DAECL_ENOMEM ? rc : DAECL_EPLUGIN, "%s plugin '%s' failed in %s: %s",
                  daecl_plugin_kind_name(p->kind), p->name, op, msg);
    return err->status;
}

int daecl_session_corrupt(daecl_session *s, daecl_slice x, daecl_slice xt, size_t n_rows,
                          size_t dim, const daecl_shape *shape, const daecl_noise_key *key,
                          daecl_err *err)
{
    if (s->corruption_bound)
        return s->be->corrupt(s->ctx, s->corruption_bound, x, xt, n_rows, dim, shape, key, err);
    size_t n = n_rows * dim;
    float *hx = stage(s, 0, n, err), *hxt = stage(s, 1, n, err);
    if (!hx || !hxt)
        return DAECL_ENOMEM;
    int rc = daecl_session_read(s, x, hx, n, err);
    if (rc)
        return rc;
    const daecl_corruption_ops *ops = s->corruption->ops;
    daecl_err_clear(err);
    rc = ops->host_apply(hx, hxt, n_rows, dim, shape, key, s->corruption_cfg->packed, err);
    if (rc)
        return plugin_failed(s->corruption, "host_apply", rc, err);
    return write_slice(s, xt, hxt, n, err);
}

int daecl_session_loss_grad(daecl_session *s, daecl_slice x, daecl_slice a, size_t n_rows,
                            size_t dim, float scale, daecl_slice nll_rows, daecl_slice grad,
                            daecl_err *err)
{
    if (s->likelihood_bound)
        return s->be->lik_loss_grad(s->ctx, s->likelihood_bound, x, a, n_rows, dim, scale,
                                    nll_rows, grad, err);
    const daecl_likelihood_ops *ops = s->likelihood->ops;
    size_t n = n_rows * dim, na = n * ops->params_per_dim;
    float *hx = stage(s, 0, n, err), *ha = stage(s, 1, na, err);
    float *hg = grad.buf ? stage(s, 2, na, err) : NULL;
    float *hn = nll_rows.buf ? stage(s, 3, n_rows, err) : NULL;
    if (!hx || !ha || (grad.buf && !hg) || (nll_rows.buf && !hn))
        return DAECL_ENOMEM;
    int rc = daecl_session_read(s, x, hx, n, err);
    if (!rc)
        rc = daecl_session_read(s, a, ha, na, err);
    if (rc)
        return rc;
    daecl_err_clear(err);
    rc = ops->host_loss_grad(hx, ha, n_rows, dim, s->likelihood_cfg->packed, scale, hn, hg, err);
    if (rc)
        return plugin_failed(s->likelihood, "host_loss_grad", rc, err);
    if (hg && (rc = write_slice(s, grad, hg, na, err)))
        return rc;
    if (hn && (rc = write_slice(s, nll_rows, hn, n_rows, err)))
        return rc;
    return 0;
}

int daecl_session_fuses_loss(const daecl_session *s)
{
    return s->fuse_loss_here && s->likelihood_bound && s->be->lik_loss_grad_sums;
}

int daecl_session_loss_grad_sums(daecl_session *s, daecl_slice x, daecl_slice a, size_t n_rows,
                                 size_t sum_rows, size_t dim, float scale, daecl_slice grad,
                                 daecl_slice grad_sums, daecl_slice nll_sums, daecl_err *err)
{
    if (!daecl_session_fuses_loss(s))
        return daecl_err_set(err, DAECL_ENOTSUP, "the fused loss ran on a backend or likelihood "
                             "without it; this is a bug in daecl, please report it");
    return s->be->lik_loss_grad_sums(s->ctx, s->likelihood_bound, x, a, n_rows, sum_rows, dim,
                                     scale, grad, grad_sums, nll_sums, err);
}

int daecl_session_mean(daecl_session *s, daecl_slice a, size_t n_rows, size_t dim,
                       daecl_slice mean, daecl_err *err)
{
    if (s->likelihood_bound)
        return s->be->lik_mean(s->ctx, s->likelihood_bound, a, n_rows, dim, mean, err);
    const daecl_likelihood_ops *ops = s->likelihood->ops;
    size_t n = n_rows * dim, na = n * ops->params_per_dim;
    float *ha = stage(s, 1, na, err), *hm = stage(s, 0, n, err);
    if (!ha || !hm)
        return DAECL_ENOMEM;
    int rc = daecl_session_read(s, a, ha, na, err);
    if (rc)
        return rc;
    daecl_err_clear(err);
    rc = ops->host_mean(ha, hm, n_rows, dim, s->likelihood_cfg->packed, err);
    if (rc)
        return plugin_failed(s->likelihood, "host_mean", rc, err);
    return write_slice(s, mean, hm, n, err);
}

int daecl_session_sample(daecl_session *s, daecl_slice a, size_t n_rows, size_t dim,
                         const daecl_noise_key *key, daecl_slice out, daecl_err *err)
{
    if (s->likelihood_bound && s->be->lik_sample)
        return s->be->lik_sample(s->ctx, s->likelihood_bound, a, n_rows, dim, key, out, err);
    const daecl_likelihood_ops *ops = s->likelihood->ops;
    size_t n = n_rows * dim, na = n * ops->params_per_dim;
    float *ha = stage(s, 1, na, err), *ho = stage(s, 0, n, err);
    if (!ha || !ho)
        return DAECL_ENOMEM;
    int rc = daecl_session_read(s, a, ha, na, err);
    if (rc)
        return rc;
    daecl_err_clear(err);
    rc = ops->host_sample(ha, ho, n_rows, dim, key, s->likelihood_cfg->packed, err);
    if (rc)
        return plugin_failed(s->likelihood, "host_sample", rc, err);
    return write_slice(s, out, ho, n, err);
}

int daecl_session_fill(daecl_session *s, daecl_slice dst, size_t n, float value, daecl_err *err)
{
    if (s->be->fill)
        return s->be->fill(s->ctx, dst, n, value, err);
    /* In chunks of 64 Ki floats: 256 KiB of staging, whatever n is. */
    size_t chunk = n < 65536 ? n : 65536;
    float *h = stage(s, 0, chunk ? chunk : 1, err);
    if (!h)
        return DAECL_ENOMEM;
    for (size_t i = 0; i < chunk; i++)
        h[i] = value;
    for (size_t done = 0; done < n; done += chunk) {
        size_t k = n - done < chunk ? n - done : chunk;
        int rc = write_slice(s, daecl_at(dst.buf, dst.off + done), h, k, err);
        if (rc)
            return rc;
    }
    return 0;
}
