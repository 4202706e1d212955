/* hub_internal.h — the hub's state, shared by its files: hub.c (open, close, change
 * notification, client operations), manage.c (the lifecycle commands, queries), purge.c
 * (purges), commit.c (group commit), episode.c (actions to history), dispatch.c (leasing,
 * lease renewal, the pull API, dispatch loops), backoff.c (how long abandoned work waits),
 * ready.c (work leased by commits, and the takers), cache.c (histories between episodes),
 * metrics.c (counters and timings), health.c (whether the store takes writes). */
#ifndef DT_HUB_INTERNAL_H
#define DT_HUB_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "core/sync.h"
#include "durabletask/hub.h"
#include "hub/rewind_plan.h"

/* A commit waiting for the committer thread. A synchronous request lives on the requesting
 * thread's stack and waits on its own CV; an asynchronous one (FINISH set) is handed over,
 * and the committer calls FINISH once it is committed, which frees it. An asynchronous
 * activity result the store had no room for is parked (commit.c) and tried again. */
typedef struct commit_req {
    dt_commit *commit;
    bool done;
    pthread_cond_t *cv;
    void (*finish)(struct commit_req *req);
    struct commit_req *next;
    bool parked;                  /* refused, to be tried again at RETRY_AT */
    bool owed;                    /* not parked after all: its after_commit is still due */
    int tries;                    /* times parked */
    size_t park_bytes;            /* what it holds, counted while parked */
    dt_time retry_at;
    /* asked before its first parking, if set: false if the requester cannot hold it */
    bool (*on_park)(struct commit_req *req);
} commit_req;

/* A result handed to the committer without waiting (the in-process loops, and the
 * asynchronous completions of remote workers): the committer frees it with its memory once
 * it is committed and durable, after telling DONE (when set) how it went. Nothing is lost
 * meanwhile: until the commit, the work item is still leased here. */
typedef struct done_item {
    commit_req req;
    dt_hub *hub;                  /* its committer's (hub_commit_done) */
    dt_commit c;
    dt_arena *arena;
    dt_orch_item *orch;
    dt_activity_item *act;
    dt_hub_done_fn done;
    dt_hub_waits_fn waits;        /* asked when the result first waits for room */
    void *done_arg;
} done_item;


/* hub_commit_done: hand D (its entry built) to the committer (dispatch.c). */
void hub_commit_done(dt_hub *hub, done_item *d);

/* hub_activity_commit: the commit entry C of activity ITEM's RESULT or FAILURE. */
void hub_activity_commit(dt_commit *c, const dt_activity_item *item, const char *result,
                         const dt_failure *failure);

/* hub_begin_episode: ITEM's new events for its episode, behind an OrchestratorStarted,
 * without what the worker must not see (dispatch.c; DT_ERR_NOMEM when out of memory). */
dt_status hub_begin_episode(dt_hub *hub, dt_orch_item *item);

/* hub_next_activity: an activity work item of NAMES (NULL: any) into *OUT, waiting at most
 * TIMEOUT_MS for one; *OUT NULL when none came. */
dt_status hub_next_activity(dt_hub *hub, int64_t timeout_ms, const dt_name_filter *names,
                            dt_activity_item **out, dt_error *err);

/* Work leased by a commit in its own transaction (dt_commit_lease), waiting for a taker:
 * a ring per kind, of at most READY_MAX items (ready_room keeps commits from leasing more;
 * ring_push asserts it). Its leases are tracked (renewed) from the moment it is queued. */
#define READY_MAX 256
typedef struct ready_ring {
    void *items[READY_MAX];
    size_t head, n;
} ready_ring;

/* A client waiting for one instance to change (dt_hub_wait). Woken by the committer when an
 * episode of that instance commits, so a thousand waiters do not all wake for every commit.
 * It sleeps on a mutex of its own, not the hub's ch_mu, so a woken waiter does not queue
 * behind the syncer (still walking the list) and the other waiters for the hub's lock.
 * An asynchronous wait (dt_hub_wait_async, waits.c) is a waiter too, with FN set: it holds
 * no thread and has no mutex or condition; ch_mu guards all of its fields. */
