/* pg.c — the PostgreSQL backend's handle: connecting (libpq), the schema of one task hub in a
 * PostgreSQL schema of its own, made or migrated at open under an advisory lock so nodes that
 * start together migrate once, a newer schema refused; and the helpers the backend's files
 * share (pg_internal.h). The operations come in their own files as they are built; the ops
 * table names those there are, and the others answer DT_ERR_UNIMPLEMENTED (store.c). */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* Migrations, by the version they start from: [0] makes version 1 in an empty schema. The
 * tables are SQLite's schema 7 in PostgreSQL's types. */
static const char *const migrate_sql[PG_SCHEMA_VERSION] = {
    [0] =
        "CREATE TABLE instances ("
        " instance_id TEXT COLLATE \"C\" PRIMARY KEY,"
        " execution_id TEXT COLLATE \"C\","
        " name TEXT COLLATE \"C\","
        " version TEXT COLLATE \"C\","
        " status INTEGER NOT NULL,"
        " input TEXT, output TEXT, custom_status TEXT, failure BYTEA,"
        " created_at BIGINT NOT NULL,"
        " last_updated_at BIGINT NOT NULL,"
        " completed_at BIGINT NOT NULL DEFAULT 0,"
        " scheduled_start BIGINT NOT NULL DEFAULT 0,"
        " parent_instance_id TEXT COLLATE \"C\","
        " parent_execution_id TEXT COLLATE \"C\","
        " parent_name TEXT COLLATE \"C\","
        " parent_task_id INTEGER,"
        " tags TEXT,"
        " lock_owner TEXT COLLATE \"C\","
        " lock_expires BIGINT NOT NULL DEFAULT 0,"
        " span_id TEXT,"
        " span_start BIGINT NOT NULL DEFAULT 0);"
        "CREATE INDEX instances_by_created ON instances (created_at, instance_id);"
        "CREATE TABLE history ("
        " instance_id TEXT COLLATE \"C\" NOT NULL,"
        " seq BIGINT NOT NULL,"
        " event BYTEA NOT NULL,"
        " PRIMARY KEY (instance_id, seq));"
        "CREATE TABLE inbox ("
        " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " instance_id TEXT COLLATE \"C\" NOT NULL,"
        " execution_id TEXT COLLATE \"C\","
        " visible_at BIGINT NOT NULL,"
        " kind INTEGER NOT NULL DEFAULT 0,"
        " event BYTEA NOT NULL,"
        " name TEXT COLLATE \"C\");"
        "CREATE INDEX inbox_by_instance ON inbox (instance_id, id);"
        "CREATE INDEX inbox_by_visible ON inbox (visible_at);"
        "CREATE INDEX inbox_by_name ON inbox (name, visible_at);"
        "CREATE INDEX inbox_terminates ON inbox (visible_at) WHERE kind = 5;"
        "CREATE TABLE activities ("
        " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " instance_id TEXT COLLATE \"C\" NOT NULL,"
        " execution_id TEXT COLLATE \"C\","
        " task_id INTEGER NOT NULL,"
        " name TEXT COLLATE \"C\","
        " version TEXT COLLATE \"C\","
        " input TEXT,"
        " visible_at BIGINT NOT NULL,"
        " lock_owner TEXT COLLATE \"C\","
        " lock_expires BIGINT NOT NULL DEFAULT 0,"
        " delivery_count INTEGER NOT NULL DEFAULT 0,"
        " trace_parent TEXT, trace_state TEXT, tags TEXT);"
        "CREATE INDEX activities_by_visible ON activities (visible_at);"
        "CREATE INDEX activities_by_name ON activities (name, visible_at);"
        "CREATE INDEX activities_by_instance ON activities (instance_id);"
        "CREATE TABLE entities ("
        " instance_id TEXT COLLATE \"C\" PRIMARY KEY,"
        " name TEXT COLLATE \"C\" NOT NULL,"
        " state TEXT,"
        " last_modified BIGINT NOT NULL,"
        " locked_by TEXT COLLATE \"C\","
        " locked_execution TEXT COLLATE \"C\","
        " lock_section TEXT COLLATE \"C\","
        " lock_owner TEXT COLLATE \"C\","
        " lock_expires BIGINT NOT NULL DEFAULT 0);"
        "CREATE INDEX entities_by_holder ON entities (locked_by) WHERE locked_by IS NOT NULL;"
        "CREATE TABLE entity_inbox ("
        " id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " entity_id TEXT COLLATE \"C\" NOT NULL,"
        " visible_at BIGINT NOT NULL,"
        " sender TEXT COLLATE \"C\","
        " sender_execution TEXT COLLATE \"C\","
        " event BYTEA NOT NULL,"
        " name TEXT COLLATE \"C\");"
        "CREATE INDEX entity_inbox_by_entity ON entity_inbox (entity_id, id);"
        "CREATE INDEX entity_inbox_by_visible ON entity_inbox (visible_at);"
        "CREATE INDEX entity_inbox_by_name ON entity_inbox (name, visible_at);",
    /* 1 to 2: the nodes sharing the database, each heard of every few seconds */
    [1] = "CREATE TABLE nodes ("
          " node TEXT COLLATE \"C\" PRIMARY KEY,"
          " started_at BIGINT NOT NULL,"
          " seen_at BIGINT NOT NULL);",
    /* 2 to 3: the history's generation (dt_orch_item.history_gen); and work given back for
     * later (a lease held by nobody, '', until its retry time), found by its time */
    [2] = "ALTER TABLE instances ADD COLUMN history_gen BIGINT NOT NULL DEFAULT 0;"
          "CREATE INDEX instances_retry ON instances (lock_expires) WHERE lock_owner = '';"
          "CREATE INDEX activities_retry ON activities (lock_expires) WHERE lock_owner = '';"
          "CREATE INDEX entities_retry ON entities (lock_expires) WHERE lock_owner = '';",
};

