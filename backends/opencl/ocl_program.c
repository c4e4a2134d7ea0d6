/* daecl opencl backend — building programs: the one function every program
 * is built through, the on-disk binary cache (host->cache_dir()/opencl) and
 * the thread that fills it, precompiled binaries (`binaries: DIR`), and the
 * counters of where programs came from. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sha256.h"
#include "ocl.h"

/* No -cl-fast-relaxed-math or finite-math: they would break NaN detection. */
static const char build_options[] = "-cl-std=CL1.2";

/* A program's key is the SHA-256 of a format version, its source, its build
 * options and the device, driver and platform versions, so a binary is only
 * loaded where it was built. File: magic, format version (u32 LE), 4 zero
 * bytes, the key, the binary's size (u64 LE), the binary. Bump the version
 * when the key's inputs or the layout change. */
enum { FORMAT_VERSION = 1, KEY_BYTES = DAECL_SHA256_BYTES, HEADER_BYTES = 8 + 4 + 4 + KEY_BYTES + 8 };
static const char magic[8] = {'D', 'A', 'E', 'C', 'L', 'C', 'L', 'B'};

/* ---- SHA-256 (core/sha256.c, compiled into this plugin) ----------------------- */

/* A length-prefixed field: "ab" + "c" and "a" + "bc" hash apart. */
static void sha_field(daecl_sha256 *s, const char *text, size_t n)
{
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)n >> (8 * i));
    daecl_sha256_update(s, len, sizeof len);
    daecl_sha256_update(s, text, n);
}

/* ---- the key and file names -------------------------------------------------- */

typedef struct prog_key {
    unsigned char bytes[KEY_BYTES];
    char hex[2 * KEY_BYTES + 1];
} prog_key;

static void make_key(const daecl__ocl *o, const char *const *parts, size_t n, prog_key *k)
{
    daecl_sha256 s;
    daecl_sha256_init(&s);
    char version[32];
    int len = snprintf(version, sizeof version, "daecl-opencl-program %d", FORMAT_VERSION);
    sha_field(&s, version, (size_t)len);
    /* The source is the parts' concatenation: hashed as one field. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strlen(parts[i]);
    unsigned char tl[8];
    for (int i = 0; i < 8; i++)
        tl[i] = (unsigned char)((uint64_t)total >> (8 * i));
    daecl_sha256_update(&s, tl, sizeof tl);
    for (size_t i = 0; i < n; i++)
        daecl_sha256_update(&s, parts[i], strlen(parts[i]));
    sha_field(&s, build_options, strlen(build_options));
    sha_field(&s, o->info.name, strlen(o->info.name));
    sha_field(&s, o->device_version, strlen(o->device_version));
    sha_field(&s, o->info.driver, strlen(o->info.driver));
    sha_field(&s, o->platform_version, strlen(o->platform_version));
    daecl_sha256_final(&s, k->bytes);
    daecl_sha256_hex(k->bytes, k->hex);
}

/* dir/<keyhex>.bin into path; -1 when it does not fit. */
static int key_path(const char *dir, const prog_key *k, char *path, size_t n)
{
    int len = snprintf(path, n, "%s/%s.bin", dir, k->hex);
    return len < 0 || (size_t)len >= n ? -1 : 0;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- files ----------------------------------------------------------------------- */

/* Reads the binary of key k from path: *bin (malloc'd) and *n. On any
 * problem returns -1 with *why saying which, for the debug log or for the
 * binaries error. */
static int read_binary(const char *path, const prog_key *k, unsigned char **bin, size_t *n,
                       const char **why)
{
    *bin = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = "no such file";
        return -1;
    }
    unsigned char head[HEADER_BYTES];
    int rc = -1;
    if (fread(head, 1, sizeof head, f) != sizeof head) {
        *why = "truncated header";
        goto done;
    }
    uint32_t version = (uint32_t)head[8] | (uint32_t)head[9] << 8 | (uint32_t)head[10] << 16 |
                       (uint32_t)head[11] << 24;
    uint64_t size = 0;
    for (int i = 0; i < 8; i++)
        size |= (uint64_t)head[16 + KEY_BYTES + i] << (8 * i);
    if (memcmp(head, magic, sizeof magic) != 0) {
        *why = "wrong magic";
        goto done;
    }
    if (version != FORMAT_VERSION) {
        *why = "another format version";
        goto done;
    }
    if (memcmp(head + 16, k->bytes, KEY_BYTES) != 0) {
        *why = "another key";
        goto done;
    }
    if (size == 0 || size > ((uint64_t)1 << 31)) {
        *why = "implausible binary size";
        goto done;
    }
    unsigned char *b = malloc((size_t)size);
    if (!b) {
        *why = "out of memory";
        goto done;
    }
    if (fread(b, 1, (size_t)size, f) != size) {
        free(b);
        *why = "truncated binary";
        goto done;
    }
    *bin = b;
    *n = (size_t)size;
    rc = 0;
done:
    fclose(f);
    return rc;
}

/* The binary of a built program (one device) with our header in front,
 * malloc'd into *out and *n. */
static int program_image(daecl__ocl *o, const char *name, cl_program prog, const prog_key *k,
                         unsigned char **out, size_t *n, daecl_err *err)
{
    size_t size = 0;
    int rc = DAECL__OCL_CHECK(
        o, clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL),
        "clGetProgramInfo", name, err);
    if (rc)
        return rc;
    if (size == 0)
        return daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                               "program '%s' has no binary on %s (its driver returns none), so "
                               "it cannot be saved; this device can only compile from source",
                               name, o->info.name);
    unsigned char *img = malloc(HEADER_BYTES + size);
    if (!img)
        return daecl__ocl_fail(o->host, err, DAECL_ENOMEM,
                               "out of memory saving the %zu-byte binary of program '%s'", size,
                               name);
    unsigned char *bin = img + HEADER_BYTES;
    rc = DAECL__OCL_CHECK(o, clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL),
                          "clGetProgramInfo", name, err);
    if (rc) {
        free(img);
        return rc;
    }
    memcpy(img, magic, sizeof magic);
    for (int i = 0; i < 4; i++)
        img[8 + i] = (unsigned char)((uint32_t)FORMAT_VERSION >> (8 * i));
    memset(img + 12, 0, 4);
    memcpy(img + 16, k->bytes, KEY_BYTES);
    for (int i = 0; i < 8; i++)
        img[16 + KEY_BYTES + i] = (unsigned char)((uint64_t)size >> (8 * i));
    *out = img;
    *n = HEADER_BYTES + size;
    return 0;
}

