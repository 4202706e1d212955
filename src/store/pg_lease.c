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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

#define CANDS_MAX 1024   /* the most one lease looks for */

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

/* A text array literal being built: {"a","b",NULL}. */
typedef struct pg_array {
    char *s;
    size_t n, cap;
    bool ok;
} pg_array;

static void arr_put(pg_array *a, const char *text, size_t len)
{
    if (!a->ok)
        return;
    if (a->n + len + 1 > a->cap) {
        size_t cap = (a->cap ? a->cap * 2 : 256) + len;
        char *s = realloc(a->s, cap);
        if (s == NULL) {
            a->ok = false;
            return;
        }
        a->s = s;
        a->cap = cap;
    }
    memcpy(a->s + a->n, text, len);
    a->n += len;
    a->s[a->n] = '\0';
}

/* arr_add: one element (NULL: SQL NULL), quoted, '"' and '\' escaped. */
static void arr_add(pg_array *a, const char *v)
{
    arr_put(a, a->n > 1 ? "," : "", a->n > 1 ? 1 : 0);
    if (v == NULL) {
        arr_put(a, "NULL", 4);
        return;
    }
    arr_put(a, "\"", 1);
    for (const char *c = v; *c; c++) {
        if (*c == '"' || *c == '\\')
            arr_put(a, "\\", 1);
        arr_put(a, c, 1);
    }
    arr_put(a, "\"", 1);
}

/* filter_arrays: F's names and versions as two parallel array literals, a name once per
 * version it lists (with NULL, any, when it lists none). Both malloc'd. */
static dt_status filter_arrays(const dt_name_filter *f, char **names, char **versions,
                               dt_error *err)
{
    pg_array n = {NULL, 0, 0, true}, v = {NULL, 0, 0, true};
    arr_put(&n, "{", 1);
    arr_put(&v, "{", 1);
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->names[i] ? f->names[i] : "";
        const dt_version_list *vl = f->versions ? &f->versions[i] : NULL;
        if (vl == NULL || vl->n == 0) {
            arr_add(&n, name);
            arr_add(&v, NULL);
        }
        for (size_t k = 0; vl && k < vl->n; k++) {
            arr_add(&n, name);
            arr_add(&v, vl->v[k] ? vl->v[k] : "");
        }
    }
    arr_put(&n, "}", 1);
    arr_put(&v, "}", 1);
    if (!n.ok || !v.ok) {
        free(n.s);
        free(v.s);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a name filter");
    }
    *names = n.s;
    *versions = v.s;
    return DT_OK;
}

/* A candidate found: an instance id (ID, malloc'd) or an activity's row id. */
typedef struct cand {
    char *id;
    int64_t row;
} cand;

/* find_work: up to MAX distinct candidates into C (*N of them), in the order the statement
 * gives: SQL_ANY for any name, SQL_NAMED for NAMES. TEXT: ids are instance ids. */
static dt_status find_work(pg_store *s, const char *sql_any, const char *sql_named, bool text,
                           dt_time now, const dt_name_filter *names, size_t max, cand *c,
                           size_t *n, dt_error *err)
{
    *n = 0;
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
    for (int i = 0; i < rows && *n < max; i++) {
        const char *id = text ? PQgetvalue(res, i, 0) : NULL;
        int64_t row = text ? 0 : pg_col_int(res, i, 0);
        bool seen = false;
        for (size_t k = 0; k < *n && !seen; k++)
            seen = text ? strcmp(c[k].id, id) == 0 : c[k].row == row;
        if (seen)
            continue;
        c[*n] = (cand){text ? strdup(id) : NULL, row};
        if (text && c[*n].id == NULL) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory finding work");
            break;
        }
        (*n)++;
    }
    PQclear(res);
    return r;
}

static void cands_free(cand *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].id);
    free(c);
}

/* ---- orchestrations ------------------------------------------------------------------------- */

