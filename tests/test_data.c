/* daecl tests — the data module: IDX and .npy fixtures written byte by byte
 * here (gzip'd with zlib), loaded from files and from memory, and every
 * refusal checked for its status, its key words and the path. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/compat.h"
#include "core/data.h"
#include "tests/support.h"

#define FASHION "/usr/share/datasets/fashion-mnist"

static char *dir; /* this program's fixtures */

static const char *at(const char *name)
{
    static char path[4][1024];
    static unsigned k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir, name);
    return p;
}

/* ---- fixture writers -------------------------------------------------- */

typedef struct bytes {
    uint8_t *b;
    size_t n;
} bytes;

static void put(bytes *o, const void *src, size_t n)
{
    o->b = realloc(o->b, o->n + n + 1);
    assert_non_null(o->b);
    if (n)
        memcpy(o->b + o->n, src, n);
    o->n += n;
}

static void put_be32(bytes *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(o, b, 4);
}

/* An IDX file: 00 00 type ndim, big-endian dims, then the payload as given. */
static bytes idx(uint8_t type, uint32_t ndim, const uint32_t *dims, const void *payload, size_t n)
{
    bytes o = {0};
    uint8_t m[4] = {0, 0, type, (uint8_t)ndim};
    put(&o, m, 4);
    for (uint32_t i = 0; i < ndim; i++)
        put_be32(&o, dims[i]);
    put(&o, payload, n);
    return o;
}

/* A .npy file as numpy.save writes it: preamble, the dict padded with
 * spaces and a newline to a multiple of 64 bytes, then the payload. */
static bytes npy(int major, const char *dict, const void *payload, size_t n)
{
    bytes o = {0};
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict) + 1;
    while ((pre + len) % 64)
        len++;
    uint8_t m[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)major, 0,
                     (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16), (uint8_t)(len >> 24)};
    put(&o, m, pre);
    put(&o, dict, strlen(dict));
    for (size_t i = strlen(dict); i + 1 < len; i++)
        put(&o, " ", 1);
    put(&o, "\n", 1);
    put(&o, payload, n);
    return o;
}

static void write_gz(const char *path, const bytes *o)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, o->b, (unsigned)o->n), (int)o->n);
    assert_int_equal(gzclose(f), Z_OK);
}

static void write_plain(const char *path, const bytes *o)
{
    test_write_file(path, o->b, o->n);
}

static void be_f32(float v, uint8_t *out)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(u >> (24 - 8 * i));
}

/* ---- checks ----------------------------------------------------------- */

static daecl_dataset *load_ok(const char *path, size_t limit)
{
    daecl_dataset *ds = NULL;
    daecl_err err = {0};
    int rc = daecl_dataset_load(path, limit, 0, &ds, &err);
    if (rc)
        fail_msg("loading %s failed: %s", path, err.msg);
    assert_non_null(ds);
    return ds;
}

/* The status, the path and each of up to three key phrases in the sentence. */
static void expect_msg(const daecl_err *err, int rc, int status, const char *path, const char *w1,
                       const char *w2, const char *w3)
{
    if (rc != status)
        fail_msg("expected %s, got %s: %s", daecl_status_name(status), daecl_status_name(rc), err->msg);
    const char *w[3] = {w1, w2, w3};
    if (path && !strstr(err->msg, path))
        fail_msg("message does not name %s: %s", path, err->msg);
    for (int i = 0; i < 3; i++)
        if (w[i] && !strstr(err->msg, w[i]))
            fail_msg("message lacks '%s': %s", w[i], err->msg);
}

static void refuse(const char *path, size_t limit, uint64_t max_bytes, int status, const char *w1,
                   const char *w2, const char *w3)
{
    daecl_dataset *ds = (daecl_dataset *)&ds; /* must come back NULL */
    daecl_err err = {0};
    int rc = daecl_dataset_load(path, limit, max_bytes, &ds, &err);
    assert_null(ds);
    expect_msg(&err, rc, status, path, w1, w2, w3);
}

static void refuse_labels(const char *path, int status, const char *w1, const char *w2)
{
    daecl_labels *lb = (daecl_labels *)&lb;
    daecl_err err = {0};
    int rc = daecl_labels_load(path, 0, 0, &lb, &err);
    assert_null(lb);
    expect_msg(&err, rc, status, path, w1, w2, NULL);
}

static void assert_same_floats(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], 4) != 0)
            fail_msg("value %zu: %.9g != %.9g (bits differ)", i, (double)a[i], (double)b[i]);
}

/* 4 rows of 8x32 uint8 covering all 256 values, and its reference floats. */
static bytes u8_fixture(float *ref)
{
    uint8_t px[4 * 256];
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < 256; i++)
            px[r * 256 + i] = (uint8_t)(i * 7 + r);
    for (int i = 0; i < 4 * 256; i++)
        ref[i] = (float)((double)px[i] / 255.0); /* v/255 rounds once from double: same bits */
    uint32_t dims[3] = {4, 8, 32};
    return idx(0x08, 3, dims, px, sizeof px);
}

static void check_u8(const daecl_dataset *ds, const float *ref)
{
    assert_int_equal(ds->n_rows, 4);
    assert_int_equal(ds->dim, 256);
    assert_int_equal(ds->n_shape, 2);
    assert_int_equal(ds->shape[0], 8);
    assert_int_equal(ds->shape[1], 32);
    assert_int_equal(ds->from_uint8, 1);
    assert_true(ds->min == 0.0f && ds->max == 1.0f);
    assert_same_floats(ds->x, ref, 4 * 256);
}

