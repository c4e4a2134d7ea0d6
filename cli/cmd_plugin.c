/* daecl plugin check FILE.so|NAME: validates one plugin file and prints a report
 * (core/plugincheck.h). Exit status 0 when every check passed or was skipped,
 * 1 when one failed, 2 on a usage error. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/plugincheck.h"
#include "core/registry.h"

static int run(int argc, char **argv);

const cli_command cli_plugin = {
    .name = "plugin",
    .summary = "check a plugin file (daecl plugin check build/daecl-corruption-x.so)",
    .usage =
        "usage: daecl plugin check FILE.so|NAME|KIND/NAME [--no-device | --device-only]\n"
        "                          [--backend NAME]\n\n"
        "Loads FILE.so (or the file of the plugin `daecl plugins` finds by that name,\n"
        "as in daecl plugin check comm/mpi) as daecl would and checks it, one line per\n"
        "check (PASS, FAIL or SKIP, with numbers):\n"
        "  every plugin   the registry's loading rules, with its sentences: the file's\n"
        "                 name, who may write it and each folder on its way from /;\n"
        "                 dlopen, ABI and sizes, schema and defaults, init() and check()\n"
        "  likelihood     nll, grad, mean and sample finite for extreme decoder values;\n"
        "                 grad against central differences of nll (in double, 1,000\n"
        "                 random points); the (rows, dim) layout, row sums, scale and\n"
        "                 NULL outputs; mean() and a zero-mean grad against the plugin's\n"
        "                 own samples (within 5 standard errors); sample noise addressing\n"
        "  corruption     output finite, with its statistics (fraction changed, mean\n"
        "                 and variance of x~ - x); same key, same bytes; calls on chunks\n"
        "                 of rows (pos0) match one call; another seed, stream, stage,\n"
        "                 substep, epoch or position differs (element-wise and\n"
        "                 row-granular plugins alike)\n"
        "  with cl_source the device's output against the host reference on the default\n"
        "                 device of the opencl backend: bit-identical for corruptions,\n"
        "                 within 1e-5 relative for likelihoods (SKIP when there is no\n"
        "                 OpenCL backend or device)\n"
        "  backend        opens its default device and moves bytes; then the conformance\n"
        "                 suite: every op against the cpu backend on the same inputs,\n"
        "                 and the built-in plugins on the device when it has bind\n"
        "  comm           joins the world this process was started in (alone: a world\n"
        "                 of one; under mpirun every rank checks): allreduce SUM, MAX\n"
        "                 and MIN of f32, f64 and u64 against the exact reductions, a\n"
        "                 refusal of a bad type, broadcast from the last rank,\n"
        "                 allgather's rank order, barrier, close\n\n"
        "options:\n"
        "  --no-device     skip the device comparison (for a backend, the suite)\n"
        "  --device-only   only load the plugin and compare the device with the host\n"
        "  --backend NAME  compare on this backend plugin instead of opencl\n\n"
        "Exit status: 0 when nothing failed, 1 when a check failed, 2 on a usage error.\n",
    .run = run,
    .output_is_product = 1,
};

/* The file of the one plugin the search path knows as `want` (NAME or
 * KIND/NAME) into path; a usage error when none or several are. */
static int find_by_name(const char *want, char *path, size_t n)
{
    const char *slash = strchr(want, '/'), *name = slash ? slash + 1 : want;
    uint32_t kind = 0;
    if (slash) {
        char kind_name[32];
        snprintf(kind_name, sizeof kind_name, "%.*s", (int)(slash - want), want);
        if (!(kind = daecl_plugin_kind_parse(kind_name)) || strchr(name, '/'))
            return cli_usage_error(&cli_plugin, "no plugin file %s", want);
    }
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    if (daecl_registry_create(NULL, &reg, &err))
        return cli_fail(&err);
    size_t hits = 0;
    char kinds[128] = "";
    for (size_t i = 0; i < daecl_registry_count(reg); i++) {
        const char *p_path;
        const daecl_plugin *p = daecl_registry_at(reg, i, &p_path);
        if (strcmp(p->name, name) != 0 || (kind && p->kind != kind))
            continue;
        if (hits++ == 0)
            snprintf(path, n, "%s", p_path);
        size_t used = strlen(kinds);
        snprintf(kinds + used, sizeof kinds - used, "%s%s/%s", used ? ", " : "",
                 daecl_plugin_kind_name(p->kind), name);
    }
    int rc = 0;
    if (hits == 0)
        rc = cli_usage_error(&cli_plugin, "no plugin file %s, and no plugin of that name in %s; "
                             "`daecl plugins` lists what was found", want,
                             daecl_registry_search_path(reg));
    else if (hits > 1)
        rc = cli_usage_error(&cli_plugin, "'%s' names %zu plugins (%s); give KIND/NAME or the "
                             "file", want, hits, kinds);
    daecl_registry_destroy(reg);
    return rc;
}

static int run(int argc, char **argv)
{
    if (argc < 2)
        return cli_usage_error(&cli_plugin, "give a subcommand: daecl plugin check FILE.so");
    if (strcmp(argv[1], "check") != 0)
        return cli_usage_error(&cli_plugin, "unknown subcommand '%s'; use check", argv[1]);
    daecl_plugincheck_opts opts = {.scope = DAECL_PLUGINCHECK_ALL};
    const char *file = NULL;
    int no_device = 0, device_only = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--no-device") == 0) {
            no_device = 1;
        } else if (strcmp(argv[i], "--device-only") == 0) {
            device_only = 1;
        } else if (strcmp(argv[i], "--backend") == 0) {
            if (++i == argc)
                return cli_usage_error(&cli_plugin, "--backend needs a backend plugin name");
            opts.backend_name = argv[i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_usage_error(&cli_plugin, "unknown option '%s'", argv[i]);
        } else if (file) {
            return cli_usage_error(&cli_plugin, "give one plugin file, not '%s' and '%s'", file,
                                   argv[i]);
        } else {
            file = argv[i];
        }
    }
    if (!file)
        return cli_usage_error(&cli_plugin, "give the plugin file to check (FILE.so)");
    if (no_device && device_only)
        return cli_usage_error(&cli_plugin, "--no-device and --device-only exclude each other");
    struct stat st;
    char found[4096];
    /* Anything that exists is judged by the registry's rules, so a folder
     * or a FIFO gets the registry's sentence; a NAME or KIND/NAME that is
     * no file is looked up as `daecl plugins` finds it. */
    if (stat(file, &st) != 0) {
        int rc = find_by_name(file, found, sizeof found);
        if (rc)
            return rc;
        file = found;
    }
    opts.scope = no_device ? DAECL_PLUGINCHECK_NO_DEVICE
                 : device_only ? DAECL_PLUGINCHECK_DEVICE_ONLY
                               : DAECL_PLUGINCHECK_ALL;
    daecl_plugincheck_result res;
    daecl_err err = {0};
    if (daecl_plugincheck_file(file, &opts, stdout, &res, &err))
        return cli_fail(&err);
    return res.failed ? 1 : 0;
}
