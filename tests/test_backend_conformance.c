/* daecl tests — backend conformance: the suite of core/conformance.c (the
 * one `daecl plugin check` runs on a backend file), one test per case,
 * comparing the opencl backend with the cpu reference on the same inputs,
 * with gemm=clblast and with gemm=daecl; then the GEMM cases again for
 * gemm=daecl_cpu at every variant `daecl tune` tries and at a few more
 * that put every edge path to work. Then
 * what only the opencl backend has: device listing and choice, DAECL_DEVICE,
 * the program cache seen from a second process, precompiled binaries, and
 * the sentence for a machine without any OpenCL platform. Every test skips
 * when no OpenCL device exists. Run with an argument, the program is one of
 * the helper children (child_main). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/conformance.h"
#include "backends/opencl/gemm_cpu_variants.h"
#include "core/registry.h"
#include "daecl/elementwise.h"
#include "tests/support.h"

/* ---- the backends ------------------------------------------------------------------ */

typedef struct be {
    const daecl_plugin *plugin;
    const daecl_backend_ops *ops;
    void *ctx;
} be;

static be ref; /* the cpu reference */
static be dut; /* the backend under test */
static const char *dut_name = "opencl";
static int no_device; /* no OpenCL device on this machine: every test skips */
/* DAECL_CONFORMANCE_SMALL=1: the op checks only, each at the first, small
 * cases of its table, for checking OpenCL implementations thousands of
 * times slower than a device (tests/test_oclgrind.c runs Oclgrind so). */
static int small;
static daecl_err err;

#define N_BUILTIN_PLUGINS 7
static const struct {
    daecl_plugin_kind kind;
    const char *name;
} builtin_plugins[N_BUILTIN_PLUGINS] = {
    {DAECL_KIND_CORRUPTION, "none"},
    {DAECL_KIND_CORRUPTION, "masking"},
    {DAECL_KIND_CORRUPTION, "gaussian"},
    {DAECL_KIND_CORRUPTION, "salt_pepper"},
    {DAECL_KIND_LIKELIHOOD, "bernoulli"},
    {DAECL_KIND_LIKELIHOOD, "gaussian"},
    {DAECL_KIND_LIKELIHOOD, "gaussian_learned"},
};

static void check_ok(int rc, const char *what, const char *who)
{
    if (rc != 0)
        fail_msg("%s on %s failed (%d): %s", what, who, rc, err.msg);
}

#define CALL(b, op, ...) check_ok((b).ops->op((b).ctx, __VA_ARGS__, &err), #op, (b).plugin->name)

static daecl_slice S(daecl_buf *b, size_t off)
{
    return (daecl_slice){b, off};
}

/* Resolved values for a backend's schema: defaults, then name/value string
 * pairs (ENUM and STRING by text, INT by number), NULL-terminated. */
static const daecl_param_value *values_with(const daecl_plugin *p, ...)
{
    static daecl_param_value v[16];
    memcpy(v, test_default_values(p), sizeof v[0] * p->n_params);
    va_list ap;
    va_start(ap, p);
    for (const char *name; (name = va_arg(ap, const char *)) != NULL;) {
        const char *val = va_arg(ap, const char *);
        uint32_t i;
        for (i = 0; i < p->n_params && strcmp(p->params[i].name, name) != 0; i++)
            ;
        if (i == p->n_params)
            fail_msg("backend %s has no parameter %s", p->name, name);
        const daecl_param_spec *s = &p->params[i];
        v[i].str = val;
        if (s->type == DAECL_PARAM_INT)
            v[i].num[0] = atof(val);
        if (s->type == DAECL_PARAM_ENUM) {
            double idx = 0;
            for (const char *c = s->choices; *c; idx++) {
                size_t len = strcspn(c, "|");
                if (len == strlen(val) && strncmp(c, val, len) == 0)
                    break;
                c += len + (c[len] == '|');
            }
            v[i].num[0] = idx;
        }
    }
    va_end(ap);
    return v;
}

static int open_be(be *b, const char *name, const daecl_param_value *values)
{
    b->plugin = test_plugin(DAECL_KIND_BACKEND, name);
    b->ops = b->plugin->ops;
    return b->ops->open(daecl_host_table(), values, &b->ctx, &err);
}

/* Is there an OpenCL device at all? Asked once. */
static int have_device(void)
{
    static int known = -1;
    if (known < 0) {
        const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
        const daecl_backend_ops *o = p->ops;
        daecl_device_info info[8];
        size_t n = 0;
        daecl_err e = {0};
        known = test_list_devices(o, info, 8, &n, &e) == 0 && n > 0;
        if (!known)
            print_message("no OpenCL device (%s): skipping\n", e.msg);
    }
    return known;
}

/* The CPU GEMM variant setup_daecl_cpu opens with. */
static const char *cpu_variant;

static int setup_with_gemm(const char *gemm)
{
    if (open_be(&ref, "cpu", NULL) != 0) {
        print_error("cpu backend: %s\n", err.msg);
        return -1;
    }
    no_device = !have_device();
    if (no_device)
        return 0;
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const char *variant = strcmp(gemm, "daecl_cpu") == 0 ? cpu_variant : "";
    if (open_be(&dut, dut_name, values_with(p, "gemm", gemm, "gemm_cpu", variant, NULL)) != 0) {
        print_error("%s backend (gemm=%s %s): %s\n", dut_name, gemm, variant, err.msg);
        return -1;
    }
    daecl_device_info info;
    dut.ops->describe(dut.ctx, &info, sizeof info);
    print_message("%s backend on %s (%s), gemm=%s %s\n", dut_name, info.name, info.platform, gemm,
                  variant);
    return 0;
}

