/* daecl tests — the cpu backend's GEMM (backends/cpu/cpu_gemm.c, and
 * OpenBLAS behind backend.gemm: openblas): every kernel this CPU runs
 * against naive double-precision loops, with offsets and padding, NaN in C
 * under beta 0 and an empty k; backend.gemm's choices and refusals; the
 * same bits on 1, 2, 3 and 7 threads, and AVX2 against AVX-512. */
#include "tests/backend_cpu_fixture.h"

/* ---- backend.gemm ------------------------------------------------------------- */

static const char *const gemm_kinds[] = {"openblas", "avx2", "avx512"};
enum { N_GEMM_KINDS = sizeof gemm_kinds / sizeof gemm_kinds[0] };
static const char *gemm_now = "auto"; /* the GEMM with_each_gemm has on ctx */

/* Runs fn on the shared context reopened with each GEMM this CPU runs. */
static void with_each_gemm(void (*fn)(void))
{
    void *saved = ctx;
    for (size_t i = 0; i < N_GEMM_KINDS; i++) {
        void *c;
        if (open_gemm(gemm_kinds[i], 0, &c))
            continue;
        ctx = c;
        gemm_now = gemm_kinds[i];
        fn();
        ctx = saved;
        gemm_now = "auto";
        B->close(c);
    }
}

/* auto is the widest kernel the CPU runs (checked here with the compiler's
 * own CPU test), a kernel the CPU lacks is refused, and so is a name that
 * is none of them. */
static void test_gemm_auto_takes_the_widest_kernel_and_unknown_names_are_refused(void **state)
{
    (void)state;
    int avx512 = 0, avx2 = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    daecl_device_info info;
    B->describe(ctx, &info, sizeof info);
    const char *want = avx512 ? "AVX-512" : avx2 ? "AVX2" : "OpenBLAS";
    if (!strstr(info.note, want))
        fail_msg("backend.gemm: auto should take %s on this CPU; the device says: %s", want,
                 info.note);
    void *c;
    assert_int_equal(open_gemm("avx512", 1, &c), !avx512);
    B->close(c);
    assert_int_equal(open_gemm("avx2", 1, &c), !avx2);
    B->close(c);
    assert_int_equal(open_gemm("openblas", 1, &c), 0);
    B->close(c);
    daecl_param_value v[2] = { { { 1, 0 }, NULL }, { { 0, 0 }, "avx1024" } };
    c = NULL;
    assert_int_equal(B->open(daecl_host_table(), v, &c, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "avx1024"));
    assert_null(c);
}

/* ---- gemm ---------------------------------------------------------------------- */

/* C (m, n) = alpha op(A) op(B) + beta C against a double loop; A, B, C sit
 * at offsets in buffers with padded rows, and every element outside C's
 * (m, n) window must keep its bits. nan_c fills C's window with NaN. */
static void gemm_case(int ta, int tb, size_t m, size_t n, size_t k, float alpha, float beta,
                      int nan_c)
{
    size_t a_rows = ta ? k : m, a_cols = ta ? m : k, lda = a_cols + 3, off_a = 5;
    size_t b_rows = tb ? n : k, b_cols = tb ? k : n, ldb = b_cols + 2, off_b = 1;
    size_t ldc = n + 4, off_c = 7;
    size_t na = off_a + a_rows * lda, nb = off_b + b_rows * ldb, nc = off_c + m * ldc + 3;
    float *a = random_floats(na, 10 + m, -1, 1);
    float *b = random_floats(nb, 20 + n, -1, 1);
    float *c = random_floats(nc, 30 + k, -1, 1);
    if (nan_c)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                c[off_c + i * ldc + j] = NAN;
    daecl_buf *ba = upload(a, na), *bb = upload(b, nb), *bc = upload(c, nc);
    CALL(gemm, ta, tb, m, n, k, alpha, S(ba, off_a), lda, S(bb, off_b), ldb, beta, S(bc, off_c),
         ldc);
    float *got = download(bc, nc);

    double tol = 3e-6 * sqrt((double)k) + 1e-6;
    for (size_t e = 0; e < nc; e++) {
        size_t rel = e - off_c, i = rel / ldc, j = rel % ldc;
        if (e < off_c || i >= m || j >= n) {
            if (!same_bits(got[e], c[e]))
                fail_msg("gemm wrote element %zu outside C's window", e);
            continue;
        }
        double s = 0.0;
        for (size_t p = 0; p < k; p++) {
            double av = ta ? a[off_a + p * lda + i] : a[off_a + i * lda + p];
            double bv = tb ? b[off_b + j * ldb + p] : b[off_b + p * ldb + j];
            s += av * bv;
        }
        double want = alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c[e]);
        if (!(fabs(got[e] - want) <= tol * fmax(1.0, fabs(want))))
            fail_msg("gemm %s ta=%d tb=%d m=%zu n=%zu k=%zu: C[%zu,%zu] = %.9g, want %.9g",
                     gemm_now, ta, tb, m, n, k, i, j, got[e], want);
    }
    free(a);
    free(b);
    free(c);
    free(got);
    B->free(ctx, ba);
    B->free(ctx, bb);
    B->free(ctx, bc);
}

