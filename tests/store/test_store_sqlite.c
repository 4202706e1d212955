/* test_store_sqlite.c — the SQLite backend: the shared store contract suite, then what only
 * SQLite has: file paths and their errors, refusing files that are not ours (and leaving them
 * untouched), WAL mode, several connections sharing one file as worker processes do, and
 * which sync modes defer the fsync of a commit. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_contract.h"
#include "testutil.h"

#define T0 ((dt_time)1700000000000000LL)

static dt_status open_sqlite(const char *dir, dt_store **out, dt_error *err)
{
    return dt_store_open_sqlite(test_path(dir, "store.db"), DT_SYNC_FULL, out, err);
}

static void assert_contains(const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("'%s' does not mention '%s'", text, needle);
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void sql(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", text, msg);
    sqlite3_close(db);
}

static void expect_open_fails(const char *path, dt_status want)
{
    dt_store *s = NULL;
    dt_error err;
    dt_error_clear(&err);
    dt_status got = dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err);
    if (got != want)
        fail_msg("opening '%s' gave %s (%s), want %s", path, dt_strerror(got), err.message,
                 dt_strerror(want));
    assert_null(s);
    assert_int_equal(err.code, want);
    assert_contains(err.message, path);
}

static void test_missing_parent_directories_are_created(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-mkdir");
    char path[1200];
    snprintf(path, sizeof path, "%s/a/b/c/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_store_close(s);
    assert_true(file_exists(path));
    /* and it opens again */
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_NORMAL, &s, &err), &err);
    dt_store_close(s);
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_OFF, &s, &err), &err);
    dt_store_close(s);
}

/* A PostgreSQL URL given to the SQLite store is refused, without making a file or folder
 * named after it ("postgres:/user@host..." under the current directory), and without repeating
 * the URL, which may hold a password. */
