/* daecl — the train loop and its checkpoints; the run folder's other files
 * are core/runfiles.c's. */
#include "core/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/evaluate.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/provenance.h"
#include "core/run.h"
#include "core/run_pictures.h"
#include "core/runfiles.h"
#include "core/runfolder.h"
#include "core/stack.h"

typedef struct trainer {
    const daecl_train_opts *opts;
    daecl_run r;
    daecl_buf *losses;  /* (steps_per_epoch): each step's batch loss sum, this epoch */
    float *host_losses; /* host copy of the slots read so far */
    size_t read_upto;   /* slots [.., read_upto) of this epoch are counted in epoch_sum */
    double epoch_sum;   /* loss sum of this epoch's steps read so far (incl. resumed) */
    uint64_t epoch_rows; /* rows of this epoch's steps taken (incl. resumed) */
    uint64_t step;      /* optimiser steps taken */
    uint64_t optim_step0; /* the step the optimiser's state last started from zero */
    uint32_t epochs_done;
    size_t first_step;  /* the step within the epoch a resumed run starts at */
    int resumed;
    char run_dir[PATH_MAX];
    char ckpt_path[PATH_MAX];
    char *data_json;    /* the data's digest, stored in every checkpoint */
    char *plugins_json; /* the plugins' provenance, in every checkpoint and the summary */
    daecl_lock *lock;   /* the run folder's, held from claim (or resume) to the end */
    daecl_metrics *metrics;
    daecl_progress progress;
    double t_start;
    daecl_comm *comm;   /* the world (one process without a launcher) */
    int rank0;          /* this rank writes the run folder and says what happens */
    int training;       /* step 0 is under way: a lone rank's failure must end the job */
} trainer;

/* ---- losses, checkpoints ----------------------------------------------------- */

static int nan_stop(trainer *t, daecl_err *err)
{
    struct stat st;
    int have_ckpt = stat(t->ckpt_path, &st) == 0;
    return daecl_err_set(err, DAECL_ENAN,
                         "the training loss became NaN or infinite by step %" PRIu64
                         " (epoch %u); training stopped%s%s; try a smaller optimizer.lr (now %g)",
                         t->step, t->epochs_done + 1,
                         have_ckpt ? " and the last good checkpoint is kept in " : "",
                         have_ckpt ? t->ckpt_path : "", t->r.cfg->optimizer.lr);
}

/* Reads loss slots [read_upto, upto) of this epoch; *new_sum gets their sum.
 * A non-finite loss stops training here. */
static int read_losses(trainer *t, size_t upto, double *new_sum, daecl_err *err)
{
    double sum = 0;
    if (upto > t->read_upto) {
        daecl_session *s = t->r.s;
        int rc = daecl_session_read(s, daecl_at(t->losses, t->read_upto),
                                    t->host_losses + t->read_upto, upto - t->read_upto, err);
        if (rc)
            return rc;
        for (size_t i = t->read_upto; i < upto; i++)
            sum += t->host_losses[i];
        t->read_upto = upto;
    }
    if (!isfinite(sum))
        return nan_stop(t, err);
    t->epoch_sum += sum;
    if (new_sum)
        *new_sum = sum;
    return 0;
}

/* Writes checkpoint.safetensors for the current position; steps_in_epoch
 * steps of the epoch under way are done (0 at an epoch boundary). */
static int save_checkpoint(trainer *t, size_t steps_in_epoch, daecl_err *err)
{
    int rc = read_losses(t, steps_in_epoch, NULL, err);
    if (!rc)
        rc = daecl_replicas_refresh(t->r.rep, err);
    if (rc)
        return rc;
    daecl_err why = {0};
    if ((rc = daecl_run_fetch_params(&t->r, &why)) == DAECL_ENAN)
        return nan_stop(t, err);
    if (rc) {
        *err = why;
        return rc;
    }
    /* Every replica of every rank equal to rank 0's first (a collective). */
    if (t->r.rep && (rc = daecl_replicas_sync(t->r.rep, t->r.params, t->r.s1, t->r.s2, err)))
        return rc;
    if (!t->rank0)
        return 0;
    char *world = t->r.rep ? daecl_replicas_world_json(t->r.rep) : NULL;
    /* A stack's phase the checkpoint resumes in. */
    char *phase = t->r.stack ? daecl_stack_phase_json(t->r.stack, t->epochs_done) : NULL;
    daecl_ckpt_state st = {.step = t->step, .epoch = t->epochs_done, .seed = t->r.cfg->seed,
                           .epoch_loss_sum = steps_in_epoch ? t->epoch_sum : 0,
                           .epoch_rows = steps_in_epoch ? t->epoch_rows : 0,
                           .optim_step0 = t->optim_step0, .data_json = t->data_json,
                           .plugins_json = t->plugins_json, .world_json = world,
                           .stage_json = phase};
    rc = daecl_checkpoint_save(t->ckpt_path, &t->r.model, t->r.cfg, t->r.params, t->r.s1,
                               t->r.s2, &st, err);
    free(world);
    free(phase);
    return rc;
}

/* ---- the loop --------------------------------------------------------------------- */

typedef struct epoch_result {
    double train_nll, examples_per_s, seconds;
    daecl_evaluation eval;
    int have_valid;
    daecl_eval_result valid; /* the held-out training rows (data.valid_fraction): NLLs only */
} epoch_result;

/* The validation set's NLLs into obj, when there is one. */
static void valid_to_json(const epoch_result *e, cJSON *obj)
{
    if (!e->have_valid)
        return;
    cJSON_AddNumberToObject(obj, "valid_nll_clean", e->valid.nll_clean);
    cJSON_AddNumberToObject(obj, "valid_nll_corrupted", e->valid.nll_corrupted);
}

/* A stack's phase of `epoch` as o's "stage" (nothing for other runs). */
static void tag_phase(const trainer *t, cJSON *o, uint32_t epoch)
{
    char *json = t->r.stack && o ? daecl_stack_phase_json(t->r.stack, epoch) : NULL;
    cJSON *phase = json ? cJSON_Parse(json) : NULL;
    free(json);
    if (phase && !cJSON_AddItemToObject(o, "stage", phase))
        cJSON_Delete(phase);
}

