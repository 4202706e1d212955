/* test_history_shapes.c — histories as the other SDKs write them, driven through the hub's
 * pull API exactly as a remote worker drives it (lease an item, answer with actions), with no
 * C orchestrator involved: a retry scheduled under the task id of the failed attempt (the
 * Python SDK's way), a true duplicate result (at-least-once activities), and a continue-as-new
 * that carries events over while other events wait in the inbox. Each checks what the worker
 * is handed and what history keeps. */
#include <string.h>

#include "hubfix.h"

#define WAIT_MS 20000

/* next_orch: the next orchestration work item (the test fails if none comes in time), with
 * its request: what a worker would be sent. */
static dt_orch_item *next_orch(hubfix *f, dt_orch_request *req)
{
    dt_orch_item *item = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_next_orchestration(f->hub, WAIT_MS, &item, &err), &err);
    if (item == NULL)
        fail_msg("no orchestration work item within %d ms", WAIT_MS);
    dt_hub_orch_request(item, req);
    return item;
}

static dt_activity_item *next_act(hubfix *f)
{
    dt_activity_item *item = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_next_activity(f->hub, WAIT_MS, &item, &err), &err);
    if (item == NULL)
        fail_msg("no activity work item within %d ms", WAIT_MS);
    return item;
}

/* answer: complete ITEM with the N actions at ACTS. */
static void answer(hubfix *f, dt_orch_item *item, const dt_action *acts, size_t n)
{
    dt_orch_result res = {.actions = acts, .n_actions = n};
    dt_error err = {0};
    assert_ok(dt_hub_complete_orchestration(f->hub, item, &res, &err), &err);
}

static dt_action schedule(int32_t id, const char *name)
{
    return (dt_action){.type = DT_ACTION_SCHEDULE_TASK, .id = id, .name = name};
}

/* count: the new events of REQ of TYPE (and, for a completion, of TASK_ID unless -1). */
static size_t count(const dt_event *ev, size_t n, dt_event_type type, int32_t task_id)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ev[i].type == type && (task_id < 0 || ev[i].task_id == task_id);
    return k;
}

static const dt_event *find(const dt_event *ev, size_t n, dt_event_type type)
{
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == type)
            return &ev[i];
    return NULL;
}

static void start(hubfix *f, const char *name, const char *id)
{
    char got[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = id};
    dt_error err = {0};
    assert_ok(dt_client_start(f->client, name, &so, got, &err), &err);
}

/* The Python SDK retries an activity under the task id of the attempt that failed:
 * TaskScheduled 0, TaskFailed 0, TimerCreated 1, TimerFired 1, TaskScheduled 0 again. The
 * second TaskFailed 0 answers the second scheduling: it is not a duplicate, the worker is
 * handed it, and history keeps it (had it been dropped, the next replay would find a retry
 * timer the history cannot explain: a non-determinism error instead of the failure). */
static void test_a_retry_under_the_same_task_id_keeps_its_result(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "shape-retry", NULL);
    start(&f, "py_retry", "r1");
    dt_orch_request req;
    dt_error err = {0};

    dt_orch_item *o = next_orch(&f, &req);
    assert_non_null(find(req.new_events, req.n_new, DT_EVENT_EXECUTION_STARTED));
    dt_action a = schedule(0, "flaky");
    answer(&f, o, &a, 1);

    dt_failure first = {"IOError", "attempt 1", NULL, NULL, false, NULL};
    assert_ok(dt_hub_complete_activity(f.hub, next_act(&f), NULL, &first, &err), &err);
    o = next_orch(&f, &req);
    assert_int_equal(count(req.new_events, req.n_new, DT_EVENT_TASK_FAILED, 0), 1);
    a = (dt_action){.type = DT_ACTION_CREATE_TIMER, .id = 1, .fire_at = dt_now()};
    answer(&f, o, &a, 1);

    o = next_orch(&f, &req);
    assert_int_equal(count(req.new_events, req.n_new, DT_EVENT_TIMER_FIRED, 1), 1);
    a = schedule(0, "flaky");   /* the retry, under the failed attempt's id */
    answer(&f, o, &a, 1);

    dt_activity_item *act = next_act(&f);
    assert_int_equal(act->task_id, 0);
    dt_failure second = {"IOError", "attempt 2", NULL, NULL, false, NULL};
    assert_ok(dt_hub_complete_activity(f.hub, act, NULL, &second, &err), &err);
    o = next_orch(&f, &req);
    const dt_event *failed = find(req.new_events, req.n_new, DT_EVENT_TASK_FAILED);
    if (failed == NULL)
        fail_msg("the second attempt's TaskFailed was not handed to the worker");
    assert_string_equal(failed->failure->message, "attempt 2");
    a = (dt_action){.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 2,
                    .status = DT_STATUS_FAILED, .failure = failed->failure};
    answer(&f, o, &a, 1);

    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f.client, "r1", WAIT_MS, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->message, "attempt 2");
    size_t n = 0;
    dt_event *h = hubfix_history(&f, "r1", &n);
    assert_int_equal(count(h, n, DT_EVENT_TASK_SCHEDULED, -1), 2);
    assert_int_equal(count(h, n, DT_EVENT_TASK_FAILED, 0), 2);
    hubfix_close(&f);
}

