/* bench.c — the benchmark driver: runs a workload against durabletask-c and prints one JSON
 * line with throughput, latency percentiles and peak memory. Closed loop, as the peer
 * scripts in ../shared/peers measure: CONCURRENCY clients each start an instance and wait
 * for it to finish, again and again, until N instances are done. Latency is from the start
 * request to the observed completion. The clients are asynchronous, as the peers' Node drivers
 * are: each one's next call starts from its last one's callback, and none holds a thread
 * (DTASK_BENCH_CLIENTS=threads: a thread each, blocking on its calls).
 *
 *   dtask-bench MODE WORKLOAD N CONCURRENCY [DB]
 *     MODE      embedded  (hub, C SDK worker and client in this process)
 *               serve     (a `dtask serve` at $DTASK_SERVER; C remote worker and gRPC client
 *                          here; the server's peak memory is read from $DTASK_SERVER_PID)
 *               serve-js  (as serve, but no worker here: the JavaScript SDK worker of
 *                          bench/js/worker.mjs runs the orchestrations, connected on its own)
 *     WORKLOAD  hello | fanout100 | fanout1000 | long | timers | timerwait | payload1k |
 *               payload64k | payload1m
 *   DTASK_SESSIONS=N keeps N suspended instances in the worker (dt_worker_set_sessions; 0:
 *   none, every episode replays); LONG_STEPS=N shortens the long workload;
 *   DTASK_BENCH_SPECULATE=0 commits each activity result before its episode runs (embedded:
 *   dt_hub_options.no_speculation).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "durabletask/durabletask.h"
#include "service/service.h"

/* ---- the workloads' orchestrations ------------------------------------------------------- */

static dt_status say_hello(dt_actx *ctx, const char *input, const char **output)
{
    size_t n = strlen(input);
    *output = dt_activity_printf(ctx, "\"Hello %.*s!\"", (int)(n - 2), input + 1);
    return DT_OK;
}

static dt_status echo(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    *output = input;
    return DT_OK;
}

static dt_status hello(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Tokyo\"", NULL));
    const char *b = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Seattle\"", NULL));
    const char *c = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"London\"", NULL));
    *output = dt_printf(ctx, "[%s,%s,%s]", a, b, c);
    return DT_OK;
}

static dt_status fanout(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    dt_task **t = dt_alloc(ctx, (size_t)n * sizeof *t);
    for (int i = 0; i < n; i++)
        t[i] = dt_call_activity(ctx, "echo", dt_printf(ctx, "%d", i), NULL);
    dt_await(ctx, dt_when_all(ctx, t, (size_t)n));
    *output = dt_printf(ctx, "%d", n);
    return DT_OK;
}

static dt_status chain(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    for (int i = 0; i < n; i++)
        dt_await(ctx, dt_call_activity(ctx, "echo", "1", NULL));
    *output = dt_printf(ctx, "%d", n);
    return DT_OK;
}

/* timers: the input is the fire time (microseconds); everybody's timer is due then */
static dt_status timer(dt_octx *ctx, const char *input, const char **output)
{
    dt_await(ctx, dt_create_timer(ctx, strtoll(input, NULL, 10)));
    *output = "1";
    return DT_OK;
}

static dt_status payload(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", input, NULL));
    return DT_OK;
}

static void register_all(dt_worker *w)
{
    dt_worker_add_orchestrator(w, "hello", hello, NULL);
    dt_worker_add_orchestrator(w, "fanout", fanout, NULL);
    dt_worker_add_orchestrator(w, "chain", chain, NULL);
    dt_worker_add_orchestrator(w, "timer", timer, NULL);
    dt_worker_add_orchestrator(w, "payload", payload, NULL);
    dt_worker_add_activity(w, "say_hello", say_hello, NULL);
    dt_worker_add_activity(w, "echo", echo, NULL);
}

/* ---- running one instance, in process or over gRPC ---------------------------------------- */

#define MAX_NODES 8   /* DTASK_SERVERS: the nodes of one database, clients and workers spread */
#define WAIT_MS 600000   /* an instance not done this long after its start counts as failed */

typedef struct bench {
    const char *mode, *workload;
    int n, concurrency;
    const char *orch;              /* orchestrator name */
    char *input;                   /* its input (malloc'd) */
    dt_hub *hub;                   /* embedded */
    dt_client *client;
    dt_grpc_conn *conns[MAX_NODES]; /* serve: one per node; instance i goes to i % n_conns */
    int n_conns;
    atomic_int next;               /* instances handed out */
    double *lat_ms;                /* per instance */
    atomic_int failures;
    bool to_waiting;               /* timerwait: done when the instance waits on its timer */
} bench;

