/* make_corpus.c — writes the fuzz targets' seed inputs (fuzz/corpus/<target>/): valid
 * requests of every kind, built with the same builders the server and the workers use, so
 * the fuzzers start from inputs that get past the first checks. Run it again after a message
 * changes: `build-dev/fuzz/fuzz_make_corpus fuzz/corpus`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "durabletask/codec.h"
#include "fuzz.h"
#include "service/service.h"

static const char *root;
static dt_arena *arena;

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, target);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/%s/%s", root, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        exit(1);
    }
}

/* pb: MSG packed behind the byte that picks its type. */
static void pb(const char *name, const ProtobufCMessage *msg)
{
    int sel = dt_fuzz_pb_selector(msg->descriptor);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (sel < 0 || pb_pack(arena, msg, &buf, &len) != DT_OK) {
        fprintf(stderr, "make_corpus: cannot pack %s\n", name);
        exit(1);
    }
    uint8_t *out = malloc(len + 1);
    out[0] = (uint8_t)sel;
    memcpy(out + 1, buf, len);
    put("pb_request", name, out, len + 1);
    free(out);
}

static void must(dt_status st, const char *what)
{
    if (st != DT_OK) {
        fprintf(stderr, "make_corpus: %s: %s\n", what, dt_strerror(st));
        exit(1);
    }
}

#define T0 INT64_C(1769860800000000)   /* 2026-01-31T12:00:00Z */

