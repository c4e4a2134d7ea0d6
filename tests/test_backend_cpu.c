/* daecl tests — the cpu reference backend (backends/cpu): every op but the
 * GEMM (tests/test_cpu_gemm.c) against naive double-precision loops written
 * here, with offsets and padding that prove slices are honoured,
 * out-of-range access refused, and plugins run on the right memory through
 * small in-test corruption and likelihood plugins (the real ones are tested
 * on their own); and every parallel op giving the same bits on 1, 2, 3 and
 * 7 threads. */
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/pool.h"
#include "tests/backend_cpu_fixture.h"

/* ---- device and memory ------------------------------------------------------- */

static void test_describe_reports_the_host_cpu_as_the_one_default_device(void **state)
{
    (void)state;
    daecl_device_info info;
    B->describe(ctx, &info, sizeof info);
    assert_string_equal(info.type, "cpu");
    assert_string_equal(info.platform, "daecl cpu");
    assert_int_equal(strncmp(info.name, "cpu", 3), 0);
    assert_int_equal(info.compute_units, (uint32_t)sysconf(_SC_NPROCESSORS_ONLN));
    assert_true(info.global_mem_bytes ==
                (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE));
    assert_true(info.max_alloc_bytes == info.global_mem_bytes);
    assert_int_equal(strncmp(info.driver, "OpenBLAS", 8), 0);
    assert_int_equal(info.is_default, 1);

    /* The model name from /proc/cpuinfo, when there is one, is in the name. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':') + 2;
            v[strcspn(v, "\n")] = '\0';
            if (!strstr(info.name, v))
                fail_msg("device name '%s' lacks the model '%s'", info.name, v);
            break;
        }
    }
    if (f)
        fclose(f);

    daecl_device_info list[4];
    size_t n = 0;
    check_ok(test_list_devices(B, list, 4, &n, &err), "list_devices");
    assert_int_equal(n, 1);
    assert_int_equal(list[0].is_default, 1);
    assert_string_equal(list[0].name, info.name);
    check_ok(B->finish(ctx, &err), "finish");
}

static void test_schema_has_threads_and_gemm_defaulting_to_auto(void **state)
{
    (void)state;
    assert_int_equal(plugin->n_params, 2);
    assert_string_equal(plugin->params[0].name, "threads");
    assert_int_equal(plugin->params[0].type, DAECL_PARAM_INT);
    assert_true(plugin->params[0].def[0] == 0 && plugin->params[0].min == 0 &&
                plugin->params[0].max == 1024);
    assert_string_equal(plugin->params[1].name, "gemm");
    assert_int_equal(plugin->params[1].type, DAECL_PARAM_ENUM);
    assert_string_equal(plugin->params[1].def_str, "auto");
    assert_string_equal(plugin->params[1].choices, "auto|openblas|avx2|avx512");
}

/* The threads of this process, from /proc/self/task. */
static int count_threads(void)
{
    int n = test_count_entries("/proc/self/task", NULL, 0);
    assert_true(n >= 1);
    return n;
}

/* threads = N starts N - 1 workers beside the caller's thread and close()
 * stops them; 0 means the CPUs this process may use
 * (daecl_pool_default_threads). OpenBLAS stays on one thread throughout,
 * and no OpenMP runtime is loaded. */
static void test_threads_parameter_sizes_the_pool_and_openblas_stays_single(void **state)
{
    (void)state;
    void *blas = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
    if (!blas)
        fail_msg("the cpu backend should have loaded libopenblas.so.0: %s", dlerror());
    int (*get_threads)(void) = (int (*)(void))dlsym(blas, "openblas_get_num_threads");
    assert_non_null(get_threads);
    void *gomp = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (gomp) {
        dlclose(gomp);
        fail_msg("libgomp is loaded: the cpu backend should not use OpenMP");
    }

    const unsigned counts[] = {1, 3, 0};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int before = count_threads();
        daecl_param_value v[2] = { { { counts[i], 0 }, NULL }, { { 0, 0 }, "auto" } };
        void *c = NULL;
        check_ok(B->open(daecl_host_table(), v, &c, &err), "open");
        unsigned want = counts[i] ? counts[i] : daecl_pool_default_threads();
        assert_int_equal(count_threads() - before, (int)want - 1);
        assert_int_equal(get_threads(), 1);
        B->close(c);
        /* a joined thread may linger in /proc for a moment */
        for (int tries = 0; tries < 1000 && count_threads() != before; tries++)
            usleep(1000);
        assert_int_equal(count_threads(), before);
    }
    B->close(NULL);

    daecl_param_value v[2] = { { { 2000, 0 }, NULL }, { { 0, 0 }, "auto" } };
    void *bad = NULL;
    assert_int_equal(B->open(daecl_host_table(), v, &bad, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "threads"));
    assert_null(bad);
    dlclose(blas);
}

static void test_alloc_gives_aligned_zeroed_buffers_even_for_zero_bytes(void **state)
{
    (void)state;
    size_t sizes[] = {0, 1, 7, 1000, 1001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        daecl_buf *b = alloc_elems(sizes[s]);
        assert_non_null(b);
        assert_non_null(b->p);
        assert_int_equal((uintptr_t)b->p % 64, 0);
        assert_int_equal(b->n_bytes, sizes[s] * sizeof(float));
        float *x = download(b, sizes[s]);
        for (size_t i = 0; i < sizes[s]; i++)
            assert_true(same_bits(x[i], 0.0f));
        free(x);
        B->free(ctx, b);
    }
    B->free(ctx, NULL);

    daecl_buf *huge = NULL;
    memset(&err, 0, sizeof err);
    assert_int_equal(B->alloc(ctx, SIZE_MAX, "train set", &huge, &err), DAECL_ENOMEM);
    assert_non_null(strstr(err.msg, "train set"));
    assert_null(huge);
}

