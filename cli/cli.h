/* daecl — the command line: one file per subcommand, dispatched by main.c.
 * Exit status: 0 ok, 2 usage or config error, 1 run-time error. */
#ifndef DAECL_CLI_H
#define DAECL_CLI_H

#include <stdio.h>

#include "daecl/error.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* the full --help text */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} cli_command;

extern const cli_command cli_train, cli_plugins, cli_devices, cli_precompile;

/* Prints "daecl: error: file:line:col: message" and returns the exit code. */
int cli_fail(const daecl_err *err);
/* Prints a usage error with the command's usage line; returns 2. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

#endif
