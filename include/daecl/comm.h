/* daecl - the communicator ABI: how the ranks of one training job talk.
 *
 * A run is a world of ranks (processes), each holding one or more replicas
 * of the weights. After every backward pass the core sums the replicas'
 * gradients: first inside the process, then across ranks through a
 * communicator. The core has a built-in one-process world; a comm plugin
 * (kind DAECL_KIND_COMM, file daecl-comm-NAME.so) joins a bigger one. The
 * shipped one is `mpi` (plugins/comm/mpi, linking libmpi), so a daecl
 * without MPI installed still builds and runs, and other transports can
 * follow. The core calls these ops from one thread only (the thread that
 * called open). */
#ifndef DAECL_COMM_H
#define DAECL_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types and reductions of allreduce. */
enum { DAECL_COMM_F32 = 1, DAECL_COMM_F64 = 2, DAECL_COMM_U64 = 3 };
enum { DAECL_COMM_SUM = 1, DAECL_COMM_MAX = 2, DAECL_COMM_MIN = 3 };

/* Where this process stands in the world. */
typedef struct daecl_comm_info {
    uint32_t rank, size;             /* 0 <= rank < size */
    uint32_t local_rank, local_size; /* among the ranks on this node */
    char host[64];                   /* this node's name */
    char library[128];               /* "Open MPI v4.1.4", for logs and summary.json */
} daecl_comm_info;

typedef struct daecl_comm_ops {
    uint32_t size;
    /* Joins the world of the launcher that started this process (mpirun,
     * srun) and fills info; a process started alone is a world of one. */
    int (*open)(const daecl_host *host, void **ctx, daecl_comm_info *info, daecl_err *err);
    /* Leaves the world; every rank calls it. */
    void (*close)(void *ctx);
    /* buf (count elements of `type`) becomes the element-wise `op` of every
     * rank's buf, in place. Every rank gets the same bits. */
    int (*allreduce)(void *ctx, void *buf, size_t count, uint32_t type, uint32_t op,
                     daecl_err *err);
    /* Every rank's buf becomes root's n_bytes. */
    int (*broadcast)(void *ctx, void *buf, size_t n_bytes, uint32_t root, daecl_err *err);
    /* all (size * n_bytes) gets every rank's `mine` (n_bytes) in rank order. */
    int (*allgather)(void *ctx, const void *mine, size_t n_bytes, void *all, daecl_err *err);
    int (*barrier)(void *ctx, daecl_err *err);
    /* Ends every rank of the job with `code`, now (a rank that cannot go on
     * must not leave the others waiting in an allreduce). Does not return. */
    void (*abort)(void *ctx, int code);
    /* Later minors append here; check `size` before using a newer slot. */
} daecl_comm_ops;

#ifdef __cplusplus
}
#endif

#endif
