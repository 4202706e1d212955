/* actions.c — the OrchestratorAction message (what an orchestrator episode asks for) to and
 * from dt_action, by the table in service.h. */
#include <assert.h>
#include <string.h>

#include "service.h"

/* dt_action_type values are the oneof's field numbers, as dt_event_type's are HistoryEvent's. */
#define SAME_ACTION(dt, pb)                                                                 \
    _Static_assert((int)DT_ACTION_##dt ==                                                   \
                       (int)DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_##pb,       \
                   #dt)
SAME_ACTION(SCHEDULE_TASK, SCHEDULE_TASK);
SAME_ACTION(CREATE_SUB_ORCHESTRATION, CREATE_SUB_ORCHESTRATION);
SAME_ACTION(CREATE_TIMER, CREATE_TIMER);
SAME_ACTION(SEND_EVENT, SEND_EVENT);
SAME_ACTION(COMPLETE_ORCHESTRATION, COMPLETE_ORCHESTRATION);
SAME_ACTION(TERMINATE_ORCHESTRATION, TERMINATE_ORCHESTRATION);
SAME_ACTION(REWIND, REWIND_ORCHESTRATION);

static void *b_schedule_task(pb_builder *b, const dt_action *act)
{
    Dtpb__ScheduleTaskAction *m = pb_b_msg(b, &dtpb__schedule_task_action__descriptor);
    if (m) {
        m->name = pb_b_str(act->name);
        m->version = pb_b_sv(b, act->version);
        m->input = pb_b_sv(b, act->input);
        m->parenttracecontext = pb_b_trace(b, act->trace_parent, act->trace_state);
        m->tags = (Dtpb__ScheduleTaskAction__TagsEntry **)pb_b_tags(
            b, &dtpb__schedule_task_action__tags_entry__descriptor, act->tags, &m->n_tags);
    }
    return m;
}

static void *b_create_sub(pb_builder *b, const dt_action *act)
{
    Dtpb__CreateSubOrchestrationAction *m =
        pb_b_msg(b, &dtpb__create_sub_orchestration_action__descriptor);
    if (m) {
        m->instanceid = pb_b_str(act->instance_id);
        m->name = pb_b_str(act->name);
        m->version = pb_b_sv(b, act->version);
        m->input = pb_b_sv(b, act->input);
        m->parenttracecontext = pb_b_trace(b, act->trace_parent, act->trace_state);
        m->tags = (Dtpb__CreateSubOrchestrationAction__TagsEntry **)pb_b_tags(
            b, &dtpb__create_sub_orchestration_action__tags_entry__descriptor, act->tags,
            &m->n_tags);
    }
    return m;
}

static void *b_create_timer(pb_builder *b, const dt_action *act)
{
    if (act->fire_at == 0) {
        b->status = DT_ERR_INVALID_ARG;   /* a timer without a time cannot be written */
        return NULL;
    }
    Dtpb__CreateTimerAction *m = pb_b_msg(b, &dtpb__create_timer_action__descriptor);
    if (m)
        m->fireat = pb_b_time(b, act->fire_at);
    return m;
}

static void *b_send_event(pb_builder *b, const dt_action *act)
{
    Dtpb__SendEventAction *m = pb_b_msg(b, &dtpb__send_event_action__descriptor);
    if (m) {
        m->instance = pb_b_instance(b, act->instance_id, NULL);
        m->name = pb_b_str(act->name);
        m->data = pb_b_sv(b, act->input);
    }
    return m;
}

static void *b_complete(pb_builder *b, const dt_action *act)
{
    Dtpb__CompleteOrchestrationAction *m =
        pb_b_msg(b, &dtpb__complete_orchestration_action__descriptor);
    if (m) {
        m->orchestrationstatus = pb_b_status(b, act->status);
        m->result = pb_b_sv(b, act->result);
        m->failuredetails = pb_b_failure(b, act->failure);
        m->newversion = pb_b_sv(b, act->version);
        m->carryoverevents = pb_b_events(b, act->carryover, act->n_carryover);
        m->n_carryoverevents = act->n_carryover;
        m->tags = (Dtpb__CompleteOrchestrationAction__TagsEntry **)pb_b_tags(
            b, &dtpb__complete_orchestration_action__tags_entry__descriptor, act->tags,
            &m->n_tags);
    }
    return m;
}

static void *b_terminate(pb_builder *b, const dt_action *act)
{
    Dtpb__TerminateOrchestrationAction *m =
        pb_b_msg(b, &dtpb__terminate_orchestration_action__descriptor);
    if (m) {
        m->instanceid = pb_b_str(act->instance_id);
        m->reason = pb_b_sv(b, act->input);
        m->recurse = act->recurse;
    }
    return m;
}

static void *b_rewind(pb_builder *b, const dt_action *act)
{
    Dtpb__RewindOrchestrationAction *m =
        pb_b_msg(b, &dtpb__rewind_orchestration_action__descriptor);
    if (m) {
        m->newhistory = pb_b_events(b, act->carryover, act->n_carryover);
        m->n_newhistory = act->n_carryover;
    }
    return m;
}

/* The members of SendEntityMessageAction, by number, and the history event each one is. */
static const dt_event_type entity_member_types[] = {
    [DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_OPERATION_SIGNALED] =
        DT_EVENT_ENTITY_SIGNALED,
    [DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_OPERATION_CALLED] =
        DT_EVENT_ENTITY_CALLED,
    [DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_LOCK_REQUESTED] =
        DT_EVENT_ENTITY_LOCK_REQUESTED,
    [DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_UNLOCK_SENT] =
        DT_EVENT_ENTITY_UNLOCK_SENT,
};

/* r_entity_message: the event a sendEntityMessage action sends, in the arena; NULL (R's
 * status set) when it is missing or not one of the four. */
static const dt_event *r_entity_message(pb_reader *r, const Dtpb__SendEntityMessageAction *x)
{
    unsigned k = (unsigned)x->entity_message_type_case;
    r->what = "sendEntityMessage";
    if (k >= sizeof entity_member_types / sizeof entity_member_types[0] ||
        entity_member_types[k] == DT_EVENT_NONE) {
        pb_r_fail(r, DT_ERR_INVALID_ARG, "sendEntityMessage has no message set");
        return NULL;
    }
    dt_event *e = dt_arena_alloc(r->arena, sizeof *e);
    if (e == NULL) {
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    dt_event_init(e, entity_member_types[k], 0);
    /* the union's members are all message pointers */
    pb_r_entity_body(r, e->type, x->entityoperationsignaled, e);
    return e;
}

static void *b_entity_message(pb_builder *b, const dt_action *act)
{
    Dtpb__SendEntityMessageAction *m = pb_b_msg(b, &dtpb__send_entity_message_action__descriptor);
    if (m == NULL || act->entity == NULL) {
        b->status = b->status != DT_OK ? b->status : DT_ERR_INVALID_ARG;
        return NULL;
    }
    switch (act->entity->type) {
    case DT_EVENT_ENTITY_SIGNALED:
        m->entity_message_type_case =
            DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_OPERATION_SIGNALED;
        break;
    case DT_EVENT_ENTITY_CALLED:
        m->entity_message_type_case =
            DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_OPERATION_CALLED;
        break;
    case DT_EVENT_ENTITY_LOCK_REQUESTED:
        m->entity_message_type_case =
            DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_LOCK_REQUESTED;
        break;
    case DT_EVENT_ENTITY_UNLOCK_SENT:
        m->entity_message_type_case =
            DTPB__SEND_ENTITY_MESSAGE_ACTION__ENTITY_MESSAGE_TYPE_ENTITY_UNLOCK_SENT;
        break;
    default:
        b->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
    m->entityoperationsignaled = pb_b_entity_body(b, act->entity);
    return m;
}

dt_status svc_action_to_msg(dt_arena *a, const dt_action *act, Dtpb__OrchestratorAction **out)
{
    if (a == NULL || act == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__OrchestratorAction *m = pb_b_msg(&b, &dtpb__orchestrator_action__descriptor);
    void *body = NULL;
    switch (act->type) {
    case DT_ACTION_SCHEDULE_TASK: body = b_schedule_task(&b, act); break;
    case DT_ACTION_CREATE_SUB_ORCHESTRATION: body = b_create_sub(&b, act); break;
    case DT_ACTION_CREATE_TIMER: body = b_create_timer(&b, act); break;
    case DT_ACTION_SEND_EVENT: body = b_send_event(&b, act); break;
    case DT_ACTION_COMPLETE_ORCHESTRATION: body = b_complete(&b, act); break;
    case DT_ACTION_TERMINATE_ORCHESTRATION: body = b_terminate(&b, act); break;
    case DT_ACTION_REWIND: body = b_rewind(&b, act); break;
    case DT_ACTION_SEND_ENTITY_MESSAGE: body = b_entity_message(&b, act); break;
    default: b.status = DT_ERR_INVALID_ARG; break;
    }
    if (b.status != DT_OK)
        return b.status;
    assert(m != NULL && body != NULL);
    m->id = act->id;
    m->orchestrator_action_type_case =
        (Dtpb__OrchestratorAction__OrchestratorActionTypeCase)act->type;
    /* the union's members are all message pointers; scheduletask stands for any of them */
    m->scheduletask = body;
    *out = m;
    return DT_OK;
}

/* r_action_unknown: explain an OrchestratorAction with no member we define. */
static void r_action_unknown(pb_reader *r, const Dtpb__OrchestratorAction *m)
{
    for (unsigned i = 0; i < m->base.n_unknown_fields; i++) {
        uint32_t tag = m->base.unknown_fields[i].tag;
        if (tag > 1) {
            pb_r_fail(r, DT_ERR_UNIMPLEMENTED,
                   "OrchestratorAction field %u is not an action this server knows (2..9)",
                   (unsigned)tag);
            return;
        }
    }
    pb_r_fail(r, DT_ERR_INVALID_ARG, "OrchestratorAction %d has no action set", (int)m->id);
}

dt_status svc_action_from_msg(dt_arena *a, const Dtpb__OrchestratorAction *m, dt_action *out,
                             dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_action_from_msg needs an arena, a message and an action to fill");
    pb_reader r = PB_READER(a, err, NULL);
    dt_action act;
    memset(&act, 0, sizeof act);
    act.id = m->id;
    act.type = (dt_action_type)m->orchestrator_action_type_case;
    /* as for HistoryEvent: a member set without its message only comes from a tree built by
     * hand; scheduletask reads any member of the union of message pointers */
    if (m->orchestrator_action_type_case !=
            DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE__NOT_SET &&
        m->scheduletask == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "OrchestratorAction member %d is set but holds no message",
                            (int)m->orchestrator_action_type_case);
    switch (m->orchestrator_action_type_case) {
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SCHEDULE_TASK: {
        const Dtpb__ScheduleTaskAction *x = m->scheduletask;
        r.what = "scheduleTask";
        act.name = pb_r_str(&r, x->name, "name");
        act.version = pb_r_sv(&r, x->version, "version");
        act.input = pb_r_sv(&r, x->input, "input");
        pb_r_trace(&r, x->parenttracecontext, &act.trace_parent, &act.trace_state,
                   "parentTraceContext");
        act.tags = pb_r_tags(&r, (void *const *)x->tags, x->n_tags, "tags");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_SUB_ORCHESTRATION: {
        const Dtpb__CreateSubOrchestrationAction *x = m->createsuborchestration;
        r.what = "createSubOrchestration";
        act.instance_id = pb_r_str(&r, x->instanceid, "instanceId");
        act.name = pb_r_str(&r, x->name, "name");
        act.version = pb_r_sv(&r, x->version, "version");
        act.input = pb_r_sv(&r, x->input, "input");
        pb_r_trace(&r, x->parenttracecontext, &act.trace_parent, &act.trace_state,
                   "parentTraceContext");
        act.tags = pb_r_tags(&r, (void *const *)x->tags, x->n_tags, "tags");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_TIMER: {
        const Dtpb__CreateTimerAction *x = m->createtimer;
        r.what = "createTimer";
        if (x->fireat == NULL)
            pb_r_fail(&r, DT_ERR_INVALID_ARG, "createTimer.fireAt is missing");
        act.fire_at = pb_r_time(&r, x->fireat, "fireAt");
        /* 1970-01-01T00:00:00Z reads as 0, which our records keep as "no time" (the builder
         * refuses it, the events would lose their fireAt): a timer due then is due at once,
         * as one a microsecond later is */
        if (act.fire_at == 0)
            act.fire_at = 1;
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_EVENT: {
        const Dtpb__SendEventAction *x = m->sendevent;
        r.what = "sendEvent";
        if (x->instance == NULL)
            pb_r_fail(&r, DT_ERR_INVALID_ARG, "sendEvent.instance is missing");
        else
            act.instance_id = pb_r_str(&r, x->instance->instanceid, "instance.instanceId");
        act.name = pb_r_str(&r, x->name, "name");
        act.input = pb_r_sv(&r, x->data, "data");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION: {
        const Dtpb__CompleteOrchestrationAction *x = m->completeorchestration;
        r.what = "completeOrchestration";
        act.status = pb_r_status(&r, (int)x->orchestrationstatus, "orchestrationStatus");
        act.result = pb_r_sv(&r, x->result, "result");
        act.failure = pb_r_failure(&r, x->failuredetails, "failureDetails");
        act.version = pb_r_sv(&r, x->newversion, "newVersion");
        act.carryover = pb_r_events(&r, x->carryoverevents, x->n_carryoverevents,
                                    "completeOrchestration.carryoverEvents");
        act.n_carryover = act.carryover ? x->n_carryoverevents : 0;
        act.tags = pb_r_tags(&r, (void *const *)x->tags, x->n_tags, "tags");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_TERMINATE_ORCHESTRATION: {
        const Dtpb__TerminateOrchestrationAction *x = m->terminateorchestration;
        r.what = "terminateOrchestration";
        act.instance_id = pb_r_str(&r, x->instanceid, "instanceId");
        act.input = pb_r_sv(&r, x->reason, "reason");
        act.recurse = x->recurse;
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_ENTITY_MESSAGE:
        act.entity = r_entity_message(&r, m->sendentitymessage);
        break;
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_REWIND_ORCHESTRATION: {
        const Dtpb__RewindOrchestrationAction *x = m->rewindorchestration;
        r.what = "rewindOrchestration";
        act.carryover = pb_r_events(&r, x->newhistory, x->n_newhistory,
                                    "rewindOrchestration.newHistory");
        act.n_carryover = act.carryover ? x->n_newhistory : 0;
        if (r.status == DT_OK && act.n_carryover == 0)
            pb_r_fail(&r, DT_ERR_INVALID_ARG, "rewindOrchestration.newHistory is empty");
        break;
    }
    default:
        r_action_unknown(&r, m);
        break;
    }
    if (r.status != DT_OK)
        return r.status;
    *out = act;
    return DT_OK;
}