static int setup_clblast(void **state)
{
    (void)state;
    return setup_with_gemm("clblast");
}

static int setup_daecl(void **state)
{
    (void)state;
    return setup_with_gemm("daecl");
}

static int setup_daecl_cpu(void **state)
{
    (void)state;
    return setup_with_gemm("daecl_cpu");
}

static int teardown(void **state)
{
    (void)state;
    if (dut.ctx)
        dut.ops->close(dut.ctx);
    if (ref.ctx)
        ref.ops->close(ref.ctx);
    dut.ctx = ref.ctx = NULL;
    return 0;
}

#define NEED_DEVICE()                                                                              \
    do {                                                                                           \
        if (no_device)                                                                             \
            skip();                                                                                \
    } while (0)

/* ---- device and memory ---------------------------------------------------------------- */

static void test_list_devices_marks_one_default_with_a_note(void **state)
{
    (void)state;
    NEED_DEVICE();
    daecl_device_info info[64];
    size_t n = 0;
    check_ok(test_list_devices(dut.ops, info, 64, &n, &err), "list_devices",
             dut_name);
    assert_true(n >= 1);
    size_t defaults = 0, pocl = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        defaults += info[i].is_default;
        if (!info[i].note[0])
            fail_msg("device %s has no note", info[i].name);
        if (!info[i].name[0] || !info[i].platform[0] || !info[i].type[0])
            fail_msg("device %zu is described without a name, platform or type", i);
        if (strstr(info[i].platform, "Portable Computing Language"))
            pocl = i;
    }
    assert_int_equal(defaults, 1);
    daecl_device_info opened;
    dut.ops->describe(dut.ctx, &opened, sizeof opened);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(info[i].name, opened.name) == 0 && info[i].is_default;
    if (!found)
        fail_msg("the opened device %s is not the listed default", opened.name);
    if (pocl != (size_t)-1) {
        /* POCL's CPU device: a compiler, a positive size, a note. */
        assert_true(info[pocl].compiler);
        assert_true(info[pocl].compute_units >= 1);
        assert_true(info[pocl].global_mem_bytes > 0 && info[pocl].max_alloc_bytes > 0);
        assert_string_equal(info[pocl].type, "cpu");
        if (n == 1 && !strstr(info[pocl].note, "the only device"))
            fail_msg("POCL as the only device says: %s", info[pocl].note);
    }
    /* Asking for fewer than exist gives that many. */
    size_t one = 0;
    check_ok(test_list_devices(dut.ops, info, 1, &one, &err), "list_devices",
             dut_name);
    assert_int_equal(one, 1);
}

/* backend.gemm_cpu is checked when the device opens: a variant out of
 * range, or one missing a parameter, is a config error that shows the
 * syntax and the ranges. */
static void test_a_bad_gemm_cpu_variant_is_refused_with_the_syntax(void **state)
{
    (void)state;
    NEED_DEVICE();
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    static const char *const bad[] = {"MR=9 NV=2 VW=16 KU=1", "MR=4 NV=2 VW=16", "fast",
                                      "MR=4 NV=2 VW=12 KU=1", "MR=4 MR=4 NV=2 VW=16 KU=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        be b = {0};
        memset(&err, 0, sizeof err);
        int rc =
            open_be(&b, dut_name, values_with(p, "gemm", "daecl_cpu", "gemm_cpu", bad[i], NULL));
        if (rc == 0)
            b.ops->close(b.ctx);
        if (rc != DAECL_ECONFIG || !strstr(err.msg, "gemm_cpu") ||
            !strstr(err.msg, "MR=4 NV=2 VW=16 KU=1") || !strstr(err.msg, bad[i]))
            fail_msg("gemm_cpu=\"%s\": want a config error showing the syntax (%d): %s", bad[i],
                     rc, err.msg);
    }
}

static void test_alloc_past_the_device_limit_names_the_buffer_and_a_remedy(void **state)
{
    (void)state;
    NEED_DEVICE();
    daecl_device_info info;
    dut.ops->describe(dut.ctx, &info, sizeof info);
    daecl_buf *b = NULL;
    memset(&err, 0, sizeof err);
    int rc =
        dut.ops->alloc(dut.ctx, (size_t)info.max_alloc_bytes + 4096, "the training set", &b, &err);
    assert_int_equal(rc, DAECL_ENOMEM);
    assert_null(b);
    if (!strstr(err.msg, "the training set") || !strstr(err.msg, "MiB") ||
        !strstr(err.msg, info.name) || !strstr(err.msg, "train.batch_size"))
        fail_msg("out-of-memory sentence lacks what, size, device or remedy: %s", err.msg);
}

/* ---- the suite in core/conformance.c, one test per case ------------------------------------ */

static void report(void *user, const char *name, int verdict, const char *sentence)
{
    (void)user;
    if (verdict == DAECL_CONFORMANCE_FAIL)
        fail_msg("%s: %s", name, sentence);
    print_message("%s %s: %s\n", verdict == DAECL_CONFORMANCE_SKIP ? "SKIP" : "ok  ", name,
                  sentence);
}

static void run_case(const char *name)
{
    daecl_conformance_side d = {dut.ops, dut.ctx, dut.plugin->name};
    daecl_conformance_side r = {ref.ops, ref.ctx, ref.plugin->name};
    daecl_conformance_opts opts = {.small = small, .only = name, .plugins = test_registry()};
    memset(&err, 0, sizeof err);
    if (daecl_conformance_run(&d, &r, &opts, report, NULL, &err) != 0)
        fail_msg("%s", err.msg);
}

#define CONFORMANCE_TEST(fn, case_name)                                                            \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        NEED_DEVICE();                                                                             \
        run_case(case_name);                                                                       \
    }

