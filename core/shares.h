/* daecl — how one global batch is split over the world's replicas, and
 * which replicas are worth their place. Pure functions of their arguments
 * (no clocks, no devices), so every rank computes the same split and the
 * rules are tested with injected timings (tests/test_shares.c).
 *
 * Weights are whole numbers; a replica of weight 0 takes no rows. Replica
 * j of k takes the rows [first[j], first[j] + count[j]) of a batch of n:
 * first[j] = floor(n * W_j / W), W_j the sum of the weights before j and W
 * of all, so the counts add up to n and a split depends on nothing else.
 * Exact for any n and weights (128-bit products). */
#ifndef DAECL_CORE_SHARES_H
#define DAECL_CORE_SHARES_H

#include <stddef.h>
#include <stdint.h>

/* The weight all shares are expressed in: a replica's weight is its share
 * of the global batch times DAECL_SHARE_ONE (rounded, at least 1 when it
 * takes part). */
#define DAECL_SHARE_ONE 1048576u

/* first and count hold k entries each. When every weight is 0 no replica
 * takes part and every count is 0. */
void daecl_shares_split(size_t n, const uint32_t *weights, size_t k, size_t *first,
                        size_t *count);

/* What the planner knows of replica j: its throughput in rows per second
 * of compute (forward, loss, backward), the seconds one synchronisation
 * costs with it taking part (its gradient's read, the host sum, the
 * write back and its part of the cross-rank reduction), and whether it
 * must take part (the core keeps each rank's fastest replica). */
typedef struct daecl_share_in {
    double rows_per_s;
    double sync_s;
    int required;
} daecl_share_in;

/* The predicted seconds of one step of `batch` rows over the replicas with
 * nonzero weights: the slowest replica's compute (count_j / rows_per_s_j
 * with the split above) plus the sum of their sync_s. INFINITY when every
 * weight is 0, or when rows fall on a replica with no measured throughput. */
double daecl_shares_predict(const daecl_share_in *in, const uint32_t *weights, size_t k,
                            size_t batch);

/* Weights proportional to throughput over the set of replicas that makes
 * daecl_shares_predict smallest; the replicas left out get weight 0. The
 * candidates are the required replicas plus the others added fastest
 * first, so a fast replica beside a slow one is never predicted slower
 * than alone. A replica with no measured throughput (<= 0, not finite)
 * counts as not worth its place unless required (then it gets weight 1).
 * Of sets predicted equally fast the smaller wins. The weights of a plan
 * add up to about DAECL_SHARE_ONE. Returns the predicted step time of the
 * plan: INFINITY (and every weight 0) when no replica is required and none
 * is measured. O(k^2) time, no allocation. */
double daecl_shares_plan(const daecl_share_in *in, size_t k, size_t batch, uint32_t *weights);

/* Weights from configured shares (share[j] > 0; 0 = unset): set ones keep
 * their proportion, unset ones get the mean of the set ones (all equal when
 * none is set). Every weight is at least 1. */
void daecl_shares_from_config(const double *share, size_t k, uint32_t *weights);

#endif
