/* daecl — the loading rules for plugin files (pluginfile.h): the walk from
 * / that checks who may write each folder on the way, and the opening. */
#include "core/pluginfile.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/registry.h"

#define MAX_LINKS 40 /* as the kernel's MAXSYMLINKS */

/* Root and the user running daecl: who may own what others can write to. */
static bool trusted(uid_t uid)
{
    return uid == 0 || uid == geteuid();
}

bool daecl_pluginfile_named(const char *base)
{
    size_t n = strlen(base);
    return strncmp(base, "daecl-", 6) == 0 && n > 9 && strcmp(base + n - 3, ".so") == 0;
}

/* The walk's state: the folder reached so far (a real path, "" for /), the
 * names still to look up, and the last link followed (for the sentence). */
typedef struct walk {
    const char *file;
    char cur[PATH_MAX];
    char todo[2 * PATH_MAX];
    char via[PATH_MAX + 40];
    int links;
} walk;

/* May `dir` (mode and owner in st) hold a plugin's way? Sets *shared when
 * it is sticky and writable by others, so what lies in it must be ours. */
static int check_folder(const walk *w, const char *dir, const struct stat *st, bool *shared,
                        daecl_err *err)
{
    unsigned mode = (unsigned)(st->st_mode & 07777);
    *shared = false;
    if (!(st->st_mode & S_IWOTH))
        return 0;
    if (!(st->st_mode & S_ISVTX))
        return daecl_err_set(
            err, DAECL_EPLUGIN,
            "plugin %s is refused: the folder %s%s is writable by every user (mode "
            "%04o) and not sticky, so anyone could replace the plugin; run `chmod o-w "
            "%s` if you trust that folder, or move the plugin",
            w->file, dir, w->via, mode, dir);
    if (!trusted(st->st_uid))
        return daecl_err_set(
            err, DAECL_EPLUGIN,
            "plugin %s is refused: the folder %s%s is writable by every user (mode "
            "%04o) and belongs to uid %u, not to root or you, so its owner could replace "
            "the plugin; move the plugin to a folder of your own",
            w->file, dir, w->via, mode, (unsigned)st->st_uid);
    *shared = true;
    return 0;
}

/* Follows the link `at`: its target replaces it in the names to look up. */
static int follow(walk *w, const char *at, const char *rest, daecl_err *err)
{
    char target[PATH_MAX], todo[2 * PATH_MAX];
    if (++w->links > MAX_LINKS)
        return daecl_err_set(
            err, DAECL_EPLUGIN,
            "plugin %s cannot be read: more than %d links on the way to it (a loop?)", w->file,
            MAX_LINKS);
    ssize_t n = readlink(at, target, sizeof target - 1);
    if (n < 0)
        return daecl_err_set(err, DAECL_EPLUGIN, "plugin %s cannot be read: %s: %s", w->file, at,
                             strerror(errno));
    target[n] = '\0';
    if ((size_t)snprintf(todo, sizeof todo, "%s/%s", target, rest) >= sizeof todo)
        return daecl_err_set(err, DAECL_EPLUGIN, "plugin %s cannot be read: its path is too long",
                             w->file);
    if (target[0] == '/')
        w->cur[0] = '\0';
    memcpy(w->todo, todo, sizeof todo);
    snprintf(w->via, sizeof w->via, " (reached through the link %s)", at);
    return 0;
}

/* Looks the names of w->todo up one at a time from w->cur, as the kernel
 * does, checking each folder a name is looked up in. O(names + links)
 * lstat calls: a few dozen per plugin. */
