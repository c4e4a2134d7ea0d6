/* daecl tests — strict UTF-8 (core/utf8.c), the one decoder behind plugin
 * strings, safetensors headers and YAML written back: code points of every
 * length at their edges, and each form the standard forbids refused. */
#include <stdio.h>
#include <string.h>

#include "core/utf8.h"
#include "tests/support.h"

static void test_valid_sequences_decode_to_their_code_points(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        long cp;
    } ok[] = {
        {"A", 0x41},          {"\x7F", 0x7F},          {"\xC2\x80", 0x80},
        {"\xC3\xA9", 0xE9},   {"\xDF\xBF", 0x7FF},     {"\xE0\xA0\x80", 0x800},
        {"\xED\x9F\xBF", 0xD7FF}, {"\xEE\x80\x80", 0xE000}, {"\xEF\xBF\xBF", 0xFFFF},
        {"\xF0\x90\x80\x80", 0x10000}, {"\xF4\x8F\xBF\xBF", 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i].bytes), len = 0;
        long cp = daecl_utf8_next((const unsigned char *)ok[i].bytes, n, &len);
        if (cp != ok[i].cp || len != n)
            fail_msg("case %zu: got U+%lX in %zu bytes, want U+%lX in %zu", i, cp, len, ok[i].cp,
                     n);
        assert_true(daecl_utf8_valid(ok[i].bytes));
    }
}

static void test_forbidden_forms_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x80",             /* a continuation byte first */
        "\xC0\x80",         /* overlong NUL */
        "\xC1\xBF",         /* overlong ASCII */
        "\xE0\x9F\xBF",     /* overlong 3-byte */
        "\xF0\x8F\xBF\xBF", /* overlong 4-byte */
        "\xED\xA0\x80",     /* a surrogate (U+D800) */
        "\xED\xBF\xBF",     /* a surrogate (U+DFFF) */
        "\xF4\x90\x80\x80", /* past U+10FFFF */
        "\xF5\x80\x80\x80", /* no such lead byte */
        "\xFF",             /* no such byte */
        "\xC3",             /* cut short by the end */
        "\xE2\x82",         /* cut short by the end */
        "\xC3\x41",         /* a second byte that does not continue */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = 99;
        if (daecl_utf8_next((const unsigned char *)bad[i], strlen(bad[i]), &len) != -1)
            fail_msg("case %zu was accepted", i);
        assert_int_equal(len, 99); /* untouched */
        assert_false(daecl_utf8_valid(bad[i]));
    }
    /* The byte count is a bound: a valid sequence longer than n is refused. */
    size_t len;
    assert_int_equal(daecl_utf8_next((const unsigned char *)"\xC3\xA9", 1, &len), -1);
}

static void test_valid_prefix_ends_at_the_first_bad_byte(void **state)
{
    (void)state;
    const char text[] = "caf\xC3\xA9 \xE2\x82\xAC\xF0\x9F\x98\x80";
    assert_int_equal(daecl_utf8_valid_prefix(text, sizeof text - 1), sizeof text - 1);
    const char mixed[] = "ab\xC3\xA9\xED\xA0\x80z";
    assert_int_equal(daecl_utf8_valid_prefix(mixed, sizeof mixed - 1), 4);
    /* a NUL is a code point here; strings end before it */
    assert_int_equal(daecl_utf8_valid_prefix("a\0b", 3), 3);
    assert_int_equal(daecl_utf8_valid_prefix("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sequences_decode_to_their_code_points),
        cmocka_unit_test(test_forbidden_forms_are_refused),
        cmocka_unit_test(test_valid_prefix_ends_at_the_first_bad_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
