/* daecl — run and sweep folders: the marker, ownership and the lock file. */
#include "core/runfolder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"

static const char *marker_name(daecl_folder_kind kind)
{
    return kind == DAECL_FOLDER_SWEEP ? DAECL_SWEEP_MARKER : DAECL_RUN_MARKER;
}

static int exists_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    return snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path &&
           stat(path, &st) == 0;
}

daecl_folder_state daecl_folder_inspect(const char *dir, daecl_folder_kind kind, char *example,
                                        size_t n)
{
    if (example && n)
        example[0] = '\0';
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? DAECL_FOLDER_ABSENT : DAECL_FOLDER_FOREIGN;
    if (!S_ISDIR(st.st_mode)) {
        if (example && n)
            snprintf(example, n, "it is not a folder");
        return DAECL_FOLDER_FOREIGN;
    }
    if (exists_in(dir, marker_name(kind)) ||
        (kind == DAECL_FOLDER_RUN && exists_in(dir, "checkpoint.safetensors")))
        return DAECL_FOLDER_OWN;
    DIR *d = opendir(dir);
    if (!d)
        return DAECL_FOLDER_FOREIGN;
    size_t shown = 0, len = 0, entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        /* daecl's own lock file, and the temporary files of its atomic
         * writes (a kill inside the marker's write leaves one), do not make
         * a folder foreign: a folder holding only those is empty */
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strncmp(e->d_name, DAECL_LOCK_FILE, strlen(DAECL_LOCK_FILE)) == 0 ||
            daecl_is_temp_name(e->d_name))
            continue;
        entries++;
        if (example && n && shown < 3) {
            int w = snprintf(example + len, n - len, "%s%s", shown ? ", " : "", e->d_name);
            if (w > 0 && (size_t)w < n - len) {
                len += (size_t)w;
                shown++;
            }
        }
    }
    closedir(d);
    if (example && n && entries > shown && len + 8 < n)
        snprintf(example + len, n - len, ", ...");
    return entries ? DAECL_FOLDER_FOREIGN : DAECL_FOLDER_EMPTY;
}

static const char *kind_word(daecl_folder_kind kind)
{
    return kind == DAECL_FOLDER_SWEEP ? "sweep" : "run";
}

static int refuse_if_locked(const char *dir, daecl_err *err);

int daecl_folder_check_new(const char *dir, daecl_folder_kind kind, const char *flag,
                           daecl_err *err)
{
    char example[256];
    int rc = refuse_if_locked(dir, err); /* a run under way says so first */
    if (rc)
        return rc;
    switch (daecl_folder_inspect(dir, kind, example, sizeof example)) {
    case DAECL_FOLDER_ABSENT:
    case DAECL_FOLDER_EMPTY:
        return 0;
    case DAECL_FOLDER_OWN:
        if (kind == DAECL_FOLDER_RUN && exists_in(dir, "checkpoint.safetensors"))
            return daecl_err_set(err, DAECL_EUSAGE, "run folder %s already holds a run with a "
                                 "checkpoint; continue it with `daecl resume %s` or choose "
                                 "another %s", dir, dir, flag);
        if (kind == DAECL_FOLDER_SWEEP && exists_in(dir, "sweep.csv"))
            return daecl_err_set(err, DAECL_EUSAGE, "sweep folder %s already holds a sweep "
                                 "(sweep.csv); its rows would mix two sweeps' settings, so "
                                 "choose another %s or remove the folder", dir, flag);
        return 0;
    case DAECL_FOLDER_FOREIGN:
        break;
    }
    return daecl_err_set(err, DAECL_EUSAGE, "%s %s holds files daecl did not write (%s); daecl "
                         "writes only into a new or empty folder or a %s folder of its own, so "
                         "choose another %s",
                         flag, dir, example[0] ? example : "it cannot be read", kind_word(kind),
                         flag);
}

