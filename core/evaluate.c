/* daecl — test NLL, denoising errors and the linear probe of a run. */
#include "core/evaluate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"

static int load_labels(const daecl_config *c, const char *path, const char *key, size_t limit,
                       size_t want_rows, daecl_labels **out, daecl_err *err)
{
    int rc = daecl_labels_load(path, limit, daecl_data_max_bytes(c->data.max_mb), out, err);
    if (rc)
        return rc;
    if ((*out)->n != want_rows)
        return daecl_err_set(err, DAECL_EDATA, "%s %s has %zu labels but its data set has %zu "
                             "rows; use the matching label file", key, path, (*out)->n, want_rows);
    return 0;
}

/* Features of both sets (encoded, or raw), the fit, the score. */
static int run_probe(daecl_run *r, const daecl_labels *ytr, const daecl_labels *yte, int raw,
                     daecl_probe_result *out, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    daecl_buf *ftr = NULL, *fte = NULL;
    size_t width = 0;
    int rc = daecl_probe_features(r->g, r->train_feed, raw, &ftr, &width, err);
    if (!rc)
        rc = daecl_probe_features(r->g, r->test_feed, raw, &fte, &width, err);
    if (!rc) {
        daecl_probe_opts o = {.epochs = c->eval.probe_epochs, .batch_size = c->eval.probe_batch_size,
                              .lr = c->eval.probe_lr, .weight_decay = c->eval.probe_weight_decay,
                              .seed = c->seed};
        rc = daecl_probe_fit(r->s, ftr, ytr, fte, yte, width, &o, out, err);
    }
    daecl_session_free(r->s, ftr);
    daecl_session_free(r->s, fte);
    return rc;
}

int daecl_evaluate(daecl_run *r, int denoising, int probe, int probe_baseline,
                   daecl_evaluation *out, daecl_err *err)
{
    memset(out, 0, sizeof *out);
    const daecl_config *c = r->cfg;
    if (!r->test)
        return daecl_err_set(err, DAECL_ECONFIG, "there is no test set to evaluate on; set "
                             "data.test");
    int rc = daecl_eval(r->g, r->test_feed, c->seed, denoising, &out->test, err);
    if (rc)
        return rc;
    out->have_test = 1;
    out->have_denoising = denoising;
    if (!probe && !probe_baseline)
        return 0;
    if (!c->data.train_labels[0] || !c->data.test_labels[0])
        return daecl_err_set(err, DAECL_ECONFIG, "the linear probe needs data.train_labels and "
                             "data.test_labels; set both, or turn eval.probe off");
    daecl_labels *ytr = NULL, *yte = NULL;
    if ((rc = load_labels(c, c->data.train_labels, "data.train_labels", c->data.train_limit,
                          r->train->n_rows, &ytr, err)) ||
        (rc = load_labels(c, c->data.test_labels, "data.test_labels", c->data.test_limit,
                          r->test->n_rows, &yte, err)))
        goto done;
    if (probe) {
        if ((rc = run_probe(r, ytr, yte, 0, &out->probe, err)))
            goto done;
        out->have_probe = 1;
    }
    if (probe_baseline) {
        if ((rc = run_probe(r, ytr, yte, 1, &out->baseline, err)))
            goto done;
        out->have_baseline = 1;
    }
done:
    daecl_labels_destroy(ytr);
    daecl_labels_destroy(yte);
    return rc;
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
        cJSON_AddNumberToObject(o, "probe_accuracy", e->probe.accuracy);
        cJSON_AddNumberToObject(o, "probe_test_nll", e->probe.test_nll);
        cJSON_AddNumberToObject(o, "probe_features", (double)e->probe.n_features);
    }
    if (e->have_baseline) {
        cJSON_AddNumberToObject(o, "probe_baseline_accuracy", e->baseline.accuracy);
        cJSON_AddNumberToObject(o, "probe_baseline_test_nll", e->baseline.test_nll);
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
    if (e->have_probe)
        fprintf(f, "linear probe on the code (%zu features): test accuracy %.2f%%, NLL %.4f\n",
                e->probe.n_features, 100 * e->probe.accuracy, e->probe.test_nll);
    if (e->have_baseline)
        fprintf(f, "linear probe on raw inputs (%zu features): test accuracy %.2f%%, NLL %.4f\n",
                e->baseline.n_features, 100 * e->baseline.accuracy, e->baseline.test_nll);
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
    daecl_trained_opts to = {.run_dir = o->run_dir, .config = o->config,
                             .checkpoint = o->checkpoint, .overrides = o->overrides,
                             .n_overrides = o->n_overrides, .command = "eval",
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
        char path[PATH_MAX];
        if ((rc = daecl_path_join(path, sizeof path, o->run_dir, "eval.json", err)))
            goto done;
        cJSON *j = cJSON_CreateObject();
        if (!j) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
            goto done;
        }
        cJSON_AddStringToObject(j, "checkpoint", ckpt_path);
        cJSON_AddNumberToObject(j, "step", (double)st.step);
        cJSON_AddNumberToObject(j, "epoch", st.epoch);
        cJSON_AddStringToObject(j, "device", daecl_session_device_name(r.s));
        daecl_evaluation_to_json(out, j);
        char *text = cJSON_Print(j);
        cJSON_Delete(j);
        if (!text) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
            goto done;
        }
        size_t len = strlen(text);
        text[len] = '\n';
        rc = daecl_write_file_atomic(path, text, len + 1, "evaluation", err);
        free(text);
        if (!rc && json_path && json_path_n)
            snprintf(json_path, json_path_n, "%s", path);
    }
done:
    daecl_run_close(&r);
    return rc;
}
