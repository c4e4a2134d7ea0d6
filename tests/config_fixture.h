/* daecl tests — the fixture of the config tests (test_config.c and
 * test_config_yaml.c): a registry of small in-memory plugins (two
 * corruptions and none, two likelihoods, a cpu and an opencl backend whose
 * device listing the test sets), and helpers that load a config from a
 * string or expect its refusal at file:line:col. */
#ifndef DAECL_TESTS_CONFIG_FIXTURE_H
#define DAECL_TESTS_CONFIG_FIXTURE_H

#include <stddef.h>

#include "core/config.h"
#include "core/registry.h"

#define MINIMAL "data: {train: train.idx}\n"

/* The registry, made by cfgt_setup and freed by cfgt_teardown (a cmocka
 * group's setup and teardown). */
extern daecl_registry *cfgt_reg;
int cfgt_setup(void **state);
int cfgt_teardown(void **state);

/* The fake opencl backend lists one device of `type` ("gpu", "cpu", ...),
 * the one `type: any` opens, for backend.plugin: auto. */
void cfgt_fake_listing(const char *type);

/* yaml (as "test.yaml") with the n_ov overrides ov, loaded against
 * cfgt_reg; fails the test when it is refused. */
daecl_config *cfgt_load_ov(const char *yaml, const char *const *ov, size_t n_ov);
daecl_config *cfgt_load(const char *yaml);
/* Loads and expects DAECL_ECONFIG at file:line:col with the message
 * containing `part1` and `part2` (NULL: not checked). */
void cfgt_expect_err_ov(const char *yaml, const char *const *ov, size_t n_ov, const char *file,
                        int line, int col, const char *part1, const char *part2);
void cfgt_expect_err(const char *yaml, int line, int col, const char *part1, const char *part2);
/* An override error: named as typed, no file position. */
void cfgt_expect_override_err(const char *yaml, const char *ov, const char *part1,
                              const char *part2);
/* rel under the current directory, as an absolute path (a static buffer). */
const char *cfgt_in_cwd(const char *rel);

#endif
