/* dispatch.c — handing out work: leasing (with a wait for new work that wakes on local
 * changes and polls for changes made by other processes), completing and abandoning work
 * items. The leases of what is in flight are leases.c's; running work in-process on an
 * executor is run.c's. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define POLL_MS 50
#define IDLE_POLL_MS 1000   /* a watched store's takers: see store_worth_asking */
#define UNSEEN_RETRY_MS 50  /* a start a lease did not see: looked at again this soon, */
#define UNSEEN_HOLD_MS 1000 /* and at the latest this late (a terminate may come meanwhile) */

/* ---- orchestration work items ------------------------------------------------------------ */

static bool has_started(const dt_orch_item *item)
{
    for (size_t i = 0; i < item->n_past; i++)
        if (item->past[i].type == DT_EVENT_EXECUTION_STARTED)
            return true;
    for (size_t i = 0; i < item->n_incoming; i++)
        if (item->incoming[i].type == DT_EVENT_EXECUTION_STARTED)
            return true;
    return false;
}

/* discard: consume the messages of an instance that cannot take them (it has finished, or
 * never started) without running any code. Messages to a finished instance are dropped, as
 * in the Durable Task Framework. discard_sending sends the N messages at M as it does. */
static dt_status discard_sending(dt_hub *hub, dt_orch_item *item, const dt_message *m,
                                 size_t n, dt_error *err)
{
    dt_commit c = {.kind = DT_COMMIT_EPISODE};
    dt_episode *ep = &c.u.episode;
    ep->item = item;
    ep->status = item->state.status;
    ep->output = item->state.output;
    ep->custom_status = item->state.custom_status;
    ep->failure = item->state.failure;
    ep->completed_at = item->state.completed_at;
    ep->messages = m;
    ep->n_messages = n;
    return hub_commit(hub, &c, err);
}

static dt_status discard(dt_hub *hub, dt_orch_item *item, dt_error *err)
{
    return discard_sending(hub, item, NULL, 0, err);
}

/* current_execution: the execution the new events are for: a new ExecutionStarted's (the
 * first run, or after continue-as-new), else the row's. */
static const char *current_execution(const dt_orch_item *item)
{
    for (size_t i = item->n_incoming; i-- > 0;)
        if (item->incoming[i].type == DT_EVENT_EXECUTION_STARTED)
            return item->incoming[i].execution_id;
    return item->state.execution_id;
}

/* rewind_pending: does ITEM's history end its run (ExecutionCompleted)? Then a rewind's
 * request (dt_hub_rewind made the row Running already) is still to be applied. */
static bool rewind_pending(const dt_orch_item *item)
{
    for (size_t i = item->n_past; i-- > 0;)
        if (item->past[i].type == DT_EVENT_EXECUTION_COMPLETED)
            return true;
    return false;
}

/* The order of an episode's new events, as the SDKs need it: the OrchestratorStarted, the new
 * generation's ExecutionStarted (a start, or a continue-as-new), the events carried over to
 * it (they carry its execution id: episode.c), then everything else in arrival order. An
 * SDK does not resume a generation whose ExecutionStarted comes after one of its events,
 * and messages that waited in the inbox during the continue-as-new arrived before the
 * generation they belong to was even started. */
enum { RANK_STARTED, RANK_CARRIED, RANK_REST, N_RANKS };

static int rank_of(const dt_event *e, const char *exec)
{
    if (e->type == DT_EVENT_EXECUTION_STARTED)
        return RANK_STARTED;
    if (e->type == DT_EVENT_EVENT_RAISED && e->execution_id && exec &&
        strcmp(e->execution_id, exec) == 0)
        return RANK_CARRIED;
    return RANK_REST;
}

/* hub_begin_episode: put the episode's OrchestratorStarted (its time is the orchestration time
 * of the episode, committed as it is) and the new events in their order (above), and drop
 * what the worker must not see: what earlier executions left behind (results and timers of
 * the run before a continue-as-new) and results that history already has (see
 * episode_is_duplicate). Dropped messages are still consumed at commit. */
dt_status hub_begin_episode(dt_hub *hub, dt_orch_item *item)
{
    const tally *past_tally = cache_tally(hub, item);
    dt_event *in = dt_arena_alloc(item->arena, (item->n_incoming + 1) * sizeof *in);
    if (in == NULL)
        return DT_ERR_NOMEM;
    const char *exec = current_execution(item);
    size_t n = 0;
    dt_event_init(&in[n++], DT_EVENT_ORCHESTRATOR_STARTED, dt_now());
    for (int rank = 0; rank < N_RANKS; rank++) {
        for (size_t i = 0; i < item->n_incoming; i++) {
            const dt_event *e = &item->incoming[i];
            if (rank_of(e, exec) != rank)
                continue;
            bool stale = e->type != DT_EVENT_EXECUTION_STARTED && e->execution_id && exec &&
                         strcmp(e->execution_id, exec) != 0;
            /* a client's rewind finds the failed run's history (take_orchestration); one
             * that finds it rewound already (a second rewind) has nothing to do. The hub's
             * own wake-up after a rewind carries the new execution and goes through, as does
             * a rewound parent's word to a child still running: it names the run the child
             * reports to from then on (episode.c, parent_now). */
            stale |= e->type == DT_EVENT_EXECUTION_REWOUND && e->execution_id == NULL &&
                     !rewind_pending(item) && e->parent_instance_id == NULL;
            bool duplicate = dt_event_is_completion(e->type) &&
                             episode_is_duplicate(past_tally, item->past, item->n_past, in, n,
                                                 e->task_id);
            if (!stale && !duplicate)
                in[n++] = *e;
        }
    }
    assert(n <= item->n_incoming + 1);
    item->incoming = in;
    item->n_incoming = n;
    return DT_OK;
}

