/* hub_internal.h — the hub's state, shared by its files: hub.c (open, close, client
 * operations), commit.c (group commit), episode.c (actions to history), dispatch.c (leasing,
 * lease renewal, dispatch loops). */
#ifndef DT_HUB_INTERNAL_H
#define DT_HUB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "durabletask/hub.h"

/* A commit waiting for the committer thread. Lives on the requesting thread's stack. */
typedef struct commit_req {
    dt_commit *commit;
    bool done;
    struct commit_req *next;
} commit_req;

/* A client waiting for one instance to change (dt_hub_wait). Woken by the committer when an
 * episode of that instance commits, so a thousand waiters do not all wake for every commit. */
typedef struct waiter {
    const char *instance_id;
    pthread_cond_t cv;
    bool changed;                 /* an episode of the instance committed since last looked */
    struct waiter *next;
} waiter;

/* A leased work item whose lease the renewer keeps alive. */
typedef struct lease_entry {
    bool is_orch;
    const dt_orch_item *orch;
    const dt_activity_item *act;
    struct lease_entry *next;
} lease_entry;

typedef struct hub_cache hub_cache;
typedef struct hub_metrics hub_metrics;

struct dt_hub {
    dt_store *store;
    hub_cache *cache;             /* decoded histories between episodes (cache.c) */
    hub_metrics *metrics;         /* counters and timings (metrics.c) */
    int64_t lease_us;
    size_t max_batch;
    char owner[128];

    /* group commit: cq_mu guards the queue, the stop flag and every req->done */
    pthread_mutex_t cq_mu;
    pthread_cond_t cq_work;       /* the committer waits for requests */
    pthread_cond_t cq_done;       /* requesters wait for their commit */
    commit_req *cq_head, *cq_tail;
    bool cq_stop;
    pthread_t committer;

    /* change notification: every commit, start or message bumps `version`; dispatchers and
     * waiters sleep on `changed` (with a poll timeout, since other processes may share the
     * store). ch_mu guards version. */
    pthread_mutex_t ch_mu;
    pthread_cond_t changed;
    uint64_t version;
    waiter *waiters;              /* dt_hub_wait's, guarded by ch_mu */

    /* leases in flight: ls_mu guards the list and renew_stop */
    pthread_mutex_t ls_mu;
    pthread_cond_t ls_wake;
    lease_entry *leases;
    bool renew_stop;
    pthread_t renewer;

    /* dispatch loops */
    dt_executor ex;
    pthread_t *threads;
    int n_threads;
    atomic_bool running;
};

/* hub_notify: bump the change version and wake every waiter. */
void hub_notify(dt_hub *hub);

/* hub_notify_committed: hub_notify, and wake the waiters of the instances whose episodes in
 * BATCH committed. */
void hub_notify_committed(dt_hub *hub, const dt_commit *batch, size_t n);

/* hub_version: the current change version. */
uint64_t hub_version(dt_hub *hub);

/* hub_wait_change: sleep until the version differs from SEEN or MS milliseconds pass. */
void hub_wait_change(dt_hub *hub, uint64_t seen, int64_t ms);

/* hub_commit: hand C to the committer and wait; returns C's own result. */
dt_status hub_commit(dt_hub *hub, dt_commit *c, dt_error *err);

/* commit_start / commit_stop: the committer thread. commit_stop drains the queue first. */
dt_status commit_start(dt_hub *hub);
void commit_stop(dt_hub *hub);

/* episode_build: the dt_episode for ITEM after its executor produced RESULT, in ARENA. */
dt_status episode_build(dt_hub *hub, const dt_orch_item *item, const dt_orch_result *result,
                        dt_arena *arena, dt_episode *out, dt_error *err);

/* lease_track / lease_untrack: start and stop renewing an item's lease. */
dt_status lease_track(dt_hub *hub, const dt_orch_item *orch, const dt_activity_item *act);
void lease_untrack(dt_hub *hub, const void *item);

/* cache_new / cache_free: the history cache. */
hub_cache *cache_new(void);
void cache_free(hub_cache *c);

/* cache_attach: fill ITEM's past events (item->past, item->n_past) from the cache plus what
 * the store has beyond it. The events stay valid until cache_detach. */
dt_status cache_attach(dt_hub *hub, dt_orch_item *item, dt_error *err);

/* cache_detach: ITEM's episode is over. COMMITTED is the episode if it was committed (its
 * events join the cached history), NULL if not (the entry is dropped). */
void cache_detach(dt_hub *hub, const dt_orch_item *item, const dt_episode *committed);

/* metrics_*: see metrics.c. */
hub_metrics *metrics_new(void);
void metrics_free(hub_metrics *m);
void metrics_started(hub_metrics *m, const char *name);
void metrics_finished(hub_metrics *m, const char *name, dt_runtime_status status);
void metrics_work_item(hub_metrics *m, bool activity, dt_time leased_at, dt_status result);
void metrics_redelivered(hub_metrics *m);
void metrics_committed(hub_metrics *m, const dt_commit *c, int64_t lease_us);
void metrics_commit(hub_metrics *m, size_t batch, dt_time took_us);

/* renewer_start / renewer_stop: the lease renewer thread. */
dt_status renewer_start(dt_hub *hub);
void renewer_stop(dt_hub *hub);

#endif
