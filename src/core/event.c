/* event.c — history event names and kinds, failure details, deep copies of events, failures
 * and instance states into an arena, and the orchestration request's ExecutionStarted. */
#include <string.h>

#include "durabletask/core.h"

const char *dt_event_type_name(dt_event_type t)
{
    switch (t) {
    case DT_EVENT_NONE: return "None";
    case DT_EVENT_EXECUTION_STARTED: return "ExecutionStarted";
    case DT_EVENT_EXECUTION_COMPLETED: return "ExecutionCompleted";
    case DT_EVENT_EXECUTION_TERMINATED: return "ExecutionTerminated";
    case DT_EVENT_TASK_SCHEDULED: return "TaskScheduled";
    case DT_EVENT_TASK_COMPLETED: return "TaskCompleted";
    case DT_EVENT_TASK_FAILED: return "TaskFailed";
    case DT_EVENT_SUB_ORCHESTRATION_CREATED: return "SubOrchestrationInstanceCreated";
    case DT_EVENT_SUB_ORCHESTRATION_COMPLETED: return "SubOrchestrationInstanceCompleted";
    case DT_EVENT_SUB_ORCHESTRATION_FAILED: return "SubOrchestrationInstanceFailed";
    case DT_EVENT_TIMER_CREATED: return "TimerCreated";
    case DT_EVENT_TIMER_FIRED: return "TimerFired";
    case DT_EVENT_ORCHESTRATOR_STARTED: return "OrchestratorStarted";
    case DT_EVENT_ORCHESTRATOR_COMPLETED: return "OrchestratorCompleted";
    case DT_EVENT_EVENT_SENT: return "EventSent";
    case DT_EVENT_EVENT_RAISED: return "EventRaised";
    case DT_EVENT_GENERIC: return "GenericEvent";
    case DT_EVENT_HISTORY_STATE: return "HistoryState";
    case DT_EVENT_CONTINUE_AS_NEW: return "ContinueAsNew";
    case DT_EVENT_EXECUTION_SUSPENDED: return "ExecutionSuspended";
    case DT_EVENT_EXECUTION_RESUMED: return "ExecutionResumed";
    case DT_EVENT_ENTITY_SIGNALED: return "EntityOperationSignaled";
    case DT_EVENT_ENTITY_CALLED: return "EntityOperationCalled";
    case DT_EVENT_ENTITY_COMPLETED: return "EntityOperationCompleted";
    case DT_EVENT_ENTITY_FAILED: return "EntityOperationFailed";
    case DT_EVENT_ENTITY_LOCK_REQUESTED: return "EntityLockRequested";
    case DT_EVENT_ENTITY_LOCK_GRANTED: return "EntityLockGranted";
    case DT_EVENT_ENTITY_UNLOCK_SENT: return "EntityUnlockSent";
    case DT_EVENT_EXECUTION_REWOUND: return "ExecutionRewound";
    }
    return "Unknown";
}

bool dt_name_filter_match(const dt_name_filter *f, const char *name, const char *version)
{
    if (f == NULL)
        return true;
    for (size_t i = 0; i < f->n; i++) {
        if (name == NULL || f->names[i] == NULL || strcmp(name, f->names[i]) != 0)
            continue;
        const dt_version_list *vl = f->versions ? &f->versions[i] : NULL;
        if (vl == NULL || vl->n == 0)
            return true;
        for (size_t k = 0; k < vl->n; k++)
            if (vl->v[k] && strcmp(vl->v[k], version ? version : "") == 0)
                return true;
    }
    return false;
}

dt_status dt_name_filter_copy(dt_arena *arena, const dt_name_filter *src, dt_name_filter *dst)
{
    const char **names = dt_arena_alloc(arena, (src->n + 1) * sizeof *names);
    dt_version_list *vl = dt_arena_alloc(arena, (src->n + 1) * sizeof *vl);
    if (names == NULL || vl == NULL)
        return DT_ERR_NOMEM;
    for (size_t i = 0; i < src->n; i++) {
        if (src->names[i] && (names[i] = dt_arena_strdup(arena, src->names[i])) == NULL)
            return DT_ERR_NOMEM;
        const dt_version_list *from = src->versions ? &src->versions[i] : NULL;
        size_t nv = from ? from->n : 0;
        const char **v = nv ? dt_arena_alloc(arena, nv * sizeof *v) : NULL;
        if (nv && v == NULL)
            return DT_ERR_NOMEM;
        for (size_t k = 0; k < nv; k++)
            if (from->v[k] && (v[k] = dt_arena_strdup(arena, from->v[k])) == NULL)
                return DT_ERR_NOMEM;
        vl[i] = (dt_version_list){v, nv};
    }
    *dst = (dt_name_filter){names, src->n, vl};
    return DT_OK;
}

