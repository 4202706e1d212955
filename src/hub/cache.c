/* cache.c — decoded histories kept in memory between episodes, so an episode reads only the
 * events it has not seen instead of the whole history: with it, leasing the 10,000th step of
 * a long orchestration costs what leasing the first did. An entry belongs to one execution of
 * one instance; it is used only by the one that checked it out (the holder of that instance's
 * lease, or a speculative episode: cache_speculate), so its events need no lock. The table
 * and the LRU order are guarded by the cache's mu. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define CACHE_BUCKETS 16384
#define CACHE_MAX_EVENTS 100000   /* evict least recently used entries beyond this */

typedef struct cache_entry {
    char *instance_id;
    int64_t gen;                  /* the history's generation it copies (history_gen) */
    char *execution_id;
    dt_arena *arena;              /* strings of the events */
    dt_event *events;             /* malloc'd, grows */
    size_t n, cap;
    size_t bytes;                 /* payload bytes of the events (limits_event_bytes) */
    tally tally;                  /* of the events */
    bool in_use;
    char *token;                  /* the lease that uses it, while in use */
    struct cache_entry *next;     /* bucket chain */
    struct cache_entry *newer, *older;   /* the LRU list of idle entries */
} cache_entry;

struct hub_cache {
    pthread_mutex_t mu;
    cache_entry *buckets[CACHE_BUCKETS];
    size_t n_events;              /* over all entries, for the eviction bound */
    size_t n_entries;
    cache_entry *newest, *oldest; /* idle entries, most recently used first */
};

static size_t bucket_of(const char *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h % CACHE_BUCKETS);
}

/* find_entry: the entry of instance ID, or NULL (c->mu held). */
static cache_entry *find_entry(hub_cache *c, const char *id)
{
    cache_entry *e = c->buckets[bucket_of(id)];
    while (e && strcmp(e->instance_id, id) != 0)
        e = e->next;
    return e;
}

static void entry_free(cache_entry *e)
{
    free(e->instance_id);
    free(e->execution_id);
    free(e->token);
    dt_arena_free(e->arena);
    free(e->events);
    tally_free(&e->tally);
    free(e);
}

