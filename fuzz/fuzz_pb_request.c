/* fuzz_pb_request.c — the protobuf a peer sends: every request message the gRPC server
 * accepts (client calls and worker completions), what a remote worker and the CLI read back
 * from a server, and the HistoryEvent blobs the store keeps. The first byte picks the message;
 * the rest goes through the same path the server takes: pb_unpack (the wire check, then
 * protobuf-c) and the service mapping into our records. What the mapping accepts from a worker
 * must also build and pack again (the hub hands it on: a record accepted but unbuildable would
 * be a poison item), and a stored event that decodes must encode. */
#include <stdlib.h>
#include <string.h>

#include "codec/pb.h"
#include "durabletask/codec.h"
#include "fuzz.h"
#include "service/service.h"

typedef void (*read_fn)(dt_arena *a, void *msg);

static void check_mapped(dt_status st, const dt_error *err)
{
    /* a refusal always says why */
    fuzz_check(st == DT_OK || err->message[0] != '\0', "a refusal without a message");
}

static void read_start(dt_arena *a, void *m)
{
    dt_start_request out;
    dt_error err = {0};
    check_mapped(svc_start_from_msg(a, m, &out, &err), &err);
}

static void read_query(dt_arena *a, void *m)
{
    dt_query out;
    dt_error err = {0};
    dt_status st = svc_query_from_msg(a, ((Dtpb__QueryInstancesRequest *)m)->query, &out, &err);
    check_mapped(st, &err);
    if (st == DT_OK)
        fuzz_check(out.page_size <= DT_QUERY_PAGE_MAX, "a query page over the maximum");
}

static void read_list_ids(dt_arena *a, void *m)
{
    dt_query out;
    dt_error err = {0};
    dt_status st = svc_list_ids_from_msg(a, m, &out, &err);
    check_mapped(st, &err);
    if (st == DT_OK)
        fuzz_check(out.page_size <= DT_QUERY_PAGE_MAX, "a list page over the maximum");
}

static void read_purge(dt_arena *a, void *m)
{
    Dtpb__PurgeInstancesRequest *r = m;
    dt_query out;
    dt_error err = {0};
    if (r->request_case == DTPB__PURGE_INSTANCES_REQUEST__REQUEST_PURGE_INSTANCE_FILTER)
        check_mapped(svc_purge_filter_from_msg(a, r->purgeinstancefilter, &out, &err), &err);
}

static void read_signal_entity(dt_arena *a, void *m)
{
    Dtpb__SignalEntityRequest *r = m;
    dt_error err = {0};
    pb_reader rd = PB_READER(a, &err, "SignalEntityRequest");
    (void)pb_r_time(&rd, r->scheduledtime, "scheduledTime");
    check_mapped(rd.status, &err);
}

static void read_entity_query(dt_arena *a, void *m)
{
    dt_entity_query out;
    dt_error err = {0};
    check_mapped(svc_entity_query_from_msg(a, ((Dtpb__QueryEntitiesRequest *)m)->query, &out,
                                           &err), &err);
}

static void read_work_items(dt_arena *a, void *m)
{
    Dtpb__GetWorkItemsRequest *r = m;
    dt_name_filter orch, act, ent;
    bool has = false;
    dt_error err = {0};
    dt_status st = svc_work_filters_from_msg(a, r->workitemfilters, &orch, &act, &has, &err);
    if (st == DT_OK && has)
        st = svc_entity_filter_from_msg(a, r->workitemfilters, &ent, &err);
    check_mapped(st, &err);
}

static void read_orch_response(dt_arena *a, void *m)
{
    svc_orch_completion done;
    dt_error err = {0};
    dt_status st = svc_orchestrator_response_from_msg(a, m, &done, &err);
    check_mapped(st, &err);
    if (st != DT_OK)
        return;
    /* what was accepted builds and packs again, as it will go to the store and to workers */
    Dtpb__OrchestratorResponse *again = NULL;
    st = svc_orchestrator_response(a, done.instance_id, done.completion_token, &done.result,
                                   &again);
    fuzz_check(st == DT_OK, "an accepted OrchestratorResponse does not build again");
    uint8_t *buf = NULL;
    size_t len = 0;
    fuzz_check(pb_pack(a, &again->base, &buf, &len) == DT_OK, "cannot pack it");
    void *back = NULL;
    st = pb_unpack(a, &dtpb__orchestrator_response__descriptor, buf, len, &back, &err);
    fuzz_check(st == DT_OK, "our own OrchestratorResponse does not unpack");
    svc_orch_completion done2;
    st = svc_orchestrator_response_from_msg(a, back, &done2, &err);
    fuzz_check(st == DT_OK, "our own OrchestratorResponse is refused");
    fuzz_check(done2.result.n_actions == done.result.n_actions, "actions lost on the way");
}

static void read_activity_response(dt_arena *a, void *m)
{
    svc_activity_completion done;
    dt_error err = {0};
    check_mapped(svc_activity_response_from_msg(a, m, &done, &err), &err);
}

static void read_entity_result(dt_arena *a, void *m)
{
    dt_entity_result out;
    dt_error err = {0};
    check_mapped(svc_entity_result_from_msg(a, m, &out, &err), &err);
}

/* the client side: what a remote worker and the CLI read from a server */
static void read_orch_request(dt_arena *a, void *m)
{
    dt_orch_request out;
    dt_error err = {0};
    check_mapped(svc_orchestrator_request_from_msg(a, m, &out, &err), &err);
}

