/* daecl — filling and printing the error record. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void set_msg(daecl_err *err, const char *fmt, va_list ap)
{
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    if (n < 0)
        snprintf(err->msg, sizeof err->msg, "(unprintable error message)");
}

int daecl_err_set(daecl_err *err, int status, const char *fmt, ...)
{
    if (!err)
        return status;
    err->status = status;
    err->file[0] = '\0';
    err->line = 0;
    err->col = 0;
    va_list ap;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return status;
}

int daecl_err_set_at(daecl_err *err, int status, const char *file, int line, int col,
                     const char *fmt, ...)
{
    if (!err)
        return status;
    err->status = status;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return status;
}

void daecl_err_clear(daecl_err *err)
{
    if (!err)
        return;
    err->status = 0;
    err->line = 0;
    err->col = 0;
    err->file[0] = '\0';
    err->msg[0] = '\0';
}

const char *daecl_err_format(const daecl_err *err, char *buf, size_t n)
{
    if (!buf || n == 0)
        return "";
    if (!err) {
        buf[0] = '\0';
        return buf;
    }
    const char *msg = err->msg[0] ? err->msg : daecl_status_message(err->status);
    if (err->file[0] && err->line > 0 && err->col > 0)
        snprintf(buf, n, "%s:%d:%d: %s", err->file, err->line, err->col, msg);
    else if (err->file[0] && err->line > 0)
        snprintf(buf, n, "%s:%d: %s", err->file, err->line, msg);
    else if (err->file[0])
        snprintf(buf, n, "%s: %s", err->file, msg);
    else
        snprintf(buf, n, "%s", msg);
    return buf;
}

const char *daecl_status_name(int status)
{
    switch (status) {
#define NAME_CASE(name, code, msg) \
    case code:                     \
        return #name;
        DAECL_STATUS_MAP(NAME_CASE)
#undef NAME_CASE
    }
    return "EUNKNOWN";
}

const char *daecl_status_message(int status)
{
    switch (status) {
#define MSG_CASE(name, code, msg) \
    case code:                    \
        return msg;
        DAECL_STATUS_MAP(MSG_CASE)
#undef MSG_CASE
    }
    return "unknown error";
}

int daecl_status_exit_code(int status)
{
    if (status == DAECL_OK)
        return 0;
    if (status == DAECL_ECONFIG || status == DAECL_EUSAGE)
        return 2;
    if (status == DAECL_EINTR)
        return 130; /* the shell's convention for a run stopped by SIGINT */
    return 1;
}
