/* test_db_full.c — a database at its size limit (dt_hub_options.max_db_bytes) and the work in
 * flight: an activity whose result finds no room is not run again; its result waits, with its
 * lease kept, and goes in once a purge has made room. A remote worker's results that wait so
 * do not hold up its completion stream (its other completions go on), nor a server's stop;
 * an HTTP call's response (the activity as `dtask serve` hosts it) waits so too. SQLite
 * only: the limit is SQLite's (PostgreSQL has its own quotas). */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durabletask/grpc.h"
#include "durabletask/httpcall.h"
#include "durabletask/remote.h"
#include "durabletask/store.h"
#include "httptest.h"
#include "hubfix.h"

#define LIMIT (4u << 20)
#define FILL_INPUT (200u << 10)
#define BIG_RESULT (600u << 10)
#define MAX_FILLERS 64

/* The activity "big" counts its runs, waits at gate A until the test opens it, and returns
 * a string of as many bytes as its input says (as JSON; no input: g_result_bytes); "tiny"
 * waits at gate B and returns "t". */
static atomic_int g_runs, g_tiny_runs;
static size_t g_result_bytes;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static bool g_open_a, g_open_b;

static void wait_gate(const bool *gate)
{
    pthread_mutex_lock(&g_mu);
    while (!*gate)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

static void open_gate(bool *gate)
{
    pthread_mutex_lock(&g_mu);
    *gate = true;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static dt_status big(dt_actx *ctx, const char *input, const char **output)
{
    atomic_fetch_add(&g_runs, 1);
    wait_gate(&g_open_a);
    size_t n = input ? strtoul(input, NULL, 10) : g_result_bytes;
    char *s = dt_activity_alloc(ctx, n + 3);
    if (s == NULL)
        return DT_ERR_NOMEM;
    s[0] = '"';
    memset(s + 1, 'x', n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    *output = s;
    return DT_OK;
}

static dt_status tiny(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    (void)input;
    atomic_fetch_add(&g_tiny_runs, 1);
    wait_gate(&g_open_b);
    *output = "\"t\"";
    return DT_OK;
}

/* keep / keep_tiny: call "big" (with its own input) / "tiny" and return what it returned. */
static dt_status keep(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "big", input, NULL));
    return DT_OK;
}

static dt_status keep_tiny(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_call_activity(ctx, "tiny", NULL, NULL));
    return DT_OK;
}

/* done: returns at once (its input stays in its history). */
static dt_status done(dt_octx *ctx, const char *input, const char **output)
{
    (void)ctx;
    (void)input;
    *output = NULL;
    return DT_OK;
}

static void reset(size_t result_bytes)
{
    atomic_store(&g_runs, 0);
    atomic_store(&g_tiny_runs, 0);
    g_result_bytes = result_bytes;
    g_open_a = g_open_b = false;
}

static dt_runtime_status status_of(hubfix *f, const char *id)
{
    dt_instance_state *s = NULL;
    assert_ok(dt_client_get(f->client, id, f->arena, &s, NULL), NULL);
    return s->status;
}

/* wait_status: true once ID has STATUS, within MS. */
static bool wait_status(hubfix *f, const char *id, dt_runtime_status status, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        if (status_of(f, id) == status)
            return true;
        usleep(20000);
    }
    return status_of(f, id) == status;
}

/* waiting: the hub's count of results waiting for room (its metrics) */
static long waiting(hubfix *f)
{
    char *text = NULL;
    assert_ok(dt_hub_metrics_text(f->hub, &text), NULL);
    const char *p = strstr(text, "\ndtask_results_waiting ");
    assert_non_null(p);
    long n = strtol(p + strlen("\ndtask_results_waiting "), NULL, 10);
    free(text);
    return n;
}

/* wait_waiting: true once N results wait for room, within 30 s (each is tried again now and
 * then, and is not counted while it is) */
static bool wait_waiting(hubfix *f, long n)
{
    for (int i = 0; i < 3000; i++, usleep(10000))
        if (waiting(f) == n)
            return true;
    return false;
}

/* wait_runs: true once RUNS reaches N, within 30 s */
static bool wait_runs(atomic_int *runs, int n)
{
    for (int i = 0; i < 3000 && atomic_load(runs) < n; i++)
        usleep(10000);
    return atomic_load(runs) == n;
}

/* fill: the database filled with finished instances of "done" until a start is refused for
 * room; their ids into FILLERS, their number returned. */
