/* daecl fuzzing — the plugin descriptor validator (daecl_plugin_validate),
 * the registry that accepts descriptors (daecl_registry_add), and the config
 * loader fed an accepted plugin's schema.
 *
 * The input is not a shared object but a recipe for a descriptor, read byte
 * by byte (bytes past the end read as 0, and all-zero fields give a valid
 * corruption plugin); gen_corpus.py writes the seeds in the same format:
 *   size     u8: 0 sizeof(daecl_plugin), 1 sizeof - 8, 2 16, 3 sizeof + 64,
 *            else the next u16
 *   major    u8 added to DAECL_ABI_MAJOR (int8), minor likewise
 *   sizes    u8 XORed into DAECL_ABI_SIZES
 *   kind     u8: 0 corruption, 255 the invalid kind 0, else the raw value
 *            (1 corruption, 2 likelihood, 3 backend, 4.. invalid)
 *   name     string (below); version, summary, license: one u8, bit i set
 *            leaves the i-th NULL
 *   n_params u8; params_null u8 (odd: params NULL)
 *   each of the first n_params specs: name string, type u8, def[0], def[1],
 *            min, max as numbers (below), def_str, choices, doc strings
 *   init     u8 % 4: none, ok, fails with a message, fails without one
 *   check    u8 % 3: none, accepts, refuses
 *   ops      u8 % 4: full table, NULL, size from the next u16, full size
 *            with slots from the next u32 bit mask
 *   ppd      u8: params_per_dim of a likelihood (0 reads as 1)
 *   cl       string: cl_source
 * A string is a length u8 (255: NULL) and that many bytes; a number is a u8
 * index into interesting values (255: the next 8 bytes as a double).
 *
 * The descriptor and its ops table are allocated at exactly their declared
 * sizes, so ASan reports any read past what a plugin declared. A descriptor
 * the registry accepts must then load in a config with its defaults (unless
 * its check() refuses), and that config must write back to YAML that loads
 * to the same text: a schema the registry accepts is one configs can use. */
#include <float.h>
#include <math.h>

#include "core/config.h"
#include "core/registry.h"
#include "fuzz.h"

typedef struct reader {
    const uint8_t *p, *end;
    void *owned[1100]; /* allocations to free after the input: 255 specs of 4 strings, and more */
    size_t n_owned;
} reader;

static void *own(reader *r, void *p)
{
    if (!p)
        FUZZ_FAIL("out of memory");
    if (r->n_owned == sizeof r->owned / sizeof r->owned[0])
        FUZZ_FAIL("the recipe needs more than %zu allocations", r->n_owned);
    r->owned[r->n_owned++] = p;
    return p;
}

