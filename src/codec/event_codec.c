/* event_codec.c — dt_event to and from the protocol's HistoryEvent, and the pieces every
 * conversion shares: times, string values, failure details, runtime statuses. This file owns
 * the mapping between the flat dt_event record (see the table in core.h) and the generated
 * dtpb messages; pb_convert.c builds the service's messages on the pb_* functions defined
 * here (see pb.h for who owns what). Encoding builds a message tree in an arena that borrows
 * the event's strings. Decoding copies what it keeps into the caller's arena.
 * dt_event_encode/dt_event_decode, the byte-level API the store uses, are thin wrappers:
 * pack/unpack around the same mapping. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/pb.h"
#include "durabletask.pb-c.h"
#include "durabletask/codec.h"

/* Failure chains deeper than this are refused both ways: on encode it catches a cycle, on
 * decode it keeps what we accept equal to what we would write. */
#define FAILURE_DEPTH_MAX PB_FAILURE_DEPTH_MAX

/* The protocol's Timestamp range, 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. Other SDKs
 * reject times outside it, so we never write one and treat one we read as corrupt. */
#define TIMESTAMP_SECONDS_MIN INT64_C(-62135596800)
#define TIMESTAMP_SECONDS_MAX INT64_C(253402300799)
#define USEC_PER_SEC INT64_C(1000000)

/* dt_event_type values are the oneof's field numbers; the codec relies on that to set and read
 * event_type_case without a lookup table. */
