/* test_hostile.c — hostile clients against a private `dtask serve` (the built binary, as a
 * child process, so its threads can be counted in /proc and it can be sent SIGTERM): silent
 * gRPC calls beyond the caps are refused at once and take no thread, calls without the token
 * are refused before anything is read, a call that sends no request is ended by the request
 * timeout, idle HTTP connections from one address do not lock out another client, a
 * slowloris HTTP client is cut off, SIGTERM ends the server in seconds with every call
 * slot taken, clients that take no answers hold at most --max-held-mb of the server's
 * memory (what their requests unpack to too), and gRPC connections past a share of the
 * descriptor limit are closed at once.
 * Everyone else keeps being served. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "durabletask.pb-c.h"
#include "durabletask/remote.h"
#include "testutil.h"

extern char **environ;

#define DTASK_BIN DT_TEST_BINARY_DIR "/../dtask"
#define TOKEN "hostile-test-token"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a private dtask serve ------------------------------------------------------------------ */

typedef struct server {
    pid_t pid;
    int grpc_port, http_port;
    char dir[512];
} server;

/* The server a test started and has not stopped: a test that fails midway leaves it to
 * kill_leftover, every test's teardown, rather than running on after the suite. */
static pid_t running;

static int kill_leftover(void **state)
{
    (void)state;
    if (running > 0) {
        kill(running, SIGKILL);
        waitpid(running, NULL, 0);
        running = 0;
    }
    return 0;
}

/* serve_start_limited: `dtask serve` on free loopback ports with EXTRA arguments
 * (NULL-terminated), and NOFILE descriptors at most (soft and hard, by prlimit(1)) unless 0;
 * waits for the line that names its ports. */
static void serve_start_limited(server *s, const char *name, const char *const *extra,
                                int nofile)
{
    if (access(DTASK_BIN, X_OK) != 0)
        fail_msg("%s is not built", DTASK_BIN);
    snprintf(s->dir, sizeof s->dir, "%s", test_tmpdir(name));
    char db[600], err_path[600], token_path[600];
    snprintf(db, sizeof db, "%s/dtask.db", s->dir);
    snprintf(err_path, sizeof err_path, "%s/stderr", s->dir);
    snprintf(token_path, sizeof token_path, "%s/token", s->dir);
    FILE *tf = fopen(token_path, "w");
    assert_non_null(tf);
    fputs(TOKEN "\n", tf);
    fclose(tf);
    char limit[40];
    snprintf(limit, sizeof limit, "--nofile=%d:%d", nofile, nofile);
    const char *argv[44] = {"/usr/bin/prlimit", limit, "--"};
    const char *dtask[] = {DTASK_BIN, "serve", "--grpc-listen", "127.0.0.1:0", "--http-listen",
                           "127.0.0.1:0", "--db", db, "--no-http-activity", "--log-level",
                           "warn"};
    size_t n = nofile > 0 ? 3 : 0;
    for (size_t i = 0; i < sizeof dtask / sizeof dtask[0]; i++)
        argv[n++] = dtask[i];
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = strcmp(extra[i], "@token") == 0 ? token_path : extra[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&s->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    running = s->pid;
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(err_path, "r");
        char line[1024] = "";
        while (f && fgets(line, sizeof line, f) && strstr(line, "dtask serve: gRPC on") == NULL)
            ;
        if (f)
            fclose(f);
        const char *g = strstr(line, "(port "), *h = g ? strstr(g + 1, "(port ") : NULL;
        if (g && h) {
            s->grpc_port = atoi(g + 6);
            s->http_port = atoi(h + 6);
            return;
        }
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            running = 0;
            fail_msg("dtask serve exited at start: %s", line);
        }
        test_sleep_ms(20);
    }
    kill(s->pid, SIGKILL);
    fail_msg("dtask serve did not say its ports");
}

static void serve_start(server *s, const char *name, const char *const *extra)
{
    serve_start_limited(s, name, extra, 0);
}

/* serve_stop: SIGTERM, and how long it took to exit (ms); fails past LIMIT_MS. */
static int64_t serve_stop(server *s, int64_t limit_ms)
{
    int64_t t0 = now_ms();
    kill(s->pid, SIGTERM);
    int status = 0;
    while (waitpid(s->pid, &status, WNOHANG) != s->pid) {
        if (now_ms() - t0 > limit_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            running = 0;
            fail_msg("dtask serve did not exit within %lld ms of SIGTERM", (long long)limit_ms);
        }
        test_sleep_ms(10);
    }
    running = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return now_ms() - t0;
}

/* proc_status: the number after KEY ("Threads:") in the server's /proc/PID/status. */
static long proc_status(const server *s, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0)
            n = atol(line + strlen(key));
    fclose(f);
    assert_true(n > 0);
    return n;
}

/* threads: the server's thread count. */
static int threads(const server *s)
{
    return (int)proc_status(s, "Threads:");
}

/* open_fds: how many descriptors the server has open. */
static int open_fds(const server *s)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)s->pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- raw gRPC calls --------------------------------------------------------------------------- */

/* One call as gRPC's core client makes it: metadata sent, and (when SILENT) no request message
 * and no half-close, so the server waits for a request that never comes. */
typedef struct raw_call {
    grpc_call *call;
    grpc_metadata_array initial, trailing;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *response;
    bool done;
    int64_t done_at;
} raw_call;

typedef struct raw_client {
    grpc_channel *ch;
    grpc_completion_queue *cq;
    raw_call *calls;
    size_t n, max;
} raw_client;

static int tcp_to(int port, const char *from);

/* raw_open_from: a client of S for up to MAX_CALLS calls; its channel made with ARGS (or
 * none), on one connection from loopback address FROM when it is not NULL (gRPC's client
 * cannot choose its source address: the test connects and hands gRPC the descriptor). */
static void raw_open_from(raw_client *rc, const server *s, size_t max_calls,
                          const grpc_channel_args *args, const char *from)
{
    grpc_init();
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", s->grpc_port);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    rc->ch = from ? grpc_channel_create_from_fd(target, tcp_to(s->grpc_port, from), creds, args)
                  : grpc_channel_create(target, creds, args);
    grpc_channel_credentials_release(creds);
    rc->cq = grpc_completion_queue_create_for_next(NULL);
    rc->calls = calloc(max_calls, sizeof *rc->calls);
    rc->n = 0;
    rc->max = max_calls;
    assert_non_null(rc->calls);
}

static void raw_open_with(raw_client *rc, const server *s, size_t max_calls,
                          const grpc_channel_args *args)
{
    raw_open_from(rc, s, max_calls, args, NULL);
}

static void raw_open(raw_client *rc, const server *s, size_t max_calls)
{
    raw_open_with(rc, s, max_calls, NULL);
}

/* raw_start_reading: start a call to METHOD; with a token if WITH_TOKEN; with REQUEST (a
 * serialized message, sent with a half-close) unless it is NULL (silent); reading the answer
 * unless not READ (then the call completes when it ends without one, a refusal, or is
 * cancelled: gRPC gives the status only after the message is read). Returns its index. */
