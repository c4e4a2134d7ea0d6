/* daecl tests — the safetensors checkpoint format (core/safetensors.c):
 * bit-exact round trips, the exact bytes of a small file, atomic writes that
 * fail cleanly, and a reader that refuses every kind of corrupt file. */
#include "tests/support.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/safetensors.h"

static void set_bits(float *x, uint32_t bits)
{
    memcpy(x, &bits, sizeof bits);
}

static void test_round_trip_is_bit_exact_with_shapes_and_metadata(void **state)
{
    (void)state;
    enum { N_W = 6 * 7, N_B = 7, N_C = 2 * 1 * 3 * 2 };
    float w[N_W], b[N_B], c[N_C], s = 0.25f;
    test_fill_uniform(w, N_W, 1, -3.0f, 3.0f);
    test_fill_uniform(b, N_B, 2, -1e-3f, 1e-3f);
    test_fill_uniform(c, N_C, 3, -1e30f, 1e30f);
    /* Values a careless writer would change: the sign of zero, infinities,
     * NaN payloads (quiet and signalling), subnormals, the extremes. */
    set_bits(&w[0], 0x80000000u); /* -0.0 */
    set_bits(&w[1], 0x7f800000u); /* +inf */
    set_bits(&w[2], 0xff800000u); /* -inf */
    set_bits(&w[3], 0x7fc12345u); /* quiet NaN with payload */
    set_bits(&w[4], 0xff800001u); /* signalling NaN, negative */
    set_bits(&w[5], 0x00000001u); /* smallest subnormal */
    set_bits(&w[6], 0x807fffffu); /* largest negative subnormal */
    set_bits(&w[7], 0x7f7fffffu); /* FLT_MAX */
    set_bits(&b[0], 0x00800000u); /* FLT_MIN */

    daecl_st_tensor t[] = {
        {.name = "encoder.0.weight", .data = w, .ndim = 2, .shape = {6, 7}},
        {.name = "encoder.0.bias", .data = b, .ndim = 1, .shape = {N_B}},
        {.name = "adam.m.4d", .data = c, .ndim = 4, .shape = {2, 1, 3, 2}},
        {.name = "lr", .data = &s, .ndim = 0},
        {.name = "empty", .data = NULL, .ndim = 2, .shape = {0, 5}},
    };
    const char *meta[] = {"step", "1200",        "rng", "{\"key\": [1, 2]}\t\\",
                          "note", "ünïcödé ✓ 😀", "",    "empty key"};
    char *dir = test_tmpdir("st-round");
    char path[1024];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, t, 5, meta, 4, &err), 0);

    daecl_safetensors *st = NULL;
    if (daecl_safetensors_read(path, &st, &err) != 0)
        fail_msg("read: %s", err.msg);
    assert_int_equal(daecl_safetensors_count(st), 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(daecl_safetensors_name_at(st, i), t[i].name);
        uint32_t ndim = 99;
        uint64_t shape[DAECL_ST_MAX_DIMS] = {9, 9, 9, 9};
        const float *got = daecl_safetensors_get(st, t[i].name, &ndim, shape);
        assert_non_null(got);
        assert_int_equal((uintptr_t)got % _Alignof(float), 0);
        assert_int_equal(ndim, t[i].ndim);
        size_t n = 1;
        for (uint32_t d = 0; d < DAECL_ST_MAX_DIMS; d++) {
            assert_int_equal(shape[d], d < ndim ? t[i].shape[d] : 0);
            if (d < ndim)
                n *= t[i].shape[d];
        }
        if (n)
            assert_memory_equal(got, t[i].data, n * sizeof(float));
    }
    assert_null(daecl_safetensors_name_at(st, 5));
    assert_null(daecl_safetensors_get(st, "decoder.0.weight", NULL, NULL));
    for (size_t i = 0; i < 4; i++) {
        const char *v = daecl_safetensors_meta(st, meta[2 * i]);
        assert_non_null(v);
        assert_string_equal(v, meta[2 * i + 1]);
    }
    assert_null(daecl_safetensors_meta(st, "missing"));
    daecl_safetensors_destroy(st);
    daecl_safetensors_destroy(NULL);
    test_remove_dir(dir);
}

