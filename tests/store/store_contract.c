/* store_contract.c — the store conformance suite. Every test talks to a store only through
 * durabletask/store.h, so each backend (SQLite, PostgreSQL, ...) runs it unchanged through
 * store_contract_run with its own factory. Times are explicit (a fixed T0 plus offsets), so
 * lease expiry is tested without sleeping. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_contract.h"
#include "testutil.h"

#define T0 ((dt_time)1700000000000000LL)
#define SEC ((int64_t)1000000)
#define LEASE (30 * SEC)

static store_contract_open_fn g_open;

typedef struct fixture {
    char dir[1024];
    dt_store *store;
    dt_arena *arena;   /* for what the test reads; freed at teardown */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "%s", test_tmpdir("store"));
    dt_error err;
    dt_error_clear(&err);
    dt_status st = g_open(fx->dir, &fx->store, &err);
    fx->arena = dt_arena_new();
    if (st != DT_OK || fx->arena == NULL) {
        fprintf(stderr, "cannot open store in %s: %s: %s\n", fx->dir, dt_strerror(st),
                err.message);
        dt_store_close(fx->store);
        dt_arena_free(fx->arena);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    dt_store_close(fx->store);
    dt_arena_free(fx->arena);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void assert_str(const char *got, const char *want)
{
    if (got == NULL && want == NULL)
        return;
    if (got == NULL || want == NULL || strcmp(got, want) != 0)
        fail_msg("got '%s', want '%s'", got ? got : "(null)", want ? want : "(null)");
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("'%s' does not mention '%s'", text, needle);
}

static dt_new_instance new_instance(const char *id, const char *input)
{
    dt_new_instance ni;
    memset(&ni, 0, sizeof ni);
    ni.instance_id = id;
    ni.execution_id = "exec-1";
    ni.name = "orch";
    ni.input = input;
    ni.created_at = T0;
    return ni;
}

static void create(fixture *fx, const char *id, const char *input)
{
    dt_new_instance ni = new_instance(id, input);
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
}

static dt_event ev(dt_event_type t)
{
    dt_event e;
    dt_event_init(&e, t, T0);
    return e;
}

static dt_instance_state *get(fixture *fx, const char *id)
{
    dt_instance_state *s = NULL;
    dt_error err;
    assert_ok(dt_store_get_instance(fx->store, id, fx->arena, &s, &err), &err);
    assert_non_null(s);
    return s;
}

static dt_event *history(fixture *fx, const char *id, size_t *n)
{
    dt_event *h = NULL;
    dt_error err;
    assert_ok(dt_store_get_history(fx->store, id, fx->arena, &h, n, &err), &err);
    return h;
}

/* load: dt_store_load_history of ID from FROM_SEQ (into the fixture's arena). */
static dt_event *load(fixture *fx, const char *id, size_t from_seq, size_t *n)
{
    dt_event *h = NULL;
    *n = 99;
    dt_error err;
    assert_ok(dt_store_load_history(fx->store, id, from_seq, fx->arena, &h, n, &err), &err);
    if (*n == 0)
        assert_null(h);
    return h;
}

/* lease_orch: lease at most MAX work items; returns how many (into ITEMS). */
static size_t lease_orch(fixture *fx, const char *owner, dt_time now, int64_t lease_us,
                         size_t max, dt_orch_item **items)
{
    size_t n = 99;
    dt_error err;
    assert_ok(dt_store_lease_orchestrations(fx->store, owner, now, lease_us, max, NULL, items,
                                            &n,
                                            &err),
              &err);
    assert_true(n <= max);
    return n;
}

/* lease_one: the one work item that should be there (fails the test if none). */
static dt_orch_item *lease_one(fixture *fx, const char *owner, dt_time now, int64_t lease_us)
{
    dt_orch_item *items[1] = {NULL};
    if (lease_orch(fx, owner, now, lease_us, 1, items) != 1)
        fail_msg("expected a work item for %s at T0%+llds", owner,
                 (long long)((now - T0) / SEC));
    return items[0];
}

/* expect_no_orch_work: a lease at NOW finds nothing. */
static void expect_no_orch_work(fixture *fx, dt_time now)
{
    dt_orch_item *items[8];
    size_t n = lease_orch(fx, "nobody", now, LEASE, 8, items);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "unexpected work item for '%s'\n", items[i]->instance_id);
        dt_orch_item_free(items[i]);
    }
    assert_int_equal(n, 0);
}

static size_t lease_acts(fixture *fx, const char *owner, dt_time now, int64_t lease_us,
                         size_t max, dt_activity_item **items)
{
    size_t n = 99;
    dt_error err;
    assert_ok(dt_store_lease_activities(fx->store, owner, now, lease_us, max, NULL, items, &n,
                                        &err),
              &err);
    assert_true(n <= max);
    return n;
}

static void expect_no_activity_work(fixture *fx, dt_time now)
{
    dt_activity_item *items[8];
    size_t n = lease_acts(fx, "nobody", now, LEASE, 8, items);
    for (size_t i = 0; i < n; i++)
        dt_activity_item_free(items[i]);
    assert_int_equal(n, 0);
}

static dt_commit episode_commit(const dt_orch_item *item, const dt_event *append, size_t n,
                                dt_runtime_status status)
{
    dt_commit c;
    memset(&c, 0, sizeof c);
    c.kind = DT_COMMIT_EPISODE;
    c.u.episode.item = item;
    c.u.episode.append = append;
    c.u.episode.n_append = n;
    c.u.episode.status = status;
    c.result = DT_ERR_INTERNAL;   /* the store must set it */
    return c;
}

static void commit_expect(fixture *fx, dt_commit *c, dt_status want)
{
    dt_error err;
    assert_ok(dt_store_commit(fx->store, c, 1, &err), &err);
    if (c->result != want)
        fail_msg("commit entry result %s, want %s (%s)", dt_strerror(c->result),
                 dt_strerror(want), err.message);
}

/* run_first_episode: lease ID, commit OrchestratorStarted + ExecutionStarted + (if ACTIVITY)
 * TaskScheduled 0 "act" with its activity work item; status Running. */
static void run_first_episode(fixture *fx, const char *id, const char *activity)
{
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_string_equal(item->instance_id, id);
    dt_event app[3] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0],
                       ev(DT_EVENT_TASK_SCHEDULED)};
    app[2].event_id = 0;
    app[2].name = activity;
    app[2].input = "\"x\"";
    dt_new_activity act = {.instance_id = id, .execution_id = item->state.execution_id,
                           .scheduled = &app[2], .visible_at = 0};
    dt_commit c = episode_commit(item, app, activity ? 3 : 2, DT_STATUS_RUNNING);
    c.u.episode.name = item->incoming[0].name;
    c.u.episode.input = item->incoming[0].input;
    if (activity) {
        c.u.episode.activities = &act;
        c.u.episode.n_activities = 1;
    }
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
}

/* ---- instances ------------------------------------------------------------------------------ */

static void test_created_instance_is_pending_with_its_fields(void **state)
{
    fixture *fx = *state;
    dt_new_instance ni = new_instance("order-1", "{\"n\":1}");
    ni.version = "v2";
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);

    dt_instance_state *s = get(fx, "order-1");
    assert_str(s->instance_id, "order-1");
    assert_str(s->execution_id, "exec-1");
    assert_str(s->name, "orch");
    assert_str(s->version, "v2");
    assert_str(s->input, "{\"n\":1}");
    assert_int_equal(s->status, DT_STATUS_PENDING);
    assert_null(s->output);
    assert_null(s->custom_status);
    assert_null(s->failure);
    assert_null(s->parent_instance_id);
    assert_int_equal(s->created_at, T0);
    assert_int_equal(s->last_updated_at, T0);
    assert_int_equal(s->completed_at, 0);
    assert_int_equal(s->scheduled_start, 0);

    size_t n = 99;
    history(fx, "order-1", &n);
    assert_int_equal(n, 0);   /* has not run yet */
}

static void test_missing_instance_is_not_found(void **state)
{
    fixture *fx = *state;
    dt_instance_state *s = NULL;
    dt_error err;
    dt_error_clear(&err);
    assert_int_equal(dt_store_get_instance(fx->store, "nope", fx->arena, &s, &err),
                     DT_ERR_NOT_FOUND);
    assert_contains(err.message, "nope");
    dt_event *h = NULL;
    size_t n = 0;
    assert_int_equal(dt_store_get_history(fx->store, "nope", fx->arena, &h, &n, &err),
                     DT_ERR_NOT_FOUND);
}

static void test_duplicate_live_id_is_refused_and_nothing_changes(void **state)
{
    fixture *fx = *state;
    create(fx, "dup", "1");
    dt_new_instance again = new_instance("dup", "2");
    again.execution_id = "exec-2";
    dt_error err;
    dt_error_clear(&err);
    assert_int_equal(dt_store_create_instance(fx->store, &again, &err), DT_ERR_ALREADY_EXISTS);
    assert_contains(err.message, "dup");
    assert_contains(err.message, "Pending");

    dt_instance_state *s = get(fx, "dup");
    assert_str(s->input, "1");
    assert_str(s->execution_id, "exec-1");
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->n_incoming, 1);   /* no second ExecutionStarted */
    assert_str(item->incoming[0].input, "1");
    dt_orch_item_free(item);

    /* an explicit policy that does not list Pending refuses too */
    dt_runtime_status only_done[] = {DT_STATUS_COMPLETED};
    again.replaceable = only_done;
    again.n_replaceable = 1;
    assert_int_equal(dt_store_create_instance(fx->store, &again, &err), DT_ERR_ALREADY_EXISTS);
    assert_str(get(fx, "dup")->input, "1");
}

static void test_finished_instance_is_replaced_with_nothing_left_over(void **state)
{
    fixture *fx = *state;
    create(fx, "again", "\"first\"");
    run_first_episode(fx, "again", "act");   /* leaves an activity outstanding */

    dt_message m = {.instance_id = "again"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "first-event";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    /* a second message arrives during the episode and stays in the inbox */
    m.event.name = "second-event";
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_event app[1] = {ev(DT_EVENT_EXECUTION_COMPLETED)};
    dt_commit c = episode_commit(item, app, 1, DT_STATUS_COMPLETED);
    c.u.episode.output = "\"out\"";
    c.u.episode.custom_status = "\"cs\"";
    c.u.episode.completed_at = T0 + SEC;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    assert_int_equal(get(fx, "again")->status, DT_STATUS_COMPLETED);

    /* a policy that names no status replaces nothing, not even a finished instance */
    dt_new_instance none = new_instance("again", "\"second\"");
    none.reuse_policy = true;
    assert_int_equal(dt_store_create_instance(fx->store, &none, &err), DT_ERR_ALREADY_EXISTS);
    assert_str(get(fx, "again")->output, "\"out\"");

    dt_new_instance again = new_instance("again", "\"second\"");
    again.execution_id = "exec-2";
    again.created_at = T0 + 2 * SEC;
    assert_ok(dt_store_create_instance(fx->store, &again, &err), &err);

    dt_instance_state *s = get(fx, "again");
    assert_int_equal(s->status, DT_STATUS_PENDING);
    assert_str(s->input, "\"second\"");
    assert_str(s->execution_id, "exec-2");
    assert_null(s->output);
    assert_null(s->custom_status);
    assert_int_equal(s->completed_at, 0);
    assert_int_equal(s->created_at, T0 + 2 * SEC);
    size_t n = 99;
    history(fx, "again", &n);
    assert_int_equal(n, 0);
    expect_no_activity_work(fx, T0 + 2 * SEC);   /* the old activity went too */
    item = lease_one(fx, "w", T0 + 2 * SEC, LEASE);
    assert_int_equal(item->n_incoming, 1);   /* the old inbox went too */
    assert_int_equal(item->incoming[0].type, DT_EVENT_EXECUTION_STARTED);
    assert_str(item->incoming[0].input, "\"second\"");
    dt_orch_item_free(item);
}

static void test_explicit_reuse_policy_replaces_a_live_instance(void **state)
{
    fixture *fx = *state;
    create(fx, "live", "1");
    dt_orch_item *stale = lease_one(fx, "w", T0, LEASE);
    dt_new_instance again = new_instance("live", "2");
    again.execution_id = "exec-2";
    dt_runtime_status pending[] = {DT_STATUS_PENDING, DT_STATUS_RUNNING};
    again.replaceable = pending;
    again.n_replaceable = 2;
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &again, &err), &err);
    assert_str(get(fx, "live")->input, "2");

    /* the old lease went with the old instance */
    dt_event started = stale->incoming[0];
    dt_commit c = episode_commit(stale, &started, 1, DT_STATUS_RUNNING);
    commit_expect(fx, &c, DT_ERR_LEASE_LOST);
    dt_orch_item_free(stale);

    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->n_incoming, 1);
    assert_str(item->incoming[0].input, "2");
    assert_str(item->incoming[0].execution_id, "exec-2");
    dt_orch_item_free(item);
}

/* ---- leases ------------------------------------------------------------------------------- */

static void test_lease_delivers_execution_started(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", "\"in\"");
    dt_orch_item *item = lease_one(fx, "worker-a", T0 + SEC, LEASE);
    assert_string_equal(item->instance_id, "i1");
    assert_non_null(item->lock_token);
    assert_int_equal(item->locked_until, T0 + SEC + LEASE);
    assert_int_equal(item->state.status, DT_STATUS_PENDING);
    assert_str(item->state.name, "orch");
    assert_int_equal(item->history_len, 0);
    assert_null(item->past);   /* the lease does not read the history */
    assert_int_equal(item->n_past, 0);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->n_message_ids, 1);
    const dt_event *e = &item->incoming[0];
    assert_int_equal(e->type, DT_EVENT_EXECUTION_STARTED);
    assert_str(e->name, "orch");
    assert_str(e->input, "\"in\"");
    assert_str(e->instance_id, "i1");
    assert_str(e->execution_id, "exec-1");
    assert_int_equal(e->timestamp, T0);
    dt_orch_item_free(item);
}

static void test_second_lease_while_held_gets_nothing(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    dt_orch_item *item = lease_one(fx, "a", T0, LEASE);
    expect_no_orch_work(fx, T0 + LEASE - SEC);
    dt_orch_item_free(item);
}

/* lease_named: lease with a name filter of N NAMES; returns how many items (into ITEMS). */
static size_t lease_named(fixture *fx, const char *const *names, size_t n_names,
                          dt_orch_item **items, size_t max)
{
    dt_name_filter f = {names, n_names, NULL};
    size_t n = 99;
    dt_error err;
    assert_ok(dt_store_lease_orchestrations(fx->store, "named", T0, LEASE, max, &f, items, &n,
                                            &err),
              &err);
    return n;
}

static void test_name_filter_leases_only_work_of_those_names(void **state)
{
    fixture *fx = *state;
    dt_new_instance a = new_instance("ia", NULL), b = new_instance("ib", NULL);
    a.name = "alpha";
    b.name = "beta's \"quoted\" name";
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &a, &err), &err);
    assert_ok(dt_store_create_instance(fx->store, &b, &err), &err);
    dt_orch_item *items[4];
    /* an empty filter matches nothing; an unknown name nothing either */
    assert_int_equal(lease_named(fx, NULL, 0, items, 4), 0);
    const char *none[] = {"gamma"};
    assert_int_equal(lease_named(fx, none, 1, items, 4), 0);
    const char *want[] = {"gamma", b.name};
    assert_int_equal(lease_named(fx, want, 2, items, 4), 1);
    assert_string_equal(items[0]->instance_id, "ib");
    dt_orch_item_free(items[0]);
    /* the other is still there for whoever takes its name */
    const char *alpha[] = {"alpha"};
    assert_int_equal(lease_named(fx, alpha, 1, items, 4), 1);
    assert_string_equal(items[0]->instance_id, "ia");
    dt_orch_item_free(items[0]);
}

/* A filter that lists versions for a name takes that name at those versions only (a worker
 * asking for v1.0 gets no v2.0 instance); one listing none takes any; a missing version is
 * "". Activities follow the same rule by their own version. */
static void test_a_version_filter_takes_only_those_versions(void **state)
{
    fixture *fx = *state;
    const char *ids[] = {"v1", "v2", "vnone"}, *versions[] = {"1.0", "2.0", NULL};
    dt_error err;
    for (int i = 0; i < 3; i++) {
        dt_new_instance ni = new_instance(ids[i], NULL);
        ni.name = "orch";
        ni.version = versions[i];
        assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
    }
    /* queries by version: exact, "" for none */
    dt_query q = {.version = "2.0"};
    dt_instance_state *found = NULL;
    size_t nfound = 0;
    const char *next = NULL;
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &found, &nfound, &next, &err),
              &err);
    assert_int_equal(nfound, 1);
    assert_string_equal(found[0].instance_id, "v2");
    assert_str(found[0].version, "2.0");
    q.version = "";
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &found, &nfound, &next, &err),
              &err);
    assert_int_equal(nfound, 1);
    assert_string_equal(found[0].instance_id, "vnone");

    const char *names[] = {"orch"}, *v1[] = {"1.0"}, *none[] = {""};
    dt_version_list only_v1 = {v1, 1}, only_none = {none, 1};
    dt_name_filter f = {names, 1, &only_v1};
    dt_orch_item *items[4];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(fx->store, "w", T0, LEASE, 4, &f, items, &n, &err),
              &err);
    assert_int_equal(n, 1);
    assert_string_equal(items[0]->instance_id, "v1");
    dt_orch_item_free(items[0]);
    f.versions = &only_none;
    assert_ok(dt_store_lease_orchestrations(fx->store, "w", T0, LEASE, 4, &f, items, &n, &err),
              &err);
    assert_int_equal(n, 1);
    assert_string_equal(items[0]->instance_id, "vnone");
    dt_orch_item_free(items[0]);
    dt_version_list any = {NULL, 0};
    f.versions = &any;
    assert_ok(dt_store_lease_orchestrations(fx->store, "w", T0, LEASE, 4, &f, items, &n, &err),
              &err);
    assert_int_equal(n, 1);   /* the one left */
    assert_string_equal(items[0]->instance_id, "v2");

    /* an activity of version 2.0 (from v2's episode) for a worker that takes act at 1.0 */
    dt_event app[3] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), items[0]->incoming[0],
                       ev(DT_EVENT_TASK_SCHEDULED)};
    app[2].event_id = 0;
    app[2].name = "act";
    app[2].version = "2.0";
    dt_new_activity act = {.instance_id = "v2", .execution_id = items[0]->state.execution_id,
                           .scheduled = &app[2]};
    dt_commit c = episode_commit(items[0], app, 3, DT_STATUS_RUNNING);
    c.u.episode.activities = &act;
    c.u.episode.n_activities = 1;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(items[0]);
    const char *anames[] = {"act"}, *v2[] = {"2.0"};
    dt_version_list only_v2 = {v2, 1};
    dt_name_filter af = {anames, 1, &only_v1};
    dt_activity_item *acts[2];
    assert_ok(dt_store_lease_activities(fx->store, "w", T0, LEASE, 2, &af, acts, &n, &err),
              &err);
    assert_int_equal(n, 0);
    af.versions = &only_v2;
    assert_ok(dt_store_lease_activities(fx->store, "w", T0, LEASE, 2, &af, acts, &n, &err),
              &err);
    assert_int_equal(n, 1);
    assert_str(acts[0]->version, "2.0");
    dt_activity_item_free(acts[0]);
}

static void test_a_terminate_is_leased_whatever_the_name_filter(void **state)
{
    fixture *fx = *state;
    dt_new_instance a = new_instance("it", NULL);
    a.name = "nobody_runs_this";
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &a, &err), &err);
    const char *other[] = {"something_else"};
    dt_orch_item *items[2];
    assert_int_equal(lease_named(fx, other, 1, items, 2), 0);
    dt_message m = {.instance_id = "it"};
    dt_event_init(&m.event, DT_EVENT_EXECUTION_TERMINATED, T0);
    m.event.input = "\"stop\"";
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    assert_int_equal(lease_named(fx, other, 1, items, 2), 1);
    assert_string_equal(items[0]->instance_id, "it");
    dt_orch_item_free(items[0]);
}

/* ---- what a filtered lease reads ------------------------------------------------------------ */

/* create_named: N instances named NAME, ids PREFIX-0 .. PREFIX-(N-1). */
static void create_named(fixture *fx, const char *prefix, const char *name, size_t n)
{
    dt_error err;
    for (size_t i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%zu", prefix, i);
        dt_new_instance ni = new_instance(id, NULL);
        ni.name = name;
        assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
    }
}

/* feed_activities: commit ITEM's first episode scheduling N activities named OTHER and one
 * named MINE. */
static void feed_activities(fixture *fx, dt_orch_item *item, size_t n, const char *other,
                            const char *mine)
{
    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0]};
    dt_event *sched = calloc(n + 1, sizeof *sched);
    dt_new_activity *acts = calloc(n + 1, sizeof *acts);
    assert_non_null(sched);
    assert_non_null(acts);
    for (size_t i = 0; i <= n; i++) {
        sched[i] = ev(DT_EVENT_TASK_SCHEDULED);
        sched[i].event_id = (int)i;
        sched[i].name = i < n ? other : mine;
        acts[i] = (dt_new_activity){.instance_id = item->instance_id,
                                    .execution_id = item->state.execution_id,
                                    .scheduled = &sched[i]};
    }
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_RUNNING);
    c.u.episode.activities = acts;
    c.u.episode.n_activities = n + 1;
    commit_expect(fx, &c, DT_OK);
    free(sched);
    free(acts);
}

