/* worker_rpcs.c — the worker side of TaskHubSidecarService: the GetWorkItems stream that
 * hands orchestration and activity work items to connected workers, and the calls by which
 * they complete or abandon them. Every item handed out is registered under a completion
 * token; a completion is matched by its token or, when it brings none, by instance id (and
 * task id, for an activity); one that matches nothing in flight is refused and changes
 * nothing. When a worker's stream ends, whatever it still held goes back to the hub. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "service/service.h"

#define DEFAULT_MAX_IN_FLIGHT 100   /* per stream and kind, unless the worker asks otherwise */
#define POLL_MS 200

typedef struct inflight {
    char token[48];
    uint64_t stream;
    dt_orch_item *orch;
    dt_activity_item *act;
    /* packed and on its way to the worker: from then on a completion may take the entry
     * (and free it), so the stream's thread no longer reads it (w->mu) */
    bool handed;
    struct inflight *next;
} inflight;

struct worker_registry {
    dt_hub *hub;
    pthread_mutex_t mu;         /* guards the list and the counters */
    inflight *items;
    uint64_t next_stream, next_token;
};

/* give_back: abandon F's item for redelivery (the hub frees it) and free F. */
static void give_back(worker_registry *w, inflight *f)
{
    if (f->orch)
        dt_hub_abandon_orchestration(w->hub, f->orch, NULL);
    else
        dt_hub_abandon_activity(w->hub, f->act, NULL);
    free(f);
}

