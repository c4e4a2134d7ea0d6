/* daecl — the config schema as data (config_schema.h): the core sections'
 * key tables, the one parser that turns a YAML scalar into a value of a
 * daecl_param_spec (core keys and plugin parameters alike), number and
 * string formatting, nearest-name suggestions, and the docs key reference. */
#include "core/config_schema.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/utf8.h"

/* ---- the tables ------------------------------------------------------------ */

#define INT53 9007199254740991.0   /* 2^53 - 1: every whole number up to it is a double */
#define BELOW_1 (1.0 - 0x1p-53)    /* [0, 1) as an inclusive bound */
#define ABOVE_0 DBL_TRUE_MIN       /* (0, x] as an inclusive bound */

#define CFG(field) offsetof(daecl_config, field), sizeof(((daecl_config *)0)->field)
#define LAYER(field) offsetof(daecl_layer_spec, field), sizeof(((daecl_layer_spec *)0)->field)

_Static_assert(sizeof(daecl_act) == sizeof(int), "daecl_act is stored as an int");
_Static_assert(sizeof(daecl_optim_kind) == sizeof(int), "daecl_optim_kind is stored as an int");

static const int optim_values[] = {DAECL_OPTIM_SGD, DAECL_OPTIM_ADAM, DAECL_OPTIM_ADAMW};
static const int ckpt_values[] = {DAECL_CKPT_EPOCH, DAECL_CKPT_STEP};
static const int schedule_values[] = {DAECL_SCHEDULE_CONSTANT, DAECL_SCHEDULE_COSINE};
static const int act_values[] = {DAECL_ACT_SIGMOID, DAECL_ACT_TANH, DAECL_ACT_RELU,
                                 DAECL_ACT_LINEAR};

static const daecl__cfg_key top_keys[] = {
    {{"name", DAECL_PARAM_STRING, {0, 0}, "run", 0, 0, NULL,
      "the run's name, and the name of its folder under output.dir"},
     CFG(name), NULL, DAECL__KEY_RUN_NAME},
    {{"seed", DAECL_PARAM_INT, {0, 0}, NULL, 0, INT53, NULL,
      "seed of every random stream (initialisation, shuffling, corruption)"},
     CFG(seed), NULL, 0},
};

static const daecl__cfg_key data_keys[] = {
    {{"train", DAECL_PARAM_STRING, {0, 0}, NULL, 0, 0, NULL,
      "training examples: an IDX file (plain or gzip), a .npy file (float32 or uint8), or a "
      "generated 2-D toy density toy:NAME?key=value&... (docs/config.md)"},
     CFG(data.train), NULL, DAECL__KEY_REQUIRED | DAECL__KEY_PATH | DAECL__KEY_TOY},
    {{"test", DAECL_PARAM_STRING, {0, 0}, "", 0, 0, NULL,
      "test examples, as data.train (a toy source with split=test); \"\" = no test set"},
     CFG(data.test), NULL, DAECL__KEY_PATH | DAECL__KEY_TOY},
    {{"train_labels", DAECL_PARAM_STRING, {0, 0}, "", 0, 0, NULL,
      "labels of the training examples, for the linear probe; \"\" = none"},
     CFG(data.train_labels), NULL, DAECL__KEY_PATH},
    {{"test_labels", DAECL_PARAM_STRING, {0, 0}, "", 0, 0, NULL,
      "labels of the test examples; \"\" = none"},
     CFG(data.test_labels), NULL, DAECL__KEY_PATH},
    {{"train_limit", DAECL_PARAM_INT, {0, 0}, NULL, 0, INT53, NULL,
      "use only the first N training rows; 0 = all"},
     CFG(data.train_limit), NULL, 0},
    {{"test_limit", DAECL_PARAM_INT, {0, 0}, NULL, 0, INT53, NULL,
      "use only the first N test rows; 0 = all"},
     CFG(data.test_limit), NULL, 0},
    {{"valid_fraction", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, 0.5, NULL,
      "hold out this fraction of the training rows (the last ones, after train_limit, and "
      "their labels) as a validation set that is never trained on: each epoch reports its "
      "NLL, for choosing settings without reading the test set; 0 = none"},
     CFG(data.valid_fraction), NULL, 0},
    {{"resident_max_mb", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, INFINITY, NULL,
      "keep the training set on the device only when it takes at most this many MiB; 0 = "
      "decide from the device's memory"},
     CFG(data.resident_max_mb), NULL, 0},
    {{"max_mb", DAECL_PARAM_FLOAT, {16384, 0}, NULL, ABOVE_0, 1e9, NULL,
      "largest data set (and label array) in MiB daecl will allocate; raise it for bigger data"},
     CFG(data.max_mb), NULL, 0},
    {{"shape", 0, {0, 0}, "[]", 0, 0, NULL,
      "one example's shape, rows excluded, as row-major dimensions ([28, 28]); what "
      "row-granular corruptions see; [] = the data file's (IDX dimensions, .npy shape)"},
     0, 0, NULL, DAECL__KEY_SHAPE},
};

static const daecl__cfg_key model_keys[] = {
    {{"encoder", 0, {0, 0}, "[{units: 1000, activation: sigmoid}]", 0, 0, NULL,
      "the encoder's layers, input side first: a list of 1 to 16 layers"},
     0, 0, NULL, DAECL__KEY_LAYERS},
    {{"decoder", 0, {0, 0}, "mirror", 0, 0, NULL,
      "mirror (the encoder's hidden layers in reverse) or a list of 0 to 16 hidden layers; "
      "the linear output layer of k*D units is always added and never listed"},
     0, 0, NULL, DAECL__KEY_LAYERS},
    {{"tied_weights", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL,
      "each decoder weight is the transposed weight of its mirror encoder layer; needs a "
      "likelihood with 1 parameter per dimension and a mirrored decoder"},
     CFG(model.tied_weights), NULL, 0},
};

