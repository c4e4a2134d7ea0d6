/* daecl — what several commands share: reading KEY=VALUE overrides and
 * options, stopping a run cleanly on SIGINT, SIGTERM and SIGHUP, and
 * training on when stdout or stderr is a closed pipe. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/train.h"

volatile sig_atomic_t cli_stop_requested;

/* What the handler says, written with write(2) (async-signal-safe); a
 * second signal of the same kind gets the default action: quit at once,
 * the last checkpoint intact. */
static void on_stop(int sig)
{
    cli_stop_requested = sig;
    static const char int_msg[] = "\ndaecl: Ctrl-C: stopping after this step and writing a "
                                  "checkpoint (Ctrl-C again to quit at once)\n";
    static const char term_msg[] = "\ndaecl: SIGTERM: stopping after this step and writing a "
                                   "checkpoint (SIGTERM again to quit at once)\n";
    static const char hup_msg[] = "\ndaecl: SIGHUP: stopping after this step and writing a "
                                  "checkpoint (SIGHUP again to quit at once)\n";
    const char *msg = sig == SIGTERM ? term_msg : sig == SIGHUP ? hup_msg : int_msg;
    size_t n = sig == SIGTERM ? sizeof term_msg : sig == SIGHUP ? sizeof hup_msg : sizeof int_msg;
    ssize_t w = write(2, msg, n - 1);
    (void)w;
}

void cli_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second one gets the default: quit now */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    /* `daecl train ... | head`: a closed stdout or stderr must not kill a
     * run; writes then fail with EPIPE and the progress output stops. */
    signal(SIGPIPE, SIG_IGN);
}

int cli_stopped_exit_code(int code)
{
    return cli_stop_requested ? 128 + (int)cli_stop_requested : code;
}

/* KEY=VALUE, or a path? A dotted key never holds a '/', and a sweep's run
 * folders are named like 003_corruption.p=0.25_seed=7: an argument whose
 * part before '=' holds a '/', or that names an existing file or folder
 * while no target was given yet, is the target. */
static int is_override(const char *s, const char *target)
{
    const char *eq = strchr(s, '=');
    if (!eq || memchr(s, '/', (size_t)(eq - s)))
        return 0;
    struct stat st;
    return target || stat(s, &st) != 0;
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
            /* `--out --quiet` is a forgotten value, not a folder named --quiet */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return cli_usage_error(cmd, "%s needs a value (write %s=VALUE for one that "
                                       "starts with --)", s, s);
            *value = argv[++i];
            if (!**value)
                return cli_usage_error(cmd, "%s needs a value, not an empty string", s);
        } else if (strncmp(s, "--out=", 6) == 0) {
            a->out = s + 6;
            if (!*a->out)
                return cli_usage_error(cmd, "--out needs a folder name, not an empty string");
        } else if (strcmp(s, "--reset-optimizer") == 0) {
            a->reset_optimizer = 1;
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
        } else if (is_override(s, a->target)) {
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

/* One valued option's value into its destination. */
static int read_value(const cli_command *cmd, const cli_opt *o, const char *v)
{
    if (o->kind == CLI_OPT_STRING) {
        *(const char **)o->dst = v;
        return 0;
    }
    if (o->kind == CLI_OPT_CALL)
        return o->parse(cmd, v, o->dst);
    unsigned long long n = 0;
    int rc = cli_number(cmd, o->name, v, o->lo, o->hi, &n);
    if (rc)
        return rc;
    if (o->kind == CLI_OPT_U32)
        *(uint32_t *)o->dst = (uint32_t)n;
    else if (o->kind == CLI_OPT_U64)
        *(uint64_t *)o->dst = (uint64_t)n;
    else
        *(size_t *)o->dst = (size_t)n;
    return 0;
}

int cli_read_run_opts(const cli_command *cmd, const cli_opt *opts, size_t n_opts,
                      const char *scope, int argc, char **argv, const char **run_dir,
                      const char **overrides, size_t *n_overrides)
{
    *run_dir = NULL;
    *n_overrides = 0;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const cli_opt *o = NULL;
        for (size_t k = 0; k < n_opts && !o; k++)
            if (strcmp(s, opts[k].name) == 0)
                o = &opts[k];
        if (!o && strncmp(s, "--", 2) != 0) {
            if (is_override(s, *run_dir)) {
                if (*n_overrides == CLI_MAX_OVERRIDES)
                    return cli_usage_error(cmd, "too many overrides (at most %d)",
                                           CLI_MAX_OVERRIDES);
                overrides[(*n_overrides)++] = s;
            } else if (!*run_dir) {
                *run_dir = s;
            } else {
                return cli_usage_error(cmd, "unexpected argument '%s' (overrides look like "
                                       "backend.plugin=cpu)", s);
            }
            continue;
        }
        if (!o)
            return scope ? cli_usage_error(cmd, "'%s' is not an option of %s", s, scope)
                         : cli_usage_error(cmd, "unknown option '%s'", s);
        if (o->given)
            *o->given = 1;
        if (o->kind == CLI_OPT_FLAG) {
            if (o->dst)
                *(int *)o->dst = 1;
            continue;
        }
        if (i + 1 >= argc || !argv[i + 1][0] || strncmp(argv[i + 1], "--", 2) == 0)
            return cli_usage_error(cmd, "%s needs a value", s);
        int rc = read_value(cmd, o, argv[++i]);
        if (rc)
            return rc;
    }
    if (!*run_dir)
        return cli_usage_error(cmd, "which run? give its folder");
    return 0;
}

void cli_train_opts(const cli_run_args_t *a, int resume, daecl_train_opts *o)
{
    *o = (daecl_train_opts){.config_path = resume ? NULL : a->target,
                            .resume_dir = resume ? a->target : NULL,
                            .overrides = a->overrides,
                            .n_overrides = a->n_overrides,
                            .out_dir = a->out,
                            .quiet = a->quiet,
                            .progress = a->progress,
                            .reset_optimizer = a->reset_optimizer};
}