worker_registry *workers_new(dt_hub *hub)
{
    worker_registry *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->hub = hub;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

void workers_free(worker_registry *w)
{
    if (w == NULL)
        return;
    /* streams have ended by now and given their items back; anything left goes back too */
    while (w->items) {
        inflight *f = w->items;
        w->items = f->next;
        give_back(w, f);
    }
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- the registry of work in flight ------------------------------------------------------ */

static uint64_t new_stream(worker_registry *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t id = ++w->next_stream;
    pthread_mutex_unlock(&w->mu);
    return id;
}

/* enlist: register an item for STREAM under a new completion token (the entry's token); not
 * handed yet, so no completion can take it. NULL when out of memory. */
static inflight *enlist(worker_registry *w, uint64_t stream, dt_orch_item *o,
                        dt_activity_item *a)
{
    inflight *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->stream = stream;
    f->orch = o;
    f->act = a;
    pthread_mutex_lock(&w->mu);
    snprintf(f->token, sizeof f->token, "%c%llu-%llu", o ? 'o' : 'a',
             (unsigned long long)stream, (unsigned long long)++w->next_token);
    f->next = w->items;
    w->items = f;
    pthread_mutex_unlock(&w->mu);
    return f;
}

/* take: remove and return the handed entry with TOKEN (or, without a token, the orchestration
 * of INSTANCE_ID, or the activity INSTANCE_ID/TASK_ID), or NULL. */
static inflight *take(worker_registry *w, const char *token, bool orch, const char *instance_id,
                      int32_t task_id)
{
    pthread_mutex_lock(&w->mu);
    inflight *found = NULL;
    for (inflight **p = &w->items; *p; p = &(*p)->next) {
        inflight *f = *p;
        bool match;
        if (!f->handed)
            match = false;
        else if (token && token[0])
            match = strcmp(f->token, token) == 0;
        else if (orch)
            match = f->orch && instance_id && strcmp(f->orch->instance_id, instance_id) == 0;
        else
            match = f->act && instance_id && strcmp(f->act->instance_id, instance_id) == 0 &&
                    f->act->task_id == task_id;
        if (match && (orch ? f->orch != NULL : f->act != NULL)) {
            *p = f->next;
            found = f;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* hand: F goes to the worker now; completions may take it. */
static void hand(worker_registry *w, inflight *f)
{
    pthread_mutex_lock(&w->mu);
    f->handed = true;
    pthread_mutex_unlock(&w->mu);
}

/* unlist: remove F if it is still registered (no completion took it); true if so, and F is
 * the caller's again. */
static bool unlist(worker_registry *w, inflight *f)
{
    bool found = false;
    pthread_mutex_lock(&w->mu);
    for (inflight **p = &w->items; *p; p = &(*p)->next)
        if (*p == f) {
            *p = f->next;
            found = true;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    return found;
}

static void count(worker_registry *w, uint64_t stream, int *orch, int *act)
{
    *orch = *act = 0;
    pthread_mutex_lock(&w->mu);
    for (inflight *f = w->items; f; f = f->next)
        if (f->stream == stream)
            (f->orch ? (*orch)++ : (*act)++);
    pthread_mutex_unlock(&w->mu);
}


/* give_back_stream: everything STREAM still holds goes back to the hub. */
static void give_back_stream(worker_registry *w, uint64_t stream)
{
    for (;;) {
        inflight *f = NULL;
        pthread_mutex_lock(&w->mu);
        for (inflight **p = &w->items; *p; p = &(*p)->next) {
            if ((*p)->stream == stream) {
                f = *p;
                *p = f->next;
                break;
            }
        }
        pthread_mutex_unlock(&w->mu);
        if (f == NULL)
            return;
        give_back(w, f);
    }
}

/* ---- GetWorkItems ------------------------------------------------------------------------- */

static dt_status pack_work_item(dt_arena *a, const inflight *f, uint8_t **buf, size_t *len)
{
    Dtpb__WorkItem wi = DTPB__WORK_ITEM__INIT;
    dt_status st;
    wi.completiontoken = (char *)f->token;
    if (f->orch) {
        dt_orch_request req;
        dt_hub_orch_request(f->orch, &req);
        wi.request_case = DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST;
        st = svc_orchestrator_request(a, &req, &wi.orchestratorrequest);
    } else {
        dt_activity_request req;
        dt_hub_activity_request(f->act, &req);
        wi.request_case = DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST;
        st = svc_activity_request(a, &req, &wi.activityrequest);
    }
    return st == DT_OK ? pb_pack(a, &wi.base, buf, len) : st;
}

/* The stream's work item filters, when the worker sent some: only work it registered. */
typedef struct stream_filter {
    dt_name_filter orch, act;
    dt_work_filter work;
} stream_filter;

/* read_filters: the request's workItemFilters into F (names in arena A); NULL when none were
 * sent, meaning any work. */
static const dt_work_filter *read_filters(dt_arena *a, const Dtpb__GetWorkItemsRequest *r,
                                          stream_filter *f, dt_error *err, dt_status *st)
{
    bool has = false;
    *st = svc_work_filters_from_msg(a, r->workitemfilters, &f->orch, &f->act, &has, err);
    if (*st != DT_OK || !has)
        return NULL;
    f->work = (dt_work_filter){&f->orch, &f->act};
    return &f->work;
}

/* lease_next: the next work item this stream may take, within POLL_MS. */
static dt_status lease_next(rpc_call *c, bool want_o, bool want_a, bool *act_first,
                            const dt_work_filter *filter, dt_orch_item **o,
                            dt_activity_item **a, dt_error *err)
{
    if (!want_o && !want_a) {
        rpc_wait_closed(c, 20);
        return DT_OK;
    }
    *act_first = !*act_first;   /* alternate, so neither kind starves the other */
    return dt_hub_next_work(rpc_hub(c), POLL_MS, *act_first, want_o, want_a, filter, o, a, err);
}

static void get_work_items(rpc_call *c)
{
    dt_arena *ra = dt_arena_new();
    Dtpb__GetWorkItemsRequest *r = NULL;
    if (ra == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        return;
    }
    if (!rpc_recv_msg(c, ra, &dtpb__get_work_items_request__descriptor, (void **)&r)) {
        dt_arena_free(ra);
        return;
    }
    int max_o = r->maxconcurrentorchestrationworkitems > 0 ? r->maxconcurrentorchestrationworkitems
                                                          : DEFAULT_MAX_IN_FLIGHT;
    int max_a = r->maxconcurrentactivityworkitems > 0 ? r->maxconcurrentactivityworkitems
                                                      : DEFAULT_MAX_IN_FLIGHT;
    stream_filter sf;
    dt_error ferr = {0};
    dt_status fst;
    const dt_work_filter *filter = read_filters(ra, r, &sf, &ferr, &fst);   /* in RA */
    if (fst != DT_OK) {
        rpc_fail_err(c, fst, &ferr);
        dt_arena_free(ra);
        return;
    }

    worker_registry *w = rpc_workers(c);
    uint64_t stream = new_stream(w);
    bool act_first = false;
    while (!rpc_closed(c)) {
        int n_o, n_a;
        count(w, stream, &n_o, &n_a);
        dt_orch_item *o = NULL;
        dt_activity_item *a = NULL;
        dt_error err = {0};
        if (lease_next(c, n_o < max_o, n_a < max_a, &act_first, filter, &o, &a, &err) != DT_OK) {
            rpc_wait_closed(c, POLL_MS);   /* store trouble: back off, keep the stream */
            continue;
        }
        if (o == NULL && a == NULL)
            continue;
        inflight *f = enlist(w, stream, o, a);
        if (f == NULL) {   /* out of memory: give the item straight back */
            if (o)
                dt_hub_abandon_orchestration(rpc_hub(c), o, NULL);
            else
                dt_hub_abandon_activity(rpc_hub(c), a, NULL);
            continue;
        }
        dt_arena *arena = dt_arena_new();
        uint8_t *buf = NULL;
        size_t len = 0;
        dt_status st = arena ? pack_work_item(arena, f, &buf, &len) : DT_ERR_NOMEM;
        if (st == DT_OK)
            hand(w, f);   /* F is not read again here unless unlist gives it back */
        bool sent = st == DT_OK && rpc_send(c, buf, len);
        dt_arena_free(arena);
        if (!sent) {
            if (unlist(w, f))
                give_back(w, f);
            if (st == DT_OK)
                break;   /* the worker went away */
        }
    }
    give_back_stream(w, stream);
    dt_arena_free(ra);
    rpc_finish(c, NULL, 0, rpc_stopping(c) ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_OK,
               rpc_stopping(c) ? "the server is stopping" : "");
}

/* ---- completions --------------------------------------------------------------------------- */

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

static void complete_orchestrator(rpc_call *c)
{
    dt_arena *a = dt_arena_new();
    Dtpb__OrchestratorResponse *r = NULL;
    if (a == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        return;
    }
    if (!rpc_recv_msg(c, a, &dtpb__orchestrator_response__descriptor, (void **)&r))
        goto out;
    worker_registry *w = rpc_workers(c);
    inflight *f = take(w, r->completiontoken, true, r->instanceid, 0);
    if (f == NULL) {
        unknown_token(c, r->completiontoken);
        goto out;
    }
    svc_orch_completion done;
    dt_error err = {0};
    dt_status st = svc_orchestrator_response_from_msg(a, r, &done, &err);
    if (st != DT_OK) {
        give_back(w, f);   /* refused: nothing applied; the episode is redelivered */
    } else {
        st = dt_hub_complete_orchestration(rpc_hub(c), f->orch, &done.result, &err);
        free(f);
    }
    if (st == DT_OK)
        reply_done(c);
    else
        rpc_fail_err(c, st, &err);
out:
    dt_arena_free(a);
}

static void complete_activity(rpc_call *c)
{
    dt_arena *a = dt_arena_new();
    Dtpb__ActivityResponse *r = NULL;
    if (a == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        return;
    }
    if (!rpc_recv_msg(c, a, &dtpb__activity_response__descriptor, (void **)&r))
        goto out;
    worker_registry *w = rpc_workers(c);
    inflight *f = take(w, r->completiontoken, false, r->instanceid, r->taskid);
    if (f == NULL) {
        unknown_token(c, r->completiontoken);
        goto out;
    }
    svc_activity_completion done;
    dt_error err = {0};
    dt_status st = svc_activity_response_from_msg(a, r, &done, &err);
    if (st != DT_OK) {
        give_back(w, f);
    } else {
        /* the SDKs send "" for an activity that returned nothing */
        const char *result = done.result && done.result[0] ? done.result : NULL;
        st = dt_hub_complete_activity(rpc_hub(c), f->act, result, done.failure, &err);
        free(f);
    }
    if (st == DT_OK)
        reply_done(c);
    else
        rpc_fail_err(c, st, &err);
out:
    dt_arena_free(a);
}

static void abandon(rpc_call *c, bool orch)
{
    dt_arena *a = dt_arena_new();
    /* both abandon requests are { string completionToken = 1; } */
    Dtpb__AbandonActivityTaskRequest *r = NULL;
    if (a == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        return;
    }
    if (rpc_recv_msg(c, a,
                     orch ? &dtpb__abandon_orchestration_task_request__descriptor
                          : &dtpb__abandon_activity_task_request__descriptor,
                     (void **)&r)) {
        worker_registry *w = rpc_workers(c);
        inflight *f = take(w, r->completiontoken, orch, NULL, 0);
        if (f == NULL) {
            unknown_token(c, r->completiontoken);
        } else {
            give_back(w, f);
            reply_done(c);   /* Abandon*Response{} */
        }
    }
    dt_arena_free(a);
}

static void abandon_orchestration(rpc_call *c) { abandon(c, true); }
static void abandon_activity(rpc_call *c) { abandon(c, false); }

const rpc_method rpc_worker_methods[] = {
    {"GetWorkItems", get_work_items},
    {"CompleteOrchestratorTask", complete_orchestrator},
    {"CompleteActivityTask", complete_activity},
    {"AbandonTaskOrchestratorWorkItem", abandon_orchestration},
    {"AbandonTaskActivityWorkItem", abandon_activity},
    {"CompleteEntityTask", NULL},
    {"AbandonTaskEntityWorkItem", NULL},
    {NULL, NULL},
};
