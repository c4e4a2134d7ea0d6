/* daecl — normalisation, the density's mean and the samples' moments of a
 * likelihood over its declared support (normcheck.h). All sums and
 * integrals run in double on exp(-nll) of the plugin's float nll, so their
 * accuracy is that of the nll (a few float ulps), well inside the stated
 * tolerances. Cost: at most 7 x 2,000 x 15 nll values and 7 x 4,000
 * samples, well under a second. */
#include "core/normcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/support.h"

#define N_POINTS 7
#define SAMPLES 4000
#define SIGMAS 5.0
#define BATCH 64
#define MAX_PIECES 2000      /* quadrature intervals per decoder value */
#define MAX_TERMS 1000000    /* mass function terms per decoder value */
#define X_MAX 1e30           /* quadrature nodes beyond count as density 0 */
#define WHOLE_MAX 16777216.0 /* 2^24: integers above are not all floats */

/* Decoder values per component: the removable singularities and branch
 * switches that likelihoods like to have (0, +-1) and the ends of the
 * checker's usual range. Point m takes component j from grid[(m + 2j) % 7]. */
static const double grid[N_POINTS] = {-4.0, -1.0, -0.3, 0.0, 0.5, 1.0, 3.5};

typedef struct nc {
    const daecl_likelihood_ops *o;
    const float *packed;
    unsigned k;
    float a[4];
    float ab[BATCH * 4]; /* a, once per row of a (BATCH, 1) call */
    /* the first fault: an op's error, or an nll that is NaN or -inf */
    int rc;
    const char *op;
    daecl_err e;
    bool bad_nll;
    float bad_x, bad_value;
} nc;

/* What a sum or an integral gives at one decoder value, moments about c. */
typedef struct dens {
    double mass, mean, var; /* var of the normalised density */
    double err;             /* error estimate of mass */
    bool converged;
} dens;

static void fmt_a(char *buf, size_t n, const float *a, unsigned k)
{
    int used = snprintf(buf, n, "(%.6g", a[0]);
    for (unsigned j = 1; j < k && used > 0 && (size_t)used < n; j++)
        used += snprintf(buf + used, n - (size_t)used, ", %.6g", a[j]);
    if (used > 0 && (size_t)used < n)
        snprintf(buf + used, n - (size_t)used, ")");
}

static void set_point(nc *c, size_t m)
{
    memset(c->a, 0, sizeof c->a);
    for (unsigned j = 0; j < c->k; j++)
        c->a[j] = (float)grid[(m + 2 * j) % N_POINTS];
    for (size_t r = 0; r < BATCH; r++)
        memcpy(c->ab + r * c->k, c->a, c->k * sizeof *c->a);
}

/* p[i] = exp(-nll(x[i] | a)) for n <= BATCH points. */
static int density(nc *c, const float *x, size_t n, double *p)
{
    float nll[BATCH];
    int rc = c->o->host_loss_grad(x, c->ab, n, 1, c->packed, 1.0f, nll, NULL, &c->e);
    if (rc) {
        c->rc = rc;
        c->op = "host_loss_grad";
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(nll[i]) || nll[i] == -INFINITY) {
            if (!c->bad_nll) {
                c->bad_nll = true;
                c->bad_x = x[i];
                c->bad_value = nll[i];
            }
            p[i] = 0.0;
        } else {
            p[i] = exp(-(double)nll[i]);
        }
    }
    return 0;
}

/* ---- a discrete support: sum the mass function -------------------------- */

/* Walks one way from `from` (inclusive) by `dir` until the bound, or until a
 * batch adds less than 1e-16 of the mass so far. s[0..2] accumulate
 * sum (x - c)^m p(x). */
static int walk(nc *c, double from, double bound, int dir, double centre, double s[3],
                size_t *terms, bool *ok)
{
    for (double x0 = from; dir > 0 ? x0 <= bound : x0 >= bound;) {
        float x[BATCH];
        double p[BATCH];
        size_t n = 0;
        for (; n < BATCH && (dir > 0 ? x0 <= bound : x0 >= bound); n++, x0 += dir) {
            if (fabs(x0) > WHOLE_MAX || *terms >= MAX_TERMS) {
                *ok = false;
                return 0;
            }
            x[n] = (float)x0;
            ++*terms;
        }
        if (density(c, x, n, p))
            return c->rc;
        double add = 0.0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)x[i] - centre;
            add += p[i];
            s[1] += d * p[i];
            s[2] += d * d * p[i];
        }
        s[0] += add;
        if (s[0] > 0.0 && add <= 1e-16 * s[0])
            return 0;
    }
    return 0;
}

