/* pg_entity.c — the PostgreSQL backend's entities, ported from sqlite_entity.c: an entity's
 * row (state, the lock of a critical section, its lease) and its queue (entity_inbox),
 * messages in, leases out, the writes of a step and of an episode that unlocks, and the
 * client's reads, queries and cleaning. Which messages a step takes is the hub's business
 * (src/hub/entity.c); the store only hands out those the lock lets through.
 *
 * Unlike SQLite's single writer, several nodes write at once here, so three things are
 * spelled out: a lease locks the entities it finds (FOR NO KEY UPDATE ... SKIP LOCKED, so
 * nodes take different ones and never wait on each other); a message going in holds its
 * entity's row (FOR KEY SHARE) until it commits, so cleaning cannot remove the row under
 * it; and cleaning (a client's, and a step's of the entity it leaves empty) locks the empty
 * rows before it checks them again with a fresh snapshot (clean_empty). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_internal.h"

/* How many messages a lease reads per entity: more than a step takes (the hub's batch is
 * smaller), so a step never waits for a second read, yet a long backlog is not read whole on
 * every step. */
#define LOAD_WINDOW 200

#define PROBE_PAGES 8    /* the most reads one name's search makes (see probe) */
#define MAKE_TRIES 3     /* make-or-hold attempts against a concurrent clean (make_row_tx) */

/* The columns of an entity as a client sees it (read_entity), from table alias e; $B is
 * whether to read the state. */
#define CLIENT_COLUMNS(b)                                                                     \
    "e.instance_id, CASE WHEN " b "::boolean THEN e.state END, e.last_modified,"             \
    " e.locked_by,"                                                                          \
    " (SELECT count(*) FROM entity_inbox m WHERE m.entity_id = e.instance_id)::integer,"     \
    " (e.state IS NOT NULL)::integer"

/* changed: the rows statement result R inserted, updated or deleted. */
static int64_t changed(PGresult *r)
{
    const char *n = PQcmdTuples(r);
    return n && n[0] ? strtoll(n, NULL, 10) : 0;
}

/* run_count: SQL with P; the rows it changed in *N (N may be NULL). */
static dt_status run_count(pg_store *s, const char *sql, const pg_params *p, int64_t *n,
                           dt_error *err, const char *what)
{
    PGresult *r = NULL;
    dt_status st = pg_run(s, sql, p, &r, err, what);
    if (st == DT_OK && n)
        *n = changed(r);
    PQclear(r);
    return st;
}

/* ---- messages in ----------------------------------------------------------------------------- */

/* make_row_tx: make ID's row, or hold the one there is (FOR KEY SHARE) until the transaction
 * ends. Holding it is what keeps a concurrent clean from deleting the row between our look
 * and our message (a DELETE needs the lock a key share blocks). A row that a clean deleted
 * while we waited is made again on the next try. */
static dt_status make_row_tx(pg_store *s, const char *id, const char *name, dt_error *err)
{
    static const char sql[] =
        "WITH made AS (INSERT INTO entities (instance_id, name, last_modified)"
        " VALUES ($1, $2, $3) ON CONFLICT (instance_id) DO NOTHING RETURNING 1),"
        " held AS (SELECT 1 FROM entities WHERE instance_id = $1 FOR KEY SHARE)"
        " SELECT (SELECT count(*) FROM made) + (SELECT count(*) FROM held)";
    for (int i = 0; i < MAKE_TRIES; i++) {
        pg_params p = PG_PARAMS_INIT;
        pg_text(&p, id);
        pg_text(&p, name);
        pg_int(&p, dt_now());
        PGresult *r = NULL;
        dt_status st = pg_run(s, sql, &p, &r, err, "create entity");
        int64_t n = st == DT_OK ? pg_col_int(r, 0, 0) : 0;
        PQclear(r);
        if (st != DT_OK || n > 0)
            return st;
    }
    return dt_error_set(err, DT_ERR_IO, "create entity '%s': its row kept being removed", id);
}

