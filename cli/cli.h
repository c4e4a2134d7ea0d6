/* daecl — the command line: one file per subcommand, dispatched by main.c.
 * Exit status: 0 ok, 2 usage or config error, 1 run-time error. */
#ifndef DAECL_CLI_H
#define DAECL_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "daecl/error.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* the full --help text */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

extern const cli_command cli_train, cli_resume, cli_eval, cli_sweep, cli_plot, cli_plugins, cli_plugin,
    cli_devices, cli_precompile, cli_tune;

/* The arguments the run commands share: a target (config or run folder),
 * KEY=VALUE overrides, and options. */
#define CLI_MAX_OVERRIDES 256
typedef struct cli_run_args_t {
    const char *target;
    const char *overrides[CLI_MAX_OVERRIDES];
    size_t n_overrides;
    const char *out, *checkpoint, *config;
    int quiet, progress, probe_baseline, no_probe;
} cli_run_args_t;

/* Parses argv (argv[0] is the command); returns 0, or 2 after a usage error. */
int cli_run_args(const cli_command *cmd, int argc, char **argv, cli_run_args_t *a);

/* Ctrl-C asks a run to stop after its current step (cli_stop_requested). */
extern volatile sig_atomic_t cli_stop_requested;
void cli_catch_sigint(void);

/* Prints "daecl: error: file:line:col: message" and returns the exit code. */
int cli_fail(const daecl_err *err);
/* Prints a usage error with the command's usage line; returns 2. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

#endif
