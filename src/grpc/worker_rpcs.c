/* worker_rpcs.c — the worker side of TaskHubSidecarService: the GetWorkItems stream that
 * hands orchestration, activity and entity work items to connected workers, and the calls by which
 * they complete or abandon them. Every item handed out is registered under a completion
 * token; a completion is matched by its token or, when it brings none, by instance id (and
 * task id, for an activity); one that matches nothing in flight is refused and changes
 * nothing. When a worker's stream ends, whatever it still held goes back to the hub. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sync.h"
#include "rpc.h"
#include "service/service.h"

#define DEFAULT_MAX_IN_FLIGHT 100   /* per stream and kind, unless the worker asks otherwise */
#define POLL_MS 200
/* Bounds on one chunked completion: chunks, and bytes of them held until the last. */
#define CHUNKS_MAX 4096
#define CHUNK_BYTES_MAX ((size_t)256 << 20)
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
 * last episode is the one its next episode goes to, the past events are left out (the
 * properties say so, and how many there are): the worker's session has them, and a worker
 * that finds it has not (evicted, or the count shows the last commit did not happen) reads
 * them with StreamInstanceHistory. A hint per instance says which stream completed its last
 * episode: a lossy table (a collision forgets one, which costs a full history), streams never
 * reuse an id, so a hint of a stream that ended matches nothing. */
#define HINTS 4096
#define SESSION_IDLE_S 600.0   /* what the properties tell the worker; it decides */

typedef struct hint {
    const dt_hub *hub;
    char *instance_id;          /* NULL: the slot is free */
    uint64_t stream;
} hint;

/* A work item stream's own record, on its thread's stack and named by its entries: how many
 * of its items of each kind (orchestrations, activities, entities) the worker holds and how
 * many it said it takes; CAPPED while its thread waits with a kind at that limit: an item of
 * that kind coming back then rings its bell, so the thread looks again at once. */
typedef struct stream_rec {
    int n[3], max[3];           /* w->mu */
    bool capped;                /* w->mu */
    dt_hub_bell *bell;          /* of the stream's hub, which is each entry's */
} stream_rec;

typedef struct inflight {
    char token[48];
    dt_hub *hub;                /* the task hub it came from; completions must name the same */
    uint64_t stream;
    stream_rec *rec;            /* its stream's, until it leaves the registry or the stream ends
                                 * (w->mu) */
    bool sessions;              /* its stream keeps extended sessions */
    dt_orch_item *orch;
    dt_activity_item *act;
    dt_entity_item *ent;
    /* packed and on its way to the worker: from then on a completion may take the entry
     * (and free it), so the stream's thread no longer reads it (w->mu) */
    bool handed;
    /* a chunk of its completion is being read: no one else may take it (w->mu); GONE: its
     * stream ended meanwhile, so whoever clears BUSY without completing gives it back */
    bool busy, gone;
    /* a chunked completion so far: the chunks' actions, copied into CHUNK_ARENA, the next
     * chunk's index and the bytes received */
    dt_arena *chunk_arena;
    dt_action *chunk_acts;
    size_t n_chunk_acts, cap_chunk_acts, chunk_bytes;
    dt_grpc_server *held_by;    /* CHUNK_BYTES count against its bound (rpc_hold_kept) */
    int32_t next_chunk;
    struct inflight *next;
} inflight;

/* An activity given back because its stream ended, remembered by its token: the .NET and
 * Python SDKs drop a stream they think dead and open a new one while their activities run
 * on, then send the result under the old token. USED: a result came already; a later one is
 * acknowledged and dropped. The registry keeps the last RELEASED_MAX in a ring. */
#define RELEASED_MAX 1024
typedef struct released {
    char token[48];
    char *instance_id;          /* NULL: the slot is free */
    char *execution_id;         /* may be NULL */
    int32_t task_id;
    bool used;
    uint64_t hub_id;            /* dt_hub_id of its hub, which may be gone by now */
} released;

