/* daecl — the train loop and the run folder it keeps. */
#include "core/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/checkpoint.h"
#include "core/config.h"
#include "core/data.h"
#include "core/error.h"
#include "core/eval.h"
#include "core/feeder.h"
#include "core/fsutil.h"
#include "core/graph.h"
#include "core/log.h"
#include "core/model.h"
#include "core/registry.h"
#include "core/session.h"

typedef struct trainer {
    const daecl_train_opts *opts;
    daecl_registry *reg;
    daecl_config *cfg;
    daecl_dataset *train, *test;
    daecl_model model;
    daecl_session *s;
    daecl_graph *g;
    daecl_feeder *train_feed, *test_feed;
    daecl_buf *losses;   /* (steps_per_epoch): each step's batch loss sum */
    float *host_losses;  /* host copy, filled as logging reads them */
    float *params, *s1, *s2;
    size_t steps_per_epoch;
    uint64_t step;       /* optimiser steps taken */
    char run_dir[PATH_MAX];
    char ckpt_path[PATH_MAX];
    FILE *metrics;
} trainer;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int path_join(char *out, size_t n, const char *dir, const char *name, daecl_err *err)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n)
        return daecl_err_set(err, DAECL_EIO, "path %s/%s is too long", dir, name);
    return 0;
}

/* ---- the run folder -------------------------------------------------------- */

static int make_run_dir(trainer *t, daecl_err *err)
{
    const char *out = t->opts->out_dir;
    int rc;
    if (out) {
        if ((rc = daecl_mkdirs(out, err)))
            return rc;
        snprintf(t->run_dir, sizeof t->run_dir, "%s", out);
        char ck[PATH_MAX];
        if ((rc = path_join(ck, sizeof ck, out, "checkpoint.safetensors", err)))
            return rc;
        struct stat st;
        if (stat(ck, &st) == 0)
            return daecl_err_set(err, DAECL_EUSAGE, "run folder %s already holds a checkpoint; "
                                 "continue it with `daecl resume %s` or choose another --out",
                                 out, out);
        return 0;
    }
    if ((rc = daecl_mkdirs(t->cfg->output.dir, err)))
        return rc;
    /* runs/NAME, else runs/NAME-2, -3, ...: never reuse a folder. */
    for (unsigned i = 1; i < 100000; i++) {
        char name[DAECL_NAME_MAX + 16];
        if (i == 1)
            snprintf(name, sizeof name, "%s", t->cfg->name);
        else
            snprintf(name, sizeof name, "%s-%u", t->cfg->name, i);
        if ((rc = path_join(t->run_dir, sizeof t->run_dir, t->cfg->output.dir, name, err)))
            return rc;
        if (mkdir(t->run_dir, 0755) == 0)
            return 0;
        if (errno != EEXIST) {
            int e = errno;
            return daecl_err_set(err, DAECL_EIO, "cannot create run folder %s: %s; %s",
                                 t->run_dir, strerror(e), daecl_errno_hint(e));
        }
    }
    return daecl_err_set(err, DAECL_EIO, "cannot find a free run folder name under %s; "
                         "clean it up or set output.dir", t->cfg->output.dir);
}

static int write_config(trainer *t, daecl_err *err)
{
    char path[PATH_MAX];
    int rc = path_join(path, sizeof path, t->run_dir, "config.yaml", err);
    if (rc)
        return rc;
    char *yaml = daecl_config_to_yaml(t->cfg);
    if (!yaml)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
    rc = daecl_write_file_atomic(path, yaml, strlen(yaml), "config", err);
    free(yaml);
    return rc;
}

/* Appends one JSON object as a line of metrics.jsonl and frees it. */
static int metrics_line(trainer *t, cJSON *obj, daecl_err *err)
{
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing metrics");
    int bad = fprintf(t->metrics, "%s\n", s) < 0 || fflush(t->metrics) != 0;
    free(s);
    if (bad) {
        int e = errno;
        return daecl_err_set(err, DAECL_EIO, "cannot write %s/metrics.jsonl: %s; %s", t->run_dir,
                             strerror(e), daecl_errno_hint(e));
    }
    return 0;
}

