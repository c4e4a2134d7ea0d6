/* daecl — test NLL, denoising errors and the linear probe of a run:
 * the test set through the graph, then the probe, then `daecl eval`. */
#include "core/evaluate.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/parzen_eval.h"
#include "core/runfiles.h"

/* ---- the test set: NLL, denoising -------------------------------------------- */

/* Adds sum (a - b)^2 and sum (c - b)^2 over n values into *ab, *cb. */
static void sq_errors(const float *a, const float *b, const float *c, size_t n, double *ab,
                      double *cb)
{
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double d1 = (double)a[i] - b[i], d2 = (double)c[i] - b[i];
        s1 += d1 * d1;
        s2 += d2 * d2;
    }
    *ab += s1;
    *cb += s2;
}

static double psnr(double range, double mse)
{
    return mse > 0 ? 10.0 * log10(range * range / mse) : INFINITY;
}

/* daecl_eval_test_set, and daecl_eval_codes with `input` (NULL: the rows
 * themselves) and the noise's `stage`. */
static int eval_set(daecl_graph *g, daecl_feeder *data, uint64_t seed, uint32_t stage,
                    int want_denoising, daecl_eval_input_fn input, void *ctx,
                    daecl_eval_result *out, daecl_err *err)
{
    daecl_session *s = g->s;
    size_t n_rows = data->ds->n_rows, dim = g->m->dim, b = g->batch_max;
    size_t n_batches = (n_rows + b - 1) / b;
    daecl_shape shape;
    daecl_dataset_shape(data->ds, &shape);
    /* Two sums per batch, read back together: (2, n_batches). The denoising
     * pass needs host copies of a batch: clean, corrupted, reconstruction. */
    daecl_buf *sums = NULL, *mean = NULL;
    float *hf = malloc(2 * n_batches * sizeof *hf);
    float *hx = NULL, *hxt = NULL, *hm = NULL;
    double se_recon = 0, se_corrupt = 0;
    int rc = hf ? daecl_session_alloc(s, 2 * n_batches, "evaluation sums", &sums, err)
                : daecl_err_set(err, DAECL_ENOMEM, "out of memory evaluating");
    if (rc)
        goto done;
    if (want_denoising) {
        hx = malloc(b * dim * sizeof *hx);
        hxt = malloc(b * dim * sizeof *hxt);
        hm = malloc(b * dim * sizeof *hm);
        if (!hx || !hxt || !hm) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory evaluating");
            goto done;
        }
        if ((rc = daecl_session_alloc(s, b * dim, "reconstructions", &mean, err)))
            goto done;
    }
    if ((rc = daecl_feeder_sequential(data, err)))
        goto done;
    for (size_t i = 0; i < n_batches; i++) {
        size_t first = i * b, n = n_rows - first < b ? n_rows - first : b;
        daecl_slice x;
        if ((rc = daecl_feeder_batch(data, first, n, &x, err)) ||
            (input && (rc = input(ctx, x, n, &x, &shape, err))))
            goto done;
        if ((rc = daecl_graph_forward(g, x, n, UINT32_MAX, err)) ||
            (rc = daecl_graph_loss(g, x, n, daecl_at(sums, i), 0, err)))
            goto done;
        daecl_noise_key key = {.seed = seed, .stream = DAECL_STREAM_EVAL_CORRUPTION,
                               .stage = stage, .pos0 = (uint32_t)first};
        daecl_slice xt = daecl_at(g->input, 0);
        if ((rc = daecl_session_corrupt(s, x, xt, n, dim, &shape, &key, err)) ||
            (rc = daecl_graph_forward(g, xt, n, UINT32_MAX, err)) ||
            (rc = daecl_graph_loss(g, x, n, daecl_at(sums, n_batches + i), 0, err)))
            goto done;
        if (!want_denoising)
            continue;
        daecl_slice a = daecl_graph_layer_out(g, g->m->n_layers - 1);
        if ((rc = daecl_session_mean(s, a, n, dim, daecl_at(mean, 0), err)) ||
            (rc = daecl_session_read(s, x, hx, n * dim, err)) ||
            (rc = daecl_session_read(s, xt, hxt, n * dim, err)) ||
            (rc = daecl_session_read(s, daecl_at(mean, 0), hm, n * dim, err)))
            goto done;
        sq_errors(hm, hx, hxt, n * dim, &se_recon, &se_corrupt);
    }
    if ((rc = daecl_session_read(s, daecl_at(sums, 0), hf, 2 * n_batches, err)))
        goto done;
    double clean = 0, corrupted = 0;
    for (size_t i = 0; i < n_batches; i++) {
        clean += hf[i];
        corrupted += hf[n_batches + i];
    }
    out->nll_clean = clean / (double)n_rows;
    out->nll_corrupted = corrupted / (double)n_rows;
    out->n_rows = n_rows;
    out->range = (double)data->ds->max - (double)data->ds->min;
    if (out->range <= 0)
        out->range = 1;
    if (want_denoising) {
        double values = (double)n_rows * (double)dim;
        out->mse_reconstruction = se_recon / values;
        out->mse_corrupted = se_corrupt / values;
        out->psnr_reconstruction = psnr(out->range, out->mse_reconstruction);
        out->psnr_corrupted = psnr(out->range, out->mse_corrupted);
    }
