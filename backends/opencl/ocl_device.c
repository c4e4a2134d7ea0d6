/* daecl opencl backend — platforms and devices: listing them for `daecl
 * devices`, reading the choice (schema values, then $DAECL_DEVICE), and
 * picking one: GPU, then accelerator, then CPU, the most compute units within
 * a kind, never the Oclgrind simulator unless its platform is asked for. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

/* Devices considered at most; more are left out of the listing. */
enum { MAX_PLATFORMS = 32, MAX_DEVICES = 64 };

#define NO_PLATFORM                                                                                \
    "no OpenCL platform is installed (the ICD loader found none in /etc/OpenCL/vendors); "         \
    "install one, e.g. `apt-get install pocl-opencl-icd` for CPUs, or your GPU vendor's "          \
    "OpenCL driver"

static const char *const type_names[] = {"any", "gpu", "cpu", "accelerator"};
static const char *const gemm_names[] = {"auto", "clblast", "daecl", "daecl_cpu"};

/* ---- one device's description ------------------------------------------------ */

/* Copies s into out (n bytes) without leading or trailing blanks: some
 * drivers pad their names. */
static void trimmed(char *out, size_t n, const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n'))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

void daecl__ocl_info_str(cl_platform_id plat, cl_device_id dev, cl_uint param, char *out, size_t n)
{
    size_t size = 0;
    cl_int rc = dev ? clGetDeviceInfo(dev, param, 0, NULL, &size)
                    : clGetPlatformInfo(plat, param, 0, NULL, &size);
    out[0] = '\0';
    if (rc != CL_SUCCESS || size == 0)
        return;
    char *tmp = malloc(size + 1);
    if (!tmp)
        return;
    rc = dev ? clGetDeviceInfo(dev, param, size, tmp, NULL)
             : clGetPlatformInfo(plat, param, size, tmp, NULL);
    tmp[rc == CL_SUCCESS ? size : 0] = '\0';
    trimmed(out, n, tmp);
    free(tmp);
}

static int has_word(const char *list, const char *word)
{
    size_t len = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
    return 0;
}

static void describe_device(cl_platform_id plat, cl_device_id dev, const char *plat_name,
                            uint32_t plat_index, uint32_t dev_index, daecl_device_info *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->platform, sizeof d->platform, "%s", plat_name);
    daecl__ocl_info_str(plat, dev, CL_DEVICE_NAME, d->name, sizeof d->name);
    daecl__ocl_info_str(plat, dev, CL_DEVICE_VENDOR, d->vendor, sizeof d->vendor);
    daecl__ocl_info_str(plat, dev, CL_DEVICE_OPENCL_C_VERSION, d->c_version, sizeof d->c_version);
    daecl__ocl_info_str(plat, dev, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    if (!d->name[0])
        snprintf(d->name, sizeof d->name, "device %u of platform %u", dev_index, plat_index);
    d->platform_index = plat_index;
    d->device_index = dev_index;

    cl_device_type type = 0;
    clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
    const char *t = (type & CL_DEVICE_TYPE_GPU)           ? "gpu"
                    : (type & CL_DEVICE_TYPE_ACCELERATOR) ? "accelerator"
                    : (type & CL_DEVICE_TYPE_CPU)         ? "cpu"
                                                          : "other";
    snprintf(d->type, sizeof d->type, "%s", t);

    cl_uint units = 0;
    cl_ulong mem = 0, max_alloc = 0;
    cl_bool compiler = CL_FALSE;
    cl_device_fp_config fp64 = 0;
    clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    clGetDeviceInfo(dev, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
    if (clGetDeviceInfo(dev, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp64, &fp64, NULL) != CL_SUCCESS)
        fp64 = 0;
    d->compute_units = units;
    d->global_mem_bytes = mem;
    d->max_alloc_bytes = max_alloc;
    d->compiler = compiler == CL_TRUE;

    size_t size = 0;
    char *ext = NULL;
    if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, 0, NULL, &size) == CL_SUCCESS &&
        (ext = malloc(size + 1)) != NULL) {
        if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, size, ext, NULL) != CL_SUCCESS)
            size = 0;
        ext[size] = '\0';
    }
    d->fp16 = ext && has_word(ext, "cl_khr_fp16");
    d->fp64 = (ext && has_word(ext, "cl_khr_fp64")) || fp64 != 0;
    free(ext);
}

/* ---- listing ----------------------------------------------------------------- */

