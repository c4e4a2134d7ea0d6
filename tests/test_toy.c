/* daecl tests — toy 2-D densities (core/toy.c): the generators against the
 * closed forms (moments within standard errors), the densities against
 * quadrature, the scores against finite differences in double precision,
 * p_sigma against a direct numerical convolution, determinism, refused
 * specs with their positions, and a tiny training on a toy source. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/data.h"
#include "core/toy.h"
#include "core/train.h"
#include "tests/support.h"

/* Three unequal components, one of them diagonal. */
#define GMM3 "toy:gmm?means=-2,0;2,0.5;0,3.5&std=0.6;0.5,0.9;0.7&weights=1;2;1.5"

static daecl_toy parse_ok(const char *spec)
{
    daecl_toy t;
    daecl_err err = {0};
    if (daecl_toy_parse(spec, &t, NULL, &err))
        fail_msg("%s refused: %s", spec, err.msg);
    return t;
}

static void test_parse_fills_the_gmm_and_normalises_weights(void **state)
{
    (void)state;
    daecl_toy t = parse_ok(GMM3 "&seed=7&rows=10&split=test");
    assert_int_equal(t.kind, DAECL_TOY_GMM);
    assert_int_equal(t.n_comp, 3);
    assert_true(t.mean[2][1] == 3.5);
    assert_true(t.std[0][0] == 0.6 && t.std[0][1] == 0.6);
    assert_true(t.std[1][0] == 0.5 && t.std[1][1] == 0.9);
    assert_true(fabs(t.weight[1] - 2.0 / 4.5) < 1e-15);
    assert_true(t.seed == 7 && t.rows == 10 && t.split == 1);
    daecl_toy d = parse_ok("toy:gmm");
    assert_int_equal(d.n_comp, 3);
    assert_true(d.std[2][1] == 0.6);
    daecl_toy c = parse_ok("toy:circle?radius=2&noise=0.25");
    assert_int_equal(c.kind, DAECL_TOY_CIRCLE);
    assert_true(c.radius == 2 && c.noise == 0.25);
    daecl_toy sp = parse_ok("toy:spiral?turns=1.5");
    assert_int_equal(sp.kind, DAECL_TOY_SPIRAL);
    assert_true(sp.turns == 1.5 && sp.radius == 1 && sp.noise == 0.05);
}

