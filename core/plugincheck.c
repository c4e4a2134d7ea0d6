/* daecl — `daecl plugin check` (plugincheck.h): loading one file, the report,
 * and the checks of each kind. Inputs come from splitmix64 under fixed seeds,
 * so a report is the same on every run and every machine; the noise under
 * test comes from the plugin's own Philox addressing. */
#include "core/plugincheck.h"

#include <assert.h>
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/conformance.h"
#include "core/error.h"
#include "core/normcheck.h"
#include "core/pluginfile.h"
#include "core/registry.h"
#include "daecl/backend.h"
#include "daecl/comm.h"

/* As normcheck.h numbers them; WARN counts as a skip. */
enum { PASS, FAIL, SKIP, WARN };

/* Likelihood checks. Draws are cheap (one element per call), so the counts
 * are set by the statistics, not by time: the whole report takes well under
 * a second on the host. */
#define GRAD_DRAWS 1000
#define GRAD_LEVELS 10      /* step halvings before a point counts as a kink */
/* The gradient check's error measure, stated in its report line and in
 * docs/plugins.md:
 *     e = max(0, |g - fd| - 4 sigma) / max(|fd|, GRAD_SCALE)
 * the error beyond the differences' own float rounding (sigma, from the
 * nll values' magnitude and the step), relative where the gradient is at
 * least GRAD_SCALE and absolute, in units of GRAD_SCALE, below it. A point
 * fails when e > GRAD_TOL. */
#define GRAD_TOL 1e-3
#define GRAD_SCALE 1e-2
#define GRAD_MAX_ROUGH 0.05
#define MEAN_POINTS 16
#define MEAN_SAMPLES 4000
#define SIGMAS 5.0          /* a fixed-seed 5-sigma test: false alarms ~1e-6 per test */
#define DEVICE_RTOL 1e-5
/* Corruption statistics: (64, 1000) inputs uniform in [0, 1], examples of
 * shape (25, 40) so that row-granular plugins see an image. */
#define STAT_ROWS 64
#define STAT_DIM 1000
static const daecl_shape stat_shape = {2, {25, 40, 1, 1}};

typedef struct chk {
    FILE *out;
    daecl_plugincheck_result *res;
    int scope;
    const char *backend_name;
    const daecl_plugin *backend;
    const daecl_plugin *p; /* the registry's copy: slots the plugin's table lacks read NULL */
    daecl_param_value *values; /* the schema's defaults */
    float packed[DAECL_MAX_PACKED_PARAMS];
    size_t n_packed;
    char failed[160]; /* names of the failed checks, for the last line */
} chk;

static void verdict(chk *c, int v, const char *name, const char *fmt, ...) DAECL_PRINTF(4, 5);

static void verdict(chk *c, int v, const char *name, const char *fmt, ...)
{
    static const char *const word[] = {"PASS", "FAIL", "SKIP", "WARN"};
    fprintf(c->out, "  %s  %-10s ", word[v], name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->out, fmt, ap);
    va_end(ap);
    fputc('\n', c->out);
    if (v == PASS) {
        c->res->passed++;
    } else if (v == SKIP || v == WARN) {
        c->res->skipped++;
    } else {
        c->res->failed++;
        size_t used = strlen(c->failed);
        snprintf(c->failed + used, sizeof c->failed - used, "%s%s", used ? ", " : "", name);
    }
}

/* A host op of the plugin returned an error: the check fails with its words. */
static void op_failed(chk *c, const char *check, const char *op, int rc, const daecl_err *e)
{
    verdict(c, FAIL, check, "%s returned %s: %s", op, daecl_status_name(rc),
            e->msg[0] ? e->msg : "(no message)");
}

static int nomem(daecl_err *err, const char *what)
{
    return daecl_err_set(err, DAECL_ENOMEM, "out of memory checking a plugin (%s)", what);
}

/* ---- inputs ---------------------------------------------------------------- */

static uint64_t next64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
    return (double)(next64(s) >> 11) * 0x1.0p-53;
}

/* Data values: exact 0 and 1 (binary data) for a quarter each, else uniform
 * in [0, 1]. */
static float draw_x(uint64_t *s, size_t i)
{
    if (i % 4 == 0)
        return 0.0f;
    if (i % 4 == 1)
        return 1.0f;
    return (float)unif(s);
}

/* Decoder values in [-4, 4] (logits, means, log-variances), on a 2^-10
 * grid so that a +- k h below is exact in float for the steps used. */
static float draw_a(uint64_t *s)
{
    return (float)(round((unif(s) * 8.0 - 4.0) * 1024.0) / 1024.0);
}

/* ---- descriptor ------------------------------------------------------------ */

/* The schema's defaults as resolved values (resolved by the core, as for a
 * config); NULL when out of memory. */
static daecl_param_value *default_values(const daecl_plugin *p)
{
    daecl_param_value *v = calloc(p->n_params + 1, sizeof *v);
    if (v)
        daecl_plugin_defaults(p, v);
    return v;
}

static void print_schema(chk *c)
{
    const daecl_plugin *p = c->p;
    char list[512] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < p->n_params && used < sizeof list; i++) {
        const daecl_param_spec *s = &p->params[i];
        const char *sep = i ? ", " : "";
        int n;
        if (s->type == DAECL_PARAM_STRING || s->type == DAECL_PARAM_ENUM)
            n = snprintf(list + used, sizeof list - used, "%s%s = %s", sep, s->name,
                         s->def_str ? s->def_str : "");
        else if (s->type == DAECL_PARAM_FLOAT2)
            n = snprintf(list + used, sizeof list - used, "%s%s = [%g, %g]", sep, s->name,
                         s->def[0], s->def[1]);
        else
            n = snprintf(list + used, sizeof list - used, "%s%s = %g", sep, s->name, s->def[0]);
        used += n > 0 ? (size_t)n : 0;
    }
    verdict(c, PASS, "schema", "%u parameter%s%s%s, packed into %zu float%s", p->n_params,
            p->n_params == 1 ? "" : "s", p->n_params ? " with defaults " : "", list, c->n_packed,
            c->n_packed == 1 ? "" : "s");
}

/* ---- likelihood: host checks ----------------------------------------------- */

static const daecl_likelihood_ops *lik(const chk *c)
{
    return c->p->ops;
}

/* nll of one element (x, a[0..k)). */
static int nll1(const chk *c, float x, const float *a, float *nll, daecl_err *e)
{
    return lik(c)->host_loss_grad(&x, a, 1, 1, c->packed, 1.0f, nll, NULL, e);
}

/* d nll / d a[j] at (x, a) by the five-point central difference (error
 * O(h^4)) evaluated in double, halving h until two steps agree. *smooth is
 * false where they never do (a kink or jump within the stencil). *noise is
 * the difference's own error from float rounding of the nll values. */
static int difference(const chk *c, float x, const float *a, unsigned j, double *fd,
                      double *noise, bool *smooth, daecl_err *e)
{
    static const int off[4] = {-2, -1, 1, 2};
    unsigned k = lik(c)->params_per_dim;
    double scale = 1.0;
    while (scale < fabs(a[j]))
        scale *= 2.0;
    double h = scale * 0x1p-6, prev = NAN, prev_noise = 0.0;
    *smooth = false;
    for (int level = 0; level < GRAD_LEVELS; level++, h *= 0.5) {
        float f[4];
        double fmax_abs = 0.0;
        for (int t = 0; t < 4; t++) {
            float ap[4] = {0};
            memcpy(ap, a, k * sizeof *a);
            ap[j] = (float)(a[j] + off[t] * h);
            assert((double)ap[j] == (double)a[j] + off[t] * h); /* draw_a's grid */
            int rc = nll1(c, x, ap, &f[t], e);
            if (rc)
                return rc;
            fmax_abs = fmax(fmax_abs, fabs((double)f[t]));
        }
        double d = ((double)f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * h);
        double nz = 18.0 * fmax_abs * FLT_EPSILON / (12.0 * h);
        double settle = 1e-4 * fmax(fabs(d), fabs(prev)) + 4.0 * (nz + prev_noise);
        if (!isnan(prev) && fabs(d - prev) <= settle) {
            *fd = d;
            *noise = nz;
            *smooth = true;
            return 0;
        }
        prev = d;
        prev_noise = nz;
    }
    return 0;
}

