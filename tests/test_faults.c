/* daecl tests — faults survived with nothing lost: kill -9 at 20 moments of a
 * run that checkpoints every step (several inside checkpoint writes), a kill
 * after the final checkpoint, a file size limit that a later checkpoint
 * outgrows, OpenCL calls failed on purpose (DAECL_FAULT) and a corruption
 * plugin that fails mid-run. After each, the run folder holds a checkpoint
 * that loads (or none, when the fault came before the first), no temporary
 * file, and resuming ends bit-identical to a run that was never disturbed.
 * docs/testing.md ("Faults") has the figures. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "tests/support.h"

/* ---- helpers ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* splitmix64: the kill moments come from a fixed seed. */
static double next_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Runs `daecl ARGS...` (NULL-terminated, at most 18) with extra environment
 * entries (NULL-terminated, may be NULL) and a file size limit (0: none).
 * Returns the exit status (128 + signal when killed); *out gets stdout and
 * stderr. Under the sanitizers a leak or a UB report ends a run with status
 * 1, the status of an expected failure, so the report itself fails the
 * test here. */
static int daecl(char *const env[], rlim_t fsize, char **out, ...)
{
    char *argv[20] = {DAECL_TEST_BIN};
    va_list ap;
    va_start(ap, out);
    size_t n = 1;
    while (n < 19 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    int rc = test_run_fsize(argv, env, fsize, out);
    if (strstr(*out, "Sanitizer") || strstr(*out, "runtime error:"))
        fail_msg("`daecl %s` reported a sanitizer error:\n%s", argv[1], *out);
    return rc;
}

/* Starts `daecl ARGV...` in the background, its output discarded. */
static pid_t start(char *const argv[])
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* The number of temporary files (".NAME.tmp.PID") in dir; their names go
 * into names (n bytes) for the failure message. */
static int temp_files(const char *dir, char *names, size_t n)
{
    DIR *d = opendir(dir);
    int count = 0;
    names[0] = '\0';
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp.")) {
            size_t len = strlen(names);
            snprintf(names + len, n - len, "%s ", e->d_name);
            count++;
        }
    closedir(d);
    return count;
}

static void assert_no_temp_files(const char *dir)
{
    char names[1024];
    if (temp_files(dir, names, sizeof names))
        fail_msg("%s holds temporary files: %s", dir, names);
}

/* Loads dir/checkpoint.safetensors with daecl_checkpoint_load into the model
 * of the experiment in exp_dir (any corruption: the model does not depend on
 * it) and returns its step. */
static uint64_t checkpoint_loads(const char *exp_dir, const char *dir)
{
    char cfg_path[1200], path[1300];
    snprintf(cfg_path, sizeof cfg_path, "%s/exp.yaml", exp_dir);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    if (daecl_config_load(cfg_path, NULL, 0, test_registry(), &cfg, &err))
        fail_msg("config %s: %s", cfg_path, err.msg);
    daecl_model m;
    assert_int_equal(daecl_model_init(&m, cfg, 16, 1, &err), 0);
    daecl_config_destroy(cfg);
    float *p = malloc(m.n_params * sizeof(float)), *s1 = malloc(m.n_params * sizeof(float));
    float *s2 = malloc(m.n_params * sizeof(float));
    assert_true(p && s1 && s2);
    daecl_ckpt_state st;
    if (daecl_checkpoint_load(path, &m, p, s1, s2, &st, &err))
        fail_msg("the checkpoint left in %s does not load: %s", dir, err.msg);
    free(p);
    free(s1);
    free(s2);
    return st.step;
}

/* summary.json of a run, parsed. */
static cJSON *summary(const char *dir)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    if (!exists(path))
        fail_msg("%s has no summary.json", dir);
    char *text = test_read_file(path, NULL);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_non_null(o);
    return o;
}

/* The run in dir finished exactly like the one in ref: checkpoint, metrics
 * epochs and train NLL, every picture, the summary's numbers (not its
 * timings), and no temporary file. */
