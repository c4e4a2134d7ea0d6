/* daecl — the backend conformance suite (see conformance.h). Each case runs
 * an op on the backend under test and on the cpu reference with the same
 * inputs and compares the outputs within stated tolerances. A failed check
 * unwinds to the case runner (longjmp, as CMocka does for tests), which
 * frees what the case allocated and reports the one sentence. */
#include "core/conformance.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/error.h"
#include "daecl/elementwise.h"

typedef daecl_conformance_side side;

/* Something a case holds: freed after the case, pass or fail. */
typedef struct held {
    enum { HOST, BUFFER, BOUND } kind;
    const side *s;
    void *p;
} held;

typedef struct conf {
    side dut, ref;
    const daecl_conformance_opts *opts;
    jmp_buf unwind;
    char sentence[DAECL_ERR_MSG_MAX];
    daecl_err err;
    held *held;
    size_t n_held, cap_held;
} conf;

/* ---- verdicts ---------------------------------------------------------------------------- */

/* Ends the case with a verdict; c->sentence already says why. */
static _Noreturn void stop(conf *c, int verdict)
{
    longjmp(c->unwind, 1 + verdict);
}

static _Noreturn void fail(conf *c, const char *fmt, ...) DAECL_PRINTF(2, 3);
static _Noreturn void fail(conf *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->sentence, sizeof c->sentence, fmt, ap);
    va_end(ap);
    stop(c, DAECL_CONFORMANCE_FAIL);
}

static _Noreturn void skip(conf *c, const char *fmt, ...) DAECL_PRINTF(2, 3);
static _Noreturn void skip(conf *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->sentence, sizeof c->sentence, fmt, ap);
    va_end(ap);
    stop(c, DAECL_CONFORMANCE_SKIP);
}

/* The sentence of a case that passes. */
static void pass(conf *c, const char *fmt, ...) DAECL_PRINTF(2, 3);
static void pass(conf *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->sentence, sizeof c->sentence, fmt, ap);
    va_end(ap);
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail(c, __VA_ARGS__);                                                                  \
    } while (0)

static void ok(conf *c, int rc, const char *op, const side *s)
{
    if (rc)
        fail(c, "%s on %s failed (%s): %s", op, s->name, daecl_status_name(rc),
             c->err.msg[0] ? c->err.msg : "(no message)");
}

#define CALL(s, op, ...) ok(c, (s)->ops->op((s)->ctx, __VA_ARGS__, &c->err), #op, (s))

/* Runs op on the reference, then on the backend under test; inside the
 * arguments SL(pair, off) is the pair's buffer on the side being run. */
#define BOTH(op, ...)                                                                              \
    do {                                                                                           \
        for (int side_ = 0; side_ < 2; side_++) {                                                  \
            const side *b_ = side_ ? &c->dut : &c->ref;                                            \
            ok(c, b_->ops->op(b_->ctx, __VA_ARGS__, &c->err), #op, b_);                            \
        }                                                                                          \
    } while (0)
#define SL(p, off) ((daecl_slice){side_ ? (p).d : (p).r, (off)})
#define SIDE_BOUND(bp) (side_ ? (bp).d : (bp).r)

/* How many inputs of a table to use: all of them, or its first n_small. */
#define CASES(table, n_small)                                                                      \
    (c->opts->small ? (size_t)(n_small) : sizeof(table) / sizeof((table)[0]))

static const daecl_slice NONE = {NULL, 0};

static daecl_slice S(daecl_buf *b, size_t off)
{
    return (daecl_slice){b, off};
}

/* ---- what a case holds ------------------------------------------------------------------- */

static void release(const held *h)
{
    if (h->kind == HOST)
        free(h->p);
    else if (h->kind == BUFFER)
        h->s->ops->free(h->s->ctx, h->p);
    else if (h->s->ops->unbind)
        h->s->ops->unbind(h->s->ctx, h->p);
}

static void hold(conf *c, int kind, const side *s, void *p)
{
    held h = {kind, s, p};
    if (c->n_held == c->cap_held) {
        size_t cap = c->cap_held ? 2 * c->cap_held : 64;
        held *grown = realloc(c->held, cap * sizeof *grown);
        if (!grown) {
            release(&h);
            fail(c, "out of memory running the conformance suite");
        }
        c->held = grown;
        c->cap_held = cap;
    }
    c->held[c->n_held++] = h;
}

/* Frees what was held since `mark`, newest first. */
static void release_to(conf *c, size_t mark)
{
    while (c->n_held > mark)
        release(&c->held[--c->n_held]);
}

static float *floats(conf *c, size_t n)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    if (!x)
        fail(c, "out of memory running the conformance suite");
    hold(c, HOST, NULL, x);
    return x;
}

/* x[0..n) uniform in [lo, hi), reproducible from seed (splitmix64). */
static float *random_floats(conf *c, size_t n, uint64_t seed, float lo, float hi)
{
    float *x = floats(c, n);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = lo + (hi - lo) * (float)((double)(z >> 40) / (double)(1ull << 24));
    }
    return x;
}

static daecl_buf *buffer(conf *c, const side *s, size_t n_bytes)
{
    daecl_buf *b = NULL;
    CALL(s, alloc, n_bytes, "conformance buffer", &b);
    hold(c, BUFFER, s, b);
    return b;
}

/* n floats (x, or zeros) in a new buffer on s. */
static daecl_buf *upload(conf *c, const side *s, const void *x, size_t n)
{
    daecl_buf *b = buffer(c, s, n * sizeof(float));
    if (x)
        CALL(s, write, b, 0, x, n * sizeof(float));
    return b;
}

static float *download(conf *c, const side *s, daecl_buf *b, size_t n)
{
    float *x = floats(c, n);
    ok(c, s->ops->finish(s->ctx, &c->err), "finish", s);
    CALL(s, read, b, 0, x, n * sizeof(float));
    return x;
}

/* The same n elements on both backends. */
typedef struct pair {
    daecl_buf *r, *d;
    size_t n;
} pair;

