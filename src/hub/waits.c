/* waits.c — waits that hold no thread (dt_hub_wait_async). A gRPC client's
 * WaitForInstanceCompletion used to keep a server thread asleep for the whole wait: a thread
 * per waiting client, and two thread wake-ups for each answer (the call handed to the
 * thread, the thread woken by the commit). An asynchronous wait is a waiter in the hub's
 * buckets like dt_hub_wait's, answered by a callback instead: from the syncer, with the row
 * the episode that reached it left (hub_notify_committed), or from the waits' thread, which
 * takes the waits in turn, as a thread's wait polls (hub_wait_poll_ms, the same bounded rate
 * of reads): it asks the caller whether it still wants the wait, then reads the state, for
 * changes no commit of this hub tells of (other processes').
 *
 * Who may touch a wait: ch_mu guards its fields. A wait on the poll queue, or only in its
 * bucket, is the hub's; one being read (`reading`) is its reader's, who alone answers it or
 * frees it (an episode that reaches it meanwhile leaves the row with it); one taken off both
 * lists is whoever took it. So its callback is called by one party at a time, and never
 * after the call that ends the wait. */
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

/* queue_add: W onto the poll queue, first or last (ch_mu held). */
static void queue_add(dt_hub *hub, waiter *w, bool first)
{
    if (first) {
        w->q_next = hub->aw_head;
        w->q_pprev = &hub->aw_head;
        if (w->q_next)
            w->q_next->q_pprev = &w->q_next;
        else
            hub->aw_tail = &w->q_next;
        hub->aw_head = w;
    } else {
        w->q_next = NULL;
        w->q_pprev = hub->aw_tail;
        *hub->aw_tail = w;
        hub->aw_tail = &w->q_next;
    }
}

/* queue_remove: W off the poll queue, if it is on it (ch_mu held). */
static void queue_remove(dt_hub *hub, waiter *w)
{
    if (w->q_pprev == NULL)
        return;
    *w->q_pprev = w->q_next;
    if (w->q_next)
        w->q_next->q_pprev = w->q_pprev;
    else
        hub->aw_tail = w->q_pprev;
    w->q_next = NULL;
    w->q_pprev = NULL;
}

/* requeue: W, read and still waiting, back on the queue: first if its instance changed while
 * it was read, else last, read again after a poll period (ch_mu held). */
static void requeue(dt_hub *hub, waiter *w)
{
    bool soon = w->changed;
    w->changed = false;
    w->poll_at = soon ? 0 : dt_now() + hub_wait_poll_ms(hub) * 1000;
    queue_add(hub, w, soon);
    pthread_cond_signal(&hub->aw_wake);
}

/* take: W off every list: it is the taker's to answer and free (ch_mu held). */
static void take(dt_hub *hub, waiter *w)
{
    waiter_unlink(hub, w);
    queue_remove(hub, w);
}

static void free_wait(waiter *w)
{
    dt_arena_free(w->reached_arena);
    free((char *)w->instance_id);
    free(w);
}

void waits_wake(dt_hub *hub, waiter *w)
{
    if (w->reading) {   /* its reader looks again at once */
        w->changed = true;
        return;
    }
    queue_remove(hub, w);
    w->poll_at = 0;
    queue_add(hub, w, true);
    pthread_cond_signal(&hub->aw_wake);
}

void waits_reached(dt_hub *hub, waiter *w, const dt_episode *ep, waiter **answer)
{
    if (w->reading) {   /* its reader answers it, with the row if it can be told */
        dt_arena *a;
        dt_instance_state *row = hub_row_of(ep, &a);
        dt_arena_free(w->reached_arena);
        w->reached = row;
        w->reached_arena = a;
        w->changed |= row == NULL;
        return;
    }
    if (ep->updated_at == 0) {   /* its row cannot be told: it is read instead */
        waits_wake(hub, w);
        return;
    }
    take(hub, w);
    w->fired_by = ep;
    w->q_next = *answer;
    *answer = w;
}

void waits_answer(waiter *answer)
{
    while (answer) {
        waiter *w = answer;
        answer = w->q_next;
        dt_arena *a;
        dt_instance_state *row = hub_row_of(w->fired_by, &a);
        if (row) {
            w->fn(w->arg, DT_OK, row, NULL);
        } else {
            dt_error err;
            dt_error_set(&err, DT_ERR_NOMEM, "out of memory answering a wait on '%s'",
                         w->instance_id);
            w->fn(w->arg, DT_ERR_NOMEM, NULL, &err);
        }
        dt_arena_free(a);
        free_wait(w);
    }
}

/* read_state: W's state, into SCRATCH; *DONE when it answers the wait (reached, gone, or
 * unreadable), then made sure durable first (read_barrier_of): a read that only decides to
 * wait on tells nobody anything, and waits for no fsync. */
static dt_status read_state(dt_hub *hub, waiter *w, dt_arena *scratch, dt_instance_state **s,
                            bool *done, dt_error *err)
{
    dt_status st = scratch ? dt_store_get_instance(hub->store, w->instance_id, scratch, s, err)
                           : dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    *done = st != DT_OK || hub_state_reached(*s, w->what) || atomic_load(&hub->sync_failed);
    if (*done)
        st = read_barrier_of(hub, w->instance_id, st, err);
    return st;
}

/* turn: the waits' thread's look at W, which it is reading (ch_mu not held): is it still
 * wanted, and has its instance reached what it waits for? */
