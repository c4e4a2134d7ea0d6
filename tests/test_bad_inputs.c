/* daecl tests — the bad-input catalogue: every case of tests/bad/cases.txt
 * runs the real `daecl` command on one broken input and must end with the
 * expected exit status, print the key words of its one-sentence message, and
 * not crash (no signal, no sanitizer report). Refused `train` runs must leave
 * no run folder behind. Cases that need big or special files (a 100 MB
 * config, world-writable plugins, a trained run) make them in a fresh folder
 * at run time.
 *
 * cases.txt, one case a line, fields separated by " | ":
 *   NAME | EXIT | COMMAND | KEY WORDS
 * EXIT may be followed by "pre": a load-time check, refused before any
 * device opened (the case runs with DAECL_LOG=debug and the backend's
 * "opening the ... backend" line must not appear), without writing (every
 * file under the case's folder keeps its size and time), within 2 s.
 * COMMAND is split at spaces; leading VAR=VALUE words go to the environment,
 * the rest are daecl's arguments. KEY WORDS are separated by ";". Both may
 * use {bad} (tests/bad), {tmp} (the case's own empty folder), {badplugin}
 * (the folder of tests/bad/plugins' build), {backends} (the backend plugins
 * this build has: "cpu, opencl", or "cpu" without OpenCL), {cases} (tests/plugins' build
 * folders), and the generated {big_config}, {writable_plugin_dir},
 * {writable_folder}, {foreign} (a folder holding a user's config.yaml and
 * summary.json), {old_sweep} (a finished sweep's folder), and {trained...}:
 * a copy of a run of config/run.yaml trained once per program
 * ({trained_elsewhere}: locked by a job on another host; {trained_stale}:
 * locked by a process of this host that is gone; {trained_readonly}: its
 * checkpoint read-only). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define MAX_CASES 256
#define MAX_WORDS 32

typedef struct bad_case {
    int line;
    char name[96];
    int exit_status;
    int pre; /* refused before a device opened, nothing written */
    char command[1024];
    char keys[1024];
} bad_case;

static bad_case cases[MAX_CASES];
static size_t n_cases;
static char *table_text; /* cases.txt as read, for the every-file-is-used check */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Reads cases.txt into cases[]; a malformed line fails the whole program. */
static void load_table(void)
{
    table_text = test_read_file(DAECL_TEST_BAD_DIR "/cases.txt", NULL);
    char *copy = strdup(table_text), *save = NULL;
    assert_non_null(copy);
    int line = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *s = trim(l);
        if (!*s || *s == '#')
            continue;
        char *field[4];
        int n = 0;
        for (char *p = s; n < 4; n++) {
            field[n] = p;
            char *bar = strstr(p, " | ");
            if (!bar) {
                n++;
                break;
            }
            *bar = '\0';
            p = bar + 3;
        }
        if (n != 4 || n_cases == MAX_CASES) {
            fprintf(stderr, "cases.txt: line '%s' is not NAME | EXIT | COMMAND | KEY WORDS\n", s);
            exit(1);
        }
        bad_case *c = &cases[n_cases++];
        c->line = line;
        snprintf(c->name, sizeof c->name, "%s", trim(field[0]));
        c->exit_status = atoi(trim(field[1]));
        c->pre = strstr(field[1], "pre") != NULL;
        snprintf(c->command, sizeof c->command, "%s", trim(field[2]));
        snprintf(c->keys, sizeof c->keys, "%s", trim(field[3]));
    }
    free(copy);
}

/* s with every {placeholder} expanded; the caller frees. */
static char *expand(const char *s, const char *tmp)
{
    static const char *const names[] = {"{bad}", "{tmp}", "{badplugin}", "{cases}", "{backends}"};
    const char *values[] = {DAECL_TEST_BAD_DIR, tmp, DAECL_TEST_BAD_PLUGIN_DIR,
                            DAECL_TEST_PLUGIN_CASES_DIR,
                            DAECL_TEST_WITH_OPENCL ? "cpu, opencl" : "cpu"};
    size_t cap = strlen(s) * 4 + 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    while (*s) {
        size_t k;
        for (k = 0; k < sizeof names / sizeof names[0]; k++)
            if (strncmp(s, names[k], strlen(names[k])) == 0)
                break;
        const char *add = s;
        size_t add_len = 1, skip = 1;
        char generated[1200];
        if (k < sizeof names / sizeof names[0]) {
            add = values[k];
            add_len = strlen(add);
            skip = strlen(names[k]);
        } else if (*s == '{' && strchr(s, '}')) {
            /* {big_config} and friends: files made in the case's folder */
            size_t n = (size_t)(strchr(s, '}') - s) + 1;
            snprintf(generated, sizeof generated, "%s/%.*s", tmp, (int)(n - 2), s + 1);
            add = generated;
            add_len = strlen(add);
            skip = n;
        }
        assert_true(len + add_len + 1 < cap);
        memcpy(out + len, add, add_len);
        len += add_len;
        s += skip;
    }
    out[len] = '\0';
    return out;
}

