/* daecl tests — the training graph's gradients against central finite
 * differences of an independent double-precision forward pass written here,
 * for every activation, tied and untied weights, and likelihoods with one and
 * two values per dimension; plus what one optimiser step does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/session.h"
#include "tests/support.h"

enum { N_ROWS = 3, DIM = 6 };

typedef struct fixture {
    daecl_config *cfg;
    daecl_model model;
    daecl_session *s;
    daecl_graph *g;
    daecl_buf *x; /* (N_ROWS, DIM) */
} fixture;

/* optimizer: a YAML mapping for `optimizer:`, or NULL for the defaults. */
static void fixture_open_with(fixture *f, const char *act, int tied, const char *likelihood,
                              const char *optimizer)
{
    memset(f, 0, sizeof *f);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "data: {train: unused.idx}\n"
             "model:\n"
             "  encoder: [{units: 5, activation: %s}, {units: 3, activation: %s}]\n"
             "  tied_weights: %s\n"
             "corruption: none\n"
             "likelihood: %s\n"
             "backend: cpu\n"
             "%s%s\n",
             act, act, tied ? "true" : "false", likelihood, optimizer ? "optimizer: " : "",
             optimizer ? optimizer : "");
    daecl_err err = {0};
    if (daecl_config_load_string(yaml, strlen(yaml), "graph-test", NULL, 0, test_registry(),
                                 &f->cfg, &err))
        fail_msg("config: %s", err.msg);
    const daecl_likelihood_ops *lik = f->cfg->likelihood.plugin->ops;
    assert_int_equal(daecl_model_init(&f->model, f->cfg, DIM, lik->params_per_dim, &err), 0);
    assert_int_equal(daecl_session_create(f->cfg, NULL, &f->s, &err), 0);
    assert_int_equal(daecl_graph_create(f->s, &f->model, N_ROWS, 0, f->cfg->optimizer.kind,
                                        f->cfg->optimizer.momentum, &f->g, &err),
                     0);
    assert_int_equal(daecl_session_alloc(f->s, N_ROWS * DIM, "x", &f->x, &err), 0);
}

static void fixture_open(fixture *f, const char *act, int tied, const char *likelihood)
{
    fixture_open_with(f, act, tied, likelihood, NULL);
}

static void fixture_close(fixture *f)
{
    if (f->s)
        daecl_session_free(f->s, f->x);
    daecl_graph_destroy(f->g);
    daecl_session_destroy(f->s);
    daecl_config_destroy(f->cfg);
}

/* ---- the independent reference, in double --------------------------------- */

/* W_eff[j][i]: a layer's own W is [out, in]; a tied layer reads its owner's
 * [in, out] array transposed. */
static double weight(const daecl_dense *l, const double *p, size_t j, size_t i)
{
    return l->tied ? p[l->w_off + i * l->out + j] : p[l->w_off + j * l->in + i];
}

/* Batch-mean loss of the network with parameters p on x. */
static double ref_loss(const daecl_model *m, const char *likelihood, const double *p,
                       const float *x)
{
    double total = 0;
    for (size_t r = 0; r < N_ROWS; r++) {
        double cur[64], next[64];
        for (size_t i = 0; i < DIM; i++)
            cur[i] = x[r * DIM + i];
        for (uint32_t l = 0; l < m->n_layers; l++) {
            const daecl_dense *ly = &m->layers[l];
            for (size_t j = 0; j < ly->out; j++) {
                double z = p[ly->b_off + j];
                for (size_t i = 0; i < ly->in; i++)
                    z += weight(ly, p, j, i) * cur[i];
                next[j] = test_act_ref(ly->act, z);
            }
            memcpy(cur, next, ly->out * sizeof(double));
        }
        for (size_t j = 0; j < DIM; j++) {
            double xv = x[r * DIM + j], a = cur[j];
            if (strcmp(likelihood, "bernoulli") == 0) {
                total += fmax(a, 0) - xv * a + log1p(exp(-fabs(a)));
            } else { /* gaussian_learned: mean a, log-variance cur[DIM + j] (within the clamp) */
                double s = cur[DIM + j];
                total += 0.5 * (log(2 * M_PI) + s + (xv - a) * (xv - a) * exp(-s));
            }
        }
    }
    return total / N_ROWS;
}