static void test_postgres_url_is_refused_not_made_a_file(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-pg-url");
    char url[1200], made[1300];
    snprintf(url, sizeof url, "postgres://user:secret@127.0.0.1:1/%s/db", dir);
    snprintf(made, sizeof made, "postgres:/user:secret@127.0.0.1:1/%s", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_int_equal(dt_store_open_sqlite(url, DT_SYNC_FULL, &s, &err), DT_ERR_INVALID_ARG);
    assert_null(s);
    assert_contains(err.message, "PostgreSQL URL");
    assert_null(strstr(err.message, "secret"));
    assert_false(file_exists("postgres:"));
    assert_false(file_exists(made));
}

static void test_unwritable_path_is_an_io_error_naming_it(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-unwritable");
    char file[1200], under_file[1300], deeper[1300];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    write_file(file, "x", 1);
    snprintf(under_file, sizeof under_file, "%s/store.db", file);
    expect_open_fails(under_file, DT_ERR_IO);   /* parent is a regular file */
    snprintf(deeper, sizeof deeper, "%s/sub/store.db", file);
    expect_open_fails(deeper, DT_ERR_IO);       /* a directory would have to go under it */
    expect_open_fails(dir, DT_ERR_IO);          /* the path is a directory */
    expect_open_fails("/proc/dt-no-such-dir/store.db", DT_ERR_IO);
}

static void test_garbage_file_is_corrupt_and_left_unchanged(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-garbage");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    static unsigned char garbage[8192];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)((i * 7919u + 13u) >> 3);
    memcpy(garbage, "not a database at all", 21);
    write_file(path, garbage, sizeof garbage);

    expect_open_fails(path, DT_ERR_CORRUPT);

    static unsigned char back[sizeof garbage + 1];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(back, 1, sizeof back, f), sizeof garbage);
    fclose(f);
    assert_memory_equal(back, garbage, sizeof garbage);
    char wal[1300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    assert_false(file_exists(wal));
}

static void test_foreign_database_with_our_table_names_is_corrupt(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-foreign");
    char path[1200];
    snprintf(path, sizeof path, "%s/other.db", dir);
    sql(path, "CREATE TABLE instances (x INTEGER); INSERT INTO instances VALUES (42);");
    expect_open_fails(path, DT_ERR_CORRUPT);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT x FROM instances", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 42);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* a database of another application (application_id set) */
    snprintf(path, sizeof path, "%s/app.db", dir);
    sql(path, "PRAGMA application_id = 1234; CREATE TABLE t (x);");
    expect_open_fails(path, DT_ERR_CORRUPT);
}

static void test_newer_schema_version_is_refused(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-version");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_store_close(s);
    sql(path, "PRAGMA user_version = 99;");
    expect_open_fails(path, DT_ERR_CORRUPT);
}

/* What versions 7 and 8 added to the tables of instances (names on the inbox, the name
 * indexes, the history's generation); a test that makes an older file takes them away first. */
#define UNDO_7_OF_INSTANCES                                                                    \
    "ALTER TABLE instances DROP COLUMN history_gen;"                                           \
    "DROP INDEX inbox_by_name; DROP INDEX inbox_terminates; DROP INDEX activities_by_name;"   \
    "ALTER TABLE inbox DROP COLUMN name;"

/* A version 4 file (before trace context and tags of activities and the orchestration's span)
 * is brought up to date when opened, keeping what it holds. */
static void test_a_version_4_file_is_migrated_keeping_its_instances(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-migrate-4");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "kept", .execution_id = "e", .name = "o",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    dt_store_close(s);
    sql(path, UNDO_7_OF_INSTANCES
              "ALTER TABLE instances DROP COLUMN span_id;"
              "ALTER TABLE instances DROP COLUMN span_start;"
              "ALTER TABLE activities DROP COLUMN trace_parent;"
              "ALTER TABLE activities DROP COLUMN trace_state;"
              "ALTER TABLE activities DROP COLUMN tags;"
              "DROP TABLE entity_inbox; DROP TABLE entities;"
              "PRAGMA user_version = 4;");
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_arena *a = dt_arena_new();
    dt_instance_state *got = NULL;
    assert_ok(dt_store_get_instance(s, "kept", a, &got, &err), &err);
    assert_string_equal(got->name, "o");
    assert_null(got->span_id);
    dt_arena_free(a);
    dt_store_close(s);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT user_version FROM pragma_user_version",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 8);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT tags FROM activities", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT state FROM entities", -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A version 5 file (before entities) gets the entity tables when opened, keeping what it
 * holds, and entities work in it. */
static void test_a_version_5_file_is_migrated_with_entity_tables(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-migrate-5");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "kept", .execution_id = "e", .name = "o",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    dt_store_close(s);
    sql(path, UNDO_7_OF_INSTANCES
              "DROP TABLE entity_inbox; DROP TABLE entities; PRAGMA user_version = 5;");
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_arena *a = dt_arena_new();
    dt_instance_state *got = NULL;
    assert_ok(dt_store_get_instance(s, "kept", a, &got, &err), &err);
    dt_entity_message m = {.entity_id = "@counter@x"};
    dt_event_init(&m.event, DT_EVENT_ENTITY_SIGNALED, T0);
    m.event.request_id = "r";
    m.event.name = "add";
    assert_ok(dt_store_send_entity_message(s, &m, &err), &err);
    dt_entity_state *e = NULL;
    assert_ok(dt_store_get_entity(s, "@counter@x", true, a, &e, &err), &err);
    assert_int_equal(e->backlog, 1);
    dt_arena_free(a);
    dt_store_close(s);
}

/* A version 6 file (before names on queued work) gets them when opened: work already
 * waiting is found by a filtered lease through the new indexes, instances' and entities'. */
static void test_a_version_6_file_is_migrated_with_names_on_queued_work(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-migrate-6");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "kept", .execution_id = "e", .name = "o",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    dt_entity_message m = {.entity_id = "@Counter@x", .visible_at = T0};
    dt_event_init(&m.event, DT_EVENT_ENTITY_SIGNALED, T0);
    m.event.request_id = "r";
    m.event.name = "add";
    assert_ok(dt_store_send_entity_message(s, &m, &err), &err);
    dt_store_close(s);
    sql(path, UNDO_7_OF_INSTANCES "DROP INDEX entity_inbox_by_name;"
              "ALTER TABLE entity_inbox DROP COLUMN name; PRAGMA user_version = 6;");

    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    const char *o[] = {"o"}, *counter[] = {"counter"};
    dt_name_filter of = {o, 1, NULL}, cf = {counter, 1, NULL};
    dt_orch_item *items[2];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(s, "w", T0, 1000000, 2, &of, items, &n, &err),
              &err);
    assert_int_equal(n, 1);
    assert_string_equal(items[0]->instance_id, "kept");
    dt_orch_item_free(items[0]);
    dt_entity_item *ents[2];
    assert_ok(dt_store_lease_entities(s, "w", T0, 1000000, 2, &cf, ents, &n, &err), &err);
    assert_int_equal(n, 1);
    assert_string_equal(ents[0]->entity_id, "@Counter@x");
    dt_entity_item_free(ents[0]);
    dt_store_close(s);
}

/* A database from an older development build (schema version 1, whose inbox had no
 * execution_id) is refused with the version named, not used and not changed. */
static void test_older_schema_version_is_refused_naming_it(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-old-version");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "old", .execution_id = "e", .name = "o",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    dt_store_close(s);
    sql(path, "PRAGMA user_version = 1; ALTER TABLE inbox DROP COLUMN execution_id;");
    expect_open_fails(path, DT_ERR_CORRUPT);
    dt_error_clear(&err);
    assert_int_equal(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), DT_ERR_CORRUPT);
    assert_contains(err.message, "schema version 1");
    assert_contains(err.message, "version 8");

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT user_version FROM pragma_user_version",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT instance_id FROM instances", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "old");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_plain_empty_database_is_initialised(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-plain");
    char path[1200];
    snprintf(path, sizeof path, "%s/plain.db", dir);
    sql(path, "CREATE TABLE notes (t TEXT);");   /* no name of ours: we move in alongside */
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_store_close(s);
}

