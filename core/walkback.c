/* daecl — a step's training pairs: the clean examples' own, and
 * walkback's from the model's chain (walkback.h). */
#include "core/walkback.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "daecl/philox.h"

struct daecl_walkback {
    const daecl_config *cfg;
    daecl_session *s;
    uint32_t batch_max, rows_max;
    daecl_buf *state;   /* (batch_max, D): the chain's state x*_j */
    daecl_buf *pairs;   /* (rows_max, D): the pairs' inputs, compacted (geometric walkback) */
    daecl_buf *target;  /* (rows_max, D): the pairs' clean rows */
    daecl_buf *idx;     /* (2 rows_max) uint32: the targets' rows, then the pairs' */
    uint32_t *host_idx; /* (2 rows_max) */
    uint8_t *k;         /* (batch_max): walkback pairs of each row of the step */
    size_t target_n;    /* the rows n the uploaded target index of n (k + 1) pairs serves; 0 none */
};

uint32_t daecl_walkback_rows(const daecl_config *c, uint32_t batch)
{
    return batch * (1u + c->train.walkback);
}

size_t daecl_walkback_count(const daecl_config *c, uint32_t epoch, size_t pos0, size_t n,
                            uint8_t *k_out)
{
    uint32_t k = c->train.walkback;
    double p = c->train.walkback_p;
    if (p <= 0) {
        if (k_out)
            memset(k_out, (int)k, n);
        return n * k;
    }
    size_t total = 0;
    for (size_t r = 0; r < n; r++) {
        uint32_t steps = 0;
        /* Step j takes place when the draw of its substep says so, and
         * every step before it did. */
        while (steps < k) {
            daecl_u4 b = daecl_philox_block((uint32_t)c->seed, (uint32_t)(c->seed >> 32),
                                            daecl_noise_word3(DAECL_STREAM_WALKBACK, 0, steps + 1),
                                            epoch, (uint32_t)(pos0 + r), 0);
            if ((double)b.x * 0x1p-32 >= p)
                break;
            steps++;
        }
        if (k_out)
            k_out[r] = (uint8_t)steps;
        total += steps;
    }
    return total;
}

int daecl_walkback_create(daecl_graph *g, const daecl_config *c, daecl_walkback **out,
                          daecl_err *err)
{
    *out = NULL;
    if (c->train.walkback == 0)
        return 0;
    daecl_walkback *w = calloc(1, sizeof *w);
    if (!w)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory preparing walkback");
    w->cfg = c;
    w->s = g->s;
    w->batch_max = g->batch_max;
    w->rows_max = daecl_walkback_rows(c, g->batch_max);
    size_t dim = g->m->dim;
    int rc;
    if (g->rows_max < w->rows_max) {
        rc = daecl_err_set(err, DAECL_EINVAL, "the training graph holds %u rows, not the %u "
                           "rows of walkback's pairs", g->rows_max, w->rows_max);
        goto fail;
    }
    w->host_idx = malloc(2 * (size_t)w->rows_max * sizeof *w->host_idx);
    w->k = malloc(w->batch_max);
    if (!w->host_idx || !w->k) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory preparing walkback");
        goto fail;
    }
    _Static_assert(sizeof(uint32_t) == sizeof(float), "an index travels in a float's place");
    if ((rc = daecl_session_alloc(g->s, (size_t)w->batch_max * dim, "walkback chain state",
                                  &w->state, err)) ||
        (rc = daecl_session_alloc(g->s, (size_t)w->rows_max * dim, "walkback targets",
                                  &w->target, err)) ||
        (rc = daecl_session_alloc(g->s, 2 * (size_t)w->rows_max, "walkback index", &w->idx,
                                  err)) ||
        (c->train.walkback_p > 0 &&
         (rc = daecl_session_alloc(g->s, (size_t)w->rows_max * dim, "walkback pairs", &w->pairs,
                                   err))))
        goto fail;
    *out = w;
    return 0;
fail:
    daecl_walkback_destroy(w);
    return rc;
}

void daecl_walkback_destroy(daecl_walkback *w)
{
    if (!w)
        return;
    daecl_buf *bufs[] = {w->state, w->pairs, w->target, w->idx};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        daecl_session_free(w->s, bufs[i]);
    free(w->host_idx);
    free(w->k);
    free(w);
}

static int upload_idx(daecl_walkback *w, size_t off, size_t n, daecl_err *err)
{
    return w->s->be->write(w->s->ctx, w->idx, off * sizeof(uint32_t), w->host_idx + off,
                           n * sizeof(uint32_t), err);
}

