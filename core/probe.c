/* daecl — the linear probe (probe.h): features read back from the device;
 * the objective and its gradient over fixed row groups on a host pool; the
 * L-BFGS solver with a strong-Wolfe line search; the test score. */
#include "core/probe.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

/* ---- features ---------------------------------------------------------------- */

const char *daecl_probe_features_name(int which, char *buf, size_t n)
{
    if (which == DAECL_PROBE_ALL)
        snprintf(buf, n, "all layers");
    else if (which == DAECL_PROBE_RAW)
        snprintf(buf, n, "raw");
    else
        snprintf(buf, n, "layer %d", which);
    return buf;
}

int daecl_probe_features(daecl_graph *g, daecl_feeder *data, int which, float **out,
                         size_t *width, daecl_err *err)
{
    daecl_session *s = g->s;
    const daecl_model *m = g->m;
    *out = NULL;
    *width = 0;
    if (which < DAECL_PROBE_RAW || which >= (int)m->n_encoder)
        return daecl_err_set(err, DAECL_EINVAL, "the probe asked for the features of encoder "
                             "layer %d of a model with %u", which, m->n_encoder);
    /* layers [l0, l1] are read back, in that order, side by side */
    uint32_t l0 = which == DAECL_PROBE_ALL ? 0 : (uint32_t)which;
    uint32_t l1 = which == DAECL_PROBE_ALL ? m->n_encoder - 1 : (uint32_t)which;
    size_t w = 0, w_max = 0;
    if (which == DAECL_PROBE_RAW)
        w = data->ds->dim;
    else
        for (uint32_t l = l0; l <= l1; l++) {
            w += m->layers[l].out;
            w_max = m->layers[l].out > w_max ? m->layers[l].out : w_max;
        }
    size_t n_rows = data->ds->n_rows, b = g->batch_max;
    *width = w;
    if (w && n_rows > SIZE_MAX / sizeof(float) / w)
        return daecl_err_set(err, DAECL_ENOMEM, "the probe's %zu x %zu features do not fit in "
                             "memory; lower data.train_limit", n_rows, w);
    float *feat = malloc(n_rows * w * sizeof *feat + 1);
    /* one batch of one layer, when several go side by side */
    float *batch = l1 > l0 ? malloc(b * w_max * sizeof *batch) : NULL;
    if (!feat || (l1 > l0 && !batch)) {
        free(feat);
        free(batch);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the probe's %zu x %zu "
                             "features (%.0f MiB); lower data.train_limit", n_rows, w,
                             (double)(n_rows * w * sizeof *feat) / (1 << 20));
    }
    int rc = daecl_feeder_sequential(data, err);
    for (size_t first = 0; !rc && first < n_rows; first += b) {
        size_t n = n_rows - first < b ? n_rows - first : b;
        daecl_slice x;
        if ((rc = daecl_feeder_batch(data, first, n, &x, err)))
            break;
        if (which == DAECL_PROBE_RAW) {
            rc = daecl_session_read(s, x, feat + first * w, n * w, err);
            continue;
        }
        if ((rc = daecl_graph_forward(g, x, n, l1, err)))
            break;
        if (l0 == l1) {
            rc = daecl_session_read(s, daecl_graph_layer_out(g, l0), feat + first * w, n * w, err);
            continue;
        }
        size_t col = 0; /* the layer's first column */
        for (uint32_t l = l0; !rc && l <= l1; l++) {
            size_t wl = m->layers[l].out;
            if ((rc = daecl_session_read(s, daecl_graph_layer_out(g, l), batch, n * wl, err)))
                break;
            for (size_t i = 0; i < n; i++)
                memcpy(feat + (first + i) * w + col, batch + i * wl, wl * sizeof *feat);
            col += wl;
        }
    }
    free(batch);
    if (rc) {
        free(feat);
        return rc;
    }
    *out = feat;
    return 0;
}

