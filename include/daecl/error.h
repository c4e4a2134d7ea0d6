/* daecl - status codes and the caller-owned error record.
 *
 * Every fallible function returns a daecl_status (0 ok, negative error) and
 * takes a daecl_err * last. The record is filled once, where the error happens,
 * with one sentence: what failed, where, what to do. Filling it never allocates.
 * Plugins fill it through the host table (plugin.h), never by linking libdaecl. */
#ifndef DAECL_ERROR_H
#define DAECL_ERROR_H

#include <stdint.h>

/* One list yields the enum, the names and the messages (libuv's UV_ERRNO_MAP). */
#define DAECL_STATUS_MAP(X)                                        \
    X(OK, 0, "success")                                            \
    X(EINVAL, -1, "invalid argument")                              \
    X(ECONFIG, -2, "invalid configuration")                        \
    X(EUSAGE, -3, "invalid command line")                          \
    X(ENOMEM, -4, "out of memory")                                 \
    X(EIO, -5, "input/output error")                               \
    X(EDATA, -6, "invalid data file")                              \
    X(EPLUGIN, -7, "plugin refused or failed")                     \
    X(EDEVICE, -8, "compute device error")                         \
    X(ENOTSUP, -9, "not supported")                                \
    X(ENAN, -10, "loss is not finite")                             \
    X(EINTR, -11, "interrupted")                                   \
    X(ECKPT, -12, "invalid checkpoint")                            \
    X(ENOENT, -13, "not found")                                    \
    X(EPEER, -14, "another rank of the job failed")

typedef enum daecl_status {
#define DAECL__STATUS_ENUM(name, code, msg) DAECL_##name = code,
    DAECL_STATUS_MAP(DAECL__STATUS_ENUM)
#undef DAECL__STATUS_ENUM
} daecl_status;

#define DAECL_ERR_MSG_MAX 1024
#define DAECL_ERR_FILE_MAX 512

/* The error record. `file`, `line`, `col` say where in an input file the
 * problem is (1-based; file[0] == '\0' and line == 0 when it is not about a
 * position). `msg` is one sentence without the position prefix. */
typedef struct daecl_err {
    int32_t status;
    int32_t line;
    int32_t col;
    char file[DAECL_ERR_FILE_MAX];
    char msg[DAECL_ERR_MSG_MAX];
} daecl_err;

#endif