static int write_image(daecl__ocl *o, const char *name, cl_program prog, const prog_key *k,
                       const char *dir, daecl_err *err)
{
    char path[2048];
    if (key_path(dir, k, path, sizeof path) != 0)
        return daecl__ocl_fail(o->host, err, DAECL_EIO,
                               "the folder '%.300s' for program binaries is too long a path; "
                               "use a shorter one",
                               dir);
    if (!o->host || !o->host->write_file_atomic)
        return daecl__ocl_fail(o->host, err, DAECL_ENOTSUP,
                               "this daecl core cannot write files for plugins (its host table "
                               "has no write_file_atomic); update daecl");
    unsigned char *img = NULL;
    size_t n = 0;
    int rc = program_image(o, name, prog, k, &img, &n, err);
    if (rc)
        return rc;
    char what[160];
    snprintf(what, sizeof what, "the binary of OpenCL program '%s'", name);
    rc = o->host->write_file_atomic(path, img, n, what, err);
    free(img);
    return rc;
}

/* ---- filling the cache in the background ------------------------------------------ */

/* Saving a program can cost more than compiling it: asked for
 * CL_PROGRAM_BINARIES, POCL generates machine code for every kernel of the
 * program (1 to 2 s for daecl-kernels from a cold cache), while the run
 * itself compiles only the kernels it launches, when it first launches
 * them, and POCL makes those launches wait while it writes the binary. So
 * a compiled program is queued, and one thread per process writes the
 * queue into the cache once the device has run a training step
 * (daecl__ocl_program_save_start, from ocl.c's first read or finish after
 * an optimiser update); one, so that two devices of one process never
 * write the same file at once. daecl__ocl_program_wait_saved, at close,
 * starts it if need be and waits: a process that closed its backends has
 * its cache written. One that exits without closing (MPI_Abort) may leave
 * a program unsaved, to be compiled again next time. */
typedef struct save_job {
    struct save_job *next;
    daecl__ocl *o;
    cl_program prog; /* retained for the job */
    prog_key k;
    char name[96];
    char dir[1536];
} save_job;

static pthread_mutex_t save_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t save_changed = PTHREAD_COND_INITIALIZER; /* a job queued or done */
static save_job *save_head, *save_tail;
static int save_busy;    /* jobs queued or being written */
static int save_thread;  /* 1 while the writer runs */
static int save_started; /* daecl__ocl_program_save_start was called */

