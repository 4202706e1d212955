/* entity.c — durable entities in the hub: what one step of an entity takes from its queue
 * (a batch of operations for a worker, or a lock request the hub applies itself), how a
 * batch's result becomes one commit (state, answers to callers, signals, orchestrations
 * started, messages consumed), critical sections (locks passed along a lock set in one fixed
 * order, then granted), and the client's calls. See docs/design/entities.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

/* Most operations one batch takes: enough to amortize a round trip to the worker, few enough
 * that the work item stays small and a failing batch redoes little. And most bytes of
 * inputs: a batch stays far below the 4 MiB the SDKs' workers receive at most (a single
 * operation over it is still sent alone). */
#define BATCH_MAX 50
#define BATCH_BYTES_MAX ((size_t)1 << 20)

/* ---- commits ----------------------------------------------------------------------------------- */

/* commit_step: STEP in one commit; the committer stops renewing the item's lease. */
static dt_status commit_step(dt_hub *hub, const dt_entity_step *step, dt_error *err)
{
    dt_commit c = {.kind = DT_COMMIT_ENTITY, .error = err};
    c.u.entity = *step;
    return hub_commit(hub, &c, err);
}

/* holder_runs: is execution EXEC of orchestration ID still running (a lock request of an
 * execution that ended is dropped, not granted)? */
static bool holder_runs(dt_hub *hub, const char *id, const char *exec)
{
    dt_arena *a = dt_arena_new();
    dt_instance_state *st = NULL;
    bool runs = a && id && dt_store_get_instance(hub->store, id, a, &st, NULL) == DT_OK &&
                (st->status == DT_STATUS_RUNNING || st->status == DT_STATUS_SUSPENDED ||
                 st->status == DT_STATUS_PENDING) &&
                (exec == NULL || (st->execution_id && strcmp(st->execution_id, exec) == 0));
    dt_arena_free(a);
    return runs;
}

/* lock_step: the lock request M, first in ITEM's queue, applied without a worker: this entity
 * is locked for the requester, and the request goes on to the next entity of its set, or,
 * from the last one, the requester is told its lock is granted. */
static dt_status lock_step(dt_hub *hub, dt_entity_item *item, const dt_entity_message *m,
                           int64_t id, dt_error *err)
{
    dt_entity_step step = {.item = item, .consumed = &id, .n_consumed = 1};
    const dt_event *e = &m->event;
    dt_message grant = {0};
    dt_entity_message next = {0};
    if (!holder_runs(hub, m->sender, m->sender_execution)) {
        dt_log(DT_LOG_INFO, item->entity_id, "lock request of '%s' dropped: that run is over",
               m->sender ? m->sender : "?");
        return commit_step(hub, &step, err);
    }
    step.set_lock = true;
    step.locked_by = m->sender;
    step.locked_execution = m->sender_execution;
    step.lock_section = e->request_id;
    size_t pos = (size_t)(e->position >= 0 ? e->position : 0) + 1;
    if (pos < e->n_lock_set) {
        next = *m;
        next.entity_id = e->lock_set[pos];
        next.visible_at = 0;
        next.event.position = (int32_t)pos;
        next.event.timestamp = dt_now();
        step.entity_messages = &next;
        step.n_entity_messages = 1;
    } else {
        grant.instance_id = m->sender;
        grant.execution_id = m->sender_execution;
        dt_event_init(&grant.event, DT_EVENT_ENTITY_LOCK_GRANTED, dt_now());
        grant.event.request_id = e->request_id;
        step.messages = &grant;
        step.n_messages = 1;
    }
    return commit_step(hub, &step, err);
}

/* drop_step: consume message ID, which no step can take (not an operation or a lock
 * request). */
static dt_status drop_step(dt_hub *hub, dt_entity_item *item, const dt_entity_message *m,
                           int64_t id, dt_error *err)
{
    dt_log(DT_LOG_WARN, item->entity_id, "message of type %s dropped: not an entity operation",
           dt_event_type_name(m->event.type));
    dt_entity_step step = {.item = item, .consumed = &id, .n_consumed = 1};
    return commit_step(hub, &step, err);
}

/* ---- taking a step ---------------------------------------------------------------------------- */

static bool is_operation(const dt_entity_message *m)
{
    return m->event.type == DT_EVENT_ENTITY_SIGNALED || m->event.type == DT_EVENT_ENTITY_CALLED;
}

