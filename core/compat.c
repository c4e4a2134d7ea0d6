/* daecl — comparing a run's config and data with its checkpoint's. */
#include "core/compat.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/yamltree.h"

/* ---- which keys may differ ----------------------------------------------------------- */

/* key equals `pattern`, or lies under it ("eval" covers "eval.probe") */
static int under(const char *key, const char *pattern)
{
    size_t n = strlen(pattern);
    return strncmp(key, pattern, n) == 0 && (key[n] == '\0' || key[n] == '.');
}

int daecl_compat_key_may_differ(const char *key, daecl_compat_mode mode, int reset_optimizer)
{
    /* Paths of data may move; their content is compared on its own. The
     * shape is what a row-granular corruption sees, so it stays (resume). */
    if (under(key, "data") && !under(key, "data.shape"))
        return 1;
    if (mode == DAECL_COMPAT_EVAL)
        return !under(key, "model") && !under(key, "likelihood");
    static const char *const resume_free[] = {
        "name",         "train.epochs",           "train.max_steps", "train.log_every",
        "train.checkpoint_every", "train.checkpoint_unit", "eval", "optimizer.lr",
        "output",       "backend",                "parallel",
    };
    for (size_t i = 0; i < sizeof resume_free / sizeof resume_free[0]; i++)
        if (under(key, resume_free[i]))
            return 1;
    return reset_optimizer && under(key, "optimizer");
}

/* ---- flattening a resolved config --------------------------------------------------- */

typedef struct entry {
    char key[160];
    char value[160];
} entry;

typedef struct flat {
    entry *e;
    size_t n, cap;
    int oom;
} flat;

static void add(flat *f, const char *key, const char *value)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        entry *e = realloc(f->e, cap * sizeof *e);
        if (!e) {
            f->oom = 1;
            return;
        }
        f->e = e;
        f->cap = cap;
    }
    snprintf(f->e[f->n].key, sizeof f->e[f->n].key, "%s", key);
    snprintf(f->e[f->n].value, sizeof f->e[f->n].value, "%s", value);
    f->n++;
}

/* Every scalar under node as "a.b.0.c" = text, in document order; a list
 * also as itself = "a list of N", so a change of length is one entry. */
static void flatten(flat *f, const daecl__ynode *node, const char *prefix)
{
    char key[160], value[48];
    switch (node->kind) {
    case DAECL__Y_SCALAR:
        add(f, prefix, node->str);
        return;
    case DAECL__Y_SEQ:
        snprintf(value, sizeof value, "a list of %zu", node->n);
        add(f, prefix, value);
        for (size_t i = 0; i < node->n; i++) {
            snprintf(key, sizeof key, "%s.%zu", prefix, i);
            flatten(f, node->vals[i], key);
        }
        return;
    case DAECL__Y_MAP:
        for (size_t i = 0; i < node->n; i++) {
            snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", node->keys[i]->str);
            flatten(f, node->vals[i], key);
        }
        return;
    }
}

static int flatten_yaml(const char *yaml, const char *name, flat *f, daecl_err *err)
{
    daecl__ynode *root = NULL;
    int rc = daecl__yaml_parse(yaml, strlen(yaml), name, -1, &root, err);
    if (rc)
        return rc;
    if (root)
        flatten(f, root, "");
    daecl__ynode_free(root);
    if (f->oom)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory comparing configs");
    return 0;
}

static const entry *find(const flat *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->e[i].key, key) == 0)
            return &f->e[i];
    return NULL;
}