/* ---- parameters, statements, results ------------------------------------------------------ */

static void param(pg_params *p, const char *v, int len, int fmt)
{
    if (p->n >= PG_PARAMS_MAX)
        abort();   /* a statement of ours with too many parameters: a bug */
    p->v[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->n++;
}

void pg_text(pg_params *p, const char *v)
{
    param(p, v, 0, 0);
}

void pg_int(pg_params *p, int64_t v)
{
    char *buf = p->num[p->n < PG_PARAMS_MAX ? p->n : 0];
    snprintf(buf, sizeof p->num[0], "%" PRId64, v);
    param(p, buf, 0, 0);
}

void pg_bool(pg_params *p, bool v)
{
    param(p, v ? "true" : "false", 0, 0);
}

void pg_blob(pg_params *p, const uint8_t *v, size_t len)
{
    param(p, (const char *)v, (int)len, 1);
}

/* classify: our status for a failed result R (NULL: no result at all). */
static dt_status classify(pg_store *s, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state && strcmp(state, "53100") == 0)
        return DT_ERR_NO_SPACE;
    if (state && strcmp(state, "23505") == 0)
        return DT_ERR_ALREADY_EXISTS;
    (void)s;
    return DT_ERR_IO;
}

static void forget_prepared(pg_store *s)
{
    for (int i = 0; i < s->n_prepared; i++)
        free(s->prepared[i].sql);
    s->n_prepared = 0;
}

/* sql_hash: FNV-1a of SQL, so a lookup compares whole texts only when the hashes match. */
static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *c = (const unsigned char *)sql; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    return h;
}

/* prepared_name: the name of SQL prepared on S's connection, preparing it if it is not yet
 * (NAME holds "dt<index>"). Returns false with *PREP_RESULT the failed result (the caller
 * reports and clears it) when the server refused it, or with *PREP_RESULT NULL and NAME ""
 * when the table is full: the statement then runs unprepared. */
