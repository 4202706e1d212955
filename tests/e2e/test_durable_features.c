/* test_durable_features.c — durable timers, external events, sub-orchestrations, retry
 * policies and continue-as-new, end to end through the C SDK and a SQLite hub. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/store.h"
#include "hubfix.h"

#define MS 1000

/* ---- activities ------------------------------------------------------------------------ */

/* flaky: fails until its attempt number (counted per instance) reaches the input */
static atomic_int flaky_calls;

static dt_status flaky(dt_actx *ctx, const char *input, const char **output)
{
    int n = atomic_fetch_add(&flaky_calls, 1) + 1;
    if (n < atoi(input))
        return dt_activity_fail(ctx, strcmp(input, "99") == 0 ? "Fatal" : "Transient",
                                "attempt %d failed", n);
    *output = dt_activity_printf(ctx, "%d", n);
    return DT_OK;
}

static void register_activities(hubfix *f)
{
    assert_ok(dt_worker_add_activity(f->worker, "echo", hubfix_echo, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "sleepy", hubfix_sleepy, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "flaky", flaky, NULL), NULL);
}

static dt_instance_state *wait_done(hubfix *f, const char *id)
{
    dt_error err = {0};
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f->client, id, 60000, f->arena, &s, &err), &err);
    return s;
}

static void start(hubfix *f, const char *name, const char *id, const char *input)
{
    dt_error err = {0};
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = id, .input = input};
    assert_ok(dt_client_start(f->client, name, &so, out, &err), &err);
}

/* wait_for_history: poll until ID's history has an event of TYPE */
static void wait_for_history(hubfix *f, const char *id, dt_event_type type)
{
    for (int i = 0; i < 3000; i++) {
        dt_arena *a = dt_arena_new();
        dt_event *ev;
        size_t n = 0;
        bool found = false;
        if (dt_client_get_history(f->client, id, a, &ev, &n, NULL) == DT_OK)
            found = hubfix_count(ev, n, type) > 0;
        dt_arena_free(a);
        if (found)
            return;
        test_sleep_ms(10);
    }
    fail_msg("%s never got a %s event", id, dt_event_type_name(type));
}

/* ---- timers ------------------------------------------------------------------------------- */

static dt_status sleeper(dt_octx *ctx, const char *input, const char **output)
{
    dt_time t0 = dt_octx_now(ctx);
    dt_await(ctx, dt_create_timer(ctx, t0 + atoi(input) * MS));
    *output = dt_printf(ctx, "%lld", (long long)((dt_octx_now(ctx) - t0) / MS));
    return DT_OK;
}

static void test_timer_fires_at_its_time(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "timer", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "sleeper", sleeper, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "sleeper", "300", id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_true(atoi(s->output) >= 300);
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_CREATED), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_FIRED), 1);
    /* TimerFired is dated when it fired, not when the timer was made */
    const dt_event *created = NULL, *fired = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == DT_EVENT_TIMER_CREATED)
            created = &ev[i];
        if (ev[i].type == DT_EVENT_TIMER_FIRED)
            fired = &ev[i];
    }
    assert_true(fired->fire_at == created->fire_at);
    assert_true(fired->timestamp == fired->fire_at);
    assert_true(fired->timestamp - created->timestamp >= 250 * MS);
    hubfix_close(&f);
}

