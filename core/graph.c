/* daecl — forward, backward and update passes of the DAE as backend ops. */
#include "core/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int daecl_graph_create(daecl_session *s, const daecl_model *m, uint32_t batch_max,
                       uint32_t rows_max, daecl_optim_kind kind, double momentum,
                       daecl_graph **out, daecl_err *err)
{
    *out = NULL;
    daecl_graph *g = calloc(1, sizeof *g);
    if (!g)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory building the training graph");
    g->s = s;
    g->m = m;
    g->batch_max = batch_max;
    g->rows_max = rows_max > batch_max ? rows_max : batch_max;
    g->lr = -1.0;
    int rc;
    size_t acts = 0;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        g->act_off[l] = acts;
        acts += (size_t)g->rows_max * m->layers[l].out;
    }
    size_t delta = (size_t)g->rows_max * m->max_width;
    if ((rc = daecl_session_alloc(s, m->n_params, "parameters", &g->params, err)) ||
        (rc = daecl_session_alloc(s, m->n_params, "gradients", &g->grads, err)) ||
        (rc = daecl_session_alloc(s, acts, "activations", &g->acts, err)) ||
        (rc = daecl_session_alloc(s, delta, "backward buffer 1", &g->delta[0], err)) ||
        (rc = daecl_session_alloc(s, delta, "backward buffer 2", &g->delta[1], err)) ||
        (rc = daecl_session_alloc(s, g->rows_max > m->dim ? g->rows_max : m->dim,
                                  "per-row losses", &g->nll, err)) ||
        (rc = daecl_session_alloc(s, (size_t)g->rows_max * m->dim, "corrupted batch", &g->input,
                                  err)))
        goto fail;
    int need1 = kind != DAECL_OPTIM_SGD || momentum > 0;
    int need2 = kind != DAECL_OPTIM_SGD;
    if (need1 && (rc = daecl_session_alloc(s, m->n_params, "optimiser state 1", &g->state1, err)))
        goto fail;
    if (need2 && (rc = daecl_session_alloc(s, m->n_params, "optimiser state 2", &g->state2, err)))
        goto fail;
    *out = g;
    return 0;
fail:
    daecl_graph_destroy(g);
    return rc;
}

void daecl_graph_destroy(daecl_graph *g)
{
    if (!g)
        return;
    daecl_buf *bufs[] = {g->params, g->grads, g->state1, g->state2,
                         g->acts,   g->delta[0], g->delta[1], g->nll, g->input};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        daecl_session_free(g->s, bufs[i]);
    free(g);
}

daecl_slice daecl_graph_layer_out(const daecl_graph *g, uint32_t l)
{
    return daecl_at(g->acts, g->act_off[l]);
}

/* Input of layer l: x for the first, the previous layer's output after. */
static daecl_slice layer_in(const daecl_graph *g, daecl_slice x, uint32_t l)
{
    return l == 0 ? x : daecl_graph_layer_out(g, l - 1);
}

/* Rows [row0, row0 + n) of layer l's output. */
static daecl_slice out_rows(const daecl_graph *g, uint32_t l, size_t row0)
{
    return daecl_at(g->acts, g->act_off[l] + row0 * g->m->layers[l].out);
}

/* Layers 0..last on rows [row0, row0 + n), x their input rows. */
/* Layers 0..last in order, but for the layers in [skip0, skip1), which
 * are left out: layer skip1 reads layer skip0 - 1's output. */
static int forward_path(daecl_graph *g, daecl_slice x, size_t n, size_t row0, uint32_t last,
                        uint32_t skip0, uint32_t skip1, daecl_err *err)
{
    g->top_bias_ready = 0; /* a new pass: the last loss's sums are stale */
    const daecl_backend_ops *be = g->s->be;
    void *ctx = g->s->ctx;
    const daecl_model *m = g->m;
    if (last >= m->n_layers)
        last = m->n_layers - 1;
    uint32_t prev = UINT32_MAX; /* the layer run last */
    for (uint32_t l = 0; l <= last; l++) {
        if (l >= skip0 && l < skip1)
            continue;
        const daecl_dense *ly = &m->layers[l];
        daecl_slice in = prev == UINT32_MAX ? x : out_rows(g, prev, row0);
        daecl_slice out = out_rows(g, l, row0);
        daecl_slice w = daecl_at(g->params, ly->w_off);
        int rc;
        if (ly->tied) /* out (n, out) = in (n, in) W_owner (in, out) */
            rc = be->gemm(ctx, 0, 0, n, ly->out, ly->in, 1.0f, in, ly->in, w, ly->out, 0.0f, out,
                          ly->out, err);
        else /* out (n, out) = in (n, in) W^T, W (out, in) */
            rc = be->gemm(ctx, 0, 1, n, ly->out, ly->in, 1.0f, in, ly->in, w, ly->in, 0.0f, out,
                          ly->out, err);
        if (rc)
            return rc;
        /* out = act(out + b) */
        rc = be->bias_act(ctx, out, daecl_at(g->params, ly->b_off), n, ly->out, ly->act, err);
        if (rc)
            return rc;
        prev = l;
    }
    return 0;
}