static pair pair_of(conf *c, const void *x, size_t n)
{
    pair p = {upload(c, &c->ref, x, n), upload(c, &c->dut, x, n), n};
    return p;
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* |d - r| <= tol * max(floor, |r|), NaN only against NaN, inf only exactly. */
static int close_to(float d, float r, double tol, double floor)
{
    if (isnan(r) || isnan(d))
        return isnan(r) && isnan(d);
    if (isinf(r) || isinf(d))
        return d == r;
    return fabs((double)d - (double)r) <= tol * fmax(floor, fabs((double)r));
}

static void expect_close(conf *c, pair *p, double tol, double floor, const char *what)
{
    size_t mark = c->n_held;
    float *r = download(c, &c->ref, p->r, p->n), *d = download(c, &c->dut, p->d, p->n);
    for (size_t i = 0; i < p->n; i++)
        CHECK(close_to(d[i], r[i], tol, floor),
              "%s: element %zu of %zu is %.9g on %s but %.9g on the cpu reference (tolerance "
              "%g relative)", what, i, p->n, (double)d[i], c->dut.name, (double)r[i], tol);
    release_to(c, mark);
}

/* ---- memory ------------------------------------------------------------------------------ */

static void case_memory(conf *c)
{
    daecl_buf *b = buffer(c, &c->dut, 1001 * sizeof(float));
    daecl_buf *empty = buffer(c, &c->dut, 0);
    float *x = download(c, &c->dut, b, 1001);
    for (int i = 0; i < 1001; i++)
        CHECK(x[i] == 0.0f, "alloc: element %d of a new buffer is %g, not 0", i, (double)x[i]);
    float seven[7] = {1, -2, 3.5f, NAN, INFINITY, -0.0f, 1e-38f};
    CALL(&c->dut, write, b, 12, seven, sizeof seven);
    CALL(&c->dut, read, b, 0, x, 1001 * sizeof(float));
    for (int i = 0; i < 1001; i++)
        CHECK(same_bits(x[i], i >= 3 && i < 10 ? seven[i - 3] : 0.0f),
              "write at byte 12 then read: element %d is %g", i, (double)x[i]);
    float back[3];
    CALL(&c->dut, read, b, 16, back, sizeof back);
    CHECK(back[0] == -2 && back[1] == 3.5f && isnan(back[2]),
          "read at byte 16 gives %g %g %g, not -2 3.5 nan", (double)back[0], (double)back[1],
          (double)back[2]);
    CALL(&c->dut, read, empty, 0, back, 0);
    CALL(&c->dut, write, empty, 0, back, 0);
    c->dut.ops->free(c->dut.ctx, NULL);
    pass(c, "alloc zero-fills; write and read honour byte offsets, keep NaN, inf and -0 bit for "
            "bit; empty buffers and free(NULL) work");
}

static void case_fill(conf *c)
{
    if (!c->dut.ops->fill)
        skip(c, "%s has no fill: the core writes the values with write() instead", c->dut.name);
    float *x = random_floats(c, 1013, 1, -1, 1);
    pair a = pair_of(c, x, 1013);
    BOTH(fill, SL(a, 5), 100, 2.5f);
    BOTH(fill, SL(a, 1012), 1, -7.0f);
    BOTH(fill, SL(a, 0), 0, 1.0f);
    expect_close(c, &a, 0, 1, "fill");
    pass(c, "fill honours element offsets and counts (0 included)");
}

static void case_copy(conf *c)
{
    float *x = random_floats(c, 1013, 2, -1, 1);
    pair a = pair_of(c, x, 1013), b = pair_of(c, NULL, 1013);
    BOTH(copy, SL(b, 11), SL(a, 3), 999);
    BOTH(copy, SL(a, 0), SL(a, 1000), 13);
    expect_close(c, &a, 0, 1, "copy within a buffer");
    expect_close(c, &b, 0, 1, "copy between buffers");
    pass(c, "copy honours element offsets, within a buffer and between two");
}

/* Expects DAECL_EINVAL from the backend under test, with the op named. */
#define REFUSED(op, ...)                                                                           \
    do {                                                                                           \
        memset(&c->err, 0, sizeof c->err);                                                         \
        int rc_ = c->dut.ops->op(c->dut.ctx, __VA_ARGS__, &c->err);                                \
        CHECK(rc_ == DAECL_EINVAL, "%s of an out-of-range slice returned %s, not DAECL_EINVAL",   \
              #op, daecl_status_name(rc_));                                                        \
        CHECK(strstr(c->err.msg, #op) != NULL, "the refusal of %s does not name it: %s", #op,      \
              c->err.msg);                                                                         \
    } while (0)

static void case_refusals(conf *c)
{
    daecl_buf *b = upload(c, &c->dut, NULL, 100), *d = upload(c, &c->dut, NULL, 100);
    float host[4] = {0};
    memset(&c->err, 0, sizeof c->err);
    CHECK(c->dut.ops->write(c->dut.ctx, b, 399, host, 4, &c->err) == DAECL_EINVAL,
          "write past a buffer's end is not refused with DAECL_EINVAL");
    CHECK(c->dut.ops->read(c->dut.ctx, b, 400, host, 1, &c->err) == DAECL_EINVAL,
          "read past a buffer's end is not refused with DAECL_EINVAL");
    if (c->dut.ops->fill)
        REFUSED(fill, S(b, 90), 11, 1.0f);
    REFUSED(copy, S(b, 0), S(b, 10), 20);
    REFUSED(copy, S(b, 0), S(d, 99), 2);
    REFUSED(gemm, 0, 0, 10, 10, 10, 1.0f, S(b, 0), 10, S(d, 0), 9, 0.0f, S(b, 0), 10);
    REFUSED(gemm, 0, 0, 10, 10, 11, 1.0f, S(b, 0), 11, S(d, 0), 10, 0.0f, S(d, 0), 10);
    REFUSED(bias_act, S(b, 1), NONE, 10, 10, DAECL_ACT_RELU);
    REFUSED(bias_act, S(b, 0), S(d, 95), 10, 10, DAECL_ACT_RELU);
    REFUSED(bias_act, S(b, 0), NONE, 1, 1, (daecl_act)9);
    REFUSED(act_grad, S(b, 0), S(d, 1), 100, DAECL_ACT_TANH);
    REFUSED(col_sum, S(b, 0), 11, 10, 0.0f, S(d, 0));
    REFUSED(sum, S(b, 0), 101, S(d, 0));
    REFUSED(sum, S(b, 0), 10, S(d, 100));
    REFUSED(gather, S(b, 0), 10, S(d, 95), 6, S(b, 0));
    daecl_optim_step adam = {.kind = DAECL_OPTIM_ADAM, .lr = 0.1f, .bias_corr1 = 1,
                             .bias_corr2 = 1};
    REFUSED(optim_update, &adam, S(b, 0), S(d, 0), S(b, 0), NONE, 10);
    pass(c, "slices past a buffer's end, overlapping copies, unknown activations and missing "
            "optimiser state are refused with DAECL_EINVAL, naming the op");
}

/* ---- GEMM -------------------------------------------------------------------------------- */

/* One GEMM on both sides with offsets and padded leading dimensions, C
 * starting random (NaN when nan_c); each C element within float32
 * accumulation bounds of the reference, and nothing outside C moved. */
static void gemm_case(conf *c, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                      float beta, int nan_c, uint64_t seed)
{
    size_t mark = c->n_held;
    const size_t a_off = 3, b_off = 5, c_off = 7, pad = 3;
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
    size_t na = a_off + a_rows * lda, nb = b_off + b_rows * ldb, nc = c_off + m * ldc;
    float *ha = random_floats(c, na, seed, -1, 1), *hb = random_floats(c, nb, seed + 1, -1, 1);
    float *hc = random_floats(c, nc, seed + 2, -1, 1);
    if (nan_c)
        for (size_t i = 0; i < nc; i++)
            hc[i] = NAN;
    pair a = pair_of(c, ha, na), b = pair_of(c, hb, nb), cc = pair_of(c, hc, nc);
    BOTH(gemm, ta, tb, m, n, k, alpha, SL(a, a_off), lda, SL(b, b_off), ldb, beta,
         SL(cc, c_off), ldc);
    float *r = download(c, &c->ref, cc.r, nc), *d = download(c, &c->dut, cc.d, nc);
    for (size_t q = 0; q < nc; q++) {
        int inside = q >= c_off && (q - c_off) % ldc < n;
        if (!inside) {
            CHECK(same_bits(d[q], hc[q]), "gemm (ta=%d tb=%d %zux%zux%zu) wrote element %zu, "
                  "outside C", ta, tb, m, n, k, q);
            continue;
        }
        size_t i = (q - c_off) / ldc, j = (q - c_off) % ldc;
        double bound = beta != 0.0f ? fabs((double)beta * hc[q]) : 0.0;
        for (size_t p = 0; p < k; p++) {
            double av = ta ? ha[a_off + p * lda + i] : ha[a_off + i * lda + p];
            double bv = tb ? hb[b_off + j * ldb + p] : hb[b_off + p * ldb + j];
            bound += fabs((double)alpha * av * bv);
        }
        CHECK(isfinite(d[q]) && fabs((double)d[q] - (double)r[q]) <= 1e-5 * bound + 1e-6,
              "gemm (ta=%d tb=%d %zux%zux%zu alpha %g beta %g%s): C[%zu][%zu] is %.9g on %s but "
              "%.9g on the cpu reference (tolerance %.3g)", ta, tb, m, n, k, (double)alpha,
              (double)beta, nan_c ? " over NaN" : "", i, j, (double)d[q], c->dut.name,
              (double)r[q], 1e-5 * bound + 1e-6);
    }
    release_to(c, mark);
}

static void case_gemm(conf *c)
{
    static const size_t shapes[][3] = {
        {1, 1, 1}, {7, 13, 5}, {33, 34, 17}, {65, 63, 17}, {33, 130, 1001}, {128, 100, 784}};
    uint64_t seed = 100;
    size_t n = CASES(shapes, 3);
    for (size_t s = 0; s < n; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                gemm_case(c, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.75f, 0.5f, 0,
                          seed += 3);
    pass(c, "%zu shapes up to %zux%zux%zu in every transpose, with offsets and padded leading "
            "dimensions, within 1e-5 of the accumulated magnitude", n, shapes[n - 1][0],
         shapes[n - 1][1], shapes[n - 1][2]);
}

static void case_gemm_beta0(conf *c)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(c, ta, tb, 7, 13, 5, 1.0f, 0.0f, 1, 7);
            if (!c->opts->small)
                gemm_case(c, ta, tb, 128, 200, 96, -1.5f, 0.0f, 1, 9);
        }
    pass(c, "beta = 0 ignores C's old contents, NaN included");
}

static void case_gemm_k0(conf *c)
{
    gemm_case(c, 0, 0, 5, 6, 0, 1.0f, 0.5f, 0, 11);
    gemm_case(c, 1, 1, 5, 6, 0, 1.0f, 0.0f, 1, 12);
    daecl_buf *b = upload(c, &c->dut, NULL, 8);
    CALL(&c->dut, gemm, 0, 0, 0, 3, 2, 1.0f, S(b, 0), 2, S(b, 0), 3, 0.0f, S(b, 0), 3);
    pass(c, "k = 0 scales C by beta (zeroes it for beta 0); an empty C is not refused");
}

/* ---- elementwise and reductions ---------------------------------------------------------- */

static void case_bias_act(conf *c)
{
    /* Widths around a device's runs of 8 (kernels/ops.cl): tails, one whole
     * run, a run and one; 3 guard elements after z show a write past it. */
    static const size_t shapes[][2] = {{1, 1},  {7, 13}, {128, 7}, {33, 1001},
                                       {3, 8}, {2, 17}, {5, 16}};
    for (int act = 0; act <= 3; act++)
        for (size_t s = 0; s < CASES(shapes, 2); s++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                size_t mark = c->n_held;
                size_t rows = shapes[s][0], dim = shapes[s][1], n = 2 + rows * dim + 3;
                float *z = random_floats(c, n, 40 + s, -8, 8);
                float *bias = random_floats(c, dim + 1, 50, -2, 2);
                pair pz = pair_of(c, z, n), pb = pair_of(c, bias, dim + 1);
                BOTH(bias_act, SL(pz, 2), with_bias ? SL(pb, 1) : NONE, rows, dim,
                     (daecl_act)act);
                expect_close(c, &pz, 1e-5, 1, "bias_act");
                release_to(c, mark);
            }
    pass(c, "every activation, with and without bias, odd widths among them, within 1e-5");
}

static void case_act_extremes(conf *c)
{
    float z[] = {-1000, -100, -88.5f, -20, -0.0f, 0, 20, 88.5f, 100, 1000, NAN};
    size_t n = sizeof z / sizeof z[0];
    for (int act = 1; act <= 3; act++) {
        size_t mark = c->n_held;
        pair p = pair_of(c, z, n);
        BOTH(bias_act, SL(p, 0), NONE, 1, n, (daecl_act)act);
        expect_close(c, &p, 1e-6, 1e-30, "bias_act at extremes");
        float *d = download(c, &c->dut, p.d, n);
        for (size_t i = 0; i + 1 < n; i++)
            CHECK(!isnan(d[i]), "activation %d of %g is NaN", act, (double)z[i]);
        CHECK(isnan(d[n - 1]), "activation %d of NaN is %g: NaN in must give NaN out", act,
              (double)d[n - 1]);
        if (act == DAECL_ACT_SIGMOID)
            CHECK(d[0] == 0.0f && d[9] == 1.0f && d[3] > 0.0f,
                  "sigmoid of -1000, 1000, -20 is %g, %g, %g", (double)d[0], (double)d[9],
                  (double)d[3]);
        release_to(c, mark);
    }
    pass(c, "sigmoid, tanh and relu stay finite at +-1000 and pass NaN through");
}

static void case_act_grad(conf *c)
{
    static const size_t sizes[] = {1, 7, 1001, 8, 16, 17};
    for (int act = 0; act <= 3; act++)
        for (size_t s = 0; s < CASES(sizes, 3); s++) {
            size_t mark = c->n_held;
            size_t n = sizes[s] + 4 + 3; /* 3 guard elements after dh's slice */
            float *h = random_floats(c, n, 60 + s, act == DAECL_ACT_TANH ? -1.0f : 0.0f, 1.0f);
            float *dh = random_floats(c, n, 70 + s, -3, 3);
            if (act == DAECL_ACT_RELU)
                for (size_t i = 0; i < n; i += 3)
                    h[i] = 0.0f;
            pair ph = pair_of(c, h, n), pd = pair_of(c, dh, n);
            BOTH(act_grad, SL(pd, 4), SL(ph, 1), sizes[s], (daecl_act)act);
            expect_close(c, &pd, 1e-6, 1, "act_grad");
            release_to(c, mark);
        }
    pass(c, "every activation's derivative from its output, within 1e-6");
}

static void case_col_sum(conf *c)
{
    static const size_t shapes[][2] = {{1, 1}, {7, 13}, {0, 5},  {1000, 7},
                                       {1001, 300}, {9, 8}, {5, 17}};
    for (size_t s = 0; s < CASES(shapes, 4); s++)
        for (int with_beta = 0; with_beta < 2; with_beta++) {
            size_t mark = c->n_held;
            size_t rows = shapes[s][0], dim = shapes[s][1], n = 3 + rows * dim;
            float *x = random_floats(c, n, 80 + s, -1, 1);
            float *y = random_floats(c, dim + 2 + 3, 90, -5, 5); /* 3 guards after */
            pair px = pair_of(c, x, n), py = pair_of(c, y, dim + 2 + 3);
            BOTH(col_sum, SL(px, 3), rows, dim, with_beta ? 0.5f : 0.0f, SL(py, 2));
            expect_close(c, &py, 1e-5, 1, "col_sum");
            release_to(c, mark);
        }
    pass(c, "column sums with beta 0 and 0.5, zero rows included, within 1e-5");
}

/* The fused act_grad + col_sum (ABI 2.1) against the reference's own, or
 * its act_grad followed by col_sum where it has none (the cpu backend). */
static void case_act_grad_col_sum(conf *c)
{
    if (!c->dut.ops->act_grad_col_sum)
        skip(c, "%s does not fuse act_grad and col_sum: the core runs the two", c->dut.name);
    static const size_t shapes[][2] = { { 1, 1 }, { 7, 13 },     { 9, 8 },
                                        { 0, 5 }, { 128, 1000 }, { 5, 17 } };
    for (int act = 0; act <= 3; act++)
        for (size_t s = 0; s < CASES(shapes, 4); s++)
            for (int with_beta = 0; with_beta < 2; with_beta++) {
                size_t mark = c->n_held;
                size_t rows = shapes[s][0], dim = shapes[s][1];
                size_t n = 4 + rows * dim + 3; /* 3 guard elements after dh's slice */
                float beta = with_beta ? 0.5f : 0.0f;
                float *h = random_floats(c, n, 160 + s, act == DAECL_ACT_TANH ? -1.0f : 0.0f, 1.0f);
                float *dh = random_floats(c, n, 170 + s, -3, 3);
                if (act == DAECL_ACT_RELU)
                    for (size_t i = 0; i < n; i += 3)
                        h[i] = 0.0f;
                float *y = random_floats(c, dim + 2 + 3, 180, -5, 5);
                pair ph = pair_of(c, h, n), pd = pair_of(c, dh, n), py = pair_of(c, y, dim + 5);
                const side *r = &c->ref;
                if (r->ops->act_grad_col_sum) {
                    CALL(r, act_grad_col_sum, S(pd.r, 4), S(ph.r, 1), rows, dim, (daecl_act)act,
                         beta, S(py.r, 2));
                } else {
                    CALL(r, act_grad, S(pd.r, 4), S(ph.r, 1), rows * dim, (daecl_act)act);
                    CALL(r, col_sum, S(pd.r, 4), rows, dim, beta, S(py.r, 2));
                }
                CALL(&c->dut, act_grad_col_sum, S(pd.d, 4), S(ph.d, 1), rows, dim, (daecl_act)act,
                     beta, S(py.d, 2));
                expect_close(c, &pd, 1e-6, 1, "act_grad_col_sum dh");
                expect_close(c, &py, 1e-5, 1, "act_grad_col_sum dst");
                release_to(c, mark);
            }
    pass(c, "every activation's derivative within 1e-6 and its column sums with beta 0 and 0.5 "
            "within 1e-5 of act_grad then col_sum, zero rows included");
}

static void case_sum(conf *c)
{
    static const size_t sizes[] = {0, 1, 7, 1000, 1001, 100003};
    for (size_t s = 0; s < CASES(sizes, 5); s++) {
        size_t mark = c->n_held;
        size_t n = sizes[s] + 5;
        float *x = random_floats(c, n, 100 + s, -1, 1.5f);
        pair px = pair_of(c, x, n), out = pair_of(c, NULL, 3);
        BOTH(sum, SL(px, 5), sizes[s], SL(out, 1));
        expect_close(c, &out, 1e-5, 1, "sum");
        release_to(c, mark);
    }
    float special[] = {1, INFINITY, 2}, nan3[] = {1, NAN, 2};
    pair pi = pair_of(c, special, 3), pn = pair_of(c, nan3, 3), out = pair_of(c, NULL, 2);
    BOTH(sum, SL(pi, 0), 3, SL(out, 0));
    BOTH(sum, SL(pn, 0), 3, SL(out, 1));
    float *d = download(c, &c->dut, out.d, 2);
    CHECK(isinf(d[0]) && d[0] > 0 && isnan(d[1]),
          "sums over inf and NaN are %g and %g: non-finite values must stay so", (double)d[0],
          (double)d[1]);
    pass(c, "sums at odd sizes up to 100003 within 1e-5; inf and NaN stay non-finite");
}

static void case_gather(conf *c)
{
    static const size_t shapes[][3] = {{50, 13, 7}, {5, 1, 1}, {300, 784, 128}, {9, 8, 3},
                                       {20, 17, 5}};
    for (size_t s = 0; s < CASES(shapes, 2); s++) {
        size_t mark = c->n_held;
        size_t data_rows = shapes[s][0], dim = shapes[s][1], rows = shapes[s][2];
        size_t nd = 4 + data_rows * dim, no = 3 + rows * dim + 3; /* 3 guards after out */
        float *data = random_floats(c, nd, 110 + s, -1, 1);
        uint32_t *idx = (uint32_t *)floats(c, rows + 2);
        for (size_t r = 0; r < rows; r++)
            idx[2 + r] = (uint32_t)((r * 37 + 11) % data_rows);
        pair pd = pair_of(c, data, nd), pi = pair_of(c, idx, rows + 2), po = pair_of(c, NULL, no);
        BOTH(gather, SL(pd, 4), dim, SL(pi, 2), rows, SL(po, 3));
        expect_close(c, &po, 0, 1, "gather");
        release_to(c, mark);
    }
    pass(c, "gathered rows equal the reference's bit for bit");
}

static void case_softmax_xent(conf *c)
{
    static const size_t shapes[][2] = {{1, 2}, {7, 10}, {1001, 3}, {1000, 10}};
    for (size_t s = 0; s < CASES(shapes, 2); s++) {
        size_t mark = c->n_held;
        size_t rows = shapes[s][0], classes = shapes[s][1], n = 2 + rows * classes;
        float *z = random_floats(c, n, 130 + s, -40, 40);
        float *y = floats(c, rows + 1);
        for (size_t r = 0; r < rows; r++)
            y[1 + r] = (float)((r * 7 + s) % classes);
        pair pz = pair_of(c, z, n), py = pair_of(c, y, rows + 1);
        pair pl = pair_of(c, NULL, rows + 3), pg = pair_of(c, NULL, n + 1);
        BOTH(softmax_xent, SL(pz, 2), SL(py, 1), rows, classes, 0.25f, SL(pl, 3), SL(pg, 1));
        expect_close(c, &pl, 1e-5, 1, "softmax_xent loss");
        expect_close(c, &pg, 1e-5, 1, "softmax_xent grad");
        BOTH(softmax_xent, SL(pz, 2), SL(py, 1), rows, classes, 1.0f, NONE, SL(pg, 1));
        BOTH(softmax_xent, SL(pz, 2), SL(py, 1), rows, classes, 1.0f, SL(pl, 3), NONE);
        expect_close(c, &pl, 1e-5, 1, "softmax_xent loss alone");
        expect_close(c, &pg, 1e-5, 1, "softmax_xent grad alone");
        release_to(c, mark);
    }
    pass(c, "loss and gradient, together and alone, logits in [-40, 40], within 1e-5");
}

/* Step t (1-based) of st: Adam's bias corrections for it. */
static daecl_optim_step optim_step_at(daecl_optim_step st, int t)
{
    int adam = st.kind != DAECL_OPTIM_SGD;
    st.bias_corr1 = adam ? 1.0f - powf(st.beta1, (float)t) : 0.0f;
    st.bias_corr2 = adam ? 1.0f - powf(st.beta2, (float)t) : 0.0f;
    return st;
}

/* The same n fresh gradients on both sides. */
static void both_gradients(conf *c, pair *pg, size_t n, uint64_t seed)
{
    float *g = random_floats(c, n, seed, -2, 2);
    CALL(&c->ref, write, pg->r, 0, g, n * sizeof(float));
    CALL(&c->dut, write, pg->d, 0, g, n * sizeof(float));
}

/* Parameters and both states alike on the two sides, within 1e-5. */
static void expect_optim_state(conf *c, pair *pw, pair *p1, pair *p2, const char *op)
{
    char what[64];
    const char *names[] = {"w", "s1", "s2"};
    pair *ps[] = {pw, p1, p2};
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "%s %s", op, names[i]);
        expect_close(c, ps[i], 1e-5, 1, what);
    }
}

