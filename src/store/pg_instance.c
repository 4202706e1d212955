/* pg_instance.c — the PostgreSQL backend's instance operations: create (with the reuse
 * policy), send a message, read an instance row, read a history (whole or from a seq). As in
 * SQLite's, creation and message inserts also run inside group commits (sub-orchestrations,
 * timers, events), so their bodies take the caller's transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

dt_status pg_read_instance(const PGresult *r, int row, dt_arena *arena,
                           dt_instance_state *state, dt_error *err)
{
    dt_status st = DT_OK;
    memset(state, 0, sizeof *state);
    state->instance_id = pg_col_text(arena, r, row, 0, &st);
    state->execution_id = pg_col_text(arena, r, row, 1, &st);
    state->name = pg_col_text(arena, r, row, 2, &st);
    state->version = pg_col_text(arena, r, row, 3, &st);
    state->status = (dt_runtime_status)pg_col_int(r, row, 4);
    state->input = pg_col_text(arena, r, row, 5, &st);
    state->output = pg_col_text(arena, r, row, 6, &st);
    state->custom_status = pg_col_text(arena, r, row, 7, &st);
    state->created_at = pg_col_int(r, row, 9);
    state->last_updated_at = pg_col_int(r, row, 10);
    state->completed_at = pg_col_int(r, row, 11);
    state->scheduled_start = pg_col_int(r, row, 12);
    state->parent_instance_id = pg_col_text(arena, r, row, 13, &st);
    state->tags = pg_col_text(arena, r, row, 14, &st);
    state->span_id = pg_col_text(arena, r, row, 15, &st);
    state->span_start = pg_col_int(r, row, 16);
    if (st != DT_OK)
        return dt_error_set(err, st, "out of memory reading an instance row");
    if (!pg_col_null(r, row, 8)) {
        dt_event fe;
        st = pg_col_event(r, row, 8, arena, &fe, err, "instance failure details");
        if (st != DT_OK)
            return st;
        state->failure = fe.failure;
    }
    return DT_OK;
}

dt_status pg_delete_instance_tx(pg_store *s, const char *id, dt_error *err)
{
    static const struct {
        const char *sql, *what;
    } steps[] = {
        {"DELETE FROM history WHERE instance_id = $1", "delete old history"},
        {"DELETE FROM inbox WHERE instance_id = $1", "delete old inbox"},
        {"DELETE FROM activities WHERE instance_id = $1", "delete old activities"},
        {"DELETE FROM instances WHERE instance_id = $1", "delete old instance"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        dt_status r = pg_run_id(s, steps[i].sql, id, err, steps[i].what);
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
static dt_status conflict_tx(pg_store *s, const dt_new_instance *ni, bool same_parent,
                             dt_error *err)
{
    store_conflict c;
    store_conflict_message(ni, same_parent, err, &c);
    bool delivered = false;
    dt_status r = pg_insert_message_tx(s, &c.message, NULL, &delivered, err);
    return r == DT_OK ? DT_ERR_ALREADY_EXISTS : r;
}

dt_status pg_create_instance_tx(pg_store *s, const dt_new_instance *ni, dt_error *err)
{
    if (ni == NULL || ni->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "create instance: no instance id");
    const char *id = ni->instance_id;
    dt_time created = ni->created_at ? ni->created_at : dt_now();

    /* the reuse policy; the row locked, so a concurrent creation of the same id waits */
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    PGresult *res = NULL;
    dt_status r = pg_run(s, "SELECT status, parent_instance_id FROM instances"
                            " WHERE instance_id = $1 FOR UPDATE",
                         &p, &res, err, "read instance status");
    if (r != DT_OK)
        return r;
    if (PQntuples(res) > 0) {
        dt_runtime_status existing = (dt_runtime_status)pg_col_int(res, 0, 0);
        char parent[DT_INSTANCE_ID_MAX + 1];
        bool has_parent = !pg_col_null(res, 0, 1);
        snprintf(parent, sizeof parent, "%s", has_parent ? PQgetvalue(res, 0, 1) : "");
        PQclear(res);
        if (!store_may_replace(ni, existing, has_parent ? parent : NULL)) {
            r = dt_error_set(err, DT_ERR_ALREADY_EXISTS,
                             "instance '%s' already exists with status %s", id,
                             dt_runtime_status_name(existing));
            return ni->on_conflict
                       ? conflict_tx(s, ni, store_same_parent(ni, has_parent ? parent : NULL), err)
                       : r;
        }
        if ((r = pg_delete_instance_tx(s, id, err)) != DT_OK)
            return r;
    } else {
        PQclear(res);
    }

    /* the row, Pending. A creation racing this one on another node (no row to lock a moment
     * ago) loses on the key: DO NOTHING, so the transaction, maybe a whole group commit, is
     * not aborted by the conflict. */
    pg_params q = PG_PARAMS_INIT;
    pg_text(&q, id);
    pg_text(&q, ni->execution_id);
    pg_text(&q, ni->name);
    pg_text(&q, ni->version);
    pg_int(&q, DT_STATUS_PENDING);
    pg_text(&q, ni->input);
    pg_int(&q, created);
    pg_int(&q, ni->scheduled_start);
    pg_text(&q, ni->parent_instance_id);
    pg_text(&q, ni->parent_execution_id);
    pg_text(&q, ni->parent_name);
    pg_int(&q, ni->parent_task_id);
    pg_text(&q, ni->tags);
    r = pg_run(s,
               "INSERT INTO instances (instance_id, execution_id, name, version, status, input,"
               " created_at, last_updated_at, scheduled_start, parent_instance_id,"
               " parent_execution_id, parent_name, parent_task_id, tags, history_gen)"
               " VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $13, $7)"
               " ON CONFLICT (instance_id) DO NOTHING",
               &q, &res, err, "insert instance");
    bool inserted = r == DT_OK && strcmp(PQcmdTuples(res), "0") != 0;
    PQclear(res);
    if (r != DT_OK)
        return r;
    if (!inserted) {
        r = dt_error_set(err, DT_ERR_ALREADY_EXISTS,
                         "instance '%s' already exists (created at this moment elsewhere)", id);
        return ni->on_conflict ? conflict_tx(s, ni, false, err) : r;   /* whose: unknown */
    }

    /* and its ExecutionStarted message */
    dt_message m;
    store_started_message(ni, created, &m);
    bool delivered = false;
    r = pg_insert_message_tx(s, &m, id, &delivered, err);
    if (r == DT_OK && !delivered)
        r = dt_error_set(err, DT_ERR_INTERNAL, "instance '%s' vanished while being created", id);
    return r;
}

