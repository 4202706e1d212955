/* entities.c — durable entities in the C SDK. The entity side: a batch of operations run one
 * after the other over the entity's state, each one's state change and signals undone if it
 * fails (dt_entity_run). The orchestration side: calls, signals and critical sections as
 * sendEntityMessage actions, replayed like any scheduled step (the hub keeps each in history
 * under the action's sequence number, and answers name the request they answer). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

/* ==== the entity side ==================================================================== */

struct dt_ectx {
    dt_arena *arena;
    const dt_entity_request *req;
    void *user;
    const char *state;            /* the state as the operations so far left it */
    dt_entity_action *actions;    /* the batch's actions, this operation's at the end */
    size_t n_actions, cap_actions;
    dt_failure *failure;
    bool nomem;
};

const char *dt_entity_get_state(dt_ectx *c) { return c->state; }
const char *dt_entity_id(const dt_ectx *c) { return c->req->entity_id; }
void *dt_entity_user(const dt_ectx *c) { return c->user; }
void *dt_entity_alloc(dt_ectx *c, size_t n) { return dt_arena_alloc(c->arena, n); }

const char *dt_entity_key(const dt_ectx *c)
{
    const char *id = c->req->entity_id;
    return id + 2 + dt_entity_id_name_len(id);
}

dt_status dt_entity_set_state(dt_ectx *c, const char *json)
{
    dt_error err;
    if (dt_payload_validate(json, "entity state", &err) != DT_OK)
        return dt_entity_fail(c, "InvalidState", "%s", err.message);
    const char *copy = json ? dt_arena_strdup(c->arena, json) : NULL;
    if (json && copy == NULL) {
        c->nomem = true;
        return DT_ERR_NOMEM;
    }
    c->state = copy;
    return DT_OK;
}

void dt_entity_delete_state(dt_ectx *c)
{
    c->state = NULL;
}

char *dt_entity_printf(dt_ectx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = dt_arena_vprintf(c->arena, fmt, ap);
    va_end(ap);
    return s;
}

dt_status dt_entity_fail(dt_ectx *c, const char *error_type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_failure *f = dt_failure_vnew(c->arena, error_type ? error_type : "EntityOperationFailed",
                                    fmt, ap);
    va_end(ap);
    if (f == NULL) {
        c->nomem = true;
        return DT_ERR_NOMEM;
    }
    c->failure = f;
    return DT_ERR_TASK_FAILED;
}

/* add_action: room for one more action of this operation, in the arena. */
static dt_entity_action *add_action(dt_ectx *c)
{
    if (c->n_actions == c->cap_actions) {
        size_t cap = c->cap_actions ? c->cap_actions * 2 : 8;
        dt_entity_action *v = dt_arena_alloc(c->arena, cap * sizeof *v);
        if (v == NULL) {
            c->nomem = true;
            return NULL;
        }
        if (c->n_actions)
            memcpy(v, c->actions, c->n_actions * sizeof *v);
        c->actions = v;
        c->cap_actions = cap;
    }
    dt_entity_action *a = &c->actions[c->n_actions++];
    memset(a, 0, sizeof *a);
    return a;
}

dt_status dt_entity_signal_entity(dt_ectx *c, const char *entity_id, const char *operation,
                                  const char *input, dt_time at)
{
    dt_error err;
    const char *to = dt_entity_id_normalize(c->arena, entity_id, &err);
    if (to == NULL)
        return dt_entity_fail(c, "InvalidEntityId", "%s", err.message);
    if (dt_name_validate(operation, "operation name", &err) != DT_OK)
        return dt_entity_fail(c, "InvalidOperation", "signal to '%s': %s", to, err.message);
    if (dt_payload_validate(input, "signal input", &err) != DT_OK)
        return dt_entity_fail(c, "InvalidInput", "%s", err.message);
    dt_entity_action *a = add_action(c);
    if (a == NULL)
        return DT_ERR_NOMEM;
    *a = (dt_entity_action){DT_ENTITY_SIGNAL, to, dt_arena_strdup(c->arena, operation), NULL,
                            dt_arena_strdup(c->arena, input), at};
    return DT_OK;
}