static const daecl__cfg_key optimizer_keys[] = {
    {{"name", DAECL_PARAM_ENUM, {0, 0}, "sgd", 0, 0, "sgd|adam|adamw",
      "the update rule, as in torch.optim: SGD, Adam (L2 weight decay) or AdamW (decoupled)"},
     CFG(optimizer.kind), optim_values, 0},
    {{"lr", DAECL_PARAM_FLOAT, {0.1, 0}, NULL, ABOVE_0, 1e6, NULL, "learning rate"},
     CFG(optimizer.lr), NULL, 0},
    {{"momentum", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, BELOW_1, NULL, "SGD momentum; 0 = none"},
     CFG(optimizer.momentum), NULL, 0},
    {{"nesterov", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL,
      "Nesterov momentum (SGD); needs momentum > 0, as in PyTorch"},
     CFG(optimizer.nesterov), NULL, 0},
    {{"weight_decay", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, 1e6, NULL,
      "weight decay: added to the gradient (sgd, adam) or applied to the weight (adamw)"},
     CFG(optimizer.weight_decay), NULL, 0},
    {{"beta1", DAECL_PARAM_FLOAT, {0.9, 0}, NULL, 0, BELOW_1, NULL,
      "Adam's decay rate of the gradient's running mean"},
     CFG(optimizer.beta1), NULL, 0},
    {{"beta2", DAECL_PARAM_FLOAT, {0.999, 0}, NULL, 0, BELOW_1, NULL,
      "Adam's decay rate of the squared gradient's running mean"},
     CFG(optimizer.beta2), NULL, 0},
    {{"eps", DAECL_PARAM_FLOAT, {1e-8, 0}, NULL, ABOVE_0, 1, NULL,
      "Adam's term added to the denominator"},
     CFG(optimizer.eps), NULL, 0},
    {{"schedule", DAECL_PARAM_ENUM, {0, 0}, "constant", 0, 0, "constant|cosine",
      "the learning rate over each optimiser phase (a run, a stage of a stack, a "
      "fine-tuning): constant lr, or cosine from lr down to lr_min at the phase's last step, "
      "as torch's CosineAnnealingLR with T_max the phase's steps"},
     CFG(optimizer.schedule), schedule_values, 0},
    {{"lr_min", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, 1e6, NULL,
      "the cosine schedule's learning rate at the end of the phase (eta_min)"},
     CFG(optimizer.lr_min), NULL, 0},
};

static const daecl__cfg_key train_keys[] = {
    {{"epochs", DAECL_PARAM_INT, {10, 0}, NULL, 1, 1e6, NULL, "passes over the training set"},
     CFG(train.epochs), NULL, 0},
    {{"batch_size", DAECL_PARAM_INT, {128, 0}, NULL, 1, 65536, NULL, "examples per step"},
     CFG(train.batch_size), NULL, 0},
    {{"log_every", DAECL_PARAM_INT, {100, 0}, NULL, 0, 1e9, NULL,
      "steps between log lines; 0 = once per epoch"},
     CFG(train.log_every), NULL, 0},
    {{"max_steps", DAECL_PARAM_INT, {0, 0}, NULL, 0, INT53, NULL,
      "stop after this many steps in all; 0 = no limit"},
     CFG(train.max_steps), NULL, 0},
    {{"checkpoint_every", DAECL_PARAM_INT, {1, 0}, NULL, 0, 1e9, NULL,
      "write checkpoint.safetensors every N checkpoint_units; 0 = only at the end (a run "
      "always writes one when it ends or is interrupted)"},
     CFG(train.checkpoint_every), NULL, 0},
    {{"checkpoint_unit", DAECL_PARAM_ENUM, {0, 0}, "epoch", 0, 0, "epoch|step",
      "what checkpoint_every counts"},
     CFG(train.checkpoint_unit), ckpt_values, 0},
    {{"walkback", DAECL_PARAM_INT, {0, 0}, NULL, 0, 64, NULL,
      "walkback training (Bengio et al. 2013): up to this many extra pairs per example, each "
      "the corruption of a state of the model's own chain started at the example, paired with "
      "the clean example; 0 = none"},
     CFG(train.walkback), NULL, 0},
    {{"walkback_p", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, BELOW_1, NULL,
      "0: every example takes all `walkback` pairs (fixed k, as the reference GSN code); above "
      "0: after each pair the chain goes on with this probability, up to `walkback` pairs (the "
      "paper's geometric walkback)"},
     CFG(train.walkback_p), NULL, 0},
    {{"walkback_chain", DAECL_PARAM_ENUM, {0, 0}, "sample", 0, 0, "sample|mean",
      "how the walkback chain leaves a reconstruction: a draw from the decoder's likelihood, "
      "or its mean"},
     CFG(train.walkback_mean), NULL, 0},
};

