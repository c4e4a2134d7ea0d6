/* daecl — a likelihood's declared support and data range (support.h). */
#include "core/support.h"

#include <math.h>
#include <stdio.h>

static bool whole(double v)
{
    return isfinite(v) && v == floor(v);
}

int daecl_support_validate(const daecl_likelihood_ops *o, uint32_t size, char *why, size_t n)
{
    if (size < offsetof(daecl_likelihood_ops, data_hi) + sizeof o->data_hi)
        return 0;
    double lo = o->support_lo, hi = o->support_hi;
    switch (o->support) {
    case DAECL_SUPPORT_NONE:
        break;
    case DAECL_SUPPORT_DISCRETE:
        if (!whole(lo) || !(whole(hi) || hi == INFINITY) || lo > hi) {
            snprintf(why, n, "declares a discrete support from %g to %g; it needs whole numbers "
                     "lo <= hi (hi may be INFINITY), as {0, 1} is lo = 0, hi = 1", lo, hi);
            return -1;
        }
        break;
    case DAECL_SUPPORT_CONTINUOUS:
        if (isnan(lo) || isnan(hi) || !(lo < hi)) {
            snprintf(why, n, "declares a continuous support [%g, %g]; it needs lo < hi "
                     "(+-INFINITY for an open end)", lo, hi);
            return -1;
        }
        break;
    default:
        snprintf(why, n, "declares support kind %u, which this daecl does not know; use "
                 "DAECL_SUPPORT_DISCRETE or DAECL_SUPPORT_CONTINUOUS", o->support);
        return -1;
    }
    if (o->data_lo == 0.0 && o->data_hi == 0.0)
        return 0;
    if (isnan(o->data_lo) || isnan(o->data_hi) || !(o->data_lo <= o->data_hi)) {
        snprintf(why, n, "declares the data range [%g, %g]; it needs data_lo <= data_hi (both 0 "
                 "to accept the support's range)", o->data_lo, o->data_hi);
        return -1;
    }
    if (o->support != DAECL_SUPPORT_NONE && (o->data_lo > lo || o->data_hi < hi)) {
        char s[96];
        daecl_support_describe(o->support, lo, hi, s, sizeof s);
        snprintf(why, n, "declares the data range [%g, %g], which leaves out part of its support "
                 "%s; widen the data range to hold the support", o->data_lo, o->data_hi, s);
        return -1;
    }
    return 0;
}

bool daecl_support_data_range(const daecl_likelihood_ops *o, double *lo, double *hi)
{
    if (o->data_lo != 0.0 || o->data_hi != 0.0) {
        *lo = o->data_lo;
        *hi = o->data_hi;
        return true;
    }
    if (o->support == DAECL_SUPPORT_NONE)
        return false;
    *lo = o->support_lo;
    *hi = o->support_hi;
    return true;
}

void daecl_support_describe(uint32_t kind, double lo, double hi, char *buf, size_t n)
{
    if (kind == DAECL_SUPPORT_DISCRETE) {
        if (hi == INFINITY)
            snprintf(buf, n, "{%g, %g, %g, ...}", lo, lo + 1, lo + 2);
        else if (hi == lo)
            snprintf(buf, n, "{%g}", lo);
        else if (hi == lo + 1)
            snprintf(buf, n, "{%g, %g}", lo, hi);
        else
            snprintf(buf, n, "{%g, %g, ..., %g}", lo, lo + 1, hi);
    } else if (kind == DAECL_SUPPORT_CONTINUOUS) {
        if (lo == -INFINITY && hi == INFINITY)
            snprintf(buf, n, "(-inf, inf)");
        else
            snprintf(buf, n, "%s%g, %g%s", lo == -INFINITY ? "(" : "[", lo, hi,
                     hi == INFINITY ? ")" : "]");
    } else {
        snprintf(buf, n, "(not declared)");
    }
}
