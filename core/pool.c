/* daecl — a pool of worker threads for parallel loops (pool.h).
 *
 * One job at a time. The caller publishes a job (fn, arg, n_chunks) under a
 * new generation number and takes chunks itself; workers take chunks too.
 * A chunk is claimed by a compare-and-swap on one 64-bit word holding the
 * generation (high half) and the next chunk (low half), so a worker that
 * wakes late can never take a chunk of a later job with an earlier job's
 * function: its swap fails as soon as the generation moved on.
 *
 * Waiting spins for 20 microseconds (most gaps between the ops of a
 * training step are shorter), then sleeps on a futex; it sleeps at once
 * when a thread it waits for is queued on its own CPU. Sleeping is what
 * makes the pool survive a busy core: libgomp's default waiting spins for
 * much longer, and with a static schedule every op then waits for the
 * thread the scheduler took away. Measured on 2 cores beside `yes`
 * (bench/README.md, contention): a 50 us spin cost the small model 10-15 %
 * there and gained 1-2 % on a quiet machine; 10 us lost 3 % quiet. */
#include "core/pool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A worker thread, and the CPU it runs a chunk on (-1 between chunks). */
typedef struct worker {
    daecl_pool *p;
    pthread_t thread;
    _Atomic int cpu;
} worker;

struct daecl_pool {
    unsigned n_threads;
    unsigned n_workers;
    worker *workers;
    _Atomic int caller_cpu; /* the CPU the caller last ran on */
    /* the current job; written by the caller before it publishes `claim` */
    _Atomic(daecl_pool_fn) fn;
    _Atomic(void *) arg;
    _Atomic uint64_t job_n; /* (generation << 32) | chunk count */
    /* (generation << 32) | next chunk to take */
    _Atomic uint64_t claim;
    /* futex words: workers sleep on gen, the caller on done */
    _Atomic uint32_t gen;
    _Atomic uint32_t done;
    _Atomic uint32_t sleepers;
    _Atomic uint32_t caller_sleeping;
    _Atomic int stop;
    uint32_t last_gen; /* the caller's own copy of gen */
    long spin_ns;
};

/* ---- futexes ------------------------------------------------------------------ */

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    /* Returns at once when *word != expected; spurious wake-ups are fine,
     * every caller loops on its condition. */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Whether a thread this one waits for last ran on this one's CPU: then
 * spinning only keeps it off that CPU, queued behind the spinner. That is
 * common beside a busy process (three runnable threads on two CPUs). A
 * worker waits for the caller (to publish the next job), the caller
 * (self < 0) for the workers that hold chunks. sched_getcpu is a read of
 * the rseq area, not a system call. */
static int sharing(daecl_pool *p, int self)
{
    int cpu = sched_getcpu();
    if (cpu < 0)
        return 0;
    if (self >= 0)
        return atomic_load_explicit(&p->caller_cpu, memory_order_relaxed) == cpu;
    for (unsigned i = 0; i < p->n_workers; i++)
        if (atomic_load_explicit(&p->workers[i].cpu, memory_order_relaxed) == cpu)
            return 1;
    return 0;
}

/* Spins while (*word == value) == equal, for at most the pool's spin; 1
 * when the condition ended, 0 when the time ran out or a thread awaited
 * shares this CPU. The clock and the CPU are read every 64 rounds (a pause
 * is tens of cycles). */
static int spin_while(daecl_pool *p, int self, _Atomic uint32_t *word, uint32_t value, int equal)
{
    if (p->spin_ns <= 0)
        return (atomic_load_explicit(word, memory_order_acquire) == value) != equal;
    long deadline = now_ns() + p->spin_ns;
    for (unsigned i = 1;; i++) {
        if ((atomic_load_explicit(word, memory_order_acquire) == value) != equal)
            return 1;
        cpu_relax();
        if (i % 64 == 0 && (now_ns() >= deadline || sharing(p, self)))
            return 0;
    }
}

/* ---- work ------------------------------------------------------------------------ */

/* Takes and runs chunks of generation g until none is left; w is the
 * worker doing so, NULL for the caller. */
