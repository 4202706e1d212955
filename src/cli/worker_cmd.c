/* worker_cmd.c — `dtask worker`: the demo's C orchestrators and activities as a remote worker
 * of a Durable Task gRPC server, until SIGINT or SIGTERM. It is how C work joins a hub that
 * other SDKs use too (tests/conformance mixes it with JavaScript workers). It takes the same
 * --server and --token-file (and $DTASK_SERVER, $DTASK_TOKEN_FILE) as the operator commands,
 * and says on stderr when it reaches the server and when it cannot. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "durabletask/remote.h"

static const cli_spec worker_spec = {
    "worker", "", 0, 0,
    "usage: dtask worker [--server ADDR:PORT] [--token-file PATH] [--taskhub NAME]\n\n"
    "Runs the demo's C orchestrators (hello_cities, hello_one, c_calls_js) and activities\n"
    "(say_hello, c_greet) as a remote worker of a Durable Task gRPC server, until SIGINT or\n"
    "SIGTERM.\n\n"
    CLI_SERVER_HELP};

int cli_worker(int argc, char **argv)
{
    const cli_opt opts[] = {{NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&worker_spec, opts, argc, argv, &a, &rc))
        return rc;
    char *token = NULL;
    char msg[512];
    if (a.token_file && !cli_read_token(a.token_file, &token, msg, sizeof msg)) {
        fprintf(stderr, "dtask worker: %s\n", msg);
        return CLI_EXIT_USAGE;
    }
    dt_log_set_level(DT_LOG_INFO);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    dt_worker *w = NULL;
    dt_remote_worker *rw = NULL;
    dt_error err = {0};
    dt_remote_options ro = {.token = token, .task_hub = a.task_hub};
    if (dt_worker_new(&w) != DT_OK || cli_register_demo(w) != DT_OK ||
        dt_remote_worker_start(w, a.server, &ro, &rw, &err) != DT_OK) {
        fprintf(stderr, "dtask worker: %s\n", err.message[0] ? err.message : "cannot start");
        dt_worker_free(w);
        free(token);
        return CLI_EXIT_FAILED;
    }
    /* the remote worker logs at INFO when it reaches the server, at WARN when it cannot */
    fprintf(stderr, "dtask worker: working for %s%s\n", a.server,
            token ? " with a bearer token" : "");
    int sig = 0;
    sigwait(&stop, &sig);
    dt_remote_worker_stop(rw);
    dt_worker_free(w);
    free(token);
    return CLI_EXIT_OK;
}
