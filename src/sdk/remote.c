/* remote.c — the C SDK as a remote worker: the same registered orchestrators and activities,
 * run against any TaskHubSidecarService server (dtask serve, a sidecar, the Durable Task
 * Scheduler) over gRPC. One thread holds the GetWorkItems stream (reconnecting with backoff
 * when it ends) and queues what arrives; a pool of threads runs each work item through the
 * worker's executor and sends the result back with its completion token. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/pb.h"
#include "durabletask/grpc_client.h"
#include "sdk/remote.h"

typedef struct job {
    uint8_t *bytes;          /* a packed WorkItem */
    size_t len;
    struct job *next;
} job;

struct remote {
    dt_executor ex;
    uint8_t *request;        /* the packed GetWorkItemsRequest, with our work item filters */
    size_t request_len;
    dt_grpc_conn *conn;
    pthread_t reader;
    pthread_t *pool;
    int n_pool;
    atomic_bool stop;
    /* mu guards the job queue */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void push(remote *r, job *j)
{
    pthread_mutex_lock(&r->mu);
    if (r->tail)
        r->tail->next = j;
    else
        r->head = j;
    r->tail = j;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static job *pop(remote *r)
{
    pthread_mutex_lock(&r->mu);
    while (r->head == NULL && !atomic_load(&r->stop))
        pthread_cond_wait(&r->cv, &r->mu);
    job *j = r->head;
    if (j) {
        r->head = j->next;
        if (r->head == NULL)
            r->tail = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    return j;
}

/* ---- the stream ---------------------------------------------------------------------------- */

static void *reader_main(void *arg)
{
    remote *r = arg;
    int backoff = 100;
    while (!atomic_load(&r->stop)) {
        uint8_t *resp = NULL;
        size_t n = 0;
        dt_grpc_result res = {0};
        /* Hello first, as the other SDKs do: it tells a dead server from a slow stream */
        if (dt_grpc_unary(r->conn, "Hello", (const uint8_t *)"", 0, 5000, &resp, &n, &res) !=
                DT_OK ||
            res.code != 0) {
            free(resp);
            sleep_ms(backoff);
            backoff = backoff < 2000 ? backoff * 2 : 2000;
            continue;
        }
        free(resp);
        dt_grpc_stream *s = NULL;
        if (dt_grpc_stream_open(r->conn, "GetWorkItems", r->request, r->request_len, &s,
                                NULL) != DT_OK) {
            sleep_ms(backoff);
            continue;
        }
        backoff = 100;
        while (!atomic_load(&r->stop)) {
            uint8_t *msg = NULL;
            size_t len = 0;
            dt_status st = dt_grpc_stream_next(s, 200, &msg, &len, &res);
            if (st == DT_ERR_TIMEOUT)
                continue;
            if (st != DT_OK)
                break;   /* the stream ended: reconnect */
            job *j = calloc(1, sizeof *j);
            if (j == NULL) {
                free(msg);
                continue;   /* not taken: the server redelivers it when its lease ends */
            }
            j->bytes = msg;
            j->len = len;
            push(r, j);
        }
        dt_grpc_stream_close(s);
    }
    return NULL;
}

/* ---- running work items -------------------------------------------------------------------- */

static dt_status decode_events(dt_arena *a, Dtpb__HistoryEvent **m, size_t n, dt_event **out,
                               dt_error *err)
{
    dt_event *ev = dt_arena_alloc(a, (n + 1) * sizeof *ev);
    if (ev == NULL)
        return DT_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        dt_status st = pb_event_from_msg(a, m[i], &ev[i], err);
        if (st != DT_OK)
            return st;
    }
    *out = ev;
    return DT_OK;
}

static const char *started_name(const dt_orch_item *it)
{
    for (size_t i = 0; i < it->n_past + it->n_incoming; i++) {
        const dt_event *e = i < it->n_past ? &it->past[i] : &it->incoming[i - it->n_past];
        if (e->type == DT_EVENT_EXECUTION_STARTED)
            return e->name;
    }
    return NULL;
}

static void send_completion(remote *r, const char *method, dt_arena *a, const ProtobufCMessage *m)
{
    uint8_t *buf = NULL, *resp = NULL;
    size_t len = 0, n = 0;
    dt_grpc_result res = {0};
    if (pb_pack(a, m, &buf, &len) != DT_OK)
        return;
    /* A completion that does not arrive is not lost: the server redelivers the work item
     * when its lease runs out or the stream ends. */
    dt_grpc_unary(r->conn, method, buf, len, 30000, &resp, &n, &res);
    free(resp);
}

static void run_orchestration(remote *r, dt_arena *a, const char *token,
                              const Dtpb__OrchestratorRequest *rq)
{
    dt_orch_item it = {0};
    dt_error err = {0};
    it.arena = a;
    it.instance_id = rq->instanceid;
    it.lock_token = token;
    it.state.execution_id = rq->executionid ? rq->executionid->value : NULL;
    dt_event *past = NULL, *fresh = NULL;
    if (decode_events(a, rq->pastevents, rq->n_pastevents, &past, &err) != DT_OK ||
        decode_events(a, rq->newevents, rq->n_newevents, &fresh, &err) != DT_OK)
        return;   /* undecodable: let the lease run out rather than answer nonsense */
    it.past = past;
    it.n_past = rq->n_pastevents;
    it.incoming = fresh;
    it.n_incoming = rq->n_newevents;
    it.state.name = started_name(&it);
    dt_orch_result res = {0};
    if (r->ex.run_orchestration(r->ex.data, &it, a, &res) != DT_OK)
        return;
    Dtpb__OrchestratorResponse resp = DTPB__ORCHESTRATOR_RESPONSE__INIT;
    resp.instanceid = (char *)rq->instanceid;
    resp.completiontoken = (char *)token;
    resp.actions = dt_arena_alloc(a, (res.n_actions + 1) * sizeof *resp.actions);
    if (resp.actions == NULL)
        return;
    resp.n_actions = res.n_actions;
    for (size_t i = 0; i < res.n_actions; i++)
        if (pb_action_to_msg(a, &res.actions[i], &resp.actions[i]) != DT_OK)
            return;
    if (pb_string_value_to_msg(a, res.custom_status, &resp.customstatus) != DT_OK)
        return;
    send_completion(r, "CompleteOrchestratorTask", a, &resp.base);
}

static void run_activity(remote *r, dt_arena *a, const char *token,
                         const Dtpb__ActivityRequest *rq)
{
    dt_activity_item it = {0};
    it.arena = a;
    it.instance_id = rq->orchestrationinstance ? rq->orchestrationinstance->instanceid : "";
    it.execution_id = rq->orchestrationinstance && rq->orchestrationinstance->executionid
                          ? rq->orchestrationinstance->executionid->value
                          : NULL;
    it.task_id = rq->taskid;
    it.name = rq->name;
    it.version = rq->version ? rq->version->value : NULL;
    it.input = rq->input && rq->input->value[0] ? rq->input->value : NULL;
    it.lock_token = token;
    const char *result = NULL;
    const dt_failure *failure = NULL;
    if (r->ex.run_activity(r->ex.data, &it, a, &result, &failure) != DT_OK)
        return;
    Dtpb__ActivityResponse resp = DTPB__ACTIVITY_RESPONSE__INIT;
    resp.instanceid = (char *)it.instance_id;
    resp.taskid = rq->taskid;
    resp.completiontoken = (char *)token;
    if (failure) {
        if (pb_failure_to_msg(a, failure, &resp.failuredetails) != DT_OK)
            return;
    } else if (pb_string_value_to_msg(a, result, &resp.result) != DT_OK) {
        return;
    }
    send_completion(r, "CompleteActivityTask", a, &resp.base);
}

static void *pool_main(void *arg)
{
    remote *r = arg;
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
            /* health pings and entity work are not for this worker */
        }
        dt_arena_free(a);
        free(j->bytes);
        free(j);
    }
    return NULL;
}

