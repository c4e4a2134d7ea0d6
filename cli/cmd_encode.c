/* daecl encode RUN_DIR: the codes of a trained run's encoder layers for a
 * data set, as .npy files. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/encode.h"

static int run(int argc, char **argv);

const cli_command cli_encode = {
    .name = "encode",
    .summary = "write a trained run's encoder codes for a data set to .npy",
    .usage =
        "usage: daecl encode RUN_DIR [KEY=VALUE ...] [options]\n\n"
        "Runs the data through the trained encoder on the run's backend, uncorrupted,\n"
        "and writes the output of each encoder layer L after its activation (the codes\n"
        "the linear probe reads) to codes-NAME-layerL.npy: float32, C order, shape\n"
        "(examples, units of L), for numpy, scikit-learn or PyTorch. NAME is train, valid,\n"
        "test, or the data file's name up to its first dot. docs/config.md ('Codes as\n"
        "arrays') has the details.\n\n"
        "options:\n"
        "  --data FILE|train|valid|test\n"
        "                    the examples to encode: a data file (IDX, plain or gzip, or\n"
        "                    .npy, read as training reads data), or the run's training,\n"
        "                    validation or test set (default: test; train without one)\n"
        "  --layer L         only encoder layer L, from 0 (default: every one)\n"
        "  --checkpoint FILE the parameters to use (default: the run's checkpoint)\n"
        "  --out DIR         write the files here instead of into RUN_DIR\n"
        "  --quiet           print nothing but errors\n",
    .run = run,
};

static void wrote(void *ctx, const char *path, size_t n_rows, size_t units, uint32_t layer)
{
    (void)ctx;
    printf("daecl: wrote %s (%zu x %zu, layer %u)\n", path, n_rows, units, layer);
    fflush(stdout);
}

static int run(int argc, char **argv)
{
    static const char *overrides[CLI_MAX_OVERRIDES];
    daecl_encode_opts o = {.overrides = overrides, .wrote = wrote};
    int quiet = 0;
    const cli_opt opts[] = {
        {.name = "--quiet", .kind = CLI_OPT_FLAG, .dst = &quiet},
        {.name = "-q", .kind = CLI_OPT_FLAG, .dst = &quiet},
        {.name = "--data", .kind = CLI_OPT_STRING, .dst = &o.data},
        /* one past the encoder gets daecl_encode_run's sentence */
        {.name = "--layer", .kind = CLI_OPT_U32, .dst = &o.layer, .hi = UINT32_MAX,
         .given = &o.has_layer},
        {.name = "--checkpoint", .kind = CLI_OPT_STRING, .dst = &o.checkpoint},
        {.name = "--out", .kind = CLI_OPT_STRING, .dst = &o.out_dir},
    };
    int rc = cli_read_run_opts(&cli_encode, opts, sizeof opts / sizeof opts[0], NULL, argc, argv,
                               &o.run_dir, overrides, &o.n_overrides);
    if (rc)
        return rc;
    if (quiet)
        o.wrote = NULL;
    daecl_err err = {0};
    if (daecl_encode_run(&o, &err))
        return cli_fail(&err);
    return 0;
}
