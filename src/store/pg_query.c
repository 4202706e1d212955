/* pg_query.c — the PostgreSQL backend's queries, purges and queue depths over instances, as
 * sqlite_query.c does them: the same filter values (store_filter_make, filter.c), the same
 * orders, page sizes and continuation tokens, in PostgreSQL's SQL (FILTER_WHERE below), every
 * value bound. Purges delete finished instances only, with their history, inbox and
 * activities, in one transaction. */
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* The filter of queries and purges, STORE_FILTER_WHERE (sqlite_internal.h) in PostgreSQL:
 *   $1 the status mask; $2, $3 the created_at range, inclusive; $4 the exact name or NULL;
 *   $5, $6 the id range [$5, $6), $6 NULL when it has no end ("C" collation: bytes); $7 an
 *   id to leave out or NULL; $8, $9 the completed_at range, NULL when open (a bound matches
 *   only finished instances: completed_at is 0 until then); $10 the exact
 *   version or NULL ('' matches rows without one); $11, $12 newest first: only rows below
 *   (created_at, instance_id) = ($11, $12), or NULL.
 * Every parameter is cast, so each has one type wherever it appears. A NULL test on a bound
 * value costs nothing: an unnamed statement is planned with its values, so the test folds
 * away and the id range stays a seek on the primary key. */
#define FILTER_WHERE                                                                        \
    " WHERE (($1::bigint >> status) & 1) = 1"                                               \
    " AND created_at >= $2::bigint AND created_at <= $3::bigint"                            \
    " AND ($4::text IS NULL OR name = $4::text)"                                            \
    " AND instance_id >= $5::text AND ($6::text IS NULL OR instance_id < $6::text)"         \
    " AND instance_id IS DISTINCT FROM $7::text"                                            \
    " AND ($8::bigint IS NULL OR completed_at >= $8::bigint)"                               \
    " AND ($9::bigint IS NULL OR completed_at <= $9::bigint)"                               \
    " AND ($8::bigint IS NULL AND $9::bigint IS NULL OR completed_at <> 0)"                 \
    " AND ($10::text IS NULL OR COALESCE(version, '') = $10::text)"                         \
    " AND ($11::bigint IS NULL OR (created_at, instance_id) < ($11::bigint, $12::text))"

/* without payloads: the same columns, with NULL for input, output and custom status */
#define BRIEF_COLUMNS                                                                       \
    "instance_id, execution_id, name, version, status, NULL, NULL, NULL, failure, "         \
    "created_at, last_updated_at, completed_at, scheduled_start, parent_instance_id, tags, " \
    "span_id, span_start"

/* The bytes of a row's payloads, failure and tags (DT_QUERY_PAGE_BYTES), of a full row and a
 * brief; bigint, as five of them may pass an int4 */
#define BRIEF_BYTES                                                                         \
    "COALESCE(octet_length(failure)::bigint, 0) + COALESCE(octet_length(tags)::bigint, 0)"
#define FULL_BYTES                                                                          \
    "COALESCE(octet_length(input)::bigint, 0) + COALESCE(octet_length(output)::bigint, 0)"  \
    " + COALESCE(octet_length(custom_status)::bigint, 0) + " BRIEF_BYTES

/* A page of COLS in ORDER: one row past it ($13 is page size + 1) tells whether there is a
 * next page; the rows whose bytes (BYTES) would take the page past $14 stay for the next
 * page, but for a first row (run = b: nothing before it counts), which a page always has.
 * Two columns follow COLS: the row's bytes, the page's bytes up to and including it; then
 * how many rows the page had before its bytes cut it (QUERY_ROWS_COL). */
#define PAGE_SQL(COLS, BYTES, ORDER)                                                        \
    "SELECT * FROM (SELECT *, sum(b) OVER (ORDER BY " ORDER " ROWS UNBOUNDED PRECEDING)"    \
    " AS run, count(*) OVER () AS n_rows"                                                   \
    " FROM (SELECT " COLS ", " BYTES " AS b FROM instances" FILTER_WHERE                    \
    " ORDER BY " ORDER " LIMIT $13::bigint) x) y"                                           \
    " WHERE run <= $14::bigint OR run = b ORDER BY " ORDER
#define QUERY_ROWS_COL 19   /* after the 17 of PG_INSTANCE_COLUMNS (or BRIEF_COLUMNS), b, run */

static const char *const query_sql[2][2] = {
    /* [newest first][with payloads] */
    [0][1] = PAGE_SQL(PG_INSTANCE_COLUMNS, FULL_BYTES, "instance_id"),
    [0][0] = PAGE_SQL(BRIEF_COLUMNS, BRIEF_BYTES, "instance_id"),
    /* newest first walks instances_by_created backwards */
    [1][1] = PAGE_SQL(PG_INSTANCE_COLUMNS, FULL_BYTES, "created_at DESC, instance_id DESC"),
    [1][0] = PAGE_SQL(BRIEF_COLUMNS, BRIEF_BYTES, "created_at DESC, instance_id DESC"),
};

