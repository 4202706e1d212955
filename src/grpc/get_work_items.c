/* get_work_items.c — GetWorkItems: the stream that hands a connected worker the orchestration,
 * activity and entity work items it may take (its filters, its limits per kind), each
 * registered under a completion token (workers.c) before it goes out; an idle stream gets a
 * HealthPing now and then. When the stream ends, whatever it still held goes back to the
 * hub. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "workers.h"

#define DEFAULT_MAX_IN_FLIGHT 100   /* per stream and kind, unless the worker asks otherwise */
#define MAX_IN_FLIGHT 1000          /* per stream and kind, whatever the worker asks: each item
                                     * holds its history in memory while its worker has it */
#define POLL_MS 200
#define CHUNKS_CHECK_MS 1000   /* how often a stream looks for its chunks gone stale */
/* Large histories. A worker that announces HISTORY_STREAMING gets an orchestration work item
 * whose past events are over HISTORY_INLINE_MAX bytes without them (requiresHistoryStreaming)
 * and reads them with StreamInstanceHistory. One that does not is not sent a work item over
 * WORKER_RECEIVE_MAX, the receive limit gRPC gives the .NET, Java, Python and JavaScript
 * SDKs by default: their stream would fail on it at every reconnect, stopping all their work.
 * The instance is failed instead, saying why. */
#define HISTORY_INLINE_MAX ((size_t)1 << 20)
#define WORKER_RECEIVE_MAX ((size_t)4 << 20)
#define TOO_LARGE_TYPE "HistoryTooLarge"
/* Extended sessions. A worker whose GetWorkItems call carries DT_SESSIONS_METADATA keeps
 * instances' code suspended between episodes. When the stream that completed an instance's
 * last episode is the one its next episode goes to (workers_hint_is), the past events are
 * left out (the properties say so, and how many there are): the worker's session has them,
 * and a worker that finds it has not (evicted, or the count shows the last commit did not
 * happen) reads them with StreamInstanceHistory. */
#define SESSION_IDLE_S 600.0   /* what the properties tell the worker; it decides */

/* stream_large_history: leave WI's past events out, for the worker to stream, if they are
 * over HISTORY_INLINE_MAX bytes or the item is over LIMIT with them. */
static void stream_large_history(Dtpb__WorkItem *wi, size_t limit)
{
    Dtpb__OrchestratorRequest *r = wi->orchestratorrequest;
    size_t bytes = 0;
    for (size_t i = 0; i < r->n_pastevents && bytes <= HISTORY_INLINE_MAX; i++)
        bytes += dtpb__history_event__get_packed_size(r->pastevents[i]);
    if (bytes <= HISTORY_INLINE_MAX && dtpb__work_item__get_packed_size(wi) <= limit)
        return;
    r->pastevents = NULL;
    r->n_pastevents = 0;
    r->requireshistorystreaming = 1;
}

/* pack_work_item: F as a WorkItem for a worker that can stream history (STREAMS) or not.
 * DT_ERR_STATE (ERR says why) when an orchestration's is over LIMIT bytes even so. */
static dt_status pack_work_item(worker_registry *w, dt_arena *a, const inflight *f,
                                bool streams, size_t limit, uint8_t **buf, size_t *len,
                                dt_error *err)
{
    Dtpb__WorkItem wi = DTPB__WORK_ITEM__INIT;
    dt_status st;
    wi.completiontoken = (char *)f->token;
    if (f->orch) {
        dt_orch_request req;
        dt_hub_orch_request(f->orch, &req);
        wi.request_case = DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST;
        /* a session of this stream has the past if this stream ran the last episode: then
         * the past is not even built (building it costs what the history's length does) */
        size_t n_past = req.n_past;
        bool left_out = f->sessions && n_past > 0 &&
                        workers_hint_is(w, f->hub, req.instance_id, f->stream);
        if (left_out) {
            req.past = NULL;
            req.n_past = 0;
        }
        st = svc_orchestrator_request(a, &req, &wi.orchestratorrequest);
        if (st == DT_OK && f->sessions)
            st = svc_orchestrator_request_session(a, wi.orchestratorrequest, n_past, !left_out,
                                                  SESSION_IDLE_S);
        if (st == DT_OK && streams && !left_out)
            stream_large_history(&wi, limit);
    } else if (f->ent) {
        dt_entity_request req;
        dt_hub_entity_request(f->ent, &req);
        wi.request_case = DTPB__WORK_ITEM__REQUEST_ENTITY_REQUEST_V2;
        st = req.operations ? svc_entity_request(a, &req, &wi.entityrequestv2) : DT_ERR_NOMEM;
    } else {
        dt_activity_request req;
        dt_hub_activity_request(f->act, &req);
        wi.request_case = DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST;
        st = svc_activity_request(a, &req, &wi.activityrequest);
    }
    if (st != DT_OK)
        return st;
    size_t size = dtpb__work_item__get_packed_size(&wi);
    if (f->act && size > limit)   /* an input stored before the payload limit: no worker takes it */
        return dt_error_set(err, DT_ERR_STATE,
                            "its work item is %zu bytes, over the %zu bytes a worker is sent",
                            size, limit);
    if (f->orch && size > limit)
        return dt_error_set(err, DT_ERR_STATE,
                            "its work item is %zu bytes, over the %zu %s %s, and %s", size,
                            limit % (1 << 20) ? limit >> 10 : limit >> 20,
                            limit % (1 << 20) ? "KiB" : "MiB",
                            limit < WORKER_RECEIVE_MAX ? "this server sends (--max-message)"
                                                       : "a worker receives by default",
                            streams ? "its new events alone are too many"
                                    : "the worker did not announce the HISTORY_STREAMING "
                                      "capability; run it with a worker that streams history "
                                      "(the .NET, Java and Python SDKs do)");
    return pb_pack(a, &wi.base, buf, len);
}

