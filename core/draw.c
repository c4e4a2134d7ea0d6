/* daecl — filters.png, reconstructions.png and curves.png. Tiles are placed
 * byte by byte (their exact values are the point of the picture); text,
 * axes, lines and markers are drawn with cairo into an RGB24 image surface,
 * whose pixels then go through the one PNG writer (core/pngfile.c). */
#include "core/draw.h"

#include <cairo.h>
#include <fontconfig/fontconfig.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/pngfile.h"

/* ---- shared helpers ------------------------------------------------------ */

static uint32_t tile_scale(uint32_t img_h, uint32_t img_w)
{
    uint32_t side = img_h > img_w ? img_h : img_w;
    uint32_t s = DAECL_PICTURE_MIN_TILE / side;
    return s ? s : 1;
}

static int too_large(const char *path, const char *what, uint64_t width, uint64_t height,
                     const char *hint, daecl_err *err)
{
    return daecl_err_set(err, DAECL_EINVAL, "cannot draw %s %s: it would be %llux%llu pixels, "
                         "more than %u a side; %s", what, path, (unsigned long long)width,
                         (unsigned long long)height, DAECL_PNGFILE_MAX_SIDE, hint);
}

static int cairo_failed(const char *path, cairo_status_t st, daecl_err *err)
{
    if (st == CAIRO_STATUS_NO_MEMORY)
        return daecl_err_set(err, DAECL_ENOMEM, "cannot draw picture %s: out of memory in cairo; "
                             "free memory and run again", path);
    return daecl_err_set(err, DAECL_EIO, "cannot draw picture %s: cairo failed (%s)", path,
                         cairo_status_to_string(st));
}

/* A cairo RGB24 surface and context of width x height, filled white. */
static int canvas_open(const char *path, int width, int height, cairo_surface_t **surface,
                       cairo_t **cr, daecl_err *err)
{
    *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
    *cr = cairo_create(*surface); /* an error surface yields an error context */
    cairo_status_t st = cairo_status(*cr);
    if (st != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(*cr);
        cairo_surface_destroy(*surface);
        *cr = NULL;
        *surface = NULL;
        return cairo_failed(path, st, err);
    }
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return 0;
}

/* Writes the surface's pixels (native-endian 0x00RRGGBB words) as RGB. */
static int canvas_write(const char *path, cairo_surface_t *surface, cairo_t *cr, daecl_err *err)
{
    cairo_status_t st = cairo_status(cr);
    if (st != CAIRO_STATUS_SUCCESS)
        return cairo_failed(path, st, err);
    cairo_surface_flush(surface);
    int width = cairo_image_surface_get_width(surface);
    int height = cairo_image_surface_get_height(surface);
    int stride = cairo_image_surface_get_stride(surface);
    const unsigned char *data = cairo_image_surface_get_data(surface);
    uint8_t *rgb = malloc((size_t)width * (size_t)height * 3);
    if (!rgb)
        return daecl_err_set(err, DAECL_ENOMEM, "cannot write picture %s: out of memory for its "
                             "%dx%d pixels; free memory and run again", path, width, height);
    for (int y = 0; y < height; y++) {
        const uint32_t *row = (const uint32_t *)(const void *)(data + (size_t)y * (size_t)stride);
        uint8_t *out = rgb + (size_t)y * (size_t)width * 3;
        for (int x = 0; x < width; x++) {
            out[3 * x + 0] = (uint8_t)(row[x] >> 16);
            out[3 * x + 1] = (uint8_t)(row[x] >> 8);
            out[3 * x + 2] = (uint8_t)row[x];
        }
    }
    int rc = daecl_pngfile_write(path, rgb, (uint32_t)width, (uint32_t)height, 3, err);
    free(rgb);
    return rc;
}

static void canvas_close(cairo_surface_t *surface, cairo_t *cr)
{
    cairo_destroy(cr);
    cairo_surface_destroy(surface);
}

/* ---- image shapes -------------------------------------------------------- */