int daecl_folder_check_own_run(const char *dir, const char *command, daecl_err *err)
{
    char example[256];
    daecl_folder_state s = daecl_folder_inspect(dir, DAECL_FOLDER_RUN, example, sizeof example);
    if (s == DAECL_FOLDER_OWN)
        return 0;
    if (s == DAECL_FOLDER_ABSENT)
        return daecl_err_set(err, DAECL_EUSAGE, "run folder %s does not exist; give the folder "
                             "`daecl train` printed", dir);
    return daecl_err_set(err, DAECL_EUSAGE, "%s is not a daecl run folder (%s%s); `daecl %s` "
                         "works on the folders `daecl train` makes",
                         dir, s == DAECL_FOLDER_EMPTY ? "it is empty" : "it holds ",
                         s == DAECL_FOLDER_EMPTY ? "" : example, command);
}

/* ---- the lock -------------------------------------------------------------------- */

struct daecl_lock {
    char path[PATH_MAX];
    long pid;
};

/* A lock file's fields. */
typedef struct lock_info {
    long pid;
    char host[256];
    unsigned long long start; /* the process's start time, clock ticks after boot */
    char command[32];
    char since[32];
} lock_info;

/* The start time of process pid from /proc (field 22 of its stat), or 0. */
static unsigned long long process_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* the command name (field 2) may hold spaces and ')': skip to the last ')' */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    unsigned long long v = 0;
    for (int field = 3; field <= 22; field++) {
        while (*p == ' ')
            p++;
        if (field == 22) {
            v = strtoull(p, NULL, 10);
            break;
        }
        while (*p && *p != ' ')
            p++;
    }
    return v;
}

static void own_host(char *out, size_t n)
{
    if (gethostname(out, n) != 0 || !out[0])
        snprintf(out, n, "localhost");
    out[n - 1] = '\0';
}

static int parse_lock(const char *text, lock_info *li)
{
    memset(li, 0, sizeof *li);
    int have_pid = 0, have_host = 0;
    for (const char *l = text; *l;) {
        size_t len = strcspn(l, "\n");
        char line[320];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), l);
        l += len + (l[len] == '\n');
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        *sp = '\0';
        const char *v = sp + 1;
        if (strcmp(line, "pid") == 0)
            have_pid = (li->pid = strtol(v, NULL, 10)) > 0;
        else if (strcmp(line, "host") == 0)
            have_host = snprintf(li->host, sizeof li->host, "%s", v) > 0;
        else if (strcmp(line, "start") == 0)
            li->start = strtoull(v, NULL, 10);
        else if (strcmp(line, "command") == 0)
            snprintf(li->command, sizeof li->command, "%s", v);
        else if (strcmp(line, "since") == 0)
            snprintf(li->since, sizeof li->since, "%s", v);
    }
    return have_pid && have_host ? 0 : -1;
}

/* Reads a lock file; -1 when it is missing, unreadable or not yet written. */
static int read_lock(const char *path, lock_info *li, char *text, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = read(fd, text, n - 1);
    close(fd);
    if (got < 0)
        return -1;
    text[got] = '\0';
    return parse_lock(text, li);
}

/* 1 when the lock's process still runs: same host, the pid alive, and (where
 * /proc tells) the same start time, so a reused pid does not hold a lock. */
static int lock_alive(const lock_info *li)
{
    if (kill((pid_t)li->pid, 0) != 0 && errno == ESRCH)
        return 0;
    unsigned long long start = process_start(li->pid);
    return !(li->start && start && start != li->start);
}

/* The sentence for a lock held by a running process, or by another host
 * (whose processes cannot be asked); 0 when the lock is stale. */