static void fmt_a(char *buf, size_t n, const float *a, unsigned k)
{
    snprintf(buf, n, "(%.6g", a[0]);
    for (unsigned j = 1; j < k; j++)
        snprintf(buf + strlen(buf), n - strlen(buf), ", %.6g", a[j]);
    snprintf(buf + strlen(buf), n - strlen(buf), ")");
}

static int check_gradient(chk *c)
{
    const daecl_likelihood_ops *o = lik(c);
    unsigned k = o->params_per_dim;
    uint64_t s = 0x67726164u;
    size_t n_checked = 0, n_rough = 0, n_bad = 0;
    double worst = 0.0, worst_allow = 0.0;
    char bad[320] = "";
    for (size_t d = 0; d < GRAD_DRAWS; d++) {
        float x = draw_x(&s, d), a[4] = {0}, g[4] = {0}, nll;
        for (unsigned j = 0; j < k; j++)
            a[j] = draw_a(&s);
        daecl_err e = {0};
        int rc = o->host_loss_grad(&x, a, 1, 1, c->packed, 1.0f, &nll, g, &e);
        if (rc) {
            op_failed(c, "gradient", "host_loss_grad", rc, &e);
            return 0;
        }
        for (unsigned j = 0; j < k; j++) {
            double fd = 0.0, noise = 0.0;
            bool smooth;
            rc = difference(c, x, a, j, &fd, &noise, &smooth, &e);
            if (rc) {
                op_failed(c, "gradient", "host_loss_grad", rc, &e);
                return 0;
            }
            if (!smooth) {
                n_rough++;
                continue;
            }
            n_checked++;
            double unit = fmax(fabs(fd), GRAD_SCALE);
            double err = fmax(0.0, fabs((double)g[j] - fd) - 4.0 * noise) / unit;
            worst_allow = fmax(worst_allow, 4.0 * noise / unit);
            if (!(err <= GRAD_TOL)) {
                if (!bad[0]) {
                    char as[160];
                    fmt_a(as, sizeof as, a, k);
                    snprintf(bad, sizeof bad, "at x = %.6g, a = %s: d nll / d a[%u] is %.6g but "
                             "the differences give %.6g (+- %.2g)", x, as, j, g[j], fd,
                             4.0 * noise);
                }
                n_bad++;
            }
            if (!(err <= worst))
                worst = err;
        }
    }
    size_t total = (size_t)GRAD_DRAWS * k;
    if (n_bad)
        verdict(c, FAIL, "gradient", "grad disagrees with central differences of nll at %zu of %zu "
                "points: worst (|g - fd| - 4 sigma) / max(|fd|, %g) is %.3g (tolerance %g); "
                "first %s", n_bad, n_checked, GRAD_SCALE, worst, GRAD_TOL, bad);
    else if ((double)n_rough > GRAD_MAX_ROUGH * (double)total)
        verdict(c, FAIL, "gradient", "nll is not smooth at %zu of %zu points (x in [0, 1], a in "
                "[-4, 4]): differences never settle, so grad cannot be checked; look for jumps or "
                "NaN in nll, and make the branches of a piecewise formula meet (docs/plugins.md)",
                n_rough, total);
    else
        verdict(c, PASS, "gradient", "grad matches central differences of nll in double at %zu "
                "points: worst (|g - fd| - 4 sigma) / max(|fd|, %g) is %.2g (tolerance %g; "
                "4 sigma, the differences' float rounding, is at most %.2g of max(|fd|, %g))%s",
                n_checked, GRAD_SCALE, worst, GRAD_TOL, worst_allow, GRAD_SCALE,
                n_rough ? "; points on kinks skipped" : "");
    return 0;
}

/* nll, grad, mean and sample finite for extreme decoder values ("stable in
 * float32 for any finite a", plugin.h). */
static int check_finite(chk *c)
{
    static const float xs[3] = {0.0f, 0.5f, 1.0f};
    static const float as[5] = {-50.0f, -10.0f, 0.0f, 10.0f, 50.0f};
    const daecl_likelihood_ops *o = lik(c);
    unsigned k = o->params_per_dim;
    size_t combos = 1;
    for (unsigned j = 0; j < k; j++)
        combos *= 5;
    for (size_t m = 0; m < combos; m++) {
        float a[4] = {0};
        size_t rest = m;
        for (unsigned j = 0; j < k; j++, rest /= 5)
            a[j] = as[rest % 5];
        for (int i = 0; i < 3; i++) {
            float nll = 0, g[4] = {0}, mean = 0, smp = 0;
            daecl_err e = {0};
            daecl_noise_key key = {.seed = 1, .stream = DAECL_STREAM_SAMPLE,
                                   .pos0 = (uint32_t)(m * 3 + (size_t)i)};
            const char *op = "host_loss_grad";
            int rc = o->host_loss_grad(&xs[i], a, 1, 1, c->packed, 1.0f, &nll, g, &e);
            if (!rc) {
                op = "host_mean";
                rc = o->host_mean(a, &mean, 1, 1, c->packed, &e);
            }
            if (!rc) {
                op = "host_sample";
                rc = o->host_sample(a, &smp, 1, 1, &key, c->packed, &e);
            }
            if (rc) {
                op_failed(c, "finite", op, rc, &e);
                return 0;
            }
            bool ok = isfinite(nll) && isfinite(mean) && isfinite(smp);
            for (unsigned j = 0; j < k; j++)
                ok = ok && isfinite(g[j]);
            if (!ok) {
                char ab[160];
                fmt_a(ab, sizeof ab, a, k);
                verdict(c, FAIL, "finite", "at x = %g, a = %s: nll %g, grad[0] %g, mean %g, "
                        "sample %g; every one must be finite for any finite a", xs[i], ab, nll,
                        g[0], mean, smp);
                return 0;
            }
        }
    }
    verdict(c, PASS, "finite", "nll, grad, mean and sample finite for x in {0, 0.5, 1} and every "
            "decoder value in {-50, -10, 0, 10, 50}");
    return 0;
}