static void work(daecl_pool *p, worker *w, uint32_t g)
{
    for (;;) {
        uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
        if ((uint32_t)(v >> 32) != g)
            return;
        /* The count is tagged with its generation too: once job g is fully
         * claimed (k == its count) the caller may already be writing the
         * next job's fields, and an untagged count of the next job would
         * let this worker take a chunk past the end of job g. */
        uint64_t nt = atomic_load_explicit(&p->job_n, memory_order_acquire);
        uint32_t k = (uint32_t)v, n = (uint32_t)nt;
        if ((uint32_t)(nt >> 32) != g || k >= n)
            return;
        daecl_pool_fn fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&p->arg, memory_order_relaxed);
        /* Success means job g was not finished when the fields were read
         * (its chunk k < n was still free), so they are job g's. */
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        if (w)
            atomic_store_explicit(&w->cpu, sched_getcpu(), memory_order_relaxed);
        fn(arg, k);
        if (w)
            atomic_store_explicit(&w->cpu, -1, memory_order_relaxed);
        /* seq_cst against the caller's store of caller_sleeping then load
         * of done: one of the two sees the other's write. */
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst) + 1 == n &&
            atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst))
            futex_wake(&p->done, 1);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    daecl_pool *p = w->p;
    uint32_t seen = 0;
    for (;;) {
        if (!spin_while(p, 0, &p->gen, seen, 1)) {
            atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
            while (atomic_load_explicit(&p->gen, memory_order_seq_cst) == seen)
                futex_wait(&p->gen, seen);
            atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
        }
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->stop, memory_order_acquire))
            return NULL;
        work(p, w, seen);
    }
}

void daecl_pool_run(daecl_pool *p, size_t n_chunks, daecl_pool_fn fn, void *arg)
{
    if (!p || p->n_workers == 0 || n_chunks <= 1 || n_chunks > UINT32_MAX) {
        for (size_t c = 0; c < n_chunks; c++)
            fn(arg, c);
        return;
    }
    uint32_t n = (uint32_t)n_chunks, g = ++p->last_gen;
    if (g == 0) /* 0 is the workers' starting value: skip it when wrapping */
        g = ++p->last_gen;
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&p->job_n, (uint64_t)g << 32 | n, memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release);
    atomic_store_explicit(&p->caller_cpu, sched_getcpu(), memory_order_relaxed);
    atomic_store_explicit(&p->gen, g, memory_order_seq_cst);
    /* Wake no more sleepers than there are chunks for besides the caller's
     * first: a small job on a big pool should not wake every thread. */
    uint32_t sleeping = atomic_load_explicit(&p->sleepers, memory_order_seq_cst);
    if (sleeping)
        futex_wake(&p->gen, (int)(n - 1 < sleeping ? n - 1 : sleeping));
    work(p, NULL, g);
    /* Every chunk is taken; wait for the ones still running elsewhere. */
    uint32_t d = atomic_load_explicit(&p->done, memory_order_acquire);
    if (d == n)
        return;
    if (spin_while(p, -1, &p->done, n, 0))
        return;
    atomic_store_explicit(&p->caller_sleeping, 1, memory_order_seq_cst);
    while ((d = atomic_load_explicit(&p->done, memory_order_seq_cst)) != n)
        futex_wait(&p->done, d);
    atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
}

/* ---- lifetime -------------------------------------------------------------------- */

int daecl_pool_create(unsigned n_threads, daecl_pool **out)
{
    *out = NULL;
    if (n_threads == 0)
        n_threads = daecl_pool_default_threads();
    daecl_pool *p = calloc(1, sizeof *p);
    if (!p)
        return ENOMEM;
    p->n_threads = n_threads;
    /* DAECL_POOL_SPIN_US: how long an idle thread spins before it sleeps
     * (default 20 us; 0 sleeps at once). For measurements. */
    p->spin_ns = 20000;
    const char *spin = getenv("DAECL_POOL_SPIN_US");
    if (spin && *spin) {
        char *end = NULL;
        long us = strtol(spin, &end, 10);
        if (end && !*end && us >= 0 && us <= 1000000)
            p->spin_ns = us * 1000;
    }
    atomic_init(&p->caller_cpu, -1);
    if (n_threads > 1) {
        p->workers = calloc(n_threads - 1, sizeof *p->workers);
        if (!p->workers) {
            free(p);
            return ENOMEM;
        }
        for (unsigned i = 0; i + 1 < n_threads; i++) {
            p->workers[i].p = p;
            atomic_init(&p->workers[i].cpu, -1);
            int rc = pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]);
            if (rc) {
                daecl_pool_destroy(p);
                return rc;
            }
            p->n_workers++;
        }
    }
    *out = p;
    return 0;
}