static const daecl__cfg_key eval_keys[] = {
    {{"denoising", DAECL_PARAM_BOOL, {1, 0}, NULL, 0, 1, NULL,
      "at the end of training, report the denoising MSE and PSNR on the test set"},
     CFG(eval.denoising), NULL, 0},
    {{"probe", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL,
      "at the end of training, fit a linear probe (multinomial logistic regression) on the "
      "top code of the training set and report its test accuracy; needs data.train_labels "
      "and data.test_labels"},
     CFG(eval.probe), NULL, 0},
    {{"probe_baseline", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL,
      "also fit the same probe on the raw inputs, for comparison"},
     CFG(eval.probe_baseline), NULL, 0},
    {{"probe_layers", DAECL_PARAM_ENUM, {0, 0}, "each", 0, 0, "top|each",
      "which codes the probe sees when the encoder has several layers: the top one only, or "
      "each layer's and all of them side by side as well (one fit each); one layer: the same"},
     CFG(eval.probe_each), NULL, 0},
    {{"probe_l2", DAECL_PARAM_FLOAT, {1e-5, 0}, NULL, ABOVE_0, 1e6, NULL,
      "lambda of the probe's objective: mean cross-entropy + lambda/2 times the sum of the "
      "squared weights (not the biases); scikit-learn's C = 1/(lambda n) for n training rows"},
     CFG(eval.probe_l2), NULL, 0},
    {{"probe_tol", DAECL_PARAM_FLOAT, {1e-6, 0}, NULL, ABOVE_0, 1, NULL,
      "the probe has converged when every entry of its objective's gradient (W and b) is at "
      "most this in absolute value"},
     CFG(eval.probe_tol), NULL, 0},
    {{"probe_max_iter", DAECL_PARAM_INT, {5000, 0}, NULL, 1, 1e6, NULL,
      "the most L-BFGS iterations of the probe; one that stops here without converging is "
      "reported with probe_converged false and a warning"},
     CFG(eval.probe_max_iter), NULL, 0},
};

static const daecl__cfg_key output_keys[] = {
    {{"dir", DAECL_PARAM_STRING, {0, 0}, "runs", 0, 0, NULL,
      "the folder that holds run folders, relative to the current directory"},
     CFG(output.dir), NULL, 0},
};

static const daecl__cfg_key stack_keys[] = {
    {{"greedy", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL,
      "train the encoder layer by layer (stacked DAEs): stage k trains layer k and its mirror "
      "as a DAE on the clean codes of the layers below, which stay fixed; needs decoder: mirror"},
     CFG(stack.greedy), NULL, 0},
    {{"finetune_epochs", DAECL_PARAM_INT, {0, 0}, NULL, 0, 1e6, NULL,
      "after the greedy stages, train the whole stack end to end as one deep DAE (corruption at "
      "the input) for this many epochs; 0 = none"},
     CFG(stack.finetune_epochs), NULL, 0},
    {{"stages", 0, {0, 0}, "[]", 0, 0, NULL,
      "what stage k changes, item k: a mapping of keys under corruption, likelihood, optimizer "
      "(not its name) and train.epochs to values, e.g. {corruption.sigma: 0.3, "
      "train.epochs: 5}; stages not listed take the config as it is"},
     0, 0, NULL, DAECL__KEY_STAGES},
};

static const daecl__cfg_key finetune_keys[] = {
    {{"corrupt", DAECL_PARAM_BOOL, {0, 0}, NULL, 0, 1, NULL,
      "`daecl finetune` trains the classifier on inputs corrupted by the corruption section, "
      "drawn afresh at every step, as a regulariser (with masking, input dropout without "
      "rescaling); its evaluation stays on clean inputs"},
     CFG(finetune.corrupt), NULL, 0},
};

static const daecl__cfg_key parallel_keys[] = {
    {{"devices", 0, {0, 0}, "[]", 0, 0, NULL,
      "the devices that train a replica each, one node's list: 0 to 16 backend sections "
      "(`plugin: NAME`, its parameters, an optional `share`), each device once; [] = the "
      "backend section's one device"},
     0, 0, NULL, DAECL__KEY_DEVICES},
    {{"measure_steps", DAECL_PARAM_INT, {8, 0}, NULL, 1, 1e6, NULL,
      "steps timed before the shares of devices without a `share` are set from their "
      "measured throughput"},
     CFG(parallel.measure_steps), NULL, 0},
    {{"rebalance", DAECL_PARAM_BOOL, {1, 0}, NULL, 0, 1, NULL,
      "measure the throughput again at every epoch boundary and set the measured shares anew"},
     CFG(parallel.rebalance), NULL, 0},
    {{"drop_slow", DAECL_PARAM_BOOL, {1, 0}, NULL, 0, 1, NULL,
      "leave out the replicas that would make a step slower than it is without them (their "
      "synchronisation costs more than their rows save)"},
     CFG(parallel.drop_slow), NULL, 0},
    {{"comm", DAECL_PARAM_STRING, {0, 0}, "auto", 0, 0, NULL,
      "how ranks talk: auto (mpi under mpirun, else one process), none (one process), or a "
      "comm plugin's name"},
     CFG(parallel.comm), NULL, DAECL__KEY_NAME_ID},
};

const daecl_param_spec daecl__cfg_share_spec = {
    "share", DAECL_PARAM_FLOAT, {0, 0}, NULL, 0, 1e9, NULL,
    "this device's part of every global batch, as a weight relative to the other devices' "
    "shares; 0 = measured"};

const daecl__cfg_key daecl__cfg_layer_keys[] = {
    {{"units", DAECL_PARAM_INT, {0, 0}, NULL, 1, 1e6, NULL, "the layer's width"},
     LAYER(units), NULL, DAECL__KEY_REQUIRED},
    {{"activation", DAECL_PARAM_ENUM, {0, 0}, "sigmoid", 0, 0, "sigmoid|tanh|relu|linear",
      "the layer's nonlinearity"},
     LAYER(act), act_values, 0},
};
const size_t daecl__cfg_n_layer_keys = sizeof daecl__cfg_layer_keys / sizeof daecl__cfg_layer_keys[0];

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define PLUGIN_SEC(nm, field, kind, def, doc)                                               \
    {nm, DAECL__SEC_PLUGIN, NULL, 0, offsetof(daecl_config, field), kind, def, doc}