/* The test and validation NLLs of the model being trained: the deep
 * model's (its denoising errors too with `denoising`), or, in a stack's
 * greedy stage, the stage's own on the codes it reconstructs. */
static int epoch_eval(trainer *t, int denoising, epoch_result *e, daecl_err *err)
{
    daecl_run *r = &t->r;
    daecl_stack *st = r->stack;
    int rc;
    e->have_valid = r->valid != NULL;
    if (st && daecl_stack_current(st) < daecl_stack_layers(st)) {
        memset(&e->eval, 0, sizeof e->eval);
        if (r->test && (rc = daecl_stack_eval(st, r->test_feed, &e->eval.test, err)))
            return rc;
        e->eval.have_test = r->test != NULL;
        return e->have_valid ? daecl_stack_eval(st, r->valid_feed, &e->valid, err) : 0;
    }
    if (r->test && (rc = daecl_evaluate(r, denoising, 0, 0, &e->eval, err)))
        return rc;
    return e->have_valid ? daecl_eval_test_set(r->g, r->valid_feed, r->cfg->seed, 0, &e->valid,
                                               err)
                         : 0;
}

/* What a stack's phase starting at `epoch` trains, for people. */
static void phase_line(trainer *t, uint32_t epoch)
{
    const daecl_stack *st = t->r.stack;
    uint32_t k, ke, L = daecl_stack_layers(st), n = 0;
    daecl_stack_phase(st, epoch, &k, &ke);
    for (uint32_t e = epoch; e < daecl_stack_epochs(st); e++) {
        uint32_t kk;
        daecl_stack_phase(st, e, &kk, &ke);
        n += kk == k;
    }
    const daecl_config *sc = daecl_stack_config(st, k);
    const daecl_dense *ly = &t->r.model.layers[k < L ? k : 0];
    if (k == L) {
        daecl_progress_line(&t->progress, "daecl: fine-tuning the whole stack end to end for %u "
                            "epoch%s (corruption %s at the input, likelihood %s)", n,
                            n == 1 ? "" : "s", sc->corruption.name, sc->likelihood.name);
        return;
    }
    char on[64];
    if (k == 0)
        snprintf(on, sizeof on, "the data");
    else
        snprintf(on, sizeof on, "the codes of encoder layer %u", k - 1);
    daecl_progress_line(&t->progress, "daecl: stage %u of %u: encoder layer %u (%u %s units) as "
                        "a DAE on %s for %u epoch%s (corruption %s, likelihood %s)", k + 1, L, k,
                        ly->out, daecl_act_name(ly->act), on, n, n == 1 ? "" : "s",
                        sc->corruption.name, sc->likelihood.name);
}

/* A stack's greedy stage that ends with `epoch`: its filters in input
 * space and its reconstructions at each depth (core/run_pictures.h). */
static int stage_pictures(trainer *t, uint32_t epoch, daecl_err *err)
{
    const daecl_stack *st = t->r.stack;
    if (!st)
        return 0;
    uint32_t k, next, e;
    daecl_stack_phase(st, epoch, &k, &e);
    daecl_stack_phase(st, epoch + 1, &next, &e);
    if (k >= daecl_stack_layers(st) || (next == k && epoch + 1 < daecl_stack_epochs(st)))
        return 0;
    int rc = daecl_run_stage_filters(&t->r, t->run_dir, k, err);
    return rc ? rc : daecl_run_stage_reconstructions(&t->r, t->run_dir, k, err);
}

static int baseline_eval(trainer *t, daecl_err *err)
{
    if (!t->rank0)
        return 0;
    daecl_run *r = &t->r;
    epoch_result e = {0};
    int rc = epoch_eval(t, 0, &e, err);
    if (rc)
        return rc;
    cJSON *o = daecl_metrics_obj("epoch", 0, 0);
    tag_phase(t, o, 0);
    if (o) {
        valid_to_json(&e, o);
        daecl_evaluation_to_json(&e.eval, o);
    }
    if ((rc = daecl_metrics_line(t->metrics, o, err)))
        return rc;
    char valid[64] = "";
    if (e.have_valid)
        snprintf(valid, sizeof valid, " valid_nll %.4f%s", e.valid.nll_clean, r->test ? ";" : "");
    if (r->test)
        daecl_progress_line(&t->progress, "epoch 0/%u (untrained):%s test_nll clean %.4f "
                            "corrupted %.4f", daecl_run_epochs(r), valid, e.eval.test.nll_clean,
                            e.eval.test.nll_corrupted);
    else
        daecl_progress_line(&t->progress, "epoch 0/%u (untrained):%s", daecl_run_epochs(r),
                            valid);
    return 0;
}

/* With several replicas: what each did since the last call, world-wide,
 * as o's "replicas" (a collective: every rank calls it at the same step);
 * with `say`, a line per replica in the log too. */
static int add_replicas(trainer *t, cJSON *o, int say, daecl_err *err)
{
    daecl_replicas *p = t->r.rep;
    if (!daecl_replicas_parallel(p))
        return 0;
    uint32_t n = daecl_replicas_count(p);
    daecl_replica_stats *st = calloc(n, sizeof *st);
    if (!st)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory gathering replica counters");
    int rc = daecl_replicas_stats(p, st, err);
    cJSON *list = !rc && o ? cJSON_AddArrayToObject(o, "replicas") : NULL;
    for (uint32_t j = 0; list && j < n; j++) {
        const daecl_replica_desc *d = daecl_replicas_desc(p, j);
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddNumberToObject(e, "rank", d->rank);
        cJSON_AddStringToObject(e, "device", d->device);
        cJSON_AddNumberToObject(e, "share", daecl_replicas_share(p, j));
        cJSON_AddNumberToObject(e, "examples", st[j].rows);
        if (st[j].busy_s > 0) /* untimed when it trained alone (core/replicas.c) */
            cJSON_AddNumberToObject(e, "examples_per_s", st[j].rows / st[j].busy_s);
        cJSON_AddNumberToObject(e, "wait_s", st[j].wait_s);
        cJSON_AddNumberToObject(e, "sync_s", st[j].sync_s);
        cJSON_AddItemToArray(list, e);
        if (say)
            daecl_progress_line(&t->progress, "  replica %u (rank %u, %s): share %.3f, %.0f "
                                "examples (%.0f/s), waited %.3f s, synchronised %.3f s", j,
                                d->rank, d->device, daecl_replicas_share(p, j), st[j].rows,
                                st[j].busy_s > 0 ? st[j].rows / st[j].busy_s : 0.0, st[j].wait_s,
                                st[j].sync_s);
    }
    free(st);
    return rc;
}