/* search_cost: the store's search steps of a filtered lease of the one instance named NAME
 * and the one activity named ACT, each checked to be the one taken. */
static void search_cost(fixture *fx, const char *name, const char *act, uint64_t *orch_steps,
                        uint64_t *act_steps)
{
    dt_error err;
    dt_orch_item *items[4];
    uint64_t before = dt_store_search_steps(fx->store);
    const char *names[] = {name};
    assert_int_equal(lease_named(fx, names, 1, items, 4), 1);
    *orch_steps = dt_store_search_steps(fx->store) - before;
    assert_string_equal(items[0]->state.name, name);
    dt_orch_item_free(items[0]);

    dt_name_filter f = {&act, 1, NULL};
    dt_activity_item *acts[4];
    size_t n = 0;
    before = dt_store_search_steps(fx->store);
    assert_ok(dt_store_lease_activities(fx->store, "named", T0, LEASE, 4, &f, acts, &n, &err),
              &err);
    *act_steps = dt_store_search_steps(fx->store) - before;
    assert_int_equal(n, 1);
    assert_string_equal(acts[0]->name, act);
    dt_activity_item_free(acts[0]);
}

/* What a filtered lease reads does not grow with the work of other names waiting: with a
 * hundred or two thousand instances and activities of another name waiting, finding this
 * name's one costs the same; and a look with nothing due costs the same with one name or a
 * thousand. (Backends that do not count their reading, dt_store_search_steps 0, check only
 * that the right work is taken.) */
static void test_a_filtered_lease_reads_only_its_own_names(void **state)
{
    fixture *fx = *state;
    create_named(fx, "feeder", "feeder", 2);
    const char *feeder[] = {"feeder"};
    dt_orch_item *feeders[2];
    assert_int_equal(lease_named(fx, feeder, 1, feeders, 2), 2);

    create_named(fx, "other-a", "other", 100);
    create_named(fx, "mine-a", "mine-a", 1);
    feed_activities(fx, feeders[0], 100, "other-act", "act-a");
    uint64_t orch_small, act_small, orch_big, act_big;
    search_cost(fx, "mine-a", "act-a", &orch_small, &act_small);

    create_named(fx, "other-b", "other", 1900);
    create_named(fx, "mine-b", "mine-b", 1);
    feed_activities(fx, feeders[1], 1900, "other-act", "act-b");
    search_cost(fx, "mine-b", "act-b", &orch_big, &act_big);
    dt_orch_item_free(feeders[0]);
    dt_orch_item_free(feeders[1]);

    /* nothing due yet (a second before everything): one name or a thousand */
    const char **many = calloc(1000, sizeof *many);
    assert_non_null(many);
    for (size_t i = 0; i < 1000; i++)
        many[i] = i % 2 ? "mine-a" : "other";
    dt_name_filter one = {many, 1, NULL}, thousand = {many, 1000, NULL};
    uint64_t idle[2];
    for (int k = 0; k < 2; k++) {
        dt_orch_item *items[4];
        size_t n = 99;
        dt_error err;
        uint64_t before = dt_store_search_steps(fx->store);
        assert_ok(dt_store_lease_orchestrations(fx->store, "named", T0 - SEC, LEASE, 4,
                                                k ? &thousand : &one, items, &n, &err),
                  &err);
        idle[k] = dt_store_search_steps(fx->store) - before;
        assert_int_equal(n, 0);
    }
    free(many);

    if (dt_store_search_steps(fx->store) == 0) {
        print_message("the backend does not count its search steps; costs not compared\n");
        return;
    }
    print_message("search steps: orchestrations %llu with 100 others waiting, %llu with "
                  "2000; activities %llu, %llu; idle %llu (1 name), %llu (1000)\n",
                  (unsigned long long)orch_small, (unsigned long long)orch_big,
                  (unsigned long long)act_small, (unsigned long long)act_big,
                  (unsigned long long)idle[0], (unsigned long long)idle[1]);
    /* a scan of the others would cost twenty times as much; allow a little for the index */
    assert_true(orch_big <= orch_small + orch_small / 4);
    assert_true(act_big <= act_small + act_small / 4);
    assert_true(idle[1] <= idle[0] + idle[0] / 4);
}

static void test_expired_lease_is_redelivered_to_another_owner(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    dt_orch_item *a = lease_one(fx, "a", T0, SEC);
    dt_orch_item *b = lease_one(fx, "b", T0 + 2 * SEC, LEASE);
    assert_string_equal(b->instance_id, "i1");
    assert_string_not_equal(a->lock_token, b->lock_token);
    assert_int_equal(b->n_incoming, 1);

    dt_error err;
    assert_int_equal(dt_store_renew_orchestration(fx->store, a, T0 + 100 * SEC, &err),
                     DT_ERR_LEASE_LOST);
    assert_int_equal(dt_store_abandon_orchestration(fx->store, a, 0, &err), DT_ERR_LEASE_LOST);
    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), a->incoming[0]};
    dt_commit ca = episode_commit(a, app, 2, DT_STATUS_RUNNING);
    commit_expect(fx, &ca, DT_ERR_LEASE_LOST);
    dt_commit cb = episode_commit(b, app, 2, DT_STATUS_RUNNING);
    commit_expect(fx, &cb, DT_OK);
    size_t n = 0;
    history(fx, "i1", &n);
    assert_int_equal(n, 2);
    dt_orch_item_free(a);
    dt_orch_item_free(b);
}

static void test_renewed_lease_is_kept(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    dt_orch_item *a = lease_one(fx, "a", T0, SEC);
    dt_error err;
    assert_ok(dt_store_renew_orchestration(fx->store, a, T0 + 10 * SEC, &err), &err);
    expect_no_orch_work(fx, T0 + 5 * SEC);
    dt_orch_item *b = lease_one(fx, "b", T0 + 11 * SEC, LEASE);
    dt_orch_item_free(a);
    dt_orch_item_free(b);
}

static void test_abandoned_work_is_redelivered_at_once(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", "7");
    dt_orch_item *a = lease_one(fx, "a", T0, LEASE);
    dt_error err;
    assert_ok(dt_store_abandon_orchestration(fx->store, a, 0, &err), &err);
    dt_orch_item *b = lease_one(fx, "b", T0, LEASE);
    assert_int_equal(b->n_incoming, 1);
    assert_str(b->incoming[0].input, "7");
    assert_int_equal(dt_store_abandon_orchestration(fx->store, a, 0, &err), DT_ERR_LEASE_LOST);
    assert_int_equal(get(fx, "i1")->status, DT_STATUS_PENDING);   /* nothing else changed */
    dt_orch_item_free(a);
    dt_orch_item_free(b);
}

/* An abandon with a retry time keeps the work from everyone until then (the back-off of a
 * worker that gave it up), and the old token is good for nothing meanwhile. */
static void test_abandoned_work_waits_for_its_retry_time(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", "7");
    dt_orch_item *a = lease_one(fx, "a", T0, LEASE);
    dt_error err;
    assert_ok(dt_store_abandon_orchestration(fx->store, a, T0 + 5 * SEC, &err), &err);
    expect_no_orch_work(fx, T0 + 4 * SEC);
    assert_int_equal(dt_store_renew_orchestration(fx->store, a, T0 + LEASE, &err),
                     DT_ERR_LEASE_LOST);
    assert_int_equal(dt_store_abandon_orchestration(fx->store, a, 0, &err), DT_ERR_LEASE_LOST);
    dt_orch_item *b = lease_one(fx, "b", T0 + 5 * SEC + 1, LEASE);
    assert_str(b->incoming[0].input, "7");
    dt_orch_item_free(a);
    dt_orch_item_free(b);

    create(fx, "i2", NULL);
    run_first_episode(fx, "i2", "act");
    dt_activity_item *x, *y;
    assert_int_equal(lease_acts(fx, "x", T0, LEASE, 1, &x), 1);
    assert_ok(dt_store_abandon_activity(fx->store, x, T0 + 5 * SEC, &err), &err);
    expect_no_activity_work(fx, T0 + 4 * SEC);
    assert_int_equal(lease_acts(fx, "y", T0 + 5 * SEC + 1, LEASE, 1, &y), 1);
    assert_int_equal(y->delivery_count, 2);
    dt_activity_item_free(x);
    dt_activity_item_free(y);
}

static void test_lease_takes_at_most_max(void **state)
{
    fixture *fx = *state;
    const char *ids[] = {"m1", "m2", "m3", "m4", "m5"};
    for (int i = 0; i < 5; i++)
        create(fx, ids[i], NULL);
    dt_orch_item *items[5];
    size_t got = 0;
    int seen[5] = {0};
    for (int round = 0; round < 3; round++) {
        size_t n = lease_orch(fx, "w", T0, LEASE, 2, items);
        assert_int_equal(n, round < 2 ? 2 : 1);
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < 5; k++)
                if (strcmp(items[i]->instance_id, ids[k]) == 0)
                    seen[k]++;
            dt_orch_item_free(items[i]);
        }
        got += n;
    }
    assert_int_equal(got, 5);
    for (int k = 0; k < 5; k++)
        assert_int_equal(seen[k], 1);
    expect_no_orch_work(fx, T0);
}

/* ---- commits ------------------------------------------------------------------------------ */

static void test_commit_appends_history_updates_row_and_enqueues_activity(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", "\"in\"");
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app[3] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0],
                       ev(DT_EVENT_TASK_SCHEDULED)};
    app[2].event_id = 0;
    app[2].name = "act";
    app[2].version = "1";
    app[2].input = "\"x\"";
    dt_new_activity act = {.instance_id = "i1", .execution_id = "exec-1", .scheduled = &app[2]};
    dt_commit c = episode_commit(item, app, 3, DT_STATUS_RUNNING);
    c.u.episode.custom_status = "\"working\"";
    c.u.episode.activities = &act;
    c.u.episode.n_activities = 1;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    dt_instance_state *s = get(fx, "i1");
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    assert_str(s->custom_status, "\"working\"");
    assert_str(s->name, "orch");     /* NULL in the episode: kept */
    assert_str(s->input, "\"in\"");
    assert_true(s->last_updated_at >= s->created_at);
    size_t n = 0;
    dt_event *h = history(fx, "i1", &n);
    assert_int_equal(n, 3);
    assert_int_equal(h[0].type, DT_EVENT_ORCHESTRATOR_STARTED);
    assert_int_equal(h[1].type, DT_EVENT_EXECUTION_STARTED);
    assert_int_equal(h[2].type, DT_EVENT_TASK_SCHEDULED);
    assert_str(h[2].name, "act");

    /* the consumed ExecutionStarted is gone and the lease released */
    expect_no_orch_work(fx, T0 + SEC);

    dt_activity_item *acts[2];
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 2, acts), 1);
    assert_str(acts[0]->instance_id, "i1");
    assert_str(acts[0]->execution_id, "exec-1");
    assert_str(acts[0]->name, "act");
    assert_str(acts[0]->version, "1");
    assert_str(acts[0]->input, "\"x\"");
    assert_int_equal(acts[0]->task_id, 0);
    assert_int_equal(acts[0]->delivery_count, 1);
    assert_non_null(acts[0]->lock_token);
    dt_activity_item_free(acts[0]);
}

static void test_message_arriving_during_episode_is_kept_for_the_next(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);

    dt_message m = {.instance_id = "i1"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "approval";
    m.event.input = "true";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    expect_no_orch_work(fx, T0);   /* still leased */

    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0]};
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_RUNNING);
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 2);
    size_t n = 0;
    dt_event *past = load(fx, "i1", 0, &n);
    assert_int_equal(n, 2);
    assert_int_equal(past[1].type, DT_EVENT_EXECUTION_STARTED);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_EVENT_RAISED);
    assert_str(item->incoming[0].name, "approval");
    assert_str(item->incoming[0].input, "true");
    assert_int_equal(item->state.status, DT_STATUS_RUNNING);
    dt_orch_item_free(item);
}

static void test_stale_commit_changes_nothing(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    dt_orch_item *a = lease_one(fx, "a", T0, SEC);
    dt_orch_item *b = lease_one(fx, "b", T0 + 2 * SEC, LEASE);

    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), a->incoming[0]};
    dt_event sched = ev(DT_EVENT_TASK_SCHEDULED);
    sched.event_id = 0;
    sched.name = "act";
    dt_new_activity act = {.instance_id = "i1", .scheduled = &sched};
    dt_message timer = {.instance_id = "i1"};
    timer.event = ev(DT_EVENT_TIMER_FIRED);
    dt_commit c = episode_commit(a, app, 2, DT_STATUS_COMPLETED);
    c.u.episode.output = "\"done\"";
    c.u.episode.completed_at = T0 + SEC;
    c.u.episode.activities = &act;
    c.u.episode.n_activities = 1;
    c.u.episode.messages = &timer;
    c.u.episode.n_messages = 1;
    commit_expect(fx, &c, DT_ERR_LEASE_LOST);

    dt_instance_state *s = get(fx, "i1");
    assert_int_equal(s->status, DT_STATUS_PENDING);
    assert_null(s->output);
    size_t n = 99;
    history(fx, "i1", &n);
    assert_int_equal(n, 0);
    expect_no_activity_work(fx, T0 + 2 * SEC);

    /* B's lease is untouched: its episode sees only the ExecutionStarted, and commits */
    dt_commit cb = episode_commit(b, app, 2, DT_STATUS_RUNNING);
    commit_expect(fx, &cb, DT_OK);
    expect_no_orch_work(fx, T0 + 3 * SEC);   /* no timer message was left behind */
    dt_orch_item_free(a);
    dt_orch_item_free(b);
}

static dt_orch_item *find_item(dt_orch_item **items, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(items[i]->instance_id, id) == 0)
            return items[i];
    fail_msg("no work item for '%s'", id);
    return NULL;
}

static void test_group_commit_applies_the_entries_whose_lease_is_held(void **state)
{
    fixture *fx = *state;
    create(fx, "x", NULL);
    create(fx, "y", NULL);
    create(fx, "z", NULL);
    dt_orch_item *items[4];
    assert_int_equal(lease_orch(fx, "a", T0, LEASE, 4, items), 3);
    dt_orch_item *x = find_item(items, 3, "x");
    dt_orch_item *y = find_item(items, 3, "y");
    dt_orch_item *z = find_item(items, 3, "z");
    /* y's lease moves to B */
    dt_error err;
    assert_ok(dt_store_abandon_orchestration(fx->store, y, 0, &err), &err);
    dt_orch_item *yb = lease_one(fx, "b", T0, LEASE);
    assert_string_equal(yb->instance_id, "y");

    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), ev(DT_EVENT_ORCHESTRATOR_COMPLETED)};
    dt_commit batch[3] = {
        episode_commit(x, app, 2, DT_STATUS_RUNNING),
        episode_commit(y, app, 2, DT_STATUS_RUNNING),
        episode_commit(z, app, 2, DT_STATUS_RUNNING),
    };
    assert_ok(dt_store_commit(fx->store, batch, 3, &err), &err);
    assert_int_equal(batch[0].result, DT_OK);
    assert_int_equal(batch[1].result, DT_ERR_LEASE_LOST);
    assert_int_equal(batch[2].result, DT_OK);

    size_t n = 0;
    assert_int_equal(get(fx, "x")->status, DT_STATUS_RUNNING);
    history(fx, "x", &n);
    assert_int_equal(n, 2);
    assert_int_equal(get(fx, "z")->status, DT_STATUS_RUNNING);
    history(fx, "z", &n);
    assert_int_equal(n, 2);
    assert_int_equal(get(fx, "y")->status, DT_STATUS_PENDING);
    history(fx, "y", &n);
    assert_int_equal(n, 0);

    dt_commit cy = episode_commit(yb, app, 2, DT_STATUS_RUNNING);
    commit_expect(fx, &cy, DT_OK);
    for (size_t i = 0; i < 3; i++)
        dt_orch_item_free(items[i]);
    dt_orch_item_free(yb);
}

static void test_entry_that_cannot_be_stored_changes_nothing_and_others_apply(void **state)
{
    fixture *fx = *state;
    create(fx, "good", NULL);
    create(fx, "bad", NULL);
    dt_orch_item *items[2];
    assert_int_equal(lease_orch(fx, "w", T0, LEASE, 2, items), 2);
    dt_orch_item *good = find_item(items, 2, "good");
    dt_orch_item *bad = find_item(items, 2, "bad");
    /* the first event is stored before the second turns out not to be encodable */
    dt_event bad_app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), ev(DT_EVENT_NONE)};
    dt_event good_app[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    dt_commit batch[2] = {episode_commit(bad, bad_app, 2, DT_STATUS_RUNNING),
                          episode_commit(good, good_app, 1, DT_STATUS_RUNNING)};
    dt_error err;
    assert_ok(dt_store_commit(fx->store, batch, 2, &err), &err);
    assert_int_equal(batch[0].result, DT_ERR_INVALID_ARG);
    assert_int_equal(batch[1].result, DT_OK);

    size_t n = 99;
    history(fx, "bad", &n);
    assert_int_equal(n, 0);
    assert_int_equal(get(fx, "bad")->status, DT_STATUS_PENDING);
    history(fx, "good", &n);
    assert_int_equal(n, 1);
    /* the failed entry kept its lease and its message */
    assert_ok(dt_store_abandon_orchestration(fx->store, bad, 0, &err), &err);
    dt_orch_item *again = lease_one(fx, "w", T0, LEASE);
    assert_string_equal(again->instance_id, "bad");
    assert_int_equal(again->n_incoming, 1);
    dt_orch_item_free(again);
    dt_orch_item_free(good);
    dt_orch_item_free(bad);
}

/* An entry refused after some of it was written (its history appended, then an activity that
 * cannot be stored) is rolled back alone, its writes with it, and the entries on either side
 * of it apply; it keeps its lease and its message. */
static void test_entry_refused_after_writing_is_rolled_back_alone(void **state)
{
    fixture *fx = *state;
    create(fx, "before", NULL);
    create(fx, "bad", NULL);
    create(fx, "after", NULL);
    dt_orch_item *items[3];
    assert_int_equal(lease_orch(fx, "w", T0, LEASE, 3, items), 3);
    dt_event app[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    dt_new_activity no_event = {0};   /* no TaskScheduled: found only after the appends */
    dt_commit batch[3] = {episode_commit(find_item(items, 3, "before"), app, 1, DT_STATUS_RUNNING),
                          episode_commit(find_item(items, 3, "bad"), app, 1, DT_STATUS_RUNNING),
                          episode_commit(find_item(items, 3, "after"), app, 1, DT_STATUS_RUNNING)};
    batch[1].u.episode.activities = &no_event;
    batch[1].u.episode.n_activities = 1;
    dt_error err;
    assert_ok(dt_store_commit(fx->store, batch, 3, &err), &err);
    assert_int_equal(batch[0].result, DT_OK);
    assert_int_equal(batch[1].result, DT_ERR_INVALID_ARG);
    assert_int_equal(batch[2].result, DT_OK);
    size_t n = 99;
    history(fx, "bad", &n);
    assert_int_equal(n, 0);
    assert_int_equal(get(fx, "bad")->status, DT_STATUS_PENDING);
    history(fx, "before", &n);
    assert_int_equal(n, 1);
    assert_int_equal(get(fx, "before")->status, DT_STATUS_RUNNING);
    history(fx, "after", &n);
    assert_int_equal(n, 1);
    assert_int_equal(get(fx, "after")->status, DT_STATUS_RUNNING);
    dt_orch_item *bad = find_item(items, 3, "bad");
    assert_ok(dt_store_abandon_orchestration(fx->store, bad, 0, &err), &err);
    dt_orch_item *again = lease_one(fx, "w", T0, LEASE);
    assert_string_equal(again->instance_id, "bad");
    assert_int_equal(again->n_incoming, 1);
    dt_orch_item_free(again);
    for (size_t i = 0; i < 3; i++)
        dt_orch_item_free(items[i]);
}

/* A replaced history (continue-as-new; a rewind the same way) is another generation
 * (history_gen), so a copy of the old one cached from an earlier lease, on another node, say,
 * is known stale even when the execution id and the length agree. */
static void test_reset_history_replaces_it_for_continue_as_new(void **state)
{
    fixture *fx = *state;
    create(fx, "loop", "0");
    run_first_episode(fx, "loop", "act");   /* 3 events, one outstanding activity */

    dt_message m = {.instance_id = "loop"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "go";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 3);
    int64_t gen = item->history_gen;   /* a plain episode kept it */

    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), ev(DT_EVENT_EXECUTION_STARTED)};
    app[1].name = "orch";
    app[1].input = "1";
    app[1].instance_id = "loop";
    app[1].execution_id = "exec-2";
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_RUNNING);
    c.u.episode.reset_history = true;
    c.u.episode.execution_id = "exec-2";
    c.u.episode.input = "1";
    c.u.episode.version = "2.0";   /* continue-as-new on a new version */
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    size_t n = 0;
    dt_event *h = history(fx, "loop", &n);
    assert_int_equal(n, 2);
    assert_int_equal(h[0].type, DT_EVENT_ORCHESTRATOR_STARTED);
    assert_int_equal(h[1].type, DT_EVENT_EXECUTION_STARTED);
    assert_str(h[1].input, "1");
    dt_instance_state *s = get(fx, "loop");
    assert_str(s->execution_id, "exec-2");
    assert_str(s->input, "1");
    assert_str(s->version, "2.0");
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    /* the old execution's outstanding activity does not reach the new one */
    expect_no_activity_work(fx, T0);
    /* a copy of the old history kept elsewhere is known stale: the generation moved on */
    m.event.name = "again";
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_gen, gen + 1);
    dt_orch_item_free(item);
}

