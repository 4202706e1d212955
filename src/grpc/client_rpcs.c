/* client_rpcs.c — the client side of TaskHubSidecarService: starting, reading, waiting for
 * and managing instances, each through the hub's client operations. Requests are checked
 * before anything is done (pb_unpack: they must parse, their text must be UTF-8), so a bad
 * request is refused with INVALID_ARGUMENT naming the field, and nothing changes. Each
 * handler works in one arena, freed when the call is over. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "service/service.h"

#define WAIT_SLICE_MS 250   /* long waits look at the client between slices */
#define HISTORY_CHUNK_BYTES ((size_t)256 << 10)   /* per StreamInstanceHistory message */

static const char *sv(const Dtpb__StringValue *v)
{
    return v ? v->value : NULL;
}

/* payload: the SDKs send "" for "no payload" (a StringValue that is present but empty); we
 * keep payloads as JSON or NULL. */
static const char *payload(const Dtpb__StringValue *v)
{
    return v && v->value && v->value[0] ? v->value : NULL;
}

/* json_text: free text TEXT (a suspend reason) as a JSON string, in ARENA, into *OUT (NULL:
 * no text). DT_ERR_NOMEM rather than a reason silently dropped. */
static dt_status json_text(dt_arena *a, const char *text, const char **out, dt_error *err)
{
    *out = NULL;
    if (text == NULL || text[0] == '\0')
        return DT_OK;
    if (!dt_utf8_valid(text))   /* refused, as HTTP's is, not dropped */
        return dt_error_set(err, DT_ERR_INVALID_ARG, "reason is not valid UTF-8");
    json_t *s = json_string(text);
    char *dumped = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    *out = dumped ? dt_arena_strdup(a, dumped) : NULL;
    dt_json_free(dumped);
    json_decref(s);
    return *out ? DT_OK : dt_error_set(err, DT_ERR_NOMEM, "no memory for the reason now; try again");
}

RPC_HANDLER(hello, Dtpb__Empty, dtpb__empty__descriptor)
{
    (void)a;
    (void)r;
    Dtpb__Empty e = DTPB__EMPTY__INIT;
    rpc_reply(c, &e.base);
}

RPC_HANDLER(start_instance, Dtpb__CreateInstanceRequest, dtpb__create_instance_request__descriptor)
{
    dt_start_request req;
    dt_error err = {0};
    dt_status st = svc_start_from_msg(a, r, &req, &err);
    char id[DT_INSTANCE_ID_MAX + 1];
    if (st == DT_OK) {
        if (req.input && req.input[0] == '\0')
            req.input = NULL;
        st = dt_hub_start(rpc_hub(c), &req, id, &err);
    }
    if (st != DT_OK) {
        rpc_fail_err(c, st, &err);
        return;
    }
    Dtpb__CreateInstanceResponse resp = DTPB__CREATE_INSTANCE_RESPONSE__INIT;
    resp.instanceid = id;
    rpc_reply(c, &resp.base);
}

/* start_instance_async: on the poller, a start that reads goes to the group commit and is
 * answered from the hub once durable; one that does not is the blocking handler's to refuse. */
static void instance_started(void *arg, dt_status st, const dt_error *err, const char *id)
{
    rpc_pending *p = arg;
    if (st == DT_OK) {
        Dtpb__CreateInstanceResponse resp = DTPB__CREATE_INSTANCE_RESPONSE__INIT;
        resp.instanceid = (char *)id;
        rpc_reply(p->call, &resp.base);
    } else {
        rpc_fail_err(p->call, st, err);
    }
    rpc_pending_free(p);
}

static bool start_instance_async(rpc_call *c)
{
    rpc_pending *p = rpc_pending_new(c);
    Dtpb__CreateInstanceRequest *r = NULL;
    dt_start_request req;
    if (p == NULL ||
        !rpc_peek_msg(c, p->arena, &dtpb__create_instance_request__descriptor, (void **)&r) ||
        svc_start_from_msg(p->arena, r, &req, NULL) != DT_OK) {
        rpc_pending_free(p);
        return false;
    }
    if (req.input && req.input[0] == '\0')
        req.input = NULL;
    dt_hub_start_async(rpc_hub(c), &req, instance_started, p);
    return true;
}

