/* test_service.c — the TaskHubSidecarService's messages to and from our records
 * (src/service/service.h), both sides of the wire: actions, states, work items, queries and
 * filters round-trip through real bytes; the bytes follow the protocol's field numbers
 * (checked against bytes built by hand); strings from the wire that are not UTF-8 are refused
 * naming the field; entity actions are read; a rewind needs its new history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "wiretest.h"

static dt_failure inner_failure = { "IOError", "disk full", NULL, NULL, true, NULL };
static const dt_failure outer_failure = { "TaskFailed", "activity \"Copy\" failed",
                                          "at copy()\nat main()", &inner_failure, false, NULL };

/* ---- helpers ----------------------------------------------------------------------------- */

/* sv / ts / failure_msg: a StringValue, Timestamp or TaskFailureDetails for a hand-built
 * message, in ARENA. */
static Dtpb__StringValue *sv(dt_arena *a, const char *s)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__StringValue *v = pb_b_sv(&b, s);
    assert_ok(b.status, NULL);
    return v;
}

static Dtpb__Timestamp *ts(dt_arena *a, dt_time t)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__Timestamp *m = pb_b_time(&b, t);
    assert_ok(b.status, NULL);
    return m;
}

static Dtpb__TaskFailureDetails *failure_msg(dt_arena *a, const dt_failure *f)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__TaskFailureDetails *m = pb_b_failure(&b, f);
    assert_ok(b.status, NULL);
    return m;
}


/* action_roundtrip: IN to a message, to bytes, through pb_unpack, and back; expect IN. The
 * result lives in ARENA B, which shares nothing with arena A that built the message. */
static void action_roundtrip(const dt_action *in)
{
    dt_arena *a = dt_arena_new(), *b = dt_arena_new();
    assert_non_null(a);
    assert_non_null(b);
    dt_error err;
    Dtpb__OrchestratorAction *m = NULL;
    assert_ok(svc_action_to_msg(a, in, &m), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    Dtpb__OrchestratorAction *back = NULL;
    assert_ok(pb_unpack(b, &dtpb__orchestrator_action__descriptor, bytes, len, (void **)&back,
                        &err), &err);
    dt_arena_free(a);                   /* the bytes and the built tree are gone now */
    dt_action out;
    assert_ok(svc_action_from_msg(b, back, &out, &err), &err);
    assert_same_action(in, &out);
    dt_arena_free(b);
}

/* action_from_bytes: unpack W as an OrchestratorAction and convert it; the status. */
static dt_status action_from_bytes(dt_arena *a, const wire *w, dt_action *out, dt_error *err)
{
    Dtpb__OrchestratorAction *m = NULL;
    dt_status st = pb_unpack(a, &dtpb__orchestrator_action__descriptor, w->b, w->n, (void **)&m,
                             err);
    return st != DT_OK ? st : svc_action_from_msg(a, m, out, err);
}


static void test_every_action_round_trips_through_bytes(void **state)
{
    (void)state;
    dt_action a;

    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_SCHEDULE_TASK;
    a.id = 0;
    a.name = "SayHello";
    a.version = "2.0";
    a.input = "\"Tokyo\"";
    action_roundtrip(&a);
    a.version = NULL;                          /* absent stays absent, "" stays "" */
    a.input = "";
    action_roundtrip(&a);

    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_CREATE_SUB_ORCHESTRATION;
    a.id = 7;
    a.instance_id = "child-1";
    a.name = "Child";
    a.input = "{\"n\":1}";
    action_roundtrip(&a);

    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_CREATE_TIMER;
    a.id = 3;
    a.fire_at = INT64_C(1764084173123456);
    action_roundtrip(&a);
    a.fire_at = -1;                            /* a microsecond before 1970 */
    action_roundtrip(&a);

    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_SEND_EVENT;
    a.id = 4;
    a.instance_id = "other";
    a.name = "Approval";
    a.input = "true";
    action_roundtrip(&a);

    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_TERMINATE_ORCHESTRATION;
    a.id = 5;
    a.instance_id = "runaway";
    a.input = "\"enough\"";
    a.recurse = true;
    action_roundtrip(&a);

    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_COMPLETE_ORCHESTRATION;
    a.id = 9;
    a.status = DT_STATUS_FAILED;
    a.failure = &outer_failure;
    action_roundtrip(&a);
    a.status = DT_STATUS_COMPLETED;
    a.failure = NULL;
    a.result = "[1,2,3]";
    action_roundtrip(&a);
}

static void test_continue_as_new_carries_events_and_version(void **state)
{
    (void)state;
    dt_event carry[3];
    dt_event_init(&carry[0], DT_EVENT_EVENT_RAISED, INT64_C(1764084173000000));
    carry[0].name = "Approval";
    carry[0].input = "{\"ok\":true}";
    dt_event_init(&carry[1], DT_EVENT_EVENT_RAISED, INT64_C(1764084174000000));
    carry[1].name = "Cancel";
    dt_event_init(&carry[2], DT_EVENT_TASK_FAILED, INT64_C(1764084175000000));
    carry[2].task_id = 2;
    carry[2].failure = &outer_failure;

    dt_action a;
    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_COMPLETE_ORCHESTRATION;
    a.id = 11;
    a.status = DT_STATUS_CONTINUED_AS_NEW;
    a.result = "{\"round\":2}";
    a.version = "v2";
    a.carryover = carry;
    a.n_carryover = 3;
    action_roundtrip(&a);
}

static void test_schedule_task_bytes_follow_the_protocol(void **state)
{
    (void)state;
    /* OrchestratorAction {id = 1: 5, scheduleTask = 2: {name = 1: "A", input = 3: {"1"}}} */
    wire body = { .n = 0 }, input = { .n = 0 }, want = { .n = 0 };
    w_str(&body, 1, "A");
    w_str(&input, 1, "1");
    w_msg(&body, 3, &input);
    w_int(&want, 1, 5);
    w_msg(&want, 2, &body);

    dt_action a;
    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_SCHEDULE_TASK;
    a.id = 5;
    a.name = "A";
    a.input = "1";
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    Dtpb__OrchestratorAction *m = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(svc_action_to_msg(arena, &a, &m), NULL);
    assert_ok(pb_pack(arena, &m->base, &bytes, &len), NULL);
    expect_bytes(bytes, len, &want, "scheduleTask");

    /* sendEvent = 5: {instance = 1: {instanceId = 1: "i"}, name = 2: "e", data = 3: {}} */
    wire inst = { .n = 0 }, data = { .n = 0 };
    w_str(&inst, 1, "i");
    body.n = 0;
    w_msg(&body, 1, &inst);
    w_str(&body, 2, "e");
    w_msg(&body, 3, &data);
    want.n = 0;
    w_int(&want, 1, 6);
    w_msg(&want, 5, &body);
    dt_action out;
    dt_error err;
    assert_ok(action_from_bytes(arena, &want, &out, &err), &err);
    assert_int_equal(out.type, DT_ACTION_SEND_EVENT);
    assert_int_equal(out.id, 6);
    assert_string_equal(out.instance_id, "i");
    assert_string_equal(out.name, "e");
    assert_string_equal(out.input, "");
    dt_arena_free(arena);
}

static void test_entity_actions_are_read_and_a_rewind_needs_a_history(void **state)
{
    (void)state;
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_action out;
    dt_error err;
    wire w = { .n = 0 }, empty = { .n = 0 }, signal = { .n = 0 };

    /* sendEntityMessage = 8: {entityOperationSignaled = 1: {operation = 2: "add"}} */
    w_str(&signal, 2, "add");
    wire body = { .n = 0 };
    w_msg(&body, 1, &signal);
    w_int(&w, 1, 2);
    w_msg(&w, 8, &body);
    assert_ok(action_from_bytes(arena, &w, &out, &err), &err);
    assert_int_equal(out.type, DT_ACTION_SEND_ENTITY_MESSAGE);
    assert_int_equal(out.id, 2);
    assert_non_null(out.entity);
    assert_int_equal(out.entity->type, DT_EVENT_ENTITY_SIGNALED);
    assert_string_equal(out.entity->name, "add");
    /* one with no message in it */
    w.n = 0;
    w_int(&w, 1, 2);
    w_msg(&w, 8, &empty);
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "sendEntityMessage has no message set");

    w.n = 0;
    w_int(&w, 1, 3);
    w_msg(&w, 9, &empty);                      /* rewindOrchestration, no newHistory */
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "rewindOrchestration.newHistory is empty");
    /* with one: newHistory = 1: HistoryEvent {eventId = 1: -1, orchestratorStarted = 14: {}} */
    wire ev = { .n = 0 }, rw = { .n = 0 };
    w_int(&ev, 1, -1);
    w_msg(&ev, 14, &empty);
    w_msg(&rw, 1, &ev);
    w.n = 0;
    w_int(&w, 1, 3);
    w_msg(&w, 9, &rw);
    assert_ok(action_from_bytes(arena, &w, &out, &err), &err);
    assert_int_equal(out.type, DT_ACTION_REWIND);
    assert_int_equal(out.n_carryover, 1);
    assert_int_equal(out.carryover[0].type, DT_EVENT_ORCHESTRATOR_STARTED);

    w.n = 0;
    w_int(&w, 1, 4);
    w_msg(&w, 12, &empty);                     /* a member newer than the protocol we know */
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_UNIMPLEMENTED,
                 "field 12");

    w.n = 0;
    w_int(&w, 1, 4);                           /* no member at all */
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "no action");
    dt_arena_free(arena);
}

