/* test_rewind.c — rewinding a failed instance, end to end through the C SDK and a SQLite hub:
 * the failed activity runs again, the one that succeeded does not, a failed sub-orchestration
 * is rewound with its parent (started again when it was purged, unless another instance has
 * taken its id since), the history keeps what succeeded and says why it was rewound; an
 * instance that is not Failed is refused, naming its status. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

/* The activities count their runs; "fails_once" fails its first run of each test. */
static atomic_int good_runs, flaky_runs, child_runs, twice_runs, child_twice_runs;

static dt_status good(dt_actx *ctx, const char *input, const char **output)
{
    atomic_fetch_add(&good_runs, 1);
    *output = dt_activity_printf(ctx, "%s", input ? input : "null");
    return DT_OK;
}

static dt_status fails_once(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    if (atomic_fetch_add(&flaky_runs, 1) == 0)
        return dt_activity_fail(ctx, "Transient", "the first run fails");
    *output = dt_activity_printf(ctx, "\"second time lucky\"");
    return DT_OK;
}

static dt_status child_fails_once(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    if (atomic_fetch_add(&child_runs, 1) == 0)
        return dt_activity_fail(ctx, "Transient", "the child's first run fails");
    *output = dt_activity_printf(ctx, "\"child ok\"");
    return DT_OK;
}

static dt_status fails_twice(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    if (atomic_fetch_add(&twice_runs, 1) < 2)
        return dt_activity_fail(ctx, "Transient", "the first two runs fail");
    *output = dt_activity_printf(ctx, "\"third time\"");
    return DT_OK;
}

static dt_status child_fails_twice(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    if (atomic_fetch_add(&child_twice_runs, 1) < 2)
        return dt_activity_fail(ctx, "Transient", "the child's first two runs fail");
    *output = dt_activity_printf(ctx, "\"child third time\"");
    return DT_OK;
}

static dt_status twice_child(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_call_activity(ctx, "child_fails_twice", NULL, NULL));
    return DT_OK;
}

/* retrier: a good step; a flaky step whose retry succeeds; a step that fails both its
 * attempts; a child that fails both its attempts */
static dt_status retrier(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_retry_policy three = {.max_attempts = 3, .first_interval_ms = 1};
    dt_retry_policy two = {.max_attempts = 2, .first_interval_ms = 1};
    dt_task_options o3 = {.retry = &three}, o2 = {.retry = &two};
    const char *a = dt_await(ctx, dt_call_activity(ctx, "good", "1", NULL));
    const char *b = dt_await(ctx, dt_call_activity(ctx, "fails_once", NULL, &o3));
    const char *c = dt_await(ctx, dt_call_activity(ctx, "fails_twice", NULL, &o2));
    const char *d = dt_await(ctx, dt_call_sub_orchestrator(ctx, "twice_child", NULL, &o2));
    *output = dt_printf(ctx, "[%s,%s,%s,%s]", a, b, c, d);
    return DT_OK;
}

/* fan_retrier: the two retried steps side by side; their first failures may come in one
 * episode, which then creates both their timers */
static dt_status fan_retrier(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_retry_policy three = {.max_attempts = 3, .first_interval_ms = 1};
    dt_retry_policy two = {.max_attempts = 2, .first_interval_ms = 200};
    dt_task_options o3 = {.retry = &three}, o2 = {.retry = &two};
    dt_task *t[2] = {dt_call_activity(ctx, "fails_twice", NULL, &o2),
                     dt_call_activity(ctx, "fails_once", NULL, &o3)};
    *output = dt_await(ctx, dt_when_all(ctx, t, 2));
    return DT_OK;
}

