/* test_codec.c — history events to protobuf bytes and back: every event type round-trips, the
 * bytes are the Durable Task protocol's (checked against bytes built by hand from its field
 * numbers), and bad bytes are refused as corrupt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/codec.h"
#include "wiretest.h"

/* roundtrip: encode IN, decode the bytes, and expect IN back; encoding the result again must
 * give the same bytes. */
static void roundtrip(const dt_event *in)
{
    uint8_t *bytes = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    dt_error err;
    assert_ok(dt_event_encode(in, &bytes, &len), NULL);
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_event out;
    assert_ok(dt_event_decode(bytes, len, arena, &out, &err), &err);
    assert_same_event(in, &out);
    assert_ok(dt_event_encode(&out, &again, &again_len), NULL);
    assert_int_equal(len, again_len);
    assert_memory_equal(bytes, again, len);
    free(again);
    free(bytes);
    dt_arena_free(arena);
}

/* decode_ok: decode LEN bytes into OUT using ARENA, expecting success. */
static void decode_ok(const uint8_t *buf, size_t len, dt_arena *arena, dt_event *out)
{
    dt_error err;
    assert_ok(dt_event_decode(buf, len, arena, out, &err), &err);
}

/* expect_corrupt: decoding must fail with DT_ERR_CORRUPT, a message containing NEEDLE, and
 * leave the output event untouched; with a NULL err it must fail the same way. */
static void expect_corrupt(const uint8_t *buf, size_t len, const char *needle)
{
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_error err;
    dt_error_clear(&err);
    dt_event out;
    dt_event_init(&out, DT_EVENT_GENERIC, 42);
    assert_int_equal(dt_event_decode(buf, len, arena, &out, &err), DT_ERR_CORRUPT);
    assert_int_equal(err.code, DT_ERR_CORRUPT);
    if (needle && strstr(err.message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err.message, needle);
    assert_int_equal(out.type, DT_EVENT_GENERIC);
    assert_int_equal(out.timestamp, 42);
    assert_int_equal(dt_event_decode(buf, len, arena, &out, NULL), DT_ERR_CORRUPT);
    dt_arena_free(arena);
}

/* expect_wire: E encodes to exactly W's bytes, and W's bytes decode to E. */
static void expect_wire(const dt_event *e, const wire *w)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(dt_event_encode(e, &bytes, &len), NULL);
    expect_bytes(bytes, len, w, dt_event_type_name(e->type));
    free(bytes);
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_event out;
    decode_ok(w->b, w->n, arena, &out);
    assert_same_event(e, &out);
    dt_arena_free(arena);
}

/* history_event: HistoryEvent {eventId = 1, timestamp = 2, <member> = BODY}. */
static void history_event(wire *w, int32_t event_id, const wire *timestamp, unsigned member,
                          const wire *body)
{
    w->n = 0;
    if (event_id)
        w_int(w, 1, event_id);
    if (timestamp)
        w_msg(w, 2, timestamp);
    w_msg(w, member, body);
}

/* ---- wire compatibility ------------------------------------------------------------------ */

static void test_task_completed_bytes_follow_the_protocol_field_numbers(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_TASK_COMPLETED, 0);   /* timestamp 0 is left out */
    e.event_id = 5;
    e.task_id = 3;
    e.result = "\"x\"";
    static const uint8_t want[] = {
        0x08, 0x05,                   /* HistoryEvent.eventId (1, varint) = 5 */
        0x3a, 0x09,                   /* HistoryEvent.taskCompleted (7, length 9) */
        0x08, 0x03,                   /*   TaskCompletedEvent.taskScheduledId (1, varint) = 3 */
        0x12, 0x05,                   /*   TaskCompletedEvent.result (2, length 5) */
        0x0a, 0x03, '"', 'x', '"',    /*     StringValue.value (1, length 3) = "x" quoted */
    };
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(dt_event_encode(&e, &bytes, &len), NULL);
    wire w = { .n = sizeof want };
    memcpy(w.b, want, sizeof want);
    expect_bytes(bytes, len, &w, "TaskCompleted");
    free(bytes);
}