/* A result for a task whose every scheduling already has its result is a duplicate (an
 * activity runs at least once): the worker is not handed it and history keeps the first. */
static void test_a_second_result_for_one_scheduling_is_dropped(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "shape-dup", NULL);
    start(&f, "dup", "d1");
    dt_orch_request req;
    dt_error err = {0};
    dt_orch_item *o = next_orch(&f, &req);
    dt_action a = schedule(0, "work");
    answer(&f, o, &a, 1);
    dt_activity_item *act = next_act(&f);

    /* an earlier run of the same activity reported first: its result reaches the inbox as a
     * message of its own (through a second handle on the store, as another process would) */
    dt_store *other = NULL;
    assert_ok(dt_store_open_sqlite(f.db, DT_SYNC_FULL, &other, &err), &err);
    dt_message m = {.instance_id = "d1"};
    dt_event_init(&m.event, DT_EVENT_TASK_COMPLETED, dt_now());
    m.event.task_id = 0;
    m.event.result = "\"first\"";
    assert_ok(dt_store_send_message(other, &m, &err), &err);
    dt_store_close(other);
    o = next_orch(&f, &req);
    const dt_event *done = find(req.new_events, req.n_new, DT_EVENT_TASK_COMPLETED);
    assert_non_null(done);
    assert_string_equal(done->result, "\"first\"");
    answer(&f, o, NULL, 0);   /* nothing new to do yet */

    /* the leased run reports too: a duplicate now */
    assert_ok(dt_hub_complete_activity(f.hub, act, "\"second\"", NULL, &err), &err);
    o = next_orch(&f, &req);
    assert_int_equal(count(req.new_events, req.n_new, DT_EVENT_TASK_COMPLETED, -1), 0);
    a = (dt_action){.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 1,
                    .status = DT_STATUS_COMPLETED, .result = "\"first\""};
    answer(&f, o, &a, 1);

    size_t n = 0;
    dt_event *h = hubfix_history(&f, "d1", &n);
    assert_int_equal(count(h, n, DT_EVENT_TASK_COMPLETED, 0), 1);
    assert_string_equal(find(h, n, DT_EVENT_TASK_COMPLETED)->result, "\"first\"");
    hubfix_close(&f);
}

/* Among many tasks (more ids than the hub's tally of a cached history starts with room
 * for), a second result for one of them, arriving episodes later, is still known for a
 * duplicate, while a result for the one task still outstanding goes through. */
#define MANY_TASKS 150
static void test_a_late_duplicate_among_many_tasks_is_dropped(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "shape-many", NULL);
    start(&f, "many", "m1");
    dt_orch_request req;
    dt_error err = {0};
    dt_orch_item *o = next_orch(&f, &req);
    dt_action acts[MANY_TASKS];
    for (int i = 0; i < MANY_TASKS; i++)
        acts[i] = schedule(i, "work");
    answer(&f, o, acts, MANY_TASKS);
    dt_activity_item *last = NULL;
    for (int i = 0; i < MANY_TASKS; i++) {
        dt_activity_item *act = next_act(&f);
        if (act->task_id == MANY_TASKS - 1) {
            last = act;   /* outstanding till the end */
            continue;
        }
        assert_ok(dt_hub_complete_activity(f.hub, act, "\"ok\"", NULL, &err), &err);
    }
    assert_non_null(last);
    size_t seen = 0;
    while (seen < MANY_TASKS - 1) {   /* the results, in one episode or a few */
        o = next_orch(&f, &req);
        seen += count(req.new_events, req.n_new, DT_EVENT_TASK_COMPLETED, -1);
        answer(&f, o, NULL, 0);
    }
    assert_int_equal(seen, MANY_TASKS - 1);

    /* an earlier run of task 57 reports late, through another handle on the store */
    dt_store *other = NULL;
    assert_ok(dt_store_open_sqlite(f.db, DT_SYNC_FULL, &other, &err), &err);
    dt_message m = {.instance_id = "m1"};
    dt_event_init(&m.event, DT_EVENT_TASK_COMPLETED, dt_now());
    m.event.task_id = 57;
    m.event.result = "\"late\"";
    assert_ok(dt_store_send_message(other, &m, &err), &err);
    dt_store_close(other);
    o = next_orch(&f, &req);
    assert_int_equal(count(req.new_events, req.n_new, DT_EVENT_TASK_COMPLETED, -1), 0);
    answer(&f, o, NULL, 0);

    assert_ok(dt_hub_complete_activity(f.hub, last, "\"last\"", NULL, &err), &err);
    o = next_orch(&f, &req);
    assert_int_equal(count(req.new_events, req.n_new, DT_EVENT_TASK_COMPLETED, MANY_TASKS - 1), 1);
    dt_action done = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = MANY_TASKS,
                      .status = DT_STATUS_COMPLETED};
    answer(&f, o, &done, 1);
    size_t n = 0;
    dt_event *h = hubfix_history(&f, "m1", &n);
    assert_int_equal(count(h, n, DT_EVENT_TASK_COMPLETED, 57), 1);
    assert_int_equal(count(h, n, DT_EVENT_TASK_COMPLETED, -1), MANY_TASKS);
    hubfix_close(&f);
}

