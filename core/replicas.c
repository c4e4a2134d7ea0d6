/* daecl — replicas of the weights on several devices and ranks, and the
 * host-staged reduction that keeps them one model. */
#include "core/replicas.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/pool.h"
#include "core/progress.h"
#include "core/shares.h"

/* Steps left out of a measurement: the first ones compile kernels
 * (CLBlast, POCL) and fill caches. */
#define WARMUP_STEPS 2

typedef struct replica {
    uint32_t global; /* index in the world's list */
    uint32_t entry;
    daecl_session *s;
    daecl_graph *g;
    daecl_walkback *wb; /* g's walkback buffers, or NULL */
    daecl_feeder *f;
    int owned;  /* 0: replica 0, the run's own */
    int active; /* 0: left out (its weights are stale from then on) */
    daecl_buf *loss; /* 1 float: its rows' loss sum */
    float *host;     /* n_params + 1: its gradient and loss on the host */
    /* this step */
    size_t first, count;
    double t_done, compute_s, read_s, write_s;
    int rc;
    daecl_err err;
    daecl_replica_stats acc;         /* since the last stats call */
    double m_rows, m_compute, m_sync; /* the measurement under way */
} replica;

struct daecl_replicas {
    const daecl_config *cfg;
    daecl_comm *comm;
    const daecl_model *m;
    const daecl_dataset *train;
    uint32_t n_local;
    replica loc[DAECL_MAX_REPLICAS];
    uint32_t n_world, first_global; /* this rank's replicas are [first_global, + n_local) */
    daecl_replica_desc *world;
    uint32_t *weights;  /* n_world */
    size_t *w_first, *w_count;
    int measured;       /* shares come from throughput */
    int heterogeneous;  /* replicas on different devices: resync at checkpoints */
    uint32_t warmup_left, measure_left;
    uint64_t m_steps; /* steps in the measurement under way (the same on every rank) */
    float *sum; /* n_params + 2: gradient, loss, stop requests */
    daecl_pool *pool;
    /* the step under way, for the pool's workers */
    size_t step_first, step_n;
    size_t step_pairs; /* the global batch's training pairs: its rows and their walkback's */
    uint32_t epoch;
    uint64_t optim_t;
    double t0;
};

/* ---- the world ------------------------------------------------------------- */

int daecl_replicas_agree(daecl_comm *comm, int rc, daecl_err *err)
{
    uint32_t rank = comm->info.rank;
    uint64_t failed[2] = {rc != 0, rc != 0 && rank == 0};
    daecl_err why = {0};
    int crc = daecl_comm_allreduce(comm, failed, 2, DAECL_COMM_U64, DAECL_COMM_MAX, &why);
    if (rc && rank != 0 && !crc && failed[1] && rc != DAECL_EPEER) {
        /* rank 0 failed too: most likely alike, and it says so */
        daecl_err_clear(err);
        err->status = rc;
    } else if (rc && comm->info.size > 1) {
        daecl_err_prefix(err, "rank %u of %u on %s: ", rank, comm->info.size, comm->info.host);
    }
    if (crc) {
        if (!rc)
            *err = why;
        return rc ? rc : crc;
    }
    if (!failed[0])
        return 0;
    if (!rc) {
        daecl_err_clear(err);
        err->status = rc = DAECL_EPEER;
    }
    daecl_replicas_say(comm, err);
    return rc;
}

void daecl_replicas_say(daecl_comm *comm, daecl_err *err)
{
    if (comm->info.size < 2)
        return;
    if (err->msg[0]) {
        daecl_err_say(err);
        err->msg[0] = '\0';
        err->file[0] = '\0';
        err->line = err->col = 0;
    }
    /* A barrier's failure changes nothing: the job is ending anyway. */
    daecl_err ignored = {0};
    daecl_comm_barrier(comm, &ignored);
}

int daecl_replicas_shuffle(daecl_replicas *p, uint64_t seed, uint32_t epoch, daecl_err *err)
{
    for (uint32_t j = 1; p && j < p->n_local; j++) {
        int rc = daecl_feeder_shuffle(p->loc[j].f, seed, epoch, err);
        if (rc)
            return rc;
    }
    return 0;
}

uint32_t daecl_replicas_entries(const daecl_config *cfg, const daecl_comm_info *info,
                                uint32_t *entries)
{
    uint32_t n = cfg->parallel.n_devices;
    if (n == 0) {
        entries[0] = 0;
        return 1;
    }
    uint32_t L = info && info->local_size ? info->local_size : 1;
    uint32_t k = info ? info->local_rank % L : 0, count = 0;
    if (n < L) {
        entries[0] = k % n;
        return 1;
    }
    for (uint32_t j = k; j < n && count < DAECL_MAX_REPLICAS; j += L)
        entries[count++] = j;
    return count;
}

const daecl_plugin_cfg *daecl_replicas_backend(const daecl_config *cfg, uint32_t e)
{
    return cfg->parallel.n_devices ? &cfg->parallel.devices[e] : &cfg->backend;
}

