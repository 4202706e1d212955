/* session.c — extended sessions: an orchestration's code kept suspended at its pending await
 * between episodes, so that its next episode feeds it the new events instead of replaying
 * its whole history (the Durable Task Framework's "extended sessions"). One session per
 * instance, in a bounded cache per worker, least recently used evicted first. A request
 * that does not continue exactly what a session saw runs from the start, in a new session.
 *
 * How the code is suspended: on a stack of its own, a ucontext fibre, switched to and from
 * with swapcontext. A switch costs about a microsecond and never waits for the scheduler;
 * a parked thread per session (tried first) cost 150-300 us per episode on a loaded
 * machine, two wake-ups waiting for a core each, more than the replay it saved until the
 * history was thousands of events long. The code may resume on another thread than the one
 * it was suspended on (the dispatch loops and the remote worker's pool hand an instance's
 * episodes to any of theirs): orchestrator code keeps no thread-local state across an
 * await, as the SDK's rules already say, and the SDK's own code reads its thread-local
 * scratch afresh each time. Each switch is announced to AddressSanitizer
 * (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber) so that it knows which
 * stack runs and the longjmp of an unwound session is checked on the right one. The stack
 * is mapped with a guard page below it, so an overflow faults instead of writing over the
 * heap; LeakSanitizer needs nothing: no session outlives the worker.
 *
 * Exactly one party runs at a time: the episode's caller switches to the code and gets
 * control back when the code waits for more history or ends; a session is checked out of
 * the cache while an episode uses it, so no two threads ever touch one. */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "sdk_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SESSION_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SESSION_ASAN 1
#endif
#endif
#ifdef SESSION_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
/* instrumented frames are larger */
#define STACK_SIZE (4u << 20)
#else
#define STACK_SIZE (1u << 20)   /* mapped lazily: a session uses the pages it touches */
#endif

/* An event the last episode's actions add to history, as the hub writes it (episode.c): a
 * scheduling event under the action's sequence number, named as the action is. */
typedef struct expected {
    dt_event_type type;
    int32_t id;
    char *name;                   /* malloc; NULL: not compared */
    char *request_id;             /* malloc: an entity call's or lock request's, else NULL */
} expected;

typedef struct session {
    char *instance_id;            /* malloc */
    char *execution_id;           /* malloc; NULL if the requests name none */
    uint64_t hash;                /* of instance_id */
    dt_orchestrator_fn fn;
    void *user;
    dt_arena *arena;              /* the code's memory, for the session's whole life */
    dt_octx *c;                   /* in arena; its index arrays are the session's (malloc) */
    const char *input;            /* the ExecutionStarted's, in arena */
    size_t cap_evs;               /* of c->evs */

    unsigned char *map;           /* the code's stack, a guard page below it (mmap) */
    size_t map_len;
    ucontext_t code;              /* where the code is, while the caller runs */
    ucontext_t *caller;           /* where the caller is, while the code runs */
    bool started;                 /* the code has been entered */
    bool abandon;                 /* the session is being destroyed: unwind */
    bool ended;                   /* the code returned, failed or unwound */
#ifdef SESSION_ASAN
    void *fake_stack;             /* the code's, while it is switched out */
    const void *caller_bottom;    /* the stack the code was entered from */
    size_t caller_size;
#endif

    /* what the next request must continue (see continues) */
    size_t last_new;              /* position of the last episode's first new event */
    expected *expect;             /* events the last episode's actions add, in order */
    size_t n_expect, cap_expect;
    bool stale;                   /* an action whose history we do not predict (a rewind) */

    struct session *prev, *next;  /* the cache's list, most recently used first */
} session;

struct session_cache {
    pthread_mutex_t mu;           /* guards everything below; never held while code runs */
    size_t max, n;
    session *head, *tail;
    dt_session_stats stats;
};

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* ---- the code's stack ------------------------------------------------------------------- */

