/* daecl tests — backend.plugin: auto (core/backend_auto.c): the decision
 * over device listings no machine here has (a GPU, an accelerator, one
 * without a compiler, Oclgrind alone), checked as the pure function it is;
 * then `daecl` itself with only POCL's CPU device (OCL_ICD_VENDORS naming a
 * folder with pocl.icd alone), with no OpenCL platform at all (an empty
 * folder), under DAECL_DEVICE, in the cpu-only build, and a run whose
 * config.yaml and checkpoint record the backend auto chose, which resume
 * uses unless told otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/backend_auto.h"
#include "core/checkpoint.h"
#include "tests/support.h"

/* ---- the decision ---------------------------------------------------------------- */

static daecl_device_info devs[4];
static size_t n_devs;

static void no_devices(void)
{
    memset(devs, 0, sizeof devs);
    n_devs = 0;
}

static daecl_device_info *add_device(const char *platform, const char *name, const char *type,
                                     int is_default, int compiler)
{
    daecl_device_info *d = &devs[n_devs++];
    snprintf(d->platform, sizeof d->platform, "%s", platform);
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->type, sizeof d->type, "%s", type);
    d->is_default = (uint8_t)is_default;
    d->compiler = (uint8_t)compiler;
    return d;
}

/* The choice over devs with an opencl backend and DAECL_DEVICE `env`;
 * expects `plugin` and a reason holding `words`. */
static void expect_choice(const char *env, const char *plugin, const char *words)
{
    daecl_backend_facts f = {.device_env = env, .have_opencl = 1, .listed = 1, .devs = devs,
                             .n_devs = n_devs};
    daecl_backend_choice c;
    daecl_err err = {0};
    if (daecl_backend_auto_decide(&f, &c, &err) != 0)
        fail_msg("refused: %s", err.msg);
    if (strcmp(c.plugin, plugin) != 0 || !strstr(c.reason, words))
        fail_msg("chose %s (%s); expected %s with \"%s\"", c.plugin, c.reason, plugin, words);
}

static void test_a_gpu_or_an_accelerator_picks_opencl(void **state)
{
    (void)state;
    no_devices();
    add_device("Portable Computing Language", "pthread-haswell", "cpu", 0, 1);
    add_device("NVIDIA CUDA", "NVIDIA H100", "gpu", 1, 1);
    expect_choice(NULL, "opencl", "OpenCL GPU NVIDIA H100 of NVIDIA CUDA (backend.plugin=cpu "
                                  "forces the cpu backend)");
    no_devices();
    add_device("Intel(R) FPGA SDK", "Agilex", "accelerator", 1, 1);
    expect_choice("", "opencl", "OpenCL accelerator Agilex of Intel(R) FPGA SDK");
}

static void test_only_pocls_cpu_device_picks_cpu(void **state)
{
    (void)state;
    no_devices();
    add_device("Portable Computing Language", "pthread-haswell", "cpu", 1, 1);
    expect_choice(NULL, "cpu", "no OpenCL GPU or accelerator (only Portable Computing "
                               "Language's CPU device, slower than the cpu backend; "
                               "backend.plugin=opencl forces it)");
    add_device("Intel(R) OpenCL", "Xeon", "cpu", 0, 1);
    expect_choice(NULL, "cpu", "only 2 CPU devices");
}

/* A device that cannot compile needs precompiled programs: auto does not
 * choose it; Oclgrind is never the default, so a listing with only it has
 * no device auto would train on. */
static void test_devices_opencl_would_not_run_by_itself_pick_cpu(void **state)
{
    (void)state;
    no_devices();
    add_device("Portable Computing Language", "pthread-haswell", "cpu", 0, 1);
    add_device("Xilinx", "U250", "accelerator", 1, 0);
    expect_choice(NULL, "cpu", "the OpenCL accelerator U250 has no kernel compiler");
    no_devices();
    add_device("Oclgrind", "Oclgrind Simulator", "cpu", 0, 1);
    expect_choice(NULL, "cpu", "only Oclgrind's simulator");
    no_devices();
    expect_choice(NULL, "cpu", "OpenCL lists no device");
    no_devices();
    daecl_device_info *d = add_device("Vendor\nOpenCL", "odd\tdevice", "gpu", 1, 1);
    (void)d;
    expect_choice(NULL, "opencl", "odd device of Vendor OpenCL"); /* one line */
}

