/* daecl tests — `daecl sample` (core/sample.c): determinism from the seed,
 * cpu against opencl, clamping, and the refusals. One small trained run
 * (tests/support.h: a 16-6-16 tanh DAE, Gaussian corruption, Bernoulli
 * decoder, 4 x 4 "images") serves every test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/run.h"
#include "core/sample.h"
#include "core/train.h"
#include "tests/support.h"

static char *dir;           /* the experiment folder */
static char run_dir[1200];  /* dir/run: trained on cpu */

static int setup(void **state)
{
    (void)state;
    dir = test_small_experiment("sample", "", "{plugin: cpu, threads: 1}");
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    return test_train_setup(cfg, run_dir);
}

static int teardown(void **state)
{
    (void)state;
    test_remove_dir(dir);
    return 0;
}

static daecl_sample_opts opts(const char *out, uint32_t chains, uint32_t steps, uint64_t seed)
{
    static char path[8][1300];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof path[0], "%s/%s", dir, out);
    return (daecl_sample_opts){.run_dir = run_dir, .out_dir = p, .chains = chains,
                               .steps = steps, .thin = 1, .has_seed = 1, .seed = seed};
}

/* Runs the sampler; returns samples.npy's floats (malloc'd) and their count. */
static float *sample(const daecl_sample_opts *o, size_t *n)
{
    daecl_sample_result res;
    daecl_err err = {0};
    if (daecl_sample_run(o, &res, &err))
        fail_msg("sample into %s: %s", o->out_dir, err.msg);
    size_t bytes;
    char *file = test_read_file(res.samples, &bytes);
    size_t header = 10 + (size_t)(unsigned char)file[8] + 256u * (unsigned char)file[9];
    *n = (bytes - header) / sizeof(float);
    assert_int_equal(*n, (size_t)res.kept * res.chains * res.dim);
    float *x = malloc(*n * sizeof *x);
    memcpy(x, file + header, *n * sizeof *x);
    free(file);
    return x;
}

static void test_the_same_seed_draws_the_same_samples_and_another_does_not(void **state)
{
    (void)state;
    daecl_sample_opts a = opts("seed5a", 20, 8, 5), b = opts("seed5b", 20, 8, 5),
                      c = opts("seed6", 20, 8, 6);
    a.burn_in = b.burn_in = c.burn_in = 2;
    a.thin = b.thin = c.thin = 3; /* keeps steps 5 and 8 */
    size_t na, nb, nc;
    float *xa = sample(&a, &na), *xb = sample(&b, &nb), *xc = sample(&c, &nc);
    assert_int_equal(na, 2u * 20 * 16);
    assert_int_equal(nb, na);
    assert_int_equal(nc, na);
    assert_memory_equal(xa, xb, na * sizeof *xa);
    assert_memory_not_equal(xa, xc, na * sizeof *xa);
    /* The chains' noise is keyed by chain and step, not by the batches
     * they run in: another batch size draws the same samples. */
    const char *batch7[] = {"train.batch_size=7"};
    daecl_sample_opts d = opts("seed5-batch7", 20, 8, 5);
    d.burn_in = 2;
    d.thin = 3;
    d.overrides = batch7;
    d.n_overrides = 1;
    size_t nd;
    float *xd = sample(&d, &nd);
    assert_int_equal(nd, na);
    assert_memory_equal(xa, xd, na * sizeof *xa);
    free(xd);
    for (size_t i = 0; i < na; i++) /* Bernoulli draws */
        assert_true(xa[i] == 0.0f || xa[i] == 1.0f);
    char path[1400];
    snprintf(path, sizeof path, "%s/seed5a/samples.npy", dir);
    size_t bytes;
    char *file = test_read_file(path, &bytes);
    assert_true(bytes > 64);
    assert_non_null(strstr(file + 10, "'shape': (2, 20, 16)"));
    free(file);
    snprintf(path, sizeof path, "%s/seed5a", dir);
    char first[64];
    assert_int_equal(test_count_entries(path, first, sizeof first), 3); /* npy and 2 pngs */
    free(xa);
    free(xb);
    free(xc);
}

