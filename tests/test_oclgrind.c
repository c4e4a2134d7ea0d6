/* daecl tests — the kernels on Oclgrind, a simulated OpenCL device that checks
 * every access. The default tier (ctest test_oclgrind): a planted
 * out-of-bounds read is reported, daecl's own GEMM and bias + sigmoid draw
 * no report with every check on and match the cpu backend, and the default
 * device choice passes the simulator over. The full tier (`test_oclgrind
 * --full`, ctest test_oclgrind_full, label full): the conformance suite
 * (small sizes) and five training steps draw no report. Skips without
 * Oclgrind; a sanitizer build runs only the device-choice test. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support.h"

/* Oclgrind's ICD library; DAECL_OCLGRIND_ICD overrides the search. */
static const char *icd_lib(void)
{
    static const char *const candidates[] = {
        "/usr/lib/oclgrind/liboclgrind-rt-icd.so", /* Debian, Ubuntu */
        "/usr/lib/x86_64-linux-gnu/liboclgrind-rt-icd.so",
        "/usr/lib64/liboclgrind-rt-icd.so",
        "/usr/local/lib/liboclgrind-rt-icd.so",
        "/usr/lib/liboclgrind-rt-icd.so",
    };
    const char *env = getenv("DAECL_OCLGRIND_ICD");
    if (env && *env)
        return access(env, R_OK) == 0 ? env : NULL;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return NULL;
}

#define NEED_OCLGRIND()                                                                            \
    do {                                                                                           \
        if (!icd_lib()) {                                                                          \
            print_message("Oclgrind is not installed (apt-get install oclgrind): skipping\n");     \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* Kernels on Oclgrind: the plain build only (the kernels are the same in a
 * sanitizer build, and the simulator would run a second time for nothing). */
#define NEED_KERNELS_ON_OCLGRIND()                                                                 \
    do {                                                                                           \
        NEED_OCLGRIND();                                                                           \
        if (TEST_SANITIZED) {                                                                           \
            print_message("sanitizer build: kernels run on Oclgrind in the plain build\n");        \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A fresh vendors folder holding oclgrind.icd, and with `others` a copy of
 * every other .icd of /etc/OpenCL/vendors. Caller frees. */
static char *vendors(int others)
{
    char *dir = test_tmpdir("oclgrind-icd"), path[1200], line[1100];
    snprintf(path, sizeof path, "%s/oclgrind.icd", dir);
    snprintf(line, sizeof line, "%s\n", icd_lib());
    test_write_file(path, line, strlen(line));
    DIR *d = others ? opendir("/etc/OpenCL/vendors") : NULL;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".icd") != 0 || strstr(e->d_name, "oclgrind"))
            continue;
        char src[1200];
        snprintf(src, sizeof src, "/etc/OpenCL/vendors/%s", e->d_name);
        size_t n = 0;
        char *text = test_read_file(src, &n);
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        test_write_file(path, text, n);
        free(text);
    }
    if (d)
        closedir(d);
    return dir;
}

/* The environment of a child on Oclgrind with its checks on, logging to
 * log: bad accesses (always checked), API misuse, data races (uniform
 * writes too). `uninit` adds uninitialised-value checks, which need
 * Oclgrind's compiler at -O0: at -O2 clang emits `freeze`, which
 * Oclgrind 21.10 cannot shadow ("Unsupported instruction: freeze").
 * vars is NULL-terminated; its strings live in the struct or are static. */
typedef struct oclgrind_env {
    char vendors[1300], log[1300], *vars[16];
} oclgrind_env;

static void env_init(oclgrind_env *e, const char *vendors_dir, const char *log, int uninit,
                     const char *extra)
{
    snprintf(e->vendors, sizeof e->vendors, "OCL_ICD_VENDORS=%s", vendors_dir);
    snprintf(e->log, sizeof e->log, "OCLGRIND_LOG=%s", log);
    size_t n = 0;
    e->vars[n++] = e->vendors;
    e->vars[n++] = e->log;
    e->vars[n++] = "DAECL_DEVICE=platform=Oclgrind";
    e->vars[n++] = "DAECL_CACHE=0"; /* compile every program under the checks */
    e->vars[n++] = "OCLGRIND_CHECK_API=1";
    e->vars[n++] = "OCLGRIND_DATA_RACES=1";
    e->vars[n++] = "OCLGRIND_UNIFORM_WRITES=1";
    if (uninit) {
        e->vars[n++] = "OCLGRIND_UNINITIALIZED=1";
        e->vars[n++] = "OCLGRIND_BUILD_OPTIONS=-cl-opt-disable";
    }
    if (extra)
        e->vars[n++] = (char *)extra;
    e->vars[n] = NULL;
}

/* Oclgrind writes every report (and any fatal error of its own) to
 * OCLGRIND_LOG, and creates the file when it starts: a missing file means
 * the child never reached Oclgrind. NULL when the log is empty, else its
 * text (caller frees). */
static char *reports(const char *log, const char *what, const char *child_out)
{
    if (access(log, F_OK) != 0)
        fail_msg("%s never reached Oclgrind (no log %s); its output:\n%s", what, log, child_out);
    size_t n = 0;
    char *text = test_read_file(log, &n);
    for (size_t i = 0; i < n; i++)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r')
            return text;
    free(text);
    return NULL;
}

static void expect_no_reports(const char *log, const char *what, const char *child_out)
{
    char *text = reports(log, what, child_out);
    if (text)
        fail_msg("Oclgrind reported problems in %s (log %s):\n%.6000s", what, log, text);
}

/* ---- the checks work: a kernel that reads out of bounds is reported ---------------------- */

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

/* A corruption whose device code reads its parameters far past their end. */
static const daecl_corruption_ops oob_ops = {
    .size = sizeof(daecl_corruption_ops),
    .host_apply = copy_apply,
    .cl_source = "static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)\n"
                 "{\n    return x + p[(1u << 20) + (r.x & 1u)];\n}\n"};
static const daecl_plugin oob_plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                        .name = "reads_past_its_params",
                                        .version = "1.0.0",
                                        .summary = "test",
                                        .license = "MIT",
                                        .ops = &oob_ops};

