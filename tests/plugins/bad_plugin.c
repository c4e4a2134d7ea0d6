/* daecl tests — one tiny corruption plugin, broken on purpose in the way its
 * BAD_* definition says, so the loader's refusals can be tested for real. */
#include "daecl/elementwise.h"

static inline float daecl_corrupt(float x, daecl_u4 r, DAECL_PARAMS p)
{
    (void)r;
    return x * p[0];
}

DAECL_DEFINE_HOST_CORRUPTION(scale_apply)

static int init_fails(const daecl_host *host, daecl_err *err)
{
    return host->error(err, DAECL_EPLUGIN, "the test plugin refuses to start");
}

static const daecl_param_spec params[] = {
#ifdef BAD_DEFAULT
    {.name = "factor", .type = DAECL_PARAM_FLOAT, .def = {5}, .min = 0, .max = 2, .doc = "scale"},
#else
    {.name = "factor", .type = DAECL_PARAM_FLOAT, .def = {1}, .min = 0, .max = 2, .doc = "scale"},
#endif
};

static const daecl_corruption_ops ops = {
    .size = sizeof(daecl_corruption_ops),
#ifndef MISSING_OP
    .host_apply = scale_apply,
#endif
};

#ifdef BAD_MAJOR
#define MAJOR (DAECL_ABI_MAJOR + 1)
#else
#define MAJOR DAECL_ABI_MAJOR
#endif
#ifdef BAD_MINOR
#define MINOR (DAECL_ABI_MINOR + 1)
#else
#define MINOR DAECL_ABI_MINOR
#endif
#ifdef BAD_SIZES
#define SIZES (4 | 4 << 8 | 4 << 16)
#else
#define SIZES DAECL_ABI_SIZES
#endif
#ifdef SMALL_DESCRIPTOR
#define SIZE 16
#else
#define SIZE sizeof(daecl_plugin)
#endif

#ifndef PLUGIN_VERSION
#define PLUGIN_VERSION "0.0.1"
#endif

static const daecl_plugin descriptor = {
    .size = SIZE,
    .abi_major = MAJOR,
    .abi_minor = MINOR,
    .abi_sizes = SIZES,
    .kind = DAECL_KIND_CORRUPTION,
#ifdef INIT_FAILS
    .init = init_fails,
#endif
    .name = PLUGIN_NAME,
    .version = PLUGIN_VERSION,
    .summary = "test plugin",
    .license = "MIT",
    .params = params,
    .n_params = 1,
    .param_size = sizeof(daecl_param_spec),
    .ops = &ops,
};

#ifdef NO_ENTRY
DAECL_EXPORT const daecl_plugin *daecl_plugin_entry_misspelt(void)
#else
DAECL_EXPORT const daecl_plugin *daecl_plugin_entry(void)
#endif
{
    (void)init_fails;
    (void)scale_apply;
    return &descriptor;
}
