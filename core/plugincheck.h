/* daecl — `daecl plugin check`: loads one plugin file and checks it the way
 * the core will use it (descriptor and schema; likelihood gradients against
 * finite differences, means and scores against samples, normalisation over
 * the declared support (normcheck.h); corruption noise addressing and
 * statistics; device code against the host reference; a comm's ops in
 * the world this process was started in), and prints one
 * PASS/FAIL/SKIP/WARN line per check. */
#ifndef DAECL_CORE_PLUGINCHECK_H
#define DAECL_CORE_PLUGINCHECK_H

#include <stdio.h>

#include "daecl/plugin.h"

typedef enum daecl_plugincheck_scope {
    DAECL_PLUGINCHECK_ALL = 0,        /* host checks, then the device comparison */
    DAECL_PLUGINCHECK_NO_DEVICE = 1,  /* host checks only */
    DAECL_PLUGINCHECK_DEVICE_ONLY = 2 /* loading, descriptor, then the device comparison */
} daecl_plugincheck_scope;

typedef struct daecl_plugincheck_opts {
    int scope; /* daecl_plugincheck_scope */
    /* The backend the device comparison runs on: `backend` when not NULL
     * (tests hand in a descriptor), else the backend plugin named
     * `backend_name` (NULL: "opencl") found on the default search path. */
    const daecl_plugin *backend;
    const char *backend_name;
} daecl_plugincheck_opts;

typedef struct daecl_plugincheck_result {
    unsigned passed, failed, skipped;
} daecl_plugincheck_result;

/* Checks the plugin file at `path`, printing the report to `out`. opts may
 * be NULL (every check, on the opencl backend). A plugin that cannot be
 * loaded is a failed check, not an error: returns 0 whenever the checks ran,
 * with the verdicts counted in *res; negative (err filled) only when they
 * could not (out of memory). A backend file is never unloaded. */
int daecl_plugincheck_file(const char *path, const daecl_plugincheck_opts *opts, FILE *out,
                           daecl_plugincheck_result *res, daecl_err *err);

/* The same checks on a descriptor already in memory (not yet initialised:
 * its init() is called here); `origin` names it in the report. */
int daecl_plugincheck_descriptor(const daecl_plugin *plugin, const char *origin,
                                 const daecl_plugincheck_opts *opts, FILE *out,
                                 daecl_plugincheck_result *res, daecl_err *err);

#endif
