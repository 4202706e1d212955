/* hub.c — opening and closing the hub, change notification, and the client operations:
 * start, get, history, wait. Client operations validate their input here, before anything
 * reaches the store, so bad input is refused with nothing stored. */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hub_internal.h"

#define WAIT_POLL_MS 200   /* how often a waiter looks at the store for other processes' work */
#define WAIT_WATCHED_MS 1000   /* the same on a watched store, which wakes it on a change */
#define WAIT_POLLS_PER_S 1000  /* ... and all the hub's waiters together, at most */
#define BARRIER_WAIT_S 10  /* how long a read waits for what it saw to become durable */

/* The hub's mutexes and conditions, made and destroyed together, in this order. */
#define N_MUTEXES 5
#define N_CONDS 5
static pthread_mutex_t *mutexes(dt_hub *h, int i)
{
    pthread_mutex_t *m[N_MUTEXES] = {&h->cq_mu, &h->ch_mu, &h->rq_mu, &h->ls_mu, &h->pub_mu};
    return m[i];
}
static pthread_cond_t *conds(dt_hub *h, int i)
{
    pthread_cond_t *c[N_CONDS] = {&h->cq_work, &h->cq_done, &h->changed, &h->ls_wake,
                                    &h->aw_wake};
    return c[i];
}

/* sync_destroy: destroy the first N_M mutexes and N_C conditions. */
static void sync_destroy(dt_hub *hub, int n_m, int n_c)
{
    for (int i = 0; i < n_m; i++)
        pthread_mutex_destroy(mutexes(hub, i));
    for (int i = 0; i < n_c; i++)
        pthread_cond_destroy(conds(hub, i));
}

/* sync_init: every mutex and condition of HUB, or none (false). */
static bool sync_init(dt_hub *hub)
{
    int m = 0, c = 0;
    while (m < N_MUTEXES && core_mutex_init_fast(mutexes(hub, m)) == 0)
        m++;
    while (m == N_MUTEXES && c < N_CONDS && pthread_cond_init(conds(hub, c), NULL) == 0)
        c++;
    if (m == N_MUTEXES && c == N_CONDS)
        return true;
    sync_destroy(hub, m, c);
    return false;
}

/* hub_free: what dt_hub_open made, once its threads are stopped (or never started). */
static void hub_free(dt_hub *hub)
{
    ready_free_takers(hub);
    cache_free(hub->cache);
    metrics_free(hub->metrics);
    dt_store_close(hub->store);
    if (hub->sync_made)
        sync_destroy(hub, N_MUTEXES, N_CONDS);
    free(hub);
}

uint64_t dt_hub_id(const dt_hub *hub) { return hub->id; }

