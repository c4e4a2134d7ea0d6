/* daecl tests — walkback training (core/walkback.c): how many pairs each
 * example takes (fixed k; geometric, against its distribution; the same
 * however the rows are split); a step's pairs against the chain built by
 * hand from the public ops, bit for bit; the step's loss as the mean over
 * every pair; walkback 0 bit for bit the ordinary step; exact resume in the
 * middle of an epoch; cpu and opencl pairs to rounding; the refusals.
 * Replicas sharing a walkback batch are tests/test_parallel.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "core/train.h"
#include "core/walkback.h"
#include "tests/support.h"

/* ---- counts ---------------------------------------------------------------- */

static void test_fixed_k_gives_every_example_k_pairs(void **state)
{
    (void)state;
    daecl_config c;
    memset(&c, 0, sizeof c);
    c.seed = 3;
    c.train.walkback = 5;
    uint8_t k[40];
    assert_int_equal(daecl_walkback_count(&c, 2, 100, 40, k), 200);
    for (size_t r = 0; r < 40; r++)
        assert_int_equal(k[r], 5);
    c.train.walkback = 0;
    assert_int_equal(daecl_walkback_count(&c, 2, 100, 40, k), 0);
    assert_int_equal(daecl_walkback_rows(&c, 128), 128);
    c.train.walkback = 5;
    assert_int_equal(daecl_walkback_rows(&c, 128), 768);
}

/* P(K >= j) = p^j for j <= k: each of the first k fractions within 4
 * standard errors of a Bernoulli mean over N rows; the mean of K as well. */
static void test_geometric_counts_follow_their_distribution(void **state)
{
    (void)state;
    enum { N = 200000, K = 5 };
    daecl_config c;
    memset(&c, 0, sizeof c);
    c.seed = 11;
    c.train.walkback = K;
    c.train.walkback_p = 0.5;
    uint8_t *k = malloc(N);
    assert_non_null(k);
    size_t total = daecl_walkback_count(&c, 1, 0, N, k);
    size_t at_least[K + 2] = {0};
    for (size_t r = 0; r < N; r++) {
        assert_true(k[r] <= K);
        for (uint32_t j = 0; j <= k[r]; j++)
            at_least[j]++;
    }
    assert_int_equal(at_least[0], N);
    double mean_want = 0;
    for (uint32_t j = 1; j <= K; j++) {
        double p = pow(0.5, j), got = (double)at_least[j] / N;
        double se = sqrt(p * (1 - p) / N);
        if (fabs(got - p) > 4 * se)
            fail_msg("P(K >= %u) = %.5f, want %.5f +- %.5f", j, got, p, 4 * se);
        mean_want += p;
    }
    double mean = (double)total / N, var = 0;
    for (size_t r = 0; r < N; r++)
        var += (k[r] - mean) * (k[r] - mean);
    double se = sqrt(var / (N - 1) / N);
    if (fabs(mean - mean_want) > 4 * se)
        fail_msg("mean K %.5f, want %.5f +- %.5f", mean, mean_want, 4 * se);
    /* Any split of the rows draws the same counts: position, not call. */
    uint8_t part[1000];
    size_t sum = daecl_walkback_count(&c, 1, 5000, 300, part) +
                 daecl_walkback_count(&c, 1, 5300, 700, part + 300);
    size_t whole = 0;
    for (size_t r = 0; r < 1000; r++) {
        assert_int_equal(part[r], k[5000 + r]);
        whole += k[5000 + r];
    }
    assert_int_equal(sum, whole);
    /* Another epoch or seed draws others. */
    assert_int_not_equal(daecl_walkback_count(&c, 2, 0, N, NULL), total);
    c.seed = 12;
    assert_int_not_equal(daecl_walkback_count(&c, 1, 0, N, NULL), total);
    free(k);
}

/* ---- a step's pairs ---------------------------------------------------------- */

/* dir/exp.yaml opened as training opens it, epoch 0 shuffled. */
static void open_run(const char *dir, const char *const *ov, size_t n_ov, daecl_run *r)
{
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    daecl_err err = {0};
    if (daecl_run_configure(r, cfg, ov, n_ov, &err) || daecl_run_load_data(r, 0, &err) ||
        daecl_run_start(r, &err) || daecl_run_shuffle(r, 0, &err))
        fail_msg("open %s: %s", cfg, err.msg);
}