dt_status pg_entity_message_tx(pg_store *s, const dt_entity_message *m, dt_error *err)
{
    dt_status r = dt_entity_id_validate(m->entity_id, err);
    if (r != DT_OK)
        return r;
    char name[DT_INSTANCE_ID_MAX + 1];
    store_entity_name(m->entity_id, name, sizeof name);
    if ((r = make_row_tx(s, m->entity_id, name, err)) != DT_OK)
        return r;
    uint8_t *blob = NULL;
    size_t len = 0;
    if ((r = store_encode_event(&m->event, &blob, &len, err)) != DT_OK)
        return r;
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, m->entity_id);
    pg_int(&p, m->visible_at);
    pg_text(&p, m->sender);
    pg_text(&p, m->sender_execution);
    pg_blob(&p, blob, len);
    pg_text(&p, name);
    r = pg_run(s,
               "INSERT INTO entity_inbox (entity_id, visible_at, sender, sender_execution,"
               " event, name) VALUES ($1, $2, $3, $4, $5, $6)",
               &p, NULL, err, "queue entity message");
    free(blob);
    return r;
}

dt_status pg_send_entity_message(dt_store *base, const dt_entity_message *m, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK)
        r = pg_entity_message_tx(s, m, err);
    if (r == DT_OK)
        r = pg_notify_tx(s, "", true, err);
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status pg_entity_unlock_tx(pg_store *s, const char *holder, const dt_entity_unlock *u,
                              dt_error *err)
{
    if (u->entity_id == NULL || holder == NULL)
        return DT_OK;
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, u->entity_id);
    pg_text(&p, holder);
    pg_text(&p, u->section ? u->section : "");
    return pg_run(s,
                  "UPDATE entities SET locked_by = NULL, locked_execution = NULL,"
                  " lock_section = NULL"
                  " WHERE instance_id = $1 AND locked_by = $2 AND lock_section = $3",
                  &p, NULL, err, "unlock entity");
}

dt_status pg_entity_release_tx(pg_store *s, const char *holder, dt_error *err)
{
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, holder);
    return pg_run(s,
                  "UPDATE entities SET locked_by = NULL, locked_execution = NULL,"
                  " lock_section = NULL WHERE locked_by = $1",
                  &p, NULL, err, "release entity locks");
}

/* ---- a step's commit ------------------------------------------------------------------------- */

static dt_status clean_empty(pg_store *s, dt_time now, const char *one, size_t *n, dt_error *err);

static dt_status update_row_tx(pg_store *s, const dt_entity_step *step, dt_error *err)
{
    const dt_entity_item *item = step->item;
    if (item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST,
                            "commit: the lease on entity '%s' is no longer held",
                            item->entity_id);
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, item->entity_id);
    pg_text(&p, item->lock_token);
    pg_int(&p, dt_now());
    pg_bool(&p, step->set_state);
    pg_text(&p, step->state);
    pg_bool(&p, step->set_lock);
    pg_text(&p, step->locked_by);
    pg_text(&p, step->locked_execution);
    pg_text(&p, step->lock_section);
    int64_t n = 0;
    dt_status r = run_count(
        s,
        "UPDATE entities SET lock_owner = NULL, lock_expires = 0,"
        " last_modified = CASE WHEN $4::boolean THEN $3::bigint ELSE last_modified END,"
        " state = CASE WHEN $4::boolean THEN $5::text ELSE state END,"
        " locked_by = CASE WHEN $6::boolean THEN $7::text ELSE locked_by END,"
        " locked_execution = CASE WHEN $6::boolean THEN $8::text ELSE locked_execution END,"
        " lock_section = CASE WHEN $6::boolean THEN $9::text ELSE lock_section END"
        " WHERE instance_id = $1 AND lock_owner = $2",
        &p, &n, err, "update entity");
    if (r == DT_OK && n == 0)
        r = dt_error_set(err, DT_ERR_LEASE_LOST,
                         "commit: the lease on entity '%s' is no longer held", item->entity_id);
    return r;
}