/* Child: opens the device DAECL_DEVICE names and runs that corruption. */
static int child_oob(void)
{
    const daecl_plugin *p = test_plugin(DAECL_KIND_BACKEND, "opencl");
    const daecl_backend_ops *o = p->ops;
    daecl_err err = {0};
    void *ctx = NULL, *bound = NULL;
    daecl_buf *x = NULL, *xt = NULL;
    float host[32] = {0};
    daecl_noise_key key = {.seed = 1};
    int rc = o->open(daecl_host_table(), NULL, &ctx, &err);
    if (!rc)
        rc = o->alloc(ctx, sizeof host, "x", &x, &err);
    if (!rc)
        rc = o->alloc(ctx, sizeof host, "xt", &xt, &err);
    if (!rc)
        rc = o->write(ctx, x, 0, host, sizeof host, &err);
    if (!rc)
        rc = o->bind(ctx, &oob_plugin, NULL, 0, &bound, &err);
    if (!rc)
        rc = o->corrupt(ctx, bound, (daecl_slice){x, 0}, (daecl_slice){xt, 0}, 4, 8,
                        &(daecl_shape){1, {8, 1, 1, 1}}, &key, &err);
    if (!rc)
        rc = o->read(ctx, xt, 0, host, sizeof host, &err);
    if (rc)
        fprintf(stderr, "oob child: %s\n", err.msg);
    if (ctx) {
        o->unbind(ctx, bound);
        o->free(ctx, x);
        o->free(ctx, xt);
        o->close(ctx);
    }
    printf("oob child done\n");
    return rc ? 1 : 0;
}

static int run_self(const char *mode, char *const env[], char **out)
{
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char *argv[] = {self, (char *)mode, NULL};
    return test_run(argv, env, out);
}

static void test_an_out_of_bounds_read_in_a_kernel_is_reported(void **state)
{
    (void)state;
    NEED_KERNELS_ON_OCLGRIND();
    char *dir = vendors(0), log[1200];
    snprintf(log, sizeof log, "%s/oob.log", dir);
    oclgrind_env e;
    env_init(&e, dir, log, 1, NULL);
    char *out = NULL;
    int rc = run_self("--child-oob", e.vars, &out);
    if (rc != 0 || !strstr(out, "oob child done"))
        fail_msg("the out-of-bounds child failed (%d):\n%s", rc, out);
    char *text = reports(log, "the out-of-bounds child", out);
    if (!text || !strstr(text, "Invalid read") || !strstr(text, "daecl_corrupt_rows"))
        fail_msg("Oclgrind did not report the read past the parameters; log:\n%s",
                 text ? text : "(empty)");
    print_message("Oclgrind reports a bad read as: %.*s\n", (int)strcspn(text + 1, "\n"),
                  text + 1);
    free(text);
    free(out);
    free(dir);
}

/* ---- a kernel or two, every check on: the default tier -------------------------------- */

