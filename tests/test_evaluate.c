/* daecl tests — `daecl eval`: the NLLs, denoising MSE and PSNR of a tiny run
 * against values computed here independently (a double-precision forward
 * pass over the checkpoint's tensors); the linear probe on a problem with a
 * known answer, converged and reported in eval.json; on a two-layer encoder,
 * the probe on each layer's code and on both side by side against probes
 * fitted here on codes computed here; softmax cross-entropy against finite
 * differences. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evaluate.h"
#include "core/run.h"
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

/* Trains a tiny run on make_data's rows under tag's folder: encoder and
 * eval are the YAML flow mappings of model.encoder and eval. */
static char *make_run_of(const char *tag, const char *encoder, const char *eval)
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
             "model: {encoder: %s}\n"
             "corruption: {plugin: masking, p: 0.3}\n"
             "likelihood: bernoulli\n"
             "optimizer: {name: adam, lr: 0.02}\n"
             "train: {epochs: 4, batch_size: 16, log_every: 0}\n"
             "eval: %s\n"
             "backend: cpu\n", encoder, eval);
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

/* One tanh layer of H units; the probe only when eval asks. */
static char *make_run(const char *tag)
{
    char encoder[64];
    snprintf(encoder, sizeof encoder, "[{units: %d, activation: tanh}]", H);
    return make_run_of(tag, encoder, "{probe_l2: 1e-3, probe_tol: 1e-8, probe_max_iter: 5000}");
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
    cJSON *j = test_read_json(json);
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
    cJSON *j = test_read_json(json);
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

/* eval.json of a one-layer run: the keys it had before per-layer probes,
 * and no others. */
static void test_one_layer_eval_json_keeps_its_keys(void **state)
{
    (void)state;
    char *dir = make_run("eval-keys");
    char run[1200];
    snprintf(run, sizeof run, "%s/run", dir);
    daecl_eval_opts o = {.run_dir = run, .probe_baseline = 1, .probe_layers = "each"};
    daecl_evaluation e;
    char json[1300];
    daecl_err err = {0};
    if (daecl_eval_run(&o, &e, json, sizeof json, &err))
        fail_msg("eval: %s", err.msg);
    assert_int_equal(e.n_probes, 0);
    static const char *const keys[] = {
        "checkpoint", "step", "epoch", "device", "test_examples", "test_nll_clean",
        "test_nll_corrupted", "mse_reconstruction", "mse_corrupted", "psnr_reconstruction_db",
        "psnr_corrupted_db", "probe_accuracy", "probe_test_nll", "probe_objective",
        "probe_grad_max", "probe_iterations", "probe_l2", "probe_converged", "probe_features",
        "probe_baseline_accuracy", "probe_baseline_test_nll", "probe_baseline_objective",
        "probe_baseline_grad_max", "probe_baseline_iterations", "probe_baseline_l2",
        "probe_baseline_converged"};
    enum { N_KEYS = sizeof keys / sizeof keys[0] };
    cJSON *j = test_read_json(json);
    size_t n = 0;
    for (cJSON *it = j->child; it; it = it->next, n++) {
        size_t k = 0;
        while (k < N_KEYS && strcmp(keys[k], it->string) != 0)
            k++;
        if (k == N_KEYS)
            fail_msg("eval.json of a one-layer run has a new key '%s'", it->string);
    }
    assert_int_equal(n, N_KEYS);
    cJSON_Delete(j);
    free(dir);
}

/* ---- two encoder layers -------------------------------------------------- */

enum { H0 = 5, H1 = 4 };

/* A run with encoder [H0 tanh, H1 sigmoid] that fits its probes at the end
 * of training. */
static char *make_run2(const char *tag)
{
    char encoder[128];
    snprintf(encoder, sizeof encoder,
             "[{units: %d, activation: tanh}, {units: %d, activation: sigmoid}]", H0, H1);
    return make_run_of(tag, encoder, "{probe: true, probe_baseline: true, probe_l2: 1e-3, "
                                     "probe_tol: 1e-8, probe_max_iter: 5000}");
}

/* Both layers' codes of x (N, D) through the checkpoint's encoder, in
 * double: h0 (N, H0) = tanh(x W0^T + b0), h1 (N, H1) = sigmoid(h0 W1^T + b1). */
static void host_codes(const char *run, const float *x, double *h0, double *h1)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    daecl_safetensors *st = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_read(path, &st, &err), 0);
    const float *w0 = daecl_safetensors_get(st, "encoder.0.weight", NULL, NULL);
    const float *b0 = daecl_safetensors_get(st, "encoder.0.bias", NULL, NULL);
    const float *w1 = daecl_safetensors_get(st, "encoder.1.weight", NULL, NULL);
    const float *b1 = daecl_safetensors_get(st, "encoder.1.bias", NULL, NULL);
    assert_true(w0 && b0 && w1 && b1);
    for (int r = 0; r < N; r++) {
        for (int k = 0; k < H0; k++) {
            double z = b0[k];
            for (int j = 0; j < D; j++)
                z += (double)w0[k * D + j] * x[r * D + j];
            h0[r * H0 + k] = tanh(z);
        }
        for (int k = 0; k < H1; k++) {
            double z = b1[k];
            for (int j = 0; j < H0; j++)
                z += (double)w1[k * H0 + j] * h0[r * H0 + j];
            h1[r * H1 + k] = 1 / (1 + exp(-z));
        }
    }
    daecl_safetensors_destroy(st);
}

