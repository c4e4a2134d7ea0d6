/* daecl — the plugin registry: search path, dlopen, descriptor validation,
 * the host table plugins call back through, and parameter packing. */
#include "core/registry.h"

#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/backend_auto.h"
#include "core/error.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/pluginfile.h"
#include "core/support.h"
#include "core/utf8.h"
#include "daecl/comm.h"

#define MAX_NAME 63
#define MAX_PARAMS 32
#define REFUSAL_MAX 640

/* What ABI 2.0 requires of each table: a plugin may be built against a newer
 * minor (bigger tables), never an older layout smaller than these. */
#define PLUGIN_SIZE_2_0 (offsetof(daecl_plugin, ops) + sizeof(const void *))
#define CORRUPTION_SIZE_2_0 (offsetof(daecl_corruption_ops, cl_source) + sizeof(const char *))
#define LIKELIHOOD_SIZE_2_0 (offsetof(daecl_likelihood_ops, cl_source) + sizeof(const char *))
#define BACKEND_SIZE_2_0 (offsetof(daecl_backend_ops, lik_sample) + sizeof(void *))
#define COMM_SIZE_2_0 (offsetof(daecl_comm_ops, abort) + sizeof(void *))
#define PARAM_SIZE_2_0 sizeof(daecl_param_spec)

/* One accepted plugin. The registry keeps zero-padded copies of the
 * descriptor and its ops table at this core's sizes, so a slot a plugin's
 * older table lacks reads as NULL ("not provided") everywhere in the core. */
typedef struct entry {
    daecl_plugin desc;
    union {
        daecl_corruption_ops corruption;
        daecl_likelihood_ops likelihood;
        daecl_backend_ops backend;
        daecl_comm_ops comm;
    } ops;
    daecl_param_spec *params; /* the schema at this core's stride, when the plugin's differs */
    char *path;
    char *shadowed; /* "FILE (version V), ..." of same-named plugins found later, or NULL */
} entry;

struct daecl_registry {
    entry **entries; /* each allocated alone, so pointers handed out stay valid */
    size_t n_entries, cap_entries;
    char **refused;
    size_t n_refused, cap_refused;
    void **handles; /* dlopen handles to close on destroy (never backends') */
    size_t n_handles, cap_handles;
    char *search_path;
};

/* ---- the host table ------------------------------------------------------ */

static int host_verror(daecl_err *err, int status, const char *fmt, va_list ap)
{
    return daecl_plugin_verror(NULL, err, status, fmt, ap);
}

static int host_error(daecl_err *err, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_verror(err, status, fmt, ap);
    va_end(ap);
    return status;
}

static void host_vlog(int level, const char *who, const char *fmt, va_list ap)
{
    char line[1536];
    vsnprintf(line, sizeof line, fmt, ap);
    daecl_log(level, who, "%s", line);
}

static void host_log(int level, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_vlog(level, who, fmt, ap);
    va_end(ap);
}

static void *host_alloc(size_t n)
{
    return malloc(n ? n : 1);
}

static void host_free(void *p)
{
    free(p);
}

/* Creates the file's folder, then writes it atomically. */
static int host_write_file_atomic(const char *path, const void *data, size_t n, const char *what,
                                  daecl_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = daecl_mkdirs(dir, err);
        if (rc)
            return rc;
    }
    return daecl_write_file_atomic(path, data, n, what, err);
}

static const daecl_host host_table = {
    .size = sizeof(daecl_host),
    .abi_major = DAECL_ABI_MAJOR,
    .abi_minor = DAECL_ABI_MINOR,
    .log = host_log,
    .error = host_error,
    .alloc = host_alloc,
    .free = host_free,
    .cache_dir = daecl_cache_dir,
    .write_file_atomic = host_write_file_atomic,
    .vlog = host_vlog,
    .verror = host_verror,
};

const daecl_host *daecl_host_table(void)
{
    return &host_table;
}

/* ---- names --------------------------------------------------------------- */

