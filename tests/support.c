/* daecl tests — shared helpers (support.h). */
#include "tests/support.h"

#include "core/config.h"

#include "core/draw.h"
#include "core/safetensors.h"
#include "core/train.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* cairo and fontconfig keep font caches until exit, which LeakSanitizer
 * reports in every test that draws a run's pictures: release them first
 * (atexit handlers run before LSan's exit-time check). */
__attribute__((constructor)) static void release_picture_caches_at_exit(void)
{
    atexit(daecl_draw_release_caches);
}

static daecl_registry *registry;

static void free_registry(void)
{
    daecl_registry_destroy(registry);
    registry = NULL;
}

const daecl_registry *test_registry(void)
{
    if (!registry) {
        daecl_err err = {0};
        if (daecl_registry_create(DAECL_TEST_PLUGIN_DIR, &registry, &err) != 0)
            fail_msg("registry: %s", err.msg);
        atexit(free_registry);
    }
    return registry;
}

const daecl_plugin *test_plugin(daecl_plugin_kind kind, const char *name)
{
    const daecl_plugin *p = daecl_registry_find(test_registry(), kind, name, NULL);
    if (!p)
        fail_msg("plugin %s/%s not found in %s", daecl_plugin_kind_name(kind), name,
                 DAECL_TEST_PLUGIN_DIR);
    return p;
}

static daecl_param_value default_values[64];

const daecl_param_value *test_default_values(const daecl_plugin *plugin)
{
    assert_true(plugin->n_params <= 64);
    daecl_plugin_defaults(plugin, default_values); /* the core's one resolver */
    return default_values;
}

int test_list_devices(const daecl_backend_ops *ops, daecl_device_info *out, size_t max,
                      size_t *n, daecl_err *err)
{
    const daecl_ext_devices *ext = daecl_backend_extension(
        ops, DAECL_EXT_DEVICES, offsetof(daecl_ext_devices, list_devices) + sizeof(void *));
    if (!ext || !ext->list_devices)
        fail_msg("the backend has no %s extension", DAECL_EXT_DEVICES);
    return ext->list_devices(daecl_host_table(), out, sizeof *out, max, n, err);
}

size_t test_pack_params(const daecl_plugin *plugin, float *packed, size_t n_overrides, ...)
{
    const daecl_param_value *defs = test_default_values(plugin);
    daecl_param_value values[64];
    memcpy(values, defs, sizeof(values[0]) * plugin->n_params);
    va_list ap;
    va_start(ap, n_overrides);
    for (size_t k = 0; k < n_overrides; k++) {
        const char *name = va_arg(ap, const char *);
        double v = va_arg(ap, double);
        uint32_t i;
        for (i = 0; i < plugin->n_params; i++)
            if (strcmp(plugin->params[i].name, name) == 0)
                break;
        if (i == plugin->n_params)
            fail_msg("plugin %s has no parameter %s", plugin->name, name);
        values[i].num[0] = v;
    }
    va_end(ap);
    return daecl_params_pack(plugin->params, plugin->n_params, values, packed);
}

char *test_tmpdir(const char *tag)
{
    static unsigned counter;
    char path[1024];
    for (;;) {
        snprintf(path, sizeof path, "%s/%s-%ld-%u", DAECL_TEST_TMP_DIR, tag, (long)getpid(),
                 counter++);
        if (mkdir(path, 0700) == 0)
            break;
        if (errno != EEXIST)
            fail_msg("mkdir %s: %s", path, strerror(errno));
    }
    char *out = strdup(path);
    assert_non_null(out);
    return out;
}

void test_write_file(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    if (n && fwrite(bytes, 1, n, f) != n)
        fail_msg("short write to %s", path);
    assert_int_equal(fclose(f), 0);
}

char *test_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (n)
        *n = len;
    return buf;
}

cJSON *test_read_json(const char *path)
{
    char *text = test_read_file(path, NULL);
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o)
        fail_msg("%s is not JSON", path);
    return o;
}

int test_run(char *const argv[], char *const env[], char **output)
{
    return test_run_fsize(argv, env, 0, output);
}

