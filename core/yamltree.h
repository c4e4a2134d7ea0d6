/* daecl — a small YAML document tree for configs, read with libyaml's event
 * parser: mappings, sequences and scalars, each with its 1-based line:col and
 * where it came from (the file, or the n-th command-line override). Aliases
 * are expanded at parse time under hard limits, so the tree is always a tree. */
#ifndef DAECL_CORE_YAMLTREE_H
#define DAECL_CORE_YAMLTREE_H

#include <stddef.h>

#include "core/error.h"

#define DAECL__YAML_MAX_BYTES ((size_t)1 << 20) /* 1 MiB of text */
#define DAECL__YAML_MAX_DEPTH 32                /* nested collections */
#define DAECL__YAML_MAX_NODES 100000            /* after alias expansion */

typedef enum daecl__ykind {
    DAECL__Y_SCALAR = 1,
    DAECL__Y_MAP = 2,
    DAECL__Y_SEQ = 3
} daecl__ykind;

typedef struct daecl__ynode daecl__ynode;
struct daecl__ynode {
    daecl__ykind kind;
    int line, col; /* 1-based; 0 for nodes made by an override */
    int src;       /* -1: the config file; i >= 0: override i */
    int quoted;    /* scalar written in a quoted or block style, not plain */
    char *str;     /* scalar: its text, NUL-terminated (NUL bytes are refused) */
    size_t len;    /* scalar: strlen(str) */
    size_t n, cap; /* map: entries; seq: items */
    daecl__ynode **keys; /* map: n scalar keys */
    daecl__ynode **vals; /* map: n values; seq: n items */
    /* parse bookkeeping: nodes in this subtree, and its height */
    size_t weight;
    int height;
};

/* Parses one YAML document from text[0..n). `file` names it in messages
 * (err->file); every node gets `src`. *root is NULL for a stream without a
 * document (empty or comments only). Refuses more than one document, tags,
 * non-scalar and duplicate keys, nesting deeper than DAECL__YAML_MAX_DEPTH,
 * more than DAECL__YAML_MAX_NODES nodes (aliases counted expanded, checked
 * before copying, so an alias bomb costs nothing) and more than
 * DAECL__YAML_MAX_BYTES of text. Errors are DAECL_ECONFIG (DAECL_ENOMEM). */
int daecl__yaml_parse(const char *text, size_t n, const char *file, int src, daecl__ynode **root,
                      daecl_err *err);

/* The error for text over DAECL__YAML_MAX_BYTES (n_bytes long); returns
 * DAECL_ECONFIG. */
int daecl__yaml_refuse_size(size_t n_bytes, const char *file, daecl_err *err);

/* Tree building and editing; the constructors return NULL when out of memory. */
daecl__ynode *daecl__ynode_scalar(const char *s, size_t len, int line, int col, int src);
daecl__ynode *daecl__ynode_coll(daecl__ykind kind, int line, int col, int src);
void daecl__ynode_free(daecl__ynode *node); /* the whole subtree; NULL ok */
/* Appends an item (seq; key NULL) or an entry (map); takes ownership of
 * both on success only. Returns 0 or DAECL_ENOMEM. */
int daecl__ynode_push(daecl__ynode *coll, daecl__ynode *key, daecl__ynode *val);
/* Map lookup by key text: the index of the entry, or -1. O(n). */
long daecl__ymap_find(const daecl__ynode *map, const char *key);
/* Removes and frees entry i of a map. */
void daecl__ymap_remove(daecl__ynode *map, size_t i);
/* A plain empty scalar, `~` or `null`: YAML's null. */
int daecl__ynode_is_null(const daecl__ynode *node);
/* "a mapping", "a list" or "'text'" (cut at 40 bytes) for messages. */
const char *daecl__ynode_describe(const daecl__ynode *node, char *buf, size_t n);

#endif
