/* daecl tune CONFIG [KEY=VALUE ...] [--budget-s S]: tunes the GEMMs of the
 * config's model for its backend's device (the backend's tune_gemm op, which
 * stores the result for later runs) and prints GFLOP/s per shape before and
 * after. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/log.h"
#include "core/run.h"

static int run(int argc, char **argv);

const cli_command cli_tune = {
    .name = "tune",
    .summary = "tune the GEMMs of a model for this device",
    .usage =
        "usage: daecl tune CONFIG [KEY=VALUE ...] [--budget-s S] [--quiet]\n\n"
        "Finds how the configured backend's device runs the model's matrix products\n"
        "fastest: for every layer the forward product, the weight gradient and the input\n"
        "gradient at train.batch_size. The opencl backend searches CLBlast's kernel\n"
        "parameters (each new candidate compiles once: seconds to minutes), times daecl's\n"
        "own GEMM kernel too, and stores the winners in daecl's cache folder\n"
        "(clblast-tuning/); every later run on the same device, driver and CLBlast uses\n"
        "them. Prints GFLOP/s per product before (CLBlast's built-in parameters) and after.\n\n"
        "options:\n"
        "  --budget-s S   search for about S seconds (default 300); a candidate that has\n"
        "                 started still finishes\n"
        "  --quiet        no progress lines, only the table\n",
    .run = run,
};

enum { MAX_ROWS = 3 * DAECL_MAX_DENSE };

/* One product of the table: its layer, what it computes, its shape. */
typedef struct row {
    uint32_t layer;
    const char *what;
    size_t shape;
} row;

static int same_shape(const daecl_gemm_shape *s, int ta, int tb, size_t m, size_t n, size_t k)
{
    return s->trans_a == (uint32_t)ta && s->trans_b == (uint32_t)tb && s->m == m && s->n == n &&
           s->k == k;
}

/* ---- the shapes, as one training step runs them ---- */

/* A step runs once with this gemm in the backend's place: it records each
 * product and computes nothing (so nothing re-parameterises CLBlast before
 * the search measures its defaults). core/graph.c stays the only place
 * that knows which products a step runs, with which transposes and beta. */
static daecl_gemm_shape recorded[MAX_ROWS];
static size_t n_recorded;

static int record_gemm(void *ctx, int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                       daecl_slice a, size_t lda, daecl_slice b, size_t ldb, float beta,
                       daecl_slice c, size_t ldc, daecl_err *err)
{
    (void)ctx, (void)alpha, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc;
    for (size_t i = 0; i < n_recorded; i++)
        if (same_shape(&recorded[i], ta, tb, m, n, k)) {
            recorded[i].runs++;
            if (beta != 0.0f) /* a product run both ways is timed reading C */
                recorded[i].beta = beta;
            return 0;
        }
    if (n_recorded == MAX_ROWS)
        return daecl_err_set(err, DAECL_EINVAL,
                             "a training step runs more than %d different "
                             "GEMM shapes; daecl tune handles at most that many",
                             MAX_ROWS);
    daecl_gemm_shape *s = &recorded[n_recorded++];
    memset(s, 0, sizeof *s);
    s->trans_a = (uint32_t)(ta != 0), s->trans_b = (uint32_t)(tb != 0);
    s->m = m, s->n = n, s->k = k;
    s->runs = 1;
    s->beta = beta;
    return 0;
}

static int record_step(daecl_run *r, daecl_err *err)
{
    const daecl_backend_ops *real = r->s->be;
    daecl_backend_ops recording = *real;
    recording.gemm = record_gemm;
    daecl_buf *loss = NULL;
    size_t rows;
    n_recorded = 0;
    int rc = daecl_session_alloc(r->s, 1, "loss", &loss, err);
    if (!rc)
        rc = daecl_feeder_shuffle(r->train_feed, r->cfg->seed, 0, err);
    if (!rc) {
        r->s->be = &recording;
        rc = daecl_run_step(r, 0, 0, 1, daecl_at(loss, 0), &rows, err);
        r->s->be = real;
    }
    if (!rc)
        rc = real->finish(r->s->ctx, err);
    daecl_session_free(r->s, loss);
    return rc;
}