const char *daecl_plugin_kind_name(uint32_t kind)
{
    switch (kind) {
    case DAECL_KIND_CORRUPTION:
        return "corruption";
    case DAECL_KIND_LIKELIHOOD:
        return "likelihood";
    case DAECL_KIND_BACKEND:
        return "backend";
    case DAECL_KIND_COMM:
        return "comm";
    }
    return "unknown";
}

uint32_t daecl_plugin_kind_parse(const char *name)
{
    for (uint32_t k = DAECL_KIND_CORRUPTION; k <= DAECL_KIND_COMM; k++)
        if (name && strcmp(name, daecl_plugin_kind_name(k)) == 0)
            return k;
    return 0;
}

static bool valid_name(const char *s)
{
    if (!s || !(*s >= 'a' && *s <= 'z'))
        return false;
    size_t n = 0;
    for (; *s; s++, n++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return n <= MAX_NAME;
}

/* ---- parameters ---------------------------------------------------------- */

/* Index of `value` among "a|b|c", or -1. */
static int choice_index(const char *choices, const char *value)
{
    if (!choices || !value)
        return -1;
    size_t vlen = strlen(value);
    int idx = 0;
    const char *c = choices;
    for (;;) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == vlen && strncmp(c, value, len) == 0)
            return idx;
        if (!bar)
            return -1;
        c = bar + 1;
        idx++;
    }
}

static size_t packed_slots(daecl_param_type type)
{
    switch (type) {
    case DAECL_PARAM_FLOAT2:
        return 2;
    case DAECL_PARAM_STRING:
        return 0;
    default:
        return 1;
    }
}

size_t daecl_params_pack(const daecl_param_spec *spec, size_t n_spec,
                         const daecl_param_value *values, float *packed)
{
    size_t n = 0;
    for (size_t i = 0; i < n_spec && n < DAECL_MAX_PACKED_PARAMS; i++) {
        switch (spec[i].type) {
        case DAECL_PARAM_STRING:
            break;
        case DAECL_PARAM_ENUM: {
            int idx = values[i].str ? choice_index(spec[i].choices, values[i].str) : -1;
            packed[n++] = idx >= 0 ? (float)idx : (float)values[i].num[0];
            break;
        }
        case DAECL_PARAM_FLOAT2:
            packed[n++] = (float)values[i].num[0];
            if (n < DAECL_MAX_PACKED_PARAMS)
                packed[n++] = (float)values[i].num[1];
            break;
        default:
            packed[n++] = (float)values[i].num[0];
            break;
        }
    }
    return n;
}

static int refuse(daecl_err *err, const char *origin, const char *fmt, ...) DAECL_PRINTF(3, 4);

static int refuse(daecl_err *err, const char *origin, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return daecl_err_set(err, DAECL_EPLUGIN, "plugin %s %s", origin, what);
}

static bool in_range(double v, const daecl_param_spec *s)
{
    return v >= s->min && v <= s->max;
}

/* Parameter i of a descriptor's schema, at the plugin's own stride. */
static const daecl_param_spec *spec_at(const daecl_plugin *p, size_t i)
{
    return (const daecl_param_spec *)((const char *)p->params + i * p->param_size);
}