static void test_execution_started_bytes_follow_the_protocol(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_EXECUTION_STARTED, INT64_C(1700000000123456));
    e.name = "Checkout";
    e.version = "v2";
    e.input = "{\"cart\":7}";
    e.instance_id = "order-7";
    e.execution_id = "exec-1";
    e.parent_instance_id = "parent-1";
    e.parent_execution_id = "pexec-9";
    e.parent_name = "Parent";
    e.parent_task_id = 4;
    e.scheduled_start = INT64_C(1700000060000000);

    wire ts = { .n = 0 }, inst = { .n = 0 }, pinst = { .n = 0 }, parent = { .n = 0 };
    wire body = { .n = 0 }, w;
    w_int(&ts, 1, 1700000000);
    w_int(&ts, 2, 123456000);
    w_str(&inst, 1, "order-7");                  /* OrchestrationInstance.instanceId */
    w_sv(&inst, 2, "exec-1");                    /* OrchestrationInstance.executionId */
    w_str(&pinst, 1, "parent-1");
    w_sv(&pinst, 2, "pexec-9");
    w_int(&parent, 1, 4);                        /* ParentInstanceInfo.taskScheduledId */
    w_sv(&parent, 2, "Parent");                  /* ParentInstanceInfo.name */
    w_msg(&parent, 4, &pinst);                   /* ParentInstanceInfo.orchestrationInstance */
    w_str(&body, 1, "Checkout");                 /* ExecutionStartedEvent.name */
    w_sv(&body, 2, "v2");                        /* .version */
    w_sv(&body, 3, "{\"cart\":7}");              /* .input */
    w_msg(&body, 4, &inst);                      /* .orchestrationInstance */
    w_msg(&body, 5, &parent);                    /* .parentInstance */
    w_ts(&body, 6, 1700000060, 0);               /* .scheduledStartTimestamp */
    history_event(&w, -1, &ts, 3, &body);
    expect_wire(&e, &w);
}

static void test_failure_details_bytes_follow_the_protocol(void **state)
{
    (void)state;
    dt_failure inner = { "IOError", "disk full", NULL, NULL, true, NULL };
    dt_failure outer = { "TaskFailed", "could not save", "at save()", &inner, false, NULL };
    dt_event e;
    dt_event_init(&e, DT_EVENT_TASK_FAILED, 0);
    e.task_id = 2;
    e.failure = &outer;

    wire in = { .n = 0 }, out = { .n = 0 }, body = { .n = 0 }, w;
    w_str(&in, 1, "IOError");                    /* TaskFailureDetails.errorType */
    w_str(&in, 2, "disk full");                  /* .errorMessage */
    w_int(&in, 5, 1);                            /* .isNonRetriable */
    w_str(&out, 1, "TaskFailed");
    w_str(&out, 2, "could not save");
    w_sv(&out, 3, "at save()");                  /* .stackTrace */
    w_msg(&out, 4, &in);                         /* .innerFailure */
    w_int(&body, 1, 2);                          /* TaskFailedEvent.taskScheduledId */
    w_msg(&body, 2, &out);                       /* TaskFailedEvent.failureDetails */
    history_event(&w, -1, NULL, 8, &body);
    expect_wire(&e, &w);
}

