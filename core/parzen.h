/* daecl — the Gaussian Parzen-window log-likelihood estimate of a sample set
 * (Breuleux et al. 2011; Goodfellow et al. 2014): p(x) = (1/N) sum_i
 * N(x; s_i, sigma^2 I), sigma chosen on a validation set over a grid, the test
 * mean log-likelihood reported with its standard error; and, from the same
 * blocked GEMMs, nearest-neighbour distances (the memorisation check).
 * docs/generative.md says what the number is worth. */
#ifndef DAECL_CORE_PARZEN_H
#define DAECL_CORE_PARZEN_H

#include "core/session.h"

#define DAECL_PARZEN_MAX_SIGMAS 64
/* Rows per GEMM block when the caller passes chunk_rows = 0. */
#define DAECL_PARZEN_CHUNK_DEFAULT 2048

/* Per-point log densities, in nats: ll (n_points, n_sigmas) gets
 *   log (1/n) sum_i exp(-|x - s_i|^2 / (2 sigma^2)) - dim/2 log(2 pi sigma^2)
 * for every row x of points (n_points, dim) and every sigma > 0.
 * samples is (n, dim). Both stay on the host (caller's); they are centred on
 * the samples' mean and sent to the device in blocks of chunk_rows rows
 * (0: DAECL_PARZEN_CHUNK_DEFAULT), and the squared distances come from one
 * float32 backend GEMM per block pair, |x|^2 + |s|^2 - 2 x.s with the norms
 * in double on the host, clamped at 0. The device holds
 * (2 dim + chunk_rows) * chunk_rows floats at most: 29.6 MB at dim 784 and
 * the default. The sum over samples is a log-sum-exp in double. Cost:
 * n * n_points * dim GEMM flops and n * n_points * n_sigmas exp() on the host. */
int daecl_parzen_log_density(daecl_session *s, const float *samples, size_t n,
                             const float *points, size_t n_points, size_t dim,
                             const double *sigmas, size_t n_sigmas, size_t chunk_rows,
                             double *ll, daecl_err *err);

/* dist[j] = min_i |points_j - ref_i| (Euclidean) for every row of points
 * (n_points, dim) against ref (n_ref, dim): the same blocked GEMMs as
 * daecl_parzen_log_density, with no window. Cost: n_ref * n_points * dim
 * GEMM flops. */
int daecl_parzen_nearest(daecl_session *s, const float *ref, size_t n_ref, const float *points,
                         size_t n_points, size_t dim, size_t chunk_rows, double *dist,
                         daecl_err *err);

typedef struct daecl_parzen_fit_result {
    size_t n_sigmas;
    double sigmas[DAECL_PARZEN_MAX_SIGMAS];
    double valid_ll[DAECL_PARZEN_MAX_SIGMAS]; /* mean over validation rows, nats */
    size_t best;                              /* argmax of valid_ll (first on ties) */
    double sigma;                             /* sigmas[best] */
} daecl_parzen_fit_result;

/* Chooses sigma among sigmas (1..DAECL_PARZEN_MAX_SIGMAS values, each > 0)
 * by the mean log density of valid (n_valid, dim). */
int daecl_parzen_fit(daecl_session *s, const float *samples, size_t n, const float *valid,
                     size_t n_valid, size_t dim, const double *sigmas, size_t n_sigmas,
                     size_t chunk_rows, daecl_parzen_fit_result *out, daecl_err *err);

typedef struct daecl_parzen_score_result {
    double sigma;
    double mean; /* mean log density of the test rows, nats */
    double se;   /* sd / sqrt(n_test), sd with the n_test - 1 denominator */
    size_t n_test;
} daecl_parzen_score_result;

/* Scores test (n_test >= 2 rows, dim) at one sigma. */
int daecl_parzen_score(daecl_session *s, const float *samples, size_t n, const float *test,
                       size_t n_test, size_t dim, double sigma, size_t chunk_rows,
                       daecl_parzen_score_result *out, daecl_err *err);

/* out[0..n) = lo (hi/lo)^(k/(n-1)): a log grid from lo to hi (n = 1: lo). */
int daecl_parzen_grid(double lo, double hi, size_t n, double *out, daecl_err *err);

#endif
