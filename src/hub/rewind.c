/* rewind.c — rewinding a failed instance: its history as it will be run again. A rewind
 * takes out what failed (each failed activity's result and its scheduling, so the activity
 * runs again; each failed sub-orchestration's result, so the child, rewound too, or started
 * again when it was purged, reports again), the retries of what failed
 * (rewind_plan.c says which steps go) and the ExecutionCompleted, and starts a new
 * execution; everything that succeeded is kept and replayed, not run again. The hub does this
 * itself, so every SDK's worker gets a rewound instance the same way: a history without the
 * failure, then an ExecutionRewound that wakes it (the JavaScript and Python workers, which
 * can compute a rewrite of their own, send it as a RewindOrchestrationAction; episode.c
 * applies either). Activities and timers still pending when the run failed go too: their
 * results would be for the old execution, so they are scheduled again.
 *
 * The code numbers its steps in the order it takes them, and on replay it does not take the
 * steps that went (their cause, a failed attempt, is no longer in history): the steps after
 * them move down. A step that runs again is taken again where it was, under its number.
 *
 * Known limit: a failure the code caught and acted on (other than by retrying) is taken out
 * too, so the code takes its other path on replay, where history shows what the first path
 * did. A failed child that was purged, and whose id another instance (not the parent's
 * child) has taken since, is not rewound: the parent's task fails again, as a refused
 * child's does (episode.c, rewind_child). */
#include <stdint.h>

#include "hub_internal.h"

/* renumbered: ID less the GONE steps' numbers below it (GONE, sorted, N of them) */
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

static bool dropped(const rewind_plan *p, const dt_event *e, size_t i)
{
    if (e->type == DT_EVENT_EXECUTION_COMPLETED ||
        e->type == DT_EVENT_EXECUTION_REWOUND)   /* an earlier rewind's wake-up: the new one says why */
        return true;
    if (p->fate[i] == REWIND_RERUN)
        return e->type != DT_EVENT_SUB_ORCHESTRATION_CREATED;
    return p->fate[i] == REWIND_GONE;
}

dt_status rewind_history(const dt_orch_item *item, const dt_event *request, dt_arena *arena,
                         dt_event **out, size_t *n_out)
{
    const dt_event *ev = item->past;
    size_t n = item->n_past, k = 0;
    rewind_plan p;
    dt_event *h = dt_arena_alloc(arena, (n ? n : 1) * sizeof *h);
    char *exec = dt_arena_alloc(arena, 33);
    if (h == NULL || exec == NULL || rewind_plan_make(ev, n, arena, &p) != DT_OK)
        return DT_ERR_NOMEM;
    dt_execution_id_generate(exec);
    bool started = false;
    for (size_t i = 0; i < n; i++) {
        if (dropped(&p, &ev[i], i))
            continue;
        h[k] = ev[i];
        if ((dt_event_is_scheduling(h[k].type) || dt_event_is_entity_message(h[k].type)) &&
            h[k].event_id >= 0)
            h[k].event_id = renumbered(p.gone, p.n_gone, h[k].event_id);
        else if (dt_event_is_completion(h[k].type))
            h[k].task_id = renumbered(p.gone, p.n_gone, h[k].task_id);
        /* a child's creation says under which number the old history has it (task_id is
         * not a creation's own, nor stored), so episode.c finds what became of it */
        if (h[k].type == DT_EVENT_SUB_ORCHESTRATION_CREATED)
            h[k].task_id = ev[i].event_id >= 0 && ev[i].event_id < INT32_MAX
                               ? ev[i].event_id + 1 : 0;
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
