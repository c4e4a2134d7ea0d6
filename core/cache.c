/* daecl — the per-user cache folder. */
#include "core/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *daecl_cache_dir(void)
{
    static char dir[1024];
    const char *off = getenv("DAECL_CACHE");
    if (off && strcmp(off, "0") == 0)
        return NULL;
    const char *v = getenv("DAECL_CACHE_DIR");
    int n;
    if (v && *v) {
        n = snprintf(dir, sizeof dir, "%s", v);
    } else if ((v = getenv("XDG_CACHE_HOME")) && *v) {
        n = snprintf(dir, sizeof dir, "%s/daecl", v);
    } else if ((v = getenv("HOME")) && *v) {
        n = snprintf(dir, sizeof dir, "%s/.cache/daecl", v);
    } else {
        return NULL;
    }
    if (n < 0 || (size_t)n >= sizeof dir)
        return NULL;
    return dir;
}
