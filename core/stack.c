/* daecl — stacked DAEs: the stages' configs and models, moving between
 * stages on the device, a stage's step and its evaluation (stack.h). */
#include "core/stack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/registry.h"
#include "core/run.h"
#include "core/support.h"
#include "core/walkback.h"

struct daecl_stack {
    daecl_run *r;
    uint32_t L;
    daecl_config *cfg[DAECL_MAX_LAYERS]; /* stage k's config */
    daecl_model model[DAECL_MAX_LAYERS]; /* stage k's DAE: layer 0 = deep k, layer 1 = its mirror */
    uint32_t mirror[DAECL_MAX_LAYERS];   /* the deep layer that mirrors encoder layer k */
    uint32_t epochs[DAECL_MAX_LAYERS + 1];
    uint32_t cur;                        /* the phase under way; UINT32_MAX: none yet */
    daecl_graph *g;                      /* the greedy stage under way's graph */
};

/* ---- building ---------------------------------------------------------------------------- */

/* The range of values an activation gives. */
static void act_range(daecl_act a, double *lo, double *hi)
{
    *lo = a == DAECL_ACT_SIGMOID || a == DAECL_ACT_RELU ? 0.0 : a == DAECL_ACT_TANH ? -1.0
                                                                                   : -INFINITY;
    *hi = a == DAECL_ACT_SIGMOID || a == DAECL_ACT_TANH ? 1.0 : INFINITY;
}

/* Stage k's DAE: deep layer k, then its mirror made linear, with the
 * stage likelihood's kk parameters per input value. */
static void stage_model(const daecl_model *deep, uint32_t k, uint32_t mirror, uint32_t kk,
                        daecl_optim_kind optim, daecl_model *m)
{
    const daecl_dense *e = &deep->layers[k], *d = &deep->layers[mirror];
    memset(m, 0, sizeof *m);
    m->dim = e->in;
    m->k = kk;
    m->n_layers = 2;
    m->n_encoder = 1;
    m->optim = optim;
    m->layers[0] = (daecl_dense){.in = e->in, .out = e->out, .act = e->act, .name = "encoder.0"};
    m->layers[1] = (daecl_dense){.in = d->in, .out = d->out, .act = DAECL_ACT_LINEAR,
                                 .tied = d->tied, .name = "decoder.0"};
    m->layers[0].w_off = 0;
    m->layers[1].w_off = d->tied ? 0 : (size_t)e->in * e->out;
    m->n_weights = (size_t)e->in * e->out + (d->tied ? 0 : (size_t)d->in * d->out);
    m->layers[0].b_off = m->n_weights;
    m->layers[1].b_off = m->n_weights + e->out;
    m->n_params = m->layers[1].b_off + d->out;
    m->max_width = e->in > e->out ? e->in : e->out;
    if (d->out > m->max_width)
        m->max_width = d->out;
}

/* Stage k's config: the run's, resolved, with its stack.stages item. */
static int stage_config(daecl_stack *st, uint32_t k, const char *yaml, daecl_err *err)
{
    const daecl_config *c = st->r->cfg;
    const char *ov[DAECL_STAGE_MAX_OV + 3];
    size_t n = 0;
    for (uint32_t i = 0; k < c->stack.n_stages && i < c->stack.n_ov[k]; i++)
        ov[n++] = c->stack.stage_ov[k][i];
    ov[n++] = "stack.greedy=false";
    ov[n++] = "stack.stages=[]";
    ov[n++] = "stack.finetune_epochs=0";
    daecl_err e = {0};
    int rc = daecl_config_load_string(yaml, strlen(yaml), c->source, ov, n, st->r->reg,
                                      &st->cfg[k], &e);
    if (!rc)
        return 0;
    if (k < c->stack.n_stages && c->stack.line[k])
        return daecl_err_set(err, rc, "%s:%d:%d: stack.stages.%u: %s", c->source,
                             c->stack.line[k], c->stack.col[k], k, e.msg);
    return daecl_err_set(err, rc, "stack.stages.%u: %s", k, e.msg);
}

/* Stage k's likelihood against what it reconstructs: the data (k = 0) or
 * the codes of layer k - 1. */
