/* daecl — `daecl finetune`: the encoder of a trained run plus a softmax
 * layer, trained on the run's labels; the training graph of core/graph.c
 * with the softmax cross-entropy's gradient where the likelihood's was. */
#include "core/finetune.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/compat.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/run.h"
#include "core/runfiles.h"
#include "core/runfolder.h"

#define FT_FILE "finetune.json"
#define CKPT_FILE "checkpoint.safetensors"

/* ---- the classifier network ------------------------------------------------------- */

static int under(const char *key, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncmp(key, prefix, n) == 0 && (len == n || key[n] == '.');
}

int daecl_finetune_key_allowed(const char *override)
{
    static const char *const allowed[] = {"optimizer",  "train.epochs",      "train.batch_size",
                                          "seed",       "backend",           "data.train_labels",
                                          "data.test_labels", "finetune", "corruption"};
    size_t len = strcspn(override, "=");
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (under(override, len, allowed[i]))
            return 1;
    return 0;
}

void daecl_finetune_model(const daecl_model *dae, uint32_t n_classes, daecl_optim_kind optim,
                          daecl_model *out)
{
    memset(out, 0, sizeof *out);
    out->dim = dae->dim;
    out->k = dae->k;
    out->n_encoder = dae->n_encoder;
    out->n_layers = dae->n_encoder + 1;
    out->optim = optim;
    out->max_width = dae->dim > n_classes ? dae->dim : n_classes;
    for (uint32_t l = 0; l < out->n_layers; l++) {
        daecl_dense *ly = &out->layers[l];
        if (l < dae->n_encoder) {
            *ly = dae->layers[l]; /* encoder layers own their weights: never tied */
        } else {
            ly->in = dae->layers[dae->n_encoder - 1].out;
            ly->out = n_classes;
            ly->act = DAECL_ACT_LINEAR;
            snprintf(ly->name, sizeof ly->name, "classifier");
        }
        ly->w_off = out->n_weights;
        out->n_weights += (size_t)ly->out * ly->in;
        if (ly->out > out->max_width)
            out->max_width = ly->out;
    }
    out->n_params = out->n_weights;
    for (uint32_t l = 0; l < out->n_layers; l++) {
        out->layers[l].b_off = out->n_params;
        out->n_params += out->layers[l].out;
    }
}

void daecl_finetune_take_encoder(const daecl_model *dae, const float *dae_params,
                                 const daecl_model *ft, float *params)
{
    memset(params, 0, ft->n_params * sizeof *params);
    for (uint32_t l = 0; l < dae->n_encoder; l++) {
        const daecl_dense *from = &dae->layers[l], *to = &ft->layers[l];
        memcpy(params + to->w_off, dae_params + from->w_off,
               (size_t)from->out * from->in * sizeof *params);
        memcpy(params + to->b_off, dae_params + from->b_off, from->out * sizeof *params);
    }
}

int daecl_finetune_loss(daecl_graph *g, daecl_slice x, daecl_slice labels, size_t n,
                        int want_rows, daecl_err *err)
{
    int rc = daecl_graph_forward(g, x, n, UINT32_MAX, err);
    if (rc)
        return rc;
    uint32_t last = g->m->n_layers - 1;
    /* delta[0] (n, C) = (softmax(Z) - onehot(y)) / n: dL/dZ of the batch
     * mean, Z the classifier's linear output */
    return g->s->be->softmax_xent(g->s->ctx, daecl_graph_layer_out(g, last), labels, n,
                                  g->m->layers[last].out, 1.0f / (float)n,
                                  want_rows ? daecl_at(g->nll, 0) : daecl_at(NULL, 0),
                                  daecl_at(g->delta[0], 0), err);
}

/* ---- one fine-tuning ---------------------------------------------------------------- */

