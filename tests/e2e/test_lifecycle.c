/* test_lifecycle.c — the instance lifecycle end to end through a SQLite hub, as a client sees
 * it: terminate (plain and recursive), suspend and resume, restart, purge (one and by filter),
 * the id reuse policy, scheduled starts, queries with paging and filters, custom status, and
 * the errors of raising events. Waits poll with deadlines; a fixed sleep only ever shows that
 * something did NOT happen. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

#define WAIT_MS 30000   /* generous: everything runs under ASan and UBSan */

/* ---- orchestrators and activities ---------------------------------------------------------- */

/* waiter: blocks until event "go" and returns its data. */
static dt_status waiter(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

/* echo_orch: completes at once with its input. */
static dt_status echo_orch(dt_octx *ctx, const char *input, const char **output)
{
    *output = input ? dt_printf(ctx, "%s", input) : NULL;
    return DT_OK;
}

static dt_status failer(dt_octx *ctx, const char *input, const char **output)
{
    (void)output;
    return dt_fail(ctx, "Deliberate", "failing on %s", input ? input : "null");
}

/* parent: starts "waiter" as child "<own id>-child" and returns the child's output. */
static dt_status parent(dt_octx *ctx, const char *input, const char **output)
{
    dt_task_options o = {.instance_id = dt_printf(ctx, "%s-child", dt_octx_instance_id(ctx))};
    *output = dt_await(ctx, dt_call_sub_orchestrator(ctx, "waiter", input, &o));
    return DT_OK;
}

/* next_run: counts its executions, so a restarted instance shows a new output. */
static atomic_int runs;

static dt_status next_run(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_activity_printf(ctx, "%d", atomic_fetch_add(&runs, 1) + 1);
    return DT_OK;
}

static dt_status counted(dt_octx *ctx, const char *input, const char **output)
{
    const char *run = dt_await(ctx, dt_call_activity(ctx, "next_run", NULL, NULL));
    *output = dt_printf(ctx, "{\"input\":%s,\"run\":%s}", input ? input : "null", run);
    return DT_OK;
}

/* stepper: shows its progress in the custom status; fails if "go" says "fail". */
static dt_status stepper(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_octx_set_custom_status(ctx, "{\"step\":1}");
    const char *data = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    dt_octx_set_custom_status(ctx, "{\"step\":2}");
    if (data && strcmp(data, "\"fail\"") == 0)
        return dt_fail(ctx, "Told", "told to fail at step %d", 2);
    *output = data;
    return DT_OK;
}

/* q_orch: registered as "alpha" and "beta"; waits for "go" when its input says so. */
static dt_status q_orch(dt_octx *ctx, const char *input, const char **output)
{
    if (input && strstr(input, "\"wait\":true"))
        dt_await(ctx, dt_wait_for_event(ctx, "go"));
    *output = input ? dt_printf(ctx, "%s", input) : NULL;
    return DT_OK;
}

/* open_registered: a hub and a worker with everything registered, not started. */
static void open_registered(hubfix *f, const char *name)
{
    hubfix_open(f, name, NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "waiter", waiter, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "echo_orch", echo_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "failer", failer, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "parent", parent, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "counted", counted, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "stepper", stepper, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "alpha", q_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "beta", q_orch, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "next_run", next_run, NULL), NULL);
}

static void open_started(hubfix *f, const char *name)
{
    open_registered(f, name);
    hubfix_start(f);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void expect_error(dt_status got, dt_status want, const dt_error *err, const char *needle)
{
    if (got != want)
        fail_msg("got %s, want %s (%s)", dt_strerror(got), dt_strerror(want), err->message);
    if (needle && strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

static void start(hubfix *f, const char *name, const char *id, const char *input)
{
    dt_error err = {0};
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = id, .input = input};
    assert_ok(dt_client_start(f->client, name, &so, out, &err), &err);
    assert_string_equal(out, id);
}

static dt_instance_state *get(hubfix *f, const char *id)
{
    dt_error err = {0};
    dt_instance_state *s = NULL;
    assert_ok(dt_client_get(f->client, id, f->arena, &s, &err), &err);
    return s;
}

static dt_instance_state *wait_done(hubfix *f, const char *id)
{
    dt_error err = {0};
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f->client, id, WAIT_MS, f->arena, &s, &err), &err);
    return s;
}

/* wait_status: poll ID until its status is WANT (a missing instance counts as not yet). */
static dt_instance_state *wait_status(hubfix *f, const char *id, dt_runtime_status want)
{
    dt_time deadline = dt_now() + (dt_time)WAIT_MS * 1000;
    const char *last = "missing";
    for (;;) {
        dt_arena *a = dt_arena_new();
        assert_non_null(a);
        dt_error err = {0};
        dt_instance_state *s = NULL;
        dt_status st = dt_client_get(f->client, id, a, &s, &err);
        if (st != DT_OK && st != DT_ERR_NOT_FOUND)
            fail_msg("get '%s': %s: %s", id, dt_strerror(st), err.message);
        if (st == DT_OK) {
            last = dt_runtime_status_name(s->status);
            if (s->status == want) {
                dt_instance_state *c = dt_instance_state_copy(f->arena, s);
                dt_arena_free(a);
                assert_non_null(c);
                return c;
            }
        }
        dt_arena_free(a);
        if (dt_now() > deadline)
            fail_msg("'%s' did not become %s within %d ms (last: %s)", id,
                     dt_runtime_status_name(want), WAIT_MS, last);
        test_sleep_ms(10);
    }
}