static bool prepared_name(pg_store *s, const char *sql, const pg_params *p, char name[16],
                          PGresult **prep_result)
{
    *prep_result = NULL;
    name[0] = '\0';
    uint64_t h = sql_hash(sql);
    for (int i = 0; i < s->n_prepared; i++)
        if (s->prepared[i].hash == h && strcmp(s->prepared[i].sql, sql) == 0) {
            snprintf(name, 16, "dt%d", i);
            return true;
        }
    char *copy = s->n_prepared < PG_PREPARED_MAX ? strdup(sql) : NULL;
    if (copy == NULL)
        return false;
    snprintf(name, 16, "dt%d", s->n_prepared);
    /* parameter types are left to the server, as PQexecParams leaves them */
    PGresult *r = PQprepare(s->conn, name, sql, p ? p->n : 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        free(copy);
        *prep_result = r;
        return false;
    }
    PQclear(r);
    s->prepared[s->n_prepared++] = (pg_prepared){h, copy};
    return true;
}

/* ensure_connected: reset a connection that broke, and set it up again; never inside a
 * transaction, whose work the server threw away with the connection: the statements after it
 * would run on their own and its COMMIT would commit nothing, so the transaction fails. */
static dt_status ensure_connected(pg_store *s, dt_error *err)
{
    if (PQstatus(s->conn) == CONNECTION_OK)
        return DT_OK;
    if (s->in_tx)
        return dt_error_set(err, DT_ERR_IO, "PostgreSQL at %s: the connection broke in the "
                            "middle of a transaction, which is lost: %s",
                            s->where, PQerrorMessage(s->conn));
    forget_prepared(s);   /* a new server session knows none of them */
    PQreset(s->conn);
    if (PQpipelineStatus(s->conn) != PQ_PIPELINE_OFF)
        PQexitPipelineMode(s->conn);   /* left on by a pipeline the break cut short */
    if (PQstatus(s->conn) != CONNECTION_OK)
        return dt_error_set(err, DT_ERR_IO, "PostgreSQL at %s is unreachable: %s", s->where,
                            PQerrorMessage(s->conn));
    char sql[160];
    snprintf(sql, sizeof sql, "SET search_path TO \"%s\"; SET client_min_messages TO warning",
             s->schema);
    PGresult *r = PQexec(s->conn, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok ? DT_OK
              : dt_error_set(err, DT_ERR_IO, "PostgreSQL at %s: cannot use schema %s: %s",
                             s->where, s->schema, PQerrorMessage(s->conn));
}

dt_status pg_run_later(pg_store *s, const char *sql, dt_error *err, const char *what)
{
    if (s->n_deferred == PG_DEFERRED_MAX)
        return pg_run(s, sql, NULL, NULL, err, what);   /* sends the others too */
    s->deferred[s->n_deferred] = sql;
    s->deferred_what[s->n_deferred] = what;
    s->n_deferred++;
    return DT_OK;
}

/* pipeline_result: the result of one query sent in pipeline mode, and the NULL after it; NULL
 * when the connection broke. */
static PGresult *pipeline_result(PGconn *c)
{
    PGresult *r = PQgetResult(c);
    if (r != NULL) {
        PGresult *end = PQgetResult(c);
        PQclear(end);
    }
    return r;
}

/* run_pipelined: S's deferred commands, then SQL (prepared as NAME, unless NAME is "") with
 * P, in one pipeline: sent together, answered together. Returns SQL's result, or the first
 * failed command's result (*WHAT then names that command); the deferred commands are gone
 * either way. */
static PGresult *run_pipelined(pg_store *s, const char *sql, const char *name,
                               const pg_params *p, const char **what)
{
    int n = s->n_deferred;
    s->n_deferred = 0;
    bool sent = PQenterPipelineMode(s->conn) == 1;
    for (int i = 0; sent && i < n; i++)
        sent = PQsendQueryParams(s->conn, s->deferred[i], 0, NULL, NULL, NULL, NULL, 1) == 1;
    if (sent && name[0])
        sent = PQsendQueryPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL,
                                   p ? p->len : NULL, p ? p->fmt : NULL, 1) == 1;
    else if (sent)
        sent = PQsendQueryParams(s->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                                 p ? p->len : NULL, p ? p->fmt : NULL, 1) == 1;
    sent = sent && PQpipelineSync(s->conn) == 1;
    PGresult *failed = NULL, *last = NULL;
    for (int i = 0; sent && i <= n; i++) {
        PGresult *r = pipeline_result(s->conn);
        if (r == NULL) {
            sent = false;   /* the connection broke: nothing more will come */
            break;
        }
        ExecStatusType es = PQresultStatus(r);
        if (i == n) {
            last = r;
        } else if (failed == NULL && es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
            failed = r;
            *what = s->deferred_what[i];
        } else {
            PQclear(r);
        }
    }
    if (sent) {   /* the sync's own result */
        PGresult *sync = PQgetResult(s->conn);
        PQclear(sync);
    }
    /* out of pipeline mode; on a broken connection this fails, and ensure_connected's reset
     * of it takes the connection out */
    PQexitPipelineMode(s->conn);
    if (failed) {
        PQclear(last);
        return failed;
    }
    return last;
}

