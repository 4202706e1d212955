/* test_limits.c — size limits and poison items through the C API and the hub's pull API (the
 * way a remote worker drives it): a payload over DT_PAYLOAD_MAX is refused on the way in and
 * nothing stored; an activity result over it fails the activity (PayloadTooLarge), not the
 * orchestration; a history over the hub's cap fails its instance (HistoryTooLarge); a work
 * item given back DT_POISON_DELIVERIES times in a row fails its instance (PoisonWorkItem) and
 * is counted in the metrics. */
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

#define WAIT_MS 20000

/* json_string: a JSON string of N 'x's (N + 2 bytes), malloc'd. */
static char *json_string(size_t n)
{
    return test_json_string(n, 'x');
}

static dt_orch_item *next_orch(hubfix *f)
{
    dt_orch_item *item = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_next_orchestration(f->hub, WAIT_MS, &item, &err), &err);
    if (item == NULL)
        fail_msg("no orchestration work item within %d ms", WAIT_MS);
    return item;
}

static void start(hubfix *f, const char *id, const char *input)
{
    dt_error err = {0};
    dt_start_request req = {.name = "o", .instance_id = id, .input = input};
    assert_ok(dt_hub_start(f->hub, &req, NULL, &err), &err);
}

static dt_instance_state *state_of(hubfix *f, const char *id)
{
    dt_instance_state *s = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_get(f->hub, id, f->arena, &s, &err), &err);
    return s;
}

static void test_payload_over_the_limit_is_refused_and_nothing_stored(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "limits-in", NULL);
    char *big = json_string(DT_PAYLOAD_MAX);   /* two bytes over */
    dt_error err = {0};
    dt_start_request req = {.name = "o", .instance_id = "big", .input = big};
    assert_int_equal(dt_hub_start(f.hub, &req, NULL, &err), DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "input is 1048578 bytes"));
    assert_non_null(strstr(err.message, "DT_PAYLOAD_MAX"));
    dt_instance_state *s;
    assert_int_equal(dt_hub_get(f.hub, "big", f.arena, &s, &err), DT_ERR_NOT_FOUND);
    start(&f, "small", NULL);
    assert_int_equal(dt_hub_raise_event(f.hub, "small", "e", big, &err), DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "event data"));
    assert_int_equal(dt_hub_suspend(f.hub, "small", big, &err), DT_ERR_INVALID_ARG);
    assert_int_equal(dt_hub_terminate(f.hub, "small", big, false, &err), DT_ERR_INVALID_ARG);
    assert_int_equal(dt_hub_signal_entity(f.hub, "@c@k", "op", big, 0, NULL, &err),
                     DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "DT_PAYLOAD_MAX"));
    assert_int_equal(state_of(&f, "small")->status, DT_STATUS_PENDING);
    free(big);
    hubfix_close(&f);
}

static void test_activity_result_over_the_limit_fails_the_activity(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "limits-act", NULL);
    start(&f, "a1", NULL);
    dt_error err = {0};
    dt_action sched = {.type = DT_ACTION_SCHEDULE_TASK, .id = 0, .name = "act"};
    dt_orch_result res = {.actions = &sched, .n_actions = 1};
    assert_ok(dt_hub_complete_orchestration(f.hub, next_orch(&f), &res, &err), &err);
    dt_activity_item *act = NULL;
    assert_ok(dt_hub_next_activity(f.hub, WAIT_MS, &act, &err), &err);
    assert_non_null(act);
    char *big = json_string(5 * DT_PAYLOAD_MAX);
    assert_ok(dt_hub_complete_activity(f.hub, act, big, NULL, &err), &err);
    free(big);
    dt_orch_item *item = next_orch(&f);
    dt_orch_request req;
    dt_hub_orch_request(item, &req);
    const dt_event *failed = NULL;
    for (size_t i = 0; i < req.n_new; i++)
        if (req.new_events[i].type == DT_EVENT_TASK_FAILED)
            failed = &req.new_events[i];
    assert_non_null(failed);
    assert_string_equal(failed->failure->error_type, "PayloadTooLarge");
    assert_non_null(strstr(failed->failure->message, "DT_PAYLOAD_MAX"));
    dt_action done = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 1,
                      .status = DT_STATUS_COMPLETED, .result = "1"};
    res = (dt_orch_result){.actions = &done, .n_actions = 1};
    assert_ok(dt_hub_complete_orchestration(f.hub, item, &res, &err), &err);
    assert_int_equal(state_of(&f, "a1")->status, DT_STATUS_COMPLETED);
    hubfix_close(&f);
}

static void test_history_over_the_cap_fails_the_instance(void **state)
{
    (void)state;
    hubfix f;
    dt_hub_options o = {.max_history_bytes = 64 << 10};
    hubfix_open(&f, "limits-hist", &o);
    char *part = json_string(40 << 10);
    start(&f, "h1", part);   /* 40 KiB: under the cap */
    dt_error err = {0};
    dt_action sched = {.type = DT_ACTION_SCHEDULE_TASK, .id = 0, .name = "act", .input = part};
    dt_orch_result res = {.actions = &sched, .n_actions = 1};
    assert_ok(dt_hub_complete_orchestration(f.hub, next_orch(&f), &res, &err), &err);
    free(part);
    dt_instance_state *s = state_of(&f, "h1");
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "HistoryTooLarge");
    assert_non_null(strstr(s->failure->message, "history size limit of 65536 bytes"));
    dt_activity_item *act = NULL;
    assert_ok(dt_hub_next_activity(f.hub, 200, &act, &err), &err);
    assert_null(act);   /* nothing of the refused episode was stored */
    hubfix_close(&f);
}

static void test_item_given_back_ten_times_is_parked_and_counted(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "limits-poison", NULL);
    start(&f, "p1", NULL);
    dt_error err = {0};
    for (int i = 0; i < DT_POISON_DELIVERIES; i++) {
        dt_orch_item *item = next_orch(&f);
        assert_string_equal(item->instance_id, "p1");
        assert_int_equal(state_of(&f, "p1")->status, DT_STATUS_PENDING);
        dt_hub_release_orchestration(f.hub, item, &err);
    }
    dt_instance_state *s = state_of(&f, "p1");
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "PoisonWorkItem");
    assert_non_null(strstr(s->failure->message, "delivered 10 times without a result"));
    char *text = NULL;
    assert_int_equal(dt_hub_metrics_text(f.hub, &text), DT_OK);
    assert_non_null(strstr(text, "\ndtask_poison_items_total 1\n"));
    free(text);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_over_the_limit_is_refused_and_nothing_stored),
        cmocka_unit_test(test_activity_result_over_the_limit_fails_the_activity),
        cmocka_unit_test(test_history_over_the_cap_fails_the_instance),
        cmocka_unit_test(test_item_given_back_ten_times_is_parked_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