typedef struct waiter {
    const char *instance_id;
    dt_wait_for what;             /* woken only by a commit that reaches it */
    pthread_mutex_t mu;           /* guards changed */
    pthread_cond_t cv;
    bool changed;                 /* an episode of the instance committed since last looked */
    /* the row the last episode that reached WHAT left, durable (mu): answered without a read */
    dt_instance_state *reached;
    dt_arena *reached_arena;
    /* hub->batches_in when it was listed: what those batches left, it reads itself (after
     * listing), and their rows may be older than that read: a write made between a batch's
     * commit and its publishing (a rewind's reopen) is newer. Only later batches wake it.
     * (A batch is numbered just after its commit returns; dt_hub_rewind also waits for what
     * was committed before it to be published, so that gap cannot matter to a rewind.) */
    uint64_t listed_after;
    struct waiter *next, **pprev; /* its bucket's list (hub->waiters), under ch_mu */
    /* an asynchronous wait's (waits.c), else FN is NULL; REACHED, CHANGED: under ch_mu */
    dt_hub_wait_fn fn;
    void *arg;
    bool reading;                 /* the waits' thread has it off its queues: only that
                                   * thread answers it or frees it */
    dt_time due;                  /* on the later queue: when it is looked at next */
    dt_time read_at;              /* when its state is read for other processes' changes */
    struct waiter *q_next, **q_pprev;   /* its queue (hub->aw_soon or aw_later), or NULL */
} waiter;

/* waiter_wake: tell W its instance changed (ch_mu held, so W is still listed). */
void waiter_wake(waiter *w);

/* waiter_link / waiter_unlink: W into / out of its bucket (ch_mu held). */
void waiter_link(dt_hub *hub, waiter *w);
void waiter_unlink(dt_hub *hub, waiter *w);

/* hub_wait_poll_ms: how long a waiter waits between looks at the store, for changes no
 * commit of this hub tells of (other processes'): the more that wait, the longer. */
int64_t hub_wait_poll_ms(dt_hub *hub);

/* hub_may_exist: could an instance named ID ever exist (a valid instance id)? A wait on a
 * missing one waits for it to be started; on an id no instance can have, it does not. */
bool hub_may_exist(const char *id);

/* hub_state_reached: has state S reached WHAT? */
bool hub_state_reached(const dt_instance_state *s, dt_wait_for what);

/* hub_row_of: the row episode EP left, in a new arena (*ARENA); NULL (no arena) if it
 * cannot be told without a read (hub.c). */
dt_instance_state *hub_row_of(const dt_episode *ep, dt_arena **arena);

/* waits.c: waits_reached: EP, durable, reached what asynchronous waiter W waits for (ch_mu
 * held): W keeps the row EP left and is answered soon with it (or read, if it cannot be
 * told). waits_wake: W's instance changed: it is read soon (ch_mu held). waits_stop: the
 * waits' thread ends, and every wait left is answered (DT_ERR_SHUTDOWN, unless a row came). */
void waits_reached(dt_hub *hub, waiter *w, const dt_episode *ep);
void waits_wake(dt_hub *hub, waiter *w);
void waits_stop(dt_hub *hub);

/* A taker asleep in hub_wait_work: the kinds it takes (WANT, of DT_WORK_*) and its names of
 * orchestrations and activities (NULL: any). Work a commit queues in a ring wakes one
 * sleeper per item (ready.c), not every taker; a change in the store wakes them all; its
 * bell, if it has one, wakes it alone. */
typedef struct sleeper {
    int want;
    const dt_name_filter *orch, *act;
    dt_hub_bell *bell;            /* or NULL */
    bool rang;                    /* its bell woke it (or had rung before it slept) */
    sem_t sem;                    /* posted once, when woken */
    bool woken;                   /* taken off the list, its post made or on its way */
    int woken_for;                /* the ring (0 orchestrations, 1 activities) whose item woke
                                   * it, -1 if none did */
    struct sleeper *next;
} sleeper;

/* A taker's bell (dt_hub_bell_ring): RUNG when it rang while its taker was not asleep, so
 * the taker's next wait does not sleep. Under the ch_mu of the one hub it serves. */
struct dt_hub_bell {
    bool rung;
};

/* A leased work item whose lease the renewer keeps alive: one of the three set. */
typedef struct lease_entry {
    const dt_orch_item *orch;
    const dt_activity_item *act;
    const dt_entity_item *ent;
    struct lease_entry *next;
} lease_entry;

/* A taker that asked for work with a name filter (a worker that runs only some names), as
 * ready.c remembers it: a copy of the names, and when it last asked. */
