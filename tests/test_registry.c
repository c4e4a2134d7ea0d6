/* daecl tests — the plugin loader: every refusal reason is met by a real
 * shared object built broken on purpose (tests/plugins/), or by a real file
 * placed where the rules of core/pluginfile.h refuse it; each gives one
 * sentence naming the file, the same in `daecl plugins`, `daecl train` and
 * `daecl plugin check`. */
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pluginfile.h"
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
    daecl_shape shape = {1, {3, 1, 1, 1}};
    assert_int_equal(ops->host_apply(x, xt, 1, 3, &shape, &key, &factor, NULL), 0);
    assert_true(xt[2] == 6.0f);
    daecl_registry_destroy(reg);
}

static void test_wrong_major_is_refused(void **state)
{
    (void)state;
    char want[64]; /* tests/plugins builds it with major + 1 */
    snprintf(want, sizeof want, "built for plugin ABI %d.%d", DAECL_ABI_MAJOR + 1, DAECL_ABI_MINOR);
    expect_refusal("bad_major", want, "rebuild it");
}

static void test_newer_minor_is_refused(void **state)
{
    (void)state;
    char want[64]; /* tests/plugins builds it with minor + 1 */
    snprintf(want, sizeof want, "needs plugin ABI %d.%d", DAECL_ABI_MAJOR, DAECL_ABI_MINOR + 1);
    expect_refusal("bad_minor", want, "newer than this daecl");
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
    assert_non_null(strstr(why, "is shadowed by"));
    /* The one found first wins, and knows what it shadows. */
    const char *path = NULL;
    assert_non_null(daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "scale", &path));
    assert_string_equal(path, CASES "/good/daecl-corruption-scale.so");
    assert_string_equal(daecl_registry_shadowed(reg, DAECL_KIND_CORRUPTION, "scale"),
                        CASES "/dup/daecl-corruption-scale.so (version 0.0.1)");
    assert_null(daecl_registry_shadowed(reg, DAECL_KIND_LIKELIHOOD, "scale"));
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

/* ---- the loading rules, the same sentence everywhere ------------------------ */

#define GOOD CASES "/good/daecl-corruption-scale.so"
#define NOBODY 65534

/* A copy of the good plugin at path, with that mode. */
static void put_plugin(const char *path, mode_t mode)
{
    size_t n;
    char *bytes = test_read_file(GOOD, &n);
    test_write_file(path, bytes, n);
    free(bytes);
    assert_int_equal(chmod(path, mode), 0);
}