static const dt_event *find_incoming(const dt_orch_item *item, dt_event_type type)
{
    for (size_t i = 0; i < item->n_incoming; i++)
        if (item->incoming[i].type == type)
            return &item->incoming[i];
    return NULL;
}


/* unspeculate: D, a speculative episode that failed other than by its activity's lease, goes
 * to the committer again as the activity result alone, as it would have gone without
 * speculation: an episode the store refuses (a bug, or data it cannot keep) must not take
 * the result down with it, or the activity would run again after its lease, and fail the
 * same way, for ever. True when D went (it is the committer's again). */
static bool unspeculate(done_item *d)
{
    const dt_episode *ep = &d->c.u.episode;
    if (!spec_resent(&d->c))
        return false;
    dt_log(DT_LOG_WARN, ep->item->instance_id,
           "speculative episode not committed (%s): the result of activity task %d goes alone",
           dt_strerror(d->c.result), (int)ep->consumes->item->task_id);
    dt_activity_done done = *ep->consumes;   /* in d->arena, which stays */
    dt_orch_item_free(d->orch);
    d->orch = NULL;
    memset(&d->c, 0, sizeof d->c);
    d->c.kind = DT_COMMIT_ACTIVITY;
    d->c.u.activity = done;
    hub_commit_done(d->hub, d);
    return true;
}

/* STORE_RETRY_US: an episode the store had no room for (or the hub no memory, JSON's bound
 * included) goes back to be handed out again after this: not when its lease runs out, so a
 * terminate waiting behind it (what ends an instance has room kept for it) is not held up
 * for a lease's time; not at once, when it would be refused again. */
#define STORE_RETRY_US INT64_C(1000000)

static dt_status abandon_orchestration(dt_hub *hub, const dt_orch_item *item, dt_time retry_at,
                                       dt_error *err);

/* retry_later: ITEM's episode was not committed (RESULT): for want of room or memory, it is
 * handed out again after a while (true); ITEM stays the caller's. */
static bool retry_later(dt_hub *hub, const dt_orch_item *item, dt_status result)
{
    if (result != DT_ERR_NO_SPACE && result != DT_ERR_NOMEM)
        return false;
    abandon_orchestration(hub, item, dt_now() + STORE_RETRY_US, NULL);
    return true;
}

static void done_free(commit_req *req)
{
    done_item *d = (done_item *)req;
    if (unspeculate(d))
        return;
    dt_error err = {0};
    dt_status st = d->done ? commit_outcome(&d->c, &err) : DT_OK;
    if (d->orch && d->c.kind == DT_COMMIT_EPISODE)
        retry_later(d->hub, d->orch, d->c.result);
    dt_arena_free(d->arena);
    dt_orch_item_free(d->orch);
    dt_activity_item_free(d->act);
    if (d->done)
        d->done(d->done_arg, st, &err);
    free(d);
}

/* done_parked: may D's result wait for room (commit.c parks it)? Without a requester to ask
 * (the in-process loops), it may. */
static bool done_parked(commit_req *req)
{
    done_item *d = (done_item *)req;
    return d->waits == NULL || d->waits(d->done_arg);
}

void hub_commit_done(dt_hub *hub, done_item *d)
{
    d->hub = hub;
    d->req.commit = &d->c;
    d->req.finish = done_free;
    d->req.on_park = done_parked;
    hub_commit_async(hub, &d->req);
}

/* give_back_taken: ITEM, taken and attached but not to be committed, goes back to the store
 * for redelivery; ITEM stays the caller's. */
static void give_back_taken(dt_hub *hub, const dt_orch_item *item)
{
    lease_untrack(hub, item);
    cache_detach(hub, item, NULL);
    dt_store_abandon_orchestration(hub->store, item, 0, NULL);
    hub_notify(hub);
}

/* complete_orchestration: build ITEM's episode from RESULT and commit it; ITEM stays the
 * caller's. */
static dt_status complete_orchestration(dt_hub *hub, const dt_orch_item *item,
                                        const dt_orch_result *result, dt_error *err)
{
    dt_arena *arena = dt_arena_new();
    dt_commit c = {.kind = DT_COMMIT_EPISODE};
    dt_status st = arena ? episode_build(hub, item, result, arena, &c.u.episode, err)
                         : dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    if (st == DT_OK) {
        st = hub_commit(hub, &c, err);   /* the committer untracks and updates the cache */
        retry_later(hub, item, c.result);
    } else if (!retry_later(hub, item, st)) {
        give_back_taken(hub, item);
    }
    dt_arena_free(arena);
    return st;
}

