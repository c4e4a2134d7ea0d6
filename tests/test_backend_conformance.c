/* daecl tests — backend conformance: a table of op checks that any backend
 * can be run through, comparing it with the cpu reference backend on the
 * same random inputs (odd sizes, offsets, padded leading dimensions), run
 * here for the opencl backend with gemm=clblast and with gemm=daecl. Then
 * what only the opencl backend has: device listing and choice, DAECL_DEVICE,
 * the program cache seen from a second process, precompiled binaries, and
 * the sentence for a machine without any OpenCL platform. Every test skips
 * when no OpenCL device exists. Run with an argument, the program is one of
 * the helper children (child_main). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/registry.h"
#include "daecl/elementwise.h"
#include "tests/support.h"

/* ---- the backends ------------------------------------------------------------------ */

typedef struct be {
    const daecl_plugin *plugin;
    const daecl_backend_ops *ops;
    void *ctx;
} be;

static be ref; /* the cpu reference */
static be dut; /* the backend under test */
static const char *dut_name = "opencl";
static int no_device; /* no OpenCL device on this machine: every test skips */
/* DAECL_CONFORMANCE_SMALL=1: the op checks only, each at the first, small
 * cases of its table, for checking OpenCL implementations thousands of
 * times slower than a device (tests/test_oclgrind.c runs Oclgrind so). */
static int small;
/* How many cases of a table to run: all of them, or its first n_small. */
#define CASES(table, n_small) (small ? (size_t)(n_small) : sizeof(table) / sizeof((table)[0]))
static daecl_err err;

#define N_BUILTIN_PLUGINS 7
static const struct {
    daecl_plugin_kind kind;
    const char *name;
} builtin_plugins[N_BUILTIN_PLUGINS] = {
    {DAECL_KIND_CORRUPTION, "none"},
    {DAECL_KIND_CORRUPTION, "masking"},
    {DAECL_KIND_CORRUPTION, "gaussian"},
    {DAECL_KIND_CORRUPTION, "salt_pepper"},
    {DAECL_KIND_LIKELIHOOD, "bernoulli"},
    {DAECL_KIND_LIKELIHOOD, "gaussian"},
    {DAECL_KIND_LIKELIHOOD, "gaussian_learned"},
};

static void check_ok(int rc, const char *what, const char *who)
{
    if (rc != 0)
        fail_msg("%s on %s failed (%d): %s", what, who, rc, err.msg);
}

#define CALL(b, op, ...) check_ok((b).ops->op((b).ctx, __VA_ARGS__, &err), #op, (b).plugin->name)

/* Runs op on the reference, then on the backend under test; inside the
 * arguments, SL(pair, off) is the pair's buffer on the side being run. */
