/* daecl cpu backend - the numerical ops on plain host arrays (cpu_math.h).
 * Written to be read first: each op is the formula from backend.h as a loop,
 * with the activation or optimiser chosen once outside the loop so the inner
 * loops stay simple enough for the compiler to vectorise. OpenMP splits the
 * GEMMs (each block one single-threaded OpenBLAS call) and the elementwise
 * loops into contiguous blocks
 * (schedule(static)), and every element or column is computed by one thread
 * in the same order whatever the thread count, so results do not depend on
 * it. Loops below PAR_MIN elements stay on one thread: waking others costs
 * more than it saves. */
#include "cpu_math.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "daecl/elementwise.h"
#include "daecl/mathfn.h"

enum { PAR_MIN = 32768 };

void daecl__cpu_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                     size_t ldc)
{
    if (m == 0 || n == 0)
        return;
    /* beta == 0 must ignore C's old contents, NaN included: OpenBLAS's
     * gemm_beta kernels store zeros for beta == 0 rather than scale by it
     * (tests/test_backend_cpu.c checks it on the machine that runs the
     * suite). Zeroing here as well cost 5% of a training step. */
    if (k == 0) {
        if (beta == 0.0f)
            for (size_t i = 0; i < m; i++)
                memset(c + i * ldc, 0, n * sizeof *c);
        /* op(A) op(B) is the zero matrix: C = beta C. Done here because
         * BLAS wants lda >= 1 even for an empty A. */
        if (beta != 0.0f && beta != 1.0f)
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++)
                    c[i * ldc + j] *= beta;
        return;
    }
    /* One pool of threads for everything: OpenBLAS runs single-threaded
     * (cpu.c sets it) and this splits C into contiguous blocks of columns
     * (or rows, whichever is longer), one per OpenMP thread. Two pools, one
     * spinning while the other works, made a training step twice as slow on
     * two cores; each block here still gets OpenBLAS's full single-core
     * kernel. Every element of C comes from one call over all of k. */
    int blocks = (double)m * (double)n * (double)k >= 4e6 ? omp_get_max_threads() : 1;
    int split_n = n >= m;
    size_t len = split_n ? n : m;
    if ((size_t)blocks > len / 16)
        blocks = len / 16 > 0 ? (int)(len / 16) : 1;
#pragma omp parallel for schedule(static) num_threads(blocks) if (blocks > 1)
    for (int t = 0; t < blocks; t++) {
        /* block t: [lo, hi) of C's columns (or rows), multiples of 16 */
        size_t lo = len * (size_t)t / (size_t)blocks / 16 * 16;
        size_t hi = t + 1 == blocks ? len : len * (size_t)(t + 1) / (size_t)blocks / 16 * 16;
        if (hi <= lo)
            continue;
        const float *ab = a, *bb = b;
        float *cb = c;
        size_t mb = m, nb = n;
        if (split_n) { /* columns lo..hi of op(B): B (k, n) or B^T with B (n, k) */
            bb = trans_b ? b + lo * ldb : b + lo;
            cb = c + lo;
            nb = hi - lo;
        } else { /* rows lo..hi of op(A): A (m, k) or A^T with A (k, m) */
            ab = trans_a ? a + lo : a + lo * lda;
            cb = c + lo * ldc;
            mb = hi - lo;
        }
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, (blasint)mb, (blasint)nb, (blasint)k,
                    alpha, ab, (blasint)lda, bb, (blasint)ldb, beta, cb, (blasint)ldc);
    }
}

/* sigmoid(x) = 1 / (1 + exp(-x)), arranged so exp never overflows: with
 * e = exp(-|x|) <= 1 it is 1 / (1 + e) for x >= 0 and e / (1 + e) below.
 * daecl_expf (mathfn.h) is branch-free arithmetic, so this loop
 * vectorises; libm's expf is a call per element. NaN stays NaN. */
static inline float sigmoid(float x)
{
    float e = daecl_expf(-fabsf(x));
    float inv = 1.0f / (1.0f + e);
    return x >= 0.0f ? inv : e * inv;
}

/* relu written `x < 0 ? 0 : x` so that NaN propagates (fmaxf would hide it
 * and a diverging run would not stop). */
static inline float relu(float x)
{
    return x < 0.0f ? 0.0f : x;
}