static void test_journal_mode_is_wal_with_our_schema_version(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-wal");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);

    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 8);
    sqlite3_finalize(st);
    sqlite3_close(db);
    dt_store_close(s);
}

/* Two handles on one file stand for two processes: a lease taken through one is seen by the
 * other, and work created through one is leased through the other. */
static void test_two_connections_share_leases(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-shared");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *a = NULL, *b = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &a, &err), &err);
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &b, &err), &err);

    dt_new_instance ni = {.instance_id = "shared", .execution_id = "e", .name = "orch",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(a, &ni, &err), &err);
    dt_orch_item *items[2];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(b, "b", T0, 30000000, 2, NULL, items, &n, &err), &err);
    assert_int_equal(n, 1);
    dt_orch_item *held = items[0];
    assert_ok(dt_store_lease_orchestrations(a, "a", T0, 30000000, 2, NULL, items, &n, &err), &err);
    assert_int_equal(n, 0);

    dt_event started = held->incoming[0];
    dt_commit c = {.kind = DT_COMMIT_EPISODE};
    c.u.episode.item = held;
    c.u.episode.append = &started;
    c.u.episode.n_append = 1;
    c.u.episode.status = DT_STATUS_RUNNING;
    assert_ok(dt_store_commit(b, &c, 1, &err), &err);
    assert_int_equal(c.result, DT_OK);
    dt_orch_item_free(held);

    dt_arena *arena = dt_arena_new();
    dt_instance_state *st = NULL;
    assert_ok(dt_store_get_instance(a, "shared", arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_RUNNING);
    dt_arena_free(arena);
    dt_store_close(a);
    dt_store_close(b);
}

/* A database failure inside a group commit (here a trigger that aborts history inserts for
 * one instance) rolls back the whole batch: every entry gets the error, nothing is applied. */
static void test_database_failure_rolls_back_the_whole_batch(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-batch-fail");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    const char *ids[2] = {"fine", "boom"};
    for (int i = 0; i < 2; i++) {
        dt_new_instance ni = {.instance_id = ids[i], .execution_id = "e", .name = "o",
                              .created_at = T0};
        assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    }
    dt_orch_item *items[2];
    size_t n = 0;
    assert_ok(dt_store_lease_orchestrations(s, "w", T0, 30000000, 2, NULL, items, &n, &err), &err);
    assert_int_equal(n, 2);
    sql(path, "CREATE TRIGGER fail_boom BEFORE INSERT ON history WHEN NEW.instance_id = 'boom'"
              " BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");

    dt_commit batch[2];
    dt_event started[2];
    for (int i = 0; i < 2; i++) {
        /* "fine" first, so its changes are made before "boom" fails */
        dt_orch_item *item = strcmp(items[0]->instance_id, ids[i]) == 0 ? items[0] : items[1];
        started[i] = item->incoming[0];
        memset(&batch[i], 0, sizeof batch[i]);
        batch[i].kind = DT_COMMIT_EPISODE;
        batch[i].u.episode.item = item;
        batch[i].u.episode.append = &started[i];
        batch[i].u.episode.n_append = 1;
        batch[i].u.episode.status = DT_STATUS_RUNNING;
    }
    dt_status st = dt_store_commit(s, batch, 2, &err);
    assert_int_not_equal(st, DT_OK);
    assert_contains(err.message, "injected failure");
    assert_int_equal(batch[0].result, st);
    assert_int_equal(batch[1].result, st);

    dt_arena *arena = dt_arena_new();
    dt_event *h = NULL;
    size_t nh = 99;
    assert_ok(dt_store_get_history(s, "fine", arena, &h, &nh, &err), &err);
    assert_int_equal(nh, 0);
    dt_instance_state *is = NULL;
    assert_ok(dt_store_get_instance(s, "fine", arena, &is, &err), &err);
    assert_int_equal(is->status, DT_STATUS_PENDING);
    dt_arena_free(arena);

    /* the leases are still held: once the fault is gone the same batch commits */
    sql(path, "DROP TRIGGER fail_boom;");
    assert_ok(dt_store_commit(s, batch, 2, &err), &err);
    assert_int_equal(batch[0].result, DT_OK);
    assert_int_equal(batch[1].result, DT_OK);
    dt_orch_item_free(items[0]);
    dt_orch_item_free(items[1]);
    dt_store_close(s);
}

