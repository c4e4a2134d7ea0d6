/* daecl — checkpoints: model and optimiser state <-> safetensors. */
#include "core/checkpoint.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/safetensors.h"

/* torch.optim's names for the state arrays of each optimiser. */
static void state_names(daecl_optim_kind kind, const char **n1, const char **n2)
{
    if (kind == DAECL_OPTIM_SGD) {
        *n1 = "momentum_buffer";
        *n2 = NULL;
    } else {
        *n1 = "exp_avg";
        *n2 = "exp_avg_sq";
    }
}

/* The tensors of a model: weights and biases, then optimiser state. `names`
 * is storage for the generated names (n_max * 96 bytes). */
static size_t list_tensors(const daecl_model *m, daecl_optim_kind kind, const float *params,
                           const float *s1, const float *s2, daecl_st_tensor *out, char *names,
                           size_t n_max)
{
    const char *sn[2];
    state_names(kind, &sn[0], &sn[1]);
    const float *arrays[3] = {params, s1, s2};
    size_t n = 0;
    for (int a = 0; a < 3; a++) {
        if (!arrays[a] || (a > 0 && !sn[a - 1]))
            continue;
        for (uint32_t l = 0; l < m->n_layers && n + 2 <= n_max; l++) {
            const daecl_dense *ly = &m->layers[l];
            for (int is_bias = 0; is_bias < 2; is_bias++) {
                if (!is_bias && ly->tied)
                    continue;
                char *name = names + n * 96;
                if (a == 0)
                    snprintf(name, 96, "%s.%s", ly->name, is_bias ? "bias" : "weight");
                else
                    snprintf(name, 96, "optim.%s.%s.%s", ly->name, is_bias ? "bias" : "weight",
                             sn[a - 1]);
                daecl_st_tensor *t = &out[n++];
                t->name = name;
                t->data = arrays[a] + (is_bias ? ly->b_off : ly->w_off);
                t->ndim = is_bias ? 1 : 2;
                t->shape[0] = ly->out;
                t->shape[1] = ly->in;
            }
        }
    }
    return n;
}

static char *layers_json(const daecl_model *m)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const daecl_dense *ly = &m->layers[l];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", ly->name);
        cJSON_AddNumberToObject(o, "in", ly->in);
        cJSON_AddNumberToObject(o, "out", ly->out);
        cJSON_AddStringToObject(o, "activation", daecl_act_name(ly->act));
        if (ly->tied)
            cJSON_AddStringToObject(o, "tied_to", m->layers[ly->tied_to].name);
        else
            cJSON_AddNullToObject(o, "tied_to");
    }
    char *s = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return s;
}