/* z (n_rows, dim) = act(z + bias) on a block of rows; bias_step 0 means no
 * bias (bias then points at one zero). DAECL_HOT: sigmoid's exp dominates a
 * forward pass outside the GEMMs, and AVX2 doubles its vector width. */
DAECL_HOT static void bias_act_rows(float *z, const float *bias, size_t bias_step, size_t n_rows,
                                    size_t dim, daecl_act act)
{
    for (size_t r = 0; r < n_rows; r++) {
        float *zr = z + r * dim;
        switch (act) {
        case DAECL_ACT_LINEAR:
            for (size_t j = 0; j < dim; j++)
                zr[j] = zr[j] + bias[j * bias_step];
            break;
        case DAECL_ACT_SIGMOID:
            for (size_t j = 0; j < dim; j++)
                zr[j] = sigmoid(zr[j] + bias[j * bias_step]);
            break;
        case DAECL_ACT_TANH:
            for (size_t j = 0; j < dim; j++)
                zr[j] = tanhf(zr[j] + bias[j * bias_step]);
            break;
        case DAECL_ACT_RELU:
            for (size_t j = 0; j < dim; j++)
                zr[j] = relu(zr[j] + bias[j * bias_step]);
            break;
        }
    }
}

void daecl__cpu_bias_act_forward(float *z, const float *bias, size_t n_rows, size_t dim,
                                 daecl_act act)
{
    /* z is (n_rows, dim), bias is (dim): one pass, a block of rows per thread. */
    static const float zero = 0.0f;
    size_t bias_step = bias ? 1 : 0;
    int blocks = n_rows * dim >= PAR_MIN ? omp_get_max_threads() : 1;
    if ((size_t)blocks > n_rows)
        blocks = n_rows ? (int)n_rows : 1;
#pragma omp parallel for schedule(static) num_threads(blocks) if (blocks > 1)
    for (int t = 0; t < blocks; t++) {
        size_t r0 = n_rows * (size_t)t / (size_t)blocks, r1 = n_rows * (size_t)(t + 1) / (size_t)blocks;
        bias_act_rows(z + r0 * dim, bias ? bias : &zero, bias_step, r1 - r0, dim, act);
    }
}

void daecl__cpu_act_backward(float *dh, const float *h, size_t n, daecl_act act)
{
    /* dh and h are (n). The derivative is written from h = act(z), the
     * forward output, so the pre-activation need not be kept:
     *   sigmoid' = h (1 - h),  tanh' = 1 - h^2,  relu' = [h > 0],  linear' = 1. */
    switch (act) {
    case DAECL_ACT_LINEAR:
        break;
    case DAECL_ACT_SIGMOID:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dh[i] = dh[i] * (h[i] * (1.0f - h[i]));
        break;
    case DAECL_ACT_TANH:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dh[i] = dh[i] * (1.0f - h[i] * h[i]);
        break;
    case DAECL_ACT_RELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dh[i] = h[i] > 0.0f ? dh[i] : 0.0f;
        break;
    }
}

/* Columns summed per pass of col_sum: 256 doubles (2 KiB) of accumulators on
 * the stack, so rows are read contiguously 1 KiB at a time without a heap
 * scratch buffer. */
enum { COL_BLOCK = 256 };

void daecl__cpu_col_sum(const float *src, size_t n_rows, size_t dim, float beta, float *dst)
{
    /* src is (n_rows, dim), dst is (dim). Each column is summed in row
     * order, in double, whatever the block width: the result does not
     * depend on how columns are blocked. */
#pragma omp parallel for schedule(static) if (n_rows * dim >= PAR_MIN)
    for (size_t j0 = 0; j0 < dim; j0 += COL_BLOCK) {
        double acc[COL_BLOCK];
        size_t w = dim - j0 < COL_BLOCK ? dim - j0 : COL_BLOCK;
        for (size_t j = 0; j < w; j++)
            acc[j] = 0.0;
        for (size_t r = 0; r < n_rows; r++) {
            const float *row = src + r * dim + j0;
            for (size_t j = 0; j < w; j++)
                acc[j] += (double)row[j];
        }
        for (size_t j = 0; j < w; j++)
            dst[j0 + j] = beta == 0.0f ? (float)acc[j]
                                       : (float)((double)beta * (double)dst[j0 + j] + acc[j]);
    }
}

