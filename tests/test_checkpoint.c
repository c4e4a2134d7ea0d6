/* daecl tests — checkpoints: a model and its optimiser state survive a save
 * and load bit for bit, under PyTorch's tensor names; a checkpoint of another
 * model is refused with the tensor and both shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "tests/support.h"

static daecl_config *config(const char *model_yaml, const char *optimizer)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "data: {train: unused.idx}\nmodel: %s\noptimizer: {name: %s, momentum: 0}\n"
             "corruption: none\nbackend: cpu\n",
             model_yaml, optimizer);
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    if (daecl_config_load_string(yaml, strlen(yaml), "ckpt-test", NULL, 0, test_registry(), &cfg,
                                 &err))
        fail_msg("config: %s", err.msg);
    return cfg;
}

static void test_round_trip_is_bit_exact_with_adam_state(void **state)
{
    (void)state;
    daecl_config *cfg = config("{encoder: [{units: 7}, {units: 3}]}", "adam");
    daecl_model m;
    daecl_err err = {0};
    assert_int_equal(daecl_model_init(&m, cfg, 10, 1, &err), 0);
    size_t n = m.n_params;
    float *p = malloc(n * 4), *s1 = malloc(n * 4), *s2 = malloc(n * 4);
    float *q = calloc(n, 4), *t1 = calloc(n, 4), *t2 = calloc(n, 4);
    test_fill_uniform(p, n, 1, -2, 2);
    test_fill_uniform(s1, n, 2, -1, 1);
    test_fill_uniform(s2, n, 3, 0, 1);
    p[0] = -0.0f;
    p[1] = 1e-40f; /* subnormal */
    char *dir = test_tmpdir("ckpt");
    char path[1100];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    daecl_ckpt_state st = {.step = 123456789012ull, .epoch = 7, .seed = 42};
    assert_int_equal(daecl_checkpoint_save(path, &m, cfg, p, s1, s2, &st, &err), 0);
    daecl_ckpt_state back = {0};
    if (daecl_checkpoint_load(path, &m, q, t1, t2, &back, &err))
        fail_msg("load: %s", err.msg);
    assert_memory_equal(p, q, n * 4);
    assert_memory_equal(s1, t1, n * 4);
    assert_memory_equal(s2, t2, n * 4);
    assert_true(back.step == st.step && back.epoch == 7 && back.seed == 42);

    /* PyTorch names and shapes, readable without daecl's model code. */
    daecl_safetensors *f = NULL;
    assert_int_equal(daecl_safetensors_read(path, &f, &err), 0);
    uint32_t nd;
    uint64_t shape[DAECL_ST_MAX_DIMS];
    const float *w = daecl_safetensors_get(f, "encoder.1.weight", &nd, shape);
    assert_non_null(w);
    assert_true(nd == 2 && shape[0] == 3 && shape[1] == 7);
    assert_memory_equal(w, p + m.layers[1].w_off, 21 * 4);
    assert_non_null(daecl_safetensors_get(f, "decoder.1.bias", &nd, shape));
    assert_true(nd == 1 && shape[0] == 10);
    assert_non_null(daecl_safetensors_get(f, "optim.decoder.0.weight.exp_avg_sq", NULL, NULL));
    assert_non_null(strstr(daecl_safetensors_meta(f, "daecl.layers"), "\"tied_to\":null"));
    assert_string_equal(daecl_safetensors_meta(f, "daecl.likelihood"), "bernoulli");
    daecl_safetensors_destroy(f);

    char *yaml = daecl_checkpoint_config(path, &err);
    assert_non_null(yaml);
    assert_non_null(strstr(yaml, "adam"));
    free(yaml);
    free(p), free(s1), free(s2), free(q), free(t1), free(t2);
    free(dir);
    daecl_config_destroy(cfg);
}

static void test_tied_model_stores_no_decoder_weight(void **state)
{
    (void)state;
    daecl_config *cfg = config("{encoder: [{units: 4}], tied_weights: true}", "sgd");
    daecl_model m;
    daecl_err err = {0};
    assert_int_equal(daecl_model_init(&m, cfg, 6, 1, &err), 0);
    float *p = calloc(m.n_params, 4);
    char *dir = test_tmpdir("ckpt-tied");
    char path[1100];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    daecl_ckpt_state st = {0};
    assert_int_equal(daecl_checkpoint_save(path, &m, cfg, p, NULL, NULL, &st, &err), 0);
    daecl_safetensors *f = NULL;
    assert_int_equal(daecl_safetensors_read(path, &f, &err), 0);
    assert_int_equal(daecl_safetensors_count(f), 3);
    assert_null(daecl_safetensors_get(f, "decoder.0.weight", NULL, NULL));
    assert_non_null(strstr(daecl_safetensors_meta(f, "daecl.layers"), "\"tied_to\":\"encoder.0\""));
    daecl_safetensors_destroy(f);
    free(p);
    free(dir);
    daecl_config_destroy(cfg);
}

static void test_checkpoint_of_another_model_is_refused(void **state)
{
    (void)state;
    daecl_config *small = config("{encoder: [{units: 4}]}", "sgd");
    daecl_config *big = config("{encoder: [{units: 5}]}", "sgd");
    daecl_model ms, mb;
    daecl_err err = {0};
    assert_int_equal(daecl_model_init(&ms, small, 6, 1, &err), 0);
    assert_int_equal(daecl_model_init(&mb, big, 6, 1, &err), 0);
    float *p = calloc(mb.n_params, 4);
    char *dir = test_tmpdir("ckpt-other");
    char path[1100];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    daecl_ckpt_state st = {0};
    assert_int_equal(daecl_checkpoint_save(path, &ms, small, p, NULL, NULL, &st, &err), 0);
    assert_int_equal(daecl_checkpoint_load(path, &mb, p, NULL, NULL, &st, &err), DAECL_ECKPT);
    assert_non_null(strstr(err.msg, "encoder.0.weight"));
    assert_non_null(strstr(err.msg, "[4, 6]"));
    assert_non_null(strstr(err.msg, "[5, 6]"));
    free(p);
    free(dir);
    daecl_config_destroy(small);
    daecl_config_destroy(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_is_bit_exact_with_adam_state),
        cmocka_unit_test(test_tied_model_stores_no_decoder_weight),
        cmocka_unit_test(test_checkpoint_of_another_model_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
