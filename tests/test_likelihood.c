/* Tests for the likelihood plugins (plugins/likelihood/): bernoulli, gaussian,
 * gaussian_learned, continuous_bernoulli. nll against independent double-precision formulas, grad
 * against central finite differences of them, the blocked layout, row sums,
 * scale and NULL outputs, means, sample statistics, the check hook and the
 * embedded OpenCL C through clang's front end (cl_syntax.h). */
#include "tests/support.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/elementwise.h"
#include "tests/cl_syntax.h"

/* ---- independent references, in double ------------------------------------- */

/* -x log sigmoid(a) - (1 - x) log sigmoid(-a): the cross-entropy form
 * (log sigmoid(t) = -log1p(exp(-t)), finite for |a| up to 700). */
static double bernoulli_nll_ref(double x, const double *a, const float *p)
{
    (void)p;
    return x * log1p(exp(-a[0])) + (1.0 - x) * log1p(exp(a[0]));
}

static double sigmoid_ref(double a)
{
    return a >= 0.0 ? 1.0 / (1.0 + exp(-a)) : exp(a) / (1.0 + exp(a));
}

/* -log of the N(a, sigma^2) density itself. */
static double gaussian_nll_ref(double x, const double *a, const float *p)
{
    double sigma = p[0], d = x - a[0];
    double q = d * d / (2.0 * sigma * sigma);
    if (q < 600.0)
        return -log(exp(-q) / (sigma * sqrt(2.0 * M_PI)));
    return q + log(sigma * sqrt(2.0 * M_PI)); /* the density underflows */
}

/* -log N(x; mu, v) with v = exp(clamp(s)), written with the variance. */
static double learned_nll_ref(double x, const double *a, const float *p)
{
    double s = fmin(fmax(a[1], p[0]), p[1]);
    double v = exp(s), d = x - a[0];
    return 0.5 * log(2.0 * M_PI * v) + d * d / (2.0 * v);
}

/* The continuous Bernoulli as its paper writes it, in the mean parameter
 * lambda = sigmoid(a), in long double: -log(C(lambda) lambda^x (1 -
 * lambda)^(1 - x)), C = 2 atanh(1 - 2 lambda) / (1 - 2 lambda), and C = 2 +
 * 2 t^2 / 3 (t = 1 - 2 lambda) where |t| < 1e-6 (the next term is 2 t^4 / 5). */
static double cb_nll_ref(double x, const double *a, const float *p)
{
    (void)p;
    long double lam = 1.0L / (1.0L + expl(-(long double)a[0]));
    long double t = 1.0L - 2.0L * lam;
    long double C = fabsl(t) < 1e-6L ? 2.0L + 2.0L * t * t / 3.0L : 2.0L * atanhl(t) / t;
    return (double)(-logl(C) - x * logl(lam) - (1.0L - x) * log1pl(-lam));
}

/* Its mean, lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)), and
 * 1/2 - t/6 where |t| < 1e-4 (the next term is below 1e-12). */
static double cb_mean_ref(double a)
{
    long double lam = 1.0L / (1.0L + expl(-(long double)a));
    long double t = 1.0L - 2.0L * lam;
    if (fabsl(t) < 1e-4L)
        return (double)(0.5L - t / 6.0L);
    return (double)(lam / (2.0L * lam - 1.0L) + 1.0L / (2.0L * atanhl(t)));
}

typedef double (*nll_ref_fn)(double x, const double *a, const float *p);

/* ---- calling the plugins ---------------------------------------------------- */

static const daecl_plugin *plugin_of(const char *name)
{
    return test_plugin(DAECL_KIND_LIKELIHOOD, name);
}

static const daecl_likelihood_ops *ops_of(const daecl_plugin *p)
{
    assert_non_null(p->ops);
    return p->ops;
}

static void loss_grad(const daecl_plugin *p, const float *x, const float *a, size_t n_rows,
                      size_t dim, const float *params, float scale, float *nll_rows, float *grad)
{
    daecl_err err = {0};
    int rc = ops_of(p)->host_loss_grad(x, a, n_rows, dim, params, scale, nll_rows, grad, &err);
    if (rc != 0)
        fail_msg("%s: host_loss_grad failed (%d): %s", p->name, rc, err.msg);
}

static float *floats(size_t n)
{
    float *v = calloc(n, sizeof *v);
    assert_non_null(v);
    return v;
}

/* |got - want| <= rel |want| + abs, with a message naming the point. */
static void assert_near(double got, double want, double rel, double abs, const char *what,
                        const char *name, double x, const double *a)
{
    if (!(fabs(got - want) <= rel * fabs(want) + abs))
        fail_msg("%s %s at x = %.9g, a = (%.9g, %.9g): got %.9g, want %.9g", name, what, x, a[0],
                 a[1], got, want);
}