dt_status pg_entity_step_tx(pg_store *s, const dt_entity_step *step, dt_error *err)
{
    if (step->item == NULL || step->item->entity_id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "entity step without a work item");
    const char *id = step->item->entity_id;
    /* the row first: it proves the lease, and its lock holds off everyone else's step */
    dt_status r = update_row_tx(s, step, err);
    for (size_t i = 0; r == DT_OK && i < step->n_consumed; i++) {
        pg_params p = PG_PARAMS_INIT;
        pg_int(&p, step->consumed[i]);
        pg_text(&p, id);
        r = pg_run(s, "DELETE FROM entity_inbox WHERE id = $1 AND entity_id = $2", &p, NULL,
                   err, "delete entity message");
    }
    for (size_t i = 0; r == DT_OK && i < step->n_instances; i++) {
        /* a refusal writes nothing and leaves the transaction usable (pg_instance.c) */
        r = pg_create_instance_tx(s, &step->instances[i], err);
        if (r == DT_ERR_ALREADY_EXISTS)   /* the step stands; the hub logged it */
            r = DT_OK;
    }
    for (size_t i = 0; r == DT_OK && i < step->n_messages; i++) {
        bool delivered;   /* an answer to an orchestration that is gone is dropped */
        r = pg_insert_message_tx(s, &step->messages[i], NULL, &delivered, err);
    }
    for (size_t i = 0; r == DT_OK && i < step->n_entity_messages; i++)
        r = pg_entity_message_tx(s, &step->entity_messages[i], err);
    /* last, once what it sent (to itself too) is in: an entity left empty is gone, unless a
     * sender holds its row this moment (then a client's clean removes it later) */
    size_t removed = 0;
    if (r == DT_OK && store_step_empties(step))
        r = clean_empty(s, dt_now(), id, &removed, err);
    return r;
}

/* ---- finding work ---------------------------------------------------------------------------- */

/* Entities with a message they may take (visible, and the holder's when locked) and no live
 * lease, by the time their messages became visible, after ($3, $4): one row per message.
 * Each row found locks its entity for this transaction, and one another node is leasing is
 * skipped, so nodes searching at once find different entities. The named form ($5) reads
 * along entity_inbox_by_name: a filtered taker never reads other names' messages. */
#define PROBE_SQL(named)                                                                     \
    "SELECT m.entity_id, m.visible_at, m.id FROM entity_inbox m"                             \
    " JOIN entities e ON e.instance_id = m.entity_id"                                        \
    " WHERE " named "m.visible_at <= $1::bigint AND m.visible_at >= $3::bigint"              \
    " AND (m.visible_at, m.id) > ($3::bigint, $4::bigint)"                                   \
    " AND (e.lock_owner IS NULL OR e.lock_expires < $1::bigint)"                             \
    " AND (e.locked_by IS NULL OR m.sender = e.locked_by)"                                   \
    " ORDER BY m.visible_at, m.id LIMIT $2 FOR NO KEY UPDATE OF e SKIP LOCKED"

/* probe: the entities of NAME (NULL: any name) with work at NOW into C. SQL's rows are
 * messages, and one entity's backlog could fill a read; so each read asks only for as many
 * rows as entities are still wanted (no entity is locked that would not be kept, but for
 * the merge of several names), and the next read goes on after the last row, up to
 * PROBE_PAGES reads. */
