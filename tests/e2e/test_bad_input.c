/* test_bad_input.c — bad input gets a clear error naming what was wrong, and loses nothing
 * already stored: invalid ids, duplicate ids, input that is not JSON, unwritable and corrupt
 * database paths. (Unknown orchestrator and activity names: test_orchestrations.c.) */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hubfix.h"

static dt_status wait_for_go(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", input, NULL));
    return DT_OK;
}

static void expect_error(dt_status got, dt_status want, const dt_error *err, const char *needle)
{
    if (got != want)
        fail_msg("got %s, want %s (%s)", dt_strerror(got), dt_strerror(want), err->message);
    if (strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

static void test_invalid_instance_id_is_refused_and_nothing_stored(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "badid", NULL);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "a/b"};
    expect_error(dt_client_start(f.client, "o", &so, id, &err), DT_ERR_INVALID_ARG, &err, "'/'");
    dt_instance_state *s;
    assert_int_equal(dt_client_get(f.client, "a/b", f.arena, &s, &err), DT_ERR_NOT_FOUND);
    so.instance_id = "";
    expect_error(dt_client_start(f.client, "o", &so, id, &err), DT_ERR_INVALID_ARG, &err, "empty");
    expect_error(dt_client_start(f.client, "", NULL, id, &err), DT_ERR_INVALID_ARG, &err,
                 "orchestrator name");
    hubfix_close(&f);
}

static void test_input_that_is_not_json_is_refused(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "badjson", NULL);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "j1", .input = "{not json"};
    expect_error(dt_client_start(f.client, "o", &so, id, &err), DT_ERR_INVALID_ARG, &err,
                 "input is not valid JSON");
    dt_instance_state *s;
    assert_int_equal(dt_client_get(f.client, "j1", f.arena, &s, &err), DT_ERR_NOT_FOUND);
    so.input = "\"ok\"";
    assert_ok(dt_client_start(f.client, "o", &so, id, &err), &err);
    assert_string_equal(id, "j1");
    hubfix_close(&f);
}

static void test_duplicate_id_of_a_live_instance_is_refused_and_it_runs_on(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "dup", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "o", wait_for_go, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "echo", hubfix_echo, NULL), NULL);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "dup-1", .input = "\"first\""};
    assert_ok(dt_client_start(f.client, "o", &so, id, &err), &err);
    so.input = "\"second\"";
    expect_error(dt_client_start(f.client, "o", &so, id, &err), DT_ERR_ALREADY_EXISTS, &err,
                 "dup-1");
    /* the first instance is untouched and completes with its own input */
    hubfix_start(&f);
    dt_instance_state *s;
    assert_ok(dt_client_wait_completion(f.client, "dup-1", 60000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->input, "\"first\"");
    assert_string_equal(s->output, "\"first\"");
    /* once finished, the id may be used again (the default reuse policy) */
    so.input = "\"third\"";
    assert_ok(dt_client_start(f.client, "o", &so, id, &err), &err);
    assert_ok(dt_client_wait_completion(f.client, "dup-1", 60000, f.arena, &s, &err), &err);
    assert_string_equal(s->output, "\"third\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, "dup-1", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 1);
    hubfix_close(&f);
}

static void test_unknown_instance_is_not_found(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "unknowninst", NULL);
    dt_error err = {0};
    dt_instance_state *s;
    expect_error(dt_client_get(f.client, "nope", f.arena, &s, &err), DT_ERR_NOT_FOUND, &err,
                 "nope");
    dt_event *ev;
    size_t n;
    assert_int_equal(dt_client_get_history(f.client, "nope", f.arena, &ev, &n, &err),
                     DT_ERR_NOT_FOUND);
    assert_int_equal(dt_client_wait_completion(f.client, "nope", 10, f.arena, &s, &err),
                     DT_ERR_NOT_FOUND);
    hubfix_close(&f);
}

static void test_unwritable_database_path_is_an_io_error(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("unwritable");
    /* a regular file where a directory should be: not even root can create under it */
    const char *blocker = test_path(dir, "file");
    FILE *fp = fopen(blocker, "w");
    fputs("x", fp);
    fclose(fp);
    char db[1024];
    snprintf(db, sizeof db, "%s/sub/dt.db", blocker);
    dt_hub_options o = {.db_path = db};
    dt_hub *hub = NULL;
    dt_error err = {0};
    expect_error(dt_hub_open(&o, &hub, &err), DT_ERR_IO, &err, blocker);
    assert_null(hub);
}

static void test_corrupt_database_is_refused_and_left_as_it_was(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("corrupt");
    const char *db = test_path(dir, "dt.db");
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    FILE *fp = fopen(db, "wb");
    fwrite(junk, 1, sizeof junk, fp);
    fclose(fp);
    dt_hub_options o = {.db_path = db};
    dt_hub *hub = NULL;
    dt_error err = {0};
    expect_error(dt_hub_open(&o, &hub, &err), DT_ERR_CORRUPT, &err, "dt.db");
    assert_null(hub);
    char back[8192];
    fp = fopen(db, "rb");
    assert_int_equal(fread(back, 1, sizeof back, fp), sizeof back);
    fclose(fp);
    assert_memory_equal(back, junk, sizeof junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_instance_id_is_refused_and_nothing_stored),
        cmocka_unit_test(test_input_that_is_not_json_is_refused),
        cmocka_unit_test(test_duplicate_id_of_a_live_instance_is_refused_and_it_runs_on),
        cmocka_unit_test(test_unknown_instance_is_not_found),
        cmocka_unit_test(test_unwritable_database_path_is_an_io_error),
        cmocka_unit_test(test_corrupt_database_is_refused_and_left_as_it_was),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
