/* daecl — filling and printing the error record (include/daecl/error.h).
 * The error path never allocates: messages go into the record's own buffer
 * and are cut, not grown, when they do not fit. */
#ifndef DAECL_CORE_ERROR_H
#define DAECL_CORE_ERROR_H

#include <stddef.h>

#include "daecl/error.h"

#if defined(__GNUC__)
#define DAECL_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define DAECL_PRINTF(fmt_idx, arg_idx)
#endif

/* Sets status and message; clears the position. Returns status. NULL err ok. */
int daecl_err_set(daecl_err *err, int status, const char *fmt, ...) DAECL_PRINTF(3, 4);
/* Same, with a file position (line, col 1-based; 0 to omit). */
int daecl_err_set_at(daecl_err *err, int status, const char *file, int line, int col,
                     const char *fmt, ...) DAECL_PRINTF(6, 7);
void daecl_err_clear(daecl_err *err);
/* Puts the formatted text before the message ("parallel.devices.1: "),
 * keeping status and position; the end is cut when it does not fit. Does
 * nothing to an empty message (another rank's failure says nothing here). */
void daecl_err_prefix(daecl_err *err, const char *fmt, ...) DAECL_PRINTF(2, 3);
/* "file:line:col: message" (or just the message) into buf; returns buf. */
const char *daecl_err_format(const daecl_err *err, char *buf, size_t n);
/* Says err on stderr as the CLI does, in one line: "daecl: error: " and
 * the formatted sentence ("daecl: " alone for DAECL_EINTR: an interrupted
 * run did what was asked). Flushes stderr. */
void daecl_err_say(const daecl_err *err);
/* "ECONFIG", and "invalid configuration", for a status. */
const char *daecl_status_name(int status);
const char *daecl_status_message(int status);
/* The exit status the CLI uses: 2 for usage and config errors, 130 for an
 * interrupted run (as a shell reports SIGINT), 1 otherwise. */
int daecl_status_exit_code(int status);

#endif
