/* commit.c — group commit. Worker threads hand their results (episodes, activity results,
 * starts) to one committer thread; the committer takes everything queued, up to max_batch,
 * and commits it in one store transaction: one fsync for many work items. Under light load a
 * batch is a single entry and nothing waits for company; under load batches grow by
 * themselves.
 *
 * The same transaction leases the work the batch made ready (the activities it enqueued, the
 * instances it gave messages) for this hub's takers (ready.c), so work moves from one step to
 * the next without a lease transaction or a poll in between.
 *
 * Work starts before its fsync; outcomes are told after it. The committer hands a batch's
 * leased work to the takers as soon as the batch is committed, while the syncer makes it
 * durable; the requesters, the clients' waits and reads hear of the batch only once it is
 * fsynced. Starting work early loses nothing and repeats nothing a crash would not: a power
 * cut that takes the batch back takes back the schedule of that work too, and any result the
 * work produced is committed after it in the log, so it is durable only if the batch is.
 * The work itself (an activity) may have run, as it may when a worker dies before its result
 * is committed: activities run at least once. So a chain of steps runs at the speed of its
 * commits, not of its fsyncs, and one fsync covers the commits of many steps: a batch
 * nobody waits for waits a moment for the next ones before its fsync (must_sync, hold). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "hub_internal.h"

/* lease_room: how much of each kind the next commit may lease for this hub's takers. */
static void lease_room(dt_hub *hub, dt_commit_lease *L)
{
    L->max_orchestrations = ready_room(hub, 0, L->now);
    L->max_activities = ready_room(hub, 1, L->now);
}

/* after_commit: what the commit means for the hub, before anyone hears of it: the work
 * items' leases are no longer renewed, and an episode's events join the cached history (or
 * the entry is dropped) before the instance can be leased again. */
static void after_commit(dt_hub *hub, const dt_commit *c)
{
    metrics_committed(hub->metrics, c, hub->lease_us);
    if (c->kind == DT_COMMIT_EPISODE) {
        const dt_episode *ep = &c->u.episode;
        if (episode_applied(c))
            backoff_forget(hub, ep->item->instance_id);
        lease_untrack(hub, ep->item);
        /* speculative: the activity's lease held its work until now, and still does if
         * the result goes again alone */
        if (ep->consumes && !spec_resent(c))
            lease_untrack(hub, ep->consumes->item);
        cache_detach(hub, ep->item, episode_applied(c) ? ep : NULL);
    } else if (c->kind == DT_COMMIT_ACTIVITY) {
        lease_untrack(hub, c->u.activity.item);
    } else if (c->kind == DT_COMMIT_ENTITY) {
        if (c->result == DT_OK)
            backoff_forget(hub, c->u.entity.item->entity_id);
        lease_untrack(hub, c->u.entity.item);
    }
}

/* A batch between its commit and the fsync that makes it durable. There are SLOTS of them,
 * so the committer fills and commits batches while the syncer makes the earlier ones durable
 * and tells their requesters: the fsync of one batch overlaps the work of the next ones (and
 * a chain of steps, each started before the fsync of the one before, is not held back). */
#define SLOTS 8
typedef struct slot {
    commit_req **reqs;
    dt_commit *batch;
    size_t n;
    dt_orch_item **orch;
    dt_activity_item **act;
    dt_commit_lease lease;
    uint64_t ticket;
    uint64_t seq;                 /* batches are published in commit order */
    uint64_t no;                  /* its number in hub->batches_in, once committed */
    bool full;                    /* committed, waiting for the syncer */
    bool urgent;                  /* to be made durable at once (must_sync) */
    dt_time committed_at;         /* a held batch waits at most HOLD_MS from here */
} slot;

/* A batch nobody waits for may wait a moment for the next ones, so that one fsync covers
 * several steps of a chain (see must_sync and hold): at most HOLD_MS, and until HOLD_BATCHES
 * are committed (fewer than SLOTS: the committer never waits for a held batch). */
#define HOLD_ENTRIES 2
#define HOLD_BATCHES 4
#define HOLD_MS 2


