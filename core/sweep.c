/* daecl — sweeps over a grid of config overrides. */
#include "core/sweep.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/error.h"
#include "core/evaluate.h"
#include "core/fsutil.h"
#include "core/registry.h"
#include "core/runfiles.h"
#include "core/runfolder.h"
#include "core/train.h"

#define MAX_POINTS 10000

/* The metrics of summary.json the tables show, which way is better, and
 * whether the test set gives them (a sweep with a validation set neither
 * reports nor sorts by those). */
static const struct {
    const char *key;
    int higher_is_better, test;
} metrics[] = {
    {"train_nll", 0, 0},          {"test_nll_clean", 0, 1},     {"test_nll_corrupted", 0, 1},
    {"mse_reconstruction", 0, 1}, {"psnr_reconstruction_db", 1, 1}, {"probe_accuracy", 1, 1},
    {"probe_baseline_accuracy", 1, 1}, {"seconds", 0, 0}, {"valid_nll_clean", 0, 0},
    {"probe_valid_accuracy", 1, 0},
};
#define TEST_NLL_METRIC 1    /* the default order */
#define VALID_NLL_METRIC 8   /* ... of a sweep with a validation set */
#define VALID_PROBE_METRIC 9 /* ... with a validation set and the probe */
#define N_METRICS (sizeof metrics / sizeof metrics[0])

typedef struct point {
    size_t index;
    char name[512];
    char status[DAECL_ERR_MSG_MAX]; /* "ok" or the failure's sentence */
    double values[N_METRICS];       /* NAN: not reported */
} point;

/* With a validation set the points train without the test set: these two
 * overrides follow each point's own, so its run folder never names one
 * (its config.yaml says data.test: ""). */
static char no_test[] = "data.test=", no_test_labels[] = "data.test_labels=";
#define N_NO_TEST 2

/* The one reading of the test set, after the last point: the point first
 * in the sorted table, evaluated on its checkpoint with its test set. */
typedef struct final_report {
    int state; /* 0: none (yet); 1: evaluated; 2: chosen, but the config has no test set;
                * -1: no point to choose; -2: its evaluation failed */
    size_t index;
    double value;                   /* its sort metric */
    char why[DAECL_ERR_MSG_MAX];    /* state -1 and -2: the sentence */
    char eval_json[PATH_MAX];
    daecl_evaluation ev;
} final_report;

int daecl_sweep_parse_axis(const char *arg, daecl_sweep_axis *axis, daecl_err *err)
{
    memset(axis, 0, sizeof *axis);
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return daecl_err_set(err, DAECL_EUSAGE, "sweep argument '%s' is not KEY=V1,V2,...", arg);
    axis->key = strndup(arg, (size_t)(eq - arg));
    if (!axis->key)
        return daecl_err_set(err, DAECL_ENOMEM, "out of memory");
    const char *p = eq + 1, *start = p;
    int depth = 0;
    char quote = 0;
    for (;; p++) {
        char ch = *p;
        if (quote) {
            if (ch == quote)
                quote = 0;
            else if (!ch)
                break;
            continue;
        }
        if (ch == '\'' || ch == '"')
            quote = ch;
        else if (ch == '[' || ch == '{')
            depth++;
        else if ((ch == ']' || ch == '}') && depth > 0)
            depth--;
        if ((ch == ',' && depth == 0) || !ch) {
            if (axis->n_values == DAECL_SWEEP_MAX_VALUES) {
                daecl_sweep_axis_free(axis);
                return daecl_err_set(err, DAECL_EUSAGE, "sweep argument '%s' has more than %d "
                                     "values", arg, DAECL_SWEEP_MAX_VALUES);
            }
            axis->values[axis->n_values] = strndup(start, (size_t)(p - start));
            if (!axis->values[axis->n_values++]) {
                daecl_sweep_axis_free(axis);
                return daecl_err_set(err, DAECL_ENOMEM, "out of memory");
            }
            start = p + 1;
            if (!ch)
                break;
        }
    }
    if (quote || depth) {
        daecl_sweep_axis_free(axis);
        return daecl_err_set(err, DAECL_EUSAGE, "sweep argument '%s' has an unclosed %s", arg,
                             quote ? "quote" : "bracket");
    }
    return 0;
}