static size_t raw_start_reading(raw_client *rc, const char *method, bool with_token,
                                const uint8_t *request, size_t len, bool read)
{
    if (rc->n == rc->max)
        fail_msg("the test's client has room for %zu calls only", rc->max);
    size_t i = rc->n++;
    raw_call *c = &rc->calls[i];
    char path[128];
    snprintf(path, sizeof path, "/TaskHubSidecarService/%s", method);
    grpc_slice m = grpc_slice_from_copied_string(path);
    c->call = grpc_channel_create_call(rc->ch, NULL, GRPC_PROPAGATE_DEFAULTS, rc->cq, m, NULL,
                                       gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                                    gpr_time_from_seconds(60, GPR_TIMESPAN)),
                                       NULL);
    grpc_slice_unref(m);
    assert_non_null(c->call);
    grpc_metadata_array_init(&c->initial);
    grpc_metadata_array_init(&c->trailing);
    grpc_metadata md = {.key = grpc_slice_from_static_string("authorization"),
                        .value = grpc_slice_from_static_string("Bearer " TOKEN)};
    grpc_op ops[7];
    memset(ops, 0, sizeof ops);
    size_t n = 0;
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = with_token ? 1 : 0;
    ops[n++].data.send_initial_metadata.metadata = with_token ? &md : NULL;
    grpc_byte_buffer *bb = NULL;
    if (request) {
        grpc_slice s = grpc_slice_from_copied_buffer((const char *)request, len);
        bb = grpc_raw_byte_buffer_create(&s, 1);
        grpc_slice_unref(s);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = bb;
        ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    }
    ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->initial;
    if (read) {
        ops[n].op = GRPC_OP_RECV_MESSAGE;   /* the status comes only after the response is read */
        ops[n++].data.recv_message.recv_message = &c->response;
    }
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &c->trailing;
    ops[n].data.recv_status_on_client.status = &c->status;
    ops[n++].data.recv_status_on_client.status_details = &c->details;
    assert_int_equal(grpc_call_start_batch(c->call, ops, n, (void *)(uintptr_t)(i + 1), NULL),
                     GRPC_CALL_OK);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    return i;
}

static size_t raw_start(raw_client *rc, const char *method, bool with_token,
                        const uint8_t *request, size_t len)
{
    return raw_start_reading(rc, method, with_token, request, len, true);
}

/* raw_take: wait up to 50 ms for one of RC's calls to complete: 1 if one did */
static int raw_take(raw_client *rc)
{
    grpc_event ev = grpc_completion_queue_next(
        rc->cq, gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(50, GPR_TIMESPAN)),
        NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return 0;
    raw_call *c = &rc->calls[(uintptr_t)ev.tag - 1];
    c->done = true;
    c->done_at = now_ms();
    return 1;
}

/* raw_collect: take completions for up to MS milliseconds, or until WANT calls are done;
 * returns how many are done. */
static size_t raw_collect(raw_client *rc, size_t want, int64_t ms)
{
    int64_t until = now_ms() + ms;
    size_t done = 0;
    for (size_t i = 0; i < rc->n; i++)
        done += rc->calls[i].done;
    while (done < want && now_ms() < until)
        done += raw_take(rc);
    return done;
}

/* raw_wait: take completions until call I is done (others may complete meanwhile), for up to
 * 10 s, failing the test when it is not */
static void raw_wait(raw_client *rc, size_t i, const char *what)
{
    int64_t until = now_ms() + 10000;
    while (!rc->calls[i].done && now_ms() < until)
        raw_take(rc);
    if (!rc->calls[i].done)
        fail_msg("a %s got no answer in 10 s", what);
}

/* raw_count: how many done calls among [FROM, TO) ended with CODE. */
static size_t raw_count(const raw_client *rc, size_t from, size_t to, grpc_status_code code)
{
    size_t n = 0;
    for (size_t i = from; i < to; i++)
        n += rc->calls[i].done && rc->calls[i].status == code;
    return n;
}

static bool raw_details_have(const raw_call *c, const char *text)
{
    size_t len = GRPC_SLICE_LENGTH(c->details);
    char buf[512];
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(c->details), len);
    buf[len] = '\0';
    return strstr(buf, text) != NULL;
}

static void raw_close(raw_client *rc)
{
    for (size_t i = 0; i < rc->n; i++)
        if (rc->calls[i].call)
            grpc_call_cancel(rc->calls[i].call, NULL);
    raw_collect(rc, rc->n, 5000);
    for (size_t i = 0; i < rc->n; i++) {
        raw_call *c = &rc->calls[i];
        grpc_metadata_array_destroy(&c->initial);
        grpc_metadata_array_destroy(&c->trailing);
        if (c->done)
            grpc_slice_unref(c->details);
        if (c->response)
            grpc_byte_buffer_destroy(c->response);
        grpc_call_unref(c->call);
    }
    free(rc->calls);
    grpc_channel_destroy(rc->ch);
    grpc_completion_queue_shutdown(rc->cq);
    while (grpc_completion_queue_next(rc->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(rc->cq);
    grpc_shutdown();
}

/* raw_call_wait: call METHOD with REQUEST (LEN bytes) and wait for its end: its index */
static size_t raw_call_wait(raw_client *rc, const char *method, const uint8_t *request,
                            size_t len)
{
    size_t i = raw_start(rc, method, false, request, len);
    raw_wait(rc, i, method);
    return i;
}

/* raw_call_until: call METHOD with REQUEST again every 20 ms, for up to 10 s, until it ends
 * with WANT (room held by calls just before may take a moment to be let go): the last one's
 * index */
static size_t raw_call_until(raw_client *rc, const char *method, const uint8_t *request,
                             size_t len, grpc_status_code want)
{
    int64_t until = now_ms() + 10000;
    size_t i;
    while ((i = raw_call_wait(rc, method, request, len), rc->calls[i].status) != want &&
           now_ms() < until)
        test_sleep_ms(20);
    return i;
}

/* a normal Hello (an empty message), waited for: its status */
static grpc_status_code hello(raw_client *rc, bool with_token)
{
    size_t i = raw_start(rc, "Hello", with_token, (const uint8_t *)"", 0);
    raw_wait(rc, i, "normal Hello");
    return rc->calls[i].status;
}

/* ---- gRPC -------------------------------------------------------------------------------------- */

static void test_silent_calls_beyond_the_caps_are_refused_at_once_on_no_thread(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-calls", "8", "--max-streams", "3", "--max-calls-per-client",
                           "8", "--max-streams-per-client", "3", "--request-timeout", "2",
                           NULL};
    serve_start(&s, "hostile_caps", extra);
    raw_client rc;
    raw_open(&rc, &s, 128);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);   /* the channel is connected */
    int base = threads(&s);

    /* 5 silent work item streams: 3 are taken, 2 refused by the stream cap */
    int64_t t0 = now_ms();
    size_t first_stream = rc.n;
    for (int i = 0; i < 5; i++)
        raw_start(&rc, "GetWorkItems", false, NULL, 0);
    assert_int_equal(raw_collect(&rc, rc.n - 3, 3000), rc.n - 3);
    assert_int_equal(raw_count(&rc, first_stream, rc.n, GRPC_STATUS_RESOURCE_EXHAUSTED), 2);
    for (size_t i = first_stream; i < rc.n; i++)
        if (rc.calls[i].done)
            assert_true(raw_details_have(&rc.calls[i], "--max-streams"));
    /* 60 silent unary calls: 5 slots are left, 55 refused by the call cap */
    size_t first_unary = rc.n;
    for (int i = 0; i < 60; i++)
        raw_start(&rc, "GetInstance", false, NULL, 0);
    assert_int_equal(raw_collect(&rc, rc.n - 8, 3000), rc.n - 8);
    int64_t refused_in = now_ms() - t0;
    assert_int_equal(raw_count(&rc, first_unary, rc.n, GRPC_STATUS_RESOURCE_EXHAUSTED), 55);
    for (size_t i = first_unary; i < rc.n; i++)
        if (rc.calls[i].done)
            assert_true(raw_details_have(&rc.calls[i], "--max-calls"));
    /* every slot is taken, and the threads are bounded by the cap, not by the attack */
    int during = threads(&s);
    print_message("refused 57 calls in %lld ms; threads %d before, %d with 8 calls held\n",
                  (long long)refused_in, base, during);
    assert_true(refused_in < 2000);
    assert_true(during <= base + 8 + 4);   /* uncapped: one thread per call, 60 more */
    assert_int_equal(hello(&rc, false), GRPC_STATUS_RESOURCE_EXHAUSTED);

    /* the request timeout ends the silent calls holding the slots; then a client is served */
    assert_int_equal(raw_collect(&rc, rc.n, 6000), rc.n);
    size_t cut = raw_count(&rc, first_stream, rc.n, GRPC_STATUS_DEADLINE_EXCEEDED);
    assert_int_equal(cut, 8);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);
    raw_close(&rc);
    serve_stop(&s, 5000);
}

