/* sqlite_lease.c — the SQLite backend's leases: handing out orchestration and activity work
 * items, renewing and abandoning them. A lease is a random token in the row's lock_owner plus
 * an expiry in lock_expires; a row is free when lock_owner is NULL or the expiry has passed.
 * Renew, abandon and commit prove the lease by the token alone, so a lease that expired but
 * was not taken by anyone else is still good. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

/* ---- orchestrations ----------------------------------------------------------------------- */

/* load_inbox_tx: the visible messages of ITEM, in arrival order, with their ids. A message
 * stored with an execution id hands it to its event (ExecutionStarted keeps its own). */
static dt_status load_inbox_tx(sqlite_store *s, dt_orch_item *item, dt_time now, dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_INBOX_LOAD_VISIBLE);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->instance_id, &rc);
    store_bind_int64(st, 2, now, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "read inbox");
    size_t n = 0, cap_ev = 0, cap_ids = 0;
    dt_event *ev = NULL;
    int64_t *ids = NULL;
    dt_status r = DT_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        dt_event *nev = dt_grow(ev, &cap_ev, n + 1, sizeof *nev);
        if (nev != NULL)
            ev = nev;
        int64_t *nids = nev ? dt_grow(ids, &cap_ids, n + 1, sizeof *nids) : NULL;
        if (nids == NULL) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading inbox of '%s'",
                             item->instance_id);
            break;
        }
        ids = nids;
        ids[n] = sqlite3_column_int64(st, 0);
        char what[160];
        snprintf(what, sizeof what, "inbox message %lld of instance '%.100s'",
                 (long long)ids[n], item->instance_id);
        r = store_decode_column(st, 1, item->arena, &ev[n], err, what);
        if (r != DT_OK)
            break;
        if (ev[n].type != DT_EVENT_EXECUTION_STARTED &&
            sqlite3_column_type(st, 2) != SQLITE_NULL) {
            ev[n].execution_id = store_col_text(item->arena, st, 2, &r);
            if (r != DT_OK) {
                r = dt_error_set(err, r, "out of memory reading inbox of '%s'",
                                 item->instance_id);
                break;
            }
        }
        n++;
    }
    if (r == DT_OK && rc != SQLITE_DONE)
        r = store_sql_error(s, rc, err, "read inbox");
    sqlite3_reset(st);
    if (r == DT_OK && n > 0) {
        item->incoming = dt_arena_memdup(item->arena, ev, n * sizeof *ev);
        item->message_ids = dt_arena_memdup(item->arena, ids, n * sizeof *ids);
        if (item->incoming == NULL || item->message_ids == NULL)
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory reading inbox of '%s'",
                             item->instance_id);
        item->n_incoming = item->n_message_ids = n;
    }
    free(ev);
    free(ids);
    return r;
}

/* read_leased_tx: the row of ITEM's instance, just leased, with its history's length. */
static dt_status read_leased_tx(sqlite_store *s, dt_orch_item *item, dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_LEASED);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->instance_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    dt_status r;
    if (rc == SQLITE_ROW) {
        r = store_read_instance(st, item->arena, &item->state, err);
        item->history_gen = sqlite3_column_int64(st, 17);
        item->history_len = (size_t)sqlite3_column_int64(st, 18);
    } else if (rc == SQLITE_DONE) {
        r = dt_error_set(err, DT_ERR_INTERNAL, "instance '%s' vanished while being leased",
                         item->instance_id);
    } else {
        r = store_sql_error(s, rc, err, "read leased instance");
    }
    sqlite3_reset(st);
    return r;
}

/* lease_one_tx: lock ITEM's instance (its instance_id is set) and load its row, history length
 * and inbox. The history itself is not read: the holder loads what it lacks. A candidate
 * (IF_READY false) was just found free with work; IF_READY checks both in the lease itself,
 * and *TAKEN says whether it was leased (always true otherwise). */