int daecl_replicas_parallel(const daecl_replicas *p)
{
    return p && p->n_world > 1;
}

uint32_t daecl_replicas_count(const daecl_replicas *p)
{
    return p->n_world;
}

const daecl_replica_desc *daecl_replicas_desc(const daecl_replicas *p, uint32_t j)
{
    return &p->world[j];
}

double daecl_replicas_share(const daecl_replicas *p, uint32_t j)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < p->n_world; i++)
        total += p->weights[i];
    return total ? (double)p->weights[j] / (double)total : 0.0;
}

/* "parallel.devices.2 (opencl: pthread-...)" or "the backend (cpu: ...)". */
static void entry_name(const daecl_replicas *p, const daecl_replica_desc *d, char *buf, size_t n)
{
    if (p->cfg->parallel.n_devices)
        snprintf(buf, n, "parallel.devices.%u (%s: %s) of rank %u on %s", d->entry, d->plugin,
                 d->device, d->rank, d->host);
    else
        snprintf(buf, n, "the %s device %s of rank %u on %s", d->plugin, d->device, d->rank,
                 d->host);
}

/* Opens local replica `r` on entry e: its session, graph and feeder. */
static int open_replica(daecl_replicas *p, replica *r, daecl_err *err)
{
    const daecl_config *c = p->cfg;
    const daecl_plugin_cfg *be = daecl_replicas_backend(c, r->entry);
    int rc = daecl_session_create(c, be, &r->s, err);
    if (!rc)
        rc = daecl_graph_create(r->s, p->m, p->loc[0].g->batch_max, p->loc[0].g->rows_max,
                                c->optimizer.kind, c->optimizer.momentum, &r->g, err);
    if (!rc)
        rc = daecl_walkback_create(r->g, c, &r->wb, err);
    uint64_t limit = (uint64_t)(c->data.resident_max_mb * 1048576.0);
    if (!rc)
        rc = daecl_feeder_create(r->s, p->train, p->loc[0].g->batch_max, limit, "training set",
                                 &r->f, err);
    if (rc && c->parallel.n_devices)
        daecl_err_prefix(err, "parallel.devices.%u: ", r->entry);
    return rc;
}

/* Sends every rank's replicas to every rank. */
static int learn_world(daecl_replicas *p, daecl_err *err)
{
    const daecl_comm_info *ci = &p->comm->info;
    uint32_t size = ci->size ? ci->size : 1;
    daecl_replica_desc mine[DAECL_MAX_REPLICAS];
    memset(mine, 0, sizeof mine);
    for (uint32_t j = 0; j < p->n_local; j++) {
        daecl_replica_desc *d = &mine[j];
        d->rank = ci->rank;
        d->local = j;
        d->entry = p->loc[j].entry;
        snprintf(d->plugin, sizeof d->plugin, "%s", p->loc[j].s->backend->name);
        snprintf(d->device, sizeof d->device, "%s", daecl_session_device_name(p->loc[j].s));
        snprintf(d->host, sizeof d->host, "%s", ci->host);
        d->platform_index = p->loc[j].s->device.platform_index;
        d->device_index = p->loc[j].s->device.device_index;
    }
    uint32_t *counts = calloc(size, sizeof *counts);
    daecl_replica_desc *all = calloc((size_t)size * DAECL_MAX_REPLICAS, sizeof *all);
    int rc = !counts || !all ? daecl_err_set(err, DAECL_ENOMEM, "out of memory learning the world")
                             : 0;
    if (!rc)
        rc = daecl_comm_allgather(p->comm, &p->n_local, sizeof p->n_local, counts, err);
    if (!rc)
        rc = daecl_comm_allgather(p->comm, mine, sizeof mine, all, err);
    if (rc)
        goto done;
    p->n_world = 0;
    for (uint32_t k = 0; k < size; k++)
        p->n_world += counts[k];
    p->world = calloc(p->n_world, sizeof *p->world);
    p->weights = calloc(p->n_world, sizeof *p->weights);
    p->w_first = calloc(p->n_world, sizeof *p->w_first);
    p->w_count = calloc(p->n_world, sizeof *p->w_count);
    if (!p->world || !p->weights || !p->w_first || !p->w_count) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory learning the world");
        goto done;
    }
    uint32_t g = 0;
    for (uint32_t k = 0; k < size; k++) {
        if (k == ci->rank)
            p->first_global = g;
        for (uint32_t j = 0; j < counts[k]; j++)
            p->world[g++] = all[(size_t)k * DAECL_MAX_REPLICAS + j];
    }
    for (uint32_t j = 0; j < p->n_local; j++)
        p->loc[j].global = p->first_global + j;
done:
    free(counts);
    free(all);
    return rc;
}

/* Two replicas on one device, or more replicas than rows in a batch:
 * refused before step 0, the same on every rank. */
