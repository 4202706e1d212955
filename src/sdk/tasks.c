/* tasks.c — what an orchestrator can await: activities, sub-orchestrations, timers, external
 * events, when-all and when-any; and awaiting itself. A task is resolved against the indexed
 * history; awaiting a done task moves the code's position in history to where it finished,
 * after first replaying every retry step that history shows happened before that point. */
#include <stdio.h>
#include <string.h>

#include "sdk_internal.h"

dt_task *task_new(dt_octx *c, task_kind kind)
{
    dt_task *t = dt_alloc(c, sizeof *t);
    t->ctx = c;
    t->kind = kind;
    t->seq = -1;
    t->created_pos = c->pos;
    t->event_index = POS_NEVER;
    return t;
}

static dt_task *schedule(dt_octx *c, task_kind kind, dt_action_type type, dt_action *a,
                         const dt_task_options *opts)
{
    dt_task *t = task_new(c, kind);
    t->name = replay_strdup(c, a->name);   /* the caller's string may not last */
    if (opts && opts->retry) {
        dt_error err;
        if (dt_retry_policy_validate(opts->retry, &err) != DT_OK)
            replay_fail(c, "InvalidRetryPolicy", "%s '%s': %s",
                        kind == TASK_ACTIVITY ? "activity" : "sub-orchestration", a->name,
                        err.message);
        a->type = type;
        retry_start(c, t, opts->retry, a);
        return t;
    }
    t->seq = replay_schedule(c, type, a->name, a);
    return t;
}

dt_task *dt_call_activity(dt_octx *c, const char *name, const char *input,
                          const dt_task_options *opts)
{
    /* strings are copied (and the input checked) only if the action is new: replayed steps
     * cost a comparison, not an allocation */
    dt_action a = {0};
    a.name = name ? name : "";
    a.input = input;
    a.version = opts ? opts->version : NULL;
    return schedule(c, TASK_ACTIVITY, DT_ACTION_SCHEDULE_TASK, &a, opts);
}

dt_task *dt_call_sub_orchestrator(dt_octx *c, const char *name, const char *input,
                                  const dt_task_options *opts)
{
    dt_action a = {0};
    a.name = name ? name : "";
    a.input = input;
    a.version = opts ? opts->version : NULL;
    if (opts && opts->instance_id)
        a.instance_id = opts->instance_id;   /* checked with the action (replay_schedule) */
    /* without an id, replay_schedule derives one from the sequence number, so each retry
     * attempt gets its own */
    return schedule(c, TASK_SUB_ORCHESTRATION, DT_ACTION_CREATE_SUB_ORCHESTRATION, &a, opts);
}

dt_task *dt_create_timer(dt_octx *c, dt_time fire_at)
{
    if (fire_at < DT_TIME_MIN || fire_at > DT_TIME_MAX)
        replay_fail(c, "InvalidTimer",
                    "timer fire time %lld us since the epoch is outside years 1 to 9999",
                    (long long)fire_at);
    dt_action a = {0};
    a.fire_at = fire_at;
    dt_task *t = task_new(c, TASK_TIMER);
    t->seq = replay_schedule(c, DT_ACTION_CREATE_TIMER, NULL, &a);
    return t;
}

dt_task *dt_wait_for_event(dt_octx *c, const char *name)
{
    dt_task *t = task_new(c, TASK_EVENT);
    t->name = replay_strdup(c, name ? name : "");
    if (c->n_waiters == c->cap_waiters) {
        size_t cap = c->cap_waiters ? c->cap_waiters * 2 : 8;
        dt_task **w = dt_alloc(c, cap * sizeof *w);
        if (c->n_waiters)
            memcpy(w, c->waiters, c->n_waiters * sizeof *w);
        c->waiters = w;
        c->cap_waiters = cap;
    }
    c->waiters[c->n_waiters++] = t;
    c->waiters_dirty = true;
    return t;
}

