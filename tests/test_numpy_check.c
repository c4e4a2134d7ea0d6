/* daecl tests — an independent check of a finished run: a numpy-only script
 * (tests/tools/check_run.py) loads checkpoint.safetensors, rebuilds the
 * network from the metadata and recomputes the clean test NLL that
 * summary.json reports. Skipped where Debian's python3-numpy is missing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/train.h"
#include "tests/support.h"

#define PYTHON "/usr/bin/python3"
#define FMNIST_TEST "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

static int have_numpy(void)
{
    char *argv[] = {PYTHON, "-c", "import numpy", NULL};
    return access(PYTHON, X_OK) == 0 && test_run(argv, NULL, NULL) == 0;
}

static void check(const char *tag, const char *const *ov, size_t n_ov)
{
    char *dir = test_tmpdir(tag);
    char out[1100];
    snprintf(out, sizeof out, "%s/run", dir);
    daecl_train_opts o = {.config_path = DAECL_TEST_SOURCE_DIR "/configs/fashion-mnist.yaml",
                          .overrides = ov, .n_overrides = n_ov, .out_dir = out, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, NULL, 0, &err))
        fail_msg("train: %s", err.msg);
    char *argv[] = {PYTHON, DAECL_TEST_SOURCE_DIR "/tests/tools/check_run.py", out,
                    FMNIST_TEST, "500", NULL};
    char *output = NULL;
    int rc = test_run(argv, NULL, &output);
    print_message("%s", output);
    if (rc != 0)
        fail_msg("check_run.py exited %d", rc);
    free(output);
    free(dir);
}

static void test_numpy_recomputes_the_reported_test_nll(void **state)
{
    (void)state;
    if (!have_numpy() || access(FMNIST_TEST, R_OK) != 0)
        skip();
    const char *ov[] = {"data.train_limit=1000", "data.test_limit=500", "train.epochs=1",
                        "model.encoder=[{units: 32, activation: sigmoid}]", "backend.plugin=cpu"};
    check("numpy", ov, 5);
}

static void test_numpy_reads_tied_and_two_layer_models(void **state)
{
    (void)state;
    if (!have_numpy() || access(FMNIST_TEST, R_OK) != 0)
        skip();
    const char *ov[] = {"data.train_limit=1000", "data.test_limit=500", "train.epochs=1",
                        "model.encoder=[{units: 48, activation: relu}, {units: 16, activation: tanh}]",
                        "model.tied_weights=true", "backend.plugin=cpu"};
    check("numpy-tied", ov, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_recomputes_the_reported_test_nll),
        cmocka_unit_test(test_numpy_reads_tied_and_two_layer_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
