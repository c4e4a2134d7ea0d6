/* daecl — the pictures of a run folder. */
#include "core/run_pictures.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/checkpoint.h"
#include "core/draw.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/stack.h"
#include "daecl/plugin.h"

/* The first n rows of `data`: clean, corrupted (the evaluation's noise) and
 * reconstructed means, read back to the host. */
static int reconstruct(daecl_run *r, daecl_feeder *data, size_t n, float *clean, float *noisy,
                       float *recon, daecl_err *err)
{
    daecl_session *s = r->s;
    size_t dim = data->ds->dim;
    daecl_buf *mean = NULL;
    daecl_slice x, xt = daecl_at(r->g->input, 0);
    daecl_noise_key key = {.seed = r->cfg->seed, .stream = DAECL_STREAM_EVAL_CORRUPTION};
    daecl_shape shape;
    daecl_dataset_shape(data->ds, &shape);
    int rc;
    if ((rc = daecl_session_alloc(s, n * dim, "reconstructions", &mean, err)))
        return rc;
    if (!(rc = daecl_feeder_sequential(data, err)) &&
        !(rc = daecl_feeder_batch(data, 0, n, &x, err)) &&
        !(rc = daecl_session_corrupt(s, x, xt, n, dim, &shape, &key, err)) &&
        !(rc = daecl_graph_forward(r->g, xt, n, UINT32_MAX, err)) &&
        !(rc = daecl_session_mean(s, daecl_graph_layer_out(r->g, r->model.n_layers - 1), n, dim,
                                  daecl_at(mean, 0), err)) &&
        !(rc = daecl_session_read(s, x, clean, n * dim, err)) &&
        !(rc = daecl_session_read(s, xt, noisy, n * dim, err)))
        rc = daecl_session_read(s, daecl_at(mean, 0), recon, n * dim, err);
    daecl_session_free(s, mean);
    return rc;
}

int daecl_run_decode(daecl_run *r, const float *x, size_t n, float *mean, daecl_err *err)
{
    daecl_session *s = r->s;
    size_t dim = r->model.dim, batch = r->g->batch_max;
    daecl_buf *out = NULL;
    int rc = daecl_session_alloc(s, batch * dim, "decoded means", &out, err);
    for (size_t i = 0; i < n && !rc; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        if (!(rc = s->be->write(s->ctx, r->g->input, 0, x + i * dim, m * dim * sizeof *x, err)) &&
            !(rc = daecl_graph_forward(r->g, daecl_at(r->g->input, 0), m, UINT32_MAX, err)) &&
            !(rc = daecl_session_mean(s, daecl_graph_layer_out(r->g, r->model.n_layers - 1), m,
                                      dim, daecl_at(out, 0), err)))
            rc = daecl_session_read(s, daecl_at(out, 0), mean + i * dim, m * dim, err);
    }
    daecl_session_free(s, out);
    return rc;
}

static int tiles(daecl_run *r, const char *run_dir, daecl_err *err)
{
    const daecl_dataset *ds = r->train;
    uint32_t h, w;
    if (!daecl_draw_image_shape(ds->shape, ds->n_shape, &h, &w)) {
        daecl_log(DAECL_LOG_INFO, NULL, "no filters.png or reconstructions.png: the data's "
                  "examples are not gray images");
        return 0;
    }
    char path[PATH_MAX];
    int rc;
    if ((rc = daecl_graph_get_params(r->g, r->params, err)) ||
        (rc = daecl_path_join(path, sizeof path, run_dir, "filters.png", err)) ||
        (rc = daecl_draw_filters(path, r->params + r->model.layers[0].w_off,
                                    r->model.layers[0].out, h, w, 100, err)))
        return rc;
    daecl_feeder *data = r->test_feed ? r->test_feed : r->train_feed;
    size_t n = data->ds->n_rows < DAECL_RUN_PICTURES_EXAMPLES ? data->ds->n_rows
                                                              : DAECL_RUN_PICTURES_EXAMPLES;
    if (n > r->g->batch_max)
        n = r->g->batch_max;
    size_t count = n * data->ds->dim;
    float *clean = malloc(count * sizeof *clean), *noisy = malloc(count * sizeof *noisy);
    float *recon = malloc(count * sizeof *recon);
    if (!clean || !noisy || !recon)
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing reconstructions");
    else if (!(rc = reconstruct(r, data, n, clean, noisy, recon, err)) &&
             !(rc = daecl_path_join(path, sizeof path, run_dir, "reconstructions.png", err))) {
        float lo = data->ds->min, hi = data->ds->max > lo ? data->ds->max : lo + 1;
        rc = daecl_draw_reconstructions(path, clean, noisy, recon, (uint32_t)n, h, w, lo, hi,
                                           err);
    }
    free(clean);
    free(noisy);
    free(recon);
    return rc;
}

