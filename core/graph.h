/* daecl — the training graph on a device: parameters, gradients, optimiser
 * state and activations in backend buffers, and the forward, backward and
 * update passes of the DAE expressed as backend ops. Nothing here waits for
 * the device: every call only enqueues work. */
#ifndef DAECL_CORE_GRAPH_H
#define DAECL_CORE_GRAPH_H

#include "core/model.h"
#include "core/session.h"

typedef struct daecl_graph {
    daecl_session *s;
    const daecl_model *m;
    uint32_t batch_max;  /* rows of a batch */
    uint32_t rows_max;   /* rows the activations hold: batch_max, more with walkback's pairs */
    daecl_buf *params;   /* (n_params) */
    daecl_buf *grads;    /* (n_params) */
    daecl_buf *state1;   /* (n_params): SGD velocity or Adam m; NULL for plain SGD */
    daecl_buf *state2;   /* (n_params): Adam v; NULL for SGD */
    daecl_buf *acts;     /* layer l's output (rows_max, out_l) at act_off[l] */
    size_t act_off[DAECL_MAX_DENSE];
    daecl_buf *delta[2]; /* (rows_max, max_width) each: backward ping-pong */
    daecl_buf *nll;      /* (max(rows_max, dim)): per-row loss of the last batch, or
                          * its loss per dimension where the loss is fused */
    int top_bias_ready;  /* the last loss wrote the output layer's bias gradient */
    daecl_buf *input;    /* (rows_max, D): the corrupted copy of a batch */
    double lr;           /* the next update's learning rate (daecl_graph_set_lr); < 0: unset */
} daecl_graph;

/* Allocates every buffer for batches of up to batch_max rows, whose
 * forward and backward passes run on up to rows_max >= batch_max rows (a
 * batch's walkback pairs; 0: batch_max); optimiser state only where
 * `kind`/`momentum` need it. Parameters start at zero. */
int daecl_graph_create(daecl_session *s, const daecl_model *m, uint32_t batch_max,
                       uint32_t rows_max, daecl_optim_kind kind, double momentum,
                       daecl_graph **out, daecl_err *err);
void daecl_graph_destroy(daecl_graph *g);

/* Output of layer l for the last forward pass: (n, out_l). */
daecl_slice daecl_graph_layer_out(const daecl_graph *g, uint32_t l);

/* Forward pass of x (n, D) through every layer (up to and including
 * `last`, or all when last >= n_layers). */
int daecl_graph_forward(daecl_graph *g, daecl_slice x, size_t n, uint32_t last, daecl_err *err);
/* Forward of x (n, D) through the first `depth` encoder layers and their
 * mirrors only: layers 0..depth-1, then n_layers-depth..n_layers-1, so the
 * last layer's output is the reconstruction from the code of encoder layer
 * depth-1 (a stack's partial-depth DAE). Needs a mirrored decoder (n_layers
 * = 2 n_encoder) and 1 <= depth <= n_encoder; depth = n_encoder is the
 * whole forward. */
int daecl_graph_forward_depth(daecl_graph *g, daecl_slice x, size_t n, uint32_t depth,
                              daecl_err *err);
/* The same for rows [row0, row0 + n) of the activations: x holds those n
 * rows' inputs; the other rows' activations stay as they are. */
int daecl_graph_forward_rows(daecl_graph *g, daecl_slice x, size_t n, size_t row0,
                             daecl_err *err);
/* Output of the last layer at row `row`. */
daecl_slice daecl_graph_output_row(const daecl_graph *g, size_t row);

/* Loss of the last forward pass against the clean batch: per-row nll into
 * g->nll (per-dimension sums instead where the backend fuses the loss with
 * its gradient's sums, backend.h: lik_loss_grad_sums; the output layer's
 * bias gradient is then written here, not in backward), their sum into
 * loss_dst[0]; with mean_rows > 0, dL/dA into
 * delta[0] for the loss sum divided by mean_rows (the rows of the global
 * batch these n belong to: n on one device, more when replicas share the
 * batch); 0: no gradient. */
