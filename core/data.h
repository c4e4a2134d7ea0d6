/* daecl — data sets: IDX (MNIST family, plain or gzip) and .npy files.
 *
 * Files are recognised by content, not name: gzip magic, then the IDX magic
 * (0x00 0x00 type ndim), then "\x93NUMPY". Every size in a header is checked
 * for overflow and against the bytes the file really holds before anything
 * is allocated, and against max_bytes (the caller's upper bound). */
#ifndef DAECL_CORE_DATA_H
#define DAECL_CORE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/error.h"
#include "daecl/plugin.h"

/* Examples as rows: x is (n_rows, dim), row-major float32. uint8 data is
 * scaled to [0, 1] (v / 255); float32 data is kept as it is. */
typedef struct daecl_dataset {
    float *x;
    size_t n_rows;
    size_t dim;
    uint32_t n_shape;  /* per-example shape from the file: {28, 28} for MNIST */
    uint32_t shape[4]; /* dim = product of shape[0..n_shape) */
    float min, max;    /* over all values */
    int from_uint8;    /* 1 when the file stored uint8 */
} daecl_dataset;

/* Loads at most `limit` rows (0: all). max_bytes bounds the float array
 * (0: DAECL_DATA_MAX_BYTES_DEFAULT). */
#define DAECL_DATA_MAX_BYTES_DEFAULT ((uint64_t)16 << 30)
/* data.max_mb (MiB) as the max_bytes of the loaders: at least one byte,
 * since 0 would mean the default. */
uint64_t daecl_data_max_bytes(double max_mb);
int daecl_dataset_load(const char *path, size_t limit, uint64_t max_bytes, daecl_dataset **out,
                       daecl_err *err);
void daecl_dataset_destroy(daecl_dataset *ds);
/* The examples' shape as plugins see it (plugin.h: daecl_shape). */
void daecl_dataset_shape(const daecl_dataset *ds, daecl_shape *out);

/* Class labels: IDX with one dimension of uint8/int32, or a 1-D .npy of
 * uint8, int32 or int64. Values must be in [0, 65535]. */
typedef struct daecl_labels {
    int32_t *y;
    size_t n;
    uint32_t n_classes; /* max label + 1 */
} daecl_labels;

/* max_bytes bounds the label array (int32 per row) as it bounds a data
 * set's (0: DAECL_DATA_MAX_BYTES_DEFAULT). */
int daecl_labels_load(const char *path, size_t limit, uint64_t max_bytes, daecl_labels **out,
                      daecl_err *err);
void daecl_labels_destroy(daecl_labels *labels);

/* Parses from memory (fuzzing, tests); `name` stands in for the path. The
 * bytes are the file as stored (gzip is inflated here too). */
int daecl_dataset_parse(const void *bytes, size_t n_bytes, const char *name, size_t limit,
                        uint64_t max_bytes, daecl_dataset **out, daecl_err *err);

#endif
