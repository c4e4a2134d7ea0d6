/* daecl tune CONFIG [KEY=VALUE ...] [--budget-s S]: tunes the GEMMs the
 * graph reports for the config's model on its backend's device (the
 * backend's daecl.tune_gemm extension, which stores the result for later
 * runs) and prints GFLOP/s per shape before and after. */
#include <math.h>
#include <stddef.h>
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
        "them. Prints GFLOP/s per product before (what runs without a tuning) and after.\n\n"
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

/* The graph's report of a step's GEMMs, as distinct shapes (each with how
 * often a step runs it, and a nonzero beta if any run reads C) and one row
 * per product pointing at its shape. core/graph.c stays the only place that
 * knows which products a step runs. */
static size_t step_shapes(const daecl_run *r, daecl_gemm_shape *shapes, size_t *n_shapes,
                          row *rows)
{
    daecl_graph_gemm products[MAX_ROWS];
    size_t n = daecl_graph_gemm_shapes(r->g, r->cfg, products, MAX_ROWS), n_rows = 0;
    *n_shapes = 0;
    for (size_t p = 0; p < n && p < MAX_ROWS; p++) {
        const daecl_graph_gemm *g = &products[p];
        size_t i;
        for (i = 0; i < *n_shapes; i++)
            if (shapes[i].trans_a == (uint32_t)g->trans_a &&
                shapes[i].trans_b == (uint32_t)g->trans_b && shapes[i].m == g->m &&
                shapes[i].n == g->n && shapes[i].k == g->k)
                break;
        if (i == *n_shapes) {
            memset(&shapes[i], 0, sizeof shapes[i]);
            shapes[i].trans_a = (uint32_t)g->trans_a, shapes[i].trans_b = (uint32_t)g->trans_b;
            shapes[i].m = g->m, shapes[i].n = g->n, shapes[i].k = g->k;
            ++*n_shapes;
        }
        shapes[i].runs++;
        if (g->beta != 0.0f) /* a product run both ways is timed reading C */
            shapes[i].beta = g->beta;
        rows[n_rows++] = (row){g->layer, g->what, i};
    }
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
    printf("\nGFLOP/s on %s; before: what runs without a tuning. Later runs on this device "
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
    static daecl_gemm_shape shapes[MAX_ROWS];
    static row rows[MAX_ROWS];
    size_t n = 0, n_rows = 0;
    if (!daecl_session_can_tune(r.s)) {
        daecl_err_set(&err, DAECL_EUSAGE,
                      "backend '%s' has no GEMMs to tune; tune on the "
                      "device you train on, e.g. `daecl tune %s backend.plugin=opencl`",
                      r.cfg->backend.name, config);
        code = cli_fail(&err);
    } else {
        n_rows = step_shapes(&r, shapes, &n, rows);
        char desc[512];
        if (!quiet)
            printf("daecl tune: %s, model %s, batch %u: %zu GEMM shapes, about %.0f s\n",
                   daecl_session_device_name(r.s),
                   daecl_model_describe(&r.model, desc, sizeof desc), r.g->batch_max, n, budget_s);
        if (daecl_session_tune_gemm(r.s, shapes, n, budget_s, &err))
            code = cli_fail(&err);
        else
            print_table(&r, shapes, n, rows, n_rows);
    }
    daecl_run_close(&r);
    return code;
}