hub_cache *cache_new(void)
{
    hub_cache *c = calloc(1, sizeof *c);
    if (c && pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void cache_free(hub_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        while (c->buckets[i]) {
            cache_entry *e = c->buckets[i];
            c->buckets[i] = e->next;
            entry_free(e);
        }
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* lru_remove / lru_push: take idle entry E off the LRU list, put it at the newest end
 * (c->mu held). An entry in use is on no list. */
static void lru_remove(hub_cache *c, cache_entry *e)
{
    assert(core_mutex_held(&c->mu));
    if (e->newer)
        e->newer->older = e->older;
    else if (c->newest == e)
        c->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else if (c->oldest == e)
        c->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(hub_cache *c, cache_entry *e)
{
    assert(core_mutex_held(&c->mu));
    e->older = c->newest;
    e->newer = NULL;
    if (c->newest)
        c->newest->newer = e;
    c->newest = e;
    if (c->oldest == NULL)
        c->oldest = e;
}

/* unlink: remove E from its bucket and the LRU list (c->mu held). */
static void unlink_entry(hub_cache *c, cache_entry *e)
{
    lru_remove(c, e);
    for (cache_entry **p = &c->buckets[bucket_of(e->instance_id)]; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            c->n_events -= e->n;
            c->n_entries--;
            return;
        }
    }
}

/* evict: drop least recently used idle entries until under the bound (c->mu held). */
static void evict(hub_cache *c)
{
    assert(core_mutex_held(&c->mu));
    while (c->n_events > CACHE_MAX_EVENTS && c->oldest) {
        cache_entry *lru = c->oldest;
        unlink_entry(c, lru);
        entry_free(lru);
    }
}

static cache_entry *entry_new(const char *id, const char *exec)
{
    cache_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->instance_id = strdup(id);
    e->execution_id = exec ? strdup(exec) : NULL;
    e->arena = dt_arena_new();
    if (e->instance_id == NULL || (exec && e->execution_id == NULL) || e->arena == NULL) {
        entry_free(e);
        return NULL;
    }
    return e;
}

static dt_status entry_append(cache_entry *e, const dt_event *ev, size_t n)
{
    dt_event *v = dt_grow(e->events, &e->cap, e->n + n, sizeof *v);
    if (v == NULL)
        return DT_ERR_NOMEM;
    e->events = v;
    for (size_t i = 0; i < n; i++) {
        dt_status st = dt_event_copy(e->arena, &ev[i], &e->events[e->n]);
        if (st != DT_OK)
            return st;
        e->bytes += limits_event_bytes(&ev[i]);
        e->n++;
    }
    return tally_add(&e->tally, ev, n);
}

/* take: the entry for ITEM's execution, marked in use, or a fresh one. NULL if the instance
 * is somehow in use already (then the caller loads without the cache) or memory is short. */
static cache_entry *take(hub_cache *c, const dt_orch_item *item)
{
    const char *exec = item->state.execution_id;
    pthread_mutex_lock(&c->mu);
    cache_entry *e = find_entry(c, item->instance_id);
    if (e && e->in_use) {
        pthread_mutex_unlock(&c->mu);
        return NULL;
    }
    bool same = e && ((exec == NULL && e->execution_id == NULL) ||
                      (exec && e->execution_id && strcmp(exec, e->execution_id) == 0));
    if (e && (!same || e->gen != item->history_gen || e->n > item->history_len)) {
        unlink_entry(c, e);   /* another execution, or rewritten elsewhere: start over */
        entry_free(e);
        e = NULL;
    }
    if (e == NULL && (e = entry_new(item->instance_id, exec)) != NULL) {
        e->gen = item->history_gen;
        size_t b = bucket_of(item->instance_id);
        e->next = c->buckets[b];
        c->buckets[b] = e;
        c->n_entries++;
    }
    if (e && (e->token = strdup(item->lock_token ? item->lock_token : "")) == NULL) {
        unlink_entry(c, e);
        entry_free(e);
        e = NULL;
    }
    if (e) {
        lru_remove(c, e);
        e->in_use = true;
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

dt_status cache_attach(dt_hub *hub, dt_orch_item *item, dt_error *err)
{
    hub_cache *c = hub->cache;
    cache_entry *e = take(c, item);
    size_t from = e ? e->n : 0;
    dt_event *tail = NULL;
    size_t n_tail = 0;
    dt_status st = DT_OK;
    if (from < item->history_len)
        st = dt_store_load_history(hub->store, item->instance_id, from, item->arena, &tail,
                                   &n_tail, err);
    /* nothing is appended while the lease is held: a read that disagrees with the lease's
     * count would give the replay a wrong past (the episode is given back, not run) */
    if (st == DT_OK && from < item->history_len && from + n_tail != item->history_len)
        st = dt_error_set(err, DT_ERR_INTERNAL,
                          "the history of '%s' read %zu events from %zu; its lease counts %zu",
                          item->instance_id, n_tail, from, item->history_len);
    if (st == DT_OK && e) {
        st = entry_append(e, tail, n_tail);
        pthread_mutex_lock(&c->mu);
        c->n_events += n_tail;
        pthread_mutex_unlock(&c->mu);
    }
    if (st != DT_OK) {
        if (e)
            cache_detach(hub, item, NULL);
        return st;
    }
    if (e) {
        item->past = e->events;
        item->n_past = e->n;
    } else {
        item->past = tail;
        item->n_past = n_tail;
    }
    return DT_OK;
}

bool cache_speculate(dt_hub *hub, dt_orch_item *item)
{
    hub_cache *c = hub->cache;
    const char *exec = item->state.execution_id;
    char *token = strdup(item->lock_token);
    if (token == NULL || exec == NULL) {
        free(token);
        return false;
    }
    pthread_mutex_lock(&c->mu);
    cache_entry *e = find_entry(c, item->instance_id);
    /* one task open: the result at hand is the one its code waits for (with more open, the
     * others' results would come to an instance whose episode is out, and each wait) */
    bool ok = e && !e->in_use && e->execution_id && strcmp(e->execution_id, exec) == 0 &&
              e->tally.open == 1;
    if (ok) {
        lru_remove(c, e);
        e->in_use = true;
        e->token = token;
        item->past = e->events;
        item->n_past = item->history_len = e->n;
        item->history_gen = e->gen;
    }
    pthread_mutex_unlock(&c->mu);
    if (!ok)
        free(token);
    return ok;
}

/* holding: the entry whose events ITEM's past are, or NULL. */
static cache_entry *holding(hub_cache *c, const dt_orch_item *item)
{
    pthread_mutex_lock(&c->mu);
    cache_entry *e = find_entry(c, item->instance_id);
    bool ours = e && e->in_use && e->events == item->past && e->n == item->n_past &&
                e->token && item->lock_token && strcmp(e->token, item->lock_token) == 0;
    pthread_mutex_unlock(&c->mu);
    return ours ? e : NULL;   /* in use by ITEM's holder alone: read without the lock */
}

void cache_size(dt_hub *hub, size_t *instances, size_t *events)
{
    hub_cache *c = hub->cache;
    pthread_mutex_lock(&c->mu);
    *instances = c->n_entries;
    *events = c->n_events;
    pthread_mutex_unlock(&c->mu);
}

const tally *cache_tally(dt_hub *hub, const dt_orch_item *item)
{
    cache_entry *e = holding(hub->cache, item);
    return e ? &e->tally : NULL;
}

size_t cache_history_bytes(dt_hub *hub, const dt_orch_item *item)
{
    cache_entry *e = holding(hub->cache, item);
    bool ours = e != NULL;
    size_t n = ours ? e->bytes : 0;
    for (size_t i = 0; !ours && i < item->n_past; i++)   /* not from the cache: count them */
        n += limits_event_bytes(&item->past[i]);
    return n;
}

void cache_detach(dt_hub *hub, const dt_orch_item *item, const dt_episode *committed)
{
    hub_cache *c = hub->cache;
    pthread_mutex_lock(&c->mu);
    cache_entry *e = find_entry(c, item->instance_id);
    if (e == NULL || !e->in_use || e->token == NULL || item->lock_token == NULL ||
        strcmp(e->token, item->lock_token) != 0) {
        pthread_mutex_unlock(&c->mu);
        return;   /* this item did not use the cache */
    }
    pthread_mutex_unlock(&c->mu);

    bool keep = committed != NULL;
    if (keep && (committed->reset_history || dt_runtime_status_is_terminal(committed->status))) {
        /* continue-as-new: a new execution with a new history; or the execution ended: it
         * has no next episode (messages to it are dropped unread; a rewind or a restart
         * reads its history afresh), and kept it would only push out the live ones */
        keep = false;
    } else if (keep) {
        size_t before = e->n;
        keep = entry_append(e, committed->append, committed->n_append) == DT_OK;
        pthread_mutex_lock(&c->mu);
        c->n_events += e->n - before;
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    if (keep) {
        e->in_use = false;
        free(e->token);
        e->token = NULL;
        lru_push(c, e);
        evict(c);
    } else {
        /* unknown outcome (lease lost, abandoned, failed) or a new execution: forget it */
        unlink_entry(c, e);
        entry_free(e);
    }
    pthread_mutex_unlock(&c->mu);
}