static double now_ms(void)
{
    return (double)dt_now() / 1000.0;
}

/* What an instance of B is waited for, and the status that ends the wait well: its start
 * (timerwait) or its completion. */
static dt_wait_for wait_for(const bench *b)
{
    return b->to_waiting ? DT_WAIT_START : DT_WAIT_COMPLETION;
}

static bool reached(const bench *b, dt_runtime_status st)
{
    return st == (b->to_waiting ? DT_STATUS_RUNNING : DT_STATUS_COMPLETED);
}

static const char *wait_method(const bench *b)
{
    return b->to_waiting ? "WaitForInstanceStart" : "WaitForInstanceCompletion";
}

/* served_reached: did the wait's answer GR find the instance where reached() wants it? */
static bool served_reached(const bench *b, const Dtpb__GetInstanceResponse *gr)
{
    return gr->exists && gr->orchestrationstate &&
           gr->orchestrationstate->orchestrationstatus ==
               (b->to_waiting ? DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING
                              : DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED);
}

/* start_request: B's StartInstance for ID into CR, its input in IN */
static void start_request(const bench *b, const char *id, Dtpb__CreateInstanceRequest *cr,
                          Dtpb__StringValue *in)
{
    *cr = (Dtpb__CreateInstanceRequest)DTPB__CREATE_INSTANCE_REQUEST__INIT;
    *in = (Dtpb__StringValue)DTPB__STRING_VALUE__INIT;
    cr->name = (char *)b->orch;
    cr->instanceid = (char *)id;
    in->value = b->input;
    cr->input = in;
}

static bool run_embedded(bench *b, const char *id)
{
    dt_start_options so = {.instance_id = id, .input = b->input};
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_error err;
    if (dt_client_start(b->client, b->orch, &so, out, &err) != DT_OK)
        return false;
    dt_arena *a = dt_arena_new();
    dt_instance_state *s = NULL;
    dt_status st = b->to_waiting
                       ? dt_client_wait_start(b->client, id, WAIT_MS, a, &s, &err)
                       : dt_client_wait_completion(b->client, id, WAIT_MS, a, &s, &err);
    bool ok = st == DT_OK && reached(b, s->status);
    dt_arena_free(a);
    return ok;
}

static bool call(dt_grpc_conn *conn, const char *method, const ProtobufCMessage *m,
                 dt_arena *a, const ProtobufCMessageDescriptor *rd, void **resp)
{
    uint8_t *req = NULL, *r = NULL;
    size_t len = 0, rlen = 0;
    dt_grpc_result res = {0};
    if (pb_pack(a, m, &req, &len) != DT_OK ||
        dt_grpc_unary(conn, method, req, len, WAIT_MS, &r, &rlen, &res) != DT_OK ||
        res.code != 0) {
        free(r);
        return false;
    }
    bool ok = rd == NULL || pb_unpack(a, rd, r, rlen, resp, NULL) == DT_OK;
    free(r);
    return ok;
}

/* run_serve: instance I (ID), started and waited for through node I % n_conns. */
static bool run_serve(bench *b, int i, const char *id)
{
    dt_grpc_conn *conn = b->conns[i % b->n_conns];
    dt_arena *a = dt_arena_new();
    Dtpb__CreateInstanceRequest cr;
    Dtpb__StringValue in;
    start_request(b, id, &cr, &in);
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = (char *)id;
    Dtpb__GetInstanceResponse *gr = NULL;
    bool ok = call(conn, "StartInstance", &cr.base, a, NULL, NULL) &&
              call(conn, wait_method(b), &g.base, a, &dtpb__get_instance_response__descriptor,
                   (void **)&gr) &&
              served_reached(b, gr);
    dt_arena_free(a);
    return ok;
}

/* ---- the callers: asynchronous, or a thread each ------------------------------------------ */

/* An asynchronous caller: one instance at a time, each call started from the last one's
 * callback, as the peers' drivers (Node) run theirs; no thread is held per caller. */
typedef struct callers callers;
typedef struct caller {
    bench *b;
    callers *all;
    int i;                         /* the instance under way */
    char id[64];
    double t0;
    dt_start_request req;          /* embedded: valid until its start is called back */
    struct caller *retry_next;     /* in callers' retry list */
} caller;