static int walk_path(walk *w, daecl_err *err)
{
    for (;;) {
        char *p = w->todo;
        while (*p == '/')
            p++;
        size_t len = strcspn(p, "/");
        if (len == 0)
            return daecl_err_set(
                err, DAECL_EPLUGIN,
                "plugin %s is not a regular file; a plugin is a shared object (.so)", w->file);
        char name[NAME_MAX + 1], rest[2 * PATH_MAX];
        if (len > NAME_MAX)
            return daecl_err_set(err, DAECL_EPLUGIN,
                                 "plugin %s cannot be read: a name on its path is too long",
                                 w->file);
        memcpy(name, p, len);
        name[len] = '\0';
        snprintf(rest, sizeof rest, "%s", p + len + strspn(p + len, "/"));
        bool last = rest[0] == '\0';
        memcpy(w->todo, rest, strlen(rest) + 1);
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0) { /* w->cur is real: its parent is the physical one */
            char *slash = strrchr(w->cur, '/');
            if (slash)
                *slash = '\0';
            continue;
        }
        const char *dir = w->cur[0] ? w->cur : "/";
        struct stat ds, cs;
        bool shared;
        if (stat(dir, &ds) != 0)
            return daecl_err_set(err, DAECL_EPLUGIN, "plugin %s cannot be read: %s: %s", w->file,
                                 dir, strerror(errno));
        int rc = check_folder(w, dir, &ds, &shared, err);
        if (rc)
            return rc;
        char at[PATH_MAX];
        if ((size_t)snprintf(at, sizeof at, "%s/%s", w->cur, name) >= sizeof at)
            return daecl_err_set(err, DAECL_EPLUGIN,
                                 "plugin %s cannot be read: its path is too long", w->file);
        if (lstat(at, &cs) != 0)
            return daecl_err_set(err, DAECL_EPLUGIN, "plugin %s cannot be read: %s: %s", w->file,
                                 at, strerror(errno));
        if (shared && !trusted(cs.st_uid))
            return daecl_err_set(
                err, DAECL_EPLUGIN,
                "plugin %s is refused: %s%s belongs to uid %u, not to root or you, "
                "and lies in %s, which every user may write to (mode %04o), so anyone "
                "could have put it there; move the plugin to a folder of your own",
                w->file, at, w->via, (unsigned)cs.st_uid, dir, (unsigned)(ds.st_mode & 07777));
        if (S_ISLNK(cs.st_mode)) {
            if ((rc = follow(w, at, rest, err)))
                return rc;
            continue;
        }
        if (!last) {
            if (!S_ISDIR(cs.st_mode))
                return daecl_err_set(err, DAECL_EPLUGIN,
                                     "plugin %s cannot be read: %s is not a folder", w->file, at);
            memcpy(w->cur, at, strlen(at) + 1);
            continue;
        }
        if (!S_ISREG(cs.st_mode))
            return daecl_err_set(
                err, DAECL_EPLUGIN,
                "plugin %s is not a regular file; a plugin is a shared object (.so)", w->file);
        if (cs.st_mode & S_IWOTH)
            return daecl_err_set(err, DAECL_EPLUGIN,
                                 "plugin %s is writable by every user (mode %04o), so anyone could "
                                 "replace its code; run `chmod o-w %s` if you trust it",
                                 w->file, (unsigned)(cs.st_mode & 07777), w->file);
        return 0;
    }
}

int daecl_pluginfile_check_path(const char *path, daecl_err *err)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!daecl_pluginfile_named(base))
        return daecl_err_set(err, DAECL_EPLUGIN,
                             "plugin %s is not named daecl-<kind>-<name>.so, so the registry never "
                             "loads it; name it for its kind and name (daecl-corruption-NAME.so)",
                             path);
    walk w = { .file = path };
    if (path[0] == '/') {
        snprintf(w.todo, sizeof w.todo, "%s", path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return daecl_err_set(err, DAECL_EPLUGIN,
                                 "plugin %s cannot be read: the current folder is unknown (%s)",
                                 path, strerror(errno));
        if ((size_t)snprintf(w.todo, sizeof w.todo, "%s/%s", cwd, path) >= sizeof w.todo)
            return daecl_err_set(err, DAECL_EPLUGIN,
                                 "plugin %s cannot be read: its path is too long", path);
    }
    return walk_path(&w, err);
}

int daecl_pluginfile_open(const char *path, daecl_pluginfile *out, daecl_err *err)
{
    memset(out, 0, sizeof *out);
    out->stage = DAECL_PLUGINFILE_PATH;
    int rc = daecl_pluginfile_check_path(path, err);
    if (rc)
        return rc;
    out->stage = DAECL_PLUGINFILE_OPEN;
    /* dlopen searches the library path for a bare name: make it a path. */
    char local[PATH_MAX];
    snprintf(local, sizeof local, "%s%s", strchr(path, '/') ? "" : "./", path);
    void *h = dlopen(local, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return daecl_err_set(err, DAECL_EPLUGIN,
                             "plugin %s cannot be opened by dlopen(RTLD_NOW | RTLD_LOCAL): %s",
                             path, why ? why : "unknown error");
    }
    dlerror();
    daecl_plugin_entry_fn fn;
    *(void **)&fn = dlsym(h, DAECL_PLUGIN_ENTRY_SYMBOL);
    if (!fn) {
        dlclose(h);
        return daecl_err_set(
            err, DAECL_EPLUGIN,
            "plugin %s has no entry point %s; a plugin exports `const daecl_plugin "
            "*daecl_plugin_entry(void)` with DAECL_EXPORT",
            path, DAECL_PLUGIN_ENTRY_SYMBOL);
    }
    out->handle = h;
    out->plugin = fn();
    out->stage = DAECL_PLUGINFILE_DESCRIPTOR;
    if ((rc = daecl_plugin_validate(out->plugin, path, err)))
        return rc;
    out->stage = DAECL_PLUGINFILE_NAME;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char want[128];
    const daecl_plugin *p = out->plugin;
    snprintf(want, sizeof want, "daecl-%s-%s.so", daecl_plugin_kind_name(p->kind), p->name);
    if (strcmp(base, want) != 0)
        return daecl_err_set(
            err, DAECL_EPLUGIN,
            "plugin %s holds %s '%s', so it must be named %s, the name configs and "
            "the registry know it by; rename it",
            path, daecl_plugin_kind_name(p->kind), p->name, want);
    out->stage = 0;
    return 0;
}
