/* daecl — the plugin registry: finds, opens and validates plugins.
 *
 * Search path: $DAECL_PLUGIN_PATH (colon-separated), then the plugin folder
 * beside the running program (<bindir>/../lib/daecl/plugins: the build
 * tree's for build/bin/daecl, the installed one for an installed daecl, even
 * one installed with `cmake --install --prefix`), then the build tree's
 * plugin folder (only for a program that is not installed), then
 * <prefix>/lib/daecl/plugins; a folder already searched is not searched
 * again. Every daecl-*.so in those folders is opened with
 * RTLD_NOW | RTLD_LOCAL and its descriptor checked;
 * each refusal is kept as one sentence naming the file. The rules a file
 * must pass are core/pluginfile.h's, which `daecl plugin check` applies too.
 * A plugin whose kind and name were already found earlier in the path is
 * shadowed: listed among the refusals, naming both files, and recorded
 * with the one that wins (daecl_registry_shadowed). Corruption and likelihood plugins, and any plugin refused before
 * its init() ran, are dlclose'd (refused ones at once, accepted ones by
 * daecl_registry_destroy); a backend or comm whose file was opened stays
 * loaded for the life of the process, since its driver's (or MPI library's)
 * threads and exit handlers may still run in it. */
#ifndef DAECL_CORE_REGISTRY_H
#define DAECL_CORE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "daecl/backend.h"
#include "daecl/plugin.h"

typedef struct daecl_registry daecl_registry;

/* search_path NULL: the default path above; "" searches nowhere (tests add
 * plugins with daecl_registry_add). */
int daecl_registry_create(const char *search_path, daecl_registry **out, daecl_err *err);
void daecl_registry_destroy(daecl_registry *reg);

/* Validates and adds an in-memory descriptor; `origin` stands in for a file
 * name in messages. Fails (and adds nothing) where a file would be refused. */
int daecl_registry_add(daecl_registry *reg, const daecl_plugin *plugin, const char *origin,
                       daecl_err *err);

/* The accepted plugin of that kind and name, or NULL; *path (if not NULL)
 * gets its file. */
const daecl_plugin *daecl_registry_find(const daecl_registry *reg, daecl_plugin_kind kind,
                                        const char *name, const char **path);

/* "FILE (version V), ..." of the plugins of that kind and name that the
 * accepted one shadows (found later in the path), or NULL. */
const char *daecl_registry_shadowed(const daecl_registry *reg, daecl_plugin_kind kind,
                                    const char *name);

/* Accepted plugins and refusals, in discovery order, for `daecl plugins`. */
size_t daecl_registry_count(const daecl_registry *reg);
const daecl_plugin *daecl_registry_at(const daecl_registry *reg, size_t i, const char **path);
size_t daecl_registry_refused_count(const daecl_registry *reg);
const char *daecl_registry_refused_at(const daecl_registry *reg, size_t i); /* one sentence */
/* The folders searched, colon-separated, for messages. */
const char *daecl_registry_search_path(const daecl_registry *reg);

/* Checks a descriptor without loading anything: ABI, sizes, kind, name,
 * ops table and its required slots, schema (names, types, defaults within
 * range). `origin` names the file in the sentence. */
int daecl_plugin_validate(const daecl_plugin *plugin, const char *origin, daecl_err *err);

/* The host table handed to every plugin's init(). */
const daecl_host *daecl_host_table(void);

/* Whether a plugin of this kind is never dlclose'd once opened (backends
 * and comms: threads and exit handlers of their libraries may run in it). */
bool daecl__registry_stays_loaded(uint32_t kind);

/* "corruption", "likelihood", "backend", "comm" (or "unknown"). */
const char *daecl_plugin_kind_name(uint32_t kind);
/* Parses a kind name; 0 when unknown. */
uint32_t daecl_plugin_kind_parse(const char *name);

/* Packs resolved values into the floats ops receive (plugin.h, "Packed
 * parameters"); returns the count, at most DAECL_MAX_PACKED_PARAMS. */
size_t daecl_params_pack(const daecl_param_spec *spec, size_t n_spec,
                         const daecl_param_value *values, float *packed);

#endif