int daecl_compat_config(const char *ckpt_yaml, const char *ckpt_path, const daecl_config *cfg,
                        daecl_compat_mode mode, int reset_optimizer, daecl_err *err)
{
    flat old = {0}, now = {0};
    char *yaml = daecl_config_to_yaml(cfg);
    int rc = yaml ? 0 : daecl_err_set(err, DAECL_ENOMEM, "out of memory comparing configs");
    if (!rc) {
        daecl_err why = {0};
        /* the stored config was written by daecl: a failure means damage */
        if (flatten_yaml(ckpt_yaml, ckpt_path, &old, &why))
            rc = daecl_err_set(err, DAECL_ECKPT, "the config stored in checkpoint %s does not "
                               "parse (%s); the file is damaged", ckpt_path, why.msg);
    }
    if (!rc)
        rc = flatten_yaml(yaml, "the resolved config", &now, err);
    /* Keys only one side has come from a plugin or a list the other side
     * lacks (the plugin or the list length is its own entry, compared
     * first), or from a daecl version that added keys: not compared. */
    /* A stack's stages take train.epochs where they do not set their own:
     * changing it would move the stage the checkpoint stopped in. */
    /* So does a cosine schedule: its length is the phase's steps, and new
     * epochs would bend the learning rates of the steps already taken. */
    const entry *greedy = find(&now, "stack.greedy"), *sched = find(&now, "optimizer.schedule");
    int stacked = greedy && strcmp(greedy->value, "true") == 0;
    int cosine = sched && strcmp(sched->value, "cosine") == 0;
    for (size_t i = 0; !rc && i < now.n; i++) {
        const entry *n = &now.e[i], *o = find(&old, n->key);
        if (!o || strcmp(o->value, n->value) == 0 ||
            (daecl_compat_key_may_differ(n->key, mode, reset_optimizer) &&
             !((stacked || cosine) && mode != DAECL_COMPAT_EVAL &&
               strcmp(n->key, "train.epochs") == 0)))
            continue;
        if (mode == DAECL_COMPAT_EVAL)
            rc = daecl_err_set(err, DAECL_ECONFIG,
                               "%s is %s, but checkpoint %s was trained with %s = %s; daecl eval "
                               "takes the model and likelihood from the checkpoint, so drop that "
                               "override (or the edit to the run's config)",
                               n->key, n->value, ckpt_path, n->key, o->value);
        else if (strcmp(n->key, "train.epochs") == 0)
            rc = daecl_err_set(err, DAECL_ECONFIG,
                               "train.epochs was %s when checkpoint %s was written and is %s "
                               "now; %s, so put it back",
                               o->value, ckpt_path, n->value,
                               stacked ? "the stages of a stack (stack.greedy) take train.epochs, "
                                         "and a change would move the stage the run stopped in"
                                       : "the cosine schedule (optimizer.schedule) spans the "
                                         "run's steps, and a change would alter the learning "
                                         "rates of the steps already taken");
        else if (under(n->key, "optimizer"))
            rc = daecl_err_set(err, DAECL_ECONFIG,
                               "%s was %s when checkpoint %s was written and is %s now; the "
                               "optimiser's state belongs to its settings, so put it back, or "
                               "start a new optimiser state with `daecl resume --reset-optimizer`",
                               n->key, o->value, ckpt_path, n->value);
        else
            rc = daecl_err_set(err, DAECL_ECONFIG,
                               "%s was %s when checkpoint %s was written and is %s now; a resumed "
                               "run may change only epochs, max_steps, logging, checkpoints, "
                               "eval, optimizer.lr, output and where it runs (docs/config.md), so "
                               "put it back or start a new run with `daecl train`",
                               n->key, o->value, ckpt_path, n->value);
    }
    free(old.e);
    free(now.e);
    free(yaml);
    return rc;
}

/* ---- data ------------------------------------------------------------------------------- */

/* A 64-bit hash of n bytes (multiply-xorshift over 8-byte words, as in
 * splitmix64's finaliser): fast enough for a data set of a few hundred MB
 * at load time, and any changed byte changes it with overwhelming odds. */
static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h[4] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL, 0x94d049bb133111ebULL,
                     0x2545f4914f6cdd1dULL};
    size_t i = 0;
    /* four lanes, so the multiplies of neighbouring words overlap */
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * k, 8);
            h[k] = (h[k] ^ w) * 0x9fb21c651e98df25ULL;
            h[k] ^= h[k] >> 29;
        }
    uint64_t tail = 0, r = mix(h[0]) ^ mix(h[1] + 1) ^ mix(h[2] + 2) ^ mix(h[3] + 3);
    for (size_t k = 0; i < n; i++, k++) {
        tail |= (uint64_t)b[i] << (8 * (k % 8));
        if (k % 8 == 7 || i + 1 == n) {
            r = mix(r ^ tail);
            tail = 0;
        }
    }
    return mix(r ^ (uint64_t)n);
}