static int refuse_held(const char *dir, const char *path, const lock_info *li, const char *host,
                       daecl_err *err)
{
    const char *sp = li->command[0] ? " " : "";
    if (strcmp(li->host, host) != 0)
        return daecl_err_set(err, DAECL_EUSAGE, "%s is locked by daecl%s%s (pid %ld on host %s, "
                             "since %s); a folder has one writer at a time, so wait for that "
                             "job, or if it is gone remove %s",
                             dir, sp, li->command, li->pid, li->host,
                             li->since[0] ? li->since : "an unknown time", path);
    if (lock_alive(li))
        return daecl_err_set(err, DAECL_EUSAGE, "%s is in use by daecl%s%s (pid %ld, since "
                             "%s); a folder has one writer at a time, so wait for it to finish, "
                             "stop it (kill %ld), or write elsewhere",
                             dir, sp, li->command, li->pid,
                             li->since[0] ? li->since : "an unknown time", li->pid);
    return 0;
}

static int refuse_if_locked(const char *dir, daecl_err *err)
{
    char path[PATH_MAX], text[1024], host[256];
    lock_info li;
    if (snprintf(path, sizeof path, "%s/%s", dir, DAECL_LOCK_FILE) >= (int)sizeof path ||
        read_lock(path, &li, text, sizeof text) != 0 || li.pid == (long)getpid())
        return 0;
    own_host(host, sizeof host);
    return refuse_held(dir, path, &li, host, err);
}

static int lock_text(const char *command, char *out, size_t n)
{
    char host[256], since[32];
    own_host(host, sizeof host);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return snprintf(out, n, "pid %ld\nhost %s\nstart %llu\ncommand %s\nsince %s\n",
                    (long)getpid(), host, process_start(getpid()), command, since);
}

/* Moves a stale lock out of the way. Another process may be taking the same
 * stale lock over at the same moment: the lock is renamed to a name of our
 * own first and checked to be the stale one we read; if it is not (the
 * other process already put its own lock there), it is put back. */