static int check_world(daecl_replicas *p, daecl_err *err)
{
    char a[320], b[320];
    for (uint32_t i = 0; i < p->n_world; i++)
        for (uint32_t j = i + 1; j < p->n_world; j++) {
            const daecl_replica_desc *x = &p->world[i], *y = &p->world[j];
            /* Two entries of one process that opened the same device
             * (`index: -1` and `index: 0` may name one): one device. The
             * cpu backend's replicas are groups of host threads, not
             * devices, so several may share the host. */
            int one_device = x->rank == y->rank && strcmp(x->plugin, y->plugin) == 0 &&
                             strcmp(x->plugin, "cpu") != 0 &&
                             strcmp(x->device, y->device) == 0 &&
                             x->platform_index == y->platform_index &&
                             x->device_index == y->device_index;
            if (one_device) {
                entry_name(p, x, a, sizeof a);
                entry_name(p, y, b, sizeof b);
                return daecl_err_set(err, DAECL_ECONFIG, "%s and %s are the same device; list "
                                     "each device once in parallel.devices", a, b);
            }
        }
    uint32_t b_max = p->loc[0].g->batch_max;
    if (p->n_world > b_max)
        return daecl_err_set(err, DAECL_ECONFIG, "the world has %u replicas (%u rank%s) but a "
                             "global batch has %u rows, so some would have none; set "
                             "train.batch_size to at least %u or use fewer devices or ranks",
                             p->n_world, p->comm->info.size, p->comm->info.size == 1 ? "" : "s",
                             b_max, p->n_world);
    for (uint32_t i = 1; i < p->n_world; i++)
        if (strcmp(p->world[i].plugin, p->world[0].plugin) != 0 ||
            strcmp(p->world[i].device, p->world[0].device) != 0)
            p->heterogeneous = 1;
    return 0;
}

/* Weights from the config's shares; measured when none is set. */
static void initial_weights(daecl_replicas *p)
{
    const daecl_config *c = p->cfg;
    int any = 0;
    for (uint32_t j = 0; j < p->n_world; j++)
        any |= c->parallel.n_devices && c->parallel.share[p->world[j].entry] > 0;
    /* Configured: each replica's weight from its entry's share. */
    double *share = calloc(p->n_world, sizeof *share);
    for (uint32_t j = 0; share && j < p->n_world; j++)
        share[j] = c->parallel.n_devices ? c->parallel.share[p->world[j].entry] : 0.0;
    if (share)
        daecl_shares_from_config(share, p->n_world, p->weights);
    else /* out of memory: equal shares are as good a start as any */
        for (uint32_t j = 0; j < p->n_world; j++)
            p->weights[j] = 1;
    free(share);
    p->measured = !any && p->n_world > 1;
    p->warmup_left = WARMUP_STEPS;
    p->measure_left = c->parallel.measure_steps ? c->parallel.measure_steps : 1;
}

int daecl_replicas_create(const daecl_config *cfg, daecl_comm *comm, const daecl_model *m,
                          const daecl_dataset *train, daecl_session *s0, daecl_graph *g0,
                          daecl_walkback *wb0, daecl_feeder *f0, const uint32_t *entries,
                          uint32_t n_entries, daecl_replicas **out, daecl_err *err)
{
    *out = NULL;
    daecl_replicas *p = calloc(1, sizeof *p);
    if (!p)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory for the replicas");
    p->cfg = cfg;
    p->comm = comm;
    p->m = m;
    p->train = train;
    p->n_local = n_entries ? n_entries : 1;
    p->loc[0] = (replica){.entry = entries ? entries[0] : 0, .s = s0, .g = g0, .wb = wb0,
                          .f = f0, .active = 1};
    int rc = 0;
    for (uint32_t j = 1; j < p->n_local && !rc; j++) {
        p->loc[j] = (replica){.entry = entries[j], .owned = 1, .active = 1};
        rc = open_replica(p, &p->loc[j], err);
    }
    /* Every rank learns whether all opened before the first collective
     * that needs them. */
    rc = daecl_replicas_agree(comm, rc, err);
    if (!rc)
        rc = learn_world(p, err);
    if (!rc)
        rc = check_world(p, err);
    if (rc)
        goto fail;
    initial_weights(p);
    if (p->n_world > 1) {
        size_t np = m->n_params;
        p->sum = malloc((np + 2) * sizeof *p->sum);
        if (!p->sum)
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for the gradient reduction");
        for (uint32_t j = 0; j < p->n_local && !rc; j++) {
            replica *r = &p->loc[j];
            if (!(r->host = malloc((np + 1) * sizeof *r->host)))
                rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for the gradient reduction");
            if (!rc)
                rc = daecl_session_alloc(r->s, 1, "replica loss", &r->loss, err);
        }
        if (!rc && p->n_local > 1) {
            int prc = daecl_pool_create(p->n_local, &p->pool);
            if (prc)
                rc = daecl_err_set(err, DAECL_ENOMEM, "could not start %u threads for the "
                                   "replicas (%s)", p->n_local, strerror(prc));
        }
        /* Every replica starts from replica 0's parameters. */
        if (!rc && p->n_local > 1) {
            float *w = malloc(np * sizeof *w);
            if (!w)
                rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory copying the parameters");
            if (!rc)
                rc = daecl_graph_get_params(g0, w, err);
            for (uint32_t j = 1; j < p->n_local && !rc; j++)
                rc = daecl_graph_set_params(p->loc[j].g, w, err);
            free(w);
        }
    }
    if (rc)
        goto fail;
    *out = p;
    return 0;
fail:
    daecl_replicas_destroy(p);
    return rc;
}

