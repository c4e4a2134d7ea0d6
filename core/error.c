/* daecl — filling and printing the error record. */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The longest run of non-blank bytes in s[0..n) that holds a '/': a path,
 * the likely reason a sentence is long. */
static size_t longest_path(const char *s, size_t n, size_t *len)
{
    size_t best = 0, best_len = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        if (j - i > best_len && memchr(s + i, '/', j - i)) {
            best = i;
            best_len = j - i;
        }
        i = j + 1;
    }
    *len = best_len;
    return best;
}

/* Formats into the record. A sentence longer than the record (a path of a
 * few KB) keeps its reason and its advice: the longest paths are cut in
 * their middle ("/first/part/.../last/part") until it fits. The 8 KB
 * staging buffer is on the stack: the error path never allocates. */
static void set_msg(daecl_err *err, const char *fmt, va_list ap)
{
    char full[8192];
    int n = vsnprintf(full, sizeof full, fmt, ap);
    if (n < 0) {
        snprintf(err->msg, sizeof err->msg, "(unprintable error message)");
        return;
    }
    size_t len = (size_t)n < sizeof full ? (size_t)n : sizeof full - 1;
    while (len >= sizeof err->msg) {
        size_t plen, at = longest_path(full, len, &plen);
        size_t over = len - (sizeof err->msg - 1);
        if (plen < 48)
            break; /* no path worth cutting: the end is cut below */
        size_t keep = plen > over + 3 + 40 ? plen - over - 3 : 40; /* what stays of the path */
        size_t head = keep / 3, tail = keep - head;
        /* path = full[at .. at+plen): keep head bytes, "...", tail bytes */
        memmove(full + at + head + 3, full + at + plen - tail, len - (at + plen - tail) + 1);
        memcpy(full + at + head, "...", 3);
        len = len - plen + head + 3 + tail;
    }
    snprintf(err->msg, sizeof err->msg, "%.*s", (int)len, full);
}

/* A file name longer than the record's field keeps its end, which names
 * the file: ".../the/folder/config.yaml". */
static void set_file(daecl_err *err, const char *file)
{
    size_t n = strlen(file);
    if (n < sizeof err->file)
        memcpy(err->file, file, n + 1);
    else
        snprintf(err->file, sizeof err->file, "...%s", file + n - (sizeof err->file - 4));
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
    set_file(err, file ? file : "");
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    set_msg(err, fmt, ap);
    va_end(ap);
    return status;
}

void daecl_err_prefix(daecl_err *err, const char *fmt, ...)
{
    if (!err || !err->msg[0])
        return;
    char head[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    size_t h = n < 0 ? 0 : (size_t)n < sizeof head ? (size_t)n : sizeof head - 1;
    size_t m = strlen(err->msg);
    if (h + m >= sizeof err->msg)
        m = sizeof err->msg - 1 - h;
    memmove(err->msg + h, err->msg, m);
    memcpy(err->msg, head, h);
    err->msg[h + m] = '\0';
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

void daecl_err_say(const daecl_err *err)
{
    char buf[DAECL_ERR_MSG_MAX + DAECL_ERR_FILE_MAX + 64];
    fprintf(stderr, "daecl: %s%s\n", err->status == DAECL_EINTR ? "" : "error: ",
            daecl_err_format(err, buf, sizeof buf));
    fflush(stderr);
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