const dt_event *dt_orch_request_started(const dt_orch_request *req)
{
    for (size_t i = 0; i < req->n_past; i++)
        if (req->past[i].type == DT_EVENT_EXECUTION_STARTED)
            return &req->past[i];
    for (size_t i = 0; i < req->n_new; i++)
        if (req->new_events[i].type == DT_EVENT_EXECUTION_STARTED)
            return &req->new_events[i];
    return NULL;
}

void dt_event_init(dt_event *e, dt_event_type type, dt_time timestamp)
{
    memset(e, 0, sizeof *e);
    e->type = type;
    e->event_id = -1;
    e->timestamp = timestamp;
}

dt_failure *dt_failure_vnew(dt_arena *arena, const char *type, const char *fmt, va_list ap)
{
    dt_failure *f = dt_arena_alloc(arena, sizeof *f);
    if (f == NULL)
        return NULL;
    f->error_type = dt_arena_strdup(arena, type);
    f->message = dt_arena_vprintf(arena, fmt, ap);
    return f;
}

dt_failure *dt_failure_new(dt_arena *arena, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_failure *f = dt_failure_vnew(arena, type, fmt, ap);
    va_end(ap);
    return f;
}

dt_failure *dt_failure_copy(dt_arena *arena, const dt_failure *f)
{
    if (f == NULL)
        return NULL;
    dt_failure *c = dt_arena_alloc(arena, sizeof *c);
    if (c == NULL)
        return NULL;
    c->error_type = dt_arena_strdup(arena, f->error_type);
    c->message = dt_arena_strdup(arena, f->message);
    c->stack_trace = dt_arena_strdup(arena, f->stack_trace);
    c->non_retriable = f->non_retriable;
    c->properties = dt_arena_strdup(arena, f->properties);
    if (f->inner) {
        c->inner = dt_failure_copy(arena, f->inner);
        if (c->inner == NULL)
            return NULL;
    }
    return c;
}

/* copy one string field, failing on allocation failure of a non-NULL source */
#define COPY_STR(field)                                                                     \
    do {                                                                                    \
        if (src->field && (dst->field = dt_arena_strdup(arena, src->field)) == NULL)        \
            return DT_ERR_NOMEM;                                                            \
    } while (0)

dt_status dt_event_copy(dt_arena *arena, const dt_event *src, dt_event *dst)
{
    *dst = *src;
    COPY_STR(name);
    COPY_STR(version);
    COPY_STR(input);
    COPY_STR(result);
    COPY_STR(instance_id);
    COPY_STR(execution_id);
    COPY_STR(parent_instance_id);
    COPY_STR(parent_execution_id);
    COPY_STR(parent_name);
    COPY_STR(trace_parent);
    COPY_STR(trace_state);
    COPY_STR(tags);
    COPY_STR(request_id);
    if (src->failure && (dst->failure = dt_failure_copy(arena, src->failure)) == NULL)
        return DT_ERR_NOMEM;
    if (src->n_lock_set > 0) {
        const char **l = dt_arena_alloc(arena, src->n_lock_set * sizeof *l);
        if (l == NULL)
            return DT_ERR_NOMEM;
        for (size_t i = 0; i < src->n_lock_set; i++)
            if ((l[i] = dt_arena_strdup(arena, src->lock_set[i])) == NULL)
                return DT_ERR_NOMEM;
        dst->lock_set = l;
    }
    return DT_OK;
}

dt_status dt_action_copy(dt_arena *arena, const dt_action *src, dt_action *dst)
{
    *dst = *src;
    COPY_STR(name);
    COPY_STR(version);
    COPY_STR(input);
    COPY_STR(instance_id);
    COPY_STR(result);
    COPY_STR(trace_parent);
    COPY_STR(trace_state);
    COPY_STR(tags);
    if (src->failure && (dst->failure = dt_failure_copy(arena, src->failure)) == NULL)
        return DT_ERR_NOMEM;
    if (src->n_carryover > 0) {
        dt_event *c = dt_arena_alloc(arena, src->n_carryover * sizeof *c);
        if (c == NULL)
            return DT_ERR_NOMEM;
        for (size_t i = 0; i < src->n_carryover; i++)
            if (dt_event_copy(arena, &src->carryover[i], &c[i]) != DT_OK)
                return DT_ERR_NOMEM;
        dst->carryover = c;
    }
    if (src->entity) {
        dt_event *e = dt_arena_alloc(arena, sizeof *e);
        if (e == NULL || dt_event_copy(arena, src->entity, e) != DT_OK)
            return DT_ERR_NOMEM;
        dst->entity = e;
    }
    return DT_OK;
}