void daecl_sweep_axis_free(daecl_sweep_axis *axis)
{
    free(axis->key);
    for (size_t i = 0; i < axis->n_values; i++)
        free(axis->values[i]);
    memset(axis, 0, sizeof *axis);
}

/* The overrides of point i: axis a takes value (i / stride_a) % n_a. */
static int point_overrides(const daecl_sweep_axis *ax, size_t n_ax, size_t i, char **ov,
                           char *storage, size_t per, daecl_err *err)
{
    size_t stride = 1;
    for (size_t a = n_ax; a-- > 0;) {
        size_t v = (i / stride) % ax[a].n_values;
        int w = snprintf(storage + a * per, per, "%s=%s", ax[a].key, ax[a].values[v]);
        if (w < 0 || (size_t)w >= per)
            return daecl_err_set(err, DAECL_EUSAGE, "sweep value '%.40s...' of %s is longer "
                                 "than %zu bytes", ax[a].values[v], ax[a].key, per - 1);
        ov[a] = storage + a * per;
        stride *= ax[a].n_values;
    }
    return 0;
}

/* A folder name from the swept (multi-valued) overrides. */
static void point_name(const daecl_sweep_axis *ax, size_t n_ax, char *const *ov, size_t i,
                       char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "%03zu", i + 1);
    for (size_t a = 0; a < n_ax && len + 2 < n; a++) {
        if (ax[a].n_values < 2)
            continue;
        out[len++] = '_';
        for (const char *c = ov[a]; *c && len + 1 < n; c++)
            out[len++] = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                                 (*c >= '0' && *c <= '9') || *c == '.' || *c == '=' || *c == '-'
                             ? *c
                             : '_';
        out[len] = '\0';
    }
}

static void read_summary(const char *run_dir, point *p)
{
    for (size_t m = 0; m < N_METRICS; m++)
        p->values[m] = NAN;
    char path[PATH_MAX];
    if (daecl_path_join(path, sizeof path, run_dir, "summary.json", NULL))
        return;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *o = cJSON_Parse(buf);
    for (size_t m = 0; o && m < N_METRICS; m++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, metrics[m].key);
        if (cJSON_IsNumber(v))
            p->values[m] = v->valuedouble;
    }
    cJSON_Delete(o);
}

static int sort_metric;

static int cmp_points(const void *a, const void *b)
{
    const point *p = a, *q = b;
    double x = p->values[sort_metric], y = q->values[sort_metric];
    int xn = isnan(x), yn = isnan(y);
    if (xn || yn)
        return xn != yn ? (xn ? 1 : -1) : (p->index > q->index) - (p->index < q->index);
    if (x == y)
        return (p->index > q->index) - (p->index < q->index);
    int less = x < y;
    return metrics[sort_metric].higher_is_better ? (less ? 1 : -1) : (less ? -1 : 1);
}

