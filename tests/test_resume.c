/* daecl tests — exact resume: a run interrupted after an epoch, in the middle
 * of one, or by SIGINT, SIGTERM or SIGHUP at a random step, and resumed, ends
 * with weights and optimiser state bit-identical to a run that was never
 * interrupted; a closed stdout does not stop a run; --reset-optimizer
 * switches optimisers; a diverging run keeps the last good checkpoint; a
 * checkpoint from before the noise key 2.0 is refused. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/train.h"
#include "tests/support.h"

static void train(const char *dir, const char *run, const char *const *ov, size_t n, int want)
{
    daecl_err err = {0};
    int rc = test_train_run(dir, run, ov, n, &err);
    if (rc != want)
        fail_msg("train %s: %d (%s)", run, rc, err.msg);
}

static int resume_opts(const char *dir, const char *run, const char *const *ov, size_t n,
                       int reset_optimizer, daecl_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, run);
    daecl_train_opts o = {.resume_dir = path, .overrides = ov, .n_overrides = n, .quiet = 1,
                          .reset_optimizer = reset_optimizer};
    return daecl_train(&o, NULL, 0, err);
}

static int resume(const char *dir, const char *run, const char *const *ov, size_t n,
                  daecl_err *err)
{
    return resume_opts(dir, run, ov, n, 0, err);
}

/* The shared checks of tests/support.c on the run folders dir/run. */
static void same_checkpoints(const char *dir, const char *run_a, const char *run_b)
{
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/%s", dir, run_a);
    snprintf(pb, sizeof pb, "%s/%s", dir, run_b);
    test_same_checkpoints(pa, pb);
}

/* Resumes dir/split with the overrides and compares it with dir/whole. */
static void resume_split_matches_whole(const char *dir, const char *const *ov, size_t n)
{
    daecl_err err = {0};
    if (resume(dir, "split", ov, n, &err))
        fail_msg("resume: %s", err.msg);
    same_checkpoints(dir, "whole", "split");
}

static void epoch_lines(const char *dir, const char *run, char *epochs, size_t n, double *last_nll)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, run);
    test_epoch_lines(path, epochs, n, last_nll);
}

static void test_resume_after_an_epoch_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-epoch", "", "cpu");
    train(dir, "whole", NULL, 0, 0);
    const char *one[] = {"train.epochs=1"};
    train(dir, "split", one, 1, 0);
    const char *three[] = {"train.epochs=3"};
    resume_split_matches_whole(dir, three, 1);
    char ea[32], eb[32];
    double na = 0, nb = 1;
    epoch_lines(dir, "whole", ea, sizeof ea, &na);
    epoch_lines(dir, "split", eb, sizeof eb, &nb);
    assert_string_equal(ea, "0123");
    assert_string_equal(eb, "0123");
    assert_true(na == nb);
    /* A finished run has nothing left to do. */
    daecl_err err = {0};
    if (resume(dir, "whole", NULL, 0, &err))
        fail_msg("resume of a finished run: %s", err.msg);
    free(dir);
}

static void test_resume_in_the_middle_of_an_epoch_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-mid", "", "cpu");
    train(dir, "whole", NULL, 0, 0);
    /* Stop at step 10 (epoch 2, step 3 of 7), checkpointing every 4 steps. */
    const char *stop[] = {"train.max_steps=10", "train.checkpoint_unit=step",
                          "train.checkpoint_every=4"};
    train(dir, "split", stop, 3, 0);
    const char *go[] = {"train.max_steps=0"};
    resume_split_matches_whole(dir, go, 1);
    char ea[32], eb[32];
    double na = 0, nb = 1;
    epoch_lines(dir, "whole", ea, sizeof ea, &na);
    epoch_lines(dir, "split", eb, sizeof eb, &nb);
    /* The partial epoch 2 reported at the stop, then 2 and 3 after resuming:
     * the resumed epoch's train NLL covers all its steps, as if unbroken. */
    assert_string_equal(eb, "01223");
    assert_true(na == nb);
    free(dir);
}

/* Under a cosine schedule, a run stopped in the middle of epoch 2 and
 * resumed takes the rates it would have taken unbroken; a resume that
 * changes train.epochs (the schedule's length) is refused. */