/* raw_refused: how many of RC's calls [FROM, RC->n) were refused RESOURCE_EXHAUSTED with
 * details naming TEXT */
static size_t raw_refused(const raw_client *rc, size_t from, const char *text)
{
    size_t n = 0;
    for (size_t i = from; i < rc->n; i++)
        n += rc->calls[i].done && rc->calls[i].status == GRPC_STATUS_RESOURCE_EXHAUSTED &&
             raw_details_have(&rc->calls[i], text);
    return n;
}

/* The attack: one client takes every call slot with silent calls, held until the request
 * timeout ends them, and no one else is served meanwhile. Now one IP address holds at most
 * --max-calls-per-client calls, of them --max-streams-per-client streams: past its share its
 * calls are refused at once, naming the option and the address, while another address is
 * served, up to the server's own caps. */
static void test_one_address_holds_at_most_its_share_of_calls_and_streams(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-calls", "16", "--max-streams", "6", "--max-calls-per-client",
                           "8", "--max-streams-per-client", "3", "--request-timeout", "10",
                           NULL};   /* 10 s: the silent calls outlast the checks, loaded or not */
    serve_start(&s, "hostile_calls_per_client", extra);
    raw_client a, b, c;
    raw_open_from(&a, &s, 64, NULL, "127.0.0.1");
    raw_open_from(&b, &s, 64, NULL, "127.0.0.2");
    raw_open_from(&c, &s, 8, NULL, "127.0.0.3");
    assert_int_equal(hello(&a, false), GRPC_STATUS_OK);
    assert_int_equal(hello(&b, false), GRPC_STATUS_OK);

    /* A: 5 silent work item streams: 3 held, 2 refused by its share of streams */
    size_t first = a.n;
    for (int i = 0; i < 5; i++)
        raw_start(&a, "GetWorkItems", false, NULL, 0);
    assert_int_equal(raw_collect(&a, first + 2, 3000), first + 2);
    assert_int_equal(raw_refused(&a, first, "--max-streams-per-client"), 2);
    assert_int_equal(raw_refused(&a, first, "127.0.0.1"), 2);
    /* A: 20 silent unary calls: 5 more held (its 8), 15 refused by its share of calls */
    first = a.n;
    for (int i = 0; i < 20; i++)
        raw_start(&a, "GetInstance", false, NULL, 0);
    assert_int_equal(raw_collect(&a, a.n - 8, 3000), a.n - 8);
    assert_int_equal(raw_refused(&a, first, "--max-calls-per-client"), 15);
    assert_int_equal(hello(&a, false), GRPC_STATUS_RESOURCE_EXHAUSTED);

    /* B, another address, is served, and holds its own share: 3 streams (the server's 6 are
     * then taken) and the server's 5 calls left */
    assert_int_equal(hello(&b, false), GRPC_STATUS_OK);
    first = b.n;
    for (int i = 0; i < 8; i++)
        raw_start(&b, i < 3 ? "GetWorkItems" : "GetInstance", false, NULL, 0);
    assert_int_equal(raw_collect(&b, b.n, 500), first);   /* none refused */
    /* every slot of the server's is taken: C, within its own share, meets the server's cap */
    assert_int_equal(hello(&c, false), GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_true(raw_details_have(&c.calls[0], "(dtask serve --max-calls)"));

    /* the request timeout ends the silent calls; then A is served again */
    assert_int_equal(raw_collect(&a, a.n, 15000), a.n);
    assert_int_equal(raw_collect(&b, b.n, 15000), b.n);
    assert_int_equal(raw_count(&b, first, b.n, GRPC_STATUS_DEADLINE_EXCEEDED), 8);
    size_t i = raw_call_until(&a, "Hello", (const uint8_t *)"", 0, GRPC_STATUS_OK);
    assert_int_equal(a.calls[i].status, GRPC_STATUS_OK);
    raw_close(&a);
    raw_close(&b);
    raw_close(&c);
    serve_stop(&s, 5000);
}

static void test_calls_without_the_token_are_refused_before_any_read(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--token-file", "@token", "--max-calls", "8", "--request-timeout",
                           "30", NULL};
    serve_start(&s, "hostile_token", extra);
    raw_client rc;
    raw_open(&rc, &s, 256);
    assert_int_equal(hello(&rc, true), GRPC_STATUS_OK);
    int base = threads(&s);
    int64_t t0 = now_ms();
    for (int i = 0; i < 200; i++)
        raw_start(&rc, i % 2 ? "GetWorkItems" : "StartInstance", false, NULL, 0);
    assert_int_equal(raw_collect(&rc, rc.n, 5000), rc.n);
    int64_t took = now_ms() - t0;
    assert_int_equal(raw_count(&rc, 1, rc.n, GRPC_STATUS_UNAUTHENTICATED), 200);
    assert_true(raw_details_have(&rc.calls[1], "bearer token"));
    int during = threads(&s);
    print_message("200 silent calls without the token refused in %lld ms; threads %d -> %d\n",
                  (long long)took, base, during);
    /* a 30 s request timeout: only a refusal that reads nothing is this quick */
    assert_true(took < 3000);
    assert_true(during <= base + 4);   /* unchecked: 200 more */
    assert_int_equal(hello(&rc, true), GRPC_STATUS_OK);
    raw_close(&rc);
    serve_stop(&s, 5000);
}

static void test_sigterm_with_every_slot_taken_exits_in_seconds(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-calls", "16", "--max-calls-per-client", "16",
                           "--request-timeout", "60", NULL};
    serve_start(&s, "hostile_sigterm", extra);
    raw_client rc;
    raw_open(&rc, &s, 64);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);
    for (int i = 0; i < 24; i++)
        raw_start(&rc, i % 3 ? "WaitForInstanceCompletion" : "GetWorkItems", false, NULL, 0);
    /* 8 refused: all 16 slots are held by silent calls */
    assert_int_equal(raw_collect(&rc, 1 + 8, 3000), 1 + 8);
    assert_int_equal(raw_count(&rc, 1, rc.n, GRPC_STATUS_RESOURCE_EXHAUSTED), 8);
    int64_t took = serve_stop(&s, 5000);
    print_message("SIGTERM with 16 silent calls held: exited in %lld ms\n", (long long)took);
    raw_close(&rc);
}

/* packed: M serialized (malloc'd), its length in *LEN */
static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    protobuf_c_message_pack(m, buf);
    return buf;
}