typedef struct ft {
    const daecl_finetune_opts *o;
    daecl_run r;          /* config, data, and the classifier's session, graph, feeders */
    daecl_model dae;      /* the parent's network, for its checkpoint's layout */
    uint32_t n_classes;
    daecl_buf *labels;    /* (batch_max): the batch's labels as floats */
    float *ybatch;        /* host (batch_max) */
    int32_t *yint;        /* host (batch_max): the same as integers, for score() */
    float *logits;        /* host (batch_max, C) */
    char dir[PATH_MAX], ckpt[PATH_MAX];
    daecl_lock *lock;
    daecl_metrics *metrics;
    char *data_json;
    cJSON *parent;        /* finetune.json's document */
    uint64_t step;
    uint32_t epochs_done;
    double t0;
} ft;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Mean-free sums over rows of logits z (n, C): cross-entropy against y
 * into *loss, rows whose first largest logit is the label into *right. */
static void score(const float *z, const int32_t *y, size_t n, uint32_t C, double *loss,
                  size_t *right)
{
    for (size_t r = 0; r < n; r++) {
        const float *zr = z + r * C;
        uint32_t best = 0;
        for (uint32_t c = 1; c < C; c++)
            if (zr[c] > zr[best])
                best = c;
        double sum = 0;
        for (uint32_t c = 0; c < C; c++)
            sum += exp((double)zr[c] - zr[best]);
        *loss += zr[best] + log(sum) - zr[y[r]];
        *right += best == (uint32_t)y[r];
    }
}

static int open_labels_of(const char *run, const daecl_run *r, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    const char *miss = !c->data.train_labels[0] ? "training labels (data.train_labels)"
                       : !c->data.test[0]       ? "test set (data.test)"
                       : !c->data.test_labels[0] ? "test labels (data.test_labels)"
                                                 : NULL;
    if (miss)
        return daecl_err_set(err, DAECL_ECONFIG,
                             "run %s has no %s; fine-tuning trains a classifier on the training "
                             "labels and reports its accuracy on the labelled test set, so give "
                             "data.train_labels=FILE data.test_labels=FILE (one label per row of "
                             "each set) or fine-tune a run whose config names them",
                             run, miss);
    return 0;
}

/* Every override must be a key fine-tuning may set. */
static int check_overrides(const daecl_finetune_opts *o, daecl_err *err)
{
    for (size_t i = 0; i < o->n_overrides; i++)
        if (!daecl_finetune_key_allowed(o->overrides[i]))
            return daecl_err_set(err, DAECL_EUSAGE,
                                 "override '%s' changes what the fine-tuning inherits from its "
                                 "run; daecl finetune takes only optimizer.*, train.epochs, "
                                 "train.batch_size, seed, backend.*, finetune.*, corruption.* "
                                 "and the label files (data.train_labels, data.test_labels)",
                                 o->overrides[i]);
    return 0;
}

/* The folder for a new fine-tuning: --out, or <run>-finetune, -2, ... */
static int pick_out(ft *t, daecl_err *err)
{
    const daecl_finetune_opts *o = t->o;
    if (o->out_dir)
        return daecl_runfiles_check_out(o->out_dir, t->r.cfg, err);
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s", o->run_dir);
    for (size_t n = strlen(base); n > 1 && base[n - 1] == '/';)
        base[--n] = '\0';
    for (unsigned k = 1; k < 10000; k++) {
        int w = k == 1 ? snprintf(t->dir, sizeof t->dir, "%s-finetune", base)
                       : snprintf(t->dir, sizeof t->dir, "%s-finetune-%u", base, k);
        if (w < 0 || (size_t)w >= sizeof t->dir)
            return daecl_err_set(err, DAECL_EUSAGE, "the path %s-finetune is too long; give "
                                 "--out DIR", base);
        if (daecl_folder_inspect(t->dir, DAECL_FOLDER_RUN, NULL, 0) == DAECL_FOLDER_ABSENT)
            return 0;
    }
    return daecl_err_set(err, DAECL_EUSAGE, "every folder %s-finetune-N is taken; give --out DIR",
                         base);
}

