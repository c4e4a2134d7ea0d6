/* daecl — the linear probe: multinomial logistic regression trained on
 * frozen features (the encoder's top code, or the raw inputs for the
 * baseline) with Adam on the run's backend, then scored on the test set.
 * Deterministic from the seed: weights start at zero and each epoch's order
 * is a Philox shuffle in DAECL_STREAM_PROBE. */
#ifndef DAECL_CORE_PROBE_H
#define DAECL_CORE_PROBE_H

#include "core/data.h"
#include "core/feeder.h"
#include "core/graph.h"

typedef struct daecl_probe_opts {
    uint32_t epochs;
    uint32_t batch_size;
    double lr;
    double weight_decay; /* L2 on the weights, not the biases */
    uint64_t seed;
} daecl_probe_opts;

typedef struct daecl_probe_result {
    double accuracy;   /* fraction of test rows whose argmax logit is the label */
    double test_nll;   /* mean cross-entropy on the test set, nats */
    uint32_t n_classes;
    size_t n_features;
} daecl_probe_result;

/* Features (n_rows, *width) of every row of `data` in file order: the top
 * encoder layer's output on clean inputs, or the inputs themselves when
 * raw. A new device buffer the caller frees with the backend's free. */
int daecl_probe_features(daecl_graph *g, daecl_feeder *data, int raw, daecl_buf **out,
                         size_t *width, daecl_err *err);

/* Fits the probe on train features/labels and scores it on the test ones.
 * Labels must match the feature rows in number; classes are 0..C-1 with C
 * the larger of the two label sets' class counts. */
int daecl_probe_fit(daecl_session *s, daecl_buf *train_feat, const daecl_labels *train_y,
                    daecl_buf *test_feat, const daecl_labels *test_y, size_t width,
                    const daecl_probe_opts *o, daecl_probe_result *out, daecl_err *err);

#endif
