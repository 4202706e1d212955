/* rewind_plan.c — what a rewind does with each step of the failed run: keep it, run it again,
 * or take it out (rewind.c writes the new history from the plan). A lone step that failed
 * runs again; what succeeded stays.
 *
 * Retries. The SDKs retry a step as a chain: the episode that sees an attempt fail creates a
 * timer, and the episode the timer fires in schedules the next attempt (the same kind, name
 * and input; the Python SDK even reuses the first attempt's number). A retry handler may
 * also schedule the next attempt at once, with no timer. A chain that ended in success is
 * kept whole, failed attempts and timers with it: replay walks it as it first ran. A chain
 * whose last attempt failed (or had not finished) runs again from its first attempt: that
 * one is taken out as a lone failure is, its timers and later attempts go. The SDKs' own
 * rewrite keeps those timers, and the replay then meets one where the code schedules the
 * first attempt again: a non-determinism error.
 *
 * Finding a failure's retry. First (for every failure, in history order) a timer its episode
 * created that fired into an episode which scheduled a matching attempt, else a matching
 * attempt its own episode scheduled; then (for the failures still alone) a timer its episode
 * created that had not fired, or fired as the run ended (the C SDK keeps no actions of the
 * episode that fails the run). "Episode" here is a run of the code: the events recorded
 * while the instance was suspended belong to the episode that resumed it. Matching attempts
 * are taken in order, so of two identical calls (same name and input) either may be matched:
 * their results are alike. Each failure looks at no more than LOOK free timers, so a plan is
 * O(n log n) in the history's length whatever its shape.
 *
 * Limits: a code's own timer created in a failure's episode and not fired can be taken for
 * that failure's retry when the failure has none; a Python retry timer longer than its
 * maximum interval is a chain of timers, not found as a retry. */
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define LOOK 16   /* free timers a failure looks at for its retry */

/* An event's position under its id: scheduling events by event_id, results by task_id. */
typedef struct {
    int32_t id;
    uint32_t at;
} slot;

/* Where a step's next attempt can be: the episode, the kind, name and input, the position. */
typedef struct {
    uint32_t episode;
    dt_event_type type;
    const char *name, *input;
    uint32_t at;
} akey;

/* A list of positions in order that gives each out once: skip[k] jumps past taken ones
 * (path halving keeps the jumps short). */
typedef struct {
    uint32_t *at;
    size_t *skip;
    size_t n;
} queue;

typedef struct {
    const dt_event *ev;
    size_t n;
    uint32_t *episode;
    uint32_t last;       /* the episode the run ended in */
    slot *sched, *done;
    size_t n_sched, n_done;
    akey *keys;          /* attempts, sorted by key; attempts.at in the same order */
    queue attempts, timers;
    long *next;          /* a step's next link in its chain (its retry timer, its attempt) */
    bool *linked;        /* the next link of an earlier one */
    unsigned char *fate;
} plan;

static bool is_failure(dt_event_type t)
{
    return t == DT_EVENT_TASK_FAILED || t == DT_EVENT_SUB_ORCHESTRATION_FAILED;
}

/* has_result: a scheduling event a completion answers (an EventSent has none). */
static bool has_result(dt_event_type t)
{
    return t == DT_EVENT_TASK_SCHEDULED || t == DT_EVENT_TIMER_CREATED ||
           t == DT_EVENT_SUB_ORCHESTRATION_CREATED;
}

