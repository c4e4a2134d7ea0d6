/* daecl plugins [NAME | KIND/NAME]: what the registry found, or one plugin's
 * documentation, printed from its parameter schema. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "core/error.h"
#include "core/registry.h"
#include "core/support.h"

static int run(int argc, char **argv);

const cli_command cli_plugins = {
    .name = "plugins",
    .summary = "list plugins, or document one (daecl plugins masking)",
    .usage = "usage: daecl plugins [NAME | KIND/NAME]\n\n"
             "Without NAME: every plugin found (kind, name, version, file), then every file\n"
             "that was refused and why. With NAME: that plugin's summary and parameters\n"
             "(type, default, range, doc); KIND/NAME picks one kind (likelihood/gaussian,\n"
             "comm/mpi).\n\n"
             "Plugins are searched in $DAECL_PLUGIN_PATH (colon-separated), then the folder\n"
             "beside this program (<bindir>/../lib/daecl/plugins), then the configured install\n"
             "prefix's lib/daecl/plugins.\n",
    .run = run,
    .output_is_product = 1,
};


static void fmt_num(char *buf, size_t n, double v)
{
    if (isinf(v))
        snprintf(buf, n, "%s", v < 0 ? "-inf" : "inf");
    else
        snprintf(buf, n, "%g", v);
}

static void print_param(const daecl_param_spec *s)
{
    char def[96], lo[32], hi[32], range[96];
    switch (s->type) {
    case DAECL_PARAM_BOOL:
        snprintf(def, sizeof def, "%s", s->def[0] ? "true" : "false");
        snprintf(range, sizeof range, "true | false");
        break;
    case DAECL_PARAM_STRING:
        snprintf(def, sizeof def, "\"%s\"", s->def_str);
        snprintf(range, sizeof range, "any text");
        break;
    case DAECL_PARAM_ENUM:
        snprintf(def, sizeof def, "%s", s->def_str);
        snprintf(range, sizeof range, "%s", s->choices);
        break;
    case DAECL_PARAM_FLOAT2:
        fmt_num(lo, sizeof lo, s->def[0]);
        fmt_num(hi, sizeof hi, s->def[1]);
        snprintf(def, sizeof def, "[%s, %s]", lo, hi);
        fmt_num(lo, sizeof lo, s->min);
        fmt_num(hi, sizeof hi, s->max);
        snprintf(range, sizeof range, "each in [%s, %s]", lo, hi);
        break;
    default:
        fmt_num(def, sizeof def, s->def[0]);
        fmt_num(lo, sizeof lo, s->min);
        fmt_num(hi, sizeof hi, s->max);
        snprintf(range, sizeof range, "[%s, %s]", lo, hi);
        break;
    }
    printf("  %-14s %-8s default %-12s %-22s %s\n", s->name, daecl_param_type_name(s->type), def, range,
           s->doc);
}

static void describe(const daecl_plugin *p, const char *path)
{
    printf("%s plugin '%s' %s (%s)\n  %s\n  file: %s\n", daecl_plugin_kind_name(p->kind), p->name,
           p->version, p->license, p->summary, path);
    if (p->kind == DAECL_KIND_CORRUPTION) {
        const daecl_corruption_ops *o = p->ops;
        printf("  device code: %s\n", o->cl_source ? "yes (runs on OpenCL devices)"
                                                   : "no (runs on the host)");
    } else if (p->kind == DAECL_KIND_LIKELIHOOD) {
        const daecl_likelihood_ops *o = p->ops;
        printf("  decoder values per dimension: %u\n  device code: %s\n", o->params_per_dim,
               o->cl_source ? "yes (runs on OpenCL devices)" : "no (runs on the host)");
        char sup[96];
        double lo, hi;
        daecl_support_describe(o->support, o->support_lo, o->support_hi, sup, sizeof sup);
        if (daecl_support_data_range(o, &lo, &hi))
            printf("  support: %s; accepts data in [%g, %g]\n", sup, lo, hi);
        else
            printf("  support: not declared (normalisation unchecked; any data accepted)\n");
    } else if (p->kind == DAECL_KIND_COMM) {
        printf("  communicator between processes: daecl joins its world when started by a\n"
               "  launcher (mpirun, srun) as one of several ranks, and sums the replicas'\n"
               "  gradients through it every step; `daecl plugin check FILE` runs a\n"
               "  one-process self test of its ops\n");
    }
    if (p->n_params == 0) {
        printf("  parameters: none\n");
        return;
    }
    printf("  parameters (set them beside `plugin: %s` in the %s section):\n", p->name,
           p->kind == DAECL_KIND_BACKEND ? "backend" : daecl_plugin_kind_name(p->kind));
    for (uint32_t i = 0; i < p->n_params; i++)
        print_param(&p->params[i]);
}

static int run(int argc, char **argv)
{
    if (argc > 2)
        return cli_usage_error(&cli_plugins, "expected at most one plugin name");
    daecl_registry *reg = NULL;
    daecl_err err = {0};
    if (daecl_registry_create(NULL, &reg, &err))
        return cli_fail(&err);
    int rc = 0;
    size_t n = daecl_registry_count(reg);
    if (argc == 1) {
        printf("%-11s %-18s %-8s %s\n", "KIND", "NAME", "VERSION", "FILE");
        for (size_t i = 0; i < n; i++) {
            const char *path;
            const daecl_plugin *p = daecl_registry_at(reg, i, &path);
            printf("%-11s %-18s %-8s %s\n", daecl_plugin_kind_name(p->kind), p->name, p->version,
                   path);
        }
        if (n == 0)
            printf("(no plugins found in %s; set DAECL_PLUGIN_PATH)\n",
                   daecl_registry_search_path(reg));
        size_t nr = daecl_registry_refused_count(reg);
        if (nr) {
            printf("\nrefused:\n");
            for (size_t i = 0; i < nr; i++)
                printf("  %s\n", daecl_registry_refused_at(reg, i));
        }
    } else {
        const char *want = argv[1], *slash = strchr(want, '/');
        uint32_t kind = 0;
        char kind_name[32];
        if (slash) {
            snprintf(kind_name, sizeof kind_name, "%.*s", (int)(slash - want), want);
            kind = daecl_plugin_kind_parse(kind_name);
            if (!kind) {
                daecl_registry_destroy(reg);
                return cli_usage_error(&cli_plugins, "unknown plugin kind '%s'; use corruption, "
                                       "likelihood, backend or comm", kind_name);
            }
            want = slash + 1;
        }
        size_t found = 0;
        for (size_t i = 0; i < n; i++) {
            const char *path;
            const daecl_plugin *p = daecl_registry_at(reg, i, &path);
            if (strcmp(p->name, want) != 0 || (kind && p->kind != kind))
                continue;
            if (found++)
                printf("\n");
            describe(p, path);
        }
        if (!found) {
            /* A file of that name that was refused: its sentence says why. */
            char file[96];
            const char *refused = NULL;
            snprintf(file, sizeof file, "-%s.so ", want);
            for (size_t i = 0; i < daecl_registry_refused_count(reg) && !refused; i++)
                if (strstr(daecl_registry_refused_at(reg, i), file))
                    refused = daecl_registry_refused_at(reg, i);
            daecl_err_set(&err, DAECL_EUSAGE, "no plugin named '%s' was found in %s; %s%.700s",
                          argv[1], daecl_registry_search_path(reg),
                          refused ? "refused: " : "`daecl plugins` lists what was found",
                          refused ? refused : "");
            rc = cli_fail(&err);
        }
    }
    daecl_registry_destroy(reg);
    return rc;
}