/* big_start: a StartInstance of ID with an input of BIG bytes (a JSON string), packed */
static uint8_t *big_start(const char *id, size_t big, size_t *len)
{
    char *input = malloc(big + 1);
    assert_non_null(input);
    memset(input, 'x', big);
    input[0] = input[big - 1] = '"';
    input[big] = '\0';
    Dtpb__StringValue in = DTPB__STRING_VALUE__INIT;
    in.value = input;
    Dtpb__CreateInstanceRequest r = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    r.name = "o";
    r.instanceid = (char *)id;
    r.input = &in;
    uint8_t *start = packed(&r.base, len);
    free(input);
    return start;
}

/* start_big: start instance ID over gRPC with an input of BIG bytes (again while refused for
 * want of room: the request before may not have been let go yet) */
static void start_big(raw_client *rc, const char *id, size_t big)
{
    size_t len;
    uint8_t *start = big_start(id, big, &len);
    size_t i = raw_call_until(rc, "StartInstance", start, len, GRPC_STATUS_OK);
    if (rc->calls[i].status != GRPC_STATUS_OK)
        fail_msg("StartInstance %s with %zu bytes: status %d", id, big, rc->calls[i].status);
    free(start);
}

/* get_request: a GetInstance of ID with its input and output, packed */
static uint8_t *get_request(const char *id, size_t *len)
{
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = (char *)id;
    g.getinputsandoutputs = true;
    return packed(&g.base, len);
}

/* lazy_open: a client that never takes its answers: a 16 KB window, on a connection of its
 * own */
static void lazy_open(raw_client *lazy, const server *s)
{
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
         .value.integer = 16 * 1024},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
    };
    grpc_channel_args cargs = {3, args};
    raw_open_with(lazy, s, 64, &cargs);
}

/* lazy_hold: a GetInstance (GET, LEN bytes) of LAZY whose answer the server holds: held once
 * it has not ended within a second (refused, it ends at once: the answer of a call just before
 * may not have been let go yet, so it is tried again). When the held one began. */
static int64_t lazy_hold(raw_client *lazy, const uint8_t *get, size_t len)
{
    int64_t until = now_ms() + 10000, began;
    do {
        began = now_ms();
        raw_start_reading(lazy, "GetInstance", false, get, len, false);
    } while (raw_collect(lazy, lazy->n, 1000) == lazy->n && now_ms() < until);
    assert_false(lazy->calls[lazy->n - 1].done);
    return began;
}

static void test_answers_clients_do_not_take_are_bounded_by_max_held(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-held-mb", "1", NULL};
    serve_start(&s, "hostile_held", extra);
    raw_client rc;
    raw_open(&rc, &s, 2048);   /* room for a call each 20 ms of two 10 s waits */
    /* an instance whose input is 900 KB: GetInstance with payloads answers with it */
    size_t big = 900 * 1024;
    start_big(&rc, "big", big);
    size_t get_len;
    uint8_t *get = get_request("big", &get_len);
    size_t i = raw_call_wait(&rc, "GetInstance", get, get_len);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_OK);
    assert_true(grpc_byte_buffer_length(rc.calls[i].response) > big);

    /* a client that never takes its answer (a 16 KB window, on a connection of its own): the
     * server holds it, 900 KB of its 1 MB */
    raw_client lazy;
    lazy_open(&lazy, &s);
    lazy_hold(&lazy, get, get_len);
    /* a second answer of 900 KB does not fit: refused, naming the limit */
    i = raw_call_until(&rc, "GetInstance", get, get_len, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_true(raw_details_have(&rc.calls[i], "--max-held-mb"));
    assert_true(raw_details_have(&rc.calls[i], "answer"));
    /* nor does a request of 900 KB, and nothing of it is stored */
    i = raw_call_wait(&rc, "GetInstance", get, get_len);   /* still held: not by chance */
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    size_t start_len;
    uint8_t *start2 = big_start("big2", big, &start_len);
    i = raw_call_wait(&rc, "StartInstance", start2, start_len);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    assert_true(raw_details_have(&rc.calls[i], "request"));
    /* small calls are served meanwhile */
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);

    /* the lazy client goes, and what it held with it: big answers are served again */
    raw_close(&lazy);
    i = raw_call_until(&rc, "GetInstance", get, get_len, GRPC_STATUS_OK);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_OK);
    assert_true(grpc_byte_buffer_length(rc.calls[i].response) > big);
    size_t get2_len;
    uint8_t *get2 = get_request("big2", &get2_len);
    i = raw_call_wait(&rc, "GetInstance", get2, get2_len);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_OK);
    Dtpb__GetInstanceResponse *gr = NULL;
    {
        grpc_byte_buffer_reader rd;
        assert_true(grpc_byte_buffer_reader_init(&rd, rc.calls[i].response));
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        gr = dtpb__get_instance_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                 GRPC_SLICE_START_PTR(all));
        grpc_slice_unref(all);
    }
    assert_non_null(gr);
    assert_false(gr->exists);   /* the refused start stored nothing */
    dtpb__get_instance_response__free_unpacked(gr, NULL);
    free(get2);
    free(start2);
    free(get);
    raw_close(&rc);
    serve_stop(&s, 5000);
}

static void test_an_answer_not_taken_ends_its_call_after_the_send_timeout(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-held-mb", "1", "--send-timeout", "2", NULL};
    serve_start(&s, "hostile_send_timeout", extra);
    raw_client rc;
    raw_open(&rc, &s, 2048);
    size_t big = 900 * 1024;
    start_big(&rc, "big", big);
    size_t get_len;
    uint8_t *get = get_request("big", &get_len);
    raw_client lazy;
    lazy_open(&lazy, &s);
    /* a lazy call held, then the server holds its answer... */
    int64_t t0 = lazy_hold(&lazy, get, get_len);
    size_t i = raw_call_wait(&rc, "GetInstance", get, get_len);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    /* ...until the send timeout ends the call, and the room is back though the lazy client
     * is still there */
    i = raw_call_until(&rc, "GetInstance", get, get_len, GRPC_STATUS_OK);
    int64_t ended = now_ms() - t0;
    print_message("a big answer fits again %lld ms after the lazy call began (timeout 2 s)\n",
                  (long long)ended);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_OK);
    assert_true(ended >= 1900 && ended < 8000);
    free(get);
    raw_close(&lazy);
    raw_close(&rc);
    serve_stop(&s, 5000);
}

/* tcp_to: a connection to 127.0.0.1:PORT from loopback address FROM. */
static int tcp_to(int port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &a.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    return fd;
}

/* h2_from: a gRPC connection from loopback address FROM that sends HTTP/2's preface and
 * settings, then nothing */
static int h2_from(const server *s, const char *from)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
    int fd = tcp_to(s->grpc_port, from);
    send(fd, preface, sizeof preface - 1, MSG_NOSIGNAL);
    return fd;
}

/* h2_connect: a TCP connection to the server's gRPC port that sends the HTTP/2 preface and
 * an empty SETTINGS frame, as a client does, then nothing more. */
static int h2_connect(const server *s)
{
    return h2_from(s, "127.0.0.1");
}

static bool closed_within(int fd, int64_t ms);

/* The attack: connections up to the server's descriptor limit, held silent. gRPC core's own
 * listener took them until accept failed with EMFILE, and then never accepted again, even
 * once they were let go. Now the server keeps a quarter of its limit (here 128: 32) and
 * closes the rest at once, never runs out, closes silent ones after --idle-timeout, and
 * serves as soon as they go. */
