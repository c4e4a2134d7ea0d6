/* daecl tests — the mpi comm plugin across ranks, run under mpirun (the
 * ctest test_comm_mpi, tests/CMakeLists.txt): daecl_comm_open("auto") must
 * join the launcher's world through the plugin; allreduce SUM, MAX and MIN
 * of f32, f64 and u64 on rank-dependent values (so a no-op fails), of a
 * count past MPI's eager sizes and of 0; broadcast from the last rank;
 * allgather in rank order, in place too; barrier; a bad root refused in one
 * sentence; after close, a second open refused (MPI is once per process). Every rank runs every collective whatever failed before, so a
 * failure never leaves a rank waiting; each prints its failures and exits
 * 1, and mpirun's status says so.
 *
 * With --abort instead, rank 1 calls daecl_comm_abort(3) while the others
 * wait in a barrier: the whole job must end with code 3 (test_comm_mpi_abort
 * looks for mpirun's report of it), none left waiting.
 *
 * usage: comm_check EXPECTED_SIZE [--abort] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm.h"
#include "core/registry.h"

#define COUNT 100003 /* elements: past the eager limits of the usual transports */
#define BYTES 70001

static int failures;
static uint32_t me;

static void check(int ok, const char *what, const daecl_err *err)
{
    if (ok)
        return;
    failures++;
    fprintf(stderr, "rank %u: FAIL %s%s%s\n", me, what, err && err->msg[0] ? ": " : "",
            err ? err->msg : "");
}

static double value(size_t i, uint32_t r)
{
    return (double)(i % 101) - 50.0 + 0.5 * r; /* exact in float */
}

static double expected(size_t i, uint32_t op, uint32_t n, double offset)
{
    double w = 0;
    for (uint32_t r = 0; r < n; r++) {
        double v = value(i, r) + offset;
        w = r == 0 ? v : op == DAECL_COMM_SUM ? w + v : op == DAECL_COMM_MAX ? fmax(w, v) : fmin(w, v);
    }
    return w;
}

static void allreduces(daecl_comm *c)
{
    static const char *const names[] = {"", "SUM", "MAX", "MIN"};
    uint32_t n = c->info.size;
    float *f = malloc(COUNT * sizeof *f);
    double *d = malloc(COUNT * sizeof *d);
    uint64_t *u = malloc(COUNT * sizeof *u);
    if (!f || !d || !u) {
        fprintf(stderr, "rank %u: out of memory\n", me);
        exit(2);
    }
    for (uint32_t op = DAECL_COMM_SUM; op <= DAECL_COMM_MIN; op++) {
        for (size_t i = 0; i < COUNT; i++) {
            f[i] = (float)value(i, me);
            d[i] = value(i, me);
            u[i] = (uint64_t)(value(i, me) * 2 + 1000); /* whole numbers */
        }
        daecl_err err = {0};
        char what[64];
        snprintf(what, sizeof what, "allreduce %s f32", names[op]);
        check(daecl_comm_allreduce(c, f, COUNT, DAECL_COMM_F32, op, &err) == 0, what, &err);
        snprintf(what, sizeof what, "allreduce %s f64", names[op]);
        check(daecl_comm_allreduce(c, d, COUNT, DAECL_COMM_F64, op, &err) == 0, what, &err);
        snprintf(what, sizeof what, "allreduce %s u64", names[op]);
        check(daecl_comm_allreduce(c, u, COUNT, DAECL_COMM_U64, op, &err) == 0, what, &err);
        check(daecl_comm_allreduce(c, u, 0, DAECL_COMM_U64, op, &err) == 0, "allreduce of 0",
              &err);
        size_t bad_f = COUNT, bad_d = COUNT, bad_u = COUNT;
        for (size_t i = COUNT; i-- > 0;) {
            if (f[i] != (float)expected(i, op, n, 0))
                bad_f = i;
            if (d[i] != expected(i, op, n, 0))
                bad_d = i;
            /* u = 2 v + 1000 per rank: the reduction of those */
            double wu = op == DAECL_COMM_SUM ? 2 * expected(i, op, n, 0) + 1000.0 * n
                                             : 2 * expected(i, op, n, 0) + 1000;
            if ((double)u[i] != wu)
                bad_u = i;
        }
        snprintf(what, sizeof what, "allreduce %s values", names[op]);
        check(bad_f == COUNT && bad_d == COUNT && bad_u == COUNT, what, NULL);
    }
    free(f);
    free(d);
    free(u);
}

/* The ABI's promise that every rank gets the same bits, on sums whose
 * rounding depends on the order: each rank's result, gathered. */
static void same_bits(daecl_comm *c)
{
    uint32_t n = c->info.size;
    float *f = malloc(COUNT * sizeof *f), *all = malloc((size_t)n * COUNT * sizeof *f);
    if (!f || !all) {
        fprintf(stderr, "rank %u: out of memory\n", me);
        exit(2);
    }
    for (size_t i = 0; i < COUNT; i++)
        f[i] = (float)sin(0.37 * (double)i + me) * (float)(1 + i % 1000);
    daecl_err err = {0};
    check(daecl_comm_allreduce(c, f, COUNT, DAECL_COMM_F32, DAECL_COMM_SUM, &err) == 0,
          "allreduce SUM f32 of inexact values", &err);
    check(daecl_comm_allgather(c, f, COUNT * sizeof *f, all, &err) == 0, "allgather", &err);
    int same = 1;
    for (uint32_t r = 1; r < n; r++)
        same &= memcmp(all, all + (size_t)r * COUNT, COUNT * sizeof *f) == 0;
    check(same, "every rank got the same bits from allreduce", NULL);
    free(f);
    free(all);
}