static void test_resume_under_a_cosine_schedule_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-cosine", "", "cpu");
    const char *whole[] = {"optimizer.schedule=cosine", "optimizer.lr_min=0.001"};
    train(dir, "whole", whole, 2, 0);
    const char *stop[] = {"optimizer.schedule=cosine", "optimizer.lr_min=0.001",
                          "train.max_steps=10", "train.checkpoint_unit=step",
                          "train.checkpoint_every=4"};
    train(dir, "split", stop, 5, 0);
    daecl_err err = {0};
    const char *longer[] = {"train.max_steps=0", "train.epochs=4"};
    assert_int_equal(resume(dir, "split", longer, 2, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "cosine schedule"));
    const char *go[] = {"train.max_steps=0"};
    resume_split_matches_whole(dir, go, 1);
    test_remove_dir(dir);
}

/* Starts `daecl train` of 400 epochs logging every step into dir/run, its
 * stdout and stderr a pipe; *out_fd gets the read end. */
static pid_t start_child(const char *dir, const char *run, int *out_fd)
{
    char cfg[1200], out[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/%s", dir, run);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execl(DAECL_TEST_BIN, DAECL_TEST_BIN, "train", cfg, "train.epochs=400",
              "train.log_every=1", "--out", out, "--progress=lines", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

/* A stop signal at a random step (one of the first 300 of the run's 2,800;
 * the step is printed, so a failure can be replayed) ends the run after
 * that step with a checkpoint and exit status 128 + the signal; resuming
 * finishes it bit-identical to a run never stopped. */
static void stop_signal_checkpoints(int sig, const char *tag)
{
    char *dir = test_small_experiment(tag, "", "cpu");
    const char *many[] = {"train.epochs=400"};
    train(dir, "whole", many, 1, 0);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)sig;
    int at = 1 + (int)(rand_r(&seed) % 300), steps = 0, fd;
    print_message("signal %d after step %d\n", sig, at);
    pid_t pid = start_child(dir, "split", &fd);
    FILE *f = fdopen(fd, "r");
    char line[1024];
    int sent = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "train_nll") && strstr(line, "step ") && ++steps == at && !sent) {
            kill(pid, sig);
            sent = 1;
        }
    fclose(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(sent);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 128 + sig);
    char ckpt[1300];
    snprintf(ckpt, sizeof ckpt, "%s/split/checkpoint.safetensors", dir);
    assert_int_equal(access(ckpt, F_OK), 0);
    resume_split_matches_whole(dir, NULL, 0);
    free(dir);
}

static void test_sigint_checkpoints_and_resume_is_bit_identical(void **state)
{
    (void)state;
    stop_signal_checkpoints(SIGINT, "resume-sigint");
}

static void test_sigterm_checkpoints_and_resume_is_bit_identical(void **state)
{
    (void)state;
    stop_signal_checkpoints(SIGTERM, "resume-sigterm");
}

static void test_sighup_checkpoints_and_resume_is_bit_identical(void **state)
{
    (void)state;
    stop_signal_checkpoints(SIGHUP, "resume-sighup");
}

/* The cpu backend cuts its work into chunks by size, never by thread
 * count: a run started on 3 threads and resumed on 1 ends bit-identical to
 * one that ran on 2 throughout. The model is wide enough (64 x 512 x 256
 * GEMMs, 32,768-value activations) for every op to be cut. */
static void test_resume_on_another_thread_count_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_tmpdir("resume-threads"), path[1300];
    size_t rows = 512, dim = 256, n = rows * dim;
    unsigned char *idx = malloc(16 + n);
    float *u = malloc(n * sizeof *u);
    assert_true(idx && u);
    unsigned char head[16] = {0, 0, 0x08, 3, 0, 0, 0x02, 0x00, 0, 0, 0, 16, 0, 0, 0, 16};
    memcpy(idx, head, 16);
    test_fill_uniform(u, n, 11, 0, 256);
    for (size_t i = 0; i < n; i++)
        idx[16 + i] = (unsigned char)u[i];
    snprintf(path, sizeof path, "%s/data.idx", dir);
    test_write_file(path, idx, 16 + n);
    free(idx);
    free(u);
    const char *text = "data: {train: data.idx, test: data.idx, test_limit: 64}\n"
                       "model: {encoder: [{units: 512, activation: sigmoid}]}\n"
                       "corruption: {plugin: masking, p: 0.25}\n"
                       "optimizer: {name: adam, lr: 0.001}\n"
                       "train: {epochs: 3, batch_size: 64, log_every: 0}\n"
                       "eval: {denoising: false}\n"
                       "backend: {plugin: cpu, threads: 2}\n";
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
    train(dir, "whole", NULL, 0, 0);
    const char *three[] = {"backend.threads=3", "train.epochs=1"};
    train(dir, "split", three, 2, 0);
    const char *one[] = {"backend.threads=1", "train.epochs=3"};
    resume_split_matches_whole(dir, one, 2);
    free(dir);
}