/* Runs the steps of one epoch from t->first_step; *stopped gets why it
 * ended early (1 max_steps, 2 interrupted), else 0. */
static int run_epoch(trainer *t, uint32_t epoch, int *stopped, daecl_err *err)
{
    daecl_run *r = &t->r;
    const daecl_config *c = r->cfg;
    size_t spe = r->steps_per_epoch;
    double t_epoch = daecl_now(), t_log = t_epoch;
    uint64_t rows_log = 0;
    size_t steps_here = 0;
    int rc;
    *stopped = 0;
    for (size_t i = t->first_step; i < spe; i++) {
        size_t rows;
        if ((rc = daecl_run_step(r, i, epoch, t->step - t->optim_step0 + 1,
                                 daecl_at(t->losses, i), &rows, err)))
            return rc == DAECL_ENAN ? nan_stop(t, err) : rc; /* replicas see it at once */
        t->step++;
        steps_here++;
        t->epoch_rows += rows;
        rows_log += rows;
        double now = daecl_now();
        if (c->train.log_every && t->step % c->train.log_every == 0) {
            size_t from = t->read_upto;
            double sum;
            if ((rc = read_losses(t, i + 1, &sum, err)))
                return rc;
            now = daecl_now(); /* after the read: the device has caught up */
            uint64_t rows_read = 0;
            for (size_t k = from; k <= i; k++)
                rows_read += k + 1 == spe ? r->train->n_rows - k * r->g->batch_max
                                          : r->g->batch_max;
            double nll = sum / (double)rows_read, rate = (double)rows_log / (now - t_log);
            cJSON *o = daecl_metrics_obj("step", epoch + 1, t->step);
            tag_phase(t, o, epoch);
            if (o) {
                cJSON_AddNumberToObject(o, "train_nll", nll);
                cJSON_AddNumberToObject(o, "examples_per_s", rate);
                cJSON_AddNumberToObject(o, "seconds", now - t->t_start);
            }
            if (t->progress.mode == DAECL_PROGRESS_LINES)
                daecl_progress_line(&t->progress, "epoch %u/%u  step %zu/%zu  train_nll %.4f  "
                                    "%.0f examples/s", epoch + 1, daecl_run_epochs(r), i + 1, spe,
                                    nll, rate);
            if ((rc = add_replicas(t, o, 0, err))) {
                cJSON_Delete(o);
                return rc;
            }
            if ((rc = daecl_metrics_line(t->metrics, o, err)))
                return rc;
            t_log = now;
            rows_log = 0;
        }
        if (daecl_progress_due(&t->progress, now)) {
            size_t from = t->read_upto;
            double sum;
            if ((rc = read_losses(t, i + 1, &sum, err)))
                return rc;
            now = daecl_now();
            double loss = from <= i ? sum / (double)((i + 1 - from) * r->g->batch_max) : NAN;
            double per_step = (now - t_epoch) / (double)steps_here;
            daecl_progress_bar(&t->progress, now, epoch + 1, daecl_run_epochs(r), i + 1, spe, loss,
                               (double)t->epoch_rows / (now - t_epoch + 1e-9),
                               per_step * (double)(spe - i - 1));
        }
        if (c->train.checkpoint_unit == DAECL_CKPT_STEP && c->train.checkpoint_every &&
            t->step % c->train.checkpoint_every == 0 && i + 1 < spe &&
            (rc = save_checkpoint(t, i + 1, err)))
            return rc;
        if (r->stop_all) { /* agreed by every rank (core/replicas.h) */
            *stopped = 2;
            t->first_step = i + 1;
            return 0;
        }
        if (c->train.max_steps && t->step >= c->train.max_steps) {
            *stopped = 1;
            t->first_step = i + 1;
            return 0;
        }
    }
    t->first_step = spe;
    return 0;
}

static int write_summary(trainer *t, const epoch_result *last, const char *status,
                         daecl_err *err)
{
    char model[512];
    const daecl_run *r = &t->r;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s/summary.json",
                             t->run_dir);
    cJSON_AddStringToObject(o, "name", r->cfg->name);
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddStringToObject(o, "run_dir", t->run_dir);
    cJSON_AddStringToObject(o, "model", daecl_model_describe(&r->model, model, sizeof model));
    cJSON_AddStringToObject(o, "corruption", r->cfg->corruption.name);
    cJSON_AddStringToObject(o, "likelihood", r->cfg->likelihood.name);
    cJSON_AddStringToObject(o, "backend", r->cfg->backend.name);
    cJSON *plugins = t->plugins_json ? cJSON_Parse(t->plugins_json) : NULL;
    if (plugins)
        cJSON_AddItemToObject(o, "plugins", plugins);
    cJSON_AddStringToObject(o, "device", daecl_session_device_name(r->s));
    char *world = r->rep ? daecl_replicas_world_json(r->rep) : NULL;
    cJSON *w = world ? cJSON_Parse(world) : NULL;
    free(world);
    if (w) {
        cJSON_AddStringToObject(w, "comm", t->comm->info.library);
        cJSON_AddItemToObject(o, "world", w);
    }
    cJSON_AddNumberToObject(o, "epochs", t->epochs_done);
    cJSON_AddNumberToObject(o, "steps", (double)t->step);
    cJSON_AddNumberToObject(o, "train_examples", (double)r->train->n_rows);
    cJSON_AddNumberToObject(o, "train_nll", last->train_nll);
    valid_to_json(last, o);
    daecl_evaluation_to_json(&last->eval, o);
    cJSON_AddNumberToObject(o, "examples_per_s", last->examples_per_s);
    cJSON_AddNumberToObject(o, "seconds", daecl_now() - t->t_start);
    cJSON_AddStringToObject(o, "checkpoint", t->ckpt_path);
    return daecl_runfiles_write_json(t->run_dir, "summary.json", o, "summary", err);
}