CONFORMANCE_TEST(test_alloc_is_zeroed_and_write_read_honour_byte_offsets, "memory")
CONFORMANCE_TEST(test_fill_honours_element_offsets, "fill")
CONFORMANCE_TEST(test_copy_honours_element_offsets, "copy")
CONFORMANCE_TEST(test_out_of_range_slices_are_refused_naming_the_op, "refusals")
CONFORMANCE_TEST(test_gemm_matches_the_reference_in_every_transpose_with_offsets_and_ld, "gemm")
CONFORMANCE_TEST(test_gemm_with_beta_zero_ignores_nan_in_c, "gemm_beta0")
CONFORMANCE_TEST(test_gemm_with_empty_inner_dimension_scales_c, "gemm_k0")
CONFORMANCE_TEST(test_bias_act_matches_the_reference_for_every_activation, "bias_act")
CONFORMANCE_TEST(test_sigmoid_is_finite_for_large_inputs_and_relu_passes_nan, "act_extremes")
CONFORMANCE_TEST(test_act_grad_matches_the_reference_from_the_output, "act_grad")
CONFORMANCE_TEST(test_col_sum_matches_the_reference_with_beta, "col_sum")
CONFORMANCE_TEST(test_sum_matches_the_reference_at_odd_sizes, "sum")
CONFORMANCE_TEST(test_gather_copies_the_indexed_rows, "gather")
CONFORMANCE_TEST(test_softmax_xent_matches_the_reference, "softmax_xent")
CONFORMANCE_TEST(test_optim_update_matches_the_reference_for_sgd_adam_adamw, "optim_update")
CONFORMANCE_TEST(test_corruption_on_the_device_is_bit_identical_to_the_host, "corrupt")
CONFORMANCE_TEST(test_likelihood_on_the_device_matches_the_reference, "likelihood")

/* ---- plugins on the device: what only opencl promises ---------------------------------------- */

/* An in-test corruption plugin: host op only, or a broken cl_source. */
static int copy_apply(const float *x, float *xt, size_t n_rows, size_t dim,
                      const daecl_shape *shape, const daecl_noise_key *key, const float *params,
                      daecl_err *e)
{
    (void)shape;
    (void)key;
    (void)params;
    (void)e;
    memcpy(xt, x, n_rows * dim * sizeof *x);
    return 0;
}

static void test_bind_without_cl_source_is_not_supported(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const daecl_corruption_ops host_only = {
        .size = sizeof(daecl_corruption_ops), .host_apply = copy_apply, .cl_source = NULL};
    static const daecl_plugin plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                        .name = "host_only",
                                        .version = "1.0.0",
                                        .summary = "test",
                                        .license = "MIT",
                                        .ops = &host_only};
    static const daecl_likelihood_ops host_lik = {
        .size = sizeof(daecl_likelihood_ops), .params_per_dim = 2, .cl_source = NULL};
    static const daecl_plugin lik = {DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
                                     .name = "host_lik",
                                     .version = "1.0.0",
                                     .summary = "test",
                                     .license = "MIT",
                                     .ops = &host_lik};
    void *bound = (void *)&plugin;
    memset(&err, 0, sizeof err);
    assert_int_equal(dut.ops->bind(dut.ctx, &plugin, NULL, 0, &bound, &err), DAECL_ENOTSUP);
    assert_null(bound);
    assert_int_equal(dut.ops->bind(dut.ctx, &lik, NULL, 0, &bound, &err), DAECL_ENOTSUP);
    assert_null(bound);
    dut.ops->unbind(dut.ctx, NULL);
}

static int logged_errors;

static void counting_log(int level, const char *who, const char *fmt, ...)
{
    (void)who;
    (void)fmt;
    logged_errors += level == DAECL_LOG_ERROR;
}

static void counting_vlog(int level, const char *who, const char *fmt, va_list ap)
{
    (void)who;
    (void)fmt;
    (void)ap;
    logged_errors += level == DAECL_LOG_ERROR;
}

static void test_a_plugin_source_that_does_not_compile_names_the_plugin_and_the_log(void **state)
{
    (void)state;
    NEED_DEVICE();
    static const daecl_corruption_ops broken = {
        .size = sizeof(daecl_corruption_ops),
        .host_apply = copy_apply,
        .cl_source = "static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)\n"
                     "{\n    return x + no_such_variable;\n}\n"};
    static const daecl_plugin plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                        .name = "broken",
                                        .version = "1.0.0",
                                        .summary = "test",
                                        .license = "MIT",
                                        .ops = &broken};
    /* A host whose log counts lines: the whole build log goes there, and
     * stays out of the test output. */
    static daecl_host quiet;
    quiet = *daecl_host_table();
    quiet.log = counting_log;
    quiet.vlog = counting_vlog;
    void *ctx = NULL, *bound = NULL;
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    check_ok(dut.ops->open(&quiet, values_with(p, "gemm", "daecl", NULL), &ctx, &err), "open",
             dut_name);
    memset(&err, 0, sizeof err);
    logged_errors = 0;
    int rc = dut.ops->bind(ctx, &plugin, NULL, 0, &bound, &err);
    dut.ops->close(ctx);
    assert_int_equal(rc, DAECL_EPLUGIN);
    assert_null(bound);
    if (!strstr(err.msg, "corruption/broken") || !strstr(err.msg, "no_such_variable"))
        fail_msg("build failure does not name the plugin and show the log: %s", err.msg);
    assert_true(logged_errors >= 2); /* a heading and the log's lines */
}

/* ---- the opencl backend's own behaviour --------------------------------------------------- */

