/* daecl tests — `daecl eval`: the NLLs, denoising MSE and PSNR of a tiny run
 * against values computed here independently (a double-precision forward
 * pass over the checkpoint's tensors); the linear probe on a problem with a
 * known answer, converged and reported in eval.json; softmax cross-entropy
 * against finite differences. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evaluate.h"
#include "core/safetensors.h"
#include "core/train.h"
#include "daecl/elementwise.h"
#include "tests/support.h"

enum { N = 60, D = 12, H = 5 };

/* Rows of D values in [0, 1]; label = whether the first half outweighs the
 * second (a linearly separable rule). */
static void make_data(float *x, int32_t *y, uint64_t seed)
{
    test_fill_uniform(x, N * D, seed, 0, 1);
    for (int r = 0; r < N; r++) {
        double a = 0;
        for (int j = 0; j < D; j++)
            a += (j < D / 2 ? 1 : -1) * x[r * D + j];
        y[r] = a > 0;
    }
}

static char *make_run(const char *tag)
{
    char *dir = test_tmpdir(tag);
    float x[N * D];
    int32_t y[N];
    make_data(x, y, 3);
    char path[1200], text[2048];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    test_write_npy(path, "<f4", x, sizeof x, "(60, 12)");
    snprintf(path, sizeof path, "%s/y.npy", dir);
    test_write_npy(path, "<i4", y, sizeof y, "(60,)");
    snprintf(text, sizeof text,
             "seed: 9\n"
             "data: {train: x.npy, test: x.npy, train_labels: y.npy, test_labels: y.npy}\n"
             "model: {encoder: [{units: %d, activation: tanh}]}\n"
             "corruption: {plugin: masking, p: 0.3}\n"
             "likelihood: bernoulli\n"
             "optimizer: {name: adam, lr: 0.02}\n"
             "train: {epochs: 4, batch_size: 16, log_every: 0}\n"
             "eval: {probe_l2: 1e-3, probe_tol: 1e-8, probe_max_iter: 5000}\n"
             "backend: cpu\n", H);
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
    char out[1200];
    snprintf(out, sizeof out, "%s/run", dir);
    daecl_train_opts o = {.config_path = path, .out_dir = out, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, NULL, 0, &err))
        fail_msg("train: %s", err.msg);
    return dir;
}

static double softplus(double a)
{
    return fmax(a, 0) + log1p(exp(-fabs(a)));
}

/* Mean bernoulli NLL and summed squared error of the reconstruction of
 * `in` (N, D) against x, through the checkpoint's network in double. */
static void reference(const daecl_safetensors *st, const float *x, const float *in, double *nll,
                      double *sse)
{
    const float *w0 = daecl_safetensors_get(st, "encoder.0.weight", NULL, NULL);
    const float *b0 = daecl_safetensors_get(st, "encoder.0.bias", NULL, NULL);
    const float *w1 = daecl_safetensors_get(st, "decoder.0.weight", NULL, NULL);
    const float *b1 = daecl_safetensors_get(st, "decoder.0.bias", NULL, NULL);
    assert_true(w0 && b0 && w1 && b1);
    *nll = *sse = 0;
    for (int r = 0; r < N; r++) {
        double h[H];
        for (int k = 0; k < H; k++) {
            double z = b0[k];
            for (int j = 0; j < D; j++)
                z += (double)w0[k * D + j] * in[r * D + j];
            h[k] = tanh(z);
        }
        for (int j = 0; j < D; j++) {
            double a = b1[j];
            for (int k = 0; k < H; k++)
                a += (double)w1[j * H + k] * h[k];
            double xv = x[r * D + j], mean = 1 / (1 + exp(-a));
            *nll += softplus(a) - xv * a;
            *sse += (mean - xv) * (mean - xv);
        }
    }
    *nll /= N;
}