static void test_failure_details_are_kept(void **state)
{
    fixture *fx = *state;
    create(fx, "bad", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_failure inner = {.error_type = "IOError", .message = "disk"};
    dt_failure f = {.error_type = "Boom", .message = "it broke", .stack_trace = "at orch()",
                    .inner = &inner, .non_retriable = true};
    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), ev(DT_EVENT_EXECUTION_COMPLETED)};
    app[1].status = DT_STATUS_FAILED;
    app[1].failure = &f;
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_FAILED);
    c.u.episode.failure = &f;
    c.u.episode.completed_at = T0 + 5 * SEC;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    dt_instance_state *s = get(fx, "bad");
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_int_equal(s->completed_at, T0 + 5 * SEC);
    assert_non_null(s->failure);
    assert_str(s->failure->error_type, "Boom");
    assert_str(s->failure->message, "it broke");
    assert_str(s->failure->stack_trace, "at orch()");
    assert_true(s->failure->non_retriable);
    assert_non_null(s->failure->inner);
    assert_str(s->failure->inner->error_type, "IOError");
    size_t n = 0;
    dt_event *h = history(fx, "bad", &n);
    assert_int_equal(n, 2);
    assert_non_null(h[1].failure);
    assert_str(h[1].failure->message, "it broke");
}

/* fail_held: commit ITEM's episode as failing its instance with F at NOW. */
static void fail_held(fixture *fx, dt_orch_item *item, const dt_failure *f, dt_time now)
{
    dt_commit c = episode_commit(item, NULL, 0, DT_STATUS_FAILED);
    c.u.episode.failure = f;
    c.u.episode.completed_at = now;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
}

/* A rewind's reopen (dt_message.reopen) makes a Failed instance nobody holds Running, its
 * output and failure gone, as the message goes in. One that is held, or is not Failed, is
 * refused with DT_ERR_STATE naming it, changes nothing, and leaves the store taking writes
 * as before (the SQLite store once kept the refused reopen's transaction open, so the next
 * write failed). Leases here are by the wall clock: a reopen looks at it. */
static void test_a_reopen_takes_only_a_failed_instance_nobody_holds(void **state)
{
    fixture *fx = *state;
    dt_time now = dt_now();
    dt_failure f = {.error_type = "Boom", .message = "it broke"};
    create(fx, "broken", NULL);
    fail_held(fx, lease_one(fx, "w", now, LEASE), &f, now);
    dt_message late = {.instance_id = "broken"};
    late.event = ev(DT_EVENT_EVENT_RAISED);
    late.event.name = "late";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &late, &err), &err);
    dt_orch_item *held = lease_one(fx, "w", now, LEASE);   /* the late message, to drop */

    dt_message rewind = {.instance_id = "broken", .reopen = true};
    rewind.event = ev(DT_EVENT_EXECUTION_REWOUND);
    dt_error_clear(&err);
    assert_int_equal(dt_store_send_message(fx->store, &rewind, &err), DT_ERR_STATE);
    assert_contains(err.message, "broken");
    dt_instance_state *s = get(fx, "broken");
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_non_null(s->failure);
    late.event.name = "later";   /* the store takes writes */
    assert_ok(dt_store_send_message(fx->store, &late, &err), &err);

    fail_held(fx, held, &f, now);   /* dropped: nobody holds it now */
    assert_ok(dt_store_send_message(fx->store, &rewind, &err), &err);
    s = get(fx, "broken");
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    assert_null(s->failure);
    assert_null(s->output);
    assert_int_equal(s->completed_at, 0);
    dt_error_clear(&err);
    assert_int_equal(dt_store_send_message(fx->store, &rewind, &err), DT_ERR_STATE);
    assert_contains(err.message, "broken");   /* Running now: not again */

    dt_orch_item *item = lease_one(fx, "w", now, LEASE);
    size_t rewinds = 0, laters = 0;
    for (size_t i = 0; i < item->n_incoming; i++) {
        rewinds += item->incoming[i].type == DT_EVENT_EXECUTION_REWOUND;
        laters += item->incoming[i].name && strcmp(item->incoming[i].name, "later") == 0;
    }
    assert_int_equal(item->n_incoming, 2);
    assert_int_equal(rewinds, 1);
    assert_int_equal(laters, 1);
    dt_orch_item_free(item);
}

/* ---- activities ---------------------------------------------------------------------------- */

static dt_commit activity_done(const dt_activity_item *a, const char *result)
{
    dt_commit c;
    memset(&c, 0, sizeof c);
    c.kind = DT_COMMIT_ACTIVITY;
    c.u.activity.item = a;
    c.u.activity.message.instance_id = a->instance_id;
    c.u.activity.message.event = ev(DT_EVENT_TASK_COMPLETED);
    c.u.activity.message.event.task_id = a->task_id;
    c.u.activity.message.event.result = result;
    c.result = DT_ERR_INTERNAL;
    return c;
}

static void test_activity_result_reaches_the_inbox_and_the_work_item_goes(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *acts[2];
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 2, acts), 1);
    dt_activity_item *a = acts[0];
    expect_no_activity_work(fx, T0 + SEC);   /* leased */
    dt_error err;
    assert_ok(dt_store_renew_activity(fx->store, a, T0 + 2 * LEASE, &err), &err);
    expect_no_activity_work(fx, T0 + LEASE + SEC);

    dt_commit c = activity_done(a, "\"r\"");
    commit_expect(fx, &c, DT_OK);
    dt_activity_item_free(a);
    expect_no_activity_work(fx, T0 + 1000 * SEC);   /* deleted, not just leased */

    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 3);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_TASK_COMPLETED);
    assert_int_equal(item->incoming[0].task_id, 0);
    assert_str(item->incoming[0].result, "\"r\"");
    dt_orch_item_free(item);
}

static void test_activity_lease_expiry_and_abandon_redeliver(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *a, *b, *c;
    assert_int_equal(lease_acts(fx, "a", T0, SEC, 1, &a), 1);
    assert_int_equal(lease_acts(fx, "b", T0 + 2 * SEC, LEASE, 1, &b), 1);
    assert_int_equal(b->id, a->id);
    assert_int_equal(b->delivery_count, 2);
    assert_string_not_equal(a->lock_token, b->lock_token);

    dt_error err;
    assert_int_equal(dt_store_renew_activity(fx->store, a, T0 + LEASE, &err), DT_ERR_LEASE_LOST);
    dt_commit stale = activity_done(a, "\"late\"");
    commit_expect(fx, &stale, DT_ERR_LEASE_LOST);
    expect_no_orch_work(fx, T0 + 3 * SEC);   /* no TaskCompleted was delivered */

    assert_ok(dt_store_abandon_activity(fx->store, b, 0, &err), &err);
    assert_int_equal(dt_store_abandon_activity(fx->store, b, 0, &err), DT_ERR_LEASE_LOST);
    assert_int_equal(lease_acts(fx, "c", T0 + 3 * SEC, LEASE, 1, &c), 1);
    assert_int_equal(c->delivery_count, 3);
    assert_str(c->name, "act");
    dt_activity_item_free(a);
    dt_activity_item_free(b);
    dt_activity_item_free(c);
}

/* ---- speculative episodes (dt_episode.consumes) --------------------------------------------- */

/* spec_item: a speculative episode's item for ID, made as a hub makes one: not leased, its
 * history's generation and length (HISTORY_LEN) as the hub last saw them (fixture's arena). */
static dt_orch_item *spec_item(fixture *fx, const char *id, size_t history_len)
{
    dt_history_window w;
    dt_error err;
    assert_ok(dt_store_read_history(fx->store, id, 0, 1 << 20, fx->arena, &w, &err), &err);
    dt_orch_item *item = dt_arena_alloc(fx->arena, sizeof *item);
    *item = (dt_orch_item){.instance_id = id, .lock_token = "spec:1",
                           .locked_until = T0 + LEASE, .history_len = history_len,
                           .history_gen = w.gen};
    item->state.execution_id = get(fx, id)->execution_id;
    return item;
}

/* spec_commit: commit ITEM's episode consuming A's result "r" (the TaskCompleted, and a
 * second activity "act2", task 1, scheduled) into *C, whose memory lives in the fixture. */
static dt_status spec_commit(fixture *fx, const dt_orch_item *item, const dt_activity_item *a,
                             dt_commit *c, dt_error *err)
{
    dt_commit *done = dt_arena_alloc(fx->arena, sizeof *done);
    dt_event *app = dt_arena_alloc(fx->arena, 3 * sizeof *app);
    dt_new_activity *act = dt_arena_alloc(fx->arena, sizeof *act);
    *done = activity_done(a, "\"r\"");
    app[0] = ev(DT_EVENT_ORCHESTRATOR_STARTED);
    app[1] = done->u.activity.message.event;
    app[2] = ev(DT_EVENT_TASK_SCHEDULED);
    app[2].event_id = 1;
    app[2].name = "act2";
    *act = (dt_new_activity){.instance_id = item->instance_id,
                             .execution_id = item->state.execution_id, .scheduled = &app[2]};
    *c = episode_commit(item, app, 3, DT_STATUS_RUNNING);
    c->u.episode.activities = act;
    c->u.episode.n_activities = 1;
    c->u.episode.consumes = &done->u.activity;
    c->u.episode.refused = true;   /* the store must clear it */
    dt_error_clear(err);
    return dt_store_commit(fx->store, c, 1, err);
}

/* A speculative episode applies with its activity result in one commit: the activity's row
 * goes, the result is in history and never in the inbox. A store that does not speculate
 * refuses it whole, changing nothing. */
static void test_a_speculative_episode_commits_with_the_result_it_consumes(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *a;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &a), 1);
    dt_commit c;
    dt_error err;
    dt_status st = spec_commit(fx, spec_item(fx, "i1", 3), a, &c, &err);
    size_t n = 0;
    if (!dt_store_speculates(fx->store)) {
        assert_int_equal(st, DT_ERR_UNIMPLEMENTED);
        assert_contains(err.message, "speculative");
        history(fx, "i1", &n);
        assert_int_equal(n, 3);
        expect_no_activity_work(fx, T0 + SEC);   /* still leased */
        dt_activity_item_free(a);
        return;
    }
    assert_ok(st, &err);
    assert_int_equal(c.result, DT_OK);
    assert_false(c.u.episode.refused);
    dt_event *h = history(fx, "i1", &n);
    assert_int_equal(n, 6);
    assert_int_equal(h[4].type, DT_EVENT_TASK_COMPLETED);
    assert_str(h[4].result, "\"r\"");
    assert_int_equal(h[5].type, DT_EVENT_TASK_SCHEDULED);
    expect_no_orch_work(fx, T0 + 1000 * SEC);   /* nothing in the inbox, the instance free */
    dt_activity_item *b[2];
    assert_int_equal(lease_acts(fx, "aw", T0 + 1000 * SEC, LEASE, 2, b), 1);
    assert_str(b[0]->name, "act2");   /* the first one's row went */
    assert_int_equal(get(fx, "i1")->status, DT_STATUS_RUNNING);
    dt_activity_item_free(b[0]);
    dt_activity_item_free(a);
}

/* expect_result_in_inbox: the one orchestration work item there is at NOW: an instance whose
 * history still has its 3 events and whose inbox has the activity's result "r". */
static void expect_result_in_inbox(fixture *fx, dt_time now, char *id_out, size_t id_size)
{
    dt_orch_item *item = lease_one(fx, "w", now, LEASE);
    assert_int_equal(item->history_len, 3);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_TASK_COMPLETED);
    assert_str(item->incoming[0].result, "\"r\"");
    snprintf(id_out, id_size, "%s", item->instance_id);
    dt_orch_item_free(item);
}

/* An instance held by another lease refuses the episode: the result goes to its inbox, as
 * it would have without speculation, and the holder's lease is untouched. */
static void test_a_speculative_episode_on_a_held_instance_gives_its_result_to_the_inbox(
    void **state)
{
    fixture *fx = *state;
    if (!dt_store_speculates(fx->store))
        skip();
    create(fx, "held", NULL);
    run_first_episode(fx, "held", "act");
    dt_activity_item *a;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &a), 1);
    dt_message m = {.instance_id = "held"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "e";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *other = lease_one(fx, "w", T0, LEASE);
    dt_commit c;
    assert_ok(spec_commit(fx, spec_item(fx, "held", 3), a, &c, &err), &err);
    assert_int_equal(c.result, DT_OK);
    assert_true(c.u.episode.refused);
    expect_no_activity_work(fx, T0 + 1000 * SEC);   /* its row went; no act2 */
    dt_commit oc = episode_commit(other, NULL, 0, DT_STATUS_RUNNING);
    commit_expect(fx, &oc, DT_OK);   /* the holder's lease was never touched */
    dt_orch_item_free(other);
    char id[64];
    expect_result_in_inbox(fx, T0 + SEC, id, sizeof id);
    dt_activity_item_free(a);
}

/* Each thing the claim checks refuses alone (the instance free, its inbox empty): a history
 * longer than the hub saw, another generation, another execution, a status not Running. */
static void test_each_change_the_claim_checks_refuses_a_speculative_episode(void **state)
{
    fixture *fx = *state;
    if (!dt_store_speculates(fx->store))
        skip();
    static const char *const ids[] = {"moved", "gen", "exec", "suspended"};
    enum { N = 4 };
    dt_error err;
    for (int i = 0; i < N; i++) {
        create(fx, ids[i], NULL);
        run_first_episode(fx, ids[i], "act");
    }
    /* "suspended": an episode (consuming an event) left it Suspended, its inbox empty */
    dt_message m = {.instance_id = "suspended"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *sus = lease_one(fx, "w", T0, LEASE);
    dt_commit sc = episode_commit(sus, NULL, 0, DT_STATUS_SUSPENDED);
    commit_expect(fx, &sc, DT_OK);
    dt_orch_item_free(sus);
    expect_no_orch_work(fx, T0);

    dt_activity_item *a[N];
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, N, a), N);
    for (int i = 0; i < N; i++) {
        dt_activity_item *act = NULL;
        for (int j = 0; j < N; j++)
            if (strcmp(a[j]->instance_id, ids[i]) == 0)
                act = a[j];
        assert_non_null(act);
        dt_orch_item *item = spec_item(fx, ids[i], i == 0 ? 2 : 3);   /* "moved": saw 2 of 3 */
        if (i == 1)
            item->history_gen++;
        if (i == 2)
            item->state.execution_id = "another";
        dt_commit c;
        assert_ok(spec_commit(fx, item, act, &c, &err), &err);
        assert_int_equal(c.result, DT_OK);
        if (!c.u.episode.refused)
            fail_msg("the speculative episode on '%s' was applied", ids[i]);
    }
    expect_no_activity_work(fx, T0 + 1000 * SEC);   /* every row went; no act2 */
    bool seen[N] = {false};
    for (int k = 0; k < N; k++) {
        char id[64];
        expect_result_in_inbox(fx, T0 + SEC, id, sizeof id);
        for (int i = 0; i < N; i++)
            seen[i] |= strcmp(id, ids[i]) == 0;
    }
    for (int i = 0; i < N; i++)
        assert_true(seen[i]);
    expect_no_orch_work(fx, T0 + SEC);
    for (int i = 0; i < N; i++)
        dt_activity_item_free(a[i]);
}

/* A message already in the inbox (here a terminate) is seen before the result, as without
 * speculation: the episode is refused and the next lease has both, in the order they came. */
static void test_a_speculative_episode_is_refused_while_a_message_waits(void **state)
{
    fixture *fx = *state;
    if (!dt_store_speculates(fx->store))
        skip();
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *a;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &a), 1);
    dt_message m = {.instance_id = "i1"};
    m.event = ev(DT_EVENT_EXECUTION_TERMINATED);
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_commit c;
    assert_ok(spec_commit(fx, spec_item(fx, "i1", 3), a, &c, &err), &err);
    assert_int_equal(c.result, DT_OK);
    assert_true(c.u.episode.refused);
    size_t n = 0;
    history(fx, "i1", &n);
    assert_int_equal(n, 3);
    dt_orch_item *item = lease_one(fx, "w", T0 + SEC, LEASE);
    assert_int_equal(item->n_incoming, 2);
    assert_int_equal(item->incoming[0].type, DT_EVENT_EXECUTION_TERMINATED);
    assert_int_equal(item->incoming[1].type, DT_EVENT_TASK_COMPLETED);
    dt_orch_item_free(item);
    dt_activity_item_free(a);
}

/* An activity whose lease was lost makes its speculative episode fail whole: nothing of
 * either is written; the new holder's result is the one that counts. */
static void test_a_speculative_episode_whose_activity_lease_is_lost_changes_nothing(
    void **state)
{
    fixture *fx = *state;
    if (!dt_store_speculates(fx->store))
        skip();
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *a, *b;
    assert_int_equal(lease_acts(fx, "a", T0, SEC, 1, &a), 1);
    assert_int_equal(lease_acts(fx, "b", T0 + 2 * SEC, LEASE, 1, &b), 1);
    dt_commit c;
    dt_error err;
    assert_ok(spec_commit(fx, spec_item(fx, "i1", 3), a, &c, &err), &err);
    assert_int_equal(c.result, DT_ERR_LEASE_LOST);
    size_t n = 0;
    history(fx, "i1", &n);
    assert_int_equal(n, 3);
    expect_no_orch_work(fx, T0 + 3 * SEC);
    assert_int_equal(get(fx, "i1")->status, DT_STATUS_RUNNING);
    dt_commit done = activity_done(b, "\"b\"");
    commit_expect(fx, &done, DT_OK);
    dt_orch_item *item = lease_one(fx, "w", T0 + 3 * SEC, LEASE);
    assert_str(item->incoming[0].result, "\"b\"");
    dt_orch_item_free(item);
    dt_activity_item_free(a);
    dt_activity_item_free(b);
}

static void test_mixed_group_commit(void **state)
{
    fixture *fx = *state;
    create(fx, "p", NULL);
    run_first_episode(fx, "p", "act");
    create(fx, "q", NULL);
    dt_activity_item *a;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &a), 1);
    dt_orch_item *q = lease_one(fx, "w", T0, LEASE);
    assert_string_equal(q->instance_id, "q");
    dt_event app[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    dt_commit batch[2] = {activity_done(a, "1"), episode_commit(q, app, 1, DT_STATUS_RUNNING)};
    dt_error err;
    assert_ok(dt_store_commit(fx->store, batch, 2, &err), &err);
    assert_int_equal(batch[0].result, DT_OK);
    assert_int_equal(batch[1].result, DT_OK);
    assert_int_equal(get(fx, "q")->status, DT_STATUS_RUNNING);
    dt_orch_item *p = lease_one(fx, "w", T0, LEASE);
    assert_string_equal(p->instance_id, "p");
    assert_int_equal(p->incoming[0].type, DT_EVENT_TASK_COMPLETED);
    dt_orch_item_free(p);
    dt_orch_item_free(q);
    dt_activity_item_free(a);
}

/* ---- visibility, messages, sub-orchestrations ------------------------------------------------ */

static void test_scheduled_start_is_not_leased_before_its_time(void **state)
{
    fixture *fx = *state;
    dt_new_instance ni = new_instance("later", NULL);
    ni.scheduled_start = T0 + 60 * SEC;
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
    assert_int_equal(get(fx, "later")->scheduled_start, T0 + 60 * SEC);
    expect_no_orch_work(fx, T0);
    expect_no_orch_work(fx, T0 + 59 * SEC);
    dt_orch_item *item = lease_one(fx, "w", T0 + 60 * SEC, LEASE);
    assert_int_equal(item->incoming[0].scheduled_start, T0 + 60 * SEC);
    dt_orch_item_free(item);
}

static void test_timer_message_is_leased_at_its_time(void **state)
{
    fixture *fx = *state;
    create(fx, "t", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app[3] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0],
                       ev(DT_EVENT_TIMER_CREATED)};
    app[2].event_id = 0;
    app[2].fire_at = T0 + 30 * SEC;
    dt_message timer = {.instance_id = "t", .visible_at = T0 + 30 * SEC};
    timer.event = ev(DT_EVENT_TIMER_FIRED);
    timer.event.task_id = 0;
    timer.event.fire_at = T0 + 30 * SEC;
    dt_commit c = episode_commit(item, app, 3, DT_STATUS_RUNNING);
    c.u.episode.messages = &timer;
    c.u.episode.n_messages = 1;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    expect_no_orch_work(fx, T0 + 10 * SEC);

    /* an event now: delivered alone, the timer stays for its time */
    dt_message m = {.instance_id = "t"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "now";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0 + 10 * SEC, LEASE);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_EVENT_RAISED);
    dt_event more[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    c = episode_commit(item, more, 1, DT_STATUS_RUNNING);
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    expect_no_orch_work(fx, T0 + 29 * SEC);
    item = lease_one(fx, "w", T0 + 30 * SEC, LEASE);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_TIMER_FIRED);
    assert_int_equal(item->incoming[0].fire_at, T0 + 30 * SEC);
    assert_int_equal(item->history_len, 4);
    dt_orch_item_free(item);
}

