/* remote.c — the C SDK as a remote worker (remote.h): the same registered orchestrators and
 * activities, run against any TaskHubSidecarService server (dtask serve, a sidecar, the
 * Durable Task Scheduler) over gRPC. One thread holds the GetWorkItems stream (reconnecting
 * with backoff when it ends) and queues what arrives; a pool of threads runs each work item
 * through the worker's executor and sends the result back with its completion token: on
 * one completion stream (DT_COMPLETION_STREAM_METHOD) when the server has it (dtask serve),
 * else as a unary call each, as the other SDKs do. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "durabletask/grpc_client.h"
#include "durabletask/remote.h"
#include "service/service.h"

#define DEFAULT_THREADS 6
#define SENDER_OPEN_MS 5000      /* the completion stream's opening, waited for at most */
#define SENDER_RETRY_US 1000000  /* after it could not be opened: unary calls this long */

/* a completion queued for the completion stream: a packed WorkerCompletion */
typedef struct outgoing {
    uint8_t *bytes;
    size_t len;
    struct outgoing *next;
} outgoing;

typedef struct job {
    uint8_t *bytes;          /* a packed WorkItem */
    size_t len;
    struct job *next;
} job;

struct dt_remote_worker {
    dt_executor ex;
    char target[256];        /* the server's address, for the log lines */
    uint8_t *request;        /* the packed GetWorkItemsRequest, with our work item filters */
    size_t request_len;
    dt_grpc_conn *conn;
    pthread_t reader;
    bool has_reader;
    pthread_t *pool;
    int n_pool;
    atomic_bool stop;
    /* mu guards the job queue and the counts of the pool's threads waiting for a job and
     * of those woken for one and not yet running */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    size_t n_jobs;
    int n_waiting, n_woken;
    /* the completion stream. send_mu guards the queue and the flags; the thread that holds
     * the sending role (SENDING) alone uses SENDER and sends what is queued */
    pthread_mutex_t send_mu;
    outgoing *out_head, *out_tail;
    bool sending;
    bool reset_sender;       /* close the stream when the role is free (the reader's ask) */
    bool no_sender;          /* the server has no completion stream: unary calls */
    dt_grpc_sender *sender;
    /* the completion stream broke: what was sent on it since may be lost, so the reader
     * starts its work item stream afresh, and the server gives back and redelivers every
     * item the old one had in flight (those whose completions it applied are not) */
    atomic_bool restart;
    dt_time sender_retry_at; /* it could not be opened: not again before */
};

/* push: queue J, waking a waiting pool thread only if the jobs queued outnumber the threads
 * already woken for them (a burst of work items wakes as many threads as it needs, not one
 * per item: a wake-up is a system call and a context switch). */
static void push(dt_remote_worker *r, job *j)
{
    pthread_mutex_lock(&r->mu);
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    r->n_jobs++;
    bool wake = r->n_waiting > r->n_woken && r->n_jobs > (size_t)r->n_woken;
    r->n_woken += wake;
    pthread_mutex_unlock(&r->mu);
    if (wake)   /* after the unlock: the thread woken takes mu at once */
        pthread_cond_signal(&r->cv);
}

static job *pop(dt_remote_worker *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->head == NULL && !atomic_load(&r->stop)) {
        r->n_waiting++;
        pthread_cond_wait(&r->cv, &r->mu);
        r->n_waiting--;
        if (r->n_woken > 0)
            r->n_woken--;
    }
    job *j = r->head;
    if (j) {
        r->head = j->next;
        if (r->head == NULL)
            r->tail = NULL;
        r->n_jobs--;
    }
    pthread_mutex_unlock(&r->mu);
    return j;
}

/* ---- the stream ---------------------------------------------------------------------------- */

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 2000
#define UNREACHABLE_REPEAT_US (30 * 1000000LL)   /* "cannot reach" again while it lasts */

/* backoff_next: the wait after *BACKOFF_MS, doubled up to the cap. */
static int backoff_next(int *backoff_ms)
{
    int ms = *backoff_ms;
    *backoff_ms = ms < BACKOFF_MAX_MS / 2 ? ms * 2 : BACKOFF_MAX_MS;
    return ms;
}

static void drain(dt_remote_worker *r);

/* send_or_leave: if nobody holds the sending role, take it and send what is queued; else
 * leave it to the holder (send_mu held; unlocked on return). */