#define SAME_NUMBER(dt, pb) \
    _Static_assert((int)DT_EVENT_##dt == (int)DTPB__HISTORY_EVENT__EVENT_TYPE_##pb, #dt)
SAME_NUMBER(EXECUTION_STARTED, EXECUTION_STARTED);
SAME_NUMBER(EXECUTION_COMPLETED, EXECUTION_COMPLETED);
SAME_NUMBER(EXECUTION_TERMINATED, EXECUTION_TERMINATED);
SAME_NUMBER(TASK_SCHEDULED, TASK_SCHEDULED);
SAME_NUMBER(TASK_COMPLETED, TASK_COMPLETED);
SAME_NUMBER(TASK_FAILED, TASK_FAILED);
SAME_NUMBER(SUB_ORCHESTRATION_CREATED, SUB_ORCHESTRATION_INSTANCE_CREATED);
SAME_NUMBER(SUB_ORCHESTRATION_COMPLETED, SUB_ORCHESTRATION_INSTANCE_COMPLETED);
SAME_NUMBER(SUB_ORCHESTRATION_FAILED, SUB_ORCHESTRATION_INSTANCE_FAILED);
SAME_NUMBER(TIMER_CREATED, TIMER_CREATED);
SAME_NUMBER(TIMER_FIRED, TIMER_FIRED);
SAME_NUMBER(ORCHESTRATOR_STARTED, ORCHESTRATOR_STARTED);
SAME_NUMBER(ORCHESTRATOR_COMPLETED, ORCHESTRATOR_COMPLETED);
SAME_NUMBER(EVENT_SENT, EVENT_SENT);
SAME_NUMBER(EVENT_RAISED, EVENT_RAISED);
SAME_NUMBER(GENERIC, GENERIC_EVENT);
SAME_NUMBER(HISTORY_STATE, HISTORY_STATE);
SAME_NUMBER(CONTINUE_AS_NEW, CONTINUE_AS_NEW);
SAME_NUMBER(EXECUTION_SUSPENDED, EXECUTION_SUSPENDED);
SAME_NUMBER(EXECUTION_RESUMED, EXECUTION_RESUMED);
_Static_assert((int)DT_STATUS_SUSPENDED ==
                   (int)DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED,
               "dt_runtime_status numbers follow the protocol's OrchestrationStatus");

/* ==== encoding ============================================================================ */

/* The message tree lives in ARENA. STATUS keeps the first failure; once it is set the tree is
 * incomplete, later helpers may return NULL, and nothing is packed. The tree points at the
 * event's own strings (casting away const): packing only reads them. */
typedef struct encoder {
    dt_arena *arena;
    dt_status status;
} encoder;

/* enc_msg: a new initialised message of DESC's type, or NULL (status set) when out of memory. */
static void *enc_msg(encoder *enc, const ProtobufCMessageDescriptor *desc)
{
    void *m = dt_arena_alloc(enc->arena, desc->sizeof_message);
    if (m == NULL) {
        enc->status = DT_ERR_NOMEM;
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

/* enc_str: a plain proto3 string, where NULL and "" are the same thing on the wire. */
static char *enc_str(const char *s)
{
    return (char *)(s ? s : "");
}

/* enc_sv: NULL is an absent StringValue; anything else, "" included, is present. */
static Dtpb__StringValue *enc_sv(encoder *enc, const char *s)
{
    if (s == NULL)
        return NULL;
    Dtpb__StringValue *v = enc_msg(enc, &dtpb__string_value__descriptor);
    if (v)
        v->value = (char *)s;
    return v;
}

/* enc_time: microseconds to seconds + non-negative nanos (floor division, so -1 us is
 * seconds -1, nanos 999999000). 0 means "no time" and is left absent. */
static Dtpb__Timestamp *enc_time(encoder *enc, dt_time t)
{
    if (t == 0)
        return NULL;
    int64_t seconds = t / USEC_PER_SEC;
    int64_t micros = t % USEC_PER_SEC;
    if (micros < 0) {
        seconds -= 1;
        micros += USEC_PER_SEC;
    }
    if (seconds < TIMESTAMP_SECONDS_MIN || seconds > TIMESTAMP_SECONDS_MAX) {
        enc->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
    Dtpb__Timestamp *ts = enc_msg(enc, &dtpb__timestamp__descriptor);
    if (ts) {
        ts->seconds = seconds;
        ts->nanos = (int32_t)(micros * 1000);
    }
    return ts;
}

static Dtpb__TaskFailureDetails *enc_failure(encoder *enc, const dt_failure *f, int depth)
{
    if (f == NULL)
        return NULL;
    if (depth >= FAILURE_DEPTH_MAX) {
        enc->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
    Dtpb__TaskFailureDetails *m = enc_msg(enc, &dtpb__task_failure_details__descriptor);
    if (m == NULL)
        return NULL;
    m->errortype = enc_str(f->error_type);
    m->errormessage = enc_str(f->message);
    m->stacktrace = enc_sv(enc, f->stack_trace);
    m->innerfailure = enc_failure(enc, f->inner, depth + 1);
    m->isnonretriable = f->non_retriable;
    return m;
}

static Dtpb__OrchestrationInstance *enc_instance(encoder *enc, const char *id, const char *exec)
{
    Dtpb__OrchestrationInstance *m = enc_msg(enc, &dtpb__orchestration_instance__descriptor);
    if (m) {
        m->instanceid = enc_str(id);
        m->executionid = enc_sv(enc, exec);
    }
    return m;
}

/* enc_parent: present exactly when the event names a parent instance. */
static Dtpb__ParentInstanceInfo *enc_parent(encoder *enc, const dt_event *e)
{
    if (e->parent_instance_id == NULL)
        return NULL;
    Dtpb__ParentInstanceInfo *m = enc_msg(enc, &dtpb__parent_instance_info__descriptor);
    if (m) {
        m->taskscheduledid = e->parent_task_id;
        m->name = enc_sv(enc, e->parent_name);
        m->orchestrationinstance = enc_instance(enc, e->parent_instance_id, e->parent_execution_id);
    }
    return m;
}

static void *enc_execution_started(encoder *enc, const dt_event *e)
{
    Dtpb__ExecutionStartedEvent *m = enc_msg(enc, &dtpb__execution_started_event__descriptor);
    if (m == NULL)
        return NULL;
    m->name = enc_str(e->name);
    m->version = enc_sv(enc, e->version);
    m->input = enc_sv(enc, e->input);
    if (e->instance_id || e->execution_id)
        m->orchestrationinstance = enc_instance(enc, e->instance_id, e->execution_id);
    m->parentinstance = enc_parent(enc, e);
    m->scheduledstarttimestamp = enc_time(enc, e->scheduled_start);
    return m;
}

static void *enc_execution_completed(encoder *enc, const dt_event *e)
{
    if (e->status < DT_STATUS_RUNNING || e->status > DT_STATUS_SUSPENDED) {
        enc->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
    Dtpb__ExecutionCompletedEvent *m = enc_msg(enc, &dtpb__execution_completed_event__descriptor);
    if (m) {
        m->orchestrationstatus = (Dtpb__OrchestrationStatus)e->status;
        m->result = enc_sv(enc, e->result);
        m->failuredetails = enc_failure(enc, e->failure, 0);
    }
    return m;
}

static void *enc_execution_terminated(encoder *enc, const dt_event *e)
{
    Dtpb__ExecutionTerminatedEvent *m = enc_msg(enc, &dtpb__execution_terminated_event__descriptor);
    if (m) {
        m->input = enc_sv(enc, e->input);
        m->recurse = e->recurse;
    }
    return m;
}

static void *enc_task_scheduled(encoder *enc, const dt_event *e)
{
    Dtpb__TaskScheduledEvent *m = enc_msg(enc, &dtpb__task_scheduled_event__descriptor);
    if (m) {
        m->name = enc_str(e->name);
        m->version = enc_sv(enc, e->version);
        m->input = enc_sv(enc, e->input);
    }
    return m;
}

static void *enc_task_completed(encoder *enc, const dt_event *e)
{
    Dtpb__TaskCompletedEvent *m = enc_msg(enc, &dtpb__task_completed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->result = enc_sv(enc, e->result);
    }
    return m;
}

static void *enc_task_failed(encoder *enc, const dt_event *e)
{
    Dtpb__TaskFailedEvent *m = enc_msg(enc, &dtpb__task_failed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->failuredetails = enc_failure(enc, e->failure, 0);
    }
    return m;
}

static void *enc_sub_created(encoder *enc, const dt_event *e)
{
    Dtpb__SubOrchestrationInstanceCreatedEvent *m =
        enc_msg(enc, &dtpb__sub_orchestration_instance_created_event__descriptor);
    if (m) {
        m->instanceid = enc_str(e->instance_id);
        m->name = enc_str(e->name);
        m->version = enc_sv(enc, e->version);
        m->input = enc_sv(enc, e->input);
    }
    return m;
}

static void *enc_sub_completed(encoder *enc, const dt_event *e)
{
    Dtpb__SubOrchestrationInstanceCompletedEvent *m =
        enc_msg(enc, &dtpb__sub_orchestration_instance_completed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->result = enc_sv(enc, e->result);
    }
    return m;
}

static void *enc_sub_failed(encoder *enc, const dt_event *e)
{
    Dtpb__SubOrchestrationInstanceFailedEvent *m =
        enc_msg(enc, &dtpb__sub_orchestration_instance_failed_event__descriptor);
    if (m) {
        m->taskscheduledid = e->task_id;
        m->failuredetails = enc_failure(enc, e->failure, 0);
    }
    return m;
}

static void *enc_timer_created(encoder *enc, const dt_event *e)
{
    Dtpb__TimerCreatedEvent *m = enc_msg(enc, &dtpb__timer_created_event__descriptor);
    if (m)
        m->fireat = enc_time(enc, e->fire_at);
    return m;
}

static void *enc_timer_fired(encoder *enc, const dt_event *e)
{
    Dtpb__TimerFiredEvent *m = enc_msg(enc, &dtpb__timer_fired_event__descriptor);
    if (m) {
        m->fireat = enc_time(enc, e->fire_at);
        m->timerid = e->task_id;
    }
    return m;
}

static void *enc_event_sent(encoder *enc, const dt_event *e)
{
    Dtpb__EventSentEvent *m = enc_msg(enc, &dtpb__event_sent_event__descriptor);
    if (m) {
        m->instanceid = enc_str(e->instance_id);
        m->name = enc_str(e->name);
        m->input = enc_sv(enc, e->input);
    }
    return m;
}

static void *enc_event_raised(encoder *enc, const dt_event *e)
{
    Dtpb__EventRaisedEvent *m = enc_msg(enc, &dtpb__event_raised_event__descriptor);
    if (m) {
        m->name = enc_str(e->name);
        m->input = enc_sv(enc, e->input);
    }
    return m;
}

static void *enc_generic(encoder *enc, const dt_event *e)
{
    Dtpb__GenericEvent *m = enc_msg(enc, &dtpb__generic_event__descriptor);
    if (m)
        m->data = enc_sv(enc, e->input);
    return m;
}

static void *enc_continue_as_new(encoder *enc, const dt_event *e)
{
    Dtpb__ContinueAsNewEvent *m = enc_msg(enc, &dtpb__continue_as_new_event__descriptor);
    if (m)
        m->input = enc_sv(enc, e->input);
    return m;
}

static void *enc_suspended(encoder *enc, const dt_event *e)
{
    Dtpb__ExecutionSuspendedEvent *m = enc_msg(enc, &dtpb__execution_suspended_event__descriptor);
    if (m)
        m->input = enc_sv(enc, e->input);
    return m;
}

static void *enc_resumed(encoder *enc, const dt_event *e)
{
    Dtpb__ExecutionResumedEvent *m = enc_msg(enc, &dtpb__execution_resumed_event__descriptor);
    if (m)
        m->input = enc_sv(enc, e->input);
    return m;
}

/* enc_body: the oneof member for E's type, or NULL with status set. Every member of the union
 * is a message pointer, so one void * result serves them all. */
static void *enc_body(encoder *enc, const dt_event *e)
{
    switch (e->type) {
    case DT_EVENT_EXECUTION_STARTED: return enc_execution_started(enc, e);
    case DT_EVENT_EXECUTION_COMPLETED: return enc_execution_completed(enc, e);
    case DT_EVENT_EXECUTION_TERMINATED: return enc_execution_terminated(enc, e);
    case DT_EVENT_TASK_SCHEDULED: return enc_task_scheduled(enc, e);
    case DT_EVENT_TASK_COMPLETED: return enc_task_completed(enc, e);
    case DT_EVENT_TASK_FAILED: return enc_task_failed(enc, e);
    case DT_EVENT_SUB_ORCHESTRATION_CREATED: return enc_sub_created(enc, e);
    case DT_EVENT_SUB_ORCHESTRATION_COMPLETED: return enc_sub_completed(enc, e);
    case DT_EVENT_SUB_ORCHESTRATION_FAILED: return enc_sub_failed(enc, e);
    case DT_EVENT_TIMER_CREATED: return enc_timer_created(enc, e);
    case DT_EVENT_TIMER_FIRED: return enc_timer_fired(enc, e);
    case DT_EVENT_ORCHESTRATOR_STARTED:
        return enc_msg(enc, &dtpb__orchestrator_started_event__descriptor);
    case DT_EVENT_ORCHESTRATOR_COMPLETED:
        return enc_msg(enc, &dtpb__orchestrator_completed_event__descriptor);
    case DT_EVENT_EVENT_SENT: return enc_event_sent(enc, e);
    case DT_EVENT_EVENT_RAISED: return enc_event_raised(enc, e);
    case DT_EVENT_GENERIC: return enc_generic(enc, e);
    case DT_EVENT_HISTORY_STATE: return enc_msg(enc, &dtpb__history_state_event__descriptor);
    case DT_EVENT_CONTINUE_AS_NEW: return enc_continue_as_new(enc, e);
    case DT_EVENT_EXECUTION_SUSPENDED: return enc_suspended(enc, e);
    case DT_EVENT_EXECUTION_RESUMED: return enc_resumed(enc, e);
    case DT_EVENT_NONE: break;
    }
    enc->status = DT_ERR_INVALID_ARG;
    return NULL;
}

/* enc_history_event: fill H from E; the result is encoder status. */
static dt_status enc_history_event(encoder *enc, const dt_event *e, Dtpb__HistoryEvent *h)
{
    h->eventid = e->event_id;
    h->timestamp = enc_time(enc, e->timestamp);
    void *body = enc_body(enc, e);
    if (enc->status != DT_OK)
        return enc->status;
    h->event_type_case = (Dtpb__HistoryEvent__EventTypeCase)e->type;
    /* the union's members are all message pointers; executionstarted stands for any of them */
    h->executionstarted = body;
    return DT_OK;
}

dt_status pb_event_to_msg(dt_arena *a, const dt_event *e, Dtpb__HistoryEvent **out)
{
    if (a == NULL || e == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    encoder enc = { a, DT_OK };
    Dtpb__HistoryEvent *h = enc_msg(&enc, &dtpb__history_event__descriptor);
    if (h == NULL || enc_history_event(&enc, e, h) != DT_OK)
        return enc.status;
    *out = h;
    return DT_OK;
}

dt_status pb_timestamp_to_msg(dt_arena *a, dt_time t, Dtpb__Timestamp **out)
{
    encoder enc = { a, DT_OK };
    Dtpb__Timestamp *m = enc_time(&enc, t);
    if (enc.status == DT_OK)
        *out = m;
    return enc.status;
}

dt_status pb_string_value_to_msg(dt_arena *a, const char *s, Dtpb__StringValue **out)
{
    encoder enc = { a, DT_OK };
    Dtpb__StringValue *m = enc_sv(&enc, s);
    if (enc.status == DT_OK)
        *out = m;
    return enc.status;
}

dt_status pb_failure_to_msg(dt_arena *a, const dt_failure *f, Dtpb__TaskFailureDetails **out)
{
    encoder enc = { a, DT_OK };
    Dtpb__TaskFailureDetails *m = enc_failure(&enc, f, 0);
    if (enc.status == DT_OK)
        *out = m;
    return enc.status;
}

/* dt_event_encode: pb_event_to_msg in a scratch arena, packed into malloc'd bytes. */
dt_status dt_event_encode(const dt_event *event, uint8_t **out, size_t *out_len)
{
    if (event == NULL || out == NULL || out_len == NULL)
        return DT_ERR_INVALID_ARG;
    dt_arena *arena = dt_arena_new();
    if (arena == NULL)
        return DT_ERR_NOMEM;
    Dtpb__HistoryEvent *h = NULL;
    dt_status st = pb_event_to_msg(arena, event, &h);
    if (st == DT_OK) {
        size_t len = dtpb__history_event__get_packed_size(h);
        uint8_t *buf = malloc(len ? len : 1);
        if (buf == NULL) {
            st = DT_ERR_NOMEM;
        } else {
            dtpb__history_event__pack(h, buf);
            *out = buf;
            *out_len = len;
        }
    }
    dt_arena_free(arena);
    return st;
}

/* ==== decoding ============================================================================ */

/* Strings go into ARENA. STATUS keeps the first failure, with its message in ERR (may be
 * NULL); after a failure the helpers return NULL/0 and the result is thrown away.
 *
 * WIRE says where the message came from. From a peer (the pb_*_from_msg functions) every
 * string must be UTF-8, bad data is DT_ERR_INVALID_ARG and what the protocol has but we do
 * not is DT_ERR_UNIMPLEMENTED. From our own store (dt_event_decode) any refusal means the
 * bytes are DT_ERR_CORRUPT, and UTF-8 is not checked: that would turn a stray byte an
 * embedding program once passed us into an instance whose history can never load again. */
typedef struct decoder {
    dt_arena *arena;
    dt_error *err;
    dt_status status;
    const char *what;    /* the message being decoded ("TimerCreated"), or NULL, for errors */
    bool wire;
} decoder;

static void dec_fail(decoder *d, dt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void dec_fail(decoder *d, dt_status code, const char *fmt, ...)
{
    if (d->status != DT_OK)
        return;
    d->status = code;
    if (d->err == NULL)
        return;
    d->err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err->message, sizeof d->err->message, fmt, ap);
    va_end(ap);
}

/* dec_bad: the data breaks a rule of the protocol. */
#define dec_bad(d, ...) \
    dec_fail((d), (d)->wire ? DT_ERR_INVALID_ARG : DT_ERR_CORRUPT, __VA_ARGS__)

/* dec_unsupported: the protocol has it, this codec does not. */
#define dec_unsupported(d, ...) \
    dec_fail((d), (d)->wire ? DT_ERR_UNIMPLEMENTED : DT_ERR_CORRUPT, __VA_ARGS__)

/* The WHAT prefix of a field name in messages: "TimerCreated." or nothing. */
#define WHAT(d) ((d)->what ? (d)->what : ""), ((d)->what ? "." : "")

/* dec_copy: S (not NULL) copied into the arena; FIELD names it if it is not UTF-8. */
static char *dec_copy(decoder *d, const char *s, const char *field)
{
    if (d->status != DT_OK)
        return NULL;
    if (d->wire && !pb_utf8_valid(s)) {
        dec_bad(d, "%s%s%s is not valid UTF-8", WHAT(d), field);
        return NULL;
    }
    char *c = dt_arena_strdup(d->arena, s);
    if (c == NULL)
        dec_fail(d, DT_ERR_NOMEM, "out of memory copying %s%s%s into the arena", WHAT(d), field);
    return c;
}

/* dec_str: a plain proto3 string. An absent one reads as "", so the result is never NULL. */
static const char *dec_str(decoder *d, const char *s, const char *field)
{
    return dec_copy(d, s ? s : "", field);
}

/* dec_sv: an absent StringValue is NULL, a present one a copy of its value ("" included). */
static const char *dec_sv(decoder *d, const Dtpb__StringValue *v, const char *field)
{
    return v ? dec_str(d, v->value, field) : NULL;
}

/* dec_time: seconds + nanos to microseconds (sub-microsecond digits are dropped); absent is 0.
 * The range check also keeps the multiplication below from overflowing. */
static dt_time dec_time(decoder *d, const Dtpb__Timestamp *ts, const char *field)
{
    if (ts == NULL)
        return 0;
    if (ts->seconds < TIMESTAMP_SECONDS_MIN || ts->seconds > TIMESTAMP_SECONDS_MAX ||
        ts->nanos < 0 || ts->nanos > 999999999) {
        dec_bad(d, "%s%s%s is not a valid timestamp (seconds %lld, nanos %d)", WHAT(d), field,
                (long long)ts->seconds, (int)ts->nanos);
        return 0;
    }
    return ts->seconds * USEC_PER_SEC + ts->nanos / 1000;
}

/* failure_field: "FIELD.MEMBER", or "FIELD.MEMBER (inner failure DEPTH)" below the top, in
 * BUF, naming a failure's string in messages. */
static const char *failure_field(char *buf, size_t size, const char *field, int depth,
                                 const char *member)
{
    if (depth == 0)
        snprintf(buf, size, "%s.%s", field, member);
    else
        snprintf(buf, size, "%s.%s (inner failure %d)", field, member, depth);
    return buf;
}

/* dec_failure: M and its chain; FIELD names the top one in messages ("failureDetails"). */
static dt_failure *dec_failure(decoder *d, const Dtpb__TaskFailureDetails *m, const char *field,
                               int depth)
{
    if (m == NULL || d->status != DT_OK)
        return NULL;
    if (depth >= FAILURE_DEPTH_MAX) {
        dec_bad(d, "%s%s%s: failure details nest deeper than %d inner failures", WHAT(d), field,
                FAILURE_DEPTH_MAX);
        return NULL;
    }
    dt_failure *f = dt_arena_alloc(d->arena, sizeof *f);
    if (f == NULL) {
        dec_fail(d, DT_ERR_NOMEM, "out of memory decoding %s%s%s", WHAT(d), field);
        return NULL;
    }
    char name[160];
    f->error_type = dec_str(d, m->errortype, failure_field(name, sizeof name, field, depth,
                                                           "errorType"));
    f->message = dec_str(d, m->errormessage, failure_field(name, sizeof name, field, depth,
                                                           "errorMessage"));
    f->stack_trace = dec_sv(d, m->stacktrace, failure_field(name, sizeof name, field, depth,
                                                            "stackTrace"));
    f->inner = dec_failure(d, m->innerfailure, field, depth + 1);
    f->non_retriable = m->isnonretriable;
    return f;
}

/* dec_parent: a present parentInstance always yields a non-NULL parent_instance_id, since
 * that is how dt_event says "this is a sub-orchestration". */
static void dec_parent(decoder *d, const Dtpb__ParentInstanceInfo *m, dt_event *e)
{
    if (m == NULL)
        return;
    const Dtpb__OrchestrationInstance *inst = m->orchestrationinstance;
    e->parent_task_id = m->taskscheduledid;
    e->parent_name = dec_sv(d, m->name, "parentInstance.name");
    e->parent_instance_id = dec_str(d, inst ? inst->instanceid : NULL,
                                    "parentInstance.orchestrationInstance.instanceId");
    e->parent_execution_id =
        inst ? dec_sv(d, inst->executionid, "parentInstance.orchestrationInstance.executionId")
             : NULL;
}

static void dec_execution_started(decoder *d, const Dtpb__ExecutionStartedEvent *m, dt_event *e)
{
    e->name = dec_str(d, m->name, "name");
    e->version = dec_sv(d, m->version, "version");
    e->input = dec_sv(d, m->input, "input");
    if (m->orchestrationinstance) {
        e->instance_id = dec_str(d, m->orchestrationinstance->instanceid,
                                 "orchestrationInstance.instanceId");
        e->execution_id = dec_sv(d, m->orchestrationinstance->executionid,
                                 "orchestrationInstance.executionId");
    }
    dec_parent(d, m->parentinstance, e);
    e->scheduled_start = dec_time(d, m->scheduledstarttimestamp, "scheduledStartTimestamp");
}

static void dec_execution_completed(decoder *d, const Dtpb__ExecutionCompletedEvent *m,
                                    dt_event *e)
{
    /* proto3 enums are open: a newer peer may send a status we do not know */
    int s = (int)m->orchestrationstatus;
    if (s < DT_STATUS_RUNNING || s > DT_STATUS_SUSPENDED) {
        dec_bad(d, "%s%sorchestrationStatus %d is not a known status", WHAT(d), s);
        return;
    }
    e->status = (dt_runtime_status)s;
    e->result = dec_sv(d, m->result, "result");
    e->failure = dec_failure(d, m->failuredetails, "failureDetails", 0);
}

static void dec_execution_terminated(decoder *d, const Dtpb__ExecutionTerminatedEvent *m,
                                     dt_event *e)
{
    e->input = dec_sv(d, m->input, "input");
    e->recurse = m->recurse;
}

static void dec_task_scheduled(decoder *d, const Dtpb__TaskScheduledEvent *m, dt_event *e)
{
    e->name = dec_str(d, m->name, "name");
    e->version = dec_sv(d, m->version, "version");
    e->input = dec_sv(d, m->input, "input");
}

static void dec_task_completed(decoder *d, const Dtpb__TaskCompletedEvent *m, dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->result = dec_sv(d, m->result, "result");
}

static void dec_task_failed(decoder *d, const Dtpb__TaskFailedEvent *m, dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->failure = dec_failure(d, m->failuredetails, "failureDetails", 0);
}

static void dec_sub_created(decoder *d, const Dtpb__SubOrchestrationInstanceCreatedEvent *m,
                            dt_event *e)
{
    e->instance_id = dec_str(d, m->instanceid, "instanceId");
    e->name = dec_str(d, m->name, "name");
    e->version = dec_sv(d, m->version, "version");
    e->input = dec_sv(d, m->input, "input");
}

static void dec_sub_completed(decoder *d, const Dtpb__SubOrchestrationInstanceCompletedEvent *m,
                              dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->result = dec_sv(d, m->result, "result");
}

static void dec_sub_failed(decoder *d, const Dtpb__SubOrchestrationInstanceFailedEvent *m,
                           dt_event *e)
{
    e->task_id = m->taskscheduledid;
    e->failure = dec_failure(d, m->failuredetails, "failureDetails", 0);
}

static void dec_event_sent(decoder *d, const Dtpb__EventSentEvent *m, dt_event *e)
{
    e->instance_id = dec_str(d, m->instanceid, "instanceId");
    e->name = dec_str(d, m->name, "name");
    e->input = dec_sv(d, m->input, "input");
}

static void dec_event_raised(decoder *d, const Dtpb__EventRaisedEvent *m, dt_event *e)
{
    e->name = dec_str(d, m->name, "name");
    e->input = dec_sv(d, m->input, "input");
}

/* dec_unknown_type: explain a HistoryEvent whose eventType is none of 3..22. The entity
 * events and ExecutionRewound (23..30) are members we define but do not carry; protobuf-c keeps
 * members newer than our .proto as unknown fields. */
static void dec_unknown_type(decoder *d, const Dtpb__HistoryEvent *h)
{
    if (h->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
            &dtpb__history_event__descriptor, (unsigned)h->event_type_case);
        dec_unsupported(d, "HistoryEvent field %d (%s) is not an event type this codec "
                           "supports (3..22)",
                        (int)h->event_type_case, f ? f->name : "?");
        return;
    }
    for (unsigned i = 0; i < h->base.n_unknown_fields; i++) {
        uint32_t tag = h->base.unknown_fields[i].tag;
        if (tag > 2) {
            dec_unsupported(d, "HistoryEvent field %u is not an event type this codec knows "
                               "(3..22)",
                            (unsigned)tag);
            return;
        }
    }
    dec_bad(d, "HistoryEvent has no event type set");
}

/* dec_body: the oneof member into E, by type. */
static void dec_body(decoder *d, const Dtpb__HistoryEvent *h, dt_event *e)
{
    /* unpacking never leaves a member set without its message; a tree built by hand might.
     * The union's members are all message pointers, so executionstarted reads any of them. */
    if (h->event_type_case != DTPB__HISTORY_EVENT__EVENT_TYPE__NOT_SET &&
        h->executionstarted == NULL) {
        dec_bad(d, "HistoryEvent member %d is set but holds no message", (int)h->event_type_case);
        return;
    }
    switch (h->event_type_case) {
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_STARTED:
        dec_execution_started(d, h->executionstarted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_COMPLETED:
        dec_execution_completed(d, h->executioncompleted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_TERMINATED:
        dec_execution_terminated(d, h->executionterminated, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_SCHEDULED:
        dec_task_scheduled(d, h->taskscheduled, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_COMPLETED:
        dec_task_completed(d, h->taskcompleted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TASK_FAILED:
        dec_task_failed(d, h->taskfailed, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_CREATED:
        dec_sub_created(d, h->suborchestrationinstancecreated, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_COMPLETED:
        dec_sub_completed(d, h->suborchestrationinstancecompleted, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_SUB_ORCHESTRATION_INSTANCE_FAILED:
        dec_sub_failed(d, h->suborchestrationinstancefailed, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_CREATED:
        e->fire_at = dec_time(d, h->timercreated->fireat, "fireAt"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_TIMER_FIRED:
        e->fire_at = dec_time(d, h->timerfired->fireat, "fireAt");
        e->task_id = h->timerfired->timerid;
        break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_SENT:
        dec_event_sent(d, h->eventsent, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EVENT_RAISED:
        dec_event_raised(d, h->eventraised, e); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_GENERIC_EVENT:
        e->input = dec_sv(d, h->genericevent->data, "data"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_CONTINUE_AS_NEW:
        e->input = dec_sv(d, h->continueasnew->input, "input"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_SUSPENDED:
        e->input = dec_sv(d, h->executionsuspended->input, "input"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_EXECUTION_RESUMED:
        e->input = dec_sv(d, h->executionresumed->input, "input"); break;
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_STARTED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_ORCHESTRATOR_COMPLETED:
    case DTPB__HISTORY_EVENT__EVENT_TYPE_HISTORY_STATE:
        break;   /* no fields we carry */
    default:
        dec_unknown_type(d, h);
        break;
    }
}

/* dec_history_event: H into *OUT (untouched on failure); the result is D's status. */
static dt_status dec_history_event(decoder *d, const Dtpb__HistoryEvent *h, dt_event *out)
{
    dt_event e;
    dt_event_init(&e, (dt_event_type)h->event_type_case, 0);
    d->what = dt_event_type_name(e.type);
    e.event_id = h->eventid;
    e.timestamp = dec_time(d, h->timestamp, "timestamp");
    dec_body(d, h, &e);
    if (d->status != DT_OK)
        return d->status;
    *out = e;
    return DT_OK;
}

dt_status pb_event_from_msg(dt_arena *a, const Dtpb__HistoryEvent *m, dt_event *out,
                            dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_event_from_msg needs an arena, a message and an event to fill");
    decoder d = { a, err, DT_OK, NULL, true };
    return dec_history_event(&d, m, out);
}

/* dt_event_decode: unpack with protobuf-c's own allocator, map in store mode (see decoder),
 * and free the unpacked tree before returning, whatever happened. */
dt_status dt_event_decode(const uint8_t *buf, size_t len, dt_arena *arena, dt_event *out,
                          dt_error *err)
{
    if ((buf == NULL && len > 0) || arena == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "dt_event_decode needs a buffer, an arena and an event to fill");
    Dtpb__HistoryEvent *h = dtpb__history_event__unpack(NULL, len, buf);
    if (h == NULL)
        return dt_error_set(err, DT_ERR_CORRUPT,
                            "%zu bytes do not parse as a protobuf HistoryEvent", len);
    decoder d = { arena, err, DT_OK, NULL, false };
    dt_status st = dec_history_event(&d, h, out);
    dtpb__history_event__free_unpacked(h, NULL);
    return st;
}

/* ---- the shared decoding pieces, one field at a time (wire mode) ------------------------- */

dt_status pb_timestamp_from_msg(const Dtpb__Timestamp *m, const char *field, dt_time *out,
                                dt_error *err)
{
    decoder d = { NULL, err, DT_OK, NULL, true };
    dt_time t = dec_time(&d, m, field);
    if (d.status == DT_OK)
        *out = t;
    return d.status;
}

dt_status pb_string_value_from_msg(dt_arena *a, const Dtpb__StringValue *v, const char *field,
                                   const char **out, dt_error *err)
{
    decoder d = { a, err, DT_OK, NULL, true };
    const char *s = dec_sv(&d, v, field);
    if (d.status == DT_OK)
        *out = s;
    return d.status;
}

dt_status pb_string_from_msg(dt_arena *a, const char *s, const char *field, const char **out,
                             dt_error *err)
{
    decoder d = { a, err, DT_OK, NULL, true };
    const char *c = dec_str(&d, s, field);
    if (d.status == DT_OK)
        *out = c;
    return d.status;
}

dt_status pb_failure_from_msg(dt_arena *a, const Dtpb__TaskFailureDetails *m, const char *field,
                              const dt_failure **out, dt_error *err)
{
    decoder d = { a, err, DT_OK, NULL, true };
    const dt_failure *f = dec_failure(&d, m, field, 0);
    if (d.status == DT_OK)
        *out = f;
    return d.status;
}

dt_status pb_status_from_msg(int status, const char *field, dt_runtime_status *out,
                             dt_error *err)
{
    if (status < DT_STATUS_RUNNING || status > DT_STATUS_SUSPENDED)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s %d is not a known status", field,
                            status);
    *out = (dt_runtime_status)status;
    return DT_OK;
}