static void test_eval_numbers_match_an_independent_computation(void **state)
{
    (void)state;
    char *dir = make_run("eval-numbers");
    char run[1200], path[1300];
    snprintf(run, sizeof run, "%s/run", dir);
    daecl_eval_opts o = {.run_dir = run, .no_probe = 1};
    daecl_evaluation e;
    char json[1300];
    daecl_err err = {0};
    if (daecl_eval_run(&o, &e, json, sizeof json, &err))
        fail_msg("eval: %s", err.msg);

    float x[N * D], xt[N * D];
    int32_t y[N];
    make_data(x, y, 3);
    /* The corrupted test copy: masking's own host reference, with the eval
     * stream's addressing (row r is the example at position r of epoch 0). */
    const daecl_plugin *masking = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    float p = 0.3f;
    daecl_noise_key key = {.seed = 9, .stream = DAECL_STREAM_EVAL_CORRUPTION};
    daecl_shape shape = {1, {D, 1, 1, 1}};
    assert_int_equal(((const daecl_corruption_ops *)masking->ops)
                         ->host_apply(x, xt, N, D, &shape, &key, &p, &err),
                     0);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    daecl_safetensors *st = NULL;
    assert_int_equal(daecl_safetensors_read(path, &st, &err), 0);
    double nll_clean, nll_corrupted, sse_recon, sse_unused;
    reference(st, x, x, &nll_clean, &sse_unused);
    reference(st, x, xt, &nll_corrupted, &sse_recon);
    daecl_safetensors_destroy(st);
    double sse_corrupt = 0;
    for (int i = 0; i < N * D; i++)
        sse_corrupt += ((double)xt[i] - x[i]) * ((double)xt[i] - x[i]);

    assert_close(e.test.nll_clean, nll_clean, 1e-5);
    assert_close(e.test.nll_corrupted, nll_corrupted, 1e-5);
    assert_close(e.test.mse_reconstruction, sse_recon / (N * D), 1e-5);
    assert_close(e.test.mse_corrupted, sse_corrupt / (N * D), 1e-6);
    double range = e.test.range; /* max - min of the data */
    assert_close(e.test.psnr_reconstruction,
                 10 * log10(range * range / (sse_recon / (N * D))), 1e-5);
    assert_true(e.test.mse_reconstruction < e.test.mse_corrupted);

    /* eval.json holds the same numbers. */
    char *text = test_read_file(json, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    /* cJSON prints 15 significant digits when they read back within a few
     * ulp, so compare to that, not to the bit. */
    assert_close(cJSON_GetObjectItem(j, "test_nll_clean")->valuedouble, e.test.nll_clean, 1e-13);
    assert_close(cJSON_GetObjectItem(j, "mse_corrupted")->valuedouble, e.test.mse_corrupted, 1e-13);
    assert_null(cJSON_GetObjectItem(j, "probe_accuracy"));
    cJSON_Delete(j);
    free(dir);
}

static void test_probe_learns_a_separable_rule_deterministically(void **state)
{
    (void)state;
    char *dir = make_run("eval-probe");
    char run[1200];
    snprintf(run, sizeof run, "%s/run", dir);
    daecl_eval_opts o = {.run_dir = run, .probe_baseline = 1};
    daecl_evaluation e1, e2;
    char json[1300];
    daecl_err err = {0};
    if (daecl_eval_run(&o, &e1, json, sizeof json, &err) || daecl_eval_run(&o, &e2, NULL, 0, &err))
        fail_msg("eval: %s", err.msg);
    assert_true(e1.have_probe && e1.have_baseline);
    /* Both fits reached the configured tolerance, with the configured l2. */
    const daecl_probe_result *fits[2] = {&e1.probe, &e1.baseline};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(fits[i]->stop, DAECL_PROBE_CONVERGED);
        assert_true(fits[i]->grad_max <= 1e-8 && fits[i]->iterations > 0);
        assert_true(fits[i]->l2 == 1e-3 && fits[i]->objective > 0);
    }
    /* The rule is linear in the raw inputs: the raw probe must (nearly)
     * get every training row right. */
    if (e1.baseline.accuracy < 0.95)
        fail_msg("raw-input probe accuracy %.3f on a linearly separable rule", e1.baseline.accuracy);
    assert_int_equal(e1.baseline.n_classes, 2);
    assert_int_equal(e1.baseline.n_features, D);
    assert_int_equal(e1.probe.n_features, H);
    assert_true(e1.probe.accuracy > 0.5 && e1.probe.accuracy <= 1);
    /* Deterministic from the seed. */
    assert_true(e1.probe.accuracy == e2.probe.accuracy && e1.probe.test_nll == e2.probe.test_nll);
    assert_true(e1.baseline.test_nll == e2.baseline.test_nll);
    assert_true(e1.probe.objective == e2.probe.objective);

    /* eval.json reports the fit: objective, gradient, iterations, converged. */
    char *text = test_read_file(json, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    assert_close(cJSON_GetObjectItem(j, "probe_objective")->valuedouble, e1.probe.objective, 1e-13);
    assert_close(cJSON_GetObjectItem(j, "probe_baseline_grad_max")->valuedouble,
                 e1.baseline.grad_max, 1e-13);
    assert_int_equal(cJSON_GetObjectItem(j, "probe_iterations")->valueint, e1.probe.iterations);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "probe_converged")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "probe_baseline_converged")));
    assert_close(cJSON_GetObjectItem(j, "probe_l2")->valuedouble, 1e-3, 1e-15);
    cJSON_Delete(j);
    free(dir);
}