static int check_stage(daecl_stack *st, uint32_t k, const daecl_model *deep, daecl_err *err)
{
    const daecl_config *sc = st->cfg[k];
    const daecl_likelihood_ops *lik = sc->likelihood.plugin->ops;
    const daecl_dense *mirror = &deep->layers[st->mirror[k]];
    uint32_t in = deep->layers[k].in;
    if ((size_t)lik->params_per_dim * in != mirror->out)
        return daecl_err_set(err, DAECL_ECONFIG, "stack stage %u's likelihood '%s' has %u "
                             "parameters per value, but %s gives %u outputs for %u values; give "
                             "stage %u a likelihood with %u (for example bernoulli or gaussian)",
                             k, sc->likelihood.name, lik->params_per_dim, mirror->name,
                             mirror->out, in, k, mirror->out / in);
    double lo, hi, a_lo, a_hi;
    const daecl_plugin *p = sc->likelihood.plugin;
    if (!daecl_support_data_range(p->ops, &lo, &hi))
        return 0;
    if (k == 0) {
        const daecl_dataset *ds = st->r->train;
        if (ds->min >= lo && ds->max <= hi)
            return 0;
        return daecl_err_set(err, DAECL_ECONFIG, "stack stage 0's likelihood '%s' scores values "
                             "in [%g, %g], but the data span [%g, %g]; choose a likelihood whose "
                             "range holds them", sc->likelihood.name, lo, hi, (double)ds->min,
                             (double)ds->max);
    }
    daecl_act act = deep->layers[k - 1].act;
    act_range(act, &a_lo, &a_hi);
    if (a_lo >= lo && a_hi <= hi)
        return 0;
    return daecl_err_set(err, DAECL_ECONFIG, "stack stage %u reconstructs the %s codes of "
                         "encoder layer %u, which lie in [%g, %g], but its likelihood '%s' "
                         "scores values in [%g, %g]; give stage %u a likelihood that fits them "
                         "(gaussian fits any code; bernoulli fits sigmoid codes)",
                         k, daecl_act_name(act), k - 1, a_lo, a_hi, sc->likelihood.name, lo, hi,
                         k);
}

int daecl_stack_create(daecl_run *r, daecl_stack **out, daecl_err *err)
{
    const daecl_config *c = r->cfg;
    *out = NULL;
    if (!c->stack.greedy) {
        if (c->stack.n_stages || c->stack.finetune_epochs)
            return daecl_err_set(err, DAECL_ECONFIG, "stack.%s is set but stack.greedy is off; "
                                 "set stack.greedy: true to train the stack layer by layer",
                                 c->stack.n_stages ? "stages" : "finetune_epochs");
        return 0;
    }
    daecl_model deep;
    const daecl_likelihood_ops *lik = c->likelihood.plugin->ops;
    int rc = daecl_model_init(&deep, c, (uint32_t)r->train->dim, lik->params_per_dim, err);
    if (rc)
        return rc;
    uint32_t L = deep.n_encoder;
    if (c->stack.n_stages > L)
        return daecl_err_set(err, DAECL_ECONFIG, "stack.stages lists %u stages, but the model "
                             "has %u encoder layer%s, one stage each; list at most %u",
                             c->stack.n_stages, L, L == 1 ? "" : "s", L);
    if (deep.n_layers != 2 * L)
        return daecl_err_set(err, DAECL_ECONFIG, "stack.greedy trains each encoder layer with "
                             "its mirror, so it needs model.decoder: mirror, not %u decoder "
                             "layers of their own", deep.n_layers - L - 1);
    for (uint32_t k = 0; k < L; k++) {
        const daecl_dense *e = &deep.layers[k], *d = &deep.layers[2 * L - 1 - k];
        if (d->in != e->out || (k > 0 && d->out != e->in))
            return daecl_err_set(err, DAECL_ECONFIG, "stack.greedy needs model.decoder: "
                                 "mirror; %s (%u->%u) does not mirror %s (%u->%u)", d->name,
                                 d->in, d->out, e->name, e->in, e->out);
    }
    if (c->parallel.n_devices)
        return daecl_err_set(err, DAECL_ECONFIG, "stack.greedy trains on one device; remove "
                             "parallel.devices (the backend section names the device)");
    if (c->train.walkback)
        return daecl_err_set(err, DAECL_ECONFIG, "stack.greedy does not train with walkback; "
                             "set train.walkback to 0");
    daecl_stack *st = calloc(1, sizeof *st);
    char *yaml = daecl_config_to_yaml(c);
    if (!st || !yaml) {
        free(st);
        free(yaml);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory preparing the stack");
    }
    st->r = r;
    st->L = L;
    st->cur = UINT32_MAX;
    for (uint32_t k = 0; k < L && !rc; k++) {
        st->mirror[k] = 2 * L - 1 - k;
        if ((rc = stage_config(st, k, yaml, err)) || (rc = check_stage(st, k, &deep, err)))
            break;
        const daecl_config *sc = st->cfg[k];
        const daecl_likelihood_ops *sl = sc->likelihood.plugin->ops;
        stage_model(&deep, k, st->mirror[k], sl->params_per_dim,
                    sc->optimizer.kind, &st->model[k]);
        st->epochs[k] = sc->train.epochs;
    }
    st->epochs[L] = c->stack.finetune_epochs;
    free(yaml);
    if (rc) {
        daecl_stack_destroy(st);
        return rc;
    }
    *out = st;
    return 0;
}