/* ---- good files ------------------------------------------------------- */

static void test_uint8_idx_is_scaled_exactly_and_keeps_its_shape(void **state)
{
    (void)state;
    float ref[4 * 256];
    bytes o = u8_fixture(ref);
    write_plain(at("u8.idx"), &o);
    daecl_dataset *ds = load_ok(at("u8.idx"), 0);
    check_u8(ds, ref);
    daecl_dataset_destroy(ds);

    daecl_dataset *mem = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_parse(o.b, o.n, "u8.idx", 0, 0, &mem, &err), 0);
    check_u8(mem, ref);
    daecl_dataset_destroy(mem);
    free(o.b);
}

static void test_gzipped_uint8_idx_loads_like_the_plain_file(void **state)
{
    (void)state;
    float ref[4 * 256];
    bytes o = u8_fixture(ref);
    write_gz(at("u8.idx.gz"), &o);
    daecl_dataset *ds = load_ok(at("u8.idx.gz"), 0);
    check_u8(ds, ref);
    daecl_dataset_destroy(ds);

    size_t n;
    char *gz = test_read_file(at("u8.idx.gz"), &n);
    assert_true(n < o.n); /* it really is compressed */
    daecl_dataset *mem = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_parse(gz, n, "u8.idx.gz", 0, 0, &mem, &err), 0);
    check_u8(mem, ref);
    daecl_dataset_destroy(mem);
    free(gz);
    free(o.b);
}

