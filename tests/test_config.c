/* daecl tests — experiment configs (core/config.c): YAML and overrides,
 * validation against the core schema and against small in-memory plugins
 * (not the real ones, which are tested on their own), error positions and
 * sentences, defaults, path resolution, and the YAML written back. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/config_schema.h"
#include "tests/support.h"

/* ---- in-memory plugins ------------------------------------------------------ */

/* Never called: the config module only reads descriptors. A void (*)(void)
 * converts to any function pointer type without -Wcast-function-type. */
static void never_called(void)
{
}
#define SLOT(type, slot) .slot = (__typeof__(((type *)0)->slot))never_called

static const daecl_param_spec masking_params[] = {
    {"p", DAECL_PARAM_FLOAT, {0.25, 0}, NULL, 0, 1, NULL, "probability of zeroing an input"},
    {"clip", DAECL_PARAM_FLOAT2, {0, 1}, NULL, -10, 10, NULL, "range outputs are clipped to"},
    {"mode", DAECL_PARAM_ENUM, {0, 0}, "zero", 0, 0, "zero|mean|noise", "what a masked input becomes"},
    {"label", DAECL_PARAM_STRING, {0, 0}, "", 0, 0, NULL, "a free-form tag"},
    {"count", DAECL_PARAM_INT, {3, 0}, NULL, 1, 100, NULL, "repetitions"},
    {"keep", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL, "keep one input unmasked"},
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
static void fake_listing(const char *type)
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

static daecl_registry *reg;

static int setup(void **state)
{
    (void)state;
    daecl_err err = {0};
    const daecl_plugin *all[] = {&masking, &gaussian, &none_plugin, &bernoulli,
                                 &gaussian_learned, &cpu, &ocl};
    if (daecl_registry_create("", &reg, &err) != 0)
        return -1;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (daecl_registry_add(reg, all[i], "test", &err) != 0) {
            fprintf(stderr, "registry_add: %s\n", err.msg);
            return -1;
        }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    daecl_registry_destroy(reg);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static daecl_config *load_ov(const char *yaml, const char *const *ov, size_t n_ov)
{
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    if (daecl_config_load_string(yaml, strlen(yaml), "test.yaml", ov, n_ov, reg, &cfg, &err)) {
        char buf[2048];
        fail_msg("config refused: %s", daecl_err_format(&err, buf, sizeof buf));
    }
    assert_non_null(cfg);
    return cfg;
}

static daecl_config *load(const char *yaml)
{
    return load_ov(yaml, NULL, 0);
}

/* Loads and expects DAECL_ECONFIG at file:line:col with the message
 * containing `part1` and `part2` (NULL: not checked). */
static void expect_err_ov(const char *yaml, const char *const *ov, size_t n_ov, const char *file,
                          int line, int col, const char *part1, const char *part2)
{
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    int rc = daecl_config_load_string(yaml, strlen(yaml), "test.yaml", ov, n_ov, reg, &cfg, &err);
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

static void expect_err(const char *yaml, int line, int col, const char *part1, const char *part2)
{
    expect_err_ov(yaml, NULL, 0, "test.yaml", line, col, part1, part2);
}

/* An override error: named as typed, no file position. */
static void expect_override_err(const char *yaml, const char *ov, const char *part1,
                                const char *part2)
{
    const char *ovs[] = {"train.log_every=5", ov};
    char prefix[256];
    snprintf(prefix, sizeof prefix, "override '%s': ", ov);
    expect_err_ov(yaml, ovs, 2, "", 0, 0, prefix, part1);
    if (part2)
        expect_err_ov(yaml, ovs, 2, "", 0, 0, part1, part2);
}

#define MINIMAL "data: {train: train.idx}\n"

static char cwd_path[PATH_MAX];

static const char *in_cwd(const char *rel)
{
    static char buf[2 * PATH_MAX];
    assert_non_null(getcwd(cwd_path, sizeof cwd_path));
    snprintf(buf, sizeof buf, "%s/%s", cwd_path, rel);
    return buf;
}

/* ---- defaults and shapes ------------------------------------------------------- */

static void test_minimal_config_gets_every_default(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL);
    assert_string_equal(cfg->source, "test.yaml");
    assert_string_equal(cfg->name, "run");
    assert_true(cfg->seed == 0);
    assert_string_equal(cfg->data.train, in_cwd("train.idx"));
    assert_string_equal(cfg->data.test, "");
    assert_string_equal(cfg->data.train_labels, "");
    assert_string_equal(cfg->data.test_labels, "");
    assert_true(cfg->data.train_limit == 0 && cfg->data.test_limit == 0);
    assert_true(cfg->data.resident_max_mb == 0);
    assert_int_equal(cfg->model.n_encoder, 1);
    assert_int_equal(cfg->model.encoder[0].units, 1000);
    assert_int_equal(cfg->model.encoder[0].act, DAECL_ACT_SIGMOID);
    assert_int_equal(cfg->model.decoder_mirror, 1);
    assert_int_equal(cfg->model.n_decoder, 0);
    assert_int_equal(cfg->model.tied_weights, 0);

    assert_string_equal(cfg->corruption.name, "masking");
    assert_ptr_equal(cfg->corruption.plugin,
                     daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "masking", NULL));
    assert_string_equal(cfg->corruption.path, "test");
    assert_int_equal(cfg->corruption.n_values, 6);
    assert_true(cfg->corruption.values[0].num[0] == 0.25);
    assert_true(cfg->corruption.values[1].num[0] == 0 && cfg->corruption.values[1].num[1] == 1);
    assert_string_equal(cfg->corruption.values[2].str, "zero");
    assert_true(cfg->corruption.values[2].num[0] == 0);
    assert_string_equal(cfg->corruption.values[3].str, "");
    assert_true(cfg->corruption.values[4].num[0] == 3);
    /* packed: p, clip lo, clip hi, mode index, count, keep (the string packs nothing) */
    assert_int_equal(cfg->corruption.n_packed, 6);
    const float want[] = {0.25f, 0, 1, 0, 3, 0};
    for (int i = 0; i < 6; i++)
        assert_true(cfg->corruption.packed[i] == want[i]);

    assert_string_equal(cfg->likelihood.name, "bernoulli");
    assert_int_equal(cfg->likelihood.n_values, 0);
    assert_int_equal(cfg->likelihood.n_packed, 0);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_true(cfg->backend.values[0].num[0] == 0);

    assert_int_equal(cfg->optimizer.kind, DAECL_OPTIM_SGD);
    assert_true(cfg->optimizer.lr == 0.1 && cfg->optimizer.momentum == 0);
    assert_true(cfg->optimizer.weight_decay == 0 && cfg->optimizer.nesterov == 0);
    assert_true(cfg->optimizer.beta1 == 0.9 && cfg->optimizer.beta2 == 0.999);
    assert_true(cfg->optimizer.eps == 1e-8);
    assert_int_equal(cfg->train.epochs, 10);
    assert_int_equal(cfg->train.batch_size, 128);
    assert_int_equal(cfg->train.log_every, 100);
    assert_true(cfg->train.max_steps == 0);
    assert_string_equal(cfg->output.dir, "runs");
    daecl_config_destroy(cfg);
}

static void test_every_key_is_read_into_its_field(void **state)
{
    (void)state;
    daecl_config *cfg = load("name: exp-1.b_2\n"
                             "seed: 9007199254740991\n"
                             "data:\n"
                             "  train: /abs/train.npy\n"
                             "  test: test.npy\n"
                             "  train_labels: tl.idx\n"
                             "  test_labels: sl.idx\n"
                             "  train_limit: 600\n"
                             "  test_limit: 100\n"
                             "  resident_max_mb: 2.5\n"
                             "model:\n"
                             "  encoder:\n"
                             "    - {units: 500, activation: relu}\n"
                             "    - units: 30\n"
                             "      activation: linear\n"
                             "  decoder: [{units: 400, activation: tanh}]\n"
                             "  tied_weights: false\n"
                             "corruption: {plugin: masking, p: 0.5, mode: noise, label: hi}\n"
                             "likelihood: gaussian_learned\n"
                             "optimizer:\n"
                             "  name: adamw\n"
                             "  lr: 1e-3\n"
                             "  momentum: 0.5\n"
                             "  nesterov: true\n"
                             "  weight_decay: 0.01\n"
                             "  beta1: 0.8\n"
                             "  beta2: 0.99\n"
                             "  eps: 1e-6\n"
                             "train: {epochs: 3, batch_size: 64, log_every: 0, max_steps: 1000}\n"
                             "backend: {plugin: cpu, threads: 2}\n"
                             "output: {dir: out/runs}\n");
    assert_string_equal(cfg->name, "exp-1.b_2");
    assert_true(cfg->seed == 9007199254740991ull);
    assert_string_equal(cfg->data.train, "/abs/train.npy");
    assert_string_equal(cfg->data.test, in_cwd("test.npy"));
    assert_string_equal(cfg->data.train_labels, in_cwd("tl.idx"));
    assert_string_equal(cfg->data.test_labels, in_cwd("sl.idx"));
    assert_true(cfg->data.train_limit == 600 && cfg->data.test_limit == 100);
    assert_true(cfg->data.resident_max_mb == 2.5);
    assert_int_equal(cfg->model.n_encoder, 2);
    assert_int_equal(cfg->model.encoder[0].units, 500);
    assert_int_equal(cfg->model.encoder[0].act, DAECL_ACT_RELU);
    assert_int_equal(cfg->model.encoder[1].units, 30);
    assert_int_equal(cfg->model.encoder[1].act, DAECL_ACT_LINEAR);
    assert_int_equal(cfg->model.decoder_mirror, 0);
    assert_int_equal(cfg->model.n_decoder, 1);
    assert_int_equal(cfg->model.decoder[0].units, 400);
    assert_int_equal(cfg->model.decoder[0].act, DAECL_ACT_TANH);
    assert_true(daecl_plugin_cfg_value(&cfg->corruption, "p")->num[0] == 0.5);
    assert_string_equal(daecl_plugin_cfg_value(&cfg->corruption, "mode")->str, "noise");
    assert_true(daecl_plugin_cfg_value(&cfg->corruption, "mode")->num[0] == 2);
    assert_true(cfg->corruption.packed[3] == 2); /* the ENUM packs as its index */
    assert_string_equal(daecl_plugin_cfg_value(&cfg->corruption, "label")->str, "hi");
    assert_null(daecl_plugin_cfg_value(&cfg->corruption, "nope"));
    assert_null(daecl_plugin_cfg_value(NULL, "p"));
    assert_string_equal(cfg->likelihood.name, "gaussian_learned");
    assert_true(cfg->likelihood.values[0].num[0] == 1e-3);
    assert_int_equal(cfg->optimizer.kind, DAECL_OPTIM_ADAMW);
    assert_true(cfg->optimizer.lr == 1e-3 && cfg->optimizer.momentum == 0.5);
    assert_int_equal(cfg->optimizer.nesterov, 1);
    assert_true(cfg->optimizer.weight_decay == 0.01 && cfg->optimizer.beta1 == 0.8);
    assert_true(cfg->optimizer.beta2 == 0.99 && cfg->optimizer.eps == 1e-6);
    assert_int_equal(cfg->train.epochs, 3);
    assert_int_equal(cfg->train.batch_size, 64);
    assert_int_equal(cfg->train.log_every, 0);
    assert_true(cfg->train.max_steps == 1000);
    assert_true(cfg->backend.values[0].num[0] == 2);
    assert_string_equal(cfg->output.dir, "out/runs");
    daecl_config_destroy(cfg);
}

static void test_plugin_section_given_as_a_string_is_its_plugin(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL "corruption: none\nlikelihood: gaussian_learned\n"
                                     "backend:\n");
    assert_string_equal(cfg->corruption.name, "none");
    assert_int_equal(cfg->corruption.n_values, 0);
    assert_string_equal(cfg->likelihood.name, "gaussian_learned");
    assert_string_equal(cfg->backend.name, "cpu"); /* empty section: the default plugin */
    daecl_config_destroy(cfg);
    /* a section without `plugin` is the default plugin's */
    cfg = load(MINIMAL "corruption: {p: 0.75}\n");
    assert_string_equal(cfg->corruption.name, "masking");
    assert_true(cfg->corruption.values[0].num[0] == 0.75);
    daecl_config_destroy(cfg);
}

