/* sqlite_entity.c — the SQLite backend's entities: an entity's row (state, the lock of a
 * critical section, its lease) and its queue (entity_inbox), messages in, leases out, the
 * writes of a step and of an episode that unlocks, and the client's reads, queries and
 * cleaning. Which messages a step takes is the hub's business (src/hub/entity.c); the store
 * only hands out those the lock lets through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

/* How many messages a lease reads per entity: more than a step takes (the hub's batch is
 * smaller), so a step never waits for a second read, yet a long backlog is not read whole on
 * every step. */
#define LOAD_WINDOW 200

dt_status store_entity_message_tx(sqlite_store *s, const dt_entity_message *m, dt_error *err)
{
    dt_status r = dt_entity_id_validate(m->entity_id, err);
    if (r != DT_OK)
        return r;
    char name[DT_INSTANCE_ID_MAX + 1];
    store_entity_name(m->entity_id, name, sizeof name);
    sqlite3_stmt *st = store_stmt(s, ST_ENTITY_UPSERT);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, m->entity_id, &rc);
    store_bind_text(st, 2, name, &rc);
    store_bind_int64(st, 3, dt_now(), &rc);
    r = rc == SQLITE_OK ? store_step_done(s, st, err, "create entity")
                        : store_sql_error(s, rc, err, "create entity");
    if (r != DT_OK)
        return r;
    uint8_t *blob = NULL;
    size_t len = 0;
    if ((r = store_encode_event(&m->event, &blob, &len, err)) != DT_OK)
        return r;
    st = store_stmt(s, ST_ENTITY_INBOX_INSERT);
    store_bind_text(st, 1, m->entity_id, &rc);
    store_bind_int64(st, 2, m->visible_at, &rc);
    store_bind_text(st, 3, m->sender, &rc);
    store_bind_text(st, 4, m->sender_execution, &rc);
    store_bind_blob(st, 5, blob, len, &rc);
    store_bind_text(st, 6, name, &rc);
    r = rc == SQLITE_OK ? store_step_done(s, st, err, "queue entity message")
                        : store_sql_error(s, rc, err, "queue entity message");
    sqlite3_clear_bindings(st);
    free(blob);
    return r;
}

dt_status store_sqlite_send_entity_message(dt_store *base, const dt_entity_message *m,
                                           dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    pthread_mutex_lock(&s->mu);
    dt_status r = store_begin_write(s, err);
    if (r == DT_OK)
        r = store_entity_message_tx(s, m, err);
    if (r == DT_OK)
        r = store_commit_tx(s, err);
    if (r != DT_OK)
        store_rollback(s);
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* run_id_update: statement ID with ?1 the entity and ?2..?3 the given texts (NULL binds
 * NULL), inside the caller's transaction. */
static dt_status run_id_update(sqlite_store *s, store_stmt_id id, const char *a,
                               const char *b, const char *c, dt_error *err, const char *what)
{
    sqlite3_stmt *st = store_stmt(s, id);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, a, &rc);
    if (b)
        store_bind_text(st, 2, b, &rc);
    if (c)
        store_bind_text(st, 3, c, &rc);
    return rc == SQLITE_OK ? store_step_done(s, st, err, what) : store_sql_error(s, rc, err, what);
}

dt_status store_entity_unlock_tx(sqlite_store *s, const char *holder, const dt_entity_unlock *u,
                                 dt_error *err)
{
    if (u->entity_id == NULL || holder == NULL)
        return DT_OK;
    return run_id_update(s, ST_ENTITY_UNLOCK, u->entity_id, holder, u->section ? u->section : "",
                         err, "unlock entity");
}

dt_status store_entity_release_tx(sqlite_store *s, const char *holder, dt_error *err)
{
    return run_id_update(s, ST_ENTITY_RELEASE_ALL, holder, NULL, NULL, err,
                         "release entity locks");
}

/* ---- a step's commit ------------------------------------------------------------------------ */

static dt_status update_row_tx(sqlite_store *s, const dt_entity_step *step, dt_error *err)
{
    const dt_entity_item *item = step->item;
    sqlite3_stmt *st = store_stmt(s, ST_ENTITY_STEP);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->entity_id, &rc);
    store_bind_text(st, 2, item->lock_token, &rc);
    store_bind_int64(st, 3, dt_now(), &rc);
    store_bind_int64(st, 4, step->set_state, &rc);
    store_bind_text(st, 5, step->state, &rc);
    store_bind_int64(st, 6, step->set_lock, &rc);
    store_bind_text(st, 7, step->locked_by, &rc);
    store_bind_text(st, 8, step->locked_execution, &rc);
    store_bind_text(st, 9, step->lock_section, &rc);
    dt_status r = rc == SQLITE_OK ? store_step_done(s, st, err, "update entity")
                                  : store_sql_error(s, rc, err, "update entity");
    sqlite3_clear_bindings(st);
    if (r == DT_OK && (item->lock_token == NULL || sqlite3_changes(s->db) == 0))
        r = dt_error_set(err, DT_ERR_LEASE_LOST,
                         "commit: the lease on entity '%s' is no longer held", item->entity_id);
    return r;
}

