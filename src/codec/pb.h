/* pb.h — the bridge between the dt_* records and the generated dtpb protobuf messages, for
 * src/codec/ and src/grpc/ only (internal: never installed, never included by public headers).
 * event_codec.c implements the shared pieces (times, string values, failures, statuses) and
 * the HistoryEvent mapping; pb_convert.c the service's messages (actions, states, work items,
 * queries) and the byte-level helpers (UTF-8, the wire check, pack and unpack).
 *
 * Ownership, for every function here:
 *  - Everything a function allocates, C records and dtpb messages alike, lives in the dt_arena
 *    it is given. Nothing is malloc'd; freeing the arena frees it all, and nothing else does.
 *  - A *_to_msg function (and pb_orchestrator_request, pb_activity_request, pb_history_chunk,
 *    pb_query_response) builds a message tree in the arena for protobuf-c to pack. The tree
 *    BORROWS the strings of the records it was built from (packing only reads them), so those
 *    records must stay alive and unchanged until the tree has been packed. Never hand such a
 *    tree to protobuf_c_message_free_unpacked: it was not malloc'd.
 *  - A *_from_msg function copies every string it keeps into the arena: the result does not
 *    depend on the message, which may be freed right after.
 *  - pb_unpack puts the unpacked message in the arena too (protobuf-c allocates through it),
 *    and pb_pack the packed bytes. A request handler needs one arena, freed when it is done.
 *  - On failure the out-parameters are untouched. What was allocated before the failure stays
 *    in the arena until the caller frees it; there is nothing else to undo.
 *
 * Errors. *_to_msg: DT_ERR_INVALID_ARG when the record holds something the protocol cannot
 * carry (a time outside years 1..9999, an unknown status or type, a failure chain deeper than
 * PB_FAILURE_DEPTH_MAX), DT_ERR_NOMEM. *_from_msg (the message came from a peer):
 * DT_ERR_INVALID_ARG with ERR naming the field ("scheduleTask.name is not valid UTF-8"),
 * DT_ERR_UNIMPLEMENTED for what the protocol has and we do not (entities, rewind, chunked
 * completions), DT_ERR_NOMEM. ERR may be NULL everywhere.
 *
 * Strings. protobuf-c neither validates UTF-8 in `string` fields nor keeps their length, so a
 * peer could send invalid UTF-8 or a NUL that silently cuts a payload short. Every string a
 * *_from_msg function reads is checked with pb_utf8_valid; pb_unpack also checks every string
 * on the wire for both problems before protobuf-c sees the bytes. The *_to_msg functions
 * trust the records (strings crossing our API are UTF-8 by contract; see STYLE.md). */
#ifndef DT_CODEC_PB_H
#define DT_CODEC_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask.pb-c.h"
#include "durabletask/core.h"
#include "durabletask/hub.h"
#include "durabletask/store.h"

/* Failure chains deeper than this (innerFailure links) are refused both ways. */
#define PB_FAILURE_DEPTH_MAX 64

/* Messages nested deeper than this are refused by pb_unpack before protobuf-c parses them:
 * protobuf-c recurses once per level with no limit of its own, and a few tens of kilobytes of
 * nesting exhaust a thread's stack. Our deepest legitimate message, a carried-over TaskFailed
 * event with a full failure chain inside an OrchestratorResponse, is about 70 levels. */
#define PB_DEPTH_MAX 100

/* ---- bytes ------------------------------------------------------------------------------- */

/* pb_utf8_valid: S (NUL-terminated; NULL counts as valid) is well-formed UTF-8: no stray
 * continuation bytes, no overlong forms, no surrogates (U+D800..U+DFFF), nothing above
 * U+10FFFF. */
bool pb_utf8_valid(const char *s);

/* pb_utf8_valid_n: the same for N bytes at DATA, which need not be NUL-terminated (a NUL byte
 * counts as the valid character U+0000). */