struct worker_registry {
    pthread_mutex_t mu;         /* guards the list, the counters and the released ring */
    inflight *items;
    uint64_t next_stream, next_token;
    released rel[RELEASED_MAX];
    size_t rel_next;
    hint hints[HINTS];
};

static void released_clear(released *r)
{
    free(r->instance_id);
    free(r->execution_id);
    memset(r, 0, sizeof *r);
}

/* remember_released: F, an activity going back because its stream ended (w->mu held). */
static void remember_released(worker_registry *w, const inflight *f)
{
    assert(core_mutex_held(&w->mu));
    released *r = &w->rel[w->rel_next++ % RELEASED_MAX];
    released_clear(r);
    r->instance_id = strdup(f->act->instance_id);
    r->execution_id = f->act->execution_id ? strdup(f->act->execution_id) : NULL;
    if (r->instance_id == NULL || (f->act->execution_id && r->execution_id == NULL)) {
        released_clear(r);   /* out of memory: forgotten, as an old one would be */
        return;
    }
    snprintf(r->token, sizeof r->token, "%s", f->token);
    r->task_id = f->act->task_id;
    r->hub_id = dt_hub_id(f->hub);
}

/* give_back: F's item goes back to the hub (which frees it), and F is freed. With BACKOFF
 * the worker gave it up, or its result was refused: it is redelivered after a growing wait,
 * not in a hot loop; without, its worker went away and any other may have it at once. */
static void inflight_free(inflight *f)
{
    if (f->held_by)
        rpc_give_kept(f->held_by, f->chunk_bytes);
    dt_arena_free(f->chunk_arena);
    free(f->chunk_acts);
    free(f);
}

static void give_back(inflight *f, bool backoff)
{
    if (f->orch)
        (backoff ? dt_hub_abandon_orchestration : dt_hub_release_orchestration)(f->hub, f->orch,
                                                                                 NULL);
    else if (f->ent)
        (backoff ? dt_hub_abandon_entity : dt_hub_release_entity)(f->hub, f->ent, NULL);
    else
        (backoff ? dt_hub_abandon_activity : dt_hub_release_activity)(f->hub, f->act, NULL);
    inflight_free(f);
}

worker_registry *workers_new(void)
{
    worker_registry *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
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
        give_back(f, false);   /* the server is stopping */
    }
    for (size_t i = 0; i < RELEASED_MAX; i++)
        released_clear(&w->rel[i]);
    for (size_t i = 0; i < HINTS; i++)
        free(w->hints[i].instance_id);
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

/* kind_index: F's kind as an index of stream_rec's counts. */
static int kind_index(const inflight *f)
{
    return f->orch ? 0 : f->act ? 1 : 2;
}

/* unlinked: F has left W's registry (w->mu held): its stream holds one item fewer, and if
 * its thread waits with that kind at its limit, it is told to look again (rung under w->mu,
 * so the stream, which ends under it too, is still there). */
static void unlinked(worker_registry *w, inflight *f)
{
    assert(core_mutex_held(&w->mu));
    (void)w;
    stream_rec *r = f->rec;
    if (r == NULL)
        return;
    f->rec = NULL;
    int k = kind_index(f);
    bool was_full = r->n[k]-- >= r->max[k];
    if (r->capped && was_full && r->n[k] < r->max[k]) {
        r->capped = false;
        dt_hub_bell_ring(f->hub, r->bell);
    }
}

/* enlist: register an item for STREAM (its record REC) under a new completion token (the
 * entry's token); not handed yet, so no completion can take it. NULL when out of memory. */
static inflight *enlist(worker_registry *w, dt_hub *hub, uint64_t stream, stream_rec *rec,
                        const dt_work *work)
{
    inflight *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->hub = hub;
    f->stream = stream;
    f->rec = rec;
    f->orch = work->orch;
    f->act = work->act;
    f->ent = work->ent;
    pthread_mutex_lock(&w->mu);
    rec->n[kind_index(f)]++;
    snprintf(f->token, sizeof f->token, "%c%llu-%llu", f->orch ? 'o' : f->ent ? 'e' : 'a',
             (unsigned long long)stream, (unsigned long long)++w->next_token);
    f->next = w->items;
    w->items = f;
    pthread_mutex_unlock(&w->mu);
    return f;
}

