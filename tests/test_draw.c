/* daecl tests — PNG files and the pictures of a run (core/pngfile.c,
 * core/draw.c): bit-exact PNG round trips, a reader that normalises
 * other PNG flavours and refuses broken files, clean failures, and each
 * picture decoded back to the sizes and pixel values its header promises. */
#include "tests/support.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/draw.h"
#include "core/pngfile.h"

/* A decoded picture. */
typedef struct pic {
    uint8_t *px;
    uint32_t w, h;
    int ch;
} pic;

static pic load(const char *path)
{
    pic p;
    daecl_err err = {0};
    int rc = daecl_pngfile_read(path, &p.px, &p.w, &p.h, &p.ch, &err);
    if (rc != 0)
        fail_msg("daecl_pngfile_read(%s): %s", path, err.msg);
    return p;
}

static const uint8_t *at(const pic *p, uint32_t x, uint32_t y)
{
    assert_true(x < p->w && y < p->h);
    return p->px + ((size_t)y * p->w + x) * (size_t)p->ch;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* Pixels of an RGB picture within tol of (r, g, b) on every channel. */
static size_t count_colour(const pic *p, int r, int g, int b, int tol)
{
    assert_int_equal(p->ch, 3);
    size_t n = 0;
    for (size_t i = 0; i < (size_t)p->w * p->h; i++) {
        const uint8_t *q = p->px + 3 * i;
        n += abs(q[0] - r) <= tol && abs(q[1] - g) <= tol && abs(q[2] - b) <= tol;
    }
    return n;
}

/* ---- png ----------------------------------------------------------------- */

static void round_trip(const char *dir, const char *name, uint32_t w, uint32_t h, int ch,
                       uint64_t seed)
{
    size_t n = (size_t)w * h * (size_t)ch;
    float *f = malloc(n * sizeof *f);
    uint8_t *bytes = malloc(n);
    assert_true(f && bytes);
    test_fill_uniform(f, n, seed, 0.0f, 256.0f);
    for (size_t i = 0; i < n; i++)
        bytes[i] = (uint8_t)f[i];
    bytes[0] = 0; /* both extremes present */
    bytes[n - 1] = 255;
    char *path = join(dir, name);
    daecl_err err = {0};
    assert_int_equal(daecl_pngfile_write(path, bytes, w, h, ch, &err), 0);
    pic p = load(path);
    assert_int_equal(p.w, w);
    assert_int_equal(p.h, h);
    assert_int_equal(p.ch, ch);
    assert_memory_equal(p.px, bytes, n);
    free(p.px);
    free(path);
    free(bytes);
    free(f);
}

static void test_png_round_trip_of_gray_and_rgb_is_bit_exact(void **state)
{
    (void)state;
    char *dir = test_tmpdir("png-rt");
    round_trip(dir, "gray.png", 37, 23, 1, 1);
    round_trip(dir, "rgb.png", 5, 41, 3, 2);
    round_trip(dir, "one.png", 1, 1, 1, 3);
    test_remove_dir(dir);
}

/* Writes a PNG with libpng directly, in a flavour daecl never writes. */
static void write_raw_png(const char *path, uint32_t w, uint32_t h, int color, int depth,
                          const uint8_t *rows_bytes, const png_color *palette, int n_palette)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_true(png && info);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng failed writing the test file %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, depth, color, PNG_INTERLACE_ADAM7, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette)
        png_set_PLTE(png, info, palette, n_palette);
    png_write_info(png, info);
    size_t row = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(h * sizeof *rows);
    assert_non_null(rows);
    for (uint32_t y = 0; y < h; y++)
        rows[y] = (png_bytep)rows_bytes + y * row;
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    assert_int_equal(fclose(f), 0);
}

