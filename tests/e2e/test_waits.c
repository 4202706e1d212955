/* test_waits.c — waits that hold no thread (dt_hub_wait_async), as the gRPC server uses them
 * for WaitForInstanceStart and WaitForInstanceCompletion: answered once, with the row the
 * episode that reached them left, by the hub's thread of waits; one already answerable, or
 * on an id no instance can have, answered at once by a read; one on an instance not started
 * yet waits for it; the caller is asked now and then whether it
 * still wants the wait, and a wait it lets go is never called again; a change another
 * process commits is seen by a read (the poll's, or on PostgreSQL, e2e-pg/, also the one its
 * notification wakes); a hub that closes ends the waits left. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

#define WAIT_MS 30000   /* generous: everything runs under ASan and UBSan */

/* gate: blocks until event "go" and returns its data. */
static dt_status gate(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

/* What a wait's callback saw: every call, and the last answer's status, state and output. */
typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, timeouts;
    int late;                     /* calls after the one that ended the wait: must be none */
    bool over;                    /* a call ended the wait */
    dt_status st;
    dt_runtime_status status;
    char output[256];
    char thread[16];              /* the name of the thread that answered */
    bool wait_on;                 /* what to answer a DT_ERR_TIMEOUT */
} seen;

static void seen_init(seen *s, bool wait_on)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->wait_on = wait_on;
}

static void seen_free(seen *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static bool answered(void *arg, dt_status st, const dt_instance_state *row, const dt_error *err)
{
    (void)err;
    seen *s = arg;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    if (s->over)
        s->late++;
    bool on = false;
    if (st == DT_ERR_TIMEOUT) {
        s->timeouts++;
        on = s->wait_on;
    } else {
        s->st = st;
        pthread_getname_np(pthread_self(), s->thread, sizeof s->thread);
        if (row) {
            s->status = row->status;
            snprintf(s->output, sizeof s->output, "%s", row->output ? row->output : "");
        }
    }
    s->over = !on;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return on;
}

/* seen_over: wait until the wait ended; false if it did not within MS. */
static bool seen_over(seen *s, int64_t ms)
{
    struct timespec until = dt_deadline_ms(ms);
    pthread_mutex_lock(&s->mu);
    while (!s->over && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
    }
    bool over = s->over;
    pthread_mutex_unlock(&s->mu);
    return over;
}

/* seen_completed: the wait ended, told the instance completed with OUTPUT. */
static void seen_completed(seen *s, const char *output)
{
    assert_true(seen_over(s, WAIT_MS));
    assert_int_equal(s->st, DT_OK);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, output);
}

/* seen_asked: wait until the caller was asked whether it still wants the wait (so the
 * wait's first read is done); false if it was not within MS. */
static bool seen_asked(seen *s, int64_t ms)
{
    struct timespec until = dt_deadline_ms(ms);
    pthread_mutex_lock(&s->mu);
    while (s->timeouts == 0 && !s->over && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0) {
    }
    bool asked = s->timeouts > 0;
    pthread_mutex_unlock(&s->mu);
    return asked;
}

/* seen_answers: how many calls were answers (not asks) so far. */
static int seen_answers(seen *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->calls - s->timeouts;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* answered_by: the hub's count of waits answered BY ("commit" or "read"), from its metrics. */
static int answered_by(dt_hub *hub, const char *by)
{
    char *text = NULL;
    assert_int_equal(dt_hub_metrics_text(hub, &text), DT_OK);
    char key[64];
    snprintf(key, sizeof key, "dtask_waits_answered_total{by=\"%s\"} ", by);
    const char *p = strstr(text, key);
    int n = p ? atoi(p + strlen(key)) : -1;
    free(text);
    return n;
}

static bool on_postgres(void)
{
    const char *b = getenv("DT_TEST_BACKEND");
    return b && strcmp(b, "postgres") == 0;
}

static void open_gated(hubfix *f, const char *name)
{
    hubfix_open(f, name, NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "gate", gate, NULL), NULL);
    hubfix_start(f);
}

static void start_gate(hubfix *f, const char *id)
{
    dt_error err = {0};
    dt_start_options so = {.instance_id = id};
    char out[DT_INSTANCE_ID_MAX + 1];
    assert_ok(dt_client_start(f->client, "gate", &so, out, &err), &err);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_start(f->client, id, WAIT_MS, f->arena, &s, &err), &err);
}

static void raise_go(dt_hub *hub, const char *id, const char *data)
{
    dt_error err = {0};
    assert_ok(dt_hub_raise_event(hub, id, "go", data, &err), &err);
}

