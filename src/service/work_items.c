/* work_items.c — the worker half of the service's messages, both ways: the OrchestratorRequest
 * and ActivityRequest a server streams to a worker, the responses the worker sends back, and
 * the work item filters of GetWorkItems (see service.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "service.h"

/* b_span: the orchestration's tracing span, as the worker reported it; NULL: absent. */
static Dtpb__OrchestrationTraceContext *b_span(pb_builder *b, const char *id, dt_time start)
{
    if (id == NULL)
        return NULL;
    Dtpb__OrchestrationTraceContext *m =
        pb_b_msg(b, &dtpb__orchestration_trace_context__descriptor);
    if (m) {
        m->spanid = pb_b_sv(b, id);
        m->spanstarttime = pb_b_time(b, start);
    }
    return m;
}

/* r_span: the reverse of b_span. */
static void r_span(pb_reader *r, const Dtpb__OrchestrationTraceContext *m, const char **id,
                   dt_time *start)
{
    *id = NULL;
    *start = 0;
    if (m == NULL || m->spanid == NULL || m->spanid->value == NULL || !m->spanid->value[0])
        return;
    *id = pb_r_sv(r, m->spanid, "orchestrationTraceContext.spanID");
    *start = pb_r_time(r, m->spanstarttime, "orchestrationTraceContext.spanStartTime");
}

