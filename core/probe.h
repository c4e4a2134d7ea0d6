/* daecl — the linear probe: multinomial logistic regression on frozen
 * features (an encoder layer's code, all of them side by side, or the raw
 * inputs for the baseline),
 * fitted to its optimum on the host in double precision, then scored on the
 * test set. The features are computed on the run's device and read back;
 * the fit is deterministic and does not depend on the thread count. */
#ifndef DAECL_CORE_PROBE_H
#define DAECL_CORE_PROBE_H

#include "core/data.h"
#include "core/feeder.h"
#include "core/graph.h"
#include "core/pool.h"

/* The fit minimises, over W (C, F) and b (C),
 *   f(W, b) = (1/n) sum_i [logsumexp(W x_i + b) - (W x_i + b)_{y_i}] + (l2/2) ||W||^2
 * (mean cross-entropy in nats; the biases are not penalised) with L-BFGS,
 * and stops when max |df/dtheta| over every entry of W and b is <= tol, or
 * after max_iter iterations. */
typedef struct daecl_probe_opts {
    double l2;         /* lambda > 0 */
    double tol;        /* on the largest gradient entry */
    uint32_t max_iter; /* L-BFGS iterations (each one line search) */
    unsigned threads;  /* host threads; 0: daecl_pool_default_threads() */
} daecl_probe_opts;

typedef enum {
    DAECL_PROBE_CONVERGED = 0, /* grad_max <= tol */
    DAECL_PROBE_MAX_ITER,      /* ran max_iter iterations without getting there */
    DAECL_PROBE_STALLED        /* no line search could lower f: tol is below rounding */
} daecl_probe_stop;

typedef struct daecl_probe_result {
    int have_test;        /* scored on a test set (always, but for daecl_probe_fit_valid's
                           * NULL test_x); else accuracy and test_nll are 0 */
    double accuracy;      /* fraction of test rows whose argmax logit is the label */
    double test_nll;      /* mean cross-entropy on the test set, nats */
    double objective;     /* f at the solution (training rows) */
    double grad_max;      /* max |df/dtheta| there, over W and b */
    uint32_t iterations;  /* L-BFGS iterations */
    uint32_t evaluations; /* of f and its gradient, line searches included */
    daecl_probe_stop stop;
    uint32_t n_classes;
    size_t n_features;
    size_t n_train;
    double l2;            /* the lambda it was fitted with */
    int have_valid;       /* scored on a validation set too (daecl_probe_fit_valid) */
    double valid_accuracy, valid_nll;
    double seconds;       /* wall time of the fit and the scoring */
} daecl_probe_result;

/* Which features the probe sees: an encoder layer's code, 0 .. n_encoder-1
 * (model layers[l], l = n_encoder-1 the top code), or one of these. */
enum {
    DAECL_PROBE_ALL = -1, /* every encoder layer's code side by side, layer 0 first */
    DAECL_PROBE_RAW = -2  /* the inputs themselves: the baseline */
};

/* "layer 2", "all layers" or "raw" into buf; returns buf. */
const char *daecl_probe_features_name(int which, char *buf, size_t n);

/* Features (n_rows, *width) of every row of `data` in file order, read back
 * to the host: `which` (above) on clean inputs, computed on the device.
 * For DAECL_PROBE_ALL, *width is the sum of the encoder layers' widths and
 * row r is [h_0(x_r), h_1(x_r), ...]: one forward pass per batch fills
 * every layer, each read back into its columns through one batch of
 * scratch, so the host holds n_rows * width floats plus one batch.
 * *out is malloc'd; the caller frees it. */
int daecl_probe_features(daecl_graph *g, daecl_feeder *data, int which, float **out,
                         size_t *width, daecl_err *err);

/* Fits the probe on train features (train_y->n, width) and scores it on
 * the test ones (test_y->n, width). Classes are 0..C-1 with C the larger of
 * the two label sets' class counts. */
int daecl_probe_fit(const float *train_x, const daecl_labels *train_y, const float *test_x,
                    const daecl_labels *test_y, size_t width, const daecl_probe_opts *o,
                    daecl_probe_result *out, daecl_err *err);
/* The same, and the one fit scored on valid features (valid_y->n, width)
 * as well into out->valid_*; valid_x NULL: none (daecl_probe_fit). test_x
 * (and test_y) NULL: no test set, scored on the validation rows alone (a
 * sweep's points choose without reading the test set; core/sweep.h). */
int daecl_probe_fit_valid(const float *train_x, const daecl_labels *train_y,
                          const float *valid_x, const daecl_labels *valid_y, const float *test_x,
                          const daecl_labels *test_y, size_t width, const daecl_probe_opts *o,
                          daecl_probe_result *out, daecl_err *err);

/* ---- for tests (tests/test_probe.c) ---------------------------------------
 * theta is W (C, F) row-major, then b (C): C * F + C doubles. */

/* f at theta into *f, its gradient into grad, over rows (n, F) of x with
 * labels y in [0, C); pool may be NULL (one thread). */
int daecl__probe_objective(daecl_pool *pool, const float *x, const int32_t *y, size_t n, size_t F,
                           size_t C, double l2, const double *theta, double *f, double *grad,
                           daecl_err *err);
/* The solver alone, from theta (in: the start; out: the solution); fills
 * out's objective, grad_max, iterations, evaluations and stop. */
int daecl__probe_solve(daecl_pool *pool, const float *x, const int32_t *y, size_t n, size_t F,
                       size_t C, const daecl_probe_opts *o, double *theta, daecl_probe_result *out,
                       daecl_err *err);

#endif
