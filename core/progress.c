/* daecl — progress bar or log lines while training. */
#include "core/progress.h"

#include <math.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define REDRAW_S 0.2

double daecl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A write that failed (EPIPE from `daecl train | head`, a full disk) ends
 * the progress output, not the run: training goes on silently. */
static void check_closed(daecl_progress *p)
{
    if (ferror(p->out)) {
        clearerr(p->out);
        p->mode = DAECL_PROGRESS_QUIET;
    }
}

void daecl_progress_init(daecl_progress *p, int mode, FILE *out)
{
    p->out = out;
    p->mode = mode >= 0 ? mode : isatty(fileno(out)) ? DAECL_PROGRESS_BAR : DAECL_PROGRESS_LINES;
    p->bar_shown = 0;
    p->last_draw = -1;
}

int daecl_progress_due(const daecl_progress *p, double now)
{
    return p->mode == DAECL_PROGRESS_BAR && now - p->last_draw >= REDRAW_S;
}

static void fmt_eta(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

void daecl_progress_bar(daecl_progress *p, double now, uint32_t epoch, uint32_t epochs, size_t i,
                        size_t n, double loss, double examples_per_s, double eta_s)
{
    if (p->mode != DAECL_PROGRESS_BAR)
        return;
    char bar[BAR_WIDTH + 1], eta[32], lossbuf[32];
    size_t fill = n ? i * BAR_WIDTH / n : 0;
    for (size_t k = 0; k < BAR_WIDTH; k++)
        bar[k] = k < fill ? '=' : k == fill ? '>' : ' ';
    bar[BAR_WIDTH] = '\0';
    fmt_eta(eta, sizeof eta, eta_s);
    if (isfinite(loss))
        snprintf(lossbuf, sizeof lossbuf, "%.4f", loss);
    else
        snprintf(lossbuf, sizeof lossbuf, "...");
    fprintf(p->out, "\r\033[Kepoch %u/%u [%s] %zu/%zu  loss %s  %.0f ex/s  ETA %s", epoch, epochs,
            bar, i, n, lossbuf, examples_per_s, eta);
    fflush(p->out);
    p->bar_shown = 1;
    p->last_draw = now;
    check_closed(p);
}

void daecl_progress_line(daecl_progress *p, const char *fmt, ...)
{
    if (p->mode == DAECL_PROGRESS_QUIET)
        return;
    if (p->bar_shown) {
        fputs("\r\033[K", p->out);
        p->bar_shown = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
    check_closed(p);
}
