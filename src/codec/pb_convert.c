/* pb_convert.c — the TaskHubSidecarService's messages to and from the dt_* records: actions,
 * instance states, work items, queries, and the byte-level helpers (UTF-8, a wire check that
 * bounds nesting before protobuf-c recurses, pack and unpack into an arena). It builds on the
 * shared pieces of event_codec.c (times, string values, failures, events) through pb.h, where
 * the ownership rules are: everything lives in the caller's arena, built trees borrow the
 * records' strings, and converted records own copies of theirs. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/pb.h"

/* dt_action_type values are the oneof's field numbers, as dt_event_type's are HistoryEvent's. */
#define SAME_ACTION(dt, pb)                                                                 \
    _Static_assert((int)DT_ACTION_##dt ==                                                   \
                       (int)DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_##pb,       \
                   #dt)
SAME_ACTION(SCHEDULE_TASK, SCHEDULE_TASK);
SAME_ACTION(CREATE_SUB_ORCHESTRATION, CREATE_SUB_ORCHESTRATION);
SAME_ACTION(CREATE_TIMER, CREATE_TIMER);
SAME_ACTION(SEND_EVENT, SEND_EVENT);
SAME_ACTION(COMPLETE_ORCHESTRATION, COMPLETE_ORCHESTRATION);
SAME_ACTION(TERMINATE_ORCHESTRATION, TERMINATE_ORCHESTRATION);

/* ==== UTF-8 =============================================================================== */

bool pb_utf8_valid_n(const void *data, size_t n)
{
    const unsigned char *s = data;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;   /* a continuation byte where a character should start, or 0xf8.. */
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms would let one character hide behind another's bytes */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool pb_utf8_valid(const char *s)
{
    return s == NULL || pb_utf8_valid_n(s, strlen(s));
}

/* ==== bytes =============================================================================== */

/* msg_name: DESC's name without the package, as the protocol's users know it. */
static const char *msg_name(const ProtobufCMessageDescriptor *desc)
{
    size_t n = desc->package_name ? strlen(desc->package_name) : 0;
    return n ? desc->name + n + 1 : desc->name;
}

/* read_varint: a base-128 varint at *P (< END), advancing *P; false if it runs off the end
 * or past ten bytes. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* check_msg: the bytes P..END as one DESC message at nesting DEPTH (the outermost is 1). Only
 * length-delimited fields need a look inside: a submessage is walked, a string checked; all
 * else is skipped by its wire type. */
static dt_status check_msg(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                           const uint8_t *end, int depth, dt_error *err)
{
    if (depth > PB_DEPTH_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s: messages nest deeper than %d levels", msg_name(desc),
                            PB_DEPTH_MAX);
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key))
            goto malformed;
        uint64_t number = key >> 3;
        unsigned wire_type = (unsigned)(key & 7);
        if (number == 0 || number > 536870911)   /* 2^29 - 1, the largest field number */
            goto malformed;
        switch (wire_type) {
        case 0:
            if (!read_varint(&p, end, &v))
                goto malformed;
            break;
        case 1:
            if (end - p < 8)
                goto malformed;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                goto malformed;
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                goto malformed;
            const uint8_t *body = p;
            p += v;
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
            if (f == NULL)
                break;   /* unknown: protobuf-c keeps its bytes without looking inside */
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                dt_status st = check_msg(f->descriptor, body, p, depth + 1, err);
                if (st != DT_OK)
                    return st;
            } else if (f->type == PROTOBUF_C_TYPE_STRING) {
                /* protobuf-c would keep the string NUL-terminated, cut at the first NUL */
                if (memchr(body, 0, (size_t)v) != NULL)
                    return dt_error_set(err, DT_ERR_INVALID_ARG,
                                        "%s.%s holds a NUL character", msg_name(desc), f->name);
                if (!pb_utf8_valid_n(body, (size_t)v))
                    return dt_error_set(err, DT_ERR_INVALID_ARG, "%s.%s is not valid UTF-8",
                                        msg_name(desc), f->name);
            }
            break;
        }
        default:
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "%s field %llu has wire type %u (a group or no type at all), "
                                "which this server does not accept",
                                msg_name(desc), (unsigned long long)number, wire_type);
        }
    }
    return DT_OK;
malformed:
    return dt_error_set(err, DT_ERR_INVALID_ARG, "the bytes do not parse as a %s message",
                        msg_name(desc));
}

dt_status pb_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        dt_error *err)
{
    if (desc == NULL || (buf == NULL && len > 0))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "pb_wire_check needs a type and bytes");
    if (len == 0)
        return DT_OK;
    return check_msg(desc, buf, buf + len, 1, err);
}

