/* daecl — what a likelihood declares about its values (plugin.h): the
 * support its nll is normalised over, the data range daecl train accepts,
 * and how both read in a sentence. The registry refuses a declaration that
 * makes no sense; the run checks the data against the range; `daecl plugin
 * check` integrates over the support. */
#ifndef DAECL_CORE_SUPPORT_H
#define DAECL_CORE_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "daecl/plugin.h"

/* Checks the declaration in a plugin's own ops table of `size` bytes (a
 * table too old to hold it declares nothing, which is valid). Returns 0, or
 * -1 with one clause in `why` ("declares ... ; ..."). */
int daecl_support_validate(const daecl_likelihood_ops *o, uint32_t size, char *why, size_t n);

/* The data range daecl train accepts, from a table padded to this core's
 * size: the declared [data_lo, data_hi], else the support's [lo, hi].
 * false when nothing is declared (the data go unchecked). */
bool daecl_support_data_range(const daecl_likelihood_ops *o, double *lo, double *hi);

/* The set in words: "{0, 1}", "{0, 1, 2, ...}", "[0, 1]", "(-inf, inf)",
 * "[0, inf)". */
void daecl_support_describe(uint32_t kind, double lo, double hi, char *buf, size_t n);

#endif
