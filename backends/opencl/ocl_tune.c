/* daecl opencl backend — GEMM tuning's search (`daecl tune`, the
 * tune_gemm op): CLBlast's defaults, daecl's tiled kernel and (on CPU
 * devices) each variant of daecl's CPU kernels timed at a model's shapes, a
 * budgeted random-and-greedy search over CLBlast's parameter sets (each
 * candidate compiled once, checked against the host, timed after a warm-up
 * call), the choice of routes per shape, and storing it. The sets, the
 * file and the routing are ocl_tuning.c's. Test hook: DAECL_TUNE_FAKE
 * replaces measured times with fixed ones (below). */
#include <clblast_c.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ocl_tune.h"

enum { MAX_SETS = DAECL__OCL_TUNE_MAX_SETS, MAX_SHAPES = DAECL__OCL_TUNE_MAX_SHAPES };
enum { NX = DAECL__OCL_TUNE_NX, ND = DAECL__OCL_TUNE_ND, MAX_CANDIDATES = 256 };

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the search ---------------------------------------------------------------------- */

enum { H_ROW, H_COL, H_DAECL, H_DAECL_CPU, H_ROUTED }; /* how a measured GEMM runs */
enum { N_LAYOUTS = 2 };                   /* H_ROW, H_COL */

/* ---- DAECL_TUNE_FAKE: fixed timings, a test hook ---------------------------------------- */

/* DAECL_TUNE_FAKE="WHO[/FORM]:SECONDS,..." makes the search take SECONDS per
 * call for WHO instead of timing it (each call still runs once, checked):
 * WHO is clblast, daecl (the tiled kernel), cpu (any CPU variant) or a CPU
 * variant ("MR=8 NV=2 VW=16 KU=1"); FORM (nn, nt, tn, tt) limits the item
 * to those transposes. The most specific item wins (a variant over cpu, a
 * FORM over none); what no item names is timed. So a test can say which
 * route is fastest without depending on the machine's load. */
enum { MAX_FAKES = 16, FAKE_CLBLAST = 0, FAKE_DAECL, FAKE_CPU, FAKE_VARIANT };

typedef struct fake {
    int who, form; /* form: ta * 2 + tb, -1: any */
    daecl__ocl_cpuvar var;
    double seconds;
} fake;

static int bad_fake(const daecl__ocl *o, const char *spec, daecl_err *err)
{
    return daecl__ocl_fail(o->host, err, DAECL_EUSAGE,
                           "DAECL_TUNE_FAKE='%.200s' is not understood; give WHO[/FORM]:SECONDS "
                           "items, comma-separated, with WHO clblast, daecl, cpu or a CPU variant "
                           "such as 'MR=4 NV=2 VW=16 KU=1', FORM nn, nt, tn or tt (e.g. "
                           "DAECL_TUNE_FAKE=clblast:0.01,cpu/nt:0.001), or unset it",
                           spec);
}

static int read_fakes(const daecl__ocl *o, fake *out, int *n, daecl_err *err)
{
    static const char *const forms[4] = {"nn", "nt", "tn", "tt"};
    const char *spec = getenv("DAECL_TUNE_FAKE");
    *n = 0;
    if (!spec || !*spec)
        return 0;
    char buf[512];
    if (strlen(spec) >= sizeof buf)
        return bad_fake(o, spec, err);
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *item = buf, *next; item; item = next) {
        if ((next = strchr(item, ',')))
            *next++ = '\0';
        char *colon = strrchr(item, ':'), *slash = strchr(item, '/'), *end;
        if (!colon || *n == MAX_FAKES)
            return bad_fake(o, spec, err);
        *colon = '\0';
        fake *f = &out[*n];
        f->seconds = strtod(colon + 1, &end);
        f->form = -1;
        if (*end || !(f->seconds > 0) || !isfinite(f->seconds))
            return bad_fake(o, spec, err);
        if (slash) {
            *slash = '\0';
            for (int i = 0; i < 4; i++)
                if (strcmp(slash + 1, forms[i]) == 0)
                    f->form = i;
            if (f->form < 0)
                return bad_fake(o, spec, err);
        }
        f->who = strcmp(item, "clblast") == 0 ? FAKE_CLBLAST
                 : strcmp(item, "daecl") == 0 ? FAKE_DAECL
                 : strcmp(item, "cpu") == 0   ? FAKE_CPU
                 : daecl__ocl_cpuvar_parse(item, &f->var) == 0 ? FAKE_VARIANT
                                                                : -1;
        if (f->who < 0)
            return bad_fake(o, spec, err);
        (*n)++;
    }
    daecl__ocl_say(o, DAECL_LOG_WARN,
                   "DAECL_TUNE_FAKE=%s replaces measured GEMM times in tuning (a test hook); "
                   "unset it for real work",
                   spec);
    return 0;
}

/* The fixed seconds for `how` at shape s with CPU variant v, or 0. */
static double fake_seconds(const fake *fakes, int n, int how, const daecl_gemm_shape *s,
                           const daecl__ocl_cpuvar *v)
{
    int form = (int)(s->trans_a != 0) * 2 + (int)(s->trans_b != 0), best = -1;
    double t = 0;
    for (int i = 0; i < n; i++) {
        const fake *f = &fakes[i];
        int cpu = how == H_DAECL_CPU;
        int match = f->who == FAKE_CLBLAST ? how == H_ROW || how == H_COL
                    : f->who == FAKE_DAECL ? how == H_DAECL
                    : f->who == FAKE_CPU   ? cpu
                                           : cpu && daecl__ocl_cpuvar_equal(&f->var, v);
        int score = (f->who == FAKE_VARIANT) * 2 + (f->form >= 0);
        if (match && (f->form < 0 || f->form == form) && score >= best)
            best = score, t = f->seconds;
    }
    return t;
}

/* ---- the search's state ---- */

/* A candidate and its seconds per call at each shape, per layout. */
typedef struct cand {
    daecl__ocl_tset set;
    int ok; /* ran and computed right at every shape */
    double t[MAX_SHAPES][N_LAYOUTS];
} cand;

