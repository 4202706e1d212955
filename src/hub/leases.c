/* leases.c — the leases of work in flight: each item a hub handed out is tracked until it is
 * completed or given back, and the renewer thread extends every tracked lease before it runs
 * out (and beats the node's heartbeat), so work that takes long is not leased again
 * elsewhere meanwhile. The same thread ends terminated instances when no worker is there to
 * take them. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

static dt_status track(dt_hub *hub, const dt_orch_item *orch, const dt_activity_item *act,
                       const dt_entity_item *ent)
{
    lease_entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        return DT_ERR_NOMEM;
    e->orch = orch;
    e->act = act;
    e->ent = ent;
    pthread_mutex_lock(&hub->ls_mu);
    e->next = hub->leases;
    hub->leases = e;
    pthread_mutex_unlock(&hub->ls_mu);
    return DT_OK;
}

dt_status lease_track(dt_hub *hub, const dt_orch_item *orch, const dt_activity_item *act)
{
    return track(hub, orch, act, NULL);
}

dt_status lease_track_entity(dt_hub *hub, const dt_entity_item *ent)
{
    return track(hub, NULL, NULL, ent);
}

void lease_untrack(dt_hub *hub, const void *item)
{
    pthread_mutex_lock(&hub->ls_mu);
    for (lease_entry **p = &hub->leases; *p; p = &(*p)->next) {
        lease_entry *e = *p;
        if ((const void *)e->orch == item || (const void *)e->act == item ||
            (const void *)e->ent == item) {
            *p = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&hub->ls_mu);
}

/* What the renewer needs of one lease, copied so no lock is held during store I/O. */
typedef struct renewal {
    int kind;                     /* DT_WORK_* */
    int64_t act_id;
    char instance_id[DT_INSTANCE_ID_MAX + 1];
    char token[160];
} renewal;

static void renew_all(dt_hub *hub, renewal *r, size_t n)
{
    dt_time until = dt_now() + hub->lease_us;
    for (size_t i = 0; i < n; i++) {
        dt_error err;
        if (r[i].kind == DT_WORK_ORCHESTRATION) {
            dt_orch_item it = {0};
            it.instance_id = r[i].instance_id;
            it.lock_token = r[i].token;
            dt_store_renew_orchestration(hub->store, &it, until, &err);
        } else if (r[i].kind == DT_WORK_ENTITY) {
            dt_entity_item it = {0};
            it.entity_id = r[i].instance_id;
            it.lock_token = r[i].token;
            dt_store_renew_entity(hub->store, &it, until, &err);
        } else {
            dt_activity_item it = {0};
            it.id = r[i].act_id;
            it.instance_id = r[i].instance_id;
            it.lock_token = r[i].token;
            dt_store_renew_activity(hub->store, &it, until, &err);
        }
        /* a renewal that fails means the lease is gone; the commit will say so */
    }
}

/* heartbeat: say this node is alive, every DT_NODE_HEARTBEAT_MS, on a store that keeps them.
 * It is a write like any other, so its outcome is the store's health: an idle node (its work
 * all done, or waiting on timers) still notices within a beat that its database went away,
 * and that it came back. */
static void heartbeat(dt_hub *hub)
{
    dt_time now = dt_now();
    if (!hub->beats || now - hub->beat_at < (dt_time)DT_NODE_HEARTBEAT_MS * 1000)
        return;
    hub->beat_at = now;
    dt_error err = {0};
    dt_status st = dt_store_heartbeat(hub->store, hub->owner, hub->started_at, now, &err);
    if (st == DT_ERR_UNIMPLEMENTED)
        hub->beats = false;
    else
        hub_store_result(hub, st, &err);
}