void dt_send_event(dt_octx *c, const char *instance_id, const char *name, const char *data)
{
    dt_action a = {0};
    a.instance_id = instance_id ? instance_id : "";
    a.name = name ? name : "";
    a.input = data;
    replay_schedule(c, DT_ACTION_SEND_EVENT, a.name, &a);
}

void dt_cancel(dt_octx *c, dt_task *t)
{
    if (t->cancelled || (t->kind != TASK_EVENT && t->kind != TASK_TIMER))
        return;
    replay_resolve(c, t);
    /* done only counts if the code has got that far: an event or firing later in history
     * arrives after the cancellation */
    if (t->done && t->done_pos <= c->pos)
        return;
    t->done = false;
    t->cancelled = true;
    t->cancelled_pos = c->pos;
    if (t->kind == TASK_EVENT)
        c->waiters_dirty = true;
}

dt_task *dt_when_all(dt_octx *c, dt_task *const *tasks, size_t n)
{
    dt_task *t = task_new(c, TASK_ALL);
    t->children = dt_alloc(c, (n ? n : 1) * sizeof *t->children);
    if (n)
        memcpy(t->children, tasks, n * sizeof *t->children);
    t->n_children = n;
    return t;
}

dt_task *dt_when_any(dt_octx *c, dt_task *const *tasks, size_t n)
{
    dt_task *t = dt_when_all(c, tasks, n);
    t->kind = TASK_ANY;
    return t;
}

/* ---- resolution -------------------------------------------------------------------------- */

static void resolve_scheduled(dt_octx *c, dt_task *t)
{
    if (t->seq < 0 || (size_t)t->seq >= c->n_seq || c->completed[t->seq] == NULL)
        return;
    const dt_event *e = c->completed[t->seq];
    size_t pos = c->completed_pos[t->seq];
    t->done = true;
    t->done_pos = pos > t->created_pos ? pos : t->created_pos;
    if (e->type == DT_EVENT_TASK_FAILED || e->type == DT_EVENT_SUB_ORCHESTRATION_FAILED ||
        e->type == DT_EVENT_ENTITY_FAILED) {
        t->failed = true;
        t->failure = e->failure ? e->failure
                                : dt_failure_new(c->arena, "TaskFailed", "task %d failed", t->seq);
    } else {
        t->result = e->result;
    }
}

static size_t later(size_t a, size_t b)
{
    return a > b ? a : b;
}

/* when-all: done when every child is done, or failed as soon as the first child fails */
static void resolve_all(dt_octx *c, dt_task *t)
{
    size_t last = t->created_pos, n_done = 0;
    dt_task *first_failed = NULL;
    t->done = t->failed = false;
    for (size_t i = 0; i < t->n_children; i++) {
        dt_task *ch = t->children[i];
        replay_resolve(c, ch);
        if (!ch->done)
            continue;
        n_done++;
        last = later(last, ch->done_pos);
        if (ch->failed && (first_failed == NULL || ch->done_pos < first_failed->done_pos))
            first_failed = ch;
    }
    if (first_failed) {
        t->done = t->failed = true;
        t->done_pos = later(first_failed->done_pos, t->created_pos);
        t->failure = first_failed->failure;
        return;
    }
    if (n_done < t->n_children)
        return;
    /* the result: a JSON array of the children's results */
    size_t len = 3;
    for (size_t i = 0; i < t->n_children; i++)
        len += (t->children[i]->result ? strlen(t->children[i]->result) : 4) + 1;
    char *out = dt_alloc(c, len);
    char *p = out;
    *p++ = '[';
    for (size_t i = 0; i < t->n_children; i++) {
        const char *r = t->children[i]->result ? t->children[i]->result : "null";
        size_t rl = strlen(r);
        if (i)
            *p++ = ',';
        memcpy(p, r, rl);
        p += rl;
    }
    *p++ = ']';
    *p = '\0';
    t->done = true;
    t->done_pos = last;
    t->result = out;
}