dt_status store_entity_step_tx(sqlite_store *s, const dt_entity_step *step, dt_error *err)
{
    if (step->item == NULL || step->item->entity_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "entity step without a work item");
    const char *id = step->item->entity_id;
    dt_status r = update_row_tx(s, step, err);
    for (size_t i = 0; r == DT_OK && i < step->n_consumed; i++) {
        sqlite3_stmt *st = store_stmt(s, ST_ENTITY_INBOX_DELETE_ONE);
        int rc = SQLITE_OK;
        store_bind_int64(st, 1, step->consumed[i], &rc);
        store_bind_text(st, 2, id, &rc);
        r = rc == SQLITE_OK ? store_step_done(s, st, err, "delete entity message")
                            : store_sql_error(s, rc, err, "delete entity message");
    }
    for (size_t i = 0; r == DT_OK && i < step->n_instances; i++) {
        r = store_create_instance_tx(s, &step->instances[i], err);
        if (r == DT_ERR_ALREADY_EXISTS)   /* the step stands; the hub logged it */
            r = DT_OK;
    }
    for (size_t i = 0; r == DT_OK && i < step->n_messages; i++) {
        bool delivered;   /* an answer to an orchestration that is gone is dropped */
        r = store_insert_message_tx(s, &step->messages[i], NULL, &delivered, err);
    }
    for (size_t i = 0; r == DT_OK && i < step->n_entity_messages; i++)
        r = store_entity_message_tx(s, &step->entity_messages[i], err);
    /* last, once what it sent (to itself too) is in: an entity left empty is gone */
    if (r == DT_OK && store_step_empties(step))
        r = run_id_update(s, ST_ENTITY_DROP_EMPTY, id, NULL, NULL, err, "remove empty entity");
    return r;
}

/* ---- leases ---------------------------------------------------------------------------------- */

/* load_queue_tx: ITEM's messages it may take now, in arrival order. */
static dt_status load_queue_tx(sqlite_store *s, dt_entity_item *item, dt_time now,
                               dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, ST_ENTITY_INBOX_LOAD);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->entity_id, &rc);
    store_bind_int64(st, 2, now, &rc);
    store_bind_text(st, 3, item->locked_by, &rc);
    store_bind_int64(st, 4, LOAD_WINDOW, &rc);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "read entity queue");
    dt_entity_message *msgs = dt_arena_alloc(item->arena, LOAD_WINDOW * sizeof *msgs);
    int64_t *ids = dt_arena_alloc(item->arena, LOAD_WINDOW * sizeof *ids);
    if (msgs == NULL || ids == NULL) {
        sqlite3_reset(st);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading entity '%s'",
                            item->entity_id);
    }
    size_t n = 0;
    dt_status r = DT_OK;
    while (r == DT_OK && n < LOAD_WINDOW && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        dt_entity_message *m = &msgs[n];
        ids[n] = sqlite3_column_int64(st, 0);
        m->entity_id = item->entity_id;
        m->visible_at = sqlite3_column_int64(st, 1);
        m->sender = store_col_text(item->arena, st, 2, &r);
        m->sender_execution = store_col_text(item->arena, st, 3, &r);
        char what[160];
        snprintf(what, sizeof what, "message %lld of entity '%.100s'", (long long)ids[n],
                 item->entity_id);
        if (r == DT_OK)
            r = store_decode_column(st, 4, item->arena, &m->event, err, what);
        else
            dt_error_set(err, r, "out of memory reading entity '%s'", item->entity_id);
        n++;
    }
    if (r == DT_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = store_sql_error(s, rc, err, "read entity queue");
    sqlite3_reset(st);
    item->messages = msgs;
    item->message_ids = ids;
    item->n_messages = r == DT_OK ? n : 0;
    return r;
}

