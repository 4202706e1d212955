/* pb.h — the codec's inside, for the layers that speak protobuf themselves (the service
 * mapping in src/service/, the gRPC server, the remote worker, the CLI): the generated dtpb
 * messages, the byte-level helpers (UTF-8, a wire check that bounds nesting, pack and unpack
 * into an arena), and the one family of field helpers every mapping is written with: a
 * builder (records to messages) and a reader (messages to records), with the HistoryEvent
 * mapping on top. Internal: never installed, never included by a public header.
 *
 * Ownership, for every function here:
 *  - Everything a function allocates, C records and dtpb messages alike, lives in the dt_arena
 *    it is given. Nothing is malloc'd; freeing the arena frees it all, and nothing else does.
 *  - A builder builds a message tree in its arena for protobuf-c to pack. The tree BORROWS the
 *    strings of the records it was built from (packing only reads them), so those records must
 *    stay alive and unchanged until the tree has been packed. Never hand such a tree to
 *    protobuf_c_message_free_unpacked: it was not malloc'd.
 *  - A reader copies every string it keeps into its arena: the result does not depend on the
 *    message, which may be freed right after.
 *  - pb_unpack puts the unpacked message in the arena too (protobuf-c allocates through it),
 *    and pb_pack the packed bytes. A request handler needs one arena, freed when it is done.
 *
 * Errors. A builder keeps its first failure in its status: DT_ERR_INVALID_ARG when a record
 * holds something the protocol cannot carry (a time outside DT_TIME_MIN..DT_TIME_MAX, an
 * unknown status or event type, a failure chain deeper than PB_FAILURE_DEPTH_MAX),
 * DT_ERR_NOMEM. A reader keeps its first failure in its status with the message in its
 * dt_error: from a peer (wire), DT_ERR_INVALID_ARG naming the field ("scheduleTask.name is
 * not valid UTF-8") and DT_ERR_UNIMPLEMENTED for what the protocol has and we do not; from our
 * own store, DT_ERR_CORRUPT for any refusal. After the first failure every helper returns
 * NULL/0 and the caller throws the half-built result away.
 *
 * Strings. protobuf-c neither validates UTF-8 in `string` fields nor keeps their length, so a
 * peer could send invalid UTF-8 or a NUL that silently cuts a payload short. A wire reader
 * checks every string it reads with pb_utf8_valid; pb_unpack also checks every string on the
 * wire for both problems before protobuf-c sees the bytes. Builders trust the records
 * (strings crossing our API are UTF-8 by contract, as the public headers say). */
#ifndef DT_CODEC_PB_H
#define DT_CODEC_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "durabletask.pb-c.h"
#include "durabletask/core.h"

/* Failure chains deeper than this (innerFailure links) are refused both ways. */
#define PB_FAILURE_DEPTH_MAX 64

/* Messages nested deeper than this are refused by pb_unpack before protobuf-c parses them:
 * protobuf-c recurses once per level with no limit of its own, and a few tens of kilobytes of
 * nesting exhaust a thread's stack. Our deepest legitimate message, a carried-over TaskFailed
 * event with a full failure chain inside an OrchestratorResponse, is about 70 levels. */
#define PB_DEPTH_MAX 100

/* ---- bytes (wire.c) ------------------------------------------------------------------------ */

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

/* pb_single_field: LEN bytes at BUF are exactly one length-delimited field (a message
 * holding one of a oneof's messages): its *NUMBER and its *BODY (pointing into BUF),
 * *BODY_LEN bytes long, not parsed. DT_ERR_INVALID_ARG when they are anything else. */
dt_status pb_single_field(const uint8_t *buf, size_t len, uint32_t *number,
                          const uint8_t **body, size_t *body_len);

/* pb_unpack: parse LEN bytes as a DESC message into ARENA, after pb_wire_check. *OUT is the
 * message (cast it to the type DESC describes); it lives in ARENA, so never pass it to
 * protobuf_c_message_free_unpacked. DT_ERR_INVALID_ARG if the bytes are refused or do not
 * parse; DT_ERR_NOMEM when the arena runs out while they are unpacked. */
dt_status pb_unpack(dt_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                    size_t len, void **out, dt_error *err);

/* What an unpacked message may take (pb_unpack_limited): a few wire bytes can make many
 * allocations (an unknown field of two bytes costs protobuf-c a record of 24 and a copy, an
 * empty submessage a whole struct), so a peer could make us hold tens of times what it
 * sent. At most MAX bytes in all; each allocation is first charged with CHARGE(CTX, N) when
 * it is set, and refused when that says no. USED says what the tree took (charged), failed
 * or not. */
