/* daecl — the DAE's architecture and parameter layout (no device state).
 *
 * The network is a stack of dense layers, out = act(in W^T + b), encoder
 * first, decoder after, the last one linear with k*D outputs. Every parameter
 * lives in one flat float array: all weights first (layer order, W as
 * [out, in] like PyTorch's nn.Linear), then all biases, so weight decay and
 * optimiser updates are two calls over two contiguous ranges. A tied decoder
 * layer owns no weight: it uses the mirrored encoder layer's W transposed. */
#ifndef DAECL_CORE_MODEL_H
#define DAECL_CORE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

#define DAECL_MAX_DENSE (2 * DAECL_MAX_LAYERS + 1)

typedef struct daecl_dense {
    uint32_t in, out;
    daecl_act act;
    int tied;         /* 1: W is layers[tied_to].W transposed, (in, out) */
    uint32_t tied_to;
    size_t w_off;     /* offset of W in the parameter array (the owner's when tied) */
    size_t b_off;     /* offset of b (out) */
    char name[32];    /* "encoder.0", "decoder.1": the checkpoint's tensor prefix */
} daecl_dense;

typedef struct daecl_model {
    uint32_t dim;       /* D: input dimensions */
    uint32_t k;         /* likelihood parameters per dimension */
    uint32_t n_layers;
    uint32_t n_encoder; /* layers[0 .. n_encoder) encode; the top code is layers[n_encoder-1] */
    daecl_dense layers[DAECL_MAX_DENSE];
    size_t n_weights;   /* floats in [0, n_weights) are weights */
    size_t n_params;    /* floats in [n_weights, n_params) are biases */
    uint32_t max_width; /* widest layer output, and D */
    daecl_optim_kind optim; /* the optimiser whose state checkpoints hold */
} daecl_model;

/* Builds the layer list and layout from the config for data of `dim`
 * dimensions and a likelihood with k parameters per dimension. */
int daecl_model_init(daecl_model *m, const daecl_config *cfg, uint32_t dim, uint32_t k,
                     daecl_err *err);

/* Glorot-uniform weights, zero biases, from (seed, DAECL_STREAM_INIT): W of
 * the layer with index l draws weight i from block i of position l (plugin.h). */
void daecl_model_init_params(const daecl_model *m, uint64_t seed, float *params);

/* "784-1000(sigmoid)-784(linear)" style summary; returns buf. */
const char *daecl_model_describe(const daecl_model *m, char *buf, size_t n);

const char *daecl_act_name(daecl_act act);

#endif