typedef struct bench {
    daecl__ocl *o;
    daecl_gemm_shape *shapes;
    size_t n;
    struct daecl_buf a, b, c; /* operands sized for the largest shape */
    float *ha, *hb, *hc;      /* host A and B (random in [-1, 1]), C read back */
    double t0, budget_s;
    uint64_t rng;
    cand *cands;
    int n_cands, n_direct;
    daecl__ocl_tset prev[MAX_SETS]; /* the sets of the tuning this one replaces */
    int n_prev;
    double def[MAX_SHAPES][N_LAYOUTS]; /* CLBlast's defaults; INFINITY: not measured */
    double dk[MAX_SHAPES];             /* daecl's tiled kernel; INFINITY: not available */
    double dc[MAX_SHAPES];             /* daecl's fastest CPU variant; INFINITY: none */
    int dcv[MAX_SHAPES];               /* which (index into o->cpu_gemm) */
    double untuned[MAX_SHAPES];        /* what gemm() ran without a tuning; INFINITY: failed */
    int cpu;                           /* the CPU variant H_DAECL_CPU runs (o->cpu_gemm) */
    fake fakes[MAX_FAKES];             /* DAECL_TUNE_FAKE */
    int n_fakes;
    double best[MAX_SHAPES];           /* fastest seen at each shape so far */
    double switch_s;                   /* seconds to change the set CLBlast holds */
} bench;

static double flops(const daecl_gemm_shape *s)
{
    return 2.0 * (double)s->m * (double)s->n * (double)s->k;
}

static double min2(double a, double b)
{
    return a < b ? a : b;
}

static int call_gemm(bench *bn, int how, const daecl_gemm_shape *s, daecl_err *err)
{
    int ta = s->trans_a != 0, tb = s->trans_b != 0;
    size_t m = s->m, n = s->n, k = s->k, lda = ta ? m : k, ldb = tb ? k : n;
    daecl_slice a = {&bn->a, 0}, b = {&bn->b, 0}, c = {&bn->c, 0};
    switch (how) {
    case H_ROW:
    case H_COL:
        return daecl__ocl_clblast_gemm(bn->o, how == H_COL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb,
                                       s->beta, c, n, err);
    case H_DAECL:
        return daecl__ocl_kernel_gemm(bn->o, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, s->beta, c, n,
                                      err);
    case H_DAECL_CPU:
        return daecl__ocl_gemm_cpu_run(bn->o, bn->cpu, ta, tb, m, n, k, 1.0f, a, lda, b, ldb,
                                       s->beta, c, n, err);
    default:
        return daecl__ocl_gemm(bn->o, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, s->beta, c, n, err);
    }
}

static int finish(bench *bn, daecl_err *err)
{
    return DAECL__OCL_CHECK(bn->o, clFinish(bn->o->queue), "clFinish", NULL, err);
}

/* What C holds before the checked call: NaN when beta = 0 (the GEMM must
 * overwrite every element), else a value the GEMM scales by beta. */
static float c_before(const daecl_gemm_shape *s)
{
    return s->beta == 0.0f ? NAN : 0.5f;
}

/* Checks C against the host: every element finite, and the corners plus 60
 * random elements within float's accumulation bound 2 k eps (sum|a b| +
 * |beta c|) of a double-precision dot product. */
static int verify(bench *bn, const daecl_gemm_shape *s, daecl_err *err)
{
    daecl__ocl *o = bn->o;
    size_t m = s->m, n = s->n, k = s->k, lda = s->trans_a ? m : k, ldb = s->trans_b ? k : n;
    int rc = DAECL__OCL_CHECK(o,
                              DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                                                clEnqueueReadBuffer(o->queue, bn->c.mem, CL_TRUE, 0,
                                                                    m * n * sizeof(float), bn->hc,
                                                                    0, NULL, NULL)),
                              "clEnqueueReadBuffer", "GEMM tuning result", err);
    if (rc)
        return rc;
    for (size_t i = 0; i < m * n; i++)
        if (!isfinite(bn->hc[i]))
            return daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                                   "the GEMM left element %zu of C unwritten or not finite", i);
    for (int q = 0; q < 64; q++) {
        size_t i = q == 0 || q == 2 ? 0 : q < 4 ? m - 1 : daecl__ocl_tune_random(&bn->rng) % m;
        size_t j = q == 0 || q == 1 ? 0 : q < 4 ? n - 1 : daecl__ocl_tune_random(&bn->rng) % n;
        double c0 = s->beta == 0.0f ? 0.0 : (double)s->beta * c_before(s);
        double ref = c0, mag = fabs(c0);
        for (size_t p = 0; p < k; p++) {
            double av = s->trans_a ? bn->ha[p * lda + i] : bn->ha[i * lda + p];
            double bv = s->trans_b ? bn->hb[j * ldb + p] : bn->hb[p * ldb + j];
            ref += av * bv;
            mag += fabs(av * bv);
        }
        double got = bn->hc[i * n + j];
        if (fabs(got - ref) > 2.0 * (double)k * FLT_EPSILON * mag + 1e-30)
            return daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                                   "the GEMM computes C[%zu][%zu] = %.9g where %.9g is right", i, j,
                                   got, ref);
    }
    return 0;
}

/* Seconds per call of `how` at shape s: a checked warm-up call (which
 * compiles, the first time), one timed call, then the fastest of five
 * batches of about 40 ms: the least is the figure least disturbed by other
 * work on the machine, and five of them keep a lucky one from crowning a
 * candidate. A call slower than 3 x bar (0: none) is timed once. */
