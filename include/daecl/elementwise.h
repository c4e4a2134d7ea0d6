/* daecl - host loops for plugins written as shared kernel C element functions.
 *
 * A corruption or likelihood plugin writes its element functions once (a .cl
 * file in the common subset of C and OpenCL C, see clc.h), includes that file
 * in its C source, and lets these macros build the required host ops from it.
 * The same text, embedded as cl_source, becomes the device kernels; the
 * element function is inlined into the loop, so there is no per-element call. */
#ifndef DAECL_ELEMENTWISE_H
#define DAECL_ELEMENTWISE_H

#include "daecl/philox.h"
#include "daecl/plugin.h"

/* Hot element loops are compiled three times on x86-64, for AVX-512, AVX2
 * and the baseline, and the loader picks one by CPU (GCC/clang
 * target_clones): one binary for every machine, 16- or 8-wide vectors where
 * the CPU has them (the AVX-512 clone took the masking, Bernoulli and bias +
 * activation loops of an R1 step from 15% of its time to 10% on a Zen 5).
 * Only add and mul round here, in the same order in all (no FMA:
 * -ffp-contract=off), so every clone gives the same bits. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__SANITIZE_ADDRESS__)
#define DAECL_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DAECL_HOT
#endif

/* Block j of row r of a call (plugin.h: daecl_noise_key): the block of
 * dimension j of the example at position key->pos0 + r. */
static inline daecl_u4 daecl_noise_block(const daecl_noise_key *key, size_t r, uint32_t j)
{
    return daecl_philox_block((uint32_t)key->seed, (uint32_t)(key->seed >> 32),
                              daecl_noise_word3(key->stream, key->stage, key->substep),
                              key->epoch, (uint32_t)(key->pos0 + r), j);
}

/* Row r of a call as a row-granular corruption sees it (philox.h). */
static inline daecl_row daecl_row_make(const daecl_noise_key *key, const daecl_shape *shape,
                                       size_t dim, size_t r)
{
    daecl_row row;
    row.seed_lo = (uint32_t)key->seed;
    row.seed_hi = (uint32_t)(key->seed >> 32);
    row.word3 = daecl_noise_word3(key->stream, key->stage, key->substep);
    row.epoch = key->epoch;
    row.pos = (uint32_t)(key->pos0 + r);
    row.dim = (uint32_t)dim;
    row.rank = shape->rank;
    for (unsigned i = 0; i < 4; i++)
        row.shape[i] = i < shape->rank ? shape->dims[i] : 1u;
    return row;
}

/* Defines `static int NAME(...)`, a daecl_corruption_ops.host_apply that runs
 * daecl_corrupt() over every element, dimension j of row r with block j of
 * the row's position. */
#define DAECL_DEFINE_HOST_CORRUPTION(NAME)                                                  \
    DAECL_HOT static int NAME(const float *x, float *xt, size_t n_rows, size_t dim,         \
                              const daecl_shape *shape, const daecl_noise_key *key,         \
                              const float *params, daecl_err *err)                          \
    {                                                                                       \
        (void)err;                                                                          \
        (void)shape;                                                                        \
        for (size_t r = 0; r < n_rows; r++)                                                 \
            for (size_t j = 0; j < dim; j++)                                                \
                xt[r * dim + j] = daecl_corrupt(x[r * dim + j],                             \
                                                daecl_noise_block(key, r, (uint32_t)j),     \
                                                params);                                    \
        return 0;                                                                           \
    }

/* Defines `static int NAME(...)`, a daecl_corruption_ops.host_apply for a
 * row-granular plugin (DAECL_GRAIN_ROW): output element j of row r is
 * daecl_corrupt_row(x row r, j, row r as daecl_row_make gives it), the
 * function the device kernel calls for the same element. */
#define DAECL_DEFINE_HOST_ROW_CORRUPTION(NAME)                                              \
    static int NAME(const float *x, float *xt, size_t n_rows, size_t dim,                   \
                    const daecl_shape *shape, const daecl_noise_key *key,                   \
                    const float *params, daecl_err *err)                                    \
    {                                                                                       \
        (void)err;                                                                          \
        for (size_t r = 0; r < n_rows; r++) {                                               \
            daecl_row row = daecl_row_make(key, shape, dim, r);                             \
            for (size_t j = 0; j < dim; j++)                                                \
                xt[r * dim + j] = daecl_corrupt_row(x + r * dim, (uint32_t)j, &row, params); \
        }                                                                                   \
        return 0;                                                                           \
    }