static bool close_rel(double a, double b, double rtol)
{
    return fabs(a - b) <= rtol * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* The blocked layout, row sums, scale and NULL outputs: a (rows, dim) call
 * against one call per element. */
static int check_layout(chk *c)
{
    enum { R = 3, D = 7 };
    const daecl_likelihood_ops *o = lik(c);
    unsigned k = o->params_per_dim;
    float x[R * D], a[R * 4 * D], nll[R], nll2[R], g[R * 4 * D], g2[R * 4 * D], mean[R * D];
    uint64_t s = 0x6c61796fu;
    for (size_t i = 0; i < R * D; i++)
        x[i] = draw_x(&s, i + 2);
    for (size_t i = 0; i < R * k * D; i++)
        a[i] = draw_a(&s);
    daecl_err e = {0};
    int rc;
    const char *op = "host_loss_grad";
    if ((rc = o->host_loss_grad(x, a, R, D, c->packed, 1.0f, nll, g, &e)) ||
        (op = "host_mean", rc = o->host_mean(a, mean, R, D, c->packed, &e))) {
        op_failed(c, "layout", op, rc, &e);
        return 0;
    }
    const char *bad = NULL;
    for (size_t r = 0; r < R && !bad; r++) {
        double sum = 0.0, sum_abs = 0.0;
        for (size_t j = 0; j < D && !bad; j++) {
            float a1[4] = {0}, g1[4] = {0}, n1, m1;
            for (unsigned q = 0; q < k; q++)
                a1[q] = a[r * k * D + q * D + j];
            if ((rc = o->host_loss_grad(&x[r * D + j], a1, 1, 1, c->packed, 1.0f, &n1, g1, &e)) ||
                (op = "host_mean", rc = o->host_mean(a1, &m1, 1, 1, c->packed, &e))) {
                op_failed(c, "layout", op, rc, &e);
                return 0;
            }
            sum += n1;
            sum_abs += fabs(n1);
            for (unsigned q = 0; q < k; q++)
                if (!close_rel(g[r * k * D + q * D + j], g1[q], 1e-6))
                    bad = "grad of a (rows, dim) call differs from per-element calls: index it "
                          "as a[r*k*dim + c*dim + j] (plugin.h)";
            if (!bad && !close_rel(mean[r * D + j], m1, 1e-6))
                bad = "mean of a (rows, dim) call differs from per-element calls";
        }
        if (!bad && fabs(nll[r] - sum) > 1e-5 * sum_abs + 1e-6)
            bad = "nll_rows[r] is not the sum of the row's per-element nll";
    }
    /* scale multiplies grad; NULL outputs change nothing else. */
    if (!bad) {
        op = "host_loss_grad";
        if ((rc = o->host_loss_grad(x, a, R, D, c->packed, 0.375f, NULL, g2, &e)) ||
            (rc = o->host_loss_grad(x, a, R, D, c->packed, 1.0f, nll2, NULL, &e))) {
            op_failed(c, "layout", op, rc, &e);
            return 0;
        }
        for (size_t i = 0; i < R * k * D && !bad; i++)
            if (!close_rel(g2[i], 0.375 * g[i], 1e-6))
                bad = "grad with scale 0.375 (and nll_rows NULL) is not 0.375 times grad";
        for (size_t r = 0; r < R && !bad; r++)
            if (!close_rel(nll2[r], nll[r], 1e-6))
                bad = "nll_rows with grad NULL differ from nll_rows with grad";
    }
    if (bad)
        verdict(c, FAIL, "layout", "%s", bad);
    else
        verdict(c, PASS, "layout", "(%d, %u*%d) calls match per-element calls: row sums, blocked "
                "grad, mean; scale and NULL outputs behave", R, k, D);
    return 0;
}

/* Mean and score against the plugin's own samples: at each point, the sample
 * average must match mean() and the average of grad over samples must be 0
 * (E[d/da -log p(x|a)] = 0 for x ~ p(x|a)), both within SIGMAS standard
 * errors. Together they tie nll, grad, mean and sample to one distribution. */
static int check_mean_score(chk *c, daecl_err *err)
{
    const daecl_likelihood_ops *o = lik(c);
    unsigned k = o->params_per_dim;
    const size_t S = MEAN_SAMPLES;
    float *ab = malloc(k * S * sizeof *ab), *smp = malloc(S * sizeof *smp),
          *g = malloc(k * S * sizeof *g);
    if (!ab || !smp || !g) {
        free(ab), free(smp), free(g);
        return nomem(err, "samples");
    }
    uint64_t s = 0x6d65616eu;
    double worst_mean = 0.0, worst_score = 0.0;
    char bad_mean[320] = "", bad_score[320] = "";
    const char *failed_op = NULL;
    daecl_err e = {0};
    int rc = 0;
    for (uint32_t pt = 0; pt < MEAN_POINTS && !failed_op; pt++) {
        float a[4] = {0}, mean;
        for (unsigned j = 0; j < k; j++) {
            a[j] = draw_a(&s);
            for (size_t i = 0; i < S; i++)
                ab[j * S + i] = a[j];
        }
        daecl_noise_key key = {.seed = 0x5eed, .stream = DAECL_STREAM_SAMPLE, .epoch = pt};
        if ((failed_op = "host_sample", rc = o->host_sample(ab, smp, 1, S, &key, c->packed, &e)) ||
            (failed_op = "host_mean", rc = o->host_mean(a, &mean, 1, 1, c->packed, &e)) ||
            (failed_op = "host_loss_grad",
             rc = o->host_loss_grad(smp, ab, 1, S, c->packed, 1.0f, NULL, g, &e)))
            break;
        failed_op = NULL;
        char as[160];
        fmt_a(as, sizeof as, a, k);
        /* Sample mean and variance in double; then the score, per parameter. */
        for (unsigned j = 0; j <= k; j++) {
            const float *v = j == 0 ? smp : g + (j - 1) * S;
            double m = 0.0, var = 0.0;
            for (size_t i = 0; i < S; i++)
                m += v[i];
            m /= (double)S;
            for (size_t i = 0; i < S; i++)
                var += (v[i] - m) * (v[i] - m);
            var /= (double)(S - 1);
            double want = j == 0 ? mean : 0.0, se = sqrt(var / (double)S);
            double z = fabs(m - want) <= 1e-6 * fmax(1.0, fabs(want)) ? 0.0 : fabs(m - want) / se;
            if (!isfinite(m))
                z = INFINITY;
            double *worst = j == 0 ? &worst_mean : &worst_score;
            char *bad = j == 0 ? bad_mean : bad_score;
            if (!(z <= *worst))
                *worst = z;
            if (!(z <= SIGMAS) && !bad[0]) {
                if (j == 0)
                    snprintf(bad, 320, "at a = %s, mean() is %.6g but %zu samples average %.6g "
                             "(+- %.3g)", as, mean, S, m, se);
                else
                    snprintf(bad, 320, "at a = %s, d nll / d a[%u] averages %.6g (+- %.3g) over "
                             "%zu samples, not 0", as, j - 1, m, se, S);
            }
        }
    }
    free(ab), free(smp), free(g);
    if (failed_op) {
        op_failed(c, "mean", failed_op, rc, &e);
        return 0;
    }
    if (bad_mean[0])
        verdict(c, FAIL, "mean", "mean() disagrees with the sample average by %.1f standard errors "
                "(limit %g): first %s", worst_mean, SIGMAS, bad_mean);
    else
        verdict(c, PASS, "mean", "mean() matches the average of %d samples at %d points within "
                "%g standard errors (worst %.1f)", MEAN_SAMPLES, MEAN_POINTS, SIGMAS, worst_mean);
    if (bad_score[0])
        verdict(c, FAIL, "score", "grad does not average to 0 under the plugin's own samples "
                "(%.1f standard errors, limit %g), so nll, grad and sample describe different "
                "distributions: first %s", worst_score, SIGMAS, bad_score);
    else
        verdict(c, PASS, "score", "grad averages to 0 under the plugin's own samples within %g "
                "standard errors (worst %.1f)", SIGMAS, worst_score);
    return 0;
}

/* Runs host_sample (or, for a corruption, host_apply) on rows [r0, r1) of
 * the inputs with pos0 = key->pos0 + r0, as a chunked caller does. */
static int run_noise(const chk *c, const float *in, float *out, size_t r0, size_t r1, size_t dim,
                     const daecl_shape *shape, daecl_noise_key key, daecl_err *e)
{
    key.pos0 += (uint32_t)r0;
    if (c->p->kind == DAECL_KIND_CORRUPTION) {
        const daecl_corruption_ops *o = c->p->ops;
        return o->host_apply(in + r0 * dim, out + r0 * dim, r1 - r0, dim, shape, &key, c->packed,
                             e);
    }
    unsigned k = lik(c)->params_per_dim;
    return lik(c)->host_sample(in + r0 * k * dim, out + r0 * dim, r1 - r0, dim, &key, c->packed,
                               e);
}

/* Same key, same bytes; chunked calls (pos0 = the chunk's first row, up to
 * the last position below 2^32) give what one call gives; other keys
 * differ. `in` is x (corruption) or a (likelihood); for a corruption `x` is
 * the input again, and an output equal to it everywhere (an identity) has
 * no key to depend on. */
static int check_noise(chk *c, const char *name, const float *in, const float *x, size_t rows,
                       size_t dim, const daecl_shape *shape, daecl_err *err)
{
    size_t n = rows * dim;
    float *o1 = malloc(n * sizeof *o1), *o2 = malloc(n * sizeof *o2);
    if (!o1 || !o2) {
        free(o1), free(o2);
        return nomem(err, "noise outputs");
    }
    const char *op = c->p->kind == DAECL_KIND_CORRUPTION ? "host_apply" : "host_sample";
    daecl_noise_key base = {.seed = 0x5eedfeedull, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                            .stage = 2, .substep = 3, .epoch = 7,
                            .pos0 = (uint32_t)(0x100000000ull - rows)};
    if (c->p->kind == DAECL_KIND_LIKELIHOOD)
        base.stream = DAECL_STREAM_SAMPLE;
    daecl_err e = {0};
    int rc;
    const char *bad = NULL;
    bool identity = false;
    char detail[200] = "";
    if ((rc = run_noise(c, in, o1, 0, rows, dim, shape, base, &e)) ||
        (rc = run_noise(c, in, o2, 0, rows, dim, shape, base, &e)))
        goto op_fail;
    if (memcmp(o1, o2, n * sizeof *o1) != 0)
        bad = "two calls with the same key gave different bytes: draw noise only from "
              "daecl_noise_block or daecl_row_block, never from a counter or clock of your own";
    if (!bad) {
        size_t cut[4] = {0, 1, 3, rows};
        for (int i = 0; i < 3 && !rc; i++)
            rc = run_noise(c, in, o2, cut[i], cut[i + 1], dim, shape, base, &e);
        if (rc)
            goto op_fail;
        if (memcmp(o1, o2, n * sizeof *o1) != 0)
            bad = "calls on chunks of rows (pos0 = the chunk's first row) differ from one call: "
                  "row r must draw only from position key.pos0 + r";
    }
    if (!bad && x) {
        identity = true;
        for (size_t i = 0; i < n && identity; i++)
            identity = memcmp(&o1[i], &x[i], sizeof *x) == 0;
    }
    if (!bad && !identity) {
        static const char *const what[6] = {"seed", "stream", "stage", "substep", "epoch",
                                            "pos0 (the rows' positions)"};
        for (int w = 0; w < 6 && !bad; w++) {
            daecl_noise_key other = base;
            if (w == 0)
                other.seed++;
            else if (w == 1)
                other.stream = c->p->kind == DAECL_KIND_CORRUPTION ? DAECL_STREAM_EVAL_CORRUPTION
                                                                   : DAECL_STREAM_PROBE;
            else if (w == 2)
                other.stage++;
            else if (w == 3)
                other.substep++;
            else if (w == 4)
                other.epoch++;
            else
                other.pos0 -= (uint32_t)rows;
            if ((rc = run_noise(c, in, o2, 0, rows, dim, shape, other, &e)))
                goto op_fail;
            if (memcmp(o1, o2, n * sizeof *o1) == 0) {
                snprintf(detail, sizeof detail, "another %s gave the same bytes: the noise must "
                         "depend on the whole key (use daecl_noise_block or daecl_row_block)",
                         what[w]);
                bad = detail;
            }
        }
    }
    free(o1), free(o2);
    if (bad)
        verdict(c, FAIL, name, "%s", bad);
    else if (identity)
        verdict(c, PASS, name, "same key gives the same bytes and chunked calls match one call; "
                "the output equals the input, so key dependence is not checked");
    else
        verdict(c, PASS, name, "same key gives the same bytes; chunks of 1, 2 and the rest rows "
                "(pos0 up to 2^32 - 1) match one call; another seed, stream, stage, substep, "
                "epoch or pos0 changes the output");
    return 0;
op_fail:
    free(o1), free(o2);
    op_failed(c, name, op, rc, &e);
    return 0;
}

static int check_sample(chk *c, daecl_err *err)
{
    enum { R = 8, D = 129 };
    unsigned k = lik(c)->params_per_dim;
    float *a = malloc((size_t)R * k * D * sizeof *a);
    if (!a)
        return nomem(err, "decoder values");
    uint64_t s = 0x73616d70u;
    for (size_t i = 0; i < (size_t)R * k * D; i++)
        a[i] = draw_a(&s);
    daecl_shape shape = {1, {D, 1, 1, 1}};
    int rc = check_noise(c, "sample", a, NULL, R, D, &shape, err);
    free(a);
    return rc;
}

/* Support, normalisation, the density's mean and the samples' moments
 * (normcheck.c) report through here. */
static void norm_verdict(void *ctx, int v, const char *name, const char *text)
{
    verdict(ctx, v, name, "%s", text);
}

/* ---- corruption: host checks ----------------------------------------------- */

static int check_corruption_host(chk *c, daecl_err *err)
{
    const daecl_corruption_ops *o = c->p->ops;
    const size_t n = (size_t)STAT_ROWS * STAT_DIM;
    float *x = malloc(n * sizeof *x), *xt = malloc(n * sizeof *xt);
    if (!x || !xt) {
        free(x), free(xt);
        return nomem(err, "corruption inputs");
    }
    uint64_t s = 0x636f7272u;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)unif(&s);
    daecl_noise_key key = {.seed = 42, .stream = DAECL_STREAM_TRAIN_CORRUPTION};
    daecl_err e = {0};
    int rc = o->host_apply(x, xt, STAT_ROWS, STAT_DIM, &stat_shape, &key, c->packed, &e);
    if (rc) {
        op_failed(c, "statistics", "host_apply", rc, &e);
        free(x), free(xt);
        return 0;
    }
    size_t changed = 0, bad = n;
    double sum = 0.0, sum2 = 0.0, lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(xt[i])) {
            bad = i;
            break;
        }
        double d = (double)xt[i] - x[i];
        changed += xt[i] != x[i];
        sum += d;
        sum2 += d * d;
        lo = fmin(lo, xt[i]);
        hi = fmax(hi, xt[i]);
    }
    if (bad < n) {
        verdict(c, FAIL, "statistics", "x~[%zu] is %g for x = %g: a corruption must keep finite "
                "inputs finite", bad, xt[bad], x[bad]);
    } else {
        double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
        verdict(c, PASS, "statistics", "x uniform in [0, 1], (%d, %d), defaults: %.2f%% of inputs "
                "changed; x~ - x has mean %.4g and variance %.4g; x~ in [%.4g, %.4g]", STAT_ROWS,
                STAT_DIM, 100.0 * (double)changed / (double)n, mean, var > 0 ? var : 0.0, lo, hi);
    }
    free(xt);
    rc = check_noise(c, "noise", x, x, STAT_ROWS, STAT_DIM, &stat_shape, err);
    free(x);
    return rc;
}