typedef struct committer {
    dt_hub *hub;
    slot slots[SLOTS];
    pthread_mutex_t mu;           /* guards full, pub_seq, covered, n_full, n_urgent,
                                   * syncer_is, stop */
    pthread_cond_t cv;
    uint64_t fill_seq;            /* the next batch's number (committer only) */
    uint64_t pub_seq;             /* the next batch to publish */
    uint64_t covered;             /* batches up to this ticket are past their hold */
    int n_full, n_urgent;         /* slots full, and of them urgent */
    enum { SYNCER_BUSY, SYNCER_IDLE, SYNCER_HOLDS } syncer_is;
    bool hold;                    /* the store's sync waits for a disk: worth sharing */
    bool last_alone;              /* the last batch was a parked result's (committer only) */
    bool stop;
    pthread_t syncer;
} committer;

/* The instances whose row a batch may change, counted from before its commit until its
 * fsync is done, by a hash of the id (hub->unsynced, commit_unsynced). A read of one instance
 * waits for an fsync only when its count is up; the latest commit's fsync (read_barrier's
 * wait) is most often one of a batch about other instances, one fsync after the batch that
 * woke the reader. Ids that share a count make a read wait when it need not, never the other
 * way. The counts are the hub's, so a read never looks into a committer that is gone. */
static _Atomic uint32_t *unsynced_count(dt_hub *hub, const char *id)
{
    return &hub->unsynced[hub_hash_id(id) & (UNSYNCED_COUNTS - 1)];
}

static void count_id(dt_hub *hub, const char *id, int delta)
{
    if (id != NULL)
        atomic_fetch_add(unsynced_count(hub, id), (uint32_t)delta);
}

static void count_instances(dt_hub *hub, const dt_new_instance *ni, size_t n, int delta)
{
    for (size_t i = 0; i < n; i++)
        count_id(hub, ni[i].instance_id, delta);
}

/* count_rows: DELTA to the counts of the instances whose row BATCH may change: an episode's
 * own and those it creates, a start's, an entity step's new ones. Messages, activities and
 * entities leave instance rows as they are. */
static void count_rows(dt_hub *hub, const dt_commit *batch, size_t n, int delta)
{
    for (size_t i = 0; i < n; i++) {
        const dt_commit *c = &batch[i];
        switch (c->kind) {
        case DT_COMMIT_EPISODE:
            count_id(hub, c->u.episode.item ? c->u.episode.item->instance_id : NULL, delta);
            count_instances(hub, c->u.episode.instances, c->u.episode.n_instances, delta);
            break;
        case DT_COMMIT_START:
            count_id(hub, c->u.start.instance_id, delta);
            break;
        case DT_COMMIT_ENTITY:
            count_instances(hub, c->u.entity.instances, c->u.entity.n_instances, delta);
            break;
        case DT_COMMIT_ACTIVITY:
            break;
        }
    }
}

bool commit_unsynced(dt_hub *hub, const char *id)
{
    return id == NULL || atomic_load(unsynced_count(hub, id)) > 0;
}

/* store_outcome: what S's commit (ST) says of the store: a batch that went in with entries
 * refused for want of room says the database is full as a failed one would (ERR: why). */
static dt_status store_outcome(const slot *s, dt_status st, dt_error *err)
{
    for (size_t i = 0; st == DT_OK && i < s->n; i++)
        if (s->batch[i].result == DT_ERR_NO_SPACE) {
            if (s->batch[i].error && s->batch[i].error->code == DT_ERR_NO_SPACE)
                *err = *s->batch[i].error;
            else if (err->code != DT_ERR_NO_SPACE)   /* the store tells its first refusal */
                dt_error_set(err, DT_ERR_NO_SPACE, "an entry was refused: %s",
                             dt_strerror(DT_ERR_NO_SPACE));
            st = DT_ERR_NO_SPACE;
        }
    return st;
}

/* An activity's result the store had no room for (or the hub no memory) is parked: kept,
 * with its lease (still renewed), and tried again, until it goes in or parking ends (the
 * hub's close, dt_hub_stop_waiting: then its requester hears of the refusal). Given up, it
 * would wait for its lease to run out and the activity would run again, for a full
 * database. Only results handed over without waiting park (the in-process loops, remote
 * workers' completions), and only while their requester can hold them (on_park) and the
 * hub's bounds allow (dt_hub_options.max_waiting_results, max_waiting_bytes), each counted
 * from its first parking until it is finished (a newer one never takes an older one's
 * place). Each is tried again alone (a batch of its own: refused again, it spoils no other
 * entry), after 1, 2, 4, then every 8 s; when one goes in there may be room, and the next
 * one due is tried at once (one at a time: room that comes a little at a time costs no
 * storm of retries). */
