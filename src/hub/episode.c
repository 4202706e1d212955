/* episode.c — from an orchestrator's actions to what the store commits. The history of an
 * episode is: the new events (led by the OrchestratorStarted the hub added), one scheduling
 * event per new action, and ExecutionCompleted if the orchestration finished. Alongside: activity work items, timer messages, messages to other
 * instances, sub-orchestrations to create, and the instance row's new state. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

/* The arrays are sized up front (episode_build says how) and never grow: cap_* are the
 * sizes, asserted on every add. NOMEM is set when an allocation made while filling them
 * fails (an execution id, a failure); the episode is then refused, never committed with a
 * NULL where a value belongs. */
typedef struct builder {
    dt_arena *arena;
    const dt_orch_item *item;
    const tally *tally;           /* of item->past, when the cache keeps one (else NULL) */
    dt_time now;
    bool nomem;
    dt_event *events;
    size_t n_events, cap_events;
    dt_new_activity *acts;
    size_t n_acts, cap_acts;
    dt_message *msgs;
    size_t n_msgs, cap_msgs;
    dt_new_instance *insts;
    size_t n_insts, cap_insts;
    dt_entity_message *ents;
    size_t n_ents, cap_ents;
    dt_entity_unlock *unlocks;
    size_t n_unlocks, cap_unlocks;
} builder;

static dt_event *add_event(builder *b, dt_event_type type)
{
    assert(b->n_events < b->cap_events);
    dt_event *e = &b->events[b->n_events++];
    dt_event_init(e, type, b->now);
    return e;
}

static dt_message *add_message(builder *b, const char *to, dt_event_type type, dt_time visible)
{
    assert(b->n_msgs < b->cap_msgs);
    dt_message *m = &b->msgs[b->n_msgs++];
    memset(m, 0, sizeof *m);
    m->instance_id = to;
    m->visible_at = visible;
    dt_event_init(&m->event, type, b->now);
    return m;
}

static dt_new_activity *add_activity(builder *b)
{
    assert(b->n_acts < b->cap_acts);
    return &b->acts[b->n_acts++];
}

static dt_new_instance *add_instance(builder *b)
{
    assert(b->n_insts < b->cap_insts);
    dt_new_instance *ni = &b->insts[b->n_insts++];
    memset(ni, 0, sizeof *ni);
    return ni;
}

/* new_execution_id: a fresh execution id in the arena, or NULL with NOMEM set. */
static const char *new_execution_id(builder *b)
{
    char *exec = dt_arena_alloc(b->arena, 33);
    if (exec == NULL) {
        b->nomem = true;
        return NULL;
    }
    dt_execution_id_generate(exec);
    return exec;
}

/* copy_text: a copy of S in B's arena (NULL for NULL), noting in B when it could not be made. */
static const char *copy_text(builder *b, const char *s)
{
    char *c = dt_arena_strdup(b->arena, s);
    b->nomem |= s != NULL && c == NULL;
    return c;
}

/* checked: P, noting in B when an allocation that made it failed (P is NULL). */
static const dt_failure *checked(builder *b, const dt_failure *p)
{
    if (p == NULL)
        b->nomem = true;
    return p;
}

/* count_task: add to *SCHEDULED and *COMPLETED the events among N at EV that schedule or
 * complete sequence number TASK_ID. */
static void count_task(const dt_event *ev, size_t n, int32_t task_id, size_t *scheduled,
                       size_t *completed)
{
    for (size_t i = 0; i < n; i++) {
        if (dt_event_is_scheduling(ev[i].type) && ev[i].event_id == task_id)
            ++*scheduled;
        else if (dt_event_is_completion(ev[i].type) && ev[i].task_id == task_id)
            ++*completed;
    }
}

bool episode_is_duplicate(const tally *past_tally, const dt_event *past, size_t n_past,
                          const dt_event *fresh, size_t n_fresh, int32_t task_id)
{
    size_t scheduled = 0, completed = 0;
    if (past_tally)
        tally_task(past_tally, task_id, &scheduled, &completed);
    else
        count_task(past, n_past, task_id, &scheduled, &completed);
    count_task(fresh, n_fresh, task_id, &scheduled, &completed);
    return scheduled > 0 && completed >= scheduled;
}

/* already_completed: every scheduling of TASK_ID in history or earlier in this episode has
 * its completion (see episode_is_duplicate). */
static bool already_completed(const builder *b, int32_t task_id)
{
    return episode_is_duplicate(b->tally, b->item->past, b->item->n_past, b->events, b->n_events,
                                task_id);
}

static const dt_event *find_started(const dt_orch_item *item)
{
    dt_orch_request req;
    dt_hub_orch_request(item, &req);
    return dt_orch_request_started(&req);
}

/* parent_now: the event that says which run of its parent (and which task there) a child
 * reports to: the last ExecutionRewound from its parent after STARTED, or else STARTED. A
 * parent rewound while this child ran tells it its new run that way (rewind_child). */
static const dt_event *parent_now(const dt_orch_item *item, const dt_event *started)
{
    const dt_event *now = started;
    bool after = false;
    for (size_t i = 0; i < item->n_past + item->n_incoming; i++) {
        const dt_event *e = i < item->n_past ? &item->past[i] : &item->incoming[i - item->n_past];
        after |= e == started;
        if (after && e->type == DT_EVENT_EXECUTION_REWOUND && e->parent_instance_id &&
            e->parent_execution_id)
            now = e;
    }
    return now;
}