/* hash_n: FNV-1a of the N bytes at S. */
static uint32_t hash_n(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

uint32_t hub_hash_id(const char *id)
{
    return hash_n(id, strlen(id));
}

/* bucket: the list of the waiters on the instance whose id is the N bytes at ID. */
static waiter **bucket(dt_hub *hub, const char *id, size_t n)
{
    return &hub->waiters[hash_n(id, n) & (WAIT_BUCKETS - 1)];
}

/* wake: W's instance changed: a thread's wait wakes, an asynchronous one is read soon. */
static void wake(dt_hub *hub, waiter *w)
{
    if (w->fn)
        waits_wake(hub, w);
    else
        waiter_wake(w);
}

void waiter_link(dt_hub *hub, waiter *w)
{
    waiter **head = bucket(hub, w->instance_id, strlen(w->instance_id));
    w->listed_after = atomic_load(&hub->batches_in);
    w->next = *head;
    w->pprev = head;
    if (w->next)
        w->next->pprev = &w->next;
    *head = w;
    atomic_fetch_add(&hub->n_waiters, 1);
}

void waiter_unlink(dt_hub *hub, waiter *w)
{
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    atomic_fetch_sub(&hub->n_waiters, 1);
}

/* store_changed: the store says a node committed: if it may have left work (WORK), the takers
 * look; and a wait on one of the instances IDS names (one per line; NULL: any) reads its
 * state again (dt_store_watch). */
static void store_changed(void *arg, const char *ids, bool work)
{
    dt_hub *hub = arg;
    if (work)
        hub_notify(hub);
    if (ids && ids[0] == '\0')
        return;
    pthread_mutex_lock(&hub->ch_mu);
    if (ids == NULL) {
        for (size_t b = 0; b < WAIT_BUCKETS; b++)
            for (waiter *w = hub->waiters[b]; w; w = w->next)
                wake(hub, w);
    }
    for (const char *p = ids; p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        size_t n = strcspn(p, "\n");
        for (waiter *w = *bucket(hub, p, n); w; w = w->next)
            if (strncmp(p, w->instance_id, n) == 0 && w->instance_id[n] == '\0')
                wake(hub, w);
    }
    pthread_mutex_unlock(&hub->ch_mu);
}

dt_status dt_hub_open(const dt_hub_options *opts, dt_hub **out, dt_error *err)
{
    dt_hub_options o = {0};
    if (opts)
        o = *opts;
    *out = NULL;
    static atomic_uint_fast64_t last_id;
    dt_hub *hub = calloc(1, sizeof *hub);
    if (hub)
        hub->id = atomic_fetch_add(&last_id, 1) + 1;
    if (hub == NULL) {
        dt_store_close(o.store);   /* given to the hub, so closed by it even now */
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    hub->lease_us = (o.lease_ms > 0 ? o.lease_ms : 30000) * 1000;
    hub->max_batch = o.max_batch > 0 ? o.max_batch : 256;
    hub->max_history = o.max_history_bytes;
    hub->park_max = o.max_waiting_results > 0 ? o.max_waiting_results
                                              : DT_HUB_WAITING_RESULTS_DEFAULT;
    hub->park_max_bytes = o.max_waiting_bytes > 0 ? o.max_waiting_bytes
                                                  : DT_HUB_WAITING_BYTES_DEFAULT;
    if (o.owner) {
        snprintf(hub->owner, sizeof hub->owner, "%s", o.owner);
    } else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(hub->owner, sizeof hub->owner, "%s:%d", host, (int)getpid());
    }
    atomic_init(&hub->running, false);
    hub->aw_soon_tail = &hub->aw_soon;
    hub->aw_later_tail = &hub->aw_later;

    dt_status st;
    if (o.store)
        hub->store = o.store;   /* ours from now on, whatever happens */
    if (!(hub->sync_made = sync_init(hub))) {
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot create the hub's mutexes");
        goto fail;
    }
    const char *db = o.db_path ? o.db_path : DT_DEFAULT_DB_PATH;
    if (o.store == NULL) {
        st = dt_store_is_postgres(db) ? dt_store_open_postgres(db, o.db_schema, &hub->store, err)
                                      : dt_store_open_sqlite(db, o.sync, &hub->store, err);
        if (st != DT_OK)
            goto fail;
    }
    if (o.max_db_bytes &&
        (st = dt_store_sqlite_limit_size(hub->store, o.max_db_bytes, err)) != DT_OK)
        goto fail;
    /* a store shared by many nodes says when another one made work (PostgreSQL); for one
     * that does not, takers find other processes' work at their next poll */
    dt_error werr;
    hub->started_at = dt_now();
    hub->beats = dt_store_heartbeat(hub->store, hub->owner, hub->started_at, hub->started_at,
                                    &werr) != DT_ERR_UNIMPLEMENTED;
    hub->beat_at = hub->started_at;
    hub->shared = hub->beats;
    hub->speculate = !o.no_speculation && dt_store_speculates(hub->store);
    dt_status ws = dt_store_watch(hub->store, store_changed, hub, &werr);
    dt_time due = 0;
    hub->watched = ws == DT_OK &&
                   dt_store_next_due(hub->store, hub->started_at, &due, NULL) == DT_OK;
    atomic_store(&hub->next_due, due);
    if (ws != DT_OK && ws != DT_ERR_UNIMPLEMENTED)
        dt_log(DT_LOG_WARN, NULL, "other nodes' work is found by polling only: %s",
               werr.message);
    if ((hub->cache = cache_new()) == NULL || (hub->metrics = metrics_new()) == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = commit_start(hub)) != DT_OK) {
        dt_error_set(err, st, "cannot start the committer thread");
        goto fail;
    }
    if ((st = renewer_start(hub)) != DT_OK) {
        commit_stop(hub);
        dt_error_set(err, st, "cannot start the lease renewer thread");
        goto fail;
    }
    *out = hub;
    return DT_OK;
fail:
    hub_free(hub);
    return st;
}

void dt_hub_close(dt_hub *hub)
{
    if (hub == NULL)
        return;
    dt_hub_stop(hub);
    waits_stop(hub);   /* before the committer: a wait's read may wait for a publish */
    renewer_stop(hub);
    commit_stop(hub);
    ready_drain(hub);
    hub_free(hub);
}