static void test_clamped_inputs_keep_their_start_values(void **state)
{
    (void)state;
    float mask[16] = {0};
    for (int j = 0; j < 16; j++)
        mask[j] = (j % 4 < 2 || j == 13) ? 1.0f : 0.0f; /* the left half and one more */
    char mask_path[1300];
    snprintf(mask_path, sizeof mask_path, "%s/mask.npy", dir);
    test_write_npy(mask_path, "<f4", mask, sizeof mask, "(4, 4)");
    daecl_sample_opts o = opts("clamped", 12, 6, 1);
    o.clamp_path = mask_path;
    o.start = DAECL_SAMPLE_START_CONST;
    o.start_value = 0.25f;
    size_t n;
    float *x = sample(&o, &n);
    size_t free_at_start = 0;
    for (size_t i = 0; i < n; i++) {
        if (mask[i % 16] != 0)
            assert_true(x[i] == 0.25f);
        else
            free_at_start += x[i] == 0.25f;
    }
    assert_int_equal(free_at_start, 0); /* free inputs are Bernoulli draws */
    free(x);
}

/* dir/all.npy: a uint8 mask that clamps all 16 inputs; its path into path. */
static void clamp_all(char *path, size_t n)
{
    unsigned char ones[16];
    memset(ones, 1, sizeof ones);
    snprintf(path, n, "%s/all.npy", dir);
    test_write_npy(path, "|u1", ones, sizeof ones, "(16,)");
}

/* With every input clamped the chains stay at their start: so the noise
 * start shows itself, uniform over the data's range and fixed by the seed. */
static void test_a_noise_start_is_uniform_over_the_data_range(void **state)
{
    (void)state;
    char mask_path[1300];
    clamp_all(mask_path, sizeof mask_path);
    daecl_sample_opts a = opts("noise-a", 50, 2, 9), b = opts("noise-b", 50, 2, 9);
    a.clamp_path = b.clamp_path = mask_path;
    a.start = b.start = DAECL_SAMPLE_START_NOISE;
    size_t na, nb;
    float *xa = sample(&a, &na), *xb = sample(&b, &nb);
    assert_int_equal(na, 2u * 50 * 16);
    assert_memory_equal(xa, xb, na * sizeof *xa);
    assert_memory_equal(xa, xa + 50 * 16, 50 * 16 * sizeof *xa); /* step 1 = step 2 */
    double mean = 0;
    for (size_t i = 0; i < 50 * 16; i++) {
        /* data.idx holds bytes (i * 7919) % 251, so its range is [0, 250/255] */
        assert_true(xa[i] >= 0.0f && xa[i] < 250.0f / 255.0f);
        mean += xa[i];
    }
    mean /= 50 * 16;
    assert_true(fabs(mean - 125.0 / 255.0) < 4 * 0.2826 / sqrt(800.0)); /* sd of U: 0.98/sqrt(12) */
    free(xa);
    free(xb);
}

/* With every input clamped, --start test shows where chain k begins: at
 * test example k mod n (30 test rows of data.idx, whose byte i of the file
 * is (i * 7919) % 251, scaled by 1/255). */
static void test_chain_k_starts_at_test_example_k_mod_n(void **state)
{
    (void)state;
    char mask_path[1300];
    clamp_all(mask_path, sizeof mask_path);
    daecl_sample_opts o = opts("test-start", 35, 1, 2);
    o.clamp_path = mask_path;
    size_t n;
    float *x = sample(&o, &n);
    assert_int_equal(n, 35u * 16);
    for (size_t k = 0; k < 35; k++)
        for (size_t j = 0; j < 16; j++) {
            size_t byte = 12 + (k % 30) * 16 + j;
            assert_close(x[k * 16 + j], (double)((byte * 7919) % 251) / 255.0, 1e-6);
        }
    free(x);
}

/* Per-pixel means of the final states over many chains, cpu against
 * opencl: each is a mean of K draws, so their difference has a standard
 * error of sqrt((v_cpu + v_cl) / K). */