/* lease_one_tx: lease ITEM's entity (entity_id set) and read its row and queue. */
static dt_status lease_one_tx(sqlite_store *s, dt_entity_item *item, const char *owner,
                              dt_time now, dt_time until, bool *taken, dt_error *err)
{
    *taken = false;
    item->lock_token = store_new_token(item->arena, owner);
    item->locked_until = until;
    if (item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing '%s'", item->entity_id);
    sqlite3_stmt *st = store_stmt(s, ST_ENTITY_LEASE);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, item->entity_id, &rc);
    store_bind_text(st, 2, item->lock_token, &rc);
    store_bind_int64(st, 3, until, &rc);
    store_bind_int64(st, 4, now, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    dt_status r = DT_OK;
    bool row = rc == SQLITE_ROW;
    if (row) {
        item->state = store_col_text(item->arena, st, 0, &r);
        item->locked_by = store_col_text(item->arena, st, 1, &r);
        item->locked_execution = store_col_text(item->arena, st, 2, &r);
        item->lock_section = store_col_text(item->arena, st, 3, &r);
        if (r != DT_OK)
            dt_error_set(err, r, "out of memory leasing '%s'", item->entity_id);
        else if ((rc = sqlite3_step(st)) != SQLITE_DONE)
            r = store_sql_error(s, rc, err, "lease entity");
    } else if (rc != SQLITE_DONE) {
        r = store_sql_error(s, rc, err, "lease entity");
    }
    sqlite3_reset(st);
    if (r != DT_OK || !row)
        return r;   /* taken by someone else meanwhile: not ours */
    *taken = true;
    return load_queue_tx(s, item, now, err);
}

dt_status store_sqlite_lease_entities(dt_store *base, const char *owner, dt_time now,
                                      int64_t lease_us, size_t max, const dt_name_filter *names,
                                      dt_entity_item **out, size_t *n_out, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    dt_time until = store_lease_end(now, lease_us);
    store_cands cands = {NULL, 0, 0};
    dt_status r = DT_OK;
    pthread_mutex_lock(&s->mu);
    if (!store_any_work(s, STORE_WORK_ENTITY, now, names))
        goto done;
    if ((r = store_begin_lease(s, err)) != DT_OK)
        goto done;
    r = store_find_work(s, STORE_WORK_ENTITY, now, names, max, &cands, err);
    size_t kept = 0;
    for (size_t i = 0; r == DT_OK && i < cands.n; i++) {
        dt_entity_item *item = NULL;
        bool taken = false;
        r = store_entity_item_new(cands.c[i].id, &item, err);
        if (r == DT_OK)
            r = lease_one_tx(s, item, owner, now, until, &taken, err);
        if (r == DT_OK && taken)
            out[kept++] = item;   /* freed below should the commit fail */
        else
            dt_entity_item_free(item);
    }
    if (r == DT_OK)
        r = store_commit_tx(s, err);
    if (r == DT_OK) {
        *n_out = kept;
        goto done;
    }
    store_rollback(s);
    for (size_t i = 0; i < kept; i++) {
        dt_entity_item_free(out[i]);
        out[i] = NULL;
    }
done:
    pthread_mutex_unlock(&s->mu);
    store_cands_free(&cands);
    return r;
}

dt_status store_sqlite_renew_entity(dt_store *base, const dt_entity_item *item, dt_time until,
                                    dt_error *err)
{
    if (item == NULL || item->entity_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "renew: not a leased entity");
    return store_token_update((sqlite_store *)base, ST_ENTITY_RENEW, item->entity_id, 0,
                              item->lock_token, true, until, err, "renew");
}

dt_status store_sqlite_abandon_entity(dt_store *base, const dt_entity_item *item,
                                      dt_time retry_at, dt_error *err)
{
    if (item == NULL || item->entity_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "abandon: not a leased entity");
    return store_token_update((sqlite_store *)base, ST_ENTITY_ABANDON, item->entity_id, 0,
                              item->lock_token, true, retry_at > 0 ? retry_at : 0, err,
                              "abandon");
}

/* ---- reads ------------------------------------------------------------------------------------ */

/* read_entity: the current row of ST (id, state, last_modified, locked_by, backlog). */
static dt_status read_entity(sqlite3_stmt *st, bool with_state, dt_arena *arena,
                             dt_entity_state *e)
{
    dt_status r = DT_OK;
    memset(e, 0, sizeof *e);
    e->entity_id = store_col_text(arena, st, 0, &r);
    e->has_state = sqlite3_column_type(st, 1) != SQLITE_NULL;
    if (with_state)
        e->state = store_col_text(arena, st, 1, &r);
    e->last_modified = sqlite3_column_int64(st, 2);
    e->locked_by = store_col_text(arena, st, 3, &r);
    e->backlog = sqlite3_column_int(st, 4);
    return r;
}

dt_status store_sqlite_get_entity(dt_store *base, const char *id, bool with_state,
                                  dt_arena *arena, dt_entity_state **out, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    dt_entity_state *e = dt_arena_alloc(arena, sizeof *e);
    if (e == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = store_stmt(s, ST_ENTITY_GET);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    dt_status r;
    if (rc == SQLITE_ROW)
        r = read_entity(st, with_state, arena, e) == DT_OK
                ? DT_OK
                : dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    else if (rc == SQLITE_DONE)
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no entity '%s'", id);
    else
        r = store_sql_error(s, rc, err, "read entity");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->mu);
    if (r == DT_OK)
        *out = e;
    return r;
}

dt_status store_sqlite_query_entities(dt_store *base, const dt_entity_query *q, dt_arena *arena,
                                      dt_entity_state **out, size_t *n_out, const char **next,
                                      dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *out = NULL;
    *n_out = 0;
    *next = NULL;
    size_t page;
    dt_status r = store_entity_page_size(q, &page, err);
    if (r != DT_OK)
        return r;
    char *hi = NULL;
    const char *lo = q->id_prefix ? q->id_prefix : "";
    r = lo[0] ? store_prefix_end(lo, &hi, err) : DT_OK;
    if (r != DT_OK)
        return r;
    dt_entity_state *rows = dt_arena_alloc(arena, (page + 1) * sizeof *rows);
    if (rows == NULL) {
        free(hi);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = store_stmt(s, ST_ENTITY_QUERY);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, lo, &rc);
    if (hi)
        store_bind_text(st, 2, hi, &rc);
    else if (rc == SQLITE_OK)
        rc = sqlite3_bind_zeroblob(st, 2, 0);   /* every text sorts below a blob */
    store_bind_text(st, 3, q->continuation && q->continuation[0] ? q->continuation : NULL, &rc);
    store_bind_int64(st, 4, q->modified_from ? q->modified_from : INT64_MIN, &rc);
    store_bind_int64(st, 5, q->modified_to ? q->modified_to : INT64_MAX, &rc);
    store_bind_int64(st, 6, q->include_transient, &rc);
    store_bind_int64(st, 7, (int64_t)page + 1, &rc);
    size_t n = 0, bytes = 0;
    bool cut = false;
    while (r == DT_OK && rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_entity(st, q->with_state, arena, &rows[n]) != DT_OK) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
            break;
        }
        size_t b = rows[n].state ? strlen(rows[n].state) : 0;
        if (n > 0 && n < page && bytes + b > DT_QUERY_PAGE_BYTES) {   /* it starts the next */
            cut = true;
            rc = SQLITE_DONE;
            break;
        }
        bytes += b;
        n++;
        rc = SQLITE_OK;
    }
    if (r == DT_OK && rc != SQLITE_OK && rc != SQLITE_DONE)
        r = store_sql_error(s, rc, err, "query entities");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&s->mu);
    free(hi);
    if (r != DT_OK)
        return r;
    if (n > page || cut) {   /* one more than a page, or its bytes reached: a next one */
        n = n > page ? page : n;
        *next = rows[n - 1].entity_id;
    }
    *out = n ? rows : NULL;
    *n_out = n;
    return DT_OK;
}

