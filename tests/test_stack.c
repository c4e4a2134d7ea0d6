/* daecl tests — stacked DAEs (core/stack.c): a greedy stage trains only its
 * layer and its mirror, the layers below bit-identical; a 2-stage run
 * equals stage 1 by hand, then stage 2 by hand on the codes saved to a
 * file; a one-layer stack is ordinary training bit for bit; resume in the
 * middle of stage 2 is bit-identical; fine-tuning moves every layer; the
 * checkpoint names the stage; each stage draws its filters; the refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/draw.h"
#include "core/evaluate.h"
#include "core/pngfile.h"
#include "core/probe.h"
#include "core/run.h"
#include "core/safetensors.h"
#include "core/train.h"
#include "core/walkback.h"
#include "tests/support.h"

#define ROWS 120
#define DIM 16

static char *dir;

/* 120 examples of 16 values in [0, 1]: two prototypes with noise. */
static int setup(void **state)
{
    (void)state;
    dir = test_tmpdir("stack");
    float *x = malloc((size_t)ROWS * DIM * sizeof *x);
    test_fill_uniform(x, (size_t)ROWS * DIM, 5, 0.0f, 1.0f);
    for (size_t i = 0; i < (size_t)ROWS * DIM; i++)
        x[i] = ((i / DIM) % 2 ? (i % DIM < DIM / 2) : (i % DIM >= DIM / 2)) ? 0.7f + 0.3f * x[i]
                                                                          : 0.3f * x[i];
    char path[1200], shape[64];
    snprintf(path, sizeof path, "%s/x.npy", dir);
    snprintf(shape, sizeof shape, "(%d, %d)", ROWS, DIM);
    test_write_npy(path, "<f4", x, (size_t)ROWS * DIM * sizeof *x, shape);
    free(x);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

/* dir/NAME.yaml: 16-8-6 sigmoid stack (or `encoder`), masking noise,
 * Bernoulli decoder, SGD with momentum, batch 25; `extra` appended. */
static void write_config(const char *name, const char *encoder, const char *extra)
{
    char text[4096], path[1300];
    snprintf(text, sizeof text,
             "name: %s\nseed: 9\n"
             "data: {train: x.npy, shape: [4, 4]}\n"
             "model: {encoder: %s, decoder: mirror}\n"
             "corruption: {plugin: masking, p: 0.3}\n"
             "likelihood: bernoulli\n"
             "optimizer: {name: sgd, lr: 0.5, momentum: 0.5}\n"
             "train: {epochs: 2, batch_size: 25, log_every: 0}\n"
             "eval: {denoising: false}\n"
             "backend: {plugin: cpu, threads: 1}\n%s",
             name, encoder, extra);
    snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
    test_write_file(path, text, strlen(text));
}

#define TWO_LAYERS "[{units: 8, activation: sigmoid}, {units: 6, activation: sigmoid}]"

static int train(const char *config, const char *run, const char *const *ov, size_t n,
                 const char *resume, daecl_err *err)
{
    char cfg[1300], out[1300], res[1300];
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", dir, config);
    snprintf(out, sizeof out, "%s/%s", dir, run);
    snprintf(res, sizeof res, "%s/%s", dir, resume ? resume : "");
    daecl_train_opts o = {.config_path = resume ? NULL : cfg, .resume_dir = resume ? res : NULL,
                          .overrides = ov, .n_overrides = n, .out_dir = resume ? NULL : out,
                          .quiet = 1};
    return daecl_train(&o, NULL, 0, err);
}

static daecl_safetensors *checkpoint(const char *run)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/checkpoint.safetensors", dir, run);
    daecl_safetensors *st;
    daecl_err err = {0};
    if (daecl_safetensors_read(path, &st, &err))
        fail_msg("%s: %s", path, err.msg);
    return st;
}

/* max |a - b| over tensor `name` of two checkpoints (0: bit-identical). */
static double tensor_diff(daecl_safetensors *a, daecl_safetensors *b, const char *name,
                          int *identical)
{
    uint32_t na, nb;
    uint64_t sa[8], sb[8];
    const float *ta = daecl_safetensors_get(a, name, &na, sa);
    const float *tb = daecl_safetensors_get(b, name, &nb, sb);
    if (!ta || !tb)
        fail_msg("no tensor %s", name);
    assert_int_equal(na, nb);
    size_t n = 1;
    for (uint32_t i = 0; i < na; i++) {
        assert_int_equal(sa[i], sb[i]);
        n *= sa[i];
    }
    double d = 0;
    for (size_t i = 0; i < n; i++)
        d = fmax(d, fabs((double)ta[i] - tb[i]));
    *identical = memcmp(ta, tb, n * sizeof *ta) == 0;
    return d;
}

