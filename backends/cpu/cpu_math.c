/* daecl cpu backend - the numerical ops on plain host arrays (cpu_math.h).
 * Written to be read first: each op is the formula from backend.h as a loop,
 * with the activation or optimiser chosen once outside the loop so the inner
 * loops stay simple enough for the compiler to vectorise.
 *
 * Parallel ops are cut into chunks whose boundaries depend only on the op's
 * sizes, never on the thread count, and the pool (core/pool.h) hands them to
 * whichever thread is free: a thread the scheduler has taken away holds up
 * one chunk, not a fixed share of the op. Every element (a GEMM's C element,
 * a column sum) is computed inside one chunk, in the same order whatever
 * thread runs it, so results are the same bits for any thread count, which
 * resuming a run on another machine relies on. Ops below a size threshold run
 * inline as one chunk: waking threads costs more than it saves. */
#include "cpu_math.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "daecl/elementwise.h"
#include "daecl/mathfn.h"

enum {
    /* Elementwise ops below PAR_MIN elements run inline. A chunk is
     * ELEM_CHUNK elements (64 KiB of floats, a few microseconds of work),
     * or whole rows of about that many. */
    PAR_MIN = 32768,
    ELEM_CHUNK = 16384,
    /* col_sum's chunks: columns, each summed over all rows. */
    COL_CHUNK = 64,
};

/* Chunks of `per` items over n items; 1 below min_par (run inline). */
static size_t chunks_of(size_t n, size_t per, size_t min_par)
{
    if (n < min_par || n <= per)
        return 1;
    return (n + per - 1) / per;
}

/* ---- GEMM ------------------------------------------------------------------- */

/* daecl's own kernels (cpu_gemm.c) where the CPU has AVX2 + FMA; OpenBLAS
 * otherwise, or when backend.gemm names it. With OpenBLAS, the GEMM is cut along C's columns, or rows when there are more rows than
 * columns, into blocks a multiple of 16 wide: each block is one
 * single-threaded OpenBLAS call over all of k (cpu.c keeps OpenBLAS on one
 * thread), so each element of C comes from one call. OpenBLAS's sums do
 * depend on the block width (cutting a 129 x 1111 x 300 product into
 * 64-column blocks changes 19,000 of its elements), which is why the cut
 * depends on the sizes alone. A block repacks the whole of the operand it
 * does not cut (A when cutting columns), which costs: R1's five products
 * on one thread took 1.4 % longer in 2 blocks, 2.4 % in 4, 3.7 % in 8 and
 * 11 % in 16. So the count is a power of two (an even count keeps two
 * threads evenly loaded) with about GEMM_CHUNK_MACS multiply-adds or more
 * per block (a millisecond or more of one core), from 2 to GEMM_MAX_CHUNKS:
 * R1's 128 x 1000 x 784 product becomes 2 blocks of 500 columns, the small
 * benchmark model's 256 x 128 x 128 two of 64, a batch of 1024 on R1's
 * layers 16. With 16 million a block R1 took 4 blocks, and on 2 cores ran
 * 0.94x to 0.97x of the OpenMP build's speed quiet (1.08x of one thread
 * beside a busy process); with 32 million, 0.97x quiet and 1.16x busy
 * (bench/RESULTS.md). Below GEMM_PAR_MIN multiply-adds the product is one
 * call. */
enum { GEMM_MAX_CHUNKS = 32, GEMM_ALIGN = 16 };
static const double GEMM_PAR_MIN = 4e6, GEMM_CHUNK_MACS = 32e6;

typedef struct gemm_job {
    int trans_a, trans_b, split_n;
    size_t m, n, k, width; /* width: C's columns (or rows) per chunk */
    float alpha, beta;
    const float *a, *b;
    float *c;
    size_t lda, ldb, ldc;
} gemm_job;