/* The device, the classifier's graph and the feeders, after the files. */
static int start_device(ft *t, daecl_err *err)
{
    daecl_run *r = &t->r;
    const daecl_config *c = r->cfg;
    int rc;
    if ((rc = daecl_session_create(c, NULL, &r->s, err)))
        return rc;
    uint32_t b = c->train.batch_size;
    if (b > r->train->n_rows)
        b = (uint32_t)r->train->n_rows;
    uint64_t limit = (uint64_t)(c->data.resident_max_mb * 1048576.0);
    size_t np = r->model.n_params;
    if ((rc = daecl_graph_create(r->s, &r->model, b, 0, c->optimizer.kind, c->optimizer.momentum,
                                 &r->g, err)) ||
        (rc = daecl_feeder_create(r->s, r->train, b, limit, "training set", &r->train_feed,
                                  err)) ||
        (rc = daecl_feeder_create(r->s, r->test, b, limit, "test set", &r->test_feed, err)) ||
        (r->valid && r->valid_y &&
         (rc = daecl_feeder_create(r->s, r->valid, b, limit, "validation set", &r->valid_feed,
                                   err))) ||
        (rc = daecl_session_alloc(r->s, b, "batch labels", &t->labels, err)))
        return rc;
    r->steps_per_epoch = (r->train->n_rows + b - 1) / b;
    t->ybatch = malloc(b * sizeof *t->ybatch);
    t->yint = malloc(b * sizeof *t->yint);
    t->logits = malloc((size_t)b * t->n_classes * sizeof *t->logits);
    r->s1 = r->g->state1 ? calloc(np, sizeof(float)) : NULL;
    r->s2 = r->g->state2 ? calloc(np, sizeof(float)) : NULL;
    if (!t->ybatch || !t->yint || !t->logits || (r->g->state1 && !r->s1) || (r->g->state2 && !r->s2))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the fine-tuning's host "
                             "buffers (%zu parameters)", np);
    return 0;
}

/* Cross-entropy and accuracy of the current parameters on a labelled set. */
static int eval_set(ft *t, daecl_feeder *data, const daecl_labels *y, double *loss, double *acc,
                    daecl_err *err)
{
    daecl_run *r = &t->r;
    size_t b = r->g->batch_max, n_rows = data->ds->n_rows, right = 0;
    uint32_t last = r->model.n_layers - 1;
    *loss = 0;
    int rc = daecl_feeder_sequential(data, err);
    for (size_t first = 0; first < n_rows && !rc; first += b) {
        size_t n = n_rows - first < b ? n_rows - first : b;
        daecl_slice x;
        if (!(rc = daecl_feeder_batch(data, first, n, &x, err)) &&
            !(rc = daecl_graph_forward(r->g, x, n, UINT32_MAX, err)) &&
            !(rc = daecl_session_read(r->s, daecl_graph_layer_out(r->g, last), t->logits,
                                      n * t->n_classes, err)))
            score(t->logits, y->y + first, n, t->n_classes, loss, &right);
    }
    *loss /= (double)n_rows;
    *acc = (double)right / (double)n_rows;
    return rc;
}

/* The test set's numbers, and the validation set's when the parent run has
 * one: the number to choose fine-tuning settings by. */
static int eval_epoch(ft *t, daecl_finetune_epoch *e, daecl_err *err)
{
    daecl_run *r = &t->r;
    int rc = eval_set(t, r->test_feed, r->test_y, &e->test_loss, &e->test_accuracy, err);
    e->have_valid = r->valid_feed != NULL;
    if (!rc && e->have_valid)
        rc = eval_set(t, r->valid_feed, r->valid_y, &e->valid_loss, &e->valid_accuracy, err);
    return rc;
}

/* One step on batch i of the epoch's order; the batch's loss sum and right
 * answers (before the step) are added to *loss and *right. */
