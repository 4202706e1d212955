/* test_ids.c — every id and name keeps one set of rules on every path into the hub (a client's
 * calls, an orchestrator's actions), and a sub-orchestration whose id is taken fails in its
 * parent, naming the conflict, leaving the instance that holds the id as it was. (The rules
 * themselves: tests/unit/test_instance_id.c; HTTP and gRPC: tests/http, tests/conformance.) */
#include <stdio.h>
#include <string.h>

#include "hubfix.h"

static void expect_refused(dt_status got, const dt_error *err, const char *needle)
{
    if (got != DT_ERR_INVALID_ARG)
        fail_msg("got %s, want invalid argument (%s)", dt_strerror(got), err->message);
    if (strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

static size_t count_instances(hubfix *f)
{
    dt_query q = {0};
    dt_instance_state *out;
    size_t n = 0;
    const char *next;
    dt_error err;
    assert_ok(dt_client_query(f->client, &q, f->arena, &out, &n, &next, &err), &err);
    return n;
}

static dt_status wait_go(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

static dt_status done(dt_octx *ctx, const char *input, const char **output)
{
    (void)ctx;
    *output = input;
    return DT_OK;
}

static void test_starts_with_bad_names_ids_or_versions_are_refused_and_nothing_stored(void **s)
{
    (void)s;
    hubfix f;
    hubfix_open(&f, "ids-start", NULL);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1], long_name[DT_NAME_MAX + 2];
    memset(long_name, 'n', DT_NAME_MAX + 1);
    long_name[DT_NAME_MAX + 1] = '\0';
    expect_refused(dt_client_start(f.client, "bad\xff", NULL, id, &err), &err,
                   "orchestrator name is not valid UTF-8");
    expect_refused(dt_client_start(f.client, "forged\nERROR line", NULL, id, &err), &err,
                   "orchestrator name has a control character (0x0a)");
    expect_refused(dt_client_start(f.client, "c1\xc2\x85", NULL, id, &err), &err,
                   "control character (U+0085)");
    expect_refused(dt_client_start(f.client, long_name, NULL, id, &err), &err,
                   "orchestrator name is 257 characters long; at most 256");
    dt_start_options so = {.instance_id = "half\xc3"};
    expect_refused(dt_client_start(f.client, "o", &so, id, &err), &err,
                   "instance id is not valid UTF-8");
    so.instance_id = "\xc0\xaf-overlong-slash";
    expect_refused(dt_client_start(f.client, "o", &so, id, &err), &err, "not valid UTF-8");
    so = (dt_start_options){.instance_id = "v1", .version = "1.0\r"};
    expect_refused(dt_client_start(f.client, "o", &so, id, &err), &err,
                   "orchestrator version has a control character");
    assert_int_equal(count_instances(&f), 0);
    /* the limits themselves are allowed, and so is text past ASCII */
    long_name[DT_NAME_MAX] = '\0';
    so = (dt_start_options){.instance_id = "ünï-1", .version = ""};
    assert_ok(dt_client_start(f.client, long_name, &so, id, &err), &err);
    assert_int_equal(count_instances(&f), 1);
    hubfix_close(&f);
}

static void test_event_and_operation_names_are_checked(void **s)
{
    (void)s;
    hubfix f;
    hubfix_open(&f, "ids-names", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "wait_go", wait_go, NULL), NULL);
    hubfix_start(&f);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "w1"};
    assert_ok(dt_client_start(f.client, "wait_go", &so, id, &err), &err);
    expect_refused(dt_client_raise_event(f.client, "w1", "go\n", "1", &err), &err,
                   "event name has a control character");
    expect_refused(dt_client_raise_event(f.client, "w1", "g\xff", "1", &err), &err,
                   "event name is not valid UTF-8");
    expect_refused(dt_client_signal_entity(f.client, "@c@k", "add\x1b[2J", "1", 0, &err), &err,
                   "operation name has a control character (0x1b)");
    expect_refused(dt_client_signal_entity(f.client, "@c\xfe@k", "add", "1", 0, &err), &err,
                   "entity id is not valid UTF-8");
    /* the instance never saw the refused events: the good one ends it with its own data */
    assert_ok(dt_client_raise_event(f.client, "w1", "go", "2", &err), &err);
    dt_instance_state *st;
    assert_ok(dt_client_wait_completion(f.client, "w1", 60000, f.arena, &st, &err), &err);
    assert_string_equal(st->output, "2");
    hubfix_close(&f);
}

