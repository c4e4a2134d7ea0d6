/* Tests for the corruption plugins (plugins/corruption/): none, masking,
 * gaussian, salt_pepper, and the row-granular block and patch_mask.
 * Statistics within 5-sigma bounds, the noise key 2.0 of plugin.h,
 * determinism, chunking over positions, the check hooks, and the embedded
 * OpenCL C through clang's front end (cl_syntax.h). */
#include "tests/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/elementwise.h"
#include "tests/cl_syntax.h"

enum { ROWS = 100, DIM = 1000, N = ROWS * DIM };

static const daecl_corruption_ops *ops_of(const char *name)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_CORRUPTION, name);
    assert_non_null(p->ops);
    return p->ops;
}

/* Sets parameter `name` in values (the plugin's schema order); FLOAT2 takes
 * both halves, which test_pack_params cannot set. */
static void set_param(const daecl_plugin *p, daecl_param_value *values, const char *name,
                      double v0, double v1)
{
    for (uint32_t i = 0; i < p->n_params; i++)
        if (strcmp(p->params[i].name, name) == 0) {
            values[i].num[0] = v0;
            values[i].num[1] = v1;
            return;
        }
    fail_msg("plugin %s has no parameter %s", p->name, name);
}

/* A copy of the plugin's default values (at most 16 parameters). */
static void defaults(const daecl_plugin *p, daecl_param_value values[16])
{
    assert_true(p->n_params <= 16);
    memcpy(values, test_default_values(p), p->n_params * sizeof values[0]);
}

/* x (n) uniform in [lo, hi): test inputs, never 0 when lo > 0. */
static float *inputs(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static float *output(size_t n)
{
    float *xt = malloc(n * sizeof *xt);
    assert_non_null(xt);
    return xt;
}

static void apply_shaped(const daecl_corruption_ops *ops, const float *x, float *xt,
                         size_t n_rows, size_t dim, const daecl_shape *shape,
                         const daecl_noise_key *key, const float *params)
{
    daecl_err err = {0};
    int rc = ops->host_apply(x, xt, n_rows, dim, shape, key, params, &err);
    if (rc != 0)
        fail_msg("host_apply failed (%d): %s", rc, err.msg);
}

/* Examples of shape (dim): what data without a known shape gives plugins. */
static void apply(const daecl_corruption_ops *ops, const float *x, float *xt, size_t n_rows,
                  size_t dim, const daecl_noise_key *key, const float *params)
{
    daecl_shape flat = {1, {(uint32_t)dim, 1, 1, 1}};
    apply_shaped(ops, x, xt, n_rows, dim, &flat, key, params);
}

/* |count - n p| within 5 binomial standard deviations. */
static void assert_binomial(size_t count, size_t n, double p, const char *what)
{
    double sd = sqrt((double)n * p * (1.0 - p));
    double dev = fabs((double)count - (double)n * p);
    if (!(dev <= 5.0 * sd))
        fail_msg("%s: %zu of %zu, expected %.1f +- %.1f (5 sigma)", what, count, n,
                 (double)n * p, 5.0 * sd);
}

static const daecl_noise_key key0 = {.seed = 0xdae1c0ffee, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                                     .epoch = 3, .pos0 = 0};

/* ---- none ------------------------------------------------------------------ */

static void test_none_is_identity(void **state)
{
    (void)state;
    const daecl_corruption_ops *ops = ops_of("none");
    assert_non_null(ops->cl_source);
    float *x = inputs(N, 1, -5.0f, 5.0f), *xt = output(N);
    x[0] = -0.0f;
    x[1] = INFINITY;
    apply(ops, x, xt, ROWS, DIM, &key0, NULL);
    assert_memory_equal(x, xt, N * sizeof *x);
    free(x);
    free(xt);
}

/* ---- masking --------------------------------------------------------------- */

static void test_masking_zeroes_about_p_of_inputs(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    const daecl_corruption_ops *ops = plugin->ops;
    float *x = inputs(N, 2, 0.5f, 1.5f), *xt = output(N);
    const double ps[] = {0.1, 0.5, 0.9};
    for (int k = 0; k < 3; k++) {
        float params[DAECL_MAX_PACKED_PARAMS];
        assert_int_equal(test_pack_params(plugin, params, 1, "p", ps[k]), 1);
        apply(ops, x, xt, ROWS, DIM, &key0, params);
        size_t zeros = 0;
        for (size_t i = 0; i < N; i++) {
            if (xt[i] == 0.0f)
                zeros++;
            else
                assert_true(xt[i] == x[i]); /* kept inputs are untouched */
        }
        char what[64];
        snprintf(what, sizeof what, "inputs masked at p = %g", ps[k]);
        assert_binomial(zeros, N, ps[k], what);
    }
    free(x);
    free(xt);
}

static void test_masking_p0_is_identity_and_p1_zeroes_all(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    const daecl_corruption_ops *ops = plugin->ops;
    float *x = inputs(N, 3, 0.5f, 1.5f), *xt = output(N);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 1, "p", 0.0);
    apply(ops, x, xt, ROWS, DIM, &key0, params);
    assert_memory_equal(x, xt, N * sizeof *x);
    test_pack_params(plugin, params, 1, "p", 1.0);
    apply(ops, x, xt, ROWS, DIM, &key0, params);
    for (size_t i = 0; i < N; i++)
        assert_true(xt[i] == 0.0f);
    free(x);
    free(xt);
}