static int contains_nocase(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

/* GPU first, then accelerator, then CPU, then anything else. */
static int kind_rank(const char *type)
{
    return strcmp(type, "gpu") == 0           ? 0
           : strcmp(type, "accelerator") == 0 ? 1
           : strcmp(type, "cpu") == 0         ? 2
                                              : 3;
}

static const char *kind_label(const char *type)
{
    return strcmp(type, "gpu") == 0           ? "GPU"
           : strcmp(type, "accelerator") == 0 ? "accelerator"
           : strcmp(type, "cpu") == 0         ? "CPU"
                                              : "device";
}

/* Of devs[i] with ok[i], the best: kind first, then compute units, ties to
 * the first found. -1 when none is ok. */
static long best_of(const daecl__ocl_device *devs, const unsigned char *ok, size_t n)
{
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        if (best < 0) {
            best = (long)i;
            continue;
        }
        const daecl_device_info *a = &devs[i].info, *b = &devs[best].info;
        int ra = kind_rank(a->type), rb = kind_rank(b->type);
        if (ra < rb || (ra == rb && a->compute_units > b->compute_units))
            best = (long)i;
    }
    return best;
}

/* Marks what `any` would open and says, for every device, why it is or is
 * not the default. */
static void mark_default(daecl__ocl_device *devs, size_t n)
{
    unsigned char ok[MAX_DEVICES];
    size_t n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] = !devs[i].oclgrind;
        n_ok += ok[i];
    }
    long best = best_of(devs, ok, n);
    size_t same_kind = 0;
    if (best >= 0)
        for (size_t i = 0; i < n; i++)
            same_kind += ok[i] && strcmp(devs[i].info.type, devs[best].info.type) == 0;
    size_t any_index = 0; /* the device's index=N among all non-simulator devices */
    for (size_t i = 0; i < n; i++) {
        daecl_device_info *d = &devs[i].info;
        d->is_default = (long)i == best;
        if (devs[i].oclgrind) {
            snprintf(d->note, sizeof d->note,
                     "passed over: Oclgrind is a simulator that checks kernels, thousands of "
                     "times slower than a device; select it with DAECL_DEVICE=platform=Oclgrind");
            continue;
        }
        const daecl_device_info *b = &devs[best].info;
        if (d->is_default) {
            if (n_ok == 1)
                snprintf(d->note, sizeof d->note, "the default: the only device");
            else if (same_kind == 1)
                snprintf(d->note, sizeof d->note,
                         "the default: the only %s (GPUs come first, then accelerators, then "
                         "CPUs)",
                         kind_label(d->type));
            else
                snprintf(d->note, sizeof d->note,
                         "the default: the %s with the most compute units (%u)",
                         kind_label(d->type), d->compute_units);
        } else {
            const char *why = kind_rank(d->type) > kind_rank(b->type) ? "comes first"
                              : d->compute_units < b->compute_units
                                  ? "has more compute units"
                                  : "has as many compute units and was found first";
            snprintf(d->note, sizeof d->note,
                     "passed over: %s %s (%s) %s; select this one with index=%zu "
                     "(DAECL_DEVICE=%zu)",
                     kind_rank(d->type) > kind_rank(b->type) ? "a" : "the", kind_label(b->type),
                     b->name, why, any_index, any_index);
        }
        any_index++;
    }
}

int daecl__ocl_list(const daecl_host *host, daecl__ocl_device *out, size_t max, size_t *n,
                    daecl_err *err)
{
    *n = 0;
    cl_platform_id plats[MAX_PLATFORMS];
    cl_uint n_plats = 0;
    cl_int rc = clGetPlatformIDs(MAX_PLATFORMS, plats, &n_plats);
    if (rc == -1001 /* CL_PLATFORM_NOT_FOUND_KHR */ || (rc == CL_SUCCESS && n_plats == 0))
        return daecl__ocl_fail(host, err, DAECL_EDEVICE, NO_PLATFORM);
    if ((rc = daecl__ocl_check(host, NULL, rc, "clGetPlatformIDs", NULL, err)))
        return rc;
    if (n_plats > MAX_PLATFORMS)
        n_plats = MAX_PLATFORMS;
    size_t count = 0;
    for (cl_uint p = 0; p < n_plats; p++) {
        char name[128];
        daecl__ocl_info_str(plats[p], NULL, CL_PLATFORM_NAME, name, sizeof name);
        cl_device_id devs[MAX_DEVICES];
        cl_uint n_devs = 0;
        rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &n_devs);
        if (rc == CL_DEVICE_NOT_FOUND)
            continue;
        if (rc != CL_SUCCESS) {
            /* One broken driver must not hide the devices of the others. */
            if (host && host->log)
                host->log(DAECL_LOG_WARN, "opencl",
                          "platform %u (%s) does not list its devices: %s; skipping it", p, name,
                          daecl__ocl_code_name(rc));
            continue;
        }
        if (n_devs > MAX_DEVICES)
            n_devs = MAX_DEVICES;
        for (cl_uint d = 0; d < n_devs && count < max; d++, count++) {
            daecl__ocl_device *o = &out[count];
            o->platform = plats[p];
            o->device = devs[d];
            describe_device(plats[p], devs[d], name, p, d, &o->info);
            o->oclgrind = contains_nocase(name, "oclgrind");
        }
    }
    mark_default(out, count);
    *n = count;
    return 0;
}

