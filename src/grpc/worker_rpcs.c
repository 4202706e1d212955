/* worker_rpcs.c — the calls by which connected workers complete or abandon the work items
 * GetWorkItems handed them (get_work_items.c): a completion is matched in the registry of
 * work in flight (workers.c) by its token or, when it brings none, by instance id (and task
 * id, for an activity); one that matches nothing in flight is refused and changes nothing. A
 * completion in chunks is kept with its item until its last chunk. Also the table of the
 * worker side's methods. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "workers.h"

/* Bounds on one chunked completion: chunks, and bytes of them held until the last. */
#define CHUNKS_MAX 4096
#define CHUNK_BYTES_MAX ((size_t)256 << 20)

/* A completion the server cannot apply (it refers to what we do not serve, or breaks a rule
 * of the protocol) fails what it completes, with details naming what was wrong, as the
 * Durable Task Scheduler does: redelivering it would only get the same answer again. Out of
 * memory is not the worker's doing: the item goes back, after a back-off. */
#define REFUSED_TYPE "InvalidWorkerResponse"

static bool worker_fault(dt_status st)
{
    return st == DT_ERR_INVALID_ARG || st == DT_ERR_UNIMPLEMENTED;
}

/* fail_episode: F's instance fails because the worker's completion, refused with ST for what
 * ERR says, cannot be applied; ERR then says that too. The status to answer the worker with
 * (another, with ERR saying why, if the instance could not be failed). */
static dt_status fail_episode(dt_hub *hub, inflight *f, dt_arena *a, dt_status st,
                              dt_error *err)
{
    dt_error refused = *err;
    char msg[sizeof refused.message + 80];
    snprintf(msg, sizeof msg, "the worker's completion of this episode could not be applied: %s",
             refused.message);
    dt_status failed = inflight_fail(hub, f, a, REFUSED_TYPE, msg, err);
    if (failed != DT_OK)
        return failed;
    dt_error_set(err, st, "%s; the instance was failed with %s", refused.message, REFUSED_TYPE);
    return st;
}

static void unknown_token(rpc_call *c, const char *token)
{
    char msg[240];
    snprintf(msg, sizeof msg,
             "%s: no work item is in flight under completion token '%.60s' (stale, already "
             "completed, or never handed out); nothing was changed",
             rpc_method_name(c), token ? token : "");
    rpc_finish(c, NULL, 0, GRPC_STATUS_NOT_FOUND, msg);
}

static void reply_done(rpc_call *c)
{
    rpc_finish(c, (const uint8_t *)"", 0, GRPC_STATUS_OK, "");   /* CompleteTaskResponse{} */
}

/* reply: the answer to a completion or abandon: done, or the error ST (ERR says why). */
static void reply(rpc_call *c, dt_status st, const dt_error *err)
{
    if (st == DT_OK)
        reply_done(c);
    else
        rpc_fail_err(c, st, err);
}

/* kept_bytes: the memory F's chunks so far take (their copies and the array of them). */
static size_t kept_bytes(const inflight *f)
{
    return dt_arena_held(f->chunk_arena) + f->cap_chunk_acts * sizeof *f->chunk_acts;
}

/* add_chunk: the actions of DONE (LEN bytes on the wire) to F's chunked completion so far,
 * copied (they live in the request's arena). What the copies take, not the bytes they came
 * in (a 6-byte action is a dt_action of a hundred and more), is held against the server's
 * bound (C's) until the entry is freed: a worker holds as many items as it likes. A
 * completion is kept to half that bound, as its last chunk is held twice for a while (as its
 * call's request too): larger, it could never be taken, and DT_ERR_INVALID_ARG says so. */
