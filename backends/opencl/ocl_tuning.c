/* daecl opencl backend — a device's GEMM tuning: the parameter sets of
 * CLBlast's SGEMM kernels (their values, constraints and variation), what
 * CLBlast holds per device, the tuning file in the cache folder
 * (clblast-tuning/<device>-<hash>.txt: identity, writing, strict reading),
 * and, for every GEMM, which way it runs: CLBlast, daecl's tiled kernel or
 * one of daecl's CPU kernel variants. ocl_tune.c searches. */
#include <clblast_c.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl_tune.h"

enum { MAX_SETS = DAECL__OCL_TUNE_MAX_SETS, MAX_SHAPES = DAECL__OCL_TUNE_MAX_SHAPES };
enum { NX = DAECL__OCL_TUNE_NX, ND = DAECL__OCL_TUNE_ND, MAX_FILE_BYTES = 256 * 1024 };

int daecl__ocl_tune_is_cpu(const daecl__ocl *o)
{
    return strcmp(o->info.type, "cpu") == 0;
}

/* ---- CLBlast's SGEMM parameters ------------------------------------------------------ */

/* Xgemm (the indirect GEMM: operands padded and pre-transposed by helper
 * kernels) and XgemmDirect (one kernel for any shape), in CLBlast 1.5's
 * names; the routine's XGEMM_MIN_INDIRECT_SIZE picks between them. */
enum {
    X_GEMMK,
    X_KREG,
    X_KWG,
    X_KWI,
    X_MDIMA,
    X_MDIMC,
    X_MWG,
    X_NDIMB,
    X_NDIMC,
    X_NWG,
    X_SA,
    X_SB,
    X_STRM,
    X_STRN,
    X_VWM,
    X_VWN
};
enum { D_WGD, D_MDIMCD, D_NDIMCD, D_MDIMAD, D_NDIMBD, D_KWID, D_VWMD, D_VWND, D_PADA, D_PADB };
static const char *const x_names[NX] = {"GEMMK", "KREG",  "KWG",   "KWI", "MDIMA", "MDIMC",
                                        "MWG",   "NDIMB", "NDIMC", "NWG", "SA",    "SB",
                                        "STRM",  "STRN",  "VWM",   "VWN"};
static const char *const d_names[ND] = {"WGD",  "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                        "KWID", "VWMD",   "VWND",   "PADA",   "PADB"};

/* The values the search tries: CLBlast's own tuners' ranges
 * (src/tuning/kernels/xgemm.hpp, xgemm_direct.hpp), with Xgemm's
 * work-groups down to 4 x 4, which suit CPUs. */
typedef struct choices {
    unsigned char n;
    size_t v[6];
} choices;

static const choices x0_space[NX] = {[X_GEMMK] = {1, {0}},
                                     [X_KREG] = {1, {1}},
                                     [X_KWG] = {2, {16, 32}},
                                     [X_KWI] = {2, {2, 8}},
                                     [X_MDIMA] = {4, {4, 8, 16, 32}},
                                     [X_MDIMC] = {4, {4, 8, 16, 32}},
                                     [X_MWG] = {4, {16, 32, 64, 128}},
                                     [X_NDIMB] = {4, {4, 8, 16, 32}},
                                     [X_NDIMC] = {4, {4, 8, 16, 32}},
                                     [X_NWG] = {4, {16, 32, 64, 128}},
                                     [X_SA] = {2, {0, 1}},
                                     [X_SB] = {2, {0, 1}},
                                     [X_STRM] = {2, {0, 1}},
                                     [X_STRN] = {2, {0, 1}},
                                     [X_VWM] = {4, {1, 2, 4, 8}},
                                     [X_VWN] = {4, {1, 2, 4, 8}}};
/* GEMMK=1: CLBlast's 2D register tiling (no local memory; KREG unrolls k). */
static const choices x1_space[NX] = {[X_GEMMK] = {1, {1}},
                                     [X_KREG] = {5, {1, 2, 4, 8, 16}},
                                     [X_KWG] = {1, {1}},
                                     [X_KWI] = {1, {1}},
                                     [X_MDIMA] = {5, {2, 4, 8, 16, 32}},
                                     [X_MDIMC] = {5, {2, 4, 8, 16, 32}},
                                     [X_MWG] = {5, {8, 16, 32, 64, 128}},
                                     [X_NDIMB] = {5, {2, 4, 8, 16, 32}},
                                     [X_NDIMC] = {5, {2, 4, 8, 16, 32}},
                                     [X_NWG] = {5, {8, 16, 32, 64, 128}},
                                     [X_SA] = {1, {0}},
                                     [X_SB] = {1, {0}},
                                     [X_STRM] = {1, {0}},
                                     [X_STRN] = {1, {0}},
                                     [X_VWM] = {4, {1, 2, 4, 8}},
                                     [X_VWN] = {4, {1, 2, 4, 8}}};
static const choices d_space[ND] = {
    [D_WGD] = {4, {8, 16, 32, 64}}, [D_MDIMCD] = {3, {8, 16, 32}}, [D_NDIMCD] = {3, {8, 16, 32}},
    [D_MDIMAD] = {3, {8, 16, 32}},  [D_NDIMBD] = {3, {8, 16, 32}}, [D_KWID] = {3, {2, 8, 16}},
    [D_VWMD] = {4, {1, 2, 4, 8}},   [D_VWND] = {4, {1, 2, 4, 8}},  [D_PADA] = {2, {0, 1}},
    [D_PADB] = {2, {0, 1}}};

int daecl__ocl_tset_equal(const daecl__ocl_tset *a, const daecl__ocl_tset *b)
{
    return a->direct == b->direct && memcmp(a->x, b->x, sizeof a->x) == 0 &&
           memcmp(a->d, b->d, sizeof a->d) == 0;
}

static int in_space(const choices *c, size_t v)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->v[i] == v)
            return 1;
    return 0;
}

