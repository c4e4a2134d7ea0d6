/* daecl tests — what a run may change against its checkpoint (core/compat.c):
 * the keys resume and eval may change, the first differing key named with
 * both values, a change of list length, and the data compared by content
 * (rows, values per row and a hash), not by path. */
#include <stdlib.h>
#include <string.h>

#include "core/compat.h"
#include "tests/support.h"

static const char *base_yaml =
    "data: {train: /nowhere/train.npy}\n"
    "model: {encoder: [{units: 8, activation: sigmoid}, {units: 4, activation: tanh}]}\n"
    "corruption: {plugin: masking, p: 0.25}\n"
    "optimizer: {name: sgd, lr: 0.1, momentum: 0.9}\n"
    "train: {epochs: 3, batch_size: 16}\n";

static daecl_config *load(const char *const *ov, size_t n)
{
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    if (daecl_config_load_string(base_yaml, strlen(base_yaml), "compat.yaml", ov, n,
                                 test_registry(), &cfg, &err))
        fail_msg("config: %s", err.msg);
    return cfg;
}

/* The checkpoint's config is the base; cfg is the base with one override. */
static int compare(const char *override, daecl_compat_mode mode, int reset, daecl_err *err)
{
    daecl_config *then = load(NULL, 0), *now = load(&override, 1);
    char *yaml = daecl_config_to_yaml(then);
    assert_non_null(yaml);
    int rc = daecl_compat_config(yaml, "ckpt.safetensors", now, mode, reset, err);
    free(yaml);
    daecl_config_destroy(then);
    daecl_config_destroy(now);
    return rc;
}

static void test_resume_may_change_only_how_long_how_it_logs_and_where(void **state)
{
    (void)state;
    static const char *const free_keys[] = {
        "train.epochs=9", "train.max_steps=5", "train.log_every=1", "train.checkpoint_every=2",
        "train.checkpoint_unit=step", "eval.denoising=false", "optimizer.lr=0.01",
        "output.dir=elsewhere", "backend.threads=1", "name=other",
        "data.train=/moved/train.npy", "data.resident_max_mb=1",
        "parallel.devices=[{plugin: cpu, threads: 1}, {plugin: cpu, threads: 2}]",
        "parallel.measure_steps=1", "parallel.comm=none",
#if DAECL_TEST_WITH_OPENCL
        "backend.plugin=opencl", /* a cpu-only build has no other backend */
#endif
    };
    daecl_err err = {0};
    for (size_t i = 0; i < sizeof free_keys / sizeof free_keys[0]; i++)
        if (compare(free_keys[i], DAECL_COMPAT_RESUME, 0, &err))
            fail_msg("%s was refused: %s", free_keys[i], err.msg);
    static const struct {
        const char *override, *words;
    } refused[] = {
        {"seed=1", "seed was 0 when checkpoint ckpt.safetensors was written and is 1 now"},
        {"model.encoder.1.units=5", "model.encoder.1.units was 4 when"},
        {"model.encoder.0.activation=relu", "model.encoder.0.activation was sigmoid when"},
        {"model.encoder=[{units: 8}]", "model.encoder was a list of 2 when"},
        {"model.decoder=[{units: 8}]", "model.decoder was mirror when"},
        {"model.tied_weights=true", "model.tied_weights was false when"},
        {"corruption.p=0.5", "corruption.p was 0.25 when"},
        {"corruption=none", "corruption.plugin was masking when"},
        {"likelihood=gaussian", "likelihood.plugin was bernoulli when"},
        {"train.batch_size=32", "train.batch_size was 16 when"},
        {"optimizer.name=adam", "--reset-optimizer"},
        {"optimizer.momentum=0.5", "optimizer.momentum was 0.9 when"},
        {"optimizer.beta1=0.8", "optimizer.beta1 was 0.9 when"},
        {"optimizer.weight_decay=0.001", "optimizer.weight_decay was 0 when"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        memset(&err, 0, sizeof err);
        if (compare(refused[i].override, DAECL_COMPAT_RESUME, 0, &err) != DAECL_ECONFIG ||
            !strstr(err.msg, refused[i].words))
            fail_msg("%s: want '%s', got '%s'", refused[i].override, refused[i].words, err.msg);
    }
    /* --reset-optimizer frees the optimiser's keys, and only those */
    assert_int_equal(compare("optimizer.name=adam", DAECL_COMPAT_RESUME, 1, &err), 0);
    assert_int_equal(compare("optimizer.momentum=0", DAECL_COMPAT_RESUME, 1, &err), 0);
    assert_int_equal(compare("train.batch_size=32", DAECL_COMPAT_RESUME, 1, &err), DAECL_ECONFIG);
}

static void test_eval_takes_the_model_and_likelihood_from_the_checkpoint(void **state)
{
    (void)state;
    daecl_err err = {0};
    assert_int_equal(compare("model.encoder.0.activation=relu", DAECL_COMPAT_EVAL, 0, &err),
                     DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "model.encoder.0.activation is relu, but checkpoint "
                                    "ckpt.safetensors was trained with "
                                    "model.encoder.0.activation = sigmoid; daecl eval takes"));
    assert_int_equal(compare("likelihood=gaussian", DAECL_COMPAT_EVAL, 0, &err), DAECL_ECONFIG);
    /* what eval may change: the data it reports on, the optimiser it never runs */
    assert_int_equal(compare("optimizer.name=adam", DAECL_COMPAT_EVAL, 0, &err), 0);
    assert_int_equal(compare("train.batch_size=32", DAECL_COMPAT_EVAL, 0, &err), 0);
    assert_int_equal(compare("data.test=/other/test.npy", DAECL_COMPAT_EVAL, 0, &err), 0);
}

