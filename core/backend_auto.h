/* daecl — `backend.plugin: auto`: which compute backend is the fast path on
 * this machine. opencl when the device an opencl `type: any` choice opens is
 * a GPU or an accelerator that compiles kernels, or when DAECL_DEVICE names
 * an OpenCL device; cpu otherwise (only CPU devices, which POCL runs at a
 * quarter of the cpu backend's speed or less; no OpenCL platform; no opencl
 * backend in this daecl). The decision is a pure function of what was found,
 * so it is tested without a GPU; resolving gathers the facts. */
#ifndef DAECL_CORE_BACKEND_AUTO_H
#define DAECL_CORE_BACKEND_AUTO_H

#include <stddef.h>

#include "core/registry.h"
#include "daecl/backend.h"

/* The reserved name: no plugin may call itself this (core/registry.c). */
#define DAECL_BACKEND_AUTO "auto"

/* What the choice looks at. */
typedef struct daecl_backend_facts {
    const char *device_env;   /* $DAECL_DEVICE; NULL or "": unset */
    int have_opencl;          /* the registry holds an opencl backend */
    int listed;               /* 1: devs[0..n_devs) is its device listing */
    const char *why_unlisted; /* listed 0 with have_opencl: the listing's sentence */
    const daecl_device_info *devs;
    size_t n_devs;
} daecl_backend_facts;

typedef struct daecl_backend_choice {
    char plugin[16];  /* "opencl" or "cpu" */
    char reason[480]; /* why, one line: "no OpenCL GPU or accelerator (...)" */
} daecl_backend_choice;

/* The choice from the facts. Fails (DAECL_ECONFIG, one sentence) only when
 * DAECL_DEVICE names an OpenCL device and there is no opencl backend. */
int daecl_backend_auto_decide(const daecl_backend_facts *f, daecl_backend_choice *out,
                              daecl_err *err);

/* The facts of this process (DAECL_DEVICE, reg's opencl backend and the
 * devices it lists; nothing is opened), then the choice. Listing costs the
 * OpenCL platforms' start-up, once per process. */
int daecl_backend_auto_resolve(const daecl_registry *reg, daecl_backend_choice *out,
                               daecl_err *err);

#endif