int daecl_draw_image_shape(const uint32_t *shape, uint32_t n_shape, uint32_t *h, uint32_t *w)
{
    uint32_t dims[2] = {0, 0}, n = 0;
    for (uint32_t i = 0; i < n_shape; i++) {
        if (shape[i] == 1)
            continue;
        if (shape[i] == 0 || n == 2) /* empty, or a third axis: colour or volume */
            return 0;
        dims[n++] = shape[i];
    }
    if (n == 2) {
        *h = dims[0];
        *w = dims[1];
        return 1;
    }
    if (n == 1) { /* a flat vector: an image only when it is a square */
        uint32_t r = (uint32_t)sqrt((double)dims[0]);
        while ((uint64_t)r * r > dims[0])
            r--;
        while ((uint64_t)(r + 1) * (r + 1) <= dims[0])
            r++;
        if ((uint64_t)r * r == dims[0]) {
            *h = r;
            *w = r;
            return 1;
        }
    }
    return 0;
}

/* ---- filters.png --------------------------------------------------------- */

int daecl_draw_filters(const char *path, const float *w, uint32_t n_units, uint32_t img_h,
                          uint32_t img_w, uint32_t max_tiles, daecl_err *err)
{
    if (!w || n_units == 0 || img_h == 0 || img_w == 0)
        return daecl_err_set(err, DAECL_EINVAL, "cannot draw filters %s: the first layer has %u "
                             "units of %ux%u weights; it needs at least one unit and one weight",
                             path, n_units, img_h, img_w);
    uint32_t n = max_tiles && max_tiles < n_units ? max_tiles : n_units;
    uint32_t cols = (uint32_t)ceil(sqrt((double)n));
    while ((uint64_t)cols * cols < n) /* guard sqrt's rounding */
        cols++;
    while (cols > 1 && (uint64_t)(cols - 1) * (cols - 1) >= n)
        cols--;
    uint32_t rows = (n + cols - 1) / cols;
    uint32_t s = tile_scale(img_h, img_w);
    uint64_t tw = (uint64_t)img_w * s, th = (uint64_t)img_h * s;
    uint64_t width = cols * tw + (cols + 1) * (uint64_t)DAECL_PICTURE_GAP;
    uint64_t height = rows * th + (rows + 1) * (uint64_t)DAECL_PICTURE_GAP;
    if (width > DAECL_PNGFILE_MAX_SIDE || height > DAECL_PNGFILE_MAX_SIDE)
        return too_large(path, "filters", width, height, "draw fewer tiles", err);

    uint8_t *px = calloc((size_t)width * (size_t)height, 1);
    if (!px)
        return daecl_err_set(err, DAECL_ENOMEM, "cannot draw filters %s: out of memory for its "
                             "%llux%llu pixels; free memory and run again", path,
                             (unsigned long long)width, (unsigned long long)height);
    size_t dim = (size_t)img_h * img_w;
    for (uint32_t i = 0; i < n; i++) {
        const float *wi = w + (size_t)i * dim; /* unit i's weights, (img_h, img_w) */
        float mn = INFINITY, mx = -INFINITY;
        for (size_t k = 0; k < dim; k++)
            if (isfinite(wi[k])) {
                mn = wi[k] < mn ? wi[k] : mn;
                mx = wi[k] > mx ? wi[k] : mx;
            }
        /* The span in double: max - min of two floats can overflow float. */
        double span = mx > mn ? (double)mx - (double)mn : 0.0;
        size_t x0 = DAECL_PICTURE_GAP + (size_t)(i % cols) * (size_t)(tw + DAECL_PICTURE_GAP);
        size_t y0 = DAECL_PICTURE_GAP + (size_t)(i / cols) * (size_t)(th + DAECL_PICTURE_GAP);
        for (uint32_t r = 0; r < img_h; r++)
            for (uint32_t c = 0; c < img_w; c++) {
                float v = wi[(size_t)r * img_w + c];
                uint8_t b = 128;
                if (span > 0 && isfinite(v))
                    b = (uint8_t)floor(255.0 * ((double)v - (double)mn) / span + 0.5);
                for (uint32_t dy = 0; dy < s; dy++)
                    memset(px + (y0 + (size_t)r * s + dy) * (size_t)width + x0 + (size_t)c * s, b,
                           s);
            }
    }
    int rc = daecl_pngfile_write(path, px, (uint32_t)width, (uint32_t)height, 1, err);
    free(px);
    return rc;
}

