/* service.h — the TaskHubSidecarService's messages as our records, for both sides of the
 * wire: the gRPC server (src/grpc/), and the clients (the remote worker in src/remote/, the
 * CLI). Orchestrator actions, instance states, starts, queries and purges, history chunks,
 * work items and their completions. Written with the codec's builder and reader (codec/pb.h),
 * whose ownership and error rules apply to every function here: a *_to_msg function builds
 * a tree in the arena that borrows the records' strings; a *_from_msg function copies what it
 * keeps into the arena and names the refused field in ERR (which may be NULL). On failure
 * the out-parameters are untouched. Internal: never installed. */
#ifndef DT_SERVICE_H
#define DT_SERVICE_H

#include "codec/pb.h"
#include "durabletask/core.h"

/* ---- orchestrator actions (actions.c) ------------------------------------------------------ */

/* svc_action_to_msg: ACT as an OrchestratorAction; id is ACT->id.
 *   schedule task             name, version, input
 *   create sub-orchestration  instance_id, name, version, input
 *   create timer              fire_at (required: 0 is refused)
 *   send event                instance_id (as instance.instanceId), name, input (as data)
 *   complete orchestration    status, result, failure, version (as newVersion),
 *                             carryover (as carryoverEvents)
 *   terminate orchestration   instance_id, input (as reason), recurse
 * DT_ERR_INVALID_ARG for what the protocol cannot carry, DT_ERR_NOMEM. */
dt_status svc_action_to_msg(dt_arena *a, const dt_action *act, Dtpb__OrchestratorAction **out);

/* svc_action_from_msg: the inverse, by the same table. completeOrchestration's `details` and
 * everyone's tags and trace contexts are dropped. A missing createTimer.fireAt or
 * sendEvent.instance is DT_ERR_INVALID_ARG; sendEntityMessage, rewindOrchestration and members
 * newer than we know are DT_ERR_UNIMPLEMENTED naming the action; no member at all is
 * DT_ERR_INVALID_ARG. A refused carried-over event names its index. */
dt_status svc_action_from_msg(dt_arena *a, const Dtpb__OrchestratorAction *m, dt_action *out,
                              dt_error *err);

/* ---- instances (instances.c) --------------------------------------------------------------- */

/* svc_state_to_msg: S as an OrchestrationState (tags included). input, output and
 * customStatus are written only WITH_PAYLOADS (as GetInstanceRequest.getInputsAndOutputs and
 * InstanceQuery.fetchInputsAndOutputs ask); failureDetails always. Times that are 0 are left
 * absent. DT_ERR_INVALID_ARG for an unknown status. */
dt_status svc_state_to_msg(dt_arena *a, const dt_instance_state *s, bool with_payloads,
                           Dtpb__OrchestrationState **out);

/* svc_state_from_msg: the inverse (tags are dropped). */
dt_status svc_state_from_msg(dt_arena *a, const Dtpb__OrchestrationState *m,
                             dt_instance_state *out, dt_error *err);

/* svc_start_from_msg: a CreateInstanceRequest as a dt_start_request for dt_hub_start. An
 * empty instanceId is NULL (the hub generates one). The reuse policy's statuses become
 * replaceable and set reuse_policy: a policy present with no statuses replaces nothing, one
 * absent leaves the hub's default. Tags become one JSON
 * object of strings (keys sorted). executionId, parentTraceContext and requestTime are
 * dropped. Name, id and input are not validated here beyond UTF-8: dt_hub_start does that. */
dt_status svc_start_from_msg(dt_arena *a, const Dtpb__CreateInstanceRequest *m,
                             dt_start_request *out, dt_error *err);

/* svc_query_from_msg: an InstanceQuery as a dt_query (M NULL: match everything, first page).
 * maxInstanceCount above DT_QUERY_PAGE_MAX is lowered to it (a page may always hold fewer
 * than asked), 0 is the default, negative is refused. An empty continuationToken is the
 * first page (continuation NULL). taskHubNames is ignored. */
dt_status svc_query_from_msg(dt_arena *a, const Dtpb__InstanceQuery *m, dt_query *out,
                             dt_error *err);

/* svc_list_ids_from_msg: a ListInstanceIdsRequest as a dt_query: its statuses, completion
 * window, page size (lowered to DT_QUERY_PAGE_MAX; negative is refused) and lastInstanceKey
 * as the continuation (empty: the first page). svc_list_ids_response: the ids of N states
 * and, when there are more, NEXT as lastInstanceKey. */
dt_status svc_list_ids_from_msg(dt_arena *a, const Dtpb__ListInstanceIdsRequest *m,
                                dt_query *out, dt_error *err);
