/* stream.c — a worker's completion stream, served by the gRPC server's poller.
 *
 * A worker's completions on one client stream (DT_COMPLETION_STREAM_METHOD; the C SDK's remote
 * worker sends them so rather than a unary call each). The poller reads each message, a
 * WorkerCompletion holding one OrchestratorResponse, ActivityResponse or EntityBatchResult,
 * and serves it as a call of its own (a child of the stream) with the handlers of the unary
 * completion it holds: on the poller when the asynchronous handler takes it, else on a
 * thread; the child's answer goes nowhere (a lost or refused completion is redelivered when
 * its lease ends, as ever). At most STREAM_WINDOW children and STREAM_WINDOW_BYTES of their
 * messages are in service at once, STREAM_THREADS of them on threads: the stream reads its
 * next message only when there is room. It ends, status OK, when its client has sent its
 * last message and every child is done; a message that is not a WorkerCompletion ends it
 * with INVALID_ARGUMENT (the children before it are served). A child whose activity result
 * waits in the hub for room (a full database) leaves the window for a second one: at most
 * STREAM_WAITING children, STREAM_WAITING_BYTES, STREAM_THREADS on threads (rpc_waits); the
 * worker's other completions go on meanwhile. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sync.h"
#include "server_internal.h"
#include "service/service.h"

#define STREAM_WINDOW 64       /* a completion stream's messages in service at once, at most */
#define STREAM_WINDOW_BYTES ((size_t)8 << 20)   /* ... and their bytes (one larger goes alone) */
#define STREAM_THREADS 4       /* ... and of them, served on threads (the unusual cases) */
#define STREAM_WAITING 256     /* children waiting for room, out of the window, at most */
#define STREAM_WAITING_BYTES ((size_t)16 << 20)   /* ... and their bytes */

/* stream_read: start reading completion stream C's next message (its recv_pending set). */
static bool stream_read(rpc_call *c)
{
    /* the first read sends the metadata that tells a worker this server has the method */
    grpc_metadata md = {.key = grpc_slice_from_static_string(DT_COMPLETION_STREAM_METADATA),
                        .value = grpc_slice_from_static_string("1")};
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->md_sent) {
        ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
        ops[n].data.send_initial_metadata.count = 1;
        ops[n++].data.send_initial_metadata.metadata = &md;
        c->md_sent = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &c->recv_buf;
    return grpc_call_start_batch(c->call, ops, n, &c->recv_tag, NULL) == GRPC_CALL_OK;
}

/* stream_settle: completion stream C's children or reads changed (C's mu held; unlocked
 * here, and C freed if nothing holds it): read on if there is room, or finish once the
 * client is done and so is every child. */
static void stream_settle(rpc_call *c)
{
    assert(core_mutex_held(&c->mu));
    bool read = !c->ended && !c->recv_pending && !c->finished &&
                c->children < STREAM_WINDOW && c->slow_children < STREAM_THREADS &&
                (c->children == 0 || c->children_bytes < STREAM_WINDOW_BYTES);
    bool finish = c->ended && !c->recv_pending && c->children == 0 && c->waiting == 0 &&
                  !c->finished;
    if (read)
        c->recv_pending = true;
    if (finish && c->owned) {   /* its holder finishes it as it lets go (release) */
        c->finish_due = true;
        finish = false;
    } else if (finish) {
        c->owned = c->async_owned = true;   /* rpc_finish lets go: the poller frees C */
    }
    rpc_settle(c);   /* C stays held: by the read, the finish, or its holder */
    if (read && !stream_read(c)) {
        pthread_mutex_lock(&c->mu);
        c->recv_pending = false;
        c->ended = true;
        stream_settle(c);
        return;
    }
    if (finish)
        rpc_finish(c, NULL, 0, GRPC_STATUS_OK, "");
}

/* child_new: a call for message DATA (LEN bytes, taken) of completion stream P; NULL, with
 * *CODE and *WHY for the stream's end, if it is no WorkerCompletion or memory ran out. */
static rpc_call *child_new(rpc_call *p, uint8_t *data, size_t len, grpc_status_code *code,
                           const char **why)
{
    const char *method = NULL;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    rpc_call *c = NULL;
    if (svc_completion_unwrap(data, len, &method, &body, &body_len) != DT_OK) {
        *code = GRPC_STATUS_INVALID_ARGUMENT;
        *why = DT_COMPLETION_STREAM_METHOD ": a message is not a WorkerCompletion holding one "
               "orchestrator, activity or entity completion";
    } else if ((c = rpc_call_new(p->srv)) == NULL) {
        *code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        *why = "out of memory";
    }
    if (c == NULL) {
        free(data);
        return NULL;
    }
    memmove(data, body, body_len);   /* the completion's own message, as a unary call has it */
    c->req_data = data;
    c->req_len = body_len;
    c->req_held = len;
    rpc_hold(p->srv, len, true);   /* counted, never refused: the stream's window bounds it */
    c->have_req = true;
    c->md_sent = true;
    c->parent = p;
    c->child_bytes = len;
    c->hub = p->hub;   /* the stream holds the hub's reference for its children */
    memcpy(c->task_hub, p->task_hub, sizeof c->task_hub);
    snprintf(c->method, sizeof c->method, "%s", method);
    return c;
}