static char template_run[1200]; /* a finished run of config/run.yaml */

static void copy_file(const char *from, const char *to, mode_t mode);

/* A copy of the template run folder (flat: plain files only) at dir. */
static void copy_run(const char *dir)
{
    assert_int_equal(mkdir(dir, 0755), 0);
    struct dirent **list;
    int n = scandir(template_run, &list, NULL, alphasort);
    assert_true(n > 2);
    for (int i = 0; i < n; i++) {
        char from[1500], to[1500];
        struct stat st;
        snprintf(from, sizeof from, "%s/%s", template_run, list[i]->d_name);
        snprintf(to, sizeof to, "%s/%s", dir, list[i]->d_name);
        if (stat(from, &st) == 0 && S_ISREG(st.st_mode))
            copy_file(from, to, st.st_mode & 0777);
        free(list[i]);
    }
    free(list);
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    size_t n;
    char *bytes = test_read_file(from, &n);
    test_write_file(to, bytes, n);
    free(bytes);
    assert_int_equal(chmod(to, mode), 0);
}

/* tmp/name holding files[0] with text files[1], files[2] with files[3], ...
 * (NULL-terminated). */
static void make_folder(const char *tmp, const char *name, const char *const *files)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    assert_int_equal(mkdir(path, 0755), 0);
    for (size_t i = 0; files[i]; i += 2) {
        snprintf(path, sizeof path, "%s/%s/%s", tmp, name, files[i]);
        test_write_file(path, files[i + 1], strlen(files[i + 1]));
    }
}

/* Makes the generated files a command names. */
static void setup(const char *command, const char *tmp)
{
    char path[1200], good[1200];
    snprintf(good, sizeof good, "%s/good/daecl-corruption-scale.so", DAECL_TEST_PLUGIN_CASES_DIR);
    if (strstr(command, "{big_config}")) {
        /* 100 MB: a real start, then a sparse tail, so making it costs
         * nothing; daecl must refuse it by its size without reading it all. */
        snprintf(path, sizeof path, "%s/big_config", tmp);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        static const char head[] = "# a config of 100 MB\ndata: {train: x.npy}\nname: big\n";
        assert_int_equal(write(fd, head, sizeof head - 1), (ssize_t)(sizeof head - 1));
        assert_int_equal(ftruncate(fd, 100 << 20), 0);
        close(fd);
    }
    if (strstr(command, "{writable_plugin_dir}")) {
        snprintf(path, sizeof path, "%s/writable_plugin_dir", tmp);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/writable_plugin_dir/daecl-corruption-scale.so", tmp);
        copy_file(good, path, 0666);
    }
    if (strstr(command, "{trained}")) {
        snprintf(path, sizeof path, "%s/trained", tmp);
        copy_run(path);
    }
    if (strstr(command, "{trained_elsewhere}")) {
        snprintf(path, sizeof path, "%s/trained_elsewhere", tmp);
        copy_run(path);
        snprintf(path, sizeof path, "%s/trained_elsewhere/.daecl-lock", tmp);
        static const char lock[] = "pid 4242\nhost elsewhere.example\nstart 1\ncommand train\n"
                                   "since 2026-12-01T10:00:00Z\n";
        test_write_file(path, lock, sizeof lock - 1);
    }
    if (strstr(command, "{trained_stale}")) {
        snprintf(path, sizeof path, "%s/trained_stale", tmp);
        copy_run(path);
        char host[256], lock[512];
        assert_int_equal(gethostname(host, sizeof host), 0);
        /* a pid above any pid_max: no such process */
        int n = snprintf(lock, sizeof lock, "pid 2000000000\nhost %s\nstart 1\ncommand train\n"
                         "since 2026-12-01T10:00:00Z\n", host);
        snprintf(path, sizeof path, "%s/trained_stale/.daecl-lock", tmp);
        test_write_file(path, lock, (size_t)n);
    }
    if (strstr(command, "{trained_readonly}")) {
        snprintf(path, sizeof path, "%s/trained_readonly", tmp);
        copy_run(path);
        snprintf(path, sizeof path, "%s/trained_readonly/checkpoint.safetensors", tmp);
        assert_int_equal(chmod(path, 0444), 0);
    }
    /* a user's folder, and a finished sweep's: name/content pairs */
    static const char *const foreign[] = {"config.yaml", "my notes: keep\n", "summary.json",
                                          "{\"mine\": 1}\n", NULL};
    static const char *const old_sweep[] = {".daecl-sweep", "a daecl sweep folder\n", "sweep.csv",
                                            "point,run,seed,status\n1,001_seed=1,\"1\",ok\n", NULL};
    if (strstr(command, "{foreign}"))
        make_folder(tmp, "foreign", foreign);
    if (strstr(command, "{old_sweep}"))
        make_folder(tmp, "old_sweep", old_sweep);
    if (strstr(command, "{writable_folder}")) {
        snprintf(path, sizeof path, "%s/writable_folder", tmp);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(chmod(path, 0777), 0); /* not the umask's choice */
        snprintf(path, sizeof path, "%s/writable_folder/daecl-corruption-scale.so", tmp);
        copy_file(good, path, 0644);
    }
}

