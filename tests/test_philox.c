/* Tests for include/daecl/philox.h: Philox4x32-10 against the Random123
 * known answers, the noise addressing rule, and the portable float helpers
 * (u01, log, sqrt, cos2pi, normal) against libm in double precision. The
 * noise key 2.0 (plugin.h) is pinned here. */
#include "tests/support.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daecl/elementwise.h"
#include "daecl/philox.h"

/* Max error of daecl_portable_log, in float ulps of the true value. The
 * fdlibm-style form measured 1.02 ulp at worst over all 2^24 inputs
 * daecl_u01_open0 yields; 2 leaves room without hiding a regression. */
#define LOG_MAX_ULP 2.0

/* One float ulp at the magnitude of `ref` (the spacing above |ref| rounded). */
static double ulp_of(double ref)
{
    float r = fabsf((float)ref);
    if (r < FLT_MIN)
        return (double)FLT_MIN * FLT_EPSILON;
    return (double)(nextafterf(r, INFINITY) - r);
}

/* ---- Philox4x32-10 --------------------------------------------------------- */

/* Random123 1.14, examples/kat_vectors, the three "philox4x32 10" lines:
 * counter (4 words), key (2 words), expected output (4 words). */
static const uint32_t kat[3][10] = {
    {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5,
     0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
     0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
     0x94fdcceb, 0x5001e420, 0x24126ea1},
};

static void assert_block(daecl_u4 got, const uint32_t want[4])
{
    assert_int_equal(got.x, want[0]);
    assert_int_equal(got.y, want[1]);
    assert_int_equal(got.z, want[2]);
    assert_int_equal(got.w, want[3]);
}

static void test_philox_matches_random123_known_answers(void **state)
{
    (void)state;
    for (int v = 0; v < 3; v++) {
        const uint32_t *k = kat[v];
        daecl_u4 c = daecl_u4_make(k[0], k[1], k[2], k[3]);
        assert_block(daecl_philox4x32_10(c, k[4], k[5]), k + 6);
    }
}

/* The noise key 2.0, pinned to the known answers: counter = {block i,
 * position, epoch, stream | stage << 8 | substep << 16}, key = {seed_lo,
 * seed_hi} (plugin.h, philox.h). */
static void test_noise_block_follows_documented_counter_layout(void **state)
{
    (void)state;
    for (int v = 0; v < 3; v++) {
        const uint32_t *k = kat[v];
        assert_block(daecl_philox_block(k[4], k[5], k[3], k[2], k[1], k[0]), k + 6);
        daecl_noise_key key = {
            .seed = (uint64_t)k[5] << 32 | k[4],
            .stream = k[3] & 0xffu,
            .stage = (k[3] >> 8) & 0xffu,
            .substep = k[3] >> 16,
            .epoch = k[2],
            .pos0 = k[1],
        };
        assert_int_equal(daecl_noise_word3(key.stream, key.stage, key.substep), k[3]);
        assert_block(daecl_noise_block(&key, 0, k[0]), k + 6);
        /* Row r of a call at pos0 is the example at position pos0 + r. */
        key.pos0 -= 1000;
        assert_block(daecl_noise_block(&key, 1000, k[0]), k + 6);
        /* A row-granular plugin's block i of that example is the same block. */
        daecl_shape shape = {1, {1, 1, 1, 1}};
        daecl_row row = daecl_row_make(&key, &shape, 1, 1000);
        assert_block(daecl_row_block(&row, k[0]), k + 6);
    }
}

/* Positions and blocks are 32-bit: position 2^32 - 1 is the last, and a
 * row past it wraps to position 0 (the core keeps below it: plugin.h). */
static void test_noise_block_position_is_the_second_counter_word(void **state)
{
    (void)state;
    daecl_noise_key key = {.seed = 42, .epoch = 7, .pos0 = 0xffffffffu};
    daecl_u4 got = daecl_noise_block(&key, 0, 3);
    daecl_u4 want = daecl_philox4x32_10(daecl_u4_make(3, 0xffffffffu, 7, 0), 42, 0);
    assert_memory_equal(&got, &want, sizeof got);
    daecl_u4 next = daecl_noise_block(&key, 1, 3);
    daecl_u4 wrapped = daecl_philox4x32_10(daecl_u4_make(3, 0, 7, 0), 42, 0);
    assert_memory_equal(&next, &wrapped, sizeof next);
}