static void test_masking_default_p_is_a_quarter(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    float params[DAECL_MAX_PACKED_PARAMS];
    assert_int_equal(test_pack_params(plugin, params, 0), 1);
    assert_true(params[0] == 0.25f);
}

/* ---- gaussian -------------------------------------------------------------- */

static void test_gaussian_adds_noise_of_mean_zero_and_variance_sigma2(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "gaussian");
    const daecl_corruption_ops *ops = plugin->ops;
    float *x = inputs(N, 4, 0.0f, 1.0f), *xt = output(N);
    const double sigmas[] = {0.1, 0.5, 3.0};
    for (int k = 0; k < 3; k++) {
        double sigma = sigmas[k];
        float params[DAECL_MAX_PACKED_PARAMS];
        assert_int_equal(test_pack_params(plugin, params, 1, "sigma", sigma), 3);
        apply(ops, x, xt, ROWS, DIM, &key0, params);
        double sum = 0.0, sum2 = 0.0;
        for (size_t i = 0; i < N; i++) {
            double d = (double)xt[i] - (double)x[i];
            sum += d;
            sum2 += d * d;
        }
        double mean = sum / N, var = sum2 / N - mean * mean;
        double s2 = (double)(float)sigma * (double)(float)sigma;
        if (!(fabs(mean) <= 5.0 * sqrt(s2 / N)))
            fail_msg("sigma %g: noise mean %g", sigma, mean);
        if (!(fabs(var - s2) <= 5.0 * s2 * sqrt(2.0 / N)))
            fail_msg("sigma %g: noise variance %g, expected %g", sigma, var, s2);
    }
    free(x);
    free(xt);
}

static void test_gaussian_noise_is_sigma_times_normal_of_the_element_block(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "gaussian");
    const daecl_corruption_ops *ops = plugin->ops;
    enum { R = 7, D = 13 };
    float *x = inputs(R * D, 5, -1.0f, 1.0f), *xt = output(R * D);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 1, "sigma", 0.3);
    daecl_noise_key key = {.seed = 99, .stream = DAECL_STREAM_EVAL_CORRUPTION, .stage = 1,
                           .substep = 2, .epoch = 12, .pos0 = 5000};
    apply(ops, x, xt, R, D, &key, params);
    /* plugin.h: element j of row r draws block j of position pos0 + r, and
     * only it: counter {j, pos0 + r, epoch, stream | stage << 8 | substep << 16}. */
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < D; j++) {
            daecl_u4 b = daecl_philox4x32_10(
                daecl_u4_make((uint32_t)j, (uint32_t)(5000 + r), 12,
                              DAECL_STREAM_EVAL_CORRUPTION | 1u << 8 | 2u << 16),
                99, 0);
            float want = x[r * D + j] + params[0] * daecl_normal(b.x, b.y);
            assert_memory_equal(&xt[r * D + j], &want, sizeof want);
        }
    free(x);
    free(xt);
}