static void test_written_bytes_follow_the_format(void **state)
{
    (void)state;
    const float w[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    const float a[3] = {-2.0f, 0.5f, 0.0f};
    daecl_st_tensor t[] = {
        {.name = "w", .data = w, .ndim = 2, .shape = {2, 2}},
        {.name = "a", .data = a, .ndim = 1, .shape = {3}},
    };
    const char *meta[] = {"step", "7"};
    char *dir = test_tmpdir("st-format");
    char path[1024];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, t, 2, meta, 1, &err), 0);

    size_t n = 0;
    unsigned char *bytes = (unsigned char *)test_read_file(path, &n);
    /* Hand-computed: the compact JSON below is 140 bytes; padded with spaces
     * to 144 so that 8 + 144 is a multiple of 8; then 16 + 12 data bytes. */
    const char *expect_json = "{\"__metadata__\":{\"step\":\"7\"},"
                              "\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                              "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[16,28]}}";
    assert_int_equal(strlen(expect_json), 140);
    assert_int_equal(n, 8 + 144 + 28);
    const unsigned char len_le[8] = {144, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(bytes, len_le, 8);
    for (size_t i = 8 + 140; i < 8 + 144; i++)
        assert_int_equal(bytes[i], ' ');

    /* Compare as JSON (key order inside an entry is not part of the format). */
    char header[145];
    memcpy(header, bytes + 8, 144);
    header[144] = '\0';
    cJSON *got = cJSON_Parse(header), *want = cJSON_Parse(expect_json);
    assert_non_null(got);
    assert_non_null(want);
    assert_true(cJSON_Compare(got, want, 1));
    /* Tensors in the order given ("w" before "a"), metadata first. */
    assert_string_equal(got->child->string, "__metadata__");
    assert_string_equal(got->child->next->string, "w");
    assert_string_equal(got->child->next->next->string, "a");
    cJSON_Delete(got);
    cJSON_Delete(want);

    /* Little-endian IEEE floats, back to back: 1.0f is 0x3f800000. */
    const unsigned char data[28] = {
        0, 0, 0x80, 0x3f, /* 1.0 */
        0, 0, 0x00, 0x40, /* 2.0 */
        0, 0, 0x40, 0x40, /* 3.0 */
        0, 0, 0x80, 0x40, /* 4.0 */
        0, 0, 0x00, 0xc0, /* -2.0 */
        0, 0, 0x00, 0x3f, /* 0.5 */
        0, 0, 0x00, 0x00, /* 0.0 */
    };
    assert_memory_equal(bytes + 152, data, 28);
    free(bytes);
    test_remove_dir(dir);
}

static void test_success_leaves_no_temporary_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir("st-notmp");
    char path[1024], name[256];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    float x[3] = {1, 2, 3};
    daecl_st_tensor t = {.name = "x", .data = x, .ndim = 1, .shape = {3}};
    daecl_err err = {0};
    for (int i = 0; i < 2; i++) { /* the second write replaces the first */
        x[0] = (float)i;
        assert_int_equal(daecl_safetensors_write(path, &t, 1, NULL, 0, &err), 0);
        assert_int_equal(test_count_entries(dir, name, sizeof name), 1);
        assert_string_equal(name, "model.safetensors");
    }
    daecl_safetensors *st = NULL;
    assert_int_equal(daecl_safetensors_read(path, &st, &err), 0);
    assert_true(daecl_safetensors_get(st, "x", NULL, NULL)[0] == 1.0f);
    daecl_safetensors_destroy(st);
    test_remove_dir(dir);
}

