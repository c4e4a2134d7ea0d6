/* daecl — synchronous data parallelism: the replicas of a run's weights on
 * this process's devices, each taking a share of every global batch, and
 * the reduction that sums their gradients (inside the process, then across
 * ranks through the communicator, core/comm.h) so that every replica
 * applies the same update. Replica 0 is the run's own session, graph and
 * feeder (core/run.h): evaluation, pictures and the probe use it alone.
 *
 * Rules a step keeps (docs/scaling.md):
 *   - the global batch i is the rows [i b, i b + n) of the epoch's one
 *     permutation; replica j of the world takes the rows core/shares.h
 *     gives it, and its noise is keyed by their positions (noise key 2.0),
 *     so any split corrupts every example identically;
 *   - each replica's loss gradient is scaled by 1/n (the global batch), so
 *     the summed gradient is the single device's and the learning rate
 *     means the same;
 *   - the sum runs in a fixed order (this process's replicas in order, then
 *     the communicator's allreduce), and every replica receives the same
 *     bits, so replicas on one kind of backend stay bit-identical. */
#ifndef DAECL_CORE_REPLICAS_H
#define DAECL_CORE_REPLICAS_H

#include <stdint.h>

#include "core/comm.h"
#include "core/config.h"
#include "core/data.h"
#include "core/feeder.h"
#include "core/graph.h"
#include "core/session.h"
#include "core/walkback.h"

/* One replica of the world, as every rank knows it (exchanged at start). */
typedef struct daecl_replica_desc {
    uint32_t rank;       /* the rank that holds it */
    uint32_t local;      /* its index among that rank's replicas */
    uint32_t entry;      /* its parallel.devices entry (0 without the list) */
    char plugin[32];     /* its backend */
    char device[128];    /* its device's name */
    char host[64];       /* its rank's node */
    uint32_t platform_index, device_index; /* as the backend describes its device */
} daecl_replica_desc;

/* What one replica did since the last report (per-replica metrics). */
typedef struct daecl_replica_stats {
    double rows;      /* rows it computed */
    double busy_s;    /* seconds from a step's start to its gradient on the host */
    double wait_s;    /* seconds its gradient waited for the slowest replica */
    double sync_s;    /* seconds of its reads and writes of the reduction */
} daecl_replica_stats;

typedef struct daecl_replicas daecl_replicas;

/* The world's replicas for a run whose replica 0 (session s0, graph g0,
 * feeder f0) is open: opens this rank's other devices (its entries of
 * cfg->parallel.devices), builds their graphs and feeders on `train`, and
 * learns every rank's replicas through `comm`. Refuses, in one sentence
 * and before any step, a world with more replicas than rows in a batch
 * and two replicas on one device. `entries` lists this rank's entries
 * (core/replicas.c: daecl_replicas_entries) and n_entries their count;
 * replica 0 is entries[0], wb0 its walkback buffers (NULL: none). */
int daecl_replicas_create(const daecl_config *cfg, daecl_comm *comm, const daecl_model *m,
                          const daecl_dataset *train, daecl_session *s0, daecl_graph *g0,
                          daecl_walkback *wb0, daecl_feeder *f0, const uint32_t *entries,
                          uint32_t n_entries, daecl_replicas **out, daecl_err *err);
void daecl_replicas_destroy(daecl_replicas *p);

/* This rank's entries of parallel.devices: local rank k of L takes the
 * entries j with j % L == k; with fewer entries than local ranks, entry
 * k % n_devices. Without the list, the backend section (entry 0). Returns
 * how many (at most DAECL_MAX_REPLICAS). */
uint32_t daecl_replicas_entries(const daecl_config *cfg, const daecl_comm_info *info,
                                uint32_t *entries);

/* The backend section of entry e (cfg->backend without parallel.devices). */
const daecl_plugin_cfg *daecl_replicas_backend(const daecl_config *cfg, uint32_t e);

/* Every rank's verdict on a phase that may fail on some ranks only: rc
 * when this rank failed, DAECL_EPEER when another did, else 0. A
 * collective. On a failure in a world of several ranks the sentences are
 * said before it returns (daecl_replicas_say), so err keeps the status
 * with an empty sentence; only when the verdict itself could not be
 * reached (the reduction failed) is err this rank's sentence, unsaid. */
int daecl_replicas_agree(daecl_comm *comm, int rc, daecl_err *err);

