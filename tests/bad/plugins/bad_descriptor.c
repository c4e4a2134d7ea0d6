/* daecl bad-input catalogue — one corruption plugin file whose descriptor is
 * broken in the way $DAECL_BAD_PLUGIN names, one case per reason the loader
 * refuses a descriptor (core/registry.c). Unset, or an unknown name, gives
 * the valid plugin 'bad', so the catalogue can also show it being accepted.
 * One file instead of thirty builds: the loader sees what a real broken
 * plugin would show it, since it only ever looks at the returned descriptor. */
#include <stdlib.h>
#include <string.h>

#include "daecl/plugin.h"

static int apply(const float *x, float *xt, size_t n_rows, size_t dim, const daecl_shape *shape,
                 const daecl_noise_key *key, const float *params, daecl_err *err)
{
    (void)shape;
    (void)key;
    (void)err;
    for (size_t i = 0; i < n_rows * dim; i++)
        xt[i] = x[i] * params[0];
    return 0;
}

static int apply_lik(const float *x, const float *a, size_t n_rows, size_t dim,
                     const float *params, float scale, float *nll_rows, float *grad,
                     daecl_err *err)
{
    (void)x, (void)a, (void)n_rows, (void)dim, (void)params, (void)scale, (void)nll_rows;
    (void)grad, (void)err;
    return 0;
}

static int init_fails(const daecl_host *host, daecl_err *err)
{
    return host->error(err, DAECL_EPLUGIN, "the bad-input plugin refuses to start on purpose");
}

#define FACTOR {.name = "factor", .type = DAECL_PARAM_FLOAT, .def = {1}, .min = 0, .max = 2, \
                .doc = "scale"}

static const daecl_param_spec good[] = {FACTOR};
static const daecl_param_spec many[33] = {FACTOR};
static const daecl_param_spec reserved[] = {{.name = "plugin", .type = DAECL_PARAM_FLOAT,
                                             .max = 1, .doc = "x"}};
static const daecl_param_spec twice[] = {FACTOR, FACTOR};
static const daecl_param_spec no_doc[] = {{.name = "factor", .type = DAECL_PARAM_FLOAT, .max = 1}};
static const daecl_param_spec empty_range[] = {
    {.name = "factor", .type = DAECL_PARAM_FLOAT, .min = 2, .max = 1, .doc = "x"}};
static const daecl_param_spec outside[] = {
    {.name = "factor", .type = DAECL_PARAM_FLOAT, .def = {5}, .max = 2, .doc = "x"}};
static const daecl_param_spec half_int[] = {
    {.name = "n", .type = DAECL_PARAM_INT, .def = {0.5}, .max = 2, .doc = "x"}};
static const daecl_param_spec half_bool[] = {
    {.name = "on", .type = DAECL_PARAM_BOOL, .def = {0.5}, .max = 1, .doc = "x"}};
static const daecl_param_spec no_string[] = {{.name = "s", .type = DAECL_PARAM_STRING, .doc = "x"}};
static const daecl_param_spec not_utf8[] = {
    {.name = "s", .type = DAECL_PARAM_STRING, .def_str = "caf\xe9", .doc = "x"}};
static const daecl_param_spec not_a_choice[] = {
    {.name = "mode", .type = DAECL_PARAM_ENUM, .def_str = "c", .choices = "a|b", .doc = "x"}};
static const daecl_param_spec bad_type[] = {{.name = "x", .type = 9, .doc = "x"}};
#define PAIR(n) {.name = n, .type = DAECL_PARAM_FLOAT2, .max = 1, .doc = "x"}
static const daecl_param_spec too_packed[] = {PAIR("a"), PAIR("b"), PAIR("c"), PAIR("d"), PAIR("e"),
                                              PAIR("f"), PAIR("g"), PAIR("h"), PAIR("i")};

static const daecl_corruption_ops ops = {.size = sizeof ops, .host_apply = apply};
static const daecl_corruption_ops small_ops = {.size = 4, .host_apply = apply};
static const daecl_corruption_ops no_apply = {.size = sizeof no_apply};
static const daecl_likelihood_ops k7 = {.size = sizeof k7, .params_per_dim = 7,
                                        .host_loss_grad = apply_lik};

static const daecl_plugin base = {
    DAECL_PLUGIN_HEAD(DAECL_KIND_CORRUPTION),
    .name = "bad",
    .version = "0.0.1",
    .summary = "a plugin broken on purpose for tests/bad",
    .license = "MIT",
    .params = good,
    .n_params = 1,
    .ops = &ops,
};

#define SCHEMA(a) d.params = a, d.n_params = sizeof a / sizeof a[0]

DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
{
    static daecl_plugin d;
    const char *c = getenv("DAECL_BAD_PLUGIN");
    d = base;
    if (!c)
        return &d;
    if (!strcmp(c, "null"))
        return NULL;
    if (!strcmp(c, "major"))
        d.abi_major = DAECL_ABI_MAJOR + 1;
    else if (!strcmp(c, "minor"))
        d.abi_minor = DAECL_ABI_MINOR + 1;
    else if (!strcmp(c, "small_descriptor"))
        d.size = 16;
    else if (!strcmp(c, "sizes"))
        d.abi_sizes = 4 | 4 << 8 | 4 << 16; /* a 32-bit build */
    else if (!strcmp(c, "kind"))
        d.kind = 9;
    else if (!strcmp(c, "name"))
        d.name = "Bad-Name";
    else if (!strcmp(c, "name_auto"))
        d.name = "auto"; /* reserved: backend.plugin: auto chooses a plugin */
    else if (!strcmp(c, "license"))
        d.license = NULL;
    else if (!strcmp(c, "too_many_params"))
        SCHEMA(many);
    else if (!strcmp(c, "no_schema"))
        d.params = NULL;
    else if (!strcmp(c, "param_name"))
        SCHEMA(reserved);
    else if (!strcmp(c, "param_twice"))
        SCHEMA(twice);
    else if (!strcmp(c, "param_doc"))
        SCHEMA(no_doc);
    else if (!strcmp(c, "param_range"))
        SCHEMA(empty_range);
    else if (!strcmp(c, "param_default"))
        SCHEMA(outside);
    else if (!strcmp(c, "param_int"))
        SCHEMA(half_int);
    else if (!strcmp(c, "param_bool"))
        SCHEMA(half_bool);
    else if (!strcmp(c, "param_string"))
        SCHEMA(no_string);
    else if (!strcmp(c, "param_utf8"))
        SCHEMA(not_utf8);
    else if (!strcmp(c, "param_enum"))
        SCHEMA(not_a_choice);
    else if (!strcmp(c, "param_type"))
        SCHEMA(bad_type);
    else if (!strcmp(c, "packed"))
        SCHEMA(too_packed);
    else if (!strcmp(c, "no_ops"))
        d.ops = NULL;
    else if (!strcmp(c, "small_ops"))
        d.ops = &small_ops;
    else if (!strcmp(c, "missing_op"))
        d.ops = &no_apply;
    else if (!strcmp(c, "params_per_dim"))
        d.kind = DAECL_KIND_LIKELIHOOD, d.ops = &k7;
    else if (!strcmp(c, "init_fails"))
        d.init = init_fails;
    return &d;
}