done:
    daecl_session_free(s, sums);
    daecl_session_free(s, mean);
    free(hf);
    free(hx);
    free(hxt);
    free(hm);
    return rc;
}

int daecl_eval_test_set(daecl_graph *g, daecl_feeder *data, uint64_t seed, int want_denoising,
                        daecl_eval_result *out, daecl_err *err)
{
    return eval_set(g, data, seed, 0, want_denoising, NULL, NULL, out, err);
}

int daecl_eval_codes(daecl_graph *g, daecl_feeder *data, uint64_t seed, uint32_t stage,
                     daecl_eval_input_fn input, void *ctx, daecl_eval_result *out,
                     daecl_err *err)
{
    return eval_set(g, data, seed, stage, 0, input, ctx, out, err);
}

/* ---- the probe, a run ----------------------------------------------------------- */

const char *daecl_evaluation_probe_name(int features, uint32_t n_encoder, char *buf, size_t n)
{
    if (features == DAECL_PROBE_RAW)
        snprintf(buf, n, "raw inputs");
    else if (features == DAECL_PROBE_ALL)
        snprintf(buf, n, "all encoder layers side by side");
    else if (n_encoder <= 1)
        snprintf(buf, n, "the code");
    else
        snprintf(buf, n, "encoder layer %d%s", features,
                 features == (int)n_encoder - 1 ? ", the top code" : "");
    return buf;
}

const char *daecl_evaluation_probe_scores(const daecl_probe_result *p, char *buf, size_t n)
{
    int len = 0;
    buf[0] = '\0';
    if (p->have_valid)
        len = snprintf(buf, n, "validation accuracy %.2f%%", 100 * p->valid_accuracy);
    if (p->have_test && len >= 0 && (size_t)len < n)
        snprintf(buf + len, n - (size_t)len, "%stest accuracy %.2f%%", len ? ", " : "",
                 100 * p->accuracy);
    return buf;
}

/* Features of both sets (`features`, probe.h), read back; the fit and the
 * score on the host; a log line, and a warning when it did not converge. */
