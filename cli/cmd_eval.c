/* daecl eval RUN_DIR [--probe-baseline] [--probe-layers L]: judge a trained run; with
 * --parzen, the Parzen estimate of its chain samples instead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/evaluate.h"
#include "core/parzen_eval.h"

static int run(int argc, char **argv);

const cli_command cli_eval = {
    .name = "eval",
    .summary = "test NLL, denoising MSE/PSNR, linear-probe accuracy; --parzen: Parzen estimate",
    .usage =
        "usage: daecl eval RUN_DIR [KEY=VALUE ...] [--probe-baseline] [--no-probe]\n"
        "                  [--probe-layers top|each]\n"
        "       daecl eval --config FILE --checkpoint FILE [KEY=VALUE ...]\n\n"
        "Loads the run's config.yaml and checkpoint.safetensors and reports, on the test\n"
        "set: the NLL on clean and on corrupted inputs (nats per example); the denoising\n"
        "MSE and PSNR of the reconstruction from the corrupted input, against the\n"
        "corrupted input itself as the baseline; and, when the config names\n"
        "data.train_labels and data.test_labels, the test accuracy of a linear probe\n"
        "(multinomial logistic regression on the frozen top code, trained on the run's\n"
        "backend, deterministic from the seed; settings under eval.* in the config);\n"
        "with several encoder layers, also on each layer's code and on all of them\n"
        "side by side (eval.probe_layers: each, the default).\n"
        "Writes RUN_DIR/eval.json, keeping the \"parzen\" and \"memorisation\" of an\n"
        "earlier --parzen when they were measured on the same checkpoint.\n\n"
        "options:\n"
        "  --probe-baseline  also fit the same probe on the raw inputs\n"
        "  --no-probe        skip the probe\n"
        "  --probe-layers top|each\n"
        "                    the top code only, or each encoder layer's and all of\n"
        "                    them side by side (sets eval.probe_layers)\n"
        "  --config FILE     use this config instead of RUN_DIR/config.yaml\n"
        "  --checkpoint FILE use this checkpoint instead of RUN_DIR/checkpoint.safetensors\n"
        "  --quiet           print nothing but errors\n\n"
        "usage: daecl eval RUN_DIR --parzen [KEY=VALUE ...] [options]\n\n"
        "Estimates the test log-likelihood (nats per example, mean +- standard error) of\n"
        "a Gaussian Parzen window on N samples of the run's Markov chain (`daecl\n"
        "sample`): N chains from uniform noise, the window centred on the decoder means\n"
        "of their last states. sigma is chosen on a log grid by the mean log-likelihood\n"
        "of the training set's last rows. Also the memorisation check: the distance from\n"
        "each sample, and from each test example, to its nearest training example\n"
        "(medians and 5th percentiles). Adds \"parzen\" and \"memorisation\" to\n"
        "RUN_DIR/eval.json. docs/generative.md says what the number is worth.\n\n"
        "options:\n"
        "  --samples N       samples (chains), default 10000\n"
        "  --steps T         chain steps before the sample is taken, default 100\n"
        "  --seed S          the chains' seed (default: the run's seed)\n"
        "  --valid N         fit sigma on the training set's last N rows (default: a\n"
        "                    sixth of them, at most 10000)\n"
        "  --sigmas LO:HI:K  the grid, K log-spaced widths (default 0.05:1:20)\n"
        "  --quiet           print nothing but errors\n",
    .run = run,
};

/* --sigmas LO:HI:K into the daecl_parzen_eval_opts at dst; a bad grid gets
 * daecl_parzen_eval_run's sentence, a bad string one here. */
static int grid(const cli_command *cmd, const char *v, void *dst)
{
    daecl_parzen_eval_opts *o = dst;
    char *end;
    o->sigma_lo = strtod(v, &end);
    if (end != v && *end == ':') {
        const char *h = end + 1;
        o->sigma_hi = strtod(h, &end);
        if (end != h && *end == ':') {
            unsigned long long k = 0;
            if (cli_number(cmd, "--sigmas' K", end + 1, 0, 1000000, &k))
                return 2;
            o->n_sigmas = (size_t)k;
            return 0;
        }
    }
    return cli_usage_error(cmd, "--sigmas wants LO:HI:K (say 0.05:1:20), not '%s'", v);
}

