/* daecl — a run's working set: config, data, device, graph, feeders. */
#include "core/run.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/runfolder.h"
#include "core/stack.h"
#include "core/support.h"
#include "core/toy.h"

/* The configured label file at `path` for a data set of want_rows rows. */
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

/* The probe's classes are 0..C-1, C = the largest training label + 1: each
 * needs training examples (a label of 300 among 0..9 would make a 301-way
 * probe of mostly empty classes), and every test label must be one of them. */
static int check_classes(const daecl_config *c, const daecl_labels *ytr, const daecl_labels *yte,
                         daecl_err *err)
{
    uint32_t n = ytr->n_classes;
    size_t *count = calloc(n ? n : 1, sizeof *count);
    if (!count)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory checking %u label classes", n);
    for (size_t i = 0; i < ytr->n; i++)
        count[ytr->y[i]]++;
    uint32_t missing = 0, first = 0;
    for (uint32_t k = 0; k < n; k++)
        if (!count[k] && !missing++)
            first = k;
    free(count);
    if (missing)
        return daecl_err_set(err, DAECL_EDATA,
                             "data.train_labels %s numbers its classes up to %u but %u of the "
                             "classes below have no example (the first: %u); the probe needs "
                             "labels that number the classes 0..C-1, so renumber them",
                             c->data.train_labels, n - 1, missing, first);
    for (size_t i = 0; i < yte->n; i++)
        if ((uint32_t)yte->y[i] >= n)
            return daecl_err_set(err, DAECL_EDATA,
                                 "data.test_labels %s has label %d at row %zu, a class "
                                 "data.train_labels never uses (its classes are 0..%u); use "
                                 "label files that number the same classes",
                                 c->data.test_labels, yte->y[i], i, n - 1);
    return 0;
}

/* The likelihood must be able to score the data: its values must lie in
 * the range the plugin declares (unchecked when it declares none). */
static int check_support(const daecl_run *r, const daecl_dataset *ds, const char *key,
                         const char *path, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    const daecl_plugin *p = daecl_registry_find(r->reg, DAECL_KIND_LIKELIHOOD, c->likelihood.name,
                                                NULL);
    double lo, hi;
    if (!p || !daecl_support_data_range(p->ops, &lo, &hi) || (ds->min >= lo && ds->max <= hi))
        return 0;
    return daecl_err_set(err, DAECL_ECONFIG,
                         "the %s likelihood scores values in [%g, %g], but %s %s spans [%g, %g]; "
                         "set likelihood.plugin to one whose range holds the data (`daecl "
                         "plugins` lists them) or rescale the data into [%g, %g]",
                         c->likelihood.name, lo, hi, key, path, (double)ds->min, (double)ds->max,
                         lo, hi);
}

int daecl_run_configure(daecl_run *r, const char *config_path, const char *const *overrides,
                        size_t n_overrides, daecl_err *err)
{
    memset(r, 0, sizeof *r);
    int rc;
    if ((rc = daecl_registry_create(NULL, &r->reg, err)) ||
        (rc = daecl_config_load(config_path, overrides, n_overrides, r->reg, &r->cfg, err)))
        return rc;
    const daecl_config *c = r->cfg;
    if (c->eval.probe || c->eval.probe_baseline) {
        const char *key = c->eval.probe ? "eval.probe" : "eval.probe_baseline";
        /* With a validation set and no test set at all (a sweep's point,
         * core/sweep.h) the probe is scored on the validation rows alone. */
        int valid_only = c->data.valid_fraction > 0 && !c->data.test[0] &&
                         !c->data.test_labels[0];
        const char *miss = !c->data.test[0] && !valid_only ? "data.test"
                           : !c->data.train_labels[0]      ? "data.train_labels"
                           : !c->data.test_labels[0] && !valid_only ? "data.test_labels"
                                                                    : NULL;
        if (miss)
            return daecl_err_set(err, DAECL_ECONFIG,
                                 "%s needs a test set and labels for both sets, but %s is not "
                                 "set; set data.test, data.train_labels and data.test_labels, "
                                 "or turn %s off",
                                 key, miss, key);
    }
    if (c->backend_auto[0])
        daecl_log(DAECL_LOG_INFO, NULL, "backend auto -> %s: %s", c->backend.name,
                  c->backend_auto);
    const char *device = getenv("DAECL_DEVICE");
    if (device && *device && strcmp(c->backend.name, "opencl") != 0)
        daecl_log(DAECL_LOG_WARN, NULL, "DAECL_DEVICE=%.100s chooses among OpenCL devices, but "
                  "this run uses the %s backend, so it has no effect; set backend.plugin=opencl "
                  "to use it", device, c->backend.name);
    return 0;
}