/* Child: C (33, 34) = A (33, 17) B (17, 34) by daecl's own GEMM (two
 * 32-wide tiles each way, two K steps: every edge of a tile), then
 * C = sigmoid(C + bias), on the device DAECL_DEVICE names and on the cpu
 * backend; prints the device and the largest difference. Every buffer is
 * written from the host first: Oclgrind counts filled buffers as
 * uninitialised (docs/testing.md). */
static int child_kernels(void)
{
    enum { M = 33, N = 34, K = 17 };
    static float a[M * K], b[K * N], bias[N], c[2][M * N];
    test_fill_uniform(a, M * K, 11, -1, 1);
    test_fill_uniform(b, K * N, 12, -1, 1);
    test_fill_uniform(bias, N, 13, -0.5f, 0.5f);
    const char *names[2] = {"opencl", "cpu"};
    daecl_device_info info = {0};
    for (int side = 0; side < 2; side++) {
        const daecl_backend_ops *o = test_plugin(DAECL_KIND_BACKEND, names[side])->ops;
        daecl_err err = {0};
        void *ctx = NULL;
        daecl_buf *ba = NULL, *bb = NULL, *bc = NULL, *bbias = NULL;
        int rc = o->open(daecl_host_table(), NULL, &ctx, &err);
        if (!rc && side == 0)
            o->describe(ctx, &info, sizeof info);
        if (!rc)
            rc = o->alloc(ctx, sizeof a, "a", &ba, &err);
        if (!rc)
            rc = o->alloc(ctx, sizeof b, "b", &bb, &err);
        if (!rc)
            rc = o->alloc(ctx, sizeof c[0], "c", &bc, &err);
        if (!rc)
            rc = o->alloc(ctx, sizeof bias, "bias", &bbias, &err);
        if (!rc)
            rc = o->write(ctx, ba, 0, a, sizeof a, &err);
        if (!rc)
            rc = o->write(ctx, bb, 0, b, sizeof b, &err);
        if (!rc)
            rc = o->write(ctx, bc, 0, c[side], sizeof c[side], &err);
        if (!rc)
            rc = o->write(ctx, bbias, 0, bias, sizeof bias, &err);
        if (!rc)
            rc = o->gemm(ctx, 0, 0, M, N, K, 1.0f, (daecl_slice){ba, 0}, K, (daecl_slice){bb, 0},
                         N, 0.0f, (daecl_slice){bc, 0}, N, &err);
        if (!rc)
            rc = o->bias_act(ctx, (daecl_slice){bc, 0}, (daecl_slice){bbias, 0}, M, N,
                             DAECL_ACT_SIGMOID, &err);
        if (!rc)
            rc = o->read(ctx, bc, 0, c[side], sizeof c[side], &err);
        if (!rc && o->finish)
            rc = o->finish(ctx, &err);
        if (rc)
            fprintf(stderr, "kernels child, %s backend: %s\n", names[side], err.msg);
        if (ctx) {
            o->free(ctx, ba);
            o->free(ctx, bb);
            o->free(ctx, bc);
            o->free(ctx, bbias);
            o->close(ctx);
        }
        if (rc)
            return 1;
    }
    double worst = 0;
    for (size_t i = 0; i < M * N; i++) {
        double d = fabs((double)c[0][i] - (double)c[1][i]);
        worst = d > worst ? d : worst;
    }
    printf("kernels child done on %s (%s): largest difference from the cpu backend %.3g\n",
           info.name, info.platform, worst);
    return worst <= 1e-5 ? 0 : 1;
}

static void test_a_gemm_and_bias_sigmoid_draw_no_report_and_match_the_cpu(void **state)
{
    (void)state;
    NEED_KERNELS_ON_OCLGRIND();
    char *dir = vendors(0), log[1200];
    snprintf(log, sizeof log, "%s/kernels.log", dir);
    oclgrind_env e;
    env_init(&e, dir, log, 1, "DAECL_DEVICE=platform=Oclgrind,gemm=daecl");
    char *out = NULL;
    int rc = run_self("--child-kernels", e.vars, &out);
    if (rc != 0 || !strstr(out, "kernels child done on Oclgrind Simulator"))
        fail_msg("daecl's GEMM and bias + sigmoid on Oclgrind failed (%d):\n%s", rc, out);
    expect_no_reports(log, "daecl's GEMM and bias + sigmoid", out);
    print_message("%.*s\n", (int)strcspn(strstr(out, "kernels child done"), "\n"),
                  strstr(out, "kernels child done"));
    free(out);
    free(dir);
}

/* ---- the conformance suite and a training run draw no report: the full tier ------------------------------ */

