/* daecl tests — whole training runs agree across backends and data paths:
 * 200 steps on the opencl backend against the cpu reference (losses within
 * 1e-4 relative at every logged step), streamed data against resident data,
 * the fused loss of GPUs forced onto POCL against both,
 * a corruption plugin without device code (run on the host around the
 * device) against the same plugin on the cpu backend, and the row-granular
 * block and patch_mask on both backends, where data.shape reaches them.
 * Skipped where no OpenCL device is available. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/train.h"
#include "tests/support.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* True when an OpenCL device exists. The backend must then open: a broken
 * backend fails these tests rather than skipping them. */
static int have_opencl(void)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, "opencl");
    const daecl_backend_ops *ops = p->ops;
    daecl_device_info info[8];
    size_t n = 0;
    daecl_err err = {0};
    if (test_list_devices(ops, info, 8, &n, &err) || n == 0)
        return 0;
    void *ctx = NULL;
    if (ops->open(daecl_host_table(), test_default_values(p), &ctx, &err))
        fail_msg("an OpenCL device exists but the backend does not open: %s", err.msg);
    ops->close(ctx);
    return 1;
}

/* An experiment on synthetic 8x8 images (400 rows), or Fashion-MNIST. */
static char *experiment(const char *tag)
{
    char *dir = test_tmpdir(tag);
    char path[1200], text[2048];
    enum { N = 400, D = 64 };
    unsigned char *idx = malloc(16 + N * D);
    const unsigned char head[16] = {0, 0, 0x08, 3, 0, 0, N >> 8, N & 0xff, 0, 0, 0, 8, 0, 0, 0, 8};
    memcpy(idx, head, 16);
    for (size_t i = 0; i < N * D; i++)
        idx[16 + i] = (unsigned char)((i * 2654435761u) >> 24);
    snprintf(path, sizeof path, "%s/data.idx", dir);
    test_write_file(path, idx, 16 + N * D);
    free(idx);
    snprintf(text, sizeof text,
             "seed: 5\n"
             "data: {train: data.idx, test: data.idx, test_limit: 100}\n"
             "model: {encoder: [{units: 32, activation: sigmoid}, {units: 16, activation: tanh}]}\n"
             "corruption: {plugin: masking, p: 0.25}\n"
             "likelihood: bernoulli\n"
             "optimizer: {name: adam, lr: 0.003}\n"
             "train: {epochs: 100, batch_size: 20, log_every: 10, max_steps: 200}\n"
             "eval: {denoising: false}\n");
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
    return dir;
}

/* Trains with the given overrides; returns the logged step losses. */
static size_t losses(const char *dir, const char *run, const char *const *ov, size_t n_ov,
                     double *out, size_t max)
{
    char cfg[1200], out_dir[1200], path[1300];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out_dir, sizeof out_dir, "%s/%s", dir, run);
    daecl_train_opts o = {.config_path = cfg, .overrides = ov, .n_overrides = n_ov,
                          .out_dir = out_dir, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, NULL, 0, &err))
        fail_msg("train %s: %s", run, err.msg);
    snprintf(path, sizeof path, "%s/metrics.jsonl", out_dir);
    char *text = test_read_file(path, NULL);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o2 = cJSON_Parse(line);
        if (strcmp(cJSON_GetObjectItem(o2, "type")->valuestring, "step") == 0 && n < max)
            out[n++] = cJSON_GetObjectItem(o2, "train_nll")->valuedouble;
        cJSON_Delete(o2);
    }
    free(text);
    return n;
}

static void compare(const double *a, size_t na, const double *b, size_t nb, double tol)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        if (!(fabs(a[i] - b[i]) <= tol * fabs(a[i])))
            fail_msg("logged step %zu: %.9g vs %.9g (relative %.2e > %.0e)", (i + 1) * 10, a[i],
                     b[i], fabs(a[i] - b[i]) / fabs(a[i]), tol);
}

static void test_opencl_and_cpu_agree_for_200_steps(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    char *dir = experiment("agree");
    double a[64], b[64];
    const char *cpu[] = {"backend.plugin=cpu"}, *ocl[] = {"backend.plugin=opencl"};
    size_t na = losses(dir, "cpu", cpu, 1, a, 64);
    size_t nb = losses(dir, "opencl", ocl, 1, b, 64);
    assert_int_equal(na, 20);
    compare(a, na, b, nb, 1e-4);
    free(dir);
}

/* The fused loss (backend.h: lik_loss_grad_sums; the graph takes it on
 * GPUs, DAECL_FUSED_LOSS=always forces it on POCL): the output layer's bias
 * gradient from the loss kernel and the loss summed per dimension. It
 * trains like the cpu reference, and its losses are not the unfused
 * opencl run's bits (they are summed in another order), so the path ran. */
static void test_the_fused_loss_trains_like_the_reference(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    char *dir = experiment("fused");
    double a[64], b[64], f[64];
    const char *cpu[] = {"backend.plugin=cpu"}, *ocl[] = {"backend.plugin=opencl"};
    size_t na = losses(dir, "cpu", cpu, 1, a, 64);
    setenv("DAECL_FUSED_LOSS", "never", 1);
    size_t nb = losses(dir, "unfused", ocl, 1, b, 64);
    setenv("DAECL_FUSED_LOSS", "always", 1);
    size_t nf = losses(dir, "fused", ocl, 1, f, 64);
    unsetenv("DAECL_FUSED_LOSS");
    assert_int_equal(na, 20);
    compare(a, na, f, nf, 1e-4);
    compare(b, nb, f, nf, 1e-4);
    size_t differ = 0;
    for (size_t i = 0; i < nf; i++)
        differ += memcmp(&b[i], &f[i], sizeof b[i]) != 0;
    if (differ == 0)
        fail_msg("the fused and unfused opencl runs logged the same bits at every step: "
                 "DAECL_FUSED_LOSS=always did not reach the fused loss");
    free(dir);
}

