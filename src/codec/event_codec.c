/* event_codec.c — dt_event to and from the protocol's HistoryEvent: this file owns the
 * mapping between the flat dt_event record (see the table in core.h) and the generated
 * message, written with the builder and reader of fields.c. dt_event_encode/dt_event_decode,
 * the byte-level API the store uses, are thin wrappers: pack/unpack around the same mapping,
 * reading in store mode (a refusal means the stored bytes are corrupt). */
#include <stdlib.h>

#include "durabletask/codec.h"
#include "pb.h"

/* dt_event_type values are the oneof's field numbers; the codec relies on that to set and read
 * event_type_case without a lookup table. */
#define SAME_NUMBER(dt, pb) \
    _Static_assert((int)DT_EVENT_##dt == (int)DTPB__HISTORY_EVENT__EVENT_TYPE_##pb, #dt)
SAME_NUMBER(EXECUTION_STARTED, EXECUTION_STARTED);
SAME_NUMBER(EXECUTION_COMPLETED, EXECUTION_COMPLETED);
SAME_NUMBER(EXECUTION_TERMINATED, EXECUTION_TERMINATED);
SAME_NUMBER(TASK_SCHEDULED, TASK_SCHEDULED);
SAME_NUMBER(TASK_COMPLETED, TASK_COMPLETED);
SAME_NUMBER(TASK_FAILED, TASK_FAILED);
SAME_NUMBER(SUB_ORCHESTRATION_CREATED, SUB_ORCHESTRATION_INSTANCE_CREATED);
SAME_NUMBER(SUB_ORCHESTRATION_COMPLETED, SUB_ORCHESTRATION_INSTANCE_COMPLETED);
SAME_NUMBER(SUB_ORCHESTRATION_FAILED, SUB_ORCHESTRATION_INSTANCE_FAILED);
SAME_NUMBER(TIMER_CREATED, TIMER_CREATED);
SAME_NUMBER(TIMER_FIRED, TIMER_FIRED);
SAME_NUMBER(ORCHESTRATOR_STARTED, ORCHESTRATOR_STARTED);
SAME_NUMBER(ORCHESTRATOR_COMPLETED, ORCHESTRATOR_COMPLETED);
SAME_NUMBER(EVENT_SENT, EVENT_SENT);
SAME_NUMBER(EVENT_RAISED, EVENT_RAISED);
SAME_NUMBER(GENERIC, GENERIC_EVENT);
SAME_NUMBER(HISTORY_STATE, HISTORY_STATE);
SAME_NUMBER(CONTINUE_AS_NEW, CONTINUE_AS_NEW);
SAME_NUMBER(EXECUTION_SUSPENDED, EXECUTION_SUSPENDED);
SAME_NUMBER(EXECUTION_RESUMED, EXECUTION_RESUMED);
SAME_NUMBER(EXECUTION_REWOUND, EXECUTION_REWOUND);
SAME_NUMBER(ENTITY_SIGNALED, ENTITY_OPERATION_SIGNALED);
SAME_NUMBER(ENTITY_CALLED, ENTITY_OPERATION_CALLED);
SAME_NUMBER(ENTITY_COMPLETED, ENTITY_OPERATION_COMPLETED);
SAME_NUMBER(ENTITY_FAILED, ENTITY_OPERATION_FAILED);
SAME_NUMBER(ENTITY_LOCK_REQUESTED, ENTITY_LOCK_REQUESTED);
SAME_NUMBER(ENTITY_LOCK_GRANTED, ENTITY_LOCK_GRANTED);
SAME_NUMBER(ENTITY_UNLOCK_SENT, ENTITY_UNLOCK_SENT);

/* ==== encoding ============================================================================ */

/* enc_parent: present exactly when the event names a parent instance. */
static Dtpb__ParentInstanceInfo *enc_parent(pb_builder *b, const dt_event *e)
{
    if (e->parent_instance_id == NULL)
        return NULL;
    Dtpb__ParentInstanceInfo *m = pb_b_msg(b, &dtpb__parent_instance_info__descriptor);
    if (m) {
        m->taskscheduledid = e->parent_task_id;
        m->name = pb_b_sv(b, e->parent_name);
        m->orchestrationinstance = pb_b_instance(b, e->parent_instance_id, e->parent_execution_id);
    }
    return m;
}

static void *enc_execution_started(pb_builder *b, const dt_event *e)
{
    Dtpb__ExecutionStartedEvent *m = pb_b_msg(b, &dtpb__execution_started_event__descriptor);
    if (m == NULL)
        return NULL;
    m->name = pb_b_str(e->name);
    m->version = pb_b_sv(b, e->version);
    m->input = pb_b_sv(b, e->input);
    if (e->instance_id || e->execution_id)
        m->orchestrationinstance = pb_b_instance(b, e->instance_id, e->execution_id);
    m->parentinstance = enc_parent(b, e);
    m->scheduledstarttimestamp = pb_b_time(b, e->scheduled_start);
    m->parenttracecontext = pb_b_trace(b, e->trace_parent, e->trace_state);
    m->tags = (Dtpb__ExecutionStartedEvent__TagsEntry **)pb_b_tags(
        b, &dtpb__execution_started_event__tags_entry__descriptor, e->tags, &m->n_tags);
    return m;
}

static void *enc_execution_completed(pb_builder *b, const dt_event *e)
{
    Dtpb__ExecutionCompletedEvent *m = pb_b_msg(b, &dtpb__execution_completed_event__descriptor);
    if (m) {
        m->orchestrationstatus = pb_b_status(b, e->status);
        m->result = pb_b_sv(b, e->result);
        m->failuredetails = pb_b_failure(b, e->failure);
    }
    return m;
}

static void *enc_execution_terminated(pb_builder *b, const dt_event *e)
{
    Dtpb__ExecutionTerminatedEvent *m = pb_b_msg(b, &dtpb__execution_terminated_event__descriptor);
    if (m) {
        m->input = pb_b_sv(b, e->input);
        m->recurse = e->recurse;
    }
    return m;
}

static void *enc_task_scheduled(pb_builder *b, const dt_event *e)
{
    Dtpb__TaskScheduledEvent *m = pb_b_msg(b, &dtpb__task_scheduled_event__descriptor);
    if (m) {
        m->name = pb_b_str(e->name);
        m->version = pb_b_sv(b, e->version);
        m->input = pb_b_sv(b, e->input);
        m->parenttracecontext = pb_b_trace(b, e->trace_parent, e->trace_state);
        m->tags = (Dtpb__TaskScheduledEvent__TagsEntry **)pb_b_tags(
            b, &dtpb__task_scheduled_event__tags_entry__descriptor, e->tags, &m->n_tags);
    }
    return m;
}

static void *enc_task_completed(pb_builder *b, const dt_event *e)
{
    Dtpb__TaskCompletedEvent *m = pb_b_msg(b, &dtpb__task_completed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->result = pb_b_sv(b, e->result);
    }
    return m;
}

static void *enc_task_failed(pb_builder *b, const dt_event *e)
{
    Dtpb__TaskFailedEvent *m = pb_b_msg(b, &dtpb__task_failed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->failuredetails = pb_b_failure(b, e->failure);
    }
    return m;
}

static void *enc_sub_created(pb_builder *b, const dt_event *e)
{
    Dtpb__SubOrchestrationInstanceCreatedEvent *m =
        pb_b_msg(b, &dtpb__sub_orchestration_instance_created_event__descriptor);
    if (m) {
        m->instanceid = pb_b_str(e->instance_id);
        m->name = pb_b_str(e->name);
        m->version = pb_b_sv(b, e->version);
        m->input = pb_b_sv(b, e->input);
        m->parenttracecontext = pb_b_trace(b, e->trace_parent, e->trace_state);
        m->tags = (Dtpb__SubOrchestrationInstanceCreatedEvent__TagsEntry **)pb_b_tags(
            b, &dtpb__sub_orchestration_instance_created_event__tags_entry__descriptor, e->tags,
            &m->n_tags);
    }
    return m;
}

static void *enc_sub_completed(pb_builder *b, const dt_event *e)
{
    Dtpb__SubOrchestrationInstanceCompletedEvent *m =
        pb_b_msg(b, &dtpb__sub_orchestration_instance_completed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->result = pb_b_sv(b, e->result);
    }
    return m;
}

static void *enc_sub_failed(pb_builder *b, const dt_event *e)
{
    Dtpb__SubOrchestrationInstanceFailedEvent *m =
        pb_b_msg(b, &dtpb__sub_orchestration_instance_failed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->failuredetails = pb_b_failure(b, e->failure);
    }
    return m;
}

static void *enc_timer_created(pb_builder *b, const dt_event *e)
{
    Dtpb__TimerCreatedEvent *m = pb_b_msg(b, &dtpb__timer_created_event__descriptor);
    if (m)
        m->fireat = pb_b_time(b, e->fire_at);
    return m;
}

static void *enc_timer_fired(pb_builder *b, const dt_event *e)
{
    Dtpb__TimerFiredEvent *m = pb_b_msg(b, &dtpb__timer_fired_event__descriptor);
    if (m) {
        m->fireat = pb_b_time(b, e->fire_at);
        m->timerid = e->task_id;
    }
    return m;
}

static void *enc_event_sent(pb_builder *b, const dt_event *e)
{
    Dtpb__EventSentEvent *m = pb_b_msg(b, &dtpb__event_sent_event__descriptor);
    if (m) {
        m->instanceid = pb_b_str(e->instance_id);
        m->name = pb_b_str(e->name);
        m->input = pb_b_sv(b, e->input);
    }
    return m;
}

static void *enc_event_raised(pb_builder *b, const dt_event *e)
{
    Dtpb__EventRaisedEvent *m = pb_b_msg(b, &dtpb__event_raised_event__descriptor);
    if (m) {
        m->name = pb_b_str(e->name);
        m->input = pb_b_sv(b, e->input);
    }
    return m;
}

static void *enc_generic(pb_builder *b, const dt_event *e)
{
    Dtpb__GenericEvent *m = pb_b_msg(b, &dtpb__generic_event__descriptor);
    if (m)
        m->data = pb_b_sv(b, e->input);
    return m;
}

static void *enc_continue_as_new(pb_builder *b, const dt_event *e)
{
    Dtpb__ContinueAsNewEvent *m = pb_b_msg(b, &dtpb__continue_as_new_event__descriptor);
    if (m)
        m->input = pb_b_sv(b, e->input);
    return m;
}

static void *enc_suspended(pb_builder *b, const dt_event *e)
{
    Dtpb__ExecutionSuspendedEvent *m = pb_b_msg(b, &dtpb__execution_suspended_event__descriptor);
    if (m)
        m->input = pb_b_sv(b, e->input);
    return m;
}

static void *enc_resumed(pb_builder *b, const dt_event *e)
{
    Dtpb__ExecutionResumedEvent *m = pb_b_msg(b, &dtpb__execution_resumed_event__descriptor);
    if (m)
        m->input = pb_b_sv(b, e->input);
    return m;
}

/* ExecutionRewound: the reason, and for a sub-orchestration its parent's new execution and its
 * own instance id. */
static void *enc_rewound(pb_builder *b, const dt_event *e)
{
    Dtpb__ExecutionRewoundEvent *m = pb_b_msg(b, &dtpb__execution_rewound_event__descriptor);
    if (m) {
        m->reason = pb_b_sv(b, e->input);
        m->parentexecutionid = pb_b_sv(b, e->parent_execution_id);
        m->instanceid = pb_b_sv(b, e->instance_id);
        m->parenttracecontext = pb_b_trace(b, e->trace_parent, e->trace_state);
        m->parentinstance = enc_parent(b, e);   /* a parent's rewind: its task for the child */
    }
    return m;
}

/* enc_body: the oneof member for E's type, or NULL with status set. Every member of the union
 * is a message pointer, so one void * result serves them all. */
static void *enc_body(pb_builder *b, const dt_event *e)
{
    switch (e->type) {
    case DT_EVENT_EXECUTION_STARTED: return enc_execution_started(b, e);
    case DT_EVENT_EXECUTION_COMPLETED: return enc_execution_completed(b, e);
    case DT_EVENT_EXECUTION_TERMINATED: return enc_execution_terminated(b, e);
    case DT_EVENT_TASK_SCHEDULED: return enc_task_scheduled(b, e);
    case DT_EVENT_TASK_COMPLETED: return enc_task_completed(b, e);
    case DT_EVENT_TASK_FAILED: return enc_task_failed(b, e);
    case DT_EVENT_SUB_ORCHESTRATION_CREATED: return enc_sub_created(b, e);
    case DT_EVENT_SUB_ORCHESTRATION_COMPLETED: return enc_sub_completed(b, e);
    case DT_EVENT_SUB_ORCHESTRATION_FAILED: return enc_sub_failed(b, e);
    case DT_EVENT_TIMER_CREATED: return enc_timer_created(b, e);
    case DT_EVENT_TIMER_FIRED: return enc_timer_fired(b, e);
    case DT_EVENT_ORCHESTRATOR_STARTED:
        return pb_b_msg(b, &dtpb__orchestrator_started_event__descriptor);
    case DT_EVENT_ORCHESTRATOR_COMPLETED:
        return pb_b_msg(b, &dtpb__orchestrator_completed_event__descriptor);
    case DT_EVENT_EVENT_SENT: return enc_event_sent(b, e);
    case DT_EVENT_EVENT_RAISED: return enc_event_raised(b, e);
    case DT_EVENT_GENERIC: return enc_generic(b, e);
    case DT_EVENT_HISTORY_STATE: return pb_b_msg(b, &dtpb__history_state_event__descriptor);
    case DT_EVENT_CONTINUE_AS_NEW: return enc_continue_as_new(b, e);
    case DT_EVENT_EXECUTION_SUSPENDED: return enc_suspended(b, e);
    case DT_EVENT_EXECUTION_RESUMED: return enc_resumed(b, e);
    case DT_EVENT_EXECUTION_REWOUND: return enc_rewound(b, e);
    case DT_EVENT_ENTITY_SIGNALED:
    case DT_EVENT_ENTITY_CALLED:
    case DT_EVENT_ENTITY_COMPLETED:
    case DT_EVENT_ENTITY_FAILED:
    case DT_EVENT_ENTITY_LOCK_REQUESTED:
    case DT_EVENT_ENTITY_LOCK_GRANTED:
    case DT_EVENT_ENTITY_UNLOCK_SENT: return pb_b_entity_body(b, e);
    case DT_EVENT_NONE: break;
    }
    b->status = DT_ERR_INVALID_ARG;
    return NULL;
}

Dtpb__HistoryEvent *pb_b_event(pb_builder *b, const dt_event *e)
{
    Dtpb__HistoryEvent *h = pb_b_msg(b, &dtpb__history_event__descriptor);
    if (h == NULL)
        return NULL;
    h->eventid = e->event_id;
    h->timestamp = pb_b_time(b, e->timestamp);
    void *body = enc_body(b, e);
    if (b->status != DT_OK)
        return NULL;
    h->event_type_case = (Dtpb__HistoryEvent__EventTypeCase)e->type;
    /* the union's members are all message pointers; executionstarted stands for any of them */
    h->executionstarted = body;
    return h;
}

/* dt_event_encode: pb_b_event in a scratch arena, packed into malloc'd bytes. */
dt_status dt_event_encode(const dt_event *event, uint8_t **out, size_t *out_len)
{
    if (event == NULL || out == NULL || out_len == NULL)
        return DT_ERR_INVALID_ARG;
    dt_arena *arena = dt_arena_new();
    if (arena == NULL)
        return DT_ERR_NOMEM;
    pb_builder b = PB_BUILDER(arena);
    Dtpb__HistoryEvent *h = pb_b_event(&b, event);
    if (h) {
        size_t len = dtpb__history_event__get_packed_size(h);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL) {
            b.status = DT_ERR_NOMEM;
        } else {
            dtpb__history_event__pack(h, buf);
            *out = buf;
            *out_len = len;
        }
    }
    dt_arena_free(arena);
    return b.status;
}