static int same_tensor(daecl_safetensors *a, daecl_safetensors *b, const char *name)
{
    int identical;
    tensor_diff(a, b, name, &identical);
    return identical;
}

/* The test_nll_clean of each epoch line of dir/run/metrics.jsonl into v;
 * returns how many. */
static size_t test_nlls(const char *run, double *v, size_t max)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
    char *text = test_read_file(path, NULL);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        const char *at = strstr(line, "\"test_nll_clean\":");
        if (strstr(line, "\"type\":\"epoch\"") && at)
            v[n++] = strtod(at + strlen("\"test_nll_clean\":"), NULL);
    }
    free(text);
    return n;
}

/* ---- the greedy stages ------------------------------------------------------------------ */

static void test_a_stage_trains_only_its_layer_and_mirror(void **state)
{
    (void)state;
    write_config("greedy", TWO_LAYERS, "stack: {greedy: true}\n");
    daecl_err err = {0};
    /* 5 steps an epoch: stop at the end of stage 1 (2 epochs). */
    const char *stage1[] = {"train.max_steps=10"};
    if (train("greedy", "g-stage1", stage1, 1, NULL, &err) ||
        train("greedy", "g-both", NULL, 0, NULL, &err))
        fail_msg("train: %s", err.msg);
    daecl_safetensors *a = checkpoint("g-stage1"), *b = checkpoint("g-both");
    /* Layer 0 and its mirror (the output layer, decoder.1) were stage 1's:
     * stage 2 left them bit-identical; it trained encoder.1 and decoder.0. */
    const char *kept[] = {"encoder.0.weight", "encoder.0.bias", "decoder.1.weight",
                          "decoder.1.bias"};
    const char *moved[] = {"encoder.1.weight", "encoder.1.bias", "decoder.0.weight",
                           "decoder.0.bias"};
    for (size_t i = 0; i < 4; i++) {
        if (!same_tensor(a, b, kept[i]))
            fail_msg("%s changed during stage 2", kept[i]);
        if (same_tensor(a, b, moved[i]))
            fail_msg("%s did not change during stage 2", moved[i]);
    }
    /* Each stage that ended drew its filters in input space. */
    const char *pics[][2] = {{"g-stage1", "stage-1-filters.png"}, {"g-both", "stage-1-filters.png"},
                             {"g-both", "stage-2-filters.png"}};
    for (size_t i = 0; i < 3; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s/%s", dir, pics[i][0], pics[i][1]);
        if (access(path, F_OK) != 0)
            fail_msg("no %s", path);
    }
    char none[1400];
    snprintf(none, sizeof none, "%s/g-stage1/stage-2-filters.png", dir);
    assert_int_not_equal(access(none, F_OK), 0);
    /* The checkpoint says where the run is. */
    assert_non_null(strstr(daecl_safetensors_meta(a, "daecl.stage"), "\"stage\":1"));
    assert_non_null(strstr(daecl_safetensors_meta(b, "daecl.stage"), "\"phase\":\"finetune\""));
    daecl_safetensors_destroy(a);
    daecl_safetensors_destroy(b);
}

/* out (n_out) = act(W (n_out, n_in) in + b), in double. */
static void dense_ref(const float *p, const daecl_dense *ly, const double *in, double *out)
{
    for (uint32_t o = 0; o < ly->out; o++) {
        double z = p[ly->b_off + o];
        for (uint32_t i = 0; i < ly->in; i++)
            z += (double)p[ly->w_off + (size_t)o * ly->in + i] * in[i];
        out[o] = test_act_ref(ly->act, z);
    }
}

/* Depth d runs encoder layers 0..d-1 and their mirrors: depth 1 of the
 * 16-8-6 stack is layer 0 then the output layer, against a double forward
 * written here; depth 2 is the whole forward, bit for bit. Each stage drew
 * its reconstructions at every depth so far: clean plus K rows. */
