/* daecl tests — shared helpers: plugins, temporary folders, child processes,
 * reproducible random data. Every test program links this (tests/CMakeLists). */
#ifndef DAECL_TEST_SUPPORT_H
#define DAECL_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <cmocka.h>

#include "core/error.h"
#include "core/registry.h"
#include "daecl/backend.h"
#include "daecl/plugin.h"

/* The registry over the build tree's plugin folder, created once per process. */
const daecl_registry *test_registry(void);
/* A plugin from that registry; fails the test when it is missing. */
const daecl_plugin *test_plugin(daecl_plugin_kind kind, const char *name);
/* Resolved default values of a plugin's schema (valid until the next call). */
const daecl_param_value *test_default_values(const daecl_plugin *plugin);
/* The devices a backend lists through its daecl.devices extension (fails
 * the test when it has none); arguments as list_devices takes them. */
int test_list_devices(const daecl_backend_ops *ops, daecl_device_info *out, size_t max,
                      size_t *n, daecl_err *err);
/* Packs the plugin's defaults, with `overrides` (name/value pairs, n of them)
 * applied to numeric parameters; returns the packed count. */
size_t test_pack_params(const daecl_plugin *plugin, float *packed, size_t n_overrides, ...);

/* A fresh empty folder under the build tree's tests/tmp, unique per call;
 * returns a static buffer's copy the caller frees. */
char *test_tmpdir(const char *tag);
/* Writes bytes to path; fails the test on error. */
void test_write_file(const char *path, const void *bytes, size_t n);
/* Writes a C-order .npy file (format 1.0) of n_bytes of data: descr is
 * numpy's dtype string ("<f4", "<i4"), shape its tuple ("(40, 20)", "(7,)"). */
void test_write_npy(const char *path, const char *descr, const void *data, size_t n_bytes,
                    const char *shape);
/* Reads a whole file (NUL-terminated); *n gets the size. Caller frees. */
char *test_read_file(const char *path, size_t *n);
/* The JSON file at path, parsed (cJSON_Delete it); fails the test when it
 * does not parse. */
struct cJSON *test_read_json(const char *path);

/* Runs argv[0] with argv (NULL-terminated) and optional extra environment
 * ("K=V" strings, NULL-terminated), capturing stdout+stderr into a malloc'd
 * string; returns the exit status (128+signal if killed). */
int test_run(char *const argv[], char *const env[], char **output);
/* The same under a file size limit of fsize bytes (0: none), SIGXFSZ
 * ignored, so a write past it fails with EFBIG as a write to a full disk
 * fails with ENOSPC. Output goes through a pipe, which the limit does not
 * cover. */
int test_run_fsize(char *const argv[], char *const env[], rlim_t fsize, char **output);

/* Entries of dir other than . and .. (-1 when it cannot be opened), and the
 * first one's name into first (n_first bytes; first may be NULL). */
int test_count_entries(const char *dir, char *first, size_t n_first);
/* Removes dir, the files in it and its folders, and frees the name. */
void test_remove_dir(char *dir);

/* 1 in a build under AddressSanitizer (gcc or clang), else 0: tools that
 * cannot run beside it (valgrind, Oclgrind's checks) skip there. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

/* A fresh folder (test_tmpdir(tag)) holding data.idx, 100 synthetic
 * examples of 16 values, and exp.yaml, a 16-6-16 tanh model with Gaussian
 * noise and Adam trained 3 epochs of 7 steps (batch 15) on `backend`;
 * train_keys ("" or "k: v, ...") go into its train section. For the resume
 * and fault tests. Caller frees. */
char *test_small_experiment(const char *tag, const char *train_keys, const char *backend);
/* Trains dir/exp.yaml (test_small_experiment's) with the n overrides ov
 * into dir/run, quietly; daecl_train's status. */
int test_train_run(const char *dir, const char *run, const char *const *ov, size_t n,
                   daecl_err *err);
/* Trains the experiment at config_path into out_dir, quietly, for a group
 * setup: 0, or -1 after printing why (cmocka's setups return, not fail). */
int test_train_setup(const char *config_path, const char *out_dir);
/* max over the tensors of run_a's checkpoint of max|a - b| / max|a| against
 * run_b's (the equivalence measure of data parallelism); the two must hold
 * the same tensors at the same step. */
double test_checkpoint_rel_diff(const char *run_a, const char *run_b);
/* The checkpoints of two run folders hold byte-identical tensors (at least
 * 8: weights, biases and Adam's m and v) and the same step and epoch. */
void test_same_checkpoints(const char *run_dir_a, const char *run_dir_b);
/* The epoch numbers of a run folder's metrics.jsonl "epoch" lines, in order,
 * as digits into epochs (n bytes), and the last one's train NLL. */
void test_epoch_lines(const char *run_dir, char *epochs, size_t n, double *last_nll);
/* The number `key` of each epoch line of run_dir/metrics.jsonl that has it,
 * in order, at most max into out; returns how many. */
size_t test_epoch_values(const char *run_dir, const char *key, double *out, size_t max);

/* An activation in double, the reference the graph's and the backends'
 * float ops are checked against. */
double test_act_ref(daecl_act act, double z);

/* Seconds on the monotonic clock. */
double test_now(void);

/* Deterministic uniform floats in [lo, hi) (splitmix64 over seed). */
void test_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Relative closeness |a-b| <= tol * max(1, |a|, |b|) with a helpful message. */
#define assert_close(a, b, tol) test_assert_close((double)(a), (double)(b), (tol), #a, #b, __FILE__, __LINE__)
void test_assert_close(double a, double b, double tol, const char *an, const char *bn,
                       const char *file, int line);

#endif
