/* test_cli.c — the operator CLI as an operator uses it: a hub with an in-process C worker and
 * the gRPC service on a free port, and the built `dtask` binary run against it as a child
 * process, its exit code, stdout and stderr checked for every command: the happy paths, and
 * the messages and exit codes of a missing instance (3), bad usage and bad JSON (2), an
 * unreachable server (5), a failed wait (1) and a wait that runs out of time (4). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "durabletask/durabletask.h"
#include "hubfix.h"

extern char **environ;

#define DTASK_BIN DT_TEST_BINARY_DIR "/../dtask"

/* ---- the orchestrations the worker runs ----------------------------------------------------- */

static dt_status echo_orch(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "echo", input, NULL));
    return DT_OK;
}

static dt_status fail_orch(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    (void)output;
    return dt_fail(ctx, "BoomError", "it went boom");
}

/* event_orch: finishes with the data of event "go". */
static dt_status event_orch(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_await(ctx, dt_wait_for_event(ctx, "go"));
    return DT_OK;
}

/* ---- the fixture: hub, worker, server, and the last dtask run ------------------------------- */

typedef struct cli_fix {
    hubfix f;
    dt_grpc_server *srv;
    char target[64];
    const char *cwd; /* where dtask runs (NULL: here) */
    int code;        /* exit code of the last run */
    char *out, *err; /* its stdout and stderr (malloc'd; replaced by the next run) */
} cli_fix;