/* Each bad spec is refused in one sentence naming the fault, at its offset. */
static void test_bad_specs_are_refused_at_their_offset(void **state)
{
    (void)state;
    static const struct {
        const char *spec;
        size_t off;
        const char *says;
    } cases[] = {
        {"toy:moon", 4, "no toy density 'moon'"},
        {"toy:gmm?mean=1,2", 8, "no key 'mean'"},
        {"toy:gmm?means=1,2;3", 14, "two numbers"},
        {"toy:gmm?means=1,2;3,x", 20, "not a finite number"},
        {"toy:gmm?means=1,2;3,4&std=0.5;0.5;0.5", 26, "one group for every component"},
        {"toy:gmm?std=-1", 12, "above 0"},
        {"toy:gmm?weights=1;1", 16, "one number per component"},
        {"toy:gmm?rows=0", 13, "rows must be"},
        {"toy:gmm?seed=12a", 13, "seed must be"},
        {"toy:gmm?split=valid", 14, "train or test"},
        {"toy:circle?radius=0", 18, "above 0"},
        {"toy:circle?means=1,2", 11, "no key 'means'"},
        {"toy:gmm?rows", 8, "not key=value"},
        {"toy:spiral?turns=101", 17, "at most 100"},
        {"toy:circle?turns=2", 11, "no key 'turns'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        daecl_toy t;
        daecl_err err = {0};
        size_t off = 999;
        assert_int_equal(daecl_toy_parse(cases[i].spec, &t, &off, &err), DAECL_ECONFIG);
        if (!strstr(err.msg, cases[i].says) || off != cases[i].off)
            fail_msg("%s: offset %zu (want %zu): %s", cases[i].spec, off, cases[i].off, err.msg);
    }
}

/* Mean and covariance of n generated rows against the closed form, each
 * within 5 standard errors (the errors from the samples' own moments). */
static void check_moments(const daecl_toy *t, size_t n, const double mean[2],
                          const double cov[3])
{
    float *x = malloc(n * 2 * sizeof *x);
    daecl_toy_generate(t, 0, n, x);
    double m[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        m[0] += x[2 * i], m[1] += x[2 * i + 1];
    m[0] /= (double)n, m[1] /= (double)n;
    /* c: xx, yy, xy; c2: their squares, for the standard errors */
    double c[3] = {0, 0, 0}, c2[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double a = x[2 * i] - m[0], b = x[2 * i + 1] - m[1];
        double p[3] = {a * a, b * b, a * b};
        for (int k = 0; k < 3; k++)
            c[k] += p[k], c2[k] += p[k] * p[k];
    }
    for (int k = 0; k < 3; k++) {
        c[k] /= (double)n;
        double se = sqrt((c2[k] / (double)n - c[k] * c[k]) / (double)n);
        if (fabs(c[k] - cov[k]) > 5 * se)
            fail_msg("covariance %d: %.5f, closed form %.5f, se %.5f", k, c[k], cov[k], se);
    }
    for (int d = 0; d < 2; d++) {
        double se = sqrt(c[d] / (double)n);
        if (fabs(m[d] - mean[d]) > 5 * se)
            fail_msg("mean %d: %.5f, closed form %.5f, se %.5f", d, m[d], mean[d], se);
    }
    free(x);
}

static void test_generators_match_their_moments(void **state)
{
    (void)state;
    daecl_toy t = parse_ok(GMM3 "&seed=11");
    /* mixture: mean sum w m; cov sum w (diag s^2 + m m^T) - mean mean^T */
    double mean[2] = {0, 0}, cov[3] = {0, 0, 0};
    for (uint32_t c = 0; c < t.n_comp; c++)
        for (int d = 0; d < 2; d++)
            mean[d] += t.weight[c] * t.mean[c][d];
    for (uint32_t c = 0; c < t.n_comp; c++) {
        cov[0] += t.weight[c] * (t.std[c][0] * t.std[c][0] + t.mean[c][0] * t.mean[c][0]);
        cov[1] += t.weight[c] * (t.std[c][1] * t.std[c][1] + t.mean[c][1] * t.mean[c][1]);
        cov[2] += t.weight[c] * t.mean[c][0] * t.mean[c][1];
    }
    cov[0] -= mean[0] * mean[0], cov[1] -= mean[1] * mean[1], cov[2] -= mean[0] * mean[1];
    check_moments(&t, 200000, mean, cov);
    /* circle: mean 0, cov (R^2 + s^2) / 2 I */
    daecl_toy c = parse_ok("toy:circle?radius=1.5&noise=0.3&seed=5");
    double z[2] = {0, 0}, cc[3] = {(1.5 * 1.5 + 0.09) / 2, (1.5 * 1.5 + 0.09) / 2, 0};
    check_moments(&c, 200000, z, cc);
    /* spiral: x = rho (cos th, sin th), rho = a th + s n, th ~ U[0, Th):
     * E[x] = E[a th (cos, sin)], E[x x^T] = E[(a^2 th^2 + s^2) (cos, sin)(cos, sin)^T],
     * the expectations over th by the midpoint rule */
    daecl_toy sp = parse_ok("toy:spiral?turns=1.75&radius=2&noise=0.1&seed=9");
    double th = 2 * M_PI * 1.75, a = 2 / th, e[5] = {0, 0, 0, 0, 0};
    int n = 100000;
    for (int i = 0; i < n; i++) {
        double q = (i + 0.5) * th / n, m2 = a * a * q * q + 0.01;
        e[0] += a * q * cos(q), e[1] += a * q * sin(q);
        e[2] += m2 * cos(q) * cos(q), e[3] += m2 * sin(q) * sin(q), e[4] += m2 * cos(q) * sin(q);
    }
    for (int k = 0; k < 5; k++)
        e[k] /= n;
    double sm[2] = {e[0], e[1]};
    double sc[3] = {e[2] - e[0] * e[0], e[3] - e[1] * e[1], e[4] - e[0] * e[1]};
    check_moments(&sp, 200000, sm, sc);
}

/* Midpoint rule over a box with n x n cells. */
static double integrate(const daecl_toy *t, double x0, double x1, double y0, double y1, int n)
{
    double hx = (x1 - x0) / n, hy = (y1 - y0) / n, sum = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double x[2] = {x0 + (i + 0.5) * hx, y0 + (j + 0.5) * hy};
            sum += exp(daecl_toy_log_density(t, x, NULL));
        }
    return sum * hx * hy;
}

static void test_densities_integrate_to_one(void **state)
{
    (void)state;
    daecl_toy g = parse_ok(GMM3);
    double a = integrate(&g, -7, 7, -6, 9, 700);
    if (fabs(a - 1) > 1e-6)
        fail_msg("gmm integrates to %.9f", a);
    daecl_toy s;
    daecl_err err = {0};
    assert_int_equal(daecl_toy_convolve(&g, 0.3, &s, &err), 0);
    a = integrate(&s, -8, 8, -7, 10, 800);
    if (fabs(a - 1) > 1e-6)
        fail_msg("gmm convolved integrates to %.9f", a);
    daecl_toy c = parse_ok("toy:circle?radius=1&noise=0.1");
    a = integrate(&c, -1.8, 1.8, -1.8, 1.8, 900);
    if (fabs(a - 1) > 1e-5)
        fail_msg("circle integrates to %.9f", a);
    /* Noise large against the radius: the folded term carries mass, and the
     * 1/r at the origin defeats a Cartesian grid, so integrate in polar
     * coordinates, 2 pi r p(r) dr. */
    daecl_toy w = parse_ok("toy:circle?radius=0.5&noise=0.4");
    double sum = 0, h = 1e-4;
    for (int i = 0; i < 60000; i++) {
        double r = (i + 0.5) * h, x[2] = {r, 0};
        sum += 2 * M_PI * r * exp(daecl_toy_log_density(&w, x, NULL)) * h;
    }
    if (fabs(sum - 1) > 1e-6)
        fail_msg("wide circle integrates to %.9f", sum);
    /* The spiral in polar coordinates too: its density jumps across the
     * ray at angle 0, an edge of the polar grid, where it does no harm. */
    static const char *spirals[] = {"toy:spiral?turns=2&radius=1&noise=0.05",
                                    "toy:spiral?turns=0.6&radius=0.3&noise=0.2"};
    for (int k = 0; k < 2; k++) {
        daecl_toy sp = parse_ok(spirals[k]);
        int nr = 1500, np = 1500;
        double rmax = 2, hr = rmax / nr, hp = 2 * M_PI / np;
        sum = 0;
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < np; j++) {
                double r = (i + 0.5) * hr, p = (j + 0.5) * hp, x[2] = {r * cos(p), r * sin(p)};
                sum += r * exp(daecl_toy_log_density(&sp, x, NULL));
            }
        sum *= hr * hp;
        if (fabs(sum - 1) > 1e-5)
            fail_msg("%s integrates to %.9f", spirals[k], sum);
    }
}