/* Checks nll and grad of every point (x[i], a[i*k .. i*k+k-1]) against the
 * reference: each point is one row of dim 1, so nll_rows[i] is its nll. The
 * gradient is compared with central differences of the double reference. */
static void check_points(const char *name, const float *params, nll_ref_fn ref, size_t n,
                         const float *x, const float *a)
{
    const daecl_plugin *p = plugin_of(name);
    unsigned k = ops_of(p)->params_per_dim;
    float *nll = floats(n), *grad = floats(n * k);
    loss_grad(p, x, a, n, 1, params, 1.0f, nll, grad);
    for (size_t i = 0; i < n; i++) {
        double ad[4] = {0, 0, 0, 0};
        for (unsigned c = 0; c < k; c++)
            ad[c] = a[i * k + c];
        double want = ref(x[i], ad, params);
        assert_true(isfinite(nll[i]));
        /* float rounds each term: allow 2e-6 of the magnitudes involved */
        double mag = 1.0 + fabs(want) + fabs(ad[0]) * (1.0 + fabs(x[i]));
        assert_near(nll[i], want, 0.0, 2e-6 * mag, "nll", name, x[i], ad);
        for (unsigned c = 0; c < k; c++) {
            double h = 1e-3 * fmax(1.0, fabs(ad[c]));
            double up[4], dn[4];
            memcpy(up, ad, sizeof up);
            memcpy(dn, ad, sizeof dn);
            up[c] += h;
            dn[c] -= h;
            double fd = (ref(x[i], up, params) - ref(x[i], dn, params)) / (2.0 * h);
            assert_true(isfinite(grad[i * k + c]));
            assert_near(grad[i * k + c], fd, 1e-4, 1e-6, c ? "grad[1]" : "grad[0]", name, x[i],
                        ad);
        }
    }
    free(nll);
    free(grad);
}

/* n random points: x in [xlo, xhi), a[c] in [alo[c], ahi[c]). */
static void random_points(size_t n, unsigned k, uint64_t seed, float xlo, float xhi,
                          const float *alo, const float *ahi, float *x, float *a)
{
    test_fill_uniform(x, n, seed, xlo, xhi);
    float *col = floats(n);
    for (unsigned c = 0; c < k; c++) {
        test_fill_uniform(col, n, seed + 1 + c, alo[c], ahi[c]);
        for (size_t i = 0; i < n; i++)
            a[i * k + c] = col[i];
    }
    free(col);
}

/* ---- bernoulli --------------------------------------------------------------- */

static void test_bernoulli_nll_and_grad_match_reference(void **state)
{
    (void)state;
    enum { N = 2000 };
    float x[N], a[N];
    const float lo[] = {-8.0f}, hi[] = {8.0f};
    random_points(N, 1, 1, 0.0f, 1.0f, lo, hi, x, a);
    x[0] = 0.0f; /* the binary ends */
    x[1] = 1.0f;
    check_points("bernoulli", NULL, bernoulli_nll_ref, N, x, a);
}

static void test_bernoulli_is_stable_at_extreme_logits(void **state)
{
    (void)state;
    const float logits[] = {-100.0f, -50.0f, -20.0f, 20.0f, 50.0f, 100.0f};
    const float xs[] = {0.0f, 0.3f, 1.0f};
    enum { N = 18 };
    float x[N], a[N];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) {
            x[i * 3 + j] = xs[j];
            a[i * 3 + j] = logits[i];
        }
    check_points("bernoulli", NULL, bernoulli_nll_ref, N, x, a);
    /* The gradient sigmoid(a) - x is exact to float (within one ulp of
     * libm's expf where sigmoid underflows towards 0). */
    float grad[N];
    loss_grad(plugin_of("bernoulli"), x, a, N, 1, NULL, 1.0f, NULL, grad);
    for (int i = 0; i < N; i++) {
        /* 1 - x is exact in double; sigmoid(-a) is tiny where a is large */
        double want = a[i] >= 0.0f ? (1.0 - x[i]) - sigmoid_ref(-a[i]) : sigmoid_ref(a[i]) - x[i];
        float wf = (float)want;
        double ulp = fmax(nextafterf(fabsf(wf), INFINITY) - fabsf(wf), FLT_TRUE_MIN);
        if (!(fabs(grad[i] - want) <= ulp))
            fail_msg("bernoulli grad at a = %g, x = %g: %.9g, want %.9g", (double)a[i],
                     (double)x[i], (double)grad[i], want);
    }
}

