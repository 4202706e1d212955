/* test_worker_protocol.c — the worker side of TaskHubSidecarService as the .NET, Java and
 * Python SDKs use it, with raw gRPC calls shaped like theirs: a completion split in chunks
 * (isPartial, chunkIndex) is committed whole with its last chunk, and one out of order is
 * refused; an abandoned work item comes back after a growing back-off, never in a hot loop;
 * a completion the server cannot apply fails the instance, naming what was wrong. */
#include <grpc/status.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/pb.h"
#include "durabletask/grpc.h"
#include "durabletask/grpc_client.h"
#include "hubfix.h"

typedef struct fix {
    hubfix f;
    dt_grpc_server *srv;
    dt_grpc_conn *conn;
    dt_grpc_stream *stream;
    dt_arena *a;                 /* messages read and built by the test */
} fix;

static void open_stream(fix *x)
{
    dt_error err = {0};
    dt_grpc_stream_close(x->stream);   /* a test's earlier stream, if any */
    x->stream = NULL;
    /* GetWorkItems with no filters: any work */
    assert_ok(dt_grpc_stream_open(x->conn, "GetWorkItems", (const uint8_t *)"", 0, &x->stream,
                                  &err), &err);
}

static void fix_open_ping(fix *x, const char *name, int64_t ping_ms)
{
    memset(x, 0, sizeof *x);
    hubfix_open(&x->f, name, NULL);   /* no worker of its own: the test is the worker */
    dt_error err = {0};
    dt_grpc_options o = {.listen = "127.0.0.1:0", .health_ping_ms = ping_ms};
    assert_ok(dt_grpc_server_start(x->f.hub, &o, &x->srv, &err), &err);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", dt_grpc_server_port(x->srv));
    assert_ok(dt_grpc_conn_open(target, &x->conn, &err), &err);
    x->a = dt_arena_new();
    assert_non_null(x->a);
    open_stream(x);
}

static void fix_open(fix *x, const char *name)
{
    fix_open_ping(x, name, 0);
}

static void fix_close(fix *x)
{
    dt_grpc_stream_close(x->stream);
    dt_grpc_conn_close(x->conn);
    dt_grpc_server_stop(x->srv);
    dt_arena_free(x->a);
    hubfix_close(&x->f);
}

/* next_item: the next work item on the stream within MS (NULL if none came). */
static Dtpb__WorkItem *next_item(fix *x, int64_t ms)
{
    dt_time deadline = dt_now() + ms * 1000;
    for (;;) {
        uint8_t *msg = NULL;
        size_t len = 0;
        dt_grpc_result res = {0};
        int64_t left = (deadline - dt_now()) / 1000;
        if (left <= 0)
            return NULL;
        dt_status st = dt_grpc_stream_next(x->stream, left, &msg, &len, &res);
        if (st == DT_ERR_TIMEOUT)
            return NULL;
        if (st != DT_OK)
            fail_msg("the work item stream ended: %d %s", res.code, res.details);
        void *m = NULL;
        dt_error err = {0};
        assert_ok(pb_unpack(x->a, &dtpb__work_item__descriptor, msg, len, &m, &err), &err);
        free(msg);
        Dtpb__WorkItem *wi = m;
        if (wi->request_case != DTPB__WORK_ITEM__REQUEST_HEALTH_PING)
            return wi;
    }
}

static Dtpb__WorkItem *must_item(fix *x)
{
    Dtpb__WorkItem *wi = next_item(x, 20000);
    if (wi == NULL)
        fail_msg("no work item within 20 s");
    return wi;
}

static dt_grpc_result call(fix *x, const char *method, const ProtobufCMessage *m)
{
    uint8_t *buf = NULL, *resp = NULL;
    size_t len = 0, n = 0;
    assert_ok(pb_pack(x->a, m, &buf, &len), NULL);
    dt_grpc_result res = {0};
    assert_ok(dt_grpc_unary(x->conn, method, buf, len, 30000, &resp, &n, &res), NULL);
    free(resp);
    return res;
}

