/* sqlite_internal.h — what the SQLite backend's files share: the store handle with its three
 * connections (the writer, with a cache of prepared statements, a reader for single-instance
 * reads, and a history reader for history windows and queries), the SQL of every statement, and small helpers for binding, reading
 * columns, transactions and error mapping. Not a public header.
 *
 * Files: sqlite.c (open, schema, helpers, close), sqlite_instance.c (create, send, get, load
 * history), sqlite_lease.c (lease, renew, abandon), sqlite_commit.c (group commit),
 * sqlite_query.c (query, purge, queue depths), sqlite_entity.c (entities). */
#ifndef DT_STORE_SQLITE_INTERNAL_H
#define DT_STORE_SQLITE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "durabletask/codec.h"
#include "durabletask/store.h"
#include "store_internal.h"

/* Every statement the backend runs, prepared once at open and reused. */
typedef enum store_stmt_id {
    ST_BEGIN_IMMEDIATE,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    /* instances */
    ST_INSTANCE_STATUS,
    ST_INSTANCE_GET,
    ST_INSTANCE_INSERT,
    ST_INSTANCE_DELETE,
    ST_INSTANCE_LEASE,
    ST_INSTANCE_LEASE_READY,
    ST_INSTANCE_LEASED,
    ST_INSTANCE_RENEW,
    ST_INSTANCE_ABANDON,
    ST_INSTANCE_EPISODE_UPDATE,
    ST_INSTANCE_CLAIM,
    ST_INSTANCE_REOPEN,
    /* history */
    ST_HISTORY_LOAD,
    ST_HISTORY_SIZES,
    ST_HISTORY_INSERT,
    ST_HISTORY_DELETE,
    /* inbox */
    ST_INBOX_INSERT,
    ST_INBOX_RENAME,
    ST_INBOX_LOAD_VISIBLE,
    ST_INBOX_ANY_VISIBLE,
    ST_INBOX_DELETE_ONE,
    ST_INBOX_DELETE_ALL,
    ST_ORCH_CANDIDATES,
    ST_ORCH_NAMED,
    ST_ORCH_TERMINATES,
    /* entities */
    ST_ENTITY_UPSERT,
    ST_ENTITY_INBOX_INSERT,
    ST_ENTITY_CANDIDATES,
    ST_ENTITY_NAMED,
    ST_ENTITY_LEASE,
    ST_ENTITY_INBOX_LOAD,
    ST_ENTITY_RENEW,
    ST_ENTITY_ABANDON,
    ST_ENTITY_STEP,
    ST_ENTITY_INBOX_DELETE_ONE,
    ST_ENTITY_UNLOCK,
    ST_ENTITY_RELEASE_ALL,
    ST_ENTITY_GET,
    ST_ENTITY_QUERY,
    ST_ENTITY_CLEAN_EMPTY,
    ST_ENTITY_DROP_EMPTY,
    ST_ENTITY_CLEAN_ORPHANED,
    /* activities */
    ST_ACTIVITY_INSERT,
    ST_ACTIVITY_CANDIDATES,
    ST_ACTIVITY_NAMED,
    ST_ACTIVITY_LEASE,
    ST_ACTIVITY_LEASED,
    ST_ACTIVITY_RENEW,
    ST_ACTIVITY_ABANDON,
    ST_ACTIVITY_DELETE_ONE,
    ST_ACTIVITY_DELETE_ALL,
    /* queries and purges over a filter (see STORE_FILTER_WHERE) */
    ST_QUERY_FULL,
    ST_QUERY_BRIEF,
    ST_QUERY_FULL_NEWEST,
    ST_QUERY_BRIEF_NEWEST,
    ST_PURGE_HISTORY,
    ST_PURGE_INBOX,
    ST_PURGE_ACTIVITIES,
    ST_PURGE_INSTANCES,
    ST_DEPTH_ORCH,
    ST_DEPTH_ACT,
    ST_COUNT_BY_STATUS,
    ST_COUNT
} store_stmt_id;

