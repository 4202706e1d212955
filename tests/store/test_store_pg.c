/* test_store_pg.c — the PostgreSQL backend: opening (the schema made and versioned, a newer
 * one refused, a bad schema name or an unreachable server named without the password, nodes
 * opening a fresh schema together, a watcher hearing other nodes' work), then the whole
 * shared store contract suite, each test in a PostgreSQL schema of its own. The server is
 * the throwaway one ctest starts
 * (scripts/pg.sh, fixture pg): its URL is in the file DT_TEST_PG_URL_FILE names, or in
 * DT_TEST_PG_URL. Without either, the test says so and is skipped. */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_contract.h"
#include "testutil.h"

static char g_url[1024];

/* schema_of: a schema name of its own for DIR (each test's fresh directory). */
static void schema_of(const char *dir, char *out, size_t size)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (const char *c = dir; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    snprintf(out, size, "t_%016llx", (unsigned long long)h);
}

static dt_status open_pg(const char *dir, dt_store **out, dt_error *err)
{
    char schema[64];
    schema_of(dir, schema, sizeof schema);
    return dt_store_open_postgres(g_url, schema, out, err);
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("'%s' does not mention '%s'", text, needle);
}

/* psql: run SQL on the test server (in schema SCHEMA); the first value of the first row, or
 * "" (static buffer). */