static void test_write_read_fill_copy_honour_offsets(void **state)
{
    (void)state;
    size_t n = 1001;
    float *x = random_floats(n, 1, -1, 1);
    daecl_buf *a = upload(x, n), *b = alloc_elems(n);

    /* write and read at byte offsets. */
    float part[7] = {1, 2, 3, 4, 5, 6, 7}, back[7];
    CALL(write, a, 40, part, sizeof part);
    CALL(read, a, 36, back, sizeof back);
    assert_true(same_bits(back[0], x[9]));
    for (int i = 1; i < 7; i++)
        assert_true(back[i] == part[i - 1]);
    memcpy(x + 10, part, sizeof part);

    /* fill [3, 3+7) of b, copy a[100, 100+900) to b[50, 950). */
    CALL(fill, S(b, 3), 7, 2.5f);
    CALL(copy, S(b, 50), S(a, 100), 900);
    float *y = download(b, n);
    for (size_t i = 0; i < n; i++) {
        float want = i >= 3 && i < 10 ? 2.5f : i >= 50 && i < 950 ? x[i + 50] : 0.0f;
        if (!same_bits(y[i], want))
            fail_msg("element %zu is %g, not %g", i, y[i], want);
    }
    /* Sizes 0 are fine anywhere up to the end. */
    CALL(fill, S(b, n), 0, 1.0f);
    CALL(copy, S(b, n), S(a, 0), 0);
    free(x);
    free(y);
    B->free(ctx, a);
    B->free(ctx, b);
}

static void test_out_of_range_access_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    size_t n = 7;
    daecl_buf *a = alloc_elems(n), *b = alloc_elems(n);
    float host[8] = {0};
    REFUSED(write, a, 4, host, n * sizeof(float));
    REFUSED(write, a, 29, host, 0);
    REFUSED(read, a, 0, host, 8 * sizeof(float));
    REFUSED(fill, S(a, 1), 7, 1.0f);
    REFUSED(fill, S(a, 8), 0, 1.0f);
    REFUSED(fill, NONE, 1, 1.0f);
    REFUSED(copy, S(a, 0), S(b, 1), 7);
    REFUSED(copy, S(a, 1), S(a, 3), 3); /* overlapping */
    REFUSED(bias_act, S(a, 0), S(b, 1), 1, 7, DAECL_ACT_SIGMOID);
    REFUSED(bias_act, S(a, 0), NONE, 2, 4, DAECL_ACT_SIGMOID);
    REFUSED(bias_act, S(a, 0), NONE, SIZE_MAX, 2, DAECL_ACT_SIGMOID); /* overflow */
    REFUSED(act_grad, S(a, 0), S(b, 2), 6, DAECL_ACT_TANH);
    REFUSED(col_sum, S(a, 0), 2, 4, 0.0f, S(b, 0));
    REFUSED(col_sum, S(a, 0), 1, 7, 0.0f, S(b, 1));
    REFUSED(sum, S(a, 0), 8, S(b, 0));
    REFUSED(sum, S(a, 0), 7, S(b, 7));
    REFUSED(gather, S(a, 0), 2, S(b, 0), 4, S(b, 0));
    daecl_optim_step sgd = {.kind = DAECL_OPTIM_SGD, .lr = 0.1f};
    REFUSED(optim_update, &sgd, S(a, 0), S(b, 1), NONE, NONE, 7);
    float *ya = download(a, n), *yb = download(b, n);
    for (size_t i = 0; i < n; i++)
        assert_true(same_bits(ya[i], 0.0f) && same_bits(yb[i], 0.0f));
    free(ya);
    free(yb);
    B->free(ctx, a);
    B->free(ctx, b);
}

/* ---- activations --------------------------------------------------------------- */

static const daecl_act all_acts[] = {DAECL_ACT_LINEAR, DAECL_ACT_SIGMOID, DAECL_ACT_TANH,
                                     DAECL_ACT_RELU};

/* act'(z) written from the output h = act(z). */
static double act_deriv_ref(double h, daecl_act act)
{
    switch (act) {
    case DAECL_ACT_SIGMOID:
        return h * (1.0 - h);
    case DAECL_ACT_TANH:
        return 1.0 - h * h;
    case DAECL_ACT_RELU:
        return h > 0.0 ? 1.0 : 0.0;
    default:
        return 1.0;
    }
}

static const size_t row_shapes[][2] = {{1, 1}, {7, 1001}, {1000, 7}, {1, 1000}, {1001, 1}};

static void test_bias_act_matches_reference_for_every_activation(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof row_shapes / sizeof row_shapes[0]; s++) {
        size_t rows = row_shapes[s][0], dim = row_shapes[s][1], n = rows * dim;
        for (size_t ai = 0; ai < 4; ai++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                daecl_act act = all_acts[ai];
                float *z = random_floats(n + 4, 40 + s, -6, 6);
                float *bias = random_floats(dim + 2, 50 + s, -1, 1);
                daecl_buf *bz = upload(z, n + 4), *bb = upload(bias, dim + 2);
                CALL(bias_act, S(bz, 3), with_bias ? S(bb, 2) : NONE, rows, dim, act);
                float *got = download(bz, n + 4);
                for (size_t i = 0; i < n + 4; i++) {
                    if (i < 3 || i >= n + 3) {
                        assert_true(same_bits(got[i], z[i]));
                        continue;
                    }
                    double x = (double)z[i] + (with_bias ? (double)bias[2 + (i - 3) % dim] : 0.0);
                    assert_close(got[i], test_act_ref(act, x), 1e-6);
                }
                free(z);
                free(bias);
                free(got);
                B->free(ctx, bz);
                B->free(ctx, bb);
            }
    }
}

static void test_sigmoid_stays_accurate_and_finite_for_large_inputs(void **state)
{
    (void)state;
    const float z[] = {-1e30f, -1e4f, -1000, -104, -88, -80, -50, -30, -20, -1, -0.0f, 0,
                       1, 20, 30, 50, 88, 104, 1000, 1e4f, 1e30f, -INFINITY, INFINITY};
    size_t n = sizeof z / sizeof z[0];
    daecl_buf *b = upload(z, n);
    CALL(bias_act, S(b, 0), NONE, 1, n, DAECL_ACT_SIGMOID);
    float *got = download(b, n);
    for (size_t i = 0; i < n; i++) {
        double want = test_act_ref(DAECL_ACT_SIGMOID, (double)z[i]);
        /* Relative accuracy down to float's normal range, then absolute. */
        if (!(isfinite(got[i]) && got[i] >= 0.0f && got[i] <= 1.0f &&
              fabs(got[i] - want) <= 1e-6 * want + 1e-44))
            fail_msg("sigmoid(%g) = %.9g, want %.9g", z[i], got[i], want);
    }
    free(got);
    /* tanh saturates cleanly too. */
    CALL(write, b, 0, z, n * sizeof(float));
    CALL(bias_act, S(b, 0), NONE, n, 1, DAECL_ACT_TANH);
    got = download(b, n);
    for (size_t i = 0; i < n; i++)
        assert_close(got[i], tanh((double)z[i]), 1e-6);
    free(got);
    B->free(ctx, b);
}

