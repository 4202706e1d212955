/* sqlite_query.c — the SQLite backend's queries and purges over instances. Both run one
 * filter (STORE_FILTER_WHERE in sqlite_internal.h) whose values store_filter_make (filter.c)
 * works out from a dt_query, always bound, never spliced into the SQL. Queries go newest
 * first (created_at, then id, descending) or, when asked, by instance id; the continuation
 * tokens are filter.c's; they run on the history reader connection, beside the writer.
 * Purges delete finished instances only, with their history, inbox and activities, a batch
 * of them a transaction. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

/* bind_filter: F into STORE_FILTER_WHERE's ?1 .. ?7, ?9 .. ?13 (?8 is a query's LIMIT). */
static void bind_filter(sqlite3_stmt *st, const store_filter *f, int *rc)
{
    store_bind_int64(st, 1, f->mask, rc);
    store_bind_int64(st, 2, f->from, rc);
    store_bind_int64(st, 3, f->to, rc);
    store_bind_text(st, 4, f->name, rc);
    store_bind_text(st, 5, f->lo, rc);
    if (f->hi != NULL)
        store_bind_text(st, 6, f->hi, rc);
    else
        store_bind_blob(st, 6, NULL, 0, rc);   /* an empty blob sorts above every text */
    store_bind_text(st, 7, f->skip, rc);
    if (f->done_from && *rc == SQLITE_OK)
        store_bind_int64(st, 9, f->done_from, rc);
    if (f->done_to && *rc == SQLITE_OK)
        store_bind_int64(st, 10, f->done_to, rc);
    store_bind_text(st, 11, f->version, rc);
    if (f->after_set && *rc == SQLITE_OK)
        store_bind_int64(st, 12, f->after_at, rc);
    store_bind_text(st, 13, f->after_id, rc);
}

dt_status store_sqlite_query_instances(dt_store *base, const dt_query *q, dt_arena *arena,
                                       dt_instance_state **out, size_t *n_out,
                                       const char **next, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *out = NULL;
    *n_out = 0;
    *next = NULL;
    size_t page;
    store_filter f;
    dt_status r = store_query_make(q, &page, &f, err);
    if (r != DT_OK)
        return r;
    dt_instance_state *states = dt_arena_alloc(arena, page * sizeof *states);
    if (states == NULL) {
        store_filter_free(&f);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a page of %zu instances",
                            page);
    }

    /* on the history reader, beside the writer (when it is there): a filter that no index
     * serves (a name, a version, a status) scans the instances, and that holds up no commit */
    bool beside = s->hist != NULL;
    sqlite3 *db = beside ? s->hist : s->db;
    pthread_mutex_t *mu = beside ? &s->hist_mu : &s->mu;
    pthread_mutex_lock(mu);
    /* one statement, so one snapshot: no transaction needed */
    bool by_id = q && q->by_id;
    bool full = q && q->with_payloads;
    store_stmt_id id = by_id ? (full ? ST_QUERY_FULL : ST_QUERY_BRIEF)
                             : (full ? ST_QUERY_FULL_NEWEST : ST_QUERY_BRIEF_NEWEST);
    sqlite3_stmt *st = beside ? store_stmt_of(s->hist_stmts, id) : store_stmt(s, id);
    int rc = SQLITE_OK;
    bind_filter(st, &f, &rc);
    store_bind_int64(st, 8, (int64_t)page + 1, &rc);   /* one more row: is there a next page? */
    if (rc != SQLITE_OK)
        r = store_db_error(s, db, rc, err, "query instances");
    size_t n = 0, bytes = 0;
    bool more = false;
    while (r == DT_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == page) {   /* the rest on the next page */
            more = true;
            break;
        }
        r = store_read_instance(st, arena, &states[n], err);
        if (r != DT_OK)
            break;
        size_t b = store_state_bytes(&states[n]);
        if (n > 0 && bytes + b > DT_QUERY_PAGE_BYTES) {   /* it starts the next */
            more = true;
            break;
        }
        bytes += b;
        n++;
    }
    if (r == DT_OK && !more && rc != SQLITE_DONE)
        r = store_db_error(s, db, rc, err, "query instances");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);   /* f.hi is bound SQLITE_STATIC and freed below */
    pthread_mutex_unlock(mu);
    store_filter_free(&f);
    if (r != DT_OK)
        return r;
    *out = n ? states : NULL;
    *n_out = n;
    return more ? store_query_next(q, &states[n - 1], arena, next, err) : DT_OK;
}

