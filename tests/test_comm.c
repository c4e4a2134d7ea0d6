/* daecl tests — the communicator (core/comm.c): the built-in one-process
 * world, the launcher's environment (faked with setenv), the refusals when
 * a launched process has no MPI communicator or asks for none, the comm
 * plugin kind in the registry (an in-memory plugin: validation, the error
 * prefix, POCL's thread share), and `daecl plugin check` on the mpi
 * plugin when this build has it. The multi-rank test is tests/mpi. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/comm.h"
#include "core/pool.h"
#include "tests/support.h"

static const char *const launcher_vars[] = {
    "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_UNIVERSE_SIZE",
    "PMIX_RANK",            "PMIX_SIZE",            "PMI_RANK",
    "PMI_SIZE",             "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
    "SLURM_STEP_TASKS_PER_NODE", "SLURM_STEP_NUM_TASKS",
};

/* Forgets every launcher variable (also ones this test's own launcher set). */
static int clear_launcher(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++)
        unsetenv(launcher_vars[i]);
    return 0;
}

static void fake_launch(const char *rank_var, const char *rank, const char *size_var,
                        const char *size)
{
    clear_launcher(NULL);
    setenv(rank_var, rank, 1);
    setenv(size_var, size, 1);
}

/* ---- the built-in world ------------------------------------------------------ */

static void test_none_is_rank_0_of_1_and_its_ops_keep_or_copy(void **state)
{
    (void)state;
    daecl_comm *c = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_comm_open(NULL, "none", &c, &err), 0);
    assert_non_null(c);
    assert_null(c->plugin);
    assert_int_equal(c->info.rank, 0);
    assert_int_equal(c->info.size, 1);
    assert_int_equal(c->info.local_rank, 0);
    assert_int_equal(c->info.local_size, 1);
    assert_true(c->info.host[0] != '\0');
    assert_string_equal(c->info.library, "daecl (one process)");

    float f[5] = {1.5f, -2, 0, 3, 1e30f};
    double d[3] = {0.25, -7, 1e300};
    uint64_t u[3] = {0, 42, UINT64_MAX};
    for (uint32_t op = DAECL_COMM_SUM; op <= DAECL_COMM_MIN; op++) {
        assert_int_equal(daecl_comm_allreduce(c, f, 5, DAECL_COMM_F32, op, &err), 0);
        assert_int_equal(daecl_comm_allreduce(c, d, 3, DAECL_COMM_F64, op, &err), 0);
        assert_int_equal(daecl_comm_allreduce(c, u, 3, DAECL_COMM_U64, op, &err), 0);
        assert_int_equal(daecl_comm_allreduce(c, u, 0, DAECL_COMM_U64, op, &err), 0);
    }
    assert_true(f[0] == 1.5f && f[1] == -2 && f[4] == 1e30f);
    assert_true(d[0] == 0.25 && d[2] == 1e300);
    assert_true(u[1] == 42 && u[2] == UINT64_MAX);
    /* A bad type is refused with the rank and host, and nothing changes. */
    assert_int_equal(daecl_comm_allreduce(c, f, 5, 7, DAECL_COMM_SUM, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "rank 0 of 1 on "));
    assert_non_null(strstr(err.msg, c->info.host));
    assert_non_null(strstr(err.msg, "element type 7"));

    char bytes[4] = "abc";
    assert_int_equal(daecl_comm_broadcast(c, bytes, 4, 0, &err), 0);
    assert_string_equal(bytes, "abc");
    assert_int_equal(daecl_comm_broadcast(c, bytes, 4, 1, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "the root must be rank 0"));

    char all[4] = {0};
    assert_int_equal(daecl_comm_allgather(c, bytes, 4, all, &err), 0);
    assert_string_equal(all, "abc");
    assert_int_equal(daecl_comm_allgather(c, bytes, 0, NULL, &err), 0);
    assert_int_equal(daecl_comm_barrier(c, &err), 0);
    daecl_comm_close(c);
    daecl_comm_close(NULL);
}