static void test_anchors_and_aliases_are_expanded(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL "model:\n"
                                     "  encoder: [&layer {units: 64, activation: tanh}, *layer]\n"
                                     "  decoder: [*layer]\n");
    assert_int_equal(cfg->model.n_encoder, 2);
    assert_int_equal(cfg->model.encoder[1].units, 64);
    assert_int_equal(cfg->model.encoder[1].act, DAECL_ACT_TANH);
    assert_int_equal(cfg->model.decoder[0].units, 64);
    daecl_config_destroy(cfg);
}

static void test_numbers_accept_yaml_spellings(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL "corruption: {plugin: gaussian, std: .inf}\n"
                                     "optimizer: {lr: +2.5E-1, weight_decay: 3}\n"
                                     "train: {epochs: +7}\n"
                                     "model: {tied_weights: True}\n");
    assert_true(isinf(cfg->corruption.values[0].num[0]));
    assert_true(cfg->optimizer.lr == 0.25 && cfg->optimizer.weight_decay == 3);
    assert_int_equal(cfg->train.epochs, 7);
    assert_int_equal(cfg->model.tied_weights, 1);
    daecl_config_destroy(cfg);
    /* a STRING takes any scalar, quoted or not */
    cfg = load(MINIMAL "corruption: {label: 3.5}\nname: '42'\n");
    assert_string_equal(cfg->corruption.values[3].str, "3.5");
    assert_string_equal(cfg->name, "42");
    daecl_config_destroy(cfg);
}

/* ---- error classes --------------------------------------------------------------- */

static void test_unknown_top_level_key_suggests_the_nearest(void **state)
{
    (void)state;
    expect_err(MINIMAL "trian:\n  epochs: 3\n", 2, 1,
               "unknown top-level key 'trian'; did you mean 'train'?", NULL);
}

static void test_unknown_key_in_a_section_suggests_the_nearest(void **state)
{
    (void)state;
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    const char *yaml = MINIMAL "train:\n  epoch: 3\n";
    assert_int_equal(daecl_config_load_string(yaml, strlen(yaml), "test.yaml", NULL, 0, reg, &cfg,
                                              &err),
                     DAECL_ECONFIG);
    assert_string_equal(err.msg, "unknown key 'epoch' in 'train'; did you mean 'epochs'?");
    char buf[2048];
    assert_string_equal(daecl_err_format(&err, buf, sizeof buf),
                        "test.yaml:3:3: unknown key 'epoch' in 'train'; did you mean 'epochs'?");
}

static void test_unknown_key_far_from_all_lists_the_valid_keys(void **state)
{
    (void)state;
    expect_err(MINIMAL "train:\n  zzzzzz: 1\n", 3, 3, "unknown key 'zzzzzz' in 'train'",
               "the valid keys are epochs, batch_size, log_every, max_steps");
}

static void test_unknown_key_in_an_encoder_layer(void **state)
{
    (void)state;
    expect_err(MINIMAL "model:\n  encoder:\n    - units: 10\n      activaton: relu\n", 5, 7,
               "unknown key 'activaton' in 'model.encoder.0'; did you mean 'activation'?", NULL);
}

static void test_unknown_plugin_parameter(void **state)
{
    (void)state;
    expect_err(MINIMAL "corruption:\n  plugin: masking\n  cuont: 2\n", 4, 3,
               "unknown parameter 'cuont' for corruption plugin 'masking'; did you mean "
               "'count'?",
               NULL);
    expect_err(MINIMAL "corruption: {plugin: masking, zzzzzzzz: 2}\n", 2, 31,
               "its parameters are p, clip, mode, label, count, keep", "daecl plugins masking");
    expect_err(MINIMAL "corruption: {plugin: none, p: 2}\n", 2, 28,
               "corruption plugin 'none' takes no parameters", NULL);
}

static void test_wrong_type_says_what_was_expected_and_found(void **state)
{
    (void)state;
    expect_err(MINIMAL "train:\n  epochs: 3.5\n", 3, 11,
               "train.epochs must be a whole number, not '3.5'", NULL);
    expect_err(MINIMAL "train:\n  epochs: \"3\"\n", 3, 11,
               "train.epochs must be a whole number, not the quoted string '3'; remove the quotes",
               NULL);
    expect_err(MINIMAL "optimizer: {lr: fast}\n", 2, 17, "optimizer.lr must be a number, not 'fast'",
               NULL);
    expect_err(MINIMAL "optimizer: {lr: 0x10}\n", 2, 17, "must be a number, not '0x10'", NULL);
    expect_err(MINIMAL "optimizer: {lr: [1]}\n", 2, 17, "must be a number, not a list", NULL);
}

/* data.shape: [] by default (the data file's), or 1 to 4 whole numbers,
 * written back as a flow list; errors at the offending node. */
static void test_data_shape_is_a_list_of_one_to_four_whole_numbers(void **state)
{
    (void)state;
    daecl_config *c = load(MINIMAL);
    assert_int_equal(c->data.shape_rank, 0);
    daecl_config_destroy(c);
    c = load("data:\n  train: train.idx\n  shape: [28, 28]\n");
    assert_int_equal(c->data.shape_rank, 2);
    assert_int_equal(c->data.shape[0], 28);
    assert_int_equal(c->data.shape[1], 28);
    assert_int_equal(c->data.shape_line, 3);
    assert_int_equal(c->data.shape_col, 10);
    char *text = daecl_config_to_yaml(c);
    assert_non_null(strstr(text, "  shape: [28, 28]\n"));
    free(text);
    daecl_config_destroy(c);
    const char *ov[] = {"data.shape=[3, 16, 16]"};
    c = load_ov(MINIMAL, ov, 1);
    assert_int_equal(c->data.shape_rank, 3);
    assert_int_equal(c->data.shape[2], 16);
    assert_int_equal(c->data.shape_line, 0);
    daecl_config_destroy(c);
    c = load("data: {train: train.idx, shape: []}\n");
    assert_int_equal(c->data.shape_rank, 0);
    daecl_config_destroy(c);
    expect_err("data:\n  train: train.idx\n  shape: [28, 0]\n", 3, 15, "data.shape.1", NULL);
    expect_err("data:\n  train: train.idx\n  shape: [28, 2.5]\n", 3, 15, "data.shape.1",
               "whole number");
    expect_err("data:\n  train: train.idx\n  shape: 784\n", 3, 10,
               "data.shape must be a list of 1 to 4 whole numbers such as [28, 28]", NULL);
    expect_err("data:\n  train: train.idx\n  shape: [1, 2, 3, 4, 5]\n", 3, 10,
               "not a list of more than 4", NULL);
    expect_override_err(MINIMAL, "data.shape=[28, -1]", "data.shape.1", NULL);
}

