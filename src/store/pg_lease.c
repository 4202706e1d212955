/* pg_lease.c — the PostgreSQL backend's leases: finding work, handing out orchestration and
 * activity work items, the leases a commit takes of the work it made ready, renewing and
 * abandoning. A lease is a token in the row's lock_owner and an expiry in lock_expires, as in
 * SQLite's. Several nodes share the database: a candidate is taken with a row lock that skips
 * rows another node is taking (FOR UPDATE SKIP LOCKED) and only while it is still free, so one
 * instance or activity goes to one of them and nobody waits on another's transaction.
 *
 * Finding work is one statement per lease. A taker of any name reads along the visible-time
 * index; a filtered one looks up each of its names (and versions) through the name index, a
 * lateral top-k per name, merged by visible time, so other names' backlogs are never read. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* ---- finding work --------------------------------------------------------------------------- */

/* The candidate statements: $1 now, $2 the limit; the named ones $3 the names and $4 their
 * versions (NULL: any), parallel text arrays. Rows are (id, visible_at), an instance once per
 * visible message: the caller keeps each once. */
static const char *const ORCH_ANY =
    "SELECT m.instance_id, m.visible_at FROM inbox m"
    " JOIN instances i ON i.instance_id = m.instance_id"
    " WHERE m.visible_at <= $1 AND (i.lock_owner IS NULL OR i.lock_expires < $1)"
    " ORDER BY m.visible_at, m.id LIMIT $2";
static const char *const ORCH_NAMED =
    "SELECT c.instance_id, c.visible_at FROM unnest($3::text[], $4::text[]) AS f(name, version)"
    " CROSS JOIN LATERAL (SELECT m.instance_id, m.visible_at, m.id FROM inbox m"
    "  JOIN instances i ON i.instance_id = m.instance_id"
    "  WHERE m.name = f.name AND m.visible_at <= $1"
    "  AND (i.lock_owner IS NULL OR i.lock_expires < $1)"
    "  AND (f.version IS NULL OR COALESCE(i.version, '') = f.version)"
    "  ORDER BY m.visible_at LIMIT $2) c"
    " UNION ALL"   /* a terminate is taken whatever the filter: the hub ends the instance */
    " SELECT t.instance_id, t.visible_at FROM (SELECT m.instance_id, m.visible_at FROM inbox m"
    "  JOIN instances i ON i.instance_id = m.instance_id"
    "  WHERE m.kind = 5 AND m.visible_at <= $1"
    "  AND (i.lock_owner IS NULL OR i.lock_expires < $1)"
    "  ORDER BY m.visible_at LIMIT $2) t"
    " ORDER BY 2 LIMIT $2";
static const char *const ACT_ANY =
    "SELECT id, visible_at FROM activities WHERE visible_at <= $1"
    " AND (lock_owner IS NULL OR lock_expires < $1) ORDER BY id LIMIT $2";
static const char *const ACT_NAMED =
    "SELECT c.id, c.visible_at FROM unnest($3::text[], $4::text[]) AS f(name, version)"
    " CROSS JOIN LATERAL (SELECT a.id, a.visible_at FROM activities a"
    "  WHERE a.name = f.name AND a.visible_at <= $1"
    "  AND (a.lock_owner IS NULL OR a.lock_expires < $1)"
    "  AND (f.version IS NULL OR COALESCE(a.version, '') = f.version)"
    "  ORDER BY a.visible_at, a.id LIMIT $2) c"
    " ORDER BY 2, 1 LIMIT $2";

/* filter_arrays: F's names and versions as two parallel array literals, a name once per
 * version it lists (with NULL, any, when it lists none). Both malloc'd. */
