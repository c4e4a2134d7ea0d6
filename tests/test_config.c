/* daecl tests — experiment configs (core/config.c): YAML and overrides,
 * validation against the core schema and against small in-memory plugins
 * (tests/config_fixture.c; not the real ones, which are tested on their
 * own), error positions and sentences, defaults, path resolution and
 * parallel devices. test_config_yaml.c tests what is written back. */
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

/* ---- defaults and shapes ------------------------------------------------------- */

static void test_minimal_config_gets_every_default(void **state)
{
    (void)state;
    daecl_config *cfg = cfgt_load(MINIMAL);
    assert_string_equal(cfg->source, "test.yaml");
    assert_string_equal(cfg->name, "run");
    assert_true(cfg->seed == 0);
    assert_string_equal(cfg->data.train, cfgt_in_cwd("train.idx"));
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
                     daecl_registry_find(cfgt_reg, DAECL_KIND_CORRUPTION, "masking", NULL));
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
    daecl_config *cfg =
        cfgt_load("name: exp-1.b_2\n"
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
    assert_string_equal(cfg->data.test, cfgt_in_cwd("test.npy"));
    assert_string_equal(cfg->data.train_labels, cfgt_in_cwd("tl.idx"));
    assert_string_equal(cfg->data.test_labels, cfgt_in_cwd("sl.idx"));
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
    daecl_config *cfg = cfgt_load(MINIMAL "corruption: none\nlikelihood: gaussian_learned\n"
                                          "backend:\n");
    assert_string_equal(cfg->corruption.name, "none");
    assert_int_equal(cfg->corruption.n_values, 0);
    assert_string_equal(cfg->likelihood.name, "gaussian_learned");
    assert_string_equal(cfg->backend.name, "cpu"); /* empty section: the default plugin */
    daecl_config_destroy(cfg);
    /* a section without `plugin` is the default plugin's */
    cfg = cfgt_load(MINIMAL "corruption: {p: 0.75}\n");
    assert_string_equal(cfg->corruption.name, "masking");
    assert_true(cfg->corruption.values[0].num[0] == 0.75);
    daecl_config_destroy(cfg);
}

static void test_anchors_and_aliases_are_expanded(void **state)
{
    (void)state;
    daecl_config *cfg =
        cfgt_load(MINIMAL "model:\n"
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
    daecl_config *cfg = cfgt_load(MINIMAL "corruption: {plugin: gaussian, std: .inf}\n"
                                          "optimizer: {lr: +2.5E-1, weight_decay: 3}\n"
                                          "train: {epochs: +7}\n"
                                          "model: {tied_weights: True}\n");
    assert_true(isinf(cfg->corruption.values[0].num[0]));
    assert_true(cfg->optimizer.lr == 0.25 && cfg->optimizer.weight_decay == 3);
    assert_int_equal(cfg->train.epochs, 7);
    assert_int_equal(cfg->model.tied_weights, 1);
    daecl_config_destroy(cfg);
    /* a STRING takes any scalar, quoted or not */
    cfg = cfgt_load(MINIMAL "corruption: {label: 3.5}\nname: '42'\n");
    assert_string_equal(cfg->corruption.values[3].str, "3.5");
    assert_string_equal(cfg->name, "42");
    daecl_config_destroy(cfg);
}

/* ---- error classes --------------------------------------------------------------- */

static void test_unknown_top_level_key_suggests_the_nearest(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "trian:\n  epochs: 3\n", 2, 1,
                    "unknown top-level key 'trian'; did you mean 'train'?", NULL);
}

static void test_unknown_key_in_a_section_suggests_the_nearest(void **state)
{
    (void)state;
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    const char *yaml = MINIMAL "train:\n  epoch: 3\n";
    assert_int_equal(daecl_config_load_string(yaml, strlen(yaml), "test.yaml", NULL, 0, cfgt_reg,
                                              &cfg, &err),
                     DAECL_ECONFIG);
    assert_string_equal(err.msg, "unknown key 'epoch' in 'train'; did you mean 'epochs'?");
    char buf[2048];
    assert_string_equal(daecl_err_format(&err, buf, sizeof buf),
                        "test.yaml:3:3: unknown key 'epoch' in 'train'; did you mean 'epochs'?");
}

static void test_unknown_key_far_from_all_lists_the_valid_keys(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "train:\n  zzzzzz: 1\n", 3, 3, "unknown key 'zzzzzz' in 'train'",
                    "the valid keys are epochs, batch_size, log_every, max_steps");
}

static void test_unknown_key_in_an_encoder_layer(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "model:\n  encoder:\n    - units: 10\n      activaton: relu\n", 5, 7,
                    "unknown key 'activaton' in 'model.encoder.0'; did you mean 'activation'?",
                    NULL);
}