static void turn(dt_hub *hub, waiter *w)
{
    if (!w->fn(w->arg, DT_ERR_TIMEOUT, NULL, NULL)) {
        pthread_mutex_lock(&hub->ch_mu);
        take(hub, w);
        pthread_mutex_unlock(&hub->ch_mu);
        free_wait(w);
        return;
    }
    dt_arena *scratch = dt_arena_new();
    dt_instance_state *s = NULL;
    dt_error err = {0};
    bool done;
    dt_status st = read_state(hub, w, scratch, &s, &done, &err);
    pthread_mutex_lock(&hub->ch_mu);
    w->reading = false;
    if (w->reached) {   /* an episode reached it while it was read: its row, durable */
        st = DT_OK;
        s = w->reached;
    } else if (!done) {
        requeue(hub, w);
        pthread_mutex_unlock(&hub->ch_mu);
        dt_arena_free(scratch);
        return;
    }
    take(hub, w);
    pthread_mutex_unlock(&hub->ch_mu);
    w->fn(w->arg, st, st == DT_OK ? s : NULL, st == DT_OK ? NULL : &err);
    free_wait(w);
    dt_arena_free(scratch);
}

static void *waits_main(void *arg)
{
    dt_hub *hub = arg;
    pthread_setname_np(pthread_self(), "dt-waits");
    pthread_mutex_lock(&hub->ch_mu);
    while (!hub->aw_stop) {
        waiter *w = hub->aw_head;
        dt_time now = dt_now();
        if (w == NULL) {
            pthread_cond_wait(&hub->aw_wake, &hub->ch_mu);
        } else if (w->poll_at > now) {
            struct timespec until = dt_deadline_ms((w->poll_at - now) / 1000 + 1);
            pthread_cond_timedwait(&hub->aw_wake, &hub->ch_mu, &until);
        } else {
            queue_remove(hub, w);
            w->reading = true;
            pthread_mutex_unlock(&hub->ch_mu);
            turn(hub, w);
            pthread_mutex_lock(&hub->ch_mu);
        }
    }
    pthread_mutex_unlock(&hub->ch_mu);
    return NULL;
}

/* start_thread: the waits' thread, at the first wait (ch_mu held). */
static dt_status start_thread(dt_hub *hub, dt_error *err)
{
    if (hub->aw_stop)
        return dt_error_set(err, DT_ERR_SHUTDOWN, "the hub is closing");
    if (!hub->aw_started) {
        if (pthread_create(&hub->aw_thread, NULL, waits_main, hub) != 0)
            return dt_error_set(err, DT_ERR_NOMEM, "cannot start the thread of waits");
        hub->aw_started = true;
    }
    return DT_OK;
}

dt_status dt_hub_wait_async(dt_hub *hub, const char *id, dt_wait_for what, dt_hub_wait_fn fn,
                            void *arg, dt_error *err)
{
    if (id == NULL)
        return dt_error_set(err, DT_ERR_STATE, "no instance to wait for");
    if (hub->beats)
        return dt_error_set(err, DT_ERR_UNIMPLEMENTED,
                            "the store is shared by nodes: a wait on it reads over the network");
    waiter *w = calloc(1, sizeof *w);
    if (w == NULL || (w->instance_id = strdup(id)) == NULL) {
        free(w);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    w->what = what;
    w->fn = fn;
    w->arg = arg;
    w->reading = true;   /* by us, below: nobody answers it meanwhile */
    pthread_mutex_lock(&hub->ch_mu);
    dt_status st = start_thread(hub, err);
    if (st == DT_OK)
        waiter_link(hub, w);
    pthread_mutex_unlock(&hub->ch_mu);
    if (st != DT_OK) {
        free_wait(w);
        return st;
    }
    /* listed before the read, so a commit after it is not missed */
    dt_arena *scratch = dt_arena_new();
    dt_instance_state *s = NULL;
    dt_error rerr = {0};
    bool wait = scratch && dt_store_get_instance(hub->store, id, scratch, &s, &rerr) == DT_OK &&
                !hub_state_reached(s, what) && !atomic_load(&hub->sync_failed);
    dt_arena_free(scratch);
    pthread_mutex_lock(&hub->ch_mu);
    w->reading = false;
    if (wait && w->reached == NULL) {
        requeue(hub, w);
        pthread_mutex_unlock(&hub->ch_mu);
        return DT_OK;
    }
    waiter_unlink(hub, w);
    pthread_mutex_unlock(&hub->ch_mu);
    free_wait(w);
    return dt_error_set(err, DT_ERR_STATE, "instance '%s' needs no wait: it is answered now",
                        id);
}

void waits_stop(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ch_mu);
    hub->aw_stop = true;
    pthread_cond_signal(&hub->aw_wake);
    bool started = hub->aw_started;
    pthread_mutex_unlock(&hub->ch_mu);
    if (!started)
        return;
    pthread_join(hub->aw_thread, NULL);
    /* the waits left are on the queue (none is being read now), or being answered by the
     * syncer, which took them */
    waiter *left = NULL;
    pthread_mutex_lock(&hub->ch_mu);
    while (hub->aw_head) {
        waiter *w = hub->aw_head;
        take(hub, w);
        w->q_next = left;
        left = w;
    }
    pthread_mutex_unlock(&hub->ch_mu);
    dt_error err;
    dt_error_set(&err, DT_ERR_SHUTDOWN, "the hub is closing");
    while (left) {
        waiter *w = left;
        left = w->q_next;
        w->fn(w->arg, DT_ERR_SHUTDOWN, NULL, &err);
        free_wait(w);
    }
}