#define MAX_FILTERED 32
typedef struct taker {
    const dt_name_filter *key;    /* the taker's own filter: who it is (never dereferenced) */
    int kind;                     /* 0 orchestrations, 1 activities */
    dt_arena *arena;              /* holds FILTER, a copy of the taker's names and versions */
    dt_name_filter filter;
    dt_time asked_at;
} taker;

/* An instance abandoned lately, and how many times in a row (backoff.c). */
#define ABANDON_NOTES 256
typedef struct abandon_note {
    char id[DT_INSTANCE_ID_MAX + 1];
    int count;                    /* 0: the slot is free */
    dt_time at;
} abandon_note;

typedef struct hub_cache hub_cache;
typedef struct hub_metrics hub_metrics;

#define UNSYNCED_COUNTS 1024   /* hub->unsynced: a power of two */
#define WAIT_BUCKETS 1024      /* hub->waiters: a power of two */

struct dt_hub {
    uint64_t id;                  /* unique in the process, never reused (dt_hub_id) */
    dt_store *store;
    bool sync_made;               /* the mutexes and conditions below exist (hub.c) */
    hub_cache *cache;             /* decoded histories between episodes (cache.c) */
    hub_metrics *metrics;         /* counters and timings (metrics.c) */
    int64_t lease_us;
    size_t max_batch;
    size_t max_history;           /* history payload bytes an execution may keep; 0: default */
    char owner[128];
    dt_time started_at;           /* when it opened: its node's start (dt_hub_nodes) */
    dt_time beat_at;              /* its last heartbeat (the renewer's) */
    bool beats;                   /* its store keeps heartbeats (not SQLite's) */
    bool shared;                  /* its store is shared by nodes (it kept heartbeats when
                                   * opened): its reads are network round trips */
    bool watched;                 /* its store says when another node made work (PostgreSQL):
                                   * takers poll once a second, or when work comes due */
    _Atomic dt_time next_due;     /* when the earliest work queued for later does (0: none) */
    _Atomic dt_time due_checked_at;
    _Atomic uint64_t due_version; /* store_version when next_due was last learned */

    /* group commit: cq_mu guards the queue, the stop flag and every req->done */
    pthread_mutex_t cq_mu;
    pthread_cond_t cq_work;       /* the committer waits for requests */
    pthread_cond_t cq_done;       /* requesters wait for their commit */
    commit_req *cq_head, *cq_tail;
    commit_req *parked;           /* refused for room or memory, to be tried again */
    commit_req *due, *due_tail;   /* parked ones due for their next try, each alone */
    size_t n_parked, parked_bytes;   /* parked, from their first parking to their finish */
    size_t park_max, park_max_bytes;  /* their bounds (dt_hub_options.max_waiting_*) */
    bool no_parking;              /* dt_hub_stop_waiting: refusals are told at once */
    bool cq_stop;
    pthread_t committer;
    struct committer *cm;         /* commit.c's, for commit_hurry */

    /* change notification: every commit, start or message bumps `version`. Takers sleep
     * apart (`sleepers`, hub_wait_work); other waits (hub_wait_change) sleep on `changed`,
     * with a poll timeout, since other processes may share the store. ch_mu guards version
     * and the sleepers. */
    pthread_mutex_t ch_mu;
    pthread_cond_t changed;
    sleeper *sleepers;            /* takers asleep (hub_wait_work) */
    atomic_size_t wakes_pending[2]; /* sleepers a ring's item woke that have not looked yet */
    uint64_t version;
    /* dt_hub_wait's, by hub_hash_id of their instance's id, guarded by ch_mu: a commit
     * looks only at the waiters of its own instances, a wait leaves in constant time */
    waiter *waiters[WAIT_BUCKETS];
    atomic_size_t n_waiters;      /* listed in waiters (changed under ch_mu) */
    _Atomic uint64_t batches_in;  /* batches the store has committed (commit.c), numbered */
    /* asynchronous waits (waits.c), under ch_mu, each on one of two queues of the thread
     * that looks after them (started by the first, asleep on aw_wake): SOON, to be looked
     * at now (new, changed, reached); LATER, by when they are looked at next */
    waiter *aw_soon, **aw_soon_tail, *aw_later, **aw_later_tail;
    pthread_cond_t aw_wake;
    pthread_t aw_thread;
    bool aw_started, aw_stop;
    bool aw_took_later;           /* the thread's last look was LATER's (next) */
    /* bumped (with version) when work may be in the store that no commit leased for this
     * hub's takers: they look in the store only when it moved, or every POLL_MS */
    _Atomic uint64_t store_version;
    /* the latest commit ticket whose batch is durable and published (pub_mu; read_barrier
     * waits, listed in `barriers`). A mutex of its own: every client read waits here, and
     * must not queue behind the takers and waiters on ch_mu. */
    pthread_mutex_t pub_mu;
    atomic_bool sync_failed;      /* an fsync failed: reads refused, health stays troubled */
    uint64_t published;
    struct barrier_waiter *barriers;
    atomic_int readers_waiting;   /* in read_barrier: no batch waits for company meanwhile */
    /* per hash of an instance id, the batches between their commit and their fsync that may
     * change its row (commit.c: commit_unsynced) */
    _Atomic uint32_t unsynced[UNSYNCED_COUNTS];
    /* the store's health (health.c): TROUBLED after a commit failed for lack of space or an
     * I/O error (the last at TROUBLE_AT), until one succeeds (the last while troubled at
     * OK_AT) TROUBLE_HOLD_US after it; TROUBLE says why (ch_mu) */
    atomic_bool troubled;
    _Atomic dt_time trouble_at, ok_at;
    dt_error trouble;

