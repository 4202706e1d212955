/* test_log.c — log lines: one per call, with time, level and instance id, filtered by level. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hubfix.h"

/* capture: run FN(ARG) with stderr going to a file, put stderr back, and return what FN wrote
 * (static buffer). Nothing may assert while stderr is redirected: a failing cmocka assertion
 * prints its message to stderr, into the file where no one reads it, and jumps out of FN past
 * the restore, so every later test would report into the file too. So FN reports what it
 * needs checked through ARG, capture checks its own calls once stderr is back, and tests
 * assert on the text after capture returns. */
static const char *capture(void (*fn)(void *), void *arg)
{
    static char text[8192];
    const char *path = test_path(test_tmpdir("log"), "stderr.txt");
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    /* redirected: no assertion from here until stderr is restored */
    int redirected = dup2(fd, 2);
    close(fd);
    if (redirected == 2)
        fn(arg);
    fflush(stderr);
    int restored = dup2(saved, 2);
    close(saved);
    assert_int_equal(restored, 2);
    assert_int_equal(redirected, 2);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    assert_false(ferror(f));
    assert_int_equal(fgetc(f), EOF);   /* all of it: a longer text would be cut */
    fclose(f);
    text[n] = '\0';
    return text;
}

static void write_some(void *arg)
{
    (void)arg;
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
    const char *t = capture(write_some, NULL);
    assert_true(strlen(t) > 23);
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

/* What run_one did, for the test to assert once stderr is back. */
typedef struct one_run {
    hubfix *f;
    dt_status started, waited;
    dt_runtime_status status;
    dt_error err;
} one_run;

/* run_one: start "quick" as log-1 on the started hub of R->f, wait for it, and close the hub,
 * which stops its threads so that every line the run logs is written before capture reads
 * the file. Runs with stderr redirected: it records outcomes in R and asserts nothing. */
static void run_one(void *arg)
{
    one_run *r = arg;
    dt_log_set_level(DT_LOG_INFO);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "log-1", .input = "1"};
    r->started = dt_client_start(r->f->client, "quick", &so, id, &r->err);
    r->waited = DT_ERR_INTERNAL;
    if (r->started == DT_OK) {
        dt_instance_state *s = NULL;
        r->waited = dt_client_wait_completion(r->f->client, id, 30000, r->f->arena, &s, &r->err);
        if (r->waited == DT_OK)
            r->status = s->status;
    }
    hubfix_close(r->f);
    dt_log_set_level(DT_LOG_WARN);
}

static void test_the_hub_logs_an_instance_starting_and_finishing(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "logrun", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "quick", quick, NULL), NULL);
    hubfix_start(&f);
    one_run r = {.f = &f};
    const char *t = capture(run_one, &r);
    assert_ok(r.started, &r.err);
    assert_ok(r.waited, &r.err);
    assert_int_equal(r.status, DT_STATUS_COMPLETED);
    assert_non_null(strstr(t, "INFO  [log-1] started quick"));
    assert_non_null(strstr(t, "INFO  [log-1] quick Completed"));
}

/* What purge_some did. */
typedef struct purges {
    hubfix *f;
    dt_status one, where;
    size_t n_where;
    dt_error err;
} purges;

/* purge_some: purge log-p1 by id, then every Completed instance named quick (log-p2, log-p3).
 * Runs with stderr redirected: records outcomes, asserts nothing. */
static void purge_some(void *arg)
{
    purges *p = arg;
    dt_log_set_level(DT_LOG_INFO);
    p->one = dt_client_purge(p->f->client, "log-p1", &p->err);
    static const dt_runtime_status done[] = {DT_STATUS_COMPLETED};
    dt_query q = {.statuses = done, .n_statuses = 1, .name = "quick"};
    p->where = dt_hub_purge_where(p->f->hub, &q, &p->n_where, &p->err);
    dt_log_set_level(DT_LOG_WARN);
}

static void test_purges_are_logged_with_their_filter_and_count(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "logpurge", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "quick", quick, NULL), NULL);
    hubfix_start(&f);
    const char *ids[] = {"log-p1", "log-p2", "log-p3"};
    for (int i = 0; i < 3; i++) {
        dt_error err = {0};
        char id[DT_INSTANCE_ID_MAX + 1];
        dt_start_options so = {.instance_id = ids[i], .input = "1"};
        assert_ok(dt_client_start(f.client, "quick", &so, id, &err), &err);
        dt_instance_state *s = NULL;
        assert_ok(dt_client_wait_completion(f.client, id, 30000, f.arena, &s, &err), &err);
    }
    purges p = {.f = &f};
    const char *t = capture(purge_some, &p);
    assert_ok(p.one, &p.err);
    assert_ok(p.where, &p.err);
    assert_int_equal(p.n_where, 2);
    assert_non_null(strstr(t, "INFO  [log-p1] purged\n"));
    assert_non_null(strstr(t, "INFO  purged 2 instances (status Completed, created *..*, "
                              "name quick, id prefix *)\n"));
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_carry_level_and_instance_and_respect_the_level),
        cmocka_unit_test(test_level_names_parse),
        cmocka_unit_test(test_the_hub_logs_an_instance_starting_and_finishing),
        cmocka_unit_test(test_purges_are_logged_with_their_filter_and_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