dt_status svc_list_ids_response(dt_arena *a, const dt_instance_state *states, size_t n,
                                const char *next, Dtpb__ListInstanceIdsResponse **out);

/* svc_purge_filter_from_msg: a PurgeInstanceFilter as a dt_query for dt_hub_purge_where
 * (statuses and creation window; the timeout is ignored). */
dt_status svc_purge_filter_from_msg(dt_arena *a, const Dtpb__PurgeInstanceFilter *m,
                                    dt_query *out, dt_error *err);

/* svc_query_response: one page of N states (svc_state_to_msg each, WITH_PAYLOADS as the query
 * asked) and the continuation token NEXT (NULL: the last page, token absent). */
dt_status svc_query_response(dt_arena *a, const dt_instance_state *states, size_t n,
                             const char *next, bool with_payloads,
                             Dtpb__QueryInstancesResponse **out);

/* svc_history_chunk: N events as one HistoryChunk of the StreamInstanceHistory stream. The
 * caller decides how many events go in one chunk. */
dt_status svc_history_chunk(dt_arena *a, const dt_event *events, size_t n,
                            Dtpb__HistoryChunk **out);

/* ---- work items (work_items.c) ------------------------------------------------------------- */

/* svc_orchestrator_request: REQ as an OrchestratorRequest. The whole history is always sent
 * inline (requiresHistoryStreaming false). Wrap it in a WorkItem (orchestratorrequest +
 * completiontoken) to stream it. svc_orchestrator_request_from_msg: the inverse, as a remote
 * worker reads it (past and new events refused by index). */
dt_status svc_orchestrator_request(dt_arena *a, const dt_orch_request *req,
                                   Dtpb__OrchestratorRequest **out);
dt_status svc_orchestrator_request_from_msg(dt_arena *a, const Dtpb__OrchestratorRequest *m,
                                            dt_orch_request *out, dt_error *err);

/* svc_orchestrator_request_session: mark M as an episode of an extended session (the
 * properties the Durable Task Framework sends: IsExtendedSession, an idle timeout of IDLE_S
 * seconds, IncludeState) with N_PAST past events (PastEventCount, ours); unless
 * PAST_INCLUDED, its past events are taken out (the worker's session has them).
 * svc_orchestrator_request_from_msg reads that back into past_left_out. */
dt_status svc_orchestrator_request_session(dt_arena *a, Dtpb__OrchestratorRequest *m,
                                           size_t n_past, bool past_included, double idle_s);

/* svc_activity_request / svc_activity_request_from_msg: an ActivityRequest, both ways. An
 * empty input reads as none (NULL), as the SDKs send it. */
dt_status svc_activity_request(dt_arena *a, const dt_activity_request *req,
                               Dtpb__ActivityRequest **out);
dt_status svc_activity_request_from_msg(dt_arena *a, const Dtpb__ActivityRequest *m,
                                        dt_activity_request *out, dt_error *err);

/* What a worker's OrchestratorResponse says, ready for dt_hub_complete_orchestration. */
typedef struct svc_orch_completion {
    const char *instance_id;
    const char *completion_token;    /* "" if none was sent */
    dt_orch_result result;           /* actions (svc_action_from_msg each) and custom status */
    int32_t n_events_processed;      /* numEventsProcessed; -1 when absent (all of them) */
    bool requires_history;
    /* a chunk of a chunked completion (the .NET and Java SDKs send one above ~3.9 MB): its
     * place (chunkIndex; -1 when absent: not chunked) and whether more follow (isPartial) */
    int32_t chunk_index;
    bool partial;
} svc_orch_completion;

/* svc_orchestrator_response: the OrchestratorResponse a worker sends for the episode of
 * INSTANCE_ID under TOKEN: RESULT's actions and custom status. */
dt_status svc_orchestrator_response(dt_arena *a, const char *instance_id, const char *token,
                                    const dt_orch_result *result,
                                    Dtpb__OrchestratorResponse **out);

/* svc_orchestrator_response_from_msg: M as a svc_orch_completion. A refused action names its
 * index ("actions[2]: ..."). A chunk says so (chunk_index, partial): assembling chunks is the
 * caller's. A negative numEventsProcessed or chunkIndex is DT_ERR_INVALID_ARG. */
dt_status svc_orchestrator_response_from_msg(dt_arena *a, const Dtpb__OrchestratorResponse *m,
                                             svc_orch_completion *out, dt_error *err);

/* What a worker's ActivityResponse says, ready for dt_hub_complete_activity. */
typedef struct svc_activity_completion {
    const char *instance_id;
    int32_t task_id;
    const char *completion_token;    /* "" if none was sent */
    const char *result;              /* JSON or NULL */
    const dt_failure *failure;       /* NULL unless the activity failed */
} svc_activity_completion;

