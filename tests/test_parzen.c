/* daecl tests — the Parzen-window estimate (core/parzen.c) against a direct
 * double-precision computation written here (exact loops, no GEMM), on the
 * cpu backend and on opencl where the build and machine have it; sigma
 * selection, the standard error, samples equal to the points, chunking, and
 * the float32 GEMM's error on Fashion-MNIST. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/data.h"
#include "core/parzen.h"
#include "core/session.h"
#include "tests/support.h"

#define FMNIST_TEST "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

typedef struct fixture {
    daecl_config *cfg;
    daecl_session *s;
} fixture;

static void fixture_open(fixture *f, const char *backend)
{
    memset(f, 0, sizeof *f);
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "data: {train: unused.idx}\n"
             "model:\n"
             "  encoder: [{units: 3, activation: tanh}]\n"
             "corruption: none\n"
             "likelihood: bernoulli\n"
             "backend: %s\n",
             backend);
    daecl_err err = {0};
    if (daecl_config_load_string(yaml, strlen(yaml), "parzen-test", NULL, 0, test_registry(),
                                 &f->cfg, &err))
        fail_msg("config: %s", err.msg);
    if (daecl_session_create(f->cfg, NULL, &f->s, &err))
        fail_msg("session on %s: %s", backend, err.msg);
}

static void fixture_close(fixture *f)
{
    daecl_session_destroy(f->s);
    daecl_config_destroy(f->cfg);
}

/* True when an OpenCL device exists (the backend must then open). */
static int have_opencl(void)
{
    if (!DAECL_TEST_WITH_OPENCL)
        return 0;
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, "opencl");
    daecl_device_info info[8];
    size_t n = 0;
    daecl_err err = {0};
    return test_list_devices(p->ops, info, 8, &n, &err) == 0 && n > 0;
}

/* ---- the independent reference, in double ---------------------------------- */

/* log (1/n) sum_i N(x; s_i, sigma^2 I) for one point x, exact loops. */
static double ref_ll(const float *samples, size_t n, const float *x, size_t dim, double sigma)
{
    double *e = malloc(n * sizeof *e), top = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double d2 = 0;
        for (size_t c = 0; c < dim; c++) {
            double d = (double)x[c] - (double)samples[i * dim + c];
            d2 += d * d;
        }
        e[i] = -d2 / (2 * sigma * sigma) - 0.5 * (double)dim * log(2 * M_PI * sigma * sigma);
        if (e[i] > top)
            top = e[i];
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += exp(e[i] - top);
    free(e);
    return top + log(sum) - log((double)n);
}

/* The largest |ll - ref| over points and sigmas. */
static double max_error(daecl_session *s, const float *samples, size_t n, const float *points,
                        size_t m, size_t dim, const double *sigmas, size_t n_sigmas,
                        size_t chunk)
{
    double *ll = malloc(m * n_sigmas * sizeof *ll), worst = 0;
    daecl_err err = {0};
    if (daecl_parzen_log_density(s, samples, n, points, m, dim, sigmas, n_sigmas, chunk, ll,
                                 &err))
        fail_msg("parzen: %s", err.msg);
    for (size_t j = 0; j < m; j++)
        for (size_t k = 0; k < n_sigmas; k++) {
            double d = fabs(ll[j * n_sigmas + k] - ref_ll(samples, n, points + j * dim, dim,
                                                          sigmas[k]));
            if (!(d <= worst)) /* NaN counts as worst */
                worst = isnan(d) ? INFINITY : d;
        }
    free(ll);
    return worst;
}

/* 7 samples and 5 points of 6 values in [0, 1), four widths. */
static void check_tiny_set(const char *backend)
{
    fixture f;
    fixture_open(&f, backend);
    float samples[7 * 6], points[5 * 6];
    test_fill_uniform(samples, 7 * 6, 1, 0, 1);
    test_fill_uniform(points, 5 * 6, 2, 0, 1);
    const double sigmas[] = {0.05, 0.2, 1.0, 3.0};
    /* At sigma 0.05 a float32 distance error of 1e-6 moves ll by 2e-4. */
    double worst = max_error(f.s, samples, 7, points, 5, 6, sigmas, 4, 0);
    assert_true(worst < 1e-4);
    fixture_close(&f);
}

static void test_matches_direct_double_on_a_tiny_set_cpu(void **state)
{
    (void)state;
    check_tiny_set("cpu");
}

static void test_matches_direct_double_on_a_tiny_set_opencl(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    check_tiny_set("opencl");
}