const daecl__cfg_section daecl__cfg_sections[] = {
    {"", DAECL__SEC_KEYS, top_keys, N(top_keys), 0, 0, NULL, "the run"},
    {"data", DAECL__SEC_KEYS, data_keys, N(data_keys), 0, 0, NULL,
     "the data sets; paths are relative to the config file's folder"},
    {"model", DAECL__SEC_MODEL, model_keys, N(model_keys), 0, 0, NULL, "the autoencoder"},
    PLUGIN_SEC("corruption", corruption, DAECL_KIND_CORRUPTION, "masking",
               "the corruption process C(x~ | x)"),
    PLUGIN_SEC("likelihood", likelihood, DAECL_KIND_LIKELIHOOD, "bernoulli",
               "the decoder's likelihood p(x | a); its loss is -log p in nats"),
    {"optimizer", DAECL__SEC_KEYS, optimizer_keys, N(optimizer_keys), 0, 0, NULL,
     "the optimiser"},
    {"train", DAECL__SEC_KEYS, train_keys, N(train_keys), 0, 0, NULL, "the training loop"},
    {"eval", DAECL__SEC_KEYS, eval_keys, N(eval_keys), 0, 0, NULL,
     "what `daecl train` evaluates at the end (`daecl eval` can do the same later)"},
    PLUGIN_SEC("backend", backend, DAECL_KIND_BACKEND, "cpu", "the compute backend"),
    {"parallel", DAECL__SEC_KEYS, parallel_keys, N(parallel_keys), 0, 0, NULL,
     "data parallelism over devices and processes"},
    {"stack", DAECL__SEC_KEYS, stack_keys, N(stack_keys), 0, 0, NULL,
     "stacked DAEs: greedy layer-wise pretraining, then end-to-end fine-tuning"},
    {"finetune", DAECL__SEC_KEYS, finetune_keys, N(finetune_keys), 0, 0, NULL,
     "supervised fine-tuning of a trained run (`daecl finetune`)"},
    {"output", DAECL__SEC_KEYS, output_keys, N(output_keys), 0, 0, NULL, "where runs go"},
};
const size_t daecl__cfg_n_sections = N(daecl__cfg_sections);

/* ---- values ----------------------------------------------------------------- */

const char *daecl__choice_at(const char *choices, size_t i, size_t *len)
{
    const char *c = choices;
    if (!c)
        return NULL;
    for (;;) {
        const char *bar = strchr(c, '|');
        size_t l = bar ? (size_t)(bar - c) : strlen(c);
        if (i == 0) {
            *len = l;
            return c;
        }
        if (!bar)
            return NULL;
        i--;
        c = bar + 1;
    }
}

static long choice_index(const char *choices, const char *s)
{
    size_t len, slen = strlen(s);
    const char *c;
    for (size_t i = 0; (c = daecl__choice_at(choices, i, &len)) != NULL; i++)
        if (len == slen && memcmp(c, s, len) == 0)
            return (long)i;
    return -1;
}

void daecl__param_default(const daecl_param_spec *spec, daecl_param_value *out)
{
    out->num[0] = spec->def[0];
    out->num[1] = spec->def[1];
    out->str = spec->def_str;
    if (spec->type == DAECL_PARAM_ENUM) {
        long i = spec->def_str ? choice_index(spec->choices, spec->def_str) : -1;
        out->num[0] = i < 0 ? 0 : (double)i;
    } else if (spec->type == DAECL_PARAM_STRING && !out->str) {
        out->str = "";
    }
}

/* Decimal floats (digits, point, exponent) and .inf/.nan in YAML's spellings:
 * not C's "inf", hex floats or "1_000", which strtod alone would take. */
static int scan_float(const char *s, double *v)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0) {
        *v = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (p == s && (strcmp(p, ".nan") == 0 || strcmp(p, ".NaN") == 0 || strcmp(p, ".NAN") == 0)) {
        *v = NAN;
        return 0;
    }
    size_t digits = 0;
    while (isdigit((unsigned char)*p))
        p++, digits++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++, digits++;
    }
    if (digits == 0)
        return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p)
        return -1;
    *v = strtod(s, NULL);
    if (isinf(*v))
        return -2; /* 1e999: too large for a double */
    return 0;
}

/* Plain decimal whole numbers, optionally signed; *big when beyond 2^53 - 1. */
static int scan_int(const char *s, double *v, int *big)
{
    const char *p = s;
    int neg = 0;
    uint64_t acc = 0;
    *big = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        if (acc <= (uint64_t)INT53)
            acc = acc * 10 + (uint64_t)(*p - '0');
    }
    if (*p)
        return -1;
    if (acc > (uint64_t)INT53)
        *big = 1;
    *v = neg ? -(double)acc : (double)acc;
    return 0;
}

static int looks_numeric(const char *s)
{
    double v;
    int big;
    return scan_float(s, &v) != -1 || scan_int(s, &v, &big) == 0;
}

static int in_range(const daecl_param_spec *spec, double v)
{
    return v >= spec->min && v <= spec->max; /* false for NaN */
}

static int fail(char *why, size_t n, const char *fmt, ...) DAECL_PRINTF(3, 4);
static int fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *quote_hint(const daecl__ynode *val)
{
    return val->kind == DAECL__Y_SCALAR && val->quoted && looks_numeric(val->str)
               ? "; remove the quotes"
               : "";
}