static int finish(trainer *t, epoch_result *last, int stopped, daecl_err *err);
static const char *signal_name(int sig);

/* A stop signal: the checkpoint of where the run is, and the sentence that
 * says how to go on. */
static int stop_checkpointed(trainer *t, daecl_err *err)
{
    int rc = save_checkpoint(t, t->first_step, err);
    if (rc)
        return rc;
    if (!t->rank0) { /* rank 0 says how to go on */
        daecl_err_clear(err);
        err->status = DAECL_EINTR;
        return DAECL_EINTR;
    }
    int sig = (int)*t->opts->stop;
    if (t->comm && t->comm->info.size > 1) /* mpirun may end the ranks before the last word */
        daecl_progress_line(&t->progress, "daecl: interrupted at step %" PRIu64 " on every "
                            "rank and checkpointed; continue it with `daecl resume %s` (on any "
                            "number of ranks)", t->step, t->run_dir);
    else
        daecl_progress_line(&t->progress, "daecl: interrupted at step %" PRIu64, t->step);
    return daecl_err_set(err, DAECL_EINTR, "training was stopped by %s at step %" PRIu64
                         " and checkpointed; continue it with `daecl resume %s`",
                         signal_name(sig), t->step, t->run_dir);
}

/* With several replicas, the world this (part of the) run trains on as a
 * metrics line: the ranks, the communicator, and each replica with its
 * rank, host, device and share. */
static int world_line(trainer *t, daecl_err *err)
{
    if (!daecl_replicas_parallel(t->r.rep))
        return 0; /* one device: summary.json says so */
    char *world = daecl_replicas_world_json(t->r.rep);
    cJSON *w = world ? cJSON_Parse(world) : NULL;
    free(world);
    if (!w)
        return 0;
    cJSON *o = daecl_metrics_obj("world", t->epochs_done, t->step);
    if (o) {
        cJSON_AddStringToObject(o, "comm", t->comm->info.library);
        cJSON *item;
        while ((item = w->child)) {
            cJSON_DetachItemViaPointer(w, item);
            cJSON_AddItemToObject(o, item->string, item);
        }
    }
    cJSON_Delete(w);
    return daecl_metrics_line(t->metrics, o, err);
}

/* backend.plugin: auto's choice and why, as a metrics line: config.yaml
 * says it in a comment until a resume rewrites it; metrics.jsonl keeps it. */
static int backend_auto_line(trainer *t, daecl_err *err)
{
    const daecl_config *c = t->r.cfg;
    if (!c->backend_auto[0])
        return 0;
    cJSON *o = daecl_metrics_obj("backend_auto", t->epochs_done, t->step);
    if (o) {
        cJSON_AddStringToObject(o, "plugin", c->backend.name);
        cJSON_AddStringToObject(o, "reason", c->backend_auto);
    }
    return daecl_metrics_line(t->metrics, o, err);
}

static int run(trainer *t, daecl_err *err)
{
    daecl_run *r = &t->r;
    const daecl_config *c = r->cfg;
    uint32_t epochs = daecl_run_epochs(r);
    size_t spe = r->steps_per_epoch;
    char model[512];
    int rc;
    if (t->resumed)
        daecl_progress_line(&t->progress, "daecl: resuming %s at step %" PRIu64 " (epoch %u, "
                            "step %zu of %zu)", t->run_dir, t->step, t->epochs_done + 1,
                            t->first_step, spe);
    char where[2048];
    if (daecl_replicas_parallel(r->rep))
        daecl_replicas_describe(r->rep, where, sizeof where);
    else
        snprintf(where, sizeof where, "%s", daecl_session_device_name(r->s));
    daecl_progress_line(&t->progress, "daecl: training %s on %s, %zu training%s examples, batch "
                        "%u, %zu steps per epoch, %u epochs",
                        daecl_model_describe(&r->model, model, sizeof model),
                        where, r->train->n_rows,
                        r->test ? "" : " (no test set)", r->g->batch_max, spe, epochs);
    if ((rc = backend_auto_line(t, err)) || (rc = world_line(t, err)))
        return rc;
    int restarts;
    if (!t->resumed && (r->test || r->valid) &&
        ((rc = daecl_run_begin_epoch(r, 0, 1, &restarts, err)) || (rc = baseline_eval(t, err))))
        return rc;
    epoch_result last = {0};
    int stopped = 0;
    while (t->epochs_done < epochs && !stopped) {
        uint32_t epoch = t->epochs_done;
        if ((rc = daecl_run_begin_epoch(r, epoch, t->first_step == 0, &restarts, err)))
            return rc;
        if (restarts) { /* a stack's next phase: its optimiser from zero state */
            t->optim_step0 = t->step;
            phase_line(t, epoch);
        }
        if ((rc = daecl_run_shuffle(r, epoch, err)))
            return rc;
        double t0 = daecl_now();
        if ((rc = run_epoch(t, epoch, &stopped, err)))
            return rc;
        /* Stopped inside the epoch: checkpoint where it is. Stopped after
         * its last step: the epoch ends as usual first (test NLL, metrics,
         * epoch count), so the checkpoint sits at an epoch boundary. */
        if (stopped == 2 && t->first_step < spe)
            return stop_checkpointed(t, err);
        if ((rc = read_losses(t, t->first_step, NULL, err)))
            return rc;
        double train_seconds = daecl_now() - t0;
        last.train_nll = t->epoch_sum / (double)t->epoch_rows;
        last.examples_per_s = (double)(t->epoch_rows) / train_seconds;
        int finished = t->first_step == spe;
        double lr = daecl_run_lr(r, epoch, t->first_step ? t->first_step - 1 : 0);
        int last_epoch = stopped == 1 || (finished && epoch + 1 == epochs);
        if ((rc = daecl_replicas_refresh(r->rep, err)))
            return rc;
        if (t->rank0 && (rc = epoch_eval(t, last_epoch && c->eval.denoising, &last, err)))
            return rc;
        if (finished && r->rep && (rc = daecl_replicas_epoch_end(r->rep, err)))
            return rc;
        last.seconds = daecl_now() - t0;
        if (finished) {
            t->epochs_done = epoch + 1;
            t->first_step = 0;
        }
        cJSON *o = daecl_metrics_obj("epoch", epoch + 1, t->step);
        tag_phase(t, o, epoch);
        if (o) {
            cJSON_AddNumberToObject(o, "train_nll", last.train_nll);
            cJSON_AddNumberToObject(o, "lr", lr);
            valid_to_json(&last, o);
            daecl_evaluation_to_json(&last.eval, o);
            cJSON_AddNumberToObject(o, "examples_per_s", last.examples_per_s);
            cJSON_AddNumberToObject(o, "seconds", last.seconds);
        }
        char valid[64] = "";
        if (last.have_valid)
            snprintf(valid, sizeof valid, "  valid_nll %.4f", last.valid.nll_clean);
        if (last.eval.have_test)
            daecl_progress_line(&t->progress, "epoch %u/%u done: train_nll %.4f%s  test_nll clean "
                                "%.4f corrupted %.4f  (%.0f examples/s, %.1f s)", epoch + 1,
                                epochs, last.train_nll, valid, last.eval.test.nll_clean,
                                last.eval.test.nll_corrupted, last.examples_per_s, last.seconds);
        else if (last.have_valid)
            daecl_progress_line(&t->progress, "epoch %u/%u done: train_nll %.4f%s  (%.0f "
                                "examples/s, %.1f s)", epoch + 1, epochs, last.train_nll, valid,
                                last.examples_per_s, last.seconds);
        else
            daecl_progress_line(&t->progress, "epoch %u/%u done: train_nll %.4f  (%.0f "
                                "examples/s, %.1f s)", epoch + 1, epochs, last.train_nll,
                                last.examples_per_s, last.seconds);
        if ((rc = add_replicas(t, o, 1, err))) {
            cJSON_Delete(o);
            return rc;
        }
        if ((rc = daecl_metrics_line(t->metrics, o, err)))
            return rc;
        if (finished && t->rank0 && (rc = stage_pictures(t, epoch, err)))
            return rc;
        /* A step count due on an epoch's last step is saved here, after the
         * epoch ends (run_epoch leaves it), so the checkpoint counts it. */
        int due = c->train.checkpoint_every &&
                  (c->train.checkpoint_unit == DAECL_CKPT_EPOCH
                       ? t->epochs_done % c->train.checkpoint_every == 0
                       : finished && t->step % c->train.checkpoint_every == 0);
        if (stopped == 2) /* at the boundary: epochs_done counts the epoch, first_step is 0 */
            return stop_checkpointed(t, err);
        if (due || last_epoch) {
            if ((rc = save_checkpoint(t, finished ? 0 : t->first_step, err)))
                return rc;
        }
        if (finished) {
            t->epoch_sum = 0;
            t->epoch_rows = 0;
            t->read_upto = 0;
        }
    }
    return finish(t, &last, stopped, err);
}