static void test_png_read_turns_palette_alpha_and_16_bit_files_into_rgb_or_gray(void **state)
{
    (void)state;
    char *dir = test_tmpdir("png-flavours");
    daecl_err err = {0};

    /* 2x2 palette image, 2 bits per index, interlaced. */
    png_color pal[3] = {{10, 20, 30}, {200, 100, 50}, {0, 255, 7}};
    uint8_t idx[2] = {0x1 << 6 | 0x2 << 4, 0x0 << 6 | 0x1 << 4}; /* rows: (1, 2), (0, 1) */
    char *p1 = join(dir, "palette.png");
    write_raw_png(p1, 2, 2, PNG_COLOR_TYPE_PALETTE, 2, idx, pal, 3);
    pic p = load(p1);
    assert_int_equal(p.ch, 3);
    assert_int_equal(p.w, 2);
    assert_int_equal(p.h, 2);
    const uint8_t want_pal[12] = {200, 100, 50, 0, 255, 7, 10, 20, 30, 200, 100, 50};
    assert_memory_equal(p.px, want_pal, 12);
    free(p.px);

    /* 16-bit RGBA: alpha dropped (not composited), samples cut to 8 bits. */
    uint8_t rgba16[2 * 8] = {0x12, 0x34, 0xab, 0xcd, 0xff, 0xff, 0x00, 0x00,
                             0x00, 0x01, 0x7f, 0x00, 0x80, 0x80, 0x40, 0x00};
    char *p2 = join(dir, "rgba16.png");
    write_raw_png(p2, 2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 16, rgba16, NULL, 0);
    p = load(p2);
    assert_int_equal(p.ch, 3);
    /* png_set_strip_16 keeps each sample's high byte. */
    const uint8_t want_rgba[6] = {0x12, 0xab, 0xff, 0x00, 0x7f, 0x80};
    assert_memory_equal(p.px, want_rgba, 6);
    free(p.px);

    /* Gray + alpha, 8-bit: one channel. */
    uint8_t ga[4] = {77, 0, 200, 255};
    char *p3 = join(dir, "ga.png");
    write_raw_png(p3, 2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, ga, NULL, 0);
    p = load(p3);
    assert_int_equal(p.ch, 1);
    assert_int_equal(p.px[0], 77);
    assert_int_equal(p.px[1], 200);
    free(p.px);

    /* 1-bit gray expands to 0 and 255. */
    uint8_t bits[1] = {0xa0}; /* 1 0 1 0 */
    char *p4 = join(dir, "bits.png");
    write_raw_png(p4, 4, 1, PNG_COLOR_TYPE_GRAY, 1, bits, NULL, 0);
    p = load(p4);
    assert_int_equal(p.ch, 1);
    const uint8_t want_bits[4] = {255, 0, 255, 0};
    assert_memory_equal(p.px, want_bits, 4);
    free(p.px);
    (void)err;
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    test_remove_dir(dir);
}

static void test_png_read_refuses_missing_foreign_and_truncated_files(void **state)
{
    (void)state;
    char *dir = test_tmpdir("png-bad");
    daecl_err err = {0};
    uint8_t *px = (uint8_t *)dir; /* must come back NULL */
    uint32_t w, h;
    int ch;

    char *missing = join(dir, "nothing.png");
    assert_int_equal(daecl_pngfile_read(missing, &px, &w, &h, &ch, &err), DAECL_EIO);
    assert_null(px);
    assert_non_null(strstr(err.msg, missing));

    char *text = join(dir, "text.png");
    test_write_file(text, "hello, not a picture\n", 21);
    assert_int_equal(daecl_pngfile_read(text, &px, &w, &h, &ch, &err), DAECL_EDATA);
    assert_non_null(strstr(err.msg, "not a PNG"));
    assert_non_null(strstr(err.msg, text));

    /* A real PNG cut in half: libpng's error comes back as a sentence. */
    uint8_t img[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        img[i] = (uint8_t)(i * 7 + i / 64);
    char *good = join(dir, "good.png");
    assert_int_equal(daecl_pngfile_write(good, img, 64, 64, 1, &err), 0);
    size_t n;
    char *bytes = test_read_file(good, &n);
    char *cut = join(dir, "cut.png");
    test_write_file(cut, bytes, n / 2);
    px = (uint8_t *)dir;
    assert_int_equal(daecl_pngfile_read(cut, &px, &w, &h, &ch, &err), DAECL_EDATA);
    assert_null(px);
    assert_non_null(strstr(err.msg, "damaged"));

    /* A lying header: the IHDR width above the limit. */
    bytes[16] = 0x7f; /* width's high byte; the CRC is now wrong too */
    test_write_file(cut, bytes, n);
    assert_int_equal(daecl_pngfile_read(cut, &px, &w, &h, &ch, &err), DAECL_EDATA);
    assert_null(px);
    free(bytes);
    free(missing);
    free(text);
    free(good);
    free(cut);
    test_remove_dir(dir);
}

static void test_png_write_into_a_missing_folder_fails_with_a_sentence(void **state)
{
    (void)state;
    char *dir = test_tmpdir("png-missing");
    char *path = join(dir, "no/such/folder/x.png");
    uint8_t px[4] = {1, 2, 3, 4};
    daecl_err err = {0};
    assert_int_equal(daecl_pngfile_write(path, px, 2, 2, 1, &err), DAECL_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "folder is missing"));
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    free(path);
    test_remove_dir(dir);
}