/* reply_state: GetInstanceResponse for S, or exists=false for none (S NULL): the SDKs read a
 * missing instance as "no state", not as an error. */
static void reply_state(rpc_call *c, dt_arena *a, const dt_instance_state *s, bool payloads)
{
    Dtpb__GetInstanceResponse resp = DTPB__GET_INSTANCE_RESPONSE__INIT;
    if (s) {
        dt_status st = svc_state_to_msg(a, s, payloads, &resp.orchestrationstate);
        if (st != DT_OK) {
            rpc_fail(c, st, "cannot encode the instance's state");
            return;
        }
        resp.exists = true;
    }
    rpc_reply(c, &resp.base);
}

RPC_HANDLER(get_instance, Dtpb__GetInstanceRequest, dtpb__get_instance_request__descriptor)
{
    dt_instance_state *s = NULL;
    dt_error err = {0};
    dt_status st = dt_hub_get(rpc_hub(c), r->instanceid, a, &s, &err);
    if (st == DT_OK || st == DT_ERR_NOT_FOUND)
        reply_state(c, a, st == DT_OK ? s : NULL, r->getinputsandoutputs);
    else
        rpc_fail_err(c, st, &err);
}

/* wait_answer: end a wait with what the hub said (ST, S); after a slice with no answer
 * (DT_ERR_TIMEOUT), only if the client is gone or the task hub was deleted (the wait would
 * hold it open). Returns whether the call was finished. */
static bool wait_answer(rpc_call *c, dt_arena *a, bool payloads, dt_status st,
                        const dt_instance_state *s, const dt_error *err)
{
    if (st == DT_ERR_TIMEOUT && rpc_hub_deleted(c)) {
        rpc_finish(c, NULL, 0, GRPC_STATUS_NOT_FOUND, "the task hub was deleted");
        return true;
    }
    if (st == DT_ERR_TIMEOUT && !rpc_closed(c))
        return false;
    if (st == DT_OK || st == DT_ERR_NOT_FOUND)
        reply_state(c, a, st == DT_OK ? s : NULL, payloads);
    else
        rpc_fail_err(c, st, err);
    return true;
}

/* wait_for: block, here on the server, until the instance reaches WHAT or the client gives up
 * (its deadline or a cancel closes the call); answers like GetInstance. Each slice reads into
 * an arena of its own: the call's would keep a copy of the state (input and output too) per
 * slice, four a second, for as long as the wait lasts. */
static void wait_for(rpc_call *c, dt_arena *a, Dtpb__GetInstanceRequest *r, dt_wait_for what)
{
    for (;;) {
        dt_arena *slice = dt_arena_new();
        if (slice == NULL) {
            rpc_fail(c, DT_ERR_NOMEM, "out of memory");
            return;
        }
        dt_instance_state *s = NULL;
        dt_error err = {0};
        dt_status st =
            dt_hub_wait(rpc_hub(c), r->instanceid, what, WAIT_SLICE_MS, slice, &s, &err);
        dt_error none = {0};
        if (st == DT_ERR_NOT_FOUND && dt_instance_id_validate(r->instanceid, &none) == DT_OK)
            st = DT_ERR_TIMEOUT;   /* none yet: a slice with no answer, as dt_hub_wait waits */
        bool over = wait_answer(c, a, r->getinputsandoutputs, st, s, &err);
        dt_arena_free(slice);
        if (over)
            return;
    }
}

RPC_HANDLER(wait_start, Dtpb__GetInstanceRequest, dtpb__get_instance_request__descriptor)
{
    wait_for(c, a, r, DT_WAIT_START);
}

RPC_HANDLER(wait_completion, Dtpb__GetInstanceRequest, dtpb__get_instance_request__descriptor)
{
    wait_for(c, a, r, DT_WAIT_COMPLETION);
}

/* The asynchronous waits, on the poller: a wait the hub can make without a thread
 * (dt_hub_wait_async) is answered by the hub's thread of waits, its call held meanwhile by
 * no thread of ours; any other (a hub closing, a request that does not parse or names no
 * instance) is the blocking handler's, which says why. */
typedef struct async_wait {
    rpc_pending *p;
    bool payloads;
} async_wait;