dt_status entity_take(dt_hub *hub, dt_entity_item *item, dt_entity_item **out, dt_error *err)
{
    *out = NULL;
    dt_status st = DT_OK;
    if (item->n_messages > 0 && !is_operation(&item->messages[0])) {
        const dt_entity_message *m = &item->messages[0];
        st = m->event.type == DT_EVENT_ENTITY_LOCK_REQUESTED
                 ? lock_step(hub, item, m, item->message_ids[0], err)
                 : drop_step(hub, item, m, item->message_ids[0], err);
        dt_entity_item_free(item);
        return st;
    }
    size_t n = 0, bytes = item->state ? strlen(item->state) : 0;
    while (n < item->n_messages && n < BATCH_MAX && is_operation(&item->messages[n])) {
        const dt_event *e = &item->messages[n].event;   /* all it sends, within reason */
        bytes += limits_event_bytes(e) + (e->request_id ? strlen(e->request_id) : 0);
        if (n > 0 && bytes > BATCH_BYTES_MAX)
            break;
        n++;
    }
    if (n == 0) {   /* nothing it may take after all (the lock moved meanwhile) */
        lease_untrack(hub, item);
        dt_store_abandon_entity(hub->store, item, 0, NULL);
        dt_entity_item_free(item);
        return DT_OK;
    }
    item->n_messages = n;   /* the rest waits for the next step */
    *out = item;
    return DT_OK;
}

void dt_hub_entity_request(const dt_entity_item *item, dt_entity_request *out)
{
    dt_event *ops = dt_arena_alloc(item->arena, (item->n_messages + 1) * sizeof *ops);
    for (size_t i = 0; ops && i < item->n_messages; i++)
        ops[i] = item->messages[i].event;
    *out = (dt_entity_request){item->entity_id, item->state, ops, ops ? item->n_messages : 0};
}

/* ---- a batch's result ------------------------------------------------------------------------ */

/* answer: the message that tells caller message M how its operation ended (R). */
static void answer(const dt_entity_message *m, const dt_entity_op_result *r, dt_time now,
                   dt_message *out)
{
    memset(out, 0, sizeof *out);
    out->instance_id = m->sender ? m->sender : m->event.parent_instance_id;
    out->execution_id = m->sender_execution ? m->sender_execution : m->event.parent_execution_id;
    dt_event_init(&out->event, r->failure ? DT_EVENT_ENTITY_FAILED : DT_EVENT_ENTITY_COMPLETED,
                  now);
    out->event.request_id = m->event.request_id;
    out->event.result = r->failure ? NULL : r->result;
    out->event.failure = r->failure;
}

/* signal_of: the entity message of signal action A sent by ITEM; false (logged) when its
 * target is not an entity id, which drops the signal but not the batch. */
static bool signal_of(dt_arena *arena, const dt_entity_item *item, const dt_entity_action *a,
                      dt_time now, dt_entity_message *out)
{
    dt_error err;
    const char *to = a->instance_id ? dt_entity_id_normalize(arena, a->instance_id, &err) : NULL;
    char *rid = dt_arena_alloc(arena, 37);
    dt_error name_err;
    bool name_ok = dt_name_validate(a->name, "operation name", &name_err) == DT_OK;
    if (to == NULL || rid == NULL || !name_ok) {
        dt_log(DT_LOG_WARN, item->entity_id, "signal dropped: %s",
               to == NULL ? (a->instance_id ? err.message : "no target entity")
                          : rid ? name_err.message : "out of memory");
        return false;
    }
    dt_instance_id_generate(rid);
    memset(out, 0, sizeof *out);
    out->entity_id = to;
    out->visible_at = a->at;
    out->sender = item->entity_id;
    dt_event_init(&out->event, DT_EVENT_ENTITY_SIGNALED, now);
    out->event.request_id = rid;
    out->event.name = a->name;
    out->event.input = a->input;
    out->event.fire_at = a->at;
    out->event.instance_id = to;
    return true;
}

