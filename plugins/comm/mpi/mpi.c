/* mpi — the comm plugin over MPI: joins the world of the launcher that
 * started this process (mpirun, srun) and sums gradients with
 * MPI_Allreduce. Every MPI error comes back as one sentence naming the
 * call, MPI's own words, the rank and the host. Called from one thread
 * (MPI_THREAD_FUNNELED). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "daecl/comm.h"

/* The most elements (or bytes) one MPI call moves: its counts are ints.
 * Tests lower it with DAECL_COMM_MPI_CHUNK (tests/CMakeLists.txt,
 * test_comm_mpi_chunked), so the cut paths run on small buffers. */
#define CHUNK ((size_t)1 << 30)

typedef struct ctx {
    const daecl_host *host;
    MPI_Comm world; /* a duplicate of MPI_COMM_WORLD, errors returned */
    MPI_Comm local; /* the ranks sharing this node's memory */
    int rank, size;
    int initialised; /* we called MPI_Init_thread, so close finalises */
    size_t chunk;    /* CHUNK, or DAECL_COMM_MPI_CHUNK's smaller value */
    char host_name[64];
} ctx;

static const daecl_host *host_table;

static int init(const daecl_host *host, daecl_err *err)
{
    (void)err;
    host_table = host;
    return 0;
}

static int fail(daecl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(daecl_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    daecl_plugin_verror(host_table, err, DAECL_EIO, fmt, ap);
    va_end(ap);
    return DAECL_EIO;
}

/* An MPI call that returned `code`: one sentence with MPI's words. */
static int mpi_fail(const ctx *c, const char *call, int code, daecl_err *err)
{
    char why[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(code, why, &len) != MPI_SUCCESS || len <= 0)
        snprintf(why, sizeof why, "MPI error code %d", code);
    else
        why[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = '\0';
    if (c->size > 0)
        return fail(err, "%s failed on rank %d of %d (host %s): %s", call, c->rank, c->size,
                    c->host_name, why);
    return fail(err, "%s failed on host %s: %s", call, c->host_name, why);
}

/* The MPI library was loaded with this plugin, RTLD_LOCAL. Open MPI
 * builds whose components do not link libmpi themselves (Debian's 4.1 do;
 * others, and older ones, do not) need its symbols global, or MPI_Init
 * fails to load them ("undefined symbol: ompi_..."). Made global before
 * MPI_Init (RTLD_NOLOAD: nothing new is loaded). */
static void make_mpi_global(void)
{
    Dl_info info;
    if (dladdr((void *)(size_t)&MPI_Init_thread, &info) && info.dli_fname) {
        void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        (void)h; /* kept open for the life of the process, as MPI needs */
    }
}

/* The library's name: the first line of its version, trimmed. */
static void library_name(char *out, size_t n)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING + 1];
    int len = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS || len <= 0) {
        snprintf(out, n, "MPI %d.%d", MPI_VERSION, MPI_SUBVERSION);
        return;
    }
    v[len < MPI_MAX_LIBRARY_VERSION_STRING ? len : MPI_MAX_LIBRARY_VERSION_STRING] = '\0';
    char *s = v + strspn(v, " \t\r\n");
    s[strcspn(s, "\r\n")] = '\0';
    size_t end = strlen(s);
    while (end && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        s[--end] = '\0';
    snprintf(out, n, "%s", s);
}

static void comm_close(void *p);