static void send_or_leave(dt_remote_worker *r)
{
    if (r->sending) {
        pthread_mutex_unlock(&r->send_mu);
        return;
    }
    r->sending = true;
    drain(r);
}

/* sender_lost: did the completion stream break, at a send, or (CHECK) by the server's end,
 * seen now when nobody is sending? Then it is closed, to be opened again at the next
 * completion. */
static bool sender_lost(dt_remote_worker *r, bool check)
{
    if (check) {
        pthread_mutex_lock(&r->send_mu);
        bool mine = !r->sending;
        r->sending = true;
        pthread_mutex_unlock(&r->send_mu);
        if (mine && r->sender && dt_grpc_sender_broken(r->sender)) {
            dt_grpc_sender_close(r->sender);
            r->sender = NULL;
            atomic_store(&r->restart, true);
        }
        pthread_mutex_lock(&r->send_mu);
        if (mine)
            drain(r);   /* what others queued meanwhile; lets go of the role */
        else
            pthread_mutex_unlock(&r->send_mu);
    }
    return atomic_load(&r->restart) && atomic_exchange(&r->restart, false);
}

/* read_stream: queue the work items of stream S until it ends, the worker stops or the
 * completion stream breaks; whether it delivered any (a break counts as delivery: the
 * caller reconnects at once). */
static bool read_stream(dt_remote_worker *r, dt_grpc_stream *s)
{
    bool delivered = false;
    bool idle = false;
    while (!atomic_load(&r->stop)) {
        if (sender_lost(r, idle)) {
            dt_log(DT_LOG_WARN, NULL, "the completion stream to %s broke: the work item "
                   "stream starts afresh, and the server redelivers what was in flight",
                   r->target);
            return true;   /* reconnect at once */
        }
        uint8_t *msg = NULL;
        size_t len = 0;
        dt_grpc_result res = {0};
        dt_status st = dt_grpc_stream_next(s, 200, &msg, &len, &res);
        idle = st == DT_ERR_TIMEOUT;   /* then look at the completion stream too */
        if (st == DT_ERR_TIMEOUT)
            continue;
        if (st != DT_OK)
            break;   /* the stream ended: reconnect */
        delivered = true;
        job *j = calloc(1, sizeof *j);
        if (j == NULL) {
            free(msg);
            continue;   /* not taken: the server redelivers it when its lease ends */
        }
        j->bytes = msg;
        j->len = len;
        push(r, j);
    }
    return delivered;
}

/* The connection: Hello first, as the other SDKs do (it tells a dead server from a slow
 * stream), then the stream, again and again until the worker stops. Every failure to get
 * work (no server, a refused call, a stream that ends before it delivers anything) waits a
 * backoff that doubles up to 2 s; a stream that delivered work starts the backoff afresh. */
/* say_unreachable: the warning for a Hello that failed with RES (a call that never completed
 * has code 0 and no details). */
static void say_unreachable(const dt_remote_worker *r, const dt_grpc_result *res)
{
    const char *why = res->details[0] ? res->details : "no answer";
    if (res->code == 16 || res->code == 7)   /* UNAUTHENTICATED, PERMISSION_DENIED */
        dt_log(DT_LOG_WARN, NULL, "the server at %s refused the worker (%s); check the token; "
               "retrying", r->target, why);
    else
        dt_log(DT_LOG_WARN, NULL, "cannot reach the server at %s (%s); retrying every %d s",
               r->target, why, BACKOFF_MAX_MS / 1000);
}

/* The reader says when the server cannot be reached (at the first failure, then every 30 s
 * while it lasts) and when it is reached, so a worker pointed at the wrong address does not
 * wait in silence. */