static int step(ft *t, size_t i, double *loss, size_t *right, daecl_err *err)
{
    daecl_run *r = &t->r;
    daecl_graph *g = r->g;
    size_t b = g->batch_max, first = i * b;
    size_t n = r->train->n_rows - first < b ? r->train->n_rows - first : b;
    const uint32_t *order = r->train_feed->order;
    for (size_t k = 0; k < n; k++) { /* the labels of the rows the feeder gathers */
        t->yint[k] = r->train_y->y[order[first + k]];
        t->ybatch[k] = (float)t->yint[k];
    }
    uint64_t spe = r->steps_per_epoch;
    daecl_graph_set_lr(g, daecl_schedule_lr(r->cfg, (uint64_t)t->epochs_done * spe + i,
                                            (uint64_t)r->cfg->train.epochs * spe));
    daecl_slice x;
    int rc;
    if ((rc = daecl_feeder_batch(r->train_feed, first, n, &x, err)))
        return rc;
    if (r->cfg->finetune.corrupt) {
        /* the training corruption's stream in the fine-tuning's stage: keyed by
         * position in the epoch's order, as training's */
        daecl_noise_key key = {.seed = r->cfg->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                               .stage = DAECL_FINETUNE_STAGE, .epoch = t->epochs_done,
                               .pos0 = (uint32_t)first};
        daecl_shape shape;
        daecl_dataset_shape(r->train, &shape);
        daecl_slice xt = daecl_at(g->input, 0);
        if ((rc = daecl_session_corrupt(r->s, x, xt, n, r->model.dim, &shape, &key, err)))
            return rc;
        x = xt;
    }
    if ((rc = r->s->be->write(r->s->ctx, t->labels, 0, t->ybatch, n * sizeof *t->ybatch, err)) ||
        (rc = daecl_finetune_loss(g, x, daecl_at(t->labels, 0), n, 0, err)) ||
        (rc = daecl_graph_backward_update(g, x, n, r->cfg, t->step + 1, err)))
        return rc;
    t->step++;
    /* The logits of the forward pass: the step changed only the parameters. */
    if ((rc = daecl_session_read(r->s, daecl_graph_layer_out(g, r->model.n_layers - 1), t->logits,
                                 n * t->n_classes, err)))
        return rc;
    score(t->logits, t->yint, n, t->n_classes, loss, right);
    return 0;
}

static int save(ft *t, daecl_err *err)
{
    daecl_run *r = &t->r;
    int rc = daecl_run_fetch_params(r, err);
    if (rc == DAECL_ENAN)
        return daecl_err_set(err, DAECL_ENAN, "a parameter of the fine-tuning became not finite "
                             "in epoch %u; it stopped, and %s keeps epoch %u: try a smaller "
                             "optimizer.lr (now %g)", t->epochs_done + 1, t->ckpt, t->epochs_done,
                             r->cfg->optimizer.lr);
    if (rc)
        return rc;
    daecl_ckpt_state st = {.step = t->step, .epoch = t->epochs_done, .seed = r->cfg->seed,
                           .data_json = t->data_json};
    return daecl_checkpoint_save(t->ckpt, &r->model, r->cfg, r->params, r->s1, r->s2, &st, err);
}

static int metrics_line(ft *t, const daecl_finetune_epoch *e, int train, daecl_err *err)
{
    cJSON *o = daecl_metrics_obj("epoch", e->epoch, e->step);
    if (o && train) {
        cJSON_AddNumberToObject(o, "train_loss", e->train_loss);
        cJSON_AddNumberToObject(o, "train_accuracy", e->train_accuracy);
        cJSON_AddNumberToObject(o, "lr", e->lr);
    }
    if (o && e->have_valid) {
        cJSON_AddNumberToObject(o, "valid_loss", e->valid_loss);
        cJSON_AddNumberToObject(o, "valid_accuracy", e->valid_accuracy);
    }
    if (o) {
        cJSON_AddNumberToObject(o, "test_loss", e->test_loss);
        cJSON_AddNumberToObject(o, "test_accuracy", e->test_accuracy);
        cJSON_AddNumberToObject(o, "seconds", e->seconds);
    }
    int rc = daecl_metrics_line(t->metrics, o, err);
    if (!rc && t->o->on_epoch)
        t->o->on_epoch(t->o->ctx, e);
    return rc;
}