dt_instance_state *dt_instance_state_copy(dt_arena *arena, const dt_instance_state *s)
{
    dt_instance_state *c = dt_arena_alloc(arena, sizeof *c);
    if (c == NULL)
        return NULL;
    *c = *s;
    const char **strs[] = {&c->instance_id, &c->execution_id, &c->name,
                           &c->version,     &c->input,        &c->output,
                           &c->custom_status, &c->parent_instance_id, &c->tags,
                           &c->span_id};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (*strs[i] && (*strs[i] = dt_arena_strdup(arena, *strs[i])) == NULL)
            return NULL;
    if (s->failure && (c->failure = dt_failure_copy(arena, s->failure)) == NULL)
        return NULL;
    return c;
}

/* action_name: the protocol's name of action type T, for failures that point at one. */
static const char *action_name(dt_action_type t)
{
    switch (t) {
    case DT_ACTION_SCHEDULE_TASK: return "scheduleTask";
    case DT_ACTION_CREATE_TIMER: return "createTimer";
    case DT_ACTION_SEND_EVENT: return "sendEvent";
    case DT_ACTION_CREATE_SUB_ORCHESTRATION: return "createSubOrchestration";
    case DT_ACTION_TERMINATE_ORCHESTRATION: return "terminateOrchestration";
    case DT_ACTION_SEND_ENTITY_MESSAGE: return "sendEntityMessage";
    case DT_ACTION_COMPLETE_ORCHESTRATION: return "completeOrchestration";
    default: return "action";
    }
}

/* check_entity_message: the request id and lock set of entity message E (dt_action_validate) */
static dt_status check_entity_message(const dt_event *e, const char **type, dt_error *err)
{
    *type = "InvalidEntityMessage";
    if (e->n_lock_set > DT_LOCK_SET_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "a critical section over %zu entities; at most %d (DT_LOCK_SET_MAX)",
                            e->n_lock_set, DT_LOCK_SET_MAX);
    if (e->request_id && e->request_id[0])
        return dt_name_validate(e->request_id, "entity request id", err);
    return DT_OK;
}

/* check_context: the tags and trace context an action or event carries (NULL: none), by
 * dt_tags_validate and dt_trace_validate; *TYPE the failure type to report. */
static dt_status check_context(const char *tags, const char *parent, const char *state,
                               const char **type, dt_error *err)
{
    *type = "InvalidTags";
    dt_status st = dt_tags_validate(tags, "tags", err);
    if (st != DT_OK)
        return st;
    *type = "InvalidTraceContext";
    return dt_trace_validate(parent, state, err);
}

/* check_named: NAME and VERSION of an activity (ORCH false) or orchestrator, by their rules. */
static dt_status check_named(const char *name, const char *version, bool orch, dt_error *err)
{
    dt_status st = dt_name_validate(name, orch ? "orchestrator name" : "activity name", err);
    return st == DT_OK ? dt_version_validate(version, orch ? "orchestrator version"
                                                           : "activity version", err)
                       : st;
}

/* check_fire_at: a timer's fire time T is within the years we keep. */
static dt_status check_fire_at(dt_time t, dt_error *err)
{
    if (t < DT_TIME_MIN || t > DT_TIME_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "timer fire time %lld us since the epoch "
                            "is outside years 1 to 9999", (long long)t);
    return DT_OK;
}

/* check_ids: INSTANCE (an instance or, when ENTITY_OK, an entity id) unless NULL, and EXEC (an
 * execution id: a name's rules) unless NULL or empty. */
static dt_status check_ids(const char *instance, bool entity_ok, const char *exec, dt_error *err)
{
    dt_status st = DT_OK;
    if (instance)
        st = entity_ok && instance[0] == '@' ? dt_entity_id_validate(instance, err)
                                             : dt_instance_id_validate(instance, err);
    if (st == DT_OK && exec && exec[0])
        st = dt_name_validate(exec, "execution id", err);
    return st;
}

/* check_history_event: E, an event of a worker's rewritten history (a rewind), keeps the
 * rules its own path kept: the hub acts on it again (its children are sent the rewind, its
 * parent is told the new run's end, its names are scheduled again). */