/* ---- the objective -------------------------------------------------------------
 *
 * Rows are cut into groups of whole 256-row blocks, at most 64 groups; the
 * cut depends on n alone. One pool chunk is one group: it runs its blocks
 * in order and accumulates their loss and gradient into the group's own
 * partial sums; the caller then adds the partials in group order. So every
 * sum is taken in one fixed order whatever the thread count, and the
 * partials cost at most 64 gradients of memory.
 *
 * A block converts its rows to double (the features stay float in memory:
 * half the bytes to stream per evaluation) and makes two products of
 * (rows, F, C) with OpenBLAS's dgemm on the calling thread: the block is
 * still in cache for the second.
 *
 * The solver sees the training rows centred, x - mu with mu their mean (in
 * double, as they are converted). With the bias unpenalised that is only a
 * change of variables, b' = b + W mu: the same f, the same optimum, but
 * without the large curvature along the mean that uncentred features (a
 * sigmoid code is all positive) put into the Hessian: on a 1000-unit code
 * L-BFGS needed 454 iterations centred and more than 1000 uncentred. The
 * solver reports, and stops on, the gradient in the caller's (W, b). */

enum { BLOCK_ROWS = 256, MAX_GROUPS = 64 };

typedef struct problem {
    daecl_pool *pool;
    const float *x;   /* (n, F) */
    const int32_t *y; /* (n) in [0, C) */
    size_t n, F, C;
    double l2;
    double *mu;       /* (F): the rows are seen as x - mu; NULL: as they are */
    size_t group_rows, n_groups;
    size_t stride;    /* doubles per group: dW (C, F), db (C), loss, correct */
    double *partial;  /* (n_groups, stride) */
    /* Scratch of the chunks running at once: at most one per thread. */
    unsigned n_slots;
    size_t slot_doubles;
    double *scratch;  /* (n_slots, slot_doubles): xb (BLOCK_ROWS, F), z (BLOCK_ROWS, C) */
    atomic_int *busy; /* (n_slots) */
    /* the job being run */
    const double *theta;
    int want_grad;
} problem;

static void problem_free(problem *p)
{
    free(p->mu);
    free(p->partial);
    free(p->scratch);
    free(p->busy);
}

/* a * b into *out; 0 on overflow. */
static int mul_ok(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

static int problem_init(problem *p, daecl_pool *pool, const float *x, const int32_t *y, size_t n,
                        size_t F, size_t C, double l2, int centre, const char *what,
                        daecl_err *err)
{
    *p = (problem){.pool = pool, .x = x, .y = y, .n = n, .F = F, .C = C, .l2 = l2};
    if (n == 0)
        return daecl_err_set(err, DAECL_EDATA, "the probe has no %s rows; give it a data set "
                             "with at least one", what);
    if (C < 1 || F < 1)
        return daecl_err_set(err, DAECL_EDATA, "the probe needs at least one feature and one "
                             "class, not %zu and %zu", F, C);
    if (F > INT_MAX || C > INT_MAX) /* CBLAS takes int sizes */
        return daecl_err_set(err, DAECL_EDATA, "the probe takes at most %d features and "
                             "classes, not %zu and %zu", INT_MAX, F, C);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= C)
            return daecl_err_set(err, DAECL_EDATA, "%s label %d of row %zu is outside [0, %zu); "
                                 "use labels 0..C-1", what, (int)y[i], i, C);
    size_t blocks = (n + BLOCK_ROWS - 1) / BLOCK_ROWS;
    p->group_rows = BLOCK_ROWS * ((blocks + MAX_GROUPS - 1) / MAX_GROUPS);
    p->n_groups = (n + p->group_rows - 1) / p->group_rows;
    p->n_slots = daecl_pool_threads(pool);
    size_t cf = 0, part = 0, scr = 0;
    int ok = mul_ok(C, F, &cf) && cf <= SIZE_MAX / 2 - C && F <= SIZE_MAX / 2 - C;
    p->stride = cf + C + 2;
    ok = ok && mul_ok(p->n_groups, p->stride, &part) && mul_ok(part, sizeof(double), &part) &&
         mul_ok(BLOCK_ROWS, F + C, &p->slot_doubles) &&
         mul_ok(p->slot_doubles, p->n_slots, &scr) && mul_ok(scr, sizeof(double), &scr);
    if (ok) {
        p->partial = malloc(part);
        p->scratch = malloc(scr);
        p->busy = calloc(p->n_slots, sizeof *p->busy);
        p->mu = centre ? calloc(F, sizeof *p->mu) : NULL;
    }
    if (!ok || !p->partial || !p->scratch || !p->busy || (centre && !p->mu)) {
        problem_free(p);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the probe's %s sums (%zu "
                             "features, %zu classes)", what, F, C);
    }
    if (centre) { /* O(n F) once, in row order */
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < F; j++)
                p->mu[j] += x[i * F + j];
        for (size_t j = 0; j < F; j++)
            p->mu[j] /= (double)n;
    }
    return 0;
}