static void test_gaussian_clip_clamps_into_lo_hi(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "gaussian");
    const daecl_corruption_ops *ops = plugin->ops;
    float *x = inputs(N, 6, 0.0f, 1.0f), *xt = output(N), *free_xt = output(N);
    float params[DAECL_MAX_PACKED_PARAMS];
    /* Defaults: sigma 0.1, clip [-inf, inf] (no clipping). */
    assert_int_equal(test_pack_params(plugin, params, 0), 3);
    assert_true(params[1] == -INFINITY && params[2] == INFINITY);
    daecl_param_value values[16];
    defaults(plugin, values);
    set_param(plugin, values, "sigma", 0.5, 0.0);
    daecl_params_pack(plugin->params, plugin->n_params, values, params);
    apply(ops, x, free_xt, ROWS, DIM, &key0, params);
    set_param(plugin, values, "clip", 0.0, 1.0);
    daecl_params_pack(plugin->params, plugin->n_params, values, params);
    assert_true(params[0] == 0.5f && params[1] == 0.0f && params[2] == 1.0f);
    apply(ops, x, xt, ROWS, DIM, &key0, params);
    size_t at_lo = 0, at_hi = 0;
    for (size_t i = 0; i < N; i++) {
        float want = fminf(fmaxf(free_xt[i], 0.0f), 1.0f);
        assert_memory_equal(&xt[i], &want, sizeof want);
        at_lo += xt[i] == 0.0f;
        at_hi += xt[i] == 1.0f;
    }
    /* With sigma 0.5 on [0, 1) data, both bounds are hit often. */
    assert_true(at_lo > N / 10 && at_hi > N / 10);
    free(x);
    free(xt);
    free(free_xt);
}

static void test_gaussian_sigma0_is_identity(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "gaussian");
    float *x = inputs(N, 7, -3.0f, 3.0f), *xt = output(N);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 1, "sigma", 0.0);
    apply(plugin->ops, x, xt, ROWS, DIM, &key0, params);
    assert_memory_equal(x, xt, N * sizeof *x);
    free(x);
    free(xt);
}

/* ---- salt_pepper ------------------------------------------------------------ */

static void test_salt_pepper_replaces_p_of_inputs_half_by_min_half_by_max(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "salt_pepper");
    const daecl_corruption_ops *ops = plugin->ops;
    float *x = inputs(N, 8, 0.0f, 1.0f), *xt = output(N);
    const double ps[] = {0.1, 0.3, 0.8};
    for (int k = 0; k < 3; k++) {
        float params[DAECL_MAX_PACKED_PARAMS];
        assert_int_equal(
            test_pack_params(plugin, params, 3, "p", ps[k], "min", -2.0, "max", 3.0), 3);
        apply(ops, x, xt, ROWS, DIM, &key0, params);
        size_t pepper = 0, salt = 0;
        for (size_t i = 0; i < N; i++) {
            if (xt[i] == -2.0f)
                pepper++;
            else if (xt[i] == 3.0f)
                salt++;
            else
                assert_true(xt[i] == x[i]);
        }
        char what[64];
        snprintf(what, sizeof what, "inputs replaced at p = %g", ps[k]);
        assert_binomial(salt + pepper, N, ps[k], what);
        assert_binomial(salt, salt + pepper, 0.5, "salt among replaced inputs");
    }
    free(x);
    free(xt);
}

