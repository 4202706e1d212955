/* test_pb_convert.c — the TaskHubSidecarService messages to and from dt_* records
 * (src/codec/pb.h): actions, states, work items and queries round-trip through real bytes;
 * the bytes follow the protocol's field numbers (checked against bytes built by hand);
 * strings from the wire that are not UTF-8 are refused naming the field; entity and rewind
 * actions are UNIMPLEMENTED; and pb_unpack refuses nesting deep enough to exhaust
 * protobuf-c's stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "codec/pb.h"
#include "durabletask/codec.h"

/* ---- comparing records ------------------------------------------------------------------- */

static void assert_same_str(const char *want, const char *got, const char *field)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL)
        fail_msg("%s: want %s, got %s", field, want ? want : "NULL", got ? got : "NULL");
    if (strcmp(want, got) != 0)
        fail_msg("%s: want \"%s\", got \"%s\"", field, want, got);
}

static void assert_same_failure(const dt_failure *want, const dt_failure *got)
{
    while (want || got) {
        if (want == NULL || got == NULL)
            fail_msg("failure: want %s, got %s", want ? "one" : "none", got ? "one" : "none");
        assert_same_str(want->error_type, got->error_type, "failure.error_type");
        assert_same_str(want->message, got->message, "failure.message");
        assert_same_str(want->stack_trace, got->stack_trace, "failure.stack_trace");
        assert_int_equal(want->non_retriable, got->non_retriable);
        want = want->inner;
        got = got->inner;
    }
}

static void assert_same_event(const dt_event *want, const dt_event *got)
{
    assert_int_equal(want->type, got->type);
    assert_int_equal(want->event_id, got->event_id);
    assert_int_equal(want->timestamp, got->timestamp);
    assert_same_str(want->name, got->name, "event.name");
    assert_same_str(want->version, got->version, "event.version");
    assert_same_str(want->input, got->input, "event.input");
    assert_same_str(want->result, got->result, "event.result");
    assert_same_str(want->instance_id, got->instance_id, "event.instance_id");
    assert_same_str(want->execution_id, got->execution_id, "event.execution_id");
    assert_int_equal(want->task_id, got->task_id);
    assert_int_equal(want->fire_at, got->fire_at);
    assert_int_equal(want->status, got->status);
    assert_same_failure(want->failure, got->failure);
}

static void assert_same_action(const dt_action *want, const dt_action *got)
{
    assert_int_equal(want->type, got->type);
    assert_int_equal(want->id, got->id);
    assert_same_str(want->name, got->name, "action.name");
    assert_same_str(want->version, got->version, "action.version");
    assert_same_str(want->input, got->input, "action.input");
    assert_same_str(want->instance_id, got->instance_id, "action.instance_id");
    assert_int_equal(want->fire_at, got->fire_at);
    assert_int_equal(want->status, got->status);
    assert_same_str(want->result, got->result, "action.result");
    assert_same_failure(want->failure, got->failure);
    assert_int_equal(want->recurse, got->recurse);
    assert_int_equal(want->n_carryover, got->n_carryover);
    for (size_t i = 0; i < want->n_carryover; i++)
        assert_same_event(&want->carryover[i], &got->carryover[i]);
}

static void assert_same_state(const dt_instance_state *want, const dt_instance_state *got)
{
    assert_same_str(want->instance_id, got->instance_id, "state.instance_id");
    assert_same_str(want->execution_id, got->execution_id, "state.execution_id");
    assert_same_str(want->name, got->name, "state.name");
    assert_same_str(want->version, got->version, "state.version");
    assert_int_equal(want->status, got->status);
    assert_same_str(want->input, got->input, "state.input");
    assert_same_str(want->output, got->output, "state.output");
    assert_same_str(want->custom_status, got->custom_status, "state.custom_status");
    assert_same_failure(want->failure, got->failure);
    assert_int_equal(want->created_at, got->created_at);
    assert_int_equal(want->last_updated_at, got->last_updated_at);
    assert_int_equal(want->completed_at, got->completed_at);
    assert_int_equal(want->scheduled_start, got->scheduled_start);
    assert_same_str(want->parent_instance_id, got->parent_instance_id, "state.parent_instance_id");
}