dt_failure *child_terminated(dt_arena *arena, const char *id, const char *reason)
{
    return dt_failure_new(arena, "OrchestrationTerminated",
                          "sub-orchestration '%s' was terminated%s%s", id, reason ? ": " : "",
                          reason ? reason : "");
}

/* notify_parent: a finished sub-orchestration reports to its parent's inbox. */
static void notify_parent(builder *b, const dt_action *a)
{
    const dt_event *started = find_started(b->item);
    if (started == NULL || started->parent_instance_id == NULL)
        return;
    const dt_event *to = parent_now(b->item, started);
    bool ok = a->status == DT_STATUS_COMPLETED;
    dt_message *m = add_message(b, started->parent_instance_id,
                                ok ? DT_EVENT_SUB_ORCHESTRATION_COMPLETED
                                   : DT_EVENT_SUB_ORCHESTRATION_FAILED,
                                0);
    m->execution_id = to->parent_execution_id;
    m->event.task_id = to->parent_task_id;
    m->event.result = ok ? a->result : NULL;
    m->event.failure = ok ? NULL : a->failure;
    if (!ok && a->failure == NULL)
        m->event.failure = checked(b, child_terminated(b->arena, b->item->instance_id,
                                                       a->result));
}

/* terminate_children: with a recursive terminate, every sub-orchestration this instance
 * started that has not reported back is terminated too. */
static void terminate_children(builder *b, const dt_action *a)
{
    const dt_orch_item *it = b->item;
    for (size_t i = 0; i < it->n_past + it->n_incoming; i++) {
        const dt_event *e = i < it->n_past ? &it->past[i] : &it->incoming[i - it->n_past];
        if (e->type != DT_EVENT_SUB_ORCHESTRATION_CREATED || already_completed(b, e->event_id))
            continue;
        dt_message *m = add_message(b, e->instance_id, DT_EVENT_EXECUTION_TERMINATED, 0);
        m->event.input = a->result;
        m->event.recurse = true;
    }
}