static void same_finished_run(const char *ref, const char *dir)
{
    test_same_checkpoints(ref, dir);
    char ea[32], eb[32];
    double na = 0, nb = 1;
    test_epoch_lines(ref, ea, sizeof ea, &na);
    test_epoch_lines(dir, eb, sizeof eb, &nb);
    assert_string_equal(ea, eb);
    assert_true(na == nb);
    static const char *const pictures[] = {"filters.png", "reconstructions.png", "curves.png"};
    for (size_t i = 0; i < 3; i++) {
        char path[1300];
        snprintf(path, sizeof path, "%s/%s", dir, pictures[i]);
        if (!exists(path))
            fail_msg("%s has no %s", dir, pictures[i]);
    }
    cJSON *sa = summary(ref), *sb = summary(dir);
    static const char *const keys[] = {"status", "epochs", "steps", "train_nll", "test_nll_clean",
                                       "test_nll_corrupted", "mse_reconstruction"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *a = cJSON_GetObjectItem(sa, keys[i]), *b = cJSON_GetObjectItem(sb, keys[i]);
        if (!a || !b || !cJSON_Compare(a, b, 1))
            fail_msg("summary.json's %s differs between %s and %s", keys[i], ref, dir);
    }
    cJSON_Delete(sa);
    cJSON_Delete(sb);
    assert_no_temp_files(dir);
}

/* The one "daecl: error: " line of a child's output (NULL if none), after
 * checking there is exactly one. */
static const char *error_line(const char *out, char *line, size_t n)
{
    const char *e = strstr(out, "daecl: error: ");
    if (!e)
        return NULL;
    if (strstr(e + 1, "daecl: error: "))
        fail_msg("more than one error sentence:\n%s", out);
    size_t len = strcspn(e, "\n");
    snprintf(line, n, "%.*s", (int)len, e);
    return line;
}

/* True when `daecl devices` finds an OpenCL device. Asked of a child so
 * that this process never starts the OpenCL runtime: every run here is a
 * child, and a process without the driver's threads keeps LeakSanitizer's
 * exit-time check clear of the race that crashes its tracer ("Tracer caught
 * signal 11") when threads come and go during it. When a device exists,
 * the OpenCL runs below must open it. */
static int have_opencl(void)
{
    char *out = NULL;
    int rc = daecl(NULL, 0, &out, "devices", (char *)NULL);
    int found = rc == 0 && strstr(out, "<- default") != NULL;
    free(out);
    return found;
}

/* ---- kill -9 -------------------------------------------------------------------- */

enum { KILL_ROUNDS = 20 };

/* Runs argv in the background and sends SIGKILL after delay seconds or,
 * with at_write, at the first moment after it that the checkpoint's
 * temporary file in run_dir exists. Returns 1 when the kill landed, 0 when
 * the child finished first. *seen says whether a checkpoint existed before
 * the kill; *in_write whether the temporary file outlived it. */
static int kill_after(char *const argv[], const char *run_dir, double delay, int at_write,
                      int *seen, int *in_write)
{
    char ckpt[1400], tmp[1400];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
    int status = 0, done = 0;
    double t0 = now_s();
    pid_t pid = start(argv);
    snprintf(tmp, sizeof tmp, "%s/.checkpoint.safetensors.tmp.%ld", run_dir, (long)pid);
    *seen = exists(ckpt);
    while (!done && now_s() - t0 < delay) {
        *seen |= exists(ckpt);
        done = waitpid(pid, &status, WNOHANG) == pid;
        usleep(100);
    }
    /* Polled without sleeping: a checkpoint write lasts about a millisecond. */
    while (at_write && !done && !exists(tmp)) {
        *seen |= exists(ckpt);
        done = waitpid(pid, &status, WNOHANG) == pid;
    }
    if (!done) {
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
    }
    *in_write = exists(tmp);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        return 1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("`daecl %s` in %s failed by itself (status %d)", argv[1], run_dir, status);
    return 0;
}

/* Each round starts the run afresh in its own folder and kills it with
 * SIGKILL after a delay spread over the run's length (round i near i/20 of
 * it) or, every third round, at the first moment after the delay that a
 * checkpoint is being written. Every fourth round then also kills the
 * resumed run at a random moment. After each kill a checkpoint seen before
 * it is still there and loads; then resuming (or training again, when there
 * was no checkpoint yet) finishes bit-identical to an undisturbed run. */