/* ---- the device comparison ------------------------------------------------- */

typedef struct dev {
    daecl_registry *reg;
    const daecl_backend_ops *be;
    void *ctx;
    void *bound;
    daecl_buf *buf[5];
} dev;

static void dev_close(dev *d)
{
    if (d->be) {
        for (int i = 0; i < 5; i++)
            d->be->free(d->ctx, d->buf[i]);
        if (d->bound && d->be->unbind)
            d->be->unbind(d->ctx, d->bound);
        d->be->close(d->ctx);
    }
    daecl_registry_destroy(d->reg);
}

/* Finds and opens the backend. Returns 1 when the comparison must be skipped
 * (verdict printed), 0 when open, < 0 out of memory. */
static int dev_open(chk *c, dev *d, daecl_err *err)
{
    const daecl_plugin *bp = c->backend;
    const char *name = c->backend_name ? c->backend_name : "opencl";
    if (!bp) {
        daecl_err e = {0};
        int rc = daecl_registry_create(NULL, &d->reg, &e);
        if (rc) {
            *err = e;
            return rc;
        }
        bp = daecl_registry_find(d->reg, DAECL_KIND_BACKEND, name, NULL);
        if (!bp) {
            verdict(c, SKIP, "device", "no backend plugin '%s' on the search path %s "
                    "(`daecl plugins` lists them)", name, daecl_registry_search_path(d->reg));
            return 1;
        }
    }
    name = bp->name;
    daecl_param_value *values = default_values(bp);
    if (!values)
        return nomem(err, "backend parameters");
    const daecl_backend_ops *be = bp->ops;
    daecl_err e = {0};
    int rc = be->open(daecl_host_table(), values, &d->ctx, &e);
    free(values);
    if (rc) {
        verdict(c, SKIP, "device", "the %s backend opened no device: %s", name, e.msg);
        return 1;
    }
    d->be = be;
    daecl_device_info info;
    memset(&info, 0, sizeof info);
    be->describe(d->ctx, &info, sizeof info);
    if (!be->bind) {
        verdict(c, SKIP, "device", "the %s backend runs every plugin on the host", name);
        return 1;
    }
    rc = be->bind(d->ctx, c->p, c->packed, c->n_packed, &d->bound, &e);
    if (rc == DAECL_ENOTSUP) {
        verdict(c, SKIP, "device", "the %s backend cannot run it on %s: %s", name, info.name,
                e.msg);
        return 1;
    }
    if (rc) {
        verdict(c, FAIL, "device", "the %s backend could not prepare it for %s: %s", name,
                info.name, e.msg);
        return 1;
    }
    fprintf(c->out, "  ....  device     on %s: %s (%s)\n", name, info.name, info.platform);
    return 0;
}

