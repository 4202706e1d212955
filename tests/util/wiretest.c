/* wiretest.c — see wiretest.h. */
#include <stdio.h>
#include <string.h>

#include "wiretest.h"

void assert_same_str(const char *want, const char *got, const char *field)
{
    if (want == NULL && got == NULL)
        return;
    if (want == NULL || got == NULL)
        fail_msg("%s: want %s%s%s, got %s%s%s", field, want ? "\"" : "", want ? want : "NULL",
                 want ? "\"" : "", got ? "\"" : "", got ? got : "NULL", got ? "\"" : "");
    if (strcmp(want, got) != 0)
        fail_msg("%s: want \"%s\", got \"%s\"", field, want, got);
}

void assert_same_failure(const dt_failure *want, const dt_failure *got)
{
    for (int depth = 0; want || got; depth++) {
        if (want == NULL || got == NULL)
            fail_msg("failure at depth %d: want %s, got %s", depth, want ? "one" : "none",
                     got ? "one" : "none");
        assert_same_str(want->error_type, got->error_type, "failure.error_type");
        assert_same_str(want->message, got->message, "failure.message");
        assert_same_str(want->stack_trace, got->stack_trace, "failure.stack_trace");
        assert_int_equal(want->non_retriable, got->non_retriable);
        assert_same_str(want->properties, got->properties, "failure.properties");
        want = want->inner;
        got = got->inner;
    }
}

void assert_same_event(const dt_event *want, const dt_event *got)
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
    assert_int_equal(want->scheduled_start, got->scheduled_start);
    assert_int_equal(want->status, got->status);
    assert_same_failure(want->failure, got->failure);
    assert_int_equal(want->recurse, got->recurse);
    assert_same_str(want->parent_instance_id, got->parent_instance_id, "event.parent_instance_id");
    assert_same_str(want->parent_execution_id, got->parent_execution_id,
                    "event.parent_execution_id");
    assert_same_str(want->parent_name, got->parent_name, "event.parent_name");
    assert_int_equal(want->parent_task_id, got->parent_task_id);
    assert_same_str(want->trace_parent, got->trace_parent, "event.trace_parent");
    assert_same_str(want->trace_state, got->trace_state, "event.trace_state");
    assert_same_str(want->tags, got->tags, "event.tags");
    assert_same_str(want->request_id, got->request_id, "event.request_id");
    assert_int_equal(want->n_lock_set, got->n_lock_set);
    for (size_t i = 0; i < want->n_lock_set; i++)
        assert_same_str(want->lock_set[i], got->lock_set[i], "event.lock_set[i]");
    assert_int_equal(want->position, got->position);
}

void assert_same_action(const dt_action *want, const dt_action *got)
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
    assert_same_str(want->trace_parent, got->trace_parent, "action.trace_parent");
    assert_same_str(want->trace_state, got->trace_state, "action.trace_state");
    assert_same_str(want->tags, got->tags, "action.tags");
    assert_int_equal(want->entity != NULL, got->entity != NULL);
    if (want->entity)
        assert_same_event(want->entity, got->entity);
}

void assert_same_state(const dt_instance_state *want, const dt_instance_state *got)
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

void expect_error(dt_status st, const dt_error *err, dt_status code, const char *needle)
{
    if (st != code)
        fail_msg("want %s, got %s: %s", dt_strerror(code), dt_strerror(st), err->message);
    assert_int_equal(err->code, code);
    if (needle && strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

void w_varint(wire *w, uint64_t v)
{
    while (v >= 0x80) {
        w->b[w->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    w->b[w->n++] = (uint8_t)v;
}

void w_int(wire *w, unsigned field, int64_t v)
{
    w_varint(w, (uint64_t)field << 3);
    w_varint(w, (uint64_t)v);
}

void w_bytes(wire *w, unsigned field, const void *p, size_t n)
{
    assert_true(w->n + n + 16 < sizeof w->b);
    w_varint(w, (uint64_t)field << 3 | 2);
    w_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

void w_str(wire *w, unsigned field, const char *s)
{
    w_bytes(w, field, s, strlen(s));
}

void w_msg(wire *w, unsigned field, const wire *sub)
{
    w_bytes(w, field, sub->b, sub->n);
}

void w_sv(wire *w, unsigned field, const char *s)
{
    wire v = { .n = 0 };
    if (*s)
        w_str(&v, 1, s);
    w_msg(w, field, &v);
}

void w_ts(wire *w, unsigned field, int64_t seconds, int32_t nanos)
{
    wire t = { .n = 0 };
    if (seconds)
        w_int(&t, 1, seconds);
    if (nanos)
        w_int(&t, 2, nanos);
    w_msg(w, field, &t);
}

static void print_hex(const char *label, const uint8_t *b, size_t n)
{
    fprintf(stderr, "%s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %02x", b[i]);
    fprintf(stderr, "\n");
}

void expect_bytes(const uint8_t *got, size_t n, const wire *want, const char *what)
{
    if (n != want->n || memcmp(got, want->b, n) != 0) {
        print_hex("got ", got, n);
        print_hex("want", want->b, want->n);
        fail_msg("%s does not pack to the protocol's bytes", what);
    }
}