dt_status store_sqlite_purge_instance(dt_store *base, const char *id, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    if (id == NULL)
        return dt_error_set(err, DT_ERR_NOT_FOUND, "purge: no instance id given");
    pthread_mutex_lock(&s->mu);
    dt_status r = store_begin_write(s, err);
    if (r != DT_OK)
        goto done;
    sqlite3_stmt *st = store_stmt(s, ST_INSTANCE_STATUS);
    int rc = SQLITE_OK;
    store_bind_text(st, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        dt_runtime_status status = (dt_runtime_status)sqlite3_column_int(st, 0);
        if (!dt_runtime_status_is_terminal(status))
            r = dt_error_set(err, DT_ERR_STATE,
                             "cannot purge instance '%s': it is %s, and only a finished "
                             "instance can be purged",
                             id, dt_runtime_status_name(status));
    } else if (rc == SQLITE_DONE) {
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", id);
    } else {
        r = store_sql_error(s, rc, err, "read instance status");
    }
    sqlite3_reset(st);
    if (r == DT_OK)
        r = store_delete_instance_tx(s, id, err);
    if (r == DT_OK)
        r = store_commit_tx(s, err);
    if (r != DT_OK)
        store_rollback(s);
done:
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status store_sqlite_purge_instances(dt_store *base, const dt_query *q, size_t *n_purged,
                                       dt_error *err)
{
    /* what hangs off the rows first: the row filter must still find them */
    static const struct {
        store_stmt_id stmt;
        const char *what;
    } steps[] = {
        {ST_PURGE_HISTORY, "purge history"},
        {ST_PURGE_INBOX, "purge inbox"},
        {ST_PURGE_ACTIVITIES, "purge activities"},
        {ST_PURGE_INSTANCES, "purge instances"},
    };
    sqlite_store *s = (sqlite_store *)base;
    *n_purged = 0;
    store_filter f;
    dt_status r = store_filter_make(q, store_terminal_mask(), false, &f, err);
    if (r != DT_OK || f.mask == 0) {   /* no terminal status asked for: nothing to purge */
        store_filter_free(&f);
        return r;
    }
    /* a batch a transaction, the store's lock let go in between: a purge of a million
     * rows must not hold up every commit and read until it is done */
    int64_t purged = 0, batch;
    do {
        batch = 0;
        pthread_mutex_lock(&s->mu);
        r = store_begin_write(s, err);
        for (size_t i = 0; r == DT_OK && i < sizeof steps / sizeof steps[0]; i++) {
            sqlite3_stmt *st = store_stmt(s, steps[i].stmt);
            int rc = SQLITE_OK;
            bind_filter(st, &f, &rc);
            store_bind_int64(st, 14, STORE_PURGE_BATCH, &rc);
            r = rc == SQLITE_OK ? store_step_done(s, st, err, steps[i].what)
                                : store_sql_error(s, rc, err, steps[i].what);
            sqlite3_clear_bindings(st);   /* f.hi is bound SQLITE_STATIC and freed below */
            if (r == DT_OK && steps[i].stmt == ST_PURGE_INSTANCES)
                batch = sqlite3_changes64(s->db);
        }
        if (r == DT_OK)
            r = store_commit_tx(s, err);
        if (r != DT_OK)
            store_rollback(s);
        pthread_mutex_unlock(&s->mu);
        if (r == DT_OK)
            purged += batch;
    } while (r == DT_OK && batch == STORE_PURGE_BATCH);
    store_filter_free(&f);
    *n_purged = (size_t)purged;   /* what went, even if a later batch failed */
    return r;
}

/* count: the one integer STMT (bound with NOW as ?1) returns (mu held). */
static dt_status count(sqlite_store *s, store_stmt_id id, dt_time now, size_t *out,
                       dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, id);
    int rc = SQLITE_OK;
    store_bind_int64(st, 1, now, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    dt_status r = DT_OK;
    if (rc == SQLITE_ROW)
        *out = (size_t)sqlite3_column_int64(st, 0);
    else
        r = store_sql_error(s, rc, err, "count queued work");
    sqlite3_reset(st);
    return r;
}

dt_status store_sqlite_queue_depths(dt_store *base, dt_time now, size_t *orchestrations,
                                    size_t *activities, dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    *orchestrations = *activities = 0;
    pthread_mutex_lock(&s->mu);
    dt_status r = count(s, ST_DEPTH_ORCH, now, orchestrations, err);
    if (r == DT_OK)
        r = count(s, ST_DEPTH_ACT, now, activities, err);
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status store_sqlite_count_by_status(dt_store *base, size_t counts[DT_STATUS_COUNT],
                                       dt_error *err)
{
    sqlite_store *s = (sqlite_store *)base;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = store_stmt(s, ST_COUNT_BY_STATUS);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t status = sqlite3_column_int64(st, 0);
        if (status >= 0 && status < DT_STATUS_COUNT)
            counts[status] = (size_t)sqlite3_column_int64(st, 1);
    }
    dt_status r = rc == SQLITE_DONE ? DT_OK : store_sql_error(s, rc, err, "count instances");
    sqlite3_reset(st);
    pthread_mutex_unlock(&s->mu);
    return r;
}