static void test_bernoulli_mean_is_sigmoid(void **state)
{
    (void)state;
    enum { N = 1000 };
    float a[N], mean[N];
    test_fill_uniform(a, N, 3, -30.0f, 30.0f);
    a[0] = -100.0f;
    a[1] = 100.0f;
    a[2] = 0.0f;
    daecl_err err = {0};
    assert_int_equal(ops_of(plugin_of("bernoulli"))->host_mean(a, mean, 10, N / 10, NULL, &err),
                     0);
    for (int i = 0; i < N; i++) {
        double want = sigmoid_ref(a[i]);
        /* sigmoid(-100) is subnormal in float: allow its spacing too */
        if (!(fabs(mean[i] - want) <= 1e-6 * want + 2.0 * FLT_TRUE_MIN))
            fail_msg("bernoulli mean at a = %g: %.9g, want %.9g", (double)a[i],
                     (double)mean[i], want);
    }
    assert_true(mean[1] == 1.0f && mean[2] == 0.5f);
}

static void test_bernoulli_samples_are_one_with_probability_sigmoid(void **state)
{
    (void)state;
    enum { ROWS = 20000, D = 5 };
    const float logit[D] = {-2.0f, -0.5f, 0.0f, 1.0f, 3.0f};
    float *a = floats(ROWS * D), *out = floats(ROWS * D);
    for (size_t r = 0; r < ROWS; r++)
        memcpy(a + r * D, logit, sizeof logit);
    daecl_noise_key key = {.seed = 5, .stream = DAECL_STREAM_SAMPLE, .substep = 1};
    daecl_err err = {0};
    assert_int_equal(
        ops_of(plugin_of("bernoulli"))->host_sample(a, out, ROWS, D, &key, NULL, &err), 0);
    for (int j = 0; j < D; j++) {
        size_t ones = 0;
        for (size_t r = 0; r < ROWS; r++) {
            float v = out[r * D + j];
            assert_true(v == 0.0f || v == 1.0f);
            ones += v == 1.0f;
        }
        double p = sigmoid_ref(logit[j]), sd = sqrt(ROWS * p * (1.0 - p));
        if (!(fabs((double)ones - ROWS * p) <= 5.0 * sd))
            fail_msg("bernoulli a = %g: %zu ones of %d, expected %.1f", (double)logit[j], ones,
                     ROWS, ROWS * p);
    }
    free(a);
    free(out);
}

/* ---- gaussian ------------------------------------------------------------------ */

static void test_gaussian_nll_and_grad_match_reference(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian");
    enum { N = 2000 };
    float x[N], a[N];
    const float lo[] = {-3.0f}, hi[] = {3.0f};
    const double sigmas[] = {0.3, 1.0, 2.5, 1e-3};
    for (int s = 0; s < 4; s++) {
        float params[DAECL_MAX_PACKED_PARAMS];
        assert_int_equal(test_pack_params(p, params, 1, "sigma", sigmas[s]), 1);
        random_points(N, 1, 10 + s, -3.0f, 3.0f, lo, hi, x, a);
        x[0] = a[0]; /* z = 0 */
        a[1] = 1e4f; /* far off: nll large but finite */
        check_points("gaussian", params, gaussian_nll_ref, N, x, a);
    }
}

static void test_gaussian_mean_is_a_and_default_sigma_is_one(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian");
    float params[DAECL_MAX_PACKED_PARAMS];
    assert_int_equal(test_pack_params(p, params, 0), 1);
    assert_true(params[0] == 1.0f);
    enum { N = 300 };
    float a[N], mean[N];
    test_fill_uniform(a, N, 20, -100.0f, 100.0f);
    daecl_err err = {0};
    assert_int_equal(ops_of(p)->host_mean(a, mean, 3, N / 3, params, &err), 0);
    assert_memory_equal(a, mean, sizeof a);
}

static void test_gaussian_samples_have_mean_a_and_variance_sigma2(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian");
    enum { N = 100000 };
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(p, params, 1, "sigma", 2.0);
    float *a = floats(N), *out = floats(N);
    for (size_t i = 0; i < N; i++)
        a[i] = 0.7f;
    daecl_noise_key key = {.seed = 6, .stream = DAECL_STREAM_SAMPLE, .substep = 2, .pos0 = 77};
    daecl_err err = {0};
    assert_int_equal(ops_of(p)->host_sample(a, out, 100, N / 100, &key, params, &err), 0);
    double sum = 0.0, sum2 = 0.0;
    for (size_t i = 0; i < N; i++) {
        sum += out[i];
        sum2 += (double)out[i] * out[i];
    }
    double mean = sum / N, var = sum2 / N - mean * mean;
    assert_true(fabs(mean - 0.7) <= 5.0 * 2.0 / sqrt(N));
    assert_true(fabs(var - 4.0) <= 5.0 * 4.0 * sqrt(2.0 / N));
    /* Element j of row r draws block j of position pos0 + r (plugin.h), bit
     * for bit; the sub-step sits in bits 16.. of the fourth counter word. */
    for (size_t i = 0; i < 2000; i += 7) {
        size_t r = i / (N / 100), j = i % (N / 100);
        daecl_u4 b = daecl_philox_block(6, 0, DAECL_STREAM_SAMPLE | 2u << 16, 0,
                                        (uint32_t)(77 + r), (uint32_t)j);
        float want = 0.7f + params[0] * daecl_normal(b.x, b.y);
        assert_memory_equal(&out[i], &want, sizeof want);
    }
    free(a);
    free(out);
}