/* The filter of queries and purges (dt_query), all bound, never spliced:
 *   ?1 a bit mask of the statuses wanted (bit N: status N);
 *   ?2, ?3 the created_at range, inclusive (INT64_MIN / INT64_MAX when open);
 *   ?4 the exact name or NULL;
 *   ?5, ?6 an instance id range [?5, ?6): the id prefix P as [P, P with its last byte
 *          incremented), so no character of P is a wildcard. Open ends are '' (no text sorts
 *          below it) and an empty blob (every text sorts below any blob in SQLite), so the
 *          range is always there and always a seek on the primary key;
 *   ?7 an id to skip (the continuation token, the last id of the previous page) or NULL;
 *   ?9, ?10 the completed_at range, inclusive, NULL when open (a bound matches only finished
 *          instances: completed_at is 0 until then); ?11 the exact version or NULL ('' matches
 *          rows without one).
 *   ?8 is left for a query's LIMIT. */
#define STORE_FILTER_WHERE                                                                  \
    " WHERE ((?1 >> status) & 1) = 1 AND created_at >= ?2 AND created_at <= ?3"             \
    " AND (?4 IS NULL OR name = ?4) AND instance_id >= ?5 AND instance_id < ?6"             \
    " AND instance_id IS NOT ?7"                                                              \
    " AND (?9 IS NULL OR completed_at >= ?9) AND (?10 IS NULL OR completed_at <= ?10)"      \
    " AND (?9 IS NULL AND ?10 IS NULL OR completed_at <> 0)"                                \
    " AND (?11 IS NULL OR COALESCE(version, '') = ?11)"                                    \
    " AND (?12 IS NULL OR created_at < ?12 OR (created_at = ?12 AND instance_id < ?13))"

/* The columns of an instance row as store_read_instance reads them, in this order. */
#define STORE_INSTANCE_COLUMNS                                                              \
    "instance_id, execution_id, name, version, status, input, output, custom_status, "      \
    "failure, created_at, last_updated_at, completed_at, scheduled_start, "                 \
    "parent_instance_id, tags, span_id, span_start"

typedef struct sqlite_store {
    dt_store base;
    char *path;                         /* as given to open; named in error messages */
    /* mu guards db and stmts. One writer connection serves all threads of this process for
     * everything but single-instance reads, history windows and queries (the reader and the
     * history reader below): SQLite writes one transaction
     * at a time per file anyway, and several processes sharing the file coordinate through
     * SQLite's own file locks (busy_timeout) and our leases. */
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    _Atomic uint64_t search_steps;      /* dt_store_search_steps: added under mu, read anywhere */
    bool full_sync;                     /* opened with DT_SYNC_FULL */
    /* dt_store_sqlite_limit_size's limit (0: none), in bytes and pages; near_full: the pages
     * in use (not free) reached nine tenths of it when last looked (after a commit) */
    _Atomic uint64_t max_bytes;
    uint64_t max_pages;
    atomic_bool near_full;
    bool relaxed;                       /* synchronous is NORMAL for a lease just now */
    /* deferred commits (dt_store_commit_deferred): commit_seq counts them (under mu), from
     * before each can be seen; written_seq is the last whose log frames are written (after
     * its COMMIT). A sync fsyncs the WAL file through its own descriptor, outside mu, and
     * records how far it got: up to written_seq as read before the fsync, never commit_seq,
     * which may count a commit still writing its frames. A failed fsync is for ever
     * (SYNC_FAILED): the kernel may have dropped the pages it could not write, so no later
     * fsync can vouch for them. sync_mu guards wal_fd, synced and sync_failed. */
    _Atomic uint64_t commit_seq;
    _Atomic uint64_t written_seq;
    pthread_mutex_t sync_mu;
    char *wal_path;
    int wal_fd;
    uint64_t synced;
    bool sync_failed;
    /* the reader: a second connection for single-instance reads, beside the writer (NULL if
     * it could not be opened); reader_mu guards it */
    sqlite3 *reader;
    sqlite3_stmt *reader_get;
    pthread_mutex_t reader_mu;
    /* the history reader: a third connection for history windows (dt_store_read_history)
     * and queries, so that a reader of a long history, or a query that scans, neither waits
     * for the writer's group commits nor holds them up, nor the single-instance reads (NULL
     * if it could not be opened: the writer reads them then). hist_stmts holds the statements of HIST_STMTS, prepared on
     * it, by id. hist_mu guards them. */
    sqlite3 *hist;
    sqlite3_stmt *hist_stmts[ST_COUNT];
    pthread_mutex_t hist_mu;
} sqlite_store;

