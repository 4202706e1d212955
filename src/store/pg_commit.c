/* pg_commit.c — the PostgreSQL backend's group commit: many episode results, activity
 * results, entity steps and starts in one transaction, so one WAL flush covers them all
 * (synchronous_commit on: a commit is durable when it returns; its ticket, as SQLite's, only
 * lets the hub's reads wait until the hub has told of its outcome). Each entry runs inside a savepoint: an entry whose lease is gone (or whose
 * data cannot be stored) is rolled back alone and the others still apply; a failure of the
 * database itself rolls back the whole batch. The work the batch made ready is leased in the
 * same transaction when the caller asks (dt_commit_lease), as in SQLite's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* changed: how many rows RES's statement changed (0 when there is no result). */
static long changed(PGresult *res)
{
    return res ? strtol(PQcmdTuples(res), NULL, 10) : 0;
}

/* put_be32: V as 4 big-endian bytes at P (PostgreSQL's binary formats). */
static uint8_t *put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* pg_type's OIDs of the element types our binary array parameters carry */
#define INT8_OID 20
#define TEXT_OID 25
#define BYTEA_OID 17

/* A PostgreSQL array parameter in binary format, built one element at a time: one dimension
 * (lower bound 1), then each element's length (-1: NULL) and bytes; an empty array has no
 * dimensions. FAILED: out of memory, or over INT32_MAX bytes. */
typedef struct pg_array {
    uint8_t *buf;
    size_t len, cap;
    uint32_t n, oid;
    bool nulls, failed;
} pg_array;

static void arr_put(pg_array *a, const void *v, size_t len)
{
    if (a->failed)
        return;
    if (len > INT32_MAX - a->len) {
        a->failed = true;
        return;
    }
    uint8_t *b = dt_grow(a->buf, &a->cap, a->len + len, 1);
    if (b == NULL) {
        a->failed = true;
        return;
    }
    a->buf = b;
    memcpy(a->buf + a->len, v, len);
    a->len += len;
}

static void arr_be32(pg_array *a, uint32_t v)
{
    uint8_t b[4];
    put_be32(b, v);
    arr_put(a, b, 4);
}

/* arr_start: an array of OID's elements; its 20 bytes of header, the count and the NULLs
 * flag filled in by arr_end */
static void arr_start(pg_array *a, uint32_t oid)
{
    *a = (pg_array){.oid = oid};
    for (int i = 0; i < 5; i++)
        arr_be32(a, i == 0 || i == 4 ? 1 : 0);
}

static void arr_elem(pg_array *a, const void *v, size_t len)
{
    if (len > INT32_MAX) {
        a->failed = true;
        return;
    }
    arr_be32(a, (uint32_t)len);
    arr_put(a, v, len);
    a->n++;
}

static void arr_text(pg_array *a, const char *v)
{
    if (v) {
        arr_elem(a, v, strlen(v));
        return;
    }
    arr_be32(a, UINT32_MAX);   /* -1: NULL */
    a->nulls = true;
    a->n++;
}

static void arr_int(pg_array *a, int64_t v)
{
    uint8_t b[8];
    put_be32(put_be32(b, (uint32_t)((uint64_t)v >> 32)), (uint32_t)v);
    arr_elem(a, b, 8);
}

/* arr_end: the array complete, or an error (nothing to free then) naming WHAT */
static dt_status arr_end(pg_array *a, dt_error *err, const char *what)
{
    if (!a->failed && a->buf == NULL)
        a->failed = true;
    if (a->failed) {
        free(a->buf);
        *a = (pg_array){0};
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for %s (or over 2 GiB)", what);
    }
    if (a->n == 0) {   /* no dimensions: 0, no NULLs, the element type */
        put_be32(put_be32(put_be32(a->buf, 0), 0), a->oid);
        a->len = 12;
    } else {
        put_be32(a->buf + 4, a->nulls ? 1 : 0);
        put_be32(a->buf + 8, a->oid);
        put_be32(a->buf + 12, a->n);
    }
    return DT_OK;
}