/* ---- gaussian_learned ----------------------------------------------------------- */

static void test_gaussian_learned_nll_and_grad_match_reference(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian_learned");
    float params[DAECL_MAX_PACKED_PARAMS];
    assert_int_equal(test_pack_params(p, params, 0), 2);
    assert_true(params[0] == -9.0f && params[1] == 9.0f);
    enum { N = 2000 };
    float x[N], a[2 * N];
    const float lo[] = {-3.0f, -4.0f}, hi[] = {3.0f, 4.0f};
    random_points(N, 2, 30, -3.0f, 3.0f, lo, hi, x, a);
    /* Near, not at, the clamp ends, and a far-off mean. */
    a[1] = -8.9f;
    a[3] = 8.9f;
    a[4] = 1e6f;
    a[5] = -8.5f;
    check_points("gaussian_learned", params, learned_nll_ref, N, x, a);
    /* A narrower clamp, from the parameters. */
    test_pack_params(p, params, 2, "min_log_var", -2.0, "max_log_var", 1.0);
    const float lo2[] = {-3.0f, -1.9f}, hi2[] = {3.0f, 0.9f};
    random_points(N, 2, 31, -3.0f, 3.0f, lo2, hi2, x, a);
    check_points("gaussian_learned", params, learned_nll_ref, N, x, a);
}

/* At and beyond the clamp: nll uses the clamped value, grad_s is 0 outside
 * [min, max] (the clamp stops the gradient), and at an end it is the
 * one-sided derivative from inside, as torch.clamp passes it. */
static void test_gaussian_learned_clamp_stops_log_variance_gradient(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian_learned");
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(p, params, 2, "min_log_var", -3.0, "max_log_var", 2.0);
    const float s_vals[] = {-1000.0f, -50.0f, -3.5f, -3.0f, 2.0f, 2.5f, 40.0f, 1000.0f};
    enum { NS = 8, N = NS * 2 };
    float x[N], a[2 * N], nll[N], grad[2 * N];
    for (int i = 0; i < N; i++) {
        x[i] = i % 2 ? 1.5f : -0.25f;
        a[2 * i] = 0.5f;
        a[2 * i + 1] = s_vals[i / 2];
    }
    loss_grad(p, x, a, N, 1, params, 1.0f, nll, grad);
    for (int i = 0; i < N; i++) {
        double s = a[2 * i + 1];
        double ad[4] = {a[2 * i], s, 0, 0};
        double want = learned_nll_ref(x[i], ad, params);
        assert_near(nll[i], want, 1e-6, 1e-6, "nll", "gaussian_learned", x[i], ad);
        double h = 1e-4;
        double up[4] = {ad[0] + h, s, 0, 0}, dn[4] = {ad[0] - h, s, 0, 0};
        double fd_mu = (learned_nll_ref(x[i], up, params) - learned_nll_ref(x[i], dn, params)) /
                       (2.0 * h);
        assert_near(grad[2 * i], fd_mu, 1e-4, 1e-6, "grad_mu", "gaussian_learned", x[i], ad);
        if (s < params[0] || s > params[1]) {
            assert_true(grad[2 * i + 1] == 0.0f);
        } else {
            /* Second-order one-sided difference from inside the range. */
            double dir = s == params[1] ? -1.0 : 1.0;
            double f0 = learned_nll_ref(x[i], ad, params);
            double a1[4] = {ad[0], s + dir * h, 0, 0}, a2[4] = {ad[0], s + 2.0 * dir * h, 0, 0};
            double fd = dir * (-3.0 * f0 + 4.0 * learned_nll_ref(x[i], a1, params) -
                               learned_nll_ref(x[i], a2, params)) /
                        (2.0 * h);
            assert_near(grad[2 * i + 1], fd, 1e-4, 1e-6, "grad_s", "gaussian_learned", x[i],
                        ad);
            assert_true(grad[2 * i + 1] != 0.0f);
        }
    }
}

