/* daecl — which plugin files may be loaded: the one set of rules the
 * registry and `daecl plugin check` both apply, and the opening of a file
 * that passes them. The rules, in order, each refusal one sentence that
 * starts "plugin FILE" (FILE as given):
 *   name    the file is named daecl-<kind>-<name>.so, and (once loaded) for
 *           the kind and name its descriptor declares;
 *   path    walking from / to the file one name at a time, as the kernel
 *           does, following every link: no folder on the way is writable by
 *           other users unless it is sticky and owned by root or by you, and
 *           then what lies in it on the way belongs to root or to you; the
 *           file is a regular file not writable by other users (ssh checks
 *           its key files so);
 *   open    dlopen(RTLD_NOW | RTLD_LOCAL) succeeds and exports
 *           daecl_plugin_entry;
 *   ABI     the descriptor passes daecl_plugin_validate (registry.h). */
#ifndef DAECL_CORE_PLUGINFILE_H
#define DAECL_CORE_PLUGINFILE_H

#include <stdbool.h>

#include "daecl/plugin.h"

/* The rule a refusal broke, for a report that names its check. */
typedef enum daecl_pluginfile_stage {
    DAECL_PLUGINFILE_PATH = 1,   /* file name pattern, modes and owners: nothing was loaded */
    DAECL_PLUGINFILE_OPEN,       /* dlopen or the entry point: nothing stays loaded */
    DAECL_PLUGINFILE_DESCRIPTOR, /* ABI and descriptor: loaded, handle kept */
    DAECL_PLUGINFILE_NAME        /* a valid descriptor in a misnamed file: handle kept */
} daecl_pluginfile_stage;

typedef struct daecl_pluginfile {
    void *handle;                 /* dlopen's; NULL when nothing stays loaded */
    const daecl_plugin *plugin;   /* the plugin's own descriptor, while handle is open */
    daecl_pluginfile_stage stage; /* the rule refused, 0 when accepted */
} daecl_pluginfile;

/* Applies every rule to `path` and opens it. 0: accepted, out->handle and
 * out->plugin set (init() not called). DAECL_EPLUGIN: refused, err holds
 * the sentence and out->stage the rule; where out->handle is not NULL the
 * caller dlcloses it (or, for a check, goes on with out->plugin).
 * DAECL_ENOMEM only when out of memory. */
int daecl_pluginfile_open(const char *path, daecl_pluginfile *out, daecl_err *err);

/* Whether a file name has the form daecl-*.so (the registry opens no other). */
bool daecl_pluginfile_named(const char *base);

/* The path rules alone (name pattern, modes, owners): 0 or DAECL_EPLUGIN
 * with the sentence. Loads nothing. */
int daecl_pluginfile_check_path(const char *path, daecl_err *err);

#endif