static bool async_answered(void *arg, dt_status st, const dt_instance_state *row,
                           const dt_error *err)
{
    async_wait *w = arg;
    if (!wait_answer(w->p->call, w->p->arena, w->payloads, st, row, err))
        return true;   /* wait on */
    rpc_pending_free(w->p);
    free(w);
    return false;
}

static bool wait_async(rpc_call *c, dt_wait_for what)
{
    async_wait *w = malloc(sizeof *w);
    rpc_pending *p = w ? rpc_pending_new(c) : NULL;
    Dtpb__GetInstanceRequest *r = NULL;
    if (p == NULL ||
        !rpc_peek_msg(c, p->arena, &dtpb__get_instance_request__descriptor, (void **)&r)) {
        rpc_pending_free(p);
        free(w);
        return false;
    }
    *w = (async_wait){p, r->getinputsandoutputs};
    if (dt_hub_wait_async(rpc_hub(c), r->instanceid, what, async_answered, w, NULL) != DT_OK) {
        rpc_pending_free(p);
        free(w);
        return false;
    }
    return true;
}

static bool wait_start_async(rpc_call *c)
{
    return wait_async(c, DT_WAIT_START);
}

static bool wait_completion_async(rpc_call *c)
{
    return wait_async(c, DT_WAIT_COMPLETION);
}

static void reply_empty(rpc_call *c, const ProtobufCMessageDescriptor *d)
{
    /* every response of these calls is an empty message: its bytes are empty */
    (void)d;
    rpc_finish(c, (const uint8_t *)"", 0, GRPC_STATUS_OK, "");
}

static void done(rpc_call *c, dt_status st, const dt_error *err,
                 const ProtobufCMessageDescriptor *d)
{
    if (st == DT_OK)
        reply_empty(c, d);
    else
        rpc_fail_err(c, st, err);
}

RPC_HANDLER(raise_event, Dtpb__RaiseEventRequest, dtpb__raise_event_request__descriptor)
{
    (void)a;
    dt_error err = {0};
    dt_status st =
        dt_hub_raise_event(rpc_hub(c), r->instanceid, r->name, payload(r->input), &err);
    done(c, st, &err, &dtpb__raise_event_response__descriptor);
}

RPC_HANDLER(terminate, Dtpb__TerminateRequest, dtpb__terminate_request__descriptor)
{
    (void)a;
    dt_error err = {0};
    dt_status st = dt_hub_terminate(rpc_hub(c), r->instanceid, payload(r->output),
                                    r->recursive, &err);
    done(c, st, &err, &dtpb__terminate_response__descriptor);
}

RPC_HANDLER(suspend, Dtpb__SuspendRequest, dtpb__suspend_request__descriptor)
{
    dt_error err = {0};
    const char *reason;
    dt_status st = json_text(a, sv(r->reason), &reason, &err);
    if (st == DT_OK)
        st = dt_hub_suspend(rpc_hub(c), r->instanceid, reason, &err);
    done(c, st, &err, &dtpb__suspend_response__descriptor);
}

RPC_HANDLER(resume, Dtpb__ResumeRequest, dtpb__resume_request__descriptor)
{
    dt_error err = {0};
    const char *reason;
    dt_status st = json_text(a, sv(r->reason), &reason, &err);
    if (st == DT_OK)
        st = dt_hub_resume(rpc_hub(c), r->instanceid, reason, &err);
    done(c, st, &err, &dtpb__resume_response__descriptor);
}

/* the reason is kept as the text the client gave: the ExecutionRewound the workers get says it */
RPC_HANDLER(rewind_instance, Dtpb__RewindInstanceRequest, dtpb__rewind_instance_request__descriptor)
{
    (void)a;
    dt_error err = {0};
    dt_status st = dt_hub_rewind(rpc_hub(c), r->instanceid, sv(r->reason), &err);
    done(c, st, &err, &dtpb__rewind_instance_response__descriptor);
}

RPC_HANDLER(query_instances, Dtpb__QueryInstancesRequest, dtpb__query_instances_request__descriptor)
{
    dt_query q;
    dt_error err = {0};
    dt_instance_state *states = NULL;
    size_t n = 0;
    const char *next = NULL;
    Dtpb__QueryInstancesResponse *resp = NULL;
    dt_status st = svc_query_from_msg(a, r->query, &q, &err);
    if (st == DT_OK && q.continuation && q.continuation[0] == '\0')
        q.continuation = NULL;
    /* ours: `dtask list --sort id` (the protocol's query has no order; newest first) */
    q.by_id = rpc_metadata_is(c, "dtask-list-order", "id");
    if (st == DT_OK)
        st = dt_hub_query(rpc_hub(c), &q, a, &states, &n, &next, &err);
    if (st == DT_OK)
        st = svc_query_response(a, states, n, next, q.with_payloads, &resp);
    if (st == DT_OK)
        rpc_reply(c, &resp->base);
    else
        rpc_fail_err(c, st, &err);
}

