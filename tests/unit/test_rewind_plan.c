/* test_rewind_plan.c — what a rewind keeps, runs again and takes out (hub/rewind_plan.h), on
 * histories written out by hand in the shapes the SDKs record: lone failures, retry chains
 * that gave up or succeeded (the C and JavaScript SDKs' new number per attempt, the Python
 * SDK's one number, and its empty input on a retry where the first attempt had none), a
 * retry timer that fired as the run ended, a suspension between a
 * failure and its retry, side-by-side chains of one name, a code's own timer beside a
 * retry timer, a retry with no timer, and a fan-out of thousands of chains.
 *
 * A history is written as tokens: "|" an OrchestratorStarted; "Sn:name" a TaskScheduled and
 * "Kn:name" a SubOrchestrationInstanceCreated with id n ("name/input" gives an input); "Tn"
 * a TimerCreated; "Fn", "Gn", "Cn", "Wn" a TaskFailed, SubOrchestrationInstanceFailed,
 * TaskCompleted, TimerFired answering n; "XS", "XR", "XC" an ExecutionSuspended, Resumed,
 * Completed. The fates are a token each: k (kept), r (runs again), g (goes), | for "|". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/rewind_plan.h"
#include "testutil.h"

/* parse: the events of HISTORY, in ARENA */
static dt_event *parse(const char *history, dt_arena *arena, size_t *n)
{
    char *text = dt_arena_strdup(arena, history);
    dt_event *ev = dt_arena_alloc(arena, (strlen(history) + 1) * sizeof *ev);
    assert_non_null(text);
    assert_non_null(ev);
    *n = 0;
    dt_event_init(&ev[(*n)++], DT_EVENT_EXECUTION_STARTED, 0);
    for (char *save = NULL, *t = strtok_r(text, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        dt_event *e = &ev[*n];
        char *name = strchr(t, ':'), *input = NULL;
        if (name) {
            *name++ = '\0';
            if ((input = strchr(name, '/')) != NULL)
                *input++ = '\0';
        }
        static const struct {
            char c;
            dt_event_type type;
            bool scheduling;
        } kinds[] = {
            {'S', DT_EVENT_TASK_SCHEDULED, true}, {'K', DT_EVENT_SUB_ORCHESTRATION_CREATED, true},
            {'T', DT_EVENT_TIMER_CREATED, true},  {'F', DT_EVENT_TASK_FAILED, false},
            {'G', DT_EVENT_SUB_ORCHESTRATION_FAILED, false},
            {'C', DT_EVENT_TASK_COMPLETED, false}, {'W', DT_EVENT_TIMER_FIRED, false},
        };
        if (strcmp(t, "|") == 0)
            dt_event_init(e, DT_EVENT_ORCHESTRATOR_STARTED, 0);
        else if (strcmp(t, "XS") == 0)
            dt_event_init(e, DT_EVENT_EXECUTION_SUSPENDED, 0);
        else if (strcmp(t, "XR") == 0)
            dt_event_init(e, DT_EVENT_EXECUTION_RESUMED, 0);
        else if (strcmp(t, "XC") == 0)
            dt_event_init(e, DT_EVENT_EXECUTION_COMPLETED, 0);
        else {
            size_t k = 0;
            while (k < sizeof kinds / sizeof *kinds && kinds[k].c != t[0])
                k++;
            if (k == sizeof kinds / sizeof *kinds)
                fail_msg("bad token '%s'", t);
            dt_event_init(e, kinds[k].type, 0);
            int32_t id = (int32_t)atoi(t + 1);
            if (kinds[k].scheduling)
                e->event_id = id;
            else
                e->task_id = id;
            e->name = name;
            e->input = input;
        }
        (*n)++;
    }
    return ev;
}

/* expect: the plan for HISTORY has FATES and takes out the numbers GONE ("1,2"; "" none) */
static void expect(const char *history, const char *fates, const char *gone)
{
    dt_arena *arena = dt_arena_new();
    size_t n = 0;
    dt_event *ev = parse(history, arena, &n);
    rewind_plan p;
    assert_int_equal(rewind_plan_make(ev, n, arena, &p), DT_OK);
    char *got = dt_arena_alloc(arena, 2 * n + 1), *ids = dt_arena_alloc(arena, 12 * n + 1);
    assert_non_null(got);
    assert_non_null(ids);
    size_t at = 0;
    for (size_t i = 1; i < n; i++) {   /* the ExecutionStarted the parse put first: kept */
        assert_int_equal(p.fate[0], REWIND_KEEP);
        got[at++] = ev[i].type == DT_EVENT_ORCHESTRATOR_STARTED ? '|' : "krg"[p.fate[i]];
        got[at++] = i + 1 < n ? ' ' : '\0';
    }
    got[at] = '\0';
    ids[0] = '\0';
    for (size_t i = 0, len = 0; i < p.n_gone; i++)
        len += (size_t)sprintf(ids + len, "%s%d", i ? "," : "", p.gone[i]);
    if (strcmp(got, fates) != 0 || strcmp(ids, gone) != 0)
        fail_msg("%s\n  fates %s, want %s\n  gone [%s], want [%s]", history, got, fates, ids,
                 gone);
    dt_arena_free(arena);
}

static void test_a_lone_failure_runs_again_and_what_succeeded_stays(void **state)
{
    (void)state;
    expect("S0:A S1:B | C0 F1 XC", "k r | k g k", "");
    expect("S0:A T1 | F0 XC", "r r | g k", "");   /* a pending timer is made again */
}

static void test_a_chain_that_gave_up_runs_again_from_its_first_attempt(void **state)
{
    (void)state;
    expect("S0:A | F0 T1 | W1 S2:A | F2 XC", "r | g g | g g | g k", "1,2");
    expect("K0:A | G0 T1 | W1 K2:A | G2 XC", "r | g g | g g | g k", "1,2");
    /* the Python SDK: every attempt under the first one's number; only the timer's goes */
    expect("S1:A | F1 T2 | W2 S1:A | F1 XC", "r | g g | g g | g k", "2");
    /* as the Python SDK recorded it: a retry that succeeded, then an activity's and a
     * child's chains side by side that both gave up */
    expect("S1:flaky | F1 T2 | W2 S1:flaky/ | C1 S3:broken K4:kid | F3 T5 | G4 T6 "
           "| W5 W6 S3:broken/null K4:kid/ | F3 | G4 XC",
           "k | k k | k k | k r r | g g | g g | g g g g | g | g k", "5,6");
}

static void test_a_chain_that_succeeded_is_kept_whole(void **state)
{
    (void)state;
    expect("S0:A | F0 T1 | W1 S2:A | C2 S3:B | F3 XC", "k | k k | k k | k r | g k", "");
    expect("S1:A | F1 T2 | W2 S1:A | C1 S3:B | F3 XC", "k | k k | k k | k r | g k", "");
}

/* The C SDK keeps no actions of the episode that fails the run: a retry timer that fired
 * there never scheduled its attempt, and goes with its chain. */
static void test_a_retry_timer_that_fired_as_the_run_failed_goes(void **state)
{
    (void)state;
    expect("S0:A S1:B | F0 T2 | W2 F1 XC", "r r | g g | g g k", "2");
}

/* While suspended, each event is recorded under an OrchestratorStarted of its own, and the
 * code runs when resumed: the chain spans those episodes. */
static void test_a_suspension_between_a_failure_and_its_retry_keeps_the_chain(void **state)
{
    (void)state;
    expect("S0:A | F0 T1 XS | W1 | XR S2:A | C2 S3:B | F3 XC",
           "k | k k k | k | k k | k r | g k", "");
}

/* Two chains of one name: each attempt is matched to the chain whose input it has, not
 * to the one whose failure came first. */
static void test_side_by_side_chains_are_told_apart_by_their_input(void **state)
{
    (void)state;
    expect("S0:P/a S1:P/b | F0 F1 T2 T3 | W3 W2 S4:P/b S5:P/a | C5 F4 XC",
           "k r | k g k g | g k g k | k g k", "3,4");
}

/* The code's own timer, pending, in the failure's episode ahead of the retry timer: the
 * retry is the timer whose firing scheduled the next attempt; the code's own runs again. */
static void test_a_codes_own_timer_is_not_taken_for_a_retry(void **state)
{
    (void)state;
    expect("S0:A S1:X | C1 F0 T2 T3 | W3 S4:A | F4 XC", "r k | k g r g | g g | g k", "3,4");
    /* a fired timer whose episode scheduled something else is the code's too */
    expect("S0:A | F0 T1 | W1 S2:B | F2 XC", "r | g k | k r | g k", "");
}

/* A failure with no retry between two retried calls: each chain is still found (a free
 * entry a search passed over is not skipped by the next one). */
static void test_a_lone_failure_between_retried_calls_leaves_their_chains_whole(void **state)
{
    (void)state;
    expect("S0:Ping S1:Ack S2:Ping | F0 F1 F2 T3 T4 | W3 W4 S5:Ping S6:Ping | C5 C6 S7:Z | F7 XC",
           "k r k | k g k k k | k k k k | k k r | g k", "");
    expect("S0:P/a S1:Q S2:P/c | F0 F1 F2 T3 T4 | W3 W4 S5:P/a S6:P/c | C5 F6 XC",
           "k r r | k g g k g | k g k g | k g k", "4,6");
}

/* A retry handler may schedule the next attempt at once, in the failure's episode. */
static void test_a_retry_with_no_timer_is_a_chain(void **state)
{
    (void)state;
    expect("S0:A | F0 S1:A | C1 S2:B | F2 XC", "k | k k | k r | g k", "");
    expect("S0:A | F0 S1:A | F1 XC", "r | g g | g k", "1");
}

/* Thousands of chains failing in one episode, their timers firing in one: each is found
 * (each failure looks past the timers others took in a step, not one by one). */
static void test_a_fan_out_of_thousands_of_chains_is_planned_whole(void **state)
{
    (void)state;
    enum { N = 3000 };
    dt_arena *arena = dt_arena_new();
    size_t cap = 8 * N + 16, n = 0;
    dt_event *ev = dt_arena_alloc(arena, cap * sizeof *ev);
    assert_non_null(ev);
    dt_event_init(&ev[n++], DT_EVENT_EXECUTION_STARTED, 0);
    dt_event_init(&ev[n++], DT_EVENT_ORCHESTRATOR_STARTED, 0);
    for (int i = 0; i < N; i++) {   /* S i:P */
        dt_event_init(&ev[n], DT_EVENT_TASK_SCHEDULED, 0);
        ev[n].event_id = i;
        ev[n++].name = "P";
    }
    dt_event_init(&ev[n++], DT_EVENT_ORCHESTRATOR_STARTED, 0);
    for (int i = 0; i < N; i++) {   /* F i */
        dt_event_init(&ev[n], DT_EVENT_TASK_FAILED, 0);
        ev[n++].task_id = i;
    }
    for (int i = 0; i < N; i++) {   /* T N+i */
        dt_event_init(&ev[n], DT_EVENT_TIMER_CREATED, 0);
        ev[n++].event_id = N + i;
    }
    dt_event_init(&ev[n++], DT_EVENT_ORCHESTRATOR_STARTED, 0);
    for (int i = 0; i < N; i++) {   /* W N+i */
        dt_event_init(&ev[n], DT_EVENT_TIMER_FIRED, 0);
        ev[n++].task_id = N + i;
    }
    for (int i = 0; i < N; i++) {   /* S 2N+i:P */
        dt_event_init(&ev[n], DT_EVENT_TASK_SCHEDULED, 0);
        ev[n].event_id = 2 * N + i;
        ev[n++].name = "P";
    }
    dt_event_init(&ev[n++], DT_EVENT_ORCHESTRATOR_STARTED, 0);
    for (int i = 0; i < N; i++) {   /* F 2N+i */
        dt_event_init(&ev[n], DT_EVENT_TASK_FAILED, 0);
        ev[n++].task_id = 2 * N + i;
    }
    dt_event_init(&ev[n++], DT_EVENT_EXECUTION_COMPLETED, 0);
    rewind_plan p;
    assert_int_equal(rewind_plan_make(ev, n, arena, &p), DT_OK);
    size_t rerun = 0, gone = 0;
    for (size_t i = 0; i < n; i++) {
        rerun += p.fate[i] == REWIND_RERUN;
        gone += p.fate[i] == REWIND_GONE;
    }
    assert_int_equal(rerun, N);          /* the first attempts */
    assert_int_equal(gone, 5 * N);       /* failures, timers, firings, attempts, failures */
    assert_int_equal(p.n_gone, 2 * N);   /* every timer's and later attempt's number */
    dt_arena_free(arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_lone_failure_runs_again_and_what_succeeded_stays),
        cmocka_unit_test(test_a_chain_that_gave_up_runs_again_from_its_first_attempt),
        cmocka_unit_test(test_a_chain_that_succeeded_is_kept_whole),
        cmocka_unit_test(test_a_retry_timer_that_fired_as_the_run_failed_goes),
        cmocka_unit_test(test_a_suspension_between_a_failure_and_its_retry_keeps_the_chain),
        cmocka_unit_test(test_side_by_side_chains_are_told_apart_by_their_input),
        cmocka_unit_test(test_a_codes_own_timer_is_not_taken_for_a_retry),
        cmocka_unit_test(test_a_lone_failure_between_retried_calls_leaves_their_chains_whole),
        cmocka_unit_test(test_a_retry_with_no_timer_is_a_chain),
        cmocka_unit_test(test_a_fan_out_of_thousands_of_chains_is_planned_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
