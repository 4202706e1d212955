/* test_entities.c — durable entities through the C SDK and a SQLite hub: entity operations and
 * state, failures that undo only themselves, signals from clients, orchestrations and other
 * entities, calls answered into the caller, critical sections (one holder at a time, any
 * lock order, released when the holder ends), and many concurrent increments adding up. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

/* ---- entities ------------------------------------------------------------------------------ */

/* counter: add N, get, reset, delete; "add_then_fail" adds and then fails (so nothing stays);
 * "forward" adds 1 here and signals its input (an entity id) to add 1 too. */
static dt_status counter(dt_ectx *ctx, const char *op, const char *input, const char **output)
{
    const char *state = dt_entity_get_state(ctx);
    long v = state ? atol(state) : 0;
    if (strcmp(op, "add") == 0 || strcmp(op, "add_then_fail") == 0) {
        v += input ? atol(input) : 1;
        dt_status st = dt_entity_set_state(ctx, dt_entity_printf(ctx, "%ld", v));
        if (st != DT_OK || strcmp(op, "add_then_fail") == 0)
            return dt_entity_fail(ctx, "Refused", "add_then_fail of %s", input ? input : "1");
        *output = dt_entity_printf(ctx, "%ld", v);
        return DT_OK;
    }
    if (strcmp(op, "get") == 0) {
        *output = dt_entity_printf(ctx, "%ld", v);
        return DT_OK;
    }
    if (strcmp(op, "huge") == 0) {   /* a state over DT_ENTITY_STATE_MAX */
        size_t n = DT_ENTITY_STATE_MAX + 16;
        char *big = dt_entity_alloc(ctx, n + 3);
        if (big == NULL)
            return DT_ERR_NOMEM;
        memset(big, 'x', n + 2);
        big[0] = big[n + 1] = '"';
        big[n + 2] = '\0';
        return dt_entity_set_state(ctx, big);
    }
    if (strcmp(op, "reset") == 0)
        return dt_entity_set_state(ctx, "0");
    if (strcmp(op, "delete") == 0) {
        dt_entity_delete_state(ctx);
        return DT_OK;
    }
    if (strcmp(op, "forward") == 0) {
        char target[DT_INSTANCE_ID_MAX + 1];
        snprintf(target, sizeof target, "%.*s", input ? (int)strlen(input) - 2 : 0,
                 input ? input + 1 : "");
        dt_status st = dt_entity_set_state(ctx, dt_entity_printf(ctx, "%ld", v + 1));
        return st == DT_OK ? dt_entity_signal_entity(ctx, target, "add", "1", 0) : st;
    }
    return dt_entity_fail(ctx, "UnknownOperation", "counter has no operation '%s'", op);
}

/* ---- activities: the critical-section log ------------------------------------------------ */

static atomic_int inside, overlaps, entries;

static dt_status enter_exit(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    (void)input;
    if (atomic_fetch_add(&inside, 1) != 0)
        atomic_fetch_add(&overlaps, 1);
    atomic_fetch_add(&entries, 1);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_fetch_sub(&inside, 1);
    *output = "true";
    return DT_OK;
}

/* ---- orchestrations ------------------------------------------------------------------------- */

/* calls: add 2, add 3 on its input entity, then get; the result is the get's */
static dt_status calls(dt_octx *ctx, const char *input, const char **output)
{
    char id[DT_INSTANCE_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)strlen(input) - 2, input + 1);
    dt_await(ctx, dt_call_entity(ctx, id, "add", "2"));
    dt_await(ctx, dt_call_entity(ctx, id, "add", "3"));
    *output = dt_await(ctx, dt_call_entity(ctx, id, "get", NULL));
    return DT_OK;
}

/* failing_call: a failing operation fails the call, with the entity's message */
static dt_status failing_call(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const dt_failure *f = NULL;
    dt_status st = dt_try_await(ctx, dt_call_entity(ctx, "@Counter@fc", "add_then_fail", "7"),
                                NULL, &f);
    *output = dt_printf(ctx, "{\"failed\":%s,\"type\":\"%s\",\"message\":\"%s\"}",
                        st == DT_ERR_TASK_FAILED ? "true" : "false",
                        f && f->error_type ? f->error_type : "",
                        f && f->message ? f->message : "");
    return DT_OK;
}

/* too_large: a call whose operation leaves a state over the limit fails, the state stays */
static dt_status too_large(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_await(ctx, dt_call_entity(ctx, "@counter@big", "add", "3"));
    const dt_failure *f = NULL;
    dt_try_await(ctx, dt_call_entity(ctx, "@counter@big", "huge", NULL), NULL, &f);
    const char *after = dt_await(ctx, dt_call_entity(ctx, "@counter@big", "get", NULL));
    *output = dt_printf(ctx, "{\"type\":\"%s\",\"after\":%s}",
                        f && f->error_type ? f->error_type : "", after ? after : "null");
    return DT_OK;
}

/* increments: INPUT times add 1 on @counter@many */
static dt_status increments(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    for (int i = 0; i < n; i++)
        dt_await(ctx, dt_call_entity(ctx, "@counter@many", "add", "1"));
    *output = "true";
    return DT_OK;
}