static int forward(daecl_graph *g, daecl_slice x, size_t n, size_t row0, uint32_t last,
                   daecl_err *err)
{
    return forward_path(g, x, n, row0, last, 0, 0, err);
}

int daecl_graph_forward(daecl_graph *g, daecl_slice x, size_t n, uint32_t last, daecl_err *err)
{
    return forward(g, x, n, 0, last, err);
}

int daecl_graph_forward_depth(daecl_graph *g, daecl_slice x, size_t n, uint32_t depth,
                              daecl_err *err)
{
    const daecl_model *m = g->m;
    if (depth < 1 || depth > m->n_encoder || m->n_layers != 2 * m->n_encoder ||
        m->layers[m->n_layers - depth].in != m->layers[depth - 1].out)
        return daecl_err_set(err, DAECL_EINVAL, "a reconstruction through %u of %u encoder "
                             "layers needs 1 <= depth <= %u and a mirrored decoder "
                             "(model.decoder: mirror)", depth, m->n_encoder, m->n_encoder);
    return forward_path(g, x, n, 0, UINT32_MAX, depth, m->n_layers - depth, err);
}

int daecl_graph_forward_rows(daecl_graph *g, daecl_slice x, size_t n, size_t row0,
                             daecl_err *err)
{
    return forward(g, x, n, row0, UINT32_MAX, err);
}

daecl_slice daecl_graph_output_row(const daecl_graph *g, size_t row)
{
    return out_rows(g, g->m->n_layers - 1, row);
}

int daecl_graph_loss(daecl_graph *g, daecl_slice clean, size_t n, daecl_slice loss_dst,
                     size_t mean_rows, daecl_err *err)
{
    return daecl_graph_loss_rows(g, clean, n, loss_dst, mean_rows, n, err);
}

int daecl_graph_loss_rows(daecl_graph *g, daecl_slice clean, size_t n, daecl_slice loss_dst,
                          size_t mean_rows, size_t sum_rows, daecl_err *err)
{
    const daecl_model *m = g->m;
    daecl_slice a = daecl_graph_layer_out(g, m->n_layers - 1);
    daecl_slice grad = mean_rows ? daecl_at(g->delta[0], 0) : daecl_at(NULL, 0);
    float scale = mean_rows ? 1.0f / (float)mean_rows : 0.0f;
    g->top_bias_ready = 0;
    if (mean_rows && daecl_session_fuses_loss(g->s)) {
        /* the gradient, the output layer's bias gradient and the nll per
         * dimension in one pass; the loss is the sum of those dim values */
        const daecl_dense *top = &m->layers[m->n_layers - 1];
        int rc = daecl_session_loss_grad_sums(g->s, clean, a, n, sum_rows, m->dim, scale, grad,
                                              daecl_at(g->grads, top->b_off),
                                              daecl_at(g->nll, 0), err);
        if (rc)
            return rc;
        g->top_bias_ready = 1;
        return g->s->be->sum(g->s->ctx, daecl_at(g->nll, 0), m->dim, loss_dst, err);
    }
    int rc = daecl_session_loss_grad(g->s, clean, a, n, m->dim, scale,
                                     daecl_at(g->nll, 0), grad, err);
    if (rc)
        return rc;
    return g->s->be->sum(g->s->ctx, daecl_at(g->nll, 0), sum_rows, loss_dst, err);
}

/* dZ_l (n, out_l) = dH * act_l'(H_l) in place in dh; where the backend
 * fuses it, also db_l = the column sums of dZ_l (else the caller's col_sum
 * gives it when it reaches layer l). */