/* ==== decoding ============================================================================ */

/* dec_parent: a present parentInstance always yields a non-NULL parent_instance_id, since
 * that is how dt_event says "this is a sub-orchestration". */
static void dec_parent(pb_reader *r, const Dtpb__ParentInstanceInfo *m, dt_event *e)
{
    if (m == NULL)
        return;
    const Dtpb__OrchestrationInstance *inst = m->orchestrationinstance;
    e->parent_task_id = m->taskscheduledid;
    e->parent_name = pb_r_sv(r, m->name, "parentInstance.name");
    e->parent_instance_id = pb_r_str(r, inst ? inst->instanceid : NULL,
                                    "parentInstance.orchestrationInstance.instanceId");
    e->parent_execution_id =
        inst ? pb_r_sv(r, inst->executionid, "parentInstance.orchestrationInstance.executionId")
             : NULL;
}

static void dec_execution_started(pb_reader *r, const Dtpb__ExecutionStartedEvent *m, dt_event *e)
{
    e->name = pb_r_str(r, m->name, "name");
    e->version = pb_r_sv(r, m->version, "version");
    e->input = pb_r_sv(r, m->input, "input");
    if (m->orchestrationinstance) {
        e->instance_id = pb_r_str(r, m->orchestrationinstance->instanceid,
                                 "orchestrationInstance.instanceId");
        e->execution_id = pb_r_sv(r, m->orchestrationinstance->executionid,
                                 "orchestrationInstance.executionId");
    }
    dec_parent(r, m->parentinstance, e);
    e->scheduled_start = pb_r_time(r, m->scheduledstarttimestamp, "scheduledStartTimestamp");
    pb_r_trace(r, m->parenttracecontext, &e->trace_parent, &e->trace_state,
               "parentTraceContext");
    e->tags = pb_r_tags(r, (void *const *)m->tags, m->n_tags, "tags");
}

