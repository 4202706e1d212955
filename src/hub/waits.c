/* waits.c — waits that hold no thread (dt_hub_wait_async). A gRPC client's
 * WaitForInstanceCompletion used to keep a server thread asleep for the whole wait: a thread
 * per waiting client, and two thread wake-ups for each answer (the call handed to the
 * thread, the thread woken by the commit). An asynchronous wait is a waiter in the hub's
 * buckets like dt_hub_wait's, with a callback instead of a thread, and one thread of the
 * hub's, `dt-waits`, looks after all of them: it reads a new wait's state at once (the
 * caller, the gRPC poller, must not wait for a read), answers a wait with the row the
 * episode that reached it left (hub_notify_committed hands it over: the syncer does no more
 * than that), and takes every wait in turn, each WAIT_ASK_MS, to ask its caller whether it
 * still wants it (its client may be gone, its task hub deleted) and, at the waiters' poll
 * rate (hub_wait_poll_ms), to read its state for changes no commit of this hub tells of
 * (other processes'). On a store shared by nodes (PostgreSQL) a read is a round trip to the
 * server, and another node's change wakes the wait by the store's notification; one thread
 * making the reads loses nothing there, as the store reads on one connection anyway.
 *
 * Two queues, both FIFO: SOON (new waits, changed or reached ones: looked at now) and LATER
 * (looked at WAIT_ASK_MS after their last look: appended in the order they come due). ch_mu
 * guards them and every field of a wait. A wait the thread took off its queue (`reading`) is
 * the thread's alone, and only the thread calls a callback, so callbacks come one at a time
 * and never after the one that ends their wait. */
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

#define WAIT_ASK_MS 250   /* a caller is asked whether it still wants its wait this often */

/* queue_add / queue_remove: W onto the end of the queue whose TAIL it is / off whichever
 * it is on (ch_mu held). */
static void queue_add(waiter ***tail, waiter *w)
{
    w->q_next = NULL;
    w->q_pprev = *tail;
    **tail = w;
    *tail = &w->q_next;
}

static void queue_remove(dt_hub *hub, waiter *w)
{
    if (w->q_pprev == NULL)
        return;
    *w->q_pprev = w->q_next;
    if (w->q_next)
        w->q_next->q_pprev = w->q_pprev;
    else if (hub->aw_soon_tail == &w->q_next)
        hub->aw_soon_tail = w->q_pprev;
    else
        hub->aw_later_tail = w->q_pprev;
    w->q_next = NULL;
    w->q_pprev = NULL;
}

/* soon: W onto the SOON queue, unless the thread has it now (ch_mu held). */
static void soon(dt_hub *hub, waiter *w)
{
    if (w->reading)
        return;   /* the thread looks at what changed before it lets it go */
    queue_remove(hub, w);
    queue_add(&hub->aw_soon_tail, w);
    pthread_cond_signal(&hub->aw_wake);
}

/* later: W, looked at and still waiting, onto the LATER queue, or SOON if it changed
 * meanwhile (ch_mu held; CHANGED stays set, so its next look reads). */
static void later(dt_hub *hub, waiter *w)
{
    w->reading = false;
    if (w->changed || w->reached) {
        soon(hub, w);
        return;
    }
    w->due = dt_now() + WAIT_ASK_MS * 1000;
    queue_add(&hub->aw_later_tail, w);
}

static void free_wait(waiter *w)
{
    dt_arena_free(w->reached_arena);
    free((char *)w->instance_id);
    free(w);
}

void waits_wake(dt_hub *hub, waiter *w)
{
    w->changed = true;
    soon(hub, w);
}

void waits_reached(dt_hub *hub, waiter *w, const dt_episode *ep)
{
    if (w->reached)
        return;   /* it is told of the first episode that reached it */
    dt_arena *a;
    dt_instance_state *row = hub_row_of(ep, &a);
    if (row == NULL) {   /* its row cannot be told: it is read instead */
        waits_wake(hub, w);
        return;
    }
    w->reached = row;
    w->reached_arena = a;
    soon(hub, w);
}

/* end: the thread's W answered: off the buckets (ch_mu taken here) and freed. */
static void end(dt_hub *hub, waiter *w)
{
    pthread_mutex_lock(&hub->ch_mu);
    waiter_unlink(hub, w);
    pthread_mutex_unlock(&hub->ch_mu);
    free_wait(w);
}

/* look: the thread's look at W, which it has off its queues (ch_mu not held). ASK: ask the
 * caller first whether it still wants the wait. */
