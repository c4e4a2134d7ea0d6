/* daecl — evaluation of a trained graph on held-out data: test NLL on clean
 * and on corrupted inputs (nats per example), and how well the network
 * denoises: the MSE between the reconstruction mean from the corrupted input
 * and the clean input, against the corrupted input itself as the baseline,
 * with PSNRs. The corrupted copy of test row r draws Philox blocks (seed,
 * DAECL_STREAM_EVAL_CORRUPTION, step 0, elem r*D + j): the same noise at
 * every epoch, for any batch size and on every backend. */
#ifndef DAECL_CORE_EVAL_H
#define DAECL_CORE_EVAL_H

#include "core/feeder.h"
#include "core/graph.h"

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
int daecl_eval(daecl_graph *g, daecl_feeder *data, uint64_t seed, int want_denoising,
               daecl_eval_result *out, daecl_err *err);

#endif