static void test_kill_9_at_random_moments_loses_nothing(void **state)
{
    (void)state;
    char *dir = test_small_experiment("kill", "checkpoint_unit: step, checkpoint_every: 1", "cpu");
    char exp[1200], ref[1200], run_dir[1300], ckpt[1400];
    snprintf(exp, sizeof exp, "%s/exp.yaml", dir);
    snprintf(ref, sizeof ref, "%s/whole", dir);
    char *out = NULL;
    double t0 = now_s();
    if (daecl(NULL, 0, &out, "train", exp, "--out", ref, "--quiet", (char *)NULL) != 0)
        fail_msg("the undisturbed run failed:\n%s", out);
    double run_s = now_s() - t0;
    free(out);

    uint64_t rng = 20240611;
    int kills = 0, in_write = 0, before_first = 0, after_last = 0;
    char steps[512] = "";
    for (int i = 0; i < KILL_ROUNDS; i++) {
        double delay = run_s * 0.95 * ((double)i + next_uniform(&rng)) / KILL_ROUNDS;
        int killed = 0, seen = 0, wrote = 0;
        /* A run that finishes before its kill (this machine was quicker than
         * the reference run) is tried again with half the delay. */
        for (int attempt = 0; attempt < 6 && !killed; attempt++, delay /= 2) {
            snprintf(run_dir, sizeof run_dir, "%s/kill-%02d-%d", dir, i, attempt);
            char *argv[] = {DAECL_TEST_BIN, "train", exp, "--out", run_dir, "--quiet", NULL};
            killed = kill_after(argv, run_dir, delay, i % 3 == 1, &seen, &wrote);
        }
        if (!killed)
            fail_msg("round %d: the run always finished before the kill", i);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
        for (int resumed = 0;; resumed = 1) {
            kills++;
            in_write += wrote;
            uint64_t step = 0;
            if (exists(ckpt))
                step = checkpoint_loads(dir, run_dir);
            else if (seen)
                fail_msg("round %d: the checkpoint vanished with the kill", i);
            else
                before_first++;
            after_last += step == 21;
            size_t len = strlen(steps);
            snprintf(steps + len, sizeof steps - len, "%s%s%s%llu", len ? " " : "",
                     resumed ? "r" : "", exists(ckpt) ? "" : "-", (unsigned long long)step);
            if (resumed || i % 4 != 3 || !exists(ckpt))
                break;
            /* Kill the resumed run too, somewhere in its length. */
            char *argv[] = {DAECL_TEST_BIN, "resume", run_dir, "--quiet", NULL};
            if (!kill_after(argv, run_dir, run_s * next_uniform(&rng), 0, &seen, &wrote))
                break;
        }
        /* Continue it: resume, or train again when nothing was saved. */
        int rc = exists(ckpt) ? daecl(NULL, 0, &out, "resume", run_dir, "--quiet", (char *)NULL)
                              : daecl(NULL, 0, &out, "train", exp, "--out", run_dir, "--quiet",
                                      (char *)NULL);
        if (rc != 0)
            fail_msg("round %d: continuing after the kill failed (%d):\n%s", i, rc, out);
        free(out);
        same_finished_run(ref, run_dir);
    }
    print_message("kill -9: %d kills in %d rounds survived (run %.2f s): %d inside a checkpoint "
                  "write, %d before the first checkpoint, %d after the last; checkpoint step at "
                  "each kill (r: of a resumed run, -: none yet): %s\n",
                  kills, KILL_ROUNDS, run_s, in_write, before_first, after_last, steps);
    /* At least one kill must catch a write in the act for the test to show
     * anything about it (on a slow disk nearly every third does). */
    assert_true(in_write >= 1);
    free(dir);
}

/* A kill after the final checkpoint, before the pictures and summary.json
 * (the last thing a run writes), leaves final weights without outputs:
 * resuming writes them, with the same numbers, and takes no step, also for
 * a run that stopped at train.max_steps. */