static dt_status probe(pg_store *s, dt_time now, const char *name, store_cands *c,
                       dt_error *err)
{
    const char *sql = name ? PROBE_SQL("m.name = $5 AND ") : PROBE_SQL("");
    dt_time after_at = INT64_MIN;
    int64_t after_id = INT64_MIN;
    size_t found = 0;
    bool stop = false;
    dt_status r = DT_OK;
    for (int page = 0; r == DT_OK && !stop && page < PROBE_PAGES && found < c->cap; page++) {
        size_t want = c->cap - found;
        pg_params p = PG_PARAMS_INIT;
        pg_int(&p, now);
        pg_int(&p, (int64_t)want);
        pg_int(&p, after_at);
        pg_int(&p, after_id);
        if (name)
            pg_text(&p, name);
        PGresult *res = NULL;
        if ((r = pg_run(s, sql, &p, &res, err, "find entity work")) != DT_OK)
            break;
        int rows = PQntuples(res);
        for (int i = 0; i < rows && !stop; i++) {
            const char *id = PQgetvalue(res, i, 0);
            after_at = pg_col_int(res, i, 1);
            after_id = pg_col_int(res, i, 2);
            if (store_cands_has(c, id, 0))
                continue;
            found++;
            if (!store_cands_add(c, id, 0, after_at)) {
                r = dt_error_set(err, DT_ERR_NOMEM, "out of memory finding entity work");
                break;
            }
            if (c->n == c->cap && c->c[c->n - 1].at <= after_at)
                stop = true;   /* the rest come later still: none would be kept */
        }
        PQclear(res);
        if ((size_t)rows < want)
            break;   /* no more */
    }
    return r;
}

/* find_work: the entities NAMES (NULL: any) may take at NOW, at most MAX, the longest due
 * first; each name is looked up on its own and the finds merged by visible time. */
static dt_status find_work(pg_store *s, dt_time now, const dt_name_filter *names, size_t max,
                           store_cands *out, dt_error *err)
{
    dt_status r = store_cands_make(max, out, err);
    if (r == DT_OK && names == NULL)
        r = probe(s, now, NULL, out, err);
    for (size_t i = 0; names && r == DT_OK && i < names->n; i++)
        r = probe(s, now, names->names[i] ? names->names[i] : "", out, err);
    if (r != DT_OK)
        store_cands_free(out);
    return r;
}

/* ---- leases ---------------------------------------------------------------------------------- */

/* load_queue_tx: ITEM's messages it may take now, in arrival order. */
static dt_status load_queue_tx(pg_store *s, dt_entity_item *item, dt_time now,
                               dt_error *err)
{
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, item->entity_id);
    pg_int(&p, now);
    pg_text(&p, item->locked_by);
    pg_int(&p, LOAD_WINDOW);
    PGresult *res = NULL;
    dt_status r = pg_run(s,
                         "SELECT id, visible_at, sender, sender_execution, event"
                         " FROM entity_inbox WHERE entity_id = $1 AND visible_at <= $2"
                         " AND ($3::text IS NULL OR sender = $3) ORDER BY id LIMIT $4",
                         &p, &res, err, "read entity queue");
    if (r != DT_OK)
        return r;
    size_t rows = (size_t)PQntuples(res);
    dt_entity_message *msgs = dt_arena_alloc(item->arena, (rows ? rows : 1) * sizeof *msgs);
    int64_t *ids = dt_arena_alloc(item->arena, (rows ? rows : 1) * sizeof *ids);
    if (msgs == NULL || ids == NULL) {
        PQclear(res);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading entity '%s'",
                            item->entity_id);
    }
    for (size_t i = 0; r == DT_OK && i < rows; i++) {
        dt_entity_message *m = &msgs[i];
        ids[i] = pg_col_int(res, (int)i, 0);
        m->entity_id = item->entity_id;
        m->visible_at = pg_col_int(res, (int)i, 1);
        m->sender = pg_col_text(item->arena, res, (int)i, 2, &r);
        m->sender_execution = pg_col_text(item->arena, res, (int)i, 3, &r);
        char what[160];
        snprintf(what, sizeof what, "message %" PRId64 " of entity '%.100s'", ids[i],
                 item->entity_id);
        if (r == DT_OK)
            r = pg_col_event(res, (int)i, 4, item->arena, &m->event, err, what);
        else
            dt_error_set(err, r, "out of memory reading entity '%s'", item->entity_id);
    }
    PQclear(res);
    item->messages = msgs;
    item->message_ids = ids;
    item->n_messages = r == DT_OK ? rows : 0;
    return r;
}