static void test_other_event_bytes_follow_the_protocol(void **state)
{
    (void)state;
    dt_event e;
    wire body, w;

    /* TimerFired {fireAt = 1, timerId = 2}; -1.5 s is seconds -2 + 0.5 s of nanos */
    dt_event_init(&e, DT_EVENT_TIMER_FIRED, 0);
    e.fire_at = -1500000;
    e.task_id = 9;
    body.n = 0;
    w_ts(&body, 1, -2, 500000000);
    w_int(&body, 2, 9);
    history_event(&w, -1, NULL, 13, &body);
    expect_wire(&e, &w);

    /* ExecutionCompleted {orchestrationStatus = 1, result = 2} */
    dt_event_init(&e, DT_EVENT_EXECUTION_COMPLETED, 0);
    e.status = DT_STATUS_TERMINATED;
    e.result = "";
    body.n = 0;
    w_int(&body, 1, 5);
    w_sv(&body, 2, "");
    history_event(&w, -1, NULL, 4, &body);
    expect_wire(&e, &w);

    /* ExecutionTerminated {input = 1, recurse = 2} */
    dt_event_init(&e, DT_EVENT_EXECUTION_TERMINATED, 0);
    e.input = "\"stop\"";
    e.recurse = true;
    body.n = 0;
    w_sv(&body, 1, "\"stop\"");
    w_int(&body, 2, 1);
    history_event(&w, -1, NULL, 5, &body);
    expect_wire(&e, &w);

    /* SubOrchestrationInstanceCreated {instanceId = 1, name = 2, version = 3, input = 4} */
    dt_event_init(&e, DT_EVENT_SUB_ORCHESTRATION_CREATED, 0);
    e.event_id = 3;
    e.instance_id = "child";
    e.name = "Child";
    e.version = "1";
    e.input = "null";
    body.n = 0;
    w_str(&body, 1, "child");
    w_str(&body, 2, "Child");
    w_sv(&body, 3, "1");
    w_sv(&body, 4, "null");
    history_event(&w, 3, NULL, 9, &body);
    expect_wire(&e, &w);

    /* EventSent {instanceId = 1, name = 2, input = 3} */
    dt_event_init(&e, DT_EVENT_EVENT_SENT, 0);
    e.event_id = 6;
    e.instance_id = "other";
    e.name = "Ping";
    e.input = "1";
    body.n = 0;
    w_str(&body, 1, "other");
    w_str(&body, 2, "Ping");
    w_sv(&body, 3, "1");
    history_event(&w, 6, NULL, 16, &body);
    expect_wire(&e, &w);

    /* GenericEvent {data = 1} carries dt_event.input */
    dt_event_init(&e, DT_EVENT_GENERIC, 0);
    e.input = "42";
    body.n = 0;
    w_sv(&body, 1, "42");
    history_event(&w, -1, NULL, 18, &body);
    expect_wire(&e, &w);

    /* ExecutionResumed = 22, the last member we know, with no reason */
    dt_event_init(&e, DT_EVENT_EXECUTION_RESUMED, 0);
    body.n = 0;
    history_event(&w, -1, NULL, 22, &body);
    expect_wire(&e, &w);
}

static void test_peer_fields_we_do_not_carry_are_skipped(void **state)
{
    (void)state;
    /* ExecutionStarted with parentTraceContext (7), orchestrationSpanID (8) and tags (9) */
    wire inst = { .n = 0 }, trace = { .n = 0 }, tag = { .n = 0 }, body = { .n = 0 }, w;
    w_str(&inst, 1, "i1");
    w_str(&trace, 1, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    w_str(&tag, 1, "team");
    w_str(&tag, 2, "payments");
    w_str(&body, 1, "Orch");
    w_msg(&body, 4, &inst);
    w_msg(&body, 7, &trace);
    w_sv(&body, 8, "b7ad6b7169203331");
    w_msg(&body, 9, &tag);
    history_event(&w, -1, NULL, 3, &body);

    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_event out;
    decode_ok(w.b, w.n, arena, &out);
    assert_int_equal(out.type, DT_EVENT_EXECUTION_STARTED);
    assert_string_equal(out.name, "Orch");
    assert_string_equal(out.instance_id, "i1");
    assert_null(out.execution_id);
    assert_null(out.parent_instance_id);

    /* TaskFailureDetails.properties (6), a map entry {key = 1, value = 2 (a Value)} */
    wire value = { .n = 0 }, prop = { .n = 0 }, fail = { .n = 0 };
    w_str(&value, 3, "extra");                  /* google.protobuf.Value.string_value */
    w_str(&prop, 1, "code");
    w_msg(&prop, 2, &value);
    w_str(&fail, 1, "E");
    w_str(&fail, 2, "m");
    w_msg(&fail, 6, &prop);
    body.n = 0;
    w_int(&body, 1, 1);
    w_msg(&body, 2, &fail);
    history_event(&w, -1, NULL, 8, &body);
    decode_ok(w.b, w.n, arena, &out);
    assert_int_equal(out.type, DT_EVENT_TASK_FAILED);
    assert_string_equal(out.failure->error_type, "E");
    assert_string_equal(out.failure->message, "m");

    /* HistoryState carries an orchestrationState (1) that dt_event has no place for; the event
     * still decodes, with the snapshot dropped */
    wire snapshot = { .n = 0 };
    w_str(&snapshot, 1, "i1");
    body.n = 0;
    w_msg(&body, 1, &snapshot);
    history_event(&w, 2, NULL, 19, &body);
    decode_ok(w.b, w.n, arena, &out);
    assert_int_equal(out.type, DT_EVENT_HISTORY_STATE);
    assert_int_equal(out.event_id, 2);
    dt_arena_free(arena);
}

/* ---- round trips, one test per family of events --------------------------------------- */

static void test_execution_started_round_trips_with_and_without_parent(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_EXECUTION_STARTED, INT64_C(1700000000000001));
    e.name = "Orch";
    e.version = "";
    e.input = "{\"a\":[1,2]}";
    e.instance_id = "inst";
    e.execution_id = "exec";
    e.scheduled_start = INT64_C(1700000100500000);
    e.parent_instance_id = "parent";
    e.parent_execution_id = "";
    e.parent_name = "ParentOrch";
    e.parent_task_id = 12;
    roundtrip(&e);

    /* a parent named only by id keeps its absent name and execution id */
    e.parent_execution_id = NULL;
    e.parent_name = NULL;
    e.parent_task_id = 0;
    roundtrip(&e);

    /* no parent, no schedule, no version or input, no execution id */
    dt_event_init(&e, DT_EVENT_EXECUTION_STARTED, 1);
    e.name = "Orch";
    e.instance_id = "inst";
    roundtrip(&e);

    /* no instance at all */
    e.instance_id = NULL;
    roundtrip(&e);
}

