/* daecl tests — run folders as daecl's own (core/runfolder.c): what counts
 * as new, empty, own or foreign; the lock file: a second writer refused with
 * a sentence naming the first, a stale lock of this host taken over with a
 * line in the log, a lock of another host refused with how to remove it;
 * claiming a folder writes the marker and holds the lock. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/runfolder.h"
#include "tests/support.h"

static void put(const char *dir, const char *name, const char *text)
{
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    test_write_file(path, text, strlen(text));
}

static int exists(const char *dir, const char *name)
{
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void test_folders_are_new_empty_own_or_foreign(void **state)
{
    (void)state;
    char *dir = test_tmpdir("folder-kinds"), path[1300], example[256];
    snprintf(path, sizeof path, "%s/absent", dir);
    assert_int_equal(daecl_folder_inspect(path, DAECL_FOLDER_RUN, NULL, 0), DAECL_FOLDER_ABSENT);
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_RUN, NULL, 0), DAECL_FOLDER_EMPTY);
    /* a lock file alone is daecl's: the folder is still empty */
    put(dir, DAECL_LOCK_FILE, "pid 1\nhost x\n");
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_RUN, NULL, 0), DAECL_FOLDER_EMPTY);
    /* though a new run may not go there while another host holds it */
    daecl_err err = {0};
    assert_int_equal(daecl_folder_check_new(dir, DAECL_FOLDER_RUN, "--out", &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "is locked by daecl (pid 1 on host x"));
    snprintf(path, sizeof path, "%s/%s", dir, DAECL_LOCK_FILE);
    assert_int_equal(unlink(path), 0);
    /* nor does the temporary file a kill left inside the marker's write */
    put(dir, ".daecl-run.tmp.12345", "a daecl");
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_RUN, NULL, 0), DAECL_FOLDER_EMPTY);
    put(dir, "config.yaml", "mine\n");
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_RUN, example, sizeof example),
                     DAECL_FOLDER_FOREIGN);
    assert_string_equal(example, "config.yaml");
    assert_int_equal(daecl_folder_check_new(dir, DAECL_FOLDER_RUN, "--out", &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "holds files daecl did not write (config.yaml)"));
    /* the marker makes it daecl's; a sweep's marker does not make a run */
    put(dir, DAECL_SWEEP_MARKER, "x\n");
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_RUN, NULL, 0), DAECL_FOLDER_FOREIGN);
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_SWEEP, NULL, 0), DAECL_FOLDER_OWN);
    put(dir, DAECL_RUN_MARKER, "x\n");
    assert_int_equal(daecl_folder_inspect(dir, DAECL_FOLDER_RUN, NULL, 0), DAECL_FOLDER_OWN);
    assert_int_equal(daecl_folder_check_new(dir, DAECL_FOLDER_RUN, "--out", &err), 0);
    /* own with a checkpoint: a run to resume, not to overwrite */
    put(dir, "checkpoint.safetensors", "x");
    assert_int_equal(daecl_folder_check_new(dir, DAECL_FOLDER_RUN, "--out", &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "already holds a run with a checkpoint"));
    assert_int_equal(daecl_folder_check_own_run(dir, "eval", &err), 0);
    /* a file is not a folder */
    snprintf(path, sizeof path, "%s/config.yaml", dir);
    assert_int_equal(daecl_folder_check_new(path, DAECL_FOLDER_RUN, "--out", &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "it is not a folder"));
    free(dir);
}

static void test_claim_makes_marks_and_locks_a_folder(void **state)
{
    (void)state;
    char *dir = test_tmpdir("folder-claim"), run[1300];
    snprintf(run, sizeof run, "%s/a/b/run", dir);
    daecl_lock *lock = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_folder_claim(run, DAECL_FOLDER_RUN, "train", "--out", &lock, &err), 0);
    assert_non_null(lock);
    assert_true(exists(run, DAECL_RUN_MARKER));
    assert_true(exists(run, DAECL_LOCK_FILE));
    /* a second claim from this process is a bug, said as such */
    daecl_lock *again = NULL;
    assert_int_equal(daecl_lock_acquire(run, "resume", &again, &err), DAECL_EINVAL);
    daecl_lock_release(lock);
    assert_false(exists(run, DAECL_LOCK_FILE));
    assert_true(exists(run, DAECL_RUN_MARKER));
    daecl_lock_release(NULL);
    free(dir);
}

