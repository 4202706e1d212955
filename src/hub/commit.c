/* commit.c — group commit. Worker threads hand their results (episodes, activity results) to
 * one committer thread and wait; the committer takes everything queued, up to max_batch, and
 * commits it in one store transaction: one fsync for many work items. Under light load a batch
 * is a single entry and nothing waits for company; under load batches grow by themselves. */
#include <stdlib.h>

#include "hub/hub_internal.h"

static void *committer_main(void *arg)
{
    dt_hub *hub = arg;
    dt_commit *batch = malloc(hub->max_batch * sizeof *batch);
    commit_req **reqs = malloc(hub->max_batch * sizeof *reqs);
    pthread_mutex_lock(&hub->cq_mu);
    for (;;) {
        while (hub->cq_head == NULL && !hub->cq_stop)
            pthread_cond_wait(&hub->cq_work, &hub->cq_mu);
        if (hub->cq_head == NULL && hub->cq_stop)
            break;
        size_t n = 0;
        while (hub->cq_head && n < hub->max_batch && batch && reqs) {
            commit_req *r = hub->cq_head;
            hub->cq_head = r->next;
            reqs[n] = r;
            batch[n] = *r->commit;   /* shallow: the requester waits, so pointers stay valid */
            n++;
        }
        if (hub->cq_head == NULL)
            hub->cq_tail = NULL;
        pthread_mutex_unlock(&hub->cq_mu);

        /* no lock held across the store's I/O */
        dt_error err;
        if (batch && reqs) {
            dt_time t0 = dt_now();
            dt_store_commit(hub->store, batch, n, &err);
            metrics_commit(hub->metrics, n, dt_now() - t0);
            /* counted before the waiters wake, so a client that sees an outcome sees it
             * counted too */
            for (size_t i = 0; i < n; i++)
                metrics_committed(hub->metrics, &batch[i], hub->lease_us);
            /* while the requesters still wait, their batch entries are valid to read */
            hub_notify_committed(hub, batch, n);
        }

        pthread_mutex_lock(&hub->cq_mu);
        for (size_t i = 0; i < n; i++) {
            reqs[i]->commit->result = batch[i].result;
            reqs[i]->done = true;
        }
        if (batch == NULL || reqs == NULL) {   /* out of memory: fail everything queued */
            for (commit_req *r = hub->cq_head; r; r = r->next) {
                r->commit->result = DT_ERR_NOMEM;
                r->done = true;
            }
            hub->cq_head = hub->cq_tail = NULL;
        }
        pthread_cond_broadcast(&hub->cq_done);
    }
    pthread_mutex_unlock(&hub->cq_mu);
    free(batch);
    free(reqs);
    return NULL;
}

dt_status hub_commit(dt_hub *hub, dt_commit *c, dt_error *err)
{
    commit_req req = {c, false, NULL};
    pthread_mutex_lock(&hub->cq_mu);
    if (hub->cq_stop) {
        pthread_mutex_unlock(&hub->cq_mu);
        return dt_error_set(err, DT_ERR_SHUTDOWN, "the hub is closing");
    }
    if (hub->cq_tail)
        hub->cq_tail->next = &req;
    else
        hub->cq_head = &req;
    hub->cq_tail = &req;
    pthread_cond_signal(&hub->cq_work);
    while (!req.done)
        pthread_cond_wait(&hub->cq_done, &hub->cq_mu);
    pthread_mutex_unlock(&hub->cq_mu);
    if (c->result == DT_ERR_LEASE_LOST)
        return dt_error_set(err, DT_ERR_LEASE_LOST,
                            "the work item's lease was lost (expired and taken by another "
                            "worker); its result was not applied");
    if (c->result != DT_OK)
        return dt_error_set(err, c->result, "commit failed: %s", dt_strerror(c->result));
    return DT_OK;
}

dt_status commit_start(dt_hub *hub)
{
    if (pthread_create(&hub->committer, NULL, committer_main, hub) != 0)
        return DT_ERR_NOMEM;
    return DT_OK;
}

void commit_stop(dt_hub *hub)
{
    pthread_mutex_lock(&hub->cq_mu);
    hub->cq_stop = true;
    pthread_cond_signal(&hub->cq_work);
    pthread_mutex_unlock(&hub->cq_mu);
    pthread_join(hub->committer, NULL);
}