#define BOTH(op, ...)                                                                              \
    do {                                                                                           \
        for (int side_ = 0; side_ < 2; side_++) {                                                  \
            const be *b_ = side_ ? &dut : &ref;                                                    \
            check_ok(b_->ops->op(b_->ctx, __VA_ARGS__, &err), #op, b_->plugin->name);              \
        }                                                                                          \
    } while (0)
#define SL(p, off) ((daecl_slice){side_ ? (p).d : (p).r, (off)})
#define SIDE_BOUND(bp) (side_ ? (bp).d : (bp).r)

/* Expects DAECL_EINVAL from the backend under test with the op named. */
#define REFUSED(op, ...)                                                                           \
    do {                                                                                           \
        memset(&err, 0, sizeof err);                                                               \
        assert_int_equal(dut.ops->op(dut.ctx, __VA_ARGS__, &err), DAECL_EINVAL);                   \
        if (!strstr(err.msg, #op))                                                                 \
            fail_msg("refusal of %s does not name it: %s", #op, err.msg);                          \
    } while (0)

static const daecl_slice NONE = {NULL, 0};

static daecl_slice S(daecl_buf *b, size_t off)
{
    return (daecl_slice){b, off};
}

/* Resolved values for a backend's schema: defaults, then name/value string
 * pairs (ENUM and STRING by text, INT by number), NULL-terminated. */
static const daecl_param_value *values_with(const daecl_plugin *p, ...)
{
    static daecl_param_value v[16];
    memcpy(v, test_default_values(p), sizeof v[0] * p->n_params);
    va_list ap;
    va_start(ap, p);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;) {
        const char *val = va_arg(ap, const char *);
        uint32_t i;
        for (i = 0; i < p->n_params && strcmp(p->params[i].name, name) != 0; i++)
            ;
        if (i == p->n_params)
            fail_msg("backend %s has no parameter %s", p->name, name);
        const daecl_param_spec *s = &p->params[i];
        v[i].str = val;
        if (s->type == DAECL_PARAM_INT)
            v[i].num[0] = atof(val);
        if (s->type == DAECL_PARAM_ENUM) {
            double idx = 0;
            for (const char *c = s->choices; *c; idx++) {
                size_t len = strcspn(c, "|");
                if (len == strlen(val) && strncmp(c, val, len) == 0)
                    break;
                c += len + (c[len] == '|');
            }
            v[i].num[0] = idx;
        }
    }
    va_end(ap);
    return v;
}

static int open_be(be *b, const char *name, const daecl_param_value *values)
{
    b->plugin = test_plugin(DAECL_KIND_BACKEND, name);
    b->ops = b->plugin->ops;
    return b->ops->open(daecl_host_table(), values, &b->ctx, &err);
}

/* Is there an OpenCL device at all? Asked once. */
static int have_device(void)
{
    static int known = -1;
    if (known < 0) {
        const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
        const daecl_backend_ops *o = p->ops;
        daecl_device_info info[8];
        size_t n = 0;
        daecl_err e = {0};
        known = test_list_devices(o, info, 8, &n, &e) == 0 && n > 0;
        if (!known)
            print_message("no OpenCL device (%s): skipping\n", e.msg);
    }
    return known;
}

static int setup_with_gemm(const char *gemm)
{
    if (open_be(&ref, "cpu", NULL) != 0) {
        print_error("cpu backend: %s\n", err.msg);
        return -1;
    }
    no_device = !have_device();
    if (no_device)
        return 0;
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    if (open_be(&dut, dut_name, values_with(p, "gemm", gemm, NULL)) != 0) {
        print_error("%s backend (gemm=%s): %s\n", dut_name, gemm, err.msg);
        return -1;
    }
    daecl_device_info info;
    dut.ops->describe(dut.ctx, &info, sizeof info);
    print_message("%s backend on %s (%s), gemm=%s\n", dut_name, info.name, info.platform, gemm);
    return 0;
}

static int setup_clblast(void **state)
{
    (void)state;
    return setup_with_gemm("clblast");
}

static int setup_daecl(void **state)
{
    (void)state;
    return setup_with_gemm("daecl");
}

static int teardown(void **state)
{
    (void)state;
    if (dut.ctx)
        dut.ops->close(dut.ctx);
    if (ref.ctx)
        ref.ops->close(ref.ctx);
    dut.ctx = ref.ctx = NULL;
    return 0;
}

#define NEED_DEVICE()                                                                              \
    do {                                                                                           \
        if (no_device)                                                                             \
            skip();                                                                                \
    } while (0)

/* ---- buffers on both sides ----------------------------------------------------------- */

typedef struct pair {
    daecl_buf *r, *d;
    size_t n; /* elements */
} pair;

static float *floats(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

static float *random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = floats(n);
    test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static daecl_buf *upload_to(const be *b, const void *x, size_t n)
{
    daecl_buf *buf = NULL;
    check_ok(b->ops->alloc(b->ctx, n * sizeof(float), "test buffer", &buf, &err), "alloc",
             b->plugin->name);
    if (x)
        check_ok(b->ops->write(b->ctx, buf, 0, x, n * sizeof(float), &err), "write",
                 b->plugin->name);
    return buf;
}

static float *download_from(const be *b, daecl_buf *buf, size_t n)
{
    float *x = floats(n);
    check_ok(b->ops->read(b->ctx, buf, 0, x, n * sizeof(float), &err), "read", b->plugin->name);
    return x;
}

/* The same n elements (x, or zeros) on both backends. */
static pair pair_of(const void *x, size_t n)
{
    pair p = {upload_to(&ref, x, n), upload_to(&dut, x, n), n};
    return p;
}

static void pair_free(pair *p)
{
    ref.ops->free(ref.ctx, p->r);
    dut.ops->free(dut.ctx, p->d);
    p->r = p->d = NULL;
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

/* Both sides of p agree element by element within tol (relative, with 1 as
 * the floor: absolute near zero). */
static void assert_pair_close(pair *p, double tol, double floor, const char *what)
{
    float *r = download_from(&ref, p->r, p->n), *d = download_from(&dut, p->d, p->n);
    for (size_t i = 0; i < p->n; i++)
        if (!close_to(d[i], r[i], tol, floor))
            fail_msg("%s: element %zu of %zu is %.9g on %s but %.9g on the reference", what, i,
                     p->n, (double)d[i], dut.plugin->name, (double)r[i]);
    free(r);
    free(d);
}

/* ---- device and memory ---------------------------------------------------------------- */

static void test_list_devices_marks_one_default_with_a_note(void **state)
{
    (void)state;
    NEED_DEVICE();
    daecl_device_info info[64];
    size_t n = 0;
    check_ok(test_list_devices(dut.ops, info, 64, &n, &err), "list_devices",
             dut_name);
    assert_true(n >= 1);
    size_t defaults = 0, pocl = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        defaults += info[i].is_default;
        if (!info[i].note[0])
            fail_msg("device %s has no note", info[i].name);
        if (!info[i].name[0] || !info[i].platform[0] || !info[i].type[0])
            fail_msg("device %zu is described without a name, platform or type", i);
        if (strstr(info[i].platform, "Portable Computing Language"))
            pocl = i;
    }
    assert_int_equal(defaults, 1);
    daecl_device_info opened;
    dut.ops->describe(dut.ctx, &opened, sizeof opened);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(info[i].name, opened.name) == 0 && info[i].is_default;
    if (!found)
        fail_msg("the opened device %s is not the listed default", opened.name);
    if (pocl != (size_t)-1) {
        /* POCL's CPU device: a compiler, a positive size, a note. */
        assert_true(info[pocl].compiler);
        assert_true(info[pocl].compute_units >= 1);
        assert_true(info[pocl].global_mem_bytes > 0 && info[pocl].max_alloc_bytes > 0);
        assert_string_equal(info[pocl].type, "cpu");
        if (n == 1 && !strstr(info[pocl].note, "the only device"))
            fail_msg("POCL as the only device says: %s", info[pocl].note);
    }
    /* Asking for fewer than exist gives that many. */
    size_t one = 0;
    check_ok(test_list_devices(dut.ops, info, 1, &one, &err), "list_devices",
             dut_name);
    assert_int_equal(one, 1);
}

static void test_alloc_is_zeroed_and_write_read_honour_byte_offsets(void **state)
{
    (void)state;
    NEED_DEVICE();
    daecl_buf *b = NULL, *empty = NULL;
    CALL(dut, alloc, 1001 * sizeof(float), "test buffer", &b);
    CALL(dut, alloc, 0, "empty buffer", &empty);
    float *x = download_from(&dut, b, 1001);
    for (int i = 0; i < 1001; i++)
        assert_true(x[i] == 0.0f);
    float seven[7] = {1, -2, 3.5f, NAN, INFINITY, -0.0f, 1e-38f};
    CALL(dut, write, b, 12, seven, sizeof seven);
    CALL(dut, read, b, 0, x, 1001 * sizeof(float));
    for (int i = 0; i < 1001; i++)
        assert_true(same_bits(x[i], i >= 3 && i < 10 ? seven[i - 3] : 0.0f));
    float back[3];
    CALL(dut, read, b, 16, back, sizeof back);
    assert_true(back[0] == -2 && back[1] == 3.5f && isnan(back[2]));
    CALL(dut, read, empty, 0, back, 0);
    CALL(dut, write, empty, 0, back, 0);
    dut.ops->free(dut.ctx, b);
    dut.ops->free(dut.ctx, empty);
    dut.ops->free(dut.ctx, NULL);
    free(x);
}

static void test_fill_and_copy_honour_element_offsets(void **state)
{
    (void)state;
    NEED_DEVICE();
    float *x = random_floats(1013, 1, -1, 1);
    pair a = pair_of(x, 1013), b = pair_of(NULL, 1013);
    BOTH(fill, SL(a, 5), 100, 2.5f);
    BOTH(fill, SL(b, 1012), 1, -7.0f);
    BOTH(fill, SL(b, 0), 0, 1.0f);
    BOTH(copy, SL(b, 11), SL(a, 3), 999);
    BOTH(copy, SL(a, 0), SL(a, 1000), 13);
    assert_pair_close(&a, 0, 1, "fill/copy a");
    assert_pair_close(&b, 0, 1, "fill/copy b");
    pair_free(&a);
    pair_free(&b);
    free(x);
}

static void test_out_of_range_slices_are_refused_naming_the_op(void **state)
{
    (void)state;
    NEED_DEVICE();
    daecl_buf *b = upload_to(&dut, NULL, 100), *c = upload_to(&dut, NULL, 100);
    float host[4] = {0};
    memset(&err, 0, sizeof err);
    assert_int_equal(dut.ops->write(dut.ctx, b, 399, host, 4, &err), DAECL_EINVAL);
    assert_int_equal(dut.ops->read(dut.ctx, b, 400, host, 1, &err), DAECL_EINVAL);
    REFUSED(fill, S(b, 90), 11, 1.0f);
    REFUSED(copy, S(b, 0), S(b, 10), 20);
    REFUSED(copy, S(b, 0), S(c, 99), 2);
    REFUSED(gemm, 0, 0, 10, 10, 10, 1.0f, S(b, 0), 10, S(c, 0), 9, 0.0f, S(b, 0), 10);
    REFUSED(gemm, 0, 0, 10, 10, 11, 1.0f, S(b, 0), 11, S(c, 0), 10, 0.0f, S(c, 0), 10);
    REFUSED(bias_act, S(b, 1), NONE, 10, 10, DAECL_ACT_RELU);
    REFUSED(bias_act, S(b, 0), S(c, 95), 10, 10, DAECL_ACT_RELU);
    REFUSED(bias_act, S(b, 0), NONE, 1, 1, (daecl_act)9);
    REFUSED(act_grad, S(b, 0), S(c, 1), 100, DAECL_ACT_TANH);
    REFUSED(col_sum, S(b, 0), 11, 10, 0.0f, S(c, 0));
    REFUSED(sum, S(b, 0), 101, S(c, 0));
    REFUSED(sum, S(b, 0), 10, S(c, 100));
    REFUSED(gather, S(b, 0), 10, S(c, 95), 6, S(b, 0));
    daecl_optim_step adam = {
        .kind = DAECL_OPTIM_ADAM, .lr = 0.1f, .bias_corr1 = 1, .bias_corr2 = 1};
    REFUSED(optim_update, &adam, S(b, 0), S(c, 0), S(b, 0), NONE, 10);
    dut.ops->free(dut.ctx, b);
    dut.ops->free(dut.ctx, c);
}

static void test_alloc_past_the_device_limit_names_the_buffer_and_a_remedy(void **state)
{
    (void)state;
    NEED_DEVICE();
    daecl_device_info info;
    dut.ops->describe(dut.ctx, &info, sizeof info);
    daecl_buf *b = NULL;
    memset(&err, 0, sizeof err);
    int rc =
        dut.ops->alloc(dut.ctx, (size_t)info.max_alloc_bytes + 4096, "the training set", &b, &err);
    assert_int_equal(rc, DAECL_ENOMEM);
    assert_null(b);
    if (!strstr(err.msg, "the training set") || !strstr(err.msg, "MiB") ||
        !strstr(err.msg, info.name) || !strstr(err.msg, "train.batch_size"))
        fail_msg("out-of-memory sentence lacks what, size, device or remedy: %s", err.msg);
}

/* ---- GEMM ------------------------------------------------------------------------------ */

/* One GEMM on both sides with offsets and padded leading dimensions, C
 * starting as c0 (NaN when nan_c); checks each C element within float32
 * accumulation bounds and that nothing outside C moved. */
static void gemm_case(int ta, int tb, size_t m, size_t n, size_t k, float alpha, float beta,
                      int nan_c, uint64_t seed)
{
    const size_t a_off = 3, b_off = 5, c_off = 7, pad = 3;
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
    size_t na = a_off + a_rows * lda, nb = b_off + b_rows * ldb, nc = c_off + m * ldc;
    float *ha = random_floats(na, seed, -1, 1), *hb = random_floats(nb, seed + 1, -1, 1);
    float *hc = nan_c ? floats(nc) : random_floats(nc, seed + 2, -1, 1);
    if (nan_c)
        for (size_t i = 0; i < nc; i++)
            hc[i] = NAN;
    pair a = pair_of(ha, na), b = pair_of(hb, nb), c = pair_of(hc, nc);
    BOTH(gemm, ta, tb, m, n, k, alpha, SL(a, a_off), lda, SL(b, b_off), ldb, beta, SL(c, c_off),
         ldc);
    float *r = download_from(&ref, c.r, nc), *d = download_from(&dut, c.d, nc);
    for (size_t q = 0; q < nc; q++) {
        int inside = q >= c_off && (q - c_off) % ldc < n;
        if (!inside) {
            if (!same_bits(d[q], hc[q]))
                fail_msg("gemm (ta=%d tb=%d %zux%zux%zu) wrote element %zu outside C", ta, tb, m, n,
                         k, q);
            continue;
        }
        size_t i = (q - c_off) / ldc, j = (q - c_off) % ldc;
        double bound = beta != 0.0f ? fabs((double)beta * hc[q]) : 0.0;
        for (size_t p = 0; p < k; p++) {
            double av = ta ? ha[a_off + p * lda + i] : ha[a_off + i * lda + p];
            double bv = tb ? hb[b_off + j * ldb + p] : hb[b_off + p * ldb + j];
            bound += fabs((double)alpha * av * bv);
        }
        if (!isfinite(d[q]) || fabs((double)d[q] - (double)r[q]) > 1e-5 * bound + 1e-6)
            fail_msg("gemm (ta=%d tb=%d %zux%zux%zu alpha %g beta %g%s) C[%zu][%zu] = %.9g on "
                     "%s but %.9g on the reference (bound %.3g)",
                     ta, tb, m, n, k, (double)alpha, (double)beta, nan_c ? " over NaN" : "", i, j,
                     (double)d[q], dut.plugin->name, (double)r[q], 1e-5 * bound + 1e-6);
    }
    free(r);
    free(d);
    free(ha);
    free(hb);
    free(hc);
    pair_free(&a);
    pair_free(&b);
    pair_free(&c);
}

static void test_gemm_matches_the_reference_in_every_transpose_with_offsets_and_ld(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][3] = {
        {1, 1, 1}, {7, 13, 5}, {33, 34, 17}, {65, 63, 17}, {33, 130, 1001}, {128, 100, 784}};
    uint64_t seed = 100;
    for (size_t s = 0; s < CASES(shapes, 3); s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                gemm_case(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.75f, 0.5f, 0,
                          seed += 3);
}

static void test_gemm_with_beta_zero_ignores_nan_in_c(void **state)
{
    (void)state;
    NEED_DEVICE();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_case(ta, tb, 7, 13, 5, 1.0f, 0.0f, 1, 7);
            if (!small)
                gemm_case(ta, tb, 128, 200, 96, -1.5f, 0.0f, 1, 9);
        }
}

static void test_gemm_with_empty_inner_dimension_scales_c(void **state)
{
    (void)state;
    NEED_DEVICE();
    gemm_case(0, 0, 5, 6, 0, 1.0f, 0.5f, 0, 11);
    gemm_case(1, 1, 5, 6, 0, 1.0f, 0.0f, 1, 12);
    /* Empty C: nothing to do, nothing refused. */
    daecl_buf *b = upload_to(&dut, NULL, 8);
    CALL(dut, gemm, 0, 0, 0, 3, 2, 1.0f, S(b, 0), 2, S(b, 0), 3, 0.0f, S(b, 0), 3);
    dut.ops->free(dut.ctx, b);
}

/* ---- elementwise and reductions ---------------------------------------------------------- */

static void test_bias_act_matches_the_reference_for_every_activation(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][2] = {{1, 1}, {7, 13}, {128, 7}, {33, 1001}};
    for (int act = 0; act <= 3; act++)
        for (size_t s = 0; s < CASES(shapes, 3); s++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                size_t rows = shapes[s][0], dim = shapes[s][1], n = 2 + rows * dim;
                float *z = random_floats(n, 40 + s, -8, 8),
                      *bias = random_floats(dim + 1, 50, -2, 2);
                pair pz = pair_of(z, n), pb = pair_of(bias, dim + 1);
                BOTH(bias_act, SL(pz, 2), with_bias ? SL(pb, 1) : NONE, rows, dim, (daecl_act)act);
                assert_pair_close(&pz, 1e-5, 1, "bias_act");
                pair_free(&pz);
                pair_free(&pb);
                free(z);
                free(bias);
            }
}

static void test_sigmoid_is_finite_for_large_inputs_and_relu_passes_nan(void **state)
{
    (void)state;
    NEED_DEVICE();
    float z[] = {-1000, -100, -88.5f, -20, -0.0f, 0, 20, 88.5f, 100, 1000, NAN};
    size_t n = sizeof z / sizeof z[0];
    for (int act = 1; act <= 3; act++) {
        pair p = pair_of(z, n);
        BOTH(bias_act, SL(p, 0), NONE, 1, n, (daecl_act)act);
        assert_pair_close(&p, 1e-6, 1e-30, "bias_act at extremes");
        float *d = download_from(&dut, p.d, n);
        for (size_t i = 0; i + 1 < n; i++)
            assert_false(isnan(d[i]));
        assert_true(isnan(d[n - 1])); /* NaN in, NaN out: relu must not hide it */
        if (act == DAECL_ACT_SIGMOID)
            assert_true(d[0] == 0.0f && d[9] == 1.0f && d[3] > 0.0f);
        free(d);
        pair_free(&p);
    }
}

static void test_act_grad_matches_the_reference_from_the_output(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t sizes[] = {1, 7, 1001};
    for (int act = 0; act <= 3; act++)
        for (size_t s = 0; s < CASES(sizes, 3); s++) {
            size_t n = sizes[s] + 4;
            float *h = random_floats(n, 60 + s, act == DAECL_ACT_TANH ? -1.0f : 0.0f, 1.0f);
            float *dh = random_floats(n, 70 + s, -3, 3);
            if (act == DAECL_ACT_RELU)
                for (size_t i = 0; i < n; i += 3)
                    h[i] = 0.0f;
            pair ph = pair_of(h, n), pd = pair_of(dh, n);
            BOTH(act_grad, SL(pd, 4), SL(ph, 1), sizes[s], (daecl_act)act);
            assert_pair_close(&pd, 1e-6, 1, "act_grad");
            pair_free(&ph);
            pair_free(&pd);
            free(h);
            free(dh);
        }
}

static void test_col_sum_matches_the_reference_with_beta(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][2] = {{1, 1}, {7, 13}, {0, 5}, {1000, 7}, {1001, 300}};
    for (size_t s = 0; s < CASES(shapes, 4); s++)
        for (int with_beta = 0; with_beta < 2; with_beta++) {
            size_t rows = shapes[s][0], dim = shapes[s][1], n = 3 + rows * dim;
            float *x = random_floats(n, 80 + s, -1, 1), *y = random_floats(dim + 2, 90, -5, 5);
            pair px = pair_of(x, n), py = pair_of(y, dim + 2);
            BOTH(col_sum, SL(px, 3), rows, dim, with_beta ? 0.5f : 0.0f, SL(py, 2));
            assert_pair_close(&py, 1e-5, 1, "col_sum");
            pair_free(&px);
            pair_free(&py);
            free(x);
            free(y);
        }
}

static void test_sum_matches_the_reference_at_odd_sizes(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t sizes[] = {0, 1, 7, 1000, 1001, 100003};
    for (size_t s = 0; s < CASES(sizes, 5); s++) {
        size_t n = sizes[s] + 5;
        float *x = random_floats(n, 100 + s, -1, 1.5f);
        pair px = pair_of(x, n), out = pair_of(NULL, 3);
        BOTH(sum, SL(px, 5), sizes[s], SL(out, 1));
        assert_pair_close(&out, 1e-5, 1, "sum");
        pair_free(&px);
        pair_free(&out);
        free(x);
    }
    /* Non-finite values stay non-finite. */
    float special[] = {1, INFINITY, 2}, nan3[] = {1, NAN, 2};
    pair pi = pair_of(special, 3), pn = pair_of(nan3, 3), out = pair_of(NULL, 2);
    BOTH(sum, SL(pi, 0), 3, SL(out, 0));
    BOTH(sum, SL(pn, 0), 3, SL(out, 1));
    float *d = download_from(&dut, out.d, 2);
    assert_true(isinf(d[0]) && d[0] > 0 && isnan(d[1]));
    free(d);
    pair_free(&pi);
    pair_free(&pn);
    pair_free(&out);
}

static void test_gather_copies_the_indexed_rows(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][3] = {{50, 13, 7}, {5, 1, 1}, {300, 784, 128}};
    for (size_t s = 0; s < CASES(shapes, 2); s++) {
        size_t data_rows = shapes[s][0], dim = shapes[s][1], rows = shapes[s][2];
        size_t nd = 4 + data_rows * dim, no = 3 + rows * dim;
        float *data = random_floats(nd, 110 + s, -1, 1);
        uint32_t *idx = calloc(rows + 2, sizeof *idx);
        assert_non_null(idx);
        for (size_t r = 0; r < rows; r++)
            idx[2 + r] = (uint32_t)((r * 37 + 11) % data_rows);
        pair pd = pair_of(data, nd), pi = pair_of(idx, rows + 2), po = pair_of(NULL, no);
        BOTH(gather, SL(pd, 4), dim, SL(pi, 2), rows, SL(po, 3));
        assert_pair_close(&po, 0, 1, "gather");
        pair_free(&pd);
        pair_free(&pi);
        pair_free(&po);
        free(data);
        free(idx);
    }
}

