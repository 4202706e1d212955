/* client_conn.c — the gRPC client transport: a client of TaskHubSidecarService that moves
 * serialized messages (what is in them is the caller's business): unary calls, server streams
 * and client streams. One channel. A blocking call has a completion queue of its own that the
 * calling thread plucks its tags from, so calls from many threads never wait on one another;
 * asynchronous unary calls share one queue and one thread of the connection's, which runs
 * their callbacks, so many calls in flight hold no thread each. */
#include <assert.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sync.h"
#include "durabletask/grpc_client.h"

#define PATH_PREFIX "/TaskHubSidecarService/"
#define CLOSE_WAIT_MS 5000      /* a closed client stream's status, waited for at most */
#define SEND_WAIT_MS 30000      /* a client stream's message, waited for at most (as a unary
                                 * call's deadline): then the stream is given up */
#define RECONNECT_FIRST_MS 100  /* a lost or refused connection tried again after this, */
#define RECONNECT_MAX_MS 2000   /* growing 1.6x (+-20%) up to this: the worker's retry pace */
#define WAIT_MIN_MS 100         /* a retry's pause that ends at a connection, at least */

/* The metadata every call sends: the bearer token, the task hub and the list order, each
 * when set. */
enum { MD_AUTH, MD_HUB, MD_ORDER, MD_SESSIONS, MD_COUNT };

/* A unary call's batch: what it sends, and where gRPC puts what comes back. */
typedef struct unary {
    grpc_op ops[6];
    grpc_byte_buffer *send, *recv;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
} unary;

/* An asynchronous unary call in flight; its address is its batch's tag. */
typedef struct async_call {
    unary u;
    grpc_call *call;
    dt_grpc_done_fn done;
    void *arg;
    struct async_call *prev, *next;     /* in the connection's list of calls in flight */
} async_call;

struct dt_grpc_conn {
    grpc_channel *channel;
    grpc_metadata md[MD_COUNT];  /* the ones set come first */
    size_t n_md;
    bool has[MD_COUNT];
    grpc_metadata set[MD_COUNT]; /* by kind */
    /* asynchronous calls: their queue and its thread, made by the first such call; the calls
     * in flight, which closing cancels; how many are starting their batches (started is
     * signalled when none is, for closing); closing refuses new ones. amu guards them. */
    pthread_mutex_t amu;
    pthread_cond_t started;
    grpc_completion_queue *acq;
    pthread_t athread;
    async_call *calls;
    int starting;
    bool closing;
};

/* A client stream: one send at a time (mu), each plucked by its sender; the status batch
 * is out from the start (its tag is the queue itself), so a server that ends the stream is
 * noticed at the next send. */
struct dt_grpc_sender {
    grpc_call *call;
    grpc_completion_queue *cq;
    pthread_mutex_t mu;
    bool broken;                /* not open, or a send failed: the stream is over */
    bool status_out, status_done;   /* the status batch: started; plucked */
    char md_tag, send_tag;      /* their addresses are the batches' tags */
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
};

struct dt_grpc_stream {
    grpc_call *call;
    grpc_completion_queue *cq;
    grpc_byte_buffer *recv;
    bool recv_pending;          /* a RECV_MESSAGE batch is out */
    bool got_initial;           /* initial metadata asked for (with the first message) */
    grpc_metadata_array initial;
    bool ended;
    grpc_metadata_array trailing;
    grpc_status_code status;
    grpc_slice details;
};

