/* daecl — the linear probe: features, and logistic regression on them. */
#include "core/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "daecl/plugin.h"

int daecl_probe_features(daecl_graph *g, daecl_feeder *data, int raw, daecl_buf **out,
                         size_t *width, daecl_err *err)
{
    daecl_session *s = g->s;
    const daecl_model *m = g->m;
    uint32_t top = m->n_encoder - 1;
    size_t w = raw ? data->ds->dim : m->layers[top].out;
    size_t n_rows = data->ds->n_rows, b = g->batch_max;
    *out = NULL;
    *width = w;
    daecl_buf *feat = NULL;
    int rc = daecl_session_alloc(s, n_rows * w, raw ? "probe inputs" : "probe features", &feat, err);
    if (rc)
        return rc;
    if ((rc = daecl_feeder_sequential(data, err)))
        goto fail;
    for (size_t first = 0; first < n_rows; first += b) {
        size_t n = n_rows - first < b ? n_rows - first : b;
        daecl_slice x;
        if ((rc = daecl_feeder_batch(data, first, n, &x, err)))
            goto fail;
        daecl_slice src = x;
        if (!raw) {
            if ((rc = daecl_graph_forward(g, x, n, top, err)))
                goto fail;
            src = daecl_graph_layer_out(g, top);
        }
        if ((rc = s->be->copy(s->ctx, daecl_at(feat, first * w), src, n * w, err)))
            goto fail;
    }
    *out = feat;
    return 0;
fail:
    daecl_session_free(s, feat);
    return rc;
}

/* Class indices as floats, the form softmax_xent takes. */
static int upload_labels(daecl_session *s, const daecl_labels *y, const char *what, daecl_buf **out,
                         daecl_err *err)
{
    float *f = malloc(y->n * sizeof *f);
    if (!f)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the %s", what);
    for (size_t i = 0; i < y->n; i++)
        f[i] = (float)y->y[i];
    int rc = daecl_session_alloc(s, y->n, what, out, err);
    if (!rc)
        rc = s->be->write(s->ctx, *out, 0, f, y->n * sizeof *f, err);
    free(f);
    return rc;
}

typedef struct probe {
    daecl_session *s;
    size_t n_classes, width, batch;
    daecl_buf *params, *grads, *m1, *m2; /* W (C, F) then b (C) */
    daecl_buf *y_train, *y_test;
    daecl_buf *index, *xb, *yb, *logits, *dlogits;
} probe;

