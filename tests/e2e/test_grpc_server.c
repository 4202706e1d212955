/* test_grpc_server.c — the gRPC service as any client sees it: what it answers for methods we
 * do not serve, malformed, oversized and non-UTF-8 messages, invalid and unknown instances,
 * stale completion tokens — each refused with the fitting status and a clear message, the
 * server serving on and nothing stored — plus the C SDK's remote worker running real work
 * through it. (The official JavaScript SDK's view is tests/conformance/.) */
#include <grpc/status.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>

#include "durabletask.pb-c.h"
#include "durabletask/grpc.h"
#include "durabletask/hub.h"
#include "durabletask/grpc_client.h"
#include "durabletask/remote.h"
#include "hubfix.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes(void);   /* the sanitizer runtime's */
#endif

/* A C SDK worker running remotely: its registry and the remote worker that runs it. */
typedef struct remote {
    dt_worker *w;
    dt_remote_worker *r;
} remote;

/* remote_start: run W for the server at TARGET; the test fails if it cannot start. */
static remote remote_start(dt_worker *w, const char *target, const dt_remote_options *o)
{
    remote rw = {w, NULL};
    dt_error err = {0};
    assert_ok(dt_remote_worker_start(w, target, o, &rw.r, &err), &err);
    return rw;
}

static void remote_free(remote *rw)
{
    dt_remote_worker_stop(rw->r);
    dt_worker_free(rw->w);
}

typedef struct server_fix {
    hubfix f;
    dt_grpc_server *srv;
    dt_grpc_conn *conn;
    char target[64];
} server_fix;

/* server_open_with: a server as OPTS say (listen and max_message set here) */
static void server_open_with(server_fix *s, const char *name, dt_grpc_options o)
{
    hubfix_open(&s->f, name, NULL);
    dt_error err = {0};
    o.listen = "127.0.0.1:0";
    o.max_message = 1 << 20;
    assert_ok(dt_grpc_server_start(s->f.hub, &o, &s->srv, &err), &err);
    snprintf(s->target, sizeof s->target, "127.0.0.1:%d", dt_grpc_server_port(s->srv));
    assert_ok(dt_grpc_conn_open(s->target, &s->conn, &err), &err);
}

static void server_open(server_fix *s, const char *name)
{
    server_open_with(s, name, (dt_grpc_options){0});
}

static void server_close(server_fix *s)
{
    dt_grpc_conn_close(s->conn);
    dt_grpc_server_stop(s->srv);
    hubfix_close(&s->f);
}

/* call: a unary call with raw bytes; the response (if any) in *RESP (malloc'd) */
static dt_grpc_result call_raw(server_fix *s, const char *method, const uint8_t *req, size_t len,
                               uint8_t **resp, size_t *resp_len)
{
    dt_grpc_result res = {0};
    uint8_t *r = NULL;
    size_t n = 0;
    assert_ok(dt_grpc_unary(s->conn, method, req, len, 30000, &r, &n, &res), NULL);
    if (resp) {
        *resp = r;
        *resp_len = n;
    } else {
        free(r);
    }
    return res;
}

static dt_grpc_result call_msg(server_fix *s, const char *method, const ProtobufCMessage *m,
                               uint8_t **resp, size_t *resp_len)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(m, buf);
    dt_grpc_result r = call_raw(s, method, buf, len, resp, resp_len);
    free(buf);
    return r;
}

static void expect(dt_grpc_result r, int code, const char *needle)
{
    if (r.code != code)
        fail_msg("status %d (%s), want %d", r.code, r.details, code);
    if (needle && strstr(r.details, needle) == NULL)
        fail_msg("details '%s' do not mention '%s'", r.details, needle);
}

/* still_serving: Hello answers OK */
static void still_serving(server_fix *s)
{
    expect(call_raw(s, "Hello", (const uint8_t *)"", 0, NULL, NULL), GRPC_STATUS_OK, NULL);
}

static dt_grpc_result start(server_fix *s, const char *name, const char *id, const char *input)
{
    Dtpb__CreateInstanceRequest r = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    Dtpb__StringValue in = DTPB__STRING_VALUE__INIT;
    r.name = (char *)name;
    r.instanceid = (char *)id;
    if (input) {
        in.value = (char *)input;
        r.input = &in;
    }
    return call_msg(s, "StartInstance", &r.base, NULL, NULL);
}

/* ---- refusals ------------------------------------------------------------------------------ */

static void test_unknown_and_unsupported_methods_are_unimplemented_and_named(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-unknown");
    expect(call_raw(&s, "NoSuchMethod", (const uint8_t *)"", 0, NULL, NULL),
           GRPC_STATUS_UNIMPLEMENTED, "NoSuchMethod");
    expect(call_raw(&s, "SkipGracefulOrchestrationTerminations", (const uint8_t *)"", 0, NULL,
                    NULL),
           GRPC_STATUS_UNIMPLEMENTED, "SkipGracefulOrchestrationTerminations");
    /* entity calls are served: an empty GetEntity names no entity id */
    expect(call_raw(&s, "GetEntity", (const uint8_t *)"", 0, NULL, NULL),
           GRPC_STATUS_INVALID_ARGUMENT, "entity id is empty");
    still_serving(&s);
    server_close(&s);
}

static void test_malformed_and_oversized_messages_are_refused(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-malformed");
    /* a field 1 length that runs past the end */
    const uint8_t junk[] = {0x0a, 0x7f, 'a', 'b'};
    expect(call_raw(&s, "StartInstance", junk, sizeof junk, NULL, NULL),
           GRPC_STATUS_INVALID_ARGUMENT, "StartInstance");
    /* over the 1 MiB limit this server was started with */
    size_t big = (1 << 20) + 100;
    uint8_t *huge = calloc(1, big);
    dt_grpc_result r = call_raw(&s, "StartInstance", huge, big, NULL, NULL);
    free(huge);
    assert_int_equal(r.code, GRPC_STATUS_RESOURCE_EXHAUSTED);
    still_serving(&s);
    /* nothing was stored */
    dt_instance_state *st;
    size_t n = 0;
    const char *next = NULL;
    dt_query q = {0};
    assert_ok(dt_client_query(s.f.client, &q, s.f.arena, &st, &n, &next, NULL), NULL);
    assert_int_equal(n, 0);
    server_close(&s);
}

static void test_bad_ids_and_text_get_invalid_argument_and_nothing_is_stored(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-badinput");
    dt_instance_state *st0;
    expect(start(&s, "o", "a/b", NULL), GRPC_STATUS_INVALID_ARGUMENT, "'/'");
    char long_id[120];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    expect(start(&s, "o", long_id, NULL), GRPC_STATUS_INVALID_ARGUMENT, "100");
    expect(start(&s, "o", "j1", "{not json"), GRPC_STATUS_INVALID_ARGUMENT, "JSON");
    expect(start(&s, "o", "u1", "\"\xff\xfe\""), GRPC_STATUS_INVALID_ARGUMENT, "UTF-8");
    /* names and ids keep core's rules (dt_name_validate): bytes that are not UTF-8 are
     * refused at the wire, the rest by the hub, each naming the field */
    expect(start(&s, "o\xff", "u2", NULL), GRPC_STATUS_INVALID_ARGUMENT, "name is not valid UTF-8");
    expect(start(&s, "o", "u3\xc3", NULL), GRPC_STATUS_INVALID_ARGUMENT,
           "instanceId is not valid UTF-8");
    expect(start(&s, "o\nERROR forged", "c1", NULL), GRPC_STATUS_INVALID_ARGUMENT,
           "orchestrator name has a control character (0x0a)");
    char long_name[300];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    expect(start(&s, long_name, "c2", NULL), GRPC_STATUS_INVALID_ARGUMENT, "at most 256");
    still_serving(&s);
    assert_int_equal(dt_client_get(s.f.client, "c1", s.f.arena, &st0, NULL), DT_ERR_NOT_FOUND);
    assert_int_equal(dt_client_get(s.f.client, "c2", s.f.arena, &st0, NULL), DT_ERR_NOT_FOUND);
    dt_instance_state *st;
    assert_int_equal(dt_client_get(s.f.client, "j1", s.f.arena, &st, NULL), DT_ERR_NOT_FOUND);
    assert_int_equal(dt_client_get(s.f.client, "u1", s.f.arena, &st, NULL), DT_ERR_NOT_FOUND);
    /* a good start still works, and a second one with the same id is ALREADY_EXISTS */
    expect(start(&s, "o", "ok-1", "1"), GRPC_STATUS_OK, NULL);
    expect(start(&s, "o", "ok-1", "2"), GRPC_STATUS_ALREADY_EXISTS, "ok-1");
    server_close(&s);
}

