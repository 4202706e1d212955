/* wait_cmd.c — `dtask wait`: wait, on the server, for an instance to start or to finish. The
 * wait is made of short calls (WaitForInstanceCompletion with a 2 s deadline, repeated) so
 * that a progress line can go to stderr between them and --timeout is kept to the slice. */
#include <grpc/status.h>
#include <string.h>
#include <time.h>

#include "remote.h"

#define SLICE_MS 2000   /* one server-side wait call; a progress line after each */

static const cli_spec wait_spec = {
    "wait", "ID", 1, 1,
    "usage: dtask wait ID [--timeout SECONDS] [--for start|completion] [--json]\n"
    "                  [--server ADDR:PORT]\n\n"
    "Waits until instance ID finishes (or, with --for start, has started), printing a\n"
    "progress line on stderr every few seconds, then prints its state.\n\n"
    "Exits 0 when it completed (or started), 1 when it ended Failed, Terminated or Canceled\n"
    "(the failure is printed), 3 if there is no such instance when a 2 s call (or a\n"
    "shorter --timeout) ends (one started meanwhile is waited for), 4 on timeout.\n\n"
    "  --timeout SECONDS    give up after this long (default: wait as long as it takes)\n"
    "  --for start|completion  what to wait for (default completion)\n"
    "  --json               print the state as one JSON object\n"
    CLI_SERVER_HELP};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct wait_opts {
    const char *id;
    bool for_start, json;
    int64_t timeout_ms;   /* -1: none */
} wait_opts;

/* finish: print the state reached and choose the exit code. */
static int finish(const wait_opts *o, const dt_instance_state *s)
{
    if (o->json) {
        cli_print_state_json(stdout, s, true);
        fputc('\n', stdout);
    } else {
        cli_print_state(stdout, s, true);
    }
    if (o->for_start || s->status == DT_STATUS_COMPLETED)
        return CLI_EXIT_OK;
    fprintf(stderr, "dtask wait: instance '%s' ended %s", o->id,
            dt_runtime_status_name(s->status));
    if (s->failure) {
        fputs(": ", stderr);
        cli_print_failure(stderr, s->failure, "  ");
    } else {
        fputc('\n', stderr);
    }
    return CLI_EXIT_FAILED;
}

/* still_waiting: after a slice ran out, read the status for the progress line (or for the
 * timeout's message). Returns an exit code: OK to go on, TIMEOUT when time is up. */
static int still_waiting(cli_remote *r, const wait_opts *o, int64_t waited_ms, bool time_up)
{
    dt_instance_state *s = NULL;
    if (!cli_remote_reset_arena(r)) {
        fprintf(stderr, "dtask wait: out of memory\n");
        return CLI_EXIT_FAILED;
    }
    int rc = cli_get_state(r, o->id, false, &s);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (time_up) {
        fprintf(stderr, "dtask wait: instance '%s' is still %s after %.1f s\n", o->id,
                dt_runtime_status_name(s->status), (double)waited_ms / 1000);
        return CLI_EXIT_TIMEOUT;
    }
    fprintf(stderr, "waiting for %s: %s, %lld s\n", o->id, dt_runtime_status_name(s->status),
            (long long)(waited_ms / 1000));
    return CLI_EXIT_OK;
}

static int wait_loop(cli_remote *r, const wait_opts *o)
{
    Dtpb__GetInstanceRequest req = DTPB__GET_INSTANCE_REQUEST__INIT;
    req.instanceid = (char *)o->id;
    req.getinputsandoutputs = true;
    const char *method = o->for_start ? "WaitForInstanceStart" : "WaitForInstanceCompletion";
    int64_t t0 = monotonic_ms();
    for (;;) {
        int64_t waited = monotonic_ms() - t0;
        int64_t slice = SLICE_MS;
        if (o->timeout_ms >= 0 && o->timeout_ms - waited < slice)
            slice = o->timeout_ms - waited > 0 ? o->timeout_ms - waited : 1;
        void *m = NULL;
        dt_grpc_result res;
        if (cli_rpc_try(r, method, &req.base, &dtpb__get_instance_response__descriptor, slice,
                        &m, &res) == DT_OK) {
            dt_instance_state *s = NULL;
            int rc = cli_state_from_response(r, o->id, m, &s);
            return rc == CLI_EXIT_OK ? finish(o, s) : rc;
        }
        if (res.code != GRPC_STATUS_DEADLINE_EXCEEDED)
            return cli_rpc_fail(r, &res, o->id);
        waited = monotonic_ms() - t0;
        bool time_up = o->timeout_ms >= 0 && waited >= o->timeout_ms;
        int rc = still_waiting(r, o, waited, time_up);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
}

int cli_wait(int argc, char **argv)
{
    const char *timeout = NULL, *what = NULL;
    wait_opts o = {.timeout_ms = -1};
    const cli_opt opts[] = {{"--timeout", &timeout, NULL}, {"--for", &what, NULL},
                            {"--json", NULL, &o.json}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&wait_spec, opts, argc, argv, &a, &rc))
        return rc;
    o.id = a.pos[0];
    if (timeout && !cli_parse_seconds("wait", "--timeout", timeout, &o.timeout_ms))
        return CLI_EXIT_USAGE;
    if (what && strcmp(what, "start") != 0 && strcmp(what, "completion") != 0)
        return cli_usage_error("wait", "--for: '%s' is neither 'start' nor 'completion'", what);
    o.for_start = what && strcmp(what, "start") == 0;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "wait", &a)) != CLI_EXIT_OK)
        return rc;
    rc = wait_loop(&r, &o);
    cli_remote_close(&r);
    return rc;
}
