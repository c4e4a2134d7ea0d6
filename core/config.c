/* daecl — experiment configs (config.h): reads the YAML file into a tree
 * (yamltree.c), applies key=value overrides to that tree, validates it against
 * the schema tables (config_schema.c) and each plugin's own schema, fills a
 * daecl_config, and writes a config back as YAML. */
#include "core/config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/backend_auto.h"
#include "core/config_schema.h"
#include "core/error.h"
#include "core/log.h"
#include "core/toy.h"
#include "core/yamltree.h"

/* What a config owns besides its fixed fields: plugin STRING and ENUM values. */
struct daecl_config_tree {
    char **strs;
    size_t n, cap;
};

/* The state of one load: where messages point, and what blame falls on. */
typedef struct vctx {
    const char *file; /* the config as named, for err->file */
    const char *const *overrides;
    daecl_err *err;
    daecl_config *cfg;
    const daecl_registry *reg;
    const char *base;        /* absolute folder that relative data paths resolve against */
    int was_empty;           /* the file had no document */
    const daecl__ynode *root;
    const daecl__ynode *at_nesterov, *at_tied, *at_walkback_p, *at_lr_min; /* rules across keys */
} vctx;

/* Where one plugin's config comes from and how messages name it: a plugin
 * section (where == kind == "backend") or an item of parallel.devices
 * (where "parallel.devices.1", kind "backend"). */
typedef struct plugin_slot {
    const char *where;          /* the dotted path of the mapping */
    const char *kind;           /* the plugin kind's name, also the infix of its files */
    daecl_plugin_kind plugin_kind;
    const char *default_plugin; /* when the mapping has no `plugin:` */
    const char *extra;          /* a key of the mapping that is not a parameter, or NULL */
} plugin_slot;

/* ---- errors ------------------------------------------------------------------ */

/* One sentence about node n: file:line:col for nodes of the file, the
 * override as typed for nodes an override made. Never allocates. */
static int report(vctx *v, const daecl__ynode *n, const char *msg)
{
    if (n && n->src >= 0)
        return daecl_err_set_at(v->err, DAECL_ECONFIG, "", 0, 0, "override '%.200s': %s",
                                v->overrides[n->src], msg);
    return daecl_err_set_at(v->err, DAECL_ECONFIG, v->file, n ? n->line : 0, n ? n->col : 0,
                            "%s", msg);
}

static int fail_at(vctx *v, const daecl__ynode *n, const char *fmt, ...) DAECL_PRINTF(3, 4);
static int fail_at(vctx *v, const daecl__ynode *n, const char *fmt, ...)
{
    char msg[DAECL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return report(v, n, msg);
}

static int fail_override(vctx *v, size_t i, const char *fmt, ...) DAECL_PRINTF(3, 4);
static int fail_override(vctx *v, size_t i, const char *fmt, ...)
{
    daecl__ynode at = {.src = (int)i};
    char msg[DAECL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return report(v, &at, msg);
}

static int oom(daecl_err *err)
{
    return daecl_err_set(err, DAECL_ENOMEM, "out of memory while loading the config; free some "
                                            "memory and try again");
}

/* "a, b, c" into buf. */
static void join_names(char *buf, size_t n, const char *const *names, size_t n_names)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n_names && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", names[i]);
}

/* An unknown key: the nearest valid one, or the list of valid ones. */
static int unknown_key(vctx *v, const daecl__ynode *key, const char *where,
                       const char *const *names, size_t n_names)
{
    daecl__near near;
    char list[512], what[160];
    daecl__near_init(&near, key->str);
    for (size_t i = 0; i < n_names; i++)
        daecl__near_add(&near, names[i], strlen(names[i]));
    if (where[0])
        snprintf(what, sizeof what, "unknown key '%.60s' in '%s'", key->str, where);
    else
        snprintf(what, sizeof what, "unknown top-level key '%.60s'", key->str);
    if (near.best)
        return fail_at(v, key, "%s; did you mean '%.*s'?", what, (int)near.best_len, near.best);
    join_names(list, sizeof list, names, n_names);
    return fail_at(v, key, "%s; the valid keys are %s", what, list);
}

/* ---- owned strings ------------------------------------------------------------- */

static const char *own(daecl_config *cfg, const char *s)
{
    struct daecl_config_tree *t = cfg->tree;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        char **strs = realloc(t->strs, cap * sizeof *strs);
        if (!strs)
            return NULL;
        t->strs = strs;
        t->cap = cap;
    }
    char *copy = strdup(s ? s : "");
    if (!copy)
        return NULL;
    t->strs[t->n++] = copy;
    return copy;
}

/* ---- paths ----------------------------------------------------------------------- */

/* dir + "/" + rel into out, dropping leading "./" of rel; -1 when too long. */
static int join_path(const char *dir, const char *rel, char *out, size_t n)
{
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
        while (*rel == '/')
            rel++;
    }
    size_t ld = strlen(dir);
    int w = snprintf(out, n, "%s%s%s", dir, ld && dir[ld - 1] == '/' ? "" : "/", rel);
    return w < 0 || (size_t)w >= n ? -1 : 0;
}

/* The absolute folder of `path` (the cwd when it has none). */
static int base_folder(const char *path, char *out, size_t n, daecl_err *err)
{
    char cwd[DAECL_PATH_MAX];
    const char *slash = path ? strrchr(path, '/') : NULL;
    if (path && path[0] == '/') {
        size_t len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= n)
            return daecl_err_set(err, DAECL_ECONFIG, "the config path %.200s is too long", path);
        memcpy(out, path, len);
        out[len] = '\0';
        return 0;
    }
    if (!getcwd(cwd, sizeof cwd))
        return daecl_err_set(err, DAECL_EIO,
                             "cannot get the current folder (%s) to resolve relative data paths; "
                             "run daecl from a folder that still exists",
                             strerror(errno));
    if (!slash) {
        snprintf(out, n, "%s", cwd);
        return 0;
    }
    int w = snprintf(out, n, "%s/%.*s", cwd, (int)(slash - path), path);
    if (w < 0 || (size_t)w >= n)
        return daecl_err_set(err, DAECL_ECONFIG, "the config path %.200s is too long", path);
    return 0;
}

/* ---- overrides --------------------------------------------------------------------- */

