/* daecl — checkpoints: a model's weights, optimiser state and training
 * position in one safetensors file. Tensors use PyTorch's nn.Linear names
 * and shapes ("encoder.0.weight" [out, in], "encoder.0.bias" [out]; a tied
 * decoder layer stores no weight), optimiser state those of torch.optim
 * ("optim.encoder.0.weight.momentum_buffer", "....exp_avg", "....exp_avg_sq"),
 * and the metadata says everything needed to use the weights without daecl:
 * "daecl.layers" (JSON: name, in, out, activation, tied_to), the likelihood,
 * the resolved config, step, epoch and seed; "daecl.plugins" records each
 * plugin's name, version, file and SHA-256 (core/provenance.h). */
#ifndef DAECL_CORE_CHECKPOINT_H
#define DAECL_CORE_CHECKPOINT_H

#include <stdint.h>

#include "core/config.h"
#include "core/model.h"

/* The noise key a checkpoint's run drew with (metadata daecl.noise_key):
 * "2" is plugin.h's key by (epoch, position). A checkpoint without it, or
 * with another, is refused by load (resume and eval) in one sentence that
 * names the daecl version that wrote it. */
#define DAECL_CKPT_NOISE_KEY "2"

typedef struct daecl_ckpt_state {
    uint64_t step;  /* optimiser steps taken */
    uint32_t epoch; /* epochs completed */
    uint64_t seed;
    /* Within the epoch under way (a checkpoint between epochs has zeros):
     * the sum of its batch losses so far and the rows they covered, so a
     * resumed run reports the same epoch train NLL as an uninterrupted one. */
    double epoch_loss_sum;
    uint64_t epoch_rows;
    /* The step at which the optimiser's state last started from zero (0, or
     * where `daecl resume --reset-optimizer` reset it): Adam's bias
     * correction counts from there. */
    uint64_t optim_step0;
    /* save only: the data's digest as JSON (compat.h), stored as daecl.data;
     * NULL stores none. */
    const char *data_json;
    /* save only: the plugins the run uses (provenance.h), stored as
     * daecl.plugins; NULL stores "{}". */
    const char *plugins_json;
    /* save only: the world's replicas and their shares
     * (daecl_replicas_world_json), stored as daecl.world; NULL stores "{}". */
    const char *world_json;
    /* save only: a stack's phase (daecl_stack_phase_json), stored as
     * daecl.stage; NULL stores "{}". */
    const char *stage_json;
} daecl_ckpt_state;

/* params is (n_params); s1/s2 are the optimiser state arrays or NULL. */
int daecl_checkpoint_save(const char *path, const daecl_model *m, const daecl_config *cfg,
                          const float *params, const float *s1, const float *s2,
                          const daecl_ckpt_state *st, daecl_err *err);

/* Fills params (and s1/s2 when not NULL) from a checkpoint whose tensors
 * must match model m exactly, with m->optim's state names: a tensor the
 * model does not have is refused, as PyTorch's strict load_state_dict
 * refuses it. With s1 NULL the optimiser state (optim.*) is not read and
 * not checked. st gets the position (data_json NULL). */
int daecl_checkpoint_load(const char *path, const daecl_model *m, float *params, float *s1,
                          float *s2, daecl_ckpt_state *st, daecl_err *err);

/* The metadata values of `keys` in checkpoint `path`, read once: values[i]
 * gets a copy the caller frees, or NULL where the key is absent. */
int daecl_checkpoint_meta(const char *path, const char *const *keys, size_t n_keys,
                         char **values, daecl_err *err);
/* The resolved config YAML stored in a checkpoint (caller frees), or NULL. */
char *daecl_checkpoint_config(const char *path, daecl_err *err);

#endif
