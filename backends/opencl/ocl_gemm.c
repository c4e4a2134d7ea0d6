/* daecl opencl backend — GEMM: CLBlast's Sgemm (row-major, offsets in
 * elements) on the backend's queue, or daecl's own tiled kernel
 * (kernels/gemm.cl) where CLBlast cannot go (precompiled binaries) or when
 * asked for with `gemm: daecl`. */
#include <clblast_c.h>
#include <limits.h>
#include <stdio.h>

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
    if (rc)
        daecl__ocl_gemm_release(o);
    return rc;
}

void daecl__ocl_gemm_release(daecl__ocl *o)
{
    daecl__ocl_kernel_release(&o->gemm_kern[0]);
    daecl__ocl_kernel_release(&o->gemm_kern[1]);
    if (o->gemm_program)
        clReleaseProgram(o->gemm_program);
    o->gemm_program = NULL;
    if (o->clblast_tmp)
        clReleaseMemObject(o->clblast_tmp);
    o->clblast_tmp = NULL;
    o->clblast_tmp_bytes = 0;
    /* CLBlast's program cache holds this context alive until the process
     * ends; a process that opens devices again (sweeps) would pile them up.
     * The cache is global: another open context just recompiles (its
     * programs are in the driver's own cache by then). */
    if (o->gemm_mode == DAECL__GEMM_CLBLAST && o->context)
        CLBlastClearCache();
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
 * it on the device at hand. */
static int clblast_gemm(daecl__ocl *o, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                        float alpha, daecl_slice a, size_t lda, daecl_slice b, size_t ldb,
                        float beta, daecl_slice c, size_t ldc, daecl_err *err)
{
    const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    size_t need = 0;
    CLBlastStatusCode st =
        CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, ta, tb, m, n, k, a.off, lda, b.off, ldb,
                                   c.off, ldc, &o->queue, &need);
    int rc = DAECL__OCL_CHECK(o, st, "CLBlastSGemmTempBufferSize", NULL, err);
    if (rc)
        return rc;
    if (need == 0)
        return DAECL__OCL_CHECK(o,
                                CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha,
                                             a.buf->mem, a.off, lda, b.buf->mem, b.off, ldb, beta,
                                             c.buf->mem, c.off, ldc, &o->queue, NULL),
                                "CLBlastSgemm", NULL, err);
    if (need > o->clblast_tmp_bytes) {
        if (o->clblast_tmp)
            clReleaseMemObject(o->clblast_tmp); /* freed once queued users finish */
        o->clblast_tmp = NULL;
        o->clblast_tmp_bytes = 0;
        cl_int cr;
        cl_mem tmp = clCreateBuffer(o->context, CL_MEM_READ_WRITE, need, NULL, &cr);
        if ((rc = DAECL__OCL_CHECK(o, cr, "clCreateBuffer", "GEMM scratch", err)))
            return rc;
        o->clblast_tmp = tmp;
        o->clblast_tmp_bytes = need;
    }
    return DAECL__OCL_CHECK(o,
                            CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, m, n, k,
                                                       alpha, a.buf->mem, a.off, lda, b.buf->mem,
                                                       b.off, ldb, beta, c.buf->mem, c.off, ldc,
                                                       &o->queue, NULL, o->clblast_tmp),
                            "CLBlastSgemmWithTempBuffer", NULL, err);
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
    if (o->gemm_mode == DAECL__GEMM_CLBLAST)
        return clblast_gemm(o, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, err);

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