static void dec_execution_completed(pb_reader *r, const Dtpb__ExecutionCompletedEvent *m,
                                    dt_event *e)
{
    e->status = pb_r_status(r, (int)m->orchestrationstatus, "orchestrationStatus");
    e->result = pb_r_sv(r, m->result, "result");
    e->failure = pb_r_failure(r, m->failuredetails, "failureDetails");
}

static void dec_execution_terminated(pb_reader *r, const Dtpb__ExecutionTerminatedEvent *m,
                                     dt_event *e)
{
    e->input = pb_r_sv(r, m->input, "input");
    e->recurse = m->recurse;
}

static void dec_task_scheduled(pb_reader *r, const Dtpb__TaskScheduledEvent *m, dt_event *e)
{
    e->name = pb_r_str(r, m->name, "name");
    e->version = pb_r_sv(r, m->version, "version");
    e->input = pb_r_sv(r, m->input, "input");
    pb_r_trace(r, m->parenttracecontext, &e->trace_parent, &e->trace_state,
               "parentTraceContext");
    e->tags = pb_r_tags(r, (void *const *)m->tags, m->n_tags, "tags");
}

static void dec_task_completed(pb_reader *r, const Dtpb__TaskCompletedEvent *m, dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->result = pb_r_sv(r, m->result, "result");
}