static void start(fix *x, const char *name, const char *id)
{
    char got[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = id};
    dt_error err = {0};
    assert_ok(dt_client_start(x->f.client, name, &so, got, &err), &err);
}

/* An OrchestratorAction scheduling activity NAME as task ID. */
static Dtpb__OrchestratorAction *schedule(fix *x, int32_t id, const char *name)
{
    Dtpb__OrchestratorAction *act = dt_arena_alloc(x->a, sizeof *act);
    Dtpb__ScheduleTaskAction *t = dt_arena_alloc(x->a, sizeof *t);
    dtpb__orchestrator_action__init(act);
    dtpb__schedule_task_action__init(t);
    t->name = (char *)name;
    act->id = id;
    act->orchestrator_action_type_case = DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SCHEDULE_TASK;
    act->scheduletask = t;
    return act;
}

/* chunk: CompleteOrchestratorTask for WI with N actions, as chunk INDEX (-1: not chunked). */
static dt_grpc_result chunk(fix *x, const Dtpb__WorkItem *wi, Dtpb__OrchestratorAction **acts,
                            size_t n, int32_t index, bool partial)
{
    Dtpb__OrchestratorResponse r = DTPB__ORCHESTRATOR_RESPONSE__INIT;
    Dtpb__Int32Value idx = DTPB__INT32_VALUE__INIT;
    r.instanceid = wi->orchestratorrequest->instanceid;
    r.completiontoken = wi->completiontoken;
    r.actions = acts;
    r.n_actions = n;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    r.ispartial = partial;
    if (index >= 0) {
        idx.value = index;
        r.chunkindex = &idx;
    }
#pragma GCC diagnostic pop
    return call(x, "CompleteOrchestratorTask", &r.base);
}

static void expect(dt_grpc_result r, int code, const char *needle)
{
    if (r.code != code)
        fail_msg("status %d (%s), want %d", r.code, r.details, code);
    if (needle && strstr(r.details, needle) == NULL)
        fail_msg("details '%s' do not mention '%s'", r.details, needle);
}

static size_t count(hubfix *f, const char *id, dt_event_type type)
{
    size_t n = 0;
    dt_event *h = hubfix_history(f, id, &n);
    return hubfix_count(h, n, type);
}

/* Three chunks of one completion: nothing is applied until the last, then all of them at
 * once; each chunk is acknowledged. */