/* Labels for the table: per layer the forward product, the weight gradient
 * and (above the first layer) the input gradient, with the shapes
 * core/graph.c gives them (a tied layer uses its owner's W (in, out)
 * transposed); each row points at its recorded shape. A recorded shape no
 * label matches gets a row of its own. */
static size_t label_rows(const daecl_model *md, size_t b, row *rows)
{
    size_t n_rows = 0;
    int labelled[MAX_ROWS] = {0};
    for (uint32_t l = 0; l < md->n_layers; l++) {
        const daecl_dense *ly = &md->layers[l];
        size_t in = ly->in, out = ly->out;
        const struct {
            const char *what;
            int ta, tb;
            size_t m, n, k;
        } products[3] = {
            {"forward", 0, !ly->tied, b, out, in},
            {"weight grad", 1, 0, ly->tied ? in : out, ly->tied ? out : in, b},
            {"input grad", 0, ly->tied, b, in, out},
        };
        for (int p = 0; p < (l > 0 ? 3 : 2); p++)
            for (size_t i = 0; i < n_recorded; i++)
                if (same_shape(&recorded[i], products[p].ta, products[p].tb, products[p].m,
                               products[p].n, products[p].k)) {
                    rows[n_rows++] = (row){l, products[p].what, i};
                    labelled[i] = 1;
                    break;
                }
    }
    for (size_t i = 0; i < n_recorded; i++)
        if (!labelled[i])
            rows[n_rows++] = (row){UINT32_MAX, "other", i};
    return n_rows;
}

static void gflops_cell(char *out, size_t n, double g)
{
    if (g > 0)
        snprintf(out, n, "%.3g", g);
    else
        snprintf(out, n, "-");
}

static void print_table(const daecl_run *r, const daecl_gemm_shape *shapes, size_t n,
                        const row *rows, size_t n_rows)
{
    printf("%-5s  %-11s  %-21s  %-7s  %8s  %8s  %8s  %s\n", "layer", "product", "m x n x k", "op",
           "before", "after", "speed-up", "runs on");
    for (size_t i = 0; i < n_rows; i++) {
        const daecl_gemm_shape *s = &shapes[rows[i].shape];
        char dims[64], before[16], after[16], ratio[16] = "-";
        snprintf(dims, sizeof dims, "%llu x %llu x %llu", (unsigned long long)s->m,
                 (unsigned long long)s->n, (unsigned long long)s->k);
        gflops_cell(before, sizeof before, s->before);
        gflops_cell(after, sizeof after, s->after);
        if (s->before > 0 && s->after > 0)
            snprintf(ratio, sizeof ratio, "%.2fx", s->after / s->before);
        char layer[16] = "-";
        if (rows[i].layer != UINT32_MAX)
            snprintf(layer, sizeof layer, "%u", rows[i].layer);
        printf("%-5s  %-11s  %-21s  %-7s  %8s  %8s  %8s  %s\n", layer, rows[i].what, dims,
               s->trans_a ? (s->trans_b ? "A^T B^T" : "A^T B") : (s->trans_b ? "A B^T" : "A B"),
               before, after, ratio, s->choice);
    }
    /* A step's GEMMs: total flops over total time, each shape as often as
     * a step runs it. */
    double work = 0, t_before = 0, t_after = 0;
    int have_before = 1;
    for (size_t i = 0; i < n; i++) {
        double f =
            2.0 * (double)shapes[i].m * (double)shapes[i].n * (double)shapes[i].k * shapes[i].runs;
        work += f;
        if (shapes[i].before > 0)
            t_before += f / shapes[i].before;
        else
            have_before = 0;
        t_after += shapes[i].after > 0 ? f / shapes[i].after : INFINITY;
    }
    char before[16], after[16], ratio[16] = "-";
    gflops_cell(before, sizeof before, have_before ? work / t_before : 0);
    gflops_cell(after, sizeof after, isfinite(t_after) ? work / t_after : 0);
    if (have_before && isfinite(t_after))
        snprintf(ratio, sizeof ratio, "%.2fx", t_before / t_after);
    printf("%-50s  %8s  %8s  %8s\n", "one training step's GEMMs", before, after, ratio);
    printf("\nGFLOP/s on %s; before: CLBlast's built-in parameters. Later runs on this device "
           "use the tuning.\n",
           daecl_session_device_name(r->s));
}

