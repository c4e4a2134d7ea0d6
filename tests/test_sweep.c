/* daecl tests — sweeps: values split at the right commas, a grid trains one
 * run per point, the tables hold every point and sort by the metric asked
 * for, and a bad value anywhere in the grid stops the sweep before any run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
        cmocka_unit_test(test_bad_value_anywhere_stops_the_sweep_before_it_starts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