static void test_salt_pepper_defaults_use_zero_and_one(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "salt_pepper");
    float *x = inputs(N, 9, 0.25f, 0.75f), *xt = output(N);
    float params[DAECL_MAX_PACKED_PARAMS];
    assert_int_equal(test_pack_params(plugin, params, 0), 3);
    assert_true(params[0] == 0.1f && params[1] == 0.0f && params[2] == 1.0f);
    apply(plugin->ops, x, xt, ROWS, DIM, &key0, params);
    size_t zeros = 0, ones = 0;
    for (size_t i = 0; i < N; i++) {
        zeros += xt[i] == 0.0f;
        ones += xt[i] == 1.0f;
    }
    assert_binomial(zeros + ones, N, 0.1, "inputs replaced at the default p");
    assert_true(zeros > 0 && ones > 0);
    free(x);
    free(xt);
}

static void test_salt_pepper_check_refuses_min_not_below_max(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "salt_pepper");
    assert_non_null(plugin->check);
    daecl_param_value values[16];
    defaults(plugin, values);
    daecl_err err = {0};
    assert_int_equal(plugin->check(values, &err), 0);

    set_param(plugin, values, "min", 1.0, 0.0);
    set_param(plugin, values, "max", 0.0, 0.0);
    assert_int_equal(plugin->check(values, &err), DAECL_ECONFIG);
    assert_int_equal(err.status, DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "salt_pepper"));
    assert_non_null(strstr(err.msg, "min"));

    set_param(plugin, values, "max", 1.0, 0.0); /* min == max is refused too */
    memset(&err, 0, sizeof err);
    assert_int_equal(plugin->check(values, &err), DAECL_ECONFIG);
    assert_true(err.msg[0] != '\0');
}

/* ---- block ------------------------------------------------------------------ */

/* 28 x 28 examples, as Fashion-MNIST's. */
static const daecl_shape img = {2, {28, 28, 1, 1}};

/* Where row xt (28 x 28) differs from x: the bounding box and the count. */
static size_t changed_box(const float *x, const float *xt, unsigned *y0, unsigned *x0,
                          unsigned *y1, unsigned *x1)
{
    size_t n = 0;
    *y0 = *x0 = 28;
    *y1 = *x1 = 0;
    for (unsigned y = 0; y < 28; y++)
        for (unsigned c = 0; c < 28; c++)
            if (memcmp(&x[y * 28 + c], &xt[y * 28 + c], sizeof *x) != 0) {
                n++;
                *y0 = y < *y0 ? y : *y0;
                *x0 = c < *x0 ? c : *x0;
                *y1 = y + 1 > *y1 ? y + 1 : *y1;
                *x1 = c + 1 > *x1 ? c + 1 : *x1;
            }
    return n;
}

static void test_block_occludes_one_k_by_k_square_per_example(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "block");
    enum { R = 500, D = 784 };
    float *x = inputs(R * D, 21, 0.1f, 0.9f), *xt = output(R * D);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 1, "k", 10.0);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    for (size_t r = 0; r < R; r++) {
        unsigned y0, x0, y1, x1;
        size_t n = changed_box(x + r * D, xt + r * D, &y0, &x0, &y1, &x1);
        if (n != 100 || y1 - y0 != 10 || x1 - x0 != 10)
            fail_msg("row %zu: %zu pixels changed in a box [%u, %u) x [%u, %u), not one 10 x 10 "
                     "square", r, n, y0, y1, x0, x1);
        for (unsigned y = y0; y < y1; y++)
            for (unsigned c = x0; c < x1; c++)
                assert_true(xt[r * D + y * 28 + c] == 0.0f);
    }
    free(x);
    free(xt);
}

/* The square's top-left corner is uniform over the 19 x 19 places a 10 x 10
 * square fits in 28 x 28: each row and column within 5 binomial sigmas, and
 * the joint counts by a chi-square within 5 sigmas of its 360 degrees of
 * freedom. */
