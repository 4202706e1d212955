/* server.c — the gRPC server: binding, the completion queue and its poller thread, taking
 * new calls, reading their request messages, and serving each either on the poller (the
 * asynchronous handlers of the hot completions, which hand their work to the hub and answer
 * when it is durable) or on a thread of its own (the blocking handlers). Nothing waits for a
 * send: answers, and the messages of a work item stream, are started and the poller frees
 * what they held when gRPC reports them done; a call is freed when nothing holds it.
 * Every call also has a RECV_CLOSE_ON_SERVER batch from the start, so a client that goes
 * away (cancel, deadline, disconnect) is noticed by long waits and streams at once. A
 * worker's completion stream (ours, stream.c) has its messages read by the poller and served
 * as calls of their own, in a bounded window.
 * Bounded: the poller refuses a call without its token, or beyond the caps on calls and on
 * work item streams, before any thread takes it (admit.c); a request message that does not
 * arrive in time ends its call; a stream's unsent messages are capped (its sender waits);
 * and the bytes of the messages all calls hold are capped (held.c). */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/pb.h"
#include "core/listen.h"
#include "core/sync.h"
#include "server_internal.h"
#include "service/service.h"

#define PATH_PREFIX "/TaskHubSidecarService/"
#define PENDING_REQUESTS 8     /* calls requested from gRPC ahead of arrival */
#define IDLE_EXIT_S 30         /* an idle call thread waits this long for a call, then exits */
#define TREE_FACTOR 64         /* an unpacked request takes at most this times its bytes, */
#define TREE_SLACK ((size_t)64 << 10)        /* ... plus this (unpack); and past */
#define TREE_OWN 2             /* ... this times its bytes (plus the slack) it is held bytes */

/* ---- tags and batches --------------------------------------------------------------------- */

rpc_call *rpc_call_new(dt_grpc_server *srv)
{
    rpc_call *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->srv = srv;
    c->new_tag = (rpc_tag){TAG_NEW_CALL, c};
    c->batch_tag = (rpc_tag){TAG_BATCH, c};
    c->recv_tag = (rpc_tag){TAG_RECV, c};
    c->send_tag = (rpc_tag){TAG_SEND, c};
    c->finish_tag = (rpc_tag){TAG_FINISH, c};
    c->close_tag = (rpc_tag){TAG_CLOSE, c};
    c->owned = true;   /* the poller's, until it hands the call on */
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->metadata);
    return c;
}

void rpc_call_free(rpc_call *c)
{
    assert(!c->in_sends);
    dt_hub_ref_put(c->hub_ref);
    if (c->call)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->metadata);
    if (c->recv_buf)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->sending)
        rpc_drop_sent(c->srv, c->sending, c->sending_len);
    for (size_t i = 0; i < c->send_n; i++)
        rpc_drop_unsent(c->srv, c->send_queue[(c->send_first + i) % SEND_QUEUE_MAX]);
    if (c->finish_bb)
        rpc_drop_sent(c->srv, c->finish_bb, c->finish_len);
    if (c->has_details)
        grpc_slice_unref(c->finish_details);
    free(c->req_data);
    rpc_unhold(c->srv, c->req_held + c->tree_held);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c);
}

/* call_end: C is held by nobody: give back its slot and free it. */
static void call_end(rpc_call *c)
{
    dt_grpc_server *srv = c->srv;
    if (c->parent)
        rpc_child_done(c);
    else if (c->waits)
        atomic_fetch_sub(&srv->waiting_calls, 1);
    if (c->counted) {
        pthread_mutex_lock(&srv->mu);
        assert(srv->n_calls > 0 && (!c->stream || srv->n_streams > 0));
        srv->n_calls--;
        if (c->stream)
            srv->n_streams--;
        rpc_client_let_go(srv, c);
        if (srv->n_calls == 0)
            pthread_cond_broadcast(&srv->idle);
        pthread_mutex_unlock(&srv->mu);
    }
    rpc_call_free(c);
}

/* rpc_settle: unlock C's mutex (held) and free C if nothing holds it any more. Whoever lets go
 * of the last hold frees it. */
void rpc_settle(rpc_call *c)
{
    assert(core_mutex_held(&c->mu));
    bool unheld = !c->owned && !c->recv_pending && !c->send_pending && !c->finish_pending &&
                  c->children == 0 && c->waiting == 0 && (c->closed || !c->close_started);
    pthread_mutex_unlock(&c->mu);
    if (unheld)
        call_end(c);
}

/* release: the holder of C (the poller, a thread) is done with it. */
static void release(rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->owned = false;
    if (c->finish_due && !c->finished) {
        /* a completion stream that ended while we held it: its finish was left to us */
        c->finish_due = false;
        c->owned = c->async_owned = true;   /* rpc_finish lets go: the poller frees C */
        pthread_mutex_unlock(&c->mu);
        rpc_finish(c, NULL, 0, GRPC_STATUS_OK, "");
        return;
    }
    rpc_settle(c);
}

static bool request_call(dt_grpc_server *srv)
{
    rpc_call *c = rpc_call_new(srv);
    if (c == NULL)
        return false;
    grpc_call_error e = grpc_server_request_call(srv->server, &c->call, &c->details,
                                                 &c->metadata, srv->cq, srv->cq, &c->new_tag);
    if (e != GRPC_CALL_OK) {
        rpc_call_free(c);
        return false;
    }
    return true;
}

/* run_batch_within: start OPS on the call and wait for the poller to report them done. With
 * TIMEOUT_MS > 0, a batch not done by then is ended by cancelling the call with
 * DEADLINE_EXCEEDED (the batch then completes, failed, at once); *TIMED_OUT says so. */