static void test_unknown_plugin_parameter(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "corruption:\n  plugin: masking\n  cuont: 2\n", 4, 3,
                    "unknown parameter 'cuont' for corruption plugin 'masking'; did you mean "
                    "'count'?",
                    NULL);
    cfgt_expect_err(MINIMAL "corruption: {plugin: masking, zzzzzzzz: 2}\n", 2, 31,
                    "its parameters are p, clip, mode, label, count, keep",
                    "daecl plugins masking");
    cfgt_expect_err(MINIMAL "corruption: {plugin: none, p: 2}\n", 2, 28,
                    "corruption plugin 'none' takes no parameters", NULL);
}

static void test_wrong_type_says_what_was_expected_and_found(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "train:\n  epochs: 3.5\n", 3, 11,
                    "train.epochs must be a whole number, not '3.5'", NULL);
    cfgt_expect_err(
        MINIMAL "train:\n  epochs: \"3\"\n", 3, 11,
        "train.epochs must be a whole number, not the quoted string '3'; remove the quotes", NULL);
    cfgt_expect_err(MINIMAL "optimizer: {lr: fast}\n", 2, 17,
                    "optimizer.lr must be a number, not 'fast'", NULL);
    cfgt_expect_err(MINIMAL "optimizer: {lr: 0x10}\n", 2, 17, "must be a number, not '0x10'", NULL);
    cfgt_expect_err(MINIMAL "optimizer: {lr: [1]}\n", 2, 17, "must be a number, not a list", NULL);
}

/* data.shape: [] by default (the data file's), or 1 to 4 whole numbers,
 * written back as a flow list; errors at the offending node. */
static void test_data_shape_is_a_list_of_one_to_four_whole_numbers(void **state)
{
    (void)state;
    daecl_config *c = cfgt_load(MINIMAL);
    assert_int_equal(c->data.shape_rank, 0);
    daecl_config_destroy(c);
    c = cfgt_load("data:\n  train: train.idx\n  shape: [28, 28]\n");
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
    c = cfgt_load_ov(MINIMAL, ov, 1);
    assert_int_equal(c->data.shape_rank, 3);
    assert_int_equal(c->data.shape[2], 16);
    assert_int_equal(c->data.shape_line, 0);
    daecl_config_destroy(c);
    c = cfgt_load("data: {train: train.idx, shape: []}\n");
    assert_int_equal(c->data.shape_rank, 0);
    daecl_config_destroy(c);
    cfgt_expect_err("data:\n  train: train.idx\n  shape: [28, 0]\n", 3, 15, "data.shape.1", NULL);
    cfgt_expect_err("data:\n  train: train.idx\n  shape: [28, 2.5]\n", 3, 15, "data.shape.1",
                    "whole number");
    cfgt_expect_err("data:\n  train: train.idx\n  shape: 784\n", 3, 10,
                    "data.shape must be a list of 1 to 4 whole numbers such as [28, 28]", NULL);
    cfgt_expect_err("data:\n  train: train.idx\n  shape: [1, 2, 3, 4, 5]\n", 3, 10,
                    "not a list of more than 4", NULL);
    cfgt_expect_override_err(MINIMAL, "data.shape=[28, -1]", "data.shape.1", NULL);
}

static void test_out_of_range_says_the_range(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "optimizer:\n  momentum: 1.5\n", 3, 13,
                    "optimizer.momentum must be in [0, 1), not 1.5", NULL);
    cfgt_expect_err(MINIMAL "optimizer: {lr: 0}\n", 2, 17,
                    "optimizer.lr must be in (0, 1000000], not 0", NULL);
    cfgt_expect_err(MINIMAL "optimizer: {lr: .nan}\n", 2, 17,
                    "optimizer.lr must be in (0, 1000000], "
                    "not .nan",
                    NULL);
    cfgt_expect_err(MINIMAL "train: {batch_size: 0}\n", 2, 21,
                    "train.batch_size must be in [1, 65536], not 0", NULL);
    cfgt_expect_err(MINIMAL "corruption: {plugin: gaussian, std: -1}\n", 2, 37,
                    "corruption.std must be at least 0, not -1", NULL);
    cfgt_expect_err(MINIMAL "corruption: {plugin: gaussian, std: 1e999}\n", 2, 37,
                    "corruption.std is too large for a double ('1e999')", "write .inf");
    /* beyond what the field can hold */
    cfgt_expect_err(MINIMAL "seed: 99999999999999999999\n", 2, 7,
                    "seed must be in [0, 9007199254740991], not '99999999999999999999'", NULL);
    cfgt_expect_err(MINIMAL "train: {epochs: 4294967297}\n", 2, 17,
                    "train.epochs must be in [1, 1000000], not 4294967297", NULL);
}