static int write_summary(ft *t, const daecl_finetune_epoch *e, int trained, daecl_err *err)
{
    char model[512];
    cJSON *o = cJSON_CreateObject();
    cJSON *parent = t->parent ? cJSON_Duplicate(t->parent, 1) : NULL;
    if (!o || !parent) {
        cJSON_Delete(o);
        cJSON_Delete(parent);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s/summary.json", t->dir);
    }
    cJSON_AddStringToObject(o, "status", "finished");
    cJSON_AddStringToObject(o, "run_dir", t->dir);
    cJSON_AddItemToObject(o, "parent", parent);
    cJSON_AddStringToObject(o, "model", daecl_model_describe(&t->r.model, model, sizeof model));
    cJSON_AddStringToObject(o, "backend", t->r.cfg->backend.name);
    cJSON_AddStringToObject(o, "device", daecl_session_device_name(t->r.s));
    cJSON_AddNumberToObject(o, "epochs", e->epoch);
    cJSON_AddNumberToObject(o, "steps", (double)e->step);
    cJSON_AddNumberToObject(o, "train_examples", (double)t->r.train->n_rows);
    cJSON_AddNumberToObject(o, "test_examples", (double)t->r.test->n_rows);
    if (trained) { /* the last epoch ran in this process */
        cJSON_AddNumberToObject(o, "train_loss", e->train_loss);
        cJSON_AddNumberToObject(o, "train_accuracy", e->train_accuracy);
    }
    if (e->have_valid) {
        cJSON_AddNumberToObject(o, "valid_loss", e->valid_loss);
        cJSON_AddNumberToObject(o, "valid_accuracy", e->valid_accuracy);
    }
    cJSON_AddNumberToObject(o, "test_loss", e->test_loss);
    cJSON_AddNumberToObject(o, "test_accuracy", e->test_accuracy);
    cJSON_AddNumberToObject(o, "seconds", e->seconds);
    return daecl_runfiles_write_json(t->dir, "summary.json", o, "summary", err);
}

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "Ctrl-C (SIGINT)" : sig == SIGTERM ? "SIGTERM"
           : sig == SIGHUP ? "SIGHUP" : "a signal";
}

/* The epochs from t->epochs_done to train.epochs, each checkpointed. */
static int train(ft *t, daecl_finetune_epoch *e, daecl_err *err)
{
    daecl_run *r = &t->r;
    const daecl_config *c = r->cfg;
    int rc;
    while (t->epochs_done < c->train.epochs) {
        uint32_t epoch = t->epochs_done;
        double loss = 0;
        size_t right = 0;
        if ((rc = daecl_feeder_shuffle_stage(r->train_feed, c->seed, DAECL_FINETUNE_STAGE, epoch,
                                             err)))
            return rc;
        for (size_t i = 0; i < r->steps_per_epoch; i++) {
            if ((rc = step(t, i, &loss, &right, err)))
                return rc;
            if (!isfinite(loss))
                return daecl_err_set(err, DAECL_ENAN, "the fine-tuning's loss became %g in "
                                     "epoch %u; it stopped, and %s keeps epoch %u: try a smaller "
                                     "optimizer.lr (now %g)", loss, epoch + 1, t->ckpt, epoch,
                                     c->optimizer.lr);
            if (t->o->stop && *t->o->stop && i + 1 < r->steps_per_epoch)
                return daecl_err_set(err, DAECL_EINTR, "fine-tuning was stopped by %s in "
                                     "epoch %u; %s holds epoch %u, and `daecl finetune --resume "
                                     "%s` redoes epoch %u from its start",
                                     signal_name((int)*t->o->stop), epoch + 1, t->ckpt, epoch, t->dir,
                                     epoch + 1);
        }
        t->epochs_done++;
        *e = (daecl_finetune_epoch){.epoch = t->epochs_done, .epochs = c->train.epochs,
                                    .step = t->step,
                                    .train_loss = loss / (double)r->train->n_rows,
                                    .train_accuracy = (double)right / (double)r->train->n_rows,
                                    .lr = daecl_schedule_lr(c, (uint64_t)t->epochs_done *
                                                                   r->steps_per_epoch - 1,
                                                            (uint64_t)c->train.epochs *
                                                                r->steps_per_epoch)};
        if ((rc = eval_epoch(t, e, err)) || (rc = save(t, err)))
            return rc;
        e->seconds = now_s() - t->t0;
        if ((rc = metrics_line(t, e, 1, err)))
            return rc;
        /* a stop that came with the epoch's last step ends here, checkpointed */
        if (t->o->stop && *t->o->stop && t->epochs_done < c->train.epochs)
            return daecl_err_set(err, DAECL_EINTR, "fine-tuning was stopped by %s after "
                                 "epoch %u; `daecl finetune --resume %s` goes on from there",
                                 signal_name((int)*t->o->stop), t->epochs_done, t->dir);
    }
    return 0;
}