/* sweep.md's "Final report": the chosen point and its test numbers. */
static size_t final_section(char *md, size_t len, size_t cap, const point *pts,
                            const final_report *fin)
{
#define PUT(...) (len += (size_t)snprintf(md + len, len < cap ? cap - len : 0, __VA_ARGS__))
    PUT("\n## Final report\n\n");
    if (fin->state == -1) {
        PUT("No point chosen: %s.\n", fin->why);
        return len;
    }
    const point *p = &pts[fin->index];
    const char *key = metrics[sort_metric].key;
    int pct = strstr(key, "accuracy") != NULL;
    PUT("Chosen by %s, the first finished point of the table above: point %zu, %s, with %s "
        "%.*f%s.\n\n",
        key, p->index + 1, p->name, key, pct ? 2 : 4, pct ? 100 * fin->value : fin->value,
        pct ? "%" : "");
    if (fin->state == 2) {
        PUT("The config has no test set (data.test), so it has no test numbers.\n");
        return len;
    }
    if (fin->state == -2) {
        PUT("Its evaluation on the test set failed: %s\n", fin->why);
        return len;
    }
    const daecl_evaluation *e = &fin->ev;
    PUT("The test set, read once, for this point only (%s):\n\n", fin->eval_json);
    PUT("- test_nll_clean %.4f, test_nll_corrupted %.4f (%zu examples)\n", e->test.nll_clean,
        e->test.nll_corrupted, e->test.n_rows);
    if (e->have_denoising)
        PUT("- mse_reconstruction %.6f, psnr_reconstruction_db %.2f\n",
            e->test.mse_reconstruction, e->test.psnr_reconstruction);
    if (e->have_probe)
        PUT("- probe_accuracy %.2f%% (probe_valid_accuracy %.2f%%)\n", 100 * e->probe.accuracy,
            100 * e->probe.valid_accuracy);
    if (e->have_baseline)
        PUT("- probe_baseline_accuracy %.2f%%\n", 100 * e->baseline.accuracy);
#undef PUT
    return len;
}

/* sweep.json: the final report for programs. */
static int write_final_json(const char *dir, const point *pts, const final_report *fin,
                            daecl_err *err)
{
    cJSON *o = cJSON_CreateObject(), *f = o ? cJSON_AddObjectToObject(o, "final") : NULL;
    if (f) {
        cJSON_AddStringToObject(o, "sorted_by", metrics[sort_metric].key);
        if (fin->state == -1) {
            cJSON_AddStringToObject(f, "status", fin->why);
        } else {
            const point *p = &pts[fin->index];
            cJSON_AddNumberToObject(f, "point", (double)(p->index + 1));
            cJSON_AddStringToObject(f, "run", p->name);
            cJSON_AddStringToObject(f, "chosen_by", metrics[sort_metric].key);
            cJSON_AddNumberToObject(f, "value", fin->value);
            cJSON_AddStringToObject(f, "status", fin->state == 1   ? "ok"
                                                 : fin->state == 2 ? "no test set"
                                                                   : fin->why);
            if (fin->state == 1) {
                cJSON_AddStringToObject(f, "eval_json", fin->eval_json);
                daecl_evaluation_to_json(&fin->ev, f);
            }
        }
    }
    return daecl_runfiles_write_json(dir, "sweep.json", o, "sweep report", err);
}

/* sweep.csv (grid order) and sweep.md (sorted), rewritten after each point. */
static int write_tables(const char *dir, const daecl_sweep_axis *ax, size_t n_ax, const point *pts,
                        size_t n_pts, char ***point_ov, int valid, const final_report *fin,
                        daecl_err *err)
{
    size_t cap = 4096 + n_pts * 2048, len = 0;
    char *csv = malloc(cap), *md = malloc(cap);
    point *sorted = malloc((n_pts ? n_pts : 1) * sizeof *sorted);
    int rc = 0;
    if (!csv || !md || !sorted) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory writing the sweep tables");
        goto done;
    }
