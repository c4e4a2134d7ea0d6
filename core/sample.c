/* daecl — the DAE's Markov chain: the step on device rows, and `daecl
 * sample` (start sets, clamping, kept states, samples.npy and pictures). */
#include "core/sample.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/draw.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/pngfile.h"
#include "core/run.h"
#include "daecl/philox.h"

/* At most this many chains (rows) and columns in chains.png, and chains in
 * samples.png: a picture stays a few MB at most. */
#define PICTURE_MAX_ROWS 20u
#define PICTURE_MAX_COLS 30u
#define PICTURE_MAX_SAMPLES 400u

int daecl_sample_step(daecl_graph *g, daecl_slice x, size_t n_rows, const daecl_shape *shape,
                      const daecl_noise_key *key, int use_mean, daecl_err *err)
{
    daecl_session *s = g->s;
    size_t dim = g->m->dim;
    daecl_slice xt = daecl_at(g->input, 0);
    daecl_noise_key dk = *key;
    dk.stream = DAECL_STREAM_SAMPLE;
    int rc;
    if ((rc = daecl_session_corrupt(s, x, xt, n_rows, dim, shape, key, err)) ||
        (rc = daecl_graph_forward(g, xt, n_rows, UINT32_MAX, err)))
        return rc;
    daecl_slice a = daecl_graph_layer_out(g, g->m->n_layers - 1);
    return use_mean ? daecl_session_mean(s, a, n_rows, dim, x, err)
                    : daecl_session_sample(s, a, n_rows, dim, &dk, x, err);
}

/* ---- the chains' start and clamp ------------------------------------------ */

/* start (chains, dim) on the host. Noise: Philox under (seed,
 * DAECL_STREAM_SAMPLE, epoch 1, position = chain), value j from block j / 4;
 * the chain's own draws use epoch 0, so the two never meet. */
static void fill_start(const daecl_sample_opts *o, const daecl_run *r, uint64_t seed, float *start,
                       size_t chains, size_t dim)
{
    const daecl_dataset *ds = r->test ? r->test : r->train;
    uint32_t word3 = daecl_noise_word3(DAECL_STREAM_SAMPLE, 0, 0);
    float lo = r->train->min, hi = r->train->max;
    for (size_t k = 0; k < chains; k++) {
        float *row = start + k * dim;
        if (o->start == DAECL_SAMPLE_START_TEST) {
            memcpy(row, ds->x + (k % ds->n_rows) * dim, dim * sizeof *row);
        } else if (o->start == DAECL_SAMPLE_START_CONST) {
            for (size_t j = 0; j < dim; j++)
                row[j] = o->start_value;
        } else {
            for (size_t j = 0; j < dim; j += 4) {
                daecl_u4 b = daecl_philox_block((uint32_t)seed, (uint32_t)(seed >> 32), word3, 1,
                                                (uint32_t)k, (uint32_t)(j / 4));
                uint32_t u[4] = {b.x, b.y, b.z, b.w};
                for (size_t i = 0; i < 4 && j + i < dim; i++)
                    row[j + i] = lo + (hi - lo) * daecl_u01(u[i]);
            }
        }
    }
}

/* A mask is a .npy of float32 or uint8: the data loader would take any
 * number type, but a float64 or int mask is more likely the wrong file. */
static int check_mask_dtype(const char *path, daecl_err *err)
{
    char head[512] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return daecl_err_set(err, errno == ENOENT ? DAECL_ENOENT : DAECL_EIO,
                             "cannot open the clamp mask %s: %s", path,
                             errno == ENOENT ? "there is no such file" : daecl_errno_hint(errno));
    size_t got = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    if (got < 10 || memcmp(head, "\x93NUMPY", 6) != 0)
        return daecl_err_set(err, DAECL_EDATA, "the clamp mask %s is not a .npy file: write it "
                             "with numpy.save", path);
    for (size_t i = 10; i < got; i++)
        head[i - 10] = head[i] ? head[i] : ' ';
    head[got - 10] = 0;
    const char *d = strstr(head, "'descr':");
    d = d ? strchr(d + 8, '\'') : NULL;
    if (d && (strncmp(d, "'<f4'", 5) == 0 || strncmp(d, "'|u1'", 5) == 0 ||
              strncmp(d, "'<u1'", 5) == 0))
        return 0;
    return daecl_err_set(err, DAECL_EDATA, "the clamp mask %s holds %.6s values, not float32 "
                         "('<f4') or uint8 ('|u1'): save it with one of those", path,
                         d ? d : "unknown");
}

/* The clamp mask as runs of clamped values: runs[2i] is a run's first
 * index, runs[2i+1] its length. Any .npy of dim float32 or uint8 values
 * (nonzero: clamped) is a mask. */
