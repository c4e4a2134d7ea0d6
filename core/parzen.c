/* daecl — the Gaussian Parzen-window estimate (core/parzen.h): squared
 * distances from float32 GEMMs on the session's backend, block by block, and
 * a streaming log-sum-exp over the samples in double on the host. */
#include "core/parzen.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static int check_sigma(double sigma, size_t k, daecl_err *err)
{
    if (!(sigma > 0) || !isfinite(sigma))
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: window width %zu is %g; each sigma must be finite and > 0",
                             k, sigma);
    return 0;
}

/* dst (rows, dim) = src - mean, rounded to float; norm[r] = |dst_r|^2 in
 * double over the rounded values, the ones the GEMM will see. */
static void centre(const float *src, size_t rows, size_t dim, const double *mean, float *dst,
                   double *norm)
{
    for (size_t r = 0; r < rows; r++) {
        double acc = 0;
        for (size_t c = 0; c < dim; c++) {
            float v = (float)((double)src[r * dim + c] - mean[c]);
            dst[r * dim + c] = v;
            acc += (double)v * v;
        }
        if (norm)
            norm[r] = acc;
    }
}

/* A NaN or infinity would turn every sum it enters into NaN: refused. */
static int check_finite(const float *x, size_t rows, size_t dim, const char *what,
                        daecl_err *err)
{
    for (size_t i = 0; i < rows * dim; i++)
        if (!isfinite(x[i]))
            return daecl_err_set(err, DAECL_EINVAL,
                                 "parzen: %s row %zu, value %zu is %g; every value must be "
                                 "finite",
                                 what, i / dim, i % dim, (double)x[i]);
    return 0;
}

/* The one blocked pass behind both public functions: ll (n_points,
 * n_sigmas) as daecl_parzen_log_density says, when n_sigmas > 0, and
 * nn_d2[j] = min_i |points_j - samples_i|^2, when nn_d2 is not NULL. */