static void test_png_write_that_fails_at_rename_leaves_no_temporary_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir("png-rename");
    char *path = join(dir, "taken.png");
    assert_int_equal(mkdir(path, 0700), 0); /* a folder where the file should go */
    uint8_t px[3] = {9, 8, 7};
    daecl_err err = {0};
    assert_int_equal(daecl_pngfile_write(path, px, 1, 1, 3, &err), DAECL_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(test_count_entries(dir, NULL, 0), 1); /* only the folder itself */
    assert_int_equal(rmdir(path), 0);
    free(path);
    test_remove_dir(dir);
}

static void test_png_write_refuses_bad_sizes_and_channels(void **state)
{
    (void)state;
    char *dir = test_tmpdir("png-args");
    char *path = join(dir, "x.png");
    uint8_t px[16] = {0};
    daecl_err err = {0};
    assert_int_equal(daecl_pngfile_write(path, px, 2, 2, 4, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "channels"));
    assert_int_equal(daecl_pngfile_write(path, px, 0, 2, 1, &err), DAECL_EINVAL);
    assert_int_equal(daecl_pngfile_write(path, px, 2, DAECL_PNGFILE_MAX_SIDE + 1, 1, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    free(path);
    test_remove_dir(dir);
}

/* ---- image shapes -------------------------------------------------------- */

static void test_image_shape_accepts_gray_images_and_square_vectors_only(void **state)
{
    (void)state;
    uint32_t h = 0, w = 0;
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){28, 28}, 2, &h, &w), 1);
    assert_int_equal(h, 28);
    assert_int_equal(w, 28);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){16, 9, 1}, 3, &h, &w), 1);
    assert_int_equal(h, 16);
    assert_int_equal(w, 9);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){1, 5, 7}, 3, &h, &w), 1);
    assert_int_equal(h, 5);
    assert_int_equal(w, 7);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){784}, 1, &h, &w), 1);
    assert_int_equal(h, 28);
    assert_int_equal(w, 28);
    h = w = 0;
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){1, 784}, 2, &h, &w), 1);
    assert_int_equal(h, 28);
    assert_int_equal(w, 28);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){4294836225u}, 1, &h, &w), 1);
    assert_int_equal(h, 65535);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){1, 1, 36, 1}, 4, &h, &w), 1);
    assert_int_equal(h, 6);
    assert_int_equal(w, 6);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){4}, 1, &h, &w), 1);
    assert_int_equal(h, 2);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){785}, 1, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){3}, 1, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){28, 0}, 2, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape(NULL, 0, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){1}, 1, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){32, 32, 3}, 3, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){3, 32, 32}, 3, &h, &w), 0);
    assert_int_equal(daecl_draw_image_shape((uint32_t[]){2, 2, 2, 2}, 4, &h, &w), 0);
}

/* ---- filters.png --------------------------------------------------------- */