/* wait_history: poll ID's history until it has an event of TYPE. */
static void wait_history(hubfix *f, const char *id, dt_event_type type)
{
    dt_time deadline = dt_now() + (dt_time)WAIT_MS * 1000;
    for (;;) {
        dt_arena *a = dt_arena_new();
        assert_non_null(a);
        dt_error err = {0};
        dt_event *ev = NULL;
        size_t n = 0;
        assert_ok(dt_client_get_history(f->client, id, a, &ev, &n, &err), &err);
        size_t c = hubfix_count(ev, n, type);
        dt_arena_free(a);
        if (c > 0)
            return;
        if (dt_now() > deadline)
            fail_msg("history of '%s' has no %s after %d ms", id, dt_event_type_name(type),
                     WAIT_MS);
        test_sleep_ms(10);
    }
}

static void raise_go(hubfix *f, const char *id, const char *data)
{
    dt_error err = {0};
    assert_ok(dt_client_raise_event(f->client, id, "go", data, &err), &err);
}

static void expect_missing(hubfix *f, const char *id)
{
    dt_error err = {0};
    dt_instance_state *s = NULL;
    expect_error(dt_client_get(f->client, id, f->arena, &s, &err), DT_ERR_NOT_FOUND, &err, id);
}

/* ---- terminate ------------------------------------------------------------------------------ */

static void test_terminate_running_instance_ends_it_with_the_given_output(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "term");
    start(&f, "waiter", "t-1", NULL);
    wait_status(&f, "t-1", DT_STATUS_RUNNING);

    dt_error err = {0};
    assert_ok(dt_client_terminate(f.client, "t-1", "{\"reason\":\"stop\"}", false, &err), &err);
    dt_instance_state *s = wait_done(&f, "t-1");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    assert_non_null(s->output);
    assert_string_equal(s->output, "{\"reason\":\"stop\"}");
    assert_true(s->completed_at > 0);

    size_t n;
    dt_event *ev = hubfix_history(&f, "t-1", &n);
    assert_true(n >= 2);
    assert_int_equal(ev[n - 2].type, DT_EVENT_EXECUTION_TERMINATED);
    assert_string_equal(ev[n - 2].input, "{\"reason\":\"stop\"}");
    assert_int_equal(ev[n - 1].type, DT_EVENT_EXECUTION_COMPLETED);
    assert_int_equal(ev[n - 1].status, DT_STATUS_TERMINATED);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_ORCHESTRATOR_COMPLETED), 0);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_COMPLETED), 1);
    hubfix_close(&f);
}

static void test_terminate_finished_instance_is_a_state_error(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "termdone");
    start(&f, "echo_orch", "t-done", "\"kept\"");
    wait_done(&f, "t-done");
    dt_error err = {0};
    expect_error(dt_client_terminate(f.client, "t-done", "\"late\"", false, &err), DT_ERR_STATE,
                 &err, "t-done");
    dt_instance_state *s = get(&f, "t-done");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"kept\"");
    hubfix_close(&f);
}

static void test_terminate_unknown_instance_is_not_found(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "termunknown");
    dt_error err = {0};
    expect_error(dt_client_terminate(f.client, "ghost", NULL, false, &err), DT_ERR_NOT_FOUND,
                 &err, "ghost");
    hubfix_close(&f);
}

static void test_terminate_with_output_that_is_not_json_is_refused_and_it_runs_on(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "termbadjson");
    start(&f, "waiter", "t-bad", NULL);
    wait_status(&f, "t-bad", DT_STATUS_RUNNING);
    dt_error err = {0};
    expect_error(dt_client_terminate(f.client, "t-bad", "{not json", false, &err),
                 DT_ERR_INVALID_ARG, &err, "JSON");
    /* had the terminate been queued, it would take effect before this event */
    raise_go(&f, "t-bad", "\"done\"");
    dt_instance_state *s = wait_done(&f, "t-bad");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"done\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, "t-bad", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_TERMINATED), 0);
    hubfix_close(&f);
}

/* ---- recursive terminate ------------------------------------------------------------------- */

static void test_recursive_terminate_ends_the_child_too(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "termrec");
    start(&f, "parent", "p-1", "\"in\"");
    wait_status(&f, "p-1-child", DT_STATUS_RUNNING);
    wait_status(&f, "p-1", DT_STATUS_RUNNING);
    dt_error err = {0};
    assert_ok(dt_client_terminate(f.client, "p-1", "\"bye\"", true, &err), &err);
    dt_instance_state *s = wait_done(&f, "p-1");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    assert_string_equal(s->output, "\"bye\"");
    s = wait_done(&f, "p-1-child");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    size_t n;
    dt_event *ev = hubfix_history(&f, "p-1-child", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_TERMINATED), 1);
    hubfix_close(&f);
}

static void test_non_recursive_terminate_leaves_the_child_running(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "termnonrec");
    start(&f, "parent", "p-2", "\"in\"");
    wait_status(&f, "p-2-child", DT_STATUS_RUNNING);
    wait_status(&f, "p-2", DT_STATUS_RUNNING);
    dt_error err = {0};
    assert_ok(dt_client_terminate(f.client, "p-2", "\"bye\"", false, &err), &err);
    dt_instance_state *s = wait_done(&f, "p-2");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    /* give a wrongly sent terminate time to land: the child must still be running */
    test_sleep_ms(300);
    s = get(&f, "p-2-child");
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    size_t n;
    dt_event *ev = hubfix_history(&f, "p-2-child", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_TERMINATED), 0);
    /* and it is alive: it still completes on its own */
    raise_go(&f, "p-2-child", "\"late\"");
    s = wait_done(&f, "p-2-child");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"late\"");
    hubfix_close(&f);
}

/* ---- terminate with no worker -------------------------------------------------------------- */

/* The hub ends a terminated instance itself (its code never runs for a terminate), so it needs
 * no worker: an instance no worker ever ran, and one whose worker went away, end at once. */
