/* daecl — the communicator (comm.h): which world to join (the launcher's
 * environment, the registry's comm plugins), the built-in one-process
 * world, and the wrappers that put the rank and host into a plugin's
 * errors. */
#include "core/comm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/pool.h"

/* ---- the launcher's environment ------------------------------------------ */

/* A whole number below 2^31 from the environment; -1 when unset or not one. */
static long env_count(const char *name)
{
    const char *s = getenv(name);
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno || *end || v > 0x7fffffffL)
        return -1;
    return v;
}

int daecl_comm_launched(uint32_t *rank, uint32_t *size)
{
    /* Open MPI's mpirun and prterun; then PMIx (srun --mpi=pmix, whose
     * size is the step's); then PMI-1/2 (srun --mpi=pmi2, MPICH's hydra).
     * Not OMPI_UNIVERSE_SIZE: it counts the slots, not the ranks started. */
    static const char *const pairs[][2] = {
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
        {"PMIX_RANK", "PMIX_SIZE"},
        {"PMIX_RANK", "SLURM_STEP_NUM_TASKS"},
        {"PMI_RANK", "PMI_SIZE"},
    };
    if (rank)
        *rank = 0;
    if (size)
        *size = 1;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        long r = env_count(pairs[i][0]), n = env_count(pairs[i][1]);
        if (r < 0 || n < 1 || r >= n)
            continue;
        if (rank)
            *rank = (uint32_t)r;
        if (size)
            *size = (uint32_t)n;
        return 1;
    }
    return 0;
}

/* ---- the built-in one-process world --------------------------------------- */

static int one_open(const daecl_host *host, void **ctx, daecl_comm_info *info, daecl_err *err)
{
    (void)host;
    (void)err;
    *ctx = NULL;
    memset(info, 0, sizeof *info);
    info->size = info->local_size = 1;
    if (gethostname(info->host, sizeof info->host - 1) != 0)
        snprintf(info->host, sizeof info->host, "localhost");
    info->host[sizeof info->host - 1] = '\0';
    snprintf(info->library, sizeof info->library, "daecl (one process)");
    return 0;
}

static void one_close(void *ctx)
{
    (void)ctx;
}

/* Every op of a world of one: the reduction of one buffer is itself. */
static int one_allreduce(void *ctx, void *buf, size_t count, uint32_t type, uint32_t op,
                         daecl_err *err)
{
    (void)ctx;
    (void)buf;
    (void)count;
    if (type < DAECL_COMM_F32 || type > DAECL_COMM_U64 || op < DAECL_COMM_SUM ||
        op > DAECL_COMM_MIN)
        return daecl_err_set(err, DAECL_EINVAL, "allreduce was given element type %u and "
                             "reduction %u; use DAECL_COMM_F32/F64/U64 and DAECL_COMM_SUM/MAX/MIN",
                             type, op);
    return 0;
}

static int one_broadcast(void *ctx, void *buf, size_t n_bytes, uint32_t root, daecl_err *err)
{
    (void)ctx;
    (void)buf;
    (void)n_bytes;
    if (root != 0)
        return daecl_err_set(err, DAECL_EINVAL, "broadcast from rank %u in a world of one "
                             "process; the root must be rank 0", root);
    return 0;
}

static int one_allgather(void *ctx, const void *mine, size_t n_bytes, void *all, daecl_err *err)
{
    (void)ctx;
    (void)err;
    if (n_bytes && all != mine)
        memmove(all, mine, n_bytes);
    return 0;
}

static int one_barrier(void *ctx, daecl_err *err)
{
    (void)ctx;
    (void)err;
    return 0;
}

static void one_abort(void *ctx, int code)
{
    (void)ctx;
    fflush(NULL);
    _exit(code);
}

static const daecl_comm_ops one_ops = {
    .size = sizeof(daecl_comm_ops),
    .open = one_open,
    .close = one_close,
    .allreduce = one_allreduce,
    .broadcast = one_broadcast,
    .allgather = one_allgather,
    .barrier = one_barrier,
    .abort = one_abort,
};

const daecl_comm_ops *daecl_comm_builtin_ops(void)
{
    return &one_ops;
}

/* ---- opening -------------------------------------------------------------- */

/* With several ranks on this node, POCL (the CPU OpenCL driver) would start
 * one thread per CPU in every rank; unless the user chose, each rank gets
 * the share the host pool takes (pool.h: the CPUs of its affinity mask and
 * cgroup quota, divided among the node's ranks as the launcher counts
 * them). Before any OpenCL device opens. */
static void share_cpus(const daecl_comm_info *info)
{
    if (info->local_size < 2 || getenv("POCL_MAX_PTHREAD_COUNT"))
        return;
    char num[24];
    snprintf(num, sizeof num, "%u", daecl_pool_default_threads());
    setenv("POCL_MAX_PTHREAD_COUNT", num, 0);
}