static unsigned slot_claim(problem *p)
{
    /* At most n_slots chunks run at once (one per thread), so a pass finds
     * a free slot. */
    for (;;)
        for (unsigned i = 0; i < p->n_slots; i++) {
            int idle = 0;
            if (atomic_compare_exchange_strong(&p->busy[i], &idle, 1))
                return i;
        }
}

/* One group: partial = sums over its rows of the loss, d loss / d(W, b)
 * (when want_grad) and correct argmaxes. */
static void group_run(void *arg, size_t gi)
{
    problem *p = arg;
    size_t F = p->F, C = p->C, cf = C * F;
    double *part = p->partial + gi * p->stride;
    double *dW = part, *db = part + cf;
    double loss = 0, correct = 0;
    memset(part, 0, p->stride * sizeof *part);
    unsigned slot = slot_claim(p);
    double *xb = p->scratch + slot * p->slot_doubles; /* (BLOCK_ROWS, F) */
    double *z = xb + (size_t)BLOCK_ROWS * F;         /* (BLOCK_ROWS, C) */
    const double *W = p->theta, *b = p->theta + cf;
    size_t end = (gi + 1) * p->group_rows < p->n ? (gi + 1) * p->group_rows : p->n;
    for (size_t r0 = gi * p->group_rows; r0 < end; r0 += BLOCK_ROWS) {
        size_t nb = end - r0 < BLOCK_ROWS ? end - r0 : BLOCK_ROWS;
        const float *xs = p->x + r0 * F;
        if (p->mu)
            for (size_t r = 0; r < nb; r++)
                for (size_t j = 0; j < F; j++)
                    xb[r * F + j] = (double)xs[r * F + j] - p->mu[j];
        else
            for (size_t i = 0; i < nb * F; i++)
                xb[i] = xs[i];
        /* z (nb, C) = xb (nb, F) W^T (F, C) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)C, (int)F, 1.0, xb,
                    (int)F, W, (int)F, 0.0, z, (int)C);
        for (size_t r = 0; r < nb; r++) {
            double *zr = z + r * C;
            size_t best = 0;
            for (size_t k = 0; k < C; k++) {
                zr[k] += b[k];
                if (zr[k] > zr[best])
                    best = k;
            }
            size_t yr = (size_t)p->y[r0 + r];
            double top = zr[best], zy = zr[yr], sum = 0;
            for (size_t k = 0; k < C; k++) {
                zr[k] = exp(zr[k] - top);
                sum += zr[k];
            }
            loss += top + log(sum) - zy;
            correct += best == yr;
            if (p->want_grad) {
                /* d loss_r / d z_r = softmax(z_r) - onehot(y_r) */
                double inv = 1 / sum;
                for (size_t k = 0; k < C; k++) {
                    zr[k] = zr[k] * inv - (k == yr);
                    db[k] += zr[k];
                }
            }
        }
        /* dW (C, F) += z^T (C, nb) xb (nb, F), z now d loss / d z */
        if (p->want_grad)
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)F, (int)nb, 1.0, z,
                        (int)C, xb, (int)F, 1.0, dW, (int)F);
    }
    part[cf + C] = loss;
    part[cf + C + 1] = correct;
    atomic_store(&p->busy[slot], 0);
}

static void problem_run(problem *p, const double *theta, int want_grad)
{
    p->theta = theta;
    p->want_grad = want_grad;
    daecl_pool_run(p->pool, p->n_groups, group_run, p);
}