bool pb_utf8_valid_n(const void *data, size_t n);

/* pb_wire_check: walk LEN bytes of a DESC message without building it, and refuse (with
 * DT_ERR_INVALID_ARG, ERR naming the message and field) nesting deeper than PB_DEPTH_MAX,
 * `string` fields that are not UTF-8 or hold a NUL, groups, and bytes that do not parse.
 * Unknown fields are skipped. pb_unpack calls it; it is exposed for tests. */
dt_status pb_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        dt_error *err);

/* pb_unpack: parse LEN bytes as a DESC message into ARENA, after pb_wire_check. *OUT is the
 * message (cast it to the type DESC describes); it lives in ARENA, so never pass it to
 * protobuf_c_message_free_unpacked. DT_ERR_INVALID_ARG if the bytes are refused or do not
 * parse, DT_ERR_NOMEM. */
dt_status pb_unpack(dt_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                    size_t len, void **out, dt_error *err);

/* pb_pack: MSG (any dtpb message, e.g. &resp.base) as bytes in ARENA. *OUT is never NULL,
 * even when *OUT_LEN is 0. DT_ERR_NOMEM only. */
dt_status pb_pack(dt_arena *a, const ProtobufCMessage *msg, uint8_t **out, size_t *out_len);

/* ---- shared pieces ----------------------------------------------------------------------- */

/* pb_timestamp_to_msg: T as a Timestamp (floor seconds, non-negative nanos). T == 0 means "no
 * time": *OUT is NULL (the field is absent). DT_ERR_INVALID_ARG outside years 1..9999. */
dt_status pb_timestamp_to_msg(dt_arena *a, dt_time t, Dtpb__Timestamp **out);

/* pb_timestamp_from_msg: M in microseconds (sub-microsecond digits dropped); absent (NULL) is
 * 0. DT_ERR_INVALID_ARG, naming FIELD, outside years 1..9999 or with nanos outside
 * 0..999999999. */
dt_status pb_timestamp_from_msg(const Dtpb__Timestamp *m, const char *field, dt_time *out,
                                dt_error *err);

/* pb_string_value_to_msg: NULL is an absent StringValue (*OUT NULL); anything else, "" too,
 * is present. The value borrows S. */
dt_status pb_string_value_to_msg(dt_arena *a, const char *s, Dtpb__StringValue **out);

/* pb_string_value_from_msg: absent is NULL, present is a copy of its value ("" included).
 * pb_string_from_msg: a plain proto3 string, where absent and "" are the same: never NULL.
 * Both check UTF-8 and copy into ARENA; FIELD names the field in the error. */
dt_status pb_string_value_from_msg(dt_arena *a, const Dtpb__StringValue *v, const char *field,
                                   const char **out, dt_error *err);
dt_status pb_string_from_msg(dt_arena *a, const char *s, const char *field, const char **out,
                             dt_error *err);

/* pb_failure_to_msg / pb_failure_from_msg: dt_failure and its inner chain; NULL is absent both
 * ways. properties (field 6) are neither written nor read. FIELD prefixes the error's field
 * names ("failureDetails" gives "failureDetails.errorType is not valid UTF-8"). */
dt_status pb_failure_to_msg(dt_arena *a, const dt_failure *f, Dtpb__TaskFailureDetails **out);
dt_status pb_failure_from_msg(dt_arena *a, const Dtpb__TaskFailureDetails *m, const char *field,
                              const dt_failure **out, dt_error *err);

/* pb_status_from_msg: a wire OrchestrationStatus as a dt_runtime_status. proto3 enums are
 * open, so a newer peer may send a number we do not know: DT_ERR_INVALID_ARG naming FIELD. */
dt_status pb_status_from_msg(int status, const char *field, dt_runtime_status *out,
                             dt_error *err);

/* ---- history events ---------------------------------------------------------------------- */

/* pb_event_to_msg: E as a HistoryEvent (see the table in core.h for the fields each type
 * carries). DT_ERR_INVALID_ARG for DT_EVENT_NONE or an unknown type. */