static int run_child(const char *mode, const char *arg, char *const env[], char **out);

static int setup_opencl(void **state)
{
    (void)state;
    if (open_be(&ref, "cpu", NULL) != 0)
        return -1;
    /* Asked in a child: this process must not touch OpenCL before its
     * children have run, since CUDA's OpenCL does not show its GPU to a
     * child forked from a process that has initialised it. */
    char *out = NULL;
    int rc = run_child("--child-list", "", NULL, &out);
    no_device = rc != 0;
    if (no_device)
        print_message("no OpenCL device (%s): skipping\n", out);
    free(out);
    return 0;
}

static char *self_exe(void)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    assert_true(n > 0);
    path[n] = '\0';
    return path;
}

/* Runs this program in helper mode `mode` (with arg) and extra environment;
 * returns its exit status and output. */
static int run_child(const char *mode, const char *arg, char *const env[], char **out)
{
    char *argv[] = {self_exe(), (char *)mode, (char *)(arg ? arg : ""), NULL};
    return test_run(argv, env, out);
}

/* The last "programs so far" line of a debug log, or fails. */
static const char *last_counts(const char *log)
{
    static char line[256];
    const char *p = log, *last = NULL;
    while ((p = strstr(p, "programs so far: ")) != NULL)
        last = p++;
    if (!last)
        fail_msg("no program counters in the log:\n%s", log);
    size_t len = strcspn(last, "\n");
    snprintf(line, sizeof line, "%.*s", (int)len, last);
    return line;
}

static size_t count_bin_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 4 && strcmp(e->d_name + len - 4, ".bin") == 0;
    }
    closedir(d);
    return n;
}

/* The programs a full run builds: ops, daecl GEMM, the seven plugins. */
#define N_PROGRAMS (2 + N_BUILTIN_PLUGINS)

/* A child's own program cache: a new folder (dir, freed by the caller),
 * its opencl/ subfolder (sub), and the child's environment (env). */
typedef struct child_cache {
    char *dir;
    char env_dir[1200], sub[1200];
    char *env[5];
} child_cache;

static void child_cache_init(child_cache *c, const char *tag)
{
    c->dir = test_tmpdir(tag);
    snprintf(c->env_dir, sizeof c->env_dir, "DAECL_CACHE_DIR=%s", c->dir);
    snprintf(c->sub, sizeof c->sub, "%s/opencl", c->dir);
    char *env[] = {c->env_dir, "DAECL_LOG=debug", "DAECL_CACHE=1", "DAECL_DEVICE=", NULL};
    memcpy(c->env, env, sizeof env);
}

static void test_a_second_process_loads_every_program_from_the_cache(void **state)
{
    (void)state;
    NEED_DEVICE();
    child_cache cc;
    child_cache_init(&cc, "oclcache");
    char *dir = cc.dir, *sub = cc.sub, **env = cc.env;
    char *out = NULL, want[128];

    int rc = run_child("--child-programs", "", env, &out);
    if (rc != 0)
        fail_msg("first child failed (%d):\n%s", rc, out);
    snprintf(want, sizeof want, "programs so far: %d compiled, 0 from cache, 0 from binaries",
             N_PROGRAMS);
    if (strcmp(last_counts(out), want) != 0 || !strstr(out, "compiled from source"))
        fail_msg("first child: expected '%s', log:\n%s", want, out);
    assert_int_equal(count_bin_files(sub), N_PROGRAMS);
    free(out);

    rc = run_child("--child-programs", "", env, &out);
    if (rc != 0)
        fail_msg("second child failed (%d):\n%s", rc, out);
    snprintf(want, sizeof want, "programs so far: 0 compiled, %d from cache, 0 from binaries",
             N_PROGRAMS);
    if (strcmp(last_counts(out), want) != 0 || !strstr(out, "loaded from cache"))
        fail_msg("second child: expected '%s', log:\n%s", want, out);
    free(out);

    /* A truncated file and one with a foreign key are recompiled, quietly. */
    DIR *d = opendir(sub);
    assert_non_null(d);
    int spoiled = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && spoiled < 2;) {
        if (!strstr(e->d_name, ".bin"))
            continue;
        char path[2400];
        snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
        size_t n = 0;
        char *bytes = test_read_file(path, &n);
        assert_true(n > 64);
        if (spoiled == 0)
            n = 40;
        else
            bytes[20] ^= 0x5a; /* inside the stored key */
        test_write_file(path, bytes, n);
        free(bytes);
        spoiled++;
    }
    closedir(d);
    rc = run_child("--child-programs", "", env, &out);
    if (rc != 0)
        fail_msg("third child failed (%d):\n%s", rc, out);
    snprintf(want, sizeof want, "programs so far: 2 compiled, %d from cache, 0 from binaries",
             N_PROGRAMS - 2);
    if (strcmp(last_counts(out), want) != 0)
        fail_msg("third child: expected '%s', log:\n%s", want, out);
    free(out);
    free(dir);
}

/* Writing a program into the cache makes POCL generate code for all its
 * kernels, which held up the first step by seconds: a compiled program
 * reaches the cache once a training step has run (an optimiser update,
 * then a read), and by close at the latest; and a run with gemm:
 * daecl_cpu builds neither daecl's tiled GEMM nor another variant. */