RPC_HANDLER(list_instance_ids, Dtpb__ListInstanceIdsRequest,
        dtpb__list_instance_ids_request__descriptor)
{
    dt_error err = {0};
    dt_query q;
    dt_instance_state *states = NULL;
    size_t n = 0;
    const char *next = NULL;
    Dtpb__ListInstanceIdsResponse *resp = NULL;
    dt_status st = svc_list_ids_from_msg(a, r, &q, &err);
    if (st == DT_OK)
        st = dt_hub_query(rpc_hub(c), &q, a, &states, &n, &next, &err);
    if (st == DT_OK)
        st = svc_list_ids_response(a, states, n, next, &resp);
    if (st == DT_OK)
        rpc_reply(c, &resp->base);
    else
        rpc_fail_err(c, st, &err);
}

/* purge_one: ID (and, RECURSIVE, what it started) into *N. A missing instance purges zero,
 * as the other backends answer. */
static dt_status purge_one(dt_hub *hub, const char *id, bool recursive, size_t *n,
                           dt_error *err)
{
    size_t k = 0;
    dt_status st = recursive ? dt_hub_purge_recursive(hub, id, &k, err)
                             : dt_hub_purge(hub, id, err);
    if (st == DT_OK && !recursive)
        k = 1;
    if (st == DT_ERR_NOT_FOUND)
        st = DT_OK;
    *n += k;
    return st;
}

/* PurgeInstances: by id (a live instance is refused: FAILED_PRECONDITION), by filter, or by
 * a batch of ids (bulk cleanup, as a filter: missing and live ones are skipped). With
 * recursive, each purged instance takes the finished sub-orchestrations it started along. */
RPC_HANDLER(purge_instances, Dtpb__PurgeInstancesRequest, dtpb__purge_instances_request__descriptor)
{
    dt_error err = {0};
    dt_status st = DT_OK;
    size_t n = 0;
    if (r->request_case == DTPB__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_ID) {
        st = purge_one(rpc_hub(c), r->instanceid, r->recursive, &n, &err);
    } else if (r->request_case == DTPB__PURGE_INSTANCES_REQUEST__REQUEST_PURGE_INSTANCE_FILTER) {
        dt_query q;
        st = svc_purge_filter_from_msg(a, r->purgeinstancefilter, &q, &err);
        if (st == DT_OK)
            st = r->recursive ? dt_hub_purge_where_recursive(rpc_hub(c), &q, &n, &err)
                              : dt_hub_purge_where(rpc_hub(c), &q, &n, &err);
    } else if (r->request_case == DTPB__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_BATCH) {
        const Dtpb__InstanceBatch *b = r->instancebatch;
        /* every id first: an empty one (the one a purge refuses) refuses the batch before
         * any of it is purged, not after some */
        for (size_t i = 0; st == DT_OK && b && i < b->n_instanceids; i++)
            if (b->instanceids[i] == NULL || b->instanceids[i][0] == '\0')
                st = dt_error_set(&err, DT_ERR_INVALID_ARG, "PurgeInstances: instanceBatch[%zu] "
                                  "is empty; nothing was purged", i);
        for (size_t i = 0; st == DT_OK && b && i < b->n_instanceids; i++) {
            st = purge_one(rpc_hub(c), b->instanceids[i], r->recursive, &n, &err);
            if (st == DT_ERR_STATE)
                st = DT_OK;   /* still running: left, as a filter leaves it */
        }
    } else {
        st = dt_error_set(&err, DT_ERR_INVALID_ARG,
                          "PurgeInstances: give an instanceId, a purgeInstanceFilter or an "
                          "instanceBatch");
    }
    if (st != DT_OK) {
        rpc_fail_err(c, st, &err);
        return;
    }
    Dtpb__PurgeInstancesResponse resp = DTPB__PURGE_INSTANCES_RESPONSE__INIT;
    Dtpb__BoolValue complete = DTPB__BOOL_VALUE__INIT;
    complete.value = true;
    resp.deletedinstancecount = (int32_t)n;
    resp.iscomplete = &complete;
    rpc_reply(c, &resp.base);
}