static float *read_rows(daecl_session *s, daecl_slice sl, size_t n)
{
    float *h = malloc(n * sizeof *h);
    assert_non_null(h);
    daecl_err err = {0};
    if (daecl_session_read(s, sl, h, n, &err))
        fail_msg("read: %s", err.msg);
    return h;
}

/* The pairs of the first batch (n rows) as the chain defines them, built
 * with the session's public ops: x~_j = C(x*_j) under substep j, x*_{j+1}
 * drawn from the decoder at x~_j under substep j + 1; pair (j, r) kept when
 * row r walks at least j steps; j-major. in and target get P rows. */
static size_t pairs_by_hand(daecl_run *r, size_t n, float *in, float *target)
{
    const daecl_config *c = r->cfg;
    size_t dim = r->train->dim;
    daecl_err err = {0};
    uint8_t k[256];
    assert_true(n <= sizeof k);
    daecl_walkback_count(c, 0, 0, n, k);
    uint32_t k_max = 0;
    for (size_t i = 0; i < n; i++)
        k_max = k[i] > k_max ? k[i] : k_max;
    daecl_slice x;
    daecl_buf *state, *xt;
    assert_int_equal(daecl_session_alloc(r->s, n * dim, "state", &state, &err), 0);
    assert_int_equal(daecl_session_alloc(r->s, n * dim, "xt", &xt, &err), 0);
    assert_int_equal(daecl_feeder_batch(r->train_feed, 0, n, &x, &err), 0);
    float *clean = read_rows(r->s, x, n * dim);
    assert_int_equal(r->s->be->copy(r->s->ctx, daecl_at(state, 0), x, n * dim, &err), 0);
    daecl_shape shape;
    daecl_dataset_shape(r->train, &shape);
    size_t p = 0;
    for (uint32_t j = 0; j <= k_max; j++) {
        daecl_noise_key ck = {.seed = c->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                              .substep = j};
        daecl_noise_key dk = ck;
        dk.stream = DAECL_STREAM_SAMPLE;
        dk.substep = j + 1;
        if (daecl_session_corrupt(r->s, daecl_at(state, 0), daecl_at(xt, 0), n, dim, &shape, &ck,
                                  &err) ||
            daecl_graph_forward(r->g, daecl_at(xt, 0), n, UINT32_MAX, &err))
            fail_msg("chain step %u: %s", j, err.msg);
        float *h = read_rows(r->s, daecl_at(xt, 0), n * dim);
        for (size_t i = 0; i < n; i++)
            if (k[i] >= j) {
                memcpy(in + p * dim, h + i * dim, dim * sizeof *h);
                memcpy(target + p * dim, clean + i * dim, dim * sizeof *h);
                p++;
            }
        free(h);
        daecl_slice a = daecl_graph_layer_out(r->g, r->g->m->n_layers - 1);
        if ((c->train.walkback_mean ? daecl_session_mean(r->s, a, n, dim, daecl_at(state, 0), &err)
                                    : daecl_session_sample(r->s, a, n, dim, &dk,
                                                           daecl_at(state, 0), &err)))
            fail_msg("chain draw %u: %s", j, err.msg);
    }
    free(clean);
    daecl_session_free(r->s, state);
    daecl_session_free(r->s, xt);
    return p;
}

/* daecl_pairs_forward's pairs for the first batch, on the host. */
static size_t pairs_of_step(daecl_run *r, float **in, float **target, float **out0)
{
    daecl_err err = {0};
    size_t n = r->g->batch_max, dim = r->train->dim;
    daecl_slice x;
    daecl_pairs pr;
    daecl_noise_key key = {.seed = r->cfg->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION};
    daecl_shape shape;
    daecl_dataset_shape(r->train, &shape);
    if (daecl_feeder_batch(r->train_feed, 0, n, &x, &err) ||
        daecl_pairs_forward(r->g, r->wb, x, n, &shape, &key, &pr, &err))
        fail_msg("pairs: %s", err.msg);
    *in = read_rows(r->s, pr.in, pr.n_pairs * dim);
    *target = read_rows(r->s, pr.target, pr.n_pairs * dim);
    if (out0) /* the network's output at the pairs, as the loss sees it */
        *out0 = read_rows(r->s, daecl_graph_output_row(r->g, 0),
                          pr.n_pairs * r->g->m->layers[r->g->m->n_layers - 1].out);
    return pr.n_pairs;
}