dt_status pg_run(pg_store *s, const char *sql, const pg_params *p, PGresult **out,
                 dt_error *err, const char *what)
{
    if (out)
        *out = NULL;
    dt_status st = ensure_connected(s, err);
    if (st != DT_OK) {
        s->n_deferred = 0;
        return st;
    }
    PGresult *r = NULL;
    char name[16] = "";
    bool simple = p == NULL && out == NULL;
    if (!simple && !prepared_name(s, sql, p, name, &r) && r != NULL)
        s->n_deferred = 0;   /* refused (its result reported below) */
    else if (s->n_deferred > 0)
        r = run_pipelined(s, sql, name, p, &what);
    else if (simple)
        r = PQexec(s->conn, sql);
    else if (name[0])
        r = PQexecPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                           p ? p->fmt : NULL, 1);
    else
        r = PQexecParams(s->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                         p ? p->len : NULL, p ? p->fmt : NULL, 1);
    ExecStatusType es = PQresultStatus(r);
    if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK) {
        if (out)
            *out = r;
        else
            PQclear(r);
        return DT_OK;
    }
    st = classify(s, r);
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn);
    char trimmed[300];
    snprintf(trimmed, sizeof trimmed, "%s", msg && msg[0] ? msg : "no result");
    size_t n = strlen(trimmed);
    while (n > 0 && isspace((unsigned char)trimmed[n - 1]))
        trimmed[--n] = '\0';
    dt_error_set(err, st, "%s (PostgreSQL at %s, schema %s): %s", what, s->where, s->schema,
                 trimmed);
    PQclear(r);
    return st;
}

dt_status pg_read(pg_store *s, const char *sql, const pg_params *p, PGresult **out,
                  dt_error *err, const char *what)
{
    pg_store *rs = s->reader;   /* never in a transaction: nothing calls pg_begin on it */
    assert(rs != NULL);
    pthread_mutex_lock(&rs->mu);
    bool was_up = PQstatus(rs->conn) == CONNECTION_OK;
    dt_status st = pg_run(rs, sql, p, out, err, what);
    /* the connection broke since its last statement (a server restart, a cut): a read
     * changes nothing, so it goes again, on the connection ensure_connected makes anew. Not
     * when it was down already: then this run tried to reconnect, and a second try would
     * only double the wait for a server that does not answer. */
    if (st == DT_ERR_IO && was_up && PQstatus(rs->conn) != CONNECTION_OK)
        st = pg_run(rs, sql, p, out, err, what);
    pthread_mutex_unlock(&rs->mu);
    return st;
}

