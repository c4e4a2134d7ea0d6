/* daecl benchmark driver: examples/s of real training steps, the time split
 * of a step (GEMMs, elementwise ops, the rest), GEMM throughput at the
 * model's shapes (and OpenBLAS's, the machine's ceiling), start-up time and
 * memory. Prints one JSON object per measurement; bench/run.sh runs it next
 * to the PyTorch peer (bench/torch_dae.py) and writes bench/RESULTS.md.
 *
 *   daecl_bench step CONFIG [KEY=VALUE ...] [--window-s S] [--windows N] [--warmup-s S] [--split]
 *   daecl_bench gemm CONFIG [KEY=VALUE ...] [--openblas]
 *   daecl_bench start CONFIG [KEY=VALUE ...]
 *   daecl_bench epoch CONFIG [KEY=VALUE ...]
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/run.h"

static double t_process_start;

static int die(const daecl_err *err)
{
    char buf[2048];
    fprintf(stderr, "daecl_bench: %s\n", daecl_err_format(err, buf, sizeof buf));
    return 1;
}

static const daecl_backend_ops *real_ops; /* the backend's own table */
static daecl_backend_ops wrapped;         /* the table the split measures with */

/* ---- no-op stand-ins for the split ---------------------------------------------- */

static int no_gemm(void *c, int ta, int tb, size_t m, size_t n, size_t k, float al, daecl_slice a,
                   size_t lda, daecl_slice b, size_t ldb, float be, daecl_slice cc, size_t ldc,
                   daecl_err *e)
{
    (void)c, (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)al, (void)a, (void)lda, (void)b;
    (void)ldb, (void)be, (void)cc, (void)ldc, (void)e;
    return 0;
}
static int no_bias_act(void *c, daecl_slice z, daecl_slice b, size_t r, size_t d, daecl_act a,
                       daecl_err *e)
{
    (void)c, (void)z, (void)b, (void)r, (void)d, (void)a, (void)e;
    return 0;
}
static int no_act_grad(void *c, daecl_slice d, daecl_slice h, size_t n, daecl_act a, daecl_err *e)
{
    (void)c, (void)d, (void)h, (void)n, (void)a, (void)e;
    return 0;
}
static int no_col_sum(void *c, daecl_slice s, size_t r, size_t d, float b, daecl_slice t,
                      daecl_err *e)
{
    (void)c, (void)s, (void)r, (void)d, (void)b, (void)t, (void)e;
    return 0;
}
static int no_sum(void *c, daecl_slice s, size_t n, daecl_slice d, daecl_err *e)
{
    (void)c, (void)s, (void)n, (void)d, (void)e;
    return 0;
}
static int no_gather(void *c, daecl_slice d, size_t dim, daecl_slice i, size_t n, daecl_slice o,
                     daecl_err *e)
{
    (void)c, (void)d, (void)dim, (void)i, (void)n, (void)o, (void)e;
    return 0;
}
static int no_update(void *c, const daecl_optim_step *s, daecl_slice w, daecl_slice g,
                     daecl_slice s1, daecl_slice s2, size_t n, daecl_err *e)
{
    (void)c, (void)s, (void)w, (void)g, (void)s1, (void)s2, (void)n, (void)e;
    return 0;
}
static int no_corrupt(void *c, void *b, daecl_slice x, daecl_slice xt, size_t r, size_t d,
                      const daecl_shape *sh, const daecl_noise_key *k, daecl_err *e)
{
    (void)c, (void)b, (void)x, (void)xt, (void)r, (void)d, (void)sh, (void)k, (void)e;
    return 0;
}
static int no_loss(void *c, void *b, daecl_slice x, daecl_slice a, size_t r, size_t d, float s,
                   daecl_slice n, daecl_slice g, daecl_err *e)
{
    (void)c, (void)b, (void)x, (void)a, (void)r, (void)d, (void)s, (void)n, (void)g, (void)e;
    return 0;
}

