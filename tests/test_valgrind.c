/* daecl tests — a short training under valgrind's memcheck on the cpu and
 * opencl backends: no error, no definite leak (tests/valgrind.supp holds the
 * only exceptions, not ours). Skips without valgrind and in sanitizer builds,
 * whose binaries valgrind cannot run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* `daecl train exp.yaml backend.plugin=BACKEND` under memcheck: the command
 * docs/testing.md gives. */
static void train_under_memcheck(const char *backend)
{
    char *dir = experiment();
    char cfg[1200], run[1200], log[1200], log_opt[1300], supp[1300], plugin[64];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(log, sizeof log, "%s/memcheck.log", dir);
    snprintf(log_opt, sizeof log_opt, "--log-file=%s", log);
    snprintf(supp, sizeof supp, "--suppressions=%s/tests/valgrind.supp", DAECL_TEST_SOURCE_DIR);
    snprintf(plugin, sizeof plugin, "backend.plugin=%s", backend);
    char *out = NULL;
    if (strcmp(backend, "opencl") == 0) {
        /* Once without valgrind first: POCL then finds every kernel in its
         * own cache, since compiling one under memcheck takes minutes. */
        snprintf(run, sizeof run, "%s/warm", dir);
        char *warm[] = {DAECL_TEST_BIN, "train", cfg, "--out", run, plugin, NULL};
        int rc = test_run(warm, NULL, &out);
        if (rc != 0)
            fail_msg("daecl train on opencl (no valgrind) exited %d:\n%s", rc, out);
        free(out);
    }
    snprintf(run, sizeof run, "%s/run", dir);
    char *argv[] = {(char *)valgrind_path(), "--tool=memcheck", "--error-exitcode=99",
                    "--leak-check=full", "--errors-for-leak-kinds=definite", supp,
                    "--num-callers=40", log_opt, DAECL_TEST_BIN, "train", cfg, "--out", run,
                    plugin, NULL};
    int rc = test_run(argv, NULL, &out);
    char *report = test_read_file(log, NULL);
    if (rc != 0 || !strstr(report, "ERROR SUMMARY: 0 errors") ||
        !strstr(out, "stopped after train.max_steps = 5 steps"))
        fail_msg("daecl train on %s under memcheck exited %d; valgrind says:\n%.6000s\noutput:\n%s",
                 backend, rc, report, out);
    const char *summary = strstr(report, "ERROR SUMMARY");
    print_message("%s backend: %.*s\n", backend, (int)strcspn(summary, "\n"), summary);
    free(report);
    free(out);
    free(dir);
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
    train_under_memcheck("cpu");
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
    train_under_memcheck("opencl");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child-bad") == 0)
        return child_bad();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memcheck_as_run_here_reports_an_uninitialised_read_and_a_leak),
        cmocka_unit_test(test_training_on_the_cpu_backend_has_no_memcheck_error),
        cmocka_unit_test(test_training_on_the_opencl_backend_has_no_memcheck_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