/* The device's features of every row for `which`, through the opened run. */
static float *device_features(daecl_run *r, int which, size_t width)
{
    float *f = NULL;
    size_t w = 0;
    daecl_err err = {0};
    if (daecl_probe_features(r->g, r->train_feed, which, &f, &w, &err))
        fail_msg("features: %s", err.msg);
    assert_int_equal(w, width);
    return f;
}

static void assert_same_fit(const daecl_probe_result *a, const daecl_probe_result *b)
{
    assert_int_equal(a->stop, DAECL_PROBE_CONVERGED);
    assert_int_equal(b->stop, DAECL_PROBE_CONVERGED);
    assert_int_equal(a->n_features, b->n_features);
    assert_close(a->accuracy, b->accuracy, 1e-6);
    assert_close(a->objective, b->objective, 1e-6);
    assert_close(a->test_nll, b->test_nll, 1e-6);
}

static void test_probe_on_each_layer_and_all_layers_matches_host_codes(void **state)
{
    (void)state;
    char *dir = make_run2("eval-layers");
    char run[1200], path[1300];
    snprintf(run, sizeof run, "%s/run", dir);
    daecl_eval_opts o = {.run_dir = run, .probe_baseline = 1};
    daecl_evaluation e;
    char json[1300];
    daecl_err err = {0};
    if (daecl_eval_run(&o, &e, json, sizeof json, &err))
        fail_msg("eval: %s", err.msg);

    /* layer 0, layer 1, all layers, raw; the top's and raw's are also the
     * probe_* and probe_baseline_* numbers */
    assert_int_equal(e.n_probes, 4);
    const int order[4] = {0, 1, DAECL_PROBE_ALL, DAECL_PROBE_RAW};
    const size_t widths[4] = {H0, H1, H0 + H1, D};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(e.probes[i].features, order[i]);
        assert_int_equal(e.probes[i].fit.n_features, widths[i]);
        assert_int_equal(e.probes[i].fit.stop, DAECL_PROBE_CONVERGED);
    }
    assert_true(e.have_probe && e.have_baseline);
    assert_memory_equal(&e.probe, &e.probes[1].fit, sizeof e.probe);
    assert_memory_equal(&e.baseline, &e.probes[3].fit, sizeof e.baseline);

    /* Probes fitted here on the codes computed here in double. */
    float x[N * D];
    int32_t y[N];
    make_data(x, y, 3);
    static double h0[N * H0], h1[N * H1];
    host_codes(run, x, h0, h1);
    static float f0[N * H0], f1[N * H1], fall[N * (H0 + H1)];
    for (int r = 0; r < N; r++) {
        for (int k = 0; k < H0; k++)
            fall[r * (H0 + H1) + k] = f0[r * H0 + k] = (float)h0[r * H0 + k];
        for (int k = 0; k < H1; k++)
            fall[r * (H0 + H1) + H0 + k] = f1[r * H1 + k] = (float)h1[r * H1 + k];
    }
    daecl_labels labels = {.y = y, .n = N, .n_classes = 2};
    daecl_probe_opts po = {.l2 = 1e-3, .tol = 1e-8, .max_iter = 5000, .threads = 0};
    const float *host[4] = {f0, f1, fall, x};
    for (int i = 0; i < 4; i++) {
        daecl_probe_result mine;
        if (daecl_probe_fit(host[i], &labels, host[i], &labels, widths[i], &po, &mine, &err))
            fail_msg("fit: %s", err.msg);
        assert_same_fit(&e.probes[i].fit, &mine);
    }
    /* raw: the very same features, so the very same fit */
    assert_true(e.baseline.objective == e.probes[3].fit.objective);

    /* The device's features: each layer's close to the host's, all layers
     * exactly the two side by side, raw exactly the data. */
    daecl_trained_opts to = {.run_dir = run, .command = "eval", .probe = 1};
    daecl_run r;
    daecl_ckpt_state st;
    if (daecl_run_open_trained(&r, &to, &st, &err))
        fail_msg("open: %s", err.msg);
    float *d0 = device_features(&r, 0, H0), *d1 = device_features(&r, 1, H1);
    float *dall = device_features(&r, DAECL_PROBE_ALL, H0 + H1);
    float *draw = device_features(&r, DAECL_PROBE_RAW, D);
    float *dbad = NULL;
    size_t wbad;
    assert_int_equal(daecl_probe_features(r.g, r.train_feed, 2, &dbad, &wbad, &err), DAECL_EINVAL);
    assert_null(dbad);
    daecl_run_close(&r);
    for (int i = 0; i < N * H0; i++)
        assert_close(d0[i], h0[i], 1e-5);
    for (int i = 0; i < N * H1; i++)
        assert_close(d1[i], h1[i], 1e-5);
    for (int row = 0; row < N; row++) {
        assert_memory_equal(dall + row * (H0 + H1), d0 + row * H0, H0 * sizeof(float));
        assert_memory_equal(dall + row * (H0 + H1) + H0, d1 + row * H1, H1 * sizeof(float));
    }
    assert_memory_equal(draw, x, sizeof x);
    free(d0), free(d1), free(dall), free(draw);

    /* eval.json holds the list; the top-level keys are the top code's */
    cJSON *j = test_read_json(json);
    const cJSON *list = cJSON_GetObjectItem(j, "probes");
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), 4);
    const char *names[4] = {"layer 0", "layer 1", "all layers", "raw"};
    for (int i = 0; i < 4; i++) {
        const cJSON *p = cJSON_GetArrayItem(list, i);
        assert_string_equal(cJSON_GetObjectItem(p, "features")->valuestring, names[i]);
        assert_close(cJSON_GetObjectItem(p, "accuracy")->valuedouble, e.probes[i].fit.accuracy,
                     1e-13);
        assert_int_equal(cJSON_GetObjectItem(p, "n_features")->valueint, widths[i]);
        assert_int_equal(cJSON_GetObjectItem(p, "iterations")->valueint,
                         e.probes[i].fit.iterations);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p, "converged")));
        assert_non_null(cJSON_GetObjectItem(p, "test_nll"));
        assert_non_null(cJSON_GetObjectItem(p, "seconds"));
    }
    assert_int_equal(cJSON_GetObjectItem(j, "probe_features")->valueint, H1);
    assert_close(cJSON_GetObjectItem(j, "probe_objective")->valuedouble, e.probes[1].fit.objective,
                 1e-13);
    cJSON_Delete(j);

    /* training's own end-of-run probes went into summary.json the same way */
    snprintf(path, sizeof path, "%s/summary.json", run);
    j = test_read_json(path);
    list = cJSON_GetObjectItem(j, "probes");
    assert_true(cJSON_IsArray(list));
    assert_int_equal(cJSON_GetArraySize(list), 4);
    assert_close(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 2), "accuracy")->valuedouble,
                 e.probes[2].fit.accuracy, 1e-13);
    cJSON_Delete(j);

    /* --probe-layers top: the old two fits, the same numbers, no list */
    daecl_eval_opts ot = o;
    ot.probe_layers = "top";
    daecl_evaluation et;
    if (daecl_eval_run(&ot, &et, json, sizeof json, &err))
        fail_msg("eval --probe-layers top: %s", err.msg);
    assert_int_equal(et.n_probes, 0);
    assert_true(et.probe.objective == e.probe.objective && et.probe.accuracy == e.probe.accuracy);
    assert_true(et.baseline.objective == e.baseline.objective);
    j = test_read_json(json);
    assert_null(cJSON_GetObjectItem(j, "probes"));
    cJSON_Delete(j);

    /* a value that is neither is the config's error, naming the key */
    ot.probe_layers = "middle";
    assert_int_equal(daecl_eval_run(&ot, &et, NULL, 0, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "probe_layers"));
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
/* Without a test set (a sweep's point) the one fit is scored on the
 * validation rows alone, exactly as with one, and the JSON and the
 * printed line leave the test numbers out instead of writing zeros. */