/* critical: lock @counter@x and @counter@y (in the order its input says), log entry and exit
 * with an activity, add 1 to both, unlock */
static dt_status critical(dt_octx *ctx, const char *input, const char **output)
{
    const char *xy[] = {"@counter@x", "@counter@y"}, *yx[] = {"@Counter@y", "@counter@x"};
    dt_await(ctx, dt_lock(ctx, strcmp(input, "1") == 0 ? yx : xy, 2));
    if (!dt_octx_in_critical_section(ctx))
        return dt_fail(ctx, "Broken", "not in a critical section after dt_lock");
    dt_await(ctx, dt_call_activity(ctx, "enter_exit", NULL, NULL));
    dt_await(ctx, dt_call_entity(ctx, "@counter@x", "add", "1"));
    dt_await(ctx, dt_call_entity(ctx, "@counter@y", "add", "1"));
    dt_unlock(ctx);
    *output = "true";
    return DT_OK;
}

/* lock_and_fail: lock @counter@held, then fail while holding it */
static dt_status lock_and_fail(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    (void)output;
    const char *ids[] = {"@counter@held"};
    dt_await(ctx, dt_lock(ctx, ids, 1));
    dt_await(ctx, dt_call_entity(ctx, "@counter@held", "add", "1"));
    return dt_fail(ctx, "Deliberate", "failing inside a critical section");
}

/* signal_then_read: a signal and a call from one orchestration arrive in order */
static dt_status signal_then_read(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_signal_entity(ctx, "@counter@sr", "add", "40", 0);
    *output = dt_await(ctx, dt_call_entity(ctx, "@counter@sr", "add", "2"));
    return DT_OK;
}

/* bad_target: a malformed entity id fails the orchestration, naming it */
static dt_status bad_target(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_call_entity(ctx, "counter-without-at", "get", NULL));
    return DT_OK;
}

/* classic_event: an event sent to an entity id (the older encoding) */
static dt_status classic_event(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    (void)output;
    dt_send_event(ctx, "@counter@ev", "add", "1");
    return DT_OK;
}

static void open_fix(hubfix *f, const char *name)
{
    hubfix_open(f, name, NULL);
    assert_ok(dt_worker_add_entity(f->worker, "Counter", counter, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "enter_exit", enter_exit, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "calls", calls, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "failing_call", failing_call, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "increments", increments, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "critical", critical, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "lock_and_fail", lock_and_fail, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "signal_then_read", signal_then_read, NULL),
              NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "bad_target", bad_target, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "classic_event", classic_event, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "too_large", too_large, NULL), NULL);
    hubfix_start(f);
}

/* state_of: entity ID's state once it equals WANT (or NULL: has none), within 20 s */
static void expect_state(hubfix *f, const char *id, const char *want)
{
    const char *last = "(none)";
    for (int i = 0; i < 2000; i++) {
        dt_arena *a = dt_arena_new();
        dt_entity_state *e = NULL;
        dt_status st = dt_client_get_entity(f->client, id, true, a, &e, NULL);
        bool ok = want ? st == DT_OK && e->state && strcmp(e->state, want) == 0
                       : st == DT_ERR_NOT_FOUND;
        if (st == DT_OK && e->state)
            last = dt_arena_strdup(f->arena, e->state);
        dt_arena_free(a);
        if (ok)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fail_msg("entity %s: state %s, want %s", id, last, want ? want : "none");
}

static void test_signals_from_a_client_change_state_and_delete_removes_it(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "ent-signals");
    dt_error err = {0};
    dt_entity_state *e = NULL;
    assert_int_equal(dt_client_get_entity(f.client, "@counter@c1", true, f.arena, &e, &err),
                     DT_ERR_NOT_FOUND);
    for (int i = 0; i < 3; i++)
        assert_ok(dt_client_signal_entity(f.client, "@Counter@c1", "add", "5", 0, &err), &err);
    expect_state(&f, "@counter@c1", "15");
    /* a failing operation undoes its own change only */
    assert_ok(dt_client_signal_entity(f.client, "@counter@c1", "add_then_fail", "100", 0, &err),
              &err);
    assert_ok(dt_client_signal_entity(f.client, "@counter@c1", "add", "1", 0, &err), &err);
    expect_state(&f, "@counter@c1", "16");
    /* an entity signals another */
    assert_ok(dt_client_signal_entity(f.client, "@counter@c1", "forward", "\"@counter@c2\"", 0,
                                      &err), &err);
    expect_state(&f, "@counter@c2", "1");
    expect_state(&f, "@counter@c1", "17");
    assert_ok(dt_client_signal_entity(f.client, "@counter@c1", "delete", NULL, 0, &err), &err);
    expect_state(&f, "@counter@c1", NULL);
    /* bad input: a malformed id, no operation */
    assert_int_equal(dt_client_signal_entity(f.client, "nope", "add", NULL, 0, &err),
                     DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "@name@key"));
    assert_int_equal(dt_client_signal_entity(f.client, "@counter@c1", "", NULL, 0, &err),
                     DT_ERR_INVALID_ARG);
    hubfix_close(&f);
}