/* A folder at path with that mode (chmod: not the umask's choice). */
static void put_folder(const char *path, mode_t mode)
{
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(char *dir)
{
    nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

/* Runs daecl with DAECL_PLUGIN_PATH=plugin_path and args (NULL-ended);
 * returns its output, *status its exit status. */
static char *daecl(const char *plugin_path, int *status, ...)
{
    char env_path[2048];
    snprintf(env_path, sizeof env_path, "DAECL_PLUGIN_PATH=%s", plugin_path);
    char *argv[16] = {DAECL_TEST_BIN}, *env[] = {env_path, NULL}, *out = NULL;
    size_t n = 1;
    va_list ap;
    va_start(ap, status);
    for (char *a; n < 15 && (a = va_arg(ap, char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    *status = test_run(argv, env, &out);
    return out;
}

/* The registry over plugin_path refuses `file` with a sentence holding
 * `words`; `daecl plugins` lists that very sentence, `daecl train` with
 * corruption=NAME stops with it, and `daecl plugin check FILE` fails with
 * it. Returns nothing: fails the test otherwise. */
static void expect_refused_everywhere(const char *plugin_path, const char *file, const char *name,
                                      const char *words)
{
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create(plugin_path, &reg, &err), 0);
    char want[1024] = "";
    for (size_t i = 0; i < daecl_registry_refused_count(reg); i++) {
        const char *r = daecl_registry_refused_at(reg, i);
        char head[1100];
        snprintf(head, sizeof head, "plugin %s ", file);
        if (strncmp(r, head, strlen(head)) == 0)
            snprintf(want, sizeof want, "%s", r);
    }
    assert_null(daecl_registry_find(reg, DAECL_KIND_CORRUPTION, name, NULL));
    daecl_registry_destroy(reg);
    if (!want[0] || !strstr(want, words))
        fail_msg("no refusal of %s with '%s' (got '%s')", file, words, want);

    int status;
    char *out = daecl(plugin_path, &status, "plugins", NULL);
    if (status != 0 || !strstr(out, want))
        fail_msg("`daecl plugins` (exit %d) lacks \"%s\":\n%s", status, want, out);
    free(out);

    char cfg[1024], corruption[128], run[1200];
    snprintf(cfg, sizeof cfg, "%s/tests/bad/config/base.yaml", DAECL_TEST_SOURCE_DIR);
    snprintf(corruption, sizeof corruption, "corruption=%s", name);
    snprintf(run, sizeof run, "%s.run", plugin_path);
    out = daecl(plugin_path, &status, "train", cfg, corruption, "--out", run, NULL);
    struct stat st;
    if (status != 2 || !strstr(out, want) || stat(run, &st) == 0)
        fail_msg("`daecl train ... %s` (exit %d) lacks \"%s\" or left %s:\n%s", corruption, status,
                 want, run, out);
    free(out);

    out = daecl(plugin_path, &status, "plugin", "check", file, "--no-device", NULL);
    if (status != 1 || !strstr(out, want))
        fail_msg("`daecl plugin check %s` (exit %d) lacks \"%s\":\n%s", file, status, want, out);
    free(out);
}

/* dir/sub, made with folder_mode, holding a copy of the good plugin (mode
 * 0644) as daecl-corruption-scale.so; folder and file get their paths
 * (PATH_SIZE bytes each). */
#define PATH_SIZE 1400
static void plugin_in(const char *dir, const char *sub, mode_t folder_mode, char *folder,
                      char *file)
{
    if (snprintf(folder, PATH_SIZE, "%s/%s", dir, sub) >= PATH_SIZE / 2 ||
        snprintf(file, PATH_SIZE, "%s/daecl-corruption-scale.so", folder) >= PATH_SIZE)
        fail_msg("test folder %s: path too long", dir);
    put_folder(folder, folder_mode);
    put_plugin(file, 0644);
}

static void test_rule_file_writable_by_others(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-file");
    char folder[PATH_SIZE], file[PATH_SIZE];
    plugin_in(dir, "plugins", 0755, folder, file);
    assert_int_equal(chmod(file, 0646), 0);
    expect_refused_everywhere(folder, file, "scale", "is writable by every user (mode 0646)");
    remove_tree(dir);
}

static void test_rule_folder_writable_by_others(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-folder");
    char ww[PATH_SIZE], file[PATH_SIZE], words[2 * PATH_SIZE];
    plugin_in(dir, "ww", 0777, ww, file);
    snprintf(words, sizeof words, "the folder %s is writable by every user (mode 0777) and not "
             "sticky", ww);
    expect_refused_everywhere(ww, file, "scale", words);
    remove_tree(dir);
}

/* Only the last folder was checked before: a plugin folder inside a
 * world-writable one was loaded. */
static void test_rule_parent_writable_by_others(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-parent");
    char ww[PATH_SIZE], sub[PATH_SIZE], file[PATH_SIZE], words[2 * PATH_SIZE];
    snprintf(ww, sizeof ww, "%s/ww", dir);
    put_folder(ww, 0777);
    plugin_in(ww, "plugins", 0755, sub, file);
    snprintf(words, sizeof words, "the folder %s is writable by every user", ww);
    expect_refused_everywhere(sub, file, "scale", words);
    remove_tree(dir);
}

/* A link in a safe folder whose target lies in a world-writable one. */
static void test_rule_link_into_folder_writable_by_others(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-link");
    char safe[PATH_SIZE], ww[PATH_SIZE], target[PATH_SIZE], link[PATH_SIZE], words[3 * PATH_SIZE];
    plugin_in(dir, "ww", 0777, ww, target);
    if (snprintf(safe, sizeof safe, "%s/safe", dir) >= PATH_SIZE / 2 ||
        snprintf(link, sizeof link, "%s/daecl-corruption-scale.so", safe) >= PATH_SIZE)
        fail_msg("test folder %s: path too long", dir);
    put_folder(safe, 0755);
    assert_int_equal(symlink("../ww/daecl-corruption-scale.so", link), 0);
    snprintf(words, sizeof words, "the folder %s (reached through the link %s) is writable by "
             "every user", ww, link);
    expect_refused_everywhere(safe, link, "scale", words);
    remove_tree(dir);
}

/* A sticky world-writable folder is safe only when root or you own it. */
static void test_rule_sticky_folder_of_another_user(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip(); /* chown to another user needs root */
    char *dir = test_tmpdir("rule-sticky");
    char shared[PATH_SIZE], file[PATH_SIZE];
    plugin_in(dir, "shared", 01777, shared, file);
    assert_int_equal(chown(shared, NOBODY, NOBODY), 0);
    expect_refused_everywhere(shared, file, "scale", "(mode 1777) and belongs to uid 65534, not "
                              "to root or you");
    remove_tree(dir);
}

/* In a sticky world-writable folder of root's (as /tmp), a file someone
 * else put there is refused; your own is loaded. */
static void test_rule_file_of_another_user_in_a_shared_folder(void **state)
{
    (void)state;
    if (geteuid() != 0)
        skip();
    char *dir = test_tmpdir("rule-shared");
    char shared[PATH_SIZE], file[PATH_SIZE], words[3 * PATH_SIZE];
    plugin_in(dir, "shared", 01777, shared, file);
    daecl_registry *reg = open_dir(shared, 1, 0); /* root's folder, root's file: loaded */
    daecl_registry_destroy(reg);
    assert_int_equal(chown(file, NOBODY, NOBODY), 0);
    snprintf(words, sizeof words, "%s belongs to uid 65534, not to root or you, and lies in %s, "
             "which every user may write to (mode 1777)", file, shared);
    expect_refused_everywhere(shared, file, "scale", words);
    remove_tree(dir);
}

/* What the rules allow: a group-writable folder, a sticky shared one of
 * root's, links between safe folders. Without this the tests above could
 * pass with a loader that refuses everything. */
static void test_rule_allows_safe_folders_and_links(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-allowed");
    char group[1200], shared[1200], file[1300], link[1300];
    snprintf(group, sizeof group, "%s/group", dir);
    snprintf(shared, sizeof shared, "%s/shared", dir);
    put_folder(group, 02775);
    put_folder(shared, 01777);
    snprintf(file, sizeof file, "%s/daecl-corruption-scale.so", group);
    put_plugin(file, 0664);
    snprintf(link, sizeof link, "%s/daecl-corruption-scale.so", shared);
    assert_int_equal(symlink(file, link), 0);
    daecl_registry *reg = open_dir(group, 1, 0);
    daecl_registry_destroy(reg);
    reg = open_dir(shared, 1, 0);
    daecl_registry_destroy(reg);
    int status;
    char *out = daecl(shared, &status, "plugin", "check", link, "--no-device", NULL);
    if (status != 0 || !strstr(out, "PASS  file"))
        fail_msg("`daecl plugin check %s` (exit %d):\n%s", link, status, out);
    free(out);
    remove_tree(dir);
}

/* A misnamed file was loaded by the registry though `plugin check` failed it. */
static void test_rule_file_named_for_another_plugin(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-name");
    char file[1200];
    snprintf(file, sizeof file, "%s/daecl-corruption-other.so", dir);
    put_plugin(file, 0644);
    expect_refused_everywhere(dir, file, "other", "holds corruption 'scale', so it must be named "
                              "daecl-corruption-scale.so");
    remove_tree(dir);
}

/* dlopen of a FIFO would wait for a writer forever. */
static void test_rule_not_a_regular_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-fifo");
    char file[1200];
    snprintf(file, sizeof file, "%s/daecl-corruption-scale.so", dir);
    assert_int_equal(mkfifo(file, 0644), 0);
    expect_refused_everywhere(dir, file, "scale", "is not a regular file");
    remove_tree(dir);
}

static void test_rule_abi_and_loading(void **state)
{
    (void)state;
    expect_refused_everywhere(CASES "/bad_major", CASES "/bad_major/daecl-corruption-scale.so",
                              "scale", "was built for plugin ABI");
    expect_refused_everywhere(CASES "/not_elf", CASES "/not_elf/daecl-corruption-junk.so", "junk",
                              "cannot be opened by dlopen");
    expect_refused_everywhere(CASES "/no_entry", CASES "/no_entry/daecl-corruption-scale.so",
                              "scale", "has no entry point daecl_plugin_entry");
}

/* `plugin check` of a file the registry would never look at. */
static void test_rule_file_name_pattern(void **state)
{
    (void)state;
    daecl_err err = {0};
    assert_int_equal(daecl_pluginfile_check_path(GOOD, &err), 0);
    assert_int_equal(daecl_pluginfile_check_path(CASES "/good/scale.so", &err), DAECL_EPLUGIN);
    assert_non_null(strstr(err.msg, "is not named daecl-<kind>-<name>.so"));
    assert_false(daecl_pluginfile_named("daecl-.so"));
    assert_true(daecl_pluginfile_named("daecl-corruption-x.so"));
}

/* A plugin that is not found: the sentence names the search path and each
 * file of that kind that was refused, with the reason. */
static void test_unknown_plugin_names_the_path_and_the_refusals(void **state)
{
    (void)state;
    char *dir = test_tmpdir("rule-unknown");
    char ww[1200], file[1300], cfg[1024], want[2800];
    snprintf(ww, sizeof ww, "%s/ww", dir);
    snprintf(file, sizeof file, "%s/daecl-corruption-scale.so", ww);
    put_folder(ww, 0777);
    put_plugin(file, 0644);
    snprintf(cfg, sizeof cfg, "%s/tests/bad/config/base.yaml", DAECL_TEST_SOURCE_DIR);
    snprintf(want, sizeof want, "; searched %s:", ww);
    int status;
    char *out = daecl(ww, &status, "check", cfg, "corruption=blur", NULL);
    if (status != 2 || !strstr(out, "unknown corruption plugin 'blur'") || !strstr(out, want))
        fail_msg("exit %d, output lacks the search path:\n%s", status, out);
    snprintf(want, sizeof want, "where it refused: plugin %s is refused: the folder %s is "
             "writable by every user", file, ww);
    if (!strstr(out, want))
        fail_msg("output lacks \"%s\":\n%s", want, out);
    free(out);
    remove_tree(dir);
}

/* ---- in-memory descriptors ------------------------------------------------ */

static int apply_copy(const float *x, float *xt, size_t n_rows, size_t dim,
                      const daecl_shape *shape, const daecl_noise_key *key, const float *params,
                      daecl_err *err)
{
    (void)shape, (void)key, (void)params, (void)err;
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
    mem_ops.granularity = DAECL_GRAIN_ELEMENT;
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
    expect_add_refused("smaller than ABI 2.0");
    reset_mem_plugin();
    mem_ops.granularity = 2;
    expect_add_refused("declares corruption granularity 2; use DAECL_GRAIN_ELEMENT (0) or "
                       "DAECL_GRAIN_ROW (1)");
    /* A table of ABI 1.0's size has no granularity: what lies past its end
     * is not read, and the registry's copy says element-wise. */
    mem_ops.size = (uint32_t)offsetof(daecl_corruption_ops, granularity);
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    assert_int_equal(daecl_registry_add(reg, &mem_plugin, "memory-plugin", &err), 0);
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "mem", NULL);
    assert_int_equal(((const daecl_corruption_ops *)p->ops)->granularity, DAECL_GRAIN_ELEMENT);
    daecl_registry_destroy(reg);
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
    assert_non_null(strstr(err.msg, "is shadowed by mem"));
    daecl_registry_destroy(reg);
}

/* A plugin built against ABI 1.x keeps the frozen head (size, major,
 * minor, sizes): it is refused by its major in one sentence. */
static void test_a_1x_plugin_is_refused_in_one_sentence(void **state)
{
    (void)state;
    reset_mem_plugin();
    mem_plugin.abi_major = 1;
    mem_plugin.abi_minor = 0;
    expect_add_refused("was built for plugin ABI 1.0 but this daecl speaks 2.1; rebuild it");
    reset_mem_plugin();
}

/* A backend from the cpu backend's table with some slots cleared. */
static daecl_backend_ops be_ops;
static daecl_plugin be_plugin;

static void reset_backend(void)
{
    const daecl_plugin *cpu = test_plugin(DAECL_KIND_BACKEND, "cpu");
    be_ops = *(const daecl_backend_ops *)cpu->ops;
    be_plugin = *cpu;
    be_plugin.name = "mem_backend";
    be_plugin.init = NULL;
    be_plugin.ops = &be_ops;
}

/* Adds be_plugin; returns its status, err's sentence in *msg. */
static int add_backend(char *msg, size_t n)
{
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    int rc = daecl_registry_add(reg, &be_plugin, "memory-backend", &err);
    snprintf(msg, n, "%s", err.msg);
    daecl_registry_destroy(reg);
    return rc;
}

/* Stands in a slot past a table's size: the core must never see it. */
static int past_the_table(void *ctx, daecl_slice dh, daecl_slice h, size_t n_rows, size_t dim,
                          daecl_act act, float beta, daecl_slice dst, daecl_err *err)
{
    (void)ctx, (void)dh, (void)h, (void)n_rows, (void)dim, (void)act, (void)beta, (void)dst;
    (void)err;
    fail_msg("a slot past the backend table's size was called");
    return -1;
}

static void test_backend_needs_only_its_core_and_bind_brings_its_group(void **state)
{
    (void)state;
    char msg[DAECL_ERR_MSG_MAX];
    /* fill, lik_sample and the tooling are optional */
    reset_backend();
    be_ops.fill = NULL, be_ops.lik_sample = NULL, be_ops.get_extension = NULL;
    assert_int_equal(add_backend(msg, sizeof msg), 0);
    /* without bind, none of the plugin group is needed */
    be_ops.bind = NULL, be_ops.unbind = NULL, be_ops.corrupt = NULL;
    be_ops.lik_loss_grad = NULL, be_ops.lik_mean = NULL;
    assert_int_equal(add_backend(msg, sizeof msg), 0);
    /* with bind, the rest of the group is required */
    reset_backend();
    be_ops.corrupt = NULL;
    assert_int_equal(add_backend(msg, sizeof msg), DAECL_EPLUGIN);
    if (!strstr(msg, "sets bind but lacks 'corrupt'") || !strstr(msg, "leave bind NULL"))
        fail_msg("unexpected refusal: %s", msg);
    /* every slot of the required core */
    static const size_t core[] = {
        offsetof(daecl_backend_ops, open),         offsetof(daecl_backend_ops, close),
        offsetof(daecl_backend_ops, describe),     offsetof(daecl_backend_ops, alloc),
        offsetof(daecl_backend_ops, free),         offsetof(daecl_backend_ops, write),
        offsetof(daecl_backend_ops, read),         offsetof(daecl_backend_ops, copy),
        offsetof(daecl_backend_ops, gemm),         offsetof(daecl_backend_ops, bias_act),
        offsetof(daecl_backend_ops, act_grad),     offsetof(daecl_backend_ops, col_sum),
        offsetof(daecl_backend_ops, sum),          offsetof(daecl_backend_ops, gather),
        offsetof(daecl_backend_ops, softmax_xent), offsetof(daecl_backend_ops, optim_update),
        offsetof(daecl_backend_ops, finish),
    };
    for (size_t i = 0; i < sizeof core / sizeof core[0]; i++) {
        reset_backend();
        memset((char *)&be_ops + core[i], 0, sizeof(void *));
        assert_int_equal(add_backend(msg, sizeof msg), DAECL_EPLUGIN);
        if (!strstr(msg, "lacks the required op"))
            fail_msg("slot at %zu: unexpected refusal: %s", core[i], msg);
    }
    /* a table of 1.0's layout is smaller than 2.0's */
    reset_backend();
    be_ops.size = (uint32_t)offsetof(daecl_backend_ops, lik_mean);
    assert_int_equal(add_backend(msg, sizeof msg), DAECL_EPLUGIN);
    assert_non_null(strstr(msg, "smaller than ABI 2.0's"));
    /* a 2.0 table, without 2.1's fused ops, loads; the slots it lacks read
     * as NULL in the registry's copy whatever lies past its end */
    reset_backend();
    be_ops.size = (uint32_t)offsetof(daecl_backend_ops, act_grad_col_sum);
    be_ops.act_grad_col_sum = past_the_table;
    daecl_registry *reg = NULL;
    daecl_err err = { 0 };
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    assert_int_equal(daecl_registry_add(reg, &be_plugin, "memory-backend", &err), 0);
    const daecl_plugin *got = daecl_registry_find(reg, DAECL_KIND_BACKEND, "mem_backend", NULL);
    assert_non_null(got);
    const daecl_backend_ops *ops = got->ops;
    assert_non_null(ops->lik_sample);
    assert_null(ops->act_grad_col_sum);
    daecl_registry_destroy(reg);
}

/* `auto` is not a plugin's name: backend.plugin: auto chooses one
 * (core/backend_auto.h), so a plugin called that could never be named. */
static void test_a_plugin_named_auto_is_refused_in_one_sentence(void **state)
{
    (void)state;
    char msg[DAECL_ERR_MSG_MAX];
    reset_backend();
    be_plugin.name = "auto";
    assert_int_equal(add_backend(msg, sizeof msg), DAECL_EPLUGIN);
    if (!strstr(msg, "plugin memory-backend calls itself 'auto', a name daecl reserves") ||
        !strstr(msg, "rename the plugin") || strchr(msg, '\n'))
        fail_msg("unexpected refusal: %s", msg);
    /* a name that only starts so is a name like any other */
    be_plugin.name = "auto2";
    assert_int_equal(add_backend(msg, sizeof msg), 0);
}

/* A later minor's bigger parameter specs are read at their own stride. */
static void test_parameter_specs_are_read_at_the_plugins_element_size(void **state)
{
    (void)state;
    typedef struct bigger_spec {
        daecl_param_spec spec;
        const char *unit; /* what a later minor might append */
    } bigger_spec;
    static const bigger_spec specs[2] = {
        {{.name = "first", .type = DAECL_PARAM_FLOAT, .def = {0.5}, .min = 0, .max = 1,
          .doc = "first"}, "s"},
        {{.name = "second", .type = DAECL_PARAM_INT, .def = {3}, .min = 0, .max = 9,
          .doc = "second"}, "m"},
    };
    reset_mem_plugin();
    mem_plugin.params = &specs[0].spec;
    mem_plugin.n_params = 2;
    mem_plugin.param_size = sizeof(bigger_spec);
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    if (daecl_registry_add(reg, &mem_plugin, "mem", &err))
        fail_msg("refused: %s", err.msg);
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_CORRUPTION, "mem", NULL);
    assert_string_equal(p->params[1].name, "second");
    assert_true(p->params[1].def[0] == 3);
    assert_int_equal(p->param_size, sizeof(daecl_param_spec));
    daecl_registry_destroy(reg);
    /* smaller than 2.0's (a descriptor that skipped DAECL_PLUGIN_HEAD) */
    reset_mem_plugin();
    mem_plugin.param_size = 0;
    expect_add_refused("start the descriptor with DAECL_PLUGIN_HEAD");
    reset_mem_plugin();
    mem_plugin.param_size = sizeof(daecl_param_spec) + 1; /* elements would be misaligned */
    expect_add_refused("gives its parameter specs as 73 bytes each");
    reset_mem_plugin();
}

/* A plugin's own variadic error helper, through the host's verror. */
static int plugin_fail(daecl_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = daecl_plugin_verror(daecl_host_table(), err, DAECL_EINVAL, fmt, ap);
    va_end(ap);
    return rc;
}

/* The host table's va_list forms: a plugin's own helper formats once. */
static void test_host_table_has_va_list_error_and_log(void **state)
{
    (void)state;
    const daecl_host *h = daecl_host_table();
    assert_true(h->size >= offsetof(daecl_host, verror) + sizeof(void *));
    assert_non_null(h->vlog);
    assert_non_null(h->verror);
    daecl_err err = {0};
    assert_int_equal(plugin_fail(&err, "bad %s %d", "value", 7), DAECL_EINVAL);
    assert_int_equal(err.status, DAECL_EINVAL);
    assert_string_equal(err.msg, "bad value 7");
    /* a helper may wrap the record's own sentence */
    assert_int_equal(plugin_fail(&err, "wrapped: %s", err.msg), DAECL_EINVAL);
    assert_string_equal(err.msg, "wrapped: bad value 7");
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
        cmocka_unit_test(test_rule_file_writable_by_others),
        cmocka_unit_test(test_rule_folder_writable_by_others),
        cmocka_unit_test(test_rule_parent_writable_by_others),
        cmocka_unit_test(test_rule_link_into_folder_writable_by_others),
        cmocka_unit_test(test_rule_sticky_folder_of_another_user),
        cmocka_unit_test(test_rule_file_of_another_user_in_a_shared_folder),
        cmocka_unit_test(test_rule_allows_safe_folders_and_links),
        cmocka_unit_test(test_rule_file_named_for_another_plugin),
        cmocka_unit_test(test_rule_not_a_regular_file),
        cmocka_unit_test(test_rule_abi_and_loading),
        cmocka_unit_test(test_rule_file_name_pattern),
        cmocka_unit_test(test_unknown_plugin_names_the_path_and_the_refusals),
        cmocka_unit_test(test_schema_errors_are_refused),
        cmocka_unit_test(test_parameters_pack_in_schema_order),
        cmocka_unit_test(test_accepted_copy_reads_the_plugins_ops),
        cmocka_unit_test(test_a_1x_plugin_is_refused_in_one_sentence),
        cmocka_unit_test(test_backend_needs_only_its_core_and_bind_brings_its_group),
        cmocka_unit_test(test_a_plugin_named_auto_is_refused_in_one_sentence),
        cmocka_unit_test(test_parameter_specs_are_read_at_the_plugins_element_size),
        cmocka_unit_test(test_host_table_has_va_list_error_and_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
