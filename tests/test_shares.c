/* daecl tests — the shares planner (core/shares.c) with injected timings:
 * splits that add up and depend only on their weights, predictions, the
 * choice of replicas worth their synchronisation (a property over many
 * random worlds from a fixed seed), and weights from configured shares. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/shares.h"
#include "tests/support.h"

enum { K_MAX = 16 };

static void split_checked(size_t n, const uint32_t *w, size_t k, size_t *first, size_t *count)
{
    daecl_shares_split(n, w, k, first, count);
    size_t sum = 0;
    uint64_t whole = 0;
    for (size_t j = 0; j < k; j++)
        whole += w[j];
    for (size_t j = 0; j < k; j++) {
        assert_int_equal(first[j], sum); /* contiguous, in order */
        if (w[j] == 0)
            assert_int_equal(count[j], 0);
        sum += count[j];
    }
    assert_int_equal(sum, whole ? n : 0); /* all weights 0: nobody takes part */
}

static void test_split_adds_up_to_n_and_follows_the_weights(void **state)
{
    (void)state;
    size_t first[K_MAX], count[K_MAX];
    const uint32_t even[] = {1, 1, 1, 1};
    split_checked(128, even, 4, first, count);
    for (size_t j = 0; j < 4; j++)
        assert_int_equal(count[j], 32);
    /* 3 : 1 */
    const uint32_t three[] = {3 * DAECL_SHARE_ONE / 4, DAECL_SHARE_ONE / 4};
    split_checked(100, three, 2, first, count);
    assert_int_equal(count[0], 75);
    assert_int_equal(count[1], 25);
    /* floor(n W_j / W): 10 rows by 1:1:1 are 3, 3, 4 */
    split_checked(10, even, 3, first, count);
    assert_int_equal(count[0], 3);
    assert_int_equal(count[1], 3);
    assert_int_equal(count[2], 4);
}

static void test_split_weight_zero_takes_nothing_and_n_below_k(void **state)
{
    (void)state;
    size_t first[K_MAX], count[K_MAX];
    const uint32_t w[] = {0, 5, 0, 5, 0};
    split_checked(7, w, 5, first, count);
    assert_int_equal(count[1] + count[3], 7);
    /* fewer rows than replicas: some get none, none gets two */
    const uint32_t ones[] = {1, 1, 1, 1, 1, 1, 1, 1};
    split_checked(3, ones, 8, first, count);
    for (size_t j = 0; j < 8; j++)
        assert_true(count[j] <= 1);
    split_checked(0, ones, 8, first, count);
    /* all weights 0: no replica takes part and every count is 0 */
    const uint32_t none[] = {0, 0};
    daecl_shares_split(9, none, 2, first, count);
    assert_int_equal(count[0] + count[1], 0);
}

static void test_split_is_exact_for_huge_n_and_weights(void **state)
{
    (void)state;
    size_t first[K_MAX], count[K_MAX];
    uint32_t w[K_MAX];
    for (size_t j = 0; j < K_MAX; j++)
        w[j] = UINT32_MAX; /* n * W overflows 64 bits */
    size_t n = SIZE_MAX - 5;
    split_checked(n, w, K_MAX, first, count);
    for (size_t j = 1; j < K_MAX; j++) {
        size_t d = count[j] > count[0] ? count[j] - count[0] : count[0] - count[j];
        assert_true(d <= 1);
    }
}

static void test_split_is_deterministic_and_depends_only_on_the_weights(void **state)
{
    (void)state;
    srand(12345);
    for (int trial = 0; trial < 2000; trial++) {
        size_t k = 1 + (size_t)rand() % K_MAX, n = (size_t)rand() % 5000;
        uint32_t w[K_MAX], w2[K_MAX];
        for (size_t j = 0; j < k; j++)
            w[j] = rand() % 4 == 0 ? 0 : (uint32_t)rand();
        size_t f1[K_MAX], c1[K_MAX], f2[K_MAX], c2[K_MAX];
        split_checked(n, w, k, f1, c1);
        memcpy(w2, w, sizeof w2);
        daecl_shares_split(n, w2, k, f2, c2);
        assert_memory_equal(f1, f2, k * sizeof f1[0]);
        assert_memory_equal(c1, c2, k * sizeof c1[0]);
        /* doubling every weight (rand() < 2^31) changes nothing */
        for (size_t j = 0; j < k; j++)
            w2[j] = w[j] * 2;
        daecl_shares_split(n, w2, k, f2, c2);
        assert_memory_equal(c1, c2, k * sizeof c1[0]);
    }
}