/* bad_action: an orchestrator that asks for what its input names with a bad id or name */
static dt_status bad_action(dt_octx *ctx, const char *input, const char **output)
{
    if (strcmp(input, "\"sub\"") == 0) {
        dt_task_options o = {.instance_id = "@bad/id"};
        *output = dt_await(ctx, dt_call_sub_orchestrator(ctx, "done", "1", &o));
    } else if (strcmp(input, "\"activity\"") == 0) {
        *output = dt_await(ctx, dt_call_activity(ctx, "echo\nFORGED", "1", NULL));
    } else {
        dt_send_event(ctx, "@entity@x", "op\xff", NULL);
        *output = NULL;
    }
    return DT_OK;
}

static void expect_failed_with(hubfix *f, const char *input, const char *type, const char *needle)
{
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *st = hubfix_run(f, "bad_action", input, id);
    assert_int_equal(st->status, DT_STATUS_FAILED);
    assert_non_null(st->failure);
    assert_string_equal(st->failure->error_type, type);
    if (strstr(st->failure->message, needle) == NULL)
        fail_msg("failure '%s' does not mention '%s'", st->failure->message, needle);
}

static void test_orchestrator_actions_with_bad_ids_or_names_fail_it_and_store_nothing(void **s)
{
    (void)s;
    hubfix f;
    hubfix_open(&f, "ids-actions", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "bad_action", bad_action, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "done", done, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "echo\nFORGED", hubfix_echo, NULL), NULL);
    hubfix_start(&f);
    expect_failed_with(&f, "\"sub\"", "InvalidInstanceId",
                       "createSubOrchestration action 0: instance id '@bad/id' contains '/'");
    expect_failed_with(&f, "\"activity\"", "InvalidName",
                       "scheduleTask action 0: activity name has a control character");
    expect_failed_with(&f, "\"event\"", "InvalidName",
                       "sendEvent action 0: event name is not valid UTF-8");
    dt_error err;
    dt_instance_state *st;
    assert_int_equal(dt_client_get(f.client, "@bad/id", f.arena, &st, &err), DT_ERR_NOT_FOUND);
    assert_int_equal(count_instances(&f), 3);   /* the three parents, nothing else */
    hubfix_close(&f);
}

/* ---- sub-orchestration id collisions ---------------------------------------------------- */

/* parent: calls "done" as a child with the id its input names ("self": its own), and ends
 * with the child's output or "<error type>: <message>" of its failure. */
static dt_status parent(dt_octx *ctx, const char *input, const char **output)
{
    char child[DT_INSTANCE_ID_MAX + 1];
    snprintf(child, sizeof child, "%.*s", (int)strlen(input) - 2, input + 1);
    dt_task_options o = {.instance_id = strcmp(child, "self") == 0 ? dt_octx_instance_id(ctx)
                                                                  : child};
    const dt_failure *fail = NULL;
    const char *out = NULL;
    if (dt_try_await(ctx, dt_call_sub_orchestrator(ctx, "done", "\"child\"", &o), &out,
                     &fail) == DT_OK)
        *output = out;
    else
        *output = dt_printf(ctx, "\"%s: %s\"", fail->error_type, fail->message);
    return DT_OK;
}

