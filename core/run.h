/* daecl — a run's working set: the registry, the resolved config, the data
 * sets and labels, the model, the opened device with its graph and data
 * feeders, and host copies of the parameters. Training, resuming and
 * evaluation all start from one of these (core/train.c, core/evaluate.c).
 *
 * It is made in three phases, so that everything the config and the files
 * can tell is checked before a device opens: configure (the config and the
 * checks it alone allows), load_data (data sets, labels, and the checks of
 * their content against the config), start (the device and the rest). */
#ifndef DAECL_CORE_RUN_H
#define DAECL_CORE_RUN_H

#include <limits.h>
#include <signal.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/data.h"
#include "core/feeder.h"
#include "core/fsutil.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/registry.h"
#include "core/session.h"
#include "core/walkback.h"

#include "core/compat.h"
#include "core/comm.h"
#include "core/replicas.h"

typedef struct daecl_run {
    daecl_registry *reg;
    daecl_config *cfg;
    daecl_dataset *train, *test; /* test may be NULL */
    /* data.valid_fraction's held-out rows of the training file and their
     * labels, or NULL: never trained on (train holds the rest). */
    daecl_dataset *valid;
    daecl_labels *valid_y;
    daecl_labels *train_y, *test_y; /* the configured label files, or NULL */
    daecl_data_digest digest;    /* what the data are, for checkpoints */
    daecl_model model;
    daecl_session *s;
    daecl_graph *g;
    daecl_walkback *wb; /* train.walkback's buffers on g's device, or NULL */
    daecl_feeder *train_feed, *test_feed, *valid_feed; /* valid_feed: with valid */
    float *params, *s1, *s2; /* host copies (n_params each; s1/s2 NULL when unused) */
    size_t steps_per_epoch;
    /* Training only (daecl_run_start_parallel): the world's replicas, of
     * which s, g and train_feed are replica 0; NULL otherwise. */
    daecl_replicas *rep;
    /* stack.greedy's stages (core/stack.h), or NULL. */
    struct daecl_stack *stack;
    /* This rank's stop request (a signal handler's flag; may be NULL), and
     * whether the world agreed to stop after the last step. */
    volatile sig_atomic_t *stop;
    int stop_all;
} daecl_run;

/* Phase 1: loads the config (with overrides) and runs the checks it alone
 * allows (what eval needs). Opens nothing, writes nothing. */
int daecl_run_configure(daecl_run *r, const char *config_path, const char *const *overrides,
                        size_t n_overrides, daecl_err *err);
/* Phase 2: loads the data sets and the configured label files and checks
 * them: shapes, label counts, the likelihood's range against the data and,
 * with need_probe, the label classes the probe needs (0..C-1, each with a
 * training example; test labels among them). Fills r->digest. */
int daecl_run_load_data(daecl_run *r, int need_probe, daecl_err *err);
/* Phase 3: opens the device, builds the graph and the feeders, and uploads
 * freshly initialised parameters. */
int daecl_run_start(daecl_run *r, daecl_err *err);
/* Phase 3 for training: the device of this rank's first entry of
 * parallel.devices (the backend section without the list) as replica 0,
 * then the rank's other replicas and the world's (core/replicas.h). Every
 * rank of `comm` calls it; one rank's failure fails all (DAECL_EPEER with
 * an empty sentence on the ranks that did not fail). */
int daecl_run_start_parallel(daecl_run *r, daecl_comm *comm, daecl_err *err);
/* The epochs the run trains in all: train.epochs, or a stack's stages'
 * and fine-tuning's. */
uint32_t daecl_run_epochs(const daecl_run *r);
/* Before the steps of `epoch` (at_start: from its first step): a stack
 * moves to the epoch's phase, and *restarts says the phase starts here,
 * its optimiser from zero state. Nothing for other runs. */
int daecl_run_begin_epoch(daecl_run *r, uint32_t epoch, int at_start, int *restarts,
                          daecl_err *err);
/* This epoch's shuffle on every replica's training feeder. */
int daecl_run_shuffle(daecl_run *r, uint32_t epoch, daecl_err *err);
/* All three, with need_probe from the config's eval section. */
int daecl_run_open(daecl_run *r, const char *config_path, const char *const *overrides,
                   size_t n_overrides, daecl_err *err);
void daecl_run_close(daecl_run *r);

/* For the commands that read a trained run (eval, plot): which run, and
 * what may stand in for its files. */
typedef struct daecl_trained_opts {
    const char *run_dir;    /* the run folder, or NULL with config and checkpoint */
    const char *config;     /* NULL: run_dir/config.yaml */
    const char *checkpoint; /* NULL: run_dir/checkpoint.safetensors */
    const char *const *overrides;
    size_t n_overrides;
    const char *command;    /* "eval", "plot": for the sentences */
    int probe;              /* the probe will run when labels are configured */
    const char *labels_for; /* an option that needs both label files ("--probe-baseline"), or NULL */
} daecl_trained_opts;

/* Opens a trained run with its checkpoint's parameters loaded. Before a
 * device opens: the folder must be daecl's (its stale temporary files are
 * removed), the config must not contradict the model the checkpoint was
 * trained with (compat.h, eval's rules), the data load and check, and the
 * checkpoint's tensors must fit the model. st gets its position. */
int daecl_run_open_trained(daecl_run *r, const daecl_trained_opts *o, daecl_ckpt_state *st,
                           daecl_err *err);

/* Loads a checkpoint's parameters, and its optimiser state unless
 * params_only (eval, or a reset optimiser: the state stays zero), into the
 * run (host copies and device); st gets its position. */
int daecl_run_load_checkpoint(daecl_run *r, const char *path, int params_only,
                              daecl_ckpt_state *st, daecl_err *err);
/* The learning rate of step i (0-based) of the run's epoch `epoch`:
 * optimizer.schedule over the step's phase (the run, or the stack's stage
 * or fine-tuning, under that phase's config). */
double daecl_run_lr(const daecl_run *r, uint32_t epoch, size_t i);

/* One optimiser step on batch i (0-based) of the current epoch order, the
 * 0-based epoch `epoch`: the noise of each row is keyed by (epoch, its
 * position in the epoch's order), never by the step; optim_t is the
 * optimiser's own step count (1-based; Adam's bias correction), and the
 * step's learning rate follows optimizer.schedule over its phase (the run,
 * or the stack's stage):
 * gather, corrupt, forward, loss (its batch sum into loss_dst[0]),
 * backward, update. Only enqueues work on one replica; with several, the
 * replicas' gradients are summed on the host (core/replicas.h), the
 * batch's loss sum is checked to be finite (on every rank alike), and
 * r->stop_all says whether the world stops after it. *rows gets the
 * batch's size. */
int daecl_run_step(daecl_run *r, size_t i, uint32_t epoch, uint64_t optim_t, daecl_slice loss_dst,
                   size_t *rows, daecl_err *err);

/* Reads parameters and state back from the device into the host copies and
 * checks that every parameter is finite (a non-finite one is DAECL_ENAN). */
int daecl_run_fetch_params(daecl_run *r, daecl_err *err);

#endif