/* ---- set-up -------------------------------------------------------------- */

static int load_data(trainer *t, daecl_err *err)
{
    const daecl_config *c = t->cfg;
    int rc = daecl_dataset_load(c->data.train, c->data.train_limit, 0, &t->train, err);
    if (rc)
        return rc;
    if (c->data.test[0]) {
        if ((rc = daecl_dataset_load(c->data.test, c->data.test_limit, 0, &t->test, err)))
            return rc;
        if (t->test->dim != t->train->dim)
            return daecl_err_set(err, DAECL_EDATA, "test set %s has %zu values per example but "
                                 "the training set %s has %zu; use matching files",
                                 c->data.test, t->test->dim, c->data.train, t->train->dim);
    }
    if (t->train->dim > UINT32_MAX / 4)
        return daecl_err_set(err, DAECL_EDATA, "training set %s has %zu values per example; "
                             "daecl supports at most %u", c->data.train, t->train->dim,
                             UINT32_MAX / 4);
    if (strcmp(c->likelihood.name, "bernoulli") == 0 && (t->train->min < 0 || t->train->max > 1))
        daecl_log(DAECL_LOG_WARN, NULL, "the training data spans [%g, %g] but the bernoulli "
                  "likelihood expects values in [0, 1]; consider likelihood.plugin=gaussian",
                  (double)t->train->min, (double)t->train->max);
    return 0;
}

static int setup(trainer *t, daecl_err *err)
{
    const daecl_train_opts *o = t->opts;
    int rc = daecl_registry_create(NULL, &t->reg, err);
    if (rc)
        return rc;
    if ((rc = daecl_config_load(o->config_path, o->overrides, o->n_overrides, t->reg, &t->cfg, err)))
        return rc;
    if ((rc = load_data(t, err)))
        return rc;
    const daecl_config *c = t->cfg;
    const daecl_likelihood_ops *lik = c->likelihood.plugin->ops;
    if ((rc = daecl_model_init(&t->model, c, (uint32_t)t->train->dim, lik->params_per_dim, err)))
        return rc;
    if ((rc = daecl_session_create(c, &t->s, err)))
        return rc;
    uint32_t b = c->train.batch_size;
    if (b > t->train->n_rows)
        b = (uint32_t)t->train->n_rows;
    if ((rc = daecl_graph_create(t->s, &t->model, b, c->optimizer.kind, c->optimizer.momentum,
                                 &t->g, err)))
        return rc;
    uint64_t limit = (uint64_t)(c->data.resident_max_mb * 1048576.0);
    if ((rc = daecl_feeder_create(t->s, t->train, b, limit, "training set", &t->train_feed, err)))
        return rc;
    if (t->test &&
        (rc = daecl_feeder_create(t->s, t->test, b, limit, "test set", &t->test_feed, err)))
        return rc;
    t->steps_per_epoch = (t->train->n_rows + b - 1) / b;
    if ((rc = daecl_session_alloc(t->s, t->steps_per_epoch, "loss history", &t->losses, err)))
        return rc;
    size_t np = t->model.n_params;
    t->host_losses = calloc(t->steps_per_epoch, sizeof(float));
    t->params = malloc(np * sizeof(float));
    t->s1 = t->g->state1 ? calloc(np, sizeof(float)) : NULL;
    t->s2 = t->g->state2 ? calloc(np, sizeof(float)) : NULL;
    if (!t->host_losses || !t->params || (t->g->state1 && !t->s1) || (t->g->state2 && !t->s2))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for host copies of %zu parameters",
                             np);
    daecl_model_init_params(&t->model, c->seed, t->params);
    return daecl_graph_set_params(t->g, t->params, err);
}

static void teardown(trainer *t)
{
    if (t->metrics)
        fclose(t->metrics);
    if (t->s)
        t->s->be->free(t->s->ctx, t->losses);
    daecl_feeder_destroy(t->train_feed);
    daecl_feeder_destroy(t->test_feed);
    daecl_graph_destroy(t->g);
    daecl_session_destroy(t->s);
    daecl_dataset_destroy(t->train);
    daecl_dataset_destroy(t->test);
    daecl_config_destroy(t->cfg);
    daecl_registry_destroy(t->reg);
    free(t->host_losses);
    free(t->params);
    free(t->s1);
    free(t->s2);
}