static void test_blocks_of_different_key_fields_differ(void **state)
{
    (void)state;
    /* Base (seed lo, seed hi, word3, epoch, position, block) and each
     * coordinate changed alone, and stream, stage and substep apart within
     * word3. */
    daecl_u4 b[9] = {
        daecl_philox_block(1, 2, 3, 4, 5, 6),
        daecl_philox_block(9, 2, 3, 4, 5, 6),
        daecl_philox_block(1, 9, 3, 4, 5, 6),
        daecl_philox_block(1, 2, 9, 4, 5, 6),
        daecl_philox_block(1, 2, 3, 9, 5, 6),
        daecl_philox_block(1, 2, 3, 4, 9, 6),
        daecl_philox_block(1, 2, 3, 4, 5, 9),
        daecl_philox_block(1, 2, daecl_noise_word3(3, 1, 0), 4, 5, 6),
        daecl_philox_block(1, 2, daecl_noise_word3(3, 0, 1), 4, 5, 6),
    };
    for (int i = 0; i < 9; i++)
        for (int j = i + 1; j < 9; j++) {
            /* Every word differs: a shared word would hint at a weak mix. */
            assert_int_not_equal(b[i].x, b[j].x);
            assert_int_not_equal(b[i].y, b[j].y);
            assert_int_not_equal(b[i].z, b[j].z);
            assert_int_not_equal(b[i].w, b[j].w);
        }
}

/* ---- Uniforms ------------------------------------------------------------- */

static void test_u01_is_exact_and_in_zero_one(void **state)
{
    (void)state;
    assert_true(daecl_u01(0) == 0.0f);
    assert_true(daecl_u01(0xffffffffu) == 1.0f - 0x1p-24f);
    assert_true(daecl_u01(0xffffffffu) < 1.0f);
    assert_true(daecl_u01_open0(0) == 0x1p-24f);
    assert_true(daecl_u01_open0(0xffffffffu) == 1.0f);
    /* Exactly (u >> 8) * 2^-24 for every input: 24 bits fit a float. */
    for (uint64_t u = 0; u <= 0xffffffffu; u += 0x10001u) {
        uint32_t w = (uint32_t)u;
        assert_true((double)daecl_u01(w) == (double)(w >> 8) * 0x1p-24);
        assert_true((double)daecl_u01_open0(w) == (double)((w >> 8) + 1) * 0x1p-24);
    }
    /* The low 8 bits are dropped, the top 24 all count. */
    assert_true(daecl_u01(0x000000ffu) == 0.0f);
    assert_true(daecl_u01(0x00000100u) == 0x1p-24f);
    assert_true(daecl_u01(0x80000000u) == 0.5f);
}

/* ---- Portable math -------------------------------------------------------- */

static void check_log(float u, double *worst)
{
    double ref = log((double)u);
    float got = daecl_portable_log(u);
    double err = fabs((double)got - ref) / ulp_of(ref);
    if (!(err <= LOG_MAX_ULP))
        fail_msg("daecl_portable_log(%.9g) = %.9g, log = %.17g: %.2f ulp", (double)u,
                 (double)got, ref, err);
    if (err > *worst)
        *worst = err;
}

static void test_portable_log_is_within_bound_of_libm(void **state)
{
    (void)state;
    double worst = 0.0;
    /* The inputs daecl_normal feeds it, k * 2^-24 for k in [1, 2^24]: every
     * 16th, with a rotating offset so every residue is visited. */
    for (uint32_t j = 0; j < (1u << 20); j++) {
        uint32_t k = 1u + 16u * j + (j % 16u);
        check_log((float)k * 0x1p-24f, &worst);
    }
    check_log(1.0f, &worst);
    check_log(0x1p-24f, &worst);
    assert_true(daecl_portable_log(1.0f) == 0.0f);
    /* Normal floats of (0, 1] beyond that grid, down to FLT_MIN. */
    for (uint32_t b = 0x00800000u; b <= 0x3f800000u; b += 1021u) {
        float u;
        memcpy(&u, &b, sizeof u);
        check_log(u, &worst);
    }
    print_message("daecl_portable_log: worst %.2f ulp\n", worst);
}

static void test_portable_sqrt_matches_libm(void **state)
{
    (void)state;
    assert_true(daecl_portable_sqrt(0.0f) == 0.0f);
    assert_true(daecl_portable_sqrt(-1.0f) == 0.0f);
    /* What daecl_normal takes the root of: -2 log u in [0, 33.3]. */
    for (uint32_t i = 1; i <= 1000000u; i++) {
        float x = (float)i * 3.4e-5f;
        double ref = sqrt((double)x);
        double got = daecl_portable_sqrt(x);
        if (!(fabs(got - ref) <= 1e-6 * ref))
            fail_msg("daecl_portable_sqrt(%.9g) = %.9g, sqrt = %.9g", (double)x, got, ref);
    }
    /* Normal floats of every magnitude. */
    for (uint32_t b = 0x00800000u; b < 0x7f800000u; b += 4099u) {
        float x;
        memcpy(&x, &b, sizeof x);
        double ref = sqrt((double)x);
        double got = daecl_portable_sqrt(x);
        if (!(fabs(got - ref) <= 1e-6 * ref))
            fail_msg("daecl_portable_sqrt(%.9g) = %.9g, sqrt = %.9g", (double)x, got, ref);
    }
}