static void test_filters_tile_shows_its_unit_normalised_to_its_own_range(void **state)
{
    (void)state;
    /* 5 units of 4x4: cols = 3, rows = 2, s = 64 / 4 = 16, tiles 64 px. */
    enum { U = 5, H = 4, W = 4, D = H * W, S = 16, G = DAECL_PICTURE_GAP };
    float w[U * D];
    test_fill_uniform(w, U * D, 7, -1.0f, 1.0f);
    for (int k = 0; k < D; k++) {
        w[0 * D + k] = 0.75f;              /* constant: mid-gray */
        w[4 * D + k] = -2.0f + 0.25f * k;  /* ramp: byte 17 k exactly */
    }
    w[2 * D + 3] = NAN;                    /* left out of min and max, drawn 128 */
    w[2 * D + 0] = -5.0f;
    w[2 * D + 1] = 5.0f;
    char *dir = test_tmpdir("filters");
    char *path = join(dir, "filters.png");
    daecl_err err = {0};
    assert_int_equal(daecl_draw_filters(path, w, U, H, W, 0, &err), 0);
    pic p = load(path);
    assert_int_equal(p.ch, 1);
    assert_int_equal(p.w, 3 * W * S + 4 * G);
    assert_int_equal(p.h, 2 * H * S + 3 * G);

    /* Unit 4 sits at row 1, column 1; every pixel of value k's block is 17 k. */
    uint32_t x0 = G + 1 * (W * S + G), y0 = G + 1 * (H * S + G);
    for (uint32_t y = 0; y < H * S; y++)
        for (uint32_t x = 0; x < W * S; x++) {
            int k = (int)(y / S) * W + (int)(x / S);
            if (*at(&p, x0 + x, y0 + y) != 17 * k)
                fail_msg("filters pixel (%u, %u) of the ramp tile is %d, expected %d", x, y,
                         *at(&p, x0 + x, y0 + y), 17 * k);
        }
    assert_int_equal(*at(&p, G + 5, G + 7), 128);                  /* unit 0, constant */
    uint32_t x2 = G + 2 * (W * S + G), y2 = G;                      /* unit 2 */
    assert_int_equal(*at(&p, x2 + 0 * S, y2), 0);                  /* its minimum, -5 */
    assert_int_equal(*at(&p, x2 + 1 * S + 3, y2 + 2), 255);        /* its maximum, 5 */
    assert_int_equal(*at(&p, x2 + 3 * S, y2), 128);                /* NaN */
    for (int k = 4; k < D; k++) {                                  /* the rest, -5..5 */
        int want = (int)floor(255.0 * (w[2 * D + k] + 5.0) / 10.0 + 0.5);
        uint32_t x = x2 + (uint32_t)(k % W) * S + S - 1, y = y2 + (uint32_t)(k / W) * S + S - 1;
        if (*at(&p, x, y) != want)
            fail_msg("unit 2 value %d shows %d, expected %d", k, *at(&p, x, y), want);
    }
    assert_int_equal(*at(&p, 0, 0), 0);                            /* gap */
    assert_int_equal(*at(&p, x2 + 5, G + H * S + G + 5), 0);       /* empty cell */
    free(p.px);

    /* max_tiles keeps the first units: 4 of 5 make a 2x2 grid. */
    assert_int_equal(daecl_draw_filters(path, w, U, H, W, 4, &err), 0);
    p = load(path);
    assert_int_equal(p.w, 2 * W * S + 3 * G);
    assert_int_equal(p.h, 2 * H * S + 3 * G);
    free(p.px);
    free(path);
    test_remove_dir(dir);
}