/* A stop that lands on an epoch's last step (here every step is one: the
 * batch holds all 100 rows) checkpoints at the epoch boundary, with the
 * epoch counted, and the resume is exact. */
static void test_stop_on_an_epochs_last_step_resumes_exactly(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-boundary", "", "cpu");
    const char *ov[] = {"train.batch_size=100", "train.epochs=4"};
    train(dir, "whole", ov, 2, 0);
    char cfg[1200], out[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/split", dir);
    volatile sig_atomic_t stop = SIGTERM; /* as if it came during step 1 */
    daecl_train_opts o = {.config_path = cfg, .overrides = ov, .n_overrides = 2, .out_dir = out,
                          .quiet = 1, .stop = &stop};
    daecl_err err = {0};
    assert_int_equal(daecl_train(&o, NULL, 0, &err), DAECL_EINTR);
    assert_non_null(strstr(err.msg, "stopped by SIGTERM at step 1"));
    resume_split_matches_whole(dir, NULL, 0);
    char ea[32], eb[32];
    double na = 0, nb = 1;
    epoch_lines(dir, "whole", ea, sizeof ea, &na);
    epoch_lines(dir, "split", eb, sizeof eb, &nb);
    assert_string_equal(eb, ea);
    assert_true(na == nb);
    free(dir);
}

/* `daecl train ... | head`: the reader goes away at a random line; the run
 * trains on to its end with its own exit status and the same weights. */
static void test_closed_pipe_never_stops_a_run(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-pipe", "", "cpu");
    const char *many[] = {"train.epochs=400"};
    train(dir, "whole", many, 1, 0);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int at = 1 + (int)(rand_r(&seed) % 300), lines = 0, fd;
    print_message("pipe closed after line %d\n", at);
    pid_t pid = start_child(dir, "piped", &fd);
    FILE *f = fdopen(fd, "r");
    char line[1024];
    while (lines < at && fgets(line, sizeof line, f))
        lines++;
    fclose(f); /* the child's next write gets EPIPE */
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("the run ended with status 0x%x after its stdout closed", status);
    same_checkpoints(dir, "whole", "piped");
    free(dir);
}

/* SGD with momentum resumed as Adam with --reset-optimizer: Adam starts
 * from zero state (its bias correction counts from the reset), the loss
 * stays finite and falls, and the run says so in metrics.jsonl. */
static void test_reset_optimizer_switches_sgd_to_adam(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-reset", "", "cpu");
    const char *sgd[] = {"optimizer={name: sgd, lr: 0.05, momentum: 0.9}", "train.epochs=2"};
    train(dir, "run", sgd, 2, 0);
    const char *adam[] = {"optimizer={name: adam, lr: 0.01}", "train.epochs=8"};
    daecl_err err = {0};
    assert_int_equal(resume(dir, "run", adam, 2, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "--reset-optimizer"));
    if (resume_opts(dir, "run", adam, 2, 1, &err))
        fail_msg("resume --reset-optimizer: %s", err.msg);
    char path[1300];
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    char *metrics = test_read_file(path, NULL);
    assert_non_null(strstr(metrics, "\"type\":\"reset_optimizer\""));
    assert_non_null(strstr(metrics, "\"previous\":\"sgd\""));
    double nll[9] = {0};
    int n = 0;
    char *save = NULL;
    for (char *l = strtok_r(metrics, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *v = strstr(l, "\"train_nll\":");
        if (strstr(l, "\"type\":\"epoch\"") && v && n < 9)
            nll[n++] = strtod(v + 12, NULL);
    }
    assert_int_equal(n, 8); /* epochs 1..8 (epoch 0 has no train NLL) */
    for (int i = 0; i < n; i++)
        assert_true(isfinite(nll[i]));
    assert_true(nll[7] < nll[2]); /* Adam's epochs lower the loss SGD left */
    free(metrics);
    /* Adam's state is in the checkpoint now: a plain resume goes on. */
    const char *more[] = {"train.epochs=9"};
    if (resume(dir, "run", more, 1, &err))
        fail_msg("resume after the reset: %s", err.msg);
    free(dir);
}

static void test_diverging_run_keeps_the_last_good_checkpoint(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-nan", "", "cpu");
    const char *ov[] = {"train.epochs=1", "model.encoder=[{units: 6, activation: linear}]",
                        "likelihood=gaussian"};
    train(dir, "run", ov, 3, 0);
    char path[1300];
    snprintf(path, sizeof path, "%s/run/checkpoint.safetensors", dir);
    size_t n0, n1;
    char *before = test_read_file(path, &n0);
    const char *boom[] = {"train.epochs=3", "optimizer.name=sgd", "optimizer.lr=1e5",
                          "train.log_every=1"};
    daecl_err err = {0};
    assert_int_equal(resume_opts(dir, "run", boom, 4, 1, &err), DAECL_ENAN);
    assert_non_null(strstr(err.msg, "last good checkpoint is kept"));
    assert_non_null(strstr(err.msg, "optimizer.lr"));
    char *after = test_read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    free(dir);
}

/* A checkpoint without daecl.noise_key (written before the noise key 2.0,
 * which keys noise by example instead of by step) cannot be continued bit
 * for bit: resume refuses it in one sentence naming the daecl that wrote
 * it, and leaves it as it was. The key is renamed in place, so the file is
 * otherwise the run's own. */
static void test_a_checkpoint_from_before_noise_key_2_is_refused(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-key1", "", "cpu");
    const char *ov[] = {"train.epochs=1"};
    train(dir, "run", ov, 1, 0);
    char path[1300];
    snprintf(path, sizeof path, "%s/run/checkpoint.safetensors", dir);
    size_t n;
    char *bytes = test_read_file(path, &n);
    char *at = memmem(bytes, n, "\"daecl.noise_key\"", 17);
    assert_non_null(at);
    memcpy(at, "\"daecl.noise_kez\"", 17);
    test_write_file(path, bytes, n);
    const char *more[] = {"train.epochs=2"};
    daecl_err err = {0};
    assert_int_equal(resume(dir, "run", more, 1, &err), DAECL_ECKPT);
    if (!strstr(err.msg, "checkpoint.safetensors was written by daecl ") ||
        !strstr(err.msg, " with noise key 1 (by training step), which this daecl") ||
        !strstr(err.msg, "retrain it"))
        fail_msg("unexpected sentence: %s", err.msg);
    size_t n1;
    char *after = test_read_file(path, &n1);
    assert_int_equal(n, n1);
    assert_memory_equal(bytes, after, n);
    free(bytes);
    free(after);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_after_an_epoch_is_bit_identical),
        cmocka_unit_test(test_resume_in_the_middle_of_an_epoch_is_bit_identical),
        cmocka_unit_test(test_resume_under_a_cosine_schedule_is_bit_identical),
        cmocka_unit_test(test_sigint_checkpoints_and_resume_is_bit_identical),
        cmocka_unit_test(test_sigterm_checkpoints_and_resume_is_bit_identical),
        cmocka_unit_test(test_sighup_checkpoints_and_resume_is_bit_identical),
        cmocka_unit_test(test_stop_on_an_epochs_last_step_resumes_exactly),
        cmocka_unit_test(test_resume_on_another_thread_count_is_bit_identical),
        cmocka_unit_test(test_closed_pipe_never_stops_a_run),
        cmocka_unit_test(test_reset_optimizer_switches_sgd_to_adam),
        cmocka_unit_test(test_diverging_run_keeps_the_last_good_checkpoint),
        cmocka_unit_test(test_a_checkpoint_from_before_noise_key_2_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