static void test_a_wait_is_answered_once_with_the_row_its_episode_left(void **state)
{
    (void)state;
    hubfix f;
    open_gated(&f, "waits_answered");
    start_gate(&f, "w1");
    seen s;
    seen_init(&s, true);
    dt_error err = {0};
    assert_ok(dt_hub_wait_async(f.hub, "w1", DT_WAIT_COMPLETION, answered, &s, &err), &err);
    assert_true(seen_asked(&s, WAIT_MS));   /* read once, still waiting */
    assert_int_equal(seen_answers(&s), 0);   /* nothing to tell yet */
    raise_go(f.hub, "w1", "\"done\"");
    seen_completed(&s, "\"done\"");
    /* told by the commit of the episode, on the hub's thread of waits; nothing read. On
     * PostgreSQL the commit's notification comes back to this hub too, and may wake the wait
     * first: then it reads the row (one answer either way) */
    assert_string_equal(s.thread, "dt-waits");
    if (on_postgres()) {
        assert_int_equal(answered_by(f.hub, "commit") + answered_by(f.hub, "read"), 1);
    } else {
        assert_int_equal(answered_by(f.hub, "commit"), 1);
        assert_int_equal(answered_by(f.hub, "read"), 0);
    }
    /* the row it was told is the row stored */
    dt_instance_state *row = NULL;
    assert_ok(dt_client_get(f.client, "w1", f.arena, &row, &err), &err);
    assert_int_equal(row->status, DT_STATUS_COMPLETED);
    assert_string_equal(row->output, s.output);
    hubfix_close(&f);
    assert_int_equal(s.calls - s.timeouts, 1);
    assert_int_equal(s.late, 0);
    seen_free(&s);
}

static void test_a_wait_already_answerable_is_answered_at_once_by_a_read(void **state)
{
    (void)state;
    hubfix f;
    open_gated(&f, "waits_now");
    start_gate(&f, "w2");
    raise_go(f.hub, "w2", "1");
    dt_error err = {0};
    dt_instance_state *row = NULL;
    assert_ok(dt_client_wait_completion(f.client, "w2", WAIT_MS, f.arena, &row, &err), &err);
    /* done already; an id no instance can have (an entity's) */
    seen done, none;
    seen_init(&done, true);
    seen_init(&none, true);
    assert_ok(dt_hub_wait_async(f.hub, "w2", DT_WAIT_COMPLETION, answered, &done, &err), &err);
    assert_ok(dt_hub_wait_async(f.hub, "@ent@key", DT_WAIT_COMPLETION, answered, &none, &err),
              &err);
    assert_true(seen_over(&done, WAIT_MS));
    assert_true(seen_over(&none, WAIT_MS));
    assert_int_equal(done.st, DT_OK);
    assert_int_equal(done.status, DT_STATUS_COMPLETED);
    assert_string_equal(done.output, "1");
    assert_int_equal(none.st, DT_ERR_NOT_FOUND);
    assert_int_equal(answered_by(f.hub, "read"), 1);
    /* no id: refused, and never called */
    seen no_id;
    seen_init(&no_id, true);
    assert_int_equal(dt_hub_wait_async(f.hub, NULL, DT_WAIT_COMPLETION, answered, &no_id, &err),
                     DT_ERR_INVALID_ARG);
    hubfix_close(&f);
    assert_int_equal(done.calls - done.timeouts, 1);
    assert_int_equal(none.calls - none.timeouts, 1);
    assert_int_equal(done.late + none.late, 0);
    assert_int_equal(no_id.calls, 0);
    seen_free(&done);
    seen_free(&none);
    seen_free(&no_id);
}

static void test_a_wait_its_caller_lets_go_is_never_called_again(void **state)
{
    (void)state;
    hubfix f;
    open_gated(&f, "waits_let_go");
    start_gate(&f, "w3");
    seen s;
    seen_init(&s, false);   /* the first poll lets it go */
    dt_error err = {0};
    assert_ok(dt_hub_wait_async(f.hub, "w3", DT_WAIT_COMPLETION, answered, &s, &err), &err);
    assert_true(seen_over(&s, WAIT_MS));
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.timeouts, 1);
    /* the instance completes: the wait let go is not told */
    raise_go(f.hub, "w3", "2");
    dt_instance_state *row = NULL;
    assert_ok(dt_client_wait_completion(f.client, "w3", WAIT_MS, f.arena, &row, &err), &err);
    hubfix_close(&f);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.late, 0);
    seen_free(&s);
}