static dt_status waiter(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

/* waiting_parent: a child that waits for an event, then one that fails: the parent fails
 * while the first still runs */
static dt_status waiting_parent(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_task *w = dt_call_sub_orchestrator(ctx, "waiter", NULL, NULL);
    const char *a = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", NULL, NULL));
    const char *b = dt_await(ctx, w);
    *output = dt_printf(ctx, "[%s,%s]", a, b);
    return DT_OK;
}

/* renumbering: a child created after a retried step's timer; the child fails at once, while
 * the step waits to retry. The step fails well within the code's timer (1 s; 100 ms was
 * once too short for a loaded machine, and the child then took the retry timer's number),
 * and its retry waits far longer than the child takes to fail. */
static dt_status renumbering(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_retry_policy slow = {.max_attempts = 2, .first_interval_ms = 60000};
    dt_task_options o = {.retry = &slow};
    dt_task *t[2];
    t[0] = dt_call_activity(ctx, "fails_twice", NULL, &o);
    dt_await(ctx, dt_create_timer(ctx, dt_octx_now(ctx) + 1000 * 1000));
    t[1] = dt_call_sub_orchestrator(ctx, "twice_child", NULL, NULL);
    const char *both = dt_await(ctx, dt_when_all(ctx, t, 2));
    /* a new child after the rewind: its number is the one the kept child had before */
    const char *c = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", NULL, NULL));
    *output = dt_printf(ctx, "[%s,%s]", both, c);
    return DT_OK;
}

static dt_status child(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_call_activity(ctx, "child_fails_once", NULL, NULL));
    return DT_OK;
}

/* parent: a good step, a flaky step, then a child whose own step is flaky */
static dt_status parent(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "good", "1", NULL));
    const char *b = dt_await(ctx, dt_call_activity(ctx, "fails_once", NULL, NULL));
    const char *c = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", NULL, NULL));
    *output = dt_printf(ctx, "[%s,%s,%s]", a, b, c);
    return DT_OK;
}

/* squatter_parent: a child under an id that another instance holds */
static dt_status squatter_parent(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    dt_task_options o = {.instance_id = "rewind-occupied"};
    *output = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", NULL, &o));
    return DT_OK;
}

static void open_fix(hubfix *f, const char *name)
{
    hubfix_open(f, name, NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "parent", parent, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "child", child, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "squatter_parent", squatter_parent, NULL),
              NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "retrier", retrier, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "fan_retrier", fan_retrier, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "renumbering", renumbering, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "waiter", waiter, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "waiting_parent", waiting_parent, NULL),
              NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "twice_child", twice_child, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "good", good, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "fails_twice", fails_twice, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "child_fails_twice", child_fails_twice, NULL),
              NULL);
    assert_ok(dt_worker_add_activity(f->worker, "fails_once", fails_once, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "child_fails_once", child_fails_once, NULL),
              NULL);
    hubfix_start(f);
}

static dt_instance_state *wait_done(hubfix *f, const char *id)
{
    dt_error err = {0};
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f->client, id, 60000, f->arena, &s, &err), &err);
    return s;
}

static void test_a_failed_activity_runs_again_and_what_succeeded_does_not(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "rewind-activity");
    atomic_store(&good_runs, 0);
    atomic_store(&flaky_runs, 0);
    atomic_store(&child_runs, 1);   /* the child's step succeeds at once here */
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "parent", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, "first run fails"));
    const char *failed_exec = dt_arena_strdup(f.arena, s->execution_id);

    dt_error err = {0};
    assert_ok(dt_client_rewind(f.client, id, "fixed the bug", &err), &err);
    s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[1,\"second time lucky\",\"child ok\"]");
    assert_null(s->failure);
    assert_string_not_equal(s->execution_id, failed_exec);   /* a new execution */
    assert_int_equal(atomic_load(&good_runs), 1);             /* kept, not run again */
    assert_int_equal(atomic_load(&flaky_runs), 2);

    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TASK_FAILED), 0);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_COMPLETED), 1);
    for (size_t i = 0; i < n; i++)
        if (h[i].type == DT_EVENT_EXECUTION_REWOUND)
            assert_string_equal(h[i].input, "fixed the bug");
    hubfix_close(&f);
}

/* run_to_failed_child: open F as NAME and run "parent" (its ID) until it fails because its
 * child (CHILD_ID) failed; the parent's own flaky step succeeds at once. */
