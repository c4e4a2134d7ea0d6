/* daecl sample RUN_DIR: run the trained DAE as a Markov chain. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/sample.h"

static int run(int argc, char **argv);

const cli_command cli_sample = {
    .name = "sample",
    .summary = "draw samples from a trained run by its Markov chain",
    .usage =
        "usage: daecl sample RUN_DIR [KEY=VALUE ...] [options]\n\n"
        "Runs K chains of the trained DAE for T steps on the run's backend; each step\n"
        "corrupts x with the run's corruption, encodes it and draws x' from the\n"
        "decoder's likelihood (or takes its mean with --mean). Deterministic from the\n"
        "seed. Writes samples.npy (float32, shape (kept, K, D): the kept states, the\n"
        "last step's always among them), chains.png (one row per chain: the start,\n"
        "then kept states) and samples.png (the final states) into the run folder or\n"
        "--out. docs/generative.md has the details.\n\n"
        "options:\n"
        "  --chains K        chains to run (default 16)\n"
        "  --steps T         steps per chain, 1 to 65536 (default 100)\n"
        "  --burn-in B       steps not kept at the start, below T (default 0)\n"
        "  --thin N          keep every N-th state, counted back from the last (default 1)\n"
        "  --seed S          the noise's seed (default: the run's seed)\n"
        "  --start test|noise|VALUE\n"
        "                    start from test examples (default), uniform noise over the\n"
        "                    data's range, or every value VALUE\n"
        "  --mean            take the decoder's mean instead of drawing from it\n"
        "  --clamp MASK.npy  keep the inputs MASK marks (nonzero; D values, float32 or\n"
        "                    uint8) at their start values at every step (inpainting)\n"
        "  --out DIR         write the files here instead of into RUN_DIR\n"
        "  --quiet           print nothing but errors\n",
    .run = run,
};

/* --start test|noise|VALUE into the daecl_sample_opts at dst. */
static int start(const cli_command *cmd, const char *v, void *dst)
{
    daecl_sample_opts *o = dst;
    if (strcmp(v, "test") == 0) {
        o->start = DAECL_SAMPLE_START_TEST;
    } else if (strcmp(v, "noise") == 0) {
        o->start = DAECL_SAMPLE_START_NOISE;
    } else {
        char *end;
        o->start = DAECL_SAMPLE_START_CONST;
        o->start_value = strtof(v, &end);
        if (*end || !isfinite(o->start_value))
            return cli_usage_error(cmd, "--start wants test, noise or a finite number, not "
                                   "'%s'", v);
    }
    return 0;
}

static int parse(int argc, char **argv, daecl_sample_opts *o, const char **overrides, int *quiet)
{
    *o = (daecl_sample_opts){.chains = 16, .steps = 100, .thin = 1, .overrides = overrides};
    *quiet = 0;
    const cli_opt opts[] = {
        {.name = "--mean", .kind = CLI_OPT_FLAG, .dst = &o->use_mean},
        {.name = "--quiet", .kind = CLI_OPT_FLAG, .dst = quiet},
        {.name = "-q", .kind = CLI_OPT_FLAG, .dst = quiet},
        {.name = "--chains", .kind = CLI_OPT_U32, .dst = &o->chains, .lo = 1, .hi = UINT32_MAX},
        /* 0 and too many get check_opts' sentences */
        {.name = "--steps", .kind = CLI_OPT_U32, .dst = &o->steps, .hi = UINT32_MAX},
        {.name = "--burn-in", .kind = CLI_OPT_U32, .dst = &o->burn_in, .hi = UINT32_MAX},
        {.name = "--thin", .kind = CLI_OPT_U32, .dst = &o->thin, .lo = 1, .hi = UINT32_MAX},
        {.name = "--seed", .kind = CLI_OPT_U64, .dst = &o->seed, .hi = UINT64_MAX,
         .given = &o->has_seed},
        {.name = "--start", .kind = CLI_OPT_CALL, .dst = o, .parse = start},
        {.name = "--clamp", .kind = CLI_OPT_STRING, .dst = &o->clamp_path},
        {.name = "--out", .kind = CLI_OPT_STRING, .dst = &o->out_dir},
    };
    return cli_read_run_opts(&cli_sample, opts, sizeof opts / sizeof opts[0], NULL, argc, argv,
                             &o->run_dir, overrides, &o->n_overrides);
}

static int run(int argc, char **argv)
{
    static const char *overrides[CLI_MAX_OVERRIDES];
    daecl_sample_opts o;
    int quiet, rc = parse(argc, argv, &o, overrides, &quiet);
    if (rc)
        return rc;
    daecl_sample_result res;
    daecl_err err = {0};
    if (daecl_sample_run(&o, &res, &err))
        return cli_fail(&err);
    if (!quiet) {
        printf("daecl: %u chains, %u kept states of %u values each\n", res.chains, res.kept,
               res.dim);
        printf("daecl: wrote %s\n", res.samples);
        if (res.chains_png[0])
            printf("daecl: wrote %s and %s\n", res.chains_png, res.samples_png);
    }
    return 0;
}