typedef struct pb_limit {
    size_t max;
    bool (*charge)(void *ctx, size_t n);
    void *ctx;
    size_t used;
} pb_limit;

/* pb_unpack_limited: pb_unpack within LIM (NULL: none). Beyond LIM->max, DT_ERR_INVALID_ARG
 * naming the sizes (too many fields for the bytes); refused by LIM->charge, DT_ERR_NOMEM. */
dt_status pb_unpack_limited(dt_arena *a, const ProtobufCMessageDescriptor *desc,
                            const uint8_t *buf, size_t len, pb_limit *lim, void **out,
                            dt_error *err);

/* pb_pack: MSG (any dtpb message, e.g. &resp.base) as bytes in ARENA. *OUT is never NULL,
 * even when *OUT_LEN is 0. DT_ERR_NOMEM (DT_ERR_INVALID_ARG for NULL arguments). */
dt_status pb_pack(dt_arena *a, const ProtobufCMessage *msg, uint8_t **out, size_t *out_len);

/* ---- building messages (fields.c; pb_b_event in event_codec.c) ------------------------------- */

typedef struct pb_builder {
    dt_arena *arena;
    dt_status status;                 /* the first failure; DT_OK so far */
} pb_builder;

#define PB_BUILDER(arena) ((pb_builder){(arena), DT_OK})

/* pb_b_msg: a new initialised message of DESC's type. */
void *pb_b_msg(pb_builder *b, const ProtobufCMessageDescriptor *desc);

/* pb_b_array: N zeroed elements of SIZE bytes (NULL when N is 0: protobuf-c reads no element
 * then). */
void *pb_b_array(pb_builder *b, size_t n, size_t size);

/* pb_b_str: a plain proto3 string, where NULL and "" are the same thing on the wire. */
char *pb_b_str(const char *s);

/* pb_b_sv: NULL is an absent StringValue; anything else, "" included, is present. */
Dtpb__StringValue *pb_b_sv(pb_builder *b, const char *s);

/* pb_b_time: T as a Timestamp (floor seconds, non-negative nanos); 0 means "no time" and is
 * left absent. Outside DT_TIME_MIN..DT_TIME_MAX fails the build. */
Dtpb__Timestamp *pb_b_time(pb_builder *b, dt_time t);

/* pb_b_failure: F and its inner chain, properties included; NULL is absent. */
Dtpb__TaskFailureDetails *pb_b_failure(pb_builder *b, const dt_failure *f);

/* pb_b_tags: JSON, an object of string values (NULL: none), as *N entries of the
 * map<string, string> whose entry message is ENTRY (every such entry has the same layout);
 * cast the result to the field's type. Anything but an object of strings fails the build.
 * pb_b_properties: a JSON object as a failure's properties (map<string, Value>). (maps.c) */
void **pb_b_tags(pb_builder *b, const ProtobufCMessageDescriptor *entry, const char *json,
                 size_t *n);
Dtpb__TaskFailureDetails__PropertiesEntry **pb_b_properties(pb_builder *b, const char *json,
                                                            size_t *n);

/* pb_b_trace: a TraceContext of PARENT (a W3C traceparent) and STATE; PARENT NULL: absent. */
Dtpb__TraceContext *pb_b_trace(pb_builder *b, const char *parent, const char *state);

/* pb_b_status: S for the wire; a status that is not a dt_runtime_status fails the build. */
Dtpb__OrchestrationStatus pb_b_status(pb_builder *b, dt_runtime_status s);

/* pb_b_instance: an OrchestrationInstance (EXEC NULL: no executionId). */
Dtpb__OrchestrationInstance *pb_b_instance(pb_builder *b, const char *id, const char *exec);

/* pb_b_event / pb_b_events: history events as HistoryEvent messages (see the table in core.h
 * for the fields each type carries); DT_EVENT_NONE or an unknown type fails the build. */
Dtpb__HistoryEvent *pb_b_event(pb_builder *b, const dt_event *e);
Dtpb__HistoryEvent **pb_b_events(pb_builder *b, const dt_event *events, size_t n);


/* ---- reading messages (fields.c; pb_r_event in event_codec.c) -------------------------------- */

typedef struct pb_reader {
    dt_arena *arena;
    dt_error *err;                    /* may be NULL */
    dt_status status;                 /* the first failure; DT_OK so far */
    const char *what;                 /* prefixes field names in messages ("scheduleTask"
                                       * makes "scheduleTask.name"), or NULL */
    bool wire;                        /* from a peer (checked, INVALID_ARG / UNIMPLEMENTED),
                                       * or from our store (trusted, any refusal CORRUPT) */
} pb_reader;