int daecl_run_stage_filters(daecl_run *r, const char *run_dir, uint32_t k, daecl_err *err)
{
    const daecl_dataset *ds = r->train;
    const daecl_model *m = &r->model;
    uint32_t h, w;
    if (!daecl_draw_image_shape(ds->shape, ds->n_shape, &h, &w) || k >= m->n_encoder)
        return 0;
    int rc = daecl_run_fetch_params(r, err);
    if (rc)
        return rc;
    /* Rows 0..n of W_k, then through each layer below: f (n, in_j) times
     * W_{j} (in_j... ) down to the input, in double. */
    uint32_t n = m->layers[k].out < 100 ? m->layers[k].out : 100;
    size_t width = m->layers[k].in;
    double *f = malloc((size_t)n * width * sizeof *f);
    if (!f)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing stage %u's filters", k + 1);
    const float *wk = r->params + m->layers[k].w_off;
    for (size_t i = 0; i < (size_t)n * width; i++)
        f[i] = wk[i];
    for (uint32_t j = k; j-- > 0;) {
        const daecl_dense *ly = &m->layers[j]; /* W_j (out_j = width, in_j) */
        const float *wj = r->params + ly->w_off;
        double *g = calloc((size_t)n * ly->in, sizeof *g);
        if (!g) {
            free(f);
            return daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing stage %u's filters",
                                 k + 1);
        }
        for (uint32_t u = 0; u < n; u++)
            for (size_t o = 0; o < width; o++) {
                double a = f[(size_t)u * width + o];
                const float *row = wj + o * ly->in;
                for (size_t c = 0; c < ly->in; c++)
                    g[(size_t)u * ly->in + c] += a * row[c];
            }
        free(f);
        f = g;
        width = ly->in;
    }
    float *img = malloc((size_t)n * width * sizeof *img);
    char path[PATH_MAX], name[64];
    snprintf(name, sizeof name, "stage-%u-filters.png", k + 1);
    if (!img)
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing stage %u's filters", k + 1);
    else {
        for (size_t i = 0; i < (size_t)n * width; i++)
            img[i] = (float)f[i];
        if (!(rc = daecl_path_join(path, sizeof path, run_dir, name, err)))
            rc = daecl_draw_filters(path, img, n, h, w, 100, err);
    }
    free(img);
    free(f);
    return rc;
}

int daecl_run_stage_reconstructions(daecl_run *r, const char *run_dir, uint32_t k,
                                    daecl_err *err)
{
    const daecl_dataset *ds = r->train;
    daecl_stack *st = r->stack;
    uint32_t h, w;
    if (!st || !daecl_draw_image_shape(ds->shape, ds->n_shape, &h, &w) ||
        k >= r->model.n_encoder)
        return 0;
    daecl_session *s = r->s;
    daecl_feeder *data = r->test_feed ? r->test_feed : r->train_feed;
    size_t n = data->ds->n_rows < DAECL_RUN_PICTURES_EXAMPLES ? data->ds->n_rows
                                                              : DAECL_RUN_PICTURES_EXAMPLES;
    if (n > r->g->batch_max)
        n = r->g->batch_max;
    size_t dim = data->ds->dim;
    uint32_t n_rows = k + 2; /* clean, then depths 1..k+1 */
    float *img = malloc((size_t)n_rows * n * dim * sizeof *img);
    const float *rows[DAECL_MAX_LAYERS + 1];
    char label[DAECL_MAX_LAYERS + 1][32];
    const char *labels[DAECL_MAX_LAYERS + 1];
    daecl_buf *mean = NULL;
    daecl_slice x;
    int rc = img ? 0 : daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing stage %u's "
                                     "reconstructions", k + 1);
    /* The deep graph holds the stage under way's parameters after a sync
     * (no host copy is needed). The output layer decodes under the
     * likelihood it was trained with (stage 1's); the stage under way's
     * binding comes back after. */
    if (!rc && !(rc = daecl_stack_sync(st, err)) &&
        !(rc = daecl_session_rebind(s, daecl_stack_config(st, 0), err)) &&
        !(rc = daecl_session_alloc(s, n * dim, "reconstructions", &mean, err)) &&
        !(rc = daecl_feeder_sequential(data, err)) &&
        !(rc = daecl_feeder_batch(data, 0, n, &x, err)))
        rc = daecl_session_read(s, x, img, n * dim, err);
    for (uint32_t d = 1; !rc && d <= k + 1; d++)
        if (!(rc = daecl_graph_forward_depth(r->g, x, n, d, err)) &&
            !(rc = daecl_session_mean(s, daecl_graph_layer_out(r->g, r->model.n_layers - 1), n,
                                      dim, daecl_at(mean, 0), err)))
            rc = daecl_session_read(s, daecl_at(mean, 0), img + (size_t)d * n * dim, n * dim,
                                    err);
    daecl_session_free(s, mean);
    if (!rc)
        rc = daecl_session_rebind(s, daecl_stack_config(st, k), err);
    char path[PATH_MAX], name[64];
    snprintf(name, sizeof name, "stage-%u-reconstructions.png", k + 1);
    if (!rc && !(rc = daecl_path_join(path, sizeof path, run_dir, name, err))) {
        for (uint32_t i = 0; i < n_rows; i++) {
            rows[i] = img + (size_t)i * n * dim;
            if (i == 0)
                snprintf(label[i], sizeof label[i], "clean");
            else
                snprintf(label[i], sizeof label[i], "depth %u", i);
            labels[i] = label[i];
        }
        float lo = data->ds->min, hi = data->ds->max > lo ? data->ds->max : lo + 1;
        rc = daecl_draw_rows(path, rows, labels, n_rows, (uint32_t)n, h, w, lo, hi, err);
    }
    free(img);
    return rc;
}

