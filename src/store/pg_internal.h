/* pg_internal.h — what the PostgreSQL backend's files share: the store handle (a libpq
 * connection guarded by a mutex, as the SQLite writer is, and a reader of its own for reads of
 * one instance, as SQLite has), the schema it lives in, and small helpers for parameters,
 * running statements, transactions, reading result columns and mapping PostgreSQL's errors to
 * ours. Not a public header.
 *
 * Results are read in binary: integers as big-endian bytes, text and bytea as they are.
 * Parameters go as text (numbers formatted here) or, for event blobs, binary bytea. Every
 * identifier and name column uses the "C" collation, so ranges compare bytes as SQLite's
 * BINARY does (id prefixes, paging tokens), whatever the database's own locale.
 *
 * Each operation takes mu for its whole run and its own transaction (pg_begin ... pg_commit,
 * pg_rollback on any error); a *_tx function runs inside the caller's. A read of one
 * instance's row or history is one statement on the reader instead (pg_read). Leases take
 * rows with SELECT ... FOR UPDATE SKIP LOCKED, so nodes sharing the database never wait on
 * each other's candidates and one row goes to one of them.
 *
 * Files: pg.c (open, schema and migrations, helpers, close, the ops table), pg_instance.c
 * (create, send, get, history), pg_lease.c (lease, renew, abandon), pg_commit.c (group
 * commit), pg_query.c (query, purge, queue depths), pg_entity.c (entities). */
#ifndef DT_STORE_PG_INTERNAL_H
#define DT_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "durabletask/store.h"
#include "store_internal.h"

#define PG_SCHEMA_VERSION 3   /* the schema this build makes and knows (table dtask_meta) */
#define PG_PARAMS_MAX 32
#define PG_PREPARED_MAX 128   /* statements prepared per connection; more run unprepared */
#define PG_DEFERRED_MAX 8     /* commands held for the next statement's round trip */

/* A statement prepared on the store's connection as "dt<index>": its text (a copy, so a
 * statement built at run time can never be mistaken for another at the same address). */
typedef struct pg_prepared {
    uint64_t hash;
    char *sql;
} pg_prepared;

typedef struct pg_store {
    dt_store base;
    char *url;                 /* as given, for reconnecting; never logged (it may hold a password) */
    char *where;               /* "host:port/dbname, schema S": what errors name */
    char schema[64];           /* the PostgreSQL schema holding the tables (a task hub each) */
    pthread_mutex_t mu;        /* guards conn and in_tx */
    PGconn *conn;
    bool in_tx;                /* between pg_begin and pg_commit/pg_rollback */
    /* the statements prepared on conn (guarded by mu): parsed and planned once per
     * connection, forgotten when it is reset, since the server forgot them with it */
    pg_prepared prepared[PG_PREPARED_MAX];
    int n_prepared;
    /* commands without parameters or rows (BEGIN, SAVEPOINT, RELEASE) not sent yet: they go
     * with the next statement, in one pipeline, one round trip for all (guarded by mu) */
    const char *deferred[PG_DEFERRED_MAX];
    const char *deferred_what[PG_DEFERRED_MAX];
    int n_deferred;
    _Atomic uint64_t search_steps;
    /* deferred commits numbered (dt_store_commit_deferred): a commit is durable when COMMIT
     * returns, but a read (another connection, a NOTIFY's waiter) can see it before the hub
     * has told anyone of its outcome, so the hub's read barrier waits for its ticket */
    _Atomic uint64_t commit_seq;
    /* reads of one instance (its row, its history: what waits, clients and a lease's work
     * item ask for) go on a connection of their own, so that they do not wait behind a
     * commit's transaction on this one; NULL on the reader itself */
    struct pg_store *reader;
    /* the listener (pg_watch.c) */
    bool watching;
    pthread_t watch_thread;
    atomic_bool watch_stop;
    dt_store_changed_fn watch_fn;
    void *watch_arg;
} pg_store;

