/* Tests for the corruption plugins (plugins/corruption/): none, masking,
 * gaussian, salt_pepper. Statistics within 5-sigma bounds, the noise
 * addressing of plugin.h, determinism, chunking, the check hooks, and the
 * embedded OpenCL C through clang's front end (cl_syntax.h). */
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

static void apply(const daecl_corruption_ops *ops, const float *x, float *xt, size_t n_rows,
                  size_t dim, const daecl_noise_key *key, const float *params)
{
    daecl_err err = {0};
    int rc = ops->host_apply(x, xt, n_rows, dim, key, params, &err);
    if (rc != 0)
        fail_msg("host_apply failed (%d): %s", rc, err.msg);
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
                                     .step = 3, .elem0 = 0};

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
    daecl_noise_key key = {.seed = 99, .stream = DAECL_STREAM_EVAL_CORRUPTION, .step = 12,
                           .elem0 = 5000};
    apply(ops, x, xt, R, D, &key, params);
    /* plugin.h: element r*dim + j draws block elem0 + r*dim + j, and only it. */
    for (size_t i = 0; i < R * D; i++) {
        daecl_u4 b = daecl_philox_block(99, 0, DAECL_STREAM_EVAL_CORRUPTION, 12,
                                        (uint32_t)(5000 + i), 0);
        float want = x[i] + params[0] * daecl_normal(b.x, b.y);
        assert_memory_equal(&xt[i], &want, sizeof want);
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

/* ---- every noisy plugin --------------------------------------------------------- */

static const char *const noisy[] = {"masking", "gaussian", "salt_pepper"};

static void test_corruption_is_deterministic_in_the_key(void **state)
{
    (void)state;
    float *x = inputs(N, 10, 0.1f, 0.9f), *a = output(N), *b = output(N);
    for (int k = 0; k < 3; k++) {
        const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, noisy[k]);
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(plugin, params, 0);
        apply(plugin->ops, x, a, ROWS, DIM, &key0, params);
        apply(plugin->ops, x, b, ROWS, DIM, &key0, params);
        assert_memory_equal(a, b, N * sizeof *a);

        daecl_noise_key other[4] = {key0, key0, key0, key0};
        other[0].step++;
        other[1].stream = DAECL_STREAM_EVAL_CORRUPTION;
        other[2].seed++;
        other[3].seed ^= 1ull << 40; /* the seed's high word counts too */
        for (int o = 0; o < 4; o++) {
            apply(plugin->ops, x, b, ROWS, DIM, &other[o], params);
            if (memcmp(a, b, N * sizeof *a) == 0)
                fail_msg("%s: key variant %d gave the same corruption", noisy[k], o);
        }
    }
    free(x);
    free(a);
    free(b);
}

static void test_corruption_in_chunks_equals_one_call(void **state)
{
    (void)state;
    enum { R = 37, D = 29, SPLIT = 13 };
    float *x = inputs(R * D, 11, 0.1f, 0.9f), *whole = output(R * D), *parts = output(R * D);
    for (int k = 0; k < 3; k++) {
        const daecl_plugin *plugin = test_plugin(DAECL_KIND_CORRUPTION, noisy[k]);
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(plugin, params, 0);
        daecl_noise_key key = key0;
        key.elem0 = 0xfffffff0u; /* the chunks straddle the 32-bit carry */
        apply(plugin->ops, x, whole, R, D, &key, params);
        apply(plugin->ops, x, parts, SPLIT, D, &key, params);
        key.elem0 += (uint64_t)SPLIT * D;
        apply(plugin->ops, x + SPLIT * D, parts + SPLIT * D, R - SPLIT, D, &key, params);
        assert_memory_equal(whole, parts, sizeof(float) * R * D);
    }
    free(x);
    free(whole);
    free(parts);
}

static void test_corruption_descriptors_are_complete(void **state)
{
    (void)state;
    const char *const all[] = {"none", "masking", "gaussian", "salt_pepper"};
    for (int k = 0; k < 4; k++) {
        const daecl_plugin *p = test_plugin(DAECL_KIND_CORRUPTION, all[k]);
        assert_string_equal(p->name, all[k]);
        assert_string_equal(p->version, "1.0.0");
        assert_string_equal(p->license, "MIT");
        assert_true(p->summary && p->summary[0]);
        const daecl_corruption_ops *ops = p->ops;
        assert_int_equal(ops->size, sizeof(daecl_corruption_ops));
        assert_non_null(ops->host_apply);
        assert_non_null(ops->cl_source);
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
        cmocka_unit_test(test_corruption_is_deterministic_in_the_key),
        cmocka_unit_test(test_corruption_in_chunks_equals_one_call),
        cmocka_unit_test(test_corruption_descriptors_are_complete),
        cmocka_unit_test(test_corruption_cl_sources_compile_as_opencl_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
