/* daecl — clean and corrupted NLL, and denoising errors, on held-out data. */
#include "core/eval.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "daecl/plugin.h"

/* Adds sum (a - b)^2 and sum (c - b)^2 over n values into *ab, *cb. */
static void sq_errors(const float *a, const float *b, const float *c, size_t n, double *ab,
                      double *cb)
{
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d1 = (double)a[i] - b[i], d2 = (double)c[i] - b[i];
        s1 += d1 * d1;
        s2 += d2 * d2;
    }
    *ab += s1;
    *cb += s2;
}

static double psnr(double range, double mse)
{
    return mse > 0 ? 10.0 * log10(range * range / mse) : INFINITY;
}

int daecl_eval(daecl_graph *g, daecl_feeder *data, uint64_t seed, int want_denoising,
               daecl_eval_result *out, daecl_err *err)
{
    daecl_session *s = g->s;
    const daecl_backend_ops *be = s->be;
    size_t n_rows = data->ds->n_rows, dim = data->ds->dim, b = g->batch_max;
    size_t n_batches = (n_rows + b - 1) / b;
    /* Two sums per batch, read back together: (2, n_batches). The denoising
     * pass needs host copies of a batch: clean, corrupted, reconstruction. */
    daecl_buf *sums = NULL, *mean = NULL;
    float *hf = malloc(2 * n_batches * sizeof *hf);
    float *hx = NULL, *hxt = NULL, *hm = NULL;
    double se_recon = 0, se_corrupt = 0;
    int rc = hf ? daecl_session_alloc(s, 2 * n_batches, "evaluation sums", &sums, err)
                : daecl_err_set(err, DAECL_ENOMEM, "out of memory evaluating");
    if (rc)
        goto done;
    if (want_denoising) {
        hx = malloc(b * dim * sizeof *hx);
        hxt = malloc(b * dim * sizeof *hxt);
        hm = malloc(b * dim * sizeof *hm);
        if (!hx || !hxt || !hm) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory evaluating");
            goto done;
        }
        if ((rc = daecl_session_alloc(s, b * dim, "reconstructions", &mean, err)))
            goto done;
    }
    if ((rc = daecl_feeder_sequential(data, err)))
        goto done;
    for (size_t i = 0; i < n_batches; i++) {
        size_t first = i * b, n = n_rows - first < b ? n_rows - first : b;
        daecl_slice x;
        if ((rc = daecl_feeder_batch(data, first, n, &x, err)))
            goto done;
        if ((rc = daecl_graph_forward(g, x, n, UINT32_MAX, err)) ||
            (rc = daecl_graph_loss(g, x, n, daecl_at(sums, i), 0, err)))
            goto done;
        daecl_noise_key key = {.seed = seed, .stream = DAECL_STREAM_EVAL_CORRUPTION, .step = 0,
                               .elem0 = (uint64_t)first * dim};
        daecl_slice xt = daecl_at(g->input, 0);
        if ((rc = daecl_session_corrupt(s, x, xt, n, dim, &key, err)) ||
            (rc = daecl_graph_forward(g, xt, n, UINT32_MAX, err)) ||
            (rc = daecl_graph_loss(g, x, n, daecl_at(sums, n_batches + i), 0, err)))
            goto done;
        if (!want_denoising)
            continue;
        daecl_slice a = daecl_graph_layer_out(g, g->m->n_layers - 1);
        size_t bytes = n * dim * sizeof(float);
        if ((rc = daecl_session_mean(s, a, n, dim, daecl_at(mean, 0), err)) ||
            (rc = be->read(s->ctx, x.buf, x.off * sizeof(float), hx, bytes, err)) ||
            (rc = be->read(s->ctx, xt.buf, xt.off * sizeof(float), hxt, bytes, err)) ||
            (rc = be->read(s->ctx, mean, 0, hm, bytes, err)))
            goto done;
        sq_errors(hm, hx, hxt, n * dim, &se_recon, &se_corrupt);
    }
    if ((rc = be->read(s->ctx, sums, 0, hf, 2 * n_batches * sizeof *hf, err)))
        goto done;
    double clean = 0, corrupted = 0;
    for (size_t i = 0; i < n_batches; i++) {
        clean += hf[i];
        corrupted += hf[n_batches + i];
    }
    out->nll_clean = clean / (double)n_rows;
    out->nll_corrupted = corrupted / (double)n_rows;
    out->n_rows = n_rows;
    out->range = (double)data->ds->max - (double)data->ds->min;
    if (out->range <= 0)
        out->range = 1;
    if (want_denoising) {
        double values = (double)n_rows * (double)dim;
        out->mse_reconstruction = se_recon / values;
        out->mse_corrupted = se_corrupt / values;
        out->psnr_reconstruction = psnr(out->range, out->mse_reconstruction);
        out->psnr_corrupted = psnr(out->range, out->mse_corrupted);
    }
done:
    daecl_session_free(s, sums);
    daecl_session_free(s, mean);
    free(hf);
    free(hx);
    free(hxt);
    free(hm);
    return rc;
}
