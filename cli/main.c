/* daecl — the command: dispatches to the subcommands. Only cli/ may exit. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/draw.h"
#include "core/error.h"

static const cli_command *const commands[] = {&cli_train,   &cli_resume,     &cli_check,
                                              &cli_eval,    &cli_sweep,      &cli_plot,
                                              &cli_plugins, &cli_plugin,     &cli_devices,
                                              &cli_precompile, &cli_tune,   &cli_sample, &cli_encode,
                                              &cli_finetune};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

int cli_fail(const daecl_err *err)
{
    /* An empty sentence: it was said already, by another rank of the job or
     * by this one before the ranks parted (daecl_replicas_agree). */
    if (err->status && !err->msg[0])
        return daecl_status_exit_code(err->status);
    daecl_err_say(err);
    return daecl_status_exit_code(err->status ? err->status : DAECL_EINVAL);
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "daecl %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun `daecl %s --help` for usage\n", cmd->name);
    return 2;
}

int cli_number(const cli_command *cmd, const char *opt, const char *s, unsigned long long lo,
               unsigned long long hi, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v < lo || v > hi)
        return cli_usage_error(cmd, "%s wants a whole number from %llu to %llu, not '%s'", opt,
                               lo, hi, s);
    *out = v;
    return 0;
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: daecl COMMAND [ARGS]\n\n"
               "daecl trains denoising autoencoders; noise, likelihoods and backends are plugins.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\noptions:\n"
               "  -h, --help     show this help (also after a command)\n"
               "  --version      print the version\n\n"
               "Exit status: 0 ok, 2 usage or config error, 1 run-time error; a run stopped\n"
               "by a signal exits with 128 + its number (SIGINT 130, SIGTERM 143, SIGHUP 129)\n"
               "after writing a checkpoint.\n");
}

/* For a command whose product is its output: a write error on stdout
 * (a full disk, /dev/full) fails it, as coreutils do. */
static int output_written(int code)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return code;
    int e = errno;
    fprintf(stderr, "daecl: error: cannot write to standard output: %s; check where the "
            "output goes\n", e ? strerror(e) : "a write failed");
    return code ? code : 1;
}

static int dispatch(int argc, char **argv, int *product);

int main(int argc, char **argv)
{
    int product = 1; /* usage, --help and --version are output too */
    int code = dispatch(argc, argv, &product);
    if (product)
        code = output_written(code);
    daecl_draw_release_caches(); /* cairo's and fontconfig's font caches */
    return code;
}

static int dispatch(int argc, char **argv, int *product)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("daecl %s\n", DAECL_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        if (argc >= 3)
            for (size_t i = 0; i < N_COMMANDS; i++)
                if (strcmp(argv[2], commands[i]->name) == 0) {
                    fputs(commands[i]->usage, stdout);
                    return 0;
                }
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i]->name) != 0)
            continue;
        if (!commands[i]->output_is_product)
            setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines as they happen */
        if (cli_wants_help(argc - 1, argv + 1)) {
            fputs(commands[i]->usage, stdout);
            return 0;
        }
        *product = commands[i]->output_is_product;
        /* Fully buffered, so a write error surfaces at the final flush with
         * its own errno (ENOSPC), not lost among earlier line flushes. */
        if (*product)
            setvbuf(stdout, NULL, _IOFBF, 1 << 16);
        return commands[i]->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "daecl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