static bool run_batch_within(rpc_call *c, const grpc_op *ops, size_t n, int64_t timeout_ms,
                             bool *timed_out)
{
    *timed_out = false;
    pthread_mutex_lock(&c->mu);
    c->batch_done = false;
    pthread_mutex_unlock(&c->mu);
    if (grpc_call_start_batch(c->call, ops, n, &c->batch_tag, NULL) != GRPC_CALL_OK)
        return false;
    struct timespec until = dt_deadline_ms(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->mu);
    while (!c->batch_done) {
        if (timeout_ms <= 0 || *timed_out) {
            pthread_cond_wait(&c->cv, &c->mu);
        } else if (pthread_cond_timedwait(&c->cv, &c->mu, &until) != 0 && !c->batch_done) {
            *timed_out = true;
            pthread_mutex_unlock(&c->mu);
            char msg[160];
            snprintf(msg, sizeof msg, "no request message within %lld ms (dtask serve "
                     "--request-timeout)", (long long)timeout_ms);
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL);
            pthread_mutex_lock(&c->mu);
        }
    }
    bool ok = c->batch_ok && !*timed_out;
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void start_close_watch(rpc_call *c)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    c->close_started = grpc_call_start_batch(c->call, &op, 1, &c->close_tag, NULL) ==
                       GRPC_CALL_OK;
}

/* ---- the helpers handlers use ------------------------------------------------------------- */

dt_hub *rpc_hub(rpc_call *c) { return c->hub; }
bool rpc_hub_deleted(rpc_call *c) { return c->hub_ref && dt_hub_ref_deleted(c->hub_ref); }
dt_hub_set *rpc_hubs(rpc_call *c) { return c->srv->hubs; }
const char *rpc_task_hub(rpc_call *c) { return c->task_hub; }
worker_registry *rpc_workers(rpc_call *c) { return c->srv->workers; }
const char *rpc_method_name(const rpc_call *c) { return c->method; }
bool rpc_stopping(rpc_call *c) { return atomic_load(&c->srv->stopping); }
int64_t rpc_health_ping_ms(rpc_call *c) { return c->srv->health_ping_ms; }
size_t rpc_max_message(rpc_call *c) { return c->srv->max_message; }

bool rpc_recv(rpc_call *c, rpc_bytes *out)
{
    if (c->have_req) {   /* the poller read it */
        out->data = c->req_data;
        out->len = c->req_len;
        c->req_data = NULL;
        c->have_req = false;
        return out->data != NULL;
    }
    out->data = NULL;
    out->len = 0;
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &c->recv_buf;
    size_t first = c->md_sent ? 1 : 0;
    c->md_sent = true;
    bool timed_out;
    if (!run_batch_within(c, ops + first, 2 - first, c->srv->request_timeout_ms, &timed_out) ||
        c->recv_buf == NULL)
        return false;
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, c->recv_buf))
        return false;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    size_t len = GRPC_SLICE_LENGTH(all);
    bool held = rpc_hold(c->srv, len, false);
    out->data = held ? malloc(len ? len : 1) : NULL;
    if (out->data) {
        memcpy(out->data, GRPC_SLICE_START_PTR(all), len);
        c->req_held = len;
    } else if (held) {
        rpc_unhold(c->srv, len);
    }
    out->len = len;
    grpc_slice_unref(all);
    grpc_byte_buffer_destroy(c->recv_buf);
    c->recv_buf = NULL;
    if (!held) {   /* answered here: the caller's own answer is then ignored */
        char msg[300];
        rpc_held_refusal(c->srv, "request", len, msg, sizeof msg);
        rpc_finish(c, NULL, 0, GRPC_STATUS_RESOURCE_EXHAUSTED, msg);
    }
    return out->data != NULL;
}

/* start_send: send BB, C's next stream message (mu held; C's `sending` now). */
static bool start_send(rpc_call *c, grpc_byte_buffer *bb)
{
    assert(core_mutex_held(&c->mu));
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    /* more wait behind it: gRPC may keep this one for the next write (the last one queued
     * goes without the hint and takes all with it), one system call for a burst of work
     * items, not one each. gRPC still reports each message done at once. */
    if (c->send_n > 0)
        op.flags = GRPC_WRITE_BUFFER_HINT;
    op.data.send_message.send_message = bb;
    c->sending = bb;
    c->sending_len = grpc_byte_buffer_length(bb);
    c->send_pending = true;
    rpc_sends_add(c);
    if (grpc_call_start_batch(c->call, &op, 1, &c->send_tag, NULL) == GRPC_CALL_OK)
        return true;
    rpc_sends_remove(c);
    c->sending = NULL;
    c->send_pending = false;
    rpc_drop_sent(c->srv, bb, c->sending_len);
    return false;
}

/* sent: the poller heard that C's message went (or failed): send the next waiting one. */
static void sent(rpc_call *c, bool ok)
{
    pthread_mutex_lock(&c->mu);
    rpc_sends_remove(c);
    rpc_drop_sent(c->srv, c->sending, c->sending_len);
    c->sending = NULL;
    c->send_pending = false;
    if (!ok) {   /* the stream broke: what waits will not go either */
        c->broken = true;
        for (; c->send_n > 0; c->send_n--, c->send_first = (c->send_first + 1) % SEND_QUEUE_MAX)
            rpc_drop_unsent(c->srv, c->send_queue[c->send_first]);
        c->send_bytes = 0;
    } else if (c->send_n > 0) {
        grpc_byte_buffer *next = c->send_queue[c->send_first];
        c->send_first = (c->send_first + 1) % SEND_QUEUE_MAX;
        c->send_n--;
        c->send_bytes -= grpc_byte_buffer_length(next);
        if (!start_send(c, next)) {   /* the call is done for: what waits will not go either */
            c->broken = true;
            for (; c->send_n > 0;
                 c->send_n--, c->send_first = (c->send_first + 1) % SEND_QUEUE_MAX)
                rpc_drop_unsent(c->srv, c->send_queue[c->send_first]);
            c->send_bytes = 0;
        }
    }
    pthread_cond_broadcast(&c->cv);
    rpc_settle(c);
}

