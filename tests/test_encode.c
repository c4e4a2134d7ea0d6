/* daecl tests — `daecl encode` (core/encode.c): the codes of every encoder
 * layer against a double-precision reference computed here from the
 * checkpoint's tensors, the .npy files' headers, --layer, the run's own
 * sets, cpu against opencl, the refusals, and the command's lines and exit
 * statuses. One small trained run serves every test: 16 inputs, an encoder
 * of 6 relu, 5 tanh, 4 sigmoid and 3 linear units, so each activation is
 * checked. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/encode.h"
#include "core/safetensors.h"
#include "core/train.h"
#include "tests/support.h"

enum { N_ROWS = 23, DIM = 16, N_LAYERS = 4 }; /* 23 rows: one batch of 15 and a part */
static const size_t units[N_LAYERS] = {6, 5, 4, 3};
static const char *const acts[N_LAYERS] = {"relu", "tanh", "sigmoid", "linear"};

static char *dir;          /* the experiment folder */
static char run_dir[1200]; /* dir/run: trained on cpu */
static char data[1200];    /* dir/x.npy: N_ROWS examples of DIM values */
static char narrow[1200];  /* dir/narrow.npy: examples of DIM - 1 values */
static float x[N_ROWS * DIM];

static int setup(void **state)
{
    (void)state;
    dir = test_small_experiment("encode", "", "{plugin: cpu, threads: 1}");
    char cfg[1200], text[1024];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(text, sizeof text,
             "data: {train: data.idx, test: data.idx, test_limit: 30}\n"
             "model: {encoder: [{units: 6, activation: relu}, {units: 5, activation: tanh},\n"
             "                  {units: 4, activation: sigmoid}, {units: 3, activation: linear}]}\n"
             "corruption: {plugin: gaussian, sigma: 0.2}\n"
             "likelihood: bernoulli\n"
             "optimizer: {name: adam, lr: 0.01}\n"
             "train: {epochs: 3, batch_size: 15, log_every: 0}\n"
             "backend: {plugin: cpu, threads: 1}\n");
    test_write_file(cfg, text, strlen(text));
    test_fill_uniform(x, N_ROWS * DIM, 11, -0.5f, 1.5f);
    snprintf(data, sizeof data, "%s/x.npy", dir);
    test_write_npy(data, "<f4", x, sizeof x, "(23, 16)");
    snprintf(narrow, sizeof narrow, "%s/narrow.npy", dir);
    test_write_npy(narrow, "<f4", x, 20 * (DIM - 1) * sizeof *x, "(20, 15)");
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    return test_train_setup(cfg, run_dir);
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

/* The options for encoding `what` into dir/out. */
static daecl_encode_opts opts(const char *what, const char *out)
{
    static char path[8][1300];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, out);
    return (daecl_encode_opts){.run_dir = run_dir, .data = what, .out_dir = p};
}

static void encode(const daecl_encode_opts *o)
{
    daecl_err err = {0};
    if (daecl_encode_run(o, &err))
        fail_msg("encode into %s: %s", o->out_dir, err.msg);
}

/* The codes in out/codes-<name>-layer<l>.npy (malloc'd), after checking
 * its header: float32, C order, shape (rows, units[l]). */
static float *read_codes(const char *out, const char *name, int l, size_t rows)
{
    char path[1500], want[64];
    snprintf(path, sizeof path, "%s/codes-%s-layer%d.npy", out, name, l);
    size_t bytes;
    char *file = test_read_file(path, &bytes);
    assert_true(bytes > 10);
    assert_memory_equal(file, "\x93NUMPY\x01\x00", 8);
    size_t header = 10 + (size_t)(unsigned char)file[8] + 256u * (unsigned char)file[9];
    assert_int_equal(header % 64, 0);
    assert_int_equal(file[header - 1], '\n');
    snprintf(want, sizeof want, "'shape': (%zu, %zu)", rows, units[l]);
    if (!strstr(file + 10, "'descr': '<f4'") || !strstr(file + 10, "'fortran_order': False") ||
        !strstr(file + 10, want))
        fail_msg("%s: header %.*s, wanted <f4, C order and %s", path, (int)(header - 10),
                 file + 10, want);
    assert_int_equal(bytes - header, rows * units[l] * sizeof(float));
    float *codes = malloc(bytes - header);
    memcpy(codes, file + header, bytes - header);
    free(file);
    return codes;
}

