/* daecl bench — how much of a loaded data set is the process's own memory
 * (core/data.h: a float32 .npy is mapped and shared, other files are read
 * into private memory). Prints /proc/self/smaps_rollup before and after
 * daecl_dataset_load; run two at once on a mapped file to see Pss halve.
 *
 *   build/bin/daecl_mapshare DATA_FILE [SECONDS_TO_HOLD]
 *   build/bin/daecl_mapshare --write-npy IN_FILE OUT.npy
 *       (any data file daecl reads, saved as the float32 .npy numpy.save
 *        would write: a 64-byte-aligned version 1.0 header)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data.h"

static void rollup(const char *when)
{
    static const char *keys[] = {"Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty"};
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    printf("[pid %d, %s]", (int)getpid(), when);
    while (f && fgets(line, sizeof line, f)) {
        char k[64];
        long kb;
        if (sscanf(line, "%63[^:]: %ld kB", k, &kb) != 2)
            continue;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strcmp(k, keys[i]) == 0)
                printf(" %s %.1f MiB", k, (double)kb / 1024.0);
    }
    printf("\n");
    if (f)
        fclose(f);
}

static int write_npy(const daecl_dataset *ds, const char *path)
{
    FILE *o = fopen(path, "wb");
    if (!o)
        return 1;
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     ds->n_rows, ds->dim);
    size_t len = (size_t)n + 1;
    while ((10 + len) % 64)
        len++;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)len, (unsigned char)(len >> 8)};
    fwrite(pre, 1, sizeof pre, o);
    fwrite(dict, 1, (size_t)n, o);
    for (size_t i = (size_t)n; i + 1 < len; i++)
        fputc(' ', o);
    fputc('\n', o);
    fwrite(ds->x, sizeof(float), ds->n_rows * ds->dim, o);
    return fclose(o) != 0;
}

int main(int argc, char **argv)
{
    int to_npy = argc == 4 && strcmp(argv[1], "--write-npy") == 0;
    if (!to_npy && (argc < 2 || argc > 3)) {
        fprintf(stderr, "usage: daecl_mapshare DATA_FILE [SECONDS_TO_HOLD]\n"
                        "       daecl_mapshare --write-npy IN_FILE OUT.npy\n");
        return 2;
    }
    const char *path = to_npy ? argv[2] : argv[1];
    daecl_dataset *ds = NULL;
    daecl_err err = {0};
    if (!to_npy)
        rollup("before loading");
    if (daecl_dataset_load(path, 0, 0, &ds, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (to_npy) {
        int rc = write_npy(ds, argv[3]);
        if (rc)
            fprintf(stderr, "writing %s failed\n", argv[3]);
        daecl_dataset_destroy(ds);
        return rc;
    }
    printf("[pid %d] %s: %s, %zu x %zu, private bytes %llu\n", (int)getpid(), path, daecl_dataset_storage(ds),
           ds->n_rows, ds->dim, (unsigned long long)daecl_dataset_private_bytes(ds));
    fflush(stdout);
    if (argc == 3)
        sleep((unsigned)atoi(argv[2]));
    rollup("loaded");
    daecl_dataset_destroy(ds);
    return 0;
}