/* A worker's timer due at 1970-01-01T00:00:00Z (a present Timestamp of zeros, which reads as
 * 0, our "no time") is due at once and builds again (found by the pb_request fuzz target). */
static void test_a_timer_at_the_epoch_is_due_at_once_and_builds_again(void **state)
{
    (void)state;
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_action out;
    dt_error err;
    wire w = { .n = 0 }, zero = { .n = 0 }, timer = { .n = 0 };
    w_msg(&timer, 1, &zero);                   /* fireAt: seconds 0, nanos 0 */
    w_int(&w, 1, 1);
    w_msg(&w, 4, &timer);
    assert_int_equal(action_from_bytes(arena, &w, &out, &err), DT_OK);
    assert_int_equal(out.type, DT_ACTION_CREATE_TIMER);
    assert_int_equal(out.fire_at, 1);
    Dtpb__OrchestratorAction *m = NULL;
    assert_int_equal(svc_action_to_msg(arena, &out, &m), DT_OK);
    assert_non_null(m->createtimer->fireat);
    dt_arena_free(arena);
}

static void test_actions_missing_what_they_need_are_refused(void **state)
{
    (void)state;
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_action out;
    dt_error err;
    wire w = { .n = 0 }, empty = { .n = 0 }, body = { .n = 0 };

    w_int(&w, 1, 1);
    w_msg(&w, 4, &empty);                      /* createTimer without fireAt */
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "createTimer.fireAt");

    w.n = 0;
    w_str(&body, 2, "e");
    w_int(&w, 1, 1);
    w_msg(&w, 5, &body);                       /* sendEvent without instance */
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "sendEvent.instance");

    w.n = 0;
    body.n = 0;
    w_int(&body, 1, 8);                        /* a status one past Suspended */
    w_int(&w, 1, 1);
    w_msg(&w, 6, &body);
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "completeOrchestration.orchestrationStatus 8");

    /* a member set without its message (only a tree built by hand can be like that) */
    Dtpb__OrchestratorAction hollow = DTPB__ORCHESTRATOR_ACTION__INIT;
    hollow.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_TIMER;
    expect_error(svc_action_from_msg(arena, &hollow, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "member 4 is set but holds no message");
    Dtpb__HistoryEvent hollow_event = DTPB__HISTORY_EVENT__INIT;
    dt_event e;
    hollow_event.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED;
    pb_reader rd = PB_READER(arena, &err, NULL);
    pb_r_event(&rd, &hollow_event, &e);
    expect_error(rd.status, &err, DT_ERR_INVALID_ARG, "member 13 is set but holds no message");

    /* what we cannot write is refused on the way out too */
    dt_action a;
    Dtpb__OrchestratorAction *m = NULL;
    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_CREATE_TIMER;
    assert_int_equal(svc_action_to_msg(arena, &a, &m), DT_ERR_INVALID_ARG);
    a.type = DT_ACTION_COMPLETE_ORCHESTRATION;
    a.status = (dt_runtime_status)8;
    assert_int_equal(svc_action_to_msg(arena, &a, &m), DT_ERR_INVALID_ARG);
    a.type = (dt_action_type)8;
    assert_int_equal(svc_action_to_msg(arena, &a, &m), DT_ERR_INVALID_ARG);
    assert_null(m);
    dt_arena_free(arena);
}