/* run's checkpoint into a freshly made dae layout, then the classifier's
 * parameters from it; the parent's description into t->parent. */
static int take_parent(ft *t, const char *ckpt, daecl_err *err)
{
    daecl_run *r = &t->r;
    daecl_ckpt_state pst;
    char hex[65], abs_run[PATH_MAX], abs_ckpt[PATH_MAX];
    float *pp = malloc(t->dae.n_params * sizeof *pp);
    r->params = malloc(r->model.n_params * sizeof *r->params);
    if (!pp || !r->params) {
        free(pp);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory reading checkpoint %s", ckpt);
    }
    int rc = daecl_checkpoint_load(ckpt, &t->dae, pp, NULL, NULL, &pst, err);
    if (!rc)
        rc = daecl_provenance_sha256_file(ckpt, hex, err);
    if (!rc)
        daecl_finetune_take_encoder(&t->dae, pp, &r->model, r->params);
    free(pp);
    if (rc)
        return rc;
    if (!realpath(t->o->run_dir, abs_run))
        snprintf(abs_run, sizeof abs_run, "%s", t->o->run_dir);
    if (!realpath(ckpt, abs_ckpt))
        snprintf(abs_ckpt, sizeof abs_ckpt, "%s", ckpt);
    cJSON *p = t->parent = cJSON_CreateObject();
    if (!p)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory describing run %s", t->o->run_dir);
    cJSON_AddStringToObject(p, "run", abs_run);
    cJSON_AddStringToObject(p, "checkpoint", abs_ckpt);
    cJSON_AddStringToObject(p, "checkpoint_sha256", hex);
    cJSON_AddNumberToObject(p, "epochs", pst.epoch);
    cJSON_AddNumberToObject(p, "steps", (double)pst.step);
    cJSON_AddNumberToObject(p, "n_classes", t->n_classes);
    cJSON_AddStringToObject(p, "classifier_init", "zeros");
    cJSON_AddNumberToObject(p, "shuffle_stage", DAECL_FINETUNE_STAGE);
    return 0;
}

/* The config and data of a run, checked against the checkpoint at ckpt
 * (mode: eval's rules for a parent, resume's for a fine-tuning); the dae
 * and classifier layouts. */