static void test_each_depth_reconstructs_through_its_mirrors(void **state)
{
    (void)state;
    write_config("depth", TWO_LAYERS, "stack: {greedy: true}\n");
    daecl_err err = {0};
    const char *with_test[] = {"data.test=x.npy"};
    if (train("depth", "depth", with_test, 1, NULL, &err))
        fail_msg("train: %s", err.msg);
    daecl_run r;
    char cfg[1300], ckpt[1400];
    snprintf(cfg, sizeof cfg, "%s/depth.yaml", dir);
    snprintf(ckpt, sizeof ckpt, "%s/depth/checkpoint.safetensors", dir);
    daecl_ckpt_state st;
    if (daecl_run_open(&r, cfg, with_test, 1, &err) ||
        daecl_run_load_checkpoint(&r, ckpt, 1, &st, &err))
        fail_msg("open: %s", err.msg);
    enum { N = 5 };
    const daecl_model *m = &r.model;
    assert_int_equal(m->n_layers, 4);
    daecl_slice x;
    float xs[N * DIM], got[N * DIM], full[N * DIM];
    assert_int_equal(daecl_feeder_sequential(r.test_feed, &err), 0);
    assert_int_equal(daecl_feeder_batch(r.test_feed, 0, N, &x, &err), 0);
    assert_int_equal(daecl_session_read(r.s, x, xs, N * DIM, &err), 0);
    daecl_slice out = daecl_graph_layer_out(r.g, 3);
    assert_int_equal(daecl_graph_forward_depth(r.g, x, N, 1, &err), 0);
    assert_int_equal(daecl_session_read(r.s, out, got, N * DIM, &err), 0);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double in[DIM], h[8], a[DIM];
        for (int j = 0; j < DIM; j++)
            in[j] = xs[i * DIM + j];
        dense_ref(r.params, &m->layers[0], in, h);
        dense_ref(r.params, &m->layers[3], h, a);
        for (int j = 0; j < DIM; j++)
            worst = fmax(worst, fabs(a[j] - got[i * DIM + j]));
    }
    printf("# depth 1 against a double forward: max diff %.3g\n", worst);
    assert_true(worst < 1e-5);
    assert_int_equal(daecl_graph_forward_depth(r.g, x, N, 2, &err), 0);
    assert_int_equal(daecl_session_read(r.s, out, got, N * DIM, &err), 0);
    assert_int_equal(daecl_graph_forward(r.g, x, N, UINT32_MAX, &err), 0);
    assert_int_equal(daecl_session_read(r.s, out, full, N * DIM, &err), 0);
    assert_memory_equal(got, full, sizeof got);
    assert_int_equal(daecl_graph_forward_depth(r.g, x, N, 3, &err), DAECL_EINVAL);
    daecl_run_close(&r);
    /* stage-K-reconstructions.png: K + 1 rows of 4x4 examples */
    for (uint32_t k = 1; k <= 2; k++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/depth/stage-%u-reconstructions.png", dir, k);
        uint8_t *px;
        uint32_t w, h;
        int ch;
        if (daecl_pngfile_read(path, &px, &w, &h, &ch, &err))
            fail_msg("%s: %s", path, err.msg);
        uint32_t tile = 64 / 4; /* core/draw.c's scale of a 4x4 image */
        assert_int_equal(h, (k + 1) * (4 * tile + DAECL_PICTURE_GAP) + DAECL_PICTURE_GAP);
        free(px);
    }
}

/* ---- by hand -------------------------------------------------------------------------------- */

/* Copies one layer's W and b between parameter arrays of two models. */
static void copy_layer(float *dst, const daecl_dense *dl, const float *src, const daecl_dense *sl)
{
    assert_int_equal(dl->in, sl->in);
    assert_int_equal(dl->out, sl->out);
    memcpy(dst + dl->w_off, src + sl->w_off, (size_t)dl->in * dl->out * sizeof *dst);
    memcpy(dst + dl->b_off, src + sl->b_off, dl->out * sizeof *dst);
}

/* Trains the one-layer DAE of config `name` (on its own data) for `epochs`
 * epochs from the deep model's layers `enc` and `mirror` of deep params p,
 * in noise-key stage `stage`, with the ordinary step's ops; returns the
 * open run (the caller closes it). */
