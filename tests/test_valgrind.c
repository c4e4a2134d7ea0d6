/* daecl tests — a short training under valgrind's memcheck: no error, no
 * definite leak (tests/valgrind.supp holds the only exceptions, not ours).
 * The default tier (ctest test_valgrind) runs it on the cpu backend, after
 * checking that memcheck as run here reports planted errors; the full tier
 * (`test_valgrind --full`, ctest test_valgrind_full, label full) on the
 * opencl backend, from empty POCL and daecl caches of its own. Skips
 * without valgrind and in sanitizer builds, whose binaries valgrind cannot
 * run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/support.h"

/* valgrind on $PATH, or NULL. */
static const char *valgrind_path(void)
{
    static char found[1100];
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    for (const char *p = path; *p;) {
        size_t len = strcspn(p, ":");
        snprintf(found, sizeof found, "%.*s/valgrind", (int)len, p);
        if (len > 0 && access(found, X_OK) == 0)
            return found;
        p += len + (p[len] == ':');
    }
    return NULL;
}

#define NEED_VALGRIND()                                                                            \
    do {                                                                                           \
        if (TEST_SANITIZED) {                                                                           \
            print_message("sanitizer build: valgrind runs in the plain build\n");                  \
            skip();                                                                                \
        }                                                                                          \
        if (!valgrind_path()) {                                                                    \
            print_message("valgrind is not installed (apt-get install valgrind): skipping\n");     \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* A folder with a small IDX training set (64 rows of 6x6) and test set (16
 * rows), and exp.yaml training two layers with Adam for 5 steps. */
static char *experiment(void)
{
    char *dir = test_tmpdir("valgrind"), path[1200];
    for (int set = 0; set < 2; set++) {
        uint32_t n = set ? 16 : 64;
        size_t bytes = 16 + (size_t)n * 36;
        unsigned char *b = calloc(bytes, 1);
        float *u = malloc((size_t)n * 36 * sizeof *u);
        assert_true(b && u);
        unsigned char head[16] = {0, 0, 0x08, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, 6, 0, 0, 0, 6};
        memcpy(b, head, 16);
        test_fill_uniform(u, (size_t)n * 36, 7 + (uint64_t)set, 0, 256);
        for (size_t i = 0; i < (size_t)n * 36; i++)
            b[16 + i] = (unsigned char)u[i];
        snprintf(path, sizeof path, "%s/%s.idx", dir, set ? "test" : "train");
        test_write_file(path, b, bytes);
        free(u);
        free(b);
    }
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    const char *text = "data: {train: train.idx, test: test.idx}\n"
                       "model: {encoder: [{units: 8, activation: sigmoid}, "
                       "{units: 5, activation: tanh}]}\n"
                       "corruption: {plugin: masking, p: 0.25}\n"
                       "optimizer: {name: adam, lr: 0.01}\n"
                       "train: {epochs: 2, batch_size: 16, max_steps: 5, log_every: 1}\n";
    test_write_file(path, text, strlen(text));
    return dir;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* `daecl train DIR/exp.yaml --out DIR/RUN backend.plugin=BACKEND` under
 * valgrind's tool (memcheck or none), with extra environment (may be NULL),
 * its log in DIR/RUN.log: the command docs/testing.md gives. Fails the test
 * unless the run ends as it should and, for memcheck, with 0 errors. */
static void train_under(const char *tool, const char *dir, const char *run, const char *backend,
                        char *const env[])
{
    char cfg[1200], out_dir[1300], log[1300], log_opt[1400], supp[1300], plugin[64], tool_opt[64];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out_dir, sizeof out_dir, "%s/%s", dir, run);
    snprintf(log, sizeof log, "%s/%s.log", dir, run);
    snprintf(log_opt, sizeof log_opt, "--log-file=%s", log);
    snprintf(supp, sizeof supp, "--suppressions=%s/tests/valgrind.supp", DAECL_TEST_SOURCE_DIR);
    snprintf(plugin, sizeof plugin, "backend.plugin=%s", backend);
    snprintf(tool_opt, sizeof tool_opt, "--tool=%s", tool);
    int memcheck = strcmp(tool, "memcheck") == 0;
    char *memcheck_argv[] = {(char *)valgrind_path(), tool_opt, "--error-exitcode=99",
                             "--leak-check=full", "--errors-for-leak-kinds=definite", supp,
                             "--num-callers=40", log_opt, DAECL_TEST_BIN, "train", cfg, "--out",
                             out_dir, plugin, NULL};
    char *none_argv[] = {(char *)valgrind_path(), tool_opt, log_opt, DAECL_TEST_BIN, "train",
                         cfg, "--out", out_dir, plugin, NULL};
    char *out = NULL;
    double t0 = now_s();
    int rc = test_run(memcheck ? memcheck_argv : none_argv, env, &out);
    double took = now_s() - t0;
    char *report = test_read_file(log, NULL);
    if (rc != 0 || (memcheck && !strstr(report, "ERROR SUMMARY: 0 errors")) ||
        !strstr(out, "stopped after train.max_steps = 5 steps"))
        fail_msg("daecl train on %s under valgrind --tool=%s exited %d; valgrind says:\n%.6000s\n"
                 "output:\n%s",
                 backend, tool, rc, report, out);
    const char *summary = memcheck ? strstr(report, "ERROR SUMMARY") : "no error check";
    print_message("%s backend under --tool=%s, %.0f s: %.*s\n", backend, tool, took,
                  (int)strcspn(summary, "\n"), summary);
    free(report);
    free(out);
}

/* Compiled kernels (.so files) under dir and its subfolders: what POCL
 * has put into its cache folder. */
static size_t count_kernels(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[2048];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        size_t len = strlen(e->d_name);
        if (S_ISDIR(st.st_mode))
            n += count_kernels(path);
        else if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Child: a branch on heap memory never written, and a block whose only
 * pointer is dropped. volatile keeps the compiler from seeing either. */
static int child_bad(void)
{
    int *volatile p = malloc(4 * sizeof(int));
    if (!p)
        return 1;
    int r = p[2] > 0; /* memcheck: "Conditional jump ... uninitialised value" */
    printf("bad child %d\n", r);
    free(p);
    void *volatile lost = malloc(64);
    lost = NULL; /* memcheck: "64 bytes ... definitely lost" */
    return lost != NULL;
}

static void test_memcheck_as_run_here_reports_an_uninitialised_read_and_a_leak(void **state)
{
    (void)state;
    NEED_VALGRIND();
    char *dir = test_tmpdir("valgrind-bad"), log[1200], log_opt[1300], self[1100];
    snprintf(log, sizeof log, "%s/memcheck.log", dir);
    snprintf(log_opt, sizeof log_opt, "--log-file=%s", log);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    char *argv[] = {(char *)valgrind_path(), "--tool=memcheck", "--error-exitcode=99",
                    "--leak-check=full", "--errors-for-leak-kinds=definite", log_opt, self,
                    "--child-bad", NULL},
         *out = NULL;
    int rc = test_run(argv, NULL, &out);
    char *report = test_read_file(log, NULL);
    if (rc != 99 || !strstr(report, "depends on uninitialised value") ||
        !strstr(report, "64 bytes in 1 blocks are definitely lost") ||
        strstr(report, "ERROR SUMMARY: 0 errors"))
        fail_msg("memcheck missed the planted errors (exit %d):\n%.6000s", rc, report);
    free(report);
    free(out);
    free(dir);
}

static void test_training_on_the_cpu_backend_has_no_memcheck_error(void **state)
{
    (void)state;
    NEED_VALGRIND();
    char *dir = experiment();
    train_under("memcheck", dir, "run", "cpu", NULL);
    free(dir);
}

static void test_training_on_the_opencl_backend_has_no_memcheck_error(void **state)
{
    (void)state;
    NEED_VALGRIND();
    /* Is there a device? The same binary without valgrind says. */
    char *argv[] = {DAECL_TEST_BIN, "devices", NULL}, *out = NULL;
    int rc = test_run(argv, NULL, &out);
    int none = rc != 0 || !strstr(out, "<- default");
    free(out);
    if (none) {
        print_message("no default OpenCL device: skipping\n");
        skip();
    }
    /* POCL's cache and daecl's, both new and empty: the time and the result
     * never depend on what an earlier run left behind. POCL_KERNEL_CACHE=1
     * in case the caller turned POCL's cache off, which the warm-up needs. */
    char *dir = experiment(), pocl[1200], pocl_env[1300], warm_env[1300], cache_env[1300];
    snprintf(pocl, sizeof pocl, "%s/pocl-cache", dir);
    assert_int_equal(mkdir(pocl, 0700), 0);
    snprintf(pocl_env, sizeof pocl_env, "POCL_CACHE_DIR=%s", pocl);
    snprintf(warm_env, sizeof warm_env, "DAECL_CACHE_DIR=%s/daecl-cache-warm", dir);
    snprintf(cache_env, sizeof cache_env, "DAECL_CACHE_DIR=%s/daecl-cache", dir);
    char *warm[] = {pocl_env, "POCL_KERNEL_CACHE=1", warm_env, NULL};
    char *env[] = {pocl_env, "POCL_KERNEL_CACHE=1", cache_env, NULL};
    /* Compiling POCL's kernels under memcheck takes 5 to 20 minutes, so
     * the same training runs first under --tool=none, which fills POCL's
     * cache at a fifth of that or less. Not without valgrind: POCL compiles
     * for the CPU it sees, and valgrind's emulated CPU has no AVX-512, so
     * on an AVX-512 host a plain run fills pthread-skylake-avx512 entries
     * that memcheck, seeing pthread-haswell, never reads. --tool=none
     * emulates the very CPU memcheck does, whatever the host. daecl's own
     * cache stays empty for memcheck: daecl compiles from source (POCL's
     * cache answers) and stores its binaries, as in a first run. */
    train_under("none", dir, "warm", "opencl", warm);
    size_t warmed = count_kernels(pocl);
    train_under("memcheck", dir, "run", "opencl", env);
    size_t compiled = count_kernels(pocl) - warmed;
    print_message("POCL's cache: %zu kernels compiled under --tool=none, %zu more under memcheck\n",
                  warmed, compiled);
    if (compiled != 0)
        fail_msg("POCL compiled %zu kernel(s) under memcheck that the warm-up under valgrind "
                 "--tool=none had not left in its cache (%s): the two saw different CPUs or "
                 "different work, and a cold run under memcheck takes 5 to 20 minutes",
                 compiled, pocl);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-bad") == 0)
        return child_bad();
    const struct CMUnitTest fast[] = {
        cmocka_unit_test(test_memcheck_as_run_here_reports_an_uninitialised_read_and_a_leak),
        cmocka_unit_test(test_training_on_the_cpu_backend_has_no_memcheck_error),
    };
    /* The full tier: about a minute of compiling under --tool=none. */
    const struct CMUnitTest full[] = {
        cmocka_unit_test(test_training_on_the_opencl_backend_has_no_memcheck_error),
    };
    if (argc > 1 && strcmp(argv[1], "--full") == 0)
        return cmocka_run_group_tests_name("valgrind, full tier", full, NULL, NULL);
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--full]\n", argv[0]);
        return 2;
    }
    return cmocka_run_group_tests_name("valgrind", fast, NULL, NULL);
}