static void test_invalid_utf8_in_an_action_is_refused_naming_the_field(void **state)
{
    (void)state;
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_action out;
    dt_error err;
    char bad[] = "Say\xffHello";

    /* built directly, as a message that did not come through pb_unpack */
    Dtpb__OrchestratorAction m = DTPB__ORCHESTRATOR_ACTION__INIT;
    Dtpb__ScheduleTaskAction st = DTPB__SCHEDULE_TASK_ACTION__INIT;
    st.name = bad;
    m.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SCHEDULE_TASK;
    m.scheduletask = &st;
    expect_error(svc_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "scheduleTask.name is not valid UTF-8");
    st.name = "SayHello";
    Dtpb__StringValue sv = DTPB__STRING_VALUE__INIT;
    sv.value = bad;
    st.input = &sv;
    expect_error(svc_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "scheduleTask.input is not valid UTF-8");

    Dtpb__SendEventAction se = DTPB__SEND_EVENT_ACTION__INIT;
    Dtpb__OrchestrationInstance inst = DTPB__ORCHESTRATION_INSTANCE__INIT;
    inst.instanceid = bad;
    se.instance = &inst;
    m.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_EVENT;
    m.sendevent = &se;
    expect_error(svc_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "sendEvent.instance.instanceId is not valid UTF-8");

    /* deep in a completion: the inner failure's message, and a carried-over event */
    Dtpb__CompleteOrchestrationAction co = DTPB__COMPLETE_ORCHESTRATION_ACTION__INIT;
    Dtpb__TaskFailureDetails outer = DTPB__TASK_FAILURE_DETAILS__INIT;
    Dtpb__TaskFailureDetails inner = DTPB__TASK_FAILURE_DETAILS__INIT;
    inner.errormessage = bad;
    outer.innerfailure = &inner;
    co.orchestrationstatus = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    co.failuredetails = &outer;
    m.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION;
    m.completeorchestration = &co;
    expect_error(svc_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "completeOrchestration.failureDetails.errorMessage (inner failure 1) is not "
                 "valid UTF-8");

    co.failuredetails = NULL;
    co.orchestrationstatus = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW;
    Dtpb__HistoryEvent ok = DTPB__HISTORY_EVENT__INIT, broken = DTPB__HISTORY_EVENT__INIT;
    Dtpb__EventRaisedEvent raised_ok = DTPB__EVENT_RAISED_EVENT__INIT;
    Dtpb__EventRaisedEvent raised_bad = DTPB__EVENT_RAISED_EVENT__INIT;
    raised_ok.name = "fine";
    raised_bad.name = bad;
    ok.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    ok.eventraised = &raised_ok;
    broken.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED;
    broken.eventraised = &raised_bad;
    Dtpb__HistoryEvent *carry[2] = { &ok, &broken };
    co.carryoverevents = carry;
    co.n_carryoverevents = 2;
    expect_error(svc_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "completeOrchestration.carryoverEvents[1]: EventRaised.name is not valid UTF-8");

    /* an entity event is read like any other (the hub carries over only raised events) */
    Dtpb__EntityLockGrantedEvent granted = DTPB__ENTITY_LOCK_GRANTED_EVENT__INIT;
    broken.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED;
    broken.entitylockgranted = &granted;
    assert_ok(svc_action_from_msg(arena, &m, &out, &err), &err);
    assert_int_equal(out.n_carryover, 2);
    assert_int_equal(out.carryover[1].type, DT_EVENT_ENTITY_LOCK_GRANTED);
    dt_arena_free(arena);
}

/* ---- states ------------------------------------------------------------------------------ */

static dt_instance_state full_state(void)
{
    dt_instance_state s;
    memset(&s, 0, sizeof s);
    s.instance_id = "order-42";
    s.execution_id = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    s.name = "ProcessOrder";
    s.version = "1.2";
    s.status = DT_STATUS_FAILED;
    s.input = "{\"id\":42}";
    s.output = "null";
    s.custom_status = "\"step 3\"";
    s.failure = &outer_failure;
    s.created_at = INT64_C(1764084170000001);
    s.last_updated_at = INT64_C(1764084180000002);
    s.completed_at = INT64_C(1764084180000003);
    s.scheduled_start = INT64_C(1764084175000000);
    s.parent_instance_id = "parent-7";
    return s;
}

static void state_roundtrip(const dt_instance_state *in, bool with_payloads,
                            const dt_instance_state *want)
{
    dt_arena *a = dt_arena_new(), *b = dt_arena_new();
    assert_non_null(a);
    assert_non_null(b);
    Dtpb__OrchestrationState *m = NULL, *back = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    dt_error err;
    assert_ok(svc_state_to_msg(a, in, with_payloads, &m), NULL);
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    assert_ok(pb_unpack(b, &dtpb__orchestration_state__descriptor, bytes, len, (void **)&back,
                        &err), &err);
    dt_arena_free(a);
    dt_instance_state out;
    assert_ok(svc_state_from_msg(b, back, &out, &err), &err);
    assert_same_state(want, &out);
    dt_arena_free(b);
}

static void test_state_round_trips_with_and_without_payloads(void **state)
{
    (void)state;
    dt_instance_state s = full_state();
    state_roundtrip(&s, true, &s);

    dt_instance_state lean = s;                /* payloads left out, failure kept */
    lean.input = lean.output = lean.custom_status = NULL;
    state_roundtrip(&s, false, &lean);

    dt_instance_state pending;                 /* the least a state can be */
    memset(&pending, 0, sizeof pending);
    pending.instance_id = "p";
    pending.name = "N";
    pending.status = DT_STATUS_PENDING;
    state_roundtrip(&pending, true, &pending);
}

static void test_state_bytes_follow_the_protocol_field_numbers(void **state)
{
    (void)state;
    /* the numbers easiest to get wrong: executionId 12, completedTimestamp 13,
     * parentInstanceId 14, and status 4 / createdTimestamp 6 / lastUpdatedTimestamp 7 */
    dt_instance_state s;
    memset(&s, 0, sizeof s);
    s.status = DT_STATUS_COMPLETED;
    s.created_at = INT64_C(1000000);
    s.last_updated_at = INT64_C(2000000);
    s.completed_at = INT64_C(3000000);
    s.execution_id = "e";
    s.parent_instance_id = "p";
    s.output = "9";

    wire want = { .n = 0 };
    w_int(&want, 4, 1);
    w_ts(&want, 6, 1, 0);
    w_ts(&want, 7, 2, 0);
    w_sv(&want, 9, "9");
    w_sv(&want, 12, "e");
    w_ts(&want, 13, 3, 0);
    w_sv(&want, 14, "p");

    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    Dtpb__OrchestrationState *m = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(svc_state_to_msg(arena, &s, true, &m), NULL);
    assert_ok(pb_pack(arena, &m->base, &bytes, &len), NULL);
    expect_bytes(bytes, len, &want, "OrchestrationState");

    s.status = (dt_runtime_status)99;
    assert_int_equal(svc_state_to_msg(arena, &s, true, &m), DT_ERR_INVALID_ARG);
    dt_arena_free(arena);
}