/* ---- session hints ------------------------------------------------------------------------ */

static hint *hint_slot(worker_registry *w, const dt_hub *hub, const char *id)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)hub;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return &w->hints[h % HINTS];
}

/* hint_set: STREAM completed the last episode of HUB's instance ID (0: forget it). */
static void hint_set(worker_registry *w, const dt_hub *hub, const char *id, uint64_t stream)
{
    pthread_mutex_lock(&w->mu);
    hint *x = hint_slot(w, hub, id);
    bool same = x->instance_id && x->hub == hub && strcmp(x->instance_id, id) == 0;
    if (stream == 0 || !same) {
        free(x->instance_id);
        x->instance_id = NULL;
    }
    if (stream && !same)
        x->instance_id = strdup(id);   /* out of memory: no hint, a full history next time */
    x->hub = hub;
    x->stream = stream;
    pthread_mutex_unlock(&w->mu);
}

/* hint_is: did STREAM complete the last episode of HUB's instance ID? */
static bool hint_is(worker_registry *w, const dt_hub *hub, const char *id, uint64_t stream)
{
    pthread_mutex_lock(&w->mu);
    hint *x = hint_slot(w, hub, id);
    bool is = x->instance_id && x->hub == hub && x->stream == stream &&
              strcmp(x->instance_id, id) == 0;
    pthread_mutex_unlock(&w->mu);
    return is;
}

/* kind_of: F's kind of work (DT_WORK_*). */
static int kind_of(const inflight *f)
{
    return f->orch ? DT_WORK_ORCHESTRATION : f->ent ? DT_WORK_ENTITY : DT_WORK_ACTIVITY;
}

/* ids_agree: does a completion naming INSTANCE_ID (and, for an activity, TASK_ID) fit the
 * work item of ITEM_ID / ITEM_TASK (ITEM_TASK < 0: an orchestration's)? One that names no
 * instance leaves it to its token. */
static bool ids_agree(const char *item_id, int32_t item_task, const char *instance_id,
                      int32_t task_id)
{
    if (instance_id == NULL || instance_id[0] == '\0')
        return true;
    return strcmp(item_id, instance_id) == 0 && (item_task < 0 || item_task == task_id);
}

/* agrees: does a completion of F naming INSTANCE_ID / TASK_ID fit it (ids_agree)? */
static bool agrees(const inflight *f, const char *instance_id, int32_t task_id)
{
    if (f->orch)
        return ids_agree(f->orch->instance_id, -1, instance_id, task_id);
    if (f->act)
        return ids_agree(f->act->instance_id, f->act->task_id, instance_id, task_id);
    return true;
}

/* take: remove and return HUB's handed entry of KIND with TOKEN (or, without a token, the
 * orchestration of INSTANCE_ID, or the activity INSTANCE_ID/TASK_ID; an entity's needs its
 * token), or NULL. A token whose work item is of another instance or task than the
 * completion names takes nothing (wrong_ids says why). */
