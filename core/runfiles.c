/* daecl — the files of a run folder besides its checkpoint. */
#include "core/runfiles.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsutil.h"

struct daecl_metrics {
    FILE *f;
    char path[PATH_MAX];
};

int daecl_runfiles_make_dir(const char *out, const daecl_config *c, char *run_dir, size_t n,
                            daecl_lock **lock, daecl_err *err)
{
    int rc;
    if (out) {
        if ((size_t)snprintf(run_dir, n, "%s", out) >= n)
            return daecl_err_set(err, DAECL_EUSAGE, "--out %s is too long a path", out);
        return daecl_folder_claim(out, DAECL_FOLDER_RUN, "train", "--out", lock, err);
    }
    if ((rc = daecl_mkdirs(c->output.dir, err)))
        return rc;
    for (unsigned i = 1; i < 100000; i++) {
        char name[DAECL_NAME_MAX + 16];
        if (i == 1)
            snprintf(name, sizeof name, "%s", c->name);
        else
            snprintf(name, sizeof name, "%s-%u", c->name, i);
        if ((rc = daecl_path_join(run_dir, n, c->output.dir, name, err)))
            return rc;
        if (mkdir(run_dir, 0755) == 0)
            return daecl_folder_claim(run_dir, DAECL_FOLDER_RUN, "train", "output.dir", lock, err);
        if (errno != EEXIST) {
            int e = errno;
            return daecl_err_set(err, DAECL_EIO, "cannot create run folder %s: %s; %s",
                                 run_dir, strerror(e), daecl_errno_hint(e));
        }
    }
    return daecl_err_set(err, DAECL_EIO, "cannot find a free run folder name under %s; "
                         "clean it up or set output.dir", c->output.dir);
}

int daecl_runfiles_check_out(const char *out, const daecl_config *c, daecl_err *err)
{
    if (out) {
        if (!out[0])
            return daecl_err_set(err, DAECL_EUSAGE, "--out needs a folder name, not an empty "
                                 "string");
        return daecl_folder_check_new(out, DAECL_FOLDER_RUN, "--out", err);
    }
    /* output.dir itself: a folder (or absent, then made), writable */
    const char *dir = c->output.dir;
    struct stat st;
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return daecl_err_set(err, DAECL_ECONFIG, "output.dir %s is a file, not a folder; set "
                             "output.dir to a folder for the run folders", dir);
    if (stat(dir, &st) == 0 && access(dir, W_OK | X_OK) != 0) {
        int e = errno;
        return daecl_err_set(err, DAECL_ECONFIG, "output.dir %s is not writable (%s); set "
                             "output.dir to a folder you can write, or use --out",
                             dir, strerror(e));
    }
    return 0;
}

int daecl_runfiles_write_config(const char *run_dir, const daecl_config *c, daecl_err *err)
{
    char path[PATH_MAX];
    int rc = daecl_path_join(path, sizeof path, run_dir, "config.yaml", err);
    if (rc)
        return rc;
    char *yaml = daecl_config_to_yaml(c);
    if (!yaml)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
    rc = daecl_write_file_atomic(path, yaml, strlen(yaml), "config", err);
    free(yaml);
    return rc;
}

int daecl_runfiles_write_json(const char *run_dir, const char *name, cJSON *o, const char *what,
                              daecl_err *err)
{
    char path[PATH_MAX];
    int rc = daecl_path_join(path, sizeof path, run_dir, name, err);
    char *s = rc || !o ? NULL : cJSON_Print(o);
    cJSON_Delete(o);
    if (rc)
        return rc;
    if (!s)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing %s", path);
    size_t len = strlen(s);
    s[len] = '\n'; /* cJSON left room for a NUL the file does not need */
    rc = daecl_write_file_atomic(path, s, len + 1, what, err);
    free(s);
    return rc;
}

/* The lines of path with step <= ckpt_step, rewritten atomically. */
static int drop_lines_after(const char *path, uint64_t ckpt_step, daecl_err *err)
{
    FILE *in = fopen(path, "r");
    char *kept = NULL;
    size_t kept_len = 0, cap = 0;
    if (in) {
        char line[8192];
        while (fgets(line, sizeof line, in)) {
            cJSON *o = cJSON_Parse(line);
            const cJSON *s = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
            int keep = cJSON_IsNumber(s) && s->valuedouble <= (double)ckpt_step;
            cJSON_Delete(o);
            if (!keep)
                continue;
            size_t n = strlen(line);
            if (kept_len + n + 1 > cap) {
                cap = (kept_len + n + 1) * 2;
                char *p = realloc(kept, cap);
                if (!p) {
                    free(kept);
                    fclose(in);
                    return daecl_err_set(err, DAECL_ENOMEM, "out of memory reading %s", path);
                }
                kept = p;
            }
            memcpy(kept + kept_len, line, n);
            kept_len += n;
        }
        fclose(in);
    }
    int rc = daecl_write_file_atomic(path, kept ? kept : "", kept_len, "metrics", err);
    free(kept);
    return rc;
}

int daecl_metrics_open(const char *run_dir, int resumed, uint64_t ckpt_step, daecl_metrics **out,
                       daecl_err *err)
{
    *out = NULL;
    daecl_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory opening metrics.jsonl");
    int rc = daecl_path_join(m->path, sizeof m->path, run_dir, "metrics.jsonl", err);
    if (rc || (resumed && (rc = drop_lines_after(m->path, ckpt_step, err))))
        goto fail;
    m->f = fopen(m->path, resumed ? "a" : "w");
    if (!m->f) {
        int e = errno;
        rc = daecl_err_set(err, DAECL_EIO, "cannot open %s: %s; %s", m->path, strerror(e),
                           daecl_errno_hint(e));
        goto fail;
    }
    *out = m;
    return 0;
fail:
    daecl_metrics_close(m);
    return rc;
}

void daecl_metrics_close(daecl_metrics *m)
{
    if (!m)
        return;
    if (m->f)
        fclose(m->f);
    free(m);
}

int daecl_metrics_line(daecl_metrics *m, cJSON *obj, daecl_err *err)
{
    if (!m) { /* a rank other than 0: rank 0 alone writes the run folder */
        cJSON_Delete(obj);
        return 0;
    }
    char *s = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!s)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory writing metrics");
    int bad = fprintf(m->f, "%s\n", s) < 0 || fflush(m->f) != 0;
    free(s);
    if (bad) {
        int e = errno;
        return daecl_err_set(err, DAECL_EIO, "cannot write %s: %s; %s", m->path, strerror(e),
                             daecl_errno_hint(e));
    }
    return 0;
}

cJSON *daecl_metrics_obj(const char *type, uint32_t epoch, uint64_t step)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "type", type);
        cJSON_AddNumberToObject(o, "epoch", epoch);
        cJSON_AddNumberToObject(o, "step", (double)step);
    }
    return o;
}