/* ---- the loop -------------------------------------------------------------- */

/* One optimiser step on batch `i` of the epoch; its loss sum goes to slot i. */
static int train_step(trainer *t, size_t i, size_t *rows, daecl_err *err)
{
    const daecl_config *c = t->cfg;
    size_t b = t->g->batch_max, n_rows = t->train->n_rows, dim = t->train->dim;
    size_t first = i * b, n = n_rows - first < b ? n_rows - first : b;
    daecl_slice x, xt = daecl_at(t->g->input, 0);
    daecl_noise_key key = {.seed = c->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                           .step = (uint32_t)t->step, .elem0 = 0};
    int rc;
    if ((rc = daecl_feeder_batch(t->train_feed, first, n, &x, err)) ||
        (rc = daecl_session_corrupt(t->s, x, xt, n, dim, &key, err)) ||
        (rc = daecl_graph_forward(t->g, xt, n, UINT32_MAX, err)) ||
        (rc = daecl_graph_loss(t->g, x, n, daecl_at(t->losses, i), 1, err)) ||
        (rc = daecl_graph_backward(t->g, xt, n, err)) ||
        (rc = daecl_graph_update(t->g, c, t->step + 1, err)))
        return rc;
    t->step++;
    *rows = n;
    return 0;
}

/* Reads slots [from, to) of the epoch's losses; returns their sum. */
static int read_losses(trainer *t, size_t from, size_t to, double *sum, daecl_err *err)
{
    *sum = 0;
    if (to <= from)
        return 0;
    int rc = t->s->be->read(t->s->ctx, t->losses, from * sizeof(float), t->host_losses + from,
                            (to - from) * sizeof(float), err);
    if (rc)
        return rc;
    for (size_t i = from; i < to; i++)
        *sum += t->host_losses[i];
    return 0;
}

static int nan_stop(trainer *t, uint32_t epoch, daecl_err *err)
{
    struct stat st;
    int have_ckpt = stat(t->ckpt_path, &st) == 0;
    return daecl_err_set(err, DAECL_ENAN,
                         "the training loss became %s by step %" PRIu64 " (epoch %u); training "
                         "stopped%s%s; try a smaller optimizer.lr (now %g)",
                         "NaN or infinite", t->step, epoch + 1,
                         have_ckpt ? " and the last good checkpoint is kept in " : "",
                         have_ckpt ? t->ckpt_path : "", t->cfg->optimizer.lr);
}

static int save_checkpoint(trainer *t, uint32_t epochs_done, daecl_err *err)
{
    int rc = daecl_graph_get_params(t->g, t->params, err);
    if (!rc)
        rc = daecl_graph_get_state(t->g, t->s1, t->s2, err);
    if (rc)
        return rc;
    daecl_ckpt_state st = {.step = t->step, .epoch = epochs_done, .seed = t->cfg->seed};
    return daecl_checkpoint_save(t->ckpt_path, &t->model, t->cfg, t->params, t->s1, t->s2, &st,
                                 err);
}

typedef struct epoch_result {
    double train_nll, test_clean, test_corrupted, examples_per_s, seconds;
    int have_test;
} epoch_result;