/* Allocates and fills device buffer i with n floats from host (NULL: zeros). */
static int dev_buf(dev *d, int i, const float *host, size_t n, daecl_err *e)
{
    int rc = d->be->alloc(d->ctx, n * sizeof(float), "plugin check data", &d->buf[i], e);
    if (!rc && host)
        rc = d->be->write(d->ctx, d->buf[i], 0, host, n * sizeof(float), e);
    return rc;
}

static int dev_read(dev *d, int i, float *host, size_t n, daecl_err *e)
{
    int rc = d->be->finish(d->ctx, e);
    return rc ? rc : d->be->read(d->ctx, d->buf[i], 0, host, n * sizeof(float), e);
}

static daecl_slice sl(dev *d, int i)
{
    daecl_slice s = {d->buf[i], 0};
    return s;
}

/* Worst |dev - host| / max(1, |host|) over n values; *where its index. */
static double worst_rel(const float *dv, const float *hv, size_t n, size_t *where)
{
    double worst = 0.0;
    *where = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)dv[i] - hv[i]) / fmax(1.0, fabs((double)hv[i]));
        if (!(r <= worst)) {
            worst = isnan(r) ? INFINITY : r;
            *where = i;
        }
    }
    return worst;
}

static int device_corruption(chk *c, dev *d, daecl_err *err)
{
    enum { R = 37, D = 129 };
    const size_t n = (size_t)R * D;
    float *x = malloc(n * sizeof *x), *h = malloc(n * sizeof *h), *g = malloc(n * sizeof *g);
    int rc = 0;
    if (!x || !h || !g) {
        rc = nomem(err, "device comparison");
        goto done;
    }
    uint64_t s = 0x64657669u;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)unif(&s);
    const daecl_corruption_ops *o = c->p->ops;
    daecl_noise_key keys[2] = {{.seed = 0x5eedfeedull, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                                .epoch = 3, .pos0 = (uint32_t)(0x100000000ull - R)},
                               {.seed = 1, .stream = DAECL_STREAM_EVAL_CORRUPTION, .stage = 1,
                                .substep = 2}};
    const daecl_shape shape = {2, {3, 43, 1, 1}}; /* D = 129 */
    daecl_err e = {0};
    const char *where = "alloc";
    if ((rc = dev_buf(d, 0, x, n, &e)) || (rc = dev_buf(d, 1, NULL, n, &e)))
        goto dev_fail;
    for (int t = 0; t < 2; t++) {
        where = "corrupt";
        if ((rc = d->be->corrupt(d->ctx, d->bound, sl(d, 0), sl(d, 1), R, D, &shape, &keys[t],
                                 &e)) ||
            (where = "read", rc = dev_read(d, 1, g, n, &e)))
            goto dev_fail;
        if ((rc = o->host_apply(x, h, R, D, &shape, &keys[t], c->packed, &e))) {
            op_failed(c, "device", "host_apply", rc, &e);
            rc = 0;
            goto done;
        }
        size_t diff = 0, first = n;
        for (size_t i = 0; i < n; i++)
            if (memcmp(&g[i], &h[i], sizeof *g) != 0) {
                diff++;
                if (first == n)
                    first = i;
            }
        if (diff) {
            verdict(c, FAIL, "device", "device and host differ at %zu of %zu elements (first: "
                    "element %zu of x = %.9g gives %.9g on the device, %.9g on the host); "
                    "corruption must be bit-identical: only integer ops, compares and IEEE add, "
                    "sub and mul may shape it (include/daecl/clc.h)", diff, n, first, x[first],
                    g[first], h[first]);
            goto done;
        }
    }
    verdict(c, PASS, "device", "cl_source gives the host's bytes exactly: (%d, %d) inputs of "
            "shape (3, 43), two keys (positions up to 2^32 - 1)", R, D);
    goto done;
dev_fail:
    verdict(c, FAIL, "device", "the backend's %s failed: %s", where, e.msg);
    rc = 0;
done:
    free(x), free(h), free(g);
    return rc;
}

