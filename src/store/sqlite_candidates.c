/* sqlite_candidates.c — finding work to lease in the SQLite backend: which instances,
 * activities and entities have work visible now and no live lease. A taker of any name reads
 * the kind's candidates statement along its visible-time index and stops at its limit. A
 * filtered taker (a worker that registered some names) looks up each of its names, and each
 * version it lists, through the kind's name index (schema 7), and merges what they found by
 * visible time: the work of names it does not take is never read, however much of it waits,
 * and an idle one costs one index step per poll. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

static const store_stmt_id any_stmt[] = {
    [STORE_WORK_ORCH] = ST_ORCH_CANDIDATES,
    [STORE_WORK_ACTIVITY] = ST_ACTIVITY_CANDIDATES,
    [STORE_WORK_ENTITY] = ST_ENTITY_CANDIDATES,
};
static const store_stmt_id named_stmt[] = {
    [STORE_WORK_ORCH] = ST_ORCH_NAMED,
    [STORE_WORK_ACTIVITY] = ST_ACTIVITY_NAMED,
    [STORE_WORK_ENTITY] = ST_ENTITY_NAMED,
};

/* probe: statement ID's rows into C (?1 NOW, ?2 the room, and where it has them ?3 NAME and
 * ?4 VERSION). A named statement's rows carry their visible time, come in its order and may
 * name an instance twice (once per message); a candidates statement's are distinct. */
static dt_status probe(sqlite_store *s, store_stmt_id id, bool text, dt_time now,
                       const char *name, const char *version, store_cands *c, dt_error *err)
{
    sqlite3_stmt *st = store_stmt(s, id);
    int rc = SQLITE_OK, params = sqlite3_bind_parameter_count(st);
    store_bind_int64(st, 1, now, &rc);
    store_bind_int64(st, 2, (int64_t)c->cap, &rc);
    if (params >= 3)
        store_bind_text(st, 3, name, &rc);
    if (params >= 4)
        store_bind_text(st, 4, version, &rc);
    bool timed = sqlite3_column_count(st) > 1;
    dt_status r = DT_OK;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        const char *key = text ? (const char *)sqlite3_column_text(st, 0) : NULL;
        int64_t row = text ? 0 : sqlite3_column_int64(st, 0);
        dt_time at = timed ? sqlite3_column_int64(st, 1) : 0;
        if (text && key == NULL) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory finding work");
            break;
        }
        if (timed && store_cands_has(c, key, row))
            continue;
        if (!store_cands_add(c, key, row, at)) {
            r = dt_error_set(err, DT_ERR_NOMEM, "out of memory finding work");
            break;
        }
        if (timed && c->n == c->cap && c->c[c->n - 1].at <= at)
            break;   /* the rest come later still: none would be kept */
    }
    if (r == DT_OK && rc != SQLITE_OK && rc != SQLITE_DONE)
        r = store_sql_error(s, rc, err, "find work");
    sqlite3_reset(st);
    atomic_fetch_add(&s->search_steps,
                     (uint64_t)sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1));
    return r;
}

/* find_named: the candidates of filter F's names into C; with FIRST, stop at the first. An
 * orchestration taker also takes every instance with a terminate waiting (the hub ends it
 * without running its code); entities have no versions. */
static dt_status find_named(sqlite_store *s, store_work_kind kind, dt_time now,
                            const dt_name_filter *f, bool first, store_cands *c, dt_error *err)
{
    bool text = kind != STORE_WORK_ACTIVITY;
    dt_status r = DT_OK;
    if (kind == STORE_WORK_ORCH)
        r = probe(s, ST_ORCH_TERMINATES, text, now, NULL, NULL, c, err);
    for (size_t i = 0; r == DT_OK && i < f->n && !(first && c->n); i++) {
        const char *name = f->names[i] ? f->names[i] : "";
        const dt_version_list *vl = f->versions && kind != STORE_WORK_ENTITY ? &f->versions[i]
                                                                             : NULL;
        if (vl == NULL || vl->n == 0)
            r = probe(s, named_stmt[kind], text, now, name, NULL, c, err);
        for (size_t k = 0; r == DT_OK && vl && k < vl->n && !(first && c->n); k++)
            r = probe(s, named_stmt[kind], text, now, name, vl->v[k] ? vl->v[k] : "", c, err);
    }
    return r;
}

dt_status store_find_work(sqlite_store *s, store_work_kind kind, dt_time now,
                          const dt_name_filter *names, size_t max, store_cands *out,
                          dt_error *err)
{
    dt_status r = store_cands_make(max, out, err);
    if (r != DT_OK)
        return r;
    r = names ? find_named(s, kind, now, names, false, out, err)
              : probe(s, any_stmt[kind], kind != STORE_WORK_ACTIVITY, now, NULL, NULL, out,
                      err);
    if (r != DT_OK)
        store_cands_free(out);
    return r;
}

uint64_t store_sqlite_search_steps(dt_store *base)
{
    return atomic_load(&((sqlite_store *)base)->search_steps);
}

bool store_any_work(sqlite_store *s, store_work_kind kind, dt_time now,
                    const dt_name_filter *names)
{
    store_cand one = {NULL, 0, 0};
    store_cands c = {&one, 0, 1};
    dt_error err;
    /* anything visible at all, of any name: one step along the visible-time index */
    dt_status r = probe(s, any_stmt[kind], kind != STORE_WORK_ACTIVITY, now, NULL, NULL, &c,
                        &err);
    if (r == DT_OK && c.n > 0 && names) {
        free(one.id);
        c.n = 0;
        /* one read transaction for all the names: each statement on its own would take and
         * drop the file's read lock (two fcntl calls) */
        bool own = sqlite3_get_autocommit(s->db) &&
                   store_exec(s, ST_BEGIN_READ, &err, "begin") == DT_OK;
        r = find_named(s, kind, now, names, true, &c, &err);
        if (own && store_exec(s, ST_COMMIT, &err, "end read") != DT_OK)
            store_rollback(s);
    }
    bool yes = r != DT_OK || c.n > 0;
    if (c.n > 0)
        free(one.id);
    return yes;
}