static void test_enum_bool_string_and_pair_errors(void **state)
{
    (void)state;
    cfgt_expect_err(
        MINIMAL "optimizer: {name: adm}\n", 2, 19,
        "optimizer.name must be one of sgd, adam, adamw, not 'adm'; did you mean 'adam'?", NULL);
    cfgt_expect_err(MINIMAL "model:\n  tied_weights: yes\n", 3, 17,
                    "model.tied_weights must be true or false, not 'yes'",
                    "yes, no, on and off are not accepted");
    cfgt_expect_err(MINIMAL "model: {tied_weights: 1}\n", 2, 23,
                    "model.tied_weights must be true or false, not '1'", NULL);
    cfgt_expect_err(MINIMAL "output: {dir: {a: 1}}\n", 2, 15,
                    "output.dir must be a string, not a mapping", NULL);
    cfgt_expect_err(MINIMAL "corruption: {clip: 0.5}\n", 2, 20,
                    "corruption.clip must be a pair [lo, hi] of numbers, not '0.5'", NULL);
    cfgt_expect_err(MINIMAL "corruption: {clip: [0, 1, 2]}\n", 2, 20, "not a list of 3", NULL);
    cfgt_expect_err(MINIMAL "corruption: {clip: [1, 0]}\n", 2, 20,
                    "corruption.clip needs lo <= hi, not [1, 0]", NULL);
    cfgt_expect_err(MINIMAL "corruption: {clip: [0, 20]}\n", 2, 24,
                    "corruption.clip must have both ends in [-10, 10], not 20", NULL);
    cfgt_expect_err(MINIMAL "corruption: {clip: [0, x]}\n", 2, 24,
                    "corruption.clip must be a number, not 'x'", NULL);
    cfgt_expect_err(MINIMAL "name: a/b\n", 2, 7, "name must be 1 to 100 of the characters",
                    "not 'a/b'");
    cfgt_expect_err(MINIMAL "name: ..\n", 2, 7, "not '.' or '..'", NULL);
}

static void test_unknown_plugin_suggests_the_nearest(void **state)
{
    (void)state;
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    const char *yaml = MINIMAL "corruption:\n  plugin: maskin\n";
    assert_int_equal(daecl_config_load_string(yaml, strlen(yaml), "test.yaml", NULL, 0, cfgt_reg,
                                              &cfg, &err),
                     DAECL_ECONFIG);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 11);
    assert_string_equal(err.msg, "unknown corruption plugin 'maskin'; did you mean 'masking'? "
                                 "(`daecl plugins` lists the plugins found)");
    cfgt_expect_err(MINIMAL "likelihood: poisson\n", 2, 13, "unknown likelihood plugin 'poisson'",
                    "the likelihood plugins found are bernoulli, gaussian_learned");
}

static void test_missing_data_train_points_at_the_enclosing_mapping(void **state)
{
    (void)state;
    cfgt_expect_err("data:\n  test: t.idx\n", 2, 3, "missing required key 'train' in 'data'", NULL);
    cfgt_expect_err("seed: 1\ntrain: {epochs: 3}\n", 1, 1, "missing required key 'data.train'",
                    NULL);
    cfgt_expect_err("seed: 1\ndata:\n", 2, 1, "missing required key 'data.train'", NULL);
    cfgt_expect_err(MINIMAL "model:\n  encoder: [{activation: relu}]\n", 3, 13,
                    "missing required key 'units' in 'model.encoder.0'", NULL);
}

static void test_lr_min_needs_a_cosine_schedule(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "optimizer:\n  lr_min: 0.001\n", 3, 11,
                    "optimizer.lr_min is where the cosine schedule ends", "schedule: cosine");
    daecl_config *cfg = cfgt_load(MINIMAL "optimizer: {schedule: cosine, lr_min: 0.001}\n");
    assert_int_equal(cfg->optimizer.schedule, DAECL_SCHEDULE_COSINE);
    assert_true(cfg->optimizer.lr_min == 0.001);
    daecl_config_destroy(cfg);
    cfg = cfgt_load(MINIMAL);
    assert_int_equal(cfg->optimizer.schedule, DAECL_SCHEDULE_CONSTANT);
    daecl_config_destroy(cfg);
    cfgt_expect_err(MINIMAL "optimizer: {schedule: linear}\n", 2, 23, "linear", "constant, cosine");
}