/* ---- reconstructions.png ------------------------------------------------- */

int daecl_draw_reconstructions(const char *path, const float *clean, const float *corrupted,
                                  const float *recon, uint32_t n, uint32_t img_h, uint32_t img_w,
                                  float lo, float hi, daecl_err *err)
{
    static const char *const labels[3] = {"clean", "corrupted", "reconstruction"};
    const float *const rows[3] = {clean, corrupted, recon};
    return daecl_draw_rows(path, rows, labels, 3, n, img_h, img_w, lo, hi, err);
}

int daecl_draw_rows(const char *path, const float *const *rows, const char *const *labels,
                    uint32_t n_rows, uint32_t n, uint32_t img_h, uint32_t img_w, float lo,
                    float hi, daecl_err *err)
{
    int have = n_rows > 0 && n_rows <= DAECL_DRAW_MAX_ROWS;
    for (uint32_t r = 0; have && r < n_rows; r++)
        have = rows[r] && labels[r];
    if (!have || n == 0 || img_h == 0 || img_w == 0)
        return daecl_err_set(err, DAECL_EINVAL, "cannot draw reconstructions %s: it needs 1 to "
                             "%d rows of at least one example of at least one value (got %u "
                             "rows of %u of %ux%u)", path, DAECL_DRAW_MAX_ROWS, n_rows, n,
                             img_h, img_w);
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi))
        return daecl_err_set(err, DAECL_EINVAL, "cannot draw reconstructions %s: the value range "
                             "[%g, %g] is empty or not finite; give the data's minimum and maximum",
                             path, (double)lo, (double)hi);
    uint32_t s = tile_scale(img_h, img_w);
    uint64_t tw = (uint64_t)img_w * s, th = (uint64_t)img_h * s;
    uint64_t width = DAECL_PICTURE_LABEL_W + n * (tw + DAECL_PICTURE_GAP) + DAECL_PICTURE_GAP;
    uint64_t height = n_rows * (th + DAECL_PICTURE_GAP) + DAECL_PICTURE_GAP;
    if (width > DAECL_PNGFILE_MAX_SIDE || height > DAECL_PNGFILE_MAX_SIDE)
        return too_large(path, "reconstructions", width, height, "show fewer examples", err);

    cairo_surface_t *surface;
    cairo_t *cr;
    int rc = canvas_open(path, (int)width, (int)height, &surface, &cr, err);
    if (rc)
        return rc;

    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    /* 14 px, smaller when a row is short or the longest label would not fit. */
    double font = 14.0;
    if (font > 0.7 * (double)th)
        font = 0.7 * (double)th > 6.0 ? 0.7 * (double)th : 6.0;
    cairo_set_font_size(cr, font);
    cairo_text_extents_t ext;
    double widest = 0, room = DAECL_PICTURE_LABEL_W - 12.0;
    for (uint32_t r = 0; r < n_rows; r++) {
        cairo_text_extents(cr, labels[r], &ext);
        widest = ext.x_advance > widest ? ext.x_advance : widest;
    }
    if (widest > room) {
        font *= room / widest;
        cairo_set_font_size(cr, font);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    for (uint32_t r = 0; r < n_rows; r++) {
        cairo_text_extents(cr, labels[r], &ext);
        double yc = DAECL_PICTURE_GAP + r * (double)(th + DAECL_PICTURE_GAP) + th / 2.0;
        cairo_move_to(cr, 6.0, yc - (ext.y_bearing + ext.height / 2.0));
        cairo_show_text(cr, labels[r]);
    }
    cairo_surface_flush(surface);

    /* Tiles straight into the surface: each value's byte must be exact. */
    unsigned char *data = cairo_image_surface_get_data(surface);
    size_t stride = (size_t)cairo_image_surface_get_stride(surface);
    size_t dim = (size_t)img_h * img_w;
    double span = (double)hi - (double)lo;
    for (uint32_t r = 0; r < n_rows; r++)
        for (uint32_t j = 0; j < n; j++) {
            const float *x = rows[r] + (size_t)j * dim; /* (img_h, img_w) */
            size_t x0 = DAECL_PICTURE_LABEL_W + DAECL_PICTURE_GAP + (size_t)j * (tw + DAECL_PICTURE_GAP);
            size_t y0 = DAECL_PICTURE_GAP + (size_t)r * (th + DAECL_PICTURE_GAP);
            for (uint32_t py = 0; py < th; py++) {
                uint32_t *out = (uint32_t *)(void *)(data + (y0 + py) * stride) + x0;
                const float *xr = x + (size_t)(py / s) * img_w;
                for (uint32_t px = 0; px < tw; px++) {
                    float v = xr[px / s];
                    double t = isnan(v) ? 0.0 : ((double)v - (double)lo) / span;
                    t = t < 0 ? 0 : t > 1 ? 1 : t;
                    uint32_t b = (uint32_t)floor(255.0 * t + 0.5);
                    out[px] = b << 16 | b << 8 | b;
                }
            }
        }
    cairo_surface_mark_dirty(surface);
    rc = canvas_write(path, surface, cr, err);
    canvas_close(surface, cr);
    return rc;
}