RPC_HANDLER(restart_instance, Dtpb__RestartInstanceRequest,
        dtpb__restart_instance_request__descriptor)
{
    (void)a;
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_error err = {0};
    dt_status st =
        dt_hub_restart(rpc_hub(c), r->instanceid, r->restartwithnewinstanceid, id, &err);
    if (st != DT_OK) {
        rpc_fail_err(c, st, &err);
        return;
    }
    Dtpb__RestartInstanceResponse resp = DTPB__RESTART_INSTANCE_RESPONSE__INIT;
    resp.instanceid = id;
    rpc_reply(c, &resp.base);
}

/* A StreamInstanceHistory call as its history is walked. */
typedef struct history_call {
    rpc_call *c;
    const Dtpb__StreamInstanceHistoryRequest *r;
    dt_arena *a;       /* the call's */
    bool started;      /* the first window was seen */
    bool answered;     /* the call was finished on the way */
} history_call;

/* requested_execution: refuse (false, after answering) a request for an execution of the
 * instance other than the current one: the one whose ExecutionStarted opens the history (in
 * EV, its first window), else the row's (a history read before it began). */
static bool requested_execution(history_call *h, const dt_event *ev, size_t n)
{
    const Dtpb__StreamInstanceHistoryRequest *r = h->r;
    if (r->executionid == NULL || r->executionid->value == NULL || !r->executionid->value[0])
        return true;
    const char *current = NULL;
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == DT_EVENT_EXECUTION_STARTED && ev[i].execution_id)
            current = ev[i].execution_id;
    dt_instance_state *s = NULL;
    dt_error err = {0};
    if (current == NULL && dt_hub_get(rpc_hub(h->c), r->instanceid, h->a, &s, &err) == DT_OK)
        current = s->execution_id;
    if (current == NULL)
        current = "";
    if (strcmp(current, r->executionid->value) == 0)
        return true;
    char msg[400];
    snprintf(msg, sizeof msg, "instance '%.100s' has no execution '%.64s' (its current one is "
             "'%.64s')", r->instanceid, r->executionid->value, current);
    rpc_finish(h->c, NULL, 0, GRPC_STATUS_NOT_FOUND, msg);
    return false;
}

/* send_window (dt_history_fn): a window's events as HistoryChunk messages of at most
 * HISTORY_CHUNK_BYTES each (one event more only when a single event is larger). */
static dt_status send_window(void *arg, const dt_event *ev, size_t n, dt_arena *a,
                             dt_error *err)
{
    history_call *h = arg;
    if (!h->started) {
        h->started = true;
        if (!requested_execution(h, ev, n)) {
            h->answered = true;
            return DT_ERR_NOT_FOUND;
        }
    }
    Dtpb__HistoryChunk *all = NULL;
    dt_status st = svc_history_chunk(a, ev, n, &all);
    for (size_t at = 0; st == DT_OK && at < n;) {
        Dtpb__HistoryChunk chunk = *all;
        size_t bytes = 0, k = 0;
        while (at + k < n) {
            size_t e = dtpb__history_event__get_packed_size(all->events[at + k]);
            if (k > 0 && bytes + e > HISTORY_CHUNK_BYTES)
                break;
            bytes += e;
            k++;
        }
        chunk.events = all->events + at;
        chunk.n_events = k;
        at += k;
        uint8_t *buf = NULL;
        size_t len = 0;
        st = pb_pack(a, &chunk.base, &buf, &len);
        if (st == DT_OK && !rpc_send(h->c, buf, len))
            st = dt_error_set(err, DT_ERR_SHUTDOWN, "the client went away");
    }
    return st;
}

/* The history, read and sent a window at a time (dt_hub_walk_history), so a call holds one
 * window, never a whole history (up to DT_HISTORY_MAX, and as many calls as --max-calls);
 * what it sends waits for room under --max-held-mb. A worker with gRPC's default 4 MiB
 * receive limit reads any history whose events each fit in it. A history replaced between
 * two windows ends the call ABORTED: what was sent and what would follow are of different
 * executions, and the caller reads it again. */