static int text_cmp(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

/* input_of: E's input; none, an empty one and JSON null alike (the Python SDK sends a
 * retry's input empty where the first attempt had none) */
static const char *input_of(const dt_event *e)
{
    return e->input && *e->input && strcmp(e->input, "null") != 0 ? e->input : NULL;
}

static int slot_cmp(const void *pa, const void *pb)
{
    const slot *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->at < b->at ? -1 : a->at > b->at;
}

/* key_cmp: by episode, kind, name, input, then position */
static int key_cmp(const void *pa, const void *pb)
{
    const akey *a = pa, *b = pb;
    int c;
    if (a->episode != b->episode)
        return a->episode < b->episode ? -1 : 1;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if ((c = text_cmp(a->name, b->name)) != 0 || (c = text_cmp(a->input, b->input)) != 0)
        return c;
    return a->at < b->at ? -1 : a->at > b->at;
}

/* slot_lower: the first of the N sorted slots S at or after (ID, AT). */
static size_t slot_lower(const slot *s, size_t n, int32_t id, uint32_t at)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].id < id || (s[mid].id == id && s[mid].at < at))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* result_of: the completion of the step at I: the first after it under its id (an id can
 * come more than once: Python's retries), or -1 */
static long result_of(const plan *p, size_t i)
{
    size_t k = slot_lower(p->done, p->n_done, p->ev[i].event_id, (uint32_t)i + 1);
    return k < p->n_done && p->done[k].id == p->ev[i].event_id ? (long)p->done[k].at : -1;
}

/* step_of: the step the completion at I answers: the last before it under its id, or -1 */
static long step_of(const plan *p, size_t i)
{
    size_t k = slot_lower(p->sched, p->n_sched, p->ev[i].task_id, (uint32_t)i);
    return k > 0 && p->sched[k - 1].id == p->ev[i].task_id ? (long)p->sched[k - 1].at : -1;
}

/* first_free: the first position from K on in Q that no chain has taken */
static size_t first_free(const plan *p, queue *q, size_t k)
{
    while (k < q->n && p->linked[q->at[k]]) {
        size_t next = q->skip[k];
        if (next < q->n && p->linked[q->at[next]])   /* only past taken ones: a free one */
            q->skip[k] = q->skip[next];                /* found may yet be passed over */
        k = next;
    }
    return k;
}

static void link(plan *p, size_t from, size_t to)
{
    p->next[from] = (long)to;
    p->linked[to] = true;
}

/* take_attempt: a free attempt like step S (kind, name, input) in EPISODE after position
 * AFTER, or -1 */
static long take_attempt(plan *p, uint32_t episode, size_t s, size_t after)
{
    const dt_event *e = &p->ev[s];
    akey probe = {episode, e->type, e->name, input_of(e), (uint32_t)after + 1};
    size_t lo = 0, hi = p->attempts.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(&p->keys[mid], &probe) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t k = first_free(p, &p->attempts, lo);
    if (k == p->attempts.n)
        return -1;
    const akey *got = &p->keys[k];
    bool same = got->episode == episode && got->type == e->type &&
                text_cmp(got->name, e->name) == 0 && text_cmp(got->input, input_of(e)) == 0;
    return same ? (long)got->at : -1;
}

/* take_timer: the retry timer of step S whose failure is at F, among the timers F's episode
 * created after it: one that fired into an episode that scheduled S's next attempt (FIRED),
 * or else one that never fired or fired as the run ended. */
static bool take_timer(plan *p, size_t f, size_t s, bool fired)
{
    size_t lo = 0, hi = p->timers.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->timers.at[mid] <= f)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t k = first_free(p, &p->timers, lo);
    for (int tried = 0; k < p->timers.n && p->episode[p->timers.at[k]] == p->episode[f] &&
                        tried < LOOK;
         tried++, k = first_free(p, &p->timers, k + 1)) {
        size_t t = p->timers.at[k];
        long w = result_of(p, t), a = -1;
        if (fired && w >= 0 && (a = take_attempt(p, p->episode[w], s, (size_t)w)) >= 0) {
            link(p, s, t);
            link(p, t, (size_t)a);
            return true;
        }
        if (!fired && (w < 0 || p->episode[w] == p->last)) {
            link(p, s, t);
            return true;
        }
    }
    return false;
}

/* failed_step: the step the failure at I failed, if it is one a retry chain can go on
 * from, else -1 */
static long failed_step(const plan *p, size_t i)
{
    const dt_event *e = &p->ev[i];
    if (!is_failure(e->type))
        return -1;
    long s = step_of(p, i);
    dt_event_type want = e->type == DT_EVENT_TASK_FAILED ? DT_EVENT_TASK_SCHEDULED
                                                         : DT_EVENT_SUB_ORCHESTRATION_CREATED;
    return s >= 0 && p->ev[s].type == want && p->next[s] < 0 ? s : -1;
}

static void link_chains(plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        long s = failed_step(p, i);
        if (s >= 0 && !take_timer(p, i, (size_t)s, true)) {
            long a = take_attempt(p, p->episode[i], (size_t)s, i);   /* retried at once */
            if (a >= 0)
                link(p, (size_t)s, (size_t)a);
        }
    }
    for (size_t i = 0; i < p->n; i++) {
        long s = failed_step(p, i);
        if (s >= 0)
            take_timer(p, i, (size_t)s, false);
    }
}

/* settle: each chain (a lone step is one of one) is kept when its last attempt succeeded,
 * and otherwise runs again from its first; a result goes with its step. */
static void settle(plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        if (!has_result(p->ev[i].type) || p->linked[i])
            continue;
        size_t end = i;
        while (p->next[end] >= 0)
            end = (size_t)p->next[end];
        long res = result_of(p, end);
        bool ok = res >= 0 && !is_failure(p->ev[res].type) &&
                  (end == i || p->ev[end].type != DT_EVENT_TIMER_CREATED);
        if (ok)
            continue;   /* REWIND_KEEP, every link */
        p->fate[i] = REWIND_RERUN;
        for (long k = p->next[i]; k >= 0; k = p->next[k])
            p->fate[k] = REWIND_GONE;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (!dt_event_is_completion(p->ev[i].type))
            continue;
        long s = step_of(p, i);
        if (s < 0)   /* a result of nothing in this history: a failure goes, others stay */
            p->fate[i] = is_failure(p->ev[i].type) ? REWIND_GONE : REWIND_KEEP;
        else
            p->fate[i] = p->fate[s] == REWIND_KEEP ? REWIND_KEEP : REWIND_GONE;
    }
}