static unsigned char pattern(size_t i, uint32_t r, unsigned salt)
{
    return (unsigned char)(i * 7 + r * 31 + salt);
}

static void moves(daecl_comm *c)
{
    uint32_t n = c->info.size, root = n - 1;
    daecl_err err = {0};
    unsigned char *b = malloc(BYTES), *all = malloc((size_t)n * BYTES);
    if (!b || !all) {
        fprintf(stderr, "rank %u: out of memory\n", me);
        exit(2);
    }
    for (size_t i = 0; i < BYTES; i++)
        b[i] = pattern(i, me, 1);
    check(daecl_comm_broadcast(c, b, BYTES, root, &err) == 0, "broadcast", &err);
    int same = 1;
    for (size_t i = 0; i < BYTES; i++)
        same &= b[i] == pattern(i, root, 1);
    check(same, "broadcast from the last rank: bytes differ from its", NULL);
    check(daecl_comm_broadcast(c, b, 0, root, &err) == 0, "broadcast of 0 bytes", &err);

    for (size_t i = 0; i < BYTES; i++)
        b[i] = pattern(i, me, 2);
    memset(all, 0, (size_t)n * BYTES);
    check(daecl_comm_allgather(c, b, BYTES, all, &err) == 0, "allgather", &err);
    same = 1;
    for (uint32_t r = 0; r < n; r++)
        for (size_t i = 0; i < BYTES; i++)
            same &= all[(size_t)r * BYTES + i] == pattern(i, r, 2);
    check(same, "allgather: parts not in rank order", NULL);
    /* In place: mine is already this rank's part of all. */
    memset(all, 0, (size_t)n * BYTES);
    for (size_t i = 0; i < BYTES; i++)
        all[(size_t)me * BYTES + i] = pattern(i, me, 3);
    check(daecl_comm_allgather(c, all + (size_t)me * BYTES, BYTES, all, &err) == 0,
          "allgather in place", &err);
    same = 1;
    for (uint32_t r = 0; r < n; r++)
        for (size_t i = 0; i < BYTES; i++)
            same &= all[(size_t)r * BYTES + i] == pattern(i, r, 3);
    check(same, "allgather in place: parts not in rank order", NULL);
    free(b);
    free(all);

    check(daecl_comm_barrier(c, &err) == 0, "barrier", &err);
    /* Refused on every rank alike, before any message moves. */
    unsigned char x = 0;
    int rc = daecl_comm_broadcast(c, &x, 1, n, &err);
    check(rc != 0 && strstr(err.msg, "root must be below") && strstr(err.msg, c->info.host) &&
              !strchr(err.msg, '\n'),
          "broadcast from a rank past the world: refused in one sentence", &err);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--abort") != 0)) {
        fprintf(stderr, "usage: comm_check EXPECTED_SIZE [--abort] (run it under mpirun)\n");
        return 2;
    }
    uint32_t want = (uint32_t)atoi(argv[1]);
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    if (daecl_registry_create(DAECL_TEST_PLUGIN_DIR, &reg, &err)) {
        fprintf(stderr, "registry: %s\n", err.msg);
        return 2;
    }
    daecl_comm *c = NULL;
    if (daecl_comm_open(reg, "auto", &c, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        daecl_registry_destroy(reg);
        return 1;
    }
    me = c->info.rank;
    if (argc == 3) {
        if (me == 1) {
            printf("rank 1 aborts the job with code 3\n");
            daecl_comm_abort(c, 3);
        }
        daecl_comm_barrier(c, &err); /* never passed: rank 1 does not come */
        fprintf(stderr, "rank %u: FAIL the barrier passed though rank 1 aborted\n", me);
        return 1;
    }
    check(c->plugin && strcmp(c->plugin->name, "mpi") == 0, "auto opened the mpi plugin", NULL);
    check(c->info.size == want, "the world has the size mpirun was given", NULL);
    check(c->info.local_size == want && c->info.local_rank == me,
          "every rank on this one node is local", NULL);
    check(c->info.host[0] && c->info.library[0], "host and library are named", NULL);
    allreduces(c);
    same_bits(c);
    moves(c);
    printf("rank %u of %u on %s (%s): %s\n", me, c->info.size, c->info.host, c->info.library,
           failures ? "FAILED" : "ok");
    daecl_comm_close(c);
    /* MPI is once per process: a second open is refused, in a sentence. */
    daecl_comm *again = NULL;
    check(daecl_comm_open(reg, "mpi", &again, &err) != 0 && !again &&
              strstr(err.msg, "already finalised"),
          "a second open after close is refused", &err);
    daecl_comm_close(again);
    daecl_registry_destroy(reg);
    return failures ? 1 : 0;
}
