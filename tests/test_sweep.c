/* daecl tests — sweeps: values split at the right commas, a grid trains one
 * run per point, the tables hold every point and sort by the metric asked
 * for, and a bad value anywhere in the grid stops the sweep before any run. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/evaluate.h"
#include "core/sweep.h"
#include "tests/support.h"

static void test_values_split_at_top_level_commas(void **state)
{
    (void)state;
    daecl_sweep_axis ax;
    daecl_err err = {0};
    assert_int_equal(daecl_sweep_parse_axis("corruption.clip=[0, 1],[0, 0.5],\"a,b\"", &ax, &err),
                     0);
    assert_string_equal(ax.key, "corruption.clip");
    assert_int_equal(ax.n_values, 3);
    assert_string_equal(ax.values[0], "[0, 1]");
    assert_string_equal(ax.values[1], "[0, 0.5]");
    assert_string_equal(ax.values[2], "\"a,b\"");
    daecl_sweep_axis_free(&ax);
    assert_int_equal(daecl_sweep_parse_axis("train.epochs=3", &ax, &err), 0);
    assert_int_equal(ax.n_values, 1);
    daecl_sweep_axis_free(&ax);
    assert_int_equal(daecl_sweep_parse_axis("model.encoder=[{units: 3}", &ax, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "unclosed bracket"));
    assert_int_equal(daecl_sweep_parse_axis("=3", &ax, &err), DAECL_EUSAGE);
}

static char *experiment(void)
{
    char *dir = test_tmpdir("sweep");
    char path[1200], text[1024];
    unsigned char idx[12 + 40 * 8] = {0, 0, 0x08, 2, 0, 0, 0, 40, 0, 0, 0, 8};
    for (size_t i = 12; i < sizeof idx; i++)
        idx[i] = (unsigned char)(i * 31);
    snprintf(path, sizeof path, "%s/d.idx", dir);
    test_write_file(path, idx, sizeof idx);
    snprintf(text, sizeof text,
             "name: tiny\ndata: {train: d.idx, test: d.idx}\n"
             "model: {encoder: [{units: 3}]}\ntrain: {epochs: 2, batch_size: 8}\n"
             "backend: cpu\noutput: {dir: %s/runs}\n", dir);
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
    return dir;
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_grid_trains_every_point_and_tabulates(void **state)
{
    (void)state;
    char *dir = experiment();
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    const char *args[] = {"corruption.p=0,0.5", "optimizer.lr=0.1,0.01,1", "train.epochs=1"};
    daecl_sweep_opts o = {.config_path = cfg, .args = args, .n_args = 3, .quiet = 1,
                          .sort = "train_nll"};
    daecl_sweep_result r;
    daecl_err err = {0};
    if (daecl_sweep(&o, &r, &err))
        fail_msg("sweep: %s", err.msg);
    assert_int_equal(r.n_points, 6);
    assert_int_equal(r.n_failed, 0);
    char want[1300];
    snprintf(want, sizeof want, "%s/runs/tiny-sweep", dir);
    assert_string_equal(r.dir, want);
    /* One run folder per point, named after its values. */
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/004_corruption.p=0.5_optimizer.lr=0.1/summary.json", r.dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/sweep.csv", r.dir);
    char *csv = test_read_file(path, NULL);
    assert_int_equal(count_lines(csv), 7);
    assert_non_null(strstr(csv, "point,run,corruption.p,optimizer.lr,train.epochs,status,"));
    free(csv);
    /* sweep.md lists the points best first. */
    snprintf(path, sizeof path, "%s/sweep.md", r.dir);
    char *md = test_read_file(path, NULL);
    assert_non_null(strstr(md, "Sorted by train_nll (lower is better)"));
    double prev = -1;
    size_t rows = 0;
    for (char *line = strtok(md, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "| 00", 4) != 0)
            continue;
        /* columns: run | p | lr | train_nll | ... */
        char *cell = line;
        for (int k = 0; k < 3; k++)
            cell = strchr(cell + 1, '|');
        double v = strtod(cell + 1, NULL);
        assert_true(v >= prev);
        prev = v;
        rows++;
    }
    assert_int_equal(rows, 6);
    free(md);
    free(dir);
}

/* With a validation set and no --sort, the points are ordered by its NLL:
 * settings are chosen without the test set. */