/* A failure every rank of comm knows of and returns with: a rank whose err
 * has a sentence says it on stderr (daecl_err_say) and empties it (status
 * kept), then every rank waits for the others at a barrier. Without the
 * wait a silent rank exits first, and mpirun, seeing a rank fail, ends
 * the others before their sentence is out. Nothing with one rank. A
 * collective: call it on every rank or on none. */
void daecl_replicas_say(daecl_comm *comm, daecl_err *err);

/* This epoch's order on the training feeders of replicas 1.. (replica 0's
 * is the run's); NULL p is fine. */
int daecl_replicas_shuffle(daecl_replicas *p, uint64_t seed, uint32_t epoch, daecl_err *err);

/* 1 when the world has more than one replica: steps then reduce. */
int daecl_replicas_parallel(const daecl_replicas *p);

/* The world. */
uint32_t daecl_replicas_count(const daecl_replicas *p);
const daecl_replica_desc *daecl_replicas_desc(const daecl_replicas *p, uint32_t j);
/* Replica j's share of the global batch now (0 when left out). */
double daecl_replicas_share(const daecl_replicas *p, uint32_t j);

/* One optimiser step on the global batch [first, first + n) of the
 * current epoch's order (every replica's feeder shuffled alike): each
 * replica's share is gathered, corrupted (noise keyed by position), run
 * forward and backward with the loss scaled by 1/n; the gradients and
 * losses are summed; every replica applies the update (optim_t: the
 * optimiser's 1-based step; lr: the step's learning rate,
 * daecl_schedule_lr's). The batch's loss sum lands in loss_dst on
 * replica 0's session and in *loss (0 when a process left with one
 * replica trains it alone as one device does: the trainer then reads the
 * loss from loss_dst, as for one device). `stop_local` is this rank's stop
 * request (a signal); *stop_all gets whether any rank of the world asked,
 * so every rank stops after the same step. */
int daecl_replicas_step(daecl_replicas *p, size_t first, size_t n, uint32_t epoch,
                        uint64_t optim_t, double lr, daecl_slice loss_dst, int stop_local,
                        double *loss, int *stop_all, daecl_err *err);

/* At an epoch boundary: with measured shares and parallel.rebalance, sets
 * the shares from the epoch's throughput. */
int daecl_replicas_epoch_end(daecl_replicas *p, daecl_err *err);

/* Replica 0 holds the model evaluation, pictures and checkpoints read:
 * when it was left out, it takes the parameters and optimiser state of
 * this rank's first replica still training. Call before reading it. */
int daecl_replicas_refresh(daecl_replicas *p, daecl_err *err);

/* Before a checkpoint: replicas on different kinds of backend take global
 * replica 0's parameters and optimiser state (they may round apart); then
 * every replica of every rank is checked against global replica 0 by a
 * checksum, and a difference is an error naming the rank, host and
 * device. params/s1/s2 (n_params each; s1, s2 NULL when unused) are
 * replica 0's host copies, already read; on return they are global
 * replica 0's on every rank. */
int daecl_replicas_sync(daecl_replicas *p, float *params, float *s1, float *s2, daecl_err *err);

/* Sets every local replica but replica 0 (which has them) to these
 * parameters and optimiser state (s1, s2 NULL: zero state): a resumed run. */
int daecl_replicas_load(daecl_replicas *p, const float *params, const float *s1,
                        const float *s2, daecl_err *err);

/* The shares in force, as JSON for the checkpoint ({"ranks": N,
 * "replicas": [{"rank", "plugin", "device", "weight"}]}); the caller
 * frees it. NULL when out of memory. */
char *daecl_replicas_world_json(const daecl_replicas *p);
/* A resumed run's recorded world: when it lists the same replicas as this
 * one, its weights are used (a resume with the same world is then
 * bit-identical); otherwise nothing changes. Returns 1 when taken. */
int daecl_replicas_restore(daecl_replicas *p, const char *world_json);

/* Every replica's counters since the last call, world-wide (a collective:
 * every rank calls it at the same step); out holds daecl_replicas_count
 * entries; the counters restart. */
int daecl_replicas_stats(daecl_replicas *p, daecl_replica_stats *out, daecl_err *err);

/* Says the world in one line of the log. */
void daecl_replicas_describe(const daecl_replicas *p, char *buf, size_t n);

#endif