static void test_terminate_ends_an_instance_no_worker_ever_ran(void **state)
{
    (void)state;
    hubfix f;
    open_registered(&f, "termnoworker");
    start(&f, "waiter", "t-never", NULL);
    dt_error err = {0};
    assert_ok(dt_client_terminate(f.client, "t-never", "\"unwanted\"", false, &err), &err);
    dt_instance_state *s = wait_done(&f, "t-never");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    assert_string_equal(s->output, "\"unwanted\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, "t-never", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_TERMINATED), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_ORCHESTRATOR_COMPLETED), 0);

    /* a worker that comes later finds nothing of it to run */
    hubfix_start(&f);
    start(&f, "echo_orch", "t-after", "\"alive\"");
    s = wait_done(&f, "t-after");   /* the worker is up and has looked for work */
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    s = get(&f, "t-never");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    size_t n2;
    ev = hubfix_history(&f, "t-never", &n2);
    assert_int_equal(n2, n);
    assert_int_equal(hubfix_count(ev, n2, DT_EVENT_ORCHESTRATOR_COMPLETED), 0);
    hubfix_close(&f);
}

static void test_recursive_terminate_ends_a_family_whose_worker_stopped(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "termgone");
    start(&f, "parent", "p-3", "\"in\"");
    wait_status(&f, "p-3-child", DT_STATUS_RUNNING);
    wait_status(&f, "p-3", DT_STATUS_RUNNING);
    dt_worker_stop(f.worker);

    dt_error err = {0};
    assert_ok(dt_client_terminate(f.client, "p-3", "\"bye\"", true, &err), &err);
    dt_instance_state *s = wait_done(&f, "p-3");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    assert_string_equal(s->output, "\"bye\"");
    s = wait_done(&f, "p-3-child");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    size_t n;
    dt_event *ev = hubfix_history(&f, "p-3-child", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_TERMINATED), 1);
    hubfix_close(&f);
}

/* ---- suspend / resume ----------------------------------------------------------------------- */

static void test_suspended_instance_keeps_events_until_resumed(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "suspend");
    start(&f, "waiter", "s-1", NULL);
    wait_status(&f, "s-1", DT_STATUS_RUNNING);
    dt_error err = {0};
    assert_ok(dt_client_suspend(f.client, "s-1", "\"pause\"", &err), &err);
    wait_status(&f, "s-1", DT_STATUS_SUSPENDED);

    raise_go(&f, "s-1", "{\"v\":7}");
    /* the event reaches history, yet the code must not see it while suspended */
    wait_history(&f, "s-1", DT_EVENT_EVENT_RAISED);
    test_sleep_ms(300);
    dt_instance_state *s = get(&f, "s-1");
    assert_int_equal(s->status, DT_STATUS_SUSPENDED);
    assert_null(s->output);
    assert_int_equal(s->completed_at, 0);

    assert_ok(dt_client_resume(f.client, "s-1", "\"continue\"", &err), &err);
    s = wait_done(&f, "s-1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "{\"v\":7}");
    size_t n;
    dt_event *ev = hubfix_history(&f, "s-1", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_SUSPENDED), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_RESUMED), 1);
    hubfix_close(&f);
}

static void test_suspend_or_resume_of_finished_instance_is_a_state_error(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "suspenddone");
    start(&f, "echo_orch", "s-done", "1");
    wait_done(&f, "s-done");
    dt_error err = {0};
    expect_error(dt_client_suspend(f.client, "s-done", NULL, &err), DT_ERR_STATE, &err,
                 "s-done");
    expect_error(dt_client_resume(f.client, "s-done", NULL, &err), DT_ERR_STATE, &err,
                 "s-done");
    assert_int_equal(get(&f, "s-done")->status, DT_STATUS_COMPLETED);
    hubfix_close(&f);
}

static void test_suspend_unknown_instance_is_not_found(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "suspendunknown");
    dt_error err = {0};
    expect_error(dt_client_suspend(f.client, "ghost", NULL, &err), DT_ERR_NOT_FOUND, &err,
                 "ghost");
    hubfix_close(&f);
}

/* ---- restart ---------------------------------------------------------------------------------- */

static void test_restart_finished_instance_runs_again_with_the_same_input(void **state)
{
    (void)state;
    hubfix f;
    atomic_store(&runs, 0);
    open_started(&f, "restart");
    start(&f, "counted", "r-1", "{\"x\":1}");
    dt_instance_state *s = wait_done(&f, "r-1");
    assert_string_equal(s->output, "{\"input\":{\"x\":1},\"run\":1}");

    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    assert_ok(dt_client_restart(f.client, "r-1", false, id, &err), &err);
    assert_string_equal(id, "r-1");
    s = wait_done(&f, "r-1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->input, "{\"x\":1}");
    assert_string_equal(s->output, "{\"input\":{\"x\":1},\"run\":2}");
    size_t n;
    dt_event *ev = hubfix_history(&f, "r-1", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 1);
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == DT_EVENT_EXECUTION_STARTED)
            assert_string_equal(ev[i].input, "{\"x\":1}");
    hubfix_close(&f);
}

static void test_restart_with_new_id_starts_a_separate_instance(void **state)
{
    (void)state;
    hubfix f;
    atomic_store(&runs, 0);
    open_started(&f, "restartnew");
    start(&f, "counted", "r-2", "\"same\"");
    wait_done(&f, "r-2");

    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    assert_ok(dt_client_restart(f.client, "r-2", true, id, &err), &err);
    assert_string_not_equal(id, "r-2");
    assert_ok(dt_instance_id_validate(id, &err), &err);
    dt_instance_state *s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->name, "counted");
    assert_string_equal(s->input, "\"same\"");
    assert_string_equal(s->output, "{\"input\":\"same\",\"run\":2}");
    /* the original is untouched */
    s = get(&f, "r-2");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "{\"input\":\"same\",\"run\":1}");
    hubfix_close(&f);
}