static void test_nesterov_needs_momentum(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "optimizer:\n  momentum: 0\n  nesterov: true\n", 4, 13,
                    "optimizer.nesterov needs optimizer.momentum > 0", NULL);
    daecl_config *cfg = cfgt_load(MINIMAL "optimizer: {momentum: 0.9, nesterov: true}\n");
    assert_int_equal(cfg->optimizer.nesterov, 1);
    daecl_config_destroy(cfg);
}

static void test_tied_weights_need_one_parameter_per_dimension_and_a_mirror(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "likelihood: gaussian_learned\nmodel:\n  tied_weights: true\n", 4, 17,
                    "model.tied_weights needs a likelihood with 1 parameter per dimension",
                    "likelihood plugin 'gaussian_learned' has 2");
    cfgt_expect_err(MINIMAL "model:\n  encoder: [{units: 100}, {units: 50}]\n"
                            "  decoder: [{units: 90}]\n  tied_weights: true\n",
                    5, 17, "model.decoder.0 to have 100 units like model.encoder.0, not 90", NULL);
    cfgt_expect_err(MINIMAL "model:\n  encoder: [{units: 100}, {units: 50}]\n"
                            "  decoder: []\n  tied_weights: true\n",
                    5, 17, "needs 1 decoder layer mirroring the encoder, not 0", NULL);
    daecl_config *cfg = cfgt_load(MINIMAL "model:\n  encoder: [{units: 100}, {units: 50}]\n"
                                          "  decoder: [{units: 100}]\n  tied_weights: true\n");
    assert_int_equal(cfg->model.tied_weights, 1);
    daecl_config_destroy(cfg);
}

static void test_layer_lists_are_checked(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "model: {encoder: []}\n", 2, 18,
                    "model.encoder needs 1 to 16 layers, not 0", NULL);
    cfgt_expect_err(MINIMAL "model: {decoder: mirorr}\n", 2, 18,
                    "model.decoder must be mirror or a list of layers", "not 'mirorr'");
    cfgt_expect_err(MINIMAL "model: {encoder: [500]}\n", 2, 19,
                    "model.encoder.0 must be a mapping such as {units: 500, activation: sigmoid}",
                    NULL);
    cfgt_expect_err(MINIMAL "model: {encoder: [{units: 0}]}\n", 2, 27,
                    "model.encoder.0.units must be in [1, 1000000], not 0", NULL);
    char yaml[2048] = MINIMAL "model:\n  encoder:\n";
    for (int i = 0; i < 17; i++)
        strcat(yaml, "    - {units: 8}\n");
    cfgt_expect_err(yaml, 4, 5, "model.encoder needs 1 to 16 layers, not 17", NULL);
}

static void test_plugin_check_hook_message_is_kept_at_the_section(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "corruption:\n  p: 1\n  keep: true\n", 2, 1,
                    "masking's keep needs p below 1", NULL);
}

static void test_duplicate_key_is_refused(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "train:\n  epochs: 3\n  epochs: 4\n", 4, 3,
                    "duplicate key 'epochs' (it is also at line 3, column 3)", NULL);
    /* a big mapping takes the sorting path */
    char yaml[4096] = MINIMAL "corruption:\n";
    for (int i = 0; i < 40; i++)
        snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml), "  k%d: 1\n", i);
    strcat(yaml, "  k7: 2\n");
    cfgt_expect_err(yaml, 43, 3, "duplicate key 'k7' (it is also at line 10, column 3)", NULL);
}

static void test_malformed_yaml_gives_libyamls_problem_and_position(void **state)
{
    (void)state;
    cfgt_expect_err(
        MINIMAL "train: {epochs: 3\nseed: 1\n", 3, 5,
        "malformed YAML: did not find expected ',' or '}' (while parsing a flow mapping "
        "that starts at line 2, column 8)",
        NULL);
    cfgt_expect_err(MINIMAL "train:\n  epochs: 3\n bad: 1\n", 4, 2, "malformed YAML", NULL);
    cfgt_expect_err("data: \"\xff\"\n", 1, 8, "malformed YAML", "UTF-8");
}

static void test_structural_refusals(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "---\nseed: 1\n", 2, 1, "a second YAML document starts here", NULL);
    cfgt_expect_err(MINIMAL "seed: !!int 3\n", 2, 7, "YAML tags", "tag:yaml.org,2002:int");
    cfgt_expect_err(MINIMAL "? [a]\n: 1\n", 2, 3, "a key must be a plain name, not a list", NULL);
    cfgt_expect_err("- a\n- b\n", 1, 1, "the top level of a config must be a mapping",
                    "not a list");
    cfgt_expect_err(MINIMAL "model: {encoder: [*nothing]}\n", 2, 19,
                    "the alias '*nothing' has no anchor", NULL);
    cfgt_expect_err(MINIMAL "seed: \"1\\0\"\n", 2, 7, "NUL character", NULL);
}

