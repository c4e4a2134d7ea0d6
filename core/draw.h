/* daecl — the pictures of a run: first-layer filters as image tiles,
 * clean / corrupted / reconstructed examples, and learning curves. Pure
 * functions of host arrays: no backend, no file but the PNG written (through
 * core/pngfile.h, so atomically). Text and curves are drawn with cairo. */
#ifndef DAECL_CORE_DRAW_H
#define DAECL_CORE_DRAW_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/error.h"

/* Layout shared by the tile pictures. Every image of h x w values is drawn
 * as a tile of (h*s) x (w*s) pixels, each value an s x s block, where
 *     s = max(1, DAECL_PICTURE_MIN_TILE / max(h, w))   (integer division)
 * so small images stay visible (28x28 -> s = 2, 8x8 -> s = 8, 100x100 -> 1).
 * Tiles are DAECL_PICTURE_GAP pixels apart and from the picture's edges. */
#define DAECL_PICTURE_MIN_TILE 64u
#define DAECL_PICTURE_GAP 2u
/* Width of the text column at the left of reconstructions.png. */
#define DAECL_PICTURE_LABEL_W 120u
/* Size of curves.png. */
#define DAECL_PICTURE_CURVES_W 800u
#define DAECL_PICTURE_CURVES_H 500u

/* The image shape (h, w) of one example of a data set whose per-example
 * shape is shape[0..n_shape) (core/data.h's daecl_dataset.shape). Axes of
 * length 1 are ignored; what is left must be {H, W}, or a flat {D} with D a
 * perfect square >= 4, taken as sqrt(D) x sqrt(D) (MNIST stored as 784
 * columns). So {28, 28}, {28, 28, 1}, {1, 28, 28}, {784} and {1, 784} are
 * all 28 x 28. Returns 1 and fills *h, *w for a gray image shape, 0
 * otherwise (colour, volumes, other vectors): then the caller draws no
 * filters or reconstructions. */
int daecl_draw_image_shape(const uint32_t *shape, uint32_t n_shape, uint32_t *h, uint32_t *w);

/* filters.png, 8-bit gray. w is (n_units, img_h * img_w) row-major: the
 * first layer's weight, one row per hidden unit (PyTorch nn.Linear layout,
 * core/model.h). The first n = min(n_units, max_tiles) units (max_tiles 0:
 * all) are drawn in a grid of cols = ceil(sqrt(n)) columns and
 * rows = ceil(n / cols) rows, unit i at row i / cols, column i % cols, so
 *     width  = cols * img_w * s + (cols + 1) * GAP
 *     height = rows * img_h * s + (rows + 1) * GAP
 * Each tile is normalised to its own range: byte = round(255 * (v - min) /
 * (max - min)); a constant tile is mid-gray (128); non-finite weights are
 * drawn as 128 and left out of min and max. Gaps and empty cells are black. */
int daecl_draw_filters(const char *path, const float *w, uint32_t n_units, uint32_t img_h,
                          uint32_t img_w, uint32_t max_tiles, daecl_err *err);

/* reconstructions.png, 8-bit RGB. clean, corrupted and recon are each
 * (n, img_h * img_w) row-major: n examples, their corrupted versions, and the
 * decoder's reconstructed means. Three rows of n tiles (clean, corrupted,
 * reconstruction, top to bottom, labelled in a text column at the left), so
 *     width  = LABEL_W + n * (img_w * s + GAP) + GAP
 *     height = 3 * (img_h * s + GAP) + GAP
 * and example j of row r has its top-left pixel at
 *     x = LABEL_W + GAP + j * (img_w * s + GAP),  y = GAP + r * (img_h * s + GAP).
 * A value v shows as gray byte round(255 * (clamp(v, lo, hi) - lo) / (hi - lo))
 * (NaN as lo), so every image shares the data's range [lo, hi] and
 * corruption and reconstruction errors stay comparable; lo < hi, both finite.
 * The background is white, the labels black. */
int daecl_draw_reconstructions(const char *path, const float *clean, const float *corrupted,
                                  const float *recon, uint32_t n, uint32_t img_h, uint32_t img_w,
                                  float lo, float hi, daecl_err *err);

/* The same layout with n_rows (1 to DAECL_DRAW_MAX_ROWS) rows of n
 * examples, row r labelled labels[r]: height = n_rows * (img_h * s + GAP)
 * + GAP. reconstructions.png is rows {clean, corrupted, reconstruction}; a
 * stack's stage-K-reconstructions.png is {clean, depth 1, ..., depth K}. */
#define DAECL_DRAW_MAX_ROWS 32
int daecl_draw_rows(const char *path, const float *const *rows, const char *const *labels,
                    uint32_t n_rows, uint32_t n, uint32_t img_h, uint32_t img_w, float lo,
                    float hi, daecl_err *err);

/* curves.png, 8-bit RGB, CURVES_W x CURVES_H: train NLL and test NLL (clean
 * and corrupted inputs) against epoch, as lines with markers on axes with
 * round ticks (1, 2 or 5 x 10^k), axis labels, a legend and a title (NULL:
 * "learning curves"). All arrays hold n values; test_clean and
 * test_corrupted may be NULL (not drawn, not in the legend). Points whose
 * epoch or value is NaN, infinite or beyond +-1e300 are skipped and break
 * the line; n == 0 or no finite point draws empty axes. */
int daecl_draw_curves(const char *path, const char *title, const double *epoch,
                         const double *train_nll, const double *test_clean,
                         const double *test_corrupted, size_t n, daecl_err *err);

/* field.png, 8-bit RGB, FIELD_W x FIELD_W: a 2-D vector field as arrows
 * (Deep Learning, Figures 14.4 and 14.5). pts (n_pts, 2) are drawn as faint
 * gray dots; the arrow of row i of vec (n_grid, 2) starts at row i of grid
 * (n_grid, 2). The view [x0, x1] x [y0, y1] (x0 < x1, y0 < y1, finite) is
 * mapped onto the square, y up, so unequal ranges stretch one axis. All
 * arrows share one scale: the median length is drawn longest_px / 2 pixels
 * long (longest_px: the grid spacing, say), and longer arrows are capped at
 * longest_px; non-finite vectors are skipped. A title (NULL: none) is
 * written at the top. */
#define DAECL_PICTURE_FIELD_W 640u
int daecl_draw_field(const char *path, const char *title, const float *pts, size_t n_pts,
                     const float *grid, const float *vec, size_t n_grid, double x0, double x1,
                     double y0, double y1, double longest_px, daecl_err *err);

/* Frees the process-wide caches that cairo and fontconfig keep after the
 * first text is drawn (about 1 KiB, otherwise held until exit, which leak
 * checkers such as ASan report). Call it once before exit, when no other
 * thread uses cairo or fontconfig: the CLI's main and test programs do.
 * Drawing again afterwards still works; the caches are rebuilt. */
void daecl_draw_release_caches(void);

#endif