bool rpc_send(rpc_call *c, const uint8_t *data, size_t len)
{
    if (rpc_closed(c) || !rpc_hold_waiting(c, len))
        return false;
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    pthread_mutex_lock(&c->mu);
    /* a slow reader: wait for room (what a stream holds unsent is bounded) */
    while ((c->send_n == SEND_QUEUE_MAX ||
            (c->send_n > 0 && c->send_bytes + len > SEND_QUEUE_BYTES)) &&
           !c->closed && !c->broken)
        pthread_cond_wait(&c->cv, &c->mu);
    bool ok = !c->closed && !c->broken;
    if (!ok) {
        rpc_drop_unsent(c->srv, bb);
    } else if (c->send_pending) {
        c->send_queue[(c->send_first + c->send_n++) % SEND_QUEUE_MAX] = bb;
        c->send_bytes += len;
    } else {
        ok = start_send(c, bb);
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

/* finish: end C (no completion stream's child) with answer BB (NULL for none; its bytes held,
 * and now C's), CODE and MESSAGE. */
static void finish(rpc_call *c, grpc_byte_buffer *bb, grpc_status_code code, const char *message)
{
    pthread_mutex_lock(&c->mu);
    while (c->send_pending)   /* a stream's status goes after its messages */
        pthread_cond_wait(&c->cv, &c->mu);
    if (c->finished) {
        pthread_mutex_unlock(&c->mu);
        if (bb)
            rpc_drop_unsent(c->srv, bb);
        return;
    }
    c->finished = true;
    grpc_op ops[3];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    if (!c->md_sent) {
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        c->md_sent = true;
    }
    if (bb) {
        c->finish_bb = bb;
        c->finish_len = grpc_byte_buffer_length(bb);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n].data.send_message.send_message = c->finish_bb;
        n++;
    }
    c->finish_details = grpc_slice_from_copied_string(message ? message : "");
    c->has_details = true;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = &c->finish_details;
    n++;
    /* an asynchronous handler lets go of the call here, with the batch out, so the poller
     * frees it when the batch is done, never the hub thread that called this */
    c->finish_pending = true;
    bool was_async = c->async_owned;
    if (was_async) {
        c->async_owned = false;
        c->owned = false;
    }
    pthread_mutex_unlock(&c->mu);
    if (bb)   /* a status alone is not held up by a client that does not read */
        rpc_sends_add(c);
    if (grpc_call_start_batch(c->call, ops, n, &c->finish_tag, NULL) == GRPC_CALL_OK)
        return;
    rpc_sends_remove(c);
    grpc_call_cancel(c->call, NULL);
    pthread_mutex_lock(&c->mu);
    c->finish_pending = false;
    if (!was_async) {
        rpc_settle(c);
        return;
    }
    /* called from a hub thread, which must not free the call (its hub reference may be the
     * last of a deleted hub, whose closing joins that very thread): a call thread does it */
    c->owned = true;
    c->reap = true;
    pthread_mutex_unlock(&c->mu);
    rpc_to_thread(c->srv, c);
}

void rpc_finish(rpc_call *c, const uint8_t *data, size_t len, grpc_status_code code,
                const char *message)
{
    if (c->parent) {   /* a message of a completion stream: its answer goes nowhere */
        rpc_child_finish(c, code, message, true);
        return;
    }
    grpc_byte_buffer *bb = NULL;
    char refusal[300];
    if (data && code == GRPC_STATUS_OK && rpc_hold_answer(c->srv, len)) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
    } else if (data && code == GRPC_STATUS_OK) {
        rpc_held_refusal(c->srv, "answer", len, refusal, sizeof refusal);
        code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        message = refusal;
    }
    finish(c, bb, code, message);
}

bool rpc_closed(rpc_call *c)
{
    pthread_mutex_lock(&c->mu);
    bool closed = c->closed || c->broken;
    pthread_mutex_unlock(&c->mu);
    return closed || rpc_stopping(c);
}

bool rpc_wait_closed(rpc_call *c, int64_t ms)
{
    struct timespec until = dt_deadline_ms(ms);
    pthread_mutex_lock(&c->mu);
    while (!c->closed && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    bool closed = c->closed;
    pthread_mutex_unlock(&c->mu);
    return closed || rpc_stopping(c);
}

grpc_status_code rpc_status_of(dt_status st)
{
    switch (st) {
    case DT_OK: return GRPC_STATUS_OK;
    case DT_ERR_INVALID_ARG: return GRPC_STATUS_INVALID_ARGUMENT;
    case DT_ERR_NOT_FOUND: return GRPC_STATUS_NOT_FOUND;
    case DT_ERR_ALREADY_EXISTS: return GRPC_STATUS_ALREADY_EXISTS;
    case DT_ERR_STATE: return GRPC_STATUS_FAILED_PRECONDITION;
    case DT_ERR_LEASE_LOST: return GRPC_STATUS_FAILED_PRECONDITION;
    case DT_ERR_TIMEOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
    case DT_ERR_UNIMPLEMENTED: return GRPC_STATUS_UNIMPLEMENTED;
    case DT_ERR_SHUTDOWN: return GRPC_STATUS_UNAVAILABLE;
    case DT_ERR_NOMEM:
    case DT_ERR_NO_SPACE: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case DT_ERR_CORRUPT: return GRPC_STATUS_DATA_LOSS;
    default: return GRPC_STATUS_INTERNAL;
    }
}

void rpc_fail(rpc_call *c, dt_status st, const char *message)
{
    message = message ? message : dt_strerror(st);
    if (c->parent)   /* a handler's refusal: it saw to its item itself */
        rpc_child_finish(c, rpc_status_of(st), message, false);
    else
        rpc_finish(c, NULL, 0, rpc_status_of(st), message);
}

/* An unpacking's charge: the first FREE bytes come with the request's own (its strings are
 * copied once, its records are small), what is beyond them is held bytes too. */
typedef struct tree_charge {
    dt_grpc_server *srv;
    size_t free, charged;
} tree_charge;

static bool charge_held(void *ctx, size_t n)
{
    tree_charge *t = ctx;
    size_t own = n < t->free ? n : t->free;
    t->free -= own;
    if (n > own && !core_budget_take_fit(&t->srv->held, n - own))
        return false;
    t->charged += n - own;
    return true;
}

/* unpack: C's request, LEN bytes at DATA, as a DESC message in ARENA. What the tree takes
 * past TREE_OWN times the bytes is held bytes too, until C is freed, and it is at most
 * TREE_FACTOR times the bytes: a few bytes of unknown fields or empty submessages unpack to
 * tens of times their size. */
static dt_status unpack(rpc_call *c, dt_arena *arena, const ProtobufCMessageDescriptor *desc,
                        const uint8_t *data, size_t len, void **out, dt_error *err)
{
    tree_charge t = {.srv = c->srv, .free = len * TREE_OWN + TREE_SLACK};
    pb_limit lim = {.max = len * TREE_FACTOR + TREE_SLACK, .charge = charge_held, .ctx = &t};
    dt_status st = pb_unpack_limited(arena, desc, data, len, &lim, out, err);
    c->tree_held += t.charged;
    return st;
}

bool rpc_peek_msg(rpc_call *c, dt_arena *arena, const ProtobufCMessageDescriptor *desc,
                  void **out)
{
    return c->have_req && unpack(c, arena, desc, c->req_data, c->req_len, out, NULL) == DT_OK;
}

rpc_pending *rpc_pending_new(rpc_call *c)
{
    rpc_pending *p = malloc(sizeof *p);
    if (p && (p->arena = dt_arena_new()) == NULL) {
        free(p);
        return NULL;
    }
    if (p)
        p->call = c;
    return p;
}

void rpc_pending_free(rpc_pending *p)
{
    if (p == NULL)
        return;
    dt_arena_free(p->arena);
    free(p);
}

bool rpc_recv_msg(rpc_call *c, dt_arena *arena, const ProtobufCMessageDescriptor *desc,
                  void **out)
{
    rpc_bytes b;
    if (!rpc_recv(c, &b)) {
        rpc_finish(c, NULL, 0, GRPC_STATUS_CANCELLED, "no request message");
        return false;
    }
    dt_error err = {0};
    dt_status st = unpack(c, arena, desc, b.data, b.len, out, &err);
    free(b.data);
    if (st != DT_OK) {
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %.512s", c->method,
                 err.message[0] ? err.message : dt_strerror(st));
        rpc_finish(c, NULL, 0, rpc_status_of(st), msg);
        return false;
    }
    return true;
}