/* curves.png from the "epoch" lines of metrics.jsonl: series[k][i] is
 * epoch, train NLL, test NLL clean and corrupted of line i (NaN when absent:
 * epoch 0 has no train NLL). */
static int curves(daecl_run *r, const char *run_dir, daecl_err *err)
{
    static const char *const keys[4] = {"epoch", "train_nll", "test_nll_clean",
                                         "test_nll_corrupted"};
    char path[PATH_MAX];
    int rc = daecl_path_join(path, sizeof path, run_dir, "metrics.jsonl", err);
    if (rc)
        return rc;
    double *series[4] = {NULL, NULL, NULL, NULL};
    size_t n = 0, cap = 0;
    FILE *f = fopen(path, "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *type = o ? cJSON_GetObjectItemCaseSensitive(o, "type") : NULL;
        if (cJSON_IsString(type) && strcmp(type->valuestring, "epoch") == 0) {
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                for (int k = 0; k < 4 && !rc; k++) {
                    double *g = realloc(series[k], cap * sizeof *g);
                    if (g)
                        series[k] = g;
                    else
                        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing curves");
                }
            }
            for (int k = 0; k < 4 && !rc; k++) {
                const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
                series[k][n] = cJSON_IsNumber(x) ? x->valuedouble : NAN;
            }
            n += !rc;
        }
        cJSON_Delete(o);
        if (rc)
            break;
    }
    if (f)
        fclose(f);
    char title[256];
    snprintf(title, sizeof title, "%s: NLL per epoch (nats per example)", r->cfg->name);
    if (!rc && !(rc = daecl_path_join(path, sizeof path, run_dir, "curves.png", err)))
        rc = daecl_draw_curves(path, title, series[0], series[1], r->test ? series[2] : NULL,
                                  r->test ? series[3] : NULL, n, err);
    for (int k = 0; k < 4; k++)
        free(series[k]);
    return rc;
}

int daecl_run_pictures(daecl_run *r, const char *run_dir, daecl_err *err)
{
    int rc = tiles(r, run_dir, err);
    if (!rc)
        rc = curves(r, run_dir, err);
    return rc;
}

/* `daecl plot`: opens the trained run in run_dir, draws with `draw`, closes. */
static int redraw(const char *run_dir, const char *const *overrides, size_t n_overrides,
                  int (*draw)(daecl_run *, const char *, daecl_err *), daecl_err *err)
{
    daecl_trained_opts o = {.run_dir = run_dir, .overrides = overrides,
                            .n_overrides = n_overrides, .command = "plot"};
    daecl_run r;
    daecl_ckpt_state st;
    int rc = daecl_run_open_trained(&r, &o, &st, err);
    if (!rc)
        rc = draw(&r, run_dir, err);
    daecl_run_close(&r);
    return rc;
}