static int sum_mass(nc *c, double lo, double hi, double centre, dens *d)
{
    double x0 = fmin(fmax(round(centre), lo), hi);
    double s[3] = {0, 0, 0};
    size_t terms = 0;
    bool ok = true;
    if (walk(c, x0, hi, +1, x0, s, &terms, &ok) || (x0 - 1 >= lo && ok &&
                                                     walk(c, x0 - 1, lo, -1, x0, s, &terms, &ok)))
        return c->rc;
    d->mass = s[0];
    d->err = 0.0;
    d->converged = ok;
    d->mean = s[0] > 0 ? x0 + s[1] / s[0] : NAN;
    d->var = s[0] > 0 ? s[2] / s[0] - (s[1] / s[0]) * (s[1] / s[0]) : NAN;
    return 0;
}

/* ---- a continuous support: adaptive Gauss-Kronrod 7-15 ------------------- */

/* Kronrod nodes (the odd ones are Gauss's) and weights on [-1, 1]. */
static const double xgk[8] = {0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                              0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                              0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                              0.207784955007898467600689403773245, 0.0};
static const double wgk[8] = {0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                              0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                              0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                              0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
static const double wg[4] = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                             0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

/* One half of the support seen from the centre c: x = c + (b - c) t on a
 * finite half, x = c + s t / (1 - t) on an infinite one (s signed), for t
 * in [0, 1). */
typedef struct half {
    double c, b, s;
    bool infinite;
} half;

typedef struct piece {
    const half *h;
    double t0, t1;
    double v[3], e[3]; /* Kronrod value and |Kronrod - Gauss| of (x - c)^m p */
} piece;

static double to_x(const half *h, double t, double *dxdt)
{
    if (h->infinite) {
        double u = 1.0 - t;
        *dxdt = fabs(h->s) / (u * u);
        return h->c + h->s * t / u;
    }
    *dxdt = fabs(h->b - h->c);
    return h->c + (h->b - h->c) * t;
}

static int gk15(nc *c, piece *pc)
{
    double mid = 0.5 * (pc->t0 + pc->t1), hw = 0.5 * (pc->t1 - pc->t0);
    float x[15];
    double w[15], p[15];
    for (int i = 0; i < 15; i++) {
        double node = i < 7 ? -xgk[i] : i == 7 ? 0.0 : xgk[14 - i];
        double xd = to_x(pc->h, mid + hw * node, &w[i]);
        x[i] = fabs(xd) < X_MAX ? (float)xd : 0.0f;
        if (!(fabs(xd) < X_MAX))
            w[i] = 0.0;
    }
    if (density(c, x, 15, p))
        return c->rc;
    for (int m = 0; m < 3; m++) {
        double kr = 0.0, ga = 0.0;
        for (int i = 0; i < 15; i++) {
            int j = i < 8 ? i : 14 - i; /* the node's index in xgk */
            double dx = (double)x[i] - pc->h->c;
            double f = w[i] * p[i] * (m == 0 ? 1.0 : m == 1 ? dx : dx * dx);
            kr += wgk[j] * f;
            if (j % 2 == 1)
                ga += wg[j / 2] * f;
        }
        pc->v[m] = kr * hw;
        pc->e[m] = fabs(kr - ga) * hw;
    }
    return 0;
}

/* Integrates over [lo, hi] in halves split at `centre`; `scale` (> 0)
 * weighs the moments' errors and shapes the infinite halves. Bisects the
 * piece with the largest error until the total estimate is below
 * DAECL_NORMCHECK_QUAD_TOL or MAX_PIECES are used. O(MAX_PIECES^2) in the
 * worst case: 4e6 steps, a few milliseconds. */
static int integrate(nc *c, piece *pcs, double lo, double hi, double centre, double scale,
                     dens *d)
{
    half halves[2] = {{centre, hi, scale, hi == INFINITY}, {centre, lo, -scale, lo == -INFINITY}};
    size_t n = 0;
    for (int s = 0; s < 2; s++) {
        if (halves[s].b == centre)
            continue;
        for (int i = 0; i < 8; i++) {
            pcs[n] = (piece){.h = &halves[s], .t0 = i / 8.0, .t1 = (i + 1) / 8.0};
            if (gk15(c, &pcs[n++]))
                return c->rc;
        }
    }
    double w[3] = {1.0, 1.0 / scale, 1.0 / (scale * scale)};
    for (;;) {
        double total = 0.0, worst = -1.0;
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            double e = w[0] * pcs[i].e[0] + w[1] * pcs[i].e[1] + w[2] * pcs[i].e[2];
            total += e;
            if (e > worst) {
                worst = e;
                at = i;
            }
        }
        d->converged = total <= DAECL_NORMCHECK_QUAD_TOL;
        if (d->converged || n + 1 > MAX_PIECES || !isfinite(total))
            break;
        piece right = pcs[at];
        pcs[at].t1 = right.t0 = 0.5 * (pcs[at].t0 + pcs[at].t1);
        pcs[n++] = right;
        if (gk15(c, &pcs[at]) || gk15(c, &pcs[n - 1]))
            return c->rc;
    }
    double v[3] = {0, 0, 0};
    d->err = 0.0;
    for (size_t i = 0; i < n; i++) {
        for (int m = 0; m < 3; m++)
            v[m] += pcs[i].v[m];
        d->err += pcs[i].e[0];
    }
    d->mass = v[0];
    d->mean = v[0] > 0 ? centre + v[1] / v[0] : NAN;
    d->var = v[0] > 0 ? v[2] / v[0] - (v[1] / v[0]) * (v[1] / v[0]) : NAN;
    return 0;
}

