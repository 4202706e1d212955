/* held.c — the bytes of messages the gRPC server holds for its calls, and the sends their
 * clients do not take.
 *
 * Held bytes. What the server holds of its calls' messages is bounded (max_held, dtask serve
 * --max-held-mb), whatever its clients do: a request from its arrival until its call is freed
 * (the hub's work points into it until then), an answer or a stream message from its packing
 * until gRPC is done sending it (a client that does not read keeps it). Without this bound,
 * --max-calls callers each reading a --max-message answer and never taking it would hold
 * both limits multiplied (16 GB by default). A request that would pass the bound is refused
 * RESOURCE_EXHAUSTED before anything is done with it; so is an answer larger than
 * ANSWER_FLOOR (only reads have those: the answers of calls that changed something are small,
 * and are counted, never refused, since what they did is done); a stream message waits for
 * room. A message larger than the whole bound goes when at most half of it is held
 * (core_budget_take). A completion stream's messages are counted, never refused: their window
 * bounds them (STREAM_WINDOW_BYTES per stream); what one unpacks to beyond its share is
 * (server.c, unpack), and then the stream ends RESOURCE_EXHAUSTED so its work goes back at
 * once. */
#include <assert.h>
#include <grpc/grpc.h>
#include <stdio.h>

#include "core/sync.h"
#include "server_internal.h"

#define ANSWER_FLOOR ((size_t)64 << 10)      /* an answer this small is never refused */

bool rpc_hold(dt_grpc_server *srv, size_t n, bool force)
{
    if (force)
        core_budget_force(&srv->held, n);
    return force || core_budget_take(&srv->held, n);
}

void rpc_unhold(dt_grpc_server *srv, size_t n)
{
    if (n == 0)
        return;
    assert(core_budget_used(&srv->held) >= n);
    core_budget_give(&srv->held, n);
    /* a waiter counts itself before it tries again: it sees this give, or we see it */
    if (atomic_load(&srv->room_waiters) > 0) {
        pthread_mutex_lock(&srv->held_mu);
        pthread_cond_broadcast(&srv->room);
        pthread_mutex_unlock(&srv->held_mu);
    }
}

/* rpc_hold_answer: an answer of at most ANSWER_FLOOR bytes is never refused */
bool rpc_hold_answer(dt_grpc_server *srv, size_t n)
{
    return rpc_hold(srv, n, n <= ANSWER_FLOOR);
}

/* rpc_drop_sent: N is given: a send empties its buffer (gRPC takes the slices), so the
 * length is kept. */
void rpc_drop_sent(dt_grpc_server *srv, grpc_byte_buffer *bb, size_t n)
{
    rpc_unhold(srv, n);
    grpc_byte_buffer_destroy(bb);
}

void rpc_drop_unsent(dt_grpc_server *srv, grpc_byte_buffer *bb)
{
    rpc_drop_sent(srv, bb, grpc_byte_buffer_length(bb));
}

void rpc_held_refusal(dt_grpc_server *srv, const char *what, size_t n, char *msg,
                      size_t size)
{
    snprintf(msg, size, "the server holds %zu bytes of messages its calls have not finished "
             "with (limit %zu, dtask serve --max-held-mb): this call's %s of %zu bytes does not "
             "fit; try again later", core_budget_used(&srv->held), srv->held.max, what, n);
}

bool rpc_hold_kept(rpc_call *c, size_t n, char *why, size_t size)
{
    if (rpc_hold(c->srv, n, false))
        return true;
    rpc_held_refusal(c->srv, "chunk", n, why, size);
    return false;
}

dt_grpc_server *rpc_server_of(rpc_call *c)
{
    return c->srv;
}

size_t rpc_held_max(rpc_call *c)
{
    return c->srv->held.max;
}

bool rpc_held_pressed(rpc_call *c)
{
    return core_budget_used(&c->srv->held) > c->srv->held.max / 2;
}

int64_t rpc_request_timeout_ms(rpc_call *c)
{
    return c->srv->request_timeout_ms;
}

void rpc_give_kept(dt_grpc_server *srv, size_t n)
{
    rpc_unhold(srv, n);
}

/* rpc_hold_waiting: waits in steps, since held_mu is never taken under C's mu. */
bool rpc_hold_waiting(rpc_call *c, size_t n)
{
    dt_grpc_server *srv = c->srv;
    for (;;) {
        if (core_budget_take(&srv->held, n))
            return true;
        if (rpc_closed(c))
            return false;
        pthread_mutex_lock(&srv->held_mu);
        atomic_fetch_add(&srv->room_waiters, 1);
        /* tried again as a waiter: a give before this is seen here, one after it wakes us */
        bool taken = core_budget_take(&srv->held, n);
        if (!taken) {
            struct timespec until = dt_deadline_ms(100);
            pthread_cond_timedwait(&srv->room, &srv->held_mu, &until);
        }
        atomic_fetch_sub(&srv->room_waiters, 1);
        pthread_mutex_unlock(&srv->held_mu);
        if (taken)
            return true;
    }
}

/* Sends not taken. A message the server sends (an answer, a stream's message) that its
 * client has not taken within send_timeout_ms (dtask serve --send-timeout) ends its call,
 * DEADLINE_EXCEEDED, when more than half of max_held is held: a client that stops reading
 * keeps what it holds (above) no longer than that once others need the room, while a busy
 * but healthy one (a worker that reads its stream between work items) is not cut for being
 * slow alone. A call is in the sends list from just before its send starts until the poller
 * hears it done (or cancels it), so the poller never cancels a call that is gone; one timeout
 * for all keeps the list in deadline order. The poller looks at least once a second. */

void rpc_sends_add(rpc_call *c)
{
    dt_grpc_server *srv = c->srv;
    pthread_mutex_lock(&srv->send_mu);
    c->send_deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_millis(srv->send_timeout_ms, GPR_TIMESPAN));
    c->send_next = NULL;
    c->send_prev = srv->sends_tail;
    *(srv->sends_tail ? &srv->sends_tail->send_next : &srv->sends_head) = c;
    srv->sends_tail = c;
    c->in_sends = true;
    pthread_mutex_unlock(&srv->send_mu);
}

static void sends_unlink(dt_grpc_server *srv, rpc_call *c)
{
    if (!c->in_sends)
        return;
    *(c->send_prev ? &c->send_prev->send_next : &srv->sends_head) = c->send_next;
    *(c->send_next ? &c->send_next->send_prev : &srv->sends_tail) = c->send_prev;
    c->in_sends = false;
}

void rpc_sends_remove(rpc_call *c)
{
    pthread_mutex_lock(&c->srv->send_mu);
    sends_unlink(c->srv, c);
    pthread_mutex_unlock(&c->srv->send_mu);
}

/* rpc_expire_sends: the calls ended complete their sends, failed, and what they held goes. */
void rpc_expire_sends(dt_grpc_server *srv)
{
    if (core_budget_used(&srv->held) <= srv->held.max / 2)
        return;   /* no pressure: the overdue wait, and are looked at again */
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    pthread_mutex_lock(&srv->send_mu);
    while (srv->sends_head && gpr_time_cmp(srv->sends_head->send_deadline, now) <= 0) {
        rpc_call *c = srv->sends_head;
        sends_unlink(srv, c);
        char msg[200];
        snprintf(msg, sizeof msg, "the client did not take a message in %lld ms (dtask serve "
                 "--send-timeout)", (long long)srv->send_timeout_ms);
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL);
    }
    pthread_mutex_unlock(&srv->send_mu);
}