static void *reader_main(void *arg)
{
    dt_remote_worker *r = arg;
    int backoff = BACKOFF_FIRST_MS;
    bool up = false;
    dt_time warned_at = 0;   /* 0: not warned since the server was last reached */
    while (!atomic_load(&r->stop)) {
        uint8_t *resp = NULL;
        size_t n = 0;
        dt_grpc_result res = {0};
        dt_grpc_stream *s = NULL;
        bool hello = dt_grpc_unary(r->conn, "Hello", (const uint8_t *)"", 0, 5000, &resp, &n,
                                   &res) == DT_OK && res.code == 0;
        free(resp);
        dt_time now = dt_now();
        if (hello && !up) {
            dt_log(DT_LOG_INFO, NULL, "connected to the server at %s", r->target);
            warned_at = 0;
        } else if (!hello && !atomic_load(&r->stop) &&
                   (warned_at == 0 || now - warned_at >= UNREACHABLE_REPEAT_US)) {
            say_unreachable(r, &res);
            warned_at = now;
        }
        up = hello;
        /* a break before now lost only the old stream's items, given back when it ended */
        atomic_store(&r->restart, false);
        if (hello && dt_grpc_stream_open(r->conn, "GetWorkItems", r->request, r->request_len,
                                         &s, NULL) == DT_OK) {
            bool delivered = read_stream(r, s);
            dt_grpc_stream_close(s);
            /* the server may be another one when we are back: ask again */
            pthread_mutex_lock(&r->send_mu);
            r->reset_sender = true;
            send_or_leave(r);
            if (delivered) {
                backoff = BACKOFF_FIRST_MS;
                continue;
            }
        }
        if (!atomic_load(&r->stop))
            dt_grpc_conn_wait(r->conn, backoff_next(&backoff));   /* connects meanwhile */
    }
    return NULL;
}

/* ---- completions ---------------------------------------------------------------------------
 * On the completion stream when the server has one: a pool thread queues its completion
 * and goes on; the one that finds nobody sending takes the sending role and sends what is
 * queued until nothing is, so the pool never waits on a send in progress. A completion the
 * stream cannot take goes as a unary call (sent by whoever holds the role), and the work
 * item stream starts afresh: the broken stream may have lost what it took before. Without
 * a completion stream, each completion is a unary call of its own thread. */

/* send_unary: BYTES (LEN), the message METHOD takes, as a call of its own. A completion
 * that does not arrive is not lost: the server redelivers the work item when its lease runs
 * out or the stream ends; one that arrives twice is refused the second time. */
static void send_unary(dt_remote_worker *r, const char *method, const uint8_t *bytes,
                       size_t len)
{
    uint8_t *resp = NULL;
    size_t n = 0;
    dt_grpc_result res = {0};
    dt_grpc_unary(r->conn, method, bytes, len, 30000, &resp, &n, &res);
    free(resp);
}

/* sender_open: open the completion stream if the server has one (the role held). */
static void sender_open(dt_remote_worker *r)
{
    if (r->sender || r->no_sender || dt_now() < r->sender_retry_at)
        return;
    dt_grpc_result res = {0};
    dt_status st = dt_grpc_sender_open(r->conn, DT_COMPLETION_STREAM_METHOD,
                                       DT_COMPLETION_STREAM_METADATA, SENDER_OPEN_MS,
                                       &r->sender, &res);
    if (st == DT_ERR_UNIMPLEMENTED) {
        pthread_mutex_lock(&r->send_mu);
        r->no_sender = true;
        pthread_mutex_unlock(&r->send_mu);
        dt_log(DT_LOG_DEBUG, NULL, "the server at %s has no completion stream: a call per "
               "completion", r->target);
    } else if (st != DT_OK) {
        r->sender_retry_at = dt_now() + SENDER_RETRY_US;
    }
}

/* send_one: O on the completion stream, or else as a unary call (the role held). O->next
 * goes right after it: O may wait for it in gRPC's buffer. */
static void send_one(dt_remote_worker *r, const outgoing *o)
{
    sender_open(r);
    if (r->sender && dt_grpc_sender_send(r->sender, o->bytes, o->len, o->next != NULL) == DT_OK)
        return;
    if (r->sender) {   /* broken: what it took before may be lost */
        dt_grpc_sender_close(r->sender);
        r->sender = NULL;
        atomic_store(&r->restart, true);
    }
    const char *method = NULL;
    const uint8_t *body = NULL;
    size_t len = 0;
    if (svc_completion_unwrap(o->bytes, o->len, &method, &body, &len) == DT_OK)
        send_unary(r, method, body, len);
}

/* drain: send what is queued until nothing is, then let go of the sending role (send_mu
 * held, and the role; send_mu unlocked on return). */
static void drain(dt_remote_worker *r)
{
    for (;;) {
        if (r->reset_sender) {
            r->reset_sender = false;
            r->no_sender = false;
            dt_grpc_sender *old = r->sender;
            r->sender = NULL;
            pthread_mutex_unlock(&r->send_mu);
            dt_grpc_sender_close(old);
            pthread_mutex_lock(&r->send_mu);
            continue;
        }
        outgoing *o = r->out_head;
        r->out_head = r->out_tail = NULL;
        if (o == NULL)
            break;
        pthread_mutex_unlock(&r->send_mu);
        while (o) {
            outgoing *next = o->next;
            send_one(r, o);
            free(o);
            o = next;
        }
        pthread_mutex_lock(&r->send_mu);
    }
    r->sending = false;
    pthread_mutex_unlock(&r->send_mu);
}

