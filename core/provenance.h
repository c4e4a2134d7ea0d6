/* daecl — a run's provenance: for every plugin it used, the name, version,
 * file and SHA-256 that summary.json ("plugins") and each checkpoint
 * ("daecl.plugins") record, and the warnings a run gives about them: at
 * train time when a plugin shadows one of the same name later in the search
 * path, at resume when one changed since the checkpoint. */
#ifndef DAECL_CORE_PROVENANCE_H
#define DAECL_CORE_PROVENANCE_H

#include "core/config.h"
#include "core/registry.h"

/* *out gets {"corruption": {"name", "version", "file", "sha256"},
 * "likelihood": {...}, "backend": {...}} as compact JSON (caller frees).
 * Reads each plugin file once to hash it: O(file sizes), a few ms. */
int daecl_provenance_json(const daecl_config *c, char **out, daecl_err *err);

/* The SHA-256 of a whole file as 64 lowercase hex digits and a NUL. */
int daecl_provenance_sha256_file(const char *path, char hex[65], daecl_err *err);

/* A warning for each plugin of c that shadows another of its kind and name
 * found later in reg's search path. Returns how many it gave. */
int daecl_provenance_warn_shadowed(const daecl_config *c, const daecl_registry *reg);

/* A warning for each plugin whose version or file content differs between
 * `then` (a checkpoint's daecl.plugins; NULL for a checkpoint from before
 * daecl recorded it: no warning) and `now` (daecl_provenance_json's), under
 * the same name; `ckpt` names the checkpoint. Returns how many it gave. */
int daecl_provenance_warn_changed(const char *then, const char *now, const char *ckpt);

#endif