static void test_programs_reach_the_cache_after_the_first_step_and_unused_ones_are_not_built(
    void **state)
{
    (void)state;
    NEED_DEVICE();
    child_cache cc;
    child_cache_init(&cc, "oclsave");
    char *out = NULL;
    int rc = run_child("--child-step", cc.sub, cc.env, &out);
    /* ops, the default CPU GEMM variant, masking */
    if (rc != 0 || !strstr(out, "before the step: 0 cached") ||
        strcmp(last_counts(out), "programs so far: 3 compiled, 0 from cache, 0 from binaries") != 0)
        fail_msg("step child (%d): want 3 programs compiled and none cached before the step; "
                 "log:\n%s", rc, out);
    int variants = 0;
    for (const char *q = out; (q = strstr(q, "program 'daecl-gemm-cpu(")) != NULL; q++)
        variants += strncmp(q + strcspn(q, ":"), ": compiled from source", 22) == 0;
    if (strstr(out, "program 'daecl-gemm'") || variants != 1)
        fail_msg("step child built a GEMM program it does not use; log:\n%s", out);
    if (count_bin_files(cc.sub) != 3)
        fail_msg("step child: %zu programs in the cache after close, want 3; log:\n%s",
                 count_bin_files(cc.sub), out);
    free(out);
    free(cc.dir);
}

/* "opened NAME (" from a child's debug log: which device it used. */
static void opened_device(const char *log, char *out, size_t n)
{
    const char *p = strstr(log, "opened ");
    if (!p)
        fail_msg("no 'opened' line in the log:\n%s", log);
    p += strlen("opened ");
    size_t len = strcspn(p, "(\n");
    while (len > 0 && p[len - 1] == ' ')
        len--;
    snprintf(out, n, "%.*s", (int)len, p);
}

static void test_precompiled_binaries_run_without_compiling_anything(void **state)
{
    (void)state;
    NEED_DEVICE();
    /* Both steps in fresh processes: a GPU in exclusive-process mode serves
     * only one process, and this one may hold it later. */
    char *dir = test_tmpdir("oclbin");
    char *env_pre[] = {"DAECL_LOG=debug", "DAECL_DEVICE=", NULL};
    char *out = NULL, want[128], dev_pre[200], dev_bin[200];
    int rc = run_child("--child-precompile", dir, env_pre, &out);
    if (rc != 0 || !strstr(out, "precompile child ok"))
        fail_msg("precompile child failed (%d):\n%s", rc, out);
    opened_device(out, dev_pre, sizeof dev_pre);
    free(out);
    assert_int_equal(count_bin_files(dir), N_PROGRAMS);

    char *env[] = {"DAECL_LOG=debug", "DAECL_CACHE=0", "DAECL_DEVICE=", NULL};
    rc = run_child("--child-binaries", dir, env, &out);
    if (rc != 0)
        fail_msg("binaries child failed (%d):\n%s", rc, out);
    opened_device(out, dev_bin, sizeof dev_bin);
    assert_string_equal(dev_bin, dev_pre);
    print_message("precompiled and loaded binaries on %s\n", dev_bin);
    snprintf(want, sizeof want, "programs so far: 0 compiled, 0 from cache, %d from binaries",
             N_PROGRAMS);
    if (strcmp(last_counts(out), want) != 0 || !strstr(out, "GEMM by daecl's kernel") ||
        !strstr(out, "binaries child ok"))
        fail_msg("binaries child: expected '%s', log:\n%s", want, out);
    free(out);
    free(dir);
}

static void test_a_binaries_folder_without_the_programs_is_refused_with_the_fix(void **state)
{
    (void)state;
    NEED_DEVICE();
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    dut.plugin = p;
    dut.ops = p->ops;
    char *empty = test_tmpdir("oclbin-empty");
    memset(&err, 0, sizeof err);
    assert_int_equal(
        dut.ops->open(daecl_host_table(), values_with(p, "binaries", empty, NULL), &dut.ctx, &err),
        DAECL_EDEVICE);
    assert_null(dut.ctx);
    if (!strstr(err.msg, "daecl-kernels") || !strstr(err.msg, "daecl precompile --out DIR"))
        fail_msg("missing binary sentence: %s", err.msg);
    /* CLBlast cannot run from binaries. */
    assert_int_equal(dut.ops->open(daecl_host_table(),
                                   values_with(p, "binaries", empty, "gemm", "clblast", NULL),
                                   &dut.ctx, &err),
                     DAECL_ECONFIG);
    if (!strstr(err.msg, "gemm=clblast"))
        fail_msg("clblast with binaries: %s", err.msg);
    free(empty);
}

static void test_no_platform_says_how_to_install_one(void **state)
{
    (void)state;
    char *empty = test_tmpdir("no-icd");
    char vendors[1200];
    snprintf(vendors, sizeof vendors, "OCL_ICD_VENDORS=%s", empty);
    char *env[] = {vendors, "DAECL_DEVICE=", NULL};
    char *out = NULL;
    int rc = run_child("--child-no-platform", "", env, &out);
    if (rc == 3) {
        /* Some loaders (NVIDIA's own libOpenCL) find their platform
         * without the vendors folder: nothing to test there. */
        print_message("the OpenCL loader ignores OCL_ICD_VENDORS: %s", out);
        free(out);
        free(empty);
        skip();
    }
    if (rc != 0 || !strstr(out, "no OpenCL platform is installed") ||
        !strstr(out, "apt-get install pocl-opencl-icd"))
        fail_msg("no-platform child (%d) did not give the install sentence:\n%s", rc, out);
    free(out);
    free(empty);
}

static void expect_bad_device_env(const char *value, const char *fragment)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_backend_ops *o = p->ops;
    setenv("DAECL_DEVICE", value, 1);
    void *ctx = NULL;
    memset(&err, 0, sizeof err);
    int rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    unsetenv("DAECL_DEVICE");
    if (ctx)
        o->close(ctx);
    char quoted[300];
    snprintf(quoted, sizeof quoted, "DAECL_DEVICE=\"%s\"", value);
    if (rc != DAECL_ECONFIG || !strstr(err.msg, quoted) || !strstr(err.msg, fragment) ||
        !strstr(err.msg, "DAECL_DEVICE=\"platform=NVIDIA,type=gpu,index=0\""))
        fail_msg("DAECL_DEVICE=%s gave %d: %s", value, rc, err.msg);
}