static int fill(hubfix *f, char fillers[][DT_INSTANCE_ID_MAX + 1])
{
    char *in = test_json_string(FILL_INPUT, 'f');
    int n = 0;
    dt_error err = {0};
    for (; n < MAX_FILLERS; n++) {
        dt_start_options fo = {.input = in};
        dt_status st = dt_client_start(f->client, "done", &fo, fillers[n], &err);
        if (st == DT_ERR_NO_SPACE)
            break;
        assert_ok(st, &err);
        dt_instance_state *s = NULL;
        assert_ok(dt_client_wait_completion(f->client, fillers[n], 30000, f->arena, &s, NULL),
                  NULL);
        assert_int_equal(s->status, DT_STATUS_COMPLETED);
    }
    free(in);
    assert_true(n > 4 && n < MAX_FILLERS);
    assert_non_null(strstr(err.message, "limit"));
    return n;
}

/* completed_once: ID's history has one TaskCompleted (its activity's result went in once). */
static void completed_once(hubfix *f, const char *id)
{
    size_t n_ev = 0;
    dt_event *ev = hubfix_history(f, id, &n_ev);
    assert_int_equal(hubfix_count(ev, n_ev, DT_EVENT_TASK_COMPLETED), 1);
}

/* make_room: purge the N FILLERS; then ID, whose result waited for room, completes (its
 * state returned). */
static dt_instance_state *make_room(hubfix *f, char fillers[][DT_INSTANCE_ID_MAX + 1], int n,
                                    const char *id)
{
    for (int i = 0; i < n; i++)
        assert_ok(dt_client_purge(f->client, fillers[i], NULL), NULL);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f->client, id, 30000, f->arena, &s, NULL), NULL);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    return s;
}

/* open_full_with: a hub with options O, the limit and a 3 s lease, KEEPERS instances of
 * "keep" started ("keeper", "keeper2", ...) and their activities at the gate, and then the
 * database filled (fill). */
static int open_full_with(hubfix *f, const char *name, dt_hub_options o, int keepers,
                          char fillers[][DT_INSTANCE_ID_MAX + 1])
{
    reset(BIG_RESULT);
    o.max_db_bytes = LIMIT;
    o.lease_ms = 3000;
    hubfix_open(f, name, &o);
    assert_ok(dt_worker_add_orchestrator(f->worker, "keep", keep, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "done", done, NULL), NULL);
    assert_ok(dt_worker_add_activity(f->worker, "big", big, NULL), NULL);
    hubfix_start(f);

    for (int i = 0; i < keepers; i++) {
        char id[DT_INSTANCE_ID_MAX + 1], want[32];
        snprintf(want, sizeof want, i ? "keeper%d" : "keeper", i + 1);
        dt_start_options so = {.instance_id = want};
        assert_ok(dt_client_start(f->client, "keep", &so, id, NULL), NULL);
    }
    assert_true(wait_runs(&g_runs, keepers));
    return fill(f, fillers);
}

static int open_full(hubfix *f, const char *name, char fillers[][DT_INSTANCE_ID_MAX + 1])
{
    return open_full_with(f, name, (dt_hub_options){0}, 1, fillers);
}

/* The activity's result is refused for room (speculated with its episode, then alone): it
 * is kept, the activity does not run again, not even after its lease's time (3 s, renewed
 * while the result waits); once a purge makes room, the result goes in and the instance
 * completes with it. */
static void test_a_result_without_room_waits_for_it_and_the_activity_runs_once(void **state)
{
    (void)state;
    hubfix f;
    char fillers[MAX_FILLERS][DT_INSTANCE_ID_MAX + 1];
    int n = open_full(&f, "db_full", fillers);

    open_gate(&g_open_a);
    assert_true(wait_waiting(&f, 1));
    sleep(4);   /* past the lease's time */
    assert_int_equal(atomic_load(&g_runs), 1);
    assert_int_equal(status_of(&f, "keeper"), DT_STATUS_RUNNING);

    dt_instance_state *s = make_room(&f, fillers, n, "keeper");
    assert_non_null(s->output);
    assert_int_equal(strlen(s->output), BIG_RESULT + 2);
    assert_int_equal(atomic_load(&g_runs), 1);
    assert_int_equal(waiting(&f), 0);
    completed_once(&f, "keeper");
    hubfix_close(&f);
}

/* A hub that closes while a result waits for room lets it go (its requester is told of the
 * refusal, its memory freed: ASan checks) and does not hang. */
