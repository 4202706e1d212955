/* rewind.c — rewinding a failed instance: its history as it will be run again. A rewind
 * takes out what failed (each failed activity's result and its scheduling, so the activity
 * runs again; each failed sub-orchestration's result, so the child, rewound too, or started
 * again when it was purged, reports again) and the ExecutionCompleted, and starts a new
 * execution; everything that succeeded is kept and replayed, not run again. The hub does this
 * itself, so every SDK's worker gets a rewound instance the same way: a history without the
 * failure, then an ExecutionRewound that wakes it (the JavaScript and Python workers, which
 * can compute the same rewrite, send it as a RewindOrchestrationAction; episode.c applies
 * either). Activities and timers still pending when the run failed go too: their results
 * would be for the old execution, so they are scheduled again.
 *
 * Retries. Every SDK retries a step the same way: the episode that sees an attempt fail
 * creates a timer, and the episode the timer fires in schedules the next attempt (same kind,
 * same name). A rewind finds these chains. A chain that ended in success is kept whole, its
 * failed attempts and timers with it: replay walks it as it first ran. A chain whose last
 * attempt failed (or never finished) runs again from its first attempt: the first attempt is
 * taken out as a lone failure is, the timers and later attempts go. The SDKs' own rewrite
 * (and the Durable Task Scheduler, which uses it) keeps those timers, so the replay meets a
 * timer where the code now schedules the step's first attempt again: a non-determinism error.
 *
 * Known limits: a failure the code caught and acted on (other than by retrying) is taken out
 * too, so the code takes its other path on replay, where history shows what the first path
 * did; a sub-orchestration still running when its parent failed keeps reporting to the
 * parent's old execution. A failed child that was purged, and whose id another instance (not
 * the parent's child) has taken since, is not rewound: the parent's task fails again, as a
 * refused child's does (episode.c, rewind_child). */
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

/* What the rewind does with a step the failed run scheduled (and its result). */
enum fate {
    KEEP,    /* it stays, with its result */
    RERUN,   /* an activity or timer goes, to be scheduled again; a child's creation stays
                (its failure goes, and the child is rewound) */
    GONE     /* a later attempt of a chain that runs again, or its timer: gone */
};

/* An event's position under its id: scheduling events by event_id, results by task_id. */
typedef struct {
    int32_t id;
    uint32_t at;
} slot;

typedef struct {
    const dt_event *ev;
    size_t n;
    uint32_t *episode;   /* the episode each event belongs to (OrchestratorStarted begins one) */
    slot *sched, *done;
    size_t n_sched, n_done;
    long *next;          /* the next link of a step's retry chain (a timer, an attempt), or -1 */
    bool *linked;        /* a link some earlier step's chain reaches */
    unsigned char *fate;
    size_t budget;       /* steps left for finding chains (see link_chains) */
} rewinding;

static int slot_cmp(const void *pa, const void *pb)
{
    const slot *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->at < b->at ? -1 : a->at > b->at;
}

/* lower: the first of the N sorted slots S at or after (ID, AT). */
static size_t lower(const slot *s, size_t n, int32_t id, uint32_t at)
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

/* after, before: the position of the first event of ID after POS, of the last before it,
 * or -1. An id can come more than once: the Python SDK schedules a retry's every attempt
 * under the first attempt's number, so a result answers the latest scheduling before it. */
static long after(const slot *s, size_t n, int32_t id, size_t pos)
{
    size_t k = lower(s, n, id, (uint32_t)pos + 1);
    return k < n && s[k].id == id ? (long)s[k].at : -1;
}

static long before(const slot *s, size_t n, int32_t id, size_t pos)
{
    size_t k = lower(s, n, id, (uint32_t)pos);
    return k > 0 && s[k - 1].id == id ? (long)s[k - 1].at : -1;
}

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

static long result_of(const rewinding *r, long i)
{
    return after(r->done, r->n_done, r->ev[i].event_id, (size_t)i);
}

