/* daecl tests — GEMM tuning: `daecl tune` on a tiny model with a tiny budget
 * stores a tuning file; a later process applies it (its debug log says so)
 * and its GEMMs still match the cpu backend within float accumulation
 * bounds; a hand-written file routes shapes to tuned CLBlast sets, to
 * column-major CLBlast and to daecl's kernel; with fixed timings
 * (DAECL_TUNE_FAKE), tune routes a shape to a variant of daecl's CPU kernels
 * only where it is the fastest, and a later run applies it; corrupt, stale
 * and invalid files are ignored with a debug note; DAECL_CACHE=0 applies
 * nothing; a format-1 file (before the CPU kernels) still applies; gemm:
 * auto on a CPU device runs daecl's CPU kernel where no entry lists the
 * shape (seen by which call an injected fault names). Tests
 * that need OpenCL skip without a device. Run with an argument, the program
 * is one of the helper children (child_main). */
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/registry.h"
#include "tests/support.h"

static int no_device;
static int cpu_device;    /* the default device is a CPU (POCL): tune tries the CPU kernels */
static char *dir;         /* this run's folder: data, config, cache */
static char header[4096]; /* the identity lines of a file `daecl tune` wrote */
static char tuned_path[2048];

/* ---- helpers ---------------------------------------------------------------------------- */

static char *self_exe(void)
{
    static char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    assert_true(n > 0);
    path[n] = '\0';
    return path;
}

static int run_child(const char *mode, char *const env[], char **out)
{
    char *argv[] = {self_exe(), (char *)mode, NULL};
    return test_run(argv, env, out);
}

/* 40 x 20 floats in [0, 1) as .npy, and a config training 20-12-20 on them
 * with batch 8 on the opencl backend. */
static void write_experiment(void)
{
    enum { ROWS = 40, DIM = 20 };
    char path[1200];
    float x[ROWS * DIM];
    test_fill_uniform(x, ROWS * DIM, 7, 0, 1);
    snprintf(path, sizeof path, "%s/tiny.npy", dir);
    char shape[32];
    snprintf(shape, sizeof shape, "(%d, %d)", ROWS, DIM);
    test_write_npy(path, "<f4", x, sizeof x, shape);
    char yaml[2048];
    int n = snprintf(yaml, sizeof yaml,
                     "name: tiny\nseed: 1\ndata:\n  train: %s/tiny.npy\nmodel:\n"
                     "  encoder: [{units: 12, activation: sigmoid}]\n"
                     "corruption: {plugin: masking, p: 0.25}\nlikelihood: bernoulli\n"
                     "optimizer: {name: sgd, lr: 0.1}\ntrain: {epochs: 1, batch_size: 8}\n"
                     "backend: {plugin: opencl}\n",
                     dir);
    snprintf(path, sizeof path, "%s/tiny.yaml", dir);
    test_write_file(path, yaml, (size_t)n);
}

static int has(const char *text, const char *what)
{
    return strstr(text, what) != NULL;
}

/* DAECL_CACHE_DIR=<dir>/cache and debug logs on the default device. */
static char **child_env(const char *extra)
{
    static char cache[1200];
    static char *env[6];
    snprintf(cache, sizeof cache, "DAECL_CACHE_DIR=%s/cache", dir);
    env[0] = cache;
    env[1] = "DAECL_LOG=debug";
    env[2] = "DAECL_DEVICE=";
    env[3] = extra ? (char *)extra : "DAECL_CACHE=1";
    env[4] = NULL;
    return env;
}

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir("tune");
    write_experiment();
    /* Asked in a child: this process must not touch OpenCL before its
     * children run (CUDA's OpenCL hides its GPU from a forked child). */
    char *out = NULL;
    no_device = run_child("--child-list", NULL, &out) != 0;
    if (no_device)
        print_message("no OpenCL device (%s): skipping\n", out);
    cpu_device = !no_device && has(out, "type cpu");
    free(out);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(dir);
    return 0;
}

#define NEED_DEVICE()                                                                              \
    do {                                                                                           \
        if (no_device)                                                                             \
            skip();                                                                                \
    } while (0)


/* Runs `daecl tune` once with a one-second budget and keeps the file's path
 * and its identity lines (everything before the first blank line). */
static void ensure_tuned(void)
{
    if (header[0])
        return;
    char config[1200], cache[1200];
    snprintf(config, sizeof config, "%s/tiny.yaml", dir);
    char *argv[] = {DAECL_TEST_BIN, "tune", config, "--budget-s", "1", NULL};
    char *out = NULL;
    int rc = test_run(argv, child_env(NULL), &out);
    if (rc != 0)
        fail_msg("daecl tune failed (%d):\n%s", rc, out);
    if (!has(out, "stored GEMM tuning") || !has(out, "one training step's GEMMs") ||
        !has(out, "8 x 12 x 20"))
        fail_msg("daecl tune said:\n%s", out);
    free(out);
    snprintf(cache, sizeof cache, "%s/cache/clblast-tuning", dir);
    DIR *d = opendir(cache);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".txt")) {
            snprintf(tuned_path, sizeof tuned_path, "%s/%s", cache, e->d_name);
            files++;
        }
    closedir(d);
    assert_int_equal(files, 1);
    size_t n = 0;
    char *text = test_read_file(tuned_path, &n);
    char *blank = strstr(text, "\n\n");
    assert_non_null(blank);
    assert_true((size_t)(blank - text) + 2 < sizeof header);
    memcpy(header, text, (size_t)(blank - text) + 1);
    free(text);
}

