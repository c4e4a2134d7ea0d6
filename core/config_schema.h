/* daecl — the config schema as data (core/config_schema.c): the core
 * sections' keys as daecl_param_spec tables, the same type plugins declare
 * their parameters with, so one parser validates both; number and string
 * formatting for messages and for the YAML written back; and the key
 * reference that docs/config.md embeds (tests/test_config.c keeps it equal). */
#ifndef DAECL_CORE_CONFIG_SCHEMA_H
#define DAECL_CORE_CONFIG_SCHEMA_H

#include <stddef.h>

#include "core/config.h"
#include "core/yamltree.h"

enum {
    DAECL__KEY_REQUIRED = 1u << 0, /* no default: the key must be given */
    DAECL__KEY_PATH = 1u << 1,     /* a file path, made absolute against the config's folder */
    DAECL__KEY_RUN_NAME = 1u << 2, /* [A-Za-z0-9._-]+, 1..100 bytes, not "." or ".." */
    DAECL__KEY_LAYERS = 1u << 3,   /* a list of layers (spec.type unused, def_str is YAML) */
    DAECL__KEY_SHAPE = 1u << 4,    /* data.shape: a list of 1 to 4 whole numbers, or [] */
    DAECL__KEY_DEVICES = 1u << 5,  /* parallel.devices: a list of backend sections, or [] */
    DAECL__KEY_NAME_ID = 1u << 6,  /* a name of [a-z0-9_]+ (a plugin's, "auto", "none") */
    DAECL__KEY_TOY = 1u << 7,      /* with _PATH: may be a toy:NAME?... source (core/toy.h) */
    DAECL__KEY_STAGES = 1u << 8    /* stack.stages: a list of mappings of KEY: VALUE */
};

/* One core key: its schema, and where its value lives in the struct of its
 * section (daecl_config, or daecl_layer_spec for layer keys). Storage by
 * type: INT a uint32_t or uint64_t (size 4 or 8), FLOAT a double, BOOL an
 * int, STRING a char[size], ENUM an int (enum_values[choice], or the choice's
 * index when enum_values is NULL). */
typedef struct daecl__cfg_key {
    daecl_param_spec spec;
    size_t offset, size;
    const int *enum_values;
    unsigned flags;
} daecl__cfg_key;

typedef enum daecl__sec_kind {
    DAECL__SEC_KEYS = 1,  /* scalar keys only */
    DAECL__SEC_MODEL = 2, /* keys, some of them layer lists */
    DAECL__SEC_PLUGIN = 3 /* `plugin: NAME` plus that plugin's parameters */
} daecl__sec_kind;

typedef struct daecl__cfg_section {
    const char *name; /* "" for the top level's own keys (name, seed) */
    daecl__sec_kind kind;
    const daecl__cfg_key *keys;
    size_t n_keys;
    /* plugin sections */
    size_t offset; /* of its daecl_plugin_cfg in daecl_config */
    daecl_plugin_kind plugin_kind;
    const char *default_plugin;
    const char *doc;
} daecl__cfg_section;

/* The top level, in the order to_yaml writes it. */
extern const daecl__cfg_section daecl__cfg_sections[];
extern const size_t daecl__cfg_n_sections;
/* The keys of one layer of model.encoder / model.decoder. */
extern const daecl__cfg_key daecl__cfg_layer_keys[];
extern const size_t daecl__cfg_n_layer_keys;

/* `share` of an item of parallel.devices: the one key of a device entry
 * besides its plugin and the plugin's parameters (stored as a double). */
extern const daecl_param_spec daecl__cfg_share_spec;

/* The default value of a spec (ENUM: num[0] = index of def_str, str = def_str). */
void daecl__param_default(const daecl_param_spec *spec, daecl_param_value *out);
/* Parses `val` as a value of `spec`; `where` is its dotted name for the
 * message. On success out->str points into val (or is NULL): copy it. On
 * failure returns -1 with one sentence in why[0..n_why) and the node to blame
 * in *at. Never allocates. */
int daecl__param_parse(const daecl_param_spec *spec, const char *where, const daecl__ynode *val,
                       daecl_param_value *out, const daecl__ynode **at, char *why, size_t n_why);
/* Choice i of "a|b|c" (its length in *len), or NULL. */
const char *daecl__choice_at(const char *choices, size_t i, size_t *len);

/* Stores v into the key's place in base; -1 when a string does not fit. */
int daecl__key_store(const daecl__cfg_key *key, void *base, const daecl_param_value *v);
/* Reads the key's value back from base (ENUM: num[0] = choice index). */
void daecl__key_load(const daecl__cfg_key *key, const void *base, daecl_param_value *v);

/* Nearest-name suggestions: optimal string alignment distance, close enough
 * when at most a third of the typed name (at least 1 edit) changes, and not
 * all of it. */
typedef struct daecl__near {
    const char *typed;
    const char *best;
    size_t best_len, best_d;
} daecl__near;
void daecl__near_init(daecl__near *near, const char *typed);
void daecl__near_add(daecl__near *near, const char *cand, size_t len);

/* The shortest of %.6g, %.9g, %.15g, %.17g that reads back as v; .inf,
 * -.inf, .nan. */
const char *daecl__fmt_double(double v, char *buf, size_t n);
/* The range of a numeric spec for a message: "in [0, 1)", "at least 0",
 * "greater than 0"; "" when unbounded. Exclusive bounds are spelled
 * nextafter(b, inward) in a spec and shown as b. */
const char *daecl__fmt_range(const daecl_param_spec *spec, char *buf, size_t n);

/* A growing string for YAML and Markdown output; `oom` sticks. */
typedef struct daecl__sbuf {
    char *p;
    size_t len, cap;
    int oom;
} daecl__sbuf;
void daecl__sbuf_printf(daecl__sbuf *b, const char *fmt, ...) DAECL_PRINTF(2, 3);
/* s as a YAML scalar: plain when that reads back as the same string and
 * cannot be mistaken for a number or bool, else double-quoted and escaped. */
void daecl__sbuf_yaml_str(daecl__sbuf *b, const char *s);
/* A value in YAML flow syntax (ENUM by num[0]'s choice, FLOAT2 as [lo, hi]). */
void daecl__sbuf_value(daecl__sbuf *b, const daecl_param_spec *spec, const daecl_param_value *v);

/* The key reference of docs/config.md (Markdown tables from the tables
 * above): a string the caller frees, or NULL when out of memory. */
char *daecl__config_reference(void);

#endif