#define PUT(buf, ...) (len += (size_t)snprintf((buf) + len, len < cap ? cap - len : 0, __VA_ARGS__))
    PUT(csv, "point,run");
    for (size_t a = 0; a < n_ax; a++)
        PUT(csv, ",%s", ax[a].key);
    PUT(csv, ",status");
    for (size_t m = 0; m < N_METRICS; m++)
        PUT(csv, ",%s", metrics[m].key);
    PUT(csv, "\n");
    for (size_t i = 0; i < n_pts; i++) {
        PUT(csv, "%zu,%s", pts[i].index + 1, pts[i].name);
        for (size_t a = 0; a < n_ax; a++) {
            const char *v = strchr(point_ov[pts[i].index][a], '=') + 1;
            PUT(csv, ",\"");
            for (const char *c = v; *c; c++)
                PUT(csv, *c == '"' ? "\"\"" : "%c", *c);
            PUT(csv, "\"");
        }
        PUT(csv, ",\"");
        for (const char *c = pts[i].status; *c; c++)
            PUT(csv, *c == '"' ? "\"\"" : "%c", *c);
        PUT(csv, "\"");
        for (size_t m = 0; m < N_METRICS; m++)
            if (isnan(pts[i].values[m]))
                PUT(csv, ",");
            else
                PUT(csv, ",%.10g", pts[i].values[m]);
        PUT(csv, "\n");
    }
    if (len >= cap) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "the sweep table outgrew its buffer");
        goto done;
    }
    char path[PATH_MAX];
    if ((rc = daecl_path_join(path, sizeof path, dir, "sweep.csv", err)) ||
        (rc = daecl_write_file_atomic(path, csv, len, "sweep table", err)))
        goto done;

    memcpy(sorted, pts, n_pts * sizeof *sorted);
    qsort(sorted, n_pts, sizeof *sorted, cmp_points);
    len = 0;
    PUT(md, "Sorted by %s (%s is better).\n\n| run |", metrics[sort_metric].key,
        metrics[sort_metric].higher_is_better ? "higher" : "lower");
    for (size_t a = 0; a < n_ax; a++)
        if (ax[a].n_values > 1)
            PUT(md, " %s |", ax[a].key);
    /* with a validation set the points have no test numbers to show */
    for (size_t m = 0; m < N_METRICS; m++)
        if (!(valid && metrics[m].test))
            PUT(md, " %s |", metrics[m].key);
    PUT(md, "\n|---|");
    for (size_t a = 0; a < n_ax; a++)
        if (ax[a].n_values > 1)
            PUT(md, "---|");
    for (size_t m = 0; m < N_METRICS; m++)
        if (!(valid && metrics[m].test))
            PUT(md, "---:|");
    PUT(md, "\n");
    for (size_t i = 0; i < n_pts; i++) {
        PUT(md, "| %s |", sorted[i].name);
        for (size_t a = 0; a < n_ax; a++)
            if (ax[a].n_values > 1)
                PUT(md, " %s |", strchr(point_ov[sorted[i].index][a], '=') + 1);
        for (size_t m = 0; m < N_METRICS; m++) {
            double v = sorted[i].values[m];
            if (valid && metrics[m].test)
                continue;
            if (isnan(v))
                PUT(md, " %s |", strcmp(sorted[i].status, "ok") ? "failed" : "");
            else if (strstr(metrics[m].key, "accuracy"))
                PUT(md, " %.2f%% |", 100 * v);
            else
                PUT(md, " %.4f |", v);
        }
        PUT(md, "\n");
    }
    if (fin && fin->state)
        len = final_section(md, len, cap, pts, fin);
#undef PUT
    if (len >= cap) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "the sweep table outgrew its buffer");
        goto done;
    }
    if (!(rc = daecl_path_join(path, sizeof path, dir, "sweep.md", err)))
        rc = daecl_write_file_atomic(path, md, len, "sweep table", err);
done:
    free(csv);
    free(md);
    free(sorted);
    return rc;
}

/* --sort with a test metric on a sweep with a validation set is refused:
 * choosing by the test set is what the validation set is there to avoid. */
static int check_sort(const daecl_sweep_opts *o, int valid, daecl_err *err)
{
    if (!valid || !o->sort || !metrics[sort_metric].test)
        return 0;
    return daecl_err_set(err, DAECL_EUSAGE, "cannot sort by %s: it is a test-set metric, and "
                         "with a validation set (data.valid_fraction) choosing by the test set "
                         "is the peeking the split is there to avoid; sort by %s or %s instead",
                         o->sort, metrics[VALID_NLL_METRIC].key, metrics[VALID_PROBE_METRIC].key);
}