static int load_mask(const char *path, size_t dim, size_t **runs, size_t *n_runs, daecl_err *err)
{
    daecl_dataset *m = NULL;
    int rc = check_mask_dtype(path, err);
    if (rc)
        return rc;
    rc = daecl_dataset_load(path, 0, 0, &m, err);
    if (rc)
        return rc;
    if (m->n_rows * m->dim != dim) {
        rc = daecl_err_set(err, DAECL_EDATA, "the clamp mask %s holds %zu values but an example "
                           "of the run holds %zu: give one value per input", path,
                           m->n_rows * m->dim, dim);
        goto done;
    }
    *runs = malloc(dim * 2 * sizeof **runs);
    if (!*runs) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory reading the clamp mask %s", path);
        goto done;
    }
    *n_runs = 0;
    for (size_t j = 0; j < dim; j++) {
        if (isnan(m->x[j])) {
            rc = daecl_err_set(err, DAECL_EDATA, "the clamp mask %s holds NaN at value %zu: "
                               "use 0 (free) or 1 (clamped)", path, j);
            break;
        }
        if (m->x[j] == 0)
            continue;
        if (*n_runs && (*runs)[2 * *n_runs - 2] + (*runs)[2 * *n_runs - 1] == j)
            (*runs)[2 * *n_runs - 1]++;
        else {
            (*runs)[2 * *n_runs] = j;
            (*runs)[2 * *n_runs + 1] = 1;
            ++*n_runs;
        }
    }
done:
    daecl_dataset_destroy(m);
    return rc;
}

/* x[r, run] = start[r, run] for every row and run: one device copy per row
 * and run (O(n_rows * n_runs) enqueued copies; a half-image mask has at most
 * one run per image row). */
static int clamp_rows(daecl_session *s, daecl_slice x, daecl_slice start, size_t n_rows,
                      size_t dim, const size_t *runs, size_t n_runs, daecl_err *err)
{
    for (size_t r = 0; r < n_rows; r++)
        for (size_t i = 0; i < n_runs; i++) {
            size_t off = r * dim + runs[2 * i];
            daecl_slice d = {x.buf, x.off + off}, src = {start.buf, start.off + off};
            int rc = s->be->copy(s->ctx, d, src, runs[2 * i + 1], err);
            if (rc)
                return rc;
        }
    return 0;
}

/* ---- files ----------------------------------------------------------------- */

/* samples.npy: float32, C order, shape (kept, chains, dim). */
static int write_npy(const char *path, const float *x, uint32_t kept, uint32_t chains,
                     uint32_t dim, daecl_err *err)
{
    char header[DAECL_NPY_HEADER_MAX];
    const size_t shape[3] = {kept, chains, dim};
    const void *parts[2] = {header, x};
    size_t sizes[2] = {daecl_npy_f32_header(header, shape, 3),
                       (size_t)kept * chains * dim * sizeof *x};
    return daecl_write_atomic(path, parts, sizes, 2, "samples.npy", err);
}

/* A gray picture of tiles: tile (i, j) of rows x cols shows tile[i * cols + j]
 * (NULL: left black), each an h x w image mapped from [lo, hi] to 0..255,
 * laid out as core/draw.h's tile pictures. */
static int draw_grid(const char *path, const float *const *tile, uint32_t rows, uint32_t cols,
                     uint32_t h, uint32_t w, float lo, float hi, daecl_err *err)
{
    uint32_t big = h > w ? h : w, sc = DAECL_PICTURE_MIN_TILE / big ? DAECL_PICTURE_MIN_TILE / big : 1;
    uint32_t gap = DAECL_PICTURE_GAP;
    uint32_t width = cols * w * sc + (cols + 1) * gap, height = rows * h * sc + (rows + 1) * gap;
    uint8_t *px = calloc((size_t)width * height, 1);
    if (!px)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing %s", path);
    for (uint32_t i = 0; i < rows; i++)
        for (uint32_t j = 0; j < cols; j++) {
            const float *t = tile[(size_t)i * cols + j];
            if (!t)
                continue;
            size_t x0 = gap + (size_t)j * (w * sc + gap), y0 = gap + (size_t)i * (h * sc + gap);
            for (uint32_t y = 0; y < h * sc; y++)
                for (uint32_t x = 0; x < w * sc; x++) {
                    float v = t[(y / sc) * w + x / sc];
                    v = isnan(v) ? lo : v < lo ? lo : v > hi ? hi : v;
                    px[(y0 + y) * width + x0 + x] = (uint8_t)lrintf(255.0f * (v - lo) / (hi - lo));
                }
        }
    int rc = daecl_pngfile_write(path, px, width, height, 1, err);
    free(px);
    return rc;
}

