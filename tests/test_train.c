/* daecl tests — the train loop end to end: a short run on real Fashion-MNIST
 * lowers the test NLL; the run folder holds what DESIGN.md §6 promises; the
 * checkpoint reloads into the same model; a diverging run stops with the step. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/model.h"
#include "core/pngfile.h"
#include "core/train.h"
#include "tests/support.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"
#define CONFIG DAECL_TEST_SOURCE_DIR "/configs/fashion-mnist.yaml"

static int have_fmnist(void)
{
    return access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) == 0;
}

/* Parses metrics.jsonl into an array of objects (caller deletes). */
static cJSON *read_metrics(const char *run_dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    char *text = test_read_file(path, NULL);
    cJSON *all = cJSON_CreateArray();
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o)
            fail_msg("metrics.jsonl line is not JSON: %s", line);
        cJSON_AddItemToArray(all, o);
    }
    free(text);
    return all;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("metrics line lacks '%s'", key);
    return v->valuedouble;
}

static void test_short_training_lowers_test_nll(void **state)
{
    (void)state;
    if (!have_fmnist())
        skip();
    char *dir = test_tmpdir("train");
    char out[1100];
    snprintf(out, sizeof out, "%s/run", dir);
    const char *ov[] = {"data.train_limit=3000", "data.test_limit=1000",
                        "model.encoder=[{units: 64, activation: sigmoid}]", "train.epochs=2",
                        "train.log_every=10", "backend.plugin=cpu"};
    daecl_train_opts o = {.config_path = CONFIG, .overrides = ov, .n_overrides = 6,
                          .out_dir = out, .quiet = 1};
    char run_dir[1100];
    daecl_err err = {0};
    if (daecl_train(&o, run_dir, sizeof run_dir, &err))
        fail_msg("train: %s", err.msg);
    assert_string_equal(run_dir, out);

    cJSON *m = read_metrics(run_dir);
    double first = -1, last = -1, last_train = -1;
    int epochs = 0, steps = 0;
    cJSON *o_line;
    cJSON_ArrayForEach(o_line, m)
    {
        const char *type = cJSON_GetObjectItemCaseSensitive(o_line, "type")->valuestring;
        if (strcmp(type, "step") == 0) {
            steps++;
            assert_true(num(o_line, "train_nll") > 0);
            continue;
        }
        double e = num(o_line, "epoch");
        if (e == 0)
            first = num(o_line, "test_nll_clean");
        else {
            epochs++;
            last = num(o_line, "test_nll_clean");
            last_train = num(o_line, "train_nll");
            assert_true(num(o_line, "test_nll_corrupted") > 0);
            assert_true(num(o_line, "examples_per_s") > 0);
        }
    }
    cJSON_Delete(m);
    assert_int_equal(epochs, 2);
    assert_int_equal(steps, 4); /* 24 steps per epoch, a line every 10 */
    /* An untrained 784-64-784 net scores ~550 nats; two short epochs must
     * have learned something real. */
    if (!(last < 0.8 * first))
        fail_msg("test NLL went from %.2f to %.2f", first, last);
    assert_true(last_train > 0 && isfinite(last_train));

    /* The pictures decode (libpng) to the sizes their layout promises:
     * 64 filters of 28x28 drawn at 2x in an 8x8 grid, 10 examples in three
     * rows, and the fixed-size curves. */
    const struct {
        const char *name;
        uint32_t w, h;
        int channels;
    } pics[] = {{"filters.png", 8 * 56 + 9 * 2, 8 * 56 + 9 * 2, 1},
                {"reconstructions.png", 120 + 10 * 58 + 2, 3 * 58 + 2, 3},
                {"curves.png", 800, 500, 3}};
    for (size_t i = 0; i < 3; i++) {
        char pic[1200];
        snprintf(pic, sizeof pic, "%s/%s", run_dir, pics[i].name);
        uint8_t *px = NULL;
        uint32_t w, h;
        int ch;
        if (daecl_pngfile_read(pic, &px, &w, &h, &ch, &err))
            fail_msg("%s: %s", pics[i].name, err.msg);
        if (w != pics[i].w || h != pics[i].h || ch != pics[i].channels)
            fail_msg("%s is %ux%u with %d channels", pics[i].name, w, h, ch);
        free(px);
    }

    /* summary.json repeats the last epoch. */
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    char *text = test_read_file(path, NULL);
    cJSON *sum = cJSON_Parse(text);
    free(text);
    assert_non_null(sum);
    assert_true(num(sum, "test_nll_clean") == last);
    assert_true(num(sum, "epochs") == 2);
    cJSON_Delete(sum);

    /* config.yaml loads to a config that builds the same model, and the
     * checkpoint fits it. */
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    daecl_config *cfg = NULL;
    if (daecl_config_load(path, NULL, 0, test_registry(), &cfg, &err))
        fail_msg("config.yaml: %s", err.msg);
    assert_int_equal(cfg->model.encoder[0].units, 64);
    assert_int_equal(cfg->data.train_limit, 3000);
    daecl_model model;
    assert_int_equal(daecl_model_init(&model, cfg, 784, 1, &err), 0);
    float *params = malloc(model.n_params * sizeof(float));
    daecl_ckpt_state st;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run_dir);
    if (daecl_checkpoint_load(path, &model, params, NULL, NULL, &st, &err))
        fail_msg("checkpoint: %s", err.msg);
    assert_int_equal(st.epoch, 2);
    assert_int_equal(st.step, 48);
    free(params);
    daecl_config_destroy(cfg);
    free(dir);
}