static void test_filters_of_a_mnist_layer_have_the_documented_size(void **state)
{
    (void)state;
    /* 100 units of 28x28: a 10x10 grid of 56-px tiles (s = 2). 7 units of
     * 100x30: cols 3, rows 3, s = 1. */
    enum { D = 28 * 28 };
    float *w = malloc(100 * D * sizeof *w);
    assert_non_null(w);
    test_fill_uniform(w, 100 * D, 11, -0.1f, 0.1f);
    char *dir = test_tmpdir("filters-size");
    char *path = join(dir, "filters.png");
    daecl_err err = {0};
    assert_int_equal(daecl_draw_filters(path, w, 100, 28, 28, 0, &err), 0);
    pic p = load(path);
    assert_int_equal(p.w, 10 * 56 + 11 * DAECL_PICTURE_GAP);
    assert_int_equal(p.h, 10 * 56 + 11 * DAECL_PICTURE_GAP);
    assert_int_equal(p.ch, 1);
    free(p.px);
    assert_int_equal(daecl_draw_filters(path, w, 7, 100, 30, 0, &err), 0);
    p = load(path);
    assert_int_equal(p.w, 3 * 30 + 4 * DAECL_PICTURE_GAP);
    assert_int_equal(p.h, 3 * 100 + 4 * DAECL_PICTURE_GAP);
    free(p.px);
    free(w);
    free(path);
    test_remove_dir(dir);
}

static void test_filters_refuse_a_picture_too_large_to_write(void **state)
{
    (void)state;
    /* 10^6 units of 1x1 (s = 64): 1000 columns of 66 px, past the limit. */
    enum { U = 1000000 };
    float *w = calloc(U, sizeof *w);
    assert_non_null(w);
    char *dir = test_tmpdir("filters-large");
    char *path = join(dir, "filters.png");
    daecl_err err = {0};
    assert_int_equal(daecl_draw_filters(path, w, U, 1, 1, 0, &err), DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "fewer tiles"));
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(daecl_draw_filters(path, w, 0, 1, 1, 0, &err), DAECL_EINVAL);
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    free(w);
    free(path);
    test_remove_dir(dir);
}

/* ---- reconstructions.png ------------------------------------------------- */

static void test_reconstructions_map_values_through_the_data_range(void **state)
{
    (void)state;
    /* 3 examples of 5x4: s = 64 / 5 = 12, tiles 48 x 60. */
    enum { N = 3, H = 5, W = 4, D = H * W, S = 12, G = DAECL_PICTURE_GAP,
           L = DAECL_PICTURE_LABEL_W };
    float clean[N * D], corrupted[N * D], recon[N * D];
    test_fill_uniform(clean, N * D, 21, -1.0f, 1.0f);
    test_fill_uniform(corrupted, N * D, 22, -1.0f, 1.0f);
    test_fill_uniform(recon, N * D, 23, -1.0f, 1.0f);
    clean[1 * D + 2 * W + 1] = 0.0f;        /* example 1, value (2, 1): mid-range */
    clean[0] = 7.0f;                        /* clamped to hi */
    corrupted[2 * D + D - 1] = -3.0f;       /* clamped to lo */
    recon[0 * D + 1] = NAN;                 /* shown as lo */
    recon[2 * D + 5] = 0.5f;                /* 191.25 -> 191 */
    char *dir = test_tmpdir("recon");
    char *path = join(dir, "reconstructions.png");
    daecl_err err = {0};
    assert_int_equal(daecl_draw_reconstructions(path, clean, corrupted, recon, N, H, W, -1.0f,
                                                   1.0f, &err), 0);
    pic p = load(path);
    assert_int_equal(p.ch, 3);
    assert_int_equal(p.w, L + N * (W * S + G) + G);
    assert_int_equal(p.h, 3 * (H * S + G) + G);

    /* The pixel at the centre of value (r, c) of example j in row `row`. */
#define PIX(row, j, r, c) at(&p, L + G + (j) * (W * S + G) + (c) * S + S / 2, \
                             G + (row) * (H * S + G) + (r) * S + S / 2)
    const uint8_t *q = PIX(0, 1, 2, 1);
    assert_int_equal(q[0], 128); /* 127.5 rounds up */
    assert_int_equal(q[1], 128);
    assert_int_equal(q[2], 128);
    assert_int_equal(PIX(0, 0, 0, 0)[0], 255);
    assert_int_equal(PIX(1, 2, H - 1, W - 1)[0], 0);
    assert_int_equal(PIX(2, 0, 0, 1)[0], 0);
    assert_int_equal(PIX(2, 2, 1, 1)[1], 191);
    /* Every value of every tile, against the formula. */
    const float *rows[3] = {clean, corrupted, recon};
    for (int row = 0; row < 3; row++)
        for (int j = 0; j < N; j++)
            for (int k = 0; k < D; k++) {
                double v = rows[row][j * D + k];
                v = isnan(v) ? -1.0 : v < -1 ? -1 : v > 1 ? 1 : v;
                int want = (int)floor(255.0 * (v + 1.0) / 2.0 + 0.5);
                if (PIX(row, j, k / W, k % W)[2] != want)
                    fail_msg("row %d example %d value %d shows %d, expected %d", row, j, k,
                             PIX(row, j, k / W, k % W)[2], want);
            }
