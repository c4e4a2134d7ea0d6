/* daecl — the communicator a run trains through: the world of ranks this
 * process belongs to, opened from the built-in one-process world or a comm
 * plugin (include/daecl/comm.h), and thin wrappers over its ops whose
 * errors name the rank and host. Call everything from the thread that
 * opened it. */
#ifndef DAECL_CORE_COMM_H
#define DAECL_CORE_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "core/registry.h"
#include "daecl/comm.h"

typedef struct daecl_comm {
    const daecl_comm_ops *ops;
    void *ctx;
    daecl_comm_info info;
    const daecl_plugin *plugin; /* NULL: the built-in one-process world */
} daecl_comm;

/* 1 when the environment shows this process was started by an MPI
 * launcher (OMPI_COMM_WORLD_SIZE/RANK; PMIX_RANK with PMIX_SIZE or
 * SLURM_STEP_NUM_TASKS; PMI_SIZE/PMI_RANK, as srun sets), with *rank and
 * *size filled from it; 0 otherwise (*rank = 0, *size = 1). Either pointer
 * may be NULL. Values that are not whole numbers with rank < size count as
 * not launched. */
int daecl_comm_launched(uint32_t *rank, uint32_t *size);

/* Opens the world. want: "auto" (launched with size > 1: the registry's
 * comm plugin "mpi"; otherwise the built-in one-process world), "none" (the
 * built-in world; refused when launched with size > 1, since every rank
 * would train alone into the same run folder) or a comm plugin's name.
 * reg may be NULL for "none" (and for "auto" in a process not launched).
 * Launched with size > 1, a world of another size (srun without --mpi) is
 * refused.
 * With several ranks on one node and POCL_MAX_PTHREAD_COUNT unset, sets it
 * to this rank's share of the CPUs (daecl_pool_default_threads) before any
 * OpenCL device opens. *out is the caller's, for daecl_comm_close; NULL on
 * error. */
int daecl_comm_open(const daecl_registry *reg, const char *want, daecl_comm **out,
                    daecl_err *err);
/* Leaves the world (every rank calls it) and frees c; NULL is fine. Call it
 * before destroying the registry it was opened from: a plugin's ops live
 * there. */
void daecl_comm_close(daecl_comm *c);

/* The ops (include/daecl/comm.h). An error's sentence is prefixed "rank R
 * of N on HOST: OP failed: " unless the plugin's already names the host. */
int daecl_comm_allreduce(daecl_comm *c, void *buf, size_t count, uint32_t type, uint32_t op,
                         daecl_err *err);
int daecl_comm_broadcast(daecl_comm *c, void *buf, size_t n_bytes, uint32_t root, daecl_err *err);
int daecl_comm_allgather(daecl_comm *c, const void *mine, size_t n_bytes, void *all,
                         daecl_err *err);
int daecl_comm_barrier(daecl_comm *c, daecl_err *err);
/* Ends every rank with `code`; does not return. */
void daecl_comm_abort(daecl_comm *c, int code);

/* The built-in one-process world's ops table (rank 0 of 1). */
const daecl_comm_ops *daecl_comm_builtin_ops(void);

#endif