dt_status dt_entity_start_orchestration(dt_ectx *c, const char *name, const char *input,
                                        const char *instance_id,
                                        char id_out[DT_INSTANCE_ID_MAX + 1])
{
    dt_error err;
    if (dt_name_validate(name, "orchestrator name", &err) != DT_OK)
        return dt_entity_fail(c, "InvalidOperation", "orchestration start: %s", err.message);
    if (instance_id && dt_instance_id_validate(instance_id, &err) != DT_OK)
        return dt_entity_fail(c, "InvalidInstanceId", "%s", err.message);
    if (dt_payload_validate(input, "orchestration input", &err) != DT_OK)
        return dt_entity_fail(c, "InvalidInput", "%s", err.message);
    char id[DT_INSTANCE_ID_MAX + 1];
    if (instance_id)
        snprintf(id, sizeof id, "%s", instance_id);
    else
        dt_instance_id_generate(id);
    dt_entity_action *a = add_action(c);
    if (a == NULL)
        return DT_ERR_NOMEM;
    *a = (dt_entity_action){DT_ENTITY_START_ORCHESTRATION, dt_arena_strdup(c->arena, id),
                            dt_arena_strdup(c->arena, name), NULL,
                            dt_arena_strdup(c->arena, input), 0};
    if (id_out)
        memcpy(id_out, id, strlen(id) + 1);
    return DT_OK;
}

/* run_one: operation OP; its result into R; on failure the state and actions go back to
 * what they were before it. */
static void run_one(dt_entity_fn fn, dt_ectx *c, const dt_event *op, dt_entity_op_result *r)
{
    const char *state_before = c->state;
    size_t actions_before = c->n_actions;
    const char *output = NULL;
    c->failure = NULL;
    dt_status st = fn(c, op->name ? op->name : "", op->input, &output);
    dt_error err;
    memset(r, 0, sizeof *r);
    if (st == DT_OK && output && dt_payload_validate(output, "operation output", &err) != DT_OK)
        st = dt_entity_fail(c, "InvalidOutput", "%s", err.message);
    if (st == DT_OK) {
        r->result = output ? dt_arena_strdup(c->arena, output) : NULL;
        c->nomem |= output && r->result == NULL;
        return;
    }
    r->failure = c->failure ? c->failure
                            : dt_failure_new(c->arena, "EntityOperationFailed",
                                             "operation '%s' of entity '%s' returned '%s'",
                                             op->name ? op->name : "", c->req->entity_id,
                                             dt_strerror(st));
    c->nomem |= r->failure == NULL;
    c->state = state_before;
    c->n_actions = actions_before;
}

dt_status dt_entity_run(dt_entity_fn fn, void *user, const dt_entity_request *req,
                        dt_arena *arena, dt_entity_result *out)
{
    dt_ectx c = {.arena = arena, .req = req, .user = user, .state = req->state};
    dt_entity_op_result *results =
        dt_arena_alloc(arena, (req->n_operations + 1) * sizeof *results);
    if (results == NULL)
        return DT_ERR_NOMEM;
    for (size_t i = 0; i < req->n_operations && !c.nomem; i++)
        run_one(fn, &c, &req->operations[i], &results[i]);
    if (c.nomem)
        return DT_ERR_NOMEM;
    *out = (dt_entity_result){results, req->n_operations, c.actions, c.n_actions, c.state, NULL};
    return DT_OK;
}

/* ==== the orchestration side ================================================================ */

/* target: ID normalized, or the orchestration fails (InvalidEntityId). */
static const char *target(dt_octx *c, const char *id)
{
    dt_error err;
    const char *t = dt_entity_id_normalize(c->arena, id, &err);
    if (t == NULL)
        replay_fail(c, "InvalidEntityId", "%s", id ? err.message : "the entity id is missing");
    return t;
}