static int device_likelihood(chk *c, dev *d, daecl_err *err)
{
    enum { R = 16, D = 97 };
    const daecl_likelihood_ops *o = lik(c);
    unsigned k = o->params_per_dim;
    const size_t n = (size_t)R * D, na = n * k;
    float *x = malloc(n * sizeof *x), *a = malloc(na * sizeof *a);
    float *hv = malloc((na + R) * sizeof *hv), *dv = malloc((na + R) * sizeof *dv);
    int rc = 0;
    if (!x || !a || !hv || !dv) {
        rc = nomem(err, "device comparison");
        goto done;
    }
    uint64_t s = 0x64657630u;
    for (size_t i = 0; i < n; i++)
        x[i] = draw_x(&s, i);
    for (size_t i = 0; i < na; i++)
        a[i] = draw_a(&s);
    daecl_noise_key key = {.seed = 0x5eedfeedull, .stream = DAECL_STREAM_SAMPLE, .substep = 5,
                           .epoch = 1, .pos0 = (uint32_t)(0x100000000ull - R)};
    daecl_err e = {0};
    const char *where = "alloc";
    /* buffers: 0 x, 1 a, 2 nll_rows, 3 grad, 4 mean/sample */
    if ((rc = dev_buf(d, 0, x, n, &e)) || (rc = dev_buf(d, 1, a, na, &e)) ||
        (rc = dev_buf(d, 2, NULL, R, &e)) || (rc = dev_buf(d, 3, NULL, na, &e)) ||
        (rc = dev_buf(d, 4, NULL, n, &e)))
        goto dev_fail;
    static const char *const what[4] = {"nll_rows", "grad", "mean", "sample"};
    double worst[4] = {0};
    size_t at[4];
    /* lik_sample is optional: without it the core samples on the host. */
    int n_ops = d->be->lik_sample ? 4 : 3;
    for (int t = 0; t < n_ops; t++) {
        size_t m = t == 0 ? R : t == 1 ? na : n;
        const char *hop = t < 2 ? "host_loss_grad" : t == 2 ? "host_mean" : "host_sample";
        int hrc;
        if (t == 0)
            hrc = o->host_loss_grad(x, a, R, D, c->packed, 0.5f, hv, hv + R, &e);
        else if (t == 1)
            hrc = 0; /* computed with t == 0 */
        else if (t == 2)
            hrc = o->host_mean(a, hv, R, D, c->packed, &e);
        else
            hrc = o->host_sample(a, hv, R, D, &key, c->packed, &e);
        if (hrc) {
            op_failed(c, "device", hop, hrc, &e);
            goto done;
        }
        if (t == 0) {
            where = "lik_loss_grad";
            if ((rc = d->be->lik_loss_grad(d->ctx, d->bound, sl(d, 0), sl(d, 1), R, D, 0.5f,
                                           sl(d, 2), sl(d, 3), &e)) ||
                (where = "read", rc = dev_read(d, 2, dv, R, &e)) ||
                (rc = dev_read(d, 3, dv + R, na, &e)))
                goto dev_fail;
        } else if (t == 2) {
            where = "lik_mean";
            if ((rc = d->be->lik_mean(d->ctx, d->bound, sl(d, 1), R, D, sl(d, 4), &e)) ||
                (where = "read", rc = dev_read(d, 4, dv, n, &e)))
                goto dev_fail;
        } else if (t == 3) {
            where = "lik_sample";
            if ((rc = d->be->lik_sample(d->ctx, d->bound, sl(d, 1), R, D, &key, sl(d, 4), &e)) ||
                (where = "read", rc = dev_read(d, 4, dv, n, &e)))
                goto dev_fail;
        }
        const float *hp = t == 1 ? hv + R : hv, *dp = t == 1 ? dv + R : dv;
        worst[t] = worst_rel(dp, hp, m, &at[t]);
        if (!(worst[t] <= DEVICE_RTOL)) {
            verdict(c, FAIL, "device", "%s differs between device and host: %.9g vs %.9g at index "
                    "%zu (relative error %.3g, tolerance %g)", what[t], dp[at[t]], hp[at[t]],
                    at[t], worst[t], DEVICE_RTOL);
            goto done;
        }
    }
    if (n_ops == 4)
        verdict(c, PASS, "device", "cl_source matches the host on (%d, %d): worst relative error "
                "nll_rows %.2g, grad %.2g, mean %.2g, sample %.2g (tolerance %g)", R, D, worst[0],
                worst[1], worst[2], worst[3], DEVICE_RTOL);
    else
        verdict(c, PASS, "device", "cl_source matches the host on (%d, %d): worst relative error "
                "nll_rows %.2g, grad %.2g, mean %.2g (tolerance %g); the backend has no "
                "lik_sample, so samples come from host_sample", R, D, worst[0], worst[1],
                worst[2], DEVICE_RTOL);
    goto done;
dev_fail:
    verdict(c, FAIL, "device", "the backend's %s failed: %s", where, e.msg);
    rc = 0;
done:
    free(x), free(a), free(hv), free(dv);
    return rc;
}

static int check_device(chk *c, daecl_err *err)
{
    const char *src = c->p->kind == DAECL_KIND_CORRUPTION
                          ? ((const daecl_corruption_ops *)c->p->ops)->cl_source
                          : lik(c)->cl_source;
    if (c->scope == DAECL_PLUGINCHECK_NO_DEVICE) {
        verdict(c, SKIP, "device", "not asked for (--no-device)");
        return 0;
    }
    if (!src) {
        verdict(c, SKIP, "device", "no cl_source: the plugin runs its host ops on every backend");
        return 0;
    }
    dev d;
    memset(&d, 0, sizeof d);
    int rc = dev_open(c, &d, err);
    if (rc == 0)
        rc = c->p->kind == DAECL_KIND_CORRUPTION ? device_corruption(c, &d, err)
                                                 : device_likelihood(c, &d, err);
    dev_close(&d);
    return rc < 0 ? rc : 0;
}

/* One case of the conformance suite as a line of the report. */
static void conformance_line(void *user, const char *name, int v, const char *sentence)
{
    verdict(user, v == DAECL_CONFORMANCE_PASS ? PASS : v == DAECL_CONFORMANCE_FAIL ? FAIL : SKIP,
            name, "%s", sentence);
}

/* The conformance suite (core/conformance.c) on the opened backend, against
 * the cpu backend and the built-in plugins found on the default search
 * path. Returns < 0 only when out of memory. */
static int check_conformance(chk *c, void *ctx, const char *device, daecl_err *err)
{
    if (c->scope == DAECL_PLUGINCHECK_NO_DEVICE) {
        verdict(c, SKIP, "conformance", "not asked for (--no-device)");
        return 0;
    }
    daecl_registry *reg = NULL;
    int rc = daecl_registry_create(NULL, &reg, err);
    if (rc)
        return rc;
    const daecl_plugin *cpu = daecl_registry_find(reg, DAECL_KIND_BACKEND, "cpu", NULL);
    daecl_param_value *values = cpu ? default_values(cpu) : NULL;
    void *ref_ctx = NULL;
    daecl_err e = {0};
    if (!cpu) {
        verdict(c, SKIP, "conformance", "no cpu backend on the search path %s to compare with",
                daecl_registry_search_path(reg));
    } else if (!values) {
        rc = nomem(err, "backend parameters");
    } else if (((const daecl_backend_ops *)cpu->ops)->open(daecl_host_table(), values, &ref_ctx,
                                                            &e)) {
        verdict(c, SKIP, "conformance", "the cpu reference opened no device: %s", e.msg);
    } else {
        fprintf(c->out, "  ....  conformance every op of %s on %s against the cpu reference\n",
                c->p->name, device);
        daecl_conformance_side dut = {c->p->ops, ctx, c->p->name};
        daecl_conformance_side ref = {cpu->ops, ref_ctx, "cpu"};
        daecl_conformance_opts opts = {.plugins = reg};
        rc = daecl_conformance_run(&dut, &ref, &opts, conformance_line, c, err);
        ((const daecl_backend_ops *)cpu->ops)->close(ref_ctx);
    }
    free(values);
    daecl_registry_destroy(reg);
    return rc;
}

/* A backend file: it opens a device with its defaults and moves bytes;
 * then every op against the cpu reference. */