static void test_restart_running_instance_under_same_id_is_a_state_error(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "restartrunning");
    start(&f, "waiter", "r-3", "\"orig\"");
    wait_status(&f, "r-3", DT_STATUS_RUNNING);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    expect_error(dt_client_restart(f.client, "r-3", false, id, &err), DT_ERR_STATE, &err,
                 "r-3");
    /* still the same run: it completes with the event's data, one ExecutionStarted */
    raise_go(&f, "r-3", "\"ok\"");
    dt_instance_state *s = wait_done(&f, "r-3");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"ok\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, "r-3", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 1);
    hubfix_close(&f);
}

static void test_restart_unknown_instance_is_not_found(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "restartunknown");
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    expect_error(dt_client_restart(f.client, "ghost", false, id, &err), DT_ERR_NOT_FOUND, &err,
                 "ghost");
    expect_error(dt_client_restart(f.client, "ghost", true, id, &err), DT_ERR_NOT_FOUND, &err,
                 "ghost");
    hubfix_close(&f);
}

/* ---- purge one ------------------------------------------------------------------------------- */

static void test_purge_running_instance_is_refused_and_it_completes(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "purgerunning");
    start(&f, "waiter", "u-1", NULL);
    wait_status(&f, "u-1", DT_STATUS_RUNNING);
    dt_error err = {0};
    expect_error(dt_client_purge(f.client, "u-1", &err), DT_ERR_STATE, &err, "u-1");
    assert_int_equal(get(&f, "u-1")->status, DT_STATUS_RUNNING);
    raise_go(&f, "u-1", "3");
    dt_instance_state *s = wait_done(&f, "u-1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "3");
    hubfix_close(&f);
}

static void test_purge_finished_instance_removes_it_and_its_history(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "purgedone");
    start(&f, "echo_orch", "u-2", "1");
    start(&f, "echo_orch", "u-keep", "2");
    wait_done(&f, "u-2");
    wait_done(&f, "u-keep");
    dt_error err = {0};
    assert_ok(dt_client_purge(f.client, "u-2", &err), &err);
    expect_missing(&f, "u-2");
    dt_event *ev;
    size_t n;
    expect_error(dt_client_get_history(f.client, "u-2", f.arena, &ev, &n, &err),
                 DT_ERR_NOT_FOUND, &err, "u-2");
    /* only that one */
    assert_int_equal(get(&f, "u-keep")->status, DT_STATUS_COMPLETED);
    ev = hubfix_history(&f, "u-keep", &n);
    assert_true(n > 0);
    hubfix_close(&f);
}

static void test_purge_unknown_instance_is_not_found(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "purgeunknown");
    dt_error err = {0};
    expect_error(dt_client_purge(f.client, "ghost", &err), DT_ERR_NOT_FOUND, &err, "ghost");
    hubfix_close(&f);
}

/* ---- purge by filter ---------------------------------------------------------------------------- */

static void test_purge_where_status_removes_only_matching_finished_instances(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "purgestatus");
    const char *done[] = {"pc-1", "pc-2", "pc-3"};
    const char *failed[] = {"pf-1", "pf-2"};
    for (int i = 0; i < 3; i++)
        start(&f, "echo_orch", done[i], "1");
    for (int i = 0; i < 2; i++)
        start(&f, "failer", failed[i], "2");
    start(&f, "waiter", "pr-1", NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wait_done(&f, done[i])->status, DT_STATUS_COMPLETED);
    for (int i = 0; i < 2; i++)
        assert_int_equal(wait_done(&f, failed[i])->status, DT_STATUS_FAILED);
    wait_status(&f, "pr-1", DT_STATUS_RUNNING);

    dt_error err = {0};
    size_t n = 99;
    const dt_runtime_status completed[] = {DT_STATUS_COMPLETED};
    dt_query q = {.statuses = completed, .n_statuses = 1};
    assert_ok(dt_client_purge_where(f.client, &q, &n, &err), &err);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        expect_missing(&f, done[i]);
    for (int i = 0; i < 2; i++)
        assert_int_equal(get(&f, failed[i])->status, DT_STATUS_FAILED);
    assert_int_equal(get(&f, "pr-1")->status, DT_STATUS_RUNNING);

    /* asking for running instances purges nothing */
    const dt_runtime_status running[] = {DT_STATUS_RUNNING};
    q = (dt_query){.statuses = running, .n_statuses = 1};
    n = 99;
    assert_ok(dt_client_purge_where(f.client, &q, &n, &err), &err);
    assert_int_equal(n, 0);
    assert_int_equal(get(&f, "pr-1")->status, DT_STATUS_RUNNING);

    /* no filter: every finished one, still not the running one */
    q = (dt_query){0};
    n = 99;
    assert_ok(dt_client_purge_where(f.client, &q, &n, &err), &err);
    assert_int_equal(n, 2);
    for (int i = 0; i < 2; i++)
        expect_missing(&f, failed[i]);
    assert_int_equal(get(&f, "pr-1")->status, DT_STATUS_RUNNING);
    raise_go(&f, "pr-1", "4");
    assert_int_equal(wait_done(&f, "pr-1")->status, DT_STATUS_COMPLETED);
    hubfix_close(&f);
}