static void case_optim_update(conf *c)
{
    const daecl_optim_step steps[] = {
        {.kind = DAECL_OPTIM_SGD, .lr = 0.1f},
        {.kind = DAECL_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-3f},
        {.kind = DAECL_OPTIM_SGD, .nesterov = 1, .lr = 0.05f, .momentum = 0.9f},
        {.kind = DAECL_OPTIM_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
         .weight_decay = 1e-2f},
        {.kind = DAECL_OPTIM_ADAMW, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
         .weight_decay = 1e-2f},
    };
    /* 1001: runs of 8 and a tail of 1 on a device that takes runs, and one
     * run, and a tail alone; 3 guard elements after w, s1 and s2 show a
     * write past them. */
    static const size_t sizes[] = {1001, 8, 7};
    for (size_t z = 0; z < CASES(sizes, 1); z++)
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            size_t mark = c->n_held, n = sizes[z];
            float *w = random_floats(c, n + 2 + 3, 120 + s + 10 * z, -1, 1);
            pair pw = pair_of(c, w, n + 2 + 3), pg = pair_of(c, NULL, n + 1),
                 p1 = pair_of(c, NULL, n + 3 + 3), p2 = pair_of(c, NULL, n + 3);
            int adam = steps[s].kind != DAECL_OPTIM_SGD, uses1 = adam || steps[s].momentum != 0;
            for (int t = 1; t <= 3; t++) {
                both_gradients(c, &pg, n + 1, 130 + 10 * s + (uint64_t)t);
                daecl_optim_step st = optim_step_at(steps[s], t);
                BOTH(optim_update, &st, SL(pw, 2), SL(pg, 1), uses1 ? SL(p1, 3) : NONE,
                     adam ? SL(p2, 0) : NONE, n);
            }
            expect_optim_state(c, &pw, &p1, &p2, "optim_update");
            release_to(c, mark);
        }
    pass(c, "SGD (plain, momentum with decay, Nesterov), Adam and AdamW over 3 steps, at 1001, "
            "8 and 7 parameters, within 1e-5");
}