static int comm_open(const daecl_host *host, void **out, daecl_comm_info *info, daecl_err *err)
{
    *out = NULL;
    ctx *c = calloc(1, sizeof *c);
    if (!c)
        return fail(err, "out of memory opening the MPI communicator");
    c->host = host;
    c->world = c->local = MPI_COMM_NULL;
    c->chunk = CHUNK;
    const char *chunk = getenv("DAECL_COMM_MPI_CHUNK");
    if (chunk && *chunk) {
        char *end;
        unsigned long long v = strtoull(chunk, &end, 10);
        if (*end || v < 1 || v > CHUNK) {
            free(c);
            return fail(err, "DAECL_COMM_MPI_CHUNK is '%s'; set a whole number from 1 to %zu, "
                        "or unset it", chunk, CHUNK);
        }
        c->chunk = (size_t)v;
    }
    if (gethostname(c->host_name, sizeof c->host_name - 1) != 0)
        snprintf(c->host_name, sizeof c->host_name, "localhost");
    int done = 0, rc;
    MPI_Finalized(&done);
    if (done) {
        fail(err, "MPI was already finalised in this process (on host %s), and MPI cannot be "
             "initialised twice; open the communicator once per process", c->host_name);
        free(c);
        return DAECL_EIO;
    }
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        make_mpi_global();
        int provided = 0;
        if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) {
            mpi_fail(c, "MPI_Init_thread", rc, err);
            free(c);
            return DAECL_EIO;
        }
        c->initialised = 1;
        /* The core calls MPI from one thread, but other threads run
         * beside it (the host pool, device drivers): FUNNELED is what
         * that needs. A library offering less is said, not refused. */
        if (provided < MPI_THREAD_FUNNELED && host && host->log)
            host->log(DAECL_LOG_WARN, "mpi", "this MPI offers thread level %d, below "
                      "MPI_THREAD_FUNNELED; daecl calls MPI from one thread while others run",
                      provided);
    }
    /* From here on errors come back to us instead of ending the job (on
     * MPI_COMM_WORLD only when the world is ours: a program that started
     * MPI keeps its own handler there). */
    if (c->initialised)
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &c->world)) != MPI_SUCCESS) {
        mpi_fail(c, "MPI_Comm_dup", rc, err);
        goto fail;
    }
    MPI_Comm_set_errhandler(c->world, MPI_ERRORS_RETURN);
    MPI_Comm_rank(c->world, &c->rank);
    MPI_Comm_size(c->world, &c->size);
    char name[MPI_MAX_PROCESSOR_NAME + 1];
    int len = 0;
    if (MPI_Get_processor_name(name, &len) == MPI_SUCCESS && len > 0) {
        name[len < MPI_MAX_PROCESSOR_NAME ? len : MPI_MAX_PROCESSOR_NAME] = '\0';
        snprintf(c->host_name, sizeof c->host_name, "%.63s", name);
    }
    if ((rc = MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL,
                                  &c->local)) != MPI_SUCCESS) {
        mpi_fail(c, "MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)", rc, err);
        goto fail;
    }
    MPI_Comm_set_errhandler(c->local, MPI_ERRORS_RETURN);
    int local_rank = 0, local_size = 1;
    MPI_Comm_rank(c->local, &local_rank);
    MPI_Comm_size(c->local, &local_size);
    memset(info, 0, sizeof *info);
    info->rank = (uint32_t)c->rank;
    info->size = (uint32_t)c->size;
    info->local_rank = (uint32_t)local_rank;
    info->local_size = (uint32_t)local_size;
    snprintf(info->host, sizeof info->host, "%s", c->host_name);
    library_name(info->library, sizeof info->library);
    *out = c;
    return 0;
fail:
    comm_close(c);
    return DAECL_EIO;
}

static void comm_close(void *p)
{
    ctx *c = p;
    if (!c)
        return;
    if (c->local != MPI_COMM_NULL)
        MPI_Comm_free(&c->local);
    if (c->world != MPI_COMM_NULL)
        MPI_Comm_free(&c->world);
    if (c->initialised)
        MPI_Finalize();
    free(c);
}

