/* test_pb.c — the codec's inside (src/codec/pb.h): the UTF-8 validator, the field builder
 * and reader every protobuf mapping is written with, HistoryEvent messages (the same bytes as
 * the store's codec; checked from a peer, trusted from the store), and pb_unpack refusing
 * nesting deep enough to exhaust protobuf-c's stack, NULs, bad UTF-8, groups and garbage,
 * and trees past their limit;
 * pb_single_field taking exactly one length-delimited field (a completion stream's
 * message). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/pb.h"
#include "durabletask/codec.h"
#include "wiretest.h"

static dt_failure inner_failure = { "IOError", "disk full", NULL, NULL, true, NULL };
static const dt_failure outer_failure = { "TaskFailed", "activity \"Copy\" failed",
                                          "at copy()\nat main()", &inner_failure, false, NULL };

/* read_event: M through a wire reader; its status. */
static dt_status read_event(dt_arena *a, const Dtpb__HistoryEvent *m, dt_event *out,
                            dt_error *err)
{
    pb_reader r = PB_READER(a, err, NULL);
    pb_r_event(&r, m, out);
    return r.status;
}

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
    pb_builder b = PB_BUILDER(a);
    Dtpb__HistoryEvent *m = pb_b_event(&b, &e);
    assert_ok(b.status, NULL);
    assert_ok(pb_pack(a, &m->base, &packed, &packed_len), NULL);
    assert_int_equal(stored_len, packed_len);
    assert_memory_equal(stored, packed, stored_len);
    free(stored);

    dt_event_init(&e, DT_EVENT_NONE, 0);
    assert_null(pb_b_event(&b, &e));
    assert_int_equal(b.status, DT_ERR_INVALID_ARG);
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

    /* from a peer: pb_unpack refuses the bytes, and a wire reader the message */
    Dtpb__HistoryEvent *m = NULL;
    expect_error(pb_unpack(a, &dtpb__history_event__descriptor, w.b, w.n, (void **)&m, &err),
                 &err, DT_ERR_INVALID_ARG, "TaskScheduledEvent.name is not valid UTF-8");
    m = dtpb__history_event__unpack(NULL, w.n, w.b);
    assert_non_null(m);
    expect_error(read_event(a, m, &e, &err), &err, DT_ERR_INVALID_ARG,
                 "TaskScheduled.name is not valid UTF-8");
    dtpb__history_event__free_unpacked(m, NULL);

    /* a member newer than our protocol: UNIMPLEMENTED from a peer, CORRUPT from the store */
    wire op = { .n = 0 };
    w_str(&op, 2, "add");
    w.n = 0;
    w_msg(&w, 50, &op);
    assert_ok(pb_unpack(a, &dtpb__history_event__descriptor, w.b, w.n, (void **)&m, &err), &err);
    expect_error(read_event(a, m, &e, &err), &err, DT_ERR_UNIMPLEMENTED, "field 50");
    expect_error(dt_event_decode(w.b, w.n, a, &e, &err), &err, DT_ERR_CORRUPT, "field 50");

    /* nothing set at all */
    w.n = 0;
    w_int(&w, 1, 2);
    assert_ok(pb_unpack(a, &dtpb__history_event__descriptor, w.b, w.n, (void **)&m, &err), &err);
    expect_error(read_event(a, m, &e, &err), &err, DT_ERR_INVALID_ARG, "no event type");
    dt_arena_free(a);
}