static void test_gaussian_learned_mean_is_mu_and_layout_is_blocked(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian_learned");
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(p, params, 0);
    enum { R = 3, D = 7 };
    float a[R * 2 * D], mean[R * D], x[R * D], nll[R], grad[R * 2 * D];
    /* a[r*2*D + j] = mu, a[r*2*D + D + j] = s (plugin.h, blocked per row). */
    for (int r = 0; r < R; r++)
        for (int j = 0; j < D; j++) {
            a[r * 2 * D + j] = (float)(10 * r + j);
            a[r * 2 * D + D + j] = -1.0f + 0.25f * (float)j;
            x[r * D + j] = (float)(10 * r + j) + 0.5f;
        }
    daecl_err err = {0};
    assert_int_equal(ops_of(p)->host_mean(a, mean, R, D, params, &err), 0);
    loss_grad(p, x, a, R, D, params, 1.0f, nll, grad);
    for (int r = 0; r < R; r++) {
        double sum = 0.0;
        for (int j = 0; j < D; j++) {
            assert_true(mean[r * D + j] == a[r * 2 * D + j]);
            double ad[4] = {a[r * 2 * D + j], a[r * 2 * D + D + j], 0, 0};
            sum += learned_nll_ref(x[r * D + j], ad, params);
            /* grad_mu = (mu - x) exp(-s) = -0.5 exp(-s) */
            assert_near(grad[r * 2 * D + j], -0.5 * exp(-ad[1]), 1e-6, 0.0, "grad_mu",
                        "gaussian_learned", x[r * D + j], ad);
            assert_near(grad[r * 2 * D + D + j], 0.5 * (1.0 - 0.25 * exp(-ad[1])), 1e-6, 1e-7,
                        "grad_s", "gaussian_learned", x[r * D + j], ad);
        }
        assert_near(nll[r], sum, 1e-6, 1e-6, "row nll", "gaussian_learned", 0.0,
                    (double[2]){(double)r, 0.0});
    }
}

static void test_gaussian_learned_samples_use_the_clamped_variance(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian_learned");
    float params[DAECL_MAX_PACKED_PARAMS];
    test_pack_params(p, params, 0); /* clamp [-9, 9] */
    enum { ROWS = 50000, D = 2 };
    float *a = floats(ROWS * 2 * D), *out = floats(ROWS * D);
    for (size_t r = 0; r < ROWS; r++) {
        a[r * 2 * D + 0] = -1.0f; /* mu, dimension 0 */
        a[r * 2 * D + 1] = 4.0f;  /* mu, dimension 1 */
        a[r * 2 * D + 2] = 0.8f;  /* s, dimension 0 */
        a[r * 2 * D + 3] = 20.0f; /* s, dimension 1: clamped to 9 */
    }
    daecl_noise_key key = {.seed = 7, .stream = DAECL_STREAM_SAMPLE, .substep = 3};
    daecl_err err = {0};
    assert_int_equal(ops_of(p)->host_sample(a, out, ROWS, D, &key, params, &err), 0);
    const double mu[D] = {-1.0, 4.0}, var[D] = {exp(0.8), exp(9.0)};
    for (int j = 0; j < D; j++) {
        double sum = 0.0, sum2 = 0.0;
        for (size_t r = 0; r < ROWS; r++) {
            double v = out[r * D + j];
            sum += v;
            sum2 += v * v;
        }
        double m = sum / ROWS, v = sum2 / ROWS - m * m;
        if (!(fabs(m - mu[j]) <= 5.0 * sqrt(var[j] / ROWS)))
            fail_msg("gaussian_learned dimension %d: sample mean %g, want %g", j, m, mu[j]);
        if (!(fabs(v - var[j]) <= 5.0 * var[j] * sqrt(2.0 / ROWS)))
            fail_msg("gaussian_learned dimension %d: sample variance %g, want %g", j, v, var[j]);
    }
    free(a);
    free(out);
}

static void test_gaussian_learned_check_refuses_min_not_below_max(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("gaussian_learned");
    assert_non_null(p->check);
    daecl_param_value values[2];
    memcpy(values, test_default_values(p), sizeof values);
    daecl_err err = {0};
    assert_int_equal(p->check(values, &err), 0);
    values[0].num[0] = 3.0;
    values[1].num[0] = -3.0;
    assert_int_equal(p->check(values, &err), DAECL_ECONFIG);
    assert_int_equal(err.status, DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "min_log_var"));
    values[1].num[0] = 3.0;
    memset(&err, 0, sizeof err);
    assert_int_equal(p->check(values, &err), DAECL_ECONFIG);
    assert_true(err.msg[0] != '\0');
}

/* ---- continuous_bernoulli ------------------------------------------------------ */

static void test_continuous_bernoulli_nll_and_grad_match_the_papers_formula(void **state)
{
    (void)state;
    enum { N = 2000 };
    float x[N], a[N];
    const float lo[] = {-12.0f}, hi[] = {12.0f};
    random_points(N, 1, 11, 0.0f, 1.0f, lo, hi, x, a);
    /* lambda = 1/2 (the removable singularity), near it, the series' edge
     * (|a| = 1) on both sides, and steep logits; at both ends of [0, 1] */
    const float special[] = {0.0f, 1e-6f, -1e-3f, 0.999999f, 1.0f, -1.0f, 1.000001f, 2.0f,
                             -20.0f, 20.0f};
    for (int i = 0; i < 10; i++) {
        a[2 * i] = a[2 * i + 1] = special[i];
        x[2 * i] = 0.0f;
        x[2 * i + 1] = 1.0f;
    }
    check_points("continuous_bernoulli", NULL, cb_nll_ref, N, x, a);
}