/* clean_run: statement ID (?1 NOW) in the open transaction; the rows it changed in *N. */
static dt_status clean_run(sqlite_store *s, store_stmt_id id, dt_time now, size_t *n,
                           dt_error *err, const char *what)
{
    sqlite3_stmt *st = store_stmt(s, id);
    int rc = SQLITE_OK;
    if (sqlite3_bind_parameter_count(st) >= 1)
        store_bind_int64(st, 1, now, &rc);
    dt_status r = rc == SQLITE_OK ? store_step_done(s, st, err, what)
                                  : store_sql_error(s, rc, err, what);
    if (r == DT_OK)
        *n = (size_t)sqlite3_changes(s->db);
    return r;
}

dt_status store_sqlite_clean_entities(dt_store *base, bool remove_empty, bool release_orphaned,
                                      dt_time now, size_t *removed, size_t *released,
                                      dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *removed = *released = 0;
    pthread_mutex_lock(&s->mu);
    dt_status r = store_begin_write(s, err);
    /* orphaned locks first: an entity whose only hold was an orphaned lock is then empty */
    if (r == DT_OK && release_orphaned)
        r = clean_run(s, ST_ENTITY_CLEAN_ORPHANED, now, released, err, "release orphaned locks");
    if (r == DT_OK && remove_empty)
        r = clean_run(s, ST_ENTITY_CLEAN_EMPTY, now, removed, err, "remove empty entities");
    if (r == DT_OK)
        r = store_commit_tx(s, err);
    if (r != DT_OK) {
        store_rollback(s);
        *removed = *released = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}
