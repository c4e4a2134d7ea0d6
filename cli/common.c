/* daecl — what several commands share: reading KEY=VALUE overrides and
 * options, and stopping a run cleanly on Ctrl-C. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

volatile sig_atomic_t cli_stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    cli_stop_requested = 1;
    static const char msg[] = "\ndaecl: stopping after this step and writing a checkpoint "
                              "(Ctrl-C again to quit at once)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

void cli_catch_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C gets the default: quit now */
    sigaction(SIGINT, &sa, NULL);
}

int cli_run_args(const cli_command *cmd, int argc, char **argv, cli_run_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->progress = -1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char **value = strcmp(s, "--out") == 0          ? &a->out
                             : strcmp(s, "--checkpoint") == 0 ? &a->checkpoint
                             : strcmp(s, "--config") == 0     ? &a->config
                                                              : NULL;
        if (value) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "%s needs a value", s);
            *value = argv[++i];
        } else if (strncmp(s, "--out=", 6) == 0) {
            a->out = s + 6;
        } else if (strcmp(s, "--quiet") == 0 || strcmp(s, "-q") == 0) {
            a->quiet = 1;
        } else if (strcmp(s, "--progress=bar") == 0) {
            a->progress = 2;
        } else if (strcmp(s, "--progress=lines") == 0) {
            a->progress = 1;
        } else if (strcmp(s, "--probe-baseline") == 0) {
            a->probe_baseline = 1;
        } else if (strcmp(s, "--no-probe") == 0) {
            a->no_probe = 1;
        } else if (s[0] == '-' && s[1] == '-') {
            return cli_usage_error(cmd, "unknown option '%s'", s);
        } else if (strchr(s, '=')) {
            if (a->n_overrides < CLI_MAX_OVERRIDES)
                a->overrides[a->n_overrides++] = s;
            else
                return cli_usage_error(cmd, "too many overrides (at most %d)", CLI_MAX_OVERRIDES);
        } else if (!a->target) {
            a->target = s;
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s' (overrides look like "
                                   "train.epochs=3)", s);
        }
    }
    return 0;
}