static void test_tags_given_at_start_are_in_the_state(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-tags");
    Dtpb__CreateInstanceRequest r = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    Dtpb__CreateInstanceRequest__TagsEntry t1 = DTPB__CREATE_INSTANCE_REQUEST__TAGS_ENTRY__INIT;
    Dtpb__CreateInstanceRequest__TagsEntry t2 = DTPB__CREATE_INSTANCE_REQUEST__TAGS_ENTRY__INIT;
    Dtpb__CreateInstanceRequest__TagsEntry *tags[2] = {&t1, &t2};
    t1.key = "env";
    t1.value = "test";
    t2.key = "owner";
    t2.value = "durable \"q\"";
    r.name = "o";
    r.instanceid = "tags-1";
    r.tags = tags;
    r.n_tags = 2;
    expect(call_msg(&s, "StartInstance", &r.base, NULL, NULL), GRPC_STATUS_OK, NULL);
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = "tags-1";
    uint8_t *resp = NULL;
    size_t n = 0;
    expect(call_msg(&s, "GetInstance", &g.base, &resp, &n), GRPC_STATUS_OK, NULL);
    Dtpb__GetInstanceResponse *gr = dtpb__get_instance_response__unpack(NULL, n, resp);
    assert_non_null(gr);
    assert_true(gr->exists);
    Dtpb__OrchestrationState *st = gr->orchestrationstate;
    assert_int_equal(st->n_tags, 2);
    bool env = false, owner = false;
    for (size_t i = 0; i < st->n_tags; i++) {
        env |= strcmp(st->tags[i]->key, "env") == 0 && strcmp(st->tags[i]->value, "test") == 0;
        owner |= strcmp(st->tags[i]->key, "owner") == 0 &&
                 strcmp(st->tags[i]->value, "durable \"q\"") == 0;
    }
    assert_true(env && owner);
    dtpb__get_instance_response__free_unpacked(gr, NULL);
    free(resp);
    server_close(&s);
}

static void test_unknown_instances_read_as_absent_and_commands_as_not_found(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-unknowninst");
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = "nope";
    uint8_t *resp = NULL;
    size_t n = 0;
    expect(call_msg(&s, "GetInstance", &g.base, &resp, &n), GRPC_STATUS_OK, NULL);
    Dtpb__GetInstanceResponse *gr = dtpb__get_instance_response__unpack(NULL, n, resp);
    assert_non_null(gr);
    assert_false(gr->exists);
    dtpb__get_instance_response__free_unpacked(gr, NULL);
    free(resp);
    Dtpb__RaiseEventRequest re = DTPB__RAISE_EVENT_REQUEST__INIT;
    re.instanceid = "nope";
    re.name = "x";
    expect(call_msg(&s, "RaiseEvent", &re.base, NULL, NULL), GRPC_STATUS_NOT_FOUND, "nope");
    Dtpb__TerminateRequest t = DTPB__TERMINATE_REQUEST__INIT;
    t.instanceid = "nope";
    expect(call_msg(&s, "TerminateInstance", &t.base, NULL, NULL), GRPC_STATUS_NOT_FOUND, "nope");
    server_close(&s);
}

static void test_completion_with_unknown_token_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-token");
    expect(start(&s, "o", "tok-1", NULL), GRPC_STATUS_OK, NULL);
    Dtpb__OrchestratorResponse r = DTPB__ORCHESTRATOR_RESPONSE__INIT;
    Dtpb__OrchestratorAction act = DTPB__ORCHESTRATOR_ACTION__INIT;
    Dtpb__CompleteOrchestrationAction done = DTPB__COMPLETE_ORCHESTRATION_ACTION__INIT;
    Dtpb__OrchestratorAction *acts[1] = {&act};
    done.orchestrationstatus = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    act.orchestrator_action_type_case = DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION;
    act.completeorchestration = &done;
    r.instanceid = "tok-1";
    r.completiontoken = "o999-999";
    r.actions = acts;
    r.n_actions = 1;
    expect(call_msg(&s, "CompleteOrchestratorTask", &r.base, NULL, NULL),
           GRPC_STATUS_NOT_FOUND, "o999-999");
    Dtpb__ActivityResponse ar = DTPB__ACTIVITY_RESPONSE__INIT;
    ar.instanceid = "tok-1";
    ar.completiontoken = "a1-1";
    expect(call_msg(&s, "CompleteActivityTask", &ar.base, NULL, NULL), GRPC_STATUS_NOT_FOUND,
           "a1-1");
    dt_instance_state *st;
    assert_ok(dt_client_get(s.f.client, "tok-1", s.f.arena, &st, NULL), NULL);
    assert_int_equal(st->status, DT_STATUS_PENDING);
    server_close(&s);
}

/* ---- the C SDK as a remote worker ---------------------------------------------------------- */

static dt_status say_hello(dt_actx *ctx, const char *input, const char **output)
{
    size_t n = strlen(input);
    *output = dt_activity_printf(ctx, "\"Hello %.*s!\"", (int)(n - 2), input + 1);
    return DT_OK;
}

static dt_status hello_cities(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    const char *a = dt_await(ctx, dt_call_activity(ctx, "say_hello", "\"Tokyo\"", NULL));
    dt_await(ctx, dt_create_timer(ctx, dt_octx_now(ctx) + 50 * 1000));
    const char *b = dt_await(ctx, dt_wait_for_event(ctx, "next"));
    const char *c = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", "\"London\"", NULL));
    *output = dt_printf(ctx, "[%s,%s,%s]", a, b, c);
    return DT_OK;
}

static dt_status child(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "say_hello", input, NULL));
    return DT_OK;
}

static remote remote_worker(server_fix *s)
{
    dt_worker *w;
    assert_ok(dt_worker_new(&w), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "hello_cities", hello_cities, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "child", child, NULL), NULL);
    assert_ok(dt_worker_add_activity(w, "say_hello", say_hello, NULL), NULL);
    dt_remote_options o = {.threads = 4};
    return remote_start(w, s->target, &o);
}

static void test_remote_c_worker_runs_activities_timers_events_and_children(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-remote");
    remote w = remote_worker(&s);
    expect(start(&s, "hello_cities", "r-1", NULL), GRPC_STATUS_OK, NULL);
    dt_error err = {0};
    assert_ok(dt_client_raise_event(s.f.client, "r-1", "next", "\"Seattle\"", &err), &err);
    dt_instance_state *st;
    assert_ok(dt_client_wait_completion(s.f.client, "r-1", 60000, s.f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "[\"Hello Tokyo!\",\"Seattle\",\"Hello London!\"]");
    remote_free(&w);
    server_close(&s);
}

static dt_status blob(dt_actx *ctx, const char *input, const char **output)
{
    (void)input;
    *output = dt_activity_printf(ctx, "\"%0400000d\"", 7);
    return DT_OK;
}

/* big_history: four activities of 400 KB results each: a history over the server's 1 MiB
 * message limit in this fixture, so an episode's past events reach the worker only by
 * StreamInstanceHistory. */
static dt_status big_history(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += strlen(dt_await(ctx, dt_call_activity(ctx, "blob", NULL, NULL)));
    *output = dt_printf(ctx, "%zu", total);
    return DT_OK;
}

static void test_remote_c_worker_streams_a_history_too_large_to_send_whole(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-big-history");
    dt_worker *w;
    assert_ok(dt_worker_new(&w), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "big_history", big_history, NULL), NULL);
    assert_ok(dt_worker_add_activity(w, "blob", blob, NULL), NULL);
    remote rw = remote_start(w, s.target, NULL);
    expect(start(&s, "big_history", "big-1", NULL), GRPC_STATUS_OK, NULL);
    dt_instance_state *st;
    dt_error err = {0};
    assert_ok(dt_client_wait_completion(s.f.client, "big-1", 60000, s.f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "1600008");
    remote_free(&rw);
    server_close(&s);
}

/* ---- extended sessions over the wire ---------------------------------------------------- */

static atomic_int long_entries;            /* times long_steps was entered from its start */
static dt_worker *evicting_worker;         /* forget_sessions's worker */

static dt_status step_echo(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    *output = input;
    return DT_OK;
}

/* forget_sessions: the worker loses every session (as an eviction would) while the
 * orchestration waits for this activity, whose result then comes without its past */
static dt_status forget_sessions(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    dt_worker_set_sessions(evicting_worker, 0);
    dt_worker_set_sessions(evicting_worker, DT_SESSIONS_DEFAULT);
    *output = input;
    return DT_OK;
}

static dt_status long_steps(dt_octx *ctx, const char *input, const char **output)
{
    (void)input;
    atomic_fetch_add(&long_entries, 1);
    long sum = 0;
    for (int i = 0; i < 20; i++) {
        const char *name = i == 12 ? "forget_sessions" : "step_echo";
        sum += atol(dt_await(ctx, dt_call_activity(ctx, name, dt_printf(ctx, "%d", i), NULL)));
    }
    *output = dt_printf(ctx, "%ld", sum);
    return DT_OK;
}

/* The C remote worker keeps sessions, so the server sends an instance's next episode without
 * its past when this worker's stream completed the last one; a session it lost meanwhile
 * makes it read the history (StreamInstanceHistory) and replay, with the same result. */
static void test_remote_c_worker_gets_only_new_events_for_its_sessions(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-sessions");
    dt_worker *w;
    assert_ok(dt_worker_new(&w), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "long_steps", long_steps, NULL), NULL);
    assert_ok(dt_worker_add_activity(w, "step_echo", step_echo, NULL), NULL);
    assert_ok(dt_worker_add_activity(w, "forget_sessions", forget_sessions, NULL), NULL);
    evicting_worker = w;
    atomic_store(&long_entries, 0);
    remote rw = remote_start(w, s.target, NULL);
    expect(start(&s, "long_steps", "sess-1", NULL), GRPC_STATUS_OK, NULL);
    dt_instance_state *st;
    dt_error err = {0};
    assert_ok(dt_client_wait_completion(s.f.client, "sess-1", 60000, s.f.arena, &st, &err),
              &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "190");   /* 0 + 1 + ... + 19 */
    dt_session_stats ss;
    dt_worker_session_stats(w, &ss);
    /* 21 episodes: the first had no past; the other 20 came without it, one of them (the
     * first after the loss) in vain: that one read the history and replayed */
    assert_int_equal(ss.past_left_out, 20);
    assert_int_equal(ss.past_missing, 1);
    assert_int_equal(ss.hits, 19);
    assert_int_equal(ss.misses, 1);
    assert_int_equal(atomic_load(&long_entries), 2);   /* the start, and the replay */
    remote_free(&rw);
    server_close(&s);
}