/* start_of: the new instance of start action A; false (logged) when its id or name is bad. */
static bool start_of(dt_arena *arena, const dt_entity_item *item, const dt_entity_action *a,
                     dt_time now, dt_new_instance *out)
{
    dt_error err;
    char *id = dt_arena_alloc(arena, DT_INSTANCE_ID_MAX + 1);
    char *exec = dt_arena_alloc(arena, 33);
    if (id == NULL || exec == NULL)
        return false;
    if (a->instance_id && a->instance_id[0])
        snprintf(id, DT_INSTANCE_ID_MAX + 1, "%s", a->instance_id);
    else
        dt_instance_id_generate(id);
    if (dt_name_validate(a->name, "orchestrator name", &err) != DT_OK ||
        dt_version_validate(a->version, "orchestrator version", &err) != DT_OK ||
        (a->instance_id && a->instance_id[0] &&
         dt_instance_id_validate(a->instance_id, &err) != DT_OK)) {
        dt_log(DT_LOG_WARN, item->entity_id, "orchestration start dropped: %s", err.message);
        return false;
    }
    dt_execution_id_generate(exec);
    *out = (dt_new_instance){.instance_id = id, .execution_id = exec, .name = a->name,
                             .version = a->version, .input = a->input, .created_at = now,
                             .scheduled_start = a->at};
    return true;
}

/* too_large: RES leaves a state over DT_ENTITY_STATE_MAX: every operation fails instead. */
static const dt_entity_op_result *too_large(dt_arena *arena, const dt_entity_item *item,
                                            const dt_entity_result *res)
{
    dt_entity_op_result *r = dt_arena_alloc(arena, res->n_results * sizeof *r);
    dt_failure *f = dt_failure_new(arena, "EntityStateTooLarge",
                                   "entity '%s': the batch would leave a state of %zu bytes; at "
                                   "most %u are kept (its state is unchanged)",
                                   item->entity_id, strlen(res->state), DT_ENTITY_STATE_MAX);
    if (r == NULL || f == NULL)
        return NULL;
    f->non_retriable = true;
    for (size_t i = 0; i < res->n_results; i++)
        r[i].failure = f;
    return r;
}

