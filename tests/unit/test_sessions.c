/* test_sessions.c — extended sessions (src/sdk/session.c) through the worker's executor,
 * driven by a small stand-in for the hub that keeps each instance's history as the hub
 * does (the new events, then one scheduling event per action). Each scenario runs with
 * sessions on and again with them off: every episode must produce the same actions and
 * custom status, so sessions change the cost of an episode and nothing a user sees. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/durabletask.h"
#include "testutil.h"

#define T0 1767225600000000LL   /* 2026-01-01, in microseconds */

/* ---- the stand-in hub ------------------------------------------------------------------- */

typedef struct sim {
    dt_arena *mem;                /* the history's events */
    dt_event hist[2048];
    size_t n;
    dt_event started;             /* delivered with the first episode, as the hub does */
    const char *id, *exec;
    dt_time now;
    bool done;
    char transcript[16384];       /* every episode's actions, as text */
    size_t tlen;
} sim;

static void sim_init(sim *s, const char *id, const char *name, const char *input)
{
    memset(s, 0, sizeof *s);
    s->mem = dt_arena_new();
    assert_non_null(s->mem);
    s->id = id;
    s->exec = "exec-1";
    s->now = T0;
    dt_event_init(&s->started, DT_EVENT_EXECUTION_STARTED, T0);
    s->started.name = name;
    s->started.input = input;
    s->started.execution_id = s->exec;
}

static void sim_free(sim *s)
{
    dt_arena_free(s->mem);
}

static void add(sim *s, const dt_event *e)
{
    assert_true(s->n < sizeof s->hist / sizeof s->hist[0]);
    assert_ok(dt_event_copy(s->mem, e, &s->hist[s->n]), NULL);
    s->n++;
}

static void note(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->transcript + s->tlen, sizeof s->transcript - s->tlen, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && s->tlen + (size_t)n < sizeof s->transcript);
    s->tlen += (size_t)n;
}

/* sim_episode: one episode with IN (after the hub's OrchestratorStarted) as the new events;
 * the history grows as the hub grows it. PAST_N: how much of the history the request shows
 * (normally s->n). The actions are returned in EP (the caller frees it). */
static dt_orch_result sim_episode_past(sim *s, dt_executor *ex, const dt_event *in, size_t n_in,
                                       size_t past_n, dt_arena *ep)
{
    dt_event *fresh = dt_arena_alloc(ep, (n_in + 2) * sizeof *fresh);
    assert_non_null(fresh);
    dt_event_init(&fresh[0], DT_EVENT_ORCHESTRATOR_STARTED, s->now);
    size_t k = 1;
    if (past_n == 0)
        fresh[k++] = s->started;
    for (size_t i = 0; i < n_in; i++)
        fresh[k++] = in[i];
    n_in = k - 1;
    dt_orch_request req = {s->id, s->exec, s->hist, past_n, fresh, n_in + 1, NULL, 0, 0};
    dt_orch_result res;
    memset(&res, 0, sizeof res);
    assert_ok(ex->run_orchestration(ex->data, &req, ep, &res), NULL);
    s->n = past_n;
    for (size_t i = 0; i < n_in + 1; i++)
        add(s, &fresh[i]);
    note(s, "episode:");
    for (size_t i = 0; i < res.n_actions; i++) {
        const dt_action *a = &res.actions[i];
        note(s, " [%d %d %s %s %d %s %s %s %lld]", (int)a->type, (int)a->id,
             a->name ? a->name : "-", a->input ? a->input : "-", (int)a->status,
             a->result ? a->result : "-",
             a->failure && a->failure->error_type ? a->failure->error_type : "-",
             a->failure && a->failure->message ? a->failure->message : "-",
             (long long)a->fire_at);
        dt_event e;
        switch (a->type) {
        case DT_ACTION_SCHEDULE_TASK:
            dt_event_init(&e, DT_EVENT_TASK_SCHEDULED, s->now);
            e.name = a->name;
            e.input = a->input;
            break;
        case DT_ACTION_CREATE_TIMER:
            dt_event_init(&e, DT_EVENT_TIMER_CREATED, s->now);
            e.fire_at = a->fire_at;
            break;
        case DT_ACTION_COMPLETE_ORCHESTRATION:
            s->done = true;
            continue;
        default:
            fail_msg("the stand-in hub does not apply action type %d", (int)a->type);
        }
        e.event_id = a->id;
        add(s, &e);
    }
    note(s, " status=%s\n", res.custom_status ? res.custom_status : "-");
    s->now += 1000000;
    return res;
}