/* streams_history: whether the worker announced the HISTORY_STREAMING capability. */
static bool streams_history(const Dtpb__GetWorkItemsRequest *r)
{
    for (size_t i = 0; i < r->n_capabilities; i++)
        if (r->capabilities[i] == DTPB__WORKER_CAPABILITY__WORKER_CAPABILITY_HISTORY_STREAMING)
            return true;
    return false;
}

/* The stream's work item filters, when the worker sent some: only work it registered. */
typedef struct stream_filter {
    dt_name_filter orch, act, ent;
    dt_work_filter work;
} stream_filter;

/* read_filters: the request's workItemFilters into F (names in arena A); NULL when none were
 * sent, meaning any work. */
static const dt_work_filter *read_filters(dt_arena *a, const Dtpb__GetWorkItemsRequest *r,
                                          stream_filter *f, dt_error *err, dt_status *st)
{
    bool has = false;
    *st = svc_work_filters_from_msg(a, r->workitemfilters, &f->orch, &f->act, &has, err);
    if (*st == DT_OK && has)
        *st = svc_entity_filter_from_msg(a, r->workitemfilters, &f->ent, err);
    if (*st != DT_OK || !has)
        return NULL;
    f->work = (dt_work_filter){&f->orch, &f->act, &f->ent};
    return &f->work;
}

/* lease_next: the next work item of the kinds WANT this stream may take, within POLL_MS.
 * *LAST is the kind it took last: the search starts after it, so no kind starves another. */
static dt_status lease_next(rpc_call *c, int want, int *last, const dt_work_filter *filter,
                            dt_hub_bell *bell, dt_work *out, dt_error *err)
{
    /* with every kind at its limit (WANT 0) it waits for the bell alone */
    dt_status st = dt_hub_next_work(rpc_hub(c), POLL_MS, *last, want, filter, bell, out, err);
    if (out->orch || out->act || out->ent)
        *last = out->orch ? DT_WORK_ORCHESTRATION : out->ent ? DT_WORK_ENTITY : DT_WORK_ACTIVITY;
    return st;
}

/* send_health_ping: a WorkItem holding a HealthPing, which keeps an idle stream from looking
 * dead to the SDKs that drop a silent one; false if the worker went away. */
static bool send_health_ping(rpc_call *c)
{
    Dtpb__WorkItem wi = DTPB__WORK_ITEM__INIT;
    Dtpb__HealthPing ping = DTPB__HEALTH_PING__INIT;
    wi.request_case = DTPB__WORK_ITEM__REQUEST_HEALTH_PING;
    wi.healthping = &ping;
    uint8_t buf[16];
    size_t len = dtpb__work_item__get_packed_size(&wi);
    assert(len <= sizeof buf);
    dtpb__work_item__pack(&wi, buf);
    return rpc_send(c, buf, len);
}

/* in_flight_max: how many items of a kind a stream holds at once, its worker having asked
 * for ASKED (0 or less: it did not say). */
static int in_flight_max(int32_t asked)
{
    return asked <= 0 ? DEFAULT_MAX_IN_FLIGHT : asked > MAX_IN_FLIGHT ? MAX_IN_FLIGHT : asked;
}

