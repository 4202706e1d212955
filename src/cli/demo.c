/* demo.c — `dtask demo`: an embedded hub on a SQLite file of its own (not `dtask serve`'s)
 * runs the hello_cities orchestration (three chained calls of say_hello) and prints its output
 * and its history as a table. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "durabletask/client.h"
#include "durabletask/sdk.h"

/* say_hello: "Tokyo" -> "Hello Tokyo!". The input is a JSON string; a non-string fails. */
static dt_status say_hello(dt_actx *ctx, const char *input, const char **output)
{
    size_t n = input ? strlen(input) : 0;
    if (n < 2 || input[0] != '"' || input[n - 1] != '"')
        return dt_activity_fail(ctx, "InvalidInput", "say_hello wants a JSON string, got %s",
                                input ? input : "nothing");
    *output = dt_activity_printf(ctx, "\"Hello %.*s!\"", (int)(n - 2), input + 1);
    return DT_OK;
}

static dt_status hello_cities(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Tokyo\"", NULL));
    const char *b = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Seattle\"", NULL));
    const char *c = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"London\"", NULL));
    *output = dt_printf(ctx, "[%s,%s,%s]", a, b, c);
    return DT_OK;
}

/* hello_one: say_hello of its input; an input that is not a JSON string fails it (the HTTP
 * and dashboard tests use that for failed instances to rewind). */
static dt_status hello_one(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "say_hello", input, NULL));
    return DT_OK;
}

/* hello_parent: hello_one of its input as a sub-orchestration (the dashboard's tests link a
 * child to its parent with it). */
static dt_status hello_parent(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_sub_orchestrator(ctx, "hello_one", input, NULL));
    return DT_OK;
}

/* c_greet: "Ada" -> "Hello Ada from C!"; called by other languages' orchestrators. */
static dt_status c_greet(dt_actx *ctx, const char *input, const char **output)
{
    size_t n = input ? strlen(input) : 0;
    if (n < 2 || input[0] != '"' || input[n - 1] != '"')
        return dt_activity_fail(ctx, "InvalidInput", "c_greet wants a JSON string, got %s",
                                input ? input : "nothing");
    *output = dt_activity_printf(ctx, "\"Hello %.*s from C!\"", (int)(n - 2), input + 1);
    return DT_OK;
}

/* c_calls_js: a C orchestrator calling js_shout, an activity another language provides. */
static dt_status c_calls_js(dt_octx *ctx, const char *input, const char **output)
{
    const char *shouted = dt_await(ctx, dt_call_activity(ctx, "js_shout", input, NULL));
    *output = dt_printf(ctx, "{\"from\":\"C\",\"got\":%s}", shouted ? shouted : "null");
    return DT_OK;
}

/* c_counter: an entity other languages call: add N (default 1) and get. */
static dt_status c_counter(dt_ectx *ctx, const char *op, const char *input, const char **output)
{
    const char *state = dt_entity_get_state(ctx);
    long v = state ? atol(state) : 0;
    if (strcmp(op, "add") == 0) {
        v += input && *input ? atol(input) : 1;
        *output = dt_entity_printf(ctx, "%ld", v);
        return dt_entity_set_state(ctx, *output);
    }
    if (strcmp(op, "get") == 0) {
        *output = dt_entity_printf(ctx, "%ld", v);
        return DT_OK;
    }
    return dt_entity_fail(ctx, "UnknownOperation", "c_counter has no operation '%s'", op);
}

/* c_calls_js_entity: a C orchestrator calling js_counter, an entity another language
 * provides, keyed by its input (a JSON string): add 5, then get. */
static dt_status c_calls_js_entity(dt_octx *ctx, const char *input, const char **output)
{
    size_t n = input ? strlen(input) : 0;
    if (n < 2 || input[0] != '"')
        return dt_fail(ctx, "InvalidInput", "c_calls_js_entity wants a JSON string key");
    const char *id = dt_printf(ctx, "@js_counter@%.*s", (int)(n - 2), input + 1);
    dt_await(ctx, dt_call_entity(ctx, id, "add", "5"));
    const char *got = dt_await(ctx, dt_call_entity(ctx, id, "get", NULL));
    *output = dt_printf(ctx, "{\"from\":\"C\",\"got\":%s}", got ? got : "null");
    return DT_OK;
}

