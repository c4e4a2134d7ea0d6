/* Data parallelism in one process (core/replicas.c): 1 device against 2
 * and 3 replicas sharing the same global batches, evenly and unevenly, on
 * two POCL devices (POCL_DEVICES="pthread pthread") and the cpu backend
 * beside them; the weights after 20 steps of SGD with momentum, of plain
 * SGD (fused on one device, reduced on several), of Adam and of SGD with
 * walkback; the test NLL;
 * replicas bit-identical at a checkpoint, and a divergence caught. The
 * world over MPI ranks is tests/test_mpi_train.c's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/evaluate.h"
#include "core/run.h"
#include "core/safetensors.h"
#include "core/train.h"
#include "tests/support.h"

#define ROWS 362 /* 10 batches of 40 a epoch, the last of 2 rows: fewer than 3 replicas */
#define TEST_ROWS 100
#define DIM 24
#define STEPS 20

/* One device, and two, for the tests below: POCL's two, or in a build
 * without OpenCL two groups of host threads of the cpu backend. */
#define ONE (DAECL_TEST_WITH_OPENCL ? "{plugin: opencl, index: 0}" : "{plugin: cpu, threads: 1}")
#define TWO(share0, share1)                                                                   \
    (DAECL_TEST_WITH_OPENCL ? "[{plugin: opencl, index: 0" share0 "}, {plugin: opencl, index: 1" \
                              share1 "}]"                                                     \
                            : "[{plugin: cpu, threads: 1" share0 "}, {plugin: cpu, threads: 2" \
                              share1 "}]")

static char *dir;
static char train_path[2048], test_path[2048];
/* What train() trains besides its fixed keys: the likelihood section, and
 * keys added to the train section (", key: value, ..."). */
static const char *likelihood = "bernoulli", *train_extra = "";

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir("parallel");
    float *x = malloc((size_t)(ROWS + TEST_ROWS) * DIM * sizeof *x);
    assert_non_null(x);
    /* Structured data a DAE can learn: two prototypes plus noise. */
    test_fill_uniform(x, (size_t)(ROWS + TEST_ROWS) * DIM, 11, 0.0f, 1.0f);
    for (size_t i = 0; i < (size_t)(ROWS + TEST_ROWS) * DIM; i++)
        x[i] = ((i / DIM) % 2 ? (i % DIM < DIM / 2) : (i % DIM >= DIM / 2)) ? 0.8f + 0.2f * x[i]
                                                                          : 0.2f * x[i];
    snprintf(train_path, sizeof train_path, "%s/train.npy", dir);
    snprintf(test_path, sizeof test_path, "%s/test.npy", dir);
    char shape[64];
    snprintf(shape, sizeof shape, "(%d, %d)", ROWS, DIM);
    test_write_npy(train_path, "<f4", x, (size_t)ROWS * DIM * sizeof *x, shape);
    snprintf(shape, sizeof shape, "(%d, %d)", TEST_ROWS, DIM);
    test_write_npy(test_path, "<f4", x + (size_t)ROWS * DIM, (size_t)TEST_ROWS * DIM * sizeof *x,
                   shape);
    free(x);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

/* The experiment at `path` opened as `daecl train` opens it: config,
 * data, the world (one process here), replica 0 and the others. */
static int open_world(const char *path, daecl_run *r, daecl_comm **comm, daecl_err *err)
{
    int rc = daecl_run_configure(r, path, NULL, 0, err);
    if (!rc)
        rc = daecl_run_load_data(r, 0, err);
    if (!rc)
        rc = daecl_comm_open(r->reg, "auto", comm, err);
    if (!rc)
        rc = daecl_run_start_parallel(r, *comm, err);
    return rc;
}

typedef struct result {
    float *params;
    size_t n;
    double test_nll;
    double last_loss;
} result;

/* Trains STEPS steps of the experiment with `optimizer` on `devices` (a
 * YAML flow list for parallel.devices, "[]" for the backend section's one
 * device), straight through the engine's API. */