/* when-any: done when the first child is done, in history order (ties: the earlier child) */
static void resolve_any(dt_octx *c, dt_task *t)
{
    dt_task *best = NULL;
    t->done = false;
    for (size_t i = 0; i < t->n_children; i++) {
        dt_task *ch = t->children[i];
        replay_resolve(c, ch);
        if (ch->done && (best == NULL || ch->done_pos < best->done_pos)) {
            best = ch;
            t->winner = i;
        }
    }
    if (best == NULL)
        return;
    t->done = true;
    t->done_pos = later(best->done_pos, t->created_pos);
    t->result = best->result;
}

void replay_resolve(dt_octx *c, dt_task *t)
{
    if (t->kind == TASK_ALL) {
        resolve_all(c, t);
        return;
    }
    if (t->kind == TASK_ANY) {
        resolve_any(c, t);
        return;
    }
    if (t->done || t->cancelled)
        return;
    if (t->retry) {
        retry_resolve(c, t);
        return;
    }
    switch (t->kind) {
    case TASK_EVENT: events_resolve(c, t); break;
    default: resolve_scheduled(c, t); break;
    }
}

/* wait_done: resolve T, replaying retry steps that history shows before T's end (they may
 * change it), then move the code's position to where T finished. When history does not have
 * it yet, the episode ends (a replay), or the code waits for more history (a session). */
static void wait_done(dt_octx *c, dt_task *t)
{
    for (;;) {
        replay_resolve(c, t);
        size_t limit = t->done ? t->done_pos : c->n_events;
        if (retry_advance(c, limit))
            continue;
        if (t->done)
            break;
        replay_block(c);
    }
    if (t->done_pos > c->pos)
        c->pos = t->done_pos;
}

static const char *task_label(dt_octx *c, const dt_task *t)
{
    switch (t->kind) {
    case TASK_ACTIVITY: return dt_printf(c, "activity '%s'", t->name);
    case TASK_TIMER: return dt_printf(c, "timer (task %d)", t->seq);
    case TASK_SUB_ORCHESTRATION: return dt_printf(c, "sub-orchestration '%s'", t->name);
    case TASK_EVENT: return dt_printf(c, "event '%s'", t->name);
    case TASK_ALL: return "a task of a when-all";
    case TASK_ANY: return "when-any";
    case TASK_ENTITY: return dt_printf(c, "entity '%s'", t->name);
    case TASK_LOCK: return "a critical section's lock";
    }
    return "task";
}

static void check_not_cancelled(dt_octx *c, dt_task *t)
{
    if (t->cancelled)
        replay_fail(c, "TaskCanceled", "%s was cancelled with dt_cancel and cannot be awaited",
                    task_label(c, t));
}

const char *dt_await(dt_octx *c, dt_task *t)
{
    check_not_cancelled(c, t);
    wait_done(c, t);
    if (t->failed) {
        /* unhandled: the orchestration fails with the task's failure as the cause */
        dt_fail_with(c, t->failure, "TaskFailedError", "%s failed: %s", task_label(c, t),
                     t->failure && t->failure->message ? t->failure->message : "");
        replay_abort(c);
    }
    return t->result;
}

dt_status dt_try_await(dt_octx *c, dt_task *t, const char **result, const dt_failure **failure)
{
    check_not_cancelled(c, t);
    wait_done(c, t);
    if (result)
        *result = t->failed ? NULL : t->result;
    if (failure)
        *failure = t->failed ? t->failure : NULL;
    return t->failed ? DT_ERR_TASK_FAILED : DT_OK;
}

/* The accessors resolve first, so they tell what history has even before an await. */
size_t dt_task_winner(const dt_task *any)
{
    replay_resolve(any->ctx, (dt_task *)any);
    return any->winner;
}

bool dt_task_is_done(const dt_task *t)
{
    replay_resolve(t->ctx, (dt_task *)t);
    return t->done;
}

const char *dt_task_result(const dt_task *t)
{
    replay_resolve(t->ctx, (dt_task *)t);
    return t->result;
}

const dt_failure *dt_task_failure(const dt_task *t)
{
    replay_resolve(t->ctx, (dt_task *)t);
    return t->failed ? t->failure : NULL;
}