static dt_orch_result sim_episode(sim *s, dt_executor *ex, const dt_event *in, size_t n_in,
                                  dt_arena *ep)
{
    return sim_episode_past(s, ex, in, n_in, s->n, ep);
}

/* answers: the events that answer RES's scheduled work: each activity completes with its
 * input as result, each timer fires. */
static size_t answers(sim *s, const dt_orch_result *res, dt_event *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < res->n_actions && n < cap; i++) {
        const dt_action *a = &res->actions[i];
        if (a->type == DT_ACTION_SCHEDULE_TASK) {
            dt_event_init(&out[n], DT_EVENT_TASK_COMPLETED, s->now);
            out[n].task_id = a->id;
            out[n].result = a->input;
            n++;
        } else if (a->type == DT_ACTION_CREATE_TIMER) {
            dt_event_init(&out[n], DT_EVENT_TIMER_FIRED, s->now);
            out[n].task_id = a->id;
            out[n].fire_at = a->fire_at;
            n++;
        }
    }
    return n;
}

/* run_to_end: episodes until the instance completes, each answering the last one's work;
 * an episode that scheduled nothing gets an EventRaised "go" with data 7. */
static void run_to_end(sim *s, dt_executor *ex, int max_episodes)
{
    dt_event in[64];
    size_t n_in = 0;
    for (int i = 0; i < max_episodes && !s->done; i++) {
        dt_arena *ep = dt_arena_new();
        dt_orch_result res = sim_episode(s, ex, in, n_in, ep);
        n_in = answers(s, &res, in, 64);
        if (n_in == 0 && !s->done) {
            dt_event_init(&in[0], DT_EVENT_EVENT_RAISED, s->now);
            in[0].name = "go";
            in[0].input = "7";
            n_in = 1;
        }
        /* answers copied what they need from the episode's actions into the history */
        for (size_t j = 0; j < n_in; j++)
            if (in[j].result)
                in[j].result = dt_arena_strdup(s->mem, in[j].result);
        dt_arena_free(ep);
    }
    assert_true(s->done);
}

/* ---- orchestrators -------------------------------------------------------------------------- */

static atomic_int entries;       /* times an orchestrator was entered from its start */
static atomic_int past_await;    /* times code ran past an await in the leak test */

static dt_status chain(dt_octx *ctx, const char *input, const char **output)
{
    atomic_fetch_add(&entries, 1);
    int n = atoi(input);
    /* memory from the first episode, written at every step: a session keeps it valid */
    int *seen = dt_alloc(ctx, (size_t)n * sizeof *seen);
    long sum = 0;
    for (int i = 0; i < n; i++) {
        const char *r = dt_await(ctx, dt_call_activity(ctx, "echo", dt_printf(ctx, "%d", i),
                                                       NULL));
        seen[i] = atoi(r);
        dt_octx_set_custom_status(ctx, dt_printf(ctx, "{\"step\":%d,\"replaying\":%s}", i,
                                                 dt_octx_is_replaying(ctx) ? "true" : "false"));
    }
    for (int i = 0; i < n; i++)
        sum += seen[i];
    *output = dt_printf(ctx, "%ld", sum);
    return DT_OK;
}

/* mixed: timers, events, when-all, orchestration time and GUIDs, all of which a session
 * must answer as a replay does */
