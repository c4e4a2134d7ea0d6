/* daecl — toy 2-D densities known in closed form (core/toy.h): the
 * `toy:` spec parser, the Philox generators, the densities and their
 * scores, and the data set a spec names. */
#include "core/toy.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "daecl/philox.h"
#include "daecl/plugin.h"

#define LOG_2PI 1.8378770664093454836

int daecl_toy_is_spec(const char *s)
{
    return s && strncmp(s, DAECL_TOY_PREFIX, sizeof DAECL_TOY_PREFIX - 1) == 0;
}

/* ---- parsing ---------------------------------------------------------- */

/* A value as groups of numbers: "a,b;c,d;e" is three groups of 2, 2, 1. */
#define MAX_PER_GROUP 2
typedef struct groups {
    uint32_t n;
    uint32_t len[DAECL_TOY_MAX_COMPONENTS];
    double v[DAECL_TOY_MAX_COMPONENTS][MAX_PER_GROUP];
} groups;

/* Parses v[0..n) into g; returns -1, or the offset in v of the fault with
 * why filled. */
static long parse_groups(const char *v, size_t n, groups *g, const char **why)
{
    memset(g, 0, sizeof *g);
    size_t i = 0;
    if (n == 0) {
        *why = "is empty";
        return 0;
    }
    for (;;) {
        if (g->n == DAECL_TOY_MAX_COMPONENTS) {
            *why = "has more than 16 groups (components)";
            return (long)i;
        }
        uint32_t k = g->n++;
        for (;;) {
            if (g->len[k] == MAX_PER_GROUP) {
                *why = "has more than 2 numbers in a group";
                return (long)i;
            }
            char buf[64];
            size_t j = i;
            while (j < n && v[j] != ',' && v[j] != ';')
                j++;
            if (j == i || j - i >= sizeof buf) {
                *why = j == i ? "has an empty number" : "has a number too long to read";
                return (long)i;
            }
            memcpy(buf, v + i, j - i);
            buf[j - i] = '\0';
            char *end;
            errno = 0;
            double d = strtod(buf, &end);
            if (*end || errno || !isfinite(d)) {
                *why = "has something that is not a finite number";
                return (long)i;
            }
            g->v[k][g->len[k]++] = d;
            i = j;
            if (i == n)
                return -1;
            if (v[i++] == ';')
                break;
        }
    }
}

static int parse_u64(const char *v, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (max - (uint64_t)(v[i] - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

static const char GMM_KEYS[] = "means, std, weights, seed, rows, split";
static const char CIRCLE_KEYS[] = "radius, noise, seed, rows, split";
static const char SPIRAL_KEYS[] = "turns, radius, noise, seed, rows, split";

/* One sentence, its offset in the spec. */
static int bad(daecl_err *err, size_t *bad_off, size_t off, const char *spec, const char *fmt,
               const char *a, const char *b)
{
    if (bad_off)
        *bad_off = off;
    char what[320];
    snprintf(what, sizeof what, fmt, a, b);
    return daecl_err_set(err, DAECL_ECONFIG, "toy source %.200s: %s", spec, what);
}

/* What the keys gave, before it is checked as a whole. */
typedef struct pstate {
    groups means, std, weights;
    size_t means_at, std_at, weights_at; /* offsets in the spec; 0: not given */
} pstate;

/* One key=value (k, v and their lengths) into t or ps. */
static int parse_key(const char *spec, daecl_toy *t, pstate *ps, const char *k, size_t kn,
                     const char *v, size_t vn, size_t *bad_off, daecl_err *err)
{
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)(kn < 31 ? kn : 31), k);
    size_t at = (size_t)(v - spec);
    int gmm = t->kind == DAECL_TOY_GMM;
    if (!strcmp(key, "seed") || !strcmp(key, "rows")) {
        int rows = !strcmp(key, "rows");
        uint64_t u;
        if (parse_u64(v, vn, rows ? UINT32_MAX : UINT64_MAX, &u) != 0 || (rows && u == 0))
            return bad(err, bad_off, at, spec, "%s must be a whole number%s", key,
                       rows ? " from 1 to 4294967295" : " from 0 to 2^64 - 1");
        *(rows ? &t->rows : &t->seed) = u;
        return 0;
    }
    if (!strcmp(key, "split")) {
        if (vn == 5 && !strncmp(v, "train", 5))
            t->split = 0;
        else if (vn == 4 && !strncmp(v, "test", 4))
            t->split = 1;
        else
            return bad(err, bad_off, at, spec, "split must be train or test%s%s", "", "");
        return 0;
    }
    groups *g = NULL;
    size_t *g_at = NULL;
    if (gmm && !strcmp(key, "means"))
        g = &ps->means, g_at = &ps->means_at;
    else if (gmm && !strcmp(key, "std"))
        g = &ps->std, g_at = &ps->std_at;
    else if (gmm && !strcmp(key, "weights"))
        g = &ps->weights, g_at = &ps->weights_at;
    else if (!gmm && (!strcmp(key, "radius") || !strcmp(key, "noise") ||
                      (t->kind == DAECL_TOY_SPIRAL && !strcmp(key, "turns")))) {
        groups one;
        const char *why = "";
        int turns = !strcmp(key, "turns");
        if (parse_groups(v, vn, &one, &why) >= 0 || one.n != 1 || one.len[0] != 1 ||
            !(one.v[0][0] > 0) || (turns && one.v[0][0] > 100))
            return bad(err, bad_off, at, spec, "%s must be one number above 0%s", key,
                       turns ? " and at most 100" : "");
        *(turns ? &t->turns : !strcmp(key, "radius") ? &t->radius : &t->noise) = one.v[0][0];
        return 0;
    }
    if (!g) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(kn < 60 ? kn : 60), k);
        return bad(err, bad_off, (size_t)(k - spec), spec,
                   "there is no key '%s'; the keys are %s", name,
                   gmm ? GMM_KEYS : t->kind == DAECL_TOY_CIRCLE ? CIRCLE_KEYS : SPIRAL_KEYS);
    }
    const char *why = "";
    long off = parse_groups(v, vn, g, &why);
    if (off >= 0)
        return bad(err, bad_off, at + (size_t)off, spec, "%s %s", key, why);
    *g_at = at;
    return 0;
}

