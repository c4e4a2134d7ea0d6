/* daecl tests — the plugin loader: every refusal reason is met by a real
 * shared object built broken on purpose (tests/plugins/), and each gives one
 * sentence naming the file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/registry.h"
#include "daecl/elementwise.h"
#include "tests/support.h"

#define CASES DAECL_TEST_PLUGIN_CASES_DIR

/* Creates a registry over one folder; asserts it found `accepted` plugins
 * and `refused` refusals. */
static daecl_registry *open_dir(const char *path, size_t accepted, size_t refused)
{
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create(path, &reg, &err), 0);
    if (daecl_registry_count(reg) != accepted || daecl_registry_refused_count(reg) != refused) {
        for (size_t i = 0; i < daecl_registry_refused_count(reg); i++)
            print_error("refused: %s\n", daecl_registry_refused_at(reg, i));
        fail_msg("%s: %zu accepted, %zu refused; expected %zu and %zu", path,
                 daecl_registry_count(reg), daecl_registry_refused_count(reg), accepted, refused);
    }
    return reg;
}

static void expect_refusal(const char *folder, const char *words1, const char *words2)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", CASES, folder);
    daecl_registry *reg = open_dir(path, 0, 1);
    const char *why = daecl_registry_refused_at(reg, 0);
    if (!strstr(why, words1) || (words2 && !strstr(why, words2)) || !strstr(why, path))
        fail_msg("refusal for %s lacks '%s'/'%s' or the path: %s", folder, words1,
                 words2 ? words2 : "", why);
    assert_null(daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "scale", NULL));
    daecl_registry_destroy(reg);
}

static void test_good_plugin_is_accepted_with_its_file(void **state)
{
    (void)state;
    daecl_registry *reg = open_dir(CASES "/good", 1, 0);
    const char *path = NULL;
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "scale", &path);
    assert_non_null(p);
    assert_string_equal(path, CASES "/good/daecl-corruption-scale.so");
    assert_string_equal(p->version, "0.0.1");
    assert_null(daecl_registry_find(reg, DAECL_KIND_LIKELIHOOD, "scale", NULL));
    /* The accepted plugin really runs. */
    const daecl_corruption_ops *ops = p->ops;
    float x[3] = {1, 2, 3}, xt[3], factor = 2;
    daecl_noise_key key = {0};
    assert_int_equal(ops->host_apply(x, xt, 1, 3, &key, &factor, NULL), 0);
    assert_true(xt[2] == 6.0f);
    daecl_registry_destroy(reg);
}

static void test_wrong_major_is_refused(void **state)
{
    (void)state;
    expect_refusal("bad_major", "built for plugin ABI 2.0", "rebuild it");
}

static void test_newer_minor_is_refused(void **state)
{
    (void)state;
    expect_refusal("bad_minor", "needs plugin ABI 1.1", "newer than this daecl");
}

static void test_wrong_sizes_are_refused(void **state)
{
    (void)state;
    expect_refusal("bad_sizes", "sizes 4/4/4", "4/8/8");
}

static void test_missing_entry_symbol_is_refused(void **state)
{
    (void)state;
    expect_refusal("no_entry", "no entry point daecl_plugin_entry", NULL);
}

static void test_missing_required_op_is_refused(void **state)
{
    (void)state;
    expect_refusal("missing_op", "lacks the required op 'host_apply'", NULL);
}

static void test_default_outside_range_is_refused(void **state)
{
    (void)state;
    expect_refusal("bad_default", "default for 'factor' outside its range", NULL);
}

static void test_failing_init_is_refused_with_its_message(void **state)
{
    (void)state;
    expect_refusal("init_fails", "failed to initialise", "the test plugin refuses to start");
}

static void test_too_small_descriptor_is_refused(void **state)
{
    (void)state;
    expect_refusal("small_descriptor", "descriptor of 16 bytes", NULL);
}

static void test_file_that_is_not_a_shared_object_is_refused(void **state)
{
    (void)state;
    expect_refusal("not_elf", "cannot be opened", NULL);
}