/* parent_rewind: the last ExecutionRewound among ITEM's new events that a rewound parent
 * sent (it names the parent's newest run), or NULL */
static const dt_event *parent_rewind(const dt_orch_item *item)
{
    for (size_t i = item->n_incoming; i-- > 0;)
        if (item->incoming[i].type == DT_EVENT_EXECUTION_REWOUND &&
            item->incoming[i].parent_instance_id)
            return &item->incoming[i];
    return NULL;
}

/* report_again: a child that finished (Completed, Terminated) after its parent failed sent
 * its outcome to the run that failed; the rewound parent (REW names its new run and task)
 * gets it again. Nothing of the child runs again. */
static dt_status report_again(dt_hub *hub, dt_orch_item *item, const dt_event *rew,
                              dt_error *err)
{
    bool ok = item->state.status == DT_STATUS_COMPLETED;
    dt_message *m = dt_arena_alloc(item->arena, sizeof *m);
    const dt_failure *f = item->state.failure;
    if (!ok && f == NULL)
        f = child_terminated(item->arena, item->instance_id, item->state.output);
    if (m == NULL || (!ok && f == NULL)) {
        give_back_taken(hub, item);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    memset(m, 0, sizeof *m);
    m->instance_id = rew->parent_instance_id;
    m->execution_id = rew->parent_execution_id;
    dt_event_init(&m->event, ok ? DT_EVENT_SUB_ORCHESTRATION_COMPLETED
                                : DT_EVENT_SUB_ORCHESTRATION_FAILED, dt_now());
    m->event.task_id = rew->parent_task_id;
    m->event.result = ok ? item->state.output : NULL;
    m->event.failure = ok ? NULL : f;
    return discard_sending(hub, item, m, 1, err);
}

/* rewind_instance: a Failed instance asked to rewind gets its history rewritten (rewind.c)
 * and a new execution, without running its code; the wake-up the episode sends itself runs
 * it. */
static dt_status rewind_instance(dt_hub *hub, dt_orch_item *item, const dt_event *request,
                                 dt_error *err)
{
    dt_action a = {.type = DT_ACTION_REWIND, .input = request->input};
    dt_event *h = NULL;
    dt_status st = rewind_history(item, request, item->arena, &h, &a.n_carryover);
    if (st == DT_ERR_CORRUPT) {   /* nothing to run again: it stays failed, saying why */
        dt_action f = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = -1,
                       .status = DT_STATUS_FAILED};
        f.failure = dt_failure_new(item->arena, "InvalidRewind", "the instance cannot be "
                                   "rewound: its history has no ExecutionStarted");
        dt_orch_result res = {.actions = &f, .n_actions = 1};
        if (f.failure)
            return complete_orchestration(hub, item, &res, err);
        st = DT_ERR_NOMEM;
    }
    if (st != DT_OK) {
        give_back_taken(hub, item);
        return dt_error_set(err, st, "rewind of '%s': out of memory", item->instance_id);
    }
    a.carryover = h;
    dt_orch_result res = {.actions = &a, .n_actions = 1, .custom_status = item->state.custom_status};
    return complete_orchestration(hub, item, &res, err);
}

/* terminate: an ExecutionTerminated ends the instance without running its code. */
static dt_status terminate(dt_hub *hub, dt_orch_item *item, const dt_event *t, dt_error *err)
{
    dt_action a = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = -1,
                   .status = DT_STATUS_TERMINATED, .result = t->input, .recurse = t->recurse};
    dt_orch_result res = {.actions = &a, .n_actions = 1, .custom_status = item->state.custom_status};
    return complete_orchestration(hub, item, &res, err);
}

/* store_batch: how many items of KIND one lease from the store may take: one for the taker,
 * the rest for the ring while it has room. */
#define STORE_BATCH 32
static size_t store_batch(dt_hub *hub, int kind)
{
    size_t room = ready_room(hub, kind, dt_now());
    return 1 + (room < STORE_BATCH - 1 ? room : STORE_BATCH - 1);
}

/* store_worth_asking: should this taker look in the store for work of KIND (0 orchestration,
 * 1 activity, 2 entity)? Only when something may be there that commits did not lease for the rings:
 * the store version moved, or POLL_MS passed (other processes' work, timers coming due).
 * Each taker thread keeps its own view. */
static _Thread_local uint64_t seen_store[3];
static _Thread_local dt_time polled_at[3];
static _Thread_local bool more_in_store[3];   /* the last lease took all it could */

static bool store_worth_asking(dt_hub *hub, int kind)
{
    uint64_t v = atomic_load(&hub->store_version);
    dt_time now = dt_now(), due = atomic_load(&hub->next_due);
    /* a watched store wakes the takers itself (store_version): then the poll is for work
     * coming due, at its time, and, once a second, for leases other nodes let run out */
    dt_time every = (dt_time)(hub->watched ? IDLE_POLL_MS : POLL_MS) * 1000;
    bool came_due = hub->watched && due > 0 && now >= due;
    if (!more_in_store[kind] && v == seen_store[kind] && now - polled_at[kind] < every &&
        !came_due)
        return false;
    seen_store[kind] = v;
    polled_at[kind] = now;
    return true;
}

