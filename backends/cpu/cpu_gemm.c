/* daecl cpu backend — its own single-precision GEMM for x86-64 CPUs with
 * AVX2 + FMA or AVX-512 (cpu_gemm.h).
 *
 * The scheme is the one BLIS made standard, written for row-major C:
 *
 *   1. Pack. op(A) is copied into panels of MR rows, op(B) into panels of
 *      NR columns, both cut along k into blocks of at most KC, so that the
 *      micro-kernel reads both operands as contiguous streams whatever the
 *      transposes and leading dimensions. Rows and columns past the matrix
 *      are packed as zeros. The packing is shared by every chunk.
 *   2. Multiply. C is cut into blocks of whole panels, one pool chunk each.
 *      For each k block in order, a chunk runs the micro-kernel over its
 *      tiles: an MR x NR tile of C held in vector registers (24 of them),
 *      one FMA per element per step of k, A broadcast from its panel and B
 *      loaded a row of the panel at a time. A B panel (KC x NR floats, 32
 *      KiB at most) stays in L1 while the kernel walks down the A panels.
 *
 * The bits. Every element of C is the same sequence of operations whatever
 * chunk, thread, tile position or ISA computes it: acc = fma(a_p, b_p, acc)
 * for p in the k block, in order, then t = alpha * acc and, for the first
 * block, C = beta * C + t (C = t when beta is 0, so NaN in C does not
 * survive), for the later blocks C = C + t. The k blocks depend on k alone
 * and are the same for both ISAs, so the AVX2 and AVX-512 kernels give the
 * same bits, on any thread count (tests/test_cpu_gemm.c checks both).
 *
 * Why not OpenBLAS alone: Debian 12's OpenBLAS 0.3.21 predates AMD's Zen 4
 * and Zen 5, runs its AVX2 Haswell kernel on them, and so leaves half of an
 * AVX-512 core's FMA width unused (bench/RESULTS.md). It stays the GEMM of
 * CPUs without AVX2 and FMA, and `backend.gemm: openblas` selects it. */
#include "cpu_gemm.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DAECL_GEMM_X86 1
#include <immintrin.h>
#endif

#ifdef DAECL_GEMM_X86

enum {
    KC = 256, /* k block: a 32-column B panel of 256 rows is 32 KiB */
    /* A narrow C (fewer than MIN_COL_BLOCKS column blocks) is cut along
     * its rows too, into blocks of ROW_PANELS A panels or more. */
    ROW_PANELS = 8,
    MIN_COL_BLOCKS = 8,
    PACK_PANELS = 8, /* A panels a packing chunk packs */
    /* Rows multiplied at a time: their packed A is MB x k floats (6 MiB at
     * k = 1000). A multiple of both kernels' MR. */
    MB = 1536,
};
/* A chunk of the multiply is about CHUNK_MACS multiply-adds (R1's 128 x
 * 1000 x 784 products become 7 or 8 chunks; 16 million made a quiet R1
 * step 6% faster than 4 million, and beside a busy process two threads
 * still matched one), and a product below PAR_MACS is one chunk run
 * inline. */
static const double CHUNK_MACS = 16e6, PAR_MACS = 2e6;

/* ---- the micro-kernels ---------------------------------------------------- */

/* C tile (mr <= MR rows, nr <= NR columns, row stride ldc) from kc steps of
 * packed A (kc x MR) and packed B (kc x NR); see the top of the file for
 * the arithmetic. */
typedef void (*kernel_fn)(size_t kc, const float *ap, const float *bp, float *c, size_t ldc,
                          size_t mr, size_t nr, float alpha, float beta, int first);

