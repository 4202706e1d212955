/* call.c — dt_call_http, the orchestration side of a durable HTTP call: each exchange is a
 * run of BuiltIn::HttpActivity, and a 202 Accepted is polled on durable timers, so a call
 * that waits an hour for a long-running operation holds no thread and survives restarts.
 * This is replayed code: it allocates only from the episode's arena, and holds no heap
 * memory across anything that can end the episode (dt_await, dt_alloc, dt_printf): the
 * activity's input is written straight into the arena, its output read in two passes
 * (sizes, then copies) so that jansson's memory is freed before the arena is asked for any. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpcall_internal.h"

/* call_failed: the call's failure of TYPE; *FAILURE gets it, or with FAILURE NULL it becomes
 * the orchestration's (dt_fail_with), for the orchestrator to return. */
static dt_status call_failed(dt_octx *ctx, const dt_failure **failure, const dt_failure *inner,
                             const char *type, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static dt_status call_failed(dt_octx *ctx, const dt_failure **failure, const dt_failure *inner,
                             const char *type, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (failure == NULL)
        return dt_fail_with(ctx, inner, type, "%s", msg);
    if (inner && strcmp(type, inner->error_type ? inner->error_type : "") == 0) {
        *failure = inner;   /* the activity's own failure, as it is */
        return DT_ERR_TASK_FAILED;
    }
    dt_failure *f = dt_alloc(ctx, sizeof *f);
    f->error_type = dt_printf(ctx, "%s", type);
    f->message = dt_printf(ctx, "%s", msg);
    f->inner = (dt_failure *)inner;
    *failure = f;
    return DT_ERR_TASK_FAILED;
}

/* ---- the activity's input, written into the arena ------------------------------------------ */

/* put_str: S as a JSON string at P (NULL: only count), returning the length. */
static size_t put_str(char *p, const char *s)
{
    size_t n = 0;
#define PUT(c) (p ? (void)(p[n] = (c)) : (void)0, n++)
    PUT('"');
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        if (*q == '"' || *q == '\\') {
            PUT('\\');
            PUT((char)*q);
        } else if (*q < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *q);
            for (int i = 0; esc[i]; i++)
                PUT(esc[i]);
        } else {
            PUT((char)*q);
        }
    }
    PUT('"');
#undef PUT
    return n;
}

/* put_raw: the text S at P (NULL: only count). */
static size_t put_raw(char *p, const char *s)
{
    size_t n = strlen(s);
    if (p)
        memcpy(p, s, n);
    return n;
}

/* write_input: the DurableHttpRequest at P (NULL: only count), returning its length. */
static size_t write_input(char *p, const dt_http_request *req, const char *method,
                          const char *uri, const char *content, const char *timeout)
{
    size_t n = 0;
#define AT (p ? p + n : NULL)
    n += put_raw(AT, "{\"method\":");
    n += put_str(AT, method);
    n += put_raw(AT, ",\"uri\":");
    n += put_str(AT, uri);
    n += put_raw(AT, ",\"headers\":{");
    for (size_t i = 0; i < req->n_headers; i++) {
        if (i)
            n += put_raw(AT, ",");
        n += put_str(AT, req->headers[i].name ? req->headers[i].name : "");
        n += put_raw(AT, ":");
        n += put_str(AT, req->headers[i].value ? req->headers[i].value : "");
    }
    n += put_raw(AT, "},\"content\":");
    n += content ? put_str(AT, content) : put_raw(AT, "null");
    n += put_raw(AT, ",\"timeout\":");
    n += put_str(AT, timeout);
    n += put_raw(AT, req->no_async_pattern ? ",\"asynchronousPatternEnabled\":false}"
                                           : ",\"asynchronousPatternEnabled\":true}");
#undef AT
    return n;
}

