/* daecl finetune RUN_DIR: supervised fine-tuning of a trained run's encoder
 * with a softmax layer on its top code (core/finetune.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "core/finetune.h"

static int run(int argc, char **argv);

const cli_command cli_finetune = {
    .name = "finetune",
    .summary = "fine-tune a trained run's encoder with a softmax classifier on its labels",
    .usage =
        "usage: daecl finetune RUN_DIR [KEY=VALUE ...] [--out DIR] [--quiet]\n"
        "       daecl finetune --resume FINETUNE_DIR [KEY=VALUE ...] [--quiet]\n\n"
        "Puts a softmax layer of C classes (C from data.train_labels) on the run's top\n"
        "code, starts the encoder from the run's checkpoint and the softmax layer at\n"
        "zero, and trains both on the training labels with cross-entropy on clean\n"
        "inputs (corrupted ones with finetune.corrupt=true), on the run's backend.\n"
        "It writes a new run folder (default\n"
        "RUN_DIR-finetune) with metrics.jsonl (train loss and accuracy, test loss and\n"
        "accuracy per epoch), checkpoint.safetensors (encoder.L.*, classifier.*) and\n"
        "summary.json, each naming the parent run and its checkpoint's SHA-256.\n\n"
        "KEY=VALUE sets what the fine-tuning does not inherit as is: optimizer.* (the\n"
        "optimizer section's keys: name, lr, momentum, schedule, ...), train.epochs,\n"
        "train.batch_size, seed, backend.*, finetune.corrupt and corruption.*, and the\n"
        "label files data.train_labels and data.test_labels; everything else is the\n"
        "run's. docs/finetune.md has the details.\n\n"
        "options:\n"
        "  --out DIR         the new folder (default: RUN_DIR-finetune, -2, ...)\n"
        "  --resume          continue the fine-tuning in FINETUNE_DIR from its last\n"
        "                    epoch's checkpoint, bit-identically (optimizer.lr may\n"
        "                    change, train.epochs too under a constant schedule,\n"
        "                    backend.* too)\n"
        "  --quiet           print nothing but errors\n"
        "\nCtrl-C, SIGTERM and SIGHUP stop after the current step; the epoch under way\n"
        "is dropped (the last epoch's checkpoint stays) and --resume redoes it.\n",
    .run = run,
};

static void on_epoch(void *ctx, const daecl_finetune_epoch *e)
{
    (void)ctx;
    char valid[64] = "";
    if (e->have_valid)
        snprintf(valid, sizeof valid, "validation accuracy %.2f %%, ", 100 * e->valid_accuracy);
    if (e->epoch == 0)
        printf("daecl: finetune epoch 0/%u: %stest accuracy %.2f %% (classifier at zero)\n",
               e->epochs, valid, 100 * e->test_accuracy);
    else
        printf("daecl: finetune epoch %u/%u: train loss %.4f, train accuracy %.2f %%, %stest "
               "accuracy %.2f %% (%.1f s)\n",
               e->epoch, e->epochs, e->train_loss, 100 * e->train_accuracy, valid,
               100 * e->test_accuracy, e->seconds);
    fflush(stdout);
}

static int run(int argc, char **argv)
{
    static const char *overrides[CLI_MAX_OVERRIDES];
    daecl_finetune_opts o = {.overrides = overrides, .on_epoch = on_epoch};
    int quiet = 0;
    const cli_opt opts[] = {
        {.name = "--quiet", .kind = CLI_OPT_FLAG, .dst = &quiet},
        {.name = "-q", .kind = CLI_OPT_FLAG, .dst = &quiet},
        {.name = "--resume", .kind = CLI_OPT_FLAG, .dst = &o.resume},
        {.name = "--out", .kind = CLI_OPT_STRING, .dst = &o.out_dir},
    };
    int rc = cli_read_run_opts(&cli_finetune, opts, sizeof opts / sizeof opts[0], NULL, argc,
                               argv, &o.run_dir, overrides, &o.n_overrides);
    if (rc)
        return rc;
    if (o.resume && o.out_dir)
        return cli_usage_error(&cli_finetune, "--resume continues in its own folder: drop --out");
    if (quiet)
        o.on_epoch = NULL;
    cli_catch_stop_signals();
    o.stop = &cli_stop_requested;
    char dir[4096] = "";
    daecl_finetune_epoch last;
    daecl_err err = {0};
    if ((rc = daecl_finetune_run(&o, dir, sizeof dir, &last, &err))) {
        int code = cli_fail(&err);
        if (dir[0] && rc != DAECL_EINTR && err.msg[0])
            fprintf(stderr, "daecl: the fine-tuning's folder is %s\n", dir);
        return rc == DAECL_EINTR ? cli_stopped_exit_code(code) : code;
    }
    if (!quiet)
        printf("daecl: fine-tuned: test accuracy %.2f %% after %u epochs; run folder: %s\n",
               100 * last.test_accuracy, last.epoch, dir);
    return 0;
}