static void test_float32_idx_is_read_big_endian_and_kept_exactly(void **state)
{
    (void)state;
    float v[3 * 10];
    test_fill_uniform(v, 30, 11, -3.0f, 3.0f);
    uint8_t be[30 * 4];
    for (int i = 0; i < 30; i++)
        be_f32(v[i], be + 4 * i);
    uint32_t dims[2] = {3, 10};
    bytes o = idx(0x0D, 2, dims, be, sizeof be);
    write_plain(at("f32.idx"), &o);
    daecl_dataset *ds = load_ok(at("f32.idx"), 0);
    assert_int_equal(ds->n_rows, 3);
    assert_int_equal(ds->dim, 10);
    assert_int_equal(ds->n_shape, 1);
    assert_int_equal(ds->shape[0], 10);
    assert_int_equal(ds->from_uint8, 0);
    assert_same_floats(ds->x, v, 30);
    float lo = v[0], hi = v[0];
    for (int i = 1; i < 30; i++) {
        lo = fminf(lo, v[i]);
        hi = fmaxf(hi, v[i]);
    }
    assert_true(ds->min == lo && ds->max == hi);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_npy_float32_version_1_keeps_values_and_shape(void **state)
{
    (void)state;
    float v[3 * 2 * 5];
    test_fill_uniform(v, 30, 5, -1.0f, 2.0f);
    bytes o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2, 5), }", v, sizeof v);
    write_plain(at("v1.npy"), &o);
    daecl_dataset *ds = load_ok(at("v1.npy"), 0);
    assert_int_equal(ds->n_rows, 3);
    assert_int_equal(ds->dim, 10);
    assert_int_equal(ds->n_shape, 2);
    assert_int_equal(ds->shape[0], 2);
    assert_int_equal(ds->shape[1], 5);
    /* What a corruption plugin sees: rank 2, unused dimensions 1. */
    daecl_shape shape;
    daecl_dataset_shape(ds, &shape);
    assert_int_equal(shape.rank, 2);
    assert_int_equal(shape.dims[0], 2);
    assert_int_equal(shape.dims[1], 5);
    assert_int_equal(shape.dims[2], 1);
    assert_int_equal(shape.dims[3], 1);
    assert_same_floats(ds->x, v, 30);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_npy_version_2_reads_keys_in_any_order(void **state)
{
    (void)state;
    float v[4 * 6];
    test_fill_uniform(v, 24, 6, 0.0f, 1.0f);
    bytes o = npy(2, "{\"shape\": (4L, 6L), \"fortran_order\": False, \"descr\": \"<f4\"}", v, sizeof v);
    assert_int_equal(o.b[6], 2);
    write_plain(at("v2.npy"), &o);
    daecl_dataset *ds = load_ok(at("v2.npy"), 0);
    assert_int_equal(ds->n_rows, 4);
    assert_int_equal(ds->dim, 6);
    assert_same_floats(ds->x, v, 24);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_npy_big_endian_float32_is_byte_swapped(void **state)
{
    (void)state;
    float v[2 * 3];
    test_fill_uniform(v, 6, 7, -5.0f, 5.0f);
    uint8_t be[6 * 4];
    for (int i = 0; i < 6; i++)
        be_f32(v[i], be + 4 * i);
    bytes o = npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", be, sizeof be);
    write_plain(at("be.npy"), &o);
    daecl_dataset *ds = load_ok(at("be.npy"), 0);
    assert_same_floats(ds->x, v, 6);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_npy_uint8_is_scaled_like_numpy(void **state)
{
    (void)state;
    uint8_t px[2 * 3] = {0, 1, 128, 254, 255, 77};
    bytes o = npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", px, sizeof px);
    write_plain(at("u1.npy"), &o);
    daecl_dataset *ds = load_ok(at("u1.npy"), 0);
    assert_int_equal(ds->from_uint8, 1);
    for (int i = 0; i < 6; i++)
        assert_true(ds->x[i] == (float)((double)px[i] / 255.0));
    assert_true(ds->min == 0.0f && ds->max == 1.0f);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_npy_float64_is_converted_to_float32(void **state)
{
    (void)state;
    double v[4] = {0.1, -2.5, 1e-3, 3.141592653589793};
    bytes o = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", v, sizeof v);
    write_plain(at("f8.npy"), &o);
    daecl_dataset *ds = load_ok(at("f8.npy"), 0);
    assert_int_equal(ds->n_rows, 4);
    assert_int_equal(ds->dim, 1); /* 1-D data: one value per row */
    for (int i = 0; i < 4; i++)
        assert_true(ds->x[i] == (float)v[i]);
    assert_true(ds->min == -2.5f && ds->max == (float)v[3]);
    assert_int_equal(ds->from_uint8, 0);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_fortran_order_is_harmless_for_one_dimensional_arrays(void **state)
{
    (void)state;
    float v[3] = {1, 2, 3};
    bytes o = npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", v, sizeof v);
    write_plain(at("f1d.npy"), &o);
    daecl_dataset *ds = load_ok(at("f1d.npy"), 0);
    assert_same_floats(ds->x, v, 3);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_limit_loads_only_the_first_rows(void **state)
{
    (void)state;
    float ref[4 * 256];
    bytes o = u8_fixture(ref);
    write_plain(at("lim.idx"), &o);
    write_gz(at("lim.idx.gz"), &o);
    const char *paths[2] = {at("lim.idx"), at("lim.idx.gz")};
    for (int p = 0; p < 2; p++) {
        daecl_dataset *ds = load_ok(paths[p], 2);
        assert_int_equal(ds->n_rows, 2);
        assert_int_equal(ds->dim, 256);
        assert_same_floats(ds->x, ref, 2 * 256);
        daecl_dataset_destroy(ds);
        ds = load_ok(paths[p], 100); /* more than there are: all of them */
        assert_int_equal(ds->n_rows, 4);
        daecl_dataset_destroy(ds);
    }
    /* A limit reads only what it needs, but a short plain file is still refused. */
    write_plain(at("lim-short.idx"), &(bytes){o.b, o.n - 1});
    refuse(at("lim-short.idx"), 1, 0, DAECL_EDATA, "truncated", "(4, 8, 32)", NULL);
    free(o.b);
}

static void test_idx_uint8_labels_count_classes(void **state)
{
    (void)state;
    uint8_t y[6] = {3, 0, 9, 1, 9, 2};
    uint32_t dims[1] = {6};
    bytes o = idx(0x08, 1, dims, y, sizeof y);
    write_gz(at("labels.idx.gz"), &o);
    daecl_labels *lb = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_labels_load(at("labels.idx.gz"), 0, 0, &lb, &err), 0);
    assert_int_equal(lb->n, 6);
    assert_int_equal(lb->n_classes, 10);
    for (int i = 0; i < 6; i++)
        assert_int_equal(lb->y[i], y[i]);
    daecl_labels_destroy(lb);
    assert_int_equal(daecl_labels_load(at("labels.idx.gz"), 2, 0, &lb, &err), 0);
    assert_int_equal(lb->n, 2);
    assert_int_equal(lb->n_classes, 4); /* max over the loaded rows, 3, plus one */
    daecl_labels_destroy(lb);
    /* max_bytes bounds the labels as it bounds a data set: 6 labels take 24
     * bytes as int32, so 23 refuses and says how to raise it; 24 loads. */
    lb = NULL;
    assert_int_equal(daecl_labels_load(at("labels.idx.gz"), 0, 23, &lb, &err), DAECL_ENOMEM);
    assert_null(lb);
    assert_non_null(strstr(err.msg, "needs 24 bytes for its 6 labels"));
    assert_non_null(strstr(err.msg, "data.max_mb"));
    assert_int_equal(daecl_labels_load(at("labels.idx.gz"), 0, 24, &lb, &err), 0);
    assert_int_equal(lb->n, 6);
    daecl_labels_destroy(lb);
    assert_int_equal(daecl_data_max_bytes(1.0), 1048576);
    assert_int_equal(daecl_data_max_bytes(1e-9), 1); /* never 0, the default */
    free(o.b);

    int32_t big[3] = {7, 0, 1};
    uint8_t be[12];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            be[4 * i + j] = (uint8_t)((uint32_t)big[i] >> (24 - 8 * j));
    uint32_t d3[1] = {3};
    o = idx(0x0C, 1, d3, be, sizeof be);
    write_plain(at("labels32.idx"), &o);
    assert_int_equal(daecl_labels_load(at("labels32.idx"), 0, 0, &lb, &err), 0);
    assert_int_equal(lb->y[0], 7);
    assert_int_equal(lb->n_classes, 8);
    daecl_labels_destroy(lb);
    free(o.b);
}

static void test_npy_int64_labels_reach_65535(void **state)
{
    (void)state;
    int64_t y[4] = {65535, 0, 12, 4};
    bytes o = npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", y, sizeof y);
    write_plain(at("labels.npy"), &o);
    daecl_labels *lb = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_labels_load(at("labels.npy"), 0, 0, &lb, &err), 0);
    assert_int_equal(lb->n, 4);
    assert_int_equal(lb->n_classes, 65536);
    for (int i = 0; i < 4; i++)
        assert_int_equal(lb->y[i], y[i]);
    daecl_labels_destroy(lb);
    free(o.b);
}

/* ---- mapped float32 .npy ------------------------------------------------ */

/* The /proc/self/maps line of the mapping that holds p; 0 when none does. */
static int maps_line_of(const void *p, char *line, size_t n)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    uintptr_t a = (uintptr_t)p;
    int found = 0;
    while (!found && fgets(line, (int)n, f)) {
        unsigned long lo, hi;
        found = sscanf(line, "%lx-%lx", &lo, &hi) == 2 && a >= lo && a < hi;
    }
    fclose(f);
    return found;
}

/* Whether any mapping of this process comes from the file at path. */
static int path_is_mapped(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        size_t k = strlen(line), m = strlen(path);
        found = k >= m && strcmp(line + k - m, path) == 0;
    }
    fclose(f);
    return found;
}

static uint64_t digest_of(const daecl_dataset *ds)
{
    daecl_data_digest d;
    daecl_data_digest_of(ds, NULL, NULL, NULL, &d);
    assert_int_equal(d.train.rows, ds->n_rows);
    return d.train.hash;
}

/* 50 rows of 20 float32 in [-2, 3), as numpy.save writes them. */
enum { MR = 50, MD = 20 };
static bytes f32_fixture(float *v)
{
    test_fill_uniform(v, MR * MD, 21, -2.0f, 3.0f);
    return npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (50, 4, 5), }", v, MR * MD * sizeof(float));
}

