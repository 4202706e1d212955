/* pg_internal.h — what the PostgreSQL backend's files share: the store handle (one libpq
 * connection, guarded by a mutex, as the SQLite writer is), the schema it lives in, and small
 * helpers for parameters, running statements, transactions, reading result columns and
 * mapping PostgreSQL's errors to ours. Not a public header.
 *
 * Results are read in binary: integers as big-endian bytes, text and bytea as they are.
 * Parameters go as text (numbers formatted here) or, for event blobs, binary bytea. Every
 * identifier and name column uses the "C" collation, so ranges compare bytes as SQLite's
 * BINARY does (id prefixes, paging tokens), whatever the database's own locale.
 *
 * Files: pg.c (open, schema and migrations, helpers, close, the ops table). */
#ifndef DT_STORE_PG_INTERNAL_H
#define DT_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "durabletask/store.h"
#include "store_internal.h"

#define PG_SCHEMA_VERSION 1   /* the schema this build makes and knows (table dtask_meta) */
#define PG_PARAMS_MAX 24

typedef struct pg_store {
    dt_store base;
    char *url;                 /* as given, for reconnecting; never logged (it may hold a password) */
    char *where;               /* "host:port/dbname, schema S": what errors name */
    char schema[64];           /* the PostgreSQL schema holding the tables (a task hub each) */
    pthread_mutex_t mu;        /* guards conn */
    PGconn *conn;
    _Atomic uint64_t search_steps;
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
 * Errors: DT_ERR_NO_SPACE (disk full), DT_ERR_ALREADY_EXISTS (a unique key), DT_ERR_IO (the
 * connection, or anything else), each naming WHAT and PostgreSQL's message. A broken
 * connection is reset before the next statement. */
dt_status pg_run(pg_store *s, const char *sql, const pg_params *p, PGresult **out,
                 dt_error *err, const char *what);

/* Transactions (mu held). pg_rollback is for error paths and never fails visibly. */
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

/* pg_unimplemented: the explicit error of an operation this backend does not do yet. */
dt_status pg_unimplemented(dt_error *err, const char *op);

#endif
