/* daecl train CONFIG [KEY=VALUE ...] and daecl resume RUN_DIR [KEY=VALUE ...] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/train.h"

static int run_train(int argc, char **argv);
static int run_resume(int argc, char **argv);

#define PROGRESS_HELP                                                                       \
    "  --quiet           nothing on stdout (errors still go to stderr)\n"                   \
    "  --progress=MODE   bar (redrawn in place) or lines; default: a bar on a terminal\n"   \
    "\nCtrl-C, SIGTERM and SIGHUP stop after the current step, write a checkpoint, say\n"   \
    "how to resume and exit with 128 + the signal's number; a second one quits at once\n"  \
    "(the last checkpoint stays intact). A closed stdout (daecl train ... | head) stops\n" \
    "the progress output, not the run.\n"

const cli_command cli_train = {
    .name = "train",
    .summary = "train a DAE from a YAML experiment",
    .usage =
        "usage: daecl train CONFIG [KEY=VALUE ...] [--out DIR] [--quiet] [--progress=MODE]\n\n"
        "Trains the experiment in CONFIG (YAML). Each KEY=VALUE overrides one key by its\n"
        "dotted path, validated like the file: train.epochs=3 corruption.p=0.5\n"
        "model.encoder.0.units=500 'corruption.clip=[0, 1]'.\n\n"
        "Everything the config and the files can tell is checked before a device opens\n"
        "(`daecl check` runs exactly these checks). The run folder (config.yaml,\n"
        "metrics.jsonl, checkpoint.safetensors, summary.json) is <output.dir>/<name>, with\n"
        "-2, -3, ... added when it exists; it is locked while the run writes it.\n\n"
        "options:\n"
        "  --out DIR         write the run into DIR instead: a new or empty folder, or a\n"
        "                    run folder of daecl's without a checkpoint\n" PROGRESS_HELP,
    .run = run_train,
};

const cli_command cli_resume = {
    .name = "resume",
    .summary = "continue a run from its last checkpoint",
    .usage =
        "usage: daecl resume RUN_DIR [KEY=VALUE ...] [--reset-optimizer] [--quiet]\n"
        "                    [--progress=MODE]\n\n"
        "Continues the run in RUN_DIR from checkpoint.safetensors with the run's own\n"
        "config.yaml. The result is bit-identical to a run that was never interrupted (on\n"
        "the same backend and device). Overrides change the config first, but only keys a\n"
        "resumed run may change: train.epochs, train.max_steps, logging, checkpoints,\n"
        "eval.*, optimizer.lr, output and where it runs (backend.*, data residency); any\n"
        "other difference from the checkpoint is refused (docs/config.md). Data are\n"
        "compared by content, so a moved data file still resumes. To train longer:\n"
        "daecl resume RUN_DIR train.epochs=20.\n\n"
        "options:\n"
        "  --reset-optimizer drop the optimiser's state and start the configured optimiser\n"
        "                    from zero state (optimizer.* may then change)\n" PROGRESS_HELP,
    .run = run_resume,
};

static int train_or_resume(const cli_command *cmd, int argc, char **argv, int resume)
{
    cli_run_args_t a;
    int rc = cli_run_args(cmd, argc, argv, &a);
    if (rc)
        return rc;
    if (!a.target)
        return cli_usage_error(cmd, resume ? "which run? give its folder, e.g. runs/fashion-mnist"
                                           : "which experiment? give a CONFIG file, e.g. "
                                             "configs/fashion-mnist.yaml");
    if (a.checkpoint || a.config || a.probe_baseline || a.no_probe || (resume && a.out) ||
        (!resume && a.reset_optimizer))
        return cli_usage_error(cmd, "that option belongs to another command");
    cli_catch_stop_signals();
    daecl_train_opts opts;
    cli_train_opts(&a, resume, &opts);
    opts.stop = &cli_stop_requested;
    char run_dir[4096];
    daecl_err err = {0};
    rc = daecl_train(&opts, run_dir, sizeof run_dir, &err);
    if (rc) {
        int code = cli_fail(&err);
        if (run_dir[0] && rc != DAECL_EINTR && err.msg[0])
            fprintf(stderr, "daecl: the run folder is %s\n", run_dir);
        return rc == DAECL_EINTR ? cli_stopped_exit_code(code) : code;
    }
    if (!a.quiet)
        printf("daecl: run folder: %s\n", run_dir);
    return 0;
}

static int run_train(int argc, char **argv)
{
    return train_or_resume(&cli_train, argc, argv, 0);
}

static int run_resume(int argc, char **argv)
{
    return train_or_resume(&cli_resume, argc, argv, 1);
}