dt_status pb_event_to_msg(dt_arena *a, const dt_event *e, Dtpb__HistoryEvent **out);

/* pb_event_from_msg: M as a dt_event. DT_ERR_UNIMPLEMENTED for the entity events and
 * ExecutionRewound (members 23..30) and for members newer than the protocol we know;
 * DT_ERR_INVALID_ARG when no member is set. dt_event_decode (stored bytes) shares this
 * mapping but reports every refusal as DT_ERR_CORRUPT and does not check UTF-8. */
dt_status pb_event_from_msg(dt_arena *a, const Dtpb__HistoryEvent *m, dt_event *out,
                            dt_error *err);

/* ---- orchestrator actions ---------------------------------------------------------------- */

/* pb_action_to_msg: ACT as an OrchestratorAction; id is ACT->id.
 *   schedule task             name, version, input
 *   create sub-orchestration  instance_id, name, version, input
 *   create timer              fire_at (required: 0 is refused)
 *   send event                instance_id (as instance.instanceId), name, input (as data)
 *   complete orchestration    status, result, failure, version (as newVersion),
 *                             carryover (as carryoverEvents)
 *   terminate orchestration   instance_id, input (as reason), recurse */
dt_status pb_action_to_msg(dt_arena *a, const dt_action *act, Dtpb__OrchestratorAction **out);

/* pb_action_from_msg: the inverse, by the same table. completeOrchestration's `details` and
 * everyone's tags and trace contexts are dropped. A missing createTimer.fireAt or
 * sendEvent.instance is DT_ERR_INVALID_ARG; sendEntityMessage, rewindOrchestration and members
 * newer than we know are DT_ERR_UNIMPLEMENTED naming the action; no member at all is
 * DT_ERR_INVALID_ARG. A refused carried-over event names its index. */
dt_status pb_action_from_msg(dt_arena *a, const Dtpb__OrchestratorAction *m, dt_action *out,
                             dt_error *err);

/* ---- instances --------------------------------------------------------------------------- */

/* pb_state_to_msg: S as an OrchestrationState (tags included). input, output and customStatus are written
 * only WITH_PAYLOADS (as GetInstanceRequest.getInputsAndOutputs and
 * InstanceQuery.fetchInputsAndOutputs ask); failureDetails always. Times that are 0 are left
 * absent. DT_ERR_INVALID_ARG for an unknown status. */
dt_status pb_state_to_msg(dt_arena *a, const dt_instance_state *s, bool with_payloads,
                          Dtpb__OrchestrationState **out);

/* pb_state_from_msg: the inverse (tags are dropped). */
dt_status pb_state_from_msg(dt_arena *a, const Dtpb__OrchestrationState *m,
                            dt_instance_state *out, dt_error *err);

/* pb_start_from_msg: a CreateInstanceRequest as a dt_start_request for dt_hub_start. An empty
 * instanceId is NULL (the hub generates one). The reuse policy's statuses become
 * replaceable; note that a policy present with no statuses reads the same as no policy (the
 * hub's default), since dt_start_request cannot say "replace nothing". Tags become one JSON
 * object of strings (keys sorted). executionId, parentTraceContext and requestTime are
 * dropped. Name, id and input are not validated
 * here beyond UTF-8: dt_hub_start does that. */
dt_status pb_start_from_msg(dt_arena *a, const Dtpb__CreateInstanceRequest *m,
                            dt_start_request *out, dt_error *err);

/* Page size of a query: InstanceQuery.maxInstanceCount above this is lowered to it (a page may
 * always hold fewer than asked), 0 is the store's default, negative is refused. */
#define PB_QUERY_PAGE_MAX 1000

/* pb_query_from_msg: an InstanceQuery as a dt_query (M NULL: match everything, first page).
 * An empty continuationToken is the first page (continuation NULL). taskHubNames is
 * ignored. */
