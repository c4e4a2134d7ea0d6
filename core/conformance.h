/* daecl — the backend conformance suite: every op of a backend's required
 * core compared with the cpu reference backend on the same inputs (odd
 * sizes, element offsets, padded leading dimensions, non-finite values),
 * the optional fill, refusals of out-of-range slices, and the plugin group
 * behind bind on the built-in plugins. One suite: `daecl plugin check` runs
 * it on a backend file, tests/test_backend_conformance.c on opencl. */
#ifndef DAECL_CORE_CONFORMANCE_H
#define DAECL_CORE_CONFORMANCE_H

#include <stddef.h>

#include "core/registry.h"
#include "daecl/backend.h"

/* An opened backend: its table, its device, its name for sentences. */
typedef struct daecl_conformance_side {
    const daecl_backend_ops *ops;
    void *ctx;
    const char *name;
} daecl_conformance_side;

enum { DAECL_CONFORMANCE_PASS = 0, DAECL_CONFORMANCE_FAIL = 1, DAECL_CONFORMANCE_SKIP = 2 };

/* Called once per case run, with its name, the verdict and one sentence
 * (what was compared, or the first difference, or why it was skipped). */
typedef void (*daecl_conformance_report)(void *user, const char *name, int verdict,
                                         const char *sentence);

typedef struct daecl_conformance_opts {
    int small;        /* only the first, small inputs of each case (simulators) */
    const char *only; /* run the case of this name only; NULL: every case */
    /* Where the built-in corruption and likelihood plugins are found for
     * the bind cases; NULL skips them. */
    const daecl_registry *plugins;
} daecl_conformance_opts;

/* Runs the suite on dut against ref (both opened; neither is closed).
 * Returns 0 when the cases ran, whatever their verdicts; DAECL_EINVAL
 * when opts->only names no case. Memory runs out as a failed case. */
int daecl_conformance_run(const daecl_conformance_side *dut, const daecl_conformance_side *ref,
                          const daecl_conformance_opts *opts, daecl_conformance_report report,
                          void *user, daecl_err *err);

/* The cases' names, in the order they run. */
size_t daecl_conformance_count(void);
const char *daecl_conformance_name(size_t i);

#endif