/* The switches, announced to AddressSanitizer. The code's side records the caller's stack
 * each time it is entered, since a session's episodes come from any thread. */
static void code_entered(session *s)
{
#ifdef SESSION_ASAN
    __sanitizer_finish_switch_fiber(s->fake_stack, &s->caller_bottom, &s->caller_size);
#else
    (void)s;
#endif
}

static void to_caller(session *s, bool for_good)
{
#ifdef SESSION_ASAN
    __sanitizer_start_switch_fiber(for_good ? NULL : &s->fake_stack, s->caller_bottom,
                                   s->caller_size);
#endif
    if (for_good)
        setcontext(s->caller);
    else
        swapcontext(&s->code, s->caller);
}

static _Thread_local session *entering;   /* hands the session to code_main */

static void code_main(void)
{
    session *s = entering;
    code_entered(s);
    replay_execute(s->c, s->fn, s->input);
    s->ended = true;
    to_caller(s, true);   /* never returns: the context has no successor */
    abort();
}

bool session_wait(session *s)
{
    to_caller(s, false);
    code_entered(s);
    return !s->abandon;
}

/* Stacks of ended sessions, kept for the next ones (at most POOL_MAX, process-wide): mapping,
 * guarding and unmapping a stack per session cost more than a short orchestration's replay
 * (munmap in a threaded process flushes every core's TLB), and a reused stack's pages are
 * already there. All have the same length. */
#define POOL_MAX 64
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *pool[POOL_MAX];
static size_t pool_n;

static size_t guard_len(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? (size_t)page : 4096;
}

/* stack_get: a stack (guard page first) of STACK_SIZE + guard_len() bytes, or NULL. */
static unsigned char *stack_get(void)
{
    pthread_mutex_lock(&pool_mu);
    unsigned char *m = pool_n ? pool[--pool_n] : NULL;
    pthread_mutex_unlock(&pool_mu);
    if (m)
        return m;
    size_t len = STACK_SIZE + guard_len();
    m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
             -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m, guard_len(), PROT_NONE) != 0) {
        munmap(m, len);
        return NULL;
    }
    return m;
}

/* stack_put: M (from stack_get, its code gone) back to the pool, or unmapped if it is full. */
static void stack_put(unsigned char *m)
{
    size_t len = STACK_SIZE + guard_len();
#ifdef SESSION_ASAN
    /* frames left their marks in the shadow; the next user of these pages starts clean */
    __asan_unpoison_memory_region(m + guard_len(), STACK_SIZE);
#endif
    pthread_mutex_lock(&pool_mu);
    bool kept = pool_n < POOL_MAX;
    if (kept)
        pool[pool_n++] = m;
    pthread_mutex_unlock(&pool_mu);
    if (!kept)
        munmap(m, len);
}

/* make_stack: S's stack (guard page below it) and its context prepared to enter code_main;
 * false if that cannot be done. Apart from run_code, whose getcontext and swapcontext return
 * twice. */
static bool make_stack(session *s)
{
    s->map_len = STACK_SIZE + guard_len();
    s->map = stack_get();
    if (s->map == NULL || getcontext(&s->code) != 0)
        return false;
    s->code.uc_stack.ss_sp = s->map + (s->map_len - STACK_SIZE);
    s->code.uc_stack.ss_size = STACK_SIZE;
    s->code.uc_link = NULL;
    makecontext(&s->code, code_main, 0);
    return true;
}

/* run_code: let the code run until it waits for more history or ends. The first time makes
 * its stack and enters it; false if no stack could be had (nothing ran then). */
