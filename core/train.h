/* daecl — the train loop: epochs of minibatch steps on a run (core/run.h),
 * test evaluation after each epoch, checkpoints, and the run folder
 * (config.yaml, metrics.jsonl, checkpoint.safetensors, summary.json) kept
 * up to date. The host reads the loss back only when it logs or draws the
 * progress bar. A resumed run continues the exact computation of an
 * uninterrupted one: noise, shuffles and Adam's step count are functions of
 * the global step, and checkpoints carry the optimiser state. */
#ifndef DAECL_CORE_TRAIN_H
#define DAECL_CORE_TRAIN_H

#include <signal.h>
#include <stddef.h>

#include "daecl/error.h"

typedef struct daecl_train_opts {
    const char *config_path;      /* train: the experiment; NULL when resuming */
    const char *resume_dir;       /* resume: the run folder to continue */
    const char *const *overrides; /* "a.b=VALUE" strings, applied to the config */
    size_t n_overrides;
    const char *out_dir;          /* train: the run folder to create; NULL: <output.dir>/<name> */
    int quiet;                    /* nothing on stdout */
    int progress;                 /* -1 auto (a bar on a terminal), 1 lines, 2 bar */
    int reset_optimizer;          /* resume: drop the optimiser's state, start it at zero */
    int check_only;               /* `daecl check`: every check, then stop before a device
                                     opens or anything is written */
    /* Set to a signal's number (by a SIGINT, SIGTERM or SIGHUP handler) to
     * stop after the current step; the run then writes a checkpoint and
     * returns DAECL_EINTR. May be NULL. */
    volatile sig_atomic_t *stop;
} daecl_train_opts;

/* Trains or resumes; run_dir (if not NULL) gets the run folder's path, also
 * on failure once the folder exists. Everything the config and the files
 * can tell (data, labels, eval's needs, the output folder, and for resume
 * the lock and the checkpoint's config and data) is checked before a device
 * opens or anything is written; check_only stops there. */
int daecl_train(const daecl_train_opts *opts, char *run_dir, size_t run_dir_n, daecl_err *err);

#endif