    /* work a commit leased for this hub's takers (dispatch loops, gRPC work streams), and who
     * the takers are (ready.c); rq_mu guards both */
    pthread_mutex_t rq_mu;
    ready_ring ready_orch, ready_act;
    _Atomic int64_t any_asked_at[2];          /* by kind: the last unfiltered ask */
    taker filtered[MAX_FILTERED];             /* takers that named what they run */

    /* leases in flight: ls_mu guards the list and renew_stop, and the abandon notes */
    pthread_mutex_t ls_mu;
    abandon_note abandons[ABANDON_NOTES];
    _Atomic int n_abandons;       /* notes in use (read without ls_mu: a hint) */
    pthread_cond_t ls_wake;
    lease_entry *leases;
    bool renew_stop;
    bool terminate_asked;         /* a terminate was sent: see renewer_terminate_asked */
    pthread_t renewer;

    /* dispatch loops, and the work they take (RUN_WORK, a copy in RUN_ARENA, when
     * dt_hub_run was given a filter: RUN_FILTER points at it, else NULL) */
    dt_executor ex;
    bool run_orchs;               /* the loops run orchestrations (dt_hub_run) */
    bool speculate;               /* speculative episodes (dispatch.c): the option, the store */
    _Atomic uint64_t spec_seq;    /* numbers their tokens */
    dt_arena *run_arena;
    dt_name_filter run_names[3];
    dt_work_filter run_work;
    const dt_work_filter *run_filter;
    pthread_t *threads;
    int n_threads;
    atomic_bool running;
};

/* episode_applied: is C, committed, an episode the store applied (not one refused, nor a
 * speculative one whose activity result went in alone: dt_episode.refused)? */
static inline bool episode_applied(const dt_commit *c)
{
    return c->kind == DT_COMMIT_EPISODE && c->result == DT_OK && !c->u.episode.refused;
}

/* spec_resent: is C, committed, a speculative episode that failed other than by its
 * activity's lease (or a stop), whose activity result then goes again alone (dispatch.c,
 * unspeculate)? Until then the activity's lease stays tracked, and its work uncounted. */
static inline bool spec_resent(const dt_commit *c)
{
    return c->kind == DT_COMMIT_EPISODE && c->u.episode.consumes != NULL &&
           c->result != DT_OK && c->result != DT_ERR_LEASE_LOST && c->result != DT_ERR_SHUTDOWN;
}

/* hub_notify: work may be waiting in the store: bump the change and store versions and wake
 * every taker. */
void hub_notify(dt_hub *hub);

/* hub_hash_id: a hash of instance ID (FNV-1a), for the hub's tables keyed by instance. */
uint32_t hub_hash_id(const char *id);

/* hub_notify_committed: wake the waiters of the instances whose episodes in BATCH, the NO-th
 * the store committed (hub->batches_in), reached what they wait for (the batch is durable;
 * its takers were woken when it was committed, see commit.c). */
void hub_notify_committed(dt_hub *hub, const dt_commit *batch, size_t n, uint64_t no);