static void test_block_position_is_uniform_over_the_image(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "block");
    enum { R = 20000, D = 784, P = 19 };
    float *x = inputs((size_t)R * D, 22, 0.1f, 0.9f), *xt = output((size_t)R * D);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 1, "k", 10.0);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    size_t joint[P][P] = {{0}}, rows[P] = {0}, cols[P] = {0};
    for (size_t r = 0; r < R; r++) {
        unsigned y0, x0, y1, x1;
        assert_int_equal(changed_box(x + r * D, xt + r * D, &y0, &x0, &y1, &x1), 100);
        assert_true(y0 < P && x0 < P);
        joint[y0][x0]++;
        rows[y0]++;
        cols[x0]++;
    }
    for (int i = 0; i < P; i++) {
        assert_binomial(rows[i], R, 1.0 / P, "squares starting in this row");
        assert_binomial(cols[i], R, 1.0 / P, "squares starting in this column");
    }
    double want = (double)R / (P * P), chi2 = 0.0;
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++)
            chi2 += ((double)joint[i][j] - want) * ((double)joint[i][j] - want) / want;
    double dof = P * P - 1;
    if (!(chi2 <= dof + 5.0 * sqrt(2.0 * dof)))
        fail_msg("chi-square of the square's corner over %d places: %.1f for %.0f degrees of "
                 "freedom", P * P, chi2, dof);
    free(x);
    free(xt);
}

static void test_block_noise_fill_is_uniform_in_lo_hi(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "block");
    enum { R = 200, D = 784 };
    float *x = inputs(R * D, 23, 0.1f, 0.9f), *xt = output(R * D);
    daecl_param_value values[16];
    defaults(plugin, values);
    set_param(plugin, values, "k", 8, 0);
    for (uint32_t i = 0; i < plugin->n_params; i++)
        if (strcmp(plugin->params[i].name, "fill") == 0)
            values[i].str = "noise";
    set_param(plugin, values, "noise", 2.0, 3.0);
    float params[DAECL_MAX_PACKED_PARAMS];
    daecl_params_pack(plugin->params, plugin->n_params, values, params);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    size_t n = 0;
    double sum = 0.0;
    for (size_t i = 0; i < (size_t)R * D; i++)
        if (xt[i] != x[i]) {
            assert_true(xt[i] >= 2.0f && xt[i] < 3.0f);
            n++;
            sum += xt[i];
        }
    assert_int_equal(n, (size_t)R * 64);
    double mean = sum / (double)n, se = sqrt(1.0 / 12.0 / (double)n);
    if (!(fabs(mean - 2.5) <= 5.0 * se))
        fail_msg("noise fill averages %.5f, not 2.5 +- %.5f", mean, 5.0 * se);
    free(x);
    free(xt);
}

static void test_block_larger_than_the_image_covers_it(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "block");
    enum { R = 3, D = 784 };
    float *x = inputs(R * D, 24, 0.1f, 0.9f), *xt = output(R * D);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 2, "k", 40.0, "value", 0.5);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    for (size_t i = 0; i < (size_t)R * D; i++)
        assert_true(xt[i] == 0.5f);
    free(x);
    free(xt);
}

/* ---- patch_mask ------------------------------------------------------------- */

/* Every p x p patch (cut short at the right and bottom edges) is all
 * masked or all kept; the masked patches are about q of all, and so are
 * the masked pixels when p divides the side. */