void rpc_reply(rpc_call *c, const ProtobufCMessage *m)
{
    if (c->parent) {   /* a completion stream's child: its answer goes nowhere, unpacked */
        rpc_child_finish(c, GRPC_STATUS_OK, "", false);
        return;
    }
    /* counted before it is packed, and packed where gRPC sends it from: no copy */
    size_t n = protobuf_c_message_get_packed_size(m);
    if (!rpc_hold_answer(c->srv, n)) {
        char refusal[300];
        rpc_held_refusal(c->srv, "answer", n, refusal, sizeof refusal);
        finish(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, refusal);
        return;
    }
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    finish(c, bb, GRPC_STATUS_OK, "");
}

void rpc_fail_err(rpc_call *c, dt_status st, const dt_error *err)
{
    rpc_fail(c, st, err && err->message[0] ? err->message : dt_strerror(st));
}

/* ---- dispatch -------------------------------------------------------------------------------- */

const rpc_method *rpc_find_method(const char *method)
{
    const rpc_method *tables[] = {rpc_client_methods, rpc_worker_methods};
    for (size_t t = 0; t < 2; t++)
        for (const rpc_method *m = tables[t]; m->name; m++)
            if (strcmp(m->name, method) == 0)
                return m;
    return NULL;
}

bool rpc_metadata_is(rpc_call *c, const char *key, const char *value)
{
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *md = &c->metadata.metadata[i];
        if (grpc_slice_str_cmp(md->key, key) == 0 && grpc_slice_str_cmp(md->value, value) == 0)
            return true;
    }
    return false;
}

/* read_task_hub: the call's "taskhub" metadata into c->task_hub (the default hub's name when
 * there is none or it is empty, "" when it is too long to be a hub's). */
static void read_task_hub(rpc_call *c)
{
    snprintf(c->task_hub, sizeof c->task_hub, "%s", DT_TASK_HUB_DEFAULT);
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *md = &c->metadata.metadata[i];
        size_t len = GRPC_SLICE_LENGTH(md->value);
        if (grpc_slice_str_cmp(md->key, "taskhub") != 0 || len == 0)
            continue;
        if (len > DT_TASK_HUB_NAME_MAX)
            len = 0;
        memcpy(c->task_hub, GRPC_SLICE_START_PTR(md->value), len);
        c->task_hub[len] = '\0';
    }
}

/* open_task_hub: the hub the call is for, held until the call ends; false (the call
 * finished with the reason) if there is none by that name. CreateTaskHub and DeleteTaskHub
 * name the hub they act on, and take none. */
static bool open_task_hub(rpc_call *c)
{
    if (c->hub)
        return true;   /* the poller found it open */
    read_task_hub(c);
    if (c->srv->hubs == NULL) {
        c->hub = c->srv->hub;   /* one hub: every name is it */
        return true;
    }
    if (strcmp(c->method, "CreateTaskHub") == 0 || strcmp(c->method, "DeleteTaskHub") == 0)
        return true;
    dt_error err = {0};
    dt_status st = c->task_hub[0]
                       ? dt_hub_set_get(c->srv->hubs, c->task_hub, &c->hub_ref, &err)
                       : dt_error_set(&err, DT_ERR_INVALID_ARG, "the taskhub metadata is longer "
                                      "than %d characters", DT_TASK_HUB_NAME_MAX);
    if (st == DT_OK) {
        c->hub = dt_hub_ref_hub(c->hub_ref);
        return true;
    }
    /* answered without reading the request: a refusal never waits on the client */
    rpc_finish(c, NULL, 0, st == DT_ERR_STATE ? GRPC_STATUS_RESOURCE_EXHAUSTED : rpc_status_of(st),
               err.message);
    return false;
}

