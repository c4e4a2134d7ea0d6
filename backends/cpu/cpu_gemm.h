/* daecl cpu backend — its own GEMM for x86-64 CPUs with AVX2 + FMA or
 * AVX-512 (cpu_gemm.c has the scheme and the arithmetic), beside OpenBLAS.
 * Both kernels give the same bits on any thread count. */
#ifndef DAECL_CPU_GEMM_H
#define DAECL_CPU_GEMM_H

#include <stddef.h>

#include "core/pool.h"

typedef enum daecl_cpu_gemm_kind {
    DAECL_CPU_GEMM_OPENBLAS,
    DAECL_CPU_GEMM_AVX2,
    DAECL_CPU_GEMM_AVX512,
} daecl_cpu_gemm_kind;

/* Whether this CPU runs kind (OpenBLAS: always). */
int daecl__cpu_gemm_supported(daecl_cpu_gemm_kind kind);
/* The fastest kind this CPU runs: AVX-512, then AVX2, then OpenBLAS. */
daecl_cpu_gemm_kind daecl__cpu_gemm_best(void);
/* "openblas", "avx2" or "avx512". */
const char *daecl__cpu_gemm_name(daecl_cpu_gemm_kind kind);

/* Packing space, grown on demand and kept between calls; one per device
 * context (one thread at a time uses it). Zero-initialise. */
typedef struct daecl_cpu_gemm_ws {
    float *buf;
    size_t cap; /* floats */
} daecl_cpu_gemm_ws;
void daecl__cpu_gemm_ws_free(daecl_cpu_gemm_ws *ws);

/* C (m, n) = alpha op(A) op(B) + beta C, row-major, with kind's kernel
 * (AVX2 or AVX-512, which the CPU must support) on the pool's threads;
 * beta == 0 overwrites C. m, n and k must be at least 1. Returns 0, or
 * ENOMEM when the packing space cannot grow (C is then untouched), or
 * EINVAL for a kind without a kernel or an empty product. */
int daecl__cpu_gemm_own(daecl_pool *pool, daecl_cpu_gemm_ws *ws, daecl_cpu_gemm_kind kind,
                        int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta,
                        float *c, size_t ldc);

#endif
