/* daecl tests — the config tests' fixture (config_fixture.h). */
#include "tests/config_fixture.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "tests/support.h"

/* ---- in-memory plugins ------------------------------------------------------ */

/* Never called: the config module only reads descriptors. A void (*)(void)
 * converts to any function pointer type without -Wcast-function-type. */
static void never_called(void)
{
}
#define SLOT(type, slot) .slot = (__typeof__(((type *)0)->slot))never_called

static const daecl_param_spec masking_params[] = {
    { "p", DAECL_PARAM_FLOAT, { 0.25, 0 }, NULL, 0, 1, NULL, "probability of zeroing an input" },
    { "clip", DAECL_PARAM_FLOAT2, { 0, 1 }, NULL, -10, 10, NULL, "range outputs are clipped to" },
    { "mode",
      DAECL_PARAM_ENUM,
      { 0, 0 },
      "zero",
      0,
      0,
      "zero|mean|noise",
      "what a masked input becomes" },
    { "label", DAECL_PARAM_STRING, { 0, 0 }, "", 0, 0, NULL, "a free-form tag" },
    { "count", DAECL_PARAM_INT, { 3, 0 }, NULL, 1, 100, NULL, "repetitions" },
    { "keep", DAECL_PARAM_BOOL, { 0, 0 }, NULL, 0, 1, NULL, "keep one input unmasked" },
};

/* Beyond the schema: keep needs p < 1. */
static int masking_check(const daecl_param_value *values, daecl_err *err)
{
    if (values[5].num[0] != 0 && values[0].num[0] >= 1)
        return daecl_err_set(err, DAECL_ECONFIG, "masking's keep needs p below 1");
    return 0;
}

static const daecl_corruption_ops corruption_ops = {
    .size = sizeof(daecl_corruption_ops), SLOT(daecl_corruption_ops, host_apply)};

static const daecl_plugin masking = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION), .name = "masking", .version = "1.0.0",
    .summary = "masking noise", .license = "MIT", .params = masking_params,
    .n_params = sizeof masking_params / sizeof masking_params[0], .check = masking_check,
    .ops = &corruption_ops};

static const daecl_param_spec gaussian_params[] = {
    {"std", DAECL_PARAM_FLOAT, {0.1, 0}, NULL, 0, INFINITY, NULL, "standard deviation"},
};
static const daecl_plugin gaussian = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION), .name = "gaussian", .version = "1.0.0",
    .summary = "additive gaussian noise", .license = "MIT", .params = gaussian_params,
    .n_params = 1, .ops = &corruption_ops};
static const daecl_plugin none_plugin = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION), .name = "none", .version = "1.0.0",
    .summary = "no corruption", .license = "MIT", .ops = &corruption_ops};

static const daecl_likelihood_ops lik_ops_1 = {
    .size = sizeof(daecl_likelihood_ops), .params_per_dim = 1,
    SLOT(daecl_likelihood_ops, host_loss_grad), SLOT(daecl_likelihood_ops, host_mean),
    SLOT(daecl_likelihood_ops, host_sample)};
static const daecl_likelihood_ops lik_ops_2 = {
    .size = sizeof(daecl_likelihood_ops), .params_per_dim = 2,
    SLOT(daecl_likelihood_ops, host_loss_grad), SLOT(daecl_likelihood_ops, host_mean),
    SLOT(daecl_likelihood_ops, host_sample)};
static const daecl_plugin bernoulli = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD), .name = "bernoulli", .version = "1.0.0",
    .summary = "bernoulli logits", .license = "MIT", .ops = &lik_ops_1};
static const daecl_param_spec learned_params[] = {
    {"min_std", DAECL_PARAM_FLOAT, {1e-3, 0}, NULL, 0, 1, NULL, "smallest standard deviation"},
};
static const daecl_plugin gaussian_learned = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD), .name = "gaussian_learned", .version = "1.0.0",
    .summary = "gaussian with learned variance", .license = "MIT", .params = learned_params,
    .n_params = 1, .ops = &lik_ops_2};

#define B(slot) SLOT(daecl_backend_ops, slot)
static const daecl_backend_ops backend_ops = {
    .size = sizeof(daecl_backend_ops), B(open), B(close), B(describe), B(alloc), B(free),
    B(write), B(read), B(fill), B(copy), B(gemm), B(bias_act), B(act_grad), B(col_sum), B(sum),
    B(gather), B(optim_update), B(corrupt), B(lik_loss_grad), B(lik_mean), B(lik_sample),
    B(finish), B(softmax_xent)};
static const daecl_param_spec cpu_params[] = {
    {"threads", DAECL_PARAM_INT, {0, 0}, NULL, 0, 1024, NULL, "BLAS threads; 0 = all cores"},
};
static const daecl_plugin cpu = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_BACKEND), .name = "cpu", .version = "1.0.0",
    .summary = "reference backend", .license = "MIT", .params = cpu_params, .n_params = 1,
    .ops = &backend_ops};

/* A stand-in for the opencl backend: parallel.devices lists devices of
 * several backends. */
static const daecl_param_spec ocl_params[] = {
    {"platform", DAECL_PARAM_STRING, {0, 0}, "", 0, 0, NULL, "platform name contains this"},
    {"type", DAECL_PARAM_ENUM, {0, 0}, "any", 0, 0, "any|gpu|cpu|accelerator", "device type"},
    {"index", DAECL_PARAM_INT, {-1, 0}, NULL, -1, 1000, NULL, "N-th device; -1 = the best"},
};
/* Its device listing, for backend.plugin: auto: fake_devs[0..n_fake_devs),
 * so a GPU can be listed on a machine without one. */
static daecl_device_info fake_devs[2];
static size_t n_fake_devs;