static dt_status mixed(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    atomic_fetch_add(&entries, 1);
    const char *a = dt_await(ctx, dt_call_activity(ctx, "echo", "1", NULL));
    dt_time t1 = dt_octx_now(ctx);
    dt_octx_set_custom_status(ctx, dt_printf(ctx, "{\"a\":%s}", a));
    dt_await(ctx, dt_create_timer(ctx, t1 + 5000000));
    const char *e = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    dt_task *both[2] = {dt_call_activity(ctx, "echo", "2", NULL),
                        dt_call_activity(ctx, "echo", "3", NULL)};
    const char *all = dt_await(ctx, dt_when_all(ctx, both, 2));
    const char *guid = dt_octx_new_guid(ctx);
    *output = dt_printf(ctx, "[%s,%s,%s,%lld,%lld,\"%s\",%s]", a, e, all, (long long)t1,
                        (long long)dt_octx_now(ctx), guid,
                        dt_octx_is_replaying(ctx) ? "true" : "false");
    return DT_OK;
}

static dt_status two_steps(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    atomic_fetch_add(&entries, 1);
    const char *a = dt_await(ctx, dt_call_activity(ctx, "a", "1", NULL));
    const char *b = dt_await(ctx, dt_call_activity(ctx, "b", "2", NULL));
    *output = dt_printf(ctx, "[%s,%s]", a ? a : "null", b ? b : "null");
    return DT_OK;
}

static dt_status waits_forever(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    char *mine = dt_alloc(ctx, 1 << 16);   /* the session's arena holds it: freed with it */
    mine[0] = 'x';
    dt_await(ctx, dt_wait_for_event(ctx, "never"));
    atomic_fetch_add(&past_await, 1);
    *output = "1";
    return DT_OK;
}

static dt_worker *worker(size_t sessions)
{
    dt_worker *w;
    assert_ok(dt_worker_new(&w), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "chain", chain, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "mixed", mixed, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "two_steps", two_steps, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "waits_forever", waits_forever, NULL), NULL);
    dt_worker_set_sessions(w, sessions);
    return w;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_session_resumes_without_replaying(void **state)
{
    (void)state;
    dt_worker *on = worker(DT_SESSIONS_DEFAULT), *off = worker(0);
    dt_executor xon = dt_worker_executor(on), xoff = dt_worker_executor(off);
    sim a, b;
    sim_init(&a, "i1", "chain", "50");
    sim_init(&b, "i1", "chain", "50");
    atomic_store(&entries, 0);
    run_to_end(&a, &xon, 100);
    assert_int_equal(atomic_load(&entries), 1);   /* 51 episodes, entered once */
    dt_session_stats st;
    dt_worker_session_stats(on, &st);
    assert_int_equal(st.hits, 50);
    assert_int_equal(st.misses, 0);
    atomic_store(&entries, 0);
    run_to_end(&b, &xoff, 100);
    assert_int_equal(atomic_load(&entries), 51);  /* without: every episode from the start */
    assert_string_equal(a.transcript, b.transcript);
    assert_non_null(strstr(a.transcript, "1225"));   /* 0 + 1 + ... + 49 */
    sim_free(&a);
    sim_free(&b);
    dt_worker_free(on);
    dt_worker_free(off);
}

static void test_features_answer_as_in_a_replay(void **state)
{
    (void)state;
    dt_worker *on = worker(DT_SESSIONS_DEFAULT), *off = worker(0);
    dt_executor xon = dt_worker_executor(on), xoff = dt_worker_executor(off);
    sim a, b;
    sim_init(&a, "m1", "mixed", NULL);
    sim_init(&b, "m1", "mixed", NULL);
    atomic_store(&entries, 0);
    run_to_end(&a, &xon, 20);
    assert_int_equal(atomic_load(&entries), 1);
    run_to_end(&b, &xoff, 20);
    assert_string_equal(a.transcript, b.transcript);
    assert_non_null(strstr(a.transcript, "[1,7,[2,3],"));
    sim_free(&a);
    sim_free(&b);
    dt_worker_free(on);
    dt_worker_free(off);
}