/* ---- plugins on the device --------------------------------------------------------------- */

/* Keys of the noise key 2.0 (plugin.h); calls of up to 40 rows stay below
 * position 2^32. */
static const daecl_noise_key keys[] = {
    {.seed = 1},
    {.seed = 0xDEADBEEFCAFEF00Dull, .stream = 2, .stage = 1, .substep = 3, .epoch = 12345,
     .pos0 = (uint32_t)((1ull << 32) - 40)},
    {.seed = 42, .stream = 4, .substep = 0xffff, .epoch = 7, .pos0 = 17},
};

/* Packed defaults, with the gaussian corruption's clip set to [-0.25, 0.6],
 * or block's fill set to noise, when alt is set. */
static size_t pack(const daecl_plugin *p, float *packed, int alt)
{
    daecl_param_value v[DAECL_MAX_PARAMS];
    daecl_plugin_defaults(p, v);
    for (uint32_t i = 0; alt && i < p->n_params; i++)
        if (strcmp(p->params[i].name, "clip") == 0) {
            v[i].num[0] = -0.25;
            v[i].num[1] = 0.6;
        } else if (strcmp(p->params[i].name, "fill") == 0) {
            v[i].str = "noise";
        }
    return daecl_params_pack(p->params, p->n_params, v, packed);
}