static void test_act_grad_multiplies_by_derivative_from_output(void **state)
{
    (void)state;
    size_t sizes[] = {1, 7, 1000, 1001};
    for (size_t s = 0; s < 4; s++)
        for (size_t ai = 0; ai < 4; ai++) {
            size_t n = sizes[s];
            daecl_act act = all_acts[ai];
            float *z = random_floats(n, 60 + s, -4, 4);
            float *h = floats(n + 1);
            for (size_t i = 0; i < n; i++)
                h[i + 1] = (float)test_act_ref(act, z[i]);
            float *dh = random_floats(n + 2, 70 + s, -2, 2);
            daecl_buf *bh = upload(h, n + 1), *bd = upload(dh, n + 2);
            CALL(act_grad, S(bd, 2), S(bh, 1), n, act);
            float *got = download(bd, n + 2);
            assert_true(same_bits(got[0], dh[0]) && same_bits(got[1], dh[1]));
            for (size_t i = 0; i < n; i++)
                assert_close(got[i + 2], (double)dh[i + 2] * act_deriv_ref(h[i + 1], act), 1e-6);
            free(z);
            free(h);
            free(dh);
            free(got);
            B->free(ctx, bh);
            B->free(ctx, bd);
        }
}

/* ---- reductions and gather ----------------------------------------------------- */

static void test_col_sum_accumulates_in_double_with_beta(void **state)
{
    (void)state;
    const size_t shapes[][2] = {{1, 1}, {7, 1001}, {1000, 7}, {1001, 300}, {3, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], dim = shapes[s][1], n = rows * dim;
        float *x = random_floats(n + 1, 80 + s, -1, 1);
        float *old = random_floats(dim + 2, 90 + s, -1, 1);
        for (float beta = 0.0f; beta < 1.0f; beta += 0.75f) {
            float *d0 = floats(dim + 2);
            memcpy(d0, old, (dim + 2) * sizeof *d0);
            if (beta == 0.0f)
                for (size_t j = 0; j < dim; j++)
                    d0[j + 2] = NAN; /* beta 0 overwrites */
            daecl_buf *bx = upload(x, n + 1), *bd = upload(d0, dim + 2);
            CALL(col_sum, S(bx, 1), rows, dim, beta, S(bd, 2));
            float *got = download(bd, dim + 2);
            assert_true(same_bits(got[0], d0[0]) && same_bits(got[1], d0[1]));
            for (size_t j = 0; j < dim; j++) {
                double acc = 0.0;
                for (size_t r = 0; r < rows; r++)
                    acc += (double)x[1 + r * dim + j];
                if (beta == 0.0f) {
                    /* A double sum in row order, rounded once: exact. */
                    if (!same_bits(got[j + 2], (float)acc))
                        fail_msg("col_sum column %zu = %.9g, want %.9g", j, got[j + 2],
                                 (float)acc);
                } else {
                    assert_close(got[j + 2], beta * (double)d0[j + 2] + acc, 1e-6);
                }
            }
            free(d0);
            free(got);
            B->free(ctx, bx);
            B->free(ctx, bd);
        }
        free(x);
        free(old);
    }
}

static void test_sum_accumulates_in_double(void **state)
{
    (void)state;
    size_t sizes[] = {1, 7, 1000, 1001, 100000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = random_floats(n + 5, 100 + s, -1, 1);
        daecl_buf *bx = upload(x, n + 5), *bd = alloc_elems(3);
        CALL(sum, S(bx, 5), n, S(bd, 2));
        float *got = download(bd, 3);
        double acc = 0.0;
        for (size_t i = 0; i < n; i++)
            acc += x[5 + i];
        assert_true(same_bits(got[2], (float)acc));
        assert_true(got[0] == 0.0f && got[1] == 0.0f);
        free(x);
        free(got);
        B->free(ctx, bx);
        B->free(ctx, bd);
    }
    /* 2^24 then 1000 ones: a float accumulator would stay at 2^24, and the
     * columns of col_sum likewise. */
    size_t n = 1001;
    float *x = floats(n);
    x[0] = 16777216.0f;
    for (size_t i = 1; i < n; i++)
        x[i] = 1.0f;
    daecl_buf *bx = upload(x, n), *bd = alloc_elems(1);
    CALL(sum, S(bx, 0), n, S(bd, 0));
    float got;
    CALL(read, bd, 0, &got, sizeof got);
    assert_true(got == 16778216.0f);
    CALL(col_sum, S(bx, 0), n, 1, 0.0f, S(bd, 0));
    CALL(read, bd, 0, &got, sizeof got);
    assert_true(got == 16778216.0f);
    free(x);
    B->free(ctx, bx);
    B->free(ctx, bd);
}

static void test_gather_copies_indexed_rows_and_refuses_bad_indices(void **state)
{
    (void)state;
    const size_t data_rows = 50;
    const size_t shapes[][2] = {{1, 1}, {7, 7}, {1000, 1}, {1000, 1001}, {7, 1000}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t rows = shapes[s][0], dim = shapes[s][1];
        float *data = random_floats(3 + data_rows * dim, 110 + s, -1, 1);
        uint32_t *idx = malloc((rows + 2) * sizeof *idx);
        assert_non_null(idx);
        for (size_t r = 0; r < rows + 2; r++)
            idx[r] = (uint32_t)((r * 7919u + s) % data_rows);
        idx[2] = (uint32_t)(data_rows - 1); /* the last row is reachable */
        daecl_buf *bdata = upload(data, 3 + data_rows * dim);
        daecl_buf *bidx = upload(idx, rows + 2);
        daecl_buf *bout = alloc_elems(5 + rows * dim);
        CALL(gather, S(bdata, 3), dim, S(bidx, 2), rows, S(bout, 5));
        float *got = download(bout, 5 + rows * dim);
        for (size_t e = 0; e < 5; e++)
            assert_true(same_bits(got[e], 0.0f));
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < dim; j++)
                if (!same_bits(got[5 + r * dim + j], data[3 + idx[r + 2] * dim + j]))
                    fail_msg("gather row %zu column %zu is wrong", r, j);
        free(got);

        /* One index past the data: refused, nothing written. */
        uint32_t bad = (uint32_t)data_rows;
        CALL(write, bidx, (2 + rows - 1) * sizeof bad, &bad, sizeof bad);
        CALL(fill, S(bout, 0), 5 + rows * dim, -3.0f);
        REFUSED(gather, S(bdata, 3), dim, S(bidx, 2), rows, S(bout, 5));
        got = download(bout, 5 + rows * dim);
        for (size_t e = 0; e < 5 + rows * dim; e++)
            assert_true(got[e] == -3.0f);
        free(got);
        free(data);
        free(idx);
        B->free(ctx, bdata);
        B->free(ctx, bidx);
        B->free(ctx, bout);
    }
}

