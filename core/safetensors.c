/* daecl — the safetensors checkpoint format (core/safetensors.h): an atomic
 * writer of float32 tensors plus string metadata, and a reader that checks
 * every length, offset, shape and dtype in a file before it trusts them. */
#include "core/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/utf8.h"

/* The format is little-endian and we write and read float arrays as they lie
 * in memory; a big-endian host would need a byte swap on both paths. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "core/safetensors.c assumes a little-endian host; add a byte swap for this target"
#endif

#define MAX_HEADER (100u << 20) /* bytes; the reference reader's limit */
#define MAX_NAME 255            /* bytes; what we accept when writing */
#define MAX_EXACT (1ull << 53)  /* integers above this do not survive a double */

/* dtype names of the format and their element sizes in bytes. */
static const struct {
    const char *name;
    unsigned size;
} dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
    {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1},
};
enum { DTYPE_F32 = 1, N_DTYPES = sizeof dtypes / sizeof dtypes[0] };

typedef struct tensor {
    const char *name; /* in root's tree */
    int dtype;        /* index into dtypes[] */
    uint32_t ndim;
    uint64_t shape[DAECL_ST_MAX_DIMS];
    uint64_t begin, end; /* bytes, relative to the data section */
    const float *f32;    /* F32 only: into buf, or copy when misaligned */
    float *copy;
} tensor;

typedef struct meta_pair {
    const char *key, *value; /* in root's tree */
} meta_pair;

struct daecl_safetensors {
    unsigned char *buf; /* the whole file */
    cJSON *root;        /* the parsed header; owns every name and string */
    tensor *tensors;    /* n_tensors, in header order */
    size_t n_tensors;
    tensor **by_name; /* n_tensors, sorted by name for bsearch */
    meta_pair *meta;  /* n_meta, sorted by key */
    size_t n_meta;
};

/* ---------------------------------------------------------------- writing */

/* Checks the caller's tensors and metadata, sizes included, so the writer
 * below can multiply shapes without overflow checks. */
static int check_input(const daecl_st_tensor *tensors, size_t n_tensors, const char *const *meta,
                       size_t n_meta, const char *path, daecl_err *err)
{
    if (n_tensors > 0 && !tensors)
        return daecl_err_set(err, DAECL_EINVAL,
                             "cannot write checkpoint %s: %zu tensors but no array", path,
                             n_tensors);
    if (n_meta > 0 && !meta)
        return daecl_err_set(err, DAECL_EINVAL,
                             "cannot write checkpoint %s: %zu metadata pairs but no array", path,
                             n_meta);
    uint64_t total = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const daecl_st_tensor *t = &tensors[i];
        if (!t->name)
            return daecl_err_set(err, DAECL_EINVAL,
                                 "cannot write checkpoint %s: tensor %zu has no name", path, i);
        if (strlen(t->name) > MAX_NAME)
            return daecl_err_set(
                err, DAECL_EINVAL,
                "cannot write checkpoint %s: tensor name '%.40s...' is longer than %d bytes", path,
                t->name, MAX_NAME);
        if (strcmp(t->name, "__metadata__") == 0)
            return daecl_err_set(
                err, DAECL_EINVAL,
                "cannot write checkpoint %s: '__metadata__' is reserved and cannot name a tensor",
                path);
        if (t->ndim > DAECL_ST_MAX_DIMS)
            return daecl_err_set(
                err, DAECL_EINVAL,
                "cannot write checkpoint %s: tensor '%s' has %u dimensions, more than %d", path,
                t->name, t->ndim, DAECL_ST_MAX_DIMS);
        /* Overflow sticks even past a zero dimension, as in the reader. */
        uint64_t n = 1;
        bool overflow = false;
        for (uint32_t d = 0; d < t->ndim; d++)
            overflow |= __builtin_mul_overflow(n, t->shape[d], &n);
        uint64_t bytes;
        if (overflow || n > MAX_EXACT ||
            __builtin_mul_overflow(n, (uint64_t)sizeof(float), &bytes) ||
            __builtin_add_overflow(total, bytes, &total) || total > MAX_EXACT)
            return daecl_err_set(
                err, DAECL_EINVAL,
                "cannot write checkpoint %s: tensor '%s' is too large for the format", path,
                t->name);
        if (n > 0 && !t->data)
            return daecl_err_set(
                err, DAECL_EINVAL,
                "cannot write checkpoint %s: tensor '%s' has %llu elements but no data", path,
                t->name, (unsigned long long)n);
        /* O(n^2) over names: checkpoints hold tens of tensors. */
        for (size_t j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return daecl_err_set(err, DAECL_EINVAL,
                                     "cannot write checkpoint %s: tensor '%s' is given twice", path,
                                     t->name);
    }
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta[2 * i] || !meta[2 * i + 1])
            return daecl_err_set(
                err, DAECL_EINVAL,
                "cannot write checkpoint %s: metadata pair %zu has a NULL key or value", path, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(meta[2 * j], meta[2 * i]) == 0)
                return daecl_err_set(err, DAECL_EINVAL,
                                     "cannot write checkpoint %s: metadata key '%s' is given twice",
                                     path, meta[2 * i]);
    }
    return 0;
}