static void test_predict_is_the_slowest_compute_plus_every_sync(void **state)
{
    (void)state;
    const daecl_share_in in[] = {{1000, 0.01, 0}, {500, 0.02, 0}, {100, 5, 0}};
    const uint32_t w[] = {2, 1, 0};
    /* 300 rows: 200 on the first (0.2 s), 100 on the second (0.2 s) */
    assert_true(fabs(daecl_shares_predict(in, w, 3, 300) - (0.2 + 0.03)) < 1e-12);
    const uint32_t alone[] = {1, 0, 0};
    assert_true(fabs(daecl_shares_predict(in, alone, 3, 300) - (0.3 + 0.01)) < 1e-12);
    const uint32_t none[] = {0, 0, 0};
    assert_true(isinf(daecl_shares_predict(in, none, 3, 300)));
    /* rows on an unmeasured replica take unknown time */
    const daecl_share_in blind[] = {{0, 0.01, 0}};
    assert_true(isinf(daecl_shares_predict(blind, alone, 1, 10)));
}

static void test_plan_two_equal_replicas_share_evenly(void **state)
{
    (void)state;
    const daecl_share_in in[] = {{2000, 0.001, 1}, {2000, 0.001, 0}};
    uint32_t w[2];
    double t = daecl_shares_plan(in, 2, 256, w);
    assert_int_equal(w[0], w[1]);
    assert_true(w[0] > 0);
    size_t first[2], count[2];
    daecl_shares_split(256, w, 2, first, count);
    assert_int_equal(count[0], 128);
    assert_int_equal(count[1], 128);
    assert_true(fabs(t - (128.0 / 2000 + 0.002)) < 1e-12);
}

static void test_plan_leaves_out_a_cpu_beside_a_fast_gpu(void **state)
{
    (void)state;
    /* a GPU at 10,000 rows/s and a CPU at 500, 0.02 s a sync each: 128
     * rows on the GPU alone take 0.0128 + 0.02 s; with the CPU the sync
     * alone costs 0.04 s */
    const daecl_share_in in[] = {{500, 0.02, 0}, {10000, 0.02, 1}};
    uint32_t w[2];
    double t = daecl_shares_plan(in, 2, 128, w);
    assert_int_equal(w[0], 0);
    assert_true(w[1] > 0);
    assert_true(fabs(t - (0.0128 + 0.02)) < 1e-12);
    /* the same with a big batch and a cheap sync: the CPU earns its place */
    const daecl_share_in cheap[] = {{500, 1e-4, 0}, {10000, 1e-4, 1}};
    t = daecl_shares_plan(cheap, 2, 65536, w);
    assert_true(w[0] > 0 && w[1] > 0);
    assert_true(t < 65536.0 / 10000 + 1e-4);
    /* roughly 1 : 20 */
    assert_true(fabs((double)w[1] / w[0] - 20) < 0.01);
}

static void test_plan_never_drops_required_and_drops_unmeasured(void **state)
{
    (void)state;
    /* a required replica that is slow stays; unmeasured ones (0, NaN,
     * infinite, negative) go unless required, and then get weight 1 */
    const daecl_share_in in[] = {{10, 1.0, 1}, {0, 0, 0}, {NAN, 0, 0}, {INFINITY, 0, 0},
                                 {-5, 0, 0}, {0, 0, 1}, {50000, 0.001, 0}};
    uint32_t w[7];
    daecl_shares_plan(in, 7, 1000, w);
    assert_true(w[0] > 0);
    assert_int_equal(w[1], 0);
    assert_int_equal(w[2], 0);
    assert_int_equal(w[3], 0);
    assert_int_equal(w[4], 0);
    assert_int_equal(w[5], 1);
    assert_true(w[6] > w[0]); /* the fast one is worth its sync here */
    /* nothing required, nothing measured: nothing planned */
    const daecl_share_in blind[] = {{0, 0, 0}, {NAN, 0, 0}};
    uint32_t w2[2];
    assert_true(isinf(daecl_shares_plan(blind, 2, 10, w2)));
    assert_int_equal(w2[0] + w2[1], 0);
    /* only required and unmeasured (before any measurement): all take part
     * equally */
    const daecl_share_in first[] = {{0, 0, 1}, {0, 0, 1}};
    daecl_shares_plan(first, 2, 10, w2);
    assert_int_equal(w2[0], 1);
    assert_int_equal(w2[1], 1);
}

