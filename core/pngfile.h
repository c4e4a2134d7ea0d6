/* daecl — PNG files through libpng: one writer for every picture a run makes
 * (8-bit gray or RGB, written atomically) and a reader that normalises any
 * PNG to 8-bit gray or RGB (for tests and for checking pictures on disk). */
#ifndef DAECL_CORE_PNGFILE_H
#define DAECL_CORE_PNGFILE_H

#include <stdint.h>

#include "daecl/error.h"

/* Largest width or height either function accepts (cairo's own limit). */
#define DAECL_PNGFILE_MAX_SIDE 32767u

/* Writes pixels, (height, width, channels) row-major bytes with channels 1
 * (gray) or 3 (RGB, in that order), as an 8-bit non-interlaced PNG at path.
 * The file is encoded in memory and then written atomically (temporary file
 * beside it, fsync, rename): a failure leaves any earlier file at path intact
 * and no temporary file behind. DAECL_EINVAL for bad sizes, DAECL_ENOMEM,
 * DAECL_EIO for the file system. */
int daecl_pngfile_write(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
                    int channels, daecl_err *err);

/* Reads the PNG at path into a malloc'd (height, width, channels) byte array
 * that the caller frees; on error *pixels is NULL. Any bit depth, palette,
 * interlacing and alpha is accepted: 16-bit samples are cut to 8, palettes
 * expanded to RGB, and alpha dropped (not composited), so *channels is 1 for
 * gray and gray+alpha files and 3 for everything else. A file written by
 * daecl_pngfile_write reads back bit-exact. DAECL_EIO when the file cannot be
 * opened, DAECL_EDATA when it is not a PNG or is damaged, DAECL_ENOMEM. */
int daecl_pngfile_read(const char *path, uint8_t **pixels, uint32_t *width, uint32_t *height,
                   int *channels, daecl_err *err);

#endif