float daecl__cpu_sum(const float *src, size_t n)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++)
        acc += (double)src[i];
    return (float)acc;
}

size_t daecl__cpu_gather(const float *data, size_t n_data_rows, size_t dim, const uint32_t *idx,
                         size_t n_rows, float *out)
{
    /* data is (n_data_rows, dim), idx is (n_rows), out is (n_rows, dim).
     * Indices are checked before anything is copied: one pass over n_rows
     * integers, nothing next to the n_rows * dim floats copied. */
    for (size_t r = 0; r < n_rows; r++)
        if (idx[r] >= n_data_rows)
            return r;
#pragma omp parallel for schedule(static) if (n_rows * dim >= PAR_MIN)
    for (size_t r = 0; r < n_rows; r++)
        memcpy(out + r * dim, data + (size_t)idx[r] * dim, dim * sizeof *out);
    return n_rows;
}

/* torch.optim.SGD with dampening 0:
 *   g' = g + wd w;  v = mu v + g';  d = nesterov ? g' + mu v : v;  w -= lr d.
 * The velocity starts at zero, so the first step's v is g' as in PyTorch. */
static void sgd_update(const daecl_optim_step *s, float *w, const float *g, float *v, size_t n)
{
    const float lr = s->lr, mu = s->momentum, wd = s->weight_decay;
    const int nesterov = s->nesterov != 0;
    if (mu == 0.0f && wd == 0.0f) { /* plain SGD: the common case, one streaming pass */
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            w[i] = w[i] - lr * g[i];
        return;
    }
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (wd != 0.0f)
            gi = gi + wd * w[i];
        float d = gi;
        if (mu != 0.0f) {
            v[i] = mu * v[i] + gi;
            d = nesterov ? gi + mu * v[i] : v[i];
        }
        w[i] = w[i] - lr * d;
    }
}

/* torch.optim.Adam (L2 weight decay in the gradient) and AdamW (decoupled:
 * the weight shrinks by lr * wd before the Adam step, which then has wd 0):
 *   m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
 *   w -= lr (m / bc1) / (sqrt(v / bc2) + eps). */
static void adam_update(const daecl_optim_step *s, float *w, const float *g, float *m, float *v,
                        size_t n)
{
    const int decoupled = s->kind == DAECL_OPTIM_ADAMW;
    const float lr = s->lr, wd = s->weight_decay;
    const float b1 = s->beta1, b2 = s->beta2, eps = s->eps;
    const float one_m_b1 = 1.0f - b1, one_m_b2 = 1.0f - b2;
    const float bc1 = s->bias_corr1, bc2 = s->bias_corr2;
    const float shrink = lr * wd;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (wd != 0.0f) {
            if (decoupled)
                w[i] = w[i] - shrink * w[i];
            else
                gi = gi + wd * w[i];
        }
        m[i] = b1 * m[i] + one_m_b1 * gi;
        v[i] = b2 * v[i] + one_m_b2 * (gi * gi);
        w[i] = w[i] - lr * (m[i] / bc1) / (sqrtf(v[i] / bc2) + eps);
    }
}

void daecl__cpu_optim_update(const daecl_optim_step *step, float *w, const float *g, float *s1,
                             float *s2, size_t n)
{
    if (step->kind == DAECL_OPTIM_SGD)
        sgd_update(step, w, g, s1, n);
    else
        adam_update(step, w, g, s1, s2, n);
}

void daecl__cpu_softmax_xent(const float *logits, const float *labels, size_t n_rows,
                             size_t n_classes, float scale, float *loss_rows, float *grad)
{
    for (size_t r = 0; r < n_rows; r++) {
        const float *z = logits + r * n_classes;
        size_t y = (size_t)labels[r];
        double zmax = z[0];
        for (size_t c = 1; c < n_classes; c++)
            if (z[c] > zmax)
                zmax = z[c];
        double sum = 0;
        for (size_t c = 0; c < n_classes; c++)
            sum += exp((double)z[c] - zmax);
        if (loss_rows)
            loss_rows[r] = (float)(zmax + log(sum) - (double)z[y]);
        if (grad)
            for (size_t c = 0; c < n_classes; c++) {
                double p = exp((double)z[c] - zmax) / sum;
                grad[r * n_classes + c] = (float)(scale * (p - (c == y ? 1.0 : 0.0)));
            }
    }
}