static void test_softmax_xent_matches_the_reference(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][2] = {{1, 2}, {7, 10}, {1001, 3}, {1000, 10}};
    for (size_t s = 0; s < CASES(shapes, 3); s++) {
        size_t rows = shapes[s][0], classes = shapes[s][1], n = 2 + rows * classes;
        float *z = random_floats(n, 130 + s, -40, 40);
        float *y = calloc(rows + 1, sizeof *y);
        assert_non_null(y);
        for (size_t r = 0; r < rows; r++)
            y[1 + r] = (float)((r * 7 + s) % classes);
        pair pz = pair_of(z, n), py = pair_of(y, rows + 1);
        pair pl = pair_of(NULL, rows + 3), pg = pair_of(NULL, n + 1);
        BOTH(softmax_xent, SL(pz, 2), SL(py, 1), rows, classes, 0.25f, SL(pl, 3), SL(pg, 1));
        assert_pair_close(&pl, 1e-5, 1, "softmax_xent loss");
        assert_pair_close(&pg, 1e-5, 1, "softmax_xent grad");
        /* Either output may be absent. */
        BOTH(softmax_xent, SL(pz, 2), SL(py, 1), rows, classes, 1.0f, NONE, SL(pg, 1));
        BOTH(softmax_xent, SL(pz, 2), SL(py, 1), rows, classes, 1.0f, SL(pl, 3), NONE);
        assert_pair_close(&pl, 1e-5, 1, "softmax_xent loss alone");
        assert_pair_close(&pg, 1e-5, 1, "softmax_xent grad alone");
        pair_free(&pz);
        pair_free(&py);
        pair_free(&pl);
        pair_free(&pg);
        free(z);
        free(y);
    }
}