RPC_HANDLER(stream_history, Dtpb__StreamInstanceHistoryRequest,
        dtpb__stream_instance_history_request__descriptor)
{
    history_call h = {.c = c, .r = r, .a = a};
    dt_error err = {0};
    bool replaced;
    dt_status st = dt_hub_walk_history(rpc_hub(c), r->instanceid, send_window, &h, &replaced,
                                       &err);
    if (h.answered)
        return;
    if (replaced) {
        char msg[300];
        snprintf(msg, sizeof msg, "the history of '%.100s' was replaced (continue-as-new or "
                 "rewind) while it was read; read it again", r->instanceid);
        rpc_finish(c, NULL, 0, GRPC_STATUS_ABORTED, msg);
    } else if (st == DT_OK) {
        rpc_finish(c, NULL, 0, GRPC_STATUS_OK, "");
    } else {
        rpc_fail_err(c, st, &err);
    }
}

/* task_hub_of: the hub CreateTaskHub / DeleteTaskHub act on (the call's taskhub metadata),
 * or NULL after answering: a server of one hub has no others to make or delete. */
static const char *task_hub_of(rpc_call *c)
{
    if (rpc_hubs(c) == NULL) {
        rpc_finish(c, NULL, 0, GRPC_STATUS_UNIMPLEMENTED, "this server serves one task hub; "
                   "dtask serve serves many");
        return NULL;
    }
    if (rpc_task_hub(c)[0] == '\0') {
        rpc_fail(c, DT_ERR_INVALID_ARG, "the taskhub metadata is longer than a task hub name "
                 "may be");
        return NULL;
    }
    return rpc_task_hub(c);
}

/* CreateTaskHub: the hub is there after (opened if it was not); recreateIfExists empties it
 * first. */
RPC_HANDLER(create_task_hub, Dtpb__CreateTaskHubRequest, dtpb__create_task_hub_request__descriptor)
{
    (void)a;
    const char *name = task_hub_of(c);
    if (name == NULL)
        return;
    dt_error err = {0};
    dt_status st = DT_OK;
    if (r->recreateifexists)
        st = dt_hub_set_delete(rpc_hubs(c), name, &err);
    dt_hub_ref *ref = NULL;
    if (st == DT_OK || st == DT_ERR_NOT_FOUND)
        st = dt_hub_set_get(rpc_hubs(c), name, &ref, &err);
    dt_hub_ref_put(ref);
    done(c, st, &err, &dtpb__create_task_hub_response__descriptor);
}

/* DeleteTaskHub: the hub and everything in it; its work item streams end with NOT_FOUND. */
RPC_HANDLER(delete_task_hub, Dtpb__DeleteTaskHubRequest, dtpb__delete_task_hub_request__descriptor)
{
    (void)a;
    (void)r;
    const char *name = task_hub_of(c);
    if (name == NULL)
        return;
    dt_error err = {0};
    dt_status st = dt_hub_set_delete(rpc_hubs(c), name, &err);
    done(c, st, &err, &dtpb__delete_task_hub_response__descriptor);
}

/* ---- entities ---------------------------------------------------------------------------- */

RPC_HANDLER(signal_entity, Dtpb__SignalEntityRequest, dtpb__signal_entity_request__descriptor)
{
    dt_error err = {0};
    pb_reader rd = PB_READER(a, &err, "SignalEntityRequest");
    dt_time at = pb_r_time(&rd, r->scheduledtime, "scheduledTime");
    dt_status st = rd.status;
    if (st == DT_OK)
        st = dt_hub_signal_entity(rpc_hub(c), r->instanceid, r->name, payload(r->input), at,
                                  r->requestid, &err);
    done(c, st, &err, &dtpb__signal_entity_response__descriptor);
}

