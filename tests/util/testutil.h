/* testutil.h — small helpers shared by the tests: fresh temporary directories and paths. */
#ifndef DT_TESTUTIL_H
#define DT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "durabletask/core.h"

/* test_tmpdir: a new empty directory for one test (under $DT_TEST_TMP, else /tmp/dt-test), in a static
 * buffer that the next call overwrites. */
const char *test_tmpdir(const char *name);

/* test_path: DIR/FILE in a static buffer (one of 4 rotating buffers). */
const char *test_path(const char *dir, const char *file);

/* test_json_string: a JSON string of N copies of C between its quotes (N + 2 bytes),
 * malloc'd; the test fails when out of memory. */
char *test_json_string(size_t n, char c);

/* test_sleep_ms: sleep for MS milliseconds. */
void test_sleep_ms(int ms);

/* assert_ok: fail the test with the error's message when a call does not return DT_OK. */
#define assert_ok(call, errp)                                                               \
    do {                                                                                    \
        dt_status st_ = (call);                                                             \
        if (st_ != DT_OK)                                                                   \
            fail_msg("%s returned %s: %s", #call, dt_strerror(st_), test_errmsg(errp));     \
    } while (0)

/* test_errmsg: ERR's message, or "" for NULL. */
static inline const char *test_errmsg(const dt_error *err)
{
    return err ? err->message : "";
}

#endif