/* chains.png (rows: chains; columns: the start, then kept states evenly
 * spaced, the last included) and samples.png (the final states in a square
 * grid). */
static int pictures(const daecl_run *r, const char *out_dir, const float *start,
                    const float *kept, uint32_t n_kept, uint32_t chains, uint32_t dim,
                    daecl_sample_result *res, daecl_err *err)
{
    uint32_t h, w;
    if (!daecl_draw_image_shape(r->train->shape, r->train->n_shape, &h, &w))
        return 0;
    float lo = r->train->min, hi = r->train->max > lo ? r->train->max : lo + 1;
    uint32_t rows = chains < PICTURE_MAX_ROWS ? chains : PICTURE_MAX_ROWS;
    uint32_t cols = 1 + (n_kept < PICTURE_MAX_COLS - 1 ? n_kept : PICTURE_MAX_COLS - 1);
    uint32_t n_final = chains < PICTURE_MAX_SAMPLES ? chains : PICTURE_MAX_SAMPLES;
    uint32_t gc = (uint32_t)ceil(sqrt((double)n_final)), gr = (n_final + gc - 1) / gc;
    size_t n_tiles = (size_t)rows * cols > (size_t)gr * gc ? (size_t)rows * cols : (size_t)gr * gc;
    const float **tile = calloc(n_tiles, sizeof *tile);
    if (!tile)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory drawing chains.png");
    for (uint32_t i = 0; i < rows; i++) {
        tile[(size_t)i * cols] = start + (size_t)i * dim;
        for (uint32_t j = 1; j < cols; j++) {
            /* column j of cols - 1 shows kept state (j * n_kept) / (cols - 1) - 1 */
            size_t t = (size_t)j * n_kept / (cols - 1) - 1;
            tile[(size_t)i * cols + j] = kept + (t * chains + i) * dim;
        }
    }
    int rc = daecl_path_join(res->chains_png, sizeof res->chains_png, out_dir, "chains.png", err);
    if (!rc)
        rc = draw_grid(res->chains_png, tile, rows, cols, h, w, lo, hi, err);
    if (!rc) {
        memset(tile, 0, n_tiles * sizeof *tile);
        for (uint32_t k = 0; k < n_final; k++)
            tile[k] = kept + ((size_t)(n_kept - 1) * chains + k) * dim;
        if (!(rc = daecl_path_join(res->samples_png, sizeof res->samples_png, out_dir,
                                   "samples.png", err)))
            rc = draw_grid(res->samples_png, tile, gr, gc, h, w, lo, hi, err);
    }
    free(tile);
    if (rc)
        res->chains_png[0] = res->samples_png[0] = 0;
    return rc;
}

/* ---- daecl sample ------------------------------------------------------------ */

static int check_opts(const daecl_sample_opts *o, daecl_err *err)
{
    if (o->chains == 0)
        return daecl_err_set(err, DAECL_EUSAGE, "sampling needs at least one chain");
    if (o->steps == 0)
        return daecl_err_set(err, DAECL_EUSAGE, "sampling needs at least one step");
    if (o->steps > DAECL_SAMPLE_MAX_STEPS)
        return daecl_err_set(err, DAECL_EUSAGE, "%u steps are more than one chain may take "
                             "(%u: the chain step is the noise key's 16-bit substep)", o->steps,
                             DAECL_SAMPLE_MAX_STEPS);
    if (o->burn_in >= o->steps)
        return daecl_err_set(err, DAECL_EUSAGE, "a burn-in of %u steps leaves nothing of %u "
                             "steps to keep: lower it below the steps", o->burn_in, o->steps);
    if (o->thin == 0)
        return daecl_err_set(err, DAECL_EUSAGE, "thinning must keep every 1st state or sparser, "
                             "not 0");
    if ((uint64_t)o->chains * o->steps > UINT32_MAX)
        return daecl_err_set(err, DAECL_EUSAGE, "%u chains are too many for one noise key: "
                             "at most %u", o->chains, UINT32_MAX);
    if (o->start == DAECL_SAMPLE_START_CONST && !isfinite(o->start_value))
        return daecl_err_set(err, DAECL_EUSAGE, "the start value must be a finite number");
    return 0;
}