/* ---- optimisers ---------------------------------------------------------------- */

/* One optimiser configuration checked over several steps against PyTorch's
 * formulas in double (torch/optim/sgd.py, adam.py, adamw.py; Adam's first
 * moment as PyTorch writes it, m.lerp_(g, 1 - b1)). */
typedef struct optim_case {
    const char *name;
    daecl_optim_step step;
} optim_case;

static void optim_run(const optim_case *oc, size_t n)
{
    const int steps = 5;
    daecl_optim_step st = oc->step;
    int adam = st.kind != DAECL_OPTIM_SGD;
    int has_v = adam || st.momentum != 0.0f;
    float *w0 = random_floats(n, 120, -1, 1);
    double *w = malloc(n * sizeof *w), *m = calloc(n, sizeof *m), *v = calloc(n, sizeof *v);
    assert_true(w && m && v);
    for (size_t i = 0; i < n; i++)
        w[i] = w0[i];
    daecl_buf *bw = upload(w0, n), *bg = alloc_elems(n + 1);
    daecl_buf *b1 = alloc_elems(n + 2), *b2 = alloc_elems(n + 3);

    for (int t = 1; t <= steps; t++) {
        float *g = random_floats(n, 130 + (uint64_t)t, -0.1f, 0.1f);
        CALL(write, bg, sizeof(float), g, n * sizeof(float));
        st.bias_corr1 = (float)(1.0 - pow(st.beta1, t));
        st.bias_corr2 = (float)(1.0 - pow(st.beta2, t));
        CALL(optim_update, &st, S(bw, 0), S(bg, 1), has_v ? S(b1, 2) : NONE,
             adam ? S(b2, 3) : NONE, n);

        const double lr = st.lr, mu = st.momentum, wd = st.weight_decay;
        const double beta1 = st.beta1, beta2 = st.beta2, eps = st.eps;
        for (size_t i = 0; i < n; i++) {
            double gi = g[i];
            if (st.kind == DAECL_OPTIM_SGD) {
                if (wd != 0.0)
                    gi += wd * w[i];
                double d = gi;
                if (mu != 0.0) {
                    m[i] = t == 1 ? gi : mu * m[i] + gi; /* torch: buf = clone(g) first */
                    d = st.nesterov ? gi + mu * m[i] : m[i];
                }
                w[i] -= lr * d;
                continue;
            }
            if (st.kind == DAECL_OPTIM_ADAMW)
                w[i] *= 1.0 - lr * wd;
            else if (wd != 0.0)
                gi += wd * w[i];
            m[i] += (1.0 - beta1) * (gi - m[i]);
            v[i] = v[i] * beta2 + (1.0 - beta2) * gi * gi;
            double bc1 = 1.0 - pow(beta1, t), bc2 = 1.0 - pow(beta2, t);
            double denom = sqrt(v[i]) / sqrt(bc2) + eps;
            w[i] -= lr / bc1 * m[i] / denom;
        }
        float *gw = download(bw, n), *g1 = download(b1, n + 2), *g2 = download(b2, n + 3);
        for (size_t i = 0; i < n; i++) {
            if (!(fabs(gw[i] - w[i]) <= 1e-5 * fmax(1.0, fabs(w[i]))))
                fail_msg("%s n=%zu step %d: w[%zu] = %.9g, want %.9g", oc->name, n, t, i, gw[i],
                         w[i]);
            if (has_v)
                assert_close(g1[2 + i], m[i], 1e-5);
            else
                assert_true(same_bits(g1[2 + i], 0.0f)); /* velocity untouched */
            if (adam)
                assert_close(g2[3 + i], v[i], 1e-6);
            else
                assert_true(same_bits(g2[3 + i], 0.0f));
        }
        assert_true(same_bits(g1[0], 0.0f) && same_bits(g1[1], 0.0f));
        free(g);
        free(gw);
        free(g1);
        free(g2);
    }
    free(w0);
    free(w);
    free(m);
    free(v);
    B->free(ctx, bw);
    B->free(ctx, bg);
    B->free(ctx, b1);
    B->free(ctx, b2);
}

static void test_optim_update_follows_pytorch_sgd_adam_adamw(void **state)
{
    (void)state;
    const optim_case cases[] = {
        {"sgd", {.kind = DAECL_OPTIM_SGD, .lr = 0.1f}},
        {"sgd+wd", {.kind = DAECL_OPTIM_SGD, .lr = 0.1f, .weight_decay = 0.05f}},
        {"sgd+momentum", {.kind = DAECL_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f}},
        {"sgd+nesterov", {.kind = DAECL_OPTIM_SGD, .nesterov = 1, .lr = 0.1f, .momentum = 0.9f}},
        {"sgd+momentum+wd",
         {.kind = DAECL_OPTIM_SGD, .lr = 0.1f, .momentum = 0.5f, .weight_decay = 0.05f}},
        {"adam",
         {.kind = DAECL_OPTIM_ADAM, .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-3f}},
        {"adam+wd",
         {.kind = DAECL_OPTIM_ADAM, .lr = 0.01f, .weight_decay = 0.05f, .beta1 = 0.9f,
          .beta2 = 0.999f, .eps = 1e-3f}},
        {"adamw",
         {.kind = DAECL_OPTIM_ADAMW, .lr = 0.01f, .weight_decay = 0.05f, .beta1 = 0.8f,
          .beta2 = 0.99f, .eps = 1e-8f}},
    };
    size_t sizes[] = {1, 7, 1001};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t s = 0; s < 3; s++)
            optim_run(&cases[c], sizes[s]);
}

static void test_optim_update_refuses_missing_state(void **state)
{
    (void)state;
    daecl_buf *w = alloc_elems(4), *g = alloc_elems(4), *s = alloc_elems(4);
    daecl_optim_step adam = {.kind = DAECL_OPTIM_ADAM, .lr = 0.1f, .beta1 = 0.9f,
                             .beta2 = 0.99f, .eps = 1e-8f, .bias_corr1 = 0.1f,
                             .bias_corr2 = 0.01f};
    REFUSED(optim_update, &adam, S(w, 0), S(g, 0), S(s, 0), NONE, 4);
    daecl_optim_step momentum = {.kind = DAECL_OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f};
    REFUSED(optim_update, &momentum, S(w, 0), S(g, 0), NONE, NONE, 4);
    adam.bias_corr1 = 0.0f; /* step 0 does not exist */
    REFUSED(optim_update, &adam, S(w, 0), S(g, 0), S(s, 0), S(s, 0), 4);
    daecl_optim_step unknown = {.kind = 7};
    REFUSED(optim_update, &unknown, S(w, 0), S(g, 0), S(s, 0), S(s, 0), 4);
    B->free(ctx, w);
    B->free(ctx, g);
    B->free(ctx, s);
}