static dt_status add_chunk(rpc_call *c, inflight *f, const svc_orch_completion *done,
                           size_t len, dt_error *err)
{
    size_t max = rpc_held_max(c) / 2;
    max = max < CHUNK_BYTES_MAX ? max : CHUNK_BYTES_MAX;
    if (f->next_chunk >= CHUNKS_MAX || f->chunk_bytes + len > max)
        goto too_big;
    if (f->chunk_arena == NULL && (f->chunk_arena = dt_arena_new()) == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    /* copied first, then counted: the copy's size is known only then, and the request's own
     * tree, at least as large, was held meanwhile; refused, it all goes with the entry */
    size_t before = kept_bytes(f), n = done->result.n_actions;
    dt_action *v = dt_grow(f->chunk_acts, &f->cap_chunk_acts, f->n_chunk_acts + n + 1,
                           sizeof *v);
    if (v == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    f->chunk_acts = v;
    for (size_t i = 0; i < n; i++)
        if (dt_action_copy(f->chunk_arena, &done->result.actions[i],
                           &f->chunk_acts[f->n_chunk_acts + i]) != DT_OK)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    size_t kept = kept_bytes(f) - before;
    if (f->chunk_bytes + kept > max)
        goto too_big;
    char why[320];
    if (!rpc_hold_kept(c, kept, why, sizeof why))
        return dt_error_set(err, DT_ERR_NOMEM, "%s", why);
    f->held_by = rpc_server_of(c);
    f->chunk_bytes += kept;   /* counted now, so that inflight_free gives it back */
    f->chunk_at = dt_now();
    f->n_chunk_acts += n;
    f->next_chunk++;
    return DT_OK;

too_big:
    return dt_error_set(err, DT_ERR_INVALID_ARG,
                        "a chunked completion may have at most %d chunks and %zu bytes kept "
                        "in memory (%zu MiB, and half of the server's --max-held-mb: it is "
                        "kept until its last chunk)", CHUNKS_MAX, max, CHUNK_BYTES_MAX >> 20);
}

/* complete_chunk: one chunk of a chunked completion (the .NET and Java SDKs split one too
 * large for a message: every chunk under the same token, chunkIndex 0, 1, ..., isPartial on
 * all but the last). Chunks are kept with the item until the last, which commits them all
 * at once. A chunk out of order is refused and the item given back; one past the bounds
 * (add_chunk) fails the instance, as the item redelivered would only be refused again. */
static void complete_chunk(rpc_call *c, dt_arena *a, const Dtpb__OrchestratorResponse *r,
                           const svc_orch_completion *done)
{
    worker_registry *w = rpc_workers(c);
    dt_error err = {0};
    if (r->completiontoken == NULL || r->completiontoken[0] == '\0') {
        rpc_fail(c, DT_ERR_INVALID_ARG, "CompleteOrchestratorTask: a chunk of a chunked "
                 "completion must carry its completion token");
        return;
    }
    if (workers_wrong_ids(c, w, rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION,
                          r->instanceid, 0))
        return;
    inflight *f = workers_claim(w, rpc_hub(c), r->completiontoken);
    if (f == NULL) {
        unknown_token(c, r->completiontoken);
        return;
    }
    bool in_order = done->chunk_index == f->next_chunk;
    dt_status st = in_order
                       ? add_chunk(c, f, done, protobuf_c_message_get_packed_size(&r->base), &err)
                       : dt_error_set(&err, DT_ERR_INVALID_ARG,
                                      "chunk %d of a chunked completion arrived where chunk "
                                      "%d was due", (int)done->chunk_index,
                                      (int)f->next_chunk);
    if (st != DT_OK) {
        /* unlisted, it is ours again (else its stream ended meanwhile and gave it back) */
        if (workers_unlist(w, f, f->token)) {
            if (in_order && worker_fault(st))   /* over the bounds: it would be again */
                st = fail_episode(rpc_hub(c), f, a, st, &err);
            else   /* nothing applied; redelivered after a back-off */
                inflight_give_back_for(f, st);
        }
        rpc_fail_err(c, st, &err);
        return;
    }
    if (done->partial) {
        workers_unclaim(w, f);
        reply_done(c);
        return;
    }
    workers_unlist(w, f, f->token);   /* the last chunk: the entry is ours (a busy one is taken by no one) */
    dt_orch_result all = done->result;   /* the last chunk's custom status and span */
    all.actions = f->chunk_acts;
    all.n_actions = f->n_chunk_acts;
    st = dt_hub_complete_orchestration(rpc_hub(c), f->orch, &all, &err);
    inflight_free(f);
    reply(c, st, &err);
}

/* remember_session: F's stream completed its episode with RESULT (NULL: it did not), so the
 * instance's next episode may leave the past out for that stream, unless RESULT ends it.
 * ID: F's instance id (F's item may be gone by then). */
static void remember_session(worker_registry *w, const inflight *f, const char *id,
                             const dt_orch_result *result)
{
    if (!f->sessions)
        return;
    bool ends = result == NULL;
    for (size_t i = 0; result && i < result->n_actions; i++)
        ends |= result->actions[i].type == DT_ACTION_COMPLETE_ORCHESTRATION ||
                result->actions[i].type == DT_ACTION_REWIND;
    workers_hint_set(w, f->hub, id, ends ? 0 : f->stream);
}

RPC_HANDLER(complete_orchestrator, Dtpb__OrchestratorResponse,
            dtpb__orchestrator_response__descriptor)
{
    svc_orch_completion done;
    dt_error err = {0};
    dt_status st = svc_orchestrator_response_from_msg(a, r, &done, &err);
    if (st == DT_OK && done.chunk_index >= 0) {
        complete_chunk(c, a, r, &done);
        return;
    }
    worker_registry *w = rpc_workers(c);
    inflight *f = workers_take(w, rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION,
                               r->instanceid, 0);
    if (f == NULL) {
        if (!workers_wrong_ids(c, w, rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION,
                               r->instanceid, 0) &&
            !workers_chunks_begun(c, w, rpc_hub(c), r->completiontoken))
            unknown_token(c, r->completiontoken);
        return;
    }
    dt_orch_request req;
    dt_hub_orch_request(f->orch, &req);
    char id[DT_INSTANCE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", req.instance_id);
    if (st == DT_OK && done.requires_history) {
        /* the worker has no session for a past we left out (the Durable Task Framework's
         * answer to that): send it again, whole, at once */
        remember_session(w, f, id, NULL);
        inflight_give_back(f, false);
    } else if (st == DT_OK) {
        /* before the commit: the instance's next lease comes only after it */
        remember_session(w, f, id, &done.result);
        st = dt_hub_complete_orchestration(rpc_hub(c), f->orch, &done.result, &err);
        if (st != DT_OK)
            remember_session(w, f, id, NULL);
        inflight_free(f);
    } else if (worker_fault(st)) {
        st = fail_episode(rpc_hub(c), f, a, st, &err);
    } else {
        inflight_give_back_for(f, st);
    }
    reply(c, st, &err);
}

/* The asynchronous completions: on the poller, the common case (a known token, a result
 * that reads) goes to the group commit without a thread, and the answer goes out from the
 * hub once the commit is durable. Anything else (no such token, a late result, chunks, an
 * unreadable result) is served by the blocking handler on a thread, as before. */
static void completed(void *arg, dt_status st, const dt_error *err)
{
    rpc_pending *p = arg;
    reply(p->call, st, err);
    rpc_pending_free(p);
}

/* An orchestration's asynchronous completion, and what its session hint needs if the
 * commit fails (in the pending's arena). */
typedef struct orch_pending {
    rpc_pending *p;
    const dt_hub *hub;
    const char *instance_id;
    bool sessions;
} orch_pending;

/* waits: an activity's result waits in the hub for room (dt_hub_waits_fn). */
static bool waits(void *arg)
{
    rpc_pending *p = arg;
    return rpc_waits(p->call);
}

static void orchestration_completed(void *arg, dt_status st, const dt_error *err)
{
    orch_pending *o = arg;
    if (st != DT_OK && o->sessions)   /* not committed: its next episode gets the past */
        workers_hint_set(rpc_workers(o->p->call), o->hub, o->instance_id, 0);
    completed(o->p, st, err);
}

static bool complete_orchestrator_async(rpc_call *c)
{
    rpc_pending *p = rpc_pending_new(c);
    Dtpb__OrchestratorResponse *r = NULL;
    svc_orch_completion done;
    dt_error err = {0};
    inflight *f = NULL;
    orch_pending *o = p ? dt_arena_alloc(p->arena, sizeof *o) : NULL;
    if (o && rpc_peek_msg(c, p->arena, &dtpb__orchestrator_response__descriptor, (void **)&r) &&
        svc_orchestrator_response_from_msg(p->arena, r, &done, &err) == DT_OK &&
        done.chunk_index < 0 && !done.requires_history)
        f = workers_take(rpc_workers(c), rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION,
                         r->instanceid, 0);
    if (f == NULL || (o->instance_id = dt_arena_strdup(p->arena, f->orch->instance_id)) == NULL) {
        if (f)
            inflight_give_back(f, false);   /* out of memory: the worker hears of it, retries */
        rpc_pending_free(p);
        return false;
    }
    o->p = p;
    o->hub = f->hub;
    o->sessions = f->sessions;
    /* before the commit: the instance's next lease comes only after it */
    remember_session(rpc_workers(c), f, o->instance_id, &done.result);
    dt_orch_item *item = f->orch;
    dt_hub *hub = f->hub;
    inflight_free(f);
    dt_hub_complete_orchestration_async(hub, item, &done.result, orchestration_completed, o);
    return true;
}

static bool complete_activity_async(rpc_call *c)
{
    rpc_pending *p = rpc_pending_new(c);
    Dtpb__ActivityResponse *r = NULL;
    svc_activity_completion done;
    dt_error err = {0};
    inflight *f = NULL;
    if (p && rpc_peek_msg(c, p->arena, &dtpb__activity_response__descriptor, (void **)&r) &&
        svc_activity_response_from_msg(p->arena, r, &done, &err) == DT_OK)
        f = workers_take(rpc_workers(c), rpc_hub(c), r->completiontoken, DT_WORK_ACTIVITY,
                         r->instanceid, r->taskid);
    if (f == NULL) {
        rpc_pending_free(p);
        return false;
    }
    dt_activity_item *item = f->act;
    dt_hub *hub = f->hub;
    inflight_free(f);
    /* the SDKs send "" for an activity that returned nothing */
    const char *result = done.result && done.result[0] ? done.result : NULL;
    dt_hub_complete_activity_async(hub, item, result, done.failure, completed, waits, p);
    return true;
}

/* late_result: R completes an activity given back when its stream ended (a worker that
 * reconnected): deliver its result if this is the first, acknowledge and drop it if not.
 * False if R's token is not one of those. */
static bool late_result(rpc_call *c, dt_arena *a, const Dtpb__ActivityResponse *r)
{
    late_activity copy = {0};
    char msg[400] = "";
    switch (workers_released(rpc_workers(c), c, r->completiontoken, r->instanceid, r->taskid,
                             a, &copy, msg, sizeof msg)) {
    case LATE_UNKNOWN:
        return false;
    case LATE_WRONG_IDS:
        rpc_finish(c, NULL, 0, GRPC_STATUS_INVALID_ARGUMENT, msg);
        return true;
    case LATE_AGAIN:
        reply_done(c);
        return true;
    case LATE_FIRST:
        break;
    }
    svc_activity_completion done;
    dt_error err = {0};
    dt_status st = copy.instance_id ? svc_activity_response_from_msg(a, r, &done, &err)
                                    : dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
    const char *result = st == DT_OK && done.result && done.result[0] ? done.result : NULL;
    if (st == DT_OK)
        st = dt_hub_deliver_activity_result(rpc_hub(c), copy.instance_id, copy.execution_id,
                                            copy.task_id, result, done.failure, &err);
    if (st == DT_ERR_NOT_FOUND)
        st = DT_OK;   /* the instance is gone: nothing left to tell */
    if (st != DT_OK)   /* not taken: a corrected one may come */
        workers_released_unuse(rpc_workers(c), c, r->completiontoken);
    reply(c, st, &err);
    return true;
}

/* A result committed from a thread that waits for it (complete_waiting). */
typedef struct waited {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    dt_status st;
    dt_error err;
    rpc_call *c;
} waited;

static void waited_done(void *arg, dt_status st, const dt_error *err)
{
    waited *w = arg;
    pthread_mutex_lock(&w->mu);
    w->st = st;
    if (err)
        w->err = *err;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static bool waited_waits(void *arg)
{
    return rpc_waits(((waited *)arg)->c);
}

/* complete_waiting: dt_hub_complete_activity for C's handler thread, but a result that waits
 * for room (dt_hub_waits_fn) lets C's completion stream read on meanwhile (rpc_waits); the
 * thread waits for the outcome. Frees ITEM. */
static dt_status complete_waiting(rpc_call *c, dt_activity_item *item, const char *result,
                                  const dt_failure *failure, dt_error *err)
{
    waited w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .c = c};
    dt_hub_complete_activity_async(rpc_hub(c), item, result, failure, waited_done,
                                   waited_waits, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    if (w.st != DT_OK && err)
        *err = w.err;
    return w.st;
}

RPC_HANDLER(complete_activity, Dtpb__ActivityResponse, dtpb__activity_response__descriptor)
{
    worker_registry *w = rpc_workers(c);
    inflight *f = workers_take(w, rpc_hub(c), r->completiontoken, DT_WORK_ACTIVITY,
                               r->instanceid, r->taskid);
    if (f == NULL) {
        if (!workers_wrong_ids(c, w, rpc_hub(c), r->completiontoken, DT_WORK_ACTIVITY,
                               r->instanceid, r->taskid) &&
            !late_result(c, a, r))
            unknown_token(c, r->completiontoken);
        return;
    }
    svc_activity_completion done;
    dt_error err = {0};
    dt_status st = svc_activity_response_from_msg(a, r, &done, &err);
    if (st == DT_OK) {
        /* the SDKs send "" for an activity that returned nothing */
        const char *result = done.result && done.result[0] ? done.result : NULL;
        st = complete_waiting(c, f->act, result, done.failure, &err);
        inflight_free(f);
    } else if (worker_fault(st)) {
        /* the activity's result is unreadable: it failed, and the orchestration decides */
        const dt_failure *why = dt_failure_new(a, REFUSED_TYPE, "the worker's result of this "
                                               "activity could not be applied: %s", err.message);
        dt_error refused = err;
        dt_status failed = why ? complete_waiting(c, f->act, NULL, why, &err)
                               : (dt_hub_abandon_activity(rpc_hub(c), f->act, NULL), DT_ERR_NOMEM);
        inflight_free(f);
        if (failed != DT_OK)
            st = dt_error_set(&err, failed, "%s", dt_strerror(failed));
        else
            dt_error_set(&err, st, "%s; the activity was failed with %s", refused.message,
                         REFUSED_TYPE);
    } else {
        inflight_give_back(f, true);
    }
    reply(c, st, &err);
}

static void abandon(rpc_call *c, int kind)
{
    static const ProtobufCMessageDescriptor *const desc[] = {
        [DT_WORK_ORCHESTRATION] = &dtpb__abandon_orchestration_task_request__descriptor,
        [DT_WORK_ACTIVITY] = &dtpb__abandon_activity_task_request__descriptor,
        [DT_WORK_ENTITY] = &dtpb__abandon_entity_task_request__descriptor,
    };
    dt_arena *a = dt_arena_new();
    /* the three abandon requests are { string completionToken = 1; } */
    Dtpb__AbandonActivityTaskRequest *r = NULL;
    if (a == NULL) {   /* unread: a completion stream's ends, its items go back */
        rpc_finish(c, NULL, 0, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (rpc_recv_msg(c, a, desc[kind], (void **)&r)) {
        worker_registry *w = rpc_workers(c);
        inflight *f = workers_take(w, rpc_hub(c), r->completiontoken, kind, NULL, 0);
        if (f == NULL) {
            unknown_token(c, r->completiontoken);
        } else {
            inflight_give_back(f, true);
            reply_done(c);   /* Abandon*Response{} */
        }
    }
    dt_arena_free(a);
}

static void abandon_orchestration(rpc_call *c) { abandon(c, DT_WORK_ORCHESTRATION); }
static void abandon_activity(rpc_call *c) { abandon(c, DT_WORK_ACTIVITY); }
static void abandon_entity(rpc_call *c) { abandon(c, DT_WORK_ENTITY); }

/* complete_entity: a worker's EntityBatchResult, matched by its token only (an entity batch
 * given back may have been leased again with other messages: a result under an old token
 * must not apply). One the hub cannot read or apply is given back, after a back-off. */
RPC_HANDLER(complete_entity, Dtpb__EntityBatchResult, dtpb__entity_batch_result__descriptor)
{
    worker_registry *w = rpc_workers(c);
    inflight *f = r->completiontoken && r->completiontoken[0]
                      ? workers_take(w, rpc_hub(c), r->completiontoken, DT_WORK_ENTITY, NULL, 0)
                      : NULL;
    if (f == NULL) {
        unknown_token(c, r->completiontoken);
        return;
    }
    dt_entity_result res;
    dt_error err = {0};
    dt_status st = svc_entity_result_from_msg(a, r, &res, &err);
    if (st == DT_OK) {
        st = dt_hub_complete_entity(rpc_hub(c), f->ent, &res, &err);
        f->ent = NULL;
        inflight_free(f);
    } else {
        inflight_give_back(f, true);
    }
    reply(c, st, &err);
}

const rpc_method rpc_worker_methods[] = {
    {"GetWorkItems", rpc_get_work_items, NULL},
    /* ours: a worker's completions on one stream (server.c serves its messages with the
     * handlers below); on a thread only when the call's task hub had to be opened first */
    {DT_COMPLETION_STREAM_METHOD, rpc_stream_begin, NULL},
    {"CompleteOrchestratorTask", complete_orchestrator, complete_orchestrator_async},
    {"CompleteActivityTask", complete_activity, complete_activity_async},
    {"AbandonTaskOrchestratorWorkItem", abandon_orchestration, NULL},
    {"AbandonTaskActivityWorkItem", abandon_activity, NULL},
    {"CompleteEntityTask", complete_entity, NULL},
    {"AbandonTaskEntityWorkItem", abandon_entity, NULL},
    {NULL, NULL, NULL},
};