static int open_run(ft *t, const char *run, const char *ckpt, daecl_compat_mode mode,
                    daecl_err *err)
{
    daecl_run *r = &t->r;
    char cfg_path[PATH_MAX];
    char *stored[2] = {NULL, NULL};
    static const char *const keys[2] = {"daecl.config", "daecl.data"};
    struct stat sb;
    int rc;
    if ((rc = daecl_path_join(cfg_path, sizeof cfg_path, run, "config.yaml", err)))
        return rc;
    if (stat(ckpt, &sb) != 0)
        return daecl_err_set(err, DAECL_EUSAGE, "%s holds no %s: fine-tuning needs a trained "
                             "run's folder (train or resume it first)", run, CKPT_FILE);
    if ((rc = daecl_run_configure(r, cfg_path, t->o->overrides, t->o->n_overrides, err)) ||
        (rc = open_labels_of(run, r, err)) ||
        (rc = daecl_checkpoint_meta(ckpt, keys, 2, stored, err)))
        goto done;
    if ((stored[0] && (rc = daecl_compat_config(stored[0], ckpt, r->cfg, mode, 0, err))) ||
        (rc = daecl_run_load_data(r, 1, err)) ||
        (mode == DAECL_COMPAT_RESUME &&
         (rc = daecl_compat_data(stored[1], ckpt, &r->digest, r->cfg, err))))
        goto done;
    t->n_classes = r->train_y->n_classes;
    if (t->n_classes < 2) {
        rc = daecl_err_set(err, DAECL_EDATA, "data.train_labels %s holds one class only; a "
                           "classifier needs at least two", r->cfg->data.train_labels);
        goto done;
    }
    const daecl_likelihood_ops *lik = r->cfg->likelihood.plugin->ops;
    if ((rc = daecl_model_init(&t->dae, r->cfg, (uint32_t)r->train->dim, lik->params_per_dim,
                               err)))
        goto done;
    daecl_finetune_model(&t->dae, t->n_classes, r->cfg->optimizer.kind, &r->model);
    if (!(t->data_json = daecl_data_digest_json(&r->digest)))
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory describing the data of %s", run);
done:
    free(stored[0]);
    free(stored[1]);
    return rc;
}

/* A new fine-tuning of o->run_dir. */
static int start_new(ft *t, daecl_finetune_epoch *e, daecl_err *err)
{
    const daecl_finetune_opts *o = t->o;
    char parent_ckpt[PATH_MAX];
    int rc;
    if ((rc = daecl_folder_check_own_run(o->run_dir, "finetune", err)) ||
        (rc = daecl_path_join(parent_ckpt, sizeof parent_ckpt, o->run_dir, CKPT_FILE, err)) ||
        (rc = open_run(t, o->run_dir, parent_ckpt, DAECL_COMPAT_EVAL, err)) ||
        (rc = take_parent(t, parent_ckpt, err)) || (rc = pick_out(t, err)))
        return rc;
    char out[PATH_MAX];
    snprintf(out, sizeof out, "%s", o->out_dir ? o->out_dir : t->dir);
    cJSON *doc = cJSON_Duplicate(t->parent, 1);
    if ((rc = daecl_runfiles_make_dir(out, t->r.cfg, t->dir, sizeof t->dir, &t->lock, err)) ||
        (rc = daecl_path_join(t->ckpt, sizeof t->ckpt, t->dir, CKPT_FILE, err)) ||
        (rc = daecl_runfiles_write_config(t->dir, t->r.cfg, err)) ||
        (rc = daecl_metrics_open(t->dir, 0, 0, &t->metrics, err))) {
        cJSON_Delete(doc);
        return rc;
    }
    if (!doc)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s/%s", t->dir, FT_FILE);
    if ((rc = daecl_runfiles_write_json(t->dir, FT_FILE, doc, "fine-tuning description", err)) ||
        (rc = start_device(t, err)) || (rc = daecl_graph_set_params(t->r.g, t->r.params, err)))
        return rc;
    /* epoch 0: the start, checkpointed so that a stop in epoch 1 resumes */
    *e = (daecl_finetune_epoch){.epochs = t->r.cfg->train.epochs};
    if ((rc = eval_epoch(t, e, err)) || (rc = save(t, err)))
        return rc;
    e->seconds = now_s() - t->t0;
    return metrics_line(t, e, 0, err);
}

/* finetune.json of a fine-tuning folder into t->parent. */
static int read_description(ft *t, daecl_err *err)
{
    char path[PATH_MAX];
    int rc = daecl_path_join(path, sizeof path, t->o->run_dir, FT_FILE, err);
    if (rc)
        return rc;
    FILE *f = fopen(path, "rb");
    char buf[16384];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    if (!f || !(t->parent = cJSON_Parse(buf)) || !cJSON_IsObject(t->parent))
        return daecl_err_set(err, DAECL_EUSAGE, "%s is not a fine-tuning folder (%s is missing "
                             "or not JSON); `daecl finetune --resume` continues what `daecl "
                             "finetune RUN_DIR` started", t->o->run_dir, FT_FILE);
    return 0;
}