/* The child holds dir's lock until the parent closes the pipe. */
static pid_t hold_lock_in_child(const char *dir, int *release_fd)
{
    int go[2], ready[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(ready), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(go[1]);
        close(ready[0]);
        daecl_lock *l = NULL;
        daecl_err err = {0};
        char c = daecl_lock_acquire(dir, "train", &l, &err) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(2);
        if (read(go[0], &c, 1) < 0)
            _exit(3);
        daecl_lock_release(l);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    char c = 0;
    assert_int_equal(read(ready[0], &c, 1), 1);
    assert_int_equal(c, 'y');
    close(ready[0]);
    *release_fd = go[1];
    return pid;
}

static void test_a_second_writer_is_refused_with_the_first_named(void **state)
{
    (void)state;
    char *dir = test_tmpdir("folder-held");
    int release;
    pid_t pid = hold_lock_in_child(dir, &release);
    daecl_lock *l = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_lock_acquire(dir, "resume", &l, &err), DAECL_EUSAGE);
    char want[64];
    snprintf(want, sizeof want, "is in use by daecl train (pid %ld", (long)pid);
    assert_non_null(strstr(err.msg, want));
    /* the same check refuses a new run there before anything is written */
    assert_int_equal(daecl_folder_check_new(dir, DAECL_FOLDER_RUN, "--out", &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, want));
    close(release);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* released: free to take */
    assert_int_equal(daecl_lock_acquire(dir, "resume", &l, &err), 0);
    daecl_lock_release(l);
    free(dir);
}

static void test_a_stale_lock_of_this_host_is_taken_over(void **state)
{
    (void)state;
    char *dir = test_tmpdir("folder-stale"), host[256], text[512], path[1300];
    assert_int_equal(gethostname(host, sizeof host), 0);
    /* a pid that ran and is gone */
    pid_t gone = fork();
    assert_true(gone >= 0);
    if (gone == 0)
        _exit(0);
    int status;
    assert_int_equal(waitpid(gone, &status, 0), gone);
    snprintf(text, sizeof text, "pid %ld\nhost %s\nstart 1\ncommand train\nsince x\n", (long)gone,
             host);
    put(dir, DAECL_LOCK_FILE, text);
    daecl_lock *l = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_lock_acquire(dir, "resume", &l, &err), 0);
    snprintf(path, sizeof path, "%s/%s", dir, DAECL_LOCK_FILE);
    char *now = test_read_file(path, NULL);
    char mine[32];
    snprintf(mine, sizeof mine, "pid %ld\n", (long)getpid());
    assert_non_null(strstr(now, mine));
    assert_non_null(strstr(now, "command resume"));
    free(now);
    daecl_lock_release(l);
    assert_int_equal(test_count_entries(dir, NULL, 0), 0); /* nothing left beside it */

    /* a live pid whose start time differs is a reused pid: stale too */
    snprintf(text, sizeof text, "pid %ld\nhost %s\nstart 1\ncommand train\nsince x\n",
             (long)getppid(), host);
    put(dir, DAECL_LOCK_FILE, text);
    assert_int_equal(daecl_lock_acquire(dir, "resume", &l, &err), 0);
    daecl_lock_release(l);
    free(dir);
}

/* kill -9 between creating the lock file and writing it leaves it empty:
 * unreadable for seconds, it is stale (test_faults met this once in a
 * random kill). A fresh empty one is waited out, an old one taken at once. */
static void test_an_empty_lock_left_by_a_killed_writer_is_taken_over(void **state)
{
    (void)state;
    char *dir = test_tmpdir("folder-empty-lock"), path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, DAECL_LOCK_FILE);
    daecl_lock *l = NULL;
    daecl_err err = {0};
    put(dir, DAECL_LOCK_FILE, "");
    struct timespec old[2] = {{time(NULL) - 60, 0}, {time(NULL) - 60, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    double t0 = test_now();
    if (daecl_lock_acquire(dir, "resume", &l, &err) != 0)
        fail_msg("%s", err.msg);
    assert_true(test_now() - t0 < 1.0);
    daecl_lock_release(l);
    put(dir, DAECL_LOCK_FILE, "");
    t0 = test_now();
    if (daecl_lock_acquire(dir, "resume", &l, &err) != 0)
        fail_msg("%s", err.msg);
    double waited = test_now() - t0;
    assert_true(waited >= 1.0 && waited < 4.0);
    daecl_lock_release(l);
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    free(dir);
}

static void test_a_lock_of_another_host_is_refused_with_how_to_remove_it(void **state)
{
    (void)state;
    char *dir = test_tmpdir("folder-elsewhere");
    put(dir, DAECL_LOCK_FILE, "pid 1\nhost gpu-node-17.example\nstart 5\ncommand train\n"
                              "since 2026-12-01T10:00:00Z\n");
    daecl_lock *l = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_lock_acquire(dir, "resume", &l, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "locked by daecl train (pid 1 on host gpu-node-17.example, "
                                    "since 2026-12-01T10:00:00Z)"));
    assert_non_null(strstr(err.msg, "if it is gone remove"));
    assert_non_null(strstr(err.msg, DAECL_LOCK_FILE));
    /* and release() never removes a lock that is not this process's */
    assert_true(exists(dir, DAECL_LOCK_FILE));
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_folders_are_new_empty_own_or_foreign),
        cmocka_unit_test(test_claim_makes_marks_and_locks_a_folder),
        cmocka_unit_test(test_a_second_writer_is_refused_with_the_first_named),
        cmocka_unit_test(test_an_empty_lock_left_by_a_killed_writer_is_taken_over),
        cmocka_unit_test(test_a_stale_lock_of_this_host_is_taken_over),
        cmocka_unit_test(test_a_lock_of_another_host_is_refused_with_how_to_remove_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