static int validate_param(const daecl_plugin *p, size_t i, const char *origin, daecl_err *err)
{
    const daecl_param_spec *s = spec_at(p, i);
    if (!valid_name(s->name) || strcmp(s->name, "plugin") == 0)
        return refuse(err, origin,
                      "has parameter %zu with an invalid name '%s'; names are lower_snake_case "
                      "and 'plugin' is reserved",
                      i, s->name ? s->name : "(null)");
    for (size_t j = 0; j < i; j++)
        if (strcmp(spec_at(p, j)->name, s->name) == 0)
            return refuse(err, origin, "declares parameter '%s' twice", s->name);
    if (!s->doc)
        return refuse(err, origin, "gives parameter '%s' no doc line", s->name);
    switch (s->type) {
    case DAECL_PARAM_FLOAT:
    case DAECL_PARAM_INT:
    case DAECL_PARAM_BOOL:
    case DAECL_PARAM_FLOAT2:
        if (isnan(s->min) || isnan(s->max) || s->min > s->max)
            return refuse(err, origin, "gives parameter '%s' an empty range [%g, %g]", s->name,
                          s->min, s->max);
        if (!in_range(s->def[0], s) ||
            (s->type == DAECL_PARAM_FLOAT2 && (!in_range(s->def[1], s) || s->def[0] > s->def[1])))
            return refuse(err, origin, "has a default for '%s' outside its range [%g, %g]",
                          s->name, s->min, s->max);
        if (s->type == DAECL_PARAM_INT && s->def[0] != floor(s->def[0]))
            return refuse(err, origin, "has a non-integer default %g for integer '%s'", s->def[0],
                          s->name);
        /* A fuzz finding (tests/fuzz/crashes/descriptor/int_default_past_2p53):
         * a default past 2^53 - 1 went into the run's resolved config.yaml,
         * whose whole numbers are read back only up to there, so the run
         * could not be resumed. */
        if (s->type == DAECL_PARAM_INT && fabs(s->def[0]) > 9007199254740991.0)
            return refuse(err, origin, "has an integer default %.0f for '%s' beyond 2^53 - 1, "
                          "which a config cannot hold; lower it", s->def[0], s->name);
        if (s->type == DAECL_PARAM_BOOL && s->def[0] != 0 && s->def[0] != 1)
            return refuse(err, origin, "has a default for bool '%s' that is neither 0 nor 1",
                          s->name);
        break;
    case DAECL_PARAM_STRING:
        if (!s->def_str)
            return refuse(err, origin, "has no default string for '%s' (use \"\")", s->name);
        /* Strict UTF-8: a fuzz finding (tests/fuzz/crashes/descriptor/
         * string_default_not_utf8). Other bytes went into the run's
         * resolved config.yaml, which then could not be loaded again (YAML
         * is Unicode text), so the run could not be resumed. */
        if (!daecl_utf8_valid(s->def_str))
            return refuse(err, origin, "has a default string for '%s' that is not UTF-8 text; "
                          "configs are UTF-8, so save the source as UTF-8", s->name);
        break;
    case DAECL_PARAM_ENUM:
        if (s->choices && !daecl_utf8_valid(s->choices))
            return refuse(err, origin, "has choices for '%s' that are not UTF-8 text; configs "
                          "are UTF-8, so save the source as UTF-8", s->name);
        if (!s->choices || !*s->choices || choice_index(s->choices, s->def_str) < 0)
            return refuse(err, origin, "has a default for '%s' that is not one of its choices '%s'",
                          s->name, s->choices ? s->choices : "");
        break;
    default:
        return refuse(err, origin, "gives parameter '%s' an unknown type %d", s->name,
                      (int)s->type);
    }
    return 0;
}

/* ---- descriptor validation ----------------------------------------------- */

/* A required op slot of an ops table, by name. */
typedef struct slot {
    const void *slot;
    const char *name;
} slot;

/* The name of the first unset slot, or NULL. */
static const char *first_missing(const slot *req, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!req[i].slot)
            return req[i].name;
    return NULL;
}