static int run_probe(daecl_run *r, const daecl_labels *ytr, const daecl_labels *yte, int features,
                     daecl_probe_result *out, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    char name[64], what[96];
    daecl_evaluation_probe_name(features, r->g->m->n_encoder, name, sizeof name);
    snprintf(what, sizeof what, "the linear probe on %s", name);
    float *ftr = NULL, *fva = NULL, *fte = NULL;
    size_t width = 0;
    /* With a validation set (data.valid_fraction) the one fit is scored on
     * it too: the number to choose settings by. */
    int valid = r->valid_feed && r->valid_y;
    int rc = daecl_probe_features(r->g, r->train_feed, features, &ftr, &width, err);
    if (!rc && valid)
        rc = daecl_probe_features(r->g, r->valid_feed, features, &fva, &width, err);
    /* no test labels: a sweep's point, scored on the validation rows alone */
    if (!rc && yte)
        rc = daecl_probe_features(r->g, r->test_feed, features, &fte, &width, err);
    if (!rc) {
        daecl_probe_opts o = {.l2 = c->eval.probe_l2, .tol = c->eval.probe_tol,
                              .max_iter = c->eval.probe_max_iter, .threads = 0};
        rc = daecl_probe_fit_valid(ftr, ytr, fva, valid ? r->valid_y : NULL, fte, yte, width, &o,
                                   out, err);
    }
    free(ftr);
    free(fva);
    free(fte);
    if (rc)
        return rc;
    daecl_log(DAECL_LOG_INFO, NULL, "%s: %zu rows x %zu features, %u classes: max|gradient| "
              "%.2g after %u L-BFGS iterations (%u evaluations), %.1f s", what, out->n_train,
              out->n_features, out->n_classes, out->grad_max, out->iterations, out->evaluations,
              out->seconds);
    if (out->stop == DAECL_PROBE_MAX_ITER)
        daecl_log(DAECL_LOG_WARN, NULL, "%s stopped at eval.probe_max_iter = %u iterations with "
                  "max|gradient| %.2g above eval.probe_tol = %g, so its accuracy is that of an "
                  "unfinished fit; raise eval.probe_max_iter (or eval.probe_tol)", what,
                  c->eval.probe_max_iter, out->grad_max, c->eval.probe_tol);
    else if (out->stop == DAECL_PROBE_STALLED)
        daecl_log(DAECL_LOG_WARN, NULL, "%s could not lower its objective any further at "
                  "max|gradient| %.2g, above eval.probe_tol = %g (the limit of rounding); raise "
                  "eval.probe_tol", what, out->grad_max, c->eval.probe_tol);
    return 0;
}

/* Fits the probe on `features` and records it in out->probes. */
static int run_listed(daecl_run *r, int features, daecl_evaluation *out, daecl_err *err)
{
    assert(out->n_probes < DAECL_EVAL_MAX_PROBES);
    daecl_probe_fit_of *f = &out->probes[out->n_probes];
    f->features = features;
    int rc = run_probe(r, r->train_y, r->test_y, features, &f->fit, err);
    if (!rc)
        out->n_probes++;
    return rc;
}

int daecl_evaluate(daecl_run *r, int denoising, int probe, int probe_baseline,
                   daecl_evaluation *out, daecl_err *err)
{
    memset(out, 0, sizeof *out);
    const daecl_config *c = r->cfg;
    int rc = 0;
    /* Without a test set only the probe on the validation rows is left: a
     * sweep's points (core/sweep.h) train that way. */
    if (r->test) {
        if ((rc = daecl_eval_test_set(r->g, r->test_feed, c->seed, denoising, &out->test, err)))
            return rc;
        out->have_test = 1;
        out->have_denoising = denoising;
    } else if (!(probe || probe_baseline) || !r->valid_y) {
        return daecl_err_set(err, DAECL_ECONFIG, "there is no test set to evaluate on; set "
                             "data.test");
    }
    if (!probe && !probe_baseline)
        return 0;
    /* The run loaded and checked the label files (core/run.c). */
    if (!r->train_y || (r->test && !r->test_y))
        return daecl_err_set(err, DAECL_ECONFIG, "the linear probe needs data.train_labels and "
                             "data.test_labels; set both, or turn eval.probe off");
    int top = (int)r->g->m->n_encoder - 1;
    if (probe && c->eval.probe_each && top > 0) {
        /* every layer, all of them, raw: the top's and raw's fits are also
         * the probe_* and probe_baseline_* numbers */
        for (int l = 0; l <= top; l++)
            if ((rc = run_listed(r, l, out, err)))
                return rc;
        if ((rc = run_listed(r, DAECL_PROBE_ALL, out, err)))
            return rc;
        out->probe = out->probes[top].fit;
        out->have_probe = 1;
        if (probe_baseline) {
            if ((rc = run_listed(r, DAECL_PROBE_RAW, out, err)))
                return rc;
            out->baseline = out->probes[out->n_probes - 1].fit;
            out->have_baseline = 1;
        }
        return 0;
    }
    if (probe) {
        if ((rc = run_probe(r, r->train_y, r->test_y, top, &out->probe, err)))
            return rc;
        out->have_probe = 1;
    }
    if (probe_baseline) {
        if ((rc = run_probe(r, r->train_y, r->test_y, DAECL_PROBE_RAW, &out->baseline, err)))
            return rc;
        out->have_baseline = 1;
    }
    return 0;
}