static void test_fit_picks_the_width_a_direct_computation_picks(void **state)
{
    (void)state;
    enum { N = 40, M = 30, D = 8, K = 12 };
    fixture f;
    fixture_open(&f, "cpu");
    float samples[N * D], valid[M * D];
    test_fill_uniform(samples, N * D, 3, 0, 1);
    test_fill_uniform(valid, M * D, 4, 0, 1);
    double sigmas[K];
    daecl_err err = {0};
    assert_int_equal(daecl_parzen_grid(0.02, 2.0, K, sigmas, &err), 0);
    assert_close(sigmas[0], 0.02, 1e-15);
    assert_close(sigmas[K - 1], 2.0, 1e-15);
    daecl_parzen_fit_result fit;
    assert_int_equal(daecl_parzen_fit(f.s, samples, N, valid, M, D, sigmas, K, 0, &fit, &err), 0);
    size_t best = 0;
    double best_ll = -INFINITY;
    for (size_t k = 0; k < K; k++) {
        double sum = 0;
        for (size_t j = 0; j < M; j++)
            sum += ref_ll(samples, N, valid + j * D, D, sigmas[k]);
        assert_close(fit.valid_ll[k], sum / M, 1e-6);
        if (sum / M > best_ll) {
            best_ll = sum / M;
            best = k;
        }
    }
    /* An interior optimum: neither end of the grid wins by default. */
    assert_true(best > 0 && best < K - 1);
    assert_int_equal(fit.best, best);
    assert_true(fit.sigma == sigmas[best]);
    assert_int_equal(fit.n_sigmas, K);
    fixture_close(&f);
}

/* One sample at 0 in 1-D, sigma 1, points -1, 1, 0, 2: ll + log sqrt(2 pi)
 * = -0.5, -0.5, 0, -2; mean -0.75; sum of squared deviations 2.25, so
 * sd = sqrt(2.25 / 3) and se = sd / 2. */
static void test_score_gives_mean_and_standard_error_over_test_rows(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, "cpu");
    const float sample[] = {0}, test[] = {-1, 1, 0, 2};
    daecl_parzen_score_result r;
    daecl_err err = {0};
    assert_int_equal(daecl_parzen_score(f.s, sample, 1, test, 4, 1, 1.0, 0, &r, &err), 0);
    assert_close(r.mean, -0.75 - 0.5 * log(2 * M_PI), 1e-12);
    assert_close(r.se, sqrt(2.25 / 3) / 2, 1e-12);
    assert_int_equal(r.n_test, 4);
    /* One test row has no standard error: refused, said so. */
    assert_int_equal(daecl_parzen_score(f.s, sample, 1, test, 1, 1, 1.0, 0, &r, &err),
                     DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "at least 2"));
    fixture_close(&f);
}

/* Points that are the samples: each point's own term dominates as sigma
 * shrinks, so ll grows like -dim/2 log(2 pi sigma^2) - log n and must stay
 * finite: the self distance, a cancellation to 0 in float32 at 784
 * values, is clamped there. */
static void test_samples_equal_to_points_grow_as_sigma_shrinks(void **state)
{
    (void)state;
    enum { N = 16, D = 784, K = 5 };
    fixture f;
    fixture_open(&f, "cpu");
    float *x = malloc(N * D * sizeof *x);
    test_fill_uniform(x, N * D, 5, 0, 1);
    const double sigmas[K] = {1.0, 0.5, 0.3, 0.2, 0.1};
    double ll[N * K];
    daecl_err err = {0};
    assert_int_equal(daecl_parzen_log_density(f.s, x, N, x, N, D, sigmas, K, 0, ll, &err), 0);
    for (size_t j = 0; j < N; j++) {
        for (size_t k = 1; k < K; k++) {
            assert_true(isfinite(ll[j * K + k]));
            assert_true(ll[j * K + k] > ll[j * K + k - 1]);
        }
        /* At sigma 0.1 the other samples (|x - s|^2 about 130) add e^-6500. */
        double self = -log((double)N) - 0.5 * D * log(2 * M_PI * 0.01);
        assert_close(ll[j * K + K - 1], self, 1e-5);
    }
    free(x);
    fixture_close(&f);
}

static void test_tiny_chunks_give_the_unchunked_result(void **state)
{
    (void)state;
    enum { N = 23, M = 17, D = 10, K = 3 };
    fixture f;
    fixture_open(&f, "cpu");
    float samples[N * D], points[M * D];
    test_fill_uniform(samples, N * D, 6, 0, 1);
    test_fill_uniform(points, M * D, 7, 0, 1);
    const double sigmas[K] = {0.1, 0.4, 2.0};
    double whole[M * K], tiny[M * K];
    daecl_err err = {0};
    assert_int_equal(daecl_parzen_log_density(f.s, samples, N, points, M, D, sigmas, K, 0, whole,
                                              &err),
                     0);
    /* Blocks of 4 rows: 6 sample blocks (the last of 3) by 5 point blocks. */
    assert_int_equal(daecl_parzen_log_density(f.s, samples, N, points, M, D, sigmas, K, 4, tiny,
                                              &err),
                     0);
    /* Not to the bit: a GEMM of another shape may sum in another order
     * (6e-6 nats seen at sigma 0.1); a misplaced block is off by units. */
    for (size_t i = 0; i < M * K; i++)
        assert_close(tiny[i], whole[i], 1e-5);
    assert_true(max_error(f.s, samples, N, points, M, D, sigmas, K, 1) < 1e-4);
    fixture_close(&f);
}

