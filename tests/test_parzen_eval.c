/* daecl tests — `daecl eval --parzen` (core/parzen_eval.c): the numbers it
 * writes, their determinism by seed, the test mean against the library
 * recomputed from the same chain samples, the nearest-neighbour distances
 * against a direct double-precision search, the refusals, and what a
 * later plain eval keeps of them. One small
 * trained run (tests/support.h: 16-6-16 tanh, 100 training rows, the first
 * 30 of them again as the test set) and one without a test set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/evaluate.h"
#include "core/parzen_eval.h"
#include "core/run.h"
#include "core/sample.h"
#include "core/train.h"
#include "tests/support.h"

static char *dir;
static char run_dir[1200], notest_dir[1200];

static int setup(void **state)
{
    (void)state;
    dir = test_small_experiment("peval", "", "{plugin: cpu, threads: 1}");
    char cfg[1200], cfg2[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(cfg2, sizeof cfg2, "%s/notest.yaml", dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    snprintf(notest_dir, sizeof notest_dir, "%s/notest", dir);
    size_t n;
    char *text = test_read_file(cfg, &n);
    const char *cut = ", test: data.idx, test_limit: 30";
    char *at = strstr(text, cut);
    if (!at)
        return -1;
    memmove(at, at + strlen(cut), strlen(at + strlen(cut)) + 1);
    test_write_file(cfg2, text, strlen(text));
    free(text);
    return test_train_setup(cfg, run_dir) || test_train_setup(cfg2, notest_dir);
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

static daecl_parzen_eval_opts opts(uint64_t seed)
{
    daecl_parzen_eval_opts o;
    daecl_parzen_eval_defaults(&o);
    o.run_dir = run_dir;
    o.n_samples = 40;
    o.steps = 5;
    o.has_seed = 1;
    o.seed = seed;
    o.n_valid = 20;
    o.n_sigmas = 8;
    return o;
}

static void eval(const daecl_parzen_eval_opts *o, daecl_parzen_eval_result *res)
{
    daecl_err err = {0};
    if (daecl_parzen_eval_run(o, res, &err))
        fail_msg("parzen eval: %s", err.msg);
}

/* Number key of JSON object o equals want as cJSON prints it: with 15
 * significant digits when they read back within its relative epsilon
 * (cJSON 1.7.15's print_number), so the last bits may differ. */
static void assert_printed(const cJSON *o, const char *key, double want)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    assert_non_null(v);
    if (!(fabs(v->valuedouble - want) <= 1e-14 * fabs(want)))
        fail_msg("eval.json has %s = %.17g, the run computed %.17g", key, v->valuedouble, want);
}

static void test_parzen_eval_writes_the_numbers_and_keeps_eval_json(void **state)
{
    (void)state;
    char path[1300];
    snprintf(path, sizeof path, "%s/eval.json", run_dir);
    test_write_file(path, "{\"kept\": 7}", 11);
    daecl_parzen_eval_opts o = opts(5);
    daecl_parzen_eval_result res;
    eval(&o, &res);
    assert_true(isfinite(res.score.mean));
    assert_true(res.score.se > 0);
    assert_int_equal(res.score.n_test, 30);
    assert_int_equal(res.n_valid, 20);
    assert_int_equal(res.step, 21); /* 3 epochs of 7 steps */
    assert_true(res.score.sigma >= 0.05 - 1e-12 && res.score.sigma <= 1 + 1e-12);
    assert_true(res.fit.sigma == res.score.sigma);
    /* the test rows are training rows: each is its own nearest neighbour */
    assert_true(res.nn_test_median < 1e-2 && res.nn_test_p5 < 1e-2);
    assert_true(res.nn_sample_median > 0 && res.nn_sample_p5 <= res.nn_sample_median);

    size_t n;
    char *text = test_read_file(path, &n);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "kept")->valuedouble, 7);
    cJSON *p = cJSON_GetObjectItem(j, "parzen"), *m = cJSON_GetObjectItem(j, "memorisation");
    assert_non_null(p);
    assert_non_null(m);
    assert_printed(p, "test_ll_mean", res.score.mean);
    assert_printed(p, "test_ll_se", res.score.se);
    assert_printed(p, "sigma", res.score.sigma);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(p, "sigmas")), 8);
    assert_int_equal(cJSON_GetObjectItem(p, "step")->valuedouble, 21);
    assert_non_null(strstr(cJSON_GetObjectItem(p, "centres")->valuestring, "decoder means"));
    assert_printed(m, "sample_median", res.nn_sample_median);
    assert_printed(m, "test_p5", res.nn_test_p5);
    cJSON_Delete(j);
    free(text);
}