/* The built-in plugin `name`; skips the case when the plugin group cannot
 * be checked. */
static const daecl_plugin *builtin(conf *c, daecl_plugin_kind kind, const char *name)
{
    if (!c->dut.ops->bind)
        skip(c, "%s has no bind: every plugin runs on the host, through the core", c->dut.name);
    if (!c->opts->plugins)
        skip(c, "no plugin registry was given to find the built-in plugins in");
    const daecl_plugin *p = daecl_registry_find(c->opts->plugins, kind, name, NULL);
    if (!p)
        skip(c, "the built-in %s plugin '%s' was not found", daecl_plugin_kind_name(kind), name);
    return p;
}

/* Binds p on s; NULL when s runs it on the host (DAECL_ENOTSUP). */
static void *bind_on(conf *c, const side *s, const daecl_plugin *p, const float *packed,
                     size_t n_packed)
{
    void *bound = NULL;
    memset(&c->err, 0, sizeof c->err);
    int rc = s->ops->bind(s->ctx, p, packed, n_packed, &bound, &c->err);
    if (rc == DAECL_ENOTSUP)
        return NULL;
    ok(c, rc, "bind", s);
    hold(c, BOUND, s, bound);
    return bound;
}

static void case_corrupt(conf *c)
{
    /* Element-wise and row-granular plugins; the last two with alt set. */
    static const char *const names[] = {"none",  "masking",    "gaussian", "salt_pepper",
                                        "block", "patch_mask", "gaussian", "block"};
    enum { N_NAMES = sizeof names / sizeof names[0] };
    /* rows, dim and the examples' shape: flat, planes, and images. The two
     * small ones come first: they are all the small run (Oclgrind) takes. */
    static const struct {
        size_t rows, dim;
        daecl_shape shape;
    } shapes[] = {{7, 13, {1, {13, 1, 1, 1}}},
                  {5, 192, {3, {3, 8, 8, 1}}},
                  {33, 1001, {2, {7, 143, 1, 1}}},
                  {40, 784, {2, {28, 28, 1, 1}}},
                  {3, 17, {1, {17, 1, 1, 1}}}, /* a device's run of 16 and a tail of 1 */
                  {6, 5, {1, {5, 1, 1, 1}}}}; /* a row shorter than a run */
    size_t on_device = 0;
    for (int k = 0; k < N_NAMES; k++) {
        size_t mark = c->n_held;
        int alt = k >= 6;
        const daecl_plugin *p = builtin(c, DAECL_KIND_CORRUPTION, names[k]);
        const daecl_corruption_ops *ops = p->ops;
        float packed[DAECL_MAX_PACKED_PARAMS];
        size_t n_packed = pack(p, packed, alt);
        void *bound = bind_on(c, &c->dut, p, packed, n_packed);
        if (!bound)
            continue;
        on_device++;
        for (size_t s = 0; s < CASES(shapes, 2); s++)
            for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++) {
                size_t rows = shapes[s].rows, dim = shapes[s].dim, n = rows * dim;
                const daecl_shape *shape = &shapes[s].shape;
                float *x = random_floats(c, n + 1, 140 + s, -1, 1.5f), *want = floats(c, n);
                daecl_buf *bx = upload(c, &c->dut, x, n + 1), *bt = upload(c, &c->dut, NULL, n + 3);
                CALL(&c->dut, corrupt, bound, S(bx, 1), S(bt, 2), rows, dim, shape, &keys[q]);
                memset(&c->err, 0, sizeof c->err);
                if (ops->host_apply(x + 1, want, rows, dim, shape, &keys[q], packed, &c->err))
                    fail(c, "the %s plugin's host_apply failed: %s", names[k], c->err.msg);
                float *got = download(c, &c->dut, bt, n + 3);
                CHECK(got[0] == 0.0f && got[1] == 0.0f, "corrupt wrote before its output slice");
                CHECK(got[2 + n] == 0.0f, "corrupt wrote past its output slice");
                size_t changed = 0;
                for (size_t i = 0; i < n; i++) {
                    CHECK(same_bits(got[2 + i], want[i]),
                          "%s%s: element %zu (key %zu) is %.9g on %s but %.9g from host_apply",
                          names[k], alt ? " (alt)" : "", i, q, (double)got[2 + i], c->dut.name,
                          (double)want[i]);
                    changed += !same_bits(want[i], x[1 + i]);
                }
                CHECK(strcmp(names[k], "none") == 0 ? changed == 0 : changed > 0,
                      "%s: %zu of %zu inputs changed", names[k], changed, n);
            }
        release_to(c, mark);
    }
    pass(c, "%zu built-in corruptions (element-wise and row-granular; gaussian also clipped, "
            "block also noise-filled) equal host_apply bit for bit on 3 noise keys and "
            "flat (odd widths among them), image and plane shapes; %zu run on the host",
         on_device, (size_t)N_NAMES - on_device);
}