/* ---- the check ------------------------------------------------------------- */

static void check_gradients(const char *act, int tied, const char *likelihood)
{
    fixture f;
    fixture_open(&f, act, tied, likelihood);
    const daecl_model *m = &f.model;
    size_t np = m->n_params;
    float *pf = malloc(np * sizeof *pf), *grad = malloc(np * sizeof *grad);
    double *pd = malloc(np * sizeof *pd);
    float x[N_ROWS * DIM];
    assert_non_null(pf);
    assert_non_null(grad);
    assert_non_null(pd);
    test_fill_uniform(pf, np, 7, -0.8f, 0.8f);
    test_fill_uniform(x, N_ROWS * DIM, 11, 0.0f, 1.0f);
    for (size_t i = 0; i < np; i++)
        pd[i] = pf[i];

    daecl_err err = {0};
    daecl_buf *loss = NULL;
    assert_int_equal(daecl_session_alloc(f.s, 1, "loss", &loss, &err), 0);
    const daecl_backend_ops *be = f.s->be;
    assert_int_equal(be->write(f.s->ctx, f.x, 0, x, sizeof x, &err), 0);
    assert_int_equal(daecl_graph_set_params(f.g, pf, &err), 0);
    daecl_slice xs = daecl_at(f.x, 0);
    assert_int_equal(daecl_graph_forward(f.g, xs, N_ROWS, UINT32_MAX, &err), 0);
    assert_int_equal(daecl_graph_loss(f.g, xs, N_ROWS, daecl_at(loss, 0), N_ROWS, &err), 0);
    assert_int_equal(daecl_graph_backward(f.g, xs, N_ROWS, &err), 0);
    assert_int_equal(be->read(f.s->ctx, f.g->grads, 0, grad, np * sizeof(float), &err), 0);
    float loss_sum;
    assert_int_equal(be->read(f.s->ctx, loss, 0, &loss_sum, sizeof loss_sum, &err), 0);
    daecl_session_free(f.s, loss);

    /* The graph's loss (a batch sum) against the reference (a batch mean). */
    assert_close(loss_sum / N_ROWS, ref_loss(m, likelihood, pd, x), 1e-5);

    double worst = 0;
    for (size_t i = 0; i < np; i++) {
        double h = 1e-5, keep = pd[i];
        pd[i] = keep + h;
        double up = ref_loss(m, likelihood, pd, x);
        pd[i] = keep - h;
        double down = ref_loss(m, likelihood, pd, x);
        pd[i] = keep;
        double fd = (up - down) / (2 * h);
        double rel = fabs(fd - grad[i]) / fmax(1e-3, fmax(fabs(fd), fabs(grad[i])));
        if (rel > worst)
            worst = rel;
        if (rel > 2e-3)
            fail_msg("%s %s %s: parameter %zu: graph %.8g, finite differences %.8g", act,
                     tied ? "tied" : "untied", likelihood, i, (double)grad[i], fd);
    }
    /* Every parameter is reached by the gradient (none silently zero). */
    size_t nonzero = 0;
    for (size_t i = 0; i < np; i++)
        nonzero += grad[i] != 0.0f;
    if (strcmp(act, "relu") != 0)
        assert_int_equal(nonzero, np);
    free(pf);
    free(pd);
    free(grad);
    fixture_close(&f);
}

static void test_gradients_match_finite_differences_sigmoid(void **state)
{
    (void)state;
    check_gradients("sigmoid", 0, "bernoulli");
    check_gradients("sigmoid", 1, "bernoulli");
}

static void test_gradients_match_finite_differences_tanh(void **state)
{
    (void)state;
    check_gradients("tanh", 0, "bernoulli");
    check_gradients("tanh", 1, "bernoulli");
}

static void test_gradients_match_finite_differences_relu(void **state)
{
    (void)state;
    check_gradients("relu", 0, "bernoulli");
    check_gradients("relu", 1, "bernoulli");
}

static void test_gradients_match_finite_differences_linear(void **state)
{
    (void)state;
    check_gradients("linear", 0, "bernoulli");
    check_gradients("linear", 1, "bernoulli");
}

