/* test_speculation.c — speculative episodes (src/hub/dispatch.c): an in-process activity's
 * result and the episode it wakes commit together. A chain commits its steps that way and
 * ends with the history it would have had without it; a result whose instance another
 * process holds at the commit goes to its inbox instead, and the instance goes on from there;
 * a terminate that came first is seen first; an episode the store refuses leaves the result
 * committed. SQLite only: the PostgreSQL store does not speculate (the store contract shows
 * that it refuses such a commit). */
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/store.h"
#include "hubfix.h"

#define STEPS 200

/* speculated: the hub's count of speculative episodes with OUTCOME ("applied", "refused") */
static long speculated(hubfix *f, const char *outcome)
{
    char *text = NULL;
    assert_ok(dt_hub_metrics_text(f->hub, &text), NULL);
    char key[96];
    snprintf(key, sizeof key, "dtask_speculative_episodes_total{outcome=\"%s\"} ", outcome);
    const char *p = strstr(text, key);
    if (p == NULL)
        fail_msg("no line %s in the metrics", key);
    long n = strtol(p + strlen(key), NULL, 10);
    free(text);
    return n;
}

/* run_chain: a chain of STEPS on a fresh hub (speculating unless NO_SPECULATION); its history
 * into *EV, *N (in F's arena), the hub's speculative episodes into *APPLIED. F stays open. */
static void run_chain(hubfix *f, bool no_speculation, dt_event **ev, size_t *n, long *applied)
{
    dt_hub_options o = {.no_speculation = no_speculation};
    hubfix_open(f, no_speculation ? "spec_off" : "spec_on", &o);
    assert_ok(dt_worker_add_orchestrator(f->worker, "chain", hubfix_chain, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "inc", hubfix_inc, NULL), NULL);
    hubfix_start(f);
    char id[DT_INSTANCE_ID_MAX + 1], in[16];
    snprintf(in, sizeof in, "%d", STEPS);
    dt_instance_state *s = hubfix_run(f, "chain", in, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, in);
    *ev = hubfix_history(f, id, n);
    *applied = speculated(f, "applied");
    assert_int_equal(speculated(f, "refused"), 0);
}

/* Every step of a chain commits with its result, and the history is the one the same chain
 * has without speculation: the same events, in the same order, with the same results. */
static void test_a_chain_commits_each_step_with_its_result(void **state)
{
    (void)state;
    hubfix on, off;
    dt_event *a, *b;
    size_t na, nb;
    long applied_on, applied_off;
    run_chain(&on, false, &a, &na, &applied_on);
    run_chain(&off, true, &b, &nb, &applied_off);
    /* every step's result, the first's too, unless the rings were full (then an activity
     * may be taken before its episode's history is back in the cache) */
    assert_true(applied_on >= STEPS * 9 / 10 && applied_on <= STEPS);
    assert_int_equal(applied_off, 0);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        if (a[i].type != b[i].type || a[i].event_id != b[i].event_id ||
            a[i].task_id != b[i].task_id)
            fail_msg("event %zu: %s %d/%d with speculation, %s %d/%d without", i,
                     dt_event_type_name(a[i].type), a[i].event_id, a[i].task_id,
                     dt_event_type_name(b[i].type), b[i].event_id, b[i].task_id);
        if ((a[i].result || b[i].result) &&
            (!a[i].result || !b[i].result || strcmp(a[i].result, b[i].result) != 0))
            fail_msg("event %zu: result %s with speculation, %s without", i,
                     a[i].result ? a[i].result : "(none)", b[i].result ? b[i].result : "(none)");
    }
    assert_int_equal(hubfix_count(a, na, DT_EVENT_TASK_COMPLETED), STEPS);
    hubfix_close(&on);
    hubfix_close(&off);
}

/* ---- a result for an instance held elsewhere --------------------------------------------- */

static atomic_bool gate_entered, gate_open;
static atomic_int gate_runs, after_runs;

/* gate: waits until the test opens it (at most 60 s), then returns its input */
static dt_status gate(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    atomic_fetch_add(&gate_runs, 1);
    atomic_store(&gate_entered, true);
    for (int i = 0; i < 6000 && !atomic_load(&gate_open); i++)
        test_sleep_ms(10);
    *output = input;
    return DT_OK;
}

static dt_status gated(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "gate", input, NULL));
    return DT_OK;
}

static dt_status after(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    atomic_fetch_add(&after_runs, 1);
    *output = input;
    return DT_OK;
}