static int validate_ops(const daecl_plugin *p, const char *origin, daecl_err *err)
{
    if (!p->ops)
        return refuse(err, origin, "has no ops table; set the descriptor's `ops`");
    uint32_t size = *(const uint32_t *)p->ops;
    const char *missing = NULL;
    switch (p->kind) {
    case DAECL_KIND_CORRUPTION: {
        if (size < CORRUPTION_SIZE_2_0)
            return refuse(err, origin, "has a corruption ops table of %u bytes, smaller than ABI "
                          "2.0's %zu; rebuild it against this daecl", size, CORRUPTION_SIZE_2_0);
        const daecl_corruption_ops *o = p->ops;
        /* A table built before `granularity` existed is element-wise. */
        uint32_t grain = size >= offsetof(daecl_corruption_ops, granularity) + sizeof(uint32_t)
                             ? o->granularity
                             : DAECL_GRAIN_ELEMENT;
        if (grain > DAECL_GRAIN_ROW)
            return refuse(err, origin, "declares corruption granularity %u; use "
                          "DAECL_GRAIN_ELEMENT (0) or DAECL_GRAIN_ROW (1)", grain);
        if (!o->host_apply)
            missing = "host_apply";
        break;
    }
    case DAECL_KIND_LIKELIHOOD: {
        if (size < LIKELIHOOD_SIZE_2_0)
            return refuse(err, origin, "has a likelihood ops table of %u bytes, smaller than ABI "
                          "2.0's %zu; rebuild it against this daecl", size, LIKELIHOOD_SIZE_2_0);
        const daecl_likelihood_ops *o = p->ops;
        if (o->params_per_dim < 1 || o->params_per_dim > 4)
            return refuse(err, origin, "declares %u parameters per dimension; daecl supports 1 to 4",
                          o->params_per_dim);
        char why[320];
        if (daecl_support_validate(o, size, why, sizeof why))
            return refuse(err, origin, "%s", why);
        if (!o->host_loss_grad)
            missing = "host_loss_grad";
        else if (!o->host_mean)
            missing = "host_mean";
        else if (!o->host_sample)
            missing = "host_sample";
        break;
    }
    case DAECL_KIND_BACKEND: {
        if (size < BACKEND_SIZE_2_0)
            return refuse(err, origin, "has a backend ops table of %u bytes, smaller than ABI "
                          "2.0's %zu; rebuild it against this daecl", size, BACKEND_SIZE_2_0);
        const daecl_backend_ops *o = p->ops;
        /* The required core; then, with bind set, the rest of its group.
         * fill, lik_sample and get_extension are optional. */
        const slot req[] = {
            {(const void *)o->open, "open"},         {(const void *)o->close, "close"},
            {(const void *)o->describe, "describe"}, {(const void *)o->alloc, "alloc"},
            {(const void *)o->free, "free"},         {(const void *)o->write, "write"},
            {(const void *)o->read, "read"},         {(const void *)o->copy, "copy"},
            {(const void *)o->gemm, "gemm"},         {(const void *)o->bias_act, "bias_act"},
            {(const void *)o->act_grad, "act_grad"}, {(const void *)o->col_sum, "col_sum"},
            {(const void *)o->sum, "sum"},           {(const void *)o->gather, "gather"},
            {(const void *)o->softmax_xent, "softmax_xent"},
            {(const void *)o->optim_update, "optim_update"},
            {(const void *)o->finish, "finish"},
        };
        const slot bound[] = {
            {(const void *)o->unbind, "unbind"},
            {(const void *)o->corrupt, "corrupt"},
            {(const void *)o->lik_loss_grad, "lik_loss_grad"},
            {(const void *)o->lik_mean, "lik_mean"},
        };
        missing = first_missing(req, sizeof req / sizeof req[0]);
        for (size_t i = 0; o->bind && !missing && i < sizeof bound / sizeof bound[0]; i++)
            if (!bound[i].slot)
                return refuse(err, origin, "(backend '%s') sets bind but lacks '%s', which a "
                              "backend that runs plugins on its device needs; set it, or leave "
                              "bind NULL to run every plugin on the host", p->name,
                              bound[i].name);
        break;
    }
    case DAECL_KIND_COMM: {
        if (size < COMM_SIZE_2_0)
            return refuse(err, origin, "has a comm ops table of %u bytes, smaller than ABI "
                          "2.0's %zu; rebuild it against this daecl", size, COMM_SIZE_2_0);
        const daecl_comm_ops *o = p->ops;
        /* Every slot: a world that cannot do one of them cannot train. */
        const slot req[] = {
            {(const void *)o->open, "open"},
            {(const void *)o->close, "close"},
            {(const void *)o->allreduce, "allreduce"},
            {(const void *)o->broadcast, "broadcast"},
            {(const void *)o->allgather, "allgather"},
            {(const void *)o->barrier, "barrier"},
            {(const void *)o->abort, "abort"},
        };
        missing = first_missing(req, sizeof req / sizeof req[0]);
        break;
    }
    }
    if (missing)
        return refuse(err, origin, "(%s '%s') lacks the required op '%s'",
                      daecl_plugin_kind_name(p->kind), p->name, missing);
    return 0;
}