/* serve: run call C (authorized by the poller) on this thread to its end. */
static void serve(rpc_call *c)
{
    if (c->reap)   /* nothing to serve: only to be let go of here (rpc_finish) */
        return;
    const rpc_method *m = rpc_find_method(c->method);
    bool known = m != NULL;
    rpc_handler h = m ? m->handler : NULL;
    if (h && !open_task_hub(c)) {
        /* answered */
    } else if (h) {
        h(c);
    } else {
        char msg[256];
        if (known)
            snprintf(msg, sizeof msg, "%s is not supported by this server (dtask serve)",
                     c->method);
        else
            snprintf(msg, sizeof msg, "unknown method %.*s",
                     (int)GRPC_SLICE_LENGTH(c->details.method),
                     (const char *)GRPC_SLICE_START_PTR(c->details.method));
        rpc_finish(c, NULL, 0, GRPC_STATUS_UNIMPLEMENTED, msg);
    }
}

/* next_call: the next queued call for this now idle thread, or NULL when it should exit
 * (stopping, or idle too long). srv->mu held. */
static rpc_call *next_call(dt_grpc_server *srv)
{
    struct timespec until = dt_deadline_ms(IDLE_EXIT_S * 1000);
    srv->n_idle++;
    while (srv->queue_head == NULL && !atomic_load(&srv->stopping))
        if (pthread_cond_timedwait(&srv->work, &srv->mu, &until) != 0)
            break;
    srv->n_idle--;
    rpc_call *c = srv->queue_head;
    if (c) {
        srv->queue_head = c->next;
        if (srv->queue_head == NULL)
            srv->queue_tail = NULL;
    }
    return c;
}

static void *call_thread(void *arg)
{
    pthread_setname_np(pthread_self(), "dt-rpc");
    dt_grpc_server *srv = ((rpc_call *)arg)->srv;
    for (rpc_call *c = arg; c;) {
        serve(c);
        /* letting C go may bring the next call at once (a completion stream reads on when a
         * child ends): this thread, about to look for one, takes it, not a new thread */
        pthread_mutex_lock(&srv->mu);
        srv->n_soon++;
        pthread_mutex_unlock(&srv->mu);
        release(c);   /* freed when its answer is out and its close watch done */
        pthread_mutex_lock(&srv->mu);
        srv->n_soon--;
        c = next_call(srv);
        if (c == NULL && --srv->n_threads == 0)
            pthread_cond_broadcast(&srv->idle);
        pthread_mutex_unlock(&srv->mu);
    }
    return NULL;
}

/* refuse: end call C from the poller, which must not block: the call is cancelled with CODE
 * and MESSAGE (the client gets them as its status) and freed when its close watch completes. */
static void refuse(rpc_call *c, grpc_status_code code, const char *message)
{
    if (c->parent)   /* a completion stream's message: no call of its own to cancel */
        rpc_finish(c, NULL, 0, code, message);
    else
        grpc_call_cancel_with_status(c->call, code, message, NULL);
    release(c);
}

/* recv_unlink: C no longer waits for its request (the poller's list). */
static void recv_unlink(dt_grpc_server *srv, rpc_call *c)
{
    if (!c->in_recv_list)
        return;
    *(c->recv_prev ? &c->recv_prev->recv_next : &srv->recv_head) = c->recv_next;
    *(c->recv_next ? &c->recv_next->recv_prev : &srv->recv_tail) = c->recv_prev;
    c->in_recv_list = false;
}

/* start_recv: read C's request message on the poller, due within the request timeout
 * (every deadline is now + the same timeout, so the list stays in order). */
static void start_recv(dt_grpc_server *srv, rpc_call *c)
{
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &c->recv_buf;
    c->md_sent = true;
    c->recv_pending = true;
    c->recv_deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_millis(srv->request_timeout_ms, GPR_TIMESPAN));
    c->recv_next = NULL;
    c->recv_prev = srv->recv_tail;
    *(srv->recv_tail ? &srv->recv_tail->recv_next : &srv->recv_head) = c;
    srv->recv_tail = c;
    c->in_recv_list = true;
    if (grpc_call_start_batch(c->call, ops, 2, &c->recv_tag, NULL) != GRPC_CALL_OK) {
        recv_unlink(srv, c);
        c->recv_pending = false;
        refuse(c, GRPC_STATUS_INTERNAL, "cannot read the request");
    }
}

/* expire_recvs: cancel the calls whose request message is overdue; their reads then
 * complete, failed. */
static void expire_recvs(dt_grpc_server *srv)
{
    gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
    while (srv->recv_head && gpr_time_cmp(srv->recv_head->recv_deadline, now) <= 0) {
        rpc_call *c = srv->recv_head;
        recv_unlink(srv, c);
        c->timed_out = true;
        char msg[160];
        snprintf(msg, sizeof msg, "no request message within %lld ms (dtask serve "
                 "--request-timeout)", (long long)srv->request_timeout_ms);
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED, msg, NULL);
    }
}

/* rpc_take_received: the bytes of the message C's read brought (malloc'd; NULL if none, or out
 * of memory), its buffer freed. */
uint8_t *rpc_take_received(rpc_call *c, size_t *len)
{
    uint8_t *data = NULL;
    grpc_byte_buffer_reader r;
    if (c->recv_buf && grpc_byte_buffer_reader_init(&r, c->recv_buf)) {
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        *len = GRPC_SLICE_LENGTH(all);
        data = malloc(*len ? *len : 1);
        if (data)
            memcpy(data, GRPC_SLICE_START_PTR(all), *len);
        grpc_slice_unref(all);
    }
    if (c->recv_buf) {
        grpc_byte_buffer_destroy(c->recv_buf);
        c->recv_buf = NULL;
    }
    return data;
}

/* received: C's request read finished (OK: with a message, or the client gave up): serve
 * it, on the poller when its method has an asynchronous handler that takes it. */