void daecl_replicas_destroy(daecl_replicas *p)
{
    if (!p)
        return;
    daecl_pool_destroy(p->pool);
    for (uint32_t j = 0; j < p->n_local; j++) {
        replica *r = &p->loc[j];
        if (r->s && r->loss)
            daecl_session_free(r->s, r->loss);
        free(r->host);
        if (!r->owned)
            continue;
        daecl_feeder_destroy(r->f);
        daecl_walkback_destroy(r->wb);
        daecl_graph_destroy(r->g);
        daecl_session_destroy(r->s);
    }
    free(p->world);
    free(p->weights);
    free(p->w_first);
    free(p->w_count);
    free(p->sum);
    free(p);
}

/* ---- a step ---------------------------------------------------------------------- */

/* First half, on replica j's thread: its rows forward and backward, its
 * gradient and loss to the host. */
static void compute(void *arg, size_t j)
{
    daecl_replicas *p = arg;
    replica *r = &p->loc[j];
    const daecl_config *c = p->cfg;
    size_t np = p->m->n_params;
    daecl_err *err = &r->err;
    r->rc = 0;
    r->compute_s = r->read_s = 0;
    if (!r->active || r->count == 0) {
        memset(r->host, 0, (np + 1) * sizeof *r->host);
        r->t_done = daecl_now();
        return;
    }
    daecl_pairs pr;
    int rc;
    /* The loss is the mean over the global batch's pairs: each replica's
     * gradient is its pairs' sum over that count. */
    if ((rc = daecl_pairs_loss(r->g, r->wb, r->f, p->train, c, 0, p->epoch,
                               p->step_first + r->first, r->count, daecl_at(r->loss, 0), p->step_pairs, &pr, err)) ||
        (rc = daecl_graph_backward(r->g, pr.in, pr.n_pairs, err)) ||
        (rc = r->s->be->finish(r->s->ctx, err))) {
        r->rc = rc;
        return;
    }
    double t1 = daecl_now();
    r->compute_s = t1 - p->t0;
    if ((rc = daecl_session_read(r->s, daecl_at(r->g->grads, 0), r->host, np, err)) ||
        (rc = daecl_session_read(r->s, daecl_at(r->loss, 0), r->host + np, 1, err))) {
        r->rc = rc;
        return;
    }
    r->t_done = daecl_now();
    r->read_s = r->t_done - t1;
}

/* Second half: the summed gradient back, and the update. */
static void apply(void *arg, size_t j)
{
    daecl_replicas *p = arg;
    replica *r = &p->loc[j];
    size_t np = p->m->n_params;
    r->rc = 0;
    r->write_s = 0;
    if (!r->active)
        return;
    double t = daecl_now();
    int rc = r->s->be->write(r->s->ctx, r->g->grads, 0, p->sum, np * sizeof(float), &r->err);
    r->write_s = daecl_now() - t;
    if (!rc)
        rc = daecl_graph_update(r->g, p->cfg, p->optim_t, &r->err);
    r->rc = rc;
}

/* The host sum of the local replicas' gradients and losses, cut into
 * chunks the replicas' threads share; each element is summed in replica
 * order whatever thread takes its chunk, so the bits do not depend on it. */
#define SUM_CHUNKS 64

static void sum_chunk(void *arg, size_t c)
{
    daecl_replicas *p = arg;
    size_t n = p->m->n_params + 1, lo = n * c / SUM_CHUNKS, hi = n * (c + 1) / SUM_CHUNKS;
    memcpy(p->sum + lo, p->loc[0].host + lo, (hi - lo) * sizeof *p->sum);
    for (uint32_t j = 1; j < p->n_local; j++) {
        const float *h = p->loc[j].host;
        for (size_t i = lo; i < hi; i++)
            p->sum[i] += h[i];
    }
}

/* The first local failure of a phase, in err. */
static int phase_failed(daecl_replicas *p, daecl_err *err)
{
    for (uint32_t j = 0; j < p->n_local; j++)
        if (p->loc[j].rc) {
            *err = p->loc[j].err;
            return p->loc[j].rc;
        }
    return 0;
}

static void remeasure(daecl_replicas *p)
{
    for (uint32_t j = 0; j < p->n_local; j++)
        p->loc[j].m_rows = p->loc[j].m_compute = p->loc[j].m_sync = 0;
    p->m_steps = 0;
}

/* Fault injection for tests (docs/testing.md): DAECL_INJECT_RATES, a
 * comma-separated list of rows per second, replaces the measured
 * throughput of the world's replicas in order, so the rule that leaves a
 * slow device out runs on timings this machine cannot produce. */