int daecl_plugin_validate(const daecl_plugin *p, const char *origin, daecl_err *err)
{
    if (!p)
        return refuse(err, origin, "returned no descriptor from daecl_plugin_entry()");
    if (p->abi_major != DAECL_ABI_MAJOR)
        return refuse(err, origin, "was built for plugin ABI %u.%u but this daecl speaks %d.%d; "
                      "rebuild it against this daecl's headers",
                      p->abi_major, p->abi_minor, DAECL_ABI_MAJOR, DAECL_ABI_MINOR);
    if (p->abi_minor > DAECL_ABI_MINOR)
        return refuse(err, origin, "needs plugin ABI %u.%u, newer than this daecl's %d.%d; "
                      "update daecl or rebuild the plugin against these headers",
                      p->abi_major, p->abi_minor, DAECL_ABI_MAJOR, DAECL_ABI_MINOR);
    if (p->size < PLUGIN_SIZE_2_0)
        return refuse(err, origin, "has a descriptor of %u bytes, smaller than ABI 2.0's %zu; "
                      "rebuild it against this daecl", p->size, PLUGIN_SIZE_2_0);
    if (p->abi_sizes != DAECL_ABI_SIZES)
        return refuse(err, origin, "was built with float/size_t/pointer sizes %u/%u/%u but this "
                      "daecl uses %u/%u/%u; rebuild it for this machine",
                      p->abi_sizes & 0xff, (p->abi_sizes >> 8) & 0xff, (p->abi_sizes >> 16) & 0xff,
                      DAECL_ABI_SIZES & 0xff, (DAECL_ABI_SIZES >> 8) & 0xff,
                      (DAECL_ABI_SIZES >> 16) & 0xff);
    if (p->kind < DAECL_KIND_CORRUPTION || p->kind > DAECL_KIND_COMM)
        return refuse(err, origin, "declares unknown kind %u; use corruption, likelihood, backend "
                      "or comm", p->kind);
    if (!valid_name(p->name))
        return refuse(err, origin, "has an invalid name '%s'; names are 1 to %d characters of "
                      "a-z, 0-9 and _, starting with a letter", p->name ? p->name : "(null)",
                      MAX_NAME);
    /* backend.plugin: auto and parallel.comm: auto choose a plugin; a
     * plugin of that name could never be named. */
    if (strcmp(p->name, DAECL_BACKEND_AUTO) == 0)
        return refuse(err, origin, "calls itself 'auto', a name daecl reserves for choosing a "
                      "plugin (backend.plugin: auto, parallel.comm: auto); rename the plugin");
    if (!p->version || !p->summary || !p->license)
        return refuse(err, origin, "('%s') leaves version, summary or license unset", p->name);
    if (p->n_params > MAX_PARAMS)
        return refuse(err, origin, "('%s') declares %u parameters; at most %d are allowed",
                      p->name, p->n_params, MAX_PARAMS);
    if (p->n_params && !p->params)
        return refuse(err, origin, "('%s') declares %u parameters but no schema", p->name,
                      p->n_params);
    if (p->n_params && (p->param_size < PARAM_SIZE_2_0 ||
                        p->param_size % _Alignof(daecl_param_spec) != 0))
        return refuse(err, origin, "('%s') gives its parameter specs as %u bytes each, not a "
                      "multiple of %zu at least ABI 2.0's %zu; start the descriptor with "
                      "DAECL_PLUGIN_HEAD, which sets param_size", p->name, p->param_size,
                      _Alignof(daecl_param_spec), PARAM_SIZE_2_0);
    size_t slots = 0;
    for (uint32_t i = 0; i < p->n_params; i++) {
        int rc = validate_param(p, i, origin, err);
        if (rc)
            return rc;
        slots += packed_slots(spec_at(p, i)->type);
    }
    if (slots > DAECL_MAX_PACKED_PARAMS && p->kind != DAECL_KIND_BACKEND &&
        p->kind != DAECL_KIND_COMM)
        return refuse(err, origin, "('%s') packs %zu parameter values; at most %d fit",
                      p->name, slots, DAECL_MAX_PACKED_PARAMS);
    return validate_ops(p, origin, err);
}

