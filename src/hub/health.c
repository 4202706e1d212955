/* health.c — whether the store takes writes. A commit that fails because the disk is full or
 * the store cannot write marks the hub troubled (logged once, counted in the metrics, told by
 * dt_hub_health and so by /healthz); the next commit that succeeds clears it (logged too).
 * Nothing else is needed to recover: every writer retries (clients by asking again, workers
 * by redelivery when their leases run out), so the hub resumes by itself when space returns. */
#include <stdio.h>

#include "hub_internal.h"

static bool troubling(dt_status st)
{
    return st == DT_ERR_NO_SPACE || st == DT_ERR_IO;
}

void hub_store_result(dt_hub *hub, dt_status st, const dt_error *err)
{
    if (st != DT_OK && !troubling(st))
        return;   /* a refused entry, a lost lease: the store is fine */
    bool was = atomic_load(&hub->troubled);
    if (st == DT_OK && (!was || atomic_load(&hub->sync_failed)))
        return;   /* a failed fsync is for ever: a write that goes in does not mend it */
    pthread_mutex_lock(&hub->ch_mu);
    if (st == DT_OK) {
        atomic_store(&hub->troubled, false);
        dt_log(DT_LOG_WARN, NULL, "the store takes writes again");
    } else {
        if (!was)
            dt_log(DT_LOG_ERROR, NULL, "the store cannot write (%s): %s; writes are refused until "
                   "it can", dt_strerror(st), err && err->message[0] ? err->message : "");
        hub->trouble.code = st;
        snprintf(hub->trouble.message, sizeof hub->trouble.message, "%s",
                 err && err->message[0] ? err->message : dt_strerror(st));
        atomic_store(&hub->troubled, true);
    }
    pthread_mutex_unlock(&hub->ch_mu);
    if (st != DT_OK)
        metrics_store_trouble(hub->metrics, st);
}

dt_status dt_hub_health(dt_hub *hub, dt_error *err)
{
    if (!atomic_load(&hub->troubled))
        return DT_OK;
    pthread_mutex_lock(&hub->ch_mu);
    dt_error e = hub->trouble;
    pthread_mutex_unlock(&hub->ch_mu);
    if (err)
        *err = e;
    return e.code != DT_OK ? e.code : DT_ERR_IO;
}