/* A statement's parameters: text (NULL is SQL NULL) or binary bytea. */
typedef struct pg_params {
    int n;
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];   /* the text of numeric parameters */
} pg_params;

#define PG_PARAMS_INIT {0}
void pg_text(pg_params *p, const char *v);
void pg_int(pg_params *p, int64_t v);
void pg_bool(pg_params *p, bool v);
void pg_blob(pg_params *p, const uint8_t *v, size_t len);   /* NULL V: SQL NULL */

/* pg_run: run SQL (with $1.. bound from P, NULL for none) on S's connection (mu held). With
 * OUT, *OUT is the result (the caller PQclears it; NULL on error); without, it is cleared.
 * SQL with parameters or rows is prepared on the connection the first time it runs and
 * executed by name after that; SQL of neither (BEGIN, SAVEPOINT, SET) goes as a simple query.
 * Errors: DT_ERR_NO_SPACE (disk full), DT_ERR_ALREADY_EXISTS (a unique key), DT_ERR_IO (the
 * connection, or anything else), each naming WHAT and PostgreSQL's message. A broken
 * connection is reset before the next statement. */
dt_status pg_run(pg_store *s, const char *sql, const pg_params *p, PGresult **out,
                 dt_error *err, const char *what);

/* pg_run_id: pg_run of SQL whose only parameter ($1) is ID, no rows wanted. */
dt_status pg_run_id(pg_store *s, const char *sql, const char *id, dt_error *err,
                    const char *what);

/* pg_read: pg_run for a read of one instance, one statement outside any transaction, on S's
 * reader connection (its own lock: it never waits behind a commit's transaction); run once
 * more when that connection broke since its last statement. S->mu must not be held. */
dt_status pg_read(pg_store *s, const char *sql, const pg_params *p, PGresult **out,
                  dt_error *err, const char *what);

/* pg_run_later: run SQL, a command of no parameters and no rows (a string that lives as long
 * as the store: a literal), together with the next statement pg_run sends, in one round trip;
 * its failure is reported as that statement's, named WHAT. */
dt_status pg_run_later(pg_store *s, const char *sql, dt_error *err, const char *what);

/* Transactions (mu held). pg_begin's BEGIN goes with the transaction's first statement
 * (pg_run_later). pg_rollback is for error paths and never fails visibly. */
dt_status pg_begin(pg_store *s, dt_error *err);
dt_status pg_commit(pg_store *s, dt_error *err);
void pg_rollback(pg_store *s);

/* Result columns (binary format). pg_col_text: a copy in ARENA, NULL for SQL NULL (*ST set to
 * DT_ERR_NOMEM when the copy fails). pg_col_int: BIGINT, INTEGER or SMALLINT; 0 for NULL.
 * pg_col_event: the bytea column as an event (strings in ARENA); WHAT names the row. */
const char *pg_col_text(dt_arena *arena, const PGresult *r, int row, int col, dt_status *st);
int64_t pg_col_int(const PGresult *r, int row, int col);
bool pg_col_null(const PGresult *r, int row, int col);
dt_status pg_col_event(const PGresult *r, int row, int col, dt_arena *arena, dt_event *out,
                       dt_error *err, const char *what);

/* pg_int_array: the array literal "{1,2,3}" of the N values V, malloc'd into *OUT. */
dt_status pg_int_array(const int64_t *v, size_t n, char **out, dt_error *err);

/* A PostgreSQL text array literal being built, {"a","b",NULL}: pg_literal_put appends LEN
 * bytes of TEXT as they are (the braces), pg_literal_add one element (NULL: SQL NULL),
 * quoted, '"' and '\' escaped. OK turns false when out of memory, and nothing more is
 * added; S is malloc'd (the caller frees it, also then). Start from {NULL, 0, 0, true}. */
typedef struct pg_literal {
    char *s;
    size_t n, cap;
    bool ok;
} pg_literal;
void pg_literal_put(pg_literal *a, const char *text, size_t len);
void pg_literal_add(pg_literal *a, const char *v);

