/* daecl — `daecl eval --parzen`: chain samples (core/sample.c), the Parzen
 * estimate and the nearest-neighbour distances (core/parzen.c), all on the
 * run's session, and their place in eval.json. */
#include "core/parzen_eval.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/provenance.h"
#include "core/run.h"
#include "core/runfiles.h"
#include "core/sample.h"

void daecl_parzen_eval_defaults(daecl_parzen_eval_opts *o)
{
    *o = (daecl_parzen_eval_opts){.n_samples = DAECL_PARZEN_EVAL_SAMPLES,
                                  .steps = DAECL_PARZEN_EVAL_STEPS, .sigma_lo = 0.05,
                                  .sigma_hi = 1.0, .n_sigmas = 20};
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of x (n >= 1 values, sorted in place), interpolated
 * linearly between order statistics (numpy's default). */
static double quantile(double *x, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? x[i] + f * (x[i + 1] - x[i]) : x[i];
}

static int check_opts(const daecl_parzen_eval_opts *o, daecl_err *err)
{
    if (o->n_samples == 0)
        return daecl_err_set(err, DAECL_EUSAGE, "the Parzen estimate needs at least one sample "
                             "(--samples 1 or more)");
    if (o->n_sigmas == 0 || o->n_sigmas > DAECL_PARZEN_MAX_SIGMAS)
        return daecl_err_set(err, DAECL_EUSAGE, "the grid of window widths holds %zu values; "
                             "give 1 to %d", o->n_sigmas, DAECL_PARZEN_MAX_SIGMAS);
    if (!(o->sigma_lo > 0) || !(o->sigma_hi >= o->sigma_lo) || !isfinite(o->sigma_hi))
        return daecl_err_set(err, DAECL_EUSAGE, "the window widths from %g to %g are no grid: "
                             "give 0 < LO <= HI", o->sigma_lo, o->sigma_hi);
    return 0;
}

/* Reads run_dir/eval.json when it is there (NULL *out when not). */
static int read_eval_json(const char *path, cJSON **out, daecl_err *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 0
                               : daecl_err_set(err, DAECL_EIO, "cannot open %s: %s", path,
                                               daecl_errno_hint(errno));
    char *text = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *t = realloc(text, cap = 2 * cap + 8192);
            if (!t) {
                rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory reading %s", path);
                goto done;
            }
            text = t;
        }
        size_t got = fread(text + n, 1, 4096, f);
        n += got;
        if (got < 4096)
            break;
    }
    text[n] = 0;
    *out = cJSON_Parse(text);
    if (!*out || !cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        rc = daecl_err_set(err, DAECL_EDATA, "%s is not a JSON object: move it away, or run "
                           "`daecl eval` again to rewrite it", path);
    }
done:
    fclose(f);
    free(text);
    return rc;
}

static int write_json(const char *run_dir, daecl_parzen_eval_result *res, const char *device,
                      daecl_err *err)
{
    int rc = daecl_path_join(res->json, sizeof res->json, run_dir, "eval.json", err);
    cJSON *j = NULL;
    if (rc || (rc = read_eval_json(res->json, &j, err)))
        return rc;
    if (!j)
        j = cJSON_CreateObject();
    cJSON *p = cJSON_CreateObject(), *m = cJSON_CreateObject();
    if (j && p && m) {
        cJSON_DeleteItemFromObject(j, "parzen");
        cJSON_DeleteItemFromObject(j, "memorisation");
        cJSON_AddNumberToObject(p, "step", (double)res->step);
        cJSON_AddStringToObject(p, "checkpoint_sha256", res->checkpoint_sha256);
        cJSON_AddStringToObject(p, "centres", "decoder means of the chains' last states");
        cJSON_AddNumberToObject(p, "n_samples", res->n_samples);
        cJSON_AddNumberToObject(p, "steps", res->steps);
        cJSON_AddStringToObject(p, "start", "noise");
        cJSON_AddNumberToObject(p, "seed", (double)res->seed);
        cJSON_AddNumberToObject(p, "n_valid", (double)res->n_valid);
        cJSON_AddStringToObject(p, "valid", "the training set's last n_valid rows");
        cJSON_AddNumberToObject(p, "n_test", (double)res->score.n_test);
        cJSON *g = cJSON_AddArrayToObject(p, "sigmas"), *v = cJSON_AddArrayToObject(p, "valid_ll");
        for (size_t k = 0; g && v && k < res->fit.n_sigmas; k++) {
            cJSON_AddItemToArray(g, cJSON_CreateNumber(res->fit.sigmas[k]));
            cJSON_AddItemToArray(v, cJSON_CreateNumber(res->fit.valid_ll[k]));
        }
        cJSON_AddNumberToObject(p, "sigma", res->score.sigma);
        cJSON_AddNumberToObject(p, "test_ll_mean", res->score.mean);
        cJSON_AddNumberToObject(p, "test_ll_se", res->score.se);
        cJSON_AddStringToObject(p, "units", "nats per example");
        cJSON_AddStringToObject(p, "device", device);
        cJSON_AddStringToObject(m, "distance", "Euclidean, to the nearest training example");
        cJSON_AddNumberToObject(m, "sample_median", res->nn_sample_median);
        cJSON_AddNumberToObject(m, "sample_p5", res->nn_sample_p5);
        cJSON_AddNumberToObject(m, "test_median", res->nn_test_median);
        cJSON_AddNumberToObject(m, "test_p5", res->nn_test_p5);
        cJSON_AddItemToObject(j, "parzen", p);
        cJSON_AddItemToObject(j, "memorisation", m);
        p = m = NULL;
    }
    cJSON_Delete(p);
    cJSON_Delete(m);
    /* NULL j: write_json says out of memory */
    rc = daecl_runfiles_write_json(run_dir, "eval.json", j, "evaluation", err);
    if (rc)
        res->json[0] = 0;
    return rc;
}

