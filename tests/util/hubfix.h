/* hubfix.h — a hub, worker and client on a fresh SQLite file, for end-to-end tests. */
#ifndef DT_HUBFIX_H
#define DT_HUBFIX_H

#include "durabletask/client.h"
#include "durabletask/sdk.h"
#include "testutil.h"

typedef struct hubfix {
    char dir[512];
    char db[1024];       /* the SQLite file, or, on PostgreSQL, the server's URL */
    char schema[64];     /* on PostgreSQL: the fixture's own schema ("" on SQLite) */
    dt_hub *hub;
    dt_worker *worker;
    dt_client *client;
    dt_arena *arena;     /* for results read by the test; freed by hubfix_close */
} hubfix;

/* hubfix_open: everything but the worker's registrations and start. With
 * DT_TEST_BACKEND=postgres (ctest's e2e-pg/ tests), the hub is on the PostgreSQL server whose
 * URL DT_TEST_PG_URL_FILE holds, in a schema of the fixture's own. */
void hubfix_open(hubfix *f, const char *name, const dt_hub_options *opts);

/* hubfix_start: start the worker's dispatch loops. */
void hubfix_start(hubfix *f);

/* hubfix_run: start NAME with INPUT and wait for it to finish (60 s); returns its state. */
dt_instance_state *hubfix_run(hubfix *f, const char *name, const char *input,
                              char id[DT_INSTANCE_ID_MAX + 1]);

/* hubfix_history: the history of ID. */
dt_event *hubfix_history(hubfix *f, const char *id, size_t *n);

/* hubfix_count: how many events of TYPE the history has. */
size_t hubfix_count(const dt_event *ev, size_t n, dt_event_type type);

void hubfix_close(hubfix *f);

/* Activities several tests share: echo returns its input; sleepy sleeps for its input in
 * milliseconds and returns it. */
dt_status hubfix_echo(dt_actx *ctx, const char *input, const char **output);
dt_status hubfix_sleepy(dt_actx *ctx, const char *input, const char **output);

/* A chain: hubfix_inc returns its input, an integer, plus one; hubfix_chain calls the activity
 * "inc" as many times in a row as its input says, each on the output of the one before,
 * starting from 0, and outputs the last result. */
dt_status hubfix_inc(dt_actx *ctx, const char *input, const char **output);
dt_status hubfix_chain(dt_octx *ctx, const char *input, const char **output);

#endif