static int allreduce(void *p, void *buf, size_t count, uint32_t type, uint32_t op,
                     daecl_err *err)
{
    ctx *c = p;
    MPI_Datatype dt;
    size_t elem;
    switch (type) {
    case DAECL_COMM_F32:
        dt = MPI_FLOAT, elem = sizeof(float);
        break;
    case DAECL_COMM_F64:
        dt = MPI_DOUBLE, elem = sizeof(double);
        break;
    case DAECL_COMM_U64:
        dt = MPI_UINT64_T, elem = sizeof(uint64_t);
        break;
    default:
        return fail(err, "allreduce was given element type %u on rank %d (host %s); use "
                    "DAECL_COMM_F32, F64 or U64", type, c->rank, c->host_name);
    }
    MPI_Op mop = op == DAECL_COMM_SUM ? MPI_SUM
                 : op == DAECL_COMM_MAX ? MPI_MAX
                 : op == DAECL_COMM_MIN ? MPI_MIN
                                        : MPI_OP_NULL;
    if (mop == MPI_OP_NULL)
        return fail(err, "allreduce was given reduction %u on rank %d (host %s); use "
                    "DAECL_COMM_SUM, MAX or MIN", op, c->rank, c->host_name);
    /* Every rank cuts the same count into the same chunks. */
    for (size_t done = 0; done < count;) {
        size_t n = count - done < c->chunk ? count - done : c->chunk;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + done * elem, (int)n, dt, mop, c->world);
        if (rc != MPI_SUCCESS)
            return mpi_fail(c, "MPI_Allreduce", rc, err);
        done += n;
    }
    return 0;
}

static int broadcast(void *p, void *buf, size_t n_bytes, uint32_t root, daecl_err *err)
{
    ctx *c = p;
    if (root >= (uint32_t)c->size)
        return fail(err, "broadcast from rank %u in a world of %d ranks (rank %d, host %s); the "
                    "root must be below %d", root, c->size, c->rank, c->host_name, c->size);
    for (size_t done = 0; done < n_bytes;) {
        size_t n = n_bytes - done < c->chunk ? n_bytes - done : c->chunk;
        int rc = MPI_Bcast((char *)buf + done, (int)n, MPI_BYTE, (int)root, c->world);
        if (rc != MPI_SUCCESS)
            return mpi_fail(c, "MPI_Bcast", rc, err);
        done += n;
    }
    return 0;
}

static int allgather(void *p, const void *mine, size_t n_bytes, void *all, daecl_err *err)
{
    ctx *c = p;
    char *slot = (char *)all + (size_t)c->rank * n_bytes;
    if (n_bytes && slot != (const char *)mine)
        memmove(slot, mine, n_bytes);
    if (n_bytes <= c->chunk) {
        int rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, (int)n_bytes, MPI_BYTE,
                               c->world);
        return rc == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Allgather", rc, err);
    }
    /* Past an int's count: each rank's part from it, in turn (rare; the
     * parts are big enough that one call per rank costs nothing). */
    for (int r = 0; r < c->size; r++) {
        int rc = broadcast(c, (char *)all + (size_t)r * n_bytes, n_bytes, (uint32_t)r, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int barrier(void *p, daecl_err *err)
{
    ctx *c = p;
    int rc = MPI_Barrier(c->world);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(c, "MPI_Barrier", rc, err);
}

static void comm_abort(void *p, int code)
{
    (void)p;
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, code);
    _exit(code);
}

static const daecl_comm_ops ops = {
    .size = sizeof(daecl_comm_ops),
    .open = comm_open,
    .close = comm_close,
    .allreduce = allreduce,
    .broadcast = broadcast,
    .allgather = allgather,
    .barrier = barrier,
    .abort = comm_abort,
};

static const daecl_plugin descriptor = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_COMM),
    .name = "mpi",
    .version = "1.0.0",
    .summary = "MPI communicator: joins the world of mpirun or srun and sums gradients with "
               "MPI_Allreduce.",
    .license = "MIT",
    .params = NULL,
    .n_params = 0,
    .init = init,
    .ops = &ops,
};

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    return &descriptor;
}
