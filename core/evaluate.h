/* daecl — judging a trained run: test NLL (clean and corrupted), denoising
 * MSE/PSNR, and the linear probe on the top code (and on raw inputs as the
 * baseline). `daecl eval`, each epoch of `daecl train` and its end share
 * this. */
#ifndef DAECL_CORE_EVALUATE_H
#define DAECL_CORE_EVALUATE_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "core/feeder.h"
#include "core/graph.h"
#include "core/probe.h"
#include "core/run.h"

/* The test set through a trained graph: the NLL on clean and on corrupted
 * inputs (nats per example), and how well the network denoises: the MSE
 * between the reconstruction mean from the corrupted input and the clean
 * input, against the corrupted input itself as the baseline, with PSNRs.
 * The corrupted copy of test row r is the example at position r of epoch 0
 * in DAECL_STREAM_EVAL_CORRUPTION (plugin.h): the same noise at
 * every epoch, for any batch size and on every backend. */
typedef struct daecl_eval_result {
    double nll_clean;     /* mean over rows of -log p(x | g(f(x))) */
    double nll_corrupted; /* mean over rows of -log p(x | g(f(x~))) */
    size_t n_rows;
    /* Only with want_denoising: per-value mean squared errors. */
    double mse_reconstruction; /* E[(mean(g(f(x~))) - x)^2] */
    double mse_corrupted;      /* E[(x~ - x)^2]: the do-nothing baseline */
    double psnr_reconstruction, psnr_corrupted; /* 10 log10(range^2 / mse), dB */
    double range;              /* the data's max - min, PSNR's peak */
} daecl_eval_result;

/* Runs every row of `data` (its order is reset to sequential) through the
 * graph, clean and corrupted. The NLLs are read back once, at the end;
 * the denoising errors read each batch back (a sync per batch). */
int daecl_eval_test_set(daecl_graph *g, daecl_feeder *data, uint64_t seed, int want_denoising,
                        daecl_eval_result *out, daecl_err *err);

typedef struct daecl_evaluation {
    int have_test;
    daecl_eval_result test; /* denoising fields valid when have_denoising */
    int have_denoising;
    int have_probe;
    daecl_probe_result probe;
    int have_baseline;
    daecl_probe_result baseline;
} daecl_evaluation;

/* Evaluates the run's current parameters on its test set; the probe needs
 * data.train_labels and data.test_labels. */
int daecl_evaluate(daecl_run *r, int denoising, int probe, int probe_baseline,
                   daecl_evaluation *out, daecl_err *err);
/* Adds the evaluation's numbers to a JSON object (eval.json, summary.json). */
void daecl_evaluation_to_json(const daecl_evaluation *e, cJSON *obj);
/* Prints the numbers, one per line, for people. */
void daecl_evaluation_print(const daecl_evaluation *e, FILE *out);

typedef struct daecl_eval_opts {
    const char *run_dir;    /* its config.yaml and checkpoint.safetensors, and where eval.json goes */
    const char *checkpoint; /* overrides the run folder's checkpoint */
    const char *config;     /* overrides the run folder's config.yaml */
    const char *const *overrides;
    size_t n_overrides;
    int probe_baseline;     /* also the raw-input probe */
    int no_probe;           /* skip the probe even if labels exist */
} daecl_eval_opts;

/* `daecl eval`: loads the config and checkpoint, evaluates everything the
 * data allows (the probe when labels are configured), and writes eval.json
 * into the run folder (json_path gets its path; "" when there is none). */
int daecl_eval_run(const daecl_eval_opts *o, daecl_evaluation *out, char *json_path,
                   size_t json_path_n, daecl_err *err);

#endif