static void test_send_message_to_missing_instance_is_not_found(void **state)
{
    fixture *fx = *state;
    dt_message m = {.instance_id = "ghost"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "e";
    dt_error err;
    dt_error_clear(&err);
    assert_int_equal(dt_store_send_message(fx->store, &m, &err), DT_ERR_NOT_FOUND);
    assert_contains(err.message, "ghost");
    expect_no_orch_work(fx, T0);
}

static void test_episode_message_to_missing_instance_is_dropped(void **state)
{
    fixture *fx = *state;
    create(fx, "sender", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_message m = {.instance_id = "ghost"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "hello";
    dt_event app[1] = {item->incoming[0]};
    dt_commit c = episode_commit(item, app, 1, DT_STATUS_RUNNING);
    c.u.episode.messages = &m;
    c.u.episode.n_messages = 1;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    dt_instance_state *s = NULL;
    dt_error err;
    assert_int_equal(dt_store_get_instance(fx->store, "ghost", fx->arena, &s, &err),
                     DT_ERR_NOT_FOUND);
    assert_int_equal(get(fx, "sender")->status, DT_STATUS_RUNNING);
    expect_no_orch_work(fx, T0);
}

static void test_episode_creates_sub_orchestration(void **state)
{
    fixture *fx = *state;
    create(fx, "parent", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app[2] = {item->incoming[0], ev(DT_EVENT_SUB_ORCHESTRATION_CREATED)};
    app[1].event_id = 0;
    app[1].instance_id = "child";
    app[1].name = "sub";
    dt_new_instance child = new_instance("child", "\"ci\"");
    child.name = "sub";
    child.execution_id = "c-1";
    child.parent_instance_id = "parent";
    child.parent_execution_id = "exec-1";
    child.parent_name = "orch";
    child.parent_task_id = 0;
    dt_message hello = {.instance_id = "child"};
    hello.event = ev(DT_EVENT_EVENT_RAISED);
    hello.event.name = "hi";
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_RUNNING);
    c.u.episode.instances = &child;
    c.u.episode.n_instances = 1;
    c.u.episode.messages = &hello;   /* reaches the child created in the same commit */
    c.u.episode.n_messages = 1;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    dt_instance_state *s = get(fx, "child");
    assert_int_equal(s->status, DT_STATUS_PENDING);
    assert_str(s->name, "sub");
    assert_str(s->parent_instance_id, "parent");
    item = lease_one(fx, "w", T0, LEASE);
    assert_string_equal(item->instance_id, "child");
    assert_int_equal(item->n_incoming, 2);
    const dt_event *e = &item->incoming[0];
    assert_int_equal(e->type, DT_EVENT_EXECUTION_STARTED);
    assert_str(e->input, "\"ci\"");
    assert_str(e->parent_instance_id, "parent");
    assert_str(e->parent_execution_id, "exec-1");
    assert_str(e->parent_name, "orch");
    assert_int_equal(item->incoming[1].type, DT_EVENT_EVENT_RAISED);
    dt_orch_item_free(item);
}

/* ---- durability and concurrency ------------------------------------------------------------ */

static void test_state_survives_close_and_reopen(void **state)
{
    fixture *fx = *state;
    create(fx, "keep", "\"k\"");
    run_first_episode(fx, "keep", "act");
    dt_message m = {.instance_id = "keep"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "later";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);

    dt_store_close(fx->store);
    fx->store = NULL;
    assert_ok(g_open(fx->dir, &fx->store, &err), &err);

    dt_instance_state *s = get(fx, "keep");
    assert_int_equal(s->status, DT_STATUS_RUNNING);
    assert_str(s->input, "\"k\"");
    size_t n = 0;
    history(fx, "keep", &n);
    assert_int_equal(n, 3);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->n_incoming, 1);
    assert_str(item->incoming[0].name, "later");
    dt_orch_item_free(item);
    dt_activity_item *a;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &a), 1);
    assert_str(a->name, "act");
    dt_activity_item_free(a);
}

#define CONC_INSTANCES 40
#define CONC_THREADS 4

typedef struct conc_state {
    fixture *fx;
    pthread_mutex_t mu;
    int seen[CONC_INSTANCES];   /* guarded by mu */
    int errors;                 /* guarded by mu */
} conc_state;

typedef struct conc_worker {
    conc_state *cs;
    char owner[16];
} conc_worker;

static void *conc_run(void *arg)
{
    conc_worker *w = arg;
    /* bounded: a store that hands out the same instance twice must fail, not spin */
    for (int round = 0; round < CONC_INSTANCES; round++) {
        dt_orch_item *items[3];
        size_t n = 0;
        dt_error err;
        dt_status st = dt_store_lease_orchestrations(w->cs->fx->store, w->owner, T0, LEASE, 3,
                                                     NULL, items, &n, &err);
        pthread_mutex_lock(&w->cs->mu);
        if (st != DT_OK)
            w->cs->errors++;
        for (size_t i = 0; i < n; i++) {
            int k = atoi(items[i]->instance_id + 1);
            if (k >= 0 && k < CONC_INSTANCES)
                w->cs->seen[k]++;
            else
                w->cs->errors++;
        }
        pthread_mutex_unlock(&w->cs->mu);
        for (size_t i = 0; i < n; i++)
            dt_orch_item_free(items[i]);
        if (st != DT_OK || n == 0)
            return NULL;
    }
    return NULL;
}

static void test_concurrent_leases_never_share_an_instance(void **state)
{
    fixture *fx = *state;
    char id[16];
    for (int i = 0; i < CONC_INSTANCES; i++) {
        snprintf(id, sizeof id, "c%d", i);
        create(fx, id, NULL);
    }
    conc_state cs = {.fx = fx};
    pthread_mutex_init(&cs.mu, NULL);
    pthread_t th[CONC_THREADS];
    conc_worker w[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        w[i].cs = &cs;
        snprintf(w[i].owner, sizeof w[i].owner, "t%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, conc_run, &w[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&cs.mu);
    assert_int_equal(cs.errors, 0);
    for (int i = 0; i < CONC_INSTANCES; i++)
        assert_int_equal(cs.seen[i], 1);
}

/* ---- execution-scoped messages ------------------------------------------------------------- */

static void test_message_execution_id_reaches_the_incoming_event(void **state)
{
    fixture *fx = *state;
    create(fx, "x", NULL);
    run_first_episode(fx, "x", "act");   /* its activity belongs to exec-1 */
    dt_message with = {.instance_id = "x", .execution_id = "exec-1"};
    with.event = ev(DT_EVENT_EVENT_RAISED);
    with.event.name = "with";
    dt_message without = {.instance_id = "x"};
    without.event = ev(DT_EVENT_EVENT_RAISED);
    without.event.name = "without";
    /* an ExecutionStarted keeps its own execution id, whatever its message says */
    dt_message started = {.instance_id = "x", .execution_id = "other"};
    started.event = ev(DT_EVENT_EXECUTION_STARTED);
    started.event.name = "orch";
    started.event.instance_id = "x";
    started.event.execution_id = "own";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &with, &err), &err);
    assert_ok(dt_store_send_message(fx->store, &without, &err), &err);
    assert_ok(dt_store_send_message(fx->store, &started, &err), &err);
    /* an activity result without one belongs to the execution that scheduled the activity */
    dt_activity_item *a;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &a), 1);
    dt_commit done = activity_done(a, "1");
    commit_expect(fx, &done, DT_OK);
    dt_activity_item_free(a);

    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->n_incoming, 4);
    assert_str(item->incoming[0].name, "with");
    assert_str(item->incoming[0].execution_id, "exec-1");
    assert_str(item->incoming[1].name, "without");
    assert_null(item->incoming[1].execution_id);
    assert_int_equal(item->incoming[2].type, DT_EVENT_EXECUTION_STARTED);
    assert_str(item->incoming[2].execution_id, "own");
    assert_int_equal(item->incoming[3].type, DT_EVENT_TASK_COMPLETED);
    assert_str(item->incoming[3].execution_id, "exec-1");

    /* an episode's messages keep theirs too */
    dt_message timer = {.instance_id = "x", .execution_id = "exec-1",
                        .visible_at = T0 + 10 * SEC};
    timer.event = ev(DT_EVENT_TIMER_FIRED);
    timer.event.task_id = 1;
    timer.event.fire_at = T0 + 10 * SEC;
    dt_message nudge = {.instance_id = "x", .visible_at = T0 + 10 * SEC};
    nudge.event = ev(DT_EVENT_EVENT_RAISED);
    nudge.event.name = "nudge";
    dt_message msgs[2] = {timer, nudge};
    dt_event app[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    dt_commit c = episode_commit(item, app, 1, DT_STATUS_RUNNING);
    c.u.episode.messages = msgs;
    c.u.episode.n_messages = 2;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    item = lease_one(fx, "w", T0 + 10 * SEC, LEASE);
    assert_int_equal(item->n_incoming, 2);
    assert_int_equal(item->incoming[0].type, DT_EVENT_TIMER_FIRED);
    assert_str(item->incoming[0].execution_id, "exec-1");
    assert_null(item->incoming[1].execution_id);
    dt_orch_item_free(item);
}

/* ---- history out of the lease ---------------------------------------------------------------- */

static void test_history_len_counts_commits_and_loads_from_the_middle(void **state)
{
    fixture *fx = *state;
    create(fx, "h", NULL);
    run_first_episode(fx, "h", "act");   /* 3 events */
    dt_message m = {.instance_id = "h"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "e1";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 3);
    assert_null(item->past);
    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0]};
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_RUNNING);
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    m.event.name = "e2";
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 5);

    size_t n = 0, n_all = 0;
    dt_event *all = load(fx, "h", 0, &n);
    history(fx, "h", &n_all);
    assert_int_equal(n, 5);
    assert_int_equal(n_all, 5);
    static const dt_event_type want[5] = {
        DT_EVENT_ORCHESTRATOR_STARTED, DT_EVENT_EXECUTION_STARTED, DT_EVENT_TASK_SCHEDULED,
        DT_EVENT_ORCHESTRATOR_STARTED, DT_EVENT_EVENT_RAISED};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(all[i].type, want[i]);
    dt_event *tail = load(fx, "h", 3, &n);
    assert_int_equal(n, 2);
    assert_int_equal(tail[0].type, DT_EVENT_ORCHESTRATOR_STARTED);
    assert_int_equal(tail[1].type, DT_EVENT_EVENT_RAISED);
    assert_str(tail[1].name, "e1");
    tail = load(fx, "h", 4, &n);
    assert_int_equal(n, 1);
    assert_str(tail[0].name, "e1");
    load(fx, "h", 5, &n);
    assert_int_equal(n, 0);
    load(fx, "h", 99, &n);
    assert_int_equal(n, 0);
    dt_orch_item_free(item);

    dt_event *h = NULL;
    dt_error_clear(&err);
    assert_int_equal(dt_store_load_history(fx->store, "nope", 0, fx->arena, &h, &n, &err),
                     DT_ERR_NOT_FOUND);
    assert_contains(err.message, "nope");
}

/* window: dt_store_read_history of ID from FROM_SEQ, at most MAX bytes (fixture's arena). */
static dt_history_window window(fixture *fx, const char *id, size_t from_seq, size_t max)
{
    dt_history_window w;
    dt_error err;
    assert_ok(dt_store_read_history(fx->store, id, from_seq, max, fx->arena, &w, &err), &err);
    if (w.n == 0)
        assert_null(w.events);
    return w;
}

/* A reader pages through a history in windows of bounded bytes, and learns from the
 * generation whether the history was replaced between two of them. */
static void test_history_is_read_in_windows_of_bounded_bytes(void **state)
{
    fixture *fx = *state;
    create(fx, "win", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    enum { BIG = 8 };
    char *payload = dt_arena_alloc(fx->arena, 1003);
    payload[0] = '"';
    uint32_t r = 12345;   /* letters that do not compress, should a store compress */
    for (int i = 1; i <= 1000; i++) {
        r = r * 1103515245u + 12345u;
        payload[i] = (char)('a' + (r >> 16) % 26);
    }
    strcpy(payload + 1001, "\"");
    dt_event app[2 + BIG] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0]};
    char names[BIG][8];
    for (int i = 0; i < BIG; i++) {
        snprintf(names[i], sizeof names[i], "e%d", i);
        app[2 + i] = ev(DT_EVENT_EVENT_RAISED);
        app[2 + i].name = names[i];
        app[2 + i].input = payload;
    }
    dt_commit c = episode_commit(item, app, 2 + BIG, DT_STATUS_RUNNING);
    c.u.episode.name = item->incoming[0].name;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    dt_history_window all = window(fx, "win", 0, 0);   /* no bound: all of it */
    assert_int_equal(all.n, 2 + BIG);
    assert_false(all.more);
    /* 2,500 bytes take two of the 1 KB events at most (and the two small ones in front): the
     * windows, laid end to end, are the history, each says whether more follow, and all saw
     * one generation */
    size_t at = 0, windows = 0;
    for (bool more = true; more; windows++) {
        dt_history_window w = window(fx, "win", at, 2500);
        assert_true(w.n >= 1 && w.n <= (at == 0 ? 4 : 2));   /* two small events first */
        assert_int_equal(w.gen, all.gen);
        for (size_t i = 0; i < w.n; i++) {
            assert_int_equal(w.events[i].type, all.events[at + i].type);
            if (all.events[at + i].name)
                assert_str(w.events[i].name, all.events[at + i].name);
        }
        at += w.n;
        more = w.more;
        assert_int_equal(more, at < all.n);
    }
    assert_int_equal(at, all.n);
    assert_true(windows >= BIG / 2);
    /* a bound smaller than any event still gives one event a window */
    for (size_t i = 0; i < all.n; i++) {
        dt_history_window w = window(fx, "win", i, 1);
        assert_int_equal(w.n, 1);
        assert_int_equal(w.more, i + 1 < all.n);
    }
    dt_history_window past = window(fx, "win", all.n, 2500);
    assert_int_equal(past.n, 0);
    assert_false(past.more);

    /* continue-as-new replaces the history: a window after it is of another generation */
    dt_message m = {.instance_id = "win"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "go";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0, LEASE);
    dt_event again[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), ev(DT_EVENT_EXECUTION_STARTED)};
    again[1].name = "orch";
    again[1].instance_id = "win";
    again[1].execution_id = "exec-2";
    c = episode_commit(item, again, 2, DT_STATUS_RUNNING);
    c.u.episode.reset_history = true;
    c.u.episode.execution_id = "exec-2";
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    dt_history_window after = window(fx, "win", 0, 2500);
    assert_int_equal(after.n, 2);
    assert_false(after.more);
    assert_true(after.gen != all.gen);

    /* and so is the history of an instance created again under the same id: finished,
     * purged, started anew a second later */
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0, LEASE);
    dt_event end[1] = {ev(DT_EVENT_EXECUTION_COMPLETED)};
    c = episode_commit(item, end, 1, DT_STATUS_COMPLETED);
    c.u.episode.completed_at = T0 + SEC;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    assert_ok(dt_store_purge_instance(fx->store, "win", &err), &err);
    dt_new_instance ni = new_instance("win", NULL);
    ni.created_at = T0 + SEC;
    assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
    item = lease_one(fx, "w", T0 + SEC, LEASE);
    dt_event first[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0]};
    c = episode_commit(item, first, 2, DT_STATUS_RUNNING);
    c.u.episode.name = item->incoming[0].name;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    dt_history_window anew = window(fx, "win", 0, 2500);
    assert_int_equal(anew.n, 2);
    assert_true(anew.gen != all.gen && anew.gen != after.gen);

    dt_history_window w;
    dt_error_clear(&err);
    assert_int_equal(dt_store_read_history(fx->store, "nope", 0, 2500, fx->arena, &w, &err),
                     DT_ERR_NOT_FOUND);
    assert_contains(err.message, "nope");
    assert_int_equal(w.n, 0);
}

static void test_history_len_after_continue_as_new_counts_only_the_new_history(void **state)
{
    fixture *fx = *state;
    create(fx, "loop", "0");
    run_first_episode(fx, "loop", "act");   /* 3 events */
    dt_message m = {.instance_id = "loop"};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "go";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 3);
    dt_event app[2] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), ev(DT_EVENT_EXECUTION_STARTED)};
    app[1].name = "orch";
    app[1].input = "1";
    app[1].instance_id = "loop";
    app[1].execution_id = "exec-2";
    dt_commit c = episode_commit(item, app, 2, DT_STATUS_RUNNING);
    c.u.episode.reset_history = true;
    c.u.episode.execution_id = "exec-2";
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 2);
    size_t n = 0;
    dt_event *h = load(fx, "loop", 1, &n);   /* seqs start again at 0 */
    assert_int_equal(n, 1);
    assert_int_equal(h[0].type, DT_EVENT_EXECUTION_STARTED);
    assert_str(h[0].execution_id, "exec-2");
    dt_event more[1] = {ev(DT_EVENT_TIMER_CREATED)};
    more[0].event_id = 0;
    c = episode_commit(item, more, 1, DT_STATUS_RUNNING);
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 3);
    h = load(fx, "loop", 2, &n);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].type, DT_EVENT_TIMER_CREATED);
    load(fx, "loop", 0, &n);
    assert_int_equal(n, 3);
    dt_orch_item_free(item);
}

/* ---- queries ------------------------------------------------------------------------------ */

#define LATER (T0 + 1000 * SEC)   /* after every created_at the query tests use */

/* make_instance: ID created at CREATED with NAME; unless STATUS is Pending, one episode (at
 * LATER) takes it to STATUS, scheduling activity ID and setting output and custom status. */
static void make_instance(fixture *fx, const char *id, const char *name, dt_time created,
                          dt_runtime_status status)
{
    dt_new_instance ni = new_instance(id, "\"in\"");
    ni.name = name;
    ni.created_at = created;
    dt_error err;
    assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
    if (status == DT_STATUS_PENDING)
        return;
    dt_orch_item *items[16];
    size_t n = lease_orch(fx, "w", LATER, LEASE, 16, items);
    dt_orch_item *item = find_item(items, n, id);
    dt_event app[2] = {item->incoming[0], ev(DT_EVENT_TASK_SCHEDULED)};
    app[1].event_id = 0;
    app[1].name = id;
    dt_new_activity act = {.instance_id = id, .execution_id = "exec-1", .scheduled = &app[1]};
    dt_commit c = episode_commit(item, app, 2, status);
    c.u.episode.output = "\"out\"";
    c.u.episode.custom_status = "\"cs\"";
    c.u.episode.completed_at = dt_runtime_status_is_terminal(status) ? LATER : 0;
    c.u.episode.activities = &act;
    c.u.episode.n_activities = 1;
    commit_expect(fx, &c, DT_OK);
    for (size_t i = 0; i < n; i++) {
        if (items[i] != item)
            assert_ok(dt_store_abandon_orchestration(fx->store, items[i], 0, &err), &err);
        dt_orch_item_free(items[i]);
    }
}

/* query_page: run Q; the page's ids joined by ',' (in the arena), *NEXT the token. */
/* query_page: the ids of one page of Q, in instance id order (these tests are of the filters;
 * the default order, newest first, has a test of its own). */
static const char *query_page(fixture *fx, const dt_query *q_in, const char **next)
{
    dt_instance_state *out = NULL;
    size_t n = 99;
    const char *token = "unset";
    dt_error err;
    dt_query by_id = *q_in;
    by_id.by_id = true;
    const dt_query *q = &by_id;
    assert_ok(dt_store_query_instances(fx->store, q, fx->arena, &out, &n, &token, &err), &err);
    char buf[2048] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "",
                                out[i].instance_id);
        assert_true(len < sizeof buf);
    }
    if (n > 0)
        assert_string_equal(token ? token : out[n - 1].instance_id, out[n - 1].instance_id);
    if (next)
        *next = token;
    else
        assert_null(token);
    return dt_arena_strdup(fx->arena, buf);
}