/* The series (|a| < 1) and the closed forms (|a| >= 1) meet: across the
 * switch, nll, grad and mean move by their slope times the step and at
 * most 2 float ulps of max(|value|, 1/2) more (docs/plugins.md: how close
 * the branches of a piecewise formula must meet). */
static void test_continuous_bernoulli_branches_meet_within_two_ulps(void **state)
{
    (void)state;
    const daecl_plugin *p = plugin_of("continuous_bernoulli");
    const float xs[] = {0.0f, 0.3f, 1.0f};
    for (int s = -1; s <= 1; s += 2)
        for (int i = 0; i < 3; i++) {
            float a[2] = {nextafterf((float)s, 0.0f), (float)s}, x[2] = {xs[i], xs[i]};
            float nll[2], grad[2], mean[2];
            daecl_err err = {0};
            loss_grad(p, x, a, 2, 1, NULL, 1.0f, nll, grad);
            assert_int_equal(ops_of(p)->host_mean(a, mean, 2, 1, NULL, &err), 0);
            double step = (double)a[1] - a[0];
            const float *v[3] = {nll, grad, mean};
            const double slope[3] = {grad[1], 0.0, 0.0}; /* grad and mean change by 1e-8 */
            for (int q = 0; q < 3; q++) {
                double jump = fabs((double)v[q][1] - v[q][0] - slope[q] * step);
                float big = fmaxf(fabsf(v[q][1]), 0.5f);
                double ulp = nextafterf(big, INFINITY) - big;
                if (!(jump <= 2.0 * ulp + 1e-8))
                    fail_msg("at a = %g, x = %g, %s jumps by %.3g across the switch (%.1f ulps)",
                             (double)a[1], (double)x[0], q == 0 ? "nll" : q == 1 ? "grad" : "mean",
                             jump, jump / ulp);
            }
        }
}

static void test_continuous_bernoulli_mean_matches_the_papers_formula(void **state)
{
    (void)state;
    enum { N = 1000 };
    float a[N], mean[N];
    test_fill_uniform(a, N, 12, -30.0f, 30.0f);
    const float special[] = {0.0f, 1e-7f, -1e-4f, 0.5f, 0.999999f, 1.0f, -1.0f, 100.0f, -100.0f};
    memcpy(a, special, sizeof special);
    daecl_err err = {0};
    const daecl_plugin *p = plugin_of("continuous_bernoulli");
    assert_int_equal(ops_of(p)->host_mean(a, mean, 10, N / 10, NULL, &err), 0);
    for (int i = 0; i < N; i++) {
        double want = fabsf(a[i]) > 40.0f ? (a[i] > 0 ? 1.0 - 1.0 / a[i] : -1.0 / a[i])
                                          : cb_mean_ref(a[i]);
        if (!(fabs(mean[i] - want) <= 3e-7))
            fail_msg("continuous_bernoulli mean at a = %g: %.9g, want %.9g", (double)a[i],
                     (double)mean[i], want);
        assert_true(mean[i] > 0.0f && mean[i] < 1.0f);
    }
}

/* Samples lie in [0, 1] and follow the CDF F(x) = (e^(a x) - 1) / (e^a - 1)
 * (x itself at a = 0): at three points of x, the fraction of 20,000
 * samples below x is within 5 standard errors of F(x). */
static void test_continuous_bernoulli_samples_follow_its_cdf(void **state)
{
    (void)state;
    enum { S = 20000 };
    const daecl_plugin *p = plugin_of("continuous_bernoulli");
    const float logits[] = {-50.0f, -6.0f, -0.7f, 0.0f, 1e-7f, 0.4f, 1.0f, 3.0f, 50.0f};
    const double at[] = {0.1, 0.5, 0.9};
    float *a = floats(S), *out = floats(S);
    for (int l = 0; l < 9; l++) {
        for (size_t i = 0; i < S; i++)
            a[i] = logits[l];
        daecl_noise_key key = {.seed = 5, .stream = DAECL_STREAM_SAMPLE, .epoch = (uint32_t)l};
        daecl_err err = {0};
        assert_int_equal(ops_of(p)->host_sample(a, out, 1, S, &key, NULL, &err), 0);
        for (size_t i = 0; i < S; i++)
            if (!(out[i] >= 0.0f && out[i] <= 1.0f))
                fail_msg("sample %zu at a = %g is %g, outside [0, 1]", i, (double)logits[l],
                         (double)out[i]);
        for (int q = 0; q < 3; q++) {
            long double e = logits[l];
            double F = e == 0 ? at[q] : (double)(expm1l(e * at[q]) / expm1l(e));
            size_t below = 0;
            for (size_t i = 0; i < S; i++)
                below += out[i] <= at[q];
            double frac = (double)below / S, se = sqrt(fmax(F * (1.0 - F), 1e-9) / S);
            if (!(fabs(frac - F) <= 5.0 * se + 1e-9))
                fail_msg("a = %g: %.5f of samples below %g, the CDF says %.5f (+- %.2g)",
                         (double)logits[l], frac, at[q], F, se);
        }
    }
    free(a);
    free(out);
}