/* The insert of a message: $1 the instance, $2 visible at, $3 the event, $4 the execution
 * id, $5 the kind. Only to an instance there is, with its name (inbox_by_name); its row held
 * (KEY SHARE: episodes' updates go on) so a purge or a replacement under way waits for this,
 * or this for it and then finds no instance. */
#define MESSAGE_INSERT                                                                       \
    "INSERT INTO inbox (instance_id, visible_at, event, execution_id, kind, name)"           \
    " SELECT $1, $2, $3, $4, $5, name FROM instances WHERE instance_id = $1"

/* An activity's result: its work item deleted under its lease ($6 the row, $7 the token) and,
 * only if it was, the message inserted as MESSAGE_INSERT. Its one row: the rows deleted and
 * the messages inserted. */
static const char *const RESULT_INSERT =
    "WITH d AS (DELETE FROM activities WHERE id = $6 AND lock_owner = $7 RETURNING 1),"
    " i AS (" MESSAGE_INSERT " AND EXISTS (SELECT 1 FROM d) FOR KEY SHARE RETURNING 1)"
    " SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM i)";

/* insert_message: M into its instance's inbox (DEFAULT_ID when M names none); with ACT, only
 * if activity work item ACT, leased under TOKEN, is deleted (*HELD says whether it was). */