/* protobuf-c allocates the unpacked tree through these: all of it lands in the arena, and its
 * frees (of scratch space, or of a half-built tree on error) are left to the arena too. */
static void *arena_alloc(void *arena, size_t size)
{
    return dt_arena_alloc(arena, size);
}

static void arena_free(void *arena, void *p)
{
    (void)arena;
    (void)p;
}

dt_status pb_unpack(dt_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                    size_t len, void **out, dt_error *err)
{
    if (a == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "pb_unpack needs an arena and an output");
    dt_status st = pb_wire_check(desc, buf, len, err);
    if (st != DT_OK)
        return st;
    ProtobufCAllocator allocator = { arena_alloc, arena_free, a };
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &allocator, len, buf);
    if (m == NULL)
        /* the wire check passed, so this is a field of the wrong wire type, a bad length
         * inside a packed array, or the arena running out of memory */
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%zu bytes do not parse as a %s message",
                            len, msg_name(desc));
    *out = m;
    return DT_OK;
}

dt_status pb_pack(dt_arena *a, const ProtobufCMessage *msg, uint8_t **out, size_t *out_len)
{
    if (a == NULL || msg == NULL || out == NULL || out_len == NULL)
        return DT_ERR_INVALID_ARG;
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = dt_arena_alloc(a, len ? len : 1);
    if (buf == NULL)
        return DT_ERR_NOMEM;
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *out_len = len;
    return DT_OK;
}

/* ==== building messages =================================================================== */

/* The tree lives in A. ST keeps the first failure; after it the helpers return NULL and the
 * tree is abandoned (in the arena, freed with it). */
typedef struct builder {
    dt_arena *a;
    dt_status st;
} builder;