/* Runs the GEMM child with the tuning file holding `text` (NULL: as it is). */
static char *gemm_child(const char *text, const char *extra_env, int *rc)
{
    if (text)
        test_write_file(tuned_path, text, strlen(text));
    char *out = NULL;
    *rc = run_child("--child-gemm", child_env(extra_env), &out);
    return out;
}

static void expect_gemm_ok(int rc, const char *out)
{
    if (rc != 0 || !has(out, "gemm ok"))
        fail_msg("GEMM child failed (%d):\n%s", rc, out);
}

/* ---- the tests ---------------------------------------------------------------------------- */

static void test_tune_refuses_a_backend_without_gemm_tuning(void **state)
{
    (void)state;
    char config[1200];
    snprintf(config, sizeof config, "%s/tiny.yaml", dir);
    char *argv[] = {DAECL_TEST_BIN, "tune", config, "backend.plugin=cpu", NULL};
    char *out = NULL;
    int rc = test_run(argv, child_env(NULL), &out);
    if (rc != 2 || !has(out, "backend 'cpu' has no GEMMs to tune") ||
        !has(out, "backend.plugin=opencl"))
        fail_msg("expected a usage error naming the backend (%d):\n%s", rc, out);
    free(out);
    char *bad[] = {DAECL_TEST_BIN, "tune", config, "--budget-s", "soon", NULL};
    rc = test_run(bad, NULL, &out);
    if (rc != 2 || !has(out, "--budget-s"))
        fail_msg("expected a usage error for --budget-s (%d):\n%s", rc, out);
    free(out);
}

static void test_tuning_a_tiny_model_stores_a_file_that_a_later_run_applies(void **state)
{
    (void)state;
    NEED_DEVICE();
    ensure_tuned();
    size_t n = 0;
    char *text = test_read_file(tuned_path, &n);
    const char *want[] = {"format = 2\n",
                          "\nclblast = ",
                          "\n[default]\nuse = clblast ",
                          "\n[gemm ta=0 tb=1 m=8 n=12 k=20]\nuse = ",
                          "\n[gemm ta=1 tb=0 m=12 n=20 k=8]\nuse = ",
                          "\n[gemm ta=0 tb=1 m=8 n=20 k=12]\nuse = ",
                          "\n[gemm ta=1 tb=0 m=20 n=12 k=8]\nuse = ",
                          "\n[gemm ta=0 tb=0 m=8 n=12 k=20]\nuse = "};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!has(text, want[i]))
            fail_msg("the tuning file lacks '%s':\n%s", want[i], text);
    free(text);
    int rc;
    char *out = gemm_child(NULL, NULL, &rc);
    expect_gemm_ok(rc, out);
    char line[2200];
    snprintf(line, sizeof line, "GEMM tuning from %s: 5 shapes", tuned_path);
    if (!has(out, line) || !has(out, "GEMM ta=0 tb=0 m=8 n=12 k=20 runs on "))
        fail_msg("the later run did not apply %s:\n%s", tuned_path, out);
    free(out);
}

/* Set 1 (direct) is parsed and checked but routes nothing: each set is a
 * CLBlast program, and a cold compile costs POCL 15 s or more. */