/* bytea_array: the N events EV encoded as one bytea[] parameter, malloc'd into *OUT. */
static dt_status bytea_array(const dt_event *ev, size_t n, uint8_t **out, size_t *out_len,
                             dt_error *err)
{
    pg_array a;
    arr_start(&a, BYTEA_OID);
    for (size_t i = 0; i < n && !a.failed; i++) {
        uint8_t *blob = NULL;
        size_t len = 0;
        dt_status r = store_encode_event(&ev[i], &blob, &len, err);
        if (r != DT_OK) {
            free(a.buf);
            return r;
        }
        if (len > INT32_MAX) {
            free(blob);
            free(a.buf);
            return dt_error_set(err, DT_ERR_INVALID_ARG, "event %zu is too large to store", i);
        }
        arr_elem(&a, blob, len);
        free(blob);
    }
    dt_status r = arr_end(&a, err, "the events to store");
    *out = a.buf;
    *out_len = a.len;
    return r;
}

/* An episode's new activities as ten array parameters, one per column of ACTIVITY_ROWS. */
enum { ACT_COLS = 10 };
typedef struct activity_cols {
    pg_array col[ACT_COLS];
} activity_cols;

static void activity_cols_free(activity_cols *c)
{
    for (int i = 0; i < ACT_COLS; i++)
        free(c->col[i].buf);
}

/* activity_cols_make: EP's activities (of instance ID unless they name another) in *C, which
 * the caller frees (activity_cols_free), on error too. */
static dt_status activity_cols_make(const char *id, const dt_episode *ep, activity_cols *c,
                                    dt_error *err)
{
    static const uint32_t oid[ACT_COLS] = {TEXT_OID, TEXT_OID, INT8_OID, TEXT_OID, TEXT_OID,
                                           TEXT_OID, INT8_OID, TEXT_OID, TEXT_OID, TEXT_OID};
    for (int i = 0; i < ACT_COLS; i++)
        arr_start(&c->col[i], oid[i]);
    for (size_t i = 0; i < ep->n_activities; i++) {
        const dt_new_activity *a = &ep->activities[i];
        const dt_event *e = a->scheduled;
        if (e == NULL)
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "activity for instance '%s' has no TaskScheduled event", id);
        arr_text(&c->col[0], a->instance_id ? a->instance_id : id);
        arr_text(&c->col[1], a->execution_id);
        arr_int(&c->col[2], e->event_id);
        arr_text(&c->col[3], e->name);
        arr_text(&c->col[4], e->version);
        arr_text(&c->col[5], e->input);
        arr_int(&c->col[6], a->visible_at);
        arr_text(&c->col[7], e->trace_parent);
        arr_text(&c->col[8], e->trace_state);
        arr_text(&c->col[9], e->tags);
    }
    for (int i = 0; i < ACT_COLS; i++) {
        dt_status r = arr_end(&c->col[i], err, "the activities to store");
        if (r != DT_OK)
            return r;
    }
    return DT_OK;
}

static void activity_cols_bind(pg_params *p, const activity_cols *c)
{
    for (int i = 0; i < ACT_COLS; i++)
        pg_blob(p, c->col[i].buf, c->col[i].len);
}

/* The activities' rows from the ten arrays $A.. (activity_cols, in its order) */
#define ACTIVITY_ROWS(A, B, C, D, E, F, G, H, I, J)                                            \
    "INSERT INTO activities (instance_id, execution_id, task_id, name, version, input,"      \
    " visible_at, trace_parent, trace_state, tags) SELECT * FROM unnest(" A "::text[], " B    \
    "::text[], " C "::bigint[], " D "::text[], " E "::text[], " F "::text[], " G "::bigint[], " \
    H "::text[], " I "::text[], " J "::text[])"

/* append_history_tx: the episode's new events in one statement, their seqs following on. */
static dt_status append_history_tx(pg_store *s, const char *id, const dt_episode *ep,
                                   dt_error *err)
{
    if (ep->n_append == 0)
        return DT_OK;
    /* seqs stay dense from 0 (after a reset too): item->history_len relies on it */
    int64_t seq = ep->reset_history ? 0 : (int64_t)ep->item->history_len;
    uint8_t *arr = NULL;
    size_t len = 0;
    dt_status r = bytea_array(ep->append, ep->n_append, &arr, &len, err);
    if (r != DT_OK)
        return r;
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    pg_int(&p, seq);
    pg_blob(&p, arr, len);
    r = pg_run(s,
               "INSERT INTO history (instance_id, seq, event)"
               " SELECT $1, $2 + e.ord - 1, e.ev FROM unnest($3::bytea[]) WITH ORDINALITY"
               " AS e(ev, ord)",
               &p, NULL, err, "append history");
    free(arr);
    return r;
}

