/* ready.c — what a group commit made ready, noted as its entries apply so the commit can lease
 * it in the same transaction (dt_commit_lease), the same in every backend; and which of an
 * entry's errors are its own. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

/* note: ID among the ids, MUST or not (once must, it stays so). */
static void note(store_ready *rd, const char *id, bool must)
{
    for (size_t i = 0; i < rd->n_ids; i++)
        if (strcmp(rd->ids[i], id) == 0) {
            rd->must[i] |= must;
            return;
        }
    const char **n = dt_grow(rd->ids, &rd->cap_ids, rd->n_ids + 1, sizeof *n);
    if (n)
        rd->ids = n;
    bool *m = n ? dt_grow(rd->must, &rd->cap_must, rd->n_ids + 1, sizeof *m) : NULL;
    if (m == NULL) {
        rd->left = true;
        return;
    }
    rd->must = m;
    rd->must[rd->n_ids] = must;
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
    note(rd, id, true);
}

void store_ready_own(store_ready *rd, const char *id, bool ended)
{
    if (id == NULL)
        return;
    if (!rd->on)
        rd->left = true;
    else
        note(rd, id, !ended);
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
    free(rd->must);
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
    return r == DT_ERR_LEASE_LOST || r == DT_ERR_INVALID_ARG || r == DT_ERR_ALREADY_EXISTS;
}