/* load_inbox_tx: the visible messages of ITEM, in arrival order, with their ids. A message
 * stored with an execution id hands it to its event (ExecutionStarted keeps its own). */
static dt_status load_inbox_tx(pg_store *s, dt_orch_item *item, dt_time now, dt_error *err)
{
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, item->instance_id);
    pg_int(&p, now);
    PGresult *res = NULL;
    dt_status r = pg_run(s, "SELECT id, event, execution_id FROM inbox"
                            " WHERE instance_id = $1 AND visible_at <= $2 ORDER BY id",
                         &p, &res, err, "read inbox");
    if (r != DT_OK)
        return r;
    size_t n = (size_t)PQntuples(res);
    dt_event *ev = n ? dt_arena_alloc(item->arena, n * sizeof *ev) : NULL;
    int64_t *ids = n ? dt_arena_alloc(item->arena, n * sizeof *ids) : NULL;
    if (n && (ev == NULL || ids == NULL))
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading inbox of '%s'",
                         item->instance_id);
    for (size_t i = 0; r == DT_OK && i < n; i++) {
        ids[i] = pg_col_int(res, (int)i, 0);
        char what[160];
        snprintf(what, sizeof what, "inbox message %lld of instance '%.100s'",
                 (long long)ids[i], item->instance_id);
        r = pg_col_event(res, (int)i, 1, item->arena, &ev[i], err, what);
        if (r == DT_OK && ev[i].type != DT_EVENT_EXECUTION_STARTED &&
            !pg_col_null(res, (int)i, 2)) {
            ev[i].execution_id = pg_col_text(item->arena, res, (int)i, 2, &r);
            if (r != DT_OK)
                dt_error_set(err, r, "out of memory reading inbox of '%s'", item->instance_id);
        }
    }
    PQclear(res);
    if (r == DT_OK && n > 0) {
        item->incoming = ev;
        item->message_ids = ids;
        item->n_incoming = item->n_message_ids = n;
    }
    return r;
}

/* lease_one_tx: lease ITEM's instance (instance_id set) if it is still free, nobody else is
 * taking it and it has a visible message; then its row, history length and inbox. *TAKEN
 * says whether it was leased. The history itself is not read: the holder loads what it
 * lacks. */
static dt_status lease_one_tx(pg_store *s, dt_orch_item *item, const char *owner, dt_time now,
                              dt_time until, bool *taken, dt_error *err)
{
    *taken = false;
    item->lock_token = store_new_token(item->arena, owner);
    item->locked_until = until;
    if (item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing '%s'", item->instance_id);
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, item->instance_id);
    pg_text(&p, item->lock_token);
    pg_int(&p, until);
    pg_int(&p, now);
    PGresult *res = NULL;
    dt_status r = pg_run(s,
                         "UPDATE instances SET lock_owner = $2, lock_expires = $3"
                         " WHERE instance_id = (SELECT instance_id FROM instances"
                         "  WHERE instance_id = $1 AND (lock_owner IS NULL OR lock_expires < $4)"
                         "  FOR UPDATE SKIP LOCKED)"
                         " AND EXISTS (SELECT 1 FROM inbox WHERE instance_id = $1"
                         "  AND visible_at <= $4)"
                         " RETURNING " PG_INSTANCE_COLUMNS ", history_gen",
                         &p, &res, err, "lease instance");
    if (r == DT_OK && PQntuples(res) == 1) {
        r = pg_read_instance(res, 0, item->arena, &item->state, err);
        item->history_gen = pg_col_int(res, 0, 17);
        *taken = r == DT_OK;
    }
    PQclear(res);
    if (r != DT_OK || !*taken)
        return r;
    int64_t len = 0;
    r = pg_history_len_tx(s, item->instance_id, &len, err);
    if (r != DT_OK)
        return r;
    item->history_len = (size_t)len;
    item->past = NULL;
    item->n_past = 0;
    return load_inbox_tx(s, item, now, err);
}