static void test_auto_alone_is_the_built_in_world(void **state)
{
    (void)state;
    daecl_comm *c = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_comm_open(test_registry(), "auto", &c, &err), 0);
    assert_null(c->plugin);
    assert_int_equal(c->info.size, 1);
    daecl_comm_close(c);
    /* A launcher's world of one is a process alone too. */
    fake_launch("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "1");
    assert_int_equal(daecl_comm_open(NULL, "auto", &c, &err), 0);
    assert_null(c->plugin);
    daecl_comm_close(c);
}

static void test_abort_of_the_built_in_world_flushes_and_exits_with_the_code(void **state)
{
    (void)state;
    char *dir = test_tmpdir("comm_abort");
    char path[4200];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        daecl_comm *c = NULL;
        daecl_err err = {0};
        if (!freopen(path, "w", stdout) || daecl_comm_open(NULL, "none", &c, &err))
            _exit(99);
        printf("unflushed words"); /* buffered: only abort's flush writes them */
        daecl_comm_abort(c, 7);
        _exit(98);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 7);
    size_t n = 0;
    char *text = test_read_file(path, &n);
    assert_string_equal(text, "unflushed words");
    free(text);
    unlink(path);
    test_remove_dir(dir);
}

/* ---- the launcher's environment ----------------------------------------------- */

static void test_launched_reads_open_mpi_pmix_and_pmi(void **state)
{
    (void)state;
    uint32_t rank = 9, size = 9;
    assert_int_equal(daecl_comm_launched(&rank, &size), 0);
    assert_int_equal(rank, 0);
    assert_int_equal(size, 1);

    static const struct {
        const char *rank_var, *rank, *size_var, *size;
        uint32_t want_rank, want_size;
    } launchers[] = {
        {"OMPI_COMM_WORLD_RANK", "2", "OMPI_COMM_WORLD_SIZE", "4", 2, 4}, /* mpirun */
        {"PMIX_RANK", "1", "PMIX_SIZE", "3", 1, 3},                       /* srun --mpi=pmix */
        {"PMIX_RANK", "2", "SLURM_STEP_NUM_TASKS", "6", 2, 6},            /* srun --mpi=pmix */
        {"PMI_RANK", "3", "PMI_SIZE", "16", 3, 16},                       /* srun --mpi=pmi2 */
    };
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        fake_launch(launchers[i].rank_var, launchers[i].rank, launchers[i].size_var,
                    launchers[i].size);
        assert_int_equal(daecl_comm_launched(&rank, &size), 1);
        assert_int_equal(rank, launchers[i].want_rank);
        assert_int_equal(size, launchers[i].want_size);
    }

    fake_launch("PMI_RANK", "0", "PMI_SIZE", "16");
    assert_int_equal(daecl_comm_launched(NULL, &size), 1);
    assert_int_equal(size, 16);
    assert_int_equal(daecl_comm_launched(&rank, NULL), 1);
    assert_int_equal(rank, 0);
}

static void test_launched_ignores_values_that_are_not_a_world(void **state)
{
    (void)state;
    uint32_t rank, size;
    const char *bad[][2] = {{"3", "3"}, {"x", "2"}, {"1", ""}, {"-1", "2"}, {"0", "0"},
                            {"1", "2x"}, {"0", "99999999999999999999"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fake_launch("OMPI_COMM_WORLD_RANK", bad[i][0], "OMPI_COMM_WORLD_SIZE", bad[i][1]);
        if (daecl_comm_launched(&rank, &size) != 0)
            fail_msg("rank '%s' of size '%s' read as launched", bad[i][0], bad[i][1]);
        assert_int_equal(size, 1);
    }
    /* The universe counts slots, not the ranks started. */
    fake_launch("PMIX_RANK", "1", "OMPI_UNIVERSE_SIZE", "8");
    assert_int_equal(daecl_comm_launched(&rank, &size), 0);
    /* A rank without its size is no launcher's. */
    clear_launcher(NULL);
    setenv("PMI_RANK", "1", 1);
    assert_int_equal(daecl_comm_launched(&rank, &size), 0);
}

/* ---- refusals ------------------------------------------------------------------ */

static void test_launched_without_an_mpi_plugin_is_refused_in_one_sentence(void **state)
{
    (void)state;
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    fake_launch("OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2");
    daecl_comm *c = (daecl_comm *)&err; /* must come back NULL */
    assert_int_equal(daecl_comm_open(reg, "auto", &c, &err), DAECL_ENOENT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "started by an MPI launcher as rank 1 of 2"));
    assert_non_null(strstr(err.msg, "daecl-comm-mpi.so was not found"));
    assert_non_null(strstr(err.msg, "libopenmpi-dev"));
    assert_null(strchr(err.msg, '\n'));
    /* No registry at all says the same. */
    assert_int_equal(daecl_comm_open(NULL, "auto", &c, &err), DAECL_ENOENT);
    assert_non_null(strstr(err.msg, "no MPI communicator"));
    daecl_registry_destroy(reg);
}