static void test_optim_update_matches_the_reference_for_sgd_adam_adamw(void **state)
{
    (void)state;
    NEED_DEVICE();
    const daecl_optim_step steps[] = {
        {.kind = DAECL_OPTIM_SGD, .lr = 0.1f},
        {.kind = DAECL_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 1e-3f},
        {.kind = DAECL_OPTIM_SGD, .nesterov = 1, .lr = 0.05f, .momentum = 0.9f},
        {.kind = DAECL_OPTIM_ADAM,
         .lr = 1e-3f,
         .beta1 = 0.9f,
         .beta2 = 0.999f,
         .eps = 1e-8f,
         .weight_decay = 1e-2f},
        {.kind = DAECL_OPTIM_ADAMW,
         .lr = 1e-3f,
         .beta1 = 0.9f,
         .beta2 = 0.999f,
         .eps = 1e-8f,
         .weight_decay = 1e-2f},
    };
    const size_t n = 1001;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        float *w = random_floats(n + 2, 120 + s, -1, 1);
        pair pw = pair_of(w, n + 2), pg = pair_of(NULL, n + 1), p1 = pair_of(NULL, n + 3),
             p2 = pair_of(NULL, n);
        int adam = steps[s].kind != DAECL_OPTIM_SGD, uses1 = adam || steps[s].momentum != 0;
        for (int t = 1; t <= 3; t++) {
            float *g = random_floats(n + 1, 130 + 10 * s + (uint64_t)t, -2, 2);
            for (int side_ = 0; side_ < 2; side_++) {
                const be *b = side_ ? &dut : &ref;
                check_ok(b->ops->write(b->ctx, side_ ? pg.d : pg.r, 0, g, (n + 1) * 4, &err),
                         "write", b->plugin->name);
            }
            daecl_optim_step st = steps[s];
            st.bias_corr1 = adam ? 1.0f - powf(st.beta1, (float)t) : 0.0f;
            st.bias_corr2 = adam ? 1.0f - powf(st.beta2, (float)t) : 0.0f;
            BOTH(optim_update, &st, SL(pw, 2), SL(pg, 1), uses1 ? SL(p1, 3) : NONE,
                 adam ? SL(p2, 0) : NONE, n);
            free(g);
        }
        assert_pair_close(&pw, 1e-5, 1, "optim_update w");
        assert_pair_close(&p1, 1e-5, 1, "optim_update s1");
        assert_pair_close(&p2, 1e-5, 1, "optim_update s2");
        pair_free(&pw);
        pair_free(&pg);
        pair_free(&p1);
        pair_free(&p2);
        free(w);
    }
}

/* ---- plugins on the device ---------------------------------------------------------- */

static const daecl_noise_key keys[] = {
    {.seed = 1, .stream = 0, .step = 0, .elem0 = 0},
    {.seed = 0xDEADBEEFCAFEF00Dull, .stream = 2, .step = 12345, .elem0 = (1ull << 32) - 40},
    {.seed = 42, .stream = 4, .step = 7, .elem0 = (5ull << 32) + 17},
};

/* Packed parameters of a plugin: defaults with the gaussian corruption's
 * clip set to [lo, hi] when clip is set. */
static size_t pack(const daecl_plugin *p, float *packed, int clip)
{
    daecl_param_value v[16];
    memcpy(v, test_default_values(p), sizeof v[0] * p->n_params);
    for (uint32_t i = 0; clip && i < p->n_params; i++)
        if (strcmp(p->params[i].name, "clip") == 0) {
            v[i].num[0] = -0.25;
            v[i].num[1] = 0.6;
        }
    return daecl_params_pack(p->params, p->n_params, v, packed);
}