#define PARK_US INT64_C(1000000)

static bool parks(const commit_req *r, const dt_commit *c)
{
    return r->finish != NULL && c->kind == DT_COMMIT_ACTIVITY &&
           (c->result == DT_ERR_NO_SPACE || c->result == DT_ERR_NOMEM);
}

/* may_park: may R wait parked, by the hub's bounds (cq_mu held)? One parked before is
 * counted already. */
static bool may_park(dt_hub *hub, const commit_req *r)
{
    assert(core_mutex_held(&hub->cq_mu));
    if (hub->cq_stop || hub->no_parking)
        return false;
    return r->tries > 0 ||
           (hub->n_parked < hub->park_max &&
            hub->parked_bytes + r->park_bytes <= hub->park_max_bytes);
}

/* uncount: R, parked before, is finished (cq_mu held). */
static void uncount(dt_hub *hub, commit_req *r)
{
    assert(core_mutex_held(&hub->cq_mu));
    if (r->tries > 0) {
        hub->n_parked--;
        hub->parked_bytes -= r->park_bytes;
    }
}

/* park: R waits for its next try (cq_mu held); the committer may sleep without a timeout. */
static void park(dt_hub *hub, commit_req *r)
{
    assert(core_mutex_held(&hub->cq_mu));
    int shift = r->tries < 3 ? r->tries : 3;
    r->retry_at = dt_now() + (PARK_US << shift);
    if (r->tries++ == 0) {
        hub->n_parked++;
        hub->parked_bytes += r->park_bytes;
    }
    r->next = hub->parked;
    hub->parked = r;
    pthread_cond_signal(&hub->cq_work);
}

/* unpark: move the parked requests that are due (all of them when parking ends) to the due
 * list, each to be tried alone; the time the next one is due, or 0 when none is parked
 * (cq_mu held). */
static dt_time unpark(dt_hub *hub)
{
    assert(core_mutex_held(&hub->cq_mu));
    dt_time now = dt_now(), next = 0;
    bool all = hub->cq_stop || hub->no_parking;
    for (commit_req **p = &hub->parked; *p;) {
        commit_req *r = *p;
        if (r->retry_at > now && !all) {
            next = next == 0 || r->retry_at < next ? r->retry_at : next;
            p = &r->next;
            continue;
        }
        *p = r->next;
        r->next = NULL;   /* first in, first tried */
        *(hub->due ? &hub->due_tail->next : &hub->due) = r;
        hub->due_tail = r;
    }
    return next;
}

/* room_seen: a parked result went in: the one due next is tried at once (cq_mu held). */
static void room_seen(dt_hub *hub)
{
    assert(core_mutex_held(&hub->cq_mu));
    commit_req *first = NULL;
    for (commit_req *r = hub->parked; r; r = r->next)
        if (first == NULL || r->retry_at < first->retry_at)
            first = r;
    if (first) {
        first->retry_at = 0;
        pthread_cond_signal(&hub->cq_work);
    }
}

size_t commit_parked(dt_hub *hub)
{
    pthread_mutex_lock(&hub->cq_mu);
    size_t n = hub->n_parked;
    pthread_mutex_unlock(&hub->cq_mu);
    return n;
}