static void test_gradients_with_two_values_per_dimension(void **state)
{
    (void)state;
    check_gradients("tanh", 0, "gaussian_learned");
}

static void test_tied_layout_shares_encoder_weights(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, "sigmoid", 1, "bernoulli");
    const daecl_model *m = &f.model;
    assert_int_equal(m->n_layers, 4);
    assert_true(m->layers[2].tied && m->layers[2].tied_to == 1);
    assert_true(m->layers[3].tied && m->layers[3].tied_to == 0);
    assert_int_equal(m->layers[3].w_off, m->layers[0].w_off);
    assert_int_equal(m->n_weights, DIM * 5 + 5 * 3);
    assert_int_equal(m->n_params, m->n_weights + 5 + 3 + 5 + DIM);
    fixture_close(&f);
}

/* Plain SGD: one update moves every parameter by exactly -lr * gradient. */
static void test_sgd_step_moves_parameters_against_the_gradient(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, "sigmoid", 0, "bernoulli");
    size_t np = f.model.n_params;
    float *p0 = malloc(np * sizeof(float)), *p1 = malloc(np * sizeof(float));
    float *grad = malloc(np * sizeof(float));
    float x[N_ROWS * DIM];
    test_fill_uniform(p0, np, 3, -0.5f, 0.5f);
    test_fill_uniform(x, N_ROWS * DIM, 5, 0.0f, 1.0f);
    daecl_err err = {0};
    daecl_buf *loss = NULL;
    const daecl_backend_ops *be = f.s->be;
    assert_int_equal(daecl_session_alloc(f.s, 1, "loss", &loss, &err), 0);
    assert_int_equal(be->write(f.s->ctx, f.x, 0, x, sizeof x, &err), 0);
    assert_int_equal(daecl_graph_set_params(f.g, p0, &err), 0);
    daecl_slice xs = daecl_at(f.x, 0);
    assert_int_equal(daecl_graph_forward(f.g, xs, N_ROWS, UINT32_MAX, &err), 0);
    assert_int_equal(daecl_graph_loss(f.g, xs, N_ROWS, daecl_at(loss, 0), N_ROWS, &err), 0);
    assert_int_equal(daecl_graph_backward(f.g, xs, N_ROWS, &err), 0);
    assert_int_equal(be->read(f.s->ctx, f.g->grads, 0, grad, np * sizeof(float), &err), 0);
    assert_int_equal(daecl_graph_update(f.g, f.cfg, 1, &err), 0);
    assert_int_equal(daecl_graph_get_params(f.g, p1, &err), 0);
    float lr = (float)f.cfg->optimizer.lr;
    for (size_t i = 0; i < np; i++)
        assert_true(p1[i] == p0[i] - lr * grad[i]);
    daecl_session_free(f.s, loss);
    free(p0);
    free(p1);
    free(grad);
    fixture_close(&f);
}

/* Plain SGD's fused path (weights updated inside their gradient GEMM) takes
 * the same step as backward + update, with and without weight decay. */