static void test_cpu_and_opencl_chains_agree(void **state)
{
    (void)state;
    if (!DAECL_TEST_WITH_OPENCL)
        skip();
    const char *cl[] = {"backend={plugin: opencl, index: 0}"};
    /* The first step draws the same bits: the same corruption noise, then
     * Bernoulli draws u < p whose p differ by float rounding (~1e-7), so a
     * draw flips only when u falls within that of p. */
    daecl_sample_opts c1 = opts("cpu1", 64, 1, 3), o1 = opts("cl1", 64, 1, 3);
    o1.overrides = cl;
    o1.n_overrides = 1;
    size_t nc, no;
    float *xc = sample(&c1, &nc), *xo = sample(&o1, &no);
    assert_int_equal(nc, no);
    assert_memory_equal(xc, xo, nc * sizeof *xc);
    free(xc);
    free(xo);
    /* Mean chains: the same arithmetic up to the order of GEMM sums. */
    daecl_sample_opts cm = opts("cpum", 30, 6, 3), om = opts("clm", 30, 6, 3);
    cm.use_mean = om.use_mean = 1;
    om.overrides = cl;
    om.n_overrides = 1;
    xc = sample(&cm, &nc);
    xo = sample(&om, &no);
    assert_int_equal(nc, no);
    for (size_t i = 0; i < nc; i++)
        if (fabsf(xc[i] - xo[i]) > 1e-5f)
            fail_msg("mean chains differ at %zu: cpu %.9g, opencl %.9g", i, xc[i], xo[i]);
    free(xc);
    free(xo);
    /* Stochastic chains: in distribution. */
    enum { K = 900 };
    daecl_sample_opts cs = opts("cpus", K, 8, 4), os = opts("cls", K, 8, 4);
    cs.burn_in = os.burn_in = 7;
    os.overrides = cl;
    os.n_overrides = 1;
    xc = sample(&cs, &nc);
    xo = sample(&os, &no);
    assert_int_equal(nc, (size_t)K * 16);
    assert_int_equal(no, nc);
    size_t identical = 0;
    for (size_t j = 0; j < 16; j++) {
        double mc = 0, mo = 0;
        for (size_t k = 0; k < K; k++) {
            mc += xc[k * 16 + j];
            mo += xo[k * 16 + j];
            identical += xc[k * 16 + j] == xo[k * 16 + j];
        }
        mc /= K;
        mo /= K;
        double se = sqrt((mc * (1 - mc) + mo * (1 - mo)) / K);
        if (fabs(mc - mo) > 4 * se + 1e-12)
            fail_msg("pixel %zu: mean %.4f on cpu, %.4f on opencl (standard error %.4f)", j, mc,
                     mo, se);
    }
    print_message("stochastic chains after 8 steps: %zu of %d values identical\n", identical,
                  K * 16);
    free(xc);
    free(xo);
}

/* `daecl sample ARGS`: the exit status and the output. */
static int daecl_sample(char **out, const char *a1, const char *a2, const char *a3,
                        const char *a4, const char *a5)
{
    char *argv[] = {DAECL_TEST_BIN, "sample", (char *)a1, (char *)a2, (char *)a3, (char *)a4,
                    (char *)a5, NULL};
    return test_run(argv, NULL, out);
}

static void refused(const char *words, const char *a1, const char *a2, const char *a3,
                    const char *a4, const char *a5)
{
    char *out = NULL;
    int rc = daecl_sample(&out, a1, a2, a3, a4, a5);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    if (rc == 0 || rc >= 128 || !strstr(out, words) || lines != 1)
        fail_msg("daecl sample %s %s %s: exit %d, output:\n%s(wanted one line with '%s')",
                 a1 ? a1 : "", a2 ? a2 : "", a3 ? a3 : "", rc, out, words);
    free(out);
}

/* daecl_sample_chains' means: for --mean chains they are the last state
 * itself, bit for bit; for drawn chains (a Bernoulli decoder) grey values in
 * (0, 1) behind binary states, and the states those of daecl_sample_run. */