static int time_shape(bench *bn, int how, const daecl_gemm_shape *s, double bar, double *out,
                      daecl_err *err)
{
    daecl__ocl *o = bn->o;
    const cl_float pattern = c_before(s);
    int rc = DAECL__OCL_CHECK(o,
                              DAECL__OCL_FAULTY(o, DAECL__FAULT_ENQUEUE,
                                                clEnqueueFillBuffer(o->queue, bn->c.mem, &pattern,
                                                                    sizeof pattern, 0,
                                                                    bn->c.n_bytes, 0, NULL, NULL)),
                              "clEnqueueFillBuffer", "GEMM tuning result", err);
    if (rc || (rc = call_gemm(bn, how, s, err)) || (rc = finish(bn, err)) ||
        (rc = verify(bn, s, err)))
        return rc;
    double fixed = how == H_ROUTED ? 0
                                   : fake_seconds(bn->fakes, bn->n_fakes, how, s,
                                                  &o->cpu_gemm[bn->cpu < 0 ? 0 : bn->cpu].var);
    if (fixed > 0) {
        *out = fixed;
        return 0;
    }
    double t = seconds();
    if ((rc = call_gemm(bn, how, s, err)) || (rc = finish(bn, err)))
        return rc;
    double once = seconds() - t, fastest = once;
    if (bar > 0 && once > 3 * bar) {
        *out = once;
        return 0;
    }
    size_t reps = once >= 0.04 ? 1 : (size_t)(0.04 / (once > 1e-6 ? once : 1e-6)) + 1;
    if (reps > 2000)
        reps = 2000;
    for (int batch = 0; batch < 5; batch++) {
        t = seconds();
        for (size_t r = 0; r < reps && !rc; r++)
            rc = call_gemm(bn, how, s, err);
        if (rc || (rc = finish(bn, err)))
            return rc;
        fastest = min2(fastest, (seconds() - t) / (double)reps);
    }
    *out = fastest;
    return 0;
}

/* Weighted seconds of one training step's GEMMs with per-shape times t. */
static double step_time(const bench *bn, const double *t)
{
    double sum = 0;
    for (size_t i = 0; i < bn->n; i++)
        sum += bn->shapes[i].runs * t[i];
    return sum;
}

/* A candidate's best time at each shape (either layout) into t. */
static void cand_times(const bench *bn, const cand *c, double *t)
{
    for (size_t i = 0; i < bn->n; i++)
        t[i] = c->ok ? min2(c->t[i][H_ROW], c->t[i][H_COL]) : INFINITY;
}

static double elapsed(const bench *bn)
{
    return seconds() - bn->t0;
}

/* Runs candidate c at every shape in both layouts. A failing or wrong
 * candidate is skipped, not an error: CLBlast refuses some sets. */
static void evaluate(bench *bn, cand *c)
{
    daecl__ocl *o = bn->o;
    daecl_err e = {0};
    char desc[400];
    daecl__ocl_tset_describe(&c->set, desc, sizeof desc);
    int rc = daecl__ocl_tune_hold(o, &c->set, &e);
    for (size_t i = 0; i < bn->n && !rc; i++)
        for (int l = 0; l < N_LAYOUTS && !rc; l++)
            rc = time_shape(bn, l, &bn->shapes[i], bn->best[i], &c->t[i][l], &e);
    /* The candidate's program: CLBlast would keep every one until exit. */
    CLBlastClearCache();
    int number = bn->n_cands;
    if (rc) {
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "tuning: candidate %d (%s) skipped: %s", number, desc,
                       e.msg);
        return;
    }
    c->ok = 1;
    double t[MAX_SHAPES], total_flops = 0, best_step = 0;
    cand_times(bn, c, t);
    for (size_t i = 0; i < bn->n; i++) {
        bn->best[i] = bn->best[i] > 0 ? min2(bn->best[i], t[i]) : t[i];
        total_flops += bn->shapes[i].runs * flops(&bn->shapes[i]);
    }
    best_step = step_time(bn, bn->best);
    daecl__ocl_say(o, DAECL_LOG_INFO,
                   "tuning: candidate %d: %.2f GFLOP/s over the shapes (best so far "
                   "%.2f), %.0f s of %.0f; %s",
                   number, total_flops / step_time(bn, t) / 1e9, total_flops / best_step / 1e9,
                   elapsed(bn), bn->budget_s, desc);
}

static int seen_before(const bench *bn, const daecl__ocl_tset *s)
{
    for (int i = 0; i < bn->n_cands; i++)
        if (daecl__ocl_tset_equal(&bn->cands[i].set, s))
            return 1;
    return 0;
}

/* The candidate of kind `direct` with the least step time, or NULL. */
static const cand *best_of_kind(const bench *bn, int direct)
{
    const cand *best = NULL;
    double best_t = INFINITY, t[MAX_SHAPES];
    for (int i = 0; i < bn->n_cands; i++) {
        const cand *c = &bn->cands[i];
        if (!c->ok || c->set.direct != direct)
            continue;
        cand_times(bn, c, t);
        double st = step_time(bn, t);
        if (st < best_t)
            best_t = st, best = c;
    }
    return best;
}

/* Direct candidates are worth more compiles while some shape runs fastest
 * on one: measured, since which kernel wins depends on device and shape. */
static int direct_wins_somewhere(const bench *bn)
{
    double t[MAX_SHAPES];
    for (size_t i = 0; i < bn->n; i++) {
        double d = INFINITY, x = INFINITY;
        for (int c = 0; c < bn->n_cands; c++) {
            cand_times(bn, &bn->cands[c], t);
            if (bn->cands[c].set.direct)
                d = min2(d, t[i]);
            else
                x = min2(x, t[i]);
        }
        if (d < x)
            return 1;
    }
    return 0;
}

/* The next candidate: a seed, else a neighbour of the best of its kind, or
 * (one time in five) a random valid set. 0 when nothing new is found. */
static int next_candidate(bench *bn, const daecl__ocl_tset *seeds, int n_seeds,
                          daecl__ocl_tset *out)
{
    daecl__ocl *o = bn->o;
    for (int i = 0; i < n_seeds; i++)
        if (daecl__ocl_tset_valid(o, &seeds[i]) && !seen_before(bn, &seeds[i])) {
            /* Direct seeds cost several compiles (one per transpose case):
             * only while half the budget is left. */
            if (seeds[i].direct && elapsed(bn) > bn->budget_s / 2 && bn->n_cands > 0)
                continue;
            *out = seeds[i];
            return 1;
        }
    const cand *bx = best_of_kind(bn, 0), *bd = best_of_kind(bn, 1);
    int direct = bd && direct_wins_somewhere(bn) && 2 * bn->n_direct <= bn->n_cands;
    const daecl__ocl_tset *from = direct ? &bd->set : bx ? &bx->set : NULL;
    for (int tries = 0; tries < 2000; tries++) {
        daecl__ocl_tset s;
        if (from) {
            s = *from;
        } else { /* no indirect one ran yet: companions from the first seed */
            s = seeds[0];
            s.direct = 0;
        }
        int fresh = !from || daecl__ocl_tune_random(&bn->rng) % 5 == 0;
        daecl__ocl_tset_vary(o, &bn->rng, &s, direct, fresh);
        if (daecl__ocl_tset_valid(o, &s) && !seen_before(bn, &s)) {
            *out = s;
            return 1;
        }
    }
    return 0;
}

