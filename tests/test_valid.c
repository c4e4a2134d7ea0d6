/* daecl tests — the validation split (data.valid_fraction): its rows are
 * the training file's last ones and are never trained on (a run with the
 * split ends bit-identical to one trained on the other rows alone), its NLL
 * and the probe's validation accuracy are what the test set gets for the
 * same rows, the split of data and labels, and the refusals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data.h"
#include "core/train.h"
#include "tests/support.h"

#define ROWS 100
#define DIM 16

/* The value of byte i of test_small_experiment's data.idx (header of 12). */
static unsigned char data_byte(size_t i)
{
    return (unsigned char)((i * 7919) % 251);
}

static double summary_number(const char *dir, const char *run, const char *key)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/summary.json", dir, run);
    char *text = test_read_file(path, NULL);
    char want[128];
    snprintf(want, sizeof want, "\"%s\":", key);
    const char *at = strstr(text, want);
    if (!at)
        fail_msg("%s has no %s", path, key);
    double v = strtod(at + strlen(want), NULL);
    free(text);
    return v;
}

static void test_the_held_out_rows_are_never_trained_on(void **state)
{
    (void)state;
    char *dir = test_small_experiment("valid", "", "{plugin: cpu, threads: 1}");
    /* The last 20 rows as a file of their own. */
    unsigned char tail[12 + 20 * DIM] = {0, 0, 0x08, 2, 0, 0, 0, 20, 0, 0, 0, DIM};
    for (size_t i = 0; i < 20 * DIM; i++)
        tail[12 + i] = data_byte(12 + 80 * DIM + i);
    char path[1200], lpath[1200], ltail_path[1200];
    snprintf(path, sizeof path, "%s/tail.idx", dir);
    test_write_file(path, tail, sizeof tail);
    /* Labels for the probe: all 100 rows', and the last 20's alone. */
    unsigned char lab[8 + ROWS] = {0, 0, 0x08, 1, 0, 0, 0, ROWS};
    unsigned char ltail[8 + 20] = {0, 0, 0x08, 1, 0, 0, 0, 20};
    for (size_t i = 0; i < ROWS; i++)
        lab[8 + i] = (unsigned char)(data_byte(12 + i * DIM) % 3);
    memcpy(ltail + 8, lab + 8 + 80, 20);
    snprintf(lpath, sizeof lpath, "%s/labels.idx", dir);
    snprintf(ltail_path, sizeof ltail_path, "%s/tail-labels.idx", dir);
    test_write_file(lpath, lab, sizeof lab);
    test_write_file(ltail_path, ltail, sizeof ltail);
    char train_labels[1300], test_labels[1300], tail_labels[1300];
    snprintf(train_labels, sizeof train_labels, "data.train_labels=%s", lpath);
    snprintf(test_labels, sizeof test_labels, "data.test_labels=%s", lpath);
    snprintf(tail_labels, sizeof tail_labels, "data.test_labels=%s", ltail_path);
    daecl_err err = {0};
    const char *split[] = {"data.valid_fraction=0.2", train_labels, test_labels,
                           "eval.probe=true"};
    if (test_train_run(dir, "split", split, 4, &err))
        fail_msg("split: %s", err.msg);
    char test_ov[1300];
    snprintf(test_ov, sizeof test_ov, "data.test=%s", path);
    const char *alone[] = {"data.train_limit=80", test_ov, "data.test_limit=0", train_labels,
                           tail_labels, "eval.probe=true"};
    if (test_train_run(dir, "alone", alone, 6, &err))
        fail_msg("alone: %s", err.msg);
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/split", dir);
    snprintf(b, sizeof b, "%s/alone", dir);
    test_same_checkpoints(a, b);
    assert_true(summary_number(dir, "split", "train_examples") == 80);
    /* The validation NLL is the test NLL of the same rows. */
    double valid = summary_number(dir, "split", "valid_nll_clean");
    double test = summary_number(dir, "alone", "test_nll_clean");
    if (valid != test)
        fail_msg("valid_nll_clean %.17g, the same rows as a test set %.17g", valid, test);
    /* So is the probe's validation accuracy: one fit, scored on both. */
    valid = summary_number(dir, "split", "probe_valid_accuracy");
    test = summary_number(dir, "alone", "probe_accuracy");
    if (valid != test)
        fail_msg("probe_valid_accuracy %.17g, the same rows as a test set %.17g", valid, test);
    assert_true(summary_number(dir, "split", "probe_valid_nll") ==
                summary_number(dir, "alone", "probe_test_nll"));
    /* Each epoch reports it. */
    snprintf(path, sizeof path, "%s/split/metrics.jsonl", dir);
    char *metrics = test_read_file(path, NULL);
    size_t epochs = 0;
    for (const char *p = metrics; (p = strstr(p, "\"type\":\"epoch\"")) != NULL; p++) {
        const char *end = strchr(p, '\n');
        const char *v = strstr(p, "\"valid_nll_clean\":");
        assert_true(v && (!end || v < end));
        epochs++;
    }
    assert_int_equal(epochs, 4); /* the untrained model, then 3 epochs */
    free(metrics);
    test_remove_dir(dir);
}