static void test_the_backend_conformance_suite_draws_no_report(void **state)
{
    (void)state;
    NEED_KERNELS_ON_OCLGRIND();
    char *dir = vendors(0), log[1200];
    snprintf(log, sizeof log, "%s/conformance.log", dir);
    oclgrind_env e;
    env_init(&e, dir, log, 1, "DAECL_CONFORMANCE_SMALL=1");
    char *argv[] = {DAECL_TEST_BUILD_DIR "/bin/test_backend_conformance", NULL};
    char *out = NULL;
    int rc = test_run(argv, e.vars, &out);
    if (rc != 0 || !strstr(out, "on Oclgrind Simulator (Oclgrind), gemm=clblast") ||
        !strstr(out, "on Oclgrind Simulator (Oclgrind), gemm=daecl") || strstr(out, "SKIPPED"))
        fail_msg("the conformance suite on Oclgrind failed (%d):\n%s", rc, out);
    expect_no_reports(log, "the conformance suite", out);
    free(out);
    free(dir);
}

/* The value after "key": in a summary.json, or fails. */
static double summary_number(const char *json, const char *key)
{
    char quoted[64];
    snprintf(quoted, sizeof quoted, "\"%s\":", key);
    const char *p = strstr(json, quoted);
    if (!p)
        fail_msg("no %s in summary.json:\n%s", key, json);
    return strtod(p + strlen(quoted), NULL);
}

/* `daecl train cfg --out run [override]`; returns its summary.json, and its
 * output in *out (both for the caller to free). */
static char *train(const char *cfg, const char *run, char *const env[], const char *override,
                   char **out)
{
    char *argv[] = {DAECL_TEST_BIN, "train", (char *)cfg, "--out", (char *)run,
                    (char *)override, NULL};
    int rc = test_run(argv, env, out);
    if (rc != 0)
        fail_msg("daecl train %s %s exited %d:\n%s", cfg, override ? override : "", rc, *out);
    char path[1300];
    snprintf(path, sizeof path, "%s/summary.json", run);
    return test_read_file(path, NULL);
}

static void write_idx(const char *path, uint32_t n, uint64_t seed)
{
    unsigned char *b = malloc(16 + (size_t)n * 36);
    assert_non_null(b);
    /* IDX header: unsigned bytes, 3 dimensions (n, 6, 6), big-endian. */
    unsigned char head[16] = {0, 0, 0x08, 3, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 6};
    for (int i = 0; i < 4; i++)
        head[4 + i] = (unsigned char)(n >> (24 - 8 * i));
    memcpy(b, head, 16);
    float *u = malloc((size_t)n * 36 * sizeof *u);
    assert_non_null(u);
    test_fill_uniform(u, (size_t)n * 36, seed, 0, 256);
    for (size_t i = 0; i < (size_t)n * 36; i++)
        b[16 + i] = (unsigned char)u[i];
    test_write_file(path, b, 16 + (size_t)n * 36);
    free(u);
    free(b);
}

static void test_five_training_steps_draw_no_report_and_match_the_cpu(void **state)
{
    (void)state;
    NEED_KERNELS_ON_OCLGRIND();
    char *dir = vendors(0), log[1200], path[1200], run[1200], cfg[1200];
    snprintf(path, sizeof path, "%s/train.idx", dir);
    write_idx(path, 64, 1);
    snprintf(path, sizeof path, "%s/test.idx", dir);
    write_idx(path, 16, 2);
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    /* Two layers (sigmoid, tanh), Adam, masking noise, a test set: most of
     * the kernels a run uses, in 5 steps over 2 epochs. */
    const char *text = "data: {train: train.idx, test: test.idx}\n"
                       "model: {encoder: [{units: 8, activation: sigmoid}, "
                       "{units: 5, activation: tanh}]}\n"
                       "corruption: {plugin: masking, p: 0.25}\n"
                       "optimizer: {name: adam, lr: 0.01}\n"
                       "train: {epochs: 2, batch_size: 16, max_steps: 5, log_every: 1}\n"
                       "backend: {plugin: opencl}\n";
    test_write_file(cfg, text, strlen(text));
    snprintf(log, sizeof log, "%s/train.log", dir);
    /* Without the uninitialised-value check: Oclgrind 21.10 does not count
     * clEnqueueFillBuffer as initialising a buffer, and every daecl buffer
     * is zero-filled at allocation, so it would flag each value downstream
     * (docs/testing.md shows the reduction). */
    oclgrind_env e;
    env_init(&e, dir, log, 0, NULL);
    snprintf(run, sizeof run, "%s/run-oclgrind", dir);
    char *out = NULL, *cpu_out = NULL;
    char *sim = train(cfg, run, e.vars, NULL, &out);
    expect_no_reports(log, "five training steps", out);
    if (!strstr(sim, "Oclgrind Simulator"))
        fail_msg("the training did not run on Oclgrind:\n%s", sim);
    snprintf(run, sizeof run, "%s/run-cpu", dir);
    char *cpu = train(cfg, run, NULL, "backend.plugin=cpu", &cpu_out);
    /* Identical noise, float32 on both sides: only summation order differs. */
    static const char *const keys[] = {"train_nll", "test_nll_clean", "test_nll_corrupted"};
    for (int k = 0; k < 3; k++) {
        double s = summary_number(sim, keys[k]), c = summary_number(cpu, keys[k]);
        assert_close(s, c, 1e-4);
    }
    assert_true(summary_number(sim, "steps") == 5);
    free(sim);
    free(cpu);
    free(out);
    free(cpu_out);
    free(dir);
}

