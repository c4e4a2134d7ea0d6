/* Training over MPI ranks (`mpirun -np N daecl train`): the weights after
 * 20 steps of SGD with momentum and of Adam on 2 and 3 ranks against one
 * process, the test NLL, the world in summary.json; a rank killed in the
 * middle of an epoch stops the job with the last checkpoint intact, and a
 * resume with another rank count completes; SIGTERM to one rank stops
 * every rank at the same step with a checkpoint; a failure on rank 0 alone
 * is said, once, before the job ends. The ranks run the cpu
 * backend on one thread each; idle ranks yield (2 cores). Skipped where
 * CMake found no MPI (DAECL_TEST_MPIEXEC empty). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/runfolder.h"
#include "core/safetensors.h"
#include "tests/support.h"

#define ROWS 362
#define DIM 24

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir("mpi_train");
    float *x = malloc((size_t)(ROWS + 100) * DIM * sizeof *x);
    assert_non_null(x);
    test_fill_uniform(x, (size_t)(ROWS + 100) * DIM, 7, 0.0f, 1.0f);
    for (size_t i = 0; i < (size_t)(ROWS + 100) * DIM; i++)
        x[i] = ((i / DIM) % 3 == (i % DIM) % 3) ? 0.7f + 0.3f * x[i] : 0.3f * x[i];
    char path[4200], shape[64];
    snprintf(path, sizeof path, "%s/train.npy", dir);
    snprintf(shape, sizeof shape, "(%d, %d)", ROWS, DIM);
    test_write_npy(path, "<f4", x, (size_t)ROWS * DIM * sizeof *x, shape);
    snprintf(path, sizeof path, "%s/test.npy", dir);
    test_write_npy(path, "<f4", x + (size_t)ROWS * DIM, (size_t)100 * DIM * sizeof *x,
                   "(100, 24)");
    free(x);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

/* exp-<tag>.yaml: the experiment with `optimizer` and `train`, on the cpu
 * backend (one thread) or `backend`. */
static void write_config_on(const char *tag, const char *optimizer, const char *train,
                            const char *backend)
{
    char yaml[2048], path[4200];
    snprintf(yaml, sizeof yaml,
             "name: mpi\nseed: 3\n"
             "data: {train: train.npy, test: test.npy}\n"
             "model: {encoder: [{units: 10, activation: sigmoid}]}\n"
             "corruption: {plugin: masking, p: 0.3}\n"
             "likelihood: bernoulli\n"
             "optimizer: %s\n"
             "train: %s\n"
             "eval: {probe: false, denoising: false}\n"
             "backend: %s\n",
             optimizer, train, backend);
    snprintf(path, sizeof path, "%s/exp-%s.yaml", dir, tag);
    test_write_file(path, yaml, strlen(yaml));
}

static void write_config(const char *tag, const char *optimizer, const char *train)
{
    write_config_on(tag, optimizer, train, "{plugin: cpu, threads: 1}");
}

/* daecl ARGS on np ranks (np 0: one process without mpirun); `wrap` (or
 * NULL) is a shell line run by each rank before it execs daecl, with
 * $OMPI_COMM_WORLD_RANK set. Returns the exit status; *out the output. */
static int daecl_on(int np, const char *wrap, const char *const *args, char **out)
{
    char *argv[64];
    char npv[16];
    size_t n = 0;
    if (np) {
        snprintf(npv, sizeof npv, "%d", np);
        const char *pre[] = {DAECL_TEST_MPIEXEC, "--allow-run-as-root", "--oversubscribe",
                             "--bind-to", "none", "--mca", "mpi_yield_when_idle", "1",
                             "-np", npv};
        for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
            argv[n++] = (char *)pre[i];
    }
    if (wrap) {
        argv[n++] = "/bin/sh";
        argv[n++] = "-c";
        argv[n++] = (char *)wrap;
    }
    argv[n++] = DAECL_TEST_BIN;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return test_run(argv, NULL, out);
}

static cJSON *read_json(const char *run, const char *name)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/%s", run, name);
    size_t n;
    char *text = test_read_file(path, &n);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_non_null(o);
    return o;
}

