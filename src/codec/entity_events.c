/* entity_events.c — the seven entity events (HistoryEvent members 23..29) to and from dt_event
 * (see the table in core.h). The same messages travel as an orchestration's
 * SendEntityMessageAction, so the action mapping (src/service/actions.c) reads them with
 * pb_r_entity_body too. */
#include "pb.h"

static void *enc_signaled(pb_builder *b, const dt_event *e)
{
    Dtpb__EntityOperationSignaledEvent *m =
        pb_b_msg(b, &dtpb__entity_operation_signaled_event__descriptor);
    if (m) {
        m->requestid = pb_b_str(e->request_id);
        m->operation = pb_b_str(e->name);
        m->scheduledtime = pb_b_time(b, e->fire_at);
        m->input = pb_b_sv(b, e->input);
        m->targetinstanceid = pb_b_sv(b, e->instance_id);
    }
    return m;
}

static void *enc_called(pb_builder *b, const dt_event *e)
{
    Dtpb__EntityOperationCalledEvent *m =
        pb_b_msg(b, &dtpb__entity_operation_called_event__descriptor);
    if (m) {
        m->requestid = pb_b_str(e->request_id);
        m->operation = pb_b_str(e->name);
        m->scheduledtime = pb_b_time(b, e->fire_at);
        m->input = pb_b_sv(b, e->input);
        m->parentinstanceid = pb_b_sv(b, e->parent_instance_id);
        m->parentexecutionid = pb_b_sv(b, e->parent_execution_id);
        m->targetinstanceid = pb_b_sv(b, e->instance_id);
    }
    return m;
}

static void *enc_lock_requested(pb_builder *b, const dt_event *e)
{
    Dtpb__EntityLockRequestedEvent *m =
        pb_b_msg(b, &dtpb__entity_lock_requested_event__descriptor);
    if (m == NULL)
        return NULL;
    m->criticalsectionid = pb_b_str(e->request_id);
    m->lockset = pb_b_array(b, e->n_lock_set, sizeof *m->lockset);
    if (e->n_lock_set > 0 && m->lockset == NULL)
        return NULL;
    for (size_t i = 0; i < e->n_lock_set; i++)
        m->lockset[i] = pb_b_str(e->lock_set[i]);
    m->n_lockset = e->n_lock_set;
    m->position = e->position;
    m->parentinstanceid = pb_b_sv(b, e->parent_instance_id);
    return m;
}

