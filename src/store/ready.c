/* ready.c — what a group commit made ready, noted as its entries apply so the commit can lease
 * it in the same transaction (dt_commit_lease), the same in every backend; which of an
 * entry's errors are its own, and how a batch's entries run so that a refused one rolls back
 * alone. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* note: ID among the ids with FLAGS (READY_*; a flag once set stays). */
static void note(store_ready *rd, const char *id, unsigned char flags)
{
    for (size_t i = 0; i < rd->n_ids; i++)
        if (strcmp(rd->ids[i], id) == 0) {
            rd->flags[i] |= flags;
            return;
        }
    const char **n = dt_grow(rd->ids, &rd->cap_ids, rd->n_ids + 1, sizeof *n);
    if (n)
        rd->ids = n;
    unsigned char *f = n ? dt_grow(rd->flags, &rd->cap_flags, rd->n_ids + 1, sizeof *f) : NULL;
    if (f == NULL) {
        rd->left = true;
        return;
    }
    rd->flags = f;
    rd->flags[rd->n_ids] = flags;
    rd->ids[rd->n_ids++] = id;
}

void store_ready_instance(store_ready *rd, const char *id, dt_time visible_at)
{
    if (id == NULL)
        return;
    if (!rd->on || visible_at > rd->now) {
        rd->left = true;
        return;
    }
    note(rd, id, READY_MUST | READY_SENT);
}

void store_ready_own(store_ready *rd, const char *id, bool ended)
{
    if (id == NULL)
        return;
    if (!rd->on)
        rd->left = true;
    else
        note(rd, id, ended ? 0 : READY_MUST);
}

void store_ready_activity(store_ready *rd, int64_t row, dt_time visible_at)
{
    if (!rd->on || visible_at > rd->now) {
        rd->left = true;
        return;
    }
    int64_t *n = dt_grow(rd->acts, &rd->cap_acts, rd->n_acts + 1, sizeof *n);
    if (n == NULL) {
        rd->left = true;
        return;
    }
    rd->acts = n;
    rd->acts[rd->n_acts++] = row;
}

store_ready store_ready_start(dt_commit_lease *lease)
{
    if (lease)
        lease->n_orchestrations = lease->n_activities = 0;
    return (store_ready){.on = lease && (lease->max_orchestrations || lease->max_activities),
                         .now = lease ? lease->now : 0};
}

void store_ready_free(store_ready *rd)
{
    free(rd->ids);
    free(rd->flags);
    free(rd->acts);
}

void store_lease_forget(dt_commit_lease *L)
{
    for (size_t i = 0; i < L->n_orchestrations; i++)
        dt_orch_item_free(L->orchestrations[i]);
    for (size_t i = 0; i < L->n_activities; i++)
        dt_activity_item_free(L->activities[i]);
    L->n_orchestrations = L->n_activities = 0;
}

bool store_entry_level(dt_status r)
{
    /* NO_SPACE too: at a database's size limit the entry that would grow it is refused, and
     * those that free room (terminates, completions) still go in */
    return r == DT_ERR_LEASE_LOST || r == DT_ERR_INVALID_ARG || r == DT_ERR_ALREADY_EXISTS ||
           r == DT_ERR_NO_SPACE;
}

/* run_entries: store_run_batch's pass over the entries in the open transaction; GUARD_ALL:
 * each in a savepoint. *REDO: an unguarded entry failed after writing, or an entry found the
 * database full and it rolled the whole transaction back (SQLite does, at its size limit):
 * nothing else done. Entries refused for want of room in an earlier pass are left out. */
static dt_status run_entries(const store_entry_ops *ops, void *store, dt_commit *batch,
                             size_t n, store_ready *rd, bool guard_all, bool *redo,
                             dt_error *err)
{
    dt_error scratch;
    bool noted = false;
    *redo = false;
    for (size_t i = 0; i < n; i++) {
        dt_commit *c = &batch[i];
        if (c->result == DT_ERR_NO_SPACE)
            continue;
        bool guard = guard_all || c->kind == DT_COMMIT_START || c->kind == DT_COMMIT_ENTITY;
        dt_status r = guard ? ops->savepoint(store, STORE_SAVEPOINT, err) : DT_OK;
        if (r != DT_OK)
            return r;
        size_t ids_before = rd->n_ids, acts_before = rd->n_acts;
        bool checked = false;
        dt_error_clear(&scratch);
        dt_status er = ops->apply(store, c, i, rd, &checked, &scratch);
        c->result = er;
        if (er != DT_OK && c->error)
            *c->error = scratch;
        if (er == DT_ERR_NO_SPACE && ops->gone(store)) {
            if (err)
                *err = scratch;
            *redo = true;
            return DT_OK;
        }
        if (er == DT_OK) {
            r = guard ? ops->savepoint(store, STORE_RELEASE, err) : DT_OK;
        } else if (store_entry_level(er)) {
            rd->n_ids = ids_before;
            rd->n_acts = acts_before;
            if (!guard && (checked || ops->ended(store))) {
                *redo = true;   /* it wrote, or the database refused it: only a savepoint helps */
                return DT_OK;
            }
            if (guard) {
                r = ops->savepoint(store, STORE_ROLLBACK_TO, err);
                if (r == DT_OK)
                    r = ops->savepoint(store, STORE_RELEASE, err);
            }
            if (!noted && err) {
                *err = scratch;
                noted = true;
            }
        } else {
            r = er;
            if (err)
                *err = scratch;
        }
        if (r != DT_OK)
            return r;
    }
    return DT_OK;
}

#define REDO_MAX 8

static bool ends_instance(const dt_commit *c)
{
    return c->kind == DT_COMMIT_EPISODE && dt_runtime_status_is_terminal(c->u.episode.status);
}

dt_status store_run_batch(const store_entry_ops *ops, void *store, bool deferred,
                          dt_commit *batch, size_t n, store_ready *rd, dt_error *err)
{
    bool redo = false;
    for (size_t i = 0; i < n; i++)
        batch[i].result = DT_OK;
    dt_status r = ops->begin(store, deferred, err);
    if (r == DT_OK)
        r = run_entries(ops, store, batch, n, rd, false, &redo, err);
    /* again, guarded; each pass after a full database leaves one more entry out; after
     * REDO_MAX of them only what ends an instance (room is kept for it) is tried, once more,
     * and then the batch fails whole (a batch of entries that all find no room would
     * otherwise take a pass each) */
    for (int pass = 0; r == DT_OK && redo; pass++) {
        if (pass == REDO_MAX)
            for (size_t i = 0; i < n; i++)
                if (!ends_instance(&batch[i]))
                    batch[i].result = DT_ERR_NO_SPACE;
        if (pass == REDO_MAX + 1) {
            ops->rollback(store);
            rd->n_ids = rd->n_acts = 0;
            if (err && err->code != DT_ERR_NO_SPACE)
                dt_error_set(err, DT_ERR_NO_SPACE, "%s", dt_strerror(DT_ERR_NO_SPACE));
            return DT_ERR_NO_SPACE;
        }
        dt_error why = err ? *err : (dt_error){0};
        ops->rollback(store);
        rd->n_ids = rd->n_acts = 0;
        dt_error_clear(err);
        r = ops->begin(store, deferred, err);
        if (r == DT_OK)
            r = run_entries(ops, store, batch, n, rd, true, &redo, err);
        if (r == DT_OK && !redo && err && err->code == DT_OK && why.code == DT_ERR_NO_SPACE)
            *err = why;   /* what was left out is the batch's first failure to tell */
    }
    return r;
}