static const char *build_input(dt_octx *ctx, const dt_http_request *req, const char *method,
                               const char *uri, const char *content, int64_t timeout_ms)
{
    /* a .NET TimeSpan, [d.]hh:mm:ss.fff, as the other SDKs send it */
    char ts[48];
    long long s = timeout_ms / 1000, d = s / 86400;
    if (d)
        snprintf(ts, sizeof ts, "%lld.%02lld:%02lld:%02lld.%03lld", d, s / 3600 % 24,
                 s / 60 % 60, s % 60, (long long)(timeout_ms % 1000));
    else
        snprintf(ts, sizeof ts, "%02lld:%02lld:%02lld.%03lld", s / 3600, s / 60 % 60, s % 60,
                 (long long)(timeout_ms % 1000));
    size_t n = write_input(NULL, req, method, uri, content, ts);
    char *p = dt_alloc(ctx, n + 1);
    write_input(p, req, method, uri, content, ts);
    p[n] = '\0';
    return p;
}

/* ---- the activity's output ------------------------------------------------------------------ */

/* walk: read the DurableHttpResponse O into OUT. With MEM NULL only count: *BYTES of strings
 * and *NH headers; else copy the strings into MEM and the headers into OUT->headers, which
 * has room for *NH. A header given as an array has its values joined by ", ". */
static bool walk(json_t *o, dt_http_response *out, char *mem, size_t *bytes, size_t *nh)
{
    json_t *sc = json_object_get(o, "statusCode"), *hs = json_object_get(o, "headers");
    json_t *c = json_object_get(o, "content");
    if (!json_is_integer(sc) || (hs && !json_is_null(hs) && !json_is_object(hs)) ||
        (c && !json_is_null(c) && !json_is_string(c)))
        return false;
    out->status_code = (int)json_integer_value(sc);
    size_t used = 0, k = 0;
    const char *name;
    json_t *v;
    json_object_foreach(hs, name, v) {   /* a NULL object iterates nothing */
        if (!json_is_string(v) && !json_is_array(v))
            continue;
        size_t nl = strlen(name) + 1;
        if (mem) {
            dt_http_header *h = (dt_http_header *)&out->headers[k];
            memcpy(mem + used, name, nl);
            h->name = mem + used;
            h->value = mem + used + nl;
        }
        used += nl;
        size_t at = used;
        if (json_is_string(v)) {
            used += json_string_length(v);
            if (mem)
                memcpy(mem + at, json_string_value(v), json_string_length(v));
        } else {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (!json_is_string(e))
                    continue;
                if (used > at) {
                    if (mem)
                        memcpy(mem + used, ", ", 2);
                    used += 2;
                }
                if (mem)
                    memcpy(mem + used, json_string_value(e), json_string_length(e));
                used += json_string_length(e);
            }
        }
        if (mem)
            mem[used] = '\0';
        used++;
        k++;
    }
    if (json_is_string(c)) {
        if (mem) {
            memcpy(mem + used, json_string_value(c), json_string_length(c) + 1);
            out->content = mem + used;
        }
        used += json_string_length(c) + 1;
    }
    *bytes = used;
    *nh = k;
    return true;
}

/* read_output: JSON as OUT, all in the episode's arena; false if it is not a response. */
static bool read_output(dt_octx *ctx, const char *json, dt_http_response *out)
{
    size_t bytes = 0, nh = 0;
    json_t *o = json ? json_loads(json, 0, NULL) : NULL;
    bool ok = json_is_object(o) && walk(o, out, NULL, &bytes, &nh);
    json_decref(o);
    if (!ok)
        return false;
    char *mem = dt_alloc(ctx, bytes + 1);
    out->headers = dt_alloc(ctx, (nh ? nh : 1) * sizeof *out->headers);
    out->n_headers = nh;
    out->json = json;
    o = json_loads(json, 0, NULL);
    ok = o && walk(o, out, mem, &bytes, &nh);
    json_decref(o);
    return ok;
}