static void read_activity_request(dt_arena *a, void *m)
{
    dt_activity_request out;
    dt_error err = {0};
    check_mapped(svc_activity_request_from_msg(a, m, &out, &err), &err);
}

static void read_entity_request(dt_arena *a, void *m)
{
    dt_entity_request out;
    dt_error err = {0};
    check_mapped(svc_entity_request_from_msg(a, m, &out, &err), &err);
}

static void read_state(dt_arena *a, void *m)
{
    Dtpb__GetInstanceResponse *r = m;
    dt_instance_state out;
    dt_error err = {0};
    if (r->orchestrationstate)
        check_mapped(svc_state_from_msg(a, r->orchestrationstate, &out, &err), &err);
}

static void read_entity_metadata(dt_arena *a, void *m)
{
    Dtpb__GetEntityResponse *r = m;
    dt_entity_state out;
    dt_error err = {0};
    if (r->entity)
        check_mapped(svc_entity_from_metadata(a, r->entity, &out, &err), &err);
}

/* The messages, in a fixed order: a saved input keeps its meaning, so only append. Those
 * without a reader are used as unpacked (their strings go to the hub, which validates them). */
static const struct {
    const ProtobufCMessageDescriptor *desc;
    read_fn read;
} messages[] = {
    {&dtpb__empty__descriptor, NULL},
    {&dtpb__create_instance_request__descriptor, read_start},
    {&dtpb__get_instance_request__descriptor, NULL},
    {&dtpb__raise_event_request__descriptor, NULL},
    {&dtpb__terminate_request__descriptor, NULL},
    {&dtpb__suspend_request__descriptor, NULL},
    {&dtpb__resume_request__descriptor, NULL},
    {&dtpb__rewind_instance_request__descriptor, NULL},
    {&dtpb__query_instances_request__descriptor, read_query},
    {&dtpb__list_instance_ids_request__descriptor, read_list_ids},
    {&dtpb__purge_instances_request__descriptor, read_purge},
    {&dtpb__restart_instance_request__descriptor, NULL},
    {&dtpb__stream_instance_history_request__descriptor, NULL},
    {&dtpb__create_task_hub_request__descriptor, NULL},
    {&dtpb__delete_task_hub_request__descriptor, NULL},
    {&dtpb__signal_entity_request__descriptor, read_signal_entity},
    {&dtpb__get_entity_request__descriptor, NULL},
    {&dtpb__query_entities_request__descriptor, read_entity_query},
    {&dtpb__clean_entity_storage_request__descriptor, NULL},
    {&dtpb__get_work_items_request__descriptor, read_work_items},
    {&dtpb__orchestrator_response__descriptor, read_orch_response},
    {&dtpb__activity_response__descriptor, read_activity_response},
    {&dtpb__abandon_orchestration_task_request__descriptor, NULL},
    {&dtpb__abandon_activity_task_request__descriptor, NULL},
    {&dtpb__abandon_entity_task_request__descriptor, NULL},
    {&dtpb__entity_batch_result__descriptor, read_entity_result},
    {&dtpb__orchestrator_request__descriptor, read_orch_request},
    {&dtpb__activity_request__descriptor, read_activity_request},
    {&dtpb__entity_request__descriptor, read_entity_request},
    {&dtpb__get_instance_response__descriptor, read_state},
    {&dtpb__get_entity_response__descriptor, read_entity_metadata},
    {NULL, NULL},    /* a HistoryEvent blob from the store: dt_event_decode */
};
#define N_MESSAGES (sizeof messages / sizeof messages[0])

int dt_fuzz_pb_selector(const void *desc)
{
    for (size_t i = 0; i < N_MESSAGES; i++)
        if (messages[i].desc == desc)
            return (int)i;
    return -1;
}

/* read_event_blob: a stored event that decodes encodes again (the store hands events on). */
static void read_event_blob(dt_arena *a, const uint8_t *data, size_t size)
{
    dt_event ev;
    dt_error err = {0};
    dt_status st = dt_event_decode(data, size, a, &ev, &err);
    if (st != DT_OK) {
        fuzz_check(st == DT_ERR_CORRUPT, "a refused event blob is not DT_ERR_CORRUPT");
        return;
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    st = dt_event_encode(&ev, &buf, &len);
    fuzz_check(st == DT_OK, "a decoded event does not encode");
    dt_event ev2;
    st = dt_event_decode(buf, len, a, &ev2, &err);
    free(buf);
    fuzz_check(st == DT_OK, "our own event blob does not decode");
    fuzz_check(ev2.type == ev.type && ev2.event_id == ev.event_id &&
               ev2.timestamp == ev.timestamp, "an event changed on the way");
}

int dt_fuzz_pb_request(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t which = data[0] % N_MESSAGES;
    dt_arena *a = dt_arena_new();
    if (a == NULL)
        return 0;
    if (messages[which].desc == NULL) {
        read_event_blob(a, data + 1, size - 1);
    } else {
        void *msg = NULL;
        dt_error err = {0};
        dt_status st = pb_unpack(a, messages[which].desc, data + 1, size - 1, &msg, &err);
        if (st == DT_OK) {
            fuzz_check(msg != NULL, "pb_unpack said yes and gave nothing");
            if (messages[which].read)
                messages[which].read(a, msg);
        } else {
            fuzz_check(st == DT_ERR_INVALID_ARG || st == DT_ERR_NOMEM,
                       "pb_unpack refused with an unexpected code");
        }
    }
    dt_arena_free(a);
    return 0;
}
