/* workers.c — the registry of work items in flight to remote workers: every item a
 * GetWorkItems stream hands out is registered under a completion token, with its stream, until
 * a completion takes it (by its token or, when it brings none, by instance id and task id) or
 * the stream ends and gives back what it still holds. It also keeps, per instance, which
 * stream completed its last episode (extended sessions), and the activities given back when
 * their stream ended, for their late results. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sync.h"
#include "workers.h"

/* Session hints: which stream completed each instance's last episode, a lossy table (a
 * collision forgets one, which costs a full history); streams never reuse an id, so a hint
 * of a stream that ended matches nothing. */
#define HINTS 4096

typedef struct hint {
    const dt_hub *hub;
    char *instance_id;          /* NULL: the slot is free */
    uint64_t stream;
} hint;

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

void inflight_free(inflight *f)
{
    if (f->held_by)
        rpc_give_kept(f->held_by, f->chunk_bytes);
    dt_arena_free(f->chunk_arena);
    free(f->chunk_acts);
    free(f);
}

/* inflight_give_back: with BACKOFF the hub's abandon (redelivered after a growing wait, not
 * in a hot loop), without it the hub's release (any worker may have it at once). */
void inflight_give_back(inflight *f, bool backoff)
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

void inflight_give_back_for(inflight *f, dt_status st)
{
    if (st != DT_ERR_NOMEM || f->orch == NULL) {
        inflight_give_back(f, true);
        return;
    }
    dt_hub_retry_orchestration(f->hub, f->orch, NULL);
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
        inflight_give_back(f, false);   /* the server is stopping */
    }
    for (size_t i = 0; i < RELEASED_MAX; i++)
        released_clear(&w->rel[i]);
    for (size_t i = 0; i < HINTS; i++)
        free(w->hints[i].instance_id);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- the registry of work in flight ---------------------------------------------------------- */

uint64_t workers_new_stream(worker_registry *w)
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

inflight *workers_enlist(worker_registry *w, dt_hub *hub, uint64_t stream, stream_rec *rec,
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

/* ---- session hints --------------------------------------------------------------------------- */

static hint *hint_slot(worker_registry *w, const dt_hub *hub, const char *id)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uintptr_t)hub;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return &w->hints[h % HINTS];
}

void workers_hint_set(worker_registry *w, const dt_hub *hub, const char *id, uint64_t stream)
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

bool workers_hint_is(worker_registry *w, const dt_hub *hub, const char *id, uint64_t stream)
{
    pthread_mutex_lock(&w->mu);
    hint *x = hint_slot(w, hub, id);
    bool is = x->instance_id && x->hub == hub && x->stream == stream &&
              strcmp(x->instance_id, id) == 0;
    pthread_mutex_unlock(&w->mu);
    return is;
}

/* ---- taking entries -------------------------------------------------------------------------- */

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