static inflight *take(worker_registry *w, const dt_hub *hub, const char *token, int kind,
                      const char *instance_id, int32_t task_id)
{
    bool orch = kind == DT_WORK_ORCHESTRATION;
    pthread_mutex_lock(&w->mu);
    inflight *found = NULL;
    for (inflight **p = &w->items; *p; p = &(*p)->next) {
        inflight *f = *p;
        bool match;
        if (!f->handed || f->busy || f->hub != hub)
            match = false;
        else if (token && token[0])
            match = strcmp(f->token, token) == 0 && agrees(f, instance_id, task_id);
        else if (orch)
            match = f->orch && instance_id && strcmp(f->orch->instance_id, instance_id) == 0;
        else
            match = f->act && instance_id && strcmp(f->act->instance_id, instance_id) == 0 &&
                    f->act->task_id == task_id;
        if (match && kind_of(f) == kind) {
            *p = f->next;
            unlinked(w, f);
            found = f;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* wrong_ids_say: why a completion under TOKEN naming INSTANCE_ID / TASK_ID is refused: its
 * token is for WHAT of ITEM_ID (task ITEM_TASK). Into MSG. */
static void wrong_ids_say(char *msg, size_t size, rpc_call *c, const char *token,
                          const char *what, const char *item_id, int32_t item_task,
                          const char *instance_id, int32_t task_id)
{
    char item[24] = "", asked[24] = "";
    if (item_task >= 0) {   /* an activity's */
        snprintf(item, sizeof item, " (task %d)", (int)item_task);
        snprintf(asked, sizeof asked, " (task %d)", (int)task_id);
    }
    snprintf(msg, size, "%s: completion token '%.60s' is for %s of instance '%.100s'%s, not of "
             "instance '%.100s'%s; nothing was changed", rpc_method_name(c), token, what, item_id,
             item, instance_id, asked);
}

/* wrong_ids: answer C (INVALID_ARGUMENT, true) if TOKEN is HUB's work item of KIND in flight
 * of another instance or task than the completion names (INSTANCE_ID, TASK_ID): a worker's
 * mix-up, refused with nothing changed rather than applied to the item the token names. */
static bool wrong_ids(rpc_call *c, worker_registry *w, const dt_hub *hub, const char *token,
                      int kind, const char *instance_id, int32_t task_id)
{
    if (token == NULL || token[0] == '\0')
        return false;
    char msg[400] = "";
    pthread_mutex_lock(&w->mu);
    for (inflight *f = w->items; f && !msg[0]; f = f->next)
        if (f->hub == hub && kind_of(f) == kind && strcmp(f->token, token) == 0 &&
            !agrees(f, instance_id, task_id))
            wrong_ids_say(msg, sizeof msg, c, token, f->orch ? "an episode" : "an activity",
                          f->orch ? f->orch->instance_id : f->act->instance_id,
                          f->orch ? -1 : f->act->task_id, instance_id, task_id);
    pthread_mutex_unlock(&w->mu);
    if (msg[0])
        rpc_finish(c, NULL, 0, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return msg[0] != '\0';
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
            unlinked(w, f);
            found = true;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* claim: HUB's handed orchestration entry of TOKEN, marked busy and left in the list (so its
 * stream still counts it), or NULL. */
static inflight *claim(worker_registry *w, const dt_hub *hub, const char *token)
{
    inflight *found = NULL;
    pthread_mutex_lock(&w->mu);
    for (inflight *f = w->items; f; f = f->next)
        if (f->handed && !f->busy && f->orch && f->hub == hub && strcmp(f->token, token) == 0) {
            f->busy = true;
            found = f;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    return found;
}

/* unclaim: F's chunk is in; if its stream ended meanwhile, F goes back now. */
static void unclaim(worker_registry *w, inflight *f)
{
    pthread_mutex_lock(&w->mu);
    f->busy = false;
    bool gone = f->gone;
    pthread_mutex_unlock(&w->mu);
    if (gone && unlist(w, f))
        give_back(f, false);
}

/* wants: the kinds (DT_WORK_*) STREAM's worker takes more of now; with one at its limit the
 * stream is marked capped, so that the item's return rings its bell. */
static int wants(worker_registry *w, stream_rec *rec)
{
    static const int kinds[3] = {DT_WORK_ORCHESTRATION, DT_WORK_ACTIVITY, DT_WORK_ENTITY};
    int want = 0;
    pthread_mutex_lock(&w->mu);
    for (int k = 0; k < 3; k++)
        if (rec->n[k] < rec->max[k])
            want |= kinds[k];
    rec->capped = want != (DT_WORK_ORCHESTRATION | DT_WORK_ACTIVITY | DT_WORK_ENTITY);
    pthread_mutex_unlock(&w->mu);
    return want;
}

/* give_back_stream: everything STREAM still holds goes back to the hub; an entry a chunk is
 * being read for is marked gone, and goes back when that is done (unclaim). */
static void give_back_stream(worker_registry *w, uint64_t stream)
{
    for (;;) {
        inflight *f = NULL;
        pthread_mutex_lock(&w->mu);
        for (inflight **p = &w->items; *p; p = &(*p)->next) {
            if ((*p)->stream == stream && (*p)->busy) {
                (*p)->gone = true;
                (*p)->rec = NULL;   /* the stream is ending: nobody counts it now */
            } else if ((*p)->stream == stream) {
                f = *p;
                *p = f->next;
                f->rec = NULL;
                if (f->act && f->handed)
                    remember_released(w, f);
                break;
            }
        }
        pthread_mutex_unlock(&w->mu);
        if (f == NULL)
            return;
        give_back(f, false);
    }
}

/* ---- failing an instance ----------------------------------------------------------------- */

/* A completion the server cannot apply (it refers to what we do not serve, or breaks a rule
 * of the protocol) fails what it completes, with details naming what was wrong, as the
 * Durable Task Scheduler does: redelivering it would only get the same answer again. Out of
 * memory is not the worker's doing: the item goes back, after a back-off. */
#define REFUSED_TYPE "InvalidWorkerResponse"

static bool worker_fault(dt_status st)
{
    return st == DT_ERR_INVALID_ARG || st == DT_ERR_UNIMPLEMENTED;
}

/* fail_instance: end F's instance as Failed with a failure of TYPE saying WHY; F is
 * consumed. */
static dt_status fail_instance(dt_hub *hub, inflight *f, dt_arena *a, const char *type,
                               const char *why, dt_error *err)
{
    dt_action fail = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = -1,
                      .status = DT_STATUS_FAILED};
    fail.failure = a ? dt_failure_new(a, type, "%s", why) : NULL;
    dt_orch_result res = {.actions = &fail, .n_actions = 1};
    dt_status st = fail.failure ? dt_hub_complete_orchestration(hub, f->orch, &res, err)
                                : (dt_hub_abandon_orchestration(hub, f->orch, NULL),
                                   dt_error_set(err, DT_ERR_NOMEM, "out of memory"));
    f->orch = NULL;
    inflight_free(f);
    return st;
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
    dt_status failed = fail_instance(hub, f, a, REFUSED_TYPE, msg, err);
    if (failed != DT_OK)
        return failed;
    dt_error_set(err, st, "%s; the instance was failed with %s", refused.message, REFUSED_TYPE);
    return st;
}

/* ---- GetWorkItems ------------------------------------------------------------------------- */

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
                        hint_is(w, f->hub, req.instance_id, f->stream);
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
    int max_e = r->maxconcurrententityworkitems > 0 ? r->maxconcurrententityworkitems
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

    dt_hub_bell *bell = dt_hub_bell_new();
    if (bell == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        dt_arena_free(ra);
        return;
    }
    worker_registry *w = rpc_workers(c);
    uint64_t stream = new_stream(w);
    stream_rec rec = {.max = {max_o, max_a, max_e}, .bell = bell};
    int last = 0;
    bool streams = streams_history(r);
    bool sessions = rpc_metadata_is(c, DT_SESSIONS_METADATA, "1");
    size_t limit = streams ? rpc_max_message(c) : WORKER_RECEIVE_MAX;
    if (limit > rpc_max_message(c))
        limit = rpc_max_message(c);
    dt_time last_sent = dt_now();
    bool deleted = false;
    while (!rpc_closed(c) && !(deleted = rpc_hub_deleted(c))) {
        if (dt_now() - last_sent >= rpc_health_ping_ms(c) * 1000) {
            if (!send_health_ping(c))
                break;   /* the worker went away */
            last_sent = dt_now();
        }
        dt_work work;
        dt_error err = {0};
        if (lease_next(c, wants(w, &rec), &last, filter, bell, &work, &err) != DT_OK) {
            rpc_wait_closed(c, POLL_MS);   /* store trouble: back off, keep the stream */
            continue;
        }
        if (work.orch == NULL && work.act == NULL && work.ent == NULL)
            continue;
        inflight *f = enlist(w, rpc_hub(c), stream, &rec, &work);
        if (f == NULL) {   /* out of memory: give the item straight back */
            if (work.orch)
                dt_hub_abandon_orchestration(rpc_hub(c), work.orch, NULL);
            else if (work.ent)
                dt_hub_abandon_entity(rpc_hub(c), work.ent, NULL);
            else
                dt_hub_abandon_activity(rpc_hub(c), work.act, NULL);
            continue;
        }
        dt_arena *arena = dt_arena_new();
        uint8_t *buf = NULL;
        size_t len = 0;
        f->sessions = sessions;
        dt_status st = arena ? pack_work_item(w, arena, f, streams, limit, &buf, &len, &err)
                             : DT_ERR_NOMEM;
        if (st == DT_ERR_STATE) {   /* too large for this worker: fail it, go on */
            if (!unlist(w, f)) {
                /* taken meanwhile: its taker has it */
            } else if (f->orch) {
                fail_instance(rpc_hub(c), f, arena, TOO_LARGE_TYPE, err.message, &err);
            } else if (f->act) {
                const dt_failure *why = arena ? dt_failure_new(arena, "PayloadTooLarge", "%s",
                                                               err.message)
                                              : NULL;
                if (why)
                    dt_hub_complete_activity(rpc_hub(c), f->act, NULL, why, &err);
                else
                    dt_hub_abandon_activity(rpc_hub(c), f->act, NULL);
                inflight_free(f);
            }
            dt_arena_free(arena);
            continue;
        }
        if (st == DT_OK)
            hand(w, f);   /* F is not read again here unless unlist gives it back */
        bool sent = st == DT_OK && rpc_send(c, buf, len);
        dt_arena_free(arena);
        if (sent)
            last_sent = dt_now();
        if (!sent) {
            if (unlist(w, f))
                give_back(f, st != DT_OK);   /* could not even be packed: not at once */
            if (st == DT_OK)
                break;   /* the worker went away */
        }
    }
    give_back_stream(w, stream);   /* after it, no entry names REC: nobody rings BELL */
    dt_hub_bell_free(bell);
    dt_arena_free(ra);
    char why[160];
    snprintf(why, sizeof why, "task hub '%s' was deleted", rpc_task_hub(c));
    rpc_finish(c, NULL, 0,
               deleted ? GRPC_STATUS_NOT_FOUND
                       : rpc_stopping(c) ? GRPC_STATUS_UNAVAILABLE : GRPC_STATUS_OK,
               deleted ? why : rpc_stopping(c) ? "the server is stopping" : "");
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

/* reply: the answer to a completion or abandon: done, or the error ST (ERR says why). */
static void reply(rpc_call *c, dt_status st, const dt_error *err)
{
    if (st == DT_OK)
        reply_done(c);
    else
        rpc_fail_err(c, st, err);
}

/* add_chunk: the actions of DONE to F's chunked completion so far (copied: they live in the
 * request's arena), LEN bytes more of it, held against the server's bound (C's) until the
 * entry is freed: a worker holds as many items as it likes. A completion is kept to half
 * that bound, as its last chunk is held twice for a while (as its call's request too):
 * larger, it could never be taken, and DT_ERR_INVALID_ARG says so. */
static dt_status add_chunk(rpc_call *c, inflight *f, const svc_orch_completion *done,
                           size_t len, dt_error *err)
{
    size_t max = rpc_held_max(c) / 2;
    max = max < CHUNK_BYTES_MAX ? max : CHUNK_BYTES_MAX;
    if (f->next_chunk >= CHUNKS_MAX || f->chunk_bytes + len > max)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "a chunked completion may have at most %d chunks and %zu bytes "
                            "(%zu MiB, and half of the server's --max-held-mb: it is kept "
                            "until its last chunk)", CHUNKS_MAX, max, CHUNK_BYTES_MAX >> 20);
    char why[320];
    if (!rpc_hold_kept(c, len, why, sizeof why))
        return dt_error_set(err, DT_ERR_NOMEM, "%s", why);
    f->held_by = rpc_server_of(c);
    f->chunk_bytes += len;   /* counted now, so that inflight_free gives it back */
    if (f->chunk_arena == NULL && (f->chunk_arena = dt_arena_new()) == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    size_t n = done->result.n_actions;
    dt_action *v = dt_grow(f->chunk_acts, &f->cap_chunk_acts, f->n_chunk_acts + n + 1,
                           sizeof *v);
    if (v == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    f->chunk_acts = v;
    for (size_t i = 0; i < n; i++)
        if (dt_action_copy(f->chunk_arena, &done->result.actions[i],
                           &f->chunk_acts[f->n_chunk_acts + i]) != DT_OK)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    f->n_chunk_acts += n;
    f->next_chunk++;
    return DT_OK;
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
    if (wrong_ids(c, w, rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION, r->instanceid,
                  0))
        return;
    inflight *f = claim(w, rpc_hub(c), r->completiontoken);
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
        if (unlist(w, f)) {
            if (in_order && worker_fault(st))   /* over the bounds: it would be again */
                st = fail_episode(rpc_hub(c), f, a, st, &err);
            else
                give_back(f, true);   /* nothing applied; redelivered after a back-off */
        }
        rpc_fail_err(c, st, &err);
        return;
    }
    if (done->partial) {
        unclaim(w, f);
        reply_done(c);
        return;
    }
    unlist(w, f);   /* the last chunk: the entry is ours (a busy one is taken by no one) */
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
    hint_set(w, f->hub, id, ends ? 0 : f->stream);
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
    inflight *f = take(w, rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION, r->instanceid,
                       0);
    if (f == NULL) {
        if (!wrong_ids(c, w, rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION,
                       r->instanceid, 0))
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
        give_back(f, false);
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
        give_back(f, true);
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

static void orchestration_completed(void *arg, dt_status st, const dt_error *err)
{
    orch_pending *o = arg;
    if (st != DT_OK && o->sessions)   /* not committed: its next episode gets the past */
        hint_set(rpc_workers(o->p->call), o->hub, o->instance_id, 0);
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
        f = take(rpc_workers(c), rpc_hub(c), r->completiontoken, DT_WORK_ORCHESTRATION,
                 r->instanceid, 0);
    if (f == NULL || (o->instance_id = dt_arena_strdup(p->arena, f->orch->instance_id)) == NULL) {
        if (f)
            give_back(f, false);   /* out of memory: the worker hears of it and retries */
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
        f = take(rpc_workers(c), rpc_hub(c), r->completiontoken, DT_WORK_ACTIVITY,
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
    dt_hub_complete_activity_async(hub, item, result, done.failure, completed, p);
    return true;
}

/* late_result: R completes an activity given back when its stream ended (a worker that
 * reconnected): deliver its result if this is the first, acknowledge and drop it if not.
 * False if R's token is not one of those. */
static bool late_result(rpc_call *c, dt_arena *a, const Dtpb__ActivityResponse *r)
{
    worker_registry *w = rpc_workers(c);
    if (r->completiontoken == NULL || r->completiontoken[0] == '\0')
        return false;
    pthread_mutex_lock(&w->mu);
    released *found = NULL;
    for (size_t i = 0; i < RELEASED_MAX && found == NULL; i++)
        if (w->rel[i].instance_id && w->rel[i].hub_id == dt_hub_id(rpc_hub(c)) &&
            strcmp(w->rel[i].token, r->completiontoken) == 0)
            found = &w->rel[i];
    char msg[400] = "";
    if (found && !ids_agree(found->instance_id, found->task_id, r->instanceid, r->taskid)) {
        wrong_ids_say(msg, sizeof msg, c, r->completiontoken, "an activity",
                      found->instance_id, found->task_id, r->instanceid, r->taskid);
        found = NULL;
    }
    bool first = found && !found->used;
    released copy = {0};
    if (first) {
        found->used = true;
        copy.instance_id = dt_arena_strdup(a, found->instance_id);
        copy.execution_id = dt_arena_strdup(a, found->execution_id);
        copy.task_id = found->task_id;
    }
    pthread_mutex_unlock(&w->mu);
    if (msg[0]) {
        rpc_finish(c, NULL, 0, GRPC_STATUS_INVALID_ARGUMENT, msg);
        return true;
    }
    if (found == NULL)
        return false;
    dt_error err = {0};
    dt_status st = DT_OK;
    if (first) {
        svc_activity_completion done;
        st = copy.instance_id ? svc_activity_response_from_msg(a, r, &done, &err)
                              : dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
        const char *result = st == DT_OK && done.result && done.result[0] ? done.result : NULL;
        if (st == DT_OK)
            st = dt_hub_deliver_activity_result(rpc_hub(c), copy.instance_id,
                                                copy.execution_id, copy.task_id, result,
                                                done.failure, &err);
        if (st == DT_ERR_NOT_FOUND)
            st = DT_OK;   /* the instance is gone: nothing left to tell */
    }
    reply(c, st, &err);
    return true;
}

RPC_HANDLER(complete_activity, Dtpb__ActivityResponse, dtpb__activity_response__descriptor)
{
    worker_registry *w = rpc_workers(c);
    inflight *f = take(w, rpc_hub(c), r->completiontoken, DT_WORK_ACTIVITY, r->instanceid,
                       r->taskid);
    if (f == NULL) {
        if (!wrong_ids(c, w, rpc_hub(c), r->completiontoken, DT_WORK_ACTIVITY, r->instanceid,
                       r->taskid) &&
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
        st = dt_hub_complete_activity(rpc_hub(c), f->act, result, done.failure, &err);
        inflight_free(f);
    } else if (worker_fault(st)) {
        /* the activity's result is unreadable: it failed, and the orchestration decides */
        const dt_failure *why = dt_failure_new(a, REFUSED_TYPE, "the worker's result of this "
                                               "activity could not be applied: %s", err.message);
        dt_error refused = err;
        dt_status failed = why ? dt_hub_complete_activity(rpc_hub(c), f->act, NULL, why, &err)
                               : (dt_hub_abandon_activity(rpc_hub(c), f->act, NULL), DT_ERR_NOMEM);
        inflight_free(f);
        if (failed != DT_OK)
            st = dt_error_set(&err, failed, "%s", dt_strerror(failed));
        else
            dt_error_set(&err, st, "%s; the activity was failed with %s", refused.message,
                         REFUSED_TYPE);
    } else {
        give_back(f, true);
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
    if (a == NULL) {
        rpc_fail(c, DT_ERR_NOMEM, "out of memory");
        return;
    }
    if (rpc_recv_msg(c, a, desc[kind], (void **)&r)) {
        worker_registry *w = rpc_workers(c);
        inflight *f = take(w, rpc_hub(c), r->completiontoken, kind, NULL, 0);
        if (f == NULL) {
            unknown_token(c, r->completiontoken);
        } else {
            give_back(f, true);
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
                      ? take(w, rpc_hub(c), r->completiontoken, DT_WORK_ENTITY, NULL, 0)
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
        give_back(f, true);
    }
    reply(c, st, &err);
}

const rpc_method rpc_worker_methods[] = {
    {"GetWorkItems", get_work_items, NULL},
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
