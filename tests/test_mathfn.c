/* daecl tests - the host's exp and log1p (include/daecl/mathfn.h) against
 * libm in double precision, over their whole useful range and at the edges.
 * Element functions (likelihoods, sigmoid) rely on them being within about
 * an ulp and handling NaN and infinities as C does. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "daecl/mathfn.h"
#include "tests/support.h"

static float as_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Error of got against the exact value, in ulps of the float result. */
static double ulps(float got, double exact)
{
    float ref = (float)exact;
    if (got == ref)
        return 0;
    float next = nextafterf(fabsf(ref), INFINITY) - fabsf(ref);
    return fabs((double)got - exact) / (double)next;
}

static void test_expf_is_within_two_ulp_over_its_range(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    /* every 1021st bit pattern: all exponents and signs, a million values */
    for (uint64_t b = 0; b < 0x100000000ull; b += 1021) {
        float x = as_float((uint32_t)b);
        if (!(x > -87.0f && x < 88.0f))
            continue;
        double u = ulps(daecl_expf(x), exp((double)x));
        if (u > worst)
            worst = u, at = x;
    }
    if (worst > 2.0)
        fail_msg("daecl_expf is %.2f ulp off at x = %.9g", worst, at);
}

static void test_expf_edges(void **state)
{
    (void)state;
    assert_true(isnan(daecl_expf(NAN)));
    assert_true(daecl_expf(-INFINITY) == 0.0f);
    assert_true(isinf(daecl_expf(INFINITY)));
    assert_true(isinf(daecl_expf(89.0f)));
    assert_true(daecl_expf(0.0f) == 1.0f);
    assert_true(daecl_expf(-200.0f) == 0.0f);
    /* subnormal results come out of the final multiply */
    float s = daecl_expf(-100.0f);
    assert_true(s > 0.0f && s < FLT_MIN);
    assert_true(fabs(s - exp(-100.0)) <= 2e-45);
}

static void test_log1pf_is_within_two_ulp_over_its_range(void **state)
{
    (void)state;
    double worst = 0, at = 0;
    for (uint64_t b = 0; b < 0x100000000ull; b += 1021) {
        float x = as_float((uint32_t)b);
        if (!(x > -0.9999f && x < 1e30f))
            continue;
        double u = ulps(daecl_log1pf(x), log1p((double)x));
        if (u > worst)
            worst = u, at = x;
    }
    /* the tiny and the very negative ends, densely */
    for (float x = 1e-30f; x < 1e-3f; x *= 1.0001f) {
        double u = ulps(daecl_log1pf(x), log1p((double)x));
        double v = ulps(daecl_log1pf(-x), log1p(-(double)x));
        if (u > worst)
            worst = u, at = x;
        if (v > worst)
            worst = v, at = -x;
    }
    if (worst > 2.0)
        fail_msg("daecl_log1pf is %.2f ulp off at x = %.9g", worst, at);
}

static void test_log1pf_edges(void **state)
{
    (void)state;
    assert_true(isnan(daecl_log1pf(NAN)));
    assert_true(isnan(daecl_log1pf(-2.0f)));
    assert_true(isinf(daecl_log1pf(-1.0f)) && daecl_log1pf(-1.0f) < 0);
    assert_true(isinf(daecl_log1pf(INFINITY)));
    assert_true(daecl_log1pf(0.0f) == 0.0f);
    assert_true(daecl_log1pf(1e-10f) == 1e-10f);
    assert_true(daecl_log1pf(FLT_MAX) > 88.7f);
}

static void test_fmax_and_fmin_follow_c99_with_nan(void **state)
{
    (void)state;
    assert_true(daecl_fmaxf(NAN, 1.0f) == 1.0f && daecl_fmaxf(1.0f, NAN) == 1.0f);
    assert_true(daecl_fminf(NAN, 1.0f) == 1.0f && daecl_fminf(1.0f, NAN) == 1.0f);
    assert_true(isnan(daecl_fmaxf(NAN, NAN)));
    assert_true(daecl_fmaxf(-3.0f, 2.0f) == 2.0f && daecl_fminf(-3.0f, 2.0f) == -3.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_is_within_two_ulp_over_its_range),
        cmocka_unit_test(test_expf_edges),
        cmocka_unit_test(test_log1pf_is_within_two_ulp_over_its_range),
        cmocka_unit_test(test_log1pf_edges),
        cmocka_unit_test(test_fmax_and_fmin_follow_c99_with_nan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
