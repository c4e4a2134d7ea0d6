/* daecl tests — the `daecl` command as a user meets it: help and version,
 * exit statuses (0 ok, 2 usage or config error, 1 run-time error), the
 * plugin listing and documentation, and a whole tiny training run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support.h"

/* Runs `daecl ARGS...`; returns the exit status, output in *out. */
static int daecl(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {DAECL_TEST_BIN, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    return test_run(argv, NULL, out);
}

static void expect(int want_rc, const char *want_text, const char *a1, const char *a2,
                   const char *a3, const char *a4)
{
    char *out = NULL;
    int rc = daecl(&out, a1, a2, a3, a4);
    if (rc != want_rc || (want_text && !strstr(out, want_text)))
        fail_msg("daecl %s %s: exit %d (want %d), output:\n%s\n(wanted '%s')", a1 ? a1 : "",
                 a2 ? a2 : "", rc, want_rc, out, want_text ? want_text : "");
    free(out);
}

static void test_version_and_help(void **state)
{
    (void)state;
    expect(0, "daecl 0.", "--version", NULL, NULL, NULL);
    expect(0, "commands:", "--help", NULL, NULL, NULL);
    expect(0, "usage: daecl train CONFIG", "train", "--help", NULL, NULL);
    expect(0, "usage: daecl plugins", "plugins", "-h", NULL, NULL);
    expect(0, "usage: daecl train CONFIG", "help", "train", NULL, NULL);
}

static void test_usage_errors_exit_2(void **state)
{
    (void)state;
    expect(2, "usage: daecl COMMAND", NULL, NULL, NULL, NULL);
    expect(2, "unknown command 'trian'", "trian", NULL, NULL, NULL);
    expect(2, "give a CONFIG file", "train", NULL, NULL, NULL);
    expect(2, "unknown option '--outt'", "train", "x.yaml", "--outt", "d");
    expect(2, "no plugin named 'nonesuch'", "plugins", "nonesuch", NULL, NULL);
}

/* precompile reaches the backend's daecl.precompile extension and takes the
 * device as the backend's parameters, not through the environment. */
static void test_precompile_takes_the_device_as_backend_parameters(void **state)
{
    (void)state;
    char *argv0[] = {DAECL_TEST_BIN, "precompile", "--backend", "cpu", "--out", "unused", NULL};
    char *out = NULL;
    int rc = test_run(argv0, NULL, &out);
    if (rc != 2 || !strstr(out, "backend 'cpu' has no device programs to precompile"))
        fail_msg("precompile --backend cpu: exit %d:\n%s", rc, out);
    free(out);
    if (!daecl_registry_find(test_registry(), DAECL_KIND_BACKEND, "opencl", NULL))
        return; /* a cpu-only build */
    char *argv[] = {DAECL_TEST_BIN, "precompile", "--device", "typ=gpu", "--out", "unused", NULL};
    rc = test_run(argv, NULL, &out);
    if (rc != 2 || !strstr(out, "unknown parameter 'typ' for backend plugin 'opencl'; its "
                                "parameters are platform, type, index, binaries, gemm"))
        fail_msg("precompile --device typ=gpu: exit %d:\n%s", rc, out);
    free(out);
    char *argv2[] = {DAECL_TEST_BIN, "precompile", "--device", "type=tpu", "--out", "unused", NULL};
    rc = test_run(argv2, NULL, &out);
    if (rc != 2 || !strstr(out, "backend.type"))
        fail_msg("precompile --device type=tpu: exit %d:\n%s", rc, out);
    free(out);
}

static void test_config_errors_exit_2_with_position(void **state)
{
    (void)state;
    char *dir = test_tmpdir("cli-config");
    char path[1100];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    const char *text = "data: {train: x.idx}\ntrain:\n  epoch: 3\n";
    test_write_file(path, text, strlen(text));
    char where[1200];
    snprintf(where, sizeof where, "%s:3:3:", path);
    expect(2, where, "train", path, NULL, NULL);
    expect(2, "did you mean 'epochs'", "train", path, NULL, NULL);
    snprintf(path, sizeof path, "%s/missing.yaml", dir);
    expect(2, "missing.yaml", "train", path, NULL, NULL);
    free(dir);
}

static void test_plugins_lists_and_documents(void **state)
{
    (void)state;
    expect(0, "daecl-corruption-masking.so", "plugins", NULL, NULL, NULL);
    expect(0, "daecl-backend-cpu.so", "plugins", NULL, NULL, NULL);
    expect(0, "daecl-likelihood-gaussian_learned.so", "plugins", NULL, NULL, NULL);
    char *out = NULL;
    assert_int_equal(daecl(&out, "plugins", "masking", NULL, NULL), 0);
    assert_non_null(strstr(out, "corruption plugin 'masking'"));
    assert_non_null(strstr(out, "0.25"));
    assert_non_null(strstr(out, "[0, 1]"));
    free(out);
    /* "gaussian" names a corruption and a likelihood: both are shown, or
     * one when the kind is given. */
    assert_int_equal(daecl(&out, "plugins", "gaussian", NULL, NULL), 0);
    assert_non_null(strstr(out, "corruption plugin 'gaussian'"));
    assert_non_null(strstr(out, "likelihood plugin 'gaussian'"));
    free(out);
    assert_int_equal(daecl(&out, "plugins", "likelihood/gaussian", NULL, NULL), 0);
    assert_null(strstr(out, "corruption plugin"));
    free(out);
    /* A likelihood shows the support it declares and the data it accepts. */
    assert_int_equal(daecl(&out, "plugins", "bernoulli", NULL, NULL), 0);
    assert_non_null(strstr(out, "support: {0, 1}; accepts data in [0, 1]"));
    free(out);
}

static void test_train_runs_and_reports_its_folder(void **state)
{
    (void)state;
    char *dir = test_tmpdir("cli-train");
    char data[1100], cfg[1100], out[1100], text[2048];
    snprintf(data, sizeof data, "%s/data.idx", dir);
    unsigned char idx[16 + 40 * 9] = {0, 0, 0x08, 3, 0, 0, 0, 40, 0, 0, 0, 3, 0, 0, 0, 3};
    for (size_t i = 16; i < sizeof idx; i++)
        idx[i] = (unsigned char)(i * 29);
    test_write_file(data, idx, sizeof idx);
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(text, sizeof text,
             "data: {train: data.idx, test: data.idx}\nmodel: {encoder: [{units: 4}]}\n"
             "train: {epochs: 2, batch_size: 8}\nbackend: cpu\n");
    test_write_file(cfg, text, strlen(text));
    snprintf(out, sizeof out, "%s/run", dir);
    expect(0, "run folder: ", "train", cfg, "--out", out);
    /* plot redraws the run's pictures (3x3 examples: not image tiles, so
     * only the curves), eval measures it. */
    char curves[1200];
    snprintf(curves, sizeof curves, "%s/curves.png", out);
    assert_int_equal(remove(curves), 0);
    expect(0, "pictures written", "plot", out, NULL, NULL);
    assert_int_equal(access(curves, R_OK), 0);
    expect(0, "test NLL (nats/example): clean", "eval", out, NULL, NULL);
    /* --field on 9-D data is refused from the checkpoint, before a device
     * opens (the debug log names every backend it opens). */
    char *argv[] = {DAECL_TEST_BIN, "plot", out, "--field", NULL};
    char *env[] = {"DAECL_LOG=debug", NULL};
    char *said = NULL;
    int rc = test_run(argv, env, &said);
    if (rc != 2 || !strstr(said, "its data have 9 values per example and --field needs 2-D "
                                 "data; run `daecl plot") || strstr(said, "opening the"))
        fail_msg("plot --field on 9-D data: exit %d, output:\n%s", rc, said);
    free(said);
    /* A folder named like a sweep's points (003_corruption.p=0.25_seed=7)
     * is a target, not an override: a '/' before the '='. */
    char swept[1200];
    snprintf(swept, sizeof swept, "%s/001_seed=42", dir);
    assert_int_equal(rename(out, swept), 0);
    expect(0, "test NLL (nats/example): clean", "eval", swept, NULL, NULL);
    expect(0, "daecl check: ok", "check", swept, "train.epochs=3", NULL);
    assert_int_equal(rename(swept, out), 0);
    /* A run-time error (the data file vanished) exits 1. */
    remove(data);
    snprintf(out, sizeof out, "%s/run2", dir);
    expect(1, "data.idx", "train", cfg, "--out", out);
    free(dir);
}

/* `daecl ARGS...` (NULL-terminated, up to 7) exits want_rc saying want_text. */
static void expect_args(int want_rc, const char *want_text, const char *const args[])
{
    char *argv[9] = {DAECL_TEST_BIN};
    for (int i = 0; args[i] && i < 7; i++)
        argv[i + 1] = (char *)args[i], argv[i + 2] = NULL;
    char *out = NULL;
    int rc = test_run(argv, NULL, &out);
    if (rc != want_rc || !strstr(out, want_text))
        fail_msg("daecl %s %s %s: exit %d (want %d), output:\n%s\n(wanted '%s')", args[0],
                 args[1] ? args[1] : "", args[2] ? args[2] : "", rc, want_rc, out, want_text);
    free(out);
}

/* sample and eval --parzen read their options through one table-driven
 * reader (cli/common.c): the same sentences for the same mistakes, each
 * command's own for what is its own. Usage errors, before any run opens. */
static void test_sample_and_eval_parzen_read_options_alike(void **state)
{
    (void)state;
    const char *const a1[] = {"sample", "r", "--chains", NULL};
    expect_args(2, "--chains needs a value", a1);
    const char *const a2[] = {"eval", "r", "--parzen", "--steps", "--quiet", NULL};
    expect_args(2, "--steps needs a value", a2);
    const char *const a3[] = {"sample", "r", "--thin", "0", NULL};
    expect_args(2, "--thin wants a whole number from 1 to 4294967295, not '0'", a3);
    const char *const a4[] = {"eval", "--parzen", "r", "--valid", "-3", NULL};
    expect_args(2, "--valid wants a whole number from 1 to ", a4);
    const char *const a5[] = {"eval", "--parzen", "r", "--seed", "x", NULL};
    expect_args(2, "--seed wants a whole number from 0 to 18446744073709551615, not 'x'", a5);
    const char *const a6[] = {"sample", "r", "--bogus", NULL};
    expect_args(2, "unknown option '--bogus'", a6);
    const char *const a7[] = {"sample", "--chains=4", "r", NULL};
    expect_args(2, "unknown option '--chains=4'", a7);
    const char *const a8[] = {"eval", "r", "--parzen", "--chains", "4", NULL};
    expect_args(2, "'--chains' is not an option of eval --parzen", a8);
    const char *const a9[] = {"sample", "-q", "--mean", NULL};
    expect_args(2, "which run? give its folder", a9);
    const char *const a10[] = {"eval", "--parzen", "-q", NULL};
    expect_args(2, "which run? give its folder", a10);
    const char *const a11[] = {"sample", "r", "s", NULL};
    expect_args(2, "unexpected argument 's' (overrides look like backend.plugin=cpu)", a11);
    const char *const a12[] = {"eval", "--parzen", "r", "s", NULL};
    expect_args(2, "unexpected argument 's' (overrides look like backend.plugin=cpu)", a12);
    const char *const a13[] = {"sample", "r", "--start", "up", NULL};
    expect_args(2, "--start wants test, noise or a finite number, not 'up'", a13);
    const char *const a14[] = {"eval", "--parzen", "r", "--sigmas", "0.1:1:x", NULL};
    expect_args(2, "--sigmas' K wants a whole number from 0 to 1000000, not 'x'", a14);
}

/* Runs `daecl ARGS...` with stdout on /dev/full and stderr captured;
 * returns the exit status. */
static int to_full_disk(char **err_out, char *const args[])
{
    char *argv[8] = {DAECL_TEST_BIN};
    for (int i = 0; args[i] && i < 6; i++)
        argv[i + 1] = args[i], argv[i + 2] = NULL;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int full = open("/dev/full", O_WRONLY);
        if (full < 0)
            _exit(99);
        dup2(full, 1);
        dup2(fds[1], 2);
        close(fds[0]);
        execv(DAECL_TEST_BIN, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    ssize_t got;
    while ((got = read(fds[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    *err_out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Commands whose product is their output fail when it cannot be written,
 * as coreutils do; a run's product is its folder. */
/* Under an MPI launcher's environment: a sweep (one process, many
 * trainings) is refused on rank 0 and quiet on the others; a daecl with
 * the mpi plugin trains as the launcher's rank (tests/test_mpi_train.c). */
static void test_sweep_refused_under_mpirun(void **state)
{
    (void)state;
    char *argv[] = {DAECL_TEST_BIN, "sweep", DAECL_TEST_SOURCE_DIR "/configs/fashion-mnist.yaml",
                    "train.epochs=1,2", NULL};
    char *env0[] = {"OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=0", NULL};
    char *env1[] = {"OMPI_COMM_WORLD_SIZE=2", "OMPI_COMM_WORLD_RANK=1", NULL};
    char *out = NULL;
    assert_int_equal(test_run(argv, env0, &out), 2);
    assert_non_null(strstr(out, "started by an MPI launcher as 2 ranks"));
    free(out);
    assert_int_equal(test_run(argv, env1, &out), 2);
    assert_string_equal(out, "");
    free(out);
}

static void test_listings_exit_1_when_stdout_is_full(void **state)
{
    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    static char *const plugins[] = {"plugins", NULL}, *const devices[] = {"devices", "--backend",
                                                                          "cpu", NULL};
    static char *const help[] = {"--help", NULL}, *const doc[] = {"plugins", "masking", NULL};
    char *const *cmds[] = {plugins, devices, help, doc};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char *err = NULL;
        int rc = to_full_disk(&err, cmds[i]);
        if (rc != 1 || !strstr(err, "cannot write to standard output: No space left on device"))
            fail_msg("daecl %s > /dev/full: exit %d, stderr:\n%s", cmds[i][0], rc, err);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_listings_exit_1_when_stdout_is_full),
        cmocka_unit_test(test_usage_errors_exit_2),
        cmocka_unit_test(test_sample_and_eval_parzen_read_options_alike),
        cmocka_unit_test(test_precompile_takes_the_device_as_backend_parameters),
        cmocka_unit_test(test_config_errors_exit_2_with_position),
        cmocka_unit_test(test_plugins_lists_and_documents),
        cmocka_unit_test(test_train_runs_and_reports_its_folder),
        cmocka_unit_test(test_sweep_refused_under_mpirun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
