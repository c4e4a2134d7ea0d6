/* daecl opencl backend — daecl's GEMM kernels for CPU devices
 * (kernels/gemm_cpu.cl): their variants (MR, NV, VW, KU: a register tile
 * and a vector width fixed when the program compiles), the text that names
 * a variant, the variants `daecl tune` tries, building a variant's program
 * once per device, and launching it. ocl_gemm.c decides when they run. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_cpu_cl.h" /* gemm_cpu_src: kernels/clc_prelude.cl + kernels/gemm_cpu.cl */
#include "gemm_cpu_variants.h"
#include "ocl.h"

enum { N_FORMS = 3 }; /* nn, tn, nt */
static const char *const kernel_names[N_FORMS] = {"gemm_cpu_nn", "gemm_cpu_tn", "gemm_cpu_nt"};

/* Work-items per group along op(A)'s rows: POCL runs a group as one task,
 * so a group of 4 tiles sharing a panel of B costs one task's overhead. */
enum { GROUP_ROWS = 4 };

int daecl__ocl_cpuvar_valid(const daecl__ocl_cpuvar *v)
{
    return v->mr >= 1 && v->mr <= 8 && v->nv >= 1 && v->nv <= 4 && v->mr * v->nv <= 32 &&
           (v->vw == 4 || v->vw == 8 || v->vw == 16) && (v->ku == 1 || v->ku == 2 || v->ku == 4);
}

int daecl__ocl_cpuvar_equal(const daecl__ocl_cpuvar *a, const daecl__ocl_cpuvar *b)
{
    return a->mr == b->mr && a->nv == b->nv && a->vw == b->vw && a->ku == b->ku;
}

void daecl__ocl_cpuvar_describe(const daecl__ocl_cpuvar *v, char *out, size_t n)
{
    snprintf(out, n, "MR=%d NV=%d VW=%d KU=%d", v->mr, v->nv, v->vw, v->ku);
}

/* "MR=4 NV=2 VW=16 KU=1": each of the four once, in any order, separated
 * by spaces. */
int daecl__ocl_cpuvar_parse(const char *text, daecl__ocl_cpuvar *v)
{
    static const char *const names[4] = {"MR", "NV", "VW", "KU"};
    int vals[4] = {0}, seen[4] = {0};
    const char *s = text;
    for (;;) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        int i = 0;
        while (i < 4 && !(strncmp(s, names[i], 2) == 0 && s[2] == '='))
            i++;
        if (i == 4 || seen[i]++)
            return -1;
        s += 3;
        int x = 0, digits = 0;
        for (; *s >= '0' && *s <= '9' && digits < 3; s++, digits++)
            x = x * 10 + (*s - '0');
        if (!digits || (*s && *s != ' '))
            return -1;
        vals[i] = x;
    }
    for (int i = 0; i < 4; i++)
        if (!seen[i])
            return -1;
    *v = (daecl__ocl_cpuvar){vals[0], vals[1], vals[2], vals[3]};
    return daecl__ocl_cpuvar_valid(v) ? 0 : -1;
}

/* What `daecl tune` tries (gemm_cpu_variants.h), parsed once. */
static const char *const tried_text[] = {DAECL__OCL_CPU_GEMM_TRIED};
enum { N_TRIED = sizeof tried_text / sizeof tried_text[0] };
static daecl__ocl_cpuvar tried[N_TRIED];
static pthread_once_t tried_once = PTHREAD_ONCE_INIT;

static void parse_tried(void)
{
    for (size_t i = 0; i < N_TRIED; i++)
        if (daecl__ocl_cpuvar_parse(tried_text[i], &tried[i]) != 0)
            tried[i] = (daecl__ocl_cpuvar){4, 2, 8, 1}; /* a typo in the header */
}

size_t daecl__ocl_cpuvar_tried(const daecl__ocl_cpuvar **out)
{
    pthread_once(&tried_once, parse_tried);
    *out = tried;
    return N_TRIED;
}

/* 4 x 4 registers of 16 lanes where the device prefers 16 (AVX-512: 16
 * accumulators of its 32 registers; within 5 % of the best variant over
 * R1's step in bench/gemm_kernels.sh), else 4 x 2 of 8 (AVX2 has 16
 * registers: 4 x 4 would spill). A failed query gives the latter: a
 * choice of speed, never of results. */
void daecl__ocl_cpuvar_default(const daecl__ocl *o, daecl__ocl_cpuvar *v)
{
    cl_uint pref = 0;
    clGetDeviceInfo(o->device, CL_DEVICE_PREFERRED_VECTOR_WIDTH_FLOAT, sizeof pref, &pref, NULL);
    *v = pref >= 16 ? (daecl__ocl_cpuvar){4, 4, 16, 1} : (daecl__ocl_cpuvar){4, 2, 8, 1};
}

/* ---- programs ------------------------------------------------------------------------ */

size_t daecl__ocl_gemm_cpu_parts(const daecl__ocl_cpuvar *v, char *defines, size_t n,
                                 const char **parts, size_t max)
{
    if (max < 2)
        return 0;
    snprintf(defines, n, "#define MR %d\n#define NV %d\n#define VW %d\n#define KU %d\n", v->mr,
             v->nv, v->vw, v->ku);
    parts[0] = defines;
    parts[1] = gemm_cpu_src;
    return 2;
}