static void test_portable_cos2pi_matches_libm(void **state)
{
    (void)state;
    /* Every 16th of the 2^24 angles it can be given, rotating the offset,
     * plus the quadrant edges. */
    for (uint32_t j = 0; j < (1u << 20); j++) {
        uint32_t k = 16u * j + (j % 16u);
        uint32_t v = k << 8 | (j & 0xffu); /* the low byte must not matter */
        double ref = cos(2.0 * M_PI * (double)k * 0x1p-24);
        double got = daecl_portable_cos2pi(v);
        if (!(fabs(got - ref) <= 1e-6))
            fail_msg("daecl_portable_cos2pi(0x%08x) = %.9g, cos = %.9g", v, got, ref);
    }
    const uint32_t edges[] = {0x00000000u, 0x40000000u, 0x80000000u, 0xc0000000u, 0xffffffffu};
    const double want[] = {1.0, 0.0, -1.0, 0.0, 1.0};
    for (int i = 0; i < 5; i++)
        assert_true(fabs((double)daecl_portable_cos2pi(edges[i]) - want[i]) <= 1e-6);
}

/* ---- Normal deviates -------------------------------------------------------- */

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_normal_has_mean_zero_variance_one_and_normal_cdf(void **state)
{
    (void)state;
    const size_t n = 1000000;
    float *z = malloc(n * sizeof *z);
    assert_non_null(z);
    daecl_noise_key key = {.seed = 0x0123456789abcdefull, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                           .epoch = 17};
    double sum = 0.0, sum2 = 0.0;
    for (size_t i = 0; i < n; i++) {
        daecl_u4 r = daecl_noise_block(&key, i / 1000, (uint32_t)(i % 1000));
        z[i] = daecl_normal(r.x, r.y);
        assert_true(isfinite(z[i]));
        sum += z[i];
        sum2 += (double)z[i] * z[i];
    }
    double mean = sum / (double)n;
    double var = sum2 / (double)n - mean * mean;
    /* 5 sigma: sd(mean) = 1/sqrt(n), sd(var) = sqrt(2/n) for a normal. */
    assert_true(fabs(mean) <= 5.0 / sqrt((double)n));
    assert_true(fabs(var - 1.0) <= 5.0 * sqrt(2.0 / (double)n));

    /* Kolmogorov-Smirnov: P(sqrt(n) D > 2.69) is about 1e-6. */
    qsort(z, n, sizeof *z, cmp_float);
    double d = 0.0;
    for (size_t i = 0; i < n; i++) {
        double cdf = 0.5 * erfc(-(double)z[i] / M_SQRT2);
        double lo = cdf - (double)i / (double)n, hi = (double)(i + 1) / (double)n - cdf;
        d = fmax(d, fmax(lo, hi));
    }
    free(z);
    if (!(d <= 2.69 / sqrt((double)n)))
        fail_msg("Kolmogorov-Smirnov distance to N(0,1) is %g over %zu draws", d, n);
}

static void test_normal_follows_box_muller_at_extreme_words(void **state)
{
    (void)state;
    /* Box-Muller: u = 1 (word a all ones) gives radius 0 whatever b is. */
    assert_true(daecl_normal(0xffffffffu, 0x12345678u) == 0.0f);
    /* Smallest u: radius sqrt(2 * 24 ln 2) = 5.768, at angle 0. */
    assert_true(fabs(daecl_normal(0x00000000u, 0x00000000u) - sqrt(48.0 * M_LN2)) <= 1e-5);
    /* Angle pi: the same radius, negative. */
    assert_true(fabs(daecl_normal(0x00000000u, 0x80000000u) + sqrt(48.0 * M_LN2)) <= 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_matches_random123_known_answers),
        cmocka_unit_test(test_noise_block_follows_documented_counter_layout),
        cmocka_unit_test(test_noise_block_position_is_the_second_counter_word),
        cmocka_unit_test(test_blocks_of_different_key_fields_differ),
        cmocka_unit_test(test_u01_is_exact_and_in_zero_one),
        cmocka_unit_test(test_portable_log_is_within_bound_of_libm),
        cmocka_unit_test(test_portable_sqrt_matches_libm),
        cmocka_unit_test(test_portable_cos2pi_matches_libm),
        cmocka_unit_test(test_normal_has_mean_zero_variance_one_and_normal_cdf),
        cmocka_unit_test(test_normal_follows_box_muller_at_extreme_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