static void test_query_pages_through_every_instance_once(void **state)
{
    fixture *fx = *state;
    char id[16];
    for (int i = 0; i < 25; i++) {   /* not created in id order */
        snprintf(id, sizeof id, "q%02d", (i * 7) % 25);
        create(fx, id, NULL);
    }
    dt_query q = {.page_size = 10, .by_id = true};
    int seen[25] = {0};
    size_t sizes[3] = {0};
    const char *tokens[3] = {NULL};
    size_t pages = 0;
    const char *token = NULL;
    do {
        q.continuation = token;
        dt_instance_state *out = NULL;
        size_t n = 0;
        dt_error err;
        assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &token, &err),
                  &err);
        assert_true(pages < 3);
        sizes[pages] = n;
        tokens[pages++] = token;
        for (size_t i = 0; i < n; i++) {
            seen[atoi(out[i].instance_id + 1)]++;
            if (i > 0)
                assert_true(strcmp(out[i - 1].instance_id, out[i].instance_id) < 0);
            assert_int_equal(out[i].status, DT_STATUS_PENDING);
        }
    } while (token != NULL);
    assert_int_equal(pages, 3);
    assert_int_equal(sizes[0], 10);
    assert_int_equal(sizes[1], 10);
    assert_int_equal(sizes[2], 5);
    assert_str(tokens[0], "q09");
    assert_str(tokens[1], "q19");
    assert_null(tokens[2]);
    for (int i = 0; i < 25; i++)
        assert_int_equal(seen[i], 1);

    /* exactly a page left: no token, since nothing more matches */
    const char *next = NULL;
    q.continuation = "q19";
    q.page_size = 5;
    assert_str(query_page(fx, &q, &next), "q20,q21,q22,q23,q24");
    assert_null(next);
    q.continuation = NULL;
    q.page_size = 25;
    query_page(fx, &q, &next);
    assert_null(next);
    q.continuation = "q24";   /* past the end: an empty page */
    assert_str(query_page(fx, &q, NULL), "");
}

/* json_string_of: a JSON string of LEN bytes, quotes included (malloc'd) */
static char *json_string_of(size_t len)
{
    char *v = malloc(len + 1);
    assert_non_null(v);
    v[0] = '"';
    memset(v + 1, 'p', len - 2);
    v[len - 1] = '"';
    v[len] = '\0';
    return v;
}

/* A page holds at most DT_QUERY_PAGE_BYTES of payloads (a query of 1,000 rows of 1 MiB each
 * once held 1 GB), with a token for the rest, in both orders; brief rows are not cut by
 * payloads. */
static void test_query_pages_end_on_their_bytes(void **state)
{
    fixture *fx = *state;
    size_t big = DT_PAYLOAD_MAX - 16;
    char *input = json_string_of(big);
    char id[16];
    int total = (int)(DT_QUERY_PAGE_BYTES / big) + 4;   /* a few rows past one page's bytes */
    for (int i = 0; i < total; i++) {
        snprintf(id, sizeof id, "pb%02d", i);
        create(fx, id, input);
    }
    free(input);
    for (int newest = 0; newest < 2; newest++) {
        dt_query q = {.page_size = 100, .with_payloads = true, .by_id = !newest};
        int seen[64] = {0}, pages = 0;
        size_t first = 0;
        const char *token = NULL;
        do {
            q.continuation = token;
            dt_instance_state *out = NULL;
            size_t n = 0;
            dt_error err;
            assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &token, &err),
                      &err);
            if (pages++ == 0)
                first = n;
            assert_true(n > 0 && n * big <= DT_QUERY_PAGE_BYTES);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(strlen(out[i].input), big);
                seen[atoi(out[i].instance_id + 2)]++;
            }
            assert_true(pages < 10);
        } while (token != NULL);
        /* the first page stops before the row that would take it past the bound */
        assert_int_equal(first, DT_QUERY_PAGE_BYTES / big);
        assert_true(pages >= 2);
        for (int i = 0; i < total; i++)
            assert_int_equal(seen[i], 1);
    }
    dt_query brief = {.page_size = 100, .by_id = true};
    dt_instance_state *out = NULL;
    size_t n = 0;
    const char *token = "unset";
    dt_error err;
    assert_ok(dt_store_query_instances(fx->store, &brief, fx->arena, &out, &n, &token, &err),
              &err);
    assert_int_equal(n, (size_t)total);
    assert_null(token);
}

/* A page counts its rows' tags with their payloads: tags of DT_TAGS_MAX on every row would
 * otherwise make a page of 1,000 rows 64 MiB, over any client's receive limit. Brief rows
 * carry tags too, so they are cut the same way. */
static void test_query_pages_count_tags(void **state)
{
    fixture *fx = *state;
    char *tags = malloc(DT_TAGS_MAX + 1);
    assert_non_null(tags);
    memcpy(tags, "{\"k\":\"", 6);
    memset(tags + 6, 't', DT_TAGS_MAX - 8);
    memcpy(tags + DT_TAGS_MAX - 2, "\"}", 3);
    int per_page = (int)(DT_QUERY_PAGE_BYTES / DT_TAGS_MAX), total = per_page + 3;
    char id[16];
    for (int i = 0; i < total; i++) {
        snprintf(id, sizeof id, "tg%02d", i);
        dt_new_instance ni = new_instance(id, NULL);
        ni.tags = tags;
        dt_error err;
        assert_ok(dt_store_create_instance(fx->store, &ni, &err), &err);
    }
    free(tags);
    assert_int_equal(strlen(get(fx, "tg00")->tags), DT_TAGS_MAX);
    for (int full = 0; full < 2; full++) {
        dt_query q = {.page_size = 100, .with_payloads = full};
        const char *next = NULL;
        const char *ids = query_page(fx, &q, &next);   /* "tg00,tg01,...": 5 bytes a row */
        assert_int_equal(strlen(ids), (size_t)per_page * 5 - 1);
        assert_non_null(next);
        q.continuation = next;
        char rest[32];
        snprintf(rest, sizeof rest, "tg%02d,tg%02d,tg%02d", per_page, per_page + 1, per_page + 2);
        assert_string_equal(query_page(fx, &q, NULL), rest);
    }
}

/* A completed-time bound, either end, matches only instances that completed: one still
 * running (completed_at 0) is not "completed before" any time, nor after the epoch. */
static void test_completed_time_bounds_match_only_completed_instances(void **state)
{
    fixture *fx = *state;
    create(fx, "cq-done", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app = item->incoming[0];
    dt_commit c = episode_commit(item, &app, 1, DT_STATUS_COMPLETED);
    c.u.episode.completed_at = T0 + 5 * SEC;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    create(fx, "cq-running", NULL);
    struct {
        dt_time from, to;
        size_t want;
    } cases[] = {
        {0, T0 + 10 * SEC, 1},
        {dt_time_bound(0), 0, 1},
        {dt_time_bound(0), T0 + 10 * SEC, 1},
        {T0 + 6 * SEC, 0, 0},
        {0, T0, 0},
        {0, 0, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dt_query q = {.by_id = true, .id_prefix = "cq-", .completed_from = cases[i].from,
                      .completed_to = cases[i].to};
        dt_instance_state *out = NULL;
        size_t n = 0;
        const char *next = NULL;
        dt_error err;
        assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err),
                  &err);
        if (n != cases[i].want)
            fail_msg("case %zu: %zu rows, want %zu", i, n, cases[i].want);
        if (n == 1)
            assert_string_equal(out[0].instance_id, "cq-done");
    }
}

/* Counts by status: what the database holds, each status on its own. */
static void test_count_by_status_counts_each_status(void **state)
{
    fixture *fx = *state;
    size_t counts[DT_STATUS_COUNT];
    dt_error err;
    assert_ok(dt_store_count_by_status(fx->store, counts, &err), &err);
    for (int i = 0; i < DT_STATUS_COUNT; i++)
        assert_int_equal(counts[i], 0);
    create(fx, "cs-done", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app = item->incoming[0];
    dt_commit c = episode_commit(item, &app, 1, DT_STATUS_COMPLETED);
    c.u.episode.completed_at = T0 + SEC;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    create(fx, "cs-a", NULL);
    create(fx, "cs-b", NULL);
    assert_ok(dt_store_count_by_status(fx->store, counts, &err), &err);
    assert_int_equal(counts[DT_STATUS_COMPLETED], 1);
    assert_int_equal(counts[DT_STATUS_PENDING], 2);
    assert_int_equal(counts[DT_STATUS_RUNNING] + counts[DT_STATUS_FAILED] +
                         counts[DT_STATUS_TERMINATED] + counts[DT_STATUS_SUSPENDED],
                     0);
}

static void test_query_page_size_defaults_to_100_and_over_1000_is_refused(void **state)
{
    fixture *fx = *state;
    char id[16];
    for (int i = 0; i < 101; i++) {
        snprintf(id, sizeof id, "d%03d", i);
        create(fx, id, NULL);
    }
    dt_query q = {.page_size = 0, .by_id = true};
    dt_instance_state *out = NULL;
    size_t n = 0;
    const char *next = NULL;
    dt_error err;
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err), &err);
    assert_int_equal(n, 100);
    assert_str(next, "d099");
    q.page_size = 1000;
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err), &err);
    assert_int_equal(n, 101);
    assert_null(next);

    q.page_size = 1001;
    dt_error_clear(&err);
    assert_int_equal(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err),
                     DT_ERR_INVALID_ARG);
    assert_contains(err.message, "1001");
    assert_int_equal(n, 0);
    q.page_size = 10;
    dt_runtime_status bogus[] = {DT_STATUS_RUNNING, (dt_runtime_status)42};
    q.statuses = bogus;
    q.n_statuses = 2;
    dt_error_clear(&err);
    assert_int_equal(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err),
                     DT_ERR_INVALID_ARG);
    assert_contains(err.message, "42");
}

/* The default order is newest first: creation time descending, ties by id descending; pages
 * of it (the token holds the last row's time and id) visit every row once, with the filters. */
static void test_query_lists_newest_first_and_pages_so(void **state)
{
    fixture *fx = *state;
    make_instance(fx, "b-1", "alpha", T0, DT_STATUS_COMPLETED);
    make_instance(fx, "a-1", "alpha", T0 + 10 * SEC, DT_STATUS_COMPLETED);
    make_instance(fx, "a-2", "alpha", T0 + 10 * SEC, DT_STATUS_RUNNING);   /* a tie */
    make_instance(fx, "c-1", "beta", T0 + 20 * SEC, DT_STATUS_FAILED);
    make_instance(fx, "a-3", "alpha", T0 + 30 * SEC, DT_STATUS_COMPLETED);
    const char *want[] = {"a-3", "c-1", "a-2", "a-1", "b-1"};
    dt_query q = {.page_size = 2};
    size_t k = 0, pages = 0;
    const char *token = NULL;
    do {
        q.continuation = token;
        dt_instance_state *out = NULL;
        size_t n = 0;
        dt_error err;
        assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &token, &err),
                  &err);
        for (size_t i = 0; i < n; i++, k++) {
            assert_true(k < 5);
            assert_str(out[i].instance_id, want[k]);
        }
        pages++;
    } while (token != NULL);
    assert_int_equal(k, 5);
    assert_int_equal(pages, 3);
    /* with a filter: the alpha ones, newest first, one page */
    q = (dt_query){.name = "alpha"};
    dt_instance_state *out = NULL;
    size_t n = 0;
    dt_error err;
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &token, &err), &err);
    assert_int_equal(n, 4);
    assert_str(out[0].instance_id, "a-3");
    assert_str(out[3].instance_id, "b-1");
    assert_null(token);
}

static void test_query_filters_alone_and_combined(void **state)
{
    fixture *fx = *state;
    make_instance(fx, "a-1", "alpha", T0, DT_STATUS_COMPLETED);
    make_instance(fx, "a-2", "alpha", T0 + 10 * SEC, DT_STATUS_RUNNING);
    make_instance(fx, "a-3", "beta", T0 + 20 * SEC, DT_STATUS_FAILED);
    make_instance(fx, "b-1", "alpha", T0 + 30 * SEC, DT_STATUS_TERMINATED);
    make_instance(fx, "b-2", "beta", T0 + 40 * SEC, DT_STATUS_PENDING);

    dt_query q = {0};
    assert_str(query_page(fx, &q, NULL), "a-1,a-2,a-3,b-1,b-2");

    dt_runtime_status done_or_failed[] = {DT_STATUS_COMPLETED, DT_STATUS_FAILED};
    q = (dt_query){.statuses = done_or_failed, .n_statuses = 2};
    assert_str(query_page(fx, &q, NULL), "a-1,a-3");
    dt_runtime_status pending[] = {DT_STATUS_PENDING, DT_STATUS_PENDING};   /* repeats are fine */
    q = (dt_query){.statuses = pending, .n_statuses = 2};
    assert_str(query_page(fx, &q, NULL), "b-2");
    dt_runtime_status suspended[] = {DT_STATUS_SUSPENDED};
    q = (dt_query){.statuses = suspended, .n_statuses = 1};
    assert_str(query_page(fx, &q, NULL), "");

    q = (dt_query){.created_from = T0 + 10 * SEC, .created_to = T0 + 30 * SEC};   /* inclusive */
    assert_str(query_page(fx, &q, NULL), "a-2,a-3,b-1");
    q = (dt_query){.created_from = T0 + 30 * SEC};
    assert_str(query_page(fx, &q, NULL), "b-1,b-2");
    q = (dt_query){.created_to = T0 + 10 * SEC};
    assert_str(query_page(fx, &q, NULL), "a-1,a-2");

    q = (dt_query){.name = "alpha"};
    assert_str(query_page(fx, &q, NULL), "a-1,a-2,b-1");
    q = (dt_query){.name = "alph"};   /* exact, not a prefix */
    assert_str(query_page(fx, &q, NULL), "");

    q = (dt_query){.id_prefix = "a-"};
    assert_str(query_page(fx, &q, NULL), "a-1,a-2,a-3");
    q = (dt_query){.id_prefix = "b-2"};   /* a whole id is a prefix of itself */
    assert_str(query_page(fx, &q, NULL), "b-2");

    dt_runtime_status some[] = {DT_STATUS_RUNNING, DT_STATUS_TERMINATED, DT_STATUS_COMPLETED};
    q = (dt_query){.statuses = some, .n_statuses = 3, .name = "alpha",
                   .created_from = T0 + 5 * SEC};
    assert_str(query_page(fx, &q, NULL), "a-2,b-1");
    q.id_prefix = "a-";
    assert_str(query_page(fx, &q, NULL), "a-2");
    q.created_to = T0 + 9 * SEC;
    assert_str(query_page(fx, &q, NULL), "");

    /* payloads only when asked for; the rest of the row always */
    q = (dt_query){.id_prefix = "a-1", .with_payloads = true};
    dt_instance_state *out = NULL;
    size_t n = 0;
    const char *next = NULL;
    dt_error err;
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err), &err);
    assert_int_equal(n, 1);
    assert_str(out[0].input, "\"in\"");
    assert_str(out[0].output, "\"out\"");
    assert_str(out[0].custom_status, "\"cs\"");
    q.with_payloads = false;
    assert_ok(dt_store_query_instances(fx->store, &q, fx->arena, &out, &n, &next, &err), &err);
    assert_int_equal(n, 1);
    assert_null(out[0].input);
    assert_null(out[0].output);
    assert_null(out[0].custom_status);
    assert_str(out[0].instance_id, "a-1");
    assert_str(out[0].execution_id, "exec-1");
    assert_str(out[0].name, "alpha");
    assert_int_equal(out[0].status, DT_STATUS_COMPLETED);
    assert_int_equal(out[0].created_at, T0);
    assert_int_equal(out[0].completed_at, LATER);
}

static void test_query_id_prefix_is_literal(void **state)
{
    fixture *fx = *state;
    const char *ids[] = {"x%1", "x_1", "xa1", "xb%", "x", "y%", "\xc3\xa9" "1",
                         "\xc3\xa9" "a", "\xc3\xaa"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        create(fx, ids[i], NULL);
    dt_query q = {.id_prefix = "x%"};
    assert_str(query_page(fx, &q, NULL), "x%1");
    q.id_prefix = "x_";
    assert_str(query_page(fx, &q, NULL), "x_1");
    q.id_prefix = "%";
    assert_str(query_page(fx, &q, NULL), "");
    q.id_prefix = "_";
    assert_str(query_page(fx, &q, NULL), "");
    q.id_prefix = "y%";
    assert_str(query_page(fx, &q, NULL), "y%");
    q.id_prefix = "x";   /* bytewise order */
    assert_str(query_page(fx, &q, NULL), "x,x%1,x_1,xa1,xb%");
    q.id_prefix = "\xc3\xa9";   /* a multi-byte character */
    assert_str(query_page(fx, &q, NULL), "\xc3\xa9" "1,\xc3\xa9" "a");

    /* paging within a prefix */
    const char *next = NULL;
    q = (dt_query){.id_prefix = "x", .page_size = 2};
    assert_str(query_page(fx, &q, &next), "x,x%1");
    q.continuation = next;
    assert_str(query_page(fx, &q, &next), "x_1,xa1");
    q.continuation = next;
    assert_str(query_page(fx, &q, &next), "xb%");
    assert_null(next);
    /* a token below the prefix range starts at the range */
    q = (dt_query){.id_prefix = "y", .continuation = "a"};
    assert_str(query_page(fx, &q, NULL), "y%");

    /* prefixes whose last byte, incremented, is no longer UTF-8 (DEL, then U+00BF): the range
     * ends at the next character, taking no more and no less */
    const char *edges[] = {"w\x7f", "w\x7f" "1", "w\xc2\x80", "v\xc2\xbf", "v\xc2\xbf" "1",
                           "v\xc3\x80"};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        create(fx, edges[i], NULL);
    q = (dt_query){.id_prefix = "w\x7f"};
    assert_str(query_page(fx, &q, NULL), "w\x7f,w\x7f" "1");
    q.id_prefix = "v\xc2\xbf";
    assert_str(query_page(fx, &q, NULL), "v\xc2\xbf,v\xc2\xbf" "1");
}

/* ---- purges ------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* waiting_work: the sorted ids of the instances with orchestration work, and (after '|') the
 * names of the activities waiting, all leased and at once abandoned. */
static const char *waiting_work(fixture *fx)
{
    dt_orch_item *items[16];
    dt_activity_item *acts[16];
    size_t n = lease_orch(fx, "look", LATER, LEASE, 16, items);
    size_t na = lease_acts(fx, "look", LATER, LEASE, 16, acts);
    const char *names[32];
    for (size_t i = 0; i < n; i++)
        names[i] = items[i]->instance_id;
    for (size_t i = 0; i < na; i++)
        names[n + i] = acts[i]->name;
    qsort(names, n, sizeof names[0], cmp_str);
    qsort(names + n, na, sizeof names[0], cmp_str);
    char buf[1024] = "";
    size_t len = 0;
    for (size_t i = 0; i < n + na; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s",
                                i == n ? "|" : (i ? "," : ""), names[i]);
    if (na == 0)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "|");
    assert_true(len < sizeof buf);
    dt_error err;
    for (size_t i = 0; i < n; i++) {
        assert_ok(dt_store_abandon_orchestration(fx->store, items[i], 0, &err), &err);
        dt_orch_item_free(items[i]);
    }
    for (size_t i = 0; i < na; i++) {
        assert_ok(dt_store_abandon_activity(fx->store, acts[i], 0, &err), &err);
        dt_activity_item_free(acts[i]);
    }
    return dt_arena_strdup(fx->arena, buf);
}

static void expect_gone(fixture *fx, const char *id)
{
    dt_instance_state *s = NULL;
    dt_event *h = NULL;
    size_t n = 0;
    dt_error err;
    assert_int_equal(dt_store_get_instance(fx->store, id, fx->arena, &s, &err),
                     DT_ERR_NOT_FOUND);
    assert_int_equal(dt_store_get_history(fx->store, id, fx->arena, &h, &n, &err),
                     DT_ERR_NOT_FOUND);
    assert_int_equal(dt_store_load_history(fx->store, id, 0, fx->arena, &h, &n, &err),
                     DT_ERR_NOT_FOUND);
}

static void poke(fixture *fx, const char *id)
{
    dt_message m = {.instance_id = id};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "poke";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
}

static void test_purge_of_a_live_instance_is_refused_and_nothing_is_lost(void **state)
{
    fixture *fx = *state;
    create(fx, "live", "\"in\"");
    dt_error err;
    dt_error_clear(&err);
    assert_int_equal(dt_store_purge_instance(fx->store, "live", &err), DT_ERR_STATE);
    assert_contains(err.message, "live");
    assert_contains(err.message, "Pending");

    run_first_episode(fx, "live", "act");
    poke(fx, "live");
    dt_error_clear(&err);
    assert_int_equal(dt_store_purge_instance(fx->store, "live", &err), DT_ERR_STATE);
    assert_contains(err.message, "live");
    assert_contains(err.message, "Running");

    assert_int_equal(get(fx, "live")->status, DT_STATUS_RUNNING);
    size_t n = 0;
    history(fx, "live", &n);
    assert_int_equal(n, 3);
    assert_str(waiting_work(fx), "live|act");

    dt_error_clear(&err);
    assert_int_equal(dt_store_purge_instance(fx->store, "ghost", &err), DT_ERR_NOT_FOUND);
    assert_contains(err.message, "ghost");
}