static void test_grpc_connections_past_a_share_of_the_fd_limit_are_closed_at_once(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--idle-timeout", "3", NULL};   /* the checks before take < 1 s */
    serve_start_limited(&s, "hostile_grpc_conns", extra, 128);
    int fds[100];
    for (int i = 0; i < 100; i++)
        fds[i] = h2_connect(&s);
    /* 32 kept, in the order they came; the rest closed at once (within 2 s each: a loaded
     * machine once took over 300 ms to close the last of them) */
    int closed = 0;
    for (int i = 32; i < 100; i++)
        closed += closed_within(fds[i], 2000);
    assert_int_equal(closed, 68);
    for (int i = 0; i < 32; i++)
        assert_false(closed_within(fds[i], 1));
    assert_true(open_fds(&s) < 100);        /* never near its limit */
    /* silent ones are let go after the idle timeout, without the client doing anything */
    for (int i = 0; i < 32; i++)
        assert_true(closed_within(fds[i], 8000));
    raw_client rc;
    raw_open(&rc, &s, 4);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);
    raw_close(&rc);
    for (int i = 0; i < 100; i++)
        close(fds[i]);
    serve_stop(&s, 5000);
}

/* The attack: one address takes every connection the server keeps, so no other client can
 * connect. Now one address keeps at most --max-per-client; past it, its new connections are
 * closed at once, another address still connects, and once the first lets its connections
 * go it is served again. */
static void test_one_address_keeps_at_most_max_per_client_grpc_connections(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-connections", "64", "--max-per-client", "8", NULL};
    serve_start(&s, "hostile_grpc_per_client", extra);
    int fds[20], others[4];
    for (int i = 0; i < 20; i++)
        fds[i] = h2_from(&s, "127.0.0.1");
    test_sleep_ms(300);
    int closed = 0;
    for (int i = 0; i < 20; i++)
        closed += closed_within(fds[i], 1);
    assert_int_equal(closed, 12);   /* 8 kept, in the order they came */
    for (int i = 0; i < 8; i++)
        assert_false(closed_within(fds[i], 1));
    for (int i = 0; i < 4; i++)   /* another address is not held to the first one's count */
        others[i] = h2_from(&s, "127.0.0.2");
    for (int i = 0; i < 4; i++)
        assert_false(closed_within(others[i], 500));
    raw_client rc;                  /* 127.0.0.1 is full: a client there is turned away */
    raw_open(&rc, &s, 4);
    assert_int_not_equal(hello(&rc, false), GRPC_STATUS_OK);
    raw_close(&rc);
    for (int i = 0; i < 20; i++)
        close(fds[i]);
    test_sleep_ms(300);             /* gRPC sees them go; the table is swept when next full */
    raw_open(&rc, &s, 4);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);
    raw_close(&rc);
    for (int i = 0; i < 4; i++)
        close(others[i]);
    serve_stop(&s, 5000);
}

/* The attack: 4 MB of two-byte unknown fields in a GetInstance. protobuf-c keeps a record and
 * a copy of each, so the request unpacked to some 40 times its size, counted against no
 * limit: a few at once took gigabytes (the poller unpacked some, holding up every call).
 * What a request unpacks to now counts with the held bytes: refused at --max-held-mb, the
 * server grows by little, and a normal call is served at once. */
static void test_a_request_that_unpacks_to_many_times_its_size_is_held_to_max_held(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-held-mb", "16", NULL};
    serve_start(&s, "hostile_unpack", extra);
    raw_client rc;
    raw_open(&rc, &s, 16);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);
    long before = proc_status(&s, "VmHWM:");   /* kB */
    size_t n = (size_t)4 << 20;
    uint8_t *req = malloc(n);
    assert_non_null(req);
    for (size_t i = 0; i < n; i += 2) {
        req[i] = 15 << 3;   /* field 15, a varint, which GetInstanceRequest does not have */
        req[i + 1] = 0;
    }
    long grew = 0;
    for (int k = 0; k < 3; k++) {
        size_t i = raw_call_wait(&rc, "GetInstance", req, n);
        assert_int_equal(rc.calls[i].status, GRPC_STATUS_RESOURCE_EXHAUSTED);
        assert_true(raw_details_have(&rc.calls[i], "no room left"));
        if (k == 0)   /* the first only: a sanitizer build keeps what is freed a while */
            grew = proc_status(&s, "VmHWM:") - before;
    }
    printf("a request of 4 MB of unknown fields grew the server by %ld MB\n", grew >> 10);
    assert_true(grew < 100 * 1024);   /* unpacked whole it is over 150 MB (ASan: 590) */
    int64_t t0 = now_ms();
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);
    assert_true(now_ms() - t0 < 2000);
    free(req);
    raw_close(&rc);
    serve_stop(&s, 5000);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

/* tcp_from: a connection to the server's HTTP port from loopback address FROM. */
static int tcp_from(const server *s, const char *from)
{
    return tcp_to(s->http_port, from);
}

/* closed_within: true if the server closes FD (end of stream or reset) within MS. */
static bool closed_within(int fd, int64_t ms)
{
    int64_t until = now_ms() + ms;
    char buf[256];
    for (int64_t left; (left = until - now_ms()) > 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return true;
    }
    return false;
}

/* get_healthz: a GET /healthz from 127.0.0.1; true if it answers 200 within 5 s. */
static bool get_healthz(const server *s)
{
    int fd = tcp_from(s, "127.0.0.1");
    const char *rq = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    bool ok = send(fd, rq, strlen(rq), MSG_NOSIGNAL) == (ssize_t)strlen(rq);
    char buf[512] = "";
    size_t got = 0;
    int64_t until = now_ms() + 5000;
    while (ok && got < sizeof buf - 1 && now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return strncmp(buf, "HTTP/1.1 200", 12) == 0;
}

static void test_idle_http_connections_from_one_address_do_not_lock_out_others(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--http-max-connections", "32", "--http-max-per-client", "8",
                           "--request-timeout", "30", NULL};
    serve_start(&s, "hostile_http_idle", extra);
    /* 100 idle connections from 127.0.0.2: 8 held, every other one closed at once */
    int fds[100];
    for (int i = 0; i < 100; i++)
        fds[i] = tcp_from(&s, "127.0.0.2");
    int closed = 0;
    for (int i = 0; i < 100; i++)
        closed += closed_within(fds[i], i < 8 ? 50 : 1000);
    assert_int_equal(closed, 92);
    /* and a client from another address is served at once */
    int64_t t0 = now_ms();
    assert_true(get_healthz(&s));
    assert_true(now_ms() - t0 < 2000);
    for (int i = 0; i < 100; i++)
        close(fds[i]);
    serve_stop(&s, 5000);
}

static void test_a_slowloris_http_client_is_cut_off_by_the_request_timeout(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--request-timeout", "1", NULL};
    serve_start(&s, "hostile_http_slow", extra);
    /* the headers, one byte every 100 ms (MHD's own timeout, reset by each byte, never fires) */
    int slow = tcp_from(&s, "127.0.0.1");
    int idle = tcp_from(&s, "127.0.0.1");    /* and one that sends nothing at all */
    const char *rq = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int64_t t0 = now_ms(), cut_at = 0;
    for (size_t i = 0; rq[i] && cut_at == 0; i++) {
        if (send(slow, rq + i, 1, MSG_NOSIGNAL) != 1 || closed_within(slow, 100))
            cut_at = now_ms();
    }
    if (cut_at == 0)
        fail_msg("the slowloris client sent its whole request without being cut off");
    print_message("slowloris cut off after %lld ms\n", (long long)(cut_at - t0));
    assert_true(cut_at - t0 >= 900 && cut_at - t0 < 4000);
    assert_true(closed_within(idle, 2000));
    close(slow);
    close(idle);
    assert_true(get_healthz(&s));
    serve_stop(&s, 5000);
}