static const char *psql(const char *schema, const char *sql)
{
    static char value[256];
    PGconn *c = PQconnectdb(g_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    char path[128];
    snprintf(path, sizeof path, "SET search_path TO \"%s\"", schema);
    PQclear(PQexec(c, path));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    snprintf(value, sizeof value, "%s",
             PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
    return value;
}

/* fresh_schema: a schema name no earlier run used (from a fresh test directory). */
static const char *fresh_schema(const char *what)
{
    static char name[64];
    schema_of(test_tmpdir(what), name, sizeof name);
    return name;
}

/* A new schema gets the tables and its version; opening again keeps what is there. */
static void test_open_makes_a_versioned_schema(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    char schema[64];
    snprintf(schema, sizeof schema, "%s", fresh_schema("pg-open"));
    assert_ok(dt_store_open_postgres(g_url, schema, &s, &err), &err);
    dt_store_close(s);
    assert_string_equal(psql(schema, "SELECT value FROM dtask_meta WHERE key = 'schema_version'"),
                        "3");
    assert_string_equal(psql(schema, "SELECT count(*) FROM instances"), "0");
    assert_ok(dt_store_open_postgres(g_url, schema, &s, &err), &err);
    dt_store_close(s);
}

/* A version 1 schema (before the nodes table and the history's generation) is migrated when opened, keeping what it holds;
 * nodes then say they are alive and are listed while they are. */
static void test_a_version_1_schema_is_migrated_and_nodes_are_heard(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    char schema[64];
    snprintf(schema, sizeof schema, "%s", fresh_schema("pg-v1"));
    assert_ok(dt_store_open_postgres(g_url, schema, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "kept", .execution_id = "e", .name = "o",
                          .created_at = 1};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    dt_store_close(s);
    psql(schema, "DROP TABLE nodes; ALTER TABLE instances DROP COLUMN history_gen;"
                 "DROP INDEX instances_retry, activities_retry, entities_retry;"
                 "UPDATE dtask_meta SET value = 1");
    assert_ok(dt_store_open_postgres(g_url, schema, &s, &err), &err);
    assert_int_equal(dt_store_schema_version(s), 3);
    assert_string_equal(psql(schema, "SELECT value FROM dtask_meta"), "3");
    assert_string_equal(psql(schema, "SELECT count(*) FROM instances WHERE instance_id = 'kept'"),
                        "1");
    assert_ok(dt_store_heartbeat(s, "a:1", 100, 1000, &err), &err);
    assert_ok(dt_store_heartbeat(s, "b:2", 200, 5000, &err), &err);
    assert_ok(dt_store_heartbeat(s, "a:1", 100, 6000, &err), &err);
    dt_arena *a = dt_arena_new();
    dt_node_info *nodes = NULL;
    size_t n = 0;
    assert_ok(dt_store_nodes(s, 0, a, &nodes, &n, &err), &err);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].node, "a:1");
    assert_int_equal(nodes[0].seen_at, 6000);
    assert_int_equal(nodes[1].started_at, 200);
    assert_ok(dt_store_nodes(s, 5500, a, &nodes, &n, &err), &err);   /* b:2 not heard since */
    assert_int_equal(n, 1);
    assert_string_equal(nodes[0].node, "a:1");
    /* an hour without a word: forgotten at the next heartbeat of another */
    assert_ok(dt_store_heartbeat(s, "a:1", 100, 5000 + (int64_t)3601 * 1000000, &err), &err);
    assert_ok(dt_store_nodes(s, 0, a, &nodes, &n, &err), &err);
    assert_int_equal(n, 1);
    dt_arena_free(a);
    dt_store_close(s);
}

/* A schema written by a newer version is refused, naming both versions, and left as it is. */
static void test_a_newer_schema_is_refused(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    char schema[64];
    snprintf(schema, sizeof schema, "%s", fresh_schema("pg-newer"));
    assert_ok(dt_store_open_postgres(g_url, schema, &s, &err), &err);
    dt_store_close(s);
    psql(schema, "UPDATE dtask_meta SET value = 99 WHERE key = 'schema_version'");
    assert_int_equal(dt_store_open_postgres(g_url, schema, &s, &err), DT_ERR_CORRUPT);
    assert_null(s);
    assert_contains(err.message, "schema version 99");
    assert_contains(err.message, "newer");
    assert_string_equal(psql(schema, "SELECT value FROM dtask_meta"), "99");
}

/* A schema name that is not one identifier is refused before anything is sent; an
 * unreachable server is named (host and port), its password never. */
static void test_bad_schema_and_unreachable_server_are_named(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    assert_int_equal(dt_store_open_postgres(g_url, "a\"; DROP TABLE x; --", &s, &err),
                     DT_ERR_INVALID_ARG);
    assert_contains(err.message, "schema name");
    assert_int_equal(dt_store_open_postgres("postgres://u:secret@127.0.0.1:1/db", NULL, &s, &err),
                     DT_ERR_IO);
    assert_contains(err.message, "127.0.0.1:1");
    assert_null(strstr(err.message, "secret"));
    assert_int_equal(dt_store_open_postgres("", NULL, &s, &err), DT_ERR_INVALID_ARG);
}

/* Nodes that open a fresh schema together migrate it once, and all open it. */
static char g_together[64];

static void *open_one(void *arg)
{
    dt_store *s = NULL;
    dt_error err;
    dt_status *st = arg;
    *st = dt_store_open_postgres(g_url, g_together, &s, &err);
    if (*st != DT_OK)
        fprintf(stderr, "open: %s\n", err.message);
    dt_store_close(s);
    return NULL;
}

static void test_nodes_opening_together_migrate_once(void **state)
{
    (void)state;
    pthread_t t[4];
    dt_status st[4];
    snprintf(g_together, sizeof g_together, "%s", fresh_schema("pg-together"));
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, open_one, &st[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(st[i], DT_OK);
    }
    assert_string_equal(psql(g_together, "SELECT count(*) FROM dtask_meta"), "1");
}

/* What the backend does not do yet is an explicit error naming it. */
static void test_what_is_not_built_yet_says_so(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_postgres(g_url, fresh_schema("pg-unbuilt"), &s, &err), &err);
    size_t depth_o = 0, depth_a = 0;
    dt_status st = dt_store_queue_depths(s, 1, &depth_o, &depth_a, &err);
    if (st == DT_ERR_UNIMPLEMENTED)
        assert_contains(err.message, "queue_depths");
    else
        assert_int_equal(st, DT_OK);
    dt_store_close(s);
}