static double act(const char *name, double z)
{
    if (strcmp(name, "tanh") == 0)
        return tanh(z);
    if (strcmp(name, "sigmoid") == 0)
        return 1 / (1 + exp(-z));
    if (strcmp(name, "relu") == 0)
        return z > 0 ? z : 0;
    return z;
}

/* ref[l] (rows, units[l]) in double: h_l = act_l(h_{l-1} W_l^T + b_l) with
 * W_l (out, in) and b_l read from the run's checkpoint. */
static void reference(const float *in, size_t rows, double *ref[N_LAYERS])
{
    char path[1300];
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", run_dir);
    daecl_safetensors *st = NULL;
    daecl_err err = {0};
    if (daecl_safetensors_read(path, &st, &err))
        fail_msg("%s", err.msg);
    size_t n_in = DIM;
    double *in_d = malloc(rows * DIM * sizeof *in_d), *prev = in_d;
    for (size_t i = 0; i < rows * DIM; i++)
        in_d[i] = in[i];
    for (int l = 0; l < N_LAYERS; l++) {
        char name[64];
        uint32_t ndim;
        uint64_t shape[DAECL_ST_MAX_DIMS];
        snprintf(name, sizeof name, "encoder.%d.weight", l);
        const float *w = daecl_safetensors_get(st, name, &ndim, shape);
        assert_non_null(w);
        assert_int_equal(ndim, 2);
        assert_int_equal(shape[0], units[l]);
        assert_int_equal(shape[1], n_in);
        snprintf(name, sizeof name, "encoder.%d.bias", l);
        const float *b = daecl_safetensors_get(st, name, &ndim, shape);
        assert_non_null(b);
        ref[l] = malloc(rows * units[l] * sizeof *ref[l]);
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < units[l]; j++) {
                double z = b[j];
                for (size_t k = 0; k < n_in; k++)
                    z += prev[r * n_in + k] * (double)w[j * n_in + k];
                ref[l][r * units[l] + j] = act(acts[l], z);
            }
        prev = ref[l];
        n_in = units[l];
    }
    free(in_d);
    daecl_safetensors_destroy(st);
}

/* Every layer's codes in out/codes-<name>-layer<l>.npy against the
 * reference for the rows of `in`; returns the largest difference. */
static double check_layers(const char *out, const char *name, const float *in, size_t rows)
{
    double *ref[N_LAYERS], worst = 0;
    reference(in, rows, ref);
    for (int l = 0; l < N_LAYERS; l++) {
        float *codes = read_codes(out, name, l, rows);
        for (size_t i = 0; i < rows * units[l]; i++) {
            double d = fabs(codes[i] - ref[l][i]) / fmax(1, fabs(ref[l][i]));
            if (d > 1e-5)
                fail_msg("%s layer %d (%s) value %zu: %.9g, reference %.9g", name, l, acts[l],
                         i, codes[i], ref[l][i]);
            worst = fmax(worst, d);
        }
        free(codes);
        free(ref[l]);
    }
    return worst;
}

static void test_every_layers_codes_match_a_double_precision_reference(void **state)
{
    (void)state;
    daecl_encode_opts o = opts(data, "all");
    encode(&o);
    check_layers(o.out_dir, "x", x, N_ROWS);
    char first[64];
    assert_int_equal(test_count_entries(o.out_dir, first, sizeof first), N_LAYERS);
    /* the relu layer is neither all zero nor all positive: a real check */
    float *relu = read_codes(o.out_dir, "x", 0, N_ROWS);
    size_t zeros = 0;
    for (size_t i = 0; i < N_ROWS * units[0]; i++)
        zeros += relu[i] == 0;
    free(relu);
    assert_true(zeros > 0 && zeros < N_ROWS * units[0]);
}