void dt_hub_tune_malloc(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
#endif
}

/* ---- change notification -------------------------------------------------------------- */

/* wake_sleepers: every taker asleep looks again (ch_mu held). */
static void wake_sleepers(dt_hub *hub)
{
    while (hub->sleepers) {
        sleeper *s = hub->sleepers;
        hub->sleepers = s->next;
        s->woken = true;
        sem_post(&s->sem);
    }
}

void hub_notify(dt_hub *hub)
{
    atomic_fetch_add(&hub->store_version, 1);
    pthread_mutex_lock(&hub->ch_mu);
    hub->version++;
    pthread_cond_broadcast(&hub->changed);
    wake_sleepers(hub);
    pthread_mutex_unlock(&hub->ch_mu);
}

static bool reached_status(dt_runtime_status s, dt_wait_for what)
{
    return what == DT_WAIT_START ? s != DT_STATUS_PENDING : dt_runtime_status_is_terminal(s);
}

/* ends_wait: does C, committed, end the wait of W (an episode of W's instance that reaches
 * what W waits for)? */
static bool ends_wait(const waiter *w, const dt_commit *c)
{
    return episode_applied(c) && reached_status(c->u.episode.status, w->what) &&
           strcmp(c->u.episode.item->instance_id, w->instance_id) == 0;
}

/* reached_before: does an episode of BATCH before the I-th end W's wait? W is handed the row
 * of the first only (it may answer as soon as it is handed one). */
static bool reached_before(const waiter *w, const dt_commit *batch, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (ends_wait(w, &batch[j]))
            return true;
    return false;
}

/* episode_bucket: the waiters on the instance of C, an episode, or NULL if C is none. */
static waiter *episode_bucket(dt_hub *hub, const dt_commit *c)
{
    if (!episode_applied(c))
        return NULL;
    const char *id = c->u.episode.item->instance_id;
    return *bucket(hub, id, strlen(id));
}

/* failure_as_stored: a copy of F in A as a store gives it back (an absent type or message
 * reads as ""); NULL when out of memory, or when F or a cause has properties, whose JSON the
 * store writes in a form of its own (the waiter reads the row then). */
static dt_failure *failure_as_stored(dt_arena *a, const dt_failure *f)
{
    dt_failure *c = dt_failure_copy(a, f);
    for (dt_failure *x = c; x; x = x->inner) {
        if (x->properties)
            return NULL;
        if (x->error_type == NULL)
            x->error_type = "";
        if (x->message == NULL)
            x->message = "";
    }
    return c;
}

/* episode_row: the row EP left, in A: the row its work item was leased with (nobody else
 * changes a leased row), changed as the stores' episode update changes it, copied once. NULL
 * when out of memory. */
static dt_instance_state *episode_row(dt_arena *a, const dt_episode *ep)
{
    dt_instance_state row = ep->item->state;
    row.status = ep->status;
    row.output = ep->output;
    row.custom_status = ep->custom_status;
    row.failure = NULL;   /* copied as stored, below */
    row.completed_at = ep->completed_at;
    row.last_updated_at = ep->updated_at;
    if (ep->name)
        row.name = ep->name;
    if (ep->input)
        row.input = ep->input;
    if (ep->execution_id)
        row.execution_id = ep->execution_id;
    if (ep->version)
        row.version = ep->version;
    if (ep->span_id) {
        row.span_id = ep->span_id;
        row.span_start = ep->span_start;
    }
    if (ep->tags)
        row.tags = ep->tags;
    dt_instance_state *s = dt_instance_state_copy(a, &row);
    if (s && ep->failure && (s->failure = failure_as_stored(a, ep->failure)) == NULL)
        return NULL;
    return s;
}

dt_instance_state *hub_row_of(const dt_episode *ep, dt_arena **arena)
{
    /* its update time is not known in a batch that did not come through the committer */
    dt_arena *a = ep->updated_at ? dt_arena_new() : NULL;
    dt_instance_state *row = a ? episode_row(a, ep) : NULL;
    if (row == NULL) {
        dt_arena_free(a);
        a = NULL;
    }
    *arena = a;
    return row;
}