/* A watcher on one node hears another node's start, message and commit within moments (LISTEN
 * and NOTIFY), with the instances whose state the commit changed and whether work may be
 * left for it (not when the commit leased all it made ready), and nothing once its store is
 * closed. */
typedef struct heard {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    char ids[256];   /* the last call's ids, "(any)" for NULL */
    bool work;       /* the last call's */
} heard;

static void on_change(void *arg, const char *ids, bool work)
{
    heard *h = arg;
    pthread_mutex_lock(&h->mu);
    h->n++;
    h->work = work;
    snprintf(h->ids, sizeof h->ids, "%s", ids ? ids : "(any)");
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

/* wait_heard: true once H has heard more than AFTER, within 5 s. */
static bool wait_heard(heard *h, int after)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&h->mu);
    while (h->n <= after && pthread_cond_timedwait(&h->cv, &h->mu, &until) == 0)
        ;
    bool yes = h->n > after;
    pthread_mutex_unlock(&h->mu);
    return yes;
}

static void test_a_watcher_hears_other_nodes_work(void **state)
{
    (void)state;
    char schema[64];
    snprintf(schema, sizeof schema, "%s", fresh_schema("pg-watch"));
    dt_store *a = NULL, *b = NULL;
    dt_error err;
    assert_ok(dt_store_open_postgres(g_url, schema, &a, &err), &err);
    assert_ok(dt_store_open_postgres(g_url, schema, &b, &err), &err);
    heard h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, "", false};
    assert_ok(dt_store_watch(b, on_change, &h, &err), &err);
    assert_int_equal(dt_store_watch(b, on_change, &h, &err), DT_ERR_STATE);
    usleep(300000);   /* the listener connects */

    dt_new_instance ni = {.instance_id = "w1", .execution_id = "e", .name = "o",
                          .created_at = 1};
    int before = h.n;
    assert_ok(dt_store_create_instance(a, &ni, &err), &err);
    assert_true(wait_heard(&h, before));
    assert_string_equal(h.ids, "");   /* work to take; no instance's state changed */
    assert_true(h.work);

    dt_orch_item *items[1];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(a, "a", 2, 60000000, 1, NULL, items, &n, &err),
              &err);
    assert_int_equal(n, 1);
    dt_commit c = {.kind = DT_COMMIT_EPISODE};
    c.u.episode.item = items[0];
    c.u.episode.append = items[0]->incoming;
    c.u.episode.n_append = 1;
    c.u.episode.status = DT_STATUS_RUNNING;
    before = h.n;
    assert_ok(dt_store_commit(a, &c, 1, &err), &err);
    assert_int_equal(c.result, DT_OK);
    assert_true(wait_heard(&h, before));
    assert_string_equal(h.ids, "w1");   /* its state changed: waits on it look */
    assert_true(h.work);                /* it leased nothing: its activity is anyone's */
    dt_orch_item_free(items[0]);

    /* the next step leases, for its own node, the activity it schedules; its own instance,
     * which goes on, it does not (no message): that may be another node's (see work_left) */
    dt_message go = {.instance_id = "w1", .visible_at = 3};
    dt_event_init(&go.event, DT_EVENT_EVENT_RAISED, 3);
    go.event.name = "go";
    before = h.n;
    assert_ok(dt_store_send_message(a, &go, &err), &err);
    /* hear the message first: heard late, it was taken for the commit's below */
    assert_true(wait_heard(&h, before));
    assert_string_equal(h.ids, "");
    assert_true(h.work);
    assert_ok(dt_store_lease_orchestrations(a, "a", 4, 60000000, 1, NULL, items, &n, &err),
              &err);
    assert_int_equal(n, 1);
    dt_event sched = {0};
    dt_event_init(&sched, DT_EVENT_TASK_SCHEDULED, 4);
    sched.event_id = 1;
    sched.name = "act";
    dt_new_activity na = {.scheduled = &sched, .execution_id = "e", .visible_at = 4};
    c = (dt_commit){.kind = DT_COMMIT_EPISODE};
    c.u.episode.item = items[0];
    c.u.episode.append = &sched;
    c.u.episode.n_append = 1;
    c.u.episode.activities = &na;
    c.u.episode.n_activities = 1;
    c.u.episode.status = DT_STATUS_RUNNING;
    dt_orch_item *o_out[4];
    dt_activity_item *a_out[4];
    dt_commit_lease L = {.owner = "a", .now = 5, .lease_us = 60000000, .max_orchestrations = 4,
                         .max_activities = 4, .orchestrations = o_out, .activities = a_out};
    before = h.n;
    assert_ok(dt_store_commit_lease(a, &c, 1, &L, &err), &err);
    assert_int_equal(c.result, DT_OK);
    assert_int_equal(L.n_activities, 1);
    assert_true(wait_heard(&h, before));
    assert_string_equal(h.ids, "w1");
    assert_true(h.work);
    for (size_t i = 0; i < L.n_orchestrations; i++)
        dt_orch_item_free(o_out[i]);
    dt_orch_item_free(items[0]);

    /* the activity's result goes to w1, and the same commit leases w1 for its node: nothing
     * is left for others (and no instance's state changed) */
    dt_commit done = {.kind = DT_COMMIT_ACTIVITY};
    done.u.activity.item = a_out[0];
    done.u.activity.message.instance_id = "w1";
    dt_event_init(&done.u.activity.message.event, DT_EVENT_TASK_COMPLETED, 5);
    done.u.activity.message.event.task_id = 1;
    L = (dt_commit_lease){.owner = "a", .now = 6, .lease_us = 60000000,
                          .max_orchestrations = 4, .max_activities = 4,
                          .orchestrations = o_out, .activities = a_out + 1};
    before = h.n;
    assert_ok(dt_store_commit_lease(a, &done, 1, &L, &err), &err);
    assert_int_equal(done.result, DT_OK);
    assert_int_equal(L.n_orchestrations, 1);
    assert_true(wait_heard(&h, before));
    assert_string_equal(h.ids, "");
    assert_false(h.work);
    dt_orch_item_free(o_out[0]);
    dt_activity_item_free(a_out[0]);

    dt_store_close(b);
    before = h.n;
    dt_message m = {.instance_id = "w1", .visible_at = 3};
    dt_event_init(&m.event, DT_EVENT_EVENT_RAISED, 3);
    m.event.name = "e";
    assert_ok(dt_store_send_message(a, &m, &err), &err);
    usleep(300000);
    assert_int_equal(h.n, before);
    dt_store_close(a);
}