/* What a run writes once training is over: the probe, the pictures and
 * summary.json. last holds the last epoch's numbers; stopped is 1 after
 * train.max_steps. */
/* One fit of the end-of-run probe, for people. */
static void probe_line(trainer *t, const char *features, const daecl_probe_result *fit)
{
    char scores[128];
    daecl_progress_line(&t->progress, "linear probe on %s: %s", features,
                        daecl_evaluation_probe_scores(fit, scores, sizeof scores));
}

static int finish(trainer *t, epoch_result *last, int stopped, daecl_err *err)
{
    daecl_run *r = &t->r;
    const daecl_config *c = r->cfg;
    int rc;
    if (!t->rank0)
        return 0;
    if (stopped == 1)
        daecl_progress_line(&t->progress, "daecl: stopped after train.max_steps = %" PRIu64
                            " steps", c->train.max_steps);
    /* A stack that ended in a greedy stage: the summary, the probe and the
     * pictures are the deep model's, with the run's own plugins. */
    daecl_stack *st = r->stack;
    if (st && daecl_stack_current(st) < daecl_stack_layers(st) &&
        ((rc = daecl_stack_enter(st, daecl_stack_layers(st), 0, err)) ||
         (rc = epoch_eval(t, c->eval.denoising, last, err))))
        return rc;
    if (c->eval.probe || c->eval.probe_baseline) {
        daecl_evaluation probe;
        if ((rc = daecl_evaluate(r, 0, c->eval.probe, c->eval.probe_baseline, &probe, err)))
            return rc;
        daecl_evaluation_take_probes(&last->eval, &probe);
        for (size_t i = 0; i < probe.n_probes; i++) {
            char name[64];
            probe_line(t, daecl_evaluation_probe_name(probe.probes[i].features,
                                                      r->g->m->n_encoder, name, sizeof name),
                       &probe.probes[i].fit);
        }
        if (probe.have_probe && !probe.n_probes)
            probe_line(t, "the code", &probe.probe);
        if (probe.have_baseline && !probe.n_probes)
            probe_line(t, "raw inputs", &probe.baseline);
    }
    if (last->eval.have_denoising)
        daecl_progress_line(&t->progress, "denoising MSE %.6f (PSNR %.2f dB); corrupted input "
                            "%.6f (PSNR %.2f dB)", last->eval.test.mse_reconstruction,
                            last->eval.test.psnr_reconstruction, last->eval.test.mse_corrupted,
                            last->eval.test.psnr_corrupted);
    /* summary.json last: its presence says the run's outputs are complete
     * (a resumed finished run without it writes them again). */
    if ((rc = daecl_run_pictures(r, t->run_dir, err)))
        return rc;
    return write_summary(t, last, stopped == 1 ? "max_steps" : "finished", err);
}

/* ---- entry --------------------------------------------------------------------- */

/* A failure one rank met alone during training (a device fault, a full
 * disk) would leave the others waiting in the next allreduce: this rank
 * says what happened, naming itself, and ends the job. Stops the world
 * agreed on (a signal, a loss every rank saw become NaN) end normally. */