/* Starting points, valid or not on a given device (invalid ones are
 * skipped): the sets of the tuning being replaced, so that tuning again
 * goes on from there; for CPUs, no local memory, 64 x 64 tiles and 8-wide
 * vectors (16 GFLOP/s at 128 x 1000 x 784 on POCL, 2 cores, where CLBlast's
 * defaults ran at 3); for GPUs, CLBlast's usual shapes with local memory. */
static int seeds_for(const daecl__ocl *o, const bench *bn, daecl__ocl_tset *out)
{
    static const size_t direct_small[ND] = {16, 8, 8, 8, 8, 2, 1, 1, 1, 1};
    static const size_t direct_wide[ND] = {32, 8, 8, 8, 8, 2, 4, 4, 1, 1};
    /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
    static const size_t cpu_a[NX] = {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 8};
    static const size_t cpu_b[NX] = {0, 1, 32, 2, 4, 4, 64, 4, 4, 64, 0, 0, 0, 0, 8, 8};
    static const size_t gpu_a[NX] = {0, 1, 32, 2, 16, 16, 64, 8, 8, 64, 1, 1, 0, 0, 4, 4};
    static const size_t gpu_b[NX] = {0, 1, 16, 2, 16, 16, 128, 16, 16, 128, 1, 1, 0, 0, 4, 4};
    const size_t *xs[2] = {daecl__ocl_tune_is_cpu(o) ? cpu_a : gpu_a,
                           daecl__ocl_tune_is_cpu(o) ? cpu_b : gpu_b};
    int n = 0;
    for (int i = 0; i < bn->n_prev; i++)
        out[n++] = bn->prev[i];
    int first = n;
    for (int i = 0; i < 2; i++) {
        out[n].direct = 0;
        memcpy(out[n].x, xs[i], sizeof out[n].x);
        memcpy(out[n].d, direct_small, sizeof out[n].d);
        n++;
    }
    for (int i = 0; i < (daecl__ocl_tune_is_cpu(o) ? 1 : 2); i++) {
        out[n] = out[first];
        out[n].direct = 1;
        memcpy(out[n].d, i ? direct_wide : direct_small, sizeof out[n].d);
        n++;
    }
    return n;
}

/* ---- confirming ---- */

enum { MAX_FINALISTS = 6 };

static void add_finalist(int *fin, int *n, int c)
{
    for (int i = 0; i < *n; i++)
        if (fin[i] == c)
            return;
    if (c >= 0 && *n < MAX_FINALISTS)
        fin[(*n)++] = c;
}

/* The finalists timed again, one after another. The search's times lie
 * minutes apart, and on a shared machine the load moves more between them
 * than good candidates differ: a quiet moment would crown the candidate it
 * happened to. Finalists: the three with the least step time and each
 * shape's fastest; their fresh times replace the old ones, and the rest
 * leave the choice. */
static void confirm(bench *bn)
{
    int fin[MAX_FINALISTS], n_fin = 0;
    double t[MAX_SHAPES];
    for (int k = 0; k < 3; k++) {
        int best = -1;
        double best_t = INFINITY;
        for (int c = 0; c < bn->n_cands; c++) {
            int taken = 0;
            for (int i = 0; i < n_fin; i++)
                taken |= fin[i] == c;
            cand_times(bn, &bn->cands[c], t);
            if (!taken && step_time(bn, t) < best_t)
                best_t = step_time(bn, t), best = c;
        }
        add_finalist(fin, &n_fin, best);
    }
    for (size_t i = 0; i < bn->n; i++) {
        int best = -1;
        double best_t = INFINITY;
        for (int c = 0; c < bn->n_cands; c++) {
            cand_times(bn, &bn->cands[c], t);
            if (t[i] < best_t)
                best_t = t[i], best = c;
        }
        add_finalist(fin, &n_fin, best);
    }
    if (n_fin < 2)
        return;
    daecl__ocl_say(bn->o, DAECL_LOG_INFO, "tuning: timing the %d best candidates again", n_fin);
    for (int f = 0; f < n_fin; f++) {
        cand *c = &bn->cands[fin[f]];
        double fresh[MAX_SHAPES][N_LAYOUTS];
        daecl_err e = {0};
        int rc = daecl__ocl_tune_hold(bn->o, &c->set, &e);
        for (size_t i = 0; i < bn->n && !rc; i++)
            for (int l = 0; l < N_LAYOUTS && !rc; l++)
                rc = time_shape(bn, l, &bn->shapes[i], 0, &fresh[i][l], &e);
        CLBlastClearCache();
        if (rc)
            c->ok = 0; /* ran before: the machine, not the set; drop it to be safe */
        else
            memcpy(c->t, fresh, bn->n * sizeof fresh[0]);
    }
    for (int c = 0; c < bn->n_cands; c++) {
        int final = 0;
        for (int i = 0; i < n_fin; i++)
            final |= fin[i] == c;
        if (!final)
            bn->cands[c].ok = 0;
    }
}

/* ---- choosing ---- */

typedef struct plan {
    daecl__ocl_tuning tu; /* the routes and sets, ready to store */
    double t[MAX_SHAPES]; /* seconds per call of each shape's route */
    double step;          /* their weighted sum */
} plan;

/* Shape i's time on the faster of daecl's kernels, the tiled one and the
 * CPU variants. */
static double daecl_time(const bench *bn, size_t i)
{
    return min2(bn->dk[i], bn->dc[i]);
}