static void test_state_from_the_wire_checks_utf8_and_status(void **state)
{
    (void)state;
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_error err;
    dt_instance_state out;
    Dtpb__OrchestrationState m = DTPB__ORCHESTRATION_STATE__INIT;
    Dtpb__StringValue sv = DTPB__STRING_VALUE__INIT;
    char bad[] = "\xed\xa0\x80";               /* a surrogate */
    sv.value = bad;
    m.customstatus = &sv;
    expect_error(svc_state_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "OrchestrationState.customStatus is not valid UTF-8");
    m.customstatus = NULL;
    m.orchestrationstatus = (Dtpb__OrchestrationStatus)12;
    expect_error(svc_state_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "OrchestrationState.orchestrationStatus 12");
    dt_arena_free(arena);
}

/* ---- work items -------------------------------------------------------------------------- */

/* session_request: an OrchestratorRequest of 3 past events marked as a session's (past
 * INCLUDED or not), packed and read back as the remote worker reads it */
static dt_orch_request session_request(dt_arena *a, bool included, bool drop_count)
{
    dt_event ev[4];
    dt_event_init(&ev[0], DT_EVENT_EXECUTION_STARTED, 1);
    ev[0].name = "o";
    dt_event_init(&ev[1], DT_EVENT_TASK_SCHEDULED, 1);
    ev[1].event_id = 0;
    ev[1].name = "a";
    dt_event_init(&ev[2], DT_EVENT_ORCHESTRATOR_STARTED, 2);
    dt_event_init(&ev[3], DT_EVENT_TASK_COMPLETED, 2);
    ev[3].task_id = 0;
    dt_orch_request req = {"i9", "x9", ev, 3, &ev[3], 1, NULL, 0, 0};
    Dtpb__OrchestratorRequest *m = NULL;
    assert_ok(svc_orchestrator_request(a, &req, &m), NULL);
    assert_ok(svc_orchestrator_request_session(a, m, 3, included, 600), NULL);
    if (drop_count)
        m->n_properties = 3;   /* the Durable Task Framework's keys alone */
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    Dtpb__OrchestratorRequest *got = NULL;
    assert_ok(pb_unpack(a, &dtpb__orchestrator_request__descriptor, bytes, len, (void **)&got,
                        NULL), NULL);
    assert_int_equal(got->n_properties, drop_count ? 3 : 4);
    assert_int_equal(got->n_pastevents, included ? 3 : 0);
    dt_orch_request back;
    dt_error err;
    assert_ok(svc_orchestrator_request_from_msg(a, got, &back, &err), &err);
    return back;
}

/* Extended sessions: the properties say whether the past came and how much of it there is */
static void test_orchestrator_request_says_when_its_past_was_left_out(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_orch_request r = session_request(a, true, false);
    assert_int_equal(r.n_past, 3);
    assert_int_equal(r.past_left_out, 0);
    r = session_request(a, false, false);
    assert_int_equal(r.n_past, 0);
    assert_int_equal(r.n_new, 1);
    assert_int_equal(r.past_left_out, 3);
    r = session_request(a, false, true);   /* left out without saying how many */
    assert_int_equal(r.past_left_out, DT_PAST_COUNT_UNKNOWN);
    dt_arena_free(a);
}

static void test_orchestrator_request_carries_ids_and_both_histories(void **state)
{
    (void)state;
    dt_event past[3], fresh[2];
    dt_event_init(&past[0], DT_EVENT_ORCHESTRATOR_STARTED, INT64_C(1764084170000000));
    dt_event_init(&past[1], DT_EVENT_EXECUTION_STARTED, INT64_C(1764084170000000));
    past[1].name = "Hello";
    past[1].input = "\"world\"";
    past[1].instance_id = "i1";
    past[1].execution_id = "x1";
    dt_event_init(&past[2], DT_EVENT_TASK_SCHEDULED, INT64_C(1764084170000500));
    past[2].event_id = 0;
    past[2].name = "SayHello";
    dt_event_init(&fresh[0], DT_EVENT_ORCHESTRATOR_STARTED, INT64_C(1764084171000000));
    dt_event_init(&fresh[1], DT_EVENT_TASK_COMPLETED, INT64_C(1764084171000000));
    fresh[1].task_id = 0;
    fresh[1].result = "\"Hello, world\"";

    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    Dtpb__WorkItem wi = DTPB__WORK_ITEM__INIT;
    wi.request_case = DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST;
    wi.completiontoken = "tok-1";
    dt_orch_request req = {"i1", "x1", past, 3, fresh, 2, "b7ad6b7169203331",
                           INT64_C(1764084199000000), 0};
    assert_ok(svc_orchestrator_request(a, &req, &wi.orchestratorrequest), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &wi.base, &bytes, &len), NULL);

    /* the peer's view: protobuf-c's own allocator, freed before we look at the result */
    Dtpb__WorkItem *got = dtpb__work_item__unpack(NULL, len, bytes);
    assert_non_null(got);
    assert_int_equal(got->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    assert_string_equal(got->completiontoken, "tok-1");
    const Dtpb__OrchestratorRequest *r = got->orchestratorrequest;
    assert_string_equal(r->instanceid, "i1");
    assert_non_null(r->executionid);
    assert_string_equal(r->executionid->value, "x1");
    assert_false(r->requireshistorystreaming);
    assert_int_equal(r->n_pastevents, 3);
    assert_int_equal(r->n_newevents, 2);
    /* and as the remote worker reads it back */
    dt_arena *b = dt_arena_new();
    assert_non_null(b);
    dt_orch_request back;
    dt_error err;
    assert_ok(svc_orchestrator_request_from_msg(b, r, &back, &err), &err);
    /* entityParameters = 5 is always there (the .NET SDK reads it), its reorder window zero */
    assert_non_null(r->entityparameters);
    assert_non_null(r->entityparameters->entitymessagereorderwindow);
    dtpb__work_item__free_unpacked(got, NULL);
    assert_string_equal(back.instance_id, "i1");
    assert_string_equal(back.execution_id, "x1");
    assert_int_equal(back.n_past, 3);
    assert_int_equal(back.n_new, 2);
    assert_string_equal(back.span_id, "b7ad6b7169203331");   /* orchestrationTraceContext */
    assert_int_equal(back.span_start, INT64_C(1764084199000000));
    for (size_t i = 0; i < 3; i++)
        assert_same_event(&past[i], &back.past[i]);
    for (size_t i = 0; i < 2; i++)
        assert_same_event(&fresh[i], &back.new_events[i]);
    assert_string_equal(dt_orch_request_started(&back)->name, "Hello");

    /* no history yet, no execution id: both lists empty, executionId absent */
    Dtpb__OrchestratorRequest *empty = NULL;
    dt_orch_request none = {"i2", NULL, NULL, 0, NULL, 0, NULL, 0, 0};
    assert_ok(svc_orchestrator_request(a, &none, &empty), NULL);
    assert_null(empty->executionid);
    assert_int_equal(empty->n_pastevents, 0);
    assert_ok(pb_pack(a, &empty->base, &bytes, &len), NULL);
    wire want = { .n = 0 }, params = { .n = 0 }, window = { .n = 0 };
    w_str(&want, 1, "i2");
    w_msg(&params, 1, &window);
    w_msg(&want, 5, &params);
    expect_bytes(bytes, len, &want, "an empty OrchestratorRequest");

    /* an event that cannot be written fails the whole request */
    past[2].type = DT_EVENT_NONE;
    assert_int_equal(svc_orchestrator_request(a, &req, &empty), DT_ERR_INVALID_ARG);
    dt_arena_free(a);
    dt_arena_free(b);
}

