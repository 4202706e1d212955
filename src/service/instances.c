/* instances.c — instance states, starts, queries, purges and history chunks: the client
 * half of the service's messages, to and from our records (see service.h). */
#include <stdlib.h>
#include <string.h>

#include "service.h"

dt_status svc_state_to_msg(dt_arena *a, const dt_instance_state *s, bool with_payloads,
                          Dtpb__OrchestrationState **out)
{
    if (a == NULL || s == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__OrchestrationState *m = pb_b_msg(&b, &dtpb__orchestration_state__descriptor);
    if (m) {
        m->instanceid = pb_b_str(s->instance_id);
        m->name = pb_b_str(s->name);
        m->version = pb_b_sv(&b, s->version);
        m->orchestrationstatus = pb_b_status(&b, s->status);
        m->scheduledstarttimestamp = pb_b_time(&b, s->scheduled_start);
        m->createdtimestamp = pb_b_time(&b, s->created_at);
        m->lastupdatedtimestamp = pb_b_time(&b, s->last_updated_at);
        m->completedtimestamp = pb_b_time(&b, s->completed_at);
        if (with_payloads) {
            m->input = pb_b_sv(&b, s->input);
            m->output = pb_b_sv(&b, s->output);
            m->customstatus = pb_b_sv(&b, s->custom_status);
        }
        m->failuredetails = pb_b_failure(&b, s->failure);
        m->executionid = pb_b_sv(&b, s->execution_id);
        m->parentinstanceid = pb_b_sv(&b, s->parent_instance_id);
        m->tags = (Dtpb__OrchestrationState__TagsEntry **)pb_b_tags(
            &b, &dtpb__orchestration_state__tags_entry__descriptor, s->tags, &m->n_tags);
    }
    if (b.status != DT_OK)
        return b.status;
    *out = m;
    return DT_OK;
}

dt_status svc_state_from_msg(dt_arena *a, const Dtpb__OrchestrationState *m,
                            dt_instance_state *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_state_from_msg needs an arena, a message and a state to fill");
    pb_reader r = PB_READER(a, err, "OrchestrationState");
    dt_instance_state s;
    memset(&s, 0, sizeof s);
    s.instance_id = pb_r_str(&r, m->instanceid, "instanceId");
    s.name = pb_r_str(&r, m->name, "name");
    s.version = pb_r_sv(&r, m->version, "version");
    s.status = pb_r_status(&r, (int)m->orchestrationstatus, "orchestrationStatus");
    s.scheduled_start = pb_r_time(&r, m->scheduledstarttimestamp, "scheduledStartTimestamp");
    s.created_at = pb_r_time(&r, m->createdtimestamp, "createdTimestamp");
    s.last_updated_at = pb_r_time(&r, m->lastupdatedtimestamp, "lastUpdatedTimestamp");
    s.completed_at = pb_r_time(&r, m->completedtimestamp, "completedTimestamp");
    s.input = pb_r_sv(&r, m->input, "input");
    s.output = pb_r_sv(&r, m->output, "output");
    s.custom_status = pb_r_sv(&r, m->customstatus, "customStatus");
    s.failure = pb_r_failure(&r, m->failuredetails, "failureDetails");
    s.execution_id = pb_r_sv(&r, m->executionid, "executionId");
    s.parent_instance_id = pb_r_sv(&r, m->parentinstanceid, "parentInstanceId");
    s.tags = pb_r_tags(&r, (void *const *)m->tags, m->n_tags, "tags");
    if (r.status != DT_OK)
        return r.status;
    *out = s;
    return DT_OK;
}

dt_status svc_start_from_msg(dt_arena *a, const Dtpb__CreateInstanceRequest *m,
                            dt_start_request *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_start_from_msg needs an arena, a message and a request to fill");
    pb_reader r = PB_READER(a, err, "CreateInstanceRequest");
    dt_start_request req;
    memset(&req, 0, sizeof req);
    req.instance_id = pb_r_str(&r, m->instanceid, "instanceId");
    if (req.instance_id && req.instance_id[0] == '\0')
        req.instance_id = NULL;
    req.name = pb_r_str(&r, m->name, "name");
    req.version = pb_r_sv(&r, m->version, "version");
    req.input = pb_r_sv(&r, m->input, "input");
    req.start_at = pb_r_time(&r, m->scheduledstarttimestamp, "scheduledStartTimestamp");
    req.tags = pb_r_tags(&r, (void *const *)m->tags, m->n_tags, "tags");
    pb_r_trace(&r, m->parenttracecontext, &req.trace_parent, &req.trace_state,
               "parentTraceContext");
    const Dtpb__OrchestrationIdReusePolicy *policy = m->orchestrationidreusepolicy;
    if (policy) {   /* present, even with no statuses, it is the whole policy */
        req.replaceable = pb_r_statuses(&r, policy->replaceablestatus, policy->n_replaceablestatus,
                                        "orchestrationIdReusePolicy.replaceableStatus");
        req.n_replaceable = req.replaceable ? policy->n_replaceablestatus : 0;
        req.reuse_policy = true;
    }
    if (r.status != DT_OK)
        return r.status;
    *out = req;
    return DT_OK;
}

dt_status svc_query_from_msg(dt_arena *a, const Dtpb__InstanceQuery *m, dt_query *out,
                            dt_error *err)
{
    if (a == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_query_from_msg needs an arena and a query to fill");
    dt_query q;
    memset(&q, 0, sizeof q);
    if (m == NULL) {
        *out = q;
        return DT_OK;
    }
    pb_reader r = PB_READER(a, err, "InstanceQuery");
    q.statuses = pb_r_statuses(&r, m->runtimestatus, m->n_runtimestatus, "runtimeStatus");
    q.n_statuses = q.statuses ? m->n_runtimestatus : 0;
    q.created_from = pb_r_bound(&r, m->createdtimefrom, "createdTimeFrom");
    q.created_to = pb_r_bound(&r, m->createdtimeto, "createdTimeTo");
    if (m->maxinstancecount < 0)
        pb_r_fail(&r, DT_ERR_INVALID_ARG, "InstanceQuery.maxInstanceCount %d is negative",
               (int)m->maxinstancecount);
    else if (m->maxinstancecount > DT_QUERY_PAGE_MAX)
        q.page_size = DT_QUERY_PAGE_MAX;
    else
        q.page_size = (size_t)m->maxinstancecount;
    q.continuation = pb_r_sv(&r, m->continuationtoken, "continuationToken");
    if (q.continuation && q.continuation[0] == '\0')
        q.continuation = NULL;   /* some SDKs ask for the first page with an empty token */
    q.id_prefix = pb_r_sv(&r, m->instanceidprefix, "instanceIdPrefix");
    q.with_payloads = m->fetchinputsandoutputs;
    if (r.status != DT_OK)
        return r.status;
    *out = q;
    return DT_OK;
}

dt_status svc_list_ids_from_msg(dt_arena *a, const Dtpb__ListInstanceIdsRequest *m,
                                dt_query *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_list_ids_from_msg needs an arena, a message and a query");
    pb_reader r = PB_READER(a, err, "ListInstanceIdsRequest");
    dt_query q;
    memset(&q, 0, sizeof q);
    q.statuses = pb_r_statuses(&r, m->runtimestatus, m->n_runtimestatus, "runtimeStatus");
    q.n_statuses = q.statuses ? m->n_runtimestatus : 0;
    q.completed_from = pb_r_bound(&r, m->completedtimefrom, "completedTimeFrom");
    q.completed_to = pb_r_bound(&r, m->completedtimeto, "completedTimeTo");
    if (m->pagesize < 0)
        pb_r_fail(&r, DT_ERR_INVALID_ARG, "ListInstanceIdsRequest.pageSize %d is negative",
                  (int)m->pagesize);
    else
        q.page_size = m->pagesize > DT_QUERY_PAGE_MAX ? DT_QUERY_PAGE_MAX : (size_t)m->pagesize;
    q.continuation = pb_r_sv(&r, m->lastinstancekey, "lastInstanceKey");
    if (q.continuation && q.continuation[0] == '\0')
        q.continuation = NULL;
    if (r.status != DT_OK)
        return r.status;
    *out = q;
    return DT_OK;
}

dt_status svc_list_ids_response(dt_arena *a, const dt_instance_state *states, size_t n,
                                const char *next, Dtpb__ListInstanceIdsResponse **out)
{
    if (a == NULL || (states == NULL && n > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__ListInstanceIdsResponse *m = pb_b_msg(&b, &dtpb__list_instance_ids_response__descriptor);
    char **ids = pb_b_array(&b, n, sizeof *ids);
    for (size_t i = 0; i < n && b.status == DT_OK; i++)
        ids[i] = pb_b_str(states[i].instance_id);
    Dtpb__StringValue *last = pb_b_sv(&b, next);
    if (b.status != DT_OK)
        return b.status;
    m->instanceids = ids;
    m->n_instanceids = n;
    m->lastinstancekey = last;
    *out = m;
    return DT_OK;
}

dt_status svc_purge_filter_from_msg(dt_arena *a, const Dtpb__PurgeInstanceFilter *m,
                                   dt_query *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_purge_filter_from_msg needs an arena, a filter and a query");
    pb_reader r = PB_READER(a, err, "PurgeInstanceFilter");
    dt_query q;
    memset(&q, 0, sizeof q);
    q.statuses = pb_r_statuses(&r, m->runtimestatus, m->n_runtimestatus, "runtimeStatus");
    q.n_statuses = q.statuses ? m->n_runtimestatus : 0;
    q.created_from = pb_r_bound(&r, m->createdtimefrom, "createdTimeFrom");
    q.created_to = pb_r_bound(&r, m->createdtimeto, "createdTimeTo");
    if (r.status != DT_OK)
        return r.status;
    *out = q;
    return DT_OK;
}

dt_status svc_query_response(dt_arena *a, const dt_instance_state *states, size_t n,
                            const char *next, bool with_payloads,
                            Dtpb__QueryInstancesResponse **out)
{
    if (a == NULL || (states == NULL && n > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__QueryInstancesResponse *m = pb_b_msg(&b, &dtpb__query_instances_response__descriptor);
    Dtpb__OrchestrationState **arr = pb_b_array(&b, n, sizeof *arr);
    for (size_t i = 0; i < n && b.status == DT_OK; i++)
        b.status = svc_state_to_msg(a, &states[i], with_payloads, &arr[i]);
    Dtpb__StringValue *token = pb_b_sv(&b, next);
    if (b.status != DT_OK)
        return b.status;
    m->orchestrationstate = arr;
    m->n_orchestrationstate = n;
    m->continuationtoken = token;
    *out = m;
    return DT_OK;
}

dt_status svc_history_chunk(dt_arena *a, const dt_event *events, size_t n,
                           Dtpb__HistoryChunk **out)
{
    if (a == NULL || (events == NULL && n > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__HistoryChunk *m = pb_b_msg(&b, &dtpb__history_chunk__descriptor);
    Dtpb__HistoryEvent **arr = pb_b_events(&b, events, n);
    if (b.status != DT_OK)
        return b.status;
    m->events = arr;
    m->n_events = n;
    *out = m;
    return DT_OK;
}

