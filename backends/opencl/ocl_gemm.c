/* daecl opencl backend — GEMM: CLBlast's Sgemm (offsets in elements) on
 * the backend's queue, or daecl's own tiled kernel (kernels/gemm.cl) where
 * CLBlast cannot go (precompiled binaries) or when asked for with `gemm:
 * daecl`, or daecl's CPU kernels (kernels/gemm_cpu.cl, ocl_gemm_cpu.c) with
 * `gemm: daecl_cpu`; in CLBlast mode, each shape goes the way `daecl tune`
 * measured fastest (ocl_tune.c), when the device has a tuning, and an
 * untuned shape on a CPU device with `gemm: auto` to daecl's CPU kernel. */
#include <clblast_c.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gemm_cl.h" /* gemm_src: kernels/clc_prelude.cl + kernels/gemm.cl */
#include "ocl.h"

enum { GEMM_WG_SIDE = 16 };

size_t daecl__ocl_gemm_parts(const char **parts, size_t max)
{
    if (max < 1)
        return 0;
    parts[0] = gemm_src;
    return 1;
}

static void release_kernel(daecl__ocl *o)
{
    daecl__ocl_kernel_release(&o->gemm_kern[0]);
    daecl__ocl_kernel_release(&o->gemm_kern[1]);
    if (o->gemm_program)
        clReleaseProgram(o->gemm_program);
    o->gemm_program = NULL;
}

int daecl__ocl_gemm_init(daecl__ocl *o, daecl_err *err)
{
    if (o->gemm_program)
        return 0;
    const char *parts[1];
    size_t n = daecl__ocl_gemm_parts(parts, 1);
    int rc = daecl__ocl_program_get(o, "daecl-gemm", parts, n, &o->gemm_program, err);
    /* Two local tiles of 16 x 65 floats each (kernels/gemm.cl). */
    const size_t local_bytes = 2 * 16 * 65 * sizeof(float);
    if (rc == 0 && o->local_mem < local_bytes)
        rc = daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                             "daecl's GEMM kernel needs %zu bytes of local memory, but %s has "
                             "%lu; use backend.gemm: clblast",
                             local_bytes, o->info.name, (unsigned long)o->local_mem);
    static const char *const names[2] = {"gemm_tiled64", "gemm_tiled32"};
    for (int i = 0; i < 2 && rc == 0; i++) {
        rc = daecl__ocl_kernel_create(o, o->gemm_program, names[i], &o->gemm_kern[i], err);
        if (rc == 0 &&
            (o->gemm_kern[i].wg < GEMM_WG_SIDE * GEMM_WG_SIDE || o->max_item[1] < GEMM_WG_SIDE))
            rc = daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                                 "daecl's GEMM kernel needs work-groups of %d x %d work-items, "
                                 "but %s allows only %zu for it; use backend.gemm: clblast",
                                 GEMM_WG_SIDE, GEMM_WG_SIDE, o->info.name, o->gemm_kern[i].wg);
    }
    if (rc) /* only what this built: a CLBlast-mode device keeps its tuning */
        release_kernel(o);
    return rc;
}

/* CLBlast keeps one process-wide cache of programs, kernels and parameter
 * databases, and the 1.5.3 that Debian 12 ships races when two threads
 * fill it at once (a use-after-free in Database's copy under
 * AddressSanitizer, with replicas on two devices stepping in two threads;
 * fixed upstream in July 2023, CNugteren/CLBlast pull request 495). Every
 * CLBlast call, with the tuned set it runs under, holds this lock. The
 * calls only enqueue, so the devices still compute at once; first calls,
 * which compile, wait for each other. */
static pthread_mutex_t clblast_lock = PTHREAD_MUTEX_INITIALIZER;

void daecl__ocl_gemm_release(daecl__ocl *o)
{
    release_kernel(o);
    daecl__ocl_gemm_cpu_release(o);
    if (o->clblast_tmp)
        clReleaseMemObject(o->clblast_tmp);
    o->clblast_tmp = NULL;
    o->clblast_tmp_bytes = 0;
    daecl__ocl_tune_release(o);
    /* CLBlast's program cache holds this context alive until the process
     * ends; a process that opens devices again (sweeps) would pile them up.
     * The cache is global: another open context just recompiles (its
     * programs are in the driver's own cache by then). */
    if (o->gemm_mode == DAECL__GEMM_CLBLAST && o->context) {
        pthread_mutex_lock(&clblast_lock);
        CLBlastClearCache();
        pthread_mutex_unlock(&clblast_lock);
    }
}