static void test_purge_of_a_finished_instance_removes_its_history_and_all(void **state)
{
    fixture *fx = *state;
    create(fx, "other", NULL);
    run_first_episode(fx, "other", NULL);
    create(fx, "done", "\"in\"");
    run_first_episode(fx, "done", "act");   /* its activity stays outstanding */
    poke(fx, "done");
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app[1] = {ev(DT_EVENT_EXECUTION_COMPLETED)};
    dt_commit c = episode_commit(item, app, 1, DT_STATUS_COMPLETED);
    c.u.episode.completed_at = T0 + SEC;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    poke(fx, "done");   /* a message after the end waits in the inbox */
    assert_str(waiting_work(fx), "done|act");

    dt_error err;
    assert_ok(dt_store_purge_instance(fx->store, "done", &err), &err);
    expect_gone(fx, "done");
    assert_str(waiting_work(fx), "|");   /* its inbox and activity went too */
    assert_int_equal(dt_store_purge_instance(fx->store, "done", &err), DT_ERR_NOT_FOUND);
    size_t n = 0;
    history(fx, "other", &n);   /* another instance is untouched */
    assert_int_equal(n, 2);

    /* the id is free for a new instance, which starts from nothing */
    create(fx, "done", "\"again\"");
    history(fx, "done", &n);
    assert_int_equal(n, 0);
    item = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(item->history_len, 0);
    assert_int_equal(item->n_incoming, 1);
    assert_str(item->incoming[0].input, "\"again\"");
    dt_orch_item_free(item);
}

static void test_purge_by_filter_takes_only_matching_finished_instances(void **state)
{
    fixture *fx = *state;
    make_instance(fx, "p1", "o", T0 + 1 * SEC, DT_STATUS_COMPLETED);
    make_instance(fx, "p2", "o", T0 + 2 * SEC, DT_STATUS_FAILED);
    make_instance(fx, "p3", "o", T0 + 3 * SEC, DT_STATUS_COMPLETED);
    make_instance(fx, "p4", "o", T0 + 2 * SEC, DT_STATUS_RUNNING);
    make_instance(fx, "p5", "o", T0 + 20 * SEC, DT_STATUS_TERMINATED);
    make_instance(fx, "p6", "o", T0 + 2 * SEC, DT_STATUS_PENDING);
    poke(fx, "p3");
    poke(fx, "p5");
    assert_str(waiting_work(fx), "p3,p5,p6|p1,p2,p3,p4,p5");

    /* Running and Pending are asked for but never purged; Failed is not asked for; p5 is
     * out of the time range */
    dt_runtime_status statuses[] = {DT_STATUS_COMPLETED, DT_STATUS_RUNNING, DT_STATUS_PENDING};
    dt_query f = {.statuses = statuses, .n_statuses = 3, .created_from = T0 + 1 * SEC,
                  .created_to = T0 + 10 * SEC};
    size_t purged = 99;
    dt_error err;
    assert_ok(dt_store_purge_instances(fx->store, &f, &purged, &err), &err);
    assert_int_equal(purged, 2);
    expect_gone(fx, "p1");
    expect_gone(fx, "p3");
    dt_query all = {0};
    assert_str(query_page(fx, &all, NULL), "p2,p4,p5,p6");
    assert_str(waiting_work(fx), "p5,p6|p2,p4,p5");
    size_t n = 0;
    history(fx, "p4", &n);
    assert_int_equal(n, 2);

    /* only live statuses asked for: nothing */
    dt_runtime_status live[] = {DT_STATUS_RUNNING, DT_STATUS_PENDING};
    f = (dt_query){.statuses = live, .n_statuses = 2};
    assert_ok(dt_store_purge_instances(fx->store, &f, &purged, &err), &err);
    assert_int_equal(purged, 0);

    /* a name that matches nothing, then a prefix */
    f = (dt_query){.name = "other"};
    assert_ok(dt_store_purge_instances(fx->store, &f, &purged, &err), &err);
    assert_int_equal(purged, 0);
    f = (dt_query){.id_prefix = "p5"};
    assert_ok(dt_store_purge_instances(fx->store, &f, &purged, &err), &err);
    assert_int_equal(purged, 1);

    /* no filter: every finished instance */
    assert_ok(dt_store_purge_instances(fx->store, &all, &purged, &err), &err);
    assert_int_equal(purged, 1);
    assert_str(query_page(fx, &all, NULL), "p4,p6");
    assert_str(waiting_work(fx), "p6|p4");
}

/* A purge by filter goes a batch of instances a transaction (so it does not hold the store
 * for the whole of a large one): every match goes all the same, across batches, and what
 * does not match stays. */
static void test_purge_by_filter_takes_every_match_across_batches(void **state)
{
    fixture *fx = *state;
    enum { N = 1100 };   /* more than two of the stores' batches */
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "many-%04d", i);
        make_instance(fx, id, "o", T0 + i, i % 2 ? DT_STATUS_COMPLETED : DT_STATUS_FAILED);
    }
    make_instance(fx, "many-live", "o", T0, DT_STATUS_RUNNING);
    make_instance(fx, "kept-9999", "other", T0, DT_STATUS_COMPLETED);
    dt_query f = {.name = "o"};
    size_t purged = 0;
    dt_error err;
    assert_ok(dt_store_purge_instances(fx->store, &f, &purged, &err), &err);
    assert_int_equal(purged, N);
    dt_query all = {0};
    assert_str(query_page(fx, &all, NULL), "kept-9999,many-live");
    expect_gone(fx, "many-0000");
    expect_gone(fx, "many-1099");
}

/* ---- queue depths ------------------------------------------------------------------------- */

static void expect_depths(fixture *fx, dt_time now, size_t orchestrations, size_t activities)
{
    size_t o = 99, a = 99;
    dt_error err;
    assert_ok(dt_store_queue_depths(fx->store, now, &o, &a, &err), &err);
    assert_int_equal(o, orchestrations);
    assert_int_equal(a, activities);
}

/* Queue depths count what waits at that time: the instances with a visible message (once each,
 * however many they have) and the visible activities nobody holds. A message or activity not
 * yet due does not count, nor an activity under a lease until the lease runs out. */
static void test_queue_depths_count_what_waits_now(void **state)
{
    fixture *fx = *state;
    create(fx, "d1", NULL);
    run_first_episode(fx, "d1", "act");   /* d1's inbox is empty, its activity waits */
    create(fx, "d2", NULL);
    poke(fx, "d2");                       /* d2: two messages */
    dt_message timer = {.instance_id = "d1", .visible_at = T0 + 60 * SEC};
    timer.event = ev(DT_EVENT_TIMER_FIRED);
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &timer, &err), &err);
    expect_depths(fx, T0, 1, 1);
    expect_depths(fx, T0 + 60 * SEC, 2, 1);

    dt_activity_item *acts[1];
    assert_int_equal(lease_acts(fx, "w", T0, LEASE, 1, acts), 1);
    expect_depths(fx, T0, 1, 0);
    expect_depths(fx, T0 + LEASE + SEC, 1, 1);   /* the lease ran out: it waits again */
    dt_activity_item_free(acts[0]);
}

/* ---- starts in the group commit, leases taken by the commit, deferred commits -------------- */

static dt_commit start_commit(const char *id, dt_error *own)
{
    dt_commit c;
    memset(&c, 0, sizeof c);
    c.kind = DT_COMMIT_START;
    c.u.start = new_instance(id, "1");
    c.result = DT_ERR_INTERNAL;
    c.error = own;
    return c;
}

static void test_start_entries_create_instances_and_a_refused_one_changes_nothing(void **state)
{
    fixture *fx = *state;
    create(fx, "taken", "\"old\"");
    dt_error e1, e2, e3;
    dt_commit batch[3] = {start_commit("s1", &e1), start_commit("taken", &e2),
                          start_commit("s3", &e3)};
    dt_error err;
    assert_ok(dt_store_commit(fx->store, batch, 3, &err), &err);
    assert_int_equal(batch[0].result, DT_OK);
    assert_int_equal(batch[1].result, DT_ERR_ALREADY_EXISTS);
    assert_int_equal(batch[2].result, DT_OK);
    assert_int_equal(e2.code, DT_ERR_ALREADY_EXISTS);
    assert_contains(e2.message, "taken");
    assert_str(get(fx, "taken")->input, "\"old\"");
    assert_int_equal(get(fx, "s1")->status, DT_STATUS_PENDING);
    assert_int_equal(get(fx, "s3")->status, DT_STATUS_PENDING);
    dt_orch_item *items[4];
    size_t n = lease_orch(fx, "w", T0, LEASE, 4, items);
    assert_int_equal(n, 3);   /* taken, s1, s3: each with its ExecutionStarted */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(items[i]->n_incoming, 1);
        dt_orch_item_free(items[i]);
    }
}

/* commit_leasing: commit BATCH asking to lease up to MAX_O / MAX_A at NOW. */
static void commit_leasing(fixture *fx, dt_commit *batch, size_t n, size_t max_o, size_t max_a,
                           dt_commit_lease *L, dt_orch_item **o, dt_activity_item **a)
{
    memset(L, 0, sizeof *L);
    L->owner = "hub";
    L->now = T0;
    L->lease_us = LEASE;
    L->max_orchestrations = max_o;
    L->max_activities = max_a;
    L->orchestrations = o;
    L->activities = a;
    dt_error err;
    assert_ok(dt_store_commit_lease(fx->store, batch, n, L, &err), &err);
}

/* start_leasing: start ID in a commit that leases it (O, A and L take what a commit leases);
 * its work item. */
static dt_orch_item *start_leasing(fixture *fx, const char *id, dt_orch_item **o,
                                   dt_activity_item **a, dt_commit_lease *L)
{
    dt_error own;
    dt_commit start = start_commit(id, &own);
    commit_leasing(fx, &start, 1, 4, 4, L, o, a);
    assert_int_equal(start.result, DT_OK);
    assert_int_equal(L->n_orchestrations, 1);   /* the new instance, with its ExecutionStarted */
    assert_int_equal(L->n_activities, 0);
    return o[0];
}

static void test_commit_leases_the_work_it_made_ready(void **state)
{
    fixture *fx = *state;
    dt_orch_item *o[4];
    dt_activity_item *a[4];
    dt_commit_lease L;
    dt_orch_item *item = start_leasing(fx, "i1", o, a, &L);
    assert_str(item->instance_id, "i1");
    assert_int_equal(item->history_len, 0);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_EXECUTION_STARTED);
    expect_no_orch_work(fx, T0 + SEC);   /* it is leased */

    /* its episode schedules an activity: the commit leases that too */
    dt_event app[3] = {ev(DT_EVENT_ORCHESTRATOR_STARTED), item->incoming[0],
                       ev(DT_EVENT_TASK_SCHEDULED)};
    app[2].event_id = 0;
    app[2].name = "act";
    dt_new_activity act = {.instance_id = "i1", .execution_id = item->state.execution_id,
                           .scheduled = &app[2]};
    dt_commit ep = episode_commit(item, app, 3, DT_STATUS_RUNNING);
    ep.u.episode.activities = &act;
    ep.u.episode.n_activities = 1;
    commit_leasing(fx, &ep, 1, 4, 4, &L, o, a);
    assert_int_equal(ep.result, DT_OK);
    assert_int_equal(L.n_orchestrations, 0);   /* no message waits for i1 */
    assert_int_equal(L.n_activities, 1);
    assert_str(a[0]->name, "act");
    assert_int_equal(a[0]->delivery_count, 1);
    expect_no_activity_work(fx, T0 + SEC);
    dt_orch_item_free(item);

    /* the activity's result: the commit leases the instance again, with the result */
    dt_activity_item *done = a[0];
    dt_commit res = activity_done(done, "\"r\"");
    commit_leasing(fx, &res, 1, 4, 4, &L, o, a);
    assert_int_equal(res.result, DT_OK);
    assert_int_equal(L.n_orchestrations, 1);
    item = o[0];
    assert_int_equal(item->history_len, 3);
    assert_int_equal(item->n_incoming, 1);
    assert_int_equal(item->incoming[0].type, DT_EVENT_TASK_COMPLETED);
    expect_no_orch_work(fx, T0 + SEC);
    dt_activity_item_free(done);

    /* the commit's lease is a lease like any: its token commits */
    dt_event fin[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    dt_commit last = episode_commit(item, fin, 1, DT_STATUS_COMPLETED);
    commit_expect(fx, &last, DT_OK);
    assert_int_equal(get(fx, "i1")->status, DT_STATUS_COMPLETED);
    dt_orch_item_free(item);
}

/* An episode's commit leases its own instance again when a message came while the episode
 * ran (one visible by now; a timer due later waits for its time). */
static void test_commit_leases_its_own_instance_when_a_message_came_meanwhile(void **state)
{
    fixture *fx = *state;
    dt_orch_item *o[4];
    dt_activity_item *a[4];
    dt_commit_lease L;
    dt_orch_item *item = start_leasing(fx, "i1", o, a, &L);
    /* while its first episode runs: a timer due later, and an event now */
    dt_message later = {.instance_id = "i1", .visible_at = T0 + 3600 * SEC};
    later.event = ev(DT_EVENT_TIMER_FIRED);
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &later, &err), &err);
    dt_commit ep = episode_commit(item, (dt_event[]){ev(DT_EVENT_ORCHESTRATOR_STARTED)}, 1,
                                  DT_STATUS_RUNNING);
    commit_leasing(fx, &ep, 1, 4, 4, &L, o, a);
    assert_int_equal(ep.result, DT_OK);
    assert_int_equal(L.n_orchestrations, 0);   /* the timer is not due */
    dt_orch_item_free(item);

    item = lease_one(fx, "w", T0 + 3600 * SEC, LEASE);   /* the timer's episode */
    assert_non_null(item);
    dt_message now = {.instance_id = "i1"};
    now.event = ev(DT_EVENT_EVENT_RAISED);
    now.event.name = "go";
    assert_ok(dt_store_send_message(fx->store, &now, &err), &err);
    ep = episode_commit(item, (dt_event[]){ev(DT_EVENT_ORCHESTRATOR_STARTED)}, 1,
                        DT_STATUS_RUNNING);
    commit_leasing(fx, &ep, 1, 4, 4, &L, o, a);
    assert_int_equal(ep.result, DT_OK);
    assert_int_equal(L.n_orchestrations, 1);   /* again, with the event that came */
    assert_str(o[0]->instance_id, "i1");
    assert_int_equal(o[0]->n_incoming, 1);
    assert_int_equal(o[0]->incoming[0].type, DT_EVENT_EVENT_RAISED);
    assert_str(o[0]->incoming[0].name, "go");
    dt_orch_item_free(o[0]);
    dt_orch_item_free(item);
}

static void test_commit_lease_takes_no_more_than_asked(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *act;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &act), 1);
    dt_error e1, e2, e3;
    dt_commit batch[4] = {activity_done(act, "1"), start_commit("n1", &e1),
                          start_commit("n2", &e2), start_commit("n3", &e3)};
    dt_orch_item *o[2];
    dt_activity_item *a[2];
    dt_commit_lease L;
    commit_leasing(fx, batch, 4, 2, 2, &L, o, a);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(batch[i].result, DT_OK);
    assert_int_equal(L.n_orchestrations, 2);   /* of i1, n1, n2, n3: two, as asked */
    for (size_t i = 0; i < L.n_orchestrations; i++)
        dt_orch_item_free(o[i]);
    /* the other two wait in the store for an ordinary lease */
    dt_orch_item *rest[4];
    size_t n = lease_orch(fx, "w2", T0, LEASE, 4, rest);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        dt_orch_item_free(rest[i]);
    dt_activity_item_free(act);
}

static void test_commit_lease_does_not_take_an_instance_another_owner_holds(void **state)
{
    fixture *fx = *state;
    create(fx, "i1", NULL);
    run_first_episode(fx, "i1", "act");
    dt_activity_item *act;
    assert_int_equal(lease_acts(fx, "aw", T0, LEASE, 1, &act), 1);
    dt_error err;
    dt_message raise = {.instance_id = "i1", .event = ev(DT_EVENT_EVENT_RAISED)};
    raise.event.name = "go";
    assert_ok(dt_store_send_message(fx->store, &raise, &err), &err);
    dt_orch_item *holder = lease_one(fx, "w", T0, LEASE);   /* holds i1, with the event */
    dt_commit res = activity_done(act, "1");
    dt_orch_item *o[2];
    dt_activity_item *a[2];
    dt_commit_lease L;
    commit_leasing(fx, &res, 1, 2, 2, &L, o, a);
    assert_int_equal(res.result, DT_OK);
    assert_int_equal(L.n_orchestrations, 0);
    /* the holder's episode commits; the result waits for the next lease */
    dt_event app[1] = {ev(DT_EVENT_ORCHESTRATOR_STARTED)};
    dt_commit ep = episode_commit(holder, app, 1, DT_STATUS_RUNNING);
    commit_expect(fx, &ep, DT_OK);
    dt_orch_item *next = lease_one(fx, "w", T0, LEASE);
    assert_int_equal(next->n_incoming, 1);
    assert_int_equal(next->incoming[0].type, DT_EVENT_TASK_COMPLETED);
    dt_orch_item_free(next);
    dt_orch_item_free(holder);
    dt_activity_item_free(act);
}

/* Every store names each deferred commit by a ticket: never 0 (0 would tell the committer the
 * commit is durable already, and its outcome would be published before any fsync; and a read
 * could not wait for it), growing with each commit, the last one known; syncing a ticket
 * covers it and every earlier one (on a store whose COMMIT is durable, syncing does nothing). */
static void test_deferred_commits_are_synced_by_ticket(void **state)
{
    fixture *fx = *state;
    dt_error own, err;
    dt_commit c1 = start_commit("d1", &own);
    uint64_t t1 = 99, t2 = 99;
    assert_ok(dt_store_commit_deferred(fx->store, &c1, 1, NULL, &t1, &err), &err);
    assert_int_equal(c1.result, DT_OK);
    dt_commit c2 = start_commit("d2", &own);
    assert_ok(dt_store_commit_deferred(fx->store, &c2, 1, NULL, &t2, &err), &err);
    assert_int_equal(c2.result, DT_OK);
    if (t1 == 0 || t2 <= t1)
        fail_msg("deferred commits got tickets %llu then %llu, want non-zero and growing",
                 (unsigned long long)t1, (unsigned long long)t2);
    assert_int_equal(dt_store_last_ticket(fx->store), t2);
    assert_ok(dt_store_sync(fx->store, t2, &err), &err);
    assert_ok(dt_store_sync(fx->store, t1, &err), &err);   /* already covered */
    assert_ok(dt_store_sync(fx->store, t2, &err), &err);   /* and again: nothing left to do */
    assert_int_equal(get(fx, "d1")->status, DT_STATUS_PENDING);
    assert_int_equal(get(fx, "d2")->status, DT_STATUS_PENDING);
}

/* ---- entities ------------------------------------------------------------------------------- */

/* emsg: a signal of operation OP (request id REQ) to ENTITY from SENDER (NULL: a client),
 * visible at VISIBLE_AT (0: at once). */
static dt_entity_message emsg(const char *entity, const char *req, const char *sender,
                              dt_time visible_at)
{
    dt_entity_message m;
    memset(&m, 0, sizeof m);
    m.entity_id = entity;
    m.visible_at = visible_at;
    m.sender = sender;
    m.sender_execution = sender ? "exec-1" : NULL;
    m.event = ev(DT_EVENT_ENTITY_SIGNALED);
    m.event.request_id = req;
    m.event.name = "add";
    m.event.input = "1";
    m.event.instance_id = entity;
    return m;
}

static void send_em(fixture *fx, const char *entity, const char *req, const char *sender,
                    dt_time visible_at)
{
    dt_entity_message m = emsg(entity, req, sender, visible_at);
    dt_error err;
    assert_ok(dt_store_send_entity_message(fx->store, &m, &err), &err);
}

/* lease_ents: lease at most MAX entities at NOW (NAMES: NULL for any); returns how many. */
static size_t lease_ents(fixture *fx, const char *owner, dt_time now, int64_t lease_us,
                         size_t max, const dt_name_filter *names, dt_entity_item **items)
{
    size_t n = 99;
    dt_error err;
    assert_ok(dt_store_lease_entities(fx->store, owner, now, lease_us, max, names, items, &n,
                                      &err),
              &err);
    assert_true(n <= max);
    return n;
}

/* lease_ent: the one entity work item that should be there, for ENTITY. */
static dt_entity_item *lease_ent(fixture *fx, const char *owner, dt_time now,
                                 const char *entity)
{
    dt_entity_item *items[1] = {NULL};
    if (lease_ents(fx, owner, now, LEASE, 1, NULL, items) != 1)
        fail_msg("expected an entity work item for %s at T0%+llds", entity,
                 (long long)((now - T0) / SEC));
    assert_str(items[0]->entity_id, entity);
    return items[0];
}

static void expect_no_entity_work(fixture *fx, dt_time now)
{
    dt_entity_item *items[8];
    size_t n = lease_ents(fx, "nobody", now, LEASE, 8, NULL, items);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "unexpected entity work item for '%s'\n", items[i]->entity_id);
        dt_entity_item_free(items[i]);
    }
    assert_int_equal(n, 0);
}

/* expect_requests: ITEM holds exactly the messages with these request ids, in this order. */
static void expect_requests(const dt_entity_item *item, const char *const *reqs, size_t n)
{
    if (item->n_messages != n)
        fail_msg("entity '%s' leased with %zu messages, want %zu", item->entity_id,
                 item->n_messages, n);
    for (size_t i = 0; i < n; i++) {
        assert_str(item->messages[i].event.request_id, reqs[i]);
        assert_str(item->messages[i].entity_id, item->entity_id);
    }
}