static void run_to_failed_child(hubfix *f, const char *name, char *id, char *child_id)
{
    open_fix(f, name);
    atomic_store(&good_runs, 0);
    atomic_store(&flaky_runs, 1);
    atomic_store(&child_runs, 0);
    dt_instance_state *s = hubfix_run(f, "parent", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    size_t n = 0;
    dt_event *h = hubfix_history(f, id, &n);
    child_id[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (h[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED)
            strcpy(child_id, h[i].instance_id);
    assert_true(child_id[0] != '\0');
    assert_int_equal(wait_done(f, child_id)->status, DT_STATUS_FAILED);
}

/* expect_parent_completed: rewound parent ID completed with every step's result; its child's
 * step ran twice (failed, then again), its good step once. */
static void expect_parent_completed(hubfix *f, const char *id)
{
    dt_instance_state *s = wait_done(f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[1,\"second time lucky\",\"child ok\"]");
    assert_int_equal(atomic_load(&child_runs), 2);
    assert_int_equal(atomic_load(&good_runs), 1);
}

static void test_a_failed_sub_orchestration_is_rewound_with_its_parent(void **state)
{
    (void)state;
    hubfix f;
    char id[DT_INSTANCE_ID_MAX + 1], child_id[DT_INSTANCE_ID_MAX + 1];
    run_to_failed_child(&f, "rewind-child", id, child_id);
    size_t n = 0;
    dt_event *h;

    dt_error err = {0};
    assert_ok(dt_client_rewind(f.client, id, NULL, &err), &err);
    expect_parent_completed(&f, id);
    dt_instance_state *c = wait_done(&f, child_id);
    assert_int_equal(c->status, DT_STATUS_COMPLETED);   /* rewound too, and ran again */
    h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_FAILED), 0);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_CREATED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_COMPLETED), 1);
    hubfix_close(&f);
}

/* A failed child purged before its parent is rewound is started again as the parent made it
 * (the Durable Task Scheduler's answer, which the Python SDK's e2e suite asserts): it runs
 * from its start, reports to the parent's new execution, and the parent completes. */
static void test_a_purged_failed_child_starts_again_when_its_parent_is_rewound(void **state)
{
    (void)state;
    hubfix f;
    char id[DT_INSTANCE_ID_MAX + 1], child_id[DT_INSTANCE_ID_MAX + 1];
    run_to_failed_child(&f, "rewind-purged-child", id, child_id);
    size_t n = 0;
    dt_event *h;

    dt_error err = {0};
    assert_ok(dt_client_purge(f.client, child_id, &err), &err);
    dt_instance_state *gone = NULL;
    assert_int_equal(dt_client_get(f.client, child_id, f.arena, &gone, &err), DT_ERR_NOT_FOUND);
    dt_error_clear(&err);
    assert_ok(dt_client_rewind(f.client, id, "purged the child", &err), &err);
    expect_parent_completed(&f, id);
    /* the child is new: one run from its start, no failure, no rewind */
    dt_instance_state *c = wait_done(&f, child_id);
    assert_int_equal(c->status, DT_STATUS_COMPLETED);
    assert_string_equal(c->parent_instance_id, id);
    h = hubfix_history(&f, child_id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_STARTED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TASK_FAILED), 0);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 0);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TASK_COMPLETED), 1);
    h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_CREATED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_COMPLETED), 1);
    hubfix_close(&f);
}

/* expect_untouched: ID, an instance of no parent that held a child's id, is still Completed
 * with the N_BEFORE events it had, no rewind among them; its step ran once, after the
 * child's one failed run. */
static void expect_untouched(hubfix *f, const char *id, size_t n_before)
{
    dt_instance_state *o = wait_done(f, id);
    assert_int_equal(o->status, DT_STATUS_COMPLETED);
    assert_null(o->parent_instance_id);
    size_t n = 0;
    dt_event *h = hubfix_history(f, id, &n);
    assert_int_equal(n, n_before);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 0);
    assert_int_equal(atomic_load(&child_runs), 2);
}

/* A child that never started because another instance held its id is not that instance's
 * to rewind: the rewind tries the child again, and while the id is held the parent's task
 * fails again as at first; the holder is left as it was. */
static void test_a_rewind_does_not_touch_the_instance_that_held_a_childs_id(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "rewind-occupied");
    atomic_store(&child_runs, 1);   /* the holder's step succeeds */
    dt_error err = {0};
    char held[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "rewind-occupied"};
    assert_ok(dt_client_start(f.client, "child", &so, held, &err), &err);
    assert_int_equal(wait_done(&f, held)->status, DT_STATUS_COMPLETED);
    size_t n_before = 0;
    hubfix_history(&f, held, &n_before);

    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "squatter_parent", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, "already exists"));
    assert_ok(dt_client_rewind(f.client, id, "try again", &err), &err);
    s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, "already exists"));
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 1);
    /* the holder: still Completed, its history as it was */
    expect_untouched(&f, held, n_before);
    hubfix_close(&f);
}