static void pairs_match_the_chain(const char *train_keys)
{
    char *dir = test_small_experiment("walkback-pairs", train_keys, "{plugin: cpu, threads: 1}");
    daecl_run r;
    open_run(dir, NULL, 0, &r);
    size_t n = r.g->batch_max, dim = r.train->dim;
    assert_int_equal(r.g->rows_max, n * (1 + r.cfg->train.walkback));
    float *in, *target;
    size_t p = pairs_of_step(&r, &in, &target, NULL);
    size_t want = n + daecl_walkback_count(r.cfg, 0, 0, n, NULL);
    assert_int_equal(p, want);
    assert_true(p > n); /* the seed walks somewhere */
    float *hin = malloc(p * dim * sizeof *hin), *htarget = malloc(p * dim * sizeof *htarget);
    assert_non_null(hin);
    assert_non_null(htarget);
    assert_int_equal(pairs_by_hand(&r, n, hin, htarget), p);
    assert_memory_equal(target, htarget, p * dim * sizeof *target);
    assert_memory_equal(in, hin, p * dim * sizeof *in);
    /* The chain moved: later pairs are not the first ones again. */
    size_t later = p - n < n ? p - n : n;
    assert_true(memcmp(in, in + n * dim, later * dim * sizeof *in) != 0);
    free(in);
    free(target);
    free(hin);
    free(htarget);
    daecl_run_close(&r);
    test_remove_dir(dir);
}

static void test_fixed_k_pairs_are_the_chains_bit_for_bit(void **state)
{
    (void)state;
    pairs_match_the_chain("walkback: 3");
}

static void test_geometric_pairs_are_the_chains_bit_for_bit(void **state)
{
    (void)state;
    pairs_match_the_chain("walkback: 4, walkback_p: 0.6");
}

static void test_a_mean_chain_is_the_chains_bit_for_bit(void **state)
{
    (void)state;
    pairs_match_the_chain("walkback: 2, walkback_p: 0.7, walkback_chain: mean");
}

/* One step of run_step against the ordinary step's ops on the hand-built
 * pairs: every pair weighs 1 and the loss is their mean. */
static void test_the_step_is_the_mean_over_all_pairs(void **state)
{
    (void)state;
    char *dir = test_small_experiment("walkback-mean", "walkback: 3, walkback_p: 0.5",
                                      "{plugin: cpu, threads: 1}");
    /* Plain SGD: Adam's first step would not see the gradient's scale. */
    const char *sgd[] = {"optimizer.name=sgd", "optimizer.lr=0.5"};
    daecl_run a, b;
    open_run(dir, sgd, 2, &a);
    open_run(dir, sgd, 2, &b);
    size_t n = a.g->batch_max, dim = a.train->dim, np = a.model.n_params;
    daecl_err err = {0};
    daecl_buf *loss;
    assert_int_equal(daecl_session_alloc(a.s, 1, "loss", &loss, &err), 0);
    size_t rows;
    if (daecl_run_step(&a, 0, 0, 1, daecl_at(loss, 0), &rows, &err))
        fail_msg("step: %s", err.msg);
    assert_int_equal(rows, n);
    float step_loss;
    assert_int_equal(daecl_session_read(a.s, daecl_at(loss, 0), &step_loss, 1, &err), 0);

    size_t cap = n * (1 + b.cfg->train.walkback);
    float *hin = malloc(cap * dim * sizeof *hin), *htarget = malloc(cap * dim * sizeof *htarget);
    assert_non_null(hin);
    assert_non_null(htarget);
    size_t p = pairs_by_hand(&b, n, hin, htarget);
    assert_true(p > n);
    daecl_buf *bin, *btarget, *bloss;
    assert_int_equal(daecl_session_alloc(b.s, p * dim, "in", &bin, &err), 0);
    assert_int_equal(daecl_session_alloc(b.s, p * dim, "target", &btarget, &err), 0);
    assert_int_equal(daecl_session_alloc(b.s, 1, "loss", &bloss, &err), 0);
    assert_int_equal(b.s->be->write(b.s->ctx, bin, 0, hin, p * dim * sizeof *hin, &err), 0);
    assert_int_equal(b.s->be->write(b.s->ctx, btarget, 0, htarget, p * dim * sizeof *hin, &err),
                     0);
    /* The ordinary step's ops on all p pairs, the loss gradient over p. */
    if (daecl_graph_forward(b.g, daecl_at(bin, 0), p, UINT32_MAX, &err) ||
        daecl_graph_loss(b.g, daecl_at(btarget, 0), n, daecl_at(bloss, 0), 0, &err))
        fail_msg("reference loss: %s", err.msg);
    float clean_loss;
    assert_int_equal(daecl_session_read(b.s, daecl_at(bloss, 0), &clean_loss, 1, &err), 0);
    if (daecl_graph_loss(b.g, daecl_at(btarget, 0), p, daecl_at(bloss, 0), p, &err) ||
        daecl_graph_backward_update(b.g, daecl_at(bin, 0), p, b.cfg, 1, &err))
        fail_msg("reference step: %s", err.msg);
    /* The reported loss is the clean pairs' sum, as without walkback. */
    assert_close(step_loss, clean_loss, 1e-5);
    assert_int_equal(daecl_run_fetch_params(&a, &err), 0);
    assert_int_equal(daecl_run_fetch_params(&b, &err), 0);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < np; i++) {
        worst = fmax(worst, fabs((double)a.params[i] - b.params[i]));
        scale = fmax(scale, fabs((double)b.params[i]));
    }
    if (worst > 1e-6 * scale)
        fail_msg("walkback step and the step on its pairs differ by %g (scale %g)", worst, scale);
    free(hin);
    free(htarget);
    daecl_session_free(b.s, bin);
    daecl_session_free(b.s, btarget);
    daecl_session_free(b.s, bloss);
    daecl_session_free(a.s, loss);
    daecl_run_close(&a);
    daecl_run_close(&b);
    test_remove_dir(dir);
}