static void received(dt_grpc_server *srv, rpc_call *c, bool ok)
{
    recv_unlink(srv, c);
    pthread_mutex_lock(&c->mu);
    c->recv_pending = false;
    pthread_mutex_unlock(&c->mu);
    c->req_data = rpc_take_received(c, &c->req_len);
    if (!ok) {   /* the client gave up */
        free(c->req_data);
        c->req_data = NULL;
    }
    if (c->req_data == NULL) {
        rpc_finish(c, NULL, 0, GRPC_STATUS_CANCELLED, "no request message");
        release(c);
        return;
    }
    if (!rpc_hold(srv, c->req_len, false)) {
        char refusal[300];
        rpc_held_refusal(srv, "request", c->req_len, refusal, sizeof refusal);
        free(c->req_data);
        c->req_data = NULL;
        rpc_finish(c, NULL, 0, GRPC_STATUS_RESOURCE_EXHAUSTED, refusal);
        release(c);
        return;
    }
    c->req_held = c->req_len;
    c->have_req = true;
    const rpc_method *m = rpc_find_method(c->method);
    if (m->async && c->req_len <= ASYNC_MAX) {   /* a big one would hold the poller up */
        c->async_owned = true;
        if (m->async(c))
            return;   /* its rpc_finish lets go */
        c->async_owned = false;
    }
    rpc_to_thread(srv, c);
}

static void start_call(dt_grpc_server *srv, rpc_call *c)
{
    size_t len = GRPC_SLICE_LENGTH(c->details.method);
    const char *path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    size_t plen = strlen(PATH_PREFIX);
    size_t elen = strlen("/" DT_COMPLETION_STREAM_METHOD);
    if (len > plen && len - plen < sizeof c->method && memcmp(path, PATH_PREFIX, plen) == 0) {
        memcpy(c->method, path + plen, len - plen);
        c->method[len - plen] = '\0';
    } else if (len == elen && memcmp(path, "/" DT_COMPLETION_STREAM_METHOD, elen) == 0) {
        snprintf(c->method, sizeof c->method, "%s", DT_COMPLETION_STREAM_METHOD);
    }
    bool completions = strcmp(c->method, DT_COMPLETION_STREAM_METHOD) == 0;
    start_close_watch(c);
    /* the token and the caps are checked here, from the metadata alone: a call refused takes
     * no thread and waits for nothing from its client */
    if (!rpc_authorized(c)) {
        refuse(c, GRPC_STATUS_UNAUTHENTICATED,
               "this server needs a bearer token: send the metadata "
               "'authorization: Bearer <token>' (the token of dtask serve --token-file)");
        return;
    }
    if (completions && srv->no_completion_stream) {
        refuse(c, GRPC_STATUS_UNIMPLEMENTED, DT_COMPLETION_STREAM_METHOD " is not served here "
               "(dtask serve --no-completion-stream)");
        return;
    }
    char refusal[240];
    if (!rpc_take_slot(srv, c, refusal, sizeof refusal)) {
        refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, refusal);
        return;
    }
    /* the hub, when it is open already (for a refusal, the thread does it without reading
     * the request); then the poller reads the request, and the thread waits for nothing */
    if (srv->hubs == NULL) {
        read_task_hub(c);
        c->hub = srv->hub;
    } else if (strcmp(c->method, "CreateTaskHub") != 0 &&
               strcmp(c->method, "DeleteTaskHub") != 0) {
        read_task_hub(c);
        if (c->task_hub[0])
            dt_hub_set_peek(srv->hubs, c->task_hub, &c->hub_ref);
        c->hub = c->hub_ref ? dt_hub_ref_hub(c->hub_ref) : NULL;
    }
    const rpc_method *m = rpc_find_method(c->method);
    if (c->hub && completions) {
        rpc_stream_begin(c);
        release(c);
    } else if (c->hub && m && m->handler) {
        start_recv(srv, c);
    } else {
        rpc_to_thread(srv, c);
    }
}

/* rpc_to_thread: serve C on a thread: an idle one, or a new one. */
void rpc_to_thread(dt_grpc_server *srv, rpc_call *c)
{
    /* an idle thread takes it if there is one, or one on its way to look (each takes one) */
    pthread_mutex_lock(&srv->mu);
    int queued = 0;
    for (rpc_call *q = srv->queue_head; q; q = q->next)
        queued++;
    if (srv->n_idle + srv->n_soon > queued) {
        c->next = NULL;
        if (srv->queue_tail)
            srv->queue_tail->next = c;
        else
            srv->queue_head = c;
        srv->queue_tail = c;
        pthread_mutex_unlock(&srv->mu);
        pthread_cond_signal(&srv->work);   /* after the unlock: the thread woken takes mu */
        return;
    }
    srv->n_threads++;
    pthread_mutex_unlock(&srv->mu);
    pthread_attr_t attr;
    bool attr_made = pthread_attr_init(&attr) == 0;
    if (attr_made) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 512 * 1024);
    }
    pthread_t t;
    if (!attr_made || pthread_create(&t, &attr, call_thread, c) != 0) {
        /* no thread: refuse the call here (its slot goes back when it is freed) */
        pthread_mutex_lock(&srv->mu);
        if (--srv->n_threads == 0)
            pthread_cond_broadcast(&srv->idle);
        pthread_mutex_unlock(&srv->mu);
        refuse(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server out of threads");
    }
    if (attr_made)
        pthread_attr_destroy(&attr);
}