static void test_data_and_labels_split_at_the_tail(void **state)
{
    (void)state;
    char *dir = test_tmpdir("valid-split");
    unsigned char idx[12 + ROWS * DIM] = {0, 0, 0x08, 2, 0, 0, 0, ROWS, 0, 0, 0, DIM};
    unsigned char lab[8 + ROWS] = {0, 0, 0x08, 1, 0, 0, 0, ROWS};
    for (size_t i = 12; i < sizeof idx; i++)
        idx[i] = data_byte(i);
    for (size_t i = 0; i < ROWS; i++)
        lab[8 + i] = (unsigned char)(i % 7);
    char dpath[1200], lpath[1200];
    snprintf(dpath, sizeof dpath, "%s/d.idx", dir);
    snprintf(lpath, sizeof lpath, "%s/l.idx", dir);
    test_write_file(dpath, idx, sizeof idx);
    test_write_file(lpath, lab, sizeof lab);
    daecl_dataset *ds, *whole, *tail;
    daecl_labels *lb, *ltail;
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_load(dpath, 0, 0, &ds, &err), 0);
    assert_int_equal(daecl_dataset_load(dpath, 0, 0, &whole, &err), 0);
    assert_int_equal(daecl_labels_load(lpath, 0, 0, &lb, &err), 0);
    assert_int_equal(daecl_dataset_take_tail(ds, 30, &tail, &err), 0);
    assert_int_equal(daecl_labels_take_tail(lb, 30, &ltail, &err), 0);
    assert_int_equal(ds->n_rows, 70);
    assert_int_equal(tail->n_rows, 30);
    assert_int_equal(tail->dim, DIM);
    assert_int_equal(tail->n_shape, whole->n_shape);
    assert_true(tail->min == whole->min && tail->max == whole->max);
    assert_memory_equal(ds->x, whole->x, 70 * DIM * sizeof *ds->x);
    assert_memory_equal(tail->x, whole->x + 70 * DIM, 30 * DIM * sizeof *ds->x);
    assert_int_equal(lb->n, 70);
    assert_int_equal(ltail->n, 30);
    assert_int_equal(ltail->n_classes, 7);
    for (size_t i = 0; i < 30; i++)
        assert_int_equal(ltail->y[i], (int32_t)((70 + i) % 7));
    daecl_dataset_destroy(ds);
    daecl_dataset_destroy(whole);
    daecl_dataset_destroy(tail);
    daecl_labels_destroy(lb);
    daecl_labels_destroy(ltail);
    test_remove_dir(dir);
}

static void test_a_split_without_rows_is_refused(void **state)
{
    (void)state;
    char *dir = test_small_experiment("valid-refused", "", "cpu");
    daecl_err err = {0};
    const char *tiny[] = {"data.valid_fraction=0.004"};
    assert_int_not_equal(test_train_run(dir, "tiny", tiny, 1, &err), 0);
    assert_non_null(strstr(err.msg, "data.valid_fraction 0.004 of the 100 training rows"));
    assert_non_null(strstr(err.msg, "no validation row"));
    const char *big[] = {"data.valid_fraction=0.6"};
    assert_int_not_equal(test_train_run(dir, "big", big, 1, &err), 0);
    assert_non_null(strstr(err.msg, "valid_fraction"));
    test_remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_held_out_rows_are_never_trained_on),
        cmocka_unit_test(test_data_and_labels_split_at_the_tail),
        cmocka_unit_test(test_a_split_without_rows_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
