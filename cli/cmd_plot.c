/* daecl plot RUN_DIR: (re)draw the pictures of a run. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/run_pictures.h"

static int run(int argc, char **argv);

const cli_command cli_plot = {
    .name = "plot",
    .summary = "draw filters.png, reconstructions.png and curves.png of a run, or field.png",
    .usage = "usage: daecl plot RUN_DIR [--field] [KEY=VALUE ...]\n\n"
             "Draws, into RUN_DIR, from its config.yaml, checkpoint.safetensors and\n"
             "metrics.jsonl: filters.png (the first layer's weights as image tiles, each\n"
             "normalised, when the data are gray images), reconstructions.png (rows: clean,\n"
             "corrupted and reconstructed test examples) and curves.png (train and test NLL\n"
             "per epoch). `daecl train` writes the same pictures when a run ends.\n\n"
             "  --field   for a run on 2-D data, draw only field.png: the vector field\n"
             "            r(x) - x of the decoder's mean on a grid over the data, as\n"
             "            arrows over the training points (docs/generative.md, \"The\n"
             "            learned score\").\n",
    .run = run,
};

static int run(int argc, char **argv)
{
    /* --field is plot's own: taken out before the shared parser sees it. */
    int field = 0, n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--field") == 0)
            field = 1;
        else
            argv[n++] = argv[i];
    }
    argc = n;
    cli_run_args_t a;
    int rc = cli_run_args(&cli_plot, argc, argv, &a);
    if (rc)
        return rc;
    if (!a.target)
        return cli_usage_error(&cli_plot, "which run? give its folder");
    if (a.out || a.config || a.checkpoint || a.probe_baseline || a.no_probe || a.progress >= 0)
        return cli_usage_error(&cli_plot, "that option belongs to another command");
    daecl_err err = {0};
    if (field ? daecl_run_field_redraw(a.target, a.overrides, a.n_overrides, &err)
              : daecl_run_pictures_redraw(a.target, a.overrides, a.n_overrides, &err))
        return cli_fail(&err);
    if (!a.quiet)
        printf(field ? "daecl: field.png written into %s\n" : "daecl: pictures written into %s\n",
               a.target);
    return 0;
}