/* lease_one_tx: lease ITEM's entity (entity_id set; its row locked by the search) and read
 * its row and queue. *TAKEN false: no longer free, or (a race the row lock makes unlikely)
 * nothing left to take, in which case the lease is given back. */
static dt_status lease_one_tx(pg_store *s, dt_entity_item *item, const char *owner,
                              dt_time now, dt_time until, bool *taken, dt_error *err)
{
    *taken = false;
    item->lock_token = store_new_token(item->arena, owner);
    item->locked_until = until;
    if (item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing '%s'", item->entity_id);
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, item->entity_id);
    pg_text(&p, item->lock_token);
    pg_int(&p, until);
    pg_int(&p, now);
    PGresult *res = NULL;
    dt_status r = pg_run(s,
                         "UPDATE entities SET lock_owner = $2, lock_expires = $3"
                         " WHERE instance_id = $1"
                         " AND (lock_owner IS NULL OR lock_expires < $4::bigint)"
                         " RETURNING state, locked_by, locked_execution, lock_section",
                         &p, &res, err, "lease entity");
    if (r != DT_OK)
        return r;
    bool row = PQntuples(res) == 1;
    if (row) {
        item->state = pg_col_text(item->arena, res, 0, 0, &r);
        item->locked_by = pg_col_text(item->arena, res, 0, 1, &r);
        item->locked_execution = pg_col_text(item->arena, res, 0, 2, &r);
        item->lock_section = pg_col_text(item->arena, res, 0, 3, &r);
        if (r != DT_OK)
            dt_error_set(err, r, "out of memory leasing '%s'", item->entity_id);
    }
    PQclear(res);
    if (r != DT_OK || !row)
        return r;   /* taken by someone else meanwhile: not ours */
    if ((r = load_queue_tx(s, item, now, err)) != DT_OK)
        return r;
    if (item->n_messages == 0) {
        pg_params q = PG_PARAMS_INIT;
        pg_text(&q, item->entity_id);
        pg_text(&q, item->lock_token);
        return pg_run(s,
                      "UPDATE entities SET lock_owner = NULL, lock_expires = 0"
                      " WHERE instance_id = $1 AND lock_owner = $2",
                      &q, NULL, err, "give back an entity lease");
    }
    *taken = true;
    return DT_OK;
}

dt_status pg_lease_entities(dt_store *base, const char *owner, dt_time now, int64_t lease_us,
                            size_t max, const dt_name_filter *names, dt_entity_item **out,
                            size_t *n_out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *n_out = 0;
    if (max == 0)
        return DT_OK;
    dt_time until = store_lease_end(now, lease_us);
    store_cands found = {NULL, 0, 0};
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK)
        r = find_work(s, now, names, max, &found, err);
    size_t kept = 0;
    for (size_t i = 0; r == DT_OK && i < found.n; i++) {
        dt_entity_item *item = NULL;
        bool taken = false;
        r = store_entity_item_new(found.c[i].id, &item, err);
        if (r == DT_OK)
            r = lease_one_tx(s, item, owner, now, until, &taken, err);
        if (r == DT_OK && taken)
            out[kept++] = item;   /* freed below should the commit fail */
        else
            dt_entity_item_free(item);
    }
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r == DT_OK) {
        *n_out = kept;
    } else {
        pg_rollback(s);
        for (size_t i = 0; i < kept; i++) {
            dt_entity_item_free(out[i]);
            out[i] = NULL;
        }
    }
    pthread_mutex_unlock(&s->mu);
    store_cands_free(&found);
    return r;
}