static int no_act_grad_col_sum(void *c, daecl_slice d, daecl_slice h, size_t r, size_t dim,
                               daecl_act a, float b, daecl_slice t, daecl_err *e)
{
    (void)c, (void)d, (void)h, (void)r, (void)dim, (void)a, (void)b, (void)t, (void)e;
    return 0;
}
static int no_loss_sums(void *c, void *b, daecl_slice x, daecl_slice a, size_t r, size_t sr,
                        size_t d, float s, daecl_slice g, daecl_slice gs, daecl_slice ns,
                        daecl_err *e)
{
    (void)c, (void)b, (void)x, (void)a, (void)r, (void)sr, (void)d, (void)s, (void)g, (void)gs;
    (void)ns, (void)e;
    return 0;
}

static int no_update_split(void *c, const daecl_optim_step *s, size_t nd, daecl_slice w,
                           daecl_slice g, daecl_slice s1, daecl_slice s2, size_t n, daecl_err *e)
{
    (void)c, (void)s, (void)nd, (void)w, (void)g, (void)s1, (void)s2, (void)n, (void)e;
    return 0;
}

enum { RUN_ALL, RUN_GEMM_ONLY, RUN_ELEMENTWISE_ONLY };

static void select_ops(daecl_run *r, int which)
{
    wrapped = *real_ops;
    if (which == RUN_ELEMENTWISE_ONLY)
        wrapped.gemm = no_gemm;
    if (which == RUN_GEMM_ONLY) {
        wrapped.bias_act = no_bias_act;
        wrapped.act_grad = no_act_grad;
        wrapped.col_sum = no_col_sum;
        wrapped.sum = no_sum;
        wrapped.gather = no_gather;
        wrapped.optim_update = no_update;
        wrapped.corrupt = no_corrupt;
        wrapped.lik_loss_grad = no_loss;
        /* the fused ops are element-wise too; a NULL slot stays NULL */
        if (wrapped.act_grad_col_sum)
            wrapped.act_grad_col_sum = no_act_grad_col_sum;
        if (wrapped.lik_loss_grad_sums)
            wrapped.lik_loss_grad_sums = no_loss_sums;
        if (wrapped.optim_update_split)
            wrapped.optim_update_split = no_update_split;
    }
    r->s->be = &wrapped;
}

/* ---- arguments --------------------------------------------------------------------- */

typedef struct args {
    const char *mode, *config;
    const char *ov[64];
    size_t n_ov;
    double window_s, warmup_s;
    int windows, split, openblas, threads;
} args;

static int parse(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    a->window_s = 2, a->warmup_s = 2, a->windows = 5;
    if (argc < 3)
        return -1;
    a->mode = argv[1];
    a->config = argv[2];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--window-s") == 0 && i + 1 < argc)
            a->window_s = atof(argv[++i]);
        else if (strcmp(argv[i], "--warmup-s") == 0 && i + 1 < argc)
            a->warmup_s = atof(argv[++i]);
        else if (strcmp(argv[i], "--windows") == 0 && i + 1 < argc)
            a->windows = atoi(argv[++i]);
        else if (strcmp(argv[i], "--split") == 0)
            a->split = 1;
        else if (strcmp(argv[i], "--openblas") == 0)
            a->openblas = 1;
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            a->threads = atoi(argv[++i]);
        else if (strchr(argv[i], '=') && a->n_ov < 64)
            a->ov[a->n_ov++] = argv[i];
        else
            return -1;
    }
    return 0;
}

static int open_run(daecl_run *r, const args *a, daecl_err *err)
{
    int rc = daecl_run_open(r, a->config, a->ov, a->n_ov, err);
    if (!rc)
        real_ops = r->s->be;
    return rc;
}

/* ---- step throughput ---------------------------------------------------------------- */

typedef struct stepper {
    daecl_run *r;
    daecl_buf *losses;
    size_t i;       /* batch within the epoch */
    uint32_t epoch;
    uint64_t step;
} stepper;

static int steps(stepper *s, size_t n, size_t *rows_out, daecl_err *err)
{
    daecl_run *r = s->r;
    size_t rows_total = 0;
    for (size_t k = 0; k < n; k++) {
        if (s->i == r->steps_per_epoch) {
            s->i = 0;
            int rc = daecl_feeder_shuffle(r->train_feed, r->cfg->seed, ++s->epoch, err);
            if (rc)
                return rc;
        }
        size_t rows;
        int rc = daecl_run_step(r, s->i, s->epoch, s->step + 1, daecl_at(s->losses, s->i), &rows, err);
        if (rc)
            return rc;
        s->i++;
        s->step++;
        rows_total += rows;
    }
    *rows_out = rows_total;
    return 0;
}