static void test_chains_return_the_last_steps_decoder_means(void **state)
{
    (void)state;
    enum { K = 7, T = 4 };
    daecl_trained_opts to = {.run_dir = run_dir, .command = "sample"};
    daecl_run r;
    daecl_ckpt_state st;
    daecl_err err = {0};
    if (daecl_run_open_trained(&r, &to, &st, &err))
        fail_msg("open: %s", err.msg);
    size_t dim = r.train->dim;
    float start[K * 16], kept[T * K * 16], means[K * 16];
    assert_int_equal(dim, 16);
    daecl_sample_opts o = opts("unused", K, T, 3);
    o.use_mean = 1;
    if (daecl_sample_chains(&r, &o, start, kept, means, &err))
        fail_msg("mean chains: %s", err.msg);
    assert_memory_equal(means, kept + (T - 1) * K * dim, sizeof means);
    o.use_mean = 0;
    if (daecl_sample_chains(&r, &o, start, kept, means, &err))
        fail_msg("drawn chains: %s", err.msg);
    int grey = 0;
    for (size_t i = 0; i < K * dim; i++) {
        float x = kept[(T - 1) * K * dim + i];
        assert_true(x == 0 || x == 1);
        assert_true(means[i] > 0 && means[i] < 1);
        grey += means[i] != x;
    }
    assert_int_equal(grey, K * dim);
    daecl_run_close(&r);
    size_t n;
    float *ref = sample(&o, &n);
    assert_int_equal(n, T * K * dim);
    assert_memory_equal(ref, kept, sizeof kept);
    free(ref);
}

static void test_bad_requests_get_one_sentence(void **state)
{
    (void)state;
    char out_dir[1300], small[1300], wide[1300], empty[1300];
    snprintf(out_dir, sizeof out_dir, "%s/refused", dir);
    snprintf(small, sizeof small, "%s/small.npy", dir);
    snprintf(wide, sizeof wide, "%s/wide.npy", dir);
    snprintf(empty, sizeof empty, "%s/untrained", dir);
    float eight[8] = {1, 1, 1, 1, 0, 0, 0, 0};
    double sixteen[16] = {1};
    test_write_npy(small, "<f4", eight, sizeof eight, "(8,)");
    test_write_npy(wide, "<f8", sixteen, sizeof sixteen, "(16,)");
    refused("holds 8 values but an example of the run holds 16", run_dir, "--clamp", small,
            "--out", out_dir);
    refused("small.npy", run_dir, "--clamp", small, "--out", out_dir);
    refused("there is no such file", run_dir, "--clamp", "/nonexistent/mask.npy", "--out",
            out_dir);
    refused("not float32", run_dir, "--clamp", wide, "--out", out_dir);
    refused("at least one step", run_dir, "--steps", "0", "--out", out_dir);
    refused("burn-in of 5 steps", run_dir, "--steps", "5", "--burn-in", "5");
    refused("16-bit substep", run_dir, "--steps", "65537", "--out", out_dir);
    /* a run folder without its checkpoint */
    char text[6000];
    snprintf(text, sizeof text, "mkdir -p '%s' && cp '%s'/config.yaml '%s'/metrics.jsonl '%s'/",
             empty, run_dir, run_dir, empty);
    assert_int_equal(system(text), 0);
    refused("holds no checkpoint.safetensors", empty, "--out", out_dir, NULL, NULL);
    assert_int_equal(test_count_entries(out_dir, NULL, 0), -1); /* nothing written */
    /* and a good request through the command */
    char *out = NULL;
    assert_int_equal(daecl_sample(&out, run_dir, "--chains", "3", "--out", out_dir), 0);
    assert_non_null(strstr(out, "samples.npy"));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_same_seed_draws_the_same_samples_and_another_does_not),
        cmocka_unit_test(test_clamped_inputs_keep_their_start_values),
        cmocka_unit_test(test_a_noise_start_is_uniform_over_the_data_range),
        cmocka_unit_test(test_chain_k_starts_at_test_example_k_mod_n),
        cmocka_unit_test(test_cpu_and_opencl_chains_agree),
        cmocka_unit_test(test_chains_return_the_last_steps_decoder_means),
        cmocka_unit_test(test_bad_requests_get_one_sentence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
