/* daecl eval RUN_DIR [--probe-baseline]: judge a trained run. */
#include <stdio.h>

#include "cli/cli.h"
#include "core/evaluate.h"

static int run(int argc, char **argv);

const cli_command cli_eval = {
    .name = "eval",
    .summary = "test NLL, denoising MSE/PSNR and linear-probe accuracy of a run",
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
        "Writes RUN_DIR/eval.json.\n\n"
        "options:\n"
        "  --probe-baseline  also fit the same probe on the raw inputs\n"
        "  --no-probe        skip the probe\n"
        "  --config FILE     use this config instead of RUN_DIR/config.yaml\n"
        "  --checkpoint FILE use this checkpoint instead of RUN_DIR/checkpoint.safetensors\n"
        "  --quiet           print nothing but errors\n",
    .run = run,
};

static int run(int argc, char **argv)
{
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