static void test_a_hand_written_tuning_routes_each_shape_its_way(void **state)
{
    (void)state;
    NEED_DEVICE();
    ensure_tuned();
    char text[8192];
    snprintf(text, sizeof text,
             "%s\n[set 0]\nkernel = indirect\n"
             "Xgemm = GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=64 NDIMB=8 NDIMC=8 NWG=64 "
             "SA=0 SB=0 STRM=0 STRN=0 VWM=8 VWN=8\n"
             "XgemmDirect = WGD=16 MDIMCD=8 NDIMCD=8 MDIMAD=8 NDIMBD=8 KWID=2 VWMD=1 VWND=1 "
             "PADA=1 PADB=1\n\n"
             "[set 1]\nkernel = direct\n"
             "Xgemm = GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=64 NDIMB=8 NDIMC=8 NWG=64 "
             "SA=0 SB=0 STRM=0 STRN=0 VWM=8 VWN=8\n"
             "XgemmDirect = WGD=8 MDIMCD=8 NDIMCD=8 MDIMAD=8 NDIMBD=8 KWID=2 VWMD=1 VWND=1 "
             "PADA=1 PADB=1\n\n"
             "[default]\nuse = clblast set 0 row-major\n\n"
             "[gemm ta=0 tb=1 m=8 n=12 k=20]\nuse = clblast set 0 column-major\n\n"
             "[gemm ta=1 tb=0 m=12 n=20 k=8]\nuse = clblast set 0 row-major\ngflops = 0.5\n\n"
             "[gemm ta=0 tb=1 m=8 n=20 k=12]\nuse = daecl\n",
             header);
    int rc;
    char *out = gemm_child(text, NULL, &rc);
    expect_gemm_ok(rc, out);
    const char *want[] = {
        "GEMM tuning from", ": 3 shapes, 2 parameter sets",
        "GEMM ta=0 tb=1 m=8 n=12 k=20 runs on CLBlast, tuned set 0 (indirect), column-major",
        "GEMM ta=1 tb=0 m=12 n=20 k=8 runs on CLBlast, tuned set 0 (indirect), row-major",
        "GEMM ta=0 tb=1 m=8 n=20 k=12 runs on daecl's kernel"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!has(out, want[i]))
            fail_msg("the log lacks '%s':\n%s", want[i], out);
    free(out);
}

static void test_corrupt_stale_and_invalid_tuning_files_are_ignored_with_a_debug_note(void **state)
{
    (void)state;
    NEED_DEVICE();
    ensure_tuned();
    char stale[4096];
    snprintf(stale, sizeof stale, "%s", header);
    char *driver = strstr(stale, "\ndriver = ");
    assert_non_null(driver);
    driver[10] = driver[10] == '9' ? '8' : '9'; /* another driver version */
    static const char body[] = "\n[default]\nuse = clblast defaults row-major\n";
    static const char set0[] =
        "\n[set 0]\nkernel = indirect\n"
        "Xgemm = GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=%s NDIMB=8 NDIMC=8 NWG=64 "
        "SA=0 SB=0 STRM=0 STRN=0 VWM=8 VWN=8\n"
        "XgemmDirect = WGD=16 MDIMCD=8 NDIMCD=8 MDIMAD=8 NDIMBD=8 KWID=2 VWMD=1 VWND=1 "
        "PADA=1 PADB=1\n\n[default]\nuse = clblast set %s row-major\n";
    char cases[6][8192], why[6][80];
    snprintf(cases[0], sizeof cases[0], "%s", header);
    snprintf(why[0], sizeof why[0], "the file ends before any section");
    snprintf(cases[1], sizeof cases[1], "%.100s\n\x01\x02 garbage\n", header);
    snprintf(why[1], sizeof why[1], "not 'key = value'");
    snprintf(cases[2], sizeof cases[2], "%s%s", stale, body);
    snprintf(why[2], sizeof why[2], "it was written for driver");
    snprintf(cases[3], sizeof cases[3], "%s", header);
    snprintf(cases[3] + strlen(cases[3]), sizeof cases[3] - strlen(cases[3]), set0, "48", "0");
    snprintf(why[3], sizeof why[3], "[set 0] breaks CLBlast's constraints");
    snprintf(cases[4], sizeof cases[4], "%s", header);
    snprintf(cases[4] + strlen(cases[4]), sizeof cases[4] - strlen(cases[4]), set0, "64", "2");
    snprintf(why[4], sizeof why[4], "'use' names set 2, but there are 1");
    snprintf(cases[5], sizeof cases[5], "%s", header);
    snprintf(cases[5] + strlen(cases[5]), sizeof cases[5] - strlen(cases[5]), set0, "64",
             "0 row-major\n\n[gemm ta=0 tb=0 m=8 n=12 k=20]\nuse = clblast defaults");
    snprintf(why[5], sizeof why[5], "cannot be mixed with tuned sets");
    for (int i = 0; i < 6; i++) {
        int rc;
        char *out = gemm_child(cases[i], NULL, &rc);
        expect_gemm_ok(rc, out);
        if (!has(out, "ignored (line ") || !has(out, why[i]) || has(out, "GEMM tuning from"))
            fail_msg("case %d: expected the file ignored because '%s':\n%s", i, why[i], out);
        free(out);
    }
}

static void test_DAECL_CACHE_0_applies_no_tuning(void **state)
{
    (void)state;
    NEED_DEVICE();
    ensure_tuned();
    char text[sizeof header + 64];
    snprintf(text, sizeof text, "%s\n[default]\nuse = clblast defaults column-major\n", header);
    int rc;
    char *out = gemm_child(text, NULL, &rc);
    expect_gemm_ok(rc, out);
    if (!has(out, "GEMM tuning from"))
        fail_msg("a valid file was not applied:\n%s", out);
    free(out);
    out = gemm_child(NULL, "DAECL_CACHE=0", &rc);
    expect_gemm_ok(rc, out);
    if (has(out, "GEMM tuning"))
        fail_msg("DAECL_CACHE=0 still applied a tuning:\n%s", out);
    free(out);
    /* Tuning needs the cache folder: refused before any search. */
    char config[1200];
    snprintf(config, sizeof config, "%s/tiny.yaml", dir);
    char *argv[] = {DAECL_TEST_BIN, "tune", config, "--budget-s", "0", NULL};
    rc = test_run(argv, child_env("DAECL_CACHE=0"), &out);
    if (rc != 1 || !has(out, "caching is off"))
        fail_msg("expected tuning refused without a cache (%d):\n%s", rc, out);
    free(out);
}