int daecl_comm_open(const daecl_registry *reg, const char *want, daecl_comm **out,
                    daecl_err *err)
{
    *out = NULL;
    if (!want || !*want)
        want = "auto";
    uint32_t rank, size;
    int launched = daecl_comm_launched(&rank, &size) && size > 1;
    const daecl_plugin *plugin = NULL;
    if (strcmp(want, "none") == 0) {
        if (launched)
            return daecl_err_set(err, DAECL_ECONFIG, "daecl was started by an MPI launcher as "
                                 "rank %u of %u, but the communicator is 'none', so every rank "
                                 "would train alone and write the same run folder; use 'auto' "
                                 "(or 'mpi'), or run one process", rank, size);
    } else if (strcmp(want, "auto") == 0) {
        if (launched) {
            plugin = reg ? daecl_registry_find(reg, DAECL_KIND_COMM, "mpi", NULL) : NULL;
            if (!plugin)
                return daecl_err_set(err, DAECL_ENOENT, "daecl was started by an MPI launcher "
                                     "as rank %u of %u, but this build has no MPI communicator "
                                     "(daecl-comm-mpi.so was not found in %s); install "
                                     "libopenmpi-dev and rebuild daecl (cmake finds MPI and "
                                     "builds it), or run one process", rank, size,
                                     reg ? daecl_registry_search_path(reg) : "(no registry)");
        }
    } else {
        plugin = reg ? daecl_registry_find(reg, DAECL_KIND_COMM, want, NULL) : NULL;
        if (!plugin)
            return daecl_err_set(err, DAECL_ENOENT, "no comm plugin '%s' was found (daecl-comm-"
                                 "%s.so in %s); `daecl plugins` lists what was found, or use "
                                 "'auto' or 'none'", want, want,
                                 reg ? daecl_registry_search_path(reg) : "(no registry)");
    }
    daecl_comm *c = calloc(1, sizeof *c);
    if (!c)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory opening the communicator");
    c->plugin = plugin;
    c->ops = plugin ? plugin->ops : &one_ops;
    daecl_err e = {0};
    int rc = c->ops->open(daecl_host_table(), &c->ctx, &c->info, &e);
    if (rc) {
        free(c);
        if (rc > 0)
            rc = DAECL_EPLUGIN;
        return daecl_err_set(err, rc, "the %s communicator could not join its world: %s",
                             plugin ? plugin->name : "one-process",
                             e.msg[0] ? e.msg : daecl_status_message(rc));
    }
    if (c->info.size < 1 || c->info.rank >= c->info.size || c->info.local_size < 1 ||
        c->info.local_rank >= c->info.local_size) {
        daecl_err_set(err, DAECL_EPLUGIN, "the %s communicator says this is rank %u of %u (%u "
                      "of %u on this node), which cannot be; fix the plugin",
                      plugin ? plugin->name : "one-process", c->info.rank, c->info.size,
                      c->info.local_rank, c->info.local_size);
        c->ops->close(c->ctx);
        free(c);
        return err ? err->status : DAECL_EPLUGIN;
    }
    if (launched && c->info.size != size) {
        /* srun without --mpi, or an MPI other than the launcher's: every
         * process would be a world of its own. */
        daecl_err_set(err, DAECL_ECONFIG, "the launcher started %u ranks, but the %s "
                      "communicator joined a world of %u; start daecl with the launcher of the "
                      "MPI it was built with (srun needs --mpi=pmix or --mpi=pmi2)", size,
                      plugin ? plugin->name : "one-process", c->info.size);
        c->ops->close(c->ctx);
        free(c);
        return DAECL_ECONFIG;
    }
    c->info.host[sizeof c->info.host - 1] = '\0';
    c->info.library[sizeof c->info.library - 1] = '\0';
    share_cpus(&c->info);
    *out = c;
    return 0;
}

void daecl_comm_close(daecl_comm *c)
{
    if (!c)
        return;
    c->ops->close(c->ctx);
    free(c);
}

/* ---- the ops ---------------------------------------------------------------- */

/* A failed op: its sentence, said by this rank. A plugin that already named
 * the host (the mpi one does) is not prefixed twice. */
static int op_failed(const daecl_comm *c, int rc, const char *op, const daecl_err *e,
                     daecl_err *err)
{
    if (rc > 0)
        rc = DAECL_EPLUGIN;
    const char *msg = e->msg[0] ? e->msg : daecl_status_message(rc);
    if (strstr(msg, c->info.host))
        return daecl_err_set(err, rc, "%s", msg);
    return daecl_err_set(err, rc, "rank %u of %u on %s: %s failed: %s", c->info.rank,
                         c->info.size, c->info.host, op, msg);
}

int daecl_comm_allreduce(daecl_comm *c, void *buf, size_t count, uint32_t type, uint32_t op,
                         daecl_err *err)
{
    daecl_err e = {0};
    int rc = c->ops->allreduce(c->ctx, buf, count, type, op, &e);
    return rc ? op_failed(c, rc, "allreduce", &e, err) : 0;
}

int daecl_comm_broadcast(daecl_comm *c, void *buf, size_t n_bytes, uint32_t root, daecl_err *err)
{
    daecl_err e = {0};
    int rc = c->ops->broadcast(c->ctx, buf, n_bytes, root, &e);
    return rc ? op_failed(c, rc, "broadcast", &e, err) : 0;
}

int daecl_comm_allgather(daecl_comm *c, const void *mine, size_t n_bytes, void *all,
                         daecl_err *err)
{
    daecl_err e = {0};
    int rc = c->ops->allgather(c->ctx, mine, n_bytes, all, &e);
    return rc ? op_failed(c, rc, "allgather", &e, err) : 0;
}

int daecl_comm_barrier(daecl_comm *c, daecl_err *err)
{
    daecl_err e = {0};
    int rc = c->ops->barrier(c->ctx, &e);
    return rc ? op_failed(c, rc, "barrier", &e, err) : 0;
}

void daecl_comm_abort(daecl_comm *c, int code)
{
    fflush(NULL);
    c->ops->abort(c->ctx, code);
    _exit(code); /* a plugin whose abort returned: this rank ends at least */
}