/* 1700 rows: daecl's kernels multiply 1536 rows at a time (cpu_gemm.c). */
static const size_t gemm_shapes[][3] = {
    { 1, 1, 1 },    { 7, 7, 7 },     { 1, 1001, 7 },    { 1000, 7, 1 },
    { 7, 1, 1000 }, { 33, 65, 129 }, { 130, 70, 1001 }, { 1700, 45, 300 },
};

static void gemm_naive_cases(void)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++) {
                const size_t *sh = gemm_shapes[s];
                gemm_case(ta, tb, sh[0], sh[1], sh[2], 0.75f, -0.5f, 0);
                gemm_case(ta, tb, sh[0], sh[1], sh[2], 1.0f, 1.0f, 0);
            }
}

static void test_gemm_matches_naive_loops_in_all_transposes(void **state)
{
    (void)state;
    with_each_gemm(gemm_naive_cases);
}

static void gemm_nan_cases(void)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof gemm_shapes / sizeof gemm_shapes[0]; s++) {
                const size_t *sh = gemm_shapes[s];
                gemm_case(ta, tb, sh[0], sh[1], sh[2], 1.25f, 0.0f, 1);
            }
    /* alpha 0 too: C becomes exactly zero. */
    gemm_case(0, 1, 7, 9, 5, 0.0f, 0.0f, 1);
}

static void test_gemm_with_beta_zero_ignores_nan_in_c(void **state)
{
    (void)state;
    with_each_gemm(gemm_nan_cases);
}

static void gemm_empty_cases(void)
{
    gemm_case(0, 0, 3, 4, 0, 1.0f, 0.0f, 1); /* zeroes despite NaN */
    gemm_case(1, 1, 3, 4, 0, 1.0f, 2.0f, 0);
    gemm_case(0, 0, 3, 4, 0, 1.0f, 1.0f, 0);
    gemm_case(0, 0, 0, 4, 5, 1.0f, 0.5f, 0); /* nothing to do */
}

static void test_gemm_with_empty_inner_dimension_scales_c(void **state)
{
    (void)state;
    with_each_gemm(gemm_empty_cases);
}

static void test_gemm_refuses_short_leading_dimensions_and_buffers(void **state)
{
    (void)state;
    daecl_buf *a = alloc_elems(12), *b = alloc_elems(12), *c = alloc_elems(12);
    /* A (3, 4) needs lda >= 4. */
    REFUSED(gemm, 0, 0, 3, 3, 4, 1.0f, S(a, 0), 3, S(b, 0), 3, 0.0f, S(c, 0), 3);
    /* A^T stored (4, 3): lda 3 fits, but from offset 1 it runs past 12. */
    REFUSED(gemm, 1, 0, 3, 3, 4, 1.0f, S(a, 1), 3, S(b, 0), 3, 0.0f, S(c, 0), 3);
    /* C (3, 3) with ldc 5 needs 13 elements. */
    REFUSED(gemm, 0, 0, 3, 3, 3, 1.0f, S(a, 0), 3, S(b, 0), 3, 0.0f, S(c, 0), 5);
    REFUSED(gemm, 0, 0, 3, 3, 3, 1.0f, S(a, 0), 3, NONE, 3, 0.0f, S(c, 0), 3);
    B->free(ctx, a);
    B->free(ctx, b);
    B->free(ctx, c);
}

/* ---- the same bits on any thread count -------------------------------------------- */

