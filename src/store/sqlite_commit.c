/* sqlite_commit.c — the SQLite backend's group commit: many episode results, activity
 * results, entity steps and starts in one write transaction, so one fsync covers them all. Each entry runs
 * inside a savepoint: an entry whose lease is gone (or whose data cannot be encoded) is
 * rolled back alone and the others still apply; a failure of the database itself rolls back
 * the whole batch. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sqlite_internal.h"

static dt_status append_history_tx(sqlite_store *s, const char *id, const dt_episode *ep,
                                   dt_error *err)
{
    /* seqs stay dense from 0 (after a reset too): item->history_len relies on it. Nothing
     * was appended while the lease was held, so the lease's count is still the length. */
    int64_t seq = ep->reset_history ? 0 : (int64_t)ep->item->history_len;
    dt_status r = DT_OK;

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
                               bool *checked, dt_error *err)
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
    store_bind_int64(st, 7, ep->updated_at ? ep->updated_at : dt_now(), &rc);
    store_bind_text(st, 8, ep->name, &rc);
    store_bind_text(st, 9, ep->input, &rc);
    store_bind_text(st, 10, ep->execution_id, &rc);
    store_bind_text(st, 11, ep->item->lock_token, &rc);
    store_bind_text(st, 12, ep->version, &rc);
    store_bind_text(st, 13, ep->span_id, &rc);
    store_bind_int64(st, 14, ep->span_start, &rc);
    store_bind_text(st, 15, ep->tags, &rc);
    store_bind_int64(st, 16, ep->reset_history ? 1 : 0, &rc);
    r = rc == SQLITE_OK ? store_step_done(s, st, err, "update instance")
                        : store_sql_error(s, rc, err, "update instance");
    sqlite3_clear_bindings(st);
    free(failure);
    /* the row changes only under the lease: no change, no lease */
    if (r == DT_OK && (ep->item->lock_token == NULL || sqlite3_changes(s->db) == 0))
        r = dt_error_set(err, DT_ERR_LEASE_LOST,
                         "commit: the lease on instance '%s' is no longer held", id);
    *checked |= r == DT_OK;
    if (r == DT_OK && ep->name) {   /* a new execution: its waiting messages take its name */
        st = store_stmt(s, ST_INBOX_RENAME);
        store_bind_text(st, 1, id, &rc);
        store_bind_text(st, 2, ep->name, &rc);
        r = rc == SQLITE_OK ? store_step_done(s, st, err, "rename inbox")
                            : store_sql_error(s, rc, err, "rename inbox");
    }
    return r;
}

static dt_status insert_activity_tx(sqlite_store *s, const char *id, const dt_new_activity *a,
                                   store_ready *rd, dt_error *err)
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
    store_bind_text(st, 8, e->trace_parent, &rc);
    store_bind_text(st, 9, e->trace_state, &rc);
    store_bind_text(st, 10, e->tags, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "insert activity");
    dt_status r = store_step_done(s, st, err, "insert activity");
    if (r == DT_OK)
        store_ready_activity(rd, sqlite3_last_insert_rowid(s->db), a->visible_at);
    return r;
}

/* delete_activity_tx: DONE's work item deleted, under its lease: no row deleted, no lease
 * (then nothing was written). */
static dt_status delete_activity_tx(sqlite_store *s, const dt_activity_done *done,
                                    dt_error *err)
{
    const dt_activity_item *item = done->item;
    if (item == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "activity result without a work item");
    sqlite3_stmt *st = store_stmt(s, ST_ACTIVITY_DELETE_ONE);
    int rc = SQLITE_OK;
    store_bind_int64(st, 1, item->id, &rc);
    store_bind_text(st, 2, item->lock_token, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "delete activity");
    dt_status r = store_step_done(s, st, err, "delete activity");
    if (r == DT_OK && (item->lock_token == NULL || sqlite3_changes(s->db) == 0))
        r = dt_error_set(err, DT_ERR_LEASE_LOST,
                         "commit: the lease on activity %lld ('%s' for instance '%s') is no "
                         "longer held",
                         (long long)item->id, item->name ? item->name : "",
                         item->instance_id ? item->instance_id : "");
    return r;
}