/* found_nothing: a taker's look in the store found nothing: on a watched store, learn when the
 * next work queued for later comes due, once per change of the store (a commit here, a
 * NOTIFY) or per second, whoever asks: what changed may have queued something for later (a
 * timer, a retry), and nothing else may have. */
static void found_nothing(dt_hub *hub)
{
    if (!hub->watched)
        return;
    uint64_t v = atomic_load(&hub->store_version), seen = atomic_load(&hub->due_version);
    dt_time now = dt_now();
    if ((v == seen && now - atomic_load(&hub->due_checked_at) < (dt_time)IDLE_POLL_MS * 1000) ||
        !atomic_compare_exchange_strong(&hub->due_version, &seen, v))
        return;
    atomic_store(&hub->due_checked_at, now);
    dt_time due = 0;
    if (dt_store_next_due(hub->store, now, &due, NULL) == DT_OK)
        atomic_store(&hub->next_due, due);
}

/* start_unseen: ITEM is a live instance not yet started whose ExecutionStarted this lease did
 * not see: its creator's clock is ahead of ours (another node), or the lease read the clock
 * before the start was made. Its messages (an event raised at once) wait for the start. */
static bool start_unseen(const dt_orch_item *item)
{
    return item->state.status == DT_STATUS_PENDING && !has_started(item);
}

/* take_orchestration: ITEM is leased and its lease tracked. Attach its history and begin the
 * episode: *OUT is the item to run, or NULL if the hub dealt with it itself (messages to a
 * finished instance dropped, a terminate applied). ITEM is the caller's no longer. */
static dt_status take_orchestration(dt_hub *hub, dt_orch_item *item, dt_orch_item **out,
                                    dt_error *err)
{
    /* a finished execution's messages are dropped without its history (the cache let it go
     * with the last episode): only a rewind request needs it */
    bool history = !dt_runtime_status_is_terminal(item->state.status) ||
                   find_incoming(item, DT_EVENT_EXECUTION_REWOUND) != NULL;
    dt_status st = history ? cache_attach(hub, item, err) : DT_OK;
    if (st == DT_OK && (st = hub_begin_episode(hub, item)) != DT_OK) {
        if (history)
            cache_detach(hub, item, NULL);
        dt_error_set(err, st, "out of memory");
    }
    if (st != DT_OK) {
        lease_untrack(hub, item);
        dt_store_abandon_orchestration(hub->store, item, 0, NULL);
        dt_orch_item_free(item);
        return st;
    }
    const dt_event *term = find_incoming(item, DT_EVENT_EXECUTION_TERMINATED);
    const dt_event *rew = find_incoming(item, DT_EVENT_EXECUTION_REWOUND);
    bool finished = dt_runtime_status_is_terminal(item->state.status);
    if (rew && rew->execution_id == NULL && rewind_pending(item)) {   /* still to do */
        const dt_event *from_parent = parent_rewind(item);
        dt_event req = *rew;   /* a parent's newest run, whoever asked first */
        if (from_parent) {
            req.parent_instance_id = from_parent->parent_instance_id;
            req.parent_execution_id = from_parent->parent_execution_id;
            req.parent_task_id = from_parent->parent_task_id;
        }
        /* a child that ended other than by failing sends its outcome again */
        bool reports = from_parent && (item->state.status == DT_STATUS_COMPLETED ||
                                       item->state.status == DT_STATUS_TERMINATED);
        st = reports ? report_again(hub, item, from_parent, err)
                     : rewind_instance(hub, item, &req, err);
    } else if (!finished && term == NULL && start_unseen(item)) {
        /* again when the start is visible (not at once if it already is to the clock: a
         * lease that could not see it would spin), or within a second: a terminate that
         * comes meanwhile must not wait for a start scheduled far off */
        dt_time at = item->state.scheduled_start > item->state.created_at
                         ? item->state.scheduled_start
                         : item->state.created_at;
        dt_time now = dt_now();
        dt_time soon = now + (dt_time)UNSEEN_RETRY_MS * 1000;
        dt_time latest = now + (dt_time)UNSEEN_HOLD_MS * 1000;
        st = abandon_orchestration(hub, item, at < soon ? soon : at > latest ? latest : at,
                                   err);
    } else if (finished || (term == NULL && !has_started(item))) {
        st = discard(hub, item, err);
    } else if (term) {
        st = terminate(hub, item, term, err);
    } else {
        *out = item;
        return DT_OK;
    }
    dt_orch_item_free(item);
    return st;
}

/* lease_orchestration: one item, from what commits leased for this hub or else from the
 * store, its lease tracked; *OUT NULL when there is no work. */
