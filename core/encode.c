/* daecl — `daecl encode`: a trained run's encoder codes for a data set,
 * layer by layer, into .npy files. */
#include "core/encode.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fsutil.h"

int daecl_encode_layer(daecl_run *r, const daecl_dataset *ds, uint32_t layer, float *codes,
                       daecl_err *err)
{
    daecl_session *s = r->s;
    daecl_graph *g = r->g;
    size_t dim = ds->dim, units = r->model.layers[layer].out, b = g->batch_max;
    int rc = 0;
    /* Each batch goes through g->input, (batch_max, D), the corrupted
     * copy's buffer: here it holds the clean rows. */
    for (size_t first = 0; first < ds->n_rows && !rc; first += b) {
        size_t n = ds->n_rows - first < b ? ds->n_rows - first : b;
        if (!(rc = s->be->write(s->ctx, g->input, 0, ds->x + first * dim, n * dim * sizeof *codes,
                                err)) &&
            !(rc = daecl_graph_forward(g, daecl_at(g->input, 0), n, layer, err)))
            rc = daecl_session_read(s, daecl_graph_layer_out(g, layer), codes + first * units,
                                    n * units, err);
    }
    return rc;
}

/* The name in the files' names: "train", "test", or the data file's name
 * up to its first dot ("images.idx.gz": "images"); a name that is all
 * extension keeps its whole. */
static void data_name(const char *data, char *name, size_t n)
{
    const char *base = strrchr(data, '/');
    base = base ? base + 1 : data;
    size_t len = strcspn(base[0] == '.' ? base + 1 : base, ".") + (base[0] == '.');
    snprintf(name, n, "%.*s", (int)len, base);
    if (!name[0])
        snprintf(name, n, "data");
}

/* The data set asked for: one of the run's own, or *loaded (the caller
 * destroys it) from a file as training loads data files. */
static int pick_data(const daecl_encode_opts *o, daecl_run *r, const daecl_dataset **ds,
                     daecl_dataset **loaded, daecl_err *err)
{
    *loaded = NULL;
    if (!o->data) {
        *ds = r->test ? r->test : r->train;
        return 0;
    }
    if (strcmp(o->data, "train") == 0) {
        *ds = r->train;
        return 0;
    }
    if (strcmp(o->data, "valid") == 0) {
        if (!r->valid)
            return daecl_err_set(err, DAECL_EUSAGE, "run folder %s has no validation set "
                                 "(data.valid_fraction): give --data train, test or a data file",
                                 o->run_dir);
        *ds = r->valid;
        return 0;
    }
    if (strcmp(o->data, "test") == 0) {
        if (!r->test)
            return daecl_err_set(err, DAECL_EUSAGE, "run folder %s has no test set (data.test): "
                                 "give --data train or a data file", o->run_dir);
        *ds = r->test;
        return 0;
    }
    int rc = daecl_dataset_load(o->data, 0, daecl_data_max_bytes(r->cfg->data.max_mb), loaded,
                                err);
    /* a file the command line names that is missing or not data: usage */
    if (rc == DAECL_ENOENT || rc == DAECL_EDATA)
        rc = err->status = DAECL_EUSAGE;
    if (rc)
        return rc;
    *ds = *loaded;
    if ((*ds)->dim != r->model.dim)
        return daecl_err_set(err, DAECL_EUSAGE, "data file %s holds %zu values per example but "
                             "run %s's model takes %u: give data of the shape it was trained on",
                             o->data, (*ds)->dim, o->run_dir, r->model.dim);
    return 0;
}

/* out_dir/codes-<name>-layer<l>.npy from the codes of layer l. */
static int write_codes(const daecl_encode_opts *o, const char *name, uint32_t l,
                       const float *codes, size_t n_rows, size_t units, daecl_err *err)
{
    char file[256], path[PATH_MAX], header[DAECL_NPY_HEADER_MAX];
    snprintf(file, sizeof file, "codes-%s-layer%u.npy", name, l);
    int rc = daecl_path_join(path, sizeof path, o->out_dir ? o->out_dir : o->run_dir, file, err);
    if (rc)
        return rc;
    const size_t shape[2] = {n_rows, units};
    const void *parts[2] = {header, codes};
    size_t sizes[2] = {daecl_npy_f32_header(header, shape, 2), n_rows * units * sizeof *codes};
    if (!(rc = daecl_write_atomic(path, parts, sizes, 2, "codes file", err)) && o->wrote)
        o->wrote(o->ctx, path, n_rows, units, l);
    return rc;
}

int daecl_encode_run(const daecl_encode_opts *o, daecl_err *err)
{
    daecl_trained_opts to = {.run_dir = o->run_dir, .checkpoint = o->checkpoint,
                             .overrides = o->overrides, .n_overrides = o->n_overrides,
                             .command = "encode"};
    daecl_run r;
    daecl_ckpt_state st;
    daecl_dataset *loaded = NULL;
    const daecl_dataset *ds = NULL;
    float *codes = NULL;
    char ckpt[PATH_MAX], name[128];
    struct stat sb;
    int rc = 0;
    if (!o->checkpoint &&
        (rc = daecl_path_join(ckpt, sizeof ckpt, o->run_dir, "checkpoint.safetensors", err)))
        return rc;
    if (!o->checkpoint && stat(o->run_dir, &sb) == 0 && S_ISDIR(sb.st_mode) &&
        stat(ckpt, &sb) != 0)
        return daecl_err_set(err, DAECL_EUSAGE, "%s holds no checkpoint.safetensors: encoding "
                             "needs a trained run's folder (train or resume it first)",
                             o->run_dir);
    if ((rc = daecl_run_open_trained(&r, &to, &st, err)) ||
        (rc = pick_data(o, &r, &ds, &loaded, err)))
        goto done;
    uint32_t n_enc = r.model.n_encoder, l0 = o->has_layer ? o->layer : 0;
    if (o->has_layer && o->layer >= n_enc) {
        rc = daecl_err_set(err, DAECL_EUSAGE, "--layer %u is past the encoder of run %s, whose "
                           "layers are 0 to %u: give one of those", o->layer, o->run_dir,
                           n_enc - 1);
        goto done;
    }
    data_name(o->data ? o->data : ds == r.test ? "test" : "train", name, sizeof name);
    if ((rc = daecl_mkdirs(o->out_dir ? o->out_dir : o->run_dir, err)))
        goto done;
    for (uint32_t l = l0; l < (o->has_layer ? l0 + 1 : n_enc) && !rc; l++) {
        size_t units = r.model.layers[l].out;
        if (ds->n_rows > SIZE_MAX / sizeof *codes / units) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "the %zu x %zu codes of layer %u do not fit "
                               "in memory: encode fewer examples", ds->n_rows, units, l);
            break;
        }
        free(codes); /* one layer's codes at a time */
        if (!(codes = malloc(ds->n_rows * units * sizeof *codes + 1))) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for the %zu x %zu codes of "
                               "layer %u (%.0f MiB): encode fewer examples", ds->n_rows, units,
                               l, (double)(ds->n_rows * units * sizeof *codes) / (1 << 20));
            break;
        }
        if (!(rc = daecl_encode_layer(&r, ds, l, codes, err)))
            rc = write_codes(o, name, l, codes, ds->n_rows, units, err);
    }
done:
    free(codes);
    daecl_dataset_destroy(loaded);
    daecl_run_close(&r);
    return rc;
}