static double test_nll(const char *run)
{
    cJSON *o = read_json(run, "summary.json");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "test_nll_clean");
    assert_true(cJSON_IsNumber(v));
    double x = v->valuedouble;
    cJSON_Delete(o);
    return x;
}

static void train_on(int np, const char *tag, const char *run)
{
    char cfg[4200], out[4200];
    snprintf(cfg, sizeof cfg, "%s/exp-%s.yaml", dir, tag);
    snprintf(out, sizeof out, "%s/%s", dir, run);
    const char *args[] = {"train", cfg, "--out", out, "--progress=lines", NULL};
    char *text = NULL;
    int rc = daecl_on(np, NULL, args, &text);
    if (rc != 0)
        fail_msg("daecl train on %d ranks exited %d:\n%s", np, rc, text);
    free(text);
}

static void equivalence(const char *tag, const char *optimizer)
{
    write_config(tag, optimizer, "{epochs: 3, batch_size: 40, max_steps: 20, log_every: 5}");
    char one[4200], many[4200], run[64];
    snprintf(run, sizeof run, "%s-1", tag);
    train_on(0, tag, run);
    snprintf(one, sizeof one, "%s/%s", dir, run);
    for (int np = 2; np <= 3; np++) {
        snprintf(run, sizeof run, "%s-%d", tag, np);
        train_on(np, tag, run);
        snprintf(many, sizeof many, "%s/%s", dir, run);
        double d = test_checkpoint_rel_diff(one, many);
        double a = test_nll(one), b = test_nll(many);
        printf("# %s on %d ranks: max|dw|/max|w| = %.3g, test NLL %.6f vs %.6f\n", tag, np, d,
               b, a);
        assert_true(d <= 1e-4);
        assert_true(fabs(a - b) <= 1e-3 * fabs(a));
        /* rank 0 wrote the world down */
        cJSON *s = read_json(many, "summary.json");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(s, "world");
        const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(w, "ranks");
        assert_true(cJSON_IsNumber(ranks));
        assert_int_equal((int)ranks->valuedouble, np);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(w, "replicas")), np);
        cJSON_Delete(s);
        /* and metrics.jsonl: the world first, each replica's speed and wait */
        char path[8400];
        snprintf(path, sizeof path, "%s/metrics.jsonl", many);
        size_t n;
        char *metrics = test_read_file(path, &n);
        assert_non_null(strstr(metrics, "{\"type\":\"world\""));
        assert_non_null(strstr(metrics, "\"replicas\":[{\"rank\":0"));
        assert_non_null(strstr(metrics, "\"wait_s\":"));
        free(metrics);
    }
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    equivalence("sgd", "{name: sgd, lr: 0.1, momentum: 0.9}");
}

static void test_adam(void **state)
{
    (void)state;
    equivalence("adam", "{name: adam, lr: 0.01}");
}

static char *meta_of(const char *run, const char *key)
{
    char path[8400];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run);
    daecl_safetensors *st;
    daecl_err err = {0};
    if (daecl_safetensors_read(path, &st, &err))
        fail_msg("%s", err.msg);
    const char *v = daecl_safetensors_meta(st, key);
    char *copy = strdup(v ? v : "");
    daecl_safetensors_destroy(st);
    return copy;
}