static void test_write_into_missing_folder_fails_with_a_hint(void **state)
{
    (void)state;
    char *dir = test_tmpdir("st-nodir");
    char path[1024];
    snprintf(path, sizeof path, "%s/no/such/folder/c.safetensors", dir);
    float x = 1;
    daecl_st_tensor t = {.name = "x", .data = &x, .ndim = 1, .shape = {1}};
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, &t, 1, NULL, 0, &err), DAECL_EIO);
    assert_int_equal(err.status, DAECL_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    assert_non_null(strstr(err.msg, "folder is missing"));
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    test_remove_dir(dir);
}

/* The temporary file's name is taken by a folder, so the write fails after
 * an earlier checkpoint is in place: that one must stay byte-identical. */
static void test_failed_write_leaves_earlier_checkpoint_intact(void **state)
{
    (void)state;
    char *dir = test_tmpdir("st-intact");
    char path[1024], tmp[1100];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    float old[2] = {5, 6}, new[2] = {7, 8};
    daecl_st_tensor t = {.name = "x", .data = old, .ndim = 1, .shape = {2}};
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, &t, 1, NULL, 0, &err), 0);
    size_t n_before = 0, n_after = 0;
    char *before = test_read_file(path, &n_before);

    snprintf(tmp, sizeof tmp, "%s/.c.safetensors.tmp.%ld", dir, (long)getpid());
    assert_int_equal(mkdir(tmp, 0700), 0);
    t.data = new;
    assert_int_equal(daecl_safetensors_write(path, &t, 1, NULL, 0, &err), DAECL_EIO);
    assert_non_null(strstr(err.msg, "cannot write checkpoint"));
    assert_non_null(strstr(err.msg, "previous checkpoint is intact"));
    char *after = test_read_file(path, &n_after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, n_before);
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(test_count_entries(dir, NULL, 0), 1);
    free(before);
    free(after);
    test_remove_dir(dir);
}

/* Out of space, simulated: a child whose file size limit is 4 KiB writes a
 * 64 KiB checkpoint; write() then fails with EFBIG (SIGXFSZ ignored). */
static void test_write_out_of_space_removes_temporary_and_keeps_previous(void **state)
{
    (void)state;
    char *dir = test_tmpdir("st-nospace");
    char path[1024];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    enum { N_BIG = 16384 };
    static float big[N_BIG];
    test_fill_uniform(big, N_BIG, 7, -1, 1);
    float small[3] = {1, 2, 3};
    daecl_st_tensor t = {.name = "x", .data = small, .ndim = 1, .shape = {3}};
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, &t, 1, NULL, 0, &err), 0);
    size_t n_before = 0, n_after = 0;
    char *before = test_read_file(path, &n_before);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {4096, 4096};
        if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
            _exit(10);
        daecl_st_tensor tb = {.name = "x", .data = big, .ndim = 2, .shape = {128, 128}};
        daecl_err e = {0};
        int rc = daecl_safetensors_write(path, &tb, 1, NULL, 0, &e);
        fprintf(stderr, "child: %s\n", e.msg);
        if (rc != DAECL_EIO || e.status != DAECL_EIO)
            _exit(11);
        if (!strstr(e.msg, "cannot write checkpoint") || !strstr(e.msg, path) ||
            !strstr(e.msg, strerror(EFBIG)) || !strstr(e.msg, "free disk space") ||
            !strstr(e.msg, "(the previous checkpoint is intact)"))
            _exit(12);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char name[256];
    assert_int_equal(test_count_entries(dir, name, sizeof name), 1); /* no temporary left */
    assert_string_equal(name, "c.safetensors");
    char *after = test_read_file(path, &n_after);
    assert_int_equal(n_after, n_before);
    assert_memory_equal(after, before, n_before);
    free(before);
    free(after);
    test_remove_dir(dir);
}