static dt_status lease_one_tx(sqlite_store *s, dt_orch_item *item, const char *owner,
                              dt_time now, dt_time until, bool if_ready, bool *taken,
                              dt_error *err)
{
    *taken = false;
    const char *token = store_new_token(item->arena, owner);
    if (token == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing '%s'", item->instance_id);
    item->lock_token = token;
    item->locked_until = until;

    sqlite3_stmt *st = store_stmt(s, if_ready ? ST_INSTANCE_LEASE_READY : ST_INSTANCE_LEASE);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->instance_id, &rc);
    store_bind_text(st, 2, token, &rc);
    store_bind_int64(st, 3, until, &rc);
    if (if_ready)
        store_bind_int64(st, 4, now, &rc);
    dt_status r = rc == SQLITE_OK ? store_step_done(s, st, err, "lease instance")
                                  : store_sql_error(s, rc, err, "lease instance");
    if (r != DT_OK)
        return r;
    if (sqlite3_changes(s->db) == 0) {
        if (if_ready)
            return DT_OK;                 /* busy, or nothing to do: not taken */
        return dt_error_set(err, DT_ERR_INTERNAL, "instance '%s' vanished while being leased",
                            item->instance_id);
    }
    *taken = true;
    if ((r = read_leased_tx(s, item, err)) != DT_OK)
        return r;
    item->past = NULL;
    item->n_past = 0;
    return load_inbox_tx(s, item, now, err);
}


dt_status store_sqlite_lease_orchestrations(dt_store *base, const char *owner, dt_time now,
                                            int64_t lease_us, size_t max,
                                            const dt_name_filter *names, dt_orch_item **out,
                                            size_t *n_out, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    dt_time until = store_lease_end(now, lease_us);
    size_t n = 0;
    store_cands cands = {NULL, 0, 0};
    pthread_mutex_lock(&s->mu);
    dt_status r = DT_OK;
    if (!store_any_work(s, STORE_WORK_ORCH, now, names))
        goto done;
    if ((r = store_begin_lease(s, err)) != DT_OK)
        goto done;
    /* the candidates first; the lease updates run after their statements are reset */
    if ((r = store_find_work(s, STORE_WORK_ORCH, now, names, max, &cands, err)) != DT_OK)
        goto fail;
    for (size_t i = 0; i < cands.n; i++) {
        dt_arena *arena = dt_arena_new();
        dt_orch_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
        if (item) {
            item->arena = arena;
            item->instance_id = dt_arena_strdup(arena, cands.c[i].id);
        }
        if (item == NULL || item->instance_id == NULL) {
            dt_arena_free(arena);
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
            goto fail;
        }
        out[n++] = item;
    }

    for (size_t i = 0; i < n; i++) {
        bool taken;
        r = lease_one_tx(s, out[i], owner, now, until, false, &taken, err);
        if (r != DT_OK)
            goto fail;
    }
    r = store_commit_tx(s, err);
    if (r != DT_OK)
        goto fail;
    *n_out = n;
    goto done;

fail:
    store_rollback(s);
    for (size_t i = 0; i < n; i++) {
        dt_orch_item_free(out[i]);
        out[i] = NULL;
    }
done:
    pthread_mutex_unlock(&s->mu);
    store_cands_free(&cands);
    return r;
}

/* ---- activities --------------------------------------------------------------------------- */

/* read_activity_tx: ITEM's row (its id set), just leased. */
static dt_status read_activity_tx(sqlite_store *s, dt_activity_item *item, dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_ACTIVITY_LEASED);
    int rc = SQLITE_OK;
    store_bind_int64(st, 1, item->id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    dt_status r = DT_OK;
    if (rc == SQLITE_ROW) {
        dt_status cst = DT_OK;
        item->instance_id = store_col_text(item->arena, st, 0, &cst);
        item->execution_id = store_col_text(item->arena, st, 1, &cst);
        item->task_id = sqlite3_column_int(st, 2);
        item->name = store_col_text(item->arena, st, 3, &cst);
        item->version = store_col_text(item->arena, st, 4, &cst);
        item->input = store_col_text(item->arena, st, 5, &cst);
        item->delivery_count = sqlite3_column_int(st, 6);
        item->trace_parent = store_col_text(item->arena, st, 7, &cst);
        item->trace_state = store_col_text(item->arena, st, 8, &cst);
        item->tags = store_col_text(item->arena, st, 9, &cst);
        if (cst != DT_OK)
            r = dt_error_set(err, cst, "out of memory leasing activity %lld",
                             (long long)item->id);
    } else if (rc == SQLITE_DONE) {
        r = dt_error_set(err, DT_ERR_INTERNAL, "activity %lld vanished while being leased",
                         (long long)item->id);
    } else {
        r = store_sql_error(s, rc, err, "read leased activity");
    }
    sqlite3_reset(st);
    return r;
}

