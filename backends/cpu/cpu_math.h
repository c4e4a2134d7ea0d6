/* daecl cpu backend — the numerical ops on plain host arrays: GEMM (daecl's
 * own kernels or OpenBLAS), bias + activation, activation gradients,
 * reductions, gather and optimiser updates. This is the reference every other backend is checked
 * against; cpu.c maps the backend ABI's slices onto these pointers. Ops that
 * take a pool run their chunks on it (NULL: on the caller's thread alone);
 * the results are the same bits for any pool. */
#ifndef DAECL_CPU_MATH_H
#define DAECL_CPU_MATH_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "cpu_gemm.h"
#include "daecl/backend.h"

/* Rows per chunk when an op over n_rows rows of per_row values each is cut
 * for the pool: about 16384 values, at least one row; all n_rows (one chunk,
 * run inline) below 32768 values in all. Depends on the sizes alone. */
size_t daecl__cpu_rows_per_chunk(size_t n_rows, size_t per_row);

/* C (m, n) = alpha op(A) op(B) + beta C, row-major (backend.h: gemm),
 * with kind's GEMM (cpu_gemm.h; the CPU must support it) and ws its packing
 * space. A is (m, k) with row stride lda, or (k, m) when trans_a; likewise
 * B. beta == 0 overwrites C, so NaN in C's old contents does not survive.
 * The caller has checked every size fits in an int (cblas' blasint).
 * Returns 0, or ENOMEM when the packing space cannot grow. */
int daecl__cpu_gemm(daecl_pool *pool, daecl_cpu_gemm_ws *ws, daecl_cpu_gemm_kind kind, int trans_a,
                    int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                    size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);

/* z (n_rows, dim) = act(z + bias) in place; bias (dim) or NULL. */
void daecl__cpu_bias_act_forward(daecl_pool *pool, float *z, const float *bias, size_t n_rows,
                                 size_t dim, daecl_act act);
/* dh (n) *= act'(.) written in terms of the forward output h (n). */
void daecl__cpu_act_backward(daecl_pool *pool, float *dh, const float *h, size_t n, daecl_act act);

/* dst (dim) = beta dst + column sums of src (n_rows, dim), summed in double;
 * beta == 0 overwrites dst. */
void daecl__cpu_col_sum(daecl_pool *pool, const float *src, size_t n_rows, size_t dim, float beta,
                        float *dst);
/* The sum of src (n), accumulated in double. */
float daecl__cpu_sum(const float *src, size_t n);

/* out (n_rows, dim) row r = data row idx[r]; data is (n_data_rows, dim).
 * Returns the position of the first index >= n_data_rows (and copies
 * nothing), or n_rows when all are in range. */
size_t daecl__cpu_gather(daecl_pool *pool, const float *data, size_t n_data_rows, size_t dim,
                         const uint32_t *idx, size_t n_rows, float *out);

/* One optimiser step over w, g, s1, s2 (n each; backend.h has the formulas).
 * s1 may be NULL for SGD without momentum; Adam and AdamW need both. */
void daecl__cpu_optim_update(daecl_pool *pool, const daecl_optim_step *step, float *w,
                             const float *g, float *s1, float *s2, size_t n);

/* Softmax cross-entropy (backend.h: softmax_xent) of logits (n_rows,
 * n_classes) against float class indices (n_rows): loss_rows (n_rows) and
 * grad (n_rows, n_classes), each may be NULL. Computed in double with the
 * max subtracted, so no logit overflows. */
void daecl__cpu_softmax_xent(const float *logits, const float *labels, size_t n_rows,
                             size_t n_classes, float scale, float *loss_rows, float *grad);

#endif