/* hub_batch_awaited: would BATCH wake a waiter now (hub_notify_committed)? */
bool hub_batch_awaited(dt_hub *hub, const dt_commit *batch, size_t n);

/* hub_published: the batch of TICKET is durable and its outcomes are known to all. */
void hub_published(dt_hub *hub, uint64_t ticket);

/* read_barrier: what a read of the store just saw is durable and published: a client reads
 * nothing that a power cut could take back, and nothing before the hub has counted it.
 * Returns ST, the read's own status, unless an fsync of the store has failed: then nothing
 * read can be known durable, and the read fails (DT_ERR_IO, ERR says why) until a restart. */
dt_status read_barrier(dt_hub *hub, dt_status st, dt_error *err);

/* read_barrier_of: read_barrier for a read of instance ID's row alone: no wait unless a
 * commit not yet durable may have changed it (commit_unsynced). */
dt_status read_barrier_of(dt_hub *hub, const char *id, dt_status st, dt_error *err);

/* hub_version: the current change version. */
uint64_t hub_version(dt_hub *hub);

/* hub_wait_change: sleep until the version differs from SEEN or MS milliseconds pass. */
void hub_wait_change(dt_hub *hub, uint64_t seen, int64_t ms);

/* hub_wait_work: the same for a taker of work (S says which; its semaphore, links and
 * woken_for are this function's): it sleeps apart from the others, woken when an item it would take is
 * queued or the store may have work, not at every step of everyone else's. Returns the
 * ring whose item woke it (0 orchestrations, 1 activities), -1 if none did, -2 if its bell
 * rang. */
int hub_wait_work(dt_hub *hub, uint64_t seen, int64_t ms, sleeper *s);

/* hub_commit: hand C to the committer and wait; returns C's own result. Once committed (or
 * not), the committer has stopped renewing the lease of C's work item and, for an episode,
 * updated or dropped the cached history: the caller does neither. */
dt_status hub_commit(dt_hub *hub, dt_commit *c, dt_error *err);

/* commit_outcome: C's result as hub_commit reports it, with ERR saying why it failed. */
dt_status commit_outcome(const dt_commit *c, dt_error *err);

/* hub_commit_async: hand REQ (req->commit and req->finish set) to the committer and return
 * at once; the committer calls req->finish after the commit, from its own thread. */
void hub_commit_async(dt_hub *hub, commit_req *req);

/* ready_take_orch / ready_take_act: a work item a commit leased for this hub, matching NAMES
 * (NULL: any), or NULL. ready_drain: give every queued item back to the store (closing). */
dt_orch_item *ready_take_orch(dt_hub *hub, const dt_name_filter *names);
dt_activity_item *ready_take_act(dt_hub *hub, const dt_name_filter *names);
void ready_drain(dt_hub *hub);

/* ready_sweep: give back the work no present taker would take (the renewer calls it). */
void ready_sweep(dt_hub *hub);

/* ready_asked: a taker asks for work of KIND (0 orchestrations, 1 activities), with NAMES
 * (NULL: any). Commits lease only work some taker asked for lately (ready_room). */
void ready_asked(dt_hub *hub, int kind, const dt_name_filter *names);
/* ready_forget_taker: KEY is no longer a taker (its filter is about to be freed). */
void ready_forget_taker(dt_hub *hub, const dt_name_filter *key);

/* ready_room: how many items of KIND the next commit may lease: the room left in the ring
 * if some taker of that kind asked lately, else 0. */
size_t ready_room(dt_hub *hub, int kind, dt_time now);

/* ready_taker_present: has a taker of KIND (0 orchestration, 1 activity) asked for work lately
 * (within TAKER_RECENT_US)? */
bool ready_taker_present(dt_hub *hub, int kind, dt_time now);

/* ready_forget: give back the queued orchestration item of instance ID, if there is one. */
void ready_forget(dt_hub *hub, const char *id);

/* ready_free_takers: forget the filtered takers (closing). */
void ready_free_takers(dt_hub *hub);

/* ready_push: queue what a commit leased (the arrays' items are taken over): their leases are
 * tracked from now, and takers are woken. */
void ready_push(dt_hub *hub, dt_orch_item **orch, size_t n_orch, dt_activity_item **act,
                size_t n_act);

/* commit_start / commit_stop: the committer thread. commit_stop drains the queue first. */
dt_status commit_start(dt_hub *hub);
void commit_stop(dt_hub *hub);