static dt_status filter_arrays(const dt_name_filter *f, char **names, char **versions,
                               dt_error *err)
{
    pg_literal n = {NULL, 0, 0, true}, v = {NULL, 0, 0, true};
    pg_literal_put(&n, "{", 1);
    pg_literal_put(&v, "{", 1);
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->names[i] ? f->names[i] : "";
        const dt_version_list *vl = f->versions ? &f->versions[i] : NULL;
        if (vl == NULL || vl->n == 0) {
            pg_literal_add(&n, name);
            pg_literal_add(&v, NULL);
        }
        for (size_t k = 0; vl && k < vl->n; k++) {
            pg_literal_add(&n, name);
            pg_literal_add(&v, vl->v[k] ? vl->v[k] : "");
        }
    }
    pg_literal_put(&n, "}", 1);
    pg_literal_put(&v, "}", 1);
    if (!n.ok || !v.ok) {
        free(n.s);
        free(v.s);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a name filter");
    }
    *names = n.s;
    *versions = v.s;
    return DT_OK;
}

/* find_work: distinct candidates into C, as many as it has room for, in the order the
 * statement gives: SQL_ANY for any name, SQL_NAMED for NAMES. TEXT: ids are instance ids. */
static dt_status find_work(pg_store *s, const char *sql_any, const char *sql_named, bool text,
                           dt_time now, const dt_name_filter *names, store_cands *c,
                           dt_error *err)
{
    size_t max = c->cap;
    char *an = NULL, *av = NULL;
    dt_status r = names ? filter_arrays(names, &an, &av, err) : DT_OK;
    if (r != DT_OK)
        return r;
    pg_params p = PG_PARAMS_INIT;
    pg_int(&p, now);
    /* rows are messages, several of one instance maybe (a fan-in's results): read past MAX
     * so that MAX distinct instances are usually among them */
    pg_int(&p, text ? (int64_t)max * 4 + 16 : (int64_t)max);
    if (names) {
        pg_text(&p, an);
        pg_text(&p, av);
    }
    PGresult *res = NULL;
    r = pg_run(s, names ? sql_named : sql_any, &p, &res, err, "find work");
    free(an);
    free(av);
    int rows = r == DT_OK ? PQntuples(res) : 0;
    for (int i = 0; i < rows && c->n < max; i++) {
        const char *id = text ? PQgetvalue(res, i, 0) : NULL;
        int64_t row = text ? 0 : pg_col_int(res, i, 0);
        if (store_cands_has(c, id, row))
            continue;
        if (!store_cands_add(c, id, row, 0)) {   /* all at 0: kept in the statement's order */
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory finding work");
            break;
        }
    }
    PQclear(res);
    return r;
}

/* ---- orchestrations ------------------------------------------------------------------------- */

/* Leasing a set of candidate instances is two statements. ORCH_LEASE takes them: $1 the ids
 * and $2 their tokens (parallel text arrays, in the order to hand them out), $3 the lease's
 * end, $4 now, $5 the most to take. Each is taken only if it is still free, nobody else is
 * taking it (SKIP LOCKED) and it has a visible message. A row per instance taken: its columns
 * (PG_INSTANCE_COLUMNS), its history generation, its place among the candidates. */
static const char *const ORCH_LEASE =
    "WITH t AS (SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY"
    "  AS t(id, token, ord)),"
    " c AS (SELECT i.instance_id AS cid FROM instances i JOIN t ON t.id = i.instance_id"
    "  WHERE (i.lock_owner IS NULL OR i.lock_expires < $4)"
    "  AND EXISTS (SELECT 1 FROM inbox m WHERE m.instance_id = i.instance_id"
    "   AND m.visible_at <= $4)"
    "  ORDER BY t.ord LIMIT $5 FOR UPDATE OF i SKIP LOCKED),"
    " l AS (UPDATE instances i SET lock_owner = t.token, lock_expires = $3 FROM c, t"
    "  WHERE i.instance_id = c.cid AND t.id = i.instance_id"
    "  RETURNING " PG_INSTANCE_COLUMNS ", i.history_gen, t.ord)"
    " SELECT * FROM l ORDER BY ord";