static void test_out_of_range_says_the_range(void **state)
{
    (void)state;
    expect_err(MINIMAL "optimizer:\n  momentum: 1.5\n", 3, 13,
               "optimizer.momentum must be in [0, 1), not 1.5", NULL);
    expect_err(MINIMAL "optimizer: {lr: 0}\n", 2, 17,
               "optimizer.lr must be in (0, 1000000], not 0", NULL);
    expect_err(MINIMAL "optimizer: {lr: .nan}\n", 2, 17, "optimizer.lr must be in (0, 1000000], "
                                                         "not .nan",
               NULL);
    expect_err(MINIMAL "train: {batch_size: 0}\n", 2, 21,
               "train.batch_size must be in [1, 65536], not 0", NULL);
    expect_err(MINIMAL "corruption: {plugin: gaussian, std: -1}\n", 2, 37,
               "corruption.std must be at least 0, not -1", NULL);
    expect_err(MINIMAL "corruption: {plugin: gaussian, std: 1e999}\n", 2, 37,
               "corruption.std is too large for a double ('1e999')", "write .inf");
    /* beyond what the field can hold */
    expect_err(MINIMAL "seed: 99999999999999999999\n", 2, 7,
               "seed must be in [0, 9007199254740991], not '99999999999999999999'", NULL);
    expect_err(MINIMAL "train: {epochs: 4294967297}\n", 2, 17,
               "train.epochs must be in [1, 1000000], not 4294967297", NULL);
}

static void test_enum_bool_string_and_pair_errors(void **state)
{
    (void)state;
    expect_err(MINIMAL "optimizer: {name: adm}\n", 2, 19,
               "optimizer.name must be one of sgd, adam, adamw, not 'adm'; did you mean 'adam'?",
               NULL);
    expect_err(MINIMAL "model:\n  tied_weights: yes\n", 3, 17,
               "model.tied_weights must be true or false, not 'yes'",
               "yes, no, on and off are not accepted");
    expect_err(MINIMAL "model: {tied_weights: 1}\n", 2, 23,
               "model.tied_weights must be true or false, not '1'", NULL);
    expect_err(MINIMAL "output: {dir: {a: 1}}\n", 2, 15, "output.dir must be a string, not a mapping",
               NULL);
    expect_err(MINIMAL "corruption: {clip: 0.5}\n", 2, 20,
               "corruption.clip must be a pair [lo, hi] of numbers, not '0.5'", NULL);
    expect_err(MINIMAL "corruption: {clip: [0, 1, 2]}\n", 2, 20, "not a list of 3", NULL);
    expect_err(MINIMAL "corruption: {clip: [1, 0]}\n", 2, 20,
               "corruption.clip needs lo <= hi, not [1, 0]", NULL);
    expect_err(MINIMAL "corruption: {clip: [0, 20]}\n", 2, 24,
               "corruption.clip must have both ends in [-10, 10], not 20", NULL);
    expect_err(MINIMAL "corruption: {clip: [0, x]}\n", 2, 24,
               "corruption.clip must be a number, not 'x'", NULL);
    expect_err(MINIMAL "name: a/b\n", 2, 7, "name must be 1 to 100 of the characters", "not 'a/b'");
    expect_err(MINIMAL "name: ..\n", 2, 7, "not '.' or '..'", NULL);
}

static void test_unknown_plugin_suggests_the_nearest(void **state)
{
    (void)state;
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    const char *yaml = MINIMAL "corruption:\n  plugin: maskin\n";
    assert_int_equal(daecl_config_load_string(yaml, strlen(yaml), "test.yaml", NULL, 0, reg, &cfg,
                                              &err),
                     DAECL_ECONFIG);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 11);
    assert_string_equal(err.msg, "unknown corruption plugin 'maskin'; did you mean 'masking'? "
                                 "(`daecl plugins` lists the plugins found)");
    expect_err(MINIMAL "likelihood: poisson\n", 2, 13, "unknown likelihood plugin 'poisson'",
               "the likelihood plugins found are bernoulli, gaussian_learned");
}

static void test_missing_data_train_points_at_the_enclosing_mapping(void **state)
{
    (void)state;
    expect_err("data:\n  test: t.idx\n", 2, 3, "missing required key 'train' in 'data'", NULL);
    expect_err("seed: 1\ntrain: {epochs: 3}\n", 1, 1, "missing required key 'data.train'", NULL);
    expect_err("seed: 1\ndata:\n", 2, 1, "missing required key 'data.train'", NULL);
    expect_err(MINIMAL "model:\n  encoder: [{activation: relu}]\n", 3, 13,
               "missing required key 'units' in 'model.encoder.0'", NULL);
}

static void test_lr_min_needs_a_cosine_schedule(void **state)
{
    (void)state;
    expect_err(MINIMAL "optimizer:\n  lr_min: 0.001\n", 3, 11,
               "optimizer.lr_min is where the cosine schedule ends", "schedule: cosine");
    daecl_config *cfg = load(MINIMAL "optimizer: {schedule: cosine, lr_min: 0.001}\n");
    assert_int_equal(cfg->optimizer.schedule, DAECL_SCHEDULE_COSINE);
    assert_true(cfg->optimizer.lr_min == 0.001);
    daecl_config_destroy(cfg);
    cfg = load(MINIMAL);
    assert_int_equal(cfg->optimizer.schedule, DAECL_SCHEDULE_CONSTANT);
    daecl_config_destroy(cfg);
    expect_err(MINIMAL "optimizer: {schedule: linear}\n", 2, 23, "linear", "constant, cosine");
}

static void test_nesterov_needs_momentum(void **state)
{
    (void)state;
    expect_err(MINIMAL "optimizer:\n  momentum: 0\n  nesterov: true\n", 4, 13,
               "optimizer.nesterov needs optimizer.momentum > 0", NULL);
    daecl_config *cfg = load(MINIMAL "optimizer: {momentum: 0.9, nesterov: true}\n");
    assert_int_equal(cfg->optimizer.nesterov, 1);
    daecl_config_destroy(cfg);
}

static void test_tied_weights_need_one_parameter_per_dimension_and_a_mirror(void **state)
{
    (void)state;
    expect_err(MINIMAL "likelihood: gaussian_learned\nmodel:\n  tied_weights: true\n", 4, 17,
               "model.tied_weights needs a likelihood with 1 parameter per dimension",
               "likelihood plugin 'gaussian_learned' has 2");
    expect_err(MINIMAL "model:\n  encoder: [{units: 100}, {units: 50}]\n"
                       "  decoder: [{units: 90}]\n  tied_weights: true\n",
               5, 17, "model.decoder.0 to have 100 units like model.encoder.0, not 90", NULL);
    expect_err(MINIMAL "model:\n  encoder: [{units: 100}, {units: 50}]\n"
                       "  decoder: []\n  tied_weights: true\n",
               5, 17, "needs 1 decoder layer mirroring the encoder, not 0", NULL);
    daecl_config *cfg = load(MINIMAL "model:\n  encoder: [{units: 100}, {units: 50}]\n"
                                     "  decoder: [{units: 100}]\n  tied_weights: true\n");
    assert_int_equal(cfg->model.tied_weights, 1);
    daecl_config_destroy(cfg);
}

static void test_layer_lists_are_checked(void **state)
{
    (void)state;
    expect_err(MINIMAL "model: {encoder: []}\n", 2, 18, "model.encoder needs 1 to 16 layers, not 0",
               NULL);
    expect_err(MINIMAL "model: {decoder: mirorr}\n", 2, 18,
               "model.decoder must be mirror or a list of layers", "not 'mirorr'");
    expect_err(MINIMAL "model: {encoder: [500]}\n", 2, 19,
               "model.encoder.0 must be a mapping such as {units: 500, activation: sigmoid}",
               NULL);
    expect_err(MINIMAL "model: {encoder: [{units: 0}]}\n", 2, 27,
               "model.encoder.0.units must be in [1, 1000000], not 0", NULL);
    char yaml[2048] = MINIMAL "model:\n  encoder:\n";
    for (int i = 0; i < 17; i++)
        strcat(yaml, "    - {units: 8}\n");
    expect_err(yaml, 4, 5, "model.encoder needs 1 to 16 layers, not 17", NULL);
}

static void test_plugin_check_hook_message_is_kept_at_the_section(void **state)
{
    (void)state;
    expect_err(MINIMAL "corruption:\n  p: 1\n  keep: true\n", 2, 1,
               "masking's keep needs p below 1", NULL);
}

static void test_duplicate_key_is_refused(void **state)
{
    (void)state;
    expect_err(MINIMAL "train:\n  epochs: 3\n  epochs: 4\n", 4, 3,
               "duplicate key 'epochs' (it is also at line 3, column 3)", NULL);
    /* a big mapping takes the sorting path */
    char yaml[4096] = MINIMAL "corruption:\n";
    for (int i = 0; i < 40; i++)
        snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml), "  k%d: 1\n", i);
    strcat(yaml, "  k7: 2\n");
    expect_err(yaml, 43, 3, "duplicate key 'k7' (it is also at line 10, column 3)", NULL);
}

static void test_malformed_yaml_gives_libyamls_problem_and_position(void **state)
{
    (void)state;
    expect_err(MINIMAL "train: {epochs: 3\nseed: 1\n", 3, 5,
               "malformed YAML: did not find expected ',' or '}' (while parsing a flow mapping "
               "that starts at line 2, column 8)",
               NULL);
    expect_err(MINIMAL "train:\n  epochs: 3\n bad: 1\n", 4, 2, "malformed YAML", NULL);
    expect_err("data: \"\xff\"\n", 1, 8, "malformed YAML", "UTF-8");
}

static void test_structural_refusals(void **state)
{
    (void)state;
    expect_err(MINIMAL "---\nseed: 1\n", 2, 1, "a second YAML document starts here", NULL);
    expect_err(MINIMAL "seed: !!int 3\n", 2, 7, "YAML tags", "tag:yaml.org,2002:int");
    expect_err(MINIMAL "? [a]\n: 1\n", 2, 3, "a key must be a plain name, not a list", NULL);
    expect_err("- a\n- b\n", 1, 1, "the top level of a config must be a mapping", "not a list");
    expect_err(MINIMAL "model: {encoder: [*nothing]}\n", 2, 19, "the alias '*nothing' has no anchor",
               NULL);
    expect_err(MINIMAL "seed: \"1\\0\"\n", 2, 7, "NUL character", NULL);
}

