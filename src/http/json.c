/* json.c — the HTTP API's JSON: a small writer (jbuf) and instance states, failures and
 * history events written with it. Payloads are stored as JSON text and are spliced into the
 * response as they are, not parsed and printed again, so a number keeps its exact text
 * (jansson would print 0.1 as 0.10000000000000001); jansson only checks that each one is a
 * JSON value before it goes in, so a bad stored payload cannot break the response. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

/* ---- the writer --------------------------------------------------------------------------- */

void jb_init(jbuf *jb)
{
    memset(jb, 0, sizeof *jb);
}

static void jb_put(jbuf *jb, const char *s, size_t n)
{
    if (jb->oom)
        return;
    char *p = dt_grow(jb->p, &jb->cap, jb->len + n + 1, 1);
    if (p == NULL) {
        jb->oom = true;
        return;
    }
    jb->p = p;
    memcpy(jb->p + jb->len, s, n);
    jb->len += n;
    jb->p[jb->len] = '\0';
}

static void jb_puts(jbuf *jb, const char *s)
{
    jb_put(jb, s, strlen(s));
}

/* jb_value: what goes before a value: a comma between array elements; nothing after a key. */
static void jb_value(jbuf *jb)
{
    if (jb->after_key) {
        jb->after_key = false;
        return;
    }
    if (jb->depth > 0) {
        if (jb->count[jb->depth - 1]++ > 0)
            jb_put(jb, ",", 1);
    }
}

static void jb_open(jbuf *jb, bool array)
{
    jb_value(jb);
    if (jb->depth >= JB_MAX_DEPTH) {    /* our own documents are shallow; a bug if hit */
        jb->oom = true;
        return;
    }
    jb->is_array[jb->depth] = array;
    jb->count[jb->depth] = 0;
    jb->depth++;
    jb_put(jb, array ? "[" : "{", 1);
}

static void jb_close(jbuf *jb, bool array)
{
    if (jb->depth > 0)
        jb->depth--;
    jb_put(jb, array ? "]" : "}", 1);
}

void jb_object_begin(jbuf *jb) { jb_open(jb, false); }
void jb_object_end(jbuf *jb) { jb_close(jb, false); }
void jb_array_begin(jbuf *jb) { jb_open(jb, true); }
void jb_array_end(jbuf *jb) { jb_close(jb, true); }

/* utf8_len: the length of the well-formed UTF-8 sequence at S (at most N bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return len;
}

static void jb_escaped(jbuf *jb, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    jb_put(jb, "\"", 1);
    size_t run = 0;    /* bytes at s that need no escaping, written in one go */
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = utf8_len(s + i, n - i);
        if (len > 0 && c >= 0x20 && c != '"' && c != '\\') {
            run += len;
            i += len;
            continue;
        }
        jb_put(jb, (const char *)s + i - run, run);
        run = 0;
        char esc[8];
        if (len == 0) {
            jb_puts(jb, "\xEF\xBF\xBD");   /* a byte that is not UTF-8: U+FFFD */
        } else if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            jb_put(jb, esc, 2);
        } else if (c == '\n') {
            jb_puts(jb, "\\n");
        } else if (c == '\r') {
            jb_puts(jb, "\\r");
        } else if (c == '\t') {
            jb_puts(jb, "\\t");
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jb_puts(jb, esc);
        }
        i += len ? len : 1;
    }
    jb_put(jb, (const char *)s + n - run, run);
    jb_put(jb, "\"", 1);
}

void jb_key(jbuf *jb, const char *key)
{
    jb_value(jb);
    jb_escaped(jb, key);
    jb_put(jb, ":", 1);
    jb->after_key = true;
}

void jb_null(jbuf *jb)
{
    jb_value(jb);
    jb_puts(jb, "null");
}

void jb_string(jbuf *jb, const char *s)
{
    if (s == NULL) {
        jb_null(jb);
        return;
    }
    jb_value(jb);
    jb_escaped(jb, s);
}