static void fix_open(cli_fix *c, const char *name)
{
    memset(c, 0, sizeof *c);
    if (access(DTASK_BIN, X_OK) != 0)
        fail_msg("%s is not built", DTASK_BIN);
    hubfix_open(&c->f, name, NULL);
    assert_ok(dt_worker_add_orchestrator(c->f.worker, "echo_orch", echo_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(c->f.worker, "fail_orch", fail_orch, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(c->f.worker, "event_orch", event_orch, NULL), NULL);
    assert_ok(dt_worker_add_activity(c->f.worker, "echo", hubfix_echo, NULL), NULL);
    hubfix_start(&c->f);
    dt_error err = {0};
    dt_grpc_options o = {.listen = "127.0.0.1:0"};
    assert_ok(dt_grpc_server_start(c->f.hub, &o, &c->srv, &err), &err);
    snprintf(c->target, sizeof c->target, "127.0.0.1:%d", dt_grpc_server_port(c->srv));
}

static void fix_close(cli_fix *c)
{
    free(c->out);
    free(c->err);
    dt_grpc_server_stop(c->srv);
    hubfix_close(&c->f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* run: `dtask ARGS... [--server TARGET]`, stdout and stderr to files, then into C->out and
 * C->err; returns the exit code (128 + signal if it was killed). */
static int run(cli_fix *c, bool add_server, const char *const *args)
{
    const char *out_path = test_path(c->f.dir, "stdout.txt");
    const char *err_path = test_path(c->f.dir, "stderr.txt");
    char *argv[32];
    int n = 0;
    argv[n++] = DTASK_BIN;
    for (; *args && n < 28; args++)
        argv[n++] = (char *)*args;
    if (add_server) {
        argv[n++] = "--server";
        argv[n++] = c->target;
    }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (c->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, c->cwd);
    pid_t pid;
    int rc = posix_spawn(&pid, DTASK_BIN, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot start %s: %s", DTASK_BIN, strerror(rc));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    c->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    free(c->out);
    free(c->err);
    c->out = slurp(out_path);
    c->err = slurp(err_path);
    return c->code;
}

#define DTASK(c, ...) run((c), true, (const char *const[]){__VA_ARGS__, NULL})
#define DTASK_RAW(c, ...) run((c), false, (const char *const[]){__VA_ARGS__, NULL})

/* expect: the last run exited with CODE, and its stdout / stderr contain the needles given. */
static void expect(cli_fix *c, int code, const char *out_has, const char *err_has)
{
    if (c->code != code || (out_has && !strstr(c->out, out_has)) ||
        (err_has && !strstr(c->err, err_has)))
        fail_msg("exit %d (want %d)\n--- stdout (want '%s'):\n%s--- stderr (want '%s'):\n%s",
                 c->code, code, out_has ? out_has : "", c->out, err_has ? err_has : "",
                 c->err);
}

static void wait_done(cli_fix *c, const char *id)
{
    dt_instance_state *s;
    dt_error err = {0};
    assert_ok(dt_client_wait_completion(c->f.client, id, 60000, c->f.arena, &s, &err), &err);
}

/* wait_status: poll until ID has STATUS (commands reach an instance through its inbox). */
static void wait_status(cli_fix *c, const char *id, dt_runtime_status status)
{
    for (int i = 0; i < 1000; i++) {
        dt_instance_state *s = NULL;
        if (dt_client_get(c->f.client, id, c->f.arena, &s, NULL) == DT_OK && s->status == status)
            return;
        test_sleep_ms(10);
    }
    fail_msg("%s never became %s", id, dt_runtime_status_name(status));
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static size_t lines(const char *s)
{
    return count(s, "\n");
}

/* json_of: the last run's stdout as JSON (decref it). */
static json_t *json_of(cli_fix *c)
{
    json_error_t je;
    json_t *v = json_loads(c->out, 0, &je);
    if (v == NULL)
        fail_msg("stdout is not JSON (%s): %s", je.text, c->out);
    return v;
}

/* ---- help and usage ------------------------------------------------------------------------- */

static void test_every_command_has_help_and_the_exit_codes_are_documented(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-help");
    const char *cmds[] = {"start", "status", "list", "history", "raise", "terminate",
                          "suspend", "resume", "restart", "purge", "wait", "serve", "worker",
                          "demo", "entity", "entity get", "entity signal", "entity list",
                          "entity clean", "migrate"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char want[64], cmd[32];
        snprintf(want, sizeof want, "usage: dtask %s", cmds[i]);
        snprintf(cmd, sizeof cmd, "%s", cmds[i]);
        char *sub = strchr(cmd, ' ');   /* "entity get": a command and its subcommand */
        if (sub)
            *sub++ = '\0';
        if (sub)
            DTASK_RAW(&c, cmd, sub, "--help");
        else
            DTASK_RAW(&c, cmd, "--help");
        expect(&c, 0, want, NULL);
        if (sub)
            DTASK_RAW(&c, "help", cmd, sub);
        else
            DTASK_RAW(&c, "help", cmd);
        expect(&c, 0, want, NULL);
    }
    DTASK_RAW(&c, "--help");
    expect(&c, 0, "5  cannot reach the server", NULL);
    assert_non_null(strstr(c.out, "3  no such instance"));
    assert_non_null(strstr(c.out, "4  timed out"));
    DTASK_RAW(&c, "version");
    expect(&c, 0, "dtask " DT_VERSION "\n", NULL);   /* the one version, the header's */
    DTASK_RAW(&c, "frobnicate");
    expect(&c, 2, NULL, "unknown command 'frobnicate'");
    DTASK(&c, "start", "echo_orch", "--bogus");
    expect(&c, 2, NULL, "unknown option '--bogus'");
    DTASK(&c, "raise", "x");
    expect(&c, 2, NULL, "missing ID EVENT");
    DTASK(&c, "status", "a", "b");
    expect(&c, 2, NULL, "unexpected argument 'b'");
    DTASK_RAW(&c, "list", "--page-size");
    expect(&c, 2, NULL, "--page-size needs a value");
    DTASK(&c, "list", "--page-size", "0");
    expect(&c, 2, NULL, "--page-size: '0'");
    DTASK(&c, "list", "--status", "Done");
    expect(&c, 2, NULL, "no status 'Done'");
    DTASK(&c, "list", "--all", "--continuation", "x");
    expect(&c, 2, NULL, "--all and --continuation");
    DTASK(&c, "list", "--sort", "name");
    expect(&c, 2, NULL, "--sort must be created or id, not 'name'");
    DTASK(&c, "start", "echo_orch", "--start-at", "2026-02-30");
    expect(&c, 2, NULL, "--start-at: '2026-02-30' is not a time");
    DTASK(&c, "wait", "x", "--for", "lunch");
    expect(&c, 2, NULL, "--for: 'lunch'");
    DTASK(&c, "wait", "x", "--timeout", "-1");
    expect(&c, 2, NULL, "--timeout: '-1'");
    DTASK(&c, "purge");
    expect(&c, 2, NULL, "give an ID, or a filter");
    DTASK(&c, "purge", "x", "--status", "Completed");
    expect(&c, 2, NULL, "not both");
    fix_close(&c);
}

static void test_bad_json_exits_2_naming_the_flag_and_nothing_is_started(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-badjson");
    DTASK(&c, "start", "echo_orch", "--id", "j1", "--input", "{bad");
    expect(&c, 2, NULL, "dtask start: --input is not valid JSON");
    DTASK(&c, "status", "j1");
    expect(&c, 3, NULL, NULL);
    DTASK(&c, "start", "event_orch", "--id", "j2");
    expect(&c, 0, "j2\n", NULL);
    DTASK(&c, "raise", "j2", "go", "--data", "not json");
    expect(&c, 2, NULL, "dtask raise: --data is not valid JSON");
    DTASK(&c, "terminate", "j2", "--output", "[1,");
    expect(&c, 2, NULL, "dtask terminate: --output is not valid JSON");
    /* a value only the server can judge: INVALID_ARGUMENT is bad usage too, with its details */
    DTASK(&c, "start", "echo_orch", "--id", "a/b");
    expect(&c, 2, NULL, "'/'");
    assert_non_null(strstr(c.err, "INVALID_ARGUMENT"));
    fix_close(&c);
}

/* serve's limits that do not fit each other exit 2 naming both, before anything is opened */
static void test_serve_refuses_limits_that_do_not_fit(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-limits");
    DTASK_RAW(&c, "serve", "--max-calls", "10", "--max-calls-per-client", "11");
    expect(&c, 2, NULL, "--max-calls-per-client (11) cannot be more than --max-calls (10)");
    DTASK_RAW(&c, "serve", "--max-streams-per-client", "300");
    expect(&c, 2, NULL, "--max-streams-per-client (300) cannot be more than --max-streams (256)");
    DTASK_RAW(&c, "serve", "--max-calls", "8", "--max-streams-per-client", "9");
    expect(&c, 2, NULL, "--max-streams-per-client (9) cannot be more than --max-streams (8)");
    DTASK_RAW(&c, "serve", "--max-streams", "20", "--max-calls", "10");
    expect(&c, 2, NULL, "--max-streams (20) cannot be more than --max-calls (10)");
    DTASK_RAW(&c, "serve", "--max-calls-per-client", "-1");
    expect(&c, 2, NULL, "--max-calls-per-client");
    fix_close(&c);
}

static void test_unreachable_server_exits_5(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-unreachable");
    /* a port that was free a moment ago: nothing listens there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", ntohs(sa.sin_port));
    const char *cmds[][3] = {{"status", "x", NULL}, {"list", NULL, NULL},
                             {"history", "x", NULL}, {"wait", "x", NULL},
                             {"start", "echo_orch", NULL}, {"purge", "x", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *args[] = {cmds[i][0], "--server", target, cmds[i][1], NULL};
        run(&c, false, args);
        expect(&c, 5, NULL, "cannot reach the server at 127.0.0.1:");
    }
    fix_close(&c);
}

static void test_a_server_that_requires_a_token_gets_it_from_the_token_file(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-token");
    dt_grpc_server *guarded = NULL;
    dt_error err = {0};
    dt_grpc_options o = {.listen = "127.0.0.1:0", .token = "s3cret-token"};
    assert_ok(dt_grpc_server_start(c.f.hub, &o, &guarded, &err), &err);
    char target[64], good[600], bad[600];
    snprintf(target, sizeof target, "127.0.0.1:%d", dt_grpc_server_port(guarded));
    snprintf(good, sizeof good, "%s", test_path(c.f.dir, "token"));
    snprintf(bad, sizeof bad, "%s", test_path(c.f.dir, "wrong-token"));
    FILE *f = fopen(good, "w");
    fputs("  s3cret-token\n", f);
    fclose(f);
    f = fopen(bad, "w");
    fputs("nope\n", f);
    fclose(f);
    DTASK_RAW(&c, "status", "x", "--server", target);
    expect(&c, 1, NULL, "UNAUTHENTICATED");
    assert_non_null(strstr(c.err, "--token-file"));
    DTASK_RAW(&c, "status", "x", "--server", target, "--token-file", bad);
    expect(&c, 1, NULL, "UNAUTHENTICATED");
    DTASK_RAW(&c, "start", "echo_orch", "--id", "k1", "--server", target, "--token-file", good);
    expect(&c, 0, "k1\n", NULL);
    DTASK_RAW(&c, "wait", "k1", "--server", target, "--token-file", good);
    expect(&c, 0, "Completed", NULL);
    DTASK_RAW(&c, "history", "k1", "--server", target, "--token-file", good);
    expect(&c, 0, "ExecutionCompleted", NULL);
    DTASK_RAW(&c, "status", "k1", "--server", target, "--token-file", "/nonexistent/token");
    expect(&c, 2, NULL, "cannot read the token file /nonexistent/token");
    dt_grpc_server_stop(guarded);
    fix_close(&c);
}

/* guarded_open: a server of F's hub that requires SERVER_TOKEN (OUT->srv, its address in
 * OUT->target), and a token file holding FILE_TOKEN (its path in OUT->token). */
typedef struct guarded {
    dt_grpc_server *srv;
    char target[64];
    char token[600];
} guarded;

static void guarded_open(hubfix *f, const char *server_token, const char *file_token,
                         guarded *out)
{
    dt_error err = {0};
    dt_grpc_options o = {.listen = "127.0.0.1:0", .token = server_token};
    assert_ok(dt_grpc_server_start(f->hub, &o, &out->srv, &err), &err);
    snprintf(out->target, sizeof out->target, "127.0.0.1:%d", dt_grpc_server_port(out->srv));
    snprintf(out->token, sizeof out->token, "%s", test_path(f->dir, "token"));
    FILE *tf = fopen(out->token, "w");
    assert_non_null(tf);
    fprintf(tf, "%s\n", file_token);
    fclose(tf);
}

/* `dtask worker` takes --token-file as the operator commands do, and does the work of a server
 * that requires a token. The hub has no worker of its own here: only the child can run it. */
static void test_the_c_worker_joins_a_server_that_requires_a_token(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "cli-worker-token", NULL);
    guarded g;
    guarded_open(&f, "w0rker-token", "w0rker-token", &g);
    dt_error err = {0};
    char *argv[] = {DTASK_BIN, "worker", "--server", g.target, "--token-file", g.token, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, DTASK_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);

    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = "w1"};
    assert_ok(dt_client_start(f.client, "hello_cities", &so, id, &err), &err);
    dt_instance_state *st = NULL;
    dt_status waited = dt_client_wait_completion(f.client, id, 60000, f.arena, &st, &err);
    kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    assert_ok(waited, &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "[\"Hello Tokyo!\",\"Hello Seattle!\",\"Hello London!\"]");
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);   /* a clean stop */
    dt_grpc_server_stop(g.srv);
    hubfix_close(&f);
}

/* The worker a test started and has not stopped: killed after the test (kill_child) when
 * the test failed before it stopped it. */
static pid_t g_child;

static int kill_child(void **state)
{
    (void)state;
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        while (waitpid(g_child, NULL, 0) < 0 && errno == EINTR)
            ;
        g_child = 0;
    }
    return 0;
}

/* spawn_worker_args: dtask with ARGV (its first DTASK_BIN), stderr to ERR_PATH; its pid. */
static pid_t spawn_worker_args(const char *err_path, char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, DTASK_BIN, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    g_child = pid;
    return pid;
}

/* spawn_worker: `dtask worker` with no --server (so $DTASK_SERVER decides), stderr to
 * ERR_PATH; its pid. */
static pid_t spawn_worker(const char *err_path)
{
    char *argv[] = {DTASK_BIN, "worker", NULL};
    return spawn_worker_args(err_path, argv);
}

/* cpu_ms: the CPU time (user and system) process PID has used, in ms. */
static long cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');   /* after the command name, which may hold spaces */
    assert_non_null(p);
    unsigned long utime = 0, stime = 0;
    /* fields 3-13 skipped, then utime (14) and stime (15) */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
                            &stime),
                     2);
    return (long)((utime + stime) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* wait_for_text_within: PATH comes to contain NEEDLE within MS (a failure shows what it
 * has). */
static void wait_for_text_within(const char *path, const char *needle, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        char *text = slurp(path);
        bool found = strstr(text, needle) != NULL;
        if (found || i == ms / 10 - 1) {
            if (!found)
                fail_msg("'%s' never appeared; stderr:\n%s", needle, text);
            free(text);
            return;
        }
        free(text);
        test_sleep_ms(10);
    }
}

static void wait_for_text(const char *path, const char *needle)
{
    wait_for_text_within(path, needle, 10000);
}

static int stop_child(pid_t pid)
{
    kill(pid, SIGTERM);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        ;
    if (pid == g_child)
        g_child = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* connected_and_working: the `dtask worker` PID (stderr in ERR_PATH) says it connected to
 * C's server within MS and runs hello_cities for it (the fixture's own worker has none);
 * then it stops cleanly. */
static void connected_and_working(cli_fix *c, pid_t pid, const char *err_path, int ms)
{
    char want[128];
    snprintf(want, sizeof want, "connected to the server at %s", c->target);
    wait_for_text_within(err_path, want, ms);
    dt_error err = {0};
    char id[DT_INSTANCE_ID_MAX + 1];
    assert_ok(dt_client_start(c->f.client, "hello_cities", NULL, id, &err), &err);
    dt_instance_state *s = NULL;
    dt_status waited = dt_client_wait_completion(c->f.client, id, 60000, c->f.arena, &s, &err);
    assert_int_equal(stop_child(pid), 0);
    assert_ok(waited, &err);
    assert_int_equal(s->status, DT_STATUS_COMPLETED);
}

/* `dtask worker` is like every other command: $DTASK_SERVER names the server, and it says so
 * when the server cannot be reached (instead of waiting in silence) and when it is reached. */
static void test_the_c_worker_takes_dtask_server_and_says_when_it_is_unreachable(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-worker-env");
    const char *err_path = test_path(c.f.dir, "worker-stderr.txt");
    setenv("DTASK_SERVER", "127.0.0.1:1", 1);
    pid_t pid = spawn_worker(err_path);
    wait_for_text(err_path, "cannot reach the server at 127.0.0.1:1");
    assert_int_equal(stop_child(pid), 0);

    setenv("DTASK_SERVER", c.target, 1);
    pid = spawn_worker(err_path);
    unsetenv("DTASK_SERVER");
    connected_and_working(&c, pid, err_path, 10000);
    char *text = slurp(err_path);
    bool warned = strstr(text, "cannot reach") != NULL;
    free(text);
    assert_false(warned);
    fix_close(&c);
}

/* A worker started before its server connects soon after the server comes, within its retry
 * period (2 s; 5 s allowed here): gRPC left to itself tries again only when its 5 s backup
 * poller runs, and further apart as its backoff grows (7-10 s after 8 s without a server).
 * (Without the channel's 2 s cap on that backoff, a wait still drives the tries, but after
 * two minutes without a server they would be up to 120 s apart: not tested, too long.) */
static void test_the_c_worker_connects_soon_after_its_server_comes(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-worker-late");
    dt_grpc_server_stop(c.srv);   /* its port free again: the server comes later */
    c.srv = NULL;
    const char *err_path = test_path(c.f.dir, "worker-stderr.txt");
    setenv("DTASK_SERVER", c.target, 1);
    pid_t pid = spawn_worker(err_path);
    unsetenv("DTASK_SERVER");
    wait_for_text(err_path, "cannot reach the server");
    test_sleep_ms(8000);

    dt_error err = {0};
    dt_grpc_options o = {.listen = c.target};
    assert_ok(dt_grpc_server_start(c.f.hub, &o, &c.srv, &err), &err);
    connected_and_working(&c, pid, err_path, 5000);
    fix_close(&c);
}

/* A worker the server refuses (a wrong token) while connected to it pauses its backoff between
 * tries as when the server is away: it once retried at once, a core's worth of Hello calls. */
static void test_a_refused_worker_waits_between_tries(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "cli-worker-refused", NULL);
    guarded g;
    guarded_open(&f, "the-right-token", "a-wrong-token", &g);
    char err_path[600];
    snprintf(err_path, sizeof err_path, "%s", test_path(f.dir, "worker-stderr.txt"));
    char *argv[] = {DTASK_BIN, "worker", "--server", g.target, "--token-file", g.token, NULL};
    pid_t pid = spawn_worker_args(err_path, argv);
    wait_for_text(err_path, "refused the worker");
    long before = cpu_ms(pid);
    test_sleep_ms(4000);
    long used = cpu_ms(pid) - before;
    assert_int_equal(stop_child(pid), 0);
    dt_grpc_server_stop(g.srv);
    hubfix_close(&f);
    print_message("a refused worker used %ld ms of CPU in 4 s\n", used);
    assert_true(used < 250);   /* 0-10 ms measured; the loop took 1,850 (360 beside 6 busy cores) */
}