void daecl_stack_destroy(daecl_stack *st)
{
    if (!st)
        return;
    daecl_graph_destroy(st->g);
    for (uint32_t k = 0; k < st->L; k++)
        daecl_config_destroy(st->cfg[k]);
    free(st);
}

/* ---- phases --------------------------------------------------------------------------------- */

uint32_t daecl_stack_phase_epochs(const daecl_stack *st, uint32_t k)
{
    return k <= st->L ? st->epochs[k] : 0;
}

uint32_t daecl_stack_epochs(const daecl_stack *st)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k <= st->L; k++)
        n += st->epochs[k];
    return n;
}

void daecl_stack_phase(const daecl_stack *st, uint32_t e, uint32_t *stage, uint32_t *stage_epoch)
{
    uint32_t k = 0;
    while (k < st->L && e >= st->epochs[k])
        e -= st->epochs[k++];
    *stage = k;
    *stage_epoch = e;
}

uint32_t daecl_stack_layers(const daecl_stack *st)
{
    return st->L;
}

const daecl_config *daecl_stack_config(const daecl_stack *st, uint32_t k)
{
    return k < st->L ? st->cfg[k] : st->r->cfg;
}

uint32_t daecl_stack_current(const daecl_stack *st)
{
    return st->cur;
}

char *daecl_stack_phase_json(const daecl_stack *st, uint32_t e)
{
    uint32_t k, ke;
    daecl_stack_phase(st, e, &k, &ke);
    char buf[160];
    snprintf(buf, sizeof buf, "{\"stage\":%u,\"stages\":%u,\"phase\":\"%s\",\"epoch\":%u}", k,
             st->L, k < st->L ? "greedy" : "finetune", ke);
    return strdup(buf);
}

/* ---- moving between the stage and the deep model --------------------------------------------- */

/* One layer's weights and biases, and those of its optimiser state, from
 * (src, sl) to (dst, dl); the buffers of a graph in the given order. */