/* Appends a JSON integer printed exactly (cJSON would print a double). */
static bool add_uint(cJSON *array, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    cJSON *item = cJSON_CreateRaw(text);
    return item && cJSON_AddItemToArray(array, item);
}

/* The header JSON, unpadded: "__metadata__" first, then the tensors in the
 * order given, laid out back to back. NULL when out of memory. */
static char *header_json(const daecl_st_tensor *tensors, size_t n_tensors, const char *const *meta,
                         size_t n_meta)
{
    char *text = NULL;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m)
            goto done;
        for (size_t i = 0; i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]))
                goto done;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        const daecl_st_tensor *t = &tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->ndim; d++)
            n *= t->shape[d]; /* checked by check_input */
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", "F32"))
            goto done;
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        cJSON *offs = cJSON_AddArrayToObject(e, "data_offsets");
        if (!shape || !offs)
            goto done;
        for (uint32_t d = 0; d < t->ndim; d++)
            if (!add_uint(shape, t->shape[d]))
                goto done;
        if (!add_uint(offs, off) || !add_uint(offs, off + n * sizeof(float)))
            goto done;
        off += n * sizeof(float);
    }
    text = cJSON_PrintUnformatted(root);
done:
    cJSON_Delete(root);
    return text;
}

int daecl_safetensors_write(const char *path, const daecl_st_tensor *tensors, size_t n_tensors,
                            const char *const *meta, size_t n_meta, daecl_err *err)
{
    if (!path || !path[0])
        return daecl_err_set(err, DAECL_EINVAL, "cannot write a checkpoint without a path");
    int rc = check_input(tensors, n_tensors, meta, n_meta, path, err);
    if (rc)
        return rc;

    char *json = header_json(tensors, n_tensors, meta, n_meta);
    const void **parts = malloc((3 + n_tensors) * sizeof *parts);
    size_t *sizes = malloc((3 + n_tensors) * sizeof *sizes);
    if (!json || !parts || !sizes) {
        free(json);
        free(parts);
        free(sizes);
        return daecl_err_set(err, DAECL_ENOMEM,
                             "cannot write checkpoint %s: out of memory building its header", path);
    }
    /* Spaces pad the header so the data starts 8-byte aligned, as the
     * reference writer does; readers then map floats in place. */
    size_t n_json = strlen(json);
    size_t n_header = (n_json + 7) & ~(size_t)7;
    if (n_header > MAX_HEADER) {
        free(json);
        free(parts);
        free(sizes);
        return daecl_err_set(err, DAECL_EINVAL,
                             "cannot write checkpoint %s: its header would exceed %u MiB; use "
                             "fewer tensors or metadata",
                             path, MAX_HEADER >> 20);
    }
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++)
        len_le[i] = (unsigned char)((uint64_t)n_header >> (8 * i));
    static const char spaces[] = "       "; /* 7: the most padding */
    parts[0] = len_le, sizes[0] = 8;
    parts[1] = json, sizes[1] = n_json;
    parts[2] = spaces, sizes[2] = n_header - n_json;
    for (size_t i = 0; i < n_tensors; i++) {
        uint64_t n = 1;
        for (uint32_t d = 0; d < tensors[i].ndim; d++)
            n *= tensors[i].shape[d];
        parts[3 + i] = tensors[i].data;
        sizes[3 + i] = (size_t)n * sizeof(float);
    }
    rc = daecl_write_atomic(path, parts, sizes, 3 + n_tensors, "checkpoint", err);
    free(json);
    free(parts);
    free(sizes);
    return rc;
}

