/* test_fuzz_regressions.c — every input the fuzz targets keep (fuzz/regressions/<target>/:
 * each one made a target fail once; fuzz/corpus/<target>/: the seeds) through the same
 * harness the target runs (fuzz/fuzz.h), under the sanitizers of the test build. A harness
 * abort()s when an invariant breaks, so a failing input fails this test with the file named
 * on stderr just before. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "testutil.h"

typedef int (*harness)(const uint8_t *, size_t);

/* run_dir: each file of DT_FUZZ_DIR/KIND/TARGET through H; how many there were. */
static size_t run_dir(const char *kind, const char *target, harness h)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s/%s", DT_FUZZ_DIR, kind, target);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README.md") == 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
            if (len == cap) {
                cap = cap ? cap * 2 : 4096;
                buf = realloc(buf, cap);
                assert_non_null(buf);
            }
            size_t got = fread(buf + len, 1, cap - len, f);
            if (got == 0)
                break;
            len += got;
        }
        fclose(f);
        fprintf(stderr, "%s\n", path);   /* the last one named is the one that failed */
        h(buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

/* run_target: the target's regressions and its corpus; the corpus has seeds, so the harness
 * certainly ran. */
static void run_target(const char *target, harness h)
{
    size_t regressions = run_dir("regressions", target, h);
    size_t seeds = run_dir("corpus", target, h);
    fprintf(stderr, "%s: %zu regression inputs, %zu seeds\n", target, regressions, seeds);
    assert_true(seeds > 0);
}

static void test_pb_request_inputs_are_refused_or_read_cleanly(void **state)
{
    (void)state;
    run_target("pb_request", dt_fuzz_pb_request);
}

static void test_http_request_inputs_are_answered_without_a_500(void **state)
{
    (void)state;
    run_target("http_request", dt_fuzz_http_request);
}

static void test_json_checks_agree_with_each_other(void **state)
{
    (void)state;
    run_target("json", dt_fuzz_json);
}

static void test_parsed_times_survive_formatting(void **state)
{
    (void)state;
    run_target("time", dt_fuzz_time);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pb_request_inputs_are_refused_or_read_cleanly),
        cmocka_unit_test(test_http_request_inputs_are_answered_without_a_500),
        cmocka_unit_test(test_json_checks_agree_with_each_other),
        cmocka_unit_test(test_parsed_times_survive_formatting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
