/* fields.c — the one family of field helpers every protobuf mapping is written with: the
 * builder (strings, string values, times, failures, statuses, instances into a message tree
 * in an arena) and the reader (the same back into records, checked and copied). The
 * HistoryEvent mapping (event_codec.c) and the service's messages (src/service/) build on
 * these; see pb.h for who owns what. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pb.h"

#define USEC_PER_SEC INT64_C(1000000)

/* The protocol's Timestamp range in whole seconds (DT_TIME_MIN..DT_TIME_MAX). */
#define SECONDS_MIN (DT_TIME_MIN / USEC_PER_SEC)
#define SECONDS_MAX (DT_TIME_MAX / USEC_PER_SEC)
_Static_assert(DT_TIME_MIN % USEC_PER_SEC == 0, "DT_TIME_MIN is a whole second");
_Static_assert(DT_TIME_MAX % USEC_PER_SEC == USEC_PER_SEC - 1,
               "DT_TIME_MAX is the last microsecond of a second");

_Static_assert((int)DT_STATUS_SUSPENDED ==
                   (int)DTPB__ORCHESTRATION_STATUS__ORCHESTRATION_STATUS_SUSPENDED,
               "dt_runtime_status numbers follow the protocol's OrchestrationStatus");

static bool status_known(int s)
{
    return s >= DT_STATUS_RUNNING && s <= DT_STATUS_SUSPENDED;
}

/* ==== building ============================================================================ */

void *pb_b_msg(pb_builder *b, const ProtobufCMessageDescriptor *desc)
{
    if (b->status != DT_OK)
        return NULL;
    void *m = dt_arena_alloc(b->arena, desc->sizeof_message);
    if (m == NULL) {
        b->status = DT_ERR_NOMEM;
        return NULL;
    }
    protobuf_c_message_init(desc, m);
    return m;
}

void *pb_b_array(pb_builder *b, size_t n, size_t size)
{
    if (b->status != DT_OK || n == 0)
        return NULL;
    if (n > SIZE_MAX / size) {
        b->status = DT_ERR_NOMEM;
        return NULL;
    }
    void *p = dt_arena_alloc(b->arena, n * size);
    if (p == NULL)
        b->status = DT_ERR_NOMEM;
    return p;
}

char *pb_b_str(const char *s)
{
    return (char *)(s ? s : "");
}

Dtpb__StringValue *pb_b_sv(pb_builder *b, const char *s)
{
    if (s == NULL)
        return NULL;
    Dtpb__StringValue *v = pb_b_msg(b, &dtpb__string_value__descriptor);
    if (v)
        v->value = (char *)s;
    return v;
}

/* microseconds to seconds + non-negative nanos (floor division, so -1 us is seconds -1,
 * nanos 999999000) */
Dtpb__Timestamp *pb_b_time(pb_builder *b, dt_time t)
{
    if (t == 0)
        return NULL;
    if (t < DT_TIME_MIN || t > DT_TIME_MAX) {
        if (b->status == DT_OK)
            b->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
    int64_t seconds = t / USEC_PER_SEC;
    int64_t micros = t % USEC_PER_SEC;
    if (micros < 0) {
        seconds -= 1;
        micros += USEC_PER_SEC;
    }
    Dtpb__Timestamp *ts = pb_b_msg(b, &dtpb__timestamp__descriptor);
    if (ts) {
        ts->seconds = seconds;
        ts->nanos = (int32_t)(micros * 1000);
    }
    return ts;
}

static Dtpb__TaskFailureDetails *build_failure(pb_builder *b, const dt_failure *f, int depth)
{
    if (f == NULL)
        return NULL;
    if (depth >= PB_FAILURE_DEPTH_MAX) {   /* also catches a cycle */
        if (b->status == DT_OK)
            b->status = DT_ERR_INVALID_ARG;
        return NULL;
    }
    Dtpb__TaskFailureDetails *m = pb_b_msg(b, &dtpb__task_failure_details__descriptor);
    if (m == NULL)
        return NULL;
    m->errortype = pb_b_str(f->error_type);
    m->errormessage = pb_b_str(f->message);
    m->stacktrace = pb_b_sv(b, f->stack_trace);
    m->innerfailure = build_failure(b, f->inner, depth + 1);
    m->isnonretriable = f->non_retriable;
    m->properties = pb_b_properties(b, f->properties, &m->n_properties);
    return m;
}

Dtpb__TaskFailureDetails *pb_b_failure(pb_builder *b, const dt_failure *f)
{
    return build_failure(b, f, 0);
}

Dtpb__OrchestrationStatus pb_b_status(pb_builder *b, dt_runtime_status s)
{
    if (!status_known((int)s) && b->status == DT_OK)
        b->status = DT_ERR_INVALID_ARG;
    return (Dtpb__OrchestrationStatus)s;
}

Dtpb__OrchestrationInstance *pb_b_instance(pb_builder *b, const char *id, const char *exec)
{
    Dtpb__OrchestrationInstance *m = pb_b_msg(b, &dtpb__orchestration_instance__descriptor);
    if (m) {
        m->instanceid = pb_b_str(id);
        m->executionid = pb_b_sv(b, exec);
    }
    return m;
}

Dtpb__HistoryEvent **pb_b_events(pb_builder *b, const dt_event *events, size_t n)
{
    Dtpb__HistoryEvent **arr = pb_b_array(b, n, sizeof *arr);
    for (size_t i = 0; i < n && b->status == DT_OK; i++)
        arr[i] = pb_b_event(b, &events[i]);
    return arr;
}

/* ==== reading ============================================================================= */

void pb_r_fail(pb_reader *r, dt_status code, const char *fmt, ...)
{
    if (r->status != DT_OK)
        return;
    r->status = code;
    if (r->err == NULL)
        return;
    r->err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
    va_end(ap);
}

/* The WHAT prefix of a field name in messages: "TimerCreated." or nothing. */
#define WHAT(r) PB_WHAT(r)

/* copy: S (not NULL) copied into the arena; FIELD names it if it is not UTF-8. UTF-8 is not
 * checked for what our store wrote: that would turn a stray byte an embedding program once
 * passed us into an instance whose history can never load again. */
static char *copy(pb_reader *r, const char *s, const char *field)
{
    if (r->status != DT_OK)
        return NULL;
    if (r->wire && !pb_utf8_valid(s)) {
        pb_r_bad(r, "%s%s%s is not valid UTF-8", WHAT(r), field);
        return NULL;
    }
    char *c = dt_arena_strdup(r->arena, s);
    if (c == NULL)
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory copying %s%s%s into the arena", WHAT(r),
                  field);
    return c;
}