/* AVX-512: 12 rows x 32 columns, two zmm per row, 24 accumulators. */
__attribute__((target("avx512f"))) static void kernel_avx512(size_t kc, const float *ap,
                                                             const float *bp, float *c, size_t ldc,
                                                             size_t mr, size_t nr, float alpha,
                                                             float beta, int first)
{
    enum { MR = 12 };
    __m512 acc[MR][2];
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (size_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(ap[i]);
            acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += MR;
        bp += 32;
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32  ? (__mmask16)0xffff
                   : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1)
                             : (__mmask16)0;
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
    for (int i = 0; i < MR; i++) {
        if ((size_t)i >= mr)
            break;
        float *row = c + (size_t)i * ldc;
        __m512 t0 = _mm512_mul_ps(va, acc[i][0]), t1 = _mm512_mul_ps(va, acc[i][1]);
        if (!first || beta != 0.0f) {
            __m512 c0 = _mm512_maskz_loadu_ps(m0, row), c1 = _mm512_maskz_loadu_ps(m1, row + 16);
            if (first) {
                c0 = _mm512_mul_ps(vb, c0);
                c1 = _mm512_mul_ps(vb, c1);
            }
            t0 = _mm512_add_ps(c0, t0);
            t1 = _mm512_add_ps(c1, t1);
        }
        _mm512_mask_storeu_ps(row, m0, t0);
        _mm512_mask_storeu_ps(row + 16, m1, t1);
    }
}

/* AVX2: 6 rows x 16 columns, two ymm per row, 12 accumulators. */
__attribute__((target("avx2,fma"))) static __m256i lanes_below(size_t n)
{
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

__attribute__((target("avx2,fma"))) static void kernel_avx2(size_t kc, const float *ap,
                                                            const float *bp, float *c, size_t ldc,
                                                            size_t mr, size_t nr, float alpha,
                                                            float beta, int first)
{
    enum { MR = 6 };
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++)
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (size_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
        }
        ap += MR;
        bp += 16;
    }
    __m256i m0 = lanes_below(nr), m1 = lanes_below(nr > 8 ? nr - 8 : 0);
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        if ((size_t)i >= mr)
            break;
        float *row = c + (size_t)i * ldc;
        __m256 t0 = _mm256_mul_ps(va, acc[i][0]), t1 = _mm256_mul_ps(va, acc[i][1]);
        if (!first || beta != 0.0f) {
            __m256 c0 = _mm256_maskload_ps(row, m0), c1 = _mm256_maskload_ps(row + 8, m1);
            if (first) {
                c0 = _mm256_mul_ps(vb, c0);
                c1 = _mm256_mul_ps(vb, c1);
            }
            t0 = _mm256_add_ps(c0, t0);
            t1 = _mm256_add_ps(c1, t1);
        }
        _mm256_maskstore_ps(row, m0, t0);
        _mm256_maskstore_ps(row + 8, m1, t1);
    }
}

typedef struct isa {
    size_t mr, nr;
    kernel_fn kernel;
} isa;

static const isa *isa_of(daecl_cpu_gemm_kind kind)
{
    static const isa avx512 = { 12, 32, kernel_avx512 };
    static const isa avx2 = { 6, 16, kernel_avx2 };
    return kind == DAECL_CPU_GEMM_AVX512 ? &avx512 : kind == DAECL_CPU_GEMM_AVX2 ? &avx2 : NULL;
}

/* ---- the plan: k blocks, packed layout, chunks ------------------------------ */

typedef struct plan {
    const isa *isa;
    int trans_a, trans_b;
    size_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
    const float *a, *b;
    float *c;
    /* k blocks: n_kb of them, the first k % n_kb one longer */
    size_t n_kb, kb_len, kb_extra;
    /* panels: A has pa of MR rows, B has pb of NR columns */
    size_t pa, pb;
    float *ap; /* A packed: every panel of every k block, (pa * mr) x k */
    float *bp; /* per multiply chunk, cp B panels of one k block */
    /* multiply chunks: row_blocks x col_blocks, of rp A and cp B panels */
    size_t rp, cp, row_blocks, col_blocks;
} plan;

/* Start and length of k block kb: n_kb blocks as even as can be, the first
 * k % n_kb of them one longer. Depends on k alone. */
static size_t kb_start(const plan *p, size_t kb, size_t *len)
{
    size_t extra = kb < p->kb_extra ? kb : p->kb_extra;
    *len = p->kb_len + (kb < p->kb_extra);
    return kb * p->kb_len + extra;
}

/* pack_panel where each lane is contiguous along k: lanes lane0 + l (l <
 * have) of m, from k0 on, become column l of the kc x w panel; columns
 * have .. w - 1 become zeros. Eight lanes at a time are read as eight
 * rows of 8 and transposed in registers (AVX2, which every CPU the kernels
 * run on has), so both the reads and the writes are whole vectors. */