static void test_a_sweep_with_a_validation_set_sorts_by_it(void **state)
{
    (void)state;
    char *dir = experiment();
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    const char *args[] = {"optimizer.lr=0.1,1", "data.valid_fraction=0.25", "train.epochs=1"};
    daecl_sweep_opts o = {.config_path = cfg, .args = args, .n_args = 3, .quiet = 1};
    daecl_sweep_result r;
    daecl_err err = {0};
    if (daecl_sweep(&o, &r, &err))
        fail_msg("sweep: %s", err.msg);
    char path[4400];
    snprintf(path, sizeof path, "%s/sweep.md", r.dir);
    char *md = test_read_file(path, NULL);
    assert_non_null(strstr(md, "Sorted by valid_nll_clean (lower is better)"));
    free(md);
    o.sort = "test_nll";
    assert_int_equal(daecl_sweep(&o, &r, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "cannot sort by 'test_nll'; use one of train_nll, "
                                    "test_nll_clean"));
    assert_non_null(strstr(err.msg, "valid_nll_clean"));
    free(dir);
}

/* experiment() with labels (three classes), the probe on and a quarter of
 * the training rows held out: settings chosen on the validation set. */
static char *experiment_with_validation(char *cfg, size_t n)
{
    char *dir = experiment();
    char path[1200], text[1024];
    unsigned char lab[8 + 40] = {0, 0, 0x08, 1, 0, 0, 0, 40};
    for (size_t i = 0; i < 40; i++)
        lab[8 + i] = (unsigned char)(i % 3);
    snprintf(path, sizeof path, "%s/l.idx", dir);
    test_write_file(path, lab, sizeof lab);
    snprintf(text, sizeof text,
             "name: tiny\ndata: {train: d.idx, test: d.idx, train_labels: l.idx, test_labels: "
             "l.idx, valid_fraction: 0.25}\nmodel: {encoder: [{units: 3}]}\n"
             "train: {epochs: 1, batch_size: 8}\neval: {probe: true}\nbackend: cpu\n"
             "output: {dir: %s/runs}\n", dir);
    snprintf(cfg, n, "%s/val.yaml", dir);
    test_write_file(cfg, text, strlen(text));
    return dir;
}

static double json_number(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("no number '%s'", key);
    return v->valuedouble;
}

static void same(double a, double b)
{
    if (!(fabs(a - b) <= 4 * DBL_EPSILON * fabs(b)))
        fail_msg("%.17g is not %.17g", a, b);
}

/* No key of a run's files that the test set gives. */
static void assert_no_test_numbers(const char *path)
{
    char *text = test_read_file(path, NULL);
    static const char *const test_keys[] = {"\"test_", "_test_nll\"", "\"probe_accuracy\"",
                                            "\"accuracy\"", "\"mse_", "\"psnr_"};
    for (size_t k = 0; k < sizeof test_keys / sizeof test_keys[0]; k++)
        if (strstr(text, test_keys[k]))
            fail_msg("%s holds %s", path, test_keys[k]);
    assert_non_null(strstr(text, "\"probe_valid_accuracy\"")); /* it did score the probe */
    free(text);
}

/* With a validation set no point reads the test set; the best point by
 * probe_valid_accuracy is evaluated on it once, as `daecl eval` would. */
