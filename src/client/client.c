/* client.c — the C client API: instance management through the hub's client operations. */
#include <stdlib.h>

#include "durabletask/client.h"

struct dt_client {
    dt_hub *hub;
};

dt_status dt_client_new(dt_hub *hub, dt_client **out)
{
    *out = NULL;
    if (hub == NULL)
        return DT_ERR_INVALID_ARG;
    dt_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DT_ERR_NOMEM;
    c->hub = hub;
    *out = c;
    return DT_OK;
}

void dt_client_free(dt_client *c)
{
    free(c);
}

dt_status dt_client_start(dt_client *c, const char *name, const dt_start_options *opts,
                          char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err)
{
    dt_start_request req = {.name = name};
    if (opts) {
        req.instance_id = opts->instance_id;
        req.input = opts->input;
        req.version = opts->version;
        req.start_at = opts->start_at;
        req.replaceable = opts->replaceable;
        req.n_replaceable = opts->n_replaceable;
        req.reuse_policy = opts->reuse_policy;
    }
    return dt_hub_start(c->hub, &req, id_out, err);
}

dt_status dt_client_get(dt_client *c, const char *id, dt_arena *arena,
                        dt_instance_state **out, dt_error *err)
{
    return dt_hub_get(c->hub, id, arena, out, err);
}

dt_status dt_client_wait_start(dt_client *c, const char *id, int64_t timeout_ms,
                               dt_arena *arena, dt_instance_state **out, dt_error *err)
{
    return dt_hub_wait(c->hub, id, DT_WAIT_START, timeout_ms, arena, out, err);
}

dt_status dt_client_wait_completion(dt_client *c, const char *id, int64_t timeout_ms,
                                    dt_arena *arena, dt_instance_state **out, dt_error *err)
{
    return dt_hub_wait(c->hub, id, DT_WAIT_COMPLETION, timeout_ms, arena, out, err);
}

dt_status dt_client_get_history(dt_client *c, const char *id, dt_arena *arena,
                                dt_event **out, size_t *n_out, dt_error *err)
{
    return dt_hub_get_history(c->hub, id, arena, out, n_out, err);
}

dt_status dt_client_raise_event(dt_client *c, const char *id, const char *name,
                                const char *data, dt_error *err)
{
    return dt_hub_raise_event(c->hub, id, name, data, err);
}

dt_status dt_client_terminate(dt_client *c, const char *id, const char *output, bool recurse,
                              dt_error *err)
{
    return dt_hub_terminate(c->hub, id, output, recurse, err);
}

dt_status dt_client_suspend(dt_client *c, const char *id, const char *reason, dt_error *err)
{
    return dt_hub_suspend(c->hub, id, reason, err);
}

dt_status dt_client_resume(dt_client *c, const char *id, const char *reason, dt_error *err)
{
    return dt_hub_resume(c->hub, id, reason, err);
}

dt_status dt_client_rewind(dt_client *c, const char *id, const char *reason, dt_error *err)
{
    return dt_hub_rewind(c->hub, id, reason, err);
}

dt_status dt_client_restart(dt_client *c, const char *id, bool new_id,
                            char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err)
{
    return dt_hub_restart(c->hub, id, new_id, id_out, err);
}

dt_status dt_client_purge(dt_client *c, const char *id, dt_error *err)
{
    return dt_hub_purge(c->hub, id, err);
}

dt_status dt_client_purge_where(dt_client *c, const dt_query *filter, size_t *n,
                                dt_error *err)
{
    return dt_hub_purge_where(c->hub, filter, n, err);
}

dt_status dt_client_query(dt_client *c, const dt_query *q, dt_arena *arena,
                          dt_instance_state **out, size_t *n_out, const char **next,
                          dt_error *err)
{
    return dt_hub_query(c->hub, q, arena, out, n_out, next, err);
}

dt_status dt_client_signal_entity(dt_client *c, const char *id, const char *operation,
                                  const char *input, dt_time at, dt_error *err)
{
    return dt_hub_signal_entity(c->hub, id, operation, input, at, NULL, err);
}

dt_status dt_client_get_entity(dt_client *c, const char *id, bool with_state, dt_arena *arena,
                               dt_entity_state **out, dt_error *err)
{
    return dt_hub_get_entity(c->hub, id, with_state, arena, out, err);
}

dt_status dt_client_query_entities(dt_client *c, const dt_entity_query *q, dt_arena *arena,
                                   dt_entity_state **out, size_t *n_out, const char **next,
                                   dt_error *err)
{
    return dt_hub_query_entities(c->hub, q, arena, out, n_out, next, err);
}

dt_status dt_client_clean_entities(dt_client *c, bool remove_empty, bool release_orphaned,
                                   size_t *removed, size_t *released, dt_error *err)
{
    return dt_hub_clean_entities(c->hub, remove_empty, release_orphaned, removed, released,
                                 err);
}