void daecl_evaluation_take_probes(daecl_evaluation *dst, const daecl_evaluation *src)
{
    dst->have_probe = src->have_probe;
    dst->probe = src->probe;
    dst->have_baseline = src->have_baseline;
    dst->baseline = src->baseline;
    dst->n_probes = src->n_probes;
    memcpy(dst->probes, src->probes, src->n_probes * sizeof src->probes[0]);
}

static void probe_to_json(const daecl_probe_result *p, const char *prefix, cJSON *o)
{
    char key[64];
    const struct {
        const char *name;
        double value;
    } nums[] = {{"accuracy", p->accuracy},
                {"test_nll", p->test_nll},
                {"objective", p->objective},
                {"grad_max", p->grad_max},
                {"iterations", (double)p->iterations},
                {"l2", p->l2}};
    /* without a test set the keys are left out, not written as 0 */
    for (size_t i = p->have_test ? 0 : 2; i < sizeof nums / sizeof nums[0]; i++) {
        snprintf(key, sizeof key, "%s%s", prefix, nums[i].name);
        cJSON_AddNumberToObject(o, key, nums[i].value);
    }
    snprintf(key, sizeof key, "%sconverged", prefix);
    cJSON_AddBoolToObject(o, key, p->stop == DAECL_PROBE_CONVERGED);
    if (!p->have_valid)
        return;
    snprintf(key, sizeof key, "%svalid_accuracy", prefix);
    cJSON_AddNumberToObject(o, key, p->valid_accuracy);
    snprintf(key, sizeof key, "%svalid_nll", prefix);
    cJSON_AddNumberToObject(o, key, p->valid_nll);
}

void daecl_evaluation_to_json(const daecl_evaluation *e, cJSON *o)
{
    if (e->have_test) {
        cJSON_AddNumberToObject(o, "test_examples", (double)e->test.n_rows);
        cJSON_AddNumberToObject(o, "test_nll_clean", e->test.nll_clean);
        cJSON_AddNumberToObject(o, "test_nll_corrupted", e->test.nll_corrupted);
    }
    if (e->have_denoising) {
        cJSON_AddNumberToObject(o, "mse_reconstruction", e->test.mse_reconstruction);
        cJSON_AddNumberToObject(o, "mse_corrupted", e->test.mse_corrupted);
        cJSON_AddNumberToObject(o, "psnr_reconstruction_db", e->test.psnr_reconstruction);
        cJSON_AddNumberToObject(o, "psnr_corrupted_db", e->test.psnr_corrupted);
    }
    if (e->have_probe) {
        probe_to_json(&e->probe, "probe_", o);
        cJSON_AddNumberToObject(o, "probe_features", (double)e->probe.n_features);
    }
    if (e->have_baseline)
        probe_to_json(&e->baseline, "probe_baseline_", o);
    if (!e->n_probes)
        return;
    cJSON *list = cJSON_AddArrayToObject(o, "probes");
    for (size_t i = 0; list && i < e->n_probes; i++) {
        const daecl_probe_fit_of *f = &e->probes[i];
        cJSON *p = cJSON_CreateObject();
        if (!p || !cJSON_AddItemToArray(list, p)) {
            cJSON_Delete(p);
            break;
        }
        char name[32];
        cJSON_AddStringToObject(p, "features", daecl_probe_features_name(f->features, name,
                                                                         sizeof name));
        probe_to_json(&f->fit, "", p);
        cJSON_AddNumberToObject(p, "n_features", (double)f->fit.n_features);
        cJSON_AddNumberToObject(p, "seconds", f->fit.seconds);
    }
}