/* data.shape, when given, replaces the shape the data file declared; its
 * product must be the data's values per example. */
static int apply_shape(const daecl_config *c, daecl_dataset *ds, daecl_err *err)
{
    uint32_t rank = c->data.shape_rank;
    if (rank == 0)
        return 0;
    uint64_t product = 1;
    int over = 0;
    char dims[80] = "";
    for (uint32_t i = 0; i < rank; i++) {
        over |= __builtin_mul_overflow(product, (uint64_t)c->data.shape[i], &product);
        size_t used = strlen(dims);
        snprintf(dims + used, sizeof dims - used, "%s%u", i ? ", " : "", c->data.shape[i]);
    }
    char count[32];
    if (over)
        snprintf(count, sizeof count, "more than 2^64");
    else
        snprintf(count, sizeof count, "%llu", (unsigned long long)product);
    if (over || product != ds->dim)
        return daecl_err_set_at(err, DAECL_ECONFIG, c->data.shape_line ? c->source : "",
                                c->data.shape_line, c->data.shape_col,
                                "data.shape [%s]%s has %s values per example, but the data have "
                                "%zu; give dimensions whose product is %zu, or [] for the data "
                                "file's shape",
                                dims, c->data.shape_line ? "" : " (an override)", count, ds->dim,
                                ds->dim);
    ds->n_shape = rank;
    for (uint32_t i = 0; i < 4; i++)
        ds->shape[i] = i < rank ? c->data.shape[i] : 1u;
    return 0;
}

/* Two toy sources (core/toy.h) with one seed and split draw the same
 * random numbers: the test set would repeat the training set's rows (or,
 * for another density, be correlated with them). */
static int check_toy_split(const daecl_config *c, daecl_err *err)
{
    daecl_toy a, b;
    if (!daecl_toy_is_spec(c->data.train) || !daecl_toy_is_spec(c->data.test) ||
        daecl_toy_parse(c->data.train, &a, NULL, NULL) != 0 ||
        daecl_toy_parse(c->data.test, &b, NULL, NULL) != 0 || a.seed != b.seed ||
        a.split != b.split)
        return 0;
    return daecl_err_set(err, DAECL_ECONFIG, "data.test and data.train are toy sources with "
                         "the same seed and split, so the test set repeats the training set's "
                         "draws; add &split=test to data.test (or give it another seed)");
}

/* data.valid_fraction: the training set's last rows (and labels) become
 * the validation set, after train_limit, so the split does not move with
 * the shuffle or the batch size. */
static int split_valid(daecl_run *r, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    if (c->data.valid_fraction <= 0)
        return 0;
    size_t n = r->train->n_rows, v = (size_t)llround(c->data.valid_fraction * (double)n);
    if (v == 0 || v >= n)
        return daecl_err_set(err, DAECL_ECONFIG, "data.valid_fraction %g of the %zu training "
                             "rows of %s leaves %s; raise it, or train on more rows",
                             c->data.valid_fraction, n, c->data.train,
                             v == 0 ? "no validation row" : "no training row");
    int rc = daecl_dataset_take_tail(r->train, v, &r->valid, err);
    if (!rc && r->train_y)
        rc = daecl_labels_take_tail(r->train_y, v, &r->valid_y, err);
    return rc;
}