/* Runs `daecl tune` with DAECL_TUNE_FAKE=fake into the cache folder
 * <dir>/<cache> and returns the tuning file's text. */
static char *tune_with_fake(const char *cache, const char *fake)
{
    char config[1200], cache_env[1300], fake_env[300], folder[1400];
    snprintf(config, sizeof config, "%s/tiny.yaml", dir);
    snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s/%s", dir, cache);
    snprintf(fake_env, sizeof fake_env, "DAECL_TUNE_FAKE=%s", fake);
    char *argv[] = {DAECL_TEST_BIN, "tune", config, "--budget-s", "0", NULL};
    char *env[] = {cache_env, "DAECL_DEVICE=", fake_env, NULL};
    char *out = NULL;
    int rc = test_run(argv, env, &out);
    if (rc != 0 || !has(out, "stored GEMM tuning") || !has(out, "(a test hook)"))
        fail_msg("daecl tune with DAECL_TUNE_FAKE=%s failed (%d):\n%s", fake, rc, out);
    free(out);
    snprintf(folder, sizeof folder, "%s/%s/clblast-tuning", dir, cache);
    DIR *d = opendir(folder);
    assert_non_null(d);
    char path[2048] = "";
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".txt"))
            snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
    closedir(d);
    size_t n = 0;
    return test_read_file(path, &n);
}

/* The route the tuning file text gives the shape in section [gemm ...]. */
static void expect_route(const char *text, const char *shape, const char *use)
{
    char want[256];
    snprintf(want, sizeof want, "\n[gemm %s]\nuse = %s\n", shape, use);
    if (!has(text, want))
        fail_msg("the tuning file does not route %s to '%s':\n%s", shape, use, text);
}

/* Fixed timings make one variant of daecl's CPU kernels ten times faster
 * than CLBlast at the A B^T shapes alone, and every other variant slower
 * than CLBlast: tune routes those two shapes to that variant and the rest
 * to CLBlast, records it in format 2 with the variant's parameters, and a
 * later run applies the routes and still matches the cpu backend. With
 * the CPU kernels slower everywhere and the tiled kernel faster at A^T B,
 * no shape runs on a CPU variant and the A^T B ones run on the tiled
 * kernel. The CPU kernels are tried on CPU devices only. */
static void test_tune_picks_a_cpu_kernel_variant_exactly_where_it_is_faster(void **state)
{
    (void)state;
    NEED_DEVICE();
    if (!cpu_device)
        skip();
    static const char *const nt[2] = {"ta=0 tb=1 m=8 n=12 k=20", "ta=0 tb=1 m=8 n=20 k=12"};
    static const char *const rest[3] = {"ta=1 tb=0 m=12 n=20 k=8", "ta=1 tb=0 m=20 n=12 k=8",
                                        "ta=0 tb=0 m=8 n=12 k=20"};
    char *text = tune_with_fake("fake-cpu", "clblast:0.001,daecl:0.002,cpu:0.003,"
                                            "MR=8 NV=2 VW=16 KU=1/nt:0.0001");
    if (!has(text, "\nformat = 2\n"))
        fail_msg("the tuning file is not format 2:\n%s", text);
    for (int i = 0; i < 2; i++)
        expect_route(text, nt[i], "daecl cpu MR=8 NV=2 VW=16 KU=1");
    for (int i = 0; i < 3; i++)
        expect_route(text, rest[i], "clblast defaults row-major");
    free(text);
    char cache_env[1300];
    snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s/fake-cpu", dir);
    int rc;
    char *out = gemm_child(NULL, cache_env, &rc);
    expect_gemm_ok(rc, out);
    if (!has(out, "GEMM ta=0 tb=1 m=8 n=12 k=20 runs on daecl's CPU kernel MR=8 NV=2 VW=16 KU=1") ||
        !has(out, "GEMM ta=0 tb=0 m=8 n=12 k=20 runs on CLBlast, built-in parameters, row-major"))
        fail_msg("the later run did not route by the tuning:\n%s", out);
    free(out);

    text = tune_with_fake("fake-tiled", "clblast:0.001,daecl:0.002,cpu:0.003,daecl/tn:0.0005");
    if (has(text, "use = daecl cpu"))
        fail_msg("a CPU variant slower everywhere was chosen:\n%s", text);
    expect_route(text, rest[0], "daecl");
    expect_route(text, rest[1], "daecl");
    expect_route(text, rest[2], "clblast defaults row-major");
    free(text);
}