static void test_a_validation_sweep_reads_the_test_set_once_for_the_chosen_point(void **state)
{
    (void)state;
    char cfg[1300];
    char *dir = experiment_with_validation(cfg, sizeof cfg);
    const char *args[] = {"optimizer.lr=0.01,3,0.3", "seed=5,6"};
    daecl_sweep_opts o = {.config_path = cfg, .args = args, .n_args = 2, .quiet = 1};
    daecl_sweep_result r;
    daecl_err err = {0};
    if (daecl_sweep(&o, &r, &err))
        fail_msg("sweep: %s", err.msg);
    assert_int_equal(r.n_points, 6);
    assert_true(r.have_final);
    char path[4400];
    snprintf(path, sizeof path, "%s/sweep.json", r.dir);
    cJSON *report = test_read_json(path);
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(report, "final");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(fin, "chosen_by")->valuestring,
                        "probe_valid_accuracy");
    /* The best validation accuracy; on a tie, the first in grid order. */
    const char *run = cJSON_GetObjectItemCaseSensitive(fin, "run")->valuestring;
    size_t best = 0;
    double best_acc = -1;
    char names[6][64] = {"001_optimizer.lr=0.01_seed=5", "002_optimizer.lr=0.01_seed=6",
                         "003_optimizer.lr=3_seed=5", "004_optimizer.lr=3_seed=6",
                         "005_optimizer.lr=0.3_seed=5", "006_optimizer.lr=0.3_seed=6"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "%s/%s/summary.json", r.dir, names[i]);
        assert_no_test_numbers(path);
        cJSON *sum = test_read_json(path);
        double acc = json_number(sum, "probe_valid_accuracy");
        if (acc > best_acc) {
            best = i;
            best_acc = acc;
        }
        cJSON_Delete(sum);
        snprintf(path, sizeof path, "%s/%s/metrics.jsonl", r.dir, names[i]);
        char *lines = test_read_file(path, NULL);
        assert_null(strstr(lines, "test_"));
        assert_non_null(strstr(lines, "valid_nll_clean"));
        free(lines);
    }
    assert_string_equal(run, names[best]);
    for (size_t i = 0; i < 6; i++) { /* the test set, read once */
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/eval.json", r.dir, names[i]);
        assert_int_equal(stat(path, &st) == 0, i == best);
    }
    assert_int_equal(r.final_point, best);
    assert_true(json_number(fin, "point") == (double)(best + 1));
    same(json_number(fin, "value"), best_acc);
    /* Its test numbers are those of `daecl eval` on its run with the test set. */
    char run_dir[4400], test[1400], labels[1400];
    snprintf(run_dir, sizeof run_dir, "%s/%s", r.dir, names[best]);
    snprintf(test, sizeof test, "data.test=%s/d.idx", dir);
    snprintf(labels, sizeof labels, "data.test_labels=%s/l.idx", dir);
    const char *ov[] = {test, labels};
    daecl_eval_opts eo = {.run_dir = run_dir, .overrides = ov, .n_overrides = 2};
    daecl_evaluation ev;
    if (daecl_eval_run(&eo, &ev, NULL, 0, &err))
        fail_msg("eval: %s", err.msg);
    assert_true(ev.have_test && ev.have_probe);
    /* cJSON prints a double in 15 digits when that reads back within an
     * epsilon: the last bit may go */
    same(json_number(fin, "test_nll_clean"), ev.test.nll_clean);
    same(json_number(fin, "test_nll_corrupted"), ev.test.nll_corrupted);
    same(json_number(fin, "probe_accuracy"), ev.probe.accuracy);
    same(json_number(fin, "probe_valid_accuracy"), best_acc);
    cJSON_Delete(report);
    /* sweep.md says so, and shows no test columns for the points. */
    snprintf(path, sizeof path, "%s/sweep.md", r.dir);
    char *md = test_read_file(path, NULL);
    assert_non_null(strstr(md, "Sorted by probe_valid_accuracy (higher is better)"));
    char *section = strstr(md, "## Final report");
    assert_non_null(section);
    assert_null(strstr(md, "| test_nll_clean |"));
    assert_non_null(strstr(section, names[best]));
    char want[128];
    snprintf(want, sizeof want, "test_nll_clean %.4f", ev.test.nll_clean);
    assert_non_null(strstr(section, want));
    snprintf(want, sizeof want, "probe_accuracy %.2f%%", 100 * ev.probe.accuracy);
    assert_non_null(strstr(section, want));
    free(md);
    /* --sort valid_nll_clean picks by that instead. */
    o.sort = "valid_nll_clean";
    const char *one[] = {"optimizer.lr=0.01,3"};
    o.args = one;
    o.n_args = 1;
    if (daecl_sweep(&o, &r, &err))
        fail_msg("sweep: %s", err.msg);
    double nll[2];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%03zu_optimizer.lr=%s/summary.json", r.dir, i + 1,
                 i ? "3" : "0.01");
        cJSON *sum = test_read_json(path);
        nll[i] = json_number(sum, "valid_nll_clean");
        cJSON_Delete(sum);
    }
    assert_true(nll[0] != nll[1]);
    assert_int_equal(r.final_point, nll[1] < nll[0]);
    free(dir);
}

/* Sorting a sweep with a validation set by a test metric is the peeking
 * the validation set is there to avoid: refused before anything trains,
 * as is a point without one. Without a test set there is no report. */