static dt_status insert_message(pg_store *s, const dt_message *m, const char *default_id,
                                const int64_t *act, const char *token, bool *held,
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
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    pg_int(&p, m->visible_at);
    pg_blob(&p, blob, len);
    pg_text(&p, m->execution_id);
    pg_int(&p, (int64_t)m->event.type);
    if (act) {
        pg_int(&p, *act);
        pg_text(&p, token);
    }
    PGresult *res = NULL;
    r = pg_run(s, act ? RESULT_INSERT : MESSAGE_INSERT " FOR KEY SHARE", &p, &res, err,
               "insert inbox message");
    free(blob);
    if (r == DT_OK && act) {
        *held = pg_col_int(res, 0, 0) > 0;
        *delivered = pg_col_int(res, 0, 1) > 0;
    } else if (r == DT_OK) {
        *delivered = strcmp(PQcmdTuples(res), "0") != 0;
    }
    PQclear(res);
    return r;
}

dt_status pg_insert_message_tx(pg_store *s, const dt_message *m, const char *default_id,
                               bool *delivered, dt_error *err)
{
    return insert_message(s, m, default_id, NULL, NULL, NULL, delivered, err);
}

dt_status pg_activity_result_tx(pg_store *s, const dt_message *m, const char *default_id,
                                int64_t act, const char *token, bool *held, bool *delivered,
                                dt_error *err)
{
    *held = false;
    return insert_message(s, m, default_id, &act, token, held, delivered, err);
}