/* A message sent while a purge of its instance is under way (another node's transaction has
 * deleted the row, not yet committed) waits for it and then finds no instance: it is refused
 * NOT_FOUND and leaves nothing behind in the inbox (it used to slip in and stay, orphaned). */
typedef struct sender {
    dt_store *s;
    dt_status st;
} sender;

static void *send_one(void *arg)
{
    sender *x = arg;
    dt_message m = {.instance_id = "doomed", .visible_at = 2};
    dt_event_init(&m.event, DT_EVENT_EVENT_RAISED, 2);
    m.event.name = "late";
    dt_error err;
    x->st = dt_store_send_message(x->s, &m, &err);
    return NULL;
}

static void test_a_message_racing_a_purge_waits_and_finds_no_instance(void **state)
{
    (void)state;
    char schema[64];
    snprintf(schema, sizeof schema, "%s", fresh_schema("pg-purge-race"));
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_postgres(g_url, schema, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "doomed", .execution_id = "e", .name = "o",
                          .created_at = 1};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);

    PGconn *other = PQconnectdb(g_url);   /* the purging node, mid-transaction */
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SET search_path TO \"%s\"; BEGIN;"
             " DELETE FROM inbox WHERE instance_id = 'doomed';"
             " DELETE FROM instances WHERE instance_id = 'doomed'", schema);
    PQclear(PQexec(other, sql));
    sender x = {s, DT_ERR_INTERNAL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, send_one, &x), 0);
    usleep(300000);   /* the sender is waiting on the row by now */
    PQclear(PQexec(other, "COMMIT"));
    pthread_join(t, NULL);
    PQfinish(other);
    assert_int_equal(x.st, DT_ERR_NOT_FOUND);
    assert_string_equal(psql(schema, "SELECT count(*) FROM inbox"), "0");
    dt_store_close(s);
}