static void save_now(daecl__ocl *o, const char *name, cl_program prog, const prog_key *k,
                     const char *dir)
{
    double t0 = seconds();
    daecl_err ignored = {0};
    if (write_image(o, name, prog, k, dir, &ignored) != 0)
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "program '%s': not cached: %s", name, ignored.msg);
    else
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "program '%s': cached (%.2f s)", name, seconds() - t0);
}

/* Writes the queue until it is empty, as the one writer (save_thread set
 * meanwhile); called with save_lock held, which it releases while writing. */
static void write_queue(void)
{
    save_thread = 1;
    while (save_head) {
        save_job *j = save_head;
        save_head = j->next;
        if (!save_head)
            save_tail = NULL;
        pthread_mutex_unlock(&save_lock);
        save_now(j->o, j->name, j->prog, &j->k, j->dir);
        clReleaseProgram(j->prog);
        free(j);
        pthread_mutex_lock(&save_lock);
        save_busy--;
    }
    save_thread = 0;
    pthread_cond_broadcast(&save_changed);
}

static void *save_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&save_lock);
    write_queue();
    pthread_mutex_unlock(&save_lock);
    return NULL;
}

/* Has the queue written unless a writer is at it: by a thread of its own,
 * or here when none can be had. With save_lock held. */
static void start_writer(void)
{
    if (save_thread || !save_head)
        return;
    pthread_attr_t attr;
    pthread_t t;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&t, &attr, save_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    if (ok)
        save_thread = 1; /* before the thread takes the lock: no second writer */
    else
        write_queue();
}

/* Queues prog for the cache dir under k, or saves it now when it cannot
 * be queued. */
static void save_later(daecl__ocl *o, const char *name, cl_program prog, const prog_key *k,
                       const char *dir)
{
    save_job *j = calloc(1, sizeof *j);
    if (!j || clRetainProgram(prog) != CL_SUCCESS) {
        free(j);
        save_now(o, name, prog, k, dir);
        return;
    }
    j->o = o;
    j->prog = prog;
    j->k = *k;
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->dir, sizeof j->dir, "%s", dir);
    pthread_mutex_lock(&save_lock);
    if (save_tail)
        save_tail->next = j;
    else
        save_head = j;
    save_tail = j;
    save_busy++;
    if (save_started)
        start_writer();
    pthread_mutex_unlock(&save_lock);
}

void daecl__ocl_program_save_start(void)
{
    pthread_mutex_lock(&save_lock);
    save_started = 1;
    start_writer();
    pthread_mutex_unlock(&save_lock);
}

void daecl__ocl_program_wait_saved(void)
{
    daecl__ocl_program_save_start();
    pthread_mutex_lock(&save_lock);
    while (save_busy > 0 || save_thread)
        pthread_cond_wait(&save_changed, &save_lock);
    save_started = 0; /* the next device opened holds its programs again */
    pthread_mutex_unlock(&save_lock);
}

/* ---- building ------------------------------------------------------------------ */

/* Logs the whole build log, line by line (a log line is short), and puts
 * its start into the error sentence. */