/* deliver_result_tx: DONE's result to its orchestration's inbox. */
static dt_status deliver_result_tx(sqlite_store *s, const dt_activity_done *done,
                                   store_ready *rd, dt_error *err)
{
    const dt_activity_item *item = done->item;
    bool delivered;
    /* the result belongs to the execution that scheduled the activity, unless told otherwise */
    dt_message m = done->message;
    if (m.execution_id == NULL)
        m.execution_id = item->execution_id;
    /* dropped if the orchestration is gone (purged or replaced meanwhile) */
    dt_status r = store_insert_message_tx(s, &m, item->instance_id, &delivered, err);
    if (r == DT_OK && delivered)
        store_ready_instance(rd, item->instance_id, m.visible_at);
    return r;
}

/* claim_tx: a speculative episode's lease (dt_episode.consumes), taken in the commit's own
 * transaction: *CLAIMED when the instance is as the episode's item says. */
static dt_status claim_tx(sqlite_store *s, const dt_orch_item *item, bool *claimed,
                          dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_CLAIM);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->instance_id, &rc);
    store_bind_text(st, 2, item->lock_token, &rc);
    store_bind_int64(st, 3, item->locked_until, &rc);
    store_bind_text(st, 4, item->state.execution_id, &rc);
    store_bind_int64(st, 5, item->history_gen, &rc);
    store_bind_int64(st, 6, DT_STATUS_RUNNING, &rc);
    store_bind_int64(st, 7, (int64_t)item->history_len, &rc);
    dt_status r = rc == SQLITE_OK ? store_step_done(s, st, err, "claim instance")
                                  : store_sql_error(s, rc, err, "claim instance");
    sqlite3_clear_bindings(st);
    *claimed = r == DT_OK && item->lock_token != NULL && sqlite3_changes(s->db) > 0;
    return r;
}

/* apply_episode_tx and apply_activity_tx set *CHECKED once their lease check, their first
 * statement, has passed: a refusal before that has changed nothing (see store_run_batch). */
static dt_status apply_episode_tx(sqlite_store *s, dt_episode *ep, store_ready *rd,
                                  bool *checked, dt_error *err)
{
    const dt_orch_item *item = ep->item;
    if (item == NULL || item->instance_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "episode without a work item");
    const char *id = item->instance_id;
    dt_status r;
    ep->refused = false;
    bool grows = ep->n_append || ep->n_activities || ep->n_instances || ep->n_messages ||
                 ep->n_entity_messages;   /* a discard of a start that never ran does not */
    if (grows && !dt_runtime_status_is_terminal(ep->status) &&
        (r = store_sqlite_room_to_go_on(s, id, err)) != DT_OK)
        return r;
    if (ep->consumes) {
        /* speculative: the activity's row goes first, under its lease (else nothing is
         * written and the entry fails); then the instance's lease, or the result goes to
         * the inbox as an activity result would */
        if ((r = delete_activity_tx(s, ep->consumes, err)) != DT_OK)
            return r;
        *checked = true;
        bool claimed;
        if ((r = claim_tx(s, item, &claimed, err)) != DT_OK)
            return r;
        if (!claimed) {
            ep->refused = true;
            return deliver_result_tx(s, ep->consumes, rd, err);
        }
    }

    /* the row first, with the lease released: it fails if the lease is gone */
    r = update_row_tx(s, id, ep, checked, err);
    if (r != DT_OK)
        return r;
    sqlite3_stmt *st;
    int rc;
    /* the consumed messages, before anything is added: at the database's size limit the pages
     * they free are what the rest is written to (a terminate ends an instance whose start
     * never ran on what its start message held). Any that arrived during the episode stay
     * for the next one. */
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
    for (size_t i = 0; i < ep->n_activities; i++)
        if ((r = insert_activity_tx(s, id, &ep->activities[i], rd, err)) != DT_OK)
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
        store_ready_instance(rd, ep->instances[i].instance_id, ep->instances[i].scheduled_start);
    }
    for (size_t i = 0; i < ep->n_messages; i++) {
        bool delivered;
        /* A message to an instance that does not exist is dropped: the protocol's rule for
         * events sent to missing instances. The episode still commits. */
        const dt_message *m = &ep->messages[i];
        if ((r = store_insert_message_tx(s, m, id, &delivered, err)) != DT_OK)
            return r;
        if (delivered)
            store_ready_instance(rd, m->instance_id ? m->instance_id : id, m->visible_at);
    }
    /* entities: what the episode sent, the unlocks it sent (applied at once: the holder needs
     * no turn in the queue to let go), and every lock of an execution that ended */
    for (size_t i = 0; i < ep->n_entity_messages; i++)
        if ((r = store_entity_message_tx(s, &ep->entity_messages[i], err)) != DT_OK)
            return r;
    for (size_t i = 0; i < ep->n_unlocks; i++)
        if ((r = store_entity_unlock_tx(s, id, &ep->unlocks[i], err)) != DT_OK)
            return r;
    if (ep->release_locks && (r = store_entity_release_tx(s, id, err)) != DT_OK)
        return r;
    /* messages that came while the episode ran are ready for the next one */
    store_ready_own(rd, id, dt_runtime_status_is_terminal(ep->status));
    return DT_OK;
}