/* A failed child purged, and its id taken since by an instance of no parent: the rewind is
 * not that instance's. The parent's task fails again as a refused child does, naming the id,
 * and the instance there keeps its history and status. */
static void test_a_rewind_leaves_alone_an_instance_that_took_a_purged_childs_id(void **state)
{
    (void)state;
    hubfix f;
    char id[DT_INSTANCE_ID_MAX + 1], child_id[DT_INSTANCE_ID_MAX + 1];
    run_to_failed_child(&f, "rewind-taken-id", id, child_id);
    dt_error err = {0};
    assert_ok(dt_client_purge(f.client, child_id, &err), &err);
    char taken[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = child_id};
    assert_ok(dt_client_start(f.client, "child", &so, taken, &err), &err);
    assert_int_equal(wait_done(&f, taken)->status, DT_STATUS_COMPLETED);   /* its step's 2nd run */
    size_t n_before = 0;
    hubfix_history(&f, taken, &n_before);

    assert_ok(dt_client_rewind(f.client, id, "purged the child", &err), &err);
    dt_instance_state *s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, "already exists"));
    assert_non_null(strstr(s->failure->message, child_id));
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 1);
    expect_untouched(&f, taken, n_before);
    hubfix_close(&f);
}

/* rewind_expect_failed: rewind ID, which then fails again with a message holding WHAT. */
static void rewind_expect_failed(hubfix *f, const char *id, const char *what)
{
    dt_error err = {0};
    assert_ok(dt_client_rewind(f->client, id, "again", &err), &err);
    dt_instance_state *s = wait_done(f, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, what));
}

/* Retries: a step whose attempts all failed runs again from its first attempt (its retry
 * timers go with its failures, or the replay would meet them where the step's next call
 * is); a step whose retry succeeded keeps its failed attempt and timer, and does not run
 * again; a child whose attempts all failed is rewound as its first attempt. */
static void test_a_rewind_runs_a_step_whose_retries_all_failed_from_its_first_attempt(
    void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "rewind-retries");
    atomic_store(&good_runs, 0);
    atomic_store(&flaky_runs, 0);
    atomic_store(&twice_runs, 0);
    atomic_store(&child_twice_runs, 0);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "retrier", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, "first two runs fail"));
    assert_int_equal(atomic_load(&twice_runs), 2);

    rewind_expect_failed(&f, id, "child's first two runs fail");   /* the step, then the child */
    assert_int_equal(atomic_load(&twice_runs), 3);
    assert_int_equal(atomic_load(&child_twice_runs), 2);
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    const char *kids[2] = {NULL, NULL};
    for (size_t i = 0, k = 0; i < n; i++)
        if (h[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED && k < 2)
            kids[k++] = dt_arena_strdup(f.arena, h[i].instance_id);
    assert_non_null(kids[1]);   /* the child's two attempts */
    dt_error err = {0};
    assert_ok(dt_client_rewind(f.client, id, "fixed the child", &err), &err);
    s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[1,\"second time lucky\",\"third time\","
                                   "\"child third time\"]");
    assert_int_equal(atomic_load(&good_runs), 1);
    assert_int_equal(atomic_load(&flaky_runs), 2);   /* its retry succeeded: kept */
    assert_int_equal(atomic_load(&twice_runs), 3);
    assert_int_equal(atomic_load(&child_twice_runs), 3);
    /* the first attempt's child was rewound and completed; the second's is left as it was */
    assert_int_equal(wait_done(&f, kids[0])->status, DT_STATUS_COMPLETED);
    assert_int_equal(wait_done(&f, kids[1])->status, DT_STATUS_FAILED);

    h = hubfix_history(&f, id, &n);
    /* left: the kept step's failed attempt and its timer */
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TASK_FAILED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TIMER_CREATED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TIMER_FIRED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TASK_SCHEDULED), 4);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_CREATED), 1);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_FAILED), 0);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 1);   /* the last says why */
    for (size_t i = 0; i < n; i++)
        if (h[i].type == DT_EVENT_EXECUTION_REWOUND)
            assert_string_equal(h[i].input, "fixed the child");
    hubfix_close(&f);
}

/* Two retried steps side by side: the one whose attempts all failed runs again; the other
 * runs again only if its chain had not finished when the instance failed. */
