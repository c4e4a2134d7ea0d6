/* daecl tests — the error record (core/error.c): a sentence longer than the
 * record keeps its reason and its advice, the long path in it is cut in its
 * middle; a long file name keeps its end; formatting with a position. */
#include <string.h>

#include "core/error.h"
#include "tests/support.h"

static void long_path(char *out, size_t n, size_t len)
{
    size_t i = 0;
    out[i++] = '/';
    while (i + 1 < len && i + 1 < n) {
        out[i] = (i % 20 == 0) ? '/' : (char)('a' + (i % 26));
        i++;
    }
    out[i] = '\0';
}

static void test_a_long_path_is_cut_in_its_middle_not_the_reason(void **state)
{
    (void)state;
    char path[1500];
    long_path(path, sizeof path, 1400);
    daecl_err err = {0};
    assert_int_equal(daecl_err_set(&err, DAECL_EIO, "cannot open data file %s/x.npy (%s); check "
                                   "the path", path, "No such file or directory"),
                     DAECL_EIO);
    assert_true(strlen(err.msg) < DAECL_ERR_MSG_MAX);
    assert_non_null(strstr(err.msg, "cannot open data file /"));
    assert_non_null(strstr(err.msg, "..."));
    assert_non_null(strstr(err.msg, "/x.npy (No such file or directory); check the path"));
    /* two long paths: both cut, the sentence whole */
    daecl_err_set(&err, DAECL_EIO, "cannot rename %s to %s: %s; free disk space", path, path,
                  "No space left on device");
    assert_non_null(strstr(err.msg, ": No space left on device; free disk space"));
    /* a short sentence is untouched */
    daecl_err_set(&err, DAECL_EIO, "cannot open %s", "/a/b");
    assert_string_equal(err.msg, "cannot open /a/b");
}

static void test_a_long_file_name_keeps_its_end(void **state)
{
    (void)state;
    char path[1500], buf[2048];
    long_path(path, sizeof path, 900);
    strcat(path, "/exp.yaml");
    daecl_err err = {0};
    daecl_err_set_at(&err, DAECL_ECONFIG, path, 3, 7, "unknown key 'epoch' in 'train'");
    assert_int_equal(strncmp(err.file, "...", 3), 0);
    const char *out = daecl_err_format(&err, buf, sizeof buf);
    assert_non_null(strstr(out, "/exp.yaml:3:7: unknown key 'epoch' in 'train'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_long_path_is_cut_in_its_middle_not_the_reason),
        cmocka_unit_test(test_a_long_file_name_keeps_its_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