/* commit_slot: commit the batch in S (no fsync yet); every request's result is set. */
static void commit_slot(dt_hub *hub, slot *s)
{
    dt_commit_lease *L = &s->lease;
    *L = (dt_commit_lease){.owner = hub->owner, .now = dt_now(), .lease_us = hub->lease_us,
                           .orchestrations = s->orch, .activities = s->act};
    lease_room(hub, L);
    /* the slot's arrays hold a full ring's worth; ready_room never offers more */
    assert(L->max_orchestrations <= READY_MAX && L->max_activities <= READY_MAX);
    assert(s->n <= hub->max_batch);
    dt_error err;
    /* counted before the commit: a reader may see it the moment it is in */
    count_rows(hub, s->batch, s->n, 1);
    /* the time each episode's row says it was updated, known here so that a waiter woken by
     * the episode is told the row as stored (hub_notify_committed) */
    for (size_t i = 0; i < s->n; i++)
        if (s->batch[i].kind == DT_COMMIT_EPISODE && s->batch[i].u.episode.updated_at == 0)
            s->batch[i].u.episode.updated_at = L->now;
    dt_time t0 = dt_now();
    dt_status st = dt_store_commit_deferred(hub->store, s->batch, s->n, L, &s->ticket, &err);
    s->no = atomic_fetch_add(&hub->batches_in, 1) + 1;   /* readers from now on see it */
    metrics_commit(hub->metrics, s->n, dt_now() - t0);
    hub_store_result(hub, store_outcome(s, st, &err), &err);
    for (size_t i = 0; i < s->n; i++) {
        commit_req *r = s->reqs[i];
        r->commit->result = s->batch[i].result;
        if (s->batch[i].kind == DT_COMMIT_EPISODE)   /* the requester's entry is a copy */
            r->commit->u.episode.refused = s->batch[i].u.episode.refused;
        r->parked = parks(r, &s->batch[i]);   /* publish_slot decides whether it may */
        if (r->parked && r->tries == 0)
            r->park_bytes = limits_event_bytes(&s->batch[i].u.activity.message.event);
        if (!r->parked)   /* a parked result keeps its lease */
            after_commit(hub, &s->batch[i]);
    }
    /* the work it leased goes to the takers now (see the top of this file); takers need to
     * look at the store only if the commit may have left work there: it could not lease a
     * kind, or filled what it could take */
    bool left = L->max_orchestrations == 0 || L->max_activities == 0 ||
                L->n_orchestrations == L->max_orchestrations ||
                L->n_activities == L->max_activities || dt_commit_touches_entities(s->batch, s->n);
    if (left)
        hub_notify(hub);
    ready_push(hub, s->orch, L->n_orchestrations, s->act, L->n_activities);
    L->n_orchestrations = L->n_activities = 0;
}

/* must_sync: must S be made durable at once, or may it wait for company? A crowd's batches
 * come while the fsync before them runs, so they share fsyncs without waiting; a chain's
 * come one at a time, each after the one before is committed (its work starts before the
 * fsync), so each had an fsync of its own. A batch may wait when nobody waits for it: a
 * few episodes and activity results (more: a crowd), each handed over by a requester that
 * does not wait (the in-process loops, remote workers' completions), none that a client
 * waits on (hub_batch_awaited). Starts, entities, synchronous requests: at once. */
static bool must_sync(const committer *cm, dt_hub *hub, const slot *s)
{
    if (!cm->hold || s->n > HOLD_ENTRIES)
        return true;
    for (size_t i = 0; i < s->n; i++) {
        dt_commit_kind kind = s->batch[i].kind;
        if (s->reqs[i]->finish == NULL ||
            (kind != DT_COMMIT_EPISODE && kind != DT_COMMIT_ACTIVITY))
            return true;
    }
    return hub_batch_awaited(hub, s->batch, s->n);
}

/* publish_slot: S is durable (or its fsync failed): tell everyone. */
static void publish_slot(dt_hub *hub, slot *s)
{
    dt_error err;
    dt_status synced = dt_store_sync(hub->store, s->ticket, &err);
    if (synced != DT_OK) {
        /* nobody may hear of what may not be on disk: the requesters hear of the failure
         * (and so does every later batch: the store's failed fsync is for ever) */
        dt_log(DT_LOG_ERROR, NULL, "%s", err.message);
        atomic_store(&hub->sync_failed, true);
        hub_store_result(hub, synced, &err);
        for (size_t i = 0; i < s->n; i++)
            s->reqs[i]->commit->result = s->batch[i].result = DT_ERR_IO;
    }
    /* the requesters still wait, so the batch's entries are valid to read; a failed sync is
     * known (sync_failed) before the counts go down */
    count_rows(hub, s->batch, s->n, -1);
    hub_notify_committed(hub, s->batch, s->n, s->no);

    /* a request about to be parked for the first time asks its requester, while it is the
     * syncer's alone: once parked, the committer may try it again, and finish it, at any
     * moment. One that is not parked after all owes its after_commit (the lease no longer
     * renewed) */
    for (size_t i = 0; i < s->n; i++) {
        commit_req *r = s->reqs[i];
        if (r->parked && r->tries == 0 && r->on_park && !r->on_park(r)) {
            r->parked = false;
            r->owed = true;
        }
    }
    /* park what may wait; wake the synchronous requesters, each on its own condition (a
     * woken request is gone at once: its stack frame returns), and keep the others to
     * finish */
    size_t n_async = 0;
    bool room = false;
    pthread_mutex_lock(&hub->cq_mu);
    for (size_t i = 0; i < s->n; i++) {
        commit_req *r = s->reqs[i];
        room = room || (r->tries > 0 && r->commit->result == DT_OK);
        if (r->parked && may_park(hub, r)) {
            park(hub, r);
            continue;
        }
        uncount(hub, r);
        if (r->parked) {   /* parking ended, or its bounds are full: the refusal is told */
            r->parked = false;
            r->owed = true;
        }
        if (r->finish) {
            s->reqs[n_async++] = r;
        } else {
            r->done = true;
            pthread_cond_signal(r->cv);
        }
    }
    if (room)
        room_seen(hub);
    pthread_mutex_unlock(&hub->cq_mu);
    for (size_t i = 0; i < n_async; i++) {
        commit_req *r = s->reqs[i];
        if (r->owed) {   /* before its requester hears: the work item is then its own */
            r->owed = false;
            after_commit(hub, r->commit);
        }
        r->finish(r);
    }
    hub_published(hub, s->ticket);
}