/* http_get_head: GET PATH from 127.0.0.1 with a receive buffer of RCVBUF bytes (0: the
 * system's); the first bytes of the answer (status line, headers, some of the body) into BUF,
 * or "" if none came in 10 s. Leaves the connection open in *FD_OUT when it is given (the
 * rest of the answer not read), else closes it. */
static void http_get_head(const server *s, const char *path, int rcvbuf, char *buf, size_t size,
                          int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)   /* before connect: the window the server may fill is this small */
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->http_port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof to), 0);
    char rq[512];
    snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    assert_int_equal(send(fd, rq, strlen(rq), MSG_NOSIGNAL), (ssize_t)strlen(rq));
    size_t got = 0;
    int64_t until = now_ms() + 10000;
    while (got < size - 1 && now_ms() < until) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, buf + got, size - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n") && (fd_out || got > 1024))
            break;   /* the head (and a little of the body): enough */
    }
    buf[got] = '\0';
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
}

/* blob: an activity's 900 KB result */
static dt_status blob(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_activity_printf(ctx, "\"%0921600d\"", 7);
    return DT_OK;
}

/* big_history: eight blobs, so its history is a 7 MB answer: more than the kernel's socket
 * buffers take in (a page of a list holds at most DT_QUERY_PAGE_BYTES, which they do) */
static dt_status big_history(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    for (int i = 0; i < 8; i++)
        dt_await(ctx, dt_call_activity(ctx, "blob", NULL, NULL));
    *output = "\"done\"";
    return DT_OK;
}

/* tiny: an orchestration that ends at once: a history of three small events */
static dt_status tiny(dt_octx *ctx, const char *input, const char **output)
{
    (void)ctx;
    (void)input;
    *output = "\"tiny\"";
    return DT_OK;
}

/* start_named: start instance ID of orchestration NAME over gRPC, without input */
static void start_named(raw_client *rc, const char *name, const char *id)
{
    Dtpb__CreateInstanceRequest r = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    r.name = (char *)name;
    r.instanceid = (char *)id;
    size_t len;
    uint8_t *start = packed(&r.base, &len);
    size_t i = raw_call_until(rc, "StartInstance", start, len, GRPC_STATUS_OK);
    assert_int_equal(rc->calls[i].status, GRPC_STATUS_OK);
    free(start);
}

/* blob_worker: a C remote worker of S's with "o" (O), "tiny" and "blob"; stop it with
 * dt_remote_worker_stop, then free *W */
static dt_remote_worker *blob_worker(const server *s, dt_orchestrator_fn o, dt_worker **w)
{
    assert_int_equal(dt_worker_new(w), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(*w, "o", o, NULL), DT_OK);
    assert_int_equal(dt_worker_add_orchestrator(*w, "tiny", tiny, NULL), DT_OK);
    assert_int_equal(dt_worker_add_activity(*w, "blob", blob, NULL), DT_OK);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", s->grpc_port);
    dt_remote_worker *rw;
    dt_error err;
    assert_int_equal(dt_remote_worker_start(*w, target, NULL, &rw, &err), DT_OK);
    return rw;
}

static void test_http_responses_clients_do_not_take_are_bounded_by_max_held(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-held-mb", "1", NULL};
    serve_start(&s, "hostile_http_held", extra);
    dt_worker *w;
    dt_remote_worker *rw = blob_worker(&s, big_history, &w);
    raw_client rc;
    raw_open(&rc, &s, 1024);
    start_big(&rc, "bigh", 16);
    start_named(&rc, "tiny", "tinyh");
    raw_close(&rc);
    char head[4096];
    int64_t until = now_ms() + 60000;
    for (;;) {   /* 200 once both have finished */
        http_get_head(&s, "/runtime/webhooks/durabletask/instances/bigh", 0, head, sizeof head,
                      NULL);
        char tiny_head[4096];
        http_get_head(&s, "/runtime/webhooks/durabletask/instances/tinyh", 0, tiny_head,
                      sizeof tiny_head, NULL);
        if ((strncmp(head, "HTTP/1.1 200", 12) == 0 &&
             strncmp(tiny_head, "HTTP/1.1 200", 12) == 0) || now_ms() > until)
            break;
        test_sleep_ms(50);
    }
    dt_remote_worker_stop(rw);
    dt_worker_free(w);
    assert_true(strncmp(head, "HTTP/1.1 200", 12) == 0);

    const char *path = "/runtime/webhooks/durabletask/instances/bigh?showHistory=true"
                       "&showHistoryOutput=true";
    http_get_head(&s, path, 0, head, sizeof head, NULL);
    assert_true(strncmp(head, "HTTP/1.1 200", 12) == 0);
    /* a client that does not read: its 7 MB answer stays held, and the next does not fit */
    /* (refused, the lazy client tries again: the answer before may not have been let go) */
    int lazy = -1;
    until = now_ms() + 10000;
    for (;;) {
        http_get_head(&s, path, 4096, head, sizeof head, &lazy);
        if (strncmp(head, "HTTP/1.1 200", 12) == 0 || now_ms() > until)
            break;
        close(lazy);
        test_sleep_ms(50);
    }
    assert_true(strncmp(head, "HTTP/1.1 200", 12) == 0);
    until = now_ms() + 10000;
    do {
        http_get_head(&s, path, 0, head, sizeof head, NULL);
    } while (strncmp(head, "HTTP/1.1 200", 12) == 0 && now_ms() < until);
    assert_true(strncmp(head, "HTTP/1.1 503", 12) == 0);
    assert_non_null(strstr(head, "--max-held-mb"));
    assert_true(get_healthz(&s));   /* small answers are served meanwhile */
    http_get_head(&s, "/runtime/webhooks/durabletask/instances/tinyh?showHistory=true"
                      "&showHistoryOutput=true", 0, head, sizeof head, NULL);
    assert_true(strncmp(head, "HTTP/1.1 200", 12) == 0);   /* a small history too */
    /* the lazy client goes, and its answer with it */
    close(lazy);
    until = now_ms() + 10000;
    do {
        http_get_head(&s, path, 0, head, sizeof head, NULL);
    } while (strncmp(head, "HTTP/1.1 503", 12) == 0 && now_ms() < until);
    assert_true(strncmp(head, "HTTP/1.1 200", 12) == 0);
    serve_stop(&s, 5000);
}

/* ---- whole histories ------------------------------------------------------------------------ */

#define GROWN_BLOBS 32   /* of 900 KB: a history of 29 MB */

/* grow_then_renew: a history of GROWN_BLOBS blobs, custom status "grown" once it has them,
 * then, on event "renew", continue-as-new with a short history ("again") */
static dt_status grow_then_renew(dt_octx *ctx, const char *input, const char **output)
{
    if (input && strcmp(input, "\"again\"") == 0) {
        *output = "\"renewed\"";
        return DT_OK;
    }
    for (int i = 0; i < GROWN_BLOBS; i++)
        dt_await(ctx, dt_call_activity(ctx, "blob", NULL, NULL));
    dt_octx_set_custom_status(ctx, "\"grown\"");
    dt_await(ctx, dt_wait_for_event(ctx, "renew"));
    return dt_continue_as_new(ctx, "\"again\"", false);
}

/* instance_state: ID's state over gRPC (NULL when it does not exist); free with
 * dtpb__get_instance_response__free_unpacked. */