/* renew_leases: extend every tracked lease (ls_mu not held). */
static void renew_leases(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ls_mu);
    size_t n = 0;
    for (lease_entry *e = hub->leases; e; e = e->next)
        n++;
    renewal *r = n ? calloc(n, sizeof *r) : NULL;
    if (r == NULL) {
        pthread_mutex_unlock(&hub->ls_mu);
        return;
    }
    size_t i = 0;
    for (lease_entry *e = hub->leases; e; e = e->next, i++) {
        const char *id, *tok;
        if (e->orch) {
            r[i].kind = DT_WORK_ORCHESTRATION;
            id = e->orch->instance_id;
            tok = e->orch->lock_token;
        } else if (e->ent) {
            r[i].kind = DT_WORK_ENTITY;
            id = e->ent->entity_id;
            tok = e->ent->lock_token;
        } else {
            r[i].kind = DT_WORK_ACTIVITY;
            id = e->act->instance_id;
            tok = e->act->lock_token;
            r[i].act_id = e->act->id;
        }
        snprintf(r[i].instance_id, sizeof r[i].instance_id, "%s", id ? id : "");
        snprintf(r[i].token, sizeof r[i].token, "%s", tok ? tok : "");
    }
    pthread_mutex_unlock(&hub->ls_mu);
    renew_all(hub, r, n);
    free(r);
}

#define TERMINATE_POLL_MS 1000   /* how often terminates nobody took are looked for */
#define TERMINATE_BURST 64       /* how many are ended in one pass of the renewer at most */

static bool stopping(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ls_mu);
    bool stop = hub->renew_stop;
    pthread_mutex_unlock(&hub->ls_mu);
    return stop;
}

/* end_terminated: with no orchestration taker here (no worker connected, in this process or
 * over gRPC), end the instances that have a terminate waiting, as a taker would: a terminate
 * does not wait for a worker, whose code it would not run anyway. Each waits for its commit,
 * so it stops when the leases are due for renewal (RENEW_AT). True if more may wait. */
static bool end_terminated(dt_hub *hub, dt_time renew_at)
{
    if (ready_taker_present(hub, 0, dt_now()))
        return false;   /* the takers end them */
    for (int i = 0; i < TERMINATE_BURST; i++) {
        if (stopping(hub) || dt_now() >= renew_at)
            return true;
        if (!hub_end_terminated(hub))
            return false;
    }
    return true;
}

void renewer_terminate_asked(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ls_mu);
    hub->terminate_asked = true;
    pthread_cond_signal(&hub->ls_wake);
    pthread_mutex_unlock(&hub->ls_mu);
}

static void *renewer_main(void *arg)
{
    dt_hub *hub = arg;
    pthread_setname_np(pthread_self(), "dt-renew");
    dt_time period = hub->lease_us / 3;
    if (period < 10000)
        period = 10000;
    if (hub->beats && period > (dt_time)DT_NODE_HEARTBEAT_MS * 1000)
        period = (dt_time)DT_NODE_HEARTBEAT_MS * 1000;
    dt_time renew_at = dt_now() + period, look_at = dt_now();
    bool more = false;
    pthread_mutex_lock(&hub->ls_mu);
    while (!hub->renew_stop) {
        dt_time now = dt_now();
        bool asked = hub->terminate_asked;
        if (!more && !asked && now < renew_at && now < look_at) {
            dt_time next = renew_at < look_at ? renew_at : look_at;
            struct timespec until = dt_deadline_ms((int64_t)((next - now) / 1000) + 1);
            pthread_cond_timedwait(&hub->ls_wake, &hub->ls_mu, &until);
            continue;
        }
        hub->terminate_asked = false;
        pthread_mutex_unlock(&hub->ls_mu);
        if (more || asked || now >= look_at) {
            more = end_terminated(hub, renew_at);
            look_at = now + (dt_time)TERMINATE_POLL_MS * 1000;
            now = dt_now();
        }
        if (now >= renew_at) {
            renew_at = now + period;
            ready_sweep(hub);
            heartbeat(hub);
            renew_leases(hub);
        }
        pthread_mutex_lock(&hub->ls_mu);
    }
    pthread_mutex_unlock(&hub->ls_mu);
    return NULL;
}

dt_status renewer_start(dt_hub *hub)
{
    return pthread_create(&hub->renewer, NULL, renewer_main, hub) == 0 ? DT_OK : DT_ERR_NOMEM;
}

void renewer_stop(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ls_mu);
    hub->renew_stop = true;
    pthread_cond_signal(&hub->ls_wake);
    pthread_mutex_unlock(&hub->ls_mu);
    pthread_join(hub->renewer, NULL);
    /* under the lock: the committer, still running, may untrack an item meanwhile */
    pthread_mutex_lock(&hub->ls_mu);
    while (hub->leases) {
        lease_entry *e = hub->leases;
        hub->leases = e->next;
        free(e);
    }
    pthread_mutex_unlock(&hub->ls_mu);
}