/* run_script: SQL of several statements and no parameters (the schema's). */
static dt_status run_script(pg_store *s, const char *sql, dt_error *err, const char *what)
{
    assert(s->n_deferred == 0);   /* a script goes alone: its transaction's BEGIN went before */
    PGresult *r = PQexec(s->conn, sql);
    if (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK) {
        PQclear(r);
        return DT_OK;
    }
    dt_status st = dt_error_set(err, classify(s, r), "%s (PostgreSQL at %s, schema %s): %s",
                                what, s->where, s->schema,
                                r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    PQclear(r);
    return st;
}

/* Transactions are READ COMMITTED whatever the database's default: a lease re-checks rows
 * other nodes just committed, which a snapshot of its start would not see. */
dt_status pg_begin(pg_store *s, dt_error *err)
{
    /* connected now, so a connection that broke since the last statement is reset before the
     * transaction starts rather than found broken inside it */
    dt_status r = ensure_connected(s, err);
    if (r == DT_OK)
        r = pg_run_later(s, "BEGIN ISOLATION LEVEL READ COMMITTED", err, "begin");
    s->in_tx = r == DT_OK;
    return r;
}

dt_status pg_commit(pg_store *s, dt_error *err)
{
    /* a COMMIT outside a transaction "succeeds" with a warning: make sure ours is there (or
     * is about to be: its BEGIN still held, with nothing done in it yet) */
    bool begin_held = s->n_deferred > 0 && strncmp(s->deferred[0], "BEGIN", 5) == 0;
    dt_status r = PQstatus(s->conn) == CONNECTION_OK &&
                          (PQtransactionStatus(s->conn) == PQTRANS_INTRANS ||
                           (begin_held && PQtransactionStatus(s->conn) == PQTRANS_IDLE))
                      ? pg_run(s, "COMMIT", NULL, NULL, err, "commit")
                      : dt_error_set(err, DT_ERR_IO, "PostgreSQL at %s: the transaction was "
                                     "lost before its commit (%s)", s->where,
                                     PQstatus(s->conn) == CONNECTION_OK
                                         ? "it failed"
                                         : "the connection broke");
    s->in_tx = false;
    return r;
}

void pg_rollback(pg_store *s)
{
    s->n_deferred = 0;   /* never sent: nothing to take back */
    if (PQstatus(s->conn) == CONNECTION_OK &&
        PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(s->conn, "ROLLBACK");
        PQclear(r);
    }
    s->in_tx = false;
}

bool pg_col_null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

const char *pg_col_text(dt_arena *arena, const PGresult *r, int row, int col, dt_status *st)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    const char *v = dt_arena_strndup(arena, PQgetvalue(r, row, col),
                                        (size_t)PQgetlength(r, row, col));
    if (v == NULL)
        *st = DT_ERR_NOMEM;
    return v;
}

int64_t pg_col_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);
    int n = PQgetlength(r, row, col);
    uint64_t v = 0;
    for (int i = 0; i < n && i < 8; i++)
        v = v << 8 | b[i];
    if (n == 4)
        return (int32_t)(uint32_t)v;
    if (n == 2)
        return (int16_t)(uint16_t)v;
    return (int64_t)v;
}

dt_status pg_col_event(const PGresult *r, int row, int col, dt_arena *arena, dt_event *out,
                       dt_error *err, const char *what)
{
    return store_decode_blob(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col), arena,
                             out, err, what);
}

dt_status pg_run_id(pg_store *s, const char *sql, const char *id, dt_error *err,
                    const char *what)
{
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    return pg_run(s, sql, &p, NULL, err, what);
}

dt_status pg_int_array(const int64_t *v, size_t n, char **out, dt_error *err)
{
    size_t cap = 2 + n * 21 + 1;
    char *s = malloc(cap);
    if (s == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for %zu ids", n);
    size_t at = 0;
    s[at++] = '{';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s%" PRId64, i ? "," : "", v[i]);
    snprintf(s + at, cap - at, "}");
    *out = s;
    return DT_OK;
}

void pg_literal_put(pg_literal *a, const char *text, size_t len)
{
    if (!a->ok)
        return;
    char *s = dt_grow(a->s, &a->cap, a->n + len + 1, 1);
    if (s == NULL) {
        a->ok = false;
        return;
    }
    a->s = s;
    memcpy(a->s + a->n, text, len);
    a->n += len;
    a->s[a->n] = '\0';
}

void pg_literal_add(pg_literal *a, const char *v)
{
    pg_literal_put(a, a->n > 1 ? "," : "", a->n > 1 ? 1 : 0);
    if (v == NULL) {
        pg_literal_put(a, "NULL", 4);
        return;
    }
    pg_literal_put(a, "\"", 1);
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            pg_literal_put(a, "\\", 1);
        pg_literal_put(a, c, 1);
    }
    pg_literal_put(a, "\"", 1);
}