static void test_write_refuses_bad_arguments(void **state)
{
    (void)state;
    char *dir = test_tmpdir("st-args");
    char path[1024], long_name[300];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    memset(long_name, 'n', 256);
    long_name[256] = '\0';
    float x[4] = {0};
    daecl_st_tensor five_d = {.name = "x", .data = x, .ndim = 5, .shape = {1, 1, 1, 1}};
    daecl_st_tensor named = {.name = long_name, .data = x, .ndim = 1, .shape = {4}};
    daecl_st_tensor no_data = {.name = "x", .data = NULL, .ndim = 1, .shape = {4}};
    daecl_st_tensor twice[2] = {{.name = "x", .data = x, .ndim = 1, .shape = {1}},
                                {.name = "x", .data = x, .ndim = 1, .shape = {1}}};
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, &five_d, 1, NULL, 0, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "5 dimensions"));
    assert_int_equal(daecl_safetensors_write(path, &named, 1, NULL, 0, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "255 bytes"));
    assert_int_equal(daecl_safetensors_write(path, &no_data, 1, NULL, 0, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "no data"));
    assert_int_equal(daecl_safetensors_write(path, twice, 2, NULL, 0, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    /* 255 bytes is still fine. */
    long_name[255] = '\0';
    assert_int_equal(daecl_safetensors_write(path, &named, 1, NULL, 0, &err), 0);
    test_remove_dir(dir);
}

/* 8-byte length, header, data: a file as any writer might lay it out. */
static unsigned char *make_file(uint64_t n_header_field, const char *header, const void *data,
                                size_t n_data, size_t *n)
{
    size_t n_h = strlen(header);
    *n = 8 + n_h + n_data;
    unsigned char *b = malloc(*n);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(n_header_field >> (8 * i));
    memcpy(b + 8, header, n_h);
    if (n_data)
        memcpy(b + 8 + n_h, data, n_data);
    return b;
}

static void expect_refusal(const unsigned char *bytes, size_t n, const char *key1, const char *key2)
{
    daecl_safetensors *st = (daecl_safetensors *)&st; /* must be reset to NULL */
    daecl_err err = {0};
    int rc = daecl_safetensors_parse(bytes, n, "bad.safetensors", &st, &err);
    if (rc != DAECL_ECKPT || err.status != DAECL_ECKPT)
        fail_msg("expected ECKPT mentioning '%s', got %d: %s", key1, rc, err.msg);
    assert_null(st);
    if (!strstr(err.msg, "checkpoint bad.safetensors") || !strstr(err.msg, key1) ||
        (key2 && !strstr(err.msg, key2)))
        fail_msg("message lacks '%s'/'%s': %s", key1, key2 ? key2 : "", err.msg);
}

static void expect_header_refused(const char *header, size_t n_data, const char *key1,
                                  const char *key2)
{
    unsigned char zeros[64] = {0};
    assert_true(n_data <= sizeof zeros);
    size_t n;
    unsigned char *b = make_file(strlen(header), header, zeros, n_data, &n);
    expect_refusal(b, n, key1, key2);
    free(b);
}

static void test_reader_refuses_corrupt_headers(void **state)
{
    (void)state;
    static const unsigned char five[5] = {1, 0, 0, 0, 0};
    expect_refusal(five, 5, "too short", NULL);
    expect_refusal(NULL, 0, "too short", NULL);

    size_t n;
    unsigned char *b = make_file(1000, "{}", NULL, 0, &n);
    expect_refusal(b, n, "header length 1000 is beyond", "truncated");
    free(b);
    b = make_file(1ull << 60, "{}", NULL, 0, &n);
    expect_refusal(b, n, "MiB limit", NULL);
    free(b);

    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12,
                          "tensor 'a' claims bytes 0..16", "holds only 12");
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16,
                          "tensor 'a' has shape", "span 12");
    /* 2^33 * 2^31 wraps to 0 elements, which would match the empty span. */
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[8589934592,2147483648],"
                          "\"data_offsets\":[0,0]}}",
                          0, "tensor 'a' has shape", "more than 2^64");
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"b\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[8,24]}}",
                          24, "'a' (bytes 0..16) and 'b' (bytes 8..24) overlap", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", 16,
                          "claims bytes 16..0", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],", 16, "not valid JSON", NULL);
    expect_header_refused("[1,2]", 0, "not a JSON object", NULL);
    expect_header_refused("{\"__metadata__\":{\"step\":7}}", 0, "metadata value of 'step'",
                          "not a string");
    expect_header_refused("{\"__metadata__\":[\"step\"]}", 0, "__metadata__", "not a JSON object");
    expect_header_refused("{\"__metadata__\":{},\"__metadata__\":3}", 0, "__metadata__", "twice");
    expect_header_refused("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0,
                          "key 'k' appears twice", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4,
                          "tensor 'a' has dtype 'F8_E4M3'", "does not know");
    expect_header_refused(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
        "5 dimensions", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                          "tensor 'a' has a shape entry", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                          "tensor 'a' has a shape entry", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets", NULL);
    expect_header_refused("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype", NULL);
    expect_header_refused("{\"a\":[1]}", 4, "tensor 'a' is not a JSON object", NULL);
    expect_header_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                          8, "tensor 'a' appears twice", NULL);
    expect_header_refused("{\"a\xff\":{}}", 0, "invalid UTF-8 at byte 3", NULL);
    expect_header_refused("{\"a\xed\xa0\x80\":{}}", 0, "invalid UTF-8 at byte 3",
                          NULL);                                                     /* surrogate */
    expect_header_refused("{\"a\xc0\xaf\":{}}", 0, "invalid UTF-8 at byte 3", NULL); /* overlong */

    static const char nul_header[] = "{\"a\0\":{}}";
    b = make_file(sizeof nul_header - 1, "", NULL, 0, &n);
    b = realloc(b, 8 + sizeof nul_header - 1);
    assert_non_null(b);
    memcpy(b + 8, nul_header, sizeof nul_header - 1);
    expect_refusal(b, 8 + sizeof nul_header - 1, "NUL byte at byte 3", NULL);
    free(b);
}