/* suspend: events that arrive while suspended take effect at the resume, in a session too */
static void suspended(sim *s, dt_executor *ex)
{
    dt_arena *ep = dt_arena_new();
    dt_orch_result r = sim_episode(s, ex, NULL, 0, ep);           /* schedules echo 1 */
    dt_event in[3];
    dt_event_init(&in[0], DT_EVENT_EXECUTION_SUSPENDED, s->now);
    answers(s, &r, in + 1, 1);
    r = sim_episode(s, ex, in, 2, ep);                          /* suspended: no timer yet */
    assert_int_equal(r.n_actions, 0);
    dt_event_init(&in[0], DT_EVENT_EXECUTION_RESUMED, s->now);
    r = sim_episode(s, ex, in, 1, ep);                          /* the timer now */
    size_t n = answers(s, &r, in, 1);
    dt_event_init(&in[n], DT_EVENT_EXECUTION_SUSPENDED, s->now);
    dt_event_init(&in[n + 1], DT_EVENT_EVENT_RAISED, s->now);
    in[n + 1].name = "GO";                                      /* names ignore case */
    in[n + 1].input = "9";
    r = sim_episode(s, ex, in, n + 2, ep);                      /* held: nothing new */
    assert_int_equal(r.n_actions, 0);
    dt_event_init(&in[0], DT_EVENT_EXECUTION_RESUMED, s->now);
    r = sim_episode(s, ex, in, 1, ep);
    n = answers(s, &r, in, 3);
    r = sim_episode(s, ex, in, n, ep);
    assert_true(s->done);
    dt_arena_free(ep);
}

static void test_suspended_instance_resumes_as_in_a_replay(void **state)
{
    (void)state;
    dt_worker *on = worker(DT_SESSIONS_DEFAULT), *off = worker(0);
    dt_executor xon = dt_worker_executor(on), xoff = dt_worker_executor(off);
    sim a, b;
    sim_init(&a, "s1", "mixed", NULL);
    sim_init(&b, "s1", "mixed", NULL);
    atomic_store(&entries, 0);
    suspended(&a, &xon);
    assert_int_equal(atomic_load(&entries), 1);
    suspended(&b, &xoff);
    assert_string_equal(a.transcript, b.transcript);
    assert_non_null(strstr(a.transcript, "[1,9,[2,3],"));
    sim_free(&a);
    sim_free(&b);
    dt_worker_free(on);
    dt_worker_free(off);
}

/* With room for one session, two instances taking turns evict each other: their episodes
 * miss and replay in full, with the same outcome. */
static void test_evicted_session_replays_in_full(void **state)
{
    (void)state;
    dt_worker *w = worker(1);
    dt_executor ex = dt_worker_executor(w);
    sim x, y, ref;
    sim_init(&x, "x", "chain", "5");
    sim_init(&y, "y", "chain", "5");
    atomic_store(&entries, 0);
    dt_event inx[4], iny[4];
    size_t nx = 0, ny = 0;
    for (int i = 0; i < 6; i++) {
        dt_arena *ep = dt_arena_new();
        dt_orch_result r = sim_episode(&x, &ex, inx, nx, ep);
        nx = answers(&x, &r, inx, 4);
        for (size_t j = 0; j < nx; j++)
            inx[j].result = dt_arena_strdup(x.mem, inx[j].result);
        r = sim_episode(&y, &ex, iny, ny, ep);
        ny = answers(&y, &r, iny, 4);
        for (size_t j = 0; j < ny; j++)
            iny[j].result = dt_arena_strdup(y.mem, iny[j].result);
        dt_arena_free(ep);
    }
    assert_true(x.done && y.done);
    /* every episode from the start but y's last: x's last completed it, so its session was
     * dropped, not put in y's place */
    assert_int_equal(atomic_load(&entries), 11);
    dt_session_stats st;
    dt_worker_session_stats(w, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 9);
    dt_worker *off = worker(0);
    dt_executor xoff = dt_worker_executor(off);
    sim_init(&ref, "x", "chain", "5");
    run_to_end(&ref, &xoff, 10);
    assert_string_equal(x.transcript, ref.transcript);
    sim_free(&x);
    sim_free(&y);
    sim_free(&ref);
    dt_worker_free(w);
    dt_worker_free(off);
}