static Dtpb__GetInstanceResponse *instance_state(raw_client *rc, const char *id)
{
    size_t len;
    uint8_t *get = get_request(id, &len);
    size_t i = raw_call_wait(rc, "GetInstance", get, len);
    free(get);
    assert_int_equal(rc->calls[i].status, GRPC_STATUS_OK);
    grpc_byte_buffer_reader rd;
    assert_true(grpc_byte_buffer_reader_init(&rd, rc->calls[i].response));
    grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    Dtpb__GetInstanceResponse *gr = dtpb__get_instance_response__unpack(
        NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    assert_non_null(gr);
    return gr;
}

/* state_has: has ID custom status JSON (or, with JSON NULL, runtime status STATUS)? */
static bool state_has(raw_client *rc, const char *id, const char *json,
                      Dtpb__OrchestrationStatus status)
{
    Dtpb__GetInstanceResponse *gr = instance_state(rc, id);
    Dtpb__OrchestrationState *st = gr->exists ? gr->orchestrationstate : NULL;
    bool has = st && (json ? st->customstatus && strcmp(st->customstatus->value, json) == 0
                           : st->orchestrationstatus == status);
    dtpb__get_instance_response__free_unpacked(gr, NULL);
    return has;
}

/* grow: start ID (grow_then_renew) on a C remote worker of S's and wait until it has grown;
 * the worker is returned to be stopped once the test is done with it */
static dt_remote_worker *grow(const server *s, raw_client *rc, dt_worker **w, const char *id)
{
    dt_remote_worker *rw = blob_worker(s, grow_then_renew, w);
    start_big(rc, id, 16);
    int64_t until = now_ms() + 120000;
    while (!state_has(rc, id, "\"grown\"", 0) && now_ms() < until)
        test_sleep_ms(100);
    assert_true(state_has(rc, id, "\"grown\"", 0));
    return rw;
}

/* http_get_all: the whole answer (head and body) to a GET of PATH (malloc'd) */
static char *http_get_all(const server *s, const char *path)
{
    int fd = tcp_from(s, "127.0.0.1");
    char rq[512];
    snprintf(rq, sizeof rq, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    assert_int_equal(send(fd, rq, strlen(rq), MSG_NOSIGNAL), (ssize_t)strlen(rq));
    size_t got = 0, cap = 1 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (ssize_t n; (n = recv(fd, buf + got, cap - 1 - got, 0)) > 0;) {
        got += (size_t)n;
        if (got == cap - 1) {
            buf = realloc(buf, cap *= 2);
            assert_non_null(buf);
        }
    }
    buf[got] = '\0';
    close(fd);
    assert_true(strncmp(buf, "HTTP/1.1 2", 10) == 0);
    return buf;
}

/* rss_kb: the server's resident memory, in KB */
static long rss_kb(const server *s)
{
    return proc_status(s, "VmRSS:");
}

static uint8_t *history_request(const char *id, size_t *len)
{
    Dtpb__StreamInstanceHistoryRequest h = DTPB__STREAM_INSTANCE_HISTORY_REQUEST__INIT;
    h.instanceid = (char *)id;
    return packed(&h.base, len);
}

/* serve_small_quarantine: start S with EXTRA, AddressSanitizer (in a sanitized build) keeping
 * little freed memory, so what the server's memory holds is what it uses */
static void serve_small_quarantine(server *s, const char *name, const char *const *extra)
{
    const char *was = getenv("ASAN_OPTIONS");
    char *saved = was ? strdup(was) : NULL;
    char opts[1024];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=4", was ? was : "", was ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
    serve_start(s, name, extra);
    if (saved)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
}

/* Many readers of one 29 MB history at once, none taking what it is sent, over gRPC and over
 * HTTP: each holds a window of the history, not the history (before, each read the whole of
 * it and built all its answer: 24 such readers grew the server by 735 MB over gRPC). */
static void test_lazy_readers_of_a_large_history_hold_a_window_each(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-held-mb", "8", NULL};
    serve_small_quarantine(&s, "hostile_history_readers", extra);
    raw_client rc;
    raw_open(&rc, &s, 4096);
    dt_worker *w;
    dt_remote_worker *rw = grow(&s, &rc, &w, "grown");
    dt_remote_worker_stop(rw);
    dt_worker_free(w);
    enum { READERS = 24, HTTP_READERS = 12 };

    /* over HTTP: each request reads the history a window at a time (before, each decoded all
     * of it, its 900 KB results too, though they are not shown) */
    long before = rss_kb(&s);
    int fds[HTTP_READERS];
    const char *rq = "GET /runtime/webhooks/durabletask/instances/grown?showHistory=true"
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < HTTP_READERS; i++) {
        fds[i] = tcp_from(&s, "127.0.0.1");
        int small = 4096;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        assert_int_equal(send(fds[i], rq, strlen(rq), MSG_NOSIGNAL), (ssize_t)strlen(rq));
    }
    long peak = before;
    for (int t = 0; t < 30; t++) {
        test_sleep_ms(100);
        long now = rss_kb(&s);
        peak = now > peak ? now : peak;
    }
    int ok = 0;
    int64_t t0 = now_ms(), until = t0 + 120000;   /* 3 s each in a sanitized debug build */
    for (int i = 0; i < HTTP_READERS; i++) {
        char head[64] = "";
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        int64_t left = until - now_ms();
        if (poll(&p, 1, left > 0 ? (int)left : 0) > 0 && recv(fds[i], head, sizeof head - 1, 0) > 0)
            ok += strncmp(head, "HTTP/1.1 202", 12) == 0;   /* running: it waits for renew */
        close(fds[i]);
    }
    printf("%d HTTP readers answered in %lld ms\n", ok, (long long)(now_ms() - t0));
    long grew_mb = (peak - before) / 1024;
    printf("%d HTTP readers of a 29 MB history grew the server by %ld MB\n", HTTP_READERS, grew_mb);
    assert_int_equal(ok, HTTP_READERS);
    if (grew_mb > 80)
        fail_msg("%d HTTP readers of a 29 MB history grew the server by %ld MB", HTTP_READERS,
                 grew_mb);

    /* over gRPC: each call reads and sends a window at a time */
    test_sleep_ms(500);   /* the requests above let go of what they held */
    before = rss_kb(&s);
    size_t len;
    uint8_t *hist = history_request("grown", &len);
    raw_client lazy;
    lazy_open(&lazy, &s);
    for (int i = 0; i < READERS; i++)
        raw_start_reading(&lazy, "StreamInstanceHistory", false, hist, len, false);
    peak = before;
    for (int t = 0; t < 30; t++) {   /* three seconds: time for each to send what fits */
        raw_collect(&lazy, READERS, 100);   /* the client's calls move while it polls */
        long now = rss_kb(&s);
        peak = now > peak ? now : peak;
    }
    assert_int_equal(raw_collect(&lazy, READERS, 0), 0);   /* all still sending */
    grew_mb = (peak - before) / 1024;
    printf("%d gRPC readers of it grew the server by %ld MB\n", READERS, grew_mb);
    if (grew_mb > 200)
        fail_msg("%d gRPC readers of a 29 MB history grew the server by %ld MB", READERS,
                 grew_mb);
    assert_int_equal(hello(&rc, false), GRPC_STATUS_OK);   /* others are served meanwhile */
    assert_true(get_healthz(&s));
    raw_close(&lazy);
    free(hist);

    /* read whole, its completions still show what they complete: the names carry over from
     * the window that scheduled them (each 900 KB result is a window of its own) */
    char *body = http_get_all(&s, "/runtime/webhooks/durabletask/instances/grown"
                                  "?showHistory=true");
    int named = 0;
    for (const char *p = body; (p = strstr(p, "\"Name\":\"blob\"")) != NULL; p++)
        named++;
    free(body);
    assert_int_equal(named, 2 * GROWN_BLOBS);   /* each TaskScheduled and its TaskCompleted */
    raw_close(&rc);
    serve_stop(&s, 5000);
}

/* read_history: stream ID's history to its end with a client that takes a message at a time
 * (a 16 KB window); after the first message, BETWEEN (when given) runs. The number of events
 * and of bytes received, and the call's status (with its details in DETAILS). */
static grpc_status_code read_history(const server *s, const char *id,
                                     void (*between)(const server *, void *), void *arg,
                                     size_t *events, size_t *bytes, char *details, size_t size)
{
    raw_client rc;
    lazy_open(&rc, s);
    size_t len;
    uint8_t *req = history_request(id, &len);
    char path[] = "/TaskHubSidecarService/StreamInstanceHistory";
    grpc_slice m = grpc_slice_from_static_string(path);
    grpc_call *call = grpc_channel_create_call(
        rc.ch, NULL, GRPC_PROPAGATE_DEFAULTS, rc.cq, m, NULL,
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(120, GPR_TIMESPAN)),
        NULL);
    assert_non_null(call);
    grpc_slice body = grpc_slice_from_copied_buffer((const char *)req, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    gpr_timespec wait = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                     gpr_time_from_seconds(120, GPR_TIMESPAN));
    assert_int_equal(grpc_call_start_batch(call, ops, 4, (void *)1, NULL), GRPC_CALL_OK);
    assert_int_equal(grpc_completion_queue_next(rc.cq, wait, NULL).type,
                     GRPC_OP_COMPLETE);
    *events = *bytes = 0;
    for (size_t n = 0;; n++) {
        grpc_byte_buffer *msg = NULL;
        memset(ops, 0, sizeof ops);
        ops[0].op = GRPC_OP_RECV_MESSAGE;
        ops[0].data.recv_message.recv_message = &msg;
        assert_int_equal(grpc_call_start_batch(call, ops, 1, (void *)2, NULL), GRPC_CALL_OK);
        assert_int_equal(grpc_completion_queue_next(rc.cq, wait, NULL).type,
                         GRPC_OP_COMPLETE);
        if (msg == NULL)
            break;
        grpc_byte_buffer_reader rd;
        assert_true(grpc_byte_buffer_reader_init(&rd, msg));
        grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        Dtpb__HistoryChunk *chunk = dtpb__history_chunk__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                                GRPC_SLICE_START_PTR(all));
        assert_non_null(chunk);
        assert_true(chunk->n_events > 0);
        *events += chunk->n_events;
        *bytes += GRPC_SLICE_LENGTH(all);
        dtpb__history_chunk__free_unpacked(chunk, NULL);
        grpc_slice_unref(all);
        grpc_byte_buffer_destroy(msg);
        if (n == 0 && between)
            between(s, arg);
    }
    grpc_status_code status;
    grpc_slice det;
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[0].data.recv_status_on_client.trailing_metadata = &trailing;
    ops[0].data.recv_status_on_client.status = &status;
    ops[0].data.recv_status_on_client.status_details = &det;
    assert_int_equal(grpc_call_start_batch(call, ops, 1, (void *)3, NULL), GRPC_CALL_OK);
    assert_int_equal(grpc_completion_queue_next(rc.cq, wait, NULL).type,
                     GRPC_OP_COMPLETE);
    snprintf(details, size, "%.*s", (int)GRPC_SLICE_LENGTH(det),
             (const char *)GRPC_SLICE_START_PTR(det));
    grpc_slice_unref(det);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_byte_buffer_destroy(bb);
    grpc_call_unref(call);
    free(req);
    raw_close(&rc);
    return status;
}