/* The next due work: a scheduled start, then a retry of work given back for later, whichever
 * comes first; nothing when nothing waits for a time. */
static void test_next_due_is_the_earliest_scheduled_work_or_retry(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_postgres(g_url, fresh_schema("pg-due"), &s, &err), &err);
    dt_time due = -1;
    assert_ok(dt_store_next_due(s, 100, &due, &err), &err);
    assert_int_equal(due, 0);
    dt_new_instance later = {.instance_id = "later", .execution_id = "e", .name = "o",
                             .created_at = 100, .scheduled_start = 9000};
    dt_new_instance now = {.instance_id = "now", .execution_id = "e", .name = "o",
                           .created_at = 100};
    assert_ok(dt_store_create_instance(s, &later, &err), &err);
    assert_ok(dt_store_create_instance(s, &now, &err), &err);
    assert_ok(dt_store_next_due(s, 200, &due, &err), &err);
    assert_int_equal(due, 9000);
    dt_orch_item *items[1];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(s, "w", 200, 1000000, 1, NULL, items, &n, &err),
              &err);
    assert_int_equal(n, 1);
    assert_ok(dt_store_abandon_orchestration(s, items[0], 5000, &err), &err);   /* retry at 5000 */
    dt_orch_item_free(items[0]);
    assert_ok(dt_store_next_due(s, 300, &due, &err), &err);
    assert_int_equal(due, 5000);
    assert_ok(dt_store_next_due(s, 9000, &due, &err), &err);
    assert_int_equal(due, 0);
    dt_store_close(s);
}

/* open_named: a store on a fresh schema (into SCHEMA, 64 bytes) whose connections are named
 * after it (so a test finds them, and only them, in pg_stat_activity), with instance "a". */
static dt_store *open_named(const char *what, char *schema)
{
    char url[1200];
    snprintf(schema, 64, "%s", fresh_schema(what));
    snprintf(url, sizeof url, "%s%capplication_name=%s", g_url, strchr(g_url, '?') ? '&' : '?',
             schema);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_postgres(url, schema, &s, &err), &err);
    dt_new_instance a = {.instance_id = "a", .execution_id = "e", .name = "o", .created_at = 1};
    assert_ok(dt_store_create_instance(s, &a, &err), &err);
    return s;
}

/* A read of one instance does not wait behind a commit: reads have a connection of their own.
 * Another session locks the instances table against writes, so the store's next write sits
 * inside its transaction (holding the store's connection); a read of an instance is answered
 * meanwhile. A watchdog ends the lock after 20 s, so a read that did wait ends the test with a
 * failure, not a hang. */
typedef struct locker {
    PGconn *conn;
    pthread_mutex_t mu;
    bool released;
} locker;

static void locker_release(locker *l)
{
    pthread_mutex_lock(&l->mu);
    if (!l->released)
        PQclear(PQexec(l->conn, "ROLLBACK"));
    l->released = true;
    pthread_mutex_unlock(&l->mu);
}

static void *watchdog(void *arg)
{
    locker *l = arg;
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&l->mu);
        bool done = l->released;
        pthread_mutex_unlock(&l->mu);
        if (done)
            return NULL;
        usleep(100000);
    }
    locker_release(l);
    return NULL;
}

