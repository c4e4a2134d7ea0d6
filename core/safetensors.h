/* daecl — the safetensors file format: float32 tensors plus string metadata.
 *
 * Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length N, N bytes of JSON ({"__metadata__": {str: str}, NAME:
 * {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}),
 * then the tensor bytes, offsets relative to the end of the header. Writing
 * is atomic: a temporary file in the same folder, fsync, rename, fsync of the
 * folder; a failure leaves any earlier file untouched. Reading checks every
 * length, offset and shape against the file before it trusts them. */
#ifndef DAECL_CORE_SAFETENSORS_H
#define DAECL_CORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "daecl/error.h"

#define DAECL_ST_MAX_DIMS 4

/* One tensor to write; data is host float32, row-major. */
typedef struct daecl_st_tensor {
    const char *name;
    const float *data;
    uint32_t ndim;
    uint64_t shape[DAECL_ST_MAX_DIMS];
} daecl_st_tensor;

/* meta holds n_meta key/value pairs: meta[2i] is a key, meta[2i+1] its value. */
int daecl_safetensors_write(const char *path, const daecl_st_tensor *tensors, size_t n_tensors,
                            const char *const *meta, size_t n_meta, daecl_err *err);

typedef struct daecl_safetensors daecl_safetensors;

int daecl_safetensors_read(const char *path, daecl_safetensors **out, daecl_err *err);
/* From memory (fuzzing, tests); `name` stands in for the path in messages. */
int daecl_safetensors_parse(const void *bytes, size_t n_bytes, const char *name,
                            daecl_safetensors **out, daecl_err *err);
void daecl_safetensors_destroy(daecl_safetensors *st);

/* The tensor of that name (F32 only), or NULL. *ndim and shape[] (if not NULL)
 * get its shape; the data is aligned for float and lives as long as st. */
const float *daecl_safetensors_get(const daecl_safetensors *st, const char *name, uint32_t *ndim,
                                   uint64_t shape[DAECL_ST_MAX_DIMS]);
/* A metadata value, or NULL. */
const char *daecl_safetensors_meta(const daecl_safetensors *st, const char *key);
size_t daecl_safetensors_count(const daecl_safetensors *st);
const char *daecl_safetensors_name_at(const daecl_safetensors *st, size_t i);

#endif
