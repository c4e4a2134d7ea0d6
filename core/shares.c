/* daecl — the shares planner (shares.h): the integer split of a global
 * batch over replicas by weight, the predicted time of a step, the choice
 * of replicas worth their synchronisation, and weights from configured
 * shares. No clocks, devices or allocation: every rank computes the same. */
#include "core/shares.h"

#include <math.h>

/* floor(n * part / whole), exact: n * part needs up to 64 + 64 bits
 * (part and whole are sums of k 32-bit weights). */
static size_t scale(size_t n, uint64_t part, uint64_t whole)
{
    return (size_t)(((unsigned __int128)n * part) / whole);
}

void daecl_shares_split(size_t n, const uint32_t *weights, size_t k, size_t *first,
                        size_t *count)
{
    uint64_t whole = 0, before = 0;
    for (size_t j = 0; j < k; j++)
        whole += weights[j];
    size_t at = 0;
    for (size_t j = 0; j < k; j++) {
        /* all weights 0: no replica takes part, and no rows are handed out */
        size_t next = whole ? scale(n, before + weights[j], whole) : 0;
        first[j] = at;
        count[j] = next - at;
        before += weights[j];
        at = next;
    }
}

static int measured(const daecl_share_in *in)
{
    return isfinite(in->rows_per_s) && in->rows_per_s > 0;
}

double daecl_shares_predict(const daecl_share_in *in, const uint32_t *weights, size_t k,
                            size_t batch)
{
    uint64_t whole = 0, before = 0;
    for (size_t j = 0; j < k; j++)
        whole += weights[j];
    if (whole == 0)
        return INFINITY; /* no replica takes part: the batch is never done */
    double slowest = 0, sync = 0;
    size_t at = 0;
    for (size_t j = 0; j < k; j++) {
        size_t next = scale(batch, before + weights[j], whole);
        size_t rows = next - at;
        before += weights[j];
        at = next;
        if (weights[j] == 0)
            continue;
        sync += in[j].sync_s;
        /* rows on a replica of unknown throughput take unknown time */
        double t = rows == 0 ? 0 : measured(&in[j]) ? (double)rows / in[j].rows_per_s : INFINITY;
        if (t > slowest)
            slowest = t;
    }
    return slowest + sync;
}

/* Weights proportional to throughput over the members (weights[j] != 0 on
 * entry): measured members get their share of DAECL_SHARE_ONE (at least 1),
 * unmeasured ones 1. */
static void proportional(const daecl_share_in *in, size_t k, uint32_t *weights)
{
    double total = 0;
    for (size_t j = 0; j < k; j++)
        if (weights[j] && measured(&in[j]))
            total += in[j].rows_per_s;
    for (size_t j = 0; j < k; j++) {
        if (!weights[j])
            continue;
        double w = measured(&in[j]) && total > 0
                       ? round(in[j].rows_per_s / total * DAECL_SHARE_ONE)
                       : 1;
        weights[j] = w < 1 ? 1 : w > DAECL_SHARE_ONE ? DAECL_SHARE_ONE : (uint32_t)w;
    }
}

/* The fastest measured replica that is neither required nor a member yet
 * (ties: the lower index), or k when none is left. O(k). */
static size_t next_fastest(const daecl_share_in *in, size_t k, const uint32_t *weights)
{
    size_t best = k;
    for (size_t j = 0; j < k; j++)
        if (!weights[j] && !in[j].required && measured(&in[j]) &&
            (best == k || in[j].rows_per_s > in[best].rows_per_s))
            best = j;
    return best;
}

/* The required replicas plus the m fastest others, with their weights. */
static void candidate(const daecl_share_in *in, size_t k, size_t m, uint32_t *weights)
{
    for (size_t j = 0; j < k; j++)
        weights[j] = in[j].required ? 1 : 0;
    for (size_t i = 0; i < m; i++) {
        size_t j = next_fastest(in, k, weights);
        if (j == k)
            break;
        weights[j] = 1;
    }
    proportional(in, k, weights);
}

/* The candidates grow by one replica at a time: O(k) to add one and to
 * predict, O(k^2) in all. */
double daecl_shares_plan(const daecl_share_in *in, size_t k, size_t batch, uint32_t *weights)
{
    size_t n_required = 0, best_m = 0;
    for (size_t j = 0; j < k; j++)
        n_required += in[j].required != 0;
    double best = INFINITY;
    int have = 0;
    candidate(in, k, 0, weights);
    for (size_t m = 0;; m++) {
        if (m > 0 || n_required) {
            double t = daecl_shares_predict(in, weights, k, batch);
            /* strictly faster only: a tie keeps the smaller set */
            if (!have || t < best) {
                best = t;
                best_m = m;
                have = 1;
            }
        }
        size_t j = next_fastest(in, k, weights);
        if (j == k)
            break;
        weights[j] = 1; /* members keep a nonzero weight through proportional() */
        proportional(in, k, weights);
    }
    candidate(in, k, best_m, weights);
    return have ? best : INFINITY;
}

void daecl_shares_from_config(const double *share, size_t k, uint32_t *weights)
{
    double set = 0, total;
    size_t n_set = 0;
    for (size_t j = 0; j < k; j++)
        if (isfinite(share[j]) && share[j] > 0) {
            set += share[j];
            n_set++;
        }
    if (n_set == 0) {
        for (size_t j = 0; j < k; j++)
            weights[j] = DAECL_SHARE_ONE / (uint32_t)(k < DAECL_SHARE_ONE ? k : DAECL_SHARE_ONE);
        return;
    }
    double mean = set / (double)n_set;
    total = set + mean * (double)(k - n_set);
    for (size_t j = 0; j < k; j++) {
        double s = isfinite(share[j]) && share[j] > 0 ? share[j] : mean;
        double w = round(s / total * DAECL_SHARE_ONE);
        weights[j] = w < 1 ? 1 : (uint32_t)w;
    }
}