int test_run_fsize(char *const argv[], char *const env[], rlim_t fsize, char **output)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[1]);
        for (size_t i = 0; env && env[i]; i++)
            putenv(env[i]);
        if (fsize) {
            struct rlimit rl = {fsize, fsize};
            signal(SIGXFSZ, SIG_IGN); /* ignored dispositions survive exec */
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
                _exit(126);
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    ssize_t got;
    while ((got = read(fds[0], buf + len, cap - len)) > 0 || (got < 0 && errno == EINTR)) {
        if (got < 0)
            continue;
        len += (size_t)got;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    close(fds[0]);
    buf[len] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (output)
        *output = buf;
    else
        free(buf);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

void test_write_npy(const char *path, const char *descr, const void *data, size_t n_bytes,
                    const char *shape)
{
    char header[128];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, "
                       "'shape': %s, }", descr, shape);
    assert_true(len > 0 && (size_t)len < sizeof header);
    /* the header, padded with blanks and a newline, ends on a 64-byte boundary */
    size_t pad = (64 - (10 + (size_t)len + 1) % 64) % 64;
    size_t hlen = (size_t)len + pad + 1;
    unsigned char *buf = malloc(10 + hlen + n_bytes);
    assert_non_null(buf);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, header, (size_t)len);
    memset(buf + 10 + len, ' ', pad);
    buf[10 + hlen - 1] = '\n';
    memcpy(buf + 10 + hlen, data, n_bytes);
    test_write_file(path, buf, 10 + hlen + n_bytes);
    free(buf);
}

double test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s += 0x9E3779B97F4A7C15ull;
        uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = lo + (hi - lo) * (float)((double)(z >> 11) * 0x1.0p-53);
    }
}

void test_assert_close(double a, double b, double tol, const char *an, const char *bn,
                       const char *file, int line)
{
    double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
    if (!(fabs(a - b) <= tol * scale)) {
        print_error("%s = %.9g and %s = %.9g differ by more than %g (relative)\n", an, a, bn, b,
                    tol);
        _fail(file, line);
    }
}

double test_checkpoint_rel_diff(const char *da, const char *db)
{
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/checkpoint.safetensors", da);
    snprintf(pb, sizeof pb, "%s/checkpoint.safetensors", db);
    daecl_safetensors *a = NULL, *b = NULL;
    daecl_err err = {0};
    if (daecl_safetensors_read(pa, &a, &err) || daecl_safetensors_read(pb, &b, &err))
        fail_msg("%s", err.msg);
    assert_string_equal(daecl_safetensors_meta(a, "daecl.step"),
                        daecl_safetensors_meta(b, "daecl.step"));
    double worst = 0;
    for (size_t t = 0; t < daecl_safetensors_count(a); t++) {
        const char *name = daecl_safetensors_name_at(a, t);
        uint32_t na, nb;
        uint64_t sa[DAECL_ST_MAX_DIMS], sb[DAECL_ST_MAX_DIMS];
        const float *xa = daecl_safetensors_get(a, name, &na, sa);
        const float *xb = daecl_safetensors_get(b, name, &nb, sb);
        if (!xb || na != nb)
            fail_msg("tensor %s of %s is not in %s alike", name, da, db);
        size_t count = 1;
        for (uint32_t d = 0; d < na; d++)
            count *= sa[d];
        double diff = 0, mx = 0;
        for (size_t i = 0; i < count; i++) {
            double x = xa[i], y = xb[i];
            diff = diff > fabs(x - y) ? diff : fabs(x - y);
            mx = mx > fabs(x) ? mx : fabs(x);
        }
        double rel = mx > 0 ? diff / mx : diff;
        worst = worst > rel ? worst : rel;
    }
    daecl_safetensors_destroy(a);
    daecl_safetensors_destroy(b);
    return worst;
}