void daecl_pool_destroy(daecl_pool *p)
{
    if (!p)
        return;
    if (p->n_workers) {
        atomic_store_explicit(&p->stop, 1, memory_order_release);
        uint32_t g = ++p->last_gen;
        if (g == 0)
            g = ++p->last_gen;
        atomic_store_explicit(&p->gen, g, memory_order_seq_cst);
        futex_wake(&p->gen, INT_MAX);
        for (unsigned i = 0; i < p->n_workers; i++)
            pthread_join(p->workers[i].thread, NULL);
    }
    free(p->workers);
    free(p);
}

unsigned daecl_pool_threads(const daecl_pool *p)
{
    return p ? p->n_threads : 1;
}

/* ---- how many threads ------------------------------------------------------------- */

/* The first line of a small file into buf; 0 when read. */
static int read_line(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    return ok ? 0 : -1;
}

/* CPUs a quota allows, rounded up (0 when there is no quota). */
static unsigned quota_cpus(long long quota, long long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    long long cpus = (quota + period - 1) / period;
    return cpus < 1 ? 1 : cpus > 4096 ? 4096 : (unsigned)cpus;
}

/* The lowest CPU quota of the cgroup `rel` (as /proc/self/cgroup gives it)
 * and its ancestors under the mount `root`, in v2's cpu.max or v1's
 * cpu.cfs_quota_us; 0 when none is set. */
static unsigned cgroup_walk(const char *root, const char *rel, int v2)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s%s", root, rel);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        dir[--len] = '\0';
    unsigned best = 0;
    for (;;) {
        char path[PATH_MAX + 32], line[128];
        unsigned cpus = 0;
        if (v2) {
            snprintf(path, sizeof path, "%s/cpu.max", dir);
            long long quota = 0, period = 0;
            char q[32];
            if (read_line(path, line, sizeof line) == 0 &&
                sscanf(line, "%31s %lld", q, &period) == 2 && strcmp(q, "max") != 0)
                quota = atoll(q);
            cpus = quota_cpus(quota, period);
        } else {
            char qline[128];
            snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
            if (read_line(path, qline, sizeof qline) == 0) {
                snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
                if (read_line(path, line, sizeof line) == 0)
                    cpus = quota_cpus(atoll(qline), atoll(line));
            }
        }
        if (cpus && (!best || cpus < best))
            best = cpus;
        /* up one level, never above the mount */
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < strlen(root))
            break;
        *slash = '\0';
        if (strlen(dir) < strlen(root))
            break;
    }
    return best;
}

/* Exposed for tests (tests/test_pool.c): the CPU quota of this process's
 * cgroup as read under sys_root ("/sys/fs/cgroup") from the lines of
 * proc_cgroup (the text of /proc/self/cgroup); 0 when unlimited. */
unsigned daecl__pool_cgroup_cpus(const char *sys_root, const char *proc_cgroup);
unsigned daecl__pool_cgroup_cpus(const char *sys_root, const char *proc_cgroup)
{
    unsigned best = 0;
    for (const char *l = proc_cgroup; l && *l;) {
        size_t n = strcspn(l, "\n");
        char line[PATH_MAX];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line ? n : sizeof line - 1), l);
        l += n + (l[n] == '\n');
        /* "ID:CONTROLLERS:PATH" */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = *c2 = '\0';
        const char *ctrl = c1 + 1, *rel = c2 + 1;
        char root[PATH_MAX];
        unsigned cpus = 0;
        if (strcmp(line, "0") == 0 && ctrl[0] == '\0') {
            /* v2: the unified hierarchy; in a container with its own cgroup
             * namespace the path is "/" and the mount is the container's */
            snprintf(root, sizeof root, "%s", sys_root);
            cpus = cgroup_walk(root, rel, 1);
        } else {
            int has_cpu = 0;
            for (const char *t = ctrl; *t;) {
                size_t m = strcspn(t, ",");
                has_cpu |= m == 3 && strncmp(t, "cpu", 3) == 0;
                t += m + (t[m] == ',');
            }
            if (!has_cpu)
                continue;
            snprintf(root, sizeof root, "%s/%s", sys_root, ctrl);
            cpus = cgroup_walk(root, rel, 0);
            if (!cpus) {
                snprintf(root, sizeof root, "%s/cpu", sys_root);
                cpus = cgroup_walk(root, rel, 0);
            }
        }
        if (cpus && (!best || cpus < best))
            best = cpus;
    }
    return best;
}

