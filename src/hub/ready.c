/* ready.c — work a commit leased for this hub (see commit.c), waiting for a taker: one ring of
 * orchestration items and one of activity items, and who the takers are. Takers (the dispatch
 * loops, the gRPC work streams) look here before they ask the store. A commit leases only
 * work of a kind some taker asked for lately; an item that no present taker would take (its
 * name is in no taker's filter, or the takers went away) is given back to the store for
 * anyone to lease. Work that waits here is leased and renewed like work in progress. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define TAKER_RECENT_US 2000000   /* a taker that asked this recently is present */
#define GIVE_BACK_US 5000000      /* work no taker asked for in this long goes back */

/* orch_match: the store's rule for filters: the orchestrator's name and version, or a
 * terminate waiting (the hub ends the instance without running its code). ITEM is a
 * dt_orch_item. */
static bool orch_match(const void *item, const dt_name_filter *names)
{
    const dt_orch_item *it = item;
    if (dt_name_filter_match(names, it->state.name, it->state.version))
        return true;
    for (size_t i = 0; i < it->n_incoming; i++)
        if (it->incoming[i].type == DT_EVENT_EXECUTION_TERMINATED)
            return true;
    return false;
}

static void ring_push(ready_ring *r, void *item)
{
    assert(r->n < READY_MAX);
    r->items[(r->head + r->n) % READY_MAX] = item;
    r->n++;
}

/* ring_remove: take the K-th item (from the head) out, closing the gap. */
static void *ring_remove(ready_ring *r, size_t k)
{
    assert(k < r->n);
    void *it = r->items[(r->head + k) % READY_MAX];
    for (size_t j = k; j > 0; j--)
        r->items[(r->head + j) % READY_MAX] = r->items[(r->head + j - 1) % READY_MAX];
    r->head = (r->head + 1) % READY_MAX;
    r->n--;
    return it;
}

/* ring_take: the first item MATCH accepts (any, without NAMES), removed; NULL if none. */
static void *ring_take(ready_ring *r, bool (*match)(const void *, const dt_name_filter *),
                       const dt_name_filter *names)
{
    for (size_t k = 0; k < r->n; k++)
        if (names == NULL || match(r->items[(r->head + k) % READY_MAX], names))
            return ring_remove(r, k);
    return NULL;
}

/* act_match: the activity's name. ITEM is a dt_activity_item. */
static bool act_match(const void *it, const dt_name_filter *names)
{
    const dt_activity_item *a = it;
    return dt_name_filter_match(names, a->name, a->version);
}

/* ---- takers ------------------------------------------------------------------------------ */

static void taker_clear(taker *t)
{
    dt_arena_free(t->arena);
    memset(t, 0, sizeof *t);
}

/* taker_set: T becomes the taker KEY of KIND with a copy of NAMES (rq_mu held). */
static void taker_set(dt_hub *hub, taker *t, const dt_name_filter *key, int kind, dt_time now)
{
    (void)hub;   /* for the assert only */
    assert(core_mutex_held(&hub->rq_mu));
    taker_clear(t);
    if ((t->arena = dt_arena_new()) == NULL ||
        dt_name_filter_copy(t->arena, key, &t->filter) != DT_OK) {
        taker_clear(t);   /* out of memory: not remembered, so nothing is held for it */
        return;
    }
    t->key = key;
    t->kind = kind;
    t->asked_at = now;
}

void ready_asked(dt_hub *hub, int kind, const dt_name_filter *names)
{
    dt_time now = dt_now();
    if (names == NULL) {
        atomic_store(&hub->any_asked_at[kind], now);
        return;
    }
    pthread_mutex_lock(&hub->rq_mu);
    taker *free_slot = NULL, *oldest = &hub->filtered[0];
    for (int i = 0; i < MAX_FILTERED; i++) {
        taker *t = &hub->filtered[i];
        if (t->key == names && t->kind == kind) {
            t->asked_at = now;
            pthread_mutex_unlock(&hub->rq_mu);
            return;
        }
        if (t->key == NULL || now - t->asked_at > GIVE_BACK_US)
            free_slot = free_slot ? free_slot : t;
        if (t->asked_at < oldest->asked_at)
            oldest = t;
    }
    taker_set(hub, free_slot ? free_slot : oldest, names, kind, now);
    pthread_mutex_unlock(&hub->rq_mu);
}

void ready_forget_taker(dt_hub *hub, const dt_name_filter *key)
{
    pthread_mutex_lock(&hub->rq_mu);
    for (int i = 0; i < MAX_FILTERED; i++)
        if (hub->filtered[i].key == key)
            taker_clear(&hub->filtered[i]);
    pthread_mutex_unlock(&hub->rq_mu);
}