static int write_summary(trainer *t, const epoch_result *last, uint32_t epochs_done,
                         double seconds, daecl_err *err)
{
    char path[PATH_MAX], model[512];
    int rc = path_join(path, sizeof path, t->run_dir, "summary.json", err);
    if (rc)
        return rc;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
    cJSON_AddStringToObject(o, "name", t->cfg->name);
    cJSON_AddStringToObject(o, "run_dir", t->run_dir);
    cJSON_AddStringToObject(o, "model", daecl_model_describe(&t->model, model, sizeof model));
    cJSON_AddStringToObject(o, "backend", t->cfg->backend.name);
    cJSON_AddStringToObject(o, "device", daecl_session_device_name(t->s));
    cJSON_AddNumberToObject(o, "epochs", epochs_done);
    cJSON_AddNumberToObject(o, "steps", (double)t->step);
    cJSON_AddNumberToObject(o, "train_examples", (double)t->train->n_rows);
    cJSON_AddNumberToObject(o, "train_nll", last->train_nll);
    if (last->have_test) {
        cJSON_AddNumberToObject(o, "test_examples", (double)t->test->n_rows);
        cJSON_AddNumberToObject(o, "test_nll_clean", last->test_clean);
        cJSON_AddNumberToObject(o, "test_nll_corrupted", last->test_corrupted);
    }
    cJSON_AddNumberToObject(o, "examples_per_s", last->examples_per_s);
    cJSON_AddNumberToObject(o, "seconds", seconds);
    cJSON_AddStringToObject(o, "checkpoint", t->ckpt_path);
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    if (!s)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
    size_t len = strlen(s);
    s[len] = '\n'; /* cJSON leaves room for its NUL, which the file does not need */
    rc = daecl_write_file_atomic(path, s, len + 1, "summary", err);
    free(s);
    return rc;
}