dt_status svc_orchestrator_request(dt_arena *a, const dt_orch_request *req,
                                   Dtpb__OrchestratorRequest **out)
{
    if (a == NULL || req == NULL || req->instance_id == NULL ||
        (req->past == NULL && req->n_past > 0) ||
        (req->new_events == NULL && req->n_new > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__OrchestratorRequest *m = pb_b_msg(&b, &dtpb__orchestrator_request__descriptor);
    Dtpb__StringValue *exec = pb_b_sv(&b, req->execution_id);
    Dtpb__HistoryEvent **past = pb_b_events(&b, req->past, req->n_past);
    Dtpb__HistoryEvent **fresh = pb_b_events(&b, req->new_events, req->n_new);
    if (b.status != DT_OK)
        return b.status;
    m->instanceid = pb_b_str(req->instance_id);
    m->executionid = exec;
    m->pastevents = past;
    m->n_pastevents = req->n_past;
    m->newevents = fresh;
    m->n_newevents = req->n_new;
    m->orchestrationtracecontext = b_span(&b, req->span_id, req->span_start);
    /* always there: the .NET SDK's entity support reads its reorder window unconditionally
     * (zero: messages are delivered in order by the hub, nothing to wait for) */
    m->entityparameters = pb_b_msg(&b, &dtpb__orchestrator_entity_parameters__descriptor);
    if (m->entityparameters)
        m->entityparameters->entitymessagereorderwindow =
            pb_b_msg(&b, &dtpb__duration__descriptor);
    if (b.status != DT_OK)
        return b.status;
    *out = m;
    return DT_OK;
}

/* ---- extended sessions: OrchestratorRequest.properties ------------------------------------

 * The keys the Durable Task Framework's extended sessions put there (a session is in use;
 * how long an idle one may be kept; whether the past events came along), and ours: how many
 * past events there are, so the worker can tell whether its session saw all but the last
 * episode's own events. Other keys are ignored, ours by other workers too. */
#define PROP_SESSION "IsExtendedSession"
#define PROP_IDLE "ExtendedSessionIdleTimeoutInSeconds"
#define PROP_INCLUDED "IncludeState"
#define PROP_COUNT "PastEventCount"

static Dtpb__OrchestratorRequest__PropertiesEntry *prop(pb_builder *b, const char *key,
                                                        Dtpb__Value__KindCase kind, double num)
{
    Dtpb__OrchestratorRequest__PropertiesEntry *e =
        pb_b_msg(b, &dtpb__orchestrator_request__properties_entry__descriptor);
    Dtpb__Value *v = pb_b_msg(b, &dtpb__value__descriptor);
    if (e == NULL || v == NULL)
        return NULL;
    v->kind_case = kind;
    if (kind == DTPB__VALUE__KIND_BOOL_VALUE)
        v->bool_value = num != 0;
    else
        v->number_value = num;
    e->key = (char *)key;
    e->value = v;
    return e;
}

dt_status svc_orchestrator_request_session(dt_arena *a, Dtpb__OrchestratorRequest *m,
                                           size_t n_past, bool past_included, double idle_s)
{
    pb_builder b = PB_BUILDER(a);
    Dtpb__OrchestratorRequest__PropertiesEntry **p = pb_b_array(&b, 4, sizeof *p);
    if (p == NULL || b.status != DT_OK)
        return DT_ERR_NOMEM;
    p[0] = prop(&b, PROP_SESSION, DTPB__VALUE__KIND_BOOL_VALUE, 1);
    p[1] = prop(&b, PROP_IDLE, DTPB__VALUE__KIND_NUMBER_VALUE, idle_s);
    p[2] = prop(&b, PROP_INCLUDED, DTPB__VALUE__KIND_BOOL_VALUE, past_included);
    p[3] = prop(&b, PROP_COUNT, DTPB__VALUE__KIND_NUMBER_VALUE, (double)n_past);
    if (b.status != DT_OK || !p[0] || !p[1] || !p[2] || !p[3])
        return DT_ERR_NOMEM;
    m->properties = p;
    m->n_properties = 4;
    if (!past_included) {
        m->pastevents = NULL;
        m->n_pastevents = 0;
    }
    return DT_OK;
}

/* find_prop: M's property KEY if it has KIND, else NULL */
static const Dtpb__Value *find_prop(const Dtpb__OrchestratorRequest *m, const char *key,
                                    Dtpb__Value__KindCase kind)
{
    for (size_t i = 0; i < m->n_properties; i++) {
        const Dtpb__OrchestratorRequest__PropertiesEntry *e = m->properties[i];
        if (e && e->key && e->value && strcmp(e->key, key) == 0)
            return e->value->kind_case == kind ? e->value : NULL;
    }
    return NULL;
}

/* past_left_out: how many past events M's sender left out for the worker's session (see
 * dt_orch_request.past_left_out), 0 if it left out none. */
static size_t past_left_out(const Dtpb__OrchestratorRequest *m)
{
    const Dtpb__Value *session = find_prop(m, PROP_SESSION, DTPB__VALUE__KIND_BOOL_VALUE);
    const Dtpb__Value *included = find_prop(m, PROP_INCLUDED, DTPB__VALUE__KIND_BOOL_VALUE);
    if (session == NULL || !session->bool_value || included == NULL || included->bool_value ||
        m->n_pastevents > 0)
        return 0;
    const Dtpb__Value *count = find_prop(m, PROP_COUNT, DTPB__VALUE__KIND_NUMBER_VALUE);
    /* a count that is no event count (fractional, negative, absurd) says nothing */
    if (count == NULL || !(count->number_value >= 1 && count->number_value <= 1e15) ||
        count->number_value != (double)(int64_t)count->number_value)
        return DT_PAST_COUNT_UNKNOWN;
    return (size_t)count->number_value;
}

dt_status svc_orchestrator_request_from_msg(dt_arena *a, const Dtpb__OrchestratorRequest *m,
                                            dt_orch_request *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_orchestrator_request_from_msg needs an arena, a message and "
                            "a request to fill");
    pb_reader r = PB_READER(a, err, "OrchestratorRequest");
    dt_orch_request req = {0};
    req.instance_id = pb_r_str(&r, m->instanceid, "instanceId");
    req.execution_id = pb_r_sv(&r, m->executionid, "executionId");
    req.past = pb_r_events(&r, m->pastevents, m->n_pastevents, "OrchestratorRequest.pastEvents");
    req.n_past = m->n_pastevents;
    req.new_events = pb_r_events(&r, m->newevents, m->n_newevents,
                                 "OrchestratorRequest.newEvents");
    req.n_new = m->n_newevents;
    req.past_left_out = past_left_out(m);
    r_span(&r, m->orchestrationtracecontext, &req.span_id, &req.span_start);
    if (r.status != DT_OK)
        return r.status;
    *out = req;
    return DT_OK;
}

dt_status svc_activity_request(dt_arena *a, const dt_activity_request *req,
                               Dtpb__ActivityRequest **out)
{
    if (a == NULL || req == NULL || req->instance_id == NULL || req->name == NULL ||
        out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__ActivityRequest *m = pb_b_msg(&b, &dtpb__activity_request__descriptor);
    Dtpb__OrchestrationInstance *inst = pb_b_instance(&b, req->instance_id, req->execution_id);
    Dtpb__StringValue *version = pb_b_sv(&b, req->version);
    Dtpb__StringValue *input = pb_b_sv(&b, req->input);
    if (b.status != DT_OK)
        return b.status;
    m->name = pb_b_str(req->name);
    m->version = version;
    m->input = input;
    m->orchestrationinstance = inst;
    m->taskid = req->task_id;
    m->parenttracecontext = pb_b_trace(&b, req->trace_parent, req->trace_state);
    m->tags = (Dtpb__ActivityRequest__TagsEntry **)pb_b_tags(
        &b, &dtpb__activity_request__tags_entry__descriptor, req->tags, &m->n_tags);
    if (b.status != DT_OK)
        return b.status;
    *out = m;
    return DT_OK;
}

dt_status svc_activity_request_from_msg(dt_arena *a, const Dtpb__ActivityRequest *m,
                                        dt_activity_request *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_activity_request_from_msg needs an arena, a message and a "
                            "request to fill");
    pb_reader r = PB_READER(a, err, "ActivityRequest");
    const Dtpb__OrchestrationInstance *inst = m->orchestrationinstance;
    dt_activity_request req = {0};
    req.instance_id = pb_r_str(&r, inst ? inst->instanceid : NULL,
                               "orchestrationInstance.instanceId");
    req.execution_id = inst ? pb_r_sv(&r, inst->executionid, "orchestrationInstance.executionId")
                            : NULL;
    req.task_id = m->taskid;
    req.name = pb_r_str(&r, m->name, "name");
    req.version = pb_r_sv(&r, m->version, "version");
    req.input = pb_r_sv(&r, m->input, "input");
    pb_r_trace(&r, m->parenttracecontext, &req.trace_parent, &req.trace_state,
               "parentTraceContext");
    req.tags = pb_r_tags(&r, (void *const *)m->tags, m->n_tags, "tags");
    if (r.status != DT_OK)
        return r.status;
    if (req.input && req.input[0] == '\0')
        req.input = NULL;   /* the SDKs send "" for an activity called without input */
    *out = req;
    return DT_OK;
}

dt_status svc_orchestrator_response(dt_arena *a, const char *instance_id, const char *token,
                                    const dt_orch_result *result,
                                    Dtpb__OrchestratorResponse **out)
{
    if (a == NULL || result == NULL || (result->actions == NULL && result->n_actions > 0) ||
        out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__OrchestratorResponse *m = pb_b_msg(&b, &dtpb__orchestrator_response__descriptor);
    Dtpb__OrchestratorAction **acts = pb_b_array(&b, result->n_actions, sizeof *acts);
    for (size_t i = 0; i < result->n_actions && b.status == DT_OK; i++)
        b.status = svc_action_to_msg(a, &result->actions[i], &acts[i]);
    Dtpb__StringValue *custom = pb_b_sv(&b, result->custom_status);
    if (b.status != DT_OK)
        return b.status;
    m->instanceid = pb_b_str(instance_id);
    m->completiontoken = pb_b_str(token);
    m->actions = acts;
    m->n_actions = result->n_actions;
    m->customstatus = custom;
    m->orchestrationtracecontext = b_span(&b, result->span_id, result->span_start);
    if (b.status != DT_OK)
        return b.status;
    *out = m;
    return DT_OK;
}

/* read_chunk: M's place in a chunked completion: *INDEX -1 when it is not one. The fields are
 * deprecated in the protocol (protobuf-c marks them so), but the .NET and Java SDKs still
 * send them for completions too large for one message. */
static void read_chunk(const Dtpb__OrchestratorResponse *m, int32_t *index, bool *partial)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    *partial = m->ispartial;
    if (m->chunkindex)   /* a negative one reads as -2: refused by the caller */
        *index = m->chunkindex->value >= 0 ? m->chunkindex->value : -2;
    else
        *index = m->ispartial ? 0 : -1;
#pragma GCC diagnostic pop
}

dt_status svc_orchestrator_response_from_msg(dt_arena *a, const Dtpb__OrchestratorResponse *m,
                                             svc_orch_completion *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_orchestrator_response_from_msg needs an arena, a message and "
                            "a completion to fill");
    pb_reader r = PB_READER(a, err, "OrchestratorResponse");
    svc_orch_completion c;
    memset(&c, 0, sizeof c);
    read_chunk(m, &c.chunk_index, &c.partial);
    if (c.chunk_index < -1)
        pb_r_fail(&r, DT_ERR_INVALID_ARG, "OrchestratorResponse.chunkIndex is negative");
    c.instance_id = pb_r_str(&r, m->instanceid, "instanceId");
    c.completion_token = pb_r_str(&r, m->completiontoken, "completionToken");
    c.result.custom_status = pb_r_sv(&r, m->customstatus, "customStatus");
    r_span(&r, m->orchestrationtracecontext, &c.result.span_id, &c.result.span_start);
    c.n_events_processed = -1;
    if (m->numeventsprocessed) {
        if (m->numeventsprocessed->value < 0)
            pb_r_fail(&r, DT_ERR_INVALID_ARG,
                      "OrchestratorResponse.numEventsProcessed %d is negative",
                      (int)m->numeventsprocessed->value);
        c.n_events_processed = m->numeventsprocessed->value;
    }
    c.requires_history = m->requireshistory;
    dt_action *acts = NULL;
    if (r.status == DT_OK && m->n_actions > 0) {
        acts = dt_arena_alloc(a, m->n_actions * sizeof *acts);
        if (acts == NULL)
            pb_r_fail(&r, DT_ERR_NOMEM, "out of memory reading %zu actions", m->n_actions);
    }
    for (size_t i = 0; i < m->n_actions && r.status == DT_OK; i++) {
        if (m->actions[i] == NULL) {
            pb_r_fail(&r, DT_ERR_INVALID_ARG, "OrchestratorResponse.actions[%zu] is missing", i);
            break;
        }
        r.status = svc_action_from_msg(a, m->actions[i], &acts[i], err);
        if (r.status != DT_OK)
            pb_err_prefix(err, "OrchestratorResponse.actions[%zu] (id %d): ", i,
                          (int)m->actions[i]->id);
    }
    if (r.status != DT_OK)
        return r.status;
    c.result.actions = acts;
    c.result.n_actions = m->n_actions;
    *out = c;
    return DT_OK;
}