static void check_patches(int p, double q)
{
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "patch_mask");
    enum { R = 2000, D = 784 };
    float *x = inputs((size_t)R * D, 25, 0.1f, 0.9f), *xt = output((size_t)R * D);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 2, "p", (double)p, "q", q);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    int across = (28 + p - 1) / p;
    size_t masked = 0, pixels = 0;
    for (size_t r = 0; r < R; r++)
        for (int py = 0; py < across; py++)
            for (int px = 0; px < across; px++) {
                size_t n = 0, m = 0;
                for (int y = py * p; y < (py + 1) * p && y < 28; y++)
                    for (int c = px * p; c < (px + 1) * p && c < 28; c++) {
                        float v = xt[r * D + (size_t)y * 28 + (size_t)c];
                        n++;
                        m += v == 0.0f;
                        if (v != 0.0f)
                            assert_true(v == x[r * D + (size_t)y * 28 + (size_t)c]);
                    }
                if (m != 0 && m != n)
                    fail_msg("p = %d: row %zu patch (%d, %d) has %zu of %zu pixels masked", p, r,
                             py, px, m, n);
                masked += m == n;
                pixels += m;
            }
    assert_binomial(masked, (size_t)R * across * across, q, "masked patches");
    if (28 % p == 0)
        assert_binomial(pixels / ((size_t)p * p), (size_t)R * across * across, q,
                        "masked pixels / patch size");
    free(x);
    free(xt);
}

static void test_patch_mask_masks_about_q_of_the_patches(void **state)
{
    (void)state;
    check_patches(4, 0.25);
    check_patches(7, 0.5);
    check_patches(5, 0.3); /* 28 = 5 * 5 + 3: the last patches are 3 wide */
}

static void test_patch_mask_q0_keeps_all_and_q1_masks_all(void **state)
{
    (void)state;
    const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, "patch_mask");
    enum { R = 10, D = 784 };
    float *x = inputs(R * D, 26, 0.1f, 0.9f), *xt = output(R * D);
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(plugin, params, 1, "q", 0.0);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    assert_memory_equal(x, xt, sizeof(float) * R * D);
    test_pack_params(plugin, params, 2, "q", 1.0, "value", -1.0);
    apply_shaped(plugin->ops, x, xt, R, D, &img, &key0, params);
    for (size_t i = 0; i < (size_t)R * D; i++)
        assert_true(xt[i] == -1.0f);
    free(x);
    free(xt);
}

/* Channels of a (3, 8, 8) example share one pattern, for both plugins. */
static void test_row_plugins_share_the_pattern_across_planes(void **state)
{
    (void)state;
    const char *const names[] = {"block", "patch_mask"};
    const daecl_shape rgb = {3, {3, 8, 8, 1}};
    enum { R = 50, D = 192 };
    float *x = inputs(R * D, 27, 0.1f, 0.9f), *xt = output(R * D);
    for (int k = 0; k < 2; k++) {
        const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, names[k]);
        float params[DAECL_MAX_PACKED_PARAMS];
        if (k == 0)
            test_pack_params(plugin, params, 1, "k", 3.0);
        else
            test_pack_params(plugin, params, 2, "p", 2.0, "q", 0.5);
        apply_shaped(plugin->ops, x, xt, R, D, &rgb, &key0, params);
        size_t changed = 0;
        for (size_t r = 0; r < R; r++)
            for (size_t i = 0; i < 64; i++) {
                int m0 = xt[r * D + i] != x[r * D + i];
                changed += m0;
                for (size_t c = 1; c < 3; c++)
                    if ((xt[r * D + c * 64 + i] != x[r * D + c * 64 + i]) != m0)
                        fail_msg("%s: row %zu pixel %zu masked in plane 0 but not in plane %zu "
                                 "or the reverse", names[k], r, i, c);
            }
        assert_true(changed > 0);
    }
    free(x);
    free(xt);
}

/* ---- every noisy plugin --------------------------------------------------------- */

static const char *const noisy[] = {"masking", "gaussian", "salt_pepper", "block", "patch_mask"};
enum { N_NOISY = sizeof noisy / sizeof noisy[0] };

/* (25, 40) examples: the row plugins see an image. */
static const daecl_shape stat_img = {2, {25, 40, 1, 1}};