static void test_purge_where_created_range_removes_only_instances_in_range(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "purgerange");
    const char *before[] = {"ta-1", "ta-2", "ta-3"};
    const char *inside[] = {"tb-1", "tb-2", "tb-3"};
    const char *after[] = {"tc-1", "tc-2", "tc-3"};
    for (int i = 0; i < 3; i++)
        start(&f, "echo_orch", before[i], "1");
    test_sleep_ms(20);
    dt_time from = dt_now();
    test_sleep_ms(5);
    for (int i = 0; i < 3; i++)
        start(&f, i == 1 ? "failer" : "echo_orch", inside[i], "2");
    start(&f, "waiter", "tb-running", NULL);
    test_sleep_ms(5);
    dt_time to = dt_now();
    test_sleep_ms(20);
    for (int i = 0; i < 3; i++)
        start(&f, "echo_orch", after[i], "3");
    for (int i = 0; i < 3; i++) {
        wait_done(&f, before[i]);
        wait_done(&f, inside[i]);
        wait_done(&f, after[i]);
    }
    wait_status(&f, "tb-running", DT_STATUS_RUNNING);

    dt_error err = {0};
    size_t n = 99;
    dt_query q = {.created_from = from, .created_to = to};
    assert_ok(dt_client_purge_where(f.client, &q, &n, &err), &err);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        expect_missing(&f, inside[i]);
        assert_int_equal(get(&f, before[i])->status, DT_STATUS_COMPLETED);
        assert_int_equal(get(&f, after[i])->status, DT_STATUS_COMPLETED);
    }
    assert_int_equal(get(&f, "tb-running")->status, DT_STATUS_RUNNING);
    hubfix_close(&f);
}

/* ---- id reuse policy ------------------------------------------------------------------------ */

static void test_start_with_id_of_running_instance_is_refused_by_default(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "reuserefused");
    start(&f, "waiter", "i-1", "\"first\"");
    wait_status(&f, "i-1", DT_STATUS_RUNNING);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "i-1", .input = "\"second\""};
    expect_error(dt_client_start(f.client, "waiter", &so, id, &err), DT_ERR_ALREADY_EXISTS,
                 &err, "i-1");
    dt_instance_state *s = get(&f, "i-1");
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    assert_string_equal(s->input, "\"first\"");
    hubfix_close(&f);
}

static void test_replaceable_running_instance_is_replaced_by_the_new_start(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "reusereplace");
    start(&f, "waiter", "i-2", "\"old\"");
    wait_status(&f, "i-2", DT_STATUS_RUNNING);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    const dt_runtime_status live[] = {DT_STATUS_RUNNING, DT_STATUS_PENDING,
                                      DT_STATUS_TERMINATED};
    dt_start_options so = {.instance_id = "i-2", .input = "\"new\"", .replaceable = live,
                           .n_replaceable = 3};
    assert_ok(dt_client_start(f.client, "waiter", &so, id, &err), &err);
    assert_string_equal(id, "i-2");
    wait_status(&f, "i-2", DT_STATUS_RUNNING);
    raise_go(&f, "i-2", "\"answer\"");
    dt_instance_state *s = wait_done(&f, "i-2");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->input, "\"new\"");
    assert_string_equal(s->output, "\"answer\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, "i-2", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 1);
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == DT_EVENT_EXECUTION_STARTED)
            assert_string_equal(ev[i].input, "\"new\"");
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EVENT_RAISED), 1);
    hubfix_close(&f);
}

static void test_default_policy_replaces_a_finished_instance(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "reusefinished");
    start(&f, "echo_orch", "i-3", "1");
    assert_string_equal(wait_done(&f, "i-3")->output, "1");
    start(&f, "echo_orch", "i-3", "2");
    dt_instance_state *s = wait_done(&f, "i-3");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->input, "2");
    assert_string_equal(s->output, "2");
    size_t n;
    dt_event *ev = hubfix_history(&f, "i-3", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 1);
    hubfix_close(&f);
}

static void test_replaceable_list_without_finished_statuses_refuses_a_finished_one(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "reuselist");
    start(&f, "echo_orch", "i-4", "1");
    wait_done(&f, "i-4");
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    const dt_runtime_status live[] = {DT_STATUS_RUNNING, DT_STATUS_PENDING,
                                      DT_STATUS_TERMINATED};
    dt_start_options so = {.instance_id = "i-4", .input = "2", .replaceable = live,
                           .n_replaceable = 3};
    expect_error(dt_client_start(f.client, "echo_orch", &so, id, &err), DT_ERR_ALREADY_EXISTS,
                 &err, "i-4");
    /* replacing live instances but not terminated ones contradicts itself: refused */
    const dt_runtime_status contradictory[] = {DT_STATUS_RUNNING, DT_STATUS_COMPLETED};
    so.replaceable = contradictory;
    so.n_replaceable = 2;
    expect_error(dt_client_start(f.client, "echo_orch", &so, id, &err), DT_ERR_INVALID_ARG,
                 &err, "cannot exclude 'Terminated'");
    /* a policy that names no status replaces nothing (the SDKs' "dedupe every status") */
    dt_start_options none = {.instance_id = "i-4", .input = "3", .reuse_policy = true};
    expect_error(dt_client_start(f.client, "echo_orch", &none, id, &err),
                 DT_ERR_ALREADY_EXISTS, &err, "i-4");
    dt_instance_state *s = get(&f, "i-4");
    assert_string_equal(s->input, "1");
    assert_string_equal(s->output, "1");
    hubfix_close(&f);
}

/* ---- scheduled start -------------------------------------------------------------------------- */

static void test_scheduled_start_stays_pending_until_its_time(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "scheduled");
    dt_time t0 = dt_now();
    dt_time start_at = t0 + 3000 * 1000;
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "sch-1", .input = "\"later\"", .start_at = start_at};
    assert_ok(dt_client_start(f.client, "echo_orch", &so, id, &err), &err);
    dt_time t1 = dt_now();

    /* showing that it has NOT started: a fixed sleep, then reads made before its time (a
     * host stalled for seconds says nothing here; what follows still holds) */
    test_sleep_ms(500);
    dt_instance_state *s = get(&f, "sch-1");
    size_t n;
    dt_event *ev = hubfix_history(&f, "sch-1", &n);
    if (dt_now() < start_at) {
        assert_int_equal(s->status, DT_STATUS_PENDING);
        assert_null(s->output);
        assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 0);
    } else {
        print_message("scheduled start: the host took past the start time; pending not checked\n");
    }
    assert_int_equal(s->scheduled_start, start_at);
    assert_true(s->created_at >= t0 && s->created_at <= t1);

    s = wait_done(&f, "sch-1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"later\"");
    assert_true(s->created_at < start_at);
    assert_true(s->completed_at >= start_at);
    ev = hubfix_history(&f, "sch-1", &n);
    assert_int_equal(ev[0].type, DT_EVENT_ORCHESTRATOR_STARTED);
    assert_true(ev[0].timestamp >= start_at);
    hubfix_close(&f);
}