struct callers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int running;                   /* callers that have not run out of instances (mu) */
    caller *retry;                 /* callers whose instance failed, to go on from run_async's
                                    * thread rather than from a callback, which may be running
                                    * on the starting thread itself (mu) */
    int run;                       /* this run's number, in the ids */
};

static void caller_next(caller *c);

static void caller_done(caller *c, bool ok)
{
    c->b->lat_ms[c->i] = now_ms() - c->t0;
    if (!ok)
        atomic_fetch_add(&c->b->failures, 1);
}

/* caller_failed: the instance under way failed before its end was seen; run_async's thread
 * goes on to the next (dt_hub_start_async calls back a failure on the starting thread: going on
 * from here would recurse once per failing instance) */
static void caller_failed(caller *c)
{
    caller_done(c, false);
    pthread_mutex_lock(&c->all->mu);
    c->retry_next = c->all->retry;
    c->all->retry = c;
    pthread_cond_signal(&c->all->cv);
    pthread_mutex_unlock(&c->all->mu);
}

static bool embedded_waited(void *arg, dt_status st, const dt_instance_state *row,
                            const dt_error *err)
{
    (void)err;
    caller *c = arg;
    if (st == DT_ERR_TIMEOUT && now_ms() - c->t0 < WAIT_MS)
        return true;   /* not yet: wait on */
    caller_done(c, st == DT_OK && reached(c->b, row->status));
    caller_next(c);
    return false;
}

static void embedded_started(void *arg, dt_status st, const dt_error *err, const char *id)
{
    (void)err;
    (void)id;
    caller *c = arg;
    dt_error e;
    if (st != DT_OK ||
        dt_hub_wait_async(c->b->hub, c->id, wait_for(c->b), embedded_waited, c, &e) != DT_OK)
        caller_failed(c);
}

static void serve_waited(void *arg, dt_status st, const uint8_t *resp, size_t len,
                         const dt_grpc_result *res)
{
    caller *c = arg;
    dt_arena *a = dt_arena_new();
    Dtpb__GetInstanceResponse *gr = NULL;
    bool ok = a && st == DT_OK && res->code == 0 &&
              pb_unpack(a, &dtpb__get_instance_response__descriptor, resp, len, (void **)&gr,
                        NULL) == DT_OK &&
              served_reached(c->b, gr);
    dt_arena_free(a);
    caller_done(c, ok);
    caller_next(c);
}

/* serve_call: start METHOD with M on the caller's node; DONE is called back */
static bool serve_call(caller *c, const char *method, const ProtobufCMessage *m,
                       dt_grpc_done_fn done)
{
    dt_arena *a = dt_arena_new();
    uint8_t *req = NULL;
    size_t len = 0;
    bool ok = a && pb_pack(a, m, &req, &len) == DT_OK &&
              dt_grpc_unary_start(c->b->conns[c->i % c->b->n_conns], method, req, len, WAIT_MS,
                                  done, c) == DT_OK;
    dt_arena_free(a);
    return ok;
}

static void serve_started(void *arg, dt_status st, const uint8_t *resp, size_t len,
                          const dt_grpc_result *res)
{
    (void)resp;
    (void)len;
    caller *c = arg;
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = c->id;
    if (st != DT_OK || res->code != 0 || !serve_call(c, wait_method(c->b), &g.base, serve_waited))
        caller_failed(c);
}

/* caller_start: start instance C->i; false if it could not be (its callback will not come) */
static bool caller_start(caller *c)
{
    bench *b = c->b;
    if (strcmp(b->mode, "embedded") == 0) {
        c->req = (dt_start_request){.name = b->orch, .instance_id = c->id, .input = b->input};
        dt_hub_start_async(b->hub, &c->req, embedded_started, c);
        return true;
    }
    Dtpb__CreateInstanceRequest cr;
    Dtpb__StringValue in;
    start_request(b, c->id, &cr, &in);
    return serve_call(c, "StartInstance", &cr.base, serve_started);
}

/* caller_next: start the next instance, or end the caller when none is left */
static void caller_next(caller *c)
{
    bench *b = c->b;
    for (;;) {
        int i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n) {
            pthread_mutex_lock(&c->all->mu);
            if (--c->all->running == 0)
                pthread_cond_signal(&c->all->cv);
            pthread_mutex_unlock(&c->all->mu);
            return;
        }
        c->i = i;
        snprintf(c->id, sizeof c->id, "bench-%d-a%d-%d", (int)getpid(), c->all->run, i);
        c->t0 = now_ms();
        if (caller_start(c))
            return;
        caller_done(c, false);
    }
}