static void test_timer_survives_a_restart_of_the_hub(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "timerrestart", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "sleeper", sleeper, NULL), NULL);
    hubfix_start(&f);
    start(&f, "sleeper", "t1", "1000");
    wait_for_history(&f, "t1", DT_EVENT_TIMER_CREATED);
    /* stop everything while the timer is pending, then open the file again */
    char db[sizeof f.db], schema[sizeof f.schema];
    memcpy(db, f.db, sizeof db);
    memcpy(schema, f.schema, sizeof schema);
    hubfix_close(&f);
    dt_hub_options o = {.db_path = db, .db_schema = schema[0] ? schema : NULL};
    dt_hub *hub;
    dt_worker *w;
    dt_client *c;
    dt_error err = {0};
    assert_ok(dt_hub_open(&o, &hub, &err), &err);
    assert_ok(dt_worker_new(&w), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "sleeper", sleeper, NULL), NULL);
    assert_ok(dt_worker_start(w, hub, NULL, &err), &err);
    assert_ok(dt_client_new(hub, &c), NULL);
    dt_arena *a = dt_arena_new();
    dt_instance_state *s;
    assert_ok(dt_client_wait_completion(c, "t1", 60000, a, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_true(atoi(s->output) >= 1000);
    dt_arena_free(a);
    dt_client_free(c);
    dt_worker_free(w);
    dt_hub_close(hub);
}

static dt_status bad_timer(dt_octx *ctx, const char *input, const char **output)
{
    (void)output;
    dt_time at = strcmp(input, "\"past\"") == 0 ? dt_octx_now(ctx) - 3600LL * 1000000
                                                : (dt_time)400000000000LL * 1000000;
    dt_await(ctx, dt_create_timer(ctx, at));
    *output = "\"fired\"";
    return DT_OK;
}

static void test_timers_far_in_the_past_fire_and_far_in_the_future_fail(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "badtimer", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "bad_timer", bad_timer, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "bad_timer", "\"past\"", id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"fired\"");
    size_t n;   /* a timer already due is dated when it fired, never before it was made */
    dt_event *ev = hubfix_history(&f, id, &n);
    dt_time made = 0, fired = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == DT_EVENT_TIMER_CREATED)
            made = ev[i].timestamp;
        if (ev[i].type == DT_EVENT_TIMER_FIRED)
            fired = ev[i].timestamp;
    }
    assert_true(made > 0 && fired >= made);
    s = hubfix_run(&f, "bad_timer", "\"future\"", NULL);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "InvalidTimer");
    assert_non_null(strstr(s->failure->message, "years 1 to 9999"));
    hubfix_close(&f);
}

/* ---- external events ---------------------------------------------------------------------- */

static dt_status waits_late(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_await(ctx, dt_call_activity(ctx, "sleepy", "300", NULL));
    *output = dt_await(ctx, dt_wait_for_event(ctx, "Approval"));
    return DT_OK;
}

static void test_event_raised_before_the_wait_is_kept(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "eventearly", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "waits_late", waits_late, NULL), NULL);
    hubfix_start(&f);
    start(&f, "waits_late", "e1", NULL);
    dt_error err = {0};
    /* the name matches case-insensitively */
    assert_ok(dt_client_raise_event(f.client, "e1", "approval", "{\"ok\":true}", &err), &err);
    dt_instance_state *s = wait_done(&f, "e1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "{\"ok\":true}");
    hubfix_close(&f);
}

static dt_status waits_at_once(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "Approval"));
    return DT_OK;
}

/* open_waiting: a fixture NAME running waits_at_once (and ALSO, named ALSO_NAME, if given) */
static void open_waiting(hubfix *f, const char *name, const char *also_name,
                         dt_orchestrator_fn also)
{
    hubfix_open(f, name, NULL);
    register_activities(f);
    assert_ok(dt_worker_add_orchestrator(f->worker, "waits_at_once", waits_at_once, NULL), NULL);
    if (also)
        assert_ok(dt_worker_add_orchestrator(f->worker, also_name, also, NULL), NULL);
    hubfix_start(f);
}

static void test_an_event_raised_before_a_scheduled_start_is_kept(void **state)
{
    (void)state;
    hubfix f;
    open_waiting(&f, "eventsched", NULL, NULL);
    dt_error err = {0};
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_time start_at = dt_now() + 1500 * MS;
    dt_start_options so = {.instance_id = "es1", .start_at = start_at};
    assert_ok(dt_client_start(f.client, "waits_at_once", &so, out, &err), &err);
    /* the instance is Pending until its start; the event waits for it, it is not dropped */
    assert_ok(dt_client_raise_event(f.client, "es1", "approval", "\"yes\"", &err), &err);
    dt_instance_state *s = wait_done(&f, "es1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"yes\"");
    assert_true(s->completed_at >= start_at);
    hubfix_close(&f);
}

/* An instance created by another node whose clock runs ahead of this one (or whose start this
 * node's lease, its clock read just before, does not see yet): an event raised at once is
 * visible before the ExecutionStarted. It waits for the start; it is not dropped. */
static void test_an_event_raised_before_its_start_is_visible_is_kept(void **state)
{
    (void)state;
    hubfix f;
    open_waiting(&f, "eventahead", NULL, NULL);
    dt_error err = {0};
    dt_store *other;   /* the other node: the same database, another connection */
    if (f.schema[0])
        assert_ok(dt_store_open_postgres(f.db, f.schema, &other, &err), &err);
    else
        assert_ok(dt_store_open_sqlite(f.db, DT_SYNC_FULL, &other, &err), &err);
    dt_time ahead = dt_now() + 1500 * MS;
    dt_new_instance ni = {.instance_id = "ea1", .execution_id = "ea1-x", .name = "waits_at_once",
                          .created_at = ahead};
    assert_ok(dt_store_create_instance(other, &ni, &err), &err);
    dt_store_close(other);
    assert_ok(dt_client_raise_event(f.client, "ea1", "approval", "\"ahead\"", &err), &err);
    dt_instance_state *s = wait_done(&f, "ea1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"ahead\"");
    hubfix_close(&f);
}