/* ---- curves.png ---------------------------------------------------------- */

/* An axis from lo to hi with ticks every step, labels with `decimals`
 * digits after the point (-1: scientific with `sig` significant digits). */
typedef struct axis {
    double lo, hi, step;
    int decimals, sig;
} axis;

#define CURVE_LIMIT 1e300

static int usable(double v)
{
    return isfinite(v) && fabs(v) <= CURVE_LIMIT;
}

/* 1, 2 or 5 x 10^k, the round step nearest raw. */
static double nice_step(double raw)
{
    double p = pow(10.0, floor(log10(raw)));
    double f = raw / p;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * p;
}

/* The axis for data in [mn, mx] (mn > mx: no data) with about n_ticks
 * ticks; `whole` keeps the step at 1 or more and, for data that is not
 * negative, the axis too (epochs). */
static axis make_axis(double mn, double mx, int n_ticks, int whole)
{
    axis a;
    int nonneg = whole && mn >= 0;
    if (mn > mx) {
        mn = 0;
        mx = 1;
    } else if (mx == mn) {
        double pad = fabs(mn) * 0.05;
        if ((whole && pad < 1) || !(mn - pad < mn + pad)) /* zero, or too small to widen */
            pad = 1;
        mn -= pad;
        mx += pad;
    } else {
        double pad = 0.02 * (mx - mn); /* keeps markers off the frame */
        mn -= pad;
        mx += pad;
    }
    if (nonneg && mn < 0)
        mn = 0;
    /* Ticks finer than a millionth of the values (1e15 +- 1e-3) would need
     * labels too long to read: the step is at least that. */
    double big = fmax(fabs(mn), fabs(mx));
    a.step = nice_step(fmax((mx - mn) / n_ticks, big * 1e-6));
    if (whole && a.step < 1)
        a.step = 1;
    a.lo = floor(mn / a.step) * a.step;
    a.hi = ceil(mx / a.step) * a.step;
    big = fmax(fabs(a.lo), fabs(a.hi));
    int dec = a.step >= 1 ? 0 : (int)ceil(-log10(a.step) - 1e-9);
    if (big < 1e7 && dec <= 6) {
        a.decimals = dec;
        a.sig = 0;
    } else {
        int sig = (big > 0 ? (int)floor(log10(big)) : 0) - (int)floor(log10(a.step)) + 1;
        a.decimals = -1;
        a.sig = sig < 1 ? 1 : sig > 17 ? 17 : sig;
    }
    return a;
}