static void dec_task_failed(pb_reader *r, const Dtpb__TaskFailedEvent *m, dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->failure = pb_r_failure(r, m->failuredetails, "failureDetails");
}

static void dec_sub_created(pb_reader *r, const Dtpb__SubOrchestrationInstanceCreatedEvent *m,
                            dt_event *e)
{
    e->instance_id = pb_r_str(r, m->instanceid, "instanceId");
    e->name = pb_r_str(r, m->name, "name");
    e->version = pb_r_sv(r, m->version, "version");
    e->input = pb_r_sv(r, m->input, "input");
    pb_r_trace(r, m->parenttracecontext, &e->trace_parent, &e->trace_state,
               "parentTraceContext");
    e->tags = pb_r_tags(r, (void *const *)m->tags, m->n_tags, "tags");
}

static void dec_sub_completed(pb_reader *r, const Dtpb__SubOrchestrationInstanceCompletedEvent *m,
                              dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->result = pb_r_sv(r, m->result, "result");
}

static void dec_sub_failed(pb_reader *r, const Dtpb__SubOrchestrationInstanceFailedEvent *m,
                           dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->failure = pb_r_failure(r, m->failuredetails, "failureDetails");
}

static void dec_event_sent(pb_reader *r, const Dtpb__EventSentEvent *m, dt_event *e)
{
    e->instance_id = pb_r_str(r, m->instanceid, "instanceId");
    e->name = pb_r_str(r, m->name, "name");
    e->input = pb_r_sv(r, m->input, "input");
}