/* sends_to_es2: an orchestration that sends instance es2 an event, then ends */
static dt_status sends_to_es2(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_send_event(ctx, "es2", "approval", "\"from a sender\"");
    *output = "\"sent\"";
    return DT_OK;
}

/* An event an orchestration sends to an instance whose start is an hour off is kept for it,
 * and a terminate meanwhile still acts at once. */
static void test_an_event_sent_to_a_scheduled_instance_waits_and_a_terminate_does_not(void **state)
{
    (void)state;
    hubfix f;
    open_waiting(&f, "eventsent", "sends", sends_to_es2);
    dt_error err = {0};
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "es2", .start_at = dt_now() + (dt_time)3600 * 1000 * MS};
    assert_ok(dt_client_start(f.client, "waits_at_once", &so, out, &err), &err);
    dt_instance_state *s = hubfix_run(&f, "sends", NULL, NULL);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    test_sleep_ms(300);   /* the event reached es2 and was looked at */
    dt_instance_state *p;
    assert_ok(dt_client_get(f.client, "es2", f.arena, &p, &err), &err);
    assert_int_equal(p->status, DT_STATUS_PENDING);
    dt_time t0 = dt_now();
    assert_ok(dt_client_terminate(f.client, "es2", NULL, false, &err), &err);
    s = wait_done(&f, "es2");
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    print_message("terminated %lld ms after the terminate\n", (long long)((dt_now() - t0) / MS));
    assert_true(dt_now() - t0 < 10000 * MS);
    hubfix_close(&f);
}

static dt_status three_events(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_wait_for_event(ctx, "x"));
    const char *b = dt_await(ctx, dt_wait_for_event(ctx, "x"));
    dt_await(ctx, dt_call_activity(ctx, "sleepy", "50", NULL));
    const char *c = dt_await(ctx, dt_wait_for_event(ctx, "x"));
    *output = dt_printf(ctx, "[%s,%s,%s]", a, b, c);
    return DT_OK;
}

static void test_events_of_one_name_arrive_in_order(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "eventorder", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "three", three_events, NULL), NULL);
    hubfix_start(&f);
    start(&f, "three", "e3", NULL);
    dt_error err = {0};
    assert_ok(dt_client_raise_event(f.client, "e3", "x", "1", &err), &err);
    assert_ok(dt_client_raise_event(f.client, "e3", "x", "2", &err), &err);
    test_sleep_ms(100);
    assert_ok(dt_client_raise_event(f.client, "e3", "x", "3", &err), &err);
    dt_instance_state *s = wait_done(&f, "e3");
    assert_string_equal(s->output, "[1,2,3]");
    hubfix_close(&f);
}

static void test_raising_to_missing_or_finished_instances_is_an_error(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "eventerr", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "three", three_events, NULL), NULL);
    hubfix_start(&f);
    dt_error err = {0};
    assert_int_equal(dt_client_raise_event(f.client, "nope", "x", "1", &err), DT_ERR_NOT_FOUND);
    assert_non_null(strstr(err.message, "nope"));
    start(&f, "three", "done", NULL);
    for (int i = 0; i < 3; i++)
        assert_ok(dt_client_raise_event(f.client, "done", "x", "0", &err), &err);
    wait_done(&f, "done");
    assert_int_equal(dt_client_raise_event(f.client, "done", "x", "1", &err), DT_ERR_STATE);
    assert_non_null(strstr(err.message, "finished"));
    hubfix_close(&f);
}

/* the timeout pattern: an event raced with a timer */
static dt_status approval(dt_octx *ctx, const char *input, const char **output)
{
    dt_task *ev = dt_wait_for_event(ctx, "approve");
    dt_task *timeout = dt_create_timer(ctx, dt_octx_now(ctx) + atoi(input) * MS);
    dt_task *race[2] = {ev, timeout};
    dt_task *any = dt_when_any(ctx, race, 2);
    dt_await(ctx, any);
    if (dt_task_winner(any) == 0) {
        dt_cancel(ctx, timeout);
        *output = dt_printf(ctx, "{\"approved\":%s}", dt_task_result(ev));
        return DT_OK;
    }
    /* timed out: give up on that waiter; the next event goes to the next wait */
    dt_cancel(ctx, ev);
    const char *late = dt_await(ctx, dt_wait_for_event(ctx, "approve"));
    *output = dt_printf(ctx, "{\"late\":%s}", late);
    return DT_OK;
}