static void test_float32_npy_is_mapped_read_only_with_the_values_and_digest_of_a_copy(void **state)
{
    (void)state;
    float v[MR * MD];
    bytes o = f32_fixture(v);
    write_plain(at("mapped.npy"), &o);
    daecl_dataset *ds = load_ok(at("mapped.npy"), 0);
    assert_int_equal(ds->mapped, 1);
    assert_string_equal(daecl_dataset_storage(ds), "mapped");
    assert_int_equal(daecl_dataset_private_bytes(ds), 0);
    assert_int_equal(ds->n_rows, MR);
    assert_int_equal(ds->dim, MD);
    assert_int_equal(ds->n_shape, 2);
    assert_int_equal(ds->shape[0], 4);
    assert_int_equal(ds->shape[1], 5);
    /* The data start right after the 128-byte header, inside the mapping. */
    assert_ptr_equal(ds->x, (const char *)ds->map_base + 128);
    assert_int_equal(ds->map_bytes, o.n);
    assert_same_floats(ds->x, v, MR * MD);

    /* The same bytes parsed from memory are copied: same values, range, digest. */
    daecl_dataset *copy = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_parse(o.b, o.n, "mapped.npy", 0, 0, &copy, &err), 0);
    assert_int_equal(copy->mapped, 0);
    assert_string_equal(daecl_dataset_storage(copy), "loaded");
    assert_int_equal(daecl_dataset_private_bytes(copy), MR * MD * sizeof(float));
    assert_same_floats(ds->x, copy->x, MR * MD);
    assert_true(ds->min == copy->min && ds->max == copy->max);
    assert_true(ds->min >= -2.0f && ds->max < 3.0f && ds->min < ds->max);
    assert_true(digest_of(ds) == digest_of(copy));

    /* Read-only and shared, from the file itself: "r--s" in /proc/self/maps. */
    char line[2048];
    if (access("/proc/self/maps", R_OK) == 0) {
        if (!maps_line_of(ds->x, line, sizeof line))
            fail_msg("no mapping in /proc/self/maps holds the data at %p", (const void *)ds->x);
        char perms[8] = "";
        assert_int_equal(sscanf(line, "%*s %7s", perms), 1);
        if (strcmp(perms, "r--s") != 0 || !strstr(line, "mapped.npy"))
            fail_msg("the data's mapping is not a read-only shared map of mapped.npy: %s", line);
    }
    assert_true(path_is_mapped(at("mapped.npy")));
    daecl_dataset_destroy(ds);
    assert_false(path_is_mapped(at("mapped.npy"))); /* destroy unmapped it */
    daecl_dataset_destroy(copy);
    free(o.b);
}

static void test_mapped_limit_takes_a_prefix_and_bounds_it(void **state)
{
    (void)state;
    float v[MR * MD];
    bytes o = f32_fixture(v);
    write_plain(at("prefix.npy"), &o);
    daecl_dataset *ds = load_ok(at("prefix.npy"), 3);
    assert_int_equal(ds->mapped, 1);
    assert_int_equal(ds->n_rows, 3);
    assert_int_equal(ds->map_bytes, 128 + 3 * MD * sizeof(float)); /* only the rows kept */
    assert_same_floats(ds->x, v, 3 * MD);
    float lo = v[0], hi = v[0];
    for (int i = 1; i < 3 * MD; i++) {
        lo = fminf(lo, v[i]);
        hi = fmaxf(hi, v[i]);
    }
    assert_true(ds->min == lo && ds->max == hi); /* over the prefix only */
    daecl_dataset_destroy(ds);
    /* data.max_mb bounds a mapped set as it bounds a loaded one. */
    refuse(at("prefix.npy"), 0, MR * MD * 4 - 1, DAECL_ENOMEM, "needs 4000 bytes", "limit of 3999 bytes", NULL);
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_load(at("prefix.npy"), 2, 2 * MD * 4, &ds, &err), 0);
    assert_int_equal(ds->mapped, 1);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_mapped_npy_still_refuses_truncation_and_non_finite_values(void **state)
{
    (void)state;
    float v[MR * MD];
    bytes o = f32_fixture(v);
    /* One float short: refused from the sizes before anything is mapped, even for a prefix. */
    write_plain(at("short.npy"), &(bytes){o.b, o.n - 4});
    refuse(at("short.npy"), 0, 0, DAECL_EDATA, "is truncated", "(50, 4, 5) of float32", "only 3996 bytes follow");
    refuse(at("short.npy"), 1, 0, DAECL_EDATA, "is truncated", NULL, NULL);
    /* Bytes past the data, as before. */
    bytes longer = {0};
    put(&longer, o.b, o.n);
    put(&longer, "\0\0\0\0", 4);
    write_plain(at("long.npy"), &longer);
    refuse(at("long.npy"), 0, 0, DAECL_EDATA, "has 4 bytes after the data its header declares", NULL, NULL);
    free(longer.b);
    /* An infinity in the last row: found by the scan of the mapping. */
    v[MR * MD - 3] = -INFINITY;
    free(o.b);
    o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (50, 20), }", v, sizeof v);
    write_plain(at("inf.npy"), &o);
    refuse(at("inf.npy"), 0, 0, DAECL_EDATA, "-inf at row 49, column 17", "not a finite float32", NULL);
    /* A limit that stops before it loads fine. */
    daecl_dataset *ds = load_ok(at("inf.npy"), 49);
    assert_int_equal(ds->mapped, 1);
    daecl_dataset_destroy(ds);
    free(o.b);
}