static void test_empty_config_says_it_needs_data_train(void **state)
{
    (void)state;
    expect_err("", 0, 0, "the config is empty; a config needs at least data.train", NULL);
    expect_err("# only a comment\n\n", 0, 0, "the config is empty", NULL);
    expect_err("---\n", 0, 0, "the config is empty", NULL);
    /* an empty file with data.train given on the command line is fine */
    const char *ov[] = {"data.train=x.idx"};
    daecl_config *cfg = load_ov("", ov, 1);
    assert_string_equal(cfg->data.train, in_cwd("x.idx"));
    daecl_config_destroy(cfg);
}

/* The refusal names the very alias that would pass the node limit: the
 * count runs before anything is copied, so the bomb is never expanded (no
 * timing here: speed is for bench/, and the position proves the order). */
static void test_alias_bomb_is_refused_before_it_expands(void **state)
{
    (void)state;
    /* nine levels of ten aliases each: 10^9 nodes if expanded */
    char yaml[4096] = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'i'; c++)
        snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml),
                 "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c, c - 1,
                 c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    /* e's tenth alias would make node 100001 (a has 11 nodes, b 111, ...) */
    expect_err(yaml, 5, 36, "more than 100000 nodes once this alias is expanded", NULL);
}

static void test_nesting_deeper_than_32_is_refused(void **state)
{
    (void)state;
    char yaml[256];
    /* 1 (top level) + 31 = 32 levels: allowed by the parser, judged by the schema */
    snprintf(yaml, sizeof yaml, "x: %.*s%.*s\n", 31, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             31, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_err(yaml, 1, 1, "unknown top-level key 'x'", NULL);
    snprintf(yaml, sizeof yaml, "x: %.*s%.*s\n", 32, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             32, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_err(yaml, 1, 35, "nests deeper than 32 levels", NULL);
    /* and through an alias */
    snprintf(yaml, sizeof yaml, "a: &a %.*s%.*s\nb: [[*a]]\n", 30,
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 30,
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    expect_err(yaml, 2, 6, "makes the document nest deeper than 32 levels", NULL);
}

static void test_oversize_file_is_refused_with_its_size(void **state)
{
    (void)state;
    char *dir = test_tmpdir("config-big");
    char path[1200];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    size_t n = ((size_t)1 << 20) + 1;
    char *text = malloc(n);
    assert_non_null(text);
    memset(text, '#', n);
    for (size_t i = 79; i < n; i += 80)
        text[i] = '\n';
    test_write_file(path, text, n);
    free(text);
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_config_load(path, NULL, 0, reg, &cfg, &err), DAECL_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.file, path);
    assert_non_null(strstr(err.msg, "(1048577 bytes), over the limit of 1 MiB"));
    /* the same through load_string */
    char small[8] = "seed: 1";
    assert_int_equal(daecl_config_load_string(small, n, "big", NULL, 0, reg, &cfg, &err),
                     DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "over the limit of 1 MiB"));
    free(dir);
}

/* A config that cannot be opened is a usage error (exit 2), like a bad key. */
static void test_missing_file_is_a_config_error(void **state)
{
    (void)state;
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_config_load("/nonexistent/daecl.yaml", NULL, 0, reg, &cfg, &err),
                     DAECL_ECONFIG);
    assert_string_equal(err.file, "/nonexistent/daecl.yaml");
    assert_non_null(strstr(err.msg, "cannot open the config"));
}

/* ---- overrides ------------------------------------------------------------------- */

static void test_overrides_are_applied_in_order(void **state)
{
    (void)state;
    const char *ov[] = {
        "train.epochs=3",
        "train.epochs=5",
        "corruption.p=0.5",
        "corruption.clip=[0.25, 0.75]",
        "model.encoder.0.units=500",
        "model.encoder.1={units: 20, activation: relu}",
        "likelihood.plugin=gaussian_learned",
        "likelihood.min_std=0.01",
        "name=sweep-7",
        "data.test=",
        "optimizer={name: adam, lr: 0.001}",
        "backend.threads=4",
    };
    daecl_config *cfg = load_ov("data:\n  train: a.idx\n  test: b.idx\n"
                                "model:\n  encoder: [{units: 100, activation: tanh}]\n",
                                ov, sizeof ov / sizeof ov[0]);
    assert_int_equal(cfg->train.epochs, 5);
    assert_true(cfg->corruption.values[0].num[0] == 0.5);
    assert_true(cfg->corruption.values[1].num[0] == 0.25 && cfg->corruption.values[1].num[1] == 0.75);
    assert_int_equal(cfg->model.n_encoder, 2);
    assert_int_equal(cfg->model.encoder[0].units, 500);
    assert_int_equal(cfg->model.encoder[0].act, DAECL_ACT_TANH); /* kept from the file */
    assert_int_equal(cfg->model.encoder[1].units, 20);
    assert_string_equal(cfg->likelihood.name, "gaussian_learned");
    assert_true(cfg->likelihood.values[0].num[0] == 0.01);
    assert_string_equal(cfg->name, "sweep-7");
    assert_string_equal(cfg->data.test, "");
    assert_int_equal(cfg->optimizer.kind, DAECL_OPTIM_ADAM);
    assert_true(cfg->optimizer.lr == 0.001);
    assert_true(cfg->backend.values[0].num[0] == 4);
    daecl_config_destroy(cfg);

    /* a whole list, and a section the file does not have */
    const char *ov2[] = {"model.encoder=[{units: 500, activation: relu}]", "train.max_steps=7"};
    cfg = load_ov(MINIMAL "model: {encoder: [{units: 1}, {units: 2}]}\n", ov2, 2);
    assert_int_equal(cfg->model.n_encoder, 1);
    assert_int_equal(cfg->model.encoder[0].units, 500);
    assert_int_equal(cfg->model.encoder[0].act, DAECL_ACT_RELU);
    assert_true(cfg->train.max_steps == 7);
    daecl_config_destroy(cfg);
}

static void test_override_that_changes_the_plugin_drops_its_old_keys(void **state)
{
    (void)state;
    const char *file = MINIMAL "corruption:\n  plugin: masking\n  p: 0.4\n  count: 5\n";
    const char *ov[] = {"corruption.plugin=gaussian", "corruption.std=0.3"};
    daecl_config *cfg = load_ov(file, ov, 2);
    assert_string_equal(cfg->corruption.name, "gaussian");
    assert_int_equal(cfg->corruption.n_values, 1);
    assert_true(cfg->corruption.values[0].num[0] == 0.3);
    daecl_config_destroy(cfg);
    /* naming the same plugin keeps the file's parameters */
    const char *same[] = {"corruption.plugin=masking"};
    cfg = load_ov(file, same, 1);
    assert_true(cfg->corruption.values[0].num[0] == 0.4);
    assert_true(cfg->corruption.values[4].num[0] == 5);
    daecl_config_destroy(cfg);
    /* from the shorthand, and to the shorthand */
    const char *ov3[] = {"corruption=none"};
    cfg = load_ov(file, ov3, 1);
    assert_string_equal(cfg->corruption.name, "none");
    daecl_config_destroy(cfg);
    const char *ov4[] = {"corruption.plugin=gaussian", "corruption.std=2"};
    cfg = load_ov(MINIMAL "corruption: none\n", ov4, 2);
    assert_string_equal(cfg->corruption.name, "gaussian");
    assert_true(cfg->corruption.values[0].num[0] == 2);
    daecl_config_destroy(cfg);
}