int daecl_run_load_data(daecl_run *r, int need_probe, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    /* data.max_mb bounds what a file's header can make us allocate */
    uint64_t max_bytes = daecl_data_max_bytes(c->data.max_mb);
    int rc = daecl_dataset_load(c->data.train, c->data.train_limit, max_bytes, &r->train, err);
    if (rc)
        return rc;
    /* The noise key numbers an epoch's examples with 32 bits (plugin.h). */
    if (r->train->n_rows > UINT32_MAX)
        return daecl_err_set(err, DAECL_EDATA, "training set %s has %zu rows; daecl numbers "
                             "the examples of an epoch with 32 bits, so use at most %u "
                             "(data.train_limit)", c->data.train, r->train->n_rows, UINT32_MAX);
    if (r->train->dim > UINT32_MAX / 4)
        return daecl_err_set(err, DAECL_EDATA, "training set %s has %zu values per example; "
                             "daecl supports at most %u", c->data.train, r->train->dim,
                             UINT32_MAX / 4);
    if (r->train->dim == 1)
        daecl_log(DAECL_LOG_WARN, NULL, "data.train %s holds one value per example, so the "
                  "model is 1 wide; if it is a label file, name it in data.train_labels",
                  c->data.train);
    if ((rc = check_support(r, r->train, "data.train", c->data.train, err)) ||
        (rc = apply_shape(c, r->train, err)))
        return rc;
    if (c->data.test[0]) {
        if ((rc = check_toy_split(c, err)) ||
            (rc = daecl_dataset_load(c->data.test, c->data.test_limit, max_bytes, &r->test, err)))
            return rc;
        if (r->test->n_rows > UINT32_MAX)
            return daecl_err_set(err, DAECL_EDATA, "test set %s has %zu rows; daecl numbers "
                                 "its examples with 32 bits, so use at most %u "
                                 "(data.test_limit)", c->data.test, r->test->n_rows, UINT32_MAX);
        if (r->test->dim != r->train->dim)
            return daecl_err_set(err, DAECL_EDATA, "test set %s has %zu values per example but "
                                 "the training set %s has %zu; use matching files",
                                 c->data.test, r->test->dim, c->data.train, r->train->dim);
        if ((rc = check_support(r, r->test, "data.test", c->data.test, err)) ||
            (rc = apply_shape(c, r->test, err)))
            return rc;
    }
    if (c->data.train_labels[0] &&
        (rc = load_labels(c, c->data.train_labels, "data.train_labels", c->data.train_limit,
                          r->train->n_rows, &r->train_y, err)))
        return rc;
    if (c->data.test_labels[0]) {
        if (!r->test)
            return daecl_err_set(err, DAECL_ECONFIG, "data.test_labels is set but data.test is "
                                 "not; name the test set the labels belong to");
        if ((rc = load_labels(c, c->data.test_labels, "data.test_labels", c->data.test_limit,
                              r->test->n_rows, &r->test_y, err)))
            return rc;
    }
    if ((rc = split_valid(r, err)) || (rc = daecl_stack_create(r, &r->stack, err)))
        return rc;
    if (need_probe && r->train_y && r->test_y &&
        (rc = check_classes(c, r->train_y, r->test_y, err)))
        return rc;
    daecl_data_digest_of(r->train, r->test, r->train_y, r->test_y, &r->digest);
    return 0;
}