/* A file written before daecl's CPU kernels (format 1, no gflops_daecl_cpu)
 * still applies; an unknown format and a malformed variant are refused with
 * one sentence each in the debug log. */
static void test_a_format_1_file_still_applies_and_bad_cpu_routes_are_refused(void **state)
{
    (void)state;
    NEED_DEVICE();
    ensure_tuned();
    char v1[sizeof header + 256], text[sizeof header + 256];
    snprintf(v1, sizeof v1, "%s", header);
    char *format = strstr(v1, "format = ");
    assert_non_null(format);
    format[9] = '1';
    size_t used = strlen(v1);
    snprintf(v1 + used, sizeof v1 - used,
             "\n[default]\nuse = clblast defaults row-major\n\n[gemm ta=0 tb=1 m=8 n=12 "
             "k=20]\nuse = daecl\ngflops = 1\ngflops_untuned = 1\ngflops_daecl = 2\n");
    int rc;
    char *out = gemm_child(v1, NULL, &rc);
    expect_gemm_ok(rc, out);
    if (!has(out, "GEMM tuning from") || !has(out, "m=8 n=12 k=20 runs on daecl's kernel"))
        fail_msg("a format-1 file was not applied:\n%s", out);
    free(out);
    static const struct {
        char format;
        const char *use, *why;
    } bad[] = {{'3', "clblast defaults row-major", "format 3 is neither format 1 nor 2"},
               {'2', "daecl cpu MR=9 NV=2 VW=16 KU=1", "is not a CPU GEMM variant"},
               {'2', "daecl cpu MR=4 NV=2 VW=16", "is not a CPU GEMM variant"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s", header);
        strstr(text, "format = ")[9] = bad[i].format;
        used = strlen(text);
        snprintf(text + used, sizeof text - used,
                 "\n[default]\nuse = clblast defaults row-major\n\n[gemm ta=0 tb=1 m=8 n=12 "
                 "k=20]\nuse = %s\n",
                 bad[i].use);
        out = gemm_child(text, NULL, &rc);
        expect_gemm_ok(rc, out);
        if (!has(out, "ignored (line ") || !has(out, bad[i].why) || has(out, "GEMM tuning from"))
            fail_msg("case %zu: expected the file ignored because '%s':\n%s", i, bad[i].why, out);
        free(out);
    }
}

/* DAECL_FAULT in `daecl tune`: an allocation failing while a candidate runs
 * skips the candidate (CLBlast refuses some sets, and a fault cannot be told
 * from that), and the tuning still stores a file; one failing for the
 * tuning's own operands ends the run with one sentence naming the call, and
 * stores nothing, not even a temporary file. The allocations are counted
 * first; the operands are the last ones before the candidates' scratch. */
static void test_a_fault_while_tuning_fails_in_one_sentence_and_stores_nothing(void **state)
{
    (void)state;
    NEED_DEVICE();
    char config[1200], cache[1200], cache_env[1300];
    snprintf(config, sizeof config, "%s/tiny.yaml", dir);
    char *argv[] = {DAECL_TEST_BIN, "tune", config, "--budget-s", "0.2", NULL};
    char *env[] = {cache_env, "DAECL_DEVICE=", "DAECL_FAULT=alloc:4000000000", NULL};
    snprintf(cache, sizeof cache, "%s/fault-cache", dir);
    snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s", cache);
    char *out = NULL;
    int rc = test_run(argv, env, &out);
    const char *counted = strstr(out, "DAECL_FAULT counted ");
    unsigned long total = 0;
    if (rc != 0 || !counted || sscanf(counted, "DAECL_FAULT counted %lu alloc", &total) != 1 ||
        total < 4)
        fail_msg("counting run (%d):\n%s", rc, out);
    free(out);
    int operand_failed = 0;
    for (unsigned long k = total; k > 0 && !operand_failed; k--) {
        char spec[64];
        snprintf(spec, sizeof spec, "DAECL_FAULT=alloc:%lu", k);
        env[2] = spec;
        snprintf(cache, sizeof cache, "%s/fault-cache-%lu", dir, k); /* empty */
        snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s", cache);
        rc = test_run(argv, env, &out);
        char tuning[1400];
        snprintf(tuning, sizeof tuning, "%s/clblast-tuning", cache);
        int stored = test_count_entries(tuning, NULL, 0);
        stored = stored < 0 ? 0 : stored; /* no folder: nothing stored */
        if (rc == 0) {
            if (stored != 1)
                fail_msg("alloc:%lu: tuning ended well but left %d files:\n%s", k, stored, out);
        } else {
            const char *e = strstr(out, "daecl: error: ");
            if (rc != 1 || !e || strstr(e + 1, "daecl: error: ") || !has(e, "clCreateBuffer(") ||
                !has(e, "CL_MEM_OBJECT_ALLOCATION_FAILURE"))
                fail_msg("alloc:%lu: want exit status 1 and one sentence naming the call (%d):\n%s",
                         k, rc, out);
            if (stored != 0)
                fail_msg("alloc:%lu: a failed tuning left %d files in the cache", k, stored);
            operand_failed = has(e, "GEMM tuning operand");
        }
        free(out);
    }
    assert_true(operand_failed);
}

/* What ran each GEMM, as the device saw it: the --child-two-gemms child
 * runs the tiny model's A B (8 x 12 x 20) and then an A B no tuning lists
 * (7 x 5 x 3), the last two calls it enqueues. A first run counts its
 * enqueues (DAECL_FAULT); the next two make the GEMMs' own calls fail,
 * and the failing call is named: CLBlastSgemm, or the launch of daecl's
 * CPU kernel (gemm_cpu_nn). gemm (DAECL_DEVICE="gemm=..." or "") and the
 * tuning file (text, or none) vary; *first and *second get what failed. */
static void which_gemm_ran(const char *gemm, const char *tuning, char *first, char *second,
                           size_t n)
{
    char cache[1300], cache_env[1400], device[64], fault[64], path[2200];
    snprintf(cache, sizeof cache, "%s/route-cache-%s%s", dir, gemm[0] ? gemm : "auto",
             tuning ? "-tuned" : "");
    snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s", cache);
    snprintf(device, sizeof device, "DAECL_DEVICE=%s%s", gemm[0] ? "gemm=" : "", gemm);
    if (tuning) {
        const char *base = strrchr(tuned_path, '/');
        assert_non_null(base);
        snprintf(path, sizeof path, "%s/clblast-tuning", cache);
        mkdir(cache, 0700);
        mkdir(path, 0700);
        snprintf(path, sizeof path, "%s/clblast-tuning%s", cache, base);
        test_write_file(path, tuning, strlen(tuning));
    }
    char *env[] = {cache_env, device, fault, "DAECL_LOG=debug", NULL};
    snprintf(fault, sizeof fault, "DAECL_FAULT=enqueue:4000000000");
    char *out = NULL;
    unsigned long n_alloc = 0, n_enq = 0;
    const char *c;
    if (run_child("--child-two-gemms", env, &out) != 0 ||
        !(c = strstr(out, "DAECL_FAULT counted ")) ||
        sscanf(c, "DAECL_FAULT counted %lu alloc, %lu enqueue", &n_alloc, &n_enq) != 2 ||
        n_enq < 2)
        fail_msg("gemm '%s': the counting run failed:\n%s", gemm, out);
    if (tuning && !has(out, "GEMM tuning from"))
        fail_msg("gemm '%s': the tuning was not applied:\n%s", gemm, out);
    free(out);
    for (int g = 0; g < 2; g++) {
        snprintf(fault, sizeof fault, "DAECL_FAULT=enqueue:%lu", n_enq - 1 + (unsigned long)g);
        int rc = run_child("--child-two-gemms", env, &out);
        const char *e = strstr(out, "gemm failed: ");
        if (rc == 0 || !e || !has(e, "CL_OUT_OF_RESOURCES"))
            fail_msg("gemm '%s', %s: want the GEMM to fail (%d):\n%s", gemm, fault, rc, out);
        char *dst = g ? second : first;
        snprintf(dst, n, "%s", has(e, "CLBlastSgemm")  ? "clblast"
                              : has(e, "(gemm_cpu_nn)") ? "daecl_cpu"
                                                        : e);
        free(out);
    }
}

/* gemm: auto on a CPU device (POCL) without a tuning runs daecl's CPU
 * kernel (the device's default variant, as its debug log says at open), a
 * tuning's entry still wins at the shape it lists, and gemm: clblast is
 * CLBlast. On a GPU, auto stays CLBlast. */
static void test_auto_on_a_cpu_device_runs_daecl_cpu_kernels_where_no_tuning_entry_says_otherwise(
    void **state)
{
    (void)state;
    NEED_DEVICE();
    ensure_tuned();
    const char *untuned = cpu_device ? "daecl_cpu" : "clblast";
    char first[256], second[256];
    which_gemm_ran("", NULL, first, second, sizeof first);
    if (strcmp(first, untuned) != 0 || strcmp(second, untuned) != 0)
        fail_msg("gemm: auto without a tuning ran '%s' and '%s', want %s", first, second, untuned);
    char text[sizeof header + 128];
    snprintf(text, sizeof text,
             "%s\n[default]\nuse = clblast defaults row-major\n\n[gemm ta=0 tb=0 m=8 n=12 "
             "k=20]\nuse = clblast defaults row-major\n",
             header);
    which_gemm_ran("", text, first, second, sizeof first);
    if (strcmp(first, "clblast") != 0 || strcmp(second, untuned) != 0)
        fail_msg("gemm: auto with a tuning listing the first shape ran '%s' and '%s', want "
                 "clblast and %s",
                 first, second, untuned);
    which_gemm_ran("clblast", NULL, first, second, sizeof first);
    if (strcmp(first, "clblast") != 0 || strcmp(second, "clblast") != 0)
        fail_msg("gemm: clblast ran '%s' and '%s'", first, second);
    if (!cpu_device)
        return;
    char cache_env[1300];
    snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s/route-cache-auto", dir);
    char *env[] = {cache_env, "DAECL_DEVICE=", "DAECL_LOG=debug", NULL};
    char *out = NULL;
    if (run_child("--child-two-gemms", env, &out) != 0 ||
        !has(out, "GEMM by daecl's CPU kernel MR=") || !has(out, "(auto on a CPU device"))
        fail_msg("the open log does not name daecl's CPU kernel:\n%s", out);
    free(out);
}

/* ---- the children ------------------------------------------------------------------------ */

typedef struct be {
    const daecl_backend_ops *ops;
    void *ctx;
} be;

static int open_backend(const daecl_registry *reg, const char *name, be *b, daecl_err *err)
{
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_BACKEND, name, NULL);
    if (!p)
        return fprintf(stderr, "no backend %s\n", name), -1;
    b->ops = p->ops;
    return b->ops->open(daecl_host_table(), test_default_values(p), &b->ctx, err);
}