/* Routes every shape to the fastest of: CLBlast at the times ct (per
 * layout) as set `set`, daecl's tiled kernel and its fastest CPU variant. */
static void route_shapes(const bench *bn, plan *pl, int i, const double ct[N_LAYOUTS], int set)
{
    daecl__ocl_route *r = &pl->tu.shapes[i].r;
    int col = ct[H_COL] < ct[H_ROW];
    r->by = col ? DAECL__GEMM_BY_CLBLAST_COL : DAECL__GEMM_BY_CLBLAST_ROW;
    r->set = set;
    pl->t[i] = ct[col];
    if (bn->dk[i] < pl->t[i] && bn->dk[i] <= bn->dc[i]) {
        r->by = DAECL__GEMM_BY_DAECL;
        r->set = -1;
        pl->t[i] = bn->dk[i];
    } else if (bn->dc[i] < pl->t[i]) {
        int v = daecl__ocl_tune_cpuvar(&pl->tu, &bn->o->cpu_gemm[bn->dcv[i]].var);
        if (v < 0)
            return; /* more variants than a tuning holds: CLBlast here */
        pl->tu.cpu_built[v] = bn->dcv[i];
        r->by = DAECL__GEMM_BY_DAECL_CPU;
        r->set = v;
        pl->t[i] = bn->dc[i];
    }
}

static int by_clblast(const daecl__ocl_route *r)
{
    return r->by == DAECL__GEMM_BY_CLBLAST_ROW || r->by == DAECL__GEMM_BY_CLBLAST_COL;
}

/* The default route for unlisted shapes: CLBlast as `set`, in the layout
 * with the least step time over the listed ones. */
static void route_default(const bench *bn, plan *pl, double (*t)[N_LAYOUTS], int set)
{
    double row = 0, col = 0;
    for (size_t i = 0; i < bn->n; i++) {
        row += bn->shapes[i].runs * t[i][H_ROW];
        col += bn->shapes[i].runs * t[i][H_COL];
    }
    pl->tu.dflt.by = col < row ? DAECL__GEMM_BY_CLBLAST_COL : DAECL__GEMM_BY_CLBLAST_ROW;
    pl->tu.dflt.set = set;
}

static void plan_init(const bench *bn, plan *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->tu.n_shapes = (int)bn->n;
    for (size_t i = 0; i < bn->n; i++) {
        daecl__ocl_tshape *s = &pl->tu.shapes[i];
        s->ta = bn->shapes[i].trans_a != 0, s->tb = bn->shapes[i].trans_b != 0;
        s->m = bn->shapes[i].m, s->n = bn->shapes[i].n, s->k = bn->shapes[i].k;
    }
}

/* CLBlast's defaults (with daecl's kernels where faster); INFINITY when the
 * defaults were not measured. */
static void plan_defaults(const bench *bn, plan *pl)
{
    plan_init(bn, pl);
    for (size_t i = 0; i < bn->n; i++)
        route_shapes(bn, pl, (int)i, bn->def[i], -1);
    route_default(bn, pl, (double(*)[N_LAYOUTS])bn->def, -1);
    pl->step = step_time(bn, pl->t);
    for (size_t i = 0; i < bn->n; i++)
        if (!isfinite(min2(bn->def[i][H_ROW], bn->def[i][H_COL])))
            pl->step = INFINITY; /* not measured: not a choice */
}

/* Tuned sets: the candidate with the least step time for every shape, then
 * up to MAX_SETS - 1 more where one is 10% faster at a shape (past the
 * timing noise: each set is one more program to build at start-up) and
 * saves more than two switches of CLBlast's parameters (one there, one
 * back), which the step time then counts. */
static void plan_sets(const bench *bn, plan *pl)
{
    plan_init(bn, pl);
    pl->step = INFINITY;
    double best_t = INFINITY, t[MAX_SHAPES];
    int g = -1;
    for (int c = 0; c < bn->n_cands; c++) {
        if (!bn->cands[c].ok)
            continue;
        cand_times(bn, &bn->cands[c], t);
        for (size_t i = 0; i < bn->n; i++)
            t[i] = min2(t[i], daecl_time(bn, i));
        double st = step_time(bn, t);
        if (st < best_t)
            best_t = st, g = c;
    }
    if (g < 0)
        return;
    int used[MAX_SETS] = {g};
    pl->tu.sets[0] = bn->cands[g].set;
    pl->tu.n_sets = 1;
    for (size_t i = 0; i < bn->n; i++)
        route_shapes(bn, pl, (int)i, bn->cands[g].t[i], 0);
    route_default(bn, pl, (double(*)[N_LAYOUTS])bn->cands[g].t, 0);
    for (size_t i = 0; i < bn->n; i++) {
        int fastest = -1;
        double ft = INFINITY;
        for (int c = 0; c < bn->n_cands; c++) {
            double ct = bn->cands[c].ok ? min2(bn->cands[c].t[i][H_ROW], bn->cands[c].t[i][H_COL])
                                        : INFINITY;
            if (ct < ft)
                ft = ct, fastest = c;
        }
        if (fastest < 0 || !(ft < 0.9 * pl->t[i]) || !(pl->t[i] - ft > 2 * bn->switch_s))
            continue;
        int s = 0;
        while (s < pl->tu.n_sets && used[s] != fastest)
            s++;
        if (s == pl->tu.n_sets) {
            if (s == MAX_SETS)
                continue;
            used[s] = fastest;
            pl->tu.sets[s] = bn->cands[fastest].set;
            pl->tu.n_sets++;
        }
        route_shapes(bn, pl, (int)i, bn->cands[fastest].t[i], s);
    }
    pl->step = step_time(bn, pl->t);
    for (size_t i = 0; i < bn->n; i++)
        if (by_clblast(&pl->tu.shapes[i].r) && pl->tu.shapes[i].r.set > 0)
            pl->step += 2.0 * bn->shapes[i].runs * bn->switch_s;
}

/* What a change of the set CLBlast holds costs: CLBlast 1.5 rebuilds a
 * parameter database per override (0.8 ms each, three per set, on POCL's
 * CPU device), so routing shapes to several sets has a price per GEMM. */