/* ---- query ---------------------------------------------------------------------------------- */

#define NQ 25

/* seed_queries: q-00..q-24; even ones "alpha", odd ones "beta"; every third (i % 3 == 0)
 * left running, waiting for an event; the rest completed. Created 2 ms apart. */
static void seed_queries(hubfix *f)
{
    for (int i = 0; i < NQ; i++) {
        char id[16], input[64];
        snprintf(id, sizeof id, "q-%02d", i);
        snprintf(input, sizeof input, "{\"i\":%d,\"wait\":%s}", i, i % 3 == 0 ? "true" : "false");
        start(f, i % 2 == 0 ? "alpha" : "beta", id, input);
        test_sleep_ms(2);
    }
    for (int i = 0; i < NQ; i++) {
        char id[16];
        snprintf(id, sizeof id, "q-%02d", i);
        if (i % 3 == 0)
            wait_status(f, id, DT_STATUS_RUNNING);
        else
            assert_int_equal(wait_done(f, id)->status, DT_STATUS_COMPLETED);
    }
}

static int q_index(const char *id)
{
    assert_true(strncmp(id, "q-", 2) == 0);
    return atoi(id + 2);
}

/* query_one_page: the states Q matches, which must fit one page; *N says how many. */
static dt_instance_state *query_one_page(hubfix *f, const dt_query *q, size_t *n)
{
    dt_error err = {0};
    dt_instance_state *out = NULL;
    const char *next = "unset";
    assert_ok(dt_client_query(f->client, q, f->arena, &out, n, &next, &err), &err);
    assert_null(next);
    return out;
}

/* Pages visit every instance once, in order: newest first by default (the token holds the
 * creation time and id of a page's last row), by id when asked. */
static void test_query_pages_visit_every_instance_once(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "querypages");
    seed_queries(&f);
    for (int by_id = 0; by_id < 2; by_id++) {
        int seen[NQ] = {0};
        size_t sizes[8];
        size_t pages = 0;
        int k = 0;   /* rows seen so far, across pages */
        dt_query q = {.page_size = 10, .by_id = by_id};
        for (;;) {
            assert_true(pages < 8);
            dt_error err = {0};
            dt_instance_state *out = NULL;
            size_t n = 0;
            const char *next = NULL;
            assert_ok(dt_client_query(f.client, &q, f.arena, &out, &n, &next, &err), &err);
            sizes[pages++] = n;
            for (size_t i = 0; i < n; i++, k++) {
                seen[q_index(out[i].instance_id)]++;
                assert_int_equal(q_index(out[i].instance_id), by_id ? k : NQ - 1 - k);
            }
            if (next == NULL)
                break;
            q.continuation = next;
        }
        assert_int_equal(pages, 3);
        assert_int_equal(sizes[0], 10);
        assert_int_equal(sizes[1], 10);
        assert_int_equal(sizes[2], 5);
        for (int i = 0; i < NQ; i++)
            if (seen[i] != 1)
                fail_msg("q-%02d was seen %d times", i, seen[i]);
    }
    /* a token that is not a newest-first one is refused, naming it */
    dt_error err = {0};
    dt_instance_state *out = NULL;
    size_t n = 0;
    const char *next = NULL;
    dt_query bad = {.continuation = "q-05"};
    assert_int_equal(dt_client_query(f.client, &bad, f.arena, &out, &n, &next, &err),
                     DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "'q-05'"));
    hubfix_close(&f);
}

static void test_query_filters_by_status(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "querystatus");
    seed_queries(&f);
    const dt_runtime_status running[] = {DT_STATUS_RUNNING};
    dt_query q = {.statuses = running, .n_statuses = 1};
    size_t n;
    dt_instance_state *out = query_one_page(&f, &q, &n);
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i].status, DT_STATUS_RUNNING);
        assert_int_equal(q_index(out[i].instance_id) % 3, 0);
    }
    const dt_runtime_status completed[] = {DT_STATUS_COMPLETED};
    q.statuses = completed;
    out = query_one_page(&f, &q, &n);
    assert_int_equal(n, 16);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(out[i].status, DT_STATUS_COMPLETED);
    hubfix_close(&f);
}

static void test_query_filters_by_name(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "queryname");
    seed_queries(&f);
    dt_query q = {.name = "alpha"};
    size_t n;
    dt_instance_state *out = query_one_page(&f, &q, &n);
    assert_int_equal(n, 13);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(out[i].name, "alpha");
        assert_int_equal(q_index(out[i].instance_id) % 2, 0);
    }
    hubfix_close(&f);
}

static void test_query_filters_by_id_prefix(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "queryprefix");
    seed_queries(&f);
    dt_query q = {.id_prefix = "q-1"};
    size_t n;
    dt_instance_state *out = query_one_page(&f, &q, &n);
    assert_int_equal(n, 10);
    for (size_t i = 0; i < n; i++) {   /* newest first, the default: q-19 .. q-10 */
        char want[32];
        snprintf(want, sizeof want, "q-1%zu", 9 - i);
        assert_string_equal(out[i].instance_id, want);
    }
    hubfix_close(&f);
}

static void test_query_filters_by_created_time_range(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "queryrange");
    seed_queries(&f);
    dt_instance_state *lo = get(&f, "q-10");
    dt_instance_state *hi = get(&f, "q-14");
    assert_true(lo->created_at < hi->created_at);
    dt_query q = {.created_from = lo->created_at, .created_to = hi->created_at, .by_id = true};
    size_t n;
    dt_instance_state *out = query_one_page(&f, &q, &n);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        char want[32];
        snprintf(want, sizeof want, "q-1%zu", i);
        assert_string_equal(out[i].instance_id, want);
    }
    hubfix_close(&f);
}

