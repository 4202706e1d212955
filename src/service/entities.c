/* entities.c — durable entities on the wire: the entity work item a worker gets (EntityRequest,
 * the protocol's newer form, with the operations as history events), the EntityBatchResult it
 * sends back, entity work item filters, and the client's entity messages (EntityMetadata,
 * EntityQuery). */
#include <ctype.h>
#include <string.h>

#include "service.h"

dt_status svc_entity_request(dt_arena *a, const dt_entity_request *req, Dtpb__EntityRequest **out)
{
    if (a == NULL || req == NULL || req->entity_id == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__EntityRequest *m = pb_b_msg(&b, &dtpb__entity_request__descriptor);
    Dtpb__HistoryEvent **ops = pb_b_events(&b, req->operations, req->n_operations);
    Dtpb__StringValue *state = pb_b_sv(&b, req->state);
    if (b.status != DT_OK)
        return b.status;
    m->instanceid = pb_b_str(req->entity_id);
    m->executionid = pb_b_str("");   /* entities have no executions; no worker reads it */
    m->entitystate = state;
    m->operationrequests = ops;
    m->n_operationrequests = req->n_operations;
    *out = m;
    return DT_OK;
}

static void r_op_result(pb_reader *r, const Dtpb__OperationResult *m, dt_entity_op_result *out)
{
    memset(out, 0, sizeof *out);
    if (m == NULL || m->success == NULL) {   /* the union's members are message pointers */
        pb_r_bad(r, "an operation result has neither success nor failure");
        return;
    }
    if (m->result_type_case == DTPB__OPERATION_RESULT__RESULT_TYPE_SUCCESS)
        out->result = pb_r_sv(r, m->success->result, "results.success.result");
    else if (m->result_type_case == DTPB__OPERATION_RESULT__RESULT_TYPE_FAILURE) {
        out->failure = pb_r_failure(r, m->failure->failuredetails, "results.failure");
        if (r->status == DT_OK && out->failure == NULL)
            pb_r_bad(r, "an operation's failure has no failureDetails");
    } else
        pb_r_bad(r, "an operation result has neither success nor failure");
}

static void r_op_action(pb_reader *r, const Dtpb__OperationAction *m, dt_entity_action *out)
{
    memset(out, 0, sizeof *out);
    if (m == NULL || m->sendsignal == NULL) {
        pb_r_bad(r, "an operation action has neither sendSignal nor startNewOrchestration");
        return;
    }
    if (m->operation_action_type_case == DTPB__OPERATION_ACTION__OPERATION_ACTION_TYPE_SEND_SIGNAL) {
        const Dtpb__SendSignalAction *x = m->sendsignal;
        out->type = DT_ENTITY_SIGNAL;
        out->instance_id = pb_r_str(r, x->instanceid, "actions.sendSignal.instanceId");
        out->name = pb_r_str(r, x->name, "actions.sendSignal.name");
        out->input = pb_r_sv(r, x->input, "actions.sendSignal.input");
        out->at = pb_r_time(r, x->scheduledtime, "actions.sendSignal.scheduledTime");
    } else if (m->operation_action_type_case ==
               DTPB__OPERATION_ACTION__OPERATION_ACTION_TYPE_START_NEW_ORCHESTRATION) {
        const Dtpb__StartNewOrchestrationAction *x = m->startneworchestration;
        out->type = DT_ENTITY_START_ORCHESTRATION;
        out->instance_id = pb_r_str(r, x->instanceid, "actions.startNewOrchestration.instanceId");
        out->name = pb_r_str(r, x->name, "actions.startNewOrchestration.name");
        out->version = pb_r_sv(r, x->version, "actions.startNewOrchestration.version");
        out->input = pb_r_sv(r, x->input, "actions.startNewOrchestration.input");
        out->at = pb_r_time(r, x->scheduledtime, "actions.startNewOrchestration.scheduledTime");
    } else {
        pb_r_bad(r, "an operation action has neither sendSignal nor startNewOrchestration");
    }
}

dt_status svc_entity_result_from_msg(dt_arena *a, const Dtpb__EntityBatchResult *m,
                                     dt_entity_result *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_entity_result_from_msg needs an arena, a message and a result");
    pb_reader r = PB_READER(a, err, "EntityBatchResult");
    dt_entity_result res = {0};
    dt_entity_op_result *results = dt_arena_alloc(a, (m->n_results + 1) * sizeof *results);
    dt_entity_action *actions = dt_arena_alloc(a, (m->n_actions + 1) * sizeof *actions);
    if (results == NULL || actions == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_results; i++)
        r_op_result(&r, m->results[i], &results[i]);
    for (size_t i = 0; i < m->n_actions; i++)
        r_op_action(&r, m->actions[i], &actions[i]);
    res.results = results;
    res.n_results = m->n_results;
    res.actions = actions;
    res.n_actions = m->n_actions;
    res.state = pb_r_sv(&r, m->entitystate, "entityState");
    res.failure = pb_r_failure(&r, m->failuredetails, "failureDetails");
    if (r.status != DT_OK)
        return r.status;
    *out = res;
    return DT_OK;
}

dt_status svc_entity_filter_from_msg(dt_arena *a, const Dtpb__WorkItemFilters *m,
                                     dt_name_filter *out, dt_error *err)
{
    memset(out, 0, sizeof *out);
    if (m == NULL || m->n_entities == 0)
        return DT_OK;
    if (m->n_entities > DT_FILTER_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "WorkItemFilters.entities: %zu names, over the %d a filter may list",
                            m->n_entities, DT_FILTER_MAX);
    const char **names = dt_arena_alloc(a, m->n_entities * sizeof *names);
    if (names == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    pb_reader r = PB_READER(a, err, "WorkItemFilters.entities");
    for (size_t i = 0; i < m->n_entities; i++) {
        const char *n = m->entities[i] ? pb_r_str(&r, m->entities[i]->name, "name") : "";
        char *low = n ? dt_arena_strdup(a, n) : NULL;
        if (r.status != DT_OK)
            return r.status;
        if (low == NULL)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        for (char *c = low; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        names[i] = low;
    }
    out->names = names;
    out->n = m->n_entities;
    return DT_OK;
}

dt_status svc_entity_metadata(dt_arena *a, const dt_entity_state *s, bool with_state,
                              Dtpb__EntityMetadata **out)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__EntityMetadata *m = pb_b_msg(&b, &dtpb__entity_metadata__descriptor);
    if (m == NULL)
        return b.status;
    m->instanceid = pb_b_str(s->entity_id);
    /* always present: the .NET client reads it unconditionally */
    m->lastmodifiedtime = pb_b_time(&b, s->last_modified > 0 ? s->last_modified : 1);
    m->backlogqueuesize = s->backlog;
    m->lockedby = pb_b_sv(&b, s->locked_by);
    m->serializedstate = with_state ? pb_b_sv(&b, s->state) : NULL;
    if (b.status != DT_OK)
        return b.status;
    *out = m;
    return DT_OK;
}

dt_status svc_entity_from_metadata(dt_arena *a, const Dtpb__EntityMetadata *m,
                                   dt_entity_state *out, dt_error *err)
{
    memset(out, 0, sizeof *out);
    if (m == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "no entity metadata");
    pb_reader r = PB_READER(a, err, "EntityMetadata");
    out->entity_id = pb_r_str(&r, m->instanceid, "instanceId");
    out->last_modified = pb_r_time(&r, m->lastmodifiedtime, "lastModifiedTime");
    out->backlog = m->backlogqueuesize;
    out->locked_by = pb_r_sv(&r, m->lockedby, "lockedBy");
    out->state = pb_r_sv(&r, m->serializedstate, "serializedState");
    out->has_state = out->state != NULL;
    return r.status;
}

dt_status svc_entity_query_from_msg(dt_arena *a, const Dtpb__EntityQuery *m, dt_entity_query *out,
                                    dt_error *err)
{
    memset(out, 0, sizeof *out);
    if (m == NULL)
        return DT_OK;
    pb_reader r = PB_READER(a, err, "query");
    out->id_prefix = pb_r_sv(&r, m->instanceidstartswith, "instanceIdStartsWith");
    out->modified_from = pb_r_bound(&r, m->lastmodifiedfrom, "lastModifiedFrom");
    out->modified_to = pb_r_bound(&r, m->lastmodifiedto, "lastModifiedTo");
    out->with_state = m->includestate;
    out->include_transient = m->includetransient;
    if (m->pagesize && m->pagesize->value > 0)
        out->page_size = m->pagesize->value > DT_QUERY_PAGE_MAX ? DT_QUERY_PAGE_MAX
                                                                 : (size_t)m->pagesize->value;
    out->continuation = pb_r_sv(&r, m->continuationtoken, "continuationToken");
    return r.status;
}

dt_status svc_entity_filter(dt_arena *a, const dt_name_filter *entities, Dtpb__WorkItemFilters *m)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__EntityFilter **e = pb_b_array(&b, entities->n, sizeof *e);
    for (size_t i = 0; i < entities->n && b.status == DT_OK; i++)
        if ((e[i] = pb_b_msg(&b, &dtpb__entity_filter__descriptor)) != NULL)
            e[i]->name = pb_b_str(entities->names[i]);
    if (b.status != DT_OK)
        return b.status;
    m->entities = e;
    m->n_entities = entities->n;
    return DT_OK;
}

dt_status svc_entity_request_from_msg(dt_arena *a, const Dtpb__EntityRequest *m,
                                      dt_entity_request *out, dt_error *err)
{
    pb_reader r = PB_READER(a, err, "EntityRequest");
    dt_entity_request req = {0};
    req.entity_id = pb_r_str(&r, m->instanceid, "instanceId");
    req.state = pb_r_sv(&r, m->entitystate, "entityState");
    req.operations = pb_r_events(&r, m->operationrequests, m->n_operationrequests,
                                 "operationRequests");
    req.n_operations = req.operations ? m->n_operationrequests : 0;
    if (r.status == DT_OK && dt_entity_id_validate(req.entity_id, err) != DT_OK)
        return DT_ERR_INVALID_ARG;
    for (size_t i = 0; r.status == DT_OK && i < req.n_operations; i++)
        if (req.operations[i].type != DT_EVENT_ENTITY_SIGNALED &&
            req.operations[i].type != DT_EVENT_ENTITY_CALLED)
            pb_r_bad(&r, "operationRequests[%zu] is a %s, not an operation", i,
                     dt_event_type_name(req.operations[i].type));
    if (r.status != DT_OK)
        return r.status;
    *out = req;
    return DT_OK;
}

static Dtpb__OperationResult *b_op_result(pb_builder *b, const dt_entity_op_result *res)
{
    Dtpb__OperationResult *m = pb_b_msg(b, &dtpb__operation_result__descriptor);
    if (m == NULL)
        return NULL;
    if (res->failure) {
        Dtpb__OperationResultFailure *f = pb_b_msg(b, &dtpb__operation_result_failure__descriptor);
        if (f)
            f->failuredetails = pb_b_failure(b, res->failure);
        m->result_type_case = DTPB__OPERATION_RESULT__RESULT_TYPE_FAILURE;
        m->failure = f;
    } else {
        Dtpb__OperationResultSuccess *s = pb_b_msg(b, &dtpb__operation_result_success__descriptor);
        if (s)
            s->result = pb_b_sv(b, res->result);
        m->result_type_case = DTPB__OPERATION_RESULT__RESULT_TYPE_SUCCESS;
        m->success = s;
    }
    return m;
}

static Dtpb__OperationAction *b_op_action(pb_builder *b, const dt_entity_action *act, int32_t id)
{
    Dtpb__OperationAction *m = pb_b_msg(b, &dtpb__operation_action__descriptor);
    if (m == NULL)
        return NULL;
    m->id = id;
    if (act->type == DT_ENTITY_SIGNAL) {
        Dtpb__SendSignalAction *x = pb_b_msg(b, &dtpb__send_signal_action__descriptor);
        if (x) {
            x->instanceid = pb_b_str(act->instance_id);
            x->name = pb_b_str(act->name);
            x->input = pb_b_sv(b, act->input);
            x->scheduledtime = pb_b_time(b, act->at);
        }
        m->operation_action_type_case = DTPB__OPERATION_ACTION__OPERATION_ACTION_TYPE_SEND_SIGNAL;
        m->sendsignal = x;
    } else {
        Dtpb__StartNewOrchestrationAction *x =
            pb_b_msg(b, &dtpb__start_new_orchestration_action__descriptor);
        if (x) {
            x->instanceid = pb_b_str(act->instance_id);
            x->name = pb_b_str(act->name);
            x->version = pb_b_sv(b, act->version);
            x->input = pb_b_sv(b, act->input);
            x->scheduledtime = pb_b_time(b, act->at);
        }
        m->operation_action_type_case =
            DTPB__OPERATION_ACTION__OPERATION_ACTION_TYPE_START_NEW_ORCHESTRATION;
        m->startneworchestration = x;
    }
    return m;
}

dt_status svc_entity_result(dt_arena *a, const dt_entity_result *res, const char *token,
                            Dtpb__EntityBatchResult **out)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__EntityBatchResult *m = pb_b_msg(&b, &dtpb__entity_batch_result__descriptor);
    Dtpb__OperationResult **r = pb_b_array(&b, res->n_results, sizeof *r);
    Dtpb__OperationAction **x = pb_b_array(&b, res->n_actions, sizeof *x);
    for (size_t i = 0; i < res->n_results && b.status == DT_OK; i++)
        r[i] = b_op_result(&b, &res->results[i]);
    for (size_t i = 0; i < res->n_actions && b.status == DT_OK; i++)
        x[i] = b_op_action(&b, &res->actions[i], (int32_t)i);
    if (b.status != DT_OK)
        return b.status;
    m->results = r;
    m->n_results = res->n_results;
    m->actions = x;
    m->n_actions = res->n_actions;
    m->entitystate = pb_b_sv(&b, res->state);
    m->failuredetails = pb_b_failure(&b, res->failure);
    m->completiontoken = pb_b_str(token);
    if (b.status != DT_OK)
        return b.status;
    *out = m;
    return DT_OK;
}