static void test_corruption_on_the_device_is_bit_identical_to_the_host(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][2] = {{7, 13}, {33, 1001}};
    for (int c = 0; c < 5; c++) {
        const char *name = builtin_plugins[c < 4 ? c : 2].name;
        const daecl_plugin *p = test_plugin(DAECL_KIND_CORRUPTION, name);
        const daecl_corruption_ops *ops = p->ops;
        float packed[DAECL_MAX_PACKED_PARAMS];
        size_t n_packed = pack(p, packed, c == 4);
        void *bound = NULL;
        CALL(dut, bind, p, packed, n_packed, &bound);
        for (size_t s = 0; s < CASES(shapes, 1); s++)
            for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
                size_t rows = shapes[s][0], dim = shapes[s][1], n = rows * dim;
                float *x = random_floats(n + 1, 140 + s, -1, 1.5f), *want = floats(n);
                daecl_buf *bx = upload_to(&dut, x, n + 1), *bt = upload_to(&dut, NULL, n + 2);
                CALL(dut, corrupt, bound, S(bx, 1), S(bt, 2), rows, dim, &keys[k]);
                check_ok(ops->host_apply(x + 1, want, rows, dim, &keys[k], packed, &err),
                         "host_apply", name);
                float *got = download_from(&dut, bt, n + 2);
                assert_true(got[0] == 0.0f && got[1] == 0.0f);
                size_t changed = 0;
                for (size_t i = 0; i < n; i++) {
                    if (!same_bits(got[2 + i], want[i]))
                        fail_msg("%s%s: element %zu (key %zu) is %.9g on the device but %.9g on "
                                 "the host",
                                 name, c == 4 ? " (clipped)" : "", i, k, (double)got[2 + i],
                                 (double)want[i]);
                    changed += !same_bits(want[i], x[1 + i]);
                }
                /* Noise was drawn: only `none` leaves the input as it was. */
                assert_true(strcmp(name, "none") == 0 ? changed == 0 : changed > 0);
                dut.ops->free(dut.ctx, bx);
                dut.ops->free(dut.ctx, bt);
                free(x);
                free(want);
                free(got);
            }
        dut.ops->unbind(dut.ctx, bound);
    }
}

/* The likelihood's inputs: x in the data's range, a the decoder's k*dim
 * values per row, with extremes for the Bernoulli logits and log-variances
 * beyond the clamp for gaussian_learned. */
static void lik_inputs(const char *name, unsigned k, size_t rows, size_t dim, float **x, float **a,
                       uint64_t seed)
{
    size_t n = rows * dim, na = n * k;
    if (strcmp(name, "bernoulli") == 0) {
        *x = random_floats(n, seed, 0, 1);
        *a = random_floats(na, seed + 1, -50, 50);
        for (size_t i = 0; i < n; i += 5)
            (*x)[i] = (float)(i / 5 % 2); /* exact 0 and 1 */
        for (size_t i = 0; i < na; i += 7)
            (*a)[i] = i / 7 % 2 ? 50.0f : -50.0f;
    } else {
        *x = random_floats(n, seed, -2, 2);
        *a = random_floats(na, seed + 1, -2, 2);
        if (k == 2)
            for (size_t r = 0; r < rows; r++)
                test_fill_uniform(*a + r * k * dim + dim, dim, seed + 2 + r, -14, 14);
    }
}

static void test_likelihood_on_the_device_matches_the_reference(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const size_t shapes[][2] = {{1, 1}, {7, 13}, {17, 1001}};
    for (int l = 4; l < N_BUILTIN_PLUGINS; l++) {
        const char *name = builtin_plugins[l].name;
        const daecl_plugin *p = test_plugin(DAECL_KIND_LIKELIHOOD, name);
        const daecl_likelihood_ops *ops = p->ops;
        unsigned k = ops->params_per_dim;
        float packed[DAECL_MAX_PACKED_PARAMS];
        size_t n_packed = pack(p, packed, 0);
        struct {
            void *r, *d;
        } bound = {NULL, NULL};
        CALL(ref, bind, p, packed, n_packed, &bound.r);
        CALL(dut, bind, p, packed, n_packed, &bound.d);
        for (size_t s = 0; s < CASES(shapes, 2); s++) {
            size_t rows = shapes[s][0], dim = shapes[s][1], n = rows * dim, na = n * k;
            float *x, *a;
            lik_inputs(name, k, rows, dim, &x, &a, 150 + s);
            pair px = pair_of(x, n), pa = pair_of(NULL, na + 1); /* a from element 1 */
            for (int side_ = 0; side_ < 2; side_++) {
                const be *b = side_ ? &dut : &ref;
                check_ok(b->ops->write(b->ctx, SL(pa, 0).buf, 4, a, na * 4, &err), "write",
                         b->plugin->name);
            }
            for (int want = 1; want <= 3; want++) { /* 1 nll, 2 grad, 3 both */
                pair pn = pair_of(NULL, rows + 1), pg = pair_of(NULL, na + 2);
                float scale = want == 2 ? 1.0f : 1.0f / (float)rows;
                BOTH(lik_loss_grad, SIDE_BOUND(bound), SL(px, 0), SL(pa, 1), rows, dim, scale,
                     want & 1 ? SL(pn, 1) : NONE, want & 2 ? SL(pg, 2) : NONE);
                /* Rows sum dim per-element values: the tolerance scales with
                 * the sum of their magnitudes (terms of both signs cancel). */
                float *rn = download_from(&ref, pn.r, rows + 1),
                      *dn = download_from(&dut, pn.d, rows + 1);
                for (size_t r = 0; r < rows; r++) {
                    double mag = 0;
                    for (size_t j = 0; j < dim; j++) {
                        float one = 0, ar[4] = {0};
                        for (unsigned c = 0; c < k; c++)
                            ar[c] = a[r * k * dim + c * dim + j];
                        check_ok(ops->host_loss_grad(&x[r * dim + j], ar, 1, 1, packed, 1.0f, &one,
                                                     NULL, &err),
                                 "host_loss_grad", name);
                        mag += fabs(one);
                    }
                    if (!(want & 1))
                        assert_true(dn[1 + r] == 0.0f);
                    else if (!isfinite(dn[1 + r]) ||
                             fabs((double)dn[1 + r] - rn[1 + r]) > 1e-6 * fmax(1.0, mag))
                        fail_msg("%s: nll of row %zu of %zux%zu is %.9g on the device but %.9g "
                                 "on the reference",
                                 name, r, rows, dim, (double)dn[1 + r], (double)rn[1 + r]);
                }
                assert_true(dn[0] == 0.0f);
                if (want & 2)
                    assert_pair_close(&pg, 1e-6, 1, name);
                else
                    assert_pair_close(&pg, 0, 1, "untouched grad");
                free(rn);
                free(dn);
                pair_free(&pn);
                pair_free(&pg);
            }
            pair pm = pair_of(NULL, n + 1), ps = pair_of(NULL, n);
            BOTH(lik_mean, SIDE_BOUND(bound), SL(pa, 1), rows, dim, SL(pm, 1));
            assert_pair_close(&pm, 1e-6, 1, "lik_mean");
            for (size_t kk = 0; kk < sizeof keys / sizeof keys[0]; kk++) {
                BOTH(lik_sample, SIDE_BOUND(bound), SL(pa, 1), rows, dim, &keys[kk], SL(ps, 0));
                float *rs = download_from(&ref, ps.r, n), *ds = download_from(&dut, ps.d, n);
                float *mean = download_from(&ref, pm.r, n + 1);
                for (size_t i = 0; i < n; i++) {
                    if (strcmp(name, "bernoulli") == 0) {
                        /* A 0/1 draw u < sigmoid(a): where u is within float
                         * error of the probability the two may differ. */
                        float u = daecl_u01(daecl_noise_block(&keys[kk], i).x);
                        if (fabsf(u - mean[1 + i]) > 1e-6f && ds[i] != rs[i])
                            fail_msg("bernoulli sample %zu is %g on the device, %g on the host", i,
                                     (double)ds[i], (double)rs[i]);
                    } else if (!close_to(ds[i], rs[i], 1e-5, 1)) {
                        fail_msg("%s sample %zu is %.9g on the device, %.9g on the host", name, i,
                                 (double)ds[i], (double)rs[i]);
                    }
                }
                free(rs);
                free(ds);
                free(mean);
            }
            pair_free(&pm);
            pair_free(&ps);
            pair_free(&px);
            pair_free(&pa);
            free(x);
            free(a);
        }
        ref.ops->unbind(ref.ctx, bound.r);
        dut.ops->unbind(dut.ctx, bound.d);
    }
}