static int hidden_grads(daecl_graph *g, daecl_slice dh, uint32_t l, size_t n, daecl_err *err)
{
    const daecl_backend_ops *be = g->s->be;
    const daecl_dense *ly = &g->m->layers[l];
    daecl_slice h = daecl_graph_layer_out(g, l);
    if (be->act_grad_col_sum)
        return be->act_grad_col_sum(g->s->ctx, dh, h, n, ly->out, ly->act, 0.0f,
                                    daecl_at(g->grads, ly->b_off), err);
    return be->act_grad(g->s->ctx, dh, h, n * ly->out, ly->act, err);
}

int daecl_graph_backward(daecl_graph *g, daecl_slice x, size_t n, daecl_err *err)
{
    const daecl_backend_ops *be = g->s->be;
    void *ctx = g->s->ctx;
    const daecl_model *m = g->m;
    /* A tied weight gets contributions from two layers: the first one
     * written (backward order) overwrites, the second accumulates. */
    int written[DAECL_MAX_DENSE] = {0};
    int cur = 0; /* delta[cur] holds dZ of the layer being processed */
    for (uint32_t l = m->n_layers; l-- > 0;) {
        const daecl_dense *ly = &m->layers[l];
        daecl_slice dz = daecl_at(g->delta[cur], 0);
        daecl_slice in = layer_in(g, x, l);
        uint32_t owner = ly->tied ? ly->tied_to : l;
        float beta = written[owner] ? 1.0f : 0.0f;
        written[owner] = 1;
        daecl_slice dw = daecl_at(g->grads, ly->w_off);
        int rc;
        if (ly->tied) /* dW_owner (in, out) += in^T (in, n) dZ (n, out) */
            rc = be->gemm(ctx, 1, 0, ly->in, ly->out, n, 1.0f, in, ly->in, dz, ly->out, beta, dw,
                          ly->out, err);
        else /* dW (out, in) = dZ^T (out, n) in (n, in) */
            rc = be->gemm(ctx, 1, 0, ly->out, ly->in, n, 1.0f, dz, ly->out, in, ly->in, beta, dw,
                          ly->in, err);
        if (rc)
            return rc;
        /* db (out) = sum over rows of dZ, unless a fused op gave it: the
         * loss for the output layer, act_grad_col_sum for the others */
        int top = l == m->n_layers - 1;
        if (top ? !g->top_bias_ready : !be->act_grad_col_sum) {
            rc = be->col_sum(ctx, dz, n, ly->out, 0.0f, daecl_at(g->grads, ly->b_off), err);
            if (rc)
                return rc;
        }
        if (l == 0)
            break;
        /* dH_{l-1} (n, in) = dZ (n, out) W_eff (out, in), differentiating the
         * forward gemm; then dZ_{l-1} = dH * act'(H_{l-1}). */
        daecl_slice dh = daecl_at(g->delta[1 - cur], 0);
        daecl_slice w = daecl_at(g->params, ly->w_off);
        if (ly->tied) /* W_eff = W_owner^T, W_owner (in, out) */
            rc = be->gemm(ctx, 0, 1, n, ly->in, ly->out, 1.0f, dz, ly->out, w, ly->out, 0.0f, dh,
                          ly->in, err);
        else /* W_eff = W (out, in) */
            rc = be->gemm(ctx, 0, 0, n, ly->in, ly->out, 1.0f, dz, ly->out, w, ly->in, 0.0f, dh,
                          ly->in, err);
        if (rc)
            return rc;
        rc = hidden_grads(g, dh, l - 1, n, err);
        if (rc)
            return rc;
        cur = 1 - cur;
    }
    return 0;
}

double daecl_schedule_lr(const daecl_config *cfg, uint64_t pos, uint64_t steps)
{
    double lr = cfg->optimizer.lr, lo = cfg->optimizer.lr_min;
    if (cfg->optimizer.schedule != DAECL_SCHEDULE_COSINE)
        return lr;
    if (pos >= steps)
        return lo;
    return lo + 0.5 * (lr - lo) * (1.0 + cos(M_PI * (double)pos / (double)steps));
}

void daecl_graph_set_lr(daecl_graph *g, double lr)
{
    g->lr = lr;
}

/* The rate of the update about to run (daecl_graph_set_lr's, or the
 * constant optimizer.lr). */
static int update_lr(const daecl_graph *g, const daecl_config *cfg, double *lr, daecl_err *err)
{
    if (g->lr >= 0) {
        *lr = g->lr;
        return 0;
    }
    if (cfg->optimizer.schedule == DAECL_SCHEDULE_COSINE)
        return daecl_err_set(err, DAECL_EINVAL, "an update under optimizer.schedule: cosine "
                             "ran before its step's learning rate was set; this is a bug in "
                             "daecl, please report it");
    *lr = cfg->optimizer.lr;
    return 0;
}