static int run_parzen(int argc, char **argv)
{
    static const char *overrides[CLI_MAX_OVERRIDES];
    daecl_parzen_eval_opts o;
    daecl_parzen_eval_defaults(&o);
    o.overrides = overrides;
    int quiet = 0;
    const cli_opt opts[] = {
        {.name = "--parzen", .kind = CLI_OPT_FLAG},
        {.name = "--quiet", .kind = CLI_OPT_FLAG, .dst = &quiet},
        {.name = "-q", .kind = CLI_OPT_FLAG, .dst = &quiet},
        /* 0 gets daecl_parzen_eval_run's sentence; for --steps, 0 and too
         * many get the sampler's */
        {.name = "--samples", .kind = CLI_OPT_U32, .dst = &o.n_samples, .hi = UINT32_MAX},
        {.name = "--steps", .kind = CLI_OPT_U32, .dst = &o.steps, .hi = UINT32_MAX},
        {.name = "--seed", .kind = CLI_OPT_U64, .dst = &o.seed, .hi = UINT64_MAX,
         .given = &o.has_seed},
        {.name = "--valid", .kind = CLI_OPT_SIZE, .dst = &o.n_valid, .lo = 1, .hi = SIZE_MAX},
        {.name = "--sigmas", .kind = CLI_OPT_CALL, .dst = &o, .parse = grid},
    };
    int rc = cli_read_run_opts(&cli_eval, opts, sizeof opts / sizeof opts[0], "eval --parzen",
                               argc, argv, &o.run_dir, overrides, &o.n_overrides);
    if (rc)
        return rc;
    daecl_parzen_eval_result res;
    daecl_err err = {0};
    if (daecl_parzen_eval_run(&o, &res, &err))
        return cli_fail(&err);
    if (!quiet) {
        daecl_parzen_eval_print(&res, stdout);
        printf("daecl: wrote %s\n", res.json);
    }
    return 0;
}

static int run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--parzen") == 0)
            return run_parzen(argc, argv);
    /* --probe-layers is eval's alone: taken out here, the rest parsed as
     * every run command's arguments */
    const char *layers = NULL;
    char **rest = malloc(((size_t)argc + 1) * sizeof *rest);
    if (!rest) {
        fprintf(stderr, "daecl: error: out of memory\n");
        return 1;
    }
    int n_rest = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--probe-layers") == 0) {
            if (i + 1 >= argc) {
                free(rest);
                return cli_usage_error(&cli_eval, "--probe-layers wants top or each");
            }
            layers = argv[++i];
        } else if (i > 0 && strncmp(argv[i], "--probe-layers=", 15) == 0) {
            layers = argv[i] + 15;
        } else {
            rest[n_rest++] = argv[i];
        }
    }
    rest[n_rest] = NULL;
    if (layers && strcmp(layers, "top") != 0 && strcmp(layers, "each") != 0) {
        free(rest);
        return cli_usage_error(&cli_eval, "--probe-layers wants top or each, not '%s'", layers);
    }
    cli_run_args_t a;
    int rc = cli_run_args(&cli_eval, n_rest, rest, &a);
    free(rest);
    if (rc)
        return rc;
    if (a.out || a.progress >= 0)
        return cli_usage_error(&cli_eval, "that option belongs to another command");
    if (!a.target && !(a.config && a.checkpoint))
        return cli_usage_error(&cli_eval, "which run? give its folder, or --config and "
                               "--checkpoint");
    daecl_eval_opts o = {.run_dir = a.target, .checkpoint = a.checkpoint, .config = a.config,
                         .overrides = a.overrides, .n_overrides = a.n_overrides,
                         .probe_baseline = a.probe_baseline, .no_probe = a.no_probe,
                         .probe_layers = layers};
    daecl_evaluation e;
    char json[4096];
    daecl_err err = {0};
    if (daecl_eval_run(&o, &e, json, sizeof json, &err))
        return cli_fail(&err);
    if (!a.quiet) {
        daecl_evaluation_print(&e, stdout);
        if (json[0])
            printf("daecl: wrote %s\n", json);
    }
    return 0;
}
