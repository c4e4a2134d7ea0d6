/* daecl check CONFIG|RUN_DIR [KEY=VALUE ...]: every check a run makes before
 * its first step, and nothing else. */
#include <stdio.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/train.h"

static int run(int argc, char **argv);

const cli_command cli_check = {
    .name = "check",
    .summary = "check an experiment (or a resume) without opening a device",
    .usage =
        "usage: daecl check CONFIG [KEY=VALUE ...] [--out DIR] [--quiet]\n"
        "       daecl check RUN_DIR [KEY=VALUE ...] [--reset-optimizer] [--quiet]\n\n"
        "Runs exactly the checks `daecl train CONFIG` (or `daecl resume RUN_DIR`) makes\n"
        "before its first step, then stops: the config and its overrides; the data sets\n"
        "and label files (shapes, label counts and classes when a probe is asked for, the\n"
        "likelihood's range against the data); what eval.* needs; the output folder (new,\n"
        "empty, or a run of daecl's; not locked by another run); and for a run folder, its\n"
        "lock, its checkpoint, and every key and data set that may not differ from it. No\n"
        "device is opened and nothing is written. Prints one line on success.\n\n"
        "Exit status: 0 when a run would start, 2 otherwise (the sentence says why).\n\n"
        "options:\n"
        "  --out DIR          the run folder `daecl train --out DIR` would write\n"
        "  --reset-optimizer  check a resume that drops the optimiser's state\n"
        "  --quiet            print nothing on success\n",
    .run = run,
    .output_is_product = 1,
};

static int run(int argc, char **argv)
{
    cli_run_args_t a;
    int rc = cli_run_args(&cli_check, argc, argv, &a);
    if (rc)
        return rc;
    if (!a.target)
        return cli_usage_error(&cli_check, "what to check? give a CONFIG file or a run folder");
    struct stat st;
    int resume = stat(a.target, &st) == 0 && S_ISDIR(st.st_mode);
    if (a.checkpoint || a.config || a.probe_baseline || a.no_probe || a.progress >= 0 ||
        (resume && a.out) || (!resume && a.reset_optimizer))
        return cli_usage_error(&cli_check, "that option does not apply to checking %s",
                               resume ? "a run folder" : "a config");
    daecl_train_opts opts;
    cli_train_opts(&a, resume, &opts);
    opts.progress = 1; /* its one line, never a bar */
    opts.check_only = 1;
    daecl_err err = {0};
    if (daecl_train(&opts, NULL, 0, &err)) {
        cli_fail(&err);
        return 2; /* whatever failed, the run would not start */
    }
    return 0;
}
