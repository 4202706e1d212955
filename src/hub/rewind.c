/* rewind.c — rewinding a failed instance: its history as it will be run again. A rewind
 * takes out what failed (each failed activity's result and its scheduling, so the activity
 * runs again; each failed sub-orchestration's result, so the child, rewound too, or started
 * again when it was purged, reports again) and the ExecutionCompleted, and starts a new
 * execution; everything that succeeded is kept and replayed, not run again. The hub does this
 * itself, so every SDK's worker gets a rewound instance the same way: a history without the
 * failure, then an ExecutionRewound that wakes it (the JavaScript and Python workers, which
 * can compute the same rewrite, send it as a RewindOrchestrationAction; episode.c applies
 * either). Activities and timers still pending when the run failed go too: their results
 * would be for the old execution, so they are scheduled again. Known limits: the retry timers
 * between failed attempts of an activity stay in the history (as in the SDKs' own rewrite); a
 * sub-orchestration still running when its parent failed keeps reporting to the parent's old
 * execution. A failed child that was purged, and whose id another instance (not the
 * parent's child) has taken since, is not rewound: the parent's task fails again, as a
 * refused child's does (episode.c, rewind_child). */
#include <string.h>

#include "hub_internal.h"

/* failed_task: is ID the task id of a TaskFailed among the N events at EV? */
static bool failed_task(const dt_event *ev, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ev[i].type == DT_EVENT_TASK_FAILED && ev[i].task_id == id)
            return true;
    return false;
}

/* answered: has the scheduling ID a result (TaskCompleted, TimerFired...) among EV? */
static bool answered(const dt_event *ev, size_t n, int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (dt_event_is_completion(ev[i].type) && ev[i].task_id == id)
            return true;
    return false;
}

static bool dropped(const dt_event *ev, size_t n, const dt_event *e)
{
    switch (e->type) {
    case DT_EVENT_TASK_FAILED:
    case DT_EVENT_SUB_ORCHESTRATION_FAILED:
    case DT_EVENT_EXECUTION_COMPLETED:
    case DT_EVENT_EXECUTION_REWOUND:   /* an earlier rewind's wake-up: the new one says why */
        return true;
    case DT_EVENT_TASK_SCHEDULED:
    case DT_EVENT_TIMER_CREATED:
        return failed_task(ev, n, e->event_id) || !answered(ev, n, e->event_id);
    default:
        return false;
    }
}

dt_status rewind_history(const dt_orch_item *item, const dt_event *request, dt_arena *arena,
                         dt_event **out, size_t *n_out)
{
    const dt_event *ev = item->past;
    size_t n = item->n_past, k = 0;
    dt_event *h = dt_arena_alloc(arena, (n ? n : 1) * sizeof *h);
    char *exec = dt_arena_alloc(arena, 33);
    if (h == NULL || exec == NULL)
        return DT_ERR_NOMEM;
    dt_execution_id_generate(exec);
    bool started = false;
    for (size_t i = 0; i < n; i++) {
        if (dropped(ev, n, &ev[i]))
            continue;
        h[k] = ev[i];
        if (h[k].type == DT_EVENT_EXECUTION_STARTED) {
            started = true;
            h[k].execution_id = exec;
            /* a rewound child reports to its parent's new execution */
            if (h[k].parent_instance_id && request->parent_execution_id)
                h[k].parent_execution_id = request->parent_execution_id;
        }
        k++;
    }
    if (!started)
        return DT_ERR_CORRUPT;   /* a failed instance always has its ExecutionStarted */
    *out = h;
    *n_out = k;
    return DT_OK;
}