/* next_full: the full slot that is next to publish, or NULL (mu held). */
static slot *next_full(committer *cm)
{
    assert(core_mutex_held(&cm->mu));
    for (int k = 0; k < SLOTS; k++)
        if (cm->slots[k].full && cm->slots[k].seq == cm->pub_seq)
            return &cm->slots[k];
    return NULL;
}

/* hold_ends: may a held batch go to its fsync now (mu held)? Also when a reader waits for a
 * publish: what it read may be in the held batch (read_barrier). */
static bool hold_ends(const committer *cm)
{
    return cm->stop || cm->n_urgent > 0 || cm->n_full >= HOLD_BATCHES ||
           atomic_load(&cm->hub->readers_waiting) > 0;
}

/* hold: S may wait for company (must_sync): wait until HOLD_BATCHES are committed, one must
 * be synced at once, the hub stops, or HOLD_MS pass. The batches committed by then are
 * covered by the fsync that follows and are not held again (mu held). */
static void hold(committer *cm, const slot *s)
{
    if (s->urgent || s->ticket <= cm->covered)
        return;
    dt_time end = s->committed_at + HOLD_MS * 1000;   /* not from now: it may have waited */
    struct timespec until = {(time_t)(end / 1000000), (long)(end % 1000000) * 1000};
    while (!hold_ends(cm)) {
        cm->syncer_is = SYNCER_HOLDS;
        int rc = pthread_cond_timedwait(&cm->cv, &cm->mu, &until);
        cm->syncer_is = SYNCER_BUSY;
        if (rc == ETIMEDOUT)
            break;
    }
    for (int k = 0; k < SLOTS; k++)
        if (cm->slots[k].full && cm->slots[k].ticket > cm->covered)
            cm->covered = cm->slots[k].ticket;
}

static void *syncer_main(void *arg)
{
    committer *cm = arg;
    pthread_setname_np(pthread_self(), "dt-sync");
    for (;;) {
        pthread_mutex_lock(&cm->mu);
        slot *s;
        while ((s = next_full(cm)) == NULL && !cm->stop) {
            cm->syncer_is = SYNCER_IDLE;
            pthread_cond_wait(&cm->cv, &cm->mu);
            cm->syncer_is = SYNCER_BUSY;
        }
        if (s)
            hold(cm, s);
        pthread_mutex_unlock(&cm->mu);
        if (s == NULL)
            break;   /* stopping with nothing left */
        publish_slot(cm->hub, s);
        pthread_mutex_lock(&cm->mu);
        s->full = false;
        cm->n_full--;
        cm->n_urgent -= s->urgent;
        cm->pub_seq++;
        pthread_mutex_unlock(&cm->mu);
        pthread_cond_broadcast(&cm->cv);
    }
    return NULL;
}

/* hand_over: S is committed; the syncer makes it durable while the committer goes on (the
 * work it leased is running already, and its next steps come back to the committer before
 * the fsync is done). */
static void hand_over(committer *cm, slot *s)
{
    s->seq = cm->fill_seq++;
    pthread_mutex_lock(&cm->mu);
    s->full = true;
    cm->n_full++;
    cm->n_urgent += s->urgent;
    /* the syncer needs waking if it waits for a batch, or holds one and may stop now */
    bool wake = cm->syncer_is == SYNCER_IDLE || (cm->syncer_is == SYNCER_HOLDS && hold_ends(cm));
    pthread_mutex_unlock(&cm->mu);
    if (wake)   /* after the unlock: the syncer takes mu when it wakes */
        pthread_cond_broadcast(&cm->cv);
}