int daecl_parzen_eval_keep(const char *run_dir, const char *ckpt_path, uint64_t step, cJSON *j,
                           daecl_err *err)
{
    char path[PATH_MAX], own[PATH_MAX];
    cJSON *old = NULL;
    int rc = daecl_path_join(path, sizeof path, run_dir, "eval.json", err);
    if (!rc)
        rc = daecl_path_join(own, sizeof own, run_dir, "checkpoint.safetensors", err);
    if (rc)
        return rc;
    if ((rc = read_eval_json(path, &old, err))) {
        if (rc != DAECL_EDATA)
            return rc;
        /* not JSON: nothing in it to keep, and the rewrite mends it */
        daecl_log(DAECL_LOG_WARN, NULL, "%s was not a JSON object; rewriting it", path);
        *err = (daecl_err){0};
        return 0;
    }
    cJSON *p = old ? cJSON_GetObjectItemCaseSensitive(old, "parzen") : NULL;
    cJSON *m = old ? cJSON_GetObjectItemCaseSensitive(old, "memorisation") : NULL;
    if (!p && !m) {
        cJSON_Delete(old);
        return 0;
    }
    /* The checkpoint's SHA-256 when eval.json recorded it; from before
     * that, its step, and only for the run's own checkpoint (the one
     * --parzen reads). O(checkpoint size) to hash, once. */
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(p, "checkpoint_sha256");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(p, "step");
    int same = 0;
    if (cJSON_IsString(sha) && sha->valuestring[0]) {
        char hex[65];
        if ((rc = daecl_provenance_sha256_file(ckpt_path, hex, err))) {
            cJSON_Delete(old);
            return rc;
        }
        same = strcmp(hex, sha->valuestring) == 0;
    } else if (cJSON_IsNumber(at)) {
        same = (double)step == at->valuedouble && strcmp(ckpt_path, own) == 0;
    }
    if (same) {
        cJSON_DeleteItemFromObject(j, "parzen");
        cJSON_DeleteItemFromObject(j, "memorisation");
        if (p)
            cJSON_AddItemToObject(j, "parzen", cJSON_DetachItemViaPointer(old, p));
        if (m)
            cJSON_AddItemToObject(j, "memorisation", cJSON_DetachItemViaPointer(old, m));
    } else {
        daecl_log(DAECL_LOG_WARN, NULL, "dropped the Parzen estimate and memorisation check "
                  "from %s: they were measured on another checkpoint than %s (step %llu); run "
                  "`daecl eval %s --parzen` to measure them again", path, ckpt_path,
                  (unsigned long long)step, run_dir);
    }
    cJSON_Delete(old);
    return 0;
}

