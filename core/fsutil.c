/* daecl — atomic writes, clearing up after interrupted ones, and folder
 * creation. */
#include "core/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

const char *daecl_errno_hint(int e)
{
    switch (e) {
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return "free disk space";
    case EFBIG:
        return "free disk space or raise the file size limit (ulimit -f)";
    case EACCES:
    case EPERM:
        return "check the folder's permissions";
    case EROFS:
        return "the file system is read-only; write elsewhere";
    case ENOENT:
    case ENOTDIR:
        return "the folder is missing; create it first";
    default:
        return "check the disk and the folder";
    }
}

/* Writes all n bytes, riding over short writes and EINTR; -1 with errno. */
static int write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) { /* cannot happen for regular files; do not spin */
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The one sentence for a failed step; e is that step's errno. */
static int write_failed(daecl_err *err, const char *what, const char *path, const char *step, int e)
{
    int had_previous = access(path, F_OK) == 0;
    return daecl_err_set(err, DAECL_EIO, "cannot write %s %s: %s (while %s); %s%s%s%s", what, path,
                         strerror(e), step, daecl_errno_hint(e),
                         had_previous ? " (the previous " : "", had_previous ? what : "",
                         had_previous ? " is intact)" : "");
}

int daecl_write_atomic(const char *path, const void *const *parts, const size_t *sizes,
                       size_t n_parts, const char *what, daecl_err *err)
{
    /* The temporary file sits beside the destination so rename() is atomic. */
    char dir[PATH_MAX], tmp[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dir_len = slash ? (size_t)(slash - path) : 0;
    if (!base[0])
        return daecl_err_set(err, DAECL_EINVAL, "cannot write %s %s: the path names a folder, "
                             "not a file", what, path);
    if (dir_len + 1 >= sizeof dir ||
        snprintf(tmp, sizeof tmp, "%.*s%s.%s.tmp.%ld", (int)dir_len, path, slash ? "/" : "", base,
                 (long)getpid()) >= (int)sizeof tmp)
        return daecl_err_set(err, DAECL_EINVAL, "cannot write %s %s: the path is too long", what,
                             path);
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (dir_len == 0)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)dir_len, path);

    /* Each step records its name and errno the moment it fails, before
     * close() or unlink() can disturb errno. */
    const char *step = "creating the temporary file";
    int e = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return write_failed(err, what, path, step, errno);
    /* The new file takes the mode of the one it replaces: a file the user
     * made private (0600) or read-only stays so. */
    struct stat old;
    if (stat(path, &old) == 0 && S_ISREG(old.st_mode) && fchmod(fd, old.st_mode & 07777) != 0) {
        e = errno;
        step = "giving the temporary file the mode of the file it replaces";
    }
    if (!e)
        step = "writing the temporary file";
    for (size_t i = 0; i < n_parts && !e; i++)
        if (sizes[i] && write_all(fd, parts[i], sizes[i]) != 0)
            e = errno;
    if (!e && fsync(fd) != 0) {
        e = errno;
        step = "syncing the temporary file";
    }
    /* close() can report a deferred write error (NFS, quotas): check it. */
    if (close(fd) != 0 && !e) {
        e = errno;
        step = "closing the temporary file";
    }
    if (!e && rename(tmp, path) != 0) {
        e = errno;
        step = "renaming the temporary file into place";
    }
    if (e) {
        unlink(tmp);
        return write_failed(err, what, path, step, e);
    }
    /* Without this the rename itself may not survive a power loss. Some file
     * systems cannot sync a folder (EINVAL): nothing more can be done there. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP)) {
        e = errno;
        if (dfd >= 0)
            close(dfd);
        return daecl_err_set(err, DAECL_EIO, "%s %s was written but its folder could not be "
                             "synced: %s; it may not survive a power loss", what, path, strerror(e));
    }
    close(dfd);
    return 0;
}

int daecl_write_file_atomic(const char *path, const void *data, size_t n, const char *what,
                            daecl_err *err)
{
    const void *parts[1] = {data};
    size_t sizes[1] = {n};
    return daecl_write_atomic(path, parts, sizes, 1, what, err);
}

/* The PID of a temporary file's name ".NAME.tmp.PID", or 0 when the name
 * is not one. */
static pid_t temp_owner(const char *name)
{
    const char *tag = name[0] == '.' ? strstr(name + 1, ".tmp.") : NULL;
    const char *p;
    while (tag && (p = strstr(tag + 1, ".tmp.")) != NULL) /* the last ".tmp." */
        tag = p;
    if (!tag || tag == name + 1)
        return 0;
    long pid = 0;
    for (p = tag + 5; *p; p++) {
        if (*p < '0' || *p > '9' || pid > (long)INT_MAX / 10)
            return 0;
        pid = pid * 10 + (*p - '0');
    }
    return p == tag + 5 ? 0 : (pid_t)pid;
}

int daecl_is_temp_name(const char *name)
{
    return temp_owner(name) > 0;
}

size_t daecl_remove_stale_temps(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        pid_t pid = temp_owner(e->d_name);
        /* kill(pid, 0) only asks whether the process exists (EPERM: it
         * does, under another user). A reused PID keeps a stale file: the
         * safe side, since the file of a live writer must not vanish. */
        if (pid <= 0 || pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            unlinkat(dirfd(d), e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

int daecl_mkdirs(const char *path, daecl_err *err)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", path);
    if (n < 0 || (size_t)n >= sizeof buf)
        return daecl_err_set(err, DAECL_EIO, "cannot create folder %s: the path is too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) && errno != EEXIST) {
            int e = errno;
            return daecl_err_set(err, DAECL_EIO, "cannot create folder %s: %s; %s", buf,
                                 strerror(e), daecl_errno_hint(e));
        }
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) {
        int e = errno;
        return daecl_err_set(err, DAECL_EIO, "cannot create folder %s: %s; %s", buf, strerror(e),
                             daecl_errno_hint(e));
    }
    struct stat st;
    if (stat(buf, &st) || !S_ISDIR(st.st_mode))
        return daecl_err_set(err, DAECL_EIO, "cannot create folder %s: a file of that name exists",
                             buf);
    return 0;
}

int daecl_path_join(char *out, size_t n, const char *dir, const char *name, daecl_err *err)
{
    int w = snprintf(out, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n)
        return daecl_err_set(err, DAECL_EIO, "path %s/%s is too long; use shorter folder names",
                             dir, name);
    return 0;
}

const char *daecl_cache_dir(void)
{
    static char dir[1024];
    const char *off = getenv("DAECL_CACHE");
    if (off && strcmp(off, "0") == 0)
        return NULL;
    const char *v = getenv("DAECL_CACHE_DIR");
    int n;
    if (v && *v) {
        n = snprintf(dir, sizeof dir, "%s", v);
    } else if ((v = getenv("XDG_CACHE_HOME")) && *v) {
        n = snprintf(dir, sizeof dir, "%s/daecl", v);
    } else if ((v = getenv("HOME")) && *v) {
        n = snprintf(dir, sizeof dir, "%s/.cache/daecl", v);
    } else {
        return NULL;
    }
    if (n < 0 || (size_t)n >= sizeof dir)
        return NULL;
    return dir;
}