/* ---- plugins ------------------------------------------------------------------- */

/* A corruption whose output shows what it was given: element j of row r
 * is x p0 + p1 + 100 (pos0 + r) + j + 1000 epoch + 10000 shape[0]. It
 * refuses p0 < 0, to show errors come back. */
static daecl_noise_key affine_key;
static size_t affine_rows, affine_dim;

static int affine_apply(const float *x, float *xt, size_t n_rows, size_t dim,
                        const daecl_shape *shape, const daecl_noise_key *key, const float *p,
                        daecl_err *e)
{
    affine_key = *key;
    affine_rows = n_rows;
    affine_dim = dim;
    if (p[0] < 0.0f) {
        e->status = DAECL_EPLUGIN;
        snprintf(e->msg, sizeof e->msg, "affine refuses a negative scale");
        return DAECL_EPLUGIN;
    }
    for (size_t r = 0; r < n_rows; r++)
        for (size_t j = 0; j < dim; j++)
            xt[r * dim + j] = x[r * dim + j] * p[0] + p[1] + 100.0f * (float)(key->pos0 + r) +
                              (float)j + 1000.0f * (float)key->epoch +
                              10000.0f * (float)shape->dims[0];
    return 0;
}

static const daecl_corruption_ops affine_ops = {.size = sizeof(daecl_corruption_ops),
                                                .host_apply = affine_apply};
static const daecl_plugin affine_plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                           .name = "affine", .version = "0.0.1",
                                           .summary = "test", .license = "MIT",
                                           .ops = &affine_ops};

/* A likelihood with k = 2 whose outputs are easy to predict:
 * nll_row = sum_j (x - a0)^2 + a1, grad = scale (p0 (a0 - x), p1),
 * mean = a0 + p0, sample = a1 + 100 (pos0 + r) + j. It records NULL outputs. */
static int probe_nll_null, probe_grad_null;

static int probe_loss_grad(const float *x, const float *a, size_t n_rows, size_t dim,
                           const float *p, float scale, float *nll_rows, float *grad,
                           daecl_err *e)
{
    (void)e;
    probe_nll_null = nll_rows == NULL;
    probe_grad_null = grad == NULL;
    for (size_t r = 0; r < n_rows; r++) {
        double s = 0.0;
        for (size_t j = 0; j < dim; j++) {
            float x_ = x[r * dim + j], a0 = a[r * 2 * dim + j], a1 = a[r * 2 * dim + dim + j];
            s += (double)((x_ - a0) * (x_ - a0) + a1);
            if (grad) {
                grad[r * 2 * dim + j] = scale * (p[0] * (a0 - x_));
                grad[r * 2 * dim + dim + j] = scale * p[1];
            }
        }
        if (nll_rows)
            nll_rows[r] = (float)s;
    }
    return 0;
}

static int probe_mean(const float *a, float *mean, size_t n_rows, size_t dim, const float *p,
                      daecl_err *e)
{
    (void)e;
    for (size_t r = 0; r < n_rows; r++)
        for (size_t j = 0; j < dim; j++)
            mean[r * dim + j] = a[r * 2 * dim + j] + p[0];
    return 0;
}

static int probe_sample(const float *a, float *out, size_t n_rows, size_t dim,
                        const daecl_noise_key *key, const float *p, daecl_err *e)
{
    (void)p;
    (void)e;
    for (size_t r = 0; r < n_rows; r++)
        for (size_t j = 0; j < dim; j++)
            out[r * dim + j] =
                a[r * 2 * dim + dim + j] + 100.0f * (float)(key->pos0 + r) + (float)j;
    return 0;
}

static const daecl_likelihood_ops probe_ops = {.size = sizeof(daecl_likelihood_ops),
                                               .params_per_dim = 2,
                                               .host_loss_grad = probe_loss_grad,
                                               .host_mean = probe_mean,
                                               .host_sample = probe_sample};
static const daecl_plugin probe_plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_LIKELIHOOD),
                                          .name = "probe", .version = "0.0.1",
                                          .summary = "test", .license = "MIT",
                                          .ops = &probe_ops};

static void test_corrupt_runs_the_plugin_on_the_slices_with_its_params(void **state)
{
    (void)state;
    size_t rows = 7, dim = 13, n = rows * dim;
    float params[2] = {2.0f, 0.5f};
    void *bound = NULL;
    CALL(bind, &affine_plugin, params, 2, &bound);
    params[0] = -1.0f; /* bind keeps its own copy */

    float *x = random_floats(n + 3, 140, 0, 1);
    daecl_buf *bx = upload(x, n + 3), *bt = alloc_elems(n + 6);
    CALL(fill, S(bt, 0), n + 6, -7.0f);
    daecl_noise_key key = {.seed = 0x123456789ull, .stream = 2, .epoch = 3, .pos0 = 100};
    daecl_shape shape = {1, {(uint32_t)dim, 1, 1, 1}};
    CALL(corrupt, bound, S(bx, 3), S(bt, 5), rows, dim, &shape, &key);
    assert_int_equal(affine_rows, rows);
    assert_int_equal(affine_dim, dim);
    assert_true(affine_key.seed == key.seed && affine_key.stream == 2 && affine_key.pos0 == 100);
    float *got = download(bt, n + 6);
    for (size_t i = 0; i < n + 6; i++) {
        size_t r = (i - 5) / dim, j = (i - 5) % dim;
        float want = i < 5 || i >= n + 5
                         ? -7.0f
                         : x[i - 2] * 2.0f + 0.5f + 100.0f * (float)(100 + r) + (float)j +
                               1000.0f * 3.0f + 10000.0f * (float)dim;
        if (!same_bits(got[i], want))
            fail_msg("corrupt element %zu = %.9g, want %.9g", i, got[i], want);
    }
    free(got);

    /* A slice past the end is refused before the plugin runs. */
    affine_rows = 0;
    REFUSED(corrupt, bound, S(bx, 4), S(bt, 5), rows, dim, &shape, &key);
    assert_int_equal(affine_rows, 0);
    /* A likelihood op on a corruption binding is refused. */
    REFUSED(lik_mean, bound, S(bx, 0), 1, 1, S(bt, 0));
    B->unbind(ctx, bound);

    /* The plugin's own sentence comes back, after the plugin and op it came
     * from, as the core words it for a plugin it runs itself. */
    CALL(bind, &affine_plugin, params, 2, &bound);
    memset(&err, 0, sizeof err);
    assert_int_equal(B->corrupt(ctx, bound, S(bx, 0), S(bt, 0), rows, dim, &shape, &key, &err),
                     DAECL_EPLUGIN);
    assert_string_equal(err.msg, "corruption plugin 'affine' failed in host_apply: "
                                 "affine refuses a negative scale");
    B->unbind(ctx, bound);
    B->unbind(ctx, NULL);
    free(x);
    B->free(ctx, bx);
    B->free(ctx, bt);
}

