/* daecl — experiment configs: YAML (libyaml) plus key=value overrides.
 *
 * A config is validated against one schema (core sections below, plugin
 * sections against each plugin's own daecl_param_spec list): an unknown key,
 * a wrong type, a value out of range, an unknown plugin or plugin parameter
 * is an error with file:line:col and, where one is close, the nearest valid
 * key. Defaults are filled in, and the resolved config can be written back
 * as YAML that loads to the same config. docs/config.md lists every key. */
#ifndef DAECL_CORE_CONFIG_H
#define DAECL_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/registry.h"
#include "daecl/backend.h"

#define DAECL_PATH_MAX 1024
#define DAECL_NAME_MAX 128
#define DAECL_MAX_LAYERS 16
#define DAECL_STAGE_MAX_OV 16   /* keys one stack stage may change */
#define DAECL_STAGE_OV_MAX 256  /* bytes of one of them, "KEY=VALUE" */
#define DAECL_MAX_PARAMS 32
#define DAECL_MAX_REPLICAS 16 /* devices one process may train on */

enum { DAECL_CKPT_EPOCH = 0, DAECL_CKPT_STEP = 1 };
/* optimizer.schedule: the learning rate over an optimiser's phase */
enum { DAECL_SCHEDULE_CONSTANT = 0, DAECL_SCHEDULE_COSINE = 1 };

typedef struct daecl_layer_spec {
    uint32_t units;
    daecl_act act;
} daecl_layer_spec;

/* A plugin section (corruption, likelihood, backend): `plugin: NAME` plus
 * that plugin's parameters. */
typedef struct daecl_plugin_cfg {
    char name[DAECL_NAME_MAX];
    const daecl_plugin *plugin; /* found in the registry */
    const char *path;           /* its file (registry-owned) */
    daecl_param_value values[DAECL_MAX_PARAMS]; /* schema order; strings owned by the config */
    uint32_t n_values;
    float packed[DAECL_MAX_PACKED_PARAMS];      /* daecl_params_pack(values) */
    uint32_t n_packed;
} daecl_plugin_cfg;

typedef struct daecl_config {
    char source[DAECL_PATH_MAX]; /* the YAML file as named ("<string>" for text) */
    char name[DAECL_NAME_MAX];   /* run name: [A-Za-z0-9._-]+, not "." or ".." */
    uint64_t seed;

    struct {
        /* Paths resolved against the config file's folder ("" = not given). */
        char train[DAECL_PATH_MAX];
        char test[DAECL_PATH_MAX];
        char train_labels[DAECL_PATH_MAX];
        char test_labels[DAECL_PATH_MAX];
        uint64_t train_limit; /* rows; 0 = all */
        uint64_t test_limit;
        double resident_max_mb; /* 0 = decide from the device's memory */
        double max_mb;          /* bound on each data set's float array, MiB (> 0) */
        double valid_fraction;  /* the training rows' last fraction held out to validate */
        /* data.shape: one example's shape, rows excluded; rank 0 = the data
         * file's. Where it was set (line 0: an override), for the sentence
         * that refuses a shape whose product is not the data's dim. */
        uint32_t shape_rank;
        uint32_t shape[4];
        int shape_line, shape_col;
    } data;

    struct {
        uint32_t n_encoder;
        daecl_layer_spec encoder[DAECL_MAX_LAYERS];
        int decoder_mirror; /* 1: decoder hidden layers mirror the encoder */
        uint32_t n_decoder; /* explicit decoder hidden layers (not the output layer) */
        daecl_layer_spec decoder[DAECL_MAX_LAYERS];
        int tied_weights;
    } model;

    daecl_plugin_cfg corruption;
    daecl_plugin_cfg likelihood;
    daecl_plugin_cfg backend;
    /* backend.plugin: auto, resolved when the config loads (core/backend_auto.h):
     * "" when the config names its backend, else why auto chose the one in
     * `backend` (one line). The resolved config names that backend, so a
     * resume or an eval of the run uses it. */
    char backend_auto[480];

    struct {
        daecl_optim_kind kind;
        double lr, momentum, weight_decay, beta1, beta2, eps;
        int nesterov;
        int schedule;  /* DAECL_SCHEDULE_CONSTANT or DAECL_SCHEDULE_COSINE */
        double lr_min; /* the cosine schedule's last learning rate */
    } optimizer;

    struct {
        uint32_t epochs;
        uint32_t batch_size;
        uint32_t log_every;  /* steps between log lines; 0 = once per epoch */
        uint64_t max_steps;  /* stop after this many steps in all; 0 = no limit */
        uint32_t checkpoint_every; /* in checkpoint_unit; 0 = only at the end */
        int checkpoint_unit;       /* DAECL_CKPT_EPOCH or DAECL_CKPT_STEP */
        /* Walkback (core/walkback.h): up to `walkback` extra pairs per
         * example; walkback_p 0: all of them (fixed k), else the chain goes
         * on with probability walkback_p after each; walkback_mean: the
         * chain moves to the decoder's mean instead of a draw. */
        uint32_t walkback;
        double walkback_p;
        int walkback_mean;
    } train;

    struct {
        int denoising;      /* MSE/PSNR of reconstructions at the end of training */
        int probe;          /* linear probe on the top code at the end of training */
        int probe_baseline; /* the same probe on raw inputs */
        int probe_each;     /* eval.probe_layers: 0 top (the top code only), 1 each (every
                             * encoder layer's code and all of them side by side) */
        double probe_l2;         /* lambda of the probe's objective (core/probe.h) */
        double probe_tol;        /* stop at max |gradient entry| <= this */
        uint32_t probe_max_iter; /* or after this many L-BFGS iterations */
    } eval;

    struct {
        char dir[DAECL_PATH_MAX]; /* parent of run folders, relative to the cwd */
    } output;

    /* parallel: data parallelism over devices and processes (docs/scaling.md).
     * n_devices 0: the one device of the backend section. Otherwise each
     * entry is a backend section of its own (`plugin: NAME` plus that
     * plugin's parameters, validated like `backend`), plus an optional
     * `share:` (a positive weight; 0 = measured). The list is one node's:
     * the ranks on a node take entries round-robin by local rank
     * (core/replicas.h). */
    struct {
        uint32_t n_devices;
        daecl_plugin_cfg devices[DAECL_MAX_REPLICAS];
        double share[DAECL_MAX_REPLICAS];       /* 0: measured */
        int line[DAECL_MAX_REPLICAS], col[DAECL_MAX_REPLICAS]; /* of each entry (0: an override) */
        uint32_t measure_steps; /* steps timed before shares are set from throughput */
        int rebalance;          /* re-measure shares at every epoch boundary */
        int drop_slow;          /* leave out replicas not worth their synchronisation */
        char comm[DAECL_NAME_MAX]; /* "auto" (the launcher's), "none", or a comm plugin name */
    } parallel;

    /* stack: greedy layer-wise pretraining (core/stack.h). Stage k trains
     * encoder layer k as a DAE on the clean codes of the layers below; its
     * corruption, likelihood, optimiser settings and epochs are the
     * config's, changed by stage_ov[k] ("KEY=VALUE" overrides, the keys
     * under corruption, likelihood, optimizer (not its name) and
     * train.epochs). */
    struct {
        int greedy;
        uint32_t finetune_epochs; /* then the whole stack end to end, as one deep DAE */
        uint32_t n_stages;        /* stages with overrides listed (<= model.n_encoder) */
        uint32_t n_ov[DAECL_MAX_LAYERS];
        char stage_ov[DAECL_MAX_LAYERS][DAECL_STAGE_MAX_OV][DAECL_STAGE_OV_MAX];
        int line[DAECL_MAX_LAYERS], col[DAECL_MAX_LAYERS]; /* of each stage's item */
    } stack;

    struct {
        int corrupt; /* `daecl finetune` corrupts its training inputs */
    } finetune;

    struct daecl_config_tree *tree; /* private: the resolved document */
} daecl_config;