/* A stored matrix (rows, cols) with row stride ld in slice s. */
static int matrix(const daecl__ocl *o, daecl_slice s, size_t rows, size_t cols, size_t ld,
                  const char *name, daecl_err *err)
{
    if (ld < cols || ld == 0)
        return daecl__ocl_fail(
            o->host, err, DAECL_EINVAL,
            "opencl backend: gemm was given ld%s = %zu for %s with %zu "
            "columns (it must be at least the column count, and 1); " DAECL__OCL_BUG,
            name, ld, name, cols);
    size_t extent = 0;
    if (rows > 0 && cols > 0 &&
        (__builtin_mul_overflow(rows - 1, ld, &extent) ||
         __builtin_add_overflow(extent, cols, &extent)))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: gemm matrix %s of %zu rows with stride %zu "
                               "overflows; " DAECL__OCL_BUG,
                               name, rows, ld);
    return daecl__ocl_span(o, s, extent, "gemm", name, err);
}

/* CLBlast's scratch for the indirect GEMM path, grown once to the largest
 * need and then reused: no allocation per step. beta = 0 over NaN needs no
 * zeroing first: CLBlast 1.5 does not read C when beta is 0 (its
 * StoreResults* check IsZero(beta)); tests/test_backend_conformance.c checks
 * it on the device at hand.
 *
 * Row-major, CLBlast's indirect kernel transposes C through scratch on
 * every call; the same product as C^T (n, m) = op(B)^T op(A)^T in
 * column-major, the same memory, needs no transposition of C. Which is
 * faster depends on device and shape, so `daecl tune` measures both. */
int daecl__ocl_clblast_gemm(daecl__ocl *o, int col_major, int trans_a, int trans_b, size_t m,
                            size_t n, size_t k, float alpha, daecl_slice a, size_t lda,
                            daecl_slice b, size_t ldb, float beta, daecl_slice c, size_t ldc,
                            daecl_err *err)
{
    if (col_major) { /* C^T = op(B)^T op(A)^T: swap the operands and m, n */
        daecl_slice s = a;
        a = b, b = s;
        size_t t = lda;
        lda = ldb, ldb = t;
        t = m, m = n, n = t;
        int x = trans_a;
        trans_a = trans_b, trans_b = x;
    }
    const CLBlastLayout layout = col_major ? CLBlastLayoutColMajor : CLBlastLayoutRowMajor;
    const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    size_t need = 0;
    CLBlastStatusCode st = CLBlastSGemmTempBufferSize(layout, ta, tb, m, n, k, a.off, lda, b.off,
                                                      ldb, c.off, ldc, &o->queue, &need);
    int rc = DAECL__OCL_CHECK(o, st, "CLBlastSGemmTempBufferSize", NULL, err);
    if (rc)
        return rc;
    if (need == 0)
        return DAECL__OCL_CHECK(
            o,
            DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                              CLBlastSgemm(layout, ta, tb, m, n, k, alpha, a.buf->mem, a.off, lda,
                                           b.buf->mem, b.off, ldb, beta, c.buf->mem, c.off, ldc,
                                           &o->queue, NULL)),
            "CLBlastSgemm", NULL, err);
    if (need > o->clblast_tmp_bytes) {
        if (o->clblast_tmp)
            clReleaseMemObject(o->clblast_tmp); /* freed once queued users finish */
        o->clblast_tmp = NULL;
        o->clblast_tmp_bytes = 0;
        cl_int cr;
        cl_mem tmp = DAECL__OCL_FAULTY_CREATE(
            o, DAECL__FAULT_ALLOC, &cr,
            clCreateBuffer(o->context, CL_MEM_READ_WRITE, need, NULL, &cr));
        if ((rc = DAECL__OCL_CHECK(o, cr, "clCreateBuffer", "GEMM scratch", err)))
            return rc;
        o->clblast_tmp = tmp;
        o->clblast_tmp_bytes = need;
    }
    return DAECL__OCL_CHECK(o,
                            DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                                              CLBlastSgemmWithTempBuffer(
                                                  layout, ta, tb, m, n, k, alpha, a.buf->mem, a.off,
                                                  lda, b.buf->mem, b.off, ldb, beta, c.buf->mem,
                                                  c.off, ldc, &o->queue, NULL, o->clblast_tmp)),
                            "CLBlastSgemmWithTempBuffer", NULL, err);
}

/* A CLBlast failure under tuned parameters says where they came from: a
 * tuning file is the likelier culprit than CLBlast. */
static int tuned_failure(daecl__ocl *o, int rc, daecl_err *err)
{
    const char *file = daecl__ocl_tune_file(o);
    if (!rc || !file || !err)
        return rc;
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return daecl__ocl_fail(o->host, err, rc,
                           "%s (with the GEMM tuning from %s: delete that file or run `daecl tune "
                           "CONFIG` again)",
                           msg, file);
}