/* rpc_stream_received: not OK: the client is done, or gone. */
void rpc_stream_received(dt_grpc_server *srv, rpc_call *c, bool ok)
{
    size_t len = 0;
    uint8_t *data = rpc_take_received(c, &len);
    if (!ok) {   /* the client is done, or gone */
        free(data);
        data = NULL;
    }
    grpc_status_code code = GRPC_STATUS_OK;
    const char *why = NULL;
    rpc_call *child = data ? child_new(c, data, len, &code, &why) : NULL;
    if (child && rpc_hub_deleted(c)) {   /* the stream would hold the hub open */
        child->parent = NULL;
        rpc_call_free(child);
        child = NULL;
        code = GRPC_STATUS_NOT_FOUND;
        why = "the task hub was deleted";
    }
    if (why)
        grpc_call_cancel_with_status(c->call, code, why, NULL);
    /* recv_pending stays set until the child is counted as what it is: a child that ends
     * meanwhile leaves the next read, and the finish, to us */
    pthread_mutex_lock(&c->mu);
    if (child) {
        c->children++;
        c->children_bytes += len;
    } else {
        c->ended = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (child) {
        const rpc_method *m = rpc_find_method(child->method);
        child->async_owned = true;
        if (m->async && len <= ASYNC_MAX && m->async(child)) {
            /* its rpc_finish lets go */
        } else {
            child->async_owned = false;
            child->slow = true;
            pthread_mutex_lock(&c->mu);
            c->slow_children++;
            pthread_mutex_unlock(&c->mu);
            rpc_to_thread(srv, child);
        }
    }
    pthread_mutex_lock(&c->mu);
    c->recv_pending = false;
    stream_settle(c);
}

/* rpc_child_finish: the log hears a refusal, at debug level. */
void rpc_child_finish(rpc_call *c, grpc_status_code code, const char *message, bool ends)
{
    pthread_mutex_lock(&c->mu);
    if (c->finished) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->finished = true;
    if (c->async_owned)
        c->async_owned = c->owned = false;
    pthread_mutex_unlock(&c->mu);
    if (code != GRPC_STATUS_OK)
        dt_log(DT_LOG_DEBUG, NULL, "%s on a completion stream: %s", c->method,
               message ? message : "");
    /* no room for what it unpacks to: rather than leave it to its lease, the stream ends, and
     * its worker, connecting again, is given its work back at once. (A completion the hub
     * refused after reading it, for a full database or JSON's bound, saw to its item: an
     * episode's goes back in a second, an activity's waited for room if it could (rpc_waits)
     * and else waits for its lease, as an entity's does. The stream goes on, its other items
     * with it, not counted as deliveries without a result.) */
    if (ends && code == GRPC_STATUS_RESOURCE_EXHAUSTED)
        grpc_call_cancel_with_status(c->parent->call, code, message ? message : "", NULL);
    pthread_mutex_lock(&c->mu);
    rpc_settle(c);
}

void rpc_child_done(rpc_call *c)
{
    rpc_call *p = c->parent;
    pthread_mutex_lock(&p->mu);
    if (c->waits) {
        p->waiting--;
        p->waiting_slow -= c->slow;
        p->waiting_bytes -= c->child_bytes;
    } else {
        p->children--;
        p->children_bytes -= c->child_bytes;
        p->slow_children -= c->slow;
    }
    stream_settle(p);
}

bool rpc_waits(rpc_call *c)
{
    rpc_call *p = c->parent;
    if (p == NULL) {   /* a unary call: asked once, from one hub thread */
        if (atomic_fetch_add(&c->srv->waiting_calls, 1) >= RPC_WAITING_CALLS) {
            atomic_fetch_sub(&c->srv->waiting_calls, 1);
            return false;
        }
        c->waits = true;
        return true;
    }
    pthread_mutex_lock(&p->mu);
    bool fits = p->waiting < STREAM_WAITING && p->waiting_slow + c->slow <= STREAM_THREADS &&
                p->waiting_bytes + c->child_bytes <= STREAM_WAITING_BYTES;
    if (!fits) {
        pthread_mutex_unlock(&p->mu);
        return false;
    }
    c->waits = true;
    p->children--;
    p->children_bytes -= c->child_bytes;
    p->slow_children -= c->slow;   /* its thread waits too, counted apart */
    p->waiting++;
    p->waiting_slow += c->slow;
    p->waiting_bytes += c->child_bytes;
    stream_settle(p);
    return true;
}

void rpc_stream_begin(rpc_call *c)
{
    c->reader = true;
    pthread_mutex_lock(&c->mu);
    stream_settle(c);   /* reads the first message (C is held by its caller) */
}
