/* daecl tests — optimizer.schedule: the cosine rates against torch's
 * CosineAnnealingLR formula written out here; a run logs each epoch's last
 * rate and follows it (a cosine run ending where it starts is the constant
 * run bit for bit, and one that decays is not); one plain-SGD step takes the
 * rate the graph was given; an update under cosine without a rate is
 * refused. Resume (test_resume), stacks (test_stack) and fine-tuning
 * (test_finetune) check their own phases. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/session.h"
#include "core/train.h"
#include "tests/support.h"

/* torch.optim.lr_scheduler.CosineAnnealingLR's closed form after `pos`
 * scheduler steps of T_max = steps: eta_min + (lr - eta_min)(1 + cos(pi pos / T)) / 2. */
static double torch_cosine(double lr, double eta_min, double pos, double steps)
{
    return eta_min + (lr - eta_min) * (1.0 + cos(acos(-1.0) * pos / steps)) / 2.0;
}

static daecl_config *load(const char *optimizer)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "data: {train: unused.idx}\nmodel: {encoder: [{units: 3, activation: tanh}]}\n"
             "corruption: none\nlikelihood: bernoulli\nbackend: cpu\noptimizer: %s\n",
             optimizer);
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    if (daecl_config_load_string(yaml, strlen(yaml), "schedule-test", NULL, 0, test_registry(),
                                 &cfg, &err))
        fail_msg("config: %s", err.msg);
    return cfg;
}

static void test_cosine_rates_are_torchs(void **state)
{
    (void)state;
    daecl_config *c = load("{name: sgd, lr: 1, schedule: cosine}");
    /* T = 4 by hand: 1, (1 + cos(pi/4))/2, 1/2, (1 - cos(pi/4))/2, then 0 */
    const double want[] = {1.0, 0.8535533905932737, 0.5, 0.14644660940672627, 0.0, 0.0};
    for (uint64_t pos = 0; pos < 6; pos++)
        assert_true(fabs(daecl_schedule_lr(c, pos, 4) - want[pos]) < 1e-15);
    daecl_config_destroy(c);
    c = load("{name: adam, lr: 0.003, schedule: cosine, lr_min: 0.0001}");
    for (uint64_t pos = 0; pos < 1000; pos += 37)
        assert_true(fabs(daecl_schedule_lr(c, pos, 1000) - torch_cosine(0.003, 1e-4, pos, 1000)) <
                    1e-15);
    assert_true(daecl_schedule_lr(c, 1000, 1000) == 1e-4);
    daecl_config_destroy(c);
    c = load("{name: sgd, lr: 0.25}");
    for (uint64_t pos = 0; pos < 10; pos++)
        assert_true(daecl_schedule_lr(c, pos, 4) == 0.25);
    daecl_config_destroy(c);
}

static void train(const char *dir, const char *run, const char *const *ov, size_t n)
{
    daecl_err err = {0};
    if (test_train_run(dir, run, ov, n, &err))
        fail_msg("train %s: %s", run, err.msg);
}

/* The small experiment: 100 rows, batch 15, so 7 steps an epoch, 3 epochs,
 * Adam at lr 0.01. */
static void test_a_run_follows_its_schedule(void **state)
{
    (void)state;
    char *dir = test_small_experiment("schedule-run", "", "cpu");
    const char *flat[] = {"optimizer.schedule=cosine", "optimizer.lr_min=0.01"};
    const char *cosine[] = {"optimizer.schedule=cosine", "optimizer.lr_min=0.001"};
    train(dir, "constant", NULL, 0);
    train(dir, "flat", flat, 2);
    train(dir, "cosine", cosine, 2);
    char path[1300];
    double lr[8];
    snprintf(path, sizeof path, "%s/cosine", dir);
    assert_int_equal(test_epoch_values(path, "lr", lr, 8), 3);
    for (int e = 0; e < 3; e++) /* the rate of each epoch's last step, 7 e + 6 */
        assert_true(fabs(lr[e] - torch_cosine(0.01, 0.001, 7 * e + 6, 21)) < 1e-12);
    snprintf(path, sizeof path, "%s/constant", dir);
    assert_int_equal(test_epoch_values(path, "lr", lr, 8), 3);
    assert_true(lr[0] == 0.01 && lr[2] == 0.01);
    /* Adam at 0.01: a cosine from 0.01 to 0.01 is the constant rate, step
     * for step. */
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/constant", dir);
    snprintf(b, sizeof b, "%s/flat", dir);
    test_same_checkpoints(a, b);
    /* The decaying one took other steps. */
    snprintf(b, sizeof b, "%s/cosine", dir);
    assert_true(test_checkpoint_rel_diff(a, b) > 1e-4);
    test_remove_dir(dir);
}