static void lone_failure(trainer *t, int rc, const daecl_err *err)
{
    if (!rc || !t->training || !t->comm || t->comm->info.size < 2 || rc == DAECL_EINTR ||
        rc == DAECL_ENAN || rc == DAECL_EPEER)
        return;
    char buf[DAECL_ERR_MSG_MAX + DAECL_ERR_FILE_MAX + 64];
    fprintf(stderr, "daecl: error: rank %u of %u on %s (%s) stops the job: %s\n",
            t->comm->info.rank, t->comm->info.size, t->comm->info.host,
            t->r.s ? daecl_session_device_name(t->r.s) : "no device", daecl_err_format(err, buf,
                                                                                     sizeof buf));
    fflush(NULL);
    daecl_comm_abort(t->comm, daecl_status_exit_code(rc));
}


/* What the checkpoint of a run being resumed says about itself. */
typedef struct ckpt_meta {
    char *config;    /* daecl.config: the resolved config it was trained with */
    char *data;      /* daecl.data: the data's digest (NULL before daecl recorded it) */
    char *optimizer; /* daecl.optimizer */
    char *plugins;   /* daecl.plugins (NULL before daecl recorded it) */
    char *world;     /* daecl.world: the replicas and their shares (NULL before) */
} ckpt_meta;

static void ckpt_meta_free(ckpt_meta *m)
{
    free(m->config);
    free(m->data);
    free(m->optimizer);
    free(m->plugins);
    free(m->world);
    memset(m, 0, sizeof *m);
}

/* Before the data load and the device: the folder's lock, its checkpoint,
 * and the config against the checkpoint's. Nothing is written but the lock
 * (released again by daecl_train when anything fails). */
static int prepare_resume(trainer *t, ckpt_meta *meta, daecl_err *err)
{
    /* Rank 0 alone holds the folder and tidies it; every rank reads it. */
    int rc = t->rank0 ? daecl_lock_acquire(t->run_dir, "resume", &t->lock, err) : 0;
    if (rc)
        return rc;
    /* A run killed inside an atomic write (kill -9, power loss) leaves its
     * temporary file behind; the files it was replacing are intact. */
    size_t stale = t->rank0 ? daecl_remove_stale_temps(t->run_dir) : 0;
    if (stale)
        daecl_progress_line(&t->progress, "daecl: removed %zu temporary file%s left in %s by an "
                            "interrupted run", stale, stale == 1 ? "" : "s", t->run_dir);
    if ((rc = daecl_path_join(t->ckpt_path, sizeof t->ckpt_path, t->run_dir,
                              "checkpoint.safetensors", err)))
        return rc;
    struct stat st;
    if (stat(t->ckpt_path, &st) != 0)
        return daecl_err_set(err, DAECL_EUSAGE, "run folder %s has no checkpoint to resume "
                             "from; start it again with `daecl train`", t->run_dir);
    if (!(st.st_mode & S_IWUSR))
        return daecl_err_set(err, DAECL_EUSAGE, "checkpoint %s is read-only (mode %04o), and "
                             "resuming replaces it at the next checkpoint; make it writable "
                             "(chmod u+w %s) or resume a copy of the run folder",
                             t->ckpt_path, (unsigned)(st.st_mode & 07777), t->ckpt_path);
    static const char *const keys[5] = {"daecl.config", "daecl.data", "daecl.optimizer",
                                        "daecl.plugins", "daecl.world"};
    char *values[5];
    if ((rc = daecl_checkpoint_meta(t->ckpt_path, keys, 5, values, err)))
        return rc;
    meta->config = values[0];
    meta->data = values[1];
    meta->optimizer = values[2];
    meta->plugins = values[3];
    meta->world = values[4];
    daecl_provenance_warn_changed(meta->plugins, t->plugins_json, t->ckpt_path);
    if (!meta->config)
        return 0; /* not made by daecl: the tensors' shapes are all there is to check */
    return daecl_compat_config(meta->config, t->ckpt_path, t->r.cfg, DAECL_COMPAT_RESUME,
                               t->opts->reset_optimizer, err);
}

/* Positions a resumed run after its checkpoint. */
static int resume_from_checkpoint(trainer *t, const char *meta_world, daecl_err *err)
{
    daecl_ckpt_state st;
    int reset = t->opts->reset_optimizer;
    int rc = daecl_run_load_checkpoint(&t->r, t->ckpt_path, reset, &st, err);
    if (rc)
        return rc;
    const daecl_config *c = t->r.cfg;
    size_t spe = t->r.steps_per_epoch;
    if (st.seed != c->seed)
        return daecl_err_set(err, DAECL_ECONFIG, "the checkpoint in %s was trained with seed %" PRIu64
                             " but the config says %" PRIu64 "; resume with the run's own seed",
                             t->run_dir, st.seed, c->seed);
    if (st.step < (uint64_t)st.epoch * spe || st.step - (uint64_t)st.epoch * spe >= spe)
        return daecl_err_set(err, DAECL_ECKPT, "the checkpoint in %s is at step %" PRIu64
                             " of epoch %u, which does not fit %zu steps per epoch; the data or "
                             "train.batch_size changed since it was written",
                             t->run_dir, st.step, st.epoch + 1, spe);
    t->step = st.step;
    t->optim_step0 = reset ? st.step : st.optim_step0;
    t->epochs_done = st.epoch;
    t->first_step = (size_t)(st.step - (uint64_t)st.epoch * spe);
    t->read_upto = t->first_step;
    t->epoch_sum = st.epoch_loss_sum;
    t->epoch_rows = st.epoch_rows;
    /* Every replica from the checkpoint, and the shares it recorded when
     * the world is the same one. */
    if (t->r.rep &&
        (rc = daecl_replicas_load(t->r.rep, t->r.params, reset ? NULL : t->r.s1,
                                  reset ? NULL : t->r.s2, err)))
        return rc;
    if (t->r.rep && meta_world && daecl_replicas_restore(t->r.rep, meta_world))
        daecl_progress_line(&t->progress, "daecl: the world is the checkpoint's; its shares "
                            "stay in force");
    return t->rank0 ? daecl_metrics_open(t->run_dir, 1, st.step, &t->metrics, err) : 0;
}

/* --reset-optimizer, once the resumed run is known to train on: says so in
 * the log and in metrics.jsonl. */