static dt_status check_history_event(const dt_event *e, dt_error *err)
{
    dt_status st = DT_OK;
    switch (e->type) {
    case DT_EVENT_EXECUTION_STARTED:
        st = check_named(e->name, e->version, true, err);
        if (st == DT_OK)
            st = check_ids(e->parent_instance_id, false, e->execution_id, err);
        if (st == DT_OK && e->parent_execution_id && e->parent_execution_id[0])
            st = dt_name_validate(e->parent_execution_id, "parent execution id", err);
        break;
    case DT_EVENT_TASK_SCHEDULED:
        st = check_named(e->name, e->version, false, err);
        break;
    case DT_EVENT_SUB_ORCHESTRATION_CREATED:
        st = check_named(e->name, e->version, true, err);
        if (st == DT_OK)
            st = dt_instance_id_validate(e->instance_id, err);
        break;
    case DT_EVENT_EVENT_SENT:
        st = dt_name_validate(e->name, "event name", err);
        if (st == DT_OK)
            st = check_ids(e->instance_id ? e->instance_id : "", true, NULL, err);
        break;
    case DT_EVENT_EVENT_RAISED:
        st = dt_name_validate(e->name, "event name", err);
        break;
    case DT_EVENT_TIMER_CREATED:
    case DT_EVENT_TIMER_FIRED:
        st = check_fire_at(e->fire_at, err);
        break;
    default:
        break;
    }
    const char *type;
    if (st == DT_OK && dt_event_is_entity_message(e->type))
        st = check_entity_message(e, &type, err);
    if (st == DT_OK)
        st = check_context(e->tags, e->trace_parent, e->trace_state, &type, err);
    return st;
}

/* check_rewind: every event of rewind action A's history (check_history_event). */
static dt_status check_rewind(const dt_action *a, dt_error *err)
{
    for (size_t i = 0; i < a->n_carryover; i++) {
        dt_error own;
        if (check_history_event(&a->carryover[i], &own) != DT_OK)
            return dt_error_set(err, own.code, "new history event %zu: %s", i, own.message);
    }
    return DT_OK;
}

/* check_action: dt_action_validate, without the action named in ERR. */
static dt_status check_action(const dt_action *a, const char **type, dt_error *err)
{
    dt_status st = DT_OK;
    *type = "InvalidName";
    switch (a->type) {
    case DT_ACTION_SCHEDULE_TASK:
        st = check_named(a->name, a->version, false, err);
        break;
    case DT_ACTION_CREATE_TIMER:
        st = check_fire_at(a->fire_at, err);
        *type = "InvalidTimer";
        break;
    case DT_ACTION_SEND_EVENT:
        st = dt_name_validate(a->name, "event name", err);
        /* an entity target is refused in apply_action, saying how to reach entities */
        if (st == DT_OK && !(a->instance_id && a->instance_id[0] == '@')) {
            *type = "InvalidInstanceId";
            st = dt_instance_id_validate(a->instance_id, err);
        }
        break;
    case DT_ACTION_CREATE_SUB_ORCHESTRATION:
        st = check_named(a->name, a->version, true, err);
        if (st == DT_OK) {
            *type = "InvalidInstanceId";
            st = dt_instance_id_validate(a->instance_id, err);
        }
        break;
    case DT_ACTION_TERMINATE_ORCHESTRATION:
        *type = "InvalidInstanceId";
        st = dt_instance_id_validate(a->instance_id, err);
        break;
    case DT_ACTION_SEND_ENTITY_MESSAGE:
        /* entity ids are checked as the message is built (entity_target) */
        if (a->entity && (a->entity->type == DT_EVENT_ENTITY_SIGNALED ||
                          a->entity->type == DT_EVENT_ENTITY_CALLED))
            st = dt_name_validate(a->entity->name, "entity operation name", err);
        if (st == DT_OK && a->entity)
            st = check_entity_message(a->entity, type, err);
        break;
    case DT_ACTION_COMPLETE_ORCHESTRATION:
        if (a->status == DT_STATUS_CONTINUED_AS_NEW)
            st = dt_version_validate(a->version, "orchestrator version", err);
        for (size_t i = 0; st == DT_OK && a->status == DT_STATUS_CONTINUED_AS_NEW &&
                           i < a->n_carryover; i++)
            if (a->carryover[i].type == DT_EVENT_EVENT_RAISED)
                st = dt_name_validate(a->carryover[i].name, "carried-over event name", err);
        break;
    case DT_ACTION_REWIND:
        *type = "InvalidRewind";
        st = check_rewind(a, err);
        break;
    default:
        break;
    }
    if (st == DT_OK)
        st = check_context(a->tags, a->trace_parent, a->trace_state, type, err);
    return st;
}

dt_status dt_action_validate(const dt_action *a, const char **type, dt_error *err)
{
    const char *t;
    dt_error own;
    dt_status st = check_action(a, &t, &own);
    if (type)
        *type = st == DT_OK ? NULL : t;
    if (st != DT_OK)
        dt_error_set(err, st, "%s action %d: %s", action_name(a->type), (int)a->id,
                     own.message);
    return st;
}
