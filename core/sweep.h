/* daecl — sweeps: one experiment trained at every point of a grid of
 * overrides (key=v1,v2,... for each swept key), each point a run folder
 * under one sweep folder, with the final metrics gathered into sweep.csv
 * and a Markdown table sweep.md sorted by a chosen metric. */
#ifndef DAECL_CORE_SWEEP_H
#define DAECL_CORE_SWEEP_H

#include <signal.h>
#include <stddef.h>

#include "daecl/error.h"

#define DAECL_SWEEP_MAX_KEYS 16
#define DAECL_SWEEP_MAX_VALUES 64

/* key=v1,v2,...: the values split at commas outside brackets, braces and
 * quotes, so `corruption.clip=[0, 1],[0, 0.5]` gives two values. A key with
 * one value is a fixed override for every point. */
typedef struct daecl_sweep_axis {
    char *key;
    char *values[DAECL_SWEEP_MAX_VALUES];
    size_t n_values;
} daecl_sweep_axis;

typedef struct daecl_sweep_opts {
    const char *config_path;
    const char *const *args; /* "key=v1,v2,..." */
    size_t n_args;
    const char *out_dir;     /* the sweep folder; NULL: <output.dir>/<name>-sweep[-N] */
    const char *sort;        /* a summary.json metric; NULL: test_nll_clean, or with a
                              * validation set probe_valid_accuracy (probe on) or
                              * valid_nll_clean; a test metric there is refused */
    int quiet;
    volatile sig_atomic_t *stop;
} daecl_sweep_opts;

typedef struct daecl_sweep_result {
    size_t n_points, n_failed;
    char dir[4096];
    /* With a validation set: the chosen point (0-based, grid order) was
     * evaluated on the test set for the final report. */
    int have_final;
    size_t final_point;
} daecl_sweep_result;

/* Parses one argument into an axis (caller frees with daecl_sweep_axis_free). */
int daecl_sweep_parse_axis(const char *arg, daecl_sweep_axis *axis, daecl_err *err);
void daecl_sweep_axis_free(daecl_sweep_axis *axis);

/* Runs the grid (the last axis varies fastest). A point that fails is
 * recorded in the tables with its sentence and the sweep goes on; err gets
 * the first failure and the return is DAECL_EINTR when stopped.
 *
 * With a validation set (data.valid_fraction > 0 at every point) the
 * points train with the overrides data.test= and data.test_labels= after
 * their own, so nothing reads the test set while they train (no test NLL,
 * denoising numbers or probe score; the probe is scored on the validation
 * rows). After the last point the best finished one by the sort metric is
 * evaluated once on its checkpoint with its config's test set
 * (daecl_eval_run, eval.json in its run folder): sweep.md's "Final report"
 * and sweep.json hold it. A failure there is the error when no point
 * failed. */
int daecl_sweep(const daecl_sweep_opts *o, daecl_sweep_result *out, daecl_err *err);

#endif