/* `dtask demo` (what `make run` runs) keeps to a database of its own, so it neither takes
 * nor leaves work in the one `dtask serve` uses by default. */
static void test_the_demo_uses_a_database_of_its_own(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-demo");
    c.cwd = c.f.dir;
    DTASK_RAW(&c, "demo");
    expect(&c, 0, "/dtask-data/demo.db", NULL);
    assert_non_null(strstr(c.out, "Completed"));
    assert_int_equal(access(test_path(c.f.dir, "dtask-data/demo.db"), F_OK), 0);
    assert_int_not_equal(access(test_path(c.f.dir, "dtask-data/dtask.db"), F_OK), 0);
    c.cwd = NULL;
    fix_close(&c);
}

/* migrate brings a database to this build's schema and says which version; a database of a
 * newer version is refused naming both, and left as it was; --schema is for PostgreSQL. */
static void test_migrate_says_the_version_and_refuses_a_newer_database(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-migrate");
    char db[1200];   /* test_path's buffer is run()'s too */
    snprintf(db, sizeof db, "%s", test_path(c.f.dir, "m/dt.db"));
    DTASK_RAW(&c, "migrate", "--db", db);
    expect(&c, 0, "SQLite schema version 8: up to date", NULL);
    DTASK_RAW(&c, "migrate", "--db", db);
    expect(&c, 0, "SQLite schema version 8: up to date", NULL);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "PRAGMA user_version = 42", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    DTASK_RAW(&c, "migrate", "--db", db);
    expect(&c, 1, NULL, "schema version 42");
    DTASK_RAW(&c, "migrate", "--db", db, "--schema", "x");
    expect(&c, 2, NULL, "--schema is for a PostgreSQL --db only");
    fix_close(&c);
}