/* token_update: SQL ($1 the entity, $2 the token, $3 UNTIL) in a transaction of its own;
 * DT_ERR_LEASE_LOST if it changed no row. */
static dt_status token_update(pg_store *s, const char *sql, const dt_entity_item *item,
                              dt_time until, dt_error *err, const char *what)
{
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, item->entity_id);
    pg_text(&p, item->lock_token);
    pg_int(&p, until);
    int64_t n = 0;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK)
        r = run_count(s, sql, &p, &n, err, what);
    if (r == DT_OK && n == 0)
        r = store_lease_lost(what, item->entity_id, 0, err);
    if (r == DT_OK && strcmp(what, "abandon") == 0)   /* free again: the nodes look */
        r = pg_notify_tx(s, "", true, err);
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status pg_renew_entity(dt_store *base, const dt_entity_item *item, dt_time until,
                          dt_error *err)
{
    if (item == NULL || item->entity_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "renew: not a leased entity");
    return token_update((pg_store *)base,
                        "UPDATE entities SET lock_expires = $3"
                        " WHERE instance_id = $1 AND lock_owner = $2",
                        item, until, err, "renew");
}

/* An abandon with a retry time keeps the row leased by nobody ('') until then. */
dt_status pg_abandon_entity(dt_store *base, const dt_entity_item *item, dt_time retry_at,
                            dt_error *err)
{
    if (item == NULL || item->entity_id == NULL || item->lock_token == NULL)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "abandon: not a leased entity");
    return token_update((pg_store *)base,
                        "UPDATE entities SET lock_expires = $3::bigint,"
                        " lock_owner = CASE WHEN $3::bigint > 0 THEN '' ELSE NULL END"
                        " WHERE instance_id = $1 AND lock_owner = $2",
                        item, retry_at > 0 ? retry_at : 0, err, "abandon");
}

/* ---- reads ----------------------------------------------------------------------------------- */

/* read_entity: row ROW of R (CLIENT_COLUMNS) into *E, strings in ARENA. */
static dt_status read_entity(const PGresult *r, int row, dt_arena *arena, dt_entity_state *e)
{
    dt_status st = DT_OK;
    memset(e, 0, sizeof *e);
    e->entity_id = pg_col_text(arena, r, row, 0, &st);
    e->state = pg_col_text(arena, r, row, 1, &st);
    e->last_modified = pg_col_int(r, row, 2);
    e->locked_by = pg_col_text(arena, r, row, 3, &st);
    e->backlog = (int32_t)pg_col_int(r, row, 4);
    e->has_state = pg_col_int(r, row, 5) != 0;
    return st;
}

dt_status pg_get_entity(dt_store *base, const char *id, bool with_state, dt_arena *arena,
                        dt_entity_state **out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    dt_entity_state *e = dt_arena_alloc(arena, sizeof *e);
    if (e == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, id);
    pg_bool(&p, with_state);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    if (r == DT_OK)
        r = pg_run(s, "SELECT " CLIENT_COLUMNS("$2") " FROM entities e WHERE e.instance_id = $1",
                   &p, &res, err, "read entity");
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    if (r == DT_OK && PQntuples(res) == 0)
        r = dt_error_set(err, DT_ERR_NOT_FOUND, "no entity '%s'", id);
    else if (r == DT_OK && read_entity(res, 0, arena, e) != DT_OK)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    PQclear(res);
    if (r == DT_OK)
        *out = e;
    return r;
}

/* $1, $2 the id range of the prefix ($2 NULL: none); $3 the token; $4, $5 the last-modified
 * range; $6 include entities without state that are transient (locked, or with messages
 * waiting; an empty row is a deleted entity, never listed); $7 the limit; $8 with state;
 * the rows whose states would take the page's bytes past $9 stay for the next page, but
 * for a first row (run = b). After the CLIENT_COLUMNS: id, the row's bytes, the page's up to
 * and including it, and how many rows the page had before its bytes cut it (QUERY_ROWS_COL). */