static void test_reader_refuses_truncated_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir("st-trunc");
    char path[1024];
    snprintf(path, sizeof path, "%s/c.safetensors", dir);
    float x[8] = {0};
    daecl_st_tensor t = {.name = "encoder.0.weight", .data = x, .ndim = 2, .shape = {2, 4}};
    daecl_err err = {0};
    assert_int_equal(daecl_safetensors_write(path, &t, 1, NULL, 0, &err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    daecl_safetensors *st = NULL;

    assert_int_equal(truncate(path, sb.st_size - 4), 0);
    assert_int_equal(daecl_safetensors_read(path, &st, &err), DAECL_ECKPT);
    assert_null(st);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(
        strstr(err.msg, "tensor 'encoder.0.weight' claims bytes 0..32 but the file holds only 28"));
    assert_non_null(strstr(err.msg, "truncated or corrupt"));

    assert_int_equal(truncate(path, 20), 0); /* into the header */
    assert_int_equal(daecl_safetensors_read(path, &st, &err), DAECL_ECKPT);
    assert_non_null(strstr(err.msg, "beyond the 12 bytes that follow it"));

    assert_int_equal(truncate(path, 3), 0);
    assert_int_equal(daecl_safetensors_read(path, &st, &err), DAECL_ECKPT);
    assert_non_null(strstr(err.msg, "too short"));

    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    assert_int_equal(daecl_safetensors_read(path, &st, &err), DAECL_ENOENT);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(daecl_safetensors_read(dir, &st, &err), DAECL_EIO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    test_remove_dir(dir);
}

/* What Python's safetensors.torch.save_file({"a": torch.tensor([1., 2., 3.])})
 * writes, built by hand from the spec: the 55-byte compact header padded with
 * one space to 56 (0x38), then three little-endian floats. */
static void test_parse_reads_what_python_writes(void **state)
{
    (void)state;
    static const unsigned char file[] =
        "\x38\x00\x00\x00\x00\x00\x00\x00"
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}} "
        "\x00\x00\x80\x3f"
        "\x00\x00\x00\x40"
        "\x00\x00\x40\x40";
    daecl_safetensors *st = NULL;
    daecl_err err = {0};
    unsigned char *copy = malloc(sizeof file - 1);
    assert_non_null(copy);
    memcpy(copy, file, sizeof file - 1);
    if (daecl_safetensors_parse(copy, sizeof file - 1, "python.safetensors", &st, &err) != 0)
        fail_msg("parse: %s", err.msg);
    memset(copy, 0xAB, sizeof file - 1); /* the tensors must not point into it */
    free(copy);
    assert_int_equal(daecl_safetensors_count(st), 1);
    uint32_t ndim = 0;
    uint64_t shape[DAECL_ST_MAX_DIMS];
    const float *a = daecl_safetensors_get(st, "a", &ndim, shape);
    assert_non_null(a);
    assert_int_equal(ndim, 1);
    assert_int_equal(shape[0], 3);
    assert_true(a[0] == 1.0f && a[1] == 2.0f && a[2] == 3.0f);
    assert_null(daecl_safetensors_meta(st, "format"));
    daecl_safetensors_destroy(st);
}