static void test_override_errors_name_the_override(void **state)
{
    (void)state;
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    const char *ov[] = {"train.epoch=3"};
    assert_int_equal(daecl_config_load_string(MINIMAL, strlen(MINIMAL), "test.yaml", ov, 1, reg,
                                              &cfg, &err),
                     DAECL_ECONFIG);
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
    assert_string_equal(err.msg, "override 'train.epoch=3': unknown key 'epoch' in 'train'; did "
                                 "you mean 'epochs'?");

    const char *y = MINIMAL;
    expect_override_err(y, "trian.epochs=3", "unknown top-level key 'trian'", NULL);
    expect_override_err(y, "model.encoder.0.activaton=relu", "unknown key 'activaton' in "
                                                             "'model.encoder.0'",
                        NULL);
    expect_override_err(y, "train.epochs=abc", "train.epochs must be a whole number, not 'abc'",
                        NULL);
    expect_override_err(y, "optimizer.momentum=1.5", "must be in [0, 1), not 1.5", NULL);
    expect_override_err(y, "corruption.plugin=maskin", "did you mean 'masking'?", NULL);
    expect_override_err(y, "corruption.cuont=2", "unknown parameter 'cuont'", "'count'");
    expect_override_err(y, "data={test: t.idx}", "missing required key 'train' in 'data'", NULL);
    expect_override_err(y, "optimizer.nesterov=true", "needs optimizer.momentum > 0", NULL);
    expect_override_err(MINIMAL "likelihood: gaussian_learned\n", "model.tied_weights=true",
                        "has 2", NULL);
    expect_override_err(y, "model.tied_weights=yes", "must be true or false, not 'yes'", NULL);
    expect_override_err(y, "corruption={p: 0.1, p: 0.2}", "duplicate key 'p'", NULL);
    expect_override_err(y, "train.epochs=[1", "its value is not valid YAML", "column");
    expect_override_err(y, "seed=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                        "nests deeper than 32 levels", NULL);
    /* a section the file has keeps blaming the file for what the file lacks */
    const char *ov2[] = {"data.test=t.idx"};
    expect_err_ov("data:\n  test_limit: 3\n", ov2, 1, "test.yaml", 2, 3,
                  "missing required key 'train' in 'data'", NULL);
}

static void test_override_check_hook_failure_names_the_override(void **state)
{
    (void)state;
    const char *ov[] = {"corruption.keep=true"};
    expect_err_ov(MINIMAL "corruption: {p: 1}\n", ov, 1, "", 0, 0,
                  "override 'corruption.keep=true': masking's keep needs p below 1", NULL);
}

static void test_malformed_overrides_are_refused(void **state)
{
    (void)state;
    expect_override_err(MINIMAL, "train.epochs", "it has no '='", "KEY=VALUE");
    expect_override_err(MINIMAL, "=3", "the key before '=' is empty", NULL);
    expect_override_err(MINIMAL, "train..epochs=3", "its key has an empty part", NULL);
    expect_override_err(MINIMAL "train: {epochs: 3}\n", "train.epochs.x=1",
                        "'train.epochs' is a single value, not a section", NULL);
    expect_override_err(MINIMAL "model: {encoder: [{units: 4}]}\n", "model.encoder.5.units=3",
                        "'model.encoder' has 1 item, so the item number can be at most 1", NULL);
    expect_override_err(MINIMAL "model: {encoder: [{units: 4}]}\n", "model.encoder.x=3", "'model.encoder' is a list, so 'x' must be "
                                                      "an item number",
                        NULL);
}

/* ---- paths --------------------------------------------------------------------- */

static void test_data_paths_resolve_against_the_config_folder(void **state)
{
    (void)state;
    char *dir = test_tmpdir("config-paths");
    char sub[1200], path[1300], want[1400], saved[PATH_MAX];
    snprintf(sub, sizeof sub, "%s/exp", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof path, "%s/c.yaml", sub);
    const char *yaml = "data:\n  train: imgs/train.idx\n  test: ./t.idx\n"
                       "  train_labels: /abs/labels.idx\n"
                       "output: {dir: my-runs}\n";
    test_write_file(path, yaml, strlen(yaml));
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_config_load(path, NULL, 0, reg, &cfg, &err), 0);
    snprintf(want, sizeof want, "%s/imgs/train.idx", sub);
    assert_string_equal(cfg->data.train, want);
    snprintf(want, sizeof want, "%s/t.idx", sub);
    assert_string_equal(cfg->data.test, want);
    assert_string_equal(cfg->data.train_labels, "/abs/labels.idx");
    assert_string_equal(cfg->data.test_labels, "");
    assert_string_equal(cfg->output.dir, "my-runs"); /* relative to the cwd, as given */
    assert_string_equal(cfg->source, path);
    daecl_config_destroy(cfg);

    /* a relative config path: made absolute through the cwd */
    assert_non_null(getcwd(saved, sizeof saved));
    assert_int_equal(chdir(dir), 0);
    int rc = daecl_config_load("exp/c.yaml", NULL, 0, reg, &cfg, &err);
    assert_int_equal(chdir(saved), 0);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof want, "%s/imgs/train.idx", sub);
    assert_string_equal(cfg->data.train, want);
    assert_string_equal(cfg->source, "exp/c.yaml");
    daecl_config_destroy(cfg);

    /* an override's relative path resolves like the file's */
    const char *ov[] = {"data.test=other/t.idx"};
    assert_int_equal(daecl_config_load(path, ov, 1, reg, &cfg, &err), 0);
    snprintf(want, sizeof want, "%s/other/t.idx", sub);
    assert_string_equal(cfg->data.test, want);
    daecl_config_destroy(cfg);

    /* errors in a file carry its path as given */
    const char *bad = MINIMAL "train: {epoch: 1}\n";
    test_write_file(path, bad, strlen(bad));
    assert_int_equal(daecl_config_load(path, NULL, 0, reg, &cfg, &err), DAECL_ECONFIG);
    assert_string_equal(err.file, path);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 9);
    free(dir);
}

/* ---- parallel ------------------------------------------------------------------------ */

static void test_parallel_defaults_to_the_backend_sections_one_device(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL);
    assert_int_equal(cfg->parallel.n_devices, 0);
    assert_int_equal(cfg->parallel.measure_steps, 8);
    assert_int_equal(cfg->parallel.rebalance, 1);
    assert_int_equal(cfg->parallel.drop_slow, 1);
    assert_string_equal(cfg->parallel.comm, "auto");
    daecl_config_destroy(cfg);
    cfg = load(MINIMAL "parallel:\n");
    assert_int_equal(cfg->parallel.n_devices, 0);
    assert_int_equal(cfg->parallel.measure_steps, 8);
    daecl_config_destroy(cfg);
    cfg = load(MINIMAL "parallel: {devices: []}\n");
    assert_int_equal(cfg->parallel.n_devices, 0);
    daecl_config_destroy(cfg);
}

static void test_parallel_devices_are_backend_sections_with_a_share(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL "parallel:\n"
                                     "  devices:\n"
                                     "    - {plugin: opencl, platform: \"Portable\", type: cpu, index: 0}\n"
                                     "    - {plugin: opencl, index: 1, share: 3}\n"
                                     "    - plugin: cpu\n"
                                     "      threads: 1\n"
                                     "  measure_steps: 2\n"
                                     "  rebalance: false\n"
                                     "  drop_slow: false\n"
                                     "  comm: mpi\n");
    const daecl_plugin_cfg *d = cfg->parallel.devices;
    assert_int_equal(cfg->parallel.n_devices, 3);
    assert_string_equal(d[0].name, "opencl");
    assert_int_equal(d[0].n_values, 3);
    assert_string_equal(daecl_plugin_cfg_value(&d[0], "platform")->str, "Portable");
    assert_string_equal(daecl_plugin_cfg_value(&d[0], "type")->str, "cpu");
    assert_true(daecl_plugin_cfg_value(&d[0], "index")->num[0] == 0);
    assert_int_equal(d[0].n_packed, 2); /* packed like the backend section's */
    assert_true(d[0].packed[0] == 2 && d[0].packed[1] == 0);
    assert_true(daecl_plugin_cfg_value(&d[1], "index")->num[0] == 1);
    assert_string_equal(daecl_plugin_cfg_value(&d[1], "type")->str, "any"); /* defaults */
    assert_string_equal(d[2].name, "cpu");
    assert_true(daecl_plugin_cfg_value(&d[2], "threads")->num[0] == 1);
    assert_true(cfg->parallel.share[0] == 0 && cfg->parallel.share[1] == 3 &&
                cfg->parallel.share[2] == 0);
    /* where each item starts, for the engine's messages */
    assert_int_equal(cfg->parallel.line[0], 4);
    assert_int_equal(cfg->parallel.col[0], 7);
    assert_int_equal(cfg->parallel.line[2], 6);
    assert_int_equal(cfg->parallel.col[2], 7);
    assert_int_equal(cfg->parallel.measure_steps, 2);
    assert_int_equal(cfg->parallel.rebalance, 0);
    assert_int_equal(cfg->parallel.drop_slow, 0);
    assert_string_equal(cfg->parallel.comm, "mpi");
    /* the backend section is untouched */
    assert_string_equal(cfg->backend.name, "cpu");
    daecl_config_destroy(cfg);

    /* an item without a plugin is a cpu, like the backend section */
    cfg = load(MINIMAL "parallel: {devices: [{threads: 3}, {plugin: opencl}], comm: none}\n");
    assert_string_equal(cfg->parallel.devices[0].name, "cpu");
    assert_string_equal(cfg->parallel.comm, "none");
    daecl_config_destroy(cfg);
}

static void test_parallel_refuses_the_same_device_twice(void **state)
{
    (void)state;
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu}\n    - {plugin: cpu, share: 2}\n",
               5, 7, "parallel.devices.1 names the same device as parallel.devices.0 (cpu); "
                     "list each device once", NULL);
    /* the defaults written out are the same device */
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, threads: 2}\n"
                       "    - {plugin: cpu, threads: 0}\n    - {plugin: cpu}\n",
               6, 7, "parallel.devices.2 names the same device as parallel.devices.1 (cpu)",
               NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n"
                       "    - {plugin: opencl, platform: Portable, index: 1}\n"
                       "    - {plugin: opencl, index: 1}\n"
                       "    - {plugin: opencl, index: 1, platform: Portable, share: 5}\n",
               6, 7,
               "parallel.devices.2 names the same device as parallel.devices.0 (opencl, "
               "platform Portable, index 1); list each device once",
               NULL);
    /* different parameters: different devices */
    daecl_config *cfg = load(MINIMAL "parallel: {devices: [{plugin: cpu, threads: 1}, "
                                     "{plugin: cpu, threads: 2}, {plugin: opencl}]}\n");
    assert_int_equal(cfg->parallel.n_devices, 3);
    daecl_config_destroy(cfg);
}