/* pg_utf8_prefix_end: the least well-formed string above every one that starts with PREFIX
 * (well-formed itself): PREFIX with its last character replaced by the next code point (past
 * the surrogates), a last U+10FFFF, which has no next, dropped first. UTF-8 keeps code point
 * order bytewise, so among well-formed ids this bounds exactly what store_prefix_end's bytes
 * bound; those are not always well-formed ("a\x7f" gives "a\x80"), and a UTF8 database
 * refuses such a parameter. *OUT is malloc'd; NULL when there is no bound. */
dt_status pg_utf8_prefix_end(const char *prefix, char **out, dt_error *err);

/* pg_unimplemented: the explicit error of an operation this backend does not do yet. */
dt_status pg_unimplemented(dt_error *err, const char *op);

/* pg_notify_tx: tell the nodes watching S's schema, when the caller's transaction commits,
 * whether there may be work for any of them (WORK; false: the transaction leased for its own
 * node all it made ready) and which instances' state changed: IDS, one per line ("": none;
 * NULL: not said, any may have, and WORK is taken as true; dt_store_watch). pg_watch /
 * pg_unwatch: the listener of dt_store_watch, started and stopped (pg_watch.c). */
#define PG_NOTIFY_MAX 7000   /* payload bytes; PostgreSQL takes fewer than 8000 */
dt_status pg_notify_tx(pg_store *s, const char *ids, bool work, dt_error *err);
dt_status pg_watch(dt_store *s, dt_store_changed_fn changed, void *arg,
                   dt_error *err);
void pg_unwatch(pg_store *s);

/* The columns of an instance row as pg_read_instance reads them, in this order (SQLite's). */
#define PG_INSTANCE_COLUMNS                                                                  \
    "instance_id, execution_id, name, version, status, input, output, custom_status, "      \
    "failure, created_at, last_updated_at, completed_at, scheduled_start, "                 \
    "parent_instance_id, tags, span_id, span_start"

/* pg_read_instance: row ROW of R (PG_INSTANCE_COLUMNS from column 0) into *STATE, strings in
 * ARENA. (pg_instance.c) */
dt_status pg_read_instance(const PGresult *r, int row, dt_arena *arena,
                           dt_instance_state *state, dt_error *err);

/* Instances inside the caller's transaction (pg_instance.c): create with the reuse policy
 * (DT_ERR_ALREADY_EXISTS when refused; NI's on_conflict message delivered then), a message
 * into an instance's inbox (*DELIVERED false when there is no such instance), an instance
 * and all that hangs off it deleted. */
dt_status pg_create_instance_tx(pg_store *s, const dt_new_instance *ni, dt_error *err);
dt_status pg_insert_message_tx(pg_store *s, const dt_message *m, const char *default_id,
                               bool *delivered, dt_error *err);
dt_status pg_delete_instance_tx(pg_store *s, const char *id, dt_error *err);

/* pg_activity_result_tx: an activity's result M (as pg_insert_message_tx), in the statement
 * that deletes its work item ACT under TOKEN, and only if it did (*HELD: the lease was held).
 * (pg_instance.c) */
dt_status pg_activity_result_tx(pg_store *s, const dt_message *m, const char *default_id,
                                int64_t act, const char *token, bool *held, bool *delivered,
                                dt_error *err);

/* pg_lease_ready_tx: inside a commit's transaction, lease what it made ready for L: the
 * activities ACTS it inserted and the instances IDS that may have work now (each only if it is
 * free and has a visible message). (pg_lease.c) */
dt_status pg_lease_ready_tx(pg_store *s, const char *const *ids, size_t n_ids,
                            const int64_t *acts, size_t n_acts, dt_commit_lease *L,
                            dt_error *err);

/* Entities inside the caller's transaction (pg_entity.c): a message stored (the row created
 * if missing), a step applied (DT_ERR_LEASE_LOST if the lease is gone), an episode's unlocks
 * and lock release. */