static void test_corruption_is_deterministic_in_the_key(void **state)
{
    (void)state;
    float *x = inputs(N, 10, 0.1f, 0.9f), *a = output(N), *b = output(N);
    for (int k = 0; k < N_NOISY; k++) {
        const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, noisy[k]);
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(plugin, params, 0);
        apply_shaped(plugin->ops, x, a, ROWS, DIM, &stat_img, &key0, params);
        apply_shaped(plugin->ops, x, b, ROWS, DIM, &stat_img, &key0, params);
        assert_memory_equal(a, b, N * sizeof *a);

        enum { V = 8 };
        daecl_noise_key other[V];
        for (int o = 0; o < V; o++)
            other[o] = key0;
        other[0].epoch++;
        other[1].stream = DAECL_STREAM_EVAL_CORRUPTION;
        other[2].seed++;
        other[3].seed ^= 1ull << 40; /* the seed's high word counts too */
        other[4].stage++;
        other[5].substep++;
        other[6].substep = 0xffff; /* the sub-step's top bits */
        other[7].pos0 += 1;
        for (int o = 0; o < V; o++) {
            apply_shaped(plugin->ops, x, b, ROWS, DIM, &stat_img, &other[o], params);
            if (memcmp(a, b, N * sizeof *a) == 0)
                fail_msg("%s: key variant %d gave the same corruption", noisy[k], o);
        }
    }
    free(x);
    free(a);
    free(b);
}

/* The noise key 2.0's promise: one batch split into 1, 2 or 3 chunks over
 * positions (each call's pos0 its first row's position) draws the same
 * bytes, also where the positions end at 2^32 - 1; and a row's noise is the
 * same whichever batch carries it (the same example at the same position). */
static void test_corruption_in_chunks_over_positions_equals_one_call(void **state)
{
    (void)state;
    enum { R = 37, D = 35 };
    const daecl_shape shape = {2, {5, 7, 1, 1}};
    static const size_t cuts[3][4] = {{0, R, R, R}, {0, 13, R, R}, {0, 5, 25, R}};
    float *x = inputs(R * D, 11, 0.1f, 0.9f), *whole = output(R * D), *parts = output(R * D);
    const uint32_t first[2] = {1000, (uint32_t)(0x100000000ull - R)};
    for (int k = 0; k < N_NOISY; k++) {
        const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, noisy[k]);
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(plugin, params, 0);
        for (int f = 0; f < 2; f++) {
            daecl_noise_key key = key0;
            key.pos0 = first[f];
            apply_shaped(plugin->ops, x, whole, R, D, &shape, &key, params);
            for (int c = 0; c < 3; c++) {
                memset(parts, 0xff, sizeof(float) * R * D);
                for (int i = 0; i < 3; i++) {
                    size_t r0 = cuts[c][i], r1 = cuts[c][i + 1];
                    if (r1 == r0)
                        continue;
                    daecl_noise_key part = key;
                    part.pos0 = key.pos0 + (uint32_t)r0;
                    apply_shaped(plugin->ops, x + r0 * D, parts + r0 * D, r1 - r0, D, &shape,
                                 &part, params);
                }
                if (memcmp(whole, parts, sizeof(float) * R * D) != 0)
                    fail_msg("%s: %d chunk(s) from position %u differ from one call", noisy[k],
                             c + 1, first[f]);
            }
            /* Row 20 alone, at its own position, draws what it drew in the batch. */
            daecl_noise_key one = key;
            one.pos0 = key.pos0 + 20;
            apply_shaped(plugin->ops, x + 20 * D, parts, 1, D, &shape, &one, params);
            assert_memory_equal(parts, whole + 20 * D, sizeof(float) * D);
        }
    }
    free(x);
    free(whole);
    free(parts);
}