/* ---- one instance --------------------------------------------------------------------------- */

static void test_start_status_history_of_a_completed_instance(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-start");
    DTASK(&c, "start", "echo_orch", "--id", "s1", "--input", "{\"a\":[1,2.50]}");
    expect(&c, 0, NULL, NULL);
    assert_string_equal(c.out, "s1\n");
    DTASK(&c, "wait", "s1");
    expect(&c, 0, "{\"a\":[1,2.50]}", NULL);
    DTASK(&c, "status", "s1");
    expect(&c, 0, "status:          Completed", NULL);
    assert_non_null(strstr(c.out, "name:            echo_orch"));
    assert_non_null(strstr(c.out, "output:          {\"a\":[1,2.50]}"));
    DTASK(&c, "status", "s1", "--no-payloads");
    expect(&c, 0, "Completed", NULL);
    assert_null(strstr(c.out, "output:"));
    /* --json: one object; payloads embedded as the JSON they are, byte for byte */
    DTASK(&c, "status", "s1", "--json");
    expect(&c, 0, "\"output\":{\"a\":[1,2.50]}", NULL);
    json_t *j = json_of(&c);
    assert_string_equal(json_string_value(json_object_get(j, "instanceId")), "s1");
    assert_string_equal(json_string_value(json_object_get(j, "runtimeStatus")), "Completed");
    assert_true(json_is_array(json_object_get(json_object_get(j, "input"), "a")));
    assert_true(json_is_null(json_object_get(j, "failureDetails")));
    json_decref(j);
    /* history: the table dtask demo prints, and the JSON array */
    DTASK(&c, "history", "s1");
    expect(&c, 0, "ExecutionStarted", NULL);
    assert_non_null(strstr(c.out, "TaskScheduled"));
    assert_non_null(strstr(c.out, "echo#0"));
    assert_non_null(strstr(c.out, "ExecutionCompleted"));
    DTASK(&c, "history", "s1", "--json");
    expect(&c, 0, NULL, NULL);
    j = json_of(&c);
    dt_event *ev;
    size_t n;
    ev = hubfix_history(&c.f, "s1", &n);
    assert_int_equal(json_array_size(j), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, i), "type")),
                            dt_event_type_name(ev[i].type));
    json_decref(j);
    /* a generated id, and a start in the future */
    DTASK(&c, "start", "echo_orch");
    expect(&c, 0, NULL, NULL);
    assert_int_equal(strlen(c.out), 37);
    DTASK(&c, "start", "echo_orch", "--id", "later", "--start-at", "+3600");
    expect(&c, 0, "later\n", NULL);
    DTASK(&c, "status", "later");
    expect(&c, 0, "Pending", NULL);
    assert_non_null(strstr(c.out, "scheduled start:"));
    DTASK(&c, "start", "echo_orch", "--id", "later");
    expect(&c, 1, NULL, "ALREADY_EXISTS");
    fix_close(&c);
}