/* ORCH_LOAD then reads, for the instances taken ($1, in order; $2 now), each one's history
 * length (seqs are dense from 0: the next seq is the length; one seek on the primary key) and
 * its visible messages: a row per message (one with none when it has none), in instance then
 * arrival order. It must be a statement of its own: a lease's snapshot is taken before it
 * waits for and locks its rows, so it may predate the commit of the episode that released
 * one of them, whose appends and deletes only a later statement sees. The history itself is
 * not read: the holder loads what it lacks. */
static const char *const ORCH_LOAD =
    "SELECT t.ord, (SELECT COALESCE(MAX(h.seq) + 1, 0) FROM history h"
    "  WHERE h.instance_id = t.id), m.id, m.event, m.execution_id"
    " FROM unnest($1::text[]) WITH ORDINALITY AS t(id, ord)"
    " LEFT JOIN inbox m ON m.instance_id = t.id AND m.visible_at <= $2"
    " ORDER BY t.ord, m.id";
enum { COL_GEN = 17, COL_ORD };                               /* of ORCH_LEASE */
enum { LOAD_ORD, LOAD_LEN, COL_MSG_ID, COL_MSG_EVENT, COL_MSG_EXEC };   /* of ORCH_LOAD */

/* read_inbox: rows FROM .. TO-1 of R (ORCH_LOAD's, one instance's) as ITEM's incoming
 * messages, with their ids. A message stored with an execution id hands it to its event
 * (ExecutionStarted keeps its own). */
static dt_status read_inbox(const PGresult *r, int from, int to, dt_orch_item *item,
                            dt_error *err)
{
    size_t n = pg_col_null(r, from, COL_MSG_ID) ? 0 : (size_t)(to - from);
    if (n == 0)
        return DT_OK;
    dt_event *ev = dt_arena_alloc(item->arena, n * sizeof *ev);
    int64_t *ids = dt_arena_alloc(item->arena, n * sizeof *ids);
    if (ev == NULL || ids == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading inbox of '%s'",
                            item->instance_id);
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        int row = from + (int)i;
        ids[i] = pg_col_int(r, row, COL_MSG_ID);
        char what[160];
        snprintf(what, sizeof what, "inbox message %lld of instance '%.100s'",
                 (long long)ids[i], item->instance_id);
        st = pg_col_event(r, row, COL_MSG_EVENT, item->arena, &ev[i], err, what);
        if (st == DT_OK && ev[i].type != DT_EVENT_EXECUTION_STARTED &&
            !pg_col_null(r, row, COL_MSG_EXEC)) {
            ev[i].execution_id = pg_col_text(item->arena, r, row, COL_MSG_EXEC, &st);
            if (st != DT_OK)
                dt_error_set(err, st, "out of memory reading inbox of '%s'", item->instance_id);
        }
    }
    if (st == DT_OK) {
        item->incoming = ev;
        item->message_ids = ids;
        item->n_incoming = item->n_message_ids = n;
    }
    return st;
}

/* new_orch_item: an item for instance ID in an arena of its own, with a fresh token of OWNER
 * until UNTIL; NULL when out of memory. */
static dt_orch_item *new_orch_item(const char *id, const char *owner, dt_time until)
{
    dt_arena *arena = dt_arena_new();
    dt_orch_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
    if (item) {
        item->arena = arena;
        item->instance_id = dt_arena_strdup(arena, id);
        item->lock_token = store_new_token(arena, owner);
        item->locked_until = until;
    }
    if (item == NULL || item->instance_id == NULL || item->lock_token == NULL) {
        dt_arena_free(arena);
        return NULL;
    }
    return item;
}

/* lease_orchs_tx: lease those of the N instances IDS that are free, untaken and have work
 * (ORCH_LEASE), the first MAX, into OUT (*N_OUT of them, in the order of IDS; the caller frees
 * them with dt_orch_item_free), inside the caller's transaction. Nothing in OUT on
 * failure. */
