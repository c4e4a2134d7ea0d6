/* daecl — clean and corrupted NLL on held-out data. */
#include "core/eval.h"

#include <stdlib.h>

#include "core/error.h"
#include "daecl/plugin.h"

int daecl_eval_nll(daecl_graph *g, daecl_feeder *data, uint64_t seed, daecl_nll_result *out,
                   daecl_err *err)
{
    daecl_session *s = g->s;
    size_t n_rows = data->ds->n_rows, dim = data->ds->dim, b = g->batch_max;
    size_t n_batches = (n_rows + b - 1) / b;
    /* Two sums per batch, read back together: (2, n_batches). */
    daecl_buf *sums = NULL;
    float *hf = malloc(2 * n_batches * sizeof *hf);
    int rc = hf ? daecl_session_alloc(s, 2 * n_batches, "evaluation sums", &sums, err)
                : daecl_err_set(err, DAECL_ENOMEM, "out of memory evaluating");
    if (rc)
        goto done;
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
    }
    if ((rc = s->be->read(s->ctx, sums, 0, hf, 2 * n_batches * sizeof *hf, err)))
        goto done;
    double clean = 0, corrupted = 0;
    for (size_t i = 0; i < n_batches; i++) {
        clean += hf[i];
        corrupted += hf[n_batches + i];
    }
    out->clean = clean / (double)n_rows;
    out->corrupted = corrupted / (double)n_rows;
    out->n_rows = n_rows;
done:
    s->be->free(s->ctx, sums);
    free(hf);
    return rc;
}