/* The run's test set (its first 30 examples, data.test_limit) by default
 * and by name, its training set by name: the IDX bytes scaled to [0, 1]. */
static void test_the_runs_own_sets_by_default_and_by_name(void **state)
{
    (void)state;
    char path[1300];
    snprintf(path, sizeof path, "%s/data.idx", dir);
    size_t bytes;
    unsigned char *idx = (unsigned char *)test_read_file(path, &bytes);
    assert_int_equal(bytes, 12 + 100 * DIM);
    float *all = malloc(100 * DIM * sizeof *all);
    for (size_t i = 0; i < 100 * DIM; i++)
        all[i] = idx[12 + i] / 255.0f;
    free(idx);
    daecl_encode_opts d = opts(NULL, "default"), t = opts("test", "test"),
                      tr = opts("train", "train");
    encode(&d);
    encode(&t);
    encode(&tr);
    check_layers(d.out_dir, "test", all, 30);
    check_layers(t.out_dir, "test", all, 30);
    check_layers(tr.out_dir, "train", all, 100);
    /* With a validation set, train and valid are the rows either side of
     * the split. */
    const char *split[] = {"data.valid_fraction=0.2"};
    daecl_encode_opts v = opts("valid", "valid"), vt = opts("train", "valid-train");
    v.overrides = vt.overrides = split;
    v.n_overrides = vt.n_overrides = 1;
    encode(&v);
    encode(&vt);
    check_layers(v.out_dir, "valid", all + 80 * DIM, 20);
    check_layers(vt.out_dir, "train", all, 80);
    daecl_encode_opts none = opts("valid", "none");
    daecl_err err = {0};
    assert_int_equal(daecl_encode_run(&none, &err), DAECL_EUSAGE);
    assert_non_null(strstr(err.msg, "no validation set"));
    free(all);
}

static void test_layer_selects_one_file(void **state)
{
    (void)state;
    daecl_encode_opts o = opts(data, "layer2");
    o.has_layer = 1;
    o.layer = 2;
    encode(&o);
    char first[64];
    assert_int_equal(test_count_entries(o.out_dir, first, sizeof first), 1);
    assert_string_equal(first, "codes-x-layer2.npy");
    float *codes = read_codes(o.out_dir, "x", 2, N_ROWS);
    daecl_encode_opts all = opts(data, "all-again");
    encode(&all);
    float *same = read_codes(all.out_dir, "x", 2, N_ROWS);
    assert_memory_equal(codes, same, N_ROWS * units[2] * sizeof *codes);
    free(codes);
    free(same);
}

static void refused(daecl_encode_opts *o, const char *sentence)
{
    daecl_err err = {0};
    int rc = daecl_encode_run(o, &err);
    if (rc != DAECL_EUSAGE || !strstr(err.msg, sentence))
        fail_msg("status %d, '%s'; wanted DAECL_EUSAGE and '%s'", rc, err.msg, sentence);
    assert_int_equal(test_count_entries(o->out_dir, NULL, 0), -1); /* nothing made */
}

static void test_refusals_name_the_problem(void **state)
{
    (void)state;
    daecl_encode_opts o = opts(narrow, "narrow");
    refused(&o, "holds 15 values per example but run");
    o = opts(data, "layer4");
    o.has_layer = 1;
    o.layer = 4;
    refused(&o, "--layer 4 is past the encoder of run");
    o = opts("no-such-file.npy", "missing");
    refused(&o, "no-such-file.npy");
    o = opts(data, "no-run");
    char gone[1300];
    snprintf(gone, sizeof gone, "%s/no-run-here", dir);
    o.run_dir = gone;
    refused(&o, "does not exist");
}