/* The episode's instance row, updated under its lease and the lease released: $1 the id,
 * $11 the token, the rest the row's new values. No row changed, no lease. */
#define EPISODE_UPDATE                                                                         \
    "UPDATE instances SET status = $2, output = $3, custom_status = $4, failure = $5,"         \
    " completed_at = $6, last_updated_at = $7, name = COALESCE($8, name),"                    \
    " input = COALESCE($9, input), execution_id = COALESCE($10, execution_id),"               \
    " version = COALESCE($12, version),"                                                      \
    " span_start = CASE WHEN $13::text IS NULL THEN span_start ELSE $14 END,"                 \
    " span_id = COALESCE($13, span_id), tags = COALESCE($15, tags),"                          \
    " history_gen = history_gen + $16, lock_owner = NULL, lock_expires = 0"                   \
    " WHERE instance_id = $1 AND lock_owner = $11"

/* An episode that keeps its history in one statement: the row as EPISODE_UPDATE, and only if
 * that changed it, the consumed messages deleted ($17, their ids; any that arrived during the
 * episode stay for the next one), the new events appended ($19, a bytea[], their seqs
 * following on from $18), the waiting messages renamed for a new execution ($8 when not
 * NULL), the instance's entity locks released ($20) and the new activities inserted ($21..,
 * activity_cols). Its rows: first (0, 1 if the row changed, else 0), then (1, id, visible_at)
 * for each activity inserted. */
static const char *const EPISODE_FOLDED =
    "WITH u AS (" EPISODE_UPDATE " RETURNING 1),"
    " d AS (DELETE FROM inbox WHERE id = ANY($17::bigint[]) AND instance_id = $1"
    "  AND EXISTS (SELECT 1 FROM u)),"
    " h AS (INSERT INTO history (instance_id, seq, event)"
    "  SELECT $1, $18 + e.ord - 1, e.ev FROM unnest($19::bytea[]) WITH ORDINALITY AS e(ev, ord)"
    "  WHERE EXISTS (SELECT 1 FROM u)),"
    " r AS (UPDATE inbox SET name = $8 WHERE $8::text IS NOT NULL AND instance_id = $1"
    "  AND name IS DISTINCT FROM $8 AND id <> ALL($17::bigint[]) AND EXISTS (SELECT 1 FROM u)),"
    " e AS (UPDATE entities SET locked_by = NULL, locked_execution = NULL, lock_section = NULL"
    "  WHERE $20::boolean AND locked_by = $1 AND EXISTS (SELECT 1 FROM u)),"
    " a AS (" ACTIVITY_ROWS("$21", "$22", "$23", "$24", "$25", "$26", "$27", "$28", "$29", "$30")
    "  WHERE EXISTS (SELECT 1 FROM u) RETURNING id, visible_at)"
    " SELECT 0, count(*), 0::bigint FROM u UNION ALL SELECT 1, id, visible_at FROM a"
    " ORDER BY 1, 2";

/* The activities of an episode that does not fold them (ACTIVITY_ROWS): one row each */
static const char *const ACTIVITIES_INSERT =
    ACTIVITY_ROWS("$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10")
    " RETURNING id, visible_at";

/* folds_release: may the folded statement release the instance's entity locks? Only when
 * nothing the episode sends to entities must come first (in that order, as unfolded). */
static bool folds_release(const dt_episode *ep)
{
    return ep->release_locks && ep->n_entity_messages == 0 && ep->n_unlocks == 0;
}

/* note_activities: the activity rows RES returned from row FIRST on (id, visible_at in the
 * columns from COL) noted ready */
static void note_activities(const PGresult *res, int first, int col, store_ready *rd)
{
    for (int i = first; res && i < PQntuples(res); i++)
        store_ready_activity(rd, pg_col_int(res, i, col), pg_col_int(res, i, col + 1));
}

/* update_row_tx: the episode's row (EPISODE_UPDATE); FOLDED: with its consumed messages, new
 * events, renamed inbox, released locks (folds_release) and activities too (EPISODE_FOLDED).
 * DT_ERR_LEASE_LOST, with nothing changed, when the lease is gone. */
