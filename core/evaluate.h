/* daecl — judging a trained run: test NLL (clean and corrupted), denoising
 * MSE/PSNR, and the linear probe on the top code (also on each encoder
 * layer's code and on all of them side by side, and on raw inputs as the
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

/* Maps a batch x (n rows of a data set) to the graph's clean input *h and
 * its example shape: a stack stage's codes (core/stack.h). */
typedef int (*daecl_eval_input_fn)(void *ctx, daecl_slice x, size_t n, daecl_slice *h,
                                   daecl_shape *shape, daecl_err *err);
/* The NLLs of daecl_eval_test_set (no denoising errors) for a graph whose
 * input is input(x) of each batch, the evaluation noise in noise-key stage
 * `stage`. */
int daecl_eval_codes(daecl_graph *g, daecl_feeder *data, uint64_t seed, uint32_t stage,
                     daecl_eval_input_fn input, void *ctx, daecl_eval_result *out,
                     daecl_err *err);

/* One probe fit and the features it saw. */
typedef struct daecl_probe_fit_of {
    int features; /* an encoder layer, DAECL_PROBE_ALL or DAECL_PROBE_RAW (probe.h) */
    daecl_probe_result fit;
} daecl_probe_fit_of;

/* n_encoder layers, all of them, raw */
#define DAECL_EVAL_MAX_PROBES (DAECL_MAX_LAYERS + 2)

typedef struct daecl_evaluation {
    int have_test;
    daecl_eval_result test; /* denoising fields valid when have_denoising */
    int have_denoising;
    int have_probe;
    daecl_probe_result probe;    /* the top code's */
    int have_baseline;
    daecl_probe_result baseline; /* the raw inputs' */
    /* Only with the probe, eval.probe_layers each and more than one encoder
     * layer (else n_probes is 0): every fit, layers 0 .. n_encoder-1, all
     * layers, then raw with the baseline. probe and baseline are copies of
     * the top layer's and raw's entries, not fits of their own. */
    size_t n_probes;
    daecl_probe_fit_of probes[DAECL_EVAL_MAX_PROBES];
} daecl_evaluation;

/* Evaluates the run's current parameters on its test set; the probe needs
 * data.train_labels and data.test_labels. Which codes it sees follows the
 * run's eval.probe_layers. A run with a validation set and no test set
 * (a sweep's point, core/sweep.h) may ask for the probe alone: it is scored
 * on the validation rows, have_test stays 0 and the fits' have_test too. */
int daecl_evaluate(daecl_run *r, int denoising, int probe, int probe_baseline,
                   daecl_evaluation *out, daecl_err *err);
/* Adds the evaluation's numbers to a JSON object (eval.json, summary.json). */
void daecl_evaluation_to_json(const daecl_evaluation *e, cJSON *obj);
/* Prints the numbers, one per line, for people. */
void daecl_evaluation_print(const daecl_evaluation *e, FILE *out);
/* Copies src's probe results (probe, baseline, probes) into dst, leaving
 * its test-set numbers. */
void daecl_evaluation_take_probes(daecl_evaluation *dst, const daecl_evaluation *src);
/* "validation accuracy 91.20%, test accuracy 90.80%", either
 * half only when the fit has it; into buf, returned. */
const char *daecl_evaluation_probe_scores(const daecl_probe_result *p, char *buf, size_t n);
/* One line naming the features a fit saw, for people: "the code",
 * "encoder layer 0", "encoder layer 1, the top code", "all encoder layers
 * side by side", "raw inputs". n_encoder 1: "the code". */
const char *daecl_evaluation_probe_name(int features, uint32_t n_encoder, char *buf, size_t n);

typedef struct daecl_eval_opts {
    const char *run_dir;    /* its config.yaml and checkpoint.safetensors, and where eval.json goes */
    const char *checkpoint; /* overrides the run folder's checkpoint */
    const char *config;     /* overrides the run folder's config.yaml */
    const char *const *overrides;
    size_t n_overrides;
    int probe_baseline;     /* also the raw-input probe */
    const char *probe_layers; /* "top" or "each": overrides eval.probe_layers; NULL: the config's */
    int no_probe;           /* skip the probe even if labels exist */
} daecl_eval_opts;

/* `daecl eval`: loads the config and checkpoint, evaluates everything the
 * data allows (the probe when labels are configured), and writes eval.json
 * into the run folder (json_path gets its path; "" when there is none). */
int daecl_eval_run(const daecl_eval_opts *o, daecl_evaluation *out, char *json_path,
                   size_t json_path_n, daecl_err *err);

#endif
