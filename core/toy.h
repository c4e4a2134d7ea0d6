/* daecl — toy 2-D densities known in closed form: a Gaussian mixture and a
 * noisy circle and a noisy spiral. Their generators (deterministic from a seed, on Philox
 * stream DAECL_STREAM_TOY), their densities and scores in double
 * precision, and the `toy:NAME?key=value&...` data source that
 * daecl_dataset_load hands here. docs/generative.md, "Toy densities". */
#ifndef DAECL_CORE_TOY_H
#define DAECL_CORE_TOY_H

#include <stddef.h>
#include <stdint.h>

#include "core/data.h"
#include "daecl/error.h"

#define DAECL_TOY_PREFIX "toy:"
#define DAECL_TOY_MAX_COMPONENTS 16

typedef enum daecl_toy_kind {
    DAECL_TOY_GMM = 1,   /* sum_k w_k N(x; mean_k, diag(std_k^2)) */
    DAECL_TOY_CIRCLE = 2, /* angle ~ U[0, 2 pi), radius ~ R + s N(0, 1) */
    DAECL_TOY_SPIRAL = 3  /* angle ~ U[0, 2 pi T), radius ~ R angle / (2 pi T) + s N(0, 1) */
} daecl_toy_kind;

/* A plain value: no resources, copy it freely. */
typedef struct daecl_toy {
    daecl_toy_kind kind;
    uint32_t n_comp;                          /* gmm: 1..DAECL_TOY_MAX_COMPONENTS */
    double mean[DAECL_TOY_MAX_COMPONENTS][2];
    double std[DAECL_TOY_MAX_COMPONENTS][2];  /* per axis, > 0 */
    double weight[DAECL_TOY_MAX_COMPONENTS];  /* > 0, sum 1 */
    double radius, noise;                     /* circle, spiral: R > 0, s > 0 */
    double turns;                             /* spiral: T in (0, 100] */
    uint64_t seed;                            /* the generator's Philox key */
    uint32_t split;                           /* 0: train, 1: test (the counter's epoch word) */
    uint64_t rows;                            /* `rows` key; 0: not given */
} daecl_toy;

/* 1 when s names a toy source (begins with "toy:"). */
int daecl_toy_is_spec(const char *s);
/* Parses "toy:NAME?key=value&..." (docs/config.md, data.train). On error
 * err holds one sentence naming the key, and *bad_off (may be NULL) the
 * byte offset in spec where the fault starts. */
int daecl_toy_parse(const char *spec, daecl_toy *out, size_t *bad_off, daecl_err *err);
/* Rows pos0 .. pos0 + n_rows of the toy's sequence into x, (n_rows, 2).
 * Row i depends only on (seed, split, i). pos0 + n_rows <= 2^32. */
void daecl_toy_generate(const daecl_toy *t, uint64_t pos0, size_t n_rows, float *x);
/* log p(x) at x (2 values); grad (2 values, may be NULL) gets the score
 * d log p / dx. Circle, spiral: -inf and a zero grad at the origin. The
 * spiral's density jumps across the ray at angle 0 (where its arm starts
 * and ends) and, within a few s of the origin, at angle pi (the start's
 * draws of negative radius); there grad is the value from above. */
double daecl_toy_log_density(const daecl_toy *t, const double *x, double *grad);
/* p_sigma = p * N(0, sigma^2 I): for a gmm the same mixture with every
 * std^2 raised by sigma^2. Circle and spiral have none: DAECL_ENOTSUP. */
int daecl_toy_convolve(const daecl_toy *t, double sigma, daecl_toy *out, daecl_err *err);
/* The data set a spec names: `rows` rows (at most limit when limit > 0;
 * one of the two must be given), dim 2; max_bytes as daecl_dataset_load. */
int daecl_toy_load(const char *spec, size_t limit, uint64_t max_bytes, daecl_dataset **out,
                   daecl_err *err);

#endif