static int blocked(daecl_session *s, const float *samples, size_t n, const float *points,
                   size_t n_points, size_t dim, const double *sigmas, size_t n_sigmas,
                   size_t chunk_rows, double *ll, double *nn_d2, daecl_err *err)
{
    if (n == 0 || n_points == 0 || dim == 0)
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: %zu samples, %zu points, dim %zu; each must be at least 1",
                             n, n_points, dim);
    int rc = 0;
    for (size_t k = 0; k < n_sigmas; k++)
        if ((rc = check_sigma(sigmas[k], k, err)))
            return rc;
    if ((rc = check_finite(samples, n, dim, "sample", err)) ||
        (rc = check_finite(points, n_points, dim, "point", err)))
        return rc;
    size_t chunk = chunk_rows ? chunk_rows : DAECL_PARZEN_CHUNK_DEFAULT;
    size_t cs = min_size(chunk, n), cp = min_size(chunk, n_points);
    size_t most = SIZE_MAX / sizeof(double);
    if (dim > most / (cs + cp) || cs > most / cp || n_sigmas > most / cp)
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: blocks of %zu rows of %zu values do not fit in memory; "
                             "lower chunk_rows",
                             chunk, dim);

    double *mean = calloc(dim, sizeof *mean), *snorm = malloc(n * sizeof *snorm);
    double *pnorm = malloc(cp * sizeof *pnorm), *dmin = malloc(cp * sizeof *dmin);
    size_t ns = n_sigmas ? n_sigmas : 1; /* malloc(0) may be NULL */
    double *acc = malloc(cp * ns * sizeof *acc);
    double *inv2s2 = malloc(ns * sizeof *inv2s2), *offset = malloc(ns * sizeof *offset);
    float *hs = malloc(cs * dim * sizeof *hs), *hp = malloc(cp * dim * sizeof *hp);
    float *hd = malloc(cp * cs * sizeof *hd);
    daecl_buf *bs = NULL, *bp = NULL, *bd = NULL;
    if (!mean || !snorm || !pnorm || !dmin || !acc || !inv2s2 || !offset || !hs || !hp || !hd) {
        rc = daecl_err_set(err, DAECL_ENOMEM,
                           "parzen: out of host memory for blocks of %zu rows of %zu values; "
                           "lower chunk_rows", chunk, dim);
        goto done;
    }
    if ((rc = daecl_session_alloc(s, cs * dim, "parzen samples block", &bs, err)) ||
        (rc = daecl_session_alloc(s, cp * dim, "parzen points block", &bp, err)) ||
        (rc = daecl_session_alloc(s, cp * cs, "parzen distances block", &bd, err)))
        goto done;

    /* Centring on the samples' mean shrinks |x|^2 and |s|^2, and with them
     * the cancellation in |x|^2 + |s|^2 - 2 x.s; distances do not change. */
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < dim; c++)
            mean[c] += samples[i * dim + c];
    for (size_t c = 0; c < dim; c++)
        mean[c] /= (double)n;
    for (size_t s0 = 0; s0 < n; s0 += cs) {
        size_t ms = min_size(cs, n - s0);
        centre(samples + s0 * dim, ms, dim, mean, hs, snorm + s0);
    }
    for (size_t k = 0; k < n_sigmas; k++) {
        double var = sigmas[k] * sigmas[k];
        inv2s2[k] = 1.0 / (2 * var);
        offset[k] = -log((double)n) - 0.5 * (double)dim * log(2 * M_PI * var);
    }

    for (size_t p0 = 0; p0 < n_points; p0 += cp) {
        size_t mp = min_size(cp, n_points - p0);
        centre(points + p0 * dim, mp, dim, mean, hp, pnorm);
        if ((rc = s->be->write(s->ctx, bp, 0, hp, mp * dim * sizeof *hp, err)))
            goto done;
        for (size_t j = 0; j < mp; j++)
            dmin[j] = INFINITY;
        memset(acc, 0, mp * n_sigmas * sizeof *acc);
        for (size_t s0 = 0; s0 < n; s0 += cs) {
            size_t ms = min_size(cs, n - s0);
            /* Once per point block: n * dim more host work than one pass,
             * small beside the block's GEMM. */
            centre(samples + s0 * dim, ms, dim, mean, hs, NULL);
            if ((rc = s->be->write(s->ctx, bs, 0, hs, ms * dim * sizeof *hs, err)))
                goto done;
            /* hd (mp, ms) = hp (mp, dim) hs^T (dim, ms) */
            if ((rc = s->be->gemm(s->ctx, 0, 1, mp, ms, dim, 1.0f, daecl_at(bp, 0), dim,
                                  daecl_at(bs, 0), dim, 0.0f, daecl_at(bd, 0), ms, err)) ||
                (rc = daecl_session_read(s, daecl_at(bd, 0), hd, mp * ms, err)))
                goto done;
            for (size_t j = 0; j < mp; j++) {
                double *a = acc + j * n_sigmas;
                for (size_t i = 0; i < ms; i++) {
                    double d2 = pnorm[j] + snorm[s0 + i] - 2.0 * hd[j * ms + i];
                    if (d2 < 0)
                        d2 = 0; /* cancellation: the true value is >= 0 */
                    /* a[k] holds sum exp(-(d2 - dmin) / (2 sigma^2)), so the
                     * largest term is 1 and nothing overflows. */
                    if (d2 < dmin[j]) {
                        if (dmin[j] < INFINITY)
                            for (size_t k = 0; k < n_sigmas; k++)
                                a[k] *= exp(-(dmin[j] - d2) * inv2s2[k]);
                        dmin[j] = d2;
                    }
                    for (size_t k = 0; k < n_sigmas; k++)
                        a[k] += exp(-(d2 - dmin[j]) * inv2s2[k]);
                }
            }
        }
        for (size_t j = 0; j < mp; j++)
            for (size_t k = 0; k < n_sigmas; k++)
                ll[(p0 + j) * n_sigmas + k] =
                    -dmin[j] * inv2s2[k] + log(acc[j * n_sigmas + k]) + offset[k];
        if (nn_d2)
            memcpy(nn_d2 + p0, dmin, mp * sizeof *dmin);
    }

done:
    daecl_session_free(s, bd);
    daecl_session_free(s, bp);
    daecl_session_free(s, bs);
    free(hd);
    free(hp);
    free(hs);
    free(offset);
    free(inv2s2);
    free(acc);
    free(dmin);
    free(pnorm);
    free(snorm);
    free(mean);
    return rc;
}