/* renew: raise "renew" on the instance ARG names and wait until its history is replaced */
static void renew(const server *s, void *arg)
{
    raw_client rc;
    raw_open(&rc, s, 1024);
    Dtpb__RaiseEventRequest r = DTPB__RAISE_EVENT_REQUEST__INIT;
    r.instanceid = arg;
    r.name = "renew";
    size_t len;
    uint8_t *req = packed(&r.base, &len);
    size_t i = raw_call_wait(&rc, "RaiseEvent", req, len);
    assert_int_equal(rc.calls[i].status, GRPC_STATUS_OK);
    free(req);
    int64_t until = now_ms() + 60000;
    while (!state_has(&rc, arg, NULL, DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED) &&
           now_ms() < until)
        test_sleep_ms(50);
    assert_true(state_has(&rc, arg, NULL,
                          DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED));
    raw_close(&rc);
}

/* A large history streams whole, a window at a time; one replaced (continue-as-new) while it
 * is read ends the read ABORTED, rather than mixing two executions' events. */
static void test_a_history_replaced_while_it_is_read_ends_the_read_aborted(void **state)
{
    (void)state;
    server s;
    const char *extra[] = {"--max-held-mb", "4", NULL};
    serve_start(&s, "hostile_history_replaced", extra);
    raw_client rc;
    raw_open(&rc, &s, 4096);
    dt_worker *w;
    dt_remote_worker *rw = grow(&s, &rc, &w, "renewing");

    size_t events, bytes;
    char details[512];
    grpc_status_code st = read_history(&s, "renewing", NULL, NULL, &events, &bytes, details,
                                       sizeof details);
    assert_int_equal(st, GRPC_STATUS_OK);
    /* OrchestratorStarted, ExecutionStarted, then per blob TaskScheduled, OrchestratorStarted,
     * TaskCompleted; the last episode's event wait */
    assert_true(events >= 2 + 3 * GROWN_BLOBS);
    assert_true(bytes > (size_t)GROWN_BLOBS * 900 * 1024);

    st = read_history(&s, "renewing", renew, "renewing", &events, &bytes, details,
                      sizeof details);
    assert_int_equal(st, GRPC_STATUS_ABORTED);
    assert_non_null(strstr(details, "replaced"));
    assert_true(bytes < (size_t)GROWN_BLOBS * 900 * 1024);
    st = read_history(&s, "renewing", NULL, NULL, &events, &bytes, details, sizeof details);
    assert_int_equal(st, GRPC_STATUS_OK);   /* the new history, whole */
    assert_true(events >= 2 && bytes < 4096);
    dt_remote_worker_stop(rw);
    dt_worker_free(w);
    raw_close(&rc);
    serve_stop(&s, 5000);
}

int main(void)
{
#define T(t) cmocka_unit_test_teardown(t, kill_leftover)
    const struct CMUnitTest tests[] = {
        T(test_silent_calls_beyond_the_caps_are_refused_at_once_on_no_thread),
        T(test_one_address_holds_at_most_its_share_of_calls_and_streams),
        T(test_calls_without_the_token_are_refused_before_any_read),
        T(test_sigterm_with_every_slot_taken_exits_in_seconds),
        T(test_answers_clients_do_not_take_are_bounded_by_max_held),
        T(test_an_answer_not_taken_ends_its_call_after_the_send_timeout),
        T(test_grpc_connections_past_a_share_of_the_fd_limit_are_closed_at_once),
        T(test_one_address_keeps_at_most_max_per_client_grpc_connections),
        T(test_a_request_that_unpacks_to_many_times_its_size_is_held_to_max_held),
        T(test_idle_http_connections_from_one_address_do_not_lock_out_others),
        T(test_a_slowloris_http_client_is_cut_off_by_the_request_timeout),
        T(test_http_responses_clients_do_not_take_are_bounded_by_max_held),
        T(test_lazy_readers_of_a_large_history_hold_a_window_each),
        T(test_a_history_replaced_while_it_is_read_ends_the_read_aborted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