/* new_orch_item: an item for instance ID in an arena of its own; NULL when out of memory. */
static dt_orch_item *new_orch_item(const char *id)
{
    dt_arena *arena = dt_arena_new();
    dt_orch_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
    if (item) {
        item->arena = arena;
        item->instance_id = dt_arena_strdup(arena, id);
    }
    if (item == NULL || item->instance_id == NULL) {
        dt_arena_free(arena);
        return NULL;
    }
    return item;
}

dt_status pg_lease_orchestrations(dt_store *base, const char *owner, dt_time now,
                                  int64_t lease_us, size_t max, const dt_name_filter *names,
                                  dt_orch_item **out, size_t *n_out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    size_t cap = max < CANDS_MAX ? max : CANDS_MAX, n_cands = 0, n = 0;
    cand *c = calloc(cap, sizeof *c);
    if (c == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
    dt_time until = store_lease_end(now, lease_us);
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK)
        r = find_work(s, ORCH_ANY, ORCH_NAMED, true, now, names, cap, c, &n_cands, err);
    for (size_t i = 0; r == DT_OK && i < n_cands; i++) {
        dt_orch_item *item = new_orch_item(c[i].id);
        bool taken = false;
        r = item ? lease_one_tx(s, item, owner, now, until, &taken, err)
                 : dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
        if (r == DT_OK && taken)
            out[n++] = item;
        else
            dt_orch_item_free(item);
    }
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK) {
        pg_rollback(s);
        for (size_t i = 0; i < n; i++) {
            dt_orch_item_free(out[i]);
            out[i] = NULL;
        }
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);
    cands_free(c, n_cands);
    *n_out = n;
    return r;
}

/* ---- activities ------------------------------------------------------------------------------- */

/* lease_activity_tx: lease activity ITEM->id if it is still free and nobody else is taking it
 * (ANY_STATE: one this transaction made, taken as it is); *TAKEN says whether it was. */
static dt_status lease_activity_tx(pg_store *s, dt_activity_item *item, const char *owner,
                                   dt_time now, dt_time until, bool any_state, bool *taken,
                                   dt_error *err)
{
    *taken = false;
    item->lock_token = store_new_token(item->arena, owner);
    item->locked_until = until;
    if (item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activity %lld",
                            (long long)item->id);
    pg_params p = PG_PARAMS_INIT;
    pg_int(&p, item->id);
    pg_text(&p, item->lock_token);
    pg_int(&p, until);
    pg_int(&p, now);
    pg_bool(&p, any_state);
    PGresult *res = NULL;
    dt_status r = pg_run(s,
                         "UPDATE activities SET lock_owner = $2, lock_expires = $3,"
                         " delivery_count = delivery_count + 1"
                         " WHERE id = (SELECT id FROM activities WHERE id = $1"
                         "  AND ($5 OR lock_owner IS NULL OR lock_expires < $4)"
                         "  FOR UPDATE SKIP LOCKED)"
                         " RETURNING instance_id, execution_id, task_id, name, version, input,"
                         " delivery_count, trace_parent, trace_state, tags",
                         &p, &res, err, "lease activity");
    if (r == DT_OK && PQntuples(res) == 1) {
        dt_status cst = DT_OK;
        item->instance_id = pg_col_text(item->arena, res, 0, 0, &cst);
        item->execution_id = pg_col_text(item->arena, res, 0, 1, &cst);
        item->task_id = (int32_t)pg_col_int(res, 0, 2);
        item->name = pg_col_text(item->arena, res, 0, 3, &cst);
        item->version = pg_col_text(item->arena, res, 0, 4, &cst);
        item->input = pg_col_text(item->arena, res, 0, 5, &cst);
        item->delivery_count = (int)pg_col_int(res, 0, 6);
        item->trace_parent = pg_col_text(item->arena, res, 0, 7, &cst);
        item->trace_state = pg_col_text(item->arena, res, 0, 8, &cst);
        item->tags = pg_col_text(item->arena, res, 0, 9, &cst);
        if (cst != DT_OK)
            r = dt_error_set(err, cst, "out of memory leasing activity %lld",
                             (long long)item->id);
        *taken = r == DT_OK;
    }
    PQclear(res);
    return r;
}

