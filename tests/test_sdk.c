/* Tests for the plugin SDK (cmake/DaeclInstall.cmake, examples/plugin-template):
 * `cmake --install` of this build into a temporary prefix gives headers, a
 * CMake package and a pkg-config file; the installed daecl finds its own
 * plugins; the out-of-tree template builds against the prefix, its plugins
 * match independent references and pass the installed `daecl plugin check`;
 * a variant built through pkg-config with a broken gradient fails it; the
 * installed checker runs the backend conformance suite on a backend; and
 * the template plugins train an epoch, named by name in a config. */
#include "tests/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daecl/elementwise.h"

#define TEMPLATE_DIR DAECL_TEST_SOURCE_DIR "/examples/plugin-template"

static char root[1024], prefix[1100], tpl[1100], daecl_bin[1200];

/* Runs `sh -c cmd` with extra environment; returns the exit status and the
 * output (caller frees). */
static int sh(const char *cmd, char *const env[], char **out)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return test_run(argv, env, out);
}

static void sh_ok(const char *cmd, char *const env[])
{
    char *out = NULL;
    int rc = sh(cmd, env, &out);
    if (rc != 0)
        fail_msg("`%s` exited %d:\n%s", cmd, rc, out);
    free(out);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Installs this build into a fresh prefix and builds the template against it,
 * once per process (about 3 s). */
static void prepare(void)
{
    if (root[0])
        return;
    char *dir = test_tmpdir("sdk");
    snprintf(root, sizeof root, "%s", dir);
    free(dir);
    snprintf(prefix, sizeof prefix, "%s/prefix", root);
    snprintf(tpl, sizeof tpl, "%s/template", root);
    snprintf(daecl_bin, sizeof daecl_bin, "%s/bin/daecl", prefix);
    char cmd[4096];
    /* The already built tree: installing rebuilds nothing. */
    snprintf(cmd, sizeof cmd, "cmake --install '%s' --prefix '%s'", DAECL_TEST_BUILD_DIR, prefix);
    sh_ok(cmd, NULL);
    snprintf(cmd, sizeof cmd,
             "cmake -S '%s' -B '%s' -DCMAKE_PREFIX_PATH='%s' -DCMAKE_BUILD_TYPE=Release && "
             "cmake --build '%s'",
             TEMPLATE_DIR, tpl, prefix, tpl);
    sh_ok(cmd, NULL);
}

static void test_install_gives_headers_package_and_pkg_config(void **state)
{
    (void)state;
    prepare();
    static const char *const files[] = {
        "include/daecl/plugin.h",          "include/daecl/clc.h",
        "include/daecl/philox.h",          "include/daecl/elementwise.h",
        "include/daecl/backend.h",         "include/daecl/error.h",
        "lib/cmake/daecl/daeclConfig.cmake", "lib/cmake/daecl/daeclConfigVersion.cmake",
        "lib/cmake/daecl/daeclTargets.cmake", "lib/cmake/daecl/DaeclPlugin.cmake",
        "lib/cmake/daecl/DaeclEmbed.cmake", "lib/cmake/daecl/embed.cmake",
        "lib/pkgconfig/daecl.pc",           "bin/daecl",
        "lib/daecl/plugins/daecl-backend-cpu.so",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", prefix, files[i]);
        if (!exists(path))
            fail_msg("%s was not installed", path);
    }
    /* pkg-config points into the prefix it was moved to, not the one the
     * build was configured with. */
    char env_path[1300], cmd[256];
    snprintf(env_path, sizeof env_path, "PKG_CONFIG_PATH=%s/lib/pkgconfig", prefix);
    char *env[] = {env_path, NULL}, *out = NULL;
    snprintf(cmd, sizeof cmd, "pkg-config --cflags --libs daecl && pkg-config --modversion daecl");
    assert_int_equal(sh(cmd, env, &out), 0);
    char want[1300];
    snprintf(want, sizeof want, "-I%s/lib/pkgconfig/../../include", prefix);
    if (!strstr(out, want) || !strstr(out, "-ffp-contract=off") || !strstr(out, "-lm") ||
        !strstr(out, "0.1"))
        fail_msg("pkg-config says:\n%s", out);
    free(out);
}

static void test_installed_daecl_finds_its_installed_plugins(void **state)
{
    (void)state;
    prepare();
    char *argv[] = {daecl_bin, "plugins", NULL}, *out = NULL;
    char *env[] = {"DAECL_PLUGIN_PATH=", NULL};
    assert_int_equal(test_run(argv, env, &out), 0);
    char want[1300];
    snprintf(want, sizeof want, "%s/lib/daecl/plugins/daecl-backend-cpu.so", prefix);
    /* Its own, and not the build tree's (which would all be refused as
     * duplicates). */
    if (!strstr(out, want) || strstr(out, DAECL_TEST_PLUGIN_DIR) || strstr(out, "refused"))
        fail_msg("the installed daecl lists:\n%s", out);
    free(out);
}

/* Distance in units in the last place between two positive floats. */
static uint32_t ulps(float a, float b)
{
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua > ub ? ua - ub : ub - ua;
}

static daecl_registry *reg;

static int teardown(void **state)
{
    (void)state;
    daecl_registry_destroy(reg);
    reg = NULL;
    return 0;
}

static const daecl_registry *template_registry(void)
{
    if (!reg) {
        daecl_err err = {0};
        if (daecl_registry_create(tpl, &reg, &err))
            fail_msg("registry over %s: %s", tpl, err.msg);
    }
    return reg;
}

static const daecl_plugin *template_plugin(daecl_plugin_kind kind, const char *name)
{
    const daecl_plugin *p = daecl_registry_find(template_registry(), kind, name, NULL);
    if (!p)
        fail_msg("the template build %s has no %s plugin '%s'", tpl,
                 daecl_plugin_kind_name(kind), name);
    return p;
}

/* dropout against its definition: a fraction p of zeros, the rest x / (1 - p)
 * within 2 ulp; the Laplace nll and grad against formulas in double. */
static void test_template_plugins_match_independent_references(void **state)
{
    (void)state;
    prepare();
    const daecl_plugin *dp = template_plugin(DAECL_KIND_CORRUPTION, "dropout");
    const daecl_corruption_ops *dops = dp->ops;
    enum { N = 40000 };
    static float x[N], xt[N];
    test_fill_uniform(x, N, 7, 0.1f, 2.0f);
    static const float ps[3] = {0.25f, 0.5f, 0.9f};
    for (int t = 0; t < 3; t++) {
        float p = ps[t];
        daecl_noise_key key = {.seed = 11, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                               .epoch = (uint32_t)t};
        daecl_shape shape = {1, {N / 100, 1, 1, 1}};
        daecl_err err = {0};
        assert_int_equal(dops->host_apply(x, xt, 100, N / 100, &shape, &key, &p, &err), 0);
        size_t zeros = 0;
        for (size_t i = 0; i < N; i++) {
            if (xt[i] == 0.0f) {
                zeros++;
                continue;
            }
            float want = (float)((double)x[i] / (1.0 - (double)p));
            if (ulps(xt[i], want) > 2)
                fail_msg("p = %g: x = %.9g became %.9g, want %.9g", p, x[i], xt[i], want);
        }
        double frac = (double)zeros / N, se = sqrt(p * (1.0 - p) / N);
        if (fabs(frac - p) > 5.0 * se)
            fail_msg("p = %g: %.4f of inputs dropped", p, frac);
    }

    const daecl_plugin *lp = template_plugin(DAECL_KIND_LIKELIHOOD, "laplace");
    const daecl_likelihood_ops *lops = lp->ops;
    assert_int_equal(lops->params_per_dim, 1);
    enum { R = 4, D = 50 };
    float lx[R * D], la[R * D], nll[R], grad[R * D], mean[R * D];
    test_fill_uniform(lx, R * D, 3, 0.0f, 1.0f);
    test_fill_uniform(la, R * D, 4, -3.0f, 3.0f);
    const float b = 0.3f;
    daecl_err err = {0};
    assert_int_equal(lops->host_loss_grad(lx, la, R, D, &b, 0.5f, nll, grad, &err), 0);
    assert_int_equal(lops->host_mean(la, mean, R, D, &b, &err), 0);
    for (size_t r = 0; r < R; r++) {
        double sum = 0.0;
        for (size_t j = 0; j < D; j++) {
            size_t i = r * D + j;
            sum += fabs((double)lx[i] - la[i]) / b + log(2.0 * b);
            double g = la[i] > lx[i] ? 1.0 / b : -1.0 / b;
            assert_close(grad[i], 0.5 * g, 1e-6);
            assert_true(mean[i] == la[i]);
        }
        assert_close(nll[r], sum, 1e-5);
    }
}

/* CMocka cuts messages at 4 KiB: a failure shows the FAIL lines and the end. */
static void check_says(const char *file, const char *flag, int want_rc, const char *want_text)
{
    char *argv[] = {daecl_bin, "plugin", "check", (char *)file, (char *)flag, NULL}, *out = NULL;
    /* In a sanitizer build, LeakSanitizer's exit-time scan can crash on the
     * OpenCL driver's worker threads (POCL); tests/test_plugincheck.c checks
     * the same code for leaks in-process, without a driver. */
    char *env[] = {"LSAN_OPTIONS=detect_leaks=0", NULL};
    int rc = test_run(argv, env, &out);
    if (rc != want_rc || !strstr(out, want_text)) {
        print_error("daecl plugin check %s: exit %d (want %d, and '%s' in the report)\n", file, rc,
                    want_rc, want_text);
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
            if (!strstr(line, "  PASS  "))
                print_error("%s\n", line);
        free(out);
        fail();
    }
    free(out);
}

static void test_template_plugins_pass_plugin_check(void **state)
{
    (void)state;
    prepare();
    char path[1300];
    /* Every check, the device comparison included where OpenCL is there. */
    snprintf(path, sizeof path, "%s/daecl-corruption-dropout.so", tpl);
    check_says(path, NULL, 0, "dropout: ");
    check_says(path, NULL, 0, "PASS  noise");
    check_says(path, NULL, 0, "ABI 2.1 (this daecl 2.1)");
    snprintf(path, sizeof path, "%s/daecl-likelihood-laplace.so", tpl);
    check_says(path, NULL, 0, "PASS  gradient");
}

/* A backend author's safety net: the installed `daecl plugin check` runs
 * the conformance suite on a backend file, against the installed cpu
 * backend and built-in plugins. */
static void test_installed_plugin_check_runs_the_conformance_suite_on_a_backend(void **state)
{
    (void)state;
    prepare();
    char path[1300];
    snprintf(path, sizeof path, "%s/lib/daecl/plugins/daecl-backend-cpu.so", prefix);
    check_says(path, NULL, 0, "PASS  gemm");
    check_says(path, NULL, 0, "PASS  likelihood");
    check_says(path, "--no-device", 0, "SKIP  conformance");
}

/* The pkg-config route: embed the .cl with the installed embed.cmake, then
 * one compiler line, with the test hook that flips the gradient's sign. */
static void test_broken_gradient_variant_fails_plugin_check(void **state)
{
    (void)state;
    prepare();
    char dir[1200], env_path[1300], cmd[8192];
    snprintf(dir, sizeof dir, "%s/broken", root);
    snprintf(env_path, sizeof env_path, "PKG_CONFIG_PATH=%s/lib/pkgconfig", prefix);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s' && "
             "cmake -DOUT='%s/laplace_cl.h' -DVAR=daecl_cl_source -DFILES='%s/laplace.cl' "
             "-P '%s/lib/cmake/daecl/embed.cmake' && "
             "cc -std=gnu11 -O2 -fPIC -shared -fvisibility=hidden -DDAECL_TEMPLATE_BROKEN_GRADIENT "
             "-I'%s' -I'%s' $(pkg-config --cflags daecl) '%s/laplace.c' "
             "-o '%s/daecl-likelihood-laplace.so' -Wl,--no-undefined $(pkg-config --libs daecl)",
             dir, dir, TEMPLATE_DIR, prefix, dir, TEMPLATE_DIR, TEMPLATE_DIR, dir);
    char *env[] = {env_path, NULL};
    sh_ok(cmd, env);
    char path[1300];
    snprintf(path, sizeof path, "%s/daecl-likelihood-laplace.so", dir);
    check_says(path, "--no-device", 1, "FAIL  gradient");
    check_says(path, "--no-device", 1, "laplace: 1 of ");
    check_says(path, "--no-device", 1, "FAILED (gradient)");
}