static void measure_switch(bench *bn)
{
    const daecl__ocl_tset *a = NULL, *b = NULL;
    for (int c = 0; c < bn->n_cands && !b; c++)
        if (bn->cands[c].ok) {
            if (!a)
                a = &bn->cands[c].set;
            else
                b = &bn->cands[c].set;
        }
    if (!b)
        return; /* one set at most: nothing to switch */
    daecl_err e = {0};
    if (daecl__ocl_tune_hold(bn->o, a, &e) != 0)
        return;
    double t = seconds();
    int n = 0;
    for (; n < 6 && daecl__ocl_tune_hold(bn->o, n % 2 ? a : b, &e) == 0; n++)
        ;
    bn->switch_s = n ? (seconds() - t) / n : 0;
    daecl__ocl_say(bn->o, DAECL_LOG_DEBUG, "tuning: changing CLBlast's parameters takes %.2f ms",
                   bn->switch_s * 1e3);
}

/* ---- tune_gemm --------------------------------------------------------------------------- */

static int check_shapes(const daecl__ocl *o, const daecl_gemm_shape *shapes, size_t n,
                        double budget_s, size_t *max_a, size_t *max_b, size_t *max_c,
                        daecl_err *err)
{
    if (n == 0 || n > MAX_SHAPES || !(budget_s >= 0) || !isfinite(budget_s))
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "opencl backend: tune_gemm was given %zu shapes (1 to %d) and a "
                               "budget of %g s; " DAECL__OCL_BUG,
                               n, MAX_SHAPES, budget_s);
    *max_a = *max_b = *max_c = 1;
    for (size_t i = 0; i < n; i++) {
        const daecl_gemm_shape *s = &shapes[i];
        /* CLBlast's kernels take int sizes. */
        if (s->trans_a > 1 || s->trans_b > 1 || s->m == 0 || s->n == 0 || s->k == 0 ||
            s->m > INT_MAX || s->n > INT_MAX || s->k > INT_MAX || s->runs == 0 ||
            !isfinite(s->beta) || fabsf(s->beta) > 1e3f)
            return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                                   "opencl backend: tune_gemm was given the shape %llu x %llu x "
                                   "%llu (transposes %u, %u, runs %u); " DAECL__OCL_BUG,
                                   (unsigned long long)s->m, (unsigned long long)s->n,
                                   (unsigned long long)s->k, s->trans_a, s->trans_b, s->runs);
        uint64_t ab = s->m * s->k, bb = s->k * s->n, cb = s->m * s->n;
        uint64_t largest = ab > bb ? ab : bb;
        largest = largest > cb ? largest : cb;
        if (largest > o->info.max_alloc_bytes / sizeof(float) || largest > SIZE_MAX / 8)
            return daecl__ocl_fail(o->host, err, DAECL_ENOMEM,
                                   "GEMM tuning: an operand of the %llu x %llu x %llu GEMM does "
                                   "not fit one allocation on %s; lower train.batch_size or the "
                                   "layer widths",
                                   (unsigned long long)s->m, (unsigned long long)s->n,
                                   (unsigned long long)s->k, o->info.name);
        *max_a = ab > *max_a ? (size_t)ab : *max_a;
        *max_b = bb > *max_b ? (size_t)bb : *max_b;
        *max_c = cb > *max_c ? (size_t)cb : *max_c;
    }
    return 0;
}

static int bench_buffers(bench *bn, size_t na, size_t nb, size_t nc, daecl_err *err)
{
    daecl__ocl *o = bn->o;
    bn->ha = malloc(na * sizeof(float));
    bn->hb = malloc(nb * sizeof(float));
    bn->hc = malloc(nc * sizeof(float));
    if (!bn->ha || !bn->hb || !bn->hc)
        return daecl__ocl_fail(o->host, err, DAECL_ENOMEM,
                               "GEMM tuning: out of host memory for %zu floats of operands",
                               na + nb + nc);
    for (size_t i = 0; i < na; i++)
        bn->ha[i] = (float)((double)(daecl__ocl_tune_random(&bn->rng) >> 11) * 0x1p-52 - 1.0);
    for (size_t i = 0; i < nb; i++)
        bn->hb[i] = (float)((double)(daecl__ocl_tune_random(&bn->rng) >> 11) * 0x1p-52 - 1.0);
    struct {
        struct daecl_buf *buf;
        size_t n;
        const float *host;
    } bufs[3] = {{&bn->a, na, bn->ha}, {&bn->b, nb, bn->hb}, {&bn->c, nc, NULL}};
    for (int i = 0; i < 3; i++) {
        cl_int cr;
        bufs[i].buf->n_bytes = bufs[i].n * sizeof(float);
        bufs[i].buf->mem = DAECL__OCL_FAULTY_CREATE(
            o, DAECL__FAULT_ALLOC, &cr,
            clCreateBuffer(o->context, CL_MEM_READ_WRITE, bufs[i].buf->n_bytes, NULL, &cr));
        int rc = DAECL__OCL_CHECK(o, cr, "clCreateBuffer", "GEMM tuning operand", err);
        if (rc) {
            bufs[i].buf->mem = NULL;
            return rc;
        }
        if (bufs[i].host &&
            (rc = DAECL__OCL_CHECK(o,
                                   DAECL__OCL_FAULTY(
                                       o, DAECL__FAULT_ENQUEUE,
                                       clEnqueueWriteBuffer(o->queue, bufs[i].buf->mem, CL_TRUE, 0,
                                                            bufs[i].buf->n_bytes, bufs[i].host, 0,
                                                            NULL, NULL)),
                                   "clEnqueueWriteBuffer", "GEMM tuning operand", err)))
            return rc;
    }
    return 0;
}

static void bench_release(bench *bn)
{
    struct daecl_buf *bufs[3] = {&bn->a, &bn->b, &bn->c};
    for (int i = 0; i < 3; i++)
        if (bufs[i]->mem)
            clReleaseMemObject(bufs[i]->mem);
    free(bn->ha);
    free(bn->hb);
    free(bn->hc);
    free(bn->cands);
}