/* Checks the gmm's keys as a whole and fills t. Default: three components
 * of std 0.6 on a triangle of side 4 (6.7 stds apart), equal weights. */
static int finish_gmm(const char *spec, daecl_toy *t, const pstate *ps, size_t *bad_off,
                      daecl_err *err)
{
    static const double def_means[3][2] = {{-2.0, 0.0}, {2.0, 0.0}, {0.0, 3.4641016151377544}};
    uint32_t n = ps->means_at ? ps->means.n : 3;
    t->n_comp = n;
    for (uint32_t c = 0; c < n; c++) {
        if (ps->means_at && ps->means.len[c] != 2)
            return bad(err, bad_off, ps->means_at, spec,
                       "means needs two numbers x,y per component, components split by ';'%s%s",
                       "", "");
        t->mean[c][0] = ps->means_at ? ps->means.v[c][0] : def_means[c][0];
        t->mean[c][1] = ps->means_at ? ps->means.v[c][1] : def_means[c][1];
    }
    if (ps->std_at && ps->std.n != 1 && ps->std.n != n)
        return bad(err, bad_off, ps->std_at, spec,
                   "std needs one group for every component or one for all; a group is s "
                   "(isotropic) or sx,sy (diagonal), groups split by ';'%s%s", "", "");
    for (uint32_t c = 0; c < n; c++) {
        const groups *s = &ps->std;
        uint32_t i = s->n == 1 ? 0 : c;
        for (uint32_t d = 0; d < 2; d++) {
            double v = !ps->std_at ? 0.6 : s->len[i] == 1 ? s->v[i][0] : s->v[i][d];
            if (!(v > 0))
                return bad(err, bad_off, ps->std_at, spec, "std must be above 0%s%s", "", "");
            t->std[c][d] = v;
        }
    }
    double sum = 0;
    if (ps->weights_at && ps->weights.n != n)
        return bad(err, bad_off, ps->weights_at, spec,
                   "weights needs one number per component (%s given for %s)", "fewer or more",
                   "the means");
    for (uint32_t c = 0; c < n; c++) {
        double w = ps->weights_at ? ps->weights.v[c][0] : 1.0;
        if (ps->weights_at && (ps->weights.len[c] != 1 || !(w > 0)))
            return bad(err, bad_off, ps->weights_at, spec,
                       "weights must be one number above 0 per component, split by ';'%s%s", "",
                       "");
        t->weight[c] = w;
        sum += w;
    }
    for (uint32_t c = 0; c < n; c++)
        t->weight[c] /= sum;
    return 0;
}

