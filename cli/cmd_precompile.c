/* daecl precompile [--device SPEC] [--backend NAME] --out DIR: writes the
 * device programs of a backend for one device, for devices that cannot
 * compile kernels themselves (the FPGA flow): `backend.binaries: DIR`. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/registry.h"

static int run(int argc, char **argv);

const cli_command cli_precompile = {
    .name = "precompile",
    .summary = "write device program binaries for a device without a compiler",
    .usage = "usage: daecl precompile [--device SPEC] [--backend NAME] --out DIR\n\n"
             "Builds every program the backend (default: opencl) would compile for the\n"
             "device: its own kernels, its GEMM kernel and the kernels of every corruption\n"
             "and likelihood plugin found, and writes the binaries into DIR. A run with\n"
             "`backend: {plugin: opencl, binaries: DIR}` then loads them and compiles\n"
             "nothing. SPEC sets the backend's parameters as name=value pairs separated\n"
             "by commas, as backend.NAME would in a config (\"type=gpu,index=0\",\n"
             "\"platform=NVIDIA\"); the rest keep their defaults.\n",
    .run = run,
};

static int run(int argc, char **argv)
{
    const char *backend = "opencl", *out = NULL, *device = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = strcmp(a, "--out") == 0       ? &out
                           : strcmp(a, "--device") == 0  ? &device
                           : strcmp(a, "--backend") == 0 ? &backend
                                                         : NULL;
        if (!dst)
            return cli_usage_error(&cli_precompile, "unexpected argument '%s'", a);
        if (i + 1 >= argc)
            return cli_usage_error(&cli_precompile, "%s needs a value", a);
        *dst = argv[++i];
    }
    if (!out)
        return cli_usage_error(&cli_precompile, "where to? give --out DIR");
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    if (daecl_registry_create(NULL, &reg, &err))
        return cli_fail(&err);
    int rc = 0;
    void *ctx = NULL;
    char *spec = NULL;
    daecl_param_value *values = NULL;
    const daecl_plugin **plugins = NULL;
    const daecl_backend_ops *ops = NULL;
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_BACKEND, backend, NULL);
    if (!p) {
        daecl_err_set(&err, DAECL_EUSAGE, "no backend plugin named '%s' was found; `daecl "
                      "plugins` lists what was found", backend);
        rc = cli_fail(&err);
        goto done;
    }
    ops = p->ops;
    const daecl_ext_precompile *ext = daecl_backend_extension(
        ops, DAECL_EXT_PRECOMPILE, offsetof(daecl_ext_precompile, precompile) + sizeof(void *));
    if (!ext || !ext->precompile) {
        daecl_err_set(&err, DAECL_EUSAGE, "backend '%s' has no device programs to precompile",
                      backend);
        rc = cli_fail(&err);
        goto done;
    }
    /* The device: the backend's parameters, defaults resolved by the core,
     * then --device's name=value pairs; open() chooses from them. */
    values = calloc(p->n_params + 1, sizeof *values);
    spec = strdup(device ? device : "");
    if (!values || !spec) {
        daecl_err_set(&err, DAECL_ENOMEM, "out of memory");
        rc = cli_fail(&err);
        goto done;
    }
    if (daecl_plugin_values(p, "backend", spec, values, &err)) {
        rc = cli_usage_error(&cli_precompile, "--device: %s", err.msg);
        goto done;
    }
    size_t n_all = daecl_registry_count(reg), n = 0;
    plugins = calloc(n_all ? n_all : 1, sizeof *plugins);
    if (!plugins) {
        daecl_err_set(&err, DAECL_ENOMEM, "out of memory");
        rc = cli_fail(&err);
        goto done;
    }
    for (size_t i = 0; i < n_all; i++) {
        const daecl_plugin *q = daecl_registry_at(reg, i, NULL);
        if (q->kind != DAECL_KIND_BACKEND)
            plugins[n++] = q;
    }
    if (ops->open(daecl_host_table(), values, &ctx, &err) ||
        ext->precompile(ctx, plugins, n, out, &err)) {
        rc = cli_fail(&err);
        goto done;
    }
    daecl_device_info info;
    ops->describe(ctx, &info, sizeof info);
    printf("daecl: wrote the programs of backend %s and %zu plugins for %s into %s\n", backend, n,
           info.name, out);
done:
    if (ctx)
        ops->close(ctx);
    free(plugins);
    free(values);
    free(spec);
    daecl_registry_destroy(reg);
    return rc;
}