inflight *workers_take(worker_registry *w, const dt_hub *hub, const char *token, int kind,
                       const char *instance_id, int32_t task_id)
{
    bool orch = kind == DT_WORK_ORCHESTRATION;
    pthread_mutex_lock(&w->mu);
    inflight *found = NULL;
    for (inflight **p = &w->items; *p; p = &(*p)->next) {
        inflight *f = *p;
        bool match;
        if (!f->handed || f->busy || f->hub != hub || f->next_chunk > 0)
            match = false;   /* (a chunked completion begun ends with its last chunk only) */
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

bool workers_wrong_ids(rpc_call *c, worker_registry *w, const dt_hub *hub, const char *token,
                       int kind, const char *instance_id, int32_t task_id)
{
    if (token == NULL || token[0] == '\0')
        return false;
    char msg[400] = "";
    pthread_mutex_lock(&w->mu);
    for (inflight *f = w->items; f && !msg[0]; f = f->next) {
        if (f->hub != hub || kind_of(f) != kind || strcmp(f->token, token) != 0)
            continue;
        if (!agrees(f, instance_id, task_id))
            wrong_ids_say(msg, sizeof msg, c, token, f->orch ? "an episode" : "an activity",
                          f->orch ? f->orch->instance_id : f->act->instance_id,
                          f->orch ? -1 : f->act->task_id, instance_id, task_id);
    }
    pthread_mutex_unlock(&w->mu);
    if (msg[0])
        rpc_finish(c, NULL, 0, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return msg[0] != '\0';
}

bool workers_chunks_begun(rpc_call *c, worker_registry *w, const dt_hub *hub, const char *token)
{
    if (token == NULL || token[0] == '\0')
        return false;
    char msg[400] = "";
    pthread_mutex_lock(&w->mu);
    for (inflight *f = w->items; f && !msg[0]; f = f->next)
        if (f->orch && f->hub == hub && strcmp(f->token, token) == 0 && !f->busy &&
            f->next_chunk > 0)
            snprintf(msg, sizeof msg, "%s: completion token '%.60s' has %d chunk(s) of a chunked "
                     "completion in: it ends with chunk %d (chunkIndex %d, isPartial false), "
                     "not with a completion that has no chunk index; nothing was changed",
                     rpc_method_name(c), token, (int)f->next_chunk, (int)f->next_chunk,
                     (int)f->next_chunk);
    pthread_mutex_unlock(&w->mu);
    if (msg[0])
        rpc_finish(c, NULL, 0, GRPC_STATUS_INVALID_ARGUMENT, msg);
    return msg[0] != '\0';
}

bool workers_expire_chunks(worker_registry *w, uint64_t stream, dt_time before)
{
    inflight **oldest = NULL;
    pthread_mutex_lock(&w->mu);
    for (inflight **p = &w->items; *p; p = &(*p)->next)
        if ((*p)->stream == stream && !(*p)->busy && (*p)->next_chunk > 0 &&
            (*p)->chunk_at < before && (oldest == NULL || (*p)->chunk_at < (*oldest)->chunk_at))
            oldest = p;
    inflight *f = oldest ? *oldest : NULL;
    if (f) {
        *oldest = f->next;
        unlinked(w, f);
    }
    pthread_mutex_unlock(&w->mu);
    if (f == NULL)
        return false;
    dt_log(DT_LOG_WARN, f->orch->instance_id, "a chunked completion stopped after chunk %d: the "
           "episode goes back, its chunks freed", (int)f->next_chunk - 1);
    inflight_give_back(f, true);
    return true;
}

void workers_hand(worker_registry *w, inflight *f)
{
    pthread_mutex_lock(&w->mu);
    f->handed = true;
    pthread_mutex_unlock(&w->mu);
}

bool workers_unlist(worker_registry *w, inflight *f, const char *token)
{
    bool found = false;
    pthread_mutex_lock(&w->mu);
    for (inflight **p = &w->items; *p; p = &(*p)->next)
        if (*p == f && strcmp(f->token, token) == 0) {   /* tokens are never reused */
            *p = f->next;
            unlinked(w, f);
            found = true;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    return found;
}

inflight *workers_claim(worker_registry *w, const dt_hub *hub, const char *token)
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

void workers_unclaim(worker_registry *w, inflight *f)
{
    pthread_mutex_lock(&w->mu);
    f->busy = false;
    bool gone = f->gone;
    pthread_mutex_unlock(&w->mu);
    if (gone && workers_unlist(w, f, f->token))
        inflight_give_back(f, false);
}

int workers_wants(worker_registry *w, stream_rec *rec)
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

void workers_give_back_stream(worker_registry *w, uint64_t stream)
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
        inflight_give_back(f, false);
    }
}

/* ---- failing an instance --------------------------------------------------------------------- */

dt_status inflight_fail(dt_hub *hub, inflight *f, dt_arena *a, const char *type,
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

/* ---- late results of activities given back --------------------------------------------------- */

/* released_find: the activity given back under TOKEN in C's hub, or NULL (w->mu held). */
static released *released_find(worker_registry *w, rpc_call *c, const char *token)
{
    uint64_t hub_id = dt_hub_id(rpc_hub(c));
    for (size_t i = 0; i < RELEASED_MAX; i++)
        if (w->rel[i].instance_id && w->rel[i].hub_id == hub_id &&
            strcmp(w->rel[i].token, token) == 0)
            return &w->rel[i];
    return NULL;
}

void workers_released_unuse(worker_registry *w, rpc_call *c, const char *token)
{
    pthread_mutex_lock(&w->mu);
    released *found = released_find(w, c, token);
    if (found)
        found->used = false;
    pthread_mutex_unlock(&w->mu);
}

late_kind workers_released(worker_registry *w, rpc_call *c, const char *token,
                           const char *instance_id, int32_t task_id, dt_arena *a,
                           late_activity *out, char *msg, size_t size)
{
    if (token == NULL || token[0] == '\0')
        return LATE_UNKNOWN;
    late_kind kind = LATE_UNKNOWN;
    pthread_mutex_lock(&w->mu);
    released *found = released_find(w, c, token);
    if (found && !ids_agree(found->instance_id, found->task_id, instance_id, task_id)) {
        wrong_ids_say(msg, size, c, token, "an activity", found->instance_id, found->task_id,
                      instance_id, task_id);
        kind = LATE_WRONG_IDS;
    } else if (found && found->used) {
        kind = LATE_AGAIN;
    } else if (found) {
        found->used = true;
        out->instance_id = dt_arena_strdup(a, found->instance_id);
        out->execution_id = dt_arena_strdup(a, found->execution_id);
        out->task_id = found->task_id;
        kind = LATE_FIRST;
    }
    pthread_mutex_unlock(&w->mu);
    return kind;
}