/* Another writer may skip the padding and mix dtypes: an F32 tensor then
 * starts at an odd address; get() must still hand back aligned floats, and
 * return NULL for the tensors that are not F32. */
static void test_misaligned_and_non_f32_tensors(void **state)
{
    (void)state;
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"flag\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                         "\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]},"
                         "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[9,9]}}";
    unsigned char data[9] = {1};
    const float x[2] = {-1.5f, 3.25f};
    memcpy(data + 1, x, sizeof x);
    assert_true((8 + strlen(header) + 1) % _Alignof(float) != 0); /* x is misaligned */
    size_t n;
    unsigned char *b = make_file(strlen(header), header, data, sizeof data, &n);
    daecl_safetensors *st = NULL;
    daecl_err err = {0};
    if (daecl_safetensors_parse(b, n, "mixed", &st, &err) != 0)
        fail_msg("parse: %s", err.msg);
    free(b);
    assert_int_equal(daecl_safetensors_count(st), 3);
    assert_string_equal(daecl_safetensors_name_at(st, 0), "flag");
    assert_null(daecl_safetensors_get(st, "flag", NULL, NULL));
    const float *got = daecl_safetensors_get(st, "x", NULL, NULL);
    assert_non_null(got);
    assert_int_equal((uintptr_t)got % _Alignof(float), 0);
    assert_memory_equal(got, x, sizeof x);
    uint32_t ndim = 9;
    assert_non_null(daecl_safetensors_get(st, "z", &ndim, NULL));
    assert_int_equal(ndim, 1);
    assert_string_equal(daecl_safetensors_meta(st, "format"), "pt");
    daecl_safetensors_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_is_bit_exact_with_shapes_and_metadata),
        cmocka_unit_test(test_written_bytes_follow_the_format),
        cmocka_unit_test(test_success_leaves_no_temporary_file),
        cmocka_unit_test(test_write_into_missing_folder_fails_with_a_hint),
        cmocka_unit_test(test_failed_write_leaves_earlier_checkpoint_intact),
        cmocka_unit_test(test_write_out_of_space_removes_temporary_and_keeps_previous),
        cmocka_unit_test(test_write_refuses_bad_arguments),
        cmocka_unit_test(test_reader_refuses_corrupt_headers),
        cmocka_unit_test(test_reader_refuses_truncated_file),
        cmocka_unit_test(test_parse_reads_what_python_writes),
        cmocka_unit_test(test_misaligned_and_non_f32_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