static void test_duplicate_kind_and_name_names_both_files(void **state)
{
    (void)state;
    daecl_registry *reg = open_dir(CASES "/good:" CASES "/dup", 1, 1);
    const char *why = daecl_registry_refused_at(reg, 0);
    assert_non_null(strstr(why, CASES "/dup/daecl-corruption-scale.so"));
    assert_non_null(strstr(why, CASES "/good/daecl-corruption-scale.so"));
    assert_non_null(strstr(why, "duplicates"));
    /* The one found first wins. */
    const char *path = NULL;
    assert_non_null(daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "scale", &path));
    assert_string_equal(path, CASES "/good/daecl-corruption-scale.so");
    daecl_registry_destroy(reg);
}

static void test_world_writable_plugin_is_refused(void **state)
{
    (void)state;
    char *dir = test_tmpdir("registry-writable");
    size_t n;
    char *bytes = test_read_file(CASES "/good/daecl-corruption-scale.so", &n);
    char path[1024];
    snprintf(path, sizeof path, "%s/daecl-corruption-scale.so", dir);
    test_write_file(path, bytes, n);
    free(bytes);
    assert_int_equal(chmod(path, 0757), 0);
    daecl_registry *reg = open_dir(dir, 0, 1);
    assert_non_null(strstr(daecl_registry_refused_at(reg, 0), "writable by every user"));
    daecl_registry_destroy(reg);
    assert_int_equal(chmod(path, 0755), 0);
    reg = open_dir(dir, 1, 0);
    daecl_registry_destroy(reg);
    free(dir);
}

static void test_unreadable_folder_in_plugin_path_is_reported(void **state)
{
    (void)state;
    daecl_registry *reg = open_dir(CASES "/no-such-folder:" CASES "/good", 1, 1);
    assert_non_null(strstr(daecl_registry_refused_at(reg, 0), "no-such-folder"));
    daecl_registry_destroy(reg);
}

static void test_environment_path_is_searched_first(void **state)
{
    (void)state;
    setenv("DAECL_PLUGIN_PATH", CASES "/good", 1);
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create(NULL, &reg, &err), 0);
    unsetenv("DAECL_PLUGIN_PATH");
    const char *path = NULL;
    assert_non_null(daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "scale", &path));
    assert_string_equal(path, CASES "/good/daecl-corruption-scale.so");
    assert_true(strncmp(daecl_registry_search_path(reg), CASES "/good:", strlen(CASES "/good:")) == 0);
    daecl_registry_destroy(reg);
}

/* ---- in-memory descriptors ------------------------------------------------ */

static int apply_copy(const float *x, float *xt, size_t n_rows, size_t dim,
                      const daecl_noise_key *key, const float *params, daecl_err *err)
{
    (void)key, (void)params, (void)err;
    memcpy(xt, x, n_rows * dim * sizeof *x);
    return 0;
}

static daecl_param_spec schema[3];
static daecl_corruption_ops mem_ops = {.size = sizeof(daecl_corruption_ops), .host_apply = apply_copy};
static daecl_plugin mem_plugin;

static void reset_mem_plugin(void)
{
    daecl_param_spec s[3] = {
        {.name = "p", .type = DAECL_PARAM_FLOAT, .def = {0.5}, .min = 0, .max = 1, .doc = "p"},
        {.name = "range", .type = DAECL_PARAM_FLOAT2, .def = {-INFINITY, INFINITY},
         .min = -INFINITY, .max = INFINITY, .doc = "range"},
        {.name = "mode", .type = DAECL_PARAM_ENUM, .def_str = "b", .choices = "a|b|c",
         .doc = "mode"},
    };
    memcpy(schema, s, sizeof s);
    daecl_plugin p = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION), .name = "mem", .version = "1",
                      .summary = "in memory", .license = "MIT", .params = schema,
                      .n_params = 3, .ops = &mem_ops};
    mem_plugin = p;
    mem_ops.size = sizeof(daecl_corruption_ops);
}