static int is_index(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

static const daecl__cfg_section *plugin_section_named(const char *name)
{
    for (size_t i = 0; i < daecl__cfg_n_sections; i++)
        if (daecl__cfg_sections[i].kind == DAECL__SEC_PLUGIN &&
            strcmp(daecl__cfg_sections[i].name, name) == 0)
            return &daecl__cfg_sections[i];
    return NULL;
}

/* `corruption: none` is `corruption: {plugin: none}`; an empty section is
 * an empty mapping. Applied to the file and again after every override. */
static int normalize_plugins(daecl__ynode *root)
{
    for (size_t i = 0; i < root->n; i++) {
        daecl__ynode *val = root->vals[i];
        if (!plugin_section_named(root->keys[i]->str) || val->kind != DAECL__Y_SCALAR)
            continue;
        daecl__ynode *map = daecl__ynode_coll(DAECL__Y_MAP, val->line, val->col, val->src);
        if (!map)
            return DAECL_ENOMEM;
        if (!daecl__ynode_is_null(val)) {
            daecl__ynode *key = daecl__ynode_scalar("plugin", 6, val->line, val->col, val->src);
            if (!key || daecl__ynode_push(map, key, val) != 0) {
                daecl__ynode_free(key);
                daecl__ynode_free(map);
                return DAECL_ENOMEM;
            }
        } else {
            daecl__ynode_free(val);
        }
        root->vals[i] = map;
    }
    return 0;
}

/* Setting `SECTION.plugin` (or `parallel.devices.N.plugin`) to another
 * plugin drops the mapping's other keys but `keep` (NULL: none): they were
 * that plugin's parameters. */
static void drop_old_plugin_keys(daecl__ynode *section, const char *default_plugin,
                                 const char *keep, const daecl__ynode *val)
{
    long at = daecl__ymap_find(section, "plugin");
    const char *old = default_plugin;
    if (at >= 0 && section->vals[at]->kind == DAECL__Y_SCALAR)
        old = section->vals[at]->str;
    if (val->kind == DAECL__Y_SCALAR && strcmp(val->str, old) == 0)
        return;
    for (size_t i = section->n; i-- > 0;)
        if (strcmp(section->keys[i]->str, "plugin") != 0 &&
            !(keep && strcmp(section->keys[i]->str, keep) == 0))
            daecl__ymap_remove(section, i);
}

/* Walks `path` (parts[0..n_parts)) from root, making missing sections on the
 * way, and sets the last part to val (taking it, also on failure). */
static int set_path(vctx *v, size_t oi, daecl__ynode *root, char **parts, size_t n_parts,
                    daecl__ynode *val)
{
    daecl__ynode *node = root;
    for (size_t k = 0; k < n_parts; k++) {
        const char *part = parts[k];
        int last = k + 1 == n_parts;
        /* the dotted path so far, for messages: parts[0..k) */
        char done[256];
        size_t used = 0;
        done[0] = '\0';
        for (size_t j = 0; j < k && used < sizeof done; j++)
            used += (size_t)snprintf(done + used, sizeof done - used, "%s%s", j ? "." : "",
                                     parts[j]);
        daecl__ynode **slot = NULL;
        if (node->kind == DAECL__Y_MAP) {
            if (last && k == 1 && strcmp(part, "plugin") == 0 && plugin_section_named(parts[0]))
                drop_old_plugin_keys(node, plugin_section_named(parts[0])->default_plugin, NULL,
                                     val);
            if (last && k == 3 && strcmp(part, "plugin") == 0 &&
                strcmp(parts[0], "parallel") == 0 && strcmp(parts[1], "devices") == 0)
                drop_old_plugin_keys(node, "cpu", "share", val);
            long at = daecl__ymap_find(node, part);
            if (at < 0) {
                daecl__ynode *key = daecl__ynode_scalar(part, strlen(part), 0, 0, (int)oi);
                daecl__ynode *child =
                    last ? NULL
                         : daecl__ynode_coll(is_index(parts[k + 1]) ? DAECL__Y_SEQ : DAECL__Y_MAP,
                                             0, 0, (int)oi);
                if (!key || (!last && !child) || daecl__ynode_push(node, key, child) != 0) {
                    daecl__ynode_free(key);
                    daecl__ynode_free(child);
                    goto nomem;
                }
                at = (long)node->n - 1;
            } else if (last) {
                /* the override now owns the key: blame it for what it set */
                node->keys[at]->src = (int)oi;
                node->keys[at]->line = node->keys[at]->col = 0;
            }
            slot = &node->vals[at];
        } else if (node->kind == DAECL__Y_SEQ) {
            if (!is_index(part)) {
                daecl__ynode_free(val);
                return fail_override(v, oi,
                                     "'%s' is a list, so '%.60s' must be an item number (0, 1, "
                                     "...)",
                                     done, part);
            }
            unsigned long idx = strtoul(part, NULL, 10);
            if (idx > node->n || strlen(part) > 9) {
                daecl__ynode_free(val);
                return fail_override(v, oi,
                                     "'%s' has %zu item%s, so the item number can be at most %zu "
                                     "(that one appends), not %.60s",
                                     done, node->n, node->n == 1 ? "" : "s", node->n, part);
            }
            if (idx == node->n) {
                daecl__ynode *child =
                    last ? NULL
                         : daecl__ynode_coll(is_index(parts[k + 1]) ? DAECL__Y_SEQ : DAECL__Y_MAP,
                                             0, 0, (int)oi);
                if ((!last && !child) || daecl__ynode_push(node, NULL, child) != 0) {
                    daecl__ynode_free(child);
                    goto nomem;
                }
            }
            slot = &node->vals[idx];
        } else {
            daecl__ynode_free(val);
            return fail_override(v, oi,
                                 "'%s' is a single value, not a section, so it has no key '%.60s'",
                                 done, part);
        }
        if (last) {
            daecl__ynode_free(*slot);
            *slot = val;
            return 0;
        }
        if (!*slot || daecl__ynode_is_null(*slot)) {
            daecl__ynode *child = daecl__ynode_coll(
                is_index(parts[k + 1]) ? DAECL__Y_SEQ : DAECL__Y_MAP, 0, 0, (int)oi);
            if (!child)
                goto nomem;
            daecl__ynode_free(*slot);
            *slot = child;
        }
        node = *slot;
    }
    return 0; /* not reached: n_parts >= 1 */
nomem:
    daecl__ynode_free(val);
    return oom(v->err);
}

static int apply_override(vctx *v, size_t oi, daecl__ynode *root)
{
    const char *ov = v->overrides[oi];
    if (!ov)
        return daecl_err_set(v->err, DAECL_EINVAL, "override %zu is NULL", oi);
    const char *eq = strchr(ov, '=');
    if (!eq)
        return fail_override(v, oi, "it has no '='; write KEY=VALUE, e.g. train.epochs=3");
    if (eq == ov)
        return fail_override(v, oi, "the key before '=' is empty; write KEY=VALUE, e.g. "
                                    "train.epochs=3");
    size_t len = (size_t)(eq - ov);
    char path[256];
    char *parts[32];
    size_t n_parts = 0;
    if (len >= sizeof path)
        return fail_override(v, oi, "its key is longer than %zu bytes", sizeof path - 1);
    memcpy(path, ov, len);
    path[len] = '\0';
    for (char *p = path;;) {
        char *dot = strchr(p, '.');
        if (dot)
            *dot = '\0';
        if (!*p)
            return fail_override(v, oi,
                                 "its key has an empty part; separate keys with single dots, "
                                 "e.g. model.encoder.0.units=500");
        if (n_parts == sizeof parts / sizeof parts[0])
            return fail_override(v, oi, "its key has more than %zu parts",
                                 sizeof parts / sizeof parts[0]);
        parts[n_parts++] = p;
        if (!dot)
            break;
        p = dot + 1;
    }

    daecl_err perr = {0};
    daecl__ynode *val = NULL;
    int rc = daecl__yaml_parse(eq + 1, strlen(eq + 1), "", (int)oi, &val, &perr);
    if (rc == DAECL_ENOMEM)
        return oom(v->err);
    if (rc != 0) {
        if (perr.col > 0)
            return fail_override(v, oi, "its value is not valid YAML: %s (column %d of the value)",
                                 perr.msg, perr.col);
        return fail_override(v, oi, "its value is not valid YAML: %s", perr.msg);
    }
    if (!val && !(val = daecl__ynode_scalar("", 0, 0, 0, (int)oi)))
        return oom(v->err);
    if ((rc = set_path(v, oi, root, parts, n_parts, val)) != 0)
        return rc;
    if (normalize_plugins(root) != 0)
        return oom(v->err);
    return 0;
}

/* ---- validation: core keys ---------------------------------------------------------- */

static const daecl__cfg_key *find_key(const daecl__cfg_key *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].spec.name, name) == 0)
            return &keys[i];
    return NULL;
}