#undef PIX
    /* The background is white; each row's label put dark pixels at the left. */
    assert_int_equal(at(&p, p.w - 1, p.h - 1)[0], 255);
    for (int row = 0; row < 3; row++) {
        int dark = 0;
        for (uint32_t y = G + row * (H * S + G); y < (uint32_t)(G + row * (H * S + G) + H * S); y++)
            for (uint32_t x = 0; x < L; x++)
                dark += at(&p, x, y)[0] < 100;
        if (dark < 10)
            fail_msg("row %d has no label text (%d dark pixels)", row, dark);
    }
    free(p.px);
    free(path);
    test_remove_dir(dir);
}

static void test_reconstructions_refuse_an_empty_range_or_no_examples(void **state)
{
    (void)state;
    float x[4] = {0};
    char *dir = test_tmpdir("recon-bad");
    char *path = join(dir, "reconstructions.png");
    daecl_err err = {0};
    assert_int_equal(daecl_draw_reconstructions(path, x, x, x, 1, 2, 2, 1.0f, 1.0f, &err),
                     DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "range"));
    assert_int_equal(daecl_draw_reconstructions(path, x, x, x, 1, 2, 2, 0.0f, NAN, &err),
                     DAECL_EINVAL);
    assert_int_equal(daecl_draw_reconstructions(path, x, x, x, 0, 2, 2, 0.0f, 1.0f, &err),
                     DAECL_EINVAL);
    /* 1000 examples of 2x2 (64-px tiles) would be 66 000 px wide. */
    assert_int_equal(daecl_draw_reconstructions(path, x, x, x, 1000, 2, 2, 0.0f, 1.0f, &err),
                     DAECL_EINVAL);
    assert_non_null(strstr(err.msg, "fewer examples"));
    assert_int_equal(test_count_entries(dir, NULL, 0), 0);
    free(path);
    test_remove_dir(dir);
}

/* Any number of labelled rows: a stack's reconstructions at each depth. */
static void test_rows_take_any_count_of_labelled_rows(void **state)
{
    (void)state;
    enum { N = 2, H = 4, W = 4, D = H * W, S = 16, R = 5, G = DAECL_PICTURE_GAP,
           L = DAECL_PICTURE_LABEL_W };
    float x[R][N * D];
    const float *rows[R];
    const char *labels[R] = {"clean", "depth 1", "depth 2", "depth 3", "depth 4"};
    for (int r = 0; r < R; r++) {
        test_fill_uniform(x[r], N * D, 30 + (uint64_t)r, 0.0f, 1.0f);
        rows[r] = x[r];
    }
    char *dir = test_tmpdir("rows");
    char *path = join(dir, "rows.png");
    daecl_err err = {0};
    assert_int_equal(daecl_draw_rows(path, rows, labels, R, N, H, W, 0.0f, 1.0f, &err), 0);
    pic p = load(path);
    assert_int_equal(p.w, L + N * (W * S + G) + G);
    assert_int_equal(p.h, R * (H * S + G) + G);
    for (int r = 0; r < R; r++) /* the last value of example 1 in each row */
        assert_int_equal(at(&p, L + G + (W * S + G) + (W - 1) * S + S / 2,
                            G + r * (H * S + G) + (H - 1) * S + S / 2)[0],
                         (int)floor(255.0 * x[r][D + D - 1] + 0.5));
    free(p.px);
    assert_int_equal(daecl_draw_rows(path, rows, labels, 0, N, H, W, 0.0f, 1.0f, &err),
                     DAECL_EINVAL);
    assert_int_equal(daecl_draw_rows(path, rows, labels, DAECL_DRAW_MAX_ROWS + 1, N, H, W, 0.0f,
                                     1.0f, &err), DAECL_EINVAL);
    free(path);
    test_remove_dir(dir);
}

