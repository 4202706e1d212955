/* workers.h — what the worker side of the server shares among its files: the registry of work
 * items in flight to remote workers (workers.c), the GetWorkItems stream that hands them out
 * (get_work_items.c) and the calls that complete or abandon them (worker_rpcs.c). */
#ifndef DT_GRPC_WORKERS_H
#define DT_GRPC_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc.h"

/* A work item stream's own record, on its thread's stack and named by its entries: how many
 * of its items of each kind (orchestrations, activities, entities) the worker holds and how
 * many it said it takes; CAPPED while its thread waits with a kind at that limit: an item of
 * that kind coming back then rings its bell, so the thread looks again at once. */
typedef struct stream_rec {
    int n[3], max[3];           /* w->mu */
    bool capped;                /* w->mu */
    dt_hub_bell *bell;          /* of the stream's hub, which is each entry's */
} stream_rec;

/* A work item handed (or about to be handed) to a worker, under its completion token. */
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
    dt_time chunk_at;           /* when the last chunk came */
    dt_grpc_server *held_by;    /* CHUNK_BYTES count against its bound (rpc_hold_kept) */
    int32_t next_chunk;
    struct inflight *next;
} inflight;

/* ---- workers.c: the registry ---------------------------------------------------------------- */

/* workers_new_stream: a new stream's id (never reused). */
uint64_t workers_new_stream(worker_registry *w);

/* workers_enlist: register an item for STREAM (its record REC) under a new completion token
 * (the entry's token); not handed yet, so no completion can take it. NULL when out of
 * memory. */
inflight *workers_enlist(worker_registry *w, dt_hub *hub, uint64_t stream, stream_rec *rec,
                         const dt_work *work);

/* workers_hand: F goes to the worker now; completions may take it. */
void workers_hand(worker_registry *w, inflight *f);

/* workers_unlist: remove F if it is still registered under TOKEN (no completion took it);
 * true if so, and F is the caller's again. TOKEN is the caller's copy of F's: once handed, F
 * may be taken and freed, and its memory be another entry's by then. */
bool workers_unlist(worker_registry *w, inflight *f, const char *token);

/* workers_take: remove and return HUB's handed entry of KIND (DT_WORK_*) with TOKEN (or,
 * without a token, the orchestration of INSTANCE_ID, or the activity INSTANCE_ID/TASK_ID; an
 * entity's needs its token), or NULL; the caller owns it. A token whose work item is of
 * another instance or task than the completion names takes nothing (workers_wrong_ids says
 * why). */
inflight *workers_take(worker_registry *w, const dt_hub *hub, const char *token, int kind,
                       const char *instance_id, int32_t task_id);

/* workers_wrong_ids: answer C (INVALID_ARGUMENT, true) if TOKEN is HUB's work item of KIND in
 * flight of another instance or task than the completion names (INSTANCE_ID, TASK_ID): a
 * worker's mix-up, refused with nothing changed rather than applied to the item the token
 * names. */
bool workers_wrong_ids(rpc_call *c, worker_registry *w, const dt_hub *hub, const char *token,
                       int kind, const char *instance_id, int32_t task_id);

/* workers_chunks_begun: answer C (INVALID_ARGUMENT, true) if TOKEN is HUB's episode whose
 * chunked completion has begun: a completion with no chunk index would end it with its own
 * actions, the chunks before it lost, so workers_take leaves it to its last chunk. */
bool workers_chunks_begun(rpc_call *c, worker_registry *w, const dt_hub *hub,
                          const char *token);

/* workers_expire_chunks: of STREAM's entries whose chunked completion has begun and whose
 * last chunk came before BEFORE, the one that waited longest goes back to the hub (after a
 * back-off), its chunks freed: kept chunks hold the server's bound, and a worker that stops
 * sending them must not hold it for as long as its stream lives. False if there was none. */
bool workers_expire_chunks(worker_registry *w, uint64_t stream, dt_time before);

/* workers_claim: HUB's handed orchestration entry of TOKEN, marked busy and left in the list
 * (so its stream still counts it), or NULL. workers_unclaim: F's chunk is in; if its stream
 * ended meanwhile, F goes back now. */
inflight *workers_claim(worker_registry *w, const dt_hub *hub, const char *token);
void workers_unclaim(worker_registry *w, inflight *f);

/* workers_wants: the kinds (DT_WORK_*) the stream of REC takes more of now; with one at its
 * limit the stream is marked capped, so that the item's return rings its bell. */
int workers_wants(worker_registry *w, stream_rec *rec);

/* workers_give_back_stream: everything STREAM still holds goes back to the hub; an entry a
 * chunk is being read for is marked gone, and goes back when that is done (workers_unclaim).
 * The activities it had handed out are remembered for their late results
 * (workers_released). */
void workers_give_back_stream(worker_registry *w, uint64_t stream);

/* workers_hint_set: STREAM completed the last episode of HUB's instance ID (0: forget it).
 * workers_hint_is: did it? (Extended sessions: that stream's worker has the past.) */
void workers_hint_set(worker_registry *w, const dt_hub *hub, const char *id, uint64_t stream);
bool workers_hint_is(worker_registry *w, const dt_hub *hub, const char *id, uint64_t stream);

/* What a late activity result's token is (workers_released). */
typedef enum { LATE_UNKNOWN, LATE_FIRST, LATE_AGAIN, LATE_WRONG_IDS } late_kind;
typedef struct late_activity {
    const char *instance_id, *execution_id;   /* in the caller's arena */
    int32_t task_id;
} late_activity;

/* workers_released: is TOKEN that of an activity of C's hub given back when its stream
 * ended? LATE_FIRST: its first result (marked used; its ids into *OUT, in A; an id NULL when
 * out of memory), LATE_AGAIN: a later one, LATE_WRONG_IDS: the completion names another
 * instance or task (MSG, SIZE bytes, says so), LATE_UNKNOWN: no such token. */
late_kind workers_released(worker_registry *w, rpc_call *c, const char *token,
                           const char *instance_id, int32_t task_id, dt_arena *a,
                           late_activity *out, char *msg, size_t size);

/* workers_released_unuse: the first result under TOKEN (LATE_FIRST) was refused (it did not
 * read, or the hub would not take it): the next one is taken as the first. */
void workers_released_unuse(worker_registry *w, rpc_call *c, const char *token);

/* inflight_free: F, whose item is no longer its own (completed, or given back), freed.
 * inflight_give_back: F's item goes back to the hub (which frees it), and F is freed. With
 * BACKOFF the worker gave it up, or its result was refused: it is redelivered after a
 * growing wait, not in a hot loop; without, its worker went away and any other may have it
 * at once. */
void inflight_free(inflight *f);
void inflight_give_back(inflight *f, bool backoff);

/* inflight_give_back_for: as inflight_give_back with BACKOFF, for a result refused with ST;
 * an orchestration's refused for want of memory (the server's bounds, not the work's) goes
 * back without counting as a delivery without a result (dt_hub_retry_orchestration). */
void inflight_give_back_for(inflight *f, dt_status st);

/* inflight_fail: end F's instance (an orchestration's) as Failed with a failure of TYPE
 * saying WHY (in A; NULL A: out of memory, the item goes back); F is consumed. */
dt_status inflight_fail(dt_hub *hub, inflight *f, dt_arena *a, const char *type,
                        const char *why, dt_error *err);

/* ---- get_work_items.c ------------------------------------------------------------------------ */

/* rpc_get_work_items: the GetWorkItems stream (a blocking handler). */
void rpc_get_work_items(rpc_call *c);

#endif
