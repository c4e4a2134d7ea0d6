/* daecl tests — the learned score (docs/generative.md, "The learned
 * score"): a DAE trained with Gaussian corruption sigma has r(x~) - x~ =
 * sigma^2 grad log p_sigma(x~) at its optimum (Tweedie/Miyasawa; Vincent
 * 2011). Checked in closed form on a Gaussian and against the analytic
 * score of a convolved Gaussian mixture (core/toy.h); and field.png. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "core/draw.h"
#include "core/run_pictures.h"
#include "core/toy.h"
#include "core/train.h"
#include "tests/support.h"

static int full_tier;


/* A step-down learning rate: stage k trains up to epoch until[k] at lr[k],
 * by resuming the run with train.epochs and optimizer.lr overridden (both
 * may change on resume, core/compat.c). n = 0: no resume. */
typedef struct schedule {
    size_t n;
    unsigned until[4];
    const char *lr[4];
} schedule;

/* Trains the experiment `yaml` (its output.dir is appended), continues it
 * through the schedule sch (may be NULL), and opens the trained run into r. */
static void train_and_open(const char *tag, const char *yaml, const schedule *sch, daecl_run *r,
                           char *run, size_t n_run)
{
    char *dir = test_tmpdir(tag);
    size_t n_text = strlen(yaml) + 2 * strlen(dir) + 64;
    char *text = malloc(n_text), path[1200];
    assert_non_null(text);
    snprintf(text, n_text, "%soutput: {dir: %s/runs}\n", yaml, dir);
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
    free(text);
    daecl_train_opts o = {.config_path = path, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, run, n_run, &err))
        fail_msg("train: %s", err.msg);
    for (size_t k = 0; sch && k < sch->n; k++) {
        char ep[64], lr[64];
        snprintf(ep, sizeof ep, "train.epochs=%u", sch->until[k]);
        snprintf(lr, sizeof lr, "optimizer.lr=%s", sch->lr[k]);
        const char *ov[] = {ep, lr};
        daecl_train_opts ro = {.resume_dir = run, .overrides = ov, .n_overrides = 2, .quiet = 1};
        if (daecl_train(&ro, NULL, 0, &err))
            fail_msg("resume %s: %s", run, err.msg);
    }
    daecl_trained_opts to = {.run_dir = run, .command = "test"};
    daecl_ckpt_state st;
    if (daecl_run_open_trained(r, &to, &st, &err))
        fail_msg("open %s: %s", run, err.msg);
    free(dir);
}

static float *decode(daecl_run *r, const float *x, size_t n)
{
    float *m = malloc(n * 2 * sizeof *m);
    assert_non_null(m);
    daecl_err err = {0};
    if (daecl_run_decode(r, x, n, m, &err))
        fail_msg("decode: %s", err.msg);
    return m;
}

/* Data N(0, s^2 I) in 2-D with s = 1, a linear DAE 2-2-2 (hidden width D),
 * Gaussian decoder and corruption sigma = 0.5, no clipping: the MSE-optimal
 * map is r(x~) = s^2 / (s^2 + sigma^2) x~ = 0.8 x~. N = 20,000 points, 8
 * epochs of Adam (lr 0.003, batches of 100). The coefficient, fitted by
 * least squares over 4,096 points drawn from p_sigma = N(0, 1.25 I), must
 * be within 2e-2 of 0.8 (measured: see the printed line). */
static void test_a_linear_dae_on_a_gaussian_shrinks_by_s2_over_s2_plus_sigma2(void **state)
{
    (void)state;
    const double s = 1.0, sigma = 0.5, want = s * s / (s * s + sigma * sigma);
    const char *yaml = "name: closed-form\n"
                       "seed: 3\n"
                       "data: {train: 'toy:gmm?means=0,0&std=1&seed=5&rows=20000'}\n"
                       "model: {encoder: [{units: 2, activation: linear}], decoder: []}\n"
                       "corruption: {plugin: gaussian, sigma: 0.5}\n"
                       "likelihood: {plugin: gaussian}\n"
                       "optimizer: {name: adam, lr: 0.003}\n"
                       "train: {epochs: 8, batch_size: 100, log_every: 0}\n"
                       "backend: cpu\n";
    daecl_run r;
    char run[1100];
    train_and_open("score-closed", yaml, NULL, &r, run, sizeof run);
    daecl_toy t, ts;
    daecl_err err = {0};
    if (daecl_toy_parse("toy:gmm?means=0,0&std=1&seed=9", &t, NULL, &err) ||
        daecl_toy_convolve(&t, sigma, &ts, &err))
        fail_msg("toy: %s", err.msg);
    enum { N = 4096 };
    float *x = malloc(N * 2 * sizeof *x);
    assert_non_null(x);
    daecl_toy_generate(&ts, 0, N, x);
    float *m = decode(&r, x, N);
    double xy = 0, xx = 0;
    for (size_t i = 0; i < 2 * N; i++) {
        xy += (double)x[i] * m[i];
        xx += (double)x[i] * x[i];
    }
    double c = xy / xx;
    printf("closed form: s %.2f sigma %.2f coefficient %.4f (want %.4f)\n", s, sigma, c, want);
    assert_true(fabs(c - want) <= 2e-2);
    free(x);
    free(m);
    daecl_run_close(&r);
}

