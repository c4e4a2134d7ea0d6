/* daecl fuzzing — what every fuzz target shares: the libFuzzer entry points,
 * the checks every parser's error record must pass, and an in-memory file
 * (memfd) so the path-taking readers run on fuzzed bytes too.
 *
 * A target is built two ways from the same source (tests/fuzz/CMakeLists.txt):
 * with clang -fsanitize=fuzzer,address,undefined under -DDAECL_FUZZ=ON, and in
 * every other build linked with replay_main.c, a plain main() that feeds each
 * file of tests/fuzz/corpus/<target>/ and tests/fuzz/crashes/<target>/ to the
 * same LLVMFuzzerTestOneInput. A finding stops the process (abort) so both
 * libFuzzer and the replay test see it. */
#ifndef DAECL_FUZZ_H
#define DAECL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property of the code under test does not hold: say which and stop. */
#define FUZZ_FAIL(...)                                                  \
    do {                                                                \
        fprintf(stderr, "fuzz finding at %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                   \
        fputc('\n', stderr);                                            \
        abort();                                                        \
    } while (0)

#define FUZZ_CHECK(cond, ...)  \
    do {                       \
        if (!(cond))           \
            FUZZ_FAIL(__VA_ARGS__); \
    } while (0)

/* Every failure must fill the record it returns through: a negative known
 * status equal to the return value, and a non-empty message that fits its
 * buffer. (Messages may quote input, so their characters are not checked.) */
static inline void fuzz_check_err(int rc, const daecl_err *err, const char *what)
{
    FUZZ_CHECK(rc < 0, "%s returned %d, not 0 or a negative daecl_status", what, rc);
    FUZZ_CHECK(err->status == rc, "%s returned %d but its error record says %d", what, rc,
               err->status);
    FUZZ_CHECK(strcmp(daecl_status_name(rc), "EUNKNOWN") != 0, "%s returned the unknown status %d",
               what, rc);
    FUZZ_CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL, "%s left an unterminated message",
               what);
    FUZZ_CHECK(err->msg[0] != '\0', "%s failed (%d) without a message", what, rc);
}

/* FUZZ_VERBOSE=1 in the environment: each harness says what became of an
 * input (for checking that seeds reach the branches they were made for). */
static inline int fuzz_verbose(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("FUZZ_VERBOSE") != NULL;
    return v;
}

#define FUZZ_SAY(...)                          \
    do {                                       \
        if (fuzz_verbose()) {                  \
            fprintf(stderr, "  -> " __VA_ARGS__); \
            fputc('\n', stderr);               \
        }                                      \
    } while (0)

/* The bytes as an anonymous in-memory file; *path gets "/proc/self/fd/N".
 * Returns the descriptor (close it), or -1 when the kernel has no memfd. */
int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t n_path);

#endif