typedef struct blocked_write {
    dt_store *s;
    dt_status st;
} blocked_write;

static void *writes_b(void *arg)
{
    blocked_write *w = arg;
    dt_new_instance b = {.instance_id = "b", .execution_id = "e", .name = "o", .created_at = 1};
    dt_error err;
    w->st = dt_store_create_instance(w->s, &b, &err);
    return NULL;
}

static void test_a_read_does_not_wait_behind_a_commit(void **state)
{
    (void)state;
    char schema[64];
    dt_error err;
    dt_store *s = open_named("pg-read-beside", schema);

    locker l = {.conn = PQconnectdb(g_url)};
    pthread_mutex_init(&l.mu, NULL);
    assert_int_equal(PQstatus(l.conn), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof sql, "SET search_path TO \"%s\"", schema);
    PQclear(PQexec(l.conn, sql));
    PGresult *r = PQexec(l.conn, "BEGIN; LOCK TABLE instances IN EXCLUSIVE MODE");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    pthread_t dog, writer;
    blocked_write w = {s, DT_ERR_INTERNAL};
    assert_int_equal(pthread_create(&dog, NULL, watchdog, &l), 0);
    assert_int_equal(pthread_create(&writer, NULL, writes_b, &w), 0);
    /* the store's write waits for the lock, inside its transaction */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
             "'%s' AND wait_event_type = 'Lock'", schema);
    for (int i = 0; i < 200 && strcmp(psql(schema, sql), "1") != 0; i++)
        usleep(50000);
    assert_string_equal(psql(schema, sql), "1");

    dt_arena *arena = dt_arena_new();
    dt_instance_state *st = NULL;
    assert_ok(dt_store_get_instance(s, "a", arena, &st, &err), &err);
    dt_event *h = NULL;
    size_t n = 0;
    assert_ok(dt_store_get_history(s, "a", arena, &h, &n, &err), &err);
    pthread_mutex_lock(&l.mu);
    bool waited = l.released;   /* answered only once the watchdog let the write go */
    pthread_mutex_unlock(&l.mu);
    locker_release(&l);
    pthread_join(writer, NULL);
    pthread_join(dog, NULL);
    assert_false(waited);
    assert_string_equal(st->instance_id, "a");
    assert_int_equal(w.st, DT_OK);   /* the write went on once the lock was gone */
    assert_ok(dt_store_get_instance(s, "b", arena, &st, &err), &err);
    PQfinish(l.conn);
    pthread_mutex_destroy(&l.mu);
    dt_arena_free(arena);
    dt_store_close(s);
}

/* The store's connection is cut (its server process terminated, as a restart would): the
 * statement that finds it broken fails, and the next ones reconnect and run again, the
 * statements the store had prepared on the old connection prepared anew on the new one. */