static void inject_rates(daecl_share_in *in, uint32_t n, int say)
{
    const char *s = getenv("DAECL_INJECT_RATES");
    if (s && *s && say)
        daecl_log(DAECL_LOG_WARN, NULL, "DAECL_INJECT_RATES=%.60s replaces the replicas' "
                  "measured throughput (a test hook); unset it for real work", s);
    for (uint32_t g = 0; s && *s && g < n; g++) {
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            break;
        if (in[g].rows_per_s > 0) /* a replica that measured nothing stays unmeasured */
            in[g].rows_per_s = v;
        s = *end == ',' ? end + 1 : end;
    }
}

/* Shares from what the replicas measured (a collective). Says, on rank 0,
 * which replicas are left out and why. */
static int plan(daecl_replicas *p, daecl_err *err)
{
    uint32_t size = p->comm->info.size ? p->comm->info.size : 1;
    double mine[DAECL_MAX_REPLICAS][2];
    memset(mine, 0, sizeof mine);
    for (uint32_t j = 0; j < p->n_local; j++) {
        const replica *r = &p->loc[j];
        mine[j][0] = r->active && r->m_compute > 0 ? r->m_rows / r->m_compute : 0.0;
        mine[j][1] = r->m_rows > 0 ? r->m_sync : 0.0;
    }
    double(*all)[2] = calloc((size_t)size * DAECL_MAX_REPLICAS, sizeof *all);
    daecl_share_in *in = calloc(p->n_world, sizeof *in);
    uint32_t *w = calloc(p->n_world, sizeof *w);
    int rc = !all || !in || !w ? daecl_err_set(err, DAECL_ENOMEM, "out of memory planning shares")
                               : daecl_comm_allgather(p->comm, mine, sizeof mine, all, err);
    if (rc)
        goto done;
    double steps = p->m_steps ? (double)p->m_steps : 1.0;
    for (uint32_t g = 0; g < p->n_world; g++) {
        const double *v = all[(size_t)p->world[g].rank * DAECL_MAX_REPLICAS + p->world[g].local];
        in[g].rows_per_s = v[0];
        in[g].sync_s = v[1] / steps;
        in[g].required = !p->cfg->parallel.drop_slow && p->weights[g] != 0;
    }
    inject_rates(in, p->n_world, p->comm->info.rank == 0);
    /* Each rank keeps its fastest replica: a rank without one would hold
     * stale weights. */
    for (uint32_t g = 0; g < p->n_world;) {
        uint32_t end = g, best = g;
        while (end < p->n_world && p->world[end].rank == p->world[g].rank) {
            if (in[end].rows_per_s > in[best].rows_per_s)
                best = end;
            end++;
        }
        in[best].required = 1;
        g = end;
    }
    double predicted = daecl_shares_plan(in, p->n_world, p->loc[0].g->batch_max, w);
    for (uint32_t g = 0; g < p->n_world; g++) {
        if (w[g] || !p->weights[g])
            continue;
        if (p->comm->info.rank == 0) {
            char name[320];
            entry_name(p, &p->world[g], name, sizeof name);
            daecl_log(DAECL_LOG_WARN, NULL, "%s is left out: at %.0f rows/s its share would "
                      "not repay its %.2f ms of synchronisation per step (the others take "
                      "the batch in a predicted %.2f ms a step); list fewer devices or set "
                      "parallel.drop_slow: false to keep it",
                      name, in[g].rows_per_s, 1e3 * in[g].sync_s, 1e3 * predicted);
        }
        if (g >= p->first_global && g < p->first_global + p->n_local)
            p->loc[g - p->first_global].active = 0;
    }
    memcpy(p->weights, w, p->n_world * sizeof *w);
    for (uint32_t g = 0; g < p->n_world; g++)
        if (!p->weights[g] && g >= p->first_global && g < p->first_global + p->n_local)
            p->loc[g - p->first_global].active = 0;
done:
    free(all);
    free(in);
    free(w);
    return rc;
}

/* One process whose other replicas were all left out: the one left trains
 * alone as a single device does (the fused update where it applies), with
 * no host staging, so a fast device beside slow ones is not slowed by
 * them. Its loss reaches replica 0's slot (read across when the one left
 * is another replica); the trainer checks it as for one device. */
static int lone_step(daecl_replicas *p, replica *r, daecl_slice loss_dst, double *loss,
                     daecl_err *err)
{
    const daecl_config *c = p->cfg;
    size_t n = p->step_n;
    daecl_pairs pr;
    int own = r == &p->loc[0];
    int rc;
    if ((rc = daecl_pairs_loss(r->g, r->wb, r->f, p->train, c, 0, p->epoch, p->step_first, n,
                               own ? loss_dst : daecl_at(r->loss, 0), 0, &pr, err)) ||
        (rc = daecl_graph_backward_update(r->g, pr.in, pr.n_pairs, c, p->optim_t, err)))
        return rc;
    *loss = 0.0;
    r->acc.rows += (double)n; /* untimed: a lone replica is not waited for */
    if (own)
        return 0;
    float l;
    daecl_session *s0 = p->loc[0].s;
    if ((rc = daecl_session_read(r->s, daecl_at(r->loss, 0), &l, 1, err)) ||
        (rc = s0->be->write(s0->ctx, loss_dst.buf, loss_dst.off * sizeof(float), &l,
                            sizeof l, err)))
        return rc;
    *loss = l;
    return 0;
}

