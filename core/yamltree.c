/* daecl — the YAML document tree (yamltree.h): libyaml events in, a tree of
 * marked nodes out. Everything a hostile file could use to make the parse
 * slow or large (size, depth, node count, alias expansion) is bounded here,
 * before any work proportional to it is done. */
#include "core/yamltree.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- nodes ---------------------------------------------------------------- */

daecl__ynode *daecl__ynode_scalar(const char *s, size_t len, int line, int col, int src)
{
    daecl__ynode *node = calloc(1, sizeof *node);
    if (!node)
        return NULL;
    node->str = malloc(len + 1);
    if (!node->str) {
        free(node);
        return NULL;
    }
    if (len)
        memcpy(node->str, s, len);
    node->str[len] = '\0';
    node->len = len;
    node->kind = DAECL__Y_SCALAR;
    node->line = line;
    node->col = col;
    node->src = src;
    node->weight = 1;
    return node;
}

daecl__ynode *daecl__ynode_coll(daecl__ykind kind, int line, int col, int src)
{
    daecl__ynode *node = calloc(1, sizeof *node);
    if (!node)
        return NULL;
    node->kind = kind;
    node->line = line;
    node->col = col;
    node->src = src;
    node->weight = 1;
    node->height = 1;
    return node;
}

void daecl__ynode_free(daecl__ynode *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->n; i++) {
        if (node->keys)
            daecl__ynode_free(node->keys[i]);
        daecl__ynode_free(node->vals[i]);
    }
    free(node->keys);
    free(node->vals);
    free(node->str);
    free(node);
}

int daecl__ynode_push(daecl__ynode *coll, daecl__ynode *key, daecl__ynode *val)
{
    if (coll->n == coll->cap) {
        size_t cap = coll->cap ? 2 * coll->cap : 4;
        daecl__ynode **vals = realloc(coll->vals, cap * sizeof *vals);
        if (!vals)
            return DAECL_ENOMEM;
        coll->vals = vals;
        if (coll->kind == DAECL__Y_MAP) {
            daecl__ynode **keys = realloc(coll->keys, cap * sizeof *keys);
            if (!keys)
                return DAECL_ENOMEM;
            coll->keys = keys;
        }
        coll->cap = cap;
    }
    if (coll->kind == DAECL__Y_MAP)
        coll->keys[coll->n] = key;
    coll->vals[coll->n++] = val;
    return 0;
}

long daecl__ymap_find(const daecl__ynode *map, const char *key)
{
    if (!map || map->kind != DAECL__Y_MAP)
        return -1;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i]->str, key) == 0)
            return (long)i;
    return -1;
}

void daecl__ymap_remove(daecl__ynode *map, size_t i)
{
    daecl__ynode_free(map->keys[i]);
    daecl__ynode_free(map->vals[i]);
    memmove(map->keys + i, map->keys + i + 1, (map->n - i - 1) * sizeof *map->keys);
    memmove(map->vals + i, map->vals + i + 1, (map->n - i - 1) * sizeof *map->vals);
    map->n--;
}

int daecl__ynode_is_null(const daecl__ynode *node)
{
    return node && node->kind == DAECL__Y_SCALAR && !node->quoted &&
           (node->len == 0 || strcmp(node->str, "~") == 0 || strcmp(node->str, "null") == 0);
}

const char *daecl__ynode_describe(const daecl__ynode *node, char *buf, size_t n)
{
    if (!node)
        snprintf(buf, n, "nothing");
    else if (node->kind == DAECL__Y_MAP)
        snprintf(buf, n, "a mapping");
    else if (node->kind == DAECL__Y_SEQ)
        snprintf(buf, n, "a list");
    else if (node->len == 0)
        snprintf(buf, n, node->quoted ? "an empty string" : "an empty value");
    else if (node->len > 40)
        snprintf(buf, n, "%s'%.37s...'", node->quoted ? "the quoted string " : "", node->str);
    else
        snprintf(buf, n, "%s'%s'", node->quoted ? "the quoted string " : "", node->str);
    return buf;
}

/* A copy of a subtree, for an alias; the copy's root takes the alias's
 * position so messages point where the value is used. */
static daecl__ynode *copy_tree(const daecl__ynode *from, int line, int col, int src)
{
    daecl__ynode *to = from->kind == DAECL__Y_SCALAR
                           ? daecl__ynode_scalar(from->str, from->len, line, col, src)
                           : daecl__ynode_coll(from->kind, line, col, src);
    if (!to)
        return NULL;
    to->quoted = from->quoted;
    to->weight = from->weight;
    to->height = from->height;
    for (size_t i = 0; i < from->n; i++) {
        daecl__ynode *k = NULL, *v;
        if (from->kind == DAECL__Y_MAP) {
            k = copy_tree(from->keys[i], from->keys[i]->line, from->keys[i]->col, src);
            if (!k)
                goto fail;
        }
        v = copy_tree(from->vals[i], from->vals[i]->line, from->vals[i]->col, src);
        if (!v || daecl__ynode_push(to, k, v) != 0) {
            daecl__ynode_free(k);
            daecl__ynode_free(v);
            goto fail;
        }
    }
    return to;
fail:
    daecl__ynode_free(to);
    return NULL;
}