/* run_async: B's closed loop with asynchronous callers */
static void run_async(bench *b)
{
    static atomic_int runs;
    callers all = {.running = b->concurrency, .run = atomic_fetch_add(&runs, 1)};
    caller *cs = calloc((size_t)b->concurrency, sizeof *cs);
    if (cs == NULL || pthread_mutex_init(&all.mu, NULL) != 0) {
        free(cs);
        atomic_fetch_add(&b->failures, b->n);
        return;
    }
    pthread_cond_init(&all.cv, NULL);
    for (int k = 0; k < b->concurrency; k++) {
        cs[k] = (caller){.b = b, .all = &all};
        caller_next(&cs[k]);
    }
    pthread_mutex_lock(&all.mu);
    while (all.running > 0) {
        caller *retry = all.retry;
        all.retry = NULL;
        if (retry == NULL) {
            pthread_cond_wait(&all.cv, &all.mu);
            continue;
        }
        pthread_mutex_unlock(&all.mu);
        while (retry) {
            caller *next = retry->retry_next;
            caller_next(retry);
            retry = next;
        }
        pthread_mutex_lock(&all.mu);
    }
    pthread_mutex_unlock(&all.mu);
    pthread_cond_destroy(&all.cv);
    pthread_mutex_destroy(&all.mu);
    free(cs);
}

static void *client_loop(void *arg)
{
    bench *b = arg;
    static atomic_int uniq;
    int run = atomic_fetch_add(&uniq, 1);
    for (;;) {
        int i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n)
            return NULL;
        char id[64];
        snprintf(id, sizeof id, "bench-%d-%d-%d", (int)getpid(), run, i);
        double t0 = now_ms();
        bool ok = strcmp(b->mode, "embedded") == 0 ? run_embedded(b, id) : run_serve(b, i, id);
        b->lat_ms[i] = now_ms() - t0;
        if (!ok)
            atomic_fetch_add(&b->failures, 1);
    }
}

/* run_clients: B's closed loop, B->concurrency callers until B->n instances are done:
 * asynchronous callers, or with DTASK_BENCH_CLIENTS=threads a thread each that blocks on
 * its calls (as before the async ones; for comparison). */