/* commit_unsynced: may a commit that is not yet durable have changed the row of instance ID
 * (true when unsure)? A read of that row alone needs read_barrier only then. */
bool commit_unsynced(dt_hub *hub, const char *id);

/* commit_parked: how many results wait parked for room (commit.c). */
size_t commit_parked(dt_hub *hub);

/* commit_hurry: a reader waits for a publish (hub->readers_waiting counts it already): a batch
 * the syncer holds for company goes to its fsync now. */
void commit_hurry(dt_hub *hub);

/* A history's tally (tally.c): per task id, the events that schedule and complete it, and the
 * sub-orchestrations created. Zeroed is empty. */
typedef struct tally_slot tally_slot;
typedef struct tally {
    tally_slot *slots;
    size_t cap, n;
    size_t children;              /* SubOrchestrationCreated events */
    size_t locks;                 /* EntityLockRequested events */
    size_t open;                  /* tasks scheduled and not yet completed */
} tally;

/* tally_add: count the N events at EV in T; DT_ERR_NOMEM leaves T short of some of them.
 * tally_task: add TASK_ID's counts to *SCHEDULED and *COMPLETED. tally_free: T's memory. */
dt_status tally_add(tally *t, const dt_event *ev, size_t n);
void tally_task(const tally *t, int32_t task_id, size_t *scheduled, size_t *completed);
void tally_free(tally *t);

/* episode_is_duplicate: would a completion of sequence number TASK_ID, after the events PAST
 * (counted in PAST_TALLY, when not NULL, so PAST is not read) then FRESH, be a duplicate? Yes when every scheduling of TASK_ID there already has its
 * completion: an activity runs at least once, so a second result can arrive, and history
 * keeps the first. A task id scheduled again (the Python SDK schedules a retry under the id
 * of the failed attempt) is outstanding again, so its next result is not a duplicate. A
 * completion of an id never scheduled is not judged here: it is kept. */
bool episode_is_duplicate(const tally *past_tally, const dt_event *past, size_t n_past,
                          const dt_event *fresh, size_t n_fresh, int32_t task_id);

/* entity_take: ITEM (leased, its lease tracked) begins a step (entity.c): *OUT is the item
 * cut to the batch of operations a worker runs, or NULL when the hub took the step itself (a
 * lock request applied) or there was nothing to take. ITEM is the caller's no longer. */
dt_status entity_take(dt_hub *hub, dt_entity_item *item, dt_entity_item **out, dt_error *err);

/* child_terminated: what a parent's task for child ID that was terminated (with REASON,
 * NULL for none) fails with, in ARENA; NULL when out of memory (episode.c). */
dt_failure *child_terminated(dt_arena *arena, const char *id, const char *reason);

/* rewind_history: the history failed ITEM runs again with, rewound at REQUEST (an
 * ExecutionRewound), in ARENA: see rewind.c. DT_ERR_NOMEM, or DT_ERR_CORRUPT when the
 * history has no ExecutionStarted. */
dt_status rewind_history(const dt_orch_item *item, const dt_event *request, dt_arena *arena,
                         dt_event **out, size_t *n_out);

/* episode_build: the dt_episode for ITEM after its executor produced RESULT, in ARENA. */
dt_status episode_build(dt_hub *hub, const dt_orch_item *item, const dt_orch_result *result,
                        dt_arena *arena, dt_episode *out, dt_error *err);

/* lease_track / lease_track_entity / lease_untrack: start and stop renewing an item's lease. */
dt_status lease_track(dt_hub *hub, const dt_orch_item *orch, const dt_activity_item *act);
dt_status lease_track_entity(dt_hub *hub, const dt_entity_item *ent);
void lease_untrack(dt_hub *hub, const void *item);

/* cache_new / cache_free: the history cache. */
hub_cache *cache_new(void);
void cache_free(hub_cache *c);

/* cache_attach: fill ITEM's past events (item->past, item->n_past) from the cache plus what
 * the store has beyond it. The events stay valid until cache_detach. */
dt_status cache_attach(dt_hub *hub, dt_orch_item *item, dt_error *err);

/* cache_history_bytes: the payload bytes of ITEM's past events: kept by the cache as events
 * join it, so an episode does not walk the whole history to know it (counted when ITEM's
 * history did not come from the cache). */
size_t cache_history_bytes(dt_hub *hub, const dt_orch_item *item);