static dt_status update_row_tx(pg_store *s, const char *id, const dt_episode *ep, bool folded,
                               store_ready *rd, dt_error *err)
{
    uint8_t *failure = NULL, *events = NULL;
    size_t failure_len = 0, events_len = 0;
    char *consumed = NULL;
    activity_cols acts = {0};
    dt_status r = store_encode_failure(ep->failure, &failure, &failure_len, err);
    if (r == DT_OK && folded)
        r = bytea_array(ep->append, ep->n_append, &events, &events_len, err);
    if (r == DT_OK && folded)
        r = pg_int_array(ep->item->message_ids, ep->item->n_message_ids, &consumed, err);
    if (r == DT_OK && folded)
        r = activity_cols_make(id, ep, &acts, err);
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    pg_int(&p, ep->status);
    pg_text(&p, ep->output);
    pg_text(&p, ep->custom_status);
    pg_blob(&p, failure, failure_len);
    pg_int(&p, ep->completed_at);
    pg_int(&p, ep->updated_at ? ep->updated_at : dt_now());
    pg_text(&p, ep->name);
    pg_text(&p, ep->input);
    pg_text(&p, ep->execution_id);
    pg_text(&p, ep->item->lock_token);
    pg_text(&p, ep->version);
    pg_text(&p, ep->span_id);
    pg_int(&p, ep->span_start);
    pg_text(&p, ep->tags);
    pg_int(&p, ep->reset_history ? 1 : 0);
    if (folded) {
        pg_text(&p, consumed);
        pg_int(&p, (int64_t)ep->item->history_len);
        pg_blob(&p, events, events_len);
        pg_bool(&p, folds_release(ep));
        activity_cols_bind(&p, &acts);
    }
    PGresult *res = NULL;
    if (r == DT_OK)
        r = pg_run(s, folded ? EPISODE_FOLDED : EPISODE_UPDATE, &p, &res, err,
                   "update instance");
    free(failure);
    free(events);
    free(consumed);
    activity_cols_free(&acts);
    /* the row changes only under the lease: no change, no lease */
    bool held = r == DT_OK && ep->item->lock_token != NULL &&
                (folded ? pg_col_int(res, 0, 1) > 0 : changed(res) > 0);
    if (r == DT_OK && !held)
        r = dt_error_set(err, DT_ERR_LEASE_LOST,
                         "commit: the lease on instance '%s' is no longer held", id);
    if (r == DT_OK && folded)
        note_activities(res, 1, 1, rd);
    PQclear(res);
    return r;
}

/* insert_activities_tx: the activities of an episode that does not fold them, one statement */
static dt_status insert_activities_tx(pg_store *s, const char *id, const dt_episode *ep,
                                      store_ready *rd, dt_error *err)
{
    if (ep->n_activities == 0)
        return DT_OK;
    activity_cols acts = {0};
    dt_status r = activity_cols_make(id, ep, &acts, err);
    pg_params p = PG_PARAMS_INIT;
    activity_cols_bind(&p, &acts);
    PGresult *res = NULL;
    if (r == DT_OK)
        r = pg_run(s, ACTIVITIES_INSERT, &p, &res, err, "insert activities");
    activity_cols_free(&acts);
    if (r == DT_OK)
        note_activities(res, 0, 0, rd);
    PQclear(res);
    return r;
}

/* apply_episode_tx and apply_activity_tx set *CHECKED once their lease check, their first
 * statement, has passed: a refusal before that has changed nothing (see store_run_batch). */
