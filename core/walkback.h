/* daecl — the training pairs of a step, with walkback (Bengio, Yao, Alain &
 * Vincent 2013, "Generalized Denoising Auto-Encoders as Generative Models",
 * Algorithm 2).
 *
 * A step without walkback trains on n pairs (x~, x), x~ ~ C(x~|x). With
 * train.walkback = k, every example x also starts a chain of the model's own
 * making, x*_0 = x, and walkback step j = 1..K (K = k, or geometric with
 * train.walkback_p, at most k) adds the pair (x~_j, x):
 *
 *     x*_j ~ p_decoder(x | h = f(x~_{j-1}))   (or its mean)
 *     x~_j ~ C(x~ | x*_j)
 *
 * Pair j's draws are the noise key's substep j (plugin.h): the corruption
 * under DAECL_STREAM_TRAIN_CORRUPTION, the decoder's draw under
 * DAECL_STREAM_SAMPLE, and whether the chain goes on to step j under
 * DAECL_STREAM_WALKBACK, all at the example's position in the epoch. So the
 * pairs do not depend on how a batch is split over devices or where a run
 * was resumed. Every pair weighs 1; the loss is the mean over all pairs of
 * the global batch. The chain's passes take no gradient: its states are
 * constants of the step. */
#ifndef DAECL_CORE_WALKBACK_H
#define DAECL_CORE_WALKBACK_H

#include <stdint.h>

#include "core/config.h"
#include "core/data.h"
#include "core/feeder.h"
#include "core/graph.h"

/* Pair rows a batch of batch rows may need: batch * (1 + train.walkback). */
uint32_t daecl_walkback_rows(const daecl_config *c, uint32_t batch);

/* How many walkback pairs the examples at positions [pos0, pos0 + n) of
 * `epoch` take (k_out[r] for row r, when k_out is not NULL), and in all
 * (the return value) plus n clean pairs = the pairs of those rows. A pure
 * function of (seed, epoch, position): any split of the rows gives the
 * same counts. */
size_t daecl_walkback_count(const daecl_config *c, uint32_t epoch, size_t pos0, size_t n,
                            uint8_t *k_out);

typedef struct daecl_walkback daecl_walkback;

/* The buffers walkback needs on g's session for batches of up to
 * g->batch_max rows; *out = NULL (and nothing allocated) when c has no
 * walkback. */
int daecl_walkback_create(daecl_graph *g, const daecl_config *c, daecl_walkback **out,
                          daecl_err *err);
void daecl_walkback_destroy(daecl_walkback *w);

/* A step's training pairs, forwarded: in (n_pairs, D) their corrupted
 * inputs, target (n_pairs, D) their clean rows; the first n pairs are the
 * clean examples' own, in order. g's activations hold the pairs' forward
 * pass, ready for the loss and the backward pass. */
typedef struct daecl_pairs {
    daecl_slice in, target;
    size_t n_pairs;
} daecl_pairs;

/* The forward half of a training step on n clean rows x at positions
 * key->pos0.. (key: the step's training-corruption key, substep 0), with
 * w's walkback (w NULL: the n pairs (C(x), x) only). Only enqueues work. */
int daecl_pairs_forward(daecl_graph *g, daecl_walkback *w, daecl_slice x, size_t n,
                        const daecl_shape *shape, const daecl_noise_key *key, daecl_pairs *out,
                        daecl_err *err);

/* A training step up to its backward pass, as every device runs it: rows
 * [first, first + n) of `epoch` from feeder f (of data set `train`), their
 * pairs forwarded (the noise key 2.0 at the rows' positions, in `stage`:
 * 0, or a stack's fine-tuning, core/stack.h), and the loss
 * with the gradient of the pairs' nll sum over mean_pairs (0: over the
 * pairs' own count) in g->delta[0]; loss_dst gets the n clean pairs' nll
 * sum. *out: the pairs, for daecl_graph_backward[_update]. */
int daecl_pairs_loss(daecl_graph *g, daecl_walkback *w, daecl_feeder *f,
                     const daecl_dataset *train, const daecl_config *c, uint32_t stage,
                     uint32_t epoch, size_t first, size_t n, daecl_slice loss_dst,
                     size_t mean_pairs, daecl_pairs *out, daecl_err *err);

#endif