static dt_status gated_twice(dt_octx *ctx, const char *input, const char **output)
{
    const char *v = dt_await(ctx, dt_call_activity(ctx, "gate", input, NULL));
    *output = dt_await(ctx, dt_call_activity(ctx, "after", v, NULL));
    return DT_OK;
}

/* open_gated: F, a hub (options O) whose worker runs "gated" and "gated_twice" with the
 * activities "gate" (shut) and "after"; starts ORCH with INPUT into ID and returns once its
 * gate is entered. */
static void open_gated(hubfix *f, const char *name, const dt_hub_options *o, const char *orch,
                       const char *input, char id[DT_INSTANCE_ID_MAX + 1])
{
    atomic_store(&gate_entered, false);
    atomic_store(&gate_open, false);
    atomic_store(&gate_runs, 0);
    atomic_store(&after_runs, 0);
    hubfix_open(f, name, o);
    assert_ok(dt_worker_add_orchestrator(f->worker, "gated", gated, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "gated_twice", gated_twice, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "gate", gate, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "after", after, NULL), NULL);
    hubfix_start(f);
    dt_error err = {0};
    dt_start_options so = {.input = input};
    assert_ok(dt_client_start(f->client, orch, &so, id, &err), &err);
    for (int i = 0; i < 6000 && !atomic_load(&gate_entered); i++)
        test_sleep_ms(10);
    assert_true(atomic_load(&gate_entered));
}

/* sql: run TEXT on the hub's SQLite file from a connection of the test's own (another
 * process, to the hub) */
static void sql(const char *db, const char *text)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    char *msg = NULL;
    if (sqlite3_exec(h, text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", text, msg ? msg : "?");
    sqlite3_close(h);
}

/* The instance is held by a lease of another process when the activity ends: the episode
 * run ahead is refused, the result goes to the inbox and waits there; once the lease goes,
 * the instance runs on from its stored history (its session and cached history dropped)
 * and completes with the result, answered once. */
static void test_a_result_for_an_instance_held_elsewhere_goes_to_its_inbox(void **state)
{
    (void)state;
    hubfix f;
    char id[DT_INSTANCE_ID_MAX + 1];
    open_gated(&f, "spec_held", NULL, "gated", "\"through\"", id);
    dt_error err = {0};

    char text[512];
    snprintf(text, sizeof text,
             "UPDATE instances SET lock_owner = 'elsewhere:1', lock_expires = %lld"
             " WHERE instance_id = '%s'",
             (long long)(dt_now() + 3600 * 1000000LL), id);
    sql(f.db, text);
    atomic_store(&gate_open, true);
    for (int i = 0; i < 6000 && speculated(&f, "refused") == 0; i++)
        test_sleep_ms(10);
    assert_int_equal(speculated(&f, "refused"), 1);
    assert_int_equal(speculated(&f, "applied"), 0);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_get(f.client, id, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_RUNNING);   /* held: nothing ran on */

    snprintf(text, sizeof text,
             "UPDATE instances SET lock_owner = NULL, lock_expires = 0 WHERE instance_id = '%s'",
             id);
    sql(f.db, text);
    assert_ok(dt_client_wait_completion(f.client, id, 60000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"through\"");
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 1);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_COMPLETED), 1);
    hubfix_close(&f);
}

/* A terminate sent by another process while the activity runs is seen before the result,
 * as without speculation: the instance ends Terminated and its code takes no further step.
 * The activity ends just after the terminate is sent, before this hub's next look at the
 * store would find it, so most often the claim refuses the speculative step for the message
 * waiting (without that clause the test fails: the step ran on, 3 times in 3); else the hub
 * saw the terminate first. */
static void test_a_terminate_that_came_first_is_seen_before_the_result(void **state)
{
    (void)state;
    hubfix f;
    char id[DT_INSTANCE_ID_MAX + 1];
    open_gated(&f, "spec_term", NULL, "gated_twice", "1", id);
    dt_error err = {0};

    dt_store *other = NULL;
    assert_ok(dt_store_open_sqlite(f.db, DT_SYNC_FULL, &other, &err), &err);
    dt_message m = {.instance_id = id};
    dt_event_init(&m.event, DT_EVENT_EXECUTION_TERMINATED, dt_now());
    m.event.input = "\"stop\"";
    assert_ok(dt_store_send_message(other, &m, &err), &err);
    dt_store_close(other);
    atomic_store(&gate_open, true);

    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f.client, id, 60000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_TERMINATED);
    assert_int_equal(atomic_load(&after_runs), 0);
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 1);
    hubfix_close(&f);
}