static void test_probe_without_a_test_set_scores_validation_only(void **state)
{
    (void)state;
    enum { NTR = 60, NVA = 20, F = 3 };
    float xtr[NTR * F], xva[NVA * F];
    int32_t ytr[NTR], yva[NVA];
    for (size_t i = 0; i < NTR + NVA; i++) {
        float *x = i < NTR ? xtr + i * F : xva + (i - NTR) * F;
        for (size_t f = 0; f < F; f++)
            x[f] = (float)((i * 37 + f * 11) % 17) / 17.0f;
        *(i < NTR ? &ytr[i] : &yva[i - NTR]) = x[0] + 0.5f * x[1] > 0.7f;
    }
    daecl_labels ltr = {.y = ytr, .n = NTR, .n_classes = 2};
    daecl_labels lva = {.y = yva, .n = NVA, .n_classes = 2};
    daecl_probe_opts o = {.l2 = 1e-3, .tol = 1e-9, .max_iter = 500, .threads = 1};
    daecl_probe_result with, without;
    daecl_err err = {0};
    if (daecl_probe_fit_valid(xtr, &ltr, xva, &lva, xtr, &ltr, F, &o, &with, &err) ||
        daecl_probe_fit_valid(xtr, &ltr, xva, &lva, NULL, NULL, F, &o, &without, &err))
        fail_msg("probe: %s", err.msg);
    assert_true(with.have_test && with.have_valid);
    assert_true(!without.have_test && without.have_valid);
    assert_true(without.valid_accuracy == with.valid_accuracy);
    assert_true(without.valid_nll == with.valid_nll);
    assert_true(without.objective == with.objective);
    assert_true(without.accuracy == 0 && without.test_nll == 0);

    daecl_evaluation e = {.have_probe = 1, .probe = without};
    cJSON *j = cJSON_CreateObject();
    daecl_evaluation_to_json(&e, j);
    assert_null(cJSON_GetObjectItem(j, "probe_accuracy"));
    assert_null(cJSON_GetObjectItem(j, "probe_test_nll"));
    assert_null(cJSON_GetObjectItem(j, "test_nll_clean"));
    assert_true(cJSON_GetObjectItem(j, "probe_valid_accuracy")->valuedouble ==
                without.valid_accuracy);
    assert_non_null(cJSON_GetObjectItem(j, "probe_objective"));
    cJSON_Delete(j);
    char scores[128];
    daecl_evaluation_probe_scores(&without, scores, sizeof scores);
    assert_null(strstr(scores, "test"));
    assert_non_null(strstr(scores, "validation accuracy"));
    daecl_evaluation_probe_scores(&with, scores, sizeof scores);
    assert_non_null(strstr(scores, ", test accuracy"));
}

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
        cmocka_unit_test(test_one_layer_eval_json_keeps_its_keys),
        cmocka_unit_test(test_probe_on_each_layer_and_all_layers_matches_host_codes),
        cmocka_unit_test(test_probe_without_a_test_set_scores_validation_only),
        cmocka_unit_test(test_softmax_cross_entropy_gradient_matches_finite_differences),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
