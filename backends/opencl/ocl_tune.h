/* daecl opencl backend — what the two halves of GEMM tuning share:
 * ocl_tuning.c (CLBlast's parameter sets, what CLBlast holds per device, a
 * device's tuning and its file, routing each GEMM) and ocl_tune.c (the
 * search behind `daecl tune`). ocl.h declares what the rest of the backend
 * calls. */
#ifndef DAECL_OCL_TUNE_H
#define DAECL_OCL_TUNE_H

#include <stdint.h>

#include "ocl.h"

enum {
    DAECL__OCL_TUNE_NX = 16,         /* Xgemm's parameters */
    DAECL__OCL_TUNE_ND = 10,         /* XgemmDirect's */
    DAECL__OCL_TUNE_MAX_SETS = 4,    /* sets (CLBlast programs) per tuning */
    DAECL__OCL_TUNE_MAX_SHAPES = 128 /* shapes per tuning */
};

/* One CLBlast program's worth of GEMM parameters: CLBlast compiles Xgemm,
 * XgemmDirect and the switch between them into one program, so a set is
 * what one compile buys (seconds to minutes on POCL). x and d hold the
 * values in the order of ocl_tuning.c's name lists. */
typedef struct daecl__ocl_tset {
    int direct; /* 1: XgemmDirect at every size; 0: Xgemm at every size */
    size_t x[DAECL__OCL_TUNE_NX], d[DAECL__OCL_TUNE_ND];
} daecl__ocl_tset;

/* How gemm() runs one shape. */
typedef struct daecl__ocl_route {
    daecl__ocl_gemm_by by;
    /* CLBlast: index into the tuning's sets, -1: CLBlast's built-in
     * parameters; daecl's CPU kernels: index into the tuning's cpuvars. */
    int set;
} daecl__ocl_route;

typedef struct daecl__ocl_tshape {
    uint32_t ta, tb;
    uint64_t m, n, k;
    daecl__ocl_route r;
    /* As `daecl tune` measured them (0: not): the route, CLBlast's defaults,
     * the tiled kernel, the best CPU variant. */
    double gflops, gflops_untuned, gflops_daecl, gflops_daecl_cpu;
    int logged;                                  /* its route was logged once */
} daecl__ocl_tshape;

struct daecl__ocl_tuning {
    char path[1536]; /* the file it was read from or stored in */
    daecl__ocl_tset sets[DAECL__OCL_TUNE_MAX_SETS];
    int n_sets;
    daecl__ocl_route dflt; /* for shapes not listed */
    daecl__ocl_cpuvar cpuvars[DAECL__OCL_MAX_CPU_GEMM]; /* the CPU variants routes use */
    int n_cpuvars;
    int cpu_built[DAECL__OCL_MAX_CPU_GEMM]; /* their indices in o->cpu_gemm, once built */
    daecl__ocl_tshape shapes[DAECL__OCL_TUNE_MAX_SHAPES];
    int n_shapes;
};

int daecl__ocl_tune_is_cpu(const daecl__ocl *o);
/* splitmix64 over *state. */
uint64_t daecl__ocl_tune_random(uint64_t *state);

/* ---- parameter sets ---- */

/* Whether s keeps CLBlast's constraints (its tuners') within the values
 * the search tries, and the device's limits. */
int daecl__ocl_tset_valid(const daecl__ocl *o, const daecl__ocl_tset *s);
int daecl__ocl_tset_equal(const daecl__ocl_tset *a, const daecl__ocl_tset *b);
/* "indirect: GEMMK=0 KREG=1 ..." into out. */
void daecl__ocl_tset_describe(const daecl__ocl_tset *s, char *out, size_t n);
/* Changes s's XgemmDirect (direct) or Xgemm parameters: fresh random values,
 * or one or two of them a step along their value lists. May be invalid. */
void daecl__ocl_tset_vary(const daecl__ocl *o, uint64_t *rng, daecl__ocl_tset *s, int direct,
                          int fresh);

/* ---- what CLBlast holds ---- */

/* Makes CLBlast run set s on o's device (nothing to do when it does). */
int daecl__ocl_tune_hold(daecl__ocl *o, const daecl__ocl_tset *s, daecl_err *err);
/* Whether CLBlast's built-in parameters are gone for dev in this process. */
int daecl__ocl_tune_defaults_gone(cl_device_id dev);

/* ---- a tuning ---- */

/* The index of v in tu->cpuvars, added when missing; -1 when full. */
int daecl__ocl_tune_cpuvar(daecl__ocl_tuning *tu, const daecl__ocl_cpuvar *v);
/* The route in words ("CLBlast, tuned set 1 (indirect), column-major"). */
void daecl__ocl_tune_describe_route(const daecl__ocl_tuning *tu, const daecl__ocl_route *r,
                                    char *out, size_t n);
/* Writes tu to o's tuning file (path into tu->path) atomically. */
int daecl__ocl_tune_store(daecl__ocl *o, daecl__ocl_tuning *tu, daecl_err *err);
/* Whether o has a tuning file to store into (caching on, path fits). */
int daecl__ocl_tune_can_store(const daecl__ocl *o);

#endif