static void test_none_under_a_launcher_is_refused(void **state)
{
    (void)state;
    daecl_comm *c = NULL;
    daecl_err err = {0};
    fake_launch("PMI_RANK", "0", "PMI_SIZE", "3");
    assert_int_equal(daecl_comm_open(NULL, "none", &c, &err), DAECL_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(err.msg, "rank 0 of 3"));
    assert_non_null(strstr(err.msg, "same run folder"));
}

static void test_an_unknown_comm_name_is_refused(void **state)
{
    (void)state;
    daecl_comm *c = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_comm_open(test_registry(), "carrier_pigeon", &c, &err), DAECL_ENOENT);
    assert_null(c);
    assert_non_null(strstr(err.msg, "no comm plugin 'carrier_pigeon'"));
}

/* ---- a comm plugin in memory ---------------------------------------------------- */

static uint32_t fake_local_size = 1, fake_rank = 0, fake_size = 1;
static int fake_closed;

static int fake_open(const daecl_host *host, void **ctx, daecl_comm_info *info, daecl_err *err)
{
    (void)host;
    (void)err;
    *ctx = &fake_closed;
    memset(info, 0, sizeof *info);
    info->rank = fake_rank;
    info->size = fake_size;
    info->local_size = fake_local_size;
    snprintf(info->host, sizeof info->host, "node7");
    snprintf(info->library, sizeof info->library, "fake");
    return 0;
}

static void fake_close(void *ctx)
{
    (*(int *)ctx)++;
}

static int fake_allreduce(void *ctx, void *buf, size_t count, uint32_t type, uint32_t op,
                          daecl_err *err)
{
    (void)ctx, (void)buf, (void)count, (void)type, (void)op;
    return daecl_plugin_error(err, DAECL_EIO, "the wire is cut");
}

static int fake_broadcast(void *ctx, void *buf, size_t n, uint32_t root, daecl_err *err)
{
    (void)ctx, (void)buf, (void)n, (void)root;
    /* A plugin that names the host itself is not prefixed again. */
    return daecl_plugin_error(err, DAECL_EIO, "MPI_Bcast failed on rank 0 of 1 (host node7): no");
}

static int fake_allgather(void *ctx, const void *mine, size_t n, void *all, daecl_err *err)
{
    (void)ctx, (void)mine, (void)n, (void)all, (void)err;
    return 0;
}

static int fake_barrier(void *ctx, daecl_err *err)
{
    (void)ctx, (void)err;
    return 0;
}

static void fake_abort(void *ctx, int code)
{
    (void)ctx;
    _exit(code);
}

static daecl_comm_ops fake_ops;
static daecl_plugin fake_plugin;

static void reset_fake(void)
{
    fake_ops = (daecl_comm_ops){
        .size = sizeof(daecl_comm_ops), .open = fake_open, .close = fake_close,
        .allreduce = fake_allreduce, .broadcast = fake_broadcast, .allgather = fake_allgather,
        .barrier = fake_barrier, .abort = fake_abort,
    };
    fake_plugin = (daecl_plugin){
        DAECL_PLUGIN_HEAD(DAECL_KIND_COMM), .name = "fake", .version = "0.1",
        .summary = "a comm for tests", .license = "MIT", .ops = &fake_ops,
    };
    fake_local_size = 1, fake_rank = 0, fake_size = 1;
}

