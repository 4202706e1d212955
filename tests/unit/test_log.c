/* test_log.c — log lines: one per call, with time, level and instance id, filtered by level. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hubfix.h"

/* capture: run FN with stderr going to a file; returns the file's text (static buffer). */
static const char *capture(void (*fn)(void))
{
    static char text[8192];
    const char *path = test_path(test_tmpdir("log"), "stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static void write_some(void)
{
    dt_log_set_level(DT_LOG_INFO);
    dt_log(DT_LOG_DEBUG, "i-0", "hidden below the level");
    dt_log(DT_LOG_INFO, "i-1", "started %s", "hello_cities");
    dt_log(DT_LOG_WARN, NULL, "no instance here");
    dt_log_set_level(DT_LOG_OFF);
    dt_log(DT_LOG_ERROR, "i-2", "silenced");
    dt_log_set_level(DT_LOG_WARN);
}

static void test_lines_carry_level_and_instance_and_respect_the_level(void **state)
{
    (void)state;
    const char *t = capture(write_some);
    assert_null(strstr(t, "hidden"));
    assert_null(strstr(t, "silenced"));
    const char *a = strstr(t, "INFO  [i-1] started hello_cities\n");
    assert_non_null(a);
    assert_non_null(strstr(t, "WARN  no instance here\n"));
    /* each line begins with an ISO 8601 time */
    assert_true(t[4] == '-' && t[10] == 'T' && t[23] == 'Z');
}

static void test_level_names_parse(void **state)
{
    (void)state;
    dt_log_level l;
    assert_ok(dt_log_level_parse("DEBUG", &l), NULL);
    assert_int_equal(l, DT_LOG_DEBUG);
    assert_ok(dt_log_level_parse("off", &l), NULL);
    assert_int_equal(l, DT_LOG_OFF);
    assert_int_equal(dt_log_level_parse("loud", &l), DT_ERR_INVALID_ARG);
}

static dt_status quick(dt_octx *ctx, const char *input, const char **output)
{
    (void)ctx;
    *output = input;
    return DT_OK;
}

static void run_one(void)
{
    dt_log_set_level(DT_LOG_INFO);
    hubfix f;
    hubfix_open(&f, "logrun", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "quick", quick, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "log-1", .input = "1"};
    dt_error err = {0};
    assert_ok(dt_client_start(f.client, "quick", &so, id, &err), &err);
    dt_instance_state *s;
    assert_ok(dt_client_wait_completion(f.client, id, 30000, f.arena, &s, &err), &err);
    hubfix_close(&f);
    dt_log_set_level(DT_LOG_WARN);
}

static void test_the_hub_logs_an_instance_starting_and_finishing(void **state)
{
    (void)state;
    const char *t = capture(run_one);
    assert_non_null(strstr(t, "INFO  [log-1] started quick"));
    assert_non_null(strstr(t, "INFO  [log-1] quick Completed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_carry_level_and_instance_and_respect_the_level),
        cmocka_unit_test(test_level_names_parse),
        cmocka_unit_test(test_the_hub_logs_an_instance_starting_and_finishing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