void ready_free_takers(dt_hub *hub)
{
    for (int i = 0; i < MAX_FILTERED; i++)
        taker_clear(&hub->filtered[i]);
}

/* wanted: would a taker that asked within WINDOW take IT (of KIND)? rq_mu held. */
static bool wanted(dt_hub *hub, int kind, const void *it, dt_time now, dt_time window)
{
    assert(core_mutex_held(&hub->rq_mu));
    if (now - atomic_load(&hub->any_asked_at[kind]) <= window)
        return true;
    for (int i = 0; i < MAX_FILTERED; i++) {
        taker *t = &hub->filtered[i];
        if (t->key == NULL || t->kind != kind || now - t->asked_at > window)
            continue;
        if (kind == 0 ? orch_match(it, &t->filter) : act_match(it, &t->filter))
            return true;
    }
    return false;
}

/* taker_present: has a taker of KIND asked lately? rq_mu held. */
static bool taker_present(dt_hub *hub, int kind, dt_time now)
{
    assert(core_mutex_held(&hub->rq_mu));
    bool present = now - atomic_load(&hub->any_asked_at[kind]) <= TAKER_RECENT_US;
    for (int i = 0; !present && i < MAX_FILTERED; i++)
        present = hub->filtered[i].key && hub->filtered[i].kind == kind &&
                  now - hub->filtered[i].asked_at <= TAKER_RECENT_US;
    return present;
}

bool ready_taker_present(dt_hub *hub, int kind, dt_time now)
{
    pthread_mutex_lock(&hub->rq_mu);
    bool present = taker_present(hub, kind, now);
    pthread_mutex_unlock(&hub->rq_mu);
    return present;
}

size_t ready_room(dt_hub *hub, int kind, dt_time now)
{
    pthread_mutex_lock(&hub->rq_mu);
    size_t room = taker_present(hub, kind, now)
                      ? READY_MAX - (kind == 0 ? hub->ready_orch.n : hub->ready_act.n)
                      : 0;
    pthread_mutex_unlock(&hub->rq_mu);
    return room;
}

/* ---- the rings ----------------------------------------------------------------------------- */

static void give_back_one(dt_hub *hub, int kind, void *it)
{
    lease_untrack(hub, it);
    if (kind == 0) {
        dt_store_abandon_orchestration(hub->store, it, 0, NULL);
        dt_orch_item_free(it);
    } else {
        dt_store_abandon_activity(hub->store, it, 0, NULL);
        dt_activity_item_free(it);
    }
}

/* wants: would S take IT, of KIND? */
static bool wants(const sleeper *s, int kind, const void *it)
{
    if (kind == 0)
        return (s->want & DT_WORK_ORCHESTRATION) && (s->orch == NULL || orch_match(it, s->orch));
    return (s->want & DT_WORK_ACTIVITY) && (s->act == NULL || act_match(it, s->act));
}

/* wake_for: take off the list one taker asleep that would take IT, of KIND, counted as on
 * its way; NULL if there is none. The caller posts its semaphore, at once or after letting go
 * of its locks (rq_mu and ch_mu held: ch_mu is taken after rq_mu, never the other way). */
static sleeper *wake_for(dt_hub *hub, int kind, const void *it)
{
    assert(core_mutex_held(&hub->rq_mu) && core_mutex_held(&hub->ch_mu));
    for (sleeper **p = &hub->sleepers; *p; p = &(*p)->next) {
        sleeper *s = *p;
        if (wants(s, kind, it)) {
            *p = s->next;
            s->woken = true;
            s->woken_for = kind;
            atomic_fetch_add(&hub->wakes_pending[kind], 1);
            return s;
        }
    }
    return NULL;
}

/* cover: R, the ring of KIND, has items left after a look: wake a sleeper for each item
 * beyond those the sleepers woken already will take (rq_mu held). The taker woken for an
 * item may have taken another (a taker of any name takes the first it finds), so the one
 * woken for that may have found nothing it takes: without this, an item could wait for a
 * poll. */
static void cover(dt_hub *hub, int kind, ready_ring *r)
{
    assert(core_mutex_held(&hub->rq_mu));
    pthread_mutex_lock(&hub->ch_mu);
    size_t pending = atomic_load(&hub->wakes_pending[kind]);
    size_t more = r->n > pending ? r->n - pending : 0;
    for (size_t k = 0; k < r->n && more > 0; k++) {
        sleeper *s = wake_for(hub, kind, r->items[(r->head + k) % READY_MAX]);
        if (s) {
            sem_post(&s->sem);
            more--;
        }
    }
    pthread_mutex_unlock(&hub->ch_mu);
}

/* push_kind: queue the N items of KIND that some present taker would take, waking a taker
 * asleep for each (the change version moves, so a taker between its look and its sleep looks
 * again); give the others back (after the lock: giving back writes to the store). */