/* svc_activity_response: the ActivityResponse a worker sends for REQ under TOKEN: RESULT, or
 * FAILURE when it is not NULL. */
dt_status svc_activity_response(dt_arena *a, const dt_activity_request *req, const char *token,
                                const char *result, const dt_failure *failure,
                                Dtpb__ActivityResponse **out);

/* svc_activity_response_from_msg: M as a svc_activity_completion. */
dt_status svc_activity_response_from_msg(dt_arena *a, const Dtpb__ActivityResponse *m,
                                         svc_activity_completion *out, dt_error *err);

/* svc_work_filters: GetWorkItemsRequest.workItemFilters naming ORCHESTRATORS and ACTIVITIES
 * (the names are borrowed). svc_work_filters_from_msg: the inverse; *HAS is false when the
 * request sent no filters (any work), and then the filters are left empty. */
dt_status svc_work_filters(dt_arena *a, const dt_name_filter *orchestrators,
                           const dt_name_filter *activities, Dtpb__WorkItemFilters **out);
dt_status svc_work_filters_from_msg(dt_arena *a, const Dtpb__WorkItemFilters *m,
                                    dt_name_filter *orchestrators, dt_name_filter *activities,
                                    bool *has, dt_error *err);

/* ---- entities (entities.c) ----------------------------------------------------------------- */

/* svc_entity_request: REQ as an EntityRequest (the newer entity work item: each operation a
 * HistoryEvent). svc_entity_result_from_msg: a worker's EntityBatchResult as a
 * dt_entity_result (routing fields, operationInfos, are not read: the hub answers callers
 * from its own record). */
dt_status svc_entity_request(dt_arena *a, const dt_entity_request *req,
                             Dtpb__EntityRequest **out);
dt_status svc_entity_result_from_msg(dt_arena *a, const Dtpb__EntityBatchResult *m,
                                     dt_entity_result *out, dt_error *err);

/* svc_entity_filter_from_msg: the entity names of M (NULL or none: an empty filter, n 0),
 * lowercased as entity ids are. */
dt_status svc_entity_filter_from_msg(dt_arena *a, const Dtpb__WorkItemFilters *m,
                                     dt_name_filter *out, dt_error *err);

/* The worker's side (the remote C worker): svc_entity_filter adds ENTITIES' names to the work
 * item filters M; svc_entity_request_from_msg reads an EntityRequest (its operations must be
 * signals or calls); svc_entity_result packs a batch's result under TOKEN. */
dt_status svc_entity_filter(dt_arena *a, const dt_name_filter *entities,
                            Dtpb__WorkItemFilters *m);
dt_status svc_entity_request_from_msg(dt_arena *a, const Dtpb__EntityRequest *m,
                                      dt_entity_request *out, dt_error *err);
dt_status svc_entity_result(dt_arena *a, const dt_entity_result *res, const char *token,
                            Dtpb__EntityBatchResult **out);

/* svc_completion_unwrap: the WorkerCompletion in LEN bytes at BUF (durabletask-c's
 * completion stream) without parsing what it holds: *METHOD, the unary method that takes
 * that completion ("CompleteActivityTask"), and *BODY (pointing into BUF), *BODY_LEN bytes,
 * the message that method takes. DT_ERR_INVALID_ARG if the bytes are no WorkerCompletion
 * holding one orchestrator, activity or entity completion. */
dt_status svc_completion_unwrap(const uint8_t *buf, size_t len, const char **method,
                                const uint8_t **body, size_t *body_len);

/* svc_completion_method: the unary method that takes what WorkerCompletion FIELD holds
 * ("CompleteActivityTask" for DTPB__WORKER_COMPLETION__COMPLETION_ACTIVITY); NULL for a
 * field that is none of the three. */
const char *svc_completion_method(uint32_t field);

/* svc_entity_metadata: S as an EntityMetadata (its state only WITH_STATE).
 * svc_entity_from_metadata: the inverse, in arena A (has_state: M carried a state).
 * svc_entity_query_from_msg: an EntityQuery as a dt_entity_query (M NULL: everything). */
dt_status svc_entity_metadata(dt_arena *a, const dt_entity_state *s, bool with_state,
                              Dtpb__EntityMetadata **out);
dt_status svc_entity_from_metadata(dt_arena *a, const Dtpb__EntityMetadata *m,
                                   dt_entity_state *out, dt_error *err);
dt_status svc_entity_query_from_msg(dt_arena *a, const Dtpb__EntityQuery *m,
                                    dt_entity_query *out, dt_error *err);

#endif