/* pack_request: GetWorkItemsRequest with filters naming what this worker runs. */
static dt_status pack_request(remote *r, const char *const *orchs, size_t n_orchs,
                              const char *const *acts, size_t n_acts)
{
    dt_arena *a = dt_arena_new();
    if (a == NULL)
        return DT_ERR_NOMEM;
    Dtpb__GetWorkItemsRequest req = DTPB__GET_WORK_ITEMS_REQUEST__INIT;
    Dtpb__WorkItemFilters f = DTPB__WORK_ITEM_FILTERS__INIT;
    f.orchestrations = dt_arena_alloc(a, (n_orchs + 1) * sizeof *f.orchestrations);
    f.activities = dt_arena_alloc(a, (n_acts + 1) * sizeof *f.activities);
    dt_status st = f.orchestrations && f.activities ? DT_OK : DT_ERR_NOMEM;
    for (size_t i = 0; st == DT_OK && i < n_orchs; i++) {
        Dtpb__OrchestrationFilter *o = dt_arena_alloc(a, sizeof *o);
        if (o == NULL)
            st = DT_ERR_NOMEM;
        else {
            dtpb__orchestration_filter__init(o);
            o->name = (char *)orchs[i];
            f.orchestrations[f.n_orchestrations++] = o;
        }
    }
    for (size_t i = 0; st == DT_OK && i < n_acts; i++) {
        Dtpb__ActivityFilter *t = dt_arena_alloc(a, sizeof *t);
        if (t == NULL)
            st = DT_ERR_NOMEM;
        else {
            dtpb__activity_filter__init(t);
            t->name = (char *)acts[i];
            f.activities[f.n_activities++] = t;
        }
    }
    req.workitemfilters = &f;
    uint8_t *buf = NULL;
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

dt_status remote_start(const dt_executor *ex, const char *target, const char *token, int threads,
                       const char *const *orchs, size_t n_orchs, const char *const *acts,
                       size_t n_acts, remote **out, dt_error *err)
{
    remote *r = calloc(1, sizeof *r);
    if (r == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    r->ex = *ex;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    dt_status st = pack_request(r, orchs, n_orchs, acts, n_acts);
    if (st != DT_OK) {
        dt_error_set(err, st, "out of memory");
        goto fail;
    }
    st = dt_grpc_conn_open(target, &r->conn, err);
    if (st == DT_OK && token && (st = dt_grpc_conn_set_token(r->conn, token)) != DT_OK)
        dt_error_set(err, st, "out of memory");
    if (st != DT_OK)
        goto fail;
    r->pool = calloc((size_t)threads, sizeof *r->pool);
    if (r->pool == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (; r->n_pool < threads; r->n_pool++)
        if (pthread_create(&r->pool[r->n_pool], NULL, pool_main, r) != 0)
            break;
    if (r->n_pool == 0 || pthread_create(&r->reader, NULL, reader_main, r) != 0) {
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot start the remote worker's threads");
        r->n_pool = -r->n_pool - 1;   /* marks: no reader to join */
        remote_stop(r);
        return st;
    }
    *out = r;
    return DT_OK;
fail:
    if (r->conn)
        dt_grpc_conn_close(r->conn);
    free(r->request);
    free(r->pool);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return st;
}

void remote_stop(remote *r)
{
    if (r == NULL)
        return;
    bool has_reader = r->n_pool >= 0;
    int n_pool = has_reader ? r->n_pool : -r->n_pool - 1;
    atomic_store(&r->stop, true);
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (has_reader)
        pthread_join(r->reader, NULL);
    for (int i = 0; i < n_pool; i++)
        pthread_join(r->pool[i], NULL);
    while (r->head) {   /* received but not run: the server redelivers them */
        job *j = r->head;
        r->head = j->next;
        free(j->bytes);
        free(j);
    }
    dt_grpc_conn_close(r->conn);
    free(r->request);
    free(r->pool);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