/* The block width for a product (m, n) x k, cutting `len` of C's sides. */
static size_t gemm_width(size_t m, size_t n, size_t k, size_t len)
{
    double macs = (double)m * (double)n * (double)k;
    if (macs < GEMM_PAR_MIN || len < 2 * GEMM_ALIGN)
        return len;
    /* a power of two: an even count keeps two threads evenly loaded */
    size_t chunks = 2;
    while (chunks < GEMM_MAX_CHUNKS && (double)(2 * chunks) * GEMM_CHUNK_MACS <= macs)
        chunks *= 2;
    size_t w = (len + chunks - 1) / chunks;
    return (w + GEMM_ALIGN - 1) / GEMM_ALIGN * GEMM_ALIGN;
}

static void gemm_chunk(void *arg, size_t chunk)
{
    const gemm_job *j = arg;
    size_t len = j->split_n ? j->n : j->m;
    size_t lo = chunk * j->width, hi = lo + j->width < len ? lo + j->width : len;
    const float *a = j->a, *b = j->b;
    float *c = j->c;
    size_t m = j->m, n = j->n;
    if (j->split_n) { /* columns lo..hi of op(B): B (k, n) or B^T with B (n, k) */
        b = j->trans_b ? b + lo * j->ldb : b + lo;
        c = c + lo;
        n = hi - lo;
    } else { /* rows lo..hi of op(A): A (m, k) or A^T with A (k, m) */
        a = j->trans_a ? a + lo : a + lo * j->lda;
        c = c + lo * j->ldc;
        m = hi - lo;
    }
    cblas_sgemm(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans,
                j->trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)j->k,
                j->alpha, a, (blasint)j->lda, b, (blasint)j->ldb, j->beta, c, (blasint)j->ldc);
}

int daecl__cpu_gemm(daecl_pool *pool, daecl_cpu_gemm_ws *ws, daecl_cpu_gemm_kind kind, int trans_a,
                    int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                    size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0)
        return 0;
    /* beta == 0 must ignore C's old contents, NaN included: OpenBLAS's
     * gemm_beta kernels store zeros for beta == 0 rather than scale by it
     * (tests/test_cpu_gemm.c checks it on the machine that runs the
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
        return 0;
    }
    if (kind != DAECL_CPU_GEMM_OPENBLAS)
        return daecl__cpu_gemm_own(pool, ws, kind, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                   beta, c, ldc);
    /* Cutting columns repacks A (m, k) per block, cutting rows repacks B
     * (k, n): cut the side that makes the repacked operand the smaller. */
    int split_n = n >= m;
    size_t len = split_n ? n : m;
    gemm_job j = {.trans_a = trans_a, .trans_b = trans_b, .split_n = split_n, .m = m, .n = n,
                  .k = k, .width = gemm_width(m, n, k, len), .alpha = alpha, .beta = beta,
                  .a = a, .b = b, .c = c, .lda = lda, .ldb = ldb, .ldc = ldc};
    daecl_pool_run(pool, (len + j.width - 1) / j.width, gemm_chunk, &j);
    return 0;
}

/* ---- activations -------------------------------------------------------------- */

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
 * forward pass outside the GEMMs, and AVX2 and AVX-512 widen its vectors. */
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

/* An op over rows: chunks of `rows` rows each (the last may be short). */
typedef struct rows_job {
    float *z;
    const float *bias;
    size_t bias_step, n_rows, dim, rows;
    daecl_act act;
} rows_job;

size_t daecl__cpu_rows_per_chunk(size_t n_rows, size_t per_row)
{
    if (n_rows < 2 || per_row == 0 || n_rows * per_row < PAR_MIN)
        return n_rows ? n_rows : 1;
    size_t rows = per_row >= ELEM_CHUNK ? 1 : ELEM_CHUNK / per_row;
    return rows < n_rows ? rows : n_rows;
}

static void bias_act_chunk(void *arg, size_t chunk)
{
    const rows_job *j = arg;
    size_t r0 = chunk * j->rows, n = j->n_rows - r0 < j->rows ? j->n_rows - r0 : j->rows;
    bias_act_rows(j->z + r0 * j->dim, j->bias, j->bias_step, n, j->dim, j->act);
}