static void tick_label(const axis *a, double v, char *buf, size_t n)
{
    if (fabs(v) < a->step * 1e-9)
        v = 0; /* no "-0" or "1e-17" where the axis crosses zero */
    if (a->decimals >= 0)
        snprintf(buf, n, "%.*f", a->decimals, v);
    else
        snprintf(buf, n, "%.*e", a->sig < 1 ? 0 : a->sig > 17 ? 16 : a->sig - 1, v);
}

/* The plot: its frame in pixels and its two axes. The left edge moves
 * right when the y tick labels are wide (1.000001e+15). */
typedef struct plot {
    double l, r, t, b;
    axis x, y;
} plot;

/* Tick values lo, lo + step, ... hi: at most 200 (make_axis gives ~10). */
static int n_ticks(const axis *a)
{
    int n = 0;
    while (n < 200 && a->lo + n * a->step <= a->hi + a->step * 1e-6)
        n++;
    return n;
}

static double map_x(const plot *p, double v)
{
    return p->l + (v - p->x.lo) / (p->x.hi - p->x.lo) * (p->r - p->l);
}

static double map_y(const plot *p, double v)
{
    return p->b - (v - p->y.lo) / (p->y.hi - p->y.lo) * (p->b - p->t);
}

/* Room left of the frame: the rotated y title (~24 px), a gap, the widest
 * tick label, the tick; 90 px at least so ordinary plots all line up. */
static double frame_left(cairo_t *cr, const axis *ay)
{
    char buf[64];
    cairo_text_extents_t ext;
    cairo_set_font_size(cr, 12);
    double widest = 0;
    for (int i = 0, n = n_ticks(ay); i < n; i++) {
        tick_label(ay, ay->lo + i * ay->step, buf, sizeof buf);
        cairo_text_extents(cr, buf, &ext);
        widest = fmax(widest, ext.width);
    }
    return fmax(90.0, ceil(30 + widest + 8));
}

static void draw_axes(cairo_t *cr, const plot *p)
{
    char buf[64];
    cairo_text_extents_t ext;
    cairo_set_font_size(cr, 12);
    cairo_set_line_width(cr, 1.0);
    for (int i = 0, n = n_ticks(&p->x); i < n; i++) {
        double v = p->x.lo + i * p->x.step;
        double x = floor(map_x(p, v)) + 0.5; /* crisp 1-px lines on pixel centres */
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x, p->t);
        cairo_line_to(cr, x, p->b);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, x, p->b);
        cairo_line_to(cr, x, p->b + 5);
        cairo_stroke(cr);
        tick_label(&p->x, v, buf, sizeof buf);
        cairo_text_extents(cr, buf, &ext);
        cairo_move_to(cr, x - ext.x_bearing - ext.width / 2, p->b + 9 - ext.y_bearing);
        cairo_show_text(cr, buf);
    }
    for (int i = 0, n = n_ticks(&p->y); i < n; i++) {
        double v = p->y.lo + i * p->y.step;
        double y = floor(map_y(p, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, p->l, y);
        cairo_line_to(cr, p->r, y);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, p->l - 5, y);
        cairo_line_to(cr, p->l, y);
        cairo_stroke(cr);
        tick_label(&p->y, v, buf, sizeof buf);
        cairo_text_extents(cr, buf, &ext);
        cairo_move_to(cr, p->l - 8 - ext.x_bearing - ext.width, y - ext.y_bearing - ext.height / 2);
        cairo_show_text(cr, buf);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, p->l + 0.5, p->t + 0.5, p->r - p->l, p->b - p->t);
    cairo_stroke(cr);

    cairo_set_font_size(cr, 13);
    cairo_text_extents(cr, "epoch", &ext);
    cairo_move_to(cr, (p->l + p->r) / 2 - ext.x_bearing - ext.width / 2,
                  DAECL_PICTURE_CURVES_H - 14);
    cairo_show_text(cr, "epoch");
    const char *ylabel = "NLL (nats per example)";
    cairo_text_extents(cr, ylabel, &ext);
    cairo_save(cr);
    cairo_move_to(cr, 20, (p->t + p->b) / 2 + ext.x_bearing + ext.width / 2);
    cairo_rotate(cr, -M_PI / 2);
    cairo_show_text(cr, ylabel);
    cairo_restore(cr);
}