static bool run_code(session *s, bool abandon)
{
    if (!s->started) {
        if (!make_stack(s))
            return false;
        s->started = true;
        entering = s;
    }
    s->abandon = abandon;
    /* zeroed: AddressSanitizer's swapcontext reads the stack a context names, and one that
     * swapcontext saved names none (it warns once that fibres are not fully supported; the
     * annotations above and below are what it asks for) */
    ucontext_t here;
    memset(&here, 0, sizeof here);
    s->caller = &here;
#ifdef SESSION_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, s->map + (s->map_len - STACK_SIZE), STACK_SIZE);
#endif
    swapcontext(&here, &s->code);
#ifdef SESSION_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    return true;
}

/* session_destroy: unwind S's code if it is suspended (its await longjmps to the code's
 * base: the same early exit a replay takes) and free everything. */
static void session_destroy(session *s)
{
    if (s == NULL)
        return;
    if (s->started && !s->ended)
        run_code(s, true);
    assert(!s->started || s->ended);
    if (s->map)
        stack_put(s->map);
    if (s->c && s->c->evs)
        replay_free_index(s->c);
    for (size_t i = 0; i < s->n_expect; i++) {
        free(s->expect[i].name);
        free(s->expect[i].request_id);
    }
    free(s->expect);
    dt_arena_free(s->arena);
    free(s->execution_id);
    free(s->instance_id);
    free(s);
}

static session *session_new(dt_orchestrator_fn fn, void *user, const dt_orch_request *req)
{
    session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->fn = fn;
    s->user = user;
    s->instance_id = strdup(req->instance_id ? req->instance_id : "");
    s->execution_id = req->execution_id ? strdup(req->execution_id) : NULL;
    s->arena = dt_arena_new();
    s->c = s->arena ? dt_arena_alloc(s->arena, sizeof *s->c) : NULL;
    if (s->instance_id == NULL || (req->execution_id && s->execution_id == NULL) ||
        s->c == NULL) {
        session_destroy(s);
        return NULL;
    }
    s->hash = hash_id(s->instance_id);
    dt_octx *c = s->c;
    c->arena = s->arena;
    c->user = user;
    c->instance_id = s->instance_id;
    c->session = s;
    c->held_from = POS_NEVER;
    return s;
}

/* ---- an episode --------------------------------------------------------------------------- */

/* append: copies of N events into the session (its memory outlives the request's) */
static dt_status append(session *s, const dt_event *ev, size_t n)
{
    dt_octx *c = s->c;
    /* a session always has evs (dt_grow gives some room when there is none yet) */
    const dt_event **v = dt_grow(c->evs, &s->cap_evs, c->n_events + n, sizeof *v);
    if (v == NULL)
        return DT_ERR_NOMEM;
    c->evs = v;
    for (size_t i = 0; i < n; i++) {
        dt_event *e = dt_arena_alloc(s->arena, sizeof *e);
        if (e == NULL || dt_event_copy(s->arena, &ev[i], e) != DT_OK)
            return DT_ERR_NOMEM;
        c->evs[c->n_events++] = e;
    }
    return DT_OK;
}

/* append_expected: the events the last episode's actions added, made from what the session
 * kept of them, when the server left the past out. Replay reads of a scheduling event only
 * its kind, sequence number and name (and an entity call's request id); its time is the
 * episode's, as the hub writes it. */
static dt_status append_expected(session *s)
{
    dt_octx *c = s->c;
    dt_time now = c->n_events ? c->time_at[c->n_events - 1] : 0;
    for (size_t i = 0; i < s->n_expect; i++) {
        dt_event e;
        dt_event_init(&e, s->expect[i].type, now);
        e.event_id = s->expect[i].id;
        e.name = s->expect[i].name;
        e.request_id = s->expect[i].request_id;
        dt_status st = append(s, &e, 1);
        if (st != DT_OK)
            return st;
    }
    return DT_OK;
}