static void pb_seeds(void)
{
    static Dtpb__StringValue in = DTPB__STRING_VALUE__INIT, ver = DTPB__STRING_VALUE__INIT;
    in.value = "{\"city\":\"Tokyo\",\"n\":[1,2.5,null]}";
    ver.value = "1.0";
    static Dtpb__Timestamp ts = DTPB__TIMESTAMP__INIT;
    ts.seconds = T0 / 1000000;
    ts.nanos = 123000000;

    Dtpb__Empty empty = DTPB__EMPTY__INIT;
    pb("hello", &empty.base);

    Dtpb__CreateInstanceRequest start = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    start.instanceid = "order-42";
    start.name = "ProcessOrder";
    start.version = &ver;
    start.input = &in;
    start.scheduledstarttimestamp = &ts;
    Dtpb__CreateInstanceRequest__TagsEntry tag = DTPB__CREATE_INSTANCE_REQUEST__TAGS_ENTRY__INIT;
    tag.key = "team";
    tag.value = "payments";
    Dtpb__CreateInstanceRequest__TagsEntry *tags[] = {&tag};
    start.tags = tags;
    start.n_tags = 1;
    Dtpb__OrchestrationIdReusePolicy policy = DTPB__ORCHESTRATION_ID_REUSE_POLICY__INIT;
    Dtpb__OrchestrationStatus replace[] = {DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_COMPLETED,
                                           DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_FAILED};
    policy.replaceablestatus = replace;
    policy.n_replaceablestatus = 2;
    start.orchestrationidreusepolicy = &policy;
    pb("create_instance", &start.base);

    Dtpb__GetInstanceRequest get = DTPB__GET_INSTANCE_REQUEST__INIT;
    get.instanceid = "order-42";
    get.getinputsandoutputs = true;
    pb("get_instance", &get.base);

    Dtpb__RaiseEventRequest raise = DTPB__RAISE_EVENT_REQUEST__INIT;
    raise.instanceid = "order-42";
    raise.name = "approval";
    raise.input = &in;
    pb("raise_event", &raise.base);

    Dtpb__TerminateRequest term = DTPB__TERMINATE_REQUEST__INIT;
    term.instanceid = "order-42";
    term.output = &in;
    term.recursive = true;
    pb("terminate", &term.base);

    Dtpb__QueryInstancesRequest qr = DTPB__QUERY_INSTANCES_REQUEST__INIT;
    Dtpb__InstanceQuery q = DTPB__INSTANCE_QUERY__INIT;
    Dtpb__OrchestrationStatus running[] = {DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_RUNNING};
    q.runtimestatus = running;
    q.n_runtimestatus = 1;
    q.createdtimefrom = &ts;
    q.maxinstancecount = 50;
    Dtpb__StringValue prefix = DTPB__STRING_VALUE__INIT;
    prefix.value = "order-";
    q.instanceidprefix = &prefix;
    q.fetchinputsandoutputs = true;
    qr.query = &q;
    pb("query_instances", &qr.base);

    Dtpb__ListInstanceIdsRequest list = DTPB__LIST_INSTANCE_IDS_REQUEST__INIT;
    list.runtimestatus = running;
    list.n_runtimestatus = 1;
    list.pagesize = 10;
    pb("list_instance_ids", &list.base);

    Dtpb__PurgeInstancesRequest purge = DTPB__PURGE_INSTANCES_REQUEST__INIT;
    Dtpb__PurgeInstanceFilter pf = DTPB__PURGE_INSTANCE_FILTER__INIT;
    pf.createdtimefrom = &ts;
    pf.runtimestatus = replace;
    pf.n_runtimestatus = 2;
    purge.request_case = DTPB__PURGE_INSTANCES_REQUEST__REQUEST_PURGE_INSTANCE_FILTER;
    purge.purgeinstancefilter = &pf;
    purge.recursive = true;
    pb("purge_filter", &purge.base);

    Dtpb__SignalEntityRequest sig = DTPB__SIGNAL_ENTITY_REQUEST__INIT;
    sig.instanceid = "@counter@a";
    sig.name = "add";
    sig.input = &in;
    sig.requestid = "6f1c2a9e-0000-4000-8000-000000000001";
    sig.scheduledtime = &ts;
    pb("signal_entity", &sig.base);

    Dtpb__QueryEntitiesRequest qe = DTPB__QUERY_ENTITIES_REQUEST__INIT;
    Dtpb__EntityQuery eq = DTPB__ENTITY_QUERY__INIT;
    Dtpb__StringValue eprefix = DTPB__STRING_VALUE__INIT;
    eprefix.value = "@counter@";
    eq.instanceidstartswith = &eprefix;
    eq.includestate = true;
    Dtpb__Int32Value page = DTPB__INT32_VALUE__INIT;
    page.value = 20;
    eq.pagesize = &page;
    qe.query = &eq;
    pb("query_entities", &qe.base);

    /* a filtered work item stream */
    dt_name_filter orch = {0}, act = {0}, ent = {0};
    const char *on[] = {"ProcessOrder"}, *an[] = {"Charge", "Ship"}, *en[] = {"counter"};
    orch.names = on;
    orch.n = 1;
    act.names = an;
    act.n = 2;
    ent.names = en;
    ent.n = 1;
    Dtpb__GetWorkItemsRequest gw = DTPB__GET_WORK_ITEMS_REQUEST__INIT;
    must(svc_work_filters(arena, &orch, &act, &gw.workitemfilters), "work filters");
    must(svc_entity_filter(arena, &ent, gw.workitemfilters), "entity filter");
    gw.maxconcurrentorchestrationworkitems = 4;
    pb("get_work_items", &gw.base);

    /* an orchestrator's answer with one action of each kind it can take */
    dt_failure fail = {.error_type = "InvalidOperationException", .message = "no stock",
                       .stack_trace = "at Ship()", .properties = "{\"sku\":\"A-1\",\"n\":3}"};
    dt_event carried = {.type = DT_EVENT_EVENT_RAISED, .event_id = -1, .timestamp = T0,
                        .name = "later", .input = "1"};
    dt_action acts[] = {
        {.type = DT_ACTION_SCHEDULE_TASK, .id = 0, .name = "Charge", .version = "2",
         .input = "{\"amount\":12.5}", .tags = "{\"k\":\"v\"}",
         .trace_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        {.type = DT_ACTION_CREATE_SUB_ORCHESTRATION, .id = 1, .name = "Ship",
         .instance_id = "order-42:ship", .input = "[1,2]"},
        {.type = DT_ACTION_CREATE_TIMER, .id = 2, .fire_at = T0 + 1000000},
        {.type = DT_ACTION_SEND_EVENT, .id = 3, .name = "ping", .instance_id = "other",
         .input = "true"},
        {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 4, .status = DT_STATUS_COMPLETED,
         .result = "\"done\"", .tags = "{\"outcome\":\"ok\"}"},
    };
    dt_orch_result res = {.actions = acts, .n_actions = 5, .custom_status = "{\"step\":3}"};
    Dtpb__OrchestratorResponse *or = NULL;
    must(svc_orchestrator_response(arena, "order-42", "tok-1", &res, &or), "response");
    pb("orchestrator_response", &or->base);
    dt_action failed[] = {{.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 0,
                           .status = DT_STATUS_FAILED, .failure = &fail}};
    dt_action again[] = {{.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 0,
                          .status = DT_STATUS_CONTINUED_AS_NEW, .result = "{\"n\":2}",
                          .carryover = &carried, .n_carryover = 1}};
    res = (dt_orch_result){.actions = failed, .n_actions = 1};
    must(svc_orchestrator_response(arena, "order-42", "tok-2", &res, &or), "response");
    pb("orchestrator_response_failed", &or->base);
    res = (dt_orch_result){.actions = again, .n_actions = 1};
    must(svc_orchestrator_response(arena, "order-42", "tok-3", &res, &or), "response");
    pb("orchestrator_response_continue_as_new", &or->base);

    dt_activity_request areq = {.instance_id = "order-42", .execution_id = "e1", .task_id = 0,
                                .name = "Charge", .version = "2", .input = "{\"amount\":1}"};
    Dtpb__ActivityResponse *ar = NULL;
    must(svc_activity_response(arena, &areq, "tok-4", "{\"paid\":true}", NULL, &ar), "activity");
    pb("activity_response", &ar->base);
    must(svc_activity_response(arena, &areq, "tok-5", NULL, &fail, &ar), "activity");
    pb("activity_response_failed", &ar->base);

    dt_entity_op_result ops[] = {{.result = "5"}, {.failure = &fail}};
    dt_entity_result eres = {.results = ops, .n_results = 2, .state = "{\"count\":5}"};
    Dtpb__EntityBatchResult *eb = NULL;
    must(svc_entity_result(arena, &eres, "tok-6", &eb), "entity result");
    pb("entity_batch_result", &eb->base);

    /* what a worker reads: a request with a history */
    dt_event past[] = {
        {.type = DT_EVENT_ORCHESTRATOR_STARTED, .event_id = -1, .timestamp = T0},
        {.type = DT_EVENT_EXECUTION_STARTED, .event_id = -1, .timestamp = T0,
         .name = "ProcessOrder", .version = "1.0", .input = "{\"a\":1}",
         .instance_id = "order-42", .execution_id = "e1", .tags = "{\"team\":\"payments\"}"},
        {.type = DT_EVENT_TASK_SCHEDULED, .event_id = 0, .timestamp = T0, .name = "Charge",
         .input = "1"},
        {.type = DT_EVENT_TIMER_CREATED, .event_id = 1, .timestamp = T0, .fire_at = T0 + 5},
    };
    dt_event fresh[] = {
        {.type = DT_EVENT_TASK_COMPLETED, .event_id = -1, .timestamp = T0, .task_id = 0,
         .result = "2"},
        {.type = DT_EVENT_TASK_FAILED, .event_id = -1, .timestamp = T0, .task_id = 0,
         .failure = &fail},
        {.type = DT_EVENT_TIMER_FIRED, .event_id = -1, .timestamp = T0, .task_id = 1,
         .fire_at = T0 + 5},
        {.type = DT_EVENT_EVENT_RAISED, .event_id = -1, .timestamp = T0, .name = "approval",
         .input = "true"},
    };
    dt_orch_request oreq = {.instance_id = "order-42", .execution_id = "e1", .past = past,
                            .n_past = 4, .new_events = fresh, .n_new = 4};
    Dtpb__OrchestratorRequest *oq = NULL;
    must(svc_orchestrator_request(arena, &oreq, &oq), "orchestrator request");
    pb("orchestrator_request", &oq->base);
    Dtpb__ActivityRequest *aq = NULL;
    must(svc_activity_request(arena, &areq, &aq), "activity request");
    pb("activity_request", &aq->base);
    dt_event eops[] = {{.type = DT_EVENT_ENTITY_SIGNALED, .event_id = -1, .timestamp = T0,
                        .name = "add", .input = "1", .instance_id = "r-1"}};
    dt_entity_request ereq = {.entity_id = "@counter@a", .state = "4", .operations = eops,
                              .n_operations = 1};
    Dtpb__EntityRequest *erq = NULL;
    must(svc_entity_request(arena, &ereq, &erq), "entity request");
    pb("entity_request", &erq->base);

    dt_instance_state st = {.instance_id = "order-42", .execution_id = "e1",
                            .name = "ProcessOrder", .status = DT_STATUS_FAILED,
                            .input = "{}", .failure = &fail, .created_at = T0,
                            .last_updated_at = T0 + 1, .completed_at = T0 + 2,
                            .tags = "{\"a\":\"b\"}"};
    Dtpb__GetInstanceResponse gr = DTPB__GET_INSTANCE_RESPONSE__INIT;
    gr.exists = true;
    must(svc_state_to_msg(arena, &st, true, &gr.orchestrationstate), "state");
    pb("get_instance_response", &gr.base);
    dt_entity_state es = {.entity_id = "@counter@a", .state = "5", .has_state = true,
                          .last_modified = T0, .locked_by = "order-42", .backlog = 2};
    Dtpb__GetEntityResponse ger = DTPB__GET_ENTITY_RESPONSE__INIT;
    ger.exists = true;
    must(svc_entity_metadata(arena, &es, true, &ger.entity), "entity metadata");
    pb("get_entity_response", &ger.base);

    /* stored event blobs */
    int blob = dt_fuzz_pb_selector(NULL);
    for (size_t i = 0; i < 4; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        must(dt_event_encode(i < 2 ? &past[i + 1] : &fresh[i - 1], &buf, &len), "event");
        uint8_t *out = malloc(len + 1);
        out[0] = (uint8_t)blob;
        memcpy(out + 1, buf, len);
        char name[32];
        snprintf(name, sizeof name, "event_blob_%zu", i);
        put("pb_request", name, out, len + 1);
        free(out);
        free(buf);
    }
}

static void text(const char *target, const char *name, const char *s)
{
    put(target, name, s, strlen(s));
}

/* sel: a text behind its selector byte (json). */
static void sel(const char *name, int which, const char *s, size_t len)
{
    char buf[512];
    buf[0] = (char)which;
    memcpy(buf + 1, s, len);
    put("json", name, buf, len + 1);
}

static void text_seeds(void)
{
    const char *times[] = {"2026-01-31T12:00:00Z", "2026-01-31T12:00:00.123456Z",
                           "2026-01-31", "2026-01-31 12:00", "2026-01-31t12:00:00+05:30",
                           "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z",
                           "2016-12-31T23:59:60Z", "1969-12-31T23:59:59.9999-0100"};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "time_%zu", i);
        text("time", name, times[i]);
    }
    const char *json[] = {"{\"a\":[1,2.5e3,true,null,\"x\\u00e9\"]}", "\"text\"", "42",
                          "blob:v1:https://store/abc", "{\"k\":\"v\",\"k2\":\"\"}", " [ ] "};
    for (size_t i = 0; i < sizeof json / sizeof json[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "json_%zu", i);
        sel(name, 0, json[i], strlen(json[i]));
    }
    static const char merge[] = "{\"a\":\"1\",\"b\":\"2\"}\0{\"b\":\"3\",\"c\":\"4\"}";
    sel("merge_0", 1, merge, sizeof merge - 1);
    sel("merge_none", 1, "\0{\"x\":\"y\"}", 11);
    const char *ids[] = {"order-42", "@Counter@key", "@counter@", "hub_1", "@a@b@c"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char name[16];
        snprintf(name, sizeof name, "id_%zu", i);
        sel(name, 2, ids[i], strlen(ids[i]));
    }

    const char *api = "/runtime/webhooks/durabletask";
    char req[1024];