/* DAECL_DEVICE names an OpenCL device: opencl, whatever is listed (the
 * opencl backend then opens what it names, or says why it cannot). */
static void test_daecl_device_picks_opencl(void **state)
{
    (void)state;
    no_devices();
    add_device("Portable Computing Language", "pthread-haswell", "cpu", 1, 1);
    expect_choice("cpu", "opencl", "DAECL_DEVICE=cpu names an OpenCL device");
    expect_choice("type=cpu,index=0", "opencl", "DAECL_DEVICE=type=cpu,index=0 names");
    no_devices();
    expect_choice("gpu", "opencl", "DAECL_DEVICE=gpu");
}

static void test_no_opencl_backend_or_platform_picks_cpu(void **state)
{
    (void)state;
    daecl_backend_choice c;
    daecl_err err = {0};
    daecl_backend_facts f = {.have_opencl = 0};
    assert_int_equal(daecl_backend_auto_decide(&f, &c, &err), 0);
    assert_string_equal(c.plugin, "cpu");
    assert_non_null(strstr(c.reason, "this daecl has no opencl backend"));
    /* the listing's sentence, without the listing's advice to install one */
    f.have_opencl = 1;
    f.why_unlisted = "no OpenCL platform is installed (the ICD loader found none); install one";
    assert_int_equal(daecl_backend_auto_decide(&f, &c, &err), 0);
    assert_string_equal(c.plugin, "cpu");
    assert_string_equal(c.reason, "no OpenCL device to use: no OpenCL platform is installed "
                                  "(the ICD loader found none)");
    /* DAECL_DEVICE without an opencl backend cannot be honoured: one sentence */
    f.have_opencl = 0;
    f.device_env = "gpu";
    assert_int_equal(daecl_backend_auto_decide(&f, &c, &err), DAECL_ECONFIG);
    if (!strstr(err.msg, "DAECL_DEVICE=gpu names an OpenCL device for backend.plugin: auto, but "
                         "this daecl has no opencl backend") ||
        !strstr(err.msg, "unset DAECL_DEVICE"))
        fail_msg("sentence: %s", err.msg);
}

/* ---- daecl itself ------------------------------------------------------------------- */

/* A folder for OCL_ICD_VENDORS with POCL's ICD file alone, or NULL when
 * this build has no OpenCL or the machine no POCL (the caller skips). */
static char *pocl_only_vendors(void)
{
    if (!DAECL_TEST_WITH_OPENCL)
        return NULL;
    size_t n = 0;
    char *icd = access("/etc/OpenCL/vendors/pocl.icd", R_OK) == 0
                    ? test_read_file("/etc/OpenCL/vendors/pocl.icd", &n)
                    : NULL;
    if (!icd)
        return NULL;
    char *dir = test_tmpdir("auto-vendors"), path[1200];
    snprintf(path, sizeof path, "%s/pocl.icd", dir);
    test_write_file(path, icd, n);
    free(icd);
    return dir;
}