/* ---- the registry --------------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int add_refusal(daecl_registry *reg, const char *sentence, daecl_err *err)
{
    if (grow((void **)&reg->refused, &reg->cap_refused, reg->n_refused + 1, sizeof(char *)))
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory listing plugins");
    char *s = strdup(sentence);
    if (!s)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory listing plugins");
    reg->refused[reg->n_refused++] = s;
    return 0;
}

static entry *find_entry(const daecl_registry *reg, uint32_t kind, const char *name)
{
    for (size_t i = 0; i < reg->n_entries; i++)
        if (reg->entries[i]->desc.kind == kind && strcmp(reg->entries[i]->desc.name, name) == 0)
            return reg->entries[i];
    return NULL;
}

/* Validates, initialises and records `p`; on refusal fills err. *ran_init
 * tells whether the plugin's init() was called (then it may hold threads). */
static int accept(daecl_registry *reg, const daecl_plugin *p, const char *origin, bool *ran_init,
                  daecl_err *err)
{
    *ran_init = false;
    int rc = daecl_plugin_validate(p, origin, err);
    if (rc)
        return rc;
    entry *dup = find_entry(reg, p->kind, p->name);
    if (dup) {
        /* Shadowed: the earlier one wins, and a run that uses it says so
         * (daecl_registry_shadowed). */
        char one[4200];
        snprintf(one, sizeof one, "%s%s (version %s)", dup->shadowed ? ", " : "", origin,
                 p->version);
        size_t old = dup->shadowed ? strlen(dup->shadowed) : 0;
        char *grown = realloc(dup->shadowed, old + strlen(one) + 1);
        if (!grown)
            return daecl_err_set(err, DAECL_ENOMEM, "out of memory loading plugin %s", origin);
        memcpy(grown + old, one, strlen(one) + 1);
        dup->shadowed = grown;
        return refuse(err, origin, "(%s '%s' %s) is shadowed by %s (version %s), found earlier "
                      "in the search path; remove the one you do not want",
                      daecl_plugin_kind_name(p->kind), p->name, p->version, dup->path,
                      dup->desc.version);
    }
    if (p->init) {
        daecl_err perr = {0};
        *ran_init = true;
        rc = p->init(&host_table, &perr);
        if (rc)
            return refuse(err, origin, "('%s') failed to initialise: %s", p->name,
                          perr.msg[0] ? perr.msg : daecl_status_message(rc));
    }
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->path = strdup(origin)) ||
        grow((void **)&reg->entries, &reg->cap_entries, reg->n_entries + 1, sizeof(entry *))) {
        if (e)
            free(e->path);
        free(e);
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory loading plugin %s", origin);
    }
    memcpy(&e->desc, p, p->size < sizeof e->desc ? p->size : sizeof e->desc);
    uint32_t ops_size = *(const uint32_t *)p->ops;
    memcpy(&e->ops, p->ops, ops_size < sizeof e->ops ? ops_size : sizeof e->ops);
    e->desc.ops = &e->ops;
    /* A newer minor's bigger specs: the core reads them at its own stride. */
    if (p->n_params && p->param_size != sizeof(daecl_param_spec)) {
        if (!(e->params = calloc(p->n_params, sizeof *e->params))) {
            free(e->path);
            free(e);
            return daecl_err_set(err, DAECL_ENOMEM, "out of memory loading plugin %s", origin);
        }
        for (uint32_t i = 0; i < p->n_params; i++)
            memcpy(&e->params[i], spec_at(p, i), sizeof e->params[i]);
        e->desc.params = e->params;
    }
    e->desc.param_size = sizeof(daecl_param_spec);
    reg->entries[reg->n_entries++] = e;
    return 0;
}

int daecl_registry_add(daecl_registry *reg, const daecl_plugin *plugin, const char *origin,
                       daecl_err *err)
{
    bool ran_init;
    return accept(reg, plugin, origin ? origin : "(in memory)", &ran_init, err);
}

