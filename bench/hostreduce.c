/* daecl bench — the host side of a host-staged gradient reduction
 * (docs/scaling.md): summing k replicas' gradient arrays of P floats into
 * the first, in place, on one thread, and a memcpy of P floats (what each
 * staging copy costs once the bytes are in host memory). No MPI, no device.
 *
 * P covers the default model 784-1000-784 (untied: 2 x 784 x 1000 weights
 * + 1000 + 784 biases = 1,569,784 floats, 6.3 MB) and one 10x wider
 * (hidden 10000: 15,690,784 floats, 62.8 MB). Each case runs for about
 * SECONDS after one untimed pass; the median pass is printed with the
 * bytes it moves per second (sum: k arrays read + 1 written; memcpy: 1 + 1).
 * "warm" repeats on the same arrays, so the default model's 13-19 MB stay
 * in a 32 MiB L3; "cold" first writes EVICT_BYTES elsewhere (untimed), as
 * gradients a device just wrote by DMA would not be in the cache either.
 *
 *   build/bin/daecl_hostreduce [SECONDS_PER_CASE]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_K = 3, MAX_REPS = 4001, MIN_REPS = 11, COLD_REPS = 41 };
#define EVICT_BYTES ((size_t)256 << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* a[0] += a[1] (+ a[2]): each a[j] is (P). The reference loop the
 * engine's host reduction is; the compiler vectorises it. */
static void sum_into_first(float *const *a, int k, size_t p)
{
    float *restrict d = a[0];
    const float *restrict s1 = a[1];
    if (k == 2) {
        for (size_t i = 0; i < p; i++)
            d[i] += s1[i];
        return;
    }
    const float *restrict s2 = a[2];
    for (size_t i = 0; i < p; i++)
        d[i] += s1[i] + s2[i];
}

/* Reads EVICT_BYTES through the cache (plain loads allocate lines; a large
 * memset would not: glibc writes it with non-temporal stores). */
static volatile uint64_t flush_sink; /* so the loads are not removed */

static void flush(const char *evict)
{
    const uint64_t *w = (const uint64_t *)(const void *)evict;
    uint64_t acc = 0;
    for (size_t i = 0; i < EVICT_BYTES / 8; i++)
        acc += w[i];
    flush_sink = acc;
}

/* Runs one case (k = 0: memcpy a[1] -> a[0]) and prints its line; evict
 * (EVICT_BYTES, or NULL for warm) is written before each timed pass. */
static void run_case(const char *model, float *const *a, int k, size_t p, double budget_s, double *t,
                     char *evict)
{
    double t0 = now();
    if (k)
        sum_into_first(a, k, p);
    else
        memcpy(a[0], a[1], p * sizeof(float));
    double first = now() - t0;
    int reps = first > 0 ? (int)(budget_s / first) : MAX_REPS;
    reps = reps < MIN_REPS ? MIN_REPS : reps > MAX_REPS ? MAX_REPS : reps;
    if (evict)
        reps = COLD_REPS;
    for (int r = 0; r < reps; r++) {
        if (evict)
            flush(evict);
        t0 = now();
        if (k)
            sum_into_first(a, k, p);
        else
            memcpy(a[0], a[1], p * sizeof(float));
        t[r] = now() - t0;
        /* Keep a[0] from growing without end: restart it now and then. */
        if (k && r % 256 == 255)
            memset(a[0], 0, p * sizeof(float));
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = t[reps / 2];
    double moved = (double)((k ? k : 1) + 1) * (double)p * sizeof(float);
    char what[32];
    snprintf(what, sizeof what, k ? "sum k=%d" : "memcpy", k);
    printf("%-8s %-9s %-5s %10zu %10.2f %6d %10.3f %10.3f %10.2f\n", model, what, evict ? "cold" : "warm", p,
           (double)p * 4 / 1e6, reps,
           med * 1e3, t[0] * 1e3, moved / med / 1e9);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    double budget_s = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (!(budget_s > 0)) {
        fprintf(stderr, "usage: daecl_hostreduce [SECONDS_PER_CASE > 0]\n");
        return 2;
    }
    static const struct {
        const char *name;
        size_t p;
    } models[] = {
        {"default", 2 * 784 * 1000 + 1000 + 784},
        {"wide10x", 2 * 784 * 10000 + 10000 + 784},
    };
    double *t = malloc(MAX_REPS * sizeof *t);
    char *evict = calloc(EVICT_BYTES, 1);
    float *a[MAX_K];
    size_t p_max = models[1].p;
    for (int j = 0; j < MAX_K; j++) {
        a[j] = malloc(p_max * sizeof(float));
        if (!a[j] || !t || !evict) {
            fprintf(stderr, "out of memory for %zu bytes\n", p_max * sizeof(float));
            return 1;
        }
        for (size_t i = 0; i < p_max; i++) /* touch every page before timing */
            a[j][i] = 1e-3f * (float)(j + 1);
    }
    printf("# one thread; median of repetitions; GB/s = bytes read + written per second\n"
           "%-8s %-9s %-5s %10s %10s %6s %10s %10s %10s\n",
           "model", "op", "cache", "floats", "MB", "reps", "median_ms", "min_ms", "GB/s");
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
        for (int cold = 0; cold < 2; cold++) {
            run_case(models[m].name, a, 0, models[m].p, budget_s, t, cold ? evict : NULL);
            run_case(models[m].name, a, 2, models[m].p, budget_s, t, cold ? evict : NULL);
            run_case(models[m].name, a, 3, models[m].p, budget_s, t, cold ? evict : NULL);
        }
    for (int j = 0; j < MAX_K; j++)
        free(a[j]);
    free(evict);
    free(t);
    return 0;
}