static int take_over(const char *path, const char *stale_text)
{
    char aside[PATH_MAX + 32], text[1024];
    snprintf(aside, sizeof aside, "%s.stale.%ld", path, (long)getpid());
    if (rename(path, aside) != 0)
        return errno == ENOENT ? 0 : -1; /* gone already: try to create ours */
    int fd = open(aside, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
    if (fd >= 0)
        close(fd);
    text[got > 0 ? got : 0] = '\0';
    if (strcmp(text, stale_text) != 0) {
        /* not the stale lock: give it back (link fails if a third came) */
        if (link(aside, path) != 0)
            daecl_log(DAECL_LOG_WARN, NULL, "lost a lock race on %s; the other process's lock "
                      "is in %s", path, aside);
        else
            unlink(aside);
        return 1;
    }
    unlink(aside);
    return 0;
}

/* Seconds after which a lock file that still cannot be read is stale. */
#define UNREADABLE_STALE_S 2

int daecl_lock_acquire(const char *dir, const char *command, daecl_lock **out, daecl_err *err)
{
    *out = NULL;
    daecl_lock *l = calloc(1, sizeof *l);
    if (!l)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory locking %s", dir);
    int rc = daecl_path_join(l->path, sizeof l->path, dir, DAECL_LOCK_FILE, err);
    if (rc) {
        free(l);
        return rc;
    }
    char mine[1024], host[256];
    int len = lock_text(command, mine, sizeof mine);
    own_host(host, sizeof host);
    int unreadable_waits = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = open(l->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, mine, (size_t)len);
            int e = errno;
            close(fd);
            if (w != len) {
                unlink(l->path);
                daecl_err_set(err, DAECL_EIO, "cannot write the lock file %s: %s; %s", l->path,
                              strerror(w < 0 ? e : EIO), daecl_errno_hint(w < 0 ? e : EIO));
                free(l);
                return DAECL_EIO;
            }
            l->pid = (long)getpid();
            *out = l;
            return 0;
        }
        if (errno != EEXIST) {
            int e = errno;
            rc = daecl_err_set(err, DAECL_EIO, "cannot create the lock file %s: %s; %s", l->path,
                               strerror(e), daecl_errno_hint(e));
            free(l);
            return rc;
        }
        lock_info li;
        char text[1024] = "";
        if (read_lock(l->path, &li, text, sizeof text) != 0) {
            /* Being written this very moment, or removed: look again. But a
             * writer fills its lock microseconds after creating it, so one
             * that is still unreadable seconds later lost its writer in
             * between (kill -9 there): stale, whoever it was. */
            struct stat st;
            if (stat(l->path, &st) == 0 && time(NULL) - st.st_mtime >= UNREADABLE_STALE_S) {
                if (take_over(l->path, text) < 0) {
                    int e = errno;
                    rc = daecl_err_set(err, DAECL_EIO, "cannot remove the unreadable lock %s, "
                                       "left by a daecl that was killed while writing it: %s; "
                                       "%s", l->path, strerror(e), daecl_errno_hint(e));
                    free(l);
                    return rc;
                }
                daecl_log(DAECL_LOG_INFO, NULL, "took over the lock of %s, which a daecl killed "
                          "while writing it left unreadable", dir);
                continue;
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            /* an unreadable lock is waited out until it counts as stale
             * (at most UNREADABLE_STALE_S + 1 seconds), not counted */
            if (unreadable_waits++ < (UNREADABLE_STALE_S + 1) * 50)
                attempt--;
            continue;
        }
        if (li.pid == (long)getpid()) {
            rc = daecl_err_set(err, DAECL_EINVAL, "%s is already locked by this process; this "
                               "is a bug in daecl, please report it", dir);
            free(l);
            return rc;
        }
        if ((rc = refuse_held(dir, l->path, &li, host, err))) {
            free(l);
            return rc;
        }
        if (take_over(l->path, text) < 0) {
            int e = errno;
            rc = daecl_err_set(err, DAECL_EIO, "cannot remove the stale lock %s of pid %ld, "
                               "which is no longer running: %s; %s", l->path, li.pid,
                               strerror(e), daecl_errno_hint(e));
            free(l);
            return rc;
        }
        daecl_log(DAECL_LOG_INFO, NULL, "took over the lock of %s from daecl %s (pid %ld), "
                  "which is no longer running", dir, li.command, li.pid);
    }
    rc = daecl_err_set(err, DAECL_EUSAGE, "cannot lock %s: its lock file %s keeps changing; "
                       "another daecl is starting there, so wait for it or write elsewhere",
                       dir, l->path);
    free(l);
    return rc;
}

void daecl_lock_release(daecl_lock *l)
{
    if (!l)
        return;
    lock_info li;
    char text[1024];
    if (read_lock(l->path, &li, text, sizeof text) == 0 && li.pid == l->pid)
        unlink(l->path);
    free(l);
}

/* ---- claiming ------------------------------------------------------------------------- */

static int write_marker(const char *dir, daecl_folder_kind kind, daecl_err *err)
{
    char path[PATH_MAX], text[256], since[32];
    int rc = daecl_path_join(path, sizeof path, dir, marker_name(kind), err);
    if (rc || exists_in(dir, marker_name(kind)))
        return rc;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(text, sizeof text, "a daecl %s folder, made by daecl %s on %s\n",
                     kind_word(kind), DAECL_VERSION, since);
    return daecl_write_file_atomic(path, text, (size_t)n, "folder marker", err);
}

int daecl_folder_claim(const char *dir, daecl_folder_kind kind, const char *command,
                       const char *flag, daecl_lock **lock, daecl_err *err)
{
    *lock = NULL;
    int rc = daecl_mkdirs(dir, err);
    if (rc)
        return rc;
    daecl_lock *l = NULL;
    if ((rc = daecl_lock_acquire(dir, command, &l, err)))
        return rc;
    /* Again under the lock: another process may have written there since. */
    if ((rc = daecl_folder_check_new(dir, kind, flag, err))) {
        daecl_lock_release(l);
        return rc;
    }
    if ((rc = write_marker(dir, kind, err))) {
        daecl_lock_release(l);
        return rc;
    }
    *lock = l;
    return 0;
}