/* ---- curves.png ---------------------------------------------------------- */

/* The series colours core/draw.c uses (matplotlib's first three). */
#define TRAIN_RGB 31, 119, 180
#define CLEAN_RGB 255, 127, 14
#define CORRUPT_RGB 44, 160, 44

static pic curves(const char *dir, const char *title, const double *epoch, const double *train,
                  const double *clean, const double *corrupted, size_t n)
{
    char *path = join(dir, "curves.png");
    daecl_err err = {0};
    int rc = daecl_draw_curves(path, title, epoch, train, clean, corrupted, n, &err);
    if (rc != 0)
        fail_msg("daecl_draw_curves: %s", err.msg);
    pic p = load(path);
    free(path);
    assert_int_equal(p.w, DAECL_PICTURE_CURVES_W);
    assert_int_equal(p.h, DAECL_PICTURE_CURVES_H);
    assert_int_equal(p.ch, 3);
    return p;
}

static void test_curves_draw_every_series_on_an_800x500_picture(void **state)
{
    (void)state;
    enum { N = 12 };
    double epoch[N], train[N], clean[N], corrupted[N];
    for (int i = 0; i < N; i++) {
        epoch[i] = i + 1;
        train[i] = 60.0 + 200.0 / (i + 1);
        clean[i] = 65.0 + 190.0 / (i + 1);
        corrupted[i] = 90.0 + 180.0 / (i + 1);
    }
    char *dir = test_tmpdir("curves");
    pic p = curves(dir, "fashion-mnist, masking 0.25", epoch, train, clean, corrupted, N);
    /* White background, and each series' colour on a few hundred pixels. */
    size_t white = count_colour(&p, 255, 255, 255, 0);
    assert_true(white > (size_t)p.w * p.h / 2);
    assert_true(white < (size_t)p.w * p.h);
    assert_true(count_colour(&p, TRAIN_RGB, 8) > 200);
    assert_true(count_colour(&p, CLEAN_RGB, 8) > 200);
    assert_true(count_colour(&p, CORRUPT_RGB, 8) > 200);
    /* Text and axes: black pixels. */
    assert_true(count_colour(&p, 0, 0, 0, 30) > 500);
    free(p.px);
    test_remove_dir(dir);
}

static void test_curves_without_test_arrays_draw_only_the_train_line(void **state)
{
    (void)state;
    double epoch[3] = {1, 2, 3}, train[3] = {100, 90, 85};
    char *dir = test_tmpdir("curves-train");
    pic p = curves(dir, NULL, epoch, train, NULL, NULL, 3);
    assert_true(count_colour(&p, TRAIN_RGB, 8) > 100);
    assert_int_equal(count_colour(&p, CLEAN_RGB, 40), 0);
    assert_int_equal(count_colour(&p, CORRUPT_RGB, 40), 0);
    free(p.px);
    test_remove_dir(dir);
}