static int divides(size_t a, size_t b) /* b divides a */
{
    return b != 0 && a % b == 0;
}

/* Measured on POCL 3.1 (2 cores): a GEMMK=1 Xgemm took 110 s to compile
 * and ran at 6 GFLOP/s where GEMMK=0 ran at 16; an XgemmDirect with WGD=64
 * took 230 s. A budget of minutes cannot afford them on a CPU. */
static const choices *x_space_of(const daecl__ocl *o, size_t gemmk)
{
    return gemmk == 0 ? x0_space : gemmk == 1 && !daecl__ocl_tune_is_cpu(o) ? x1_space : NULL;
}

/* CLBlast's constraints on Xgemm (its tuner's) and the device's limits:
 * CLBlast refuses or miscomputes a set that breaks them. */
static int x_valid(const daecl__ocl *o, const size_t *x)
{
    const choices *sp = x_space_of(o, x[X_GEMMK]);
    if (!sp)
        return 0;
    for (int i = 0; i < NX; i++)
        if (!in_space(&sp[i], x[i]))
            return 0;
    size_t wg = x[X_MDIMC] * x[X_NDIMC];
    if (wg > o->max_wg || x[X_MDIMC] > o->max_item[0] || x[X_NDIMC] > o->max_item[1])
        return 0;
    if (!divides(x[X_MWG], x[X_MDIMC] * x[X_VWM]) || !divides(x[X_NWG], x[X_NDIMC] * x[X_VWN]) ||
        !divides(x[X_MWG], x[X_MDIMA] * x[X_VWM]) || !divides(x[X_NWG], x[X_NDIMB] * x[X_VWN]))
        return 0;
    if (x[X_GEMMK] == 1)
        return x[X_MDIMA] == x[X_MDIMC] && x[X_NDIMB] == x[X_NDIMC] && divides(x[X_KREG], x[X_VWN]);
    /* KDIMA = wg / MDIMA work-items load along k, likewise KDIMB. */
    if (!divides(x[X_KWG], x[X_KWI]) || !divides(wg, x[X_MDIMA]) || !divides(wg, x[X_NDIMB]) ||
        !divides(x[X_KWG], wg / x[X_MDIMA]) || !divides(x[X_KWG], wg / x[X_NDIMB]))
        return 0;
    uint64_t local = sizeof(float) * ((uint64_t)x[X_SA] * x[X_KWG] * x[X_MWG] +
                                      (uint64_t)x[X_SB] * x[X_KWG] * x[X_NWG]);
    return local <= o->local_mem;
}

static int d_valid(const daecl__ocl *o, const size_t *d)
{
    for (int i = 0; i < ND; i++)
        if (!in_space(&d_space[i], d[i]))
            return 0;
    if (daecl__ocl_tune_is_cpu(o) && d[D_WGD] > 32)
        return 0;
    size_t wg = d[D_MDIMCD] * d[D_NDIMCD], w = d[D_WGD];
    if (wg > o->max_wg || d[D_MDIMCD] > o->max_item[0] || d[D_NDIMCD] > o->max_item[1])
        return 0;
    if (!divides(w, d[D_KWID]) || !divides(w, d[D_MDIMCD] * d[D_VWMD]) ||
        !divides(w, d[D_NDIMCD] * d[D_VWND]) || !divides(w, d[D_MDIMAD] * d[D_VWMD]) ||
        !divides(w, d[D_NDIMBD] * d[D_VWND]) || !divides(wg, d[D_MDIMAD]) ||
        !divides(wg, d[D_NDIMBD]) || !divides(w, wg / d[D_MDIMAD]) || !divides(w, wg / d[D_NDIMBD]))
        return 0;
    uint64_t local =
        sizeof(float) * ((uint64_t)w * (w + d[D_PADA]) + (uint64_t)w * (w + d[D_PADB]));
    return local <= o->local_mem;
}

int daecl__ocl_tset_valid(const daecl__ocl *o, const daecl__ocl_tset *s)
{
    return (s->direct == 0 || s->direct == 1) && x_valid(o, s->x) && d_valid(o, s->d);
}

/* "indirect: GEMMK=0 KREG=1 ..." into out. */
void daecl__ocl_tset_describe(const daecl__ocl_tset *s, char *out, size_t n)
{
    size_t used = (size_t)snprintf(out, n, "%s:", s->direct ? "direct" : "indirect");
    const size_t *v = s->direct ? s->d : s->x;
    const char *const *names = s->direct ? d_names : x_names;
    for (int i = 0; i < (s->direct ? ND : NX) && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, " %s=%zu", names[i], v[i]);
}