static void test_missing_instance_exits_3_naming_it(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-missing");
    char want[128];
    snprintf(want, sizeof want, "no instance 'nope' on %s", c.target);
    const char *cmds[][3] = {{"status", "nope", NULL}, {"history", "nope", NULL},
                             {"wait", "nope", NULL},   {"raise", "nope", "go"},
                             {"terminate", "nope", NULL}, {"suspend", "nope", NULL},
                             {"resume", "nope", NULL}, {"restart", "nope", NULL},
                             {"purge", "nope", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *args[] = {cmds[i][0], cmds[i][1], "--server", c.target, cmds[i][2], NULL};
        run(&c, false, args);
        expect(&c, 3, NULL, want);
        assert_string_equal(c.out, "");
    }
    fix_close(&c);
}

static void test_suspend_resume_raise_and_terminate(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-lifecycle");
    DTASK(&c, "start", "event_orch", "--id", "e1");
    expect(&c, 0, "e1\n", NULL);
    DTASK(&c, "wait", "e1", "--for", "start");
    expect(&c, 0, "Running", NULL);
    DTASK(&c, "suspend", "e1", "--reason", "maintenance");
    expect(&c, 0, NULL, NULL);
    wait_status(&c, "e1", DT_STATUS_SUSPENDED);
    DTASK(&c, "status", "e1");
    expect(&c, 0, "Suspended", NULL);
    DTASK(&c, "resume", "e1", "--reason", "done");
    expect(&c, 0, NULL, NULL);
    wait_status(&c, "e1", DT_STATUS_RUNNING);
    DTASK(&c, "raise", "e1", "go", "--data", "\"x\"");
    expect(&c, 0, NULL, NULL);
    DTASK(&c, "wait", "e1", "--json");
    expect(&c, 0, "\"runtimeStatus\":\"Completed\"", NULL);
    assert_non_null(strstr(c.out, "\"output\":\"x\""));
    DTASK(&c, "history", "e1");
    expect(&c, 0, "ExecutionSuspended", NULL);
    assert_non_null(strstr(c.out, "ExecutionResumed"));
    assert_non_null(strstr(c.out, "EventRaised"));
    /* terminate: wait then reports it ended Terminated, exit 1 */
    DTASK(&c, "start", "event_orch", "--id", "t1");
    DTASK(&c, "terminate", "t1", "--output", "\"stopped\"");
    expect(&c, 0, NULL, NULL);
    DTASK(&c, "wait", "t1");
    expect(&c, 1, "Terminated", "instance 't1' ended Terminated");
    DTASK(&c, "status", "t1");
    expect(&c, 0, "output:          \"stopped\"", NULL);
    DTASK(&c, "terminate", "t1");
    expect(&c, 1, NULL, "FAILED_PRECONDITION");
    /* restart: under the same id, or a new one */
    DTASK(&c, "restart", "t1");
    expect(&c, 0, "t1\n", NULL);
    DTASK(&c, "raise", "t1", "go", "--data", "2");
    wait_done(&c, "t1");
    DTASK(&c, "restart", "t1", "--new-id");
    expect(&c, 0, NULL, NULL);
    assert_int_equal(strlen(c.out), 37);
    assert_null(strstr(c.out, "t1"));
    fix_close(&c);
}

static void test_wait_on_a_failed_instance_exits_1_and_prints_the_failure(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-waitfail");
    DTASK(&c, "start", "fail_orch", "--id", "f1");
    expect(&c, 0, "f1\n", NULL);
    DTASK(&c, "wait", "f1");
    expect(&c, 1, "status:          Failed", "instance 'f1' ended Failed: BoomError: it went boom");
    DTASK(&c, "status", "f1", "--json");
    json_t *j = json_of(&c);
    json_t *fd = json_object_get(j, "failureDetails");
    assert_string_equal(json_string_value(json_object_get(fd, "errorType")), "BoomError");
    assert_string_equal(json_string_value(json_object_get(fd, "errorMessage")), "it went boom");
    json_decref(j);
    /* rewind: it runs again (and, the code unchanged, fails again), the history says why */
    DTASK(&c, "rewind", "f1", "--reason", "try again");
    expect(&c, 0, NULL, NULL);
    DTASK(&c, "wait", "f1");
    expect(&c, 1, "status:          Failed", NULL);
    DTASK(&c, "history", "f1");
    expect(&c, 0, "ExecutionRewound", NULL);
    assert_non_null(strstr(c.out, "try again"));
    DTASK(&c, "start", "echo_orch", "--id", "ok1", "--input", "1");
    DTASK(&c, "wait", "ok1");
    DTASK(&c, "rewind", "ok1");
    expect(&c, 1, NULL, "only a Failed instance can be rewound");
    DTASK(&c, "rewind", "nobody");
    expect(&c, 3, NULL, "nobody");
    fix_close(&c);
}

static void test_wait_that_runs_out_of_time_exits_4_with_progress_lines(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-waittimeout");
    DTASK(&c, "start", "event_orch", "--id", "w1");
    wait_status(&c, "w1", DT_STATUS_RUNNING);
    DTASK(&c, "wait", "w1", "--timeout", "2.5");
    expect(&c, 4, NULL, "waiting for w1: Running, 2 s");
    assert_non_null(strstr(c.err, "instance 'w1' is still Running after "));
    assert_string_equal(c.out, "");
    /* a wait that ends: the instance finishes while dtask waits */
    DTASK(&c, "raise", "w1", "go", "--data", "7");
    DTASK(&c, "wait", "w1", "--timeout", "30");
    expect(&c, 0, "output:          7", NULL);
    fix_close(&c);
}

/* ---- many instances ------------------------------------------------------------------------- */

/* start_echo: start echo_orch as ID and wait for it. */
static void start_echo(cli_fix *c, const char *id)
{
    DTASK(c, "start", "echo_orch", "--id", id, "--input", "1");
    expect(c, 0, NULL, NULL);
    wait_done(c, id);
}

/* next_token: the token of the "next page:" hint on the last run's stderr, into BUF. */
static void next_token(cli_fix *c, char *buf, size_t n)
{
    const char *p = strstr(c->err, "next page: dtask list");
    if (p == NULL || (p = strstr(p, "--continuation ")) == NULL)
        fail_msg("no next-page hint: %s", c->err);
    p += strlen("--continuation ");
    snprintf(buf, n, "%.*s", (int)strcspn(p, "\n"), p);
}

static void test_list_pages_through_every_instance_once(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-list");
    const char *ids[] = {"l-1", "l-2", "l-3", "l-4", "l-5"};
    for (size_t i = 0; i < 5; i++)
        start_echo(&c, ids[i]);
    DTASK(&c, "start", "event_orch", "--id", "other");
    wait_status(&c, "other", DT_STATUS_RUNNING);
    /* one page of two, newest first, and the command for the next on stderr */
    DTASK(&c, "list", "--prefix", "l-", "--page-size", "2");
    expect(&c, 0, "l-5 ", "next page: dtask list --prefix l- --page-size 2");
    assert_int_equal(lines(c.out), 1 + 2);
    assert_true(strstr(c.out, "l-5 ") < strstr(c.out, "l-4 "));
    char token[128];
    next_token(&c, token, sizeof token);
    DTASK(&c, "list", "--prefix", "l-", "--page-size", "2", "--continuation", token);
    expect(&c, 0, "l-3 ", "next page:");
    assert_int_equal(lines(c.out), 1 + 2);
    assert_true(strstr(c.out, "l-3 ") < strstr(c.out, "l-2 "));
    assert_null(strstr(c.out, "l-5 "));
    /* --sort id: by instance id, whatever the creation order */
    DTASK(&c, "list", "--prefix", "l-", "--page-size", "2", "--sort", "id");
    expect(&c, 0, "l-1 ", "next page: dtask list --prefix l- --page-size 2 --sort id");
    assert_true(strstr(c.out, "l-1 ") < strstr(c.out, "l-2 "));
    assert_null(strstr(c.out, "l-5 "));
    /* --all: every instance exactly once, no hint */
    DTASK(&c, "list", "--all", "--page-size", "2");
    expect(&c, 0, NULL, NULL);
    assert_int_equal(lines(c.out), 1 + 6);
    for (size_t i = 0; i < 5; i++) {
        char row[16];
        snprintf(row, sizeof row, "%s ", ids[i]);
        assert_int_equal(count(c.out, row), 1);
    }
    assert_null(strstr(c.err, "next page"));
    /* JSON, and the filters */
    DTASK(&c, "list", "--all", "--page-size", "2", "--json", "--name", "echo_orch");
    json_t *j = json_of(&c);
    assert_int_equal(json_array_size(j), 5);
    json_decref(j);
    DTASK(&c, "list", "--status", "Running,Suspended");
    expect(&c, 0, "other ", NULL);
    assert_int_equal(lines(c.out), 1 + 1);
    DTASK(&c, "list", "--name", "event_orch", "--all");
    expect(&c, 0, "other ", NULL);
    assert_int_equal(lines(c.out), 1 + 1);
    /* versions: started with one, shown by status, filtered by list */
    DTASK(&c, "start", "echo_orch", "--id", "v-2", "--version", "2.0", "--input", "1");
    expect(&c, 0, "v-2", NULL);
    wait_done(&c, "v-2");
    DTASK(&c, "status", "v-2");
    expect(&c, 0, "2.0", NULL);
    DTASK(&c, "list", "--version", "2.0", "--all");
    expect(&c, 0, "v-2 ", NULL);
    assert_int_equal(lines(c.out), 1 + 1);
    DTASK(&c, "list", "--version", "", "--all", "--prefix", "l-");
    assert_int_equal(lines(c.out), 1 + 5);
    DTASK(&c, "purge", "v-2");
    DTASK(&c, "list", "--to", "-3600");
    expect(&c, 0, NULL, NULL);
    assert_int_equal(lines(c.out), 1);
    DTASK(&c, "list", "--from", "2000-01-01T00:00:00Z", "--to", "+3600", "--all");
    assert_int_equal(lines(c.out), 1 + 6);
    fix_close(&c);
}

static void test_purge_by_status_reports_the_count(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-purge");
    start_echo(&c, "p-1");
    start_echo(&c, "p-2");
    start_echo(&c, "p-3");
    DTASK(&c, "start", "fail_orch", "--id", "p-f");
    wait_done(&c, "p-f");
    DTASK(&c, "start", "event_orch", "--id", "p-r");
    wait_status(&c, "p-r", DT_STATUS_RUNNING);
    DTASK(&c, "purge", "--status", "Completed");
    expect(&c, 0, NULL, "purging...");
    assert_string_equal(c.out, "3\n");
    assert_non_null(strstr(c.err, "deleted 3"));
    DTASK(&c, "list", "--all");
    assert_int_equal(lines(c.out), 1 + 2);
    assert_null(strstr(c.out, "p-1"));
    DTASK(&c, "purge", "--status", "Completed");
    expect(&c, 0, "0\n", "deleted 0");
    /* one instance: only a finished one */
    DTASK(&c, "purge", "p-r");
    expect(&c, 1, NULL, "'p-r' is Running");
    DTASK(&c, "purge", "p-f");
    expect(&c, 0, NULL, NULL);
    assert_string_equal(c.out, "1\n");
    DTASK(&c, "status", "p-f");
    expect(&c, 3, NULL, "no instance 'p-f'");
    fix_close(&c);
}

/* ---- entities ------------------------------------------------------------------------------- */

/* run_batch: take the next entity work item within WAIT_MS (false: none came) and run it as a
 * counter: "add N" adds, "delete" leaves no state. Stands in for an SDK worker's entity. */
static bool run_batch(cli_fix *c, int64_t wait_ms)
{
    dt_work w = {0};
    dt_error err = {0};
    assert_ok(dt_hub_next_work(c->f.hub, wait_ms, 0, DT_WORK_ENTITY, NULL, NULL, &w, &err), &err);
    if (w.ent == NULL)
        return false;
    dt_entity_request req;
    dt_hub_entity_request(w.ent, &req);
    long long v = req.state ? atoll(req.state) : 0;
    bool gone = false;
    dt_entity_op_result results[64] = {{0}};
    assert_true(req.n_operations <= 64);
    for (size_t i = 0; i < req.n_operations; i++) {
        if (strcmp(req.operations[i].name, "delete") == 0)
            gone = true;
        else
            v += req.operations[i].input ? atoll(req.operations[i].input) : 0, gone = false;
    }
    char state[32];
    snprintf(state, sizeof state, "%lld", v);
    dt_entity_result res = {.results = results, .n_results = req.n_operations,
                            .state = gone ? NULL : state};
    assert_ok(dt_hub_complete_entity(c->f.hub, w.ent, &res, &err), &err);
    return true;
}

static void test_entity_signal_get_list_and_clean(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-entity");
    DTASK(&c, "entity", "get", "@counter@a");
    expect(&c, 3, NULL, "entity '@counter@a' has no state");
    DTASK(&c, "entity", "signal", "@Counter@a", "add", "5");
    expect(&c, 0, NULL, NULL);
    assert_string_equal(c.out, "");
    /* not run yet: no state, so listed only with --transient, with its message waiting */
    DTASK(&c, "entity", "list");
    expect(&c, 0, "locked by", NULL);
    assert_int_equal(lines(c.out), 1);
    DTASK(&c, "entity", "list", "--transient", "--json");
    expect(&c, 0, NULL, NULL);
    json_t *j = json_of(&c);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "entityId")),
                        "@counter@a");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "backlogQueueSize")),
                     1);
    json_decref(j);

    assert_true(run_batch(&c, 5000));
    DTASK(&c, "entity", "get", "@counter@a");
    expect(&c, 0, "entity:          @counter@a\n", NULL);
    assert_non_null(strstr(c.out, "state:           5\n"));
    assert_non_null(strstr(c.out, "backlog:         0\n"));
    assert_non_null(strstr(c.out, "locked by:       (none)\n"));
    DTASK(&c, "entity", "get", "@COUNTER@a", "--json");   /* the name is lowercased */
    expect(&c, 0, NULL, NULL);
    j = json_of(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "state")), 5);
    assert_true(json_is_null(json_object_get(j, "lockedBy")));
    assert_true(json_is_string(json_object_get(j, "lastModifiedAt")));
    json_decref(j);

    /* a scheduled signal is not run before its time */
    DTASK(&c, "entity", "signal", "@counter@a", "add", "10", "--at", "+60");
    expect(&c, 0, NULL, NULL);
    assert_false(run_batch(&c, 300));
    DTASK(&c, "entity", "get", "@counter@a", "--json");
    j = json_of(&c);
    assert_int_equal(json_integer_value(json_object_get(j, "state")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "backlogQueueSize")), 1);
    json_decref(j);

    /* a second entity; pages */
    DTASK(&c, "entity", "signal", "@counter@b", "add", "7");
    expect(&c, 0, NULL, NULL);
    assert_true(run_batch(&c, 5000));
    DTASK(&c, "entity", "list", "--state", "--page-size", "1");
    expect(&c, 0, "@counter@a", "more entities follow: add --all");
    assert_null(strstr(c.out, "@counter@b"));
    DTASK(&c, "entity", "list", "--state", "--page-size", "1", "--all");
    expect(&c, 0, "@counter@b", NULL);
    assert_int_equal(lines(c.out), 3);
    assert_non_null(strstr(c.out, "  7\n"));
    DTASK(&c, "entity", "list", "--prefix", "counter@b", "--json");
    j = json_of(&c);
    assert_int_equal(json_array_size(j), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "state")), 7);
    json_decref(j);

    /* "delete" leaves @counter@b empty, and its step removed it: nothing left to clean */
    DTASK(&c, "entity", "signal", "@counter@b", "delete");
    expect(&c, 0, NULL, NULL);
    assert_true(run_batch(&c, 5000));
    DTASK(&c, "entity", "get", "@counter@b");
    expect(&c, 3, NULL, "has no state");
    DTASK(&c, "entity", "clean", "--empty");
    expect(&c, 0, "removed 0 empty entities, released 0 orphaned locks\n", NULL);
    DTASK(&c, "entity", "list", "--transient");
    expect(&c, 0, "@counter@a", NULL);
    assert_null(strstr(c.out, "@counter@b"));
    fix_close(&c);
}