static void test_execution_completed_round_trips_every_status_and_failure_chain(void **state)
{
    (void)state;
    dt_failure root = { "Root", "root cause", "", NULL, true, "{\"errno\":28.0}" };
    dt_failure middle = { "Middle", "", NULL, &root, false, NULL };
    dt_failure top = { "TaskFailed", "activity failed", "at f()\nat g()", &middle, false,
                       "{\"code\":42.5,\"list\":[\"x\",1.0,[]],\"nested\":{\"deeper\":{},"
                       "\"k\":\"v\"},\"none\":null,\"ok\":true}" };
    dt_event e;
    for (int s = DT_STATUS_RUNNING; s <= DT_STATUS_SUSPENDED; s++) {
        dt_event_init(&e, DT_EVENT_EXECUTION_COMPLETED, 1000 + s);
        e.status = (dt_runtime_status)s;
        e.result = s % 2 ? "\"done\"" : NULL;
        e.failure = s == DT_STATUS_FAILED ? &top : NULL;
        roundtrip(&e);
    }
    e.result = "";
    roundtrip(&e);
}

static void test_execution_terminated_round_trips_reason_and_recurse(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_EXECUTION_TERMINATED, 77);
    e.input = "\"by operator\"";
    e.recurse = true;
    roundtrip(&e);
    e.input = NULL;
    e.recurse = false;
    roundtrip(&e);
    e.input = "";
    roundtrip(&e);
}

static void test_task_events_round_trip(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_TASK_SCHEDULED, 5);
    e.event_id = 0;
    e.name = "SayHello";
    e.version = "1.0";
    e.input = "\"Tokyo\"";
    roundtrip(&e);
    e.event_id = INT32_MAX;
    e.version = NULL;
    e.input = "";
    roundtrip(&e);
    /* the caller's trace context and tags */
    e.trace_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    e.trace_state = "congo=t61rcWkgMzE";
    e.tags = "{\"empty\":\"\",\"team\":\"payments\"}";   /* keys sorted, as read */
    roundtrip(&e);
    e.trace_state = NULL;
    roundtrip(&e);

    dt_event_init(&e, DT_EVENT_TASK_COMPLETED, 6);
    e.task_id = 0;
    e.result = "\"Hello Tokyo\"";
    roundtrip(&e);
    e.task_id = 17;
    e.result = NULL;
    roundtrip(&e);

    dt_failure f = { "InvalidOperation", "boom", NULL, NULL, false, NULL };
    dt_event_init(&e, DT_EVENT_TASK_FAILED, 7);
    e.task_id = 17;
    e.failure = &f;
    roundtrip(&e);
}