static dt_status lease_orchestration(dt_hub *hub, const dt_name_filter *names,
                                     dt_orch_item **out, dt_error *err)
{
    *out = ready_take_orch(hub, names);
    if (*out || !store_worth_asking(hub, 0))
        return DT_OK;
    /* take a few at once: what this taker does not run now goes to the ring for the others
     * (timers coming due together, a backlog after a restart) */
    dt_orch_item *items[STORE_BATCH];
    size_t n = 0, max = store_batch(hub, 0);
    dt_status st = dt_store_lease_orchestrations(hub->store, hub->owner, dt_now(),
                                                 hub->lease_us, max, names, items, &n, err);
    more_in_store[0] = st == DT_OK && n == max;
    if (st == DT_OK && n == 0)
        found_nothing(hub);
    if (st != DT_OK || n == 0)
        return st;
    ready_push(hub, items + 1, n - 1, NULL, 0);
    *out = items[0];
    if (lease_track(hub, *out, NULL) != DT_OK) {
        dt_store_abandon_orchestration(hub->store, *out, 0, NULL);
        dt_orch_item_free(*out);
        *out = NULL;
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    return DT_OK;
}

/* wait_for_work: sleep until work may be there for a taker of WANT (DT_WORK_*) with names
 * ON and AN (NULL: any), at most LEFT_MS and POLL_MS, or BELL (NULL: none) rings. Returns the
 * kind of work that woke it (DT_WORK_ORCHESTRATION or DT_WORK_ACTIVITY), 0: then it looks at
 * every kind, or -1: its bell rang. */
static int wait_for_work(dt_hub *hub, uint64_t seen, int64_t left_ms, int want,
                         const dt_name_filter *on, const dt_name_filter *an, dt_hub_bell *bell)
{
    int64_t ms = left_ms < POLL_MS ? left_ms : POLL_MS;
    sleeper s = {.want = want, .orch = on, .act = an, .bell = bell};
    int ring = hub_wait_work(hub, seen, ms, &s);
    return ring == 0    ? DT_WORK_ORCHESTRATION
           : ring == 1  ? DT_WORK_ACTIVITY
           : ring == -2 ? -1
                        : 0;
}

static dt_status next_orchestration(dt_hub *hub, int64_t timeout_ms,
                                    const dt_name_filter *names, dt_orch_item **out,
                                    dt_error *err)
{
    *out = NULL;
    dt_time deadline = dt_now() + (timeout_ms > 0 ? timeout_ms : 0) * 1000;
    for (;;) {
        ready_asked(hub, 0, names);
        uint64_t seen = hub_version(hub);
        dt_orch_item *item = NULL;
        dt_status st = lease_orchestration(hub, names, &item, err);
        if (st != DT_OK)
            return st;
        if (item) {
            st = take_orchestration(hub, item, out, err);
            if (*out || (st != DT_OK && st != DT_ERR_LEASE_LOST))
                return st;
            continue;
        }
        dt_time now = dt_now();
        if (now >= deadline)
            return DT_OK;
        int64_t left_ms = (deadline - now) / 1000 + 1;
        wait_for_work(hub, seen, left_ms, DT_WORK_ORCHESTRATION, names, NULL, NULL);
    }
}

bool hub_end_terminated(dt_hub *hub)
{
    /* a filter of no names: the rings and the store give it only instances with a terminate
     * waiting (orch_match, the stores' searches), and take_orchestration ends those itself */
    static const dt_name_filter terminates_only = {NULL, 0, NULL};
    dt_orch_item *item = NULL, *run = NULL;
    dt_error err = {0};
    dt_status st = lease_orchestration(hub, &terminates_only, &item, &err);
    bool took = st == DT_OK && item != NULL;
    if (took)
        st = take_orchestration(hub, item, &run, &err);   /* ITEM is not ours after it */
    if (run) {   /* its terminate was gone by the lease (another node ended it): not ours */
        give_back_taken(hub, run);
        dt_orch_item_free(run);
    }
    if (st != DT_OK && st != DT_ERR_LEASE_LOST)
        dt_log(DT_LOG_WARN, NULL, "ending a terminated instance: %s", err.message);
    return took && st == DT_OK && run == NULL;
}

dt_status dt_hub_next_orchestration(dt_hub *hub, int64_t timeout_ms, dt_orch_item **out,
                                    dt_error *err)
{
    return next_orchestration(hub, timeout_ms, NULL, out, err);
}

void dt_hub_orch_request(const dt_orch_item *item, dt_orch_request *out)
{
    *out = (dt_orch_request){.instance_id = item->instance_id,
                             .execution_id = current_execution(item),
                             .past = item->past,
                             .n_past = item->n_past,
                             .new_events = item->incoming,
                             .n_new = item->n_incoming,
                             .span_id = item->state.span_id,
                             .span_start = item->state.span_start};
}

dt_status dt_hub_complete_orchestration(dt_hub *hub, dt_orch_item *item,
                                        const dt_orch_result *result, dt_error *err)
{
    dt_status st = complete_orchestration(hub, item, result, err);
    dt_orch_item_free(item);
    return st;
}

void dt_hub_complete_orchestration_async(dt_hub *hub, dt_orch_item *item,
                                         const dt_orch_result *result, dt_hub_done_fn done,
                                         void *arg)
{
    dt_error err = {0};
    done_item *d = calloc(1, sizeof *d);
    dt_arena *arena = dt_arena_new();
    dt_status st = d && arena ? episode_build(hub, item, result, arena, &d->c.u.episode, &err)
                              : dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
    if (st != DT_OK) {
        if (!retry_later(hub, item, st))
            give_back_taken(hub, item);
        dt_orch_item_free(item);
        dt_arena_free(arena);
        free(d);
        done(arg, st, &err);
        return;
    }
    d->c.kind = DT_COMMIT_EPISODE;
    d->arena = arena;
    d->orch = item;
    d->done = done;
    d->done_arg = arg;
    hub_commit_done(hub, d);
}

/* abandon_orchestration: give ITEM's lease up, for redelivery from RETRY_AT (0: at once);
 * ITEM stays the caller's. */
static dt_status abandon_orchestration(dt_hub *hub, const dt_orch_item *item, dt_time retry_at,
                                       dt_error *err)
{
    lease_untrack(hub, item);
    cache_detach(hub, item, NULL);
    dt_status st = dt_store_abandon_orchestration(hub->store, item, retry_at, err);
    hub_notify(hub);
    return st;
}

/* park_poison: ITEM has now been given back without a result N times in a row; at
 * DT_POISON_DELIVERIES it is a poison item and its instance fails instead (PoisonWorkItem),
 * counted and logged, rather than be delivered for ever. True (and *ST set) when it was parked;
 * ITEM stays the caller's. */
static bool park_poison(dt_hub *hub, const dt_orch_item *item, int n, dt_status *st,
                        dt_error *err)
{
    if (n < DT_POISON_DELIVERIES)
        return false;
    dt_arena *a = dt_arena_new();
    dt_action fail = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = -1,
                      .status = DT_STATUS_FAILED};
    fail.failure = a ? dt_failure_new(a, POISON_WORK_ITEM,
                                      "delivered %d times without a result (abandoned by its "
                                      "worker, or the worker's stream broke while it held it); "
                                      "parked after DT_POISON_DELIVERIES (%d)",
                                      n, DT_POISON_DELIVERIES)
                     : NULL;
    if (fail.failure == NULL) {   /* out of memory: given back as usual, parked next time */
        dt_arena_free(a);
        return false;
    }
    dt_log(DT_LOG_WARN, item->instance_id, "poison work item: %s", fail.failure->message);
    metrics_poison(hub->metrics);
    dt_orch_result res = {.actions = &fail, .n_actions = 1};
    *st = complete_orchestration(hub, item, &res, err);
    dt_arena_free(a);
    return true;
}