dt_status dt_grpc_conn_open(const char *target, dt_grpc_conn **out, dt_error *err)
{
    if (target == NULL)
        target = DT_DEFAULT_GRPC_ADDRESS;
    grpc_init();
    core_absl_deadlock_checks_off();
    dt_grpc_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        grpc_shutdown();
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    /* Reconnects at most RECONNECT_MAX_MS apart: gRPC's own backoff (1 s growing 1.6x to
     * 120 s) left a worker started before its server 10 s or more without it, and a call
     * fails at once while the channel waits to reconnect. */
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = 64 << 20},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = RECONNECT_FIRST_MS},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = RECONNECT_MAX_MS},
    };
    grpc_channel_args cargs = {sizeof args / sizeof args[0], args};
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    c->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    bool locks = pthread_mutex_init(&c->amu, NULL) == 0;
    if (locks && pthread_cond_init(&c->started, NULL) != 0) {
        pthread_mutex_destroy(&c->amu);
        locks = false;
    }
    if (c->channel == NULL || !locks) {
        if (c->channel)
            grpc_channel_destroy(c->channel);
        if (locks) {
            pthread_cond_destroy(&c->started);
            pthread_mutex_destroy(&c->amu);
        }
        free(c);
        grpc_shutdown();
        return dt_error_set(err, DT_ERR_IO, "cannot create a gRPC channel to %s", target);
    }
    *out = c;
    return DT_OK;
}

/* set_md: metadata KIND (KEY: VALUE, copied), or none when VALUE is NULL. */
static void set_md(dt_grpc_conn *c, int kind, const char *key, const char *value)
{
    if (c->has[kind]) {
        grpc_slice_unref(c->set[kind].key);
        grpc_slice_unref(c->set[kind].value);
        c->has[kind] = false;
    }
    if (value) {
        memset(&c->set[kind], 0, sizeof c->set[kind]);
        c->set[kind].key = grpc_slice_from_static_string(key);
        c->set[kind].value = grpc_slice_from_copied_string(value);
        c->has[kind] = true;
    }
    c->n_md = 0;
    for (int k = 0; k < MD_COUNT; k++)
        if (c->has[k])
            c->md[c->n_md++] = c->set[k];
}

dt_status dt_grpc_conn_set_token(dt_grpc_conn *c, const char *token)
{
    if (token == NULL) {
        set_md(c, MD_AUTH, "authorization", NULL);
        return DT_OK;
    }
    char *v = malloc(strlen(token) + 8);
    if (v == NULL)
        return DT_ERR_NOMEM;
    sprintf(v, "Bearer %s", token);
    set_md(c, MD_AUTH, "authorization", v);
    free(v);
    return DT_OK;
}

dt_status dt_grpc_conn_set_task_hub(dt_grpc_conn *c, const char *name, dt_error *err)
{
    if (name) {
        dt_status st = dt_task_hub_validate(name, err);
        if (st != DT_OK)
            return st;
    }
    set_md(c, MD_HUB, "taskhub", name);
    return DT_OK;
}

dt_status dt_grpc_conn_set_list_order(dt_grpc_conn *c, const char *order)
{
    if (order && strcmp(order, "id") != 0 && strcmp(order, "created") != 0)
        return DT_ERR_INVALID_ARG;
    set_md(c, MD_ORDER, DT_GRPC_LIST_ORDER_METADATA, order);
    return DT_OK;
}

void dt_grpc_conn_set_sessions(dt_grpc_conn *c, bool on)
{
    set_md(c, MD_SESSIONS, DT_SESSIONS_METADATA, on ? "1" : NULL);
}

/* send_metadata: the SEND_INITIAL_METADATA op, carrying the token, task hub and order if set. */
static void send_metadata(const dt_grpc_conn *c, grpc_op *op)
{
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op->data.send_initial_metadata.count = c->n_md;
    op->data.send_initial_metadata.metadata = c->n_md ? (grpc_metadata *)c->md : NULL;
}

static void async_stop(dt_grpc_conn *c);

void dt_grpc_conn_close(dt_grpc_conn *c)
{
    if (c == NULL)
        return;
    async_stop(c);
    pthread_cond_destroy(&c->started);
    pthread_mutex_destroy(&c->amu);
    dt_grpc_conn_set_token(c, NULL);
    set_md(c, MD_HUB, "taskhub", NULL);
    set_md(c, MD_ORDER, DT_GRPC_LIST_ORDER_METADATA, NULL);
    set_md(c, MD_SESSIONS, DT_SESSIONS_METADATA, NULL);
    grpc_channel_destroy(c->channel);
    free(c);
    grpc_shutdown();
}