static atomic_int slow_started;

static dt_status slow(dt_actx *ctx, const char *input, const char **output)
{
    atomic_fetch_add(&slow_started, 1);
    test_sleep_ms(600);
    *output = dt_activity_printf(ctx, "%s", input);
    return DT_OK;
}

static dt_status slow_orch(dt_octx *ctx, const char *input, const char **output)
{
    *output = dt_await(ctx, dt_call_activity(ctx, "slow", input, NULL));
    return DT_OK;
}

static remote slow_worker(const char *target)
{
    dt_worker *w;
    assert_ok(dt_worker_new(&w), NULL);
    assert_ok(dt_worker_add_orchestrator(w, "slow_orch", slow_orch, NULL), NULL);
    assert_ok(dt_worker_add_activity(w, "slow", slow, NULL), NULL);
    return remote_start(w, target, NULL);
}

static void test_stopping_the_server_gives_work_in_flight_back(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-stop");
    atomic_store(&slow_started, 0);
    remote w = slow_worker(s.target);
    expect(start(&s, "slow_orch", "stop-1", "7"), GRPC_STATUS_OK, NULL);
    for (int i = 0; i < 3000 && atomic_load(&slow_started) == 0; i++)
        test_sleep_ms(10);
    assert_int_equal(atomic_load(&slow_started), 1);
    /* stop the service while the activity runs remotely; its completion cannot arrive */
    dt_grpc_conn_close(s.conn);
    dt_grpc_server_stop(s.srv);
    remote_free(&w);
    /* a new server on the same hub, a new worker: the activity is redelivered and done */
    dt_error err = {0};
    dt_grpc_options o = {.listen = "127.0.0.1:0"};
    assert_ok(dt_grpc_server_start(s.f.hub, &o, &s.srv, &err), &err);
    snprintf(s.target, sizeof s.target, "127.0.0.1:%d", dt_grpc_server_port(s.srv));
    assert_ok(dt_grpc_conn_open(s.target, &s.conn, &err), &err);
    w = slow_worker(s.target);
    dt_instance_state *st;
    assert_ok(dt_client_wait_completion(s.f.client, "stop-1", 60000, s.f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "7");
    assert_true(atomic_load(&slow_started) >= 2);   /* it ran again */
    dt_event *ev;
    size_t n;
    assert_ok(dt_client_get_history(s.f.client, "stop-1", s.f.arena, &ev, &n, &err), &err);
    assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 1);
    remote_free(&w);
    server_close(&s);
}

static void test_terminate_reaches_an_instance_no_connected_worker_runs(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-term-unserved");
    remote w = remote_worker(&s);   /* asks only for its own names */
    expect(start(&s, "never_served", "ns-1", NULL), GRPC_STATUS_OK, NULL);
    dt_error err = {0};
    assert_ok(dt_client_terminate(s.f.client, "ns-1", "\"no one runs it\"", false, &err), &err);
    dt_instance_state *st;
    assert_ok(dt_client_wait_completion(s.f.client, "ns-1", 30000, s.f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_TERMINATED);
    assert_string_equal(st->output, "\"no one runs it\"");
    remote_free(&w);
    server_close(&s);
}

static void test_a_token_is_required_when_configured(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "grpc-token-auth", NULL);
    dt_error err = {0};
    dt_grpc_server *srv;
    dt_grpc_options o = {.listen = "127.0.0.1:0", .token = "s3cret"};
    assert_ok(dt_grpc_server_start(f.hub, &o, &srv, &err), &err);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", dt_grpc_server_port(srv));
    dt_grpc_conn *conn;
    assert_ok(dt_grpc_conn_open(target, &conn, &err), &err);
    uint8_t *resp = NULL;
    size_t n = 0;
    dt_grpc_result res = {0};
    assert_ok(dt_grpc_unary(conn, "Hello", (const uint8_t *)"", 0, 10000, &resp, &n, &res), NULL);
    free(resp);
    assert_int_equal(res.code, GRPC_STATUS_UNAUTHENTICATED);
    assert_non_null(strstr(res.details, "bearer token"));
    assert_ok(dt_grpc_conn_set_token(conn, "wrong!"), NULL);
    assert_ok(dt_grpc_unary(conn, "Hello", (const uint8_t *)"", 0, 10000, &resp, &n, &res), NULL);
    free(resp);
    assert_int_equal(res.code, GRPC_STATUS_UNAUTHENTICATED);
    assert_ok(dt_grpc_conn_set_token(conn, "s3cret"), NULL);
    assert_ok(dt_grpc_unary(conn, "Hello", (const uint8_t *)"", 0, 10000, &resp, &n, &res), NULL);
    free(resp);
    assert_int_equal(res.code, GRPC_STATUS_OK);
    /* a remote worker with the token does real work */
    dt_worker *tw;
    assert_ok(dt_worker_new(&tw), NULL);
    assert_ok(dt_worker_add_orchestrator(tw, "child", child, NULL), NULL);
    assert_ok(dt_worker_add_activity(tw, "say_hello", say_hello, NULL), NULL);
    dt_remote_options wo = {.token = "s3cret"};
    remote w = remote_start(tw, target, &wo);
    char id[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.input = "\"Oslo\""};
    assert_ok(dt_client_start(f.client, "child", &so, id, &err), &err);
    dt_instance_state *st;
    assert_ok(dt_client_wait_completion(f.client, id, 60000, f.arena, &st, &err), &err);
    assert_string_equal(st->output, "\"Hello Oslo!\"");
    remote_free(&w);
    dt_grpc_conn_close(conn);
    dt_grpc_server_stop(srv);
    hubfix_close(&f);
}

static dt_status short_chain(dt_octx *ctx, const char *input, const char **output)
{
    const char *a = dt_await(ctx, dt_call_activity(ctx, "say_hello", input, NULL));
    *output = dt_await(ctx, dt_call_activity(ctx, "say_hello", a, NULL));
    return DT_OK;
}