/* A FLOAT or INT scalar (also one end of a FLOAT2), range-checked. */
static int parse_number(const daecl_param_spec *spec, int whole, const char *where,
                        const daecl__ynode *val, double *v, char *why, size_t n_why)
{
    char found[96], range[96];
    const char *what = whole ? "a whole number" : "a number";
    if (val->kind != DAECL__Y_SCALAR || val->quoted)
        return fail(why, n_why, "%s must be %s, not %s%s", where, what,
                    daecl__ynode_describe(val, found, sizeof found), quote_hint(val));
    const char *digits = val->str + (val->str[0] == '+' || val->str[0] == '-');
    if (digits[0] == '0' && digits[1] && strspn(digits, "0123456789") == strlen(digits))
        return fail(why, n_why, "%s must not start with a 0, not '%s': YAML 1.1 reads it as an "
                    "octal number and YAML 1.2 as a decimal one; write it without the leading "
                    "zeros", where, val->str);
    int big = 0, rc = whole ? scan_int(val->str, v, &big) : scan_float(val->str, v);
    if (rc == -1)
        return fail(why, n_why, "%s must be %s, not %s", where, what,
                    daecl__ynode_describe(val, found, sizeof found));
    daecl__fmt_range(spec, range, sizeof range);
    if (rc == -2)
        return fail(why, n_why, "%s is too large for a double (%s); write .inf if you mean "
                    "infinity", where, daecl__ynode_describe(val, found, sizeof found));
    if (big) {
        if (range[0])
            return fail(why, n_why, "%s must be %s, not %s", where, range,
                        daecl__ynode_describe(val, found, sizeof found));
        return fail(why, n_why, "%s is too large (%s); whole numbers up to 9007199254740991 fit",
                    where, daecl__ynode_describe(val, found, sizeof found));
    }
    if (!in_range(spec, *v)) {
        if (isnan(*v) && !range[0])
            return fail(why, n_why, "%s must be a number, not .nan", where);
        return fail(why, n_why, "%s must be %s, not %s", where, range, val->str);
    }
    return 0;
}

static int is_yaml11_bool(const char *s)
{
    static const char *const words[] = {"yes", "no", "on", "off", "y", "n"};
    for (size_t i = 0; i < N(words); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

int daecl__param_parse(const daecl_param_spec *spec, const char *where, const daecl__ynode *val,
                       daecl_param_value *out, const daecl__ynode **at, char *why, size_t n_why)
{
    char found[96];
    *at = val;
    out->num[0] = out->num[1] = 0;
    out->str = NULL;
    switch (spec->type) {
    case DAECL_PARAM_FLOAT:
    case DAECL_PARAM_INT:
        return parse_number(spec, spec->type == DAECL_PARAM_INT, where, val, &out->num[0], why,
                            n_why);
    case DAECL_PARAM_BOOL:
        if (val->kind == DAECL__Y_SCALAR && !val->quoted) {
            const char *s = val->str;
            if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
                out->num[0] = 1;
                return 0;
            }
            if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
                return 0;
            if (is_yaml11_bool(s))
                return fail(why, n_why,
                            "%s must be true or false, not '%s' (YAML 1.1 spellings such as "
                            "yes, no, on and off are not accepted)",
                            where, s);
        }
        return fail(why, n_why, "%s must be true or false, not %s", where,
                    daecl__ynode_describe(val, found, sizeof found));
    case DAECL_PARAM_STRING:
        if (val->kind != DAECL__Y_SCALAR)
            return fail(why, n_why, "%s must be a string, not %s", where,
                        daecl__ynode_describe(val, found, sizeof found));
        out->str = val->str;
        return 0;
    case DAECL_PARAM_ENUM: {
        long i = val->kind == DAECL__Y_SCALAR ? choice_index(spec->choices, val->str) : -1;
        if (i >= 0) {
            out->num[0] = (double)i;
            out->str = val->str;
            return 0;
        }
        char list[256];
        size_t len, used = 0;
        const char *c;
        daecl__near near;
        daecl__near_init(&near, val->kind == DAECL__Y_SCALAR ? val->str : "");
        list[0] = '\0';
        for (size_t k = 0; (c = daecl__choice_at(spec->choices, k, &len)) != NULL; k++) {
            if (used < sizeof list)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%.*s",
                                         k ? ", " : "", (int)len, c);
            daecl__near_add(&near, c, len);
        }
        daecl__ynode_describe(val, found, sizeof found);
        if (near.best)
            return fail(why, n_why, "%s must be one of %s, not %s; did you mean '%.*s'?", where,
                        list, found, (int)near.best_len, near.best);
        return fail(why, n_why, "%s must be one of %s, not %s", where, list, found);
    }
    case DAECL_PARAM_FLOAT2: {
        char range[96];
        if (val->kind != DAECL__Y_SEQ || val->n != 2) {
            if (val->kind == DAECL__Y_SEQ)
                return fail(why, n_why, "%s must be a pair [lo, hi] of numbers, not a list of %zu",
                            where, val->n);
            return fail(why, n_why, "%s must be a pair [lo, hi] of numbers, not %s", where,
                        daecl__ynode_describe(val, found, sizeof found));
        }
        daecl_param_spec any = *spec;
        any.min = -INFINITY;
        any.max = INFINITY;
        for (int k = 0; k < 2; k++) {
            *at = val->vals[k];
            if (parse_number(&any, 0, where, val->vals[k], &out->num[k], why, n_why) != 0)
                return -1;
            if (!in_range(spec, out->num[k]))
                return fail(why, n_why, "%s must have both ends %s, not %s", where,
                            daecl__fmt_range(spec, range, sizeof range), val->vals[k]->str);
        }
        *at = val;
        if (out->num[0] > out->num[1])
            return fail(why, n_why, "%s needs lo <= hi, not [%s, %s]", where, val->vals[0]->str,
                        val->vals[1]->str);
        return 0;
    }
    }
    return fail(why, n_why, "%s has a parameter type (%d) this daecl does not know", where,
                (int)spec->type);
}

