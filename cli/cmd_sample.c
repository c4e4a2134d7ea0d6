/* daecl sample RUN_DIR: run the trained DAE as a Markov chain. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static int parse(int argc, char **argv, daecl_sample_opts *o, const char **overrides, int *quiet)
{
    *o = (daecl_sample_opts){.chains = 16, .steps = 100, .thin = 1, .overrides = overrides};
    *quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--mean") == 0) {
            o->use_mean = 1;
            continue;
        }
        if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
            *quiet = 1;
            continue;
        }
        if (strncmp(s, "--", 2) != 0) {
            /* KEY=VALUE as cli_run_args reads it: no '/' before the '=', and
             * not an existing folder while the run is still to come */
            const char *eq = strchr(s, '=');
            struct stat st;
            if (eq && !memchr(s, '/', (size_t)(eq - s)) && (o->run_dir || stat(s, &st) != 0)) {
                if (o->n_overrides == CLI_MAX_OVERRIDES)
                    return cli_usage_error(&cli_sample, "too many overrides (at most %d)",
                                           CLI_MAX_OVERRIDES);
                overrides[o->n_overrides++] = s;
            } else if (!o->run_dir) {
                o->run_dir = s;
            } else {
                return cli_usage_error(&cli_sample, "unexpected argument '%s' (overrides look "
                                       "like backend.plugin=cpu)", s);
            }
            continue;
        }
        static const char *const valued[] = {"--chains", "--steps", "--burn-in", "--thin",
                                              "--seed", "--start", "--clamp", "--out"};
        size_t which = sizeof valued / sizeof valued[0];
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            if (strcmp(s, valued[k]) == 0)
                which = k;
        if (which == sizeof valued / sizeof valued[0])
            return cli_usage_error(&cli_sample, "unknown option '%s'", s);
        if (i + 1 >= argc || !argv[i + 1][0] || strncmp(argv[i + 1], "--", 2) == 0)
            return cli_usage_error(&cli_sample, "%s needs a value", s);
        const char *v = argv[++i];
        unsigned long long n = 0;
        int rc = 0;
        switch (which) {
        case 0:
            rc = cli_number(&cli_sample, s, v, 1, UINT32_MAX, &n);
            o->chains = (uint32_t)n;
            break;
        case 1: /* 0 and too many get check_opts' sentences */
            rc = cli_number(&cli_sample, s, v, 0, UINT32_MAX, &n);
            o->steps = (uint32_t)n;
            break;
        case 2:
            rc = cli_number(&cli_sample, s, v, 0, UINT32_MAX, &n);
            o->burn_in = (uint32_t)n;
            break;
        case 3:
            rc = cli_number(&cli_sample, s, v, 1, UINT32_MAX, &n);
            o->thin = (uint32_t)n;
            break;
        case 4:
            rc = cli_number(&cli_sample, s, v, 0, UINT64_MAX, &n);
            o->seed = n;
            o->has_seed = 1;
            break;
        case 5:
            if (strcmp(v, "test") == 0) {
                o->start = DAECL_SAMPLE_START_TEST;
            } else if (strcmp(v, "noise") == 0) {
                o->start = DAECL_SAMPLE_START_NOISE;
            } else {
                char *end;
                o->start = DAECL_SAMPLE_START_CONST;
                o->start_value = strtof(v, &end);
                if (*end || !isfinite(o->start_value))
                    return cli_usage_error(&cli_sample, "--start wants test, noise or a finite "
                                           "number, not '%s'", v);
            }
            break;
        case 6:
            o->clamp_path = v;
            break;
        default:
            o->out_dir = v;
        }
        if (rc)
            return rc;
    }
    if (!o->run_dir)
        return cli_usage_error(&cli_sample, "which run? give its folder");
    return 0;
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