static int note_reset(trainer *t, const ckpt_meta *meta, daecl_err *err)
{
    const daecl_config *c = t->r.cfg;
    const char *now = c->optimizer.kind == DAECL_OPTIM_SGD    ? "sgd"
                      : c->optimizer.kind == DAECL_OPTIM_ADAM ? "adam"
                                                              : "adamw";
    const char *before = meta->optimizer ? meta->optimizer : "unknown";
    daecl_log(DAECL_LOG_INFO, NULL, "--reset-optimizer: the %s state in %s is dropped; %s starts "
              "from zero state at step %" PRIu64, before, t->ckpt_path, now, t->step);
    cJSON *o = daecl_metrics_obj("reset_optimizer", t->epochs_done, t->step);
    if (o) {
        cJSON_AddStringToObject(o, "optimizer", now);
        cJSON_AddStringToObject(o, "previous", before);
    }
    return daecl_metrics_line(t->metrics, o, err);
}

/* A run stopped (kill -9, power loss) after its final checkpoint but before
 * its summary has its final weights and lacks only its last outputs. The
 * test set is evaluated again (the same numbers: evaluation noise does not
 * depend on when it is drawn), the last epoch's train NLL and speed come
 * from metrics.jsonl, and finish() writes the rest. stopped is 1 when the
 * run ended at train.max_steps. */
static int complete_outputs(trainer *t, int stopped, daecl_err *err)
{
    daecl_run *r = &t->r;
    epoch_result last = {.train_nll = NAN, .examples_per_s = NAN};
    char path[PATH_MAX], line[8192];
    int rc = daecl_path_join(path, sizeof path, t->run_dir, "metrics.jsonl", err);
    if (rc)
        return rc;
    daecl_progress_line(&t->progress, "daecl: %s finished training but stopped before its "
                        "summary; writing it now", t->run_dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *type = o ? cJSON_GetObjectItemCaseSensitive(o, "type") : NULL;
        const cJSON *nll = o ? cJSON_GetObjectItemCaseSensitive(o, "train_nll") : NULL;
        const cJSON *rate = o ? cJSON_GetObjectItemCaseSensitive(o, "examples_per_s") : NULL;
        if (cJSON_IsString(type) && strcmp(type->valuestring, "epoch") == 0 &&
            cJSON_IsNumber(nll)) {
            last.train_nll = nll->valuedouble;
            last.examples_per_s = cJSON_IsNumber(rate) ? rate->valuedouble : NAN;
        }
        cJSON_Delete(o);
    }
    if (f)
        fclose(f);
    last.have_valid = r->valid != NULL;
    if (last.have_valid &&
        (rc = daecl_eval_test_set(r->g, r->valid_feed, r->cfg->seed, 0, &last.valid, err)))
        return rc;
    if (r->test &&
        (rc = daecl_evaluate(r, r->cfg->eval.denoising, 0, 0, &last.eval, err)))
        return rc;
    return finish(t, &last, stopped, err);
}

static const char *signal_name(int sig)
{
    return sig == SIGINT ? "Ctrl-C (SIGINT)" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP"
                                                                                          : "a signal";
}

/* `daecl check`: what would run, in one line; nothing was opened or written. */
static int report_check(trainer *t, daecl_err *err)
{
    const daecl_run *r = &t->r;
    const daecl_config *c = r->cfg;
    daecl_model m;
    const daecl_likelihood_ops *lik = c->likelihood.plugin->ops;
    int rc = daecl_model_init(&m, c, (uint32_t)r->train->dim, lik->params_per_dim, err);
    if (rc)
        return rc;
    char model[512], where[PATH_MAX + 64], labels[64] = "";
    if (t->opts->resume_dir)
        snprintf(where, sizeof where, "resumes %s", t->run_dir);
    else if (t->opts->out_dir)
        snprintf(where, sizeof where, "writes %s", t->opts->out_dir);
    else
        snprintf(where, sizeof where, "writes a new folder under %s", c->output.dir);
    if (r->train_y)
        snprintf(labels, sizeof labels, ", labels of %u classes", r->train_y->n_classes);
    daecl_progress_line(&t->progress, "daecl check: ok: %s on the %s backend, %zu training "
                        "examples of %zu value%s in [%g, %g], %zu test examples%s; %s",
                        daecl_model_describe(&m, model, sizeof model), c->backend.name,
                        r->train->n_rows, r->train->dim, r->train->dim == 1 ? "" : "s",
                        (double)r->train->min,
                        (double)r->train->max, r->test ? r->test->n_rows : 0, labels, where);
    return 0;
}

int daecl_train(const daecl_train_opts *opts, char *run_dir, size_t run_dir_n, daecl_err *err)
{
    trainer t = {.opts = opts, .t_start = daecl_now()};
    daecl_progress_init(&t.progress, opts->quiet ? DAECL_PROGRESS_QUIET : opts->progress, stdout);
    if (run_dir && run_dir_n)
        run_dir[0] = '\0';
    char cfg_path[PATH_MAX];
    ckpt_meta meta = {0};
    int rc = 0;
    /* Every check the config and the files allow comes before a device
     * opens or a file is written: the config's own, the folder's, the
     * checkpoint's (resume), then the data's. */
    if (opts->resume_dir) {
        snprintf(t.run_dir, sizeof t.run_dir, "%s", opts->resume_dir);
        rc = daecl_folder_check_own_run(opts->resume_dir, "resume", err);
        if (!rc)
            rc = daecl_path_join(cfg_path, sizeof cfg_path, opts->resume_dir, "config.yaml", err);
        struct stat st;
        if (!rc && stat(cfg_path, &st) != 0)
            rc = daecl_err_set(err, DAECL_EUSAGE, "%s is not a daecl run folder (it has no "
                               "config.yaml)", opts->resume_dir);
    } else {
        snprintf(cfg_path, sizeof cfg_path, "%s", opts->config_path ? opts->config_path : "");
    }
    uint32_t env_rank = 0, env_size = 1;
    daecl_comm_launched(&env_rank, &env_size);
    if (rc || (rc = daecl_run_configure(&t.r, cfg_path, opts->overrides, opts->n_overrides, err)))
        goto done;
    const daecl_config *c = t.r.cfg;
    t.r.stop = opts->stop;
    /* The world: a launcher's (mpirun, srun) or this process alone. Rank 0
     * writes the run folder and speaks; the others stay quiet. */
    if (!opts->check_only) {
        if ((rc = daecl_comm_open(t.r.reg, c->parallel.comm, &t.comm, err)))
            goto done;
        t.rank0 = t.comm->info.rank == 0;
        if (!t.rank0)
            daecl_progress_init(&t.progress, DAECL_PROGRESS_QUIET, stdout);
    } else {
        t.rank0 = 1;
    }
    if (t.rank0)
        daecl_provenance_warn_shadowed(c, t.r.reg);
    if ((rc = daecl_provenance_json(c, &t.plugins_json, err)))
        goto agreed;
    if (opts->resume_dir ? (rc = prepare_resume(&t, &meta, err))
                         : t.rank0 ? (rc = daecl_runfiles_check_out(opts->out_dir, t.r.cfg, err))
                                   : 0)
        goto agreed;
    if ((rc = daecl_run_load_data(&t.r, c->eval.probe || c->eval.probe_baseline, err)))
        goto agreed;
    if (opts->resume_dir &&
        (rc = daecl_compat_data(meta.data, t.ckpt_path, &t.r.digest, c, err)))
        goto agreed;
    if (!(t.data_json = daecl_data_digest_json(&t.r.digest))) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory describing the data");
        goto agreed;
    }