/* ---- the default choice never picks the simulator -------------------------------------- */

static void test_the_default_device_choice_passes_oclgrind_over_and_says_why(void **state)
{
    (void)state;
    NEED_OCLGRIND();
    /* Oclgrind beside the installed platforms: listed, never the default. */
    char *dir = vendors(1), env_dir[1300];
    snprintf(env_dir, sizeof env_dir, "OCL_ICD_VENDORS=%s", dir);
    char *env[] = {env_dir, "DAECL_DEVICE=", NULL};
    char *argv[] = {DAECL_TEST_BIN, "devices", NULL}, *out = NULL;
    int rc = test_run(argv, env, &out);
    if (rc != 0 || !strstr(out, "Oclgrind Simulator") ||
        !strstr(out, "passed over: Oclgrind is a simulator") ||
        !strstr(out, "DAECL_DEVICE=platform=Oclgrind") || strstr(out, "Simulator   <- default"))
        fail_msg("`daecl devices` with Oclgrind installed (%d):\n%s", rc, out);
    free(out);
    free(dir);
    /* Oclgrind alone: opening the default device is refused with the way out. */
    dir = vendors(0);
    snprintf(env_dir, sizeof env_dir, "OCL_ICD_VENDORS=%s", dir);
    char cfg[1200], data[1200], run[1200];
    snprintf(data, sizeof data, "%s/d.idx", dir);
    write_idx(data, 8, 3);
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    const char *text = "data: {train: d.idx}\nmodel: {encoder: [{units: 2}]}\n"
                       "train: {epochs: 1, batch_size: 4}\nbackend: opencl\n";
    test_write_file(cfg, text, strlen(text));
    snprintf(run, sizeof run, "%s/run", dir);
    char *train_argv[] = {DAECL_TEST_BIN, "train", cfg, "--out", run, NULL};
    rc = test_run(train_argv, env, &out);
    if (rc != 1 || !strstr(out, "the only OpenCL device is Oclgrind's simulator") ||
        !strstr(out, "DAECL_DEVICE=platform=Oclgrind"))
        fail_msg("training on the default device with only Oclgrind (%d):\n%s", rc, out);
    free(out);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-oob") == 0)
        return child_oob();
    if (argc > 1 && strcmp(argv[1], "--child-kernels") == 0)
        return child_kernels();
    /* Only the settings made here: a user's OCLGRIND_QUICK (first and last
     * work-group only) or OCLGRIND_MAX_ERRORS=0 would weaken the checks. */
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **v = environ; *v; v++)
            if (strncmp(*v, "OCLGRIND_", 9) == 0) {
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(*v, "="), *v);
                unsetenv(name);
                again = 1;
                break;
            }
    }
    const struct CMUnitTest fast[] = {
        cmocka_unit_test(test_an_out_of_bounds_read_in_a_kernel_is_reported),
        cmocka_unit_test(test_the_default_device_choice_passes_oclgrind_over_and_says_why),
        cmocka_unit_test(test_a_gemm_and_bias_sigmoid_draw_no_report_and_match_the_cpu),
    };
    /* The full tier: about a minute and a half of simulation. */
    const struct CMUnitTest full[] = {
        cmocka_unit_test(test_five_training_steps_draw_no_report_and_match_the_cpu),
        cmocka_unit_test(test_the_backend_conformance_suite_draws_no_report),
    };
    if (argc > 1 && strcmp(argv[1], "--full") == 0)
        return cmocka_run_group_tests_name("Oclgrind, full tier", full, NULL, NULL);
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--full]\n", argv[0]);
        return 2;
    }
    return cmocka_run_group_tests_name("Oclgrind", fast, NULL, NULL);
}