/* A whole number from 1 to 65536 in `s` (the whole string); 0 otherwise. */
static unsigned env_count(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    return end && !*end && v >= 1 && v <= 65536 ? (unsigned)v : 0;
}

/* Node `node`'s entry of Slurm's tasks-per-node list "4", "2(x3),1": 0
 * when the list or the node number cannot be read. */
static unsigned slurm_tasks_on(const char *list, const char *node)
{
    if (!list || !node || *node < '0' || *node > '9')
        return 0;
    unsigned long want = strtoul(node, NULL, 10), at = 0;
    for (const char *p = list; *p >= '0' && *p <= '9';) {
        char *end = NULL;
        unsigned long tasks = strtoul(p, &end, 10), times = 1;
        if (end[0] == '(' && end[1] == 'x' && end[2] >= '0' && end[2] <= '9') {
            times = strtoul(end + 2, &end, 10);
            if (*end++ != ')')
                return 0;
        }
        if (*end != ',' && *end != '\0')
            return 0;
        if (want < at + times)
            return tasks >= 1 && tasks <= 65536 ? (unsigned)tasks : 0;
        at += times;
        if (*end != ',')
            return 0;
        p = end + 1;
    }
    return 0;
}

/* Exposed for tests: the ranks on this process's node as its launcher
 * tells it, 1 when none does. Open MPI's mpirun sets
 * OMPI_COMM_WORLD_LOCAL_SIZE; MPICH's and Intel MPI's Hydra
 * MPI_LOCALNRANKS; Slurm's srun SLURM_STEP_TASKS_PER_NODE (one entry per
 * node of the step) with SLURM_NODEID. Not SLURM_NTASKS_PER_NODE: sbatch
 * sets it for the whole job, also for a one-process step inside it, and
 * only when --ntasks-per-node is given. */
unsigned daecl__pool_ranks_on_node(void);
unsigned daecl__pool_ranks_on_node(void)
{
    unsigned n = env_count(getenv("OMPI_COMM_WORLD_LOCAL_SIZE"));
    if (!n)
        n = env_count(getenv("MPI_LOCALNRANKS"));
    if (!n)
        n = slurm_tasks_on(getenv("SLURM_STEP_TASKS_PER_NODE"), getenv("SLURM_NODEID"));
    return n ? n : 1;
}

/* Exposed for tests: one rank's share of `cpus` when `ranks` share a node
 * of `online` CPUs and the rank's affinity mask holds `in_mask` of them. A
 * mask narrower than the node already is the share (mpirun --bind-to,
 * srun --cpu-bind): it is kept. Round down, at least 1. */
unsigned daecl__pool_rank_share(unsigned cpus, unsigned in_mask, unsigned online, unsigned ranks);
unsigned daecl__pool_rank_share(unsigned cpus, unsigned in_mask, unsigned online, unsigned ranks)
{
    if (ranks <= 1 || in_mask < online)
        return cpus;
    return cpus / ranks ? cpus / ranks : 1;
}

unsigned daecl_pool_default_threads(void)
{
    unsigned n = 0;
    cpu_set_t set;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        n = (unsigned)CPU_COUNT(&set);
    unsigned in_mask = n;
    if (n == 0)
        n = in_mask = online > 0 ? (unsigned)online : 1;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (f) {
        char text[4096];
        size_t len = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[len] = '\0';
        unsigned quota = daecl__pool_cgroup_cpus("/sys/fs/cgroup", text);
        if (quota && quota < n)
            n = quota;
    }
    return daecl__pool_rank_share(n, in_mask, online > 0 ? (unsigned)online : in_mask,
                                  daecl__pool_ranks_on_node());
}
