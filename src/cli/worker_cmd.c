/* worker_cmd.c — `dtask worker`: the demo's C orchestrators and activities as a remote worker
 * of a Durable Task gRPC server, until SIGINT or SIGTERM. It is how C work joins a hub that
 * other SDKs use too (tests/conformance mixes it with JavaScript workers). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "durabletask/remote.h"

static void worker_usage(FILE *out)
{
    fprintf(out, "usage: dtask worker [--server ADDR:PORT]\n\n"
                 "Runs the demo's C orchestrators (hello_cities, c_calls_js) and activities\n"
                 "(say_hello, c_greet) as a remote worker of a Durable Task gRPC server\n"
                 "(default " DT_DEFAULT_GRPC_ADDRESS ").\n");
}

int cli_worker(int argc, char **argv)
{
    const char *server = DT_DEFAULT_GRPC_ADDRESS;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            server = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            worker_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "dtask worker: unknown or incomplete argument '%s'\n", argv[i]);
            worker_usage(stderr);
            return 2;
        }
    }
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    dt_worker *w = NULL;
    dt_remote_worker *rw = NULL;
    dt_error err = {0};
    if (dt_worker_new(&w) != DT_OK || cli_register_demo(w) != DT_OK ||
        dt_remote_worker_start(w, server, NULL, &rw, &err) != DT_OK) {
        fprintf(stderr, "dtask worker: %s\n", err.message[0] ? err.message : "cannot start");
        dt_worker_free(w);
        return 1;
    }
    fprintf(stderr, "dtask worker: serving %s\n", server);
    int sig = 0;
    sigwait(&stop, &sig);
    dt_remote_worker_stop(rw);
    dt_worker_free(w);
    return 0;
}