/* splitmix64: a reproducible search order per device. */
uint64_t daecl__ocl_tune_random(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static void random_values(uint64_t *rng, const choices *space, size_t *v, int n)
{
    for (int i = 0; i < n; i++)
        v[i] = space[i].v[daecl__ocl_tune_random(rng) % space[i].n];
}

/* Moves one or two parameters of v a step along their value lists (or,
 * one time in four, anywhere on them). */
static void mutate(uint64_t *rng, const choices *space, size_t *v, int n)
{
    int changes = 1 + (int)(daecl__ocl_tune_random(rng) % 2);
    for (int c = 0; c < changes; c++) {
        int i;
        do
            i = (int)(daecl__ocl_tune_random(rng) % (uint64_t)n);
        while (space[i].n < 2);
        int at = 0;
        while (at < space[i].n && space[i].v[at] != v[i])
            at++;
        if (at == space[i].n || daecl__ocl_tune_random(rng) % 4 == 0) {
            at = (int)(daecl__ocl_tune_random(rng) % space[i].n);
        } else {
            int step = daecl__ocl_tune_random(rng) % 2 ? 1 : -1;
            if (at + step < 0 || at + step >= space[i].n)
                step = -step;
            at += step;
        }
        v[i] = space[i].v[at];
    }
}

void daecl__ocl_tset_vary(const daecl__ocl *o, uint64_t *rng, daecl__ocl_tset *s, int direct,
                          int fresh)
{
    if (direct) {
        if (fresh)
            random_values(rng, d_space, s->d, ND);
        else
            mutate(rng, d_space, s->d, ND);
        return;
    }
    size_t gemmk = fresh ? (!daecl__ocl_tune_is_cpu(o) && daecl__ocl_tune_random(rng) % 4 == 0)
                         : s->x[X_GEMMK];
    const choices *sp = x_space_of(o, gemmk);
    if (!sp) /* a GEMMK this device does not try: start afresh at 0 */
        sp = x0_space, fresh = 1;
    if (fresh)
        random_values(rng, sp, s->x, NX);
    else
        mutate(rng, sp, s->x, NX);
}

/* ---- what CLBlast holds -------------------------------------------------------------- */

/* CLBlast keeps overridden parameters per cl_device_id for the rest of the
 * process, for every context, and has no C call that reads or restores its
 * built-in ones: once daecl has changed them for a device, CLBlast's
 * defaults cannot run on it again in this process. A GEMM is correct with
 * any valid set, so a stale entry here costs speed, never results. */
enum { MAX_HELD = 16 };
typedef struct held {
    cl_device_id dev;
    int touched; /* daecl has overridden this device's parameters */
    int known;   /* set is what CLBlast holds now */
    daecl__ocl_tset set;
} held;
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static held held_devs[MAX_HELD];
static size_t n_held;

/* The entry of dev (added when missing), or NULL when the table is full.
 * Call with held_lock. */
static held *held_for(cl_device_id dev)
{
    for (size_t i = 0; i < n_held; i++)
        if (held_devs[i].dev == dev)
            return &held_devs[i];
    if (n_held == MAX_HELD)
        return NULL;
    held *h = &held_devs[n_held++];
    memset(h, 0, sizeof *h);
    h->dev = dev;
    return h;
}

/* Whether CLBlast's built-in parameters are gone for dev in this process. */
int daecl__ocl_tune_defaults_gone(cl_device_id dev)
{
    pthread_mutex_lock(&held_lock);
    held *h = held_for(dev);
    int gone = !h || h->touched;
    pthread_mutex_unlock(&held_lock);
    return gone;
}

static int override(daecl__ocl *o, const char *kernel, const char *const *names,
                    const size_t *values, size_t n, daecl_err *err)
{
    CLBlastStatusCode st = CLBlastOverrideParameters(o->device, kernel, CLBlastPrecisionSingle, n,
                                                     (const char **)names, values);
    return DAECL__OCL_CHECK(o, st, "CLBlastOverrideParameters", kernel, err);
}

/* Makes CLBlast run set s on o's device (nothing to do when it does). */
int daecl__ocl_tune_hold(daecl__ocl *o, const daecl__ocl_tset *s, daecl_err *err)
{
    static const char *const routine[1] = {"XGEMM_MIN_INDIRECT_SIZE"};
    /* CLBlast runs XgemmDirect when m n k < size^3: 2^60 covers every GEMM,
     * 1 none. */
    const size_t min_indirect = s->direct ? (size_t)1 << 20 : 1;
    int rc = 0;
    pthread_mutex_lock(&held_lock);
    held *h = held_for(o->device);
    if (!h || !h->known || !daecl__ocl_tset_equal(&h->set, s)) {
        if (h) {
            h->touched = 1;
            h->known = 0; /* until all three are in */
        }
        if (!(rc = override(o, "Xgemm", x_names, s->x, NX, err)) &&
            !(rc = override(o, "XgemmDirect", d_names, s->d, ND, err)) &&
            !(rc = override(o, "GemmRoutine", routine, &min_indirect, 1, err)) && h) {
            h->set = *s;
            h->known = 1;
        }
    }
    pthread_mutex_unlock(&held_lock);
    return rc;
}

/* ---- the tuning of one device ---------------------------------------------------------- */

static daecl__ocl_tshape *find_shape(daecl__ocl_tuning *tu, int ta, int tb, uint64_t m, uint64_t n,
                                     uint64_t k)
{
    /* Linear: at most MAX_SHAPES compares per GEMM, against microseconds to
     * milliseconds of GEMM. */
    for (int i = 0; i < tu->n_shapes; i++) {
        daecl__ocl_tshape *s = &tu->shapes[i];
        if (s->ta == (uint32_t)ta && s->tb == (uint32_t)tb && s->m == m && s->n == n && s->k == k)
            return s;
    }
    return NULL;
}

static const char *layout_word(daecl__ocl_gemm_by by)
{
    return by == DAECL__GEMM_BY_CLBLAST_COL ? "column-major" : "row-major";
}

int daecl__ocl_tune_cpuvar(daecl__ocl_tuning *tu, const daecl__ocl_cpuvar *v)
{
    for (int i = 0; i < tu->n_cpuvars; i++)
        if (daecl__ocl_cpuvar_equal(&tu->cpuvars[i], v))
            return i;
    if (tu->n_cpuvars == DAECL__OCL_MAX_CPU_GEMM)
        return -1;
    tu->cpuvars[tu->n_cpuvars] = *v;
    return tu->n_cpuvars++;
}

/* The route in words, as daecl_gemm_shape.choice and log lines say it. */
void daecl__ocl_tune_describe_route(const daecl__ocl_tuning *tu, const daecl__ocl_route *r,
                                    char *out, size_t n)
{
    char var[64];
    if (r->by == DAECL__GEMM_BY_DAECL)
        snprintf(out, n, "daecl's kernel");
    else if (r->by == DAECL__GEMM_BY_DAECL_CPU && tu && r->set >= 0 && r->set < tu->n_cpuvars) {
        daecl__ocl_cpuvar_describe(&tu->cpuvars[r->set], var, sizeof var);
        snprintf(out, n, "daecl's CPU kernel %s", var);
    } else if (r->by == DAECL__GEMM_BY_DAECL_CPU)
        snprintf(out, n, "daecl's CPU kernel");
    else if (r->set < 0)
        snprintf(out, n, "CLBlast, built-in parameters, %s", layout_word(r->by));
    else
        snprintf(out, n, "CLBlast, tuned set %d (%s), %s", r->set,
                 tu && tu->sets[r->set].direct ? "direct" : "indirect", layout_word(r->by));
}

/* ---- the tuning file ----------------------------------------------------------------- */

/* What a file is keyed by: the device, its driver and platform, and CLBlast
 * (from its header: the C API cannot report the library's version). */
enum { N_IDENT = 6 };
typedef struct ident {
    const char *key;
    char value[256];
} ident;

/* Control characters would break the line format (spaces instead), and the
 * reader drops trailing spaces. */
static void clean_copy(char *out, size_t n, const char *s)
{
    size_t j = 0;
    for (; s && *s && j + 1 < n; s++)
        out[j++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
    while (j > 0 && out[j - 1] == ' ')
        j--;
    out[j] = '\0';
}

static void identity(const daecl__ocl *o, ident id[N_IDENT])
{
    static const char *const keys[N_IDENT] = {"device",   "device_version",   "driver",
                                              "platform", "platform_version", "clblast"};
    const char *values[N_IDENT] = {o->info.name,     o->device_version,   o->info.driver,
                                   o->info.platform, o->platform_version, ""};
    for (int i = 0; i < N_IDENT; i++) {
        id[i].key = keys[i];
        clean_copy(id[i].value, sizeof id[i].value, values[i]);
    }
    snprintf(id[N_IDENT - 1].value, sizeof id[N_IDENT - 1].value, "%d.%d.%d", CLBLAST_VERSION_MAJOR,
             CLBLAST_VERSION_MINOR, CLBLAST_VERSION_PATCH);
}

/* cache_dir/clblast-tuning/<device name>-<hash of the identity>.txt; -1
 * when caching is off or the path does not fit. */
static int tuning_path(const daecl__ocl *o, char *path, size_t n)
{
    const char *cache = o->host && o->host->cache_dir ? o->host->cache_dir() : NULL;
    if (!cache)
        return -1;
    ident id[N_IDENT];
    identity(o, id);
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a: names a file, the file checks the rest */
    for (int i = 0; i < N_IDENT; i++)
        for (const char *c = id[i].value;; c++) {
            h = (h ^ (unsigned char)*c) * 0x100000001b3u;
            if (!*c)
                break;
        }
    char name[49];
    size_t j = 0;
    for (const char *c = o->info.name; *c && j < sizeof name - 1; c++) {
        int keep = isalnum((unsigned char)*c) || *c == '_' || *c == '.';
        if (keep)
            name[j++] = *c;
        else if (j > 0 && name[j - 1] != '-')
            name[j++] = '-';
    }
    name[j] = '\0';
    int len = snprintf(path, n, "%s/clblast-tuning/%s%s%016llx.txt", cache, name,
                       j > 0 && name[j - 1] != '-' ? "-" : "", (unsigned long long)h);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

int daecl__ocl_tune_can_store(const daecl__ocl *o)
{
    char path[sizeof o->tuning->path];
    return tuning_path(o, path, sizeof path) == 0 && o->host->write_file_atomic != NULL;
}

/* A bounded text buffer: appends past the end are dropped and flagged. */
typedef struct text {
    char *p;
    size_t n, cap;
    int overflow;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= t->cap - t->n)
        t->overflow = 1;
    else
        t->n += (size_t)len;
}

static void put_route(text *t, const daecl__ocl_tuning *tu, const daecl__ocl_route *r)
{
    char var[64];
    if (r->by == DAECL__GEMM_BY_DAECL) {
        put(t, "use = daecl\n");
    } else if (r->by == DAECL__GEMM_BY_DAECL_CPU) {
        daecl__ocl_cpuvar_describe(&tu->cpuvars[r->set], var, sizeof var);
        put(t, "use = daecl cpu %s\n", var);
    }
    else if (r->set < 0)
        put(t, "use = clblast defaults %s\n", layout_word(r->by));
    else
        put(t, "use = clblast set %d %s\n", r->set, layout_word(r->by));
}

/* The file's text (see docs/config.md). */
static void tuning_text(const daecl__ocl *o, const daecl__ocl_tuning *tu, text *t)
{
    ident id[N_IDENT];
    identity(o, id);
    put(t, "# daecl: how each GEMM shape runs on one OpenCL device (CLBlast's parameters,\n"
           "# daecl's kernels), as `daecl tune` measured it. daecl applies it on every run\n"
           "# on this device, driver and CLBlast; delete this file to go back to the\n"
           "# untuned choice (docs/config.md, backend.gemm).\n"
           "format = 2\n");
    for (int i = 0; i < N_IDENT; i++)
        put(t, "%s = %s\n", id[i].key, id[i].value);
    for (int s = 0; s < tu->n_sets; s++) {
        const daecl__ocl_tset *set = &tu->sets[s];
        put(t, "\n[set %d]\nkernel = %s\nXgemm =", s, set->direct ? "direct" : "indirect");
        for (int i = 0; i < NX; i++)
            put(t, " %s=%zu", x_names[i], set->x[i]);
        put(t, "\nXgemmDirect =");
        for (int i = 0; i < ND; i++)
            put(t, " %s=%zu", d_names[i], set->d[i]);
        put(t, "\n");
    }
    put(t, "\n# For GEMM shapes not listed below.\n[default]\n");
    put_route(t, tu, &tu->dflt);
    for (int i = 0; i < tu->n_shapes; i++) {
        const daecl__ocl_tshape *s = &tu->shapes[i];
        put(t, "\n[gemm ta=%u tb=%u m=%llu n=%llu k=%llu]\n", s->ta, s->tb,
            (unsigned long long)s->m, (unsigned long long)s->n, (unsigned long long)s->k);
        put_route(t, tu, &s->r);
        put(t, "gflops = %.4g\ngflops_untuned = %.4g\ngflops_daecl = %.4g\n", s->gflops,
            s->gflops_untuned, s->gflops_daecl);
        if (s->gflops_daecl_cpu > 0)
            put(t, "gflops_daecl_cpu = %.4g\n", s->gflops_daecl_cpu);
    }
}

int daecl__ocl_tune_store(daecl__ocl *o, daecl__ocl_tuning *tu, daecl_err *err)
{
    if (tuning_path(o, tu->path, sizeof tu->path) != 0)
        return daecl__ocl_fail(o->host, err, DAECL_EIO,
                               "GEMM tuning: the cache folder's path is too long for the tuning "
                               "file; set DAECL_CACHE_DIR to a shorter folder");
    text t = {malloc(MAX_FILE_BYTES), 0, MAX_FILE_BYTES, 0};
    if (!t.p)
        return daecl__ocl_fail(o->host, err, DAECL_ENOMEM, "GEMM tuning: out of memory");
    tuning_text(o, tu, &t);
    int rc = t.overflow
                 ? daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                                   "GEMM tuning: the tuning file outgrew %d bytes; " DAECL__OCL_BUG,
                                   MAX_FILE_BYTES)
                 : o->host->write_file_atomic(tu->path, t.p, t.n, "the GEMM tuning file", err);
    free(t.p);
    return rc;
}

/* ---- reading it back ---- */

typedef struct parser {
    const daecl__ocl *o;
    daecl__ocl_tuning *tu;
    int line;
    char why[200];
} parser;

__attribute__((format(printf, 2, 3))) static int bad(parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    return -1;
}

/* A whole decimal number (no sign, no trailing text) into *v. */
static int parse_uint(const char *s, uint64_t max, uint64_t *v)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    uint64_t x = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (x > (max - (uint64_t)(*s - '0')) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    if (*s)
        return -1;
    *v = x;
    return 0;
}

/* "NAME=V NAME=V ..." with each of the n names exactly once. */
static int parse_params(parser *p, char *list, const char *const *names, int n, size_t *out,
                        const char *kernel)
{
    int seen[NX] = {0};
    for (char *save = NULL, *tok = strtok_r(list, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return bad(p, "'%.40s' in %s is not NAME=VALUE", tok, kernel);
        *eq = '\0';
        int i = 0;
        while (i < n && strcmp(names[i], tok) != 0)
            i++;
        uint64_t v;
        if (i == n)
            return bad(p, "%s has no parameter '%.40s'", kernel, tok);
        if (seen[i]++)
            return bad(p, "%s sets %s twice", kernel, tok);
        if (parse_uint(eq + 1, 1u << 20, &v) != 0)
            return bad(p, "%s=%.40s is not a whole number", tok, eq + 1);
        out[i] = (size_t)v;
    }
    for (int i = 0; i < n; i++)
        if (!seen[i])
            return bad(p, "%s lacks %s", kernel, names[i]);
    return 0;
}

/* "daecl" | "daecl cpu MR=.. NV=.. VW=.. KU=.." | "clblast defaults LAYOUT" |
 * "clblast set N LAYOUT". */
static int parse_route(parser *p, char *v, daecl__ocl_route *r)
{
    if (strncmp(v, "daecl cpu ", 10) == 0) {
        daecl__ocl_cpuvar var;
        if (daecl__ocl_cpuvar_parse(v + 10, &var) != 0)
            return bad(p, "'daecl cpu %.40s' is not a CPU GEMM variant (MR=4 NV=2 VW=16 KU=1: "
                          "MR 1-8, NV 1-4, MR NV at most 32, VW 4, 8 or 16, KU 1, 2 or 4)",
                       v + 10);
        r->by = DAECL__GEMM_BY_DAECL_CPU;
        if ((r->set = daecl__ocl_tune_cpuvar(p->tu, &var)) < 0)
            return bad(p, "more than %d CPU GEMM variants", DAECL__OCL_MAX_CPU_GEMM);
        return 0;
    }
    char *save = NULL, *w[4] = {NULL};
    int n = 0;
    for (char *tok = strtok_r(v, " ", &save); tok && n < 4; tok = strtok_r(NULL, " ", &save))
        w[n++] = tok;
    if (n == 1 && strcmp(w[0], "daecl") == 0) {
        r->by = DAECL__GEMM_BY_DAECL;
        r->set = -1;
        return 0;
    }
    const char *layout = n == 3 ? w[2] : n == 4 ? w[3] : "";
    uint64_t set = 0;
    int ok = n >= 3 && strcmp(w[0], "clblast") == 0 &&
             ((n == 3 && strcmp(w[1], "defaults") == 0) ||
              (n == 4 && strcmp(w[1], "set") == 0 && parse_uint(w[2], MAX_SETS - 1, &set) == 0));
    if (ok && strcmp(layout, "row-major") == 0)
        r->by = DAECL__GEMM_BY_CLBLAST_ROW;
    else if (ok && strcmp(layout, "column-major") == 0)
        r->by = DAECL__GEMM_BY_CLBLAST_COL;
    else
        return bad(p, "'use' is not 'daecl', 'daecl cpu VARIANT', 'clblast defaults LAYOUT' or "
                      "'clblast set N LAYOUT'");
    r->set = n == 4 ? (int)set : -1;
    return 0;
}

enum { SEC_HEAD, SEC_SET, SEC_DEFAULT, SEC_GEMM };

typedef struct section {
    int kind, have_kernel, have_x, have_d, have_use;
} section;

/* Checks the section that just ended. */
static int end_section(parser *p, const section *s)
{
    daecl__ocl_tuning *tu = p->tu;
    if (s->kind == SEC_SET) {
        const daecl__ocl_tset *set = &tu->sets[tu->n_sets - 1];
        if (!s->have_kernel || !s->have_x || !s->have_d)
            return bad(p, "[set %d] needs kernel, Xgemm and XgemmDirect", tu->n_sets - 1);
        if (!daecl__ocl_tset_valid(p->o, set))
            return bad(p, "[set %d] breaks CLBlast's constraints or the device's limits",
                       tu->n_sets - 1);
    }
    if ((s->kind == SEC_DEFAULT || s->kind == SEC_GEMM) && !s->have_use)
        return bad(p, "a section lacks 'use'");
    return 0;
}

static int parse_section(parser *p, char *name, section *s, ident *id, int *seen_id,
                         int *have_default)
{
    daecl__ocl_tuning *tu = p->tu;
    if (s->kind == SEC_HEAD) {
        if (!seen_id[N_IDENT])
            return bad(p, "no 'format = ...' line");
        for (int i = 0; i < N_IDENT; i++)
            if (!seen_id[i])
                return bad(p, "no '%s' line", id[i].key);
    } else if (end_section(p, s) != 0) {
        return -1;
    }
    memset(s, 0, sizeof *s);
    unsigned long long m, n, k;
    unsigned ta, tb;
    int used = 0, set = 0;
    if (sscanf(name, "set %d%n", &set, &used) == 1 && name[used] == '\0') {
        if (set != tu->n_sets || tu->n_sets == MAX_SETS)
            return bad(p, "[set %d] is out of order or one too many (at most %d)", set, MAX_SETS);
        s->kind = SEC_SET;
        tu->n_sets++;
    } else if (strcmp(name, "default") == 0) {
        if ((*have_default)++)
            return bad(p, "two [default] sections");
        s->kind = SEC_DEFAULT;
    } else if (sscanf(name, "gemm ta=%u tb=%u m=%llu n=%llu k=%llu%n", &ta, &tb, &m, &n, &k,
                      &used) == 5 &&
               name[used] == '\0') {
        if (ta > 1 || tb > 1 || m == 0 || n == 0 || k == 0 || m > INT_MAX || n > INT_MAX ||
            k > INT_MAX)
            return bad(p, "[%.60s] is not a GEMM shape daecl runs", name);
        if (find_shape(tu, (int)ta, (int)tb, m, n, k))
            return bad(p, "[%.60s] comes twice", name);
        if (tu->n_shapes == MAX_SHAPES)
            return bad(p, "more than %d shapes", MAX_SHAPES);
        daecl__ocl_tshape *sh = &tu->shapes[tu->n_shapes++];
        memset(sh, 0, sizeof *sh);
        sh->ta = ta, sh->tb = tb, sh->m = m, sh->n = n, sh->k = k;
        s->kind = SEC_GEMM;
    } else {
        return bad(p, "unknown section [%.60s]", name);
    }
    return 0;
}

static int parse_number(parser *p, const char *key, const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < 0)
        return bad(p, "%s = %.40s is not a number", key, v);
    *out = x;
    return 0;
}

static int parse_line(parser *p, char *key, char *v, section *s, ident *id, int *seen_id)
{
    daecl__ocl_tuning *tu = p->tu;
    switch (s->kind) {
    case SEC_HEAD:
        if (strcmp(key, "format") == 0) {
            /* Format 1 (before daecl's CPU kernels) reads as a subset of 2. */
            if (strcmp(v, "1") != 0 && strcmp(v, "2") != 0)
                return bad(p, "format %.20s is neither format 1 nor 2 (written by another "
                              "daecl)",
                           v);
            seen_id[N_IDENT] = 1;
            return 0;
        }
        for (int i = 0; i < N_IDENT; i++)
            if (strcmp(key, id[i].key) == 0) {
                if (strcmp(v, id[i].value) != 0)
                    return bad(p, "it was written for %s '%.60s', not '%.60s'", key, v,
                               id[i].value);
                seen_id[i] = 1;
                return 0;
            }
        break;
    case SEC_SET: {
        daecl__ocl_tset *set = &tu->sets[tu->n_sets - 1];
        if (strcmp(key, "kernel") == 0) {
            if (strcmp(v, "direct") != 0 && strcmp(v, "indirect") != 0)
                return bad(p, "kernel = %.20s is neither direct nor indirect", v);
            set->direct = strcmp(v, "direct") == 0;
            s->have_kernel = 1;
            return 0;
        }
        if (strcmp(key, "Xgemm") == 0) {
            s->have_x = 1;
            return parse_params(p, v, x_names, NX, set->x, "Xgemm");
        }
        if (strcmp(key, "XgemmDirect") == 0) {
            s->have_d = 1;
            return parse_params(p, v, d_names, ND, set->d, "XgemmDirect");
        }
        break;
    }
    case SEC_DEFAULT:
    case SEC_GEMM: {
        daecl__ocl_route *r = s->kind == SEC_DEFAULT ? &tu->dflt : &tu->shapes[tu->n_shapes - 1].r;
        if (strcmp(key, "use") == 0) {
            s->have_use = 1;
            return parse_route(p, v, r);
        }
        if (s->kind == SEC_GEMM) {
            daecl__ocl_tshape *sh = &tu->shapes[tu->n_shapes - 1];
            if (strcmp(key, "gflops") == 0)
                return parse_number(p, key, v, &sh->gflops);
            if (strcmp(key, "gflops_untuned") == 0)
                return parse_number(p, key, v, &sh->gflops_untuned);
            if (strcmp(key, "gflops_daecl") == 0)
                return parse_number(p, key, v, &sh->gflops_daecl);
            if (strcmp(key, "gflops_daecl_cpu") == 0)
                return parse_number(p, key, v, &sh->gflops_daecl_cpu);
        }
        break;
    }
    }
    return bad(p, "unknown key '%.40s'", key);
}

/* Reads the file's text (modified in place) into p->tu; -1 with p->why and
 * p->line on any problem. */
static int parse_tuning(parser *p, char *textp)
{
    ident id[N_IDENT];
    identity(p->o, id);
    int seen_id[N_IDENT + 1] = {0}; /* the last: format */
    int have_default = 0;
    section s = {SEC_HEAD, 0, 0, 0, 0};
    p->line = 0;
    for (char *line = textp, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        p->line++;
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        if (line[0] == '[') {
            if (line[len - 1] != ']')
                return bad(p, "a section header without ']'");
            line[len - 1] = '\0';
            if (parse_section(p, line + 1, &s, id, seen_id, &have_default) != 0)
                return -1;
            continue;
        }
        char *eq = strstr(line, " = ");
        if (!eq)
            return bad(p, "not 'key = value'");
        *eq = '\0';
        if (parse_line(p, line, eq + 3, &s, id, seen_id) != 0)
            return -1;
    }
    p->line++; /* problems found at the end point past the last line */
    if (s.kind == SEC_HEAD)
        return bad(p, "the file ends before any section");
    if (end_section(p, &s) != 0)
        return -1;
    daecl__ocl_tuning *tu = p->tu;
    if (!have_default)
        return bad(p, "no [default] section");
    if (tu->dflt.by == DAECL__GEMM_BY_DAECL || tu->dflt.by == DAECL__GEMM_BY_DAECL_CPU)
        return bad(p, "[default] must use CLBlast");
    /* Once a set is held, CLBlast's defaults are gone for the process. */
    for (int i = -1; i < tu->n_shapes; i++) {
        const daecl__ocl_route *r = i < 0 ? &tu->dflt : &tu->shapes[i].r;
        if (r->by == DAECL__GEMM_BY_DAECL || r->by == DAECL__GEMM_BY_DAECL_CPU)
            continue;
        if (r->set >= tu->n_sets)
            return bad(p, "'use' names set %d, but there are %d", r->set, tu->n_sets);
        if (r->set < 0 && tu->n_sets > 0)
            return bad(p, "'clblast defaults' cannot be mixed with tuned sets");
    }
    return 0;
}

/* Reads path into a malloc'd NUL-terminated buffer; NULL with *why. */
static char *read_text(const char *path, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = "no such file";
        return NULL;
    }
    char *buf = malloc(MAX_FILE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_FILE_BYTES + 1, f) : 0;
    int err = !buf || ferror(f);
    fclose(f);
    if (err || n > MAX_FILE_BYTES || memchr(buf, '\0', n)) {
        *why = err ? "unreadable" : n > MAX_FILE_BYTES ? "too large" : "not text";
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static int uses_daecl(const daecl__ocl_tuning *tu)
{
    for (int i = 0; i < tu->n_shapes; i++)
        if (tu->shapes[i].r.by == DAECL__GEMM_BY_DAECL)
            return 1;
    return 0;
}

/* Builds the CPU kernel variants tu routes to (from the program cache,
 * after the first run) and notes their indices. */
static int build_cpuvars(daecl__ocl *o, daecl__ocl_tuning *tu, daecl_err *err)
{
    int rc = 0;
    for (int i = 0; i < tu->n_cpuvars && !rc; i++)
        rc = daecl__ocl_gemm_cpu_get(o, &tu->cpuvars[i], &tu->cpu_built[i], err);
    return rc;
}

void daecl__ocl_tune_open(daecl__ocl *o)
{
    char path[sizeof o->tuning->path];
    if (o->gemm_mode != DAECL__GEMM_CLBLAST || tuning_path(o, path, sizeof path) != 0)
        return; /* CLBlast does not run, or caching is off (DAECL_CACHE=0) */
    const char *why = NULL;
    char *textp = read_text(path, &why);
    if (!textp) {
        daecl__ocl_say(o, DAECL_LOG_DEBUG,
                       "no GEMM tuning for %s (%s: %s): %s; `daecl tune CONFIG` makes one",
                       o->info.name, path, why,
                       o->cpu_auto ? "daecl's CPU kernel" : "CLBlast's built-in parameters");
        return;
    }
    daecl__ocl_tuning *tu = calloc(1, sizeof *tu);
    parser p = {.o = o, .tu = tu};
    daecl_err e = {0};
    if (!tu) {
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "GEMM tuning %s ignored: out of memory", path);
    } else if (parse_tuning(&p, textp) != 0) {
        daecl__ocl_say(o, DAECL_LOG_DEBUG,
                       "GEMM tuning %s ignored (line %d: %s); run `daecl tune CONFIG` "
                       "again",
                       path, p.line, p.why);
    } else if (uses_daecl(tu) && o->choice.gemm != DAECL__GEMM_ASK_CLBLAST &&
               daecl__ocl_gemm_init(o, &e) != 0) {
        daecl__ocl_say(o, DAECL_LOG_DEBUG,
                       "GEMM tuning %s ignored: it runs daecl's GEMM kernel, which "
                       "does not build: %s",
                       path, e.msg);
    } else if (o->choice.gemm != DAECL__GEMM_ASK_CLBLAST && build_cpuvars(o, tu, &e) != 0) {
        daecl__ocl_say(o, DAECL_LOG_DEBUG,
                       "GEMM tuning %s ignored: it runs daecl's CPU GEMM kernels, which do "
                       "not build: %s",
                       path, e.msg);
    } else {
        snprintf(tu->path, sizeof tu->path, "%s", path);
        o->tuning = tu;
        tu = NULL;
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "GEMM tuning from %s: %d shapes, %d parameter sets",
                       o->tuning->path, o->tuning->n_shapes, o->tuning->n_sets);
    }
    free(tu);
    free(textp);
}