static dt_status lease_activity_tx(sqlite_store *s, dt_activity_item *item, const char *owner,
                                   dt_time until, dt_error *err)
{
    const char *token = store_new_token(item->arena, owner);
    if (token == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activity %lld",
                            (long long)item->id);
    item->lock_token = token;
    item->locked_until = until;
    sqlite3_stmt *st = store_stmt(s, ST_ACTIVITY_LEASE);
    int rc = SQLITE_OK;
    store_bind_int64(st, 1, item->id, &rc);
    store_bind_text(st, 2, token, &rc);
    store_bind_int64(st, 3, until, &rc);
    dt_status r = rc == SQLITE_OK ? store_step_done(s, st, err, "lease activity")
                                  : store_sql_error(s, rc, err, "lease activity");
    if (r == DT_OK && sqlite3_changes(s->db) == 0)
        r = dt_error_set(err, DT_ERR_INTERNAL, "activity %lld vanished while being leased",
                         (long long)item->id);
    return r == DT_OK ? read_activity_tx(s, item, err) : r;
}

dt_status store_sqlite_lease_activities(dt_store *base, const char *owner, dt_time now,
                                        int64_t lease_us, size_t max,
                                        const dt_name_filter *names, dt_activity_item **out,
                                        size_t *n_out, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    dt_time until = store_lease_end(now, lease_us);
    size_t n = 0;
    store_cands cands = {NULL, 0, 0};
    pthread_mutex_lock(&s->mu);
    dt_status r = DT_OK;
    if (!store_any_work(s, STORE_WORK_ACTIVITY, now, names))
        goto done;
    if ((r = store_begin_lease(s, err)) != DT_OK)
        goto done;
    if ((r = store_find_work(s, STORE_WORK_ACTIVITY, now, names, max, &cands, err)) != DT_OK)
        goto fail;
    for (size_t i = 0; i < cands.n; i++) {
        dt_arena *arena = dt_arena_new();
        dt_activity_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
        if (item == NULL) {
            dt_arena_free(arena);
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
            goto fail;
        }
        item->arena = arena;
        item->id = cands.c[i].row;
        out[n++] = item;
    }

    for (size_t i = 0; i < n; i++) {
        r = lease_activity_tx(s, out[i], owner, until, err);
        if (r != DT_OK)
            goto fail;
    }
    r = store_commit_tx(s, err);
    if (r != DT_OK)
        goto fail;
    *n_out = n;
    goto done;

fail:
    store_rollback(s);
    for (size_t i = 0; i < n; i++) {
        dt_activity_item_free(out[i]);
        out[i] = NULL;
    }
done:
    pthread_mutex_unlock(&s->mu);
    store_cands_free(&cands);
    return r;
}

/* ---- what a commit made ready --------------------------------------------------------------- */

static dt_status lease_ready_activities(sqlite_store *s, const int64_t *acts, size_t n_acts,
                                        dt_time until, dt_commit_lease *L, dt_error *err)
{
    for (size_t i = 0; i < n_acts && L->n_activities < L->max_activities; i++) {
        dt_arena *arena = dt_arena_new();
        dt_activity_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
        if (item == NULL) {
            dt_arena_free(arena);
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing activities");
        }
        item->arena = arena;
        item->id = acts[i];
        dt_status r = lease_activity_tx(s, item, L->owner, until, err);
        if (r != DT_OK) {
            dt_activity_item_free(item);
            return r;
        }
        L->activities[L->n_activities++] = item;
    }
    return DT_OK;
}

/* any_visible_tx: has instance ID a visible message (at NOW)? Asked before the lease of an
 * episode's own instance, which most often has none: one look in the inbox's index instead
 * of the lease's look at the row and then the inbox. */
static dt_status any_visible_tx(sqlite_store *s, const char *id, dt_time now, bool *any,
                                dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_INBOX_ANY_VISIBLE);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_int64(st, 2, now, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    *any = rc == SQLITE_ROW;
    dt_status r = rc == SQLITE_ROW || rc == SQLITE_DONE ? DT_OK
                                                        : store_sql_error(s, rc, err, "read inbox");
    sqlite3_reset(st);
    return r;
}