/* Phase 3 on the device of `backend`. */
static int start_on(daecl_run *r, const daecl_plugin_cfg *backend, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    int rc = daecl_session_create(c, backend, &r->s, err);
    if (rc)
        return rc;
    const daecl_likelihood_ops *lik = c->likelihood.plugin->ops;
    if ((rc = daecl_model_init(&r->model, c, (uint32_t)r->train->dim, lik->params_per_dim, err)))
        return rc;
    uint32_t b = c->train.batch_size;
    if (b > r->train->n_rows)
        b = (uint32_t)r->train->n_rows;
    if ((rc = daecl_graph_create(r->s, &r->model, b, daecl_walkback_rows(c, b), c->optimizer.kind,
                                 c->optimizer.momentum, &r->g, err)) ||
        (rc = daecl_walkback_create(r->g, c, &r->wb, err)))
        return rc;
    uint64_t limit = (uint64_t)(c->data.resident_max_mb * 1048576.0);
    if ((rc = daecl_feeder_create(r->s, r->train, b, limit, "training set", &r->train_feed, err)))
        return rc;
    if (r->test &&
        (rc = daecl_feeder_create(r->s, r->test, b, limit, "test set", &r->test_feed, err)))
        return rc;
    if (r->valid && (rc = daecl_feeder_create(r->s, r->valid, b, limit, "validation set",
                                              &r->valid_feed, err)))
        return rc;
    r->steps_per_epoch = (r->train->n_rows + b - 1) / b;
    size_t np = r->model.n_params;
    r->params = malloc(np * sizeof(float));
    r->s1 = r->g->state1 ? calloc(np, sizeof(float)) : NULL;
    r->s2 = r->g->state2 ? calloc(np, sizeof(float)) : NULL;
    if (!r->params || (r->g->state1 && !r->s1) || (r->g->state2 && !r->s2))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for host copies of %zu parameters",
                             np);
    daecl_model_init_params(&r->model, c->seed, r->params);
    return daecl_graph_set_params(r->g, r->params, err);
}

int daecl_run_start(daecl_run *r, daecl_err *err)
{
    return start_on(r, NULL, err);
}

int daecl_run_start_parallel(daecl_run *r, daecl_comm *comm, daecl_err *err)
{
    uint32_t entries[DAECL_MAX_REPLICAS];
    uint32_t n = daecl_replicas_entries(r->cfg, &comm->info, entries);
    const daecl_plugin_cfg *be = daecl_replicas_backend(r->cfg, entries[0]);
    int rc = start_on(r, be, err);
    if (rc && r->cfg->parallel.n_devices)
        daecl_err_prefix(err, "parallel.devices.%u: ", entries[0]);
    if ((rc = daecl_replicas_agree(comm, rc, err)))
        return rc;
    return daecl_replicas_create(r->cfg, comm, &r->model, r->train, r->s, r->g, r->wb,
                                 r->train_feed, entries, n, &r->rep, err);
}

int daecl_run_shuffle(daecl_run *r, uint32_t epoch, daecl_err *err)
{
    if (r->stack) { /* each phase shuffles in its own stage of the noise key */
        uint32_t stage, stage_epoch;
        daecl_stack_phase(r->stack, epoch, &stage, &stage_epoch);
        return daecl_feeder_shuffle_stage(r->train_feed, r->cfg->seed, stage, stage_epoch, err);
    }
    int rc = daecl_feeder_shuffle(r->train_feed, r->cfg->seed, epoch, err);
    return rc ? rc : daecl_replicas_shuffle(r->rep, r->cfg->seed, epoch, err);
}

int daecl_run_open(daecl_run *r, const char *config_path, const char *const *overrides,
                   size_t n_overrides, daecl_err *err)
{
    int rc = daecl_run_configure(r, config_path, overrides, n_overrides, err);
    if (!rc)
        rc = daecl_run_load_data(r, r->cfg->eval.probe || r->cfg->eval.probe_baseline, err);
    if (!rc)
        rc = daecl_run_start(r, err);
    return rc;
}