static bool holds(const dt_octx *c, const char *id)
{
    for (size_t i = 0; i < c->n_locked; i++)
        if (strcmp(c->locked[i], id) == 0)
            return true;
    return false;
}

/* send: schedule the entity message E as the next step; returns its sequence number. The
 * request id is the one history has when replaying, else E's (a new deterministic GUID). */
static int32_t send(dt_octx *c, dt_event *e)
{
    dt_action a = {.type = DT_ACTION_SEND_ENTITY_MESSAGE, .name = e->name, .entity = e};
    return replay_schedule(c, DT_ACTION_SEND_ENTITY_MESSAGE, e->name, &a);
}

dt_task *dt_call_entity(dt_octx *c, const char *entity_id, const char *operation,
                        const char *input)
{
    const char *to = target(c, entity_id);
    if (c->n_locked > 0 && !holds(c, to))
        replay_fail(c, "LockingRulesViolation", "entity '%s' is called inside a critical "
                    "section that does not hold it", to);
    dt_event e;
    dt_event_init(&e, DT_EVENT_ENTITY_CALLED, 0);
    e.request_id = dt_octx_new_guid(c);
    e.name = operation ? operation : "";
    e.input = input;
    e.instance_id = to;
    e.parent_instance_id = c->instance_id;
    dt_task *t = task_new(c, TASK_ENTITY);
    t->name = replay_strdup(c, to);
    t->seq = send(c, &e);
    return t;
}

void dt_signal_entity(dt_octx *c, const char *entity_id, const char *operation,
                      const char *input, dt_time at)
{
    const char *to = target(c, entity_id);
    if (holds(c, to))
        replay_fail(c, "LockingRulesViolation", "entity '%s' is signaled inside a critical "
                    "section that holds it; call it instead", to);
    dt_event e;
    dt_event_init(&e, DT_EVENT_ENTITY_SIGNALED, 0);
    e.request_id = dt_octx_new_guid(c);
    e.name = operation ? operation : "";
    e.input = input;
    e.fire_at = at;
    e.instance_id = to;
    send(c, &e);
}

static int cmp_ids(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

dt_task *dt_lock(dt_octx *c, const char *const *entity_ids, size_t n)
{
    if (c->n_locked > 0)
        replay_fail(c, "LockingRulesViolation", "a critical section is already held");
    if (n == 0)
        replay_fail(c, "LockingRulesViolation", "a critical section needs at least one entity");
    const char **set = dt_alloc(c, n * sizeof *set);
    for (size_t i = 0; i < n; i++)
        set[i] = target(c, entity_ids[i]);
    qsort(set, n, sizeof *set, cmp_ids);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(set[k - 1], set[i]) != 0)
            set[k++] = set[i];
    dt_event e;
    dt_event_init(&e, DT_EVENT_ENTITY_LOCK_REQUESTED, 0);
    e.request_id = dt_octx_new_guid(c);
    e.lock_set = set;
    e.n_lock_set = k;
    e.parent_instance_id = c->instance_id;
    dt_task *t = task_new(c, TASK_LOCK);
    t->seq = send(c, &e);
    const dt_event *h = (size_t)t->seq < c->n_seq ? c->scheduled[t->seq] : NULL;
    c->section = h && h->request_id ? h->request_id : e.request_id;
    c->locked = set;
    c->n_locked = k;
    return t;
}

void dt_unlock(dt_octx *c)
{
    for (size_t i = 0; i < c->n_locked; i++) {
        dt_event e;
        dt_event_init(&e, DT_EVENT_ENTITY_UNLOCK_SENT, 0);
        e.request_id = c->section;
        e.parent_instance_id = c->instance_id;
        e.instance_id = c->locked[i];
        send(c, &e);
    }
    c->n_locked = 0;
    c->locked = NULL;
    c->section = NULL;
}

bool dt_octx_in_critical_section(const dt_octx *c)
{
    return c->n_locked > 0;
}