bool daecl__registry_stays_loaded(uint32_t kind)
{
    /* A backend's driver threads, and an MPI library's progress threads and
     * atexit handlers, may still run in the file after we are done with it. */
    return kind == DAECL_KIND_BACKEND || kind == DAECL_KIND_COMM;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads one file under the rules `daecl plugin check` applies too
 * (pluginfile.h); a refusal is recorded, not returned. Returns < 0 only for
 * out-of-memory. */
static int load_file(daecl_registry *reg, const char *path, daecl_err *err)
{
    daecl_err why = {0};
    daecl_pluginfile pf;
    int rc = daecl_pluginfile_open(path, &pf, &why);
    if (rc == DAECL_ENOMEM) {
        *err = why;
        return rc;
    }
    if (rc) {
        if (pf.handle)
            dlclose(pf.handle); /* init() has not run: nothing can hold it */
        return add_refusal(reg, why.msg, err);
    }
    void *h = pf.handle;
    const daecl_plugin *p = pf.plugin;
    bool ran_init;
    rc = accept(reg, p, path, &ran_init, &why);
    if (rc == DAECL_ENOMEM) {
        *err = why;
        return rc;
    }
    if (rc) {
        /* A backend refused after its init() ran may have started driver
         * threads: it stays loaded. Anything else is unloaded. */
        if (!(ran_init && daecl__registry_stays_loaded(p->kind)))
            dlclose(h);
        return add_refusal(reg, why.msg, err);
    }
    /* Backends and comms stay loaded for the life of the process. */
    if (!daecl__registry_stays_loaded(p->kind)) {
        if (grow((void **)&reg->handles, &reg->cap_handles, reg->n_handles + 1, sizeof(void *)))
            return daecl_err_set(err, DAECL_ENOMEM, "out of memory loading plugins");
        reg->handles[reg->n_handles++] = h;
    }
    return 0;
}

static int scan_dir(daecl_registry *reg, const char *dir, bool explicit_dir, daecl_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (!explicit_dir)
            return 0;
        char msg[REFUSAL_MAX];
        snprintf(msg, sizeof msg, "plugin folder %s (from DAECL_PLUGIN_PATH) cannot be read; "
                 "fix or remove that entry", dir);
        return add_refusal(reg, msg, err);
    }
    /* Who may write this folder and those above it is checked for each
     * file (load_file), so a file refused for it gets the sentence
     * `daecl plugin check` gives it. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!daecl_pluginfile_named(de->d_name))
            continue;
        if (grow((void **)&names, &cap, n + 1, sizeof(char *)) || !(names[n] = strdup(de->d_name))) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory listing %s", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof(char *), cmp_str);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        rc = load_file(reg, path, err);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* Appends "dir" to a colon-separated list. */
static int path_append(char **list, const char *dir)
{
    size_t old = *list ? strlen(*list) : 0;
    char *p = realloc(*list, old + strlen(dir) + 2);
    if (!p)
        return -1;
    if (old)
        p[old++] = ':';
    strcpy(p + old, dir);
    *list = p;
    return 0;
}

/* The plugin folder of the installation the running program belongs to:
 * <program's folder>/DAECL_PLUGIN_REL_DIR (cmake/DaeclInstall.cmake defines
 * it: the install plugin folder relative to the install bin folder, which is
 * also where the build tree keeps its plugins relative to build/bin), so an
 * install moved away from its compiled-in prefix finds its own plugins. ""
 * when the program's path is unknown (no /proc). */
static void beside_program(char *out, size_t n)
{
    char exe[4096];
    out[0] = '\0';
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0)
        return;
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    char joined[4200];
    snprintf(joined, sizeof joined, "%s/%s", exe, DAECL_PLUGIN_REL_DIR);
    char resolved[4096]; /* build/bin/../lib/... reads better as build/lib/... */
    snprintf(out, n, "%s", realpath(joined, resolved) ? resolved : joined);
}

/* Whether folder `a` is folder `b` (through links and `..`). */
static bool same_folder(const char *a, const char *b)
{
    char ra[4096], rb[4096];
    if (!realpath(a, ra) || !realpath(b, rb))
        return strcmp(a, b) == 0;
    return strcmp(ra, rb) == 0;
}