const char *pb_r_str(pb_reader *r, const char *s, const char *field)
{
    return copy(r, s ? s : "", field);
}

const char *pb_r_sv(pb_reader *r, const Dtpb__StringValue *v, const char *field)
{
    return v ? pb_r_str(r, v->value, field) : NULL;
}

/* the range check also keeps the multiplication from overflowing */
dt_time pb_r_time(pb_reader *r, const Dtpb__Timestamp *ts, const char *field)
{
    if (ts == NULL || r->status != DT_OK)
        return 0;
    if (ts->seconds < SECONDS_MIN || ts->seconds > SECONDS_MAX || ts->nanos < 0 ||
        ts->nanos > 999999999) {
        pb_r_bad(r, "%s%s%s is not a valid timestamp (seconds %lld, nanos %d)", WHAT(r), field,
                 (long long)ts->seconds, (int)ts->nanos);
        return 0;
    }
    return ts->seconds * USEC_PER_SEC + ts->nanos / 1000;
}

dt_time pb_r_bound(pb_reader *r, const Dtpb__Timestamp *ts, const char *field)
{
    dt_time t = pb_r_time(r, ts, field);
    return ts && r->status == DT_OK ? dt_time_bound(t) : t;
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

static dt_failure *read_failure(pb_reader *r, const Dtpb__TaskFailureDetails *m,
                                const char *field, int depth)
{
    if (m == NULL || r->status != DT_OK)
        return NULL;
    if (depth >= PB_FAILURE_DEPTH_MAX) {
        pb_r_bad(r, "%s%s%s: failure details nest deeper than %d inner failures", WHAT(r),
                 field, PB_FAILURE_DEPTH_MAX);
        return NULL;
    }
    dt_failure *f = dt_arena_alloc(r->arena, sizeof *f);
    if (f == NULL) {
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading %s%s%s", WHAT(r), field);
        return NULL;
    }
    char name[160];
    f->error_type = pb_r_str(r, m->errortype,
                             failure_field(name, sizeof name, field, depth, "errorType"));
    f->message = pb_r_str(r, m->errormessage,
                          failure_field(name, sizeof name, field, depth, "errorMessage"));
    f->stack_trace = pb_r_sv(r, m->stacktrace,
                             failure_field(name, sizeof name, field, depth, "stackTrace"));
    f->inner = read_failure(r, m->innerfailure, field, depth + 1);
    f->non_retriable = m->isnonretriable;
    f->properties = pb_r_properties(r, m->properties, m->n_properties,
                                    failure_field(name, sizeof name, field, depth, "properties"));
    return f;
}

const dt_failure *pb_r_failure(pb_reader *r, const Dtpb__TaskFailureDetails *m,
                               const char *field)
{
    return read_failure(r, m, field, 0);
}

dt_runtime_status pb_r_status(pb_reader *r, int status, const char *field)
{
    if (r->status != DT_OK)
        return DT_STATUS_RUNNING;
    if (!status_known(status)) {
        pb_r_bad(r, "%s%s%s %d is not a known status", WHAT(r), field, status);
        return DT_STATUS_RUNNING;
    }
    return (dt_runtime_status)status;
}

const dt_runtime_status *pb_r_statuses(pb_reader *r, const Dtpb__OrchestrationStatus *in,
                                       size_t n, const char *field)
{
    if (r->status != DT_OK || n == 0)
        return NULL;
    dt_runtime_status *out = dt_arena_alloc(r->arena, n * sizeof *out);
    if (out == NULL) {
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading %s%s%s", WHAT(r), field);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%zu]", field, i);
        out[i] = pb_r_status(r, (int)in[i], name);
    }
    return out;
}

dt_event *pb_r_events(pb_reader *r, Dtpb__HistoryEvent *const *in, size_t n, const char *field)
{
    if (r->status != DT_OK || n == 0)
        return NULL;
    dt_event *out = dt_arena_alloc(r->arena, n * sizeof *out);
    if (out == NULL) {
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading %zu events of %s", n, field);
        return NULL;
    }
    for (size_t i = 0; i < n && r->status == DT_OK; i++) {
        if (in[i] == NULL) {
            pb_r_bad(r, "%s[%zu] is missing", field, i);
            break;
        }
        pb_r_event(r, in[i], &out[i]);
        if (r->status != DT_OK)
            pb_err_prefix(r->err, "%s[%zu]: ", field, i);
    }
    return out;
}

void pb_err_prefix(dt_error *err, const char *fmt, ...)
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