void rpc_get_work_items(rpc_call *c)
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
    int max_o = in_flight_max(r->maxconcurrentorchestrationworkitems);
    int max_a = in_flight_max(r->maxconcurrentactivityworkitems);
    int max_e = in_flight_max(r->maxconcurrententityworkitems);
    stream_filter sf;
    dt_error ferr = {0};
    dt_status fst;
    const dt_work_filter *filter = read_filters(ra, r, &sf, &ferr, &fst);   /* in RA */
    if (fst != DT_OK) {
        rpc_fail_err(c, fst, &ferr);
        dt_arena_free(ra);
        return;
    }

    dt_hub_bell *bell = dt_hub_bell_new();
    if (bell == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        dt_arena_free(ra);
        return;
    }
    worker_registry *w = rpc_workers(c);
    uint64_t stream = workers_new_stream(w);
    stream_rec rec = {.max = {max_o, max_a, max_e}, .bell = bell};
    int last = 0;
    bool streams = streams_history(r);
    bool sessions = rpc_metadata_is(c, DT_SESSIONS_METADATA, "1");
    size_t limit = streams ? rpc_max_message(c) : WORKER_RECEIVE_MAX;
    if (limit > rpc_max_message(c))
        limit = rpc_max_message(c);
    dt_time last_sent = dt_now(), chunks_checked = dt_now();
    bool deleted = false;
    while (!rpc_closed(c) && !(deleted = rpc_hub_deleted(c))) {
        /* chunks a worker stopped sending hold the server's bound: when it is more than half
         * full, a completion whose next chunk is overdue (later than a request may take to
         * come) goes back */
        if (dt_now() - chunks_checked >= CHUNKS_CHECK_MS * 1000) {
            chunks_checked = dt_now();
            dt_time before = chunks_checked - rpc_request_timeout_ms(c) * 1000;
            while (rpc_held_pressed(c) && workers_expire_chunks(w, stream, before))
                ;   /* the longest waiting first, until the bound is no longer pressed */
        }
        if (dt_now() - last_sent >= rpc_health_ping_ms(c) * 1000) {
            if (!send_health_ping(c))
                break;   /* the worker went away */
            last_sent = dt_now();
        }
        dt_work work;
        dt_error err = {0};
        if (lease_next(c, workers_wants(w, &rec), &last, filter, bell, &work, &err) != DT_OK) {
            rpc_wait_closed(c, POLL_MS);   /* store trouble: back off, keep the stream */
            continue;
        }
        if (work.orch == NULL && work.act == NULL && work.ent == NULL)
            continue;
        inflight *f = workers_enlist(w, rpc_hub(c), stream, &rec, &work);
        if (f == NULL) {   /* out of memory: give the item straight back */
            if (work.orch)
                dt_hub_abandon_orchestration(rpc_hub(c), work.orch, NULL);
            else if (work.ent)
                dt_hub_abandon_entity(rpc_hub(c), work.ent, NULL);
            else
                dt_hub_abandon_activity(rpc_hub(c), work.act, NULL);
            continue;
        }
        char token[sizeof f->token];   /* F's, for after it is handed (workers_unlist) */
        memcpy(token, f->token, sizeof token);
        dt_arena *arena = dt_arena_new();
        uint8_t *buf = NULL;
        size_t len = 0;
        f->sessions = sessions;
        dt_status st = arena ? pack_work_item(w, arena, f, streams, limit, &buf, &len, &err)
                             : DT_ERR_NOMEM;
        if (st == DT_ERR_STATE) {   /* too large for this worker: fail it, go on */
            if (!workers_unlist(w, f, token)) {
                /* taken meanwhile: its taker has it */
            } else if (f->orch) {
                inflight_fail(rpc_hub(c), f, arena, TOO_LARGE_TYPE, err.message, &err);
            } else if (f->act) {
                const dt_failure *why = arena ? dt_failure_new(arena, "PayloadTooLarge", "%s",
                                                               err.message)
                                              : NULL;
                if (why)
                    dt_hub_complete_activity(rpc_hub(c), f->act, NULL, why, &err);
                else
                    dt_hub_abandon_activity(rpc_hub(c), f->act, NULL);
                inflight_free(f);
            } else {   /* an entity's batch (kept to 1 MiB of inputs, so not today) */
                inflight_give_back(f, true);
            }
            dt_arena_free(arena);
            continue;
        }
        if (st == DT_OK)
            workers_hand(w, f);   /* F is not read again here unless workers_unlist gives it back */
        bool sent = st == DT_OK && rpc_send(c, buf, len);
        dt_arena_free(arena);
        if (sent)
            last_sent = dt_now();
        if (!sent) {
            if (workers_unlist(w, f, token))
                inflight_give_back(f, st != DT_OK);   /* could not even be packed: not at once */
            if (st == DT_OK)
                break;   /* the worker went away */
        }
    }
    workers_give_back_stream(w, stream);   /* after it, no entry names REC: nobody rings BELL */
    dt_hub_bell_free(bell);
    dt_arena_free(ra);
    char why[160];
    snprintf(why, sizeof why, "task hub '%s' was deleted", rpc_task_hub(c));
    rpc_finish(c, NULL, 0,
               deleted ? GRPC_STATUS_NOT_FOUND
                       : rpc_stopping(c) ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_OK,
               deleted ? why : rpc_stopping(c) ? "the server is stopping" : "");
}
