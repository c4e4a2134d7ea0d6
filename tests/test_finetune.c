/* daecl tests — `daecl finetune`: the classifier's gradients against finite
 * differences of a double-precision forward pass written here; fine-tuning
 * learns a small separable labelled set; cpu and opencl agree; a resumed
 * fine-tuning is bit-identical to an uninterrupted one; and what it refuses. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/feeder.h"
#include "core/finetune.h"
#include "core/graph.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "core/session.h"
#include "core/train.h"
#include "tests/support.h"

/* ---- (1) gradients ----------------------------------------------------------------- */

enum { N_ROWS = 4, DIM = 6, N_CLASSES = 3 };

/* Batch-mean softmax cross-entropy of the classifier network m with
 * parameters p on x (N_ROWS, DIM) against labels y. */
static double ref_loss(const daecl_model *m, const double *p, const float *x, const int *y)
{
    double total = 0;
    for (size_t r = 0; r < N_ROWS; r++) {
        double cur[64], next[64];
        for (size_t i = 0; i < DIM; i++)
            cur[i] = x[r * DIM + i];
        for (uint32_t l = 0; l < m->n_layers; l++) {
            const daecl_dense *ly = &m->layers[l];
            for (size_t j = 0; j < ly->out; j++) {
                double z = p[ly->b_off + j];
                for (size_t i = 0; i < ly->in; i++)
                    z += p[ly->w_off + j * ly->in + i] * cur[i];
                next[j] = test_act_ref(ly->act, z);
            }
            memcpy(cur, next, ly->out * sizeof(double));
        }
        double mx = cur[0], sum = 0;
        for (size_t c = 1; c < N_CLASSES; c++)
            mx = fmax(mx, cur[c]);
        for (size_t c = 0; c < N_CLASSES; c++)
            sum += exp(cur[c] - mx);
        total += mx + log(sum) - cur[y[r]];
    }
    return total / N_ROWS;
}

static void check_gradients(const char *act)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "data: {train: unused.idx}\n"
             "model: {encoder: [{units: 5, activation: %s}, {units: 4, activation: %s}]}\n"
             "corruption: none\nlikelihood: bernoulli\nbackend: cpu\n", act, act);
    daecl_err err = {0};
    daecl_config *cfg = NULL;
    if (daecl_config_load_string(yaml, strlen(yaml), "finetune-test", NULL, 0, test_registry(),
                                 &cfg, &err))
        fail_msg("config: %s", err.msg);
    daecl_model dae, m;
    assert_int_equal(daecl_model_init(&dae, cfg, DIM, 1, &err), 0);
    daecl_finetune_model(&dae, N_CLASSES, cfg->optimizer.kind, &m);
    assert_int_equal(m.n_layers, 3);
    assert_string_equal(m.layers[2].name, "classifier");
    daecl_session *s = NULL;
    daecl_graph *g = NULL;
    daecl_buf *xb = NULL, *yb = NULL;
    assert_int_equal(daecl_session_create(cfg, NULL, &s, &err), 0);
    assert_int_equal(daecl_graph_create(s, &m, N_ROWS, 0, cfg->optimizer.kind, 0, &g, &err), 0);
    assert_int_equal(daecl_session_alloc(s, N_ROWS * DIM, "x", &xb, &err), 0);
    assert_int_equal(daecl_session_alloc(s, N_ROWS, "y", &yb, &err), 0);
    size_t np = m.n_params;
    float *pf = malloc(np * sizeof *pf), *grad = malloc(np * sizeof *grad);
    double *pd = malloc(np * sizeof *pd);
    assert_non_null(pf);
    assert_non_null(grad);
    assert_non_null(pd);
    float x[N_ROWS * DIM], yf[N_ROWS];
    int y[N_ROWS] = {2, 0, 1, 2};
    test_fill_uniform(pf, np, 5, -0.9f, 0.9f);
    test_fill_uniform(x, N_ROWS * DIM, 13, 0.0f, 1.0f);
    for (size_t i = 0; i < np; i++)
        pd[i] = pf[i];
    for (size_t r = 0; r < N_ROWS; r++)
        yf[r] = (float)y[r];
    const daecl_backend_ops *be = s->be;
    assert_int_equal(be->write(s->ctx, xb, 0, x, sizeof x, &err), 0);
    assert_int_equal(be->write(s->ctx, yb, 0, yf, sizeof yf, &err), 0);
    assert_int_equal(daecl_graph_set_params(g, pf, &err), 0);
    daecl_slice xs = daecl_at(xb, 0);
    assert_int_equal(daecl_finetune_loss(g, xs, daecl_at(yb, 0), N_ROWS, 1, &err), 0);
    assert_int_equal(daecl_graph_backward(g, xs, N_ROWS, &err), 0);
    assert_int_equal(be->read(s->ctx, g->grads, 0, grad, np * sizeof(float), &err), 0);
    float rows[N_ROWS];
    assert_int_equal(be->read(s->ctx, g->nll, 0, rows, sizeof rows, &err), 0);
    double mean = 0;
    for (size_t r = 0; r < N_ROWS; r++)
        mean += rows[r] / N_ROWS;
    assert_close(mean, ref_loss(&m, pd, x, y), 1e-5);

    size_t nonzero = 0;
    for (size_t i = 0; i < np; i++) {
        double h = 1e-5, keep = pd[i];
        pd[i] = keep + h;
        double up = ref_loss(&m, pd, x, y);
        pd[i] = keep - h;
        double down = ref_loss(&m, pd, x, y);
        pd[i] = keep;
        double fd = (up - down) / (2 * h);
        double rel = fabs(fd - grad[i]) / fmax(1e-3, fmax(fabs(fd), fabs(grad[i])));
        if (rel > 2e-3)
            fail_msg("%s: parameter %zu: graph %.8g, finite differences %.8g", act, i,
                     (double)grad[i], fd);
        nonzero += grad[i] != 0.0f;
    }
    if (strcmp(act, "relu") != 0)
        assert_int_equal(nonzero, np); /* every layer's parameters get a gradient */
    free(pf);
    free(pd);
    free(grad);
    daecl_session_free(s, xb);
    daecl_session_free(s, yb);
    daecl_graph_destroy(g);
    daecl_session_destroy(s);
    daecl_config_destroy(cfg);
}