dt_status pg_utf8_prefix_end(const char *prefix, char **out, dt_error *err)
{
    *out = NULL;
    size_t n = strlen(prefix);
    while (n > 0) {
        size_t start = n - 1;
        while (start > 0 && ((unsigned char)prefix[start] & 0xC0) == 0x80)
            start--;
        const unsigned char *p = (const unsigned char *)prefix + start;
        size_t len = n - start;
        uint32_t cp = len == 1 ? p[0] : p[0] & (0x7F >> len);
        for (size_t k = 1; k < len; k++)
            cp = cp << 6 | (p[k] & 0x3F);
        if (cp == 0x10FFFF) {
            n = start;
            continue;
        }
        cp = cp == 0xD7FF ? 0xE000 : cp + 1;
        char *hi = malloc(start + 5);
        if (hi == NULL)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the id prefix '%.100s'",
                                prefix);
        memcpy(hi, prefix, start);
        unsigned char *e = (unsigned char *)hi + start;
        if (cp < 0x80) {
            *e++ = (unsigned char)cp;
        } else if (cp < 0x800) {
            *e++ = (unsigned char)(0xC0 | cp >> 6);
            *e++ = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *e++ = (unsigned char)(0xE0 | cp >> 12);
            *e++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            *e++ = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            *e++ = (unsigned char)(0xF0 | cp >> 18);
            *e++ = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
            *e++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
            *e++ = (unsigned char)(0x80 | (cp & 0x3F));
        }
        *e = '\0';
        *out = hi;
        return DT_OK;
    }
    return DT_OK;
}

dt_status pg_unimplemented(dt_error *err, const char *op)
{
    return dt_error_set(err, DT_ERR_UNIMPLEMENTED, "the PostgreSQL store does not do %s yet",
                        op);
}

/* ---- the schema ----------------------------------------------------------------------------- */

/* schema_ok: letters, digits, '-' and '_', starting with a letter or '_', at most 63 bytes
 * (one PostgreSQL identifier, always quoted, so '-' and case are kept as they are). */
static bool schema_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63 || isdigit((unsigned char)name[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)name[i]) || name[i] == '_' || name[i] == '-'))
            return false;
    return true;
}

/* migrate: bring S's schema to PG_SCHEMA_VERSION in one transaction, under an advisory lock
 * of this schema, so nodes starting together take turns and the second finds it done. */
static dt_status migrate(pg_store *s, dt_error *err)
{
    char sql[512];
    dt_status st = pg_begin(s, err);
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, s->schema);
    if (st == DT_OK)
        st = pg_run(s, "SELECT pg_advisory_xact_lock(hashtext('durabletask:' || $1))", &p,
                    NULL, err, "lock the schema for migration");
    snprintf(sql, sizeof sql,
             "CREATE SCHEMA IF NOT EXISTS \"%s\"; SET LOCAL search_path TO \"%s\";"
             "CREATE TABLE IF NOT EXISTS dtask_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
             s->schema, s->schema);
    if (st == DT_OK)
        st = run_script(s, sql, err, "create the schema");
    PGresult *r = NULL;
    if (st == DT_OK)
        st = pg_run(s, "SELECT value FROM dtask_meta WHERE key = 'schema_version'", NULL, &r,
                    err, "read the schema version");
    int64_t version = st == DT_OK && PQntuples(r) > 0 ? pg_col_int(r, 0, 0) : 0;
    PQclear(r);
    if (st == DT_OK && version > PG_SCHEMA_VERSION)
        st = dt_error_set(err, DT_ERR_CORRUPT,
                          "PostgreSQL at %s, schema %s, has schema version %" PRId64
                          ", written by a newer durabletask; this build knows %d",
                          s->where, s->schema, version, PG_SCHEMA_VERSION);
    for (int64_t v = version; st == DT_OK && v < PG_SCHEMA_VERSION; v++)
        st = run_script(s, migrate_sql[v], err, "migrate the schema");
    if (st == DT_OK && version < PG_SCHEMA_VERSION) {
        pg_params q = PG_PARAMS_INIT;
        pg_int(&q, PG_SCHEMA_VERSION);
        st = pg_run(s,
                    "INSERT INTO dtask_meta (key, value) VALUES ('schema_version', $1)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    &q, NULL, err, "record the schema version");
    }
    if (st == DT_OK)
        st = pg_commit(s, err);
    if (st != DT_OK)
        pg_rollback(s);
    return st;
}

