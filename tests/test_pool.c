/* daecl tests — the thread pool (core/pool.c): every chunk of every job runs
 * exactly once whatever the thread count, a chunk that blocks leaves the
 * rest to the other threads, and the default thread count follows the
 * process's CPU affinity and its cgroup's CPU quota (read from fake cgroup
 * trees written here), divided among the MPI ranks on one node. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/pool.h"
#include "tests/support.h"

/* Defined in core/pool.c for these tests (not in pool.h). */
unsigned daecl__pool_cgroup_cpus(const char *sys_root, const char *proc_cgroup);
unsigned daecl__pool_ranks_on_node(void);
unsigned daecl__pool_rank_share(unsigned cpus, unsigned in_mask, unsigned online, unsigned ranks);

/* ---- every chunk once ------------------------------------------------------- */

enum { MAX_CHUNKS = 5000 };

typedef struct count_job {
    _Atomic unsigned hits[MAX_CHUNKS];
    size_t n;
    _Atomic unsigned out_of_range;
} count_job;

static void count_chunk(void *arg, size_t chunk)
{
    count_job *j = arg;
    if (chunk >= j->n) {
        atomic_fetch_add(&j->out_of_range, 1);
        return;
    }
    atomic_fetch_add_explicit(&j->hits[chunk], 1, memory_order_relaxed);
    /* a little uneven work, so threads overtake one another */
    if (chunk % 7 == 3) {
        volatile unsigned spin = 0;
        for (unsigned i = 0; i < 200 * (chunk % 5); i++)
            spin += i;
    }
}

/* Runs `jobs` jobs of varied sizes (0 to MAX_CHUNKS chunks) on p and checks
 * each ran every chunk exactly once and nothing else. */
static void run_and_count(daecl_pool *p, unsigned jobs, uint64_t seed)
{
    static count_job j;
    uint64_t s = seed;
    for (unsigned t = 0; t < jobs; t++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        /* mostly small jobs (the gaps between them are what races), some
         * large ones, and the edges 0, 1 and 2 */
        size_t n = t < 3 ? t : (s >> 33) % 8 == 0 ? (size_t)((s >> 20) % MAX_CHUNKS)
                                                  : (size_t)((s >> 40) % 40);
        for (size_t c = 0; c < MAX_CHUNKS; c++)
            atomic_store_explicit(&j.hits[c], 0, memory_order_relaxed);
        j.n = n;
        atomic_store(&j.out_of_range, 0);
        daecl_pool_run(p, n, count_chunk, &j);
        for (size_t c = 0; c < MAX_CHUNKS; c++) {
            unsigned h = atomic_load_explicit(&j.hits[c], memory_order_relaxed);
            if (h != (c < n ? 1u : 0u))
                fail_msg("job %u of %zu chunks on %u threads: chunk %zu ran %u times", t, n,
                         daecl_pool_threads(p), c, h);
        }
        assert_int_equal(atomic_load(&j.out_of_range), 0);
    }
}

static void test_every_chunk_runs_exactly_once_for_any_size_and_thread_count(void **state)
{
    (void)state;
    const unsigned counts[] = {1, 2, 3, 8};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        daecl_pool *p = NULL;
        assert_int_equal(daecl_pool_create(counts[i], &p), 0);
        assert_non_null(p);
        assert_int_equal(daecl_pool_threads(p), counts[i]);
        run_and_count(p, 3000, 17 + i);
        daecl_pool_destroy(p);
    }
    /* A NULL pool runs inline; destroy accepts NULL. */
    assert_int_equal(daecl_pool_threads(NULL), 1);
    run_and_count(NULL, 50, 5);
    daecl_pool_destroy(NULL);
}

/* Threads that slept (no job for a while) wake up for the next job, and
 * jobs that follow one another with no gap are all complete. */
static void test_threads_wake_for_jobs_after_sleeping(void **state)
{
    (void)state;
    daecl_pool *p = NULL;
    assert_int_equal(daecl_pool_create(3, &p), 0);
    for (int round = 0; round < 5; round++) {
        struct timespec pause = {0, 3 * 1000 * 1000}; /* well past the spin */
        nanosleep(&pause, NULL);
        run_and_count(p, 20, 100 + (uint64_t)round);
    }
    daecl_pool_destroy(p);
}

/* ---- a blocked chunk --------------------------------------------------------- */