/* PB_WHAT: the two arguments that print R's prefix ("scheduleTask.") before a field name:
 * "%s%s%s", PB_WHAT(r), field. */
#define PB_WHAT(r) ((r)->what ? (r)->what : ""), ((r)->what ? "." : "")

/* A reader of a peer's message into ARENA, errors into ERR, fields prefixed with WHAT. */
#define PB_READER(arena, err, what) ((pb_reader){(arena), (err), DT_OK, (what), true})

/* pb_r_fail: record the first failure (CODE and the formatted message). pb_r_bad: the data
 * breaks a rule of the protocol. pb_r_unsupported: the protocol has it, we do not. */
void pb_r_fail(pb_reader *r, dt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define pb_r_bad(r, ...) \
    pb_r_fail((r), (r)->wire ? DT_ERR_INVALID_ARG : DT_ERR_CORRUPT, __VA_ARGS__)
#define pb_r_unsupported(r, ...) \
    pb_r_fail((r), (r)->wire ? DT_ERR_UNIMPLEMENTED : DT_ERR_CORRUPT, __VA_ARGS__)

/* pb_r_str: a plain proto3 string, where absent and "" are the same: never NULL once read.
 * pb_r_sv: an absent StringValue is NULL, a present one a copy of its value ("" included).
 * Both check UTF-8 (wire) and copy into the arena; FIELD names the field in the error. */
const char *pb_r_str(pb_reader *r, const char *s, const char *field);
const char *pb_r_sv(pb_reader *r, const Dtpb__StringValue *v, const char *field);

/* pb_r_time: microseconds (sub-microsecond digits dropped); absent is 0. Refused outside
 * DT_TIME_MIN..DT_TIME_MAX or with nanos outside 0..999999999. */
dt_time pb_r_time(pb_reader *r, const Dtpb__Timestamp *ts, const char *field);
/* pb_r_bound: pb_r_time of a query's bound; present, it is never 0 (dt_time_bound). */
dt_time pb_r_bound(pb_reader *r, const Dtpb__Timestamp *ts, const char *field);

/* pb_r_failure: a failure and its chain; absent is NULL. FIELD names the top one
 * ("failureDetails" gives "failureDetails.errorType is not valid UTF-8"). */
const dt_failure *pb_r_failure(pb_reader *r, const Dtpb__TaskFailureDetails *m,
                               const char *field);

/* pb_r_tags: N entries of a map<string, string> (any such field, cast to void **) as a JSON
 * object of strings; none is NULL. pb_r_properties: a failure's properties as a JSON object
 * (Values nested at most 32 deep). pb_r_trace: a TraceContext into *PARENT and *STATE, both
 * NULL when absent or without a traceParent. (maps.c) */
const char *pb_r_tags(pb_reader *r, void *const *entries, size_t n, const char *field);
const char *pb_r_properties(pb_reader *r, Dtpb__TaskFailureDetails__PropertiesEntry *const *e,
                            size_t n, const char *field);
void pb_r_trace(pb_reader *r, const Dtpb__TraceContext *m, const char **parent,
                const char **state, const char *field);

/* pb_r_status: a wire OrchestrationStatus. proto3 enums are open, so a newer peer may send a
 * number we do not know: refused, naming FIELD. pb_r_statuses: N of them (NULL when N is 0). */
dt_runtime_status pb_r_status(pb_reader *r, int status, const char *field);
const dt_runtime_status *pb_r_statuses(pb_reader *r, const Dtpb__OrchestrationStatus *in,
                                       size_t n, const char *field);

/* pb_r_event: a HistoryEvent into *OUT (untouched on failure). Members newer than the
 * protocol we know are unsupported; no member at all is bad. */
void pb_r_event(pb_reader *r, const Dtpb__HistoryEvent *m, dt_event *out);

/* pb_r_events: N events as an array in the arena (NULL when N is 0); a refused one names its
 * index, prefixed with FIELD ("pastEvents[3]: ..."). */
dt_event *pb_r_events(pb_reader *r, Dtpb__HistoryEvent *const *in, size_t n, const char *field);

/* pb_b_entity_body / pb_r_entity_body: an entity event (types 23..29) as its own message (the
 * HistoryEvent member, which SendEntityMessageAction's members share), and back: MSG is the
 * message of TYPE's member. (entity_events.c) */
void *pb_b_entity_body(pb_builder *b, const dt_event *e);
void pb_r_entity_body(pb_reader *r, dt_event_type type, const void *msg, dt_event *e);

/* pb_err_prefix: put a formatted prefix in front of ERR's message ("actions[2]: ..."); ERR
 * may be NULL. */
void pb_err_prefix(dt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