/* eval.json after a plain `daecl eval` of run_dir (core/evaluate.c). */
static cJSON *plain_eval(void)
{
    daecl_eval_opts o = {.run_dir = run_dir};
    daecl_evaluation e;
    char json[4096];
    daecl_err err = {0};
    if (daecl_eval_run(&o, &e, json, sizeof json, &err))
        fail_msg("plain eval: %s", err.msg);
    size_t n;
    char *text = test_read_file(json, &n);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    assert_non_null(cJSON_GetObjectItem(j, "test_nll_clean"));
    return j;
}

/* Rewrites eval.json's parzen.KEY (NULL value: removes it). */
static void edit_parzen(const char *key, cJSON *value)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/eval.json", run_dir);
    size_t n;
    char *text = test_read_file(path, &n);
    cJSON *j = cJSON_Parse(text), *p = cJSON_GetObjectItem(j, "parzen");
    assert_non_null(p);
    cJSON_DeleteItemFromObject(p, key);
    if (value)
        cJSON_AddItemToObject(p, key, value);
    char *out = cJSON_Print(j);
    test_write_file(path, out, strlen(out));
    free(out);
    free(text);
    cJSON_Delete(j);
}

/* A plain eval rewrites eval.json with its own numbers and keeps the
 * Parzen ones measured on the same checkpoint; those of another checkpoint
 * (by its SHA-256, or by the step of a file from before the hash) go. */
static void test_plain_eval_keeps_the_parzen_numbers_of_its_checkpoint(void **state)
{
    (void)state;
    daecl_parzen_eval_opts o = opts(5);
    daecl_parzen_eval_result res;
    eval(&o, &res);
    assert_int_equal(strlen(res.checkpoint_sha256), 64);
    cJSON *j = plain_eval();
    cJSON *p = cJSON_GetObjectItem(j, "parzen"), *m = cJSON_GetObjectItem(j, "memorisation");
    assert_non_null(p);
    assert_non_null(m);
    assert_printed(p, "test_ll_mean", res.score.mean);
    assert_string_equal(cJSON_GetObjectItem(p, "checkpoint_sha256")->valuestring,
                        res.checkpoint_sha256);
    assert_printed(m, "sample_median", res.nn_sample_median);
    cJSON_Delete(j);

    /* from before the hash: the same step keeps them, another drops them */
    edit_parzen("checkpoint_sha256", NULL);
    j = plain_eval();
    assert_non_null(cJSON_GetObjectItem(j, "parzen"));
    cJSON_Delete(j);
    edit_parzen("step", cJSON_CreateNumber(20));
    j = plain_eval();
    assert_null(cJSON_GetObjectItem(j, "parzen"));
    assert_null(cJSON_GetObjectItem(j, "memorisation"));
    cJSON_Delete(j);

    /* another checkpoint's hash */
    eval(&o, &res);
    edit_parzen("checkpoint_sha256", cJSON_CreateString("00"));
    j = plain_eval();
    assert_null(cJSON_GetObjectItem(j, "parzen"));
    assert_null(cJSON_GetObjectItem(j, "memorisation"));
    cJSON_Delete(j);
}

static void test_parzen_eval_is_deterministic_by_seed(void **state)
{
    (void)state;
    daecl_parzen_eval_opts o = opts(11), o2 = opts(12);
    daecl_parzen_eval_result a, b, c;
    eval(&o, &a);
    eval(&o, &b);
    eval(&o2, &c);
    assert_memory_equal(&a.score, &b.score, sizeof a.score);
    assert_true(a.nn_sample_median == b.nn_sample_median && a.nn_sample_p5 == b.nn_sample_p5);
    assert_true(a.score.mean != c.score.mean);
}

/* The chain samples again (core/sample.h), scored by core/parzen.h directly;
 * their nearest training rows by a direct search in double. */
