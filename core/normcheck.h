/* daecl — the normalisation checks of `daecl plugin check` for a likelihood
 * that declares its support (plugin.h): at several decoder values, the mass
 * sums (discrete) or the density integrates (continuous: adaptive
 * Gauss-Kronrod in double) to 1 over the support; mean() equals the
 * density's mean; the plugin's samples lie in the support and their mean
 * and variance match the density's. */
#ifndef DAECL_CORE_NORMCHECK_H
#define DAECL_CORE_NORMCHECK_H

#include "daecl/plugin.h"

/* Verdicts, as plugincheck.c numbers them. WARN counts as a skip. */
enum { DAECL_NORMCHECK_PASS, DAECL_NORMCHECK_FAIL, DAECL_NORMCHECK_SKIP, DAECL_NORMCHECK_WARN };

/* Receives one verdict line: `name` (at most 10 characters) and one
 * sentence. */
typedef void (*daecl_normcheck_report)(void *ctx, int verdict, const char *name,
                                       const char *text);

/* The tolerances the report and docs/plugins.md state. */
#define DAECL_NORMCHECK_TOL 1e-5      /* |total mass - 1| */
#define DAECL_NORMCHECK_QUAD_TOL 1e-7 /* the quadrature's target error estimate */
#define DAECL_NORMCHECK_MEAN_TOL 1e-4 /* |mean() - density mean| / (sd + |mean|) */

/* Runs the checks on a table padded to this core's size (the registry's
 * copy), at the packed default parameters, reporting `support`, then
 * `normalised`, `dens-mean` and `moments` (or one WARN line when nothing is
 * declared). A failing op is a failed check. Returns 0, or negative with
 * err filled when out of memory. */
int daecl_normcheck_run(const daecl_likelihood_ops *o, const float *packed,
                        daecl_normcheck_report report, void *ctx, daecl_err *err);

#endif
