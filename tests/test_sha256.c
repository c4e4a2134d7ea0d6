/* daecl tests — SHA-256 against the FIPS 180-4 examples published by NIST
 * (csrc.nist.gov, "Cryptographic Standards and Guidelines: Examples with
 * Intermediate Values", SHA256.pdf and SHA2_Additional.pdf). */
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "tests/support.h"

static void hash_text(const void *msg, size_t n, char hex[65])
{
    daecl_sha256 s;
    unsigned char d[DAECL_SHA256_BYTES];
    daecl_sha256_init(&s);
    daecl_sha256_update(&s, msg, n);
    daecl_sha256_final(&s, d);
    daecl_sha256_hex(d, hex);
}

static void expect(const char *msg, const char *want)
{
    char hex[65];
    hash_text(msg, strlen(msg), hex);
    assert_string_equal(hex, want);
}

static void test_nist_one_block_two_blocks_and_empty_message(void **state)
{
    (void)state;
    expect("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* 448 bits: the padding does not fit the first block */
    expect("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklm"
           "nopqrlmnopqrsmnopqrstnopqrstu",
           "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_nist_million_a_fed_in_uneven_pieces(void **state)
{
    (void)state;
    char a[1000];
    memset(a, 'a', sizeof a);
    daecl_sha256 s;
    daecl_sha256_init(&s);
    size_t fed = 0;
    for (size_t piece = 1; fed < 1000000; piece = piece % 997 + 1) {
        size_t n = piece < 1000000 - fed ? piece : 1000000 - fed;
        daecl_sha256_update(&s, a, n);
        fed += n;
    }
    unsigned char d[DAECL_SHA256_BYTES];
    char hex[65];
    daecl_sha256_final(&s, d);
    daecl_sha256_hex(d, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every split of a 130-byte message into two updates gives the one-call
 * digest: the block buffer carries across calls. */
static void test_split_updates_equal_one_update(void **state)
{
    (void)state;
    unsigned char msg[130];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (unsigned char)(i * 37 + 11);
    char whole[65];
    hash_text(msg, sizeof msg, whole);
    for (size_t cut = 0; cut <= sizeof msg; cut++) {
        daecl_sha256 s;
        unsigned char d[DAECL_SHA256_BYTES];
        char hex[65];
        daecl_sha256_init(&s);
        daecl_sha256_update(&s, msg, cut);
        daecl_sha256_update(&s, msg + cut, sizeof msg - cut);
        daecl_sha256_final(&s, d);
        daecl_sha256_hex(d, hex);
        assert_string_equal(hex, whole);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nist_one_block_two_blocks_and_empty_message),
        cmocka_unit_test(test_nist_million_a_fed_in_uneven_pieces),
        cmocka_unit_test(test_split_updates_equal_one_update),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