/* f(theta), and its gradient into grad (C * F + C). */
static double objective(problem *p, const double *theta, double *grad)
{
    size_t cf = p->C * p->F, np = cf + p->C;
    problem_run(p, theta, 1);
    double loss = 0, sq = 0, n = (double)p->n;
    memset(grad, 0, np * sizeof *grad);
    for (size_t g = 0; g < p->n_groups; g++) {
        const double *part = p->partial + g * p->stride;
        for (size_t j = 0; j < np; j++)
            grad[j] += part[j];
        loss += part[np];
    }
    for (size_t j = 0; j < cf; j++) {
        grad[j] = grad[j] / n + p->l2 * theta[j];
        sq += theta[j] * theta[j];
    }
    for (size_t j = cf; j < np; j++)
        grad[j] /= n;
    return loss / n + 0.5 * p->l2 * sq;
}

/* OpenBLAS runs on the calling thread inside the pool's chunks: one pool of
 * threads, not two fighting for the cores. Its thread count is global, so
 * it is restored afterwards. */
static int blas_single(void)
{
    int was = openblas_get_num_threads();
    openblas_set_num_threads(1);
    return was;
}

static void blas_restore(int was)
{
    if (was > 1)
        openblas_set_num_threads(was);
}

int daecl__probe_objective(daecl_pool *pool, const float *x, const int32_t *y, size_t n, size_t F,
                           size_t C, double l2, const double *theta, double *f, double *grad,
                           daecl_err *err)
{
    problem p;
    int rc = problem_init(&p, pool, x, y, n, F, C, l2, 0, "training", err);
    if (rc)
        return rc;
    int blas = blas_single();
    *f = objective(&p, theta, grad);
    blas_restore(blas);
    problem_free(&p);
    return 0;
}

/* ---- L-BFGS ----------------------------------------------------------------------
 *
 * Nocedal & Wright, Numerical Optimization (2nd ed.): the two-loop
 * recursion (algorithm 7.4) over the last HISTORY pairs with the initial
 * scaling s'y / y'y (7.20), and a line search for the strong Wolfe
 * conditions (algorithms 3.5 and 3.6, c1 = 1e-4, c2 = 0.9) with safeguarded
 * cubic interpolation. The Wolfe conditions keep s'y > 0, so the implicit
 * inverse Hessian stays positive definite. An iteration costs about one
 * evaluation of f and its gradient once L-BFGS has its scale (step 1 is
 * usually accepted). */

enum { HISTORY = 10, LS_MAX_EVALS = 40 };
#define WOLFE_C1 1e-4
#define WOLFE_C2 0.9

typedef struct solver {
    problem *p;
    size_t np;
    double *x, *g, *xt, *gt, *d; /* (np) each */
    double *s, *y;               /* (HISTORY, np): a ring of steps and gradient changes */
    double rho[HISTORY], alpha[HISTORY];
    int count, head;             /* pairs held; slot of the next one */
    uint32_t evaluations;
} solver;

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* d = -H g, H the L-BFGS inverse Hessian of the pairs held (the identity
 * when none). */
static void lbfgs_direction(solver *sv)
{
    size_t np = sv->np;
    double *q = sv->d;
    for (size_t j = 0; j < np; j++)
        q[j] = sv->g[j];
    for (int i = 0; i < sv->count; i++) { /* newest to oldest */
        int k = (sv->head - 1 - i + HISTORY) % HISTORY;
        const double *s = sv->s + (size_t)k * np, *y = sv->y + (size_t)k * np;
        sv->alpha[k] = sv->rho[k] * dot(s, q, np);
        for (size_t j = 0; j < np; j++)
            q[j] -= sv->alpha[k] * y[j];
    }
    if (sv->count > 0) {
        int k = (sv->head - 1 + HISTORY) % HISTORY;
        const double *y = sv->y + (size_t)k * np;
        double gamma = 1 / (sv->rho[k] * dot(y, y, np));
        for (size_t j = 0; j < np; j++)
            q[j] *= gamma;
    }
    for (int i = sv->count - 1; i >= 0; i--) { /* oldest to newest */
        int k = (sv->head - 1 - i + HISTORY) % HISTORY;
        const double *s = sv->s + (size_t)k * np, *y = sv->y + (size_t)k * np;
        double beta = sv->rho[k] * dot(y, q, np);
        for (size_t j = 0; j < np; j++)
            q[j] += (sv->alpha[k] - beta) * s[j];
    }
    for (size_t j = 0; j < np; j++)
        q[j] = -q[j];
}