/* {"name": value, ...} of a plugin section's numeric parameters. */
static char *plugin_params_json(const daecl_plugin_cfg *pc)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    const daecl_plugin *p = pc->plugin;
    for (uint32_t i = 0; i < p->n_params && i < pc->n_values; i++) {
        const daecl_param_spec *s = &p->params[i];
        const daecl_param_value *v = &pc->values[i];
        if (s->type == DAECL_PARAM_STRING || s->type == DAECL_PARAM_ENUM) {
            cJSON_AddStringToObject(o, s->name, v->str ? v->str : "");
        } else if (s->type == DAECL_PARAM_FLOAT2) {
            double pair[2] = {v->num[0], v->num[1]};
            cJSON *a = cJSON_CreateDoubleArray(pair, 2);
            if (a)
                cJSON_AddItemToObject(o, s->name, a);
        } else {
            cJSON_AddNumberToObject(o, s->name, v->num[0]);
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int daecl_checkpoint_save(const char *path, const daecl_model *m, const daecl_config *cfg,
                          const float *params, const float *s1, const float *s2,
                          const daecl_ckpt_state *st, daecl_err *err)
{
    size_t n_max = 6 * (size_t)m->n_layers;
    daecl_st_tensor *tensors = calloc(n_max, sizeof *tensors);
    char *names = malloc(n_max * 96);
    char *layers = layers_json(m);
    char *yaml = daecl_config_to_yaml(cfg);
    char *lik_params = plugin_params_json(&cfg->likelihood);
    int rc;
    if (!tensors || !names || !layers || !yaml || !lik_params) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory writing checkpoint %s", path);
        goto done;
    }
    size_t n = list_tensors(m, cfg->optimizer.kind, params, s1, s2, tensors, names, n_max);
    char step[32], epoch[32], seed[32], dim[32], k[32], loss_sum[40], rows[32], step0[32];
    snprintf(step, sizeof step, "%" PRIu64, st->step);
    snprintf(step0, sizeof step0, "%" PRIu64, st->optim_step0);
    snprintf(loss_sum, sizeof loss_sum, "%.17g", st->epoch_loss_sum);
    snprintf(rows, sizeof rows, "%" PRIu64, st->epoch_rows);
    snprintf(epoch, sizeof epoch, "%u", st->epoch);
    snprintf(seed, sizeof seed, "%" PRIu64, st->seed);
    snprintf(dim, sizeof dim, "%u", m->dim);
    snprintf(k, sizeof k, "%u", m->k);
    const char *meta[] = {
        "format",           "pt", /* what Hugging Face tools expect */
        "daecl.version",    DAECL_VERSION,
        "daecl.noise_key",  DAECL_CKPT_NOISE_KEY,
        "daecl.step",       step,
        "daecl.epoch",      epoch,
        "daecl.seed",       seed,
        "daecl.epoch_loss_sum", loss_sum,
        "daecl.epoch_rows", rows,
        "daecl.dim",        dim,
        "daecl.params_per_dim", k,
        "daecl.layers",     layers,
        "daecl.likelihood", cfg->likelihood.name,
        "daecl.likelihood_params", lik_params,
        "daecl.corruption", cfg->corruption.name,
        "daecl.optimizer",  cfg->optimizer.kind == DAECL_OPTIM_SGD    ? "sgd"
                            : cfg->optimizer.kind == DAECL_OPTIM_ADAM ? "adam"
                                                                      : "adamw",
        "daecl.optim_step0", step0,
        "daecl.plugins",    st->plugins_json ? st->plugins_json : "{}",
        "daecl.world",      st->world_json ? st->world_json : "{}",
        "daecl.stage",      st->stage_json ? st->stage_json : "{}",
        "daecl.config",     yaml,
        "daecl.data",       st->data_json ? st->data_json : "",
    };
    size_t n_meta = sizeof meta / sizeof meta[0] / 2 - (st->data_json ? 0 : 1);
    rc = daecl_safetensors_write(path, tensors, n, meta, n_meta, err);
done:
    free(tensors);
    free(names);
    free(layers);
    free(yaml);
    free(lik_params);
    return rc;
}

static int parse_u64(const daecl_safetensors *st, const char *key, uint64_t *out, const char *path,
                     daecl_err *err)
{
    const char *v = daecl_safetensors_meta(st, key);
    char *end = NULL;
    if (!v || !*v || (*out = strtoull(v, &end, 10), *end))
        return daecl_err_set(err, DAECL_ECKPT, "checkpoint %s lacks a valid '%s' entry in its "
                             "metadata; it was not written by daecl", path, key);
    return 0;
}

/* A checkpoint's noise is only continued by the key that drew it: one
 * without daecl.noise_key was written before the noise key 2.0 (keyed by
 * step, not by example) and is refused, naming the daecl that wrote it. */
static int check_noise_key(const daecl_safetensors *file, const char *path, daecl_err *err)
{
    const char *key = daecl_safetensors_meta(file, "daecl.noise_key");
    if (key && strcmp(key, DAECL_CKPT_NOISE_KEY) == 0)
        return 0;
    const char *version = daecl_safetensors_meta(file, "daecl.version");
    return daecl_err_set(err, DAECL_ECKPT,
                         "checkpoint %s was written by daecl %s with noise key %s, which this "
                         "daecl %s (noise key " DAECL_CKPT_NOISE_KEY ") cannot continue or "
                         "evaluate with the same noise; retrain it with this daecl",
                         path, version && *version ? version : "(no version recorded)",
                         key && *key ? key : "1 (by training step)", DAECL_VERSION);
}

int daecl_checkpoint_load(const char *path, const daecl_model *m, float *params, float *s1,
                          float *s2, daecl_ckpt_state *st, daecl_err *err)
{
    daecl_safetensors *file = NULL;
    int rc = daecl_safetensors_read(path, &file, err);
    if (rc)
        return rc;
    size_t n_max = 6 * (size_t)m->n_layers;
    daecl_st_tensor *want = calloc(n_max, sizeof *want);
    char *names = malloc(n_max * 96);
    if (!want || !names) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory reading checkpoint %s", path);
        goto done;
    }
    /* The names of the configured optimiser's state, not the file's: SGD's
     * momentum buffer must never be read as Adam's exp_avg. */
    size_t n = list_tensors(m, m->optim, params, s1, s2, want, names, n_max);
    for (size_t i = 0; i < n; i++) {
        uint32_t ndim = 0;
        uint64_t shape[DAECL_ST_MAX_DIMS] = {0};
        const float *data = daecl_safetensors_get(file, want[i].name, &ndim, shape);
        if (!data) {
            /* Present under another dtype, or absent: say which (a bad-input
             * catalogue case, tests/bad/checkpoint/wrong_dtype.safetensors). */
            int present = 0;
            for (size_t k = 0; k < daecl_safetensors_count(file) && !present; k++)
                present = strcmp(daecl_safetensors_name_at(file, k), want[i].name) == 0;
            if (present)
                rc = daecl_err_set(err, DAECL_ECKPT, "checkpoint %s stores tensor '%s' in "
                                   "another dtype than float32 (F32); daecl reads float32 "
                                   "weights, so convert it to F32", path, want[i].name);
            else
                rc = daecl_err_set(err, DAECL_ECKPT, "checkpoint %s has no float32 tensor '%s' "
                                   "that the configured model needs; it belongs to another "
                                   "model or optimiser", path, want[i].name);
            goto done;
        }
        int same = ndim == want[i].ndim && shape[0] == want[i].shape[0] &&
                   (ndim == 1 || shape[1] == want[i].shape[1]);
        if (!same) {
            char got[64], need[64];
            if (ndim == 2)
                snprintf(got, sizeof got, "[%" PRIu64 ", %" PRIu64 "]", shape[0], shape[1]);
            else
                snprintf(got, sizeof got, "%u dimensions", ndim);
            if (want[i].ndim == 2)
                snprintf(need, sizeof need, "[%" PRIu64 ", %" PRIu64 "]", want[i].shape[0],
                         want[i].shape[1]);
            else
                snprintf(need, sizeof need, "[%" PRIu64 "]", want[i].shape[0]);
            rc = daecl_err_set(err, DAECL_ECKPT, "checkpoint %s: tensor '%s' has shape %s but "
                               "the configured model needs %s; it belongs to another model",
                               path, want[i].name, got, need);
            goto done;
        }
        size_t count = want[i].ndim == 2 ? want[i].shape[0] * want[i].shape[1] : want[i].shape[0];
        memcpy((float *)want[i].data, data, count * sizeof(float));
    }
    /* Strict, as PyTorch's load_state_dict: a tensor the model does not
     * have means the checkpoint belongs to another model (a decoder weight
     * under tied weights, a layer more). */
    for (size_t k = 0; k < daecl_safetensors_count(file); k++) {
        const char *name = daecl_safetensors_name_at(file, k);
        int expected = !s1 && strncmp(name, "optim.", 6) == 0;
        for (size_t i = 0; i < n && !expected; i++)
            expected = strcmp(name, want[i].name) == 0;
        if (!expected) {
            rc = daecl_err_set(err, DAECL_ECKPT, "checkpoint %s holds tensor '%s', which the "
                               "configured model does not have; it belongs to another model or "
                               "optimiser (tied weights, layers, likelihood or optimizer differ)",
                               path, name);
            goto done;
        }
    }
    uint64_t epoch = 0;
    if ((rc = parse_u64(file, "daecl.step", &st->step, path, err)) ||
        (rc = check_noise_key(file, path, err)) ||
        (rc = parse_u64(file, "daecl.epoch", &epoch, path, err)) ||
        (rc = parse_u64(file, "daecl.seed", &st->seed, path, err)))
        goto done;
    st->epoch = (uint32_t)epoch;
    st->data_json = NULL;
    st->optim_step0 = 0; /* absent in checkpoints made before it existed */
    if (daecl_safetensors_meta(file, "daecl.optim_step0") &&
        (rc = parse_u64(file, "daecl.optim_step0", &st->optim_step0, path, err)))
        goto done;
    if ((rc = parse_u64(file, "daecl.epoch_rows", &st->epoch_rows, path, err)))
        goto done;
    const char *ls = daecl_safetensors_meta(file, "daecl.epoch_loss_sum");
    char *end = NULL;
    if (!ls || !*ls || (st->epoch_loss_sum = strtod(ls, &end), *end)) {
        rc = daecl_err_set(err, DAECL_ECKPT, "checkpoint %s lacks a valid 'daecl.epoch_loss_sum' "
                           "entry in its metadata; it was not written by daecl", path);
        goto done;
    }
done:
    free(want);
    free(names);
    daecl_safetensors_destroy(file);
    return rc;
}

int daecl_checkpoint_meta(const char *path, const char *const *keys, size_t n_keys,
                         char **values, daecl_err *err)
{
    for (size_t i = 0; i < n_keys; i++)
        values[i] = NULL;
    daecl_safetensors *file = NULL;
    int rc = daecl_safetensors_read(path, &file, err);
    for (size_t i = 0; !rc && i < n_keys; i++) {
        const char *v = daecl_safetensors_meta(file, keys[i]);
        if (v && !(values[i] = strdup(v)))
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory reading checkpoint %s", path);
    }
    if (rc)
        for (size_t i = 0; i < n_keys; i++) {
            free(values[i]);
            values[i] = NULL;
        }
    daecl_safetensors_destroy(file);
    return rc;
}

char *daecl_checkpoint_config(const char *path, daecl_err *err)
{
    static const char *const key[1] = {"daecl.config"};
    char *yaml = NULL;
    if (daecl_checkpoint_meta(path, key, 1, &yaml, err))
        return NULL;
    if (!yaml)
        daecl_err_set(err, DAECL_ECKPT, "checkpoint %s holds no daecl config; it was not written "
                      "by daecl", path);
    return yaml;
}