void daecl__ocl_tune_release(daecl__ocl *o)
{
    free(o->tuning);
    o->tuning = NULL;
}

int daecl__ocl_tune_route(daecl__ocl *o, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                          daecl__ocl_gemm_by *by, int *cpu, daecl_err *err)
{
    daecl__ocl_tuning *tu = o->tuning;
    *by = DAECL__GEMM_BY_CLBLAST_ROW;
    daecl__ocl_tshape *s = tu ? find_shape(tu, trans_a, trans_b, m, n, k) : NULL;
    if (!s && o->cpu_auto) { /* auto on a CPU device: daecl's CPU kernel where untuned */
        *by = DAECL__GEMM_BY_DAECL_CPU;
        *cpu = o->cpu_gemm_fixed;
        return 0;
    }
    if (!tu)
        return 0;
    const daecl__ocl_route *r = &tu->dflt;
    if (s) {
        r = &s->r;
        if (!s->logged) {
            char how[96];
            daecl__ocl_tune_describe_route(tu, r, how, sizeof how);
            daecl__ocl_say(o, DAECL_LOG_DEBUG,
                           "GEMM ta=%d tb=%d m=%zu n=%zu k=%zu runs on %s (tuned)", trans_a,
                           trans_b, m, n, k, how);
            s->logged = 1;
        }
    }
    /* `gemm: clblast` asks for CLBlast at every shape. */
    int daecl = r->by == DAECL__GEMM_BY_DAECL || r->by == DAECL__GEMM_BY_DAECL_CPU;
    if (daecl && o->choice.gemm == DAECL__GEMM_ASK_CLBLAST)
        r = &tu->dflt, daecl = 0;
    if (r->by == DAECL__GEMM_BY_DAECL_CPU)
        *cpu = tu->cpu_built[r->set];
    if (!daecl && r->set >= 0) {
        int rc = daecl__ocl_tune_hold(o, &tu->sets[r->set], err);
        if (rc)
            return rc;
    }
    *by = r->by;
    return 0;
}

const char *daecl__ocl_tune_file(const daecl__ocl *o)
{
    return o->tuning ? o->tuning->path : NULL;
}