/* An in-test corruption plugin: host op only, or a broken cl_source. */
static int copy_apply(const float *x, float *xt, size_t n_rows, size_t dim,
                      const daecl_noise_key *key, const float *params, daecl_err *e)
{
    (void)key;
    (void)params;
    (void)e;
    memcpy(xt, x, n_rows * dim * sizeof *x);
    return 0;
}

static void test_bind_without_cl_source_is_not_supported(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const daecl_corruption_ops host_only = {
        .size = sizeof(daecl_corruption_ops), .host_apply = copy_apply, .cl_source = NULL};
    static const daecl_plugin plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                        .name = "host_only",
                                        .version = "1.0.0",
                                        .summary = "test",
                                        .license = "MIT",
                                        .ops = &host_only};
    static const daecl_likelihood_ops host_lik = {
        .size = sizeof(daecl_likelihood_ops), .params_per_dim = 2, .cl_source = NULL};
    static const daecl_plugin lik = {DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
                                     .name = "host_lik",
                                     .version = "1.0.0",
                                     .summary = "test",
                                     .license = "MIT",
                                     .ops = &host_lik};
    void *bound = (void *)&plugin;
    memset(&err, 0, sizeof err);
    assert_int_equal(dut.ops->bind(dut.ctx, &plugin, NULL, 0, &bound, &err), DAECL_ENOTSUP);
    assert_null(bound);
    assert_int_equal(dut.ops->bind(dut.ctx, &lik, NULL, 0, &bound, &err), DAECL_ENOTSUP);
    assert_null(bound);
    dut.ops->unbind(dut.ctx, NULL);
}

static int logged_errors;

static void counting_log(int level, const char *who, const char *fmt, ...)
{
    (void)who;
    (void)fmt;
    logged_errors += level == DAECL_LOG_ERROR;
}

static void counting_vlog(int level, const char *who, const char *fmt, va_list ap)
{
    (void)who;
    (void)fmt;
    (void)ap;
    logged_errors += level == DAECL_LOG_ERROR;
}

static void test_a_plugin_source_that_does_not_compile_names_the_plugin_and_the_log(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const daecl_corruption_ops broken = {
        .size = sizeof(daecl_corruption_ops),
        .host_apply = copy_apply,
        .cl_source = "static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)\n"
                     "{\n    return x + no_such_variable;\n}\n"};
    static const daecl_plugin plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                        .name = "broken",
                                        .version = "1.0.0",
                                        .summary = "test",
                                        .license = "MIT",
                                        .ops = &broken};
    /* A host whose log counts lines: the whole build log goes there, and
     * stays out of the test output. */
    static daecl_host quiet;
    quiet = *daecl_host_table();
    quiet.log = counting_log;
    quiet.vlog = counting_vlog;
    void *ctx = NULL, *bound = NULL;
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    check_ok(dut.ops->open(&quiet, values_with(p, "gemm", "daecl", NULL), &ctx, &err), "open",
             dut_name);
    memset(&err, 0, sizeof err);
    logged_errors = 0;
    int rc = dut.ops->bind(ctx, &plugin, NULL, 0, &bound, &err);
    dut.ops->close(ctx);
    assert_int_equal(rc, DAECL_EPLUGIN);
    assert_null(bound);
    if (!strstr(err.msg, "corruption/broken") || !strstr(err.msg, "no_such_variable"))
        fail_msg("build failure does not name the plugin and show the log: %s", err.msg);
    assert_true(logged_errors >= 2); /* a heading and the log's lines */
}

/* ---- the opencl backend's own behaviour --------------------------------------------------- */

static int run_child(const char *mode, const char *arg, char *const env[], char **out);

static int setup_opencl(void **state)
{
    (void)state;
    if (open_be(&ref, "cpu", NULL) != 0)
        return -1;
    /* Asked in a child: this process must not touch OpenCL before its
     * children have run, since CUDA's OpenCL does not show its GPU to a
     * child forked from a process that has initialised it. */
    char *out = NULL;
    int rc = run_child("--child-list", "", NULL, &out);
    no_device = rc != 0;
    if (no_device)
        print_message("no OpenCL device (%s): skipping\n", out);
    free(out);
    return 0;
}

static char *self_exe(void)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    assert_true(n > 0);
    path[n] = '\0';
    return path;
}

/* Runs this program in helper mode `mode` (with arg) and extra environment;
 * returns its exit status and output. */
static int run_child(const char *mode, const char *arg, char *const env[], char **out)
{
    char *argv[] = {self_exe(), (char *)mode, (char *)(arg ? arg : ""), NULL};
    return test_run(argv, env, out);
}

/* The last "programs so far" line of a debug log, or fails. */
static const char *last_counts(const char *log)
{
    static char line[256];
    const char *p = log, *last = NULL;
    while ((p = strstr(p, "programs so far: ")) != NULL)
        last = p++;
    if (!last)
        fail_msg("no program counters in the log:\n%s", log);
    size_t len = strcspn(last, "\n");
    snprintf(line, sizeof line, "%.*s", (int)len, last);
    return line;
}

static size_t count_bin_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0;
    }
    closedir(d);
    return n;
}

/* The programs a full run builds: ops, daecl GEMM, the seven plugins. */
#define N_PROGRAMS (2 + N_BUILTIN_PLUGINS)

static void test_a_second_process_loads_every_program_from_the_cache(void **state)
{
    (void)state;
    NEED_DEVICE();
    char *dir = test_tmpdir("oclcache");
    char env_dir[1200], sub[1200];
    snprintf(env_dir, sizeof env_dir, "DAECL_CACHE_DIR=%s", dir);
    snprintf(sub, sizeof sub, "%s/opencl", dir);
    char *env[] = {env_dir, "DAECL_LOG=debug", "DAECL_CACHE=1", "DAECL_DEVICE=", NULL};
    char *out = NULL, want[128];

    int rc = run_child("--child-programs", "", env, &out);
    if (rc != 0)
        fail_msg("first child failed (%d):\n%s", rc, out);
    snprintf(want, sizeof want, "programs so far: %d compiled, 0 from cache, 0 from binaries",
             N_PROGRAMS);
    if (strcmp(last_counts(out), want) != 0 || !strstr(out, "compiled from source"))
        fail_msg("first child: expected '%s', log:\n%s", want, out);
    assert_int_equal(count_bin_files(sub), N_PROGRAMS);
    free(out);

    rc = run_child("--child-programs", "", env, &out);
    if (rc != 0)
        fail_msg("second child failed (%d):\n%s", rc, out);
    snprintf(want, sizeof want, "programs so far: 0 compiled, %d from cache, 0 from binaries",
             N_PROGRAMS);
    if (strcmp(last_counts(out), want) != 0 || !strstr(out, "loaded from cache"))
        fail_msg("second child: expected '%s', log:\n%s", want, out);
    free(out);

    /* A truncated file and one with a foreign key are recompiled, quietly. */
    DIR *d = opendir(sub);
    assert_non_null(d);
    int spoiled = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && spoiled < 2;) {
        if (!strstr(e->d_name, ".bin"))
            continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
        size_t n = 0;
        char *bytes = test_read_file(path, &n);
        assert_true(n > 64);
        if (spoiled == 0)
            n = 40;
        else
            bytes[20] ^= 0x5a; /* inside the stored key */
        test_write_file(path, bytes, n);
        free(bytes);
        spoiled++;
    }
    closedir(d);
    rc = run_child("--child-programs", "", env, &out);
    if (rc != 0)
        fail_msg("third child failed (%d):\n%s", rc, out);
    snprintf(want, sizeof want, "programs so far: 2 compiled, %d from cache, 0 from binaries",
             N_PROGRAMS - 2);
    if (strcmp(last_counts(out), want) != 0)
        fail_msg("third child: expected '%s', log:\n%s", want, out);
    free(out);
    free(dir);
}

/* "opened NAME (" from a child's debug log: which device it used. */
static void opened_device(const char *log, char *out, size_t n)
{
    const char *p = strstr(log, "opened ");
    if (!p)
        fail_msg("no 'opened' line in the log:\n%s", log);
    p += strlen("opened ");
    size_t len = strcspn(p, "(\n");
    while (len > 0 && p[len - 1] == ' ')
        len--;
    snprintf(out, n, "%.*s", (int)len, p);
}

