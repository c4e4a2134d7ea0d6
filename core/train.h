/* daecl — the train loop: loads the config and data, opens the device, runs
 * epochs of minibatch steps, evaluates on the test set after each epoch,
 * and keeps the run folder (config.yaml, metrics.jsonl, checkpoint,
 * summary.json) up to date. The host reads the loss back only when it logs. */
#ifndef DAECL_CORE_TRAIN_H
#define DAECL_CORE_TRAIN_H

#include <signal.h>
#include <stddef.h>

#include "daecl/error.h"

typedef struct daecl_train_opts {
    const char *config_path;
    const char *const *overrides; /* "a.b=VALUE" strings */
    size_t n_overrides;
    const char *out_dir; /* the run folder to create; NULL: <output.dir>/<name>, made unique */
    int quiet;           /* no progress lines on stdout */
} daecl_train_opts;

/* Trains; run_dir (if not NULL) gets the run folder's path, also on failure
 * once the folder exists. */
int daecl_train(const daecl_train_opts *opts, char *run_dir, size_t run_dir_n, daecl_err *err);

#endif
