/* daecl — `daecl finetune`: supervised fine-tuning of a trained run's
 * encoder, the second half of the stacked-DAE recipe (Vincent et al. 2010):
 * a softmax layer of C classes on the top code, the encoder from the run's
 * checkpoint, and both trained on the run's labels with cross-entropy, on
 * clean inputs (corrupted by the run's corruption with finetune.corrupt),
 * in minibatches on the run's backend. It writes a new run
 * folder (config.yaml, finetune.json, metrics.jsonl,
 * checkpoint.safetensors, summary.json) that names its parent run. */
#ifndef DAECL_CORE_FINETUNE_H
#define DAECL_CORE_FINETUNE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/graph.h"
#include "core/model.h"

/* The noise key's stage (plugin.h) of the fine-tuning's shuffles: the last
 * one, above any stage of layer-wise pretraining (at most DAECL_MAX_LAYERS),
 * so its permutations never repeat the pretraining's under one seed. */
#define DAECL_FINETUNE_STAGE 255u

/* The keys a fine-tuning may set with KEY=VALUE (anything under these
 * prefixes): the optimiser, the batch size, the epochs, the seed of the
 * shuffles and where it runs. Everything else is the parent's. */
int daecl_finetune_key_allowed(const char *override);

/* The classifier network: the encoder layers of `dae` (names, shapes and
 * activations as they are) then a linear layer "classifier" of n_classes
 * units, its optimiser `optim`; layout as model.h (weights, then biases). */
void daecl_finetune_model(const daecl_model *dae, uint32_t n_classes, daecl_optim_kind optim,
                          daecl_model *out);
/* params of ft (n_params) from the dae's (its n_params): each encoder layer
 * copied, the classifier zero (weights and biases). */
void daecl_finetune_take_encoder(const daecl_model *dae, const float *dae_params,
                                 const daecl_model *ft, float *params);

/* Forward of x (n, D) through g (a graph of a daecl_finetune_model), then
 * the softmax cross-entropy against labels (n: class numbers as floats):
 * per-row losses into g->nll when want_rows, and the gradient of their mean
 * over the n rows w.r.t. the logits into g->delta[0], which
 * daecl_graph_backward then carries down through every layer. */
int daecl_finetune_loss(daecl_graph *g, daecl_slice x, daecl_slice labels, size_t n,
                        int want_rows, daecl_err *err);

/* What one epoch gave (epoch 0: the start, test numbers only). */
typedef struct daecl_finetune_epoch {
    uint32_t epoch, epochs;
    uint64_t step;
    double train_loss;     /* mean cross-entropy over the epoch's batches, nats */
    double train_accuracy; /* fraction right, as each batch was before its step */
    double lr;             /* the learning rate of the epoch's last step */
    double test_loss, test_accuracy;
    int have_valid;        /* the parent's validation set (data.valid_fraction) */
    double valid_loss, valid_accuracy;
    double seconds;        /* since this process started the fine-tuning */
} daecl_finetune_epoch;

typedef struct daecl_finetune_opts {
    const char *run_dir;   /* new: the trained run; resume: the fine-tuning's folder */
    int resume;
    const char *out_dir;   /* new only; NULL: <run_dir>-finetune (-2, -3, ... if taken) */
    const char *const *overrides; /* KEY=VALUE, daecl_finetune_key_allowed's keys */
    size_t n_overrides;
    /* Set to a signal's number to stop after the current step: the epoch
     * under way is dropped, the last epoch's checkpoint stays, and the run
     * returns DAECL_EINTR. May be NULL. */
    volatile sig_atomic_t *stop;
    /* Called after each epoch's metrics line; may be NULL. */
    void (*on_epoch)(void *ctx, const daecl_finetune_epoch *e);
    void *ctx;
} daecl_finetune_opts;

/* Fine-tunes (or resumes); out_dir (n bytes; may be NULL) gets the folder,
 * also on failure once it exists; last (may be NULL) the last epoch's
 * numbers. Everything the files can tell (the run, its labels, the
 * overrides, the output folder) is checked before a device opens. */
int daecl_finetune_run(const daecl_finetune_opts *o, char *out_dir, size_t n,
                       daecl_finetune_epoch *last, daecl_err *err);

#endif