agreed:
    if (opts->check_only) {
        if (!rc)
            rc = report_check(&t, err);
        goto done;
    }
    /* Every rank passed the checks, or none goes on. */
    if ((rc = daecl_replicas_agree(t.comm, rc, err)) ||
        (rc = daecl_run_start_parallel(&t.r, t.comm, err)))
        goto done;
    const daecl_run *r = &t.r;
    if (t.rank0 && !opts->resume_dir &&
        (rc = daecl_runfiles_make_dir(opts->out_dir, t.r.cfg, t.run_dir, sizeof t.run_dir,
                                      &t.lock, err)))
        goto started;
    if (run_dir && run_dir_n)
        snprintf(run_dir, run_dir_n, "%s", t.run_dir);
    if (t.rank0 && !opts->resume_dir) {
        size_t stale = daecl_remove_stale_temps(t.run_dir);
        if (stale)
            daecl_progress_line(&t.progress, "daecl: removed %zu temporary file%s left in %s by "
                                "an interrupted run", stale, stale == 1 ? "" : "s", t.run_dir);
        if ((rc = daecl_path_join(t.ckpt_path, sizeof t.ckpt_path, t.run_dir,
                                  "checkpoint.safetensors", err)))
            goto started;
    }
    if ((rc = daecl_session_alloc(r->s, r->steps_per_epoch, "loss history", &t.losses, err)))
        goto started;
    t.host_losses = calloc(r->steps_per_epoch, sizeof(float));
    if (!t.host_losses) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for the loss history");
        goto started;
    }
    if (opts->resume_dir) {
        if ((rc = resume_from_checkpoint(&t, meta.world, err)))
            goto started;
        t.resumed = 1;
        /* A run at train.max_steps is over too: run_epoch checks the limit
         * only after a step, so going on would take one step more. */
        int at_max = c->train.max_steps && t.step >= c->train.max_steps;
        if (t.epochs_done >= daecl_run_epochs(&t.r) || at_max) {
            char summary[PATH_MAX];
            struct stat sst;
            if ((rc = daecl_path_join(summary, sizeof summary, t.run_dir, "summary.json", err)))
                goto started;
            if (stat(summary, &sst) != 0) {
                if (t.rank0)
                    rc = complete_outputs(&t, at_max && t.epochs_done < daecl_run_epochs(&t.r),
                                          err);
                goto started;
            }
            if (t.epochs_done >= daecl_run_epochs(&t.r))
                daecl_progress_line(&t.progress, "daecl: %s already finished its %u epochs; "
                                    "continue it with `daecl resume %s train.epochs=N`",
                                    t.run_dir, t.epochs_done, t.run_dir);
            else
                daecl_progress_line(&t.progress, "daecl: %s already stopped at train.max_steps = "
                                    "%" PRIu64 "; continue it with `daecl resume %s "
                                    "train.max_steps=N` (0: no limit)", t.run_dir,
                                    c->train.max_steps, t.run_dir);
            goto started;
        }
        if (opts->reset_optimizer && (rc = note_reset(&t, &meta, err)))
            goto started;
    } else if (t.rank0 && (rc = daecl_metrics_open(t.run_dir, 0, 0, &t.metrics, err))) {
        goto started;
    }
    if (t.rank0 && (rc = daecl_runfiles_write_config(t.run_dir, t.r.cfg, err)))
        goto started;
    if ((rc = daecl_replicas_agree(t.comm, rc, err)))
        goto done;
    t.training = 1;
    rc = run(&t, err);
    if (t.comm->info.size > 1 && (rc == DAECL_EINTR || rc == DAECL_ENAN || rc == DAECL_EPEER)) {
        /* Every rank stopped after the same step (lone_failure ends the job
         * on any other failure): rank 0 says why, the others wait for it. */
        if (!t.rank0)
            err->msg[0] = '\0';
        daecl_replicas_say(t.comm, err);
    }
    goto done;
started:
    /* Set up on some ranks and not others: every rank learns it. */
    rc = daecl_replicas_agree(t.comm, rc, err);
done:
    lone_failure(&t, rc, err);
    daecl_metrics_close(t.metrics);
    if (t.r.s)
        daecl_session_free(t.r.s, t.losses);
    free(t.host_losses);
    free(t.data_json);
    free(t.plugins_json);
    ckpt_meta_free(&meta);
    /* The world before the registry: the comm's ops live in a plugin the
     * registry holds. */
    int joined = t.comm != NULL;
    daecl_comm_close(t.comm);
    daecl_run_close(&t.r);
    daecl_lock_release(t.lock);
    /* Before the world is joined every rank fails alike (the same config):
     * rank 0 says it. */
    if (rc && !joined && env_size > 1 && env_rank != 0) {
        daecl_err_clear(err);
        err->status = rc;
    }
    return rc;
}