/* Continue-as-new carrying event "e2" over while "e3" and "e4" wait in the inbox: the new
 * generation is handed ExecutionStarted, then the carried-over event, then the waiting ones
 * in arrival order (an SDK does not resume a generation whose ExecutionStarted comes after
 * one of its events), and its history keeps that order. */
static void test_continue_as_new_puts_the_new_start_and_carried_events_first(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "shape-can", NULL);
    start(&f, "counter", "c1");
    dt_orch_request req;
    dt_error err = {0};
    dt_orch_item *o = next_orch(&f, &req);
    /* events that arrive while the episode runs wait in the inbox */
    assert_ok(dt_client_raise_event(f.client, "c1", "e3", "3", &err), &err);
    assert_ok(dt_client_raise_event(f.client, "c1", "e4", "4", &err), &err);
    dt_event carried;
    dt_event_init(&carried, DT_EVENT_EVENT_RAISED, dt_now());
    carried.name = "e2";
    carried.input = "2";
    dt_action a = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 0,
                   .status = DT_STATUS_CONTINUED_AS_NEW, .result = "\"gen2\"",
                   .carryover = &carried, .n_carryover = 1};
    answer(&f, o, &a, 1);

    o = next_orch(&f, &req);
    static const dt_event_type want[] = {DT_EVENT_ORCHESTRATOR_STARTED,
                                         DT_EVENT_EXECUTION_STARTED, DT_EVENT_EVENT_RAISED,
                                         DT_EVENT_EVENT_RAISED, DT_EVENT_EVENT_RAISED};
    static const char *const names[] = {NULL, NULL, "e2", "e3", "e4"};
    assert_int_equal(req.n_new, 5);
    for (size_t i = 0; i < 5; i++) {
        if (req.new_events[i].type != want[i] ||
            (names[i] && strcmp(req.new_events[i].name, names[i]) != 0))
            fail_msg("new event %zu is %s '%s', want %s '%s'", i,
                     dt_event_type_name(req.new_events[i].type),
                     req.new_events[i].name ? req.new_events[i].name : "",
                     dt_event_type_name(want[i]), names[i] ? names[i] : "");
    }
    assert_string_equal(req.new_events[1].input, "\"gen2\"");
    a = (dt_action){.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 0,
                    .status = DT_STATUS_COMPLETED, .result = "\"done\""};
    answer(&f, o, &a, 1);

    size_t n = 0;
    dt_event *h = hubfix_history(&f, "c1", &n);
    const char *order[3];
    size_t k = 0;
    bool started_first = false;
    for (size_t i = 0; i < n; i++) {
        if (h[i].type == DT_EVENT_EXECUTION_STARTED)
            started_first = k == 0;
        if (h[i].type == DT_EVENT_EVENT_RAISED && k < 3)
            order[k++] = h[i].name;
    }
    assert_true(started_first);
    assert_int_equal(k, 3);
    assert_string_equal(order[0], "e2");
    assert_string_equal(order[1], "e3");
    assert_string_equal(order[2], "e4");
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_retry_under_the_same_task_id_keeps_its_result),
        cmocka_unit_test(test_a_second_result_for_one_scheduling_is_dropped),
        cmocka_unit_test(test_a_late_duplicate_among_many_tasks_is_dropped),
        cmocka_unit_test(test_continue_as_new_puts_the_new_start_and_carried_events_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