int daecl_toy_parse(const char *spec, daecl_toy *out, size_t *bad_off, daecl_err *err)
{
    if (!spec || !out)
        return daecl_err_set(err, DAECL_EINVAL, "daecl_toy_parse needs a spec and an output");
    if (bad_off)
        *bad_off = 0;
    if (!daecl_toy_is_spec(spec))
        return bad(err, bad_off, 0, spec, "a toy source begins with %s%s", DAECL_TOY_PREFIX, "");
    daecl_toy t;
    memset(&t, 0, sizeof t);
    const char *name = spec + strlen(DAECL_TOY_PREFIX);
    size_t name_n = strcspn(name, "?");
    if (name_n == 3 && !strncmp(name, "gmm", 3))
        t.kind = DAECL_TOY_GMM;
    else if (name_n == 6 && !strncmp(name, "circle", 6)) {
        t.kind = DAECL_TOY_CIRCLE;
        t.radius = 1.0;
        t.noise = 0.1;
    } else if (name_n == 6 && !strncmp(name, "spiral", 6)) {
        t.kind = DAECL_TOY_SPIRAL;
        t.turns = 2.0;
        t.radius = 1.0;
        t.noise = 0.05;
    } else {
        char got[128];
        snprintf(got, sizeof got, "%.*s", (int)(name_n < 100 ? name_n : 100), name);
        return bad(err, bad_off, (size_t)(name - spec), spec,
                   "there is no toy density '%s'; the toy densities are %s", got, "gmm, circle, spiral");
    }
    pstate ps;
    memset(&ps, 0, sizeof ps);
    for (const char *p = name + name_n; *p;) {
        p++; /* the '?' or '&' before the pair */
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        if (!eq || eq == p) {
            char pair[128];
            snprintf(pair, sizeof pair, "'%.*s'", (int)(n < 100 ? n : 100), p);
            return bad(err, bad_off, (size_t)(p - spec), spec,
                       "%s is not key=value%s; pairs are split by '&'", pair,
                       eq ? " (the key is empty)" : "");
        }
        int rc = parse_key(spec, &t, &ps, p, (size_t)(eq - p), eq + 1, n - (size_t)(eq + 1 - p),
                           bad_off, err);
        if (rc)
            return rc;
        p += n;
    }
    if (t.kind == DAECL_TOY_GMM) {
        int rc = finish_gmm(spec, &t, &ps, bad_off, err);
        if (rc)
            return rc;
    }
    *out = t;
    return 0;
}

/* ---- generators ------------------------------------------------------- */

/* Row i draws block 0 (word x: the component or the angle) and block 1
 * (two standard normals by daecl_normal, bit-identical everywhere) at
 * counter {block, i, split, DAECL_STREAM_TOY}. The normals have 24-bit
 * uniforms underneath: tails stop near 5.8 standard deviations. */
void daecl_toy_generate(const daecl_toy *t, uint64_t pos0, size_t n_rows, float *x)
{
    uint32_t lo = (uint32_t)t->seed, hi = (uint32_t)(t->seed >> 32);
    uint32_t w3 = daecl_noise_word3(DAECL_STREAM_TOY, 0, 0);
    for (size_t r = 0; r < n_rows; r++) {
        uint32_t pos = (uint32_t)(pos0 + r);
        daecl_u4 b0 = daecl_philox_block(lo, hi, w3, t->split, pos, 0);
        daecl_u4 b1 = daecl_philox_block(lo, hi, w3, t->split, pos, 1);
        double u = ((double)b0.x + 0.5) * 0x1p-32; /* (0, 1) */
        double n0 = daecl_normal(b1.x, b1.y), n1 = daecl_normal(b1.z, b1.w);
        if (t->kind == DAECL_TOY_GMM) {
            uint32_t c = 0;
            for (double acc = t->weight[0]; c + 1 < t->n_comp && u >= acc;)
                acc += t->weight[++c];
            x[2 * r] = (float)(t->mean[c][0] + t->std[c][0] * n0);
            x[2 * r + 1] = (float)(t->mean[c][1] + t->std[c][1] * n1);
        } else {
            /* A negative radius lands at angle + pi: still uniform in angle,
             * and why the density below folds the normal. The spiral's
             * angle runs over T turns, its mean radius growing to R. */
            double a = 2.0 * M_PI * u * (t->kind == DAECL_TOY_SPIRAL ? t->turns : 1.0);
            double mid = t->kind == DAECL_TOY_SPIRAL ? t->radius * u : t->radius;
            double rad = mid + t->noise * n0;
            x[2 * r] = (float)(rad * cos(a));
            x[2 * r + 1] = (float)(rad * sin(a));
        }
    }
}