static int check_backend(chk *c, daecl_err *err)
{
    const daecl_backend_ops *be = c->p->ops;
    daecl_err e = {0};
    void *ctx = NULL;
    int rc = be->open(daecl_host_table(), c->values, &ctx, &e);
    if (rc) {
        verdict(c, SKIP, "open", "no device opened with the default parameters: %s", e.msg);
        return 0;
    }
    daecl_device_info info;
    memset(&info, 0, sizeof info);
    be->describe(ctx, &info, sizeof info);
    float in[257], out[257];
    for (int i = 0; i < 257; i++)
        in[i] = (float)i * 0.5f - 3.0f;
    daecl_buf *buf = NULL;
    int moved = 0;
    if ((rc = be->alloc(ctx, sizeof in, "plugin check", &buf, &e)) ||
        (rc = be->write(ctx, buf, 0, in, sizeof in, &e)) ||
        (rc = be->read(ctx, buf, 0, out, sizeof out, &e)))
        verdict(c, FAIL, "memory", "on %s: %s", info.name, e.msg);
    else if (memcmp(in, out, sizeof in) != 0)
        verdict(c, FAIL, "memory", "on %s: bytes written and read back differ", info.name);
    else {
        verdict(c, PASS, "open", "default parameters open %s (%s), and bytes written read back "
                "intact", info.name, info.type);
        moved = 1;
    }
    be->free(ctx, buf);
    rc = moved ? check_conformance(c, ctx, info.name, err) : 0;
    be->close(ctx);
    return rc < 0 ? rc : 0;
}

/* ---- comm ------------------------------------------------------------------ */

/* Comm self test: element counts, enough to cross any small-message path. */
#define COMM_COUNT 1000

/* Element i of rank r's buffer: whole numbers, exact in float, so every
 * reduction order gives the same bits; rank-dependent, so a no-op fails. */
static double comm_value(size_t i, uint32_t r)
{
    return (double)(i % 97) - 40.0 + 3.0 * r;
}

/* Whether the reduced `buf` is what a world of n ranks must give. */
static bool comm_reduced(const void *buf, uint32_t type, uint32_t op, uint32_t n)
{
    for (size_t i = 0; i < COMM_COUNT; i++) {
        double want = 0;
        for (uint32_t r = 0; r < n; r++) {
            double v = comm_value(i, r) + (type == DAECL_COMM_U64 ? 1000.0 : 0.0);
            want = r == 0 ? v : op == DAECL_COMM_SUM ? want + v
                              : op == DAECL_COMM_MAX ? fmax(want, v)
                                                     : fmin(want, v);
        }
        double got = type == DAECL_COMM_F32   ? ((const float *)buf)[i]
                     : type == DAECL_COMM_F64 ? ((const double *)buf)[i]
                                              : (double)((const uint64_t *)buf)[i];
        if (got != want)
            return false;
    }
    return true;
}

/* allreduce of every type and reduction on rank-dependent arrays, and of
 * no elements; then a type and a reduction it must refuse. */
static void comm_allreduce(chk *c, const daecl_comm_ops *o, void *ctx, const daecl_comm_info *in)
{
    static const char *const tname[] = {"", "f32", "f64", "u64"};
    static const char *const oname[] = {"", "SUM", "MAX", "MIN"};
    uint64_t buf[COMM_COUNT]; /* room for any of the three types */
    daecl_err e = {0};
    for (uint32_t t = DAECL_COMM_F32; t <= DAECL_COMM_U64; t++) {
        for (uint32_t op = DAECL_COMM_SUM; op <= DAECL_COMM_MIN; op++) {
            for (size_t i = 0; i < COMM_COUNT; i++) {
                double v = comm_value(i, in->rank);
                if (t == DAECL_COMM_F32)
                    ((float *)buf)[i] = (float)v;
                else if (t == DAECL_COMM_F64)
                    ((double *)buf)[i] = v;
                else
                    buf[i] = (uint64_t)(v + 1000.0);
            }
            int rc = o->allreduce(ctx, buf, COMM_COUNT, t, op, &e);
            if (!rc)
                rc = o->allreduce(ctx, buf, 0, t, op, &e);
            if (rc) {
                char what[64];
                snprintf(what, sizeof what, "allreduce(%s, %s)", tname[t], oname[op]);
                op_failed(c, "allreduce", what, rc, &e);
                return;
            }
            if (!comm_reduced(buf, t, op, in->size)) {
                verdict(c, FAIL, "allreduce", "%s of %d %s elements over %u rank%s differs from "
                        "the reduction computed here", oname[op], COMM_COUNT, tname[t], in->size,
                        in->size == 1 ? "" : "s");
                return;
            }
        }
    }
    verdict(c, PASS, "allreduce", "SUM, MAX and MIN of %d f32, f64 and u64 elements (and of 0) "
            "give the exact reductions over %u rank%s", COMM_COUNT, in->size,
            in->size == 1 ? "" : "s");
    daecl_err bad_type = {0}, bad_op = {0};
    if (o->allreduce(ctx, buf, 4, 99, DAECL_COMM_SUM, &bad_type) == 0 ||
        o->allreduce(ctx, buf, 4, DAECL_COMM_F32, 99, &bad_op) == 0)
        verdict(c, FAIL, "refusal", "allreduce accepted element type 99 or reduction 99");
    else if (!bad_type.msg[0] || !bad_op.msg[0])
        verdict(c, FAIL, "refusal", "allreduce refused type 99 and reduction 99 without a "
                "sentence in err");
    else
        verdict(c, PASS, "refusal", "allreduce refuses type 99 and reduction 99: %s",
                bad_type.msg);
}

/* broadcast from the last rank, allgather in rank order, barrier. */
static void comm_moves(chk *c, const daecl_comm_ops *o, void *ctx, const daecl_comm_info *in)
{
    enum { N = 300 };
    unsigned char mine[N];
    daecl_err e = {0};
    uint32_t root = in->size - 1;
    for (size_t i = 0; i < N; i++)
        mine[i] = (unsigned char)(i * 7 + in->rank * 31 + 1);
    int rc = o->broadcast(ctx, mine, N, root, &e);
    bool same = true;
    for (size_t i = 0; i < N && !rc; i++)
        same = same && mine[i] == (unsigned char)(i * 7 + root * 31 + 1);
    if (rc)
        op_failed(c, "broadcast", "broadcast", rc, &e);
    else if (!same)
        verdict(c, FAIL, "broadcast", "%d bytes from rank %u arrived changed", N, root);
    else
        verdict(c, PASS, "broadcast", "%d bytes from rank %u arrive intact", N, root);

    unsigned char *all = malloc((size_t)in->size * N);
    if (!all) {
        verdict(c, FAIL, "allgather", "out of memory for %u ranks' %d bytes", in->size, N);
        return;
    }
    for (size_t i = 0; i < N; i++)
        mine[i] = (unsigned char)(i * 5 + in->rank * 13 + 2);
    rc = o->allgather(ctx, mine, N, all, &e);
    same = true;
    for (uint32_t r = 0; r < in->size && !rc; r++)
        for (size_t i = 0; i < N; i++)
            same = same && all[(size_t)r * N + i] == (unsigned char)(i * 5 + r * 13 + 2);
    if (rc)
        op_failed(c, "allgather", "allgather", rc, &e);
    else if (!same)
        verdict(c, FAIL, "allgather", "the %u ranks' %d bytes are not all in rank order",
                in->size, N);
    else
        verdict(c, PASS, "allgather", "%d bytes from each of %u rank%s arrive in rank order",
                N, in->size, in->size == 1 ? "" : "s");
    free(all);

    if ((rc = o->barrier(ctx, &e)))
        op_failed(c, "barrier", "barrier", rc, &e);
    else
        verdict(c, PASS, "barrier", "every rank reached it");
}

/* A comm file: it joins the world this process was started in (alone: a
 * world of one) and runs every op on known data. Once per process: MPI
 * cannot be initialised again after it was finalised. */