static void test_activity_request_follows_the_protocol(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    Dtpb__ActivityRequest *m = NULL;
    dt_activity_request req = {"i1", "x1", 4, "SayHello", NULL, "\"Tokyo\"", NULL, NULL, NULL};
    assert_ok(svc_activity_request(a, &req, &m), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    /* name 1, input 3, orchestrationInstance 4 {instanceId 1, executionId 2}, taskId 5 */
    wire want = { .n = 0 }, in = { .n = 0 }, inst = { .n = 0 }, ex = { .n = 0 };
    w_str(&want, 1, "SayHello");
    w_str(&in, 1, "\"Tokyo\"");
    w_msg(&want, 3, &in);
    w_str(&inst, 1, "i1");
    w_str(&ex, 1, "x1");
    w_msg(&inst, 2, &ex);
    w_msg(&want, 4, &inst);
    w_int(&want, 5, 4);
    expect_bytes(bytes, len, &want, "ActivityRequest");

    /* with the caller's trace context (6) and tags (7), as the worker reads them back */
    req.trace_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    req.trace_state = "k=v";
    req.tags = "{\"a\":\"1\",\"b\":\"\"}";
    assert_ok(svc_activity_request(a, &req, &m), NULL);
    assert_string_equal(m->parenttracecontext->traceparent, req.trace_parent);
    assert_int_equal(m->n_tags, 2);
    dt_activity_request back;
    dt_error err;
    assert_ok(svc_activity_request_from_msg(a, m, &back, &err), &err);
    assert_string_equal(back.trace_parent, req.trace_parent);
    assert_string_equal(back.trace_state, "k=v");
    assert_string_equal(back.tags, req.tags);
    /* tags that are not an object of strings cannot be written */
    req.tags = "{\"a\":1}";
    assert_int_equal(svc_activity_request(a, &req, &m), DT_ERR_INVALID_ARG);
    dt_arena_free(a);
}

static void test_orchestrator_response_becomes_an_episode_result(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_action acts[2];
    memset(acts, 0, sizeof acts);
    acts[0].type = DT_ACTION_SCHEDULE_TASK;
    acts[0].id = 0;
    acts[0].name = "SayHello";
    acts[0].input = "\"Tokyo\"";
    acts[0].trace_parent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
    acts[0].tags = "{\"step\":\"greet\"}";
    acts[1].type = DT_ACTION_CREATE_TIMER;
    acts[1].id = 1;
    acts[1].fire_at = INT64_C(1764084199000000);

    /* built as the remote worker builds it */
    dt_orch_result res = {acts, 2, "\"halfway\"", "00f067aa0ba902b7", INT64_C(1764084199000000)};
    Dtpb__OrchestratorResponse *r = NULL;
    assert_ok(svc_orchestrator_response(a, "i1", "tok-9", &res, &r), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &r->base, &bytes, &len), NULL);

    dt_arena *b = dt_arena_new();
    assert_non_null(b);
    dt_error err;
    Dtpb__OrchestratorResponse *got = NULL;
    assert_ok(pb_unpack(b, &dtpb__orchestrator_response__descriptor, bytes, len, (void **)&got,
                        &err), &err);
    svc_orch_completion c;
    assert_ok(svc_orchestrator_response_from_msg(b, got, &c, &err), &err);
    assert_string_equal(c.instance_id, "i1");
    assert_string_equal(c.completion_token, "tok-9");
    assert_string_equal(c.result.custom_status, "\"halfway\"");
    assert_string_equal(c.result.span_id, "00f067aa0ba902b7");
    assert_int_equal(c.result.span_start, INT64_C(1764084199000000));
    assert_int_equal(c.n_events_processed, -1);
    assert_false(c.requires_history);
    assert_int_equal(c.result.n_actions, 2);
    assert_same_action(&acts[0], &c.result.actions[0]);
    assert_same_action(&acts[1], &c.result.actions[1]);

    Dtpb__Int32Value count = DTPB__INT32_VALUE__INIT;
    count.value = 3;
    got->numeventsprocessed = &count;
    assert_ok(svc_orchestrator_response_from_msg(b, got, &c, &err), &err);
    assert_int_equal(c.n_events_processed, 3);
    count.value = -1;
    expect_error(svc_orchestrator_response_from_msg(b, got, &c, &err), &err, DT_ERR_INVALID_ARG,
                 "numEventsProcessed -1");
    got->numeventsprocessed = NULL;

    /* a refused action names its place in the list */
    Dtpb__SendEntityMessageAction entity = DTPB__SEND_ENTITY_MESSAGE_ACTION__INIT;
    got->actions[1]->orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_ENTITY_MESSAGE;
    got->actions[1]->sendentitymessage = &entity;
    expect_error(svc_orchestrator_response_from_msg(b, got, &c, &err), &err,
                 DT_ERR_INVALID_ARG,
                 "OrchestratorResponse.actions[1] (id 1): sendEntityMessage has no message set");

    /* not chunked: no chunkIndex, isPartial false */
    got->n_actions = 1;
    assert_ok(svc_orchestrator_response_from_msg(b, got, &c, &err), &err);
    assert_int_equal(c.chunk_index, -1);
    assert_false(c.partial);
    /* chunks, as the .NET SDK sends them: isPartial = 8, chunkIndex = 9 on the wire */
    wire w = { .n = 0 }, idx = { .n = 0 };
    w_str(&w, 1, "i1");
    w_int(&w, 8, 1);
    w_int(&idx, 1, 2);
    w_msg(&w, 9, &idx);
    Dtpb__OrchestratorResponse *partial = NULL;
    assert_ok(pb_unpack(b, &dtpb__orchestrator_response__descriptor, w.b, w.n,
                        (void **)&partial, &err), &err);
    assert_ok(svc_orchestrator_response_from_msg(b, partial, &c, &err), &err);
    assert_int_equal(c.chunk_index, 2);
    assert_true(c.partial);
    w.n = idx.n = 0;                           /* the last chunk: chunkIndex, not partial */
    w_str(&w, 1, "i1");
    w_int(&idx, 1, 3);
    w_msg(&w, 9, &idx);
    assert_ok(pb_unpack(b, &dtpb__orchestrator_response__descriptor, w.b, w.n,
                        (void **)&partial, &err), &err);
    assert_ok(svc_orchestrator_response_from_msg(b, partial, &c, &err), &err);
    assert_int_equal(c.chunk_index, 3);
    assert_false(c.partial);
    w.n = idx.n = 0;
    w_int(&idx, 1, -4);
    w_msg(&w, 9, &idx);
    assert_ok(pb_unpack(b, &dtpb__orchestrator_response__descriptor, w.b, w.n,
                        (void **)&partial, &err), &err);
    expect_error(svc_orchestrator_response_from_msg(b, partial, &c, &err), &err,
                 DT_ERR_INVALID_ARG, "chunkIndex is negative");
    dt_arena_free(a);
    dt_arena_free(b);
}