static dt_status index_history(rewinding *r, dt_arena *arena)
{
    size_t n = r->n ? r->n : 1;
    r->episode = dt_arena_alloc(arena, n * sizeof *r->episode);
    r->sched = dt_arena_alloc(arena, n * sizeof *r->sched);
    r->done = dt_arena_alloc(arena, n * sizeof *r->done);
    r->next = dt_arena_alloc(arena, n * sizeof *r->next);
    r->linked = dt_arena_alloc(arena, n * sizeof *r->linked);
    r->fate = dt_arena_alloc(arena, n * sizeof *r->fate);
    if (!r->episode || !r->sched || !r->done || !r->next || !r->linked || !r->fate)
        return DT_ERR_NOMEM;
    uint32_t episode = 0;
    for (size_t i = 0; i < r->n; i++) {
        const dt_event *e = &r->ev[i];
        episode += e->type == DT_EVENT_ORCHESTRATOR_STARTED;
        r->episode[i] = episode;
        r->next[i] = -1;
        r->linked[i] = false;
        r->fate[i] = KEEP;
        if (has_result(e->type))
            r->sched[r->n_sched++] = (slot){e->event_id, (uint32_t)i};
        else if (dt_event_is_completion(e->type))
            r->done[r->n_done++] = (slot){e->task_id, (uint32_t)i};
    }
    qsort(r->sched, r->n_sched, sizeof *r->sched, slot_cmp);
    qsort(r->done, r->n_done, sizeof *r->done, slot_cmp);
    return DT_OK;
}

/* next_attempt: the attempt after step S that the episode of its timer's firing (the event
 * at FIRED) scheduled: same kind, same name, not another chain's; -1 when there is none. */
static long next_attempt(rewinding *r, long s, long fired)
{
    const dt_event *step = &r->ev[s];
    for (size_t k = (size_t)fired + 1; k < r->n && r->episode[k] == r->episode[fired] &&
                                       r->budget > 0; k++, r->budget--) {
        const dt_event *e = &r->ev[k];
        if (e->type == step->type && !r->linked[k] && e->name && step->name &&
            strcmp(e->name, step->name) == 0)
            return (long)k;
    }
    return -1;
}

/* link_retry: the failure at F of step S: the first timer its episode created that no other
 * chain has, whose firing scheduled S's next attempt (or that never fired) is S's retry. */
static void link_retry(rewinding *r, long f, long s)
{
    for (size_t j = (size_t)f + 1; j < r->n && r->episode[j] == r->episode[f] && r->budget > 0;
         j++, r->budget--) {
        if (r->ev[j].type != DT_EVENT_TIMER_CREATED || r->linked[j])
            continue;
        long fired = result_of(r, (long)j), k = -1;
        if (fired >= 0 && (k = next_attempt(r, s, fired)) < 0)
            continue;   /* the code's own timer, not this step's retry */
        r->next[s] = (long)j;
        r->linked[j] = true;
        if (k >= 0) {
            r->next[j] = k;
            r->linked[k] = true;
        }
        return;
    }
}

/* link_chains: each failure's retry, if it has one. Each failure looks through its episode's
 * timers and their firings' schedulings: a few steps in histories that SDKs write, but a
 * history made to be slow (thousands of unmatched timers in one episode) could make it the
 * square of its length. A budget of steps bounds that; past it, a failure is taken as one
 * with no retry (the rewrite before retries were found). */
static void link_chains(rewinding *r)
{
    r->budget = 64 * r->n + 100000;
    for (size_t i = 0; i < r->n; i++) {
        const dt_event *e = &r->ev[i];
        if (!is_failure(e->type))
            continue;
        long s = before(r->sched, r->n_sched, e->task_id, i);
        if (s >= 0 && r->next[s] < 0 &&
            r->ev[s].type == (e->type == DT_EVENT_TASK_FAILED ? DT_EVENT_TASK_SCHEDULED
                                                              : DT_EVENT_SUB_ORCHESTRATION_CREATED))
            link_retry(r, (long)i, s);
    }
}

/* settle: each chain (a lone step is one of one) is kept when its last link succeeded, and
 * otherwise runs again from its first. */
static void settle(rewinding *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (!has_result(r->ev[i].type) || r->linked[i])
            continue;
        long end = (long)i;
        while (r->next[end] >= 0)
            end = r->next[end];
        long res = result_of(r, end);
        if (res >= 0 && !is_failure(r->ev[res].type))
            continue;   /* KEEP, every link */
        r->fate[i] = RERUN;
        for (long k = r->next[i]; k >= 0; k = r->next[k])
            r->fate[k] = GONE;
    }
}