static int check_comm(chk *c)
{
    const daecl_comm_ops *o = c->p->ops;
    daecl_comm_info in;
    memset(&in, 0, sizeof in);
    void *ctx = NULL;
    daecl_err e = {0};
    int rc = o->open(daecl_host_table(), &ctx, &in, &e);
    if (rc) {
        op_failed(c, "open", "open", rc, &e);
        return 0;
    }
    in.host[sizeof in.host - 1] = in.library[sizeof in.library - 1] = '\0';
    if (in.size < 1 || in.rank >= in.size || in.local_size < 1 ||
        in.local_rank >= in.local_size || !in.host[0] || !in.library[0]) {
        verdict(c, FAIL, "open", "info says rank %u of %u, %u of %u on host '%s', library "
                "'%s': ranks must be below sizes and the names set", in.rank, in.size,
                in.local_rank, in.local_size, in.host, in.library);
        o->close(ctx);
        return 0;
    }
    verdict(c, PASS, "open", "rank %u of %u (%u of %u on host %s), %s", in.rank, in.size,
            in.local_rank, in.local_size, in.host, in.library);
    comm_allreduce(c, o, ctx, &in);
    comm_moves(c, o, ctx, &in);
    o->close(ctx);
    verdict(c, PASS, "close", "left the world");
    return 0;
}

/* ---- driving ----------------------------------------------------------------- */

static int run_checks(chk *c, daecl_err *err)
{
    const daecl_plugin *p = c->p;
    if (!(c->values = default_values(p)))
        return nomem(err, "parameters");
    c->n_packed = daecl_params_pack(p->params, p->n_params, c->values, c->packed);
    print_schema(c);
    if (p->check) {
        daecl_err e = {0};
        int rc = p->check(c->values, &e);
        if (rc)
            verdict(c, FAIL, "check()", "the plugin's own check() refuses its defaults: %s", e.msg);
        else
            verdict(c, PASS, "check()", "the plugin's own check() accepts its defaults");
    }
    int rc = 0;
    bool host = c->scope != DAECL_PLUGINCHECK_DEVICE_ONLY;
    if (p->kind == DAECL_KIND_BACKEND)
        return check_backend(c, err);
    if (p->kind == DAECL_KIND_COMM)
        return check_comm(c);
    if (p->kind == DAECL_KIND_LIKELIHOOD && host)
        (void)((rc = check_finite(c)) || (rc = check_gradient(c)) || (rc = check_layout(c)) ||
               (rc = check_mean_score(c, err)) || (rc = check_sample(c, err)) ||
               (rc = daecl_normcheck_run(lik(c), c->packed, norm_verdict, c, err)));
    if (p->kind == DAECL_KIND_CORRUPTION && host)
        rc = check_corruption_host(c, err);
    if (!rc)
        rc = check_device(c, err);
    return rc;
}

static void summary(chk *c, const char *name)
{
    const daecl_plugincheck_result *r = c->res;
    unsigned total = r->passed + r->failed + r->skipped;
    if (r->failed)
        fprintf(c->out, "%s: %u of %u checks FAILED (%s)\n", name, r->failed, total, c->failed);
    else
        fprintf(c->out, "%s: %u checks passed, %u skipped\n", name, r->passed, r->skipped);
}

static void chk_init(chk *c, const daecl_plugincheck_opts *opts, FILE *out,
                     daecl_plugincheck_result *res)
{
    memset(c, 0, sizeof *c);
    memset(res, 0, sizeof *res);
    c->out = out;
    c->res = res;
    if (opts) {
        c->scope = opts->scope;
        c->backend = opts->backend;
        c->backend_name = opts->backend_name;
    }
}

/* Validates, initialises (through a registry of its own, which pads the
 * tables to this core's sizes) and checks one descriptor. */
static int check_loaded(chk *c, const daecl_plugin *plugin, const char *origin, daecl_err *err)
{
    daecl_err e = {0};
    if (daecl_plugin_validate(plugin, origin, &e)) {
        verdict(c, FAIL, "descriptor", "%s", e.msg);
        return 0;
    }
    uint32_t ops_size = *(const uint32_t *)plugin->ops;
    verdict(c, PASS, "abi", "%s '%s' %s (%s): ABI %u.%u (this daecl %d.%d), sizes %u/%u/%u, "
            "descriptor %u bytes, ops table %u bytes", daecl_plugin_kind_name(plugin->kind),
            plugin->name, plugin->version, plugin->license, plugin->abi_major, plugin->abi_minor,
            DAECL_ABI_MAJOR, DAECL_ABI_MINOR, plugin->abi_sizes & 0xff,
            (plugin->abi_sizes >> 8) & 0xff, (plugin->abi_sizes >> 16) & 0xff, plugin->size,
            ops_size);
    daecl_registry *reg = NULL;
    int rc = daecl_registry_create("", &reg, err);
    if (rc)
        return rc;
    rc = daecl_registry_add(reg, plugin, origin, &e);
    if (rc == DAECL_ENOMEM) {
        *err = e;
    } else if (rc) {
        verdict(c, FAIL, "init", "%s", e.msg);
        rc = 0;
    } else {
        if (plugin->init)
            verdict(c, PASS, "init", "init() accepted the host table");
        c->p = daecl_registry_at(reg, 0, NULL);
        rc = run_checks(c, err);
    }
    free(c->values);
    c->values = NULL;
    daecl_registry_destroy(reg);
    return rc;
}

int daecl_plugincheck_descriptor(const daecl_plugin *plugin, const char *origin,
                                 const daecl_plugincheck_opts *opts, FILE *out,
                                 daecl_plugincheck_result *res, daecl_err *err)
{
    chk c;
    chk_init(&c, opts, out, res);
    fprintf(out, "checking %s\n", origin);
    int rc = check_loaded(&c, plugin, origin, err);
    if (!rc)
        summary(&c, plugin && plugin->name ? plugin->name : origin);
    return rc;
}

int daecl_plugincheck_file(const char *path, const daecl_plugincheck_opts *opts, FILE *out,
                           daecl_plugincheck_result *res, daecl_err *err)
{
    chk c;
    chk_init(&c, opts, out, res);
    fprintf(out, "checking %s\n", path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    /* The registry's own rules (pluginfile.h), so a file passes here exactly
     * when `daecl train` would load it, refused with the same sentence. */
    daecl_pluginfile pf;
    daecl_err why = {0};
    int rc = daecl_pluginfile_open(path, &pf, &why);
    if (rc == DAECL_ENOMEM) {
        *err = why;
        return rc;
    }
    if (pf.stage == DAECL_PLUGINFILE_PATH || pf.stage == DAECL_PLUGINFILE_OPEN) {
        verdict(&c, FAIL, pf.stage == DAECL_PLUGINFILE_PATH ? "file" : "load", "%s", why.msg);
        summary(&c, base);
        return 0;
    }
    const daecl_plugin *p = pf.plugin;
    verdict(&c, PASS, "load", "dlopen(RTLD_NOW | RTLD_LOCAL) resolved every symbol; "
            "daecl_plugin_entry() returned a descriptor");
    /* The file's name is judged against a valid descriptor only; an invalid
     * one fails "descriptor" below with the registry's sentence. */
    if (pf.stage == DAECL_PLUGINFILE_NAME)
        verdict(&c, FAIL, "file", "%s", why.msg);
    else if (pf.stage == 0)
        verdict(&c, PASS, "file", "%s: named for its kind and name; neither it nor a folder on "
                "its way from / is writable by other users", base);
    bool valid = pf.stage != DAECL_PLUGINFILE_DESCRIPTOR;
    char name[128]; /* the descriptor goes away with dlclose */
    snprintf(name, sizeof name, "%s", valid ? p->name : base);
    rc = check_loaded(&c, p, path, err);
    /* A backend may have started driver threads in init() or open(), a
     * comm its MPI library's threads and exit handlers. */
    if (!(valid && daecl__registry_stays_loaded(p->kind)))
        dlclose(pf.handle);
    if (!rc)
        summary(&c, name);
    return rc;
}
