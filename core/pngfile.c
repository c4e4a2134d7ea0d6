/* daecl — the libpng writer (to memory, then an atomic file write) and the
 * normalising reader. libpng reports errors by longjmp: each setjmp sits in a
 * small function whose locals are not changed after it, and everything it
 * allocates is reached through a caller-owned struct, so nothing leaks. */
#include "core/pngfile.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"

/* Largest decoded image the reader allocates: far above any picture of ours,
 * low enough that a lying header cannot exhaust memory. */
#define MAX_DECODED_BYTES ((size_t)1 << 30)

/* What libpng's callbacks fill; msg is a fixed buffer (no allocation on the
 * error path). oom tells our own allocation failures from libpng's errors. */
typedef struct pngctx {
    char msg[256];
    int oom;
    uint8_t *buf; /* writer: the encoded file; reader: the decoded pixels */
    size_t n, cap;
    png_bytep *rows; /* reader only */
} pngctx;

static void on_error(png_structp png, png_const_charp msg)
{
    pngctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

/* Warnings (an odd ancillary chunk, a known-bad sRGB profile) do not stop
 * the read and are not worth a line on the user's terminal. */
static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void sink_write(png_structp png, png_bytep data, png_size_t len)
{
    pngctx *c = png_get_io_ptr(png);
    if (len > c->cap - c->n) {
        size_t cap = c->cap ? c->cap : 4096;
        while (len > cap - c->n) {
            if (cap > SIZE_MAX / 2) {
                c->oom = 1;
                png_error(png, "out of memory");
            }
            cap *= 2;
        }
        uint8_t *buf = realloc(c->buf, cap);
        if (!buf) {
            c->oom = 1;
            png_error(png, "out of memory");
        }
        c->buf = buf;
        c->cap = cap;
    }
    memcpy(c->buf + c->n, data, len);
    c->n += len;
}

static void sink_flush(png_structp png)
{
    (void)png;
}

/* Encodes into c->buf; 0, or -1 with c->msg set. */
static int encode(png_structp png, png_infop info, pngctx *c, const uint8_t *pixels,
                  uint32_t width, uint32_t height, int channels)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_write_fn(png, c, sink_write, sink_flush);
    png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t row_bytes = (size_t)width * (size_t)channels;
    for (uint32_t y = 0; y < height; y++)
        png_write_row(png, pixels + (size_t)y * row_bytes);
    png_write_end(png, info);
    return 0;
}

int daecl_pngfile_write(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    int channels, daecl_err *err)
{
    if (!path || !pixels)
        return daecl_err_set(err, DAECL_EINVAL, "cannot write picture %s: no %s given (a bug in "
                             "the caller)", path ? path : "(no path)", path ? "pixels" : "path");
    if (channels != 1 && channels != 3)
        return daecl_err_set(err, DAECL_EINVAL, "cannot write picture %s: %d channels asked for, "
                             "but only 1 (gray) and 3 (RGB) are written", path, channels);
    if (width == 0 || height == 0 || width > DAECL_PNGFILE_MAX_SIDE || height > DAECL_PNGFILE_MAX_SIDE)
        return daecl_err_set(err, DAECL_EINVAL, "cannot write picture %s: its size %ux%u is "
                             "outside 1..%u pixels a side", path, width, height, DAECL_PNGFILE_MAX_SIDE);

    pngctx c = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return daecl_err_set(err, DAECL_ENOMEM, "cannot write picture %s: out of memory while "
                             "setting up libpng; free memory and run again", path);
    }
    int rc = encode(png, info, &c, pixels, width, height, channels);
    png_destroy_write_struct(&png, &info);
    if (rc != 0)
        rc = c.oom ? daecl_err_set(err, DAECL_ENOMEM, "cannot write picture %s: out of memory "
                                   "while encoding it; free memory and run again", path)
                   : daecl_err_set(err, DAECL_EIO, "cannot write picture %s: libpng failed to "
                                   "encode it (%s)", path, c.msg);
    else
        rc = daecl_write_file_atomic(path, c.buf, c.n, "picture", err);
    free(c.buf);
    return rc;
}

/* Decodes into c->buf (pixels) after the signature was read from f; 0, or
 * -1 with c->msg set. c->rows is freed by the caller, c->buf on failure. */
static int decode(png_structp png, png_infop info, pngctx *c, FILE *f, uint32_t *width,
                  uint32_t *height, int *channels)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_set_user_limits(png, DAECL_PNGFILE_MAX_SIDE, DAECL_PNGFILE_MAX_SIDE);
    png_read_info(png, info);

    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (depth == 16)
        png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ch = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    if ((ch != 1 && ch != 3) || png_get_bit_depth(png, info) != 8 ||
        row_bytes != (size_t)w * (size_t)ch) {
        snprintf(c->msg, sizeof c->msg, "its pixel format cannot be turned into 8-bit gray or RGB");
        return -1;
    }
    if (row_bytes * h > MAX_DECODED_BYTES) {
        snprintf(c->msg, sizeof c->msg, "it is %ux%u pixels, too large to decode", w, h);
        return -1;
    }
    c->buf = malloc(row_bytes * h);
    c->rows = malloc(sizeof *c->rows * h);
    if (!c->buf || !c->rows) {
        c->oom = 1;
        return -1;
    }
    for (uint32_t y = 0; y < h; y++)
        c->rows[y] = c->buf + (size_t)y * row_bytes;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);
    *width = w;
    *height = h;
    *channels = ch;
    return 0;
}

int daecl_pngfile_read(const char *path, uint8_t **pixels, uint32_t *width, uint32_t *height,
                   int *channels, daecl_err *err)
{
    *pixels = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return daecl_err_set(err, DAECL_EIO, "cannot read picture %s: %s; check the path", path,
                             strerror(e));
    }
    uint8_t sig[8];
    if (fread(sig, 1, sizeof sig, f) != sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        fclose(f);
        return daecl_err_set(err, DAECL_EDATA, "cannot read picture %s: it is not a PNG file (no "
                             "PNG signature at its start)", path);
    }
    pngctx c = {0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(f);
        return daecl_err_set(err, DAECL_ENOMEM, "cannot read picture %s: out of memory while "
                             "setting up libpng; free memory and run again", path);
    }
    int rc = decode(png, info, &c, f, width, height, channels);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
    free(c.rows);
    if (rc == 0) {
        *pixels = c.buf;
        return 0;
    }
    free(c.buf);
    if (c.oom)
        return daecl_err_set(err, DAECL_ENOMEM, "cannot read picture %s: out of memory while "
                             "decoding it; free memory and run again", path);
    return daecl_err_set(err, DAECL_EDATA, "cannot read picture %s: %s; the file is damaged or "
                         "not a PNG that daecl can read", path, c.msg);
}