dt_status pg_create_instance(dt_store *base, const dt_new_instance *ni, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK) {
        r = pg_create_instance_tx(s, ni, err);
        if (r == DT_OK)
            r = pg_notify_tx(s, "", true, err);
        if (r == DT_OK)
            r = pg_commit(s, err);
        if (r != DT_OK)
            pg_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* reopen_tx: Failed instance ID becomes Running again (a rewind), in the open transaction. */
static dt_status reopen_tx(pg_store *s, const char *id, dt_error *err)
{
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    pg_int(&p, dt_now());
    PGresult *res = NULL;
    dt_status r = pg_run(s,
                         "UPDATE instances SET status = 0, output = NULL, failure = NULL,"
                         " completed_at = 0, last_updated_at = $2 WHERE instance_id = $1"
                         " AND status = 3 AND (lock_owner IS NULL OR lock_owner = ''"
                         " OR lock_expires < $2)",
                         &p, &res, err, "reopen instance");
    if (r == DT_OK && strcmp(PQcmdTuples(res), "0") == 0)
        r = dt_error_set(err, DT_ERR_STATE,
                         "instance '%s' is not Failed, or is leased right now", id);
    PQclear(res);
    return r;
}

dt_status pg_send_message(dt_store *base, const dt_message *m, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    if (m == NULL || m->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "send message: no target instance");
    pthread_mutex_lock(&s->mu);
    bool delivered = false;
    dt_status r = pg_begin(s, err);
    if (r == DT_OK) {
        if (m->reopen)
            r = reopen_tx(s, m->instance_id, err);
        if (r == DT_OK)
            r = pg_insert_message_tx(s, m, NULL, &delivered, err);
        if (r == DT_OK && !delivered)
            r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", m->instance_id);
        if (r == DT_OK)
            r = pg_notify_tx(s, "", true, err);
        if (r == DT_OK)
            r = pg_commit(s, err);
        if (r != DT_OK)
            pg_rollback(s);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status pg_get_instance(dt_store *base, const char *id, dt_arena *arena,
                          dt_instance_state **out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *out = NULL;
    if (id == NULL)
        return dt_error_set(err, DT_ERR_NOT_FOUND, "no instance id given");
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    PGresult *res = NULL;
    dt_status r = pg_read(s, "SELECT " PG_INSTANCE_COLUMNS " FROM instances WHERE instance_id = $1",
                          &p, &res, err, "read instance");
    if (r == DT_OK && PQntuples(res) == 0)
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", id);
    if (r == DT_OK) {
        dt_instance_state *state = dt_arena_alloc(arena, sizeof *state);
        r = state ? pg_read_instance(res, 0, arena, state, err)
                  : dt_error_set(err, DT_ERR_NOMEM, "out of memory reading instance '%s'", id);
        if (r == DT_OK)
            *out = state;
    }
    PQclear(res);
    return r;
}

/* A window read from PostgreSQL ends after this many events, bytes or not, so a statement
 * sums the sizes of a bounded number of rows, not of all the history after FROM_SEQ. */
#define WINDOW_ROWS_MAX 4096

/* pg_read_history: the row check, the generation and the window in one statement (one
 * snapshot): the instance's row joined to the window's events, a row with no event when
 * there are none. The window is the prefix of the events from FROM_SEQ whose running sum of
 * stored bytes stays within MAX_BYTES (octet_length reads a stored value's size, not the
 * value), and its first event whatever its size; each row says whether an event follows
 * it. */
dt_status pg_read_history(dt_store *base, const char *id, size_t from_seq, size_t max_bytes,
                          dt_arena *arena, dt_history_window *out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    pg_int(&p, from_seq > (size_t)INT64_MAX ? INT64_MAX : (int64_t)from_seq);
    /* unbounded (a lease holder's load): all of it, with no sums to take */
    const char *sql = "SELECT i.history_gen, h.seq, h.event, 0 FROM instances i"
                      " LEFT JOIN history h ON h.instance_id = i.instance_id AND h.seq >= $2"
                      " WHERE i.instance_id = $1 ORDER BY h.seq";
    if (max_bytes != 0 && max_bytes <= (size_t)INT64_MAX) {
        pg_int(&p, (int64_t)max_bytes);
        pg_int(&p, WINDOW_ROWS_MAX + 1);   /* one more: is there more? */
        sql = "SELECT i.history_gen, w.seq, w.event, w.more FROM instances i"
              " LEFT JOIN LATERAL (SELECT seq, event, more FROM ("
              "  SELECT seq, event, row_number() OVER o AS rn,"
              "   sum(octet_length(event)) OVER o AS run,"
              "   (lead(seq) OVER o IS NOT NULL)::int AS more"
              "  FROM (SELECT seq, event FROM history"
              "   WHERE instance_id = i.instance_id AND seq >= $2 ORDER BY seq LIMIT $4) h"
              "  WINDOW o AS (ORDER BY seq)) x"
              "  WHERE rn < $4 AND (rn = 1 OR run <= $3)) w ON true"
              " WHERE i.instance_id = $1 ORDER BY w.seq";
    }
    PGresult *res = NULL;
    dt_status r = pg_read(s, sql, &p, &res, err, "read history");
    if (r != DT_OK)
        return r;
    int rows = PQntuples(res);
    if (rows == 0)
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", id);
    size_t n = rows == 1 && pg_col_null(res, 0, 1) ? 0 : (size_t)rows;
    dt_event *v = r == DT_OK && n > 0 ? dt_arena_alloc(arena, n * sizeof *v) : NULL;
    if (r == DT_OK && n > 0 && v == NULL)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading history of '%s'", id);
    for (size_t i = 0; r == DT_OK && i < n; i++) {
        char what[160];
        snprintf(what, sizeof what, "history event %lld of instance '%.100s'",
                 (long long)pg_col_int(res, (int)i, 1), id);
        r = pg_col_event(res, (int)i, 2, arena, &v[i], err, what);
    }
    if (r == DT_OK) {
        out->gen = pg_col_int(res, 0, 0);
        out->events = v;
        out->n = n;
        out->more = n > 0 && pg_col_int(res, (int)n - 1, 3) != 0;
    }
    PQclear(res);
    return r;
}