static daecl_buf *upload(const be *b, const float *x, size_t n, daecl_err *err)
{
    daecl_buf *buf = NULL;
    if (b->ops->alloc(b->ctx, n * sizeof(float), "test", &buf, err) ||
        b->ops->write(b->ctx, buf, 0, x, n * sizeof(float), err))
        return NULL;
    return buf;
}

/* One GEMM on both backends from the same random operands (element
 * offsets and padded leading dimensions), compared element by element
 * within 4 k eps (|alpha| sum|a b| + |beta c|). 0 when they agree. */
static int compare_gemm(const be *cpu, const be *ocl, int ta, int tb, size_t m, size_t n, size_t k,
                        size_t pad, daecl_err *err)
{
    size_t off = pad, lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    size_t na = off + (ta ? k : m) * lda, nb = off + (tb ? n : k) * ldb, nc = off + m * ldc;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *rc_ = malloc(nc * 4),
          *dc = malloc(nc * 4);
    test_fill_uniform(a, na, 11 + m, -1, 1);
    test_fill_uniform(b, nb, 12 + n, -1, 1);
    test_fill_uniform(c, nc, 13 + k, -1, 1);
    const float alpha = 1.5f, beta = 0.5f;
    const be *sides[2] = {cpu, ocl};
    float *outs[2] = {rc_, dc};
    int bad = 0;
    for (int s = 0; s < 2 && !bad; s++) {
        daecl_buf *A = upload(sides[s], a, na, err), *B = upload(sides[s], b, nb, err),
                  *C = upload(sides[s], c, nc, err);
        bad = !A || !B || !C ||
              sides[s]->ops->gemm(sides[s]->ctx, ta, tb, m, n, k, alpha, (daecl_slice){A, off}, lda,
                                  (daecl_slice){B, off}, ldb, beta, (daecl_slice){C, off}, ldc,
                                  err) ||
              sides[s]->ops->read(sides[s]->ctx, C, 0, outs[s], nc * 4, err);
        sides[s]->ops->free(sides[s]->ctx, A);
        sides[s]->ops->free(sides[s]->ctx, B);
        sides[s]->ops->free(sides[s]->ctx, C);
    }
    if (bad)
        fprintf(stderr, "gemm %d %d %zu %zu %zu failed: %s\n", ta, tb, m, n, k, err->msg);
    for (size_t i = 0; i < m && !bad; i++)
        for (size_t j = 0; j < n && !bad; j++) {
            double mag = 0;
            for (size_t p = 0; p < k; p++)
                mag += fabs((double)(ta ? a[off + p * lda + i] : a[off + i * lda + p]) *
                            (double)(tb ? b[off + j * ldb + p] : b[off + p * ldb + j]));
            size_t q = off + i * ldc + j;
            double bound = 4.0 * (double)k * FLT_EPSILON * (alpha * mag + fabs(beta * c[q]));
            if (fabs((double)dc[q] - (double)rc_[q]) > bound + 1e-30) {
                fprintf(stderr,
                        "gemm %d %d %zu %zu %zu: C[%zu][%zu] is %.9g on opencl, %.9g "
                        "on cpu\n",
                        ta, tb, m, n, k, i, j, (double)dc[q], (double)rc_[q]);
                bad = 1;
            }
        }
    /* Outside C's m x n window nothing may change. */
    for (size_t q = 0; q < nc && !bad; q++)
        if ((q < off || (q - off) % ldc >= n || (q - off) / ldc >= m) && dc[q] != c[q]) {
            fprintf(stderr, "gemm %d %d %zu %zu %zu wrote element %zu outside C\n", ta, tb, m, n, k,
                    q);
            bad = 1;
        }
    free(a), free(b), free(c), free(rc_), free(dc);
    return bad;
}