/* ---- densities -------------------------------------------------------- */

/* Mixture: log p = logsumexp_k [log w_k + sum_d log N(x_d; m_kd, s_kd^2)];
 * score = sum_k resp_k (m_k - x) / s_k^2 with resp_k the posterior of k. */
static double gmm_log_density(const daecl_toy *t, const double *x, double *grad)
{
    double lk[DAECL_TOY_MAX_COMPONENTS], top = -INFINITY;
    for (uint32_t c = 0; c < t->n_comp; c++) {
        double l = log(t->weight[c]);
        for (int d = 0; d < 2; d++) {
            double z = (x[d] - t->mean[c][d]) / t->std[c][d];
            l += -0.5 * z * z - log(t->std[c][d]) - 0.5 * LOG_2PI;
        }
        lk[c] = l;
        top = l > top ? l : top;
    }
    double sum = 0, g[2] = {0, 0};
    for (uint32_t c = 0; c < t->n_comp; c++) {
        double e = exp(lk[c] - top);
        sum += e;
        for (int d = 0; d < 2; d++)
            g[d] += e * (t->mean[c][d] - x[d]) / (t->std[c][d] * t->std[c][d]);
    }
    if (grad)
        grad[0] = g[0] / sum, grad[1] = g[1] / sum;
    return top + log(sum);
}

/* Circle, in Cartesian coordinates, r = |x| > 0:
 *   p(x) = [N(r; R, s^2) + N(-r; R, s^2)] / (2 pi r)
 * (the generator's radius R + s n folded to |.|, spread uniformly over the
 * circle of length 2 pi r). score = d log p / dr * x / r. */
static double circle_log_density(const daecl_toy *t, const double *x, double *grad)
{
    double r = hypot(x[0], x[1]), R = t->radius, s2 = t->noise * t->noise;
    if (grad)
        grad[0] = grad[1] = 0;
    if (r == 0)
        return -INFINITY;
    double a = -(r - R) * (r - R) / (2 * s2), b = -(r + R) * (r + R) / (2 * s2);
    double q = 1.0 / (1.0 + exp(a - b)); /* weight of the folded term, b <= a */
    double lp = a + log1p(exp(b - a)) - 0.5 * log(s2) - 0.5 * LOG_2PI - log(2 * M_PI * r);
    if (grad) {
        double dr = (1 - q) * (R - r) / s2 - q * (r + R) / s2 - 1.0 / r;
        grad[0] = dr * x[0] / r;
        grad[1] = dr * x[1] / r;
    }
    return lp;
}

/* Spiral, in Cartesian coordinates, r = |x| > 0 at angle phi in [0, 2 pi):
 * the generator's (theta, rho), theta ~ U[0, Theta) with Theta = 2 pi T,
 * rho ~ N(a theta, s^2) with a = R / Theta, reaches x from every
 * theta_m = phi + m pi in [0, Theta) (m >= -1) with rho = (-1)^m r, each with the
 * Jacobian 1 / r of polar coordinates:
 *   p(x) = 1 / (Theta r) sum_m N((-1)^m r; a theta_m, s^2)
 * a finite sum (about 2T + 1 terms). With u_m = (-1)^m r - a theta_m and
 * resp_m the terms' shares, d log p / dr = -sum resp_m u_m (-1)^m / s^2 - 1/r
 * and d log p / dphi = sum resp_m a u_m / s^2. */
static double spiral_log_density(const daecl_toy *t, const double *x, double *grad)
{
    double r = hypot(x[0], x[1]), s2 = t->noise * t->noise;
    double th = 2 * M_PI * t->turns, a = t->radius / th;
    if (grad)
        grad[0] = grad[1] = 0;
    if (r == 0)
        return -INFINITY;
    double phi = atan2(x[1], x[0]);
    phi = phi < 0 ? phi + 2 * M_PI : phi;
    int m0 = phi >= M_PI ? -1 : 0; /* theta_-1 = phi - pi when that is >= 0 */
    double top = -INFINITY;
    for (int m = m0; phi + m * M_PI < th; m++) {
        double u = (m % 2 ? -r : r) - a * (phi + m * M_PI);
        top = -u * u / (2 * s2) > top ? -u * u / (2 * s2) : top;
    }
    if (top == -INFINITY) /* phi beyond the arm's end (T < 1): no preimage */
        return -INFINITY;
    double sum = 0, dr = 0, dphi = 0;
    for (int m = m0; phi + m * M_PI < th; m++) {
        double sg = m % 2 ? -1.0 : 1.0, u = sg * r - a * (phi + m * M_PI);
        double e = exp(-u * u / (2 * s2) - top);
        sum += e;
        dr += -e * u * sg / s2;
        dphi += e * a * u / s2;
    }
    if (grad) {
        double gr = dr / sum - 1.0 / r, gp = dphi / sum / r; /* radial, tangential */
        grad[0] = gr * x[0] / r - gp * x[1] / r;
        grad[1] = gr * x[1] / r + gp * x[0] / r;
    }
    return top + log(sum) - 0.5 * log(2 * M_PI * s2) - log(th * r);
}