/* store_stmt: statement ID, reset with its bindings cleared, ready to bind and step. */
sqlite3_stmt *store_stmt(sqlite_store *s, store_stmt_id id);

/* store_stmt_of: statement ID of STMTS (the writer's, or the history reader's), reset with
 * its bindings cleared. */
sqlite3_stmt *store_stmt_of(sqlite3_stmt *const *stmts, store_stmt_id id);

/* store_sqlite_look_at_size: refresh near_full from the pages in use (mu held; nothing without a
 * size limit) */
void store_sqlite_look_at_size(sqlite_store *s);

/* store_sqlite_room_to_go_on: DT_ERR_NO_SPACE (naming instance ID) once nineteen twentieths
 * of the size limit are in use (mu held; DT_OK without a limit): from there on an episode
 * goes in only if it ends its instance. The last twentieth is for terminates, leases and
 * purges, whose rewritten rows need room for a while. */
dt_status store_sqlite_room_to_go_on(sqlite_store *s, const char *id, dt_error *err);

/* store_db_error: store_sql_error for a statement of connection DB (its message is DB's). */
dt_status store_db_error(sqlite_store *s, sqlite3 *db, int rc, dt_error *err, const char *what);

/* store_sql_error: map sqlite result RC to a dt_status (FULL/IOERR/CANTOPEN/READONLY/PERM/
 * AUTH/PROTOCOL: DT_ERR_IO; CORRUPT/NOTADB/FORMAT: DT_ERR_CORRUPT; BUSY/LOCKED: DT_ERR_TIMEOUT; NOMEM: DT_ERR_NOMEM;
 * TOOBIG: DT_ERR_INVALID_ARG; anything else DT_ERR_INTERNAL) and record WHAT, sqlite's message
 * and the database path in ERR. Returns the status. */
dt_status store_sql_error(sqlite_store *s, int rc, dt_error *err, const char *what);

/* Sticky binders: each does nothing once *RC is not SQLITE_OK, so a run of binds is checked
 * once. NULL strings bind SQL NULL. */
void store_bind_text(sqlite3_stmt *st, int i, const char *v, int *rc);
void store_bind_int64(sqlite3_stmt *st, int i, int64_t v, int *rc);
void store_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n, int *rc);

/* store_col_text: column COL as a string in ARENA, NULL for SQL NULL. On allocation failure
 * sets *ST to DT_ERR_NOMEM (sticky, like the binders) and returns NULL. */
const char *store_col_text(dt_arena *arena, sqlite3_stmt *stmt, int col, dt_status *st);

/* store_step_done: step STMT, expecting no rows; resets it. WHAT names it for errors. */
dt_status store_step_done(sqlite_store *s, sqlite3_stmt *stmt, dt_error *err,
                          const char *what);

/* store_exec: run the parameterless statement ID to completion. */
dt_status store_exec(sqlite_store *s, store_stmt_id id, dt_error *err, const char *what);

/* Transactions. store_rollback is for error paths: it never fails visibly (a failed rollback
 * means SQLite already rolled back), and leaves the connection in autocommit mode. */
dt_status store_begin_write(sqlite_store *s, dt_error *err);

/* store_begin_lease: a write transaction for lease bookkeeping only (lease, renew, abandon).
 * With DT_SYNC_FULL it commits without its own fsync: a lease lost to a power cut is harmless
 * (the work is redelivered, and a late commit is refused by its token), and the next durable
 * commit, which store_begin_write puts back to FULL, fsyncs the log up to and including it. */
dt_status store_begin_lease(sqlite_store *s, dt_error *err);
dt_status store_begin_read(sqlite_store *s, dt_error *err);
dt_status store_commit_tx(sqlite_store *s, dt_error *err);
void store_rollback(sqlite_store *s);

/* store_decode_column: decode the event blob in column COL into *OUT (strings in ARENA). WHAT
 * names the row for errors. */
dt_status store_decode_column(sqlite3_stmt *stmt, int col, dt_arena *arena, dt_event *out,
                              dt_error *err, const char *what);

/* store_read_instance: the current row of STMT (columns STORE_INSTANCE_COLUMNS starting at 0)
 * into STATE, strings in ARENA. */