/* The likelihood's inputs: x in the data's range, a the decoder's k*dim
 * values per row, with extremes for the Bernoulli logits and log-variances
 * beyond the clamp for gaussian_learned. */
static void lik_inputs(conf *c, const char *name, unsigned k, size_t rows, size_t dim, float **x,
                       float **a, uint64_t seed)
{
    size_t n = rows * dim, na = n * k;
    if (strcmp(name, "bernoulli") == 0) {
        *x = random_floats(c, n, seed, 0, 1);
        *a = random_floats(c, na, seed + 1, -50, 50);
        for (size_t i = 0; i < n; i += 5)
            (*x)[i] = (float)(i / 5 % 2); /* exact 0 and 1 */
        for (size_t i = 0; i < na; i += 7)
            (*a)[i] = i / 7 % 2 ? 50.0f : -50.0f;
    } else {
        *x = random_floats(c, n, seed, -2, 2);
        *a = random_floats(c, na, seed + 1, -2, 2);
        if (k == 2)
            for (size_t r = 0; r < rows; r++) {
                float *lv = random_floats(c, dim, seed + 2 + r, -14, 14);
                memcpy(*a + r * k * dim + dim, lv, dim * sizeof *lv);
            }
    }
}

/* nll_rows of (rows, dim) against the reference: rows sum dim per-element
 * values, so the tolerance scales with the sum of their magnitudes. */
static void expect_nll(conf *c, const daecl_plugin *p, const float *packed, const float *x,
                       const float *a, size_t rows, size_t dim, const float *rn, const float *dn)
{
    const daecl_likelihood_ops *ops = p->ops;
    unsigned k = ops->params_per_dim;
    for (size_t r = 0; r < rows; r++) {
        double mag = 0;
        for (size_t j = 0; j < dim; j++) {
            float one = 0, ar[4] = {0};
            for (unsigned q = 0; q < k; q++)
                ar[q] = a[r * k * dim + q * dim + j];
            if (ops->host_loss_grad(&x[r * dim + j], ar, 1, 1, packed, 1.0f, &one, NULL,
                                    &c->err))
                fail(c, "the %s plugin's host_loss_grad failed: %s", p->name, c->err.msg);
            mag += fabs(one);
        }
        CHECK(isfinite(dn[r]) && fabs((double)dn[r] - rn[r]) <= 1e-6 * fmax(1.0, mag),
              "%s: nll of row %zu of %zux%zu is %.9g on %s but %.9g on the cpu reference",
              p->name, r, rows, dim, (double)dn[r], c->dut.name, (double)rn[r]);
    }
}

