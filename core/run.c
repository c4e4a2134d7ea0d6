/* daecl — a run's working set: config, data, device, graph, feeders. */
#include "core/run.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"

static int load_data(daecl_run *r, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    /* data.max_mb bounds what a file's header can make us allocate */
    uint64_t max_bytes = daecl_data_max_bytes(c->data.max_mb);
    int rc = daecl_dataset_load(c->data.train, c->data.train_limit, max_bytes, &r->train, err);
    if (rc)
        return rc;
    if (c->data.test[0]) {
        if ((rc = daecl_dataset_load(c->data.test, c->data.test_limit, max_bytes, &r->test, err)))
            return rc;
        if (r->test->dim != r->train->dim)
            return daecl_err_set(err, DAECL_EDATA, "test set %s has %zu values per example but "
                                 "the training set %s has %zu; use matching files",
                                 c->data.test, r->test->dim, c->data.train, r->train->dim);
    }
    if (r->train->dim > UINT32_MAX / 4)
        return daecl_err_set(err, DAECL_EDATA, "training set %s has %zu values per example; "
                             "daecl supports at most %u", c->data.train, r->train->dim,
                             UINT32_MAX / 4);
    if (strcmp(c->likelihood.name, "bernoulli") == 0 && (r->train->min < 0 || r->train->max > 1))
        daecl_log(DAECL_LOG_WARN, NULL, "the training data spans [%g, %g] but the bernoulli "
                  "likelihood expects values in [0, 1]; consider likelihood.plugin=gaussian",
                  (double)r->train->min, (double)r->train->max);
    return 0;
}

/* The data sets load on a thread of their own while the device opens: both
 * take a good part of a second (inflating Fashion-MNIST; loading programs
 * and starting the OpenCL runtime), and neither needs the other. */
typedef struct loader {
    daecl_run *r;
    daecl_err err;
    int rc;
} loader;

static void *load_data_thread(void *arg)
{
    loader *l = arg;
    l->rc = load_data(l->r, &l->err);
    return NULL;
}

int daecl_run_open(daecl_run *r, const char *config_path, const char *const *overrides,
                   size_t n_overrides, daecl_err *err)
{
    memset(r, 0, sizeof *r);
    int rc;
    if ((rc = daecl_registry_create(NULL, &r->reg, err)) ||
        (rc = daecl_config_load(config_path, overrides, n_overrides, r->reg, &r->cfg, err)))
        return rc;
    const daecl_config *c = r->cfg;
    loader l = {.r = r};
    pthread_t tid;
    int threaded = pthread_create(&tid, NULL, load_data_thread, &l) == 0;
    if (!threaded)
        load_data_thread(&l);
    rc = daecl_session_create(c, &r->s, err);
    if (threaded)
        pthread_join(tid, NULL);
    if (l.rc) { /* the data's sentence first: a bad file is the likelier mistake */
        *err = l.err;
        return l.rc;
    }
    if (rc)
        return rc;
    const daecl_likelihood_ops *lik = c->likelihood.plugin->ops;
    if ((rc = daecl_model_init(&r->model, c, (uint32_t)r->train->dim, lik->params_per_dim, err)))
        return rc;
    uint32_t b = c->train.batch_size;
    if (b > r->train->n_rows)
        b = (uint32_t)r->train->n_rows;
    if ((rc = daecl_graph_create(r->s, &r->model, b, c->optimizer.kind, c->optimizer.momentum,
                                 &r->g, err)))
        return rc;
    uint64_t limit = (uint64_t)(c->data.resident_max_mb * 1048576.0);
    if ((rc = daecl_feeder_create(r->s, r->train, b, limit, "training set", &r->train_feed, err)))
        return rc;
    if (r->test &&
        (rc = daecl_feeder_create(r->s, r->test, b, limit, "test set", &r->test_feed, err)))
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

void daecl_run_close(daecl_run *r)
{
    daecl_feeder_destroy(r->train_feed);
    daecl_feeder_destroy(r->test_feed);
    daecl_graph_destroy(r->g);
    daecl_session_destroy(r->s);
    daecl_dataset_destroy(r->train);
    daecl_dataset_destroy(r->test);
    daecl_config_destroy(r->cfg);
    daecl_registry_destroy(r->reg);
    free(r->params);
    free(r->s1);
    free(r->s2);
    memset(r, 0, sizeof *r);
}

int daecl_run_load_checkpoint(daecl_run *r, const char *path, daecl_ckpt_state *st,
                              daecl_err *err)
{
    int rc = daecl_checkpoint_load(path, &r->model, r->params, r->s1, r->s2, st, err);
    if (rc)
        return rc;
    if ((rc = daecl_graph_set_params(r->g, r->params, err)))
        return rc;
    return daecl_graph_set_state(r->g, r->s1, r->s2, err);
}

int daecl_run_fetch_params(daecl_run *r, daecl_err *err)
{
    int rc = daecl_graph_get_params(r->g, r->params, err);
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

int daecl_run_step(daecl_run *r, size_t i, uint64_t step, daecl_slice loss_dst, size_t *rows,
                   daecl_err *err)
{
    const daecl_config *c = r->cfg;
    size_t b = r->g->batch_max, n_rows = r->train->n_rows, dim = r->train->dim;
    size_t first = i * b, n = n_rows - first < b ? n_rows - first : b;
    daecl_slice x, xt = daecl_at(r->g->input, 0);
    daecl_noise_key key = {.seed = c->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION,
                           .step = (uint32_t)step, .elem0 = 0};
    int rc;
    if ((rc = daecl_feeder_batch(r->train_feed, first, n, &x, err)) ||
        (rc = daecl_session_corrupt(r->s, x, xt, n, dim, &key, err)) ||
        (rc = daecl_graph_forward(r->g, xt, n, UINT32_MAX, err)) ||
        (rc = daecl_graph_loss(r->g, x, n, loss_dst, 1, err)) ||
        (rc = daecl_graph_backward_update(r->g, xt, n, c, step + 1, err)))
        return rc;
    *rows = n;
    return 0;
}