/* Every variant of daecl's CPU kernels that tune tries, at every shape
 * (about a second of compiling each on POCL): each shape keeps its
 * fastest in dc and dcv. Only on CPU devices: on a GPU they leave most of
 * it idle (no local memory, one work-item per register tile). */
static void measure_cpu_variants(bench *bn)
{
    daecl__ocl *o = bn->o;
    const daecl__ocl_cpuvar *vars;
    size_t n_vars = daecl__ocl_cpuvar_tried(&vars);
    for (size_t v = 0; v < n_vars; v++) {
        char desc[64];
        daecl__ocl_cpuvar_describe(&vars[v], desc, sizeof desc);
        daecl_err e = {0};
        int rc = daecl__ocl_gemm_cpu_get(o, &vars[v], &bn->cpu, &e);
        double t[MAX_SHAPES], total_flops = 0;
        for (size_t i = 0; i < bn->n && !rc; i++) {
            double bar = min2(daecl_time(bn, i), bn->best[i] > 0 ? bn->best[i] : INFINITY);
            rc = time_shape(bn, H_DAECL_CPU, &bn->shapes[i], isfinite(bar) ? bar : 0, &t[i], &e);
            total_flops += bn->shapes[i].runs * flops(&bn->shapes[i]);
        }
        if (rc) {
            daecl__ocl_say(o, DAECL_LOG_DEBUG, "tuning: daecl's CPU kernel %s fails: %s", desc,
                           e.msg);
            continue;
        }
        for (size_t i = 0; i < bn->n; i++)
            if (t[i] < bn->dc[i])
                bn->dc[i] = t[i], bn->dcv[i] = bn->cpu;
        daecl__ocl_say(o, DAECL_LOG_INFO,
                       "tuning: daecl's CPU kernel %s: %.2f GFLOP/s over the shapes", desc,
                       total_flops / step_time(bn, t) / 1e9);
    }
}

/* CLBlast's defaults in both layouts and daecl's kernels, at every shape;
 * what cannot run (or runs wrong) stays INFINITY. */
static void measure_baselines(bench *bn)
{
    daecl__ocl *o = bn->o;
    daecl_err e = {0};
    int defaults = !daecl__ocl_tune_defaults_gone(o->device);
    if (!defaults)
        daecl__ocl_say(o, DAECL_LOG_INFO,
                       "tuning: CLBlast's built-in parameters were replaced earlier in "
                       "this process, so they are not measured");
    for (size_t i = 0; i < bn->n; i++) {
        bn->def[i][H_ROW] = bn->def[i][H_COL] = bn->dk[i] = bn->dc[i] = INFINITY;
        bn->dcv[i] = -1;
        for (int l = 0; l < N_LAYOUTS && defaults; l++)
            if (time_shape(bn, l, &bn->shapes[i], 0, &bn->def[i][l], &e) != 0) {
                bn->def[i][l] = INFINITY;
                daecl__ocl_say(o, DAECL_LOG_DEBUG, "tuning: CLBlast's defaults fail: %s", e.msg);
            }
        bn->best[i] = min2(bn->def[i][H_ROW], bn->def[i][H_COL]);
        if (!isfinite(bn->best[i]))
            bn->best[i] = 0;
    }
    /* Without a tuning, gemm() ran CLBlast's defaults (row-major), or on a
     * CPU device with `gemm: auto` daecl's CPU kernel: the report's before. */
    if (o->cpu_auto)
        bn->cpu = o->cpu_gemm_fixed; /* H_DAECL_CPU's variant, until the variants are tried */
    for (size_t i = 0; i < bn->n; i++) {
        bn->untuned[i] = o->cpu_auto ? INFINITY : bn->def[i][H_ROW];
        if (o->cpu_auto &&
            time_shape(bn, H_DAECL_CPU, &bn->shapes[i], 0, &bn->untuned[i], &e) != 0) {
            bn->untuned[i] = INFINITY;
            daecl__ocl_say(o, DAECL_LOG_DEBUG, "tuning: daecl's CPU kernel fails: %s", e.msg);
        }
    }
    /* daecl's kernel needs 16 x 16 work-groups and 8 KiB of local memory. */
    if (!o->gemm_kern[0].k && daecl__ocl_gemm_init(o, &e) != 0)
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "tuning: daecl's GEMM kernel does not build: %s", e.msg);
    for (size_t i = 0; i < bn->n && o->gemm_kern[0].k; i++)
        if (time_shape(bn, H_DAECL, &bn->shapes[i], bn->best[i], &bn->dk[i], &e) != 0) {
            bn->dk[i] = INFINITY;
            daecl__ocl_say(o, DAECL_LOG_DEBUG, "tuning: daecl's GEMM kernel fails: %s", e.msg);
        }
    if (daecl__ocl_tune_is_cpu(o))
        measure_cpu_variants(bn);
}

/* Fills the shapes' report from the stored plan and the routed timing. */
static void report(bench *bn, const plan *pl, const double *after)
{
    for (size_t i = 0; i < bn->n; i++) {
        daecl_gemm_shape *s = &bn->shapes[i];
        double f = flops(s);
        s->before = isfinite(bn->untuned[i]) ? f / bn->untuned[i] / 1e9 : 0;
        s->after = isfinite(after[i]) && after[i] > 0 ? f / after[i] / 1e9 : 0;
        daecl__ocl_tune_describe_route(&pl->tu, &pl->tu.shapes[i].r, s->choice, sizeof s->choice);
    }
}

static int store(daecl__ocl *o, plan *pl, const bench *bn, daecl_err *err)
{
    for (size_t i = 0; i < bn->n; i++) {
        daecl__ocl_tshape *s = &pl->tu.shapes[i];
        double f = flops(&bn->shapes[i]);
        s->gflops = isfinite(pl->t[i]) ? f / pl->t[i] / 1e9 : 0;
        s->gflops_untuned = isfinite(bn->def[i][H_ROW]) ? f / bn->def[i][H_ROW] / 1e9 : 0;
        s->gflops_daecl = isfinite(bn->dk[i]) ? f / bn->dk[i] / 1e9 : 0;
        s->gflops_daecl_cpu = isfinite(bn->dc[i]) ? f / bn->dc[i] / 1e9 : 0;
    }
    return daecl__ocl_tune_store(o, &pl->tu, err);
}