static void test_daecl_device_overrides_the_choice_and_bad_values_show_the_syntax(void **state)
{
    (void)state;
    NEED_DEVICE();
    expect_bad_device_env("type=gpux", "gpux");
    expect_bad_device_env("index=abc", "abc");
    expect_bad_device_env("frobnicate=1", "frobnicate");
    expect_bad_device_env("cpu,,0", "empty");
    expect_bad_device_env("gemm=fast", "fast");
    expect_bad_device_env("gemm_cpu=MR=9 NV=2 VW=16 KU=1", "MR=9 NV=2");
    expect_bad_device_env("2000", "2000");

    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_backend_ops *o = p->ops;
    daecl_device_info info[64];
    size_t n = 0;
    check_ok(test_list_devices(o, info, 64, &n, &err), "list_devices", dut_name);
    /* The bare index of the last device opens that device. */
    char value[64];
    snprintf(value, sizeof value, "%zu", n - 1);
    setenv("DAECL_DEVICE", value, 1);
    void *ctx = NULL;
    int rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    unsetenv("DAECL_DEVICE");
    check_ok(rc, "open with DAECL_DEVICE=<last index>", p->name);
    daecl_device_info got;
    o->describe(ctx, &got, sizeof got);
    o->close(ctx);
    assert_string_equal(got.name, info[n - 1].name);
    if (!strstr(got.note, "chosen by index="))
        fail_msg("note of a device chosen by index: %s", got.note);
    /* One past the end, and a type nobody has: sentences that list the devices. */
    snprintf(value, sizeof value, "index=%zu", n);
    setenv("DAECL_DEVICE", value, 1);
    rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    unsetenv("DAECL_DEVICE");
    assert_int_equal(rc, DAECL_EDEVICE);
    if (!strstr(err.msg, "past the end") || !strstr(err.msg, info[0].name))
        fail_msg("index past the end: %s", err.msg);
    const char *types[] = {"gpu", "accelerator", "cpu"};
    for (int t = 0; t < 3; t++) {
        int present = 0;
        for (size_t i = 0; i < n; i++)
            present |= strcmp(info[i].type, types[t]) == 0;
        if (present)
            continue;
        snprintf(value, sizeof value, "type=%s", types[t]);
        setenv("DAECL_DEVICE", value, 1);
        rc = o->open(daecl_host_table(), NULL, &ctx, &err);
        unsetenv("DAECL_DEVICE");
        assert_int_equal(rc, DAECL_EDEVICE);
        if (!strstr(err.msg, "no OpenCL device matches") || !strstr(err.msg, "daecl devices"))
            fail_msg("type nobody has: %s", err.msg);
        break;
    }
}

/* ---- helper modes: this program run as a child ---------------------------------------- */

/* A plugin's packed defaults. */
static size_t pack(const daecl_plugin *p, float *packed)
{
    return daecl_params_pack(p->params, p->n_params, test_default_values(p), packed);
}

static void count_failures(void *user, const char *name, int verdict, const char *sentence)
{
    if (verdict == DAECL_CONFORMANCE_FAIL) {
        fprintf(stderr, "%s: %s\n", name, sentence);
        ++*(int *)user;
    }
}

/* Opens the backend (gemm=daecl, so its GEMM program is built too), binds
 * every built-in plugin, and checks one GEMM and one corruption against the
 * references: what a training run would build. */
static int child_programs(const daecl_param_value *values, const char *tag)
{
    if (open_be(&dut, dut_name, values) != 0 || open_be(&ref, "cpu", NULL) != 0) {
        fprintf(stderr, "%s child: open: %s\n", tag, err.msg);
        return 1;
    }
    void *bound[N_BUILTIN_PLUGINS];
    for (int i = 0; i < N_BUILTIN_PLUGINS; i++) {
        const daecl_plugin *q = test_plugin(builtin_plugins[i].kind, builtin_plugins[i].name);
        float packed[DAECL_MAX_PACKED_PARAMS];
        size_t n_packed = pack(q, packed);
        if (dut.ops->bind(dut.ctx, q, packed, n_packed, &bound[i], &err) != 0) {
            fprintf(stderr, "%s child: bind %s: %s\n", tag, q->name, err.msg);
            return 1;
        }
    }
    /* one GEMM against the reference, through the suite's case */
    daecl_conformance_side d = {dut.ops, dut.ctx, dut_name}, r = {ref.ops, ref.ctx, "cpu"};
    daecl_conformance_opts opts = {.small = 1, .only = "gemm_k0"};
    int gemm_failed = 0;
    if (daecl_conformance_run(&d, &r, &opts, count_failures, &gemm_failed, &err) || gemm_failed) {
        fprintf(stderr, "%s child: gemm differs from the reference\n", tag);
        return 1;
    }
    /* masking on the device against its host op */
    const daecl_plugin *mask = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    float packed[DAECL_MAX_PACKED_PARAMS];
    pack(mask, packed);
    const daecl_noise_key key = {.seed = 0xDEADBEEFCAFEF00Dull, .stream = 2};
    float x[91], want[91], got[91];
    test_fill_uniform(x, 91, 3, 0, 1);
    daecl_buf *bx = NULL, *bt = NULL;
    CALL(dut, alloc, sizeof x, "x", &bx);
    CALL(dut, alloc, sizeof got, "xt", &bt);
    CALL(dut, write, bx, 0, x, sizeof x);
    const daecl_shape shape = {1, {13, 1, 1, 1}};
    CALL(dut, corrupt, bound[1], S(bx, 0), S(bt, 0), 7, 13, &shape, &key);
    ((const daecl_corruption_ops *)mask->ops)
        ->host_apply(x, want, 7, 13, &shape, &key, packed, &err);
    check_ok(dut.ops->finish(dut.ctx, &err), "finish", dut_name);
    CALL(dut, read, bt, 0, got, sizeof got);
    int same = memcmp(got, want, sizeof want) == 0;
    for (int i = 0; i < N_BUILTIN_PLUGINS; i++)
        dut.ops->unbind(dut.ctx, bound[i]);
    dut.ops->free(dut.ctx, bx);
    dut.ops->free(dut.ctx, bt);
    dut.ops->close(dut.ctx);
    ref.ops->close(ref.ctx);
    if (!same) {
        fprintf(stderr, "%s child: corruption differs from the host\n", tag);
        return 1;
    }
    fprintf(stderr, "%s child ok\n", tag);
    return 0;
}