/* Central differences of log p, h = 1e-5: error O(h^2) ~ 1e-10 relative. */
static void check_score(const daecl_toy *t, const double *x)
{
    double g[2], h = 1e-5;
    daecl_toy_log_density(t, x, g);
    for (int d = 0; d < 2; d++) {
        double xp[2] = {x[0], x[1]}, xm[2] = {x[0], x[1]};
        xp[d] += h, xm[d] -= h;
        double fd = (daecl_toy_log_density(t, xp, NULL) - daecl_toy_log_density(t, xm, NULL)) /
                    (2 * h);
        if (fabs(fd - g[d]) > 1e-6 * (1 + fabs(fd)))
            fail_msg("score %d at (%g, %g): %.10g, finite differences %.10g", d, x[0], x[1],
                     g[d], fd);
    }
}

static void test_scores_match_finite_differences(void **state)
{
    (void)state;
    static const double pts[][2] = {{0, 0},     {-2.1, 0.3}, {1, 1.7}, {0.4, 3.9},
                                    {5, -4},    {1.9, 0.6},  {-0.8, 1.2}};
    daecl_toy g = parse_ok(GMM3), s, c = parse_ok("toy:circle?radius=1&noise=0.2"),
              w = parse_ok("toy:circle?radius=0.5&noise=0.4"),
              sp = parse_ok("toy:spiral?turns=2.5&radius=3&noise=0.3"),
              sw = parse_ok("toy:spiral?turns=0.6&radius=0.3&noise=0.2");
    daecl_err err = {0};
    assert_int_equal(daecl_toy_convolve(&g, 0.2, &s, &err), 0);
    for (size_t i = 0; i < sizeof pts / sizeof pts[0]; i++) {
        check_score(&g, pts[i]);
        check_score(&s, pts[i]);
        if (pts[i][0] != 0 || pts[i][1] != 0) {
            check_score(&c, pts[i]);
            check_score(&w, pts[i]);
            check_score(&sp, pts[i]);
            check_score(&sw, pts[i]);
        }
    }
}

/* p_sigma(x) = int p(y) N(x - y; 0, sigma^2 I) dy by the midpoint rule on
 * x +- 9 sigma: the Gaussian's tails beyond are below 1e-17. */
