/* daecl tests - the OpenCL C syntax check shared by the plugin tests: a
 * plugin's embedded source, assembled as the OpenCL backend does (prelude,
 * philox.h, the source, a kernel calling its element functions), through
 * clang's OpenCL C 1.2 front end. Included by test_corruption.c and
 * test_likelihood.c; the bar until a device builds the kernels for real. */
#ifndef DAECL_TEST_CL_SYNTAX_H
#define DAECL_TEST_CL_SYNTAX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support.h"

/* clang from PATH, or NULL. */
static const char *find_clang(void)
{
    static char found[1024];
    const char *names[] = {"clang", "clang-14", "clang-15", "clang-16", "clang-17", "clang-18"};
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin";
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        const char *p = path;
        while (*p) {
            size_t len = strcspn(p, ":");
            snprintf(found, sizeof found, "%.*s/%s", (int)len, p, names[n]);
            if (len && access(found, X_OK) == 0)
                return found;
            p += len + (p[len] == ':');
        }
    }
    return NULL;
}

/* The embedded source after the prelude and philox.h, as the OpenCL backend
 * assembles it, plus `kernel`, through clang's OpenCL C 1.2 front end with
 * doubles unavailable (many devices lack them) and warnings as errors. */
static void assert_cl_compiles(const char *name, const char *cl_source, const char *kernel)
{
    const char *clang = find_clang();
    if (!clang)
        skip();
    char *prelude = test_read_file(DAECL_TEST_SOURCE_DIR "/kernels/clc_prelude.cl", NULL);
    char *philox = test_read_file(DAECL_TEST_SOURCE_DIR "/include/daecl/philox.h", NULL);
    char *dir = test_tmpdir("cl");
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.cl", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n%s\n%s\n%s\n", prelude, philox, cl_source, kernel);
    assert_int_equal(fclose(f), 0);
    char *argv[] = {(char *)clang, "-x", "cl", "-cl-std=CL1.2", "-fsyntax-only", "-Xclang",
                    "-finclude-default-header", "-Xclang", "-cl-ext=-cl_khr_fp64", "-Wall",
                    "-Wno-unused-function", "-Werror", path, NULL};
    char *out = NULL;
    int rc = test_run(argv, NULL, &out);
    if (rc != 0)
        fail_msg("%s: OpenCL C does not compile (clang exit %d):\n%s", name, rc, out);
    free(out);
    unlink(path);
    rmdir(dir);
    free(dir);
    free(prelude);
    free(philox);
}

#endif