/* ---- the choice ----------------------------------------------------------------- */

/* Index of s among "a|b|c"-style names, or -1. */
static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

/* An ENUM value: its string when the core gave one that is a choice, else
 * the index in num[0] (how the schema packs it). */
static int enum_value(const daecl_param_value *v, const char *const *names, size_t n)
{
    if (v->str) {
        int i = name_index(names, n, v->str);
        if (i >= 0)
            return i;
    }
    double x = v->num[0];
    return x >= 0 && x < (double)n ? (int)x : 0;
}

#define DEVICE_SYNTAX                                                                              \
    "write key=value pairs separated by commas with keys platform, type, index, binaries, "        \
    "gemm and gemm_cpu, e.g. DAECL_DEVICE=\"platform=NVIDIA,type=gpu,index=0\", or just a type "   \
    "(DAECL_DEVICE=gpu) or an index (DAECL_DEVICE=1)"

static int bad_env(const daecl_host *host, const char *env, const char *why, daecl_err *err)
{
    return daecl__ocl_fail(host, err, DAECL_ECONFIG,
                           "DAECL_DEVICE=\"%.200s\" is not understood: %s; " DEVICE_SYNTAX, env,
                           why);
}

/* An index 0..1000 (or -1) from text; 0 when it is one. */
static int parse_index(const char *s, long *out)
{
    if (!*s)
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < -1 || v > 1000)
        return -1;
    *out = v;
    return 0;
}

/* Applies one `key=value` (or bare type or index) token of DAECL_DEVICE. */
static int apply_token(const daecl_host *host, const char *env, char *tok, daecl__ocl_choice *c,
                       daecl_err *err)
{
    char why[256];
    char *eq = strchr(tok, '=');
    if (!eq) {
        int t = name_index(type_names, 4, tok);
        if (t >= 0) {
            c->type = t;
            return 0;
        }
        if (parse_index(tok, &c->index) == 0)
            return 0;
        snprintf(why, sizeof why, "'%.60s' is neither a key=value pair, a type nor an index", tok);
        return bad_env(host, env, why, err);
    }
    *eq = '\0';
    const char *key = tok, *val = eq + 1;
    if (strcmp(key, "platform") == 0) {
        if (strlen(val) >= sizeof c->platform)
            return bad_env(host, env, "the platform is longer than 127 characters", err);
        snprintf(c->platform, sizeof c->platform, "%s", val);
    } else if (strcmp(key, "type") == 0) {
        int t = name_index(type_names, 4, val);
        if (t < 0) {
            snprintf(why, sizeof why, "type '%.60s' is not one of gpu, cpu, accelerator, any", val);
            return bad_env(host, env, why, err);
        }
        c->type = t;
    } else if (strcmp(key, "index") == 0) {
        if (parse_index(val, &c->index) != 0) {
            snprintf(why, sizeof why, "index '%.60s' is not a whole number from -1 to 1000", val);
            return bad_env(host, env, why, err);
        }
    } else if (strcmp(key, "binaries") == 0) {
        if (strlen(val) >= sizeof c->binaries)
            return bad_env(host, env, "the binaries folder is longer than 1023 characters", err);
        snprintf(c->binaries, sizeof c->binaries, "%s", val);
    } else if (strcmp(key, "gemm") == 0) {
        int g = name_index(gemm_names, 4, val);
        if (g < 0) {
            snprintf(why, sizeof why,
                     "gemm '%.60s' is not one of auto, clblast, daecl, daecl_cpu", val);
            return bad_env(host, env, why, err);
        }
        c->gemm = g;
    } else if (strcmp(key, "gemm_cpu") == 0) {
        daecl__ocl_cpuvar v;
        if (strlen(val) >= sizeof c->gemm_cpu || (*val && daecl__ocl_cpuvar_parse(val, &v) != 0)) {
            snprintf(why, sizeof why,
                     "gemm_cpu '%.60s' is not a CPU GEMM variant such as 'MR=4 NV=2 VW=16 KU=1'",
                     val);
            return bad_env(host, env, why, err);
        }
        snprintf(c->gemm_cpu, sizeof c->gemm_cpu, "%s", val);
    } else {
        snprintf(why, sizeof why, "'%.60s' is not a key", key);
        return bad_env(host, env, why, err);
    }
    return 0;
}