static void test_parallel_refusals_point_at_the_item(void **state)
{
    (void)state;
    expect_err(MINIMAL "parallel: {devices: cpu}\n", 2, 21,
               "parallel.devices must be a list of devices such as [{plugin: cpu}", "not 'cpu'");
    expect_err(MINIMAL "parallel:\n  devices:\n    - cpu\n", 4, 7,
               "parallel.devices.0 must be a mapping such as {plugin: cpu}", "not 'cpu'");
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, share: -1}\n", 4, 28,
               "parallel.devices.0.share must be in [0, 1000000000], not -1", NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, share: .nan}\n", 4, 28,
               "parallel.devices.0.share must be in [0, 1000000000], not .nan", NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu}\n    - {plugin: opencl, "
                       "share: lots}\n",
               5, 31, "parallel.devices.1.share must be a number, not 'lots'", NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, thread: 2}\n", 4, 21,
               "unknown key 'thread' in 'parallel.devices.0'; did you mean 'threads'?", NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, shares: 2}\n", 4, 21,
               "unknown key 'shares' in 'parallel.devices.0'; did you mean 'share'?",
               NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: opencl, zzzzzz: 2}\n", 4, 24,
               "unknown key 'zzzzzz' in 'parallel.devices.0': it takes share and the parameters "
               "of backend plugin 'opencl'", "daecl plugins opencl");
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu}\n    - {plugin: opencll}\n",
               5, 16, "unknown backend plugin 'opencll'; did you mean 'opencl'?", NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, threads: 5000}\n", 4, 30,
               "parallel.devices.0.threads must be in [0, 1024], not 5000", NULL);
    expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: [cpu]}\n", 4, 16,
               "parallel.devices.0.plugin must be a plugin name such as cpu, not a list", NULL);
    expect_err(MINIMAL "parallel: {measure_steps: 0}\n", 2, 27,
               "parallel.measure_steps must be in [1, 1000000], not 0", NULL);
    expect_err(MINIMAL "parallel: {comm: MPI}\n", 2, 18,
               "parallel.comm must be auto, none or a plugin name of the characters a-z 0-9 _, "
               "not 'MPI'", NULL);
    expect_err(MINIMAL "parallel: {comm: \"\"}\n", 2, 18, "parallel.comm must be auto", NULL);
    expect_err(MINIMAL "parallel: {device: []}\n", 2, 12,
               "unknown key 'device' in 'parallel'; did you mean 'devices'?", NULL);
    expect_err(MINIMAL "parallel: []\n", 2, 11, "parallel must be a mapping of keys", NULL);

    /* 16 devices are fine, the 17th is refused where it is */
    char yaml[2048];
    size_t used = (size_t)snprintf(yaml, sizeof yaml, MINIMAL "parallel:\n  devices:\n");
    for (int i = 0; i < DAECL_MAX_REPLICAS; i++)
        used += (size_t)snprintf(yaml + used, sizeof yaml - used,
                                 "    - {plugin: cpu, threads: %d}\n", i + 1);
    daecl_config *cfg = load(yaml);
    assert_int_equal(cfg->parallel.n_devices, DAECL_MAX_REPLICAS);
    assert_int_equal(cfg->parallel.line[15], 19);
    daecl_config_destroy(cfg);
    snprintf(yaml + used, sizeof yaml - used, "    - {plugin: cpu, threads: 99}\n");
    expect_err(yaml, 20, 7, "parallel.devices lists 17 devices, more than the 16 a run can train "
                            "on; list at most 16", NULL);
}

static void test_parallel_overrides_set_keys_and_index_devices(void **state)
{
    (void)state;
    const char *file = MINIMAL "parallel:\n  devices:\n    - {plugin: opencl, index: 0}\n"
                               "    - {plugin: cpu, threads: 1}\n";
    const char *ov[] = {"parallel.measure_steps=3", "parallel.comm=none",
                        "parallel.devices.1.share=2", "parallel.devices.0.index=1",
                        "parallel.rebalance=false"};
    daecl_config *cfg = load_ov(file, ov, sizeof ov / sizeof ov[0]);
    assert_int_equal(cfg->parallel.measure_steps, 3);
    assert_string_equal(cfg->parallel.comm, "none");
    assert_int_equal(cfg->parallel.rebalance, 0);
    assert_int_equal(cfg->parallel.n_devices, 2);
    assert_true(daecl_plugin_cfg_value(&cfg->parallel.devices[0], "index")->num[0] == 1);
    assert_true(cfg->parallel.share[1] == 2);
    assert_true(daecl_plugin_cfg_value(&cfg->parallel.devices[1], "threads")->num[0] == 1);
    assert_int_equal(cfg->parallel.line[1], 5); /* the item is still the file's */
    daecl_config_destroy(cfg);

    /* a whole list in flow syntax replaces the file's; its items have no place */
    const char *whole[] = {"parallel.devices=[{plugin: cpu}, {plugin: opencl, share: 1.5}]",
                           "parallel.devices.2={plugin: cpu, threads: 4}"};
    cfg = load_ov(file, whole, 2);
    assert_int_equal(cfg->parallel.n_devices, 3);
    assert_string_equal(cfg->parallel.devices[0].name, "cpu");
    assert_string_equal(cfg->parallel.devices[1].name, "opencl");
    assert_true(cfg->parallel.share[1] == 1.5);
    assert_true(daecl_plugin_cfg_value(&cfg->parallel.devices[2], "threads")->num[0] == 4);
    for (int i = 0; i < 3; i++)
        assert_true(cfg->parallel.line[i] == 0 && cfg->parallel.col[i] == 0);
    daecl_config_destroy(cfg);

    /* in a config without a parallel section */
    const char *fresh[] = {"parallel.devices.0.plugin=cpu", "parallel.devices.1.threads=2"};
    cfg = load_ov(MINIMAL, fresh, 2);
    assert_int_equal(cfg->parallel.n_devices, 2);
    assert_true(daecl_plugin_cfg_value(&cfg->parallel.devices[1], "threads")->num[0] == 2);
    daecl_config_destroy(cfg);

    /* another plugin drops the item's parameters but keeps its share */
    const char *swap[] = {"parallel.devices.0.plugin=cpu", "parallel.devices.0.threads=8"};
    cfg = load_ov(MINIMAL "parallel: {devices: [{plugin: opencl, index: 1, share: 2}]}\n",
                  swap, 2);
    assert_string_equal(cfg->parallel.devices[0].name, "cpu");
    assert_true(cfg->parallel.devices[0].values[0].num[0] == 8);
    assert_true(cfg->parallel.share[0] == 2);
    daecl_config_destroy(cfg);

    expect_override_err(file, "parallel.devices.5.share=1", "'parallel.devices' has 2 items",
                        "at most 2");
    expect_override_err(file, "parallel.devices.first.share=1",
                        "'parallel.devices' is a list, so 'first' must be an item number", NULL);
    expect_override_err(file, "parallel.devices.1.threads=2000",
                        "parallel.devices.1.threads must be in [0, 1024], not 2000", NULL);
    expect_override_err(file, "parallel.devices.1.share=-2",
                        "parallel.devices.1.share must be in [0, 1000000000], not -2", NULL);
    expect_override_err(file, "parallel.devices.1={plugin: opencl, index: 0}",
                        "parallel.devices.1 names the same device as parallel.devices.0", NULL);
}

/* ---- writing back ------------------------------------------------------------------ */

static void assert_same_plugin_cfg(const daecl_plugin_cfg *a, const daecl_plugin_cfg *b)
{
    assert_string_equal(a->name, b->name);
    assert_ptr_equal(a->plugin, b->plugin);
    assert_int_equal(a->n_values, b->n_values);
    for (uint32_t k = 0; k < a->n_values; k++) {
        assert_memory_equal(a->values[k].num, b->values[k].num, sizeof a->values[k].num);
        assert_true((a->values[k].str == NULL) == (b->values[k].str == NULL));
        if (a->values[k].str)
            assert_string_equal(a->values[k].str, b->values[k].str);
    }
    assert_int_equal(a->n_packed, b->n_packed);
    assert_memory_equal(a->packed, b->packed, sizeof(float) * a->n_packed);
}

static void assert_same_config(const daecl_config *a, const daecl_config *b)
{
    assert_string_equal(a->name, b->name);
    assert_true(a->seed == b->seed);
    assert_string_equal(a->data.train, b->data.train);
    assert_string_equal(a->data.test, b->data.test);
    assert_string_equal(a->data.train_labels, b->data.train_labels);
    assert_string_equal(a->data.test_labels, b->data.test_labels);
    assert_true(a->data.train_limit == b->data.train_limit);
    assert_true(a->data.test_limit == b->data.test_limit);
    assert_memory_equal(&a->data.resident_max_mb, &b->data.resident_max_mb, sizeof(double));
    assert_memory_equal(&a->model, &b->model, sizeof a->model);
    assert_same_plugin_cfg(&a->corruption, &b->corruption);
    assert_same_plugin_cfg(&a->likelihood, &b->likelihood);
    assert_same_plugin_cfg(&a->backend, &b->backend);
    assert_memory_equal(&a->optimizer, &b->optimizer, sizeof a->optimizer);
    assert_memory_equal(&a->train, &b->train, sizeof a->train);
    assert_string_equal(a->output.dir, b->output.dir);
    assert_int_equal(a->parallel.n_devices, b->parallel.n_devices);
    for (uint32_t i = 0; i < a->parallel.n_devices; i++) {
        assert_same_plugin_cfg(&a->parallel.devices[i], &b->parallel.devices[i]);
        assert_memory_equal(&a->parallel.share[i], &b->parallel.share[i], sizeof(double));
    }
    assert_int_equal(a->parallel.measure_steps, b->parallel.measure_steps);
    assert_int_equal(a->parallel.rebalance, b->parallel.rebalance);
    assert_int_equal(a->parallel.drop_slow, b->parallel.drop_slow);
    assert_string_equal(a->parallel.comm, b->parallel.comm);
}

static void round_trip(const char *yaml)
{
    daecl_config *a = load(yaml), *b = NULL;
    char *text = daecl_config_to_yaml(a);
    assert_non_null(text);
    assert_true(strncmp(text, "# ", 2) == 0);
    daecl_err err = {0};
    if (daecl_config_load_string(text, strlen(text), "resolved.yaml", NULL, 0, reg, &b, &err))
        fail_msg("the written config does not load: %d:%d: %s\n%s", err.line, err.col, err.msg,
                 text);
    assert_same_config(a, b);
    char *again = daecl_config_to_yaml(b);
    assert_non_null(again);
    assert_string_equal(text, again);
    free(text);
    free(again);
    daecl_config_destroy(a);
    daecl_config_destroy(b);
}