int daecl_parzen_eval_run(const daecl_parzen_eval_opts *o, daecl_parzen_eval_result *res,
                          daecl_err *err)
{
    memset(res, 0, sizeof *res);
    int rc = check_opts(o, err);
    if (rc)
        return rc;
    double sigmas[DAECL_PARZEN_MAX_SIGMAS];
    if ((rc = daecl_parzen_grid(o->sigma_lo, o->sigma_hi, o->n_sigmas, sigmas, err)))
        return rc;
    char ckpt[PATH_MAX];
    struct stat sb;
    if ((rc = daecl_path_join(ckpt, sizeof ckpt, o->run_dir, "checkpoint.safetensors", err)))
        return rc;
    if (stat(o->run_dir, &sb) == 0 && S_ISDIR(sb.st_mode) && stat(ckpt, &sb) != 0)
        return daecl_err_set(err, DAECL_EUSAGE, "%s holds no checkpoint.safetensors: the "
                             "Parzen estimate needs a trained run's folder", o->run_dir);
    /* eval.json's record of which checkpoint was measured: a plain `daecl
     * eval` keeps the numbers only beside the same one. */
    if (stat(ckpt, &sb) == 0 &&
        (rc = daecl_provenance_sha256_file(ckpt, res->checkpoint_sha256, err)))
        return rc;
    daecl_trained_opts to = {.run_dir = o->run_dir, .overrides = o->overrides,
                             .n_overrides = o->n_overrides, .command = "eval"};
    daecl_run r;
    daecl_ckpt_state st;
    float *start = NULL, *means = NULL;
    double *nn_s = NULL, *nn_t = NULL;
    if ((rc = daecl_run_open_trained(&r, &to, &st, err)))
        goto done;
    if (!r.test) {
        rc = daecl_err_set(err, DAECL_EUSAGE, "%s has no test set to score: set data.test in "
                           "its config (or give data.test=FILE) for the Parzen estimate",
                           o->run_dir);
        goto done;
    }
    size_t n = o->n_samples, dim = r.train->dim, n_train = r.train->n_rows;
    size_t n_valid = o->n_valid;
    if (!n_valid)
        n_valid = n_train / 6 < DAECL_PARZEN_EVAL_VALID ? n_train / 6 : DAECL_PARZEN_EVAL_VALID;
    if (n_valid == 0 || n_valid > n_train) {
        rc = daecl_err_set(err, DAECL_EUSAGE, "a validation split of %zu rows does not fit in "
                           "the %zu training rows: give --valid 1 to %zu", n_valid, n_train,
                           n_train);
        goto done;
    }
    res->step = st.step;
    res->n_samples = o->n_samples;
    res->steps = o->steps;
    res->seed = o->has_seed ? o->seed : r.cfg->seed;
    res->n_train = n_train;
    res->n_valid = n_valid;
    start = malloc(n * dim * sizeof *start);
    means = malloc(n * dim * sizeof *means);
    nn_s = malloc(n * sizeof *nn_s);
    nn_t = malloc(r.test->n_rows * sizeof *nn_t);
    if (!start || !means || !nn_s || !nn_t) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory for %zu samples of %zu values: "
                           "lower --samples", n, dim);
        goto done;
    }
    /* Chains from noise, never from the test set the estimate scores. */
    daecl_sample_opts so = {.chains = o->n_samples, .steps = o->steps, .burn_in = o->steps - 1,
                            .thin = 1, .has_seed = 1, .seed = res->seed,
                            .start = DAECL_SAMPLE_START_NOISE};
    const float *valid = r.train->x + (n_train - n_valid) * dim;
    daecl_session *s = r.s;
    if ((rc = daecl_sample_chains(&r, &so, start, NULL, means, err)) ||
        (rc = daecl_parzen_fit(s, means, n, valid, n_valid, dim, sigmas, o->n_sigmas,
                               o->chunk_rows, &res->fit, err)) ||
        (rc = daecl_parzen_score(s, means, n, r.test->x, r.test->n_rows, dim, res->fit.sigma,
                                 o->chunk_rows, &res->score, err)) ||
        (rc = daecl_parzen_nearest(s, r.train->x, n_train, means, n, dim, o->chunk_rows, nn_s,
                                   err)) ||
        (rc = daecl_parzen_nearest(s, r.train->x, n_train, r.test->x, r.test->n_rows, dim,
                                   o->chunk_rows, nn_t, err)))
        goto done;
    qsort(nn_s, n, sizeof *nn_s, cmp_double);
    qsort(nn_t, r.test->n_rows, sizeof *nn_t, cmp_double);
    res->nn_sample_median = quantile(nn_s, n, 0.5);
    res->nn_sample_p5 = quantile(nn_s, n, 0.05);
    res->nn_test_median = quantile(nn_t, r.test->n_rows, 0.5);
    res->nn_test_p5 = quantile(nn_t, r.test->n_rows, 0.05);
    rc = write_json(o->run_dir, res, daecl_session_device_name(s), err);
done:
    daecl_run_close(&r);
    free(start);
    free(means);
    free(nn_s);
    free(nn_t);
    return rc;
}

void daecl_parzen_eval_print(const daecl_parzen_eval_result *res, FILE *f)
{
    fprintf(f, "Parzen test log-likelihood %.2f +- %.2f nats (sigma %.4g; %u samples: decoder "
               "means of the chains' states after %u steps from noise, seed %llu; sigma fitted "
               "on the training set's last %zu rows; %zu test rows)\n",
            res->score.mean, res->score.se, res->score.sigma, res->n_samples, res->steps,
            (unsigned long long)res->seed, res->n_valid, res->score.n_test);
    fprintf(f, "memorisation: distance to the nearest training example, median (5th "
               "percentile): samples %.4g (%.4g), test examples %.4g (%.4g)\n",
            res->nn_sample_median, res->nn_sample_p5, res->nn_test_median, res->nn_test_p5);
}