void daecl_data_digest_of(const daecl_dataset *train, const daecl_dataset *test,
                          const daecl_labels *train_y, const daecl_labels *test_y,
                          daecl_data_digest *d)
{
    memset(d, 0, sizeof *d);
    const daecl_dataset *sets[2] = {train, test};
    const daecl_labels *labels[2] = {train_y, test_y};
    daecl_set_digest *ds_out[2] = {&d->train, &d->test};
    daecl_set_digest *lb_out[2] = {&d->train_labels, &d->test_labels};
    for (int i = 0; i < 2; i++) {
        if (sets[i]) {
            ds_out[i]->rows = sets[i]->n_rows;
            ds_out[i]->dim = sets[i]->dim;
            ds_out[i]->hash = hash_bytes(sets[i]->x, sets[i]->n_rows * sets[i]->dim * sizeof(float));
        }
        if (labels[i]) {
            lb_out[i]->rows = labels[i]->n;
            lb_out[i]->dim = 1;
            lb_out[i]->hash = hash_bytes(labels[i]->y, labels[i]->n * sizeof(int32_t));
        }
    }
}

static const char *const set_keys[4] = {"train", "test", "train_labels", "test_labels"};

static const daecl_set_digest *digest_at(const daecl_data_digest *d, int i)
{
    return i == 0 ? &d->train : i == 1 ? &d->test : i == 2 ? &d->train_labels : &d->test_labels;
}

char *daecl_data_digest_json(const daecl_data_digest *d)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < 4; i++) {
        const daecl_set_digest *s = digest_at(d, i);
        if (!s->rows)
            continue;
        char hash[24];
        snprintf(hash, sizeof hash, "%016" PRIx64, s->hash);
        cJSON *e = cJSON_AddObjectToObject(o, set_keys[i]);
        if (!e)
            break;
        cJSON_AddNumberToObject(e, "rows", (double)s->rows);
        cJSON_AddNumberToObject(e, "dim", (double)s->dim);
        cJSON_AddStringToObject(e, "hash", hash);
    }
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

static const char *path_of(const daecl_config *cfg, int i)
{
    const char *p = i == 0 ? cfg->data.train : i == 1 ? cfg->data.test
                    : i == 2 ? cfg->data.train_labels : cfg->data.test_labels;
    return p[0] ? p : "(none)";
}

int daecl_compat_data(const char *ckpt_json, const char *ckpt_path, const daecl_data_digest *d,
                      const daecl_config *cfg, daecl_err *err)
{
    if (!ckpt_json)
        return 0;
    cJSON *o = cJSON_Parse(ckpt_json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return daecl_err_set(err, DAECL_ECKPT, "checkpoint %s has a damaged 'daecl.data' entry "
                             "in its metadata", ckpt_path);
    }
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        const daecl_set_digest *s = digest_at(d, i);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, set_keys[i]);
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(e, "rows");
        const cJSON *dim = cJSON_GetObjectItemCaseSensitive(e, "dim");
        const cJSON *hash = cJSON_GetObjectItemCaseSensitive(e, "hash");
        char mine[24], then[96], now[96];
        snprintf(mine, sizeof mine, "%016" PRIx64, s->hash);
        int had = cJSON_IsObject(e) && cJSON_IsNumber(rows) && cJSON_IsNumber(dim) &&
                  cJSON_IsString(hash);
        if (!had && !s->rows)
            continue;
        if (had && s->rows && rows->valuedouble == (double)s->rows &&
            dim->valuedouble == (double)s->dim && strcmp(hash->valuestring, mine) == 0)
            continue;
        if (had)
            snprintf(then, sizeof then, "%.0f x %.0f values with content hash %.16s",
                     rows->valuedouble, dim->valuedouble, hash->valuestring);
        else
            snprintf(then, sizeof then, "no such data");
        if (s->rows)
            snprintf(now, sizeof now, "%" PRIu64 " x %" PRIu64 " values with content hash %s",
                     s->rows, s->dim, mine);
        else
            snprintf(now, sizeof now, "none");
        rc = daecl_err_set(err, DAECL_ECONFIG,
                           "data.%s (%s) now gives %s, but checkpoint %s was made with %s; data "
                           "are compared by content, so point data.%s (and its limit) at the "
                           "data the run was trained on, or start a new run with `daecl train`",
                           set_keys[i], path_of(cfg, i), now, ckpt_path, then, set_keys[i]);
    }
    cJSON_Delete(o);
    return rc;
}
