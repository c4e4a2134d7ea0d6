/* daecl — the pictures of a run folder: filters.png (first-layer weights),
 * reconstructions.png (clean, corrupted and reconstructed test examples)
 * and curves.png (train and test NLL per epoch from metrics.jsonl). Written
 * at the end of `daecl train` and by `daecl plot`. */
#ifndef DAECL_CORE_RUN_PICTURES_H
#define DAECL_CORE_RUN_PICTURES_H

#include "core/run.h"

/* How many examples reconstructions.png shows. */
#define DAECL_RUN_PICTURES_EXAMPLES 10

/* Writes the pictures of run r into run_dir from r's current parameters
 * (on the device) and run_dir/metrics.jsonl. Filters and reconstructions
 * need data with an image shape (core/draw.h); otherwise only curves.png
 * is written and the log says why. */
int daecl_run_pictures(daecl_run *r, const char *run_dir, daecl_err *err);

/* `daecl plot RUN_DIR`: opens the run from its config.yaml (with overrides)
 * and checkpoint, then writes its pictures. */
int daecl_run_pictures_redraw(const char *run_dir, const char *const *overrides, size_t n_overrides,
                   daecl_err *err);

#endif