/* Runs steps for about `seconds`, finishing the queue; returns examples/s. */
static int window(stepper *s, double seconds, double *rate, double *step_s, daecl_err *err)
{
    daecl_session *se = s->r->s;
    int rc = se->be->finish(se->ctx, err);
    if (rc)
        return rc;
    double t0 = daecl_now(), t;
    size_t rows = 0, n = 0;
    do {
        size_t got;
        if ((rc = steps(s, 4, &got, err)) || (rc = se->be->finish(se->ctx, err)))
            return rc;
        rows += got;
        n += 4;
        t = daecl_now() - t0;
    } while (t < seconds);
    *rate = (double)rows / t;
    *step_s = t / (double)n;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median step time (s) with the ops chosen by `which`. */
static int measure(stepper *s, const args *a, int which, double *rates, double *step_med,
                   daecl_err *err)
{
    select_ops(s->r, which);
    double rate, st, times[64];
    int rc = window(s, a->warmup_s, &rate, &st, err);
    for (int w = 0; !rc && w < a->windows && w < 64; w++) {
        rc = window(s, a->window_s, &rate, &st, err);
        if (rates)
            rates[w] = rate;
        times[w] = st;
    }
    if (!rc)
        *step_med = median_of(times, a->windows < 64 ? a->windows : 64);
    select_ops(s->r, RUN_ALL);
    return rc;
}

static double step_gemm_flops(const daecl_model *m, size_t b)
{
    double f = 0;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        double mnk = 2.0 * (double)b * m->layers[l].in * m->layers[l].out;
        f += l == 0 ? 2 * mnk : 3 * mnk; /* forward, dW, and dX above the first layer */
    }
    return f;
}

static void print_model(const daecl_run *r)
{
    char desc[512];
    printf("\"model\": \"%s\", \"batch\": %u, \"backend\": \"%s\", \"device\": \"%s\", ",
           daecl_model_describe(&r->model, desc, sizeof desc), r->g->batch_max,
           r->cfg->backend.name, daecl_session_device_name(r->s));
}

