/* daecl — the resolved config written back as YAML (daecl_config_to_yaml):
 * every key with its value, defaults filled in, in the schema's order; what
 * config.yaml of a run folder and a checkpoint's daecl.config hold. */
#include "core/config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_schema.h"

/* A plugin's name and parameters as block-style keys: `first` opens the
 * first line, `indent` the others. */
static void write_plugin_cfg(daecl__sbuf *b, const daecl_plugin_cfg *pc, const char *first,
                             const char *indent)
{
    daecl__sbuf_printf(b, "%splugin: ", first);
    daecl__sbuf_yaml_str(b, pc->name);
    daecl__sbuf_printf(b, "\n");
    for (uint32_t k = 0; pc->plugin && k < pc->n_values; k++) {
        daecl__sbuf_printf(b, "%s%s: ", indent, pc->plugin->params[k].name);
        daecl__sbuf_value(b, &pc->plugin->params[k], &pc->values[k]);
        daecl__sbuf_printf(b, "\n");
    }
}

static void write_devices(daecl__sbuf *b, const daecl_config *cfg, const char *name,
                          const char *indent)
{
    if (cfg->parallel.n_devices == 0) {
        daecl__sbuf_printf(b, "%s%s: []\n", indent, name);
        return;
    }
    daecl__sbuf_printf(b, "%s%s:\n", indent, name);
    for (uint32_t i = 0; i < cfg->parallel.n_devices; i++) {
        daecl_param_value share = {.num = {cfg->parallel.share[i], 0}};
        write_plugin_cfg(b, &cfg->parallel.devices[i], "    - ", "      ");
        daecl__sbuf_printf(b, "      share: ");
        daecl__sbuf_value(b, &daecl__cfg_share_spec, &share);
        daecl__sbuf_printf(b, "\n");
    }
}

/* stack.stages as a list of flow mappings, KEY: VALUE as they were given. */
static void write_stages(daecl__sbuf *b, const daecl_config *cfg, const char *name,
                         const char *indent)
{
    if (cfg->stack.n_stages == 0) {
        daecl__sbuf_printf(b, "%s%s: []\n", indent, name);
        return;
    }
    daecl__sbuf_printf(b, "%s%s:\n", indent, name);
    for (uint32_t k = 0; k < cfg->stack.n_stages; k++) {
        daecl__sbuf_printf(b, "%s  - {", indent);
        for (uint32_t i = 0; i < cfg->stack.n_ov[k]; i++) {
            const char *ov = cfg->stack.stage_ov[k][i], *eq = strchr(ov, '=');
            daecl__sbuf_printf(b, "%s%.*s: %s", i ? ", " : "", (int)(eq - ov), ov, eq + 1);
        }
        daecl__sbuf_printf(b, "}\n");
    }
}

static void write_keys(daecl__sbuf *b, const daecl__cfg_key *keys, size_t n_keys,
                       const void *base, const char *indent)
{
    for (size_t k = 0; k < n_keys; k++) {
        daecl_param_value pv;
        if (keys[k].flags & DAECL__KEY_LAYERS)
            continue;
        if (keys[k].flags & DAECL__KEY_DEVICES) {
            write_devices(b, base, keys[k].spec.name, indent);
            continue;
        }
        if (keys[k].flags & DAECL__KEY_STAGES) {
            write_stages(b, base, keys[k].spec.name, indent);
            continue;
        }
        if (keys[k].flags & DAECL__KEY_SHAPE) {
            const daecl_config *cfg = base;
            daecl__sbuf_printf(b, "%s%s: [", indent, keys[k].spec.name);
            for (uint32_t i = 0; i < cfg->data.shape_rank; i++)
                daecl__sbuf_printf(b, "%s%u", i ? ", " : "", cfg->data.shape[i]);
            daecl__sbuf_printf(b, "]\n");
            continue;
        }
        daecl__key_load(&keys[k], base, &pv);
        daecl__sbuf_printf(b, "%s%s: ", indent, keys[k].spec.name);
        daecl__sbuf_value(b, &keys[k].spec, &pv);
        daecl__sbuf_printf(b, "\n");
    }
}

static void write_layers(daecl__sbuf *b, const char *name, const daecl_layer_spec *layers,
                         uint32_t n)
{
    if (n == 0) {
        daecl__sbuf_printf(b, "  %s: []\n", name);
        return;
    }
    daecl__sbuf_printf(b, "  %s:\n", name);
    for (uint32_t i = 0; i < n; i++) {
        daecl__sbuf_printf(b, "    - ");
        for (size_t k = 0; k < daecl__cfg_n_layer_keys; k++) {
            daecl_param_value pv;
            daecl__key_load(&daecl__cfg_layer_keys[k], &layers[i], &pv);
            daecl__sbuf_printf(b, "%s%s: ", k ? "      " : "", daecl__cfg_layer_keys[k].spec.name);
            daecl__sbuf_value(b, &daecl__cfg_layer_keys[k].spec, &pv);
            daecl__sbuf_printf(b, "\n");
        }
    }
}

char *daecl_config_to_yaml(const daecl_config *cfg)
{
    daecl__sbuf b = {0};
    if (!cfg)
        return NULL;
    daecl__sbuf_printf(&b, "# daecl config, resolved: every key with its value, defaults "
                           "filled in\n");
    for (size_t s = 0; s < daecl__cfg_n_sections; s++) {
        const daecl__cfg_section *sec = &daecl__cfg_sections[s];
        if (!sec->name[0]) {
            write_keys(&b, sec->keys, sec->n_keys, cfg, "");
            continue;
        }
        /* The request auto's choice came from, for the reader: a comment,
         * so loading this gives the choice, as a resume or an eval must. */
        if (sec->offset == offsetof(daecl_config, backend) && sec->kind == DAECL__SEC_PLUGIN &&
            cfg->backend_auto[0])
            daecl__sbuf_printf(&b, "# backend.plugin: auto chose %s: %s\n", cfg->backend.name,
                               cfg->backend_auto);
        daecl__sbuf_printf(&b, "%s:\n", sec->name);
        if (sec->kind == DAECL__SEC_PLUGIN) {
            write_plugin_cfg(&b, (const daecl_plugin_cfg *)((const char *)cfg + sec->offset),
                             "  ", "  ");
            continue;
        }
        if (sec->kind == DAECL__SEC_MODEL) {
            write_layers(&b, "encoder", cfg->model.encoder, cfg->model.n_encoder);
            if (cfg->model.decoder_mirror)
                daecl__sbuf_printf(&b, "  decoder: mirror\n");
            else
                write_layers(&b, "decoder", cfg->model.decoder, cfg->model.n_decoder);
        }
        write_keys(&b, sec->keys, sec->n_keys, cfg, "  ");
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