int daecl_graph_update(daecl_graph *g, const daecl_config *cfg, uint64_t t, daecl_err *err)
{
    const daecl_backend_ops *be = g->s->be;
    void *ctx = g->s->ctx;
    const daecl_model *m = g->m;
    double lr = 0;
    int rc = update_lr(g, cfg, &lr, err);
    if (rc)
        return rc;
    daecl_optim_step step = {
        .kind = cfg->optimizer.kind,
        .nesterov = (uint32_t)cfg->optimizer.nesterov,
        .lr = (float)lr,
        .momentum = (float)cfg->optimizer.momentum,
        .weight_decay = (float)cfg->optimizer.weight_decay,
        .beta1 = (float)cfg->optimizer.beta1,
        .beta2 = (float)cfg->optimizer.beta2,
        .eps = (float)cfg->optimizer.eps,
        .bias_corr1 = (float)(1.0 - pow(cfg->optimizer.beta1, (double)t)),
        .bias_corr2 = (float)(1.0 - pow(cfg->optimizer.beta2, (double)t)),
    };
    /* Weights with decay, then biases without: two contiguous ranges, in
     * one launch where the backend has optim_update_split; without decay,
     * one update over every parameter. */
    daecl_slice s1 = daecl_at(g->state1, 0), s2 = daecl_at(g->state2, 0);
    int split = step.weight_decay != 0.0f;
    if (split && be->optim_update_split) /* both ranges in one launch */
        return be->optim_update_split(ctx, &step, m->n_weights, daecl_at(g->params, 0),
                                      daecl_at(g->grads, 0), s1, s2, m->n_params, err);
    rc = be->optim_update(ctx, &step, daecl_at(g->params, 0), daecl_at(g->grads, 0), s1, s2,
                          split ? m->n_weights : m->n_params, err);
    if (rc || !split)
        return rc;
    step.weight_decay = 0.0f;
    size_t nb = m->n_params - m->n_weights;
    s1.off = s2.off = m->n_weights;
    return be->optim_update(ctx, &step, daecl_at(g->params, m->n_weights),
                            daecl_at(g->grads, m->n_weights), g->state1 ? s1 : daecl_at(NULL, 0),
                            g->state2 ? s2 : daecl_at(NULL, 0), nb, err);
}

int daecl_graph_set_params(daecl_graph *g, const float *params, daecl_err *err)
{
    return g->s->be->write(g->s->ctx, g->params, 0, params, g->m->n_params * sizeof(float), err);
}

int daecl_graph_get_params(daecl_graph *g, float *params, daecl_err *err)
{
    return g->s->be->read(g->s->ctx, g->params, 0, params, g->m->n_params * sizeof(float), err);
}

int daecl_graph_set_state(daecl_graph *g, const float *s1, const float *s2, daecl_err *err)
{
    size_t bytes = g->m->n_params * sizeof(float);
    int rc = 0;
    if (g->state1 && s1)
        rc = g->s->be->write(g->s->ctx, g->state1, 0, s1, bytes, err);
    if (!rc && g->state2 && s2)
        rc = g->s->be->write(g->s->ctx, g->state2, 0, s2, bytes, err);
    return rc;
}

int daecl_graph_get_state(daecl_graph *g, float *s1, float *s2, daecl_err *err)
{
    size_t bytes = g->m->n_params * sizeof(float);
    int rc = 0;
    if (g->state1 && s1)
        rc = g->s->be->read(g->s->ctx, g->state1, 0, s1, bytes, err);
    if (!rc && g->state2 && s2)
        rc = g->s->be->read(g->s->ctx, g->state2, 0, s2, bytes, err);
    return rc;
}

/* True when the fused path of daecl_graph_backward_update applies. */
static int fused_sgd(const daecl_graph *g, const daecl_config *cfg)
{
    if (cfg->optimizer.kind != DAECL_OPTIM_SGD || cfg->optimizer.momentum != 0)
        return 0;
    for (uint32_t l = 0; l < g->m->n_layers; l++)
        if (g->m->layers[l].tied)
            return 0;
    return 1;
}