static void test_resume_after_the_last_checkpoint_writes_the_missing_outputs(void **state)
{
    (void)state;
    char *dir = test_small_experiment("tail", "checkpoint_unit: step, checkpoint_every: 4", "cpu");
    char exp[1200], run_dir[1200], ckpt[1300], path[1300];
    snprintf(exp, sizeof exp, "%s/exp.yaml", dir);
    const char *stops[] = {"train.max_steps=0", "train.max_steps=10"};
    for (int k = 0; k < 2; k++) {
        snprintf(run_dir, sizeof run_dir, "%s/run-%d", dir, k);
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
        char *out = NULL;
        assert_int_equal(daecl(NULL, 0, &out, "train", exp, "--out", run_dir, "--quiet",
                               stops[k], (char *)NULL),
                         0);
        free(out);
        cJSON *before = summary(run_dir);
        size_t n0, n1;
        char *bytes0 = test_read_file(ckpt, &n0);
        snprintf(path, sizeof path, "%s/summary.json", run_dir);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/curves.png", run_dir);
        assert_int_equal(unlink(path), 0);
        for (int again = 0; again < 2; again++) {
            assert_int_equal(daecl(NULL, 0, &out, "resume", run_dir, (char *)NULL), 0);
            if (again && !strstr(out, "already"))
                fail_msg("a complete run was not left alone:\n%s", out);
            free(out);
            char *bytes1 = test_read_file(ckpt, &n1);
            assert_int_equal(n0, n1);
            assert_memory_equal(bytes0, bytes1, n0);
            free(bytes1);
        }
        assert_true(exists(path));
        cJSON *after = summary(run_dir);
        static const char *const keys[] = {"status", "epochs", "steps", "train_nll",
                                           "test_nll_clean", "test_nll_corrupted",
                                           "mse_reconstruction"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (!cJSON_Compare(cJSON_GetObjectItem(before, keys[i]),
                               cJSON_GetObjectItem(after, keys[i]), 1))
                fail_msg("%s: summary.json's %s changed", stops[k], keys[i]);
        cJSON_Delete(before);
        cJSON_Delete(after);
        free(bytes0);
        assert_no_temp_files(run_dir);
    }
    free(dir);
}

/* ---- disk full ---------------------------------------------------------------------- */

/* A checkpoint that cannot be written (file size limit: EFBIG, handled like
 * ENOSPC) stops the run with one sentence; the previous checkpoint stays
 * byte for byte, no temporary file is left, and once there is room the run
 * resumes and ends as if nothing happened. */
static void test_disk_full_keeps_the_previous_checkpoint(void **state)
{
    (void)state;
    char *dir = test_small_experiment("diskfull", "checkpoint_unit: epoch", "cpu");
    char exp[1200], ref[1200], run_dir[1200], ckpt[1300], out_line[2048];
    snprintf(exp, sizeof exp, "%s/exp.yaml", dir);
    snprintf(ref, sizeof ref, "%s/whole", dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
    char *out = NULL;
    assert_int_equal(daecl(NULL, 0, &out, "train", exp, "--out", ref, "--quiet", (char *)NULL), 0);
    free(out);
    assert_int_equal(daecl(NULL, 0, &out, "train", exp, "--out", run_dir, "--quiet",
                           "train.epochs=1", (char *)NULL),
                     0);
    free(out);
    size_t n0, n1;
    char *before = test_read_file(ckpt, &n0);
    /* Room for config.yaml and metrics.jsonl, not for a checkpoint. */
    rlim_t limit = n0 / 2;
    char path[1300];
    snprintf(path, sizeof path, "%s/config.yaml", run_dir);
    free(test_read_file(path, &n1));
    assert_true(n1 < limit);
    int rc = daecl(NULL, limit, &out, "resume", run_dir, "--quiet", "train.epochs=3", (char *)NULL);
    const char *e = error_line(out, out_line, sizeof out_line);
    if (rc != 1 || !e)
        fail_msg("want exit status 1 and an error, got %d:\n%s", rc, out);
    if (!strstr(e, "checkpoint.safetensors") || !strstr(e, "free disk space") ||
        !strstr(e, "previous checkpoint is intact"))
        fail_msg("the sentence does not name the checkpoint and the remedy: %s", e);
    free(out);
    char *after = test_read_file(ckpt, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    assert_no_temp_files(run_dir);
    /* With room again, resuming finishes the same run. */
    assert_int_equal(daecl(NULL, 0, &out, "resume", run_dir, "--quiet", "train.epochs=3",
                           (char *)NULL),
                     0);
    free(out);
    same_finished_run(ref, run_dir);
    free(dir);
}

/* ---- injected OpenCL faults ------------------------------------------------------- */

/* One fault: DAECL_FAULT's value, the calls the sentence may name, and the
 * code it must name. */
typedef struct fault_case {
    char spec[64];
    const char *calls[6];
    const char *code;
} fault_case;

#define ENQUEUE_CALLS                                                                              \
    {"clEnqueueNDRangeKernel", "clEnqueueReadBuffer", "clEnqueueWriteBuffer",                      \
     "clEnqueueFillBuffer", "clEnqueueCopyBuffer", "CLBlastSgemm"}

static void test_injected_opencl_faults_fail_in_one_sentence_and_lose_nothing(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    /* A checkpoint every 4 steps: faults late in the run find some. The
     * program cache is off so that build:N always meets clBuildProgram N. */
    char *dir =
        test_small_experiment("devfault", "checkpoint_unit: step, checkpoint_every: 4", "opencl");
    char exp[1200], ref[1200], run_dir[1300], line[2048];
    snprintf(exp, sizeof exp, "%s/exp.yaml", dir);
    snprintf(ref, sizeof ref, "%s/whole", dir);
    char *out = NULL;
    /* The undisturbed run counts the calls of each class. */
    char *count_env[] = {"DAECL_CACHE=0", "DAECL_FAULT=enqueue:4000000000", NULL};
    if (daecl(count_env, 0, &out, "train", exp, "--out", ref, "--quiet", (char *)NULL) != 0)
        fail_msg("the undisturbed run failed:\n%s", out);
    unsigned long n_alloc = 0, n_enq = 0, n_build = 0;
    const char *c = strstr(out, "DAECL_FAULT counted ");
    if (!c || sscanf(c, "DAECL_FAULT counted %lu alloc, %lu enqueue and %lu build", &n_alloc,
                     &n_enq, &n_build) != 3)
        fail_msg("no call counts in:\n%s", out);
    free(out);
    assert_true(n_alloc >= 4 && n_enq >= 100 && n_build >= 3);

    fault_case cases[] = {
        {"alloc:1", {"clCreateBuffer"}, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
        {"alloc:4", {"clCreateBuffer"}, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
        {"", {"clCreateBuffer"}, "CL_MEM_OBJECT_ALLOCATION_FAILURE"}, /* the last one */
        {"enqueue:1", ENQUEUE_CALLS, "CL_OUT_OF_RESOURCES"},
        {"", ENQUEUE_CALLS, "CL_OUT_OF_RESOURCES"}, /* mid-run */
        {"", ENQUEUE_CALLS, "CL_OUT_OF_RESOURCES"}, /* the last one */
        {"build:1", {"clBuildProgram"}, "CL_BUILD_PROGRAM_FAILURE"},
        {"", {"clBuildProgram"}, "CL_BUILD_PROGRAM_FAILURE"}, /* the last one (a plugin's) */
        {"build:99,alloc:2", {"clCreateBuffer"}, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
    };
    snprintf(cases[2].spec, sizeof cases[2].spec, "alloc:%lu", n_alloc);
    snprintf(cases[4].spec, sizeof cases[4].spec, "enqueue:%lu", n_enq / 2);
    snprintf(cases[5].spec, sizeof cases[5].spec, "enqueue:%lu", n_enq);
    snprintf(cases[7].spec, sizeof cases[7].spec, "build:%lu", n_build);
    size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n_cases; i++) {
        char fault[sizeof cases[0].spec + 16];
        snprintf(fault, sizeof fault, "DAECL_FAULT=%.63s", cases[i].spec);
        char *env[] = {"DAECL_CACHE=0", fault, NULL};
        snprintf(run_dir, sizeof run_dir, "%s/fault-%zu", dir, i);
        int rc = daecl(env, 0, &out, "train", exp, "--out", run_dir, "--quiet", (char *)NULL);
        const char *e = error_line(out, line, sizeof line);
        if (rc != 1 || !e)
            fail_msg("%s: want exit status 1 and an error, got %d:\n%s", fault, rc, out);
        int named = 0;
        for (size_t k = 0; k < 6 && cases[i].calls[k]; k++)
            named |= strstr(e, cases[i].calls[k]) != NULL;
        if (!named || !strstr(e, cases[i].code))
            fail_msg("%s: the sentence does not name the call and %s: %s", fault, cases[i].code,
                     e);
        free(out);
        /* Whatever the run got to: no half-written file, and a checkpoint,
         * if one was written before the fault, that loads. */
        char ckpt[1400];
        snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
        assert_no_temp_files(run_dir);
        if (exists(ckpt))
            checkpoint_loads(dir, run_dir);
    }
    /* The mid-run fault left a checkpoint: resumed without the fault, the
     * run ends as the undisturbed one did. */
    snprintf(run_dir, sizeof run_dir, "%s/fault-4", dir);
    char *env[] = {"DAECL_CACHE=0", NULL};
    if (daecl(env, 0, &out, "resume", run_dir, "--quiet", (char *)NULL) != 0)
        fail_msg("resume after the fault failed:\n%s", out);
    free(out);
    same_finished_run(ref, run_dir);
    print_message("DAECL_FAULT: %zu faults survived (%lu alloc, %lu enqueue, %lu build calls in "
                  "the run)\n",
                  n_cases, n_alloc, n_enq, n_build);
    free(dir);
}

/* ---- a plugin that fails mid-run --------------------------------------------------- */

/* tests/plugins/fail_at: its host_apply refuses from training step 10 on
 * (DAECL_FAIL_AT=1:45: 7 steps of 15 rows an epoch, so step 10 is epoch 1's
 * fourth batch, at position 45). The run stops with the plugin's own sentence,
 * the checkpoint of step 8 stays (the same weights as a run stopped there on
 * purpose), and without the variable the run resumes, with its config
 * unchanged, to the end of an undisturbed one. */
static void fails_mid_run(const char *backend, const char *want_prefix)
{
    char *dir =
        test_small_experiment("failat", "checkpoint_unit: step, checkpoint_every: 4", backend);
    char exp[1200], ref[1200], stop[1200], run_dir[1200], line[2048];
    snprintf(exp, sizeof exp, "%s/exp.yaml", dir);
    snprintf(ref, sizeof ref, "%s/whole", dir);
    snprintf(stop, sizeof stop, "%s/stop", dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    char *env[] = {"DAECL_PLUGIN_PATH=" DAECL_TEST_PLUGIN_CASES_DIR "/fail_at", NULL};
    char *env_fail[] = {"DAECL_PLUGIN_PATH=" DAECL_TEST_PLUGIN_CASES_DIR "/fail_at",
                        "DAECL_FAIL_AT=1:45", NULL};
    char *out = NULL;
    char *never = "corruption=fail_at";
    assert_int_equal(daecl(env, 0, &out, "train", exp, "--out", ref, "--quiet", never,
                           (char *)NULL),
                     0);
    free(out);
    assert_int_equal(daecl(env, 0, &out, "train", exp, "--out", stop, "--quiet", never,
                           "train.max_steps=8", (char *)NULL),
                     0);
    free(out);
    int rc = daecl(env_fail, 0, &out, "train", exp, "--out", run_dir, "--quiet", never,
                   (char *)NULL);
    const char *e = error_line(out, line, sizeof line);
    if (rc != 1 || !e || !strstr(e, "fail_at refuses training epoch 1 position 45") ||
        !strstr(e, want_prefix))
        fail_msg("%s: want exit status 1 and the plugin's sentence, got %d:\n%s", backend, rc,
                 out);
    free(out);
    assert_int_equal(checkpoint_loads(dir, run_dir), 8);
    test_same_checkpoints(stop, run_dir);
    assert_no_temp_files(run_dir);
    rc = daecl(env, 0, &out, "resume", run_dir, "--quiet", (char *)NULL);
    if (rc != 0)
        fail_msg("%s: resume failed:\n%s", backend, out);
    free(out);
    same_finished_run(ref, run_dir);
    free(dir);
}

/* The cpu backend calls the plugin itself and passes its sentence on. */
static void test_failing_plugin_stops_a_cpu_run_and_keeps_the_checkpoint(void **state)
{
    (void)state;
    fails_mid_run("cpu", "corruption plugin 'fail_at' failed in host_apply: ");
}

/* On opencl the core runs the plugin on the host and names it
 * (core/session.c). */
static void test_failing_plugin_stops_an_opencl_run_and_keeps_the_checkpoint(void **state)
{
    (void)state;
    if (!have_opencl())
        skip();
    fails_mid_run("opencl", "corruption plugin 'fail_at' failed in host_apply: ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_9_at_random_moments_loses_nothing),
        cmocka_unit_test(test_resume_after_the_last_checkpoint_writes_the_missing_outputs),
        cmocka_unit_test(test_disk_full_keeps_the_previous_checkpoint),
        cmocka_unit_test(test_injected_opencl_faults_fail_in_one_sentence_and_lose_nothing),
        cmocka_unit_test(test_failing_plugin_stops_a_cpu_run_and_keeps_the_checkpoint),
        cmocka_unit_test(test_failing_plugin_stops_an_opencl_run_and_keeps_the_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