static void test_activity_response_carries_a_result_or_a_failure(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    svc_activity_completion c;
    Dtpb__ActivityResponse r = DTPB__ACTIVITY_RESPONSE__INIT;
    r.instanceid = "i1";
    r.taskid = 4;
    r.completiontoken = "t";
    r.result = sv(a, "\"Hello, Tokyo\"");
    assert_ok(svc_activity_response_from_msg(a, &r, &c, &err), &err);
    assert_string_equal(c.instance_id, "i1");
    assert_int_equal(c.task_id, 4);
    assert_string_equal(c.completion_token, "t");
    assert_string_equal(c.result, "\"Hello, Tokyo\"");
    assert_null(c.failure);

    r.result = NULL;
    r.failuredetails = failure_msg(a, &outer_failure);
    assert_ok(svc_activity_response_from_msg(a, &r, &c, &err), &err);
    assert_null(c.result);
    assert_same_failure(&outer_failure, c.failure);

    char bad[] = "T\xc0\xafpe";
    r.failuredetails->errortype = bad;
    expect_error(svc_activity_response_from_msg(a, &r, &c, &err), &err, DT_ERR_INVALID_ARG,
                 "ActivityResponse.failureDetails.errorType is not valid UTF-8");
    dt_arena_free(a);
}

/* ---- client requests --------------------------------------------------------------------- */

static void test_create_instance_request_becomes_a_start_request(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    dt_start_request req;
    Dtpb__CreateInstanceRequest m = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    m.name = "Hello";
    assert_ok(svc_start_from_msg(a, &m, &req, &err), &err);
    assert_string_equal(req.name, "Hello");
    assert_null(req.instance_id);              /* "" asks the hub for an id */
    assert_null(req.version);
    assert_null(req.input);
    assert_int_equal(req.start_at, 0);
    assert_int_equal(req.n_replaceable, 0);
    assert_false(req.reuse_policy);            /* no policy: the hub's default */

    Dtpb__OrchestrationIdReusePolicy policy = DTPB__ORCHESTRATION_ID_REUSE_POLICY__INIT;
    Dtpb__OrchestrationStatus statuses[2] = {
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED,
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING };
    policy.replaceablestatus = statuses;
    policy.n_replaceablestatus = 2;
    m.orchestrationidreusepolicy = &policy;
    m.instanceid = "order-1";
    m.input = sv(a, "{\"n\":1}");
    m.scheduledstarttimestamp = ts(a, INT64_C(1764084199500000));
    assert_ok(svc_start_from_msg(a, &m, &req, &err), &err);
    assert_string_equal(req.instance_id, "order-1");
    assert_string_equal(req.input, "{\"n\":1}");
    assert_int_equal(req.start_at, INT64_C(1764084199500000));
    assert_int_equal(req.n_replaceable, 2);
    assert_int_equal(req.replaceable[0], DT_STATUS_FAILED);
    assert_int_equal(req.replaceable[1], DT_STATUS_RUNNING);
    assert_true(req.reuse_policy);
    /* a policy with no statuses is a policy still: replace nothing */
    policy.n_replaceablestatus = 0;
    assert_ok(svc_start_from_msg(a, &m, &req, &err), &err);
    assert_int_equal(req.n_replaceable, 0);
    assert_true(req.reuse_policy);
    policy.n_replaceablestatus = 2;

    statuses[1] = (Dtpb__OrchestrationStatus)9;
    expect_error(svc_start_from_msg(a, &m, &req, &err), &err, DT_ERR_INVALID_ARG,
                 "CreateInstanceRequest.orchestrationIdReusePolicy.replaceableStatus[1] 9");
    statuses[1] = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    m.scheduledstarttimestamp->nanos = -5;
    expect_error(svc_start_from_msg(a, &m, &req, &err), &err, DT_ERR_INVALID_ARG,
                 "CreateInstanceRequest.scheduledStartTimestamp is not a valid timestamp");
    dt_arena_free(a);
}

