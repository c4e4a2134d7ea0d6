/* daecl — data sets: IDX (MNIST family, plain or gzip) and .npy files.
 *
 * Files are recognised by content, not name: gzip magic, then the IDX magic
 * (0x00 0x00 type ndim), then "\x93NUMPY". Every size in a header is checked
 * for overflow and against the bytes the file really holds before anything
 * is allocated, and against max_bytes (the caller's upper bound).
 *
 * A file whose stored bytes already are the array daecl trains on (a plain,
 * not gzip'd, float32 .npy in the host's byte order and C order, its data at
 * a multiple of 4 bytes: what numpy.save writes) is memory-mapped read-only
 * and shared (PROT_READ, MAP_SHARED) instead of copied, so the ranks of one
 * node share its page-cache pages. Everything else, and a file the kernel
 * will not map, is read into malloc'd memory ("loaded"). Cost of mapping:
 * a file truncated by someone else while mapped raises SIGBUS on access. */
#ifndef DAECL_CORE_DATA_H
#define DAECL_CORE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/error.h"
#include "daecl/plugin.h"

/* Examples as rows: x is (n_rows, dim), row-major float32. uint8 data is
 * scaled to [0, 1] (v / 255); float32 data is kept as it is. x is const:
 * when mapped it points into a read-only mapping, and a write there would
 * crash; whoever needs to change values copies them first. */
typedef struct daecl_dataset {
    const float *x;
    size_t n_rows;
    size_t dim;
    uint32_t n_shape;  /* per-example shape from the file: {28, 28} for MNIST */
    uint32_t shape[4]; /* dim = product of shape[0..n_shape) */
    float min, max;    /* over all values */
    int from_uint8;    /* 1 when the file stored uint8 */
    int mapped;        /* 1: x lies in a read-only shared mapping of the file;
                        * 0: x is malloc'd (destroy frees it) */
    void *map_base;    /* data.c's: the mapping (from file offset 0), or NULL */
    size_t map_bytes;  /* its length: header + the rows kept */
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
/* Moves the last n_tail rows of ds into a new data set *tail (a copy, with
 * ds's shape, range and uint8 origin) and drops them from ds; 0 < n_tail <
 * ds->n_rows. */
int daecl_dataset_take_tail(daecl_dataset *ds, size_t n_tail, daecl_dataset **tail,
                            daecl_err *err);
/* Bytes of this process's own memory the values take: n_rows * dim * 4
 * when loaded, 0 when mapped (the file's page-cache pages, shared by every
 * process that maps it, are the kernel's, not the process's). */
uint64_t daecl_dataset_private_bytes(const daecl_dataset *ds);
/* "mapped" or "loaded", for logs and summaries. */
const char *daecl_dataset_storage(const daecl_dataset *ds);
/* The examples' shape as plugins see it (plugin.h: daecl_shape). */
void daecl_dataset_shape(const daecl_dataset *ds, daecl_shape *out);

/* The header of a .npy file (format 1.0) of float32 values ('<f4') in C
 * order and shape[0..ndim), 1 <= ndim <= 4, padded with spaces to a
 * multiple of 64 bytes as numpy.save pads it, into buf; returns its length
 * in bytes. The data follow it in the file. */
#define DAECL_NPY_HEADER_MAX 256
size_t daecl_npy_f32_header(char buf[DAECL_NPY_HEADER_MAX], const size_t *shape, uint32_t ndim);

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
/* The same for labels: their last n_tail into *tail, dropped from lb (its
 * n_classes kept for both). */
int daecl_labels_take_tail(daecl_labels *lb, size_t n_tail, daecl_labels **tail, daecl_err *err);

/* Parses from memory (fuzzing, tests); `name` stands in for the path. The
 * bytes are the file as stored (gzip is inflated here too). */
int daecl_dataset_parse(const void *bytes, size_t n_bytes, const char *name, size_t limit,
                        uint64_t max_bytes, daecl_dataset **out, daecl_err *err);

#endif