static void test_sub_orchestration_events_round_trip(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_SUB_ORCHESTRATION_CREATED, 10);
    e.event_id = 2;
    e.instance_id = "child-1";
    e.name = "Child";
    e.version = "3";
    e.input = "[1]";
    roundtrip(&e);
    e.trace_parent = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
    e.tags = "{\"k\":\"v\"}";
    roundtrip(&e);
    e.trace_parent = NULL;
    e.tags = NULL;
    e.version = NULL;
    e.input = NULL;
    roundtrip(&e);

    dt_event_init(&e, DT_EVENT_SUB_ORCHESTRATION_COMPLETED, 11);
    e.task_id = 2;
    e.result = "";
    roundtrip(&e);

    dt_failure inner = { "Inner", "x", "trace", NULL, false, NULL };
    dt_failure f = { "SubFailed", "child failed", NULL, &inner, true, NULL };
    dt_event_init(&e, DT_EVENT_SUB_ORCHESTRATION_FAILED, 12);
    e.task_id = 2;
    e.failure = &f;
    roundtrip(&e);
}

static void test_timer_events_round_trip_negative_and_sub_second_times(void **state)
{
    (void)state;
    static const dt_time times[] = {
        1,                                   /* one microsecond after the epoch */
        -1,                                  /* one microsecond before it */
        -1500000,
        -1000000,                            /* a whole negative second, nanos 0 */
        999999,
        INT64_C(1700000000999999),
        INT64_C(-62135596800000000),         /* 0001-01-01T00:00:00Z, the earliest allowed */
        INT64_C(253402300799999999),         /* 9999-12-31T23:59:59.999999Z, the latest */
    };
    dt_event e;
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        dt_event_init(&e, DT_EVENT_TIMER_CREATED, times[i]);
        e.event_id = (int32_t)i;
        e.fire_at = times[i];
        roundtrip(&e);
        dt_event_init(&e, DT_EVENT_TIMER_FIRED, times[i]);
        e.task_id = (int32_t)i;
        e.fire_at = times[i];
        roundtrip(&e);
    }
}

static void test_marker_events_round_trip(void **state)
{
    (void)state;
    static const dt_event_type types[] = {
        DT_EVENT_ORCHESTRATOR_STARTED, DT_EVENT_ORCHESTRATOR_COMPLETED, DT_EVENT_HISTORY_STATE,
    };
    dt_event e;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        dt_event_init(&e, types[i], INT64_C(1700000000000000) + (dt_time)i);
        roundtrip(&e);
        dt_event_init(&e, types[i], 0);
        roundtrip(&e);
    }
}

static void test_messaging_events_round_trip(void **state)
{
    (void)state;
    dt_event e;
    dt_event_init(&e, DT_EVENT_EVENT_SENT, 20);
    e.event_id = 8;
    e.instance_id = "target";
    e.name = "Approve";
    e.input = "{\"ok\":true}";
    roundtrip(&e);
    e.input = NULL;
    roundtrip(&e);

    dt_event_init(&e, DT_EVENT_EVENT_RAISED, 21);
    e.name = "Approve";
    e.input = "true";
    roundtrip(&e);
    e.input = "";
    roundtrip(&e);
}

static void test_payload_events_keep_null_and_empty_apart(void **state)
{
    (void)state;
    static const dt_event_type types[] = {
        DT_EVENT_GENERIC, DT_EVENT_CONTINUE_AS_NEW, DT_EVENT_EXECUTION_SUSPENDED,
        DT_EVENT_EXECUTION_RESUMED,
    };
    static const char *payloads[] = { NULL, "", "\"reason\"", "{\"n\":1}" };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        for (size_t j = 0; j < sizeof payloads / sizeof payloads[0]; j++) {
            dt_event e;
            dt_event_init(&e, types[i], -INT64_C(86400000000));
            e.input = payloads[j];
            roundtrip(&e);
        }
    }
}

static void test_unicode_and_long_payloads_round_trip(void **state)
{
    (void)state;
    size_t n = 300000;   /* longer than a 2-byte length prefix and an arena chunk */
    char *big = test_json_string(n, 'z');
    dt_event e;
    dt_event_init(&e, DT_EVENT_EVENT_RAISED, 3);
    e.name = "ünïcödé ✓";
    e.input = big;
    roundtrip(&e);
    free(big);
}