/* waiter_reached: wake W with the row EP left; W reads it itself if it cannot be told. */
static void waiter_reached(waiter *w, const dt_episode *ep)
{
    dt_arena *a;
    dt_instance_state *row = hub_row_of(ep, &a);
    pthread_mutex_lock(&w->mu);
    dt_arena *old = w->reached_arena;
    w->reached_arena = a;
    w->reached = row;
    w->changed = true;
    pthread_mutex_unlock(&w->mu);
    pthread_cond_signal(&w->cv);   /* after the unlock, as in waiter_wake */
    dt_arena_free(old);
}

void hub_notify_committed(dt_hub *hub, const dt_commit *batch, size_t n, uint64_t no)
{
    pthread_mutex_lock(&hub->ch_mu);
    for (size_t i = 0; i < n; i++)
        for (waiter *w = episode_bucket(hub, &batch[i]); w; w = w->next)
            if (w->listed_after < no && ends_wait(w, &batch[i]) &&
                !reached_before(w, batch, i)) {
                if (w->fn)
                    waits_reached(hub, w, &batch[i].u.episode);
                else
                    waiter_reached(w, &batch[i].u.episode);
            }
    pthread_mutex_unlock(&hub->ch_mu);
}

bool hub_batch_awaited(dt_hub *hub, const dt_commit *batch, size_t n)
{
    bool awaited = false;
    pthread_mutex_lock(&hub->ch_mu);
    for (size_t i = 0; i < n && !awaited; i++)
        for (waiter *w = episode_bucket(hub, &batch[i]); w && !awaited; w = w->next)
            awaited = ends_wait(w, &batch[i]);
    pthread_mutex_unlock(&hub->ch_mu);
    return awaited;
}

/* A read in read_barrier waits for the publish of its ticket on a semaphore of its own,
 * listed in hub->barriers: a publish posts the reads it covers and no others. (A condition
 * broadcast at every publish woke every waiting read, most of them to sleep again, each
 * through pub_mu: six futex calls per instance at 64 clients.) */
typedef struct barrier_waiter {
    uint64_t ticket;
    sem_t sem;
    bool posted;                  /* taken off the list by a publish: its post is on its way */
    struct barrier_waiter *next;
} barrier_waiter;

void hub_published(dt_hub *hub, uint64_t ticket)
{
    barrier_waiter *due = NULL;
    pthread_mutex_lock(&hub->pub_mu);
    if (ticket > hub->published)
        hub->published = ticket;
    for (barrier_waiter **p = &hub->barriers; *p;) {
        barrier_waiter *b = *p;
        if (b->ticket <= hub->published) {
            *p = b->next;
            b->posted = true;
            b->next = due;
            due = b;
        } else {
            p = &b->next;
        }
    }
    pthread_mutex_unlock(&hub->pub_mu);
    /* after the unlock, so the woken read does not block on pub_mu; a read whose wait timed
     * out meanwhile waits for this post before its semaphore goes */
    while (due) {
        barrier_waiter *next = due->next;
        sem_post(&due->sem);
        due = next;
    }
}

/* barrier_wait: wait until T is published, or BARRIER_WAIT_S pass (a bound, should the
 * committer be gone). */
static void barrier_wait(dt_hub *hub, uint64_t t)
{
    barrier_waiter b = {.ticket = t};
    if (sem_init(&b.sem, 0, 0) != 0)
        return;   /* cannot happen on Linux (only for a value out of range) */
    struct timespec until = dt_deadline_ms(BARRIER_WAIT_S * 1000);
    pthread_mutex_lock(&hub->pub_mu);
    bool waits = hub->published < t;
    if (waits) {
        b.next = hub->barriers;
        hub->barriers = &b;
        /* counted first, so a batch held for company from now on is not held for long */
        atomic_fetch_add(&hub->readers_waiting, 1);
    }
    pthread_mutex_unlock(&hub->pub_mu);
    if (waits) {
        commit_hurry(hub);
        int r;
        while ((r = sem_timedwait(&b.sem, &until)) != 0 && errno == EINTR)
            ;
        if (r != 0) {   /* timed out, unless posted meanwhile */
            pthread_mutex_lock(&hub->pub_mu);
            bool posted = b.posted;
            if (!posted)
                for (barrier_waiter **p = &hub->barriers; *p; p = &(*p)->next)
                    if (*p == &b) {
                        *p = b.next;
                        break;
                    }
            pthread_mutex_unlock(&hub->pub_mu);
            while (posted && sem_wait(&b.sem) != 0)
                ;
        }
        atomic_fetch_sub(&hub->readers_waiting, 1);
    }
    sem_destroy(&b.sem);
}