/* Writes a small IDX file of uint8 images (n, 4, 4) with a pattern. */
static void write_idx(const char *path, uint32_t n)
{
    size_t bytes = 16 + (size_t)n * 16;
    unsigned char *b = calloc(bytes, 1);
    b[2] = 0x08, b[3] = 3;
    uint32_t dims[3] = {n, 4, 4};
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * d + k] = (unsigned char)(dims[d] >> (24 - 8 * k));
    for (size_t i = 0; i < (size_t)n * 16; i++)
        b[16 + i] = (unsigned char)((i * 37 + i / 16 * 11) % 256);
    test_write_file(path, b, bytes);
    free(b);
}

static void write_config(const char *dir, const char *extra)
{
    char path[1100], text[2048];
    snprintf(path, sizeof path, "%s/train.idx", dir);
    write_idx(path, 64);
    snprintf(path, sizeof path, "%s/test.idx", dir);
    write_idx(path, 16);
    snprintf(text, sizeof text,
             "name: tiny\n"
             "data: {train: train.idx, test: test.idx}\n"
             "model: {encoder: [{units: 8, activation: tanh}]}\n"
             "train: {epochs: 3, batch_size: 16, log_every: 0}\n"
             "backend: cpu\n"
             "output: {dir: %s/runs}\n"
             "%s",
             dir, extra);
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
}

static void test_run_folders_are_never_reused(void **state)
{
    (void)state;
    char *dir = test_tmpdir("train-names");
    write_config(dir, "");
    char cfg[1100], run1[1100], run2[1100];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    daecl_train_opts o = {.config_path = cfg, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, run1, sizeof run1, &err) || daecl_train(&o, run2, sizeof run2, &err))
        fail_msg("train: %s", err.msg);
    char want[1200];
    snprintf(want, sizeof want, "%s/runs/tiny", dir);
    assert_string_equal(run1, want);
    snprintf(want, sizeof want, "%s/runs/tiny-2", dir);
    assert_string_equal(run2, want);
    /* --out into a folder with a checkpoint is refused, pointing at resume. */
    o.out_dir = run1;
    assert_int_equal(daecl_train(&o, NULL, 0, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "daecl resume"));
    free(dir);
}

static void test_same_seed_gives_identical_runs(void **state)
{
    (void)state;
    char *dir = test_tmpdir("train-seed");
    write_config(dir, "corruption: {plugin: gaussian, sigma: 0.2}\n");
    char cfg[1100], run1[1100], run2[1100];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    daecl_train_opts o = {.config_path = cfg, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, run1, sizeof run1, &err) || daecl_train(&o, run2, sizeof run2, &err))
        fail_msg("train: %s", err.msg);
    char p1[1200], p2[1200];
    snprintf(p1, sizeof p1, "%s/checkpoint.safetensors", run1);
    snprintf(p2, sizeof p2, "%s/checkpoint.safetensors", run2);
    size_t n1, n2;
    char *a = test_read_file(p1, &n1), *b = test_read_file(p2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
    /* Another seed trains differently. */
    const char *ov[] = {"seed=1"};
    o.overrides = ov;
    o.n_overrides = 1;
    char run3[1100];
    if (daecl_train(&o, run3, sizeof run3, &err))
        fail_msg("train: %s", err.msg);
    snprintf(p2, sizeof p2, "%s/checkpoint.safetensors", run3);
    a = test_read_file(p1, &n1);
    b = test_read_file(p2, &n2);
    assert_true(n1 != n2 || memcmp(a, b, n1) != 0);
    free(a);
    free(b);
    free(dir);
}

static void test_diverging_run_stops_with_the_step(void **state)
{
    (void)state;
    char *dir = test_tmpdir("train-nan");
    write_config(dir, "likelihood: gaussian\n"
                      "optimizer: {lr: 1.0e+5}\n");
    char cfg[1100];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    const char *ov[] = {"model.encoder=[{units: 8, activation: linear}]", "train.log_every=1"};
    daecl_train_opts o = {.config_path = cfg, .overrides = ov, .n_overrides = 2, .quiet = 1};
    daecl_err err = {0};
    assert_int_equal(daecl_train(&o, NULL, 0, &err), DAECL_ENAN);
    assert_non_null(strstr(err.msg, "NaN or infinite by step"));
    assert_non_null(strstr(err.msg, "optimizer.lr"));
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_training_lowers_test_nll),
        cmocka_unit_test(test_run_folders_are_never_reused),
        cmocka_unit_test(test_same_seed_gives_identical_runs),
        cmocka_unit_test(test_diverging_run_stops_with_the_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