/* expect_error: ST is CODE and ERR's message mentions NEEDLE. */
static void expect_error(dt_status st, const dt_error *err, dt_status code, const char *needle)
{
    if (st != code)
        fail_msg("want %s, got %s: %s", dt_strerror(code), dt_strerror(st), err->message);
    assert_int_equal(err->code, code);
    if (needle && strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

/* ---- a tiny protobuf writer, independent of protobuf-c, for hand-built protocol bytes ---- */

typedef struct wire {
    uint8_t b[4096];
    size_t n;
} wire;

static void w_varint(wire *w, uint64_t v)
{
    while (v >= 0x80) {
        w->b[w->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->b[w->n++] = (uint8_t)v;
}

static void w_int(wire *w, unsigned field, int64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, (uint64_t)v);
}

static void w_bytes(wire *w, unsigned field, const void *p, size_t n)
{
    assert_true(w->n + n + 16 < sizeof w->b);
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void w_str(wire *w, unsigned field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

static void w_msg(wire *w, unsigned field, const wire *sub)
{
    w_bytes(w, field, sub->b, sub->n);
}

/* w_sv: a StringValue holding S (not empty). */
static void w_sv(wire *w, unsigned field, const char *s)
{
    wire v = { .n = 0 };
    w_str(&v, 1, s);
    w_msg(w, field, &v);
}

/* w_seconds: a Timestamp of whole SECONDS (not 0). */
static void w_seconds(wire *w, unsigned field, int64_t seconds)
{
    wire t = { .n = 0 };
    w_int(&t, 1, seconds);
    w_msg(w, field, &t);
}

static void expect_bytes(const uint8_t *got, size_t n, const wire *want, const char *what)
{
    if (n != want->n || memcmp(got, want->b, n) != 0) {
        fprintf(stderr, "got (%zu):", n);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %02x", got[i]);
        fprintf(stderr, "\nwant (%zu):", want->n);
        for (size_t i = 0; i < want->n; i++)
            fprintf(stderr, " %02x", want->b[i]);
        fprintf(stderr, "\n");
        fail_msg("%s does not pack to the protocol's bytes", what);
    }
}

/* ---- helpers ----------------------------------------------------------------------------- */

/* action_roundtrip: IN to a message, to bytes, through pb_unpack, and back; expect IN. The
 * result lives in ARENA B, which shares nothing with arena A that built the message. */
static void action_roundtrip(const dt_action *in)
{
    dt_arena *a = dt_arena_new(), *b = dt_arena_new();
    assert_non_null(a);
    assert_non_null(b);
    dt_error err;
    Dtpb__OrchestratorAction *m = NULL;
    assert_ok(pb_action_to_msg(a, in, &m), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    Dtpb__OrchestratorAction *back = NULL;
    assert_ok(pb_unpack(b, &dtpb__orchestrator_action__descriptor, bytes, len, (void **)&back,
                        &err), &err);
    dt_arena_free(a);                   /* the bytes and the built tree are gone now */
    dt_action out;
    assert_ok(pb_action_from_msg(b, back, &out, &err), &err);
    assert_same_action(in, &out);
    dt_arena_free(b);
}

/* action_from_bytes: unpack W as an OrchestratorAction and convert it; the status. */
static dt_status action_from_bytes(dt_arena *a, const wire *w, dt_action *out, dt_error *err)
{
    Dtpb__OrchestratorAction *m = NULL;
    dt_status st = pb_unpack(a, &dtpb__orchestrator_action__descriptor, w->b, w->n, (void **)&m,
                             err);
    return st != DT_OK ? st : pb_action_from_msg(a, m, out, err);
}

static dt_failure inner_failure = { "IOError", "disk full", NULL, NULL, true };
static const dt_failure outer_failure = { "TaskFailed", "activity \"Copy\" failed",
                                          "at copy()\nat main()", &inner_failure, false };

/* ---- UTF-8 ------------------------------------------------------------------------------- */

static void test_utf8_validator_accepts_exactly_well_formed_text(void **state)
{
    (void)state;
    assert_true(pb_utf8_valid(NULL));
    assert_true(pb_utf8_valid(""));
    assert_true(pb_utf8_valid("plain ascii {\"json\": 1}"));
    assert_true(pb_utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));   /* é € 😀 */
    assert_true(pb_utf8_valid("\xef\xbf\xbf\xf4\x8f\xbf\xbf"));               /* U+FFFF U+10FFFF */
    assert_true(pb_utf8_valid_n("a\0b", 3));                                    /* NUL is a char */

    assert_false(pb_utf8_valid("\x80"));                     /* continuation with no lead */
    assert_false(pb_utf8_valid("\xc3"));                     /* truncated at the end */
    assert_false(pb_utf8_valid("\xe2\x82x"));                /* truncated mid-string */
    assert_false(pb_utf8_valid("\xc0\x80"));                 /* overlong NUL */
    assert_false(pb_utf8_valid("\xc1\xbf"));                 /* overlong 2-byte */
    assert_false(pb_utf8_valid("\xe0\x80\xaf"));             /* overlong 3-byte '/' */
    assert_false(pb_utf8_valid("\xf0\x82\x82\xac"));         /* overlong 4-byte */
    assert_false(pb_utf8_valid("\xed\xa0\x80"));             /* surrogate U+D800 */
    assert_false(pb_utf8_valid("\xed\xbf\xbf"));             /* surrogate U+DFFF */
    assert_false(pb_utf8_valid("\xf4\x90\x80\x80"));         /* U+110000 */
    assert_false(pb_utf8_valid("\xf8\x88\x80\x80\x80"));     /* 5-byte form */
    assert_false(pb_utf8_valid("\xff"));
    assert_false(pb_utf8_valid_n("\xe2\x82\xac", 2));        /* N cuts a character */
}

/* ---- actions ----------------------------------------------------------------------------- */

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
    assert_ok(pb_action_to_msg(arena, &a, &m), NULL);
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

static void test_entity_and_rewind_actions_are_unimplemented(void **state)
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
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_UNIMPLEMENTED,
                 "sendEntityMessage");

    w.n = 0;
    w_int(&w, 1, 3);
    w_msg(&w, 9, &empty);                      /* rewindOrchestration */
    expect_error(action_from_bytes(arena, &w, &out, &err), &err, DT_ERR_UNIMPLEMENTED,
                 "rewindOrchestration");

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
    expect_error(pb_action_from_msg(arena, &hollow, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "member 4 is set but holds no message");
    Dtpb__HistoryEvent hollow_event = DTPB__HISTORY_EVENT__INIT;
    dt_event e;
    hollow_event.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED;
    expect_error(pb_event_from_msg(arena, &hollow_event, &e, &err), &err, DT_ERR_INVALID_ARG,
                 "member 13 is set but holds no message");

    /* what we cannot write is refused on the way out too */
    dt_action a;
    Dtpb__OrchestratorAction *m = NULL;
    memset(&a, 0, sizeof a);
    a.type = DT_ACTION_CREATE_TIMER;
    assert_int_equal(pb_action_to_msg(arena, &a, &m), DT_ERR_INVALID_ARG);
    a.type = DT_ACTION_COMPLETE_ORCHESTRATION;
    a.status = (dt_runtime_status)8;
    assert_int_equal(pb_action_to_msg(arena, &a, &m), DT_ERR_INVALID_ARG);
    a.type = (dt_action_type)8;
    assert_int_equal(pb_action_to_msg(arena, &a, &m), DT_ERR_INVALID_ARG);
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
    expect_error(pb_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "scheduleTask.name is not valid UTF-8");
    st.name = "SayHello";
    Dtpb__StringValue sv = DTPB__STRING_VALUE__INIT;
    sv.value = bad;
    st.input = &sv;
    expect_error(pb_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "scheduleTask.input is not valid UTF-8");

    Dtpb__SendEventAction se = DTPB__SEND_EVENT_ACTION__INIT;
    Dtpb__OrchestrationInstance inst = DTPB__ORCHESTRATION_INSTANCE__INIT;
    inst.instanceid = bad;
    se.instance = &inst;
    m.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_EVENT;
    m.sendevent = &se;
    expect_error(pb_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
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
    expect_error(pb_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
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
    expect_error(pb_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "completeOrchestration.carryoverEvents[1]: EventRaised.name is not valid UTF-8");

    /* an entity event carried over is not ours to deliver */
    Dtpb__EntityLockGrantedEvent granted = DTPB__ENTITY_LOCK_GRANTED_EVENT__INIT;
    broken.event_type_case = DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED;
    broken.entitylockgranted = &granted;
    expect_error(pb_action_from_msg(arena, &m, &out, &err), &err, DT_ERR_UNIMPLEMENTED,
                 "carryoverEvents[1]: HistoryEvent field 28 (entityLockGranted)");
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
    assert_ok(pb_state_to_msg(a, in, with_payloads, &m), NULL);
    assert_ok(pb_pack(a, &m->base, &bytes, &len), NULL);
    assert_ok(pb_unpack(b, &dtpb__orchestration_state__descriptor, bytes, len, (void **)&back,
                        &err), &err);
    dt_arena_free(a);
    dt_instance_state out;
    assert_ok(pb_state_from_msg(b, back, &out, &err), &err);
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
    w_seconds(&want, 6, 1);
    w_seconds(&want, 7, 2);
    w_sv(&want, 9, "9");
    w_sv(&want, 12, "e");
    w_seconds(&want, 13, 3);
    w_sv(&want, 14, "p");

    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    Dtpb__OrchestrationState *m = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_state_to_msg(arena, &s, true, &m), NULL);
    assert_ok(pb_pack(arena, &m->base, &bytes, &len), NULL);
    expect_bytes(bytes, len, &want, "OrchestrationState");

    s.status = (dt_runtime_status)99;
    assert_int_equal(pb_state_to_msg(arena, &s, true, &m), DT_ERR_INVALID_ARG);
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
    expect_error(pb_state_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "OrchestrationState.customStatus is not valid UTF-8");
    m.customstatus = NULL;
    m.orchestrationstatus = (Dtpb__OrchestrationStatus)12;
    expect_error(pb_state_from_msg(arena, &m, &out, &err), &err, DT_ERR_INVALID_ARG,
                 "OrchestrationState.orchestrationStatus 12");
    dt_arena_free(arena);
}

/* ---- work items -------------------------------------------------------------------------- */

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
    assert_ok(pb_orchestrator_request(a, "i1", "x1", past, 3, fresh, 2, &wi.orchestratorrequest),
              NULL);
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
    dt_arena *b = dt_arena_new();
    assert_non_null(b);
    dt_event back_past[3], back_new[2];
    dt_error err;
    for (size_t i = 0; i < 3; i++)
        assert_ok(pb_event_from_msg(b, r->pastevents[i], &back_past[i], &err), &err);
    for (size_t i = 0; i < 2; i++)
        assert_ok(pb_event_from_msg(b, r->newevents[i], &back_new[i], &err), &err);
    dtpb__work_item__free_unpacked(got, NULL);
    for (size_t i = 0; i < 3; i++)
        assert_same_event(&past[i], &back_past[i]);
    for (size_t i = 0; i < 2; i++)
        assert_same_event(&fresh[i], &back_new[i]);

    /* no history yet, no execution id: both lists empty, executionId absent */
    Dtpb__OrchestratorRequest *empty = NULL;
    assert_ok(pb_orchestrator_request(a, "i2", NULL, NULL, 0, NULL, 0, &empty), NULL);
    assert_null(empty->executionid);
    assert_int_equal(empty->n_pastevents, 0);
    assert_ok(pb_pack(a, &empty->base, &bytes, &len), NULL);
    wire want = { .n = 0 };
    w_str(&want, 1, "i2");
    expect_bytes(bytes, len, &want, "an empty OrchestratorRequest");

    /* an event that cannot be written fails the whole request */
    past[2].type = DT_EVENT_NONE;
    assert_int_equal(pb_orchestrator_request(a, "i1", "x1", past, 3, fresh, 2, &empty),
                     DT_ERR_INVALID_ARG);
    dt_arena_free(a);
    dt_arena_free(b);
}

static void test_activity_request_follows_the_protocol(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    Dtpb__ActivityRequest *m = NULL;
    assert_ok(pb_activity_request(a, "i1", "x1", 4, "SayHello", NULL, "\"Tokyo\"", &m), NULL);
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
    acts[1].type = DT_ACTION_CREATE_TIMER;
    acts[1].id = 1;
    acts[1].fire_at = INT64_C(1764084199000000);

    Dtpb__OrchestratorResponse r = DTPB__ORCHESTRATOR_RESPONSE__INIT;
    Dtpb__OrchestratorAction *msgs[2];
    for (int i = 0; i < 2; i++)
        assert_ok(pb_action_to_msg(a, &acts[i], &msgs[i]), NULL);
    r.instanceid = "i1";
    r.actions = msgs;
    r.n_actions = 2;
    r.completiontoken = "tok-9";
    assert_ok(pb_string_value_to_msg(a, "\"halfway\"", &r.customstatus), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &r.base, &bytes, &len), NULL);

    dt_arena *b = dt_arena_new();
    assert_non_null(b);
    dt_error err;
    Dtpb__OrchestratorResponse *got = NULL;
    assert_ok(pb_unpack(b, &dtpb__orchestrator_response__descriptor, bytes, len, (void **)&got,
                        &err), &err);
    pb_orch_completion c;
    assert_ok(pb_orchestrator_response_from_msg(b, got, &c, &err), &err);
    assert_string_equal(c.instance_id, "i1");
    assert_string_equal(c.completion_token, "tok-9");
    assert_string_equal(c.result.custom_status, "\"halfway\"");
    assert_int_equal(c.n_events_processed, -1);
    assert_false(c.requires_history);
    assert_int_equal(c.result.n_actions, 2);
    assert_same_action(&acts[0], &c.result.actions[0]);
    assert_same_action(&acts[1], &c.result.actions[1]);

    Dtpb__Int32Value count = DTPB__INT32_VALUE__INIT;
    count.value = 3;
    got->numeventsprocessed = &count;
    assert_ok(pb_orchestrator_response_from_msg(b, got, &c, &err), &err);
    assert_int_equal(c.n_events_processed, 3);
    count.value = -1;
    expect_error(pb_orchestrator_response_from_msg(b, got, &c, &err), &err, DT_ERR_INVALID_ARG,
                 "numEventsProcessed -1");
    got->numeventsprocessed = NULL;

    /* a refused action names its place in the list */
    Dtpb__SendEntityMessageAction entity = DTPB__SEND_ENTITY_MESSAGE_ACTION__INIT;
    got->actions[1]->orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_ENTITY_MESSAGE;
    got->actions[1]->sendentitymessage = &entity;
    expect_error(pb_orchestrator_response_from_msg(b, got, &c, &err), &err,
                 DT_ERR_UNIMPLEMENTED, "OrchestratorResponse.actions[1] (id 1): sendEntityMessage");

    /* chunked completions: isPartial = 8 on the wire */
    wire w = { .n = 0 };
    w_str(&w, 1, "i1");
    w_int(&w, 8, 1);
    Dtpb__OrchestratorResponse *partial = NULL;
    assert_ok(pb_unpack(b, &dtpb__orchestrator_response__descriptor, w.b, w.n,
                        (void **)&partial, &err), &err);
    expect_error(pb_orchestrator_response_from_msg(b, partial, &c, &err), &err,
                 DT_ERR_UNIMPLEMENTED, "chunked");
    dt_arena_free(a);
    dt_arena_free(b);
}

static void test_activity_response_carries_a_result_or_a_failure(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    pb_activity_completion c;
    Dtpb__ActivityResponse r = DTPB__ACTIVITY_RESPONSE__INIT;
    r.instanceid = "i1";
    r.taskid = 4;
    r.completiontoken = "t";
    assert_ok(pb_string_value_to_msg(a, "\"Hello, Tokyo\"", &r.result), NULL);
    assert_ok(pb_activity_response_from_msg(a, &r, &c, &err), &err);
    assert_string_equal(c.instance_id, "i1");
    assert_int_equal(c.task_id, 4);
    assert_string_equal(c.completion_token, "t");
    assert_string_equal(c.result, "\"Hello, Tokyo\"");
    assert_null(c.failure);

    r.result = NULL;
    assert_ok(pb_failure_to_msg(a, &outer_failure, &r.failuredetails), NULL);
    assert_ok(pb_activity_response_from_msg(a, &r, &c, &err), &err);
    assert_null(c.result);
    assert_same_failure(&outer_failure, c.failure);

    char bad[] = "T\xc0\xafpe";
    r.failuredetails->errortype = bad;
    expect_error(pb_activity_response_from_msg(a, &r, &c, &err), &err, DT_ERR_INVALID_ARG,
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
    assert_ok(pb_start_from_msg(a, &m, &req, &err), &err);
    assert_string_equal(req.name, "Hello");
    assert_null(req.instance_id);              /* "" asks the hub for an id */
    assert_null(req.version);
    assert_null(req.input);
    assert_int_equal(req.start_at, 0);
    assert_int_equal(req.n_replaceable, 0);

    Dtpb__OrchestrationIdReusePolicy policy = DTPB__ORCHESTRATION_ID_REUSE_POLICY__INIT;
    Dtpb__OrchestrationStatus statuses[2] = {
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED,
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING };
    policy.replaceablestatus = statuses;
    policy.n_replaceablestatus = 2;
    m.orchestrationidreusepolicy = &policy;
    m.instanceid = "order-1";
    assert_ok(pb_string_value_to_msg(a, "{\"n\":1}", &m.input), NULL);
    assert_ok(pb_timestamp_to_msg(a, INT64_C(1764084199500000), &m.scheduledstarttimestamp),
              NULL);
    assert_ok(pb_start_from_msg(a, &m, &req, &err), &err);
    assert_string_equal(req.instance_id, "order-1");
    assert_string_equal(req.input, "{\"n\":1}");
    assert_int_equal(req.start_at, INT64_C(1764084199500000));
    assert_int_equal(req.n_replaceable, 2);
    assert_int_equal(req.replaceable[0], DT_STATUS_FAILED);
    assert_int_equal(req.replaceable[1], DT_STATUS_RUNNING);

    statuses[1] = (Dtpb__OrchestrationStatus)9;
    expect_error(pb_start_from_msg(a, &m, &req, &err), &err, DT_ERR_INVALID_ARG,
                 "CreateInstanceRequest.orchestrationIdReusePolicy.replaceableStatus[1] 9");
    statuses[1] = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING;
    m.scheduledstarttimestamp->nanos = -5;
    expect_error(pb_start_from_msg(a, &m, &req, &err), &err, DT_ERR_INVALID_ARG,
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

    assert_ok(pb_query_from_msg(a, NULL, &q, &err), &err);
    assert_int_equal(q.n_statuses, 0);
    assert_int_equal(q.page_size, 0);
    assert_null(q.continuation);

    Dtpb__InstanceQuery m = DTPB__INSTANCE_QUERY__INIT;
    Dtpb__OrchestrationStatus st[2] = {
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED,
        DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED };
    m.runtimestatus = st;
    m.n_runtimestatus = 2;
    assert_ok(pb_timestamp_to_msg(a, INT64_C(1764000000000000), &m.createdtimefrom), NULL);
    assert_ok(pb_timestamp_to_msg(a, INT64_C(1765000000000000), &m.createdtimeto), NULL);
    m.maxinstancecount = 50;
    assert_ok(pb_string_value_to_msg(a, "order-41", &m.continuationtoken), NULL);
    assert_ok(pb_string_value_to_msg(a, "order-", &m.instanceidprefix), NULL);
    m.fetchinputsandoutputs = true;
    assert_ok(pb_query_from_msg(a, &m, &q, &err), &err);
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
    assert_ok(pb_query_from_msg(a, &m, &q, &err), &err);
    assert_int_equal(q.page_size, PB_QUERY_PAGE_MAX);
    assert_null(q.continuation);
    m.maxinstancecount = -1;
    expect_error(pb_query_from_msg(a, &m, &q, &err), &err, DT_ERR_INVALID_ARG,
                 "maxInstanceCount -1");
    m.maxinstancecount = 0;
    st[0] = (Dtpb__OrchestrationStatus)-3;
    expect_error(pb_query_from_msg(a, &m, &q, &err), &err, DT_ERR_INVALID_ARG,
                 "InstanceQuery.runtimeStatus[0] -3");

    Dtpb__PurgeInstanceFilter f = DTPB__PURGE_INSTANCE_FILTER__INIT;
    st[0] = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED;
    f.runtimestatus = st;
    f.n_runtimestatus = 1;
    f.createdtimeto = m.createdtimeto;
    assert_ok(pb_purge_filter_from_msg(a, &f, &q, &err), &err);
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
    assert_ok(pb_query_response(a, states, 2, "order-43", false, &qr), NULL);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(pb_pack(a, &qr->base, &bytes, &len), NULL);
    Dtpb__QueryInstancesResponse *got = NULL;
    assert_ok(pb_unpack(b, &dtpb__query_instances_response__descriptor, bytes, len,
                        (void **)&got, &err), &err);
    assert_int_equal(got->n_orchestrationstate, 2);
    assert_string_equal(got->continuationtoken->value, "order-43");
    dt_instance_state back;
    assert_ok(pb_state_from_msg(b, got->orchestrationstate[1], &back, &err), &err);
    assert_string_equal(back.instance_id, "order-43");
    assert_null(back.input);                   /* not asked for */

    assert_ok(pb_query_response(a, NULL, 0, NULL, true, &qr), NULL);
    assert_null(qr->continuationtoken);        /* the last page */

    dt_event ev[2];
    dt_event_init(&ev[0], DT_EVENT_EXECUTION_STARTED, INT64_C(1764084170000000));
    ev[0].name = "Hello";
    dt_event_init(&ev[1], DT_EVENT_EXECUTION_COMPLETED, INT64_C(1764084171000000));
    ev[1].status = DT_STATUS_COMPLETED;
    ev[1].result = "1";
    Dtpb__HistoryChunk *chunk = NULL;
    assert_ok(pb_history_chunk(a, ev, 2, &chunk), NULL);
    assert_ok(pb_pack(a, &chunk->base, &bytes, &len), NULL);
    Dtpb__HistoryChunk *back_chunk = NULL;
    assert_ok(pb_unpack(b, &dtpb__history_chunk__descriptor, bytes, len, (void **)&back_chunk,
                        &err), &err);
    assert_int_equal(back_chunk->n_events, 2);
    for (int i = 0; i < 2; i++) {
        dt_event e;
        assert_ok(pb_event_from_msg(b, back_chunk->events[i], &e, &err), &err);
        assert_same_event(&ev[i], &e);
    }
    dt_arena_free(a);
    dt_arena_free(b);
}

/* ---- events and the store's codec -------------------------------------------------------- */

static void test_event_messages_pack_to_the_store_codec_bytes(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_SUB_ORCHESTRATION_FAILED, INT64_C(1764084171000001));
    e.event_id = -1;
    e.task_id = 3;
    e.failure = &outer_failure;
    uint8_t *stored = NULL, *packed = NULL;
    size_t stored_len = 0, packed_len = 0;
    assert_ok(dt_event_encode(&e, &stored, &stored_len), NULL);
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    Dtpb__HistoryEvent *m = NULL;
    assert_ok(pb_event_to_msg(a, &e, &m), NULL);
    assert_ok(pb_pack(a, &m->base, &packed, &packed_len), NULL);
    assert_int_equal(stored_len, packed_len);
    assert_memory_equal(stored, packed, stored_len);
    free(stored);

    dt_event_init(&e, DT_EVENT_NONE, 0);
    assert_int_equal(pb_event_to_msg(a, &e, &m), DT_ERR_INVALID_ARG);
    dt_arena_free(a);
}

static void test_wire_events_are_checked_where_stored_ones_are_not(void **state)
{
    (void)state;
    /* TaskScheduled with a name that is not UTF-8 */
    wire body = { .n = 0 }, w = { .n = 0 };
    w_str(&body, 1, "Say\xfeHello");
    w_int(&w, 1, 2);
    w_msg(&w, 6, &body);
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    dt_event e;

    /* from the store: decodes as it always has */
    assert_ok(dt_event_decode(w.b, w.n, a, &e, &err), &err);
    assert_int_equal(e.type, DT_EVENT_TASK_SCHEDULED);

    /* from a peer: pb_unpack refuses the bytes, and pb_event_from_msg the message */
    Dtpb__HistoryEvent *m = NULL;
    expect_error(pb_unpack(a, &dtpb__history_event__descriptor, w.b, w.n, (void **)&m, &err),
                 &err, DT_ERR_INVALID_ARG, "TaskScheduledEvent.name is not valid UTF-8");
    m = dtpb__history_event__unpack(NULL, w.n, w.b);
    assert_non_null(m);
    expect_error(pb_event_from_msg(a, m, &e, &err), &err, DT_ERR_INVALID_ARG,
                 "TaskScheduled.name is not valid UTF-8");
    dtpb__history_event__free_unpacked(m, NULL);

    /* an entity event: UNIMPLEMENTED from a peer, CORRUPT from the store */
    wire op = { .n = 0 };
    w_str(&op, 2, "add");
    w.n = 0;
    w_msg(&w, 23, &op);
    assert_ok(pb_unpack(a, &dtpb__history_event__descriptor, w.b, w.n, (void **)&m, &err), &err);
    expect_error(pb_event_from_msg(a, m, &e, &err), &err, DT_ERR_UNIMPLEMENTED,
                 "field 23 (entityOperationSignaled)");
    expect_error(dt_event_decode(w.b, w.n, a, &e, &err), &err, DT_ERR_CORRUPT, "field 23");

    /* nothing set at all */
    w.n = 0;
    w_int(&w, 1, 2);
    assert_ok(pb_unpack(a, &dtpb__history_event__descriptor, w.b, w.n, (void **)&m, &err), &err);
    expect_error(pb_event_from_msg(a, m, &e, &err), &err, DT_ERR_INVALID_ARG, "no event type");
    dt_arena_free(a);
}

static void test_shared_pieces_keep_absent_and_empty_apart(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    Dtpb__StringValue *sv = (Dtpb__StringValue *)1;
    assert_ok(pb_string_value_to_msg(a, NULL, &sv), NULL);
    assert_null(sv);
    assert_ok(pb_string_value_to_msg(a, "", &sv), NULL);
    assert_non_null(sv);
    const char *s = "untouched";
    assert_ok(pb_string_value_from_msg(a, NULL, "f", &s, &err), &err);
    assert_null(s);
    assert_ok(pb_string_value_from_msg(a, sv, "f", &s, &err), &err);
    assert_string_equal(s, "");
    assert_ok(pb_string_from_msg(a, NULL, "f", &s, &err), &err);
    assert_string_equal(s, "");

    Dtpb__Timestamp *ts = NULL;
    assert_ok(pb_timestamp_to_msg(a, 0, &ts), NULL);
    assert_null(ts);                           /* 0 is "no time" */
    assert_ok(pb_timestamp_to_msg(a, -1500000, &ts), NULL);
    assert_int_equal(ts->seconds, -2);
    assert_int_equal(ts->nanos, 500000000);
    dt_time t = 0;
    assert_ok(pb_timestamp_from_msg(ts, "at", &t, &err), &err);
    assert_int_equal(t, -1500000);
    assert_int_equal(pb_timestamp_to_msg(a, INT64_MAX, &ts), DT_ERR_INVALID_ARG);
    ts->seconds = INT64_C(253402300800);
    expect_error(pb_timestamp_from_msg(ts, "at", &t, &err), &err, DT_ERR_INVALID_ARG,
                 "at is not a valid timestamp");

    dt_failure chain[65];
    for (int i = 0; i < 65; i++)
        chain[i] = (dt_failure){ "T", "m", NULL, i < 64 ? &chain[i + 1] : NULL, false };
    Dtpb__TaskFailureDetails *fm = NULL;
    assert_ok(pb_failure_to_msg(a, &chain[1], &fm), NULL);
    const dt_failure *back = NULL;
    assert_ok(pb_failure_from_msg(a, fm, "failureDetails", &back, &err), &err);
    assert_same_failure(&chain[1], back);
    assert_int_equal(pb_failure_to_msg(a, &chain[0], &fm), DT_ERR_INVALID_ARG);
    dt_arena_free(a);
}

/* ---- what pb_unpack refuses before protobuf-c sees it ------------------------------------ */

/* nested_failures: N TaskFailureDetails, each the innerFailure (field 4) of the one outside it,
 * in a malloc'd buffer written back to front. */
static uint8_t *nested_failures(size_t n, size_t *len)
{
    size_t cap = n * 6 + 16, start = cap;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++) {
        uint8_t v[10];
        size_t k = 0, l = cap - start;
        do {
            v[k++] = (uint8_t)((l & 0x7f) | (l > 0x7f ? 0x80 : 0));
            l >>= 7;
        } while (l);
        start -= k;
        memcpy(buf + start, v, k);
        buf[--start] = 0x22;                   /* field 4, length-delimited */
    }
    *len = cap - start;
    memmove(buf, buf + start, *len);
    return buf;
}

static void test_unpack_refuses_nesting_that_would_exhaust_the_stack(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    void *m = NULL;
    size_t len = 0;
    /* 100000 levels is a few hundred kilobytes: protobuf-c alone would crash on it */
    uint8_t *deep = nested_failures(100000, &len);
    expect_error(pb_unpack(a, &dtpb__task_failure_details__descriptor, deep, len, &m, &err),
                 &err, DT_ERR_INVALID_ARG, "deeper than 100 levels");
    free(deep);
    deep = nested_failures(PB_DEPTH_MAX - 1, &len);   /* the outermost message is level 1 */
    assert_ok(pb_unpack(a, &dtpb__task_failure_details__descriptor, deep, len, &m, &err), &err);
    free(deep);
    deep = nested_failures(PB_DEPTH_MAX, &len);
    expect_error(pb_unpack(a, &dtpb__task_failure_details__descriptor, deep, len, &m, &err),
                 &err, DT_ERR_INVALID_ARG, "deeper");
    free(deep);
    dt_arena_free(a);
}

static void test_unpack_refuses_nul_bad_utf8_groups_and_garbage(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    void *m = NULL;
    const ProtobufCMessageDescriptor *req = &dtpb__create_instance_request__descriptor;
    wire w = { .n = 0 };

    w_bytes(&w, 2, "Hel\0lo", 6);              /* name with a NUL inside */
    expect_error(pb_unpack(a, req, w.b, w.n, &m, &err), &err, DT_ERR_INVALID_ARG,
                 "CreateInstanceRequest.name holds a NUL");
    w.n = 0;
    w_str(&w, 1, "id\xc3");                    /* instanceId cut mid-character */
    expect_error(pb_unpack(a, req, w.b, w.n, &m, &err), &err, DT_ERR_INVALID_ARG,
                 "CreateInstanceRequest.instanceId is not valid UTF-8");
    w.n = 0;
    wire entry = { .n = 0 };                   /* tags = 8: a map entry with a bad key */
    w_str(&entry, 1, "k\xff");
    w_str(&entry, 2, "v");
    w_msg(&w, 8, &entry);
    expect_error(pb_unpack(a, req, w.b, w.n, &m, &err), &err, DT_ERR_INVALID_ARG,
                 "TagsEntry.key is not valid UTF-8");
    w.n = 0;
    w_str(&w, 77, "\xff\xfe");                 /* an unknown field is not ours to judge */
    w_str(&w, 2, "Hello");
    assert_ok(pb_unpack(a, req, w.b, w.n, &m, &err), &err);
    assert_string_equal(((Dtpb__CreateInstanceRequest *)m)->name, "Hello");

    static const uint8_t group[] = { 0x0b, 0x0c };             /* field 1, start/end group */
    expect_error(pb_unpack(a, req, group, sizeof group, &m, &err), &err, DT_ERR_INVALID_ARG,
                 "wire type 3");
    static const uint8_t past_end[] = { 0x12, 0x05, 'a' };     /* name longer than the bytes */
    expect_error(pb_unpack(a, req, past_end, sizeof past_end, &m, &err), &err,
                 DT_ERR_INVALID_ARG, "do not parse");
    static const uint8_t bad_varint[] = { 0x08, 0xff, 0xff };
    expect_error(pb_unpack(a, &dtpb__get_instance_request__descriptor, bad_varint,
                           sizeof bad_varint, &m, &err), &err, DT_ERR_INVALID_ARG,
                 "do not parse");
    static const uint8_t wrong_type[] = { 0x10, 0x01 };        /* name as a varint */
    expect_error(pb_unpack(a, req, wrong_type, sizeof wrong_type, &m, &err), &err,
                 DT_ERR_INVALID_ARG, "do not parse");

    /* no bytes at all is the empty message */
    assert_ok(pb_unpack(a, req, NULL, 0, &m, &err), &err);
    assert_string_equal(((Dtpb__CreateInstanceRequest *)m)->name, "");
    dt_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_validator_accepts_exactly_well_formed_text),
        cmocka_unit_test(test_every_action_round_trips_through_bytes),
        cmocka_unit_test(test_continue_as_new_carries_events_and_version),
        cmocka_unit_test(test_schedule_task_bytes_follow_the_protocol),
        cmocka_unit_test(test_entity_and_rewind_actions_are_unimplemented),
        cmocka_unit_test(test_actions_missing_what_they_need_are_refused),
        cmocka_unit_test(test_invalid_utf8_in_an_action_is_refused_naming_the_field),
        cmocka_unit_test(test_state_round_trips_with_and_without_payloads),
        cmocka_unit_test(test_state_bytes_follow_the_protocol_field_numbers),
        cmocka_unit_test(test_state_from_the_wire_checks_utf8_and_status),
        cmocka_unit_test(test_orchestrator_request_carries_ids_and_both_histories),
        cmocka_unit_test(test_activity_request_follows_the_protocol),
        cmocka_unit_test(test_orchestrator_response_becomes_an_episode_result),
        cmocka_unit_test(test_activity_response_carries_a_result_or_a_failure),
        cmocka_unit_test(test_create_instance_request_becomes_a_start_request),
        cmocka_unit_test(test_queries_and_purge_filters_become_dt_queries),
        cmocka_unit_test(test_query_response_and_history_chunk_pack),
        cmocka_unit_test(test_event_messages_pack_to_the_store_codec_bytes),
        cmocka_unit_test(test_wire_events_are_checked_where_stored_ones_are_not),
        cmocka_unit_test(test_shared_pieces_keep_absent_and_empty_apart),
        cmocka_unit_test(test_unpack_refuses_nesting_that_would_exhaust_the_stack),
        cmocka_unit_test(test_unpack_refuses_nul_bad_utf8_groups_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
