/* daecl train CONFIG [key=value ...] [--out DIR] [--quiet] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/train.h"

static int run(int argc, char **argv);

const cli_command cli_train = {
    .name = "train",
    .summary = "train a DAE from a YAML experiment",
    .usage =
        "usage: daecl train CONFIG [KEY=VALUE ...] [--out DIR] [--quiet]\n\n"
        "Trains the experiment in CONFIG (YAML). Each KEY=VALUE overrides one key by its\n"
        "dotted path, validated like the file: train.epochs=3 corruption.p=0.5\n"
        "model.encoder.0.units=500 'corruption.clip=[0, 1]'.\n\n"
        "The run folder (config.yaml, metrics.jsonl, checkpoint.safetensors, summary.json)\n"
        "is <output.dir>/<name>, with -2, -3, ... added when it exists.\n\n"
        "options:\n"
        "  --out DIR   write the run into DIR instead\n"
        "  --quiet     no progress lines (errors still go to stderr)\n",
    .run = run,
};

static int run(int argc, char **argv)
{
    const char *config = NULL, *out = NULL;
    int quiet = 0;
    const char **overrides = calloc((size_t)argc, sizeof *overrides);
    size_t n_overrides = 0;
    if (!overrides) {
        fprintf(stderr, "daecl: out of memory\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0) {
            if (i + 1 >= argc) {
                free(overrides);
                return cli_usage_error(&cli_train, "--out needs a folder");
            }
            out = argv[++i];
        } else if (strncmp(argv[i], "--out=", 6) == 0) {
            out = argv[i] + 6;
        } else if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            free(overrides);
            return cli_usage_error(&cli_train, "unknown option '%s'", argv[i]);
        } else if (!config && !strchr(argv[i], '=')) {
            config = argv[i];
        } else if (strchr(argv[i], '=')) {
            overrides[n_overrides++] = argv[i];
        } else {
            free(overrides);
            return cli_usage_error(&cli_train, "unexpected argument '%s' (overrides look like "
                                   "train.epochs=3)", argv[i]);
        }
    }
    if (!config) {
        free(overrides);
        return cli_usage_error(&cli_train, "which experiment? give a CONFIG file, e.g. "
                               "configs/fashion-mnist.yaml");
    }
    daecl_train_opts opts = {.config_path = config, .overrides = overrides,
                             .n_overrides = n_overrides, .out_dir = out, .quiet = quiet};
    char run_dir[4096];
    daecl_err err = {0};
    int rc = daecl_train(&opts, run_dir, sizeof run_dir, &err);
    free(overrides);
    if (rc) {
        int code = cli_fail(&err);
        if (run_dir[0])
            fprintf(stderr, "daecl: the run folder is %s\n", run_dir);
        return code;
    }
    printf("daecl: run folder: %s\n", run_dir);
    return 0;
}