/* send_completion: M (FIELD of a WorkerCompletion, A's). */
static void send_completion(dt_remote_worker *r, int field, dt_arena *a,
                            const ProtobufCMessage *m)
{
    pthread_mutex_lock(&r->send_mu);
    bool streams = !r->no_sender;
    pthread_mutex_unlock(&r->send_mu);
    if (!streams) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (pb_pack(a, m, &buf, &len) == DT_OK)
            send_unary(r, svc_completion_method((uint32_t)field), buf, len);
        return;
    }
    Dtpb__WorkerCompletion wc = DTPB__WORKER_COMPLETION__INIT;
    wc.completion_case = (Dtpb__WorkerCompletion__CompletionCase)field;
    if (field == DTPB__WORKER_COMPLETION__COMPLETION_ORCHESTRATOR)
        wc.orchestrator = (Dtpb__OrchestratorResponse *)m;
    else if (field == DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY)
        wc.activity = (Dtpb__ActivityResponse *)m;
    else
        wc.entity = (Dtpb__EntityBatchResult *)m;
    /* packed straight into what is queued */
    size_t len = protobuf_c_message_get_packed_size(&wc.base);
    outgoing *o = malloc(sizeof *o + len);
    if (o == NULL)
        return;   /* redelivered when its lease ends */
    o->bytes = (uint8_t *)(o + 1);
    o->len = protobuf_c_message_pack(&wc.base, o->bytes);
    o->next = NULL;
    pthread_mutex_lock(&r->send_mu);
    *(r->out_tail ? &r->out_tail->next : &r->out_head) = o;
    r->out_tail = o;
    send_or_leave(r);
}

/* ---- running work items -------------------------------------------------------------------- */

/* stream_past_events: the past events of M, which the server left out for us to stream
 * (requiresHistoryStreaming: we announce HISTORY_STREAMING), read with StreamInstanceHistory
 * into COPY: the events in arena A, their array malloc'd (the caller frees it). */
static dt_status stream_past_events(dt_remote_worker *r, dt_arena *a,
                                    const Dtpb__OrchestratorRequest *m,
                                    Dtpb__OrchestratorRequest *copy)
{
    Dtpb__StreamInstanceHistoryRequest q = DTPB__STREAM_INSTANCE_HISTORY_REQUEST__INIT;
    q.instanceid = m->instanceid;
    q.executionid = m->executionid;
    q.forworkitemprocessing = 1;
    uint8_t *bytes = NULL;
    size_t len = 0;
    dt_grpc_stream *s = NULL;
    dt_status st = pb_pack(a, &q.base, &bytes, &len);
    if (st == DT_OK)
        st = dt_grpc_stream_open(r->conn, "StreamInstanceHistory", bytes, len, &s, NULL);
    *copy = *m;
    copy->pastevents = NULL;
    copy->n_pastevents = 0;
    size_t cap = 0;
    while (st == DT_OK) {
        uint8_t *msg = NULL;
        dt_grpc_result res = {0};
        st = dt_grpc_stream_next(s, 30000, &msg, &len, &res);
        if (st == DT_ERR_NOT_FOUND) {   /* the end: complete only if the server says so */
            st = res.code == 0 ? DT_OK : DT_ERR_IO;   /* 0: gRPC OK */
            break;
        }
        Dtpb__HistoryChunk *chunk = NULL;
        if (st == DT_OK)
            st = pb_unpack(a, &dtpb__history_chunk__descriptor, msg, len, (void **)&chunk, NULL);
        free(msg);
        Dtpb__HistoryEvent **bigger = NULL;
        if (st == DT_OK && (bigger = dt_grow(copy->pastevents, &cap,
                                             copy->n_pastevents + chunk->n_events,
                                             sizeof *bigger)) == NULL)
            st = DT_ERR_NOMEM;
        if (bigger)
            copy->pastevents = bigger;
        for (size_t i = 0; st == DT_OK && i < chunk->n_events; i++)
            copy->pastevents[copy->n_pastevents++] = chunk->events[i];
    }
    if (s)
        dt_grpc_stream_close(s);
    return st;
}