void daecl__cpu_bias_act_forward(daecl_pool *pool, float *z, const float *bias, size_t n_rows,
                                 size_t dim, daecl_act act)
{
    /* z is (n_rows, dim), bias is (dim): one pass, chunks of rows. */
    static const float zero = 0.0f;
    if (n_rows == 0 || dim == 0)
        return;
    rows_job j = {.z = z, .bias = bias ? bias : &zero, .bias_step = bias ? 1 : 0,
                  .n_rows = n_rows, .dim = dim, .rows = daecl__cpu_rows_per_chunk(n_rows, dim),
                  .act = act};
    daecl_pool_run(pool, (n_rows + j.rows - 1) / j.rows, bias_act_chunk, &j);
}

/* An op over elements [0, n): chunks of `per` elements. */
typedef struct elems_job {
    size_t n, per;
    float *dh;
    const float *h;
    daecl_act act;
} elems_job;

static void act_backward_chunk(void *arg, size_t chunk)
{
    /* dh and h are (n). The derivative is written from h = act(z), the
     * forward output, so the pre-activation need not be kept:
     *   sigmoid' = h (1 - h),  tanh' = 1 - h^2,  relu' = [h > 0],  linear' = 1. */
    const elems_job *j = arg;
    size_t lo = chunk * j->per, hi = j->n - lo < j->per ? j->n : lo + j->per;
    float *dh = j->dh;
    const float *h = j->h;
    switch (j->act) {
    case DAECL_ACT_LINEAR:
        break;
    case DAECL_ACT_SIGMOID:
        for (size_t i = lo; i < hi; i++)
            dh[i] = dh[i] * (h[i] * (1.0f - h[i]));
        break;
    case DAECL_ACT_TANH:
        for (size_t i = lo; i < hi; i++)
            dh[i] = dh[i] * (1.0f - h[i] * h[i]);
        break;
    case DAECL_ACT_RELU:
        for (size_t i = lo; i < hi; i++)
            dh[i] = h[i] > 0.0f ? dh[i] : 0.0f;
        break;
    }
}

void daecl__cpu_act_backward(daecl_pool *pool, float *dh, const float *h, size_t n, daecl_act act)
{
    if (n == 0 || act == DAECL_ACT_LINEAR)
        return;
    size_t chunks = chunks_of(n, ELEM_CHUNK, PAR_MIN);
    elems_job j = {.n = n, .per = chunks == 1 ? n : ELEM_CHUNK, .dh = dh, .h = h, .act = act};
    daecl_pool_run(pool, chunks, act_backward_chunk, &j);
}

/* ---- reductions and gather ------------------------------------------------------ */

/* Columns summed per pass of col_sum: 256 doubles (2 KiB) of accumulators on
 * the stack, so rows are read contiguously 1 KiB at a time without a heap
 * scratch buffer. */
enum { COL_BLOCK = 256 };

typedef struct col_sum_job {
    const float *src;
    size_t n_rows, dim, per;
    float beta;
    float *dst;
} col_sum_job;

/* dst[j0, j1) from columns j0..j1 of src, each summed in row order. */
static void col_sum_cols(const col_sum_job *c, size_t j0, size_t j1)
{
    for (; j0 < j1; j0 += COL_BLOCK) {
        double acc[COL_BLOCK];
        size_t w = j1 - j0 < COL_BLOCK ? j1 - j0 : COL_BLOCK;
        for (size_t j = 0; j < w; j++)
            acc[j] = 0.0;
        for (size_t r = 0; r < c->n_rows; r++) {
            const float *row = c->src + r * c->dim + j0;
            for (size_t j = 0; j < w; j++)
                acc[j] += (double)row[j];
        }
        float *d = c->dst + j0;
        for (size_t j = 0; j < w; j++)
            d[j] = c->beta == 0.0f ? (float)acc[j]
                                   : (float)((double)c->beta * (double)d[j] + acc[j]);
    }
}

static void col_sum_chunk(void *arg, size_t chunk)
{
    const col_sum_job *c = arg;
    size_t j0 = chunk * c->per;
    col_sum_cols(c, j0, c->dim - j0 < c->per ? c->dim : j0 + c->per);
}