/* ---- well-formed id ranges ------------------------------------------------------------------ */

/* well_formed_range: in a UTF8 database (mu held: it asks the connection), refuse an id
 * prefix that is not UTF-8, which no id can be compared with, and give F an upper end the
 * server takes. Other encodings take any bytes, and store_prefix_end's stand. */
static dt_status well_formed_range(pg_store *s, const dt_query *q, store_filter *f,
                                   dt_error *err)
{
    const char *enc = PQparameterStatus(s->conn, "server_encoding");
    if (f->hi == NULL || enc == NULL || strcmp(enc, "UTF8") != 0 || dt_utf8_valid(f->hi))
        return DT_OK;
    if (!dt_utf8_valid(q->id_prefix))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "query: id prefix '%.100s' is not UTF-8",
                            q->id_prefix);
    store_filter_free(f);
    return pg_utf8_prefix_end(q->id_prefix, &f->hi, err);
}

/* filter_params: F as FILTER_WHERE's $1 .. $12 (a time range's open end, 0, is NULL). */
static void filter_params(pg_params *p, const store_filter *f)
{
    pg_int(p, f->mask);
    pg_int(p, f->from);
    pg_int(p, f->to);
    pg_text(p, f->name);
    pg_text(p, f->lo);
    pg_text(p, f->hi);
    pg_text(p, f->skip);
    if (f->done_from)
        pg_int(p, f->done_from);
    else
        pg_text(p, NULL);
    if (f->done_to)
        pg_int(p, f->done_to);
    else
        pg_text(p, NULL);
    pg_text(p, f->version);
    if (f->after_set)
        pg_int(p, f->after_at);
    else
        pg_text(p, NULL);
    pg_text(p, f->after_id);
}

/* ---- queries -------------------------------------------------------------------------------- */

dt_status pg_query_instances(dt_store *base, const dt_query *q, dt_arena *arena,
                             dt_instance_state **out, size_t *n_out, const char **next,
                             dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *out = NULL;
    *n_out = 0;
    *next = NULL;
    size_t page;
    store_filter f;
    dt_status r = store_query_make(q, &page, &f, err);
    if (r != DT_OK)
        return r;
    bool newest = !(q && q->by_id);
    bool full = q && q->with_payloads;
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    r = well_formed_range(s, q, &f, err);
    if (r == DT_OK)
        r = pg_begin(s, err);
    if (r == DT_OK) {
        pg_params p = PG_PARAMS_INIT;
        filter_params(&p, &f);
        pg_int(&p, (int64_t)page + 1);
        pg_int(&p, (int64_t)DT_QUERY_PAGE_BYTES);
        r = pg_run(s, query_sql[newest][full], &p, &res, err, "query instances");
    }
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    store_filter_free(&f);
    if (r != DT_OK) {
        PQclear(res);
        return r;
    }

    size_t rows = (size_t)PQntuples(res);
    size_t n = rows > page ? page : rows;
    /* more: a row past the page, or rows its bytes left for the next page */
    bool more = n > 0 && pg_col_int(res, 0, QUERY_ROWS_COL) > (int64_t)n;
    dt_instance_state *states = n ? dt_arena_alloc(arena, n * sizeof *states) : NULL;
    if (n && states == NULL)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory for a page of %zu instances", n);
    for (size_t i = 0; r == DT_OK && i < n; i++)
        r = pg_read_instance(res, (int)i, arena, &states[i], err);
    PQclear(res);
    if (r != DT_OK)
        return r;
    if (more)
        r = store_query_next(q, &states[n - 1], arena, next, err);
    if (r != DT_OK)
        return r;
    *out = states;
    *n_out = n;
    return DT_OK;
}

/* ---- purges --------------------------------------------------------------------------------- */