/* sync_checked: ST, or DT_ERR_IO once an fsync of the store has failed. */
static dt_status sync_checked(dt_hub *hub, dt_status st, dt_error *err)
{
    if (atomic_load(&hub->sync_failed))
        return dt_error_set(err, DT_ERR_IO, "an fsync of the store failed, so what it holds "
                            "cannot be known durable; reads are refused until a restart");
    return st;
}

dt_status read_barrier(dt_hub *hub, dt_status st, dt_error *err)
{
    barrier_wait(hub, dt_store_last_ticket(hub->store));
    return sync_checked(hub, st, err);
}

dt_status read_barrier_of(dt_hub *hub, const char *id, dt_status st, dt_error *err)
{
    if (commit_unsynced(hub, id))
        return read_barrier(hub, st, err);
    return sync_checked(hub, st, err);
}

uint64_t hub_version(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ch_mu);
    uint64_t v = hub->version;
    pthread_mutex_unlock(&hub->ch_mu);
    return v;
}

/* A sleeper sleeps on a semaphore, not on a condition of ch_mu: its waker takes it off the
 * list and posts, and it wakes without the lock its waker may still hold (a condition would
 * wake it only to block it on ch_mu, and wake it again at the unlock). A waker may post after
 * letting go of its locks (ready.c's push_kind), so a sleeper whose wait timed out as it was
 * woken waits for that post before its semaphore goes. */
int hub_wait_work(dt_hub *hub, uint64_t seen, int64_t ms, sleeper *s)
{
    if (sem_init(&s->sem, 0, 0) != 0) {   /* cannot sleep apart: sleep with all */
        hub_wait_change(hub, seen, ms);
        return -1;
    }
    struct timespec until = dt_deadline_ms(ms);
    s->woken_for = -1;
    s->woken = false;
    pthread_mutex_lock(&hub->ch_mu);
    bool sleeps = hub->version == seen;   /* else something happened since it looked */
    s->rang = s->bell && s->bell->rung;   /* rung since it looked: it looks again */
    if (s->rang) {
        s->bell->rung = false;
        sleeps = false;
    }
    if (sleeps) {
        s->next = hub->sleepers;
        hub->sleepers = s;
    }
    pthread_mutex_unlock(&hub->ch_mu);
    int r = 0;
    while (sleeps && (r = sem_timedwait(&s->sem, &until)) != 0 && errno == EINTR)
        ;
    if (sleeps && r != 0) {   /* timed out, unless woken meanwhile */
        pthread_mutex_lock(&hub->ch_mu);
        bool woken = s->woken;
        if (!woken)
            for (sleeper **p = &hub->sleepers; *p; p = &(*p)->next)
                if (*p == s) {
                    *p = s->next;
                    break;
                }
        pthread_mutex_unlock(&hub->ch_mu);
        while (woken && sem_wait(&s->sem) != 0)   /* its post is on its way */
            ;
    }
    if (s->woken_for >= 0)   /* it looks now: no longer on its way */
        atomic_fetch_sub(&hub->wakes_pending[s->woken_for], 1);
    sem_destroy(&s->sem);
    return s->rang ? -2 : s->woken_for;
}

dt_hub_bell *dt_hub_bell_new(void)
{
    return calloc(1, sizeof(dt_hub_bell));
}

void dt_hub_bell_free(dt_hub_bell *bell)
{
    free(bell);
}

void dt_hub_bell_ring(dt_hub *hub, dt_hub_bell *bell)
{
    sleeper *found = NULL;
    pthread_mutex_lock(&hub->ch_mu);
    for (sleeper **p = &hub->sleepers; *p; p = &(*p)->next)
        if ((*p)->bell == bell) {
            found = *p;
            *p = found->next;
            found->woken = true;
            found->rang = true;
            break;
        }
    if (found == NULL)
        bell->rung = true;
    pthread_mutex_unlock(&hub->ch_mu);
    if (found)   /* after the unlock, as ready.c posts: a sleeper that timed out waits for it */
        sem_post(&found->sem);
}