static void test_corruption_descriptors_are_complete(void **state)
{
    (void)state;
    const char *const all[] = {"none", "masking", "gaussian", "salt_pepper", "block",
                               "patch_mask"};
    for (int k = 0; k < 6; k++) {
        const daecl_plugin *p = test_plugin(DAECL_KIND_CORRUPTION, all[k]);
        assert_string_equal(p->name, all[k]);
        assert_string_equal(p->version, "1.0.0");
        assert_string_equal(p->license, "MIT");
        assert_true(p->summary && p->summary[0]);
        const daecl_corruption_ops *ops = p->ops;
        assert_int_equal(ops->size, sizeof(daecl_corruption_ops));
        assert_non_null(ops->host_apply);
        assert_non_null(ops->cl_source);
        assert_int_equal(ops->granularity, k >= 4 ? DAECL_GRAIN_ROW : DAECL_GRAIN_ELEMENT);
        for (uint32_t i = 0; i < p->n_params; i++)
            assert_true(p->params[i].doc && p->params[i].doc[0]);
        daecl_err err = {0};
        if (daecl_plugin_validate(p, all[k], &err) != 0)
            fail_msg("%s", err.msg);
    }
}

/* ---- the OpenCL C ---------------------------------------------------------------- */

static void test_corruption_cl_sources_compile_as_opencl_c(void **state)
{
    (void)state;
    const char *kernel = "__kernel void k(__global float *xt, __global const float *x,\n"
                         "                __global const float *p)\n"
                         "{\n"
                         "    size_t i = get_global_id(0);\n"
                         "    xt[i] = daecl_corrupt(x[i], daecl_u4_make((uint)i, 0u, 0u, 0u), p);\n"
                         "}\n";
    const char *const all[] = {"none", "masking", "gaussian", "salt_pepper"};
    for (int k = 0; k < 4; k++) {
        const daecl_corruption_ops *ops = ops_of(all[k]);
        assert_cl_compiles(all[k], ops->cl_source, kernel);
    }
    const char *row_kernel = "__kernel void k(__global float *xt, __global const float *x,\n"
                             "                __global const float *p)\n"
                             "{\n"
                             "    size_t j = get_global_id(0);\n"
                             "    daecl_row row = {1u, 2u, 3u, 4u, 5u, 784u, 2u, {28u, 28u, 1u, 1u}};\n"
                             "    xt[j] = daecl_corrupt_row(x, (uint)j, &row, p);\n"
                             "}\n";
    const char *const rows[] = {"block", "patch_mask"};
    for (int k = 0; k < 2; k++)
        assert_cl_compiles(rows[k], ops_of(rows[k])->cl_source, row_kernel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_is_identity),
        cmocka_unit_test(test_masking_zeroes_about_p_of_inputs),
        cmocka_unit_test(test_masking_p0_is_identity_and_p1_zeroes_all),
        cmocka_unit_test(test_masking_default_p_is_a_quarter),
        cmocka_unit_test(test_gaussian_adds_noise_of_mean_zero_and_variance_sigma2),
        cmocka_unit_test(test_gaussian_noise_is_sigma_times_normal_of_the_element_block),
        cmocka_unit_test(test_gaussian_clip_clamps_into_lo_hi),
        cmocka_unit_test(test_gaussian_sigma0_is_identity),
        cmocka_unit_test(test_salt_pepper_replaces_p_of_inputs_half_by_min_half_by_max),
        cmocka_unit_test(test_salt_pepper_defaults_use_zero_and_one),
        cmocka_unit_test(test_salt_pepper_check_refuses_min_not_below_max),
        cmocka_unit_test(test_block_occludes_one_k_by_k_square_per_example),
        cmocka_unit_test(test_block_position_is_uniform_over_the_image),
        cmocka_unit_test(test_block_noise_fill_is_uniform_in_lo_hi),
        cmocka_unit_test(test_block_larger_than_the_image_covers_it),
        cmocka_unit_test(test_patch_mask_masks_about_q_of_the_patches),
        cmocka_unit_test(test_patch_mask_q0_keeps_all_and_q1_masks_all),
        cmocka_unit_test(test_row_plugins_share_the_pattern_across_planes),
        cmocka_unit_test(test_corruption_is_deterministic_in_the_key),
        cmocka_unit_test(test_corruption_in_chunks_over_positions_equals_one_call),
        cmocka_unit_test(test_corruption_descriptors_are_complete),
        cmocka_unit_test(test_corruption_cl_sources_compile_as_opencl_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
