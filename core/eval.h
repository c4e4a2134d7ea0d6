/* daecl — evaluation of a trained graph on held-out data: test NLL on clean
 * inputs and on corrupted ones, in nats per example. The corrupted copy of
 * test row r draws Philox blocks (seed, DAECL_STREAM_EVAL_CORRUPTION, step 0,
 * elem r*D + j): the same noise at every epoch and for any batch size. */
#ifndef DAECL_CORE_EVAL_H
#define DAECL_CORE_EVAL_H

#include "core/feeder.h"
#include "core/graph.h"

typedef struct daecl_nll_result {
    double clean;     /* mean over rows of -log p(x | g(f(x))) */
    double corrupted; /* mean over rows of -log p(x | g(f(x~))) */
    size_t n_rows;
} daecl_nll_result;

/* Runs every row of `data` (any feeder; its order is reset to sequential)
 * through the graph twice. Reads back once, at the end. */
int daecl_eval_nll(daecl_graph *g, daecl_feeder *data, uint64_t seed, daecl_nll_result *out,
                   daecl_err *err);

#endif