static void test_plain_protocol_strings_decode_null_as_empty(void **state)
{
    (void)state;
    /* name, instanceId, errorType and errorMessage are plain proto3 strings: NULL and "" are
     * the same bytes, and decoding gives "" so callers can always strcmp them. */
    dt_failure f = { NULL, NULL, NULL, NULL, false, NULL };
    dt_event e;
    dt_event_init(&e, DT_EVENT_TASK_FAILED, 0);
    e.task_id = 1;
    e.failure = &f;
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_ok(dt_event_encode(&e, &bytes, &len), NULL);
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_event out;
    decode_ok(bytes, len, arena, &out);
    free(bytes);
    assert_non_null(out.failure);
    assert_string_equal(out.failure->error_type, "");
    assert_string_equal(out.failure->message, "");
    assert_null(out.failure->stack_trace);

    dt_event_init(&e, DT_EVENT_SUB_ORCHESTRATION_CREATED, 0);
    assert_ok(dt_event_encode(&e, &bytes, &len), NULL);
    decode_ok(bytes, len, arena, &out);
    free(bytes);
    assert_string_equal(out.name, "");
    assert_string_equal(out.instance_id, "");
    assert_null(out.version);
    assert_null(out.input);
    dt_arena_free(arena);
}

/* ---- what the codec refuses ------------------------------------------------------------- */

static void test_garbage_bytes_are_corrupt(void **state)
{
    (void)state;
    static const uint8_t truncated_varint[] = { 0xff, 0xff, 0xff };
    static const uint8_t length_past_end[] = { 0x3a, 0x10, 0x08 };
    static const uint8_t bad_wire_type[] = { 0x0f, 0x01 };
    static const uint8_t field_zero[] = { 0x00, 0x01 };
    static const uint8_t bad_inner[] = { 0x3a, 0x02, 0x12, 0x05 };  /* result runs past body */
    expect_corrupt(truncated_varint, sizeof truncated_varint, "parse");
    expect_corrupt(length_past_end, sizeof length_past_end, "parse");
    expect_corrupt(bad_wire_type, sizeof bad_wire_type, "parse");
    expect_corrupt(field_zero, sizeof field_zero, "parse");
    expect_corrupt(bad_inner, sizeof bad_inner, "parse");
    const char *text = "this is not protobuf";
    expect_corrupt((const uint8_t *)text, strlen(text), NULL);
}

/* The seven entity events round-trip with every field they carry, and their bytes are the
 * protocol's (members 23..29, field numbers as its messages give them). */
static void test_entity_events_round_trip_and_follow_the_protocol(void **state)
{
    (void)state;
    const dt_time at = INT64_C(1700000000000000);
    dt_event e;
    dt_event_init(&e, DT_EVENT_ENTITY_SIGNALED, 0);   /* timestamp 0 is left out */
    e.request_id = "r1";
    e.name = "add";
    e.fire_at = at + 5000000;
    e.input = "5";
    e.instance_id = "@counter@a";
    roundtrip(&e);
    wire body = {.n = 0}, w = {.n = 0};
    w_str(&body, 1, "r1");
    w_str(&body, 2, "add");
    w_ts(&body, 3, 1700000005, 0);
    w_sv(&body, 4, "5");
    w_sv(&body, 5, "@counter@a");
    history_event(&w, -1, NULL, 23, &body);
    expect_wire(&e, &w);

    dt_event_init(&e, DT_EVENT_ENTITY_CALLED, at);
    e.event_id = 4;
    e.request_id = "r2";
    e.name = "get";
    e.parent_instance_id = "orch";
    e.parent_execution_id = "x1";
    e.instance_id = "@counter@a";
    roundtrip(&e);

    dt_event_init(&e, DT_EVENT_ENTITY_COMPLETED, at);
    e.request_id = "r2";
    e.result = "42";
    roundtrip(&e);
    dt_event_init(&e, DT_EVENT_ENTITY_FAILED, at);
    e.request_id = "r2";
    dt_failure f = {.error_type = "Error", .message = "boom"};
    e.failure = &f;
    roundtrip(&e);

    const char *set[] = {"@a@1", "@b@2"};
    dt_event_init(&e, DT_EVENT_ENTITY_LOCK_REQUESTED, 0);
    e.request_id = "cs1";
    e.lock_set = set;
    e.n_lock_set = 2;
    e.position = 1;
    e.parent_instance_id = "orch";
    roundtrip(&e);
    body.n = w.n = 0;
    w_str(&body, 1, "cs1");
    w_str(&body, 2, "@a@1");
    w_str(&body, 2, "@b@2");
    w_int(&body, 3, 1);
    w_sv(&body, 4, "orch");
    history_event(&w, -1, NULL, 27, &body);
    expect_wire(&e, &w);

    dt_event_init(&e, DT_EVENT_ENTITY_LOCK_GRANTED, at);
    e.request_id = "cs1";
    roundtrip(&e);
    dt_event_init(&e, DT_EVENT_ENTITY_UNLOCK_SENT, at);
    e.request_id = "cs1";
    e.parent_instance_id = "orch";
    e.instance_id = "@a@1";
    roundtrip(&e);
}