static void test_precompiled_binaries_run_without_compiling_anything(void **state)
{
    (void)state;
    NEED_DEVICE();
    /* Both steps in fresh processes: a GPU in exclusive-process mode serves
     * only one process, and this one may hold it later. */
    char *dir = test_tmpdir("oclbin");
    char *env_pre[] = {"DAECL_LOG=debug", "DAECL_DEVICE=", NULL};
    char *out = NULL, want[128], dev_pre[200], dev_bin[200];
    int rc = run_child("--child-precompile", dir, env_pre, &out);
    if (rc != 0 || !strstr(out, "precompile child ok"))
        fail_msg("precompile child failed (%d):\n%s", rc, out);
    opened_device(out, dev_pre, sizeof dev_pre);
    free(out);
    assert_int_equal(count_bin_files(dir), N_PROGRAMS);

    char *env[] = {"DAECL_LOG=debug", "DAECL_CACHE=0", "DAECL_DEVICE=", NULL};
    rc = run_child("--child-binaries", dir, env, &out);
    if (rc != 0)
        fail_msg("binaries child failed (%d):\n%s", rc, out);
    opened_device(out, dev_bin, sizeof dev_bin);
    assert_string_equal(dev_bin, dev_pre);
    print_message("precompiled and loaded binaries on %s\n", dev_bin);
    snprintf(want, sizeof want, "programs so far: 0 compiled, 0 from cache, %d from binaries",
             N_PROGRAMS);
    if (strcmp(last_counts(out), want) != 0 || !strstr(out, "GEMM by daecl's kernel") ||
        !strstr(out, "binaries child ok"))
        fail_msg("binaries child: expected '%s', log:\n%s", want, out);
    free(out);
    free(dir);
}

static void test_a_binaries_folder_without_the_programs_is_refused_with_the_fix(void **state)
{
    (void)state;
    NEED_DEVICE();
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    dut.plugin = p;
    dut.ops = p->ops;
    char *empty = test_tmpdir("oclbin-empty");
    memset(&err, 0, sizeof err);
    assert_int_equal(
        dut.ops->open(daecl_host_table(), values_with(p, "binaries", empty, NULL), &dut.ctx, &err),
        DAECL_EDEVICE);
    assert_null(dut.ctx);
    if (!strstr(err.msg, "daecl-kernels") || !strstr(err.msg, "daecl precompile --out DIR"))
        fail_msg("missing binary sentence: %s", err.msg);
    /* CLBlast cannot run from binaries. */
    assert_int_equal(dut.ops->open(daecl_host_table(),
                                   values_with(p, "binaries", empty, "gemm", "clblast", NULL),
                                   &dut.ctx, &err),
                     DAECL_ECONFIG);
    if (!strstr(err.msg, "gemm=clblast"))
        fail_msg("clblast with binaries: %s", err.msg);
    free(empty);
}

static void test_no_platform_says_how_to_install_one(void **state)
{
    (void)state;
    char *empty = test_tmpdir("no-icd");
    char vendors[1200];
    snprintf(vendors, sizeof vendors, "OCL_ICD_VENDORS=%s", empty);
    char *env[] = {vendors, "DAECL_DEVICE=", NULL};
    char *out = NULL;
    int rc = run_child("--child-no-platform", "", env, &out);
    if (rc == 3) {
        /* Some loaders (NVIDIA's own libOpenCL) find their platform
         * without the vendors folder: nothing to test there. */
        print_message("the OpenCL loader ignores OCL_ICD_VENDORS: %s", out);
        free(out);
        free(empty);
        skip();
    }
    if (rc != 0 || !strstr(out, "no OpenCL platform is installed") ||
        !strstr(out, "apt-get install pocl-opencl-icd"))
        fail_msg("no-platform child (%d) did not give the install sentence:\n%s", rc, out);
    free(out);
    free(empty);
}

static void expect_bad_device_env(const char *value, const char *fragment)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_backend_ops *o = p->ops;
    setenv("DAECL_DEVICE", value, 1);
    void *ctx = NULL;
    memset(&err, 0, sizeof err);
    int rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    unsetenv("DAECL_DEVICE");
    if (ctx)
        o->close(ctx);
    char quoted[300];
    snprintf(quoted, sizeof quoted, "DAECL_DEVICE=\"%s\"", value);
    if (rc != DAECL_ECONFIG || !strstr(err.msg, quoted) || !strstr(err.msg, fragment) ||
        !strstr(err.msg, "DAECL_DEVICE=\"platform=NVIDIA,type=gpu,index=0\""))
        fail_msg("DAECL_DEVICE=%s gave %d: %s", value, rc, err.msg);
}

static void test_daecl_device_overrides_the_choice_and_bad_values_show_the_syntax(void **state)
{
    (void)state;
    NEED_DEVICE();
    expect_bad_device_env("type=gpux", "gpux");
    expect_bad_device_env("index=abc", "abc");
    expect_bad_device_env("frobnicate=1", "frobnicate");
    expect_bad_device_env("cpu,,0", "empty");
    expect_bad_device_env("gemm=fast", "fast");
    expect_bad_device_env("2000", "2000");

    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_backend_ops *o = p->ops;
    daecl_device_info info[64];
    size_t n = 0;
    check_ok(test_list_devices(o, info, 64, &n, &err), "list_devices", dut_name);
    /* The bare index of the last device opens that device. */
    char value[64];
    snprintf(value, sizeof value, "%zu", n - 1);
    setenv("DAECL_DEVICE", value, 1);
    void *ctx = NULL;
    int rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    unsetenv("DAECL_DEVICE");
    check_ok(rc, "open with DAECL_DEVICE=<last index>", p->name);
    daecl_device_info got;
    o->describe(ctx, &got, sizeof got);
    o->close(ctx);
    assert_string_equal(got.name, info[n - 1].name);
    if (!strstr(got.note, "chosen by index="))
        fail_msg("note of a device chosen by index: %s", got.note);
    /* One past the end, and a type nobody has: sentences that list the devices. */
    snprintf(value, sizeof value, "index=%zu", n);
    setenv("DAECL_DEVICE", value, 1);
    rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    unsetenv("DAECL_DEVICE");
    assert_int_equal(rc, DAECL_EDEVICE);
    if (!strstr(err.msg, "past the end") || !strstr(err.msg, info[0].name))
        fail_msg("index past the end: %s", err.msg);
    const char *types[] = {"gpu", "accelerator", "cpu"};
    for (int t = 0; t < 3; t++) {
        int present = 0;
        for (size_t i = 0; i < n; i++)
            present |= strcmp(info[i].type, types[t]) == 0;
        if (present)
            continue;
        snprintf(value, sizeof value, "type=%s", types[t]);
        setenv("DAECL_DEVICE", value, 1);
        rc = o->open(daecl_host_table(), NULL, &ctx, &err);
        unsetenv("DAECL_DEVICE");
        assert_int_equal(rc, DAECL_EDEVICE);
        if (!strstr(err.msg, "no OpenCL device matches") || !strstr(err.msg, "daecl devices"))
            fail_msg("type nobody has: %s", err.msg);
        break;
    }
}

/* ---- helper modes: this program run as a child ---------------------------------------- */

/* Opens the backend (gemm=daecl, so its GEMM program is built too), binds
 * every built-in plugin, and checks one GEMM and one corruption against the
 * references: what a training run would build. */