typedef struct holder {
    const char *path;
    int hold_ms;
    int rc;
    atomic_bool locked;     /* it has the lock */
    atomic_bool released;   /* it is letting go of the lock (set before it does) */
} holder;

static void *hold_write_lock(void *arg)
{
    holder *h = arg;
    sqlite3 *db = NULL;
    h->rc = sqlite3_open(h->path, &db);
    if (h->rc == SQLITE_OK)
        h->rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    atomic_store(&h->locked, true);
    test_sleep_ms(h->hold_ms);
    atomic_store(&h->released, true);
    if (h->rc == SQLITE_OK)
        h->rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return NULL;
}

/* Another process holding the write lock briefly makes us wait, not fail. */
static void test_writer_in_another_connection_is_waited_for(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-busy");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    holder h = {.path = path, .hold_ms = 300};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, hold_write_lock, &h), 0);
    test_sleep_ms(100);
    dt_new_instance ni = {.instance_id = "waited", .execution_id = "e", .name = "o",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);
    pthread_join(th, NULL);
    assert_int_equal(h.rc, SQLITE_OK);
    dt_store_close(s);
}

typedef struct blocked_commit {
    dt_store *store;
    dt_status st;
    atomic_bool started, done;
} blocked_commit;

static void *create_blocked(void *arg)
{
    blocked_commit *b = arg;
    dt_new_instance ni = {.instance_id = "blocked", .execution_id = "e", .name = "o",
                          .created_at = T0};
    dt_error err;
    atomic_store(&b->started, true);
    b->st = dt_store_create_instance(b->store, &ni, &err);
    atomic_store(&b->done, true);
    return NULL;
}

/* A history is read on a connection of its own: a commit that waits for another process's
 * write lock, holding our writer meanwhile, does not hold up a reader of a history (before,
 * windows were read on the writer, and every reader of a long history waited for the group
 * commits and held them up in turn). */
static void test_a_history_is_read_beside_a_commit_that_waits(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-hist-reader");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);
    dt_new_instance ni = {.instance_id = "read-me", .execution_id = "e", .name = "o",
                          .created_at = T0};
    assert_ok(dt_store_create_instance(s, &ni, &err), &err);

    holder h = {.path = path, .hold_ms = 3000};
    pthread_t holder_t, commit_t;
    assert_int_equal(pthread_create(&holder_t, NULL, hold_write_lock, &h), 0);
    while (!atomic_load(&h.locked))   /* the other process has the write lock */
        test_sleep_ms(5);
    blocked_commit b = {.store = s, .st = DT_ERR_INTERNAL};
    assert_int_equal(pthread_create(&commit_t, NULL, create_blocked, &b), 0);
    while (!atomic_load(&b.started))
        test_sleep_ms(5);
    test_sleep_ms(500);   /* our commit is in our writer, waiting for the lock */

    dt_arena *a = dt_arena_new();
    dt_history_window w = {0};
    dt_status read = dt_store_read_history(s, "read-me", 0, 0, a, &w, &err);
    bool waiting = !atomic_load(&b.done);   /* the commit still waited when the read was done */
    dt_status missing = dt_store_read_history(s, "blocked", 0, 0, a, &w, &err);
    bool held = !atomic_load(&h.released);
    pthread_join(holder_t, NULL);   /* asserts after the joins: the threads use this frame */
    pthread_join(commit_t, NULL);
    assert_int_equal(h.rc, SQLITE_OK);
    assert_int_equal(read, DT_OK);
    assert_true(waiting && held);   /* read while the commit waited for the lock */
    assert_int_equal(b.st, DT_OK);   /* and the commit went in once the lock was let go */
    assert_int_equal(missing, DT_ERR_NOT_FOUND);   /* the read did not see it half-made */
    dt_history_window after = {0};
    assert_ok(dt_store_read_history(s, "blocked", 0, 0, a, &after, &err), &err);
    dt_arena_free(a);
    dt_store_close(s);
}

#define SH_INSTANCES 30

typedef struct shared_run {
    dt_store *store;
    char owner[8];
    int *seen;
    pthread_mutex_t *mu;
    int errors;
} shared_run;

