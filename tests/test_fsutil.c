/* daecl tests — atomic whole-file writes (core/fsutil.c): the content
 * replaces the old file in one step, and the new file keeps the mode of the
 * one it replaces (a private 0600 file stays private, a read-only one stays
 * read-only); a new file gets 0644. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fsutil.h"
#include "tests/support.h"

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static void test_replacing_a_file_keeps_its_mode(void **state)
{
    (void)state;
    char *dir = test_tmpdir("fsutil-mode"), path[1300];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    daecl_err err = {0};
    assert_int_equal(daecl_write_file_atomic(path, "a", 1, "summary", &err), 0);
    mode_t mask = umask(022);
    umask(mask);
    assert_int_equal(mode_of(path), 0644 & ~mask);
    static const mode_t modes[] = {0600, 0444, 0640};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(chmod(path, modes[i]), 0);
        assert_int_equal(daecl_write_file_atomic(path, "bb", 2, "summary", &err), 0);
        assert_int_equal(mode_of(path), modes[i]);
        size_t n;
        char *text = test_read_file(path, &n);
        assert_int_equal(n, 2);
        assert_memory_equal(text, "bb", 2);
        free(text);
    }
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replacing_a_file_keeps_its_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