static int search_and_store(bench *bn, daecl_err *err)
{
    daecl__ocl *o = bn->o;
    measure_baselines(bn);
    daecl__ocl_tset seeds[MAX_SETS + 4];
    int n_seeds = seeds_for(o, bn, seeds), n_ok = 0;
    /* At least one candidate, and up to three tries for one that runs. */
    while (bn->n_cands < MAX_CANDIDATES &&
           ((n_ok == 0 && bn->n_cands < 3) || elapsed(bn) < bn->budget_s)) {
        cand *c = &bn->cands[bn->n_cands];
        memset(c, 0, sizeof *c);
        if (!next_candidate(bn, seeds, n_seeds, &c->set))
            break; /* every reachable set was tried */
        evaluate(bn, c);
        n_ok += c->ok;
        bn->n_direct += c->set.direct;
        bn->n_cands++;
    }
    plan *pa = malloc(sizeof *pa), *pb = malloc(sizeof *pb);
    int rc = 0;
    if (!pa || !pb) {
        rc = daecl__ocl_fail(o->host, err, DAECL_ENOMEM, "GEMM tuning: out of memory");
        goto done;
    }
    confirm(bn);
    measure_switch(bn);
    plan_defaults(bn, pa);
    plan_sets(bn, pb);
    /* Tuned sets must win by 2%, past the timing noise, to replace
     * CLBlast's own parameters. */
    plan *pl = pb->step < 0.98 * pa->step ? pb : pa;
    if (!isfinite(pl->step)) {
        rc = daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                             "GEMM tuning on %s found nothing that runs: no CLBlast parameters "
                             "and none of daecl's kernels; `DAECL_LOG=debug daecl tune ...` shows "
                             "why",
                             o->info.name);
        goto done;
    }
    daecl__ocl_say(o, DAECL_LOG_INFO, "tuning: %d candidates in %.0f s; %s", bn->n_cands,
                   elapsed(bn), pl == pb ? "tuned sets win" : "CLBlast's built-in parameters stay");
    if ((rc = store(o, pl, bn, err)))
        goto done;
    daecl__ocl_say(o, DAECL_LOG_INFO, "stored GEMM tuning for %s in %s", o->info.name, pl->tu.path);
    /* From now on gemm() routes by the new tuning; time it that way. */
    daecl__ocl_tuning *tu = malloc(sizeof *tu);
    if (!tu) {
        rc = daecl__ocl_fail(o->host, err, DAECL_ENOMEM, "GEMM tuning: out of memory");
        goto done;
    }
    *tu = pl->tu;
    daecl__ocl_tune_release(o);
    o->tuning = tu;
    double after[MAX_SHAPES];
    if (pl == pa && pl->tu.n_sets == 0 && daecl__ocl_tune_defaults_gone(o->device)) {
        /* The candidates replaced CLBlast's defaults for this process (and
         * only this one): report them as the search measured them. */
        memcpy(after, pl->t, sizeof after);
    } else {
        for (size_t i = 0; i < bn->n && !rc; i++)
            rc = time_shape(bn, H_ROUTED, &bn->shapes[i], 0, &after[i], err);
    }
    if (!rc)
        report(bn, pl, after);
done:
    free(pa);
    free(pb);
    return rc;
}

int daecl__ocl_tune_gemm(void *ctx, daecl_gemm_shape *shapes, size_t n, double budget_s,
                         daecl_err *err)
{
    daecl__ocl *o = ctx;
    size_t na = 0, nb = 0, nc = 0;
    int rc = check_shapes(o, shapes, n, budget_s, &na, &nb, &nc, err);
    if (rc)
        return rc;
    if (o->gemm_mode != DAECL__GEMM_CLBLAST)
        return daecl__ocl_fail(o->host, err, DAECL_ENOTSUP,
                               "GEMM tuning needs CLBlast, but %s was opened with %s; remove "
                               "that backend parameter to tune",
                               o->info.name,
                               o->choice.binaries[0]                    ? "backend.binaries"
                               : o->gemm_mode == DAECL__GEMM_DAECL_CPU ? "backend.gemm: daecl_cpu"
                                                                       : "backend.gemm: daecl");
    if (!daecl__ocl_tune_can_store(o))
        return daecl__ocl_fail(o->host, err, DAECL_ENOTSUP,
                               "GEMM tuning is kept in daecl's cache folder, but caching is off "
                               "(DAECL_CACHE=0, or no home folder); unset DAECL_CACHE or set "
                               "DAECL_CACHE_DIR");
    bench bn = {.o = o,
                .shapes = shapes,
                .n = n,
                .t0 = seconds(),
                .budget_s = budget_s,
                .rng = 0x5eed,
                .cpu = -1};
    if ((rc = read_fakes(o, bn.fakes, &bn.n_fakes, err)))
        return rc;
    for (const char *c = o->info.name; *c; c++)
        bn.rng = bn.rng * 131 + (unsigned char)*c;
    bn.cands = malloc(MAX_CANDIDATES * sizeof *bn.cands);
    if (!bn.cands)
        rc = daecl__ocl_fail(o->host, err, DAECL_ENOMEM, "GEMM tuning: out of memory");
    daecl__ocl_say(o, DAECL_LOG_INFO,
                   "tuning %zu GEMM shapes on %s for about %.0f s (each new candidate "
                   "compiles CLBlast's GEMM program once)",
                   n, o->info.name, budget_s);
    /* The old tuning's routes must not steer the measurements; its sets
     * seed the search. */
    if (o->tuning) {
        bn.n_prev = o->tuning->n_sets;
        memcpy(bn.prev, o->tuning->sets, sizeof bn.prev);
    }
    daecl__ocl_tune_release(o);
    if (!rc && !(rc = bench_buffers(&bn, na, nb, nc, err)))
        rc = search_and_store(&bn, err);
    if (!rc)
        rc = finish(&bn, err);
    bench_release(&bn);
    return rc;
}