/* SGD with momentum and a strong weight decay: the opencl backend updates
 * the weights (with decay) and the biases (without) in one
 * optim_update_split launch, the cpu backend in two optim_update calls; the
 * runs agree (decaying the biases too, on one side only, made them differ
 * by 1.4e-4 at step 10). */
static void test_weight_decay_in_one_update_trains_like_two(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    char *dir = experiment("decay");
    double a[64], b[64];
    const char *cpu[] = {"backend.plugin=cpu", "optimizer={name: sgd, lr: 0.1, momentum: 0.9, "
                                               "weight_decay: 0.1}"};
    const char *ocl[] = {"backend.plugin=opencl", "optimizer={name: sgd, lr: 0.1, momentum: "
                                                  "0.9, weight_decay: 0.1}"};
    size_t na = losses(dir, "cpu", cpu, 2, a, 64);
    size_t nb = losses(dir, "opencl", ocl, 2, b, 64);
    assert_int_equal(na, 20);
    compare(a, na, b, nb, 1e-4);
    free(dir);
}

static void test_streamed_data_trains_like_resident_data(void **state)
{
    (void)state;
    char *dir = experiment("stream");
    double a[64], b[64];
    /* 400 x 64 floats are 100 KiB; a 0.01 MiB limit streams chunks of 2
     * batches. On one backend the two paths must give the same bits. */
    const char *res[] = {"backend.plugin=cpu"};
    const char *str[] = {"backend.plugin=cpu", "data.resident_max_mb=0.01"};
    size_t na = losses(dir, "resident", res, 1, a, 64);
    size_t nb = losses(dir, "streamed", str, 2, b, 64);
    compare(a, na, b, nb, 0);
    if (have_opencl()) {
        const char *ores[] = {"backend.plugin=opencl"};
        const char *ostr[] = {"backend.plugin=opencl", "data.resident_max_mb=0.01"};
        na = losses(dir, "ocl-resident", ores, 1, a, 64);
        nb = losses(dir, "ocl-streamed", ostr, 2, b, 64);
        compare(a, na, b, nb, 0);
    }
    free(dir);
}

/* tests/plugins/good holds "scale", a corruption with no device code: on
 * opencl the core runs it on the host between reads and writes. */
static void test_host_fallback_plugin_trains_like_the_reference(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    setenv("DAECL_PLUGIN_PATH", DAECL_TEST_PLUGIN_CASES_DIR "/good", 1);
    char *dir = experiment("fallback");
    double a[64], b[64];
    const char *cpu[] = {"backend.plugin=cpu", "corruption={plugin: scale, factor: 0.5}"};
    const char *ocl[] = {"backend.plugin=opencl", "corruption={plugin: scale, factor: 0.5}"};
    size_t na = losses(dir, "cpu", cpu, 2, a, 64);
    size_t nb = losses(dir, "opencl", ocl, 2, b, 64);
    unsetenv("DAECL_PLUGIN_PATH");
    compare(a, na, b, nb, 1e-4);
    free(dir);
}

/* block and patch_mask see the 8 x 8 images whole: the same run on cpu and
 * opencl, streamed or resident (the rows keep their positions), and
 * data.shape = [4, 16] changes what they occlude. */
static void test_row_granular_corruptions_train_alike_everywhere(void **state)
{
    (void)state;
    char *dir = experiment("rows");
    static const char *const plugins[] = {"corruption={plugin: block, k: 3}",
                                          "corruption={plugin: patch_mask, p: 2, q: 0.3}"};
    for (int k = 0; k < 2; k++) {
        double a[64], b[64];
        char run[64];
        const char *cpu[] = {"backend.plugin=cpu", plugins[k]};
        const char *str[] = {"backend.plugin=cpu", plugins[k], "data.resident_max_mb=0.01"};
        const char *shaped[] = {"backend.plugin=cpu", plugins[k], "data.shape=[4, 16]"};
        snprintf(run, sizeof run, "cpu-%d", k);
        size_t na = losses(dir, run, cpu, 2, a, 64);
        snprintf(run, sizeof run, "streamed-%d", k);
        size_t nb = losses(dir, run, str, 3, b, 64);
        compare(a, na, b, nb, 0);
        snprintf(run, sizeof run, "shaped-%d", k);
        nb = losses(dir, run, shaped, 3, b, 64);
        assert_int_equal(na, nb);
        int same = 1;
        for (size_t i = 0; i < na; i++)
            same = same && a[i] == b[i];
        if (same)
            fail_msg("%s: data.shape=[4, 16] trained exactly as the file's 8 x 8", plugins[k]);
        if (have_opencl()) {
            const char *ocl[] = {"backend.plugin=opencl", plugins[k]};
            snprintf(run, sizeof run, "opencl-%d", k);
            nb = losses(dir, run, ocl, 2, b, 64);
            compare(a, na, b, nb, 1e-4);
        }
    }
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opencl_and_cpu_agree_for_200_steps),
        cmocka_unit_test(test_the_fused_loss_trains_like_the_reference),
        cmocka_unit_test(test_weight_decay_in_one_update_trains_like_two),
        cmocka_unit_test(test_streamed_data_trains_like_resident_data),
        cmocka_unit_test(test_host_fallback_plugin_trains_like_the_reference),
        cmocka_unit_test(test_row_granular_corruptions_train_alike_everywhere),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
