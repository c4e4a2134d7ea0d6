/* daecl — what a run shows while it trains: on a terminal, a progress bar
 * per epoch (loss, examples/s, ETA) redrawn in place; otherwise, or with
 * --progress=lines, plain log lines; nothing with --quiet. */
#ifndef DAECL_CORE_PROGRESS_H
#define DAECL_CORE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

enum { DAECL_PROGRESS_QUIET = 0, DAECL_PROGRESS_LINES = 1, DAECL_PROGRESS_BAR = 2 };

typedef struct daecl_progress {
    int mode;
    FILE *out;
    int bar_shown;    /* a bar is on the current line */
    double last_draw; /* seconds (monotonic) */
} daecl_progress;

/* mode < 0: a bar when `out` is a terminal, lines otherwise. */
void daecl_progress_init(daecl_progress *p, int mode, FILE *out);
/* True when the bar is due for a redraw (at most 5 per second). */
int daecl_progress_due(const daecl_progress *p, double now);
/* Redraws the bar for step i (1-based) of n; loss NaN when not known yet. */
void daecl_progress_bar(daecl_progress *p, double now, uint32_t epoch, uint32_t epochs, size_t i,
                        size_t n, double loss, double examples_per_s, double eta_s);
/* Prints one line (clearing the bar first); lines and bar modes only. */
void daecl_progress_line(daecl_progress *p, const char *fmt, ...) DAECL_PRINTF(2, 3);
/* Seconds on the monotonic clock. */
double daecl_now(void);

#endif