static void test_timeout_pattern_event_wins_and_the_timer_has_no_effect(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "timeoutwin", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "approval", approval, NULL), NULL);
    hubfix_start(&f);
    start(&f, "approval", "a1", "800");
    dt_error err = {0};
    assert_ok(dt_client_raise_event(f.client, "a1", "approve", "7", &err), &err);
    dt_instance_state *s = wait_done(&f, "a1");
    assert_string_equal(s->output, "{\"approved\":7}");
    size_t n1;
    hubfix_history(&f, "a1", &n1);
    dt_time done_at = s->completed_at;
    /* the losing timer comes due and changes nothing */
    test_sleep_ms(1200);
    dt_instance_state *after;
    assert_ok(dt_client_get(f.client, "a1", f.arena, &after, &err), &err);
    assert_int_equal(after->status, DT_STATUS_COMPLETED);
    assert_string_equal(after->output, "{\"approved\":7}");
    assert_true(after->completed_at == done_at);
    size_t n2;
    hubfix_history(&f, "a1", &n2);
    assert_int_equal(n1, n2);
    hubfix_close(&f);
}

static void test_timeout_pattern_timer_wins_and_the_cancelled_wait_takes_nothing(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "timeoutlose", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "approval", approval, NULL), NULL);
    hubfix_start(&f);
    start(&f, "approval", "a2", "100");
    wait_for_history(&f, "a2", DT_EVENT_TIMER_FIRED);
    test_sleep_ms(200);
    dt_error err = {0};
    assert_ok(dt_client_raise_event(f.client, "a2", "approve", "\"late\"", &err), &err);
    dt_instance_state *s = wait_done(&f, "a2");
    assert_string_equal(s->output, "{\"late\":\"late\"}");
    hubfix_close(&f);
}

/* ---- sub-orchestrations ------------------------------------------------------------------------ */

static dt_status child(dt_octx *ctx, const char *input, const char **output)
{
    if (strcmp(input, "\"fail\"") == 0)
        return dt_fail(ctx, "ChildError", "child was asked to fail");
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", input, NULL));
    return DT_OK;
}

static dt_status parent(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_task_options named = {.instance_id = dt_printf(ctx, "%s-kid", dt_octx_instance_id(ctx))};
    const char *a = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", "\"a\"", &named));
    const char *b = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", "\"b\"", NULL));
    const dt_failure *fail = NULL;
    dt_try_await(ctx, dt_call_sub_orchestrator(ctx, "child", "\"fail\"", NULL), NULL, &fail);
    *output = dt_printf(ctx, "[%s,%s,\"%s\",\"%s\"]", a, b, fail ? fail->error_type : "",
                        fail ? fail->message : "");
    return DT_OK;
}

static void test_sub_orchestration_output_and_failure_reach_the_parent(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "suborch", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "child", child, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "parent", parent, NULL), NULL);
    hubfix_start(&f);
    start(&f, "parent", "p1", NULL);
    dt_instance_state *s = wait_done(&f, "p1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[\"a\",\"b\",\"ChildError\",\"child was asked to fail\"]");
    /* the children are instances of their own, with own or generated ids */
    dt_error err = {0};
    dt_instance_state *k;
    assert_ok(dt_client_get(f.client, "p1-kid", f.arena, &k, &err), &err);
    assert_int_equal(k->status, DT_STATUS_COMPLETED);
    assert_string_equal(k->parent_instance_id, "p1");
    /* derived ids: the parent's execution id and the sequence number */
    const char *kid1 = dt_arena_printf(f.arena, "%s:0001", s->execution_id);
    const char *kid2 = dt_arena_printf(f.arena, "%s:0002", s->execution_id);
    assert_ok(dt_client_get(f.client, kid1, f.arena, &k, &err), &err);
    assert_string_equal(k->output, "\"b\"");
    assert_ok(dt_client_get(f.client, kid2, f.arena, &k, &err), &err);
    assert_int_equal(k->status, DT_STATUS_FAILED);
    size_t n;
    dt_event *ev = hubfix_history(&f, "p1", &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_SUB_ORCHESTRATION_CREATED), 3);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_SUB_ORCHESTRATION_COMPLETED), 2);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_SUB_ORCHESTRATION_FAILED), 1);
    hubfix_close(&f);
}