static void *shared_lease_loop(void *arg)
{
    shared_run *r = arg;
    for (int round = 0; round < SH_INSTANCES; round++) {   /* bounded, as in the suite */
        dt_orch_item *items[2];
        size_t n = 0;
        dt_error err;
        if (dt_store_lease_orchestrations(r->store, r->owner, T0, 30000000, 2, NULL, items, &n,
                                          &err) != DT_OK) {
            fprintf(stderr, "%s: %s\n", r->owner, err.message);
            r->errors++;
            return NULL;
        }
        if (n == 0)
            return NULL;
        pthread_mutex_lock(r->mu);
        for (size_t i = 0; i < n; i++)
            r->seen[atoi(items[i]->instance_id + 1)]++;
        pthread_mutex_unlock(r->mu);
        for (size_t i = 0; i < n; i++)
            dt_orch_item_free(items[i]);
    }
    return NULL;
}

/* Only DT_SYNC_FULL defers anything: its deferred commit skips the fsync and returns a
 * non-zero ticket for dt_store_sync. Under NORMAL and OFF no commit fsyncs its log, so there
 * is nothing to wait for: the ticket is 0, and syncing it is done at once. */
static void test_only_full_sync_gives_deferred_commits_a_ticket(void **state)
{
    (void)state;
    static const dt_sync_mode modes[] = {DT_SYNC_FULL, DT_SYNC_NORMAL, DT_SYNC_OFF};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        const char *dir = test_tmpdir("sqlite-ticket");
        char path[1200];
        snprintf(path, sizeof path, "%s/store.db", dir);
        dt_store *s = NULL;
        dt_error err, own;
        assert_ok(dt_store_open_sqlite(path, modes[i], &s, &err), &err);
        dt_commit c = {.kind = DT_COMMIT_START, .result = DT_ERR_INTERNAL, .error = &own};
        c.u.start = (dt_new_instance){.instance_id = "t", .execution_id = "e", .name = "o",
                                      .created_at = T0};
        uint64_t ticket = 99;
        assert_ok(dt_store_commit_deferred(s, &c, 1, NULL, &ticket, &err), &err);
        assert_int_equal(c.result, DT_OK);
        if (modes[i] == DT_SYNC_FULL)
            assert_int_not_equal(ticket, 0);
        else
            assert_int_equal(ticket, 0);
        assert_int_equal(dt_store_last_ticket(s), ticket);
        assert_ok(dt_store_sync(s, ticket, &err), &err);
        dt_arena *arena = dt_arena_new();
        dt_instance_state *st = NULL;
        assert_ok(dt_store_get_instance(s, "t", arena, &st, &err), &err);
        assert_int_equal(st->status, DT_STATUS_PENDING);
        dt_arena_free(arena);
        dt_store_close(s);
    }
}

/* copy_file: FROM's bytes into TO (as the disk holds them: what a crash leaves). */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* count_rows: rows in table t of the database at PATH, opened with VFS (NULL: the default). */
static int count_rows(const char *path, const char *vfs)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, vfs), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* write_and_crash: ROWS rows of 300 bytes in one transaction, through SQLite with the
 * store's VFS and a cache of CACHE_PAGES pages; then, the writer still open, the count a
 * second connection reads (it must see every frame the commit published) and the count a
 * copy of the files (a crash) recovers. */
static void write_and_crash(const char *name, int rows, int cache_pages)
{
    const char *dir = test_tmpdir(name);
    char path[1200], copy[1300], wal[1300], copy_wal[1400], sql[200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    snprintf(copy, sizeof copy, "%s/crashed.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);   /* registers it */
    dt_store_close(s);
    assert_non_null(sqlite3_vfs_find("durabletask"));

    snprintf(path, sizeof path, "%s/raw.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                     "durabletask"),
                     SQLITE_OK);
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = %d;"
             "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); BEGIN;",
             cache_pages);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, zeroblob(300))", -1, &st,
                                        NULL),
                     SQLITE_OK);
    for (int i = 0; i < rows; i++) {   /* keys all over the tree: pages come back */
        sqlite3_bind_int64(st, 1, (sqlite3_int64)((i * 7919) % rows));
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);

    assert_int_equal(count_rows(path, "durabletask"), rows);
    copy_file(path, copy);   /* the crash: the files as they are now */
    copy_file(wal, copy_wal);
    assert_int_equal(count_rows(copy, NULL), rows);
    sqlite3_close(db);
}

/* A transaction bigger than its page cache spills pages to the log before its commit and
 * may overwrite some of them in place later; SQLite then rewrites those frames' checksums:
 * a read of each frame, then a write of its header with no page after it. The store's VFS
 * (which holds a transaction's frames back to write them in one call) must not hold such a
 * header back, or the log on disk ends in a frame whose checksum breaks the chain and a
 * crash loses the commit. A tiny cache makes it spill. */