static void test_parzen_eval_matches_the_library_and_a_direct_search(void **state)
{
    (void)state;
    daecl_parzen_eval_opts o = opts(21);
    daecl_parzen_eval_result res;
    eval(&o, &res);

    daecl_trained_opts to = {.run_dir = run_dir, .command = "eval"};
    daecl_run r;
    daecl_ckpt_state st;
    daecl_err err = {0};
    if (daecl_run_open_trained(&r, &to, &st, &err))
        fail_msg("open: %s", err.msg);
    size_t n = o.n_samples, dim = r.train->dim;
    float *start = malloc(n * dim * sizeof *start), *means = malloc(n * dim * sizeof *means);
    daecl_sample_opts so = {.chains = o.n_samples, .steps = o.steps, .burn_in = o.steps - 1,
                            .thin = 1, .has_seed = 1, .seed = o.seed,
                            .start = DAECL_SAMPLE_START_NOISE};
    if (daecl_sample_chains(&r, &so, start, NULL, means, &err))
        fail_msg("chains: %s", err.msg);
    daecl_parzen_score_result sc;
    if (daecl_parzen_score(r.s, means, n, r.test->x, r.test->n_rows, dim, res.score.sigma, 0, &sc,
                           &err))
        fail_msg("score: %s", err.msg);
    assert_true(sc.mean == res.score.mean && sc.se == res.score.se);

    /* the samples' nearest-training distances, sorted, by brute force */
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) {
        double best = INFINITY;
        for (size_t t = 0; t < r.train->n_rows; t++) {
            double acc = 0;
            for (size_t c = 0; c < dim; c++) {
                double v = (double)means[i * dim + c] - r.train->x[t * dim + c];
                acc += v * v;
            }
            best = acc < best ? acc : best;
        }
        d[i] = sqrt(best);
    }
    for (size_t i = 1; i < n; i++) /* insertion sort: 40 values */
        for (size_t k = i; k > 0 && d[k - 1] > d[k]; k--) {
            double t = d[k];
            d[k] = d[k - 1];
            d[k - 1] = t;
        }
    double median = 0.5 * (d[n / 2 - 1] + d[n / 2]); /* n even */
    assert_true(fabs(median - res.nn_sample_median) <= 1e-3 * median);
    daecl_run_close(&r);
    free(d);
    free(start);
    free(means);
}

static void refused(const daecl_parzen_eval_opts *o, const char *phrase)
{
    daecl_parzen_eval_result res;
    daecl_err err = {0};
    assert_int_not_equal(daecl_parzen_eval_run(o, &res, &err), 0);
    if (!strstr(err.msg, phrase))
        fail_msg("expected '%s' in: %s", phrase, err.msg);
}

static void test_parzen_eval_refuses_bad_options_and_a_run_without_test_set(void **state)
{
    (void)state;
    daecl_parzen_eval_opts o = opts(1);
    o.run_dir = notest_dir;
    refused(&o, "has no test set");
    o = opts(1);
    o.n_samples = 0;
    refused(&o, "at least one sample");
    o = opts(1);
    o.steps = 0;
    refused(&o, "at least one step");
    o = opts(1);
    o.n_sigmas = 0;
    refused(&o, "holds 0 values");
    o = opts(1);
    o.sigma_lo = 2;
    o.sigma_hi = 1;
    refused(&o, "no grid");
    o = opts(1);
    o.n_valid = 101;
    refused(&o, "does not fit in the 100 training rows");
}

static void test_parzen_eval_command_prints_its_line(void **state)
{
    (void)state;
    char *out = NULL;
    char *argv[] = {DAECL_TEST_BIN, "eval", run_dir, "--parzen", "--samples", "20", "--steps", "2",
                    "--valid", "10", "--sigmas", "0.1:1:4", NULL};
    int rc = test_run(argv, NULL, &out);
    if (rc != 0 || !strstr(out, "Parzen test log-likelihood") || !strstr(out, "decoder means") ||
        !strstr(out, "memorisation"))
        fail_msg("exit %d: %s", rc, out);
    free(out);
    char *bad[] = {DAECL_TEST_BIN, "eval", run_dir, "--parzen", "--sigmas", "0.1:1", NULL};
    rc = test_run(bad, NULL, &out);
    if (rc == 0 || !strstr(out, "LO:HI:K"))
        fail_msg("exit %d: %s", rc, out);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parzen_eval_writes_the_numbers_and_keeps_eval_json),
        cmocka_unit_test(test_plain_eval_keeps_the_parzen_numbers_of_its_checkpoint),
        cmocka_unit_test(test_parzen_eval_is_deterministic_by_seed),
        cmocka_unit_test(test_parzen_eval_matches_the_library_and_a_direct_search),
        cmocka_unit_test(test_parzen_eval_refuses_bad_options_and_a_run_without_test_set),
        cmocka_unit_test(test_parzen_eval_command_prints_its_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