dt_status store_read_instance(sqlite3_stmt *stmt, dt_arena *arena, dt_instance_state *state,
                              dt_error *err);

/* store_create_instance_tx: create NI inside the caller's write transaction, following the
 * reuse policy (see dt_new_instance). DT_ERR_ALREADY_EXISTS changes nothing. */
dt_status store_create_instance_tx(sqlite_store *s, const dt_new_instance *ni, dt_error *err);

/* store_insert_message_tx: append M to its instance's inbox (target DEFAULT_ID when
 * m->instance_id is NULL) inside the caller's write transaction. *DELIVERED says whether the
 * instance existed; a message to a missing instance is not stored. */
dt_status store_insert_message_tx(sqlite_store *s, const dt_message *m, const char *default_id,
                                  bool *delivered, dt_error *err);

/* store_lease_ready_tx: for dt_store_commit_lease, inside the commit's transaction: lease the
 * activity rows RD noted (just inserted) and those of the instances it noted that have
 * visible messages and no live lease, up to LEASE's limits, filling its arrays. On error the
 * caller rolls the leases back and frees what was filled. */
dt_status store_lease_ready_tx(sqlite_store *s, const store_ready *rd, dt_commit_lease *lease,
                               dt_error *err);

/* store_delete_instance_tx: delete the row of ID and everything hanging off it (history,
 * inbox, activities) inside the caller's write transaction. */
dt_status store_delete_instance_tx(sqlite_store *s, const char *id, dt_error *err);


/* store_token_update: run statement ID (?1 TEXT_KEY, or INT_KEY when TEXT_KEY is NULL; ?2
 * TOKEN; ?3 UNTIL when HAS_UNTIL) in its own lease transaction; DT_ERR_LEASE_LOST when no row
 * matched the token. WHAT names the operation. (sqlite_lease.c) */
dt_status store_token_update(sqlite_store *s, store_stmt_id id, const char *text_key,
                             int64_t int_key, const char *token, bool has_until, dt_time until,
                             dt_error *err, const char *what);

/* Finding work to lease (sqlite_candidates.c). A taker of any name reads the kind's
 * candidates statement along its visible-time index; a filtered taker looks up each of its
 * names (and versions) through the kind's name index and merges what they found, so the work
 * of names it does not take is never read. */
typedef enum { STORE_WORK_ORCH, STORE_WORK_ACTIVITY, STORE_WORK_ENTITY } store_work_kind;

/* store_find_work: up to MAX candidates of KIND for a taker of NAMES (NULL: any) at NOW, the
 * longest visible first, each once, into *OUT (store_internal.h's candidates, AT 0 for a
 * taker of any name, whose statement orders; store_cands_free frees them; on error there
 * are none). Run it inside the lease transaction: the rows are not checked again. */
dt_status store_find_work(sqlite_store *s, store_work_kind kind, dt_time now,
                          const dt_name_filter *names, size_t max, store_cands *out,
                          dt_error *err);

/* store_any_work: is there any work of KIND for NAMES at NOW? Read only, outside a write
 * transaction: an idle worker asks often, and a no should not cost a write lock. It first
 * asks whether anything at all is visible (one index step), so a filtered taker costs its
 * names' look-ups only when there is work about. On error it says yes: the lease then
 * reports the error. */
bool store_any_work(sqlite_store *s, store_work_kind kind, dt_time now,
                    const dt_name_filter *names);

/* store_sqlite_search_steps: the virtual machine steps of every search so far (the
 * dt_store_search_steps of this backend). */
uint64_t store_sqlite_search_steps(dt_store *base);


/* Entities inside the caller's write transaction (sqlite_entity.c): a message stored (the row
 * created if missing), a step applied (DT_ERR_LEASE_LOST if the lease is gone), an episode's
 * unlocks and lock release. */
dt_status store_entity_message_tx(sqlite_store *s, const dt_entity_message *m, dt_error *err);
dt_status store_entity_step_tx(sqlite_store *s, const dt_entity_step *step, dt_error *err);
dt_status store_entity_unlock_tx(sqlite_store *s, const char *holder,
                                 const dt_entity_unlock *u, dt_error *err);
dt_status store_entity_release_tx(sqlite_store *s, const char *holder, dt_error *err);