static void committer_free(committer *cm)
{
    if (cm == NULL)
        return;
    for (int k = 0; k < SLOTS; k++) {
        free(cm->slots[k].batch);
        free(cm->slots[k].reqs);
        free(cm->slots[k].orch);
        free(cm->slots[k].act);
    }
    pthread_mutex_destroy(&cm->mu);
    pthread_cond_destroy(&cm->cv);
    free(cm);
}

/* syncer_stop: let the syncer publish what is left, then free CM. */
static void syncer_stop(committer *cm)
{
    pthread_mutex_lock(&cm->mu);
    cm->stop = true;
    pthread_cond_broadcast(&cm->cv);
    pthread_mutex_unlock(&cm->mu);
    pthread_join(cm->syncer, NULL);
    committer_free(cm);
}

static void *committer_main(void *arg)
{
    committer *cm = arg;
    pthread_setname_np(pthread_self(), "dt-commit");
    dt_hub *hub = cm->hub;
    for (size_t k = 0;; k = (k + 1) % SLOTS) {
        slot *s = &cm->slots[k];
        pthread_mutex_lock(&cm->mu);   /* wait until the syncer is done with this slot */
        while (s->full)
            pthread_cond_wait(&cm->cv, &cm->mu);
        pthread_mutex_unlock(&cm->mu);

        pthread_mutex_lock(&hub->cq_mu);
        for (;;) {
            dt_time next = unpark(hub);
            if (hub->cq_head || hub->due || hub->cq_stop)
                break;
            if (next == 0) {
                pthread_cond_wait(&hub->cq_work, &hub->cq_mu);
            } else {
                struct timespec until = {(time_t)(next / 1000000), (long)(next % 1000000) * 1000};
                pthread_cond_timedwait(&hub->cq_work, &hub->cq_mu, &until);
            }
        }
        if (hub->cq_head == NULL && hub->due == NULL && hub->cq_stop) {
            pthread_mutex_unlock(&hub->cq_mu);
            break;
        }
        s->n = 0;
        /* a parked result goes alone (see PARK_US), every other batch while others wait */
        if (hub->due && (hub->cq_head == NULL || !cm->last_alone)) {
            commit_req *r = hub->due;
            hub->due = r->next;
            if (hub->due == NULL)
                hub->due_tail = NULL;
            s->reqs[0] = r;
            s->batch[0] = *r->commit;
            s->n = 1;
        }
        bool alone = cm->last_alone = s->n == 1;
        while (!alone && hub->cq_head && s->n < hub->max_batch) {
            commit_req *r = hub->cq_head;
            hub->cq_head = r->next;
            s->reqs[s->n] = r;
            s->batch[s->n] = *r->commit;   /* shallow: the request lives until finished */
            s->n++;
        }
        if (hub->cq_head == NULL)
            hub->cq_tail = NULL;
        pthread_mutex_unlock(&hub->cq_mu);

        commit_slot(hub, s);   /* no lock held across the store's I/O */
        s->urgent = must_sync(cm, hub, s);
        s->committed_at = dt_now();
        hand_over(cm, s);
    }
    syncer_stop(cm);
    return NULL;
}

/* enqueue: add REQ to the queue (cq_mu held); false if the hub is closing. *WAKE says whether
 * the committer may be asleep: it sleeps only on an empty queue, and takes whatever is queued
 * when it comes back, so a request that joins others wakes nobody. The caller signals
 * cq_work, after unlocking if it can (woken under the lock, the committer would block on it
 * at once). */
static bool enqueue(dt_hub *hub, commit_req *req, bool *wake)
{
    assert(core_mutex_held(&hub->cq_mu));
    *wake = false;
    if (hub->cq_stop)
        return false;
    if (hub->cq_tail) {
        hub->cq_tail->next = req;
    } else {
        hub->cq_head = req;
        *wake = true;
    }
    hub->cq_tail = req;
    return true;
}