/* An item that cannot be read or run is not answered: the server redelivers it when its
 * lease runs out, rather than being told something we did not compute. */
static void run_orchestration(dt_remote_worker *r, dt_arena *a, const char *token,
                              const Dtpb__OrchestratorRequest *m)
{
    dt_orch_request req;
    dt_orch_result res = {0};
    Dtpb__OrchestratorResponse *resp = NULL;
    Dtpb__OrchestratorRequest whole = {.pastevents = NULL};
    dt_status st = DT_OK;
    if (m->requireshistorystreaming) {
        st = stream_past_events(r, a, m, &whole);
        m = &whole;
    }
    if (st == DT_OK)
        st = svc_orchestrator_request_from_msg(a, m, &req, NULL);   /* copies the events */
    if (st == DT_OK)
        st = r->ex.run_orchestration(r->ex.data, &req, a, &res);
    if (st == DT_ERR_NOT_FOUND && req.past_left_out && m != &whole) {
        /* the server left the past out for a session we no longer have (evicted, or the
         * last episode's commit did not happen): read it, and replay */
        st = stream_past_events(r, a, m, &whole);
        if (st == DT_OK)
            st = svc_orchestrator_request_from_msg(a, &whole, &req, NULL);
        if (st == DT_OK)
            st = r->ex.run_orchestration(r->ex.data, &req, a, &res);
    }
    free(whole.pastevents);
    if (st == DT_OK &&
        svc_orchestrator_response(a, req.instance_id, token, &res, &resp) == DT_OK)
        send_completion(r, DTPB__WORKER_COMPLETION__COMPLETION_ORCHESTRATOR, a, &resp->base);
}

static void run_activity(dt_remote_worker *r, dt_arena *a, const char *token,
                         const Dtpb__ActivityRequest *m)
{
    dt_activity_request req;
    const char *result = NULL;
    const dt_failure *failure = NULL;
    Dtpb__ActivityResponse *resp = NULL;
    if (svc_activity_request_from_msg(a, m, &req, NULL) == DT_OK &&
        r->ex.run_activity(r->ex.data, &req, a, &result, &failure) == DT_OK &&
        svc_activity_response(a, &req, token, result, failure, &resp) == DT_OK)
        send_completion(r, DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY, a, &resp->base);
}

static void run_entity(dt_remote_worker *r, dt_arena *a, const char *token,
                       const Dtpb__EntityRequest *m)
{
    dt_entity_request req;
    dt_entity_result res;
    Dtpb__EntityBatchResult *resp = NULL;
    if (svc_entity_request_from_msg(a, m, &req, NULL) == DT_OK && r->ex.run_entity &&
        r->ex.run_entity(r->ex.data, &req, a, &res) == DT_OK &&
        svc_entity_result(a, &res, token, &resp) == DT_OK)
        send_completion(r, DTPB__WORKER_COMPLETION__COMPLETION_ENTITY, a, &resp->base);
}

static void *pool_main(void *arg)
{
    dt_remote_worker *r = arg;
    job *j;
    while ((j = pop(r)) != NULL) {
        dt_arena *a = dt_arena_new();
        Dtpb__WorkItem *wi = NULL;
        if (a && pb_unpack(a, &dtpb__work_item__descriptor, j->bytes, j->len, (void **)&wi,
                           NULL) == DT_OK) {
            if (wi->request_case == DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST)
                run_orchestration(r, a, wi->completiontoken, wi->orchestratorrequest);
            else if (wi->request_case == DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST)
                run_activity(r, a, wi->completiontoken, wi->activityrequest);
            else if (wi->request_case == DTPB__WORK_ITEM__REQUEST_ENTITY_REQUEST_V2)
                run_entity(r, a, wi->completiontoken, wi->entityrequestv2);
            /* health pings need no answer; the older entity form is never sent to us */
        }
        dt_arena_free(a);
        free(j->bytes);
        free(j);
    }
    return NULL;
}