/* The ops entries implemented in the other files. */
dt_status store_sqlite_create_instance(dt_store *s, const dt_new_instance *ni, dt_error *err);
dt_status store_sqlite_send_message(dt_store *s, const dt_message *m, dt_error *err);
dt_status store_sqlite_get_instance(dt_store *s, const char *id, dt_arena *arena,
                                    dt_instance_state **out, dt_error *err);
dt_status store_sqlite_read_history(dt_store *s, const char *id, size_t from_seq,
                                    size_t max_bytes, dt_arena *arena, dt_history_window *out,
                                    dt_error *err);
dt_status store_sqlite_count_by_status(dt_store *s, size_t counts[DT_STATUS_COUNT],
                                       dt_error *err);
dt_status store_sqlite_queue_depths(dt_store *s, dt_time now, size_t *orchestrations,
                                    size_t *activities, dt_error *err);
dt_status store_sqlite_lease_orchestrations(dt_store *s, const char *owner, dt_time now,
                                            int64_t lease_us, size_t max,
                                            const dt_name_filter *names, dt_orch_item **out,
                                            size_t *n_out, dt_error *err);
dt_status store_sqlite_lease_activities(dt_store *s, const char *owner, dt_time now,
                                        int64_t lease_us, size_t max,
                                        const dt_name_filter *names, dt_activity_item **out,
                                        size_t *n_out, dt_error *err);
dt_status store_sqlite_renew_orchestration(dt_store *s, const dt_orch_item *item, dt_time until,
                                           dt_error *err);
dt_status store_sqlite_renew_activity(dt_store *s, const dt_activity_item *item, dt_time until,
                                      dt_error *err);
dt_status store_sqlite_abandon_orchestration(dt_store *s, const dt_orch_item *item,
                                             dt_time retry_at, dt_error *err);
dt_status store_sqlite_abandon_activity(dt_store *s, const dt_activity_item *item,
                                        dt_time retry_at, dt_error *err);
dt_status store_sqlite_commit(dt_store *s, dt_commit *batch, size_t n, dt_commit_lease *lease,
                              uint64_t *ticket, dt_error *err);
dt_status store_sqlite_sync(dt_store *s, uint64_t ticket, dt_error *err);

/* store_sqlite_vfs: the name of the store's VFS (sqlite_vfs.c), registered at the first call;
 * NULL (the default VFS) if it could not be. */
const char *store_sqlite_vfs(void);

/* store_sqlite_vfs_flush: write out what DB's WAL file holds back, if anything (at the end of
 * every write transaction; a no-op but for an unusual order of SQLite's writes). False if
 * that write failed. */
bool store_sqlite_vfs_flush(sqlite3 *db);
uint64_t store_sqlite_last_ticket(dt_store *s);
dt_status store_sqlite_query_instances(dt_store *s, const dt_query *q, dt_arena *arena,
                                       dt_instance_state **out, size_t *n_out,
                                       const char **next, dt_error *err);
dt_status store_sqlite_purge_instance(dt_store *s, const char *id, dt_error *err);
dt_status store_sqlite_purge_instances(dt_store *s, const dt_query *filter, size_t *n_purged,
                                       dt_error *err);
dt_status store_sqlite_send_entity_message(dt_store *s, const dt_entity_message *m,
                                           dt_error *err);
dt_status store_sqlite_lease_entities(dt_store *s, const char *owner, dt_time now,
                                      int64_t lease_us, size_t max, const dt_name_filter *names,
                                      dt_entity_item **out, size_t *n_out, dt_error *err);
dt_status store_sqlite_renew_entity(dt_store *s, const dt_entity_item *item, dt_time until,
                                    dt_error *err);
dt_status store_sqlite_abandon_entity(dt_store *s, const dt_entity_item *item,
                                      dt_time retry_at, dt_error *err);
dt_status store_sqlite_get_entity(dt_store *s, const char *id, bool with_state,
                                  dt_arena *arena, dt_entity_state **out, dt_error *err);
dt_status store_sqlite_query_entities(dt_store *s, const dt_entity_query *q, dt_arena *arena,
                                      dt_entity_state **out, size_t *n_out, const char **next,
                                      dt_error *err);
dt_status store_sqlite_clean_entities(dt_store *s, bool remove_empty, bool release_orphaned,
                                      dt_time now, size_t *removed, size_t *released,
                                      dt_error *err);

#endif