int daecl_sample_chains(daecl_run *r, const daecl_sample_opts *o, float *start, float *kept,
                        float *means, daecl_err *err)
{
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    daecl_session *s = r->s;
    size_t chains = o->chains, dim = r->train->dim, b = r->g->batch_max;
    uint64_t seed = o->has_seed ? o->seed : r->cfg->seed;
    daecl_shape shape;
    daecl_dataset_shape(r->train, &shape);
    daecl_buf *state = NULL, *start_buf = NULL, *mean_buf = NULL;
    size_t *runs = NULL, n_runs = 0;
    if (o->clamp_path && (rc = load_mask(o->clamp_path, dim, &runs, &n_runs, err)))
        goto done;
    fill_start(o, r, seed, start, chains, dim);
    if ((rc = daecl_session_alloc(s, chains * dim, "chain states", &state, err)) ||
        (rc = s->be->write(s->ctx, state, 0, start, chains * dim * sizeof *start, err)) ||
        (runs && (rc = daecl_session_alloc(s, chains * dim, "chain starts", &start_buf, err))) ||
        (runs && (rc = s->be->write(s->ctx, start_buf, 0, start, chains * dim * sizeof *start,
                                    err))) ||
        (means && (rc = daecl_session_alloc(s, chains * dim, "chain means", &mean_buf, err))))
        goto done;
    /* Steps t = 1..T (substep t - 1); the state after step t is kept when
     * t > burn_in and T - t is a multiple of thin. */
    for (uint32_t t = 1, k = 0; t <= o->steps; t++) {
        for (size_t c = 0; c < chains && !rc; c += b) {
            size_t n = chains - c < b ? chains - c : b;
            daecl_noise_key key = {.seed = seed, .stream = DAECL_STREAM_EVAL_CORRUPTION,
                                   .substep = t - 1, .pos0 = (uint32_t)c};
            daecl_slice x = daecl_at(state, c * dim);
            if (!(rc = daecl_sample_step(r->g, x, n, &shape, &key, o->use_mean, err)) && runs)
                rc = clamp_rows(s, x, daecl_at(start_buf, c * dim), n, dim, runs, n_runs, err);
            /* The last step's decoder output is still in the graph: its
             * mean is the grey value behind the step's draw. */
            if (!rc && means && t == o->steps)
                rc = daecl_session_mean(s, daecl_graph_layer_out(r->g, r->g->m->n_layers - 1), n,
                                        dim, daecl_at(mean_buf, c * dim), err);
        }
        if (!rc && kept && t > o->burn_in && (o->steps - t) % o->thin == 0)
            rc = daecl_session_read(s, daecl_at(state, 0), kept + (size_t)k++ * chains * dim,
                                    chains * dim, err);
        if (rc)
            goto done;
    }
    if (means)
        rc = daecl_session_read(s, daecl_at(mean_buf, 0), means, chains * dim, err);
done:
    daecl_session_free(s, mean_buf);
    daecl_session_free(s, start_buf);
    daecl_session_free(s, state);
    free(runs);
    return rc;
}

int daecl_sample_run(const daecl_sample_opts *o, daecl_sample_result *res, daecl_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    daecl_trained_opts to = {.run_dir = o->run_dir, .overrides = o->overrides,
                             .n_overrides = o->n_overrides, .command = "sample"};
    daecl_run r;
    daecl_ckpt_state st;
    float *start = NULL, *kept = NULL;
    const char *out_dir = o->out_dir ? o->out_dir : o->run_dir;
    char ckpt[PATH_MAX];
    struct stat sb;
    if ((rc = daecl_path_join(ckpt, sizeof ckpt, o->run_dir, "checkpoint.safetensors", err)))
        return rc;
    if (stat(o->run_dir, &sb) == 0 && S_ISDIR(sb.st_mode) && stat(ckpt, &sb) != 0)
        return daecl_err_set(err, DAECL_EUSAGE, "%s holds no checkpoint.safetensors: sampling "
                             "needs a trained run's folder (train or resume it first)",
                             o->run_dir);
    if ((rc = daecl_run_open_trained(&r, &to, &st, err)))
        goto done;
    size_t chains = o->chains, dim = r.train->dim;
    uint32_t n_kept = (o->steps - o->burn_in - 1) / o->thin + 1;
    start = malloc(chains * dim * sizeof *start);
    kept = malloc((size_t)n_kept * chains * dim * sizeof *kept);
    if (!start || !kept) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for %u kept states of %zu chains: "
                           "keep fewer (more thinning, fewer chains)", n_kept, chains);
        goto done;
    }
    if ((rc = daecl_sample_chains(&r, o, start, kept, NULL, err)))
        goto done;
    res->kept = n_kept;
    res->chains = (uint32_t)chains;
    res->dim = (uint32_t)dim;
    if ((rc = daecl_mkdirs(out_dir, err)) ||
        (rc = daecl_path_join(res->samples, sizeof res->samples, out_dir, "samples.npy", err)) ||
        (rc = write_npy(res->samples, kept, n_kept, (uint32_t)chains, (uint32_t)dim, err)))
        goto done;
    rc = pictures(&r, out_dir, start, kept, n_kept, (uint32_t)chains, (uint32_t)dim, res, err);
done:
    daecl_run_close(&r);
    free(start);
    free(kept);
    return rc;
}