static void test_probe_needs_labels(void **state)
{
    (void)state;
    char *dir = make_run("eval-nolabels");
    char run[1200];
    snprintf(run, sizeof run, "%s/run", dir);
    const char *ov[] = {"data.train_labels="};
    daecl_eval_opts o = {.run_dir = run, .probe_baseline = 1, .overrides = ov, .n_overrides = 1};
    daecl_evaluation e;
    daecl_err err = {0};
    assert_int_equal(daecl_eval_run(&o, &e, NULL, 0, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "data.train_labels"));
    free(dir);
}

/* softmax_xent of the cpu backend: loss against log-sum-exp in double,
 * gradient against central differences of it. */
static void test_softmax_cross_entropy_gradient_matches_finite_differences(void **state)
{
    (void)state;
    const daecl_plugin *cpu = test_plugin(DAECL_KIND_BACKEND, "cpu");
    const daecl_backend_ops *be = cpu->ops;
    void *ctx = NULL;
    daecl_err err = {0};
    assert_int_equal(be->open(daecl_host_table(), test_default_values(cpu), &ctx, &err), 0);
    enum { R = 4, C = 7 };
    float z[R * C], y[R] = {0, 6, 3, 3}, loss[R], grad[R * C];
    test_fill_uniform(z, R * C, 5, -30, 30);
    daecl_buf *bz, *by, *bl, *bg;
    assert_int_equal(be->alloc(ctx, sizeof z, "z", &bz, &err), 0);
    assert_int_equal(be->alloc(ctx, sizeof y, "y", &by, &err), 0);
    assert_int_equal(be->alloc(ctx, sizeof loss, "l", &bl, &err), 0);
    assert_int_equal(be->alloc(ctx, sizeof grad, "g", &bg, &err), 0);
    assert_int_equal(be->write(ctx, bz, 0, z, sizeof z, &err), 0);
    assert_int_equal(be->write(ctx, by, 0, y, sizeof y, &err), 0);
    daecl_slice s0 = {bz, 0}, s1 = {by, 0}, s2 = {bl, 0}, s3 = {bg, 0};
    assert_int_equal(be->softmax_xent(ctx, s0, s1, R, C, 0.5f, s2, s3, &err), 0);
    assert_int_equal(be->read(ctx, bl, 0, loss, sizeof loss, &err), 0);
    assert_int_equal(be->read(ctx, bg, 0, grad, sizeof grad, &err), 0);
    for (int r = 0; r < R; r++) {
        double zd[C];
        for (int c = 0; c < C; c++)
            zd[c] = z[r * C + c];
        double m = zd[0], s = 0;
        for (int c = 1; c < C; c++)
            m = fmax(m, zd[c]);
        for (int c = 0; c < C; c++)
            s += exp(zd[c] - m);
        assert_close(loss[r], m + log(s) - zd[(int)y[r]], 1e-6);
        for (int c = 0; c < C; c++) {
            double h = 1e-4, f[2];
            for (int k = 0; k < 2; k++) {
                double keep = zd[c];
                zd[c] = keep + (k ? -h : h);
                double mm = zd[0], ss = 0;
                for (int q = 1; q < C; q++)
                    mm = fmax(mm, zd[q]);
                for (int q = 0; q < C; q++)
                    ss += exp(zd[q] - mm);
                f[k] = mm + log(ss) - zd[(int)y[r]];
                zd[c] = keep;
            }
            assert_close(grad[r * C + c], 0.5 * (f[0] - f[1]) / (2 * h), 1e-5);
        }
    }
    be->free(ctx, bz), be->free(ctx, by), be->free(ctx, bl), be->free(ctx, bg);
    be->close(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_numbers_match_an_independent_computation),
        cmocka_unit_test(test_probe_learns_a_separable_rule_deterministically),
        cmocka_unit_test(test_probe_needs_labels),
        cmocka_unit_test(test_softmax_cross_entropy_gradient_matches_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
