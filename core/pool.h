/* daecl — a pool of worker threads for parallel loops on the host, built
 * to survive a busy machine. Work is cut by the caller into a fixed number
 * of chunks (independent of the thread count, so results do not depend on
 * it); any thread, the caller included, takes the next chunk, so a thread
 * the scheduler has descheduled holds up at most the one chunk it is on.
 * Idle threads spin briefly, then sleep on a futex: they leave their core
 * to other processes between bursts of work.
 *
 * Self-contained (libc and pthreads only): libdaecl uses it (the probe) and
 * the cpu backend compiles the same file into its plugin, which never links
 * libdaecl. */
#ifndef DAECL_CORE_POOL_H
#define DAECL_CORE_POOL_H

#include <stddef.h>

typedef struct daecl_pool daecl_pool;

/* fn(arg, chunk) for one chunk in [0, n_chunks). */
typedef void (*daecl_pool_fn)(void *arg, size_t chunk);

/* A pool of n_threads threads in all, the caller's included (n_threads - 1
 * workers are started); 0 means daecl_pool_default_threads(). Returns 0, or
 * an errno value (ENOMEM, EAGAIN from pthread_create) with nothing left
 * running. */
int daecl_pool_create(unsigned n_threads, daecl_pool **out);
/* Stops and joins the workers; NULL is fine. */
void daecl_pool_destroy(daecl_pool *p);
/* Threads in all, the caller's included (1 for a NULL pool). */
unsigned daecl_pool_threads(const daecl_pool *p);

/* Runs fn(arg, c) once for every c in [0, n_chunks), on the pool's threads
 * and the caller's, and returns when all have returned. Chunks run in no
 * particular order and concurrently: fn must write disjoint memory. A NULL
 * pool, one thread, or one chunk runs inline. Not reentrant: fn must not
 * call daecl_pool_run on the same pool, and one thread at a time may run a
 * pool. */
void daecl_pool_run(daecl_pool *p, size_t n_chunks, daecl_pool_fn fn, void *arg);

/* The threads this process may use: the CPUs in its affinity mask, lowered
 * to the cgroup's CPU quota when one is set (cgroup v2 cpu.max, or v1
 * cpu.cfs_quota_us / cpu.cfs_period_us), rounded up; then, when the
 * launcher says this process is one of L > 1 ranks on its node
 * (OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS, or Slurm's
 * SLURM_STEP_TASKS_PER_NODE and SLURM_NODEID) and its affinity mask is not
 * narrower than the node's online CPUs (a rank bound to its own cores
 * already has its share), divided by L, rounded down; at least 1. */
unsigned daecl_pool_default_threads(void);

#endif