int daecl__yaml_refuse_size(size_t n_bytes, const char *file, daecl_err *err)
{
    return daecl_err_set_at(err, DAECL_ECONFIG, file ? file : "", 0, 0,
                            "the config is %.1f MiB (%zu bytes), over the limit of 1 MiB; a "
                            "config is a few hundred bytes, so check that this is the file you "
                            "meant",
                            (double)n_bytes / (1 << 20), n_bytes);
}

/* ---- the parser ------------------------------------------------------------ */

typedef struct frame {
    daecl__ynode *node;
    daecl__ynode *key; /* map: the key waiting for its value, or NULL */
    long anchor;       /* index in anchors of this node's anchor, or -1 */
} frame;

typedef struct anchor {
    char *name;
    const daecl__ynode *node;
    int done; /* a collection's anchor is usable only once it is closed */
} anchor;

typedef struct pstate {
    const char *file;
    int src;
    daecl_err *err;
    frame stack[DAECL__YAML_MAX_DEPTH];
    int depth;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t total; /* nodes so far, aliases counted expanded */
    daecl__ynode *root;
    int n_docs;
} pstate;

static int fail_mark(pstate *ps, yaml_mark_t mark, const char *fmt, ...) DAECL_PRINTF(3, 4);
static int fail_mark(pstate *ps, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[DAECL_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return daecl_err_set_at(ps->err, DAECL_ECONFIG, ps->file, (int)mark.line + 1,
                            (int)mark.column + 1, "%s", msg);
}

static int oom(pstate *ps)
{
    return daecl_err_set(ps->err, DAECL_ENOMEM,
                         "out of memory while reading the config %s; free some memory",
                         ps->file);
}

static int add_anchor(pstate *ps, const char *name, const daecl__ynode *node, int done,
                      long *index)
{
    if (ps->n_anchors == ps->cap_anchors) {
        size_t cap = ps->cap_anchors ? 2 * ps->cap_anchors : 8;
        anchor *a = realloc(ps->anchors, cap * sizeof *a);
        if (!a)
            return oom(ps);
        ps->anchors = a;
        ps->cap_anchors = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return oom(ps);
    ps->anchors[ps->n_anchors] = (anchor){copy, node, done};
    if (index)
        *index = (long)ps->n_anchors;
    ps->n_anchors++;
    return 0;
}

/* Counts one more node (or an alias's `weight`) against the limit. */
static int count(pstate *ps, size_t weight, yaml_mark_t mark)
{
    if (weight > DAECL__YAML_MAX_NODES - ps->total)
        return fail_mark(ps, mark,
                         "the document has more than %d nodes%s; a config is much smaller than "
                         "that, so check that this is the file you meant",
                         DAECL__YAML_MAX_NODES,
                         weight > 1 ? " once this alias is expanded" : "");
    ps->total += weight;
    return 0;
}

/* Hangs a new node under the open collection (or makes it the root). The
 * node belongs to the tree afterwards, also when this fails. */
static int attach(pstate *ps, daecl__ynode *node, yaml_mark_t mark)
{
    if (ps->depth == 0) {
        ps->root = node;
        return 0;
    }
    frame *top = &ps->stack[ps->depth - 1];
    if (top->node->kind == DAECL__Y_SEQ) {
        if (daecl__ynode_push(top->node, NULL, node) != 0) {
            daecl__ynode_free(node);
            return oom(ps);
        }
        return 0;
    }
    if (!top->key) {
        if (node->kind != DAECL__Y_SCALAR) {
            const char *what = node->kind == DAECL__Y_MAP ? "mapping" : "list";
            daecl__ynode_free(node);
            return fail_mark(ps, mark, "a key must be a plain name, not a %s; write `name: value`",
                             what);
        }
        top->key = node;
        return 0;
    }
    if (daecl__ynode_push(top->node, top->key, node) != 0) {
        daecl__ynode_free(node);
        return oom(ps);
    }
    top->key = NULL;
    return 0;
}

static int cmp_keys(const void *a, const void *b)
{
    const daecl__ynode *const *x = a, *const *y = b;
    int c = strcmp((*x)->str, (*y)->str);
    if (c)
        return c;
    /* equal keys: document order, so the later one is reported */
    if ((*x)->line != (*y)->line)
        return (*x)->line < (*y)->line ? -1 : 1;
    return ((*x)->col > (*y)->col) - ((*x)->col < (*y)->col);
}

/* A mapping with the same key twice is refused (which one should win?).
 * O(n^2) for small mappings, O(n log n) for big ones. */
static int check_duplicates(pstate *ps, const daecl__ynode *map)
{
    const daecl__ynode *first = NULL, *dup = NULL;
    if (map->n <= 16) {
        for (size_t j = 1; j < map->n && !dup; j++)
            for (size_t i = 0; i < j; i++)
                if (strcmp(map->keys[i]->str, map->keys[j]->str) == 0) {
                    first = map->keys[i];
                    dup = map->keys[j];
                    break;
                }
    } else {
        daecl__ynode **sorted = malloc(map->n * sizeof *sorted);
        if (!sorted)
            return oom(ps);
        memcpy(sorted, map->keys, map->n * sizeof *sorted);
        qsort(sorted, map->n, sizeof *sorted, cmp_keys);
        for (size_t i = 1; i < map->n; i++)
            if (strcmp(sorted[i - 1]->str, sorted[i]->str) == 0 &&
                (!dup || sorted[i]->line < dup->line ||
                 (sorted[i]->line == dup->line && sorted[i]->col < dup->col))) {
                first = sorted[i - 1];
                dup = sorted[i];
            }
        free(sorted);
    }
    if (!dup)
        return 0;
    yaml_mark_t mark = {0, (size_t)dup->line - 1, (size_t)dup->col - 1};
    return fail_mark(ps, mark,
                     "duplicate key '%.100s' (it is also at line %d, column %d); keep only one",
                     dup->str, first->line, first->col);
}

static int check_tag(pstate *ps, const yaml_char_t *tag, yaml_mark_t mark)
{
    if (!tag)
        return 0;
    return fail_mark(ps, mark,
                     "YAML tags (here '%.100s') are not supported in a config; remove the tag",
                     (const char *)tag);
}

static int on_scalar(pstate *ps, const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    int rc;
    if ((rc = check_tag(ps, ev->data.scalar.tag, ev->start_mark)) != 0)
        return rc;
    if (memchr(s, '\0', len))
        return fail_mark(ps, ev->start_mark,
                         "this value contains a NUL character, which a config cannot use");
    if ((rc = count(ps, 1, ev->start_mark)) != 0)
        return rc;
    daecl__ynode *node = daecl__ynode_scalar(s, len, (int)ev->start_mark.line + 1,
                                             (int)ev->start_mark.column + 1, ps->src);
    if (!node)
        return oom(ps);
    node->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    if ((rc = attach(ps, node, ev->start_mark)) != 0)
        return rc;
    if (ev->data.scalar.anchor)
        return add_anchor(ps, (const char *)ev->data.scalar.anchor, node, 1, NULL);
    return 0;
}

static int on_start(pstate *ps, const yaml_event_t *ev, daecl__ykind kind)
{
    const yaml_char_t *tag = kind == DAECL__Y_MAP ? ev->data.mapping_start.tag
                                                  : ev->data.sequence_start.tag;
    const yaml_char_t *name = kind == DAECL__Y_MAP ? ev->data.mapping_start.anchor
                                                   : ev->data.sequence_start.anchor;
    int rc;
    if ((rc = check_tag(ps, tag, ev->start_mark)) != 0)
        return rc;
    if (ps->depth >= DAECL__YAML_MAX_DEPTH)
        return fail_mark(ps, ev->start_mark,
                         "the document nests deeper than %d levels; a config needs only a few",
                         DAECL__YAML_MAX_DEPTH);
    if ((rc = count(ps, 1, ev->start_mark)) != 0)
        return rc;
    daecl__ynode *node = daecl__ynode_coll(kind, (int)ev->start_mark.line + 1,
                                           (int)ev->start_mark.column + 1, ps->src);
    if (!node)
        return oom(ps);
    if ((rc = attach(ps, node, ev->start_mark)) != 0)
        return rc;
    frame *f = &ps->stack[ps->depth++];
    *f = (frame){node, NULL, -1};
    if (name)
        return add_anchor(ps, (const char *)name, node, 0, &f->anchor);
    return 0;
}

static int on_end(pstate *ps)
{
    frame *f = &ps->stack[--ps->depth];
    daecl__ynode *node = f->node;
    size_t weight = 1;
    int height = 0;
    for (size_t i = 0; i < node->n; i++) {
        if (node->keys)
            weight += node->keys[i]->weight;
        weight += node->vals[i]->weight;
        if (node->vals[i]->height > height)
            height = node->vals[i]->height;
    }
    node->weight = weight;
    node->height = height + 1;
    if (f->anchor >= 0)
        ps->anchors[f->anchor].done = 1;
    if (node->kind != DAECL__Y_MAP)
        return 0;
    for (size_t i = 0; i < node->n; i++) {
        const daecl__ynode *k = node->keys[i];
        if (!k->quoted && strcmp(k->str, "<<") == 0) {
            /* a YAML 1.1 merge key: libyaml leaves merging to the
             * application, and a config that relies on it would read
             * differently elsewhere */
            yaml_mark_t mark = {0, (size_t)k->line - 1, (size_t)k->col - 1};
            return fail_mark(ps, mark, "YAML merge keys (<<) are not supported in a config; "
                             "write the merged keys out in this mapping");
        }
    }
    return check_duplicates(ps, node);
}

static int on_alias(pstate *ps, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const anchor *a = NULL;
    for (size_t i = ps->n_anchors; i-- > 0;)
        if (strcmp(ps->anchors[i].name, name) == 0) {
            a = &ps->anchors[i];
            break;
        }
    if (!a)
        return fail_mark(ps, ev->start_mark,
                         "the alias '*%.100s' has no anchor '&%.100s' before it; define the "
                         "anchor first",
                         name, name);
    if (!a->done)
        return fail_mark(ps, ev->start_mark,
                         "the alias '*%.100s' is inside the node it refers to; a config cannot "
                         "be recursive",
                         name);
    if (ps->depth + a->node->height > DAECL__YAML_MAX_DEPTH)
        return fail_mark(ps, ev->start_mark,
                         "the alias '*%.100s' makes the document nest deeper than %d levels; a "
                         "config needs only a few",
                         name, DAECL__YAML_MAX_DEPTH);
    int rc;
    /* counted before copying: a billion-laughs document stops here */
    if ((rc = count(ps, a->node->weight, ev->start_mark)) != 0)
        return rc;
    daecl__ynode *node = copy_tree(a->node, (int)ev->start_mark.line + 1,
                                   (int)ev->start_mark.column + 1, ps->src);
    if (!node)
        return oom(ps);
    return attach(ps, node, ev->start_mark);
}

/* 1-based line and column of a byte offset, for libyaml's reader errors,
 * which carry only the offset. */
static void offset_mark(const char *text, size_t n, size_t off, yaml_mark_t *mark)
{
    mark->line = 0;
    mark->column = 0;
    for (size_t i = 0; i < off && i < n; i++) {
        if (text[i] == '\n') {
            mark->line++;
            mark->column = 0;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            mark->column++;
        }
    }
}

static int parser_error(pstate *ps, const yaml_parser_t *p, const char *text, size_t n)
{
    if (p->error == YAML_MEMORY_ERROR)
        return oom(ps);
    const char *problem = p->problem ? p->problem : "unknown problem";
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t mark;
        offset_mark(text, n, p->problem_offset, &mark);
        if (p->problem_value != -1)
            return fail_mark(ps, mark,
                             "malformed YAML: %s (byte #x%X); save the file as UTF-8 text",
                             problem, (unsigned)p->problem_value);
        return fail_mark(ps, mark, "malformed YAML: %s; save the file as UTF-8 text", problem);
    }
    if (p->context)
        return fail_mark(ps, p->problem_mark,
                         "malformed YAML: %s (%s that starts at line %d, column %d); check the "
                         "indentation and punctuation here",
                         problem, p->context, (int)p->context_mark.line + 1,
                         (int)p->context_mark.column + 1);
    return fail_mark(ps, p->problem_mark,
                     "malformed YAML: %s; check the indentation and punctuation here", problem);
}

int daecl__yaml_parse(const char *text, size_t n, const char *file, int src, daecl__ynode **root,
                      daecl_err *err)
{
    pstate ps = {.file = file ? file : "", .src = src, .err = err};
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = 0, done = 0;

    *root = NULL;
    if (n > DAECL__YAML_MAX_BYTES)
        return daecl__yaml_refuse_size(n, ps.file, err);
    if (!yaml_parser_initialize(&parser))
        return oom(&ps);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, n);
    while (!done && rc == 0) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&ps, &parser, text, n);
            break;
        }
        switch (ev.type) {
        case YAML_DOCUMENT_START_EVENT:
            if (++ps.n_docs > 1)
                rc = fail_mark(&ps, ev.start_mark,
                               "a second YAML document starts here; a config is one document, "
                               "so remove this '---' and what follows or merge them");
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&ps, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(&ps, &ev, DAECL__Y_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(&ps, &ev, DAECL__Y_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(&ps);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(&ps, &ev);
            break;
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    for (int i = 0; i < ps.depth; i++)
        daecl__ynode_free(ps.stack[i].key);
    for (size_t i = 0; i < ps.n_anchors; i++)
        free(ps.anchors[i].name);
    free(ps.anchors);
    if (rc != 0) {
        daecl__ynode_free(ps.root);
        return rc;
    }
    *root = ps.root;
    return 0;
}