/* sql_count: the count TEXT (a SELECT count(*)) gives on the hub's SQLite file */
static long sql_count(const char *db, const char *text)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_busy_timeout(h, 10000);
    assert_int_equal(sqlite3_prepare_v2(h, text, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long n = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* An episode the store will not take (here a trigger refuses its history) does not take the
 * activity's result down with it: the result is committed alone, to the inbox, the activity
 * is not run again, and once the store takes episodes again the instance completes. */
static void test_an_episode_the_store_refuses_leaves_the_result_committed(void **state)
{
    (void)state;
    dt_hub_options o = {.lease_ms = 1000};   /* the failed episodes' leases end soon */
    hubfix f;
    char id[DT_INSTANCE_ID_MAX + 1];
    open_gated(&f, "spec_refused", &o, "gated", "\"kept\"", id);
    dt_error err = {0};

    char text[512];
    snprintf(text, sizeof text,
             "CREATE TRIGGER test_refuse BEFORE INSERT ON history"
             " WHEN NEW.instance_id = '%s' AND NEW.seq >= 3"
             " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
             id);
    sql(f.db, text);
    atomic_store(&gate_open, true);
    snprintf(text, sizeof text, "SELECT count(*) FROM inbox WHERE instance_id = '%s'", id);
    for (int i = 0; i < 6000 && sql_count(f.db, text) == 0; i++)
        test_sleep_ms(10);
    assert_int_equal(sql_count(f.db, text), 1);   /* the result, alone */
    assert_int_equal(speculated(&f, "applied"), 0);
    sql(f.db, "DROP TRIGGER test_refuse");

    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f.client, id, 60000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "\"kept\"");
    assert_int_equal(atomic_load(&gate_runs), 1);
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 1);
    hubfix_close(&f);
}

#define RACE_STEPS 60
#define RACE_EVENTS 20

/* steps_then_events: RACE_STEPS activities in a row, then RACE_EVENTS events "e" (raised
 * meanwhile, so most wait in history already); outputs the sum of the events' data */
static dt_status steps_then_events(dt_octx *ctx, const char *input, const char **output)
{
    const char *v = dt_await(ctx, dt_call_activity(ctx, "inc", input, NULL));
    for (int i = 1; i < RACE_STEPS; i++)
        v = dt_await(ctx, dt_call_activity(ctx, "inc", v, NULL));
    long sum = 0;
    for (int i = 0; i < RACE_EVENTS; i++)
        sum += strtol(dt_await(ctx, dt_wait_for_event(ctx, "e")), NULL, 10);
    *output = dt_printf(ctx, "[%s,%ld]", v, sum);
    return DT_OK;
}

/* Events raised while a chain runs race its speculative steps: each lands between two of
 * them (an episode of its own, or refusing a speculative step, whose result then goes with
 * it). None is lost, none applied twice, every step answered once. */
static void test_events_raised_during_a_chain_race_its_steps_and_lose_nothing(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "spec_race", NULL);
    assert_ok(dt_worker_add_orchestrator(f.worker, "race", steps_then_events, NULL), NULL);
    assert_ok(dt_worker_add_activity(f.worker, "inc", hubfix_inc, NULL), NULL);
    hubfix_start(&f);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_error err = {0};
    dt_start_options so = {.input = "0"};
    assert_ok(dt_client_start(f.client, "race", &so, id, &err), &err);
    long want = 0;
    for (int i = 1; i <= RACE_EVENTS; i++) {
        char data[16];
        snprintf(data, sizeof data, "%d", i);
        assert_ok(dt_client_raise_event(f.client, id, "e", data, &err), &err);
        want += i;
        test_sleep_ms(1 + i % 3);
    }
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f.client, id, 60000, f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    char out[64];
    snprintf(out, sizeof out, "[%d,%ld]", RACE_STEPS, want);
    assert_string_equal(s->output, out);
    size_t n;
    dt_event *ev = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), RACE_STEPS);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), RACE_STEPS);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_EVENT_RAISED), RACE_EVENTS);
    /* every step's result went one way or the other, never both; most went speculatively */
    long applied = speculated(&f, "applied");
    assert_true(applied > 0 && applied + speculated(&f, "refused") <= RACE_STEPS);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_chain_commits_each_step_with_its_result),
        cmocka_unit_test(test_a_result_for_an_instance_held_elsewhere_goes_to_its_inbox),
        cmocka_unit_test(test_a_terminate_that_came_first_is_seen_before_the_result),
        cmocka_unit_test(test_an_episode_the_store_refuses_leaves_the_result_committed),
        cmocka_unit_test(test_events_raised_during_a_chain_race_its_steps_and_lose_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