static void test_queries_and_purge_filters_become_dt_queries(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    dt_query q;

    assert_ok(svc_query_from_msg(a, NULL, &q, &err), &err);
    assert_int_equal(q.n_statuses, 0);
    assert_int_equal(q.page_size, 0);
    assert_null(q.continuation);

    Dtpb__InstanceQuery m = DTPB__INSTANCE_QUERY__INIT;
    Dtpb__OrchestrationStatus st[2] = {
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED,
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED };
    m.runtimestatus = st;
    m.n_runtimestatus = 2;
    m.createdtimefrom = ts(a, INT64_C(1764000000000000));
    m.createdtimeto = ts(a, INT64_C(1765000000000000));
    m.maxinstancecount = 50;
    m.continuationtoken = sv(a, "order-41");
    m.instanceidprefix = sv(a, "order-");
    m.fetchinputsandoutputs = true;
    assert_ok(svc_query_from_msg(a, &m, &q, &err), &err);
    assert_int_equal(q.n_statuses, 2);
    assert_int_equal(q.statuses[0], DT_STATUS_COMPLETED);
    assert_int_equal(q.statuses[1], DT_STATUS_SUSPENDED);
    assert_int_equal(q.created_from, INT64_C(1764000000000000));
    assert_int_equal(q.created_to, INT64_C(1765000000000000));
    assert_int_equal(q.page_size, 50);
    assert_string_equal(q.continuation, "order-41");
    assert_string_equal(q.id_prefix, "order-");
    assert_null(q.name);
    assert_true(q.with_payloads);

    m.maxinstancecount = 5000;                 /* more than a page holds: one full page */
    m.continuationtoken->value = "";           /* an empty token is the first page */
    assert_ok(svc_query_from_msg(a, &m, &q, &err), &err);
    assert_int_equal(q.page_size, DT_QUERY_PAGE_MAX);
    assert_null(q.continuation);
    m.maxinstancecount = -1;
    expect_error(svc_query_from_msg(a, &m, &q, &err), &err, DT_ERR_INVALID_ARG,
                 "maxInstanceCount -1");
    m.maxinstancecount = 0;
    st[0] = (Dtpb__OrchestrationStatus)-3;
    expect_error(svc_query_from_msg(a, &m, &q, &err), &err, DT_ERR_INVALID_ARG,
                 "InstanceQuery.runtimeStatus[0] -3");

    Dtpb__PurgeInstanceFilter f = DTPB__PURGE_INSTANCE_FILTER__INIT;
    st[0] = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    f.runtimestatus = st;
    f.n_runtimestatus = 1;
    f.createdtimeto = m.createdtimeto;
    assert_ok(svc_purge_filter_from_msg(a, &f, &q, &err), &err);
    assert_int_equal(q.n_statuses, 1);
    assert_int_equal(q.statuses[0], DT_STATUS_FAILED);
    assert_int_equal(q.created_from, 0);
    assert_int_equal(q.created_to, INT64_C(1765000000000000));
    dt_arena_free(a);
}

static void test_query_response_and_history_chunk_pack(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new(), *b = dt_arena_new();
    assert_non_null(a);
    assert_non_null(b);
    dt_error err;
    dt_instance_state states[2] = { full_state(), full_state() };
    states[1].instance_id = "order-43";
    states[1].failure = NULL;
    states[1].status = DT_STATUS_RUNNING;
    Dtpb__QueryInstancesResponse *qr = NULL;
    assert_ok(svc_query_response(a, states, 2, "order-43", false, &qr), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &qr->base, &bytes, &len), NULL);
    Dtpb__QueryInstancesResponse *got = NULL;
    assert_ok(pb_unpack(b, &dtpb__query_instances_response__descriptor, bytes, len,
                        (void **)&got, &err), &err);
    assert_int_equal(got->n_orchestrationstate, 2);
    assert_string_equal(got->continuationtoken->value, "order-43");
    dt_instance_state back;
    assert_ok(svc_state_from_msg(b, got->orchestrationstate[1], &back, &err), &err);
    assert_string_equal(back.instance_id, "order-43");
    assert_null(back.input);                   /* not asked for */

    assert_ok(svc_query_response(a, NULL, 0, NULL, true, &qr), NULL);
    assert_null(qr->continuationtoken);        /* the last page */

    dt_event ev[2];
    dt_event_init(&ev[0], DT_EVENT_EXECUTION_STARTED, INT64_C(1764084170000000));
    ev[0].name = "Hello";
    dt_event_init(&ev[1], DT_EVENT_EXECUTION_COMPLETED, INT64_C(1764084171000000));
    ev[1].status = DT_STATUS_COMPLETED;
    ev[1].result = "1";
    Dtpb__HistoryChunk *chunk = NULL;
    assert_ok(svc_history_chunk(a, ev, 2, &chunk), NULL);
    assert_ok(pb_pack(a, &chunk->base, &bytes, &len), NULL);
    Dtpb__HistoryChunk *back_chunk = NULL;
    assert_ok(pb_unpack(b, &dtpb__history_chunk__descriptor, bytes, len, (void **)&back_chunk,
                        &err), &err);
    assert_int_equal(back_chunk->n_events, 2);
    for (int i = 0; i < 2; i++) {
        dt_event e;
        pb_reader rd = PB_READER(b, &err, NULL);
        pb_r_event(&rd, back_chunk->events[i], &e);
        assert_ok(rd.status, &err);
        assert_same_event(&ev[i], &e);
    }
    dt_arena_free(a);
    dt_arena_free(b);
}

/* ---- what the remote worker sends, and the stream's filters --------------------------------- */

static void test_activity_response_round_trips_as_the_worker_sends_it(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    dt_activity_request req = {"i1", "x1", 4, "SayHello", NULL, NULL, NULL, NULL, NULL};
    Dtpb__ActivityResponse *m = NULL;
    svc_activity_completion c;
    assert_ok(svc_activity_response(a, &req, "tok", "\"hi\"", NULL, &m), NULL);
    assert_ok(svc_activity_response_from_msg(a, m, &c, &err), &err);
    assert_string_equal(c.instance_id, "i1");
    assert_int_equal(c.task_id, 4);
    assert_string_equal(c.completion_token, "tok");
    assert_string_equal(c.result, "\"hi\"");
    assert_null(c.failure);
    /* a failure goes instead of the result, never beside it */
    assert_ok(svc_activity_response(a, &req, "tok", "\"ignored\"", &outer_failure, &m), NULL);
    assert_null(m->result);
    assert_ok(svc_activity_response_from_msg(a, m, &c, &err), &err);
    assert_null(c.result);
    assert_same_failure(&outer_failure, c.failure);

    /* an ActivityRequest as the worker reads it: "" input is none */
    Dtpb__ActivityRequest *rq = NULL;
    dt_activity_request back;
    req.input = "";
    assert_ok(svc_activity_request(a, &req, &rq), NULL);
    assert_ok(svc_activity_request_from_msg(a, rq, &back, &err), &err);
    assert_null(back.input);
    assert_string_equal(back.name, "SayHello");
    assert_string_equal(back.execution_id, "x1");
    assert_int_equal(back.task_id, 4);
    dt_arena_free(a);
}