/* Every point of a sweep with a validation set has one: a point without
 * would train on no held-out rows and be ranked on nothing. */
static int check_has_valid(const daecl_sweep_opts *o, daecl_registry *reg, char *const *ov,
                           size_t n_ax, size_t i, daecl_err *err)
{
    daecl_config *c = NULL;
    int rc = daecl_config_load(o->config_path, (const char *const *)ov, n_ax, reg, &c, err);
    if (!rc && !(c->data.valid_fraction > 0))
        rc = daecl_err_set(err, DAECL_EUSAGE, "sweep point %zu has no validation set "
                           "(data.valid_fraction 0) but the first point has one, so the points "
                           "cannot be ranked alike; sweep data.valid_fraction over values above "
                           "0 only", i + 1);
    daecl_config_destroy(c);
    return rc;
}

/* A YAML single-quoted scalar of s into out: 'it''s'. */
static int yaml_quoted(const char *key, const char *s, char *out, size_t n)
{
    size_t len = (size_t)snprintf(out, n, "%s='", key);
    for (; *s && len + 2 < n; s++) {
        if (*s == '\'')
            out[len++] = '\'';
        out[len++] = *s;
    }
    if (*s || len + 2 > n)
        return -1;
    out[len++] = '\'';
    out[len] = '\0';
    return 0;
}

/* The final report: the first point of the sorted table that finished
 * with a value of the sort metric, evaluated once on its checkpoint with
 * the test set of its own config (its overrides without the two that
 * cleared it). Its failure goes into fin and *failure. */
static void final_eval(const daecl_sweep_opts *o, daecl_registry *reg, const char *dir,
                       const point *pts, size_t n_pts, char ***point_ov, size_t n_ax,
                       final_report *fin, daecl_err *failure)
{
    size_t best = n_pts;
    for (size_t i = 0; i < n_pts; i++) {
        if (strcmp(pts[i].status, "ok") != 0 || isnan(pts[i].values[sort_metric]))
            continue;
        if (best == n_pts || cmp_points(&pts[i], &pts[best]) < 0)
            best = i;
    }
    if (best == n_pts) {
        fin->state = -1;
        snprintf(fin->why, sizeof fin->why, "no point finished with a value of %s, so none was "
                 "evaluated on the test set", metrics[sort_metric].key);
        return;
    }
    fin->index = best;
    fin->value = pts[best].values[sort_metric];
    daecl_config *c = NULL;
    char run_dir[PATH_MAX], test[PATH_MAX + 32], labels[PATH_MAX + 32];
    int rc = daecl_config_load(o->config_path, (const char *const *)point_ov[best], n_ax, reg,
                               &c, failure);
    if (!rc && !c->data.test[0]) {
        fin->state = 2;
        daecl_config_destroy(c);
        return;
    }
    if (!rc && (yaml_quoted("data.test", c->data.test, test, sizeof test) ||
                yaml_quoted("data.test_labels", c->data.test_labels, labels, sizeof labels)))
        rc = daecl_err_set(failure, DAECL_ECONFIG, "the test set's path %.200s is too long",
                           c->data.test);
    if (!rc)
        rc = daecl_path_join(run_dir, sizeof run_dir, dir, pts[best].name, failure);
    if (!rc) {
        const char *ov[2] = {test, labels};
        daecl_eval_opts e = {.run_dir = run_dir, .overrides = ov, .n_overrides = 2,
                             .probe_baseline = c->eval.probe_baseline,
                             .no_probe = !c->eval.probe};
        rc = daecl_eval_run(&e, &fin->ev, fin->eval_json, sizeof fin->eval_json, failure);
    }
    daecl_config_destroy(c);
    if (!rc) {
        fin->state = 1;
        return;
    }
    fin->state = -2;
    snprintf(fin->why, sizeof fin->why, "%s", failure->msg);
    char why[DAECL_ERR_MSG_MAX];
    snprintf(why, sizeof why, "%s", failure->msg);
    daecl_err_set(failure, rc, "the final report's evaluation of sweep point %zu (%s) on the "
                  "test set: %s", best + 1, pts[best].name, why);
}

