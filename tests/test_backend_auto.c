/* daecl tests — backend.plugin: auto (core/backend_auto.c): the decision
 * over device listings no machine here has (a GPU, an accelerator, one
 * without a compiler, Oclgrind alone), checked as the pure function it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend_auto.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_gpu_or_an_accelerator_picks_opencl),
        cmocka_unit_test(test_only_pocls_cpu_device_picks_cpu),
        cmocka_unit_test(test_devices_opencl_would_not_run_by_itself_pick_cpu),
        cmocka_unit_test(test_daecl_device_picks_opencl),
        cmocka_unit_test(test_no_opencl_backend_or_platform_picks_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