/* phi(a) = f(x + a d) into xt, gt; returns phi, *dphi = gt'd. */
static double phi(solver *sv, double a, double *dphi)
{
    for (size_t j = 0; j < sv->np; j++)
        sv->xt[j] = sv->x[j] + a * sv->d[j];
    double f = objective(sv->p, sv->xt, sv->gt);
    sv->evaluations++;
    *dphi = dot(sv->gt, sv->d, sv->np);
    return f;
}

/* The minimiser of the cubic through (a, fa, da) and (b, fb, db), or NAN
 * when it has none (N&W 3.59). */
static double cubic_min(double a, double fa, double da, double b, double fb, double db)
{
    double d1 = da + db - 3 * (fa - fb) / (a - b);
    double disc = d1 * d1 - da * db;
    if (!(disc >= 0))
        return NAN;
    double d2 = (b > a ? 1 : -1) * sqrt(disc);
    return b - (b - a) * (db + d2 - d1) / (db - da + 2 * d2);
}

typedef struct ls_pt {
    double a, f, d;
} ls_pt;

/* Searches along d from (x, f0) for a step meeting the strong Wolfe
 * conditions; on success xt, gt, *ft hold the accepted point and it returns
 * 1. When the budget runs out or the bracket collapses (rounding) it
 * accepts the best point found with sufficient decrease, if any; 0 when
 * none lowered f. */
static int line_search(solver *sv, double f0, double d0, double a1, double *ft)
{
    ls_pt prev = {0, f0, d0}, lo = prev, hi = prev;
    double a = a1;
    int evals = 0, last_is_lo = 0;
    for (int i = 0;; i++) {
        double da, fa = phi(sv, a, &da);
        evals++;
        if (!(fa <= f0 + WOLFE_C1 * a * d0) || (i > 0 && fa >= prev.f)) {
            lo = prev, hi = (ls_pt){a, fa, da};
            break;
        }
        if (fabs(da) <= -WOLFE_C2 * d0) {
            *ft = fa;
            return 1;
        }
        if (da >= 0) {
            lo = (ls_pt){a, fa, da}, hi = prev;
            last_is_lo = 1;
            break;
        }
        if (evals >= LS_MAX_EVALS) { /* still descending after 4^40: take it */
            *ft = fa;
            return 1;
        }
        prev = (ls_pt){a, fa, da};
        a *= 4;
    }
    /* zoom: lo meets sufficient decrease with the lowest f so far, and the
     * minimiser lies between lo and hi. */
    while (evals < LS_MAX_EVALS) {
        double w = hi.a - lo.a;
        if (fabs(w) <= 1e-15 * fabs(lo.a > hi.a ? lo.a : hi.a))
            break;
        double a_c = cubic_min(lo.a, lo.f, lo.d, hi.a, hi.f, hi.d);
        double l = lo.a + 0.1 * w, r = hi.a - 0.1 * w; /* keep off the ends */
        double left = l < r ? l : r, right = l < r ? r : l;
        a = a_c >= left && a_c <= right ? a_c : lo.a + 0.5 * w;
        double da, fa = phi(sv, a, &da);
        evals++;
        last_is_lo = 0;
        if (!(fa <= f0 + WOLFE_C1 * a * d0) || fa >= lo.f) {
            hi = (ls_pt){a, fa, da};
        } else {
            if (fabs(da) <= -WOLFE_C2 * d0) {
                *ft = fa;
                return 1;
            }
            if (da * (hi.a - lo.a) >= 0)
                hi = lo;
            lo = (ls_pt){a, fa, da};
            last_is_lo = 1;
        }
    }
    if (lo.a == 0 || !(lo.f < f0))
        return 0;
    if (!last_is_lo) {
        double da;
        lo.f = phi(sv, lo.a, &da);
    }
    *ft = lo.f;
    return 1;
}