/* A request that does not continue what the session saw is answered from its own history:
 * a redelivery after a commit that did not happen (the past without the last episode), a
 * changed result in the last episode's events, another execution. */
static void test_history_that_differs_is_replayed_not_resumed(void **state)
{
    (void)state;
    dt_worker *w = worker(DT_SESSIONS_DEFAULT);
    dt_executor ex = dt_worker_executor(w);
    sim s;
    sim_init(&s, "d", "two_steps", NULL);
    atomic_store(&entries, 0);
    dt_arena *ep = dt_arena_new();
    dt_orch_result r = sim_episode(&s, &ex, NULL, 0, ep);       /* schedules a */
    dt_event in[2];
    answers(&s, &r, in, 1);
    in[0].result = "\"first\"";
    size_t before = s.n;
    sim_episode(&s, &ex, in, 1, ep);                            /* a done, schedules b */
    assert_int_equal(atomic_load(&entries), 1);
    /* the commit of that episode did not happen: the same past again, a new result */
    in[0].result = "\"second\"";
    r = sim_episode_past(&s, &ex, in, 1, before, ep);
    assert_int_equal(atomic_load(&entries), 2);
    assert_int_equal(r.n_actions, 1);
    assert_string_equal(r.actions[0].name, "b");
    /* b's answer, but the history now shows another result for a than the session saw
     * (same length): it is not the session's history, so it replays */
    for (size_t i = s.n; i-- > 0;)
        if (s.hist[i].type == DT_EVENT_TASK_COMPLETED) {
            s.hist[i].result = "\"other\"";
            break;
        }
    answers(&s, &r, in, 1);
    in[0].result = "\"b\"";
    r = sim_episode(&s, &ex, in, 1, ep);
    assert_int_equal(atomic_load(&entries), 3);
    assert_string_equal(r.actions[0].result, "[\"other\",\"b\"]");
    /* another execution of the same instance */
    sim t;
    sim_init(&t, "d", "two_steps", NULL);
    r = sim_episode(&t, &ex, NULL, 0, ep);
    answers(&t, &r, in, 1);
    r = sim_episode(&t, &ex, in, 1, ep);
    assert_int_equal(atomic_load(&entries), 4);
    t.exec = t.hist[1].execution_id = "exec-2";
    answers(&t, &r, in, 1);
    r = sim_episode(&t, &ex, in, 1, ep);
    assert_int_equal(atomic_load(&entries), 5);
    assert_true(t.done);
    dt_arena_free(ep);
    sim_free(&s);
    sim_free(&t);
    dt_worker_free(w);
}

/* run_tampered: two_steps's first episode, then a history whose scheduling event at
 * sequence 0 names 'z' (another deployment's code wrote it), answered. */
static dt_orch_result run_tampered(sim *s, dt_executor *ex, dt_arena *ep)
{
    dt_orch_result r = sim_episode(s, ex, NULL, 0, ep);
    assert_int_equal(s->hist[s->n - 1].type, DT_EVENT_TASK_SCHEDULED);
    s->hist[s->n - 1].name = "z";
    dt_event in[1];
    answers(s, &r, in, 1);
    return sim_episode(s, ex, in, 1, ep);
}

