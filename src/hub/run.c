/* run.c — running work in-process: dt_hub_run's loops take work items from the hub and run
 * them on the executor (orchestration episodes and entity batches on the orchestration loops,
 * activities on the activity loops), committing through the group commit; and the
 * speculative episodes that let an activity's result and the episode it wakes commit as one
 * step. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define TROUBLE_MS 50   /* a loop the store failed backs off this long */

static void run_one_orchestration(dt_hub *hub, dt_orch_item *item)
{
    done_item *d = calloc(1, sizeof *d);
    dt_arena *arena = dt_arena_new();
    dt_orch_result res = {0};
    dt_orch_request req;
    dt_hub_orch_request(item, &req);
    dt_error err;
    dt_status st = d && arena ? hub->ex.run_orchestration(hub->ex.data, &req, arena, &res)
                              : DT_ERR_NOMEM;
    if (st == DT_OK) {
        d->c.kind = DT_COMMIT_EPISODE;
        st = episode_build(hub, item, &res, arena, &d->c.u.episode, &err);
    }
    if (st == DT_OK) {
        d->arena = arena;
        d->orch = item;
        hub_commit_done(hub, d);
        return;
    }
    dt_hub_abandon_orchestration(hub, item, &err);
    dt_arena_free(arena);
    free(d);
}

/* run_one_entity: ITEM's batch on the executor, committed before the next item (an entity's
 * next step must see this one's state). */
static void run_one_entity(dt_hub *hub, dt_entity_item *item)
{
    dt_arena *arena = dt_arena_new();
    dt_entity_request req;
    dt_hub_entity_request(item, &req);
    dt_entity_result res;
    dt_error err;
    dt_status st = arena && req.operations
                       ? hub->ex.run_entity(hub->ex.data, &req, arena, &res)
                       : DT_ERR_NOMEM;
    if (st == DT_OK)
        dt_hub_complete_entity(hub, item, &res, &err);
    else
        dt_hub_abandon_entity(hub, item, &err);
    dt_arena_free(arena);
}

/* The orchestration loops run entity batches too, when the executor has entities. */
static void *orchestration_loop(void *arg)
{
    dt_hub *hub = arg;
    pthread_setname_np(pthread_self(), "dt-orch");
    int want = DT_WORK_ORCHESTRATION | (hub->ex.run_entity ? DT_WORK_ENTITY : 0), last = 0;
    while (atomic_load(&hub->running)) {
        dt_work work;
        dt_error err;
        if (dt_hub_next_work(hub, 100, last, want, hub->run_filter, NULL, &work, &err) != DT_OK) {
            hub_wait_change(hub, hub_version(hub), TROUBLE_MS);   /* store trouble: back off */
            continue;
        }
        if (work.orch) {
            last = DT_WORK_ORCHESTRATION;
            run_one_orchestration(hub, work.orch);
        } else if (work.ent) {
            last = DT_WORK_ENTITY;
            run_one_entity(hub, work.ent);
        }
    }
    return NULL;
}

/* ---- speculative episodes ---------------------------------------------------------------
 * An activity's result is committed to its orchestration's inbox, and the episode it wakes
 * is leased, run and committed in turn: two commits per step of a chain. When the result is
 * at hand on a loop of this hub, the hub keeps the orchestration's history (it committed its
 * last episode) with only this task open (of those history counts: activities, timers,
 * sub-orchestrations), and this hub's loops run the orchestration, the episode runs at once
 * on the activity's thread, the result its one new event, and commits with it
 * (dt_episode.consumes): one commit per step, and the result never passes through the
 * inbox. Nothing is leased for it: the commit takes the instance's lease itself, only if the
 * instance is still as the episode saw it (free, nothing in its inbox, Running, the same
 * execution and history), and otherwise commits the result alone, to the inbox, as it would have gone
 * (refused: the cached history that ran ahead is dropped, and the SDK's session, which no
 * longer matches what is stored, replays from the start at the next episode). Until then the
 * activity's own lease, renewed as before, holds the work: a crash before the commit loses
 * the result and the activity runs again, as after a crash before its result was committed
 * (and goes the old way then: a crash in the episode itself must not repeat the activity);
 * nobody hears of the episode before its commit is durable, as of any other. An episode the
 * store will not take goes again as the result alone (unspeculate). The orchestrator's code
 * runs on the activity loops then, beside the orchestration loops' (the SDK's sessions allow
 * any thread). */