static void *poller_main(void *arg)
{
    dt_grpc_server *srv = arg;
    pthread_setname_np(pthread_self(), "dt-grpc-poll");
    for (;;) {
        rpc_expire_sends(srv);   /* before the wait: an event it returns is handled first */
        /* at least once a second, for the sends (others' threads add them) */
        gpr_timespec until = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                          gpr_time_from_millis(1000, GPR_TIMESPAN));
        if (srv->recv_head && gpr_time_cmp(srv->recv_head->recv_deadline, until) < 0)
            until = srv->recv_head->recv_deadline;
        grpc_event ev = grpc_completion_queue_next(srv->cq, until, NULL);
        expire_recvs(srv);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        rpc_tag *tag = ev.tag;
        rpc_call *c = tag->call;
        switch (tag->kind) {
        case TAG_NEW_CALL:
            if (!ev.success) {      /* the server is shutting down */
                rpc_call_free(c);
                break;
            }
            if (!atomic_load(&srv->stopping))
                request_call(srv);
            start_call(srv, c);
            break;
        case TAG_BATCH:
            pthread_mutex_lock(&c->mu);
            c->batch_done = true;
            c->batch_ok = ev.success;
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            break;
        case TAG_RECV:
            if (c->reader)
                rpc_stream_received(srv, c, ev.success);
            else
                received(srv, c, ev.success);
            break;
        case TAG_SEND:
            sent(c, ev.success);
            break;
        case TAG_FINISH:
            rpc_sends_remove(c);
            pthread_mutex_lock(&c->mu);
            c->finish_pending = false;
            if (c->finish_bb) {   /* sent, or never will be: what it held goes now */
                rpc_drop_sent(srv, c->finish_bb, c->finish_len);
                c->finish_bb = NULL;
            }
            rpc_settle(c);
            break;
        case TAG_CLOSE:
            pthread_mutex_lock(&c->mu);
            c->closed = true;
            pthread_cond_broadcast(&c->cv);
            rpc_settle(c);
            break;
        case TAG_SHUTDOWN:
            break;
        }
    }
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* server_free: the one teardown, for a failed start and for stop alike: whatever of SRV was
 * made, once no call thread and no poller runs. SRV->server was shut down if it started. */
static void server_free(dt_grpc_server *srv)
{
    rpc_listener_free(srv->listener);
    if (srv->server)
        grpc_server_destroy(srv->server);
    if (srv->cq) {
        /* A queue is drained to its shutdown event before it is destroyed: the poller did that
         * (dt_grpc_server_stop), or no poller ran and it is done here, freeing the calls
         * requested ahead, whose tags come back failed. */
        if (!srv->poller_started) {
            grpc_completion_queue_shutdown(srv->cq);
            grpc_event ev;
            while ((ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                    NULL)).type != GRPC_QUEUE_SHUTDOWN) {
                rpc_tag *t = ev.tag;
                if (t && t->kind == TAG_NEW_CALL)
                    rpc_call_free(t->call);
            }
        }
        grpc_completion_queue_destroy(srv->cq);
    }
    workers_free(srv->workers);
    if (srv->sync_made) {
        pthread_mutex_destroy(&srv->mu);
        pthread_cond_destroy(&srv->idle);
        pthread_cond_destroy(&srv->work);
        pthread_cond_destroy(&srv->room);
        pthread_mutex_destroy(&srv->held_mu);
        pthread_mutex_destroy(&srv->send_mu);
    }
    free(srv->token);
    free(srv);
    grpc_shutdown();
}

/* sync_init: SRV's mutexes and conditions, all or none. */
static bool sync_init(dt_grpc_server *srv)
{
    int made = 0;   /* how many of them, in this order, so a failure undoes those */
    if (pthread_mutex_init(&srv->mu, NULL) != 0)
        goto undo;
    made++;
    if (pthread_cond_init(&srv->idle, NULL) != 0)
        goto undo;
    made++;
    if (pthread_cond_init(&srv->work, NULL) != 0)
        goto undo;
    made++;
    if (pthread_mutex_init(&srv->held_mu, NULL) != 0)
        goto undo;
    made++;
    if (pthread_cond_init(&srv->room, NULL) != 0)
        goto undo;
    made++;
    if (pthread_mutex_init(&srv->send_mu, NULL) == 0)
        return true;
undo:
    if (made > 4)
        pthread_cond_destroy(&srv->room);
    if (made > 3)
        pthread_mutex_destroy(&srv->held_mu);
    if (made > 2)
        pthread_cond_destroy(&srv->work);
    if (made > 1)
        pthread_cond_destroy(&srv->idle);
    if (made > 0)
        pthread_mutex_destroy(&srv->mu);
    return false;
}