static void test_non_determinism_is_found_as_a_replay_finds_it(void **state)
{
    (void)state;
    dt_worker *on = worker(DT_SESSIONS_DEFAULT), *off = worker(0);
    dt_executor xon = dt_worker_executor(on), xoff = dt_worker_executor(off);
    dt_arena *ep = dt_arena_new();
    sim a, b;
    sim_init(&a, "n", "two_steps", NULL);
    sim_init(&b, "n", "two_steps", NULL);
    atomic_store(&entries, 0);
    dt_orch_result r = run_tampered(&a, &xon, ep);
    assert_int_equal(atomic_load(&entries), 2);   /* not resumed: replayed, and checked */
    assert_int_equal(r.n_actions, 1);
    assert_int_equal(r.actions[0].status, DT_STATUS_FAILED);
    assert_string_equal(r.actions[0].failure->error_type, "NonDeterminismError");
    assert_non_null(strstr(r.actions[0].failure->message, "TaskScheduled 'z' at sequence 0"));
    run_tampered(&b, &xoff, ep);
    assert_string_equal(a.transcript, b.transcript);
    /* a completion for a sequence number of another kind (a timer's firing for the pending
     * activity): whatever a replay makes of it, a resumed session makes the same */
    sim c, d;
    sim_init(&c, "k", "two_steps", NULL);
    sim_init(&d, "k", "two_steps", NULL);
    for (int run = 0; run < 2; run++) {
        sim *s = run ? &d : &c;
        dt_executor *ex = run ? &xoff : &xon;
        sim_episode(s, ex, NULL, 0, ep);
        dt_event in[1];
        dt_event_init(&in[0], DT_EVENT_TIMER_FIRED, s->now);
        in[0].task_id = 0;
        dt_orch_result q = sim_episode(s, ex, in, 1, ep);
        answers(s, &q, in, 1);
        sim_episode(s, ex, in, 1, ep);
        assert_true(s->done);
    }
    assert_string_equal(c.transcript, d.transcript);
    dt_session_stats st;
    dt_worker_session_stats(on, &st);
    assert_int_equal(st.hits, 2);   /* k resumed twice; n's second episode missed */
    assert_int_equal(st.misses, 1);
    dt_arena_free(ep);
    sim_free(&a);
    sim_free(&b);
    sim_free(&c);
    sim_free(&d);
    dt_worker_free(on);
    dt_worker_free(off);
}

/* Freeing the worker unwinds every suspended session: its code does not run on past the
 * await, and its memory goes (LeakSanitizer checks the rest in the sanitizer build). */
static void test_freeing_the_worker_ends_suspended_sessions(void **state)
{
    (void)state;
    dt_worker *w = worker(DT_SESSIONS_DEFAULT);
    dt_executor ex = dt_worker_executor(w);
    atomic_store(&past_await, 0);
    atomic_store(&entries, 0);
    dt_arena *ep = dt_arena_new();
    sim s[10];
    char ids[10][8];
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof ids[i], "w%d", i);
        sim_init(&s[i], ids[i], "waits_forever", NULL);
        dt_orch_result r = sim_episode(&s[i], &ex, NULL, 0, ep);
        assert_int_equal(r.n_actions, 0);
    }
    /* one more episode for the first: still waiting, resumed from its session */
    dt_event in[1];
    dt_event_init(&in[0], DT_EVENT_EVENT_RAISED, s[0].now);
    in[0].name = "other";
    sim_episode(&s[0], &ex, in, 1, ep);
    dt_session_stats st;
    dt_worker_session_stats(w, &st);
    assert_int_equal(st.hits, 1);
    /* fewer sessions allowed: the least recently used go now */
    dt_worker_set_sessions(w, 3);
    dt_worker_free(w);
    assert_int_equal(atomic_load(&past_await), 0);
    for (int i = 0; i < 10; i++)
        sim_free(&s[i]);
    dt_arena_free(ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_resumes_without_replaying),
        cmocka_unit_test(test_features_answer_as_in_a_replay),
        cmocka_unit_test(test_suspended_instance_resumes_as_in_a_replay),
        cmocka_unit_test(test_evicted_session_replays_in_full),
        cmocka_unit_test(test_history_that_differs_is_replayed_not_resumed),
        cmocka_unit_test(test_non_determinism_is_found_as_a_replay_finds_it),
        cmocka_unit_test(test_freeing_the_worker_ends_suspended_sessions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