/* ---- every likelihood ------------------------------------------------------------ */

static const char *const all[] = {"bernoulli", "gaussian", "gaussian_learned",
                                   "continuous_bernoulli"};
enum { N_ALL = sizeof all / sizeof all[0] };

/* Rows of D dimensions with values where every likelihood is smooth. */
static void row_data(const daecl_plugin *p, size_t rows, size_t dim, float *x, float *a)
{
    unsigned k = ops_of(p)->params_per_dim;
    test_fill_uniform(x, rows * dim, 40, 0.0f, 1.0f);
    test_fill_uniform(a, rows * k * dim, 41, -2.0f, 2.0f);
}

static void test_row_nll_is_the_sum_of_element_nll(void **state)
{
    (void)state;
    enum { R = 4, D = 50 };
    for (int l = 0; l < N_ALL; l++) {
        const daecl_plugin *p = plugin_of(all[l]);
        unsigned k = ops_of(p)->params_per_dim;
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(p, params, 0);
        float x[R * D], a[R * 2 * D], rows[R], one[1], a1[2];
        row_data(p, R, D, x, a);
        loss_grad(p, x, a, R, D, params, 1.0f, rows, NULL);
        for (size_t r = 0; r < R; r++) {
            double sum = 0.0;
            for (size_t j = 0; j < D; j++) {
                for (unsigned c = 0; c < k; c++)
                    a1[c] = a[r * k * D + c * D + j];
                loss_grad(p, &x[r * D + j], a1, 1, 1, params, 1.0f, one, NULL);
                sum += one[0];
            }
            /* Summed in double, rounded once: the same bits. */
            if (rows[r] != (float)sum)
                fail_msg("%s row %zu: nll_rows %.9g, sum of elements %.9g", all[l], r,
                         (double)rows[r], sum);
        }
    }
}

static void test_scale_multiplies_grad_and_null_outputs_are_skipped(void **state)
{
    (void)state;
    enum { R = 4, D = 50 };
    for (int l = 0; l < N_ALL; l++) {
        const daecl_plugin *p = plugin_of(all[l]);
        unsigned k = ops_of(p)->params_per_dim;
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(p, params, 0);
        float x[R * D], a[R * 2 * D], rows[R], rows2[R], g1[R * 2 * D], g2[R * 2 * D];
        row_data(p, R, D, x, a);
        loss_grad(p, x, a, R, D, params, 1.0f, rows, g1);
        const float scales[] = {0.25f, 1.0f / 3.0f, -2.0f};
        for (int s = 0; s < 3; s++) {
            memset(rows2, 0xff, sizeof rows2);
            loss_grad(p, x, a, R, D, params, scales[s], rows2, g2);
            assert_memory_equal(rows, rows2, sizeof rows); /* nll is not scaled */
            for (size_t i = 0; i < R * k * D; i++) {
                float want = scales[s] * g1[i];
                assert_memory_equal(&g2[i], &want, sizeof want);
            }
        }
        /* NULL nll_rows: grad alone, the same bits. */
        memset(g2, 0, sizeof g2);
        loss_grad(p, x, a, R, D, params, 1.0f, NULL, g2);
        assert_memory_equal(g1, g2, sizeof(float) * R * k * D);
        /* NULL grad: nll alone, the same bits. */
        memset(rows2, 0, sizeof rows2);
        loss_grad(p, x, a, R, D, params, 1.0f, rows2, NULL);
        assert_memory_equal(rows, rows2, sizeof rows);
        /* Both NULL: nothing to do, still fine. */
        loss_grad(p, x, a, R, D, params, 1.0f, NULL, NULL);
    }
}