typedef struct series {
    const double *y;
    const char *name;
    double r, g, b;
    int marker; /* 0 circle, 1 square, 2 triangle */
} series;

static void draw_marker(cairo_t *cr, int marker, double x, double y)
{
    switch (marker) {
    case 0:
        cairo_new_sub_path(cr);
        cairo_arc(cr, x, y, 3.5, 0, 2 * M_PI);
        break;
    case 1:
        cairo_rectangle(cr, x - 3.2, y - 3.2, 6.4, 6.4);
        break;
    default:
        cairo_move_to(cr, x, y - 4.2);
        cairo_line_to(cr, x + 4.0, y + 3.0);
        cairo_line_to(cr, x - 4.0, y + 3.0);
        cairo_close_path(cr);
        break;
    }
    cairo_fill(cr);
}

/* Lines break at unusable points; markers unless the points crowd (> 150). */
static void draw_series(cairo_t *cr, const series *sr, const double *epoch, size_t n,
                        const plot *p)
{
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++)
        n_ok += usable(epoch[i]) && usable(sr->y[i]);
    cairo_set_source_rgb(cr, sr->r, sr->g, sr->b);
    cairo_set_line_width(cr, 2.0);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    int open = 0;
    for (size_t i = 0; i < n; i++) {
        if (!usable(epoch[i]) || !usable(sr->y[i])) {
            open = 0;
            continue;
        }
        double x = map_x(p, epoch[i]), y = map_y(p, sr->y[i]);
        if (open)
            cairo_line_to(cr, x, y);
        else
            cairo_move_to(cr, x, y);
        open = 1;
    }
    cairo_stroke(cr);
    if (n_ok > 150)
        return;
    for (size_t i = 0; i < n; i++)
        if (usable(epoch[i]) && usable(sr->y[i]))
            draw_marker(cr, sr->marker, map_x(p, epoch[i]), map_y(p, sr->y[i]));
}

static void draw_legend(cairo_t *cr, const series *sr, int n_series, const plot *p)
{
    cairo_text_extents_t ext;
    cairo_set_font_size(cr, 12);
    double text_w = 0;
    for (int k = 0; k < n_series; k++) {
        cairo_text_extents(cr, sr[k].name, &ext);
        text_w = ext.x_advance > text_w ? ext.x_advance : text_w;
    }
    double line_h = 18, box_w = 12 + 28 + 8 + text_w + 12, box_h = 8 + n_series * line_h + 4;
    double x0 = p->r - 10 - box_w, y0 = p->t + 10;
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, box_w, box_h);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    for (int k = 0; k < n_series; k++) {
        double yc = y0 + 8 + k * line_h + line_h / 2;
        cairo_set_source_rgb(cr, sr[k].r, sr[k].g, sr[k].b);
        cairo_set_line_width(cr, 2.0);
        cairo_move_to(cr, x0 + 12, yc);
        cairo_line_to(cr, x0 + 40, yc);
        cairo_stroke(cr);
        draw_marker(cr, sr[k].marker, x0 + 26, yc);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_text_extents(cr, sr[k].name, &ext);
        cairo_move_to(cr, x0 + 48, yc - ext.y_bearing - ext.height / 2);
        cairo_show_text(cr, sr[k].name);
    }
}