/* Opens with gemm: daecl_cpu, binds masking, and says how many programs
 * are in the cache folder `sub` before a training step; then runs one (a
 * GEMM, an optimiser update, a read) and closes. */
static int child_step(const char *sub)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_plugin *mask = test_plugin(DAECL_KIND_CORRUPTION, "masking");
    float packed[DAECL_MAX_PACKED_PARAMS];
    size_t n_packed = pack(mask, packed);
    void *bound = NULL;
    if (open_be(&dut, dut_name, values_with(p, "gemm", "daecl_cpu", NULL)) != 0 ||
        dut.ops->bind(dut.ctx, mask, packed, n_packed, &bound, &err) != 0) {
        fprintf(stderr, "step child: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "before the step: %zu cached\n", count_bin_files(sub));
    enum { N = 8 };
    float a[N * N], w[N * N];
    test_fill_uniform(a, N * N, 5, -1, 1);
    daecl_buf *ba = NULL, *bc = NULL, *bw = NULL;
    CALL(dut, alloc, sizeof a, "a", &ba);
    CALL(dut, alloc, sizeof a, "c", &bc);
    CALL(dut, alloc, sizeof w, "w", &bw);
    CALL(dut, write, ba, 0, a, sizeof a);
    CALL(dut, gemm, 0, 0, N, N, N, 1.0f, S(ba, 0), N, S(ba, 0), N, 0.0f, S(bc, 0), N);
    const daecl_optim_step sgd = {.kind = DAECL_OPTIM_SGD, .lr = 0.5f};
    const daecl_slice none = {NULL, 0};
    CALL(dut, optim_update, &sgd, S(bw, 0), S(bc, 0), none, none, N * N);
    CALL(dut, read, bw, 0, w, sizeof w);
    dut.ops->unbind(dut.ctx, bound);
    dut.ops->free(dut.ctx, ba);
    dut.ops->free(dut.ctx, bc);
    dut.ops->free(dut.ctx, bw);
    dut.ops->close(dut.ctx);
    fprintf(stderr, "step child ok\n");
    return 0;
}

/* Opens with CLBlast (so precompile must build the daecl GEMM itself) and
 * writes every program into dir. */
static int child_precompile(const char *dir)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_plugin *plugins[N_BUILTIN_PLUGINS + 1];
    for (int i = 0; i < N_BUILTIN_PLUGINS; i++)
        plugins[i] = test_plugin(builtin_plugins[i].kind, builtin_plugins[i].name);
    plugins[N_BUILTIN_PLUGINS] = p; /* a backend in the list is skipped */
    const daecl_ext_precompile *pre = daecl_backend_extension(
        p->ops, DAECL_EXT_PRECOMPILE, offsetof(daecl_ext_precompile, precompile) + sizeof(void *));
    if (!pre) {
        fprintf(stderr, "precompile child: the backend has no %s extension\n",
                DAECL_EXT_PRECOMPILE);
        return 1;
    }
    if (open_be(&dut, dut_name, values_with(p, "gemm", "clblast", NULL)) != 0 ||
        pre->precompile(dut.ctx, plugins, N_BUILTIN_PLUGINS + 1, dir, &err) != 0) {
        fprintf(stderr, "precompile child: %s\n", err.msg);
        return 1;
    }
    dut.ops->close(dut.ctx);
    fprintf(stderr, "precompile child ok\n");
    return 0;
}

static int child_no_platform(void)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    const daecl_backend_ops *o = p->ops;
    daecl_device_info info[4];
    size_t n = 0;
    void *ctx = NULL;
    daecl_err e1 = {0}, e2 = {0};
    int rc1 = test_list_devices(o, info, 4, &n, &e1);
    if (rc1 == 0) {
        printf("found %zu device(s) all the same, the first %s\n", n, n ? info[0].name : "");
        return 3;
    }
    int rc2 = o->open(daecl_host_table(), NULL, &ctx, &e2);
    printf("list_devices: %d %s\nopen: %d %s\n", rc1, e1.msg, rc2, e2.msg);
    if (ctx)
        o->close(ctx);
    return rc1 == DAECL_EDEVICE && rc2 == DAECL_EDEVICE && strcmp(e1.msg, e2.msg) == 0 ? 0 : 1;
}