static void test_unknown_or_missing_event_type_is_corrupt(void **state)
{
    (void)state;
    /* eventId = 1, then member 50, which the protocol does not define */
    static const uint8_t unknown[] = { 0x08, 0x01, 0x92, 0x03, 0x00 };
    expect_corrupt(unknown, sizeof unknown, "field 50");
    /* a member number far beyond the protocol's */
    static const uint8_t far[] = { 0xa2, 0x06, 0x00 };   /* field 100, length 0 */
    expect_corrupt(far, sizeof far, "field 100");
    /* only eventId and timestamp: no event type at all */
    static const uint8_t none[] = { 0x08, 0x01, 0x12, 0x00 };
    expect_corrupt(none, sizeof none, "no event type");
    expect_corrupt((const uint8_t *)"", 0, "no event type");
    expect_corrupt(NULL, 0, "no event type");
}

static void test_impossible_timestamps_and_statuses_are_corrupt(void **state)
{
    (void)state;
    wire body, ts, w;

    body.n = 0;
    w_ts(&body, 1, 10, 1000000000);              /* nanos past one second */
    history_event(&w, -1, NULL, 12, &body);
    expect_corrupt(w.b, w.n, "fireAt");

    ts.n = 0;
    w_int(&ts, 1, 5);
    w_int(&ts, 2, -1);                           /* negative nanos */
    body.n = 0;
    history_event(&w, -1, &ts, 14, &body);
    expect_corrupt(w.b, w.n, "timestamp");

    body.n = 0;
    w_ts(&body, 6, INT64_C(253402300800), 0);    /* year 10000 */
    history_event(&w, -1, NULL, 3, &body);
    expect_corrupt(w.b, w.n, "scheduledStartTimestamp");

    ts.n = 0;
    w_int(&ts, 1, INT64_MIN);                    /* would overflow microseconds */
    body.n = 0;
    history_event(&w, -1, &ts, 15, &body);
    expect_corrupt(w.b, w.n, "timestamp");

    body.n = 0;
    w_int(&body, 1, 8);                          /* one past Suspended */
    history_event(&w, -1, NULL, 4, &body);
    expect_corrupt(w.b, w.n, "orchestrationStatus 8");
}

static void test_encode_refuses_what_the_protocol_cannot_carry(void **state)
{
    (void)state;
    uint8_t *bytes = (uint8_t *)"untouched";
    size_t len = 0;
    dt_event e;

    dt_event_init(&e, DT_EVENT_NONE, 0);
    assert_int_equal(dt_event_encode(&e, &bytes, &len), DT_ERR_INVALID_ARG);
    e.type = (dt_event_type)31;
    assert_int_equal(dt_event_encode(&e, &bytes, &len), DT_ERR_INVALID_ARG);

    dt_event_init(&e, DT_EVENT_TIMER_CREATED, 0);
    e.fire_at = INT64_C(-62135596800000001);     /* a microsecond before year 1 */
    assert_int_equal(dt_event_encode(&e, &bytes, &len), DT_ERR_INVALID_ARG);
    dt_event_init(&e, DT_EVENT_TIMER_CREATED, INT64_MAX);
    assert_int_equal(dt_event_encode(&e, &bytes, &len), DT_ERR_INVALID_ARG);

    dt_event_init(&e, DT_EVENT_EXECUTION_COMPLETED, 0);
    e.status = (dt_runtime_status)8;
    assert_int_equal(dt_event_encode(&e, &bytes, &len), DT_ERR_INVALID_ARG);

    assert_int_equal(dt_event_encode(NULL, &bytes, &len), DT_ERR_INVALID_ARG);
    assert_string_equal((const char *)bytes, "untouched");
}