static void test_a_transaction_that_spills_survives_a_crash(void **state)
{
    (void)state;
    write_and_crash("sqlite-spill", 3000, 8);
}

/* A commit of more frames than the VFS holds (about 1 MB of log, the VFS holding at most
 * 128 KB) goes out in several writes, the commit frame's last: every row is there for a
 * reader right after the commit and after a crash. */
static void test_a_commit_larger_than_one_write_survives_a_crash(void **state)
{
    (void)state;
    write_and_crash("sqlite-big-commit", 3000, 4000);
}

/* exec_ok: SQL on DB, which must succeed. */
static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

/* insert_rows: ROWS rows of 300 bytes into t on DB, keys all over the tree or, IN_ORDER,
 * one after the other (the tree grows at its right edge: nothing spilled is read back). */
static void insert_rows(sqlite3 *db, int rows, bool in_order)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?1, zeroblob(300))", -1, &st,
                                        NULL),
                     SQLITE_OK);
    for (int i = 0; i < rows; i++) {
        sqlite3_bind_int64(st, 1, in_order ? i : (sqlite3_int64)((i * 7919) % rows));
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

/* A transaction that spills frames to the log and then rolls back leaves what the VFS held
 * of them unwritten for good: another connection then commits frames at the same offsets,
 * and the first connection's next use of the log must not write the dead frames over them
 * (a reader would see the wrong pages, and a crash would lose the other's commit, the log's
 * checksum chain broken in the middle of it). */
static void test_frames_of_a_rolled_back_transaction_are_never_written(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-rollback-held");
    char path[1200], copy[1300], wal[1300], copy_wal[1400];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *s = NULL;
    dt_error err;
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &s, &err), &err);   /* registers it */
    dt_store_close(s);

    snprintf(path, sizeof path, "%s/raw.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(copy, sizeof copy, "%s/crashed.db", dir);
    snprintf(copy_wal, sizeof copy_wal, "%s-wal", copy);
    sqlite3 *a = NULL, *b = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    assert_int_equal(sqlite3_open_v2(path, &a, flags, "durabletask"), SQLITE_OK);
    exec_ok(a, "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;"
               "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE TABLE u (k INTEGER);");
    assert_int_equal(sqlite3_open_v2(path, &b, flags, "durabletask"), SQLITE_OK);
    exec_ok(b, "PRAGMA synchronous = OFF; PRAGMA cache_size = 4000;");
    /* all in the database file, so the rollback reloads its pages from there, not the log */
    exec_ok(a, "PRAGMA wal_checkpoint(TRUNCATE)");

    exec_ok(a, "PRAGMA cache_size = 8; BEGIN");   /* a tiny cache: it spills */
    insert_rows(a, 3000, true);
    exec_ok(a, "ROLLBACK");
    exec_ok(b, "BEGIN");   /* the same frames' offsets, and more */
    insert_rows(b, 4000, false);
    exec_ok(b, "COMMIT");
    exec_ok(a, "INSERT INTO u VALUES (1)");   /* the first connection uses the log again */

    assert_int_equal(count_rows(path, "durabletask"), 4000);
    copy_file(path, copy);   /* a crash now */
    copy_file(wal, copy_wal);
    assert_int_equal(count_rows(copy, NULL), 4000);
    sqlite3_close(a);
    sqlite3_close(b);
}