/* entity_commit: a step of ITEM consuming all its messages, changing nothing else. */
static dt_commit entity_commit(const dt_entity_item *item)
{
    dt_commit c;
    memset(&c, 0, sizeof c);
    c.kind = DT_COMMIT_ENTITY;
    c.u.entity.item = item;
    c.u.entity.consumed = item->message_ids;
    c.u.entity.n_consumed = item->n_messages;
    c.result = DT_ERR_INTERNAL;
    return c;
}

static dt_entity_state *get_ent(fixture *fx, const char *id, bool with_state)
{
    dt_entity_state *e = NULL;
    dt_error err;
    assert_ok(dt_store_get_entity(fx->store, id, with_state, fx->arena, &e, &err), &err);
    assert_non_null(e);
    assert_str(e->entity_id, id);
    return e;
}

static void expect_no_entity(fixture *fx, const char *id)
{
    dt_entity_state *e = NULL;
    dt_error err;
    assert_int_equal(dt_store_get_entity(fx->store, id, true, fx->arena, &e, &err),
                     DT_ERR_NOT_FOUND);
}

/* set_entity: give ENTITY (which has no other message) STATE and lock (HOLDER, HOLDER_EXEC,
 * SECTION; HOLDER NULL: unlocked) through a step, as a hub would apply a lock request. */
static void set_entity(fixture *fx, dt_time now, const char *entity, const char *state,
                       const char *holder, const char *holder_exec, const char *section)
{
    send_em(fx, entity, "setup", holder, 0);
    dt_entity_item *item = lease_ent(fx, "setup", now, entity);
    dt_commit c = entity_commit(item);
    c.u.entity.set_state = true;
    c.u.entity.state = state;
    c.u.entity.set_lock = true;
    c.u.entity.locked_by = holder;
    c.u.entity.locked_execution = holder_exec;
    c.u.entity.lock_section = section;
    commit_expect(fx, &c, DT_OK);
    dt_entity_item_free(item);
}

/* wait_past: spin until dt_now() is past T (the store stamps last_modified with dt_now). */
static dt_time wait_past(dt_time t)
{
    dt_time now;
    while ((now = dt_now()) <= t)
        test_sleep_ms(1);
    return now;
}

/* A message to an entity that has no row creates it: no state, unlocked, one message waiting.
 * A malformed id is refused and creates nothing. */
static void test_entity_message_creates_the_row(void **state)
{
    fixture *fx = *state;
    expect_no_entity(fx, "@counter@a");
    dt_time before = dt_now();
    send_em(fx, "@counter@a", "r1", NULL, 0);
    dt_entity_state *e = get_ent(fx, "@counter@a", true);
    assert_false(e->has_state);
    assert_null(e->state);
    assert_null(e->locked_by);
    assert_int_equal(e->backlog, 1);
    assert_true(e->last_modified >= before);
    send_em(fx, "@counter@a", "r2", NULL, T0 + 100 * SEC);   /* scheduled ones count too */
    assert_int_equal(get_ent(fx, "@counter@a", false)->backlog, 2);

    static const char *const bad[] = {"counter@a", "@counter", "@@a", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dt_entity_message m = emsg(bad[i], "rx", NULL, 0);
        dt_error err;
        dt_error_clear(&err);
        assert_int_equal(dt_store_send_entity_message(fx->store, &m, &err),
                         DT_ERR_INVALID_ARG);
        if (bad[i][0])
            expect_no_entity(fx, bad[i]);
    }
    dt_entity_state *all = NULL;
    size_t n = 99;
    const char *next = "x";
    dt_entity_query q = {.include_transient = true};
    dt_error err;
    assert_ok(dt_store_query_entities(fx->store, &q, fx->arena, &all, &n, &next, &err), &err);
    assert_int_equal(n, 1);
    assert_null(next);
}

/* A lease takes an entity's visible messages in arrival order and leaves scheduled ones for
 * their time; an entity whose only message is scheduled is no candidate before then. The
 * lease is exclusive until committed. */
static void test_entity_lease_takes_visible_messages_in_order(void **state)
{
    fixture *fx = *state;
    send_em(fx, "@c@a", "r1", NULL, 0);
    send_em(fx, "@c@a", "r2", "orch-x", T0 + 10 * SEC);
    send_em(fx, "@c@a", "r3", "orch-y", T0);
    send_em(fx, "@c@b", "b1", NULL, T0 + 10 * SEC);

    dt_entity_item *a = lease_ent(fx, "w", T0, "@c@a");
    static const char *const first[] = {"r1", "r3"};
    expect_requests(a, first, 2);
    assert_null(a->messages[0].sender);
    assert_str(a->messages[1].sender, "orch-y");
    assert_str(a->messages[1].sender_execution, "exec-1");
    assert_int_equal(a->messages[1].event.type, DT_EVENT_ENTITY_SIGNALED);
    assert_str(a->messages[1].event.name, "add");
    assert_str(a->messages[1].event.input, "1");
    assert_null(a->state);
    assert_null(a->locked_by);
    assert_non_null(a->lock_token);
    expect_no_entity_work(fx, T0 + SEC);   /* a is held, b not yet visible */

    dt_entity_item *b = lease_ent(fx, "w", T0 + 10 * SEC, "@c@b");
    static const char *const bs[] = {"b1"};
    expect_requests(b, bs, 1);

    /* consume only the first: the rest stays, with the scheduled one now due, in order */
    dt_commit c = entity_commit(a);
    c.u.entity.n_consumed = 1;
    commit_expect(fx, &c, DT_OK);
    dt_entity_item *a2 = lease_ent(fx, "w", T0 + 11 * SEC, "@c@a");
    static const char *const rest[] = {"r2", "r3"};
    expect_requests(a2, rest, 2);
    assert_string_not_equal(a->lock_token, a2->lock_token);
    assert_int_equal(get_ent(fx, "@c@a", false)->backlog, 2);
    dt_entity_item_free(a);
    dt_entity_item_free(a2);
    dt_entity_item_free(b);
}

/* A lease with a name filter takes only entities of those names. */
static void test_entity_lease_name_filter(void **state)
{
    fixture *fx = *state;
    send_em(fx, "@alpha@1", "a", NULL, 0);
    send_em(fx, "@beta@1", "b", NULL, 0);
    static const char *const names[] = {"beta"};
    dt_name_filter f = {.names = names, .n = 1};
    dt_entity_item *items[4];
    assert_int_equal(lease_ents(fx, "w", T0, LEASE, 4, &f, items), 1);
    assert_str(items[0]->entity_id, "@beta@1");
    dt_entity_item_free(items[0]);
    dt_name_filter none = {.names = names, .n = 0};
    assert_int_equal(lease_ents(fx, "w", T0, LEASE, 4, &none, items), 0);
    assert_int_equal(lease_ents(fx, "w", T0, LEASE, 4, NULL, items), 1);
    assert_str(items[0]->entity_id, "@alpha@1");
    dt_entity_item_free(items[0]);
}

/* While an entity is locked, only its holder's messages are leased (others wait in place),
 * and an entity with only others' messages is no candidate; unlocking lets them through. */
static void test_locked_entity_leases_only_the_holders_messages(void **state)
{
    fixture *fx = *state;
    set_entity(fx, T0, "@c@a", "10", "orch-1", "e1", "s1");
    set_entity(fx, T0, "@c@b", NULL, "orch-1", "e1", "s1");
    dt_entity_state *e = get_ent(fx, "@c@a", true);
    assert_str(e->locked_by, "orch-1");
    assert_str(e->state, "10");
    assert_int_equal(e->backlog, 0);

    send_em(fx, "@c@a", "client", NULL, 0);
    send_em(fx, "@c@a", "other", "orch-2", 0);
    send_em(fx, "@c@a", "holder", "orch-1", 0);
    send_em(fx, "@c@b", "b-other", "orch-2", 0);
    send_em(fx, "@c@b", "b-client", NULL, 0);

    dt_entity_item *items[4];
    size_t n = lease_ents(fx, "w", T0, LEASE, 4, NULL, items);
    if (n != 1)
        fail_msg("leased %zu entities, want only @c@a (b has none of its holder's)", n);
    dt_entity_item *a = items[0];
    assert_str(a->entity_id, "@c@a");
    static const char *const holder[] = {"holder"};
    expect_requests(a, holder, 1);
    assert_str(a->locked_by, "orch-1");
    assert_str(a->locked_execution, "e1");
    assert_str(a->lock_section, "s1");
    assert_str(a->state, "10");

    /* the holder's step unlocks: the others' messages are next, in arrival order */
    dt_commit c = entity_commit(a);
    c.u.entity.set_lock = true;
    commit_expect(fx, &c, DT_OK);
    assert_null(get_ent(fx, "@c@a", false)->locked_by);
    assert_str(get_ent(fx, "@c@a", true)->state, "10");   /* set_state false: kept */
    dt_entity_item *a2 = lease_ent(fx, "w", T0 + SEC, "@c@a");
    static const char *const others[] = {"client", "other"};
    expect_requests(a2, others, 2);
    assert_null(a2->locked_by);
    expect_no_entity_work(fx, T0 + SEC);   /* b: still locked by orch-1 */
    dt_entity_item_free(a);
    dt_entity_item_free(a2);
}

/* A step commits all at once: consumed messages deleted, the state set, an answer in the
 * caller's inbox, a signal to another entity, an orchestration started (one whose id is
 * taken is skipped and the step still stands), the lease released. A NULL state is none. */
static void test_entity_step_commits_state_answers_signals_and_starts(void **state)
{
    fixture *fx = *state;
    create(fx, "caller", NULL);
    run_first_episode(fx, "caller", NULL);
    send_em(fx, "@c@a", "r1", "caller", 0);
    send_em(fx, "@c@a", "r2", NULL, 0);
    dt_time before = wait_past(get_ent(fx, "@c@a", false)->last_modified);
    dt_entity_item *item = lease_ent(fx, "w", T0, "@c@a");
    assert_int_equal(item->n_messages, 2);

    dt_commit c = entity_commit(item);
    c.u.entity.n_consumed = 1;   /* r1 only */
    c.u.entity.set_state = true;
    c.u.entity.state = "{\"n\":5}";
    dt_message answer = {.instance_id = "caller", .execution_id = "exec-1"};
    answer.event = ev(DT_EVENT_ENTITY_COMPLETED);
    answer.event.request_id = "r1";
    answer.event.result = "5";
    c.u.entity.messages = &answer;
    c.u.entity.n_messages = 1;
    dt_entity_message sig = emsg("@other@k", "fwd", "@c@a", 0);
    sig.sender_execution = NULL;
    c.u.entity.entity_messages = &sig;
    c.u.entity.n_entity_messages = 1;
    dt_new_instance starts[2] = {new_instance("started", "\"in\""),
                                 new_instance("caller", "\"clash\"")};
    starts[1].execution_id = "exec-2";
    c.u.entity.instances = starts;
    c.u.entity.n_instances = 2;
    commit_expect(fx, &c, DT_OK);

    dt_entity_state *e = get_ent(fx, "@c@a", true);
    assert_str(e->state, "{\"n\":5}");
    assert_true(e->has_state);
    assert_int_equal(e->backlog, 1);
    assert_true(e->last_modified >= before);
    dt_entity_state *o = get_ent(fx, "@other@k", false);
    assert_int_equal(o->backlog, 1);
    assert_false(o->has_state);
    dt_instance_state *st = get(fx, "started");
    assert_int_equal(st->status, DT_STATUS_PENDING);
    assert_str(st->input, "\"in\"");
    dt_instance_state *caller = get(fx, "caller");
    assert_int_equal(caller->status, DT_STATUS_RUNNING);   /* not replaced */
    assert_str(caller->execution_id, "exec-1");

    /* the answer is in the caller's inbox */
    dt_orch_item *items[4];
    size_t n = lease_orch(fx, "w", T0, LEASE, 4, items);
    assert_int_equal(n, 2);
    dt_orch_item *ci = strcmp(items[0]->instance_id, "caller") == 0 ? items[0] : items[1];
    assert_str(ci->instance_id, "caller");
    assert_int_equal(ci->n_incoming, 1);
    assert_int_equal(ci->incoming[0].type, DT_EVENT_ENTITY_COMPLETED);
    assert_str(ci->incoming[0].request_id, "r1");
    assert_str(ci->incoming[0].result, "5");
    dt_orch_item_free(items[0]);
    dt_orch_item_free(items[1]);

    /* the signal sent is leased with the entity as its sender; r2 is still there */
    dt_entity_item *ents[4];
    n = lease_ents(fx, "w", T0 + SEC, LEASE, 4, NULL, ents);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ents[i]->entity_id, "@other@k") == 0) {
            static const char *const fwd[] = {"fwd"};
            expect_requests(ents[i], fwd, 1);
            assert_str(ents[i]->messages[0].sender, "@c@a");
        } else {
            static const char *const r2[] = {"r2"};
            expect_requests(ents[i], r2, 1);
            assert_str(ents[i]->state, "{\"n\":5}");
            /* a NULL state is none: with no lock and no message left, the entity is gone
             * with the step (as the Durable Task Scheduler does; nothing left to clean) */
            dt_commit d = entity_commit(ents[i]);
            d.u.entity.set_state = true;
            d.u.entity.state = NULL;
            commit_expect(fx, &d, DT_OK);
        }
    }
    expect_no_entity(fx, "@c@a");
    dt_entity_query q = {.id_prefix = "@c@"};
    dt_entity_state *rows = NULL;
    const char *next = NULL;
    dt_error err;
    assert_ok(dt_store_query_entities(fx->store, &q, fx->arena, &rows, &n, &next, &err), &err);
    assert_int_equal(n, 0);
    dt_entity_item_free(item);
    dt_entity_item_free(ents[0]);
    dt_entity_item_free(ents[1]);
}

/* A step under a lease that is no longer held (expired and taken, or already committed)
 * is refused with DT_ERR_LEASE_LOST and changes nothing: no message consumed, no state, no
 * answer, no signal, no start. */
static void test_entity_step_under_a_lost_lease_changes_nothing(void **state)
{
    fixture *fx = *state;
    create(fx, "caller", NULL);
    run_first_episode(fx, "caller", NULL);
    send_em(fx, "@c@a", "r1", "caller", 0);
    dt_entity_item *old = lease_ent(fx, "a", T0, "@c@a");
    /* renew/abandon of a lease that expired and was taken fail too */
    dt_entity_item *items[1];
    assert_int_equal(lease_ents(fx, "b", T0 + LEASE / 2, LEASE, 1, NULL, items), 0);
    dt_entity_item *cur = NULL;
    assert_int_equal(lease_ents(fx, "b", T0 + LEASE + SEC, LEASE, 1, NULL, items), 1);
    cur = items[0];

    dt_commit c = entity_commit(old);
    c.u.entity.set_state = true;
    c.u.entity.state = "99";
    c.u.entity.set_lock = true;
    c.u.entity.locked_by = "caller";
    c.u.entity.lock_section = "s";
    dt_message answer = {.instance_id = "caller"};
    answer.event = ev(DT_EVENT_ENTITY_COMPLETED);
    answer.event.request_id = "r1";
    c.u.entity.messages = &answer;
    c.u.entity.n_messages = 1;
    dt_entity_message sig = emsg("@other@k", "fwd", "@c@a", 0);
    c.u.entity.entity_messages = &sig;
    c.u.entity.n_entity_messages = 1;
    dt_new_instance ni = new_instance("started", NULL);
    c.u.entity.instances = &ni;
    c.u.entity.n_instances = 1;
    commit_expect(fx, &c, DT_ERR_LEASE_LOST);

    dt_error err;
    assert_int_equal(dt_store_renew_entity(fx->store, old, T0 + 100 * SEC, &err),
                     DT_ERR_LEASE_LOST);
    assert_int_equal(dt_store_abandon_entity(fx->store, old, 0, &err), DT_ERR_LEASE_LOST);
    dt_entity_state *e = get_ent(fx, "@c@a", true);
    assert_false(e->has_state);
    assert_null(e->locked_by);
    assert_int_equal(e->backlog, 1);
    expect_no_entity(fx, "@other@k");
    dt_instance_state *s = NULL;
    assert_int_equal(dt_store_get_instance(fx->store, "started", fx->arena, &s, &err),
                     DT_ERR_NOT_FOUND);
    expect_no_orch_work(fx, T0 + LEASE + SEC);   /* no answer reached the caller */

    /* the current holder commits; committing its item again finds the lease gone */
    dt_commit d = entity_commit(cur);
    d.u.entity.set_state = true;
    d.u.entity.state = "1";
    commit_expect(fx, &d, DT_OK);
    dt_commit again = entity_commit(cur);
    again.u.entity.set_state = true;
    again.u.entity.state = "2";
    commit_expect(fx, &again, DT_ERR_LEASE_LOST);
    assert_str(get_ent(fx, "@c@a", true)->state, "1");
    assert_int_equal(get_ent(fx, "@c@a", true)->backlog, 0);
    dt_entity_item_free(old);
    dt_entity_item_free(cur);
}

/* An abandon with a retry time hides the entity from every lease until then; the old token
 * is good for nothing. An abandon without one gives it back at once. */
static void test_abandoned_entity_waits_for_its_retry_time(void **state)
{
    fixture *fx = *state;
    send_em(fx, "@c@a", "r1", NULL, 0);
    dt_entity_item *a = lease_ent(fx, "a", T0, "@c@a");
    dt_error err;
    assert_ok(dt_store_abandon_entity(fx->store, a, T0 + 5 * SEC, &err), &err);
    expect_no_entity_work(fx, T0 + 4 * SEC);
    assert_int_equal(dt_store_renew_entity(fx->store, a, T0 + LEASE, &err), DT_ERR_LEASE_LOST);
    assert_int_equal(dt_store_abandon_entity(fx->store, a, 0, &err), DT_ERR_LEASE_LOST);
    dt_commit c = entity_commit(a);
    commit_expect(fx, &c, DT_ERR_LEASE_LOST);
    dt_entity_item *b = lease_ent(fx, "b", T0 + 5 * SEC + 1, "@c@a");
    static const char *const r1[] = {"r1"};
    expect_requests(b, r1, 1);
    assert_ok(dt_store_abandon_entity(fx->store, b, 0, &err), &err);
    dt_entity_item *c2 = lease_ent(fx, "c", T0 + 5 * SEC + 1, "@c@a");
    expect_requests(c2, r1, 1);
    /* a renewed lease is kept past its first end */
    assert_ok(dt_store_renew_entity(fx->store, c2, T0 + 100 * SEC, &err), &err);
    expect_no_entity_work(fx, T0 + 5 * SEC + LEASE + SEC);
    dt_entity_item_free(a);
    dt_entity_item_free(b);
    dt_entity_item_free(c2);
}

/* poke_and_lease: send ID an event and lease it (no other instance may have work). */
static dt_orch_item *poke_and_lease(fixture *fx, const char *id)
{
    dt_message m = {.instance_id = id};
    m.event = ev(DT_EVENT_EVENT_RAISED);
    m.event.name = "poke";
    dt_error err;
    assert_ok(dt_store_send_message(fx->store, &m, &err), &err);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    assert_str(item->instance_id, id);
    return item;
}

static void commit_unlocks(fixture *fx, const char *id, const dt_entity_unlock *u, size_t n,
                           bool release)
{
    dt_orch_item *item = poke_and_lease(fx, id);
    dt_event app = item->incoming[0];
    dt_commit c = episode_commit(item, &app, 1, release ? DT_STATUS_COMPLETED
                                                        : DT_STATUS_RUNNING);
    c.u.episode.unlocks = u;
    c.u.episode.n_unlocks = n;
    c.u.episode.release_locks = release;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
}

/* An episode's unlock releases a lock only if that instance holds it for that section; an
 * episode's entity messages go into the entities' queues with it as their sender. */
static void test_episode_unlock_releases_only_its_own_section(void **state)
{
    fixture *fx = *state;
    create(fx, "orch-1", NULL);
    run_first_episode(fx, "orch-1", NULL);
    set_entity(fx, T0, "@c@a", "1", "orch-1", "exec-1", "s1");
    set_entity(fx, T0, "@c@b", "2", "orch-2", "exec-1", "s1");

    const dt_entity_unlock wrong[] = {{"@c@a", "s-other"}, {"@c@b", "s1"}, {"@c@none", "s1"}};
    commit_unlocks(fx, "orch-1", wrong, 3, false);
    assert_str(get_ent(fx, "@c@a", false)->locked_by, "orch-1");
    assert_str(get_ent(fx, "@c@b", false)->locked_by, "orch-2");
    expect_no_entity(fx, "@c@none");

    const dt_entity_unlock right[] = {{"@c@a", "s1"}};
    commit_unlocks(fx, "orch-1", right, 1, false);
    assert_null(get_ent(fx, "@c@a", false)->locked_by);
    assert_str(get_ent(fx, "@c@a", true)->state, "1");
    assert_str(get_ent(fx, "@c@b", false)->locked_by, "orch-2");

    /* entity messages of an episode, a lock request among them */
    dt_orch_item *item = poke_and_lease(fx, "orch-1");
    dt_event app = item->incoming[0];
    dt_commit c = episode_commit(item, &app, 1, DT_STATUS_RUNNING);
    dt_entity_message sent[2] = {emsg("@c@x", "call-1", "orch-1", 0),
                                 emsg("@c@y", "sec-1", "orch-1", 0)};
    sent[0].event.type = DT_EVENT_ENTITY_CALLED;
    sent[0].event.parent_instance_id = "orch-1";
    sent[0].event.parent_execution_id = "exec-1";
    static const char *const set[] = {"@c@x", "@c@y"};
    sent[1].event = ev(DT_EVENT_ENTITY_LOCK_REQUESTED);
    sent[1].event.request_id = "sec-1";
    sent[1].event.lock_set = set;
    sent[1].event.n_lock_set = 2;
    sent[1].event.position = 1;
    sent[1].event.parent_instance_id = "orch-1";
    c.u.episode.entity_messages = sent;
    c.u.episode.n_entity_messages = 2;
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);
    dt_entity_item *ents[4];
    size_t n = lease_ents(fx, "w", T0 + SEC, LEASE, 4, NULL, ents);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ents[i]->n_messages, 1);
        const dt_entity_message *m = &ents[i]->messages[0];
        assert_str(m->sender, "orch-1");
        assert_str(m->sender_execution, "exec-1");
        if (strcmp(ents[i]->entity_id, "@c@x") == 0) {
            assert_int_equal(m->event.type, DT_EVENT_ENTITY_CALLED);
            assert_str(m->event.parent_execution_id, "exec-1");
        } else {
            assert_str(ents[i]->entity_id, "@c@y");
            assert_int_equal(m->event.type, DT_EVENT_ENTITY_LOCK_REQUESTED);
            assert_int_equal(m->event.n_lock_set, 2);
            assert_str(m->event.lock_set[1], "@c@y");
            assert_int_equal(m->event.position, 1);
        }
        dt_entity_item_free(ents[i]);
    }
}