static dt_activity_item *new_act_item(int64_t id)
{
    dt_arena *arena = dt_arena_new();
    dt_activity_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
    if (item == NULL) {
        dt_arena_free(arena);
        return NULL;
    }
    item->arena = arena;
    item->id = id;
    return item;
}

dt_status pg_lease_activities(dt_store *base, const char *owner, dt_time now, int64_t lease_us,
                              size_t max, const dt_name_filter *names, dt_activity_item **out,
                              size_t *n_out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    size_t cap = max < CANDS_MAX ? max : CANDS_MAX, n_cands = 0, n = 0;
    cand *c = calloc(cap, sizeof *c);
    if (c == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
    dt_time until = store_lease_end(now, lease_us);
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK)
        r = find_work(s, ACT_ANY, ACT_NAMED, false, now, names, cap, c, &n_cands, err);
    for (size_t i = 0; r == DT_OK && i < n_cands; i++) {
        dt_activity_item *item = new_act_item(c[i].row);
        bool taken = false;
        r = item ? lease_activity_tx(s, item, owner, now, until, false, &taken, err)
                 : dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
        if (r == DT_OK && taken)
            out[n++] = item;
        else
            dt_activity_item_free(item);
    }
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK) {
        pg_rollback(s);
        for (size_t i = 0; i < n; i++) {
            dt_activity_item_free(out[i]);
            out[i] = NULL;
        }
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);
    cands_free(c, n_cands);
    *n_out = n;
    return r;
}

/* ---- what a commit made ready --------------------------------------------------------------- */

dt_status pg_lease_ready_tx(pg_store *s, const char *const *ids, size_t n_ids,
                            const int64_t *acts, size_t n_acts, dt_commit_lease *L,
                            dt_error *err)
{
    dt_time until = store_lease_end(L->now, L->lease_us);
    for (size_t i = 0; i < n_acts && L->n_activities < L->max_activities; i++) {
        dt_activity_item *item = new_act_item(acts[i]);
        bool taken = false;
        dt_status r = item ? lease_activity_tx(s, item, L->owner, L->now, until, true, &taken,
                                               err)
                           : dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
        if (r != DT_OK || !taken) {
            dt_activity_item_free(item);
            if (r != DT_OK)
                return r;
            continue;
        }
        L->activities[L->n_activities++] = item;
    }
    for (size_t i = 0; i < n_ids && L->n_orchestrations < L->max_orchestrations; i++) {
        dt_orch_item *item = new_orch_item(ids[i]);
        bool taken = false;
        dt_status r = item ? lease_one_tx(s, item, L->owner, L->now, until, &taken, err)
                           : dt_error_set(err, DT_ERR_NOMEM,
                                          "out of memory leasing orchestrations");
        if (r != DT_OK || !taken) {
            dt_orch_item_free(item);
            if (r != DT_OK)
                return r;
            continue;
        }
        L->orchestrations[L->n_orchestrations++] = item;
    }
    return DT_OK;
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
        pg_notify_tx(s, "", NULL);   /* the work is free again: a missed wake-up waits a poll */
    pthread_mutex_unlock(&s->mu);
    if (r == DT_OK && strcmp(PQcmdTuples(res), "0") == 0) {
        if (text_key)
            r = dt_error_set(err, DT_ERR_LEASE_LOST,
                             "%s: the lease on '%s' is no longer held", what, text_key);
        else
            r = dt_error_set(err, DT_ERR_LEASE_LOST,
                             "%s: the lease on activity %lld is no longer held", what,
                             (long long)int_key);
    }
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