static void test_fused_sgd_step_equals_backward_then_update(void **state)
{
    (void)state;
    for (int decay = 0; decay < 2; decay++) {
        fixture f[2];
        for (int k = 0; k < 2; k++)
            fixture_open(&f[k], "sigmoid", 0, "bernoulli");
        size_t np = f[0].model.n_params;
        float *p0 = malloc(np * sizeof(float)), *pa = malloc(np * sizeof(float));
        float *pb = malloc(np * sizeof(float));
        float x[N_ROWS * DIM];
        test_fill_uniform(p0, np, 13, -0.5f, 0.5f);
        test_fill_uniform(x, N_ROWS * DIM, 17, 0.0f, 1.0f);
        daecl_err err = {0};
        for (int k = 0; k < 2; k++) {
            f[k].cfg->optimizer.weight_decay = decay ? 0.01 : 0;
            daecl_buf *loss = NULL;
            assert_int_equal(daecl_session_alloc(f[k].s, 1, "loss", &loss, &err), 0);
            assert_int_equal(f[k].s->be->write(f[k].s->ctx, f[k].x, 0, x, sizeof x, &err), 0);
            assert_int_equal(daecl_graph_set_params(f[k].g, p0, &err), 0);
            daecl_slice xs = daecl_at(f[k].x, 0);
            assert_int_equal(daecl_graph_forward(f[k].g, xs, N_ROWS, UINT32_MAX, &err), 0);
            assert_int_equal(daecl_graph_loss(f[k].g, xs, N_ROWS, daecl_at(loss, 0), N_ROWS, &err), 0);
            if (k == 0) {
                assert_int_equal(daecl_graph_backward(f[k].g, xs, N_ROWS, &err), 0);
                assert_int_equal(daecl_graph_update(f[k].g, f[k].cfg, 1, &err), 0);
            } else {
                assert_int_equal(
                    daecl_graph_backward_update(f[k].g, xs, N_ROWS, f[k].cfg, 1, &err), 0);
            }
            assert_int_equal(daecl_graph_get_params(f[k].g, k ? pb : pa, &err), 0);
            daecl_session_free(f[k].s, loss);
        }
        size_t moved = 0;
        for (size_t i = 0; i < np; i++) {
            assert_close(pa[i], pb[i], 1e-6);
            moved += pa[i] != p0[i];
        }
        assert_true(moved > np / 2); /* the step did something */
        free(p0), free(pa), free(pb);
        fixture_close(&f[0]);
        fixture_close(&f[1]);
    }
}

/* ---- the GEMM shapes the graph reports ------------------------------------ */

static daecl_graph_gemm recorded[3 * DAECL_MAX_DENSE];
static size_t n_recorded;
static const daecl_backend_ops *real_be;

static int recording_gemm(void *ctx, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                          daecl_slice a, size_t lda, daecl_slice b, size_t ldb, float beta,
                          daecl_slice c, size_t ldc, daecl_err *err)
{
    if (n_recorded < sizeof recorded / sizeof recorded[0])
        recorded[n_recorded++] = (daecl_graph_gemm){0, NULL, ta, tb, m, n, k, beta};
    return real_be->gemm(ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, err);
}

/* One real step (forward, loss, backward_update) through a table that
 * records each gemm, against what daecl_graph_gemm_shapes says it runs. */
static void expect_reported_shapes(int tied, const char *optimizer)
{
    fixture f;
    fixture_open_with(&f, "sigmoid", tied, "bernoulli", optimizer);
    daecl_err err = {0};
    daecl_buf *loss = NULL;
    assert_int_equal(daecl_session_alloc(f.s, 1, "loss", &loss, &err), 0);
    daecl_backend_ops recording = *f.s->be;
    recording.gemm = recording_gemm;
    real_be = f.s->be;
    n_recorded = 0;
    f.s->be = &recording;
    daecl_slice xs = daecl_at(f.x, 0);
    assert_int_equal(daecl_graph_forward(f.g, xs, N_ROWS, UINT32_MAX, &err), 0);
    assert_int_equal(daecl_graph_loss(f.g, xs, N_ROWS, daecl_at(loss, 0), N_ROWS, &err), 0);
    assert_int_equal(daecl_graph_backward_update(f.g, xs, N_ROWS, f.cfg, 1, &err), 0);
    f.s->be = real_be;
    daecl_graph_gemm reported[3 * DAECL_MAX_DENSE];
    size_t n = daecl_graph_gemm_shapes(f.g, f.cfg, reported, 3 * DAECL_MAX_DENSE);
    assert_int_equal(n, n_recorded);
    assert_true(n >= 2 * f.model.n_layers); /* forward and weight grad per layer */
    for (size_t i = 0; i < n; i++) {
        const daecl_graph_gemm *r = &reported[i], *g = &recorded[i];
        if (r->trans_a != g->trans_a || r->trans_b != g->trans_b || r->m != g->m ||
            r->n != g->n || r->k != g->k || r->beta != g->beta)
            fail_msg("product %zu (layer %u, %s): reported %d %d %zu x %zu x %zu beta %g, the "
                     "step ran %d %d %zu x %zu x %zu beta %g", i, r->layer, r->what, r->trans_a,
                     r->trans_b, r->m, r->n, r->k, r->beta, g->trans_a, g->trans_b, g->m, g->n,
                     g->k, g->beta);
        assert_non_null(r->what);
        assert_true(r->layer < f.model.n_layers);
    }
    /* fewer slots than products: the count stays, nothing is written past */
    assert_int_equal(daecl_graph_gemm_shapes(f.g, f.cfg, reported, 1), n);
    daecl_session_free(f.s, loss);
    fixture_close(&f);
}