/* gone_ids: the sequence numbers no step keeps, sorted, in *IDS (*N of them): those of GONE
 * steps, unless a step kept or run again has the number too (a Python retry's attempts). */
static dt_status gone_ids(const rewinding *r, dt_arena *arena, int32_t **ids, size_t *n)
{
    *n = 0;
    *ids = dt_arena_alloc(arena, (r->n ? r->n : 1) * sizeof **ids);
    if (*ids == NULL)
        return DT_ERR_NOMEM;
    for (size_t i = 0, j; i < r->n_sched; i = j) {   /* sched is sorted by id */
        bool gone = true;
        for (j = i; j < r->n_sched && r->sched[j].id == r->sched[i].id; j++)
            gone &= r->fate[r->sched[j].at] == GONE;
        if (gone)
            (*ids)[(*n)++] = r->sched[i].id;
    }
    return DT_OK;
}

/* renumbered: ID less the GONE steps numbered below it. The code numbers its steps in the
 * order it takes them, and on replay it does not take the gone ones (their cause, a failed
 * attempt, is no longer in history): what came after them moves down. A step that runs
 * again (RERUN) is taken again where it was, under its old number. */
static int32_t renumbered(const int32_t *gone, size_t n, int32_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (gone[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return id - (int32_t)lo;
}

static bool dropped(const rewinding *r, size_t i)
{
    const dt_event *e = &r->ev[i];
    if (e->type == DT_EVENT_EXECUTION_COMPLETED ||
        e->type == DT_EVENT_EXECUTION_REWOUND)   /* an earlier rewind's wake-up: the new one says why */
        return true;
    if (has_result(e->type))
        return r->fate[i] == GONE ||
               (r->fate[i] == RERUN && e->type != DT_EVENT_SUB_ORCHESTRATION_CREATED);
    if (!dt_event_is_completion(e->type))
        return false;
    long s = before(r->sched, r->n_sched, e->task_id, i);
    return s < 0 ? is_failure(e->type) : r->fate[s] != KEEP;
}

dt_status rewind_history(const dt_orch_item *item, const dt_event *request, dt_arena *arena,
                         dt_event **out, size_t *n_out)
{
    rewinding r = {.ev = item->past, .n = item->n_past};
    size_t n = item->n_past, k = 0;
    dt_event *h = dt_arena_alloc(arena, (n ? n : 1) * sizeof *h);
    char *exec = dt_arena_alloc(arena, 33);
    if (h == NULL || exec == NULL || index_history(&r, arena) != DT_OK)
        return DT_ERR_NOMEM;
    link_chains(&r);
    settle(&r);
    int32_t *gone;
    size_t n_gone;
    if (gone_ids(&r, arena, &gone, &n_gone) != DT_OK)
        return DT_ERR_NOMEM;
    dt_execution_id_generate(exec);
    bool started = false;
    for (size_t i = 0; i < n; i++) {
        if (dropped(&r, i))
            continue;
        h[k] = r.ev[i];
        if ((dt_event_is_scheduling(h[k].type) || dt_event_is_entity_message(h[k].type)) &&
            h[k].event_id >= 0)
            h[k].event_id = renumbered(gone, n_gone, h[k].event_id);
        else if (dt_event_is_completion(h[k].type))
            h[k].task_id = renumbered(gone, n_gone, h[k].task_id);
        if (h[k].type == DT_EVENT_EXECUTION_STARTED) {
            started = true;
            h[k].execution_id = exec;
            /* a rewound child reports to its parent's new execution, under the number its
             * task has there */
            if (h[k].parent_instance_id && request->parent_execution_id)
                h[k].parent_execution_id = request->parent_execution_id;
            if (h[k].parent_instance_id && request->parent_instance_id)
                h[k].parent_task_id = request->parent_task_id;
        }
        k++;
    }
    if (!started)
        return DT_ERR_CORRUPT;   /* a failed instance always has its ExecutionStarted */
    *out = h;
    *n_out = k;
    return DT_OK;
}
