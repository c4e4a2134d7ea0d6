/* daecl — run and sweep folders as daecl's own. A folder daecl made holds a
 * marker (.daecl-run or .daecl-sweep), and daecl writes only into a folder
 * that is new, empty, or marked as its own. While a command writes into one
 * it holds the lock file .daecl-lock (created with O_EXCL; it names the pid,
 * the host, the process's start time and the command): a second writer is
 * refused with a sentence naming the first, a lock whose process is gone on
 * this host is taken over with a line in the log, and a lock from another
 * host is refused with how to remove it if that job is gone. */
#ifndef DAECL_CORE_RUNFOLDER_H
#define DAECL_CORE_RUNFOLDER_H

#include <stddef.h>

#include "daecl/error.h"

#define DAECL_RUN_MARKER ".daecl-run"
#define DAECL_SWEEP_MARKER ".daecl-sweep"
#define DAECL_LOCK_FILE ".daecl-lock"

typedef enum daecl_folder_kind { DAECL_FOLDER_RUN = 0, DAECL_FOLDER_SWEEP = 1 } daecl_folder_kind;

typedef enum daecl_folder_state {
    DAECL_FOLDER_ABSENT = 0, /* nothing at the path */
    DAECL_FOLDER_EMPTY,      /* a folder with no entries */
    DAECL_FOLDER_OWN,        /* marked as daecl's (or, for runs, holding a checkpoint) */
    DAECL_FOLDER_FOREIGN     /* a folder with files daecl did not write, or not a folder */
} daecl_folder_state;

/* What `dir` is to daecl. For a foreign folder, `example` (n bytes, may be
 * NULL) gets a few of its entries for the message. A run folder without the
 * marker but with checkpoint.safetensors counts as daecl's: runs made before
 * the marker existed. */
daecl_folder_state daecl_folder_inspect(const char *dir, daecl_folder_kind kind, char *example,
                                        size_t n);

/* May a new run (or sweep) be written into dir? Yes when it is absent,
 * empty, or daecl's own and holding no checkpoint (a run that failed before
 * its first one) or, for a sweep, no sweep table. `flag` names the option
 * the user gave it by ("--out") for the sentence. Writes nothing. */
int daecl_folder_check_new(const char *dir, daecl_folder_kind kind, const char *flag,
                           daecl_err *err);

/* The folder must be daecl's own run (resume, eval, plot), else one
 * sentence naming `command`. Writes nothing. */
int daecl_folder_check_own_run(const char *dir, const char *command, daecl_err *err);

typedef struct daecl_lock daecl_lock;

/* Takes dir's lock for `command` ("train", "resume", "sweep"). */
int daecl_lock_acquire(const char *dir, const char *command, daecl_lock **out, daecl_err *err);
/* Removes the lock file if it is still this process's, and frees; NULL ok. */
void daecl_lock_release(daecl_lock *lock);

/* Makes dir (mkdir -p) if it is absent, takes its lock and writes the
 * marker: the folder is now daecl's and this process's until the lock is
 * released. The caller checked it with daecl_folder_check_new first; this
 * checks again under the lock, since another process may have come between. */
int daecl_folder_claim(const char *dir, daecl_folder_kind kind, const char *command,
                       const char *flag, daecl_lock **lock, daecl_err *err);

#endif