/* expect: what the episode's actions will add to history, for the next request's check */
static dt_status expect(session *s, const dt_action *a, size_t n)
{
    for (size_t i = 0; i < s->n_expect; i++) {
        free(s->expect[i].name);
        free(s->expect[i].request_id);
    }
    s->n_expect = 0;
    expected *v = dt_grow(s->expect, &s->cap_expect, n + 1, sizeof *v);
    if (v == NULL)
        return DT_ERR_NOMEM;
    s->expect = v;
    for (size_t i = 0; i < n; i++) {
        expected x = {DT_EVENT_NONE, a[i].id, NULL, NULL};
        const char *name = NULL;
        switch (a[i].type) {
        case DT_ACTION_SCHEDULE_TASK: x.type = DT_EVENT_TASK_SCHEDULED; name = a[i].name; break;
        case DT_ACTION_CREATE_TIMER: x.type = DT_EVENT_TIMER_CREATED; break;
        case DT_ACTION_SEND_EVENT: x.type = DT_EVENT_EVENT_SENT; name = a[i].name; break;
        case DT_ACTION_CREATE_SUB_ORCHESTRATION:
            x.type = DT_EVENT_SUB_ORCHESTRATION_CREATED;
            name = a[i].name;
            break;
        case DT_ACTION_SEND_ENTITY_MESSAGE:
            x.type = a[i].entity ? a[i].entity->type : DT_EVENT_NONE;
            break;
        case DT_ACTION_TERMINATE_ORCHESTRATION:
            continue;   /* a message to another instance: nothing in this history */
        default:
            s->stale = true;   /* completes or rewrites the history: no next episode */
            continue;
        }
        const char *rid = a[i].entity ? a[i].entity->request_id : NULL;
        if ((name && (x.name = strdup(name)) == NULL) ||
            (rid && (x.request_id = strdup(rid)) == NULL)) {
            free(x.name);
            return DT_ERR_NOMEM;
        }
        s->expect[s->n_expect++] = x;
    }
    return DT_OK;
}

/* episode: feed S the events of REQ from past position PAST_FROM on (then its new events),
 * run the code until it waits or ends, and report its actions in ARENA. */
static dt_status episode(session *s, const dt_orch_request *req, size_t past_from,
                         dt_arena *arena, dt_orch_result *out)
{
    dt_octx *c = s->c;
    size_t from = c->n_events;
    assert(from == past_from);
    dt_status st = req->past_left_out ? append_expected(s)
                                       : append(s, req->past + past_from, req->n_past - past_from);
    if (st == DT_OK)
        st = append(s, req->new_events, req->n_new);
    if (st != DT_OK)
        return st;
    c->n_past = c->n_events - req->n_new;
    if ((st = replay_index(c, from)) != DT_OK)
        return st;
    if (from == 0) {
        const dt_event *started = NULL;
        for (size_t i = 0; i < c->n_events && started == NULL; i++)
            if (c->evs[i]->type == DT_EVENT_EXECUTION_STARTED)
                started = c->evs[i];
        c->name = started ? started->name : NULL;
        c->execution_id = started ? started->execution_id : NULL;
        s->input = started ? started->input : NULL;
    }
    c->out = arena;
    c->actions = NULL;
    c->n_actions = c->cap_actions = 0;
    s->last_new = req->n_past;
    if (!run_code(s, false))
        return DT_ERR_STATE;   /* no stack: the caller replays instead */
    if (c->nomem)
        return DT_ERR_NOMEM;
    out->actions = c->actions;
    out->n_actions = c->n_actions;
    out->custom_status = NULL;
    if (c->custom_status &&
        (out->custom_status = dt_arena_strdup(arena, c->custom_status)) == NULL)
        return DT_ERR_NOMEM;
    return expect(s, c->actions, c->n_actions);
}

static bool same_failure(const dt_failure *a, const dt_failure *b)
{
    return a == b || (a && b && same_str(a->error_type, b->error_type) &&
                      same_str(a->message, b->message));
}