int daecl__ocl_gemm(void *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                    daecl_slice a, size_t lda, daecl_slice b, size_t ldb, float beta, daecl_slice c,
                    size_t ldc, daecl_err *err)
{
    daecl__ocl *o = ctx;
    int rc;
    if ((rc = matrix(o, a, trans_a ? k : m, trans_a ? m : k, lda, "A", err)) ||
        (rc = matrix(o, b, trans_b ? n : k, trans_b ? k : n, ldb, "B", err)) ||
        (rc = matrix(o, c, m, n, ldc, "C", err)))
        return rc;
    if (m == 0 || n == 0)
        return 0;
    if (k == 0) /* op(A) op(B) is the zero matrix: C = beta C (CLBlast wants k > 0) */
        return daecl__ocl_mat_scale(o, c, m, n, ldc, beta, err);
    if (o->gemm_mode == DAECL__GEMM_CLBLAST) {
        daecl__ocl_gemm_by by;
        int cpu = -1;
        pthread_mutex_lock(&clblast_lock);
        rc = daecl__ocl_tune_route(o, trans_a, trans_b, m, n, k, &by, &cpu, err);
        int clblast = by == DAECL__GEMM_BY_CLBLAST_ROW || by == DAECL__GEMM_BY_CLBLAST_COL;
        if (!rc && clblast)
            rc = daecl__ocl_clblast_gemm(o, by == DAECL__GEMM_BY_CLBLAST_COL, trans_a, trans_b, m,
                                         n, k, alpha, a, lda, b, ldb, beta, c, ldc, err);
        pthread_mutex_unlock(&clblast_lock);
        if (!rc && by == DAECL__GEMM_BY_DAECL_CPU)
            rc = daecl__ocl_gemm_cpu_run(o, cpu, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                         beta, c, ldc, err);
        if (rc || by != DAECL__GEMM_BY_DAECL)
            return rc ? tuned_failure(o, rc, err) : 0;
    }
    if (o->gemm_mode == DAECL__GEMM_DAECL_CPU)
        return daecl__ocl_gemm_cpu_run(o, o->cpu_gemm_fixed, trans_a, trans_b, m, n, k, alpha, a,
                                       lda, b, ldb, beta, c, ldc, err);
    return daecl__ocl_kernel_gemm(o, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
                                  err);
}

int daecl__ocl_kernel_gemm(daecl__ocl *o, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                           float alpha, daecl_slice a, size_t lda, daecl_slice b, size_t ldb,
                           float beta, daecl_slice c, size_t ldc, daecl_err *err)
{
    if (!o->gemm_kern[0].k)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: gemm ran before daecl's GEMM kernel was "
                               "built; " DAECL__OCL_BUG);
    /* A (m, k) or (k, m), B (k, n) or (n, k), C (m, n); one 16 x 16 group
     * per 64 x 64 tile of C, or per 32 x 32 tile when 64-tiles would leave
     * compute units idle (128 x 1000 is 32 tiles of 64, on a GPU with 132). */
    size_t tiles64 = (m / 64 + (m % 64 != 0)) * (n / 64 + (n % 64 != 0));
    int small = tiles64 < 2 * (size_t)o->info.compute_units;
    size_t tile = small ? 32 : 64;
    cl_mem am = a.buf->mem, bm = b.buf->mem, cm = c.buf->mem;
    cl_ulong um = m, un = n, uk = k, a_off_elems = a.off, b_off_elems = b.off, c_off_elems = c.off,
             ula = lda, ulb = ldb, ulc = ldc;
    cl_float al = alpha, be = beta;
    cl_int ta = trans_a != 0, tb = trans_b != 0;
    daecl__ocl_arg args[] = {
        DAECL__ARG(um),          DAECL__ARG(un),  DAECL__ARG(uk),          DAECL__ARG(al),
        DAECL__ARG(be),          DAECL__ARG(ta),  DAECL__ARG(tb),          DAECL__ARG(am),
        DAECL__ARG(a_off_elems), DAECL__ARG(ula), DAECL__ARG(bm),          DAECL__ARG(b_off_elems),
        DAECL__ARG(ulb),         DAECL__ARG(cm),  DAECL__ARG(c_off_elems), DAECL__ARG(ulc)};
    size_t tiles_n = n / tile + (n % tile != 0);
    size_t tiles_m = m / tile + (m % tile != 0);
    size_t global[2] = {tiles_n * GEMM_WG_SIDE, tiles_m * GEMM_WG_SIDE};
    size_t local[2] = {GEMM_WG_SIDE, GEMM_WG_SIDE};
    return daecl__ocl_launch(o, &o->gemm_kern[small], args, DAECL__NARGS(args), 2, global, local,
                             err);
}
