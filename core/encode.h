/* daecl — `daecl encode`: the codes of a trained run's encoder layers for
 * a data set, as .npy files that scikit-learn, PyTorch or numpy read
 * directly. Codes are the layers' outputs after their activation on clean
 * (uncorrupted) inputs, as the linear probe reads them. */
#ifndef DAECL_CORE_ENCODE_H
#define DAECL_CORE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/run.h"

typedef struct daecl_encode_opts {
    const char *run_dir;    /* the trained run */
    const char *data;       /* a data file (IDX, plain or gzip, or .npy), "train",
                             * "valid" or "test" for the run's own sets; NULL: the
                             * run's test set, its training set when it has none */
    const char *out_dir;    /* NULL: run_dir */
    const char *checkpoint; /* NULL: run_dir/checkpoint.safetensors */
    const char *const *overrides;
    size_t n_overrides;
    int has_layer;          /* 0: every encoder layer */
    uint32_t layer;         /* with has_layer: only this one, 0-based */
    /* Called after each file is written, with its path, rows, units and
     * layer; may be NULL. */
    void (*wrote)(void *ctx, const char *path, size_t n_rows, size_t units, uint32_t layer);
    void *ctx;
} daecl_encode_opts;

/* Opens the trained run on its backend and writes, for each encoder layer
 * L asked for, out_dir/codes-<name>-layer<L>.npy: float32, C order, shape
 * (rows, units of L), row i the code of the data's example i. <name> is
 * train, test, or the data file's name up to its first dot. Each file is
 * written atomically. Memory: the run's own data sets (opening the run
 * loads them), the --data file, and one layer's codes (rows x units
 * floats) at a time; each layer is one pass over the data in batches of
 * the run's batch size. Data whose examples do not hold the model's input
 * dimension, and a layer past the encoder, are DAECL_EUSAGE. */
int daecl_encode_run(const daecl_encode_opts *o, daecl_err *err);

/* The codes of encoder layer `layer` (< r->model.n_encoder) for the rows of
 * ds (its dim: the model's input) on r's device, into the caller's host
 * array codes (ds->n_rows, units of the layer). */
int daecl_encode_layer(daecl_run *r, const daecl_dataset *ds, uint32_t layer, float *codes,
                       daecl_err *err);

#endif
