/* daecl — minibatches on the device. A data set that fits stays resident:
 * uploaded once, each epoch's shuffled order uploaded once, batches gathered
 * on the device. One that does not fit is streamed: the host gathers several
 * batches' rows into a chunk and writes it with one copy, so the device
 * holds one chunk at a time. Either way the batch is a device slice. */
#ifndef DAECL_CORE_FEEDER_H
#define DAECL_CORE_FEEDER_H

#include <stdint.h>

#include "core/data.h"
#include "core/session.h"

typedef struct daecl_feeder {
    daecl_session *s;
    const daecl_dataset *ds;
    uint32_t batch_max;
    int resident;
    int shuffled;        /* 0: order is 0..n-1 */
    uint32_t *order;     /* (n_rows): this epoch's order of rows */
    daecl_buf *data;     /* resident: (n_rows, dim); streaming: (chunk_rows, dim) */
    daecl_buf *index;    /* resident: (n_rows) uint32 copy of order */
    daecl_buf *batch;    /* resident + shuffled: (batch_max, dim) gather target */
    size_t chunk_rows;   /* streaming: rows per chunk, a multiple of batch_max */
    size_t chunk_first;  /* streaming: order position of the chunk's first row */
    int chunk_valid;
    float *stage;        /* streaming: host (chunk_rows, dim) */
} daecl_feeder;

/* resident_max_bytes: 0 decides from the device (fits its largest
 * allocation and half its memory); otherwise the data stays resident only
 * if it takes at most that many bytes. `what` names the data in messages. */
int daecl_feeder_create(daecl_session *s, const daecl_dataset *ds, uint32_t batch_max,
                        uint64_t resident_max_bytes, const char *what, daecl_feeder **out,
                        daecl_err *err);
void daecl_feeder_destroy(daecl_feeder *f);

/* This epoch's order: a Philox Fisher-Yates shuffle keyed by (seed,
 * DAECL_STREAM_SHUFFLE, epoch); uploaded (resident) before returning. */
int daecl_feeder_shuffle(daecl_feeder *f, uint64_t seed, uint32_t epoch, daecl_err *err);
/* The same in the noise key's stage `stage` (plugin.h): another training
 * stage on the same data (fine-tuning, core/finetune.h) draws permutations
 * of its own. daecl_feeder_shuffle is stage 0. */
int daecl_feeder_shuffle_stage(daecl_feeder *f, uint64_t seed, uint32_t stage, uint32_t epoch,
                               daecl_err *err);
/* The order 0..n-1 (evaluation). */
int daecl_feeder_sequential(daecl_feeder *f, daecl_err *err);

/* The rows at order positions [first, first + n) as a device slice (n, dim);
 * n <= batch_max, and batches start at multiples of batch_max. Valid until
 * the next call. */
int daecl_feeder_batch(daecl_feeder *f, size_t first, size_t n, daecl_slice *out, daecl_err *err);

/* order = a permutation of 0..n-1: a Fisher-Yates shuffle drawing from
 * Philox (seed, stream, epoch; slot i from block 0 of position i); the same
 * on every machine. */
void daecl_shuffle_order(uint32_t *order, size_t n, uint64_t seed, uint32_t stream, uint32_t epoch);
/* The same with the noise key's stage (daecl_shuffle_order is stage 0). */
void daecl_shuffle_order_stage(uint32_t *order, size_t n, uint64_t seed, uint32_t stream,
                               uint32_t stage, uint32_t epoch);

#endif