static void by_hand(daecl_run *r, const char *name, const daecl_model *deep, const float *p,
                    uint32_t enc, uint32_t mirror, uint32_t stage, uint32_t epochs)
{
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/%s.yaml", dir, name);
    daecl_err err = {0};
    if (daecl_run_open(r, cfg, NULL, 0, &err))
        fail_msg("open %s: %s", name, err.msg);
    copy_layer(r->params, &r->model.layers[0], p, &deep->layers[enc]);
    copy_layer(r->params, &r->model.layers[1], p, &deep->layers[mirror]);
    assert_int_equal(daecl_graph_set_params(r->g, r->params, &err), 0);
    daecl_buf *loss;
    assert_int_equal(daecl_session_alloc(r->s, 1, "loss", &loss, &err), 0);
    size_t b = r->g->batch_max, n_rows = r->train->n_rows;
    uint64_t t = 0;
    for (uint32_t e = 0; e < epochs; e++) {
        assert_int_equal(daecl_feeder_shuffle_stage(r->train_feed, r->cfg->seed, stage, e, &err),
                         0);
        for (size_t first = 0; first < n_rows; first += b) {
            size_t n = n_rows - first < b ? n_rows - first : b;
            daecl_pairs pr;
            if (daecl_pairs_loss(r->g, NULL, r->train_feed, r->train, r->cfg, stage, e, first, n,
                                 daecl_at(loss, 0), 0, &pr, &err) ||
                daecl_graph_backward_update(r->g, pr.in, n, r->cfg, ++t, &err))
                fail_msg("step: %s", err.msg);
        }
    }
    daecl_session_free(r->s, loss);
    assert_int_equal(daecl_run_fetch_params(r, &err), 0);
}

static void test_two_stages_equal_each_stage_by_hand_on_saved_codes(void **state)
{
    (void)state;
    write_config("two", TWO_LAYERS,
                 "stack: {greedy: true, stages: [{}, {corruption.p: 0.1, train.epochs: 3}]}\n");
    daecl_err err = {0};
    const char *with_test[] = {"data.test=x.npy"};
    if (train("two", "two", with_test, 1, NULL, &err))
        fail_msg("train: %s", err.msg);
    /* The deep model's initial parameters: the stack starts from them. */
    daecl_run deep;
    char cfg[1300];
    snprintf(cfg, sizeof cfg, "%s/two.yaml", dir);
    if (daecl_run_open(&deep, cfg, NULL, 0, &err))
        fail_msg("open: %s", err.msg);
    /* Stage 1 by hand: the one-layer DAE of layer 0, stage 0 of the key. */
    write_config("hand1", "[{units: 8, activation: sigmoid}]", "");
    daecl_run r1;
    by_hand(&r1, "hand1", &deep.model, deep.params, 0, 3, 0, 2);
    /* Its clean codes of the training set, in file order, to a file. */
    float *codes;
    size_t width;
    assert_int_equal(daecl_feeder_sequential(r1.train_feed, &err), 0);
    assert_int_equal(daecl_probe_features(r1.g, r1.train_feed, 0, &codes, &width, &err), 0);
    assert_int_equal(width, 8);
    char path[1300], shape[64];
    snprintf(path, sizeof path, "%s/codes.npy", dir);
    snprintf(shape, sizeof shape, "(%d, 8)", ROWS);
    test_write_npy(path, "<f4", codes, (size_t)ROWS * 8 * sizeof *codes, shape);
    free(codes);
    /* Stage 2 by hand on that file, in stage 1 of the key. */
    char text[2048];
    snprintf(text, sizeof text,
             "name: hand2\nseed: 9\ndata: {train: codes.npy, test: codes.npy}\n"
             "model: {encoder: [{units: 6, activation: sigmoid}], decoder: mirror}\n"
             "corruption: {plugin: masking, p: 0.1}\nlikelihood: bernoulli\n"
             "optimizer: {name: sgd, lr: 0.5, momentum: 0.5}\n"
             "train: {epochs: 3, batch_size: 25}\nbackend: {plugin: cpu, threads: 1}\n");
    snprintf(path, sizeof path, "%s/hand2.yaml", dir);
    test_write_file(path, text, strlen(text));
    daecl_run r2;
    by_hand(&r2, "hand2", &deep.model, deep.params, 1, 2, 1, 3);

    daecl_safetensors *s = checkpoint("two");
    const struct {
        const char *name;
        daecl_run *r;
        uint32_t layer;
        int weight;
    } want[] = {{"encoder.0.weight", &r1, 0, 1}, {"encoder.0.bias", &r1, 0, 0},
                {"decoder.1.weight", &r1, 1, 1}, {"decoder.1.bias", &r1, 1, 0},
                {"encoder.1.weight", &r2, 0, 1}, {"encoder.1.bias", &r2, 0, 0},
                {"decoder.0.weight", &r2, 1, 1}, {"decoder.0.bias", &r2, 1, 0}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint32_t nd;
        uint64_t sh[8];
        const float *got = daecl_safetensors_get(s, want[i].name, &nd, sh);
        assert_non_null(got);
        const daecl_dense *ly = &want[i].r->model.layers[want[i].layer];
        const float *ref = want[i].r->params + (want[i].weight ? ly->w_off : ly->b_off);
        size_t n = want[i].weight ? (size_t)ly->in * ly->out : ly->out;
        double d = 0, m = 0;
        for (size_t j = 0; j < n; j++) {
            d = fmax(d, fabs((double)got[j] - ref[j]));
            m = fmax(m, fabs((double)ref[j]));
        }
        printf("# %s: max|stack - by hand| = %.3g (max |w| %.3g)\n", want[i].name, d, m);
        if (d > 1e-5 * fmax(1.0, m))
            fail_msg("%s differs from the stage trained by hand by %g", want[i].name, d);
    }
    daecl_safetensors_destroy(s);
    /* Stage 2's test NLL, each epoch, is its DAE's on the codes of the test
     * set: the last one against the stage trained by hand, on the codes in
     * a file (clean: the corrupted one draws in another stage of the key). */
    double nll[16];
    size_t n_epochs = test_nlls("two", nll, 16);
    assert_int_equal(n_epochs, 6); /* untrained, 2 epochs of stage 1, 3 of stage 2 */
    daecl_eval_result res;
    assert_int_equal(daecl_eval_test_set(r2.g, r2.test_feed, 9, 0, &res, &err), 0);
    printf("# stage 2's last test NLL %.9g, by hand %.9g\n", nll[5], res.nll_clean);
    assert_close(nll[5], res.nll_clean, 1e-5);
    assert_true(fabs(nll[5] - nll[2]) > 1e-3); /* stage 2 reports its own, not stage 1's */
    daecl_run_close(&r1);
    daecl_run_close(&r2);
    daecl_run_close(&deep);
}