__attribute__((target("avx2"))) static void gather_lanes(const float *m, size_t ld, size_t lane0,
                                                         size_t have, size_t w, size_t k0,
                                                         size_t kc, float *out)
{
    size_t l = 0;
    for (; l + 8 <= have; l += 8) {
        const float *r[8];
        for (int i = 0; i < 8; i++)
            r[i] = m + (lane0 + l + (size_t)i) * ld + k0;
        size_t q = 0;
        for (; q + 8 <= kc; q += 8) {
            __m256 x0 = _mm256_loadu_ps(r[0] + q), x1 = _mm256_loadu_ps(r[1] + q);
            __m256 x2 = _mm256_loadu_ps(r[2] + q), x3 = _mm256_loadu_ps(r[3] + q);
            __m256 x4 = _mm256_loadu_ps(r[4] + q), x5 = _mm256_loadu_ps(r[5] + q);
            __m256 x6 = _mm256_loadu_ps(r[6] + q), x7 = _mm256_loadu_ps(r[7] + q);
            __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
            __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
            __m256 t4 = _mm256_unpacklo_ps(x4, x5), t5 = _mm256_unpackhi_ps(x4, x5);
            __m256 t6 = _mm256_unpacklo_ps(x6, x7), t7 = _mm256_unpackhi_ps(x6, x7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
            float *o = out + q * w + l;
            _mm256_storeu_ps(o, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(o + w, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(o + 2 * w, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(o + 3 * w, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(o + 4 * w, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(o + 5 * w, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(o + 6 * w, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(o + 7 * w, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (; q < kc; q++)
            for (int i = 0; i < 8; i++)
                out[q * w + l + (size_t)i] = r[i][q];
    }
    for (; l < w; l++) {
        const float *r = l < have ? m + (lane0 + l) * ld + k0 : NULL;
        for (size_t q = 0; q < kc; q++)
            out[q * w + l] = r ? r[q] : 0.0f;
    }
}

/* One panel of k block [k0, k0 + kc): kc rows of w lanes, row q holding
 * lanes lane0 .. lane0 + w - 1 at step k0 + q of an operand, zeros past its
 * `lanes` lanes. The operand is m with row stride ld, its lanes along a row
 * (lanes_in_rows: B (k, n), or A^T's A (k, m)) or its k along a row. */
static void pack_panel(const float *m, size_t ld, int lanes_in_rows, size_t lanes, size_t lane0,
                       size_t w, size_t k0, size_t kc, float *out)
{
    size_t have = lanes - lane0 < w ? lanes - lane0 : w;
    if (lanes_in_rows) { /* a row of the panel is contiguous */
        for (size_t q = 0; q < kc; q++) {
            const float *src = m + (k0 + q) * ld + lane0;
            size_t l = 0;
            for (; l < have; l++)
                out[q * w + l] = src[l];
            for (; l < w; l++)
                out[q * w + l] = 0.0f;
        }
        return;
    }
    gather_lanes(m, ld, lane0, have, w, k0, kc, out);
}

/* A panel ip of k block kb: kc x MR, row q holding op(A)(ip*MR + i, k0 + q). */
static void pack_a_panel(const plan *p, size_t kb, size_t ip)
{
    size_t mr = p->isa->mr, kc, k0 = kb_start(p, kb, &kc);
    pack_panel(p->a, p->lda, p->trans_a, p->m, ip * mr, mr, k0, kc,
               p->ap + k0 * p->pa * mr + ip * mr * kc);
}

/* B panel jp of k block kb into out: kc x NR, row q holding
 * op(B)(k0 + q, jp*NR + j). */
static void pack_b_panel(const plan *p, size_t kb, size_t jp, float *out)
{
    size_t kc, k0 = kb_start(p, kb, &kc);
    pack_panel(p->b, p->ldb, !p->trans_b, p->n, jp * p->isa->nr, p->isa->nr, k0, kc, out);
}

/* Packing chunk: PACK_PANELS panels of A, in every k block. */
static void pack_chunk(void *arg, size_t chunk)
{
    const plan *p = arg;
    size_t first = chunk * PACK_PANELS;
    size_t last = first + PACK_PANELS < p->pa ? first + PACK_PANELS : p->pa;
    for (size_t kb = 0; kb < p->n_kb; kb++)
        for (size_t q = first; q < last; q++)
            pack_a_panel(p, kb, q);
}

/* Multiply chunk: rows of rp A panels by columns of cp B panels. For each k
 * block in turn it packs its B panels (into its own part of the workspace,
 * hot in cache when the kernel reads them: packing B costs 1/rows of the
 * multiply), then runs the kernel down the A panels under each. */
static void multiply_chunk(void *arg, size_t chunk)
{
    const plan *p = arg;
    size_t mr = p->isa->mr, nr = p->isa->nr;
    size_t rb = chunk / p->col_blocks, cb = chunk % p->col_blocks;
    size_t ip0 = rb * p->rp, ip1 = ip0 + p->rp < p->pa ? ip0 + p->rp : p->pa;
    size_t jp0 = cb * p->cp, jp1 = jp0 + p->cp < p->pb ? jp0 + p->cp : p->pb;
    float *bb = p->bp + chunk * p->cp * nr * (p->kb_len + 1);
    kernel_fn kernel = p->isa->kernel;
    for (size_t kb = 0; kb < p->n_kb; kb++) {
        size_t kc, k0 = kb_start(p, kb, &kc);
        const float *ab = p->ap + k0 * p->pa * mr;
        for (size_t jp = jp0; jp < jp1; jp++)
            pack_b_panel(p, kb, jp, bb + (jp - jp0) * nr * kc);
        for (size_t jp = jp0; jp < jp1; jp++) {
            size_t j0 = jp * nr, cols = p->n - j0 < nr ? p->n - j0 : nr;
            const float *bpan = bb + (jp - jp0) * nr * kc;
            for (size_t ip = ip0; ip < ip1; ip++) {
                size_t i0 = ip * mr, rows = p->m - i0 < mr ? p->m - i0 : mr;
                kernel(kc, ab + ip * mr * kc, bpan, p->c + i0 * p->ldc + j0, p->ldc, rows, cols,
                       p->alpha, p->beta, kb == 0);
            }
        }
    }
}

static size_t div_up(size_t a, size_t b)
{
    return (a + b - 1) / b;
}

/* Grows the workspace to n floats, 64-byte aligned. */
static int reserve(daecl_cpu_gemm_ws *ws, size_t n)
{
    if (ws->cap >= n)
        return 0;
    void *p = NULL;
    if (n > SIZE_MAX / sizeof(float) || posix_memalign(&p, 64, n * sizeof(float)) != 0)
        return ENOMEM;
    free(ws->buf);
    ws->buf = p;
    ws->cap = n;
    return 0;
}

/* One product of at most MB rows. */
static int multiply(daecl_pool *pool, daecl_cpu_gemm_ws *ws, plan *pl)
{
    plan p = *pl;
    size_t mr = p.isa->mr, nr = p.isa->nr, m = p.m, n = p.n, k = p.k;
    p.n_kb = div_up(k, KC);
    p.kb_len = k / p.n_kb;
    p.kb_extra = k % p.n_kb;
    p.pa = div_up(m, mr);
    p.pb = div_up(n, nr);
    double macs = (double)m * (double)n * (double)k;
    int par = macs >= PAR_MACS;
    /* Chunks: columns in blocks of about CHUNK_MACS multiply-adds over all
     * rows; when that leaves fewer than MIN_COL_BLOCKS blocks (a narrow C),
     * rows are cut too, into blocks of ROW_PANELS panels or more. */
    p.rp = p.pa;
    double panel_macs = (double)(p.pa * mr) * (double)nr * (double)k;
    size_t cp = par ? (size_t)(CHUNK_MACS / panel_macs) : p.pb;
    p.cp = cp < 1 ? 1 : cp > p.pb ? p.pb : cp;
    p.col_blocks = div_up(p.pb, p.cp);
    if (par && p.col_blocks < MIN_COL_BLOCKS && p.pa > ROW_PANELS) {
        size_t want = div_up(MIN_COL_BLOCKS, p.col_blocks), most = div_up(p.pa, ROW_PANELS);
        p.rp = div_up(p.pa, want < most ? want : most);
    }
    p.row_blocks = div_up(p.pa, p.rp);
    size_t chunks = p.row_blocks * p.col_blocks;
    /* B's panels start on a cache line: the kernels load them aligned */
    size_t na = div_up(p.pa * mr * k, 16) * 16, nb = chunks * p.cp * nr * (p.kb_len + 1);
    if (reserve(ws, na + nb))
        return ENOMEM;
    p.ap = ws->buf;
    p.bp = ws->buf + na;
    if (par) {
        daecl_pool_run(pool, div_up(p.pa, PACK_PANELS), pack_chunk, &p);
        daecl_pool_run(pool, chunks, multiply_chunk, &p);
    } else {
        for (size_t kb = 0; kb < p.n_kb; kb++)
            for (size_t q = 0; q < p.pa; q++)
                pack_a_panel(&p, kb, q);
        multiply_chunk(&p, 0);
    }
    return 0;
}

int daecl__cpu_gemm_own(daecl_pool *pool, daecl_cpu_gemm_ws *ws, daecl_cpu_gemm_kind kind,
                        int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta,
                        float *c, size_t ldc)
{
    const isa *is = isa_of(kind);
    if (!is || m == 0 || n == 0 || k == 0)
        return EINVAL;
    /* Rows MB at a time, which bounds the packed A (every element of C is
     * computed alike whatever block holds it). The first block's failure
     * to allocate leaves C untouched. */
    for (size_t i0 = 0; i0 < m; i0 += MB) {
        plan p = { .isa = is,
                   .trans_a = trans_a,
                   .trans_b = trans_b,
                   .m = m - i0 < MB ? m - i0 : MB,
                   .n = n,
                   .k = k,
                   .lda = lda,
                   .ldb = ldb,
                   .ldc = ldc,
                   .alpha = alpha,
                   .beta = beta,
                   .a = trans_a ? a + i0 : a + i0 * lda,
                   .b = b,
                   .c = c + i0 * ldc };
        int rc = multiply(pool, ws, &p);
        if (rc)
            return rc;
    }
    return 0;
}

#else /* no x86-64: OpenBLAS only (daecl__cpu_gemm_supported says so) */

int daecl__cpu_gemm_own(daecl_pool *pool, daecl_cpu_gemm_ws *ws, daecl_cpu_gemm_kind kind,
                        int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                        const float *a, size_t lda, const float *b, size_t ldb, float beta,
                        float *c, size_t ldc)
{
    (void)pool, (void)ws, (void)kind, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k;
    (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
    return EINVAL;
}

#endif /* DAECL_GEMM_X86 */

int daecl__cpu_gemm_supported(daecl_cpu_gemm_kind kind)
{
    if (kind == DAECL_CPU_GEMM_OPENBLAS)
        return 1;
#ifdef DAECL_GEMM_X86
    __builtin_cpu_init();
    if (kind == DAECL_CPU_GEMM_AVX512)
        return __builtin_cpu_supports("avx512f");
    if (kind == DAECL_CPU_GEMM_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

daecl_cpu_gemm_kind daecl__cpu_gemm_best(void)
{
    if (daecl__cpu_gemm_supported(DAECL_CPU_GEMM_AVX512))
        return DAECL_CPU_GEMM_AVX512;
    if (daecl__cpu_gemm_supported(DAECL_CPU_GEMM_AVX2))
        return DAECL_CPU_GEMM_AVX2;
    return DAECL_CPU_GEMM_OPENBLAS;
}

const char *daecl__cpu_gemm_name(daecl_cpu_gemm_kind kind)
{
    switch (kind) {
    case DAECL_CPU_GEMM_AVX512:
        return "avx512";
    case DAECL_CPU_GEMM_AVX2:
        return "avx2";
    case DAECL_CPU_GEMM_OPENBLAS:
        break;
    }
    return "openblas";
}

void daecl__cpu_gemm_ws_free(daecl_cpu_gemm_ws *ws)
{
    free(ws->buf);
    ws->buf = NULL;
    ws->cap = 0;
}