static void test_classifier_gradients_match_finite_differences(void **state)
{
    (void)state;
    check_gradients("sigmoid");
    check_gradients("tanh");
    check_gradients("relu");
}

/* ---- a small labelled experiment ---------------------------------------------------- */

enum { N_TRAIN = 240, N_TEST = 90, D = 12, C = 3 };

static char *dir;
static char parent[1200];   /* pretrained with labels, cpu */
static char unlabelled[1200]; /* pretrained without labels */

/* Rows of class r % C: the class's prototype plus uniform noise, in [0, 1]. */
static void make_set(float *x, int32_t *y, size_t n, uint64_t seed)
{
    float proto[C * D], noise[N_TRAIN * D];
    test_fill_uniform(proto, C * D, 3, 0.0f, 1.0f);
    test_fill_uniform(noise, n * D, seed, -0.45f, 0.45f);
    for (size_t r = 0; r < n; r++) {
        y[r] = (int32_t)(r * 7 % C);
        for (size_t j = 0; j < D; j++)
            x[r * D + j] = fminf(1.0f, fmaxf(0.0f, proto[y[r] * D + j] + noise[r * D + j]));
    }
}

static void pretrain(const char *cfg_text, const char *name, char *out, size_t n)
{
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", dir, name);
    test_write_file(cfg, cfg_text, strlen(cfg_text));
    snprintf(out, n, "%s/%s", dir, name);
    daecl_train_opts o = {.config_path = cfg, .out_dir = out, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, NULL, 0, &err))
        fail_msg("train %s: %s", name, err.msg);
}

static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir("finetune");
    static float x[N_TRAIN * D];
    static int32_t y[N_TRAIN];
    const char *sets[2] = {"train", "test"};
    size_t rows[2] = {N_TRAIN, N_TEST};
    char path[1300], shape[64];
    for (int k = 0; k < 2; k++) {
        make_set(x, y, rows[k], 17 + k);
        snprintf(path, sizeof path, "%s/%s-x.npy", dir, sets[k]);
        snprintf(shape, sizeof shape, "(%zu, %d)", rows[k], D);
        test_write_npy(path, "<f4", x, rows[k] * D * sizeof *x, shape);
        snprintf(path, sizeof path, "%s/%s-y.npy", dir, sets[k]);
        snprintf(shape, sizeof shape, "(%zu,)", rows[k]);
        test_write_npy(path, "<i4", y, rows[k] * sizeof *y, shape);
    }
    const char *model =
        "model: {encoder: [{units: 8, activation: sigmoid}, {units: 6, activation: sigmoid}]}\n"
        "corruption: {plugin: gaussian, sigma: 0.2}\nlikelihood: bernoulli\n"
        "optimizer: {name: adam, lr: 0.01}\n"
        "train: {epochs: 1, batch_size: 16, log_every: 0}\n"
        "eval: {probe: false, probe_baseline: false}\n"
        "backend: {plugin: cpu, threads: 1}\n";
    char text[2048];
    snprintf(text, sizeof text,
             "data: {train: train-x.npy, test: test-x.npy, train_labels: train-y.npy, "
             "test_labels: test-y.npy}\n%s", model);
    pretrain(text, "parent", parent, sizeof parent);
    snprintf(text, sizeof text, "data: {train: train-x.npy, test: test-x.npy}\n%s", model);
    pretrain(text, "unlabelled", unlabelled, sizeof unlabelled);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