int daecl_graph_backward_update(daecl_graph *g, daecl_slice x, size_t n, const daecl_config *cfg,
                                uint64_t t, daecl_err *err)
{
    if (!fused_sgd(g, cfg)) {
        int rc = daecl_graph_backward(g, x, n, err);
        return rc ? rc : daecl_graph_update(g, cfg, t, err);
    }
    const daecl_backend_ops *be = g->s->be;
    void *ctx = g->s->ctx;
    const daecl_model *m = g->m;
    double lr_d = 0;
    int rc = update_lr(g, cfg, &lr_d, err);
    if (rc)
        return rc;
    float lr = (float)lr_d;
    float keep = (float)(1.0 - lr_d * cfg->optimizer.weight_decay);
    int cur = 0;
    for (uint32_t l = m->n_layers; l-- > 0;) {
        const daecl_dense *ly = &m->layers[l];
        daecl_slice dz = daecl_at(g->delta[cur], 0), in = layer_in(g, x, l);
        daecl_slice w = daecl_at(g->params, ly->w_off);
        int top = l == m->n_layers - 1;
        if ((top ? !g->top_bias_ready : !be->act_grad_col_sum) &&
            (rc = be->col_sum(ctx, dz, n, ly->out, 0.0f, daecl_at(g->grads, ly->b_off), err)))
            return rc;
        if (l > 0) { /* dH (n, in) = dZ (n, out) W (out, in), with the old W */
            daecl_slice dh = daecl_at(g->delta[1 - cur], 0);
            if ((rc = be->gemm(ctx, 0, 0, n, ly->in, ly->out, 1.0f, dz, ly->out, w, ly->in, 0.0f,
                               dh, ly->in, err)) ||
                (rc = hidden_grads(g, dh, l - 1, n, err)))
                return rc;
        }
        /* W (out, in) = keep W - lr dZ^T (out, n) in (n, in) */
        if ((rc = be->gemm(ctx, 1, 0, ly->out, ly->in, n, -lr, dz, ly->out, in, ly->in, keep, w,
                           ly->in, err)))
            return rc;
        cur = 1 - cur;
    }
    /* The biases: plain SGD without decay over their contiguous range. */
    daecl_optim_step step = {.kind = DAECL_OPTIM_SGD, .lr = lr};
    return be->optim_update(ctx, &step, daecl_at(g->params, m->n_weights),
                            daecl_at(g->grads, m->n_weights), daecl_at(NULL, 0), daecl_at(NULL, 0),
                            m->n_params - m->n_weights, err);
}

/* Mirrors daecl_graph_forward and daecl_graph_backward_update above, product
 * for product; tests/test_graph.c records a real step to keep them equal. */
size_t daecl_graph_gemm_shapes(const daecl_graph *g, const daecl_config *cfg,
                               daecl_graph_gemm *out, size_t max)
{
    const daecl_model *m = g->m;
    /* Backward runs on every pair: all rows_max of them with fixed-k
     * walkback; geometric walkback's count varies, and batch_max stands in. */
    size_t b = g->batch_max, bb = cfg->train.walkback_p > 0 ? b : g->rows_max, n = 0;
#define PRODUCT(l_, what_, ta_, tb_, m_, n_, k_, beta_)                                           \
    do {                                                                                       \
        if (n < max)                                                                           \
            out[n] = (daecl_graph_gemm){(l_), (what_), (ta_), (tb_), (m_), (n_), (k_), (beta_)}; \
        n++;                                                                                   \
    } while (0)
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const daecl_dense *ly = &m->layers[l];
        PRODUCT(l, "forward", 0, !ly->tied, b, ly->out, ly->in, 0.0f);
    }
    int fused = fused_sgd(g, cfg);
    float keep = (float)(1.0 - cfg->optimizer.lr * cfg->optimizer.weight_decay);
    int written[DAECL_MAX_DENSE] = {0};
    for (uint32_t l = m->n_layers; l-- > 0;) {
        const daecl_dense *ly = &m->layers[l];
        if (fused) {
            if (l > 0)
                PRODUCT(l, "input grad", 0, 0, bb, ly->in, ly->out, 0.0f);
            PRODUCT(l, "weight grad", 1, 0, ly->out, ly->in, bb, keep);
            continue;
        }
        uint32_t owner = ly->tied ? ly->tied_to : l;
        float beta = written[owner] ? 1.0f : 0.0f;
        written[owner] = 1;
        if (ly->tied)
            PRODUCT(l, "weight grad", 1, 0, ly->in, ly->out, bb, beta);
        else
            PRODUCT(l, "weight grad", 1, 0, ly->out, ly->in, bb, beta);
        if (l > 0)
            PRODUCT(l, "input grad", 0, ly->tied, bb, ly->in, ly->out, 0.0f);
    }
#undef PRODUCT
    return n;
}