dt_status svc_activity_response(dt_arena *a, const dt_activity_request *req, const char *token,
                                const char *result, const dt_failure *failure,
                                Dtpb__ActivityResponse **out)
{
    if (a == NULL || req == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__ActivityResponse *m = pb_b_msg(&b, &dtpb__activity_response__descriptor);
    Dtpb__TaskFailureDetails *f = pb_b_failure(&b, failure);
    Dtpb__StringValue *res = failure ? NULL : pb_b_sv(&b, result);
    if (b.status != DT_OK)
        return b.status;
    m->instanceid = pb_b_str(req->instance_id);
    m->taskid = req->task_id;
    m->completiontoken = pb_b_str(token);
    m->failuredetails = f;
    m->result = res;
    *out = m;
    return DT_OK;
}

dt_status svc_activity_response_from_msg(dt_arena *a, const Dtpb__ActivityResponse *m,
                                         svc_activity_completion *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_activity_response_from_msg needs an arena, a message and a "
                            "completion to fill");
    pb_reader r = PB_READER(a, err, "ActivityResponse");
    svc_activity_completion c;
    memset(&c, 0, sizeof c);
    c.instance_id = pb_r_str(&r, m->instanceid, "instanceId");
    c.task_id = m->taskid;
    c.completion_token = pb_r_str(&r, m->completiontoken, "completionToken");
    c.result = pb_r_sv(&r, m->result, "result");
    c.failure = pb_r_failure(&r, m->failuredetails, "failureDetails");
    if (r.status != DT_OK)
        return r.status;
    *out = c;
    return DT_OK;
}

