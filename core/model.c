/* daecl — the DAE's architecture, parameter layout and initialisation. */
#include "core/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "daecl/elementwise.h"

const char *daecl_act_name(daecl_act act)
{
    switch (act) {
    case DAECL_ACT_LINEAR:
        return "linear";
    case DAECL_ACT_SIGMOID:
        return "sigmoid";
    case DAECL_ACT_TANH:
        return "tanh";
    case DAECL_ACT_RELU:
        return "relu";
    }
    return "unknown";
}

static void add_layer(daecl_model *m, const char *part, uint32_t index, uint32_t in, uint32_t out,
                      daecl_act act)
{
    daecl_dense *l = &m->layers[m->n_layers++];
    memset(l, 0, sizeof *l);
    l->in = in;
    l->out = out;
    l->act = act;
    snprintf(l->name, sizeof l->name, "%s.%u", part, index);
    if (out > m->max_width)
        m->max_width = out;
}

int daecl_model_init(daecl_model *m, const daecl_config *cfg, uint32_t dim, uint32_t k,
                     daecl_err *err)
{
    memset(m, 0, sizeof *m);
    m->dim = dim;
    m->k = k;
    m->max_width = dim;
    m->optim = cfg->optimizer.kind;
    uint32_t n_enc = cfg->model.n_encoder;
    if (n_enc == 0 || n_enc > DAECL_MAX_LAYERS)
        return daecl_err_set(err, DAECL_ECONFIG, "model.encoder needs 1 to %d layers, not %u",
                             DAECL_MAX_LAYERS, n_enc);
    uint32_t in = dim;
    for (uint32_t i = 0; i < n_enc; i++) {
        add_layer(m, "encoder", i, in, cfg->model.encoder[i].units, cfg->model.encoder[i].act);
        in = cfg->model.encoder[i].units;
    }
    m->n_encoder = n_enc;

    /* Decoder hidden layers: the encoder mirrored (units and activations of
     * the layers below the code, top down), or the explicit list. */
    daecl_layer_spec hidden[DAECL_MAX_LAYERS];
    uint32_t n_hidden = 0;
    if (cfg->model.decoder_mirror) {
        for (uint32_t i = n_enc - 1; i-- > 0;)
            hidden[n_hidden++] = cfg->model.encoder[i];
    } else {
        n_hidden = cfg->model.n_decoder;
        memcpy(hidden, cfg->model.decoder, n_hidden * sizeof hidden[0]);
    }
    for (uint32_t i = 0; i < n_hidden; i++) {
        add_layer(m, "decoder", i, in, hidden[i].units, hidden[i].act);
        in = hidden[i].units;
    }
    add_layer(m, "decoder", n_hidden, in, k * dim, DAECL_ACT_LINEAR);

    if (cfg->model.tied_weights) {
        /* Decoder layer j uses encoder layer n_enc-1-j transposed; the config
         * checked that the decoder mirrors the encoder and k == 1. */
        if (m->n_layers != 2 * n_enc || k != 1)
            return daecl_err_set(err, DAECL_ECONFIG,
                                 "model.tied_weights needs a decoder that mirrors the encoder and "
                                 "a likelihood with one parameter per dimension");
        for (uint32_t j = 0; j < n_enc; j++) {
            daecl_dense *d = &m->layers[n_enc + j];
            const daecl_dense *e = &m->layers[n_enc - 1 - j];
            if (d->in != e->out || d->out != e->in)
                return daecl_err_set(err, DAECL_ECONFIG,
                                     "model.tied_weights: layer %s (%u->%u) cannot share the "
                                     "weights of %s (%u->%u)",
                                     d->name, d->in, d->out, e->name, e->in, e->out);
            d->tied = 1;
            d->tied_to = n_enc - 1 - j;
        }
    }

    size_t off = 0;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        daecl_dense *ly = &m->layers[l];
        if (ly->tied)
            continue;
        ly->w_off = off;
        off += (size_t)ly->in * ly->out;
    }
    for (uint32_t l = 0; l < m->n_layers; l++)
        if (m->layers[l].tied)
            m->layers[l].w_off = m->layers[m->layers[l].tied_to].w_off;
    m->n_weights = off;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        m->layers[l].b_off = off;
        off += m->layers[l].out;
    }
    m->n_params = off;
    return 0;
}

void daecl_model_init_params(const daecl_model *m, uint64_t seed, float *params)
{
    memset(params, 0, m->n_params * sizeof *params);
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const daecl_dense *ly = &m->layers[l];
        if (ly->tied)
            continue;
        /* Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
        float a = (float)sqrt(6.0 / ((double)ly->in + (double)ly->out));
        /* Position l, block i: a layer's weights are one "example" of the
         * INIT stream (below 2^32 weights per layer). */
        daecl_noise_key key = {.seed = seed, .stream = DAECL_STREAM_INIT, .pos0 = l};
        size_t n = (size_t)ly->in * ly->out;
        float *w = params + ly->w_off;
        for (size_t i = 0; i < n; i++) {
            float u = daecl_u01(daecl_noise_block(&key, 0, (uint32_t)i).x);
            w[i] = (2.0f * u - 1.0f) * a;
        }
    }
}

const char *daecl_model_describe(const daecl_model *m, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "%u", m->dim);
    for (uint32_t l = 0; l < m->n_layers && used < n; l++)
        used += (size_t)snprintf(buf + used, n - used, "-%u(%s%s)", m->layers[l].out,
                                 daecl_act_name(m->layers[l].act), m->layers[l].tied ? ", tied" : "");
    return buf;
}