/* GetEntity: exists=false for an entity without state (it exists while it has state). */
RPC_HANDLER(get_entity, Dtpb__GetEntityRequest, dtpb__get_entity_request__descriptor)
{
    dt_entity_state *e = NULL;
    dt_error err = {0};
    dt_status st = dt_hub_get_entity(rpc_hub(c), r->instanceid, r->includestate, a, &e, &err);
    Dtpb__GetEntityResponse resp = DTPB__GET_ENTITY_RESPONSE__INIT;
    if (st == DT_OK) {
        resp.exists = true;
        st = svc_entity_metadata(a, e, r->includestate, &resp.entity);
        if (st != DT_OK)
            dt_error_set(&err, st, "cannot encode the entity");
    } else if (st == DT_ERR_NOT_FOUND) {
        st = DT_OK;
    }
    if (st == DT_OK)
        rpc_reply(c, &resp.base);
    else
        rpc_fail_err(c, st, &err);
}

RPC_HANDLER(query_entities, Dtpb__QueryEntitiesRequest, dtpb__query_entities_request__descriptor)
{
    dt_error err = {0};
    dt_entity_query q;
    dt_entity_state *rows = NULL;
    size_t n = 0;
    const char *next = NULL;
    dt_status st = svc_entity_query_from_msg(a, r->query, &q, &err);
    if (st == DT_OK)
        st = dt_hub_query_entities(rpc_hub(c), &q, a, &rows, &n, &next, &err);
    Dtpb__QueryEntitiesResponse resp = DTPB__QUERY_ENTITIES_RESPONSE__INIT;
    Dtpb__EntityMetadata **list = st == DT_OK ? dt_arena_alloc(a, (n + 1) * sizeof *list) : NULL;
    if (st == DT_OK && list == NULL)
        st = dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == DT_OK && i < n; i++)
        if ((st = svc_entity_metadata(a, &rows[i], q.with_state, &list[i])) != DT_OK)
            dt_error_set(&err, st, "cannot encode entity '%s'", rows[i].entity_id);
    if (st != DT_OK) {
        rpc_fail_err(c, st, &err);
        return;
    }
    pb_builder b = PB_BUILDER(a);
    resp.entities = list;
    resp.n_entities = n;
    resp.continuationtoken = pb_b_sv(&b, next);
    rpc_reply(c, &resp.base);
}

/* CleanEntityStorage: everything in one pass, so never a continuation token. */
RPC_HANDLER(clean_entity_storage, Dtpb__CleanEntityStorageRequest,
        dtpb__clean_entity_storage_request__descriptor)
{
    (void)a;
    dt_error err = {0};
    size_t removed = 0, released = 0;
    dt_status st = dt_hub_clean_entities(rpc_hub(c), r->removeemptyentities,
                                         r->releaseorphanedlocks, &removed, &released, &err);
    if (st != DT_OK) {
        rpc_fail_err(c, st, &err);
        return;
    }
    Dtpb__CleanEntityStorageResponse resp = DTPB__CLEAN_ENTITY_STORAGE_RESPONSE__INIT;
    resp.emptyentitiesremoved = removed > INT32_MAX ? INT32_MAX : (int32_t)removed;
    resp.orphanedlocksreleased = released > INT32_MAX ? INT32_MAX : (int32_t)released;
    rpc_reply(c, &resp.base);
}

/* What we serve; the rest of the service answers UNIMPLEMENTED, naming the method. */
const rpc_method rpc_client_methods[] = {
    {"Hello", hello, NULL},
    {"StartInstance", start_instance, start_instance_async},
    {"GetInstance", get_instance, NULL},
    {"WaitForInstanceStart", wait_start, wait_start_async},
    {"WaitForInstanceCompletion", wait_completion, wait_completion_async},
    {"RaiseEvent", raise_event, NULL},
    {"TerminateInstance", terminate, NULL},
    {"SuspendInstance", suspend, NULL},
    {"ResumeInstance", resume, NULL},
    {"QueryInstances", query_instances, NULL},
    {"PurgeInstances", purge_instances, NULL},
    {"RestartInstance", restart_instance, NULL},
    {"StreamInstanceHistory", stream_history, NULL},
    {"RewindInstance", rewind_instance, NULL},
    {"ListInstanceIds", list_instance_ids, NULL},
    {"CreateTaskHub", create_task_hub, NULL},
    {"DeleteTaskHub", delete_task_hub, NULL},
    {"SignalEntity", signal_entity, NULL},
    {"GetEntity", get_entity, NULL},
    {"QueryEntities", query_entities, NULL},
    {"CleanEntityStorage", clean_entity_storage, NULL},
    {"SkipGracefulOrchestrationTerminations", NULL, NULL},
    {NULL, NULL, NULL},
};