/* The one line about the final report, for people. */
static void print_final(const point *pts, const final_report *fin)
{
    if (fin->state == -1) {
        printf("daecl sweep: %s\n", fin->why);
        return;
    }
    const point *p = &pts[fin->index];
    const char *key = metrics[sort_metric].key;
    int pct = strstr(key, "accuracy") != NULL;
    printf("daecl sweep: chose point %zu (%s) by %s %.*f%s", p->index + 1, p->name, key,
           pct ? 2 : 4, pct ? 100 * fin->value : fin->value, pct ? "%" : "");
    if (fin->state == 1 && fin->ev.have_probe)
        printf("; on the test set, read once: test_nll_clean %.4f, probe accuracy %.2f%%\n",
               fin->ev.test.nll_clean, 100 * fin->ev.probe.accuracy);
    else if (fin->state == 1)
        printf("; on the test set, read once: test_nll_clean %.4f\n", fin->ev.test.nll_clean);
    else if (fin->state == 2)
        printf("; the config has no test set\n");
    else
        printf("; its evaluation on the test set failed\n");
    fflush(stdout);
}

/* The sweep folder: o->out_dir (new, empty, or a sweep of daecl's without
 * a table), else <output.dir>/<name>-sweep[-N]; made, marked and locked. */
static int make_dir(const daecl_sweep_opts *o, const daecl_config *cfg, char *dir, size_t n,
                    daecl_lock **lock, daecl_err *err)
{
    if (o->out_dir) {
        snprintf(dir, n, "%s", o->out_dir);
        return daecl_folder_claim(dir, DAECL_FOLDER_SWEEP, "sweep", "--out", lock, err);
    }
    int rc = daecl_mkdirs(cfg->output.dir, err);
    if (rc)
        return rc;
    for (unsigned i = 1; i < 100000; i++) {
        if (i == 1)
            snprintf(dir, n, "%s/%s-sweep", cfg->output.dir, cfg->name);
        else
            snprintf(dir, n, "%s/%s-sweep-%u", cfg->output.dir, cfg->name, i);
        if (mkdir(dir, 0755) == 0)
            return daecl_folder_claim(dir, DAECL_FOLDER_SWEEP, "sweep", "output.dir", lock, err);
        if (errno != EEXIST)
            return daecl_err_set(err, DAECL_EIO, "cannot create sweep folder %s: %s", dir,
                                 strerror(errno));
    }
    return daecl_err_set(err, DAECL_EIO, "no free sweep folder name under %s", cfg->output.dir);
}