static void test_entity_bad_input_exits_2_naming_the_problem(void **state)
{
    (void)state;
    cli_fix c;
    fix_open(&c, "cli-entity-bad");
    DTASK_RAW(&c, "entity");
    expect(&c, 2, NULL, "usage: dtask entity");
    DTASK_RAW(&c, "entity", "frobnicate");
    expect(&c, 2, NULL, "unknown command 'frobnicate'");
    DTASK(&c, "entity", "get", "counter");
    expect(&c, 2, NULL, "dtask entity get: entity id 'counter' is not of the form @name@key");
    DTASK(&c, "entity", "get", "@@k");
    expect(&c, 2, NULL, "empty name");
    char id[120] = "@counter@";
    memset(id + 9, 'k', 92);   /* 101 characters */
    DTASK(&c, "entity", "signal", id, "add");
    expect(&c, 2, NULL, "101 characters long; at most 100");
    DTASK(&c, "entity", "signal", "@counter@k", "add", "{bad");
    expect(&c, 2, NULL, "INPUT is not valid JSON");
    DTASK(&c, "entity", "signal", "@counter@k", "");
    expect(&c, 2, NULL, "the operation OP is empty");
    DTASK(&c, "entity", "signal", "@counter@k");
    expect(&c, 2, NULL, "missing ID OP");
    DTASK(&c, "entity", "signal", "@counter@k", "add", "--at", "lunch");
    expect(&c, 2, NULL, "--at: 'lunch' is not a time");
    DTASK(&c, "entity", "list", "--page-size", "0");
    expect(&c, 2, NULL, "--page-size: '0'");
    DTASK(&c, "entity", "clean", "--all");
    expect(&c, 2, NULL, "unknown option '--all'");
    /* nothing reached the server */
    DTASK(&c, "entity", "list", "--transient");
    expect(&c, 0, NULL, NULL);
    assert_int_equal(lines(c.out), 1);
    DTASK_RAW(&c, "entity", "list", "--server", "127.0.0.1:1");
    expect(&c, 5, NULL, "cannot reach the server at 127.0.0.1:1");
    fix_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_has_help_and_the_exit_codes_are_documented),
        cmocka_unit_test(test_bad_json_exits_2_naming_the_flag_and_nothing_is_started),
        cmocka_unit_test(test_serve_refuses_limits_that_do_not_fit),
        cmocka_unit_test(test_unreachable_server_exits_5),
        cmocka_unit_test(test_a_server_that_requires_a_token_gets_it_from_the_token_file),
        cmocka_unit_test(test_the_c_worker_joins_a_server_that_requires_a_token),
        cmocka_unit_test_teardown(
            test_the_c_worker_takes_dtask_server_and_says_when_it_is_unreachable, kill_child),
        cmocka_unit_test_teardown(test_the_c_worker_connects_soon_after_its_server_comes,
                                  kill_child),
        cmocka_unit_test_teardown(test_a_refused_worker_waits_between_tries, kill_child),
        cmocka_unit_test(test_the_demo_uses_a_database_of_its_own),
        cmocka_unit_test(test_migrate_says_the_version_and_refuses_a_newer_database),
        cmocka_unit_test(test_start_status_history_of_a_completed_instance),
        cmocka_unit_test(test_missing_instance_exits_3_naming_it),
        cmocka_unit_test(test_suspend_resume_raise_and_terminate),
        cmocka_unit_test(test_wait_on_a_failed_instance_exits_1_and_prints_the_failure),
        cmocka_unit_test(test_wait_that_runs_out_of_time_exits_4_with_progress_lines),
        cmocka_unit_test(test_list_pages_through_every_instance_once),
        cmocka_unit_test(test_purge_by_status_reports_the_count),
        cmocka_unit_test(test_entity_signal_get_list_and_clean),
        cmocka_unit_test(test_entity_bad_input_exits_2_naming_the_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