static void run_clients(bench *b)
{
    const char *how = getenv("DTASK_BENCH_CLIENTS");
    if (how == NULL || strcmp(how, "threads") != 0) {
        run_async(b);
        return;
    }
    pthread_t *t = calloc((size_t)b->concurrency, sizeof *t);
    int started = 0;
    while (t && started < b->concurrency &&
           pthread_create(&t[started], NULL, client_loop, b) == 0)
        started++;
    for (int i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    if (started == 0)
        atomic_fetch_add(&b->failures, b->n);
    free(t);
}

/* warm_up: DTASK_BENCH_WARMUP hello instances at concurrency 16, not counted, before the
 * measured run, as the peer scripts warm Restate and DBOS up (../shared/peers: --warmup, 200
 * invocations of hello at 16): JIT compilers (the JavaScript worker's), caches and
 * connections start warm on every side. */
static void warm_up(const bench *b)
{
    int n = getenv("DTASK_BENCH_WARMUP") ? atoi(getenv("DTASK_BENCH_WARMUP")) : 0;
    if (n <= 0)
        return;
    char input[] = "null";
    bench w = *b;
    w.workload = w.orch = "hello";
    w.input = input;
    w.n = n;
    w.concurrency = 16;
    w.to_waiting = false;
    atomic_store(&w.next, 0);
    atomic_store(&w.failures, 0);
    w.lat_ms = calloc((size_t)n, sizeof *w.lat_ms);
    if (w.lat_ms)
        run_clients(&w);
    if (atomic_load(&w.failures))
        fprintf(stderr, "dtask-bench: %d of %d warm-up instances failed\n",
                atomic_load(&w.failures), n);
    free(w.lat_ms);
}

/* durability: what the figures of MODE were measured with ($DTASK_BENCH_DURABILITY, else what
 * the mode's store does by default: the pgN modes run on PostgreSQL, the others on SQLite). */
static const char *durability(const char *mode)
{
    const char *told = getenv("DTASK_BENCH_DURABILITY");
    if (told)
        return told;
    if (strncmp(mode, "pg", 2) == 0)
        return "PostgreSQL as its server is set (fsync and synchronous_commit are on by "
               "default and on bench/run.sh's server): every commit flushed before its outcome "
               "is told (group commit per node)";
    return "sqlite WAL, every commit fsynced before its outcome is told (group commit)";
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double percentile(double *v, int n, double p)
{
    int rank = (int)((p / 100.0) * n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* peak_rss_mb: VmHWM of PID (or of this process). */
static double peak_rss_mb(const char *pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%s/status", pid ? pid : "self");
    FILE *f = fopen(path, "r");
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atof(line + 6);
    if (f)
        fclose(f);
    return kb / 1024.0;
}

/* workload: the orchestrator and input of WORKLOAD; false if unknown. */
static bool workload(bench *b)
{
    const char *w = b->workload;
    char buf[64];
    if (strcmp(w, "hello") == 0) {
        b->orch = "hello";
        b->input = strdup("null");
    } else if (strncmp(w, "fanout", 6) == 0) {
        b->orch = "fanout";
        b->input = strdup(w + 6);
    } else if (strcmp(w, "long") == 0) {
        b->orch = "chain";
        snprintf(buf, sizeof buf, "%s", getenv("LONG_STEPS") ? getenv("LONG_STEPS") : "10000");
        b->input = strdup(buf);
    } else if (strcmp(w, "timers") == 0) {
        b->orch = "timer";
        /* every timer is due at the same moment (run_timers sets it) */
        snprintf(buf, sizeof buf, "%lld", (long long)(dt_now() + 3000000));
        b->input = strdup(buf);
    } else if (strcmp(w, "timerwait") == 0) {
        /* instances that wait on a timer an hour away: the memory of a hub holding them */
        b->orch = "timer";
        b->to_waiting = true;
        snprintf(buf, sizeof buf, "%lld", (long long)(dt_now() + 3600000000LL));
        b->input = strdup(buf);
    } else if (strncmp(w, "payload", 7) == 0) {
        size_t size = strcmp(w + 7, "1k") == 0    ? 1024
                      : strcmp(w + 7, "64k") == 0 ? 65536
                      : strcmp(w + 7, "1m") == 0  ? 1048576
                                                  : 0;
        if (size == 0)
            return false;
        b->orch = "payload";
        b->input = malloc(size + 1);
        if (b->input) {
            memset(b->input, 'x', size);
            b->input[0] = b->input[size - 1] = '"';
            b->input[size] = '\0';
        }
    } else {
        return false;
    }
    return b->input != NULL;
}

/* ---- replay cost: the embedded executor, timed per episode by history length --------------- */

#define MAX_EPISODES 200000
static dt_executor inner;
static size_t ep_len[MAX_EPISODES];
static double ep_us[MAX_EPISODES];
static atomic_int n_eps;

static dt_status timed_orchestration(void *data, const dt_orch_request *req, dt_arena *arena,
                                     dt_orch_result *out)
{
    double t0 = now_ms();
    dt_status st = inner.run_orchestration(data, req, arena, out);
    int i = atomic_fetch_add(&n_eps, 1);
    if (i < MAX_EPISODES) {
        ep_len[i] = req->n_past;
        ep_us[i] = (now_ms() - t0) * 1000.0;
    }
    return st;
}

/* print_session_stats: the worker's sessions, as more fields of a JSON object */
static void print_session_stats(dt_worker *w)
{
    dt_session_stats st;
    dt_worker_session_stats(w, &st);
    printf(",\"session_hits\":%llu,\"session_misses\":%llu,\"past_left_out\":%llu,"
           "\"past_missing\":%llu", (unsigned long long)st.hits, (unsigned long long)st.misses,
           (unsigned long long)st.past_left_out, (unsigned long long)st.past_missing);
}

/* print_replay_cost: the mean episode time in bands of history length, and per event: flat
 * per-event cost means the replay cost grows linearly with history. */
static void print_replay_cost(dt_worker *w)
{
    int n = atomic_load(&n_eps) < MAX_EPISODES ? atomic_load(&n_eps) : MAX_EPISODES;
    size_t max = 0;
    for (int i = 0; i < n; i++)
        if (ep_len[i] > max)
            max = ep_len[i];
    printf("{\"system\":\"durabletask-c\",\"mode\":\"embedded\",\"workload\":\"long_replay\","
           "\"bands\":[");
    for (int band = 0; band < 5; band++) {
        size_t lo = max * (size_t)band / 5, hi = max * (size_t)(band + 1) / 5;
        double us = 0, events = 0;
        int k = 0;
        for (int i = 0; i < n; i++)
            if (ep_len[i] >= lo && ep_len[i] < hi + (band == 4)) {
                us += ep_us[i];
                events += (double)ep_len[i];
                k++;
            }
        printf("%s{\"history_from\":%zu,\"history_to\":%zu,\"episodes\":%d,\"us_per_episode\":%.1f,"
               "\"ns_per_history_event\":%.1f}",
               band ? "," : "", lo, hi, k, k ? us / k : 0, events > 0 ? us * 1000 / events : 0);
    }
    printf("]");
    print_session_stats(w);
    printf("}\n");
}

/* run_timers: start all N instances (CONCURRENCY clients at once), each with a timer due at
 * the same moment, then wait for all; latency is from the due time to each completion, and
 * the run's time is from the due time to the last completion. The due time leaves room for
 * the starts (about 200 us each), so every timer is set before the moment comes. */
typedef struct timer_run {
    bench *b;
    atomic_int next;
} timer_run;

static void *timer_starter(void *arg)
{
    timer_run *tr = arg;
    bench *b = tr->b;
    dt_error err;
    for (int i; (i = atomic_fetch_add(&tr->next, 1)) < b->n;) {
        char id[64], out[DT_INSTANCE_ID_MAX + 1];
        snprintf(id, sizeof id, "timer-%d-%d", (int)getpid(), i);
        dt_start_options so = {.instance_id = id, .input = b->input};
        if (dt_client_start(b->client, b->orch, &so, out, &err) != DT_OK)
            atomic_fetch_add(&b->failures, 1);
    }
    return NULL;
}

static double run_timers(bench *b)
{
    dt_time due = dt_now() + 3000000 + (dt_time)b->n * 200;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)due);
    free(b->input);
    b->input = strdup(buf);
    timer_run tr = {.b = b};
    pthread_t *t = calloc((size_t)b->concurrency, sizeof *t);
    for (int i = 0; i < b->concurrency; i++)
        pthread_create(&t[i], NULL, timer_starter, &tr);
    for (int i = 0; i < b->concurrency; i++)
        pthread_join(t[i], NULL);
    free(t);
    if (dt_now() > due)
        fprintf(stderr, "dtask-bench: starting took past the due time; late timers fire "
                        "as soon as they are set\n");
    dt_time last = due;
    dt_error err;
    for (int i = 0; i < b->n; i++) {
        char id[64];
        snprintf(id, sizeof id, "timer-%d-%d", (int)getpid(), i);
        dt_arena *a = dt_arena_new();
        dt_instance_state *s = NULL;
        if (dt_client_wait_completion(b->client, id, 600000, a, &s, &err) != DT_OK) {
            atomic_fetch_add(&b->failures, 1);
        } else {
            b->lat_ms[i] = (double)(s->completed_at - due) / 1000.0;
            if (s->completed_at > last)
                last = s->completed_at;
        }
        dt_arena_free(a);
    }
    return (double)(last - due) / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: dtask-bench MODE WORKLOAD N CONCURRENCY [DB]\n");
        return 2;
    }
    bench b = {.mode = argv[1], .workload = argv[2], .n = atoi(argv[3]),
               .concurrency = atoi(argv[4])};
    if (b.n <= 0 || b.concurrency <= 0 || !workload(&b)) {
        fprintf(stderr, "dtask-bench: bad workload or numbers\n");
        return 2;
    }
    /* what `dtask` does at start, and what docs/performance.md tells an application that
     * embeds a hub to do */
    dt_hub_tune_malloc();
    b.lat_ms = calloc((size_t)b.n, sizeof *b.lat_ms);
    dt_error err = {0};
    dt_worker *w = NULL;
    dt_worker_new(&w);
    register_all(w);
    if (getenv("DTASK_SESSIONS"))   /* how many suspended instances the worker keeps; 0: none */
        dt_worker_set_sessions(w, (size_t)atol(getenv("DTASK_SESSIONS")));
    dt_remote_options ro = {.threads = 24};
    dt_remote_worker *rws[MAX_NODES] = {NULL};
    bool embedded = strcmp(b.mode, "embedded") == 0;
    if (embedded) {
        dt_hub_options ho = {.db_path = argc > 5 ? argv[5] : "/tmp/dtask-bench/bench.db"};
        const char *spec = getenv("DTASK_BENCH_SPECULATE");
        ho.no_speculation = spec && strcmp(spec, "0") == 0;
        inner = dt_worker_executor(w);
        dt_executor timed = inner;
        timed.run_orchestration = timed_orchestration;
        if (dt_hub_open(&ho, &b.hub, &err) != DT_OK || dt_hub_run(b.hub, &timed, NULL, 2, 4, &err) ||
            dt_client_new(b.hub, &b.client) != DT_OK) {
            fprintf(stderr, "dtask-bench: %s\n", err.message);
            return 1;
        }
    } else {
        /* DTASK_SERVERS: several nodes of one database (comma-separated), a worker on each;
         * else DTASK_SERVER */
        const char *list = getenv("DTASK_SERVERS") ? getenv("DTASK_SERVERS") : getenv("DTASK_SERVER");
        bool js = strcmp(b.mode, "serve-js") == 0;
        char *servers = list ? strdup(list) : NULL, *save = NULL;
        for (char *srv = servers ? strtok_r(servers, ",", &save) : NULL;
             srv && b.n_conns < MAX_NODES; srv = strtok_r(NULL, ",", &save)) {
            if (dt_grpc_conn_open(srv, &b.conns[b.n_conns], &err) != DT_OK ||
                (!js && dt_remote_worker_start(w, srv, &ro, &rws[b.n_conns], &err) != DT_OK)) {
                fprintf(stderr, "dtask-bench: server %s: %s\n", srv, err.message);
                return 1;
            }
            b.n_conns++;
        }
        free(servers);
        if (b.n_conns == 0) {
            fprintf(stderr, "dtask-bench: no server (set DTASK_SERVER or DTASK_SERVERS)\n");
            return 1;
        }
    }
    bool timers = strcmp(b.workload, "timers") == 0 && embedded;
    if (!timers) {
        warm_up(&b);
        atomic_store(&n_eps, 0);   /* the episodes timed for long_replay: the run's alone */
    }
    double t0 = now_ms();
    double secs;
    if (timers) {
        secs = run_timers(&b);   /* from the due time to the last completion */
    } else {
        run_clients(&b);
        secs = (now_ms() - t0) / 1000.0;
    }
    qsort(b.lat_ms, (size_t)b.n, sizeof *b.lat_ms, cmp_double);
    double rss = embedded ? peak_rss_mb(NULL) : peak_rss_mb(getenv("DTASK_SERVER_PID"));
    printf("{\"system\":\"durabletask-c\",\"mode\":\"%s\",\"workload\":\"%s\",\"n\":%d,"
           "\"concurrency\":%d,\"throughput_per_s\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,"
           "\"peak_rss_mb\":%.1f,\"failures\":%d,\"durability\":\"%s\"}\n",
           b.mode, b.workload, b.n, b.concurrency, b.n / secs, percentile(b.lat_ms, b.n, 50),
           percentile(b.lat_ms, b.n, 99), rss, atomic_load(&b.failures),
           durability(b.mode));
    if (embedded && strcmp(b.workload, "long") == 0)
        print_replay_cost(w);
    if (strcmp(b.mode, "serve") == 0 && strcmp(b.workload, "long") == 0) {
        printf("{\"system\":\"durabletask-c\",\"mode\":\"serve\",\"workload\":\"long_sessions\"");
        print_session_stats(w);   /* the C remote worker's */
        printf("}\n");
    }
    if (embedded && getenv("DTASK_BENCH_METRICS")) {   /* the hub's own counters, to stderr */
        char *m = NULL;
        if (dt_hub_metrics_text(b.hub, &m) == DT_OK)
            fputs(m, stderr);
        free(m);
    }
    fflush(stdout);
    if (embedded)
        dt_hub_stop(b.hub);
    for (int i = 0; i < MAX_NODES; i++)
        dt_remote_worker_stop(rws[i]);
    dt_worker_free(w);
    dt_client_free(b.client);
    dt_hub_close(b.hub);
    for (int i = 0; i < b.n_conns; i++)
        dt_grpc_conn_close(b.conns[i]);
    free(b.lat_ms);
    free(b.input);
    return atomic_load(&b.failures) ? 1 : 0;
}