/* cq_destroy: shut CQ down, drain it, and free it. */
static void cq_destroy(grpc_completion_queue *cq)
{
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
}

static gpr_timespec deadline_in(int64_t ms)
{
    if (ms < 0)
        return gpr_inf_future(GPR_CLOCK_REALTIME);
    return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* new_call: a call of METHOD ("StartInstance"), or of the full PATH when METHOD is NULL. */
static grpc_call *new_call_to(dt_grpc_conn *c, grpc_completion_queue *cq, const char *method,
                              const char *path, gpr_timespec deadline)
{
    char buf[256];
    if (method)
        snprintf(buf, sizeof buf, PATH_PREFIX "%s", method);
    grpc_slice m = grpc_slice_from_copied_string(method ? buf : path);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m,
                                               NULL, deadline, NULL);
    grpc_slice_unref(m);
    return call;
}

static grpc_call *new_call(dt_grpc_conn *c, grpc_completion_queue *cq, const char *method,
                           gpr_timespec deadline)
{
    return new_call_to(c, cq, method, NULL, deadline);
}

static grpc_byte_buffer *to_buffer(const uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

static bool from_buffer(grpc_byte_buffer *bb, uint8_t **out, size_t *len)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return false;
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    *len = GRPC_SLICE_LENGTH(all);
    *out = malloc(*len ? *len : 1);
    if (*out)
        memcpy(*out, GRPC_SLICE_START_PTR(all), *len);
    grpc_slice_unref(all);
    return *out != NULL;
}

static void set_result(dt_grpc_result *res, grpc_status_code code, grpc_slice details)
{
    if (res == NULL)
        return;
    res->code = (int)code;
    snprintf(res->details, sizeof res->details, "%.*s", (int)GRPC_SLICE_LENGTH(details),
             (const char *)GRPC_SLICE_START_PTR(details));
}

/* unary_prepare: U's six ops: C's metadata, REQ (copied) and the end of the request; the
 * answer's metadata, message and status. Pair with unary_free. */