/* max |df/dtheta| in the caller's (W, b), from g in the solver's (W, b'):
 * f(W, b) = f'(W, b + W mu), so df/dW = df'/dW + df'/db' mu^T, df/db = df'/db'. */
static double grad_max(const problem *p, const double *g)
{
    size_t F = p->F, C = p->C, cf = C * F;
    double m = max_abs(g, cf + C);
    if (!p->mu)
        return m;
    m = max_abs(g + cf, C);
    for (size_t k = 0; k < C; k++)
        for (size_t j = 0; j < F; j++) {
            double v = fabs(g[k * F + j] + g[cf + k] * p->mu[j]);
            m = v > m ? v : m;
        }
    return m;
}

/* b += sign * W mu: to the solver's variables (+1) and back (-1). */
static void shift_bias(const problem *p, double *theta, double sign)
{
    size_t F = p->F, cf = p->C * F;
    if (p->mu)
        for (size_t k = 0; k < p->C; k++)
            theta[cf + k] += sign * dot(theta + k * F, p->mu, F);
}

static int solve(problem *p, const daecl_probe_opts *o, double *theta, daecl_probe_result *out,
                 daecl_err *err)
{
    size_t np = p->C * p->F + p->C;
    solver sv = {.p = p, .np = np};
    double *mem = NULL;
    size_t total;
    if (mul_ok(np, 5 + 2 * HISTORY, &total) && mul_ok(total, sizeof(double), &total))
        mem = malloc(total);
    if (!mem)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the probe's L-BFGS state "
                             "(%zu parameters)", np);
    sv.x = mem, sv.g = sv.x + np, sv.xt = sv.g + np, sv.gt = sv.xt + np, sv.d = sv.gt + np;
    sv.s = sv.d + np, sv.y = sv.s + (size_t)HISTORY * np;
    memcpy(sv.x, theta, np * sizeof *theta);
    shift_bias(p, sv.x, 1);
    double f = objective(p, sv.x, sv.g);
    sv.evaluations = 1;
    uint32_t it = 0;
    daecl_probe_stop stop;
    for (;;) {
        if (grad_max(p, sv.g) <= o->tol) {
            stop = DAECL_PROBE_CONVERGED;
            break;
        }
        if (it >= o->max_iter) {
            stop = DAECL_PROBE_MAX_ITER;
            break;
        }
        lbfgs_direction(&sv);
        double d0 = dot(sv.g, sv.d, np);
        if (!(d0 < 0)) { /* not a descent direction (rounding): start afresh */
            sv.count = 0;
            lbfgs_direction(&sv);
            d0 = dot(sv.g, sv.d, np);
        }
        /* Without pairs the direction is -g, of no known scale: a first
         * step of length at most 1. */
        double a1 = sv.count ? 1 : fmin(1, 1 / sqrt(-d0));
        double ft;
        if (!line_search(&sv, f, d0, a1, &ft)) {
            if (sv.count) {
                sv.count = 0; /* retry along -g before giving up */
                continue;
            }
            stop = DAECL_PROBE_STALLED;
            break;
        }
        double *s = sv.s + (size_t)sv.head * np, *y = sv.y + (size_t)sv.head * np;
        for (size_t j = 0; j < np; j++) {
            s[j] = sv.xt[j] - sv.x[j];
            y[j] = sv.gt[j] - sv.g[j];
        }
        double sy = dot(s, y, np), yy = dot(y, y, np);
        if (sy > 1e-12 * yy && yy > 0) { /* else skip the pair: keeps H positive definite */
            sv.rho[sv.head] = 1 / sy;
            sv.head = (sv.head + 1) % HISTORY;
            sv.count += sv.count < HISTORY;
        }
        double *t = sv.x;
        sv.x = sv.xt, sv.xt = t;
        t = sv.g, sv.g = sv.gt, sv.gt = t;
        f = ft;
        it++;
    }
    memcpy(theta, sv.x, np * sizeof *theta);
    shift_bias(p, theta, -1);
    out->objective = f;
    out->grad_max = grad_max(p, sv.g);
    out->iterations = it;
    out->evaluations = sv.evaluations;
    out->stop = stop;
    free(mem);
    return 0;
}