dt_status pg_entity_message_tx(pg_store *s, const dt_entity_message *m, dt_error *err);
dt_status pg_entity_step_tx(pg_store *s, const dt_entity_step *step, dt_error *err);
dt_status pg_entity_unlock_tx(pg_store *s, const char *holder, const dt_entity_unlock *u,
                              dt_error *err);
dt_status pg_entity_release_tx(pg_store *s, const char *holder, dt_error *err);

/* The ops entries of the other files (the dt_store_ops fields of the same names). */
dt_status pg_create_instance(dt_store *s, const dt_new_instance *ni, dt_error *err);
dt_status pg_send_message(dt_store *s, const dt_message *m, dt_error *err);
dt_status pg_get_instance(dt_store *s, const char *id, dt_arena *arena, dt_instance_state **out,
                          dt_error *err);
dt_status pg_read_history(dt_store *s, const char *id, size_t from_seq, size_t max_bytes,
                          dt_arena *arena, dt_history_window *out, dt_error *err);
dt_status pg_lease_orchestrations(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                                  size_t max, const dt_name_filter *names, dt_orch_item **out,
                                  size_t *n_out, dt_error *err);
dt_status pg_lease_activities(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                              size_t max, const dt_name_filter *names, dt_activity_item **out,
                              size_t *n_out, dt_error *err);
dt_status pg_renew_orchestration(dt_store *s, const dt_orch_item *item, dt_time until,
                                 dt_error *err);
dt_status pg_renew_activity(dt_store *s, const dt_activity_item *item, dt_time until,
                            dt_error *err);
dt_status pg_abandon_orchestration(dt_store *s, const dt_orch_item *item, dt_time retry_at,
                                   dt_error *err);
dt_status pg_abandon_activity(dt_store *s, const dt_activity_item *item, dt_time retry_at,
                              dt_error *err);
dt_status pg_commit_batch(dt_store *s, dt_commit *batch, size_t n, dt_commit_lease *lease,
                          uint64_t *ticket, dt_error *err);
dt_status pg_query_instances(dt_store *s, const dt_query *q, dt_arena *arena,
                             dt_instance_state **out, size_t *n_out, const char **next,
                             dt_error *err);
dt_status pg_purge_instance(dt_store *s, const char *id, dt_error *err);
dt_status pg_purge_instances(dt_store *s, const dt_query *filter, size_t *n_purged,
                             dt_error *err);
dt_status pg_count_by_status(dt_store *s, size_t counts[DT_STATUS_COUNT], dt_error *err);
dt_status pg_queue_depths(dt_store *s, dt_time now, size_t *orchestrations, size_t *activities,
                          dt_error *err);
dt_status pg_send_entity_message(dt_store *s, const dt_entity_message *m, dt_error *err);
dt_status pg_lease_entities(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                            size_t max, const dt_name_filter *names, dt_entity_item **out,
                            size_t *n_out, dt_error *err);
dt_status pg_renew_entity(dt_store *s, const dt_entity_item *item, dt_time until, dt_error *err);
dt_status pg_abandon_entity(dt_store *s, const dt_entity_item *item, dt_time retry_at,
                            dt_error *err);
dt_status pg_get_entity(dt_store *s, const char *id, bool with_state, dt_arena *arena,
                        dt_entity_state **out, dt_error *err);
dt_status pg_query_entities(dt_store *s, const dt_entity_query *q, dt_arena *arena,
                            dt_entity_state **out, size_t *n_out, const char **next,
                            dt_error *err);
dt_status pg_heartbeat(dt_store *s, const char *node, dt_time started, dt_time now,
                       dt_error *err);
dt_status pg_nodes(dt_store *s, dt_time since, dt_arena *arena, dt_node_info **out,
                   size_t *n_out, dt_error *err);
dt_status pg_next_due(dt_store *s, dt_time now, dt_time *due, dt_error *err);
dt_status pg_clean_entities(dt_store *s, bool remove_empty, bool release_orphaned, dt_time now,
                            size_t *removed, size_t *released, dt_error *err);

#endif