static void test_connections_leasing_at_once_never_share_an_instance(void **state)
{
    (void)state;
    const char *dir = test_tmpdir("sqlite-race");
    char path[1200];
    snprintf(path, sizeof path, "%s/store.db", dir);
    dt_store *stores[3];
    dt_error err;
    for (int i = 0; i < 3; i++)
        assert_ok(dt_store_open_sqlite(path, DT_SYNC_OFF, &stores[i], &err), &err);
    for (int i = 0; i < SH_INSTANCES; i++) {
        char id[16];
        snprintf(id, sizeof id, "s%d", i);
        dt_new_instance ni = {.instance_id = id, .execution_id = "e", .name = "o",
                              .created_at = T0};
        assert_ok(dt_store_create_instance(stores[i % 3], &ni, &err), &err);
    }
    int seen[SH_INSTANCES] = {0};
    pthread_mutex_t mu;
    pthread_mutex_init(&mu, NULL);
    shared_run runs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        runs[i] = (shared_run){.store = stores[i], .seen = seen, .mu = &mu};
        snprintf(runs[i].owner, sizeof runs[i].owner, "c%d", i);
        assert_int_equal(pthread_create(&th[i], NULL, shared_lease_loop, &runs[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(runs[i].errors, 0);
        dt_store_close(stores[i]);
    }
    pthread_mutex_destroy(&mu);
    for (int i = 0; i < SH_INSTANCES; i++)
        assert_int_equal(seen[i], 1);
}

/* ---- a size limit ---------------------------------------------------------------------- */

#define FILL_MAX 64

static dt_event limit_event(dt_event_type t)
{
    dt_event e;
    dt_event_init(&e, t, T0);
    return e;
}

/* first_episode: ITEM's first episode into C (APP, ACT: its storage): its start, and an
 * activity given its 20 KB input, Running: it grows the database by two inputs. With ENDS,
 * its start and a termination instead, Terminated. */
static void first_episode(dt_orch_item *item, bool ends, dt_event app[3], dt_new_activity *act,
                          dt_commit *c)
{
    app[0] = limit_event(DT_EVENT_ORCHESTRATOR_STARTED);
    app[1] = item->incoming[0];
    app[2] = limit_event(ends ? DT_EVENT_EXECUTION_TERMINATED : DT_EVENT_TASK_SCHEDULED);
    app[2].event_id = ends ? -1 : 0;
    app[2].name = ends ? NULL : "act";
    app[2].input = ends ? "\"full\"" : item->incoming[0].input;
    *act = (dt_new_activity){.instance_id = item->instance_id,
                             .execution_id = item->state.execution_id, .scheduled = &app[2]};
    memset(c, 0, sizeof *c);
    c->kind = DT_COMMIT_EPISODE;
    c->result = DT_ERR_INTERNAL;   /* the store must set it */
    dt_episode *ep = &c->u.episode;
    ep->item = item;
    ep->append = app;
    ep->n_append = 3;
    ep->status = ends ? DT_STATUS_TERMINATED : DT_STATUS_RUNNING;
    ep->name = item->incoming[0].name;
    ep->input = item->incoming[0].input;
    ep->activities = ends ? NULL : act;
    ep->n_activities = ends ? 0 : 1;
    ep->completed_at = ends ? T0 : 0;
}

/* At its size limit a batch is not refused whole: an episode with no room is refused alone
 * (DT_ERR_NO_SPACE, nothing of it written, its lease kept) and the others go in; from
 * nineteen twentieths on, only episodes that end their instance go in, so every instance
 * there can still be ended (a terminate of an instance whose start never ran writes its
 * 20 KB input into history, on the room its start message frees). */
static void test_at_the_size_limit_an_episode_without_room_is_refused_alone(void **state)
{
    (void)state;
    dt_store *s = NULL;
    dt_error err;
    dt_arena *a = dt_arena_new();
    assert_non_null(a);
    assert_ok(open_sqlite(test_tmpdir("sqlite-limit"), &s, &err), &err);
    assert_ok(dt_store_sqlite_limit_size(s, 1 << 20, &err), &err);
    static char input[20003];
    memset(input, 'z', sizeof input - 1);
    input[0] = input[sizeof input - 2] = '"';
    char ids[FILL_MAX][16];
    size_t n = 0;
    while (dt_store_room(s, &err) == DT_OK) {   /* starts until nine tenths are in use */
        assert_true(n < FILL_MAX);
        snprintf(ids[n], sizeof ids[n], "i%zu", n);
        /* a start as the hub makes it, a commit (after which the store looks at its size) */
        dt_commit c = {.kind = DT_COMMIT_START,
                       .u.start = {.instance_id = ids[n], .execution_id = "e1", .name = "orch",
                                   .input = input, .created_at = T0}};
        assert_ok(dt_store_commit(s, &c, 1, &err), &err);
        assert_int_equal(c.result, DT_OK);
        n++;
    }
    assert_int_equal(err.code, DT_ERR_NO_SPACE);
    dt_orch_item *items[FILL_MAX];
    size_t got = 0;
    assert_ok(dt_store_lease_orchestrations(s, "w", T0, 60 * INT64_C(1000000), n, NULL, items,
                                            &got, &err),
              &err);
    assert_int_equal(got, n);

    /* every first episode in one batch: some go in, the rest are refused alone */
    static dt_event app[FILL_MAX][3];
    static dt_new_activity act[FILL_MAX];
    static dt_commit batch[FILL_MAX];
    for (size_t i = 0; i < n; i++)
        first_episode(items[i], false, app[i], &act[i], &batch[i]);
    assert_ok(dt_store_commit(s, batch, n, &err), &err);
    dt_orch_item *refused[FILL_MAX];
    size_t went = 0, n_refused = 0;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].result == DT_OK) {
            went++;
            continue;
        }
        assert_int_equal(batch[i].result, DT_ERR_NO_SPACE);
        refused[n_refused++] = items[i];
        dt_instance_state *st = NULL;
        assert_ok(dt_store_get_instance(s, items[i]->instance_id, a, &st, &err), &err);
        assert_int_equal(st->status, DT_STATUS_PENDING);   /* nothing of it written */
    }
    assert_true(went > 0);
    assert_true(n_refused >= 3);

    /* the refused still hold their leases: one goes on and is refused again (nineteen
     * twentieths are in use), the others end and go in, in the same batch */
    for (size_t i = 0; i < n_refused; i++)
        first_episode(refused[i], i > 0, app[i], &act[i], &batch[i]);
    /* leasing what it made ready too, as the hub's commits do (leases rewrite rows, which
     * takes room for a while: short of it, the batch goes in without them) */
    dt_orch_item *leased_o[8];
    dt_activity_item *leased_a[8];
    dt_commit_lease lease = {.owner = "w", .now = T0, .lease_us = 60 * INT64_C(1000000),
                             .max_orchestrations = 8, .max_activities = 8,
                             .orchestrations = leased_o, .activities = leased_a};
    assert_ok(dt_store_commit_lease(s, batch, n_refused, &lease, &err), &err);
    for (size_t i = 0; i < lease.n_orchestrations; i++)
        dt_orch_item_free(leased_o[i]);
    for (size_t i = 0; i < lease.n_activities; i++)
        dt_activity_item_free(leased_a[i]);
    assert_int_equal(batch[0].result, DT_ERR_NO_SPACE);
    for (size_t i = 1; i < n_refused; i++)
        assert_int_equal(batch[i].result, DT_OK);
    first_episode(refused[0], true, app[0], &act[0], &batch[0]);
    assert_ok(dt_store_commit(s, batch, 1, &err), &err);
    assert_int_equal(batch[0].result, DT_OK);

    for (size_t i = 0; i < n_refused; i++) {
        dt_instance_state *st = NULL;
        assert_ok(dt_store_get_instance(s, refused[i]->instance_id, a, &st, &err), &err);
        assert_int_equal(st->status, DT_STATUS_TERMINATED);
        dt_event *h = NULL;
        size_t n_h = 0;
        assert_ok(dt_store_get_history(s, refused[i]->instance_id, a, &h, &n_h, &err), &err);
        assert_int_equal(n_h, 3);
        assert_int_equal(h[1].type, DT_EVENT_EXECUTION_STARTED);
        assert_string_equal(h[1].input, input);
    }
    for (size_t i = 0; i < n; i++)
        dt_orch_item_free(items[i]);
    dt_arena_free(a);
    dt_store_close(s);
}