static size_t count_children(const dt_orch_item *it, const tally *past_tally)
{
    size_t n = past_tally ? past_tally->children : 0;
    for (size_t i = 0; !past_tally && i < it->n_past; i++)
        n += it->past[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED;
    for (size_t i = 0; i < it->n_incoming; i++)
        n += it->incoming[i].type == DT_EVENT_SUB_ORCHESTRATION_CREATED;
    return n;
}

/* asked_for_locks: did B's execution ever ask for an entity's lock (its past,
 * or the events this episode adds)? */
static bool asked_for_locks(const builder *b)
{
    const dt_orch_item *it = b->item;
    bool asked = b->tally && b->tally->locks > 0;
    for (size_t i = 0; !b->tally && !asked && i < it->n_past; i++)
        asked = it->past[i].type == DT_EVENT_ENTITY_LOCK_REQUESTED;
    for (size_t i = 0; !asked && i < b->n_events; i++)
        asked = b->events[i].type == DT_EVENT_ENTITY_LOCK_REQUESTED;
    return asked;
}

/* continue_as_new: this execution ends; a new one starts from an empty history with the new
 * input and a new execution id, followed by the events carried over. */
static void continue_as_new(builder *b, const dt_action *a, dt_episode *ep)
{
    const dt_event *started = find_started(b->item);
    const char *exec = new_execution_id(b);
    ep->reset_history = true;
    b->n_events = 0;                 /* the old history goes; nothing of it is kept */
    ep->status = DT_STATUS_CONTINUED_AS_NEW;
    ep->output = NULL;
    ep->failure = NULL;
    ep->completed_at = 0;
    ep->input = a->result;
    ep->execution_id = exec;
    dt_message *m = add_message(b, b->item->instance_id, DT_EVENT_EXECUTION_STARTED, 0);
    dt_event *e = &m->event;
    e->event_id = 0;   /* as store_started_message numbers it */
    e->name = b->item->state.name;
    /* a new version, when asked for, starts with the new execution (SDK versioning's
     * "continue as new on the new version") */
    e->version = a->version && *a->version ? a->version : b->item->state.version;
    ep->version = a->version && *a->version ? a->version : NULL;
    e->input = a->result;
    e->instance_id = b->item->instance_id;
    e->execution_id = exec;
    if (started) {
        const dt_event *to = parent_now(b->item, started);
        e->parent_instance_id = started->parent_instance_id;
        e->parent_execution_id = to->parent_execution_id;
        e->parent_name = started->parent_name;
        e->parent_task_id = to->parent_task_id;
        e->trace_parent = started->trace_parent;   /* the new execution joins the same trace */
        e->trace_state = started->trace_state;
        e->tags = started->tags;
    }
    /* carried over: tagged with the new execution, so they follow its ExecutionStarted
     * ahead of whatever was waiting in the inbox (dispatch.c, hub_begin_episode) */
    for (size_t i = 0; i < a->n_carryover; i++) {
        const dt_event *c = &a->carryover[i];
        if (c->type != DT_EVENT_EVENT_RAISED)
            continue;
        m = add_message(b, b->item->instance_id, DT_EVENT_EVENT_RAISED, 0);
        m->execution_id = exec;
        m->event.name = c->name;
        m->event.input = c->input;
    }
}

/* complete: end the execution as A says. EVENT_ID numbers its ExecutionCompleted: the
 * worker's action's id, as the Durable Task Scheduler numbers it; -1 when the hub ends it. */
static void complete(builder *b, const dt_action *a, int32_t event_id, dt_episode *ep)
{
    if (a->status == DT_STATUS_CONTINUED_AS_NEW) {
        continue_as_new(b, a, ep);
        return;
    }
    if (a->status == DT_STATUS_TERMINATED && a->recurse)
        terminate_children(b, a);
    dt_event *e = add_event(b, DT_EVENT_EXECUTION_COMPLETED);
    e->event_id = event_id;
    e->status = a->status;
    e->result = a->result;
    e->failure = a->failure;
    ep->status = a->status;
    ep->output = a->result;
    ep->failure = a->failure;
    ep->completed_at = b->now;
    if (a->tags) {   /* tags the orchestrator adds as it ends join the instance's own */
        ep->tags = dt_tags_merge(b->arena, b->item->state.tags, a->tags);
        b->nomem |= ep->tags == NULL;
    }
    notify_parent(b, a);
}

/* What rewind_run looks a child up in, each sorted by task number: the numbers the new
 * history has a child's result for, and the old history's child failures (by position
 * among one number). A lookup each, not a scan of the history per child. */
typedef struct {
    int32_t *answered;
    size_t n_answered;
    const dt_event **failed;
    size_t n_failed;
} child_index;

static int i32_cmp(const void *pa, const void *pb)
{
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return (a > b) - (a < b);
}

static int failed_cmp(const void *pa, const void *pb)
{
    const dt_event *a = *(const dt_event *const *)pa, *b = *(const dt_event *const *)pb;
    if (a->task_id != b->task_id)
        return a->task_id < b->task_id ? -1 : 1;
    return (a > b) - (a < b);   /* one array: the earlier first */
}

static bool index_children(builder *b, const dt_action *a, child_index *ix)
{
    size_t n = a->n_carryover + b->item->n_past + 1;
    ix->answered = dt_arena_alloc(b->arena, n * sizeof *ix->answered);
    ix->failed = dt_arena_alloc(b->arena, n * sizeof *ix->failed);
    ix->n_answered = ix->n_failed = 0;
    if (ix->answered == NULL || ix->failed == NULL)
        return false;
    for (size_t i = 0; i < a->n_carryover; i++)
        if (a->carryover[i].type == DT_EVENT_SUB_ORCHESTRATION_COMPLETED ||
            a->carryover[i].type == DT_EVENT_SUB_ORCHESTRATION_FAILED)
            ix->answered[ix->n_answered++] = a->carryover[i].task_id;
    for (size_t i = 0; i < b->item->n_past; i++)
        if (b->item->past[i].type == DT_EVENT_SUB_ORCHESTRATION_FAILED)
            ix->failed[ix->n_failed++] = &b->item->past[i];
    qsort(ix->answered, ix->n_answered, sizeof *ix->answered, i32_cmp);
    qsort(ix->failed, ix->n_failed, sizeof *ix->failed, failed_cmp);
    return true;
}

/* rewound_child: should the sub-orchestration created as E hear of its parent's rewind?
 * When the new history has no result for it: it failed (and is rewound), or it was still
 * running when the parent failed (it reports to the new run instead), or it finished since
 * (its report went to the old run: it sends it again, dispatch.c's report_again). A kept
 * result (a retried attempt's failure) says no. */
static bool rewound_child(const child_index *ix, const dt_event *e)
{
    return bsearch(&e->event_id, ix->answered, ix->n_answered, sizeof *ix->answered,
                   i32_cmp) == NULL;
}

/* never_started: did the child created as E fail because its id was in use (another's
 * instance, or the parent's own), so that no child of this parent ever ran? Its failure in
 * the old history is under its old number: the hub's rewrite (rewind.c) may have renumbered
 * the creation, and left the old number in E's task_id, plus one; a worker's rewrite keeps
 * the numbers. */
static bool never_started(const child_index *ix, const dt_event *e)
{
    int32_t seq = e->task_id > 0 ? e->task_id - 1 : e->event_id;
    size_t lo = 0, hi = ix->n_failed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->failed[mid]->task_id < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    const dt_event *p = lo < ix->n_failed && ix->failed[lo]->task_id == seq ? ix->failed[lo] : NULL;
    return p && p->failure && p->failure->error_type &&
           strcmp(p->failure->error_type, "OrchestrationAlreadyExists") == 0;
}

/* parent_task_failed: the message that fails this parent's (new execution EXEC's) task for
 * the child created as E again, because its id is held: OrchestrationAlreadyExists, and the
 * store says what holds the id */
static dt_message *parent_task_failed(builder *b, const dt_event *e, const char *exec)
{
    dt_message *m = dt_arena_alloc(b->arena, sizeof *m);
    dt_failure *f = dt_failure_new(b->arena, "OrchestrationAlreadyExists", "in use");
    if (m == NULL || f == NULL) {
        b->nomem = true;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->instance_id = b->item->instance_id;
    m->execution_id = exec;
    dt_event_init(&m->event, DT_EVENT_SUB_ORCHESTRATION_FAILED, b->now);
    m->event.task_id = e->event_id;
    f->message = NULL;
    m->event.failure = f;
    return m;
}

/* rewind_child: the child created as E (see rewound_child) hears of its parent's new
 * execution EXEC: sent an ExecutionRewound naming it (a failed child is rewound by it, a
 * finished one reports again, a running one reports to EXEC from then on: parent_now), or,
 * when it is gone (purged), started again as E made it (the Durable Task Scheduler's
 * answer): the store makes it only where no instance has the id, and otherwise delivers the
 * rewind to the one there if it is this parent's child (dt_new_instance.if_absent). What holds the id otherwise (another instance took it since
 * the purge, or the child never started because its id was in use: NEVER) is not the
 * parent's to rewind: that conflict fails the parent's task again, as a refused child does. */
static void rewind_child(builder *b, const dt_event *e, const char *exec, const char *reason,
                         bool never)
{
    dt_message *fail = parent_task_failed(b, e, exec), *m = NULL;
    /* E's text may be the cached history's, which the commit of this new history lets go
     * before the batch is published: what the hub reads after it is copied */
    const char *child = copy_text(b, e->instance_id);
    if (!never) {
        if ((m = dt_arena_alloc(b->arena, sizeof *m)) == NULL) {
            b->nomem = true;
            return;
        }
        memset(m, 0, sizeof *m);
        m->instance_id = child;
        dt_event_init(&m->event, DT_EVENT_EXECUTION_REWOUND, b->now);
        m->event.input = reason;
        m->event.instance_id = child;
        /* the parent's new run, and its task for the child: a rewind renumbers the steps
         * that came after a retry chain it took out (rewind.c) */
        m->event.parent_instance_id = b->item->instance_id;
        m->event.parent_name = b->item->state.name;
        m->event.parent_execution_id = exec;
        m->event.parent_task_id = e->event_id;
    }
    if (fail == NULL)
        return;
    dt_new_instance *ni = add_instance(b);
    ni->if_absent = true;
    ni->on_conflict = m ? m : fail;
    ni->on_foreign = fail;
    ni->instance_id = child;
    ni->execution_id = new_execution_id(b);
    ni->name = copy_text(b, e->name);
    ni->version = copy_text(b, e->version);
    ni->input = copy_text(b, e->input);
    ni->created_at = b->now;
    ni->parent_instance_id = b->item->instance_id;
    ni->parent_execution_id = exec;
    ni->parent_name = b->item->state.name;
    ni->parent_task_id = e->event_id;
    ni->trace_parent = copy_text(b, e->trace_parent);
    ni->trace_state = copy_text(b, e->trace_state);
    ni->tags = copy_text(b, e->tags);
}

/* rewind_run: the instance runs again on the history A carries (rewind.c's, or a worker's
 * RewindOrchestrationAction's), as a new execution: Running, no output, no failure. It
 * wakes itself with an ExecutionRewound (so the worker replays the rewritten history and
 * schedules again what failed), and rewinds the sub-orchestrations that failed. */
static void rewind_run(builder *b, const dt_action *a, dt_episode *ep)
{
    const char *self = b->item->instance_id, *reason = a->input, *exec = NULL;
    ep->reset_history = true;
    b->n_events = 0;
    for (size_t i = 0; i < a->n_carryover; i++) {
        const dt_event *e = &a->carryover[i];
        if (e->type == DT_EVENT_EXECUTION_COMPLETED)
            continue;   /* a worker's rewrite should not have it; a rewound run is not over */
        if (e->type == DT_EVENT_EXECUTION_REWOUND) {
            reason = reason ? reason : e->input;   /* it comes back as the wake-up */
            continue;
        }
        assert(b->n_events < b->cap_events);
        b->events[b->n_events++] = *e;
        if (e->type == DT_EVENT_EXECUTION_STARTED)
            exec = e->execution_id && *e->execution_id ? e->execution_id : new_execution_id(b);
    }
    if (exec == NULL) {
        b->n_events = 0;
        ep->reset_history = false;
        dt_action f = {.status = DT_STATUS_FAILED};
        f.failure = checked(b, dt_failure_new(b->arena, "InvalidRewind", "the rewound history "
                                              "has no ExecutionStarted"));
        complete(b, &f, -1, ep);
        return;
    }
    for (size_t i = 0; i < b->n_events; i++)
        if (b->events[i].type == DT_EVENT_EXECUTION_STARTED)
            b->events[i].execution_id = exec;
    ep->execution_id = exec;
    ep->status = DT_STATUS_RUNNING;
    ep->output = NULL;
    ep->failure = NULL;
    ep->completed_at = 0;
    dt_message *m = add_message(b, self, DT_EVENT_EXECUTION_REWOUND, 0);
    m->execution_id = exec;
    m->event.input = reason;
    /* commands that came with a client's rewind (a terminate, an event, a suspend) are for
     * the run that follows: they go back to the inbox, after the wake-up. Results are the old
     * run's. A worker's rewrite already took in what its episode was given. */
    bool requested = false;
    for (size_t i = 0; i < b->item->n_incoming; i++)
        requested |= b->item->incoming[i].type == DT_EVENT_EXECUTION_REWOUND &&
                     b->item->incoming[i].execution_id == NULL;
    for (size_t i = 0; requested && i < b->item->n_incoming; i++) {
        const dt_event *in = &b->item->incoming[i];
        if (in->type == DT_EVENT_ORCHESTRATOR_STARTED || in->type == DT_EVENT_EXECUTION_REWOUND ||
            in->type == DT_EVENT_EXECUTION_STARTED || dt_event_is_completion(in->type))
            continue;
        m = add_message(b, self, in->type, 0);
        m->event = *in;
    }
    child_index ix;
    if (!index_children(b, a, &ix)) {
        b->nomem = true;
        return;
    }
    for (size_t i = 0; i < b->n_events; i++) {
        dt_event *e = &b->events[i];
        if (e->type != DT_EVENT_SUB_ORCHESTRATION_CREATED)
            continue;
        if (rewound_child(&ix, e))
            rewind_child(b, e, exec, reason, never_started(&ix, e));
        e->task_id = 0;   /* rewind.c's note of its old number, read */
    }
}

/* fail_with: end the instance as Failed with FAILURE (NULL: out of memory, noted). */
static void fail_with(builder *b, const dt_failure *failure, dt_episode *ep)
{
    dt_action f = {0};
    f.status = DT_STATUS_FAILED;
    f.failure = checked(b, failure);
    complete(b, &f, -1, ep);
}

/* entity_target: the normalized id of entity ID, or NULL after failing the instance (a
 * malformed id is the orchestration's bug, and would otherwise wait for ever). */
static const char *entity_target(builder *b, const char *id, dt_episode *ep)
{
    dt_error err;
    const char *t = id ? dt_entity_id_normalize(b->arena, id, &err) : NULL;
    if (t == NULL)
        fail_with(b, dt_failure_new(b->arena, "InvalidEntityId", "sendEntityMessage: %s",
                                    id ? err.message : "the target entity is missing"), ep);
    return t;
}

static int cmp_ids(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* lock_set: the lock set of request E, normalized, in one fixed order (bytewise, whatever
 * order the SDK sent) and without duplicates, so that two critical sections over overlapping
 * sets lock their common entities in the same order and cannot deadlock. */
static bool lock_set(builder *b, const dt_event *e, dt_event *msg, dt_episode *ep)
{
    if (e->n_lock_set == 0) {
        fail_with(b, dt_failure_new(b->arena, "InvalidEntityId",
                                    "sendEntityMessage: a lock request with no entities"), ep);
        return false;
    }
    const char **set = dt_arena_alloc(b->arena, e->n_lock_set * sizeof *set);
    if (set == NULL) {
        b->nomem = true;
        return false;
    }
    for (size_t i = 0; i < e->n_lock_set; i++)
        if ((set[i] = entity_target(b, e->lock_set[i], ep)) == NULL)
            return false;
    qsort(set, e->n_lock_set, sizeof *set, cmp_ids);
    size_t n = 0;
    for (size_t i = 0; i < e->n_lock_set; i++)
        if (n == 0 || strcmp(set[n - 1], set[i]) != 0)
            set[n++] = set[i];
    msg->lock_set = set;
    msg->n_lock_set = n;
    msg->position = 0;
    return true;
}

/* send_entity_message: the action's event joins history as sent (the SDKs match it by the
 * action's id on replay), and goes to its entity: signals and calls into its queue, a lock
 * request to the first entity of its set, an unlock applied at once. */
static void send_entity_message(builder *b, const dt_action *a, dt_episode *ep)
{
    const dt_event *x = a->entity;
    if (x == NULL || !dt_event_is_entity_message(x->type)) {
        fail_with(b, dt_failure_new(b->arena, "InvalidEntityMessage", "sendEntityMessage "
                                    "action %d has no signal, call, lock or unlock", (int)a->id),
                  ep);
        return;
    }
    const char *self = b->item->instance_id, *exec = b->item->state.execution_id;
    dt_entity_message m = {.sender = self, .sender_execution = exec, .event = *x};
    m.event.timestamp = b->now;
    m.event.event_id = -1;
    if (x->type == DT_EVENT_ENTITY_LOCK_REQUESTED) {
        if (!lock_set(b, x, &m.event, ep))
            return;
        m.entity_id = m.event.lock_set[0];
        m.event.parent_instance_id = self;
    } else if ((m.entity_id = entity_target(b, x->instance_id, ep)) == NULL) {
        return;
    }
    dt_event *e = add_event(b, x->type);
    *e = *x;
    e->event_id = a->id;
    e->timestamp = b->now;
    if (x->type == DT_EVENT_ENTITY_UNLOCK_SENT) {
        assert(b->n_unlocks < b->cap_unlocks);
        b->unlocks[b->n_unlocks++] = (dt_entity_unlock){m.entity_id, x->request_id};
        return;
    }
    if (x->type == DT_EVENT_ENTITY_CALLED) {   /* answers go to this run, whatever was sent */
        m.event.parent_instance_id = self;
        m.event.parent_execution_id = exec;
    }
    m.visible_at = x->fire_at;
    assert(b->n_ents < b->cap_ents);
    b->ents[b->n_ents++] = m;
}

/* sub_conflict: M (to this instance) becomes the failure of sub-orchestration action A whose
 * id is in use: SubOrchestrationInstanceFailed for its task. OWN: the id is the parent's own,
 * and the message says so; otherwise the message is left for the store to write
 * (store.h, on_conflict), as only it knows what holds the id. */
static void sub_conflict(builder *b, const dt_action *a, dt_message *m, bool own)
{
    m->execution_id = b->item->state.execution_id;
    m->event.task_id = a->id;
    dt_failure *f = dt_failure_new(b->arena, "OrchestrationAlreadyExists",
                                   "sub-orchestration '%s' was not started: '%s' is the "
                                   "parent's own instance id", a->instance_id, a->instance_id);
    if (f && !own)
        f->message = NULL;
    m->event.failure = checked(b, f);
}

/* fail_unsupported: an action this hub cannot apply ends the instance as Failed, naming it,
 * rather than being redelivered forever. */
static void fail_unsupported(builder *b, const dt_action *a, dt_episode *ep)
{
    fail_with(b, dt_failure_new(b->arena, "UnsupportedAction",
                                "the orchestrator asked for action type %d (%s), which this "
                                "version of the hub does not support",
                                (int)a->type,
                                a->type == DT_ACTION_COMPLETE_ORCHESTRATION
                                    ? dt_runtime_status_name(a->status)
                                    : "unknown"),
              ep);
}

/* end_tags_fit: whether the instance's tags, with those completion A adds joined to them
 * (complete), stay within DT_TAGS_MAX: each was checked alone, and together they are what the
 * instance keeps and every listing row carries. If not the instance fails, naming the limit. */
static bool end_tags_fit(builder *b, const dt_action *a, dt_episode *ep)
{
    if (a->type != DT_ACTION_COMPLETE_ORCHESTRATION || a->status == DT_STATUS_CONTINUED_AS_NEW ||
        a->tags == NULL)
        return true;
    const char *all = dt_tags_merge(b->arena, b->item->state.tags, a->tags);
    if (all == NULL || strlen(all) <= DT_TAGS_MAX) {
        b->nomem |= all == NULL;
        return all != NULL;
    }
    fail_with(b, dt_failure_new(b->arena, "InvalidTags", "completeOrchestration action %d: the "
                                "instance's tags with those it adds are %zu bytes of JSON text, "
                                "over the tags size limit of %zu bytes (64 KiB, DT_TAGS_MAX)",
                                (int)a->id, strlen(all), DT_TAGS_MAX),
              ep);
    return false;
}

/* check_actions: true if every action of RESULT keeps the rules; otherwise the instance fails,
 * naming the first that does not, and none of them is applied. */
static bool check_actions(builder *b, const dt_orch_result *result, dt_episode *ep)
{
    size_t rewinds = 0;
    for (size_t i = 0; i < result->n_actions; i++)
        rewinds += result->actions[i].type == DT_ACTION_REWIND;
    if (rewinds > 1) {   /* each would start a new execution; the first's children be lost */
        fail_with(b, dt_failure_new(b->arena, "InvalidRewind", "the result has %zu rewind "
                                    "actions; at most one", rewinds), ep);
        return false;
    }
    for (size_t i = 0; i < result->n_actions; i++) {
        const dt_action *a = &result->actions[i];
        const char *type;
        dt_error err;
        dt_status st = dt_action_validate(a, &type, &err);
        if (st == DT_ERR_NOMEM) {   /* its tags could not be read now (JSON's bound): later */
            b->nomem = true;
            return false;
        }
        if (st != DT_OK) {
            fail_with(b, dt_failure_new(b->arena, type, "%s", err.message), ep);
            return false;
        }
        if (!end_tags_fit(b, a, ep))
            return false;
    }
    return true;
}

static void apply_action(builder *b, const dt_action *a, dt_episode *ep)
{
    const char *self = b->item->instance_id;
    dt_event *e;
    dt_message *m;
    switch (a->type) {
    case DT_ACTION_SCHEDULE_TASK:
        e = add_event(b, DT_EVENT_TASK_SCHEDULED);
        e->event_id = a->id;
        e->name = a->name;
        /* an activity scheduled without a version runs at its orchestration's (as the .NET
         * SDK schedules it, and work item filters with versions expect); "" is none */
        e->version = a->version ? a->version : b->item->state.version;
        e->input = a->input;
        e->trace_parent = a->trace_parent;
        e->trace_state = a->trace_state;
        e->tags = a->tags;
        *add_activity(b) = (dt_new_activity){self, b->item->state.execution_id, e, 0};
        return;
    case DT_ACTION_CREATE_TIMER:
        e = add_event(b, DT_EVENT_TIMER_CREATED);
        e->event_id = a->id;
        e->fire_at = a->fire_at;
        m = add_message(b, self, DT_EVENT_TIMER_FIRED, a->fire_at);
        /* the event is dated when it fires (a timer already due fires now), so a history or
         * a timeline shows the wait, not the instant the timer was made */
        m->event.timestamp = a->fire_at > b->now ? a->fire_at : b->now;
        m->execution_id = b->item->state.execution_id;
        m->event.task_id = a->id;
        m->event.fire_at = a->fire_at;
        return;
    case DT_ACTION_SEND_EVENT:
        if (a->instance_id && a->instance_id[0] == '@') {
            /* the classic entity encoding (events named by operation), which the .NET worker
             * sends unless told to speak to a scheduler: refused, saying what to set */
            fail_with(b, dt_failure_new(b->arena, "UnsupportedEntityEncoding",
                                        "event '%s' sent to entity '%s': entities take "
                                        "sendEntityMessage actions here (in .NET, enable entity "
                                        "support and configure the worker for the Durable Task "
                                        "Scheduler, ConfigureForAzureManaged)",
                                        a->name ? a->name : "", a->instance_id),
                      ep);
            return;
        }
        e = add_event(b, DT_EVENT_EVENT_SENT);
        e->event_id = a->id;
        e->instance_id = a->instance_id;
        e->name = a->name;
        e->input = a->input;
        m = add_message(b, a->instance_id, DT_EVENT_EVENT_RAISED, 0);
        m->event.name = a->name;
        m->event.input = a->input;
        return;
    case DT_ACTION_CREATE_SUB_ORCHESTRATION: {
        e = add_event(b, DT_EVENT_SUB_ORCHESTRATION_CREATED);
        e->event_id = a->id;
        e->instance_id = a->instance_id;
        e->name = a->name;
        e->version = a->version;
        e->input = a->input;
        e->trace_parent = a->trace_parent;
        e->trace_state = a->trace_state;
        e->tags = a->tags;
        /* an id in use is the parent's to hear about, as a failure of this task (the Durable
         * Task Framework's answer); never a wait for ever, never a replaced instance */
        if (strcmp(a->instance_id, self) == 0) {
            m = add_message(b, self, DT_EVENT_SUB_ORCHESTRATION_FAILED, 0);
            sub_conflict(b, a, m, true);
            return;
        }
        dt_new_instance *ni = add_instance(b);
        dt_message *conflict = dt_arena_alloc(b->arena, sizeof *conflict);
        if (conflict == NULL) {
            b->nomem = true;
            return;
        }
        memset(conflict, 0, sizeof *conflict);
        conflict->instance_id = self;
        dt_event_init(&conflict->event, DT_EVENT_SUB_ORCHESTRATION_FAILED, b->now);
        sub_conflict(b, a, conflict, false);
        ni->on_conflict = conflict;
        ni->instance_id = a->instance_id;
        ni->execution_id = new_execution_id(b);
        ni->name = a->name;
        ni->version = a->version;
        ni->input = a->input;
        ni->created_at = b->now;
        ni->parent_instance_id = self;
        ni->parent_execution_id = b->item->state.execution_id;
        ni->parent_name = b->item->state.name;
        ni->parent_task_id = a->id;
        ni->trace_parent = a->trace_parent;   /* the child's spans join the parent's trace */
        ni->trace_state = a->trace_state;
        ni->tags = a->tags;
        return;
    }
    case DT_ACTION_TERMINATE_ORCHESTRATION:
        /* an orchestrator terminating another instance: a message, like a client's */
        m = add_message(b, a->instance_id, DT_EVENT_EXECUTION_TERMINATED, 0);
        m->event.input = a->input;
        m->event.recurse = a->recurse;
        return;
    case DT_ACTION_REWIND:
        rewind_run(b, a, ep);
        return;
    case DT_ACTION_SEND_ENTITY_MESSAGE:
        send_entity_message(b, a, ep);
        return;
    case DT_ACTION_COMPLETE_ORCHESTRATION:
        if (a->status == DT_STATUS_COMPLETED || a->status == DT_STATUS_FAILED ||
            a->status == DT_STATUS_TERMINATED || a->status == DT_STATUS_CONTINUED_AS_NEW)
            complete(b, a, a->id, ep);
        else
            fail_unsupported(b, a, ep);
        return;
    default:
        fail_unsupported(b, a, ep);
        return;
    }
}

static dt_status build(const dt_orch_item *item, const tally *past_tally,
                       const dt_orch_result *result, dt_arena *arena, dt_episode *ep,
                       dt_error *err)
{
    builder b = {.arena = arena, .item = item, .tally = past_tally};
    b.now = item->n_incoming ? item->incoming[0].timestamp : dt_now();
    size_t na = result->n_actions;
    /* each action makes at most one event and one message; a completion may add a message
     * to the parent, one per child (recursive terminate), one per carried-over event, and
     * an ExecutionCompleted; a rewind one per event of its history, a wake-up, and one per
     * command that came with it */
    size_t extra = 2 + count_children(item, past_tally) + item->n_incoming, carried = 0;
    for (size_t i = 0; i < na; i++)
        carried += result->actions[i].n_carryover;
    extra += carried;
    /* a rewind's new history becomes events (and its children messages) */
    b.cap_events = item->n_incoming + na + 3 + carried;
    b.cap_acts = na + 1;
    b.cap_msgs = na + extra;
    b.cap_insts = na + 1 + carried;   /* a rewind may start each failed child again */
    b.cap_ents = b.cap_unlocks = na + 1;
    b.ents = dt_arena_alloc(arena, b.cap_ents * sizeof *b.ents);
    b.unlocks = dt_arena_alloc(arena, b.cap_unlocks * sizeof *b.unlocks);
    b.events = dt_arena_alloc(arena, b.cap_events * sizeof *b.events);
    b.acts = dt_arena_alloc(arena, b.cap_acts * sizeof *b.acts);
    b.msgs = dt_arena_alloc(arena, b.cap_msgs * sizeof *b.msgs);
    b.insts = dt_arena_alloc(arena, b.cap_insts * sizeof *b.insts);
    if (!b.events || !b.acts || !b.msgs || !b.insts || !b.ents || !b.unlocks)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory building an episode");

    memset(ep, 0, sizeof *ep);
    ep->item = item;
    ep->status = item->state.status;
    ep->output = item->state.output;
    ep->failure = item->state.failure;
    ep->completed_at = item->state.completed_at;
    for (size_t i = 0; i < item->n_incoming; i++) {
        const dt_event *in = &item->incoming[i];
        if (dt_event_is_completion(in->type) && already_completed(&b, in->task_id))
            continue;
        assert(b.n_events < b.cap_events);
        b.events[b.n_events++] = *in;
        if (in->type == DT_EVENT_EXECUTION_STARTED) {
            ep->name = in->name;
            ep->input = in->input;
            ep->execution_id = in->execution_id;
            if (ep->status == DT_STATUS_PENDING || ep->status == DT_STATUS_CONTINUED_AS_NEW)
                ep->status = DT_STATUS_RUNNING;
        } else if (in->type == DT_EVENT_EXECUTION_SUSPENDED && ep->status == DT_STATUS_RUNNING) {
            ep->status = DT_STATUS_SUSPENDED;
        } else if (in->type == DT_EVENT_EXECUTION_RESUMED && ep->status == DT_STATUS_SUSPENDED) {
            ep->status = DT_STATUS_RUNNING;
        }
    }
    bool finished = !check_actions(&b, result, ep);
    for (size_t i = 0; i < na && !finished; i++) {
        apply_action(&b, &result->actions[i], ep);
        finished = dt_runtime_status_is_terminal(ep->status);
    }
    if (b.nomem)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the episode of '%s'",
                            item->instance_id);
    /* No OrchestratorCompleted: the Durable Task Scheduler's histories have none, and the
     * SDKs' own tests expect exactly that shape. */
    ep->custom_status = result->custom_status;
    ep->span_id = result->span_id;
    ep->span_start = result->span_start;
    ep->append = b.events;
    ep->n_append = b.n_events;
    ep->activities = b.acts;
    ep->n_activities = b.n_acts;
    ep->messages = b.msgs;
    ep->n_messages = b.n_msgs;
    ep->instances = b.insts;
    ep->n_instances = b.n_insts;
    ep->entity_messages = b.ents;
    ep->n_entity_messages = b.n_ents;
    ep->unlocks = b.unlocks;
    ep->n_unlocks = b.n_unlocks;
    /* an execution that ends lets go of every entity it holds: as it completes, fails, is
     * terminated, or continues as new (the SDKs release only on their own code paths). One
     * that never asked for a lock can hold only a lock granted as it ended (the grant checks
     * its holder before it commits): released all the same, but its commit does not tell
     * the entities' takers to look (dt_commit_touches_entities); they find it at their poll */
    ep->release_locks = dt_runtime_status_is_terminal(ep->status) || ep->reset_history;
    ep->asked_locks = ep->release_locks && asked_for_locks(&b);
    return DT_OK;
}

/* build_failed: ITEM's episode as one that fails the instance with a failure of TYPE saying WHY
 * (in place of what the orchestrator asked for). */
static dt_status build_failed(const dt_orch_item *item, const tally *past_tally,
                              const char *type, const char *why, dt_arena *arena,
                              dt_episode *ep, dt_error *err)
{
    dt_log(DT_LOG_WARN, item->instance_id, "failed: %s: %s", type, why);
    dt_action fail = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = -1,
                      .status = DT_STATUS_FAILED};
    fail.failure = dt_failure_new(arena, type, "%s", why);
    if (fail.failure == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory building the episode of '%s'",
                            item->instance_id);
    dt_orch_result res = {.actions = &fail, .n_actions = 1};
    return build(item, past_tally, &res, arena, ep, err);
}

/* history_bytes: the payload bytes ITEM's execution keeps once EP is appended (a reset's, a
 * continue-as-new or a rewind: EP's alone). */
static size_t history_bytes(dt_hub *hub, const dt_orch_item *item, const dt_episode *ep)
{
    size_t n = ep->reset_history ? 0 : cache_history_bytes(hub, item);
    for (size_t i = 0; i < ep->n_append; i++)
        n += limits_event_bytes(&ep->append[i]);
    return n;
}

dt_status episode_build(dt_hub *hub, const dt_orch_item *item, const dt_orch_result *result,
                        dt_arena *arena, dt_episode *ep, dt_error *err)
{
    /* a payload over the limit is the orchestration's bug: the instance fails, naming it,
     * rather than storing what no worker could be sent; so is a span id off the trace rules,
     * which every later work item of the instance would carry */
    char why[320];
    const tally *past_tally = cache_tally(hub, item);
    if (limits_result_over(result, why, sizeof why))
        return build_failed(item, past_tally, PAYLOAD_TOO_LARGE, why, arena, ep, err);
    dt_error bad;
    if (dt_span_id_validate(result->span_id, &bad) != DT_OK) {
        snprintf(why, sizeof why, "orchestrationTraceContext: %.200s", bad.message);
        return build_failed(item, past_tally, "InvalidTraceContext", why, arena, ep, err);
    }
    dt_status st = build(item, past_tally, result, arena, ep, err);
    if (st != DT_OK || dt_runtime_status_is_terminal(ep->status))
        return st;
    /* an execution that goes on may not keep more than the hub's history cap */
    size_t bytes = history_bytes(hub, item, ep), max = limits_history_max(hub);
    if (bytes <= max)
        return DT_OK;
    snprintf(why, sizeof why,
             "the history of execution '%s' would hold %zu bytes of payloads, over the history "
             "size limit of %zu bytes (DT_HISTORY_MAX, or the hub's max_history_bytes)",
             item->state.execution_id ? item->state.execution_id : "", bytes, max);
    return build_failed(item, past_tally, HISTORY_TOO_LARGE, why, arena, ep, err);
}