/* ---- storing into the config ------------------------------------------------ */

int daecl__key_store(const daecl__cfg_key *key, void *base, const daecl_param_value *v)
{
    char *at = (char *)base + key->offset;
    switch (key->spec.type) {
    case DAECL_PARAM_INT:
        if (key->size == sizeof(uint32_t)) {
            uint32_t u = (uint32_t)v->num[0];
            memcpy(at, &u, sizeof u);
        } else {
            uint64_t u = (uint64_t)v->num[0];
            memcpy(at, &u, sizeof u);
        }
        return 0;
    case DAECL_PARAM_FLOAT:
        memcpy(at, &v->num[0], sizeof(double));
        return 0;
    case DAECL_PARAM_BOOL: {
        int b = v->num[0] != 0;
        memcpy(at, &b, sizeof b);
        return 0;
    }
    case DAECL_PARAM_ENUM: {
        int e = key->enum_values ? key->enum_values[(size_t)v->num[0]] : (int)v->num[0];
        memcpy(at, &e, sizeof e);
        return 0;
    }
    case DAECL_PARAM_STRING: {
        const char *s = v->str ? v->str : "";
        size_t len = strlen(s);
        if (len >= key->size)
            return -1;
        memcpy(at, s, len + 1);
        return 0;
    }
    default:
        return 0;
    }
}

void daecl__key_load(const daecl__cfg_key *key, const void *base, daecl_param_value *v)
{
    const char *at = (const char *)base + key->offset;
    v->num[0] = v->num[1] = 0;
    v->str = NULL;
    switch (key->spec.type) {
    case DAECL_PARAM_INT:
        if (key->size == sizeof(uint32_t)) {
            uint32_t u;
            memcpy(&u, at, sizeof u);
            v->num[0] = (double)u;
        } else {
            uint64_t u;
            memcpy(&u, at, sizeof u);
            v->num[0] = (double)u;
        }
        break;
    case DAECL_PARAM_FLOAT:
        memcpy(&v->num[0], at, sizeof(double));
        break;
    case DAECL_PARAM_BOOL: {
        int b;
        memcpy(&b, at, sizeof b);
        v->num[0] = b != 0;
        break;
    }
    case DAECL_PARAM_ENUM: {
        int e;
        memcpy(&e, at, sizeof e);
        v->num[0] = e;
        if (key->enum_values) {
            size_t len;
            for (size_t i = 0; daecl__choice_at(key->spec.choices, i, &len); i++)
                if (key->enum_values[i] == e)
                    v->num[0] = (double)i;
        }
        break;
    }
    case DAECL_PARAM_STRING:
        v->str = at;
        break;
    default:
        break;
    }
}

/* ---- suggestions -------------------------------------------------------------- */

#define NEAR_MAX 64

void daecl__near_init(daecl__near *near, const char *typed)
{
    near->typed = typed;
    near->best = NULL;
    near->best_len = 0;
    near->best_d = (size_t)-1;
}

/* Optimal string alignment distance (Levenshtein plus swaps of neighbours),
 * ignoring case; O(len_a * len_b) on the stack, names are short. */