static void test_likelihood_ops_run_on_the_slices_and_pass_null_outputs(void **state)
{
    (void)state;
    size_t rows = 5, dim = 11, n = rows * dim, na = 2 * n;
    float params[2] = {0.25f, 3.0f};
    void *bound = NULL;
    CALL(bind, &probe_plugin, params, 2, &bound);
    float *x = random_floats(n + 3, 150, 0, 1);
    float *a = random_floats(na + 5, 160, -2, 2);
    daecl_buf *bx = upload(x, n + 3), *ba = upload(a, na + 5);
    daecl_buf *bn = alloc_elems(rows + 4), *bg = alloc_elems(na + 6), *bo = alloc_elems(n + 3);
    CALL(fill, S(bn, 0), rows + 4, -7.0f);
    CALL(fill, S(bg, 0), na + 6, -7.0f);
    CALL(fill, S(bo, 0), n + 3, -7.0f);

    CALL(lik_loss_grad, bound, S(bx, 3), S(ba, 5), rows, dim, 0.5f, S(bn, 2), S(bg, 4));
    assert_false(probe_nll_null || probe_grad_null);
    float *nll = download(bn, rows + 4), *grad = download(bg, na + 6);
    for (size_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (size_t j = 0; j < dim; j++) {
            float x_ = x[3 + r * dim + j], a0 = a[5 + r * 2 * dim + j];
            float a1 = a[5 + r * 2 * dim + dim + j];
            s += (double)((x_ - a0) * (x_ - a0) + a1);
            assert_true(same_bits(grad[4 + r * 2 * dim + j], 0.5f * (0.25f * (a0 - x_))));
            assert_true(grad[4 + r * 2 * dim + dim + j] == 1.5f);
        }
        assert_true(same_bits(nll[2 + r], (float)s));
    }
    assert_true(nll[0] == -7.0f && nll[1] == -7.0f && nll[rows + 2] == -7.0f);
    for (size_t e = 0; e < 4; e++)
        assert_true(grad[e] == -7.0f);
    assert_true(grad[na + 4] == -7.0f && grad[na + 5] == -7.0f);
    free(nll);
    free(grad);

    /* NULL outputs reach the plugin as NULL pointers. */
    CALL(fill, S(bg, 0), na + 6, -7.0f);
    CALL(lik_loss_grad, bound, S(bx, 3), S(ba, 5), rows, dim, 0.5f, S(bn, 2), NONE);
    assert_true(!probe_nll_null && probe_grad_null);
    CALL(lik_loss_grad, bound, S(bx, 3), S(ba, 5), rows, dim, 0.5f, NONE, NONE);
    assert_true(probe_nll_null && probe_grad_null);
    grad = download(bg, na + 6);
    for (size_t e = 0; e < na + 6; e++)
        assert_true(grad[e] == -7.0f);
    free(grad);

    CALL(lik_mean, bound, S(ba, 5), rows, dim, S(bo, 3));
    float *mean = download(bo, n + 3);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < dim; j++)
            assert_true(same_bits(mean[3 + r * dim + j], a[5 + r * 2 * dim + j] + 0.25f));
    assert_true(mean[0] == -7.0f && mean[2] == -7.0f);
    free(mean);

    daecl_noise_key key = {.seed = 9, .stream = DAECL_STREAM_SAMPLE, .substep = 1, .pos0 = 40};
    CALL(lik_sample, bound, S(ba, 5), rows, dim, &key, S(bo, 2));
    float *out = download(bo, n + 3);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < dim; j++)
            assert_true(same_bits(out[2 + r * dim + j], a[5 + r * 2 * dim + dim + j] +
                                                            100.0f * (float)(40 + r) + (float)j));
    free(out);

    /* a must hold k * dim values per row: one short is refused. */
    REFUSED(lik_mean, bound, S(ba, 6), rows, dim, S(bo, 0));
    REFUSED(lik_loss_grad, bound, S(bx, 3), S(ba, 5), rows, dim, 1.0f, NONE, S(bg, 7));
    daecl_shape one = {1, {1, 1, 1, 1}};
    REFUSED(corrupt, bound, S(bx, 0), S(bo, 0), 1, 1, &one, &key);
    B->unbind(ctx, bound);
    free(x);
    free(a);
    B->free(ctx, bx);
    B->free(ctx, ba);
    B->free(ctx, bn);
    B->free(ctx, bg);
    B->free(ctx, bo);
}

static void test_bind_refuses_backends_and_too_many_params(void **state)
{
    (void)state;
    void *bound = NULL;
    REFUSED(bind, plugin, NULL, 0, &bound);
    assert_null(bound);
    float many[DAECL_MAX_PACKED_PARAMS + 1] = {0};
    REFUSED(bind, &affine_plugin, many, DAECL_MAX_PACKED_PARAMS + 1, &bound);
    assert_null(bound);
}

/* ---- the same bits on any thread count -------------------------------------------- */

/* Runs one elementwise case on every context: the buffers are uploaded from
 * init (sizes n[]), run() does the op, and every buffer must come back the
 * same bits as on one thread. */
enum { MAX_BUFS = 4 };

typedef void (*ew_run)(void *c, daecl_buf *const *bufs, size_t arg);

static void ew_case(const char *what, size_t n_bufs, const size_t *n, float *const *init,
                    ew_run run, size_t arg)
{
    multi m;
    multi_open(&m, "auto");
    float *ref[MAX_BUFS] = {0};
    for (int i = 0; i < N_CTX; i++) {
        daecl_buf *bufs[MAX_BUFS];
        for (size_t k = 0; k < n_bufs; k++)
            bufs[k] = upload_to(m.c[i], init[k], n[k]);
        run(m.c[i], bufs, arg);
        for (size_t k = 0; k < n_bufs; k++) {
            float *got = download_from(m.c[i], bufs[k], n[k]);
            if (i == 0) {
                ref[k] = got;
            } else {
                same_as_one_thread(ref[k], got, n[k], ctx_threads[i], what);
                free(got);
            }
            B->free(m.c[i], bufs[k]);
        }
    }
    for (size_t k = 0; k < n_bufs; k++)
        free(ref[k]);
    multi_close(&m);
}