static void release_one(daecl__ocl_cpugemm *g)
{
    for (int f = 0; f < N_FORMS; f++)
        daecl__ocl_kernel_release(&g->kern[f]);
    if (g->program)
        clReleaseProgram(g->program);
    memset(g, 0, sizeof *g);
}

void daecl__ocl_gemm_cpu_release(daecl__ocl *o)
{
    for (int i = 0; i < o->n_cpu_gemm; i++)
        release_one(&o->cpu_gemm[i]);
    o->n_cpu_gemm = 0;
}

int daecl__ocl_gemm_cpu_get(daecl__ocl *o, const daecl__ocl_cpuvar *v, int *index, daecl_err *err)
{
    for (int i = 0; i < o->n_cpu_gemm; i++)
        if (daecl__ocl_cpuvar_equal(&o->cpu_gemm[i].var, v)) {
            *index = i;
            return 0;
        }
    char desc[64], name[96], defines[128];
    daecl__ocl_cpuvar_describe(v, desc, sizeof desc);
    if (!daecl__ocl_cpuvar_valid(v))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: the CPU GEMM variant %s is not one daecl builds; "
                               "MR 1-8, NV 1-4, MR NV at most 32, VW 4, 8 or 16, KU 1, 2 or 4",
                               desc);
    if (o->n_cpu_gemm == DAECL__OCL_MAX_CPU_GEMM)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: more than %d CPU GEMM variants on one device; "
                               "use fewer in the GEMM tuning (run `daecl tune` again)",
                               DAECL__OCL_MAX_CPU_GEMM);
    snprintf(name, sizeof name, "daecl-gemm-cpu(%s)", desc);
    const char *parts[2];
    size_t n = daecl__ocl_gemm_cpu_parts(v, defines, sizeof defines, parts, 2);
    daecl__ocl_cpugemm *g = &o->cpu_gemm[o->n_cpu_gemm];
    memset(g, 0, sizeof *g);
    g->var = *v;
    int rc = daecl__ocl_program_get(o, name, parts, n, &g->program, err);
    for (int f = 0; f < N_FORMS && rc == 0; f++)
        rc = daecl__ocl_kernel_create(o, g->program, kernel_names[f], &g->kern[f], err);
    if (rc) {
        release_one(g);
        return rc;
    }
    *index = o->n_cpu_gemm++;
    return 0;
}

/* ---- running ------------------------------------------------------------------------- */

int daecl__ocl_gemm_cpu_run(daecl__ocl *o, int index, int trans_a, int trans_b, size_t m, size_t n,
                            size_t k, float alpha, daecl_slice a, size_t lda, daecl_slice b,
                            size_t ldb, float beta, daecl_slice c, size_t ldc, daecl_err *err)
{
    if (index < 0 || index >= o->n_cpu_gemm)
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: CPU GEMM variant %d of %d ran before it was "
                               "built; " DAECL__OCL_BUG,
                               index, o->n_cpu_gemm);
    if (trans_a && trans_b) { /* no training step multiplies so: the tiled kernel's */
        int rc = o->gemm_kern[0].k ? 0 : daecl__ocl_gemm_init(o, err);
        return rc ? rc
                  : daecl__ocl_kernel_gemm(o, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                           beta, c, ldc, err);
    }
    const daecl__ocl_cpugemm *g = &o->cpu_gemm[index];
    const daecl__ocl_cpuvar *v = &g->var;
    int form = trans_b ? 2 : trans_a ? 1 : 0;
    /* Columns of C per work-item: NV vectors of VW in nn and tn, NV in nt. */
    size_t cols = trans_b ? (size_t)v->nv : (size_t)(v->nv * v->vw);
    size_t global[2] = {m / v->mr + (m % v->mr != 0), n / cols + (n % cols != 0)};
    size_t local[2] = {global[0] < GROUP_ROWS ? global[0] : GROUP_ROWS, 1};
    cl_mem am = a.buf->mem, bm = b.buf->mem, cm = c.buf->mem;
    cl_ulong um = m, un = n, uk = k, a_off_elems = a.off, b_off_elems = b.off, c_off_elems = c.off,
             ula = lda, ulb = ldb, ulc = ldc;
    cl_float al = alpha, be = beta;
    daecl__ocl_arg args[] = {DAECL__ARG(um),          DAECL__ARG(un),  DAECL__ARG(uk),
                             DAECL__ARG(al),          DAECL__ARG(be),  DAECL__ARG(am),
                             DAECL__ARG(a_off_elems), DAECL__ARG(ula), DAECL__ARG(bm),
                             DAECL__ARG(b_off_elems), DAECL__ARG(ulb), DAECL__ARG(cm),
                             DAECL__ARG(c_off_elems), DAECL__ARG(ulc)};
    return daecl__ocl_launch(o, &g->kern[form], args, DAECL__NARGS(args), 2, global, local, err);
}
