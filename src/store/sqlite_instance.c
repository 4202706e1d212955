/* sqlite_instance.c — the SQLite backend's instance operations: create (with the reuse
 * policy), send a message, read an instance row, read a history (whole or from a seq). Creation and message inserts
 * also run inside group commits (sub-orchestrations, timers, events), so their bodies take the
 * caller's transaction; the dt_store ops wrap them in their own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

dt_status store_delete_instance_tx(sqlite_store *s, const char *id, dt_error *err)
{
    static const struct {
        store_stmt_id stmt;
        const char *what;
    } steps[] = {
        {ST_HISTORY_DELETE, "delete old history"},
        {ST_INBOX_DELETE_ALL, "delete old inbox"},
        {ST_ACTIVITY_DELETE_ALL, "delete old activities"},
        {ST_INSTANCE_DELETE, "delete old instance"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        sqlite3_stmt *st = store_stmt(s, steps[i].stmt);
        int rc = SQLITE_OK;
        store_bind_text(st, 1, id, &rc);
        if (rc != SQLITE_OK)
            return store_sql_error(s, rc, err, steps[i].what);
        dt_status r = store_step_done(s, st, err, steps[i].what);
        if (r != DT_OK)
            return r;
    }
    return DT_OK;
}

/* conflict_tx: deliver NI's ON_CONFLICT message (ON_FOREIGN's when set and the instance
 * there is not a child of NI's parent: not SAME_PARENT) in the open transaction; ERR holds
 * the reason the instance was not created, which a failure without a message takes. Returns
 * DT_ERR_ALREADY_EXISTS when it went in (the creation is still refused), or the error that
 * kept it out. */
static dt_status conflict_tx(sqlite_store *s, const dt_new_instance *ni, bool same_parent,
                             dt_error *err)
{
    store_conflict c;
    store_conflict_message(ni, same_parent, err, &c);
    bool delivered = false;
    dt_status r = store_insert_message_tx(s, &c.message, NULL, &delivered, err);
    return r == DT_OK ? DT_ERR_ALREADY_EXISTS : r;
}

dt_status store_create_instance_tx(sqlite_store *s, const dt_new_instance *ni, dt_error *err)
{
    if (ni == NULL || ni->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "create instance: no instance id");
    const char *id = ni->instance_id;
    dt_time created = ni->created_at ? ni->created_at : dt_now();

    /* the reuse policy */
    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_STATUS);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        dt_runtime_status existing = (dt_runtime_status)sqlite3_column_int(st, 0);
        const char *parent = (const char *)sqlite3_column_text(st, 1);
        bool replace = store_may_replace(ni, existing, parent);
        bool same_parent = store_same_parent(ni, parent);
        sqlite3_reset(st);
        if (!replace) {
            dt_status r = dt_error_set(err, DT_ERR_ALREADY_EXISTS,
                                       "instance '%s' already exists with status %s", id,
                                       dt_runtime_status_name(existing));
            return ni->on_conflict ? conflict_tx(s, ni, same_parent, err) : r;
        }
        dt_status r = store_delete_instance_tx(s, id, err);
        if (r != DT_OK)
            return r;
    } else if (rc != SQLITE_DONE) {
        dt_status r = store_sql_error(s, rc, err, "read instance status");
        sqlite3_reset(st);
        return r;
    } else {
        sqlite3_reset(st);
    }

    /* the row, Pending */
    st = store_stmt(s, ST_INSTANCE_INSERT);
    rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_text(st, 2, ni->execution_id, &rc);
    store_bind_text(st, 3, ni->name, &rc);
    store_bind_text(st, 4, ni->version, &rc);
    store_bind_int64(st, 5, DT_STATUS_PENDING, &rc);
    store_bind_text(st, 6, ni->input, &rc);
    store_bind_int64(st, 7, created, &rc);
    store_bind_int64(st, 8, ni->scheduled_start, &rc);
    store_bind_text(st, 9, ni->parent_instance_id, &rc);
    store_bind_text(st, 10, ni->parent_execution_id, &rc);
    store_bind_text(st, 11, ni->parent_name, &rc);
    store_bind_int64(st, 12, ni->parent_task_id, &rc);
    store_bind_text(st, 13, ni->tags, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "insert instance");
    dt_status r = store_step_done(s, st, err, "insert instance");
    if (r != DT_OK)
        return r;

    /* and its ExecutionStarted message */
    dt_message m;
    store_started_message(ni, created, &m);
    bool delivered = false;
    r = store_insert_message_tx(s, &m, id, &delivered, err);
    if (r == DT_OK && !delivered)
        r = dt_error_set(err, DT_ERR_INTERNAL, "instance '%s' vanished while being created", id);
    return r;
}