/* How many times `what` occurs in text. */
static int occurrences(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* A failed daecl on several ranks says why in exactly one sentence. */
static void one_sentence(int rc, const char *text)
{
    if (rc == 0 || occurrences(text, "daecl: error: ") != 1)
        fail_msg("wanted a failure with one \"daecl: error:\" sentence; exited %d:\n%s", rc,
                 text);
}

/* Resumes `run` on np ranks for 20 more steps; it must finish them. */
static void resume_more(int np, const char *run)
{
    char *step = meta_of(run, "daecl.step"), max[64];
    snprintf(max, sizeof max, "train.max_steps=%llu", strtoull(step, NULL, 10) + 20);
    free(step);
    const char *args[] = {"resume", run, max, "--progress=lines", NULL};
    char *text = NULL;
    int rc = daecl_on(np, NULL, args, &text);
    /* A rank mpirun killed may still be on its way out, holding the
     * folder's lock for a moment after mpirun returned. Every refusal
     * says so. */
    for (int tries = 0; rc != 0 && tries < 20; tries++) {
        one_sentence(rc, text);
        if (!strstr(text, "is in use"))
            break;
        free(text);
        sleep(1);
        rc = daecl_on(np, NULL, args, &text);
    }
    if (rc != 0)
        fail_msg("daecl resume on %d ranks exited %d:\n%s", np, rc, text);
    cJSON *s = read_json(run, "summary.json");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(s, "status");
    assert_true(cJSON_IsString(status));
    assert_string_equal(status->valuestring, "max_steps");
    cJSON_Delete(s);
    free(text);
}

/* Rank 1 is killed with SIGKILL in the middle of training: the others
 * stop within seconds, the last checkpoint stays whole, and the run goes
 * on with 3 ranks. */
static void test_rank_killed(void **state)
{
    (void)state;
    write_config("kill", "{name: adam, lr: 0.01}",
                 "{epochs: 100000, batch_size: 40, log_every: 0, checkpoint_every: 10, "
                 "checkpoint_unit: step}");
    char cfg[4200], run[4200];
    snprintf(cfg, sizeof cfg, "%s/exp-kill.yaml", dir);
    snprintf(run, sizeof run, "%s/kill", dir);
    const char *args[] = {"train", cfg, "--out", run, "--progress=lines", NULL};
    const char *wrap = "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (sleep 3; kill -9 $$) & fi; "
                       "exec \"$0\" \"$@\"";
    char *text = NULL;
    double t0 = test_now();
    int rc = daecl_on(2, wrap, args, &text);
    double took = test_now() - t0;
    printf("# killed rank: mpirun exited %d after %.1f s\n", rc, took);
    assert_int_not_equal(rc, 0);
    assert_true(took < 3 + 20);
    free(text);
    resume_more(3, run);
}

/* Rank 0 fails alone (the run folder's lock is another process's) while
 * ranks 1 and 2 pass: they learn it from the verdict and wait until rank 0
 * has said why before they exit, since mpirun ends the job's other ranks
 * when one exits with a failure. Three times, since the order in which the
 * ranks end varies. */
static void test_rank0_failure_is_said(void **state)
{
    (void)state;
    write_config("held", "{name: sgd, lr: 0.1}", "{epochs: 1, batch_size: 40, max_steps: 2}");
    train_on(0, "held", "held");
    char run[4200];
    snprintf(run, sizeof run, "%s/held", dir);
    daecl_lock *lock = NULL;
    daecl_err err = {0};
    if (daecl_lock_acquire(run, "test", &lock, &err))
        fail_msg("%s", err.msg);
    const char *args[] = {"resume", run, "train.max_steps=4", "--progress=lines", NULL};
    for (int i = 0; i < 3; i++) {
        char *text = NULL;
        int rc = daecl_on(3, NULL, args, &text);
        one_sentence(rc, text);
        if (!strstr(text, "is in use"))
            fail_msg("mpirun exited %d without saying the folder is in use:\n%s", rc, text);
        free(text);
    }
    daecl_lock_release(lock);
}

/* SIGTERM reaches one rank only (as a scheduler may send it): every rank
 * stops after the same step, rank 0 writes the checkpoint, and one process
 * resumes it. */
static void test_signal_one_rank(void **state)
{
    (void)state;
    write_config("term", "{name: sgd, lr: 0.1, momentum: 0.9}",
                 "{epochs: 100000, batch_size: 40, log_every: 0}");
    char cfg[4200], run[4200];
    snprintf(cfg, sizeof cfg, "%s/exp-term.yaml", dir);
    snprintf(run, sizeof run, "%s/term", dir);
    const char *args[] = {"train", cfg, "--out", run, "--progress=lines", NULL};
    const char *wrap = "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (sleep 3; kill -TERM $$) & "
                       "fi; exec \"$0\" \"$@\"";
    char *text = NULL;
    int rc = daecl_on(2, wrap, args, &text);
    if (rc == 0 || !strstr(text, "checkpointed"))
        fail_msg("mpirun exited %d:\n%s", rc, text);
    free(text);
    resume_more(0, run);
}

/* Ctrl-C to mpirun: Open MPI sends every rank SIGTERM after
 * odls_base_sigkill_timeout seconds and SIGKILL as long again later
 * (docs/scaling.md, "Stopping a job"); with 3 s the ranks agree on a step,
 * rank 0 checkpoints and says so, and one process resumes the run. */
static void test_ctrl_c_to_mpirun(void **state)
{
    (void)state;
    write_config("int", "{name: sgd, lr: 0.1, momentum: 0.9}",
                 "{epochs: 100000, batch_size: 40, log_every: 0}");
    char cfg[4200], run[4200], script[20000];
    snprintf(cfg, sizeof cfg, "%s/exp-int.yaml", dir);
    snprintf(run, sizeof run, "%s/int", dir);
    /* Each rank's output goes to a file: mpirun stops forwarding it once it
     * begins to end the job. */
    snprintf(script, sizeof script,
             "\"%s\" --allow-run-as-root --oversubscribe --bind-to none --mca "
             "mpi_yield_when_idle 1 --mca odls_base_sigkill_timeout 3 -np 2 /bin/sh -c "
             "'exec \"$0\" \"$@\" > \"%s\".$OMPI_COMM_WORLD_RANK.log 2>&1' \"%s\" train "
             "\"%s\" --out \"%s\" --progress=lines & pid=$!; sleep 2; kill -INT $pid; "
             "wait $pid",
             DAECL_TEST_MPIEXEC, run, DAECL_TEST_BIN, cfg, run);
    char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *text = NULL;
    double t0 = test_now();
    int rc = test_run(argv, NULL, &text);
    double took = test_now() - t0;
    printf("# Ctrl-C to mpirun: exited %d after %.1f s\n", rc, took);
    free(text);
    char log[8400];
    size_t n;
    snprintf(log, sizeof log, "%s.0.log", run);
    char *rank0 = test_read_file(log, &n);
    snprintf(log, sizeof log, "%s.1.log", run);
    char *rank1 = test_read_file(log, &n);
    if (!strstr(rank0, "on every rank and checkpointed") || !strstr(rank1, "SIGTERM"))
        fail_msg("rank 0 said:\n%s\nrank 1 said:\n%s", rank0, rank1);
    /* rank 0 says how to go on; the others say nothing more */
    assert_null(strstr(rank1, "training was stopped"));
    free(rank0);
    free(rank1);
    assert_true(took < 2 + 2 * 3 + 5);
    resume_more(0, run);
}

/* A device fault on rank 1 alone (DAECL_FAULT, docs/testing.md): that
 * rank names itself, its host and its device in one sentence and ends the
 * job, so rank 0 does not wait in the next allreduce. */
static void test_device_fault_on_one_rank(void **state)
{
    (void)state;
    if (!DAECL_TEST_WITH_OPENCL) {
        printf("# skipped: DAECL_FAULT is the opencl backend's, and this build has none\n");
        return;
    }
    write_config_on("fault", "{name: sgd, lr: 0.1}",
                    "{epochs: 100000, batch_size: 40, log_every: 0}", "opencl");
    char cfg[4200], run[4200];
    snprintf(cfg, sizeof cfg, "%s/exp-fault.yaml", dir);
    snprintf(run, sizeof run, "%s/fault", dir);
    const char *args[] = {"train", cfg, "--out", run, "--progress=lines", NULL};
    const char *wrap = "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then export DAECL_FAULT=enqueue:400; "
                       "fi; exec \"$0\" \"$@\"";
    char *text = NULL;
    double t0 = test_now();
    int rc = daecl_on(2, wrap, args, &text);
    double took = test_now() - t0;
    printf("# device fault on rank 1: mpirun exited %d after %.1f s\n", rc, took);
    if (rc == 0 || !strstr(text, "rank 1 of 2 on ") || !strstr(text, "stops the job") ||
        !strstr(text, "CL_OUT_OF_RESOURCES"))
        fail_msg("mpirun exited %d:\n%s", rc, text);
    free(text);
}

int main(void)
{
    if (!DAECL_TEST_MPIEXEC[0]) {
        printf("# skipped: this build has no MPI (CMake found none)\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_rank_killed),
        cmocka_unit_test(test_rank0_failure_is_said),
        cmocka_unit_test(test_signal_one_rank),
        cmocka_unit_test(test_ctrl_c_to_mpirun),
        cmocka_unit_test(test_device_fault_on_one_rank),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