int daecl_draw_curves(const char *path, const char *title, const double *epoch,
                         const double *train_nll, const double *test_clean,
                         const double *test_corrupted, size_t n, daecl_err *err)
{
    if (n > 0 && (!epoch || !train_nll))
        return daecl_err_set(err, DAECL_EINVAL, "cannot draw curves %s: no epochs or no train "
                             "NLL given (a bug in the caller)", path);
    /* Colours of matplotlib's default cycle, told apart by marker too. */
    series all[3] = {
        {train_nll, "train", 0.122, 0.467, 0.706, 0},
        {test_clean, "test (clean input)", 1.0, 0.498, 0.055, 1},
        {test_corrupted, "test (corrupted input)", 0.173, 0.627, 0.173, 2},
    };
    series sr[3];
    int n_series = 0;
    for (int k = 0; k < 3; k++)
        if (all[k].y)
            sr[n_series++] = all[k];

    double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
    size_t n_points = 0;
    for (int k = 0; k < n_series; k++)
        for (size_t i = 0; i < n; i++)
            if (usable(epoch[i]) && usable(sr[k].y[i])) {
                n_points++;
                xmn = fmin(xmn, epoch[i]);
                xmx = fmax(xmx, epoch[i]);
                ymn = fmin(ymn, sr[k].y[i]);
                ymx = fmax(ymx, sr[k].y[i]);
            }
    int whole = 1; /* epochs are whole numbers unless the caller logs fractions */
    for (size_t i = 0; i < n; i++)
        if (usable(epoch[i]) && epoch[i] != floor(epoch[i]))
            whole = 0;
    plot p = {.r = DAECL_PICTURE_CURVES_W - 24, .t = 50, .b = DAECL_PICTURE_CURVES_H - 64};
    p.x = make_axis(xmn, xmx, 8, whole);
    p.y = make_axis(ymn, ymx, 6, 0);

    cairo_surface_t *surface;
    cairo_t *cr;
    int rc = canvas_open(path, DAECL_PICTURE_CURVES_W, DAECL_PICTURE_CURVES_H, &surface, &cr, err);
    if (rc)
        return rc;
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    p.l = frame_left(cr, &p.y);
    draw_axes(cr, &p);

    cairo_save(cr);
    cairo_rectangle(cr, p.l, p.t, p.r - p.l, p.b - p.t);
    cairo_clip(cr);
    for (int k = 0; k < n_series; k++)
        draw_series(cr, &sr[k], epoch, n, &p);
    cairo_restore(cr);
    if (n_series > 0)
        draw_legend(cr, sr, n_series, &p);
    cairo_text_extents_t ext;
    if (n_points == 0) {
        const char *none = "no finite values to plot";
        cairo_set_font_size(cr, 16);
        cairo_text_extents(cr, none, &ext);
        cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
        cairo_move_to(cr, (p.l + p.r) / 2 - ext.x_bearing - ext.width / 2,
                      (p.t + p.b) / 2 - ext.y_bearing - ext.height / 2);
        cairo_show_text(cr, none);
    }

    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    cairo_set_font_size(cr, 16);
    const char *t = title && title[0] ? title : "learning curves";
    cairo_text_extents(cr, t, &ext);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_move_to(cr, DAECL_PICTURE_CURVES_W / 2.0 - ext.x_bearing - ext.width / 2, 30);
    cairo_show_text(cr, t);

    rc = canvas_write(path, surface, cr, err);
    canvas_close(surface, cr);
    return rc;
}

/* ---- vector fields ------------------------------------------------------- */