dt_status store_insert_message_tx(sqlite_store *s, const dt_message *m, const char *default_id,
                                  bool *delivered, dt_error *err)
{
    *delivered = false;
    const char *id = m->instance_id ? m->instance_id : default_id;
    if (id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "message has no target instance");
    uint8_t *blob = NULL;
    size_t len = 0;
    dt_status r = store_encode_event(&m->event, &blob, &len, err);
    if (r != DT_OK)
        return r;
    sqlite3_stmt *st = store_stmt(s, ST_INBOX_INSERT);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_int64(st, 2, m->visible_at, &rc);
    store_bind_blob(st, 3, blob, len, &rc);
    store_bind_text(st, 4, m->execution_id, &rc);
    store_bind_int64(st, 5, (int64_t)m->event.type, &rc);
    if (rc != SQLITE_OK)
        r = store_sql_error(s, rc, err, "insert inbox message");
    else
        r = store_step_done(s, st, err, "insert inbox message");
    /* the statement held BLOB by SQLITE_STATIC: drop the binding before freeing it */
    sqlite3_clear_bindings(st);
    free(blob);
    if (r == DT_OK)
        *delivered = sqlite3_changes(s->db) > 0;
    return r;
}

dt_status store_sqlite_create_instance(dt_store *base, const dt_new_instance *ni, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    pthread_mutex_lock(&s->mu);
    dt_status r = store_begin_write(s, err);
    if (r == DT_OK) {
        r = store_create_instance_tx(s, ni, err);
        if (r == DT_OK)
            r = store_commit_tx(s, err);
        if (r != DT_OK)
            store_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* reopen_tx: Failed instance ID becomes Running again (a rewind), in the open transaction. */
static dt_status reopen_tx(sqlite_store *s, const char *id, dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_REOPEN);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_int64(st, 2, dt_now(), &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "reopen instance");
    dt_status r = store_step_done(s, st, err, "reopen instance");
    if (r == DT_OK && sqlite3_changes(s->db) == 0)
        r = dt_error_set(err, DT_ERR_STATE, "instance '%s' is not Failed, or is leased right "
                         "now", id);
    return r;
}

dt_status store_sqlite_send_message(dt_store *base, const dt_message *m, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    if (m == NULL || m->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "send message: no target instance");
    pthread_mutex_lock(&s->mu);
    bool delivered = false;
    dt_status r = store_begin_write(s, err);
    if (r == DT_OK) {   /* from here on, any failure rolls back: a refused reopen too */
        if (m->reopen)
            r = reopen_tx(s, m->instance_id, err);
        if (r == DT_OK)
            r = store_insert_message_tx(s, m, NULL, &delivered, err);
        if (r == DT_OK && !delivered)
            r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", m->instance_id);
        if (r == DT_OK)
            r = store_commit_tx(s, err);
        if (r != DT_OK)
            store_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* get_instance_with: the row of ID into a new dt_instance_state in ARENA, read with ST (the
 * instance statement of whichever connection the caller holds). */
static dt_status get_instance_with(sqlite_store *s, sqlite3_stmt *st, const char *id,
                                   dt_arena *arena, dt_instance_state **out, dt_error *err)
{
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    dt_status r;
    if (rc == SQLITE_ROW) {
        dt_instance_state *state = dt_arena_alloc(arena, sizeof *state);
        if (state == NULL)
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading instance '%s'", id);
        else
            r = store_read_instance(st, arena, state, err);
        if (r == DT_OK)
            *out = state;
    } else if (rc == SQLITE_DONE) {
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", id);
    } else {   /* the message of ST's connection: the reader's or the writer's */
        r = store_db_error(s, sqlite3_db_handle(st), rc, err, "read instance");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

/* Reads of one instance, the most frequent read (every wait and status call), go through the
 * reader connection when there is one: in WAL mode it reads beside the writer instead of
 * queueing behind a group commit for the store's mutex. */
dt_status store_sqlite_get_instance(dt_store *base, const char *id, dt_arena *arena,
                                    dt_instance_state **out, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *out = NULL;
    if (id == NULL)
        return dt_error_set(err, DT_ERR_NOT_FOUND, "no instance id given");
    if (s->reader_get) {
        pthread_mutex_lock(&s->reader_mu);
        dt_status r = get_instance_with(s, s->reader_get, id, arena, out, err);
        pthread_mutex_unlock(&s->reader_mu);
        return r;
    }
    pthread_mutex_lock(&s->mu);
    dt_status r = get_instance_with(s, store_stmt(s, ST_INSTANCE_GET), id, arena, out, err);
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* The connection a history window is read on, and its statements: the history reader's,
 * or the writer's when there is none. */
typedef struct hist_conn {
    sqlite_store *s;
    sqlite3 *db;
    sqlite3_stmt *const *stmts;
} hist_conn;

static dt_status hist_error(const hist_conn *c, int rc, dt_error *err, const char *what)
{
    return store_db_error(c->s, c->db, rc, err, what);
}

/* window_end: the seq after the last event of ID's window from FROM_SEQ that MAX_BYTES of
 * stored bytes hold (one event at least), from the events' sizes alone, so no event is read
 * only to learn that it does not fit; *MORE: events follow it. */
static dt_status window_end(const hist_conn *c, const char *id, int64_t from_seq,
                            size_t max_bytes, int64_t *end, bool *more, dt_error *err)
{
    sqlite3_stmt *st = store_stmt_of(c->stmts, ST_HISTORY_SIZES);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_int64(st, 2, from_seq, &rc);
    size_t bytes = 0;
    *end = from_seq;
    *more = false;
    if (rc != SQLITE_OK)
        return hist_error(c, rc, err, "read history");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_int64(st, 1);
        if (*end > from_seq && (bytes >= max_bytes || len > max_bytes - bytes)) {
            *more = true;
            rc = SQLITE_DONE;
            break;
        }
        bytes += len;
        *end = sqlite3_column_int64(st, 0) + 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DT_OK : hist_error(c, rc, err, "read history");
}

/* load_window: ID's events with seq >= FROM_SEQ into W, as many as MAX_BYTES of stored
 * bytes take (one at least; 0: no bound), inside the caller's read transaction. */
static dt_status load_window(const hist_conn *c, const char *id, int64_t from_seq,
                             size_t max_bytes, dt_arena *arena, dt_history_window *w,
                             dt_error *err)
{
    int64_t end = INT64_MAX;
    if (max_bytes) {
        dt_status r = window_end(c, id, from_seq, max_bytes, &end, &w->more, err);
        if (r != DT_OK || end == from_seq)
            return r;
    }
    sqlite3_stmt *st = store_stmt_of(c->stmts, ST_HISTORY_LOAD);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_int64(st, 2, from_seq, &rc);
    store_bind_int64(st, 3, end, &rc);
    if (rc != SQLITE_OK)
        return hist_error(c, rc, err, "read history");
    size_t n = 0, cap = 0;
    dt_event *v = NULL;
    dt_status r = DT_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Arenas cannot grow a block: collect in the heap, copy into ARENA at the end. */
        dt_event *nv = dt_grow(v, &cap, n + 1, sizeof *nv);
        if (nv == NULL) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading history of '%s'", id);
            break;
        }
        v = nv;
        char what[160];
        snprintf(what, sizeof what, "history event %lld of instance '%.100s'",
                 (long long)sqlite3_column_int64(st, 0), id);
        r = store_decode_column(st, 1, arena, &v[n], err, what);
        if (r != DT_OK)
            break;
        n++;
    }
    if (r == DT_OK && rc != SQLITE_DONE)
        r = hist_error(c, rc, err, "read history");
    sqlite3_reset(st);
    if (r == DT_OK && n > 0) {
        w->events = dt_arena_memdup(arena, v, n * sizeof *v);
        if (w->events == NULL)
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading history of '%s'", id);
        else
            w->n = n;
    }
    free(v);
    return r;
}

/* read_window: the row check, the generation and the window in one read transaction on C,
 * so all come from the same snapshot (C's lock held). */
static dt_status read_window(const hist_conn *c, const char *id, int64_t from, size_t max_bytes,
                             dt_arena *arena, dt_history_window *out, dt_error *err)
{
    sqlite3_stmt *st = store_stmt_of(c->stmts, ST_BEGIN_READ);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return hist_error(c, rc, err, "begin read transaction");
    dt_status r = DT_OK;
    st = store_stmt_of(c->stmts, ST_INSTANCE_STATUS);
    rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", id);
    else if (rc != SQLITE_ROW)
        r = hist_error(c, rc, err, "read instance");
    else
        out->gen = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    if (r == DT_OK)
        r = load_window(c, id, from, max_bytes, arena, out, err);
    /* a read transaction writes nothing: its end only lets go of the snapshot */
    if (r == DT_OK) {
        st = store_stmt_of(c->stmts, ST_COMMIT);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            r = hist_error(c, rc, err, "end read transaction");
    }
    if (r != DT_OK) {
        if (!sqlite3_get_autocommit(c->db))
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        *out = (dt_history_window){0};
    }
    return r;
}

/* store_sqlite_read_history: on the history reader when there is one (it reads beside the
 * writer's group commits, WAL mode), else on the writer's connection. */
dt_status store_sqlite_read_history(dt_store *base, const char *id, size_t from_seq,
                                    size_t max_bytes, dt_arena *arena, dt_history_window *out,
                                    dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int64_t from = from_seq > (size_t)INT64_MAX ? INT64_MAX : (int64_t)from_seq;
    bool own = s->hist != NULL;
    pthread_mutex_t *mu = own ? &s->hist_mu : &s->mu;
    hist_conn c = own ? (hist_conn){s, s->hist, s->hist_stmts} : (hist_conn){s, s->db, s->stmts};
    pthread_mutex_lock(mu);
    dt_status r = read_window(&c, id, from, max_bytes, arena, out, err);
    pthread_mutex_unlock(mu);
    return r;
}