static int child_programs(const daecl_param_value *values, const char *tag)
{
    if (open_be(&dut, dut_name, values) != 0 || open_be(&ref, "cpu", NULL) != 0) {
        fprintf(stderr, "%s child: open: %s\n", tag, err.msg);
        return 1;
    }
    void *bound[N_BUILTIN_PLUGINS];
    for (int i = 0; i < N_BUILTIN_PLUGINS; i++) {
        const daecl_plugin *q = test_plugin(builtin_plugins[i].kind, builtin_plugins[i].name);
        float packed[DAECL_MAX_PACKED_PARAMS];
        size_t n_packed = pack(q, packed, 0);
        if (dut.ops->bind(dut.ctx, q, packed, n_packed, &bound[i], &err) != 0) {
            fprintf(stderr, "%s child: bind %s: %s\n", tag, q->name, err.msg);
            return 1;
        }
    }
    gemm_case(1, 0, 37, 50, 29, 1.0f, 0.0f, 1, 5);
    /* masking on the device against its host op */
    const daecl_plugin *mask = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    float packed[DAECL_MAX_PACKED_PARAMS];
    pack(mask, packed, 0);
    float *x = random_floats(91, 3, 0, 1), want[91];
    daecl_buf *bx = upload_to(&dut, x, 91), *bt = upload_to(&dut, NULL, 91);
    CALL(dut, corrupt, bound[1], S(bx, 0), S(bt, 0), 7, 13, &keys[1]);
    ((const daecl_corruption_ops *)mask->ops)->host_apply(x, want, 7, 13, &keys[1], packed, &err);
    float *got = download_from(&dut, bt, 91);
    int same = memcmp(got, want, sizeof want) == 0;
    for (int i = 0; i < N_BUILTIN_PLUGINS; i++)
        dut.ops->unbind(dut.ctx, bound[i]);
    dut.ops->free(dut.ctx, bx);
    dut.ops->free(dut.ctx, bt);
    dut.ops->close(dut.ctx);
    ref.ops->close(ref.ctx);
    free(x);
    free(got);
    if (!same) {
        fprintf(stderr, "%s child: corruption differs from the host\n", tag);
        return 1;
    }
    fprintf(stderr, "%s child ok\n", tag);
    return 0;
}

/* Opens with CLBlast (so precompile must build the daecl GEMM itself) and
 * writes every program into dir. */
static int child_precompile(const char *dir)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_plugin *plugins[N_BUILTIN_PLUGINS + 1];
    for (int i = 0; i < N_BUILTIN_PLUGINS; i++)
        plugins[i] = test_plugin(builtin_plugins[i].kind, builtin_plugins[i].name);
    plugins[N_BUILTIN_PLUGINS] = p; /* a backend in the list is skipped */
    const daecl_ext_precompile *pre = daecl_backend_extension(
        p->ops, DAECL_EXT_PRECOMPILE, offsetof(daecl_ext_precompile, precompile) + sizeof(void *));
    if (!pre) {
        fprintf(stderr, "precompile child: the backend has no %s extension\n",
                DAECL_EXT_PRECOMPILE);
        return 1;
    }
    if (open_be(&dut, dut_name, values_with(p, "gemm", "clblast", NULL)) != 0 ||
        pre->precompile(dut.ctx, plugins, N_BUILTIN_PLUGINS + 1, dir, &err) != 0) {
        fprintf(stderr, "precompile child: %s\n", err.msg);
        return 1;
    }
    dut.ops->close(dut.ctx);
    fprintf(stderr, "precompile child ok\n");
    return 0;
}

static int child_no_platform(void)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_backend_ops *o = p->ops;
    daecl_device_info info[4];
    size_t n = 0;
    void *ctx = NULL;
    daecl_err e1 = {0}, e2 = {0};
    int rc1 = test_list_devices(o, info, 4, &n, &e1);
    if (rc1 == 0) {
        printf("found %zu device(s) all the same, the first %s\n", n, n ? info[0].name : "");
        return 3;
    }
    int rc2 = o->open(daecl_host_table(), NULL, &ctx, &e2);
    printf("list_devices: %d %s\nopen: %d %s\n", rc1, e1.msg, rc2, e2.msg);
    if (ctx)
        o->close(ctx);
    return rc1 == DAECL_EDEVICE && rc2 == DAECL_EDEVICE && strcmp(e1.msg, e2.msg) == 0 ? 0 : 1;
}

static int child_main(int argc, char **argv)
{
    const char *mode = argv[1], *arg = argc > 2 ? argv[2] : "";
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    if (strcmp(mode, "--child-programs") == 0)
        return child_programs(values_with(p, "gemm", "daecl", NULL), "programs");
    if (strcmp(mode, "--child-binaries") == 0)
        return child_programs(values_with(p, "binaries", arg, NULL), "binaries");
    if (strcmp(mode, "--child-list") == 0) {
        daecl_device_info info[8];
        size_t n = 0;
        const daecl_backend_ops *o = p->ops;
        int rc = test_list_devices(o, info, 8, &n, &err);
        printf("%s", rc ? err.msg : "");
        return rc == 0 && n > 0 ? 0 : 4;
    }
    if (strcmp(mode, "--child-precompile") == 0)
        return child_precompile(arg);
    if (strcmp(mode, "--child-no-platform") == 0)
        return child_no_platform();
    fprintf(stderr, "unknown helper mode %s\n", mode);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return child_main(argc, argv);
    /* The op checks: any backend can be run through this table. */
    const struct CMUnitTest conformance[] = {
        cmocka_unit_test(test_alloc_is_zeroed_and_write_read_honour_byte_offsets),
        cmocka_unit_test(test_fill_and_copy_honour_element_offsets),
        cmocka_unit_test(test_out_of_range_slices_are_refused_naming_the_op),
        cmocka_unit_test(test_gemm_matches_the_reference_in_every_transpose_with_offsets_and_ld),
        cmocka_unit_test(test_gemm_with_beta_zero_ignores_nan_in_c),
        cmocka_unit_test(test_gemm_with_empty_inner_dimension_scales_c),
        cmocka_unit_test(test_bias_act_matches_the_reference_for_every_activation),
        cmocka_unit_test(test_sigmoid_is_finite_for_large_inputs_and_relu_passes_nan),
        cmocka_unit_test(test_act_grad_matches_the_reference_from_the_output),
        cmocka_unit_test(test_col_sum_matches_the_reference_with_beta),
        cmocka_unit_test(test_sum_matches_the_reference_at_odd_sizes),
        cmocka_unit_test(test_gather_copies_the_indexed_rows),
        cmocka_unit_test(test_optim_update_matches_the_reference_for_sgd_adam_adamw),
        cmocka_unit_test(test_softmax_xent_matches_the_reference),
        cmocka_unit_test(test_corruption_on_the_device_is_bit_identical_to_the_host),
        cmocka_unit_test(test_likelihood_on_the_device_matches_the_reference),
        cmocka_unit_test(test_bind_without_cl_source_is_not_supported),
    };
    const struct CMUnitTest opencl[] = {
        cmocka_unit_test(test_a_plugin_source_that_does_not_compile_names_the_plugin_and_the_log),
        cmocka_unit_test(test_list_devices_marks_one_default_with_a_note),
        cmocka_unit_test(test_alloc_past_the_device_limit_names_the_buffer_and_a_remedy),
    };
    const struct CMUnitTest process[] = {
        cmocka_unit_test(test_a_second_process_loads_every_program_from_the_cache),
        cmocka_unit_test(test_precompiled_binaries_run_without_compiling_anything),
        cmocka_unit_test(test_no_platform_says_how_to_install_one),
        cmocka_unit_test(test_daecl_device_overrides_the_choice_and_bad_values_show_the_syntax),
        cmocka_unit_test(test_a_binaries_folder_without_the_programs_is_refused_with_the_fix),
    };
    /* Child processes first, before this process touches OpenCL: NVIDIA's
     * OpenCL shows no GPU to a child of a process that has initialised it
     * (seen on an H200), and an exclusive-process GPU serves one process. */
    const char *env_small = getenv("DAECL_CONFORMANCE_SMALL");
    small = env_small && strcmp(env_small, "1") == 0;
    int failed = 0;
    if (!small)
        failed += cmocka_run_group_tests_name("opencl processes", process, setup_opencl, teardown);
    failed +=
        cmocka_run_group_tests_name("opencl gemm=clblast", conformance, setup_clblast, teardown);
    if (small) /* only the GEMM checks differ between the two groups */
        cmocka_set_test_filter("test_gemm_*");
    failed += cmocka_run_group_tests_name("opencl gemm=daecl", conformance, setup_daecl, teardown);
    if (!small)
        failed += cmocka_run_group_tests_name("opencl device", opencl, setup_daecl, teardown);
    return failed;
}