int daecl_draw_field(const char *path, const char *title, const float *pts, size_t n_pts,
                     const float *grid, const float *vec, size_t n_grid, double x0, double x1,
                     double y0, double y1, double longest_px, daecl_err *err)
{
    if (!(x0 < x1) || !(y0 < y1) || !isfinite(x1 - x0) || !isfinite(y1 - y0))
        return daecl_err_set(err, DAECL_EINVAL, "cannot draw field %s: the view [%g, %g] x "
                             "[%g, %g] is empty or not finite (a bug in the caller)",
                             path, x0, x1, y0, y1);
    const double W = DAECL_PICTURE_FIELD_W, m = 24; /* margin, pixels */
    const double sx = (W - 2 * m) / (x1 - x0), sy = (W - 2 * m) / (y1 - y0);
    cairo_surface_t *surface;
    cairo_t *cr;
    int rc = canvas_open(path, (int)W, (int)W, &surface, &cr, err);
    if (rc)
        return rc;
    /* Training points: faint dots. O(n_pts) arcs: fine below 1e6. */
    cairo_set_source_rgba(cr, 0.45, 0.45, 0.45, 0.3);
    for (size_t i = 0; i < n_pts; i++) {
        double px = m + (pts[2 * i] - x0) * sx, py = W - m - (pts[2 * i + 1] - y0) * sy;
        if (isfinite(px) && isfinite(py))
            cairo_rectangle(cr, px - 0.75, py - 0.75, 1.5, 1.5);
    }
    cairo_fill(cr);
    /* One scale for every arrow, in pixels per unit of data length: the
     * median length maps to longest_px / 2, so the far corners, where a
     * network extrapolates, do not shrink the arrows near the data to
     * dots; longer arrows are capped at longest_px (direction kept).
     * O(n_grid^2) selection: fine for a few thousand arrows. */
    double med = 0;
    size_t n_fin = 0;
    for (size_t i = 0; i < n_grid; i++)
        n_fin += isfinite(hypot(vec[2 * i] * sx, vec[2 * i + 1] * sy));
    for (size_t i = 0; i < n_grid && n_fin > 0; i++) {
        double li = hypot(vec[2 * i] * sx, vec[2 * i + 1] * sy);
        if (!isfinite(li))
            continue;
        size_t below = 0, equal = 0;
        for (size_t j = 0; j < n_grid; j++) {
            double lj = hypot(vec[2 * j] * sx, vec[2 * j + 1] * sy);
            below += isfinite(lj) && lj < li;
            equal += isfinite(lj) && lj == li;
        }
        if (below <= n_fin / 2 && below + equal > n_fin / 2) {
            med = li;
            break;
        }
    }
    double k = med > 0 ? 0.5 * longest_px / med : 0;
    cairo_set_source_rgb(cr, 0.122, 0.467, 0.706);
    cairo_set_line_width(cr, 1.2);
    for (size_t i = 0; i < n_grid; i++) {
        double bx = m + (grid[2 * i] - x0) * sx, by = W - m - (grid[2 * i + 1] - y0) * sy;
        double dx = vec[2 * i] * sx * k, dy = -vec[2 * i + 1] * sy * k;
        double len = sqrt(dx * dx + dy * dy);
        if (!isfinite(len) || !isfinite(bx) || !isfinite(by))
            continue;
        if (len > longest_px) {
            dx *= longest_px / len;
            dy *= longest_px / len;
            len = longest_px;
        }
        if (len < 0.5) { /* a fixed point: a dot */
            cairo_arc(cr, bx, by, 1.2, 0, 2 * M_PI);
            cairo_fill(cr);
            continue;
        }
        double ux = dx / len, uy = dy / len, head = fmin(5.0, 0.4 * len);
        cairo_move_to(cr, bx, by);
        cairo_line_to(cr, bx + dx, by + dy);
        cairo_stroke(cr);
        cairo_move_to(cr, bx + dx, by + dy);
        cairo_line_to(cr, bx + dx - head * (ux - 0.5 * uy), by + dy - head * (uy + 0.5 * ux));
        cairo_line_to(cr, bx + dx - head * (ux + 0.5 * uy), by + dy - head * (uy - 0.5 * ux));
        cairo_close_path(cr);
        cairo_fill(cr);
    }
    if (title && title[0]) {
        cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                               CAIRO_FONT_WEIGHT_BOLD);
        cairo_set_font_size(cr, 14);
        cairo_text_extents_t ext;
        cairo_text_extents(cr, title, &ext);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_move_to(cr, W / 2 - ext.x_bearing - ext.width / 2, 17);
        cairo_show_text(cr, title);
    }
    rc = canvas_write(path, surface, cr, err);
    canvas_close(surface, cr);
    return rc;
}

/* ---- process-wide caches ------------------------------------------------- */

void daecl_draw_release_caches(void)
{
    /* cairo first: its font cache holds fontconfig patterns that FcFini
     * would otherwise find still referenced. */
    cairo_debug_reset_static_data();
    FcFini();
}