static void test_a_hub_closes_with_a_result_waiting(void **state)
{
    (void)state;
    hubfix f;
    char fillers[MAX_FILLERS][DT_INSTANCE_ID_MAX + 1];
    open_full(&f, "db_full_close", fillers);
    open_gate(&g_open_a);
    assert_true(wait_waiting(&f, 1));
    assert_int_equal(status_of(&f, "keeper"), DT_STATUS_RUNNING);
    hubfix_close(&f);
    assert_int_equal(atomic_load(&g_runs), 1);
}

/* two_refused: two results refused for room, with the hub's bounds in O leaving room to
 * wait for ROOM_FOR of them: those wait, the other's refusal is told at once (as before
 * parking), so its activity runs again after its lease; after a purge both go in, each
 * once. */
static void two_refused(dt_hub_options o, const char *name, int room_for)
{
    hubfix f;
    char fillers[MAX_FILLERS][DT_INSTANCE_ID_MAX + 1];
    int n = open_full_with(&f, name, o, 2, fillers);
    open_gate(&g_open_a);
    assert_true(wait_waiting(&f, room_for));
    sleep(4);   /* past the lease's time */
    assert_int_equal(waiting(&f), room_for);

    make_room(&f, fillers, n, "keeper");
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f.client, "keeper2", 30000, f.arena, &s, NULL), NULL);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
    if (room_for == 2)   /* neither ran again */
        assert_int_equal(atomic_load(&g_runs), 2);
    else   /* the one told ran again (after each lease, while there was no room) */
        assert_true(atomic_load(&g_runs) >= 3);
    completed_once(&f, "keeper");
    completed_once(&f, "keeper2");
    assert_int_equal(waiting(&f), 0);
    hubfix_close(&f);
}

static void test_within_the_bounds_two_results_wait(void **state)
{
    (void)state;
    two_refused((dt_hub_options){.max_waiting_results = 2,
                                 .max_waiting_bytes = 2 * BIG_RESULT + 4096},
                "db_full_two", 2);
}

static void test_past_the_bound_on_waiting_results_a_refusal_is_told(void **state)
{
    (void)state;
    two_refused((dt_hub_options){.max_waiting_results = 1}, "db_full_bound", 1);
}

static void test_past_the_bound_on_waiting_bytes_a_refusal_is_told(void **state)
{
    (void)state;
    two_refused((dt_hub_options){.max_waiting_bytes = BIG_RESULT + BIG_RESULT / 2},
                "db_full_bytes", 1);
}

/* log_to: stderr (the log) into file PATH from here, until log_back, which returns what was
 * written (and writes it to stderr too); a test that fails before has it back in its
 * teardown (log_teardown). */
static int g_old_stderr = -1;
static char g_log[600];