static int run_step(const args *a)
{
    daecl_run r;
    daecl_err err = {0};
    int rc = open_run(&r, a, &err);
    stepper s = {.r = &r};
    if (!rc)
        rc = daecl_session_alloc(r.s, r.steps_per_epoch, "losses", &s.losses, &err);
    if (!rc)
        rc = daecl_feeder_shuffle(r.train_feed, r.cfg->seed, 0, &err);
    double rates[64], full = 0, gemm = 0, elem = 0;
    if (!rc)
        rc = measure(&s, a, RUN_ALL, rates, &full, &err);
    if (!rc && a->split)
        rc = measure(&s, a, RUN_GEMM_ONLY, NULL, &gemm, &err) ||
             measure(&s, a, RUN_ELEMENTWISE_ONLY, NULL, &elem, &err);
    if (rc) {
        daecl_run_close(&r);
        return die(&err);
    }
    double med = median_of(rates, a->windows);
    printf("{\"system\": \"daecl\", ");
    print_model(&r);
    printf("\"examples_per_s\": %.1f, \"step_ms\": %.3f, \"windows\": [", med, full * 1e3);
    for (int w = 0; w < a->windows; w++)
        printf("%s%.1f", w ? ", " : "", rates[w]);
    printf("]");
    if (a->split) {
        double flops = step_gemm_flops(&r.model, r.g->batch_max);
        printf(", \"gemm_ms\": %.3f, \"elementwise_ms\": %.3f, \"overhead_ms\": %.3f, "
               "\"gemm_gflops\": %.1f, \"step_over_gemm\": %.3f",
               gemm * 1e3, elem * 1e3, (full - gemm - elem) * 1e3, flops / gemm / 1e9, full / gemm);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    size_t np = r.model.n_params;
    int state = (r.g->state1 != NULL) + (r.g->state2 != NULL);
    size_t acts = 0;
    for (uint32_t l = 0; l < r.model.n_layers; l++)
        acts += (size_t)r.g->batch_max * r.model.layers[l].out;
    double mib = 1.0 / 1048576.0;
    printf(", \"peak_host_mib\": %.1f, \"peak_device_mib\": %.1f, \"params_mib\": %.2f, "
           "\"grads_mib\": %.2f, \"optim_state_mib\": %.2f, \"activations_mib\": %.2f, "
           "\"train_set_mib\": %.1f, \"resident\": %s}\n",
           (double)ru.ru_maxrss / 1024.0, (double)r.s->device_peak * mib, np * 4 * mib, np * 4 * mib,
           state * np * 4 * mib, acts * 4 * mib,
           (double)r.train->n_rows * r.train->dim * 4 * mib,
           r.train_feed->resident ? "true" : "false");
    daecl_session_free(r.s, s.losses);
    daecl_run_close(&r);
    return 0;
}

/* ---- GEMM throughput at the model's shapes -------------------------------------------- */

static int run_gemm(const args *a)
{
    daecl_run r;
    daecl_err err = {0};
    if (open_run(&r, a, &err))
        return die(&err);
    const daecl_backend_ops *be = real_ops;
    void *ctx = r.s->ctx;
    size_t b = r.g->batch_max, maxw = r.model.max_width;
    daecl_buf *A = NULL, *B = NULL, *C = NULL;
    size_t big = (b > maxw ? b : maxw) * maxw;
    float *ha = NULL, *hb = NULL, *hc = NULL;
    int rc = daecl_session_alloc(r.s, big, "A", &A, &err) ||
             daecl_session_alloc(r.s, big, "B", &B, &err) ||
             daecl_session_alloc(r.s, big, "C", &C, &err);
    if (!rc && a->openblas) {
        ha = calloc(big, 4), hb = calloc(big, 4), hc = calloc(big, 4);
        rc = !ha || !hb || !hc;
        /* The ceiling is OpenBLAS with its own threads on every core (the
         * cpu backend, opened with the run, set it to one thread). */
        openblas_set_num_threads(a->threads ? a->threads : (int)sysconf(_SC_NPROCESSORS_ONLN));
    }
    for (uint32_t l = 0; !rc && l < r.model.n_layers; l++) {
        size_t in = r.model.layers[l].in, out = r.model.layers[l].out;
        /* forward (b, out) = (b, in) W^T; dW (out, in) = dZ^T X; dX (b, in) = dZ W */
        const struct {
            int ta, tb;
            size_t m, n, k;
            const char *what;
        } shapes[3] = {{0, 1, b, out, in, "forward"}, {1, 0, out, in, b, "weight grad"},
                       {0, 0, b, in, out, "input grad"}};
        for (int s = 0; s < 3 && !rc; s++) {
            if (l == 0 && s == 2)
                continue;
            size_t m = shapes[s].m, n = shapes[s].n, k = shapes[s].k;
            size_t lda = shapes[s].ta ? m : k, ldb = shapes[s].tb ? k : n;
            double best = 0, flops = 2.0 * m * n * k;
            for (int rep = 0; rep < 4 && !rc; rep++) {
                int calls = 0;
                double t0 = daecl_now(), t;
                do {
                    if (a->openblas)
                        cblas_sgemm(CblasRowMajor, shapes[s].ta ? CblasTrans : CblasNoTrans,
                                    shapes[s].tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                                    (int)k, 1.0f, ha, (int)lda, hb, (int)ldb, 0.0f, hc, (int)n);
                    else
                        rc = be->gemm(ctx, shapes[s].ta, shapes[s].tb, m, n, k, 1.0f,
                                      daecl_at(A, 0), lda, daecl_at(B, 0), ldb, 0.0f,
                                      daecl_at(C, 0), n, &err);
                    calls++;
                    if (!rc && calls % 4 == 0)
                        rc = be->finish(ctx, &err);
                    t = daecl_now() - t0;
                } while (!rc && (calls % 4 || t < 0.5));
                if (rep > 0 && flops * calls / t > best) /* rep 0 warms up */
                    best = flops * calls / t;
            }
            printf("{\"system\": \"%s\", \"device\": \"%s\", \"layer\": %u, \"op\": \"%s\", "
                   "\"m\": %zu, \"n\": %zu, \"k\": %zu, \"ta\": %d, \"tb\": %d, \"gflops\": %.1f}\n",
                   a->openblas ? "openblas" : r.cfg->backend.name,
                   a->openblas ? "host" : daecl_session_device_name(r.s), l, shapes[s].what, m,
                   n, k, shapes[s].ta, shapes[s].tb, best / 1e9);
        }
    }
    free(ha), free(hb), free(hc);
    daecl_session_free(r.s, A), daecl_session_free(r.s, B), daecl_session_free(r.s, C);
    daecl_run_close(&r);
    return rc ? die(&err) : 0;
}

/* ---- start-up time and epoch time ------------------------------------------------------- */

static int run_start(const args *a)
{
    daecl_run r;
    daecl_err err = {0};
    if (open_run(&r, a, &err))
        return die(&err);
    stepper s = {.r = &r};
    size_t rows;
    float loss;
    double t_open = daecl_now() - t_process_start;
    int rc = daecl_session_alloc(r.s, r.steps_per_epoch, "losses", &s.losses, &err) ||
             daecl_feeder_shuffle(r.train_feed, r.cfg->seed, 0, &err) ||
             steps(&s, 1, &rows, &err) ||
             r.s->be->read(r.s->ctx, s.losses, 0, &loss, sizeof loss, &err);
    double t_first = daecl_now() - t_process_start;
    if (!rc) {
        printf("{\"system\": \"daecl\", ");
        print_model(&r);
        printf("\"open_s\": %.3f, \"first_step_s\": %.3f}\n", t_open, t_first);
    }
    if (r.s)
        daecl_session_free(r.s, s.losses);
    daecl_run_close(&r);
    return rc ? die(&err) : 0;
}

static int run_epoch(const args *a)
{
    daecl_run r;
    daecl_err err = {0};
    if (open_run(&r, a, &err))
        return die(&err);
    stepper s = {.r = &r};
    size_t rows;
    int rc = daecl_session_alloc(r.s, r.steps_per_epoch, "losses", &s.losses, &err) ||
             daecl_feeder_shuffle(r.train_feed, r.cfg->seed, 0, &err) ||
             steps(&s, r.steps_per_epoch, &rows, &err) || r.s->be->finish(r.s->ctx, &err);
    double t0 = daecl_now();
    s.i = r.steps_per_epoch; /* the next call reshuffles: time a whole epoch with it */
    if (!rc)
        rc = steps(&s, r.steps_per_epoch, &rows, &err) || r.s->be->finish(r.s->ctx, &err);
    double t = daecl_now() - t0;
    if (!rc) {
        printf("{\"system\": \"daecl\", ");
        print_model(&r);
        printf("\"train_rows\": %zu, \"epoch_s\": %.3f, \"examples_per_s\": %.1f}\n",
               r.train->n_rows, t, (double)rows / t);
    }
    if (r.s)
        daecl_session_free(r.s, s.losses);
    daecl_run_close(&r);
    return rc ? die(&err) : 0;
}

int main(int argc, char **argv)
{
    t_process_start = daecl_now();
    args a;
    if (parse(argc, argv, &a)) {
        fprintf(stderr, "usage: daecl_bench step|gemm|start|epoch CONFIG [KEY=VALUE ...] "
                        "[--window-s S] [--windows N] [--warmup-s S] [--split] [--openblas [--threads N]]\n");
        return 2;
    }
    daecl_log_set_level(DAECL_LOG_WARN);
    int (*fn)(const args *) = strcmp(a.mode, "step") == 0    ? run_step
                              : strcmp(a.mode, "gemm") == 0  ? run_gemm
                              : strcmp(a.mode, "start") == 0 ? run_start
                              : strcmp(a.mode, "epoch") == 0 ? run_epoch
                                                             : NULL;
    if (!fn) {
        fprintf(stderr, "daecl_bench: unknown mode '%s'\n", a.mode);
        return 2;
    }
    return fn(&a);
}