static void test_a_chunked_completion_is_committed_whole_with_its_last_chunk(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-chunks");
    start(&x, "fan", "c1");
    Dtpb__WorkItem *wi = must_item(&x);
    assert_int_equal(wi->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    Dtpb__OrchestratorAction *a[3] = {schedule(&x, 0, "a"), schedule(&x, 1, "b"),
                                      schedule(&x, 2, "c")};
    expect(chunk(&x, wi, &a[0], 1, 0, true), GRPC_STATUS_OK, NULL);
    expect(chunk(&x, wi, &a[1], 1, 1, true), GRPC_STATUS_OK, NULL);
    assert_int_equal(count(&x.f, "c1", DT_EVENT_TASK_SCHEDULED), 0);   /* not yet */
    expect(chunk(&x, wi, &a[2], 1, 2, false), GRPC_STATUS_OK, NULL);
    assert_int_equal(count(&x.f, "c1", DT_EVENT_TASK_SCHEDULED), 3);
    /* all three activities are out, in order */
    const char *names[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        Dtpb__WorkItem *t = must_item(&x);
        assert_int_equal(t->request_case, DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);
        names[t->activityrequest->taskid] = t->activityrequest->name;
    }
    assert_string_equal(names[0], "a");
    assert_string_equal(names[2], "c");
    /* the token is spent */
    expect(chunk(&x, wi, &a[0], 1, 3, false), GRPC_STATUS_NOT_FOUND, NULL);
    fix_close(&x);
}

/* A chunk out of order is refused, nothing of the completion is applied, and the episode is
 * delivered again (after a back-off) to be done over. */
static void test_a_chunk_out_of_order_is_refused_and_the_episode_redelivered(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-chunk-order");
    start(&x, "fan", "c2");
    Dtpb__WorkItem *wi = must_item(&x);
    Dtpb__OrchestratorAction *a[2] = {schedule(&x, 0, "a"), schedule(&x, 1, "b")};
    expect(chunk(&x, wi, &a[0], 1, 0, true), GRPC_STATUS_OK, NULL);
    expect(chunk(&x, wi, &a[1], 1, 2, false), GRPC_STATUS_INVALID_ARGUMENT,
           "chunk 2 of a chunked completion arrived where chunk 1 was due");
    assert_int_equal(count(&x.f, "c2", DT_EVENT_TASK_SCHEDULED), 0);
    Dtpb__WorkItem *again = must_item(&x);
    assert_string_equal(again->orchestratorrequest->instanceid, "c2");
    assert_string_not_equal(again->completiontoken, wi->completiontoken);
    expect(chunk(&x, again, a, 2, -1, false), GRPC_STATUS_OK, NULL);
    assert_int_equal(count(&x.f, "c2", DT_EVENT_TASK_SCHEDULED), 2);
    fix_close(&x);
}

/* A worker that abandons what it is handed (the SDKs' versioning "reject" mode does) gets it
 * back after a wait that grows: a handful of deliveries in three seconds, not hundreds. */
static void test_abandoned_work_comes_back_after_a_growing_back_off(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-abandon");
    start(&x, "picky", "p1");
    dt_time t0 = dt_now(), last = t0, gaps[16];
    int n = 0;
    while (dt_now() - t0 < 3000000 && n < 16) {
        Dtpb__WorkItem *wi = next_item(&x, 3000);
        if (wi == NULL)
            break;
        dt_time now = dt_now();
        gaps[n++] = now - last;
        last = now;
        Dtpb__AbandonOrchestrationTaskRequest ab = DTPB__ABANDON_ORCHESTRATION_TASK_REQUEST__INIT;
        ab.completiontoken = wi->completiontoken;
        expect(call(&x, "AbandonTaskOrchestratorWorkItem", &ab.base), GRPC_STATUS_OK, NULL);
    }
    /* at once, then 0.25, 0.5, 1 and 2 s: at most five deliveries in three seconds */
    if (n < 3 || n > 5)
        fail_msg("%d deliveries in 3 s, want 3 to 5", n);
    for (int i = 2; i < n; i++)
        if (gaps[i] < gaps[i - 1])
            fail_msg("delivery %d came %lld us after the one before, sooner than the %lld "
                     "before it", i, (long long)gaps[i], (long long)gaps[i - 1]);
    assert_true(gaps[1] >= 200000);   /* the first back-off, a quarter second */
    fix_close(&x);
}

/* A completion naming an action we do not serve fails the instance with details saying so,
 * instead of redelivering the episode for ever. */
static void test_a_completion_that_cannot_be_applied_fails_the_instance(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-refused");
    start(&x, "entity_user", "e1");
    Dtpb__WorkItem *wi = must_item(&x);
    Dtpb__OrchestratorAction act = DTPB__ORCHESTRATOR_ACTION__INIT;
    Dtpb__SendEntityMessageAction ent = DTPB__SEND_ENTITY_MESSAGE_ACTION__INIT;
    act.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_ENTITY_MESSAGE;
    act.sendentitymessage = &ent;
    Dtpb__OrchestratorAction *acts[1] = {&act};
    expect(chunk(&x, wi, acts, 1, -1, false), GRPC_STATUS_INVALID_ARGUMENT,
           "the instance was failed");   /* a sendEntityMessage with no message in it */
    dt_instance_state *s = NULL;
    dt_error err = {0};
    assert_ok(dt_client_wait_completion(x.f.client, "e1", 10000, x.f.arena, &s, &err), &err);
    assert_int_equal(s->status, DT_STATUS_FAILED);
    assert_string_equal(s->failure->error_type, "InvalidWorkerResponse");
    assert_non_null(strstr(s->failure->message, "sendEntityMessage"));
    assert_null(next_item(&x, 600));   /* not delivered again */
    fix_close(&x);
}

/* An idle stream gets a HealthPing every interval, so the SDKs that drop a stream silent for
 * two minutes keep it (and the work it holds). */
static void test_an_idle_stream_gets_health_pings(void **state)
{
    (void)state;
    fix x;
    fix_open_ping(&x, "wp-ping", 200);
    dt_time t0 = dt_now();
    int pings = 0;
    while (dt_now() - t0 < 1500000) {
        uint8_t *msg = NULL;
        size_t len = 0;
        dt_grpc_result res = {0};
        if (dt_grpc_stream_next(x.stream, 300, &msg, &len, &res) != DT_OK)
            continue;
        Dtpb__WorkItem *wi = dtpb__work_item__unpack(NULL, len, msg);
        assert_non_null(wi);
        assert_int_equal(wi->request_case, DTPB__WORK_ITEM__REQUEST_HEALTH_PING);
        pings++;
        dtpb__work_item__free_unpacked(wi, NULL);
        free(msg);
    }
    if (pings < 3 || pings > 9)
        fail_msg("%d health pings in 1.5 s at one per 200 ms", pings);
    fix_close(&x);
}

static dt_grpc_result activity_done(fix *x, const Dtpb__WorkItem *wi, const char *result)
{
    Dtpb__ActivityResponse r = DTPB__ACTIVITY_RESPONSE__INIT;
    Dtpb__StringValue v = DTPB__STRING_VALUE__INIT;
    r.instanceid = wi->activityrequest->orchestrationinstance->instanceid;
    r.taskid = wi->activityrequest->taskid;
    r.completiontoken = wi->completiontoken;
    v.value = (char *)result;
    r.result = &v;
    return call(x, "CompleteActivityTask", &r.base);
}

/* A worker whose stream ended (the SDKs drop one they think dead) reconnects and sends an
 * activity's result under the old token: it counts. The activity's redelivered run and a
 * repeat of the late result are acknowledged and dropped: history holds the step once. */
static void test_a_result_under_an_old_token_counts_once_after_a_reconnect(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-late");
    start(&x, "long_job", "l1");
    Dtpb__WorkItem *wi = must_item(&x);
    Dtpb__OrchestratorAction *a[1] = {schedule(&x, 0, "slow")};
    expect(chunk(&x, wi, a, 1, -1, false), GRPC_STATUS_OK, NULL);
    Dtpb__WorkItem *old = must_item(&x);
    assert_int_equal(old->request_case, DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);

    dt_grpc_stream_close(x.stream);   /* the worker drops its stream, its activity runs on */
    x.stream = NULL;
    open_stream(&x);
    Dtpb__WorkItem *again = must_item(&x);   /* the activity, given back and handed out */
    assert_int_equal(again->request_case, DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);
    assert_string_not_equal(again->completiontoken, old->completiontoken);

    expect(activity_done(&x, old, "\"first run\""), GRPC_STATUS_OK, NULL);
    expect(activity_done(&x, old, "\"first run, again\""), GRPC_STATUS_OK, NULL);
    Dtpb__WorkItem *episode = must_item(&x);
    assert_int_equal(episode->request_case, DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST);
    const Dtpb__OrchestratorRequest *rq = episode->orchestratorrequest;
    int done = 0;
    for (size_t i = 0; i < rq->n_newevents; i++)
        if (rq->newevents[i]->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED) {
            done++;
            assert_string_equal(rq->newevents[i]->taskcompleted->result->value, "\"first run\"");
        }
    assert_int_equal(done, 1);
    expect(activity_done(&x, again, "\"second run\""), GRPC_STATUS_OK, NULL);
    Dtpb__OrchestratorAction fin = DTPB__ORCHESTRATOR_ACTION__INIT;
    Dtpb__CompleteOrchestrationAction c = DTPB__COMPLETE_ORCHESTRATION_ACTION__INIT;
    c.orchestrationstatus = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED;
    fin.id = 1;
    fin.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION;
    fin.completeorchestration = &c;
    Dtpb__OrchestratorAction *f1[1] = {&fin};
    expect(chunk(&x, episode, f1, 1, -1, false), GRPC_STATUS_OK, NULL);
    dt_instance_state *s = NULL;
    dt_error err = {0};
    assert_ok(dt_client_wait_completion(x.f.client, "l1", 10000, x.f.arena, &s, &err), &err);
    assert_int_equal(count(&x.f, "l1", DT_EVENT_TASK_COMPLETED), 1);
    fix_close(&x);
}

/* A stream that takes ORCH and ACT at VERSION only, as the SDKs' work item filters ask. */
static void open_filtered(fix *x, char *orch, char *act, char *version)
{
    dt_grpc_stream_close(x->stream);
    x->stream = NULL;
    char *versions[1] = {version};
    Dtpb__OrchestrationFilter of = DTPB__ORCHESTRATION_FILTER__INIT;
    Dtpb__ActivityFilter af = DTPB__ACTIVITY_FILTER__INIT;
    of.name = orch;
    of.versions = versions;
    of.n_versions = 1;
    af.name = act;
    af.versions = versions;
    af.n_versions = 1;
    Dtpb__OrchestrationFilter *ofs[1] = {&of};
    Dtpb__ActivityFilter *afs[1] = {&af};
    Dtpb__WorkItemFilters wf = DTPB__WORK_ITEM_FILTERS__INIT;
    wf.orchestrations = ofs;
    wf.n_orchestrations = 1;
    wf.activities = afs;
    wf.n_activities = 1;
    Dtpb__GetWorkItemsRequest rq = DTPB__GET_WORK_ITEMS_REQUEST__INIT;
    rq.workitemfilters = &wf;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(pb_pack(x->a, &rq.base, &buf, &len), NULL);
    dt_error err = {0};
    assert_ok(dt_grpc_stream_open(x->conn, "GetWorkItems", buf, len, &x->stream, &err), &err);
}

static void start_version(fix *x, const char *id, const char *version)
{
    char got[DT_INSTANCE_ID_MAX + 1];
    dt_start_options so = {.instance_id = id, .version = version};
    dt_error err = {0};
    assert_ok(dt_client_start(x->f.client, "ver", &so, got, &err), &err);
}

static const char *started_version(const Dtpb__WorkItem *wi)
{
    const Dtpb__OrchestratorRequest *r = wi->orchestratorrequest;
    for (size_t i = 0; i < r->n_newevents; i++)
        if (r->newevents[i]->event_type_case == DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED)
            return r->newevents[i]->executionstarted->version
                       ? r->newevents[i]->executionstarted->version->value : "";
    return NULL;
}

/* A worker that asks for version 1.0 gets the 1.0 instance and activity, not the 2.0 ones;
 * an activity keeps the version it was scheduled with; continue-as-new with a new version
 * moves the instance to it (and out of that worker's reach). */
static void test_versions_route_work_and_continue_as_new_moves_to_a_new_one(void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-versions");
    open_filtered(&x, "ver", "act", "1.0");
    start_version(&x, "ver-2", "2.0");
    start_version(&x, "ver-1", "1.0");
    Dtpb__WorkItem *wi = must_item(&x);
    assert_string_equal(wi->orchestratorrequest->instanceid, "ver-1");
    assert_string_equal(started_version(wi), "1.0");

    /* one activity at an explicit version, one without: it runs at its orchestration's */
    Dtpb__OrchestratorAction *a[2] = {schedule(&x, 0, "act"), schedule(&x, 1, "act")};
    Dtpb__StringValue v1 = DTPB__STRING_VALUE__INIT, v3 = DTPB__STRING_VALUE__INIT;
    v1.value = "1.0";
    a[0]->scheduletask->version = &v1;
    expect(chunk(&x, wi, a, 2, -1, false), GRPC_STATUS_OK, NULL);
    Dtpb__WorkItem *next = NULL;   /* the episode a first result may bring meanwhile */
    for (int done = 0; done < 2;) {
        Dtpb__WorkItem *t = must_item(&x);
        if (t->request_case == DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST) {
            assert_null(next);
            next = t;
            continue;
        }
        assert_non_null(t->activityrequest->version);
        assert_string_equal(t->activityrequest->version->value, "1.0");
        expect(activity_done(&x, t, "\"ok\""), GRPC_STATUS_OK, NULL);
        done++;
    }

    wi = next ? next : must_item(&x);
    assert_string_equal(wi->orchestratorrequest->instanceid, "ver-1");
    Dtpb__OrchestratorAction can = DTPB__ORCHESTRATOR_ACTION__INIT;
    can.id = 2;
    Dtpb__CompleteOrchestrationAction c = DTPB__COMPLETE_ORCHESTRATION_ACTION__INIT;
    c.orchestrationstatus = DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_CONTINUED_AS_NEW;
    v3.value = "3.0";
    c.newversion = &v3;
    can.orchestrator_action_type_case =
        DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION;
    can.completeorchestration = &c;
    Dtpb__OrchestratorAction *acts[1] = {&can};
    expect(chunk(&x, wi, acts, 1, -1, false), GRPC_STATUS_OK, NULL);
    assert_null(next_item(&x, 700));   /* 2.0 and 3.0: not for this worker */

    dt_instance_state *s = NULL;
    dt_error err = {0};
    assert_ok(dt_client_get(x.f.client, "ver-1", x.f.arena, &s, &err), &err);
    assert_string_equal(s->version, "3.0");

    open_stream(&x);   /* any version: both come, ver-1's new generation started at 3.0 */
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        Dtpb__WorkItem *any = must_item(&x);
        const char *id = any->orchestratorrequest->instanceid;
        seen |= strcmp(id, "ver-1") == 0 ? 1 : strcmp(id, "ver-2") == 0 ? 2 : 0;
        assert_string_equal(started_version(any), strcmp(id, "ver-1") == 0 ? "3.0" : "2.0");
    }
    assert_int_equal(seen, 3);
    fix_close(&x);
}