/* Loads `path`, applies overrides ("a.b.c=VALUE", VALUE in YAML flow syntax)
 * in order, validates, and resolves plugins in `reg`. */
int daecl_config_load(const char *path, const char *const *overrides, size_t n_overrides,
                      const daecl_registry *reg, daecl_config **out, daecl_err *err);
/* The same from text; `name` stands in for the file name in messages and
 * relative data paths resolve against the cwd. */
int daecl_config_load_string(const char *text, size_t n_bytes, const char *name,
                             const char *const *overrides, size_t n_overrides,
                             const daecl_registry *reg, daecl_config **out, daecl_err *err);
void daecl_config_destroy(daecl_config *cfg);

/* The resolved config as YAML (every key, defaults filled, data paths
 * absolute): a NUL-terminated string the caller frees, or NULL when out of
 * memory. Loading it gives the same config. */
char *daecl_config_to_yaml(const daecl_config *cfg);

/* "float", "int", "bool", "string", "enum", "[float, float]": how docs and
 * `daecl plugins NAME` name a parameter type. */
const char *daecl_param_type_name(daecl_param_type type);

/* A plugin's parameter defaults, resolved from its schema: the one place
 * defaults are filled in (config sections, `daecl precompile` and `plugin
 * check` all start here). values holds plugin->n_params entries; strings
 * point into the schema. */
void daecl_plugin_defaults(const daecl_plugin *plugin, daecl_param_value *values);

/* A plugin's parameters outside a config file: the defaults, then each
 * "name=value" of the comma-separated `assign` (NULL or "": none) parsed as
 * a config parses `section.name: value` (scalars only), then the plugin's
 * check(). `assign` is split in place and strings point into it, so it must
 * outlive values. One sentence in err names what is wrong. */
int daecl_plugin_values(const daecl_plugin *plugin, const char *section, char *assign,
                        daecl_param_value *values, daecl_err *err);

/* The parameter value of a plugin section by name, or NULL. */
const daecl_param_value *daecl_plugin_cfg_value(const daecl_plugin_cfg *pc, const char *name);

#endif
