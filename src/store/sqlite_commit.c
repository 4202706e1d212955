/* sqlite_commit.c — the SQLite backend's group commit: many episode and activity results in
 * one write transaction, so one fsync covers them all. Each entry runs inside a savepoint: an
 * entry whose lease is gone (or whose data cannot be encoded) is rolled back alone and the
 * others still apply; a failure of the database itself rolls back the whole batch. */
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_internal.h"

/* check_lock: is the lease whose row STMT selects (lock_owner as column 0) held by TOKEN? */
static dt_status check_lock(sqlite_store *s, sqlite3_stmt *st, const char *token, bool *held,
                            dt_error *err)
{
    *held = false;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *owner = sqlite3_column_text(st, 0);
        *held = token && owner && strcmp((const char *)owner, token) == 0;
    } else if (rc != SQLITE_DONE) {
        dt_status r = store_sql_error(s, rc, err, "check lease");
        sqlite3_reset(st);
        return r;
    }
    sqlite3_reset(st);
    return DT_OK;
}

static dt_status append_history_tx(sqlite_store *s, const char *id, const dt_episode *ep,
                                   dt_error *err)
{
    /* seqs stay dense from 0 (after a reset too): item->history_len relies on it */
    int64_t seq = 0;
    dt_status r = store_history_len_tx(s, id, &seq, err);
    if (r != DT_OK)
        return r;

    for (size_t i = 0; i < ep->n_append; i++) {
        uint8_t *blob = NULL;
        size_t len = 0;
        r = store_encode_event(&ep->append[i], &blob, &len, err);
        if (r != DT_OK)
            return r;
        sqlite3_stmt *st = store_stmt(s, ST_HISTORY_INSERT);
        int rc = SQLITE_OK;
        store_bind_text(st, 1, id, &rc);
        store_bind_int64(st, 2, seq + (int64_t)i, &rc);
        store_bind_blob(st, 3, blob, len, &rc);
        r = rc == SQLITE_OK ? store_step_done(s, st, err, "append history")
                            : store_sql_error(s, rc, err, "append history");
        sqlite3_clear_bindings(st);
        free(blob);
        if (r != DT_OK)
            return r;
    }
    return DT_OK;
}

static dt_status update_row_tx(sqlite_store *s, const char *id, const dt_episode *ep,
                               dt_error *err)
{
    uint8_t *failure = NULL;
    size_t failure_len = 0;
    dt_status r = store_encode_failure(ep->failure, &failure, &failure_len, err);
    if (r != DT_OK)
        return r;
    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_EPISODE_UPDATE);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    store_bind_int64(st, 2, ep->status, &rc);
    store_bind_text(st, 3, ep->output, &rc);
    store_bind_text(st, 4, ep->custom_status, &rc);
    if (failure)
        store_bind_blob(st, 5, failure, failure_len, &rc);
    store_bind_int64(st, 6, ep->completed_at, &rc);
    store_bind_int64(st, 7, dt_now(), &rc);
    store_bind_text(st, 8, ep->name, &rc);
    store_bind_text(st, 9, ep->input, &rc);
    store_bind_text(st, 10, ep->execution_id, &rc);
    r = rc == SQLITE_OK ? store_step_done(s, st, err, "update instance")
                        : store_sql_error(s, rc, err, "update instance");
    sqlite3_clear_bindings(st);
    free(failure);
    return r;
}

static dt_status insert_activity_tx(sqlite_store *s, const char *id, const dt_new_activity *a,
                                    dt_error *err)
{
    const dt_event *e = a->scheduled;
    if (e == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "activity for instance '%s' has no TaskScheduled event", id);
    sqlite3_stmt *st = store_stmt(s, ST_ACTIVITY_INSERT);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, a->instance_id ? a->instance_id : id, &rc);
    store_bind_text(st, 2, a->execution_id, &rc);
    store_bind_int64(st, 3, e->event_id, &rc);
    store_bind_text(st, 4, e->name, &rc);
    store_bind_text(st, 5, e->version, &rc);
    store_bind_text(st, 6, e->input, &rc);
    store_bind_int64(st, 7, a->visible_at, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "insert activity");
    return store_step_done(s, st, err, "insert activity");
}