static void expect_fake_refused(const char *words)
{
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    assert_int_equal(daecl_registry_add(reg, &fake_plugin, "fake-comm", &err), DAECL_EPLUGIN);
    if (!strstr(err.msg, words) || !strstr(err.msg, "fake-comm"))
        fail_msg("expected '%s' in: %s", words, err.msg);
    assert_int_equal(daecl_registry_count(reg), 0);
    daecl_registry_destroy(reg);
}

/* A registry holding the fake comm at its defaults, alone. */
static daecl_registry *fake_registry(void)
{
    reset_fake();
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_registry_create("", &reg, &err), 0);
    assert_int_equal(daecl_registry_add(reg, &fake_plugin, "fake-comm", &err), 0);
    return reg;
}

static void test_comm_is_a_plugin_kind(void **state)
{
    (void)state;
    assert_string_equal(daecl_plugin_kind_name(DAECL_KIND_COMM), "comm");
    assert_int_equal(daecl_plugin_kind_parse("comm"), DAECL_KIND_COMM);
    assert_int_equal(daecl_plugin_kind_parse("comms"), 0);
    assert_string_equal(daecl_plugin_kind_name(5), "unknown");
}

static void test_a_comm_table_missing_an_op_is_refused(void **state)
{
    (void)state;
    static const char *const slots[] = {"open",      "close",     "allreduce", "broadcast",
                                        "allgather", "barrier",   "abort"};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        reset_fake();
        void **slot = (void **)((char *)&fake_ops + offsetof(daecl_comm_ops, open)) + i;
        *slot = NULL;
        char words[96];
        snprintf(words, sizeof words, "(comm 'fake') lacks the required op '%s'", slots[i]);
        expect_fake_refused(words);
    }
    reset_fake();
    fake_ops.size = 16;
    expect_fake_refused("comm ops table of 16 bytes, smaller than ABI 2.0");
    reset_fake();
}

static void test_a_comm_plugin_is_opened_by_name_and_its_errors_name_the_rank(void **state)
{
    (void)state;
    daecl_registry *reg = fake_registry();
    daecl_err err = {0};
    daecl_comm *c = NULL;
    assert_int_equal(daecl_comm_open(reg, "fake", &c, &err), 0);
    assert_non_null(c->plugin);
    assert_string_equal(c->plugin->name, "fake");
    float x[2] = {1, 2};
    assert_int_equal(daecl_comm_allreduce(c, x, 2, DAECL_COMM_F32, DAECL_COMM_SUM, &err),
                     DAECL_EIO);
    assert_string_equal(err.msg, "rank 0 of 1 on node7: allreduce failed: the wire is cut");
    assert_int_equal(daecl_comm_broadcast(c, x, 8, 0, &err), DAECL_EIO);
    assert_string_equal(err.msg, "MPI_Bcast failed on rank 0 of 1 (host node7): no");
    fake_closed = 0;
    daecl_comm_close(c);
    assert_int_equal(fake_closed, 1);

    /* A launcher's 2 ranks that each join a world of 1 (srun without
     * --mpi) are refused, and the world left. */
    fake_launch("PMIX_RANK", "1", "SLURM_STEP_NUM_TASKS", "2");
    c = (daecl_comm *)&err;
    assert_int_equal(daecl_comm_open(reg, "fake", &c, &err), DAECL_ECONFIG);
    assert_null(c);
    assert_non_null(strstr(err.msg, "the launcher started 2 ranks, but the fake communicator "
                                    "joined a world of 1"));
    assert_int_equal(fake_closed, 2);
    clear_launcher(NULL);

    /* A world that cannot be is refused, and left. */
    fake_rank = 3, fake_size = 2;
    assert_int_equal(daecl_comm_open(reg, "fake", &c, &err), DAECL_EPLUGIN);
    assert_null(c);
    assert_non_null(strstr(err.msg, "rank 3 of 2"));
    assert_int_equal(fake_closed, 3);
    daecl_registry_destroy(reg);
    reset_fake();
}