int main(void)
{
    /* DT_SYNC_FULL: deferred commits leave their fsync to dt_store_sync */
    int failed = store_contract_run("sqlite", open_sqlite);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_parent_directories_are_created),
        cmocka_unit_test(test_unwritable_path_is_an_io_error_naming_it),
        cmocka_unit_test(test_garbage_file_is_corrupt_and_left_unchanged),
        cmocka_unit_test(test_foreign_database_with_our_table_names_is_corrupt),
        cmocka_unit_test(test_newer_schema_version_is_refused),
        cmocka_unit_test(test_a_version_5_file_is_migrated_with_entity_tables),
        cmocka_unit_test(test_a_version_6_file_is_migrated_with_names_on_queued_work),
        cmocka_unit_test(test_older_schema_version_is_refused_naming_it),
        cmocka_unit_test(test_a_version_4_file_is_migrated_keeping_its_instances),
        cmocka_unit_test(test_plain_empty_database_is_initialised),
        cmocka_unit_test(test_postgres_url_is_refused_not_made_a_file),
        cmocka_unit_test(test_journal_mode_is_wal_with_our_schema_version),
        cmocka_unit_test(test_two_connections_share_leases),
        cmocka_unit_test(test_database_failure_rolls_back_the_whole_batch),
        cmocka_unit_test(test_writer_in_another_connection_is_waited_for),
        cmocka_unit_test(test_a_history_is_read_beside_a_commit_that_waits),
        cmocka_unit_test(test_connections_leasing_at_once_never_share_an_instance),
        cmocka_unit_test(test_only_full_sync_gives_deferred_commits_a_ticket),
        cmocka_unit_test(test_a_transaction_that_spills_survives_a_crash),
        cmocka_unit_test(test_a_commit_larger_than_one_write_survives_a_crash),
        cmocka_unit_test(test_frames_of_a_rolled_back_transaction_are_never_written),
        cmocka_unit_test(test_at_the_size_limit_an_episode_without_room_is_refused_alone),
    };
    failed += cmocka_run_group_tests_name("sqlite store", tests, NULL, NULL);
    return failed ? 1 : 0;
}