void hub_wait_change(dt_hub *hub, uint64_t seen, int64_t ms)
{
    struct timespec until = dt_deadline_ms(ms);
    pthread_mutex_lock(&hub->ch_mu);
    while (hub->version == seen) {
        if (pthread_cond_timedwait(&hub->changed, &hub->ch_mu, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&hub->ch_mu);
}

/* ---- client operations ------------------------------------------------------------------ */

/* check_reuse_policy: replacing a live instance terminates it, so a policy that allows that
 * but keeps a Terminated instance from being replaced contradicts itself (the Durable Task
 * Scheduler refuses it with these words). */
static dt_status check_reuse_policy(const dt_runtime_status *r, size_t n, dt_error *err)
{
    bool live = false, terminated = false;
    for (size_t i = 0; i < n; i++) {
        if (r[i] > DT_STATUS_SUSPENDED)
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "reuse policy names an unknown runtime status %d", (int)r[i]);
        live |= r[i] == DT_STATUS_RUNNING || r[i] == DT_STATUS_PENDING ||
                r[i] == DT_STATUS_SUSPENDED;
        terminated |= r[i] == DT_STATUS_TERMINATED;
    }
    if (live && !terminated)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "Invalid reusable statuses: cannot exclude 'Terminated' while also "
                            "allowing reuse of running instances");
    return DT_OK;
}

/* A start on its way through the group commit: the entry and what it points to. */
typedef struct start_entry {
    commit_req req;
    dt_commit c;
    dt_hub *hub;
    char id[DT_INSTANCE_ID_MAX + 1];
    char exec[33];
    const char *name;
    dt_error own;
    dt_hub_started_fn done;     /* asynchronous starts */
    void *done_arg;
} start_entry;

/* start_prepare: check REQ and make S its commit entry (ids chosen). */
static dt_status start_prepare(dt_hub *hub, const dt_start_request *req, start_entry *s,
                               dt_error *err)
{
    if (req == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "orchestrator name is empty");
    dt_status st = dt_name_validate(req->name, "orchestrator name", err);
    if (st == DT_OK)
        st = dt_version_validate(req->version, "orchestrator version", err);
    if (st != DT_OK)
        return st;
    if (req->instance_id) {
        if ((st = dt_instance_id_validate(req->instance_id, err)) != DT_OK)
            return st;
        snprintf(s->id, sizeof s->id, "%s", req->instance_id);
    } else {
        dt_instance_id_generate(s->id);
    }
    st = dt_payload_check_size(req->input, "input", err);
    if (st == DT_OK)
        st = dt_payload_validate(req->input, "input", err);
    if (st == DT_OK)
        st = dt_tags_validate(req->tags, "tags", err);
    if (st == DT_OK)
        st = dt_trace_validate(req->trace_parent, req->trace_state, err);
    if (st != DT_OK)
        return st;
    if (req->start_at < 0)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "scheduled start time is negative");
    if ((st = check_reuse_policy(req->replaceable, req->n_replaceable, err)) != DT_OK)
        return st;
    if ((st = dt_store_room(hub->store, err)) != DT_OK)   /* a database at its size limit */
        return st;
    dt_execution_id_generate(s->exec);
    dt_new_instance ni = {
        .instance_id = s->id,
        .execution_id = s->exec,
        .name = req->name,
        .version = req->version,
        .input = req->input,
        .created_at = dt_now(),
        .scheduled_start = req->start_at,
        .tags = req->tags,
        .trace_parent = req->trace_parent,
        .trace_state = req->trace_state,
        .replaceable = req->replaceable,
        .n_replaceable = req->n_replaceable,
        .reuse_policy = req->reuse_policy,
    };
    dt_error_clear(&s->own);
    s->c = (dt_commit){.kind = DT_COMMIT_START, .u.start = ni, .error = &s->own};
    s->hub = hub;
    s->name = req->name;
    return DT_OK;
}

/* started: S's instance is stored (durable). */
static void started(const start_entry *s)
{
    metrics_started(s->hub->metrics, s->name);
    dt_log(DT_LOG_INFO, s->id, "started %s", s->name);
}

dt_status dt_hub_start(dt_hub *hub, const dt_start_request *req,
                       char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err)
{
    start_entry s;
    dt_status st = start_prepare(hub, req, &s, err);
    /* through the group commit: concurrent starts share one transaction and one fsync */
    if (st == DT_OK)
        st = hub_commit(hub, &s.c, err);
    if (st != DT_OK)
        return st;
    if (id_out)
        memcpy(id_out, s.id, strlen(s.id) + 1);
    started(&s);
    return DT_OK;
}

static void start_finish(commit_req *req)
{
    start_entry *s = (start_entry *)req;
    dt_error err = {0};
    dt_status st = commit_outcome(&s->c, &err);
    if (st == DT_OK)
        started(s);
    s->done(s->done_arg, st, &err, st == DT_OK ? s->id : NULL);
    free(s);
}