/* ---- open and close ------------------------------------------------------------------------ */

static void pg_close(dt_store *base)
{
    pg_store *s = (pg_store *)base;
    if (s == NULL)
        return;
    pg_unwatch(s);
    if (s->reader)
        pg_close(&s->reader->base);
    forget_prepared(s);
    PQfinish(s->conn);
    pthread_mutex_destroy(&s->mu);
    free(s->url);
    free(s->where);
    free(s);
}

static uint64_t pg_search_steps(dt_store *base)
{
    return atomic_load(&((pg_store *)base)->search_steps);
}

static int pg_schema_version(dt_store *s)
{
    (void)s;
    return PG_SCHEMA_VERSION;   /* opening migrated it */
}

/* pg_sync: a commit is durable when COMMIT returns (synchronous_commit on): nothing to do. */
static dt_status pg_sync(dt_store *base, uint64_t ticket, dt_error *err)
{
    (void)base;
    (void)ticket;
    (void)err;
    return DT_OK;
}

static uint64_t pg_last_ticket(dt_store *base)
{
    return atomic_load(&((pg_store *)base)->commit_seq);
}

static const dt_store_ops pg_ops = {
    .name = "postgres",
    .schema_version = pg_schema_version,
    .watch = pg_watch,
    .heartbeat = pg_heartbeat,
    .nodes = pg_nodes,
    .next_due = pg_next_due,
    .close = pg_close,
    .send_entity_message = pg_send_entity_message,
    .lease_entities = pg_lease_entities,
    .renew_entity = pg_renew_entity,
    .abandon_entity = pg_abandon_entity,
    .get_entity = pg_get_entity,
    .query_entities = pg_query_entities,
    .clean_entities = pg_clean_entities,
    .search_steps = pg_search_steps,
    .create_instance = pg_create_instance,
    .send_message = pg_send_message,
    .get_instance = pg_get_instance,
    .read_history = pg_read_history,
    .lease_orchestrations = pg_lease_orchestrations,
    .lease_activities = pg_lease_activities,
    .renew_orchestration = pg_renew_orchestration,
    .renew_activity = pg_renew_activity,
    .abandon_orchestration = pg_abandon_orchestration,
    .abandon_activity = pg_abandon_activity,
    .commit = pg_commit_batch,
    .sync = pg_sync,
    .last_ticket = pg_last_ticket,
    .query_instances = pg_query_instances,
    .purge_instance = pg_purge_instance,
    .purge_instances = pg_purge_instances,
    .queue_depths = pg_queue_depths,
    .count_by_status = pg_count_by_status,
};


/* describe: "host:port/db" of the connection, for messages (no user, no password). */
static char *describe(PGconn *c)
{
    const char *host = PQhost(c), *port = PQport(c), *db = PQdb(c);
    size_t n = strlen(host ? host : "") + strlen(port ? port : "") + strlen(db ? db : "") + 4;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s:%s/%s", host ? host : "", port ? port : "", db ? db : "");
    return out;
}

bool dt_store_is_postgres(const char *path)
{
    return path && (strncmp(path, "postgres://", 11) == 0 ||
                    strncmp(path, "postgresql://", 13) == 0);
}