/* Every file under a folder with its size and modification time, one a
 * line: equal before and after a case that must write nothing. */
static char snapshot_buf[1 << 16];
static size_t snapshot_len;

static int snapshot_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)ftw;
    if (flag == FTW_F && snapshot_len < sizeof snapshot_buf)
        snapshot_len += (size_t)snprintf(snapshot_buf + snapshot_len,
                                         sizeof snapshot_buf - snapshot_len, "%s %lld %lld.%09ld %o\n",
                                         path, (long long)st->st_size, (long long)st->st_mtim.tv_sec,
                                         st->st_mtim.tv_nsec, (unsigned)st->st_mode);
    return 0;
}

static char *snapshot(const char *dir)
{
    snapshot_len = 0;
    snapshot_buf[0] = '\0';
    nftw(dir, snapshot_one, 16, FTW_PHYS);
    char *copy = strdup(snapshot_buf);
    assert_non_null(copy);
    return copy;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void run_case(void **state)
{
    const bad_case *c = *state;
    char tag[128];
    snprintf(tag, sizeof tag, "bad-%s", c->name);
    char *tmp = test_tmpdir(tag);
    setup(c->command, tmp);
    char *command = expand(c->command, tmp);
    char *keys = expand(c->keys, tmp);

    char *argv[MAX_WORDS + 2], *env[MAX_WORDS + 1];
    size_t n_arg = 0, n_env = 0;
    argv[n_arg++] = DAECL_TEST_BIN;
    char *save = NULL;
    for (char *w = strtok_r(command, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        const char *eq = strchr(w, '=');
        int is_env = n_arg == 1 && eq && eq > w;
        for (const char *p = w; is_env && p < eq; p++)
            is_env = (*p >= 'A' && *p <= 'Z') || *p == '_';
        if (is_env) {
            assert_true(n_env < MAX_WORDS);
            env[n_env++] = w;
        } else {
            assert_true(n_arg < MAX_WORDS + 1);
            argv[n_arg++] = w;
        }
    }
    if (c->pre) {
        assert_true(n_env < MAX_WORDS);
        env[n_env++] = "DAECL_LOG=debug";
    }
    argv[n_arg] = NULL;
    env[n_env] = NULL;

    char *before = c->pre ? snapshot(tmp) : NULL;
    char *out = NULL;
    double t0 = test_now();
    int status = test_run(argv, env, &out);
    double seconds = test_now() - t0;
    if (status >= 128)
        fail_msg("%s (cases.txt:%d) was killed by signal %d:\n%s", c->name, c->line, status - 128,
                 out);
    static const char *const crash_words[] = {"AddressSanitizer", "LeakSanitizer",
                                              "runtime error:", "Segmentation fault"};
    for (size_t i = 0; i < sizeof crash_words / sizeof crash_words[0]; i++)
        if (strstr(out, crash_words[i]))
            fail_msg("%s (cases.txt:%d) reported '%s':\n%s", c->name, c->line, crash_words[i], out);
    if (status != c->exit_status)
        fail_msg("%s (cases.txt:%d) exited with %d, not %d:\n%s", c->name, c->line, status,
                 c->exit_status, out);
    char *ksave = NULL;
    for (char *k = strtok_r(keys, ";", &ksave); k; k = strtok_r(NULL, ";", &ksave)) {
        k = trim(k);
        if (*k && !strstr(out, k))
            fail_msg("%s (cases.txt:%d): the output lacks '%s':\n%s", c->name, c->line, k, out);
    }
    if (c->pre) {
        if (strstr(out, "daecl: [opening") || strstr(out, "opening the "))
            fail_msg("%s (cases.txt:%d) is a load-time check but a device was opened first:\n%s",
                     c->name, c->line, out);
        char *after = snapshot(tmp);
        if (strcmp(before, after) != 0)
            fail_msg("%s (cases.txt:%d) is a load-time check but wrote:\nbefore:\n%safter:\n%s",
                     c->name, c->line, before, after);
        if (seconds > 2.0)
            fail_msg("%s (cases.txt:%d) is a load-time check but took %.2f s, over 2 s", c->name,
                     c->line, seconds);
        free(after);
        free(before);
    }
    /* A refused training run writes nothing: no run folder. */
    char run_dir[1200];
    struct stat st;
    snprintf(run_dir, sizeof run_dir, "%s/run", tmp);
    if (c->exit_status != 0 && strcmp(argv[1], "train") == 0 && stat(run_dir, &st) == 0)
        fail_msg("%s (cases.txt:%d) was refused but left %s behind", c->name, c->line, run_dir);

    free(out);
    free(command);
    free(keys);
    nftw(tmp, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
}

/* The catalogue is the size the issue asks for, and every committed file
 * in tests/bad/{config,data,checkpoint} is one case's input (or named by one
 * in a comment), so no file lies there untested. */
static void test_catalogue_has_40_cases_and_uses_every_file(void **state)
{
    (void)state;
    assert_true(n_cases >= 40);
    static const char *const dirs[] = {"config", "data", "checkpoint"};
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", DAECL_TEST_BAD_DIR, dirs[d]);
        struct dirent **list;
        int n = scandir(path, &list, NULL, alphasort);
        assert_true(n > 2);
        for (int i = 0; i < n; i++) {
            if (list[i]->d_name[0] != '.') {
                char ref[512];
                snprintf(ref, sizeof ref, "%s/%s", dirs[d], list[i]->d_name);
                if (!strstr(table_text, ref))
                    fail_msg("tests/bad/%s is not used by any case of cases.txt", ref);
            }
            free(list[i]);
        }
        free(list);
    }
    for (size_t i = 0; i < n_cases; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(cases[i].name, cases[j].name) == 0)
                fail_msg("cases.txt names two cases '%s'", cases[i].name);
}

/* Trains config/run.yaml once, into the folder {trained...} copies. */
static void make_template_run(void)
{
    char *dir = test_tmpdir("bad-template");
    char cfg[1200];
    snprintf(cfg, sizeof cfg, "%s/config/run.yaml", DAECL_TEST_BAD_DIR);
    snprintf(template_run, sizeof template_run, "%s/run", dir);
    char *argv[] = {DAECL_TEST_BIN, "train", cfg, "--out", template_run, "--quiet", NULL};
    char *out = NULL;
    int rc = test_run(argv, NULL, &out);
    if (rc != 0) {
        fprintf(stderr, "tests/bad/config/run.yaml did not train (exit %d):\n%s\n", rc, out);
        exit(1);
    }
    free(out);
    free(dir);
}

int main(void)
{
    load_table();
    make_template_run();
    struct CMUnitTest *tests = calloc(n_cases + 1, sizeof *tests);
    assert_non_null(tests);
    tests[0] = (struct CMUnitTest)cmocka_unit_test(test_catalogue_has_40_cases_and_uses_every_file);
    for (size_t i = 0; i < n_cases; i++)
        tests[i + 1] = (struct CMUnitTest){.name = cases[i].name, .test_func = run_case,
                                           .initial_state = &cases[i]};
    int rc = _cmocka_run_group_tests("bad_inputs", tests, n_cases + 1, NULL, NULL);
    free(tests);
    free(table_text);
    return rc;
}