static dt_status lease_ready_instances(sqlite_store *s, const store_ready *rd, dt_time until,
                                       dt_commit_lease *L, dt_error *err)
{
    const char *const *ids = rd->ids;
    for (size_t i = 0; i < rd->n_ids && L->n_orchestrations < L->max_orchestrations; i++) {
        bool any = true;
        dt_status r = rd->flags[i] & READY_SENT ? DT_OK
                                                : any_visible_tx(s, ids[i], L->now, &any, err);
        if (r != DT_OK)
            return r;
        if (!any)
            continue;
        dt_arena *arena = dt_arena_new();
        dt_orch_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
        const char *id = item ? dt_arena_strdup(arena, ids[i]) : NULL;
        if (id == NULL) {
            dt_arena_free(arena);
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing orchestrations");
        }
        item->arena = arena;
        item->instance_id = id;
        bool taken = false;
        r = lease_one_tx(s, item, L->owner, L->now, until, true, &taken, err);
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

dt_status store_lease_ready_tx(sqlite_store *s, const store_ready *rd, dt_commit_lease *L,
                               dt_error *err)
{
    dt_time until = store_lease_end(L->now, L->lease_us);
    dt_status r = lease_ready_activities(s, rd->acts, rd->n_acts, until, L, err);
    if (r == DT_OK)
        r = lease_ready_instances(s, rd, until, L, err);
    return r;
}

/* ---- renew and abandon -------------------------------------------------------------------- */

/* token_update: run STMT (?1 key, ?2 token, ?3 until when HAS_UNTIL) in its own write
 * transaction; DT_ERR_LEASE_LOST when no row matched the token. */
dt_status store_token_update(sqlite_store *s, store_stmt_id id, const char *text_key,
                              int64_t int_key, const char *token, bool has_until, dt_time until,
                              dt_error *err, const char *what)
{
    pthread_mutex_lock(&s->mu);
    dt_status r = store_begin_lease(s, err);
    if (r != DT_OK)
        goto done;
    sqlite3_stmt *st = store_stmt(s, id);
    int rc = SQLITE_OK;
    if (text_key)
        store_bind_text(st, 1, text_key, &rc);
    else
        store_bind_int64(st, 1, int_key, &rc);
    store_bind_text(st, 2, token, &rc);
    if (has_until)
        store_bind_int64(st, 3, until, &rc);
    r = rc == SQLITE_OK ? store_step_done(s, st, err, what) : store_sql_error(s, rc, err, what);
    if (r == DT_OK && sqlite3_changes(s->db) == 0)
        r = store_lease_lost(what, text_key, int_key, err);
    if (r == DT_OK)
        r = store_commit_tx(s, err);
    if (r != DT_OK)
        store_rollback(s);
done:
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status store_sqlite_renew_orchestration(dt_store *base, const dt_orch_item *item,
                                           dt_time until, dt_error *err)
{
    if (item == NULL || item->instance_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "renew: not a leased work item");
    return store_token_update((sqlite_store *)base, ST_INSTANCE_RENEW, item->instance_id, 0,
                        item->lock_token, true, until, err, "renew");
}

dt_status store_sqlite_renew_activity(dt_store *base, const dt_activity_item *item,
                                      dt_time until, dt_error *err)
{
    if (item == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "renew: not a leased activity");
    return store_token_update((sqlite_store *)base, ST_ACTIVITY_RENEW, NULL, item->id,
                        item->lock_token, true, until, err, "renew");
}

dt_status store_sqlite_abandon_orchestration(dt_store *base, const dt_orch_item *item,
                                             dt_time retry_at, dt_error *err)
{
    if (item == NULL || item->instance_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "abandon: not a leased work item");
    return store_token_update((sqlite_store *)base, ST_INSTANCE_ABANDON, item->instance_id, 0,
                        item->lock_token, true, retry_at > 0 ? retry_at : 0, err, "abandon");
}

dt_status store_sqlite_abandon_activity(dt_store *base, const dt_activity_item *item,
                                        dt_time retry_at, dt_error *err)
{
    if (item == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "abandon: not a leased activity");
    /* the row stays: the activity is delivered again, to whoever leases next */
    return store_token_update((sqlite_store *)base, ST_ACTIVITY_ABANDON, NULL, item->id,
                        item->lock_token, true, retry_at > 0 ? retry_at : 0, err, "abandon");
}