double daecl_toy_log_density(const daecl_toy *t, const double *x, double *grad)
{
    return t->kind == DAECL_TOY_GMM      ? gmm_log_density(t, x, grad)
           : t->kind == DAECL_TOY_CIRCLE ? circle_log_density(t, x, grad)
                                         : spiral_log_density(t, x, grad);
}

int daecl_toy_convolve(const daecl_toy *t, double sigma, daecl_toy *out, daecl_err *err)
{
    if (t->kind != DAECL_TOY_GMM)
        return daecl_err_set(err, DAECL_ENOTSUP, "the %s's density convolved with a "
                             "Gaussian has no closed form; use toy:gmm for p_sigma",
                             t->kind == DAECL_TOY_CIRCLE ? "circle" : "spiral");
    if (!(sigma >= 0) || !isfinite(sigma))
        return daecl_err_set(err, DAECL_EINVAL, "sigma must be a finite number >= 0, not %g",
                             sigma);
    *out = *t;
    for (uint32_t c = 0; c < t->n_comp; c++)
        for (int d = 0; d < 2; d++)
            out->std[c][d] = sqrt(t->std[c][d] * t->std[c][d] + sigma * sigma);
    return 0;
}

/* ---- the data source -------------------------------------------------- */

int daecl_toy_load(const char *spec, size_t limit, uint64_t max_bytes, daecl_dataset **out,
                   daecl_err *err)
{
    if (!out)
        return daecl_err_set(err, DAECL_EINVAL, "daecl_toy_load needs an output pointer");
    *out = NULL;
    daecl_toy t;
    int rc = daecl_toy_parse(spec, &t, NULL, err);
    if (rc)
        return rc;
    uint64_t rows = t.rows && limit ? (t.rows < limit ? t.rows : limit) : t.rows ? t.rows : limit;
    if (rows == 0)
        return daecl_err_set(err, DAECL_EDATA, "toy source %.200s has no row count; add "
                             "&rows=N to it or set data.train_limit (data.test_limit)", spec);
    if (rows > UINT32_MAX)
        return daecl_err_set(err, DAECL_EDATA, "toy source %.200s asks for %llu rows; at most "
                             "%u (positions are 32-bit)", spec, (unsigned long long)rows,
                             UINT32_MAX);
    if (max_bytes == 0)
        max_bytes = DAECL_DATA_MAX_BYTES_DEFAULT;
    if (rows * 2 * sizeof(float) > max_bytes)
        return daecl_err_set(err, DAECL_EDATA, "toy source %.200s would take %llu bytes, above "
                             "the %llu of data.max_mb; lower rows or raise data.max_mb", spec,
                             (unsigned long long)(rows * 2 * sizeof(float)),
                             (unsigned long long)max_bytes);
    daecl_dataset *ds = calloc(1, sizeof *ds);
    float *x = ds ? malloc(rows * 2 * sizeof *x) : NULL;
    if (!x) {
        free(ds);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the %llu rows of toy "
                             "source %.200s", (unsigned long long)rows, spec);
    }
    daecl_toy_generate(&t, 0, rows, x);
    ds->x = x;
    ds->n_rows = rows;
    ds->dim = 2;
    ds->n_shape = 1;
    ds->shape[0] = 2;
    ds->shape[1] = ds->shape[2] = ds->shape[3] = 1;
    ds->min = ds->max = x[0];
    for (size_t i = 1; i < rows * 2; i++) {
        ds->min = x[i] < ds->min ? x[i] : ds->min;
        ds->max = x[i] > ds->max ? x[i] : ds->max;
    }
    *out = ds;
    return 0;
}
