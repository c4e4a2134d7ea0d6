/* daecl fuzzing — the data-set harness that fuzz_idx.c and fuzz_npy.c share
 * (they differ in their seeds and dictionaries: the bytes are a whole file,
 * recognised by content exactly as daecl_dataset_load recognises it).
 *
 * One input runs four ways, and the ways must agree:
 *   1. daecl_dataset_parse from memory, all rows;
 *   2. the same with a row limit of 1, which succeeds whenever 1 did, with
 *      the same first row;
 *   3. daecl_dataset_load from a file (memfd): the file reader and its
 *      gzip feeding in 256 KiB chunks must give 1's status and values;
 *   4. daecl_labels_load from that file;
 *   5. (inputs that are not gzip already) the input gzip'd here and parsed:
 *      the gzip path must load what the plain path loads, and refuse what
 *      it refuses, with the same status (ENOMEM allowed for EDATA: only the
 *      plain path can tell a too-short file before its size bound).
 * A loaded data set must hold finite values within [min, max], uint8 data
 * within [0, 1]; labels must lie in [0, n_classes). max_bytes stays at its
 * default: headers that lie about their sizes must be refused before any
 * allocation (the fuzzer runs with -malloc_limit_mb to catch one that is not). */
#ifndef DAECL_FUZZ_DATA_H
#define DAECL_FUZZ_DATA_H

#include <math.h>
#include <unistd.h>

#include <zlib.h>

#include "core/data.h"
#include "fuzz.h"

/* data as one gzip member (level 1: speed), malloc'd; NULL on failure. */
static uint8_t *gzip_bytes(const uint8_t *data, size_t size, size_t *n_out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&zs, (uLong)size) + 32;
    uint8_t *out = malloc(cap);
    if (out) {
        zs.next_in = (Bytef *)data;
        zs.avail_in = (uInt)size;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
            free(out);
            out = NULL;
        } else {
            *n_out = cap - zs.avail_out;
        }
    }
    deflateEnd(&zs);
    return out;
}

static void check_dataset(const daecl_dataset *ds, const char *what)
{
    FUZZ_CHECK(ds->n_rows > 0 && ds->dim > 0 && ds->x, "%s: empty data set accepted", what);
    size_t dim = 1;
    for (uint32_t i = 0; i < ds->n_shape; i++)
        dim *= ds->shape[i];
    FUZZ_CHECK(ds->n_shape >= 1 && ds->n_shape <= 4 && dim == ds->dim,
               "%s: shape of %u dimensions does not multiply to dim %zu", what, ds->n_shape,
               ds->dim);
    FUZZ_CHECK(ds->min <= ds->max, "%s: min %g above max %g", what, (double)ds->min,
               (double)ds->max);
    if (ds->from_uint8)
        FUZZ_CHECK(ds->min >= 0.0f && ds->max <= 1.0f, "%s: uint8 data outside [0, 1]", what);
    for (size_t i = 0; i < ds->n_rows * ds->dim; i++)
        FUZZ_CHECK(isfinite(ds->x[i]) && ds->x[i] >= ds->min && ds->x[i] <= ds->max,
                   "%s: value %zu (%g) is not finite or outside [min, max]", what, i,
                   (double)ds->x[i]);
}

static int fuzz_data_one(const uint8_t *data, size_t size)
{
    daecl_err e_all = {0}, e_one = {0}, e_file = {0}, e_lab = {0};
    daecl_dataset *all = NULL, *one = NULL, *file = NULL;
    daecl_labels *lab = NULL;

    int rc_all = daecl_dataset_parse(data, size, "fuzz.bin", 0, 0, &all, &e_all);
    if (rc_all) {
        fuzz_check_err(rc_all, &e_all, "daecl_dataset_parse");
        FUZZ_CHECK(!all, "daecl_dataset_parse failed but set its output");
    } else {
        check_dataset(all, "parse, all rows");
    }

    FUZZ_SAY("%s", rc_all ? e_all.msg : "loaded");
    int rc_one = daecl_dataset_parse(data, size, "fuzz.bin", 1, 0, &one, &e_one);
    if (rc_one)
        fuzz_check_err(rc_one, &e_one, "daecl_dataset_parse with limit 1");
    else
        check_dataset(one, "parse, one row");
    if (!rc_all) {
        FUZZ_CHECK(!rc_one, "all rows load but one row fails: %s", e_one.msg);
        FUZZ_CHECK(one->n_rows == 1 && one->dim == all->dim &&
                       memcmp(one->x, all->x, all->dim * sizeof(float)) == 0,
                   "the first row differs between limit 0 and limit 1");
    }

    size_t n_gz = 0;
    uint8_t *gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b ? NULL
                                                                : gzip_bytes(data, size, &n_gz);
    if (gz) {
        daecl_err e_gz = {0};
        daecl_dataset *zds = NULL;
        int rc_gz = daecl_dataset_parse(gz, n_gz, "fuzz.bin.gz", 0, 0, &zds, &e_gz);
        if (rc_gz)
            fuzz_check_err(rc_gz, &e_gz, "daecl_dataset_parse of gzip'd bytes");
        FUZZ_CHECK(rc_gz == rc_all || (rc_gz == DAECL_ENOMEM && rc_all == DAECL_EDATA),
                   "plain and gzip'd bytes disagree: %d (%s) vs %d (%s)", rc_all, e_all.msg, rc_gz,
                   e_gz.msg);
        if (!rc_gz)
            FUZZ_CHECK(zds->n_rows == all->n_rows && zds->dim == all->dim &&
                           memcmp(zds->x, all->x, all->n_rows * all->dim * sizeof(float)) == 0,
                       "plain and gzip'd bytes load different values");
        daecl_dataset_destroy(zds);
        free(gz);
    }

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd >= 0) {
        int rc_file = daecl_dataset_load(path, 0, 0, &file, &e_file);
        if (rc_file)
            fuzz_check_err(rc_file, &e_file, "daecl_dataset_load");
        FUZZ_CHECK(rc_file == rc_all, "memory and file readers disagree: %d (%s) vs %d (%s)",
                   rc_all, e_all.msg, rc_file, e_file.msg);
        if (!rc_file)
            FUZZ_CHECK(file->n_rows == all->n_rows && file->dim == all->dim &&
                           file->min == all->min && file->max == all->max &&
                           memcmp(file->x, all->x, all->n_rows * all->dim * sizeof(float)) == 0,
                       "memory and file readers load different values");

        int rc_lab = daecl_labels_load(path, 0, 0, &lab, &e_lab);
        FUZZ_SAY("labels: %s", rc_lab ? e_lab.msg : "loaded");
        if (rc_lab) {
            fuzz_check_err(rc_lab, &e_lab, "daecl_labels_load");
        } else {
            FUZZ_CHECK(lab->n > 0 && lab->n_classes >= 1 && lab->n_classes <= 65536,
                       "labels: %zu labels, %u classes", lab->n, lab->n_classes);
            for (size_t i = 0; i < lab->n; i++)
                FUZZ_CHECK(lab->y[i] >= 0 && (uint32_t)lab->y[i] < lab->n_classes,
                           "label %zu is %d with %u classes", i, lab->y[i], lab->n_classes);
        }
        close(fd);
    }
    daecl_dataset_destroy(all);
    daecl_dataset_destroy(one);
    daecl_dataset_destroy(file);
    daecl_labels_destroy(lab);
    return 0;
}

#endif
