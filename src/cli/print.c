/* print.c — what dtask prints about instances and histories: readable blocks and tables for
 * people, and JSON for scripts. Payloads are JSON text already, so the JSON output embeds
 * them as they are (byte for byte, no reformatting of numbers); one that is not JSON (another
 * backend may store anything) is printed as a JSON string instead. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* ---- JSON pieces ---------------------------------------------------------------------------- */

static void json_str(FILE *out, const char *s)
{
    if (s == NULL) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* json_payload: a payload as JSON; NULL and "" (the SDKs' "no payload") are null. */
static void json_payload(FILE *out, const char *s)
{
    if (s == NULL || s[0] == '\0')
        fputs("null", out);
    else if (dt_json_validate(s, "payload", NULL) == DT_OK)
        fputs(s, out);
    else
        json_str(out, s);
}

static void json_time(FILE *out, dt_time t)
{
    char buf[32];
    if (t == 0) {
        fputs("null", out);
        return;
    }
    dt_time_format(t, buf);
    json_str(out, buf);
}

/* An object being written: keys get their commas right. */
typedef struct jobj {
    FILE *out;
    bool any;
} jobj;

static jobj jopen(FILE *out)
{
    fputc('{', out);
    return (jobj){out, false};
}

static void jkey(jobj *o, const char *key)
{
    fprintf(o->out, "%s\"%s\":", o->any ? "," : "", key);
    o->any = true;
}

static void jstr(jobj *o, const char *key, const char *v)
{
    jkey(o, key);
    json_str(o->out, v);
}

static void jint(jobj *o, const char *key, long long v)
{
    jkey(o, key);
    fprintf(o->out, "%lld", v);
}

static void json_failure(FILE *out, const dt_failure *f)
{
    if (f == NULL) {
        fputs("null", out);
        return;
    }
    jobj o = jopen(out);
    jstr(&o, "errorType", f->error_type);
    jstr(&o, "errorMessage", f->message);
    if (f->stack_trace)
        jstr(&o, "stackTrace", f->stack_trace);
    if (f->non_retriable) {
        jkey(&o, "isNonRetriable");
        fputs("true", out);
    }
    if (f->inner) {
        jkey(&o, "innerFailure");
        json_failure(out, f->inner);
    }
    fputc('}', out);
}

/* ---- instances ------------------------------------------------------------------------------ */

void cli_print_state_json(FILE *out, const dt_instance_state *s, bool with_payloads)
{
    jobj o = jopen(out);
    jstr(&o, "instanceId", s->instance_id);
    jstr(&o, "name", s->name);
    jstr(&o, "version", s->version);
    jstr(&o, "runtimeStatus", dt_runtime_status_name(s->status));
    jkey(&o, "createdAt");
    json_time(out, s->created_at);
    jkey(&o, "lastUpdatedAt");
    json_time(out, s->last_updated_at);
    jkey(&o, "completedAt");
    json_time(out, s->completed_at);
    jkey(&o, "scheduledStartAt");
    json_time(out, s->scheduled_start);
    jstr(&o, "executionId", s->execution_id);
    jstr(&o, "parentInstanceId", s->parent_instance_id);
    if (with_payloads) {
        jkey(&o, "input");
        json_payload(out, s->input);
        jkey(&o, "output");
        json_payload(out, s->output);
        jkey(&o, "customStatus");
        json_payload(out, s->custom_status);
    }
    jkey(&o, "failureDetails");
    json_failure(out, s->failure);
    fputc('}', out);
}

void cli_print_failure(FILE *out, const dt_failure *f, const char *indent)
{
    fprintf(out, "%s: %s\n", f->error_type ? f->error_type : "Error",
            f->message ? f->message : "");
    for (const dt_failure *in = f->inner; in; in = in->inner)
        fprintf(out, "%scaused by %s: %s\n", indent, in->error_type ? in->error_type : "Error",
                in->message ? in->message : "");
}

static void field(FILE *out, const char *label, const char *value)
{
    fprintf(out, "%-16s %s\n", label, value);
}

static void time_field(FILE *out, const char *label, dt_time t)
{
    char buf[32];
    dt_time_format(t, buf);
    field(out, label, buf);
}

static void payload_field(FILE *out, const char *label, const char *value)
{
    field(out, label, value && value[0] ? value : "(none)");
}

/* stack_lines: each line of a stack trace, indented under the block's values. */
static void stack_lines(FILE *out, const char *trace)
{
    while (*trace) {
        size_t len = strcspn(trace, "\n");
        fprintf(out, "%-16s %.*s\n", "", (int)len, trace);
        trace += len + (trace[len] == '\n');
    }
}

void cli_print_state(FILE *out, const dt_instance_state *s, bool with_payloads)
{
    field(out, "instance:", s->instance_id);
    field(out, "name:", s->name);
    if (s->version && s->version[0])
        field(out, "version:", s->version);
    field(out, "status:", dt_runtime_status_name(s->status));
    time_field(out, "created:", s->created_at);
    time_field(out, "updated:", s->last_updated_at);
    if (s->completed_at)
        time_field(out, "completed:", s->completed_at);
    if (s->scheduled_start)
        time_field(out, "scheduled start:", s->scheduled_start);
    if (s->execution_id && s->execution_id[0])
        field(out, "execution:", s->execution_id);
    if (s->parent_instance_id && s->parent_instance_id[0])
        field(out, "parent:", s->parent_instance_id);
    if (with_payloads) {
        payload_field(out, "input:", s->input);
        payload_field(out, "output:", s->output);
        payload_field(out, "custom status:", s->custom_status);
    }
    if (s->failure) {
        fprintf(out, "%-16s ", "failure:");
        cli_print_failure(out, s->failure, "                 ");
        if (s->failure->stack_trace && s->failure->stack_trace[0])
            stack_lines(out, s->failure->stack_trace);
    }
}

/* ---- histories ------------------------------------------------------------------------------ */

/* payload_of: the text worth showing for an event: its input, result or failure. */
static const char *payload_of(const dt_event *e)
{
    if (e->failure)
        return e->failure->message;
    if (e->result)
        return e->result;
    return e->input;
}

static bool answers_a_schedule(dt_event_type t)
{
    return t == DT_EVENT_TASK_COMPLETED || t == DT_EVENT_TASK_FAILED ||
           t == DT_EVENT_TIMER_FIRED || t == DT_EVENT_SUB_ORCHESTRATION_COMPLETED ||
           t == DT_EVENT_SUB_ORCHESTRATION_FAILED;
}

/* format_name: "name#seq" for scheduling events and for the completions that answer them
 * (whose own record has no name: it is found on the scheduling event), else the name. */
static void format_name(const dt_event *ev, size_t i, char *buf, size_t n)
{
    const dt_event *e = &ev[i];
    if (e->event_id >= 0) {
        snprintf(buf, n, "%s#%d", e->name ? e->name : "", e->event_id);
        return;
    }
    if (answers_a_schedule(e->type)) {
        const char *sname = "";
        for (size_t j = i; j-- > 0;)
            if (ev[j].event_id == e->task_id && ev[j].name) {
                sname = ev[j].name;
                break;
            }
        snprintf(buf, n, "%s#%d", sname, e->task_id);
        return;
    }
    snprintf(buf, n, "%s", e->name ? e->name : "");
}

void cli_print_history(FILE *out, const dt_event *ev, size_t n)
{
    fprintf(out, "%4s  %-34s  %-24s  %-14s  %s\n", "seq", "event", "timestamp", "name",
            "payload");
    for (size_t i = 0; i < n; i++) {
        char ts[32];
        dt_time_format(ev[i].timestamp, ts);
        const char *p = payload_of(&ev[i]);
        char shown[72];
        snprintf(shown, sizeof shown, "%s", p ? p : "");
        if (p && strlen(p) >= sizeof shown)
            memcpy(shown + sizeof shown - 4, "...", 4);
        char name[64];
        format_name(ev, i, name, sizeof name);
        fprintf(out, "%4zu  %-34s  %-24s  %-14s  %s\n", i, dt_event_type_name(ev[i].type), ts,
                name, shown);
    }
}

/* event_json: one event with the fields its type uses (core.h's table); unset ones left out. */
static void event_json(FILE *out, const dt_event *e, size_t seq)
{
    jobj o = jopen(out);
    jint(&o, "seq", (long long)seq);
    jstr(&o, "type", dt_event_type_name(e->type));
    jkey(&o, "timestamp");
    json_time(out, e->timestamp);
    if (e->event_id >= 0)
        jint(&o, "eventId", e->event_id);
    if (answers_a_schedule(e->type))
        jint(&o, "taskId", e->task_id);
    const char *strs[][2] = {{"name", e->name},           {"version", e->version},
                             {"instanceId", e->instance_id}, {"executionId", e->execution_id},
                             {"parentInstanceId", e->parent_instance_id}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i][1])
            jstr(&o, strs[i][0], strs[i][1]);
    const char *payloads[][2] = {{"input", e->input}, {"result", e->result}};
    for (size_t i = 0; i < 2; i++)
        if (payloads[i][1]) {
            jkey(&o, payloads[i][0]);
            json_payload(out, payloads[i][1]);
        }
    if (e->type == DT_EVENT_EXECUTION_COMPLETED)
        jstr(&o, "runtimeStatus", dt_runtime_status_name(e->status));
    dt_time times[2] = {e->fire_at, e->scheduled_start};
    const char *time_keys[2] = {"fireAt", "scheduledStartAt"};
    for (size_t i = 0; i < 2; i++)
        if (times[i]) {
            jkey(&o, time_keys[i]);
            json_time(out, times[i]);
        }
    if (e->failure) {
        jkey(&o, "failureDetails");
        json_failure(out, e->failure);
    }
    if (e->recurse) {
        jkey(&o, "recurse");
        fputs("true", out);
    }
    fputc('}', out);
}

void cli_print_history_json(FILE *out, const dt_event *ev, size_t n)
{
    fputc('[', out);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n " : "", out);
        event_json(out, &ev[i], i);
    }
    fputs("]\n", out);
}

/* ---- entities ------------------------------------------------------------------------------- */

void cli_print_entity_json(FILE *out, const dt_entity_state *e, bool with_state)
{
    jobj o = jopen(out);
    jstr(&o, "entityId", e->entity_id);
    jkey(&o, "lastModifiedAt");
    json_time(out, e->last_modified);
    jstr(&o, "lockedBy", e->locked_by);
    jint(&o, "backlogQueueSize", e->backlog);
    if (with_state) {
        jkey(&o, "state");
        json_payload(out, e->state);
    }
    fputc('}', out);
}

void cli_print_entity(FILE *out, const dt_entity_state *e)
{
    char buf[32];
    field(out, "entity:", e->entity_id);
    time_field(out, "last modified:", e->last_modified);
    field(out, "locked by:", e->locked_by ? e->locked_by : "(none)");
    snprintf(buf, sizeof buf, "%d", (int)e->backlog);
    field(out, "backlog:", buf);
    payload_field(out, "state:", e->has_state ? e->state : NULL);
}
