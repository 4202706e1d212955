/* store.c — the dt_store_* calls: each forwards to the backend's table of operations, so
 * callers never see which backend they use. Work items live inside their own arena, so
 * freeing one is freeing its arena; an entity's is made here for every backend. */
#include <stddef.h>
#include <string.h>

#include "durabletask/store.h"
#include "store_internal.h"

/* CALL: the backend's operation OP, or, where its table has none (a backend being built),
 * DT_ERR_UNIMPLEMENTED naming the backend and the operation. ERR is each call's last
 * parameter. */
#define CALL(op, ...)                                                                          \
    (s->ops->op ? s->ops->op(s, __VA_ARGS__)                                                   \
                : dt_error_set(err, DT_ERR_UNIMPLEMENTED, "the %s store does not do %s yet",  \
                               s->ops->name, #op))

void dt_store_close(dt_store *s)
{
    if (s != NULL)
        s->ops->close(s);
}

dt_status dt_store_create_instance(dt_store *s, const dt_new_instance *ni, dt_error *err)
{
    return CALL(create_instance, ni, err);
}

dt_status dt_store_send_message(dt_store *s, const dt_message *m, dt_error *err)
{
    return CALL(send_message, m, err);
}

dt_status dt_store_get_instance(dt_store *s, const char *id, dt_arena *arena,
                                dt_instance_state **out, dt_error *err)
{
    return CALL(get_instance, id, arena, out, err);
}

dt_status dt_store_read_history(dt_store *s, const char *id, size_t from_seq, size_t max_bytes,
                                dt_arena *arena, dt_history_window *out, dt_error *err)
{
    *out = (dt_history_window){0};
    if (id == NULL)
        return dt_error_set(err, DT_ERR_NOT_FOUND, "no instance id given");
    return CALL(read_history, id, from_seq, max_bytes, arena, out, err);
}

dt_status dt_store_load_history(dt_store *s, const char *id, size_t from_seq, dt_arena *arena,
                                dt_event **out, size_t *n_out, dt_error *err)
{
    dt_history_window w;
    dt_status st = dt_store_read_history(s, id, from_seq, 0, arena, &w, err);
    *out = w.events;
    *n_out = w.n;
    return st;
}

dt_status dt_store_get_history(dt_store *s, const char *id, dt_arena *arena, dt_event **out,
                               size_t *n_out, dt_error *err)
{
    return dt_store_load_history(s, id, 0, arena, out, n_out, err);
}

/* OUT is an array of at least MAX pointers supplied by the caller; the store fills the first
 * *N_OUT with items, each allocated inside its own arena. */
dt_status dt_store_lease_orchestrations(dt_store *s, const char *owner, dt_time now,
                                        int64_t lease_us, size_t max,
                                        const dt_name_filter *names, dt_orch_item **out,
                                        size_t *n_out, dt_error *err)
{
    return CALL(lease_orchestrations, owner, now, lease_us, max, names, out, n_out, err);
}

dt_status dt_store_lease_activities(dt_store *s, const char *owner, dt_time now,
                                    int64_t lease_us, size_t max,
                                    const dt_name_filter *names, dt_activity_item **out,
                                    size_t *n_out, dt_error *err)
{
    return CALL(lease_activities, owner, now, lease_us, max, names, out, n_out, err);
}

dt_status dt_store_renew_orchestration(dt_store *s, const dt_orch_item *item, dt_time until,
                                       dt_error *err)
{
    return CALL(renew_orchestration, item, until, err);
}

dt_status dt_store_renew_activity(dt_store *s, const dt_activity_item *item, dt_time until,
                                  dt_error *err)
{
    return CALL(renew_activity, item, until, err);
}

dt_status dt_store_abandon_orchestration(dt_store *s, const dt_orch_item *item,
                                         dt_time retry_at, dt_error *err)
{
    return CALL(abandon_orchestration, item, retry_at, err);
}

dt_status dt_store_abandon_activity(dt_store *s, const dt_activity_item *item, dt_time retry_at,
                                    dt_error *err)
{
    return CALL(abandon_activity, item, retry_at, err);
}

dt_status dt_store_commit(dt_store *s, dt_commit *batch, size_t n, dt_error *err)
{
    return CALL(commit, batch, n, NULL, NULL, err);
}

dt_status dt_store_commit_lease(dt_store *s, dt_commit *batch, size_t n, dt_commit_lease *lease,
                                dt_error *err)
{
    if (lease) {
        lease->n_orchestrations = 0;
        lease->n_activities = 0;
    }
    return CALL(commit, batch, n, lease, NULL, err);
}

dt_status dt_store_commit_deferred(dt_store *s, dt_commit *batch, size_t n,
                                   dt_commit_lease *lease, uint64_t *ticket, dt_error *err)
{
    if (lease) {
        lease->n_orchestrations = 0;
        lease->n_activities = 0;
    }
    *ticket = 0;
    return CALL(commit, batch, n, lease, ticket, err);
}

dt_status dt_store_watch(dt_store *s, dt_store_changed_fn changed, void *arg, dt_error *err)
{
    return CALL(watch, changed, arg, err);
}

dt_status dt_store_heartbeat(dt_store *s, const char *node, dt_time started, dt_time now,
                             dt_error *err)
{
    return CALL(heartbeat, node, started, now, err);
}

dt_status dt_store_nodes(dt_store *s, dt_time since, dt_arena *arena, dt_node_info **out,
                         size_t *n_out, dt_error *err)
{
    *out = NULL;
    *n_out = 0;
    return CALL(nodes, since, arena, out, n_out, err);
}

dt_status dt_store_next_due(dt_store *s, dt_time now, dt_time *due, dt_error *err)
{
    *due = 0;
    return CALL(next_due, now, due, err);
}

int dt_store_schema_version(dt_store *s)
{
    return s->ops->schema_version ? s->ops->schema_version(s) : 0;
}

uint64_t dt_store_search_steps(dt_store *s)
{
    return s->ops->search_steps ? s->ops->search_steps(s) : 0;
}

bool dt_commit_touches_entities(const dt_commit *batch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const dt_commit *c = &batch[i];
        if (c->result != DT_OK)
            continue;
        if (c->kind == DT_COMMIT_ENTITY)
            return true;
        if (c->kind == DT_COMMIT_EPISODE &&
            (c->u.episode.n_entity_messages || c->u.episode.n_unlocks ||
             (c->u.episode.release_locks && c->u.episode.asked_locks)))
            return true;
    }
    return false;
}

bool dt_store_sync_waits(dt_store *s)
{
    return s->ops->sync_waits && s->ops->sync_waits(s);
}

bool dt_store_speculates(dt_store *s)
{
    return s->ops->speculates && s->ops->speculates(s);
}

uint64_t dt_store_last_ticket(dt_store *s)
{
    return s->ops->last_ticket ? s->ops->last_ticket(s) : 0;
}

dt_status dt_store_sync(dt_store *s, uint64_t ticket, dt_error *err)
{
    return ticket == 0 ? DT_OK : CALL(sync, ticket, err);
}

dt_status dt_store_query_instances(dt_store *s, const dt_query *q, dt_arena *arena,
                                   dt_instance_state **out, size_t *n_out, const char **next,
                                   dt_error *err)
{
    return CALL(query_instances, q, arena, out, n_out, next, err);
}

dt_status dt_store_purge_instance(dt_store *s, const char *id, dt_error *err)
{
    return CALL(purge_instance, id, err);
}

dt_status dt_store_purge_instances(dt_store *s, const dt_query *filter, size_t *n_purged,
                                   dt_error *err)
{
    return CALL(purge_instances, filter, n_purged, err);
}

void dt_orch_item_free(dt_orch_item *item)
{
    if (item != NULL)
        dt_arena_free(item->arena);   /* the item itself is inside its arena */
}

void dt_activity_item_free(dt_activity_item *item)
{
    if (item != NULL)
        dt_arena_free(item->arena);
}

dt_status dt_store_queue_depths(dt_store *s, dt_time now, size_t *orchestrations,
                                size_t *activities, dt_error *err)
{
    return CALL(queue_depths, now, orchestrations, activities, err);
}

dt_status dt_store_count_by_status(dt_store *s, size_t counts[DT_STATUS_COUNT], dt_error *err)
{
    memset(counts, 0, DT_STATUS_COUNT * sizeof *counts);
    return CALL(count_by_status, counts, err);
}

dt_status dt_store_send_entity_message(dt_store *s, const dt_entity_message *m, dt_error *err)
{
    return CALL(send_entity_message, m, err);
}

dt_status dt_store_lease_entities(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                                  size_t max, const dt_name_filter *names, dt_entity_item **out,
                                  size_t *n_out, dt_error *err)
{
    return CALL(lease_entities, owner, now, lease_us, max, names, out, n_out, err);
}

dt_status dt_store_renew_entity(dt_store *s, const dt_entity_item *item, dt_time until,
                                dt_error *err)
{
    return CALL(renew_entity, item, until, err);
}

dt_status dt_store_abandon_entity(dt_store *s, const dt_entity_item *item, dt_time retry_at,
                                  dt_error *err)
{
    return CALL(abandon_entity, item, retry_at, err);
}

dt_status dt_store_get_entity(dt_store *s, const char *id, bool with_state, dt_arena *arena,
                              dt_entity_state **out, dt_error *err)
{
    return CALL(get_entity, id, with_state, arena, out, err);
}

dt_status dt_store_query_entities(dt_store *s, const dt_entity_query *q, dt_arena *arena,
                                  dt_entity_state **out, size_t *n_out, const char **next,
                                  dt_error *err)
{
    return CALL(query_entities, q, arena, out, n_out, next, err);
}

dt_status dt_store_clean_entities(dt_store *s, bool remove_empty, bool release_orphaned,
                                  dt_time now, size_t *removed, size_t *released,
                                  dt_error *err)
{
    return CALL(clean_entities, remove_empty, release_orphaned, now, removed, released,
                                  err);
}

void dt_entity_item_free(dt_entity_item *item)
{
    if (item != NULL)
        dt_arena_free(item->arena);
}

dt_status store_entity_item_new(const char *id, dt_entity_item **out, dt_error *err)
{
    dt_arena *arena = dt_arena_new();
    dt_entity_item *item = arena ? dt_arena_alloc(arena, sizeof *item) : NULL;
    if (item == NULL || (item->entity_id = dt_arena_strdup(arena, id)) == NULL) {
        dt_arena_free(arena);
        *out = NULL;
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory leasing entities");
    }
    item->arena = arena;
    *out = item;
    return DT_OK;
}