/* A stream whose worker takes at most MAX_ACT activities at once (maxConcurrentActivity-
 * WorkItems, as the .NET and Java SDKs send it). */
static void open_capped(fix *x, int32_t max_act)
{
    dt_grpc_stream_close(x->stream);
    x->stream = NULL;
    Dtpb__GetWorkItemsRequest rq = DTPB__GET_WORK_ITEMS_REQUEST__INIT;
    rq.maxconcurrentactivityworkitems = max_act;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_ok(pb_pack(x->a, &rq.base, &buf, &len), NULL);
    dt_error err = {0};
    assert_ok(dt_grpc_stream_open(x->conn, "GetWorkItems", buf, len, &x->stream, &err), &err);
}

/* A worker that takes one activity at a time is given one; the next, once it has sent that
 * one's result, with the episode the result starts. */
static void test_a_worker_holds_no_more_items_than_it_takes_and_gets_the_next_when_one_is_done(
    void **state)
{
    (void)state;
    fix x;
    fix_open(&x, "wp-capped");
    open_capped(&x, 1);
    start(&x, "fan", "cap1");
    Dtpb__WorkItem *wi = must_item(&x);
    Dtpb__OrchestratorAction *two[2] = {schedule(&x, 0, "a"), schedule(&x, 1, "b")};
    expect(chunk(&x, wi, two, 2, -1, false), GRPC_STATUS_OK, NULL);
    Dtpb__WorkItem *first = must_item(&x);
    assert_int_equal(first->request_case, DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST);
    assert_null(next_item(&x, 500));   /* the other activity waits: the worker holds one */

    expect(activity_done(&x, first, "\"1\""), GRPC_STATUS_OK, NULL);
    int acts = 0, episodes = 0;
    for (int i = 0; i < 2; i++) {
        Dtpb__WorkItem *next = must_item(&x);
        acts += next->request_case == DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST;
        episodes += next->request_case == DTPB__WORK_ITEM__REQUEST_ORCHESTRATOR_REQUEST;
        if (next->request_case == DTPB__WORK_ITEM__REQUEST_ACTIVITY_REQUEST)
            assert_int_not_equal(next->activityrequest->taskid, first->activityrequest->taskid);
    }
    assert_int_equal(acts, 1);
    assert_int_equal(episodes, 1);
    fix_close(&x);
}