const char *dt_http_response_header(const dt_http_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* poll_delay_ms: how long to wait before polling again, from Retry-After (seconds, or an
 * HTTP date taken against orchestration time NOW), at least a second and at most
 * DT_HTTP_POLL_MAX_MS. */
static int64_t poll_delay_ms(const char *retry_after, dt_time now)
{
    int64_t ms = DT_HTTP_POLL_DEFAULT_MS;
    if (retry_after && retry_after[0]) {
        char *end = NULL;
        long long secs = strtoll(retry_after, &end, 10);
        if (end != retry_after && *end == '\0' && secs >= 0) {
            ms = secs > DT_HTTP_POLL_MAX_MS / 1000 ? DT_HTTP_POLL_MAX_MS : secs * 1000;
        } else {
            time_t at = curl_getdate(retry_after, NULL);
            if (at != (time_t)-1)
                ms = (int64_t)at * 1000 - now / 1000;
        }
    }
    if (ms < 1000)
        ms = 1000;
    return ms < DT_HTTP_POLL_MAX_MS ? ms : DT_HTTP_POLL_MAX_MS;
}

dt_status dt_call_http(dt_octx *ctx, const dt_http_request *req, dt_http_response *out,
                       const dt_failure **failure)
{
    memset(out, 0, sizeof *out);
    if (failure)
        *failure = NULL;
    if (req == NULL || req->uri == NULL || req->uri[0] == '\0')
        return call_failed(ctx, failure, NULL, DT_HTTP_ERR_INVALID,
                           "dt_call_http: the request has no uri");
    if (req->timeout_ms < 0 || req->timeout_ms > DT_HTTP_TIMEOUT_MAX_MS)
        return call_failed(ctx, failure, NULL, DT_HTTP_ERR_INVALID,
                           "dt_call_http: timeout_ms must be 0 (the default) or up to %lld "
                           "(got %lld)", (long long)DT_HTTP_TIMEOUT_MAX_MS,
                           (long long)req->timeout_ms);
    int64_t timeout_ms = req->timeout_ms ? req->timeout_ms : DT_HTTP_TIMEOUT_DEFAULT_MS;
    dt_time deadline = dt_octx_now(ctx) + timeout_ms * 1000;
    const char *method = req->method ? req->method : "GET";
    const char *uri = req->uri, *content = req->content;
    dt_task_options opts = {.retry = req->retry};
    for (int polls = 0;; polls++) {
        int64_t left_ms = (deadline - dt_octx_now(ctx)) / 1000;
        if (left_ms <= 0)
            return call_failed(ctx, failure, NULL, DT_HTTP_ERR_TIMEOUT,
                               "no final response from '%.300s' within %lld ms", uri,
                               (long long)timeout_ms);
        const char *input = build_input(ctx, req, method, uri, content, left_ms);
        dt_task *t = dt_call_activity(ctx, DT_HTTP_ACTIVITY_NAME, input, &opts);
        const char *result = NULL;
        const dt_failure *f = NULL;
        if (dt_try_await(ctx, t, &result, &f) != DT_OK)
            return call_failed(ctx, failure, f, f && f->error_type ? f->error_type : "TaskFailed",
                               "%s '%.300s' failed: %s", method, uri,
                               f && f->message ? f->message : "");
        if (!read_output(ctx, result, out))
            return call_failed(ctx, failure, NULL, DT_HTTP_ERR_INVALID,
                               "the output of %s is not a DurableHttpResponse: %.200s",
                               DT_HTTP_ACTIVITY_NAME, result ? result : "null");
        const char *location = dt_http_response_header(out, "Location");
        if (req->no_async_pattern || out->status_code != 202 || location == NULL)
            return DT_OK;
        char next[HTTPCALL_URL_MAX + 1];
        if (!httpcall_resolve(uri, location, next, sizeof next))
            return call_failed(ctx, failure, NULL, DT_HTTP_ERR_INVALID,
                               "the Location '%.300s' of a 202 from '%.300s' is not a URL",
                               location, uri);
        dt_time now = dt_octx_now(ctx);
        int64_t delay = poll_delay_ms(dt_http_response_header(out, "Retry-After"), now);
        if (now + delay * 1000 >= deadline)
            return call_failed(ctx, failure, NULL, DT_HTTP_ERR_TIMEOUT,
                               "'%.300s' still answered 202 Accepted after %d polls; no final "
                               "response within %lld ms", uri, polls, (long long)timeout_ms);
        dt_await(ctx, dt_create_timer(ctx, now + delay * 1000));
        uri = dt_printf(ctx, "%s", next);
        method = "GET";
        content = NULL;
    }
}