static void test_query_returns_payloads_only_when_asked(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "querypayloads");
    seed_queries(&f);
    dt_query q = {0};
    size_t n;
    dt_instance_state *out = query_one_page(&f, &q, &n);
    assert_int_equal(n, NQ);
    for (size_t i = 0; i < n; i++) {
        assert_null(out[i].input);
        assert_null(out[i].output);
        assert_string_equal(out[i].name, i % 2 == 0 ? "alpha" : "beta");
    }
    q.with_payloads = true;
    out = query_one_page(&f, &q, &n);
    assert_int_equal(n, NQ);
    for (size_t i = 0; i < n; i++) {
        int k = q_index(out[i].instance_id);
        char input[64];
        snprintf(input, sizeof input, "{\"i\":%d,\"wait\":%s}", k, k % 3 == 0 ? "true" : "false");
        assert_non_null(out[i].input);
        assert_string_equal(out[i].input, input);
        if (k % 3 == 0) {
            assert_null(out[i].output);
        } else {
            assert_non_null(out[i].output);
            assert_string_equal(out[i].output, input);
        }
    }
    hubfix_close(&f);
}

static void test_query_page_size_over_the_limit_is_refused(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "querylimit");
    dt_error err = {0};
    dt_query q = {.page_size = 5000};
    dt_instance_state *out = NULL;
    size_t n = 0;
    const char *next = NULL;
    expect_error(dt_client_query(f.client, &q, f.arena, &out, &n, &next, &err),
                 DT_ERR_INVALID_ARG, &err, "5000");
    hubfix_close(&f);
}

/* ---- custom status ---------------------------------------------------------------------------- */

static void test_custom_status_is_visible_while_waiting_and_final_after(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "customstatus");
    start(&f, "stepper", "c-1", NULL);
    dt_instance_state *s = wait_status(&f, "c-1", DT_STATUS_RUNNING);
    assert_non_null(s->custom_status);
    assert_string_equal(s->custom_status, "{\"step\":1}");
    raise_go(&f, "c-1", "\"fin\"");
    s = wait_done(&f, "c-1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"fin\"");
    assert_non_null(s->custom_status);
    assert_string_equal(s->custom_status, "{\"step\":2}");
    hubfix_close(&f);
}

/* ---- what a wait answers --------------------------------------------------------------------- */

typedef struct done_waiter {
    hubfix *f;
    const char *id;
    pthread_t thread;
    dt_arena *arena;
    dt_instance_state *s;
    dt_status st;
} done_waiter;

static void *wait_in_thread(void *arg)
{
    done_waiter *d = arg;
    dt_error err = {0};
    d->st = dt_client_wait_completion(d->f->client, d->id, WAIT_MS, d->arena, &d->s, &err);
    return NULL;
}

static void same_text(const char *what, const char *a, const char *b)
{
    if (!(a == b || (a && b && strcmp(a, b) == 0)))
        fail_msg("%s: the wait said '%s', the store says '%s'", what, a ? a : "(null)",
                 b ? b : "(null)");
}

/* expect_same_row: A (what a wait answered) is the row as stored (B, read after it). */
static void expect_same_row(const dt_instance_state *a, const dt_instance_state *b)
{
    same_text("instance_id", a->instance_id, b->instance_id);
    same_text("execution_id", a->execution_id, b->execution_id);
    same_text("name", a->name, b->name);
    same_text("version", a->version, b->version);
    assert_int_equal(a->status, b->status);
    same_text("input", a->input, b->input);
    same_text("output", a->output, b->output);
    same_text("custom_status", a->custom_status, b->custom_status);
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->last_updated_at, b->last_updated_at);
    assert_int_equal(a->completed_at, b->completed_at);
    assert_int_equal(a->scheduled_start, b->scheduled_start);
    same_text("parent_instance_id", a->parent_instance_id, b->parent_instance_id);
    same_text("tags", a->tags, b->tags);
    same_text("span_id", a->span_id, b->span_id);
    assert_int_equal(a->span_start, b->span_start);
    assert_int_equal(a->failure == NULL, b->failure == NULL);
    if (a->failure) {
        same_text("failure type", a->failure->error_type, b->failure->error_type);
        same_text("failure message", a->failure->message, b->failure->message);
        same_text("failure stack", a->failure->stack_trace, b->failure->stack_trace);
        same_text("failure properties", a->failure->properties, b->failure->properties);
        assert_int_equal(a->failure->non_retriable, b->failure->non_retriable);
        assert_int_equal(a->failure->inner == NULL, b->failure->inner == NULL);
    }
}

/* A client waiting when the instance ends is told the row its last episode left (the hub
 * hands it over without reading the store again): the same row, to the microsecond, that a
 * read afterwards finds; completed and failed alike. */
static void test_a_wait_is_answered_with_the_row_as_stored(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "waitrow");
    const char *ends[] = {"\"fin\"", "\"fail\""};
    for (int i = 0; i < 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "row-%d", i);
        dt_error err = {0};
        char out[DT_INSTANCE_ID_MAX + 1];
        dt_start_options so = {.instance_id = id, .input = "{\"n\":1}", .version = "v2"};
        assert_ok(dt_client_start(f.client, "stepper", &so, out, &err), &err);
        wait_status(&f, id, DT_STATUS_RUNNING);
        done_waiter d = {.f = &f, .id = id, .arena = f.arena, .st = DT_ERR_INTERNAL};
        assert_int_equal(pthread_create(&d.thread, NULL, wait_in_thread, &d), 0);
        test_sleep_ms(100);   /* the wait is in place before the end (it is right either way) */
        raise_go(&f, id, ends[i]);
        assert_int_equal(pthread_join(d.thread, NULL), 0);
        assert_ok(d.st, NULL);
        assert_int_equal(d.s->status, i == 0 ? DT_STATUS_COMPLETED : DT_STATUS_FAILED);
        expect_same_row(d.s, get(&f, id));
    }
    hubfix_close(&f);
}