static void test_curves_survive_one_epoch_nan_points_flat_and_huge_values(void **state)
{
    (void)state;
    char *dir = test_tmpdir("curves-edge");
    /* One epoch: markers only, still drawn. */
    double e1[1] = {1}, t1[1] = {80.5}, c1[1] = {81.0};
    pic p = curves(dir, "one epoch", e1, t1, c1, NULL, 1);
    assert_true(count_colour(&p, TRAIN_RGB, 8) > 20);
    assert_true(count_colour(&p, CLEAN_RGB, 8) > 20);
    free(p.px);

    /* NaN and infinite points are skipped; the rest is drawn. */
    double e[6] = {1, 2, 3, 4, 5, 6};
    double t[6] = {NAN, 50, INFINITY, 40, -INFINITY, 1e301};
    double c[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    p = curves(dir, "gaps", e, t, c, NULL, 6);
    assert_true(count_colour(&p, TRAIN_RGB, 8) > 20);
    free(p.px);

    /* All values equal; huge values; nothing at all. */
    double flat[6] = {7, 7, 7, 7, 7, 7};
    p = curves(dir, "flat", e, flat, flat, flat, 6);
    assert_true(count_colour(&p, CORRUPT_RGB, 8) > 100);
    free(p.px);
    double huge[6] = {3e12, 2.5e12, 2.2e12, 2.1e12, 2.05e12, 2.04e12};
    double tiny_diff[6] = {1e15, 1e15 + 0.125, 1e15, 1e15, 1e15 + 0.25, 1e15};
    p = curves(dir, "huge", e, huge, tiny_diff, NULL, 6);
    assert_true(count_colour(&p, TRAIN_RGB, 8) > 50);
    free(p.px);
    p = curves(dir, "nothing", NULL, NULL, NULL, NULL, 0);
    assert_int_equal(count_colour(&p, TRAIN_RGB, 40), 0);
    assert_true(count_colour(&p, 0, 0, 0, 30) > 100); /* the axes are there */
    free(p.px);
    test_remove_dir(dir);
}

static void test_drawing_text_again_after_releasing_the_caches_works(void **state)
{
    (void)state;
    double epoch[2] = {1, 2}, train[2] = {10, 9};
    char *dir = test_tmpdir("curves-release");
    pic p = curves(dir, "before", epoch, train, NULL, NULL, 2);
    free(p.px);
    daecl_draw_release_caches();
    p = curves(dir, "after", epoch, train, NULL, NULL, 2);
    assert_true(count_colour(&p, 0, 0, 0, 30) > 500); /* text and axes */
    assert_true(count_colour(&p, TRAIN_RGB, 8) > 50);
    free(p.px);
    test_remove_dir(dir);
}

/* Last: ASan's leak check runs at exit and would report the font caches. */
static int release_caches(void **state)
{
    (void)state;
    daecl_draw_release_caches();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_round_trip_of_gray_and_rgb_is_bit_exact),
        cmocka_unit_test(test_png_read_turns_palette_alpha_and_16_bit_files_into_rgb_or_gray),
        cmocka_unit_test(test_png_read_refuses_missing_foreign_and_truncated_files),
        cmocka_unit_test(test_png_write_into_a_missing_folder_fails_with_a_sentence),
        cmocka_unit_test(test_png_write_that_fails_at_rename_leaves_no_temporary_file),
        cmocka_unit_test(test_png_write_refuses_bad_sizes_and_channels),
        cmocka_unit_test(test_image_shape_accepts_gray_images_and_square_vectors_only),
        cmocka_unit_test(test_filters_tile_shows_its_unit_normalised_to_its_own_range),
        cmocka_unit_test(test_filters_of_a_mnist_layer_have_the_documented_size),
        cmocka_unit_test(test_filters_refuse_a_picture_too_large_to_write),
        cmocka_unit_test(test_reconstructions_map_values_through_the_data_range),
        cmocka_unit_test(test_reconstructions_refuse_an_empty_range_or_no_examples),
        cmocka_unit_test(test_rows_take_any_count_of_labelled_rows),
        cmocka_unit_test(test_curves_draw_every_series_on_an_800x500_picture),
        cmocka_unit_test(test_curves_without_test_arrays_draw_only_the_train_line),
        cmocka_unit_test(test_curves_survive_one_epoch_nan_points_flat_and_huge_values),
        cmocka_unit_test(test_drawing_text_again_after_releasing_the_caches_works),
    };
    return cmocka_run_group_tests(tests, NULL, release_caches);
}