int daecl_pairs_forward(daecl_graph *g, daecl_walkback *w, daecl_slice x, size_t n,
                        const daecl_shape *shape, const daecl_noise_key *key, daecl_pairs *out,
                        daecl_err *err)
{
    daecl_session *s = g->s;
    size_t dim = g->m->dim;
    daecl_slice xt = daecl_at(g->input, 0);
    int rc;
    if ((rc = daecl_session_corrupt(s, x, xt, n, dim, shape, key, err)) ||
        (rc = daecl_graph_forward_rows(g, xt, n, 0, err)))
        return rc;
    *out = (daecl_pairs){.in = xt, .target = x, .n_pairs = n};
    if (!w)
        return 0;

    /* Who walks how far: known on the host before anything is enqueued, so
     * the index goes up first and the chain runs without a wait. */
    size_t extra = daecl_walkback_count(w->cfg, key->epoch, key->pos0, n, w->k);
    uint32_t k_max = 0;
    for (size_t r = 0; r < n; r++)
        if (w->k[r] > k_max)
            k_max = w->k[r];
    size_t n_pairs = n + extra, rows = w->rows_max;
    int in_place = n_pairs == n * (k_max + 1u); /* every row walked all k_max steps */
    if (!in_place || w->target_n != n) {
        /* Targets: pair i's clean row; the pairs' inputs where they are
         * compacted: row r of chain step j is row j n + r of g->input. */
        size_t i = 0;
        for (uint32_t j = 0; j <= k_max; j++)
            for (size_t r = 0; r < n; r++)
                if (w->k[r] >= j) {
                    w->host_idx[i] = (uint32_t)r;
                    w->host_idx[rows + i] = (uint32_t)(j * n + r);
                    i++;
                }
        if ((rc = upload_idx(w, 0, n_pairs, err)) ||
            (!in_place && (rc = upload_idx(w, rows, n_pairs, err))))
            return rc;
        /* A fixed-k index stays valid for every batch of n rows. */
        w->target_n = in_place && w->cfg->train.walkback_p <= 0 ? n : 0;
    }

    /* The chain: x*_j from the decoder at pair j - 1, then x~_j. */
    for (uint32_t j = 1; j <= k_max; j++) {
        daecl_noise_key dk = *key, ck = *key;
        dk.stream = DAECL_STREAM_SAMPLE;
        dk.substep = ck.substep = j;
        daecl_slice a = daecl_graph_output_row(g, (j - 1) * n), st = daecl_at(w->state, 0);
        daecl_slice xj = daecl_at(g->input, j * n * dim);
        if ((rc = w->cfg->train.walkback_mean ? daecl_session_mean(s, a, n, dim, st, err)
                                              : daecl_session_sample(s, a, n, dim, &dk, st, err)) ||
            (rc = daecl_session_corrupt(s, st, xj, n, dim, shape, &ck, err)) ||
            (rc = daecl_graph_forward_rows(g, xj, n, j * n, err)))
            return rc;
    }

    out->target = daecl_at(w->target, 0);
    out->n_pairs = n_pairs;
    if ((rc = s->be->gather(s->ctx, x, dim, daecl_at(w->idx, 0), n_pairs, out->target, err)))
        return rc;
    if (in_place) {
        out->in = daecl_at(g->input, 0);
        return 0;
    }
    /* Rows that stopped early leave holes: the kept pairs, compacted, go
     * through the network again (the same parameters: the chain's values,
     * up to the rounding of a GEMM over other rows). */
    out->in = daecl_at(w->pairs, 0);
    if ((rc = s->be->gather(s->ctx, daecl_at(g->input, 0), dim, daecl_at(w->idx, rows), n_pairs,
                            out->in, err)))
        return rc;
    return daecl_graph_forward_rows(g, out->in, n_pairs, 0, err);
}

int daecl_pairs_loss(daecl_graph *g, daecl_walkback *w, daecl_feeder *f,
                     const daecl_dataset *train, const daecl_config *c, uint32_t stage,
                     uint32_t epoch, size_t first, size_t n, daecl_slice loss_dst,
                     size_t mean_pairs, daecl_pairs *out, daecl_err *err)
{
    /* The noise key 2.0: the batch's rows by their positions in this
     * epoch's permutation, so the noise is the examples', not the step's. */
    daecl_noise_key key = {.seed = c->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                           .stage = stage, .epoch = epoch, .pos0 = (uint32_t)first};
    daecl_shape shape;
    daecl_dataset_shape(train, &shape);
    daecl_slice x;
    int rc;
    if ((rc = daecl_feeder_batch(f, first, n, &x, err)) ||
        (rc = daecl_pairs_forward(g, w, x, n, &shape, &key, out, err)))
        return rc;
    return daecl_graph_loss_rows(g, out->target, out->n_pairs, loss_dst,
                                 mean_pairs ? mean_pairs : out->n_pairs, n, err);
}
