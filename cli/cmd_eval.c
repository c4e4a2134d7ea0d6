/* daecl eval RUN_DIR [--probe-baseline]: judge a trained run; with
 * --parzen, the Parzen estimate of its chain samples instead. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/evaluate.h"
#include "core/parzen_eval.h"

static int run(int argc, char **argv);

const cli_command cli_eval = {
    .name = "eval",
    .summary = "test NLL, denoising MSE/PSNR, linear-probe accuracy; --parzen: Parzen estimate",
    .usage =
        "usage: daecl eval RUN_DIR [KEY=VALUE ...] [--probe-baseline] [--no-probe]\n"
        "       daecl eval --config FILE --checkpoint FILE [KEY=VALUE ...]\n\n"
        "Loads the run's config.yaml and checkpoint.safetensors and reports, on the test\n"
        "set: the NLL on clean and on corrupted inputs (nats per example); the denoising\n"
        "MSE and PSNR of the reconstruction from the corrupted input, against the\n"
        "corrupted input itself as the baseline; and, when the config names\n"
        "data.train_labels and data.test_labels, the test accuracy of a linear probe\n"
        "(multinomial logistic regression on the frozen top code, trained on the run's\n"
        "backend, deterministic from the seed; settings under eval.* in the config).\n"
        "Writes RUN_DIR/eval.json, keeping the \"parzen\" and \"memorisation\" of an\n"
        "earlier --parzen when they were measured on the same checkpoint.\n\n"
        "options:\n"
        "  --probe-baseline  also fit the same probe on the raw inputs\n"
        "  --no-probe        skip the probe\n"
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

/* LO:HI:K; a bad grid gets daecl_parzen_eval_run's sentence, a bad string one here. */
static int grid(const char *v, daecl_parzen_eval_opts *o)
{
    char *end;
    o->sigma_lo = strtod(v, &end);
    if (end != v && *end == ':') {
        const char *h = end + 1;
        o->sigma_hi = strtod(h, &end);
        if (end != h && *end == ':') {
            unsigned long long k = 0;
            if (cli_number(&cli_eval, "--sigmas' K", end + 1, 0, 1000000, &k))
                return 2;
            o->n_sigmas = (size_t)k;
            return 0;
        }
    }
    return cli_usage_error(&cli_eval, "--sigmas wants LO:HI:K (say 0.05:1:20), not '%s'", v);
}

static int run_parzen(int argc, char **argv)
{
    static const char *overrides[CLI_MAX_OVERRIDES];
    daecl_parzen_eval_opts o;
    daecl_parzen_eval_defaults(&o);
    o.overrides = overrides;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--parzen") == 0)
            continue;
        if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
            quiet = 1;
            continue;
        }
        if (strncmp(s, "--", 2) != 0) {
            const char *eq = strchr(s, '=');
            struct stat st;
            if (eq && !memchr(s, '/', (size_t)(eq - s)) && (o.run_dir || stat(s, &st) != 0)) {
                if (o.n_overrides == CLI_MAX_OVERRIDES)
                    return cli_usage_error(&cli_eval, "too many overrides (at most %d)",
                                           CLI_MAX_OVERRIDES);
                overrides[o.n_overrides++] = s;
            } else if (!o.run_dir) {
                o.run_dir = s;
            } else {
                return cli_usage_error(&cli_eval, "unexpected argument '%s' (overrides look "
                                       "like backend.plugin=cpu)", s);
            }
            continue;
        }
        static const char *const valued[] = {"--samples", "--steps", "--seed", "--valid",
                                              "--sigmas"};
        size_t which = sizeof valued / sizeof valued[0];
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            if (strcmp(s, valued[k]) == 0)
                which = k;
        if (which == sizeof valued / sizeof valued[0])
            return cli_usage_error(&cli_eval, "'%s' is not an option of eval --parzen", s);
        if (i + 1 >= argc || !argv[i + 1][0] || strncmp(argv[i + 1], "--", 2) == 0)
            return cli_usage_error(&cli_eval, "%s needs a value", s);
        const char *v = argv[++i];
        unsigned long long n = 0;
        int rc = 0;
        switch (which) {
        case 0: /* 0 gets daecl_parzen_eval_run's sentence */
            rc = cli_number(&cli_eval, s, v, 0, UINT32_MAX, &n);
            o.n_samples = (uint32_t)n;
            break;
        case 1: /* 0 and too many: the sampler's sentences */
            rc = cli_number(&cli_eval, s, v, 0, UINT32_MAX, &n);
            o.steps = (uint32_t)n;
            break;
        case 2:
            rc = cli_number(&cli_eval, s, v, 0, UINT64_MAX, &n);
            o.seed = n;
            o.has_seed = 1;
            break;
        case 3:
            rc = cli_number(&cli_eval, s, v, 1, SIZE_MAX, &n);
            o.n_valid = (size_t)n;
            break;
        default:
            rc = grid(v, &o);
        }
        if (rc)
            return rc;
    }
    if (!o.run_dir)
        return cli_usage_error(&cli_eval, "which run? give its folder");
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
    cli_run_args_t a;
    int rc = cli_run_args(&cli_eval, argc, argv, &a);
    if (rc)
        return rc;
    if (a.out || a.progress >= 0)
        return cli_usage_error(&cli_eval, "that option belongs to another command");
    if (!a.target && !(a.config && a.checkpoint))
        return cli_usage_error(&cli_eval, "which run? give its folder, or --config and "
                               "--checkpoint");
    daecl_eval_opts o = {.run_dir = a.target, .checkpoint = a.checkpoint, .config = a.config,
                         .overrides = a.overrides, .n_overrides = a.n_overrides,
                         .probe_baseline = a.probe_baseline, .no_probe = a.no_probe};
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