static dt_status apply_activity_tx(sqlite_store *s, const dt_activity_done *done,
                                   store_ready *rd, bool *checked, dt_error *err)
{
    /* the work item goes first, under its lease */
    dt_status r = delete_activity_tx(s, done, err);
    if (r != DT_OK)
        return r;
    *checked = true;
    return deliver_result_tx(s, done, rd, err);
}

static dt_status apply_entity_tx(sqlite_store *s, const dt_entity_step *step, store_ready *rd,
                                 dt_error *err)
{
    dt_status r = store_entity_step_tx(s, step, err);
    for (size_t i = 0; r == DT_OK && i < step->n_messages; i++)
        store_ready_instance(rd, step->messages[i].instance_id, step->messages[i].visible_at);
    for (size_t i = 0; r == DT_OK && i < step->n_instances; i++)
        store_ready_instance(rd, step->instances[i].instance_id,
                             step->instances[i].scheduled_start);
    return r;
}

static dt_status apply_start_tx(sqlite_store *s, const dt_new_instance *ni, store_ready *rd,
                                dt_error *err)
{
    dt_status r = store_create_instance_tx(s, ni, err);
    if (r == DT_OK)
        store_ready_instance(rd, ni->instance_id, ni->scheduled_start);
    return r;
}

/* apply_entry_tx: store_entry_ops' apply (STORE is the sqlite_store). */
static dt_status apply_entry_tx(void *store, dt_commit *c, size_t i, store_ready *rd,
                               bool *checked, dt_error *err)
{
    sqlite_store *s = store;
    switch (c->kind) {
    case DT_COMMIT_EPISODE:
        return apply_episode_tx(s, &c->u.episode, rd, checked, err);
    case DT_COMMIT_ACTIVITY:
        return apply_activity_tx(s, &c->u.activity, rd, checked, err);
    case DT_COMMIT_START:
        return apply_start_tx(s, &c->u.start, rd, err);
    case DT_COMMIT_ENTITY:
        return apply_entity_tx(s, &c->u.entity, rd, err);
    }
    return dt_error_set(err, DT_ERR_INVALID_ARG, "commit entry %zu has kind %d", i, (int)c->kind);
}

/* lease_ready: the leases of dt_commit_lease, inside the commit's transaction and its own
 * savepoint, so a failure takes back only the leases. But after SQLITE_FULL or an I/O error
 * SQLite may have rolled the whole transaction back on its own: then the batch failed with
 * that error (ERR), and committing would only say no transaction is active. */
static dt_status lease_ready(sqlite_store *s, store_ready *rd, dt_commit_lease *L, dt_error *err)
{
    dt_error scratch;
    if (store_exec(s, ST_SAVEPOINT, &scratch, "savepoint") != DT_OK)
        return DT_OK;
    dt_status r = store_lease_ready_tx(s, rd, L, &scratch);
    if (r == DT_OK) {
        store_exec(s, ST_RELEASE, &scratch, "release savepoint");
        return DT_OK;
    }
    store_lease_forget(L);
    if (sqlite3_get_autocommit(s->db)) {
        if (err)
            *err = scratch;
        return r;
    }
    store_exec(s, ST_ROLLBACK_TO, &scratch, "rollback leases");
    store_exec(s, ST_RELEASE, &scratch, "release savepoint");
    return DT_OK;
}

static dt_status savepoint_op(void *store, store_savepoint_op op, dt_error *err)
{
    static const store_stmt_id ids[] = {ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO};
    static const char *const what[] = {"savepoint", "release savepoint", "rollback entry"};
    return store_exec(store, ids[op], err, what[op]);
}