/* versions_msg: VL's versions for a filter message (borrowed; NULL and 0 for any). */
static char **versions_msg(pb_builder *b, const dt_name_filter *f, size_t i, size_t *n)
{
    const dt_version_list *vl = f->versions ? &f->versions[i] : NULL;
    *n = vl ? vl->n : 0;
    char **v = pb_b_array(b, *n, sizeof *v);
    for (size_t k = 0; v && k < *n; k++)
        v[k] = pb_b_str(vl->v[k]);
    return v;
}

dt_status svc_work_filters(dt_arena *a, const dt_name_filter *orchestrators,
                           const dt_name_filter *activities, Dtpb__WorkItemFilters **out)
{
    if (a == NULL || orchestrators == NULL || activities == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    pb_builder b = PB_BUILDER(a);
    Dtpb__WorkItemFilters *m = pb_b_msg(&b, &dtpb__work_item_filters__descriptor);
    Dtpb__OrchestrationFilter **o = pb_b_array(&b, orchestrators->n, sizeof *o);
    Dtpb__ActivityFilter **t = pb_b_array(&b, activities->n, sizeof *t);
    for (size_t i = 0; i < orchestrators->n && b.status == DT_OK; i++)
        if ((o[i] = pb_b_msg(&b, &dtpb__orchestration_filter__descriptor)) != NULL) {
            o[i]->name = pb_b_str(orchestrators->names[i]);
            o[i]->versions = versions_msg(&b, orchestrators, i, &o[i]->n_versions);
        }
    for (size_t i = 0; i < activities->n && b.status == DT_OK; i++)
        if ((t[i] = pb_b_msg(&b, &dtpb__activity_filter__descriptor)) != NULL) {
            t[i]->name = pb_b_str(activities->names[i]);
            t[i]->versions = versions_msg(&b, activities, i, &t[i]->n_versions);
        }
    if (b.status != DT_OK)
        return b.status;
    m->orchestrations = o;
    m->n_orchestrations = orchestrators->n;
    m->activities = t;
    m->n_activities = activities->n;
    *out = m;
    return DT_OK;
}

/* read_filter: N filters' names and versions (as NAMES_AT and VERSIONS_AT give them for
 * each) into *OUT, in the arena. */
static void read_filter(pb_reader *r, size_t n, const char *(*name_at)(const void *, size_t),
                        char **(*versions_at)(const void *, size_t, size_t *), const void *m,
                        const char *what, dt_name_filter *out)
{
    /* one more than asked, so an empty list is still an array */
    const char **names = dt_arena_alloc(r->arena, (n + 1) * sizeof *names);
    dt_version_list *vl = dt_arena_alloc(r->arena, (n + 1) * sizeof *vl);
    if (names == NULL || vl == NULL) {
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading work item filters");
        return;
    }
    char field[64];
    size_t entries = 0;   /* names and versions, as DT_FILTER_MAX counts them */
    for (size_t i = 0; i < n; i++) {
        size_t nv = 0;
        versions_at(m, i, &nv);
        entries += nv ? nv : 1;
    }
    if (entries > DT_FILTER_MAX)
        pb_r_bad(r, "WorkItemFilters.%s: %zu names and versions, over the %d a filter may list",
                 what, entries, DT_FILTER_MAX);
    for (size_t i = 0; i < n && r->status == DT_OK; i++) {
        snprintf(field, sizeof field, "%s.name", what);
        names[i] = pb_r_str(r, name_at(m, i), field);
        size_t nv = 0;
        char **v = versions_at(m, i, &nv);
        const char **copy = nv ? dt_arena_alloc(r->arena, nv * sizeof *copy) : NULL;
        if (nv && copy == NULL)
            pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading work item filters");
        snprintf(field, sizeof field, "%s.versions", what);
        for (size_t k = 0; k < nv && r->status == DT_OK; k++)
            copy[k] = pb_r_str(r, v[k], field);
        vl[i] = (dt_version_list){copy, nv};
    }
    *out = (dt_name_filter){names, n, vl};
}

static const char *orch_name(const void *m, size_t i)
{
    const Dtpb__OrchestrationFilter *f = ((const Dtpb__WorkItemFilters *)m)->orchestrations[i];
    return f ? f->name : NULL;
}

static char **orch_versions(const void *m, size_t i, size_t *n)
{
    const Dtpb__OrchestrationFilter *f = ((const Dtpb__WorkItemFilters *)m)->orchestrations[i];
    *n = f ? f->n_versions : 0;
    return f ? f->versions : NULL;
}

static const char *act_name(const void *m, size_t i)
{
    const Dtpb__ActivityFilter *f = ((const Dtpb__WorkItemFilters *)m)->activities[i];
    return f ? f->name : NULL;
}

static char **act_versions(const void *m, size_t i, size_t *n)
{
    const Dtpb__ActivityFilter *f = ((const Dtpb__WorkItemFilters *)m)->activities[i];
    *n = f ? f->n_versions : 0;
    return f ? f->versions : NULL;
}

dt_status svc_work_filters_from_msg(dt_arena *a, const Dtpb__WorkItemFilters *m,
                                    dt_name_filter *orchestrators, dt_name_filter *activities,
                                    bool *has, dt_error *err)
{
    if (a == NULL || orchestrators == NULL || activities == NULL || has == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "svc_work_filters_from_msg needs an arena and filters to fill");
    if (m == NULL) {
        *orchestrators = *activities = (dt_name_filter){NULL, 0, NULL};
        *has = false;
        return DT_OK;
    }
    pb_reader r = PB_READER(a, err, "WorkItemFilters");
    dt_name_filter o, t;
    read_filter(&r, m->n_orchestrations, orch_name, orch_versions, m, "orchestrations", &o);
    read_filter(&r, m->n_activities, act_name, act_versions, m, "activities", &t);
    if (r.status != DT_OK)
        return r.status;
    *orchestrators = o;
    *activities = t;
    *has = true;
    return DT_OK;
}

static const char *const completion_methods[] = {
    [DTPB__WORKER_COMPLETION__COMPLETION_ORCHESTRATOR] = "CompleteOrchestratorTask",
    [DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY] = "CompleteActivityTask",
    [DTPB__WORKER_COMPLETION__COMPLETION_ENTITY] = "CompleteEntityTask",
};

const char *svc_completion_method(uint32_t field)
{
    return field < sizeof completion_methods / sizeof *completion_methods
               ? completion_methods[field]
               : NULL;
}

dt_status svc_completion_unwrap(const uint8_t *buf, size_t len, const char **method,
                                const uint8_t **body, size_t *body_len)
{
    uint32_t field = 0;
    if (pb_single_field(buf, len, &field, body, body_len) != DT_OK ||
        svc_completion_method(field) == NULL)
        return DT_ERR_INVALID_ARG;
    *method = svc_completion_method(field);
    return DT_OK;
}