/* gone_ids: the sequence numbers no step keeps: those of GONE steps, unless a step kept or
 * run again has the number too (a Python retry's attempts) */
static void gone_ids(const plan *p, rewind_plan *out)
{
    out->n_gone = 0;
    for (size_t i = 0, j; i < p->n_sched; i = j) {   /* sched is sorted by id */
        bool gone = true;
        for (j = i; j < p->n_sched && p->sched[j].id == p->sched[i].id; j++)
            gone &= p->fate[p->sched[j].at] == REWIND_GONE;
        if (gone)
            out->gone[out->n_gone++] = p->sched[i].id;
    }
}

/* index_history: episodes, the id indexes, the attempts by key, the timers */
static dt_status index_history(plan *p, dt_arena *arena)
{
    size_t n = p->n ? p->n : 1;
    p->episode = dt_arena_alloc(arena, n * sizeof *p->episode);
    p->sched = dt_arena_alloc(arena, n * sizeof *p->sched);
    p->done = dt_arena_alloc(arena, n * sizeof *p->done);
    p->keys = dt_arena_alloc(arena, n * sizeof *p->keys);
    p->attempts.at = dt_arena_alloc(arena, n * sizeof *p->attempts.at);
    p->attempts.skip = dt_arena_alloc(arena, n * sizeof *p->attempts.skip);
    p->timers.at = dt_arena_alloc(arena, n * sizeof *p->timers.at);
    p->timers.skip = dt_arena_alloc(arena, n * sizeof *p->timers.skip);
    p->next = dt_arena_alloc(arena, n * sizeof *p->next);
    p->linked = dt_arena_alloc(arena, n * sizeof *p->linked);
    if (!p->episode || !p->sched || !p->done || !p->keys || !p->attempts.at ||
        !p->attempts.skip || !p->timers.at || !p->timers.skip || !p->next || !p->linked)
        return DT_ERR_NOMEM;
    uint32_t episode = 0;
    bool suspended = false;
    for (size_t i = 0; i < p->n; i++) {
        const dt_event *e = &p->ev[i];
        episode += e->type == DT_EVENT_ORCHESTRATOR_STARTED && !suspended;
        suspended = e->type == DT_EVENT_EXECUTION_SUSPENDED ||
                    (suspended && e->type != DT_EVENT_EXECUTION_RESUMED);
        p->episode[i] = episode;
        p->next[i] = -1;
        p->linked[i] = false;
        p->fate[i] = REWIND_KEEP;
        if (e->type == DT_EVENT_EXECUTION_COMPLETED)
            p->last = episode;
        if (has_result(e->type))
            p->sched[p->n_sched++] = (slot){e->event_id, (uint32_t)i};
        else if (dt_event_is_completion(e->type))
            p->done[p->n_done++] = (slot){e->task_id, (uint32_t)i};
        if (e->type == DT_EVENT_TIMER_CREATED)
            p->timers.at[p->timers.n++] = (uint32_t)i;
        else if (e->type == DT_EVENT_TASK_SCHEDULED || e->type == DT_EVENT_SUB_ORCHESTRATION_CREATED)
            p->keys[p->attempts.n++] = (akey){episode, e->type, e->name, input_of(e), (uint32_t)i};
    }
    qsort(p->sched, p->n_sched, sizeof *p->sched, slot_cmp);
    qsort(p->done, p->n_done, sizeof *p->done, slot_cmp);
    qsort(p->keys, p->attempts.n, sizeof *p->keys, key_cmp);
    for (size_t k = 0; k < p->attempts.n; k++) {
        p->attempts.at[k] = p->keys[k].at;
        p->attempts.skip[k] = k + 1;
    }
    for (size_t k = 0; k < p->timers.n; k++)
        p->timers.skip[k] = k + 1;
    return DT_OK;
}

dt_status rewind_plan_make(const dt_event *ev, size_t n, dt_arena *arena, rewind_plan *out)
{
    plan p = {.ev = ev, .n = n};
    out->fate = p.fate = dt_arena_alloc(arena, (n ? n : 1) * sizeof *p.fate);
    out->gone = dt_arena_alloc(arena, (n ? n : 1) * sizeof *out->gone);
    if (p.fate == NULL || out->gone == NULL || index_history(&p, arena) != DT_OK)
        return DT_ERR_NOMEM;
    link_chains(&p);
    settle(&p);
    gone_ids(&p, out);
    return DT_OK;
}
