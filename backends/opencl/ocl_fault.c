/* daecl opencl backend — injected device faults, a test hook: DAECL_FAULT,
 * read once when a device opens, makes the Nth call of a class fail with the
 * code a real driver gives, before the call is made, so the failure travels
 * the same checker path (and unwinding) as a real one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ocl.h"

static const char *const class_names[DAECL__FAULT_COUNT] = {"alloc", "enqueue", "build"};

/* What a driver says when each class runs out: a buffer that does not fit,
 * a queue that cannot take the command, a program that does not build. */
static const cl_int class_codes[DAECL__FAULT_COUNT] = {
    CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES, CL_BUILD_PROGRAM_FAILURE};

static int bad_spec(daecl__ocl *o, const char *spec, daecl_err *err)
{
    return daecl__ocl_fail(o->host, err, DAECL_EUSAGE,
                           "DAECL_FAULT='%.200s' is not understood; give CLASS:N items, "
                           "comma-separated, with CLASS alloc, enqueue or build and N from 1 "
                           "(e.g. DAECL_FAULT=enqueue:40), or unset it",
                           spec);
}

int daecl__ocl_fault_init(daecl__ocl *o, daecl_err *err)
{
    memset(&o->faults, 0, sizeof o->faults);
    const char *spec = getenv("DAECL_FAULT");
    if (!spec || !*spec)
        return 0;
    /* "alloc:3,enqueue:40": each item names a class and the call to fail. */
    const char *p = spec;
    for (;;) {
        size_t len = strcspn(p, ":");
        int c = -1;
        for (int i = 0; i < DAECL__FAULT_COUNT; i++)
            if (strlen(class_names[i]) == len && strncmp(p, class_names[i], len) == 0)
                c = i;
        if (c < 0 || p[len] != ':' || p[len + 1] < '1' || p[len + 1] > '9')
            return bad_spec(o, spec, err);
        char *end;
        errno = 0;
        unsigned long n = strtoul(p + len + 1, &end, 10);
        if (errno || (*end != ',' && *end != '\0'))
            return bad_spec(o, spec, err);
        o->faults.at[c] = n;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    o->faults.armed = 1;
    if (o->host && o->host->log)
        o->host->log(DAECL_LOG_WARN, "opencl",
                     "DAECL_FAULT=%s makes OpenCL calls on %s fail on purpose (a test hook); "
                     "unset it for real work",
                     spec, o->info.name);
    return 0;
}

int daecl__ocl_fault_hit(daecl__ocl *o, daecl__ocl_fault_class c)
{
    if (!o->faults.armed)
        return 0; /* the common case: one load and a branch per call */
    return ++o->faults.seen[c] == o->faults.at[c];
}

int daecl__ocl_fault_code(daecl__ocl_fault_class c)
{
    return class_codes[c];
}

void daecl__ocl_fault_report(const daecl__ocl *o)
{
    if (!o->faults.armed || !o->host || !o->host->log)
        return;
    /* The totals let a test aim DAECL_FAULT at a call late in a run. */
    o->host->log(DAECL_LOG_INFO, "opencl",
                 "DAECL_FAULT counted %lu alloc, %lu enqueue and %lu build calls on %s",
                 o->faults.seen[DAECL__FAULT_ALLOC], o->faults.seen[DAECL__FAULT_ENQUEUE],
                 o->faults.seen[DAECL__FAULT_BUILD], o->info.name);
}