void *pb_b_entity_body(pb_builder *b, const dt_event *e)
{
    switch (e->type) {
    case DT_EVENT_ENTITY_SIGNALED: return enc_signaled(b, e);
    case DT_EVENT_ENTITY_CALLED: return enc_called(b, e);
    case DT_EVENT_ENTITY_LOCK_REQUESTED: return enc_lock_requested(b, e);
    case DT_EVENT_ENTITY_COMPLETED: {
        Dtpb__EntityOperationCompletedEvent *m =
            pb_b_msg(b, &dtpb__entity_operation_completed_event__descriptor);
        if (m) {
            m->requestid = pb_b_str(e->request_id);
            m->output = pb_b_sv(b, e->result);
        }
        return m;
    }
    case DT_EVENT_ENTITY_FAILED: {
        Dtpb__EntityOperationFailedEvent *m =
            pb_b_msg(b, &dtpb__entity_operation_failed_event__descriptor);
        if (m) {
            m->requestid = pb_b_str(e->request_id);
            m->failuredetails = pb_b_failure(b, e->failure);
        }
        return m;
    }
    case DT_EVENT_ENTITY_LOCK_GRANTED: {
        Dtpb__EntityLockGrantedEvent *m =
            pb_b_msg(b, &dtpb__entity_lock_granted_event__descriptor);
        if (m)
            m->criticalsectionid = pb_b_str(e->request_id);
        return m;
    }
    case DT_EVENT_ENTITY_UNLOCK_SENT: {
        Dtpb__EntityUnlockSentEvent *m = pb_b_msg(b, &dtpb__entity_unlock_sent_event__descriptor);
        if (m) {
            m->criticalsectionid = pb_b_str(e->request_id);
            m->parentinstanceid = pb_b_sv(b, e->parent_instance_id);
            m->targetinstanceid = pb_b_sv(b, e->instance_id);
        }
        return m;
    }
    default:
        if (b->status == DT_OK)
            b->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
}

static void dec_lock_requested(pb_reader *r, const Dtpb__EntityLockRequestedEvent *m, dt_event *e)
{
    e->request_id = pb_r_str(r, m->criticalsectionid, "criticalSectionId");
    e->parent_instance_id = pb_r_sv(r, m->parentinstanceid, "parentInstanceId");
    e->position = m->position;
    if (m->n_lockset == 0)
        return;
    const char **set = dt_arena_alloc(r->arena, m->n_lockset * sizeof *set);
    if (set == NULL) {
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory");
        return;
    }
    for (size_t i = 0; i < m->n_lockset; i++)
        set[i] = pb_r_str(r, m->lockset[i], "lockSet");
    e->lock_set = set;
    e->n_lock_set = m->n_lockset;
}

void pb_r_entity_body(pb_reader *r, dt_event_type type, const void *msg, dt_event *e)
{
    if (r->status != DT_OK)
        return;
    if (msg == NULL) {
        pb_r_bad(r, "%s is set but holds no message", dt_event_type_name(type));
        return;
    }
    switch (type) {
    case DT_EVENT_ENTITY_SIGNALED: {
        const Dtpb__EntityOperationSignaledEvent *m = msg;
        e->request_id = pb_r_str(r, m->requestid, "requestId");
        e->name = pb_r_str(r, m->operation, "operation");
        e->fire_at = pb_r_time(r, m->scheduledtime, "scheduledTime");
        e->input = pb_r_sv(r, m->input, "input");
        e->instance_id = pb_r_sv(r, m->targetinstanceid, "targetInstanceId");
        break;
    }
    case DT_EVENT_ENTITY_CALLED: {
        const Dtpb__EntityOperationCalledEvent *m = msg;
        e->request_id = pb_r_str(r, m->requestid, "requestId");
        e->name = pb_r_str(r, m->operation, "operation");
        e->fire_at = pb_r_time(r, m->scheduledtime, "scheduledTime");
        e->input = pb_r_sv(r, m->input, "input");
        e->parent_instance_id = pb_r_sv(r, m->parentinstanceid, "parentInstanceId");
        e->parent_execution_id = pb_r_sv(r, m->parentexecutionid, "parentExecutionId");
        e->instance_id = pb_r_sv(r, m->targetinstanceid, "targetInstanceId");
        break;
    }
    case DT_EVENT_ENTITY_COMPLETED: {
        const Dtpb__EntityOperationCompletedEvent *m = msg;
        e->request_id = pb_r_str(r, m->requestid, "requestId");
        e->result = pb_r_sv(r, m->output, "output");
        break;
    }
    case DT_EVENT_ENTITY_FAILED: {
        const Dtpb__EntityOperationFailedEvent *m = msg;
        e->request_id = pb_r_str(r, m->requestid, "requestId");
        e->failure = pb_r_failure(r, m->failuredetails, "failureDetails");
        break;
    }
    case DT_EVENT_ENTITY_LOCK_REQUESTED:
        dec_lock_requested(r, msg, e);
        break;
    case DT_EVENT_ENTITY_LOCK_GRANTED:
        e->request_id = pb_r_str(r, ((const Dtpb__EntityLockGrantedEvent *)msg)->criticalsectionid,
                                 "criticalSectionId");
        break;
    case DT_EVENT_ENTITY_UNLOCK_SENT: {
        const Dtpb__EntityUnlockSentEvent *m = msg;
        e->request_id = pb_r_str(r, m->criticalsectionid, "criticalSectionId");
        e->parent_instance_id = pb_r_sv(r, m->parentinstanceid, "parentInstanceId");
        e->instance_id = pb_r_sv(r, m->targetinstanceid, "targetInstanceId");
        break;
    }
    default:
        pb_r_bad(r, "event type %d is not an entity event", (int)type);
        break;
    }
}