/* Continues the fine-tuning in o->run_dir from its checkpoint. */
static int start_resume(ft *t, daecl_err *err)
{
    const daecl_finetune_opts *o = t->o;
    daecl_run *r = &t->r;
    daecl_ckpt_state st;
    int rc;
    snprintf(t->dir, sizeof t->dir, "%s", o->run_dir);
    if ((rc = daecl_folder_check_own_run(o->run_dir, "finetune --resume", err)) ||
        (rc = read_description(t, err)) ||
        (rc = daecl_path_join(t->ckpt, sizeof t->ckpt, t->dir, CKPT_FILE, err)) ||
        (rc = daecl_lock_acquire(t->dir, "finetune", &t->lock, err)))
        return rc;
    size_t stale = daecl_remove_stale_temps(t->dir);
    if (stale)
        daecl_log(DAECL_LOG_INFO, NULL, "removed %zu temporary file%s left in %s by an "
                  "interrupted run", stale, stale == 1 ? "" : "s", t->dir);
    if ((rc = open_run(t, t->dir, t->ckpt, DAECL_COMPAT_RESUME, err)))
        return rc;
    cJSON *nc = cJSON_GetObjectItem(t->parent, "n_classes");
    if (!cJSON_IsNumber(nc) || nc->valuedouble != t->n_classes)
        return daecl_err_set(err, DAECL_ECONFIG, "%s/%s names another number of classes than "
                             "the labels hold (%u); resume with the labels it was started with",
                             t->dir, FT_FILE, t->n_classes);
    if (!(r->params = malloc(r->model.n_params * sizeof *r->params)))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory reading checkpoint %s", t->ckpt);
    if ((rc = start_device(t, err)) ||
        (rc = daecl_checkpoint_load(t->ckpt, &r->model, r->params, r->s1, r->s2, &st, err)) ||
        (rc = daecl_graph_set_params(r->g, r->params, err)) ||
        (rc = daecl_graph_set_state(r->g, r->s1, r->s2, err)) ||
        (rc = daecl_metrics_open(t->dir, 1, st.step, &t->metrics, err)))
        return rc;
    t->step = st.step;
    t->epochs_done = st.epoch;
    return 0;
}

int daecl_finetune_run(const daecl_finetune_opts *o, char *out_dir, size_t n,
                       daecl_finetune_epoch *last, daecl_err *err)
{
    ft t = {.o = o, .t0 = now_s()};
    daecl_finetune_epoch e = {0};
    int rc = check_overrides(o, err);
    if (!rc)
        rc = o->resume ? start_resume(&t, err) : start_new(&t, &e, err);
    if (!rc)
        rc = train(&t, &e, err);
    /* a resumed run that had nothing left still reports where it is */
    int trained = e.epoch > 0 && e.epoch == t.epochs_done;
    if (!rc && e.epoch != t.epochs_done) {
        e = (daecl_finetune_epoch){.epoch = t.epochs_done, .epochs = t.r.cfg->train.epochs,
                                   .step = t.step, .seconds = now_s() - t.t0};
        rc = eval_epoch(&t, &e, err);
    }
    if (!rc)
        rc = write_summary(&t, &e, trained, err);
    if (out_dir && n)
        snprintf(out_dir, n, "%s", t.dir);
    if (last)
        *last = e;
    daecl_metrics_close(t.metrics);
    if (t.r.s)
        daecl_session_free(t.r.s, t.labels);
    daecl_run_close(&t.r);
    daecl_lock_release(t.lock);
    free(t.ybatch);
    free(t.yint);
    free(t.logits);
    free(t.data_json);
    cJSON_Delete(t.parent);
    return rc;
}