enum { BLOCK_CHUNKS = 64 };

typedef struct block_job {
    size_t blocked; /* the chunk that waits */
    _Atomic unsigned others_done;
    _Atomic int blocking;   /* the blocked chunk has started */
    _Atomic int waited_out; /* the blocked chunk saw all the others finish */
    pthread_t ran_on[BLOCK_CHUNKS];
    int during[BLOCK_CHUNKS]; /* chunk c started while the blocked one ran */
} block_job;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void block_chunk(void *arg, size_t chunk)
{
    block_job *j = arg;
    j->ran_on[chunk] = pthread_self();
    if (chunk != j->blocked) {
        j->during[chunk] = atomic_load(&j->blocking);
        struct timespec t = {0, 100 * 1000}; /* 0.1 ms of "work" */
        nanosleep(&t, NULL);
        atomic_fetch_add(&j->others_done, 1);
        return;
    }
    /* Hold this thread until every other chunk is done, or 20 s: a static
     * split (each thread a fixed share) would leave this thread's share
     * undone and time out. */
    atomic_store(&j->blocking, 1);
    double end = now_s() + 20.0;
    while (atomic_load(&j->others_done) < BLOCK_CHUNKS - 1 && now_s() < end) {
        struct timespec t = {0, 200 * 1000};
        nanosleep(&t, NULL);
    }
    atomic_store(&j->waited_out, atomic_load(&j->others_done) == BLOCK_CHUNKS - 1);
}

static void test_a_blocked_chunk_leaves_the_rest_to_the_other_threads(void **state)
{
    (void)state;
    const unsigned counts[] = {2, 3, 8};
    const size_t blocked[] = {0, BLOCK_CHUNKS / 2, BLOCK_CHUNKS - 1};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        for (size_t b = 0; b < sizeof blocked / sizeof blocked[0]; b++) {
            daecl_pool *p = NULL;
            assert_int_equal(daecl_pool_create(counts[i], &p), 0);
            static block_job j;
            memset(&j, 0, sizeof j);
            j.blocked = blocked[b];
            daecl_pool_run(p, BLOCK_CHUNKS, block_chunk, &j);
            daecl_pool_destroy(p);
            if (!atomic_load(&j.waited_out))
                fail_msg("%u threads: while chunk %zu blocked, only %u of the other %d chunks ran",
                         counts[i], blocked[b], atomic_load(&j.others_done), BLOCK_CHUNKS - 1);
            /* The chunks that started meanwhile ran on other threads; when
             * the blocked chunk is the first, that is all the others. */
            size_t during = 0;
            for (size_t c = 0; c < BLOCK_CHUNKS; c++) {
                if (c == j.blocked || !j.during[c])
                    continue;
                during++;
                if (pthread_equal(j.ran_on[c], j.ran_on[j.blocked]))
                    fail_msg("%u threads: chunk %zu ran on the blocked chunk's thread",
                             counts[i], c);
            }
            if (j.blocked == 0 && during < BLOCK_CHUNKS - counts[i])
                fail_msg("%u threads: only %zu chunks started while chunk 0 blocked", counts[i],
                         during);
        }
}

/* ---- cgroup quotas ----------------------------------------------------------------- */

/* Writes text to root/rel, making the folders on the way. */
static void put(const char *root, const char *rel, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *s = path + strlen(root) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
        *s = '/';
    }
    test_write_file(path, text, strlen(text));
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(char *dir)
{
    assert_int_equal(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(dir);
}

static void test_cgroup_v2_quota_is_read_and_rounded_up(void **state)
{
    (void)state;
    char *root = test_tmpdir("pool-cg2");
    put(root, "user/job/cpu.max", "150000 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/user/job\n"), 2);
    /* exactly 3 CPUs, and less than one CPU still allows one thread */
    put(root, "user/job/cpu.max", "300000 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/user/job\n"), 3);
    put(root, "user/job/cpu.max", "20000 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/user/job\n"), 1);
    /* "max": no limit */
    put(root, "user/job/cpu.max", "max 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/user/job\n"), 0);
    /* a container with its own namespace: the path is "/", the mount's own file */
    put(root, "cpu.max", "200000 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/\n"), 2);
    remove_tree(root);
}