static dt_status apply_episode_tx(pg_store *s, const dt_episode *ep, store_ready *rd,
                                  bool *checked, dt_error *err)
{
    const dt_orch_item *item = ep->item;
    if (item == NULL || item->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "episode without a work item");
    const char *id = item->instance_id;
    if (ep->consumes)
        return dt_error_set(err, DT_ERR_UNIMPLEMENTED, "commit: instance '%s': the PostgreSQL "
                            "store does not commit speculative episodes", id);

    /* the row first, with the lease released: it fails if the lease is gone. An episode that
     * keeps its history does its appends and deletes in the same statement; a reset
     * (continue-as-new) must delete the old history before the new takes its seqs. */
    bool folded = !ep->reset_history;
    dt_status r = update_row_tx(s, id, ep, folded, rd, err);
    if (r != DT_OK)
        return r;
    *checked = true;
    if (ep->name && !folded) {   /* a new execution: its waiting messages take its name */
        pg_params q = PG_PARAMS_INIT;
        pg_text(&q, id);
        pg_text(&q, ep->name);
        r = pg_run(s,
                   "UPDATE inbox SET name = $2 WHERE instance_id = $1"
                   " AND name IS DISTINCT FROM $2",
                   &q, NULL, err, "rename inbox");
        if (r != DT_OK)
            return r;
    }
    if (ep->reset_history) {
        /* continue-as-new: the old execution's history goes, and its outstanding activities,
         * whose results would land in the new execution with task ids it may reuse */
        r = pg_run_id(s, "DELETE FROM history WHERE instance_id = $1", id, err, "reset history");
        if (r == DT_OK)
            r = pg_run_id(s, "DELETE FROM activities WHERE instance_id = $1", id, err,
                          "reset history");
        if (r != DT_OK)
            return r;
    }
    if (!folded && (r = append_history_tx(s, id, ep, err)) != DT_OK)
        return r;
    if (!folded && (r = insert_activities_tx(s, id, ep, rd, err)) != DT_OK)
        return r;
    /* sub-orchestrations before messages, so a message to a new child finds it */
    for (size_t i = 0; i < ep->n_instances; i++) {
        r = pg_create_instance_tx(s, &ep->instances[i], err);
        /* a live child with this id stays as it is (the hub refines what the parent sees) */
        if (r == DT_ERR_ALREADY_EXISTS)
            r = DT_OK;
        if (r != DT_OK)
            return r;
        store_ready_instance(rd, ep->instances[i].instance_id, ep->instances[i].scheduled_start);
    }
    for (size_t i = 0; i < ep->n_messages; i++) {
        bool delivered;
        /* a message to an instance that does not exist is dropped; the episode commits */
        const dt_message *m = &ep->messages[i];
        if ((r = pg_insert_message_tx(s, m, id, &delivered, err)) != DT_OK)
            return r;
        if (delivered)
            store_ready_instance(rd, m->instance_id ? m->instance_id : id, m->visible_at);
    }
    /* entities: what the episode sent, its unlocks (at once: the holder needs no turn in the
     * queue to let go), and every lock of an execution that ended */
    for (size_t i = 0; i < ep->n_entity_messages; i++)
        if ((r = pg_entity_message_tx(s, &ep->entity_messages[i], err)) != DT_OK)
            return r;
    for (size_t i = 0; i < ep->n_unlocks; i++)
        if ((r = pg_entity_unlock_tx(s, id, &ep->unlocks[i], err)) != DT_OK)
            return r;
    if (ep->release_locks && !(folded && folds_release(ep)) &&
        (r = pg_entity_release_tx(s, id, err)) != DT_OK)
        return r;
    /* the consumed messages; any that arrived during the episode stay for the next one */
    if (!folded && item->n_message_ids > 0) {
        char *ids = NULL;
        r = pg_int_array(item->message_ids, item->n_message_ids, &ids, err);
        pg_params p = PG_PARAMS_INIT;
        pg_text(&p, ids);
        pg_text(&p, id);
        if (r == DT_OK)
            r = pg_run(s, "DELETE FROM inbox WHERE id = ANY($1::bigint[]) AND instance_id = $2",
                       &p, NULL, err, "delete consumed messages");
        free(ids);
        if (r != DT_OK)
            return r;
    }
    /* messages that came while the episode ran are ready for the next one */
    store_ready_own(rd, id, dt_runtime_status_is_terminal(ep->status));
    return DT_OK;
}