static double uniform(double lo, double hi)
{
    return lo + (hi - lo) * ((double)rand() / RAND_MAX);
}

static void test_plan_is_never_predicted_slower_than_the_fastest_alone(void **state)
{
    (void)state;
    srand(20261205);
    for (int trial = 0; trial < 5000; trial++) {
        size_t k = 1 + (size_t)rand() % K_MAX, batch = 1 + (size_t)rand() % 4096;
        daecl_share_in in[K_MAX];
        size_t fastest = 0;
        int require_fastest = rand() % 2;
        for (size_t j = 0; j < k; j++) {
            in[j].rows_per_s = pow(10, uniform(1, 6));
            in[j].sync_s = rand() % 5 == 0 ? 0 : pow(10, uniform(-6, 0));
            in[j].required = 0;
            if (in[j].rows_per_s > in[fastest].rows_per_s)
                fastest = j;
        }
        in[fastest].required = require_fastest;
        uint32_t w[K_MAX], alone[K_MAX] = {0};
        alone[fastest] = 1;
        double t = daecl_shares_plan(in, k, batch, w);
        double t_alone = daecl_shares_predict(in, alone, k, batch);
        if (!(t <= t_alone))
            fail_msg("trial %d: planned %.17g s, the fastest alone %.17g s", trial, t, t_alone);
        /* the returned time is the plan's own prediction, and the plan
         * includes the fastest replica */
        assert_true(t == daecl_shares_predict(in, w, k, batch));
        assert_true(w[fastest] > 0);
        /* deterministic */
        uint32_t again[K_MAX];
        daecl_shares_plan(in, k, batch, again);
        assert_memory_equal(w, again, k * sizeof w[0]);
    }
}

static void test_from_config_keeps_proportions_and_fills_unset_with_the_mean(void **state)
{
    (void)state;
    uint32_t w[4];
    const double set[] = {3, 1};
    daecl_shares_from_config(set, 2, w);
    assert_true(fabs((double)w[0] / w[1] - 3) < 1e-5);
    assert_true(fabs((double)(w[0] + w[1]) - DAECL_SHARE_ONE) <= 1);
    /* unset ones (0) get the mean of the set ones: 2, 0, 4 -> 2 : 3 : 4 */
    const double some[] = {2, 0, 4};
    daecl_shares_from_config(some, 3, w);
    assert_true(fabs((double)w[1] / w[0] - 1.5) < 1e-5);
    assert_true(fabs((double)w[2] / w[0] - 2) < 1e-5);
    /* none set: all equal */
    const double none[] = {0, 0, 0, 0};
    daecl_shares_from_config(none, 4, w);
    for (size_t j = 0; j < 4; j++)
        assert_int_equal(w[j], DAECL_SHARE_ONE / 4);
    /* a tiny share beside a huge one still takes part */
    const double skew[] = {1e9, 1e-9};
    daecl_shares_from_config(skew, 2, w);
    assert_int_equal(w[1], 1);
    assert_true(w[0] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_adds_up_to_n_and_follows_the_weights),
        cmocka_unit_test(test_split_weight_zero_takes_nothing_and_n_below_k),
        cmocka_unit_test(test_split_is_exact_for_huge_n_and_weights),
        cmocka_unit_test(test_split_is_deterministic_and_depends_only_on_the_weights),
        cmocka_unit_test(test_predict_is_the_slowest_compute_plus_every_sync),
        cmocka_unit_test(test_plan_two_equal_replicas_share_evenly),
        cmocka_unit_test(test_plan_leaves_out_a_cpu_beside_a_fast_gpu),
        cmocka_unit_test(test_plan_never_drops_required_and_drops_unmeasured),
        cmocka_unit_test(test_plan_is_never_predicted_slower_than_the_fastest_alone),
        cmocka_unit_test(test_from_config_keeps_proportions_and_fills_unset_with_the_mean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