static size_t osa(const char *a, size_t la, const char *b, size_t lb)
{
    size_t d[NEAR_MAX + 1][NEAR_MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

void daecl__near_add(daecl__near *near, const char *cand, size_t len)
{
    size_t lt = strlen(near->typed);
    if (lt == 0 || lt > NEAR_MAX || len > NEAR_MAX)
        return;
    size_t d = osa(near->typed, lt, cand, len);
    if (lt >= 3 && lt < len && strncasecmp(near->typed, cand, lt) == 0 && d > 1)
        d = 1; /* a prefix of a longer name: "gauss" is close to "gaussian" */
    size_t limit = lt / 3 > 1 ? lt / 3 : 1;
    /* d < the longer length: never suggest a name that shares nothing */
    if (d <= limit && d < (len > lt ? len : lt) && d < near->best_d) {
        near->best = cand;
        near->best_len = len;
        near->best_d = d;
    }
}

/* ---- formatting ------------------------------------------------------------------ */

static int sig_digits(double v)
{
    char buf[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            return p;
    }
    return 17;
}

const char *daecl__fmt_double(double v, char *buf, size_t n)
{
    static const int precisions[] = {6, 9, 15, 17};
    if (isnan(v)) {
        snprintf(buf, n, ".nan");
    } else if (isinf(v)) {
        snprintf(buf, n, v > 0 ? ".inf" : "-.inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, n, "%.0f", v); /* whole numbers in full: 1000000, not 1e+06 */
    } else {
        for (size_t i = 0; i < N(precisions); i++) {
            snprintf(buf, n, "%.*g", precisions[i], v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    return buf;
}

/* Is b the inclusive spelling of an exclusive bound (nextafter of a short
 * number)? Then *nice is that number. */
static int exclusive(double b, double toward, double *nice)
{
    if (fabs(b) == DBL_TRUE_MIN) {
        *nice = 0;
        return 1;
    }
    double u = nextafter(b, toward);
    if (sig_digits(b) >= 16 && sig_digits(u) <= 12) {
        *nice = u;
        return 1;
    }
    return 0;
}

const char *daecl__fmt_range(const daecl_param_spec *spec, char *buf, size_t n)
{
    double lo = spec->min, hi = spec->max, nlo = lo, nhi = hi;
    char a[40], b[40];
    int lo_x = 0, hi_x = 0;
    if (spec->type != DAECL_PARAM_INT) {
        lo_x = isfinite(lo) && exclusive(lo, -INFINITY, &nlo);
        hi_x = isfinite(hi) && exclusive(hi, INFINITY, &nhi);
    }
    daecl__fmt_double(nlo, a, sizeof a);
    daecl__fmt_double(nhi, b, sizeof b);
    if (!(lo > -INFINITY) && !(hi < INFINITY))
        buf[0] = '\0';
    else if (!(hi < INFINITY))
        snprintf(buf, n, "%s %s", lo_x ? "greater than" : "at least", a);
    else if (!(lo > -INFINITY))
        snprintf(buf, n, "%s %s", hi_x ? "less than" : "at most", b);
    else
        snprintf(buf, n, "in %c%s, %s%c", lo_x ? '(' : '[', a, b, hi_x ? ')' : ']');
    return buf;
}

/* ---- output --------------------------------------------------------------------- */

static void sbuf_put(daecl__sbuf *b, const char *s, size_t len)
{
    if (b->oom)
        return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void daecl__sbuf_printf(daecl__sbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        sbuf_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sbuf_put(b, big, (size_t)n);
    free(big);
}

static int plain_ok(const char *s)
{
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off",
                                           "y",    "n",     "null", "~"};
    if (!*s || *s == '-' || looks_numeric(s))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_./-", *p))
            return 0;
    if (*s == '.' && strcasecmp(s, ".inf") == 0)
        return 0;
    for (size_t i = 0; i < N(reserved); i++)
        if (strcasecmp(s, reserved[i]) == 0)
            return 0;
    return 1;
}

/* What may stand unescaped in a double-quoted scalar: what libyaml's reader
 * accepts, less the line breaks it would fold (NEL, LS, PS) and the BOM. */
static int yaml_printable(long cp)
{
    return (cp >= 0x20 && cp <= 0x7E) || (cp >= 0xA0 && cp <= 0xD7FF && cp != 0x2028 &&
                                          cp != 0x2029) ||
           (cp >= 0xE000 && cp <= 0xFFFD && cp != 0xFEFF) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

void daecl__sbuf_yaml_str(daecl__sbuf *b, const char *s)
{
    if (plain_ok(s)) {
        sbuf_put(b, s, strlen(s));
        return;
    }
    sbuf_put(b, "\"", 1);
    const unsigned char *end = (const unsigned char *)s + strlen(s);
    for (const unsigned char *p = (const unsigned char *)s; p < end;) {
        size_t len = 1;
        long cp = daecl_utf8_next(p, (size_t)(end - p), &len);
        if (cp == '"' || cp == '\\') {
            char esc[2] = {'\\', (char)cp};
            sbuf_put(b, esc, 2);
        } else if (cp == '\n') {
            sbuf_put(b, "\\n", 2);
        } else if (cp == '\t') {
            sbuf_put(b, "\\t", 2);
        } else if (cp >= 0 && !yaml_printable(cp)) {
            daecl__sbuf_printf(b, cp < 0x100 ? "\\x%02lX" : "\\u%04lX", cp);
        } else {
            /* printable UTF-8 as it is; bytes that are not UTF-8 cannot be
             * written in YAML at all and pass through (reading fails loudly) */
            sbuf_put(b, (const char *)p, len);
        }
        p += len;
    }
    sbuf_put(b, "\"", 1);
}

void daecl__sbuf_value(daecl__sbuf *b, const daecl_param_spec *spec, const daecl_param_value *v)
{
    char x[40], y[40];
    switch (spec->type) {
    case DAECL_PARAM_FLOAT:
    case DAECL_PARAM_INT:
        daecl__sbuf_printf(b, "%s", daecl__fmt_double(v->num[0], x, sizeof x));
        break;
    case DAECL_PARAM_BOOL:
        daecl__sbuf_printf(b, "%s", v->num[0] != 0 ? "true" : "false");
        break;
    case DAECL_PARAM_STRING:
        daecl__sbuf_yaml_str(b, v->str ? v->str : "");
        break;
    case DAECL_PARAM_ENUM: {
        size_t len = 0;
        const char *c = daecl__choice_at(spec->choices, (size_t)v->num[0], &len);
        char choice[128];
        snprintf(choice, sizeof choice, "%.*s", c ? (int)len : 0, c ? c : "");
        daecl__sbuf_yaml_str(b, choice);
        break;
    }
    case DAECL_PARAM_FLOAT2:
        daecl__sbuf_printf(b, "[%s, %s]", daecl__fmt_double(v->num[0], x, sizeof x),
                           daecl__fmt_double(v->num[1], y, sizeof y));
        break;
    }
}

/* ---- the key reference ------------------------------------------------------------ */

const char *daecl_param_type_name(daecl_param_type type)
{
    switch (type) {
    case DAECL_PARAM_FLOAT:
        return "float";
    case DAECL_PARAM_INT:
        return "int";
    case DAECL_PARAM_BOOL:
        return "bool";
    case DAECL_PARAM_STRING:
        return "string";
    case DAECL_PARAM_ENUM:
        return "enum";
    case DAECL_PARAM_FLOAT2:
        return "[float, float]";
    }
    return "?";
}

static const char *type_name(const daecl__cfg_key *key)
{
    return key->flags & DAECL__KEY_LAYERS    ? "layers"
           : key->flags & DAECL__KEY_SHAPE   ? "list of 1 to 4 whole numbers"
           : key->flags & DAECL__KEY_DEVICES ? "list of devices"
                                             : daecl_param_type_name(key->spec.type);
}

static void reference_row(daecl__sbuf *b, const char *prefix, const daecl__cfg_key *key)
{
    const daecl_param_spec *s = &key->spec;
    char range[128];
    daecl__sbuf_printf(b, "| `%s%s` | %s | ", prefix, s->name, type_name(key));
    if (key->flags & DAECL__KEY_REQUIRED) {
        daecl__sbuf_printf(b, "required");
    } else if (key->flags & (DAECL__KEY_LAYERS | DAECL__KEY_SHAPE | DAECL__KEY_DEVICES)) {
        daecl__sbuf_printf(b, "`%s`", s->def_str);
    } else {
        daecl_param_value v;
        daecl__param_default(s, &v);
        daecl__sbuf_printf(b, "`");
        daecl__sbuf_value(b, s, &v);
        daecl__sbuf_printf(b, "`");
    }
    daecl__sbuf_printf(b, " | ");
    if (s->type == DAECL_PARAM_ENUM && !(key->flags & DAECL__KEY_LAYERS)) {
        size_t len;
        const char *c;
        for (size_t i = 0; (c = daecl__choice_at(s->choices, i, &len)) != NULL; i++)
            daecl__sbuf_printf(b, "%s`%.*s`", i ? ", " : "", (int)len, c);
    } else if ((s->type == DAECL_PARAM_INT || s->type == DAECL_PARAM_FLOAT) &&
               !(key->flags & DAECL__KEY_LAYERS)) {
        daecl__fmt_range(s, range, sizeof range);
        daecl__sbuf_printf(b, "%s", strncmp(range, "in ", 3) == 0 ? range + 3 : range);
    } else if (s->type == DAECL_PARAM_BOOL) {
        daecl__sbuf_printf(b, "`true`, `false`");
    } else if (key->flags & DAECL__KEY_RUN_NAME) {
        daecl__sbuf_printf(b, "1 to 100 of `A-Z a-z 0-9 . _ -`; not `.` or `..`");
    } else if (key->flags & DAECL__KEY_PATH) {
        daecl__sbuf_printf(b, "a file path");
    } else if (key->flags & DAECL__KEY_SHAPE) {
        daecl__sbuf_printf(b, "each 1 to 4294967295; their product is the data's values per "
                              "example");
    } else if (key->flags & DAECL__KEY_DEVICES) {
        daecl__sbuf_printf(b, "0 to %d mappings; see below", DAECL_MAX_REPLICAS);
    } else if (key->flags & DAECL__KEY_NAME_ID) {
        daecl__sbuf_printf(b, "`auto`, `none` or a name of `a-z 0-9 _`");
    }
    daecl__sbuf_printf(b, " | %s |\n", s->doc);
}

char *daecl__config_reference(void)
{
    daecl__sbuf b = {0};
    const char *head = "| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n";
    for (size_t i = 0; i < daecl__cfg_n_sections; i++) {
        const daecl__cfg_section *sec = &daecl__cfg_sections[i];
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s%s", sec->name, sec->name[0] ? "." : "");
        if (sec->name[0])
            daecl__sbuf_printf(&b, "### `%s`: %s\n\n%s", sec->name, sec->doc, head);
        else
            daecl__sbuf_printf(&b, "### Top level: %s\n\n%s", sec->doc, head);
        if (sec->kind == DAECL__SEC_PLUGIN) {
            int backend = sec->plugin_kind == DAECL_KIND_BACKEND;
            daecl__sbuf_printf(&b,
                               "| `%splugin` | string | `%s` | a %s plugin's name%s | which "
                               "plugin%s; `daecl plugins` lists them |\n"
                               "| `%s*` | | | | the plugin's parameters; `daecl plugins NAME` "
                               "lists them |\n",
                               prefix, sec->default_plugin,
                               sec->plugin_kind == DAECL_KIND_CORRUPTION   ? "corruption"
                               : sec->plugin_kind == DAECL_KIND_LIKELIHOOD ? "likelihood"
                                                                           : "backend",
                               backend ? ", or `auto`" : "",
                               backend ? " (`auto`: opencl when an OpenCL GPU or accelerator "
                                         "is present or `DAECL_DEVICE` names a device, else "
                                         "cpu; it takes no parameters)"
                                       : "",
                               prefix);
        }
        for (size_t k = 0; k < sec->n_keys; k++)
            reference_row(&b, prefix, &sec->keys[k]);
        daecl__sbuf_printf(&b, "\n");
        if (sec->kind == DAECL__SEC_MODEL) {
            daecl__sbuf_printf(&b, "### A layer (an item of `model.encoder` or `model.decoder`)"
                                   "\n\n%s",
                               head);
            for (size_t k = 0; k < daecl__cfg_n_layer_keys; k++)
                reference_row(&b, "", &daecl__cfg_layer_keys[k]);
            daecl__sbuf_printf(&b, "\n");
        }
        if (strcmp(sec->name, "parallel") == 0) {
            daecl__cfg_key share = {.spec = daecl__cfg_share_spec};
            daecl__sbuf_printf(&b, "### A device (an item of `parallel.devices`)\n\n%s", head);
            daecl__sbuf_printf(&b, "| `plugin` | string | `cpu` | a backend plugin's name | "
                                   "which backend; `daecl plugins` lists them |\n"
                                   "| `*` | | | | the plugin's parameters, as in `backend` |\n");
            reference_row(&b, "", &share);
            daecl__sbuf_printf(&b, "\n");
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