static const char query_sql[] =
    "SELECT * FROM (SELECT *, sum(b) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) AS run,"
    " count(*) OVER () AS n_rows"
    " FROM (SELECT " CLIENT_COLUMNS("$8") ", e.instance_id AS id,"
    " CASE WHEN $8::boolean THEN COALESCE(octet_length(e.state)::bigint, 0) ELSE 0 END AS b"
    " FROM entities e"
    " WHERE e.instance_id >= $1 AND ($2::text IS NULL OR e.instance_id < $2)"
    " AND ($3::text IS NULL OR e.instance_id > $3)"
    " AND e.last_modified >= $4::bigint AND e.last_modified < $5::bigint"
    " AND (e.state IS NOT NULL OR ($6::boolean AND (e.locked_by IS NOT NULL OR EXISTS"
    " (SELECT 1 FROM entity_inbox m WHERE m.entity_id = e.instance_id))))"
    " ORDER BY e.instance_id LIMIT $7) x) y WHERE run <= $9::bigint OR run = b ORDER BY id";
#define QUERY_ROWS_COL 9   /* after the 6 CLIENT_COLUMNS, id, b and run */

dt_status pg_query_entities(dt_store *base, const dt_entity_query *q, dt_arena *arena,
                            dt_entity_state **out, size_t *n_out, const char **next,
                            dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *out = NULL;
    *n_out = 0;
    *next = NULL;
    size_t page;
    dt_status r = store_entity_page_size(q, &page, err);
    if (r != DT_OK)
        return r;
    const char *lo = q->id_prefix ? q->id_prefix : "";
    const char *token = q->continuation && q->continuation[0] ? q->continuation : NULL;
    if (!dt_utf8_valid(token))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "the continuation token is not UTF-8");
    if (!dt_utf8_valid(lo))
        return DT_OK;   /* every id is UTF-8: none starts with it */
    char *hi = NULL;
    r = pg_utf8_prefix_end(lo, &hi, err);
    if (r != DT_OK)
        return r;
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, lo);
    pg_text(&p, hi);
    pg_text(&p, token);
    pg_int(&p, q->modified_from ? q->modified_from : INT64_MIN);
    pg_int(&p, q->modified_to ? q->modified_to : INT64_MAX);
    pg_bool(&p, q->include_transient);
    pg_int(&p, (int64_t)page + 1);
    pg_bool(&p, q->with_state);
    pg_int(&p, (int64_t)DT_QUERY_PAGE_BYTES);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    r = pg_begin(s, err);
    if (r == DT_OK)
        r = pg_run(s, query_sql, &p, &res, err, "query entities");
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK)
        pg_rollback(s);
    pthread_mutex_unlock(&s->mu);
    free(hi);
    size_t n = r == DT_OK ? (size_t)PQntuples(res) : 0;
    /* the page ended on its bytes: the rows after it are the next page's */
    bool cut = n > 0 && n <= page && pg_col_int(res, 0, QUERY_ROWS_COL) > (int64_t)n;
    dt_entity_state *rows = n ? dt_arena_alloc(arena, n * sizeof *rows) : NULL;
    if (n && rows == NULL)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; r == DT_OK && i < n; i++)
        if (read_entity(res, (int)i, arena, &rows[i]) != DT_OK)
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    PQclear(res);
    if (r != DT_OK)
        return r;
    if (n > page) {   /* one more than a page: there is a next one */
        n = page;
        *next = rows[n - 1].entity_id;
    } else if (cut) {
        *next = rows[n - 1].entity_id;
    }
    *out = n ? rows : NULL;
    *n_out = n;
    return DT_OK;
}

/* ---- cleaning -------------------------------------------------------------------------------- */

/* A row is empty when it has no state, lock, live lease or message. $1 NOW. */
#define EMPTY_WHERE                                                                          \
    "state IS NULL AND locked_by IS NULL"                                                    \
    " AND (lock_owner IS NULL OR lock_expires < $1::bigint)"                                 \
    " AND NOT EXISTS (SELECT 1 FROM entity_inbox m WHERE m.entity_id = entities.instance_id)"

