/* daecl — an opened compute device with the run's corruption and likelihood
 * bound to it. Where the backend cannot run a plugin itself (bind returns
 * DAECL_ENOTSUP, or the plugin has no device code), the session runs the
 * plugin's host ops around blocking read() and write(): correct on every
 * backend, slower, and said once in the log. */
#ifndef DAECL_CORE_SESSION_H
#define DAECL_CORE_SESSION_H

#include "core/config.h"
#include "daecl/backend.h"

typedef struct daecl_session {
    const daecl_backend_ops *be;
    void *ctx;
    const daecl_plugin *backend;
    daecl_device_info device;
    /* Bound plugins; *_bound NULL means the host fallback runs them. */
    const daecl_plugin *corruption;
    const daecl_plugin_cfg *corruption_cfg;
    void *corruption_bound;
    const daecl_plugin *likelihood;
    const daecl_plugin_cfg *likelihood_cfg;
    void *likelihood_bound;
    int fuse_loss_here; /* the device is one to fuse the loss on (daecl_session_fuses_loss) */
    /* Host staging for the fallback, grown on demand: stage[i] holds
     * stage_floats[i] floats. */
    float *stage[4];
    size_t stage_floats[4];
    /* Device memory this session holds, and the most it ever held (bytes). */
    size_t device_bytes, device_peak;
    struct daecl__sized_buf { daecl_buf *buf; size_t bytes; } *held;
    size_t n_held, cap_held;
} daecl_session;

/* Opens `backend` (NULL: cfg's backend section) and binds cfg's corruption
 * and likelihood. */
int daecl_session_create(const daecl_config *cfg, const daecl_plugin_cfg *backend,
                         daecl_session **out, daecl_err *err);
void daecl_session_destroy(daecl_session *s);
/* Binds cfg's corruption and likelihood instead of the ones bound now (a
 * stack stage's own; core/stack.h). cfg must outlive the binding. */
int daecl_session_rebind(daecl_session *s, const daecl_config *cfg, daecl_err *err);

/* "cpu: AMD EPYC ..." style, for log lines. */
const char *daecl_session_device_name(const daecl_session *s);

/* Plugin ops on device slices, with the host fallback (see above). */
int daecl_session_corrupt(daecl_session *s, daecl_slice x, daecl_slice xt, size_t n_rows,
                          size_t dim, const daecl_shape *shape, const daecl_noise_key *key,
                          daecl_err *err);
int daecl_session_loss_grad(daecl_session *s, daecl_slice x, daecl_slice a, size_t n_rows,
                            size_t dim, float scale, daecl_slice nll_rows, daecl_slice grad,
                            daecl_err *err);
/* Whether the likelihood runs on the device, the backend fuses its loss
 * and gradient with their sums (backend.h: lik_loss_grad_sums) and the
 * device is not a CPU (where the unfused ops are faster); then
 * daecl_session_loss_grad_sums runs that op. */
int daecl_session_fuses_loss(const daecl_session *s);
int daecl_session_loss_grad_sums(daecl_session *s, daecl_slice x, daecl_slice a, size_t n_rows,
                                 size_t sum_rows, size_t dim, float scale, daecl_slice grad,
                                 daecl_slice grad_sums, daecl_slice nll_sums, daecl_err *err);
int daecl_session_mean(daecl_session *s, daecl_slice a, size_t n_rows, size_t dim,
                       daecl_slice mean, daecl_err *err);
/* out (n_rows, dim) ~ p(x | a): the backend's lik_sample where it has one
 * and bound the likelihood, else the plugin's host_sample. */
int daecl_session_sample(daecl_session *s, daecl_slice a, size_t n_rows, size_t dim,
                         const daecl_noise_key *key, daecl_slice out, daecl_err *err);
/* dst[0..n) = value: the backend's fill, else write() from the host. */
int daecl_session_fill(daecl_session *s, daecl_slice dst, size_t n, float value, daecl_err *err);

/* Copies n floats from src to the host array dst, waiting for every op
 * enqueued before it: the one way training, evaluation, the probe and the
 * pictures read the device. */
int daecl_session_read(daecl_session *s, daecl_slice src, float *dst, size_t n_floats,
                       daecl_err *err);

/* 1 when the backend offers the daecl.tune_gemm extension. */
int daecl_session_can_tune(const daecl_session *s);
/* Tunes the GEMMs of `shapes` on the session's device for about budget_s
 * seconds through the backend's daecl.tune_gemm extension (backend.h).
 * DAECL_ENOTSUP, with err untouched, when the backend has none. */
int daecl_session_tune_gemm(daecl_session *s, daecl_gemm_shape *shapes, size_t n, double budget_s,
                            daecl_err *err);

/* Allocates a named buffer of n floats (zero-filled), counted in
 * device_bytes; give it back with daecl_session_free (NULL is fine). */
int daecl_session_alloc(daecl_session *s, size_t n_floats, const char *what, daecl_buf **out,
                        daecl_err *err);
void daecl_session_free(daecl_session *s, daecl_buf *buf);

/* A slice helper. */
static inline daecl_slice daecl_at(daecl_buf *buf, size_t off)
{
    daecl_slice s = {buf, off};
    return s;
}

#endif