static int run(int argc, char **argv)
{
    const char *config = NULL, *ov[CLI_MAX_OVERRIDES];
    size_t n_ov = 0;
    double budget_s = 300;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        if (strcmp(a, "--budget-s") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(&cli_tune, "--budget-s needs a number of seconds");
            value = argv[++i];
        } else if (strncmp(a, "--budget-s=", 11) == 0) {
            value = a + 11;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
            continue;
        } else if (a[0] == '-' && a[1] == '-') {
            return cli_usage_error(&cli_tune, "unknown option '%s'", a);
        } else if (strchr(a, '=')) {
            if (n_ov == CLI_MAX_OVERRIDES)
                return cli_usage_error(&cli_tune, "too many overrides (at most %d)",
                                       CLI_MAX_OVERRIDES);
            ov[n_ov++] = a;
            continue;
        } else if (!config) {
            config = a;
            continue;
        } else {
            return cli_usage_error(&cli_tune,
                                   "unexpected argument '%s' (overrides look like "
                                   "backend.plugin=opencl)",
                                   a);
        }
        char *end;
        budget_s = strtod(value, &end);
        if (end == value || *end || !isfinite(budget_s) || budget_s < 0 || budget_s > 1e6)
            return cli_usage_error(&cli_tune,
                                   "--budget-s wants seconds from 0 to 1000000, not "
                                   "'%s'",
                                   value);
    }
    if (!config)
        return cli_usage_error(&cli_tune, "which experiment? give a CONFIG file, e.g. "
                                          "configs/fashion-mnist.yaml");
    if (quiet)
        daecl_log_set_level(DAECL_LOG_WARN);

    daecl_run r;
    daecl_err err = {0};
    if (daecl_run_open(&r, config, ov, n_ov, &err)) {
        daecl_run_close(&r);
        return cli_fail(&err);
    }
    int code = 0;
    const daecl_backend_ops *be = r.s->be;
    static row rows[2 * MAX_ROWS];
    size_t n = 0, n_rows = 0;
    if (!be->tune_gemm) {
        daecl_err_set(&err, DAECL_EUSAGE,
                      "backend '%s' has no GEMMs to tune; tune on the "
                      "device you train on, e.g. `daecl tune %s backend.plugin=opencl`",
                      r.cfg->backend.name, config);
        code = cli_fail(&err);
    } else if (record_step(&r, &err)) {
        code = cli_fail(&err);
    } else {
        daecl_gemm_shape *shapes = recorded;
        n = n_recorded;
        n_rows = label_rows(&r.model, r.g->batch_max, rows);
        char desc[512];
        if (!quiet)
            printf("daecl tune: %s, model %s, batch %u: %zu GEMM shapes, about %.0f s\n",
                   daecl_session_device_name(r.s),
                   daecl_model_describe(&r.model, desc, sizeof desc), r.g->batch_max, n, budget_s);
        if (be->tune_gemm(r.s->ctx, shapes, n, budget_s, &err))
            code = cli_fail(&err);
        else
            print_table(&r, shapes, n, rows, n_rows);
    }
    daecl_run_close(&r);
    return code;
}