dt_status dt_store_drop_postgres(const char *url, const char *schema, dt_error *err)
{
    if (schema == NULL || !schema_ok(schema))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "PostgreSQL schema name '%.80s' is not "
                            "letters, digits, '-' and '_'", schema ? schema : "");
    PGconn *c = PQconnectdb(url);
    char *where = c ? describe(c) : NULL;
    dt_status st = DT_OK;
    if (c == NULL || where == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory connecting to PostgreSQL");
    } else if (PQstatus(c) != CONNECTION_OK) {
        st = dt_error_set(err, DT_ERR_IO, "cannot connect to PostgreSQL at %s: %s", where,
                          PQerrorMessage(c));
    } else {
        const char *v[1] = {schema};
        PGresult *r = PQexecParams(c, "SELECT 1 FROM pg_namespace WHERE nspname = $1", 1, NULL,
                                   v, NULL, NULL, 0);
        bool there = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0;
        PQclear(r);
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
        r = there ? PQexec(c, sql) : NULL;
        if (!there)
            st = dt_error_set(err, DT_ERR_NOT_FOUND, "PostgreSQL at %s has no schema %s", where,
                              schema);
        else if (PQresultStatus(r) != PGRES_COMMAND_OK)
            st = dt_error_set(err, DT_ERR_IO, "dropping schema %s of PostgreSQL at %s: %s",
                              schema, where, PQresultErrorMessage(r));
        PQclear(r);
    }
    free(where);
    PQfinish(c);
    return st;
}

/* use_schema: S's tables are those of its schema from now on */
static dt_status use_schema(pg_store *s, dt_error *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SET search_path TO \"%s\"", s->schema);
    return pg_run(s, sql, NULL, NULL, err, "use the schema");
}

/* connect_store: S's connection to its URL, its errors' name (WHERE), and its session set up
 * (warnings only; SEARCH: the schema as search_path, which the tables are made in first). */
static dt_status connect_store(pg_store *s, bool search, dt_error *err)
{
    s->conn = PQconnectdb(s->url);
    s->where = s->conn ? describe(s->conn) : NULL;
    if (s->conn == NULL || s->where == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening a PostgreSQL store");
    if (PQstatus(s->conn) != CONNECTION_OK)
        return dt_error_set(err, DT_ERR_IO, "cannot connect to PostgreSQL at %s: %s", s->where,
                            PQerrorMessage(s->conn));
    dt_status st = pg_run(s, "SET client_min_messages TO warning", NULL, NULL, err, "configure");
    if (st == DT_OK && search)
        st = use_schema(s, err);
    return st;
}

/* new_store: a store of URL's SCHEMA not connected yet; NULL when out of memory. */
static pg_store *new_store(const char *url, const char *schema)
{
    pg_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->base.ops = &pg_ops;
    pthread_mutex_init(&s->mu, NULL);
    snprintf(s->schema, sizeof s->schema, "%s", schema);
    s->url = strdup(url);
    if (s->url == NULL) {
        pg_close(&s->base);
        return NULL;
    }
    return s;
}

dt_status dt_store_open_postgres(const char *url, const char *schema, dt_store **out,
                                 dt_error *err)
{
    *out = NULL;
    if (url == NULL || url[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "no PostgreSQL connection URL given");
    if (schema == NULL)
        schema = "dtask";
    if (!schema_ok(schema))
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "PostgreSQL schema name '%.80s' is not letters, digits, '-' and "
                            "'_' (not starting with a digit, at most 63)",
                            schema);
    pg_store *s = new_store(url, schema);
    if (s == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening a PostgreSQL store");
    dt_status st = connect_store(s, false, err);
    if (st == DT_OK)
        st = migrate(s, err);
    if (st == DT_OK)
        st = use_schema(s, err);
    if (st == DT_OK && (s->reader = new_store(url, schema)) == NULL)
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory opening a PostgreSQL store");
    if (st == DT_OK)
        st = connect_store(s->reader, true, err);
    if (st != DT_OK) {
        pg_close(&s->base);
        return st;
    }
    *out = &s->base;
    return DT_OK;
}
