/* daecl — the pictures of a run folder: filters.png (first-layer weights),
 * reconstructions.png (clean, corrupted and reconstructed test examples)
 * and curves.png (train and test NLL per epoch from metrics.jsonl), written
 * at the end of `daecl train` and by `daecl plot`; field.png (r(x) - x of a
 * run on 2-D data) by `daecl plot --field`. */
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

/* stage-K-filters.png for a stack's stage K = k + 1 (core/stack.h): the
 * first 100 units of encoder layer k seen in input space, the rows of
 * W_k W_{k-1} ... W_0 (the layers' weights multiplied through, their
 * nonlinearities left out, as Erhan et al. 2009 and Lee et al. 2008 show
 * deeper units), from r's current parameters. Data without an image shape
 * draw nothing. */
int daecl_run_stage_filters(daecl_run *r, const char *run_dir, uint32_t k, daecl_err *err);

/* stage-K-reconstructions.png for a stack's stage K = k + 1: test
 * examples (training ones without a test set), clean, then their mean
 * reconstructions through depth 1, 2, ..., K, the partial stacks of
 * encoder layers 0..d-1 and their mirrors (daecl_graph_forward_depth),
 * from clean inputs: what each depth's code keeps. The output layer
 * decodes under stage 1's likelihood. Data without an image shape draw
 * nothing. */
int daecl_run_stage_reconstructions(daecl_run *r, const char *run_dir, uint32_t k,
                                    daecl_err *err);

/* `daecl plot RUN_DIR`: opens the run from its config.yaml (with overrides)
 * and checkpoint, then writes its pictures. */
int daecl_run_pictures_redraw(const char *run_dir, const char *const *overrides, size_t n_overrides,
                   daecl_err *err);

/* The decoder's mean r(x) of the forward pass on each of the n rows of the
 * host array x (n, D), uncorrupted, into the host array mean (n, D): in
 * batches of the graph's batch_max rows through g->input, so O(n) work
 * and O(batch_max * D) device memory. */
int daecl_run_decode(daecl_run *r, const float *x, size_t n, float *mean, daecl_err *err);

/* field.png: for a run on 2-D data, the field r(x) - x of the decoder's
 * mean on a FIELD_GRID x FIELD_GRID grid over the training data's range
 * (5% margin), as arrows over up to FIELD_POINTS training points as faint
 * dots (core/draw.h, daecl_draw_field). Data of another dimension are
 * refused with DAECL_EUSAGE. */
#define DAECL_RUN_FIELD_GRID 25u
#define DAECL_RUN_FIELD_POINTS 5000u
int daecl_run_field(daecl_run *r, const char *run_dir, daecl_err *err);

/* `daecl plot RUN_DIR --field`: opens the run as daecl_run_pictures_redraw
 * does and writes only field.png. A run whose checkpoint records data that
 * are not 2-D (daecl.dim) is refused before its data load or a device
 * opens. */
int daecl_run_field_redraw(const char *run_dir, const char *const *overrides, size_t n_overrides,
                           daecl_err *err);

#endif