static void dec_event_raised(pb_reader *r, const Dtpb__EventRaisedEvent *m, dt_event *e)
{
    e->name = pb_r_str(r, m->name, "name");
    e->input = pb_r_sv(r, m->input, "input");
}

/* dec_unknown_type: explain a HistoryEvent whose eventType is none of 3..30: protobuf-c keeps
 * members newer than our .proto as unknown fields. */
static void dec_unknown_type(pb_reader *r, const Dtpb__HistoryEvent *h)
{
    if (h->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
            &dtpb__history_event__descriptor, (unsigned)h->event_type_case);
        pb_r_unsupported(r, "HistoryEvent field %d (%s) is not an event type this codec "
                           "supports (3..30)",
                        (int)h->event_type_case, f ? f->name : "?");
        return;
    }
    for (unsigned i = 0; i < h->base.n_unknown_fields; i++) {
        uint32_t tag = h->base.unknown_fields[i].tag;
        if (tag > 2) {
            pb_r_unsupported(r, "HistoryEvent field %u is not an event type this codec knows "
                               "(3..30)",
                            (unsigned)tag);
            return;
        }
    }
    pb_r_bad(r, "HistoryEvent has no event type set");
}

/* dec_body: the oneof member into E, by type. */
static void dec_body(pb_reader *r, const Dtpb__HistoryEvent *h, dt_event *e)
{
    /* unpacking never leaves a member set without its message; a tree built by hand might.
     * The union's members are all message pointers, so executionstarted reads any of them. */
    if (h->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET &&
        h->executionstarted == NULL) {
        pb_r_bad(r, "HistoryEvent member %d is set but holds no message", (int)h->event_type_case);
        return;
    }
    switch (h->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED:
        dec_execution_started(r, h->executionstarted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED:
        dec_execution_completed(r, h->executioncompleted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED:
        dec_execution_terminated(r, h->executionterminated, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
        dec_task_scheduled(r, h->taskscheduled, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
        dec_task_completed(r, h->taskcompleted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
        dec_task_failed(r, h->taskfailed, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
        dec_sub_created(r, h->suborchestrationinstancecreated, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
        dec_sub_completed(r, h->suborchestrationinstancecompleted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
        dec_sub_failed(r, h->suborchestrationinstancefailed, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
        e->fire_at = pb_r_time(r, h->timercreated->fireat, "fireAt"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
        e->fire_at = pb_r_time(r, h->timerfired->fireat, "fireAt");
        e->task_id = h->timerfired->timerid;
        break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
        dec_event_sent(r, h->eventsent, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED:
        dec_event_raised(r, h->eventraised, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_GENERIC_EVENT:
        e->input = pb_r_sv(r, h->genericevent->data, "data"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_CONTINUE_AS_NEW:
        e->input = pb_r_sv(r, h->continueasnew->input, "input"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED:
        e->input = pb_r_sv(r, h->executionsuspended->input, "input"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED:
        e->input = pb_r_sv(r, h->executionresumed->input, "input"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_REWOUND:
        dec_parent(r, h->executionrewound->parentinstance, e);
        e->input = pb_r_sv(r, h->executionrewound->reason, "reason");
        e->parent_execution_id = pb_r_sv(r, h->executionrewound->parentexecutionid,
                                         "parentExecutionId");
        e->instance_id = pb_r_sv(r, h->executionrewound->instanceid, "instanceId");
        pb_r_trace(r, h->executionrewound->parenttracecontext, &e->trace_parent,
                   &e->trace_state, "parentTraceContext");
        break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_SIGNALED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_CALLED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_OPERATION_FAILED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_REQUESTED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_LOCK_GRANTED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ENTITY_UNLOCK_SENT:
        /* the union's members are all message pointers: any one reads the set member */
        pb_r_entity_body(r, (dt_event_type)h->event_type_case, h->executionstarted, e);
        break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_HISTORY_STATE:
        break;   /* no fields we carry */
    default:
        dec_unknown_type(r, h);
        break;
    }
}

void pb_r_event(pb_reader *r, const Dtpb__HistoryEvent *h, dt_event *out)
{
    if (r->status != DT_OK)
        return;
    if (h == NULL) {
        pb_r_bad(r, "HistoryEvent is missing");
        return;
    }
    dt_event e;
    dt_event_init(&e, (dt_event_type)h->event_type_case, 0);
    /* field names in messages read "TimerCreated.fireAt" */
    const char *what = r->what;
    r->what = dt_event_type_name(e.type);
    e.event_id = h->eventid;
    e.timestamp = pb_r_time(r, h->timestamp, "timestamp");
    dec_body(r, h, &e);
    r->what = what;
    if (r->status == DT_OK)
        *out = e;
}

/* dt_event_decode: unpack with protobuf-c's own allocator, read in store mode (see pb.h),
 * and free the unpacked tree before returning, whatever happened. */
dt_status dt_event_decode(const uint8_t *buf, size_t len, dt_arena *arena, dt_event *out,
                          dt_error *err)
{
    if ((buf == NULL && len > 0) || arena == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "dt_event_decode needs a buffer, an arena and an event to fill");
    Dtpb__HistoryEvent *h = dtpb__history_event__unpack(NULL, len, buf);
    if (h == NULL)
        return dt_error_set(err, DT_ERR_CORRUPT,
                            "%zu bytes do not parse as a protobuf HistoryEvent", len);
    pb_reader r = {arena, err, DT_OK, NULL, false};
    pb_r_event(&r, h, out);
    dtpb__history_event__free_unpacked(h, NULL);
    return r.status;
}