static void test_empty_config_says_it_needs_data_train(void **state)
{
    (void)state;
    cfgt_expect_err("", 0, 0, "the config is empty; a config needs at least data.train", NULL);
    cfgt_expect_err("# only a comment\n\n", 0, 0, "the config is empty", NULL);
    cfgt_expect_err("---\n", 0, 0, "the config is empty", NULL);
    /* an empty file with data.train given on the command line is fine */
    const char *ov[] = {"data.train=x.idx"};
    daecl_config *cfg = cfgt_load_ov("", ov, 1);
    assert_string_equal(cfg->data.train, cfgt_in_cwd("x.idx"));
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
    cfgt_expect_err(yaml, 5, 36, "more than 100000 nodes once this alias is expanded", NULL);
}

static void test_nesting_deeper_than_32_is_refused(void **state)
{
    (void)state;
    char yaml[256];
    /* 1 (top level) + 31 = 32 levels: allowed by the parser, judged by the schema */
    snprintf(yaml, sizeof yaml, "x: %.*s%.*s\n", 31, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             31, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    cfgt_expect_err(yaml, 1, 1, "unknown top-level key 'x'", NULL);
    snprintf(yaml, sizeof yaml, "x: %.*s%.*s\n", 32, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
             32, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    cfgt_expect_err(yaml, 1, 35, "nests deeper than 32 levels", NULL);
    /* and through an alias */
    snprintf(yaml, sizeof yaml, "a: &a %.*s%.*s\nb: [[*a]]\n", 30,
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 30,
             "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    cfgt_expect_err(yaml, 2, 6, "makes the document nest deeper than 32 levels", NULL);
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
    assert_int_equal(daecl_config_load(path, NULL, 0, cfgt_reg, &cfg, &err), DAECL_ECONFIG);
    assert_null(cfg);
    assert_string_equal(err.file, path);
    assert_non_null(strstr(err.msg, "(1048577 bytes), over the limit of 1 MiB"));
    /* the same through load_string */
    char small[8] = "seed: 1";
    assert_int_equal(daecl_config_load_string(small, n, "big", NULL, 0, cfgt_reg, &cfg, &err),
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
    assert_int_equal(daecl_config_load("/nonexistent/daecl.yaml", NULL, 0, cfgt_reg, &cfg, &err),
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
    daecl_config *cfg = cfgt_load_ov("data:\n  train: a.idx\n  test: b.idx\n"
                                     "model:\n  encoder: [{units: 100, activation: tanh}]\n",
                                     ov, sizeof ov / sizeof ov[0]);
    assert_int_equal(cfg->train.epochs, 5);
    assert_true(cfg->corruption.values[0].num[0] == 0.5);
    assert_true(cfg->corruption.values[1].num[0] == 0.25 &&
                cfg->corruption.values[1].num[1] == 0.75);
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
    cfg = cfgt_load_ov(MINIMAL "model: {encoder: [{units: 1}, {units: 2}]}\n", ov2, 2);
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
    daecl_config *cfg = cfgt_load_ov(file, ov, 2);
    assert_string_equal(cfg->corruption.name, "gaussian");
    assert_int_equal(cfg->corruption.n_values, 1);
    assert_true(cfg->corruption.values[0].num[0] == 0.3);
    daecl_config_destroy(cfg);
    /* naming the same plugin keeps the file's parameters */
    const char *same[] = {"corruption.plugin=masking"};
    cfg = cfgt_load_ov(file, same, 1);
    assert_true(cfg->corruption.values[0].num[0] == 0.4);
    assert_true(cfg->corruption.values[4].num[0] == 5);
    daecl_config_destroy(cfg);
    /* from the shorthand, and to the shorthand */
    const char *ov3[] = {"corruption=none"};
    cfg = cfgt_load_ov(file, ov3, 1);
    assert_string_equal(cfg->corruption.name, "none");
    daecl_config_destroy(cfg);
    const char *ov4[] = {"corruption.plugin=gaussian", "corruption.std=2"};
    cfg = cfgt_load_ov(MINIMAL "corruption: none\n", ov4, 2);
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
    assert_int_equal(daecl_config_load_string(MINIMAL, strlen(MINIMAL), "test.yaml", ov, 1,
                                              cfgt_reg, &cfg, &err),
                     DAECL_ECONFIG);
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
    assert_string_equal(err.msg, "override 'train.epoch=3': unknown key 'epoch' in 'train'; did "
                                 "you mean 'epochs'?");

    const char *y = MINIMAL;
    cfgt_expect_override_err(y, "trian.epochs=3", "unknown top-level key 'trian'", NULL);
    cfgt_expect_override_err(y, "model.encoder.0.activaton=relu",
                             "unknown key 'activaton' in "
                             "'model.encoder.0'",
                             NULL);
    cfgt_expect_override_err(y, "train.epochs=abc",
                             "train.epochs must be a whole number, not 'abc'", NULL);
    cfgt_expect_override_err(y, "optimizer.momentum=1.5", "must be in [0, 1), not 1.5", NULL);
    cfgt_expect_override_err(y, "corruption.plugin=maskin", "did you mean 'masking'?", NULL);
    cfgt_expect_override_err(y, "corruption.cuont=2", "unknown parameter 'cuont'", "'count'");
    cfgt_expect_override_err(y, "data={test: t.idx}", "missing required key 'train' in 'data'",
                             NULL);
    cfgt_expect_override_err(y, "optimizer.nesterov=true", "needs optimizer.momentum > 0", NULL);
    cfgt_expect_override_err(MINIMAL "likelihood: gaussian_learned\n", "model.tied_weights=true",
                             "has 2", NULL);
    cfgt_expect_override_err(y, "model.tied_weights=yes", "must be true or false, not 'yes'", NULL);
    cfgt_expect_override_err(y, "corruption={p: 0.1, p: 0.2}", "duplicate key 'p'", NULL);
    cfgt_expect_override_err(y, "train.epochs=[1", "its value is not valid YAML", "column");
    cfgt_expect_override_err(
        y, "seed=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        "nests deeper than 32 levels", NULL);
    /* a section the file has keeps blaming the file for what the file lacks */
    const char *ov2[] = {"data.test=t.idx"};
    cfgt_expect_err_ov("data:\n  test_limit: 3\n", ov2, 1, "test.yaml", 2, 3,
                       "missing required key 'train' in 'data'", NULL);
}

static void test_override_check_hook_failure_names_the_override(void **state)
{
    (void)state;
    const char *ov[] = {"corruption.keep=true"};
    cfgt_expect_err_ov(MINIMAL "corruption: {p: 1}\n", ov, 1, "", 0, 0,
                       "override 'corruption.keep=true': masking's keep needs p below 1", NULL);
}

static void test_malformed_overrides_are_refused(void **state)
{
    (void)state;
    cfgt_expect_override_err(MINIMAL, "train.epochs", "it has no '='", "KEY=VALUE");
    cfgt_expect_override_err(MINIMAL, "=3", "the key before '=' is empty", NULL);
    cfgt_expect_override_err(MINIMAL, "train..epochs=3", "its key has an empty part", NULL);
    cfgt_expect_override_err(MINIMAL "train: {epochs: 3}\n", "train.epochs.x=1",
                             "'train.epochs' is a single value, not a section", NULL);
    cfgt_expect_override_err(MINIMAL "model: {encoder: [{units: 4}]}\n", "model.encoder.5.units=3",
                             "'model.encoder' has 1 item, so the item number can be at most 1",
                             NULL);
    cfgt_expect_override_err(MINIMAL "model: {encoder: [{units: 4}]}\n", "model.encoder.x=3",
                             "'model.encoder' is a list, so 'x' must be "
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
    assert_int_equal(daecl_config_load(path, NULL, 0, cfgt_reg, &cfg, &err), 0);
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
    int rc = daecl_config_load("exp/c.yaml", NULL, 0, cfgt_reg, &cfg, &err);
    assert_int_equal(chdir(saved), 0);
    assert_int_equal(rc, 0);
    snprintf(want, sizeof want, "%s/imgs/train.idx", sub);
    assert_string_equal(cfg->data.train, want);
    assert_string_equal(cfg->source, "exp/c.yaml");
    daecl_config_destroy(cfg);

    /* an override's relative path resolves like the file's */
    const char *ov[] = {"data.test=other/t.idx"};
    assert_int_equal(daecl_config_load(path, ov, 1, cfgt_reg, &cfg, &err), 0);
    snprintf(want, sizeof want, "%s/other/t.idx", sub);
    assert_string_equal(cfg->data.test, want);
    daecl_config_destroy(cfg);

    /* errors in a file carry its path as given */
    const char *bad = MINIMAL "train: {epoch: 1}\n";
    test_write_file(path, bad, strlen(bad));
    assert_int_equal(daecl_config_load(path, NULL, 0, cfgt_reg, &cfg, &err), DAECL_ECONFIG);
    assert_string_equal(err.file, path);
    assert_int_equal(err.line, 2);
    assert_int_equal(err.col, 9);
    free(dir);
}

/* ---- parallel ------------------------------------------------------------------------ */

static void test_parallel_defaults_to_the_backend_sections_one_device(void **state)
{
    (void)state;
    daecl_config *cfg = cfgt_load(MINIMAL);
    assert_int_equal(cfg->parallel.n_devices, 0);
    assert_int_equal(cfg->parallel.measure_steps, 8);
    assert_int_equal(cfg->parallel.rebalance, 1);
    assert_int_equal(cfg->parallel.drop_slow, 1);
    assert_string_equal(cfg->parallel.comm, "auto");
    daecl_config_destroy(cfg);
    cfg = cfgt_load(MINIMAL "parallel:\n");
    assert_int_equal(cfg->parallel.n_devices, 0);
    assert_int_equal(cfg->parallel.measure_steps, 8);
    daecl_config_destroy(cfg);
    cfg = cfgt_load(MINIMAL "parallel: {devices: []}\n");
    assert_int_equal(cfg->parallel.n_devices, 0);
    daecl_config_destroy(cfg);
}

static void test_parallel_devices_are_backend_sections_with_a_share(void **state)
{
    (void)state;
    daecl_config *cfg =
        cfgt_load(MINIMAL "parallel:\n"
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
    cfg = cfgt_load(MINIMAL "parallel: {devices: [{threads: 3}, {plugin: opencl}], comm: none}\n");
    assert_string_equal(cfg->parallel.devices[0].name, "cpu");
    assert_string_equal(cfg->parallel.comm, "none");
    daecl_config_destroy(cfg);
}

static void test_parallel_refuses_the_same_device_twice(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL
                    "parallel:\n  devices:\n    - {plugin: cpu}\n    - {plugin: cpu, share: 2}\n",
                    5, 7,
                    "parallel.devices.1 names the same device as parallel.devices.0 (cpu); "
                    "list each device once",
                    NULL);
    /* the defaults written out are the same device */
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, threads: 2}\n"
                            "    - {plugin: cpu, threads: 0}\n    - {plugin: cpu}\n",
                    6, 7, "parallel.devices.2 names the same device as parallel.devices.1 (cpu)",
                    NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n"
                            "    - {plugin: opencl, platform: Portable, index: 1}\n"
                            "    - {plugin: opencl, index: 1}\n"
                            "    - {plugin: opencl, index: 1, platform: Portable, share: 5}\n",
                    6, 7,
                    "parallel.devices.2 names the same device as parallel.devices.0 (opencl, "
                    "platform Portable, index 1); list each device once",
                    NULL);
    /* different parameters: different devices */
    daecl_config *cfg = cfgt_load(MINIMAL "parallel: {devices: [{plugin: cpu, threads: 1}, "
                                          "{plugin: cpu, threads: 2}, {plugin: opencl}]}\n");
    assert_int_equal(cfg->parallel.n_devices, 3);
    daecl_config_destroy(cfg);
}

static void test_parallel_refusals_point_at_the_item(void **state)
{
    (void)state;
    cfgt_expect_err(MINIMAL "parallel: {devices: cpu}\n", 2, 21,
                    "parallel.devices must be a list of devices such as [{plugin: cpu}",
                    "not 'cpu'");
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - cpu\n", 4, 7,
                    "parallel.devices.0 must be a mapping such as {plugin: cpu}", "not 'cpu'");
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, share: -1}\n", 4, 28,
                    "parallel.devices.0.share must be in [0, 1000000000], not -1", NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, share: .nan}\n", 4, 28,
                    "parallel.devices.0.share must be in [0, 1000000000], not .nan", NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu}\n    - {plugin: opencl, "
                            "share: lots}\n",
                    5, 31, "parallel.devices.1.share must be a number, not 'lots'", NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, thread: 2}\n", 4, 21,
                    "unknown key 'thread' in 'parallel.devices.0'; did you mean 'threads'?", NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, shares: 2}\n", 4, 21,
                    "unknown key 'shares' in 'parallel.devices.0'; did you mean 'share'?", NULL);
    cfgt_expect_err(
        MINIMAL "parallel:\n  devices:\n    - {plugin: opencl, zzzzzz: 2}\n", 4, 24,
        "unknown key 'zzzzzz' in 'parallel.devices.0': it takes share and the parameters "
        "of backend plugin 'opencl'",
        "daecl plugins opencl");
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu}\n    - {plugin: opencll}\n",
                    5, 16, "unknown backend plugin 'opencll'; did you mean 'opencl'?", NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: cpu, threads: 5000}\n", 4, 30,
                    "parallel.devices.0.threads must be in [0, 1024], not 5000", NULL);
    cfgt_expect_err(MINIMAL "parallel:\n  devices:\n    - {plugin: [cpu]}\n", 4, 16,
                    "parallel.devices.0.plugin must be a plugin name such as cpu, not a list",
                    NULL);
    cfgt_expect_err(MINIMAL "parallel: {measure_steps: 0}\n", 2, 27,
                    "parallel.measure_steps must be in [1, 1000000], not 0", NULL);
    cfgt_expect_err(
        MINIMAL "parallel: {comm: MPI}\n", 2, 18,
        "parallel.comm must be auto, none or a plugin name of the characters a-z 0-9 _, "
        "not 'MPI'",
        NULL);
    cfgt_expect_err(MINIMAL "parallel: {comm: \"\"}\n", 2, 18, "parallel.comm must be auto", NULL);
    cfgt_expect_err(MINIMAL "parallel: {device: []}\n", 2, 12,
                    "unknown key 'device' in 'parallel'; did you mean 'devices'?", NULL);
    cfgt_expect_err(MINIMAL "parallel: []\n", 2, 11, "parallel must be a mapping of keys", NULL);

    /* 16 devices are fine, the 17th is refused where it is */
    char yaml[2048];
    size_t used = (size_t)snprintf(yaml, sizeof yaml, MINIMAL "parallel:\n  devices:\n");
    for (int i = 0; i < DAECL_MAX_REPLICAS; i++)
        used += (size_t)snprintf(yaml + used, sizeof yaml - used,
                                 "    - {plugin: cpu, threads: %d}\n", i + 1);
    daecl_config *cfg = cfgt_load(yaml);
    assert_int_equal(cfg->parallel.n_devices, DAECL_MAX_REPLICAS);
    assert_int_equal(cfg->parallel.line[15], 19);
    daecl_config_destroy(cfg);
    snprintf(yaml + used, sizeof yaml - used, "    - {plugin: cpu, threads: 99}\n");
    cfgt_expect_err(yaml, 20, 7,
                    "parallel.devices lists 17 devices, more than the 16 a run can train "
                    "on; list at most 16",
                    NULL);
}