/* ---------------------------------------------------------------- reading */

static int corrupt(daecl_err *err, const char *name, const char *what)
{
    return daecl_err_set(err, DAECL_ECKPT, "checkpoint %s: %s; the file is truncated or corrupt",
                         name, what);
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool json_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0 && v <= (double)MAX_EXACT) || v != floor(v))
        return false;
    *out = (uint64_t)v;
    return true;
}

static int by_name_cmp(const void *a, const void *b)
{
    return strcmp((*(tensor *const *)a)->name, (*(tensor *const *)b)->name);
}

static int meta_cmp(const void *a, const void *b)
{
    return strcmp(((const meta_pair *)a)->key, ((const meta_pair *)b)->key);
}

static int by_begin_cmp(const void *a, const void *b)
{
    const tensor *x = *(tensor *const *)a, *y = *(tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* One tensor entry of the header, checked against n_data bytes of data. */
static int parse_entry(const cJSON *e, uint64_t n_data, const char *name, tensor *t, daecl_err *err)
{
    const char *tn = e->string;
    char what[768];
    if (!cJSON_IsObject(e)) {
        snprintf(what, sizeof what, "tensor '%s' is not a JSON object", tn);
        return corrupt(err, name, what);
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype)) {
        snprintf(what, sizeof what, "tensor '%s' has no \"dtype\" string", tn);
        return corrupt(err, name, what);
    }
    t->dtype = -1;
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(dtype->valuestring, dtypes[i].name) == 0)
            t->dtype = i;
    if (t->dtype < 0)
        return daecl_err_set(
            err, DAECL_ECKPT,
            "checkpoint %s: tensor '%s' has dtype '%.32s', which daecl does not know "
            "(it reads F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL); re-save the tensor as F32",
            name, tn, dtype->valuestring);
    if (!cJSON_IsArray(shape)) {
        snprintf(what, sizeof what, "tensor '%s' has no \"shape\" array", tn);
        return corrupt(err, name, what);
    }
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > DAECL_ST_MAX_DIMS)
        return daecl_err_set(
            err, DAECL_ECKPT,
            "checkpoint %s: tensor '%s' has %d dimensions but daecl reads at most %d; "
            "reshape it before saving",
            name, tn, ndim, DAECL_ST_MAX_DIMS);
    t->ndim = (uint32_t)ndim;
    uint64_t n = 1;
    bool overflow = false;
    const cJSON *d;
    int k = 0;
    cJSON_ArrayForEach(d, shape) {
        if (!json_uint(d, &t->shape[k])) {
            snprintf(what, sizeof what,
                     "tensor '%s' has a shape entry that is not a non-negative integer", tn);
            return corrupt(err, name, what);
        }
        overflow |= __builtin_mul_overflow(n, t->shape[k], &n);
        k++;
    }
    uint64_t bytes;
    overflow |= __builtin_mul_overflow(n, (uint64_t)dtypes[t->dtype].size, &bytes);
    if (cJSON_GetArraySize(offs) != 2 || !cJSON_IsArray(offs) ||
        !json_uint(offs->child, &t->begin) || !json_uint(offs->child->next, &t->end)) {
        snprintf(what, sizeof what,
                 "tensor '%s' has no \"data_offsets\" pair of non-negative integers", tn);
        return corrupt(err, name, what);
    }
    if (t->begin > t->end || t->end > n_data) {
        snprintf(
            what, sizeof what,
            "tensor '%s' claims bytes %llu..%llu but the file holds only %llu after its header", tn,
            (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)n_data);
        return corrupt(err, name, what);
    }
    if (overflow || bytes != t->end - t->begin) {
        char need[32];
        snprintf(need, sizeof need, overflow ? "more than 2^64" : "%llu",
                 (unsigned long long)bytes);
        snprintf(
            what, sizeof what,
            "tensor '%s' has shape and dtype %s needing %s bytes but offsets %llu..%llu span %llu",
            tn, dtypes[t->dtype].name, need, (unsigned long long)t->begin,
            (unsigned long long)t->end, (unsigned long long)(t->end - t->begin));
        return corrupt(err, name, what);
    }
    return 0;
}