void jb_int(jbuf *jb, long long v)
{
    char num[24];
    snprintf(num, sizeof num, "%lld", v);
    jb_value(jb);
    jb_puts(jb, num);
}

void jb_bool(jbuf *jb, bool v)
{
    jb_value(jb);
    jb_puts(jb, v ? "true" : "false");
}

void jb_time(jbuf *jb, dt_time t)
{
    if (t == 0) {
        jb_null(jb);
        return;
    }
    char buf[32];
    dt_time_format(t, buf);
    jb_string(jb, buf);
}

void jb_payload(jbuf *jb, const char *json)
{
    if (json == NULL) {
        jb_null(jb);
        return;
    }
    json_error_t je;
    dt_json_refused();
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (v == NULL && dt_json_refused()) {
        jb->oom = true;   /* not known to be JSON or not: no answer rather than a wrong one */
        return;
    }
    if (v == NULL) {
        jb_string(jb, json);
        return;
    }
    json_decref(v);
    /* trim the whitespace JSON allows around a value; the text between is one value */
    size_t n = strlen(json);
    while (n > 0 && strchr(" \t\r\n", json[n - 1]))
        n--;
    size_t start = strspn(json, " \t\r\n");
    jb_value(jb);
    jb_put(jb, json + start, n - start);
}

char *jb_finish(jbuf *jb, size_t *len)
{
    if (jb->oom || jb->p == NULL) {
        free(jb->p);
        jb_init(jb);
        *len = 0;
        return NULL;
    }
    char *p = jb->p;
    *len = jb->len;
    if (jb->cap - jb->len > ((size_t)64 << 10)) {   /* the server counts len, so hold no more */
        char *small = realloc(p, jb->len + 1);
        p = small ? small : p;
    }
    jb_init(jb);
    return p;
}

/* ---- instances ---------------------------------------------------------------------------- */

void jb_failure(jbuf *jb, const dt_failure *f)
{
    if (f == NULL) {
        jb_null(jb);
        return;
    }
    jb_object_begin(jb);
    jb_key(jb, "errorType");
    jb_string(jb, f->error_type);
    jb_key(jb, "errorMessage");
    jb_string(jb, f->message);
    jb_key(jb, "stackTrace");
    jb_string(jb, f->stack_trace);
    jb_key(jb, "innerFailure");
    if (f->inner && jb->depth < JB_MAX_DEPTH - 2)
        jb_failure(jb, f->inner);
    else
        jb_null(jb);    /* an inner chain deeper than the writer nests is cut here */
    if (f->properties) {
        jb_key(jb, "properties");
        jb_payload(jb, f->properties);
    }
    jb_object_end(jb);
}

/* jb_names_add: remember the name on E, a scheduling event, under its event_id, so a later
 * completion (whose own record has no name) can show what it completes. Names are a nicety:
 * ids too sparse to index cheaply, and memory that runs out, only leave names out. */
static void jb_names_add(jb_names *nm, const dt_event *e)
{
    if (e->event_id < 0 || e->name == NULL ||
        !(dt_event_is_scheduling(e->type) || dt_event_is_entity_message(e->type)))
        return;
    size_t id = (size_t)e->event_id;
    if (id > 4 * nm->seen + 1024)
        return;
    if (id >= nm->cap) {
        size_t cap = nm->cap;
        const char **v = dt_grow(nm->v, &cap, id + 1, sizeof *v);
        if (v == NULL)
            return;
        memset(v + nm->cap, 0, (cap - nm->cap) * sizeof *v);
        nm->v = v;
        nm->cap = cap;
    }
    if (nm->arena == NULL && (nm->arena = dt_arena_new()) == NULL)
        return;
    nm->v[id] = dt_arena_strdup(nm->arena, e->name);
    if (nm->v[id])
        nm->bytes += strlen(e->name) + 1;
}

void jb_names_free(jb_names *nm)
{
    free(nm->v);
    dt_arena_free(nm->arena);
    *nm = (jb_names){0};
}

size_t jb_names_bytes(const jb_names *nm)
{
    return nm->bytes + nm->cap * sizeof *nm->v;
}