/* ---- whole runs --------------------------------------------------------------------------- */

static void test_a_one_layer_stack_is_ordinary_training(void **state)
{
    (void)state;
    write_config("one", "[{units: 8, activation: sigmoid}]", "");
    daecl_err err = {0};
    const char *plain[] = {"data.test=x.npy"};
    const char *greedy[] = {"data.test=x.npy", "stack.greedy=true"};
    if (train("one", "one-plain", plain, 1, NULL, &err) ||
        train("one", "one-stack", greedy, 2, NULL, &err))
        fail_msg("train: %s", err.msg);
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/one-plain", dir);
    snprintf(b, sizeof b, "%s/one-stack", dir);
    test_same_checkpoints(a, b);
    /* The stage's own evaluation is the ordinary one for its one layer. */
    double va[8], vb[8];
    size_t na = test_nlls("one-plain", va, 8), nb = test_nlls("one-stack", vb, 8);
    assert_int_equal(na, 3);
    assert_int_equal(nb, 3);
    for (size_t i = 0; i < na; i++)
        if (va[i] != vb[i])
            fail_msg("epoch %zu: test NLL %.17g, stacked %.17g", i, va[i], vb[i]);
}

static void test_resume_in_stage_2_is_bit_identical(void **state)
{
    (void)state;
    write_config("res", TWO_LAYERS,
                 "stack: {greedy: true, finetune_epochs: 1, stages: [{}, {train.epochs: 3}]}\n");
    daecl_err err = {0};
    if (train("res", "res-whole", NULL, 0, NULL, &err))
        fail_msg("whole: %s", err.msg);
    /* Stage 2 runs epochs 3-5 (steps 11-25): stop at step 17, checkpoint
     * every 3 steps. */
    const char *stop[] = {"train.max_steps=17", "train.checkpoint_unit=step",
                          "train.checkpoint_every=3"};
    if (train("res", "res-split", stop, 3, NULL, &err))
        fail_msg("split: %s", err.msg);
    /* A stack's stages take train.epochs: it may not change on resume. */
    const char *epochs[] = {"train.max_steps=0", "train.epochs=3"};
    assert_int_not_equal(train("res", "", epochs, 2, "res-split", &err), 0);
    assert_non_null(strstr(err.msg, "train.epochs"));
    const char *go[] = {"train.max_steps=0"};
    daecl_err_clear(&err);
    if (train("res", "", go, 1, "res-split", &err))
        fail_msg("resume: %s", err.msg);
    char a[1300], b[1300];
    snprintf(a, sizeof a, "%s/res-whole", dir);
    snprintf(b, sizeof b, "%s/res-split", dir);
    test_same_checkpoints(a, b);
    /* Fine-tuning moved the layers the greedy stages had left. */
    const char *greedy_only[] = {"stack.finetune_epochs=0"};
    if (train("res", "res-greedy", greedy_only, 1, NULL, &err))
        fail_msg("greedy: %s", err.msg);
    daecl_safetensors *g = checkpoint("res-greedy"), *w = checkpoint("res-whole");
    assert_false(same_tensor(g, w, "encoder.0.weight"));
    assert_false(same_tensor(g, w, "decoder.0.weight"));
    daecl_safetensors_destroy(g);
    daecl_safetensors_destroy(w);
}