/* build_step: the commit of RES for ITEM, in ARENA. */
static dt_status build_step(const dt_entity_item *item, const dt_entity_result *res,
                            dt_arena *arena, dt_entity_step *step, dt_error *err)
{
    dt_time now = dt_now();
    size_t n = res->n_results;
    const dt_entity_op_result *results = res->results;
    bool keep_state = res->state && strlen(res->state) > DT_ENTITY_STATE_MAX;
    if (keep_state && (results = too_large(arena, item, res)) == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    dt_message *answers = dt_arena_alloc(arena, (n + 1) * sizeof *answers);
    dt_entity_message *signals = dt_arena_alloc(arena, (res->n_actions + 1) * sizeof *signals);
    dt_new_instance *starts = dt_arena_alloc(arena, (res->n_actions + 1) * sizeof *starts);
    if (answers == NULL || signals == NULL || starts == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    memset(step, 0, sizeof *step);
    step->item = item;
    step->consumed = item->message_ids;
    step->n_consumed = n;
    step->set_state = !keep_state;
    step->state = res->state;
    step->messages = answers;
    step->entity_messages = signals;
    step->instances = starts;
    for (size_t i = 0; i < n; i++)
        if (item->messages[i].event.type == DT_EVENT_ENTITY_CALLED)
            answer(&item->messages[i], &results[i], now, &answers[step->n_messages++]);
    for (size_t i = 0; !keep_state && i < res->n_actions; i++) {
        const dt_entity_action *a = &res->actions[i];
        if (a->type == DT_ENTITY_SIGNAL)
            step->n_entity_messages += signal_of(arena, item, a, now,
                                                 &signals[step->n_entity_messages]);
        else if (a->type == DT_ENTITY_START_ORCHESTRATION)
            step->n_instances += start_of(arena, item, a, now, &starts[step->n_instances]);
    }
    return DT_OK;
}

dt_status dt_hub_complete_entity(dt_hub *hub, dt_entity_item *item, const dt_entity_result *res,
                                 dt_error *err)
{
    if (res->failure || res->n_results > item->n_messages ||
        (res->n_results == 0 && item->n_messages > 0)) {
        const char *why = res->failure ? (res->failure->message ? res->failure->message : "")
                                       : "a result count that does not fit the batch";
        dt_log(DT_LOG_WARN, item->entity_id, "entity batch of %zu operations given back: %s",
               item->n_messages, why);
        dt_hub_abandon_entity(hub, item, NULL);
        return dt_error_set(err, DT_ERR_INVALID_ARG, "entity batch given back: %s", why);
    }
    dt_arena *arena = dt_arena_new();
    dt_entity_step step;
    dt_status st = arena ? build_step(item, res, arena, &step, err)
                         : dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    if (st == DT_OK)
        st = commit_step(hub, &step, err);
    else
        dt_hub_release_entity(hub, item, NULL), item = NULL;
    dt_arena_free(arena);
    dt_entity_item_free(item);
    return st;
}

/* give_back: ITEM's lease up, for redelivery from RETRY_AT (0: at once). Frees ITEM. */
static dt_status give_back(dt_hub *hub, dt_entity_item *item, dt_time retry_at, dt_error *err)
{
    lease_untrack(hub, item);
    dt_status st = dt_store_abandon_entity(hub->store, item, retry_at, err);
    hub_notify(hub);
    dt_entity_item_free(item);
    return st;
}

dt_status dt_hub_abandon_entity(dt_hub *hub, dt_entity_item *item, dt_error *err)
{
    dt_time now = dt_now();
    int n = backoff_note(hub, item->entity_id, now);
    return give_back(hub, item, now + backoff_after(n), err);
}

dt_status dt_hub_release_entity(dt_hub *hub, dt_entity_item *item, dt_error *err)
{
    return give_back(hub, item, 0, err);
}

/* ---- the client's calls ------------------------------------------------------------------------- */

dt_status dt_hub_signal_entity(dt_hub *hub, const char *id, const char *operation,
                               const char *input, dt_time at, const char *request_id,
                               dt_error *err)
{
    dt_status st = dt_name_validate(operation, "operation name", err);
    if (st == DT_OK && request_id && request_id[0])
        st = dt_name_validate(request_id, "request id", err);
    if (st == DT_OK)
        st = dt_payload_check_size(input, "signal input", err);
    if (st == DT_OK)
        st = dt_payload_validate(input, "signal input", err);
    if (st == DT_OK)
        st = dt_store_room(hub->store, err);
    if (st != DT_OK)
        return st;
    dt_arena *arena = dt_arena_new();
    if (arena == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    const char *to = dt_entity_id_normalize(arena, id, err);
    char rid[37];
    if (request_id == NULL || request_id[0] == '\0')
        dt_instance_id_generate(rid);
    dt_entity_message m = {.entity_id = to, .visible_at = at};
    dt_event_init(&m.event, DT_EVENT_ENTITY_SIGNALED, dt_now());
    m.event.request_id = request_id && request_id[0] ? request_id : rid;
    m.event.name = operation;
    m.event.input = input;
    m.event.fire_at = at;
    m.event.instance_id = to;
    st = to ? dt_store_send_entity_message(hub->store, &m, err) : err ? err->code : DT_ERR_INVALID_ARG;
    dt_arena_free(arena);
    if (st == DT_OK)
        hub_notify(hub);
    return st;
}

dt_status dt_hub_get_entity(dt_hub *hub, const char *id, bool with_state, dt_arena *arena,
                            dt_entity_state **out, dt_error *err)
{
    const char *norm = dt_entity_id_normalize(arena, id, err);
    if (norm == NULL)
        return err ? err->code : DT_ERR_INVALID_ARG;
    dt_status st = dt_store_get_entity(hub->store, norm, with_state, arena, out, err);
    if (st == DT_OK && !(*out)->has_state)
        st = dt_error_set(err, DT_ERR_NOT_FOUND, "entity '%s' has no state", norm);
    if (st == DT_OK)
        st = read_barrier(hub, st, err);
    return st;
}

dt_status dt_hub_query_entities(dt_hub *hub, const dt_entity_query *q, dt_arena *arena,
                                dt_entity_state **out, size_t *n_out, const char **next,
                                dt_error *err)
{
    dt_status bad = limits_range(q->modified_from, q->modified_to, "entity query",
                                 "last-modified", err);
    if (bad != DT_OK)
        return bad;
    dt_entity_query nq = *q;
    if (q->id_prefix && q->id_prefix[0] == '@') {   /* the name part is lowercase, as ids */
        char *p = dt_arena_strdup(arena, q->id_prefix);
        if (p == NULL)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        for (char *c = p + 1; *c && *c != '@'; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        nq.id_prefix = p;
    }
    dt_status st = dt_store_query_entities(hub->store, &nq, arena, out, n_out, next, err);
    if (st == DT_OK)
        st = read_barrier(hub, st, err);
    return st;
}

dt_status dt_hub_clean_entities(dt_hub *hub, bool remove_empty, bool release_orphaned,
                                size_t *removed, size_t *released, dt_error *err)
{
    dt_status st = dt_store_clean_entities(hub->store, remove_empty, release_orphaned, dt_now(),
                                           removed, released, err);
    if (st == DT_OK && *released > 0)
        hub_notify(hub);   /* entities unlocked may have work waiting */
    return st;
}
