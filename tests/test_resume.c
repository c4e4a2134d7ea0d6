/* daecl tests — exact resume: a run interrupted after an epoch, in the middle
 * of one, or by Ctrl-C, and resumed, ends with weights and optimiser state
 * bit-identical to a run that was never interrupted; a diverging run keeps
 * the last good checkpoint. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/train.h"
#include "tests/support.h"

static void train(const char *dir, const char *run, const char *const *ov, size_t n, int want)
{
    char cfg[1200], out[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/%s", dir, run);
    daecl_train_opts o = {.config_path = cfg, .overrides = ov, .n_overrides = n, .out_dir = out,
                          .quiet = 1};
    daecl_err err = {0};
    int rc = daecl_train(&o, NULL, 0, &err);
    if (rc != want)
        fail_msg("train %s: %d (%s)", run, rc, err.msg);
}

static int resume(const char *dir, const char *run, const char *const *ov, size_t n,
                  daecl_err *err)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, run);
    daecl_train_opts o = {.resume_dir = path, .overrides = ov, .n_overrides = n, .quiet = 1};
    return daecl_train(&o, NULL, 0, err);
}

/* The shared checks of tests/support.c on the run folders dir/run. */
static void same_checkpoints(const char *dir, const char *run_a, const char *run_b)
{
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/%s", dir, run_a);
    snprintf(pb, sizeof pb, "%s/%s", dir, run_b);
    test_same_checkpoints(pa, pb);
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
    daecl_err err = {0};
    if (resume(dir, "split", three, 1, &err))
        fail_msg("resume: %s", err.msg);
    same_checkpoints(dir, "whole", "split");
    char ea[32], eb[32];
    double na = 0, nb = 1;
    epoch_lines(dir, "whole", ea, sizeof ea, &na);
    epoch_lines(dir, "split", eb, sizeof eb, &nb);
    assert_string_equal(ea, "0123");
    assert_string_equal(eb, "0123");
    assert_true(na == nb);
    /* A finished run has nothing left to do. */
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
    daecl_err err = {0};
    if (resume(dir, "split", go, 1, &err))
        fail_msg("resume: %s", err.msg);
    same_checkpoints(dir, "whole", "split");
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

static void test_sigint_checkpoints_and_resume_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_small_experiment("resume-sigint", "", "cpu");
    const char *many[] = {"train.epochs=400"};
    train(dir, "whole", many, 1, 0);

    char cfg[1200], out[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/split", dir);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(DAECL_TEST_BIN, DAECL_TEST_BIN, "train", cfg, "train.epochs=400", "--out", out,
              "--progress=lines", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    /* Interrupt once the run has done a few epochs. */
    FILE *f = fdopen(fds[0], "r");
    char line[1024];
    int sent = 0;
    while (fgets(line, sizeof line, f))
        if (!sent && strstr(line, "epoch 3/400 done")) {
            kill(pid, SIGINT);
            sent = 1;
        }
    fclose(f);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(sent);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 130);
    /* The checkpoint it left loads, and resuming finishes the same run. */
    daecl_err err = {0};
    if (resume(dir, "split", NULL, 0, &err))
        fail_msg("resume: %s", err.msg);
    same_checkpoints(dir, "whole", "split");
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
    assert_int_equal(resume(dir, "run", boom, 4, &err), DAECL_ENAN);
    assert_non_null(strstr(err.msg, "last good checkpoint is kept"));
    assert_non_null(strstr(err.msg, "optimizer.lr"));
    char *after = test_read_file(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    free(before);
    free(after);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_after_an_epoch_is_bit_identical),
        cmocka_unit_test(test_resume_in_the_middle_of_an_epoch_is_bit_identical),
        cmocka_unit_test(test_sigint_checkpoints_and_resume_is_bit_identical),
        cmocka_unit_test(test_diverging_run_keeps_the_last_good_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