static void test_cgroup_v2_parent_limit_lower_than_the_child_wins(void **state)
{
    (void)state;
    char *root = test_tmpdir("pool-cg2-nest");
    put(root, "cpu.max", "max 100000\n");
    put(root, "a/cpu.max", "100000 100000\n");      /* 1 CPU */
    put(root, "a/b/cpu.max", "400000 100000\n");    /* 4 CPUs */
    put(root, "a/b/c/cpu.max", "max 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/a/b/c\n"), 1);
    /* the child's own lower limit wins over a higher parent one */
    put(root, "a/cpu.max", "800000 100000\n");
    put(root, "a/b/c/cpu.max", "250000 100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/a/b/c\n"), 3);
    /* a group whose files are missing (not mounted here) limits nothing */
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/elsewhere\n"), 0);
    remove_tree(root);
}

static void test_cgroup_v1_cfs_quota_is_read_from_the_cpu_controller(void **state)
{
    (void)state;
    char *root = test_tmpdir("pool-cg1");
    const char *proc = "12:memory:/docker/x\n4:cpu,cpuacct:/docker/x\n1:name=systemd:/docker/x\n";
    put(root, "cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put(root, "cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put(root, "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "250000\n");
    put(root, "cpu,cpuacct/docker/x/cpu.cfs_period_us", "100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, proc), 3);
    /* -1: no quota */
    put(root, "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, proc), 0);
    /* a parent's lower quota wins */
    put(root, "cpu,cpuacct/docker/cpu.cfs_quota_us", "50000\n");
    put(root, "cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
    put(root, "cpu,cpuacct/docker/x/cpu.cfs_quota_us", "400000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, proc), 1);
    remove_tree(root);

    /* mounted as plain "cpu" (the comounted name absent) */
    root = test_tmpdir("pool-cg1-cpu");
    put(root, "cpu/job/cpu.cfs_quota_us", "200000\n");
    put(root, "cpu/job/cpu.cfs_period_us", "100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "3:cpuacct,cpu:/job\n"), 2);
    remove_tree(root);
}

static void test_cgroup_without_a_cpu_controller_limits_nothing(void **state)
{
    (void)state;
    char *root = test_tmpdir("pool-cg-none");
    /* quota files under controllers that are not cpu's are not read */
    put(root, "memory/job/cpu.cfs_quota_us", "100000\n");
    put(root, "memory/job/cpu.cfs_period_us", "100000\n");
    put(root, "cpuset/job/cpu.cfs_quota_us", "100000\n");
    put(root, "cpuset/job/cpu.cfs_period_us", "100000\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "5:memory:/job\n3:cpuset:/job\n"), 0);
    /* v2 without the cpu controller enabled: no cpu.max file */
    put(root, "job/memory.max", "max\n");
    assert_int_equal(daecl__pool_cgroup_cpus(root, "0::/job\n"), 0);
    /* nothing at all, and lines that are not cgroup lines */
    assert_int_equal(daecl__pool_cgroup_cpus(root, ""), 0);
    assert_int_equal(daecl__pool_cgroup_cpus(root, "garbage\n\n"), 0);
    remove_tree(root);
}

/* ---- the default thread count ------------------------------------------------------- */

static void test_default_threads_follow_the_affinity_mask(void **state)
{
    (void)state;
    cpu_set_t mine;
    assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
    unsigned n = daecl_pool_default_threads();
    assert_true(n >= 1 && n <= (unsigned)CPU_COUNT(&mine));

    /* A child limited to one CPU gets 1, and a pool of "0" threads there
     * has one thread. */
    int cpu = 0;
    while (!CPU_ISSET(cpu, &mine))
        cpu++;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0)
            _exit(100);
        daecl_pool *p = NULL;
        if (daecl_pool_create(0, &p) != 0)
            _exit(101);
        unsigned in_pool = daecl_pool_threads(p);
        daecl_pool_destroy(p);
        _exit(in_pool == 1 ? (int)daecl_pool_default_threads() : 102);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
}

/* ---- ranks on one node --------------------------------------------------------- */

static const char *const launcher_vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                            "SLURM_STEP_TASKS_PER_NODE", "SLURM_NODEID"};

static void clear_launcher_env(void)
{
    for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++)
        unsetenv(launcher_vars[i]);
}

static void test_ranks_on_node_come_from_open_mpi_hydra_or_slurm(void **state)
{
    (void)state;
    clear_launcher_env();
    assert_int_equal(daecl__pool_ranks_on_node(), 1);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4", 1);
    assert_int_equal(daecl__pool_ranks_on_node(), 4);
    setenv("MPI_LOCALNRANKS", "3", 1); /* Open MPI's comes first */
    assert_int_equal(daecl__pool_ranks_on_node(), 4);
    unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    assert_int_equal(daecl__pool_ranks_on_node(), 3);
    unsetenv("MPI_LOCALNRANKS");

    /* srun: node 0 runs 2 tasks, nodes 1 to 3 run 3, node 4 runs 1 */
    setenv("SLURM_STEP_TASKS_PER_NODE", "2,3(x3),1", 1);
    const char *node[] = {"0", "1", "3", "4", "5"};
    unsigned want[] = {2, 3, 3, 1, 1};
    for (size_t i = 0; i < 5; i++) {
        setenv("SLURM_NODEID", node[i], 1);
        assert_int_equal(daecl__pool_ranks_on_node(), want[i]);
    }
    unsetenv("SLURM_NODEID"); /* a list without our node number says nothing */
    assert_int_equal(daecl__pool_ranks_on_node(), 1);

    /* what cannot be read says nothing: one rank */
    const char *junk[] = {"", "0", "-2", "4x", "99999999999", " 4"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        clear_launcher_env();
        setenv("OMPI_COMM_WORLD_LOCAL_SIZE", junk[i], 1);
        assert_int_equal(daecl__pool_ranks_on_node(), 1);
        setenv("SLURM_STEP_TASKS_PER_NODE", junk[i], 1);
        setenv("SLURM_NODEID", "0", 1);
        assert_int_equal(daecl__pool_ranks_on_node(), 1);
    }
    setenv("SLURM_STEP_TASKS_PER_NODE", "2(x3", 1);
    assert_int_equal(daecl__pool_ranks_on_node(), 1);
    clear_launcher_env();
}

static void test_each_rank_takes_its_share_unless_bound_to_its_own_cores(void **state)
{
    (void)state;
    /* the whole node in the mask: divided, rounded down, at least 1 */
    assert_int_equal(daecl__pool_rank_share(16, 16, 16, 1), 16);
    assert_int_equal(daecl__pool_rank_share(16, 16, 16, 4), 4);
    assert_int_equal(daecl__pool_rank_share(16, 16, 16, 3), 5);
    assert_int_equal(daecl__pool_rank_share(2, 2, 2, 8), 1);
    /* after the cgroup quota: 6 of the node's 16 CPUs, 4 ranks */
    assert_int_equal(daecl__pool_rank_share(6, 16, 16, 4), 1);
    /* mpirun --bind-to core gave this rank 4 of 16: that is its share */
    assert_int_equal(daecl__pool_rank_share(4, 4, 16, 4), 4);

    /* through the environment: this process's own default, shared by 2 */
    clear_launcher_env();
    cpu_set_t mine;
    assert_int_equal(sched_getaffinity(0, sizeof mine, &mine), 0);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned alone = daecl_pool_default_threads();
    int whole_node = CPU_COUNT(&mine) >= online;
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
    unsigned shared = daecl_pool_default_threads();
    assert_int_equal(shared, whole_node ? (alone / 2 ? alone / 2 : 1) : alone);
    setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1000", 1);
    assert_int_equal(daecl_pool_default_threads(), whole_node ? 1 : alone);
    clear_launcher_env();
    assert_int_equal(daecl_pool_default_threads(), alone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_chunk_runs_exactly_once_for_any_size_and_thread_count),
        cmocka_unit_test(test_threads_wake_for_jobs_after_sleeping),
        cmocka_unit_test(test_a_blocked_chunk_leaves_the_rest_to_the_other_threads),
        cmocka_unit_test(test_cgroup_v2_quota_is_read_and_rounded_up),
        cmocka_unit_test(test_cgroup_v2_parent_limit_lower_than_the_child_wins),
        cmocka_unit_test(test_cgroup_v1_cfs_quota_is_read_from_the_cpu_controller),
        cmocka_unit_test(test_cgroup_without_a_cpu_controller_limits_nothing),
        cmocka_unit_test(test_default_threads_follow_the_affinity_mask),
        cmocka_unit_test(test_ranks_on_node_come_from_open_mpi_hydra_or_slurm),
        cmocka_unit_test(test_each_rank_takes_its_share_unless_bound_to_its_own_cores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
