/* daecl tests — a run's provenance: summary.json and every checkpoint
 * record each plugin's name, version, file and SHA-256; a shadowed plugin
 * is a warning at train time; resume warns when a plugin changed. Runs the
 * real `daecl` on tests/bad/config/base.yaml with the test plugin `scale`
 * (tests/plugins: good, its twin dup, and good_v2, rebuilt as 0.0.2). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/checkpoint.h"
#include "core/provenance.h"
#include "tests/support.h"

#define CASES DAECL_TEST_PLUGIN_CASES_DIR
#define CONFIG DAECL_TEST_SOURCE_DIR "/tests/bad/config/base.yaml"

/* Runs daecl with DAECL_PLUGIN_PATH=plugin_path and up to five arguments
 * (NULL-ended); fails the test unless it exits with `want`. Returns its
 * output (caller frees). */
static char *daecl(const char *plugin_path, int want, const char *a1, const char *a2,
                   const char *a3, const char *a4, const char *a5)
{
    char env_path[2048];
    snprintf(env_path, sizeof env_path, "DAECL_PLUGIN_PATH=%s", plugin_path);
    char *argv[] = {DAECL_TEST_BIN, (char *)a1, (char *)a2, (char *)a3, (char *)a4, (char *)a5,
                    "--quiet", NULL};
    for (int i = 1; i < 7; i++) /* --quiet right after the last argument */
        if (!argv[i]) {
            argv[i] = "--quiet";
            argv[i + 1] = NULL;
            break;
        }
    char *env[] = {env_path, NULL}, *out = NULL;
    int status = test_run(argv, env, &out);
    if (status != want)
        fail_msg("daecl %s %s exited with %d, not %d:\n%s", a1, a2 ? a2 : "", status, want, out);
    return out;
}

/* A run of base.yaml with corruption `scale` from plugin_path, in a new
 * folder under dir; its path goes to run (n bytes). */
static void train(const char *plugin_path, const char *dir, char *run, size_t n)
{
    snprintf(run, n, "%s/run", dir);
    free(daecl(plugin_path, 0, "train", CONFIG, "corruption=scale", "--out", run));
}

static cJSON *read_json(const char *path)
{
    char *text = test_read_file(path, NULL);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_non_null(o);
    return o;
}

static const char *str(const cJSON *o, const char *kind, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, kind),
                                                      key);
    if (!cJSON_IsString(v))
        fail_msg("no string %s.%s", kind, key);
    return v->valuestring;
}

static void test_summary_and_checkpoint_record_every_plugin(void **state)
{
    (void)state;
    char *dir = test_tmpdir("provenance-fields");
    char run[1200], path[1300];
    train(CASES "/good", dir, run, sizeof run);
    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *summary = read_json(path);
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(summary, "plugins");
    assert_non_null(plugins);
    static const char *const kinds[3] = {"corruption", "likelihood", "backend"};
    static const char *const names[3] = {"scale", "bernoulli", "cpu"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(str(plugins, kinds[i], "name"), names[i]);
        const char *file = str(plugins, kinds[i], "file");
        char want[1300];
        snprintf(want, sizeof want, "/daecl-%s-%s.so", kinds[i], names[i]);
        assert_non_null(strstr(file, want));
        char hex[65];
        daecl_err err = {0};
        assert_int_equal(daecl_provenance_sha256_file(file, hex, &err), 0);
        assert_int_equal(strlen(hex), 64);
        assert_string_equal(str(plugins, kinds[i], "sha256"), hex);
        assert_true(strlen(str(plugins, kinds[i], "version")) > 0);
    }
    assert_string_equal(str(plugins, "corruption", "version"), "0.0.1");
    assert_string_equal(str(plugins, "corruption", "file"), CASES "/good/daecl-corruption-scale.so");
    /* The checkpoint records the same. */
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    static const char *const key[1] = {"daecl.plugins"};
    char *meta = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_checkpoint_meta(path, key, 1, &meta, &err), 0);
    assert_non_null(meta);
    cJSON *stored = cJSON_Parse(meta);
    assert_true(cJSON_Compare(stored, plugins, 1));
    cJSON_Delete(stored);
    free(meta);
    cJSON_Delete(summary);
    /* config.yaml stays a config `daecl train` takes as it is. */
    snprintf(path, sizeof path, "%s/config.yaml", run);
    char *text = test_read_file(path, NULL);
    assert_null(strstr(text, "sha256"));
    free(text);
    free(daecl(CASES "/good", 0, "check", path, NULL, NULL, NULL));
    test_remove_dir(strdup(run));
    test_remove_dir(dir);
}