static void jb_event(jbuf *jb, const dt_event *e, const char *name, bool show_output)
{
    jb_object_begin(jb);
    jb_key(jb, "EventType");
    jb_string(jb, dt_event_type_name(e->type));
    jb_key(jb, "EventId");
    jb_int(jb, e->event_id);
    jb_key(jb, "Timestamp");
    jb_time(jb, e->timestamp);
    if (name) {
        jb_key(jb, "Name");
        jb_string(jb, name);
    }
    if (e->instance_id) {
        jb_key(jb, "InstanceId");
        jb_string(jb, e->instance_id);
    }
    if (dt_event_is_completion(e->type)) {
        jb_key(jb, "TaskScheduledId");
        jb_int(jb, e->task_id);
    }
    if (e->type == DT_EVENT_TIMER_CREATED || e->type == DT_EVENT_TIMER_FIRED) {
        jb_key(jb, "FireAt");
        jb_time(jb, e->fire_at);
    }
    if (e->type == DT_EVENT_EXECUTION_COMPLETED) {
        jb_key(jb, "OrchestrationStatus");
        jb_string(jb, dt_runtime_status_name(e->status));
    }
    if (show_output && e->input) {
        jb_key(jb, "Input");
        jb_payload(jb, e->input);
    }
    if (show_output && e->result) {
        jb_key(jb, "Result");
        jb_payload(jb, e->result);
    }
    if (e->failure) {
        jb_key(jb, "FailureDetails");
        jb_failure(jb, e->failure);
    }
    if (e->tags) {
        jb_key(jb, "Tags");
        jb_payload(jb, e->tags);
    }
    if (e->trace_parent) {
        jb_key(jb, "ParentTraceContext");
        jb_object_begin(jb);
        jb_key(jb, "traceParent");
        jb_string(jb, e->trace_parent);
        jb_key(jb, "traceState");
        jb_string(jb, e->trace_state);
        jb_object_end(jb);
    }
    jb_object_end(jb);
}

void jb_state_open(jbuf *jb, const dt_instance_state *s, bool show_input)
{
    jb_object_begin(jb);
    jb_key(jb, "name");
    jb_string(jb, s->name);
    jb_key(jb, "instanceId");
    jb_string(jb, s->instance_id);
    jb_key(jb, "version");
    jb_string(jb, s->version ? s->version : "");
    jb_key(jb, "runtimeStatus");
    jb_string(jb, dt_runtime_status_name(s->status));
    if (show_input) {
        jb_key(jb, "input");
        jb_payload(jb, s->input);
    }
    jb_key(jb, "customStatus");
    jb_payload(jb, s->custom_status);
    jb_key(jb, "output");
    jb_payload(jb, s->output);
    jb_key(jb, "createdTime");
    jb_time(jb, s->created_at);
    jb_key(jb, "lastUpdatedTime");
    jb_time(jb, s->last_updated_at);
    jb_key(jb, "completedTime");
    jb_time(jb, s->completed_at);
    jb_key(jb, "failureDetails");
    jb_failure(jb, s->failure);
    jb_key(jb, "tags");
    jb_payload(jb, s->tags);
    if (s->parent_instance_id) {   /* ours: a sub-orchestration's parent */
        jb_key(jb, "parentInstanceId");
        jb_string(jb, s->parent_instance_id);
    }
}

void jb_state(jbuf *jb, const dt_instance_state *s, bool show_input)
{
    jb_state_open(jb, s, show_input);
    jb_object_end(jb);
}

void jb_history(jbuf *jb, const dt_event *ev, size_t n, bool show_output, jb_names *nm)
{
    for (size_t i = 0; i < n; i++) {
        const dt_event *e = &ev[i];
        nm->seen++;
        jb_names_add(nm, e);
        const char *name = e->name;
        if (name == NULL && dt_event_is_completion(e->type) && e->task_id >= 0 &&
            (size_t)e->task_id < nm->cap)
            name = nm->v[e->task_id];
        jb_event(jb, e, name, show_output);
    }
}