/* On the opencl backend: A B at 8 x 12 x 20 (a shape the tiny model tunes),
 * then at 7 x 5 x 3 (one no tuning lists), and nothing after them; a
 * failure prints "gemm failed: " and the sentence. */
static int two_gemms(const daecl_registry *reg, daecl_err *err)
{
    be ocl = {0};
    float x[20 * 12];
    test_fill_uniform(x, 20 * 12, 5, -1, 1);
    daecl_buf *a = NULL, *b = NULL, *c = NULL;
    int rc = open_backend(reg, "opencl", &ocl, err);
    if (!rc)
        rc = !(a = upload(&ocl, x, 8 * 20, err)) || !(b = upload(&ocl, x, 20 * 12, err)) ||
             !(c = upload(&ocl, x, 8 * 12, err));
    if (!rc)
        rc = ocl.ops->gemm(ocl.ctx, 0, 0, 8, 12, 20, 1.0f, (daecl_slice){a, 0}, 20,
                           (daecl_slice){b, 0}, 12, 0.0f, (daecl_slice){c, 0}, 12, err) ||
             ocl.ops->gemm(ocl.ctx, 0, 0, 7, 5, 3, 1.0f, (daecl_slice){a, 0}, 3,
                           (daecl_slice){b, 0}, 5, 0.0f, (daecl_slice){c, 0}, 5, err);
    if (rc)
        printf("gemm failed: %s\n", err->msg);
    daecl_buf *bufs[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (bufs[i])
            ocl.ops->free(ocl.ctx, bufs[i]);
    if (ocl.ctx)
        ocl.ops->close(ocl.ctx);
    return rc;
}

static int child_main(const char *mode)
{
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    if (daecl_registry_create(NULL, &reg, &err))
        return fprintf(stderr, "%s\n", err.msg), 3;
    int rc = 0;
    be cpu = {0}, ocl = {0};
    if (strcmp(mode, "--child-list") == 0) {
        const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_BACKEND, "opencl", NULL);
        const daecl_backend_ops *o = p ? p->ops : NULL;
        size_t n = 0;
        daecl_device_info info[8];
        rc = !o || test_list_devices(o, info, 8, &n, &err) != 0 || n == 0;
        if (rc)
            printf("%s\n", p ? err.msg : "no opencl backend");
        for (size_t i = 0; i < n && i < 8 && !rc; i++)
            if (info[i].is_default)
                printf("type %s\n", info[i].type);
    } else if (strcmp(mode, "--child-two-gemms") == 0) {
        rc = two_gemms(reg, &err);
    } else if (open_backend(reg, "cpu", &cpu, &err) || open_backend(reg, "opencl", &ocl, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        rc = 1;
    } else {
        /* The tiny model's five shapes (tuned), twice with padding, and
         * two shapes no file lists. */
        static const size_t shapes[][5] = {{0, 1, 8, 12, 20}, {1, 0, 12, 20, 8}, {0, 1, 8, 20, 12},
                                           {1, 0, 20, 12, 8}, {0, 0, 8, 12, 20}, {0, 0, 7, 5, 3},
                                           {1, 1, 33, 17, 9}};
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && !rc; i++)
            for (size_t pad = 0; pad < (i < 5 ? 2u : 1u) && !rc; pad++)
                rc = compare_gemm(&cpu, &ocl, (int)shapes[i][0], (int)shapes[i][1], shapes[i][2],
                                  shapes[i][3], shapes[i][4], pad * 3, &err);
        if (!rc)
            printf("gemm ok\n");
    }
    if (ocl.ctx)
        ocl.ops->close(ocl.ctx);
    if (cpu.ctx)
        cpu.ops->close(cpu.ctx);
    daecl_registry_destroy(reg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return child_main(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tune_refuses_a_backend_without_gemm_tuning),
        cmocka_unit_test(test_tuning_a_tiny_model_stores_a_file_that_a_later_run_applies),
        cmocka_unit_test(test_a_hand_written_tuning_routes_each_shape_its_way),
        cmocka_unit_test(test_corrupt_stale_and_invalid_tuning_files_are_ignored_with_a_debug_note),
        cmocka_unit_test(test_DAECL_CACHE_0_applies_no_tuning),
        cmocka_unit_test(test_tune_picks_a_cpu_kernel_variant_exactly_where_it_is_faster),
        cmocka_unit_test(test_a_format_1_file_still_applies_and_bad_cpu_routes_are_refused),
        cmocka_unit_test(test_a_fault_while_tuning_fails_in_one_sentence_and_stores_nothing),
        cmocka_unit_test(
            test_auto_on_a_cpu_device_runs_daecl_cpu_kernels_where_no_tuning_entry_says_otherwise),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