static void lik_samples(conf *c, const daecl_plugin *p, pair *pa, pair *pm, size_t rows,
                        size_t dim, void *bound_r, void *bound_d)
{
    size_t n = rows * dim;
    struct {
        void *r, *d;
    } bound = {bound_r, bound_d};
    pair ps = pair_of(c, NULL, n);
    float *mean = download(c, &c->ref, pm->r, n + 1);
    for (size_t q = 0; q < sizeof keys / sizeof keys[0]; q++) {
        BOTH(lik_sample, SIDE_BOUND(bound), SL(*pa, 1), rows, dim, &keys[q], SL(ps, 0));
        float *rs = download(c, &c->ref, ps.r, n), *ds = download(c, &c->dut, ps.d, n);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(p->name, "bernoulli") == 0) {
                /* A 0/1 draw u < sigmoid(a): where u is within float error
                 * of the probability the two may differ. */
                float u = daecl_u01(daecl_noise_block(&keys[q], i / dim, (uint32_t)(i % dim)).x);
                CHECK(fabsf(u - mean[1 + i]) <= 1e-6f || ds[i] == rs[i],
                      "bernoulli sample %zu is %g on %s, %g on the cpu reference", i,
                      (double)ds[i], c->dut.name, (double)rs[i]);
            } else {
                CHECK(close_to(ds[i], rs[i], 1e-5, 1),
                      "%s sample %zu is %.9g on %s, %.9g on the cpu reference", p->name, i,
                      (double)ds[i], c->dut.name, (double)rs[i]);
            }
        }
    }
}

/* A built-in likelihood bound on both sides, with its packed parameters. */
typedef struct lik_pair {
    const daecl_plugin *p;
    unsigned k; /* params_per_dim */
    float packed[DAECL_MAX_PACKED_PARAMS];
    void *r, *d; /* bound on the reference and on the device under test */
} lik_pair;

/* Binds likelihood `name` on both sides: 0 when the device under test runs
 * it on the host (there is nothing of the device's to compare), else 1. */
static int bind_likelihood(conf *c, const char *name, lik_pair *lp)
{
    lp->p = builtin(c, DAECL_KIND_LIKELIHOOD, name);
    lp->k = ((const daecl_likelihood_ops *)lp->p->ops)->params_per_dim;
    size_t n_packed = pack(lp->p, lp->packed, 0);
    lp->r = NULL;
    if (!(lp->d = bind_on(c, &c->dut, lp->p, lp->packed, n_packed)))
        return 0;
    if (!(lp->r = bind_on(c, &c->ref, lp->p, lp->packed, n_packed)))
        fail(c, "the cpu reference did not bind %s", lp->p->name);
    return 1;
}

static void case_likelihood(conf *c)
{
    static const char *const names[] = {"bernoulli", "gaussian", "gaussian_learned"};
    static const size_t shapes[][2] = {{1, 1}, {7, 13}, {17, 1001}};
    size_t on_device = 0;
    int sampled = c->dut.ops->lik_sample != NULL;
    for (size_t l = 0; l < sizeof names / sizeof names[0]; l++) {
        size_t mark = c->n_held;
        lik_pair bound;
        if (!bind_likelihood(c, names[l], &bound))
            continue;
        on_device++;
        const daecl_plugin *p = bound.p;
        unsigned k = bound.k;
        const float *packed = bound.packed;
        for (size_t s = 0; s < CASES(shapes, 2); s++) {
            size_t rows = shapes[s][0], dim = shapes[s][1], n = rows * dim, na = n * k;
            float *x, *a;
            lik_inputs(c, names[l], k, rows, dim, &x, &a, 150 + s);
            pair px = pair_of(c, x, n), pa = pair_of(c, NULL, na + 1); /* a from element 1 */
            CALL(&c->ref, write, pa.r, sizeof(float), a, na * sizeof(float));
            CALL(&c->dut, write, pa.d, sizeof(float), a, na * sizeof(float));
            for (int want = 1; want <= 3; want++) { /* 1 nll, 2 grad, 3 both */
                size_t inner = c->n_held;
                pair pn = pair_of(c, NULL, rows + 1), pg = pair_of(c, NULL, na + 2);
                float scale = want == 2 ? 1.0f : 1.0f / (float)rows;
                BOTH(lik_loss_grad, SIDE_BOUND(bound), SL(px, 0), SL(pa, 1), rows, dim, scale,
                     want & 1 ? SL(pn, 1) : NONE, want & 2 ? SL(pg, 2) : NONE);
                float *rn = download(c, &c->ref, pn.r, rows + 1);
                float *dn = download(c, &c->dut, pn.d, rows + 1);
                CHECK(dn[0] == 0.0f, "lik_loss_grad wrote before its nll_rows slice");
                if (want & 1)
                    expect_nll(c, p, packed, x, a, rows, dim, rn + 1, dn + 1);
                else
                    for (size_t r = 0; r < rows; r++)
                        CHECK(dn[1 + r] == 0.0f,
                              "lik_loss_grad wrote nll_rows it was not asked for");
                expect_close(c, &pg, want & 2 ? 1e-6 : 0, 1,
                             want & 2 ? "lik_loss_grad grad" : "a grad not asked for");
                release_to(c, inner);
            }
            pair pm = pair_of(c, NULL, n + 1);
            BOTH(lik_mean, SIDE_BOUND(bound), SL(pa, 1), rows, dim, SL(pm, 1));
            expect_close(c, &pm, 1e-6, 1, "lik_mean");
            if (sampled)
                lik_samples(c, p, &pa, &pm, rows, dim, bound.r, bound.d);
        }
        release_to(c, mark);
    }
    pass(c, "%zu built-in likelihoods: nll_rows, grad (alone and together) and mean within "
            "1e-6%s; %zu run on the host", on_device,
         sampled ? ", samples on 3 noise keys" : " (no lik_sample: the core samples on the host)",
         sizeof names / sizeof names[0] - on_device);
}

/* The fused loss (ABI 2.1: lik_loss_grad_sums) of each built-in
 * likelihood against the reference's lik_loss_grad, col_sum of its
 * gradient and its nll rows: grad within 1e-6, the column sums within
 * 1e-5, and the sum of nll_sums against the first sum_rows rows' nll. */