int daecl_run_open_trained(daecl_run *r, const daecl_trained_opts *o, daecl_ckpt_state *st,
                           daecl_err *err)
{
    char cfg_path[PATH_MAX], ckpt_path[PATH_MAX];
    float *params = NULL;
    char *stored = NULL;
    memset(r, 0, sizeof *r);
    int rc = 0;
    if (o->run_dir) {
        if ((rc = daecl_folder_check_own_run(o->run_dir, o->command, err)))
            return rc;
        size_t stale = daecl_remove_stale_temps(o->run_dir);
        if (stale)
            daecl_log(DAECL_LOG_INFO, NULL, "removed %zu temporary file%s left in %s by an "
                      "interrupted run", stale, stale == 1 ? "" : "s", o->run_dir);
    }
    if (o->config)
        snprintf(cfg_path, sizeof cfg_path, "%s", o->config);
    else if (o->run_dir)
        rc = daecl_path_join(cfg_path, sizeof cfg_path, o->run_dir, "config.yaml", err);
    else
        return daecl_err_set(err, DAECL_EUSAGE, "give a run folder, or --config and --checkpoint");
    if (!rc && o->checkpoint)
        snprintf(ckpt_path, sizeof ckpt_path, "%s", o->checkpoint);
    else if (!rc && o->run_dir)
        rc = daecl_path_join(ckpt_path, sizeof ckpt_path, o->run_dir, "checkpoint.safetensors",
                             err);
    else if (!rc)
        return daecl_err_set(err, DAECL_EUSAGE, "--config needs --checkpoint (or a run folder)");
    if (rc || (rc = daecl_run_configure(r, cfg_path, o->overrides, o->n_overrides, err)))
        return rc;
    if (o->labels_for && !(r->cfg->data.train_labels[0] && r->cfg->data.test_labels[0]))
        return daecl_err_set(err, DAECL_ECONFIG, "%s needs data.train_labels and "
                             "data.test_labels in the config", o->labels_for);
    static const char *const key[1] = {"daecl.config"};
    if ((rc = daecl_checkpoint_meta(ckpt_path, key, 1, &stored, err)))
        return rc;
    /* a checkpoint made elsewhere (no daecl.config): its shapes must fit */
    if (stored && (rc = daecl_compat_config(stored, ckpt_path, r->cfg, DAECL_COMPAT_EVAL, 0, err)))
        goto done;
    int probe = o->probe && r->cfg->data.train_labels[0] && r->cfg->data.test_labels[0];
    if ((rc = daecl_run_load_data(r, probe, err)))
        goto done;
    /* The checkpoint's tensors against the model, on the host: a checkpoint
     * of another model is refused before a device opens. */
    daecl_model m;
    const daecl_likelihood_ops *lik = r->cfg->likelihood.plugin->ops;
    if ((rc = daecl_model_init(&m, r->cfg, (uint32_t)r->train->dim, lik->params_per_dim, err)))
        goto done;
    if (!(params = malloc(m.n_params * sizeof *params))) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory reading checkpoint %s", ckpt_path);
        goto done;
    }
    if ((rc = daecl_checkpoint_load(ckpt_path, &m, params, NULL, NULL, st, err)) ||
        (rc = daecl_run_start(r, err)))
        goto done;
    memcpy(r->params, params, m.n_params * sizeof *params);
    rc = daecl_graph_set_params(r->g, r->params, err);
done:
    free(params);
    free(stored);
    return rc;
}

void daecl_run_close(daecl_run *r)
{
    daecl_stack_destroy(r->stack);
    daecl_replicas_destroy(r->rep);
    daecl_feeder_destroy(r->train_feed);
    daecl_feeder_destroy(r->test_feed);
    daecl_feeder_destroy(r->valid_feed);
    daecl_walkback_destroy(r->wb);
    daecl_graph_destroy(r->g);
    daecl_session_destroy(r->s);
    daecl_dataset_destroy(r->train);
    daecl_dataset_destroy(r->test);
    daecl_dataset_destroy(r->valid);
    daecl_labels_destroy(r->valid_y);
    daecl_labels_destroy(r->train_y);
    daecl_labels_destroy(r->test_y);
    daecl_config_destroy(r->cfg);
    daecl_registry_destroy(r->reg);
    free(r->params);
    free(r->s1);
    free(r->s2);
    memset(r, 0, sizeof *r);
}

int daecl_run_load_checkpoint(daecl_run *r, const char *path, int params_only,
                              daecl_ckpt_state *st, daecl_err *err)
{
    int rc = daecl_checkpoint_load(path, &r->model, r->params, params_only ? NULL : r->s1,
                                   params_only ? NULL : r->s2, st, err);
    if (rc)
        return rc;
    if ((rc = daecl_graph_set_params(r->g, r->params, err)))
        return rc;
    return params_only ? 0 : daecl_graph_set_state(r->g, r->s1, r->s2, err);
}