/* walkback 0: the ordinary step, bit for bit, against the sequence of ops
 * the step ran before walkback existed. */
static void test_walkback_0_is_the_ordinary_step_bit_for_bit(void **state)
{
    (void)state;
    char *dir = test_small_experiment("walkback-0", "walkback: 0", "{plugin: cpu, threads: 1}");
    daecl_run a, b;
    open_run(dir, NULL, 0, &a);
    open_run(dir, NULL, 0, &b);
    assert_null(a.wb);
    size_t dim = a.train->dim, spe = a.steps_per_epoch, b_max = a.g->batch_max;
    daecl_err err = {0};
    daecl_buf *la, *lb;
    assert_int_equal(daecl_session_alloc(a.s, spe, "loss", &la, &err), 0);
    assert_int_equal(daecl_session_alloc(b.s, spe, "loss", &lb, &err), 0);
    daecl_shape shape;
    daecl_dataset_shape(b.train, &shape);
    for (size_t i = 0; i < spe; i++) {
        size_t rows, first = i * b_max, n = a.train->n_rows - first < b_max
                                                ? a.train->n_rows - first : b_max;
        if (daecl_run_step(&a, i, 0, i + 1, daecl_at(la, i), &rows, &err))
            fail_msg("step %zu: %s", i, err.msg);
        daecl_slice x, xt = daecl_at(b.g->input, 0);
        daecl_noise_key key = {.seed = b.cfg->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                               .pos0 = (uint32_t)first};
        if (daecl_feeder_batch(b.train_feed, first, n, &x, &err) ||
            daecl_session_corrupt(b.s, x, xt, n, dim, &shape, &key, &err) ||
            daecl_graph_forward(b.g, xt, n, UINT32_MAX, &err) ||
            daecl_graph_loss(b.g, x, n, daecl_at(lb, i), n, &err) ||
            daecl_graph_backward_update(b.g, xt, n, b.cfg, i + 1, &err))
            fail_msg("reference step %zu: %s", i, err.msg);
    }
    assert_int_equal(daecl_run_fetch_params(&a, &err), 0);
    assert_int_equal(daecl_run_fetch_params(&b, &err), 0);
    assert_memory_equal(a.params, b.params, a.model.n_params * sizeof *a.params);
    float *ha = read_rows(a.s, daecl_at(la, 0), spe), *hb = read_rows(b.s, daecl_at(lb, 0), spe);
    assert_memory_equal(ha, hb, spe * sizeof *ha);
    free(ha);
    free(hb);
    daecl_session_free(a.s, la);
    daecl_session_free(b.s, lb);
    daecl_run_close(&a);
    daecl_run_close(&b);
    test_remove_dir(dir);
}

/* ---- whole runs -------------------------------------------------------------- */