enum { EW_ROWS = 1001, EW_DIM = 77 }; /* 77,077 values: 5 chunks, the last short */

static void run_bias_act(void *c, daecl_buf *const *b, size_t act)
{
    check_ok(B->bias_act(c, S(b[0], 0), S(b[1], 0), EW_ROWS, EW_DIM, (daecl_act)act, &err),
             "bias_act");
}

static void run_act_grad(void *c, daecl_buf *const *b, size_t act)
{
    check_ok(B->act_grad(c, S(b[0], 0), S(b[1], 0), EW_ROWS * EW_DIM, (daecl_act)act, &err),
             "act_grad");
}

static void run_col_sum(void *c, daecl_buf *const *b, size_t beta_x4)
{
    check_ok(B->col_sum(c, S(b[0], 0), EW_ROWS, EW_DIM * 4 + 1, (float)beta_x4 / 4.0f,
                        S(b[1], 0), &err),
             "col_sum");
}

static void run_gather(void *c, daecl_buf *const *b, size_t unused)
{
    (void)unused;
    check_ok(B->gather(c, S(b[0], 0), EW_DIM, S(b[1], 0), EW_ROWS, S(b[2], 0), &err), "gather");
}

static const daecl_optim_step optim_steps[] = {
    {.kind = DAECL_OPTIM_SGD, .lr = 0.1f},
    {.kind = DAECL_OPTIM_SGD, .nesterov = 1, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f},
    {.kind = DAECL_OPTIM_ADAM, .lr = 0.01f, .weight_decay = 0.05f, .beta1 = 0.9f, .beta2 = 0.999f,
     .eps = 1e-8f, .bias_corr1 = 0.19f, .bias_corr2 = 0.002f},
    {.kind = DAECL_OPTIM_ADAMW, .lr = 0.01f, .weight_decay = 0.05f, .beta1 = 0.8f, .beta2 = 0.99f,
     .eps = 1e-8f, .bias_corr1 = 0.36f, .bias_corr2 = 0.0199f},
};

static void run_optim(void *c, daecl_buf *const *b, size_t which)
{
    const daecl_optim_step *st = &optim_steps[which];
    for (int step = 0; step < 3; step++)
        check_ok(B->optim_update(c, st, S(b[0], 0), S(b[1], 0), S(b[2], 0), S(b[3], 0),
                                 EW_ROWS * EW_DIM, &err),
                 "optim_update");
}

static void test_elementwise_ops_give_the_same_bits_on_any_thread_count(void **state)
{
    (void)state;
    size_t n = EW_ROWS * EW_DIM, wide = EW_ROWS * (EW_DIM * 4 + 1);
    float *z = random_floats(n, 300, -5, 5), *bias = random_floats(EW_DIM, 301, -1, 1);
    float *h = random_floats(n, 302, -1, 1), *dh = random_floats(n, 303, -2, 2);
    for (size_t ai = 0; ai < 4; ai++) {
        char what[64];
        snprintf(what, sizeof what, "bias_act act %d", (int)all_acts[ai]);
        ew_case(what, 2, (const size_t[]){n, EW_DIM}, (float *const[]){z, bias}, run_bias_act,
                all_acts[ai]);
        snprintf(what, sizeof what, "act_grad act %d", (int)all_acts[ai]);
        ew_case(what, 2, (const size_t[]){n, n}, (float *const[]){dh, h}, run_act_grad,
                all_acts[ai]);
    }

    float *x = random_floats(wide, 304, -1, 1), *old = random_floats(EW_DIM * 4 + 1, 305, -1, 1);
    ew_case("col_sum beta 0", 2, (const size_t[]){wide, EW_DIM * 4 + 1}, (float *const[]){x, old},
            run_col_sum, 0);
    ew_case("col_sum beta 0.75", 2, (const size_t[]){wide, EW_DIM * 4 + 1},
            (float *const[]){x, old}, run_col_sum, 3);

    size_t data_rows = 3000;
    float *data = random_floats(data_rows * EW_DIM, 306, -1, 1);
    uint32_t *idx = malloc(EW_ROWS * sizeof *idx);
    assert_non_null(idx);
    for (size_t r = 0; r < EW_ROWS; r++)
        idx[r] = (uint32_t)((r * 7919u) % data_rows);
    float *out = random_floats(n, 307, -1, 1);
    ew_case("gather", 3, (const size_t[]){data_rows * EW_DIM, EW_ROWS, n},
            (float *const[]){data, (float *)(void *)idx, out}, run_gather, 0);

    float *w = random_floats(n, 308, -1, 1), *g = random_floats(n, 309, -0.1f, 0.1f);
    float *s1 = random_floats(n, 310, -0.01f, 0.01f), *s2 = random_floats(n, 311, 0, 0.01f);
    for (size_t o = 0; o < sizeof optim_steps / sizeof optim_steps[0]; o++) {
        char what[64];
        snprintf(what, sizeof what, "optim_update kind %u", optim_steps[o].kind);
        ew_case(what, 4, (const size_t[]){n, n, n, n}, (float *const[]){w, g, s1, s2}, run_optim,
                o);
    }
    free(z), free(bias), free(h), free(dh), free(x), free(old), free(data), free(idx);
    free(out), free(w), free(g), free(s1), free(s2);
}

/* Plugins' host ops on chunks of rows: the real Gaussian corruption and
 * likelihood, whose noise follows the key's pos0 into every chunk. */
enum { PL_ROWS = 2001, PL_DIM = 33 };

static void *bind_to(void *c, const daecl_plugin *p, size_t n_over, const char *name, double v)
{
    float packed[DAECL_MAX_PACKED_PARAMS];
    size_t n = n_over ? test_pack_params(p, packed, 1, name, v) : test_pack_params(p, packed, 0);
    void *bound = NULL;
    check_ok(B->bind(c, p, packed, n, &bound, &err), "bind");
    return bound;
}