/* Products cut into several blocks with short last ones: OpenBLAS's into 8,
 * 4 and 2 column (or row) blocks (backends/cpu/cpu_math.c: about 32 million
 * multiply-adds a block, a power of two of them, 16 columns wide or a
 * multiple of it), daecl's kernels into column blocks of about 16 million,
 * rows cut too for the narrow 2111 x 129 (backends/cpu/cpu_gemm.c), with k
 * over one to three blocks of at most 256. */
static const size_t split_shapes[][3] = {
    {100, 4099, 700}, {129, 2111, 500}, {2111, 129, 500},
    {37, 1037, 131},  {301, 700, 77},   {256, 128, 130},
};

/* Each GEMM gives the same bits on any thread count; daecl's AVX2 and
 * AVX-512 kernels also give the same bits as each other (backends/cpu/
 * cpu_gemm.c: the same operations in the same order for every element). */
static void test_gemm_gives_the_same_bits_on_any_thread_count(void **state)
{
    (void)state;
    multi m[N_GEMM_KINDS];
    int have[N_GEMM_KINDS];
    for (size_t g = 0; g < N_GEMM_KINDS; g++)
        have[g] = !multi_open(&m[g], gemm_kinds[g]);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof split_shapes / sizeof split_shapes[0]; s++)
                for (int bi = 0; bi < 2; bi++) {
                    size_t mm = split_shapes[s][0], n = split_shapes[s][1], k = split_shapes[s][2];
                    float beta = bi ? 0.5f : 0.0f;
                    size_t lda = (ta ? mm : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 5;
                    size_t na = (ta ? k : mm) * lda, nb = (tb ? n : k) * ldb, nc = mm * ldc;
                    float *a = random_floats(na, 200 + s, -1, 1);
                    float *b = random_floats(nb, 210 + s, -1, 1);
                    float *c0 = random_floats(nc, 220 + s, -1, 1);
                    float *own_ref = NULL; /* the first of daecl's kernels */
                    const char *own_name = NULL;
                    char what[96];
                    for (size_t g = 0; g < N_GEMM_KINDS; g++) {
                        if (!have[g])
                            continue;
                        snprintf(what, sizeof what, "gemm %s ta=%d tb=%d %zux%zux%zu beta %g",
                                 gemm_kinds[g], ta, tb, mm, n, k, (double)beta);
                        float *ref = NULL;
                        for (int i = 0; i < N_CTX; i++) {
                            void *c = m[g].c[i];
                            daecl_buf *ba = upload_to(c, a, na), *bb = upload_to(c, b, nb);
                            daecl_buf *bc = upload_to(c, c0, nc);
                            check_ok(B->gemm(c, ta, tb, mm, n, k, 0.75f, S(ba, 0), lda, S(bb, 0),
                                             ldb, beta, S(bc, 0), ldc, &err),
                                     "gemm");
                            float *got = download_from(c, bc, nc);
                            if (!ref) {
                                ref = got;
                            } else {
                                same_as_one_thread(ref, got, nc, ctx_threads[i], what);
                                free(got);
                            }
                            B->free(c, ba);
                            B->free(c, bb);
                            B->free(c, bc);
                        }
                        if (strcmp(gemm_kinds[g], "openblas") == 0) {
                            free(ref);
                        } else if (!own_ref) {
                            own_ref = ref;
                            own_name = gemm_kinds[g];
                        } else {
                            for (size_t e = 0; e < nc; e++)
                                if (!same_bits(own_ref[e], ref[e]))
                                    fail_msg("%s: element %zu is %.9g, with %s %.9g", what, e,
                                             ref[e], own_name, own_ref[e]);
                            free(ref);
                        }
                    }
                    free(own_ref);
                    free(a);
                    free(b);
                    free(c0);
                }
    for (size_t g = 0; g < N_GEMM_KINDS; g++)
        if (have[g])
            multi_close(&m[g]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_auto_takes_the_widest_kernel_and_unknown_names_are_refused),
        cmocka_unit_test(test_gemm_matches_naive_loops_in_all_transposes),
        cmocka_unit_test(test_gemm_with_beta_zero_ignores_nan_in_c),
        cmocka_unit_test(test_gemm_with_empty_inner_dimension_scales_c),
        cmocka_unit_test(test_gemm_refuses_short_leading_dimensions_and_buffers),
        cmocka_unit_test(test_gemm_gives_the_same_bits_on_any_thread_count),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