typedef struct record {
    daecl_finetune_epoch e[16];
    size_t n;
    volatile sig_atomic_t *stop; /* set after stop_after's epoch line */
    uint32_t stop_after;
} record;

static void on_epoch(void *ctx, const daecl_finetune_epoch *e)
{
    record *rec = ctx;
    if (rec->n < 16)
        rec->e[rec->n++] = *e;
    if (rec->stop && e->epoch == rec->stop_after)
        *rec->stop = SIGINT;
}

static int finetune(const char *run, int resume, const char *out, const char *const *ov,
                    size_t n_ov, record *rec, volatile sig_atomic_t *stop, daecl_err *err)
{
    daecl_finetune_opts o = {.run_dir = run, .resume = resume, .out_dir = out, .overrides = ov,
                             .n_overrides = n_ov, .stop = stop, .on_epoch = rec ? on_epoch : NULL,
                             .ctx = rec};
    return daecl_finetune_run(&o, NULL, 0, NULL, err);
}

static void test_finetuning_learns_the_labels(void **state)
{
    (void)state;
    char out[1300];
    snprintf(out, sizeof out, "%s/learn", dir);
    const char *ov[] = {"train.epochs=8", "optimizer.lr=0.05"};
    record rec = {0};
    daecl_err err = {0};
    if (finetune(parent, 0, out, ov, 2, &rec, NULL, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(rec.n, 9); /* epoch 0, then 8 */
    double first = rec.e[1].train_accuracy, final = rec.e[8].train_accuracy;
    fprintf(stderr, "train accuracy: epoch 1 %.3f, epoch 8 %.3f; test %.3f -> %.3f\n", first,
            final, rec.e[0].test_accuracy, rec.e[8].test_accuracy);
    assert_true(final >= 0.95);
    assert_true(final >= first + 0.2);
    assert_true(rec.e[8].test_accuracy >= 0.9);
    assert_true(rec.e[8].train_loss < rec.e[1].train_loss);
    /* the folder names its parent, with PyTorch's names and shapes */
    char path[1400];
    snprintf(path, sizeof path, "%s/summary.json", out);
    char *summary = test_read_file(path, NULL);
    assert_non_null(strstr(summary, "\"checkpoint_sha256\""));
    assert_non_null(strstr(summary, "\"test_accuracy\""));
    free(summary);
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    daecl_safetensors *st = NULL;
    assert_int_equal(daecl_safetensors_read(path, &st, &err), 0);
    uint32_t nd;
    uint64_t shape[DAECL_ST_MAX_DIMS];
    assert_non_null(daecl_safetensors_get(st, "classifier.weight", &nd, shape));
    assert_int_equal(nd, 2);
    assert_int_equal(shape[0], C);
    assert_int_equal(shape[1], 6);
    assert_non_null(daecl_safetensors_get(st, "classifier.bias", &nd, shape));
    assert_non_null(daecl_safetensors_get(st, "encoder.1.weight", &nd, shape));
    assert_null(daecl_safetensors_get(st, "decoder.0.weight", &nd, shape));
    daecl_safetensors_destroy(st);
}

/* A parent with a validation set (data.valid_fraction): each epoch's
 * validation accuracy is the test accuracy the same rows get as a test set
 * under a parent trained on the other rows alone (the same weights). */
static void test_the_validation_rows_score_as_a_test_set(void **state)
{
    (void)state;
    static float x[N_TRAIN * D];
    static int32_t y[N_TRAIN];
    make_set(x, y, N_TRAIN, 17); /* the training file's rows, as setup wrote them */
    size_t keep = N_TRAIN * 3 / 4, tail = N_TRAIN - keep;
    char path[1500], shape[64];
    snprintf(path, sizeof path, "%s/tail-x.npy", dir);
    snprintf(shape, sizeof shape, "(%zu, %d)", tail, D);
    test_write_npy(path, "<f4", x + keep * D, tail * D * sizeof *x, shape);
    snprintf(path, sizeof path, "%s/tail-y.npy", dir);
    snprintf(shape, sizeof shape, "(%zu,)", tail);
    test_write_npy(path, "<i4", y + keep, tail * sizeof *y, shape);
    const char *model =
        "model: {encoder: [{units: 8, activation: sigmoid}]}\n"
        "corruption: {plugin: gaussian, sigma: 0.2}\nlikelihood: bernoulli\n"
        "optimizer: {name: adam, lr: 0.01}\n"
        "train: {epochs: 1, batch_size: 16, log_every: 0}\n"
        "eval: {probe: false, probe_baseline: false}\n"
        "backend: {plugin: cpu, threads: 1}\n";
    char text[2048], split[1200], alone[1200];
    snprintf(text, sizeof text,
             "data: {train: train-x.npy, test: test-x.npy, train_labels: train-y.npy, "
             "test_labels: test-y.npy, valid_fraction: 0.25}\n%s", model);
    pretrain(text, "p-split", split, sizeof split);
    snprintf(text, sizeof text,
             "data: {train: train-x.npy, test: tail-x.npy, train_labels: train-y.npy, "
             "test_labels: tail-y.npy, train_limit: %zu}\n%s", keep, model);
    pretrain(text, "p-alone", alone, sizeof alone);
    char out_a[1300], out_b[1300];
    snprintf(out_a, sizeof out_a, "%s/ft-split", dir);
    snprintf(out_b, sizeof out_b, "%s/ft-alone", dir);
    const char *ov[] = {"train.epochs=3", "optimizer.lr=0.05"};
    record a = {0}, b = {0};
    daecl_err err = {0};
    if (finetune(split, 0, out_a, ov, 2, &a, NULL, &err) ||
        finetune(alone, 0, out_b, ov, 2, &b, NULL, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(a.n, 4);
    assert_int_equal(b.n, 4);
    for (size_t i = 0; i < a.n; i++) {
        assert_true(a.e[i].have_valid);
        assert_false(b.e[i].have_valid);
        if (a.e[i].valid_accuracy != b.e[i].test_accuracy ||
            a.e[i].valid_loss != b.e[i].test_loss)
            fail_msg("epoch %zu: validation %.17g / %.17g, the rows as a test set %.17g / %.17g",
                     i, a.e[i].valid_accuracy, a.e[i].valid_loss, b.e[i].test_accuracy,
                     b.e[i].test_loss);
    }
    snprintf(path, sizeof path, "%s/summary.json", out_a);
    char *summary = test_read_file(path, NULL);
    assert_non_null(strstr(summary, "\"valid_accuracy\""));
    free(summary);
}

static void test_cpu_and_opencl_agree(void **state)
{
    (void)state;
    if (!DAECL_TEST_WITH_OPENCL)
        skip();
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/agree-cpu", dir);
    snprintf(b, sizeof b, "%s/agree-opencl", dir);
    const char *ov_a[] = {"train.epochs=1", "optimizer.name=sgd", "optimizer.lr=0.1"};
    const char *ov_b[] = {"train.epochs=1", "optimizer.name=sgd", "optimizer.lr=0.1",
                          "backend=opencl"};
    daecl_err err = {0};
    if (finetune(parent, 0, a, ov_a, 3, NULL, NULL, &err) ||
        finetune(parent, 0, b, ov_b, 4, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    double rel = test_checkpoint_rel_diff(a, b);
    fprintf(stderr, "cpu against opencl after 15 steps: %.3g\n", rel);
    assert_true(rel <= 1e-5);
}

static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/whole", dir);
    snprintf(b, sizeof b, "%s/stopped", dir);
    /* under a cosine schedule, on corrupted inputs: the rates and the noise
     * follow the position, not the process */
    const char *ov[] = {"train.epochs=3", "optimizer.schedule=cosine", "finetune.corrupt=true"};
    daecl_err err = {0};
    record ra = {0};
    if (finetune(parent, 0, a, ov, 3, &ra, NULL, &err))
        fail_msg("%s", err.msg);
    /* 240 rows in batches of 16: 15 steps an epoch; each epoch's last rate */
    for (int e = 1; e <= 3; e++)
        assert_true(fabs(ra.e[e].lr - 0.01 * (1 + cos(acos(-1.0) * (15 * e - 1) / 45)) / 2) <
                    1e-12);
    volatile sig_atomic_t stop = 0;
    record rb = {.stop = &stop, .stop_after = 1};
    /* stops after the first step of epoch 2 */
    assert_int_equal(finetune(parent, 0, b, ov, 3, &rb, &stop, &err), DAECL_EINTR);
    assert_non_null(strstr(err.msg, "--resume"));
    assert_int_equal(rb.n, 2);
    record rc = {0};
    err = (daecl_err){0};
    if (finetune(b, 1, NULL, NULL, 0, &rc, NULL, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(rc.n, 2); /* epochs 2 and 3 */
    test_same_checkpoints(a, b);
    assert_true(ra.e[3].test_accuracy == rc.e[1].test_accuracy);
    assert_true(ra.e[3].train_loss == rc.e[1].train_loss);
    assert_true(ra.e[3].lr == rc.e[1].lr);
    char ea[16], eb[16];
    double nll;
    test_epoch_lines(a, ea, sizeof ea, &nll);
    test_epoch_lines(b, eb, sizeof eb, &nll);
    assert_string_equal(ea, "0123");
    assert_string_equal(eb, "0123");
    /* the shuffles are not the pretraining's: stage 255 of the noise key */
    uint32_t p0[N_TRAIN], p1[N_TRAIN];
    daecl_shuffle_order(p0, N_TRAIN, 42, DAECL_STREAM_SHUFFLE, 0);
    daecl_shuffle_order_stage(p1, N_TRAIN, 42, DAECL_STREAM_SHUFFLE, DAECL_FINETUNE_STAGE, 0);
    assert_true(memcmp(p0, p1, sizeof p0) != 0);
}

/* finetune.corrupt: the classifier trains on corrupted inputs and is
 * scored on clean ones. Under noise far above the data's range (sigma 30
 * on values in [0, 1]) its training accuracy stays near chance, while the
 * same fine-tuning on clean inputs learns the set. */
static void test_corrupt_noises_the_training_inputs_only(void **state)
{
    (void)state;
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/noisy", dir);
    snprintf(b, sizeof b, "%s/clean", dir);
    const char *noisy[] = {"train.epochs=8", "optimizer.lr=0.05", "finetune.corrupt=true",
                           "corruption.sigma=30"};
    const char *clean[] = {"train.epochs=8", "optimizer.lr=0.05", "corruption.sigma=30"};
    record rn = {0}, rc = {0};
    daecl_err err = {0};
    if (finetune(parent, 0, a, noisy, 4, &rn, NULL, &err) ||
        finetune(parent, 0, b, clean, 3, &rc, NULL, &err))
        fail_msg("%s", err.msg);
    fprintf(stderr, "train accuracy after 8 epochs: noisy inputs %.3f, clean %.3f\n",
            rn.e[8].train_accuracy, rc.e[8].train_accuracy);
    assert_true(rn.e[8].train_accuracy < 0.6);
    assert_true(rc.e[8].train_accuracy >= 0.95);
    /* the start is scored on the same clean test rows */
    assert_true(rn.e[0].test_accuracy == rc.e[0].test_accuracy);
}

static void test_refusals(void **state)
{
    (void)state;
    daecl_err err = {0};
    char out[1300], missing[1300];
    snprintf(out, sizeof out, "%s/refused", dir);
    assert_int_equal(finetune(unlabelled, 0, out, NULL, 0, NULL, NULL, &err), DAECL_ECONFIG);
    assert_non_null(strstr(err.msg, "no training labels"));
    snprintf(missing, sizeof missing, "%s/no-such-run", dir);
    err = (daecl_err){0};
    assert_int_equal(finetune(missing, 0, out, NULL, 0, NULL, NULL, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "does not exist"));
    const char *ov[] = {"model.encoder.0.units=3"};
    err = (daecl_err){0};
    assert_int_equal(finetune(parent, 0, out, ov, 1, NULL, NULL, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "model.encoder.0.units"));
    err = (daecl_err){0};
    assert_int_equal(finetune(parent, 1, NULL, NULL, 0, NULL, NULL, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "not a fine-tuning folder"));
    assert_int_equal(test_count_entries(out, NULL, 0), -1); /* nothing was made */
    /* the command: one sentence and exit status 2 */
    char *argv[] = {DAECL_TEST_BIN, "finetune", missing, NULL}, *text = NULL;
    assert_int_equal(test_run(argv, NULL, &text), 2);
    assert_non_null(strstr(text, "does not exist"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classifier_gradients_match_finite_differences),
        cmocka_unit_test(test_finetuning_learns_the_labels),
        cmocka_unit_test(test_the_validation_rows_score_as_a_test_set),
        cmocka_unit_test(test_cpu_and_opencl_agree),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_corrupt_noises_the_training_inputs_only),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
