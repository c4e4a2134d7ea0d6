/* daecl tests — what test_backend_cpu.c and test_cpu_gemm.c share: the
 * cpu backend opened once per program (setup, teardown), calls that fail
 * the test with the backend's sentence, buffers to and from host arrays,
 * contexts opened with a given backend.gemm, and contexts on 1, 2, 3 and
 * 7 threads for the same-bits checks. Header-only: each program gets its
 * own copy of the state. */
#ifndef DAECL_TESTS_BACKEND_CPU_FIXTURE_H
#define DAECL_TESTS_BACKEND_CPU_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "tests/support.h"

/* The cpu backend's buffer (backends/cpu/cpu.c), to check its alignment. */
struct daecl_buf {
    float *p;
    size_t n_bytes;
};

static const daecl_plugin *plugin;
static const daecl_backend_ops *B;
static void *ctx;
static daecl_err err;

static inline int setup(void **state)
{
    (void)state;
    plugin = test_plugin(DAECL_KIND_BACKEND, "cpu");
    B = plugin->ops;
    if (B->open(daecl_host_table(), test_default_values(plugin), &ctx, &err) != 0) {
        print_error("cpu backend open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static inline int teardown(void **state)
{
    (void)state;
    B->close(ctx);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static inline void check_ok(int rc, const char *what)
{
    if (rc != 0)
        fail_msg("%s failed (%d): %s", what, rc, err.msg);
}

/* Calls op on the opened backend, failing the test with its message. */
#define CALL(op, ...) check_ok(B->op(ctx, __VA_ARGS__, &err), #op)
/* Calls op and expects DAECL_EINVAL with a message naming the op. */
#define REFUSED(op, ...)                                                                      \
    do {                                                                                      \
        memset(&err, 0, sizeof err);                                                          \
        assert_int_equal(B->op(ctx, __VA_ARGS__, &err), DAECL_EINVAL);                        \
        assert_int_equal(err.status, DAECL_EINVAL);                                           \
        if (!strstr(err.msg, #op))                                                            \
            fail_msg("refusal of %s does not name it: %s", #op, err.msg);                     \
    } while (0)

static inline daecl_slice S(daecl_buf *b, size_t off)
{
    return (daecl_slice){b, off};
}

static const daecl_slice NONE = {NULL, 0};

static inline float *floats(size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    return x;
}

static inline float *random_floats(size_t n, uint64_t seed, float lo, float hi)
{
    float *x = floats(n);
    test_fill_uniform(x, n, seed, lo, hi);
    return x;
}

static inline daecl_buf *alloc_elems(size_t n)
{
    daecl_buf *b = NULL;
    CALL(alloc, n * sizeof(float), "test buffer", &b);
    return b;
}

static inline daecl_buf *upload(const void *x, size_t n_elems)
{
    daecl_buf *b = alloc_elems(n_elems);
    CALL(write, b, 0, x, n_elems * sizeof(float));
    return b;
}

/* The whole first n elements of b, in a malloc'd array. */
static inline float *download(daecl_buf *b, size_t n)
{
    float *x = floats(n);
    CALL(read, b, 0, x, n * sizeof(float));
    return x;
}

static inline int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* ---- the GEMM kernels --------------------------------------------------------- */

/* Opens a context with backend.threads = threads and backend.gemm = kind
 * into *c. Returns 0, or 1 when this CPU lacks the kernel: open must then
 * refuse with DAECL_ENOTSUP in a sentence naming it, and open nothing. */
static inline int open_gemm(const char *kind, unsigned threads, void **c)
{
    daecl_param_value v[2] = { { { threads, 0 }, NULL }, { { 0, 0 }, kind } };
    *c = NULL;
    memset(&err, 0, sizeof err);
    int rc = B->open(daecl_host_table(), v, c, &err);
    if (rc == DAECL_ENOTSUP) {
        if (!strstr(err.msg, kind) || !strstr(err.msg, "lacks"))
            fail_msg("refusal of gemm = %s does not say why: %s", kind, err.msg);
        assert_null(*c);
        return 1;
    }
    check_ok(rc, "open");
    return 0;
}

/* ---- the same bits on any thread count -------------------------------------------- */

/* Every parallel op on contexts of 1, 2, 3 and 7 threads, from the same
 * inputs, must give the same bits: chunk boundaries depend on the sizes
 * alone, so a run resumed with another thread count continues exactly.
 * (OpenBLAS's sums do depend on how C is cut: cutting by the thread count
 * changed thousands of elements of these products.) */
enum { N_CTX = 4 };
static const unsigned ctx_threads[N_CTX] = {1, 2, 3, 7};

typedef struct multi {
    void *c[N_CTX];
} multi;

/* Opens the contexts with backend.gemm = kind; returns 1 (and opens
 * nothing) when this CPU lacks that kernel. */
static inline int multi_open(multi *m, const char *kind)
{
    for (int i = 0; i < N_CTX; i++)
        if (open_gemm(kind, ctx_threads[i], &m->c[i])) {
            assert_int_equal(i, 0);
            return 1;
        }
    return 0;
}

static inline void multi_close(multi *m)
{
    for (int i = 0; i < N_CTX; i++)
        B->close(m->c[i]);
}

/* A buffer of n floats in context c (every context is host memory, but each
 * op gets buffers from its own context, as the core does). */
static inline daecl_buf *upload_to(void *c, const void *x, size_t n)
{
    daecl_buf *b = NULL;
    check_ok(B->alloc(c, n * sizeof(float), "test buffer", &b, &err), "alloc");
    check_ok(B->write(c, b, 0, x, n * sizeof(float), &err), "write");
    return b;
}

static inline float *download_from(void *c, daecl_buf *b, size_t n)
{
    float *x = floats(n);
    check_ok(B->read(c, b, 0, x, n * sizeof(float), &err), "read");
    return x;
}

/* got (n) must equal ref (n) bit for bit; what names the op and case. */
static inline void same_as_one_thread(const float *ref, const float *got, size_t n, unsigned threads,
                               const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (!same_bits(ref[i], got[i]))
            fail_msg("%s on %u threads: element %zu is %.9g, on 1 thread %.9g", what, threads, i,
                     got[i], ref[i]);
}

#endif