void dt_hub_start_async(dt_hub *hub, const dt_start_request *req, dt_hub_started_fn done,
                        void *arg)
{
    dt_error err = {0};
    start_entry *s = calloc(1, sizeof *s);
    dt_status st = s ? start_prepare(hub, req, s, &err)
                     : dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
    if (st != DT_OK) {
        free(s);
        done(arg, st, &err, NULL);
        return;
    }
    s->done = done;
    s->done_arg = arg;
    s->req.commit = &s->c;
    s->req.finish = start_finish;
    hub_commit_async(hub, &s->req);
}

dt_status dt_hub_get(dt_hub *hub, const char *id, dt_arena *arena, dt_instance_state **out,
                     dt_error *err)
{
    if (id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "instance id is empty");
    dt_status st = dt_store_get_instance(hub->store, id, arena, out, err);
    return read_barrier_of(hub, id, st, err);
}

dt_status dt_hub_get_history(dt_hub *hub, const char *id, dt_arena *arena, dt_event **out,
                             size_t *n_out, dt_error *err)
{
    if (id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "instance id is empty");
    dt_status st = dt_store_get_history(hub->store, id, arena, out, n_out, err);
    return read_barrier(hub, st, err);
}

dt_status dt_hub_walk_history(dt_hub *hub, const char *id, dt_history_fn fn, void *arg,
                              bool *replaced, dt_error *err)
{
    *replaced = false;
    if (id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "instance id is empty");
    dt_status st = DT_OK;
    int64_t gen = 0;
    bool more = true;
    for (size_t at = 0; st == DT_OK && more;) {
        dt_arena *a = dt_arena_new();
        if (a == NULL)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory reading history of '%s'", id);
        dt_history_window w;
        st = dt_store_read_history(hub->store, id, at, DT_HISTORY_WINDOW, a, &w, err);
        st = read_barrier(hub, st, err);
        *replaced = st == DT_OK && at > 0 && w.gen != gen;
        if (st == DT_OK && !*replaced)
            st = fn(arg, w.events, w.n, a, err);
        dt_arena_free(a);
        gen = w.gen;
        more = w.more && !*replaced;
        at += w.n;
    }
    return st;
}

bool hub_may_exist(const char *id)
{
    dt_error err = {0};
    return dt_instance_id_validate(id, &err) == DT_OK;
}

bool hub_state_reached(const dt_instance_state *s, dt_wait_for what)
{
    return reached_status(s->status, what);
}

void waiter_wake(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    w->changed = true;
    pthread_mutex_unlock(&w->mu);
    /* after the unlock, so the waiter does not wake only to block on w->mu; ch_mu, held,
     * keeps W listed, so its condition is still there */
    pthread_cond_signal(&w->cv);
}

/* wait_turn: sleep until W's instance changes or MS milliseconds pass. */
static void wait_turn(waiter *w, int64_t ms)
{
    struct timespec until = dt_deadline_ms(ms);
    pthread_mutex_lock(&w->mu);
    if (!w->changed)
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
    w->changed = false;
    pthread_mutex_unlock(&w->mu);
}