int daecl_sweep(const daecl_sweep_opts *o, daecl_sweep_result *out, daecl_err *err)
{
    memset(out, 0, sizeof *out);
    daecl_sweep_axis ax[DAECL_SWEEP_MAX_KEYS];
    size_t n_ax = 0, n_pts = 1;
    int rc = 0;
    point *pts = NULL;
    char ***point_ov = NULL, *storage = NULL;
    daecl_registry *reg = NULL;
    daecl_config *first = NULL;
    daecl_lock *lock = NULL;
    final_report *fin = NULL;
    int valid = 0; /* the config has a validation set: choose without the test set */
    size_t n_ov = 0;
    if (o->n_args > DAECL_SWEEP_MAX_KEYS)
        return daecl_err_set(err, DAECL_EUSAGE, "a sweep takes at most %d keys",
                             DAECL_SWEEP_MAX_KEYS);
    for (; n_ax < o->n_args; n_ax++) {
        if ((rc = daecl_sweep_parse_axis(o->args[n_ax], &ax[n_ax], err)))
            goto done;
        for (size_t a = 0; a < n_ax; a++)
            if (strcmp(ax[a].key, ax[n_ax].key) == 0) {
                /* seed=1,2 seed=3 would train seed 3 twice, labelled 1 and 2 */
                rc = daecl_err_set(err, DAECL_EUSAGE, "sweep key '%s' is given twice ('%s' and "
                                   "'%s'); give each key once, with all its values: %s=V1,V2,...",
                                   ax[a].key, o->args[a], o->args[n_ax], ax[a].key);
                n_ax++;
                goto done;
            }
        n_pts *= ax[n_ax].n_values;
        if (n_pts > MAX_POINTS) {
            rc = daecl_err_set(err, DAECL_EUSAGE, "the sweep has more than %d points; split it",
                               MAX_POINTS);
            n_ax++;
            goto done;
        }
    }
    sort_metric = TEST_NLL_METRIC;
    if (o->sort) {
        size_t m;
        for (m = 0; m < N_METRICS && strcmp(metrics[m].key, o->sort) != 0; m++)
            ;
        if (m == N_METRICS) {
            char names[512];
            size_t len = 0;
            for (size_t k = 0; k < N_METRICS && len < sizeof names; k++)
                len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "",
                                        metrics[k].key);
            rc = daecl_err_set(err, DAECL_EUSAGE, "cannot sort by '%s'; use one of %s", o->sort,
                               names);
            goto done;
        }
        sort_metric = (int)m;
    }
    /* Every point's config is checked before anything trains: a typo in the
     * last value must not surface hours into the sweep. */
    const size_t per = 1024;
    pts = calloc(n_pts, sizeof *pts);
    fin = calloc(1, sizeof *fin);
    point_ov = calloc(n_pts, sizeof *point_ov);
    storage = calloc(n_pts * (n_ax ? n_ax : 1), per);
    if (!pts || !fin || !point_ov || !storage) {
        rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory planning the sweep");
        goto done;
    }
    if ((rc = daecl_registry_create(NULL, &reg, err)))
        goto done;
    if (o->out_dir && (rc = daecl_folder_check_new(o->out_dir, DAECL_FOLDER_SWEEP, "--out", err)))
        goto done;
    for (size_t i = 0; i < n_pts; i++) {
        point_ov[i] = calloc(n_ax + N_NO_TEST, sizeof(char *));
        if (!point_ov[i]) {
            rc = daecl_err_set(err, DAECL_ENOMEM, "out of memory planning the sweep");
            goto done;
        }
        if ((rc = point_overrides(ax, n_ax, i, point_ov[i], storage + i * n_ax * per, per, err)))
            goto done;
        point_ov[i][n_ax] = no_test;
        point_ov[i][n_ax + 1] = no_test_labels;
        if (i == 0) {
            if ((rc = daecl_config_load(o->config_path, (const char *const *)point_ov[i], n_ax,
                                        reg, &first, err)))
                goto done;
            valid = first->data.valid_fraction > 0;
            n_ov = n_ax + (valid ? N_NO_TEST : 0);
            if ((rc = check_sort(o, valid, err)))
                goto done;
        } else if (valid && (rc = check_has_valid(o, reg, point_ov[i], n_ax, i, err))) {
            goto done;
        }
        /* Every check `daecl train` makes before its first step, on every
         * point, as it will train: data, labels, eval's needs, the
         * likelihood against the data; with a validation set the first
         * point's test set too, which the final report reads. */
        daecl_train_opts check = {.config_path = o->config_path,
                                  .overrides = (const char *const *)point_ov[i],
                                  .n_overrides = n_ov,
                                  .quiet = 1,
                                  .check_only = 1};
        rc = daecl_train(&check, NULL, 0, err);
        if (!rc && valid && i == 0) {
            check.n_overrides = n_ax;
            rc = daecl_train(&check, NULL, 0, err);
        }
        if (rc) {
            char why[DAECL_ERR_MSG_MAX], file[DAECL_ERR_FILE_MAX], what[512];
            size_t len = 0;
            what[0] = '\0';
            for (size_t a = 0; a < n_ax && len < sizeof what; a++)
                len += (size_t)snprintf(what + len, sizeof what - len, "%s%s", a ? " " : "",
                                        point_ov[i][a]);
            snprintf(why, sizeof why, "%s", err->msg);
            snprintf(file, sizeof file, "%s", err->file);
            daecl_err_set_at(err, rc, file, err->line, err->col, "sweep point %zu (%s): %s",
                             i + 1, n_ax ? what : "no overrides", why);
            goto done;
        }
    }
    /* Settings are chosen on the validation set when there is one, so
     * the test set is only read, never used to pick. */
    if (!o->sort && valid)
        sort_metric = first->eval.probe && first->data.train_labels[0] ? VALID_PROBE_METRIC
                                                                       : VALID_NLL_METRIC;
    if ((rc = make_dir(o, first, out->dir, sizeof out->dir, &lock, err)))
        goto done;

    daecl_err first_failure = {0};
    for (size_t i = 0; i < n_pts; i++) {
        point *p = &pts[i];
        p->index = i;
        point_name(ax, n_ax, point_ov[i], i, p->name, sizeof p->name);
        char run_dir[PATH_MAX];
        if ((rc = daecl_path_join(run_dir, sizeof run_dir, out->dir, p->name, err)))
            goto done;
        if (!o->quiet) {
            printf("daecl sweep: point %zu/%zu:", i + 1, n_pts);
            for (size_t a = 0; a < n_ax; a++)
                printf(" %s", point_ov[i][a]);
            printf("\n");
            fflush(stdout);
        }
        daecl_train_opts t = {.config_path = o->config_path,
                              .overrides = (const char *const *)point_ov[i],
                              .n_overrides = n_ov,
                              .out_dir = run_dir,
                              .quiet = o->quiet,
                              .progress = -1,
                              .stop = o->stop};
        daecl_err e = {0};
        int trc = daecl_train(&t, NULL, 0, &e);
        out->n_points++;
        if (trc) {
            out->n_failed++;
            snprintf(p->status, sizeof p->status, "%s", e.msg);
            if (!first_failure.status)
                first_failure = e;
        } else {
            snprintf(p->status, sizeof p->status, "ok");
        }
        read_summary(run_dir, p);
        if ((rc = write_tables(out->dir, ax, n_ax, pts, i + 1, point_ov, valid, NULL, err)))
            goto done;
        if (trc == DAECL_EINTR) {
            *err = e;
            rc = DAECL_EINTR;
            goto done;
        }
    }
    daecl_err final_failure = {0};
    if (valid) {
        final_eval(o, reg, out->dir, pts, n_pts, point_ov, n_ax, fin, &final_failure);
        if ((rc = write_tables(out->dir, ax, n_ax, pts, n_pts, point_ov, valid, fin, err)) ||
            (rc = write_final_json(out->dir, pts, fin, err)))
            goto done;
        out->have_final = fin->state == 1;
        out->final_point = fin->index;
        if (!o->quiet)
            print_final(pts, fin);
    }
    if (out->n_failed) {
        *err = first_failure;
        rc = first_failure.status;
    } else if (final_failure.status) {
        *err = final_failure;
        rc = final_failure.status;
    }
done:
    for (size_t a = 0; a < n_ax; a++)
        daecl_sweep_axis_free(&ax[a]);
    if (point_ov)
        for (size_t i = 0; i < n_pts; i++)
            free(point_ov[i]);
    free(point_ov);
    free(storage);
    free(pts);
    free(fin);
    daecl_config_destroy(first);
    daecl_registry_destroy(reg);
    daecl_lock_release(lock);
    return rc;
}