/* spec_row: the instance row a speculative episode for ITEM runs on, if it may run here:
 * Running, in the execution the activity was scheduled by, of a name this hub's loops run. */
static const dt_instance_state *spec_row(dt_hub *hub, const dt_activity_item *act,
                                         dt_arena *arena)
{
    dt_instance_state *row = NULL;
    dt_error err;
    if (dt_store_get_instance(hub->store, act->instance_id, arena, &row, &err) != DT_OK)
        return NULL;
    const dt_name_filter *names = hub->run_filter ? hub->run_filter->orchestrations : NULL;
    bool ok = row->status == DT_STATUS_RUNNING && row->execution_id &&
              strcmp(row->execution_id, act->execution_id) == 0 &&
              dt_name_filter_match(names, row->name, row->version);
    return ok ? row : NULL;
}

/* speculate: D, an activity result built for the committer, made a speculative episode that
 * consumes it when it can be (see above); else D is left as it was. */
static void speculate(dt_hub *hub, done_item *d)
{
    const dt_activity_item *act = d->act;
    /* not for an activity delivered again: if its first result was lost to a crash in the
     * episode itself (code that kills the process), a second speculation would crash the
     * same way, and the activity run for ever; its result goes first, as without */
    if (!hub->speculate || !hub->run_orchs || act->execution_id == NULL ||
        act->delivery_count > 1 || !atomic_load(&hub->running))
        return;
    dt_arena *a = dt_arena_new();
    dt_orch_item *item = a ? dt_arena_alloc(a, sizeof *item) : NULL;
    dt_activity_done *done = dt_arena_alloc(d->arena, sizeof *done);
    if (item == NULL || done == NULL) {
        dt_arena_free(a);
        return;
    }
    /* locked_until: when it would end had it been leased now (the work item's time is
     * counted from here), and the claim's lease in the commit */
    *item = (dt_orch_item){.arena = a, .instance_id = act->instance_id,
                           .locked_until = dt_now() + hub->lease_us};
    item->state.execution_id = act->execution_id;
    item->lock_token = dt_arena_printf(a, "%s:s%llx", hub->owner,
                                       (unsigned long long)atomic_fetch_add(&hub->spec_seq, 1));
    if (item->lock_token == NULL || !cache_speculate(hub, item)) {
        dt_arena_free(a);
        return;
    }
    /* the history is checked out: from here it goes back with cache_detach */
    const dt_instance_state *row = spec_row(hub, act, a);
    dt_event *in = dt_arena_alloc(a, sizeof *in);
    bool ok = row != NULL && in != NULL;
    if (ok) {
        item->state = *row;
        *in = d->c.u.activity.message.event;
        in->execution_id = act->execution_id;
        item->incoming = in;
        item->n_incoming = 1;
        /* the OrchestratorStarted and the result: none dropped as a duplicate */
        ok = hub_begin_episode(hub, item) == DT_OK && item->n_incoming == 2;
    }
    if (!ok) {
        /* nothing ran: the history goes back as it was (an episode that appends nothing) */
        dt_episode same = {.status = DT_STATUS_RUNNING};
        cache_detach(hub, item, &same);
        dt_arena_free(a);
        return;
    }
    dt_orch_request req;
    dt_hub_orch_request(item, &req);
    dt_orch_result res = {0};
    dt_episode ep;
    dt_error err;
    if (hub->ex.run_orchestration(hub->ex.data, &req, d->arena, &res) != DT_OK ||
        episode_build(hub, item, &res, d->arena, &ep, &err) != DT_OK) {
        cache_detach(hub, item, NULL);   /* its code ran ahead of what is stored */
        dt_arena_free(a);
        return;
    }
    *done = d->c.u.activity;
    ep.consumes = done;
    d->c.kind = DT_COMMIT_EPISODE;
    d->c.u.episode = ep;
    d->orch = item;
}

static void run_one_activity(dt_hub *hub, dt_activity_item *item)
{
    done_item *d = calloc(1, sizeof *d);
    dt_arena *arena = dt_arena_new();
    const char *result = NULL;
    const dt_failure *failure = NULL;
    dt_activity_request req;
    dt_hub_activity_request(item, &req);
    dt_error err;
    dt_status st = d && arena ? hub->ex.run_activity(hub->ex.data, &req, arena, &result,
                                                     &failure)
                              : DT_ERR_NOMEM;
    if (st == DT_OK) {
        hub_activity_commit(&d->c, item, result, failure);
        d->arena = arena;
        d->act = item;
        speculate(hub, d);
        hub_commit_done(hub, d);
        return;
    }
    dt_hub_abandon_activity(hub, item, &err);
    dt_arena_free(arena);
    free(d);
}

