/* daecl — minibatches on the device: resident data with device gathers, or
 * host-gathered chunks streamed in. */
#include "core/feeder.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "daecl/elementwise.h"

/* Streaming chunks hold at most this many batches: bigger chunks mean fewer
 * copies, but every chunk copy waits for the device. */
#define MAX_CHUNK_BATCHES 64

void daecl_shuffle_order(uint32_t *order, size_t n, uint64_t seed, uint32_t stream, uint32_t epoch)
{
    daecl_shuffle_order_stage(order, n, seed, stream, 0, epoch);
}

void daecl_shuffle_order_stage(uint32_t *order, size_t n, uint64_t seed, uint32_t stream,
                               uint32_t stage, uint32_t epoch)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    /* One global permutation per epoch: slot i's draw is block 0 of
     * position i (n < 2^32: order holds uint32 row numbers). */
    daecl_noise_key key = {.seed = seed, .stream = stream, .stage = stage, .epoch = epoch};
    /* Fisher-Yates from the top; j uniform in [0, i] from 64 random bits by
     * multiply-shift (bias below 2^-32 for any n daecl can hold). */
    for (size_t i = n; i-- > 1;) {
        daecl_u4 r = daecl_noise_block(&key, i, 0);
        uint64_t bits = (uint64_t)r.x << 32 | r.y;
        size_t j = (size_t)(((unsigned __int128)bits * (i + 1)) >> 64);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int daecl_feeder_create(daecl_session *s, const daecl_dataset *ds, uint32_t batch_max,
                        uint64_t resident_max_bytes, const char *what, daecl_feeder **out,
                        daecl_err *err)
{
    *out = NULL;
    daecl_feeder *f = calloc(1, sizeof *f);
    if (!f)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory preparing the %s", what);
    f->s = s;
    f->ds = ds;
    f->batch_max = batch_max;
    int rc;
    f->order = malloc(ds->n_rows * sizeof *f->order);
    if (!f->order) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for the %s's order (%zu rows)", what,
                           ds->n_rows);
        goto fail;
    }
    for (size_t i = 0; i < ds->n_rows; i++)
        f->order[i] = (uint32_t)i;
    uint64_t bytes = (uint64_t)ds->n_rows * ds->dim * sizeof(float);
    uint64_t limit = resident_max_bytes;
    if (limit == 0) {
        limit = s->device.global_mem_bytes / 2;
        if (s->device.max_alloc_bytes && s->device.max_alloc_bytes < limit)
            limit = s->device.max_alloc_bytes;
    }
    f->resident = bytes <= limit;
    if (f->resident) {
        if ((rc = daecl_session_alloc(s, ds->n_rows * ds->dim, what, &f->data, err)) ||
            (rc = s->be->write(s->ctx, f->data, 0, ds->x, bytes, err)) ||
            (rc = daecl_session_alloc(s, ds->n_rows, "batch order", &f->index, err)) ||
            (rc = s->be->write(s->ctx, f->index, 0, f->order, ds->n_rows * sizeof(uint32_t), err)) ||
            (rc = daecl_session_alloc(s, (size_t)batch_max * ds->dim, "minibatch", &f->batch, err)))
            goto fail;
    } else {
        size_t batch_bytes = (size_t)batch_max * ds->dim * sizeof(float);
        size_t batches = batch_bytes ? (size_t)(limit / batch_bytes) : 1;
        if (batches < 1)
            batches = 1;
        if (batches > MAX_CHUNK_BATCHES)
            batches = MAX_CHUNK_BATCHES;
        f->chunk_rows = batches * batch_max;
        if (f->chunk_rows > ds->n_rows)
            f->chunk_rows = ds->n_rows;
        f->stage = malloc(f->chunk_rows * ds->dim * sizeof(float));
        if (!f->stage) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory staging the %s", what);
            goto fail;
        }
        if ((rc = daecl_session_alloc(s, f->chunk_rows * ds->dim, what, &f->data, err)))
            goto fail;
        daecl_log(DAECL_LOG_INFO, NULL,
                  "the %s (%.3g MiB) is streamed to the device in chunks of %zu rows (limit %.3g MiB)",
                  what, (double)bytes / 1048576.0, f->chunk_rows, (double)limit / 1048576.0);
    }
    *out = f;
    return 0;
fail:
    daecl_feeder_destroy(f);
    return rc;
}

void daecl_feeder_destroy(daecl_feeder *f)
{
    if (!f)
        return;
    daecl_session_free(f->s, f->data);
    daecl_session_free(f->s, f->index);
    daecl_session_free(f->s, f->batch);
    free(f->order);
    free(f->stage);
    free(f);
}

int daecl_feeder_shuffle(daecl_feeder *f, uint64_t seed, uint32_t epoch, daecl_err *err)
{
    return daecl_feeder_shuffle_stage(f, seed, 0, epoch, err);
}

int daecl_feeder_shuffle_stage(daecl_feeder *f, uint64_t seed, uint32_t stage, uint32_t epoch,
                               daecl_err *err)
{
    daecl_shuffle_order_stage(f->order, f->ds->n_rows, seed, DAECL_STREAM_SHUFFLE, stage, epoch);
    f->shuffled = 1;
    f->chunk_valid = 0;
    if (!f->resident)
        return 0;
    return f->s->be->write(f->s->ctx, f->index, 0, f->order, f->ds->n_rows * sizeof(uint32_t), err);
}

int daecl_feeder_sequential(daecl_feeder *f, daecl_err *err)
{
    (void)err;
    for (size_t i = 0; i < f->ds->n_rows; i++)
        f->order[i] = (uint32_t)i;
    f->shuffled = 0;
    f->chunk_valid = 0;
    return 0; /* resident sequential batches are plain slices: the index is unused */
}

int daecl_feeder_batch(daecl_feeder *f, size_t first, size_t n, daecl_slice *out, daecl_err *err)
{
    size_t dim = f->ds->dim;
    if (f->resident) {
        if (!f->shuffled) {
            *out = daecl_at(f->data, first * dim);
            return 0;
        }
        *out = daecl_at(f->batch, 0);
        return f->s->be->gather(f->s->ctx, daecl_at(f->data, 0), dim, daecl_at(f->index, first), n,
                                *out, err);
    }
    if (!f->chunk_valid || first < f->chunk_first || first + n > f->chunk_first + f->chunk_rows) {
        size_t rows = f->ds->n_rows - first < f->chunk_rows ? f->ds->n_rows - first : f->chunk_rows;
        for (size_t r = 0; r < rows; r++)
            memcpy(f->stage + r * dim, f->ds->x + (size_t)f->order[first + r] * dim,
                   dim * sizeof(float));
        int rc = f->s->be->write(f->s->ctx, f->data, 0, f->stage, rows * dim * sizeof(float), err);
        if (rc)
            return rc;
        f->chunk_first = first;
        f->chunk_valid = 1;
    }
    *out = daecl_at(f->data, (first - f->chunk_first) * dim);
    return 0;
}