static void expect_add_refused(const char *words)
{
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    assert_int_equal(daecl_registry_add(reg, &mem_plugin, "memory-plugin", &err), DAECL_EPLUGIN);
    if (!strstr(err.msg, words) || !strstr(err.msg, "memory-plugin"))
        fail_msg("expected '%s' in: %s", words, err.msg);
    assert_int_equal(daecl_registry_count(reg), 0);
    daecl_registry_destroy(reg);
}

static void test_schema_errors_are_refused(void **state)
{
    (void)state;
    reset_mem_plugin();
    schema[2].name = "p";
    expect_add_refused("declares parameter 'p' twice");
    reset_mem_plugin();
    schema[2].def_str = "d";
    expect_add_refused("not one of its choices");
    reset_mem_plugin();
    schema[0].name = "Bad-Name";
    expect_add_refused("invalid name 'Bad-Name'");
    reset_mem_plugin();
    schema[0].name = "plugin";
    expect_add_refused("'plugin' is reserved");
    reset_mem_plugin();
    schema[1].def[0] = 1, schema[1].def[1] = 0;
    expect_add_refused("outside its range");
    reset_mem_plugin();
    mem_plugin.name = "Mem";
    expect_add_refused("invalid name 'Mem'");
    reset_mem_plugin();
    mem_plugin.kind = 7;
    expect_add_refused("unknown kind 7");
    reset_mem_plugin();
    mem_ops.size = 8;
    expect_add_refused("smaller than ABI 1.0");
    reset_mem_plugin();
}

static void test_parameters_pack_in_schema_order(void **state)
{
    (void)state;
    reset_mem_plugin();
    daecl_param_value v[3] = {{.num = {0.25}}, {.num = {-1, 2}}, {.str = "c"}};
    float packed[DAECL_MAX_PACKED_PARAMS];
    assert_int_equal(daecl_params_pack(schema, 3, v, packed), 4);
    assert_true(packed[0] == 0.25f && packed[1] == -1.0f && packed[2] == 2.0f);
    assert_true(packed[3] == 2.0f); /* "c" is choice 2 */
}

static void test_accepted_copy_reads_the_plugins_ops(void **state)
{
    (void)state;
    reset_mem_plugin();
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    assert_int_equal(daecl_registry_add(reg, &mem_plugin, "mem", &err), 0);
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "mem", NULL);
    assert_non_null(p);
    assert_ptr_equal(((const daecl_corruption_ops *)p->ops)->host_apply, apply_copy);
    /* A second add of the same name is a duplicate. */
    assert_int_equal(daecl_registry_add(reg, &mem_plugin, "mem2", &err), DAECL_EPLUGIN);
    assert_non_null(strstr(err.msg, "duplicates mem"));
    daecl_registry_destroy(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_plugin_is_accepted_with_its_file),
        cmocka_unit_test(test_wrong_major_is_refused),
        cmocka_unit_test(test_newer_minor_is_refused),
        cmocka_unit_test(test_wrong_sizes_are_refused),
        cmocka_unit_test(test_missing_entry_symbol_is_refused),
        cmocka_unit_test(test_missing_required_op_is_refused),
        cmocka_unit_test(test_default_outside_range_is_refused),
        cmocka_unit_test(test_failing_init_is_refused_with_its_message),
        cmocka_unit_test(test_too_small_descriptor_is_refused),
        cmocka_unit_test(test_file_that_is_not_a_shared_object_is_refused),
        cmocka_unit_test(test_duplicate_kind_and_name_names_both_files),
        cmocka_unit_test(test_world_writable_plugin_is_refused),
        cmocka_unit_test(test_unreadable_folder_in_plugin_path_is_reported),
        cmocka_unit_test(test_environment_path_is_searched_first),
        cmocka_unit_test(test_schema_errors_are_refused),
        cmocka_unit_test(test_parameters_pack_in_schema_order),
        cmocka_unit_test(test_accepted_copy_reads_the_plugins_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