static const char *run_parent(hubfix *f, const char *child)
{
    char input[128], id[DT_INSTANCE_ID_MAX + 1];
    snprintf(input, sizeof input, "\"%s\"", child);
    dt_instance_state *st = hubfix_run(f, "parent", input, id);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    return st->output;
}

static void expect_conflict(const char *output, const char *needle)
{
    if (strstr(output, "OrchestrationAlreadyExists: sub-orchestration") == NULL ||
        strstr(output, needle) == NULL)
        fail_msg("parent's output '%s' does not name the conflict '%s'", output, needle);
}

static void test_sub_orchestration_id_collisions_fail_the_task_in_the_parent(void **s)
{
    (void)s;
    hubfix f;
    hubfix_open(&f, "ids-collide", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "parent", parent, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "done", done, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "wait_go", wait_go, NULL), NULL);
    hubfix_start(&f);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *busy0, *fin0, *st;

    /* a running instance holds the id */
    dt_start_options so = {.instance_id = "busy", .input = "\"busy's own\""};
    assert_ok(dt_client_start(f.client, "wait_go", &so, id, &err), &err);
    assert_ok(dt_client_wait_start(f.client, "busy", 60000, f.arena, &busy0, &err), &err);
    expect_conflict(run_parent(&f, "busy"), "instance 'busy' already exists with status Running");

    /* a finished one */
    so = (dt_start_options){.instance_id = "finished", .input = "\"finished's own\""};
    assert_ok(dt_client_start(f.client, "done", &so, id, &err), &err);
    assert_ok(dt_client_wait_completion(f.client, "finished", 60000, f.arena, &fin0, &err), &err);
    expect_conflict(run_parent(&f, "finished"),
                    "instance 'finished' already exists with status Completed");

    /* the parent's own id */
    expect_conflict(run_parent(&f, "self"), "is the parent's own instance id");

    /* the instances that held the ids are as they were */
    assert_ok(dt_client_get(f.client, "busy", f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_RUNNING);
    assert_string_equal(st->execution_id, busy0->execution_id);
    assert_string_equal(st->input, "\"busy's own\"");
    assert_null(st->parent_instance_id);
    assert_ok(dt_client_get(f.client, "finished", f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->execution_id, fin0->execution_id);
    assert_string_equal(st->output, "\"finished's own\"");
    assert_null(st->parent_instance_id);
    size_t n;
    dt_event *h = hubfix_history(&f, "finished", &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_STARTED), 1);

    /* and a free id still makes a child */
    assert_string_equal(run_parent(&f, "free-kid"), "\"child\"");
    hubfix_close(&f);
}

/* twice: the same child id twice over; the second call finds its finished sibling, which is
 * this parent's own earlier child (a retry under one id), and replaces it */
static dt_status twice(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_task_options o = {.instance_id = dt_printf(ctx, "%s-kid", dt_octx_instance_id(ctx))};
    const char *a = dt_await(ctx, dt_call_sub_orchestrator(ctx, "done", "\"a\"", &o));
    const char *b = dt_await(ctx, dt_call_sub_orchestrator(ctx, "done", "\"b\"", &o));
    *output = dt_printf(ctx, "[%s,%s]", a, b);
    return DT_OK;
}

static void test_a_parent_may_reuse_the_id_of_its_own_finished_child(void **s)
{
    (void)s;
    hubfix f;
    hubfix_open(&f, "ids-own-child", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "twice", twice, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "done", done, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *st = hubfix_run(&f, "twice", NULL, id);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "[\"a\",\"b\"]");
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starts_with_bad_names_ids_or_versions_are_refused_and_nothing_stored),
        cmocka_unit_test(test_event_and_operation_names_are_checked),
        cmocka_unit_test(test_orchestrator_actions_with_bad_ids_or_names_fail_it_and_store_nothing),
        cmocka_unit_test(test_sub_orchestration_id_collisions_fail_the_task_in_the_parent),
        cmocka_unit_test(test_a_parent_may_reuse_the_id_of_its_own_finished_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