dt_status pb_query_from_msg(dt_arena *a, const Dtpb__InstanceQuery *m, dt_query *out,
                            dt_error *err);

/* pb_purge_filter_from_msg: a PurgeInstanceFilter as a dt_query for dt_hub_purge_where
 * (statuses and creation window; the timeout is ignored). */
dt_status pb_purge_filter_from_msg(dt_arena *a, const Dtpb__PurgeInstanceFilter *m,
                                   dt_query *out, dt_error *err);

/* pb_query_response: one page of N states (pb_state_to_msg each, WITH_PAYLOADS as the query
 * asked) and the continuation token NEXT (NULL: the last page, token absent). */
dt_status pb_query_response(dt_arena *a, const dt_instance_state *states, size_t n,
                            const char *next, bool with_payloads,
                            Dtpb__QueryInstancesResponse **out);

/* pb_history_chunk: N events as one HistoryChunk of the StreamInstanceHistory stream. The
 * caller decides how many events go in one chunk. */
dt_status pb_history_chunk(dt_arena *a, const dt_event *events, size_t n,
                           Dtpb__HistoryChunk **out);

/* ---- work items -------------------------------------------------------------------------- */

/* pb_orchestrator_request: the OrchestratorRequest of one episode: instance INSTANCE_ID, run
 * EXECUTION_ID (NULL: absent), the history PAST (N_PAST events, replayed) and NEW_EVENTS
 * (N_NEW, to apply). The whole history is always sent inline (requiresHistoryStreaming
 * false). Wrap it in a WorkItem (orchestratorrequest + completiontoken) to stream it. */
dt_status pb_orchestrator_request(dt_arena *a, const char *instance_id, const char *execution_id,
                                  const dt_event *past, size_t n_past,
                                  const dt_event *new_events, size_t n_new,
                                  Dtpb__OrchestratorRequest **out);

/* pb_activity_request: the ActivityRequest for activity NAME (VERSION and INPUT may be NULL)
 * scheduled by run EXECUTION_ID of INSTANCE_ID as task TASK_ID (its TaskScheduled eventId). */
dt_status pb_activity_request(dt_arena *a, const char *instance_id, const char *execution_id,
                              int32_t task_id, const char *name, const char *version,
                              const char *input, Dtpb__ActivityRequest **out);

/* What a worker's OrchestratorResponse says, ready for dt_hub_complete_orchestration. */
typedef struct pb_orch_completion {
    const char *instance_id;
    const char *completion_token;    /* "" if none was sent */
    dt_orch_result result;           /* actions (pb_action_from_msg each) and custom status */
    int32_t n_events_processed;      /* numEventsProcessed; -1 when absent (all of them) */
    bool requires_history;
} pb_orch_completion;

/* pb_orchestrator_response_from_msg: M as a pb_orch_completion. A refused action names its
 * index ("actions[2]: ..."). A chunked completion (isPartial, or a chunkIndex) is
 * DT_ERR_UNIMPLEMENTED: the protocol deprecated chunking and we never ask for it. A negative
 * numEventsProcessed is DT_ERR_INVALID_ARG. */
dt_status pb_orchestrator_response_from_msg(dt_arena *a, const Dtpb__OrchestratorResponse *m,
                                            pb_orch_completion *out, dt_error *err);

/* What a worker's ActivityResponse says, ready for dt_hub_complete_activity. */
typedef struct pb_activity_completion {
    const char *instance_id;
    int32_t task_id;
    const char *completion_token;    /* "" if none was sent */
    const char *result;              /* JSON or NULL */
    const dt_failure *failure;       /* NULL unless the activity failed */
} pb_activity_completion;

/* pb_activity_response_from_msg: M as a pb_activity_completion. */
dt_status pb_activity_response_from_msg(dt_arena *a, const Dtpb__ActivityResponse *m,
                                        pb_activity_completion *out, dt_error *err);

#endif