/* same_event: E (from a request) is the event the session consumed as X */
static bool same_event(const dt_event *e, const dt_event *x)
{
    return e->type == x->type && e->event_id == x->event_id && e->task_id == x->task_id &&
           e->timestamp == x->timestamp && same_str(e->name, x->name) &&
           same_str(e->input, x->input) && same_str(e->result, x->result) &&
           same_str(e->request_id, x->request_id) && same_failure(e->failure, x->failure);
}

/* continues: REQ is the next episode of what S saw: the same execution, and its past is
 * exactly the history S saw plus the events its last actions added. A failed or refused
 * commit, a rewind, a continue-as-new, another worker's episode or a duplicate completion
 * the hub dropped all show as a difference here. Only the last episode is compared, so the
 * check costs what that episode did, whatever the history's length: S checked the episodes
 * before it the same way. */
static bool continues(const session *s, const dt_orch_request *req)
{
    const dt_octx *c = s->c;
    if (!same_str(req->execution_id, s->execution_id))
        return false;
    if (req->past_left_out) {
        /* the server left the past out for this session: it vouches for the events (it saw
         * this worker complete the last episode), the count shows whether that commit
         * happened and nothing came between */
        return req->n_past == 0 && (req->past_left_out == DT_PAST_COUNT_UNKNOWN ||
                                    req->past_left_out == c->n_events + s->n_expect);
    }
    if (req->n_past != c->n_events + s->n_expect)
        return false;
    for (size_t i = s->last_new; i < c->n_events; i++)
        if (!same_event(&req->past[i], c->evs[i]))
            return false;
    for (size_t i = 0; i < s->n_expect; i++) {
        const dt_event *e = &req->past[c->n_events + i];
        const expected *x = &s->expect[i];
        if (e->type != x->type || e->event_id != x->id || (x->name && !same_str(e->name, x->name)))
            return false;
    }
    return true;
}

/* ---- the cache ------------------------------------------------------------------------------ */

dt_status session_cache_new(size_t max, session_cache **out)
{
    session_cache *sc = calloc(1, sizeof *sc);
    if (sc == NULL)
        return DT_ERR_NOMEM;
    if (pthread_mutex_init(&sc->mu, NULL) != 0) {
        free(sc);
        return DT_ERR_NOMEM;
    }
    sc->max = max;
    *out = sc;
    return DT_OK;
}

/* unlink: take S out of the list. Called with sc->mu held. */
static void unlink_session(session_cache *sc, session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        sc->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        sc->tail = s->prev;
    s->prev = s->next = NULL;
    assert(sc->n > 0);
    sc->n--;
}

/* evict: unlink sessions beyond LIMIT, least recently used first, into a list the caller
 * destroys once it has let go of the lock. Called with sc->mu held. */
static session *evict(session_cache *sc, size_t limit)
{
    session *gone = NULL;
    while (sc->n > limit) {
        session *s = sc->tail;
        unlink_session(sc, s);
        s->next = gone;
        gone = s;
    }
    return gone;
}

static void destroy_list(session *s)
{
    while (s) {
        session *next = s->next;
        session_destroy(s);
        s = next;
    }
}

size_t session_cache_max(session_cache *sc)
{
    pthread_mutex_lock(&sc->mu);
    size_t max = sc->max;
    pthread_mutex_unlock(&sc->mu);
    return max;
}

void session_cache_set_max(session_cache *sc, size_t max)
{
    pthread_mutex_lock(&sc->mu);
    sc->max = max;
    session *gone = evict(sc, max);
    pthread_mutex_unlock(&sc->mu);
    destroy_list(gone);
}

void session_cache_clear(session_cache *sc)
{
    pthread_mutex_lock(&sc->mu);
    session *gone = evict(sc, 0);
    pthread_mutex_unlock(&sc->mu);
    destroy_list(gone);
}

void session_cache_free(session_cache *sc)
{
    if (sc == NULL)
        return;
    session_cache_clear(sc);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}

void session_cache_stats(session_cache *sc, dt_session_stats *out)
{
    pthread_mutex_lock(&sc->mu);
    *out = sc->stats;
    pthread_mutex_unlock(&sc->mu);
}