/* array_literal: the ids in column 0 of R as a PostgreSQL text array literal, malloc'd. */
static char *array_literal(const PGresult *r)
{
    pg_literal a = {NULL, 0, 0, true};
    pg_literal_put(&a, "{", 1);
    for (int i = 0; i < PQntuples(r); i++)
        pg_literal_add(&a, PQgetvalue(r, i, 0));
    pg_literal_put(&a, "}", 1);
    if (!a.ok) {
        free(a.s);
        return NULL;
    }
    return a.s;
}

/* clean_empty: delete the empty rows (ONE's alone when not NULL), their number in *N. A
 * message may be going in on another connection whose row this snapshot saw empty; its
 * sender holds the row (make_row_tx), so the rows are locked first, those held skipped, and
 * only the locked ones deleted by a second statement, whose newer snapshot sees every
 * message committed before the locks were taken (and no sender can add one after). */
static dt_status clean_empty(pg_store *s, dt_time now, const char *one, size_t *n, dt_error *err)
{
    *n = 0;
    pg_params p = PG_PARAMS_INIT;
    pg_int(&p, now);
    if (one)
        pg_text(&p, one);
    PGresult *res = NULL;
    dt_status r = pg_run(s,
                         one ? "SELECT instance_id FROM entities WHERE instance_id = $2 AND "
                               EMPTY_WHERE " FOR UPDATE SKIP LOCKED"
                             : "SELECT instance_id FROM entities WHERE " EMPTY_WHERE
                               " FOR UPDATE SKIP LOCKED",
                         &p, &res, err, "find empty entities");
    if (r != DT_OK)
        return r;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return DT_OK;
    }
    char *ids = array_literal(res);
    PQclear(res);
    if (ids == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory removing empty entities");
    pg_params d = PG_PARAMS_INIT;
    pg_int(&d, now);
    pg_text(&d, ids);
    int64_t deleted = 0;
    r = run_count(s,
                  "DELETE FROM entities WHERE instance_id = ANY ($2::text[]) AND " EMPTY_WHERE,
                  &d, &deleted, err, "remove empty entities");
    free(ids);
    if (r == DT_OK)
        *n = (size_t)deleted;
    return r;
}

/* A holder runs while Running (0), Pending (6) or Suspended (7) on the same execution. */
_Static_assert(DT_STATUS_RUNNING == 0 && DT_STATUS_PENDING == 6 && DT_STATUS_SUSPENDED == 7,
               "the orphaned-lock statement spells these statuses as numbers");

dt_status pg_clean_entities(dt_store *base, bool remove_empty, bool release_orphaned,
                            dt_time now, size_t *removed, size_t *released, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    *removed = *released = 0;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_begin(s, err);
    /* orphaned locks first: an entity whose only hold was an orphaned lock is then empty */
    if (r == DT_OK && release_orphaned) {
        int64_t n = 0;
        r = run_count(s,
                      "UPDATE entities SET locked_by = NULL, locked_execution = NULL,"
                      " lock_section = NULL WHERE locked_by IS NOT NULL AND NOT EXISTS"
                      " (SELECT 1 FROM instances i WHERE i.instance_id = entities.locked_by"
                      " AND i.status IN (0, 6, 7) AND (entities.locked_execution IS NULL"
                      " OR i.execution_id IS NOT DISTINCT FROM entities.locked_execution))",
                      NULL, &n, err, "release orphaned locks");
        *released = (size_t)n;
    }
    if (r == DT_OK && remove_empty)
        r = clean_empty(s, now, NULL, removed, err);
    if (r == DT_OK)
        r = pg_commit(s, err);
    if (r != DT_OK) {
        pg_rollback(s);
        *removed = *released = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}
