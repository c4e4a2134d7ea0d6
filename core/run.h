/* daecl — a run's working set: the registry, the resolved config, the data
 * sets, the model, the opened device with its graph and data feeders, and
 * host copies of the parameters. Training, resuming and evaluation all start
 * from one of these (core/train.c, core/evaluate.c). */
#ifndef DAECL_CORE_RUN_H
#define DAECL_CORE_RUN_H

#include <limits.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/data.h"
#include "core/feeder.h"
#include "core/fsutil.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/registry.h"
#include "core/session.h"

typedef struct daecl_run {
    daecl_registry *reg;
    daecl_config *cfg;
    daecl_dataset *train, *test; /* test may be NULL */
    daecl_model model;
    daecl_session *s;
    daecl_graph *g;
    daecl_feeder *train_feed, *test_feed;
    float *params, *s1, *s2; /* host copies (n_params each; s1/s2 NULL when unused) */
    size_t steps_per_epoch;
} daecl_run;

/* Loads config (with overrides) and data, opens the device, builds the
 * graph and the feeders, and uploads freshly initialised parameters. */
int daecl_run_open(daecl_run *r, const char *config_path, const char *const *overrides,
                   size_t n_overrides, daecl_err *err);
void daecl_run_close(daecl_run *r);

/* Loads a checkpoint's parameters and optimiser state into the run (host
 * copies and device); st gets its position. */
int daecl_run_load_checkpoint(daecl_run *r, const char *path, daecl_ckpt_state *st,
                              daecl_err *err);
/* One optimiser step on batch i (0-based) of the current epoch order, the
 * run's `step`-th (0-based; keys the noise and Adam's bias correction):
 * gather, corrupt, forward, loss (its batch sum into loss_dst[0]),
 * backward, update. Only enqueues work. *rows gets the batch's size. */
int daecl_run_step(daecl_run *r, size_t i, uint64_t step, daecl_slice loss_dst, size_t *rows,
                   daecl_err *err);

/* Reads parameters and state back from the device into the host copies and
 * checks that every parameter is finite (a non-finite one is DAECL_ENAN). */
int daecl_run_fetch_params(daecl_run *r, daecl_err *err);

#endif