static void test_template_plugins_train_an_epoch_by_name(void **state)
{
    (void)state;
    prepare();
    char data[1200], cfg[1200], run[1200], text[1024];
    snprintf(data, sizeof data, "%s/data.idx", root);
    unsigned char idx[16 + 40 * 9] = {0, 0, 0x08, 3, 0, 0, 0, 40, 0, 0, 0, 3, 0, 0, 0, 3};
    for (size_t i = 16; i < sizeof idx; i++)
        idx[i] = (unsigned char)(i * 29);
    test_write_file(data, idx, sizeof idx);
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", root);
    snprintf(text, sizeof text,
             "data: {train: data.idx, test: data.idx}\n"
             "model: {encoder: [{units: 4}]}\n"
             "corruption: {plugin: dropout, p: 0.2}\n"
             "likelihood: {plugin: laplace, b: 0.5}\n"
             "train: {epochs: 1, batch_size: 8}\n"
             "backend: cpu\n");
    test_write_file(cfg, text, strlen(text));
    snprintf(run, sizeof run, "%s/run", root);
    char env_path[1200];
    snprintf(env_path, sizeof env_path, "DAECL_PLUGIN_PATH=%s", tpl);
    char *argv[] = {daecl_bin, "train", cfg, "--out", run, NULL}, *env[] = {env_path, NULL};
    char *out = NULL;
    int rc = test_run(argv, env, &out);
    if (rc != 0)
        fail_msg("daecl train exited %d:\n%s", rc, out);
    free(out);
    char path[1300];
    snprintf(path, sizeof path, "%s/config.yaml", run);
    char *resolved = test_read_file(path, NULL);
    if (!strstr(resolved, "dropout") || !strstr(resolved, "laplace"))
        fail_msg("the run's config.yaml does not name the template plugins:\n%s", resolved);
    free(resolved);
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    char *metrics = test_read_file(path, NULL);
    assert_non_null(strstr(metrics, "\"epoch\""));
    assert_null(strstr(metrics, "nan"));
    free(metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_gives_headers_package_and_pkg_config),
        cmocka_unit_test(test_installed_daecl_finds_its_installed_plugins),
        cmocka_unit_test(test_template_plugins_match_independent_references),
        cmocka_unit_test(test_template_plugins_pass_plugin_check),
        cmocka_unit_test(test_installed_plugin_check_runs_the_conformance_suite_on_a_backend),
        cmocka_unit_test(test_broken_gradient_variant_fails_plugin_check),
        cmocka_unit_test(test_template_plugins_train_an_epoch_by_name),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
