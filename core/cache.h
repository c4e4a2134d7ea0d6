/* daecl — where daecl keeps per-user caches (compiled OpenCL programs, GEMM
 * tuning): $DAECL_CACHE_DIR, else $XDG_CACHE_HOME/daecl, else
 * ~/.cache/daecl. DAECL_CACHE=0 disables caching. */
#ifndef DAECL_CORE_CACHE_H
#define DAECL_CORE_CACHE_H

/* The folder (not created here), or NULL when caching is disabled or no home
 * folder is known. The string is static and stays valid. */
const char *daecl_cache_dir(void);

#endif