#define HTTP(name, ...) (snprintf(req, sizeof req, __VA_ARGS__), text("http_request", name, req))
    HTTP("start", "POST %s/orchestrators/ProcessOrder/order-42?version=1.0\n"
         "Host: localhost:4000\nContent-Type: application/json\n\n{\"city\":\"Tokyo\"}", api);
    HTTP("start_no_id", "POST %s/orchestrators/ProcessOrder\n\n[1,2,3]", api);
    HTTP("status", "GET %s/instances/order-42?showHistory=true&showHistoryOutput=true"
         "&showInput=true\nHost: localhost\n\n", api);
    HTTP("list", "GET %s/instances?runtimeStatus=Running,Pending&createdTimeFrom="
         "2026-01-01T00:00:00Z&top=5&instanceIdPrefix=order&showInput=true\n"
         "x-ms-continuation-token: b3JkZXItNDI=\n\n", api);
    HTTP("counts", "GET %s/counts\n\n", api);
    HTTP("raise", "POST %s/instances/order-42/raiseEvent/approval\n\n{\"ok\":true}", api);
    HTTP("terminate", "POST %s/instances/order-42/terminate?reason=enough%%20now\n\n", api);
    HTTP("suspend", "POST %s/instances/order-42/suspend?reason=wait\n\n", api);
    HTTP("resume", "POST %s/instances/order-42/resume\n\n", api);
    HTTP("rewind", "POST %s/instances/order-42/rewind?reason=retry\n\n", api);
    HTTP("restart", "POST %s/instances/order-42/restart?restartWithNewInstanceId=true\n\n",
         api);
    HTTP("purge", "DELETE %s/instances/order-42\n\n", api);
    HTTP("purge_where", "DELETE %s/instances?runtimeStatus=Completed&createdTimeTo="
         "2027-01-01\n\n", api);
    HTTP("signal", "POST %s/entities/counter/a?op=add\n\n5", api);
    HTTP("entity", "GET %s/entities/counter/a\n\n", api);
    HTTP("entities", "GET %s/entities/counter?keyPrefix=a&top=3\n\n", api);
    HTTP("entities_all", "GET %s/entities?entityIdPrefix=%%40counter&fetchState=true\n\n",
         api);
    HTTP("healthz", "GET /healthz\n\n");
    HTTP("openapi", "HEAD /openapi.json\n\n");
    HTTP("metrics", "GET /metrics\n\n");
    HTTP("taskhubs", "GET /taskhubs\n\n");
    HTTP("dashboard", "GET /\n\n");
    HTTP("encoded", "GET %s/instances/a%%2Fb%%3Fc\n\n", api);
#undef HTTP
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_make_corpus DIR (fuzz/corpus)\n");
        return 2;
    }
    root = argv[1];
    mkdir(root, 0777);
    arena = dt_arena_new();
    if (arena == NULL)
        return 1;
    pb_seeds();
    text_seeds();
    dt_arena_free(arena);
    return 0;
}