/* A .npy whose header is 2 bytes longer than numpy's 64: data at an odd
 * multiple of 2, where a float pointer would be misaligned. */
static bytes npy_misaligned(const char *dict, const void *payload, size_t n)
{
    bytes o = npy(1, dict, NULL, 0);
    size_t len = o.n - 10 + 2;
    o.b[o.n - 1] = ' ';
    put(&o, " \n", 2);
    o.b[8] = (uint8_t)len;
    o.b[9] = (uint8_t)(len >> 8);
    put(&o, payload, n);
    return o;
}

static void test_files_not_stored_as_the_array_are_loaded_not_mapped(void **state)
{
    (void)state;
    float v[2 * 3] = {1.5f, -2, 0.25f, 4, 5, -6};
    uint8_t be[6 * 4];
    for (int i = 0; i < 6; i++)
        be_f32(v[i], be + 4 * i);
    uint8_t px[6] = {0, 1, 128, 254, 255, 77};
    double d[6] = {1.5, -2, 0.25, 4, 5, -6};
    struct {
        const char *name;
        bytes o;
        int gz;
    } cases[] = {
        {"l-be.npy", npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", be, sizeof be), 0},
        {"l-u8.npy", npy(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }", px, sizeof px), 0},
        {"l-f8.npy", npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", d, sizeof d), 0},
        {"l-fortran.npy", npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", v, sizeof v), 0},
        {"l-odd.npy", npy_misaligned("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v), 0},
        {"l-f4.npy.gz", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v), 1},
        {"l-u8.idx", idx(0x08, 2, (const uint32_t[]){2, 3}, px, sizeof px), 0},
    };
    assert_int_equal(cases[4].o.n % 4, 2); /* really misaligned */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (cases[c].gz)
            write_gz(at(cases[c].name), &cases[c].o);
        else
            write_plain(at(cases[c].name), &cases[c].o);
        daecl_dataset *ds = load_ok(at(cases[c].name), 0);
        if (ds->mapped || strcmp(daecl_dataset_storage(ds), "loaded") != 0)
            fail_msg("%s was mapped; only a plain float32 .npy in host order and C order is", cases[c].name);
        assert_int_equal(daecl_dataset_private_bytes(ds), 6 * sizeof(float));
        assert_int_equal(ds->n_rows * ds->dim, 6);
        if (strstr(cases[c].name, "u8"))
            for (int i = 0; i < 6; i++)
                assert_true(ds->x[i] == (float)((double)px[i] / 255.0));
        else
            assert_same_floats(ds->x, v, 6);
        daecl_dataset_destroy(ds);
        free(cases[c].o.b);
    }
}

/* ---- refusals --------------------------------------------------------- */

static void test_unknown_formats_and_missing_files_are_refused(void **state)
{
    (void)state;
    test_write_file(at("zip.bin"), "PK\x03\x04 and more", 13);
    refuse(at("zip.bin"), 0, 0, DAECL_EDATA, "neither an IDX nor a .npy file", "first bytes 50 4b 03 04",
           "NumPy .npy");
    test_write_file(at("empty.bin"), "", 0);
    refuse(at("empty.bin"), 0, 0, DAECL_EDATA, "is empty", NULL, NULL);
    refuse(at("no-such-file.idx"), 0, 0, DAECL_ENOENT, "cannot open", NULL, NULL);
    refuse(dir, 0, 0, DAECL_EINVAL, "folder", NULL, NULL);
    /* IDX with an unknown type byte is not IDX. */
    test_write_file(at("idx-type.bin"), "\0\0\x07\x01\0\0\0\1x", 9);
    refuse(at("idx-type.bin"), 0, 0, DAECL_EDATA, "first bytes 00 00 07 01", NULL, NULL);
}

static void test_truncated_headers_are_refused(void **state)
{
    (void)state;
    test_write_file(at("short-npy.npy"), "\x93NUMPY\x01", 7);
    refuse(at("short-npy.npy"), 0, 0, DAECL_EDATA, "ends after 7 bytes", ".npy header", "truncated");
    /* An IDX header of 4 dimensions needs 20 bytes; the file has 10. */
    test_write_file(at("short-idx.idx"), "\0\0\x08\x04\0\0\0\1\0\0", 10);
    refuse(at("short-idx.idx"), 0, 0, DAECL_EDATA, "10 bytes long", "20-byte IDX header", "truncated");
    /* The same, gzip'd: found while inflating. */
    write_gz(at("short-idx.idx.gz"), &(bytes){(uint8_t *)"\0\0\x08\x04\0\0\0\1\0\0", 10});
    refuse(at("short-idx.idx.gz"), 0, 0, DAECL_EDATA, "ends after 10 bytes", "20-byte IDX header", NULL);
}

static void test_truncated_payload_is_refused_plain_and_gzip(void **state)
{
    (void)state;
    uint8_t px[3 * 4] = {0};
    uint32_t dims[2] = {3, 4};
    bytes o = idx(0x08, 2, dims, px, 10); /* header says 12 bytes, 10 follow */
    write_plain(at("cut.idx"), &o);
    refuse(at("cut.idx"), 0, 0, DAECL_EDATA, "truncated", "only 10 bytes follow", "(3, 4)");
    write_gz(at("cut.idx.gz"), &o);
    refuse(at("cut.idx.gz"), 0, 0, DAECL_EDATA, "ends early", "holds 10 bytes of data", "declares 12");
    free(o.b);
}

static void test_truncated_and_corrupt_gzip_streams_are_refused(void **state)
{
    (void)state;
    float ref[4 * 256];
    bytes o = u8_fixture(ref);
    write_gz(at("whole.gz"), &o);
    size_t n;
    char *gz = test_read_file(at("whole.gz"), &n);
    test_write_file(at("half.gz"), gz, n / 2);
    refuse(at("half.gz"), 0, 0, DAECL_EDATA, "truncated gzip file", "without its end marker", NULL);
    /* Without its 8-byte trailer the data is complete but the stream is not. */
    test_write_file(at("notrailer.gz"), gz, n - 8);
    refuse(at("notrailer.gz"), 0, 0, DAECL_EDATA, "truncated gzip file", NULL, NULL);
    /* A wrong CRC: zlib's own words. */
    gz[n - 8] ^= 0x55;
    test_write_file(at("crc.gz"), gz, n);
    refuse(at("crc.gz"), 0, 0, DAECL_EDATA, "not valid gzip data", "zlib: incorrect data check", NULL);
    gz[n - 8] ^= 0x55;
    /* First deflate byte 0xff: final block of the reserved type 3. */
    gz[10] = (char)0xff;
    test_write_file(at("block.gz"), gz, n);
    refuse(at("block.gz"), 0, 0, DAECL_EDATA, "zlib: invalid block type", NULL, NULL);
    daecl_dataset *ds = NULL;
    daecl_err err = {0};
    int rc = daecl_dataset_parse(gz, n, "block.gz", 0, 0, &ds, &err);
    expect_msg(&err, rc, DAECL_EDATA, "block.gz", "zlib: invalid block type", NULL, NULL);
    assert_null(ds);
    free(gz);
    free(o.b);
}

static void test_bytes_after_the_declared_data_are_refused(void **state)
{
    (void)state;
    uint8_t px[2 * 3 + 5] = {0};
    uint32_t dims[2] = {2, 3};
    bytes o = idx(0x08, 2, dims, px, sizeof px);
    write_plain(at("long.idx"), &o);
    refuse(at("long.idx"), 0, 0, DAECL_EDATA, "has 5 bytes after the data its header declares", "(2, 3)", NULL);
    write_gz(at("long.idx.gz"), &o);
    refuse(at("long.idx.gz"), 0, 0, DAECL_EDATA, "has 5 bytes after the data its header declares", NULL, NULL);
    free(o.b);
}

static void test_shapes_that_overflow_are_refused(void **state)
{
    (void)state;
    uint32_t dims[5] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 2};
    bytes o = idx(0x0D, 5, dims, NULL, 0);
    write_plain(at("overflow.idx"), &o);
    refuse(at("overflow.idx"), 0, 0, DAECL_EDATA, "overflows 64 bits", "4294967295", NULL);
    free(o.b);
    o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", NULL, 0);
    write_plain(at("overflow.npy"), &o);
    refuse(at("overflow.npy"), 0, 0, DAECL_EDATA, "overflows 64 bits", NULL, NULL);
    free(o.b);
    o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 8), }", NULL, 0);
    write_plain(at("huge.npy"), &o);
    refuse(at("huge.npy"), 0, 0, DAECL_EDATA, "larger than 2^63", NULL, NULL);
    free(o.b);
    /* A gzip'd header may claim anything: the size bound stops it before allocating. */
    uint32_t big[2] = {1u << 30, 1u << 10};
    o = idx(0x08, 2, big, NULL, 0);
    write_gz(at("claims.idx.gz"), &o);
    refuse(at("claims.idx.gz"), 0, 0, DAECL_ENOMEM, "needs 4398046511104 bytes", "limit of 17179869184", NULL);
    free(o.b);
}

static void test_npy_header_length_beyond_the_file_is_refused(void **state)
{
    (void)state;
    bytes o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", "\0\0\0\0", 4);
    o.b[8] = 0xff; /* header length 32767, far beyond the file */
    o.b[9] = 0x7f;
    write_plain(at("hlen.npy"), &o);
    char only[64];
    snprintf(only, sizeof only, "holds only %zu bytes after the preamble", o.n - 10);
    refuse(at("hlen.npy"), 0, 0, DAECL_EDATA, "declares a .npy header of 32767 bytes", only, NULL);
    free(o.b);
}

static void test_malformed_npy_headers_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *dict;
        int status;
        const char *words;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", DAECL_EDATA, "without a closing brace"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, ", DAECL_EDATA, "without a closing brace"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", DAECL_EDATA, "negative entry"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", DAECL_EDATA, "non-integer entry"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': ('a',), }", DAECL_EDATA, "non-integer entry"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", DAECL_EDATA, "single scalar"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }", DAECL_ENOTSUP,
         "more than 5 dimensions"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", DAECL_EDATA, "neither True nor False"},
        {"{'descr': '<f4', 'shape': (2,), }", DAECL_EDATA, "without 'fortran_order'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", DAECL_EDATA,
         "a key appears twice"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", DAECL_EDATA, "unknown key"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } junk", DAECL_EDATA, "after the closing brace"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", DAECL_ENOTSUP, "structured dtype"},
        {"['descr', '<f4']", DAECL_EDATA, "expected '{'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes o = npy(1, cases[i].dict, "\0\0\0\0\0\0\0\0", 8);
        write_plain(at("bad.npy"), &o);
        refuse(at("bad.npy"), 0, 0, cases[i].status, cases[i].words, NULL, NULL);
        daecl_dataset *ds = NULL;
        daecl_err err = {0};
        int rc = daecl_dataset_parse(o.b, o.n, "mem.npy", 0, 0, &ds, &err);
        expect_msg(&err, rc, cases[i].status, "mem.npy", cases[i].words, NULL, NULL);
        free(o.b);
    }
}

static void test_unsupported_element_types_are_refused_by_name(void **state)
{
    (void)state;
    uint8_t px[2 * 2 * 2] = {0};
    uint32_t dims[2] = {2, 2};
    bytes o = idx(0x0B, 2, dims, px, sizeof px);
    write_plain(at("i16.idx"), &o);
    refuse(at("i16.idx"), 0, 0, DAECL_ENOTSUP, "int16 (IDX type 0x0B)", "uint8, float32 or float64", NULL);
    free(o.b);
    o = npy(1, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }", px, sizeof px);
    write_plain(at("i2.npy"), &o);
    refuse(at("i2.npy"), 0, 0, DAECL_ENOTSUP, "int16 (dtype '<i2')", NULL, NULL);
    free(o.b);
    o = npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", px, 8);
    write_plain(at("c8.npy"), &o);
    refuse(at("c8.npy"), 0, 0, DAECL_ENOTSUP, "dtype '<c8'", NULL, NULL);
    free(o.b);
    o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", px, 8);
    write_plain(at("f4labels.npy"), &o);
    refuse_labels(at("f4labels.npy"), DAECL_ENOTSUP, "float32 (dtype '<f4')", "uint8, int32 or int64");
    free(o.b);
}

static void test_fortran_order_is_refused_with_the_fix(void **state)
{
    (void)state;
    float v[6] = {0};
    bytes o = npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", v, sizeof v);
    write_plain(at("fortran.npy"), &o);
    refuse(at("fortran.npy"), 0, 0, DAECL_ENOTSUP, "stored in Fortran order", "numpy.ascontiguousarray(a)",
           NULL);
    free(o.b);
}

static void test_max_bytes_names_the_bytes_needed_and_the_limit(void **state)
{
    (void)state;
    float ref[4 * 256];
    bytes o = u8_fixture(ref);
    write_plain(at("max.idx"), &o);
    /* 4 x 256 floats = 4096 bytes. */
    refuse(at("max.idx"), 0, 4095, DAECL_ENOMEM, "needs 4096 bytes", "limit of 4095 bytes", "at least 4096");
    daecl_dataset *ds = NULL;
    daecl_err err = {0};
    assert_int_equal(daecl_dataset_load(at("max.idx"), 0, 4096, &ds, &err), 0);
    daecl_dataset_destroy(ds);
    /* The bound is on what is loaded: two rows fit in 2048. */
    assert_int_equal(daecl_dataset_load(at("max.idx"), 2, 2048, &ds, &err), 0);
    daecl_dataset_destroy(ds);
    free(o.b);
}

static void test_empty_and_non_finite_data_are_refused(void **state)
{
    (void)state;
    uint32_t zero_rows[2] = {0, 4};
    bytes o = idx(0x08, 2, zero_rows, NULL, 0);
    write_plain(at("rows0.idx"), &o);
    refuse(at("rows0.idx"), 0, 0, DAECL_EDATA, "no rows", NULL, NULL);
    free(o.b);
    uint32_t zero_dim[2] = {4, 0};
    o = idx(0x08, 2, zero_dim, NULL, 0);
    write_plain(at("dim0.idx"), &o);
    refuse(at("dim0.idx"), 0, 0, DAECL_EDATA, "no values per row", NULL, NULL);
    free(o.b);
    float v[2 * 3] = {0, 1, 2, 3, NAN, 5};
    o = npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v);
    write_plain(at("nan.npy"), &o);
    refuse(at("nan.npy"), 0, 0, DAECL_EDATA, "nan at row 1, column 1", "not a finite float32", NULL);
    free(o.b);
    double d[2] = {1.0, 1e300};
    o = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", d, sizeof d);
    write_plain(at("f8big.npy"), &o);
    refuse(at("f8big.npy"), 0, 0, DAECL_EDATA, "1e+300 at row 1", NULL, NULL);
    free(o.b);
}