static void run_corrupt(void *c, daecl_buf *const *b, size_t unused)
{
    (void)unused;
    void *bound = bind_to(c, test_plugin(DAECL_KIND_CORRUPTION, "gaussian"), 1, "sigma", 0.3);
    daecl_noise_key key = {
        .seed = 77, .stream = DAECL_STREAM_TRAIN_CORRUPTION, .epoch = 5, .pos0 = 12};
    daecl_shape shape = {1, {PL_DIM, 1, 1, 1}};
    check_ok(B->corrupt(c, bound, S(b[0], 0), S(b[1], 0), PL_ROWS, PL_DIM, &shape, &key, &err),
             "corrupt");
    B->unbind(c, bound);
}

static void run_loss_grad(void *c, daecl_buf *const *b, size_t unused)
{
    (void)unused;
    void *bound = bind_to(c, test_plugin(DAECL_KIND_LIKELIHOOD, "gaussian"), 0, NULL, 0);
    check_ok(B->lik_loss_grad(c, bound, S(b[0], 0), S(b[1], 0), PL_ROWS, PL_DIM, 0.25f,
                              S(b[2], 0), S(b[3], 0), &err),
             "lik_loss_grad");
    B->unbind(c, bound);
}

static void test_plugin_host_ops_give_the_same_bits_on_any_thread_count(void **state)
{
    (void)state;
    size_t n = PL_ROWS * PL_DIM;
    float *x = random_floats(n, 400, -1, 1), *xt = random_floats(n, 401, -1, 1);
    ew_case("corrupt (gaussian)", 2, (const size_t[]){n, n}, (float *const[]){x, xt}, run_corrupt,
            0);
    float *a = random_floats(n, 402, -1, 1), *nll = random_floats(PL_ROWS, 403, -1, 1);
    ew_case("lik_loss_grad (gaussian)", 4, (const size_t[]){n, n, PL_ROWS, n},
            (float *const[]){x, a, nll, xt}, run_loss_grad, 0);
    free(x), free(xt), free(a), free(nll);
}

/* A corruption that refuses rows whose first value is above 10 and says
 * which row (counted from the start of the whole call, through pos0). */
static int picky_apply(const float *x, float *xt, size_t n_rows, size_t dim,
                       const daecl_shape *shape, const daecl_noise_key *key, const float *p,
                       daecl_err *e)
{
    (void)p;
    (void)shape;
    for (size_t r = 0; r < n_rows; r++) {
        if (x[r * dim] > 10.0f) {
            e->status = DAECL_EPLUGIN;
            snprintf(e->msg, sizeof e->msg, "picky refuses row %llu",
                     (unsigned long long)(key->pos0 + r));
            return DAECL_EPLUGIN;
        }
        memcpy(xt + r * dim, x + r * dim, dim * sizeof *x);
    }
    return 0;
}

static const daecl_corruption_ops picky_ops = {.size = sizeof(daecl_corruption_ops),
                                               .host_apply = picky_apply};
static const daecl_plugin picky_plugin = {DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
                                          .name = "picky", .version = "0.0.1",
                                          .summary = "test", .license = "MIT",
                                          .ops = &picky_ops};

/* When chunks of several threads fail, the lowest chunk's sentence comes
 * back, on every thread count and every time. */
static void test_the_first_failing_rows_are_reported_on_any_thread_count(void **state)
{
    (void)state;
    size_t rows = 4000, dim = 40, n = rows * dim; /* 160,000 values: 10 chunks */
    float *x = random_floats(n, 500, -1, 1);
    x[3700 * dim] = 11.0f; /* late chunks fail too, and may finish first */
    x[2500 * dim] = 11.0f;
    x[1234 * dim] = 11.0f;
    x[1235 * dim] = 11.0f;
    multi m;
    multi_open(&m, "auto");
    for (int i = 0; i < N_CTX; i++) {
        void *c = m.c[i];
        daecl_buf *bx = upload_to(c, x, n), *bt = upload_to(c, x, n);
        void *bound = NULL;
        check_ok(B->bind(c, &picky_plugin, NULL, 0, &bound, &err), "bind");
        daecl_noise_key key = {.seed = 1, .stream = DAECL_STREAM_TRAIN_CORRUPTION};
        for (int round = 0; round < 20; round++) {
            memset(&err, 0, sizeof err);
            daecl_shape shape = {1, {(uint32_t)dim, 1, 1, 1}};
            assert_int_equal(B->corrupt(c, bound, S(bx, 0), S(bt, 0), rows, dim, &shape, &key,
                                        &err),
                             DAECL_EPLUGIN);
            if (strcmp(err.msg, "corruption plugin 'picky' failed in host_apply: picky refuses "
                                "row 1234") != 0)
                fail_msg("%u threads, round %d: %s", ctx_threads[i], round, err.msg);
        }
        B->unbind(c, bound);
        B->free(c, bx);
        B->free(c, bt);
    }
    multi_close(&m);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_describe_reports_the_host_cpu_as_the_one_default_device),
        cmocka_unit_test(test_schema_has_threads_and_gemm_defaulting_to_auto),
        cmocka_unit_test(test_threads_parameter_sizes_the_pool_and_openblas_stays_single),
        cmocka_unit_test(test_alloc_gives_aligned_zeroed_buffers_even_for_zero_bytes),
        cmocka_unit_test(test_write_read_fill_copy_honour_offsets),
        cmocka_unit_test(test_out_of_range_access_is_refused_and_changes_nothing),
        cmocka_unit_test(test_bias_act_matches_reference_for_every_activation),
        cmocka_unit_test(test_sigmoid_stays_accurate_and_finite_for_large_inputs),
        cmocka_unit_test(test_act_grad_multiplies_by_derivative_from_output),
        cmocka_unit_test(test_col_sum_accumulates_in_double_with_beta),
        cmocka_unit_test(test_sum_accumulates_in_double),
        cmocka_unit_test(test_gather_copies_indexed_rows_and_refuses_bad_indices),
        cmocka_unit_test(test_optim_update_follows_pytorch_sgd_adam_adamw),
        cmocka_unit_test(test_optim_update_refuses_missing_state),
        cmocka_unit_test(test_corrupt_runs_the_plugin_on_the_slices_with_its_params),
        cmocka_unit_test(test_likelihood_ops_run_on_the_slices_and_pass_null_outputs),
        cmocka_unit_test(test_bind_refuses_backends_and_too_many_params),
        cmocka_unit_test(test_elementwise_ops_give_the_same_bits_on_any_thread_count),
        cmocka_unit_test(test_plugin_host_ops_give_the_same_bits_on_any_thread_count),
        cmocka_unit_test(test_the_first_failing_rows_are_reported_on_any_thread_count),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
