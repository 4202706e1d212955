/* helper_crash_worker.c — a worker process for test_crash: runs the crash orchestrations on
 * the database given as argv[1] until the instances PREFIX-000 .. PREFIX-(COUNT-1) (argv[2],
 * argv[3]) have all finished, then exits 0. The test kills it with SIGKILL part way. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "crash_common.h"
#include "durabletask/client.h"

static int all_done(dt_client *c, const char *prefix, int count)
{
    dt_arena *a = dt_arena_new();
    int done = a != NULL;
    for (int i = 0; i < count && done; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%03d", prefix, i);
        dt_instance_state *s = NULL;
        done = dt_client_get(c, id, a, &s, NULL) == DT_OK &&
               dt_runtime_status_is_terminal(s->status);
    }
    dt_arena_free(a);
    return done;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: helper_crash_worker DB PREFIX COUNT\n");
        return 2;
    }
    dt_hub_options o = {.db_path = argv[1], .lease_ms = CRASH_LEASE_MS};
    dt_hub *hub = NULL;
    dt_worker *w = NULL;
    dt_client *c = NULL;
    dt_error err = {0};
    if (dt_hub_open(&o, &hub, &err) != DT_OK) {
        fprintf(stderr, "helper: %s\n", err.message);
        return 1;
    }
    dt_worker_options wo = {.orchestration_threads = 2, .activity_threads = 4};
    if (dt_worker_new(&w) != DT_OK || crash_register(w) != DT_OK ||
        dt_worker_start(w, hub, &wo, &err) != DT_OK || dt_client_new(hub, &c) != DT_OK) {
        fprintf(stderr, "helper: cannot start: %s\n", err.message);
        return 1;
    }
    while (!all_done(c, argv[2], atoi(argv[3]))) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    dt_client_free(c);
    dt_worker_free(w);
    dt_hub_close(hub);
    return 0;
}
