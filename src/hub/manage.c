/* manage.c — instance management: raise event, terminate, suspend, resume, rewind, restart, query
 * (purges are purge.c's). Commands that change a running instance are inbox messages, so
 * they take effect in the instance's next episode, in order with everything else that
 * reaches it. Each checks what it can up front (the instance exists and has not finished)
 * and says what was wrong. */
#include <stdio.h>
#include <string.h>

#include "hub_internal.h"

/* read_instance: ID's row into A (*OUT), for operation OP: its errors name OP and ID. */
static dt_status read_instance(dt_hub *hub, const char *id, const char *op, dt_arena *a,
                               dt_instance_state **out, dt_error *err)
{
    if (id == NULL || id[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s: instance id is empty", op);
    if (a == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    dt_status st = dt_store_get_instance(hub->store, id, a, out, err);
    st = read_barrier(hub, st, err);
    if (st == DT_ERR_NOT_FOUND)
        st = dt_error_set(err, DT_ERR_NOT_FOUND, "%s: no instance '%s'", op, id);
    return st;
}

/* still_failed: is ID Failed (so a refused reopen met a lease, not another status)? */
#define REWIND_TRIES 40
static bool still_failed(dt_hub *hub, const char *id)
{
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    bool failed = read_instance(hub, id, "rewind", a, &s, NULL) == DT_OK &&
                  s->status == DT_STATUS_FAILED;
    dt_arena_free(a);
    return failed;
}

/* live_instance: DT_OK if ID exists and has not finished; else the error, naming it.
 * *NOT_BEFORE is when the instance starts if that is still ahead (a scheduled start), else 0:
 * messages for it wait until then, so nothing reaches an orchestration before its start. */
static dt_status live_instance(dt_hub *hub, const char *id, const char *op, dt_time *not_before,
                               dt_error *err)
{
    *not_before = 0;
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    dt_status st = read_instance(hub, id, op, a, &s, err);
    if (st == DT_OK && dt_runtime_status_is_terminal(s->status))
        st = dt_error_set(err, DT_ERR_STATE, "%s: instance '%s' has already finished (%s)", op,
                          id, dt_runtime_status_name(s->status));
    else if (st == DT_OK && s->status == DT_STATUS_PENDING && s->scheduled_start > dt_now())
        *not_before = s->scheduled_start;
    dt_arena_free(a);
    return st;
}

static dt_status send_message(dt_hub *hub, const dt_message *m, dt_error *err)
{
    dt_status st = dt_store_send_message(hub->store, m, err);
    if (st == DT_OK) {
        /* a lease a commit took for a taker holds the inbox as it was: give it back, so the
         * next lease sees this message too (as it would have without that lease) */
        ready_forget(hub, m->instance_id);
        hub_notify(hub);
    }
    return st;
}

static dt_status send_control(dt_hub *hub, const char *id, dt_time visible, dt_event *e,
                              dt_error *err)
{
    dt_message m = {.instance_id = id, .visible_at = visible, .event = *e};
    return send_message(hub, &m, err);
}

dt_status dt_hub_raise_event(dt_hub *hub, const char *id, const char *name, const char *data,
                             dt_error *err)
{
    dt_time visible;
    dt_status st = dt_name_validate(name, "raise event: event name", err);
    if (st == DT_OK)
        st = dt_payload_check_size(data, "event data", err);
    if (st == DT_OK)
        st = dt_payload_validate(data, "event data", err);
    if (st == DT_OK)
        st = dt_store_room(hub->store, err);
    if (st == DT_OK)
        st = live_instance(hub, id, "raise event", &visible, err);
    if (st != DT_OK)
        return st;
    dt_event e;
    dt_event_init(&e, DT_EVENT_EVENT_RAISED, dt_now());
    e.name = name;
    e.input = data;
    return send_control(hub, id, visible, &e, err);
}

dt_status dt_hub_terminate(dt_hub *hub, const char *id, const char *output, bool recurse,
                           dt_error *err)
{
    dt_time visible;
    dt_status st = dt_payload_check_size(output, "terminate output", err);
    if (st == DT_OK)
        st = dt_payload_validate(output, "terminate output", err);
    if (st == DT_OK)
        st = live_instance(hub, id, "terminate", &visible, err);
    if (st != DT_OK)
        return st;
    dt_event e;
    dt_event_init(&e, DT_EVENT_EXECUTION_TERMINATED, dt_now());
    e.input = output;
    e.recurse = recurse;
    st = send_control(hub, id, 0, &e, err);   /* terminate acts at once, started or not */
    if (st == DT_OK)
        renewer_terminate_asked(hub);   /* and whether a worker is connected or not */
    return st;
}

static dt_status suspend_or_resume(dt_hub *hub, const char *id, const char *reason,
                                   dt_event_type type, const char *op, dt_error *err)
{
    dt_time visible;
    dt_status st = dt_payload_check_size(reason, "reason", err);
    if (st == DT_OK)
        st = dt_payload_validate(reason, "reason", err);
    if (st == DT_OK)
        st = live_instance(hub, id, op, &visible, err);
    if (st != DT_OK)
        return st;
    dt_event e;
    dt_event_init(&e, type, dt_now());
    e.input = reason;
    return send_control(hub, id, visible, &e, err);
}

dt_status dt_hub_suspend(dt_hub *hub, const char *id, const char *reason, dt_error *err)
{
    return suspend_or_resume(hub, id, reason, DT_EVENT_EXECUTION_SUSPENDED, "suspend", err);
}

dt_status dt_hub_resume(dt_hub *hub, const char *id, const char *reason, dt_error *err)
{
    return suspend_or_resume(hub, id, reason, DT_EVENT_EXECUTION_RESUMED, "resume", err);
}

dt_status dt_hub_rewind(dt_hub *hub, const char *id, const char *reason, dt_error *err)
{
    dt_status st = dt_payload_check_size(reason, "rewind reason", err);
    if (st == DT_OK && !dt_utf8_valid(reason))   /* plain text, which every worker is sent */
        st = dt_error_set(err, DT_ERR_INVALID_ARG, "rewind reason is not valid UTF-8");
    if (st != DT_OK)
        return st;
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    st = read_instance(hub, id, "rewind", a, &s, err);
    if (st == DT_OK && s->status != DT_STATUS_FAILED)
        st = dt_error_set(err, DT_ERR_STATE, "rewind: instance '%s' is %s; only a Failed "
                          "instance can be rewound", id, dt_runtime_status_name(s->status));
    dt_arena_free(a);
    if (st != DT_OK)
        return st;
    /* Running from now on, as the SDKs' clients expect (they wait for completion next); the
     * rewrite itself happens when the instance is next leased (dispatch.c) */
    dt_message m = {.instance_id = id, .reopen = true};
    dt_event_init(&m.event, DT_EVENT_EXECUTION_REWOUND, dt_now());
    m.event.input = reason;
    /* a Failed instance is leased only for a moment (late messages being dropped): wait
     * that out rather than race its commit */
    for (int tries = 0; (st = send_message(hub, &m, err)) == DT_ERR_STATE &&
                        tries < REWIND_TRIES && still_failed(hub, id);
         tries++)
        hub_wait_change(hub, hub_version(hub), 50);
    if (st == DT_ERR_STATE)
        return dt_error_set(err, DT_ERR_STATE, "rewind: instance '%s' changed or stayed leased "
                            "meanwhile; only a Failed instance can be rewound", id);
    /* the episode that let go of the lease (a late message dropped) may be committed and not
     * yet published: it is before the caller hears of the rewind, so its row (Failed) is told
     * to no wait the caller begins next (hub.c: a wait takes the rows of later batches only) */
    return st == DT_OK ? read_barrier(hub, st, err) : st;
}

dt_status dt_hub_restart(dt_hub *hub, const char *id, bool new_id,
                         char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err)
{
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    dt_status st = read_instance(hub, id, "restart", a, &s, err);
    if (st == DT_OK && !new_id && !dt_runtime_status_is_terminal(s->status))
        st = dt_error_set(err, DT_ERR_STATE,
                          "restart: instance '%s' is still %s; terminate it first or restart "
                          "under a new id", id, dt_runtime_status_name(s->status));
    if (st == DT_OK) {
        static const dt_runtime_status finished[] = {DT_STATUS_COMPLETED, DT_STATUS_FAILED,
                                                     DT_STATUS_TERMINATED, DT_STATUS_CANCELED};
        dt_start_request req = {
            .name = s->name,
            .instance_id = new_id ? NULL : id,
            .input = s->input,
            .version = s->version,
            .tags = s->tags,
            .replaceable = finished,
            .n_replaceable = 4,
        };
        st = dt_hub_start(hub, &req, id_out, err);
    }
    dt_arena_free(a);
    return st;
}


dt_status dt_hub_count_by_status(dt_hub *hub, size_t counts[DT_STATUS_COUNT], dt_error *err)
{
    return dt_store_count_by_status(hub->store, counts, err);
}

dt_status dt_hub_query(dt_hub *hub, const dt_query *q, dt_arena *arena, dt_instance_state **out,
                       size_t *n_out, const char **next, dt_error *err)
{
    *n_out = 0;
    *next = NULL;
    dt_status bad = limits_query_ranges(q, "query", err);
    if (bad != DT_OK)
        return bad;
    if (q && q->page_size > DT_QUERY_PAGE_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "query: page size %zu is over the limit of %d", q->page_size,
                            DT_QUERY_PAGE_MAX);
    dt_query all = {0};
    dt_status st = dt_store_query_instances(hub->store, q ? q : &all, arena, out, n_out, next,
                                            err);
    return read_barrier(hub, st, err);
}