static dt_status lease_orchs_tx(pg_store *s, const char *const *ids, size_t n,
                                const char *owner, dt_time now, dt_time until, size_t max,
                                dt_orch_item **out, size_t *n_out, dt_error *err)
{
    *n_out = 0;
    if (n == 0 || max == 0)
        return DT_OK;
    dt_orch_item **items = calloc(n, sizeof *items);
    pg_literal a_ids = {NULL, 0, 0, true}, a_tokens = {NULL, 0, 0, true};
    dt_status r = items ? DT_OK
                        : dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
    pg_literal_put(&a_ids, "{", 1);
    pg_literal_put(&a_tokens, "{", 1);
    for (size_t i = 0; r == DT_OK && i < n; i++) {
        if ((items[i] = new_orch_item(ids[i], owner, until)) == NULL) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
            break;
        }
        pg_literal_add(&a_ids, ids[i]);
        pg_literal_add(&a_tokens, items[i]->lock_token);
    }
    pg_literal_put(&a_ids, "}", 1);
    pg_literal_put(&a_tokens, "}", 1);
    if (r == DT_OK && (!a_ids.ok || !a_tokens.ok))
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
    PGresult *res = NULL;
    if (r == DT_OK) {
        pg_params p = PG_PARAMS_INIT;
        pg_text(&p, a_ids.s);
        pg_text(&p, a_tokens.s);
        pg_int(&p, until);
        pg_int(&p, now);
        pg_int(&p, (int64_t)max);
        r = pg_run(s, ORCH_LEASE, &p, &res, err, "lease instances");
    }
    int rows = r == DT_OK ? PQntuples(res) : 0;
    pg_literal taken = {NULL, 0, 0, true};
    pg_literal_put(&taken, "{", 1);
    for (int row = 0; r == DT_OK && row < rows; row++) {
        int64_t ord = pg_col_int(res, row, COL_ORD);
        assert(ord >= 1 && (size_t)ord <= n && items[ord - 1] != NULL);
        dt_orch_item *item = items[ord - 1];
        items[ord - 1] = NULL;
        out[(*n_out)++] = item;   /* freed with the others below if a later row fails */
        r = pg_read_instance(res, row, item->arena, &item->state, err);
        item->history_gen = pg_col_int(res, row, COL_GEN);
        pg_literal_add(&taken, item->instance_id);
    }
    pg_literal_put(&taken, "}", 1);
    PQclear(res);
    res = NULL;
    if (r == DT_OK && !taken.ok)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
    if (r == DT_OK && *n_out > 0) {
        pg_params p = PG_PARAMS_INIT;
        pg_text(&p, taken.s);
        pg_int(&p, now);
        r = pg_run(s, ORCH_LOAD, &p, &res, err, "read leased instances");
    }
    rows = r == DT_OK && res ? PQntuples(res) : 0;
    for (int row = 0; r == DT_OK && row < rows;) {
        int64_t ord = pg_col_int(res, row, LOAD_ORD);
        int end = row + 1;
        while (end < rows && pg_col_int(res, end, LOAD_ORD) == ord)
            end++;
        assert(ord >= 1 && (size_t)ord <= *n_out);
        dt_orch_item *item = out[ord - 1];
        item->history_len = (size_t)pg_col_int(res, row, LOAD_LEN);
        r = read_inbox(res, row, end, item, err);
        row = end;
    }
    free(taken.s);
    PQclear(res);
    for (size_t i = 0; items && i < n; i++)
        dt_orch_item_free(items[i]);   /* the candidates not taken */
    free(items);
    free(a_ids.s);
    free(a_tokens.s);
    if (r != DT_OK) {
        for (size_t i = 0; i < *n_out; i++) {
            dt_orch_item_free(out[i]);
            out[i] = NULL;
        }
        *n_out = 0;
    }
    return r;
}

/* Finding candidates takes no transaction, so a taker that finds nothing costs one round
 * trip; leasing what it found is a transaction (its BEGIN sent with the lease). */