/* One plain-SGD step (the fused update) moves each weight by -lr * its
 * gradient at the rate daecl_graph_set_lr gave, not optimizer.lr; without a
 * rate, a cosine schedule's update is refused. */
static void test_the_graph_takes_the_rate_it_is_given(void **state)
{
    (void)state;
    daecl_config *c = load("{name: sgd, lr: 1, schedule: cosine}");
    daecl_model m;
    daecl_err err = {0};
    if (daecl_model_init(&m, c, 4, 1, &err))
        fail_msg("model: %s", err.msg);
    daecl_session *s = NULL;
    daecl_graph *g = NULL;
    if (daecl_session_create(c, NULL, &s, &err) ||
        daecl_graph_create(s, &m, 2, 0, c->optimizer.kind, 0, &g, &err))
        fail_msg("session: %s", err.msg);
    float x[8] = {0.1f, 0.9f, 0.3f, 0.6f, 0.8f, 0.2f, 0.5f, 0.4f};
    float p0[64], p1[64], grad[64];
    assert_true(m.n_params <= 64);
    test_fill_uniform(p0, m.n_params, 11, -0.5f, 0.5f);
    daecl_buf *xb = NULL, *lb = NULL;
    assert_int_equal(daecl_session_alloc(s, 8, "x", &xb, &err), 0);
    assert_int_equal(daecl_session_alloc(s, 1, "loss", &lb, &err), 0);
    assert_int_equal(s->be->write(s->ctx, xb, 0, x, sizeof x, &err), 0);
    daecl_slice xs = daecl_at(xb, 0);
    /* the gradient at p0, by the unfused backward pass */
    assert_int_equal(daecl_graph_set_params(g, p0, &err), 0);
    assert_int_equal(daecl_graph_forward(g, xs, 2, UINT32_MAX, &err), 0);
    assert_int_equal(daecl_graph_loss(g, xs, 2, daecl_at(lb, 0), 2, &err), 0);
    assert_int_equal(daecl_graph_backward(g, xs, 2, &err), 0);
    assert_int_equal(s->be->read(s->ctx, g->grads, 0, grad, m.n_params * sizeof(float), &err), 0);
    /* no rate set: refused */
    assert_int_equal(daecl_graph_backward_update(g, xs, 2, c, 1, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "learning rate was set"));
    assert_int_equal(daecl_graph_set_params(g, p0, &err), 0);
    assert_int_equal(daecl_graph_forward(g, xs, 2, UINT32_MAX, &err), 0);
    assert_int_equal(daecl_graph_loss(g, xs, 2, daecl_at(lb, 0), 2, &err), 0);
    daecl_graph_set_lr(g, 0.125);
    assert_int_equal(daecl_graph_backward_update(g, xs, 2, c, 1, &err), 0);
    assert_int_equal(daecl_graph_get_params(g, p1, &err), 0);
    for (size_t i = 0; i < m.n_params; i++)
        assert_true(fabs((double)p1[i] - ((double)p0[i] - 0.125 * grad[i])) < 1e-6);
    daecl_session_free(s, xb);
    daecl_session_free(s, lb);
    daecl_graph_destroy(g);
    daecl_session_destroy(s);
    daecl_config_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cosine_rates_are_torchs),
        cmocka_unit_test(test_a_run_follows_its_schedule),
        cmocka_unit_test(test_the_graph_takes_the_rate_it_is_given),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