int daecl_registry_create(const char *search_path, daecl_registry **out, daecl_err *err)
{
    *out = NULL;
    daecl_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory creating the plugin registry");
    int rc = 0;
    /* Explicit folders (the argument or $DAECL_PLUGIN_PATH) are reported
     * when unreadable; the built-in ones are skipped quietly when absent. */
    char *explicit_list = NULL;
    const char *env = getenv("DAECL_PLUGIN_PATH");
    if (search_path) {
        explicit_list = strdup(search_path);
    } else if (env && *env) {
        explicit_list = strdup(env);
    } else {
        explicit_list = strdup("");
    }
    if (!explicit_list) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory creating the plugin registry");
        goto fail;
    }
    for (char *save = NULL, *dir = strtok_r(explicit_list, ":", &save); dir && rc == 0;
         dir = strtok_r(NULL, ":", &save)) {
        if (path_append(&reg->search_path, dir))
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory creating the plugin registry");
        else
            rc = scan_dir(reg, dir, true, err);
    }
    free(explicit_list);
    if (!search_path) {
        char beside[4200];
        beside_program(beside, sizeof beside);
        const char *builtin[] = {beside, DAECL_PLUGIN_BUILD_DIR, DAECL_PLUGIN_INSTALL_DIR};
        /* An installed program does not load the plugins of the build tree
         * it was built in: they would all clash with its own. */
        struct stat st;
        bool installed = beside[0] && stat(beside, &st) == 0 && S_ISDIR(st.st_mode) &&
                         !same_folder(beside, DAECL_PLUGIN_BUILD_DIR);
        for (size_t i = 0; i < 3 && rc == 0; i++) {
            bool skip = !builtin[i][0] || (i == 1 && installed);
            for (size_t j = 0; j < i && !skip; j++)
                skip = builtin[j][0] && same_folder(builtin[i], builtin[j]);
            if (skip)
                continue;
            if (path_append(&reg->search_path, builtin[i]))
                rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory creating the plugin registry");
            else
                rc = scan_dir(reg, builtin[i], false, err);
        }
    }
    if (rc)
        goto fail;
    if (!reg->search_path && !(reg->search_path = strdup(""))) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory creating the plugin registry");
        goto fail;
    }
    *out = reg;
    return 0;
fail:
    daecl_registry_destroy(reg);
    return rc;
}

void daecl_registry_destroy(daecl_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_entries; i++) {
        free(reg->entries[i]->path);
        free(reg->entries[i]->shadowed);
        free(reg->entries[i]->params);
        free(reg->entries[i]);
    }
    free(reg->entries);
    for (size_t i = 0; i < reg->n_refused; i++)
        free(reg->refused[i]);
    free(reg->refused);
    for (size_t i = 0; i < reg->n_handles; i++)
        dlclose(reg->handles[i]);
    free(reg->handles);
    free(reg->search_path);
    free(reg);
}

const daecl_plugin *daecl_registry_find(const daecl_registry *reg, daecl_plugin_kind kind,
                                        const char *name, const char **path)
{
    const entry *e = name ? find_entry(reg, kind, name) : NULL;
    if (path)
        *path = e ? e->path : NULL;
    return e ? &e->desc : NULL;
}

size_t daecl_registry_count(const daecl_registry *reg)
{
    return reg->n_entries;
}

const daecl_plugin *daecl_registry_at(const daecl_registry *reg, size_t i, const char **path)
{
    if (i >= reg->n_entries)
        return NULL;
    if (path)
        *path = reg->entries[i]->path;
    return &reg->entries[i]->desc;
}

size_t daecl_registry_refused_count(const daecl_registry *reg)
{
    return reg->n_refused;
}

const char *daecl_registry_refused_at(const daecl_registry *reg, size_t i)
{
    return i < reg->n_refused ? reg->refused[i] : NULL;
}

const char *daecl_registry_search_path(const daecl_registry *reg)
{
    return reg->search_path;
}

const char *daecl_registry_shadowed(const daecl_registry *reg, daecl_plugin_kind kind,
                                    const char *name)
{
    const entry *e = name ? find_entry(reg, kind, name) : NULL;
    return e ? e->shadowed : NULL;
}