static void test_samples_are_deterministic_in_the_key(void **state)
{
    (void)state;
    enum { R = 20, D = 30 };
    for (int l = 0; l < N_ALL; l++) {
        const daecl_plugin *p = plugin_of(all[l]);
        float params[DAECL_MAX_PACKED_PARAMS];
        test_pack_params(p, params, 0);
        float x[R * D], a[R * 2 * D], s1[R * D], s2[R * D];
        row_data(p, R, D, x, a);
        daecl_noise_key key = {.seed = 8, .stream = DAECL_STREAM_SAMPLE, .substep = 4};
        daecl_err err = {0};
        assert_int_equal(ops_of(p)->host_sample(a, s1, R, D, &key, params, &err), 0);
        assert_int_equal(ops_of(p)->host_sample(a, s2, R, D, &key, params, &err), 0);
        assert_memory_equal(s1, s2, sizeof s1);
        key.substep++;
        assert_int_equal(ops_of(p)->host_sample(a, s2, R, D, &key, params, &err), 0);
        assert_memory_not_equal(s1, s2, sizeof s1);
    }
}

static void test_likelihood_descriptors_are_complete(void **state)
{
    (void)state;
    const unsigned k[] = {1, 1, 2, 1};
    for (int l = 0; l < N_ALL; l++) {
        const daecl_plugin *p = plugin_of(all[l]);
        assert_string_equal(p->name, all[l]);
        assert_string_equal(p->version, "1.0.0");
        assert_string_equal(p->license, "MIT");
        assert_true(p->summary && p->summary[0]);
        const daecl_likelihood_ops *ops = ops_of(p);
        assert_int_equal(ops->size, sizeof(daecl_likelihood_ops));
        assert_int_equal(ops->params_per_dim, k[l]);
        assert_non_null(ops->host_loss_grad);
        assert_non_null(ops->host_mean);
        assert_non_null(ops->host_sample);
        assert_non_null(ops->cl_source);
        for (uint32_t i = 0; i < p->n_params; i++)
            assert_true(p->params[i].doc && p->params[i].doc[0]);
        daecl_err err = {0};
        if (daecl_plugin_validate(p, all[l], &err) != 0)
            fail_msg("%s", err.msg);
    }
}

/* ---- the OpenCL C ------------------------------------------------------------------ */

static void test_likelihood_cl_sources_compile_as_opencl_c(void **state)
{
    (void)state;
    const char *kernel =
        "__kernel void k(__global float *out, __global const float *x,\n"
        "                __global const float *a, __global const float *p)\n"
        "{\n"
        "    size_t i = get_global_id(0);\n"
        "    daecl_f4 ai = daecl_f4_make(a[2 * i], a[2 * i + 1], 0.0f, 0.0f);\n"
        "    daecl_f4 g = daecl_lik_grad(x[i], ai, p);\n"
        "    out[4 * i] = daecl_lik_nll(x[i], ai, p);\n"
        "    out[4 * i + 1] = g.x + g.y;\n"
        "    out[4 * i + 2] = daecl_lik_mean(ai, p);\n"
        "    out[4 * i + 3] = daecl_lik_sample(ai, daecl_u4_make((uint)i, 1u, 2u, 3u), p);\n"
        "}\n";
    for (int l = 0; l < N_ALL; l++)
        assert_cl_compiles(all[l], ops_of(plugin_of(all[l]))->cl_source, kernel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bernoulli_nll_and_grad_match_reference),
        cmocka_unit_test(test_bernoulli_is_stable_at_extreme_logits),
        cmocka_unit_test(test_bernoulli_mean_is_sigmoid),
        cmocka_unit_test(test_bernoulli_samples_are_one_with_probability_sigmoid),
        cmocka_unit_test(test_gaussian_nll_and_grad_match_reference),
        cmocka_unit_test(test_gaussian_mean_is_a_and_default_sigma_is_one),
        cmocka_unit_test(test_gaussian_samples_have_mean_a_and_variance_sigma2),
        cmocka_unit_test(test_gaussian_learned_nll_and_grad_match_reference),
        cmocka_unit_test(test_gaussian_learned_clamp_stops_log_variance_gradient),
        cmocka_unit_test(test_gaussian_learned_mean_is_mu_and_layout_is_blocked),
        cmocka_unit_test(test_gaussian_learned_samples_use_the_clamped_variance),
        cmocka_unit_test(test_gaussian_learned_check_refuses_min_not_below_max),
        cmocka_unit_test(test_continuous_bernoulli_nll_and_grad_match_the_papers_formula),
        cmocka_unit_test(test_continuous_bernoulli_branches_meet_within_two_ulps),
        cmocka_unit_test(test_continuous_bernoulli_mean_matches_the_papers_formula),
        cmocka_unit_test(test_continuous_bernoulli_samples_follow_its_cdf),
        cmocka_unit_test(test_row_nll_is_the_sum_of_element_nll),
        cmocka_unit_test(test_scale_multiplies_grad_and_null_outputs_are_skipped),
        cmocka_unit_test(test_samples_are_deterministic_in_the_key),
        cmocka_unit_test(test_likelihood_descriptors_are_complete),
        cmocka_unit_test(test_likelihood_cl_sources_compile_as_opencl_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