static void test_p_sigma_is_the_convolution(void **state)
{
    (void)state;
    daecl_toy g = parse_ok(GMM3), s;
    daecl_err err = {0};
    double sigma = 0.3;
    assert_int_equal(daecl_toy_convolve(&g, sigma, &s, &err), 0);
    static const double pts[][2] = {{-2, 0}, {0.9, 0.4}, {0, 2}, {1.5, 3}};
    int n = 360;
    double h = 18 * sigma / n;
    for (size_t k = 0; k < sizeof pts / sizeof pts[0]; k++) {
        double sum = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double u = -9 * sigma + (i + 0.5) * h, v = -9 * sigma + (j + 0.5) * h;
                double y[2] = {pts[k][0] - u, pts[k][1] - v};
                sum += exp(daecl_toy_log_density(&g, y, NULL) - (u * u + v * v) /
                           (2 * sigma * sigma));
            }
        sum *= h * h / (2 * M_PI * sigma * sigma);
        double want = exp(daecl_toy_log_density(&s, pts[k], NULL));
        if (fabs(sum - want) > 1e-7 * want)
            fail_msg("p_sigma at (%g, %g): closed form %.12g, quadrature %.12g", pts[k][0],
                     pts[k][1], want, sum);
    }
    daecl_toy c = parse_ok("toy:circle"), sp = parse_ok("toy:spiral"), out;
    assert_int_equal(daecl_toy_convolve(&c, 0.1, &out, &err), DAECL_ENOTSUP);
    assert_int_equal(daecl_toy_convolve(&sp, 0.1, &out, &err), DAECL_ENOTSUP);
}

static daecl_dataset *load_ok(const char *spec, size_t limit)
{
    daecl_dataset *ds = NULL;
    daecl_err err = {0};
    if (daecl_dataset_load(spec, limit, 0, &ds, &err))
        fail_msg("%s: %s", spec, err.msg);
    assert_int_equal(ds->dim, 2);
    return ds;
}

static void test_rows_depend_only_on_seed_split_and_position(void **state)
{
    (void)state;
    daecl_dataset *a = load_ok("toy:gmm?seed=3&rows=1000", 0);
    daecl_dataset *b = load_ok("toy:gmm?seed=3", 1000);
    daecl_dataset *p = load_ok("toy:gmm?seed=3&rows=100", 0);
    daecl_dataset *o = load_ok("toy:gmm?seed=4&rows=1000", 0);
    daecl_dataset *t = load_ok("toy:gmm?seed=3&rows=1000&split=test", 0);
    daecl_dataset *l = load_ok("toy:gmm?seed=3&rows=1000", 10); /* limit caps rows */
    assert_int_equal(a->n_rows, 1000);
    assert_int_equal(b->n_rows, 1000);
    assert_int_equal(l->n_rows, 10);
    assert_memory_equal(a->x, b->x, 1000 * 2 * sizeof(float));
    assert_memory_equal(a->x, p->x, 100 * 2 * sizeof(float));
    assert_true(memcmp(a->x, o->x, 1000 * 2 * sizeof(float)) != 0);
    assert_true(memcmp(a->x, t->x, 1000 * 2 * sizeof(float)) != 0);
    daecl_dataset *ds[] = {a, b, p, o, t, l};
    for (size_t i = 0; i < 6; i++)
        daecl_dataset_destroy(ds[i]);
    /* no row count anywhere, too many bytes */
    daecl_dataset *none = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_load("toy:circle", 0, 0, &none, &err), DAECL_EDATA);
    assert_non_null(strstr(err.msg, "rows=N"));
    assert_int_equal(daecl_dataset_load("toy:circle?rows=1000", 0, 4000, &none, &err),
                     DAECL_EDATA);
    assert_non_null(strstr(err.msg, "data.max_mb"));
    assert_null(none);
}

