/* daecl bench — the cost of MPI_Allreduce(MPI_SUM, float, MPI_IN_PLACE), the
 * inter-rank step of synchronous data parallelism (docs/scaling.md).
 *
 * For message sizes from 1 KiB to 64 MiB (powers of 4) it times the
 * allreduce after a warm-up, each repetition started together by a barrier
 * and timed as the slowest rank saw it, and prints the median with the
 * algorithmic bandwidth (bytes / time) and NCCL's bus bandwidth
 * (2 (n-1) / n x bytes / time), one line per size. Sizes given after
 * the first two arguments are measured after the sweep (the models' own
 * gradient sizes: 6279136 and 62763136 bytes, bench/hostreduce.c).
 *
 *   mpirun -np 2 build/bin/daecl_allreduce [MAX_BYTES [SECONDS_PER_SIZE [BYTES...]]]
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WARMUP = 5, MIN_REPS = 11, MAX_REPS = 2001 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One timed allreduce of n floats, as the slowest rank saw it (seconds). */
static double one(float *buf, int n)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double t = MPI_Wtime() - t0, worst;
    MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return worst;
}

/* Times `bytes` (a multiple of 4) and prints its line on rank 0; t holds
 * MAX_REPS timings. */
static void measure(float *buf, size_t bytes, double budget_s, double *t, int rank, int size)
{
    int n = (int)(bytes / sizeof(float));
    double first = 0;
    for (int i = 0; i < WARMUP; i++)
        first = one(buf, n);
    /* Every rank takes rank 0's count, so all call MPI the same times. */
    int reps = first > 0 ? (int)(budget_s / first) : MAX_REPS;
    reps = reps < MIN_REPS ? MIN_REPS : reps > MAX_REPS ? MAX_REPS : reps;
    MPI_Bcast(&reps, 1, MPI_INT, 0, MPI_COMM_WORLD);
    for (int i = 0; i < reps; i++)
        t[i] = one(buf, n);
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = t[reps / 2], alg = (double)bytes / med / 1e9;
    if (rank == 0)
        printf("%6d %12zu %6d %12.2f %12.2f %10.3f %10.3f\n", size, bytes, reps, med * 1e6, t[0] * 1e6, alg,
               alg * 2.0 * (size - 1) / size);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    size_t max_bytes = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)64 << 20;
    double budget_s = argc > 2 ? strtod(argv[2], NULL) : 2.0; /* timed seconds per size */
    if (max_bytes < 1024 || max_bytes > ((size_t)1 << 31) || !(budget_s > 0)) {
        if (rank == 0)
            fprintf(stderr, "usage: daecl_allreduce [MAX_BYTES in 1 KiB..2 GiB] [SECONDS_PER_SIZE > 0]\n");
        MPI_Finalize();
        return 2;
    }
    /* Zeros stay zeros under repeated sums: no overflow, no subnormals. */
    float *buf = calloc(max_bytes / sizeof(float), sizeof(float));
    double *t = malloc(MAX_REPS * sizeof *t);
    if (!buf || !t) {
        fprintf(stderr, "rank %d: out of memory for %zu bytes\n", rank, max_bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (rank == 0)
        printf("# ranks %d; median of the slowest rank's time per repetition; busbw = 2(n-1)/n x bytes/time\n"
               "%6s %12s %6s %12s %12s %10s %10s\n",
               size, "ranks", "bytes", "reps", "median_us", "min_us", "algbw_GB/s", "busbw_GB/s");
    for (size_t bytes = 1024; bytes <= max_bytes; bytes *= 4)
        measure(buf, bytes, budget_s, t, rank, size);
    for (int a = 3; a < argc; a++) {
        size_t bytes = strtoull(argv[a], NULL, 10) / sizeof(float) * sizeof(float);
        if (bytes && bytes <= max_bytes)
            measure(buf, bytes, budget_s, t, rank, size);
        else if (rank == 0)
            fprintf(stderr, "skipping %s: sizes must lie in 4..MAX_BYTES\n", argv[a]);
    }
    free(t);
    free(buf);
    MPI_Finalize();
    return 0;
}