int daecl_replicas_step(daecl_replicas *p, size_t first, size_t n, uint32_t epoch,
                        uint64_t optim_t, double lr, daecl_slice loss_dst, int stop_local,
                        double *loss, int *stop_all, daecl_err *err)
{
    size_t np = p->m->n_params;
    for (uint32_t j = 0; j < p->n_local; j++)
        if (p->loc[j].g)
            daecl_graph_set_lr(p->loc[j].g, lr);
    if (p->comm->info.size <= 1) {
        replica *lone = NULL;
        uint32_t active = 0;
        for (uint32_t j = 0; j < p->n_local; j++)
            if (p->loc[j].active && active++ == 0)
                lone = &p->loc[j];
        if (active == 1) {
            p->step_first = first;
            p->step_n = n;
            p->epoch = epoch;
            p->optim_t = optim_t;
            *stop_all = stop_local;
            return lone_step(p, lone, loss_dst, loss, err);
        }
    }
    p->step_first = first;
    p->step_n = n;
    p->step_pairs = n + (p->loc[0].wb ? daecl_walkback_count(p->cfg, epoch, first, n, NULL) : 0);
    p->epoch = epoch;
    p->optim_t = optim_t;
    daecl_shares_split(n, p->weights, p->n_world, p->w_first, p->w_count);
    for (uint32_t j = 0; j < p->n_local; j++) {
        p->loc[j].first = p->w_first[p->first_global + j];
        p->loc[j].count = p->w_count[p->first_global + j];
    }
    p->t0 = daecl_now();
    daecl_pool_run(p->pool, p->n_local, compute, p);
    int rc = phase_failed(p, err);
    /* A failure here ends every rank: the others would wait in the
     * allreduce (the caller aborts the world). */
    if (rc)
        return rc;
    double t_sum = daecl_now();
    daecl_pool_run(p->pool, SUM_CHUNKS, sum_chunk, p);
    p->sum[np + 1] = stop_local ? 1.0f : 0.0f;
    if ((rc = daecl_comm_allreduce(p->comm, p->sum, np + 2, DAECL_COMM_F32, DAECL_COMM_SUM, err)))
        return rc;
    double t_reduced = daecl_now();
    daecl_pool_run(p->pool, p->n_local, apply, p);
    if ((rc = phase_failed(p, err)))
        return rc;
    daecl_session *s0 = p->loc[0].s;
    if ((rc = s0->be->write(s0->ctx, loss_dst.buf, loss_dst.off * sizeof(float), &p->sum[np],
                            sizeof(float), err)))
        return rc;
    *loss = p->sum[np];
    *stop_all = p->sum[np + 1] > 0.0f;
    /* Counters, and the measurement of shares. */
    double reduce_s = t_reduced - t_sum;
    int measuring = p->measured && p->measure_left && !p->warmup_left;
    for (uint32_t j = 0; j < p->n_local; j++) {
        replica *r = &p->loc[j];
        if (!r->active)
            continue;
        double sync = r->read_s + r->write_s + reduce_s / p->n_local;
        r->acc.rows += (double)r->count;
        r->acc.busy_s += r->compute_s + r->read_s;
        r->acc.wait_s += r->count ? t_sum - r->t_done : 0.0;
        r->acc.sync_s += sync;
        if (p->warmup_left)
            continue;
        r->m_rows += (double)r->count;
        r->m_compute += r->compute_s;
        r->m_sync += sync;
    }
    if (p->warmup_left) {
        p->warmup_left--;
        return 0;
    }
    p->m_steps++;
    if (measuring && --p->measure_left == 0) {
        if ((rc = plan(p, err)))
            return rc;
        remeasure(p);
    }
    return 0;
}

int daecl_replicas_epoch_end(daecl_replicas *p, daecl_err *err)
{
    /* Too few steps timed since the last plan (an epoch that just began
     * measuring): the shares stay. */
    uint32_t enough = p->cfg->parallel.measure_steps ? p->cfg->parallel.measure_steps : 1;
    if (!p->measured || !p->cfg->parallel.rebalance || p->measure_left || p->m_steps < enough)
        return 0;
    int rc = plan(p, err);
    remeasure(p);
    return rc;
}

