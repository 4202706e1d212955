/* serve.c — `dtask serve`: the hub on a SQLite file with the Durable Task gRPC service, so
 * the Durable Task SDKs can use it as their backend. Runs until SIGINT or SIGTERM; then work
 * handed to remote workers is given back for redelivery and the database closed cleanly. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "durabletask/grpc.h"

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: dtask serve [--grpc-listen ADDR:PORT] [--db PATH]\n\n"
            "Runs a hub with the Durable Task gRPC service (TaskHubSidecarService). Point any\n"
            "Durable Task SDK at it as its backend.\n\n"
            "  --grpc-listen ADDR:PORT  where to listen (default 127.0.0.1:4001, loopback only)\n"
            "  --db PATH                SQLite database (default ./dtask-data/dtask.db)\n");
}

int cli_serve(int argc, char **argv)
{
    const char *listen = "127.0.0.1:4001";
    const char *db = "./dtask-data/dtask.db";
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--grpc-listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "dtask serve: unknown or incomplete argument '%s'\n", argv[i]);
            serve_usage(stderr);
            return 2;
        }
    }
    /* block the stop signals in every thread; this one waits for them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    dt_error err = {0};
    dt_hub *hub = NULL;
    dt_hub_options ho = {.db_path = db};
    if (dt_hub_open(&ho, &hub, &err) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", err.message);
        return 1;
    }
    dt_grpc_server *srv = NULL;
    dt_grpc_options go = {.listen = listen};
    if (dt_grpc_server_start(hub, &go, &srv, &err) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", err.message);
        dt_hub_close(hub);
        return 1;
    }
    fprintf(stderr, "dtask serve: gRPC on %s (port %d), database %s\n", listen,
            dt_grpc_server_port(srv), db);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "dtask serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    dt_grpc_server_stop(srv);
    dt_hub_close(hub);
    return 0;
}