/* `daecl ARGS...` (at most 8) with env, its output into *out; the exit status. */
static int daecl(char *const env[], char **out, const char *a0, const char *a1, const char *a2,
                 const char *a3, const char *a4)
{
    char *argv[] = {DAECL_TEST_BIN, (char *)a0, (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                    NULL};
    return test_run(argv, env, out);
}

static void expect_output(const char *out, const char *words)
{
    if (!strstr(out, words))
        fail_msg("output lacks \"%s\":\n%s", words, out);
}

/* With POCL's CPU device alone, auto trains on cpu, and says so as the
 * run starts; `daecl devices` says the same. */
static void test_daecl_with_pocl_alone_picks_cpu_and_says_why(void **state)
{
    (void)state;
    char *vendors = pocl_only_vendors();
    if (!vendors) {
        skip();
        return; /* not reached: for the compiler, which cannot tell */
    }
    char *dir = test_small_experiment("auto-pocl", "", "auto"), cfg[1200], vend[1300];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(vend, sizeof vend, "OCL_ICD_VENDORS=%s", vendors);
    char *env[] = {vend, "DAECL_DEVICE=", NULL}, *out = NULL;
    assert_int_equal(daecl(env, &out, "check", cfg, NULL, NULL, NULL), 0);
    expect_output(out, "daecl: backend auto -> cpu: no OpenCL GPU or accelerator (only Portable "
                       "Computing Language's CPU device, slower than the cpu backend; "
                       "backend.plugin=opencl forces it)\n");
    expect_output(out, "on the cpu backend");
    free(out);
    assert_int_equal(daecl(env, &out, "devices", NULL, NULL, NULL, NULL), 0);
    expect_output(out, "<- default");
    expect_output(out, "\nbackend auto -> cpu: no OpenCL GPU or accelerator (only Portable");
    free(out);
    /* DAECL_DEVICE=cpu names POCL's CPU device: auto honours it */
    char *env_dev[] = {vend, "DAECL_DEVICE=cpu", NULL};
    assert_int_equal(daecl(env_dev, &out, "check", cfg, NULL, NULL, NULL), 0);
    expect_output(out, "daecl: backend auto -> opencl: DAECL_DEVICE=cpu names an OpenCL device");
    expect_output(out, "on the opencl backend");
    free(out);
    test_remove_dir(dir);
    test_remove_dir(vendors);
}

/* No OpenCL platform at all: the ICD loader reads an empty folder. */
static void test_daecl_without_an_opencl_platform_picks_cpu(void **state)
{
    (void)state;
    char *dir = test_small_experiment("auto-noplat", "", "auto"), cfg[1200], vend[1300];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    char *empty = test_tmpdir("auto-empty-vendors");
    snprintf(vend, sizeof vend, "OCL_ICD_VENDORS=%s", empty);
    char *env[] = {vend, "DAECL_DEVICE=", NULL}, *out = NULL;
    assert_int_equal(daecl(env, &out, "check", cfg, NULL, NULL, NULL), 0);
    if (DAECL_TEST_WITH_OPENCL)
        expect_output(out, "daecl: backend auto -> cpu: no OpenCL device to use: no OpenCL "
                           "platform is installed");
    else
        expect_output(out, "daecl: backend auto -> cpu: this daecl has no opencl backend");
    expect_output(out, "on the cpu backend");
    free(out);
    test_remove_dir(dir);
    test_remove_dir(empty);
}

/* The cpu-only build (-DDAECL_WITH_OPENCL=OFF) has no opencl backend: auto
 * is cpu, and DAECL_DEVICE, which it cannot honour, is refused. */
static void test_cpu_only_build_picks_cpu_and_refuses_daecl_device(void **state)
{
    (void)state;
    if (DAECL_TEST_WITH_OPENCL)
        skip();
    char *dir = test_small_experiment("auto-cpuonly", "", "auto"), cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    char *env[] = {"DAECL_DEVICE=", NULL}, *out = NULL;
    assert_int_equal(daecl(env, &out, "check", cfg, NULL, NULL, NULL), 0);
    expect_output(out, "daecl: backend auto -> cpu: this daecl has no opencl backend (built "
                       "with -DDAECL_WITH_OPENCL=OFF");
    free(out);
    char *env_dev[] = {"DAECL_DEVICE=gpu", NULL};
    assert_int_equal(daecl(env_dev, &out, "check", cfg, NULL, NULL, NULL), 2);
    expect_output(out, "exp.yaml:7:10: DAECL_DEVICE=gpu names an OpenCL device for "
                       "backend.plugin: auto, but this daecl has no opencl backend");
    free(out);
    assert_int_equal(daecl(env, &out, "devices", NULL, NULL, NULL, NULL), 2);
    expect_output(out, "backend auto -> cpu: this daecl has no opencl backend");
    free(out);
    test_remove_dir(dir);
}

/* A run records the backend auto chose, not the request: config.yaml and
 * the checkpoint's config name it (a comment says auto chose it), so a
 * resume trains on it even where auto would now choose otherwise; an
 * override still changes it. */
static void test_the_run_records_the_choice_and_resume_uses_it(void **state)
{
    (void)state;
    char *dir = test_small_experiment("auto-run", "", "auto"), cfg[1200], run[1200], vend[1300];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    /* no OpenCL platform: cpu on any machine */
    char *empty = test_tmpdir("auto-run-vendors");
    snprintf(vend, sizeof vend, "OCL_ICD_VENDORS=%s", empty);
    char *env[] = {"DAECL_DEVICE=", vend, NULL}, *out = NULL;
    assert_int_equal(daecl(env, &out, "train", cfg, "--out", run, "--quiet"), 0);
    free(out);
    char path[1300];
    snprintf(path, sizeof path, "%s/config.yaml", run);
    char *yaml = test_read_file(path, NULL);
    expect_output(yaml, "\n# backend.plugin: auto chose cpu: ");
    expect_output(yaml, "\nbackend:\n  plugin: cpu\n  threads: 0\n");
    free(yaml);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *metrics = test_read_file(path, NULL);
    expect_output(metrics, "{\"type\":\"backend_auto\",\"epoch\":0,\"step\":0,\"plugin\":\"cpu\","
                           "\"reason\":\"");
    free(metrics);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    daecl_err err = {0};
    char *stored = daecl_checkpoint_config(path, &err);
    assert_non_null(stored);
    expect_output(stored, "\nbackend:\n  plugin: cpu\n");
    free(stored);

    /* DAECL_DEVICE would make auto choose opencl; the run is cpu's */
    char *env_dev[] = {"DAECL_DEVICE=cpu", NULL};
    assert_int_equal(daecl(env_dev, &out, "resume", run, "train.epochs=4", NULL, NULL), 0);
    if (strstr(out, "backend auto ->"))
        fail_msg("resume chose again:\n%s", out);
    expect_output(out, "DAECL_DEVICE=cpu chooses among OpenCL devices, but this run uses the cpu "
                       "backend");
    free(out);
    snprintf(path, sizeof path, "%s/config.yaml", run);
    yaml = test_read_file(path, NULL);
    expect_output(yaml, "\nbackend:\n  plugin: cpu\n");
    free(yaml);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    metrics = test_read_file(path, NULL);
    char *first = strstr(metrics, "\"backend_auto\"");
    if (!first || strstr(first + 1, "\"backend_auto\""))
        fail_msg("metrics.jsonl should hold one backend_auto line:\n%s", metrics);
    free(metrics);
    snprintf(path, sizeof path, "%s/config.yaml", run);
    /* an override on resume changes the backend as it always did */
    char *vendors = pocl_only_vendors();
    if (vendors) {
        snprintf(vend, sizeof vend, "OCL_ICD_VENDORS=%s", vendors);
        char *env_any[] = {"DAECL_DEVICE=", vend, NULL};
        assert_int_equal(daecl(env_any, &out, "resume", run, "train.epochs=5",
                               "backend.plugin=opencl", "--quiet"),
                         0);
        free(out);
        yaml = test_read_file(path, NULL);
        expect_output(yaml, "\nbackend:\n  plugin: opencl\n");
        free(yaml);
        test_remove_dir(vendors);
    }
    test_remove_dir(dir);
    test_remove_dir(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_gpu_or_an_accelerator_picks_opencl),
        cmocka_unit_test(test_only_pocls_cpu_device_picks_cpu),
        cmocka_unit_test(test_devices_opencl_would_not_run_by_itself_pick_cpu),
        cmocka_unit_test(test_daecl_device_picks_opencl),
        cmocka_unit_test(test_no_opencl_backend_or_platform_picks_cpu),
        cmocka_unit_test(test_daecl_with_pocl_alone_picks_cpu_and_says_why),
        cmocka_unit_test(test_daecl_without_an_opencl_platform_picks_cpu),
        cmocka_unit_test(test_cpu_only_build_picks_cpu_and_refuses_daecl_device),
        cmocka_unit_test(test_the_run_records_the_choice_and_resume_uses_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