int daecl__probe_solve(daecl_pool *pool, const float *x, const int32_t *y, size_t n, size_t F,
                       size_t C, const daecl_probe_opts *o, double *theta, daecl_probe_result *out,
                       daecl_err *err)
{
    problem p;
    int rc = problem_init(&p, pool, x, y, n, F, C, o->l2, 1, "training", err);
    if (rc)
        return rc;
    int blas = blas_single();
    rc = solve(&p, o, theta, out, err);
    blas_restore(blas);
    problem_free(&p);
    return rc;
}

/* ---- the probe ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The mean cross-entropy and accuracy of theta on a problem's rows. */
static void score(problem *p, const double *theta, double *accuracy, double *nll)
{
    size_t C = p->C, F = p->F;
    problem_run(p, theta, 0);
    double sum = 0, correct = 0;
    for (size_t g = 0; g < p->n_groups; g++) {
        const double *part = p->partial + g * p->stride;
        sum += part[C * F + C];
        correct += part[C * F + C + 1];
    }
    *accuracy = correct / (double)p->n;
    *nll = sum / (double)p->n;
}

int daecl_probe_fit(const float *train_x, const daecl_labels *train_y, const float *test_x,
                    const daecl_labels *test_y, size_t width, const daecl_probe_opts *o,
                    daecl_probe_result *out, daecl_err *err)
{
    return daecl_probe_fit_valid(train_x, train_y, NULL, NULL, test_x, test_y, width, o, out,
                                 err);
}

int daecl_probe_fit_valid(const float *train_x, const daecl_labels *train_y,
                          const float *valid_x, const daecl_labels *valid_y, const float *test_x,
                          const daecl_labels *test_y, size_t width, const daecl_probe_opts *o,
                          daecl_probe_result *out, daecl_err *err)
{
    double t0 = now_s();
    memset(out, 0, sizeof *out);
    size_t C = train_y->n_classes;
    if (test_x && test_y->n_classes > C)
        C = test_y->n_classes;
    if (valid_x && valid_y->n_classes > C)
        C = valid_y->n_classes;
    size_t F = width;
    if (!(o->l2 > 0) || !(o->tol > 0))
        return daecl_err_set(err, DAECL_EINVAL, "the probe needs l2 > 0 and tol > 0, not %g and "
                             "%g; set eval.probe_l2 and eval.probe_tol", o->l2, o->tol);
    daecl_pool *pool = NULL;
    problem train = {0}, valid = {0}, test = {0};
    double *theta = NULL;
    int rc = daecl_pool_create(o->threads, &pool);
    if (rc) {
        out->seconds = now_s() - t0;
        return daecl_err_set(err, DAECL_ENOMEM, "cannot start the probe's threads (%s); free "
                             "memory or raise the process's thread limit", strerror(rc));
    }
    if ((rc = problem_init(&train, pool, train_x, train_y->y, train_y->n, F, C, o->l2, 1,
                           "training", err)) ||
        (valid_x && (rc = problem_init(&valid, pool, valid_x, valid_y->y, valid_y->n, F, C,
                                       o->l2, 0, "validation", err))) ||
        (test_x && (rc = problem_init(&test, pool, test_x, test_y->y, test_y->n, F, C, o->l2, 0,
                                      "test", err))))
        goto done;
    theta = calloc(C * F + C, sizeof *theta); /* W = 0, b = 0: uniform class odds */
    if (!theta) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for the probe's weights");
        goto done;
    }
    int blas = blas_single();
    rc = solve(&train, o, theta, out, err);
    if (!rc) {
        if (test_x) {
            score(&test, theta, &out->accuracy, &out->test_nll);
            out->have_test = 1;
        }
        if (valid_x) {
            score(&valid, theta, &out->valid_accuracy, &out->valid_nll);
            out->have_valid = 1;
        }
        out->n_classes = (uint32_t)C;
        out->n_features = F;
        out->n_train = train.n;
        out->l2 = o->l2;
    }
    blas_restore(blas);
done:
    free(theta);
    problem_free(&train);
    problem_free(&valid);
    problem_free(&test);
    daecl_pool_destroy(pool);
    out->seconds = now_s() - t0;
    return rc;
}