/* pack_request: GetWorkItemsRequest with filters naming what this worker runs. */
static dt_status pack_request(dt_remote_worker *r, const dt_name_filter *orchs,
                              const dt_name_filter *acts, const dt_name_filter *ents)
{
    dt_arena *a = dt_arena_new();
    if (a == NULL)
        return DT_ERR_NOMEM;
    Dtpb__GetWorkItemsRequest req = DTPB__GET_WORK_ITEMS_REQUEST__INIT;
    uint8_t *buf = NULL;
    Dtpb__WorkerCapability caps[1] = {DTPB__WORKER_CAPABILITY__WORKER_CAPABILITY_HISTORY_STREAMING};
    req.capabilities = caps;   /* stream_past_events reads large histories */
    req.n_capabilities = 1;
    dt_status st = svc_work_filters(a, orchs, acts, &req.workitemfilters);
    if (st == DT_OK)
        st = svc_entity_filter(a, ents, req.workitemfilters);
    if (st == DT_OK)
        st = pb_pack(a, &req.base, &buf, &r->request_len);
    if (st == DT_OK && (r->request = malloc(r->request_len + 1)) == NULL)
        st = DT_ERR_NOMEM;
    if (st == DT_OK)
        memcpy(r->request, buf, r->request_len);
    dt_arena_free(a);
    return st;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

/* remote_join: stop R's threads (as many as were started) and wait for them. */
static void remote_join(dt_remote_worker *r)
{
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->has_reader)
        pthread_join(r->reader, NULL);
    for (int i = 0; i < r->n_pool; i++)
        pthread_join(r->pool[i], NULL);
}

/* remote_free: everything start made, once none of R's threads runs. */
static void remote_free(dt_remote_worker *r)
{
    while (r->head) {   /* received but not run: the server redelivers them */
        job *j = r->head;
        r->head = j->next;
        free(j->bytes);
        free(j);
    }
    dt_grpc_sender_close(r->sender);
    while (r->out_head) {   /* queued as the worker stopped: redelivered */
        outgoing *o = r->out_head;
        r->out_head = o->next;
        free(o);
    }
    if (r->conn)
        dt_grpc_conn_close(r->conn);
    free(r->request);
    free(r->pool);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->send_mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

dt_status dt_remote_worker_start(dt_worker *w, const char *target, const dt_remote_options *opts,
                                 dt_remote_worker **out, dt_error *err)
{
    *out = NULL;
    if (w == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "no worker given");
    if (target && target[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "the server address is empty");
    int threads = opts && opts->threads > 0 ? opts->threads : DEFAULT_THREADS;
    dt_remote_worker *r = calloc(1, sizeof *r);
    if (r == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create the remote worker's mutex");
    }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create the remote worker's condition");
    }
    if (pthread_mutex_init(&r->send_mu, NULL) != 0) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create the remote worker's mutex");
    }
    r->ex = dt_worker_executor(w);
    snprintf(r->target, sizeof r->target, "%s", target ? target : DT_DEFAULT_GRPC_ADDRESS);
    dt_name_filter orchs, acts, ents;
    dt_worker_filters(w, &orchs, &acts);
    dt_worker_entity_filter(w, &ents);
    dt_status st = pack_request(r, &orchs, &acts, &ents);
    if (st != DT_OK) {
        dt_error_set(err, st, "out of memory");
        goto fail;
    }
    if ((st = dt_grpc_conn_open(target, &r->conn, err)) != DT_OK)
        goto fail;
    const char *token = opts ? opts->token : NULL;
    if (token && (st = dt_grpc_conn_set_token(r->conn, token)) != DT_OK) {
        dt_error_set(err, st, "out of memory");
        goto fail;
    }
    if (opts && opts->task_hub &&
        (st = dt_grpc_conn_set_task_hub(r->conn, opts->task_hub, err)) != DT_OK)
        goto fail;
    /* the worker keeps sessions: the server may leave out the past they hold */
    dt_grpc_conn_set_sessions(r->conn, dt_worker_sessions(w) > 0);
    if ((r->pool = calloc((size_t)threads, sizeof *r->pool)) == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (; r->n_pool < threads; r->n_pool++)
        if (pthread_create(&r->pool[r->n_pool], NULL, pool_main, r) != 0)
            break;
    r->has_reader = r->n_pool == threads && pthread_create(&r->reader, NULL, reader_main, r) == 0;
    if (!r->has_reader) {
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot start the remote worker's threads");
        remote_join(r);
        goto fail;
    }
    *out = r;
    return DT_OK;
fail:
    remote_free(r);
    return st;
}

void dt_remote_worker_stop(dt_remote_worker *r)
{
    if (r == NULL)
        return;
    remote_join(r);
    remote_free(r);
}