static void test_failure_chains_are_limited_to_64_levels(void **state)
{
    (void)state;
    dt_failure chain[65];
    for (int i = 0; i < 65; i++) {
        chain[i] = (dt_failure){ "T", "m", NULL, i < 64 ? &chain[i + 1] : NULL, false, NULL };
    }
    dt_event e;
    dt_event_init(&e, DT_EVENT_TASK_FAILED, 0);
    e.task_id = 1;
    e.failure = &chain[1];                       /* 64 levels: accepted */
    roundtrip(&e);
    e.failure = &chain[0];                       /* 65 levels: refused */
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(dt_event_encode(&e, &bytes, &len), DT_ERR_INVALID_ARG);

    /* the same 65 levels built by hand are refused on decode */
    wire *f = calloc(1, sizeof *f), *outer = calloc(1, sizeof *outer);
    assert_non_null(f);
    assert_non_null(outer);
    for (int i = 0; i < 65; i++) {
        outer->n = 0;
        w_str(outer, 1, "T");
        if (i > 0)
            w_msg(outer, 4, f);
        *f = *outer;
    }
    wire body = { .n = 0 }, w;
    w_int(&body, 1, 1);
    w_msg(&body, 2, f);
    history_event(&w, -1, NULL, 8, &body);
    expect_corrupt(w.b, w.n, "deeper than 64");
    free(f);
    free(outer);
}

static void test_decode_refuses_missing_arguments(void **state)
{
    (void)state;
    static const uint8_t b[] = { 0x70, 0x00 };
    dt_arena *arena = dt_arena_new();
    assert_non_null(arena);
    dt_event out;
    dt_error err;
    assert_int_equal(dt_event_decode(b, sizeof b, NULL, &out, &err), DT_ERR_INVALID_ARG);
    assert_int_equal(dt_event_decode(b, sizeof b, arena, NULL, &err), DT_ERR_INVALID_ARG);
    assert_int_equal(dt_event_decode(NULL, 3, arena, &out, NULL), DT_ERR_INVALID_ARG);
    dt_arena_free(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_completed_bytes_follow_the_protocol_field_numbers),
        cmocka_unit_test(test_execution_started_bytes_follow_the_protocol),
        cmocka_unit_test(test_failure_details_bytes_follow_the_protocol),
        cmocka_unit_test(test_other_event_bytes_follow_the_protocol),
        cmocka_unit_test(test_peer_fields_we_do_not_carry_are_skipped),
        cmocka_unit_test(test_execution_started_round_trips_with_and_without_parent),
        cmocka_unit_test(test_execution_completed_round_trips_every_status_and_failure_chain),
        cmocka_unit_test(test_execution_terminated_round_trips_reason_and_recurse),
        cmocka_unit_test(test_task_events_round_trip),
        cmocka_unit_test(test_sub_orchestration_events_round_trip),
        cmocka_unit_test(test_timer_events_round_trip_negative_and_sub_second_times),
        cmocka_unit_test(test_marker_events_round_trip),
        cmocka_unit_test(test_messaging_events_round_trip),
        cmocka_unit_test(test_payload_events_keep_null_and_empty_apart),
        cmocka_unit_test(test_unicode_and_long_payloads_round_trip),
        cmocka_unit_test(test_plain_protocol_strings_decode_null_as_empty),
        cmocka_unit_test(test_garbage_bytes_are_corrupt),
        cmocka_unit_test(test_entity_events_round_trip_and_follow_the_protocol),
        cmocka_unit_test(test_unknown_or_missing_event_type_is_corrupt),
        cmocka_unit_test(test_impossible_timestamps_and_statuses_are_corrupt),
        cmocka_unit_test(test_encode_refuses_what_the_protocol_cannot_carry),
        cmocka_unit_test(test_failure_chains_are_limited_to_64_levels),
        cmocka_unit_test(test_decode_refuses_missing_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