void test_same_checkpoints(const char *da, const char *db)
{
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/checkpoint.safetensors", da);
    snprintf(pb, sizeof pb, "%s/checkpoint.safetensors", db);
    daecl_safetensors *a = NULL, *b = NULL;
    daecl_err err = {0};
    if (daecl_safetensors_read(pa, &a, &err) || daecl_safetensors_read(pb, &b, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(daecl_safetensors_count(a), daecl_safetensors_count(b));
    assert_true(daecl_safetensors_count(a) >= 8); /* weights, biases and Adam's m and v */
    for (size_t i = 0; i < daecl_safetensors_count(a); i++) {
        const char *name = daecl_safetensors_name_at(a, i);
        uint32_t na, nb;
        uint64_t sa[DAECL_ST_MAX_DIMS], sb[DAECL_ST_MAX_DIMS];
        const float *ta = daecl_safetensors_get(a, name, &na, sa);
        const float *tb = daecl_safetensors_get(b, name, &nb, sb);
        assert_non_null(tb);
        assert_int_equal(na, nb);
        size_t count = 1;
        for (uint32_t d = 0; d < na; d++)
            count *= sa[d];
        if (memcmp(ta, tb, count * sizeof(float)) != 0)
            fail_msg("tensor %s differs between %s and %s", name, da, db);
    }
    assert_string_equal(daecl_safetensors_meta(a, "daecl.step"),
                        daecl_safetensors_meta(b, "daecl.step"));
    assert_string_equal(daecl_safetensors_meta(a, "daecl.epoch"),
                        daecl_safetensors_meta(b, "daecl.epoch"));
    daecl_safetensors_destroy(a);
    daecl_safetensors_destroy(b);
}

void test_epoch_lines(const char *dir, char *epochs, size_t n, double *last_nll)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = test_read_file(path, NULL);
    epochs[0] = '\0';
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o)
            fail_msg("%s holds a line that is not JSON: %s", path, line);
        if (strcmp(cJSON_GetObjectItem(o, "type")->valuestring, "epoch") == 0) {
            size_t len = strlen(epochs);
            snprintf(epochs + len, n - len, "%d", cJSON_GetObjectItem(o, "epoch")->valueint);
            const cJSON *nll = cJSON_GetObjectItem(o, "train_nll");
            if (nll)
                *last_nll = nll->valuedouble;
        }
        cJSON_Delete(o);
    }
    free(text);
}

double test_act_ref(daecl_act act, double z)
{
    switch (act) {
    case DAECL_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-z));
    case DAECL_ACT_TANH:
        return tanh(z);
    case DAECL_ACT_RELU:
        return z > 0.0 ? z : 0.0;
    default:
        return z;
    }
}

size_t test_epoch_values(const char *dir, const char *key, double *out, size_t max)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = test_read_file(path, NULL);
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o)
            fail_msg("%s holds a line that is not JSON: %s", path, line);
        const cJSON *v = cJSON_GetObjectItem(o, key);
        if (strcmp(cJSON_GetObjectItem(o, "type")->valuestring, "epoch") == 0 &&
            cJSON_IsNumber(v) && n < max)
            out[n++] = v->valuedouble;
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

char *test_small_experiment(const char *tag, const char *train_keys, const char *backend)
{
    char *dir = test_tmpdir(tag);
    char path[1200], text[2048];
    unsigned char idx[12 + 100 * 16] = {0, 0, 0x08, 2, 0, 0, 0, 100, 0, 0, 0, 16};
    for (size_t i = 12; i < sizeof idx; i++)
        idx[i] = (unsigned char)((i * 7919) % 251);
    snprintf(path, sizeof path, "%s/data.idx", dir);
    test_write_file(path, idx, sizeof idx);
    snprintf(text, sizeof text,
             "data: {train: data.idx, test: data.idx, test_limit: 30}\n"
             "model: {encoder: [{units: 6, activation: tanh}]}\n"
             "corruption: {plugin: gaussian, sigma: 0.2}\n"
             "likelihood: bernoulli\n"
             "optimizer: {name: adam, lr: 0.01}\n"
             "train: {epochs: 3, batch_size: 15, log_every: 0%s%s}\n"
             "backend: %s\n",
             train_keys[0] ? ", " : "", train_keys, backend);
    snprintf(path, sizeof path, "%s/exp.yaml", dir);
    test_write_file(path, text, strlen(text));
    return dir;
}

int test_count_entries(const char *dir, char *first, size_t n_first)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0 && first)
            snprintf(first, n_first, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

void test_remove_dir(char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char path[4200];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        if (S_ISDIR(st.st_mode))
            test_remove_dir(strdup(path));
        else
            assert_int_equal(unlink(path), 0);
    }
    closedir(d);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

int test_train_run(const char *dir, const char *run, const char *const *ov, size_t n,
                   daecl_err *err)
{
    char cfg[1200], out[1200];
    snprintf(cfg, sizeof cfg, "%s/exp.yaml", dir);
    snprintf(out, sizeof out, "%s/%s", dir, run);
    daecl_train_opts o = {.config_path = cfg, .overrides = ov, .n_overrides = n, .out_dir = out,
                          .quiet = 1};
    return daecl_train(&o, NULL, 0, err);
}

int test_train_setup(const char *config_path, const char *out_dir)
{
    daecl_train_opts o = {.config_path = config_path, .out_dir = out_dir, .quiet = 1};
    daecl_err err = {0};
    if (daecl_train(&o, NULL, 0, &err)) {
        fprintf(stderr, "train %s: %s\n", config_path, err.msg);
        return -1;
    }
    return 0;
}