static void unary_prepare(const dt_grpc_conn *c, unary *u, const uint8_t *req, size_t len)
{
    memset(u, 0, sizeof *u);
    u->send = to_buffer(req, len);
    grpc_metadata_array_init(&u->initial);
    grpc_metadata_array_init(&u->trailing);
    u->status = GRPC_STATUS_UNKNOWN;
    u->details = grpc_empty_slice();
    grpc_op *ops = u->ops;
    send_metadata(c, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->recv;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trailing;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
}

/* unary_result: what a finished batch (DONE: it completed) came to, as dt_grpc_unary
 * returns it; *RESP malloc'd. */
static dt_status unary_result(unary *u, bool done, uint8_t **resp, size_t *resp_len,
                              dt_grpc_result *res)
{
    *resp = NULL;
    *resp_len = 0;
    if (!done)
        return DT_ERR_IO;
    set_result(res, u->status, u->details);
    if (u->status == GRPC_STATUS_OK && u->recv && !from_buffer(u->recv, resp, resp_len))
        return DT_ERR_NOMEM;
    return u->status == GRPC_STATUS_DEADLINE_EXCEEDED ? DT_ERR_TIMEOUT : DT_OK;
}

static void unary_free(unary *u)
{
    if (u->recv)
        grpc_byte_buffer_destroy(u->recv);
    grpc_byte_buffer_destroy(u->send);
    grpc_slice_unref(u->details);
    grpc_metadata_array_destroy(&u->initial);
    grpc_metadata_array_destroy(&u->trailing);
}

/* after_ms: the monotonic clock MS from now */
static gpr_timespec after_ms(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

void dt_grpc_conn_wait(dt_grpc_conn *c, int64_t ms)
{
    gpr_timespec end = after_ms(ms);
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->channel, 1);
    if (st == GRPC_CHANNEL_READY || st == GRPC_CHANNEL_SHUTDOWN) {
        /* connected (a refused call, a stream ended): the whole pause */
        gpr_sleep_until(end);
        return;
    }
    gpr_timespec at_least = after_ms(ms < WAIT_MIN_MS ? ms : WAIT_MIN_MS);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    /* a watch on the state the channel is in, which asks it to connect: it ends when the
     * state changes (the channel keeps TRANSIENT_FAILURE until it is READY) or at END */
    while (st != GRPC_CHANNEL_READY && st != GRPC_CHANNEL_SHUTDOWN) {
        grpc_channel_watch_connectivity_state(c->channel, st, end, cq, c);
        grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            break;   /* END */
        st = grpc_channel_check_connectivity_state(c->channel, 1);
    }
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(cq);
    /* a server that drops each connection it accepts is not asked again at handshake pace */
    gpr_sleep_until(at_least);
}

dt_status dt_grpc_unary(dt_grpc_conn *c, const char *method, const uint8_t *req, size_t len,
                        int64_t timeout_ms, uint8_t **resp, size_t *resp_len,
                        dt_grpc_result *res)
{
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = new_call(c, cq, method, deadline_in(timeout_ms));
    unary u;
    unary_prepare(c, &u, req, len);
    bool done = call && grpc_call_start_batch(call, u.ops, 6, call, NULL) == GRPC_CALL_OK &&
                grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                        .type == GRPC_OP_COMPLETE;
    dt_status st = unary_result(&u, done, resp, resp_len, res);
    unary_free(&u);
    if (call)
        grpc_call_unref(call);
    cq_destroy(cq);
    return st;
}

/* async_unlink: A out of C's calls in flight (amu held) */
static void async_unlink(dt_grpc_conn *c, async_call *a)
{
    if (a->prev)
        a->prev->next = a->next;
    else
        c->calls = a->next;
    if (a->next)
        a->next->prev = a->prev;
}

/* async_finish: call A's callback with what its batch (OK: completed) came to, and free A.
 * On the connection's thread. */
static void async_finish(dt_grpc_conn *c, async_call *a, bool ok)
{
    pthread_mutex_lock(&c->amu);
    async_unlink(c, a);
    pthread_mutex_unlock(&c->amu);
    uint8_t *resp;
    size_t len;
    dt_grpc_result res = {.code = GRPC_STATUS_UNAVAILABLE};
    dt_status st = unary_result(&a->u, ok, &resp, &len, &res);
    a->done(a->arg, st, resp, len, &res);
    free(resp);
    unary_free(&a->u);
    grpc_call_unref(a->call);
    free(a);
}

static void *async_main(void *arg)
{
    dt_grpc_conn *c = arg;
    pthread_setname_np(pthread_self(), "dt-grpc-client");
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(c->acq, gpr_inf_future(GPR_CLOCK_REALTIME),
                                                   NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            return NULL;
        if (ev.type == GRPC_OP_COMPLETE)
            async_finish(c, ev.tag, ev.success != 0);
    }
}

dt_status dt_grpc_unary_start(dt_grpc_conn *c, const char *method, const uint8_t *req,
                              size_t len, int64_t timeout_ms, dt_grpc_done_fn done, void *arg)
{
    async_call *a = calloc(1, sizeof *a);
    if (a == NULL)
        return DT_ERR_NOMEM;
    a->done = done;
    a->arg = arg;
    dt_status st = DT_OK;
    pthread_mutex_lock(&c->amu);
    if (c->closing) {
        st = DT_ERR_SHUTDOWN;
    } else if (c->acq == NULL) {
        c->acq = grpc_completion_queue_create_for_next(NULL);
        if (pthread_create(&c->athread, NULL, async_main, c) != 0) {
            grpc_completion_queue_destroy(c->acq);
            c->acq = NULL;
            st = DT_ERR_NOMEM;
        }
    }
    if (st == DT_OK)
        a->call = new_call(c, c->acq, method, deadline_in(timeout_ms));
    if (st == DT_OK && a->call == NULL)
        st = DT_ERR_IO;
    if (st != DT_OK) {
        pthread_mutex_unlock(&c->amu);
        free(a);
        return st;
    }
    /* In the list before its batch starts (its completion unlinks it, and closing cancels
     * it, which its batch then reports); counted as starting, so that closing does not shut
     * the queue down before the batch is on it. The batch starts outside the lock: starting
     * it may write to the socket. */
    a->next = c->calls;
    if (c->calls)
        c->calls->prev = a;
    c->calls = a;
    c->starting++;
    pthread_mutex_unlock(&c->amu);
    unary_prepare(c, &a->u, req, len);
    bool out = grpc_call_start_batch(a->call, a->u.ops, 6, a, NULL) == GRPC_CALL_OK;
    if (!out) {   /* freed while still counted as starting: closing has not torn gRPC down */
        unary_free(&a->u);
        grpc_call_unref(a->call);
    }
    pthread_mutex_lock(&c->amu);
    if (!out)
        async_unlink(c, a);
    if (--c->starting == 0 && c->closing)
        pthread_cond_broadcast(&c->started);
    pthread_mutex_unlock(&c->amu);
    if (out)
        return DT_OK;
    free(a);
    return DT_ERR_IO;
}

/* async_stop: refuse new asynchronous calls, cancel those in flight, and wait until the
 * connection's thread has called back every one and ended. */
static void async_stop(dt_grpc_conn *c)
{
    pthread_mutex_lock(&c->amu);
    /* from a callback, the join below would fail and the queue be freed under its thread */
    assert(c->acq == NULL || !pthread_equal(pthread_self(), c->athread));
    c->closing = true;
    while (c->starting > 0)   /* batches on their way to the queue: on it before it shuts */
        pthread_cond_wait(&c->started, &c->amu);
    for (async_call *a = c->calls; a; a = a->next)
        grpc_call_cancel(a->call, NULL);
    grpc_completion_queue *cq = c->acq;
    pthread_mutex_unlock(&c->amu);
    if (cq == NULL)
        return;
    /* the shutdown event comes after every call's completion: each is called back first */
    grpc_completion_queue_shutdown(cq);
    pthread_join(c->athread, NULL);
    grpc_completion_queue_destroy(cq);
}

dt_status dt_grpc_stream_open(dt_grpc_conn *c, const char *method, const uint8_t *req,
                              size_t len, dt_grpc_stream **out, dt_error *err)
{
    dt_grpc_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    s->call = new_call(c, s->cq, method, gpr_inf_future(GPR_CLOCK_REALTIME));
    grpc_metadata_array_init(&s->trailing);
    grpc_metadata_array_init(&s->initial);
    s->details = grpc_empty_slice();
    grpc_byte_buffer *send = to_buffer(req, len);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    send_metadata(c, &ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[3].data.recv_status_on_client.trailing_metadata = &s->trailing;
    ops[3].data.recv_status_on_client.status = &s->status;
    ops[3].data.recv_status_on_client.status_details = &s->details;
    /* the status batch completes when the stream ends; its tag is the stream's cq itself */
    bool ok = s->call && grpc_call_start_batch(s->call, ops, 4, s->cq, NULL) == GRPC_CALL_OK;
    grpc_byte_buffer_destroy(send);
    if (!ok) {
        dt_grpc_stream_close(s);
        return dt_error_set(err, DT_ERR_IO, "cannot start %s", method);
    }
    *out = s;
    return DT_OK;
}

dt_status dt_grpc_stream_next(dt_grpc_stream *s, int64_t timeout_ms, uint8_t **msg,
                              size_t *len, dt_grpc_result *res)
{
    *msg = NULL;
    *len = 0;
    if (s->ended)
        goto ended;
    if (!s->recv_pending) {
        grpc_op ops[2];
        memset(ops, 0, sizeof ops);
        size_t n = 0;
        if (!s->got_initial) {
            ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
            ops[n++].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
            s->got_initial = true;
        }
        ops[n].op = GRPC_OP_RECV_MESSAGE;
        ops[n++].data.recv_message.recv_message = &s->recv;
        if (grpc_call_start_batch(s->call, ops, n, &s->recv, NULL) != GRPC_CALL_OK)
            return DT_ERR_IO;
        s->recv_pending = true;
    }
    grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->recv, deadline_in(timeout_ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT)
        return DT_ERR_TIMEOUT;
    s->recv_pending = false;
    if (ev.type == GRPC_OP_COMPLETE && ev.success && s->recv) {
        bool ok = from_buffer(s->recv, msg, len);
        grpc_byte_buffer_destroy(s->recv);
        s->recv = NULL;
        return ok ? DT_OK : DT_ERR_NOMEM;
    }
    /* no message: the stream is over; collect its status */
    grpc_completion_queue_pluck(s->cq, s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    s->ended = true;
ended:
    set_result(res, s->status, s->details);
    return DT_ERR_NOT_FOUND;
}

void dt_grpc_stream_close(dt_grpc_stream *s)
{
    if (s == NULL)
        return;
    if (s->call) {
        if (!s->ended) {
            grpc_call_cancel(s->call, NULL);
            if (s->recv_pending)
                grpc_completion_queue_pluck(s->cq, &s->recv, gpr_inf_future(GPR_CLOCK_REALTIME),
                                            NULL);
            grpc_completion_queue_pluck(s->cq, s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        }
        grpc_call_unref(s->call);
    }
    if (s->recv)
        grpc_byte_buffer_destroy(s->recv);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_metadata_array_destroy(&s->initial);
    grpc_slice_unref(s->details);
    cq_destroy(s->cq);
    free(s);
}

/* ---- client streams ------------------------------------------------------------------------ */

/* has_key: does MD hold metadata KEY? */
static bool has_key(const grpc_metadata_array *md, const char *key)
{
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
            return true;
    return false;
}

dt_status dt_grpc_sender_open(dt_grpc_conn *c, const char *path, const char *marker,
                              int64_t timeout_ms, dt_grpc_sender **out, dt_grpc_result *res)
{
    *out = NULL;
    dt_grpc_sender *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DT_ERR_NOMEM;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        return DT_ERR_NOMEM;
    }
    s->cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_metadata_array_init(&s->initial);
    grpc_metadata_array_init(&s->trailing);
    s->details = grpc_empty_slice();
    s->status = GRPC_STATUS_UNKNOWN;
    s->broken = true;   /* until it is open */
    char full[256];
    snprintf(full, sizeof full, "/%s", path);
    s->call = new_call_to(c, s->cq, NULL, full, gpr_inf_future(GPR_CLOCK_REALTIME));
    grpc_op ops[2];
    memset(ops, 0, sizeof ops);
    send_metadata(c, &ops[0]);
    ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[1].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
    grpc_op status;
    memset(&status, 0, sizeof status);
    status.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    status.data.recv_status_on_client.trailing_metadata = &s->trailing;
    status.data.recv_status_on_client.status = &s->status;
    status.data.recv_status_on_client.status_details = &s->details;
    dt_status st = DT_ERR_IO;
    if (s->call == NULL ||
        grpc_call_start_batch(s->call, ops, 2, &s->md_tag, NULL) != GRPC_CALL_OK)
        goto fail;
    s->status_out = grpc_call_start_batch(s->call, &status, 1, s->cq, NULL) == GRPC_CALL_OK;
    if (!s->status_out)
        grpc_call_cancel(s->call, NULL);
    grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->md_tag, deadline_in(timeout_ms), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) {
        grpc_call_cancel(s->call, NULL);
        grpc_completion_queue_pluck(s->cq, &s->md_tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        st = DT_ERR_TIMEOUT;
        goto fail;
    }
    if (!s->status_out)
        goto fail;
    if (ev.type != GRPC_OP_COMPLETE || !ev.success || (marker && !has_key(&s->initial, marker))) {
        /* not the server hoped for: its status says why (UNIMPLEMENTED: no such method) */
        grpc_call_cancel(s->call, NULL);
        grpc_completion_queue_pluck(s->cq, s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        s->status_done = true;
        set_result(res, s->status, s->details);
        if (s->status == GRPC_STATUS_UNIMPLEMENTED)
            st = DT_ERR_UNIMPLEMENTED;
        goto fail;
    }
    s->broken = false;
    *out = s;
    return DT_OK;
fail:
    dt_grpc_sender_close(s);
    return st;
}

dt_status dt_grpc_sender_send(dt_grpc_sender *s, const uint8_t *msg, size_t len, bool more)
{
    pthread_mutex_lock(&s->mu);
    if (s->broken) {
        pthread_mutex_unlock(&s->mu);
        return DT_ERR_IO;
    }
    grpc_byte_buffer *bb = to_buffer(msg, len);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.flags = more ? GRPC_WRITE_BUFFER_HINT : 0;   /* gRPC reports it done at once all the same */
    op.data.send_message.send_message = bb;
    bool ok = grpc_call_start_batch(s->call, &op, 1, &s->send_tag, NULL) == GRPC_CALL_OK;
    if (ok) {
        grpc_event ev = grpc_completion_queue_pluck(s->cq, &s->send_tag,
                                                    deadline_in(SEND_WAIT_MS), NULL);
        if (ev.type == GRPC_QUEUE_TIMEOUT) {   /* a server that stopped reading: give up */
            grpc_call_cancel(s->call, NULL);
            ev = grpc_completion_queue_pluck(s->cq, &s->send_tag,
                                             gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            ev.success = 0;
        }
        ok = ev.success;
    }
    grpc_byte_buffer_destroy(bb);
    s->broken = !ok;
    pthread_mutex_unlock(&s->mu);
    return ok ? DT_OK : DT_ERR_IO;
}

bool dt_grpc_sender_broken(dt_grpc_sender *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->broken && s->status_out && !s->status_done &&
        grpc_completion_queue_pluck(s->cq, s->cq, gpr_now(GPR_CLOCK_REALTIME), NULL).type ==
            GRPC_OP_COMPLETE)
        s->status_done = s->broken = true;   /* the server ended it */
    bool broken = s->broken;
    pthread_mutex_unlock(&s->mu);
    return broken;
}

void dt_grpc_sender_close(dt_grpc_sender *s)
{
    if (s == NULL)
        return;
    if (s->call) {
        /* say we are done; the status comes once the server has read what we sent */
        grpc_op op;
        memset(&op, 0, sizeof op);
        op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        if (!s->broken &&
            grpc_call_start_batch(s->call, &op, 1, &s->send_tag, NULL) == GRPC_CALL_OK)
            grpc_completion_queue_pluck(s->cq, &s->send_tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                                        NULL);
        if (s->status_out && !s->status_done &&
            grpc_completion_queue_pluck(s->cq, s->cq, deadline_in(CLOSE_WAIT_MS), NULL).type ==
                GRPC_QUEUE_TIMEOUT) {
            grpc_call_cancel(s->call, NULL);
            grpc_completion_queue_pluck(s->cq, s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        }
        grpc_call_unref(s->call);
    }
    grpc_metadata_array_destroy(&s->initial);
    grpc_metadata_array_destroy(&s->trailing);
    grpc_slice_unref(s->details);
    cq_destroy(s->cq);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