static void test_reported_gemm_shapes_are_the_ones_a_step_runs(void **state)
{
    (void)state;
    expect_reported_shapes(0, NULL);                                  /* fused SGD */
    expect_reported_shapes(0, "{name: sgd, weight_decay: 0.01}");     /* fused, beta = keep */
    expect_reported_shapes(1, NULL);                                  /* tied: accumulates */
    expect_reported_shapes(0, "{name: adam}");                        /* gradient, then update */
    expect_reported_shapes(1, "{name: sgd, momentum: 0.9}");
}

/* ---- the core's fallbacks for the optional fill and lik_sample ------------ */

static void test_session_fills_and_samples_without_the_optional_slots(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, "sigmoid", 0, "bernoulli");
    daecl_err err = {0};
    enum { N = N_ROWS * DIM };
    float a[N], got[2][N];
    test_fill_uniform(a, N, 23, -3.0f, 3.0f);
    daecl_buf *ba = NULL, *out = NULL;
    assert_int_equal(daecl_session_alloc(f.s, N, "a", &ba, &err), 0);
    assert_int_equal(daecl_session_alloc(f.s, N + 1, "out", &out, &err), 0);
    assert_int_equal(f.s->be->write(f.s->ctx, ba, 0, a, sizeof a, &err), 0);
    const daecl_noise_key key = {.seed = 5, .stream = DAECL_STREAM_SAMPLE};
    const daecl_backend_ops *real = f.s->be;
    daecl_backend_ops bare = *real;
    bare.fill = NULL;
    bare.lik_sample = NULL;
    for (int k = 0; k < 2; k++) {
        f.s->be = k ? &bare : real;
        assert_int_equal(daecl_session_fill(f.s, daecl_at(out, 0), N + 1, 7.0f, &err), 0);
        assert_int_equal(daecl_session_fill(f.s, daecl_at(out, 1), N - 1, -2.5f, &err), 0);
        float filled[N + 1];
        assert_int_equal(real->read(f.s->ctx, out, 0, filled, sizeof filled, &err), 0);
        assert_true(filled[0] == 7.0f && filled[N] == 7.0f);
        for (size_t i = 1; i < N; i++)
            assert_true(filled[i] == -2.5f);
        assert_int_equal(
            daecl_session_sample(f.s, daecl_at(ba, 0), N_ROWS, DIM, &key, daecl_at(out, 0), &err),
            0);
        assert_int_equal(real->finish(f.s->ctx, &err), 0);
        assert_int_equal(real->read(f.s->ctx, out, 0, got[k], sizeof got[k], &err), 0);
    }
    f.s->be = real;
    /* the host fallback draws the device's bits: same key, same samples */
    assert_memory_equal(got[0], got[1], sizeof got[0]);
    size_t ones = 0;
    for (size_t i = 0; i < N; i++) {
        assert_true(got[0][i] == 0.0f || got[0][i] == 1.0f);
        ones += got[0][i] == 1.0f;
    }
    assert_true(ones > 0 && ones < N);
    daecl_session_free(f.s, ba);
    daecl_session_free(f.s, out);
    fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_match_finite_differences_sigmoid),
        cmocka_unit_test(test_gradients_match_finite_differences_tanh),
        cmocka_unit_test(test_gradients_match_finite_differences_relu),
        cmocka_unit_test(test_gradients_match_finite_differences_linear),
        cmocka_unit_test(test_gradients_with_two_values_per_dimension),
        cmocka_unit_test(test_tied_layout_shares_encoder_weights),
        cmocka_unit_test(test_sgd_step_moves_parameters_against_the_gradient),
        cmocka_unit_test(test_fused_sgd_step_equals_backward_then_update),
        cmocka_unit_test(test_reported_gemm_shapes_are_the_ones_a_step_runs),
        cmocka_unit_test(test_session_fills_and_samples_without_the_optional_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