static void test_labels_out_of_range_or_not_1d_are_refused(void **state)
{
    (void)state;
    int32_t y[4] = {1, 2, -1, 3};
    bytes o = npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4,), }", y, sizeof y);
    write_plain(at("neg.npy"), &o);
    refuse_labels(at("neg.npy"), DAECL_EDATA, "label -1 at row 2", "outside [0, 65535]");
    free(o.b);
    int64_t big[2] = {0, 65536};
    o = npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", big, sizeof big);
    write_plain(at("big.npy"), &o);
    refuse_labels(at("big.npy"), DAECL_EDATA, "label 65536 at row 1", NULL);
    free(o.b);
    uint8_t px[4] = {0};
    uint32_t dims[2] = {2, 2};
    o = idx(0x08, 2, dims, px, sizeof px);
    write_plain(at("labels2d.idx"), &o);
    refuse_labels(at("labels2d.idx"), DAECL_EDATA, "shape (2, 2)", "one-dimensional");
    free(o.b);
}

/* ---- the real thing --------------------------------------------------- */

static void test_fashion_mnist_loads_with_its_shape_and_labels(void **state)
{
    (void)state;
    struct stat st;
    if (stat(FASHION "/train-images-idx3-ubyte.gz", &st) != 0)
        skip();
    static const struct {
        const char *images, *labels;
        size_t rows;
    } sets[] = {
        {FASHION "/train-images-idx3-ubyte.gz", FASHION "/train-labels-idx1-ubyte.gz", 60000},
        {FASHION "/t10k-images-idx3-ubyte.gz", FASHION "/t10k-labels-idx1-ubyte.gz", 10000},
    };
    for (int s = 0; s < 2; s++) {
        daecl_dataset *ds = load_ok(sets[s].images, 0);
        assert_int_equal(ds->n_rows, sets[s].rows);
        assert_int_equal(ds->dim, 784);
        assert_int_equal(ds->n_shape, 2);
        assert_int_equal(ds->shape[0], 28);
        assert_int_equal(ds->shape[1], 28);
        assert_true(ds->min == 0.0f && ds->max == 1.0f);
        assert_int_equal(ds->from_uint8, 1);
        daecl_dataset_destroy(ds);

        daecl_labels *lb = NULL;
        daecl_err err = {0};
        assert_int_equal(daecl_labels_load(sets[s].labels, 0, 0, &lb, &err), 0);
        assert_int_equal(lb->n, sets[s].rows);
        assert_int_equal(lb->n_classes, 10);
        size_t count[10] = {0};
        for (size_t i = 0; i < lb->n; i++)
            count[lb->y[i]]++;
        for (int c = 0; c < 10; c++) /* Fashion-MNIST is balanced */
            assert_int_equal(count[c], sets[s].rows / 10);
        daecl_labels_destroy(lb);
    }
}

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir("data");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint8_idx_is_scaled_exactly_and_keeps_its_shape),
        cmocka_unit_test(test_gzipped_uint8_idx_loads_like_the_plain_file),
        cmocka_unit_test(test_float32_idx_is_read_big_endian_and_kept_exactly),
        cmocka_unit_test(test_npy_float32_version_1_keeps_values_and_shape),
        cmocka_unit_test(test_npy_version_2_reads_keys_in_any_order),
        cmocka_unit_test(test_npy_big_endian_float32_is_byte_swapped),
        cmocka_unit_test(test_npy_uint8_is_scaled_like_numpy),
        cmocka_unit_test(test_npy_float64_is_converted_to_float32),
        cmocka_unit_test(test_fortran_order_is_harmless_for_one_dimensional_arrays),
        cmocka_unit_test(test_limit_loads_only_the_first_rows),
        cmocka_unit_test(test_float32_npy_is_mapped_read_only_with_the_values_and_digest_of_a_copy),
        cmocka_unit_test(test_mapped_limit_takes_a_prefix_and_bounds_it),
        cmocka_unit_test(test_mapped_npy_still_refuses_truncation_and_non_finite_values),
        cmocka_unit_test(test_files_not_stored_as_the_array_are_loaded_not_mapped),
        cmocka_unit_test(test_idx_uint8_labels_count_classes),
        cmocka_unit_test(test_npy_int64_labels_reach_65535),
        cmocka_unit_test(test_unknown_formats_and_missing_files_are_refused),
        cmocka_unit_test(test_truncated_headers_are_refused),
        cmocka_unit_test(test_truncated_payload_is_refused_plain_and_gzip),
        cmocka_unit_test(test_truncated_and_corrupt_gzip_streams_are_refused),
        cmocka_unit_test(test_bytes_after_the_declared_data_are_refused),
        cmocka_unit_test(test_shapes_that_overflow_are_refused),
        cmocka_unit_test(test_npy_header_length_beyond_the_file_is_refused),
        cmocka_unit_test(test_malformed_npy_headers_are_refused),
        cmocka_unit_test(test_unsupported_element_types_are_refused_by_name),
        cmocka_unit_test(test_fortran_order_is_refused_with_the_fix),
        cmocka_unit_test(test_max_bytes_names_the_bytes_needed_and_the_limit),
        cmocka_unit_test(test_empty_and_non_finite_data_are_refused),
        cmocka_unit_test(test_labels_out_of_range_or_not_1d_are_refused),
        cmocka_unit_test(test_fashion_mnist_loads_with_its_shape_and_labels),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
