/* daecl — log lines on stderr. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int current_level = -1;

static int level_from_env(void)
{
    const char *v = getenv("DAECL_LOG");
    if (!v || !*v)
        return DAECL_LOG_INFO;
    if (strcmp(v, "error") == 0)
        return DAECL_LOG_ERROR;
    if (strcmp(v, "warn") == 0)
        return DAECL_LOG_WARN;
    if (strcmp(v, "debug") == 0)
        return DAECL_LOG_DEBUG;
    return DAECL_LOG_INFO;
}

void daecl_log_set_level(int level)
{
    current_level = level;
}

int daecl_log_level(void)
{
    if (current_level < 0)
        current_level = level_from_env();
    return current_level;
}

void daecl_log(int level, const char *who, const char *fmt, ...)
{
    if (level > daecl_log_level())
        return;
    static const char *const names[] = {"error", "warning", "", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    const char *tag = (level >= 0 && level <= 3) ? names[level] : "";
    fprintf(stderr, "daecl:%s%s%s%s%s%s %s\n", who ? " [" : "", who ? who : "", who ? "]" : "",
            *tag ? " " : "", *tag ? tag : "", *tag ? ":" : "", line);
    if (*tag)
        fflush(stderr);
}