uint32_t daecl_run_epochs(const daecl_run *r)
{
    return r->stack ? daecl_stack_epochs(r->stack) : r->cfg->train.epochs;
}

int daecl_run_begin_epoch(daecl_run *r, uint32_t epoch, int at_start, int *restarts,
                          daecl_err *err)
{
    *restarts = 0;
    if (!r->stack)
        return 0;
    uint32_t stage, stage_epoch;
    daecl_stack_phase(r->stack, epoch, &stage, &stage_epoch);
    *restarts = stage_epoch == 0 && at_start;
    return daecl_stack_enter(r->stack, stage, *restarts, err);
}

int daecl_run_fetch_params(daecl_run *r, daecl_err *err)
{
    int rc = daecl_stack_sync(r->stack, err);
    if (!rc)
        rc = daecl_graph_get_params(r->g, r->params, err);
    if (!rc)
        rc = daecl_graph_get_state(r->g, r->s1, r->s2, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < r->model.n_params; i++)
        if (!isfinite(r->params[i]))
            return daecl_err_set(err, DAECL_ENAN, "parameter %zu became %g", i,
                                 (double)r->params[i]);
    return 0;
}

double daecl_run_lr(const daecl_run *r, uint32_t epoch, size_t i)
{
    uint32_t stage = 0, stage_epoch = epoch, phase_epochs = r->cfg->train.epochs;
    const daecl_config *pc = r->cfg;
    if (r->stack) {
        daecl_stack_phase(r->stack, epoch, &stage, &stage_epoch);
        phase_epochs = daecl_stack_phase_epochs(r->stack, stage);
        pc = daecl_stack_config(r->stack, stage);
    }
    uint64_t spe = r->steps_per_epoch;
    return daecl_schedule_lr(pc, (uint64_t)stage_epoch * spe + i, (uint64_t)phase_epochs * spe);
}

int daecl_run_step(daecl_run *r, size_t i, uint32_t epoch, uint64_t optim_t, daecl_slice loss_dst,
                   size_t *rows, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    size_t b = r->g->batch_max, n_rows = r->train->n_rows;
    size_t first = i * b, n = n_rows - first < b ? n_rows - first : b;
    int stop_local = r->stop && *r->stop;
    double lr = daecl_run_lr(r, epoch, i);
    if (daecl_replicas_parallel(r->rep)) {
        double loss;
        int rc = daecl_replicas_step(r->rep, first, n, epoch, optim_t, lr, loss_dst, stop_local,
                                     &loss, &r->stop_all, err);
        if (rc)
            return rc;
        /* Every rank holds the same sum: all stop here alike. */
        if (!isfinite(loss))
            return daecl_err_set(err, DAECL_ENAN, "the training loss of batch %zu (epoch %u) "
                                 "is %g", i + 1, epoch + 1, loss);
        *rows = n;
        return 0;
    }
    r->stop_all = stop_local;
    /* A stack: a greedy stage's own step, or the fine-tuning's, in its
     * phase's stage and epoch of the noise key (core/stack.h). */
    uint32_t stage = 0, stage_epoch = epoch;
    if (r->stack)
        daecl_stack_phase(r->stack, epoch, &stage, &stage_epoch);
    int rc;
    if (r->stack && stage < daecl_stack_layers(r->stack)) {
        if ((rc = daecl_stack_step(r->stack, first, n, stage_epoch, optim_t, lr, loss_dst, err)))
            return rc;
        *rows = n;
        return 0;
    }
    daecl_pairs pr;
    daecl_graph_set_lr(r->g, lr);
    if ((rc = daecl_pairs_loss(r->g, r->wb, r->train_feed, r->train, c, stage, stage_epoch, first,
                               n, loss_dst, 0, &pr, err)) ||
        (rc = daecl_graph_backward_update(r->g, pr.in, pr.n_pairs, c, optim_t, err)))
        return rc;
    *rows = n;
    return 0;
}