static int fake_list(const daecl_host *host, daecl_device_info *out, size_t info_size, size_t max,
                     size_t *n, daecl_err *err)
{
    (void)host, (void)err;
    for (size_t i = 0; out && i < n_fake_devs && i < max; i++)
        memcpy((char *)out + i * info_size, &fake_devs[i], info_size);
    *n = n_fake_devs;
    return 0;
}

static const daecl_ext_devices fake_devices = {sizeof(daecl_ext_devices), fake_list};

static const void *fake_extension(const char *name)
{
    return strcmp(name, DAECL_EXT_DEVICES) == 0 ? &fake_devices : NULL;
}

static const daecl_backend_ops ocl_ops = {
    .size = sizeof(daecl_backend_ops), B(open), B(close), B(describe), B(alloc), B(free),
    B(write), B(read), B(fill), B(copy), B(gemm), B(bias_act), B(act_grad), B(col_sum), B(sum),
    B(gather), B(optim_update), B(corrupt), B(lik_loss_grad), B(lik_mean), B(lik_sample),
    B(finish), B(softmax_xent), .get_extension = fake_extension};
static const daecl_plugin ocl = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_BACKEND), .name = "opencl", .version = "1.0.0",
    .summary = "device backend", .license = "MIT", .params = ocl_params, .n_params = 3,
    .ops = &ocl_ops};

/* Lists one device of `type` ("gpu", "cpu", ...), the one `type: any` opens,
 * behind a CPU device when it is not one itself. */
void cfgt_fake_listing(const char *type)
{
    memset(fake_devs, 0, sizeof fake_devs);
    n_fake_devs = 0;
    if (strcmp(type, "cpu") != 0) {
        daecl_device_info *c = &fake_devs[n_fake_devs++];
        snprintf(c->platform, sizeof c->platform, "Portable Computing Language");
        snprintf(c->name, sizeof c->name, "pthread-cpu");
        snprintf(c->type, sizeof c->type, "cpu");
        c->compiler = 1;
    }
    daecl_device_info *d = &fake_devs[n_fake_devs++];
    snprintf(d->platform, sizeof d->platform, "%s",
             strcmp(type, "cpu") == 0 ? "Portable Computing Language" : "Vendor OpenCL");
    snprintf(d->name, sizeof d->name, "fake %s", type);
    snprintf(d->type, sizeof d->type, "%s", type);
    d->compiler = 1;
    d->is_default = 1;
}

daecl_registry *cfgt_reg;

int cfgt_setup(void **state)
{
    (void)state;
    daecl_err err = {0};
    const daecl_plugin *all[] = {&masking, &gaussian, &none_plugin, &bernoulli,
                                 &gaussian_learned, &cpu, &ocl};
    if (daecl_registry_create("", &cfgt_reg, &err) != 0)
        return -1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (daecl_registry_add(cfgt_reg, all[i], "test", &err) != 0) {
            fprintf(stderr, "registry_add: %s\n", err.msg);
            return -1;
        }
    return 0;
}

int cfgt_teardown(void **state)
{
    (void)state;
    daecl_registry_destroy(cfgt_reg);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

daecl_config *cfgt_load_ov(const char *yaml, const char *const *ov, size_t n_ov)
{
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    if (daecl_config_load_string(yaml, strlen(yaml), "test.yaml", ov, n_ov, cfgt_reg, &cfg, &err)) {
        char buf[2048];
        fail_msg("config refused: %s", daecl_err_format(&err, buf, sizeof buf));
    }
    assert_non_null(cfg);
    return cfg;
}

daecl_config *cfgt_load(const char *yaml)
{
    return cfgt_load_ov(yaml, NULL, 0);
}

/* Loads and expects DAECL_ECONFIG at file:line:col with the message
 * containing `part1` and `part2` (NULL: not checked). */
void cfgt_expect_err_ov(const char *yaml, const char *const *ov, size_t n_ov, const char *file,
                        int line, int col, const char *part1, const char *part2)
{
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    int rc =
        daecl_config_load_string(yaml, strlen(yaml), "test.yaml", ov, n_ov, cfgt_reg, &cfg, &err);
    if (rc != DAECL_ECONFIG)
        fail_msg("expected ECONFIG, got %d (%s) for:\n%s", rc, err.msg, yaml);
    assert_null(cfg);
    assert_int_equal(err.status, DAECL_ECONFIG);
    if (strcmp(err.file, file) != 0 || err.line != line || err.col != col)
        fail_msg("error at '%s':%d:%d, expected '%s':%d:%d: %s", err.file, err.line, err.col,
                 file, line, col, err.msg);
    if ((part1 && !strstr(err.msg, part1)) || (part2 && !strstr(err.msg, part2)))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err.msg, part1, part2 ? part2 : "");
}

void cfgt_expect_err(const char *yaml, int line, int col, const char *part1, const char *part2)
{
    cfgt_expect_err_ov(yaml, NULL, 0, "test.yaml", line, col, part1, part2);
}

/* An override error: named as typed, no file position. */
void cfgt_expect_override_err(const char *yaml, const char *ov, const char *part1,
                              const char *part2)
{
    const char *ovs[] = {"train.log_every=5", ov};
    char prefix[256];
    snprintf(prefix, sizeof prefix, "override '%s': ", ov);
    cfgt_expect_err_ov(yaml, ovs, 2, "", 0, 0, prefix, part1);
    if (part2)
        cfgt_expect_err_ov(yaml, ovs, 2, "", 0, 0, part1, part2);
}


static char cwd_path[PATH_MAX];

const char *cfgt_in_cwd(const char *rel)
{
    static char buf[2 * PATH_MAX];
    assert_non_null(getcwd(cwd_path, sizeof cwd_path));
    snprintf(buf, sizeof buf, "%s/%s", cwd_path, rel);
    return buf;
}