/* Reads the header of buf (n bytes, which st owns from now on) into st. */
static int parse_owned(daecl_safetensors *st, size_t n, const char *name, daecl_err *err)
{
    char what[768];
    const unsigned char *b = st->buf;
    if (n < 8)
        return daecl_err_set(
            err, DAECL_ECKPT,
            "checkpoint %s: the file is %zu bytes long, too short for the 8-byte header length; "
            "the file is truncated or not a safetensors file",
            name, n);
    uint64_t n_header = 0;
    for (int i = 7; i >= 0; i--)
        n_header = n_header << 8 | b[i];
    if (n_header > MAX_HEADER)
        return daecl_err_set(err, DAECL_ECKPT,
                             "checkpoint %s: the header length %llu is beyond the %u MiB limit; "
                             "the file is corrupt or not a safetensors file",
                             name, (unsigned long long)n_header, MAX_HEADER >> 20);
    if (n_header > n - 8) {
        snprintf(what, sizeof what, "the header length %llu is beyond the %zu bytes that follow it",
                 (unsigned long long)n_header, n - 8);
        return corrupt(err, name, what);
    }
    const unsigned char *h = b + 8;
    const unsigned char *nul = memchr(h, 0, n_header);
    size_t good = daecl_utf8_valid_prefix(h, n_header);
    if (nul || good < n_header) {
        snprintf(what, sizeof what, "the header has %s at byte %zu",
                 nul ? "a NUL byte" : "invalid UTF-8", nul ? (size_t)(nul - h) : good);
        return corrupt(err, name, what);
    }
    /* cJSON wants a NUL-terminated string; the header is at most 100 MiB. */
    char *text = malloc(n_header + 1);
    if (!text)
        return daecl_err_set(err, DAECL_ENOMEM,
                             "checkpoint %s: out of memory for its %llu-byte header", name,
                             (unsigned long long)n_header);
    memcpy(text, h, n_header);
    text[n_header] = '\0';
    const char *end = NULL;
    st->root = cJSON_ParseWithOpts(text, &end, 1);
    size_t at = end ? (size_t)(end - text) : 0;
    free(text);
    if (!st->root) {
        snprintf(what, sizeof what, "the header is not valid JSON (error at byte %zu)", at);
        return corrupt(err, name, what);
    }
    if (!cJSON_IsObject(st->root))
        return corrupt(err, name, "the header is not a JSON object");

    const unsigned char *data = h + n_header;
    uint64_t n_data = n - 8 - n_header;
    size_t n_entries = (size_t)cJSON_GetArraySize(st->root);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(st->root, "__metadata__");
    if (md && !cJSON_IsObject(md))
        return corrupt(err, name, "\"__metadata__\" is not a JSON object");
    size_t n_meta = md ? (size_t)cJSON_GetArraySize(md) : 0;
    st->tensors = calloc(n_entries ? n_entries : 1, sizeof *st->tensors);
    st->by_name = calloc(n_entries ? n_entries : 1, sizeof *st->by_name);
    st->meta = calloc(n_meta ? n_meta : 1, sizeof *st->meta);
    if (!st->tensors || !st->by_name || !st->meta)
        return daecl_err_set(err, DAECL_ENOMEM,
                             "checkpoint %s: out of memory for its %zu header entries", name,
                             n_entries);

    const cJSON *e;
    cJSON_ArrayForEach(e, md) {
        if (!cJSON_IsString(e)) {
            snprintf(what, sizeof what, "metadata value of '%s' is not a string", e->string);
            return corrupt(err, name, what);
        }
        st->meta[st->n_meta++] = (meta_pair){e->string, e->valuestring};
    }
    cJSON_ArrayForEach(e, st->root) {
        if (e == md)
            continue;
        if (strcmp(e->string, "__metadata__") == 0)
            return corrupt(err, name, "\"__metadata__\" appears twice");
        tensor *t = &st->tensors[st->n_tensors];
        t->name = e->string;
        int rc = parse_entry(e, n_data, name, t, err);
        if (rc)
            return rc;
        st->by_name[st->n_tensors++] = t;
    }

    /* Duplicate keys: JSON allows them, but which one would we load? */
    qsort(st->meta, st->n_meta, sizeof *st->meta, meta_cmp);
    for (size_t i = 1; i < st->n_meta; i++)
        if (strcmp(st->meta[i - 1].key, st->meta[i].key) == 0) {
            snprintf(what, sizeof what, "metadata key '%s' appears twice", st->meta[i].key);
            return corrupt(err, name, what);
        }
    qsort(st->by_name, st->n_tensors, sizeof *st->by_name, by_name_cmp);
    for (size_t i = 1; i < st->n_tensors; i++)
        if (strcmp(st->by_name[i - 1]->name, st->by_name[i]->name) == 0) {
            snprintf(what, sizeof what, "tensor '%s' appears twice in the header",
                     st->by_name[i]->name);
            return corrupt(err, name, what);
        }

    /* Overlap: sort by first byte (by_name is re-sorted below); O(n log n). */
    qsort(st->by_name, st->n_tensors, sizeof *st->by_name, by_begin_cmp);
    const tensor *prev = NULL;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const tensor *t = st->by_name[i];
        if (t->begin == t->end)
            continue; /* empty tensors hold no bytes */
        if (prev && t->begin < prev->end) {
            snprintf(what, sizeof what,
                     "tensors '%s' (bytes %llu..%llu) and '%s' (bytes %llu..%llu) overlap",
                     prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end,
                     t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
            return corrupt(err, name, what);
        }
        if (!prev || t->end > prev->end)
            prev = t;
    }
    qsort(st->by_name, st->n_tensors, sizeof *st->by_name, by_name_cmp);

    /* Floats in place when aligned (always, for files padded like ours);
     * otherwise one copy of that tensor. */
    for (size_t i = 0; i < st->n_tensors; i++) {
        tensor *t = &st->tensors[i];
        if (t->dtype != DTYPE_F32)
            continue;
        size_t bytes = (size_t)(t->end - t->begin);
        const unsigned char *p = data + t->begin;
        if (bytes == 0)
            t->f32 = (const float *)st->buf; /* malloc-aligned, never read */
        else if ((uintptr_t)p % _Alignof(float) == 0)
            t->f32 = (const float *)p;
        else {
            t->copy = malloc(bytes);
            if (!t->copy)
                return daecl_err_set(err, DAECL_ENOMEM,
                                     "checkpoint %s: out of memory copying tensor '%s'", name,
                                     t->name);
            memcpy(t->copy, p, bytes);
            t->f32 = t->copy;
        }
    }
    return 0;
}