/* ---- retries -------------------------------------------------------------------------------- */

static bool not_fatal(const dt_failure *f, void *user)
{
    (void)user;
    return strcmp(f->error_type, "Fatal") != 0;
}

static dt_status retrying(dt_octx *ctx, const char *input, const char **output)
{
    /* input: [succeed_on_attempt, max_attempts, timeout_ms] */
    int succeed = 0, max = 0, timeout = 0;
    sscanf(input, "[%d,%d,%d]", &succeed, &max, &timeout);
    dt_retry_policy p = {.max_attempts = max, .first_interval_ms = 100,
                         .backoff_coefficient = 2, .max_interval_ms = 1000,
                         .retry_timeout_ms = timeout, .handle = not_fatal};
    dt_task_options o = {.retry = &p};
    const dt_failure *fail = NULL;
    const char *r = NULL;
    dt_try_await(ctx, dt_call_activity(ctx, "flaky", dt_printf(ctx, "%d", succeed), &o), &r,
                 &fail);
    *output = fail ? dt_printf(ctx, "\"failed: %s\"", fail->message) : r;
    return DT_OK;
}

static void test_retry_policy_retries_on_durable_timers_with_backoff(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "retry", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "retrying", retrying, NULL), NULL);
    hubfix_start(&f);
    atomic_store(&flaky_calls, 0);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "retrying", "[3,5,0]", id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "3");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 3);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_FAILED), 2);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_CREATED), 2);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TIMER_FIRED), 2);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 1);
    /* backoff: the second wait is twice the first */
    dt_time fail_at[2] = {0}, fire_at[2] = {0};
    int nf = 0, nt = 0;
    for (size_t i = 0; i < n; i++) {
        if (ev[i].type == DT_EVENT_TASK_FAILED && nf < 2)
            fail_at[nf++] = ev[i].timestamp;
        if (ev[i].type == DT_EVENT_TIMER_CREATED && nt < 2)
            fire_at[nt++] = ev[i].fire_at;
    }
    assert_true(fire_at[0] - fail_at[0] >= 100 * MS);
    assert_true(fire_at[1] - fail_at[1] >= 200 * MS);
    hubfix_close(&f);
}

static void test_retries_stop_at_max_attempts_predicate_and_timeout(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "retrystop", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "retrying", retrying, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    size_t n;
    dt_event *ev;

    atomic_store(&flaky_calls, 0);
    dt_instance_state *s = hubfix_run(&f, "retrying", "[10,3,0]", id);
    assert_string_equal(s->output, "\"failed: attempt 3 failed\"");
    ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 3);

    atomic_store(&flaky_calls, 0);   /* "99" fails with type Fatal: the predicate says no */
    s = hubfix_run(&f, "retrying", "[99,5,0]", id);
    assert_string_equal(s->output, "\"failed: attempt 1 failed\"");
    ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 1);

    atomic_store(&flaky_calls, 0);   /* a 250 ms retry timeout: waits of 100 then 200 ms */
    s = hubfix_run(&f, "retrying", "[10,10,250]", id);
    ev = hubfix_history(&f, id, &n);
    assert_true(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED) <= 3);
    assert_non_null(strstr(s->output, "failed"));
    hubfix_close(&f);
}

static dt_status absurd_policy(dt_octx *ctx, const char *input, const char **output)
{
    dt_retry_policy p = {.max_attempts = 3, .first_interval_ms = 100};
    if (strcmp(input, "\"negative\"") == 0)
        p.first_interval_ms = -5;
    else if (strcmp(input, "\"absurd\"") == 0)
        p.first_interval_ms = 100LL * 365 * 24 * 3600 * 1000;
    else if (strcmp(input, "\"attempts\"") == 0)
        p.max_attempts = 0;
    else
        p.backoff_coefficient = 0.5;
    dt_task_options o = {.retry = &p};
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", "1", &o));
    return DT_OK;
}

static void test_invalid_retry_policies_fail_the_instance_naming_the_field(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "retrybad", NULL);
    register_activities(&f);
    assert_ok(dt_worker_add_orchestrator(f.worker, "absurd", absurd_policy, NULL), NULL);
    hubfix_start(&f);
    const char *inputs[] = {"\"negative\"", "\"absurd\"", "\"attempts\"", "\"backoff\""};
    const char *fields[] = {"first_interval_ms", "first_interval_ms", "max_attempts",
                            "backoff_coefficient"};
    for (int i = 0; i < 4; i++) {
        dt_instance_state *s = hubfix_run(&f, "absurd", inputs[i], NULL);
        assert_int_equal(s->status, DT_STATUS_FAILED);
        assert_string_equal(s->failure->error_type, "InvalidRetryPolicy");
        if (strstr(s->failure->message, fields[i]) == NULL)
            fail_msg("'%s' does not name %s", s->failure->message, fields[i]);
    }
    hubfix_close(&f);
}