static void test_work_item_filters_round_trip_and_none_means_any(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    const char *on[] = {"Hello", "Order"}, *an[] = {"SayHello"}, *v[] = {"1.0", "1.1"};
    const dt_version_list ov[] = {{NULL, 0}, {v, 2}};
    dt_name_filter o = {on, 2, ov}, t = {an, 1, NULL}, bo, bt;
    Dtpb__WorkItemFilters *m = NULL;
    assert_ok(svc_work_filters(a, &o, &t, &m), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    Dtpb__WorkItemFilters *got = NULL;
    assert_ok(pb_unpack(a, &dtpb__work_item_filters__descriptor, bytes, len, (void **)&got, &err),
              &err);
    bool has = false;
    assert_ok(svc_work_filters_from_msg(a, got, &bo, &bt, &has, &err), &err);
    assert_true(has);
    assert_int_equal(bo.n, 2);
    assert_string_equal(bo.names[1], "Order");
    assert_int_equal(bo.versions[0].n, 0);      /* Hello: any version */
    assert_int_equal(bo.versions[1].n, 2);
    assert_string_equal(bo.versions[1].v[1], "1.1");
    assert_int_equal(bt.n, 1);
    assert_string_equal(bt.names[0], "SayHello");
    /* what a filter takes: the name, then (if it lists any) the version; none is "" */
    assert_true(dt_name_filter_match(&bo, "Hello", "9.9"));
    assert_true(dt_name_filter_match(&bo, "Order", "1.0"));
    assert_false(dt_name_filter_match(&bo, "Order", "2.0"));
    assert_false(dt_name_filter_match(&bo, "Order", NULL));
    assert_false(dt_name_filter_match(&bo, "Other", NULL));
    assert_true(dt_name_filter_match(NULL, "Other", "2.0"));
    /* filters sent with no names take nothing; no filters at all take anything */
    dt_name_filter none = {NULL, 0, NULL};
    assert_ok(svc_work_filters(a, &none, &none, &m), NULL);
    assert_ok(svc_work_filters_from_msg(a, m, &bo, &bt, &has, &err), &err);
    assert_true(has);
    assert_int_equal(bo.n, 0);
    assert_non_null(bo.names);
    assert_ok(svc_work_filters_from_msg(a, NULL, &bo, &bt, &has, &err), &err);
    assert_false(has);
    dt_arena_free(a);
}

static void test_list_instance_ids_request_becomes_a_query(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    dt_query q;
    Dtpb__ListInstanceIdsRequest m = DTPB__LIST_INSTANCE_IDS_REQUEST__INIT;
    /* more statuses than there are kinds of them: every one is read and checked */
    Dtpb__OrchestrationStatus st[9] = {0, 1, 2, 3, 4, 5, 6, 7, 1};
    m.runtimestatus = st;
    m.n_runtimestatus = 9;
    m.completedtimefrom = ts(a, INT64_C(1764000000000000));
    m.pagesize = 5000;
    m.lastinstancekey = sv(a, "");
    assert_ok(svc_list_ids_from_msg(a, &m, &q, &err), &err);
    assert_int_equal(q.n_statuses, 9);
    assert_int_equal(q.statuses[8], DT_STATUS_COMPLETED);
    assert_int_equal(q.completed_from, INT64_C(1764000000000000));
    assert_int_equal(q.page_size, DT_QUERY_PAGE_MAX);
    assert_null(q.continuation);               /* "" is the first page */
    st[8] = 9;
    expect_error(svc_list_ids_from_msg(a, &m, &q, &err), &err, DT_ERR_INVALID_ARG,
                 "runtimeStatus[8] 9 is not a known status");
    st[8] = 1;
    m.pagesize = -1;
    expect_error(svc_list_ids_from_msg(a, &m, &q, &err), &err, DT_ERR_INVALID_ARG,
                 "pageSize -1 is negative");

    dt_instance_state states[2] = {{.instance_id = "a"}, {.instance_id = "b"}};
    Dtpb__ListInstanceIdsResponse *r = NULL;
    assert_ok(svc_list_ids_response(a, states, 2, "b", &r), NULL);
    assert_int_equal(r->n_instanceids, 2);
    assert_string_equal(r->instanceids[1], "b");
    assert_string_equal(r->lastinstancekey->value, "b");
    assert_ok(svc_list_ids_response(a, NULL, 0, NULL, &r), NULL);
    assert_null(r->lastinstancekey);
    dt_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_action_round_trips_through_bytes),
        cmocka_unit_test(test_continue_as_new_carries_events_and_version),
        cmocka_unit_test(test_schedule_task_bytes_follow_the_protocol),
        cmocka_unit_test(test_entity_actions_are_read_and_a_rewind_needs_a_history),
        cmocka_unit_test(test_actions_missing_what_they_need_are_refused),
        cmocka_unit_test(test_a_timer_at_the_epoch_is_due_at_once_and_builds_again),
        cmocka_unit_test(test_invalid_utf8_in_an_action_is_refused_naming_the_field),
        cmocka_unit_test(test_state_round_trips_with_and_without_payloads),
        cmocka_unit_test(test_state_bytes_follow_the_protocol_field_numbers),
        cmocka_unit_test(test_state_from_the_wire_checks_utf8_and_status),
        cmocka_unit_test(test_orchestrator_request_carries_ids_and_both_histories),
        cmocka_unit_test(test_orchestrator_request_says_when_its_past_was_left_out),
        cmocka_unit_test(test_activity_request_follows_the_protocol),
        cmocka_unit_test(test_orchestrator_response_becomes_an_episode_result),
        cmocka_unit_test(test_activity_response_carries_a_result_or_a_failure),
        cmocka_unit_test(test_create_instance_request_becomes_a_start_request),
        cmocka_unit_test(test_queries_and_purge_filters_become_dt_queries),
        cmocka_unit_test(test_query_response_and_history_chunk_pack),
        cmocka_unit_test(test_activity_response_round_trips_as_the_worker_sends_it),
        cmocka_unit_test(test_work_item_filters_round_trip_and_none_means_any),
        cmocka_unit_test(test_list_instance_ids_request_becomes_a_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