static void test_another_process_s_change_is_seen(void **state)
{
    (void)state;
    /* A second hub on the same store is another process as far as the first can tell: its
     * commits are not the first's, so its waits learn of them by a read: on SQLite the poll's;
     * on PostgreSQL the one the second's notification wakes (or the poll's, whichever comes
     * first). It runs the instance; the first only waits. */
    hubfix other;
    open_gated(&other, "waits_other");
    start_gate(&other, "w4");
    dt_hub *mine = NULL;
    dt_error err = {0};
    dt_hub_options o = {.db_path = other.db, .db_schema = other.schema[0] ? other.schema : NULL};
    assert_ok(dt_hub_open(&o, &mine, &err), &err);
    seen s;
    seen_init(&s, true);
    assert_ok(dt_hub_wait_async(mine, "w4", DT_WAIT_COMPLETION, answered, &s, &err), &err);
    raise_go(other.hub, "w4", "\"from elsewhere\"");
    seen_completed(&s, "\"from elsewhere\"");
    /* read by the thread of waits of the hub that only waited */
    assert_string_equal(s.thread, "dt-waits");
    assert_int_equal(answered_by(mine, "read"), 1);
    assert_int_equal(answered_by(mine, "commit"), 0);
    dt_hub_close(mine);
    hubfix_close(&other);
    assert_int_equal(s.late, 0);
    seen_free(&s);
}

/* wait_thread: a client's dt_client_wait_completion on its own thread (what an embedded
 * caller does). */
typedef struct sync_wait {
    hubfix *f;
    const char *id;
    int64_t ms;
    dt_status st;
    dt_time took;                 /* microseconds */
    char output[64];
} sync_wait;

static void *sync_wait_main(void *arg)
{
    sync_wait *w = arg;
    dt_arena *a = dt_arena_new();
    dt_instance_state *row = NULL;
    dt_error err = {0};
    dt_time t0 = dt_now();
    w->st = dt_client_wait_completion(w->f->client, w->id, w->ms, a, &row, &err);
    w->took = dt_now() - t0;
    if (w->st == DT_OK)
        snprintf(w->output, sizeof w->output, "%s", row->output ? row->output : "");
    dt_arena_free(a);
    return NULL;
}

static void test_a_wait_on_an_instance_not_started_yet_waits_for_it(void **state)
{
    (void)state;
    /* An instance an entity or an orchestration will start may be waited on before it
     * exists (the JavaScript SDK's export jobs do): the wait waits for it, as the Durable
     * Task Framework's does, and ends NOT_FOUND only at its timeout. */
    hubfix f;
    open_gated(&f, "waits_early");
    dt_error err = {0};
    sync_wait early = {.f = &f, .id = "w6", .ms = WAIT_MS};
    sync_wait never = {.f = &f, .id = "w6-never", .ms = 300};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, sync_wait_main, &early), 0);
    assert_int_equal(pthread_create(&t2, NULL, sync_wait_main, &never), 0);
    seen s;
    seen_init(&s, true);
    assert_ok(dt_hub_wait_async(f.hub, "w6", DT_WAIT_COMPLETION, answered, &s, &err), &err);
    assert_true(seen_asked(&s, WAIT_MS));    /* read: none yet, and still waiting */
    assert_int_equal(seen_answers(&s), 0);
    pthread_join(t2, NULL);
    assert_int_equal(never.st, DT_ERR_NOT_FOUND);   /* at its timeout, not at once */
    assert_true(never.took >= never.ms * 1000);
    start_gate(&f, "w6");
    raise_go(f.hub, "w6", "\"late\"");
    pthread_join(t1, NULL);
    assert_int_equal(early.st, DT_OK);
    assert_string_equal(early.output, "\"late\"");
    seen_completed(&s, "\"late\"");
    /* an id no instance can have is answered at once */
    dt_instance_state *row = NULL;
    dt_time t0 = dt_now();
    assert_int_equal(dt_client_wait_completion(f.client, "@ent@key", WAIT_MS, f.arena, &row, &err),
                     DT_ERR_NOT_FOUND);
    assert_true(dt_now() - t0 < WAIT_MS * 1000 / 2);
    hubfix_close(&f);
    assert_int_equal(s.late, 0);
    seen_free(&s);
}

static void test_a_hub_that_closes_ends_the_waits_left(void **state)
{
    (void)state;
    hubfix f;
    open_gated(&f, "waits_close");
    seen s[3];
    dt_error err = {0};
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "w5-%d", i);
        start_gate(&f, id);
        seen_init(&s[i], true);
        assert_ok(dt_hub_wait_async(f.hub, id, DT_WAIT_COMPLETION, answered, &s[i], &err),
                  &err);
    }
    hubfix_close(&f);
    for (int i = 0; i < 3; i++) {
        assert_true(s[i].over);
        assert_int_equal(s[i].st, DT_ERR_SHUTDOWN);
        assert_int_equal(s[i].calls - s[i].timeouts, 1);
        assert_int_equal(s[i].late, 0);
        seen_free(&s[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_wait_is_answered_once_with_the_row_its_episode_left),
        cmocka_unit_test(test_a_wait_already_answerable_is_answered_at_once_by_a_read),
        cmocka_unit_test(test_a_wait_its_caller_lets_go_is_never_called_again),
        cmocka_unit_test(test_another_process_s_change_is_seen),
        cmocka_unit_test(test_a_wait_on_an_instance_not_started_yet_waits_for_it),
        cmocka_unit_test(test_a_hub_that_closes_ends_the_waits_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
