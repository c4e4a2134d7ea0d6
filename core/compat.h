/* daecl — what a run may change against its checkpoint. `daecl resume` and
 * `daecl eval` compare the config they are about to run with against the
 * config the checkpoint was trained with (its daecl.config metadata), key
 * by key, and the data they load against the shapes and content hashes the
 * checkpoint recorded (daecl.data): data are compared by content, not by
 * path, so a moved file still resumes. docs/config.md lists the keys that
 * may differ. */
#ifndef DAECL_CORE_COMPAT_H
#define DAECL_CORE_COMPAT_H

#include "core/config.h"
#include "core/data.h"

typedef enum daecl_compat_mode {
    DAECL_COMPAT_RESUME = 0, /* training goes on: only how long, how it logs and
                                checkpoints, eval, lr, output and where it runs */
    DAECL_COMPAT_EVAL = 1    /* the model and likelihood are the checkpoint's */
} daecl_compat_mode;

/* May the dotted key ("train.epochs", "model.encoder.0.units") differ from
 * the checkpoint's in this mode? reset_optimizer (resume only) frees the
 * optimizer.* keys. Data keys may differ by path: their content is compared
 * by daecl_compat_data. */
int daecl_compat_key_may_differ(const char *key, daecl_compat_mode mode, int reset_optimizer);

/* Compares cfg with ckpt_yaml, the resolved config stored in the checkpoint
 * at ckpt_path. Returns 0, or DAECL_ECONFIG with one sentence naming the
 * first key that differs, its value in the checkpoint and the new one. */
int daecl_compat_config(const char *ckpt_yaml, const char *ckpt_path, const daecl_config *cfg,
                        daecl_compat_mode mode, int reset_optimizer, daecl_err *err);

/* The content of a run's data: rows, values per row and a 64-bit hash of
 * each set as loaded (after data.*_limit). Absent sets have rows == 0. */
typedef struct daecl_set_digest {
    uint64_t rows, dim, hash;
} daecl_set_digest;
typedef struct daecl_data_digest {
    daecl_set_digest train, test, train_labels, test_labels;
} daecl_data_digest;

void daecl_data_digest_of(const daecl_dataset *train, const daecl_dataset *test,
                          const daecl_labels *train_y, const daecl_labels *test_y,
                          daecl_data_digest *out);
/* As the checkpoint's daecl.data JSON (caller frees), or NULL when out of memory. */
char *daecl_data_digest_json(const daecl_data_digest *d);
/* Compares d with a checkpoint's daecl.data JSON (NULL: a checkpoint made
 * before daecl recorded it; nothing to compare). Returns 0, or DAECL_ECONFIG
 * with a sentence naming the data key whose content differs. */
int daecl_compat_data(const char *ckpt_json, const char *ckpt_path, const daecl_data_digest *d,
                      const daecl_config *cfg, daecl_err *err);

#endif