static int child_main(int argc, char **argv)
{
    const char *mode = argv[1], *arg = argc > 2 ? argv[2] : "";
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, dut_name);
    if (strcmp(mode, "--child-programs") == 0)
        return child_programs(values_with(p, "gemm", "daecl", NULL), "programs");
    if (strcmp(mode, "--child-binaries") == 0)
        return child_programs(values_with(p, "binaries", arg, NULL), "binaries");
    if (strcmp(mode, "--child-list") == 0) {
        daecl_device_info info[8];
        size_t n = 0;
        const daecl_backend_ops *o = p->ops;
        int rc = test_list_devices(o, info, 8, &n, &err);
        printf("%s", rc ? err.msg : "");
        return rc == 0 && n > 0 ? 0 : 4;
    }
    if (strcmp(mode, "--child-precompile") == 0)
        return child_precompile(arg);
    if (strcmp(mode, "--child-step") == 0)
        return child_step(arg);
    if (strcmp(mode, "--child-no-platform") == 0)
        return child_no_platform();
    fprintf(stderr, "unknown helper mode %s\n", mode);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return child_main(argc, argv);
    /* The op checks: any backend can be run through this table. */
    const struct CMUnitTest conformance[] = {
        cmocka_unit_test(test_alloc_is_zeroed_and_write_read_honour_byte_offsets),
        cmocka_unit_test(test_fill_honours_element_offsets),
        cmocka_unit_test(test_copy_honours_element_offsets),
        cmocka_unit_test(test_out_of_range_slices_are_refused_naming_the_op),
        cmocka_unit_test(test_gemm_matches_the_reference_in_every_transpose_with_offsets_and_ld),
        cmocka_unit_test(test_gemm_with_beta_zero_ignores_nan_in_c),
        cmocka_unit_test(test_gemm_with_empty_inner_dimension_scales_c),
        cmocka_unit_test(test_bias_act_matches_the_reference_for_every_activation),
        cmocka_unit_test(test_sigmoid_is_finite_for_large_inputs_and_relu_passes_nan),
        cmocka_unit_test(test_act_grad_matches_the_reference_from_the_output),
        cmocka_unit_test(test_col_sum_matches_the_reference_with_beta),
        cmocka_unit_test(test_sum_matches_the_reference_at_odd_sizes),
        cmocka_unit_test(test_gather_copies_the_indexed_rows),
        cmocka_unit_test(test_optim_update_matches_the_reference_for_sgd_adam_adamw),
        cmocka_unit_test(test_softmax_xent_matches_the_reference),
        cmocka_unit_test(test_corruption_on_the_device_is_bit_identical_to_the_host),
        cmocka_unit_test(test_likelihood_on_the_device_matches_the_reference),
        cmocka_unit_test(test_bind_without_cl_source_is_not_supported),
    };
    const struct CMUnitTest opencl[] = {
        cmocka_unit_test(test_a_plugin_source_that_does_not_compile_names_the_plugin_and_the_log),
        cmocka_unit_test(test_list_devices_marks_one_default_with_a_note),
        cmocka_unit_test(test_alloc_past_the_device_limit_names_the_buffer_and_a_remedy),
        cmocka_unit_test(test_a_bad_gemm_cpu_variant_is_refused_with_the_syntax),
    };
    const struct CMUnitTest process[] = {
        cmocka_unit_test(test_a_second_process_loads_every_program_from_the_cache),
        cmocka_unit_test(
            test_programs_reach_the_cache_after_the_first_step_and_unused_ones_are_not_built),
        cmocka_unit_test(test_precompiled_binaries_run_without_compiling_anything),
        cmocka_unit_test(test_no_platform_says_how_to_install_one),
        cmocka_unit_test(test_daecl_device_overrides_the_choice_and_bad_values_show_the_syntax),
        cmocka_unit_test(test_a_binaries_folder_without_the_programs_is_refused_with_the_fix),
    };
    /* Child processes first, before this process touches OpenCL: NVIDIA's
     * OpenCL shows no GPU to a child of a process that has initialised it
     * (seen on an H200), and an exclusive-process GPU serves one process. */
    const char *env_small = getenv("DAECL_CONFORMANCE_SMALL");
    small = env_small && strcmp(env_small, "1") == 0;
    int failed = 0;
    if (!small)
        failed += cmocka_run_group_tests_name("opencl processes", process, setup_opencl, teardown);
    failed +=
        cmocka_run_group_tests_name("opencl gemm=clblast", conformance, setup_clblast, teardown);
    if (small) /* only the GEMM checks differ between the two groups */
        cmocka_set_test_filter("test_gemm_*");
    failed += cmocka_run_group_tests_name("opencl gemm=daecl", conformance, setup_daecl, teardown);
    /* daecl's CPU GEMM kernels: the device's default (empty); odd MR with
     * a 4-wide k unroll past most shapes' k (tails everywhere); one row and
     * one lane per register (the smallest tile); the widest tile; each
     * variant tune tries. The small run (Oclgrind, minutes per group)
     * takes the first two. */
    static const char *const variants[] = {"", "MR=3 NV=3 VW=8 KU=4", "MR=1 NV=1 VW=4 KU=1",
                                           "MR=8 NV=4 VW=16 KU=2", DAECL__OCL_CPU_GEMM_TRIED};
    size_t n_variants = small ? 2 : sizeof variants / sizeof variants[0];
    cmocka_set_test_filter("test_gemm_*");
    for (size_t i = 0; i < n_variants; i++) {
        char name[96];
        cpu_variant = variants[i];
        snprintf(name, sizeof name, "opencl gemm=daecl_cpu %s",
                 variants[i][0] ? variants[i] : "default");
        failed += cmocka_run_group_tests_name(name, conformance, setup_daecl_cpu, teardown);
    }
    cmocka_set_test_filter(NULL);
    if (!small)
        failed += cmocka_run_group_tests_name("opencl device", opencl, setup_daecl, teardown);
    return failed;
}