/* Takes ownership of buf (malloc'd, n bytes) whatever happens. */
static int parse_buffer(unsigned char *buf, size_t n, const char *name, daecl_safetensors **out,
                        daecl_err *err)
{
    daecl_safetensors *st = calloc(1, sizeof *st);
    if (!st) {
        free(buf);
        return daecl_err_set(err, DAECL_ENOMEM, "checkpoint %s: out of memory", name);
    }
    st->buf = buf;
    int rc = parse_owned(st, n, name, err);
    if (rc)
        goto fail;
    *out = st;
    return 0;
fail:
    daecl_safetensors_destroy(st);
    return rc;
}

int daecl_safetensors_parse(const void *bytes, size_t n_bytes, const char *name,
                            daecl_safetensors **out, daecl_err *err)
{
    *out = NULL;
    if (!name)
        name = "(memory)";
    if (n_bytes > 0 && !bytes)
        return daecl_err_set(err, DAECL_EINVAL, "checkpoint %s: %zu bytes but no buffer", name,
                             n_bytes);
    /* A copy, so the tensors outlive the caller's bytes and floats align. */
    unsigned char *buf = malloc(n_bytes ? n_bytes : 1);
    if (!buf)
        return daecl_err_set(err, DAECL_ENOMEM, "checkpoint %s: out of memory for %zu bytes", name,
                             n_bytes);
    if (n_bytes)
        memcpy(buf, bytes, n_bytes);
    return parse_buffer(buf, n_bytes, name, out, err);
}