/* cache_size: how many instances' histories the cache holds, and their events. */
void cache_size(dt_hub *hub, size_t *instances, size_t *events);

/* cache_tally: the tally of ITEM's past events when the cache holds them (valid until
 * cache_detach, like the events), NULL when they are not the cache's. */
const tally *cache_tally(dt_hub *hub, const dt_orch_item *item);

/* cache_speculate: check out the idle history of ITEM's instance and execution (its
 * instance_id, lock_token and state.execution_id set) for a speculative episode (dispatch.c):
 * true, with ITEM's past, history_len and history_gen set from it, when there is one and its
 * history has exactly one task open. cache_detach gives it back, as for a lease. */
bool cache_speculate(dt_hub *hub, dt_orch_item *item);

/* cache_detach: ITEM's episode is over. COMMITTED is the episode if it was committed (its
 * events join the cached history), NULL if not (the entry is dropped). */
void cache_detach(dt_hub *hub, const dt_orch_item *item, const dt_episode *committed);

/* hub_store_result: a commit (or sync) of the store ended with ST (ERR says why): marks the
 * hub troubled on lack of space or an I/O error, clears that on success (health.c). */
void hub_store_result(dt_hub *hub, dt_status st, const dt_error *err);

/* metrics_*: see metrics.c. */
hub_metrics *metrics_new(void);
void metrics_free(hub_metrics *m);
void metrics_started(hub_metrics *m, const char *name);
void metrics_finished(hub_metrics *m, const char *name, dt_runtime_status status);
void metrics_work_item(hub_metrics *m, bool activity, dt_time leased_at, dt_status result);
void metrics_redelivered(hub_metrics *m);
void metrics_wait_answered(hub_metrics *m, bool by_commit);
void metrics_committed(hub_metrics *m, const dt_commit *c, int64_t lease_us);
void metrics_commit(hub_metrics *m, size_t batch, dt_time took_us);
void metrics_store_trouble(hub_metrics *m, dt_status st);

/* limits_*: the size rules for what workers hand back (limits.c). *_bytes: the payload bytes of
 * a failure chain, of an event. limits_activity_over, limits_result_over: whether an activity's
 * outcome, an orchestrator's result, has a payload over DT_PAYLOAD_MAX; if so WHY names it and
 * the limit. limits_history_max: the hub's history cap. */
size_t limits_failure_bytes(const dt_failure *f);
size_t limits_event_bytes(const dt_event *e);
bool limits_activity_over(const char *result, const dt_failure *failure, char *why,
                          size_t why_len);
bool limits_result_over(const dt_orch_result *r, char *why, size_t why_len);
size_t limits_history_max(const dt_hub *hub);

/* limits_range: DT_OK, or DT_ERR_INVALID_ARG naming OP and WHAT when the time range FROM..TO
 * ends before it begins (only when both bounds are given: 0 is none, dt_time_bound). */
dt_status limits_range(dt_time from, dt_time to, const char *op, const char *what,
                       dt_error *err);
/* limits_query_ranges: limits_range of Q's created-time and completed-time ranges (Q NULL:
 * none), for query or purge OP: every path over instances checks both the same way. */
dt_status limits_query_ranges(const dt_query *q, const char *op, dt_error *err);
#define PAYLOAD_TOO_LARGE "PayloadTooLarge"
#define HISTORY_TOO_LARGE "HistoryTooLarge"
#define POISON_WORK_ITEM "PoisonWorkItem"
void metrics_poison(hub_metrics *m);

/* backoff_after: how long work abandoned N times in a row waits (N >= 1). backoff_note: note
 * an abandon of instance ID at NOW; how many in a row now. backoff_forget: ID's episode
 * committed: its run of abandons is over. */
dt_time backoff_after(int n);
int backoff_note(dt_hub *hub, const char *id, dt_time now);
void backoff_forget(dt_hub *hub, const char *id);

/* renewer_start / renewer_stop: the lease renewer thread. renewer_terminate_asked: a
 * terminate was sent; the renewer ends it if no taker is there to (hub_end_terminated). */
dt_status renewer_start(dt_hub *hub);
void renewer_stop(dt_hub *hub);
void renewer_terminate_asked(dt_hub *hub);

/* hub_end_terminated: lease one instance with a terminate waiting and end it, as a taker
 * would: for terminates no taker comes for (no worker connected). True if it ended one (more
 * may wait). */
bool hub_end_terminated(dt_hub *hub);

#endif
