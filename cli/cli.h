/* daecl — the command line: one file per subcommand, dispatched by main.c.
 * Exit status: 0 ok, 2 usage or config error, 1 run-time error, 128 + the
 * signal's number for a run a signal stopped. */
#ifndef DAECL_CLI_H
#define DAECL_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daecl/error.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* the full --help text */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
    /* The command's product is what it prints (a listing, a report): a
     * write error on stdout makes it exit 1, as coreutils do. A run's
     * product is its folder: a closed stdout never changes its status. */
    int output_is_product;
} cli_command;

extern const cli_command cli_train, cli_resume, cli_check, cli_eval, cli_sweep, cli_plot,
    cli_plugins, cli_plugin, cli_devices, cli_precompile, cli_tune, cli_sample, cli_encode,
    cli_finetune;

/* The arguments the run commands share: a target (config or run folder),
 * KEY=VALUE overrides, and options. */
#define CLI_MAX_OVERRIDES 256
typedef struct cli_run_args_t {
    const char *target;
    const char *overrides[CLI_MAX_OVERRIDES];
    size_t n_overrides;
    const char *out, *checkpoint, *config;
    int quiet, progress, probe_baseline, no_probe, reset_optimizer;
} cli_run_args_t;

/* Parses argv (argv[0] is the command); returns 0, or 2 after a usage error. */
struct daecl_train_opts;
/* The options of `daecl train` (resume 0) or `daecl resume` (resume 1) from
 * parsed arguments; nothing set for stopping. */
void cli_train_opts(const cli_run_args_t *a, int resume, struct daecl_train_opts *o);
int cli_run_args(const cli_command *cmd, int argc, char **argv, cli_run_args_t *a);

/* The options of a command that reads one trained run (sample, eval
 * --parzen), as a table: each names an option and where its value goes. */
typedef enum cli_opt_kind {
    CLI_OPT_FLAG,   /* no value: *(int *)dst = 1; a NULL dst accepts and ignores it */
    CLI_OPT_U32,    /* a whole number in [lo, hi] (cli_number) into a uint32_t */
    CLI_OPT_U64,    /* ... into a uint64_t */
    CLI_OPT_SIZE,   /* ... into a size_t */
    CLI_OPT_STRING, /* the value as given into a const char * */
    CLI_OPT_CALL    /* parse(cmd, value, dst) reads it: 0, or 2 after its usage error */
} cli_opt_kind;

typedef struct cli_opt {
    const char *name; /* "--chains", "-q" */
    cli_opt_kind kind;
    void *dst;
    unsigned long long lo, hi; /* the numbers' range */
    int *given;                /* set to 1 when the option is given; may be NULL */
    int (*parse)(const cli_command *cmd, const char *value, void *dst);
} cli_opt;

/* Reads argv (argv[0] is the command): the options of opts[n_opts], each
 * valued one as `--name VALUE` (a missing value, an empty one or one
 * starting with -- is "NAME needs a value"); KEY=VALUE overrides into
 * overrides[CLI_MAX_OVERRIDES] (*n_overrides of them), told from the run
 * folder as cli_run_args tells them; and the run folder, which must be
 * given. An option not in the table is "unknown option 'X'", or "'X' is
 * not an option of SCOPE" when scope is not NULL. Returns 0, or 2 after
 * cmd's usage error. */
int cli_read_run_opts(const cli_command *cmd, const cli_opt *opts, size_t n_opts,
                      const char *scope, int argc, char **argv, const char **run_dir,
                      const char **overrides, size_t *n_overrides);

/* SIGINT, SIGTERM and SIGHUP ask a run to stop after its current step:
 * cli_stop_requested gets the signal's number. SIGPIPE is ignored, so a
 * closed stdout or stderr stops the output, not the run. */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_stop_signals(void);
/* 128 + the signal that stopped the run, as a shell reports it, else code. */
int cli_stopped_exit_code(int code);

/* Prints "daecl: error: file:line:col: message" and returns the exit code. */
int cli_fail(const daecl_err *err);
/* Prints a usage error with the command's usage line; returns 2. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);
/* A whole decimal number in [lo, hi] given to option opt of cmd; returns 0,
 * or 2 after cmd's usage error. */
int cli_number(const cli_command *cmd, const char *opt, const char *s, unsigned long long lo,
               unsigned long long hi, unsigned long long *out);

#endif