static void *activity_loop(void *arg)
{
    dt_hub *hub = arg;
    pthread_setname_np(pthread_self(), "dt-act");
    const dt_name_filter *names = hub->run_filter ? hub->run_filter->activities : NULL;
    while (atomic_load(&hub->running)) {
        dt_activity_item *item = NULL;
        dt_error err;
        if (hub_next_activity(hub, 100, names, &item, &err) != DT_OK) {
            hub_wait_change(hub, hub_version(hub), TROUBLE_MS);
            continue;
        }
        if (item)
            run_one_activity(hub, item);
    }
    return NULL;
}

/* run_filter_copy: FILTER's names into the hub's RUN_ARENA, as the loops' own filter (a
 * missing kind stays NULL: any). The loops share one filter, so they are one taker. */
static dt_status run_filter_copy(dt_hub *hub, const dt_work_filter *filter)
{
    if (filter == NULL)
        return DT_OK;
    if ((hub->run_arena = dt_arena_new()) == NULL)
        return DT_ERR_NOMEM;
    const dt_name_filter *from[3] = {filter->orchestrations, filter->activities,
                                     filter->entities};
    const dt_name_filter *to[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        if (from[k] == NULL)
            continue;
        if (dt_name_filter_copy(hub->run_arena, from[k], &hub->run_names[k]) != DT_OK) {
            dt_arena_free(hub->run_arena);
            hub->run_arena = NULL;
            return DT_ERR_NOMEM;
        }
        to[k] = &hub->run_names[k];
    }
    hub->run_work = (dt_work_filter){to[0], to[1], to[2]};
    hub->run_filter = &hub->run_work;
    return DT_OK;
}

dt_status dt_hub_run(dt_hub *hub, const dt_executor *ex, const dt_work_filter *filter,
                     int orch_threads, int act_threads, dt_error *err)
{
    if (atomic_load(&hub->running) || hub->threads)
        return dt_error_set(err, DT_ERR_STATE, "the hub's dispatch loops are already running");
    if (orch_threads < 0 || act_threads < 0 || orch_threads + act_threads == 0)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "need at least one dispatch thread (got %d orchestration, %d "
                            "activity)", orch_threads, act_threads);
    hub->ex = *ex;
    hub->run_orchs = orch_threads > 0 && ex->run_orchestration != NULL;
    if (run_filter_copy(hub, filter) != DT_OK)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    hub->threads = calloc((size_t)(orch_threads + act_threads), sizeof *hub->threads);
    if (hub->threads == NULL) {
        dt_hub_stop(hub);   /* frees the filter */
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    atomic_store(&hub->running, true);
    for (int i = 0; i < orch_threads + act_threads; i++) {
        void *(*loop)(void *) = i < orch_threads ? orchestration_loop : activity_loop;
        if (pthread_create(&hub->threads[i], NULL, loop, hub) != 0) {
            dt_hub_stop(hub);
            return dt_error_set(err, DT_ERR_NOMEM, "cannot start dispatch thread %d", i);
        }
        hub->n_threads++;
    }
    return DT_OK;
}

void dt_hub_stop(dt_hub *hub)
{
    atomic_store(&hub->running, false);
    for (int i = 0; i < hub->n_threads; i++)
        pthread_join(hub->threads[i], NULL);
    free(hub->threads);
    hub->threads = NULL;
    hub->n_threads = 0;
    /* the loops took work of both kinds: what commits leased for them goes back now, and
     * commits lease for them no more */
    atomic_store(&hub->any_asked_at[0], 0);
    atomic_store(&hub->any_asked_at[1], 0);
    for (int k = 0; k < 3; k++)
        ready_forget_taker(hub, &hub->run_names[k]);
    hub->run_filter = NULL;
    hub->run_orchs = false;
    dt_arena_free(hub->run_arena);
    hub->run_arena = NULL;
    memset(hub->run_names, 0, sizeof hub->run_names);
    ready_sweep(hub);
}