static dt_status apply_activity_tx(pg_store *s, const dt_activity_done *done, store_ready *rd,
                                   bool *checked, dt_error *err)
{
    const dt_activity_item *item = done->item;
    if (item == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "activity result without a work item");
    /* the result belongs to the execution that scheduled the activity, unless told otherwise */
    dt_message m = done->message;
    if (m.execution_id == NULL)
        m.execution_id = item->execution_id;
    /* the work item deleted under its lease (no row deleted, no lease, nothing changed) and
     * the result delivered in one statement; dropped if the orchestration is gone (purged or
     * replaced meanwhile) */
    bool held = false, delivered = false;
    dt_status r = item->lock_token
                      ? pg_activity_result_tx(s, &m, item->instance_id, item->id,
                                              item->lock_token, &held, &delivered, err)
                      : DT_OK;
    if (r != DT_OK)
        return r;
    if (!held)
        return dt_error_set(err, DT_ERR_LEASE_LOST,
                            "commit: the lease on activity %lld ('%s' for instance '%s') is no "
                            "longer held",
                            (long long)item->id, item->name ? item->name : "",
                            item->instance_id ? item->instance_id : "");
    *checked = true;
    if (delivered)
        store_ready_instance(rd, item->instance_id, m.visible_at);
    return DT_OK;
}

static dt_status apply_entity_tx(pg_store *s, const dt_entity_step *step, store_ready *rd,
                                 dt_error *err)
{
    dt_status r = pg_entity_step_tx(s, step, err);
    for (size_t i = 0; r == DT_OK && i < step->n_messages; i++)
        store_ready_instance(rd, step->messages[i].instance_id, step->messages[i].visible_at);
    for (size_t i = 0; r == DT_OK && i < step->n_instances; i++)
        store_ready_instance(rd, step->instances[i].instance_id,
                             step->instances[i].scheduled_start);
    return r;
}

/* apply_entry_tx: store_entry_ops' apply (STORE is the pg_store). */
static dt_status apply_entry_tx(void *store, dt_commit *c, size_t i, store_ready *rd,
                               bool *checked, dt_error *err)
{
    pg_store *s = store;
    switch (c->kind) {
    case DT_COMMIT_EPISODE:
        return apply_episode_tx(s, &c->u.episode, rd, checked, err);
    case DT_COMMIT_ACTIVITY:
        return apply_activity_tx(s, &c->u.activity, rd, checked, err);
    case DT_COMMIT_START: {
        dt_status r = pg_create_instance_tx(s, &c->u.start, err);
        if (r == DT_OK)
            store_ready_instance(rd, c->u.start.instance_id, c->u.start.scheduled_start);
        return r;
    }
    case DT_COMMIT_ENTITY:
        return apply_entity_tx(s, &c->u.entity, rd, err);
    }
    return dt_error_set(err, DT_ERR_INVALID_ARG, "commit entry %zu has kind %d", i, (int)c->kind);
}

/* lease_ready: the leases of dt_commit_lease, inside the commit's transaction and a savepoint
 * of their own, so a failure of the leases takes back only them; an error here that leaves
 * the transaction unusable (the connection gone) is the batch's. */
static dt_status lease_ready(pg_store *s, store_ready *rd, dt_commit_lease *L, dt_error *err)
{
    dt_error scratch;
    dt_status r = pg_run_later(s, "SAVEPOINT dt_lease", err, "savepoint");
    if (r != DT_OK)
        return r;
    if (pg_lease_ready_tx(s, rd->ids, rd->n_ids, rd->acts, rd->n_acts, L, &scratch) == DT_OK)
        return pg_run_later(s, "RELEASE SAVEPOINT dt_lease", err, "release savepoint");
    store_lease_forget(L);
    rd->left = true;   /* what it made ready stays for anyone */
    return pg_run_later(s, "ROLLBACK TO SAVEPOINT dt_lease", err, "rollback leases");
}

/* changed_ids: the instances whose episodes BATCH committed, one per line (malloc'd; NULL,
 * "any may have", when there are too many to name or no memory). */
static char *changed_ids(const dt_commit *batch, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i].kind == DT_COMMIT_EPISODE && batch[i].result == DT_OK)
            len += strlen(batch[i].u.episode.item->instance_id) + 1;
    if (len >= PG_NOTIFY_MAX)
        return NULL;
    char *ids = malloc(len + 1), *at = ids;
    for (size_t i = 0; ids && i < n; i++)
        if (batch[i].kind == DT_COMMIT_EPISODE && batch[i].result == DT_OK)
            at += sprintf(at, "%s%s", at == ids ? "" : "\n", batch[i].u.episode.item->instance_id);
    if (ids)
        *at = '\0';
    return ids;
}