/* The k values of dimension j of row r (blocked layout, plugin.h). */
static inline daecl_f4 daecl__lik_gather(const float *a_row, size_t dim, size_t j, unsigned k)
{
    daecl_f4 v = daecl_f4_make(a_row[j], 0.0f, 0.0f, 0.0f);
    if (k > 1)
        v.y = a_row[dim + j];
    if (k > 2)
        v.z = a_row[2 * dim + j];
    if (k > 3)
        v.w = a_row[3 * dim + j];
    return v;
}

/* Defines the three required likelihood host ops, PREFIX_loss_grad,
 * PREFIX_mean and PREFIX_sample, from daecl_lik_nll/grad/mean/sample with K
 * parameters per dimension. Row sums accumulate in double. */
#define DAECL_DEFINE_HOST_LIKELIHOOD(PREFIX, K)                                             \
    DAECL_HOT static int PREFIX##_loss_grad(const float *x, const float *a, size_t n_rows,  \
                                            size_t dim, const float *params, float scale,   \
                                            float *nll_rows, float *grad, daecl_err *err)   \
    {                                                                                       \
        (void)err;                                                                          \
        /* Per-element nll goes to a block of `tmp` first, then is summed in                \
         * double in order: the element loop has no reduction in it, so it                 \
         * vectorises without reassociating the sum. */                                     \
        float tmp[256];                                                                     \
        for (size_t r = 0; r < n_rows; r++) {                                               \
            const float *xr = x + r * dim;                                                  \
            const float *ar = a + r * (K) * dim;                                            \
            float *gr = grad ? grad + r * (K) * dim : NULL;                                 \
            double sum = 0.0;                                                               \
            for (size_t j0 = 0; j0 < dim; j0 += 256) {                                      \
                size_t w = dim - j0 < 256 ? dim - j0 : 256;                                 \
                if (nll_rows) {                                                             \
                    for (size_t j = 0; j < w; j++)                                          \
                        tmp[j] = daecl_lik_nll(xr[j0 + j],                                  \
                                               daecl__lik_gather(ar, dim, j0 + j, (K)),     \
                                               params);                                     \
                    for (size_t j = 0; j < w; j++)                                          \
                        sum += (double)tmp[j];                                              \
                }                                                                           \
                if (gr)                                                                     \
                    for (size_t j = j0; j < j0 + w; j++) {                                  \
                        daecl_f4 g = daecl_lik_grad(xr[j], daecl__lik_gather(ar, dim, j, (K)), \
                                                    params);                                \
                        gr[j] = scale * g.x;                                                \
                        if ((K) > 1)                                                        \
                            gr[dim + j] = scale * g.y;                                      \
                        if ((K) > 2)                                                        \
                            gr[2 * dim + j] = scale * g.z;                                  \
                        if ((K) > 3)                                                        \
                            gr[3 * dim + j] = scale * g.w;                                  \
                    }                                                                       \
            }                                                                               \
            if (nll_rows)                                                                   \
                nll_rows[r] = (float)sum;                                                   \
        }                                                                                   \
        return 0;                                                                           \
    }                                                                                       \
    DAECL_HOT static int PREFIX##_mean(const float *a, float *mean, size_t n_rows, size_t dim, \
                             const float *params, daecl_err *err)                           \
    {                                                                                       \
        (void)err;                                                                          \
        for (size_t r = 0; r < n_rows; r++)                                                 \
            for (size_t j = 0; j < dim; j++)                                                \
                mean[r * dim + j] =                                                         \
                    daecl_lik_mean(daecl__lik_gather(a + r * (K) * dim, dim, j, (K)), params); \
        return 0;                                                                           \
    }                                                                                       \
    DAECL_HOT static int PREFIX##_sample(const float *a, float *out, size_t n_rows,         \
                                         size_t dim,                                        \
                               const daecl_noise_key *key, const float *params,             \
                               daecl_err *err)                                              \
    {                                                                                       \
        (void)err;                                                                          \
        for (size_t r = 0; r < n_rows; r++)                                                 \
            for (size_t j = 0; j < dim; j++)                                                \
                out[r * dim + j] = daecl_lik_sample(                                        \
                    daecl__lik_gather(a + r * (K) * dim, dim, j, (K)),                      \
                    daecl_noise_block(key, r, (uint32_t)j), params);                        \
        return 0;                                                                           \
    }

#endif