static void case_likelihood_sums(conf *c)
{
    if (!c->dut.ops->lik_loss_grad_sums)
        skip(c, "%s does not fuse the loss with its sums: the core runs lik_loss_grad, col_sum "
                "and sum", c->dut.name);
    static const char *const names[] = {"bernoulli", "gaussian", "gaussian_learned"};
    static const size_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {17, 1001, 17}, {9, 40, 0}};
    size_t on_device = 0;
    for (size_t l = 0; l < sizeof names / sizeof names[0]; l++) {
        size_t mark = c->n_held;
        lik_pair bound;
        if (!bind_likelihood(c, names[l], &bound))
            continue;
        on_device++;
        unsigned k = bound.k;
        void *br = bound.r, *bd = bound.d;
        for (size_t s = 0; s < CASES(shapes, 2); s++) {
            size_t inner = c->n_held;
            size_t rows = shapes[s][0], dim = shapes[s][1], sum_rows = shapes[s][2];
            size_t n = rows * dim, na = n * k;
            float scale = 1.0f / (float)rows;
            float *x, *a;
            lik_inputs(c, names[l], k, rows, dim, &x, &a, 190 + s);
            pair px = pair_of(c, x, n), pa = pair_of(c, a, na), pg = pair_of(c, NULL, na + 2);
            pair ps = pair_of(c, NULL, k * dim + 3), pn = pair_of(c, NULL, rows + 1);
            pair pt = pair_of(c, NULL, 2), pd = pair_of(c, NULL, dim + 1);
            const side *r = &c->ref, *d = &c->dut;
            CALL(r, lik_loss_grad, br, S(px.r, 0), S(pa.r, 0), rows, dim, scale, S(pn.r, 1),
                 S(pg.r, 2));
            CALL(r, col_sum, S(pg.r, 2), rows, k * dim, 0.0f, S(ps.r, 1));
            CALL(r, sum, S(pn.r, 1), sum_rows, S(pt.r, 0));
            CALL(d, lik_loss_grad_sums, bd, S(px.d, 0), S(pa.d, 0), rows, sum_rows, dim, scale,
                 S(pg.d, 2), S(ps.d, 1), S(pd.d, 1));
            CALL(d, sum, S(pd.d, 1), dim, S(pt.d, 0));
            expect_close(c, &pg, 1e-6, 1, "lik_loss_grad_sums grad");
            expect_close(c, &ps, 1e-5, 1, "lik_loss_grad_sums grad_sums");
            expect_close(c, &pt, 1e-5, 1, "lik_loss_grad_sums: the sum of nll_sums");
            release_to(c, inner);
        }
        release_to(c, mark);
    }
    pass(c, "%zu built-in likelihoods: grad within 1e-6, its column sums and the loss of the "
            "first rows within 1e-5 of lik_loss_grad, col_sum and sum", on_device);
}

/* optim_update_split (ABI 2.1) against two optim_update calls on the
 * reference, the first n_decay parameters with the step's decay and the
 * rest without: boundaries at 0, inside and at the end of a run of 8, and
 * at the end. */
static void case_optim_update_split(conf *c)
{
    if (!c->dut.ops->optim_update_split)
        skip(c, "%s does not fuse the weights' and the biases' updates: the core makes two "
                "optim_update calls", c->dut.name);
    const daecl_optim_step steps[] = {
        {.kind = DAECL_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-2f},
        {.kind = DAECL_OPTIM_ADAM, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
         .weight_decay = 1e-2f},
        {.kind = DAECL_OPTIM_ADAMW, .lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
         .weight_decay = 1e-1f},
    };
    static const size_t n = 1001, splits[] = {0, 13, 16, 500, 1001};
    for (size_t z = 0; z < CASES(splits, 3); z++)
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            size_t mark = c->n_held, nd = splits[z];
            float *w = random_floats(c, n + 3, 220 + s + 10 * z, -1, 1);
            pair pw = pair_of(c, w, n + 3), pg = pair_of(c, NULL, n),
                 p1 = pair_of(c, NULL, n + 3), p2 = pair_of(c, NULL, n + 3);
            int adam = steps[s].kind != DAECL_OPTIM_SGD;
            for (int t = 1; t <= 2; t++) {
                both_gradients(c, &pg, n, 230 + 10 * s + (uint64_t)t);
                daecl_optim_step st = optim_step_at(steps[s], t);
                const side *r = &c->ref;
                daecl_slice s2r = adam ? S(p2.r, 0) : NONE, s2d = adam ? S(p2.d, 0) : NONE;
                CALL(r, optim_update, &st, S(pw.r, 0), S(pg.r, 0), S(p1.r, 0), s2r, nd);
                daecl_optim_step nodecay = st;
                nodecay.weight_decay = 0.0f;
                daecl_slice s2rb = adam ? S(p2.r, nd) : NONE;
                CALL(r, optim_update, &nodecay, S(pw.r, nd), S(pg.r, nd), S(p1.r, nd), s2rb,
                     n - nd);
                CALL(&c->dut, optim_update_split, &st, nd, S(pw.d, 0), S(pg.d, 0), S(p1.d, 0),
                     s2d, n);
            }
            expect_optim_state(c, &pw, &p1, &p2, "optim_update_split");
            release_to(c, mark);
        }
    pass(c, "SGD with momentum, Adam and AdamW with decay on the first 0, 13, 16, 500 and 1001 "
            "of 1001 parameters over 2 steps, within 1e-5 of two optim_update calls");
}

/* ---- the runner -------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(conf *c);
} cases[] = {
    {"memory", case_memory},
    {"fill", case_fill},
    {"copy", case_copy},
    {"refusals", case_refusals},
    {"gemm", case_gemm},
    {"gemm_beta0", case_gemm_beta0},
    {"gemm_k0", case_gemm_k0},
    {"bias_act", case_bias_act},
    {"act_extremes", case_act_extremes},
    {"act_grad", case_act_grad},
    {"col_sum", case_col_sum},
    {"act_grad_col_sum", case_act_grad_col_sum},
    {"sum", case_sum},
    {"gather", case_gather},
    {"softmax_xent", case_softmax_xent},
    {"optim_update", case_optim_update},
    {"optim_update_split", case_optim_update_split},
    {"corrupt", case_corrupt},
    {"likelihood", case_likelihood},
    {"likelihood_sums", case_likelihood_sums},
};

size_t daecl_conformance_count(void)
{
    return sizeof cases / sizeof cases[0];
}

const char *daecl_conformance_name(size_t i)
{
    return i < daecl_conformance_count() ? cases[i].name : NULL;
}

/* Case i's verdict; its sentence in c->sentence. Nothing here changes
 * between setjmp and longjmp, so no local needs to be volatile. */
static int run_case(conf *c, size_t i)
{
    int v = setjmp(c->unwind);
    if (v == 0) {
        cases[i].run(c);
        return DAECL_CONFORMANCE_PASS;
    }
    return v - 1;
}

int daecl_conformance_run(const daecl_conformance_side *dut, const daecl_conformance_side *ref,
                          const daecl_conformance_opts *opts, daecl_conformance_report report,
                          void *user, daecl_err *err)
{
    static const daecl_conformance_opts none = {0};
    conf *c = calloc(1, sizeof *c);
    if (!c)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory running the conformance suite");
    c->dut = *dut;
    c->ref = *ref;
    c->opts = opts ? opts : &none;
    size_t ran = 0;
    for (size_t i = 0; i < daecl_conformance_count(); i++) {
        if (c->opts->only && strcmp(c->opts->only, cases[i].name) != 0)
            continue;
        c->sentence[0] = '\0';
        int verdict = run_case(c, i);
        release_to(c, 0);
        /* a failed op may leave work queued: wait for it before the next case */
        daecl_err ignored = {0};
        c->dut.ops->finish(c->dut.ctx, &ignored);
        report(user, cases[i].name, verdict, c->sentence);
        ran++;
    }
    free(c->held);
    free(c);
    if (!ran)
        return daecl_err_set(err, DAECL_EINVAL, "the conformance suite has no case named '%s'",
                             opts && opts->only ? opts->only : "");
    return 0;
}