static int run(trainer *t, daecl_err *err)
{
    const daecl_config *c = t->cfg;
    char model[512];
    int quiet = t->opts->quiet;
    uint32_t epochs = c->train.epochs;
    if (!quiet)
        printf("daecl: training %s on %s, %zu training%s examples, batch %u, %zu steps per "
               "epoch, %u epochs\n",
               daecl_model_describe(&t->model, model, sizeof model),
               daecl_session_device_name(t->s), t->train->n_rows,
               t->test ? "" : " (no test set)", t->g->batch_max, t->steps_per_epoch, epochs);
    double t_start = now_seconds();
    epoch_result last = {0};
    uint32_t epochs_done = 0;
    int rc = 0, stopped = 0;
    /* Epoch 0: the untrained model's test NLL, the baseline every later
     * epoch is read against. */
    if (t->test) {
        daecl_nll_result r;
        if ((rc = daecl_eval_nll(t->g, t->test_feed, c->seed, &r, err)))
            return rc;
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "type", "epoch");
            cJSON_AddNumberToObject(o, "epoch", 0);
            cJSON_AddNumberToObject(o, "step", 0);
            cJSON_AddNumberToObject(o, "test_nll_clean", r.clean);
            cJSON_AddNumberToObject(o, "test_nll_corrupted", r.corrupted);
        }
        if ((rc = metrics_line(t, o, err)))
            return rc;
        if (!quiet)
            printf("epoch 0/%u (untrained): test_nll clean %.4f corrupted %.4f\n", epochs, r.clean,
                   r.corrupted);
    }
    for (uint32_t epoch = 0; epoch < epochs && !stopped; epoch++) {
        if ((rc = daecl_feeder_shuffle(t->train_feed, c->seed, epoch, err)))
            return rc;
        double t_epoch = now_seconds(), t_log = t_epoch;
        size_t logged = 0, rows_epoch = 0, rows_log = 0, i;
        for (i = 0; i < t->steps_per_epoch; i++) {
            size_t rows;
            if ((rc = train_step(t, i, &rows, err)))
                return rc;
            rows_epoch += rows;
            rows_log += rows;
            if (c->train.log_every && t->step % c->train.log_every == 0) {
                double sum, tnow;
                if ((rc = read_losses(t, logged, i + 1, &sum, err)))
                    return rc;
                logged = i + 1;
                if (!isfinite(sum))
                    return nan_stop(t, epoch, err);
                tnow = now_seconds();
                double nll = sum / (double)rows_log, rate = (double)rows_log / (tnow - t_log);
                if (!quiet)
                    printf("epoch %u/%u  step %zu/%zu  train_nll %.4f  %.0f examples/s\n",
                           epoch + 1, epochs, i + 1, t->steps_per_epoch, nll, rate);
                cJSON *o = cJSON_CreateObject();
                if (o) {
                    cJSON_AddStringToObject(o, "type", "step");
                    cJSON_AddNumberToObject(o, "epoch", epoch + 1);
                    cJSON_AddNumberToObject(o, "step", (double)t->step);
                    cJSON_AddNumberToObject(o, "train_nll", nll);
                    cJSON_AddNumberToObject(o, "examples_per_s", rate);
                    cJSON_AddNumberToObject(o, "seconds", tnow - t_start);
                }
                if ((rc = metrics_line(t, o, err)))
                    return rc;
                t_log = tnow;
                rows_log = 0;
            }
            if (c->train.max_steps && t->step >= c->train.max_steps) {
                stopped = 1;
                i++;
                break;
            }
        }
        double rest;
        if ((rc = read_losses(t, logged, i, &rest, err)))
            return rc;
        double sum = 0;
        for (size_t k = 0; k < i; k++)
            sum += t->host_losses[k];
        if (!isfinite(sum))
            return nan_stop(t, epoch, err);
        double train_seconds = now_seconds() - t_epoch;
        last.train_nll = sum / (double)rows_epoch;
        last.examples_per_s = (double)rows_epoch / train_seconds;
        if (t->test) {
            daecl_nll_result r;
            if ((rc = daecl_eval_nll(t->g, t->test_feed, c->seed, &r, err)))
                return rc;
            last.test_clean = r.clean;
            last.test_corrupted = r.corrupted;
            last.have_test = 1;
        }
        last.seconds = now_seconds() - t_epoch;
        if (i == t->steps_per_epoch)
            epochs_done = epoch + 1;
        if ((rc = save_checkpoint(t, epochs_done, err)))
            return rc;
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "type", "epoch");
            cJSON_AddNumberToObject(o, "epoch", epoch + 1);
            cJSON_AddNumberToObject(o, "step", (double)t->step);
            cJSON_AddNumberToObject(o, "train_nll", last.train_nll);
            if (last.have_test) {
                cJSON_AddNumberToObject(o, "test_nll_clean", last.test_clean);
                cJSON_AddNumberToObject(o, "test_nll_corrupted", last.test_corrupted);
            }
            cJSON_AddNumberToObject(o, "examples_per_s", last.examples_per_s);
            cJSON_AddNumberToObject(o, "seconds", last.seconds);
        }
        if ((rc = metrics_line(t, o, err)))
            return rc;
        if (!quiet) {
            printf("epoch %u/%u done: train_nll %.4f", epoch + 1, epochs, last.train_nll);
            if (last.have_test)
                printf("  test_nll clean %.4f corrupted %.4f", last.test_clean,
                       last.test_corrupted);
            printf("  (%.0f examples/s, %.1f s)\n", last.examples_per_s, last.seconds);
            fflush(stdout);
        }
    }
    if (stopped && !quiet)
        printf("daecl: stopped after train.max_steps = %" PRIu64 " steps\n", c->train.max_steps);
    return write_summary(t, &last, epochs_done, now_seconds() - t_start, err);
}

int daecl_train(const daecl_train_opts *opts, char *run_dir, size_t run_dir_n, daecl_err *err)
{
    trainer t = {.opts = opts};
    if (run_dir && run_dir_n)
        run_dir[0] = '\0';
    int rc = setup(&t, err);
    if (rc)
        goto done;
    if ((rc = make_run_dir(&t, err)))
        goto done;
    if (run_dir && run_dir_n)
        snprintf(run_dir, run_dir_n, "%s", t.run_dir);
    if ((rc = path_join(t.ckpt_path, sizeof t.ckpt_path, t.run_dir, "checkpoint.safetensors", err)) ||
        (rc = write_config(&t, err)))
        goto done;
    char path[PATH_MAX];
    if ((rc = path_join(path, sizeof path, t.run_dir, "metrics.jsonl", err)))
        goto done;
    t.metrics = fopen(path, "w");
    if (!t.metrics) {
        int e = errno;
        rc = daecl_err_set(err, DAECL_EIO, "cannot create %s: %s; %s", path, strerror(e),
                           daecl_errno_hint(e));
        goto done;
    }
    rc = run(&t, err);
done:
    teardown(&t);
    return rc;
}