int daecl_graph_loss(daecl_graph *g, daecl_slice clean, size_t n, daecl_slice loss_dst,
                     size_t mean_rows, daecl_err *err);
/* The same, with loss_dst[0] the sum of the first sum_rows rows' nll only
 * (a batch's clean pairs, ahead of its walkback pairs). */
int daecl_graph_loss_rows(daecl_graph *g, daecl_slice clean, size_t n, daecl_slice loss_dst,
                          size_t mean_rows, size_t sum_rows, daecl_err *err);

/* Backward pass for input x (n, D) after forward + loss(want_grad): fills
 * g->grads with the gradient of the batch-mean loss. */
int daecl_graph_backward(daecl_graph *g, daecl_slice x, size_t n, daecl_err *err);

/* One optimiser step on every parameter; weight decay on weights only.
 * `t` is the 1-based number of this step (Adam's bias correction). */
int daecl_graph_update(daecl_graph *g, const daecl_config *cfg, uint64_t t, daecl_err *err);

/* optimizer.schedule's learning rate at step `pos` (from 0) of an
 * optimiser phase of `steps` steps (a run, a stage of a stack, a
 * fine-tuning): optimizer.lr when constant; for cosine,
 * lr_min + (lr - lr_min) (1 + cos(pi pos / steps)) / 2, torch's
 * CosineAnnealingLR with T_max = steps, and lr_min from the end on. */
double daecl_schedule_lr(const daecl_config *cfg, uint64_t pos, uint64_t steps);

/* The learning rate of g's next updates (daecl_graph_update and
 * daecl_graph_backward_update), set before each step by whoever knows the
 * step's place in its phase. A graph whose rate was never set uses
 * optimizer.lr; under a cosine schedule its update is refused instead. */
void daecl_graph_set_lr(daecl_graph *g, double lr);

/* backward + update, the training step's second half. For plain SGD
 * (momentum 0) on untied weights the weight gradient never exists: each
 * layer's weight-gradient GEMM writes W = (1 - lr wd) W - lr dZ^T X straight
 * into the parameters (alpha = -lr, beta = 1 - lr wd), after the layer's
 * input gradient has read the old W. That saves a pass over every weight and
 * the gradient buffer's traffic; the arithmetic is the update's own. Biases,
 * tied weights and every other optimiser take the ordinary path. */
int daecl_graph_backward_update(daecl_graph *g, daecl_slice x, size_t n, const daecl_config *cfg,
                                uint64_t t, daecl_err *err);

/* One GEMM product of a training step, as this graph runs it. */
typedef struct daecl_graph_gemm {
    uint32_t layer;   /* the layer it belongs to */
    const char *what; /* "forward", "weight grad" or "input grad" */
    int trans_a, trans_b;
    size_t m, n, k;
    float beta; /* nonzero: the product reads C */
} daecl_graph_gemm;

/* The GEMMs one training step runs at batch_max rows (forward, then
 * backward_update with cfg's optimiser; backward on rows_max rows with
 * fixed-k walkback), in the order it runs them: at most
 * max into out; returns how many there are (at most 3 * DAECL_MAX_DENSE).
 * `daecl tune` tunes these. Enqueues nothing. */
size_t daecl_graph_gemm_shapes(const daecl_graph *g, const daecl_config *cfg,
                               daecl_graph_gemm *out, size_t max);

/* Uploads / downloads the flat parameter and optimiser state arrays. */
int daecl_graph_set_params(daecl_graph *g, const float *params, daecl_err *err);
int daecl_graph_get_params(daecl_graph *g, float *params, daecl_err *err);
/* state is (n_params) for each non-NULL state buffer, in order state1, state2. */
int daecl_graph_set_state(daecl_graph *g, const float *s1, const float *s2, daecl_err *err);
int daecl_graph_get_state(daecl_graph *g, float *s1, float *s2, daecl_err *err);

#endif
