/* daecl — small file-system helpers: atomic whole-file writes (temporary
 * file, fsync, rename, fsync of the folder), folder creation, and where the
 * per-user cache lives. A failed atomic write leaves any earlier file at the
 * path untouched. */
#ifndef DAECL_CORE_FSUTIL_H
#define DAECL_CORE_FSUTIL_H

#include <stddef.h>

#include "daecl/error.h"

/* Writes the concatenation of n_parts buffers to path atomically. `what`
 * names the file in the error sentence ("checkpoint", "summary"). */
int daecl_write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                       size_t n_parts, const char *what, daecl_err *err);
/* The one-buffer case. */
int daecl_write_file_atomic(const char *path, const void *data, size_t n, const char *what,
                            daecl_err *err);
/* Removes the temporary files of atomic writes whose process died before
 * finishing them (kill -9, a crash, a power loss): ".NAME.tmp.PID" in dir
 * whose PID no longer runs. Files of running processes are kept. Best
 * effort: a folder that cannot be read is left as it is. Returns how many
 * files were removed. */
size_t daecl_remove_stale_temps(const char *dir);
/* 1 when name is the temporary file of an atomic write (".NAME.tmp.PID"). */
int daecl_is_temp_name(const char *name);
/* mkdir -p with mode 0755; existing folders are fine. */
int daecl_mkdirs(const char *path, daecl_err *err);
/* "DIR/NAME" into out; DAECL_EIO when it does not fit in n bytes. */
int daecl_path_join(char *out, size_t n, const char *dir, const char *name, daecl_err *err);
/* A hint for an errno from writing ("free disk space", ...). */
const char *daecl_errno_hint(int errnum);
/* daecl's per-user cache folder (compiled OpenCL programs, GEMM tuning):
 * $DAECL_CACHE_DIR, else $XDG_CACHE_HOME/daecl, else ~/.cache/daecl; not
 * created here. NULL when DAECL_CACHE=0 disables caching or no home folder
 * is known. The string is static and stays valid. */
const char *daecl_cache_dir(void);

#endif