dt_status pg_lease_orchestrations(dt_store *base, const char *owner, dt_time now,
                                  int64_t lease_us, size_t max, const dt_name_filter *names,
                                  dt_orch_item **out, size_t *n_out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    store_cands c;
    dt_status r = store_cands_make(max, &c, err);
    if (r != DT_OK)
        return r;
    const char **ids = calloc(c.cap, sizeof *ids);
    if (ids == NULL) {
        store_cands_free(&c);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
    }
    dt_time until = store_lease_end(now, lease_us);
    pthread_mutex_lock(&s->mu);
    r = find_work(s, ORCH_ANY, ORCH_NAMED, true, now, names, &c, err);
    for (size_t i = 0; i < c.n; i++)
        ids[i] = c.c[i].id;
    if (r == DT_OK && c.n > 0 && (r = pg_begin(s, err)) == DT_OK) {
        r = lease_orchs_tx(s, ids, c.n, owner, now, until, max, out, n_out, err);
        if (r == DT_OK)
            r = pg_commit(s, err);
        if (r != DT_OK) {
            pg_rollback(s);
            for (size_t i = 0; i < *n_out; i++) {
                dt_orch_item_free(out[i]);
                out[i] = NULL;
            }
            *n_out = 0;
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(ids);
    store_cands_free(&c);
    return r;
}

/* ---- activities ------------------------------------------------------------------------------- */

/* One statement leases a set of activities: $1 their row ids and $2 their tokens (parallel
 * arrays, in the order to hand them out), $3 the lease's end, $4 now, $5 true to take them
 * whatever their state (rows the caller's transaction just made), $6 the most to take. Each is
 * taken only if it is still free (or $5) and nobody else is taking it; a row per activity
 * taken, in order. */
static const char *const ACT_LEASE =
    "WITH t AS (SELECT * FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY"
    "  AS t(id, token, ord)),"
    " c AS (SELECT a.id AS cid FROM activities a JOIN t ON t.id = a.id"
    "  WHERE ($5 OR a.lock_owner IS NULL OR a.lock_expires < $4)"
    "  ORDER BY t.ord LIMIT $6 FOR UPDATE OF a SKIP LOCKED),"
    " l AS (UPDATE activities a SET lock_owner = t.token, lock_expires = $3,"
    "  delivery_count = a.delivery_count + 1 FROM c, t"
    "  WHERE a.id = c.cid AND t.id = a.id"
    "  RETURNING t.ord, a.instance_id, a.execution_id, a.task_id, a.name, a.version, a.input,"
    "  a.delivery_count, a.trace_parent, a.trace_state, a.tags)"
    " SELECT * FROM l ORDER BY ord";

/* new_act_item: an item for activity row ID in an arena of its own, with a fresh token of
 * OWNER until UNTIL; NULL when out of memory. */
static dt_activity_item *new_act_item(int64_t id, const char *owner, dt_time until)
{
    dt_arena *arena = dt_arena_new();
    dt_activity_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
    if (item) {
        item->arena = arena;
        item->id = id;
        item->lock_token = store_new_token(arena, owner);
        item->locked_until = until;
    }
    if (item == NULL || item->lock_token == NULL) {
        dt_arena_free(arena);
        return NULL;
    }
    return item;
}

/* read_activity: row ROW of R (ACT_LEASE's, from column 1) into ITEM. */
static dt_status read_activity(const PGresult *r, int row, dt_activity_item *item,
                               dt_error *err)
{
    dt_status st = DT_OK;
    item->instance_id = pg_col_text(item->arena, r, row, 1, &st);
    item->execution_id = pg_col_text(item->arena, r, row, 2, &st);
    item->task_id = (int32_t)pg_col_int(r, row, 3);
    item->name = pg_col_text(item->arena, r, row, 4, &st);
    item->version = pg_col_text(item->arena, r, row, 5, &st);
    item->input = pg_col_text(item->arena, r, row, 6, &st);
    item->delivery_count = (int)pg_col_int(r, row, 7);
    item->trace_parent = pg_col_text(item->arena, r, row, 8, &st);
    item->trace_state = pg_col_text(item->arena, r, row, 9, &st);
    item->tags = pg_col_text(item->arena, r, row, 10, &st);
    return st == DT_OK ? DT_OK
                       : dt_error_set(err, st, "out of memory leasing activity %lld",
                                      (long long)item->id);
}

/* lease_acts_tx: lease those of the N activity rows ROWS that are free (ANY_STATE: rows this
 * transaction made, taken as they are) and untaken, the first MAX, into OUT (*N_OUT of them, in
 * the order of ROWS). One statement, as lease_orchs_tx. Nothing in OUT on failure. */
static dt_status lease_acts_tx(pg_store *s, const int64_t *rows_in, size_t n, const char *owner,
                               dt_time now, dt_time until, bool any_state, size_t max,
                               dt_activity_item **out, size_t *n_out, dt_error *err)
{
    *n_out = 0;
    if (n == 0 || max == 0)
        return DT_OK;
    dt_activity_item **items = calloc(n, sizeof *items);
    char *a_ids = NULL;
    pg_literal a_tokens = {NULL, 0, 0, true};
    dt_status r = items ? pg_int_array(rows_in, n, &a_ids, err)
                        : dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
    pg_literal_put(&a_tokens, "{", 1);
    for (size_t i = 0; r == DT_OK && i < n; i++) {
        if ((items[i] = new_act_item(rows_in[i], owner, until)) == NULL) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
            break;
        }
        pg_literal_add(&a_tokens, items[i]->lock_token);
    }
    pg_literal_put(&a_tokens, "}", 1);
    if (r == DT_OK && !a_tokens.ok)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
    PGresult *res = NULL;
    if (r == DT_OK) {
        pg_params p = PG_PARAMS_INIT;
        pg_text(&p, a_ids);
        pg_text(&p, a_tokens.s);
        pg_int(&p, until);
        pg_int(&p, now);
        pg_bool(&p, any_state);
        pg_int(&p, (int64_t)max);
        r = pg_run(s, ACT_LEASE, &p, &res, err, "lease activities");
    }
    int rows = r == DT_OK ? PQntuples(res) : 0;
    for (int row = 0; r == DT_OK && row < rows; row++) {
        int64_t ord = pg_col_int(res, row, 0);
        assert(ord >= 1 && (size_t)ord <= n);
        dt_activity_item *item = items[ord - 1];
        items[ord - 1] = NULL;
        out[(*n_out)++] = item;
        r = read_activity(res, row, item, err);
    }
    PQclear(res);
    for (size_t i = 0; items && i < n; i++)
        dt_activity_item_free(items[i]);   /* the candidates not taken */
    free(items);
    free(a_ids);
    free(a_tokens.s);
    if (r != DT_OK) {
        for (size_t i = 0; i < *n_out; i++) {
            dt_activity_item_free(out[i]);
            out[i] = NULL;
        }
        *n_out = 0;
    }
    return r;
}

dt_status pg_lease_activities(dt_store *base, const char *owner, dt_time now, int64_t lease_us,
                              size_t max, const dt_name_filter *names, dt_activity_item **out,
                              size_t *n_out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    store_cands c;
    dt_status r = store_cands_make(max, &c, err);
    if (r != DT_OK)
        return r;
    int64_t *rows = calloc(c.cap, sizeof *rows);
    if (rows == NULL) {
        store_cands_free(&c);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
    }
    dt_time until = store_lease_end(now, lease_us);
    pthread_mutex_lock(&s->mu);
    r = find_work(s, ACT_ANY, ACT_NAMED, false, now, names, &c, err);
    for (size_t i = 0; i < c.n; i++)
        rows[i] = c.c[i].row;
    if (r == DT_OK)
        r = lease_acts_tx(s, rows, c.n, owner, now, until, false, max, out, n_out, err);
    pthread_mutex_unlock(&s->mu);
    free(rows);
    store_cands_free(&c);
    return r;
}

/* ---- what a commit made ready --------------------------------------------------------------- */

dt_status pg_lease_ready_tx(pg_store *s, const char *const *ids, size_t n_ids,
                            const int64_t *acts, size_t n_acts, dt_commit_lease *L,
                            dt_error *err)
{
    dt_time until = store_lease_end(L->now, L->lease_us);
    size_t got = 0;
    dt_status r = lease_acts_tx(s, acts, n_acts, L->owner, L->now, until, true,
                                L->max_activities - L->n_activities,
                                L->activities + L->n_activities, &got, err);
    if (r != DT_OK)
        return r;
    L->n_activities += got;
    r = lease_orchs_tx(s, ids, n_ids, L->owner, L->now, until,
                       L->max_orchestrations - L->n_orchestrations,
                       L->orchestrations + L->n_orchestrations, &got, err);
    if (r == DT_OK)
        L->n_orchestrations += got;
    return r;
}

/* ---- renew and abandon ---------------------------------------------------------------------- */

/* token_update: SQL ($1 the key, text or number, $2 the token, $3 a time) in its own
 * transaction; DT_ERR_LEASE_LOST when no row matched the token. NOTIFY: the other nodes are
 * told (work given back). */
static dt_status token_update(pg_store *s, const char *sql, const char *text_key,
                              int64_t int_key, const char *token, dt_time t, bool notify,
                              dt_error *err, const char *what)
{
    pg_params p = PG_PARAMS_INIT;
    if (text_key)
        pg_text(&p, text_key);
    else
        pg_int(&p, int_key);
    pg_text(&p, token);
    pg_int(&p, t);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_run(s, sql, &p, &res, err, what);
    if (r == DT_OK && notify && strcmp(PQcmdTuples(res), "0") != 0)
        pg_notify_tx(s, "", true, NULL);   /* the work is free again: a missed wake-up waits a poll */
    pthread_mutex_unlock(&s->mu);
    if (r == DT_OK && strcmp(PQcmdTuples(res), "0") == 0)
        r = store_lease_lost(what, text_key, int_key, err);
    PQclear(res);
    return r;
}

dt_status pg_renew_orchestration(dt_store *base, const dt_orch_item *item, dt_time until,
                                 dt_error *err)
{
    if (item == NULL || item->instance_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "renew: not a leased work item");
    return token_update((pg_store *)base,
                        "UPDATE instances SET lock_expires = $3"
                        " WHERE instance_id = $1 AND lock_owner = $2",
                        item->instance_id, 0, item->lock_token, until, false, err, "renew");
}

dt_status pg_renew_activity(dt_store *base, const dt_activity_item *item, dt_time until,
                            dt_error *err)
{
    if (item == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "renew: not a leased activity");
    return token_update((pg_store *)base,
                        "UPDATE activities SET lock_expires = $3 WHERE id = $1 AND lock_owner = $2",
                        NULL, item->id, item->lock_token, until, false, err, "renew");
}

/* An abandon with a retry time keeps the row leased by nobody ('') until then. */
dt_status pg_abandon_orchestration(dt_store *base, const dt_orch_item *item, dt_time retry_at,
                                   dt_error *err)
{
    if (item == NULL || item->instance_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "abandon: not a leased work item");
    return token_update((pg_store *)base,
                        "UPDATE instances SET lock_expires = $3,"
                        " lock_owner = CASE WHEN $3::bigint > 0 THEN '' ELSE NULL END"
                        " WHERE instance_id = $1 AND lock_owner = $2",
                        item->instance_id, 0, item->lock_token, retry_at > 0 ? retry_at : 0,
                        true, err, "abandon");
}

dt_status pg_abandon_activity(dt_store *base, const dt_activity_item *item, dt_time retry_at,
                              dt_error *err)
{
    if (item == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "abandon: not a leased activity");
    /* the row stays: the activity is delivered again, to whoever leases next */
    return token_update((pg_store *)base,
                        "UPDATE activities SET lock_expires = $3,"
                        " lock_owner = CASE WHEN $3::bigint > 0 THEN '' ELSE NULL END"
                        " WHERE id = $1 AND lock_owner = $2",
                        NULL, item->id, item->lock_token, retry_at > 0 ? retry_at : 0, true,
                        err, "abandon");
}