int daecl_safetensors_read(const char *path, daecl_safetensors **out, daecl_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return daecl_err_set(
                err, DAECL_ENOENT,
                "cannot read checkpoint %s: no such file; check the path or the run folder", path);
        return daecl_err_set(err, DAECL_EIO, "cannot read checkpoint %s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return daecl_err_set(err, DAECL_EIO, "cannot read checkpoint %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return daecl_err_set(err, DAECL_EIO,
                             "cannot read checkpoint %s: it is not a regular file; check the path",
                             path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX - 1) {
        close(fd);
        return daecl_err_set(err, DAECL_ENOMEM,
                             "cannot read checkpoint %s: it is too large for memory", path);
    }
    size_t n = (size_t)sb.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return daecl_err_set(err, DAECL_ENOMEM,
                             "cannot read checkpoint %s: out of memory for %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : 0;
            close(fd);
            free(buf);
            return daecl_err_set(
                err, DAECL_EIO, "cannot read checkpoint %s: %s", path,
                e ? strerror(e) : "the file shrank while it was read; is a run still writing it?");
        }
        got += (size_t)k;
    }
    close(fd);
    return parse_buffer(buf, n, path, out, err);
}

void daecl_safetensors_destroy(daecl_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].copy);
    free(st->tensors);
    free(st->by_name);
    free(st->meta);
    cJSON_Delete(st->root);
    free(st->buf);
    free(st);
}

/* ---------------------------------------------------------------- lookups */

const float *daecl_safetensors_get(const daecl_safetensors *st, const char *name, uint32_t *ndim,
                                   uint64_t shape[DAECL_ST_MAX_DIMS])
{
    if (!st || !name)
        return NULL;
    tensor key = {.name = name};
    const tensor *pkey = &key;
    tensor *const *hit =
        bsearch(&pkey, st->by_name, st->n_tensors, sizeof *st->by_name, by_name_cmp);
    if (!hit || (*hit)->dtype != DTYPE_F32)
        return NULL;
    if (ndim)
        *ndim = (*hit)->ndim;
    if (shape)
        for (uint32_t d = 0; d < DAECL_ST_MAX_DIMS; d++)
            shape[d] = d < (*hit)->ndim ? (*hit)->shape[d] : 0;
    return (*hit)->f32;
}

const char *daecl_safetensors_meta(const daecl_safetensors *st, const char *key)
{
    if (!st || !key)
        return NULL;
    meta_pair k = {.key = key};
    const meta_pair *hit = bsearch(&k, st->meta, st->n_meta, sizeof *st->meta, meta_cmp);
    return hit ? hit->value : NULL;
}

size_t daecl_safetensors_count(const daecl_safetensors *st)
{
    return st ? st->n_tensors : 0;
}

const char *daecl_safetensors_name_at(const daecl_safetensors *st, size_t i)
{
    return st && i < st->n_tensors ? st->tensors[i].name : NULL;
}