static void test_ranks_sharing_a_node_share_its_cpus_with_pocl(void **state)
{
    (void)state;
    daecl_registry *reg = fake_registry();
    daecl_err err = {0};
    char *saved = getenv("POCL_MAX_PTHREAD_COUNT");
    saved = saved ? strdup(saved) : NULL;
    unsetenv("POCL_MAX_PTHREAD_COUNT");
    daecl_comm *c = NULL;
    /* Alone on the node: POCL may take them all. */
    assert_int_equal(daecl_comm_open(reg, "fake", &c, &err), 0);
    daecl_comm_close(c);
    assert_null(getenv("POCL_MAX_PTHREAD_COUNT"));
    /* Two ranks, as mpirun says: the share the host pool takes. */
    fake_local_size = 2, fake_size = 2;
    fake_launch("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "2");
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    unsigned share = daecl_pool_default_threads();
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    if (CPU_COUNT(&set) == sysconf(_SC_NPROCESSORS_ONLN)) /* the whole node: halved */
        assert_true(share <= (CPU_COUNT(&set) / 2 > 0 ? (unsigned)CPU_COUNT(&set) / 2 : 1u));
    assert_int_equal(daecl_comm_open(reg, "fake", &c, &err), 0);
    daecl_comm_close(c);
    const char *got = getenv("POCL_MAX_PTHREAD_COUNT");
    assert_non_null(got);
    assert_int_equal(atol(got), share);
    /* The user's choice stands. */
    setenv("POCL_MAX_PTHREAD_COUNT", "13", 1);
    assert_int_equal(daecl_comm_open(reg, "fake", &c, &err), 0);
    daecl_comm_close(c);
    assert_string_equal(getenv("POCL_MAX_PTHREAD_COUNT"), "13");
    if (saved)
        setenv("POCL_MAX_PTHREAD_COUNT", saved, 1);
    else
        unsetenv("POCL_MAX_PTHREAD_COUNT");
    free(saved);
    daecl_registry_destroy(reg);
    reset_fake();
}

/* ---- the mpi plugin --------------------------------------------------------------- */

static void test_plugin_check_passes_on_the_mpi_plugin(void **state)
{
    (void)state;
    const char *path = DAECL_TEST_PLUGIN_DIR "/daecl-comm-mpi.so";
    struct stat st;
    if (stat(path, &st) != 0) {
        /* A build without MPI (DAECL_WITH_MPI=OFF or none found). */
        printf("no %s in this build: skipped\n", path);
        skip();
    }
    /* In child processes: MPI is initialised once per process. By file,
     * then by name (`daecl plugin check comm/mpi`) on the build's plugins. */
    char *by_file[] = {DAECL_TEST_BIN, "plugin", "check", (char *)path, NULL};
    char *by_name[] = {DAECL_TEST_BIN, "plugin", "check", "comm/mpi", NULL};
    char *env[] = {"DAECL_PLUGIN_PATH=" DAECL_TEST_PLUGIN_DIR, NULL};
    for (int i = 0; i < 2; i++) {
        char *out = NULL;
        int rc = test_run(i ? by_name : by_file, env, &out);
        int ok = rc == 0 && strstr(out, "mpi: 12 checks passed, 0 skipped") &&
                 strstr(out, "PASS  allreduce") && strstr(out, "rank 0 of 1") &&
                 strstr(out, "daecl-comm-mpi.so");
        if (!ok)
            print_error("daecl plugin check exited %d:\n%s\n", rc, out);
        free(out);
        assert_true(ok);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, clear_launcher)
    const struct CMUnitTest tests[] = {
        T(test_none_is_rank_0_of_1_and_its_ops_keep_or_copy),
        T(test_auto_alone_is_the_built_in_world),
        T(test_abort_of_the_built_in_world_flushes_and_exits_with_the_code),
        T(test_launched_reads_open_mpi_pmix_and_pmi),
        T(test_launched_ignores_values_that_are_not_a_world),
        T(test_launched_without_an_mpi_plugin_is_refused_in_one_sentence),
        T(test_none_under_a_launcher_is_refused),
        T(test_an_unknown_comm_name_is_refused),
        T(test_comm_is_a_plugin_kind),
        T(test_a_comm_table_missing_an_op_is_refused),
        T(test_a_comm_plugin_is_opened_by_name_and_its_errors_name_the_rank),
        T(test_ranks_sharing_a_node_share_its_cpus_with_pocl),
        T(test_plugin_check_passes_on_the_mpi_plugin),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