static int build_failed(daecl__ocl *o, const char *name, cl_program prog, int code, int from_binary,
                        const char *const *parts, size_t n_parts, daecl_err *err)
{
    size_t size = 0;
    char *log = NULL;
    if (clGetProgramBuildInfo(prog, o->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size) ==
            CL_SUCCESS &&
        size > 0 && (log = malloc(size + 1)) != NULL) {
        if (clGetProgramBuildInfo(prog, o->device, CL_PROGRAM_BUILD_LOG, size, log, NULL) !=
            CL_SUCCESS)
            size = 0;
        log[size] = '\0';
    }
    if (log && o->host && o->host->log) {
        /* The log's line numbers count in the concatenated parts: say where
         * each starts (a plugin's cl_source is the third of five). */
        char starts[256];
        size_t used_s = 0, line_no = 1;
        starts[0] = '\0';
        for (size_t i = 0; i < n_parts && used_s < sizeof starts; i++) {
            used_s += (size_t)snprintf(starts + used_s, sizeof starts - used_s, "%s%zu",
                                       i ? ", " : "", line_no);
            for (const char *c = parts[i]; *c; c++)
                line_no += *c == '\n';
        }
        o->host->log(DAECL_LOG_ERROR, "opencl",
                     "build log of program '%s' on %s (its source parts start at lines %s):", name,
                     o->info.name, n_parts ? starts : "-");
        for (char *line = log; *line;) {
            size_t len = strcspn(line, "\n");
            if (len > 0)
                o->host->log(DAECL_LOG_ERROR, "opencl", "  %.*s", (int)len, line);
            line += len + (line[len] == '\n');
        }
    }
    /* The first lines of the log, flattened to one line, fit the record. */
    char brief[600];
    size_t used = 0;
    for (const char *p = log ? log : ""; *p && used + 1 < sizeof brief; p++)
        if (*p != '\r')
            brief[used++] = *p == '\n' || *p == '\t' ? ' ' : *p;
    while (used > 0 && brief[used - 1] == ' ')
        used--;
    brief[used] = '\0';
    free(log);
    if (from_binary)
        return daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                               "program '%s' from the binaries folder '%.200s' does not build "
                               "on %s (clBuildProgram: %s)%s%s; run `daecl precompile --out "
                               "DIR` again for this device and driver",
                               name, o->choice.binaries, o->info.name, daecl__ocl_code_name(code),
                               brief[0] ? ": " : "", brief);
    /* A plugin's program is named "corruption/NAME" or "likelihood/NAME". */
    int plugin = strchr(name, '/') != NULL && code != CL_COMPILER_NOT_AVAILABLE;
    return daecl__ocl_fail(o->host, err, plugin ? DAECL_EPLUGIN : DAECL_EDEVICE,
                           "OpenCL program '%s' does not compile on %s (clBuildProgram: %s); %s "
                           "(build log: %s)",
                           name, o->info.name, daecl__ocl_code_name(code),
                           plugin ? "fix the plugin's OpenCL source"
                                  : "update the device's OpenCL driver, or report it as a bug "
                                    "in daecl",
                           brief[0] ? brief : "empty");
}

/* clCreateProgramWithBinary + clBuildProgram; 0 and *out on success, else
 * the CL code (and *out NULL). */
static cl_int from_binary(daecl__ocl *o, const unsigned char *bin, size_t n, cl_program *out)
{
    cl_int status = CL_SUCCESS, rc;
    cl_program prog = clCreateProgramWithBinary(o->context, 1, &o->device, &n, &bin, &status, &rc);
    if (rc == CL_SUCCESS && status != CL_SUCCESS)
        rc = status;
    if (rc != CL_SUCCESS) {
        if (prog)
            clReleaseProgram(prog);
        *out = NULL;
        return rc;
    }
    rc = DAECL__OCL_FAULTY(o, DAECL__FAULT_BUILD,
                           clBuildProgram(prog, 1, &o->device, build_options, NULL, NULL));
    *out = prog;
    return rc;
}

static void count_and_log(daecl__ocl *o, const char *name, const char *how, double t0)
{
    daecl__ocl_say(o, DAECL_LOG_DEBUG, "program '%s': %s (%.2f s)", name, how, seconds() - t0);
}