/* The same codes on both backends, up to the order of GEMM sums. */
static void test_cpu_and_opencl_codes_agree(void **state)
{
    (void)state;
    if (!DAECL_TEST_WITH_OPENCL)
        skip();
    const char *cl[] = {"backend={plugin: opencl, index: 0}"};
    daecl_encode_opts c = opts(data, "cpu"), g = opts(data, "opencl");
    g.overrides = cl;
    g.n_overrides = 1;
    encode(&c);
    encode(&g);
    for (int l = 0; l < N_LAYERS; l++) {
        float *a = read_codes(c.out_dir, "x", l, N_ROWS);
        float *b = read_codes(g.out_dir, "x", l, N_ROWS);
        for (size_t i = 0; i < N_ROWS * units[l]; i++)
            if (fabsf(a[i] - b[i]) > 1e-5f * fmaxf(1, fabsf(a[i])))
                fail_msg("layer %d value %zu: cpu %.9g, opencl %.9g", l, i, a[i], b[i]);
        free(a);
        free(b);
    }
    check_layers(g.out_dir, "x", x, N_ROWS);
}

/* `daecl encode ARGS...` (NULL-terminated after the run folder). */
static int daecl(char **out, const char *run, ...)
{
    char *argv[16] = {DAECL_TEST_BIN, "encode", (char *)run};
    int n = 3;
    va_list ap;
    va_start(ap, run);
    const char *a;
    while (n < 15 && (a = va_arg(ap, const char *)))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return test_run(argv, NULL, out);
}

static void expect(int rc, int want_rc, char *out, const char *want)
{
    if (rc != want_rc || !strstr(out, want))
        fail_msg("daecl encode: exit %d (want %d), output:\n%s\n(wanted '%s')", rc, want_rc, out,
                 want);
    free(out);
}

static void test_the_command_prints_a_line_per_file_and_exits_2_on_bad_input(void **state)
{
    (void)state;
    char out_dir[1300], want[1500], *out = NULL;
    snprintf(out_dir, sizeof out_dir, "%s/cli", dir);
    int rc = daecl(&out, run_dir, "--data", data, "--out", out_dir, NULL);
    for (int l = 0; l < N_LAYERS; l++) {
        snprintf(want, sizeof want, "daecl: wrote %s/codes-x-layer%d.npy (23 x %zu, layer %d)\n",
                 out_dir, l, units[l], l);
        if (rc != 0 || !strstr(out, want))
            fail_msg("exit %d, output:\n%s\n(wanted '%s')", rc, out, want);
    }
    free(out);
    check_layers(out_dir, "x", x, N_ROWS);
    snprintf(out_dir, sizeof out_dir, "%s/cli-quiet", dir);
    rc = daecl(&out, run_dir, "--layer", "3", "--out", out_dir, "--quiet", NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "");
    free(out);
    free(read_codes(out_dir, "test", 3, 30));
    rc = daecl(&out, run_dir, "--layer", "4", NULL);
    expect(rc, 2, out, "--layer 4 is past the encoder of run");
    rc = daecl(&out, run_dir, "--layer", "-1", NULL);
    expect(rc, 2, out, "--layer wants a whole number");
    rc = daecl(&out, run_dir, "--data", narrow, NULL);
    expect(rc, 2, out, "holds 15 values per example but run");
    rc = daecl(&out, run_dir, "--data", "test", "--layr", "1", NULL);
    expect(rc, 2, out, "unknown option '--layr'");
    rc = daecl(&out, "no-such-run", NULL);
    expect(rc, 2, out, "run folder no-such-run does not exist");
    rc = daecl(&out, run_dir, "--data", NULL);
    expect(rc, 2, out, "--data needs a value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layers_codes_match_a_double_precision_reference),
        cmocka_unit_test(test_the_runs_own_sets_by_default_and_by_name),
        cmocka_unit_test(test_layer_selects_one_file),
        cmocka_unit_test(test_refusals_name_the_problem),
        cmocka_unit_test(test_cpu_and_opencl_codes_agree),
        cmocka_unit_test(test_the_command_prints_a_line_per_file_and_exits_2_on_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