/* ---- raise event errors ---------------------------------------------------------------------- */

static void test_raise_event_to_unknown_instance_is_not_found(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "raiseunknown");
    dt_error err = {0};
    expect_error(dt_client_raise_event(f.client, "ghost", "go", "1", &err), DT_ERR_NOT_FOUND,
                 &err, "ghost");
    hubfix_close(&f);
}

static void test_raise_event_to_finished_instance_is_a_state_error(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "raisedone");
    start(&f, "echo_orch", "e-done", "1");
    wait_done(&f, "e-done");
    dt_error err = {0};
    expect_error(dt_client_raise_event(f.client, "e-done", "go", "1", &err), DT_ERR_STATE, &err,
                 "e-done");
    hubfix_close(&f);
}

/* expect_still_waiting: ID has received no event and is still running. */
static void expect_still_waiting(hubfix *f, const char *id)
{
    test_sleep_ms(300);
    dt_instance_state *s = get(f, id);
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    size_t n;
    dt_event *ev = hubfix_history(f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EVENT_RAISED), 0);
}

static void test_raise_event_with_empty_name_is_refused(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "raiseempty");
    start(&f, "waiter", "e-1", NULL);
    wait_status(&f, "e-1", DT_STATUS_RUNNING);
    dt_error err = {0};
    expect_error(dt_client_raise_event(f.client, "e-1", "", "1", &err), DT_ERR_INVALID_ARG, &err,
                 "name");
    expect_still_waiting(&f, "e-1");
    hubfix_close(&f);
}

static void test_raise_event_with_data_that_is_not_json_is_refused_and_not_delivered(void **state)
{
    (void)state;
    hubfix f;
    open_started(&f, "raisebadjson");
    start(&f, "waiter", "e-2", NULL);
    wait_status(&f, "e-2", DT_STATUS_RUNNING);
    dt_error err = {0};
    expect_error(dt_client_raise_event(f.client, "e-2", "go", "{oops", &err), DT_ERR_INVALID_ARG,
                 &err, "JSON");
    expect_still_waiting(&f, "e-2");
    /* the next good event is the first it receives */
    raise_go(&f, "e-2", "\"good\"");
    dt_instance_state *s = wait_done(&f, "e-2");
    assert_string_equal(s->output, "\"good\"");
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_wait_is_answered_with_the_row_as_stored),
        cmocka_unit_test(test_terminate_running_instance_ends_it_with_the_given_output),
        cmocka_unit_test(test_terminate_finished_instance_is_a_state_error),
        cmocka_unit_test(test_terminate_unknown_instance_is_not_found),
        cmocka_unit_test(test_terminate_with_output_that_is_not_json_is_refused_and_it_runs_on),
        cmocka_unit_test(test_recursive_terminate_ends_the_child_too),
        cmocka_unit_test(test_non_recursive_terminate_leaves_the_child_running),
        cmocka_unit_test(test_terminate_ends_an_instance_no_worker_ever_ran),
        cmocka_unit_test(test_recursive_terminate_ends_a_family_whose_worker_stopped),
        cmocka_unit_test(test_suspended_instance_keeps_events_until_resumed),
        cmocka_unit_test(test_suspend_or_resume_of_finished_instance_is_a_state_error),
        cmocka_unit_test(test_suspend_unknown_instance_is_not_found),
        cmocka_unit_test(test_restart_finished_instance_runs_again_with_the_same_input),
        cmocka_unit_test(test_restart_with_new_id_starts_a_separate_instance),
        cmocka_unit_test(test_restart_running_instance_under_same_id_is_a_state_error),
        cmocka_unit_test(test_restart_unknown_instance_is_not_found),
        cmocka_unit_test(test_purge_running_instance_is_refused_and_it_completes),
        cmocka_unit_test(test_purge_finished_instance_removes_it_and_its_history),
        cmocka_unit_test(test_purge_unknown_instance_is_not_found),
        cmocka_unit_test(test_purge_where_status_removes_only_matching_finished_instances),
        cmocka_unit_test(test_purge_where_created_range_removes_only_instances_in_range),
        cmocka_unit_test(test_start_with_id_of_running_instance_is_refused_by_default),
        cmocka_unit_test(test_replaceable_running_instance_is_replaced_by_the_new_start),
        cmocka_unit_test(test_default_policy_replaces_a_finished_instance),
        cmocka_unit_test(test_replaceable_list_without_finished_statuses_refuses_a_finished_one),
        cmocka_unit_test(test_scheduled_start_stays_pending_until_its_time),
        cmocka_unit_test(test_query_pages_visit_every_instance_once),
        cmocka_unit_test(test_query_filters_by_status),
        cmocka_unit_test(test_query_filters_by_name),
        cmocka_unit_test(test_query_filters_by_id_prefix),
        cmocka_unit_test(test_query_filters_by_created_time_range),
        cmocka_unit_test(test_query_returns_payloads_only_when_asked),
        cmocka_unit_test(test_query_page_size_over_the_limit_is_refused),
        cmocka_unit_test(test_custom_status_is_visible_while_waiting_and_final_after),
        cmocka_unit_test(test_raise_event_to_unknown_instance_is_not_found),
        cmocka_unit_test(test_raise_event_to_finished_instance_is_a_state_error),
        cmocka_unit_test(test_raise_event_with_empty_name_is_refused),
        cmocka_unit_test(test_raise_event_with_data_that_is_not_json_is_refused_and_not_delivered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
