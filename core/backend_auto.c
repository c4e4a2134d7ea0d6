/* daecl — `backend.plugin: auto` (backend_auto.h): the choice between the
 * opencl and cpu backends from DAECL_DEVICE and the OpenCL device listing. */
#include "core/backend_auto.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Devices listed at most; the one `type: any` opens is marked among them. */
enum { MAX_DEVICES = 64 };

static int set_choice(daecl_backend_choice *out, const char *plugin, const char *fmt, ...)
    DAECL_PRINTF(3, 4);
static int set_choice(daecl_backend_choice *out, const char *plugin, const char *fmt, ...)
{
    va_list ap;
    snprintf(out->plugin, sizeof out->plugin, "%s", plugin);
    va_start(ap, fmt);
    vsnprintf(out->reason, sizeof out->reason, fmt, ap);
    va_end(ap);
    /* One line: a driver's name with a control character must not break
     * the log line or the comment in config.yaml. */
    for (char *p = out->reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return 0;
}

static int is_device(const char *type)
{
    return strcmp(type, "gpu") == 0 || strcmp(type, "accelerator") == 0;
}

static const char *kind_label(const char *type)
{
    return strcmp(type, "gpu") == 0 ? "GPU" : "accelerator";
}

int daecl_backend_auto_decide(const daecl_backend_facts *f, daecl_backend_choice *out,
                              daecl_err *err)
{
    memset(out, 0, sizeof *out);
    const char *env = f->device_env && *f->device_env ? f->device_env : NULL;
    if (env && !f->have_opencl)
        return daecl_err_set(err, DAECL_ECONFIG,
                             "DAECL_DEVICE=%.200s names an OpenCL device for backend.plugin: "
                             "auto, but this daecl has no opencl backend (built with "
                             "-DDAECL_WITH_OPENCL=OFF, or its plugin is not in the plugin "
                             "path); unset DAECL_DEVICE to train on the cpu backend",
                             env);
    if (env)
        return set_choice(out, "opencl",
                          "DAECL_DEVICE=%.200s names an OpenCL device (unset it for auto's own "
                          "choice; backend.plugin=cpu forces the cpu backend)",
                          env);
    if (!f->have_opencl)
        return set_choice(out, "cpu", "this daecl has no opencl backend (built with "
                                      "-DDAECL_WITH_OPENCL=OFF, or its plugin is not in the "
                                      "plugin path)");
    if (!f->listed) {
        /* The listing's sentence up to its advice: auto needs no OpenCL. */
        const char *why = f->why_unlisted && *f->why_unlisted ? f->why_unlisted
                                                              : "the opencl backend lists none";
        const char *semi = strchr(why, ';');
        int len = semi ? (int)(semi - why) : (int)strlen(why);
        return set_choice(out, "cpu", "no OpenCL device to use: %.*s", len > 300 ? 300 : len,
                          why);
    }
    const daecl_device_info *best = NULL;
    size_t n_cpu = 0, n_sim = 0;
    for (size_t i = 0; i < f->n_devs; i++) {
        const daecl_device_info *d = &f->devs[i];
        if (d->is_default && !best)
            best = d;
        n_cpu += strcmp(d->type, "cpu") == 0;
        n_sim += strcasestr(d->platform, "oclgrind") != NULL;
    }
    if (best && is_device(best->type) && best->compiler)
        return set_choice(out, "opencl", "OpenCL %s %.120s of %.120s (backend.plugin=cpu forces "
                                         "the cpu backend)",
                          kind_label(best->type), best->name, best->platform);
    if (best && is_device(best->type))
        return set_choice(out, "cpu", "the OpenCL %s %.120s has no kernel compiler (give it "
                                      "programs from `daecl precompile` with "
                                      "backend.plugin=opencl and backend.binaries)",
                          kind_label(best->type), best->name);
    if (best && n_cpu == 1 && strcmp(best->type, "cpu") == 0)
        return set_choice(out, "cpu", "no OpenCL GPU or accelerator (only %.120s's CPU device, "
                                      "slower than the cpu backend; backend.plugin=opencl "
                                      "forces it)",
                          best->platform);
    if (best && strcmp(best->type, "cpu") == 0)
        return set_choice(out, "cpu", "no OpenCL GPU or accelerator (only %zu CPU devices, "
                                      "slower than the cpu backend; backend.plugin=opencl "
                                      "forces the best of them)",
                          n_cpu);
    if (best)
        return set_choice(out, "cpu", "no OpenCL GPU or accelerator (the device OpenCL would "
                                      "open, %.120s, is of type %.15s; backend.plugin=opencl "
                                      "forces it)",
                          best->name, best->type);
    return set_choice(out, "cpu", "no OpenCL GPU or accelerator (%s; backend.plugin=opencl "
                                  "forces it)",
                      n_sim ? "only Oclgrind's simulator, which daecl never picks by itself"
                            : "OpenCL lists no device");
}

int daecl_backend_auto_resolve(const daecl_registry *reg, daecl_backend_choice *out,
                               daecl_err *err)
{
    daecl_backend_facts f = {.device_env = getenv("DAECL_DEVICE")};
    const daecl_plugin *ocl = daecl_registry_find(reg, DAECL_KIND_BACKEND, "opencl", NULL);
    daecl_device_info *devs = NULL;
    daecl_err why = {0};
    f.have_opencl = ocl != NULL;
    if (ocl && !(f.device_env && *f.device_env)) {
        const daecl_ext_devices *ext = daecl_backend_extension(
            ocl->ops, DAECL_EXT_DEVICES, offsetof(daecl_ext_devices, list_devices) + sizeof(void *));
        size_t n = 0;
        if (!ext || !ext->list_devices) {
            f.why_unlisted = "the opencl backend does not list its devices";
        } else if (!(devs = calloc(MAX_DEVICES, sizeof *devs))) {
            return daecl_err_set(err, DAECL_ENOMEM, "out of memory listing the OpenCL devices "
                                                    "for backend.plugin: auto");
        } else if (ext->list_devices(daecl_host_table(), devs, sizeof *devs, MAX_DEVICES, &n,
                                     &why) != 0) {
            f.why_unlisted = why.msg;
        } else {
            f.listed = 1;
            f.devs = devs;
            f.n_devs = n < MAX_DEVICES ? n : MAX_DEVICES;
        }
    }
    int rc = daecl_backend_auto_decide(&f, out, err);
    free(devs);
    return rc;
}