static void push_kind(dt_hub *hub, int kind, void **items, size_t n)
{
    ready_ring *r = kind == 0 ? &hub->ready_orch : &hub->ready_act;
    dt_time now = dt_now();
    size_t back = 0, n_woken = 0;
    bool woke = false;
    sleeper *woken[READY_MAX];   /* posted after the locks: they take rq_mu when they wake */
    pthread_mutex_lock(&hub->rq_mu);
    for (size_t i = 0; i < n; i++) {
        if (items[i] == NULL)
            continue;
        if (r->n < READY_MAX && wanted(hub, kind, items[i], now, TAKER_RECENT_US)) {
            ring_push(r, items[i]);
            if (!woke) {
                pthread_mutex_lock(&hub->ch_mu);
                hub->version++;
                woke = true;
            }
            sleeper *s = wake_for(hub, kind, items[i]);
            if (s)
                woken[n_woken++] = s;
        } else {
            items[back++] = items[i];
        }
    }
    if (woke) {
        pthread_cond_broadcast(&hub->changed);   /* hub_wait_change's: the version moved */
        pthread_mutex_unlock(&hub->ch_mu);
    }
    pthread_mutex_unlock(&hub->rq_mu);
    for (size_t i = 0; i < n_woken; i++)
        sem_post(&woken[i]->sem);
    for (size_t i = 0; i < back; i++)
        give_back_one(hub, kind, items[i]);
}

void ready_push(dt_hub *hub, dt_orch_item **orch, size_t n_orch, dt_activity_item **act,
                size_t n_act)
{
    if (n_orch + n_act == 0)
        return;
    for (size_t i = 0; i < n_orch; i++)
        if (lease_track(hub, orch[i], NULL) != DT_OK) {
            dt_store_abandon_orchestration(hub->store, orch[i], 0, NULL);
            dt_orch_item_free(orch[i]);
            orch[i] = NULL;
        }
    for (size_t i = 0; i < n_act; i++)
        if (lease_track(hub, NULL, act[i]) != DT_OK) {
            dt_store_abandon_activity(hub->store, act[i], 0, NULL);
            dt_activity_item_free(act[i]);
            act[i] = NULL;
        }
    push_kind(hub, 0, (void **)orch, n_orch);
    push_kind(hub, 1, (void **)act, n_act);
}

dt_orch_item *ready_take_orch(dt_hub *hub, const dt_name_filter *names)
{
    pthread_mutex_lock(&hub->rq_mu);
    dt_orch_item *it = ring_take(&hub->ready_orch, orch_match, names);
    if (hub->ready_orch.n)
        cover(hub, 0, &hub->ready_orch);
    pthread_mutex_unlock(&hub->rq_mu);
    return it;
}

dt_activity_item *ready_take_act(dt_hub *hub, const dt_name_filter *names)
{
    pthread_mutex_lock(&hub->rq_mu);
    dt_activity_item *it = ring_take(&hub->ready_act, act_match, names);
    if (hub->ready_act.n)
        cover(hub, 1, &hub->ready_act);
    pthread_mutex_unlock(&hub->rq_mu);
    return it;
}

/* sweep_kind: give back the items of KIND no taker that asked within WINDOW would take (all
 * of them with WINDOW < 0). */
static void sweep_kind(dt_hub *hub, int kind, dt_time window)
{
    ready_ring *r = kind == 0 ? &hub->ready_orch : &hub->ready_act;
    dt_time now = dt_now();
    for (;;) {
        void *it = NULL;
        pthread_mutex_lock(&hub->rq_mu);
        for (size_t k = 0; k < r->n && it == NULL; k++)
            if (window < 0 || !wanted(hub, kind, r->items[(r->head + k) % READY_MAX], now, window))
                it = ring_remove(r, k);
        pthread_mutex_unlock(&hub->rq_mu);
        if (it == NULL)
            return;
        give_back_one(hub, kind, it);
    }
}

void ready_forget(dt_hub *hub, const char *id)
{
    void *it = NULL;
    ready_ring *r = &hub->ready_orch;
    pthread_mutex_lock(&hub->rq_mu);
    for (size_t k = 0; k < r->n && it == NULL; k++) {
        const dt_orch_item *o = r->items[(r->head + k) % READY_MAX];
        if (strcmp(o->instance_id, id) == 0)
            it = ring_remove(r, k);
    }
    pthread_mutex_unlock(&hub->rq_mu);
    if (it)
        give_back_one(hub, 0, it);
}

void ready_sweep(dt_hub *hub)
{
    sweep_kind(hub, 0, GIVE_BACK_US);
    sweep_kind(hub, 1, GIVE_BACK_US);
}

void ready_drain(dt_hub *hub)
{
    sweep_kind(hub, 0, -1);
    sweep_kind(hub, 1, -1);
}