void daecl_evaluation_print(const daecl_evaluation *e, FILE *f)
{
    if (e->have_test)
        fprintf(f, "test NLL (nats/example): clean %.4f, corrupted %.4f (%zu examples)\n",
                e->test.nll_clean, e->test.nll_corrupted, e->test.n_rows);
    if (e->have_denoising)
        fprintf(f, "denoising MSE: reconstruction %.6f (PSNR %.2f dB), corrupted input %.6f "
                   "(PSNR %.2f dB)\n",
                e->test.mse_reconstruction, e->test.psnr_reconstruction, e->test.mse_corrupted,
                e->test.psnr_corrupted);
    /* every fit, or the code's and raw's */
    daecl_probe_fit_of two[2] = {{0, e->probe}, {DAECL_PROBE_RAW, e->baseline}};
    const daecl_probe_fit_of *fits = e->n_probes ? e->probes : two;
    size_t n = e->n_probes ? e->n_probes : 2;
    uint32_t n_encoder = 1; /* names "the code" */
    for (size_t i = 0; i < e->n_probes; i++)
        if (e->probes[i].features >= (int)n_encoder)
            n_encoder = (uint32_t)e->probes[i].features + 1;
    for (size_t i = 0; i < n; i++) {
        const daecl_probe_result *p = &fits[i].fit;
        if (!e->n_probes && !(i ? e->have_baseline : e->have_probe))
            continue;
        char name[64], scores[128], nll[32] = "";
        if (p->have_test)
            snprintf(nll, sizeof nll, ", NLL %.4f", p->test_nll);
        fprintf(f, "linear probe on %s (%zu features): %s%s (objective %.6f, %s after %u "
                   "iterations)\n",
                daecl_evaluation_probe_name(fits[i].features, n_encoder, name, sizeof name),
                p->n_features, daecl_evaluation_probe_scores(p, scores, sizeof scores), nll,
                p->objective, p->stop == DAECL_PROBE_CONVERGED ? "converged" : "NOT converged",
                p->iterations);
    }
}

int daecl_eval_run(const daecl_eval_opts *o, daecl_evaluation *out, char *json_path,
                   size_t json_path_n, daecl_err *err)
{
    char ckpt_path[PATH_MAX];
    if (json_path && json_path_n)
        json_path[0] = '\0';
    int rc = 0;
    if (o->checkpoint)
        snprintf(ckpt_path, sizeof ckpt_path, "%s", o->checkpoint);
    else if (o->run_dir)
        rc = daecl_path_join(ckpt_path, sizeof ckpt_path, o->run_dir, "checkpoint.safetensors", err);
    if (rc)
        return rc;
    /* --probe-layers is one more override, after the others: the config
     * checks its value and names the key in its sentence */
    const char **ov = malloc((o->n_overrides + 1) * sizeof *ov);
    char layers[64];
    if (!ov)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory reading the overrides");
    size_t n_ov = o->n_overrides;
    for (size_t i = 0; i < n_ov; i++)
        ov[i] = o->overrides[i];
    if (o->probe_layers) {
        snprintf(layers, sizeof layers, "eval.probe_layers=%s", o->probe_layers);
        ov[n_ov++] = layers;
    }
    daecl_trained_opts to = {.run_dir = o->run_dir, .config = o->config,
                             .checkpoint = o->checkpoint, .overrides = ov,
                             .n_overrides = n_ov, .command = "eval",
                             .probe = !o->no_probe || o->probe_baseline,
                             .labels_for = o->probe_baseline ? "--probe-baseline" : NULL};
    daecl_run r;
    daecl_ckpt_state st;
    if ((rc = daecl_run_open_trained(&r, &to, &st, err)))
        goto done;
    const daecl_config *c = r.cfg;
    int labels = c->data.train_labels[0] && c->data.test_labels[0];
    if ((rc = daecl_evaluate(&r, 1, labels && !o->no_probe, o->probe_baseline, out, err)))
        goto done;
    if (o->run_dir) {
        cJSON *j = cJSON_CreateObject();
        if (j) {
            cJSON_AddStringToObject(j, "checkpoint", ckpt_path);
            cJSON_AddNumberToObject(j, "step", (double)st.step);
            cJSON_AddNumberToObject(j, "epoch", st.epoch);
            cJSON_AddStringToObject(j, "device", daecl_session_device_name(r.s));
            daecl_evaluation_to_json(out, j);
            /* the Parzen numbers of an earlier `eval --parzen` stay, when
             * they belong to this checkpoint */
            rc = daecl_parzen_eval_keep(o->run_dir, ckpt_path, st.step, j, err);
        }
        /* NULL j: write_json says out of memory */
        if (rc)
            cJSON_Delete(j);
        else
            rc = daecl_runfiles_write_json(o->run_dir, "eval.json", j, "evaluation", err);
        if (!rc && json_path && json_path_n)
            snprintf(json_path, json_path_n, "%s/eval.json", o->run_dir);
    }
done:
    daecl_run_close(&r);
    free(ov);
    return rc;
}