static void test_calls_are_answered_and_failures_reach_the_caller(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "ent-calls");
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "calls", "\"@counter@k\"", id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "5");
    /* history: three calls, three answers, each answer naming its call's request id */
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_ENTITY_CALLED), 3);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_ENTITY_COMPLETED), 3);
    s = hubfix_run(&f, "failing_call", NULL, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_non_null(strstr(s->output, "\"failed\":true"));
    assert_non_null(strstr(s->output, "Refused"));
    assert_non_null(strstr(s->output, "add_then_fail of 7"));
    expect_state(&f, "@counter@fc", NULL);   /* the failed add left no state */
    s = hubfix_run(&f, "signal_then_read", NULL, id);
    assert_string_equal(s->output, "42");   /* the signal was applied before the call */
    s = hubfix_run(&f, "bad_target", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "InvalidEntityId");
    assert_non_null(strstr(s->failure->message, "counter-without-at"));
    s = hubfix_run(&f, "too_large", NULL, id);
    assert_string_equal(s->output, "{\"type\":\"EntityStateTooLarge\",\"after\":3}");
    s = hubfix_run(&f, "classic_event", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "UnsupportedEntityEncoding");
    assert_non_null(strstr(s->failure->message, "@counter@ev"));
    hubfix_close(&f);
}

/* Many orchestrations incrementing one counter at once: every increment counts once. */
static void test_concurrent_increments_add_up_exactly(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "ent-many");
    enum { ORCHS = 20, EACH = 10 };
    dt_error err = {0};
    char ids[ORCHS][DT_INSTANCE_ID_MAX + 1];
    for (int i = 0; i < ORCHS; i++) {
        dt_start_options so = {.input = "10"};
        assert_ok(dt_client_start(f.client, "increments", &so, ids[i], &err), &err);
    }
    for (int i = 0; i < ORCHS; i++) {
        dt_instance_state *s = NULL;
        assert_ok(dt_client_wait_completion(f.client, ids[i], 120000, f.arena, &s, &err), &err);
        assert_int_equal(s->status, DT_STATUS_COMPLETED);
    }
    char want[16];
    snprintf(want, sizeof want, "%d", ORCHS * EACH);
    expect_state(&f, "@counter@many", want);
    hubfix_close(&f);
}

/* Orchestrations locking the same two entities, in both orders: one holder at a time, all
 * finish, and the entities are unlocked after. */
static void test_critical_sections_exclude_each_other_and_never_deadlock(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "ent-locks");
    atomic_store(&overlaps, 0);
    atomic_store(&entries, 0);
    enum { N = 8 };
    dt_error err = {0};
    char ids[N][DT_INSTANCE_ID_MAX + 1];
    for (int i = 0; i < N; i++) {
        dt_start_options so = {.input = i % 2 ? "1" : "0"};
        assert_ok(dt_client_start(f.client, "critical", &so, ids[i], &err), &err);
    }
    for (int i = 0; i < N; i++) {
        dt_instance_state *s = NULL;
        assert_ok(dt_client_wait_completion(f.client, ids[i], 120000, f.arena, &s, &err), &err);
        assert_int_equal(s->status, DT_STATUS_COMPLETED);
    }
    assert_int_equal(atomic_load(&entries), N);
    assert_int_equal(atomic_load(&overlaps), 0);
    char want[16];
    snprintf(want, sizeof want, "%d", N);
    expect_state(&f, "@counter@x", want);
    expect_state(&f, "@counter@y", want);
    dt_entity_state *e = NULL;
    assert_ok(dt_client_get_entity(f.client, "@counter@x", false, f.arena, &e, &err), &err);
    assert_null(e->locked_by);
    hubfix_close(&f);
}

/* A holder that fails lets go: the entity is unlocked and others get it. */
static void test_an_ending_orchestration_releases_its_locks(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "ent-release");
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "lock_and_fail", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    dt_error err = {0};
    dt_entity_state *e = NULL;
    assert_ok(dt_client_get_entity(f.client, "@counter@held", false, f.arena, &e, &err), &err);
    assert_null(e->locked_by);
    /* and it takes work again: a client's signal is not held back */
    assert_ok(dt_client_signal_entity(f.client, "@counter@held", "add", "1", 0, &err), &err);
    expect_state(&f, "@counter@held", "2");
    /* cleaning finds nothing orphaned */
    size_t removed = 0, released = 0;
    assert_ok(dt_client_clean_entities(f.client, true, true, &removed, &released, &err), &err);
    assert_int_equal(released, 0);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signals_from_a_client_change_state_and_delete_removes_it),
        cmocka_unit_test(test_calls_are_answered_and_failures_reach_the_caller),
        cmocka_unit_test(test_concurrent_increments_add_up_exactly),
        cmocka_unit_test(test_critical_sections_exclude_each_other_and_never_deadlock),
        cmocka_unit_test(test_an_ending_orchestration_releases_its_locks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