static int train(const char *dir, const char *run, const char *const *ov, size_t n,
                 const char *resume_from, daecl_err *err)
{
    char cfg[1200], out[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/%s", dir, run);
    daecl_train_opts o = {.config_path = resume_from ? NULL : cfg, .resume_dir = resume_from,
                          .overrides = ov, .n_overrides = n, .out_dir = resume_from ? NULL : out,
                          .quiet = 1};
    return daecl_train(&o, NULL, 0, err);
}

static void test_resume_in_the_middle_of_an_epoch_is_bit_identical(void **state)
{
    (void)state;
    char *dir = test_small_experiment("walkback-resume", "walkback: 3, walkback_p: 0.5", "cpu");
    daecl_err err = {0};
    if (train(dir, "whole", NULL, 0, NULL, &err))
        fail_msg("whole: %s", err.msg);
    const char *stop[] = {"train.max_steps=10", "train.checkpoint_unit=step",
                          "train.checkpoint_every=4"};
    if (train(dir, "split", stop, 3, NULL, &err))
        fail_msg("split: %s", err.msg);
    char split[1300], whole[1300];
    snprintf(split, sizeof split, "%s/split", dir);
    snprintf(whole, sizeof whole, "%s/whole", dir);
    /* Walkback is what the run trains on: it may not change on resume. */
    const char *other[] = {"train.max_steps=0", "train.walkback=2"};
    assert_int_not_equal(train(dir, "split", other, 2, split, &err), 0);
    assert_non_null(strstr(err.msg, "walkback"));
    const char *go[] = {"train.max_steps=0"};
    daecl_err_clear(&err);
    if (train(dir, "split", go, 1, split, &err))
        fail_msg("resume: %s", err.msg);
    test_same_checkpoints(whole, split);
    /* Without walkback the same run ends elsewhere. */
    const char *none[] = {"train.walkback=0", "train.walkback_p=0"};
    if (train(dir, "plain", none, 2, NULL, &err))
        fail_msg("plain: %s", err.msg);
    char plain[1300];
    snprintf(plain, sizeof plain, "%s/plain", dir);
    assert_true(test_checkpoint_rel_diff(whole, plain) > 1e-3);
    test_remove_dir(dir);
}

/* The same pairs on opencl as on cpu, to rounding: a mean chain, so no
 * Bernoulli draw can flip on a last-bit difference of its probability. */
static void test_cpu_and_opencl_pairs_agree(void **state)
{
    (void)state;
    if (!DAECL_TEST_WITH_OPENCL)
        skip();
    char *dir = test_small_experiment("walkback-ocl", "walkback: 3, walkback_chain: mean",
                                      "{plugin: cpu, threads: 1}");
    const char *ocl[] = {"backend.plugin=opencl"};
    daecl_run a, b;
    open_run(dir, NULL, 0, &a);
    open_run(dir, ocl, 1, &b);
    float *ia, *ta, *oa, *ib, *tb, *ob;
    size_t pa = pairs_of_step(&a, &ia, &ta, &oa), pb = pairs_of_step(&b, &ib, &tb, &ob);
    assert_int_equal(pa, pb);
    size_t dim = a.train->dim;
    assert_memory_equal(ta, tb, pa * dim * sizeof *ta);
    double worst = 0, worst_out = 0;
    for (size_t i = 0; i < pa * dim; i++) {
        worst = fmax(worst, fabs((double)ia[i] - ib[i]));
        worst_out = fmax(worst_out, fabs((double)oa[i] - ob[i]));
    }
    if (worst > 1e-4 || worst_out > 1e-4)
        fail_msg("cpu and opencl pairs differ by %g, outputs by %g", worst, worst_out);
    free(ia), free(ta), free(oa), free(ib), free(tb), free(ob);
    daecl_run_close(&a);
    daecl_run_close(&b);
    test_remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_k_gives_every_example_k_pairs),
        cmocka_unit_test(test_geometric_counts_follow_their_distribution),
        cmocka_unit_test(test_fixed_k_pairs_are_the_chains_bit_for_bit),
        cmocka_unit_test(test_geometric_pairs_are_the_chains_bit_for_bit),
        cmocka_unit_test(test_a_mean_chain_is_the_chains_bit_for_bit),
        cmocka_unit_test(test_the_step_is_the_mean_over_all_pairs),
        cmocka_unit_test(test_walkback_0_is_the_ordinary_step_bit_for_bit),
        cmocka_unit_test(test_resume_in_the_middle_of_an_epoch_is_bit_identical),
        cmocka_unit_test(test_cpu_and_opencl_pairs_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
