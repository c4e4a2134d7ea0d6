/* daecl sweep CONFIG KEY=V1,V2,... [KEY=...] [--out DIR] [--sort METRIC] */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/comm.h"
#include "core/sweep.h"

static int run(int argc, char **argv);

const cli_command cli_sweep = {
    .name = "sweep",
    .summary = "train a grid of settings and tabulate the results",
    .usage =
        "usage: daecl sweep CONFIG KEY=V1,V2,... [KEY=V1,...] [--out DIR] [--sort METRIC]\n"
        "                   [--quiet]\n\n"
        "Trains CONFIG once per point of the grid the KEY=... arguments span (a key with\n"
        "one value applies to every point). Values split at commas outside brackets and\n"
        "quotes: 'corruption.clip=[0, 1],[0, 0.5]' is two values. Every point's config is\n"
        "checked before the first run starts. Each point is a run folder under the sweep\n"
        "folder (<output.dir>/<name>-sweep, or --out); sweep.csv (grid order) and sweep.md\n"
        "(sorted) gather the final metrics and are rewritten after every point. A point\n"
        "that fails is recorded and the sweep goes on; the exit status says so.\n\n"
        "With a validation set (data.valid_fraction) the points train without the test set\n"
        "(data.test and data.test_labels cleared) and are ranked on the validation set;\n"
        "after the last one the best is evaluated once on the test set, on its checkpoint\n"
        "(eval.json in its folder), for the final report in sweep.md and sweep.json.\n\n"
        "The classic noise ablation:\n"
        "  daecl sweep configs/noise-ablation.yaml corruption.p=0,0.1,0.25,0.5\n\n"
        "options:\n"
        "  --out DIR       the sweep folder\n"
        "  --sort METRIC   test_nll_clean (default), train_nll, test_nll_corrupted,\n"
        "                  mse_reconstruction, psnr_reconstruction_db, probe_accuracy,\n"
        "                  probe_baseline_accuracy or seconds; with a validation set\n"
        "                  probe_valid_accuracy (default with the probe), valid_nll_clean\n"
        "                  (default without), train_nll or seconds: no test metric\n"
        "  --quiet         no progress lines\n",
    .run = run,
};

static int run(int argc, char **argv)
{
    const char *config = NULL, *out = NULL, *sort = NULL;
    const char *args[64];
    size_t n_args = 0;
    int quiet = 0;
    /* A sweep trains its points one after another in one process, and a
     * process joins an MPI world once. */
    uint32_t rank, size;
    if (daecl_comm_launched(&rank, &size) && size > 1) {
        if (rank == 0)
            fprintf(stderr, "daecl sweep: started by an MPI launcher as %u ranks, but a sweep "
                    "trains its points one after another in one process and joins the world "
                    "once; run each point with `mpirun ... daecl train CONFIG KEY=VALUE`, or "
                    "the sweep without mpirun\n", size);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--out") == 0 || strcmp(s, "--sort") == 0) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0 || !argv[i + 1][0])
                return cli_usage_error(&cli_sweep, "%s needs a value", s);
            *(s[2] == 'o' ? &out : &sort) = argv[++i];
        } else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
            quiet = 1;
        } else if (s[0] == '-' && s[1] == '-') {
            return cli_usage_error(&cli_sweep, "unknown option or missing value: '%s'", s);
        } else if (strchr(s, '=')) {
            if (n_args == sizeof args / sizeof args[0])
                return cli_usage_error(&cli_sweep, "too many KEY=... arguments");
            args[n_args++] = s;
        } else if (!config) {
            config = s;
        } else {
            return cli_usage_error(&cli_sweep, "unexpected argument '%s'", s);
        }
    }
    if (!config)
        return cli_usage_error(&cli_sweep, "which experiment? give a CONFIG file");
    cli_catch_stop_signals();
    daecl_sweep_opts o = {.config_path = config, .args = args, .n_args = n_args, .out_dir = out,
                          .sort = sort, .quiet = quiet, .stop = &cli_stop_requested};
    daecl_sweep_result r;
    daecl_err err = {0};
    int rc = daecl_sweep(&o, &r, &err);
    if (r.dir[0] && !quiet)
        printf("daecl sweep: %zu of %zu points finished; tables in %s/sweep.csv and sweep.md\n",
               r.n_points - r.n_failed, r.n_points, r.dir);
    if (rc) {
        int code = cli_fail(&err);
        return rc == DAECL_EINTR ? cli_stopped_exit_code(code) : code;
    }
    return 0;
}