dt_status dt_hub_abandon_orchestration(dt_hub *hub, dt_orch_item *item, dt_error *err)
{
    dt_time now = dt_now();
    int n = backoff_note(hub, item->instance_id, now);
    dt_status st;
    if (!park_poison(hub, item, n, &st, err))
        st = abandon_orchestration(hub, item, now + backoff_after(n), err);
    dt_orch_item_free(item);
    return st;
}

dt_status dt_hub_retry_orchestration(dt_hub *hub, dt_orch_item *item, dt_error *err)
{
    dt_status st = abandon_orchestration(hub, item, dt_now() + STORE_RETRY_US, err);
    dt_orch_item_free(item);
    return st;
}

dt_status dt_hub_release_orchestration(dt_hub *hub, dt_orch_item *item, dt_error *err)
{
    /* its worker went away holding it: any other may have it at once, but it counts as a
     * delivery without a result (a work item that breaks every stream it is sent on) */
    int n = backoff_note(hub, item->instance_id, dt_now());
    dt_status st;
    if (!park_poison(hub, item, n, &st, err))
        st = abandon_orchestration(hub, item, 0, err);
    dt_orch_item_free(item);
    return st;
}

/* ---- activity work items -------------------------------------------------------------------- */

static dt_status lease_activity(dt_hub *hub, const dt_name_filter *names,
                                 dt_activity_item **out, dt_error *err)
{
    *out = ready_take_act(hub, names);
    if (*out || !store_worth_asking(hub, 1))
        return DT_OK;
    dt_activity_item *items[STORE_BATCH];
    size_t n = 0, max = store_batch(hub, 1);
    dt_status st = dt_store_lease_activities(hub->store, hub->owner, dt_now(), hub->lease_us,
                                             max, names, items, &n, err);
    more_in_store[1] = st == DT_OK && n == max;
    if (st == DT_OK && n == 0)
        found_nothing(hub);
    if (st != DT_OK || n == 0)
        return st;
    for (size_t i = 0; i < n; i++)
        if (items[i]->delivery_count > 1) {
            metrics_redelivered(hub->metrics);
            dt_log(DT_LOG_INFO, items[i]->instance_id,
                   "activity '%s' (task %d) delivered again (delivery %d): a lease expired",
                   items[i]->name, items[i]->task_id, items[i]->delivery_count);
        }
    ready_push(hub, NULL, 0, items + 1, n - 1);
    dt_activity_item *it = *out = items[0];
    if (lease_track(hub, NULL, it) != DT_OK) {
        dt_store_abandon_activity(hub->store, it, 0, NULL);
        dt_activity_item_free(it);
        *out = NULL;
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    return DT_OK;
}

dt_status hub_next_activity(dt_hub *hub, int64_t timeout_ms, const dt_name_filter *names,
                            dt_activity_item **out, dt_error *err)
{
    *out = NULL;
    dt_time deadline = dt_now() + (timeout_ms > 0 ? timeout_ms : 0) * 1000;
    for (;;) {
        ready_asked(hub, 1, names);
        uint64_t seen = hub_version(hub);
        dt_status st = lease_activity(hub, names, out, err);
        if (st != DT_OK || *out)
            return st;
        dt_time now = dt_now();
        if (now >= deadline)
            return DT_OK;
        int64_t left_ms = (deadline - now) / 1000 + 1;
        wait_for_work(hub, seen, left_ms, DT_WORK_ACTIVITY, NULL, names, NULL);
    }
}

dt_status dt_hub_next_activity(dt_hub *hub, int64_t timeout_ms, dt_activity_item **out,
                               dt_error *err)
{
    return hub_next_activity(hub, timeout_ms, NULL, out, err);
}

void hub_activity_commit(dt_commit *c, const dt_activity_item *item, const char *result,
                         const dt_failure *failure)
{
    memset(c, 0, sizeof *c);
    c->kind = DT_COMMIT_ACTIVITY;
    dt_activity_done *d = &c->u.activity;
    d->item = item;
    d->message.instance_id = item->instance_id;
    d->message.execution_id = item->execution_id;
    dt_event_init(&d->message.event,
                  failure ? DT_EVENT_TASK_FAILED : DT_EVENT_TASK_COMPLETED, dt_now());
    d->message.event.task_id = item->task_id;
    d->message.event.result = failure ? NULL : result;
    d->message.event.failure = failure;
}

void dt_hub_activity_request(const dt_activity_item *item, dt_activity_request *out)
{
    *out = (dt_activity_request){item->instance_id, item->execution_id, item->task_id,
                                 item->name,        item->version,       item->input,
                                 item->trace_parent, item->trace_state,  item->tags};
}

/* oversized_outcome: in place of an activity outcome over DT_PAYLOAD_MAX, a PayloadTooLarge
 * failure in ARENA saying so (the activity fails, its orchestration goes on and sees why);
 * FAILURE itself when the outcome fits, NULL when out of memory. *RESULT is cleared when
 * replaced. */
static const dt_failure *oversized_outcome(dt_arena *arena, const char *instance_id,
                                           int32_t task_id, const char **result,
                                           const dt_failure *failure, bool *replaced)
{
    char why[200];
    *replaced = limits_activity_over(*result, failure, why, sizeof why);
    if (!*replaced)
        return failure;
    dt_log(DT_LOG_WARN, instance_id, "activity task %d failed: %s", (int)task_id, why);
    *result = NULL;
    return dt_failure_new(arena, PAYLOAD_TOO_LARGE, "%s", why);
}

void dt_hub_complete_activity_async(dt_hub *hub, dt_activity_item *item, const char *result,
                                    const dt_failure *failure, dt_hub_done_fn done,
                                    dt_hub_waits_fn waits, void *arg)
{
    dt_error err = {0};
    bool replaced;
    failure = oversized_outcome(item->arena, item->instance_id, item->task_id, &result, failure,
                                &replaced);
    done_item *d = replaced && failure == NULL ? NULL : calloc(1, sizeof *d);
    if (d == NULL) {
        dt_hub_abandon_activity(hub, item, NULL);
        done(arg, dt_error_set(&err, DT_ERR_NOMEM, "out of memory"), &err);
        return;
    }
    hub_activity_commit(&d->c, item, result, failure);
    d->act = item;
    d->done = done;
    d->waits = waits;
    d->done_arg = arg;
    hub_commit_done(hub, d);
}

dt_status dt_hub_complete_activity(dt_hub *hub, dt_activity_item *item, const char *result,
                                   const dt_failure *failure, dt_error *err)
{
    bool replaced;
    failure = oversized_outcome(item->arena, item->instance_id, item->task_id, &result, failure,
                                &replaced);
    if (replaced && failure == NULL) {
        dt_hub_abandon_activity(hub, item, NULL);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    dt_commit c;
    hub_activity_commit(&c, item, result, failure);
    dt_status st = hub_commit(hub, &c, err);   /* the committer stops renewing the lease */
    dt_activity_item_free(item);
    return st;
}

/* abandon_activity: give ITEM's lease up, for redelivery from RETRY_AT (0: at once); ITEM
 * stays the caller's. */
static dt_status abandon_activity(dt_hub *hub, const dt_activity_item *item, dt_time retry_at,
                                  dt_error *err)
{
    lease_untrack(hub, item);
    dt_status st = dt_store_abandon_activity(hub->store, item, retry_at, err);
    hub_notify(hub);
    return st;
}

dt_status dt_hub_abandon_activity(dt_hub *hub, dt_activity_item *item, dt_error *err)
{
    /* the store counts deliveries: the n-th in a row waits as the n-th abandon */
    dt_time retry_at = dt_now() + backoff_after(item->delivery_count);
    dt_status st = abandon_activity(hub, item, retry_at, err);
    dt_activity_item_free(item);
    return st;
}

dt_status dt_hub_release_activity(dt_hub *hub, dt_activity_item *item, dt_error *err)
{
    dt_status st = abandon_activity(hub, item, 0, err);
    dt_activity_item_free(item);
    return st;
}

dt_status dt_hub_deliver_activity_result(dt_hub *hub, const char *instance_id,
                                         const char *execution_id, int32_t task_id,
                                         const char *result, const dt_failure *failure,
                                         dt_error *err)
{
    dt_arena *arena = dt_arena_new();
    if (arena == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    bool replaced;
    failure = oversized_outcome(arena, instance_id, task_id, &result, failure, &replaced);
    if (replaced && failure == NULL) {
        dt_arena_free(arena);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    dt_message m = {.instance_id = instance_id, .execution_id = execution_id};
    dt_event_init(&m.event, failure ? DT_EVENT_TASK_FAILED : DT_EVENT_TASK_COMPLETED, dt_now());
    m.event.task_id = task_id;
    m.event.result = failure ? NULL : result;
    m.event.failure = failure;
    dt_status st = dt_store_send_message(hub->store, &m, err);
    dt_arena_free(arena);
    if (st == DT_OK) {
        ready_forget(hub, instance_id);   /* as for any message: the next lease sees it */
        hub_notify(hub);
    }
    return st;
}

/* ---- entity work items ---------------------------------------------------------------------- */

/* lease_entity: one entity step for a worker, from the store (commits lease no entities),
 * its lease tracked; *OUT NULL when there is none. A step the hub takes itself (a lock
 * request) is taken here and the search goes on. */
static dt_status lease_entity(dt_hub *hub, const dt_name_filter *names, dt_entity_item **out,
                              dt_error *err)
{
    *out = NULL;
    if (!store_worth_asking(hub, 2))
        return DT_OK;
    for (int round = 0; round < STORE_BATCH; round++) {
        dt_entity_item *item = NULL;
        size_t n = 0;
        dt_status st = dt_store_lease_entities(hub->store, hub->owner, dt_now(), hub->lease_us,
                                               1, names, &item, &n, err);
        more_in_store[2] = st == DT_OK && n == 1;
        if (st == DT_OK && n == 0)
            found_nothing(hub);
        if (st != DT_OK || n == 0)
            return st;
        if (lease_track_entity(hub, item) != DT_OK) {
            dt_store_abandon_entity(hub->store, item, 0, NULL);
            dt_entity_item_free(item);
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        }
        st = entity_take(hub, item, out, err);
        if (*out || (st != DT_OK && st != DT_ERR_LEASE_LOST))
            return st;
    }
    return DT_OK;
}

dt_status dt_hub_next_work(dt_hub *hub, int64_t timeout_ms, int first, int want,
                           const dt_work_filter *filter, dt_hub_bell *bell, dt_work *out,
                           dt_error *err)
{
    static const int kinds[3] = {DT_WORK_ORCHESTRATION, DT_WORK_ACTIVITY, DT_WORK_ENTITY};
    memset(out, 0, sizeof *out);
    const dt_name_filter *on = filter ? filter->orchestrations : NULL;
    const dt_name_filter *an = filter ? filter->activities : NULL;
    const dt_name_filter *en = filter ? filter->entities : NULL;
    int start = 0;
    for (int k = 0; k < 3; k++)
        if (kinds[k] == first)
            start = k + 1;
    dt_time deadline = dt_now() + (timeout_ms > 0 ? timeout_ms : 0) * 1000;
    for (int woken_for = 0;;) {
        for (int k = 0; k < 3; k++)   /* the kind whose item woke it first: it is there for it */
            if (kinds[k] == woken_for)
                start = k;
        uint64_t seen = hub_version(hub);
        for (int i = 0; i < 3; i++) {
            int kind = kinds[(start + i) % 3];
            if (!(want & kind))
                continue;
            dt_status st = kind == DT_WORK_ACTIVITY ? hub_next_activity(hub, 0, an, &out->act, err)
                           : kind == DT_WORK_ORCHESTRATION
                               ? next_orchestration(hub, 0, on, &out->orch, err)
                               : lease_entity(hub, en, &out->ent, err);
            if (st != DT_OK || out->act || out->orch || out->ent)
                return st;
        }
        dt_time now = dt_now();
        if (now >= deadline)
            return DT_OK;
        int64_t left_ms = (deadline - now) / 1000 + 1;
        /* entity work is never queued in the rings: it wakes takers as a change in the store */
        woken_for = wait_for_work(hub, seen, left_ms, want, on, an, bell);
        if (woken_for < 0)   /* the bell: the caller looks at what it wants again */
            return DT_OK;
    }
}