void daecl__cpu_col_sum(daecl_pool *pool, const float *src, size_t n_rows, size_t dim, float beta,
                        float *dst)
{
    /* src is (n_rows, dim), dst is (dim). Each column is summed in row
     * order, in double, whatever the chunk or block width: the result does
     * not depend on how columns are cut. */
    if (dim == 0)
        return;
    size_t chunks = n_rows * dim < PAR_MIN ? 1 : chunks_of(dim, COL_CHUNK, 0);
    col_sum_job c = {.src = src, .n_rows = n_rows, .dim = dim,
                     .per = chunks == 1 ? dim : COL_CHUNK, .beta = beta, .dst = dst};
    daecl_pool_run(pool, chunks, col_sum_chunk, &c);
}

float daecl__cpu_sum(const float *src, size_t n)
{
    double acc = 0.0;
    for (size_t i = 0; i < n; i++)
        acc += (double)src[i];
    return (float)acc;
}

typedef struct gather_job {
    const float *data;
    const uint32_t *idx;
    size_t n_rows, dim, rows;
    float *out;
} gather_job;

static void gather_chunk(void *arg, size_t chunk)
{
    const gather_job *g = arg;
    size_t r0 = chunk * g->rows, r1 = g->n_rows - r0 < g->rows ? g->n_rows : r0 + g->rows;
    for (size_t r = r0; r < r1; r++)
        memcpy(g->out + r * g->dim, g->data + (size_t)g->idx[r] * g->dim, g->dim * sizeof *g->out);
}

size_t daecl__cpu_gather(daecl_pool *pool, const float *data, size_t n_data_rows, size_t dim,
                         const uint32_t *idx, size_t n_rows, float *out)
{
    /* data is (n_data_rows, dim), idx is (n_rows), out is (n_rows, dim).
     * Indices are checked before anything is copied: one pass over n_rows
     * integers, nothing next to the n_rows * dim floats copied. */
    for (size_t r = 0; r < n_rows; r++)
        if (idx[r] >= n_data_rows)
            return r;
    if (n_rows == 0 || dim == 0)
        return n_rows;
    gather_job g = {.data = data, .idx = idx, .n_rows = n_rows, .dim = dim,
                    .rows = daecl__cpu_rows_per_chunk(n_rows, dim), .out = out};
    daecl_pool_run(pool, (n_rows + g.rows - 1) / g.rows, gather_chunk, &g);
    return n_rows;
}

/* ---- optimisers ------------------------------------------------------------------- */

typedef struct optim_job {
    const daecl_optim_step *s;
    float *w, *s1, *s2;
    const float *g;
    size_t n, per;
} optim_job;

/* torch.optim.SGD with dampening 0:
 *   g' = g + wd w;  v = mu v + g';  d = nesterov ? g' + mu v : v;  w -= lr d.
 * The velocity starts at zero, so the first step's v is g' as in PyTorch. */
static void sgd_update(const daecl_optim_step *s, float *w, const float *g, float *v, size_t n)
{
    const float lr = s->lr, mu = s->momentum, wd = s->weight_decay;
    const int nesterov = s->nesterov != 0;
    if (mu == 0.0f && wd == 0.0f) { /* plain SGD: the common case, one streaming pass */
        for (size_t i = 0; i < n; i++)
            w[i] = w[i] - lr * g[i];
        return;
    }
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

static void optim_chunk(void *arg, size_t chunk)
{
    const optim_job *o = arg;
    size_t lo = chunk * o->per, n = o->n - lo < o->per ? o->n - lo : o->per;
    if (o->s->kind == DAECL_OPTIM_SGD)
        sgd_update(o->s, o->w + lo, o->g + lo, o->s1 ? o->s1 + lo : NULL, n);
    else
        adam_update(o->s, o->w + lo, o->g + lo, o->s1 + lo, o->s2 + lo, n);
}

void daecl__cpu_optim_update(daecl_pool *pool, const daecl_optim_step *step, float *w,
                             const float *g, float *s1, float *s2, size_t n)
{
    if (n == 0)
        return;
    size_t chunks = chunks_of(n, ELEM_CHUNK, PAR_MIN);
    optim_job o = {.s = step, .w = w, .s1 = s1, .s2 = s2, .g = g, .n = n,
                   .per = chunks == 1 ? n : ELEM_CHUNK};
    daecl_pool_run(pool, chunks, optim_chunk, &o);
}

/* ---- classification ------------------------------------------------------------------ */

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