/* release_locks (an execution ended) releases every lock its instance holds, whatever the
 * section, and no one else's; a stale episode releases nothing. */
static void test_episode_release_locks_releases_all_of_that_instance(void **state)
{
    fixture *fx = *state;
    create(fx, "orch-1", NULL);
    run_first_episode(fx, "orch-1", NULL);
    set_entity(fx, T0, "@c@a", NULL, "orch-1", "exec-1", "s1");
    set_entity(fx, T0, "@c@b", "2", "orch-1", "exec-1", "s2");
    set_entity(fx, T0, "@c@c", "3", "orch-2", "exec-1", "s1");
    send_em(fx, "@c@a", "waiting", "orch-3", 0);
    expect_no_entity_work(fx, T0);   /* the only message waits for the lock */

    /* a stale episode of orch-1 releases nothing */
    dt_orch_item *stale = poke_and_lease(fx, "orch-1");
    dt_orch_item *cur = NULL;
    dt_orch_item *items[1];
    assert_int_equal(lease_orch(fx, "x", T0 + LEASE + SEC, LEASE, 1, items), 1);
    cur = items[0];
    dt_event app = stale->incoming[0];
    dt_commit c = episode_commit(stale, &app, 1, DT_STATUS_COMPLETED);
    c.u.episode.release_locks = true;
    const dt_entity_unlock u = {"@c@a", "s1"};
    c.u.episode.unlocks = &u;
    c.u.episode.n_unlocks = 1;
    commit_expect(fx, &c, DT_ERR_LEASE_LOST);
    assert_str(get_ent(fx, "@c@a", false)->locked_by, "orch-1");

    dt_commit d = episode_commit(cur, &app, 1, DT_STATUS_COMPLETED);
    d.u.episode.release_locks = true;
    commit_expect(fx, &d, DT_OK);
    assert_null(get_ent(fx, "@c@a", false)->locked_by);
    assert_null(get_ent(fx, "@c@b", false)->locked_by);
    assert_str(get_ent(fx, "@c@b", true)->state, "2");
    assert_str(get_ent(fx, "@c@c", false)->locked_by, "orch-2");
    /* the waiting message may run now */
    dt_entity_item *a = lease_ent(fx, "w", T0 + LEASE + 2 * SEC, "@c@a");
    static const char *const w[] = {"waiting"};
    expect_requests(a, w, 1);
    dt_entity_item_free(a);
    dt_orch_item_free(stale);
    dt_orch_item_free(cur);
}

static size_t query_ids(fixture *fx, const dt_entity_query *q, const char *const *want,
                        size_t n_want, const char **next)
{
    dt_entity_state *rows = NULL;
    size_t n = 99;
    dt_error err;
    assert_ok(dt_store_query_entities(fx->store, q, fx->arena, &rows, &n, next, &err), &err);
    if (n != n_want)
        fail_msg("query gave %zu entities (first '%s'), want %zu", n,
                 n ? rows[0].entity_id : "-", n_want);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].entity_id, want[i]) != 0)
            fail_msg("query row %zu is '%s', want '%s' (of %zu)", i, rows[i].entity_id,
                     want[i], n);
    return n;
}

/* Reads as a client sees them: get with and without the state; queries by prefix, by last
 * modified range, with and without entities that have no state, paged by continuation. */
static void test_entity_get_and_query(void **state)
{
    fixture *fx = *state;
    set_entity(fx, T0, "@counter@a", "1", NULL, NULL, NULL);
    set_entity(fx, T0, "@counter@b", "2", NULL, NULL, NULL);
    dt_time mid = wait_past(get_ent(fx, "@counter@b", false)->last_modified);
    wait_past(mid);
    set_entity(fx, T0, "@other@x", "3", NULL, NULL, NULL);
    set_entity(fx, T0, "@counter@d", NULL, "orch-1", "e", "s");   /* transient: locked */
    set_entity(fx, T0, "@counter@e", NULL, NULL, NULL, NULL);     /* empty: never listed */
    send_em(fx, "@counter@c", "r1", NULL, 0);          /* transient: a message waiting */

    dt_entity_state *e = get_ent(fx, "@counter@a", true);
    assert_true(e->has_state);
    assert_str(e->state, "1");
    assert_int_equal(e->backlog, 0);
    e = get_ent(fx, "@counter@a", false);
    assert_true(e->has_state);
    assert_null(e->state);
    e = get_ent(fx, "@counter@d", true);
    assert_false(e->has_state);
    assert_str(e->locked_by, "orch-1");
    expect_no_entity(fx, "@counter@zzz");

    const char *next = "x";
    dt_entity_query q = {.id_prefix = "@counter@", .with_state = true};
    static const char *const stateful[] = {"@counter@a", "@counter@b"};
    query_ids(fx, &q, stateful, 2, &next);
    assert_null(next);
    q.include_transient = true;
    static const char *const transient[] = {"@counter@a", "@counter@b", "@counter@c",
                                            "@counter@d"};
    query_ids(fx, &q, transient, 4, &next);
    assert_null(next);
    /* paging: one at a time, each exactly once, the token the last id */
    q.page_size = 2;
    q.continuation = NULL;
    size_t seen = 0;
    for (int page = 0; page < 4; page++) {
        size_t want = seen + 2 <= 4 ? 2 : 4 - seen;
        seen += query_ids(fx, &q, transient + seen, want, &next);
        if (next == NULL)
            break;
        assert_str(next, transient[seen - 1]);
        q.continuation = next;
    }
    assert_int_equal(seen, 4);
    assert_null(next);
    /* no prefix: everything with state, the other name too, in id order */
    dt_entity_query all = {.with_state = true};
    static const char *const everything[] = {"@counter@a", "@counter@b", "@other@x"};
    query_ids(fx, &all, everything, 3, &next);
    /* modified range: from is inclusive, to exclusive */
    dt_entity_query early = {.modified_to = mid};
    query_ids(fx, &early, stateful, 2, &next);
    dt_entity_query late = {.modified_from = mid};
    static const char *const later[] = {"@other@x"};
    query_ids(fx, &late, later, 1, &next);
    late.id_prefix = "@counter@";
    query_ids(fx, &late, NULL, 0, &next);
    late.include_transient = true;
    static const char *const late_transient[] = {"@counter@c", "@counter@d"};
    query_ids(fx, &late, late_transient, 2, &next);
    dt_entity_query other = {.id_prefix = "@other@"};
    query_ids(fx, &other, later, 1, &next);
}

/* A page of entities with their states holds at most DT_QUERY_PAGE_BYTES of them, with a
 * token for the rest; without the states nothing cuts it. */
static void test_entity_query_pages_end_on_their_bytes(void **state)
{
    fixture *fx = *state;
    size_t big = DT_PAYLOAD_MAX - 16;
    char *v = json_string_of(big);
    int total = (int)(DT_QUERY_PAGE_BYTES / big) + 4;
    char id[32];
    for (int i = 0; i < total; i++) {
        snprintf(id, sizeof id, "@big@k%02d", i);
        set_entity(fx, T0, id, v, NULL, NULL, NULL);
    }
    free(v);
    dt_entity_query q = {.id_prefix = "@big@", .with_state = true, .page_size = 100};
    int seen[64] = {0}, pages = 0;
    size_t first = 0;
    const char *next = NULL;
    do {
        dt_entity_state *rows = NULL;
        size_t n = 0;
        dt_error err;
        q.continuation = next;
        assert_ok(dt_store_query_entities(fx->store, &q, fx->arena, &rows, &n, &next, &err),
                  &err);
        if (pages++ == 0)
            first = n;
        assert_true(n > 0 && n * big <= DT_QUERY_PAGE_BYTES);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(strlen(rows[i].state), big);
            seen[atoi(rows[i].entity_id + strlen("@big@k"))]++;
        }
        assert_true(pages < 10);
    } while (next != NULL);
    assert_int_equal(first, DT_QUERY_PAGE_BYTES / big);
    for (int i = 0; i < total; i++)
        assert_int_equal(seen[i], 1);
    dt_entity_query brief = {.id_prefix = "@big@", .page_size = 100};
    dt_entity_state *rows = NULL;
    size_t n = 0;
    dt_error err;
    assert_ok(dt_store_query_entities(fx->store, &brief, fx->arena, &rows, &n, &next, &err),
              &err);
    assert_int_equal(n, (size_t)total);
    assert_null(next);
}

/* A step that leaves its entity with no state removes it, unless a lock or a message (a
 * signal for later, one it sent itself) keeps it; a message later makes it again. */
static void test_entity_step_that_empties_its_entity_removes_it(void **state)
{
    fixture *fx = *state;
    static const char *const ids[] = {"@d@plain", "@d@later", "@d@self", "@d@held"};
    for (size_t i = 0; i < 4; i++)
        set_entity(fx, T0, ids[i], "1", NULL, NULL, NULL);
    for (size_t i = 0; i < 4; i++)
        send_em(fx, ids[i], "delete", NULL, 0);
    send_em(fx, "@d@later", "tomorrow", NULL, T0 + 86400 * SEC);
    for (size_t i = 0; i < 4; i++) {
        dt_entity_item *item = NULL;
        assert_int_equal(lease_ents(fx, "w", T0 + SEC, LEASE, 1, NULL, &item), 1);
        dt_commit c = entity_commit(item);
        c.u.entity.set_state = true;
        c.u.entity.state = NULL;
        dt_entity_message self = emsg("@d@self", "again", "@d@self", 0);
        if (strcmp(item->entity_id, "@d@self") == 0) {
            c.u.entity.entity_messages = &self;
            c.u.entity.n_entity_messages = 1;
        }
        if (strcmp(item->entity_id, "@d@held") == 0) {
            c.u.entity.set_lock = true;
            c.u.entity.locked_by = "holder";
            c.u.entity.locked_execution = "exec-1";
            c.u.entity.lock_section = "s";
        }
        commit_expect(fx, &c, DT_OK);
        dt_entity_item_free(item);
    }
    expect_no_entity(fx, "@d@plain");
    assert_int_equal(get_ent(fx, "@d@later", false)->backlog, 1);
    assert_int_equal(get_ent(fx, "@d@self", false)->backlog, 1);
    assert_str(get_ent(fx, "@d@held", false)->locked_by, "holder");
    /* a signal to the removed entity makes it again, and it runs */
    send_em(fx, "@d@plain", "add", NULL, 0);
    assert_int_equal(get_ent(fx, "@d@plain", false)->backlog, 1);
}

/* Cleaning: orphaned locks (holder missing, finished or on another execution) are released
 * and counted; then rows with no state, lock, message or lease are removed and counted (a
 * step that leaves its entity so has removed it already).
 * Live holders, stateful and transient entities stay. */
static void test_entity_clean_removes_empty_rows_and_releases_orphaned_locks(void **state)
{
    fixture *fx = *state;
    create(fx, "alive", NULL);
    run_first_episode(fx, "alive", NULL);
    create(fx, "done", NULL);
    dt_orch_item *item = lease_one(fx, "w", T0, LEASE);
    dt_event app = item->incoming[0];
    dt_commit c = episode_commit(item, &app, 1, DT_STATUS_COMPLETED);
    commit_expect(fx, &c, DT_OK);
    dt_orch_item_free(item);

    set_entity(fx, T0, "@e@stateful", "1", NULL, NULL, NULL);
    set_entity(fx, T0, "@e@empty", NULL, NULL, NULL, NULL);
    set_entity(fx, T0, "@e@held", NULL, "alive", "exec-1", "s");
    set_entity(fx, T0, "@e@gone", NULL, "missing", "exec-1", "s");
    set_entity(fx, T0, "@e@finished", "7", "done", "exec-1", "s");
    set_entity(fx, T0, "@e@old-exec", NULL, "alive", "exec-0", "s");
    send_em(fx, "@e@gone", "waiting", NULL, 0);
    send_em(fx, "@e@queued", "q", NULL, T0 + 100 * SEC);
    /* a leased empty row is not removed */
    send_em(fx, "@e@leased", "l", NULL, 0);
    dt_entity_item *leased = lease_ent(fx, "w", T0, "@e@leased");
    dt_commit lc = entity_commit(leased);
    commit_expect(fx, &lc, DT_OK);   /* now empty */
    dt_entity_item_free(leased);

    size_t removed = 99, released = 99;
    dt_error err;
    assert_ok(dt_store_clean_entities(fx->store, false, false, dt_now(), &removed, &released,
                                      &err),
              &err);
    assert_int_equal(removed, 0);
    assert_int_equal(released, 0);
    /* the steps that left these empty removed them already */
    expect_no_entity(fx, "@e@empty");
    expect_no_entity(fx, "@e@leased");

    assert_ok(dt_store_clean_entities(fx->store, false, true, dt_now(), &removed, &released,
                                      &err),
              &err);
    assert_int_equal(released, 3);   /* gone, finished, old-exec */
    assert_int_equal(removed, 0);
    assert_null(get_ent(fx, "@e@gone", false)->locked_by);
    assert_null(get_ent(fx, "@e@finished", false)->locked_by);
    assert_null(get_ent(fx, "@e@old-exec", false)->locked_by);
    assert_str(get_ent(fx, "@e@held", false)->locked_by, "alive");

    assert_ok(dt_store_clean_entities(fx->store, true, true, dt_now(), &removed, &released,
                                      &err),
              &err);
    assert_int_equal(released, 0);
    assert_int_equal(removed, 1);   /* old-exec: no state, and its orphaned lock released */
    expect_no_entity(fx, "@e@old-exec");
    assert_str(get_ent(fx, "@e@stateful", true)->state, "1");
    assert_str(get_ent(fx, "@e@finished", true)->state, "7");
    assert_int_equal(get_ent(fx, "@e@gone", false)->backlog, 1);
    assert_int_equal(get_ent(fx, "@e@queued", false)->backlog, 1);
    assert_str(get_ent(fx, "@e@held", false)->locked_by, "alive");

    /* the released lock lets the waiting message through */
    dt_entity_item *g = lease_ent(fx, "w", T0 + SEC, "@e@gone");
    static const char *const waiting[] = {"waiting"};
    expect_requests(g, waiting, 1);
    dt_commit gc = entity_commit(g);
    commit_expect(fx, &gc, DT_OK);
    dt_entity_item_free(g);
    expect_no_entity(fx, "@e@gone");   /* its last message consumed, nothing left */

    assert_ok(dt_store_clean_entities(fx->store, true, true, dt_now(), &removed, &released,
                                      &err),
              &err);
    assert_int_equal(removed, 0);
    assert_int_equal(released, 0);
}

/* ---- the suite ------------------------------------------------------------------------------ */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int store_contract_run(const char *backend, store_contract_open_fn open)
{
    g_open = open;
    const struct CMUnitTest tests[] = {
        T(test_created_instance_is_pending_with_its_fields),
        T(test_missing_instance_is_not_found),
        T(test_duplicate_live_id_is_refused_and_nothing_changes),
        T(test_finished_instance_is_replaced_with_nothing_left_over),
        T(test_explicit_reuse_policy_replaces_a_live_instance),
        T(test_lease_delivers_execution_started),
        T(test_second_lease_while_held_gets_nothing),
        T(test_name_filter_leases_only_work_of_those_names),
        T(test_a_version_filter_takes_only_those_versions),
        T(test_a_terminate_is_leased_whatever_the_name_filter),
        T(test_a_filtered_lease_reads_only_its_own_names),
        T(test_expired_lease_is_redelivered_to_another_owner),
        T(test_renewed_lease_is_kept),
        T(test_abandoned_work_is_redelivered_at_once),
        T(test_abandoned_work_waits_for_its_retry_time),
        T(test_lease_takes_at_most_max),
        T(test_commit_appends_history_updates_row_and_enqueues_activity),
        T(test_message_arriving_during_episode_is_kept_for_the_next),
        T(test_stale_commit_changes_nothing),
        T(test_group_commit_applies_the_entries_whose_lease_is_held),
        T(test_entry_that_cannot_be_stored_changes_nothing_and_others_apply),
        T(test_entry_refused_after_writing_is_rolled_back_alone),
        T(test_reset_history_replaces_it_for_continue_as_new),
        T(test_failure_details_are_kept),
        T(test_a_reopen_takes_only_a_failed_instance_nobody_holds),
        T(test_activity_result_reaches_the_inbox_and_the_work_item_goes),
        T(test_activity_lease_expiry_and_abandon_redeliver),
        T(test_a_speculative_episode_commits_with_the_result_it_consumes),
        T(test_a_speculative_episode_on_a_held_instance_gives_its_result_to_the_inbox),
        T(test_each_change_the_claim_checks_refuses_a_speculative_episode),
        T(test_a_speculative_episode_whose_activity_lease_is_lost_changes_nothing),
        T(test_a_speculative_episode_is_refused_while_a_message_waits),
        T(test_mixed_group_commit),
        T(test_scheduled_start_is_not_leased_before_its_time),
        T(test_timer_message_is_leased_at_its_time),
        T(test_send_message_to_missing_instance_is_not_found),
        T(test_episode_message_to_missing_instance_is_dropped),
        T(test_episode_creates_sub_orchestration),
        T(test_state_survives_close_and_reopen),
        T(test_concurrent_leases_never_share_an_instance),
        T(test_message_execution_id_reaches_the_incoming_event),
        T(test_history_len_counts_commits_and_loads_from_the_middle),
    T(test_history_is_read_in_windows_of_bounded_bytes),
        T(test_history_len_after_continue_as_new_counts_only_the_new_history),
        T(test_query_pages_through_every_instance_once),
        T(test_query_pages_end_on_their_bytes),
        T(test_query_pages_count_tags),
        T(test_completed_time_bounds_match_only_completed_instances),
        T(test_count_by_status_counts_each_status),
        T(test_query_page_size_defaults_to_100_and_over_1000_is_refused),
        T(test_query_lists_newest_first_and_pages_so),
        T(test_query_filters_alone_and_combined),
        T(test_query_id_prefix_is_literal),
        T(test_purge_of_a_live_instance_is_refused_and_nothing_is_lost),
        T(test_purge_of_a_finished_instance_removes_its_history_and_all),
        T(test_purge_by_filter_takes_every_match_across_batches),
        T(test_purge_by_filter_takes_only_matching_finished_instances),
        T(test_queue_depths_count_what_waits_now),
        T(test_start_entries_create_instances_and_a_refused_one_changes_nothing),
        T(test_commit_leases_the_work_it_made_ready),
        T(test_commit_leases_its_own_instance_when_a_message_came_meanwhile),
        T(test_commit_lease_takes_no_more_than_asked),
        T(test_commit_lease_does_not_take_an_instance_another_owner_holds),
        T(test_deferred_commits_are_synced_by_ticket),
        T(test_entity_message_creates_the_row),
        T(test_entity_lease_takes_visible_messages_in_order),
        T(test_entity_lease_name_filter),
        T(test_locked_entity_leases_only_the_holders_messages),
        T(test_entity_step_commits_state_answers_signals_and_starts),
        T(test_entity_step_under_a_lost_lease_changes_nothing),
        T(test_abandoned_entity_waits_for_its_retry_time),
        T(test_episode_unlock_releases_only_its_own_section),
        T(test_episode_release_locks_releases_all_of_that_instance),
        T(test_entity_get_and_query),
        T(test_entity_query_pages_end_on_their_bytes),
        T(test_entity_step_that_empties_its_entity_removes_it),
        T(test_entity_clean_removes_empty_rows_and_releases_orphaned_locks),
    };
    size_t n = sizeof tests / sizeof tests[0];
    char name[128];
    snprintf(name, sizeof name, "store contract (%s)", backend);
    return _cmocka_run_group_tests(name, tests, n, NULL, NULL);
}