/* checkout: take ID's session out of the cache (an episode owns it while it runs, so a
 * second episode of the instance at the same time, after a lease was lost, finds none).
 * *MAX: the cache's bound (0: sessions are off). */
static session *checkout(session_cache *sc, const char *id, size_t *max)
{
    uint64_t h = hash_id(id);
    pthread_mutex_lock(&sc->mu);
    *max = sc->max;
    session *s = sc->head;
    while (s && (s->hash != h || strcmp(s->instance_id, id) != 0))
        s = s->next;
    if (s)
        unlink_session(sc, s);
    pthread_mutex_unlock(&sc->mu);
    return s;
}

/* checkin: S goes in front; a session of the same instance left by an episode that ran at
 * the same time is dropped, and what no longer fits is evicted. */
static void checkin(session_cache *sc, session *s, bool hit, bool counted)
{
    pthread_mutex_lock(&sc->mu);
    if (counted)
        *(hit ? &sc->stats.hits : &sc->stats.misses) += 1;
    session *gone = NULL;
    for (session *o = sc->head; o; o = o->next)
        if (o->hash == s->hash && strcmp(o->instance_id, s->instance_id) == 0) {
            unlink_session(sc, o);
            gone = o;
            break;
        }
    if (s) {
        s->next = sc->head;
        if (sc->head)
            sc->head->prev = s;
        sc->head = s;
        if (sc->tail == NULL)
            sc->tail = s;
        sc->n++;
    }
    session *more = evict(sc, sc->max);
    pthread_mutex_unlock(&sc->mu);
    session_destroy(gone);
    destroy_list(more);
}

/* count: an episode that resumed a session (HIT) or ran from the start, or (LEFT_OUT) one
 * whose past was left out, which no session continued (MISSING) or one did */
static void count(session_cache *sc, bool hit, bool left_out, bool missing)
{
    pthread_mutex_lock(&sc->mu);
    if (left_out) {
        sc->stats.past_left_out++;
        sc->stats.past_missing += missing;
    } else {
        *(hit ? &sc->stats.hits : &sc->stats.misses) += 1;
    }
    pthread_mutex_unlock(&sc->mu);
}

dt_status session_run(session_cache *sc, dt_orchestrator_fn fn, void *user,
                      const dt_orch_request *req, dt_arena *arena, dt_orch_result *out)
{
    size_t max;
    const char *id = req->instance_id ? req->instance_id : "";
    session *s = checkout(sc, id, &max);
    if (max == 0)
        return dt_replay_run(fn, user, req, arena, out);
    /* FN NULL: the past was left out, so the request does not name the orchestrator; the
     * session's code is the one to resume */
    bool hit = s && (fn == NULL || (s->fn == fn && s->user == user)) && continues(s, req);
    if (s && !hit) {
        session_destroy(s);
        s = NULL;
    }
    if (req->past_left_out)
        count(sc, hit, true, !hit);
    if (!hit && req->past_left_out)
        return DT_ERR_NOT_FOUND;   /* the caller fetches the history, and asks again */
    dt_status st;
    if (hit) {
        st = episode(s, req, s->c->n_events, arena, out);
    } else {
        s = session_new(fn, user, req);
        if (s == NULL)
            return dt_replay_run(fn, user, req, arena, out);
        st = episode(s, req, 0, arena, out);
        if (st == DT_ERR_STATE) {   /* no stack for it: this episode replays */
            session_destroy(s);
            return dt_replay_run(fn, user, req, arena, out);
        }
    }
    /* a first episode is neither: it has nothing to replay */
    bool counted = hit || req->n_past > 0;
    if (st != DT_OK || s->ended || s->stale) {
        if (counted)
            count(sc, hit, false, false);
        session_destroy(s);
        return st;
    }
    checkin(sc, s, hit, counted);
    return DT_OK;
}