static dt_status savepoint_op(void *store, store_savepoint_op op, dt_error *err)
{
    static const char *const sql[] = {"SAVEPOINT dt_entry", "RELEASE SAVEPOINT dt_entry",
                                      "ROLLBACK TO SAVEPOINT dt_entry"};
    static const char *const what[] = {"savepoint", "release savepoint", "rollback entry"};
    return pg_run_later(store, sql[op], err, what[op]);
}

static bool ended_op(void *store)
{
    return PQtransactionStatus(((pg_store *)store)->conn) != PQTRANS_INTRANS;
}

static bool gone_op(void *store)
{
    PGTransactionStatusType t = PQtransactionStatus(((pg_store *)store)->conn);
    return t != PQTRANS_INTRANS && t != PQTRANS_INERROR;
}

static dt_status begin_op(void *store, bool deferred, dt_error *err)
{
    (void)deferred;   /* durable on return: a commit here is never deferred */
    return pg_begin(store, err);
}

static void rollback_op(void *store)
{
    pg_rollback(store);
}

static const store_entry_ops entry_ops = {begin_op, rollback_op, apply_entry_tx, savepoint_op,
                                          ended_op, gone_op};

/* leased: did LEASE take instance ID? */
static bool leased(const dt_commit_lease *lease, const char *id)
{
    for (size_t i = 0; i < lease->n_orchestrations; i++)
        if (strcmp(lease->orchestrations[i]->instance_id, id) == 0)
            return true;
    return false;
}

/* work_left: may BATCH have left work for any node to take? Not when LEASE, for this node,
 * took every instance the batch noted and every activity it made, none of it is for later,
 * and it gave no entity work (a commit leases none). An instance it did not take may have
 * had nothing to do, but it may also have been held by another node, or been an episode's
 * own instance getting a message from another node whose commit this one's lease did not
 * see yet (READ COMMITTED): so it counts as work, and the other nodes look once this commit
 * is visible. Only an ended instance's messages can wait (for the poll). What this node
 * leased and cannot run it gives back, which says so. */
static bool work_left(const dt_commit *batch, size_t n, const store_ready *rd,
                      const dt_commit_lease *lease)
{
    if (lease == NULL || rd->left || dt_commit_touches_entities(batch, n) ||
        lease->n_activities < rd->n_acts)
        return true;
    for (size_t i = 0; i < rd->n_ids; i++)
        if ((rd->flags[i] & READY_MUST) && !leased(lease, rd->ids[i]))
            return true;
    return false;
}

/* If entries fail alone, the call still returns DT_OK and ERR holds the first such entry's
 * code and message (for logging); each entry's own result says which failed. */
dt_status pg_commit_batch(dt_store *base, dt_commit *batch, size_t n, dt_commit_lease *lease,
                          uint64_t *ticket, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    dt_error_clear(err);
    if (ticket)
        *ticket = 0;   /* none until the commit can be seen */
    store_ready rd = store_ready_start(lease);
    if (n == 0)
        return DT_OK;
    pthread_mutex_lock(&s->mu);
    dt_status r = store_run_batch(&entry_ops, s, false, batch, n, &rd, err);
    if (r == DT_OK && rd.on)
        r = lease_ready(s, &rd, lease, err);
    if (r == DT_OK) {   /* other nodes may have work now, and waits on these instances news */
        char *ids = changed_ids(batch, n);
        r = pg_notify_tx(s, ids, work_left(batch, n, &rd, lease), err);
        free(ids);
    }
    if (r == DT_OK) {
        dt_error saved;
        dt_error_clear(&saved);
        if (err)
            saved = *err;
        /* numbered before it can be seen, as in SQLite's (the ticket stays if it fails: the
         * batch is published all the same) */
        if (ticket)
            *ticket = atomic_fetch_add(&s->commit_seq, 1) + 1;
        r = pg_commit(s, err);
        if (r == DT_OK && err)
            *err = saved;
    }
    if (r != DT_OK) {
        pg_rollback(s);
        for (size_t i = 0; i < n; i++) {
            batch[i].result = r;
            if (batch[i].error && err)
                *batch[i].error = *err;
        }
        if (lease)
            store_lease_forget(lease);
    }
    pthread_mutex_unlock(&s->mu);
    store_ready_free(&rd);
    return r;
}