static void test_shadowed_plugin_is_a_warning_at_train_time(void **state)
{
    (void)state;
    char *dir = test_tmpdir("provenance-shadow");
    char run[1200];
    snprintf(run, sizeof run, "%s/run", dir);
    char *out = daecl(CASES "/good:" CASES "/dup", 0, "train", CONFIG, "corruption=scale",
                      "--out", run);
    if (!strstr(out, "warning") ||
        !strstr(out, "corruption plugin 'scale' is loaded from " CASES
                "/good/daecl-corruption-scale.so (version 0.0.1), which shadows " CASES
                "/dup/daecl-corruption-scale.so (version 0.0.1), found later in the search path"))
        fail_msg("no shadowing warning:\n%s", out);
    free(out);
    test_remove_dir(strdup(run));
    /* Alone on the path: no warning. */
    out = daecl(CASES "/good", 0, "train", CONFIG, "corruption=scale", "--out", run);
    if (strstr(out, "shadows"))
        fail_msg("a warning without a shadowed plugin:\n%s", out);
    free(out);
    test_remove_dir(strdup(run));
    test_remove_dir(dir);
}

static void test_resume_warns_after_a_rebuild_with_another_version(void **state)
{
    (void)state;
    char *dir = test_tmpdir("provenance-version");
    char run[1200], path[1300];
    train(CASES "/good", dir, run, sizeof run);
    /* The same plugin: no warning. */
    char *out = daecl(CASES "/good", 0, "resume", run, "train.epochs=2", NULL, NULL);
    if (strstr(out, "warning"))
        fail_msg("a warning though nothing changed:\n%s", out);
    free(out);
    out = daecl(CASES "/good_v2", 0, "resume", run, "train.epochs=3", NULL, NULL);
    char want[1500];
    snprintf(want, sizeof want, "corruption plugin 'scale' is version 0.0.2 now but was 0.0.1 "
             "when %s/checkpoint.safetensors was written (file " CASES
             "/good_v2/daecl-corruption-scale.so)", run);
    if (!strstr(out, want))
        fail_msg("no version warning \"%s\":\n%s", want, out);
    free(out);
    /* The new checkpoint and summary record what the run goes on with. */
    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *summary = read_json(path);
    assert_string_equal(str(cJSON_GetObjectItemCaseSensitive(summary, "plugins"), "corruption",
                            "version"), "0.0.2");
    cJSON_Delete(summary);
    test_remove_dir(strdup(run));
    test_remove_dir(dir);
}

/* Same version, other bytes: the SHA-256 tells. */
static void test_resume_warns_when_the_file_changed_under_the_same_version(void **state)
{
    (void)state;
    char *dir = test_tmpdir("provenance-bytes");
    char plugins[1200], file[1300], run[1200];
    snprintf(plugins, sizeof plugins, "%s/plugins", dir);
    snprintf(file, sizeof file, "%s/daecl-corruption-scale.so", plugins);
    assert_int_equal(mkdir(plugins, 0755), 0);
    size_t n;
    char *bytes = test_read_file(CASES "/good/daecl-corruption-scale.so", &n);
    test_write_file(file, bytes, n);
    train(plugins, dir, run, sizeof run);
    char *grown = malloc(n + 16);
    memcpy(grown, bytes, n);
    memset(grown + n, 0, 16); /* trailing bytes: still the same ELF to dlopen */
    test_write_file(file, grown, n + 16);
    free(grown);
    free(bytes);
    char *out = daecl(plugins, 0, "resume", run, "train.epochs=2", NULL, NULL);
    char want[1500];
    snprintf(want, sizeof want, "corruption plugin 'scale' (file %s) changed since", file);
    if (!strstr(out, want) || !strstr(out, "both version 0.0.1"))
        fail_msg("no content warning \"%s\":\n%s", want, out);
    free(out);
    test_remove_dir(strdup(run));
    remove(file);
    test_remove_dir(strdup(plugins));
    test_remove_dir(dir);
}

static void test_changes_are_counted_by_name(void **state)
{
    (void)state;
    const char *a = "{\"corruption\": {\"name\": \"x\", \"version\": \"1\", \"sha256\": \"aa\"},"
                    " \"backend\": {\"name\": \"cpu\", \"version\": \"1\", \"sha256\": \"bb\"}}";
    const char *b = "{\"corruption\": {\"name\": \"x\", \"version\": \"2\", \"sha256\": \"cc\"},"
                    " \"backend\": {\"name\": \"opencl\", \"version\": \"9\", \"sha256\": \"dd\"}}";
    assert_int_equal(daecl_provenance_warn_changed(a, a, "ckpt"), 0);
    assert_int_equal(daecl_provenance_warn_changed(a, b, "ckpt"), 1); /* opencl is another plugin */
    assert_int_equal(daecl_provenance_warn_changed(NULL, b, "ckpt"), 0); /* before provenance */
    assert_int_equal(daecl_provenance_warn_changed("{}", b, "ckpt"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_summary_and_checkpoint_record_every_plugin),
        cmocka_unit_test(test_shadowed_plugin_is_a_warning_at_train_time),
        cmocka_unit_test(test_resume_warns_after_a_rebuild_with_another_version),
        cmocka_unit_test(test_resume_warns_when_the_file_changed_under_the_same_version),
        cmocka_unit_test(test_changes_are_counted_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