int daecl__ocl_choice_parse(const daecl_host *host, const daecl_param_value *values,
                            daecl__ocl_choice *c, daecl_err *err)
{
    memset(c, 0, sizeof *c);
    c->index = -1;
    if (values) {
        const char *plat = values[0].str ? values[0].str : "";
        const char *bin = values[3].str ? values[3].str : "";
        if (strlen(plat) >= sizeof c->platform || strlen(bin) >= sizeof c->binaries)
            return daecl__ocl_fail(host, err, DAECL_ECONFIG,
                                   "opencl backend: the %s is too long (at most %zu "
                                   "characters); shorten backend.%s",
                                   strlen(plat) >= sizeof c->platform ? "platform"
                                                                      : "binaries folder",
                                   strlen(plat) >= sizeof c->platform ? sizeof c->platform - 1
                                                                      : sizeof c->binaries - 1,
                                   strlen(plat) >= sizeof c->platform ? "platform" : "binaries");
        snprintf(c->platform, sizeof c->platform, "%s", plat);
        c->type = enum_value(&values[1], type_names, 4);
        double idx = values[2].num[0];
        if (!(idx >= -1 && idx <= 1000))
            return daecl__ocl_fail(host, err, DAECL_ECONFIG,
                                   "opencl backend: index = %g is outside [-1, 1000]; set "
                                   "backend.index to -1 (the best device) or a device number",
                                   idx);
        c->index = (long)idx;
        snprintf(c->binaries, sizeof c->binaries, "%s", bin);
        c->gemm = enum_value(&values[4], gemm_names, 4);
        const char *var = values[5].str ? values[5].str : "";
        daecl__ocl_cpuvar v;
        if (*var && (strlen(var) >= sizeof c->gemm_cpu || daecl__ocl_cpuvar_parse(var, &v) != 0))
            return daecl__ocl_fail(host, err, DAECL_ECONFIG,
                                   "opencl backend: gemm_cpu = \"%.60s\" is not a CPU GEMM "
                                   "variant; write \"MR=4 NV=2 VW=16 KU=1\" (MR 1-8, NV 1-4, MR "
                                   "NV at most 32, VW 4, 8 or 16, KU 1, 2 or 4), or leave it empty",
                                   var);
        snprintf(c->gemm_cpu, sizeof c->gemm_cpu, "%s", var);
    }
    const char *env = getenv("DAECL_DEVICE");
    if (env && *env) {
        char buf[1024];
        if (strlen(env) >= sizeof buf)
            return bad_env(host, env, "it is longer than 1023 characters", err);
        snprintf(buf, sizeof buf, "%s", env);
        /* Split by hand: strtok would pass over an empty item silently. */
        int n_tokens = 0;
        for (char *tok = buf, *next; tok; tok = next) {
            next = strchr(tok, ',');
            if (next)
                *next++ = '\0';
            char *t = tok;
            while (isspace((unsigned char)*t))
                t++;
            size_t len = strlen(t);
            while (len > 0 && isspace((unsigned char)t[len - 1]))
                t[--len] = '\0';
            if (!*t)
                return bad_env(host, env, "it has an empty item", err);
            int rc = apply_token(host, env, t, c, err);
            if (rc)
                return rc;
            n_tokens++;
        }
        if (n_tokens == 0)
            return bad_env(host, env, "it has no item", err);
    }
    if (c->binaries[0] && c->gemm == DAECL__GEMM_ASK_CLBLAST)
        return daecl__ocl_fail(host, err, DAECL_ECONFIG,
                               "opencl backend: gemm=clblast cannot run with binaries=\"%.200s\" "
                               "(CLBlast always compiles from source); use gemm: auto, daecl or "
                               "daecl_cpu",
                               c->binaries);
    return 0;
}

