/* daecl tests — what the config module writes and documents
 * (core/config_yaml.c, core/config_schema.c): the resolved YAML read back
 * to the same config, block style with every key, parallel devices as
 * block items; backend.plugin: auto resolved as the config loads and
 * written back resolved; the core schema's defaults, bounds and plugin
 * values, and docs/config.md's key reference against the schema. The
 * in-memory plugins are tests/config_fixture.c's. */
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
#include "tests/config_fixture.h"
#include "tests/support.h"

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
    daecl_config *a = cfgt_load(yaml), *b = NULL;
    char *text = daecl_config_to_yaml(a);
    assert_non_null(text);
    assert_true(strncmp(text, "# ", 2) == 0);
    daecl_err err = {0};
    if (daecl_config_load_string(text, strlen(text), "resolved.yaml", NULL, 0, cfgt_reg, &b, &err))
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
    round_trip(
        "name: r.1\nseed: 123456789012345\n"
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
    daecl_config *cfg = cfgt_load(MINIMAL "corruption: {label: 'a: b'}\n");
    char *text = daecl_config_to_yaml(cfg);
    assert_non_null(text);
    char want_train[2 * PATH_MAX + 32];
    snprintf(want_train, sizeof want_train, "\n  train: %s\n", cfgt_in_cwd("train.idx"));
    const char *lines[] = {
        "\nname: run\n",
        "\nseed: 0\n",
        want_train,
        "\n  test: \"\"\n",
        "\n  resident_max_mb: 0\n",
        "\nmodel:\n  encoder:\n    - units: 1000\n      activation: sigmoid\n  decoder: mirror\n"
        "  tied_weights: false\n",
        "\ncorruption:\n  plugin: masking\n  p: 0.25\n  clip: [0, 1]\n  mode: zero\n"
        "  label: \"a: b\"\n  count: 3\n  keep: false\n",
        "\nlikelihood:\n  plugin: bernoulli\n",
        "\noptimizer:\n  name: sgd\n  lr: 0.1\n",
        "  eps: 1e-08\n",
        "\ntrain:\n  epochs: 10\n",
        "\nbackend:\n  plugin: cpu\n  threads: 0\n",
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
    daecl_config *cfg =
        cfgt_load(MINIMAL "parallel:\n  devices: [{plugin: cpu, threads: 2, share: 3},"
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
    cfgt_fake_listing("gpu");
    daecl_config *cfg = cfgt_load(MINIMAL "backend: auto\n");
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
    cfgt_fake_listing("cpu");
    cfg = cfgt_load(text);
    assert_string_equal(cfg->backend.name, "opencl");
    assert_string_equal(cfg->backend_auto, "");
    free(text);
    daecl_config_destroy(cfg);

    /* only a CPU device: the cpu backend, with its defaults */
    cfg = cfgt_load(MINIMAL "backend: {plugin: auto}\n");
    assert_string_equal(cfg->backend.name, "cpu");
    assert_true(daecl_plugin_cfg_value(&cfg->backend, "threads")->num[0] == 0);
    if (!strstr(cfg->backend_auto, "no OpenCL GPU or accelerator (only Portable Computing "
                                   "Language's CPU device"))
        fail_msg("reason: %s", cfg->backend_auto);
    daecl_config_destroy(cfg);
    /* an override names auto, or another backend over it */
    const char *to_auto[] = {"backend.plugin=auto"}, *to_cpu[] = {"backend.plugin=cpu"};
    cfg = cfgt_load_ov(MINIMAL "backend: {plugin: opencl, type: gpu}\n", to_auto, 1);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_string_not_equal(cfg->backend_auto, "");
    daecl_config_destroy(cfg);
    cfgt_fake_listing("gpu");
    cfg = cfgt_load_ov(MINIMAL "backend: auto\n", to_cpu, 1);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_string_equal(cfg->backend_auto, "");
    daecl_config_destroy(cfg);
    /* the schema's default stays cpu: a config that names no backend asks nothing */
    cfg = cfgt_load(MINIMAL);
    assert_string_equal(cfg->backend.name, "cpu");
    assert_string_equal(cfg->backend_auto, "");
    daecl_config_destroy(cfg);
}

/* DAECL_DEVICE names an OpenCL device: auto honours it whatever is listed. */
static void test_backend_auto_honours_daecl_device(void **state)
{
    (void)state;
    cfgt_fake_listing("cpu");
    setenv("DAECL_DEVICE", "type=cpu", 1);
    daecl_config *cfg = cfgt_load(MINIMAL "backend: auto\n");
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
    cfgt_fake_listing("cpu");
    cfgt_expect_err(MINIMAL "backend:\n  plugin: auto\n  threads: 2\n", 4, 3,
                    "backend plugin 'auto' takes no parameters, so 'threads'",
                    "(backend.plugin=cpu or backend.plugin=opencl)");
    cfgt_expect_err(MINIMAL "parallel: {devices: [{plugin: cpu}, {plugin: auto}]}\n", 2, 46,
                    "parallel.devices.1.plugin cannot be auto", "names its backend");
    const char *ov[] = {"backend.type=gpu"};
    cfgt_expect_err_ov(MINIMAL "backend: auto\n", ov, 1, "", 0, 0, "override 'backend.type=gpu'",
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
    return cmocka_run_group_tests(tests, cfgt_setup, cfgt_teardown);
}