static void test_a_validation_sweep_refuses_a_test_sort_and_a_point_without_one(void **state)
{
    (void)state;
    char cfg[1300];
    char *dir = experiment_with_validation(cfg, sizeof cfg);
    const char *args[] = {"optimizer.lr=0.1,1"};
    static const char *const test_metrics[] = {"test_nll_clean", "probe_accuracy",
                                               "psnr_reconstruction_db"};
    for (size_t k = 0; k < 3; k++) {
        daecl_sweep_opts o = {.config_path = cfg, .args = args, .n_args = 1, .quiet = 1,
                              .sort = test_metrics[k]};
        daecl_sweep_result r;
        daecl_err err = {0};
        assert_int_equal(daecl_sweep(&o, &r, &err), DAECL_EUSAGE);
        assert_non_null(strstr(err.msg, test_metrics[k]));
        assert_non_null(strstr(err.msg, "sort by valid_nll_clean or probe_valid_accuracy"));
        assert_int_equal(r.n_points, 0);
    }
    /* So is a point without a validation set: it would be ranked on nothing. */
    const char *mixed[] = {"data.valid_fraction=0.25,0"};
    daecl_sweep_opts o = {.config_path = cfg, .args = mixed, .n_args = 1, .quiet = 1};
    daecl_sweep_result r;
    daecl_err err = {0};
    assert_int_equal(daecl_sweep(&o, &r, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "sweep point 2 has no validation set"));
    char path[1300];
    struct stat st;
    snprintf(path, sizeof path, "%s/runs", dir);
    assert_int_not_equal(stat(path, &st), 0);
    /* A config with a validation set and no test set chooses, and says
     * there is nothing to report on. */
    const char *no_test[] = {"optimizer.lr=0.1,1", "data.test=", "data.test_labels="};
    o.args = no_test;
    o.n_args = 3;
    if (daecl_sweep(&o, &r, &err))
        fail_msg("sweep: %s", err.msg);
    assert_false(r.have_final);
    char md_path[4400];
    snprintf(md_path, sizeof md_path, "%s/sweep.md", r.dir);
    char *md = test_read_file(md_path, NULL);
    assert_non_null(strstr(md, "The config has no test set (data.test)"));
    free(md);
    free(dir);
}

/* Without a validation set each point reports its test numbers, the table
 * sorts by test_nll_clean and there is no final report. */
static void test_a_sweep_without_a_validation_set_reports_each_point_on_test(void **state)
{
    (void)state;
    char *dir = experiment();
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    const char *args[] = {"optimizer.lr=0.1,1", "train.epochs=1"};
    daecl_sweep_opts o = {.config_path = cfg, .args = args, .n_args = 2, .quiet = 1};
    daecl_sweep_result r;
    daecl_err err = {0};
    if (daecl_sweep(&o, &r, &err))
        fail_msg("sweep: %s", err.msg);
    assert_false(r.have_final);
    char path[4400];
    snprintf(path, sizeof path, "%s/002_optimizer.lr=1/summary.json", r.dir);
    cJSON *sum = test_read_json(path);
    (void)json_number(sum, "test_nll_clean");
    cJSON_Delete(sum);
    snprintf(path, sizeof path, "%s/sweep.md", r.dir);
    char *md = test_read_file(path, NULL);
    assert_non_null(strstr(md, "Sorted by test_nll_clean (lower is better)"));
    assert_null(strstr(md, "Final report"));
    free(md);
    struct stat st;
    snprintf(path, sizeof path, "%s/sweep.json", r.dir);
    assert_int_not_equal(stat(path, &st), 0);
    free(dir);
}

static void test_bad_value_anywhere_stops_the_sweep_before_it_starts(void **state)
{
    (void)state;
    char *dir = experiment();
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    const char *args[] = {"corruption.p=0,0.5,1.5"};
    daecl_sweep_opts o = {.config_path = cfg, .args = args, .n_args = 1, .quiet = 1};
    daecl_sweep_result r;
    daecl_err err = {0};
    assert_int_equal(daecl_sweep(&o, &r, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "corruption.p=1.5"));
    assert_int_equal(r.n_points, 0);
    char path[1300];
    struct stat st;
    snprintf(path, sizeof path, "%s/runs", dir);
    assert_int_not_equal(stat(path, &st), 0);
    /* So does an unknown sort metric. */
    const char *ok[] = {"corruption.p=0"};
    daecl_sweep_opts o2 = {.config_path = cfg, .args = ok, .n_args = 1, .quiet = 1, .sort = "acc"};
    assert_int_equal(daecl_sweep(&o2, &r, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "probe_accuracy"));
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_split_at_top_level_commas),
        cmocka_unit_test(test_grid_trains_every_point_and_tabulates),
        cmocka_unit_test(test_a_sweep_with_a_validation_set_sorts_by_it),
        cmocka_unit_test(test_a_validation_sweep_reads_the_test_set_once_for_the_chosen_point),
        cmocka_unit_test(test_a_validation_sweep_refuses_a_test_sort_and_a_point_without_one),
        cmocka_unit_test(test_a_sweep_without_a_validation_set_reports_each_point_on_test),
        cmocka_unit_test(test_bad_value_anywhere_stops_the_sweep_before_it_starts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