/* Each phase is its own optimiser's run: the cosine schedule starts again
 * at each stage's (and the fine-tuning's) rate and ends at lr_min with it. */
static void test_the_schedule_restarts_with_each_phase(void **state)
{
    (void)state;
    write_config("sched", TWO_LAYERS,
                 "stack: {greedy: true, finetune_epochs: 1, "
                 "stages: [{}, {train.epochs: 3, optimizer.lr: 0.2}]}\n");
    const char *cosine[] = {"optimizer.schedule=cosine", "optimizer.lr_min=0.05"};
    daecl_err err = {0};
    if (train("sched", "sched", cosine, 2, NULL, &err))
        fail_msg("train: %s", err.msg);
    char run[1300];
    snprintf(run, sizeof run, "%s/sched", dir);
    double lr[16];
    assert_int_equal(test_epoch_values(run, "lr", lr, 16), 6);
    /* 120 rows in batches of 25: 5 steps an epoch; each epoch's last step */
    const double pi = acos(-1.0);
    const double base[6] = {0.5, 0.5, 0.2, 0.2, 0.2, 0.5};
    const double pos[6] = {4, 9, 4, 9, 14, 4}, len[6] = {10, 10, 15, 15, 15, 5};
    for (int e = 0; e < 6; e++) {
        double want = 0.05 + (base[e] - 0.05) * (1 + cos(pi * pos[e] / len[e])) / 2;
        if (fabs(lr[e] - want) > 1e-12)
            fail_msg("epoch %d: lr %.17g, want %.17g", e + 1, lr[e], want);
    }
}

static void refused(const char *encoder, const char *extra, const char *want)
{
    write_config("bad", encoder, extra);
    daecl_err err = {0};
    if (train("bad", "bad", NULL, 0, NULL, &err) == 0)
        fail_msg("trained, though %s", want);
    if (!strstr(err.msg, want))
        fail_msg("'%s' does not say '%s'", err.msg, want);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("[{units: 8, activation: tanh}, {units: 6, activation: sigmoid}]",
            "stack: {greedy: true}\n", "reconstructs the tanh codes of encoder layer 0");
    refused(TWO_LAYERS, "stack: {greedy: true, stages: [{}, {}, {}]}\n", "lists 3 stages");
    refused(TWO_LAYERS, "stack: {greedy: true, stages: [{model.encoder: []}]}\n",
            "cannot change 'model.encoder'");
    refused(TWO_LAYERS, "stack: {greedy: true, stages: [{optimizer.name: adam}]}\n",
            "cannot change 'optimizer.name'");
    refused(TWO_LAYERS, "stack: {stages: [{}]}\n", "stack.greedy is off");
    refused(TWO_LAYERS, "stack: {greedy: true, stages: [{}, {corruption.p: 7}]}\n",
            "stack.stages.1");
    refused(TWO_LAYERS, "stack: {greedy: true, stages: [{}, {likelihood: gaussian_learned}]}\n",
            "parameters per value");
    write_config("bad", TWO_LAYERS, "stack: {greedy: true}\n");
    daecl_err err = {0};
    const char *dec[] = {"model.decoder=[{units: 5}]"};
    assert_int_not_equal(train("bad", "bad2", dec, 1, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "model.decoder: mirror"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_stage_trains_only_its_layer_and_mirror),
        cmocka_unit_test(test_two_stages_equal_each_stage_by_hand_on_saved_codes),
        cmocka_unit_test(test_each_depth_reconstructs_through_its_mirrors),
        cmocka_unit_test(test_a_one_layer_stack_is_ordinary_training),
        cmocka_unit_test(test_resume_in_stage_2_is_bit_identical),
        cmocka_unit_test(test_the_schedule_restarts_with_each_phase),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