static void probe_free(probe *p)
{
    daecl_buf *bufs[] = {p->params, p->grads, p->m1, p->m2, p->y_train, p->y_test,
                         p->index, p->xb, p->yb, p->logits, p->dlogits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        daecl_session_free(p->s, bufs[i]);
}

/* logits (n, C) = x (n, F) W^T + b */
static int probe_forward(probe *p, daecl_slice x, size_t n, daecl_err *err)
{
    const daecl_backend_ops *be = p->s->be;
    size_t c = p->n_classes, f = p->width;
    int rc = be->gemm(p->s->ctx, 0, 1, n, c, f, 1.0f, x, f, daecl_at(p->params, 0), f, 0.0f,
                      daecl_at(p->logits, 0), c, err);
    if (rc)
        return rc;
    return be->bias_act(p->s->ctx, daecl_at(p->logits, 0), daecl_at(p->params, c * f), n, c,
                        DAECL_ACT_LINEAR, err);
}

int daecl_probe_fit(daecl_session *s, daecl_buf *train_feat, const daecl_labels *train_y,
                    daecl_buf *test_feat, const daecl_labels *test_y, size_t width,
                    const daecl_probe_opts *o, daecl_probe_result *out, daecl_err *err)
{
    const daecl_backend_ops *be = s->be;
    probe p = {.s = s, .width = width};
    p.n_classes = train_y->n_classes > test_y->n_classes ? train_y->n_classes : test_y->n_classes;
    size_t n_train = train_y->n, n_test = test_y->n, c = p.n_classes, f = width;
    size_t np = c * f + c;
    p.batch = o->batch_size < n_train ? o->batch_size : n_train;
    size_t nb = p.batch > n_test ? p.batch : n_test < 1024 ? n_test : 1024;
    uint32_t *order = malloc(n_train * sizeof *order);
    float *hlogits = malloc(nb * c * sizeof *hlogits);
    int rc = order && hlogits ? 0 : daecl_err_set(err, DAECL_ENOMEM, "out of memory for the probe");
    if (rc ||
        (rc = daecl_session_alloc(s, np, "probe weights", &p.params, err)) ||
        (rc = daecl_session_alloc(s, np, "probe gradients", &p.grads, err)) ||
        (rc = daecl_session_alloc(s, np, "probe Adam state", &p.m1, err)) ||
        (rc = daecl_session_alloc(s, np, "probe Adam state", &p.m2, err)) ||
        (rc = upload_labels(s, train_y, "probe training labels", &p.y_train, err)) ||
        (rc = upload_labels(s, test_y, "probe test labels", &p.y_test, err)) ||
        (rc = daecl_session_alloc(s, n_train, "probe order", &p.index, err)) ||
        (rc = daecl_session_alloc(s, p.batch * f, "probe batch", &p.xb, err)) ||
        (rc = daecl_session_alloc(s, p.batch, "probe batch labels", &p.yb, err)) ||
        (rc = daecl_session_alloc(s, nb * c, "probe logits", &p.logits, err)) ||
        (rc = daecl_session_alloc(s, p.batch * c, "probe logit gradients", &p.dlogits, err)))
        goto done;

    daecl_optim_step step = {.kind = DAECL_OPTIM_ADAM, .lr = (float)o->lr, .beta1 = 0.9f,
                             .beta2 = 0.999f, .eps = 1e-8f};
    uint64_t t = 0;
    for (uint32_t epoch = 0; epoch < o->epochs; epoch++) {
        daecl_shuffle_order(order, n_train, o->seed, DAECL_STREAM_PROBE, epoch);
        if ((rc = be->write(s->ctx, p.index, 0, order, n_train * sizeof *order, err)))
            goto done;
        for (size_t first = 0; first < n_train; first += p.batch) {
            size_t n = n_train - first < p.batch ? n_train - first : p.batch;
            daecl_slice idx = daecl_at(p.index, first), xb = daecl_at(p.xb, 0);
            daecl_slice dl = daecl_at(p.dlogits, 0);
            t++;
            step.bias_corr1 = (float)(1.0 - pow(0.9, (double)t));
            step.bias_corr2 = (float)(1.0 - pow(0.999, (double)t));
            if ((rc = be->gather(s->ctx, daecl_at(train_feat, 0), f, idx, n, xb, err)) ||
                (rc = be->gather(s->ctx, daecl_at(p.y_train, 0), 1, idx, n, daecl_at(p.yb, 0),
                                 err)) ||
                (rc = probe_forward(&p, xb, n, err)) ||
                (rc = be->softmax_xent(s->ctx, daecl_at(p.logits, 0), daecl_at(p.yb, 0), n, c,
                                       1.0f / (float)n, daecl_at(NULL, 0), dl, err)) ||
                /* dW (C, F) = dlogits^T (C, n) x (n, F); db = column sums */
                (rc = be->gemm(s->ctx, 1, 0, c, f, n, 1.0f, dl, c, xb, f, 0.0f,
                               daecl_at(p.grads, 0), f, err)) ||
                (rc = be->col_sum(s->ctx, dl, n, c, 0.0f, daecl_at(p.grads, c * f), err)))
                goto done;
            step.weight_decay = (float)o->weight_decay;
            if ((rc = be->optim_update(s->ctx, &step, daecl_at(p.params, 0), daecl_at(p.grads, 0),
                                       daecl_at(p.m1, 0), daecl_at(p.m2, 0), c * f, err)))
                goto done;
            step.weight_decay = 0;
            if ((rc = be->optim_update(s->ctx, &step, daecl_at(p.params, c * f),
                                       daecl_at(p.grads, c * f), daecl_at(p.m1, c * f),
                                       daecl_at(p.m2, c * f), c, err)))
                goto done;
        }
    }

    /* Score: logits of the test rows, read back, argmax and cross-entropy in
     * double on the host (n_test * C floats: small). */
    size_t correct = 0;
    double nll = 0;
    for (size_t first = 0; first < n_test; first += nb) {
        size_t n = n_test - first < nb ? n_test - first : nb;
        if ((rc = probe_forward(&p, daecl_at(test_feat, first * f), n, err)) ||
            (rc = be->read(s->ctx, p.logits, 0, hlogits, n * c * sizeof *hlogits, err)))
            goto done;
        for (size_t r = 0; r < n; r++) {
            const float *z = hlogits + r * c;
            size_t best = 0;
            double zmax = z[0], sum = 0;
            for (size_t k = 1; k < c; k++)
                if (z[k] > z[best])
                    best = k, zmax = z[k];
            for (size_t k = 0; k < c; k++)
                sum += exp((double)z[k] - zmax);
            int32_t y = test_y->y[first + r];
            correct += (int32_t)best == y;
            nll += zmax + log(sum) - (double)z[y];
        }
    }
    out->accuracy = (double)correct / (double)n_test;
    out->test_nll = nll / (double)n_test;
    out->n_classes = (uint32_t)c;
    out->n_features = f;
done:
    probe_free(&p);
    free(order);
    free(hlogits);
    return rc;
}