static void test_a_rewind_tells_side_by_side_retries_apart(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "rewind-fan-retries");
    atomic_store(&flaky_runs, 0);
    atomic_store(&twice_runs, 0);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "fan_retrier", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    bool flaky_done = hubfix_count(h, n, DT_EVENT_TASK_COMPLETED) == 1;

    dt_error err = {0};
    assert_ok(dt_client_rewind(f.client, id, NULL, &err), &err);
    s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[\"third time\",\"second time lucky\"]");
    assert_int_equal(atomic_load(&twice_runs), 3);
    assert_int_equal(atomic_load(&flaky_runs), flaky_done ? 2 : 3);
    h = hubfix_history(&f, id, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TASK_FAILED), flaky_done ? 1 : 0);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_TIMER_CREATED), flaky_done ? 1 : 0);
    hubfix_close(&f);
}

/* A retry chain taken out before a child's creation moves the child's task down a number
 * (the code will not take the chain's timer again): the rewound child reports under the
 * parent's new number, and the parent completes. A child the code makes next takes the
 * number the kept child had: its derived id (the new execution's) is another. */
static void test_a_child_after_a_retry_taken_out_reports_under_its_new_number(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "rewind-renumbered");
    atomic_store(&twice_runs, 1);         /* the step: fails once, then succeeds */
    atomic_store(&child_twice_runs, 1);   /* the child's step: the same */
    atomic_store(&child_runs, 1);         /* the last child's step succeeds */
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "renumbering", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(strstr(s->failure->message, "child's first two runs fail"));
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    int32_t child_seq = -1, timers = 0;
    const char *kid = NULL;
    for (size_t i = 0; i < n; i++) {
        timers += h[i].type == DT_EVENT_TIMER_CREATED;
        if (h[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED) {
            child_seq = h[i].event_id;
            kid = dt_arena_strdup(f.arena, h[i].instance_id);
        }
    }
    assert_int_equal(timers, 2);   /* the code's, and the step's retry (never fired) */
    assert_int_equal(child_seq, 3);

    dt_error err = {0};
    assert_ok(dt_client_rewind(f.client, id, NULL, &err), &err);
    s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    assert_string_equal(s->output, "[[\"third time\",\"child third time\"],\"child ok\"]");
    assert_int_equal(atomic_load(&twice_runs), 3);
    assert_int_equal(atomic_load(&child_twice_runs), 3);
    dt_instance_state *c = wait_done(&f, kid);   /* still the kept child, not replaced */
    assert_int_equal(c->status, DT_STATUS_COMPLETED);
    assert_string_equal(c->name, "twice_child");
    assert_string_equal(c->output, "\"child third time\"");
    h = hubfix_history(&f, id, &n);
    int32_t created[2], reported[2];   /* the kept child at 2, the new one at 3 */
    size_t nc = 0, nr = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED && nc < 2)
            created[nc++] = h[i].event_id;
        if (h[i].type == DT_EVENT_SUB_ORCHESTRATION_COMPLETED && nr < 2)
            reported[nr++] = h[i].task_id;
    }
    assert_int_equal(nc, 2);
    assert_int_equal(nr, 2);
    assert_int_equal(created[0], 2);
    assert_int_equal(created[1], 3);
    assert_int_equal(reported[0], 2);
    assert_int_equal(reported[1], 3);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_SUB_ORCHESTRATION_CREATED), 2);
    hubfix_close(&f);
}

/* What becomes of "waiting_parent"'s first child, which waits for an event, after the
 * parent failed: it is given its event after the parent's rewind (LATER) or before it
 * (FINISHED: its report went to the failed run), or it is terminated before it. */
enum child_fate { LATER, FINISHED, TERMINATED };

/* rewind_past_a_running_child: the rewound parent gets the child's outcome in each case;
 * a finished child is not run again (no rewind in its history, one start). */