static dt_status apply_episode_tx(sqlite_store *s, const dt_episode *ep, dt_error *err)
{
    const dt_orch_item *item = ep->item;
    if (item == NULL || item->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "episode without a work item");
    const char *id = item->instance_id;

    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_LOCK_OWNER);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "check lease");
    bool held = false;
    dt_status r = check_lock(s, st, item->lock_token, &held, err);
    if (r != DT_OK)
        return r;
    if (!held)
        return dt_error_set(err, DT_ERR_LEASE_LOST,
                            "commit: the lease on instance '%s' is no longer held", id);

    if (ep->reset_history) {
        /* Continue-as-new: the old execution's history goes, and so do its outstanding
         * activities, whose results would otherwise land in the new execution's inbox with
         * task ids that the new history may reuse. */
        static const store_stmt_id resets[] = {ST_HISTORY_DELETE, ST_ACTIVITY_DELETE_ALL};
        for (size_t i = 0; i < 2; i++) {
            st = store_stmt(s, resets[i]);
            rc = SQLITE_OK;
            store_bind_text(st, 1, id, &rc);
            r = rc == SQLITE_OK ? store_step_done(s, st, err, "reset history")
                                : store_sql_error(s, rc, err, "reset history");
            if (r != DT_OK)
                return r;
        }
    }
    if ((r = append_history_tx(s, id, ep, err)) != DT_OK)
        return r;
    /* the row, with the lease released */
    if ((r = update_row_tx(s, id, ep, err)) != DT_OK)
        return r;
    for (size_t i = 0; i < ep->n_activities; i++)
        if ((r = insert_activity_tx(s, id, &ep->activities[i], err)) != DT_OK)
            return r;
    /* sub-orchestrations before messages, so a message to a new child finds it */
    for (size_t i = 0; i < ep->n_instances; i++) {
        r = store_create_instance_tx(s, &ep->instances[i], err);
        /* A child with this id that is still live stays as it is and this creation is
         * skipped (the hub refines what the parent then sees). */
        if (r == DT_ERR_ALREADY_EXISTS)
            r = DT_OK;
        if (r != DT_OK)
            return r;
    }
    for (size_t i = 0; i < ep->n_messages; i++) {
        bool delivered;
        /* A message to an instance that does not exist is dropped: the protocol's rule for
         * events sent to missing instances. The episode still commits. */
        if ((r = store_insert_message_tx(s, &ep->messages[i], id, &delivered, err)) != DT_OK)
            return r;
    }
    /* the consumed messages; any that arrived during the episode stay for the next one */
    for (size_t i = 0; i < item->n_message_ids; i++) {
        st = store_stmt(s, ST_INBOX_DELETE_ONE);
        rc = SQLITE_OK;
        store_bind_int64(st, 1, item->message_ids[i], &rc);
        store_bind_text(st, 2, id, &rc);
        r = rc == SQLITE_OK ? store_step_done(s, st, err, "delete consumed message")
                            : store_sql_error(s, rc, err, "delete consumed message");
        if (r != DT_OK)
            return r;
    }
    return DT_OK;
}

static dt_status apply_activity_tx(sqlite_store *s, const dt_activity_done *done, dt_error *err)
{
    const dt_activity_item *item = done->item;
    if (item == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "activity result without a work item");
    sqlite3_stmt *st = store_stmt(s, ST_ACTIVITY_LOCK_OWNER);
    int rc = SQLITE_OK;
    store_bind_int64(st, 1, item->id, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "check lease");
    bool held = false;
    dt_status r = check_lock(s, st, item->lock_token, &held, err);
    if (r != DT_OK)
        return r;
    if (!held)
        return dt_error_set(err, DT_ERR_LEASE_LOST,
                            "commit: the lease on activity %lld ('%s' for instance '%s') is no "
                            "longer held",
                            (long long)item->id, item->name ? item->name : "",
                            item->instance_id ? item->instance_id : "");
    bool delivered;
    /* the result belongs to the execution that scheduled the activity, unless told otherwise */
    dt_message m = done->message;
    if (m.execution_id == NULL)
        m.execution_id = item->execution_id;
    /* dropped if the orchestration is gone (purged or replaced meanwhile) */
    r = store_insert_message_tx(s, &m, item->instance_id, &delivered, err);
    if (r != DT_OK)
        return r;
    st = store_stmt(s, ST_ACTIVITY_DELETE_ONE);
    rc = SQLITE_OK;
    store_bind_int64(st, 1, item->id, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "delete activity");
    return store_step_done(s, st, err, "delete activity");
}

/* entry_level: errors that concern one entry only; the rest of the batch goes on. Anything
 * else means the database itself failed and the whole transaction is rolled back. */
static bool entry_level(dt_status r)
{
    return r == DT_ERR_LEASE_LOST || r == DT_ERR_INVALID_ARG;
}

/* If entries fail alone, the call still returns DT_OK and ERR holds the first such entry's
 * code and message (for logging); each entry's own result says which failed. */
dt_status store_sqlite_commit(dt_store *base, dt_commit *batch, size_t n, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    dt_error_clear(err);
    if (n == 0)
        return DT_OK;
    dt_error scratch;
    bool noted = false;
    pthread_mutex_lock(&s->mu);
    dt_status r = store_begin_write(s, err);
    for (size_t i = 0; r == DT_OK && i < n; i++) {
        dt_commit *c = &batch[i];
        r = store_exec(s, ST_SAVEPOINT, err, "savepoint");
        if (r != DT_OK)
            break;
        dt_error_clear(&scratch);
        dt_status er;
        if (c->kind == DT_COMMIT_EPISODE)
            er = apply_episode_tx(s, &c->u.episode, &scratch);
        else if (c->kind == DT_COMMIT_ACTIVITY)
            er = apply_activity_tx(s, &c->u.activity, &scratch);
        else
            er = dt_error_set(&scratch, DT_ERR_INVALID_ARG, "commit entry %zu has kind %d", i,
                              (int)c->kind);
        c->result = er;
        if (er == DT_OK) {
            r = store_exec(s, ST_RELEASE, err, "release savepoint");
        } else if (entry_level(er)) {
            r = store_exec(s, ST_ROLLBACK_TO, err, "rollback entry");
            if (r == DT_OK)
                r = store_exec(s, ST_RELEASE, err, "release savepoint");
            if (!noted && err) {
                *err = scratch;
                noted = true;
            }
        } else {
            r = er;
            if (err)
                *err = scratch;
        }
    }
    if (r == DT_OK) {
        dt_error saved;
        dt_error_clear(&saved);
        if (err)
            saved = *err;
        r = store_commit_tx(s, err);
        if (r == DT_OK && err)
            *err = saved;
    }
    if (r != DT_OK) {
        store_rollback(s);
        for (size_t i = 0; i < n; i++)
            batch[i].result = r;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}