/* daecl_parzen_nearest against a direct search in double, in blocks of 4
 * rows (so the running minimum crosses blocks), and a point equal to a
 * reference row at distance ~0. */
static void test_nearest_matches_a_direct_search_across_blocks(void **state)
{
    (void)state;
    enum { N = 23, M = 17, D = 10 };
    fixture f;
    fixture_open(&f, "cpu");
    float ref[N * D], points[M * D];
    test_fill_uniform(ref, N * D, 8, 0, 1);
    test_fill_uniform(points, M * D, 9, 0, 1);
    memcpy(points + 5 * D, ref + 19 * D, D * sizeof *points);
    double dist[M];
    daecl_err err = {0};
    assert_int_equal(daecl_parzen_nearest(f.s, ref, N, points, M, D, 4, dist, &err), 0);
    for (size_t j = 0; j < M; j++) {
        double best = INFINITY;
        for (size_t i = 0; i < N; i++) {
            double acc = 0;
            for (size_t c = 0; c < D; c++) {
                double v = (double)points[j * D + c] - ref[i * D + c];
                acc += v * v;
            }
            best = acc < best ? acc : best;
        }
        assert_close(dist[j], sqrt(best), j == 5 ? 3e-3 : 1e-5);
    }
    assert_true(dist[5] < 3e-3);
    fixture_close(&f);
}

static void test_refuses_bad_widths_empty_sets_and_non_finite_values(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, "cpu");
    const float x[2] = {0, 1};
    const double bad[] = {0.5, -1.0};
    double ll[4];
    daecl_err err = {0};
    assert_int_equal(daecl_parzen_log_density(f.s, x, 2, x, 2, 1, bad, 2, 0, ll, &err),
                     DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "window width 1"));
    assert_int_equal(daecl_parzen_log_density(f.s, x, 0, x, 2, 1, bad, 1, 0, ll, &err),
                     DAECL_EINVAL);
    const float nan_row[2] = {0, NAN};
    assert_int_equal(daecl_parzen_log_density(f.s, x, 2, nan_row, 2, 1, bad, 1, 0, ll, &err),
                     DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "point row 1, value 0 is nan"));
    daecl_parzen_fit_result fit;
    assert_int_equal(daecl_parzen_fit(f.s, x, 2, x, 0, 1, bad, 1, 0, &fit, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "validation set is empty"));
    fixture_close(&f);
}

/* 2,000 Fashion-MNIST test images as samples, 300 others as points: the
 * float32 GEMM's error in ll against exact double loops, at widths around
 * those Parzen estimates on MNIST-like data choose (0.1 to 0.3). Measured:
 * a squared-distance error of 6.9e-5 on cpu (1.75e-4 without the centring)
 * and 3.7e-4 on opencl (POCL here), so ll is off by that / (2 sigma^2)
 * nats: 9e-4 (cpu) and 4.7e-3 (opencl) at sigma 0.2. */
static void check_fashion_mnist(const char *backend)
{
    daecl_dataset *ds = NULL;
    daecl_err err = {0};
    if (daecl_dataset_load(FMNIST_TEST, 2300, 0, &ds, &err))
        skip();
    assert_int_equal(ds->dim, 784);
    fixture f;
    fixture_open(&f, backend);
    const double sigmas[] = {0.05, 0.1, 0.2, 0.3};
    for (size_t k = 0; k < 4; k++) {
        double worst = max_error(f.s, ds->x, 2000, ds->x + 2000 * 784, 300, 784, sigmas + k, 1, 0);
        double d2_err = worst * 2 * sigmas[k] * sigmas[k];
        printf("%s, sigma %.2f: max |ll - ll_double| over 300 points %.3g nats "
               "(squared distance off by %.2g)\n",
               backend, sigmas[k], worst, d2_err);
        assert_true(d2_err < 1e-3);
    }
    fixture_close(&f);
    daecl_dataset_destroy(ds);
}

static void test_float_gemm_error_on_fashion_mnist_is_small_cpu(void **state)
{
    (void)state;
    check_fashion_mnist("cpu");
}

static void test_float_gemm_error_on_fashion_mnist_is_small_opencl(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    check_fashion_mnist("opencl");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_direct_double_on_a_tiny_set_cpu),
        cmocka_unit_test(test_matches_direct_double_on_a_tiny_set_opencl),
        cmocka_unit_test(test_fit_picks_the_width_a_direct_computation_picks),
        cmocka_unit_test(test_score_gives_mean_and_standard_error_over_test_rows),
        cmocka_unit_test(test_samples_equal_to_points_grow_as_sigma_shrinks),
        cmocka_unit_test(test_tiny_chunks_give_the_unchunked_result),
        cmocka_unit_test(test_nearest_matches_a_direct_search_across_blocks),
        cmocka_unit_test(test_refuses_bad_widths_empty_sets_and_non_finite_values),
        cmocka_unit_test(test_float_gemm_error_on_fashion_mnist_is_small_cpu),
        cmocka_unit_test(test_float_gemm_error_on_fashion_mnist_is_small_opencl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