dt_status cli_register_demo(dt_worker *w)
{
    dt_status st = dt_worker_add_orchestrator(w, "hello_cities", hello_cities, NULL);
    if (st == DT_OK)
        st = dt_worker_add_orchestrator(w, "hello_one", hello_one, NULL);
    if (st == DT_OK)
        st = dt_worker_add_orchestrator(w, "c_calls_js", c_calls_js, NULL);
    if (st == DT_OK)
        st = dt_worker_add_orchestrator(w, "hello_parent", hello_parent, NULL);
    if (st == DT_OK)
        st = dt_worker_add_activity(w, "say_hello", say_hello, NULL);
    if (st == DT_OK)
        st = dt_worker_add_activity(w, "c_greet", c_greet, NULL);
    if (st == DT_OK)
        st = dt_worker_add_orchestrator(w, "c_calls_js_entity", c_calls_js_entity, NULL);
    if (st == DT_OK)
        st = dt_worker_add_entity(w, "c_counter", c_counter, NULL);
    return st;
}

int cli_demo(int argc, char **argv)
{
    const char *db = CLI_DEMO_DB_PATH;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: dtask demo [--db PATH]\n\n"
                   "Runs the hello_cities orchestration on an embedded hub and prints its\n"
                   "output and history. PATH defaults to " CLI_DEMO_DB_PATH ", a database\n"
                   "of its own: `dtask serve` uses " DT_DEFAULT_DB_PATH ".\n");
            return 0;
        } else {
            fprintf(stderr, "dtask demo: unknown argument '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    dt_error err = {0};
    dt_hub *hub = NULL;
    dt_worker *w = NULL;
    dt_client *c = NULL;
    dt_arena *arena = NULL;
    int rc = 1;
    dt_hub_options ho = {.db_path = db};
    if (dt_hub_open(&ho, &hub, &err) != DT_OK) {
        fprintf(stderr, "dtask demo: %s\n", err.message);
        return 1;
    }
    char abs[PATH_MAX];
    printf("database: %s (SQLite, WAL, synchronous=FULL)\n", realpath(db, abs) ? abs : db);
    if (dt_worker_new(&w) != DT_OK || cli_register_demo(w) != DT_OK ||
        dt_worker_start(w, hub, NULL, &err) != DT_OK || dt_client_new(hub, &c) != DT_OK ||
        (arena = dt_arena_new()) == NULL) {
        fprintf(stderr, "dtask demo: cannot start the worker: %s\n", err.message);
        goto out;
    }
    char id[DT_INSTANCE_ID_MAX + 1];
    if (dt_client_start(c, "hello_cities", NULL, id, &err) != DT_OK) {
        fprintf(stderr, "dtask demo: start failed: %s\n", err.message);
        goto out;
    }
    printf("started instance %s of hello_cities\n", id);
    dt_instance_state *s = NULL;
    if (dt_client_wait_completion(c, id, 60000, arena, &s, &err) != DT_OK) {
        fprintf(stderr, "dtask demo: %s\n", err.message);
        goto out;
    }
    printf("status: %s\n", dt_runtime_status_name(s->status));
    if (s->status != DT_STATUS_COMPLETED) {
        fprintf(stderr, "dtask demo: failed: %s\n", s->failure ? s->failure->message : "");
        goto out;
    }
    printf("output: %s\n\nhistory:\n", s->output ? s->output : "null");
    dt_event *ev = NULL;
    size_t n = 0;
    if (dt_client_get_history(c, id, arena, &ev, &n, &err) != DT_OK) {
        fprintf(stderr, "dtask demo: history: %s\n", err.message);
        goto out;
    }
    cli_print_history(stdout, ev, n);
    rc = 0;
out:
    dt_arena_free(arena);
    dt_client_free(c);
    dt_worker_free(w);
    dt_hub_close(hub);
    return rc;
}