static void test_8_workers_and_1000_instances_complete_each_exactly_once(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-many");
    remote w[8];
    dt_error err = {0};
    for (int i = 0; i < 8; i++) {
        dt_worker *one;
        assert_ok(dt_worker_new(&one), NULL);
        assert_ok(dt_worker_add_orchestrator(one, "short_chain", short_chain, NULL), NULL);
        assert_ok(dt_worker_add_activity(one, "say_hello", say_hello, NULL), NULL);
        dt_remote_options o = {.threads = 2};
        w[i] = remote_start(one, s.target, &o);
    }
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        char id[32], in[32];
        snprintf(id, sizeof id, "m-%04d", i);
        snprintf(in, sizeof in, "\"%d\"", i);
        expect(start(&s, "short_chain", id, in), GRPC_STATUS_OK, NULL);
    }
    for (int i = 0; i < N; i++) {
        char id[32], want[64];
        snprintf(id, sizeof id, "m-%04d", i);
        snprintf(want, sizeof want, "\"Hello Hello %d!!\"", i);
        dt_arena *a = dt_arena_new();
        dt_instance_state *st;
        assert_ok(dt_client_wait_completion(s.f.client, id, 120000, a, &st, &err), &err);
        if (st->status != DT_STATUS_COMPLETED || strcmp(st->output, want) != 0)
            fail_msg("%s: %s %s", id, dt_runtime_status_name(st->status), st->output);
        dt_event *ev;
        size_t n;
        assert_ok(dt_client_get_history(s.f.client, id, a, &ev, &n, &err), &err);
        assert_int_equal(hubfix_count(ev, n, DT_EVENT_EXECUTION_COMPLETED), 1);
        assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_SCHEDULED), 2);
        assert_int_equal(hubfix_count(ev, n, DT_EVENT_TASK_COMPLETED), 2);
        dt_arena_free(a);
    }
    for (int i = 0; i < 8; i++)
        remote_free(&w[i]);
    server_close(&s);
}

/* nest: a child of its own, named "<id>:g" */
static dt_status nest(dt_octx *ctx, const char *input, const char **output)
{
    dt_task_options o = {.instance_id = dt_printf(ctx, "%s:g", dt_octx_instance_id(ctx))};
    *output = dt_await(ctx, dt_call_sub_orchestrator(ctx, "child", input, &o));
    return DT_OK;
}

/* family: two nests, "<id>:a" and "<id>:b": five instances in all */
static dt_status family(dt_octx *ctx, const char *input, const char **output)
{
    const char *id = dt_octx_instance_id(ctx);
    dt_task_options a = {.instance_id = dt_printf(ctx, "%s:a", id)};
    dt_task_options b = {.instance_id = dt_printf(ctx, "%s:b", id)};
    dt_task *t[2] = {dt_call_sub_orchestrator(ctx, "nest", input, &a),
                     dt_call_sub_orchestrator(ctx, "nest", input, &b)};
    *output = dt_await(ctx, dt_when_all(ctx, t, 2));
    return DT_OK;
}

/* purge: PurgeInstances with REQ; the count it reports. */
static int32_t purge(server_fix *s, Dtpb__PurgeInstancesRequest *req, int code)
{
    uint8_t *resp = NULL;
    size_t len = 0;
    dt_grpc_result r = call_msg(s, "PurgeInstances", &req->base, &resp, &len);
    expect(r, code, NULL);
    int32_t n = -1;
    if (r.code == GRPC_STATUS_OK) {
        Dtpb__PurgeInstancesResponse *m = dtpb__purge_instances_response__unpack(NULL, len, resp);
        assert_non_null(m);
        n = m->deletedinstancecount;
        dtpb__purge_instances_response__free_unpacked(m, NULL);
    }
    free(resp);
    return n;
}

static bool exists(server_fix *s, const char *id)
{
    dt_instance_state *st;
    return dt_client_get(s->f.client, id, s->f.arena, &st, NULL) == DT_OK;
}

/* PurgeInstances with recursive takes the sub-orchestrations an instance started along,
 * children first; without it, the children stay. A batch of ids purges the finished ones
 * and skips the missing and the live. */
