/* daecl — `daecl eval RUN_DIR --parzen`: the Parzen-window test
 * log-likelihood of a trained run's chain samples (core/parzen.h on
 * core/sample.h's chains) and the memorisation check beside it, added to
 * the run's eval.json. */
#ifndef DAECL_CORE_PARZEN_EVAL_H
#define DAECL_CORE_PARZEN_EVAL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "core/parzen.h"

#define DAECL_PARZEN_EVAL_SAMPLES 10000u
#define DAECL_PARZEN_EVAL_STEPS 100u
#define DAECL_PARZEN_EVAL_VALID 10000u

typedef struct daecl_parzen_eval_opts {
    const char *run_dir; /* the trained run; its eval.json gets the numbers */
    const char *const *overrides;
    size_t n_overrides;
    uint32_t n_samples;  /* chains, one sample each (the last step's decoder mean); >= 1 */
    uint32_t steps;      /* steps per chain, 1..DAECL_SAMPLE_MAX_STEPS */
    int has_seed;        /* 0: the run's seed */
    uint64_t seed;
    size_t n_valid;      /* sigma is fitted on the training set's last n_valid rows;
                          * 0: a sixth of it, at most DAECL_PARZEN_EVAL_VALID */
    double sigma_lo, sigma_hi; /* the log grid of n_sigmas widths */
    size_t n_sigmas;
    size_t chunk_rows;   /* GEMM blocks (core/parzen.h); 0: its default */
} daecl_parzen_eval_opts;

/* Fills the defaults: 10,000 samples after 100 steps from noise, sigma from
 * 0.05 to 1 in 20 log steps, the run's seed, the default split. */
void daecl_parzen_eval_defaults(daecl_parzen_eval_opts *o);

typedef struct daecl_parzen_eval_result {
    daecl_parzen_fit_result fit;     /* sigma's choice on the validation rows */
    daecl_parzen_score_result score; /* the test mean log-likelihood, nats */
    uint32_t n_samples, steps;
    uint64_t seed;
    uint64_t step;                   /* the checkpoint's training step */
    size_t n_train, n_valid;         /* the validation rows are train[n_train - n_valid ..] */
    /* Memorisation: Euclidean distance to the nearest training example (all
     * n_train rows), for each sample and for each test example. */
    double nn_sample_median, nn_sample_p5, nn_test_median, nn_test_p5;
    char json[4096];                 /* the eval.json written */
    char checkpoint_sha256[65];      /* of the checkpoint measured, hex; eval.json keeps it */
} daecl_parzen_eval_result;

/* Opens the run on its backend, runs o->n_samples chains from uniform noise
 * for o->steps steps, takes the decoder means of the last step as the
 * window's centres, fits sigma, scores the test set, measures the
 * nearest-neighbour distances, and adds "parzen" and "memorisation" to
 * RUN_DIR/eval.json (keeping its other keys). A run without a test set is
 * refused. */
int daecl_parzen_eval_run(const daecl_parzen_eval_opts *o, daecl_parzen_eval_result *res,
                          daecl_err *err);

/* For a plain `daecl eval` about to write j as RUN_DIR/eval.json: moves
 * the "parzen" and "memorisation" objects of the eval.json already there
 * into j when they were measured on the checkpoint at ckpt_path, the one
 * just evaluated at training step `step` (by the SHA-256 parzen records;
 * for an eval.json from before it did, by its step, and only for the run's
 * own checkpoint). Otherwise it logs one line that it dropped them. An
 * eval.json that is not JSON has nothing to keep. */
int daecl_parzen_eval_keep(const char *run_dir, const char *ckpt_path, uint64_t step, cJSON *j,
                           daecl_err *err);

/* The one-line summaries `daecl eval --parzen` prints. */
void daecl_parzen_eval_print(const daecl_parzen_eval_result *res, FILE *f);

#endif
