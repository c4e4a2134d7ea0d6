/* daecl — what a run records about its plugins, and the warnings about
 * them (provenance.h). */
#include "core/provenance.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"

/* The plugin sections of a config, in the order they are recorded. */
static const daecl_plugin_cfg *section(const daecl_config *c, int i, const char **kind)
{
    static const char *const kinds[3] = { "corruption", "likelihood", "backend" };
    *kind = kinds[i];
    return i == 0 ? &c->corruption : i == 1 ? &c->likelihood : &c->backend;
}

int daecl_provenance_sha256_file(const char *path, char hex[65], daecl_err *err)
{
    hex[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return daecl_err_set(err, DAECL_EIO, "cannot read plugin %s to record its SHA-256: %s",
                             path, strerror(errno));
    daecl_sha256 s;
    daecl_sha256_init(&s);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        daecl_sha256_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return daecl_err_set(err, DAECL_EIO,
                             "cannot read plugin %s to record its SHA-256: a "
                             "read error",
                             path);
    unsigned char d[DAECL_SHA256_BYTES];
    daecl_sha256_final(&s, d);
    daecl_sha256_hex(d, hex);
    return 0;
}

int daecl_provenance_json(const daecl_config *c, char **out, daecl_err *err)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    int rc = o ? 0 : DAECL_ENOMEM;
    for (int i = 0; i < 3 && rc == 0; i++) {
        const char *kind;
        const daecl_plugin_cfg *pc = section(c, i, &kind);
        if (!pc->plugin)
            continue;
        char hex[65] = "";
        /* In-memory plugins (tests) have no file to hash. */
        if (pc->path && (rc = daecl_provenance_sha256_file(pc->path, hex, err)))
            break;
        cJSON *p = cJSON_AddObjectToObject(o, kind);
        if (!p || !cJSON_AddStringToObject(p, "name", pc->plugin->name) ||
            !cJSON_AddStringToObject(p, "version", pc->plugin->version) ||
            !cJSON_AddStringToObject(p, "file", pc->path ? pc->path : "") ||
            !cJSON_AddStringToObject(p, "sha256", hex))
            rc = DAECL_ENOMEM;
    }
    if (rc == 0 && !(*out = cJSON_PrintUnformatted(o)))
        rc = DAECL_ENOMEM;
    cJSON_Delete(o);
    if (rc == DAECL_ENOMEM)
        daecl_err_set(err, rc, "out of memory recording the run's plugins");
    return rc;
}

int daecl_provenance_warn_shadowed(const daecl_config *c, const daecl_registry *reg)
{
    int n = 0;
    for (int i = 0; i < 3; i++) {
        const char *kind;
        const daecl_plugin_cfg *pc = section(c, i, &kind);
        const char *hidden =
            pc->plugin ? daecl_registry_shadowed(reg, pc->plugin->kind, pc->plugin->name) : NULL;
        if (!hidden)
            continue;
        daecl_log(DAECL_LOG_WARN, NULL,
                  "%s plugin '%s' is loaded from %s (version %s), which "
                  "shadows %s, found later in the search path %s; remove the copy you do not "
                  "want, or reorder DAECL_PLUGIN_PATH",
                  kind, pc->plugin->name, pc->path, pc->plugin->version, hidden,
                  daecl_registry_search_path(reg));
        n++;
    }
    return n;
}

static const char *field(const cJSON *o, const char *kind, const char *key)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, kind);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int daecl_provenance_warn_changed(const char *then, const char *now, const char *ckpt)
{
    cJSON *a = then ? cJSON_Parse(then) : NULL, *b = now ? cJSON_Parse(now) : NULL;
    int n = 0;
    for (int i = 0; i < 3 && a && b; i++) {
        static const char *const kinds[3] = { "corruption", "likelihood", "backend" };
        const char *kind = kinds[i];
        const char *name = field(b, kind, "name"), *name0 = field(a, kind, "name");
        if (!name || !name0 || strcmp(name, name0) != 0)
            continue; /* another plugin: the config's checks judge that */
        const char *ver = field(b, kind, "version"), *ver0 = field(a, kind, "version");
        const char *sha = field(b, kind, "sha256"), *sha0 = field(a, kind, "sha256");
        const char *file = field(b, kind, "file");
        int other_version = ver && ver0 && strcmp(ver, ver0) != 0;
        int other_bytes = sha && sha0 && *sha && *sha0 && strcmp(sha, sha0) != 0;
        if (other_version)
            daecl_log(DAECL_LOG_WARN, NULL,
                      "%s plugin '%s' is version %s now but was %s when %s "
                      "was written (file %s); the run goes on with version %s, so its results "
                      "may differ from an uninterrupted run",
                      kind, name, ver, ver0, ckpt, file ? file : "?", ver);
        else if (other_bytes)
            daecl_log(DAECL_LOG_WARN, NULL,
                      "%s plugin '%s' (file %s) changed since %s was written "
                      "(SHA-256 %.12s... then, %.12s... now, both version %s); the run goes on "
                      "with the file as it is now, so its results may differ from an "
                      "uninterrupted run",
                      kind, name, file ? file : "?", ckpt, sha0, sha, ver ? ver : "?");
        n += other_version || other_bytes;
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    return n;
}