static void test_to_yaml_round_trips_to_the_same_config(void **state)
{
    (void)state;
    round_trip(MINIMAL);
    round_trip("name: r.1\nseed: 123456789012345\n"
               "data: {train: 'my data/tr ain.idx', test: \"/x/y: z #w\", train_limit: 17}\n"
               "model:\n  encoder: [{units: 784, activation: relu}, {units: 3, activation: linear}]\n"
               "  decoder: [{units: 12, activation: tanh}, {units: 1}]\n"
               "corruption: {plugin: masking, p: 0.1, clip: [-0.5, 1e-7], mode: mean,\n"
               "             label: \"tab\\there \\\"q\\\" \\\\ caf\xc3\xa9 yes\", count: 100, keep: true}\n"
               "likelihood: {plugin: gaussian_learned, min_std: 0.30000000000000004}\n"
               "optimizer: {name: adam, lr: 3e-4, momentum: 0.3333333333333333, eps: 1e-12,\n"
               "            weight_decay: 1000000, beta2: 0.9999}\n"
               "train: {epochs: 1000000, batch_size: 65536, log_every: 1000000000,\n"
               "        max_steps: 9007199254740991}\n"
               "output: {dir: \"true\"}\n");
    round_trip(MINIMAL "corruption: {plugin: gaussian, std: .inf}\nlikelihood: bernoulli\n"
                       "model: {decoder: [], encoder: [{units: 5}]}\n");
    round_trip(MINIMAL "corruption: none\n");
    round_trip("data: {train: train.idx, shape: [3, 32, 32]}\ncorruption: none\n");
    round_trip(MINIMAL "parallel:\n  devices:\n"
                       "    - {plugin: opencl, platform: \"Portable: yes\", type: cpu, index: 0}\n"
                       "    - {plugin: opencl, index: 1, share: 3}\n"
                       "    - {plugin: cpu, threads: 1, share: 0.30000000000000004}\n"
                       "    - {plugin: cpu, threads: 2}\n"
                       "  measure_steps: 3\n  rebalance: false\n  drop_slow: false\n"
                       "  comm: mpi\n");
    round_trip(MINIMAL "parallel: {devices: [], comm: none}\n");
    /* control characters, line breaks YAML would fold, the BOM: escaped */
    round_trip(MINIMAL "corruption: {label: \"a\\x01b\\x7f\\x85\\u2028\\u2029\\uFEFF\\r\\n "
                       "\\u00e9\\U0001F600 end \"}\n");
}

static void test_to_yaml_writes_every_key_in_block_style(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL "corruption: {label: 'a: b'}\n");
    char *text = daecl_config_to_yaml(cfg);
    assert_non_null(text);
    char want_train[2 * PATH_MAX + 32];
    snprintf(want_train, sizeof want_train, "\n  train: %s\n", in_cwd("train.idx"));
    const char *lines[] = {
        "\nname: run\n",        "\nseed: 0\n",           want_train,
        "\n  test: \"\"\n",      "\n  resident_max_mb: 0\n",
        "\nmodel:\n  encoder:\n    - units: 1000\n      activation: sigmoid\n  decoder: mirror\n"
        "  tied_weights: false\n",
        "\ncorruption:\n  plugin: masking\n  p: 0.25\n  clip: [0, 1]\n  mode: zero\n"
        "  label: \"a: b\"\n  count: 3\n  keep: false\n",
        "\nlikelihood:\n  plugin: bernoulli\n", "\noptimizer:\n  name: sgd\n  lr: 0.1\n",
        "  eps: 1e-08\n",       "\ntrain:\n  epochs: 10\n", "\nbackend:\n  plugin: cpu\n  threads: 0\n",
        "\noutput:\n  dir: runs\n",
        "\nparallel:\n  devices: []\n  measure_steps: 8\n  rebalance: true\n"
        "  drop_slow: true\n  comm: auto\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(text, lines[i]))
            fail_msg("the YAML lacks \"%s\":\n%s", lines[i], text);
    free(text);
    daecl_config_destroy(cfg);
}

static void test_to_yaml_writes_parallel_devices_as_block_items(void **state)
{
    (void)state;
    daecl_config *cfg = load(MINIMAL "parallel:\n  devices: [{plugin: cpu, threads: 2, share: 3},"
                                     " {plugin: opencl}]\n");
    char *text = daecl_config_to_yaml(cfg);
    assert_non_null(text);
    const char *want = "\nparallel:\n  devices:\n"
                       "    - plugin: cpu\n      threads: 2\n      share: 3\n"
                       "    - plugin: opencl\n      platform: \"\"\n      type: any\n"
                       "      index: -1\n      share: 0\n"
                       "  measure_steps: 8\n";
    if (!strstr(text, want))
        fail_msg("the YAML lacks \"%s\":\n%s", want, text);
    free(text);
    daecl_config_destroy(cfg);
}

/* ---- backend.plugin: auto ------------------------------------------------------------ */

/* auto becomes a backend as the config loads: the config, and the YAML
 * written back, name that backend, so a resume or an eval of the run uses
 * it; a comment keeps the request and the reason. */
static void test_backend_auto_is_resolved_and_written_back_resolved(void **state)
{
    (void)state;
    unsetenv("DAECL_DEVICE");
    fake_listing("gpu");
    daecl_config *cfg = load(MINIMAL "backend: auto\n");
    assert_string_equal(cfg->backend.name, "opencl");
    assert_string_equal(daecl_plugin_cfg_value(&cfg->backend, "type")->str, "any");
    if (!strstr(cfg->backend_auto, "OpenCL GPU fake gpu of Vendor OpenCL"))
        fail_msg("reason: %s", cfg->backend_auto);
    char *text = daecl_config_to_yaml(cfg);
    const char *want = "\n# backend.plugin: auto chose opencl: OpenCL GPU fake gpu of Vendor "
                       "OpenCL (backend.plugin=cpu forces the cpu backend)\nbackend:\n"
                       "  plugin: opencl\n  platform: \"\"\n  type: any\n  index: -1\n";
    if (!strstr(text, want))
        fail_msg("the YAML lacks \"%s\":\n%s", want, text);
    daecl_config_destroy(cfg);
    /* the written config is the choice: loading it asks nothing */
    fake_listing("cpu");
    cfg = load(text);
    assert_string_equal(cfg->backend.name, "opencl");
    assert_string_equal(cfg->backend_auto, "");
    free(text);
    daecl_config_destroy(cfg);

    /* only a CPU device: the cpu backend, with its defaults */
    cfg = load(MINIMAL "backend: {plugin: auto}\n");
    assert_string_equal(cfg->backend.name, "cpu");
    assert_true(daecl_plugin_cfg_value(&cfg->backend, "threads")->num[0] == 0);
    if (!strstr(cfg->backend_auto, "no OpenCL GPU or accelerator (only Portable Computing "
                                   "Language's CPU device"))
        fail_msg("reason: %s", cfg->backend_auto);
    daecl_config_destroy(cfg);
    /* an override names auto, or another backend over it */
    const char *to_auto[] = {"backend.plugin=auto"}, *to_cpu[] = {"backend.plugin=cpu"};
    cfg = load_ov(MINIMAL "backend: {plugin: opencl, type: gpu}\n", to_auto, 1);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_string_not_equal(cfg->backend_auto, "");
    daecl_config_destroy(cfg);
    fake_listing("gpu");
    cfg = load_ov(MINIMAL "backend: auto\n", to_cpu, 1);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_string_equal(cfg->backend_auto, "");
    daecl_config_destroy(cfg);
    /* the schema's default stays cpu: a config that names no backend asks nothing */
    cfg = load(MINIMAL);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_string_equal(cfg->backend_auto, "");
    daecl_config_destroy(cfg);
}

/* DAECL_DEVICE names an OpenCL device: auto honours it whatever is listed. */
static void test_backend_auto_honours_daecl_device(void **state)
{
    (void)state;
    fake_listing("cpu");
    setenv("DAECL_DEVICE", "type=cpu", 1);
    daecl_config *cfg = load(MINIMAL "backend: auto\n");
    unsetenv("DAECL_DEVICE");
    assert_string_equal(cfg->backend.name, "opencl");
    if (!strstr(cfg->backend_auto, "DAECL_DEVICE=type=cpu names an OpenCL device"))
        fail_msg("reason: %s", cfg->backend_auto);
    daecl_config_destroy(cfg);
}

static void test_backend_auto_refusals_point_at_the_key(void **state)
{
    (void)state;
    unsetenv("DAECL_DEVICE");
    fake_listing("cpu");
    expect_err(MINIMAL "backend:\n  plugin: auto\n  threads: 2\n", 4, 3,
               "backend plugin 'auto' takes no parameters, so 'threads'",
               "(backend.plugin=cpu or backend.plugin=opencl)");
    expect_err(MINIMAL "parallel: {devices: [{plugin: cpu}, {plugin: auto}]}\n", 2, 46,
               "parallel.devices.1.plugin cannot be auto", "names its backend");
    const char *ov[] = {"backend.type=gpu"};
    expect_err_ov(MINIMAL "backend: auto\n", ov, 1, "", 0, 0, "override 'backend.type=gpu'",
                  "takes no parameters");
}

/* ---- the schema and its documentation ------------------------------------------ */