static void look(dt_hub *hub, waiter *w, bool ask)
{
    pthread_mutex_lock(&hub->ch_mu);
    dt_instance_state *row = w->reached;
    pthread_mutex_unlock(&hub->ch_mu);
    /* told by the commit: durable, and nothing is read (after a failed fsync nothing is
     * told without a read, which fails, as dt_hub_wait's answers do) */
    if (row && !atomic_load(&hub->sync_failed)) {
        metrics_wait_answered(hub->metrics, true);
        w->fn(w->arg, DT_OK, row, NULL);
        end(hub, w);
        return;
    }
    if (ask && !w->fn(w->arg, DT_ERR_TIMEOUT, NULL, NULL)) {
        end(hub, w);
        return;
    }
    dt_time now = dt_now();
    pthread_mutex_lock(&hub->ch_mu);
    bool read = w->changed || row || now >= w->read_at;   /* changed, or its poll is due */
    if (read)
        w->changed = false;   /* a change from here on, the read may miss: looked at again */
    else
        later(hub, w);
    pthread_mutex_unlock(&hub->ch_mu);
    if (!read)
        return;
    w->read_at = now + hub_wait_poll_ms(hub) * 1000;
    dt_arena *scratch = dt_arena_new();
    dt_instance_state *s = NULL;
    dt_error err = {0};
    dt_status st = scratch ? dt_store_get_instance(hub->store, w->instance_id, scratch, &s, &err)
                           : dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
    /* no such instance yet: waited for, as dt_hub_wait does */
    bool missing = st == DT_ERR_NOT_FOUND && hub_may_exist(w->instance_id);
    bool done = (st != DT_OK && !missing) || (st == DT_OK && hub_state_reached(s, w->what)) ||
                atomic_load(&hub->sync_failed);
    if (done)   /* an answer is told only once what the read saw is durable */
        st = read_barrier_of(hub, w->instance_id, st, &err);
    if (!done) {
        pthread_mutex_lock(&hub->ch_mu);
        later(hub, w);
        pthread_mutex_unlock(&hub->ch_mu);
    } else {
        if (st == DT_OK)
            metrics_wait_answered(hub->metrics, false);
        w->fn(w->arg, st, st == DT_OK ? s : NULL, st == DT_OK ? NULL : &err);
        end(hub, w);
    }
    dt_arena_free(scratch);
}

/* next: the wait to look at now, taken off its queue, and whether to ask its caller; NULL
 * when none is due (ch_mu held; *DUE: when the first of LATER is, or 0). SOON goes first;
 * when LATER's first is a whole turn late, the two take turns (neither a flood of new waits
 * nor a crowd of slow reads starves the other). */
static waiter *next(dt_hub *hub, bool *ask, dt_time *due)
{
    dt_time now = dt_now();
    waiter *late = hub->aw_later;
    waiter *w = hub->aw_soon;
    *ask = false;
    *due = 0;
    bool turn = w == NULL || (late && late->due + WAIT_ASK_MS * 1000 <= now && !hub->aw_took_later);
    hub->aw_took_later = false;
    if (late && turn) {
        if (late->due > now) {
            *due = late->due;
            return NULL;
        }
        w = late;
        *ask = true;
        hub->aw_took_later = true;
    }
    if (w) {
        queue_remove(hub, w);
        w->reading = true;
    }
    return w;
}

static void *waits_main(void *arg)
{
    dt_hub *hub = arg;
    pthread_setname_np(pthread_self(), "dt-waits");
    pthread_mutex_lock(&hub->ch_mu);
    while (!hub->aw_stop) {
        bool ask;
        dt_time due;
        waiter *w = next(hub, &ask, &due);
        if (w) {
            pthread_mutex_unlock(&hub->ch_mu);
            look(hub, w, ask);
            pthread_mutex_lock(&hub->ch_mu);
        } else if (due) {
            struct timespec until = dt_deadline_ms((due - dt_now()) / 1000 + 1);
            pthread_cond_timedwait(&hub->aw_wake, &hub->ch_mu, &until);
        } else {
            pthread_cond_wait(&hub->aw_wake, &hub->ch_mu);
        }
    }
    pthread_mutex_unlock(&hub->ch_mu);
    return NULL;
}

dt_status dt_hub_wait_async(dt_hub *hub, const char *id, dt_wait_for what, dt_hub_wait_fn fn,
                            void *arg, dt_error *err)
{
    if (id == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "instance id is empty");
    waiter *w = calloc(1, sizeof *w);
    if (w == NULL || (w->instance_id = strdup(id)) == NULL) {
        free(w);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    w->what = what;
    w->fn = fn;
    w->arg = arg;
    w->changed = true;   /* read at once */
    dt_status st = DT_OK;
    pthread_mutex_lock(&hub->ch_mu);
    if (hub->aw_stop) {
        st = dt_error_set(err, DT_ERR_SHUTDOWN, "the hub is closing");
    } else if (!hub->aw_started) {
        if (pthread_create(&hub->aw_thread, NULL, waits_main, hub) == 0)
            hub->aw_started = true;
        else
            st = dt_error_set(err, DT_ERR_NOMEM, "cannot start the thread of waits");
    }
    if (st == DT_OK) {
        waiter_link(hub, w);   /* listed before its read: a commit after it is not missed */
        soon(hub, w);
    }
    pthread_mutex_unlock(&hub->ch_mu);
    if (st != DT_OK)
        free_wait(w);
    return st;
}

void waits_stop(dt_hub *hub)
{
    pthread_mutex_lock(&hub->ch_mu);
    hub->aw_stop = true;   /* no wait is made from now on */
    pthread_cond_signal(&hub->aw_wake);
    bool started = hub->aw_started;
    pthread_mutex_unlock(&hub->ch_mu);
    if (!started)
        return;
    pthread_join(hub->aw_thread, NULL);
    /* with the thread gone, every wait left is on a queue */
    waiter *left = NULL;
    pthread_mutex_lock(&hub->ch_mu);
    for (waiter *w; (w = hub->aw_soon) != NULL || (w = hub->aw_later) != NULL;) {
        queue_remove(hub, w);
        waiter_unlink(hub, w);
        w->q_next = left;
        left = w;
    }
    pthread_mutex_unlock(&hub->ch_mu);
    dt_error err;
    dt_error_set(&err, DT_ERR_SHUTDOWN, "the hub is closing");
    while (left) {
        waiter *w = left;
        left = w->q_next;
        if (w->reached)   /* a row came: durable, so told */
            w->fn(w->arg, DT_OK, w->reached, NULL);
        else
            w->fn(w->arg, DT_ERR_SHUTDOWN, NULL, &err);
        free_wait(w);
    }
}