static void test_a_damaged_stored_config_is_a_checkpoint_error(void **state)
{
    (void)state;
    daecl_config *now = load(NULL, 0);
    daecl_err err = {0};
    assert_int_equal(daecl_compat_config("a: [unclosed", "c.safetensors", now, DAECL_COMPAT_RESUME,
                                         0, &err),
                     DAECL_ECKPT);
    assert_non_null(strstr(err.msg, "the config stored in checkpoint c.safetensors does not parse"));
    daecl_config_destroy(now);
}

static daecl_dataset *dataset(size_t rows, size_t dim, float bump)
{
    daecl_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    float *x = calloc(rows * dim, sizeof(float));
    assert_non_null(x);
    ds->n_rows = rows;
    ds->dim = dim;
    test_fill_uniform(x, rows * dim, 3, 0, 1);
    x[rows * dim - 1] += bump;
    ds->x = x; /* loaded (mapped 0): daecl_dataset_destroy frees it */
    return ds;
}

static void test_data_are_compared_by_content(void **state)
{
    (void)state;
    daecl_config *cfg = load(NULL, 0);
    daecl_dataset *a = dataset(100, 7, 0), *same = dataset(100, 7, 0);
    daecl_dataset *last_value = dataset(100, 7, 1e-6f), *fewer = dataset(99, 7, 0);
    int32_t y[100] = {0};
    daecl_labels labels = {.y = y, .n = 100, .n_classes = 1};
    daecl_data_digest d, d2;
    daecl_data_digest_of(a, NULL, &labels, NULL, &d);
    char *json = daecl_data_digest_json(&d);
    assert_non_null(json);
    assert_null(strstr(json, "\"test\"")); /* absent sets are not recorded */
    daecl_err err = {0};
    daecl_data_digest_of(same, NULL, &labels, NULL, &d2);
    assert_int_equal(daecl_compat_data(json, "c", &d2, cfg, &err), 0);
    assert_int_equal(daecl_compat_data(NULL, "c", &d2, cfg, &err), 0); /* older checkpoint */
    daecl_data_digest_of(last_value, NULL, &labels, NULL, &d2);
    assert_int_equal(daecl_compat_data(json, "c", &d2, cfg, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "data.train (/nowhere/train.npy) now gives 100 x 7 values "
                                    "with content hash"));
    daecl_data_digest_of(fewer, NULL, &labels, NULL, &d2);
    assert_int_equal(daecl_compat_data(json, "c", &d2, cfg, &err), DAECL_ECONFIG);
    y[99] = 1;
    daecl_data_digest_of(a, NULL, &labels, NULL, &d2);
    assert_int_equal(daecl_compat_data(json, "c", &d2, cfg, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "data.train_labels"));
    /* a test set the checkpoint did not have */
    daecl_data_digest_of(same, a, NULL, NULL, &d2);
    y[99] = 0;
    daecl_data_digest_of(same, a, &labels, NULL, &d2);
    assert_int_equal(daecl_compat_data(json, "c", &d2, cfg, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "was made with no such data"));
    assert_int_equal(daecl_compat_data("[1]", "c", &d2, cfg, &err), DAECL_ECKPT);
    free(json);
    daecl_dataset *sets[] = {a, same, last_value, fewer};
    for (size_t i = 0; i < 4; i++)
        daecl_dataset_destroy(sets[i]);
    daecl_config_destroy(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_may_change_only_how_long_how_it_logs_and_where),
        cmocka_unit_test(test_eval_takes_the_model_and_likelihood_from_the_checkpoint),
        cmocka_unit_test(test_a_damaged_stored_config_is_a_checkpoint_error),
        cmocka_unit_test(test_data_are_compared_by_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
