/* daecl — stacked denoising autoencoders (Vincent, Larochelle, Lajoie,
 * Bengio & Manzagol, JMLR 2010): greedy layer-wise pretraining, then
 * optional end-to-end fine-tuning of the whole stack as one deep DAE.
 *
 * The run's model is the deep DAE of the config (encoder layers 0..L-1, the
 * decoder mirroring them, the output layer): its parameters are what the
 * checkpoint holds, under the usual names. Stage k (k < L) trains encoder
 * layer k and its mirror (the output layer for k = 0, decoder layer
 * L-1-k otherwise) as a one-hidden-layer DAE of its own: its input is the
 * clean code h_{k-1} of the layers below on the batch (the raw input for
 * k = 0), computed on the device by the deep model's forward pass, never
 * stored; it corrupts that code with the stage's corruption and
 * reconstructs it under the stage's likelihood, whose parameters are the
 * mirror's pre-activations. The layers below stay fixed. Stage L, when
 * stack.finetune_epochs > 0, trains the deep model end to end.
 *
 * The run's epochs are the stages' in order: stage k's train.epochs, then
 * the fine-tuning's. Stage k draws its noise and its shuffles with the noise
 * key's stage field k and its own epoch count from 0, so a stage equals the
 * same DAE trained by hand on the codes with that stage field. Its
 * optimiser starts from zero state at its first step. */
#ifndef DAECL_CORE_STACK_H
#define DAECL_CORE_STACK_H

#include <stdint.h>

#include "core/evaluate.h"

struct daecl_run;
typedef struct daecl_stack daecl_stack;

/* Checks stacked training for a run whose config, data and model are
 * loaded (before its device opens): every stage's config (the config with
 * its stack.stages item applied), that the decoder mirrors the encoder,
 * that each upper stage's likelihood has one parameter per value and fits
 * the codes it reconstructs (a Bernoulli on sigmoid codes, not on tanh's).
 * *out = NULL when stack.greedy is off. */
int daecl_stack_create(struct daecl_run *r, daecl_stack **out, daecl_err *err);
void daecl_stack_destroy(daecl_stack *st);

/* All the run's epochs: the stages', then the fine-tuning's. */
uint32_t daecl_stack_epochs(const daecl_stack *st);
/* The phase of the run's epoch e: *stage k < L a greedy stage, L the
 * fine-tuning; *stage_epoch its epoch within the phase (from 0). */
void daecl_stack_phase(const daecl_stack *st, uint32_t e, uint32_t *stage, uint32_t *stage_epoch);
/* The epochs of phase k (a stage, or the fine-tuning for k = L). */
uint32_t daecl_stack_phase_epochs(const daecl_stack *st, uint32_t k);
/* L: the number of greedy stages (encoder layers). */
uint32_t daecl_stack_layers(const daecl_stack *st);
/* Stage k's config (k < L), or the run's (k = L). */
const daecl_config *daecl_stack_config(const daecl_stack *st, uint32_t k);
/* The phase under way, or UINT32_MAX before the first. */
uint32_t daecl_stack_current(const daecl_stack *st);

/* Moves to phase k on the run's device (after daecl_run_start): hands the
 * stage under way back to the deep model, binds phase k's corruption and
 * likelihood, and builds stage k's graph from the deep model's parameters
 * and optimiser state. The fine-tuning (k = L) trains the deep graph
 * itself, its optimiser state cleared when `fresh`. */
int daecl_stack_enter(daecl_stack *st, uint32_t k, int fresh, daecl_err *err);
/* Copies the stage under way's parameters and optimiser state into the
 * deep model's (before a checkpoint is read from it). */
int daecl_stack_sync(daecl_stack *st, daecl_err *err);

/* One step of the greedy stage under way on rows [first, first + n) of
 * its epoch stage_epoch at learning rate lr; loss_dst gets the rows' NLL
 * sum. */
int daecl_stack_step(daecl_stack *st, size_t first, size_t n, uint32_t stage_epoch,
                     uint64_t optim_t, double lr, daecl_slice loss_dst, daecl_err *err);
/* The greedy stage under way's NLLs (clean and corrupted input) over the
 * codes of every row of `data`, mean per row. */
int daecl_stack_eval(daecl_stack *st, daecl_feeder *data, daecl_eval_result *out,
                     daecl_err *err);

/* The phase of the run's epoch e as JSON for checkpoints and metrics
 * ({"stage": k, "stages": L, "phase": "greedy" | "finetune", "epoch": e'});
 * malloc'd, or NULL when out of memory. */
char *daecl_stack_phase_json(const daecl_stack *st, uint32_t e);

#endif