static bool ended_op(void *store)
{
    return sqlite3_get_autocommit(((sqlite_store *)store)->db) != 0;
}

static dt_status begin_op(void *store, bool deferred, dt_error *err)
{
    return deferred ? store_begin_lease(store, err) : store_begin_write(store, err);
}

static void rollback_op(void *store)
{
    store_rollback(store);
}

static const store_entry_ops entry_ops = {begin_op, rollback_op, apply_entry_tx, savepoint_op,
                                          ended_op, ended_op};

/* If entries fail alone, the call still returns DT_OK and ERR holds the first such entry's
 * code and message (for logging); each entry's own result says which failed. */
dt_status store_sqlite_commit(dt_store *base, dt_commit *batch, size_t n, dt_commit_lease *lease,
                              uint64_t *ticket, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    dt_error_clear(err);
    store_ready rd = store_ready_start(lease);
    if (n == 0)
        return DT_OK;
    /* a deferred commit writes the log without its fsync; store_sqlite_sync does it */
    bool deferred = ticket && s->full_sync;
    pthread_mutex_lock(&s->mu);
    dt_status r = store_run_batch(&entry_ops, s, deferred, batch, n, &rd, err);
    if (r == DT_OK && rd.on && (r = lease_ready(s, &rd, lease, err)) == DT_ERR_NO_SPACE) {
        /* no room to lease the work the batch made ready (leases rewrite rows): the batch
         * goes in without, its work left in the store for the takers, who are told to look */
        store_rollback(s);
        store_lease_forget(lease);
        lease->max_orchestrations = lease->max_activities = 0;
        rd.on = false;
        dt_error_clear(err);
        r = store_run_batch(&entry_ops, s, deferred, batch, n, &rd, err);
    }
    if (r == DT_OK) {
        dt_error saved;
        dt_error_clear(&saved);
        if (err)
            saved = *err;
        /* the ticket is counted before the commit can be seen (the reader and the history
         * reader connections may see it the moment it is in): a reader that takes the last
         * ticket after reading waits for everything it may have seen. A commit that fails
         * keeps its ticket too, so the batch is still published (as failed). */
        if (deferred)
            *ticket = atomic_fetch_add(&s->commit_seq, 1) + 1;
        r = store_commit_tx(s, err);
        if (deferred)   /* its frames are written (or it failed): a sync may count it now */
            atomic_store(&s->written_seq, *ticket);
        if (r == DT_OK && err)
            *err = saved;
        if (r == DT_OK)
            store_sqlite_look_at_size(s);
    }
    if (r != DT_OK) {
        store_rollback(s);
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

/* wal_open: our descriptor of the WAL file, opened again if SQLite replaced the file: a file
 * deleted or renamed over has no links left (one fstat per sync, not a stat of the path as
 * well). sync_mu held. */
static dt_status wal_open(sqlite_store *s, dt_error *err)
{
    const char *wal = s->wal_path;
    struct stat ours;
    if (s->wal_fd >= 0 && fstat(s->wal_fd, &ours) == 0 && ours.st_nlink > 0)
        return DT_OK;
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC);
    if (s->wal_fd < 0)
        return dt_error_set(err, DT_ERR_IO, "cannot open the write-ahead log %s to sync it: %s",
                            wal, strerror(errno));
    return DT_OK;
}

dt_status store_sqlite_sync(dt_store *base, uint64_t ticket, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    pthread_mutex_lock(&s->sync_mu);
    dt_status r = DT_OK;
    if (s->sync_failed) {
        r = dt_error_set(err, DT_ERR_IO, "an earlier fsync of the write-ahead log of %s failed; "
                         "nothing written since can be known durable until a restart",
                         s->path);
    } else if (ticket > s->synced) {
        /* every commit whose frames are written by now is covered by one fsync */
        uint64_t upto = atomic_load(&s->written_seq);
        r = wal_open(s, err);
        if (r == DT_OK && fdatasync(s->wal_fd) != 0) {
            r = dt_error_set(err, DT_ERR_IO, "fsync of the write-ahead log of %s failed: %s",
                             s->path, strerror(errno));
            s->sync_failed = true;
        }
        if (r == DT_OK)
            s->synced = upto;
    }
    pthread_mutex_unlock(&s->sync_mu);
    return r;
}

uint64_t store_sqlite_last_ticket(dt_store *base)
{
    return atomic_load(&((sqlite_store *)base)->commit_seq);
}