static void test_purge_recursive_and_by_batch(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-purge");
    assert_ok(dt_worker_add_orchestrator(s.f.worker, "family", family, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(s.f.worker, "nest", nest, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(s.f.worker, "child", child, NULL), NULL);
    assert_ok(dt_worker_add_orchestrator(s.f.worker, "hello_cities", hello_cities, NULL), NULL);
    assert_ok(dt_worker_add_activity(s.f.worker, "say_hello", say_hello, NULL), NULL);
    hubfix_start(&s.f);
    dt_error err = {0};
    dt_instance_state *st;
    const char *trees[] = {"t1", "t2"};
    for (int i = 0; i < 2; i++) {
        expect(start(&s, "family", trees[i], "\"Oslo\""), GRPC_STATUS_OK, NULL);
        assert_ok(dt_client_wait_completion(s.f.client, trees[i], 60000, s.f.arena, &st, &err),
                  &err);
        assert_int_equal(st->status, DT_STATUS_COMPLETED);
    }
    expect(start(&s, "hello_cities", "live", NULL), GRPC_STATUS_OK, NULL);   /* waits */

    Dtpb__PurgeInstancesRequest req = DTPB__PURGE_INSTANCES_REQUEST__INIT;
    req.request_case = DTPB__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_ID;
    req.instanceid = "t1";
    assert_int_equal(purge(&s, &req, GRPC_STATUS_OK), 1);
    assert_true(exists(&s, "t1:a") && exists(&s, "t1:b:g"));
    req.instanceid = "t2";
    req.recursive = true;
    assert_int_equal(purge(&s, &req, GRPC_STATUS_OK), 5);
    const char *gone[] = {"t2", "t2:a", "t2:a:g", "t2:b", "t2:b:g"};
    for (int i = 0; i < 5; i++)
        assert_false(exists(&s, gone[i]));
    req.instanceid = "live";   /* a live instance by id: refused, as without recursive */
    purge(&s, &req, GRPC_STATUS_FAILED_PRECONDITION);

    char *ids[] = {"t1:a", "nope", "live", "t1:b"};
    Dtpb__InstanceBatch batch = DTPB__INSTANCE_BATCH__INIT;
    batch.instanceids = ids;
    batch.n_instanceids = 4;
    req.request_case = DTPB__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_BATCH;
    req.instancebatch = &batch;
    req.recursive = false;
    assert_int_equal(purge(&s, &req, GRPC_STATUS_OK), 2);
    assert_true(exists(&s, "live") && exists(&s, "t1:a:g"));
    assert_false(exists(&s, "t1:a") || exists(&s, "t1:b"));
    char *rest[] = {"t1:a:g", "t1:b:g"};
    batch.instanceids = rest;
    batch.n_instanceids = 2;
    assert_int_equal(purge(&s, &req, GRPC_STATUS_OK), 2);
    server_close(&s);
}

/* pass_along: the event's data through an activity, with the input beside it */
static dt_status pass_along(dt_octx *ctx, const char *input, const char **output)
{
    const char *data = dt_await(ctx, dt_wait_for_event(ctx, "e"));
    const char *back = dt_await(ctx, dt_call_activity(ctx, "echo", data, NULL));
    *output = dt_printf(ctx, "%s", input);   /* the start's token, as it came */
    dt_octx_set_custom_status(ctx, back);
    return DT_OK;
}

/* Large-payload tokens (the SDKs' offload sends "blob:v1:..." in place of a payload) pass
 * through untouched as input, event data, activity input and output, and orchestration
 * output; text that is neither JSON nor a token is still refused. */
static void test_large_payload_tokens_pass_through(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-token-payload");
    assert_ok(dt_worker_add_orchestrator(s.f.worker, "pass_along", pass_along, NULL), NULL);
    assert_ok(dt_worker_add_activity(s.f.worker, "echo", hubfix_echo, NULL), NULL);
    hubfix_start(&s.f);
    expect(start(&s, "pass_along", "tok-1", "blob:v1:payloads:input-1"), GRPC_STATUS_OK, NULL);
    expect(start(&s, "pass_along", "tok-2", "not json"), GRPC_STATUS_INVALID_ARGUMENT,
           "input is not valid JSON");
    Dtpb__RaiseEventRequest r = DTPB__RAISE_EVENT_REQUEST__INIT;
    Dtpb__StringValue data = DTPB__STRING_VALUE__INIT;
    r.instanceid = "tok-1";
    r.name = "e";
    data.value = "blob:v2:payloads:event-1";
    r.input = &data;
    expect(call_msg(&s, "RaiseEvent", &r.base, NULL, NULL), GRPC_STATUS_OK, NULL);
    dt_instance_state *st;
    dt_error err = {0};
    assert_ok(dt_client_wait_completion(s.f.client, "tok-1", 60000, s.f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->input, "blob:v1:payloads:input-1");
    assert_string_equal(st->output, "blob:v1:payloads:input-1");
    assert_string_equal(st->custom_status, "blob:v2:payloads:event-1");
    server_close(&s);
}

/* A second server on a port already in use is refused at start, naming the address (with
 * SO_REUSEPORT on, as gRPC core leaves it, it started and took half the connections). */
static void test_a_port_in_use_is_refused_at_start(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-port");
    dt_grpc_server *second = NULL;
    dt_error err = {0};
    dt_grpc_options o = {.listen = s.target};
    assert_int_equal(dt_grpc_server_start(s.f.hub, &o, &second, &err), DT_ERR_IO);
    assert_null(second);
    assert_non_null(strstr(err.message, s.target));
    /* the first serves on */
    expect(start(&s, "hello_cities", "port-1", NULL), GRPC_STATUS_OK, NULL);
    server_close(&s);
}

static void test_work_of_a_worker_that_goes_away_is_redelivered(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-redeliver");
    /* a worker that takes the work and vanishes: a raw stream, closed without answering */
    dt_grpc_stream *st = NULL;
    dt_error err = {0};
    expect(start(&s, "hello_cities", "g-1", NULL), GRPC_STATUS_OK, NULL);
    assert_ok(dt_grpc_stream_open(s.conn, "GetWorkItems", (const uint8_t *)"", 0, &st, &err),
              &err);
    uint8_t *msg = NULL;
    size_t len = 0;
    dt_grpc_result res = {0};
    assert_ok(dt_grpc_stream_next(st, 30000, &msg, &len, &res), NULL);
    Dtpb__WorkItem *wi = dtpb__work_item__unpack(NULL, len, msg);
    assert_non_null(wi);
    assert_int_equal(wi->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    assert_string_equal(wi->orchestratorrequest->instanceid, "g-1");
    dtpb__work_item__free_unpacked(wi, NULL);
    free(msg);
    dt_grpc_stream_close(st);
    /* a real worker now gets it and finishes the instance */
    remote w = remote_worker(&s);
    assert_ok(dt_client_raise_event(s.f.client, "g-1", "next", "\"Seattle\"", &err), &err);
    dt_instance_state *is;
    assert_ok(dt_client_wait_completion(s.f.client, "g-1", 60000, s.f.arena, &is, &err), &err);
    assert_int_equal(is->status, DT_STATUS_COMPLETED);
    remote_free(&w);
    server_close(&s);
}

/* ---- durabletask-c's completion stream ------------------------------------------------------ */

/* next_item: the next work item of raw stream ST that is not a health ping (free with
 * dtpb__work_item__free_unpacked). */
static Dtpb__WorkItem *next_item(dt_grpc_stream *st)
{
    for (;;) {
        uint8_t *msg = NULL;
        size_t len = 0;
        dt_grpc_result res = {0};
        assert_ok(dt_grpc_stream_next(st, 30000, &msg, &len, &res), NULL);
        Dtpb__WorkItem *wi = dtpb__work_item__unpack(NULL, len, msg);
        free(msg);
        assert_non_null(wi);
        if (wi->request_case != DTPB__WORK_ITEM__REQUEST_HEALTH_PING)
            return wi;
        dtpb__work_item__free_unpacked(wi, NULL);
    }
}

/* stream_send: WC on completion stream S; MORE: another follows at once. */
static dt_status stream_send(dt_grpc_sender *s, const Dtpb__WorkerCompletion *wc, bool more)
{
    size_t len = protobuf_c_message_get_packed_size(&wc->base);
    uint8_t *buf = malloc(len + 1);
    protobuf_c_message_pack(&wc->base, buf);
    dt_status st = dt_grpc_sender_send(s, buf, len, more);
    free(buf);
    return st;
}

/* send_activity_result: an ActivityResponse for TOKEN of ID's task TASK_ID with RESULT
 * (JSON), on S. */
static void send_activity_result(dt_grpc_sender *s, const char *id, int task_id,
                                 const char *token, const char *result)
{
    Dtpb__WorkerCompletion wc = DTPB__WORKER_COMPLETION__INIT;
    Dtpb__ActivityResponse ar = DTPB__ACTIVITY_RESPONSE__INIT;
    Dtpb__StringValue out = DTPB__STRING_VALUE__INIT;
    out.value = (char *)result;
    ar.instanceid = (char *)id;
    ar.taskid = task_id;
    ar.completiontoken = (char *)token;
    ar.result = &out;
    wc.completion_case = DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY;
    wc.activity = &ar;
    assert_ok(stream_send(s, &wc, false), NULL);
}

/* send_episode: an OrchestratorResponse for TOKEN of ID, on S: ACTION (one, or none). */
static void send_episode_more(dt_grpc_sender *s, const char *id, const char *token,
                              Dtpb__OrchestratorAction *action, bool more)
{
    Dtpb__WorkerCompletion wc = DTPB__WORKER_COMPLETION__INIT;
    Dtpb__OrchestratorResponse r = DTPB__ORCHESTRATOR_RESPONSE__INIT;
    r.instanceid = (char *)id;
    r.completiontoken = (char *)token;
    r.actions = &action;
    r.n_actions = action != NULL;
    wc.completion_case = DTPB__WORKER_COMPLETION__COMPLETION_ORCHESTRATOR;
    wc.orchestrator = &r;
    assert_ok(stream_send(s, &wc, more), NULL);
}

static void send_episode(dt_grpc_sender *s, const char *id, const char *token,
                         Dtpb__OrchestratorAction *action)
{
    send_episode_more(s, id, token, action, false);
}

/* complete_action: an action completing the orchestration with RESULT (JSON). */
static Dtpb__OrchestratorAction complete_action(Dtpb__CompleteOrchestrationAction *done,
                                                Dtpb__StringValue *v, const char *result)
{
    Dtpb__OrchestratorAction act = DTPB__ORCHESTRATOR_ACTION__INIT;
    *done = (Dtpb__CompleteOrchestrationAction)DTPB__COMPLETE_ORCHESTRATION_ACTION__INIT;
    *v = (Dtpb__StringValue)DTPB__STRING_VALUE__INIT;
    v->value = (char *)result;
    done->orchestrationstatus = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    done->result = v;
    act.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION;
    act.completeorchestration = done;
    return act;
}

static dt_grpc_sender *open_sender(server_fix *s)
{
    dt_grpc_sender *snd = NULL;
    dt_grpc_result res = {0};
    dt_status st = dt_grpc_sender_open(s->conn, DT_COMPLETION_STREAM_METHOD,
                                       DT_COMPLETION_STREAM_METADATA, 10000, &snd, &res);
    if (st != DT_OK)
        fail_msg("cannot open the completion stream: %s (%d %s)", dt_strerror(st), res.code,
                 res.details);
    return snd;
}

/* wait_broken: true once S is over (the server ended it), within 10 s */
static bool wait_broken(dt_grpc_sender *s)
{
    for (int i = 0; i < 1000; i++) {
        if (dt_grpc_sender_broken(s))
            return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_completions_on_the_stream_apply_as_unary_calls_do(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-cstream");
    dt_error err = {0};
    dt_grpc_stream *work = NULL;
    assert_ok(dt_grpc_stream_open(s.conn, "GetWorkItems", (const uint8_t *)"", 0, &work, &err),
              &err);
    dt_grpc_sender *snd = open_sender(&s);
    expect(start(&s, "raw", "cs-1", NULL), GRPC_STATUS_OK, NULL);
    Dtpb__WorkItem *wi = next_item(work);
    assert_int_equal(wi->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    /* a completion under a token nobody holds is refused (and heard by nobody); the stream
     * goes on */
    send_activity_result(snd, "cs-1", 0, "a999-999", "\"stale\"");
    /* the episode schedules an activity */
    Dtpb__OrchestratorAction act = DTPB__ORCHESTRATOR_ACTION__INIT;
    Dtpb__ScheduleTaskAction task = DTPB__SCHEDULE_TASK_ACTION__INIT;
    Dtpb__StringValue in = DTPB__STRING_VALUE__INIT;
    in.value = "\"Tokyo\"";
    task.name = "say_hello";
    task.input = &in;
    act.id = 0;
    act.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SCHEDULE_TASK;
    act.scheduletask = &task;
    send_episode(snd, "cs-1", wi->completiontoken, &act);
    dtpb__work_item__free_unpacked(wi, NULL);
    wi = next_item(work);
    assert_int_equal(wi->request_case, DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);
    assert_string_equal(wi->activityrequest->name, "say_hello");
    send_activity_result(snd, "cs-1", wi->activityrequest->taskid, wi->completiontoken,
                         "\"Hello Tokyo!\"");
    dtpb__work_item__free_unpacked(wi, NULL);
    /* the next episode sees the result, and completes the instance */
    wi = next_item(work);
    assert_int_equal(wi->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    bool saw_result = false;
    for (size_t i = 0; i < wi->orchestratorrequest->n_newevents; i++) {
        Dtpb__HistoryEvent *e = wi->orchestratorrequest->newevents[i];
        saw_result |= e->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED &&
                      strcmp(e->taskcompleted->result->value, "\"Hello Tokyo!\"") == 0;
    }
    assert_true(saw_result);
    Dtpb__CompleteOrchestrationAction done;
    Dtpb__StringValue v;
    Dtpb__OrchestratorAction fin = complete_action(&done, &v, "\"done\"");
    send_episode(snd, "cs-1", wi->completiontoken, &fin);
    dtpb__work_item__free_unpacked(wi, NULL);
    dt_instance_state *is;
    assert_ok(dt_client_wait_completion(s.f.client, "cs-1", 60000, s.f.arena, &is, &err), &err);
    assert_int_equal(is->status, DT_STATUS_COMPLETED);
    assert_string_equal(is->output, "\"done\"");
    assert_false(dt_grpc_sender_broken(snd));
    dt_grpc_sender_close(snd);   /* the server ends it OK once it has served it all */
    dt_grpc_stream_close(work);
    still_serving(&s);
    server_close(&s);
}

/* Bursts both ways: work items the server has queued for one stream go out with gRPC's
 * buffer hint (all but the last), and so do a worker's completions sent one after another
 * (all but the last of the burst): every one of them arrives and applies, none waits in a
 * buffer for a write that never comes. */
#define BURST 8
static void test_bursts_sent_with_the_buffer_hint_arrive_whole(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-burst");
    dt_error err = {0};
    char ids[BURST][16];
    for (int i = 0; i < BURST; i++) {
        snprintf(ids[i], sizeof ids[i], "burst-%d", i);
        expect(start(&s, "raw", ids[i], NULL), GRPC_STATUS_OK, NULL);
    }
    /* the stream opened after: its items all wait, and queue behind the first one sent */
    dt_grpc_stream *work = NULL;
    assert_ok(dt_grpc_stream_open(s.conn, "GetWorkItems", (const uint8_t *)"", 0, &work, &err),
              &err);
    dt_grpc_sender *snd = open_sender(&s);
    Dtpb__WorkItem *wi[BURST];
    for (int i = 0; i < BURST; i++) {
        wi[i] = next_item(work);
        assert_int_equal(wi[i]->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    }
    Dtpb__CompleteOrchestrationAction done;
    Dtpb__StringValue v;
    Dtpb__OrchestratorAction fin = complete_action(&done, &v, "\"done\"");
    for (int i = 0; i < BURST; i++)
        send_episode_more(snd, wi[i]->orchestratorrequest->instanceid, wi[i]->completiontoken,
                          &fin, i + 1 < BURST);
    for (int i = 0; i < BURST; i++) {
        dt_instance_state *is;
        assert_ok(dt_client_wait_completion(s.f.client, ids[i], 30000, s.f.arena, &is, &err),
                  &err);
        assert_int_equal(is->status, DT_STATUS_COMPLETED);
        assert_string_equal(is->output, "\"done\"");
        dtpb__work_item__free_unpacked(wi[i], NULL);
    }
    assert_false(dt_grpc_sender_broken(snd));
    dt_grpc_sender_close(snd);
    dt_grpc_stream_close(work);
    still_serving(&s);
    server_close(&s);
}

static void test_a_message_that_is_no_completion_ends_the_stream_and_changes_nothing(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-cstream-bad");
    expect(start(&s, "raw", "cs-2", NULL), GRPC_STATUS_OK, NULL);
    dt_grpc_sender *snd = open_sender(&s);
    const uint8_t not_one[] = {0x08, 0x01};   /* field 1 as a number, not a message */
    assert_ok(dt_grpc_sender_send(snd, not_one, sizeof not_one, false), NULL);
    assert_true(wait_broken(snd));
    assert_int_equal(dt_grpc_sender_send(snd, not_one, sizeof not_one, false), DT_ERR_IO);
    dt_grpc_sender_close(snd);
    /* a field no WorkerCompletion has, on a stream of its own, ends it too */
    snd = open_sender(&s);
    const uint8_t unknown[] = {0x22, 0x00};   /* field 4, empty */
    assert_ok(dt_grpc_sender_send(snd, unknown, sizeof unknown, false), NULL);
    assert_true(wait_broken(snd));
    dt_grpc_sender_close(snd);
    dt_instance_state *st;
    assert_ok(dt_client_get(s.f.client, "cs-2", s.f.arena, &st, NULL), NULL);
    assert_int_equal(st->status, DT_STATUS_PENDING);
    still_serving(&s);
    server_close(&s);
}

/* call_threads: the server's call threads (named dt-rpc; the server runs in this process) */
/* threads_named: this process's threads whose name starts with PREFIX ("": all) */
static int threads_named(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], name[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = e->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (f && fgets(name, sizeof name, f) && strncmp(name, prefix, strlen(prefix)) == 0)
            n++;
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}

static int call_threads(void)
{
    return threads_named("dt-rpc");
}

static void test_a_flood_of_stale_completions_is_served_on_bounded_threads(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc-cstream-flood");
    still_serving(&s);
    int base = call_threads();
    dt_grpc_sender *snd = open_sender(&s);
    /* each is refused on a thread (no such token, then no such late result): at most four
     * at a time per stream, however fast they come */
    int most = base;
    char token[32];
    for (int i = 0; i < 400; i++) {
        snprintf(token, sizeof token, "a%d-%d", 100000 + i, i);
        send_activity_result(snd, "nobody", i, token, "1");
        int n = call_threads();
        most = n > most ? n : most;
    }
    print_message("400 stale completions on one stream: call threads %d before, at most %d\n",
                  base, most);
    assert_true(most <= base + 4);
    /* the stream still serves: a real completion after the flood applies */
    dt_error err = {0};
    dt_grpc_stream *work = NULL;
    assert_ok(dt_grpc_stream_open(s.conn, "GetWorkItems", (const uint8_t *)"", 0, &work, &err),
              &err);
    expect(start(&s, "raw", "cs-3", NULL), GRPC_STATUS_OK, NULL);
    Dtpb__WorkItem *wi = next_item(work);
    Dtpb__CompleteOrchestrationAction done;
    Dtpb__StringValue v;
    Dtpb__OrchestratorAction fin = complete_action(&done, &v, "3");
    send_episode(snd, "cs-3", wi->completiontoken, &fin);
    dtpb__work_item__free_unpacked(wi, NULL);
    dt_instance_state *is;
    assert_ok(dt_client_wait_completion(s.f.client, "cs-3", 60000, s.f.arena, &is, &err), &err);
    assert_string_equal(is->output, "3");
    dt_grpc_sender_close(snd);
    dt_grpc_stream_close(work);
    still_serving(&s);
    server_close(&s);
}

static void test_without_the_stream_the_c_worker_sends_unary_calls(void **state)
{
    (void)state;
    server_fix s;
    server_open_with(&s, "grpc-cstream-off", (dt_grpc_options){.no_completion_stream = true});
    dt_grpc_sender *snd = NULL;
    dt_grpc_result res = {0};
    assert_int_equal(dt_grpc_sender_open(s.conn, DT_COMPLETION_STREAM_METHOD,
                                         DT_COMPLETION_STREAM_METADATA, 10000, &snd, &res),
                     DT_ERR_UNIMPLEMENTED);
    assert_null(snd);
    expect(res, GRPC_STATUS_UNIMPLEMENTED, "--no-completion-stream");
    remote w = remote_worker(&s);
    expect(start(&s, "hello_cities", "cs-4", NULL), GRPC_STATUS_OK, NULL);
    dt_error err = {0};
    assert_ok(dt_client_raise_event(s.f.client, "cs-4", "next", "\"Seattle\"", &err), &err);
    dt_instance_state *st;
    assert_ok(dt_client_wait_completion(s.f.client, "cs-4", 60000, s.f.arena, &st, &err), &err);
    assert_int_equal(st->status, DT_STATUS_COMPLETED);
    assert_string_equal(st->output, "[\"Hello Tokyo!\",\"Seattle\",\"Hello London!\"]");
    remote_free(&w);
    server_close(&s);
}

static void test_completion_streams_to_task_hubs_not_yet_open_end_cleanly(void **state)
{
    (void)state;
    /* a stream for a hub the server must open first is begun on a call thread; one that ends
     * at once (closed, or a bad first message) races that thread's hold on the call */
    char db[700];
    snprintf(db, sizeof db, "%s/dt.db", test_tmpdir("grpc-cstream-hubs"));
    dt_hub_set_options ho = {.hub = {.db_path = db}};
    dt_hub_set *hubs = NULL;
    dt_error err = {0};
    assert_ok(dt_hub_set_open(&ho, &hubs, &err), &err);
    dt_grpc_options o = {.listen = "127.0.0.1:0", .hubs = hubs};
    dt_grpc_server *srv = NULL;
    assert_ok(dt_grpc_server_start(NULL, &o, &srv, &err), &err);
    char target[64], name[32];
    snprintf(target, sizeof target, "127.0.0.1:%d", dt_grpc_server_port(srv));
    dt_grpc_conn *conn = NULL;
    assert_ok(dt_grpc_conn_open(target, &conn, &err), &err);
    const uint8_t not_one[] = {0x08, 0x01};
    for (int i = 0; i < 24; i++) {
        snprintf(name, sizeof name, "hub%d", i);
        assert_ok(dt_grpc_conn_set_task_hub(conn, name, &err), &err);
        dt_grpc_sender *snd = NULL;
        dt_grpc_result res = {0};
        assert_ok(dt_grpc_sender_open(conn, DT_COMPLETION_STREAM_METHOD,
                                      DT_COMPLETION_STREAM_METADATA, 10000, &snd, &res), NULL);
        if (i % 2)
            dt_grpc_sender_send(snd, not_one, sizeof not_one, false);
        dt_grpc_sender_close(snd);
    }
    dt_grpc_result r = {0};
    uint8_t *resp = NULL;
    size_t n = 0;
    assert_ok(dt_grpc_unary(conn, "Hello", (const uint8_t *)"", 0, 30000, &resp, &n, &r), NULL);
    assert_int_equal(r.code, GRPC_STATUS_OK);
    free(resp);
    dt_grpc_conn_close(conn);
    dt_grpc_server_stop(srv);
    dt_hub_set_close(hubs);
}

/* ---- waits --------------------------------------------------------------------------------- */

typedef struct short_wait {
    server_fix *s;
    const char *id;
    int64_t ms;   /* the call's deadline */
    int code;
} short_wait;

/* waits_briefly: WaitForInstanceCompletion on W's instance with a deadline of W->ms */
static void *waits_briefly(void *arg)
{
    short_wait *w = arg;
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = (char *)w->id;
    uint8_t buf[256], *r = NULL;
    size_t len = protobuf_c_message_pack(&g.base, buf), n = 0;
    dt_grpc_result res = {0};
    /* refused while the calls of the round before are still held: they must come back */
    for (int tries = 0; tries < 100; tries++) {
        free(r);
        r = NULL;
        res = (dt_grpc_result){0};
        dt_grpc_unary(w->s->conn, "WaitForInstanceCompletion", buf, len, w->ms, &r, &n, &res);
        if (res.code != GRPC_STATUS_RESOURCE_EXHAUSTED)
            break;
        test_sleep_ms(50);
    }
    free(r);
    w->code = res.code;
    return NULL;
}

/* A wait holds no thread of the server's, but it holds its call: a client that
 * gives up must free it, or waits that time out would fill the server's calls for good. */
static void test_waits_whose_clients_give_up_let_their_calls_go(void **state)
{
    (void)state;
    server_fix s;
    server_open_with(&s, "grpc_waits_give_up", (dt_grpc_options){.max_calls = 8});
    expect(start(&s, "NobodyRunsThis", "never-done", NULL), GRPC_STATUS_OK, NULL);
    for (int round = 0; round < 3; round++) {
        pthread_t t[8];
        short_wait w[8];
        for (int i = 0; i < 8; i++) {
            w[i] = (short_wait){&s, "never-done", 300, -1};
            assert_int_equal(pthread_create(&t[i], NULL, waits_briefly, &w[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
            pthread_join(t[i], NULL);
            if (w[i].code != GRPC_STATUS_DEADLINE_EXCEEDED)
                fail_msg("round %d: wait %d ended with status %d, want DEADLINE_EXCEEDED (%d)",
                         round, i, w[i].code, GRPC_STATUS_DEADLINE_EXCEEDED);
        }
    }
    /* every call slot comes back: Hello is served again */
    int code = -1;
    for (int tries = 0; tries < 200 && code != GRPC_STATUS_OK; tries++) {
        if (tries)
            test_sleep_ms(50);
        code = call_raw(&s, "Hello", (const uint8_t *)"", 0, NULL, NULL).code;
    }
    assert_int_equal(code, GRPC_STATUS_OK);
    server_close(&s);
}

/* Waits hold no thread of the server's on either store: many clients waiting at once (on
 * PostgreSQL too, where a wait once slept on a call thread of its own) leave the call threads
 * as they were, and each wait still ends at its client's deadline. */
static void test_waits_hold_no_call_thread(void **state)
{
    (void)state;
    enum { WAITS = 24 };
    server_fix s;
    server_open(&s, "grpc_waits_threadless");
    expect(start(&s, "NobodyRunsThis", "never-ends", NULL), GRPC_STATUS_OK, NULL);
    still_serving(&s);
    int base = call_threads();
    pthread_t t[WAITS];
    short_wait w[WAITS];
    for (int i = 0; i < WAITS; i++) {
        w[i] = (short_wait){&s, "never-ends", 2000, -1};
        assert_int_equal(pthread_create(&t[i], NULL, waits_briefly, &w[i]), 0);
    }
    int most = base;
    for (int i = 0; i < 15; i++) {   /* while they wait */
        test_sleep_ms(100);
        int n = call_threads();
        most = n > most ? n : most;
    }
    for (int i = 0; i < WAITS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].code, GRPC_STATUS_DEADLINE_EXCEEDED);
    }
    print_message("%d waits: call threads %d before, at most %d during\n", WAITS, base, most);
    assert_true(most <= base + 2);
    server_close(&s);
}

/* A wait reads the instance's state (input and output with it) again and again: each poll of
 * the hub's thread of waits, each slice of a blocking wait. When a blocking wait on PostgreSQL
 * read it into the call's arena, which lives as long as the call, a wait on an instance with
 * a large input grew by a copy of it four times a second. Counted by AddressSanitizer's
 * allocator (the bytes live now); other builds cannot count the bytes every thread holds, and
 * only check that the wait ends as it should. */
static void test_a_long_wait_does_not_grow_with_its_instance_s_size(void **state)
{
    (void)state;
    server_fix s;
    server_open(&s, "grpc_wait_size");
    size_t size = 900 * 1000;
    char *input = malloc(size + 3);
    input[0] = '"';
    memset(input + 1, 'x', size);
    memcpy(input + 1 + size, "\"", 2);
    expect(start(&s, "NobodyRunsThis", "big-wait", input), GRPC_STATUS_OK, NULL);
    free(input);
#ifdef TEST_ASAN
    size_t before = __sanitizer_get_current_allocated_bytes();
#endif
    short_wait w = {&s, "big-wait", 3000, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waits_briefly, &w), 0);
    test_sleep_ms(2200);   /* eight slices or so */
#ifdef TEST_ASAN
    size_t during = __sanitizer_get_current_allocated_bytes();
    if (during > before + 4 * size)
        fail_msg("a wait of 2 s holds %zu bytes more: copies of the instance's state",
                 during - before);
#endif
    pthread_join(t, NULL);
    assert_int_equal(w.code, GRPC_STATUS_DEADLINE_EXCEEDED);
    server_close(&s);
}

/* ---- asynchronous calls of the client ------------------------------------------------------ */

/* One instance driven by asynchronous calls: started, then waited for from the start's
 * callback. */
typedef struct async_one {
    struct async_run *run;
    int i;
    int calls;                  /* callbacks seen */
    dt_status st;               /* the last callback's */
    int code;
    bool completed;             /* the wait saw it Completed with the expected output */
    dt_status again;            /* dt_grpc_unary_start from a callback of a closing connection */
} async_one;

typedef struct async_run {
    dt_grpc_conn *conn;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;                   /* instances whose last callback came (mu) */
} async_run;

static void async_count(async_one *o)
{
    pthread_mutex_lock(&o->run->mu);
    o->run->done++;
    pthread_cond_broadcast(&o->run->cv);
    pthread_mutex_unlock(&o->run->mu);
}

static dt_status async_wait_call(async_one *o, const char *id, int64_t ms, dt_grpc_done_fn fn)
{
    Dtpb__GetInstanceRequest g = DTPB__GET_INSTANCE_REQUEST__INIT;
    g.instanceid = (char *)id;
    g.getinputsandoutputs = true;
    uint8_t buf[256];
    size_t len = protobuf_c_message_pack(&g.base, buf);
    return dt_grpc_unary_start(o->run->conn, "WaitForInstanceCompletion", buf, len, ms, fn, o);
}

static void async_waited(void *arg, dt_status st, const uint8_t *resp, size_t len,
                         const dt_grpc_result *res)
{
    async_one *o = arg;
    o->calls++;
    o->st = st;
    o->code = res->code;
    Dtpb__GetInstanceResponse *gr = st == DT_OK && res->code == 0
                                        ? dtpb__get_instance_response__unpack(NULL, len, resp)
                                        : NULL;
    char want[64];
    snprintf(want, sizeof want, "\"Hello c-%d!\"", o->i);
    o->completed = gr && gr->exists && gr->orchestrationstate &&
                   gr->orchestrationstate->orchestrationstatus ==
                       DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED &&
                   gr->orchestrationstate->output &&
                   strcmp(gr->orchestrationstate->output->value, want) == 0;
    if (gr && !o->completed && o->i >= 0)
        print_message("instance %d: exists %d, status %d, output %s\n", o->i, gr->exists,
                      gr->orchestrationstate ? (int)gr->orchestrationstate->orchestrationstatus
                                             : -1,
                      gr->orchestrationstate && gr->orchestrationstate->output
                          ? gr->orchestrationstate->output->value
                          : "(none)");
    if (gr)
        dtpb__get_instance_response__free_unpacked(gr, NULL);
    /* a closing connection takes no new call, even from a callback of its own */
    if (res->code == GRPC_STATUS_CANCELLED)
        o->again = async_wait_call(o, "never-done", 1000, async_waited);
    async_count(o);
}

static void async_started(void *arg, dt_status st, const uint8_t *resp, size_t len,
                          const dt_grpc_result *res)
{
    (void)resp;
    (void)len;
    async_one *o = arg;
    o->calls++;
    char id[32];
    snprintf(id, sizeof id, "async-%d", o->i);
    o->st = st;
    o->code = res->code;
    if (st != DT_OK || res->code != 0 || async_wait_call(o, id, 60000, async_waited) != DT_OK)
        async_count(o);   /* no wait follows */
    else
        o->calls--;       /* counted once more by the wait */
}

static void async_wait_for(async_run *run, int n)
{
    pthread_mutex_lock(&run->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    while (run->done < n)
        if (pthread_cond_timedwait(&run->cv, &run->mu, &until) != 0)
            break;
    int done = run->done;
    pthread_mutex_unlock(&run->mu);
    if (done < n)
        fail_msg("%d of %d asynchronous calls were called back", done, n);
}

/* Many calls in flight on one connection hold no thread each; each is called back exactly
 * once, with what it came to: an answer, a status, its deadline passing, or, when the
 * connection closes under it, CANCELLED; a closing connection takes no new call. */
static void test_asynchronous_calls_are_called_back_once_and_closing_cancels_the_rest(
    void **state)
{
    (void)state;
    enum { N = 32, HELD = 16 };
    server_fix s;
    server_open(&s, "grpc_async_calls");
    remote w = remote_worker(&s);
    static async_one ones[N + 2 + HELD];
    async_run run = {.conn = s.conn};
    pthread_mutex_init(&run.mu, NULL);
    pthread_cond_init(&run.cv, NULL);
    for (int i = 0; i < N; i++) {   /* started, and waited for from the start's callback */
        ones[i] = (async_one){.run = &run, .i = i};
        char id[32], input[32];
        snprintf(id, sizeof id, "async-%d", i);
        snprintf(input, sizeof input, "\"c-%d\"", i);
        Dtpb__CreateInstanceRequest r = DTPB__CREATE_INSTANCE_REQUEST__INIT;
        Dtpb__StringValue in = DTPB__STRING_VALUE__INIT;
        r.name = "child";
        r.instanceid = id;
        in.value = input;
        r.input = &in;
        uint8_t buf[256];
        size_t len = protobuf_c_message_pack(&r.base, buf);
        assert_int_equal(dt_grpc_unary_start(s.conn, "StartInstance", buf, len, 30000,
                                             async_started, &ones[i]),
                         DT_OK);
    }
    async_one *unknown = &ones[N], *late = &ones[N + 1];
    *unknown = (async_one){.run = &run, .i = -1};
    *late = (async_one){.run = &run, .i = -1};
    assert_int_equal(dt_grpc_unary_start(s.conn, "NoSuchMethod", (const uint8_t *)"", 0, 30000,
                                         async_started, unknown),
                     DT_OK);
    expect(start(&s, "NobodyRunsThis", "never-done", NULL), GRPC_STATUS_OK, NULL);
    assert_int_equal(async_wait_call(late, "never-done", 300, async_waited), DT_OK);
    async_wait_for(&run, N + 2);
    for (int i = 0; i < N; i++) {
        if (ones[i].calls != 1 || !ones[i].completed)
            fail_msg("instance %d: %d callbacks, status %d, completed %d", i, ones[i].calls,
                     ones[i].code, ones[i].completed);
    }
    assert_int_equal(unknown->calls, 1);
    assert_int_equal(unknown->code, GRPC_STATUS_UNIMPLEMENTED);
    assert_int_equal(late->calls, 1);
    assert_int_equal(late->st, DT_ERR_TIMEOUT);
    assert_int_equal(late->code, GRPC_STATUS_DEADLINE_EXCEEDED);

    /* waits held open by the server: no thread each here, and closing calls each back */
    int before = threads_named("");
    for (int i = 0; i < HELD; i++) {
        async_one *o = &ones[N + 2 + i];
        *o = (async_one){.run = &run, .i = -1, .again = DT_OK};
        assert_int_equal(async_wait_call(o, "never-done", 60000, async_waited), DT_OK);
    }
    test_sleep_ms(300);
    int during = threads_named("");
    print_message("%d calls in flight: %d threads before, %d during\n", HELD, before, during);
    assert_int_equal(threads_named("dt-grpc-client"), 1);   /* the connection's one */
    assert_true(during < before + HELD / 2);   /* a thread per call would add HELD */
    dt_grpc_conn_close(s.conn);   /* returns once every call is called back */
    s.conn = NULL;
    assert_int_equal(run.done, N + 2 + HELD);
    for (int i = 0; i < HELD; i++) {
        async_one *o = &ones[N + 2 + i];
        assert_int_equal(o->calls, 1);
        assert_int_equal(o->code, GRPC_STATUS_CANCELLED);
        assert_int_equal(o->again, DT_ERR_SHUTDOWN);
    }
    pthread_cond_destroy(&run.cv);
    pthread_mutex_destroy(&run.mu);
    remote_free(&w);
    server_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_and_unsupported_methods_are_unimplemented_and_named),
        cmocka_unit_test(test_malformed_and_oversized_messages_are_refused),
        cmocka_unit_test(test_bad_ids_and_text_get_invalid_argument_and_nothing_is_stored),
        cmocka_unit_test(test_unknown_instances_read_as_absent_and_commands_as_not_found),
        cmocka_unit_test(test_tags_given_at_start_are_in_the_state),
        cmocka_unit_test(test_completion_with_unknown_token_is_refused_and_changes_nothing),
        cmocka_unit_test(test_remote_c_worker_runs_activities_timers_events_and_children),
        cmocka_unit_test(test_remote_c_worker_streams_a_history_too_large_to_send_whole),
        cmocka_unit_test(test_remote_c_worker_gets_only_new_events_for_its_sessions),
        cmocka_unit_test(test_work_of_a_worker_that_goes_away_is_redelivered),
        cmocka_unit_test(test_stopping_the_server_gives_work_in_flight_back),
        cmocka_unit_test(test_a_token_is_required_when_configured),
        cmocka_unit_test(test_terminate_reaches_an_instance_no_connected_worker_runs),
        cmocka_unit_test(test_8_workers_and_1000_instances_complete_each_exactly_once),
        cmocka_unit_test(test_a_port_in_use_is_refused_at_start),
        cmocka_unit_test(test_purge_recursive_and_by_batch),
        cmocka_unit_test(test_large_payload_tokens_pass_through),
        cmocka_unit_test(test_completions_on_the_stream_apply_as_unary_calls_do),
        cmocka_unit_test(test_bursts_sent_with_the_buffer_hint_arrive_whole),
        cmocka_unit_test(test_a_message_that_is_no_completion_ends_the_stream_and_changes_nothing),
        cmocka_unit_test(test_a_flood_of_stale_completions_is_served_on_bounded_threads),
        cmocka_unit_test(test_without_the_stream_the_c_worker_sends_unary_calls),
        cmocka_unit_test(test_completion_streams_to_task_hubs_not_yet_open_end_cleanly),
        cmocka_unit_test(test_waits_whose_clients_give_up_let_their_calls_go),
        cmocka_unit_test(test_waits_hold_no_call_thread),
        cmocka_unit_test(test_a_long_wait_does_not_grow_with_its_instance_s_size),
        cmocka_unit_test(test_asynchronous_calls_are_called_back_once_and_closing_cancels_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