static void waiter_remove(dt_hub *hub, waiter *w)
{
    pthread_mutex_lock(&hub->ch_mu);
    waiter_unlink(hub, w);
    pthread_mutex_unlock(&hub->ch_mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    dt_arena_free(w->reached_arena);
}

/* take_reached: the row W was woken with (its arena in *ARENA), taken from W; NULL if none. */
static dt_instance_state *take_reached(waiter *w, dt_arena **arena)
{
    pthread_mutex_lock(&w->mu);
    dt_instance_state *row = w->reached;
    *arena = w->reached_arena;
    w->reached = NULL;
    w->reached_arena = NULL;
    pthread_mutex_unlock(&w->mu);
    return row;
}

static dt_status wait_loop(dt_hub *hub, waiter *w, const char *id, dt_wait_for what,
                           int64_t timeout_ms, dt_arena *arena, dt_instance_state **out,
                           dt_error *err);

int64_t hub_wait_poll_ms(dt_hub *hub)
{
    /* woken by our instances' commits; the poll only catches other processes' */
    int64_t poll_ms = hub->watched ? WAIT_WATCHED_MS : WAIT_POLL_MS;
    /* many waiters look less often each: waits cost the store a bounded rate of reads
     * (a change no commit of this hub tells of, another process's, is seen later) */
    int64_t share_ms = (int64_t)atomic_load(&hub->n_waiters) * 1000 / WAIT_POLLS_PER_S;
    return poll_ms < share_ms ? share_ms : poll_ms;
}

dt_status dt_hub_wait(dt_hub *hub, const char *id, dt_wait_for what, int64_t timeout_ms,
                      dt_arena *arena, dt_instance_state **out, dt_error *err)
{
    if (id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "instance id is empty");
    waiter w = {.instance_id = id, .what = what};
    if (pthread_mutex_init(&w.mu, NULL) != 0)
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create a mutex to wait on");
    if (pthread_cond_init(&w.cv, NULL) != 0) {
        pthread_mutex_destroy(&w.mu);
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create a condition to wait on");
    }
    pthread_mutex_lock(&hub->ch_mu);
    waiter_link(hub, &w);
    pthread_mutex_unlock(&hub->ch_mu);
    dt_status st = wait_loop(hub, &w, id, what, timeout_ms, arena, out, err);
    waiter_remove(hub, &w);
    return st;
}

static dt_status wait_loop(dt_hub *hub, waiter *w, const char *id, dt_wait_for what,
                           int64_t timeout_ms, dt_arena *arena, dt_instance_state **out,
                           dt_error *err)
{
    dt_time deadline = timeout_ms < 0 ? INT64_MAX : dt_now() + timeout_ms * 1000;
    for (;;) {
        /* woken with the row an episode left: it is durable (published), so it is the
         * answer, told without a read of the store or a wait for a later fsync */
        dt_arena *row_arena = NULL;
        dt_instance_state *row = take_reached(w, &row_arena);
        if (row != NULL) {
            dt_status st = sync_checked(hub, DT_OK, err);
            if (st == DT_OK && (*out = dt_instance_state_copy(arena, row)) == NULL)
                st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
            dt_arena_free(row_arena);
            return st;
        }
        /* each read goes into a scratch arena so a long wait does not grow the caller's */
        dt_arena *scratch = dt_arena_new();
        if (scratch == NULL)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        dt_instance_state *s = NULL;
        dt_status st = dt_store_get_instance(hub->store, id, scratch, &s, err);
        bool done = st == DT_OK && hub_state_reached(s, what);
        /* no such instance yet: waited for, as the Durable Task Framework's waits do (an
         * instance an entity or another orchestration will start may be waited on first) */
        bool missing = st == DT_ERR_NOT_FOUND && hub_may_exist(id);
        dt_time now = dt_now();
        if ((st != DT_OK && !missing) || done || now >= deadline ||
            atomic_load(&hub->sync_failed)) {
            /* an answer: told only once what the read saw is durable. A read that only
             * decides to wait on tells nobody anything, and waits for no fsync. */
            st = read_barrier_of(hub, id, st, err);
            done = done && st == DT_OK;
            if (st == DT_OK) {
                /* copy the final state into the caller's arena */
                dt_instance_state *c = dt_instance_state_copy(arena, s);
                if (c == NULL) {
                    dt_arena_free(scratch);
                    return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
                }
                *out = c;
                if (!done)
                    st = dt_error_set(err, DT_ERR_TIMEOUT,
                                      "instance '%s' is still %s after %lld ms", id,
                                      dt_runtime_status_name(s->status),
                                      (long long)timeout_ms);
            }
            dt_arena_free(scratch);
            return st;
        }
        dt_arena_free(scratch);
        int64_t left_ms = (deadline - now) / 1000 + 1;
        int64_t poll_ms = hub_wait_poll_ms(hub);
        wait_turn(w, left_ms < poll_ms ? left_ms : poll_ms);
    }
}

const char *dt_hub_node(const dt_hub *hub)
{
    return hub->owner;
}

dt_status dt_hub_nodes(dt_hub *hub, dt_arena *arena, dt_node_info **out, size_t *n_out,
                       dt_error *err)
{
    *out = NULL;
    *n_out = 0;
    if (hub->beats)
        return dt_store_nodes(hub->store, dt_now() - (dt_time)DT_NODE_ALIVE_MS * 1000, arena,
                              out, n_out, err);
    dt_node_info *self = dt_arena_alloc(arena, sizeof *self);
    if (self == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory listing nodes");
    *self = (dt_node_info){hub->owner, hub->started_at, dt_now()};
    *out = self;
    *n_out = 1;
    return DT_OK;
}