/* ---- the checks ------------------------------------------------------------ */

typedef struct worst {
    double value;
    char first[400]; /* the first failure's sentence, or "" */
} worst;

static void note(worst *w, double value, bool bad, const char *fmt, ...) DAECL_PRINTF(4, 5);

static void note(worst *w, double value, bool bad, const char *fmt, ...)
{
    if (!(value <= w->value))
        w->value = value;
    if (bad && !w->first[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first, sizeof w->first, fmt, ap);
        va_end(ap);
    }
}

/* The samples at the current point: in the support? mean and variance
 * against the density's within SIGMAS standard errors. The variance's
 * allowance adds SIGMAS^2 var / S for the squared error of the sample mean,
 * which the delta method leaves out (it is all there is for a fair coin). */
static int samples(nc *c, size_t m, float *ab, float *smp, const dens *d, worst *out,
                   worst *mom, bool *all_whole)
{
    const daecl_likelihood_ops *o = c->o;
    for (unsigned j = 0; j < c->k; j++)
        for (size_t i = 0; i < SAMPLES; i++)
            ab[j * SAMPLES + i] = c->a[j];
    daecl_noise_key key = {.seed = 0x6e6f726dull, .stream = DAECL_STREAM_SAMPLE,
                           .epoch = (uint32_t)m};
    int rc = o->host_sample(ab, smp, 1, SAMPLES, &key, c->packed, &c->e);
    if (rc) {
        c->rc = rc;
        c->op = "host_sample";
        return rc;
    }
    char as[160], sup[96];
    fmt_a(as, sizeof as, c->a, c->k);
    daecl_support_describe(o->support, o->support_lo, o->support_hi, sup, sizeof sup);
    double sum = 0.0;
    for (size_t i = 0; i < SAMPLES; i++) {
        double x = smp[i];
        bool whole = x == floor(x) && fabs(x) <= WHOLE_MAX;
        *all_whole = *all_whole && whole;
        bool in = x >= o->support_lo && x <= o->support_hi &&
                  (o->support != DAECL_SUPPORT_DISCRETE || whole);
        note(out, in ? 0.0 : 1.0, !in, "sample %zu at a = %s is %.6g, outside the declared support "
             "%s: declare the set the distribution lives on (support in daecl_likelihood_ops), "
             "or fix sample", i, as, x, sup);
        sum += x;
    }
    double ms = sum / SAMPLES, m2 = 0.0, m4 = 0.0;
    for (size_t i = 0; i < SAMPLES; i++) {
        double dx = smp[i] - ms;
        m2 += dx * dx;
        m4 += dx * dx * dx * dx;
    }
    m2 /= SAMPLES;
    m4 /= SAMPLES;
    if (!(d->mass > 0) || !isfinite(d->var))
        return 0; /* the normalisation check reports it */
    double sd = sqrt(fmax(d->var, 0.0));
    double z_mean = sd > 0 ? fabs(ms - d->mean) / (sd / sqrt(SAMPLES)) : ms == d->mean ? 0 : INFINITY;
    double se_var = sqrt(fmax(m4 - m2 * m2, 0.0) / SAMPLES) + SIGMAS * d->var / SAMPLES;
    double z_var = se_var > 0 ? fabs(m2 - d->var) / se_var : m2 == d->var ? 0 : INFINITY;
    if (!isfinite(ms))
        z_mean = INFINITY;
    double z = fmax(z_mean, z_var);
    note(mom, z, !(z <= SIGMAS), "at a = %s, %d samples have mean %.6g and variance %.6g, the "
         "density exp(-nll) %.6g and %.6g (%.1f standard errors, limit %g): sample and nll "
         "describe different distributions", as, SAMPLES, ms, m2, d->mean, d->var, z, SIGMAS);
    return 0;
}