static void rewind_past_a_running_child(const char *name, enum child_fate fate)
{
    hubfix f;
    open_fix(&f, name);
    atomic_store(&child_runs, 0);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "waiting_parent", NULL, id);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    size_t n = 0;
    dt_event *h = hubfix_history(&f, id, &n);
    const char *waiting = NULL;
    for (size_t i = 0; i < n && waiting == NULL; i++)
        if (h[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED)
            waiting = dt_arena_strdup(f.arena, h[i].instance_id);
    assert_non_null(waiting);
    dt_error err = {0};
    if (fate == FINISHED)
        assert_ok(dt_client_raise_event(f.client, waiting, "go", "\"went\"", &err), &err);
    if (fate == TERMINATED)
        assert_ok(dt_client_terminate(f.client, waiting, "\"stopped\"", false, &err), &err);
    if (fate != LATER)
        assert_true(dt_runtime_status_is_terminal(wait_done(&f, waiting)->status));
    assert_ok(dt_client_rewind(f.client, id, NULL, &err), &err);
    if (fate == LATER)
        assert_ok(dt_client_raise_event(f.client, waiting, "go", "\"went\"", &err), &err);
    s = wait_done(&f, id);
    dt_instance_state *w = wait_done(&f, waiting);
    if (fate == TERMINATED) {
        assert_int_equal(s->status, DT_STATUS_FAILED);   /* its task failed: terminated */
        assert_non_null(strstr(s->failure->message, "terminated"));
        assert_int_equal(w->status, DT_STATUS_TERMINATED);
    } else {
        assert_int_equal(s->status, DT_STATUS_COMPLETED);
        assert_string_equal(s->output, "[\"child ok\",\"went\"]");
        assert_int_equal(w->status, DT_STATUS_COMPLETED);
        assert_string_equal(w->output, "\"went\"");
    }
    h = hubfix_history(&f, waiting, &n);
    assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_STARTED), 1);
    if (fate != LATER)   /* LATER: the event may reach it before the parent's word does */
        assert_int_equal(hubfix_count(h, n, DT_EVENT_EXECUTION_REWOUND), 0);
    hubfix_close(&f);
}

static void test_a_child_still_running_when_its_parent_failed_reports_to_the_rewound_run(
    void **state)
{
    (void)state;
    rewind_past_a_running_child("rewind-running-child", LATER);
}

static void test_a_child_that_finished_after_its_parent_failed_reports_again_on_rewind(
    void **state)
{
    (void)state;
    rewind_past_a_running_child("rewind-finished-child", FINISHED);
    rewind_past_a_running_child("rewind-terminated-child", TERMINATED);
}

static void test_only_a_failed_instance_can_be_rewound(void **state)
{
    (void)state;
    hubfix f;
    open_fix(&f, "rewind-refused");
    atomic_store(&flaky_runs, 1);
    atomic_store(&child_runs, 1);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_instance_state *s = hubfix_run(&f, "parent", NULL, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    dt_error err = {0};
    assert_int_equal(dt_client_rewind(f.client, id, NULL, &err), DT_ERR_STATE);
    assert_non_null(strstr(err.message, "Completed"));
    assert_non_null(strstr(err.message, "only a Failed instance"));
    dt_error_clear(&err);
    assert_int_equal(dt_client_rewind(f.client, "no-such-instance", NULL, &err),
                     DT_ERR_NOT_FOUND);
    assert_int_equal(dt_client_rewind(f.client, "", NULL, &err), DT_ERR_INVALID_ARG);
    /* nothing changed: still Completed with its output */
    s = wait_done(&f, id);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_failed_activity_runs_again_and_what_succeeded_does_not),
        cmocka_unit_test(test_a_failed_sub_orchestration_is_rewound_with_its_parent),
        cmocka_unit_test(test_a_purged_failed_child_starts_again_when_its_parent_is_rewound),
        cmocka_unit_test(test_a_rewind_does_not_touch_the_instance_that_held_a_childs_id),
        cmocka_unit_test(test_a_rewind_leaves_alone_an_instance_that_took_a_purged_childs_id),
        cmocka_unit_test(test_a_rewind_runs_a_step_whose_retries_all_failed_from_its_first_attempt),
        cmocka_unit_test(test_a_rewind_tells_side_by_side_retries_apart),
        cmocka_unit_test(test_a_child_after_a_retry_taken_out_reports_under_its_new_number),
        cmocka_unit_test(
            test_a_child_still_running_when_its_parent_failed_reports_to_the_rewound_run),
        cmocka_unit_test(
            test_a_child_that_finished_after_its_parent_failed_reports_again_on_rewind),
        cmocka_unit_test(test_only_a_failed_instance_can_be_rewound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