static void test_core_defaults_are_valid_values_of_their_keys(void **state)
{
    (void)state;
    for (size_t s = 0; s < daecl__cfg_n_sections; s++) {
        const daecl__cfg_section *sec = &daecl__cfg_sections[s];
        for (size_t k = 0; k < sec->n_keys; k++) {
            const daecl_param_spec *p = &sec->keys[k].spec;
            if (sec->keys[k].flags & (DAECL__KEY_LAYERS | DAECL__KEY_REQUIRED))
                continue;
            if (p->type == DAECL_PARAM_INT || p->type == DAECL_PARAM_FLOAT)
                if (!(p->def[0] >= p->min && p->def[0] <= p->max))
                    fail_msg("%s.%s: default %g outside [%g, %g]", sec->name, p->name, p->def[0],
                             p->min, p->max);
            if (p->type == DAECL_PARAM_ENUM) {
                daecl_param_value v;
                daecl__param_default(p, &v);
                size_t len;
                const char *c = daecl__choice_at(p->choices, (size_t)v.num[0], &len);
                assert_non_null(c);
                assert_int_equal(len, strlen(p->def_str));
                assert_memory_equal(c, p->def_str, len);
            }
        }
    }
}

static void test_docs_key_reference_matches_the_schema(void **state)
{
    (void)state;
    static const char begin[] = "<!-- key reference: generated from core/config_schema.c -->\n";
    static const char end[] = "<!-- end of key reference -->";
    char *doc = test_read_file(DAECL_TEST_SOURCE_DIR "/docs/config.md", NULL);
    char *ref = daecl__config_reference();
    assert_non_null(ref);
    char *a = strstr(doc, begin), *b = a ? strstr(a, end) : NULL;
    int same = a && b && (size_t)(b - a - (sizeof begin - 1)) == strlen(ref) &&
               memcmp(a + sizeof begin - 1, ref, strlen(ref)) == 0;
    if (!same) {
        const char *out = DAECL_TEST_TMP_DIR "/config-reference.md";
        test_write_file(out, ref, strlen(ref));
        fail_msg("docs/config.md's key reference differs from the schema; put %s between "
                 "its markers",
                 out);
    }
    /* and every key appears in it, in the form users write */
    for (size_t s = 0; s < daecl__cfg_n_sections; s++) {
        const daecl__cfg_section *sec = &daecl__cfg_sections[s];
        char key[128];
        for (size_t k = 0; k < sec->n_keys; k++) {
            snprintf(key, sizeof key, "`%s%s%s`", sec->name, sec->name[0] ? "." : "",
                     sec->keys[k].spec.name);
            if (!strstr(doc, key))
                fail_msg("docs/config.md does not mention %s", key);
        }
    }
    free(ref);
    free(doc);
}

static void test_exclusive_bounds_read_as_intervals(void **state)
{
    (void)state;
    char buf[96];
    daecl_param_spec s = {"x", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, 1.0 - 0x1p-53, NULL, "x"};
    assert_string_equal(daecl__fmt_range(&s, buf, sizeof buf), "in [0, 1)");
    s.min = 0x1p-1074;
    s.max = 1;
    assert_string_equal(daecl__fmt_range(&s, buf, sizeof buf), "in (0, 1]");
    s.max = INFINITY;
    assert_string_equal(daecl__fmt_range(&s, buf, sizeof buf), "greater than 0");
    s.min = -INFINITY;
    s.max = 0.3;
    assert_string_equal(daecl__fmt_range(&s, buf, sizeof buf), "at most 0.3");
    s.max = INFINITY;
    assert_string_equal(daecl__fmt_range(&s, buf, sizeof buf), "");
    assert_string_equal(daecl__fmt_double(0.1, buf, sizeof buf), "0.1");
    assert_string_equal(daecl__fmt_double(1e-8, buf, sizeof buf), "1e-08");
    assert_string_equal(daecl__fmt_double(0.30000000000000004, buf, sizeof buf),
                        "0.30000000000000004");
    assert_string_equal(daecl__fmt_double(-INFINITY, buf, sizeof buf), "-.inf");
}

/* A plugin's values outside a config: the defaults from the one resolver,
 * then name=value pairs parsed as the config would, each error one
 * sentence. */
static void test_plugin_values_resolve_defaults_then_assignments(void **state)
{
    (void)state;
    const daecl_plugin *cpu = test_plugin(DAECL_KIND_BACKEND, "cpu");
    daecl_param_value v[DAECL_MAX_PARAMS];
    daecl_err err = {0};
    assert_int_equal(daecl_plugin_values(cpu, "backend", NULL, v, &err), 0);
    assert_true(v[0].num[0] == cpu->params[0].def[0]);
    char ok[] = "threads=3";
    assert_int_equal(daecl_plugin_values(cpu, "backend", ok, v, &err), 0);
    assert_true(v[0].num[0] == 3);
    static const struct {
        const char *assign, *words;
    } bad[] = {
        {"thread=3",
         "unknown parameter 'thread' for backend plugin 'cpu'; its parameters are threads"},
        {"threads", "'threads' is not a name=value pair; give the parameters of backend plugin "
                     "'cpu' as name=value pairs separated by commas, e.g. threads=..."},
        {"threads=many", "backend.threads"},
        {"threads=2000", "backend.threads"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "%s", bad[i].assign);
        memset(&err, 0, sizeof err);
        assert_int_not_equal(daecl_plugin_values(cpu, "backend", text, v, &err), 0);
        if (!strstr(err.msg, bad[i].words))
            fail_msg("%s: wanted '%s' in: %s", bad[i].assign, bad[i].words, err.msg);
    }
    /* an ENUM default resolves to its choice's index, as in a config */
    static const daecl_param_spec mode = {.name = "mode", .type = DAECL_PARAM_ENUM,
                                          .def_str = "b", .choices = "a|b|c", .doc = "mode"};
    const daecl_plugin with_enum = {.name = "e", .params = &mode, .n_params = 1};
    daecl_plugin_defaults(&with_enum, v);
    assert_true(v[0].num[0] == 1);
    assert_string_equal(v[0].str, "b");
    char pick[] = "mode=c";
    assert_int_equal(daecl_plugin_values(&with_enum, "corruption", pick, v, &err), 0);
    assert_true(v[0].num[0] == 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_config_gets_every_default),
        cmocka_unit_test(test_every_key_is_read_into_its_field),
        cmocka_unit_test(test_plugin_section_given_as_a_string_is_its_plugin),
        cmocka_unit_test(test_anchors_and_aliases_are_expanded),
        cmocka_unit_test(test_numbers_accept_yaml_spellings),
        cmocka_unit_test(test_unknown_top_level_key_suggests_the_nearest),
        cmocka_unit_test(test_unknown_key_in_a_section_suggests_the_nearest),
        cmocka_unit_test(test_unknown_key_far_from_all_lists_the_valid_keys),
        cmocka_unit_test(test_unknown_key_in_an_encoder_layer),
        cmocka_unit_test(test_unknown_plugin_parameter),
        cmocka_unit_test(test_wrong_type_says_what_was_expected_and_found),
        cmocka_unit_test(test_data_shape_is_a_list_of_one_to_four_whole_numbers),
        cmocka_unit_test(test_out_of_range_says_the_range),
        cmocka_unit_test(test_enum_bool_string_and_pair_errors),
        cmocka_unit_test(test_unknown_plugin_suggests_the_nearest),
        cmocka_unit_test(test_missing_data_train_points_at_the_enclosing_mapping),
        cmocka_unit_test(test_nesterov_needs_momentum),
        cmocka_unit_test(test_lr_min_needs_a_cosine_schedule),
        cmocka_unit_test(test_tied_weights_need_one_parameter_per_dimension_and_a_mirror),
        cmocka_unit_test(test_layer_lists_are_checked),
        cmocka_unit_test(test_plugin_check_hook_message_is_kept_at_the_section),
        cmocka_unit_test(test_duplicate_key_is_refused),
        cmocka_unit_test(test_malformed_yaml_gives_libyamls_problem_and_position),
        cmocka_unit_test(test_structural_refusals),
        cmocka_unit_test(test_empty_config_says_it_needs_data_train),
        cmocka_unit_test(test_alias_bomb_is_refused_before_it_expands),
        cmocka_unit_test(test_nesting_deeper_than_32_is_refused),
        cmocka_unit_test(test_oversize_file_is_refused_with_its_size),
        cmocka_unit_test(test_missing_file_is_a_config_error),
        cmocka_unit_test(test_overrides_are_applied_in_order),
        cmocka_unit_test(test_override_that_changes_the_plugin_drops_its_old_keys),
        cmocka_unit_test(test_override_errors_name_the_override),
        cmocka_unit_test(test_override_check_hook_failure_names_the_override),
        cmocka_unit_test(test_malformed_overrides_are_refused),
        cmocka_unit_test(test_data_paths_resolve_against_the_config_folder),
        cmocka_unit_test(test_parallel_defaults_to_the_backend_sections_one_device),
        cmocka_unit_test(test_parallel_devices_are_backend_sections_with_a_share),
        cmocka_unit_test(test_parallel_refuses_the_same_device_twice),
        cmocka_unit_test(test_parallel_refusals_point_at_the_item),
        cmocka_unit_test(test_parallel_overrides_set_keys_and_index_devices),
        cmocka_unit_test(test_to_yaml_round_trips_to_the_same_config),
        cmocka_unit_test(test_to_yaml_writes_parallel_devices_as_block_items),
        cmocka_unit_test(test_backend_auto_is_resolved_and_written_back_resolved),
        cmocka_unit_test(test_backend_auto_honours_daecl_device),
        cmocka_unit_test(test_backend_auto_refusals_point_at_the_key),
        cmocka_unit_test(test_to_yaml_writes_every_key_in_block_style),
        cmocka_unit_test(test_core_defaults_are_valid_values_of_their_keys),
        cmocka_unit_test(test_docs_key_reference_matches_the_schema),
        cmocka_unit_test(test_exclusive_bounds_read_as_intervals),
        cmocka_unit_test(test_plugin_values_resolve_defaults_then_assignments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