static void test_field_helpers_keep_absent_and_empty_apart(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    pb_builder b = PB_BUILDER(a);
    pb_reader r = PB_READER(a, &err, NULL);
    assert_null(pb_b_sv(&b, NULL));
    Dtpb__StringValue *sv = pb_b_sv(&b, "");
    assert_non_null(sv);
    assert_null(pb_r_sv(&r, NULL, "f"));
    assert_string_equal(pb_r_sv(&r, sv, "f"), "");
    assert_string_equal(pb_r_str(&r, NULL, "f"), "");
    assert_ok(r.status, &err);

    assert_null(pb_b_time(&b, 0));             /* 0 is "no time" */
    Dtpb__Timestamp *ts = pb_b_time(&b, -1500000);
    assert_int_equal(ts->seconds, -2);
    assert_int_equal(ts->nanos, 500000000);
    assert_int_equal(pb_r_time(&r, ts, "at"), -1500000);
    assert_ok(b.status, NULL);
    assert_ok(r.status, &err);
    /* the edges of the protocol's range, and one past each */
    assert_non_null(pb_b_time(&b, DT_TIME_MIN));
    assert_non_null(pb_b_time(&b, DT_TIME_MAX));
    assert_ok(b.status, NULL);
    assert_null(pb_b_time(&b, DT_TIME_MAX + 1));
    assert_int_equal(b.status, DT_ERR_INVALID_ARG);
    b = PB_BUILDER(a);
    assert_null(pb_b_time(&b, DT_TIME_MIN - 1));
    assert_int_equal(b.status, DT_ERR_INVALID_ARG);
    b = PB_BUILDER(a);
    ts->seconds = INT64_C(253402300800);
    pb_r_time(&r, ts, "at");
    expect_error(r.status, &err, DT_ERR_INVALID_ARG, "at is not a valid timestamp");
    /* after the first failure a reader reads nothing more, and keeps the first message */
    assert_null(pb_r_sv(&r, sv, "later"));
    expect_error(r.status, &err, DT_ERR_INVALID_ARG, "at is not a valid timestamp");

    dt_failure chain[65];
    for (int i = 0; i < 65; i++)
        chain[i] = (dt_failure){ "T", "m", NULL, i < 64 ? &chain[i + 1] : NULL, false, NULL };
    Dtpb__TaskFailureDetails *fm = pb_b_failure(&b, &chain[1]);
    assert_ok(b.status, NULL);
    r = PB_READER(a, &err, NULL);
    assert_same_failure(&chain[1], pb_r_failure(&r, fm, "failureDetails"));
    assert_ok(r.status, &err);
    pb_b_failure(&b, &chain[0]);   /* a failed build's tree is half made: only status counts */
    assert_int_equal(b.status, DT_ERR_INVALID_ARG);

    /* statuses: known ones pass, a newer peer's number is refused naming the field */
    r = PB_READER(a, &err, "Query");
    Dtpb__OrchestrationStatus st[] = {1, 9};
    pb_r_statuses(&r, st, 2, "runtimeStatus");
    expect_error(r.status, &err, DT_ERR_INVALID_ARG, "Query.runtimeStatus[1] 9 is not a known");
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

/* a charge that allows up to *ctx bytes in all */
static bool charge_upto(void *ctx, size_t n)
{
    size_t *left = ctx;
    if (n > *left)
        return false;
    *left -= n;
    return true;
}

/* Unknown fields of two bytes each cost protobuf-c a record and a copy apiece: 64 KB of them
 * unpack to many times that. A limit refuses the tree past its size (naming the sizes), or
 * when its charge says no; what the tree took is reported either way, and without a limit
 * the same bytes unpack. */
static void test_unpack_within_a_limit_counts_and_caps_what_the_tree_takes(void **state)
{
    (void)state;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    dt_error err;
    void *m = NULL;
    const ProtobufCMessageDescriptor *get = &dtpb__get_instance_request__descriptor;
    size_t n = 64 << 10;
    uint8_t *b = malloc(n);
    assert_non_null(b);
    for (size_t i = 0; i < n; i += 2) {
        b[i] = 15 << 3;   /* field 15, a varint: unknown to GetInstanceRequest */
        b[i + 1] = 0;
    }
    pb_limit free_hand = {.max = SIZE_MAX};
    assert_ok(pb_unpack_limited(a, get, b, n, &free_hand, &m, &err), &err);
    assert_true(free_hand.used > 8 * n);   /* what a peer could make us hold */

    pb_limit cap = {.max = 4 * n};
    expect_error(pb_unpack_limited(a, get, b, n, &cap, &m, &err), &err, DT_ERR_INVALID_ARG,
                 "too many fields for its size");
    assert_true(cap.used <= 4 * n);
    assert_non_null(strstr(err.message, "GetInstanceRequest"));

    size_t left = n;
    pb_limit charged = {.max = SIZE_MAX, .charge = charge_upto, .ctx = &left};
    expect_error(pb_unpack_limited(a, get, b, n, &charged, &m, &err), &err, DT_ERR_NOMEM,
                 "no room left");
    assert_int_equal(charged.used + left, n);   /* every byte taken was charged */

    assert_ok(pb_unpack(a, get, b, n, &m, &err), &err);
    free(b);
    dt_arena_free(a);
}

static void test_single_field_takes_exactly_one_length_delimited_field(void **state)
{
    (void)state;
    uint32_t field = 0;
    const uint8_t *body = NULL;
    size_t len = 0;
    /* a WorkerCompletion holding an ActivityResponse: its body is the inner bytes, unparsed */
    Dtpb__ActivityResponse ar = DTPB__ACTIVITY_RESPONSE__INIT;
    ar.instanceid = "i-1";
    ar.taskid = 3;
    ar.completiontoken = "a1-2";
    Dtpb__WorkerCompletion wc = DTPB__WORKER_COMPLETION__INIT;
    wc.completion_case = DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY;
    wc.activity = &ar;
    uint8_t inner[64], outer[80], two[160];
    size_t n_inner = dtpb__activity_response__pack(&ar, inner);
    size_t n = dtpb__worker_completion__pack(&wc, outer);
    assert_ok(pb_single_field(outer, n, &field, &body, &len), NULL);
    assert_int_equal(field, DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY);
    assert_int_equal(len, n_inner);
    assert_memory_equal(body, inner, n_inner);
    /* refused: nothing, a number, two fields, a length past the end, a byte after the
     * field, field number 0 */
    assert_int_equal(pb_single_field(NULL, 0, &field, &body, &len), DT_ERR_INVALID_ARG);
    static const uint8_t number[] = { 0x08, 0x01 };
    assert_int_equal(pb_single_field(number, sizeof number, &field, &body, &len),
                     DT_ERR_INVALID_ARG);
    memcpy(two, outer, n);
    memcpy(two + n, outer, n);
    assert_int_equal(pb_single_field(two, 2 * n, &field, &body, &len), DT_ERR_INVALID_ARG);
    static const uint8_t past_end[] = { 0x12, 0x05, 'a' };
    assert_int_equal(pb_single_field(past_end, sizeof past_end, &field, &body, &len),
                     DT_ERR_INVALID_ARG);
    two[n] = 0;
    assert_int_equal(pb_single_field(two, n + 1, &field, &body, &len), DT_ERR_INVALID_ARG);
    static const uint8_t field_zero[] = { 0x02, 0x00 };
    assert_int_equal(pb_single_field(field_zero, sizeof field_zero, &field, &body, &len),
                     DT_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_validator_accepts_exactly_well_formed_text),
        cmocka_unit_test(test_event_messages_pack_to_the_store_codec_bytes),
        cmocka_unit_test(test_wire_events_are_checked_where_stored_ones_are_not),
        cmocka_unit_test(test_field_helpers_keep_absent_and_empty_apart),
        cmocka_unit_test(test_unpack_refuses_nesting_that_would_exhaust_the_stack),
        cmocka_unit_test(test_unpack_refuses_nul_bad_utf8_groups_and_garbage),
        cmocka_unit_test(test_unpack_within_a_limit_counts_and_caps_what_the_tree_takes),
        cmocka_unit_test(test_single_field_takes_exactly_one_length_delimited_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