static uint8_t u8(reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

static uint32_t u16(reader *r)
{
    uint32_t lo = u8(r);
    return lo | (uint32_t)u8(r) << 8;
}

static uint32_t u32(reader *r)
{
    uint32_t lo = u16(r);
    return lo | u16(r) << 16;
}

static const char *str(reader *r)
{
    uint8_t len = u8(r);
    if (len == 255)
        return NULL;
    char *s = own(r, malloc((size_t)len + 1));
    for (size_t i = 0; i < len; i++)
        s[i] = (char)u8(r);
    s[len] = '\0';
    return s;
}

static double num(reader *r)
{
    static const double table[] = {0,       1,        -1,       0.5,         2,       10,
                                   1e6,     INFINITY, -INFINITY, NAN,        DBL_MAX, -DBL_MAX,
                                   1e-300,  0x1p53,   0x1p53 + 2, 1e300,     0.25,    100,
                                   -0.0,    0x1p32,   DBL_TRUE_MIN, 1e-7,    0.1,     65536};
    uint8_t i = u8(r);
    if (i < sizeof table / sizeof table[0])
        return table[i];
    if (i == 255) {
        uint64_t bits = (uint64_t)u32(r);
        bits |= (uint64_t)u32(r) << 32;
        double v;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    return (double)i - 100.0;
}

/* Stand-ins for plugin code: validation only compares them with NULL, and
 * nothing here ever calls an op. */
static void dummy_op(void) {}

static const daecl_host *saved_host;

static int init_ok(const daecl_host *host, daecl_err *err)
{
    (void)err;
    saved_host = host;
    return 0;
}

static int init_fails(const daecl_host *host, daecl_err *err)
{
    return host->error(err, DAECL_EPLUGIN, "the fuzzed plugin refuses to start");
}

static int init_fails_silently(const daecl_host *host, daecl_err *err)
{
    (void)host;
    (void)err;
    return DAECL_EPLUGIN;
}

static int check_ok(const daecl_param_value *values, daecl_err *err)
{
    (void)values;
    (void)err;
    return 0;
}

static int check_refuses(const daecl_param_value *values, daecl_err *err)
{
    (void)values;
    err->status = DAECL_ECONFIG;
    snprintf(err->msg, sizeof err->msg, "the fuzzed plugin refuses its parameters");
    return DAECL_ECONFIG;
}

typedef union any_ops {
    uint32_t size;
    daecl_corruption_ops corruption;
    daecl_likelihood_ops likelihood;
    daecl_backend_ops backend;
} any_ops;

static void set_slot(void *table, size_t off)
{
    void (*fn)(void) = dummy_op;
    memcpy((char *)table + off, &fn, sizeof fn);
}

/* The op slots of a kind's table: offsets of its required function pointers. */
static size_t op_slots(uint32_t kind, size_t *offs, size_t max)
{
    size_t n = 0;
    if (kind == DAECL_KIND_LIKELIHOOD) {
        offs[n++] = offsetof(daecl_likelihood_ops, host_loss_grad);
        offs[n++] = offsetof(daecl_likelihood_ops, host_mean);
        offs[n++] = offsetof(daecl_likelihood_ops, host_sample);
    } else if (kind == DAECL_KIND_BACKEND) {
        for (size_t o = offsetof(daecl_backend_ops, open);
             o + sizeof(void *) <= sizeof(daecl_backend_ops) && n < max; o += sizeof(void *))
            offs[n++] = o;
    } else {
        offs[n++] = offsetof(daecl_corruption_ops, host_apply);
    }
    return n;
}

static size_t ops_size(uint32_t kind)
{
    return kind == DAECL_KIND_LIKELIHOOD ? sizeof(daecl_likelihood_ops)
           : kind == DAECL_KIND_BACKEND  ? sizeof(daecl_backend_ops)
                                         : sizeof(daecl_corruption_ops);
}

/* A copy of `full` cut (or zero-padded) to exactly `size` bytes, at least
 * `min_size` (what the core reads before it looks at the size). */
static void *exact_copy(reader *r, const void *full, size_t full_size, size_t size, size_t min_size)
{
    size_t n = size < min_size ? min_size : size;
    if (n > 4096)
        n = 4096; /* more than any table of this core: its reads stay inside */
    char *p = own(r, calloc(1, n));
    memcpy(p, full, n < full_size ? n : full_size);
    return p;
}

static const daecl_plugin *build(reader *r, int *check_sel)
{
    daecl_plugin d = {0};
    uint8_t size_sel = u8(r);
    uint32_t size = size_sel == 0   ? sizeof(daecl_plugin)
                    : size_sel == 1 ? sizeof(daecl_plugin) - 8
                    : size_sel == 2 ? 16
                    : size_sel == 3 ? sizeof(daecl_plugin) + 64
                                    : u16(r);
    d.size = size;
    d.abi_major = (uint16_t)(DAECL_ABI_MAJOR + (int8_t)u8(r));
    d.abi_minor = (uint16_t)(DAECL_ABI_MINOR + (int8_t)u8(r));
    d.abi_sizes = DAECL_ABI_SIZES ^ u8(r);
    uint8_t kind = u8(r);
    d.kind = kind == 0 ? DAECL_KIND_CORRUPTION : kind == 255 ? 0u : kind;
    d.name = str(r);
    uint8_t unset = u8(r);
    d.version = unset & 1 ? NULL : "1.0.0";
    d.summary = unset & 2 ? NULL : "a fuzzed plugin";
    d.license = unset & 4 ? NULL : "MIT";
    d.n_params = u8(r);
    d.param_size = sizeof(daecl_param_spec);
    int params_null = u8(r) & 1;
    if (d.n_params && !params_null) {
        daecl_param_spec *ps = own(r, calloc(d.n_params, sizeof *ps));
        for (uint32_t i = 0; i < d.n_params; i++) {
            ps[i].name = str(r);
            ps[i].type = (daecl_param_type)u8(r);
            ps[i].def[0] = num(r);
            ps[i].def[1] = num(r);
            ps[i].min = num(r);
            ps[i].max = num(r);
            ps[i].def_str = str(r);
            ps[i].choices = str(r);
            ps[i].doc = str(r);
        }
        d.params = ps;
    }
    static int (*const inits[])(const daecl_host *, daecl_err *) = {NULL, init_ok, init_fails,
                                                                    init_fails_silently};
    d.init = inits[u8(r) % 4];
    *check_sel = u8(r) % 3;
    d.check = *check_sel == 1 ? check_ok : *check_sel == 2 ? check_refuses : NULL;

    any_ops ops;
    memset(&ops, 0, sizeof ops);
    uint8_t ops_mode = u8(r) % 4;
    size_t full = ops_size(d.kind);
    uint32_t table_size = (uint32_t)full, mask = UINT32_MAX;
    if (ops_mode == 2)
        table_size = u16(r);
    else if (ops_mode == 3)
        mask = u32(r);
    size_t offs[64];
    size_t n_slots = op_slots(d.kind, offs, 64);
    for (size_t i = 0; i < n_slots; i++)
        if (mask >> (i % 32) & 1)
            set_slot(&ops, offs[i]);
    ops.size = table_size;
    uint8_t ppd = u8(r);
    const char *cl = str(r);
    if (d.kind == DAECL_KIND_LIKELIHOOD) {
        ops.likelihood.params_per_dim = ppd ? ppd : 1;
        ops.likelihood.cl_source = cl;
    } else if (d.kind != DAECL_KIND_BACKEND) {
        ops.corruption.cl_source = cl;
    }
    d.ops = ops_mode == 1 ? NULL : exact_copy(r, &ops, sizeof ops, table_size, sizeof(uint32_t));

    /* The core reads size, abi_major and abi_minor before it checks size. */
    return exact_copy(r, &d, sizeof d, size, offsetof(daecl_plugin, abi_sizes));
}

/* Companions of the other kinds, so a config can name one plugin of each. */
static any_ops companion_ops[3];
static daecl_plugin companions[3];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char *names[3] = {"fz_corruption", "fz_likelihood", "fz_backend"};
    for (uint32_t k = 0; k < 3; k++) {
        uint32_t kind = k + 1;
        size_t offs[64];
        size_t n = op_slots(kind, offs, 64);
        for (size_t i = 0; i < n; i++)
            set_slot(&companion_ops[k], offs[i]);
        companion_ops[k].size = (uint32_t)ops_size(kind);
        if (kind == DAECL_KIND_LIKELIHOOD)
            companion_ops[k].likelihood.params_per_dim = 1;
        companions[k] = (daecl_plugin){DAECL_PLUGIN_HEAD(kind), .name = names[k],
                                       .version = "1", .summary = "companion", .license = "MIT",
                                       .ops = &companion_ops[k]};
    }
    return 0;
}

/* A config naming the accepted plugin in its section, companions elsewhere. */
static void use_in_config(const daecl_registry *reg, const daecl_plugin *p, int check_sel)
{
    const char *sec[3] = {"corruption", "likelihood", "backend"};
    char text[1024];
    size_t n = (size_t)snprintf(text, sizeof text, "data: {train: /fuzz/train.npy}\n");
    for (uint32_t k = 0; k < 3; k++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%s: {plugin: \"%s\"}\n", sec[k],
                              p->kind == k + 1 ? p->name : companions[k].name);
    daecl_config *cfg = NULL;
    daecl_err err = {0};
    int rc = daecl_config_load_string(text, n, "plugin.yaml", NULL, 0, reg, &cfg, &err);
    FUZZ_SAY("config: %s", rc ? err.msg : "loaded");
    if (rc) {
        fuzz_check_err(rc, &err, "daecl_config_load_string");
        FUZZ_CHECK(check_sel == 2, "an accepted plugin's defaults do not load: %s:%d:%d: %s",
                   err.file, err.line, err.col, err.msg);
        return;
    }
    FUZZ_CHECK(check_sel != 2, "a config loaded although the plugin's check() refuses");
    char *y1 = daecl_config_to_yaml(cfg);
    FUZZ_CHECK(y1, "daecl_config_to_yaml returned NULL");
    daecl_config *again = NULL;
    rc = daecl_config_load_string(y1, strlen(y1), "resolved.yaml", NULL, 0, reg, &again, &err);
    if (rc)
        FUZZ_FAIL("the resolved config does not load again: %s:%d:%d: %s\n--- resolved.yaml:\n%s",
                  err.file, err.line, err.col, err.msg, y1);
    char *y2 = daecl_config_to_yaml(again);
    FUZZ_CHECK(y2 && strcmp(y1, y2) == 0,
               "the resolved config changes when loaded again\n--- first:\n%s\n--- second:\n%s",
               y1, y2 ? y2 : "(NULL)");
    free(y1);
    free(y2);
    daecl_config_destroy(again);
    daecl_config_destroy(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {.p = data, .end = data + size};
    int check_sel = 0;
    const daecl_plugin *p = build(&r, &check_sel);

    daecl_err err = {0};
    int rc_valid = daecl_plugin_validate(p, "fuzz.so", &err);
    if (rc_valid) {
        fuzz_check_err(rc_valid, &err, "daecl_plugin_validate");
        FUZZ_CHECK(rc_valid == DAECL_EPLUGIN, "a refusal with status %d, not EPLUGIN", rc_valid);
        FUZZ_CHECK(strstr(err.msg, "fuzz.so"), "the refusal does not name the file: %s", err.msg);
    }

    daecl_registry *reg = NULL;
    if (daecl_registry_create("", &reg, &err))
        FUZZ_FAIL("no empty registry: %s", err.msg);
    for (int k = 0; k < 3; k++)
        if (daecl_registry_add(reg, &companions[k], "companion", &err))
            FUZZ_FAIL("a companion plugin is refused: %s", err.msg);
    daecl_err aerr = {0};
    int rc_add = daecl_registry_add(reg, p, "fuzz.so", &aerr);
    FUZZ_SAY("%s", rc_add ? aerr.msg : "accepted");
    if (rc_add)
        fuzz_check_err(rc_add, &aerr, "daecl_registry_add");
    FUZZ_CHECK(!rc_valid || rc_add, "the registry accepted a descriptor that validation refuses");
    if (!rc_add) {
        FUZZ_CHECK(daecl_registry_count(reg) == 4, "accepted, but the registry holds %zu plugins",
                   daecl_registry_count(reg));
        const daecl_plugin *found = daecl_registry_find(reg, p->kind, p->name, NULL);
        FUZZ_CHECK(found && found->n_params == p->n_params, "the accepted plugin is not found");
        float packed[DAECL_MAX_PACKED_PARAMS];
        daecl_param_value values[64];
        memset(values, 0, sizeof values);
        FUZZ_CHECK(daecl_params_pack(found->params, found->n_params, values, packed) <=
                       DAECL_MAX_PACKED_PARAMS,
                   "packed more than DAECL_MAX_PACKED_PARAMS values");
        use_in_config(reg, found, check_sel);
    }
    daecl_registry_destroy(reg);
    for (size_t i = 0; i < r.n_owned; i++)
        free(r.owned[i]);
    return 0;
}