static int check_run_name(vctx *v, const daecl__ynode *val, const char *s)
{
    size_t len = strlen(s);
    int ok = len >= 1 && len <= 100 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
    for (const char *p = s; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '_' || *p == '-';
    if (ok)
        return 0;
    char found[96];
    return fail_at(v, val,
                   "name must be 1 to 100 of the characters A-Z a-z 0-9 . _ - and not '.' or "
                   "'..' (it names the run's folder), not %s",
                   daecl__ynode_describe(val, found, sizeof found));
}

/* parallel.comm and its kind: a plugin's name, "auto" or "none", all of
 * [a-z0-9_]+ like the plugins' own names. Whether a comm plugin of that
 * name exists is the engine's question, asked only when it is needed. */
static int check_name_id(vctx *v, const char *where, const daecl__ynode *val, const char *s)
{
    int ok = s[0] != '\0';
    for (const char *p = s; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
    if (ok)
        return 0;
    char found[96];
    return fail_at(v, val, "%s must be auto, none or a plugin name of the characters a-z 0-9 _, "
                           "not %s",
                   where, daecl__ynode_describe(val, found, sizeof found));
}

/* A toy:NAME?... source (core/toy.h), checked and stored as written. The
 * column points at the fault inside a plain one-line scalar. */
static int toy_key(vctx *v, const daecl__cfg_key *key, const char *where,
                   const daecl__ynode *val, const daecl_param_value *pv, void *base)
{
    daecl_toy toy;
    daecl_err why = {0};
    size_t off = 0;
    if (daecl_toy_parse(pv->str, &toy, &off, &why) != 0) {
        daecl__ynode at = *val;
        if (!val->quoted && val->src < 0 && !strchr(val->str, '\n') && off < (size_t)INT_MAX / 2)
            at.col += (int)off;
        return fail_at(v, &at, "%s: %s", where, why.msg);
    }
    if (daecl__key_store(key, base, pv) != 0)
        return fail_at(v, val, "%s is too long (%zu bytes; the limit is %zu)", where,
                       strlen(pv->str), key->size - 1);
    return 0;
}

/* Parses, checks and stores one core key's value into base. */
static int core_key(vctx *v, const daecl__cfg_key *key, const char *where,
                    const daecl__ynode *val, void *base)
{
    char why[DAECL_ERR_MSG_MAX];
    const daecl__ynode *at;
    daecl_param_value pv;
    if (daecl__param_parse(&key->spec, where, val, &pv, &at, why, sizeof why) != 0)
        return report(v, at, why);
    if ((key->flags & DAECL__KEY_RUN_NAME) && check_run_name(v, val, pv.str) != 0)
        return v->err->status;
    if ((key->flags & DAECL__KEY_NAME_ID) && check_name_id(v, where, val, pv.str) != 0)
        return v->err->status;
    /* data.train and data.test may name a generated toy density instead of
     * a file: a string, not a section of its own, so that data.test, the
     * limits, the digest and every tool that takes a data path take it
     * unchanged. It is checked here, where its line and column are known,
     * and kept as written (not joined to the config's folder). */
    if ((key->flags & DAECL__KEY_TOY) && daecl_toy_is_spec(pv.str))
        return toy_key(v, key, where, val, &pv, base);
    char abs[DAECL_PATH_MAX];
    if ((key->flags & DAECL__KEY_PATH) && pv.str[0] && pv.str[0] != '/') {
        if (join_path(v->base, pv.str, abs, sizeof abs) != 0)
            return fail_at(v, val,
                           "%s is too long once made absolute against %.200s (the limit is %d "
                           "bytes)",
                           where, v->base, DAECL_PATH_MAX - 1);
        pv.str = abs;
    }
    if (daecl__key_store(key, base, &pv) != 0)
        return fail_at(v, val, "%s is too long (%zu bytes; the limit is %zu)", where,
                       strlen(pv.str), key->size - 1);
    return 0;
}

/* Keys an earlier daecl wrote into every run's config.yaml and checkpoint:
 * read with a warning and ignored, so those runs still resume and evaluate. */
static const struct {
    const char *key, *why;
} retired[] = {
    {"eval.probe_epochs", "the probe fits to convergence now, see eval.probe_tol and eval.probe_max_iter"},
    {"eval.probe_batch_size", "the probe fits on all rows at once now"},
    {"eval.probe_lr", "the probe's L-BFGS needs no learning rate"},
    {"eval.probe_weight_decay", "the probe's L2 strength is eval.probe_l2 now"},
};

static int is_retired(vctx *v, const daecl__ynode *key, const char *dotted)
{
    for (size_t i = 0; i < sizeof retired / sizeof retired[0]; i++)
        if (strcmp(dotted, retired[i].key) == 0) {
            char where[DAECL_ERR_FILE_MAX + 32];
            if (key->src < 0)
                snprintf(where, sizeof where, "%s:%d:%d: ", v->file, key->line, key->col);
            else
                snprintf(where, sizeof where, "override '%s': ", v->overrides[key->src]);
            daecl_log(DAECL_LOG_WARN, NULL, "%s%s is no longer used: %s; ignoring it", where,
                      dotted, retired[i].why);
            return 1;
        }
    return 0;
}

/* data.shape: [] (the data file's), or 1 to 4 whole numbers from 1 to
 * 2^32 - 1. Whether their product matches the data is checked when the
 * data are loaded (run.c), with this node's place. */
static int shape_list(vctx *v, const char *where, const daecl__ynode *val)
{
    daecl_config *cfg = v->cfg;
    char found[96];
    static const daecl_param_spec dim_spec = {.name = "shape", .type = DAECL_PARAM_INT,
                                              .min = 1, .max = 4294967295.0};
    cfg->data.shape_rank = 0;
    if (daecl__ynode_is_null(val))
        return 0;
    if (val->kind != DAECL__Y_SEQ || val->n > 4)
        return fail_at(v, val, "%s must be a list of 1 to 4 whole numbers such as [28, 28] (or "
                               "[] for the data file's shape), not %s",
                       where, val->kind == DAECL__Y_SEQ ? "a list of more than 4"
                                                        : daecl__ynode_describe(val, found,
                                                                                sizeof found));
    for (size_t i = 0; i < val->n; i++) {
        char item[200], why[DAECL_ERR_MSG_MAX];
        const daecl__ynode *at;
        daecl_param_value pv;
        snprintf(item, sizeof item, "%s.%zu", where, i);
        if (daecl__param_parse(&dim_spec, item, val->vals[i], &pv, &at, why, sizeof why) != 0)
            return report(v, at, why);
        cfg->data.shape[i] = (uint32_t)pv.num[0];
    }
    cfg->data.shape_rank = (uint32_t)val->n;
    cfg->data.shape_line = val->src >= 0 ? 0 : val->line;
    cfg->data.shape_col = val->src >= 0 ? 0 : val->col;
    return 0;
}

static int device_list(vctx *v, const char *where, const daecl__ynode *val);
static int stage_list(vctx *v, const char *where, const daecl__ynode *val);

/* A mapping of core keys (a section, or one layer): unknown keys, values,
 * then required keys that are missing. */
static int keys_map(vctx *v, const daecl__cfg_key *keys, size_t n_keys, const char *where,
                    const daecl__ynode *map, void *base)
{
    char dotted[160];
    unsigned seen = 0;
    const char *names[32];
    for (size_t i = 0; i < map->n; i++) {
        const daecl__cfg_key *key = find_key(keys, n_keys, map->keys[i]->str);
        snprintf(dotted, sizeof dotted, "%s%s%s", where, where[0] ? "." : "", map->keys[i]->str);
        if (!key && is_retired(v, map->keys[i], dotted))
            continue;
        if (!key) {
            for (size_t k = 0; k < n_keys; k++)
                names[k] = keys[k].spec.name;
            return unknown_key(v, map->keys[i], where, names, n_keys);
        }
        snprintf(dotted, sizeof dotted, "%s%s%s", where, where[0] ? "." : "", key->spec.name);
        int rc = key->flags & DAECL__KEY_SHAPE     ? shape_list(v, dotted, map->vals[i])
                 : key->flags & DAECL__KEY_DEVICES ? device_list(v, dotted, map->vals[i])
                 : key->flags & DAECL__KEY_STAGES  ? stage_list(v, dotted, map->vals[i])
                                                   : core_key(v, key, dotted, map->vals[i], base);
        if (rc != 0)
            return v->err->status;
        seen |= 1u << (key - keys);
        if (strcmp(dotted, "optimizer.nesterov") == 0)
            v->at_nesterov = map->vals[i]; /* the rule across keys blames it */
        if (strcmp(dotted, "train.walkback_p") == 0)
            v->at_walkback_p = map->vals[i];
        if (strcmp(dotted, "optimizer.lr_min") == 0)
            v->at_lr_min = map->vals[i];
    }
    for (size_t k = 0; k < n_keys; k++)
        if ((keys[k].flags & DAECL__KEY_REQUIRED) && !(seen & (1u << k)))
            return fail_at(v, map, "missing required key '%s' in '%s' (%s)", keys[k].spec.name,
                           where, keys[k].spec.doc);
    return 0;
}

static void fill_key_defaults(const daecl__cfg_key *keys, size_t n_keys, void *base)
{
    for (size_t k = 0; k < n_keys; k++) {
        daecl_param_value pv;
        if (keys[k].flags &
            (DAECL__KEY_LAYERS | DAECL__KEY_SHAPE | DAECL__KEY_DEVICES | DAECL__KEY_STAGES))
            continue; /* layer_default fills the layers; data.shape's,
                         parallel.devices' and stack.stages' [] are all zeros */
        daecl__param_default(&keys[k].spec, &pv);
        daecl__key_store(&keys[k], base, &pv); /* core defaults fit by construction */
    }
}

/* model.encoder or model.decoder: "mirror" (decoder only) or a list of layers. */
static int layer_list(vctx *v, const char *where, int decoder, const daecl__ynode *val)
{
    daecl_config *cfg = v->cfg;
    uint32_t *n_out = decoder ? &cfg->model.n_decoder : &cfg->model.n_encoder;
    daecl_layer_spec *out = decoder ? cfg->model.decoder : cfg->model.encoder;
    char found[96], item[64];
    if (decoder && val->kind == DAECL__Y_SCALAR && strcmp(val->str, "mirror") == 0) {
        cfg->model.decoder_mirror = 1;
        cfg->model.n_decoder = 0;
        return 0;
    }
    if (val->kind != DAECL__Y_SEQ)
        return fail_at(v, val, "%s must be %sa list of layers such as [{units: 500, activation: "
                               "sigmoid}], not %s",
                       where, decoder ? "mirror or " : "",
                       daecl__ynode_describe(val, found, sizeof found));
    size_t lo = decoder ? 0 : 1;
    if (val->n < lo || val->n > DAECL_MAX_LAYERS)
        return fail_at(v, val, "%s needs %zu to %d layers, not %zu", where, lo, DAECL_MAX_LAYERS,
                       val->n);
    for (size_t i = 0; i < val->n; i++) {
        const daecl__ynode *layer = val->vals[i];
        snprintf(item, sizeof item, "%s.%zu", where, i);
        if (layer->kind != DAECL__Y_MAP)
            return fail_at(v, layer,
                           "%s must be a mapping such as {units: 500, activation: sigmoid}, not %s",
                           item, daecl__ynode_describe(layer, found, sizeof found));
        fill_key_defaults(daecl__cfg_layer_keys, daecl__cfg_n_layer_keys, &out[i]);
        if (keys_map(v, daecl__cfg_layer_keys, daecl__cfg_n_layer_keys, item, layer, &out[i]) != 0)
            return v->err->status;
    }
    *n_out = (uint32_t)val->n;
    if (decoder)
        cfg->model.decoder_mirror = 0;
    return 0;
}

/* Layer defaults are YAML text in the table, read like the user's. */
static int layer_default(vctx *v, const daecl__cfg_key *key)
{
    daecl__ynode *val = NULL;
    const char *text = key->spec.def_str;
    int rc = daecl__yaml_parse(text, strlen(text), "<default>", -1, &val, v->err);
    if (rc == 0 && val)
        rc = layer_list(v, strcmp(key->spec.name, "decoder") == 0 ? "model.decoder"
                                                                  : "model.encoder",
                        strcmp(key->spec.name, "decoder") == 0, val);
    daecl__ynode_free(val);
    return rc;
}

static int model_map(vctx *v, const daecl__cfg_section *sec, const daecl__ynode *map)
{
    const char *names[8];
    for (size_t i = 0; i < map->n; i++) {
        const daecl__cfg_key *key = find_key(sec->keys, sec->n_keys, map->keys[i]->str);
        if (!key) {
            for (size_t k = 0; k < sec->n_keys; k++)
                names[k] = sec->keys[k].spec.name;
            return unknown_key(v, map->keys[i], "model", names, sec->n_keys);
        }
        if (key->flags & DAECL__KEY_LAYERS) {
            int dec = strcmp(key->spec.name, "decoder") == 0;
            if (layer_list(v, dec ? "model.decoder" : "model.encoder", dec, map->vals[i]) != 0)
                return v->err->status;
        } else if (core_key(v, key, "model.tied_weights", map->vals[i], v->cfg) != 0) {
            return v->err->status;
        } else {
            v->at_tied = map->vals[i];
        }
    }
    return 0;
}

/* ---- validation: plugin sections ----------------------------------------------------- */

/* The registry's refusal of the file daecl-<kind>-<name>.so, or NULL. */
static const char *refusal_of(const daecl_registry *reg, const char *kind, const char *name)
{
    char file[160];
    snprintf(file, sizeof file, "/daecl-%s-%s.so ", kind, name);
    for (size_t i = 0; i < daecl_registry_refused_count(reg); i++) {
        const char *r = daecl_registry_refused_at(reg, i);
        if (r && strstr(r, file))
            return r;
    }
    return NULL;
}

/* What the registry passed over while looking for a `kind` plugin, for the
 * unknown-plugin sentence: "; searched A:B, where it refused: SENTENCE;
 * SENTENCE" (the refusals of files of that kind and of folders; "" when
 * none), cut to n bytes with "and N more". */
static void passed_over(const daecl_registry *reg, const char *kind, int name_path, char *out,
                        size_t n)
{
    char mine[64];
    snprintf(mine, sizeof mine, "/daecl-%s-", kind);
    size_t used = 0, left_out = 0;
    out[0] = '\0';
    const char *path = daecl_registry_search_path(reg);
    name_path = name_path && path && *path;
    if (name_path)
        used = (size_t)snprintf(out, n, "; searched %.300s", path);
    int first = 1;
    for (size_t i = 0; i < daecl_registry_refused_count(reg) && used < n; i++) {
        const char *r = daecl_registry_refused_at(reg, i);
        if (!strstr(r, mine) && strstr(r, "/daecl-"))
            continue; /* another kind's file */
        const char *lead = first ? (name_path ? ", where it refused: " : "; refused: ") : "; ";
        /* room for this one and for a closing "and N more"; the first is
         * always said, cut short with "..." where long paths leave no room */
        size_t room = n - used > 64 ? n - used - 64 : 0;
        if (left_out || strlen(lead) + strlen(r) > room) {
            if (!first || room < strlen(lead) + 80) {
                left_out++;
                continue;
            }
            used += (size_t)snprintf(out + used, n - used, "%s%.*s...", lead,
                                     (int)(room - strlen(lead) - 3), r);
            first = 0;
            continue;
        }
        used += (size_t)snprintf(out + used, n - used, "%s%s", lead, r);
        first = 0;
    }
    if (left_out && used < n)
        snprintf(out + used, n - used, "%s%zu more refusal%s (`daecl plugins` lists them)",
                 "; and ", left_out, left_out == 1 ? "" : "s");
}

static int unknown_plugin(vctx *v, const plugin_slot *slot, const char *name,
                          const daecl__ynode *at)
{
    const char *names[64];
    size_t n_names = 0;
    /* more: what the registry passed over, within the 1,024 bytes of err
     * with the sentence around it */
    char list[512], more[768];
    /* A plugin file of that name was found but refused: say why, or the user
     * sees "unknown plugin" for a file that is plainly there (bad-input
     * catalogue case plugin.unknown_after_refusal). */
    const char *refused = refusal_of(v->reg, slot->kind, name);
    if (refused)
        return fail_at(v, at, "%s plugin '%.60s' was found but not loaded: %.700s", slot->kind,
                       name, refused);
    daecl__near near;
    daecl__near_init(&near, name);
    for (size_t i = 0; i < daecl_registry_count(v->reg); i++) {
        const daecl_plugin *p = daecl_registry_at(v->reg, i, NULL);
        if (!p || p->kind != (uint32_t)slot->plugin_kind)
            continue;
        daecl__near_add(&near, p->name, strlen(p->name));
        if (n_names < sizeof names / sizeof names[0])
            names[n_names++] = p->name;
    }
    /* Never a bare "unknown": the search path and what it refused, too. */
    passed_over(v->reg, slot->kind, near.best || n_names, more, sizeof more);
    if (near.best)
        return fail_at(v, at,
                       "unknown %s plugin '%.60s'; did you mean '%.*s'? (`daecl plugins` lists "
                       "the plugins found)%s",
                       slot->kind, name, (int)near.best_len, near.best, more);
    if (n_names) {
        join_names(list, sizeof list, names, n_names);
        return fail_at(v, at,
                       "unknown %s plugin '%.60s'; the %s plugins found are %.300s (`daecl "
                       "plugins` lists them)%s",
                       slot->kind, name, slot->kind, list, more);
    }
    const char *path = daecl_registry_search_path(v->reg);
    return fail_at(v, at,
                   "unknown %s plugin '%.60s': no %s plugins were found in '%.300s'; set "
                   "DAECL_PLUGIN_PATH to the folder that holds daecl's plugins%s",
                   slot->kind, name, slot->kind, path ? path : "", more);
}

static int plugin_param(vctx *v, const plugin_slot *slot, const daecl_plugin *plugin,
                        const daecl__ynode *key, const daecl__ynode *val,
                        daecl_param_value *values)
{
    char why[DAECL_ERR_MSG_MAX], where[160];
    const daecl__ynode *at;
    uint32_t k;
    for (k = 0; k < plugin->n_params; k++)
        if (strcmp(plugin->params[k].name, key->str) == 0)
            break;
    if (k == plugin->n_params) {
        daecl__near near;
        daecl__near_init(&near, key->str);
        const char *names[DAECL_MAX_PARAMS];
        char list[512];
        for (uint32_t j = 0; j < plugin->n_params; j++) {
            names[j] = plugin->params[j].name;
            daecl__near_add(&near, names[j], strlen(names[j]));
        }
        if (slot->extra) {
            /* an item of parallel.devices: its own key and the plugin's */
            daecl__near_add(&near, slot->extra, strlen(slot->extra));
            if (near.best)
                return fail_at(v, key, "unknown key '%.60s' in '%s'; did you mean '%.*s'?",
                               key->str, slot->where, (int)near.best_len, near.best);
            return fail_at(v, key,
                           "unknown key '%.60s' in '%s': it takes %s and the parameters of %s "
                           "plugin '%s' (`daecl plugins %s` documents them)",
                           key->str, slot->where, slot->extra, slot->kind, plugin->name,
                           plugin->name);
        }
        if (near.best)
            return fail_at(v, key,
                           "unknown parameter '%.60s' for %s plugin '%s'; did you mean '%.*s'?",
                           key->str, slot->kind, plugin->name, (int)near.best_len, near.best);
        if (plugin->n_params == 0)
            return fail_at(v, key,
                           "unknown parameter '%.60s': %s plugin '%s' takes no parameters",
                           key->str, slot->kind, plugin->name);
        join_names(list, sizeof list, names, plugin->n_params);
        return fail_at(v, key,
                       "unknown parameter '%.60s' for %s plugin '%s'; its parameters are %s "
                       "(`daecl plugins %s` documents them)",
                       key->str, slot->kind, plugin->name, list, plugin->name);
    }
    snprintf(where, sizeof where, "%s.%s", slot->where, plugin->params[k].name);
    daecl_param_value pv;
    if (daecl__param_parse(&plugin->params[k], where, val, &pv, &at, why, sizeof why) != 0)
        return report(v, at, why);
    if (pv.str && !(pv.str = own(v->cfg, pv.str)))
        return oom(v->err);
    values[k] = pv;
    return 0;
}

void daecl_plugin_defaults(const daecl_plugin *plugin, daecl_param_value *values)
{
    for (uint32_t k = 0; k < plugin->n_params; k++)
        daecl__param_default(&plugin->params[k], &values[k]);
}

int daecl_plugin_values(const daecl_plugin *plugin, const char *section, char *assign,
                        daecl_param_value *values, daecl_err *err)
{
    daecl_plugin_defaults(plugin, values);
    for (char *item = assign, *next; item && *item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(item, '=');
        if (!eq)
            return daecl_err_set(err, DAECL_EUSAGE,
                                 "'%.60s' is not a name=value pair; give the parameters of %s "
                                 "plugin '%s' as name=value pairs separated by commas%s%s%s",
                                 item, section, plugin->name, plugin->n_params ? ", e.g. " : "",
                                 plugin->n_params ? plugin->params[0].name : "",
                                 plugin->n_params ? "=..." : "");
        *eq = '\0';
        uint32_t k;
        for (k = 0; k < plugin->n_params; k++)
            if (strcmp(plugin->params[k].name, item) == 0)
                break;
        if (k == plugin->n_params) {
            const char *names[DAECL_MAX_PARAMS];
            char list[512];
            for (uint32_t j = 0; j < plugin->n_params && j < DAECL_MAX_PARAMS; j++)
                names[j] = plugin->params[j].name;
            join_names(list, sizeof list, names,
                       plugin->n_params < DAECL_MAX_PARAMS ? plugin->n_params : DAECL_MAX_PARAMS);
            return daecl_err_set(err, DAECL_EUSAGE,
                                 "unknown parameter '%.60s' for %s plugin '%s'; its parameters "
                                 "are %s", item, section, plugin->name,
                                 plugin->n_params ? list : "none");
        }
        char where[160], why[DAECL_ERR_MSG_MAX];
        snprintf(where, sizeof where, "%s.%s", section, item);
        daecl__ynode node = {.kind = DAECL__Y_SCALAR, .str = eq + 1, .len = strlen(eq + 1)};
        const daecl__ynode *at;
        if (daecl__param_parse(&plugin->params[k], where, &node, &values[k], &at, why,
                               sizeof why) != 0)
            return daecl_err_set(err, DAECL_EUSAGE, "%s", why);
    }
    if (plugin->check) {
        daecl_err cerr = {0};
        if (plugin->check(values, &cerr) != 0)
            return daecl_err_set(err, DAECL_EUSAGE, "%s",
                                 cerr.msg[0] ? cerr.msg : "the plugin refused its parameters");
    }
    return 0;
}

/* `backend.plugin: auto`: *name becomes the backend auto chooses, and
 * cfg->backend_auto why. Only the backend section may ask, and with no
 * parameters: they would belong to whichever backend is chosen. */
static int resolve_auto(vctx *v, const plugin_slot *slot, const daecl__ynode *map, long at,
                        const daecl__ynode *name_at, const char **name)
{
    if (slot->extra)
        return fail_at(v, name_at,
                       "%s.plugin cannot be auto: each device of parallel.devices names its "
                       "backend (cpu or opencl; `daecl devices` says what auto would pick)",
                       slot->where);
    for (size_t i = 0; map && i < map->n; i++)
        if ((long)i != at)
            return fail_at(v, map->keys[i],
                           "backend plugin 'auto' takes no parameters, so '%.60s' would belong "
                           "to whichever backend it chose; name the backend to set it "
                           "(backend.plugin=cpu or backend.plugin=opencl)",
                           map->keys[i]->str);
    daecl_backend_choice choice;
    daecl_err why = {0};
    if (daecl_backend_auto_resolve(v->reg, &choice, &why) != 0) {
        if (why.status == DAECL_ENOMEM)
            return oom(v->err);
        return report(v, name_at, why.msg);
    }
    snprintf(v->cfg->backend_auto, sizeof v->cfg->backend_auto, "%s", choice.reason);
    /* literals: choice is gone when the caller uses the name */
    *name = strcmp(choice.plugin, "opencl") == 0 ? "opencl" : "cpu";
    return 0;
}

/* One plugin's config into pc, from a plugin section or an item of
 * parallel.devices: `map` is NULL when the config leaves it out, `key` is
 * the node that names it (NULL likewise: the document is blamed). */
static int plugin_fill(vctx *v, const plugin_slot *slot, daecl_plugin_cfg *pc,
                       const daecl__ynode *key, const daecl__ynode *map)
{
    const char *name = slot->default_plugin;
    const daecl__ynode *name_at = key ? key : v->root, *blame = name_at;
    char found[96];
    if (map && map->kind != DAECL__Y_MAP)
        return fail_at(v, map,
                       "%s must be a plugin name or a mapping such as {plugin: %s, ...}, not %s",
                       slot->where, slot->default_plugin,
                       daecl__ynode_describe(map, found, sizeof found));
    long at = map ? daecl__ymap_find(map, "plugin") : -1;
    if (at >= 0) {
        const daecl__ynode *val = map->vals[at];
        if (val->kind != DAECL__Y_SCALAR || val->len == 0)
            return fail_at(v, val, "%s.plugin must be a plugin name such as %s, not %s",
                           slot->where, slot->default_plugin,
                           daecl__ynode_describe(val, found, sizeof found));
        name = val->str;
        name_at = val;
    }
    if (slot->plugin_kind == DAECL_KIND_BACKEND && strcmp(name, DAECL_BACKEND_AUTO) == 0) {
        int rc = resolve_auto(v, slot, map, at, name_at, &name);
        if (rc)
            return rc;
    }
    const char *path = NULL;
    const daecl_plugin *plugin =
        daecl_registry_find(v->reg, slot->plugin_kind, name, &path);
    if (!plugin || strlen(name) >= sizeof pc->name)
        return unknown_plugin(v, slot, name, name_at);
    if (plugin->n_params > DAECL_MAX_PARAMS)
        return fail_at(v, name_at,
                       "%s plugin '%s' has %u parameters, more than the %d this daecl supports; "
                       "update daecl",
                       slot->kind, plugin->name, plugin->n_params, DAECL_MAX_PARAMS);
    snprintf(pc->name, sizeof pc->name, "%s", name);
    pc->plugin = plugin;
    pc->path = path;
    pc->n_values = plugin->n_params;
    daecl_plugin_defaults(plugin, pc->values);
    for (uint32_t k = 0; k < plugin->n_params; k++)
        if (pc->values[k].str && !(pc->values[k].str = own(v->cfg, pc->values[k].str)))
            return oom(v->err);
    for (size_t i = 0; map && i < map->n; i++) {
        if ((long)i == at || (slot->extra && strcmp(map->keys[i]->str, slot->extra) == 0))
            continue;
        if (plugin_param(v, slot, plugin, map->keys[i], map->vals[i], pc->values) != 0)
            return v->err->status;
        if (map->vals[i]->src >= 0)
            blame = map->vals[i]; /* an override changed it: its check failure is the override's */
    }
    if (plugin->check) {
        daecl_err cerr = {0};
        if (plugin->check(pc->values, &cerr) != 0)
            return fail_at(v, blame, "%s", cerr.msg[0] ? cerr.msg : "the plugin refused its parameters");
    }
    pc->n_packed = (uint32_t)daecl_params_pack(plugin->params, plugin->n_params, pc->values,
                                               pc->packed);
    return 0;
}

/* A plugin section of the top level. */
static int plugin_map(vctx *v, const daecl__cfg_section *sec, const daecl__ynode *key,
                      const daecl__ynode *map)
{
    plugin_slot slot = {sec->name, sec->name, sec->plugin_kind, sec->default_plugin, NULL};
    return plugin_fill(v, &slot, (daecl_plugin_cfg *)((char *)v->cfg + sec->offset), key, map);
}

/* ---- validation: parallel.devices ---------------------------------------------------- */

static int same_values(const daecl_plugin_cfg *a, const daecl_plugin_cfg *b)
{
    if (a->plugin != b->plugin)
        return 0;
    for (uint32_t k = 0; k < a->n_values; k++) {
        const daecl_param_value *x = &a->values[k], *y = &b->values[k];
        if (x->num[0] != y->num[0] || x->num[1] != y->num[1] ||
            strcmp(x->str ? x->str : "", y->str ? y->str : "") != 0)
            return 0;
    }
    return 1;
}

/* "opencl, platform Portable, index 1": the plugin and the parameters that
 * differ from their defaults, into out (cut to n bytes). Never allocates. */
static void describe_device(const daecl_plugin_cfg *pc, char *out, size_t n)
{
    size_t used = (size_t)snprintf(out, n, "%s", pc->name);
    daecl_param_value def[DAECL_MAX_PARAMS];
    daecl_plugin_defaults(pc->plugin, def);
    for (uint32_t k = 0; k < pc->n_values && used < n; k++) {
        const daecl_param_spec *spec = &pc->plugin->params[k];
        const daecl_param_value *x = &pc->values[k];
        char num[2][40];
        if (x->num[0] == def[k].num[0] && x->num[1] == def[k].num[1] &&
            strcmp(x->str ? x->str : "", def[k].str ? def[k].str : "") == 0)
            continue;
        switch (spec->type) {
        case DAECL_PARAM_STRING:
        case DAECL_PARAM_ENUM:
            used += (size_t)snprintf(out + used, n - used, ", %s %.60s", spec->name,
                                     x->str ? x->str : "");
            break;
        case DAECL_PARAM_BOOL:
            used += (size_t)snprintf(out + used, n - used, ", %s %s", spec->name,
                                     x->num[0] != 0 ? "true" : "false");
            break;
        case DAECL_PARAM_FLOAT2:
            used += (size_t)snprintf(out + used, n - used, ", %s [%s, %s]", spec->name,
                                     daecl__fmt_double(x->num[0], num[0], sizeof num[0]),
                                     daecl__fmt_double(x->num[1], num[1], sizeof num[1]));
            break;
        default:
            used += (size_t)snprintf(out + used, n - used, ", %s %s", spec->name,
                                     daecl__fmt_double(x->num[0], num[0], sizeof num[0]));
            break;
        }
    }
}

/* parallel.devices: [] or null (the backend section's device), or a list
 * of up to DAECL_MAX_REPLICAS backend sections, each with an optional
 * share, each device once. */
/* ---- validation: stack.stages --------------------------------------------------------- */

/* May stage overrides change `key`? The stage's own DAE: its noise, its
 * likelihood, its optimiser's settings and its length; not the model, the
 * data, the optimiser kind (the checkpoint's state is laid out for it) or
 * the rest of the loop. */
static int stage_key_ok(const char *key)
{
    static const char *const ok[] = {"corruption", "likelihood", "optimizer", "train.epochs",
                                     "train.log_every"};
    if (strcmp(key, "optimizer.name") == 0 || strcmp(key, "optimizer") == 0)
        return 0;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        if (strncmp(key, ok[i], n) == 0 && (key[n] == '\0' || key[n] == '.'))
            return 1;
    }
    return 0;
}

/* A scalar, or a flat list of them, as flow YAML into out. */
static int stage_value(const daecl__ynode *val, char *out, size_t n)
{
    size_t len = 0;
    if (val->kind == DAECL__Y_SCALAR) {
        if (!val->quoted)
            return snprintf(out, n, "%s", val->str) < (int)n ? 0 : -1;
        len += (size_t)snprintf(out, n, "\"");
        for (size_t i = 0; i < val->len && len + 3 < n; i++) {
            if (val->str[i] == '"' || val->str[i] == '\\')
                out[len++] = '\\';
            out[len++] = val->str[i];
        }
        if (len + 2 > n)
            return -1;
        out[len++] = '"';
        out[len] = '\0';
        return 0;
    }
    if (val->kind != DAECL__Y_SEQ)
        return -1;
    len += (size_t)snprintf(out, n, "[");
    for (size_t i = 0; i < val->n && len < n; i++) {
        if (val->vals[i]->kind != DAECL__Y_SCALAR)
            return -1;
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", val->vals[i]->str);
    }
    if (len >= n)
        return -1;
    len += (size_t)snprintf(out + len, n - len, "]");
    return len < n ? 0 : -1;
}

static int stage_list(vctx *v, const char *where, const daecl__ynode *val)
{
    daecl_config *cfg = v->cfg;
    char found[96], text[DAECL_STAGE_OV_MAX];
    cfg->stack.n_stages = 0;
    if (daecl__ynode_is_null(val))
        return 0;
    if (val->kind != DAECL__Y_SEQ)
        return fail_at(v, val, "%s must be a list with one mapping per stage, such as [{}, "
                       "{corruption.sigma: 0.3, train.epochs: 5}], not %s", where,
                       daecl__ynode_describe(val, found, sizeof found));
    if (val->n > DAECL_MAX_LAYERS)
        return fail_at(v, val->vals[DAECL_MAX_LAYERS], "%s lists %zu stages, more than the %d "
                       "layers a model may have", where, val->n, DAECL_MAX_LAYERS);
    for (size_t k = 0; k < val->n; k++) {
        const daecl__ynode *item = val->vals[k];
        cfg->stack.n_ov[k] = 0;
        cfg->stack.line[k] = item->src >= 0 ? 0 : item->line;
        cfg->stack.col[k] = item->src >= 0 ? 0 : item->col;
        if (daecl__ynode_is_null(item))
            continue;
        if (item->kind != DAECL__Y_MAP)
            return fail_at(v, item, "%s.%zu must be a mapping of keys to values, such as "
                           "{corruption.sigma: 0.3}, not %s", where, k,
                           daecl__ynode_describe(item, found, sizeof found));
        if (item->n > DAECL_STAGE_MAX_OV)
            return fail_at(v, item, "%s.%zu changes %zu keys, more than the %d a stage may",
                           where, k, item->n, DAECL_STAGE_MAX_OV);
        for (size_t i = 0; i < item->n; i++) {
            const char *key = item->keys[i]->str;
            if (!stage_key_ok(key))
                return fail_at(v, item->keys[i], "%s.%zu cannot change '%s': a stage may change "
                               "the keys under corruption, likelihood and optimizer (not "
                               "optimizer.name) and train.epochs", where, k, key);
            if (stage_value(item->vals[i], text, sizeof text) != 0 ||
                strlen(key) + strlen(text) + 2 > DAECL_STAGE_OV_MAX)
                return fail_at(v, item->vals[i], "%s.%zu.%s must be a value or a list of values "
                               "of at most %d characters, not %s", where, k, key,
                               DAECL_STAGE_OV_MAX - 2,
                               daecl__ynode_describe(item->vals[i], found, sizeof found));
            char *ov = cfg->stack.stage_ov[k][i];
            size_t kl = strlen(key), tl = strlen(text); /* fits: checked above */
            memcpy(ov, key, kl);
            ov[kl] = '=';
            memcpy(ov + kl + 1, text, tl + 1);
            cfg->stack.n_ov[k]++;
        }
    }
    cfg->stack.n_stages = (uint32_t)val->n;
    return 0;
}

static int device_list(vctx *v, const char *where, const daecl__ynode *val)
{
    daecl_config *cfg = v->cfg;
    char found[96], item[200];
    cfg->parallel.n_devices = 0;
    if (daecl__ynode_is_null(val))
        return 0;
    if (val->kind != DAECL__Y_SEQ)
        return fail_at(v, val,
                       "%s must be a list of devices such as [{plugin: cpu}, {plugin: opencl, "
                       "index: 1}] (or [] for the backend section's one device), not %s",
                       where, daecl__ynode_describe(val, found, sizeof found));
    if (val->n > DAECL_MAX_REPLICAS)
        return fail_at(v, val->vals[DAECL_MAX_REPLICAS],
                       "%s lists %zu devices, more than the %d a run can train on; list at most "
                       "%d",
                       where, val->n, DAECL_MAX_REPLICAS, DAECL_MAX_REPLICAS);
    for (size_t i = 0; i < val->n; i++) {
        const daecl__ynode *entry = val->vals[i];
        daecl_plugin_cfg *pc = &cfg->parallel.devices[i];
        snprintf(item, sizeof item, "%s.%zu", where, i);
        if (entry->kind != DAECL__Y_MAP)
            return fail_at(v, entry,
                           "%s must be a mapping such as {plugin: cpu} or {plugin: opencl, "
                           "index: 1, share: 3}, not %s",
                           item, daecl__ynode_describe(entry, found, sizeof found));
        plugin_slot slot = {item, "backend", DAECL_KIND_BACKEND, "cpu", "share"};
        if (plugin_fill(v, &slot, pc, entry, entry) != 0)
            return v->err->status;
        cfg->parallel.share[i] = 0;
        long at = daecl__ymap_find(entry, "share");
        if (at >= 0) {
            char share_where[220], why[DAECL_ERR_MSG_MAX];
            const daecl__ynode *bad;
            daecl_param_value pv;
            snprintf(share_where, sizeof share_where, "%s.share", item);
            if (daecl__param_parse(&daecl__cfg_share_spec, share_where, entry->vals[at], &pv,
                                   &bad, why, sizeof why) != 0)
                return report(v, bad, why);
            cfg->parallel.share[i] = pv.num[0];
        }
        cfg->parallel.line[i] = entry->src >= 0 ? 0 : entry->line;
        cfg->parallel.col[i] = entry->src >= 0 ? 0 : entry->col;
        for (size_t j = 0; j < i; j++)
            if (same_values(&cfg->parallel.devices[j], pc)) {
                char what[256];
                describe_device(pc, what, sizeof what);
                return fail_at(v, entry,
                               "%s names the same device as %s.%zu (%s); list each device once",
                               item, where, j, what);
            }
    }
    cfg->parallel.n_devices = (uint32_t)val->n;
    return 0;
}

/* ---- validation: the whole document -------------------------------------------------- */

static int cross_checks(vctx *v)
{
    daecl_config *cfg = v->cfg;
    if (cfg->optimizer.nesterov && !(cfg->optimizer.momentum > 0))
        return fail_at(v, v->at_nesterov,
                       "optimizer.nesterov needs optimizer.momentum > 0 (PyTorch's rule); set a "
                       "momentum such as 0.9 or turn nesterov off");
    if (v->at_lr_min && cfg->optimizer.lr_min != 0 &&
        cfg->optimizer.schedule != DAECL_SCHEDULE_COSINE)
        return fail_at(v, v->at_lr_min,
                       "optimizer.lr_min is where the cosine schedule ends, but "
                       "optimizer.schedule is constant; set optimizer.schedule: cosine or "
                       "remove lr_min");
    if (cfg->train.walkback_p > 0 && cfg->train.walkback == 0)
        return fail_at(v, v->at_walkback_p,
                       "train.walkback_p is the chance that the walkback chain goes on, up to "
                       "train.walkback pairs, but train.walkback is 0; set train.walkback (the "
                       "reference code used 5) or remove walkback_p");
    if (!cfg->model.tied_weights)
        return 0;
    const daecl_likelihood_ops *ops = cfg->likelihood.plugin->ops;
    if (ops->params_per_dim != 1)
        return fail_at(v, v->at_tied,
                       "model.tied_weights needs a likelihood with 1 parameter per dimension, "
                       "but likelihood plugin '%s' has %u; untie the weights or choose another "
                       "likelihood",
                       cfg->likelihood.name, ops->params_per_dim);
    if (cfg->model.decoder_mirror)
        return 0;
    uint32_t n_enc = cfg->model.n_encoder;
    if (cfg->model.n_decoder != n_enc - 1)
        return fail_at(v, v->at_tied,
                       "model.tied_weights needs %u decoder layer%s mirroring the encoder, not "
                       "%u; write decoder: mirror",
                       n_enc - 1, n_enc - 1 == 1 ? "" : "s", cfg->model.n_decoder);
    for (uint32_t i = 0; i < cfg->model.n_decoder; i++) {
        uint32_t want = cfg->model.encoder[n_enc - 2 - i].units;
        if (cfg->model.decoder[i].units != want)
            return fail_at(v, v->at_tied,
                           "model.tied_weights needs model.decoder.%u to have %u units like "
                           "model.encoder.%u, not %u; write decoder: mirror",
                           i, want, n_enc - 2 - i, cfg->model.decoder[i].units);
    }
    return 0;
}

static int validate(vctx *v, const daecl__ynode *root)
{
    const daecl__cfg_section *top = &daecl__cfg_sections[0];
    const daecl__ynode *given[16] = {0}, *given_key[16] = {0};
    assert(daecl__cfg_n_sections <= 16);
    const char *names[32];
    size_t n_names = 0;
    char found[96];

    for (size_t k = 0; k < top->n_keys; k++)
        names[n_names++] = top->keys[k].spec.name;
    for (size_t s = 1; s < daecl__cfg_n_sections; s++)
        names[n_names++] = daecl__cfg_sections[s].name;

    /* defaults first, then what the document says, in document order */
    for (size_t s = 0; s < daecl__cfg_n_sections; s++)
        if (daecl__cfg_sections[s].kind != DAECL__SEC_PLUGIN)
            fill_key_defaults(daecl__cfg_sections[s].keys, daecl__cfg_sections[s].n_keys, v->cfg);
    for (size_t s = 0; s < daecl__cfg_n_sections; s++)
        for (size_t k = 0; k < daecl__cfg_sections[s].n_keys; k++)
            if ((daecl__cfg_sections[s].keys[k].flags & DAECL__KEY_LAYERS) &&
                layer_default(v, &daecl__cfg_sections[s].keys[k]) != 0)
                return v->err->status;

    for (size_t i = 0; i < root->n; i++) {
        const daecl__ynode *key = root->keys[i], *val = root->vals[i];
        const daecl__cfg_key *ck = find_key(top->keys, top->n_keys, key->str);
        if (ck) {
            if (core_key(v, ck, ck->spec.name, val, v->cfg) != 0)
                return v->err->status;
            continue;
        }
        size_t s;
        for (s = 1; s < daecl__cfg_n_sections; s++)
            if (strcmp(daecl__cfg_sections[s].name, key->str) == 0)
                break;
        if (s == daecl__cfg_n_sections)
            return unknown_key(v, key, "", names, n_names);
        const daecl__cfg_section *sec = &daecl__cfg_sections[s];
        given[s] = val;
        given_key[s] = key;
        if (sec->kind == DAECL__SEC_PLUGIN) {
            if (plugin_map(v, sec, key, val) != 0)
                return v->err->status;
            continue;
        }
        if (daecl__ynode_is_null(val))
            continue; /* `train:` with nothing under it: all defaults */
        if (val->kind != DAECL__Y_MAP)
            return fail_at(v, val, "%s must be a mapping of keys, not %s", sec->name,
                           daecl__ynode_describe(val, found, sizeof found));
        int rc = sec->kind == DAECL__SEC_MODEL
                     ? model_map(v, sec, val)
                     : keys_map(v, sec->keys, sec->n_keys, sec->name, val, v->cfg);
        if (rc != 0)
            return rc;
    }

    for (size_t s = 1; s < daecl__cfg_n_sections; s++) {
        const daecl__cfg_section *sec = &daecl__cfg_sections[s];
        if (given[s] && !daecl__ynode_is_null(given[s]))
            continue;
        if (sec->kind == DAECL__SEC_PLUGIN) {
            if (plugin_map(v, sec, given_key[s], NULL) != 0)
                return v->err->status;
            continue;
        }
        for (size_t k = 0; k < sec->n_keys; k++) {
            if (!(sec->keys[k].flags & DAECL__KEY_REQUIRED))
                continue;
            if (v->was_empty)
                return daecl_err_set_at(v->err, DAECL_ECONFIG, v->file, 0, 0,
                                        "the config is empty; a config needs at least %s.%s "
                                        "(%s)",
                                        sec->name, sec->keys[k].spec.name, sec->keys[k].spec.doc);
            return fail_at(v, given_key[s] ? given_key[s] : root,
                           "missing required key '%s.%s' (%s)", sec->name,
                           sec->keys[k].spec.name, sec->keys[k].spec.doc);
        }
    }
    return cross_checks(v);
}

/* ---- loading --------------------------------------------------------------------------- */

static int load(const char *text, size_t n_bytes, const char *file, const char *base,
                const char *const *overrides, size_t n_overrides, const daecl_registry *reg,
                daecl_config **out, daecl_err *err)
{
    daecl_config *cfg = calloc(1, sizeof *cfg);
    daecl__ynode *root = NULL;
    int rc;
    if (!cfg || !(cfg->tree = calloc(1, sizeof *cfg->tree))) {
        rc = oom(err);
        goto fail;
    }
    snprintf(cfg->source, sizeof cfg->source, "%s", file);
    vctx v = {.file = file, .overrides = overrides, .err = err, .cfg = cfg, .reg = reg,
              .base = base};
    if ((rc = daecl__yaml_parse(text, n_bytes, file, -1, &root, err)) != 0)
        goto fail;
    if (!root || daecl__ynode_is_null(root)) {
        v.was_empty = 1;
        daecl__ynode_free(root);
        if (!(root = daecl__ynode_coll(DAECL__Y_MAP, 1, 1, -1))) {
            rc = oom(err);
            goto fail;
        }
    }
    v.root = root;
    if (root->kind != DAECL__Y_MAP) {
        char found[96];
        rc = fail_at(&v, root,
                     "the top level of a config must be a mapping of keys (data, model, train, "
                     "...), not %s",
                     daecl__ynode_describe(root, found, sizeof found));
        goto fail;
    }
    if (normalize_plugins(root) != 0) {
        rc = oom(err);
        goto fail;
    }
    for (size_t i = 0; i < n_overrides; i++)
        if ((rc = apply_override(&v, i, root)) != 0)
            goto fail;
    if ((rc = validate(&v, root)) != 0)
        goto fail;
    daecl__ynode_free(root);
    *out = cfg;
    return 0;
fail:
    daecl__ynode_free(root);
    daecl_config_destroy(cfg);
    return rc;
}

int daecl_config_load_string(const char *text, size_t n_bytes, const char *name,
                             const char *const *overrides, size_t n_overrides,
                             const daecl_registry *reg, daecl_config **out, daecl_err *err)
{
    char base[DAECL_PATH_MAX];
    int rc;
    if (!out || !reg || (!text && n_bytes) || (!overrides && n_overrides))
        return daecl_err_set(err, DAECL_EINVAL,
                             "daecl_config_load_string needs text, a registry and an out pointer");
    *out = NULL;
    if ((rc = base_folder(NULL, base, sizeof base, err)) != 0)
        return rc;
    return load(text ? text : "", n_bytes, name ? name : "<string>", base, overrides,
                n_overrides, reg, out, err);
}

int daecl_config_load(const char *path, const char *const *overrides, size_t n_overrides,
                      const daecl_registry *reg, daecl_config **out, daecl_err *err)
{
    char base[DAECL_PATH_MAX];
    struct stat st;
    int rc;
    if (!path || !out || !reg || (!overrides && n_overrides))
        return daecl_err_set(err, DAECL_EINVAL,
                             "daecl_config_load needs a path, a registry and an out pointer");
    *out = NULL;
    if ((rc = base_folder(path, base, sizeof base, err)) != 0)
        return rc;
    FILE *f = fopen(path, "rb");
    /* A config that cannot be opened is a usage problem (exit 2), not a
     * run-time one: the user named the wrong file. */
    if (!f)
        return daecl_err_set_at(err, DAECL_ECONFIG, path, 0, 0,
                                "cannot open the config: %s; check the path", strerror(errno));
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return daecl_err_set_at(err, DAECL_ECONFIG, path, 0, 0,
                                "this is a folder, not a config file; name a .yaml file");
    }
    /* one byte more than the limit tells an oversize file without reading it all */
    size_t cap = DAECL__YAML_MAX_BYTES + 1, len = 0, got;
    char *text = malloc(cap);
    if (!text) {
        fclose(f);
        return oom(err);
    }
    while (len < cap && (got = fread(text + len, 1, cap - len, f)) > 0)
        len += got;
    int read_err = ferror(f);
    fclose(f);
    if (read_err) {
        free(text);
        return daecl_err_set_at(err, DAECL_EIO, path, 0, 0,
                                "cannot read the config; check the file and its permissions");
    }
    if (len > DAECL__YAML_MAX_BYTES) {
        free(text);
        return daecl__yaml_refuse_size(st.st_size > (off_t)len ? (size_t)st.st_size : len, path,
                                       err);
    }
    rc = load(text, len, path, base, overrides, n_overrides, reg, out, err);
    free(text);
    return rc;
}

void daecl_config_destroy(daecl_config *cfg)
{
    if (!cfg)
        return;
    if (cfg->tree) {
        for (size_t i = 0; i < cfg->tree->n; i++)
            free(cfg->tree->strs[i]);
        free(cfg->tree->strs);
        free(cfg->tree);
    }
    free(cfg);
}

const daecl_param_value *daecl_plugin_cfg_value(const daecl_plugin_cfg *pc, const char *name)
{
    if (!pc || !pc->plugin || !name)
        return NULL;
    for (uint32_t k = 0; k < pc->n_values && k < pc->plugin->n_params; k++)
        if (strcmp(pc->plugin->params[k].name, name) == 0)
            return &pc->values[k];
    return NULL;
}