dt_status hub_commit(dt_hub *hub, dt_commit *c, dt_error *err)
{
    pthread_cond_t cv;
    if (pthread_cond_init(&cv, NULL) != 0) {
        c->result = DT_ERR_NOMEM;
        after_commit(hub, c);
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create a condition to wait on");
    }
    commit_req req = {.commit = c, .cv = &cv};
    bool wake;
    pthread_mutex_lock(&hub->cq_mu);
    bool queued = enqueue(hub, &req, &wake);
    if (wake)   /* under the lock: it is let go of by the wait below */
        pthread_cond_signal(&hub->cq_work);
    while (queued && !req.done)
        pthread_cond_wait(&cv, &hub->cq_mu);
    pthread_mutex_unlock(&hub->cq_mu);
    pthread_cond_destroy(&cv);
    if (!queued) {
        c->result = DT_ERR_SHUTDOWN;
        after_commit(hub, c);
    }
    return commit_outcome(c, err);
}

dt_status commit_outcome(const dt_commit *c, dt_error *err)
{
    if (c->result == DT_ERR_SHUTDOWN)
        return dt_error_set(err, DT_ERR_SHUTDOWN, "the hub is closing");
    if (c->result == DT_ERR_LEASE_LOST)
        return dt_error_set(err, DT_ERR_LEASE_LOST,
                            "the work item's lease was lost (expired and taken by another "
                            "worker); its result was not applied");
    if (c->result != DT_OK && c->error && c->error->code == c->result) {
        if (err)
            *err = *c->error;
        return c->result;
    }
    if (c->result != DT_OK)
        return dt_error_set(err, c->result, "commit failed: %s", dt_strerror(c->result));
    return DT_OK;
}

void hub_commit_async(dt_hub *hub, commit_req *req)
{
    req->done = false;
    req->cv = NULL;
    req->next = NULL;
    bool wake;
    pthread_mutex_lock(&hub->cq_mu);
    bool queued = enqueue(hub, req, &wake);
    pthread_mutex_unlock(&hub->cq_mu);
    if (wake)   /* cq_work lives as long as the hub */
        pthread_cond_signal(&hub->cq_work);
    if (!queued) {
        req->commit->result = DT_ERR_SHUTDOWN;
        after_commit(hub, req->commit);
        req->finish(req);
    }
}

dt_status commit_start(dt_hub *hub)
{
    committer *cm = calloc(1, sizeof *cm);
    if (cm == NULL)
        return DT_ERR_NOMEM;
    cm->hub = hub;
    cm->hold = dt_store_sync_waits(hub->store);
    if (core_mutex_init_fast(&cm->mu) != 0) {
        free(cm);
        return DT_ERR_NOMEM;
    }
    if (pthread_cond_init(&cm->cv, NULL) != 0) {
        pthread_mutex_destroy(&cm->mu);
        free(cm);
        return DT_ERR_NOMEM;
    }
    bool ok = true;
    for (int k = 0; k < SLOTS; k++) {
        slot *s = &cm->slots[k];
        s->batch = malloc(hub->max_batch * sizeof *s->batch);
        s->reqs = malloc(hub->max_batch * sizeof *s->reqs);
        s->orch = malloc(READY_MAX * sizeof *s->orch);
        s->act = malloc(READY_MAX * sizeof *s->act);
        ok = ok && s->batch && s->reqs && s->orch && s->act;
    }
    if (!ok || pthread_create(&cm->syncer, NULL, syncer_main, cm) != 0) {
        committer_free(cm);
        return DT_ERR_NOMEM;
    }
    hub->cm = cm;
    if (pthread_create(&hub->committer, NULL, committer_main, cm) != 0) {
        hub->cm = NULL;
        syncer_stop(cm);
        return DT_ERR_NOMEM;
    }
    return DT_OK;
}

void commit_hurry(dt_hub *hub)
{
    committer *cm = hub->cm;
    if (cm == NULL)
        return;
    pthread_mutex_lock(&cm->mu);
    bool wake = cm->syncer_is == SYNCER_HOLDS;
    pthread_mutex_unlock(&cm->mu);
    if (wake)
        pthread_cond_broadcast(&cm->cv);
}

void dt_hub_stop_waiting(dt_hub *hub)
{
    pthread_mutex_lock(&hub->cq_mu);
    hub->no_parking = true;
    pthread_cond_signal(&hub->cq_work);   /* the committer tries the parked ones at once */
    pthread_mutex_unlock(&hub->cq_mu);
}

void commit_stop(dt_hub *hub)
{
    pthread_mutex_lock(&hub->cq_mu);
    hub->cq_stop = true;
    pthread_cond_signal(&hub->cq_work);
    pthread_mutex_unlock(&hub->cq_mu);
    pthread_join(hub->committer, NULL);
    hub->cm = NULL;   /* freed by the committer as it ended */
}
