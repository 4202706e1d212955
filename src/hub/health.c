/* health.c — whether the store takes writes. A commit that fails because the disk is full or
 * the store cannot write marks the hub troubled (logged once, counted in the metrics, told by
 * dt_hub_health and so by /healthz); a commit that succeeds clears it (logged too) once
 * TROUBLE_HOLD_US have passed since the last that failed (else dt_hub_health does, when that
 * time has come): at a database's size limit refused episodes and terminates that go in take
 * turns, and health would flap with them, a log line each time.
 * Nothing else is needed to recover: every writer retries (clients by asking again, workers
 * by redelivery when their leases run out), so the hub resumes by itself when space returns. */
#include <stdio.h>

#include "hub_internal.h"

#define TROUBLE_HOLD_US INT64_C(2000000)

static bool troubling(dt_status st)
{
    return st == DT_ERR_NO_SPACE || st == DT_ERR_IO;
}

/* clear: the hub is troubled no more, if a write went in after the last that failed, that
 * long ago (NOW) */
static void clear(dt_hub *hub, dt_time now)
{
    pthread_mutex_lock(&hub->ch_mu);   /* as a failure marks it: none is lost meanwhile */
    dt_time failed = atomic_load(&hub->trouble_at);
    bool was = false;
    if (atomic_load(&hub->ok_at) > failed && now - failed >= TROUBLE_HOLD_US &&
        !atomic_load(&hub->sync_failed))   /* a failed fsync is for ever */
        was = atomic_exchange(&hub->troubled, false);
    pthread_mutex_unlock(&hub->ch_mu);
    if (was)
        dt_log(DT_LOG_WARN, NULL, "the store takes writes again");
}

void hub_store_result(dt_hub *hub, dt_status st, const dt_error *err)
{
    if (st != DT_OK && !troubling(st))
        return;   /* a refused entry, a lost lease: the store is fine */
    bool was = atomic_load(&hub->troubled);
    if (st == DT_OK && !was)
        return;
    dt_time now = dt_now();
    if (st == DT_OK) {
        atomic_store(&hub->ok_at, now);
        clear(hub, now);
        return;
    }
    pthread_mutex_lock(&hub->ch_mu);
    atomic_store(&hub->trouble_at, now);
    was = atomic_load(&hub->troubled);
    if (!was)
        dt_log(DT_LOG_ERROR, NULL, "the store cannot write (%s): %s; writes are refused until "
               "it can", dt_strerror(st), err && err->message[0] ? err->message : "");
    hub->trouble.code = st;
    snprintf(hub->trouble.message, sizeof hub->trouble.message, "%s",
             err && err->message[0] ? err->message : dt_strerror(st));
    atomic_store(&hub->troubled, true);
    pthread_mutex_unlock(&hub->ch_mu);
    metrics_store_trouble(hub->metrics, st);
}

dt_status dt_hub_health(dt_hub *hub, dt_error *err)
{
    if (atomic_load(&hub->troubled))
        clear(hub, dt_now());
    if (!atomic_load(&hub->troubled))
        return DT_OK;
    pthread_mutex_lock(&hub->ch_mu);
    dt_error e = hub->trouble;
    pthread_mutex_unlock(&hub->ch_mu);
    if (err)
        *err = e;
    return e.code != DT_OK ? e.code : DT_ERR_IO;
}
