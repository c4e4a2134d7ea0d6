/* daecl fuzzing — the config loader: YAML (libyaml, yamltree.c), key=value
 * overrides, validation against the core schema and the real plugins'
 * schemas (the build tree's plugin folder, as `daecl train` finds it).
 *
 * Input: the YAML text, then optionally lines "==" each followed by one
 * override, i.e. TEXT "\n==\n" OVERRIDE "\n==\n" OVERRIDE ... (at most 16).
 * Properties checked beyond "no crash, no leak, no UB":
 *   - a refusal fills the error record (fuzz.h);
 *   - an accepted run name cannot leave output.dir: no '/', not "." or "..";
 *   - the resolved config written back as YAML loads again, and writes back
 *     to the same text (config.h promises "loading it gives the same config"). */
#include "core/config.h"
#include "core/registry.h"
#include "fuzz.h"

#define SEP "\n==\n"
#define MAX_OVERRIDES 16

static daecl_registry *reg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    daecl_err err = {0};
    if (daecl_registry_create(NULL, &reg, &err))
        FUZZ_FAIL("no plugin registry: %s", err.msg);
    return 0;
}

static const uint8_t *find_sep(const uint8_t *p, const uint8_t *end)
{
    size_t k = sizeof SEP - 1;
    for (; (size_t)(end - p) >= k; p++)
        if (memcmp(p, SEP, k) == 0)
            return p;
    return NULL;
}

static void check_name(const char *name)
{
    size_t n = strlen(name);
    FUZZ_CHECK(n >= 1 && n < DAECL_NAME_MAX, "accepted a run name of %zu bytes", n);
    FUZZ_CHECK(!strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0,
               "accepted the run name '%s', which leaves output.dir", name);
}

static void round_trip(const daecl_config *cfg)
{
    char *y1 = daecl_config_to_yaml(cfg);
    FUZZ_CHECK(y1, "daecl_config_to_yaml returned NULL");
    daecl_config *again = NULL;
    daecl_err err = {0};
    int rc = daecl_config_load_string(y1, strlen(y1), "resolved.yaml", NULL, 0, reg, &again, &err);
    if (rc)
        FUZZ_FAIL("the resolved config does not load again: %s:%d:%d: %s\n--- resolved.yaml:\n%s",
                  err.file, err.line, err.col, err.msg, y1);
    char *y2 = daecl_config_to_yaml(again);
    FUZZ_CHECK(y2, "daecl_config_to_yaml returned NULL");
    if (strcmp(y1, y2) != 0)
        FUZZ_FAIL("the resolved config changes when loaded again\n--- first:\n%s\n--- second:\n%s",
                  y1, y2);
    free(y1);
    free(y2);
    daecl_config_destroy(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size;
    const uint8_t *cut = find_sep(data, end);
    size_t text_len = cut ? (size_t)(cut - data) : size;
    char *ovs[MAX_OVERRIDES];
    size_t n_ov = 0;
    while (cut && n_ov < MAX_OVERRIDES) {
        const uint8_t *from = cut + sizeof SEP - 1;
        cut = find_sep(from, end);
        size_t len = (size_t)((cut ? cut : end) - from);
        char *s = malloc(len + 1);
        if (!s)
            break;
        memcpy(s, from, len);
        s[len] = '\0'; /* an embedded NUL ends the override, as on a command line */
        ovs[n_ov++] = s;
    }

    /* An exact-size copy of the text, so a read past its end is caught. */
    char *text = malloc(text_len ? text_len : 1);
    if (text) {
        memcpy(text, data, text_len);
        daecl_config *cfg = NULL;
        daecl_err err = {0};
        int rc = daecl_config_load_string(text, text_len, "fuzz.yaml", (const char *const *)ovs,
                                          n_ov, reg, &cfg, &err);
        FUZZ_SAY("%s:%d:%d: %s", err.file, err.line, err.col, rc ? err.msg : "loaded");
        if (rc) {
            fuzz_check_err(rc, &err, "daecl_config_load_string");
            FUZZ_CHECK(!cfg, "daecl_config_load_string failed but set its output");
        } else {
            check_name(cfg->name);
            round_trip(cfg);
            daecl_config_destroy(cfg);
        }
        free(text);
    }
    for (size_t i = 0; i < n_ov; i++)
        free(ovs[i]);
    return 0;
}