dt_status dt_grpc_server_start(dt_hub *hub, const dt_grpc_options *opts, dt_grpc_server **out,
                               dt_error *err)
{
    if ((hub == NULL) == (opts == NULL || opts->hubs == NULL))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "dt_grpc_server_start serves a hub or the "
                            "task hubs of OPTS->hubs, one of the two");
    *out = NULL;
    if (opts && (opts->max_calls < 0 || opts->max_streams < 0 || opts->request_timeout_ms < 0 ||
                 opts->send_timeout_ms < 0 || opts->max_connections < 0 ||
                 opts->max_per_client < 0 || opts->idle_timeout_ms < 0 ||
                 opts->max_calls_per_client < 0 || opts->max_streams_per_client < 0))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "gRPC server: max_calls (%d), max_streams "
                            "(%d), max_calls_per_client (%d), max_streams_per_client (%d), "
                            "max_connections (%d), max_per_client (%d), "
                            "request_timeout_ms (%lld), send_timeout_ms (%lld) and "
                            "idle_timeout_ms (%lld) cannot be negative", opts->max_calls,
                            opts->max_streams, opts->max_calls_per_client,
                            opts->max_streams_per_client, opts->max_connections,
                            opts->max_per_client,
                            (long long)opts->request_timeout_ms,
                            (long long)opts->send_timeout_ms, (long long)opts->idle_timeout_ms);
    const char *listen = opts && opts->listen ? opts->listen : DT_DEFAULT_GRPC_ADDRESS;
    int max_msg = (int)(opts && opts->max_message ? opts->max_message : DT_GRPC_MAX_MESSAGE);
    grpc_init();
    core_absl_deadlock_checks_off();
    dt_grpc_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        grpc_shutdown();
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    srv->hub = hub;
    srv->hubs = opts ? opts->hubs : NULL;
    srv->max_message = (size_t)max_msg;
    srv->health_ping_ms =
        opts && opts->health_ping_ms > 0 ? opts->health_ping_ms : DT_GRPC_HEALTH_PING_MS;
    srv->max_calls = opts && opts->max_calls > 0 ? opts->max_calls : DT_GRPC_MAX_CALLS;
    srv->max_streams = opts && opts->max_streams > 0 ? opts->max_streams : DT_GRPC_MAX_STREAMS;
    if (srv->max_streams > srv->max_calls)
        srv->max_streams = srv->max_calls;
    srv->max_client_calls = opts && opts->max_calls_per_client > 0
                                ? opts->max_calls_per_client : (srv->max_calls + 1) / 2;
    srv->max_client_streams = opts && opts->max_streams_per_client > 0
                                  ? opts->max_streams_per_client : (srv->max_streams + 1) / 2;
    if (srv->max_client_calls > srv->max_calls)
        srv->max_client_calls = srv->max_calls;
    if (srv->max_client_streams > srv->max_streams)
        srv->max_client_streams = srv->max_streams;
    srv->request_timeout_ms =
        opts && opts->request_timeout_ms > 0 ? opts->request_timeout_ms : DT_REQUEST_TIMEOUT_MS;
    srv->send_timeout_ms =
        opts && opts->send_timeout_ms > 0 ? opts->send_timeout_ms : DT_GRPC_SEND_TIMEOUT_MS;
    srv->no_completion_stream = opts && opts->no_completion_stream;
    srv->held.max = opts && opts->max_held ? opts->max_held : DT_GRPC_MAX_HELD;
    dt_status st = DT_OK;
    if (opts && opts->token && (srv->token = strdup(opts->token)) == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!(srv->sync_made = sync_init(srv))) {
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot create the gRPC server's mutex");
        goto fail;
    }
    /* SO_REUSEPORT off: gRPC core turns it on, and a second server on a port in use would
     * then start and silently take half the connections instead of failing to bind */
    int64_t idle_ms = opts && opts->idle_timeout_ms > 0 ? opts->idle_timeout_ms
                                                         : DT_GRPC_IDLE_TIMEOUT_MS;
    grpc_arg args[4] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = max_msg},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = max_msg},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONNECTION_IDLE_MS,
         .value.integer = idle_ms > INT32_MAX ? INT32_MAX : (int)idle_ms},
    };
    grpc_channel_args cargs = {4, args};
    srv->workers = workers_new();
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    srv->server = grpc_server_create(&cargs, NULL);
    if (srv->workers == NULL || srv->cq == NULL || srv->server == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    bool tls = opts && opts->tls_cert_pem && opts->tls_key_pem;
    if (opts && !tls && (opts->tls_cert_pem || opts->tls_key_pem)) {
        st = dt_error_set(err, DT_ERR_INVALID_ARG, "gRPC TLS needs both a certificate and a key");
        goto fail;
    }
    /* ours takes HOST:PORT in plaintext; TLS, and gRPC's own targets (unix:PATH, ipv4:...),
     * stay with gRPC's listener */
    bool own = !tls && strchr(listen, '/') == NULL && strncmp(listen, "unix:", 5) != 0 &&
               strncmp(listen, "ipv4:", 5) != 0 && strncmp(listen, "ipv6:", 5) != 0;
    if (!own) {
        grpc_ssl_pem_key_cert_pair pair = {tls ? opts->tls_key_pem : NULL,
                                           tls ? opts->tls_cert_pem : NULL};
        grpc_server_credentials *creds =
            tls ? grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL)
                : grpc_insecure_server_credentials_create();
        if (creds == NULL) {
            st = dt_error_set(err, DT_ERR_INVALID_ARG, "gRPC TLS: the certificate or key is "
                              "not usable PEM");
            goto fail;
        }
        srv->port = grpc_server_add_http2_port(srv->server, listen, creds);
        grpc_server_credentials_release(creds);
        if (srv->port == 0) {
            st = dt_error_set(err, DT_ERR_IO, "cannot listen on %s for gRPC (in use, or not a "
                                              "local address?)", listen);
            goto fail;
        }
    }
    grpc_server_start(srv->server);
    for (int i = 0; i < PENDING_REQUESTS; i++)
        request_call(srv);
    int max_conns = opts && opts->max_connections > 0 ? opts->max_connections
                                                      : DT_GRPC_MAX_CONNECTIONS;
    int per_client = opts && opts->max_per_client > 0 ? opts->max_per_client
                                                      : DT_GRPC_MAX_PER_CLIENT;
    if (own && (st = rpc_listener_start(srv->server, listen, core_fd_share(max_conns, 4),
                                         (unsigned)per_client, &srv->listener, &srv->port,
                                         err)) != DT_OK)
        goto fail_started;
    if (pthread_create(&srv->poller, NULL, poller_main, srv) != 0) {
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot start the gRPC poller thread");
        goto fail_started;
    }
    srv->poller_started = true;
    *out = srv;
    return DT_OK;
fail_started:
    rpc_listener_stop(srv->listener);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, NULL);
    grpc_server_cancel_all_calls(srv->server);
fail:
    server_free(srv);
    return st;
}

int dt_grpc_server_port(const dt_grpc_server *s)
{
    return s->port;
}

void dt_grpc_server_stop(dt_grpc_server *srv)
{
    if (srv == NULL)
        return;
    atomic_store(&srv->stopping, true);
    rpc_listener_stop(srv->listener);   /* no connection comes after the shutdown (its
                                         * table is freed with the server, after the poller) */
    rpc_tag shutdown_tag = {TAG_SHUTDOWN, NULL};
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &shutdown_tag);
    grpc_server_cancel_all_calls(srv->server);
    /* completions that wait for room (a full database) are answered now, not held for it */
    if (srv->hubs)
        dt_hub_set_stop_waiting(srv->hubs);
    else if (srv->hub)
        dt_hub_stop_waiting(srv->hub);
    /* call threads see their calls closed and finish; their streams give work back; idle
     * ones are woken to exit */
    pthread_mutex_lock(&srv->mu);
    pthread_cond_broadcast(&srv->work);
    while (srv->n_threads > 0 || srv->n_calls > 0)   /* the poller frees the last ones */
        pthread_cond_wait(&srv->idle, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
    /* the poller drains the queue to its shutdown event, freeing calls requested ahead */
    grpc_completion_queue_shutdown(srv->cq);
    pthread_join(srv->poller, NULL);
    workers_free(srv->workers);   /* what it kept past its calls (chunks) given back too */
    srv->workers = NULL;
    assert(core_budget_used(&srv->held) == 0);   /* every call freed, what it held given back */
    server_free(srv);
}