dt_status pg_purge_instance(dt_store *base, const char *id, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    if (id == NULL)
        return dt_error_set(err, DT_ERR_NOT_FOUND, "purge: no instance id given");
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    /* the row locked: its status cannot change before it goes */
    if (r == DT_OK)
        r = pg_run(s, "SELECT status FROM instances WHERE instance_id = $1::text FOR UPDATE", &p,
                   &res, err, "read instance status");
    if (r == DT_OK && PQntuples(res) == 0) {
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no instance '%s'", id);
    } else if (r == DT_OK) {
        dt_runtime_status status = (dt_runtime_status)pg_col_int(res, 0, 0);
        if (!dt_runtime_status_is_terminal(status))
            r = dt_error_set(err, DT_ERR_STATE,
                             "cannot purge instance '%s': it is %s, and only a finished "
                             "instance can be purged",
                             id, dt_runtime_status_name(status));
    }
    PQclear(res);
    if (r == DT_OK)
        r = pg_delete_instance_tx(s, id, err);
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* The rows go first, in one statement that locks each and, for one a concurrent transaction
 * changed meanwhile, checks the filter again on what it committed (READ COMMITTED), so an
 * instance that is live by then stays. Their ids come back as one array (binary text[]),
 * which the statements for what hangs off them take as it came: a filter run again there
 * could find an instance that finished in between, and purge what hangs off it but not the
 * row. (SQLite, one writer at a time, deletes what hangs off first, by the filter.) */
static const char purge_rows_sql[] =
    "WITH gone AS (DELETE FROM instances" FILTER_WHERE " AND instance_id IN"
    " (SELECT instance_id FROM instances" FILTER_WHERE " ORDER BY instance_id LIMIT $13)"
    " RETURNING instance_id)"
    " SELECT count(*), array_agg(instance_id) FROM gone";

static const struct {
    const char *sql, *what;
} purge_hanging[] = {
    {"DELETE FROM history WHERE instance_id = ANY($1::text[])", "purge history"},
    {"DELETE FROM inbox WHERE instance_id = ANY($1::text[])", "purge inbox"},
    {"DELETE FROM activities WHERE instance_id = ANY($1::text[])", "purge activities"},
};

dt_status pg_purge_instances(dt_store *base, const dt_query *q, size_t *n_purged,
                             dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *n_purged = 0;
    store_filter f;
    dt_status r = store_filter_make(q, store_terminal_mask(), false, &f, err);
    if (r != DT_OK || f.mask == 0) {   /* no terminal status asked for: nothing to purge */
        store_filter_free(&f);
        return r;
    }
    /* STORE_PURGE_BATCH instances a transaction (the first by id of those the filter
     * finds), the store's lock let go in between: a purge of a million rows must not hold
     * up every commit and read until it is done */
    int64_t purged = 0, batch;
    do {
        batch = 0;
        PGresult *res = NULL;
        pthread_mutex_lock(&s->mu);
        r = well_formed_range(s, q, &f, err);
        if (r == DT_OK)
            r = pg_begin(s, err);
        if (r == DT_OK) {
            pg_params p = PG_PARAMS_INIT;
            filter_params(&p, &f);
            pg_int(&p, STORE_PURGE_BATCH);
            r = pg_run(s, purge_rows_sql, &p, &res, err, "purge instances");
        }
        if (r == DT_OK && PQntuples(res) == 1)
            batch = pg_col_int(res, 0, 0);
        if (r == DT_OK && batch > 0) {
            pg_params ids = PG_PARAMS_INIT;
            pg_blob(&ids, (const uint8_t *)PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1));
            for (size_t i = 0; r == DT_OK && i < sizeof purge_hanging / sizeof purge_hanging[0];
                 i++)
                r = pg_run(s, purge_hanging[i].sql, &ids, NULL, err, purge_hanging[i].what);
        }
        PQclear(res);
        if (r == DT_OK)
            r = pg_commit(s, err);
        if (r != DT_OK)
            pg_rollback(s);
        pthread_mutex_unlock(&s->mu);
        if (r == DT_OK)
            purged += batch;
    } while (r == DT_OK && batch == STORE_PURGE_BATCH);
    store_filter_free(&f);
    *n_purged = (size_t)purged;   /* what went, even if a later batch failed */
    return r;
}

/* ---- queue depths --------------------------------------------------------------------------- */

dt_status pg_queue_depths(dt_store *base, dt_time now, size_t *orchestrations,
                          size_t *activities, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *orchestrations = *activities = 0;
    pg_params p = PG_PARAMS_INIT;
    pg_int(&p, now);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    /* both counts in one statement: one snapshot, one round trip */
    if (r == DT_OK)
        r = pg_run(s,
                   "SELECT (SELECT count(DISTINCT instance_id) FROM inbox"
                   " WHERE visible_at <= $1::bigint),"
                   " (SELECT count(*) FROM activities WHERE visible_at <= $1::bigint"
                   " AND (lock_owner IS NULL OR lock_expires < $1::bigint))",
                   &p, &res, err, "count queued work");
    if (r == DT_OK && PQntuples(res) == 1) {
        *orchestrations = (size_t)pg_col_int(res, 0, 0);
        *activities = (size_t)pg_col_int(res, 0, 1);
    }
    PQclear(res);
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status pg_count_by_status(dt_store *base, size_t counts[DT_STATUS_COUNT], dt_error *err)
{
    pg_store *s = (pg_store *)base;
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);   /* one statement: its own snapshot, no transaction */
    dt_status r = pg_run(s, "SELECT status, count(*) FROM instances GROUP BY status", NULL,
                         &res, err, "count instances");
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; r == DT_OK && i < PQntuples(res); i++) {
        int64_t status = pg_col_int(res, i, 0);
        if (status >= 0 && status < DT_STATUS_COUNT)
            counts[status] = (size_t)pg_col_int(res, i, 1);
    }
    PQclear(res);
    return r;
}
