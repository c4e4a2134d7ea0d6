/* daecl devices [--backend NAME]: the compute devices a backend can open,
 * like `clinfo -l`, with what daecl picks by default and why. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/backend_auto.h"
#include "core/error.h"
#include "core/registry.h"

static int run(int argc, char **argv);

const cli_command cli_devices = {
    .name = "devices",
    .summary = "list the compute devices and the one daecl would pick",
    .usage = "usage: daecl devices [--backend NAME]\n\n"
             "Lists every device the backend (default: opencl) can open: platform, name,\n"
             "vendor, type, compute units, memory, largest allocation, OpenCL C version,\n"
             "driver, fp16/fp64 support, whether it can compile kernels, and which one an\n"
             "`type: any` choice opens and why. Choose another with the backend section's\n"
             "platform/type/index keys, or DAECL_DEVICE (see docs/config.md). The last\n"
             "line says which backend `backend.plugin: auto` would choose, and why.\n",
    .run = run,
    .output_is_product = 1,
};

/* The line `backend.plugin: auto` would log: its choice and why. */
static void say_auto(const daecl_registry *reg)
{
    daecl_backend_choice choice;
    daecl_err err = {0};
    if (daecl_backend_auto_resolve(reg, &choice, &err) == 0)
        printf("backend auto -> %s: %s\n", choice.plugin, choice.reason);
    else
        printf("backend auto would stop: %s\n", err.msg);
}

static int run(int argc, char **argv)
{
    const char *backend = "opencl";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strncmp(argv[i], "--backend=", 10) == 0)
            backend = argv[i] + 10;
        else
            return cli_usage_error(&cli_devices, "unexpected argument '%s'", argv[i]);
    }
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    if (daecl_registry_create(NULL, &reg, &err))
        return cli_fail(&err);
    const char *path = NULL;
    const daecl_plugin *p = daecl_registry_find(reg, DAECL_KIND_BACKEND, backend, &path);
    int rc = 0;
    if (!p) {
        say_auto(reg);
        daecl_err_set(&err, DAECL_EUSAGE, "no backend plugin named '%s' was found in %s; "
                      "`daecl plugins` lists what was found", backend,
                      daecl_registry_search_path(reg));
        rc = cli_fail(&err);
        goto done;
    }
    const daecl_ext_devices *ext = daecl_backend_extension(
        p->ops, DAECL_EXT_DEVICES, offsetof(daecl_ext_devices, list_devices) + sizeof(void *));
    if (!ext || !ext->list_devices) {
        printf("backend '%s' (%s) does not list devices\n", backend, path);
        say_auto(reg);
        goto done;
    }
    enum { MAX = 64 };
    daecl_device_info *dev = calloc(MAX, sizeof *dev);
    size_t n = 0;
    if (!dev) {
        daecl_err_set(&err, DAECL_ENOMEM, "out of memory listing devices");
        rc = cli_fail(&err);
        goto done;
    }
    if (ext->list_devices(daecl_host_table(), dev, sizeof *dev, MAX, &n, &err)) {
        say_auto(reg);
        rc = cli_fail(&err);
        free(dev);
        goto done;
    }
    uint32_t last_platform = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        const daecl_device_info *d = &dev[i];
        if (d->platform_index != last_platform) {
            printf("Platform #%u: %s\n", d->platform_index, d->platform);
            last_platform = d->platform_index;
        }
        printf(" %s- Device #%u: %s%s\n", i + 1 < n && dev[i + 1].platform_index == last_platform ? "|" : "`",
               d->device_index, d->name, d->is_default ? "   <- default" : "");
        printf("     vendor %s, type %s, %u compute units\n", d->vendor, d->type, d->compute_units);
        printf("     memory %.1f GiB, largest allocation %.1f GiB\n",
               (double)d->global_mem_bytes / (1 << 30), (double)d->max_alloc_bytes / (1 << 30));
        printf("     %s, driver %s, fp16 %s, fp64 %s, compiler %s\n",
               d->c_version[0] ? d->c_version : "no OpenCL C", d->driver, d->fp16 ? "yes" : "no",
               d->fp64 ? "yes" : "no", d->compiler ? "yes" : "no");
        if (d->note[0])
            printf("     %s\n", d->note);
    }
    if (n == 0)
        printf("backend '%s' found no devices\n", backend);
    free(dev);
    say_auto(reg);
done:
    daecl_registry_destroy(reg);
    return rc;
}
