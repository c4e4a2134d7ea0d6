/* daecl — a trained DAE as a Markov chain (Bengio, Yao, Alain & Vincent
 * 2013): each step x -> x~ ~ C(x~|x) -> h = f(x~) -> x' ~ p(x|h), or x' the
 * decoder's mean. The step on device rows (reused by walkback training) and
 * `daecl sample`: chains from a start set, kept states, pictures. */
#ifndef DAECL_CORE_SAMPLE_H
#define DAECL_CORE_SAMPLE_H

#include <stdint.h>

#include "core/graph.h"

/* The most steps one chain may take: the chain step is the noise key's
 * substep, which must stay below 65536 (plugin.h). */
#define DAECL_SAMPLE_MAX_STEPS 65536u

/* Advances the n_rows rows of x (n_rows, dim = the model's input) by one
 * chain step, in place; n_rows <= g->batch_max. The corruption draws under
 * *key as given (its stream: the caller's corruption stream); the decoder's
 * draws under the same key with stream DAECL_STREAM_SAMPLE. use_mean: x' is
 * the decoder's mean and draws nothing. Uses g->input (x~) and g's
 * activations; only enqueues work. */
int daecl_sample_step(daecl_graph *g, daecl_slice x, size_t n_rows, const daecl_shape *shape,
                      const daecl_noise_key *key, int use_mean, daecl_err *err);

typedef enum {
    DAECL_SAMPLE_START_TEST = 0, /* chain k starts at test example k mod n (train without test) */
    DAECL_SAMPLE_START_NOISE,    /* uniform in the training data's [min, max] */
    DAECL_SAMPLE_START_CONST     /* every value start_value */
} daecl_sample_start;

typedef struct daecl_sample_opts {
    const char *run_dir;         /* the trained run */
    const char *out_dir;         /* NULL: run_dir */
    const char *const *overrides;
    size_t n_overrides;
    uint32_t chains, steps, burn_in, thin; /* chains, steps >= 1; burn_in < steps; thin >= 1 */
    int has_seed;                /* 0: the run's seed */
    uint64_t seed;
    daecl_sample_start start;
    float start_value;           /* DAECL_SAMPLE_START_CONST */
    int use_mean;
    const char *clamp_path;      /* a .npy of D values (nonzero: keep the start value), or NULL */
} daecl_sample_opts;

/* What a sampling wrote: kept states (steps burn_in + thin*j <= steps ending
 * at the last), and the files' paths. */
typedef struct daecl_sample_result {
    uint32_t kept, chains, dim;
    char samples[4096], chains_png[4096], samples_png[4096]; /* empty: not drawn */
} daecl_sample_result;

/* `daecl sample`: opens the trained run, runs the chains on its backend and
 * writes samples.npy (float32, C order, (kept, chains, D): the state after
 * steps T - thin*(kept-1-i) for i = 0..kept-1, the last always kept),
 * chains.png and samples.png (image-shaped data only) into out_dir. */
int daecl_sample_run(const daecl_sample_opts *o, daecl_sample_result *res, daecl_err *err);

struct daecl_run;
/* The chains of daecl_sample_run on a run already open (r: core/run.h);
 * o->run_dir, out_dir and overrides are not read. start (chains, dim) gets
 * the start set; kept (n_kept, chains, dim) the kept states, or NULL;
 * means (chains, dim) the decoder's mean at the last step (the grey value
 * behind the last draw), or NULL. All three are the caller's host memory. */
int daecl_sample_chains(struct daecl_run *r, const daecl_sample_opts *o, float *start,
                        float *kept, float *means, daecl_err *err);

#endif