int daecl_run_pictures_redraw(const char *run_dir, const char *const *overrides, size_t n_overrides,
                   daecl_err *err)
{
    return redraw(run_dir, overrides, n_overrides, daecl_run_pictures, err);
}

/* Per-axis range of the n rows of x (n, 2). */
static void range2(const float *x, size_t n, double lo[2], double hi[2])
{
    lo[0] = lo[1] = INFINITY;
    hi[0] = hi[1] = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 2; a++)
            if (isfinite(x[2 * i + a])) {
                lo[a] = fmin(lo[a], x[2 * i + a]);
                hi[a] = fmax(hi[a], x[2 * i + a]);
            }
    for (int a = 0; a < 2; a++) {
        if (!(lo[a] <= hi[a])) /* no finite value */
            lo[a] = hi[a] = 0;
        double pad = hi[a] > lo[a] ? 0.05 * (hi[a] - lo[a]) : 1;
        lo[a] -= pad;
        hi[a] += pad;
    }
}

/* The refusal of a run whose examples are not 2-D, from the data or from
 * the checkpoint's record of them. */
static int refuse_dim(const char *run_dir, unsigned long long dim, daecl_err *err)
{
    return daecl_err_set(err, DAECL_EUSAGE, "cannot draw field.png for %s: its data have %llu "
                         "values per example and --field needs 2-D data; run `daecl plot %s` "
                         "without --field for its other pictures, or train on 2-D data (a toy: "
                         "source, docs/generative.md)", run_dir, dim, run_dir);
}

int daecl_run_field(daecl_run *r, const char *run_dir, daecl_err *err)
{
    const daecl_dataset *ds = r->train;
    if (ds->dim != 2)
        return refuse_dim(run_dir, ds->dim, err);
    const size_t G = DAECL_RUN_FIELD_GRID, n_grid = G * G;
    size_t n_pts = ds->n_rows < DAECL_RUN_FIELD_POINTS ? ds->n_rows : DAECL_RUN_FIELD_POINTS;
    double lo[2], hi[2];
    range2(ds->x, ds->n_rows, lo, hi);
    float *grid = malloc(n_grid * 2 * sizeof *grid), *vec = malloc(n_grid * 2 * sizeof *vec);
    int rc = 0;
    char path[PATH_MAX];
    if (!grid || !vec) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing field.png");
        goto done;
    }
    for (size_t j = 0; j < G; j++)
        for (size_t i = 0; i < G; i++) {
            grid[2 * (j * G + i)] = (float)(lo[0] + (hi[0] - lo[0]) * (i + 0.5) / G);
            grid[2 * (j * G + i) + 1] = (float)(lo[1] + (hi[1] - lo[1]) * (j + 0.5) / G);
        }
    if ((rc = daecl_run_decode(r, grid, n_grid, vec, err)) ||
        (rc = daecl_path_join(path, sizeof path, run_dir, "field.png", err)))
        goto done;
    for (size_t i = 0; i < 2 * n_grid; i++)
        vec[i] -= grid[i]; /* r(x) - x */
    char title[256];
    snprintf(title, sizeof title, "%s: r(x) - x", r->cfg->name);
    rc = daecl_draw_field(path, title, ds->x, n_pts, grid, vec, n_grid, lo[0], hi[0], lo[1], hi[1],
                          0.9 * (DAECL_PICTURE_FIELD_W - 48.0) / G, err);
done:
    free(grid);
    free(vec);
    return rc;
}

int daecl_run_field_redraw(const char *run_dir, const char *const *overrides, size_t n_overrides,
                           daecl_err *err)
{
    /* The checkpoint records the model's width, the data's values per
     * example (daecl.dim): a run that is not 2-D is refused from its header
     * before the data load and the device opens. Any trouble reading it
     * (no checkpoint, not a run folder, a checkpoint older than daecl.dim)
     * is left for the opening to report in its own words. */
    static const char *const key[1] = {"daecl.dim"};
    char path[PATH_MAX], *dim = NULL;
    daecl_err quiet = {0};
    if (!daecl_path_join(path, sizeof path, run_dir, "checkpoint.safetensors", &quiet) &&
        !daecl_checkpoint_meta(path, key, 1, &dim, &quiet) && dim) {
        char *end;
        unsigned long long d = strtoull(dim, &end, 10);
        int bad = !*end && *dim && d != 2;
        free(dim);
        if (bad)
            return refuse_dim(run_dir, d, err);
    }
    return redraw(run_dir, overrides, n_overrides, daecl_run_field, err);
}