static void *b_msg(builder *b, const ProtobufCMessageDescriptor *desc)
{
    if (b->st != DT_OK)
        return NULL;
    void *m = dt_arena_alloc(b->a, desc->sizeof_message);
    if (m == NULL) {
        b->st = DT_ERR_NOMEM;
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

/* b_array: N zeroed pointers (NULL when N is 0: protobuf-c reads no element then). */
static void *b_array(builder *b, size_t n, size_t size)
{
    if (b->st != DT_OK || n == 0)
        return NULL;
    if (n > SIZE_MAX / size) {
        b->st = DT_ERR_NOMEM;
        return NULL;
    }
    void *p = dt_arena_alloc(b->a, n * size);
    if (p == NULL)
        b->st = DT_ERR_NOMEM;
    return p;
}

/* b_str: a plain proto3 string, where NULL and "" are the same on the wire. */
static char *b_str(const char *s)
{
    return (char *)(s ? s : "");
}

static Dtpb__StringValue *b_sv(builder *b, const char *s)
{
    Dtpb__StringValue *v = NULL;
    if (b->st == DT_OK)
        b->st = pb_string_value_to_msg(b->a, s, &v);
    return v;
}

static Dtpb__Timestamp *b_time(builder *b, dt_time t)
{
    Dtpb__Timestamp *ts = NULL;
    if (b->st == DT_OK)
        b->st = pb_timestamp_to_msg(b->a, t, &ts);
    return ts;
}

static Dtpb__TaskFailureDetails *b_failure(builder *b, const dt_failure *f)
{
    Dtpb__TaskFailureDetails *m = NULL;
    if (b->st == DT_OK)
        b->st = pb_failure_to_msg(b->a, f, &m);
    return m;
}

/* b_events: N events as an array of HistoryEvent messages. */
static Dtpb__HistoryEvent **b_events(builder *b, const dt_event *events, size_t n)
{
    Dtpb__HistoryEvent **arr = b_array(b, n, sizeof *arr);
    for (size_t i = 0; i < n && b->st == DT_OK; i++)
        b->st = pb_event_to_msg(b->a, &events[i], &arr[i]);
    return arr;
}

static bool status_known(dt_runtime_status s)
{
    return (int)s >= DT_STATUS_RUNNING && (int)s <= DT_STATUS_SUSPENDED;
}

/* b_status: S for the wire; an unknown status fails the build. */
static Dtpb__OrchestrationStatus b_status(builder *b, dt_runtime_status s)
{
    if (!status_known(s) && b->st == DT_OK)
        b->st = DT_ERR_INVALID_ARG;
    return (Dtpb__OrchestrationStatus)s;
}

/* ==== reading messages ==================================================================== */

/* Strings are checked and copied into A. ST keeps the first failure, its message in ERR;
 * after it the helpers return NULL/0 and the caller throws the result away. WHAT prefixes
 * field names in messages ("scheduleTask" makes "scheduleTask.name"). */
typedef struct reader {
    dt_arena *a;
    dt_error *err;
    dt_status st;
    const char *what;
} reader;

/* r_field: "WHAT.FIELD" (or FIELD) in BUF. */
static const char *r_field(const reader *r, char *buf, size_t size, const char *field)
{
    if (r->what == NULL)
        return field;
    snprintf(buf, size, "%s.%s", r->what, field);
    return buf;
}

static void r_fail(reader *r, dt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void r_fail(reader *r, dt_status code, const char *fmt, ...)
{
    if (r->st != DT_OK)
        return;
    r->st = code;
    if (r->err == NULL)
        return;
    r->err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
    va_end(ap);
}

static const char *r_str(reader *r, const char *s, const char *field)
{
    const char *out = NULL;
    char name[128];
    if (r->st == DT_OK)
        r->st = pb_string_from_msg(r->a, s, r_field(r, name, sizeof name, field), &out, r->err);
    return out;
}

static const char *r_sv(reader *r, const Dtpb__StringValue *v, const char *field)
{
    const char *out = NULL;
    char name[128];
    if (r->st == DT_OK)
        r->st = pb_string_value_from_msg(r->a, v, r_field(r, name, sizeof name, field), &out,
                                         r->err);
    return out;
}

static dt_time r_time(reader *r, const Dtpb__Timestamp *ts, const char *field)
{
    dt_time t = 0;
    char name[128];
    if (r->st == DT_OK)
        r->st = pb_timestamp_from_msg(ts, r_field(r, name, sizeof name, field), &t, r->err);
    return t;
}

static const dt_failure *r_failure(reader *r, const Dtpb__TaskFailureDetails *m,
                                   const char *field)
{
    const dt_failure *f = NULL;
    char name[128];
    if (r->st == DT_OK)
        r->st = pb_failure_from_msg(r->a, m, r_field(r, name, sizeof name, field), &f, r->err);
    return f;
}

static dt_runtime_status r_status(reader *r, int s, const char *field)
{
    dt_runtime_status out = DT_STATUS_RUNNING;
    char name[128];
    if (r->st == DT_OK)
        r->st = pb_status_from_msg(s, r_field(r, name, sizeof name, field), &out, r->err);
    return out;
}

/* r_statuses: N wire statuses as a dt_runtime_status array (NULL when N is 0). */
static const dt_runtime_status *r_statuses(reader *r, const Dtpb__OrchestrationStatus *in,
                                           size_t n, const char *field)
{
    if (r->st != DT_OK || n == 0)
        return NULL;
    dt_runtime_status *out = dt_arena_alloc(r->a, n * sizeof *out);
    if (out == NULL) {
        r_fail(r, DT_ERR_NOMEM, "out of memory reading %s%s%s", r->what ? r->what : "",
               r->what ? "." : "", field);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        out[i] = r_status(r, (int)in[i], name);
    }
    return out;
}

/* err_prefix: put a formatted prefix in front of ERR's message ("actions[2]: ..."). */
static void err_prefix(dt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void err_prefix(dt_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    char head[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    /* shift the message right by the prefix, cutting its end if the two do not fit */
    size_t room = sizeof err->message - 1;
    size_t h = strlen(head), l = strnlen(err->message, room);
    if (l > room - h)
        l = room - h;
    memmove(err->message + h, err->message, l);
    memcpy(err->message, head, h);
    err->message[h + l] = '\0';
}

/* ==== orchestrator actions ================================================================ */

static void *b_schedule_task(builder *b, const dt_action *act)
{
    Dtpb__ScheduleTaskAction *m = b_msg(b, &dtpb__schedule_task_action__descriptor);
    if (m) {
        m->name = b_str(act->name);
        m->version = b_sv(b, act->version);
        m->input = b_sv(b, act->input);
    }
    return m;
}

static void *b_create_sub(builder *b, const dt_action *act)
{
    Dtpb__CreateSubOrchestrationAction *m =
        b_msg(b, &dtpb__create_sub_orchestration_action__descriptor);
    if (m) {
        m->instanceid = b_str(act->instance_id);
        m->name = b_str(act->name);
        m->version = b_sv(b, act->version);
        m->input = b_sv(b, act->input);
    }
    return m;
}

static void *b_create_timer(builder *b, const dt_action *act)
{
    if (act->fire_at == 0) {
        b->st = DT_ERR_INVALID_ARG;   /* a timer without a time cannot be written */
        return NULL;
    }
    Dtpb__CreateTimerAction *m = b_msg(b, &dtpb__create_timer_action__descriptor);
    if (m)
        m->fireat = b_time(b, act->fire_at);
    return m;
}

static void *b_send_event(builder *b, const dt_action *act)
{
    Dtpb__SendEventAction *m = b_msg(b, &dtpb__send_event_action__descriptor);
    Dtpb__OrchestrationInstance *inst = b_msg(b, &dtpb__orchestration_instance__descriptor);
    if (m && inst) {
        inst->instanceid = b_str(act->instance_id);
        m->instance = inst;
        m->name = b_str(act->name);
        m->data = b_sv(b, act->input);
    }
    return m;
}

static void *b_complete(builder *b, const dt_action *act)
{
    Dtpb__CompleteOrchestrationAction *m =
        b_msg(b, &dtpb__complete_orchestration_action__descriptor);
    if (m) {
        m->orchestrationstatus = b_status(b, act->status);
        m->result = b_sv(b, act->result);
        m->failuredetails = b_failure(b, act->failure);
        m->newversion = b_sv(b, act->version);
        m->carryoverevents = b_events(b, act->carryover, act->n_carryover);
        m->n_carryoverevents = act->n_carryover;
    }
    return m;
}

static void *b_terminate(builder *b, const dt_action *act)
{
    Dtpb__TerminateOrchestrationAction *m =
        b_msg(b, &dtpb__terminate_orchestration_action__descriptor);
    if (m) {
        m->instanceid = b_str(act->instance_id);
        m->reason = b_sv(b, act->input);
        m->recurse = act->recurse;
    }
    return m;
}

dt_status pb_action_to_msg(dt_arena *a, const dt_action *act, Dtpb__OrchestratorAction **out)
{
    if (a == NULL || act == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    builder b = { a, DT_OK };
    Dtpb__OrchestratorAction *m = b_msg(&b, &dtpb__orchestrator_action__descriptor);
    void *body = NULL;
    switch (act->type) {
    case DT_ACTION_SCHEDULE_TASK: body = b_schedule_task(&b, act); break;
    case DT_ACTION_CREATE_SUB_ORCHESTRATION: body = b_create_sub(&b, act); break;
    case DT_ACTION_CREATE_TIMER: body = b_create_timer(&b, act); break;
    case DT_ACTION_SEND_EVENT: body = b_send_event(&b, act); break;
    case DT_ACTION_COMPLETE_ORCHESTRATION: body = b_complete(&b, act); break;
    case DT_ACTION_TERMINATE_ORCHESTRATION: body = b_terminate(&b, act); break;
    default: b.st = DT_ERR_INVALID_ARG; break;
    }
    if (b.st != DT_OK)
        return b.st;
    m->id = act->id;
    m->orchestrator_action_type_case =
        (Dtpb__OrchestratorAction__OrchestratorActionTypeCase)act->type;
    /* the union's members are all message pointers; scheduletask stands for any of them */
    m->scheduletask = body;
    *out = m;
    return DT_OK;
}

/* r_carryover: the carried-over events of a completion, each converted as a HistoryEvent. */
static const dt_event *r_carryover(reader *r, Dtpb__HistoryEvent *const *in, size_t n)
{
    if (r->st != DT_OK || n == 0)
        return NULL;
    dt_event *out = dt_arena_alloc(r->a, n * sizeof *out);
    if (out == NULL) {
        r_fail(r, DT_ERR_NOMEM, "out of memory reading completeOrchestration.carryoverEvents");
        return NULL;
    }
    for (size_t i = 0; i < n && r->st == DT_OK; i++) {
        if (in[i] == NULL) {
            r_fail(r, DT_ERR_INVALID_ARG, "completeOrchestration.carryoverEvents[%zu] is missing",
                   i);
            break;
        }
        r->st = pb_event_from_msg(r->a, in[i], &out[i], r->err);
        if (r->st != DT_OK)
            err_prefix(r->err, "completeOrchestration.carryoverEvents[%zu]: ", i);
    }
    return out;
}

/* r_action_unknown: explain an OrchestratorAction with no member we define. */
static void r_action_unknown(reader *r, const Dtpb__OrchestratorAction *m)
{
    for (unsigned i = 0; i < m->base.n_unknown_fields; i++) {
        uint32_t tag = m->base.unknown_fields[i].tag;
        if (tag > 1) {
            r_fail(r, DT_ERR_UNIMPLEMENTED,
                   "OrchestratorAction field %u is not an action this server knows (2..9)",
                   (unsigned)tag);
            return;
        }
    }
    r_fail(r, DT_ERR_INVALID_ARG, "OrchestratorAction %d has no action set", (int)m->id);
}

dt_status pb_action_from_msg(dt_arena *a, const Dtpb__OrchestratorAction *m, dt_action *out,
                             dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_action_from_msg needs an arena, a message and an action to fill");
    reader r = { a, err, DT_OK, NULL };
    dt_action act;
    memset(&act, 0, sizeof act);
    act.id = m->id;
    act.type = (dt_action_type)m->orchestrator_action_type_case;
    /* as for HistoryEvent: a member set without its message only comes from a tree built by
     * hand; scheduletask reads any member of the union of message pointers */
    if (m->orchestrator_action_type_case !=
            DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE__NOT_SET &&
        m->scheduletask == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "OrchestratorAction member %d is set but holds no message",
                            (int)m->orchestrator_action_type_case);
    switch (m->orchestrator_action_type_case) {
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SCHEDULE_TASK: {
        const Dtpb__ScheduleTaskAction *x = m->scheduletask;
        r.what = "scheduleTask";
        act.name = r_str(&r, x->name, "name");
        act.version = r_sv(&r, x->version, "version");
        act.input = r_sv(&r, x->input, "input");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_SUB_ORCHESTRATION: {
        const Dtpb__CreateSubOrchestrationAction *x = m->createsuborchestration;
        r.what = "createSubOrchestration";
        act.instance_id = r_str(&r, x->instanceid, "instanceId");
        act.name = r_str(&r, x->name, "name");
        act.version = r_sv(&r, x->version, "version");
        act.input = r_sv(&r, x->input, "input");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_CREATE_TIMER: {
        const Dtpb__CreateTimerAction *x = m->createtimer;
        r.what = "createTimer";
        if (x->fireat == NULL)
            r_fail(&r, DT_ERR_INVALID_ARG, "createTimer.fireAt is missing");
        act.fire_at = r_time(&r, x->fireat, "fireAt");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_EVENT: {
        const Dtpb__SendEventAction *x = m->sendevent;
        r.what = "sendEvent";
        if (x->instance == NULL)
            r_fail(&r, DT_ERR_INVALID_ARG, "sendEvent.instance is missing");
        else
            act.instance_id = r_str(&r, x->instance->instanceid, "instance.instanceId");
        act.name = r_str(&r, x->name, "name");
        act.input = r_sv(&r, x->data, "data");
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_COMPLETE_ORCHESTRATION: {
        const Dtpb__CompleteOrchestrationAction *x = m->completeorchestration;
        r.what = "completeOrchestration";
        act.status = r_status(&r, (int)x->orchestrationstatus, "orchestrationStatus");
        act.result = r_sv(&r, x->result, "result");
        act.failure = r_failure(&r, x->failuredetails, "failureDetails");
        act.version = r_sv(&r, x->newversion, "newVersion");
        act.carryover = r_carryover(&r, x->carryoverevents, x->n_carryoverevents);
        act.n_carryover = act.carryover ? x->n_carryoverevents : 0;
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_TERMINATE_ORCHESTRATION: {
        const Dtpb__TerminateOrchestrationAction *x = m->terminateorchestration;
        r.what = "terminateOrchestration";
        act.instance_id = r_str(&r, x->instanceid, "instanceId");
        act.input = r_sv(&r, x->reason, "reason");
        act.recurse = x->recurse;
        break;
    }
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_SEND_ENTITY_MESSAGE:
        r_fail(&r, DT_ERR_UNIMPLEMENTED,
               "sendEntityMessage is not supported: this server has no durable entities");
        break;
    case DTPB__ORCHESTRATOR_ACTION__ORCHESTRATOR_ACTION_TYPE_REWIND_ORCHESTRATION:
        r_fail(&r, DT_ERR_UNIMPLEMENTED,
               "rewindOrchestration is not supported: this server cannot rewind instances");
        break;
    default:
        r_action_unknown(&r, m);
        break;
    }
    if (r.st != DT_OK)
        return r.st;
    *out = act;
    return DT_OK;
}

/* ==== instances =========================================================================== */

/* b_tags: the instance's tags (a JSON object of strings, as stored) as map entries. */
static void b_tags(builder *b, const char *json, Dtpb__OrchestrationState *m)
{
    if (json == NULL || b->st != DT_OK)
        return;
    json_t *obj = json_loads(json, 0, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        return;   /* not ours to refuse here: stored tags are checked when given */
    }
    m->tags = b_array(b, json_object_size(obj), sizeof *m->tags);
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        Dtpb__OrchestrationState__TagsEntry *e =
            b_msg(b, &dtpb__orchestration_state__tags_entry__descriptor);
        if (e == NULL || m->tags == NULL)
            break;
        e->key = dt_arena_strdup(b->a, key);
        e->value = dt_arena_strdup(b->a, json_is_string(val) ? json_string_value(val) : "");
        if (e->key == NULL || e->value == NULL) {
            b->st = DT_ERR_NOMEM;
            break;
        }
        m->tags[m->n_tags++] = e;
    }
    json_decref(obj);
}

dt_status pb_state_to_msg(dt_arena *a, const dt_instance_state *s, bool with_payloads,
                          Dtpb__OrchestrationState **out)
{
    if (a == NULL || s == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    builder b = { a, DT_OK };
    Dtpb__OrchestrationState *m = b_msg(&b, &dtpb__orchestration_state__descriptor);
    if (m) {
        m->instanceid = b_str(s->instance_id);
        m->name = b_str(s->name);
        m->version = b_sv(&b, s->version);
        m->orchestrationstatus = b_status(&b, s->status);
        m->scheduledstarttimestamp = b_time(&b, s->scheduled_start);
        m->createdtimestamp = b_time(&b, s->created_at);
        m->lastupdatedtimestamp = b_time(&b, s->last_updated_at);
        m->completedtimestamp = b_time(&b, s->completed_at);
        if (with_payloads) {
            m->input = b_sv(&b, s->input);
            m->output = b_sv(&b, s->output);
            m->customstatus = b_sv(&b, s->custom_status);
        }
        m->failuredetails = b_failure(&b, s->failure);
        m->executionid = b_sv(&b, s->execution_id);
        m->parentinstanceid = b_sv(&b, s->parent_instance_id);
        b_tags(&b, s->tags, m);
    }
    if (b.st != DT_OK)
        return b.st;
    *out = m;
    return DT_OK;
}

dt_status pb_state_from_msg(dt_arena *a, const Dtpb__OrchestrationState *m,
                            dt_instance_state *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_state_from_msg needs an arena, a message and a state to fill");
    reader r = { a, err, DT_OK, "OrchestrationState" };
    dt_instance_state s;
    memset(&s, 0, sizeof s);
    s.instance_id = r_str(&r, m->instanceid, "instanceId");
    s.name = r_str(&r, m->name, "name");
    s.version = r_sv(&r, m->version, "version");
    s.status = r_status(&r, (int)m->orchestrationstatus, "orchestrationStatus");
    s.scheduled_start = r_time(&r, m->scheduledstarttimestamp, "scheduledStartTimestamp");
    s.created_at = r_time(&r, m->createdtimestamp, "createdTimestamp");
    s.last_updated_at = r_time(&r, m->lastupdatedtimestamp, "lastUpdatedTimestamp");
    s.completed_at = r_time(&r, m->completedtimestamp, "completedTimestamp");
    s.input = r_sv(&r, m->input, "input");
    s.output = r_sv(&r, m->output, "output");
    s.custom_status = r_sv(&r, m->customstatus, "customStatus");
    s.failure = r_failure(&r, m->failuredetails, "failureDetails");
    s.execution_id = r_sv(&r, m->executionid, "executionId");
    s.parent_instance_id = r_sv(&r, m->parentinstanceid, "parentInstanceId");
    if (r.st != DT_OK)
        return r.st;
    *out = s;
    return DT_OK;
}

dt_status pb_start_from_msg(dt_arena *a, const Dtpb__CreateInstanceRequest *m,
                            dt_start_request *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_start_from_msg needs an arena, a message and a request to fill");
    reader r = { a, err, DT_OK, "CreateInstanceRequest" };
    dt_start_request req;
    memset(&req, 0, sizeof req);
    req.instance_id = r_str(&r, m->instanceid, "instanceId");
    if (req.instance_id && req.instance_id[0] == '\0')
        req.instance_id = NULL;
    req.name = r_str(&r, m->name, "name");
    req.version = r_sv(&r, m->version, "version");
    req.input = r_sv(&r, m->input, "input");
    req.start_at = r_time(&r, m->scheduledstarttimestamp, "scheduledStartTimestamp");
    if (m->n_tags > 0 && r.st == DT_OK) {
        /* kept as one JSON object of strings (keys sorted), the form the store holds */
        json_t *obj = json_object();
        for (size_t i = 0; obj && i < m->n_tags; i++)
            json_object_set_new(obj, m->tags[i]->key ? m->tags[i]->key : "",
                                json_string(m->tags[i]->value ? m->tags[i]->value : ""));
        char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        req.tags = text ? dt_arena_strdup(a, text) : NULL;
        free(text);
        json_decref(obj);
        if (req.tags == NULL)
            r.st = dt_error_set(err, DT_ERR_NOMEM, "out of memory for the tags");
    }
    const Dtpb__OrchestrationIdReusePolicy *policy = m->orchestrationidreusepolicy;
    if (policy) {
        req.replaceable = r_statuses(&r, policy->replaceablestatus, policy->n_replaceablestatus,
                                     "orchestrationIdReusePolicy.replaceableStatus");
        req.n_replaceable = req.replaceable ? policy->n_replaceablestatus : 0;
    }
    if (r.st != DT_OK)
        return r.st;
    *out = req;
    return DT_OK;
}

dt_status pb_query_from_msg(dt_arena *a, const Dtpb__InstanceQuery *m, dt_query *out,
                            dt_error *err)
{
    if (a == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_query_from_msg needs an arena and a query to fill");
    dt_query q;
    memset(&q, 0, sizeof q);
    if (m == NULL) {
        *out = q;
        return DT_OK;
    }
    reader r = { a, err, DT_OK, "InstanceQuery" };
    q.statuses = r_statuses(&r, m->runtimestatus, m->n_runtimestatus, "runtimeStatus");
    q.n_statuses = q.statuses ? m->n_runtimestatus : 0;
    q.created_from = r_time(&r, m->createdtimefrom, "createdTimeFrom");
    q.created_to = r_time(&r, m->createdtimeto, "createdTimeTo");
    if (m->maxinstancecount < 0)
        r_fail(&r, DT_ERR_INVALID_ARG, "InstanceQuery.maxInstanceCount %d is negative",
               (int)m->maxinstancecount);
    else if (m->maxinstancecount > PB_QUERY_PAGE_MAX)
        q.page_size = PB_QUERY_PAGE_MAX;
    else
        q.page_size = (size_t)m->maxinstancecount;
    q.continuation = r_sv(&r, m->continuationtoken, "continuationToken");
    if (q.continuation && q.continuation[0] == '\0')
        q.continuation = NULL;   /* some SDKs ask for the first page with an empty token */
    q.id_prefix = r_sv(&r, m->instanceidprefix, "instanceIdPrefix");
    q.with_payloads = m->fetchinputsandoutputs;
    if (r.st != DT_OK)
        return r.st;
    *out = q;
    return DT_OK;
}

dt_status pb_purge_filter_from_msg(dt_arena *a, const Dtpb__PurgeInstanceFilter *m,
                                   dt_query *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_purge_filter_from_msg needs an arena, a filter and a query");
    reader r = { a, err, DT_OK, "PurgeInstanceFilter" };
    dt_query q;
    memset(&q, 0, sizeof q);
    q.statuses = r_statuses(&r, m->runtimestatus, m->n_runtimestatus, "runtimeStatus");
    q.n_statuses = q.statuses ? m->n_runtimestatus : 0;
    q.created_from = r_time(&r, m->createdtimefrom, "createdTimeFrom");
    q.created_to = r_time(&r, m->createdtimeto, "createdTimeTo");
    if (r.st != DT_OK)
        return r.st;
    *out = q;
    return DT_OK;
}

dt_status pb_query_response(dt_arena *a, const dt_instance_state *states, size_t n,
                            const char *next, bool with_payloads,
                            Dtpb__QueryInstancesResponse **out)
{
    if (a == NULL || (states == NULL && n > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    builder b = { a, DT_OK };
    Dtpb__QueryInstancesResponse *m = b_msg(&b, &dtpb__query_instances_response__descriptor);
    Dtpb__OrchestrationState **arr = b_array(&b, n, sizeof *arr);
    for (size_t i = 0; i < n && b.st == DT_OK; i++)
        b.st = pb_state_to_msg(a, &states[i], with_payloads, &arr[i]);
    Dtpb__StringValue *token = b_sv(&b, next);
    if (b.st != DT_OK)
        return b.st;
    m->orchestrationstate = arr;
    m->n_orchestrationstate = n;
    m->continuationtoken = token;
    *out = m;
    return DT_OK;
}

dt_status pb_history_chunk(dt_arena *a, const dt_event *events, size_t n,
                           Dtpb__HistoryChunk **out)
{
    if (a == NULL || (events == NULL && n > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    builder b = { a, DT_OK };
    Dtpb__HistoryChunk *m = b_msg(&b, &dtpb__history_chunk__descriptor);
    Dtpb__HistoryEvent **arr = b_events(&b, events, n);
    if (b.st != DT_OK)
        return b.st;
    m->events = arr;
    m->n_events = n;
    *out = m;
    return DT_OK;
}

/* ==== work items ========================================================================== */

dt_status pb_orchestrator_request(dt_arena *a, const char *instance_id, const char *execution_id,
                                  const dt_event *past, size_t n_past,
                                  const dt_event *new_events, size_t n_new,
                                  Dtpb__OrchestratorRequest **out)
{
    if (a == NULL || instance_id == NULL || (past == NULL && n_past > 0) ||
        (new_events == NULL && n_new > 0) || out == NULL)
        return DT_ERR_INVALID_ARG;
    builder b = { a, DT_OK };
    Dtpb__OrchestratorRequest *m = b_msg(&b, &dtpb__orchestrator_request__descriptor);
    Dtpb__StringValue *exec = b_sv(&b, execution_id);
    Dtpb__HistoryEvent **p = b_events(&b, past, n_past);
    Dtpb__HistoryEvent **n = b_events(&b, new_events, n_new);
    if (b.st != DT_OK)
        return b.st;
    m->instanceid = b_str(instance_id);
    m->executionid = exec;
    m->pastevents = p;
    m->n_pastevents = n_past;
    m->newevents = n;
    m->n_newevents = n_new;
    *out = m;
    return DT_OK;
}

dt_status pb_activity_request(dt_arena *a, const char *instance_id, const char *execution_id,
                              int32_t task_id, const char *name, const char *version,
                              const char *input, Dtpb__ActivityRequest **out)
{
    if (a == NULL || instance_id == NULL || name == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    builder b = { a, DT_OK };
    Dtpb__ActivityRequest *m = b_msg(&b, &dtpb__activity_request__descriptor);
    Dtpb__OrchestrationInstance *inst = b_msg(&b, &dtpb__orchestration_instance__descriptor);
    Dtpb__StringValue *exec = b_sv(&b, execution_id);
    Dtpb__StringValue *ver = b_sv(&b, version);
    Dtpb__StringValue *in = b_sv(&b, input);
    if (b.st != DT_OK)
        return b.st;
    inst->instanceid = b_str(instance_id);
    inst->executionid = exec;
    m->name = b_str(name);
    m->version = ver;
    m->input = in;
    m->orchestrationinstance = inst;
    m->taskid = task_id;
    *out = m;
    return DT_OK;
}

/* chunked: whether M is part of a chunked completion. The fields are deprecated in the
 * protocol (protobuf-c marks them so); reading them is exactly how we refuse them. */
static bool chunked(const Dtpb__OrchestratorResponse *m)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    return m->ispartial || m->chunkindex != NULL;
#pragma GCC diagnostic pop
}

dt_status pb_orchestrator_response_from_msg(dt_arena *a, const Dtpb__OrchestratorResponse *m,
                                            pb_orch_completion *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_orchestrator_response_from_msg needs an arena, a message and "
                            "a completion to fill");
    if (chunked(m))
        return dt_error_set(err, DT_ERR_UNIMPLEMENTED,
                            "OrchestratorResponse: chunked completions (isPartial, chunkIndex) "
                            "are deprecated and not supported");
    reader r = { a, err, DT_OK, "OrchestratorResponse" };
    pb_orch_completion c;
    memset(&c, 0, sizeof c);
    c.instance_id = r_str(&r, m->instanceid, "instanceId");
    c.completion_token = r_str(&r, m->completiontoken, "completionToken");
    c.result.custom_status = r_sv(&r, m->customstatus, "customStatus");
    c.n_events_processed = -1;
    if (m->numeventsprocessed) {
        if (m->numeventsprocessed->value < 0)
            r_fail(&r, DT_ERR_INVALID_ARG, "OrchestratorResponse.numEventsProcessed %d is negative",
                   (int)m->numeventsprocessed->value);
        c.n_events_processed = m->numeventsprocessed->value;
    }
    c.requires_history = m->requireshistory;
    dt_action *acts = NULL;
    if (r.st == DT_OK && m->n_actions > 0) {
        acts = dt_arena_alloc(a, m->n_actions * sizeof *acts);
        if (acts == NULL)
            r_fail(&r, DT_ERR_NOMEM, "out of memory reading %zu actions", m->n_actions);
    }
    for (size_t i = 0; i < m->n_actions && r.st == DT_OK; i++) {
        if (m->actions[i] == NULL) {
            r_fail(&r, DT_ERR_INVALID_ARG, "OrchestratorResponse.actions[%zu] is missing", i);
            break;
        }
        r.st = pb_action_from_msg(a, m->actions[i], &acts[i], err);
        if (r.st != DT_OK)
            err_prefix(err, "OrchestratorResponse.actions[%zu] (id %d): ", i,
                       (int)m->actions[i]->id);
    }
    if (r.st != DT_OK)
        return r.st;
    c.result.actions = acts;
    c.result.n_actions = m->n_actions;
    *out = c;
    return DT_OK;
}

dt_status pb_activity_response_from_msg(dt_arena *a, const Dtpb__ActivityResponse *m,
                                        pb_activity_completion *out, dt_error *err)
{
    if (a == NULL || m == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "pb_activity_response_from_msg needs an arena, a message and a "
                            "completion to fill");
    reader r = { a, err, DT_OK, "ActivityResponse" };
    pb_activity_completion c;
    memset(&c, 0, sizeof c);
    c.instance_id = r_str(&r, m->instanceid, "instanceId");
    c.task_id = m->taskid;
    c.completion_token = r_str(&r, m->completiontoken, "completionToken");
    c.result = r_sv(&r, m->result, "result");
    c.failure = r_failure(&r, m->failuredetails, "failureDetails");
    if (r.st != DT_OK)
        return r.st;
    *out = c;
    return DT_OK;
}