typedef struct bell_wait {
    dt_hub *hub;
    dt_hub_bell *bell;
    dt_work work;
    dt_status st;
    dt_time took_us;
} bell_wait;

static void *wait_with_bell(void *arg)
{
    bell_wait *b = arg;
    dt_error err = {0};
    dt_time t0 = dt_now();
    b->st = dt_hub_next_work(b->hub, 60000, 0, DT_WORK_ACTIVITY, NULL, b->bell, &b->work, &err);
    b->took_us = dt_now() - t0;
    return NULL;
}

/* A taker's bell ends its wait for work (the wait has nothing to give, so without the bell it
 * would last its whole minute); rung while nobody waits, it keeps the next wait from sleeping;
 * a wait without a ring sleeps as before. */
static void test_a_bell_ends_a_taker_s_wait_for_work(void **state)
{
    (void)state;
    hubfix f;
    hubfix_open(&f, "wp-bell", NULL);
    bell_wait b = {.hub = f.hub, .bell = dt_hub_bell_new()};
    assert_non_null(b.bell);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_with_bell, &b), 0);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);   /* most likely asleep by now; if not, the ring waits for it */
    dt_hub_bell_ring(f.hub, b.bell);
    pthread_join(t, NULL);
    assert_int_equal(b.st, DT_OK);
    assert_null(b.work.act);
    assert_true(b.took_us < 30 * 1000000);   /* the bell, not the minute's end */

    dt_hub_bell_ring(f.hub, b.bell);   /* nobody waits: the next wait does not sleep */
    wait_with_bell(&b);
    assert_int_equal(b.st, DT_OK);
    assert_true(b.took_us < 30 * 1000000);

    dt_error err = {0};   /* rung once, it is quiet again: a short wait lasts its time */
    dt_time t0 = dt_now();
    assert_ok(dt_hub_next_work(f.hub, 300, 0, DT_WORK_ACTIVITY, NULL, b.bell, &b.work, &err),
              &err);
    assert_true(dt_now() - t0 >= 250 * 1000);
    dt_hub_bell_free(b.bell);
    hubfix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_chunked_completion_is_committed_whole_with_its_last_chunk),
        cmocka_unit_test(test_a_chunk_out_of_order_is_refused_and_the_episode_redelivered),
        cmocka_unit_test(test_abandoned_work_comes_back_after_a_growing_back_off),
        cmocka_unit_test(test_a_completion_that_cannot_be_applied_fails_the_instance),
        cmocka_unit_test(test_an_idle_stream_gets_health_pings),
        cmocka_unit_test(test_a_result_under_an_old_token_counts_once_after_a_reconnect),
        cmocka_unit_test(test_versions_route_work_and_continue_as_new_moves_to_a_new_one),
        cmocka_unit_test(
            test_a_worker_holds_no_more_items_than_it_takes_and_gets_the_next_when_one_is_done),
        cmocka_unit_test(test_a_bell_ends_a_taker_s_wait_for_work),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