static void train(const char *optimizer, const char *backend, const char *devices, result *out)
{
    char yaml[12288], path[4200];
    snprintf(yaml, sizeof yaml,
             "name: par\nseed: 5\n"
             "data: {train: %s, test: %s}\n"
             "model: {encoder: [{units: 12, activation: sigmoid}]}\n"
             "corruption: {plugin: masking, p: 0.25}\n"
             "likelihood: %s\n"
             "optimizer: %s\n"
             "train: {epochs: 2, batch_size: 40%s}\n"
             "eval: {probe: false, denoising: false}\n"
             "backend: %s\n"
             "parallel: {devices: %s, measure_steps: 1000}\n",
             train_path, test_path, likelihood, optimizer, train_extra, backend, devices);
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, yaml, strlen(yaml));
    daecl_run r;
    daecl_err err = {0};
    daecl_comm *comm = NULL;
    if (open_world(path, &r, &comm, &err))
        fail_msg("%s: %s", devices, err.msg);
    daecl_buf *losses;
    assert_int_equal(daecl_session_alloc(r.s, STEPS, "losses", &losses, &err), 0);
    size_t spe = r.steps_per_epoch;
    for (uint64_t t = 0; t < STEPS; t++) {
        uint32_t epoch = (uint32_t)(t / spe);
        size_t i = (size_t)(t % spe), rows;
        if (i == 0)
            assert_int_equal(daecl_run_shuffle(&r, epoch, &err), 0);
        if (daecl_run_step(&r, i, epoch, t + 1, daecl_at(losses, t), &rows, &err))
            fail_msg("%s: step %u: %s", devices, (unsigned)t, err.msg);
    }
    float loss[STEPS];
    assert_int_equal(daecl_session_read(r.s, daecl_at(losses, 0), loss, STEPS, &err), 0);
    out->last_loss = loss[STEPS - 1];
    assert_int_equal(daecl_run_fetch_params(&r, &err), 0);
    /* At a checkpoint every replica holds the same bits (resynchronised
     * first where they run on different devices). */
    if (r.rep && daecl_replicas_sync(r.rep, r.params, r.s1, r.s2, &err))
        fail_msg("%s: %s", devices, err.msg);
    daecl_evaluation e;
    assert_int_equal(daecl_evaluate(&r, 0, 0, 0, &e, &err), 0);
    out->test_nll = e.test.nll_clean;
    out->n = r.model.n_params;
    out->params = malloc(out->n * sizeof *out->params);
    assert_non_null(out->params);
    memcpy(out->params, r.params, out->n * sizeof *out->params);
    daecl_session_free(r.s, losses);
    daecl_comm_close(comm); /* before the registry that holds its plugin */
    daecl_run_close(&r);
}

/* max |a - b| / max |a| over the parameters: the measure. */
static double rel_diff(const result *a, const result *b)
{
    double d = 0, m = 0;
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        d = fmax(d, fabs((double)a->params[i] - (double)b->params[i]));
        m = fmax(m, fabs((double)a->params[i]));
    }
    return d / m;
}

static void equivalence(const char *optimizer)
{
    /* Two POCL devices and the cpu backend; a build without OpenCL has the
     * cpu backend's replicas only (groups of host threads). */
    static const char *const opencl_worlds[] = {
        "[{plugin: opencl, index: 0}, {plugin: opencl, index: 1}]",
        "[{plugin: opencl, index: 0, share: 1}, {plugin: opencl, index: 1, share: 3}]",
        "[{plugin: opencl, index: 0}, {plugin: opencl, index: 1}, {plugin: cpu, threads: 1}]",
        "[{plugin: opencl, index: 0, share: 2}, {plugin: opencl, index: 1, share: 1}, "
        "{plugin: cpu, threads: 1, share: 1}]",
    };
    static const char *const cpu_worlds[] = {
        "[{plugin: cpu, threads: 1}, {plugin: cpu, threads: 2}]",
        "[{plugin: cpu, threads: 1, share: 1}, {plugin: cpu, threads: 2, share: 3}]",
        "[{plugin: cpu, threads: 1}, {plugin: cpu, threads: 2}, {plugin: cpu, threads: 3}]",
    };
    const char *const *worlds = DAECL_TEST_WITH_OPENCL ? opencl_worlds : cpu_worlds;
    size_t n_worlds = DAECL_TEST_WITH_OPENCL ? sizeof opencl_worlds / sizeof opencl_worlds[0]
                                             : sizeof cpu_worlds / sizeof cpu_worlds[0];
    const char *backend = DAECL_TEST_WITH_OPENCL ? "{plugin: opencl, index: 0}"
                                                 : "{plugin: cpu, threads: 1}";
    result one, many;
    train(optimizer, backend, "[]", &one);
    for (size_t w = 0; w < n_worlds; w++) {
        train(optimizer, backend, worlds[w], &many);
        double d = rel_diff(&one, &many);
        double dn = fabs(many.test_nll - one.test_nll) / fabs(one.test_nll);
        printf("# %s on %s: max|dw|/max|w| = %.3g, test NLL %.6f vs %.6f (rel %.3g), last "
               "batch loss %.6f vs %.6f\n", optimizer, worlds[w], d, many.test_nll, one.test_nll,
               dn, many.last_loss, one.last_loss);
        assert_true(d <= 1e-4);
        assert_true(dn <= 1e-3);
        /* the last batch (2 rows) has the same loss sum however it is split */
        assert_close(many.last_loss, one.last_loss, 1e-4);
        free(many.params);
    }
    free(one.params);
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    equivalence("{name: sgd, lr: 0.1, momentum: 0.9}");
}