/* "platform=\"NVIDIA\", type=gpu, index=1", or "any device". */
static void describe_choice(const daecl__ocl_choice *c, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    if (c->platform[0])
        used += (size_t)snprintf(out + used, n - used, "platform=\"%s\"", c->platform);
    if (c->type != DAECL__TYPE_ANY && used < n)
        used += (size_t)snprintf(out + used, n - used, "%stype=%s", used ? ", " : "",
                                 type_names[c->type]);
    if (c->index >= 0 && used < n)
        used += (size_t)snprintf(out + used, n - used, "%sindex=%ld", used ? ", " : "", c->index);
    if (!used)
        snprintf(out, n, "any device");
}

/* "[0] NAME (cpu, PLATFORM); [1] ..." for the no-match sentence. */
static void list_found(const daecl__ocl_device *devs, size_t n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s (%s, %s)", i ? "; " : "",
                                 devs[i].info.name, devs[i].info.type, devs[i].info.platform);
}

static int type_matches(int want, const char *type)
{
    return want == DAECL__TYPE_ANY || strcmp(type, type_names[want]) == 0;
}

int daecl__ocl_choose(const daecl_host *host, const daecl__ocl_choice *c, daecl__ocl_device *out,
                      daecl_err *err)
{
    daecl__ocl_device *devs = calloc(MAX_DEVICES, sizeof *devs);
    if (!devs)
        return daecl__ocl_fail(host, err, DAECL_ENOMEM,
                               "opencl backend: out of memory listing the OpenCL devices");
    size_t n = 0;
    int rc = daecl__ocl_list(host, devs, MAX_DEVICES, &n, err);
    if (rc)
        goto done;
    unsigned char ok[MAX_DEVICES];
    size_t n_ok = 0, n_sim = 0;
    for (size_t i = 0; i < n; i++) {
        const daecl_device_info *d = &devs[i].info;
        int plat_ok = !c->platform[0] || contains_nocase(d->platform, c->platform);
        if (c->platform[0] && !plat_ok) {
            char vendor[128];
            daecl__ocl_info_str(devs[i].platform, NULL, CL_PLATFORM_VENDOR, vendor, sizeof vendor);
            plat_ok = contains_nocase(vendor, c->platform);
        }
        /* The simulator only when the platform filter names it. */
        int sim_blocked = devs[i].oclgrind && !c->platform[0];
        ok[i] = plat_ok && type_matches(c->type, d->type) && !sim_blocked;
        n_sim += plat_ok && type_matches(c->type, d->type) && sim_blocked;
        n_ok += ok[i];
    }
    long pick = -1;
    if (c->index >= 0) {
        long seen = 0;
        for (size_t i = 0; i < n && pick < 0; i++)
            if (ok[i] && seen++ == c->index)
                pick = (long)i;
    } else {
        pick = best_of(devs, ok, n);
    }
    if (pick < 0) {
        char want[300], found[700];
        describe_choice(c, want, sizeof want);
        list_found(devs, n, found, sizeof found);
        int anything = !c->platform[0] && c->type == DAECL__TYPE_ANY && c->index < 0;
        if (n_ok == 0 && n_sim > 0)
            rc = daecl__ocl_fail(host, err, DAECL_EDEVICE,
                                 "the only OpenCL device%s%s is Oclgrind's simulator, which daecl "
                                 "never picks unless asked, since it runs thousands of times "
                                 "slower than a device; to check kernels on it select it with "
                                 "DAECL_DEVICE=platform=Oclgrind (or backend.platform: Oclgrind), "
                                 "else install an OpenCL driver for your hardware",
                                 anything ? "" : " matching ", anything ? "" : want);
        else if (n_ok > 0)
            rc = daecl__ocl_fail(host, err, DAECL_EDEVICE,
                                 "only %zu OpenCL device%s match%s %s, so index=%ld is past the "
                                 "end (indices start at 0); found: %s; `daecl devices` shows "
                                 "them",
                                 n_ok, n_ok == 1 ? "" : "s", n_ok == 1 ? "es" : "", want, c->index,
                                 found);
        else
            rc = daecl__ocl_fail(host, err, DAECL_EDEVICE,
                                 "no OpenCL device matches %s; found: %s; `daecl devices` shows "
                                 "them",
                                 want, found[0] ? found : "none");
        goto done;
    }
    *out = devs[pick];
    /* The note says why this device was opened. */
    int by_default = !c->platform[0] && c->type == DAECL__TYPE_ANY && c->index < 0;
    if (!by_default) {
        char want[sizeof out->info.note - 16];
        describe_choice(c, want, sizeof want);
        snprintf(out->info.note, sizeof out->info.note, "chosen by %s", want);
    }
done:
    free(devs);
    return rc;
}