static void test_statements_run_again_after_a_reconnect(void **state)
{
    (void)state;
    char schema[64];
    dt_error err;
    dt_store *s = open_named("pg-reconnect", schema);
    dt_arena *arena = dt_arena_new();
    dt_instance_state *st = NULL;
    assert_ok(dt_store_get_instance(s, "a", arena, &st, &err), &err);

    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE application_name = '%s'", schema);
    assert_string_equal(psql(schema, sql), "2");   /* the store's, and its reads' */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_stat_activity"
             " WHERE application_name = '%s'", schema);
    for (int i = 0; i < 100 && strcmp(psql(schema, sql), "0") != 0; i++)
        usleep(50000);
    assert_string_equal(psql(schema, sql), "0");

    /* the first transaction finds the connection gone (its BEGIN and first statement sent
     * together) and changes nothing; the next statement reconnects. A read finds its own
     * connection gone, and goes again on a new one: it is answered */
    dt_new_instance lost = {.instance_id = "lost", .execution_id = "e", .name = "o",
                            .created_at = 1};
    assert_int_equal(dt_store_create_instance(s, &lost, &err), DT_ERR_IO);
    assert_int_equal(dt_store_get_instance(s, "lost", arena, &st, &err), DT_ERR_NOT_FOUND);
    assert_ok(dt_store_get_instance(s, "a", arena, &st, &err), &err);
    assert_string_equal(st->instance_id, "a");
    assert_int_equal(st->status, DT_STATUS_PENDING);
    dt_new_instance b = {.instance_id = "b", .execution_id = "e", .name = "o", .created_at = 1};
    assert_ok(dt_store_create_instance(s, &b, &err), &err);
    dt_orch_item *items[2];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(s, "w", 2, 60000000, 2, NULL, items, &n, &err),
              &err);
    assert_int_equal(n, 2);
    dt_commit c[2] = {{.kind = DT_COMMIT_EPISODE}, {.kind = DT_COMMIT_EPISODE}};
    for (size_t i = 0; i < 2; i++) {
        c[i].u.episode.item = items[i];
        c[i].u.episode.append = items[i]->incoming;
        c[i].u.episode.n_append = items[i]->n_incoming;
        c[i].u.episode.status = DT_STATUS_RUNNING;
    }
    assert_ok(dt_store_commit(s, c, 2, &err), &err);
    assert_int_equal(c[0].result, DT_OK);
    assert_int_equal(c[1].result, DT_OK);
    for (size_t i = 0; i < 2; i++)
        dt_orch_item_free(items[i]);
    assert_ok(dt_store_get_instance(s, "b", arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_RUNNING);
    dt_event *h = NULL;
    size_t nh = 0;
    assert_ok(dt_store_get_history(s, "b", arena, &h, &nh, &err), &err);
    assert_int_equal(nh, 1);
    assert_int_equal(h[0].type, DT_EVENT_EXECUTION_STARTED);
    dt_arena_free(arena);
    dt_store_close(s);
}

/* read_url: the test server's URL, or false when there is none. */
static bool read_url(void)
{
    const char *url = getenv("DT_TEST_PG_URL"), *file = getenv("DT_TEST_PG_URL_FILE");
    if (url && url[0]) {
        snprintf(g_url, sizeof g_url, "%s", url);
        return true;
    }
    FILE *f = file ? fopen(file, "r") : NULL;
    if (f == NULL)
        return false;
    bool ok = fgets(g_url, sizeof g_url, f) != NULL;
    fclose(f);
    g_url[strcspn(g_url, "\r\n")] = '\0';
    return ok && g_url[0];
}

int main(void)
{
    if (!read_url()) {
        fprintf(stderr, "test_store_pg: no PostgreSQL to test against (DT_TEST_PG_URL or "
                        "DT_TEST_PG_URL_FILE; ctest starts one with scripts/pg.sh): skipped\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_makes_a_versioned_schema),
        cmocka_unit_test(test_a_newer_schema_is_refused),
        cmocka_unit_test(test_a_version_1_schema_is_migrated_and_nodes_are_heard),
        cmocka_unit_test(test_bad_schema_and_unreachable_server_are_named),
        cmocka_unit_test(test_nodes_opening_together_migrate_once),
        cmocka_unit_test(test_what_is_not_built_yet_says_so),
        cmocka_unit_test(test_a_watcher_hears_other_nodes_work),
        cmocka_unit_test(test_a_message_racing_a_purge_waits_and_finds_no_instance),
        cmocka_unit_test(test_next_due_is_the_earliest_scheduled_work_or_retry),
        cmocka_unit_test(test_statements_run_again_after_a_reconnect),
        cmocka_unit_test(test_a_read_does_not_wait_behind_a_commit),
    };
    int failed = cmocka_run_group_tests_name("postgres", tests, NULL, NULL);
    failed += store_contract_run("postgres", open_pg);
    return failed ? 1 : 0;
}