int daecl_parzen_log_density(daecl_session *s, const float *samples, size_t n,
                             const float *points, size_t n_points, size_t dim,
                             const double *sigmas, size_t n_sigmas, size_t chunk_rows,
                             double *ll, daecl_err *err)
{
    if (n_sigmas == 0)
        return daecl_err_set(err, DAECL_EINVAL, "parzen: no window widths to score at; give "
                             "at least 1");
    return blocked(s, samples, n, points, n_points, dim, sigmas, n_sigmas, chunk_rows, ll, NULL,
                   err);
}

int daecl_parzen_nearest(daecl_session *s, const float *ref, size_t n_ref, const float *points,
                         size_t n_points, size_t dim, size_t chunk_rows, double *dist,
                         daecl_err *err)
{
    int rc = blocked(s, ref, n_ref, points, n_points, dim, NULL, 0, chunk_rows, NULL, dist, err);
    for (size_t j = 0; rc == 0 && j < n_points; j++)
        dist[j] = sqrt(dist[j]);
    return rc;
}

int daecl_parzen_fit(daecl_session *s, const float *samples, size_t n, const float *valid,
                     size_t n_valid, size_t dim, const double *sigmas, size_t n_sigmas,
                     size_t chunk_rows, daecl_parzen_fit_result *out, daecl_err *err)
{
    if (n_sigmas == 0 || n_sigmas > DAECL_PARZEN_MAX_SIGMAS)
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: %zu window widths in the grid; give 1 to %d", n_sigmas,
                             DAECL_PARZEN_MAX_SIGMAS);
    if (n_valid == 0)
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: the validation set is empty; sigma is chosen on it");
    double *ll = malloc(n_valid * n_sigmas * sizeof *ll);
    if (!ll)
        return daecl_err_set(err, DAECL_ENOMEM,
                             "parzen: out of host memory for %zu x %zu log densities", n_valid,
                             n_sigmas);
    int rc = daecl_parzen_log_density(s, samples, n, valid, n_valid, dim, sigmas, n_sigmas,
                                      chunk_rows, ll, err);
    if (rc == 0) {
        memset(out, 0, sizeof *out);
        out->n_sigmas = n_sigmas;
        for (size_t k = 0; k < n_sigmas; k++) {
            double sum = 0;
            for (size_t j = 0; j < n_valid; j++)
                sum += ll[j * n_sigmas + k];
            out->sigmas[k] = sigmas[k];
            out->valid_ll[k] = sum / (double)n_valid;
            if (out->valid_ll[k] > out->valid_ll[out->best])
                out->best = k;
        }
        out->sigma = sigmas[out->best];
    }
    free(ll);
    return rc;
}

int daecl_parzen_score(daecl_session *s, const float *samples, size_t n, const float *test,
                       size_t n_test, size_t dim, double sigma, size_t chunk_rows,
                       daecl_parzen_score_result *out, daecl_err *err)
{
    if (n_test < 2)
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: %zu test rows; the standard error needs at least 2",
                             n_test);
    double *ll = malloc(n_test * sizeof *ll);
    if (!ll)
        return daecl_err_set(err, DAECL_ENOMEM,
                             "parzen: out of host memory for %zu log densities", n_test);
    int rc = daecl_parzen_log_density(s, samples, n, test, n_test, dim, &sigma, 1, chunk_rows,
                                      ll, err);
    if (rc == 0) {
        double sum = 0, ss = 0;
        for (size_t j = 0; j < n_test; j++)
            sum += ll[j];
        double mean = sum / (double)n_test;
        for (size_t j = 0; j < n_test; j++)
            ss += (ll[j] - mean) * (ll[j] - mean);
        out->sigma = sigma;
        out->mean = mean;
        out->se = sqrt(ss / (double)(n_test - 1)) / sqrt((double)n_test);
        out->n_test = n_test;
    }
    free(ll);
    return rc;
}

int daecl_parzen_grid(double lo, double hi, size_t n, double *out, daecl_err *err)
{
    if (n == 0 || !(lo > 0) || !(hi >= lo) || !isfinite(hi))
        return daecl_err_set(err, DAECL_EINVAL,
                             "parzen: a log grid of %zu widths from %g to %g; give n >= 1 and "
                             "0 < lo <= hi",
                             n, lo, hi);
    for (size_t k = 0; k < n; k++)
        out[k] = n == 1 ? lo : lo * pow(hi / lo, (double)k / (double)(n - 1));
    return 0;
}
