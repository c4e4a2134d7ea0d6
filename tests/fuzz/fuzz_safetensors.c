/* daecl fuzzing — the safetensors reader and the checkpoint loader on top
 * of it. One input (a whole .safetensors file) runs three ways:
 *   1. daecl_safetensors_parse from memory; on success every tensor is
 *      listed, every float32 tensor read to its last element (ASan checks
 *      the bounds the header promised) and the metadata looked up;
 *   2. daecl_safetensors_read from a file (memfd), which must agree;
 *   3. daecl_checkpoint_load into a fixed model (4-3-4, sigmoid, one
 *      parameter per dimension: the model corpus/safetensors/ was written
 *      for) and daecl_checkpoint_config. */
#include <unistd.h>

#include "core/checkpoint.h"
#include "core/model.h"
#include "core/safetensors.h"
#include "fuzz.h"

static daecl_model model;
static float *params, *s1, *s2;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static daecl_config cfg; /* only the model section matters to daecl_model_init */
    cfg.model.n_encoder = 1;
    cfg.model.encoder[0] = (daecl_layer_spec){3, DAECL_ACT_SIGMOID};
    cfg.model.decoder_mirror = 1;
    daecl_err err = {0};
    if (daecl_model_init(&model, &cfg, 4, 1, &err))
        FUZZ_FAIL("cannot build the fuzz model: %s", err.msg);
    params = calloc(model.n_params, sizeof(float));
    s1 = calloc(model.n_params, sizeof(float));
    s2 = calloc(model.n_params, sizeof(float));
    if (!params || !s1 || !s2)
        FUZZ_FAIL("out of memory");
    return 0;
}

static void walk(const daecl_safetensors *st)
{
    volatile float sink = 0;
    size_t n = daecl_safetensors_count(st);
    for (size_t i = 0; i < n; i++) {
        const char *name = daecl_safetensors_name_at(st, i);
        FUZZ_CHECK(name, "tensor %zu of %zu has no name", i, n);
        uint32_t ndim = 99;
        uint64_t shape[DAECL_ST_MAX_DIMS];
        const float *x = daecl_safetensors_get(st, name, &ndim, shape);
        if (!x)
            continue;
        FUZZ_CHECK(ndim <= DAECL_ST_MAX_DIMS, "tensor '%s' has %u dimensions", name, ndim);
        uint64_t count = 1;
        for (uint32_t d = 0; d < ndim; d++)
            FUZZ_CHECK(!__builtin_mul_overflow(count, shape[d], &count),
                       "tensor '%s' was accepted with an overflowing shape", name);
        for (uint64_t k = 0; k < count; k++)
            sink += x[k];
    }
    FUZZ_CHECK(!daecl_safetensors_name_at(st, n), "name_at(count) is not NULL");
    const char *keys[] = {"format", "daecl.config", "daecl.step", "", "__metadata__"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = daecl_safetensors_meta(st, keys[i]);
        if (v)
            sink += (float)strlen(v);
    }
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    daecl_err e_mem = {0}, e_file = {0}, e_ck = {0};
    daecl_safetensors *st = NULL;
    int rc_mem = daecl_safetensors_parse(data, size, "fuzz.safetensors", &st, &e_mem);
    FUZZ_SAY("%s", rc_mem ? e_mem.msg : "parsed");
    if (rc_mem) {
        fuzz_check_err(rc_mem, &e_mem, "daecl_safetensors_parse");
        FUZZ_CHECK(!st, "daecl_safetensors_parse failed but set its output");
    } else {
        walk(st);
    }
    daecl_safetensors_destroy(st);
    st = NULL;

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    if (fd < 0)
        return 0;
    int rc_file = daecl_safetensors_read(path, &st, &e_file);
    if (rc_file)
        fuzz_check_err(rc_file, &e_file, "daecl_safetensors_read");
    FUZZ_CHECK(rc_file == rc_mem, "memory and file readers disagree: %d (%s) vs %d (%s)", rc_mem,
               e_mem.msg, rc_file, e_file.msg);
    daecl_safetensors_destroy(st);

    daecl_ckpt_state cs;
    int rc = daecl_checkpoint_load(path, &model, params, s1, s2, &cs, &e_ck);
    FUZZ_SAY("checkpoint: %s", rc ? e_ck.msg : "loaded");
    if (rc) {
        fuzz_check_err(rc, &e_ck, "daecl_checkpoint_load");
    } else {
        FUZZ_CHECK(!rc_mem, "a checkpoint loaded from a file the reader refuses");
    }
    daecl_err e_cfg = {0};
    char *yaml = daecl_checkpoint_config(path, &e_cfg);
    if (!yaml)
        fuzz_check_err(e_cfg.status, &e_cfg, "daecl_checkpoint_config");
    free(yaml);
    close(fd);
    return 0;
}