static void test_parallel_overrides_set_keys_and_index_devices(void **state)
{
    (void)state;
    const char *file = MINIMAL "parallel:\n  devices:\n    - {plugin: opencl, index: 0}\n"
                               "    - {plugin: cpu, threads: 1}\n";
    const char *ov[] = {"parallel.measure_steps=3", "parallel.comm=none",
                        "parallel.devices.1.share=2", "parallel.devices.0.index=1",
                        "parallel.rebalance=false"};
    daecl_config *cfg = cfgt_load_ov(file, ov, sizeof ov / sizeof ov[0]);
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
    cfg = cfgt_load_ov(file, whole, 2);
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
    cfg = cfgt_load_ov(MINIMAL, fresh, 2);
    assert_int_equal(cfg->parallel.n_devices, 2);
    assert_true(daecl_plugin_cfg_value(&cfg->parallel.devices[1], "threads")->num[0] == 2);
    daecl_config_destroy(cfg);

    /* another plugin drops the item's parameters but keeps its share */
    const char *swap[] = {"parallel.devices.0.plugin=cpu", "parallel.devices.0.threads=8"};
    cfg = cfgt_load_ov(MINIMAL "parallel: {devices: [{plugin: opencl, index: 1, share: 2}]}\n",
                       swap, 2);
    assert_string_equal(cfg->parallel.devices[0].name, "cpu");
    assert_true(cfg->parallel.devices[0].values[0].num[0] == 8);
    assert_true(cfg->parallel.share[0] == 2);
    daecl_config_destroy(cfg);

    cfgt_expect_override_err(file, "parallel.devices.5.share=1", "'parallel.devices' has 2 items",
                             "at most 2");
    cfgt_expect_override_err(file, "parallel.devices.first.share=1",
                             "'parallel.devices' is a list, so 'first' must be an item number",
                             NULL);
    cfgt_expect_override_err(file, "parallel.devices.1.threads=2000",
                             "parallel.devices.1.threads must be in [0, 1024], not 2000", NULL);
    cfgt_expect_override_err(file, "parallel.devices.1.share=-2",
                             "parallel.devices.1.share must be in [0, 1000000000], not -2", NULL);
    cfgt_expect_override_err(file, "parallel.devices.1={plugin: opencl, index: 0}",
                             "parallel.devices.1 names the same device as parallel.devices.0",
                             NULL);
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
    };
    return cmocka_run_group_tests(tests, cfgt_setup, cfgt_teardown);
}