static void report_op(nc *c, daecl_normcheck_report report, void *ctx, const char *name)
{
    char text[600];
    if (c->rc) {
        snprintf(text, sizeof text, "%s returned %s: %.400s", c->op, daecl_status_name(c->rc),
                 c->e.msg[0] ? c->e.msg : "(no message)");
    } else {
        char as[160];
        fmt_a(as, sizeof as, c->a, c->k);
        snprintf(text, sizeof text, "nll is %g at x = %.6g, a = %s, inside the declared support; "
                 "nll must be finite (or +inf where the density is 0)", c->bad_value, c->bad_x,
                 as);
    }
    report(ctx, DAECL_NORMCHECK_FAIL, name, text);
}

int daecl_normcheck_run(const daecl_likelihood_ops *o, const float *packed,
                        daecl_normcheck_report report, void *ctx, daecl_err *err)
{
    char text[800], sup[96];
    if (o->support == DAECL_SUPPORT_NONE) {
        report(ctx, DAECL_NORMCHECK_WARN, "support", "WARNING: declares no support, so "
               "normalisation is not checked and daecl train accepts any data; declare it "
               "(support, support_lo, support_hi in daecl_likelihood_ops, docs/plugins.md)");
        return 0;
    }
    bool discrete = o->support == DAECL_SUPPORT_DISCRETE;
    double lo = o->support_lo, hi = o->support_hi, dlo, dhi;
    daecl_support_describe(o->support, lo, hi, sup, sizeof sup);
    daecl_support_data_range(o, &dlo, &dhi);

    nc c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.packed = packed;
    c.k = o->params_per_dim;
    piece *pcs = malloc(MAX_PIECES * sizeof *pcs);
    float *ab = malloc((size_t)SAMPLES * c.k * sizeof *ab), *smp = malloc(SAMPLES * sizeof *smp);
    if (!pcs || !ab || !smp) {
        free(pcs), free(ab), free(smp);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory checking a plugin (quadrature)");
    }
    worst norm = {0}, dmean = {0}, out = {0}, mom = {0};
    double worst_err = 0.0;
    bool all_whole = true;
    const char *failed_in = NULL;
    for (size_t m = 0; m < N_POINTS && !failed_in; m++) {
        set_point(&c, m);
        char as[160];
        fmt_a(as, sizeof as, c.a, c.k);
        float mean_f = NAN;
        if ((c.rc = o->host_mean(c.a, &mean_f, 1, 1, packed, &c.e))) {
            c.op = "host_mean";
            failed_in = "dens-mean";
            break;
        }
        double mean = mean_f, centre = isfinite(mean) ? fmin(fmax(mean, lo), hi)
                                       : isfinite(lo) && isfinite(hi) ? 0.5 * (lo + hi)
                                       : fmin(fmax(0.0, lo), hi);
        dens d = {0};
        if (discrete) {
            if (sum_mass(&c, lo, hi, centre, &d)) {
                failed_in = "normalised";
                break;
            }
        } else {
            /* The scale of a Gaussian with the density's value at the centre. */
            double p0;
            float xc = (float)centre;
            if (density(&c, &xc, 1, &p0)) {
                failed_in = "normalised";
                break;
            }
            double scale = p0 > 0 ? fmin(fmax(1.0 / (p0 * 2.5066282746310002), 1e-6), 1e6) : 1.0;
            if (isfinite(lo) && isfinite(hi))
                scale = fmin(scale, hi - lo);
            if (integrate(&c, pcs, lo, hi, centre, scale, &d)) {
                failed_in = "normalised";
                break;
            }
        }
        if (c.bad_nll) {
            failed_in = "normalised";
            break;
        }
        double off = fabs(d.mass - 1.0);
        bool trusted = discrete ? d.converged : d.err <= 0.1 * DAECL_NORMCHECK_TOL;
        worst_err = fmax(worst_err, d.err);
        if (!trusted)
            note(&norm, off, true, "at a = %s the %s did not settle (%s): nll has jumps, spikes "
                 "or heavy tails the checker cannot follow; make exp(-nll) smooth inside the "
                 "support", as, discrete ? "sum" : "quadrature",
                 discrete ? "the mass never falls off within 10^6 terms or 2^24" : "error "
                 "estimate above 1e-6 after 2000 intervals");
        else
            note(&norm, off, !(off <= DAECL_NORMCHECK_TOL), "at a = %s, exp(-nll) %s to %.9g over "
                 "%s, not 1 (tolerance %g): nll is %.4g nats too %s; its constants must make "
                 "exp(-nll) a %s", as, discrete ? "sums" : "integrates", d.mass, sup,
                 DAECL_NORMCHECK_TOL, fabs(log(d.mass)), d.mass > 1 ? "small" : "large",
                 discrete ? "probability mass function" : "density");
        if (d.mass > 0 && isfinite(d.mean)) {
            double sd = sqrt(fmax(d.var, 0.0));
            double dm = fabs(mean - d.mean) / (sd + fabs(d.mean));
            note(&dmean, dm, !(dm <= DAECL_NORMCHECK_MEAN_TOL), "at a = %s, mean() is %.6g but "
                 "the density exp(-nll) has mean %.6g (sd %.3g); mean() must return E[x | a] of "
                 "the distribution nll describes", as, mean, d.mean, sd);
        }
        if (samples(&c, m, ab, smp, &d, &out, &mom, &all_whole)) {
            failed_in = "moments";
            break;
        }
    }
    free(pcs), free(ab), free(smp);
    if (failed_in) {
        report_op(&c, report, ctx, failed_in);
        return 0;
    }
    char range[120] = "";
    if (dlo != lo || dhi != hi)
        snprintf(range, sizeof range, ", and accepts data in [%g, %g]", dlo, dhi);
    if (!out.first[0] && !discrete && all_whole)
        snprintf(out.first, sizeof out.first, "declares the continuous support %s but every one "
                 "of %d samples is a whole number: declare DAECL_SUPPORT_DISCRETE", sup,
                 N_POINTS * SAMPLES);
    if (out.first[0]) {
        report(ctx, DAECL_NORMCHECK_FAIL, "support", out.first);
    } else {
        snprintf(text, sizeof text, "declares the support %s%s; all %d samples at %d decoder "
                 "values lie in it", sup, range, N_POINTS * SAMPLES, N_POINTS);
        report(ctx, DAECL_NORMCHECK_PASS, "support", text);
    }
    if (norm.first[0]) {
        report(ctx, DAECL_NORMCHECK_FAIL, "normalised", norm.first);
    } else {
        if (discrete)
            snprintf(text, sizeof text, "exp(-nll) sums to 1 over %s within %g at %d decoder "
                     "values (worst |sum - 1| %.2g)", sup, DAECL_NORMCHECK_TOL, N_POINTS,
                     norm.value);
        else
            snprintf(text, sizeof text, "exp(-nll) integrates to 1 over %s within %g at %d "
                     "decoder values (worst |integral - 1| %.2g; adaptive Gauss-Kronrod 7-15 in "
                     "double, worst error estimate %.2g)", sup, DAECL_NORMCHECK_TOL, N_POINTS,
                     norm.value, worst_err);
        report(ctx, DAECL_NORMCHECK_PASS, "normalised", text);
    }
    if (out.first[0]) {
        /* Over a support the distribution leaves, the density's moments
         * say nothing more than the line above. */
        report(ctx, DAECL_NORMCHECK_SKIP, "dens-mean", "not judged: the declared support is "
               "wrong (see support)");
        report(ctx, DAECL_NORMCHECK_SKIP, "moments", "not judged: the declared support is "
               "wrong (see support)");
        return 0;
    }
    if (dmean.first[0]) {
        report(ctx, DAECL_NORMCHECK_FAIL, "dens-mean", dmean.first);
    } else {
        snprintf(text, sizeof text, "mean() equals the mean of exp(-nll) within %g (sd + |mean|) "
                 "at %d decoder values (worst %.2g)", DAECL_NORMCHECK_MEAN_TOL, N_POINTS,
                 dmean.value);
        report(ctx, DAECL_NORMCHECK_PASS, "dens-mean", text);
    }
    if (mom.first[0]) {
        report(ctx, DAECL_NORMCHECK_FAIL, "moments", mom.first);
    } else {
        snprintf(text, sizeof text, "mean and variance of %d samples match exp(-nll)'s within "
                 "%g standard errors at %d decoder values (worst %.1f)", SAMPLES, SIGMAS,
                 N_POINTS, mom.value);
        report(ctx, DAECL_NORMCHECK_PASS, "moments", text);
    }
    return 0;
}