#define MIX_MEANS "-2,0;2,0;0,3.4641"

/* One sigma of the mixture check: trains 2-64-64-64-2 tanh on rows points
 * for `epochs`, then compares r(x~) - x~ with t = sigma^2 grad log
 * p_sigma(x~) on 4,096 points x~ ~ p_sigma. Points drawn from p_sigma make
 * the plain mean of the cosines the density-weighted one. */
static void mixture_at(double sigma, unsigned rows, unsigned epochs, double *cos_mean,
                       double *rel_err)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "name: score-mixture\n"
             "seed: 42\n"
             "data: {train: 'toy:gmm?means=" MIX_MEANS "&std=0.6&seed=1&rows=%u'}\n"
             "model: {encoder: [{units: 64, activation: tanh}, {units: 64, activation: tanh}]}\n"
             "corruption: {plugin: gaussian, sigma: %g}\n"
             "likelihood: {plugin: gaussian}\n"
             "optimizer: {name: adam, lr: 0.001}\n"
             "train: {epochs: %u, batch_size: 128, log_every: 0}\n"
             "backend: cpu\n",
             rows, sigma, epochs * 7 / 10);
    daecl_run r;
    char run[1100];
    /* Adam at 1e-3 for 70% of the epochs, 1e-4 to 90%, 1e-5 to the end:
     * at a constant rate Adam's noise floor hides sigma = 0.1's small
     * displacements (measured: mean cosine 0.3 after 20 epochs at 1e-3). */
    schedule sch = {2, {epochs * 9 / 10, epochs}, {"0.0001", "0.00001"}};
    train_and_open("score-mixture", yaml, &sch, &r, run, sizeof run);
    daecl_toy t, ts;
    daecl_err err = {0};
    if (daecl_toy_parse("toy:gmm?means=" MIX_MEANS "&std=0.6&seed=77", &t, NULL, &err) ||
        daecl_toy_convolve(&t, sigma, &ts, &err))
        fail_msg("toy: %s", err.msg);
    enum { N = 4096 };
    float *x = malloc(N * 2 * sizeof *x);
    assert_non_null(x);
    daecl_toy_generate(&ts, 0, N, x);
    float *m = decode(&r, x, N);
    double cs = 0, num = 0, den = 0;
    for (size_t i = 0; i < N; i++) {
        double p[2] = {x[2 * i], x[2 * i + 1]}, g[2];
        daecl_toy_log_density(&ts, p, g);
        double tx = sigma * sigma * g[0], ty = sigma * sigma * g[1];
        double dx = m[2 * i] - p[0], dy = m[2 * i + 1] - p[1];
        double nd = sqrt(dx * dx + dy * dy), nt = sqrt(tx * tx + ty * ty);
        cs += nd > 0 && nt > 0 ? (dx * tx + dy * ty) / (nd * nt) : 0;
        num += (dx - tx) * (dx - tx) + (dy - ty) * (dy - ty);
        den += tx * tx + ty * ty;
    }
    *cos_mean = cs / N;
    *rel_err = num / den;
    free(x);
    free(m);
    daecl_run_close(&r);
}

/* Three components of std 0.6 on a triangle of side 4 (6.7 stds apart;
 * 0.6 >= 2 sigma for every sigma here), 2-64-64-64-2 tanh, Gaussian decoder
 * and corruption. The mean cosine between r(x~) - x~ and sigma^2 grad log
 * p_sigma(x~) must be >= 0.95 and the relative squared error <= 0.1 (the
 * identity map scores 1).
 * Full tier (test_score_full): sigma in {0.1, 0.2, 0.3}, 300,000 points,
 * 50 epochs, 94 s for the three on a shared 2-core machine; sigma = 0.1
 * needs all of it (100,000 points: cosine 0.93 to 0.945, error 0.107 to
 * 0.115 at 60 to 100 epochs).
 * Default tier: sigma = 0.3 alone, 100,000 points, 20 epochs, about 4 s. */