static void log_to(const char *path)
{
    fflush(stderr);
    snprintf(g_log, sizeof g_log, "%s", path);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    g_old_stderr = dup(2);
    assert_true(g_old_stderr >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
}

static char *log_back(void)
{
    fflush(stderr);
    dup2(g_old_stderr, 2);
    close(g_old_stderr);
    g_old_stderr = -1;
    FILE *fp = fopen(g_log, "r");
    assert_non_null(fp);
    char *text = calloc(1, 1 << 20);
    assert_non_null(text);
    size_t n = fread(text, 1, (1 << 20) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    fputs(text, stderr);
    return text;
}

static int log_teardown(void **state)
{
    (void)state;
    if (g_old_stderr >= 0)
        free(log_back());
    return 0;
}

/* A served hub and a remote C worker for it (its own registry), keepers k0.. (N of them;
 * the odd ones' results of ODD_BYTES when not 0) and "tiny_keeper" with their activities at
 * the gates; then, after an instance run and purged (FILL bytes of input) left some free
 * pages, a limit at the size the file has now: nothing may grow it. With UNARY, the server
 * has no completion stream: the worker sends each completion as a unary call. */
typedef struct remote_fix {
    hubfix f;
    dt_store *store;              /* the hub's */
    dt_grpc_server *srv;
    dt_worker *w;
    dt_remote_worker *rw;
} remote_fix;

static void remote_open_as(remote_fix *x, const char *name, int n, size_t result_bytes,
                           size_t odd_bytes, size_t fill, bool unary)
{
    reset(result_bytes);
    char path[600];
    snprintf(path, sizeof path, "%s/dt.db", test_tmpdir(name));
    dt_error err = {0};
    assert_ok(dt_store_open_sqlite(path, DT_SYNC_FULL, &x->store, &err), &err);
    dt_hub_options o = {.store = x->store, .lease_ms = 3000};   /* the hub owns the store */
    hubfix_open(&x->f, name, &o);
    dt_grpc_options go = {.listen = "127.0.0.1:0", .no_completion_stream = unary};
    assert_ok(dt_grpc_server_start(x->f.hub, &go, &x->srv, &err), &err);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", dt_grpc_server_port(x->srv));
    assert_ok(dt_worker_new(&x->w), NULL);
    assert_ok(dt_worker_add_orchestrator(x->w, "keep", keep, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(x->w, "keep_tiny", keep_tiny, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(x->w, "done", done, NULL), NULL);
    assert_ok(dt_worker_add_activity(x->w, "big", big, NULL), NULL);
    assert_ok(dt_worker_add_activity(x->w, "tiny", tiny, NULL), NULL);
    dt_remote_options ro = {.threads = n + 6};
    assert_ok(dt_remote_worker_start(x->w, target, &ro, &x->rw, &err), &err);

    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "tiny_keeper"};
    assert_ok(dt_client_start(x->f.client, "keep_tiny", &so, id, NULL), NULL);
    for (int i = 0; i < n; i++) {
        char kid[32], in[32];
        snprintf(kid, sizeof kid, "k%d", i);
        snprintf(in, sizeof in, "%zu", odd_bytes);
        so.instance_id = kid;
        so.input = i % 2 && odd_bytes ? in : NULL;
        assert_ok(dt_client_start(x->f.client, "keep", &so, id, NULL), NULL);
    }
    assert_true(wait_runs(&g_runs, n));
    assert_true(wait_runs(&g_tiny_runs, 1));

    char *in = test_json_string(fill, 'f');
    dt_start_options fo = {.instance_id = "filler", .input = in};
    assert_ok(dt_client_start(x->f.client, "done", &fo, id, NULL), NULL);
    free(in);
    assert_true(wait_status(&x->f, "filler", DT_STATUS_COMPLETED, 30000));
    assert_ok(dt_client_purge(x->f.client, "filler", NULL), NULL);
    assert_ok(dt_store_sqlite_limit_size(x->store, 4096, &err), &err);
}

static void remote_open(remote_fix *x, const char *name, int n, size_t result_bytes,
                        size_t fill)
{
    remote_open_as(x, name, n, result_bytes, 0, fill, false);
}

static void remote_close(remote_fix *x)
{
    open_gate(&g_open_a);
    open_gate(&g_open_b);
    dt_remote_worker_stop(x->rw);
    dt_worker_free(x->w);
    if (x->srv)
        dt_grpc_server_stop(x->srv);
    hubfix_close(&x->f);
}

/* A remote C worker's 40 activity results of 250 KB (each a message the server serves
 * without a thread), 10 MB together, more than its completion stream's 8 MiB window, find
 * the database full (the purged instance's free pages hold none of them): they wait, out of
 * the window (its second one takes 16 MiB), so the stream reads on: a small result sent
 * after them goes in and its instance completes. The stream does not break (with the window
 * held, the worker's send waited 30 s and gave up). None of the activities runs again; once
 * the limit is lifted every result goes in. */
#define KEEPERS 40
static void test_a_remote_workers_results_wait_and_its_stream_reads_on(void **state)
{
    (void)state;
    char log[600];
    snprintf(log, sizeof log, "%s/worker.log", test_tmpdir("db_full_remote_log"));
    log_to(log);
    remote_fix x;
    remote_open(&x, "db_full_remote", KEEPERS, 250000, 20000);

    open_gate(&g_open_a);
    assert_true(wait_waiting(&x.f, KEEPERS));
    open_gate(&g_open_b);
    assert_true(wait_status(&x.f, "tiny_keeper", DT_STATUS_COMPLETED, 20000));
    sleep(4);   /* past the leases' time */
    assert_int_equal(atomic_load(&g_runs), KEEPERS);
    for (int i = 0; i < KEEPERS; i++) {
        char kid[32];
        snprintf(kid, sizeof kid, "k%d", i);
        assert_int_equal(status_of(&x.f, kid), DT_STATUS_RUNNING);
    }

    dt_error err = {0};
    assert_ok(dt_store_sqlite_limit_size(x.store, 0, &err), &err);
    for (int i = 0; i < KEEPERS; i++) {
        char kid[32];
        snprintf(kid, sizeof kid, "k%d", i);
        dt_instance_state *s = NULL;
        assert_ok(dt_client_wait_completion(x.f.client, kid, 30000, x.f.arena, &s, NULL), NULL);
        assert_int_equal(s->status, DT_STATUS_COMPLETED);
        assert_int_equal(strlen(s->output), 250000 + 2);
    }
    assert_int_equal(atomic_load(&g_runs), KEEPERS);
    char *text = log_back();
    if (strstr(text, "broke"))
        fail_msg("the worker's completion stream broke");
    free(text);
    remote_close(&x);
}

static void *stop_server(void *arg)
{
    dt_grpc_server_stop(arg);
    return NULL;
}

/* A server stops while its worker's results wait for room: they are answered (refused; their
 * activities run again after a restart), and the stop does not wait for room that may never
 * come (it did: each waiting result held its call). The results are over 256 KiB: each
 * waits on a server thread (a stream has four such at most). */
static void test_a_server_stops_while_results_wait(void **state)
{
    (void)state;
    remote_fix x;
    remote_open(&x, "db_full_stop", 3, BIG_RESULT, 20000);
    open_gate(&g_open_a);
    assert_true(wait_waiting(&x.f, 3));
    assert_int_equal(status_of(&x.f, "k0"), DT_STATUS_RUNNING);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_server, x.srv), 0);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    if (pthread_timedjoin_np(t, NULL, &until) != 0)
        fail_msg("the server did not stop in 20 s while results waited for room");
    x.srv = NULL;
    assert_int_equal(waiting(&x.f), 0);
    remote_close(&x);
    assert_int_equal(atomic_load(&g_runs), 3);
}

/* Without a completion stream, each result is a unary call: those that find no room wait,
 * their calls unanswered (a result under 256 KiB on no thread, a larger one on its server
 * thread), none of the activities runs again, and all go in once the limit is lifted. */
static void test_unary_results_wait_too(void **state)
{
    (void)state;
    remote_fix x;
    remote_open_as(&x, "db_full_unary", 4, 250000, BIG_RESULT, 20000, true);
    open_gate(&g_open_a);
    assert_true(wait_waiting(&x.f, 4));
    sleep(4);   /* past the leases' time */
    assert_int_equal(atomic_load(&g_runs), 4);
    dt_error err = {0};
    assert_ok(dt_store_sqlite_limit_size(x.store, 0, &err), &err);
    for (int i = 0; i < 4; i++) {
        char kid[32];
        snprintf(kid, sizeof kid, "k%d", i);
        dt_instance_state *s = NULL;
        assert_ok(dt_client_wait_completion(x.f.client, kid, 30000, x.f.arena, &s, NULL), NULL);
        assert_int_equal(s->status, DT_STATUS_COMPLETED);
        assert_int_equal(strlen(s->output), (i % 2 ? BIG_RESULT : 250000) + 2);
    }
    assert_int_equal(atomic_load(&g_runs), 4);
    remote_close(&x);
}

/* ---- the HTTP activity as `dtask serve` runs it (its host, over a hub set) ---------------- */

/* get: GET the URL its input names (a JSON string); output the status (small: only the
 * response needs room). */
static dt_status get(dt_octx *ctx, const char *input, const char **output)
{
    size_t n = strlen(input);
    const char *uri = n >= 2 ? dt_printf(ctx, "%.*s", (int)(n - 2), input + 1) : "";
    dt_http_request req = {.uri = uri, .timeout_ms = 600000};   /* a slow fill is no timeout */
    dt_http_response resp;
    dt_status st = dt_call_http(ctx, &req, &resp, NULL);
    if (st == DT_OK)
        *output = dt_printf(ctx, "%d", resp.status_code);
    return st;
}

/* The host over a hub set as `dtask serve` runs it, its hub with the limit and a 3 s lease
 * running "get" and "done" (no activity loop: the activity is the host's). */
typedef struct httpfix {
    hubfix f;   /* for the helpers: hub, worker, client and arena */
    httptest *srv;
    dt_hub_set *set;
    dt_hub_ref *ref;
    dt_http_activity *act;
    dt_http_activity_host *host;
    char fillers[MAX_FILLERS][DT_INSTANCE_ID_MAX + 1];
    int n;
} httpfix;

/* http_full: "getter" calls /held for a response of BIG_RESULT bytes; while the call waits
 * for its answer, the database is filled; then the answer comes and finds no room. */
static void http_full(httpfix *x, const char *name)
{
    memset(x, 0, sizeof *x);
    reset(0);
    x->srv = httptest_start();
    dt_error err = {0};
    dt_hub_set_options so = {.hub = {.db_path = test_path(test_tmpdir(name), "dt.db"),
                                     .max_db_bytes = LIMIT, .lease_ms = 3000}};
    assert_ok(dt_hub_set_open(&so, &x->set, &err), &err);
    assert_ok(dt_hub_set_get(x->set, NULL, &x->ref, &err), &err);
    hubfix *f = &x->f;
    f->hub = dt_hub_ref_hub(x->ref);
    f->arena = dt_arena_new();
    assert_ok(dt_worker_new(&f->worker), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "get", get, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(f->worker, "done", done, NULL), NULL);
    dt_executor ex = dt_worker_executor(f->worker);
    assert_ok(dt_hub_run(f->hub, &ex, NULL, 2, 0, &err), &err);
    assert_ok(dt_client_new(f->hub, &f->client), NULL);
    dt_http_activity_options ao = {.allow = "127.0.0.1"};
    assert_ok(dt_http_activity_new(&ao, &x->act, &err), &err);
    assert_ok(dt_http_activity_host_start(x->set, NULL, 0, x->act, 1, &x->host, &err), &err);

    char in[300], id[DT_INSTANCE_ID_MAX + 1];
    snprintf(in, sizeof in, "\"%s?bytes=%u\"", httptest_url(x->srv, "/held"), BIG_RESULT);
    dt_start_options po = {.instance_id = "getter", .input = in};
    assert_ok(dt_client_start(f->client, "get", &po, id, &err), &err);
    for (int i = 0; i < 3000 && httptest_hits(x->srv, "/held") == 0; i++)
        usleep(10000);
    assert_int_equal(httptest_hits(x->srv, "/held"), 1);   /* made; its answer held */
    x->n = fill(f, x->fillers);
    httptest_release(x->srv);
    assert_true(wait_waiting(f, 1));
}

static void http_close(httpfix *x)
{
    dt_http_activity_host_stop(x->host);
    dt_client_free(x->f.client);
    dt_hub_stop(x->f.hub);
    dt_worker_free(x->f.worker);
    dt_arena_free(x->f.arena);
    dt_hub_ref_put(x->ref);
    dt_hub_set_close(x->set);
    dt_http_activity_free(x->act);
    httptest_stop(x->srv);
}

/* An HTTP call's response that finds no room waits in the hub with its lease, as an
 * in-process activity's result does: the call is made once, not again after the lease's
 * time, and the response goes in after a purge. */
static void test_an_http_calls_response_waits_for_room_and_is_made_once(void **state)
{
    (void)state;
    httpfix x;
    http_full(&x, "db_full_http");
    sleep(4);   /* past the lease's time */
    assert_int_equal(httptest_hits(x.srv, "/held"), 1);
    assert_int_equal(status_of(&x.f, "getter"), DT_STATUS_RUNNING);

    dt_instance_state *s = make_room(&x.f, x.fillers, x.n, "getter");
    assert_string_equal(s->output, "200");
    assert_int_equal(httptest_hits(x.srv, "/held"), 1);
    completed_once(&x.f, "getter");
    http_close(&x);
}

/* The host stops, and then its hub set closes, while a response waits for room: the
 * response outlives the host (the hub frees it when it lets it go: ASan checks), and
 * nothing hangs. */
static void test_a_host_stops_and_its_hubs_close_with_a_response_waiting(void **state)
{
    (void)state;
    httpfix x;
    http_full(&x, "db_full_http_close");
    dt_http_activity_host_stop(x.host);
    x.host = NULL;
    assert_int_equal(waiting(&x.f), 1);
    http_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_result_without_room_waits_for_it_and_the_activity_runs_once),
        cmocka_unit_test(test_a_hub_closes_with_a_result_waiting),
        cmocka_unit_test(test_within_the_bounds_two_results_wait),
        cmocka_unit_test(test_past_the_bound_on_waiting_results_a_refusal_is_told),
        cmocka_unit_test(test_past_the_bound_on_waiting_bytes_a_refusal_is_told),
        cmocka_unit_test_teardown(test_a_remote_workers_results_wait_and_its_stream_reads_on,
                                  log_teardown),
        cmocka_unit_test(test_a_server_stops_while_results_wait),
        cmocka_unit_test(test_unary_results_wait_too),
        cmocka_unit_test(test_an_http_calls_response_waits_for_room_and_is_made_once),
        cmocka_unit_test(test_a_host_stops_and_its_hubs_close_with_a_response_waiting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