/* The config refuses a bad toy source at the fault's line and column. */
static void test_config_points_at_the_fault(void **state)
{
    (void)state;
    daecl_err err = {0};
    const char *yaml = "name: toy\n"
                       "data:\n"
                       "  train: toy:gmm?rows=100&std=0.5;x\n";
    daecl_config *cfg = NULL;
    int rc = daecl_config_load_string(yaml, strlen(yaml), "toy.yaml", NULL, 0, test_registry(),
                                      &cfg, &err);
    assert_int_equal(rc, DAECL_ECONFIG);
    assert_null(cfg);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 10 + (int)strlen("toy:gmm?rows=100&std=0.5;"));
    assert_non_null(strstr(err.msg, "data.train"));
    assert_non_null(strstr(err.msg, "not a finite number"));
    /* a good one is kept as written, not joined to a folder */
    const char *good = "name: toy\ndata: {train: 'toy:circle?rows=10', test: ./toy.npy}\n";
    if (daecl_config_load_string(good, strlen(good), "toy.yaml", NULL, 0, test_registry(), &cfg,
                                 &err))
        fail_msg("refused: %s", err.msg);
    assert_string_equal(cfg->data.train, "toy:circle?rows=10");
    assert_true(cfg->data.test[0] == '/');
    daecl_config_destroy(cfg);
    /* and so is one an override gives */
    const char *ov[] = {"data.train=toy:gmm?rows=50&std=0.5;0.4;0.3&split=test"};
    if (daecl_config_load_string(good, strlen(good), "toy.yaml", ov, 1, test_registry(), &cfg,
                                 &err))
        fail_msg("refused: %s", err.msg);
    assert_string_equal(cfg->data.train, "toy:gmm?rows=50&std=0.5;0.4;0.3&split=test");
    daecl_config_destroy(cfg);
}

/* A tiny DAE trains on a toy source through daecl_train, with a test set
 * from the same density's other split. */
static void test_a_dae_trains_on_a_toy_source(void **state)
{
    (void)state;
    char *dir = test_tmpdir("toy-train");
    char path[1100], text[2048];
    snprintf(text, sizeof text,
             "name: toy\n"
             "data:\n"
             "  train: toy:gmm?seed=1\n"
             "  train_limit: 2048\n"
             "  test: toy:gmm?seed=1&split=test&rows=256\n"
             "model: {encoder: [{units: 16, activation: tanh}, {units: 16, activation: tanh}]}\n"
             "corruption: {plugin: gaussian, sigma: 0.2}\n"
             "likelihood: {plugin: gaussian}\n"
             "train: {epochs: 2, batch_size: 64, log_every: 0}\n"
             "backend: cpu\n"
             "output: {dir: %s/runs}\n",
             dir);
    snprintf(path, sizeof path, "%s/toy.yaml", dir);
    test_write_file(path, text, strlen(text));
    daecl_train_opts o = {.config_path = path, .quiet = 1};
    daecl_err err = {0};
    char run[1100];
    if (daecl_train(&o, run, sizeof run, &err))
        fail_msg("train: %s", err.msg);
    char ck[1200];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", run);
    size_t n;
    char *bytes = test_read_file(ck, &n);
    assert_true(n > 0);
    free(bytes);
    /* the resolved config keeps the sources as written */
    snprintf(ck, sizeof ck, "%s/config.yaml", run);
    bytes = test_read_file(ck, &n);
    assert_non_null(strstr(bytes, "toy:gmm?seed=1&split=test&rows=256"));
    free(bytes);
    /* a test set that repeats the training set's draws is refused */
    const char *ov[] = {"data.test=toy:gmm?seed=1&rows=256"};
    o.overrides = ov;
    o.n_overrides = 1;
    assert_int_equal(daecl_train(&o, NULL, 0, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "split=test"));
    free(dir);
}

/* configs/toy-gmm.yaml loads and trains (an epoch of its first 2,000 rows). */
static void test_the_toy_config_trains(void **state)
{
    (void)state;
    char *dir = test_tmpdir("toy-config");
    char out[1200];
    snprintf(out, sizeof out, "output.dir=%s", dir);
    const char *ov[] = {"data.train_limit=2000", "data.test_limit=500", "train.epochs=1", out};
    daecl_train_opts o = {.config_path = DAECL_TEST_SOURCE_DIR "/configs/toy-gmm.yaml",
                          .overrides = ov, .n_overrides = 4, .quiet = 1};
    daecl_err err = {0};
    char run[1100];
    if (daecl_train(&o, run, sizeof run, &err))
        fail_msg("train: %s", err.msg);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fills_the_gmm_and_normalises_weights),
        cmocka_unit_test(test_bad_specs_are_refused_at_their_offset),
        cmocka_unit_test(test_generators_match_their_moments),
        cmocka_unit_test(test_densities_integrate_to_one),
        cmocka_unit_test(test_scores_match_finite_differences),
        cmocka_unit_test(test_p_sigma_is_the_convolution),
        cmocka_unit_test(test_rows_depend_only_on_seed_split_and_position),
        cmocka_unit_test(test_config_points_at_the_fault),
        cmocka_unit_test(test_a_dae_trains_on_a_toy_source),
        cmocka_unit_test(test_the_toy_config_trains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