static void test_the_learned_score_matches_the_mixture_at_each_sigma(void **state)
{
    (void)state;
    static const double all[] = {0.1, 0.2, 0.3}, dflt[] = {0.3};
    const double *sigmas = full_tier ? all : dflt;
    size_t n = full_tier ? 3 : 1;
    unsigned rows = full_tier ? 300000 : 100000, epochs = full_tier ? 50 : 20;
    double c[3], e[3];
    for (size_t k = 0; k < n; k++) {
        double t0 = test_now();
        mixture_at(sigmas[k], rows, epochs, &c[k], &e[k]);
        printf("score on a mixture: sigma %.1f rows %u epochs %u: mean cosine %.4f, relative "
               "squared error %.4f (%.1f s)\n",
               sigmas[k], rows, epochs, c[k], e[k], test_now() - t0);
    }
    for (size_t k = 0; k < n; k++) {
        assert_true(c[k] >= 0.95);
        assert_true(e[k] <= 0.1);
    }
}

/* Width and height of a PNG from its IHDR, or 0 when bytes are no PNG. */
static int png_size(const unsigned char *b, size_t n, uint32_t *w, uint32_t *h)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 33 || memcmp(b, sig, 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0)
        return 0;
    *w = (uint32_t)b[16] << 24 | (uint32_t)b[17] << 16 | (uint32_t)b[18] << 8 | b[19];
    *h = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
    return 1;
}

/* `daecl plot RUN --field` writes field.png, a FIELD_W-square PNG, into a
 * run on 2-D data, and refuses a run on other data in one sentence. */
static void test_plot_field_draws_2d_runs_and_refuses_others(void **state)
{
    (void)state;
    const char *yaml = "name: field\n"
                       "data: {train: 'toy:gmm?seed=1&rows=2000'}\n"
                       "model: {encoder: [{units: 16, activation: tanh}]}\n"
                       "corruption: {plugin: gaussian, sigma: 0.3}\n"
                       "likelihood: {plugin: gaussian}\n"
                       "optimizer: {name: adam, lr: 0.01}\n"
                       "train: {epochs: 2, batch_size: 100, log_every: 0}\n"
                       "backend: cpu\n";
    daecl_run r;
    char run[1100], path[1200];
    train_and_open("score-field", yaml, NULL, &r, run, sizeof run);
    daecl_run_close(&r);
    char *out = NULL;
    char *argv[] = {DAECL_TEST_BIN, "plot", run, "--field", NULL};
    if (test_run(argv, NULL, &out) != 0)
        fail_msg("daecl plot --field: %s", out);
    free(out);
    snprintf(path, sizeof path, "%s/field.png", run);
    size_t n;
    unsigned char *png = (unsigned char *)test_read_file(path, &n);
    uint32_t w = 0, h = 0;
    assert_true(png_size(png, n, &w, &h));
    assert_int_equal(w, DAECL_PICTURE_FIELD_W);
    assert_int_equal(h, DAECL_PICTURE_FIELD_W);
    free(png);
    /* a run on 16-D data is refused */
    char *dir = test_small_experiment("score-field-16d", "", "cpu"), img_run[1100];
    char ov0[1200];
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    snprintf(ov0, sizeof ov0, "output.dir=%s/runs", dir);
    const char *ov[] = {ov0};
    daecl_train_opts o = {.config_path = path, .overrides = ov, .n_overrides = 1, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, img_run, sizeof img_run, &err))
        fail_msg("train: %s", err.msg);
    char *argv2[] = {DAECL_TEST_BIN, "plot", img_run, "--field", NULL};
    assert_int_not_equal(test_run(argv2, NULL, &out), 0);
    assert_non_null(strstr(out, "needs 2-D data"));
    free(out);
    snprintf(path, sizeof path, "%s/field.png", img_run);
    assert_null(fopen(path, "rb"));
    free(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_linear_dae_on_a_gaussian_shrinks_by_s2_over_s2_plus_sigma2),
        cmocka_unit_test(test_the_learned_score_matches_the_mixture_at_each_sigma),
        cmocka_unit_test(test_plot_field_draws_2d_runs_and_refuses_others),
    };
    const struct CMUnitTest full[] = {
        cmocka_unit_test(test_the_learned_score_matches_the_mixture_at_each_sigma),
    };
    if (argc > 1 && strcmp(argv[1], "--full") == 0) {
        full_tier = 1;
        return cmocka_run_group_tests_name("score, full tier", full, NULL, NULL);
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--full]\n", argv[0]);
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