/* ---- checkpoints ------------------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int write_all(replica *r, const float *params, const float *s1, const float *s2,
                     daecl_err *err)
{
    int rc = daecl_graph_set_params(r->g, params, err);
    return rc ? rc : daecl_graph_set_state(r->g, s1, s2, err);
}

int daecl_replicas_refresh(daecl_replicas *p, daecl_err *err)
{
    if (!p || p->loc[0].active)
        return 0;
    uint32_t j = 1;
    while (j < p->n_local && !p->loc[j].active)
        j++;
    if (j == p->n_local)
        return 0; /* cannot happen: each rank keeps its fastest replica */
    size_t np = p->m->n_params;
    float *w = malloc(3 * np * sizeof *w);
    if (!w)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory copying the parameters");
    daecl_graph *from = p->loc[j].g;
    float *s1 = from->state1 ? w + np : NULL, *s2 = from->state2 ? w + 2 * np : NULL;
    int rc = daecl_graph_get_params(from, w, err);
    if (!rc)
        rc = daecl_graph_get_state(from, s1, s2, err);
    if (!rc)
        rc = write_all(&p->loc[0], w, s1, s2, err);
    free(w);
    return rc;
}

int daecl_replicas_load(daecl_replicas *p, const float *params, const float *s1,
                        const float *s2, daecl_err *err)
{
    size_t np = p->m->n_params;
    float *zero = (!s1 || !s2) ? calloc(np ? np : 1, sizeof *zero) : NULL;
    if ((!s1 || !s2) && !zero)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory loading the replicas");
    int rc = 0;
    for (uint32_t j = 1; j < p->n_local && !rc; j++)
        rc = write_all(&p->loc[j], params, s1 ? s1 : zero, s2 ? s2 : zero, err);
    free(zero);
    return rc;
}

int daecl_replicas_sync(daecl_replicas *p, float *params, float *s1, float *s2, daecl_err *err)
{
    if (p->n_world < 2)
        return 0;
    size_t np = p->m->n_params, bytes = np * sizeof(float);
    int rc = 0;
    if (p->heterogeneous) {
        if ((rc = daecl_comm_broadcast(p->comm, params, bytes, 0, err)) ||
            (s1 && (rc = daecl_comm_broadcast(p->comm, s1, bytes, 0, err))) ||
            (s2 && (rc = daecl_comm_broadcast(p->comm, s2, bytes, 0, err))))
            return rc;
        for (uint32_t j = p->comm->info.rank == 0; j < p->n_local && !rc; j++)
            if (p->loc[j].active)
                rc = write_all(&p->loc[j], params, s1, s2, err);
        if (rc)
            return rc;
    }
    /* Every active local replica against replica 0, then every rank
     * against rank 0. */
    uint64_t mine[2] = {fnv1a(1469598103934665603ull, params, bytes), UINT64_MAX};
    if (s1)
        mine[0] = fnv1a(mine[0], s1, bytes);
    if (s2)
        mine[0] = fnv1a(mine[0], s2, bytes);
    float *w = malloc(3 * bytes);
    if (!w)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory checking the replicas");
    for (uint32_t j = 1; j < p->n_local && !rc; j++) {
        replica *r = &p->loc[j];
        if (!r->active)
            continue;
        if ((rc = daecl_graph_get_params(r->g, w, err)) ||
            (rc = daecl_graph_get_state(r->g, s1 ? w + np : NULL, s2 ? w + 2 * np : NULL, err)))
            break;
        if (memcmp(w, params, bytes) || (s1 && memcmp(w + np, s1, bytes)) ||
            (s2 && memcmp(w + 2 * np, s2, bytes)))
            if (mine[1] == UINT64_MAX)
                mine[1] = j;
    }
    free(w);
    if (rc)
        return rc;
    uint32_t size = p->comm->info.size ? p->comm->info.size : 1;
    uint64_t *all = calloc((size_t)size * 2, sizeof *all);
    if (!all)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory checking the replicas");
    if ((rc = daecl_comm_allgather(p->comm, mine, sizeof mine, all, err))) {
        free(all);
        return rc;
    }
    char name[320];
    for (uint32_t k = 0; k < size && !rc; k++) {
        uint64_t sum = all[2 * k], bad = all[2 * k + 1];
        if (sum == all[0] && bad == UINT64_MAX)
            continue;
        uint32_t g = 0;
        while (g < p->n_world && p->world[g].rank != k)
            g++;
        if (bad != UINT64_MAX)
            g += (uint32_t)bad;
        entry_name(p, &p->world[g < p->n_world ? g : 0], name, sizeof name);
        rc = daecl_err_set(err, DAECL_EDEVICE, "the weights of %s differ from those of rank "
                           "0's first replica at this checkpoint (checksum %016" PRIx64 " against "
                           "%016" PRIx64 "); the job stops so that no checkpoint mixes them, and "
                           "the last checkpoint is kept", name, sum, all[0]);
    }
    /* Every rank knows; rank 0 says it. */
    if (rc && p->comm->info.rank != 0) {
        daecl_err_clear(err);
        err->status = rc = DAECL_EPEER;
    }
    free(all);
    return rc;
}

/* ---- the world in JSON ------------------------------------------------------------ */