int daecl__ocl_program_get(daecl__ocl *o, const char *name, const char *const *parts, size_t n,
                           cl_program *out, daecl_err *err)
{
    *out = NULL;
    double t0 = seconds();
    prog_key k;
    make_key(o, parts, n, &k);
    char path[2048];
    unsigned char *bin = NULL;
    size_t n_bin = 0;
    const char *why = NULL;
    cl_program prog = NULL;
    cl_int rc;

    if (o->choice.binaries[0]) {
        /* Never compile: the device may have no compiler (FPGA flow). */
        if (key_path(o->choice.binaries, &k, path, sizeof path) != 0 ||
            read_binary(path, &k, &bin, &n_bin, &why) != 0)
            return daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                                   "program '%s' is not in the binaries folder '%.300s' (%s.bin: "
                                   "%s); run `daecl precompile --out DIR` for this device (%s, "
                                   "driver %s) and set backend.binaries to DIR",
                                   name, o->choice.binaries, k.hex, why ? why : "path too long",
                                   o->info.name, o->info.driver);
        rc = from_binary(o, bin, n_bin, &prog);
        free(bin);
        if (rc != CL_SUCCESS) {
            int status = prog ? build_failed(o, name, prog, rc, 1, NULL, 0, err)
                              : daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                                                "program '%s' from the binaries folder '%.200s' "
                                                "is refused by %s (%s); run `daecl precompile "
                                                "--out DIR` again for this device and driver",
                                                name, o->choice.binaries, o->info.name,
                                                daecl__ocl_code_name(rc));
            if (prog)
                clReleaseProgram(prog);
            return status;
        }
        o->counts.from_binaries++;
        count_and_log(o, name, "loaded from binaries", t0);
        *out = prog;
        return 0;
    }

    const char *cache = o->host && o->host->cache_dir ? o->host->cache_dir() : NULL;
    char cache_dir[1536];
    int have_cache =
        cache && snprintf(cache_dir, sizeof cache_dir, "%s/opencl", cache) < (int)sizeof cache_dir;
    if (have_cache && key_path(cache_dir, &k, path, sizeof path) == 0) {
        /* Any cache problem falls back to compiling, quietly. */
        if (read_binary(path, &k, &bin, &n_bin, &why) == 0) {
            rc = from_binary(o, bin, n_bin, &prog);
            free(bin);
            if (rc == CL_SUCCESS) {
                o->counts.from_cache++;
                count_and_log(o, name, "loaded from cache", t0);
                *out = prog;
                return 0;
            }
            if (prog)
                clReleaseProgram(prog);
            prog = NULL;
            why = daecl__ocl_code_name(rc);
        }
        daecl__ocl_say(o, DAECL_LOG_DEBUG, "program '%s': not from cache %s (%s); compiling", name,
                       path, why);
    }

    if (!o->info.compiler)
        return daecl__ocl_fail(o->host, err, DAECL_EDEVICE,
                               "%s has no OpenCL C compiler, so program '%s' cannot be built; "
                               "run `daecl precompile --out DIR` for this device where it can "
                               "compile, then set backend.binaries to DIR",
                               o->info.name, name);
    size_t lens[16];
    if (n > sizeof lens / sizeof lens[0])
        return daecl__ocl_fail(o->host, err, DAECL_EINVAL,
                               "program '%s' has %zu source parts, more than 16; " DAECL__OCL_BUG,
                               name, n);
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(parts[i]);
    prog = clCreateProgramWithSource(o->context, (cl_uint)n, (const char **)parts, lens, &rc);
    int status = DAECL__OCL_CHECK(o, rc, "clCreateProgramWithSource", name, err);
    if (status)
        return status;
    rc = DAECL__OCL_FAULTY(o, DAECL__FAULT_BUILD,
                           clBuildProgram(prog, 1, &o->device, build_options, NULL, NULL));
    if (rc != CL_SUCCESS) {
        status = build_failed(o, name, prog, rc, 0, parts, n, err);
        clReleaseProgram(prog);
        return status;
    }
    o->counts.compiled++;
    count_and_log(o, name, "compiled from source", t0);
    if (have_cache)
        save_later(o, name, prog, &k, cache_dir);
    *out = prog;
    return 0;
}

int daecl__ocl_program_save(daecl__ocl *o, const char *name, const char *const *parts, size_t n,
                            cl_program prog, const char *dir, daecl_err *err)
{
    prog_key k;
    make_key(o, parts, n, &k);
    return write_image(o, name, prog, &k, dir, err);
}

void daecl__ocl_log_counts(const daecl__ocl *o)
{
    if (o->host && o->host->log)
        o->host->log(DAECL_LOG_DEBUG, "opencl",
                     "programs so far: %u compiled, %u from cache, %u from binaries",
                     o->counts.compiled, o->counts.from_cache, o->counts.from_binaries);
}

/* ---- kernels --------------------------------------------------------------------- */

static size_t floor_pow2(size_t x)
{
    size_t p = 1;
    while (p <= x / 2)
        p *= 2;
    return p;
}

int daecl__ocl_kernel_create(daecl__ocl *o, cl_program prog, const char *name, daecl__ocl_kernel *k,
                             daecl_err *err)
{
    cl_int rc;
    k->name = name;
    k->k = clCreateKernel(prog, name, &rc);
    int status = DAECL__OCL_CHECK(o, rc, "clCreateKernel", name, err);
    if (status) {
        k->k = NULL;
        return status;
    }
    size_t wg = 0;
    status = DAECL__OCL_CHECK(
        o,
        clGetKernelWorkGroupInfo(k->k, o->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof wg, &wg, NULL),
        "clGetKernelWorkGroupInfo", name, err);
    if (status) {
        daecl__ocl_kernel_release(k);
        return status;
    }
    if (wg > o->max_wg)
        wg = o->max_wg;
    if (wg > o->max_item[0])
        wg = o->max_item[0];
    if (wg > 256)
        wg = 256;
    k->wg = floor_pow2(wg ? wg : 1);
    return 0;
}

void daecl__ocl_kernel_release(daecl__ocl_kernel *k)
{
    if (k->k)
        clReleaseKernel(k->k);
    k->k = NULL;
}