static void test_plain_sgd(void **state)
{
    (void)state;
    equivalence("{name: sgd, lr: 0.2}");
}

static void test_adam(void **state)
{
    (void)state;
    equivalence("{name: adam, lr: 0.01}");
}

/* Geometric walkback: each replica walks its own rows' chains, and the
 * gradient is the mean over the global batch's pairs. A Gaussian decoder,
 * so no chain's draw flips on a last-bit difference between devices; plain
 * SGD, whose step shows the gradient's scale. */
static void test_walkback(void **state)
{
    (void)state;
    likelihood = "{plugin: gaussian, sigma: 0.5}";
    train_extra = ", walkback: 2, walkback_p: 0.6";
    equivalence("{name: sgd, lr: 0.02}");
    likelihood = "bernoulli";
    train_extra = "";
}

/* The world is refused before step 0 when a device is listed twice or a
 * batch has fewer rows than there are replicas. */
static void test_refusals(void **state)
{
    (void)state;
    char yaml[12288], path[4200];
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    static const struct {
        const char *devices, *batch, *want;
        int opencl;
    } cases[] = {
        {"[{plugin: cpu, threads: 1}, {plugin: cpu, threads: 2}, {plugin: cpu, threads: 3}]",
         "2", "the world has 3 replicas (1 rank) but a global batch has 2 rows", 0},
        {"[{plugin: opencl, index: 0}, {plugin: opencl, index: 7}]", "40",
         "parallel.devices.1: ", 1},
        /* two spellings of one device: the config cannot tell, the world can */
        {"[{plugin: opencl, index: 0}, {plugin: opencl, type: cpu, index: 0}]", "40",
         "are the same device", 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (cases[k].opencl && !DAECL_TEST_WITH_OPENCL)
            continue;
        snprintf(yaml, sizeof yaml,
                 "name: bad\ndata: {train: %s}\nmodel: {encoder: [{units: 4}]}\n"
                 "eval: {probe: false, denoising: false}\n"
                 "train: {batch_size: %s}\nparallel: {devices: %s}\n",
                 train_path, cases[k].batch, cases[k].devices);
        test_write_file(path, yaml, strlen(yaml));
        daecl_run r;
        daecl_comm *comm = NULL;
        daecl_err err = {0};
        int rc = open_world(path, &r, &comm, &err);
        if (!rc || !strstr(err.msg, cases[k].want))
            fail_msg("case %zu: rc %d, '%s' lacks '%s'", k, rc, err.msg, cases[k].want);
        daecl_comm_close(comm); /* before the registry that holds its plugin */
        daecl_run_close(&r);
    }
}

/* A replica whose weights differ is named at the checkpoint. */
static void test_divergence_caught(void **state)
{
    (void)state;
    char yaml[12288], path[4200];
    snprintf(path, sizeof path, "%s/div.yaml", dir);
    snprintf(yaml, sizeof yaml,
             "name: div\ndata: {train: %s}\nmodel: {encoder: [{units: 4}]}\n"
             "eval: {probe: false, denoising: false}\nbackend: %s\n"
             "train: {batch_size: 40}\nparallel: {devices: %s}\n",
             train_path, ONE, TWO("", ""));
    test_write_file(path, yaml, strlen(yaml));
    daecl_run r;
    daecl_comm *comm = NULL;
    daecl_err err = {0};
    assert_int_equal(open_world(path, &r, &comm, &err), 0);
    assert_int_equal(daecl_run_fetch_params(&r, &err), 0);
    assert_int_equal(daecl_replicas_sync(r.rep, r.params, r.s1, r.s2, &err), 0);
    float *other = malloc(r.model.n_params * sizeof *other);
    assert_non_null(other);
    memcpy(other, r.params, r.model.n_params * sizeof *other);
    other[3] += 1e-3f;
    assert_int_equal(daecl_replicas_load(r.rep, other, NULL, NULL, &err), 0);
    assert_int_not_equal(daecl_replicas_sync(r.rep, r.params, r.s1, r.s2, &err), 0);
    if (!strstr(err.msg, "parallel.devices.1") || !strstr(err.msg, "differ"))
        fail_msg("the sentence does not name the replica: %s", err.msg);
    free(other);
    daecl_comm_close(comm); /* before the registry that holds its plugin */
    daecl_run_close(&r);
}

/* daecl ARGS in a child; fails the test unless it exits 0. */
static void cli(const char *const *args)
{
    char *argv[16];
    size_t n = 0;
    argv[n++] = DAECL_TEST_BIN;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    char *out = NULL;
    int rc = test_run(argv, NULL, &out);
    if (rc != 0)
        fail_msg("daecl %s exited %d:\n%s", args[0], rc, out);
    free(out);
}

/* A run checkpointed in the middle of an epoch on two devices with fixed
 * shares resumes bit-identically on the same two, and to rounding on one. */
static void test_resume_worlds(void **state)
{
    (void)state;
    char yaml[12288], cfg[4200], a[4200], b[4200], c[4200];
    snprintf(cfg, sizeof cfg, "%s/resume.yaml", dir);
    snprintf(yaml, sizeof yaml,
             "name: res\nseed: 9\ndata: {train: %s, test: %s}\n"
             "model: {encoder: [{units: 12, activation: tanh}]}\n"
             "corruption: {plugin: gaussian, sigma: 0.2}\nlikelihood: bernoulli\n"
             "optimizer: {name: adam, lr: 0.01}\n"
             "train: {epochs: 2, batch_size: 40, log_every: 0}\n"
             "eval: {probe: false, denoising: false}\n"
             "backend: %s\nparallel: {devices: %s}\n",
             train_path, test_path, ONE, TWO(", share: 1", ", share: 2"));
    test_write_file(cfg, yaml, strlen(yaml));
    snprintf(a, sizeof a, "%s/whole", dir);
    snprintf(b, sizeof b, "%s/same", dir);
    snprintf(c, sizeof c, "%s/other", dir);
    cli((const char *[]){"train", cfg, "--out", a, "--quiet", NULL});
    cli((const char *[]){"train", cfg, "--out", b, "--quiet", "train.max_steps=7", NULL});
    cli((const char *[]){"resume", b, "--quiet", "train.max_steps=0", NULL});
    test_same_checkpoints(a, b);
    cli((const char *[]){"train", cfg, "--out", c, "--quiet", "train.max_steps=7", NULL});
    cli((const char *[]){"resume", c, "--quiet", "train.max_steps=0", "parallel.devices=[]",
                         NULL});
    /* one device sums the batch in another order: rounding only */
    double worst = test_checkpoint_rel_diff(a, c);
    printf("# resumed on one device: max|dw|/max|w| = %.3g against the uninterrupted run\n",
           worst);
    assert_true(worst <= 1e-4);
}

/* The rule that leaves a slow device out, on injected timings: replica 0
 * (the one evaluation reads) measures 100 rows/s beside 100000, so it is
 * left out after its measurement with one warning; training goes on on
 * the other and still matches one device to rounding, and the test NLL
 * comes from current weights. */
static void test_slow_replica_left_out(void **state)
{
    (void)state;
    char yaml[12288], cfg[4200], one[4200], two[4200];
    snprintf(cfg, sizeof cfg, "%s/slow.yaml", dir);
    snprintf(one, sizeof one, "%s/slow-1", dir);
    snprintf(two, sizeof two, "%s/slow-2", dir);
    snprintf(yaml, sizeof yaml,
             "name: slow\nseed: 4\ndata: {train: %s, test: %s}\n"
             "model: {encoder: [{units: 12, activation: sigmoid}]}\n"
             "optimizer: {name: adam, lr: 0.01}\neval: {probe: false, denoising: false}\n"
             "train: {epochs: 2, batch_size: 40, log_every: 0}\nbackend: %s\n"
             "parallel: {measure_steps: 3}\n",
             train_path, test_path, ONE);
    test_write_file(cfg, yaml, strlen(yaml));
    cli((const char *[]){"train", cfg, "--out", one, "--quiet", NULL});
    char devices[512];
    snprintf(devices, sizeof devices, "parallel.devices=%s", TWO("", ""));
    char *argv[] = {DAECL_TEST_BIN, "train", cfg, "--out", two, "--progress=lines", devices,
                    NULL};
    char *env[] = {"DAECL_INJECT_RATES=100,100000", NULL};
    char *out = NULL;
    int rc = test_run(argv, env, &out);
    if (rc != 0 || !strstr(out, "parallel.devices.0 (") || !strstr(out, "is left out: at 100 "
                                                                         "rows/s"))
        fail_msg("exit %d:\n%s", rc, out);
    /* one warning, and replica 1 took the batch from then on */
    assert_null(strstr(strstr(out, "is left out") + 1, "is left out"));
    free(out);
    char pa[8400], pb[8400];
    snprintf(pa, sizeof pa, "%s/summary.json", one);
    snprintf(pb, sizeof pb, "%s/summary.json", two);
    size_t n;
    char *sa = test_read_file(pa, &n), *sb = test_read_file(pb, &n);
    const char *ka = strstr(sa, "\"test_nll_clean\":"), *kb = strstr(sb, "\"test_nll_clean\":");
    assert_non_null(ka);
    assert_non_null(kb);
    double a = strtod(ka + 17, NULL), b = strtod(kb + 17, NULL);
    printf("# a slow replica 0 left out: test NLL %.6f against one device's %.6f\n", b, a);
    assert_true(fabs(a - b) <= 1e-3 * fabs(a));
    free(sa);
    free(sb);
}

/* A loss that becomes NaN on replicas stops training at that step with
 * the single device's sentence (every rank sees the summed loss alike). */
static void test_nan_stops(void **state)
{
    (void)state;
    char yaml[12288], cfg[4200], out[4200];
    snprintf(cfg, sizeof cfg, "%s/nan.yaml", dir);
    snprintf(out, sizeof out, "%s/nan", dir);
    snprintf(yaml, sizeof yaml,
             "name: nan\ndata: {train: %s}\n"
             "model: {encoder: [{units: 8, activation: linear}]}\nlikelihood: gaussian\n"
             "optimizer: {lr: 1.0e+5}\neval: {probe: false, denoising: false}\n"
             "train: {batch_size: 40, log_every: 1}\nbackend: %s\nparallel: {devices: %s}\n",
             train_path, ONE, TWO("", ""));
    test_write_file(cfg, yaml, strlen(yaml));
    daecl_train_opts o = {.config_path = cfg, .out_dir = out, .quiet = 1};
    daecl_err err = {0};
    assert_int_equal(daecl_train(&o, NULL, 0, &err), DAECL_ENAN);
    if (!strstr(err.msg, "NaN or infinite by step") || !strstr(err.msg, "optimizer.lr"))
        fail_msg("%s", err.msg);
}

int main(void)
{
    /* Two OpenCL devices from POCL, before anything opens OpenCL. */
    setenv("POCL_DEVICES", "pthread pthread", 1);
    setenv("POCL_MAX_PTHREAD_COUNT", "1", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_plain_sgd),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_walkback),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_divergence_caught),
        cmocka_unit_test(test_resume_worlds),
        cmocka_unit_test(test_nan_stops),
        cmocka_unit_test(test_slow_replica_left_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