char *daecl_replicas_world_json(const daecl_replicas *p)
{
    cJSON *o = cJSON_CreateObject(), *list = cJSON_CreateArray();
    if (!o || !list) {
        cJSON_Delete(o);
        cJSON_Delete(list);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "ranks", p->comm->info.size ? p->comm->info.size : 1);
    cJSON_AddItemToObject(o, "replicas", list);
    for (uint32_t g = 0; g < p->n_world; g++) {
        const daecl_replica_desc *d = &p->world[g];
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddNumberToObject(e, "rank", d->rank);
        cJSON_AddStringToObject(e, "host", d->host);
        cJSON_AddNumberToObject(e, "entry", d->entry);
        cJSON_AddStringToObject(e, "plugin", d->plugin);
        cJSON_AddStringToObject(e, "device", d->device);
        cJSON_AddNumberToObject(e, "weight", p->weights[g]);
        cJSON_AddNumberToObject(e, "share", daecl_replicas_share(p, g));
        cJSON_AddItemToArray(list, e);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int daecl_replicas_restore(daecl_replicas *p, const char *world_json)
{
    cJSON *o = world_json ? cJSON_Parse(world_json) : NULL;
    const cJSON *list = o ? cJSON_GetObjectItemCaseSensitive(o, "replicas") : NULL;
    int same = cJSON_IsArray(list) && (uint32_t)cJSON_GetArraySize(list) == p->n_world;
    uint32_t *w = same ? calloc(p->n_world, sizeof *w) : NULL;
    same = same && w;
    for (uint32_t g = 0; same && g < p->n_world; g++) {
        const cJSON *e = cJSON_GetArrayItem(list, (int)g);
        const cJSON *rank = cJSON_GetObjectItemCaseSensitive(e, "rank");
        const cJSON *plugin = cJSON_GetObjectItemCaseSensitive(e, "plugin");
        const cJSON *device = cJSON_GetObjectItemCaseSensitive(e, "device");
        const cJSON *weight = cJSON_GetObjectItemCaseSensitive(e, "weight");
        same = cJSON_IsNumber(rank) && rank->valuedouble == p->world[g].rank &&
               cJSON_IsString(plugin) && strcmp(plugin->valuestring, p->world[g].plugin) == 0 &&
               cJSON_IsString(device) && strcmp(device->valuestring, p->world[g].device) == 0 &&
               cJSON_IsNumber(weight) && weight->valuedouble >= 0 &&
               weight->valuedouble <= UINT32_MAX;
        if (same)
            w[g] = (uint32_t)weight->valuedouble;
    }
    uint64_t total = 0;
    for (uint32_t g = 0; same && g < p->n_world; g++)
        total += w[g];
    if (same && total) {
        memcpy(p->weights, w, p->n_world * sizeof *w);
        for (uint32_t j = 0; j < p->n_local; j++)
            p->loc[j].active = p->weights[p->first_global + j] != 0;
        /* Measured already: the run goes on with these until the next
         * epoch boundary re-balances. */
        p->measure_left = 0;
        p->warmup_left = WARMUP_STEPS;
    }
    free(w);
    cJSON_Delete(o);
    return same && total;
}

int daecl_replicas_stats(daecl_replicas *p, daecl_replica_stats *out, daecl_err *err)
{
    uint32_t size = p->comm->info.size ? p->comm->info.size : 1;
    daecl_replica_stats mine[DAECL_MAX_REPLICAS];
    memset(mine, 0, sizeof mine);
    for (uint32_t j = 0; j < p->n_local; j++) {
        mine[j] = p->loc[j].acc;
        memset(&p->loc[j].acc, 0, sizeof p->loc[j].acc);
    }
    daecl_replica_stats *all = calloc((size_t)size * DAECL_MAX_REPLICAS, sizeof *all);
    if (!all)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory gathering replica counters");
    int rc = daecl_comm_allgather(p->comm, mine, sizeof mine, all, err);
    for (uint32_t g = 0; !rc && g < p->n_world; g++)
        out[g] = all[(size_t)p->world[g].rank * DAECL_MAX_REPLICAS + p->world[g].local];
    free(all);
    return rc;
}

void daecl_replicas_describe(const daecl_replicas *p, char *buf, size_t n)
{
    size_t used = 0;
    uint32_t size = p->comm->info.size ? p->comm->info.size : 1;
    used += (size_t)snprintf(buf + used, n - used, "%u replica%s on %u rank%s", p->n_world,
                             p->n_world == 1 ? "" : "s", size, size == 1 ? "" : "s");
    for (uint32_t g = 0; g < p->n_world && used < n; g++)
        used += (size_t)snprintf(buf + used, n - used, "%s rank %u %s: %s", g ? ";" : ":",
                                 p->world[g].rank, p->world[g].plugin, p->world[g].device);
    if (used < n && p->measured)
        snprintf(buf + used, n - used, "; shares measured over %u steps%s",
                 p->cfg->parallel.measure_steps,
                 p->cfg->parallel.rebalance ? " and re-balanced each epoch" : "");
}