static int copy_layer(daecl_session *s, daecl_graph *dst, const daecl_dense *dl, daecl_graph *src,
                      const daecl_dense *sl, int state, daecl_err *err)
{
    daecl_buf *d[3] = {dst->params, dst->state1, dst->state2};
    daecl_buf *from[3] = {src->params, src->state1, src->state2};
    size_t nw = (size_t)dl->in * dl->out;
    for (int i = 0; i < (state ? 3 : 1); i++) {
        if (!d[i] || !from[i])
            continue;
        int rc = 0;
        if (!dl->tied)
            rc = s->be->copy(s->ctx, daecl_at(d[i], dl->w_off), daecl_at(from[i], sl->w_off), nw,
                             err);
        if (!rc)
            rc = s->be->copy(s->ctx, daecl_at(d[i], dl->b_off), daecl_at(from[i], sl->b_off),
                             dl->out, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Stage k's two layers between its graph and the deep graph. */
static int copy_stage(daecl_stack *st, uint32_t k, int to_deep, int state, daecl_err *err)
{
    daecl_graph *deep = st->r->g, *g = st->g;
    const daecl_dense *dl[2] = {&deep->m->layers[k], &deep->m->layers[st->mirror[k]]};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++)
        rc = to_deep ? copy_layer(st->r->s, deep, dl[i], g, &g->m->layers[i], state, err)
                     : copy_layer(st->r->s, g, &g->m->layers[i], deep, dl[i], state, err);
    return rc;
}

int daecl_stack_sync(daecl_stack *st, daecl_err *err)
{
    if (!st || st->cur >= st->L)
        return 0;
    return copy_stage(st, st->cur, 1, 1, err);
}

int daecl_stack_enter(daecl_stack *st, uint32_t k, int fresh, daecl_err *err)
{
    daecl_run *r = st->r;
    int rc;
    if (k == st->cur)
        return 0;
    if ((rc = daecl_stack_sync(st, err)))
        return rc;
    daecl_graph_destroy(st->g);
    st->g = NULL;
    st->cur = UINT32_MAX;
    const daecl_config *sc = daecl_stack_config(st, k);
    if ((rc = daecl_session_rebind(r->s, sc, err)))
        return rc;
    if (k == st->L) {
        /* The deep model's optimiser starts afresh: its state holds the
         * stages' (each layer's last), laid out for the deep model. */
        daecl_graph *g = r->g;
        size_t np = g->m->n_params;
        if (fresh && ((g->state1 && (rc = daecl_session_fill(r->s, daecl_at(g->state1, 0), np,
                                                             0.0f, err))) ||
                      (g->state2 && (rc = daecl_session_fill(r->s, daecl_at(g->state2, 0), np,
                                                             0.0f, err)))))
            return rc;
        st->cur = k;
        return 0;
    }
    if ((rc = daecl_graph_create(r->s, &st->model[k], r->g->batch_max, 0, sc->optimizer.kind,
                                 sc->optimizer.momentum, &st->g, err)) ||
        (rc = copy_stage(st, k, 0, !fresh, err)))
        return rc;
    st->cur = k;
    return 0;
}

/* ---- a stage's step and evaluation --------------------------------------------------------- */

/* The clean input of stage k for rows of x: x itself, or the code of
 * encoder layer k - 1 from the deep model (fixed during the stage). */
static int stage_input(daecl_stack *st, daecl_slice x, size_t n, daecl_slice *h,
                       daecl_shape *shape, daecl_err *err)
{
    uint32_t k = st->cur;
    if (k == 0) {
        *h = x;
        daecl_dataset_shape(st->r->train, shape);
        return 0;
    }
    memset(shape, 0, sizeof *shape);
    shape->rank = 1;
    shape->dims[0] = st->r->g->m->layers[k - 1].out;
    *h = daecl_graph_layer_out(st->r->g, k - 1);
    return daecl_graph_forward(st->r->g, x, n, k - 1, err);
}

int daecl_stack_step(daecl_stack *st, size_t first, size_t n, uint32_t stage_epoch,
                     uint64_t optim_t, double lr, daecl_slice loss_dst, daecl_err *err)
{
    daecl_run *r = st->r;
    uint32_t k = st->cur;
    const daecl_config *sc = st->cfg[k];
    daecl_slice x, h;
    daecl_shape shape;
    daecl_pairs pr;
    daecl_noise_key key = {.seed = sc->seed, .stream = DAECL_STREAM_TRAIN_CORRUPTION, .stage = k,
                           .epoch = stage_epoch, .pos0 = (uint32_t)first};
    int rc;
    if ((rc = daecl_feeder_batch(r->train_feed, first, n, &x, err)) ||
        (rc = stage_input(st, x, n, &h, &shape, err)) ||
        (rc = daecl_pairs_forward(st->g, NULL, h, n, &shape, &key, &pr, err)) ||
        (rc = daecl_graph_loss(st->g, pr.target, n, loss_dst, n, err)))
        return rc;
    daecl_graph_set_lr(st->g, lr);
    return daecl_graph_backward_update(st->g, pr.in, n, sc, optim_t, err);
}

static int stage_input_fn(void *ctx, daecl_slice x, size_t n, daecl_slice *h, daecl_shape *shape,
                          daecl_err *err)
{
    return stage_input(ctx, x, n, h, shape, err);
}

int daecl_stack_eval(daecl_stack *st, daecl_feeder *data, daecl_eval_result *out,
                     daecl_err *err)
{
    return daecl_eval_codes(st->g, data, st->r->cfg->seed, st->cur, stage_input_fn, st, out,
                            err);
}