static atomic_int child_runs;

static dt_status flaky_child(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    /* fails on its first run: a new sub-orchestration instance each attempt */
    if (!dt_octx_is_replaying(ctx) && atomic_fetch_add(&child_runs, 1) == 0)
        return dt_fail(ctx, "Transient", "first child run fails");
    *output = "\"child ok\"";
    return DT_OK;
}

static dt_status retries_child(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_retry_policy p = {.max_attempts = 3, .first_interval_ms = 50};
    dt_task_options o = {.retry = &p};
    *output = dt_await(ctx, dt_call_sub_orchestrator(ctx, "flaky_child", NULL, &o));
    return DT_OK;
}

static void test_sub_orchestration_retries(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "retrychild", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "flaky_child", flaky_child, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "retries_child", retries_child, NULL), NULL);
    hubfix_start(&f);
    atomic_store(&child_runs, 0);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "retries_child", NULL, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"child ok\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_SUB_ORCHESTRATION_CREATED), 2);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_SUB_ORCHESTRATION_FAILED), 1);
    hubfix_close(&f);
}

/* ---- continue-as-new ---------------------------------------------------------------------------- */

static dt_status counter(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    if (n < 1000)
        return dt_continue_as_new(ctx, dt_printf(ctx, "%d", n + 1), false);
    *output = dt_printf(ctx, "%d", n);
    return DT_OK;
}

static void test_continue_as_new_runs_1000_generations_with_a_small_history(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "can", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "counter", counter, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "counter", "0", id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "1000");
    assert_string_equal(s->input, "1000");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_true(n <= 6);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_STARTED), 1);
    hubfix_close(&f);
}

static dt_status event_per_generation(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    const char *v = dt_await(ctx, dt_wait_for_event(ctx, "tick"));
    if (n < 2)
        return dt_continue_as_new(ctx, dt_printf(ctx, "%d", n + 1), true);
    *output = dt_printf(ctx, "[%d,%s]", n, v);
    return DT_OK;
}

static void test_continue_as_new_keeps_unprocessed_events(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "cankeep", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "epg", event_per_generation, NULL), NULL);
    hubfix_start(&f);
    start(&f, "epg", "k1", "0");
    dt_error err = {0};
    for (int i = 1; i <= 3; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        assert_ok(dt_client_raise_event(f.client, "k1", "tick", v, &err), &err);
    }
    dt_instance_state *s = wait_done(&f, "k1");
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[2,3]");
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_fires_at_its_time),
        cmocka_unit_test(test_timer_survives_a_restart_of_the_hub),
        cmocka_unit_test(test_timers_far_in_the_past_fire_and_far_in_the_future_fail),
        cmocka_unit_test(test_event_raised_before_the_wait_is_kept),
        cmocka_unit_test(test_an_event_raised_before_a_scheduled_start_is_kept),
        cmocka_unit_test(test_an_event_raised_before_its_start_is_visible_is_kept),
        cmocka_unit_test(test_an_event_sent_to_a_scheduled_instance_waits_and_a_terminate_does_not),
        cmocka_unit_test(test_events_of_one_name_arrive_in_order),
        cmocka_unit_test(test_raising_to_missing_or_finished_instances_is_an_error),
        cmocka_unit_test(test_timeout_pattern_event_wins_and_the_timer_has_no_effect),
        cmocka_unit_test(test_timeout_pattern_timer_wins_and_the_cancelled_wait_takes_nothing),
        cmocka_unit_test(test_sub_orchestration_output_and_failure_reach_the_parent),
        cmocka_unit_test(test_retry_policy_retries_on_durable_timers_with_backoff),
        cmocka_unit_test(test_retries_stop_at_max_attempts_predicate_and_timeout),
        cmocka_unit_test(test_invalid_retry_policies_fail_the_instance_naming_the_field),
        cmocka_unit_test(test_sub_orchestration_retries),
        cmocka_unit_test(test_continue_as_new_runs_1000_generations_with_a_small_history),
        cmocka_unit_test(test_continue_as_new_keeps_unprocessed_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
