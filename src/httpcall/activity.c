/* activity.c — BuiltIn::HttpActivity: a Durable Functions-shaped request (JSON) in, one
 * exchange (fetch.c), a Durable Functions-shaped response out. Owns the request's rules (a
 * method that is an HTTP token, header names and values that cannot smuggle a line, a
 * timeout as a .NET TimeSpan or seconds) and the response's form (headers as an object of
 * strings, the body as UTF-8 text). */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpcall_internal.h"

/* ---- the activity's settings ----------------------------------------------------------- */

/* allow_entry_ok: a host name or IP address (letters, digits, '.', '-', ':'), or "*." and a
 * name; at most 253 characters. */
static bool allow_entry_ok(const char *e)
{
    size_t n = strlen(e);
    if (n == 0 || n > 253)
        return false;
    const char *p = e;
    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return false;
        p += 2;
    }
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != ':' && *p != '_')
            return false;
    return true;
}

void dt_http_activity_free(dt_http_activity *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_allow; i++)
        free(a->allow[i]);
    free(a->allow);
    free(a);
}

dt_status dt_http_activity_new(const dt_http_activity_options *opts, dt_http_activity **out,
                               dt_error *err)
{
    *out = NULL;
    dt_status st = DT_ERR_NOMEM;
    char *list = NULL;
    dt_http_activity *a = calloc(1, sizeof *a);
    if (a == NULL)
        goto fail;
    a->max_body = opts && opts->max_response_bytes ? opts->max_response_bytes
                                                   : DT_HTTP_RESPONSE_MAX;
    a->max_exchange_ms = opts && opts->max_exchange_ms > 0 ? opts->max_exchange_ms
                                                           : DT_HTTP_EXCHANGE_MAX_MS;
    if (opts && opts->allow && opts->allow[0]) {
        if ((list = strdup(opts->allow)) == NULL)
            goto fail;
        size_t cap = 1;
        for (const char *p = list; *p; p++)
            cap += *p == ',';
        if ((a->allow = calloc(cap, sizeof *a->allow)) == NULL)
            goto fail;
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            size_t n = strlen(t);
            while (n && t[n - 1] == ' ')
                t[--n] = '\0';
            if (n > 2 && t[0] == '[' && t[n - 1] == ']') {   /* "[::1]" names "::1" */
                t[n - 1] = '\0';
                t++;
            }
            if (!allow_entry_ok(t)) {
                st = dt_error_set(err, DT_ERR_INVALID_ARG,
                                  "--http-activity-allow: '%s' is not a host name, an IP "
                                  "address or *.domain", t);
                goto fail;
            }
            for (char *p = t; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            if ((a->allow[a->n_allow] = strdup(t)) == NULL)
                goto fail;
            a->n_allow++;
        }
        if (a->n_allow == 0) {
            st = dt_error_set(err, DT_ERR_INVALID_ARG, "--http-activity-allow names no host");
            goto fail;
        }
    }
    free(list);
    *out = a;
    return DT_OK;
fail:
    if (st == DT_ERR_NOMEM)
        dt_error_set(err, st, "out of memory");
    free(list);
    dt_http_activity_free(a);
    return st;
}

/* ---- the request -------------------------------------------------------------------------- */

typedef struct request {
    const char *method, *uri, *content;
    const char **lines;          /* "Name: value" */
    size_t n_lines;
    int64_t timeout_ms;          /* 0: none given */
} request;

static bool is_token(const char *s)
{
    if (s[0] == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return false;
    return true;
}

/* digits: a run of decimal digits at *P (at most 9), moved past. */
static bool digits(const char **p, long long *v)
{
    const char *s = *p;
    long long n = 0;
    int k = 0;
    while (isdigit((unsigned char)s[k]) && k < 9)
        n = n * 10 + (s[k++] - '0');
    if (k == 0 || isdigit((unsigned char)s[k]))
        return false;
    *v = n;
    *p = s + k;
    return true;
}

/* parse_timespan: a .NET TimeSpan as it serializes one: [d.]hh:mm:ss[.fffffff]. */
static bool parse_timespan(const char *s, int64_t *ms)
{
    long long d = 0, h, m, sec = 0, frac = 0, scale = 1;
    if (!digits(&s, &h))
        return false;
    if (*s == '.') {
        s++;
        d = h;
        if (!digits(&s, &h))
            return false;
    }
    if (*s++ != ':' || !digits(&s, &m))
        return false;
    if (*s == ':') {
        s++;
        if (!digits(&s, &sec))
            return false;
        if (*s == '.') {
            s++;
            for (int k = 0; isdigit((unsigned char)*s); k++, s++)
                if (k < 3) {
                    frac = frac * 10 + (*s - '0');
                    scale *= 10;
                }
            if (scale == 1)
                return false;
        }
    }
    if (*s != '\0' || h > 23 || m > 59 || sec > 59)
        return false;
    *ms = (((d * 24 + h) * 60 + m) * 60 + sec) * 1000 + frac * 1000 / scale;
    return true;
}

/* bad_request: the request breaks a rule; MSG (CAP bytes) says which. */
static dt_status bad_request(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static dt_status bad_request(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return DT_ERR_INVALID_ARG;
}
#define bad(...) bad_request(msg, cap, __VA_ARGS__)

static dt_status add_header(request *r, dt_arena *arena, const char *name, json_t *v,
                            size_t *cap_lines, char *msg, size_t cap)
{
    if (!json_is_string(v))
        return bad("header '%.100s' must have a string value (or an array of them)", name);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strpbrk(s, "\r\n"))
        return bad("header '%.100s' has a line break or NUL in its value", name);
    if (r->n_lines == *cap_lines) {
        size_t nc = *cap_lines ? *cap_lines * 2 : 8;
        const char **l = dt_arena_alloc(arena, nc * sizeof *l);
        if (l == NULL)
            return DT_ERR_NOMEM;
        if (r->n_lines)
            memcpy(l, r->lines, r->n_lines * sizeof *l);
        r->lines = l;
        *cap_lines = nc;
    }
    if ((r->lines[r->n_lines] = dt_arena_printf(arena, "%s: %s", name, s)) == NULL)
        return DT_ERR_NOMEM;
    r->n_lines++;
    return DT_OK;
}

static dt_status read_headers(request *r, json_t *headers, dt_arena *arena, char *msg,
                              size_t cap)
{
    if (headers == NULL || json_is_null(headers))
        return DT_OK;
    if (!json_is_object(headers))
        return bad("headers must be an object of header names to values");
    size_t cap_lines = 0;
    const char *name;
    json_t *v;
    json_object_foreach(headers, name, v) {
        if (!is_token(name))
            return bad("header name '%.100s' is not an HTTP token", name);
        if (strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0)
            return bad("header '%s' is the activity's to set, from the content", name);
        dt_status st = DT_OK;
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if ((st = add_header(r, arena, name, e, &cap_lines, msg, cap)) != DT_OK)
                    return st;
            }
        } else if ((st = add_header(r, arena, name, v, &cap_lines, msg, cap)) != DT_OK) {
            return st;
        }
    }
    return DT_OK;
}

/* read_request: INPUT as a request, strings copied into ARENA. DT_ERR_INVALID_ARG with MSG
 * naming the rule it breaks. */
static dt_status read_request(const char *input, dt_arena *arena, request *r, char *msg,
                              size_t cap)
{
    memset(r, 0, sizeof *r);
    json_error_t je;
    dt_json_refused();
    json_t *root = input ? json_loads(input, JSON_DECODE_ANY, &je) : NULL;
    if (root == NULL && dt_json_refused())   /* not now (JSON's bound): the activity is retried */
        return DT_ERR_NOMEM;
    if (root == NULL)
        return input ? bad("the request is not JSON: %s", je.text)
                     : bad("the activity needs a request (a DurableHttpRequest), got none");
    dt_status st = DT_ERR_INVALID_ARG;
    json_t *o = root;
    /* the Java SDK sends a list of one request */
    if (json_is_array(o) && json_array_size(o) == 1)
        o = json_array_get(o, 0);
    if (!json_is_object(o)) {
        bad("the request must be a JSON object (a DurableHttpRequest)");
        goto done;
    }
    json_t *m = json_object_get(o, "method"), *u = json_object_get(o, "uri");
    json_t *c = json_object_get(o, "content"), *t = json_object_get(o, "timeout");
    json_t *ts = json_object_get(o, "tokenSource");
    if (ts && !json_is_null(ts)) {
        bad("tokenSource (managed identity tokens) is not supported; send an Authorization "
            "header instead");
        goto done;
    }
    if (m && !json_is_null(m) && (!json_is_string(m) || !is_token(json_string_value(m)) ||
                                  json_string_length(m) > 32)) {
        bad("method must be an HTTP method name such as \"GET\"");
        goto done;
    }
    if (!json_is_string(u)) {
        bad("uri must be a string (an http:// or https:// URL)");
        goto done;
    }
    if (c && !json_is_null(c) && !json_is_string(c)) {
        bad("content must be a string or null");
        goto done;
    }
    if (c && json_is_string(c) && strlen(json_string_value(c)) != json_string_length(c)) {
        bad("content has a NUL character");
        goto done;
    }
    if (json_is_number(t)) {
        double secs = json_number_value(t);
        if (!(secs > 0 && secs <= DT_HTTP_TIMEOUT_MAX_MS / 1000.0)) {
            bad("timeout must be more than 0 and at most %lld seconds (got %g)",
                (long long)(DT_HTTP_TIMEOUT_MAX_MS / 1000), secs);
            goto done;
        }
        r->timeout_ms = (int64_t)(secs * 1000) > 0 ? (int64_t)(secs * 1000) : 1;
    } else if (json_is_string(t)) {
        if (!parse_timespan(json_string_value(t), &r->timeout_ms) || r->timeout_ms <= 0) {
            bad("timeout '%.40s' is not a positive time span like \"00:01:40\"",
                json_string_value(t));
            goto done;
        }
    } else if (t && !json_is_null(t)) {
        bad("timeout must be a time span like \"00:01:40\" or a number of seconds");
        goto done;
    }
    if ((st = read_headers(r, json_object_get(o, "headers"), arena, msg, cap)) != DT_OK)
        goto done;
    st = DT_ERR_NOMEM;
    char *method = dt_arena_strdup(arena, m && json_is_string(m) ? json_string_value(m) : "GET");
    r->uri = dt_arena_strdup(arena, json_string_value(u));
    r->content = c && json_is_string(c) ? dt_arena_strdup(arena, json_string_value(c)) : NULL;
    if (method == NULL || r->uri == NULL || (c && json_is_string(c) && r->content == NULL))
        goto done;
    for (char *p = method; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    r->method = method;
    st = DT_OK;
done:
    json_decref(root);
    return st;
}

#undef bad

/* ---- the response -------------------------------------------------------------------- */

/* utf8_len: the length of the valid UTF-8 sequence at P (N bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    if (p[0] >= 0x01 && p[0] < 0x80)
        return 1;
    size_t k = p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : p[0] >= 0xE0 && p[0] <= 0xEF ? 3
             : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
    if (k == 0 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    /* overlong forms, UTF-16 surrogates and code points past U+10FFFF */
    if ((p[0] == 0xE0 && p[1] < 0xA0) || (p[0] == 0xED && p[1] > 0x9F) ||
        (p[0] == 0xF0 && p[1] < 0x90) || (p[0] == 0xF4 && p[1] > 0x8F))
        return 0;
    return k;
}

/* as_text: the body as UTF-8 text: a byte that does not start a valid sequence (and NUL)
 * becomes U+FFFD, as a decoder that replaces errors does. Heap memory; free it. */
static char *as_text(const char *body, size_t n, size_t *len)
{
    char *out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len((const unsigned char *)body + i, n - i);
        if (k == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, body + i, k);
            o += k;
            i += k;
        }
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* headers_json: the response's headers as an object; a name sent more than once (in any
 * case) is one entry, its values joined by ", " in the order they came. */
static json_t *headers_json(const fetch_resp *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < r->n_headers; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcasecmp(r->headers[j].name, r->headers[i].name) == 0;
        if (seen)
            continue;
        size_t len = 0;
        for (size_t j = i; j < r->n_headers; j++)
            if (strcasecmp(r->headers[j].name, r->headers[i].name) == 0)
                len += strlen(r->headers[j].value) + 2;
        char *v = malloc(len + 1), *p = v;
        if (v == NULL) {
            json_decref(o);
            return NULL;
        }
        for (size_t j = i; j < r->n_headers; j++)
            if (strcasecmp(r->headers[j].name, r->headers[i].name) == 0)
                p += sprintf(p, "%s%s", p == v ? "" : ", ", r->headers[j].value);
        /* a header whose name or value is not UTF-8 text cannot be in JSON: it is left out
         * (json_object_set_new refuses such a name and frees the value) */
        json_t *s = json_string(v);
        free(v);
        if (s)
            json_object_set_new(o, r->headers[i].name, s);
    }
    return o;
}

/* response_json: the answer R as a DurableHttpResponse, in ARENA. Past JSON's bound all the
 * same (dt_json_unbounded): the request went out, and a retry would send it again; R is
 * bounded by the activity's own limit on answers. */
static dt_status response_json(const fetch_resp *r, dt_arena *arena, const char **result)
{
    bool was = dt_json_unbounded(true);
    dt_status st = DT_ERR_NOMEM;
    size_t tl = 0;
    char *text = as_text(r->body, r->body_len, &tl), *dump = NULL;
    json_t *o = json_object(), *h = headers_json(r);
    json_t *content = text ? json_stringn_nocheck(text, tl) : NULL;
    if (o == NULL || h == NULL || content == NULL ||
        json_object_set_new(o, "statusCode", json_integer(r->status)) != 0)
        goto done;
    /* json_object_set_new takes the value over whether it succeeds or not */
    int bad = json_object_set_new(o, "headers", h);
    h = NULL;
    bad |= json_object_set_new(o, "content", content);
    content = NULL;
    if (bad || (dump = json_dumps(o, JSON_COMPACT)) == NULL)
        goto done;
    if ((*result = dt_arena_strdup(arena, dump)) != NULL)
        st = DT_OK;
done:
    dt_json_free(dump);
    free(text);
    json_decref(o);
    json_decref(h);
    json_decref(content);
    dt_json_unbounded(was);
    return st;
}

/* ---- the run -------------------------------------------------------------------------- */

static dt_status failed(dt_arena *arena, const dt_failure **failure, const char *type,
                        const char *msg)
{
    dt_failure *f = dt_failure_new(arena, type, "%s", msg);
    *failure = f;
    return f ? DT_OK : DT_ERR_NOMEM;
}

dt_status httpcall_run(const dt_http_activity *a, const char *input, dt_arena *arena,
                       const atomic_bool *cancel, const char **result,
                       const dt_failure **failure)
{
    *result = NULL;
    *failure = NULL;
    char msg[512];
    if (a->n_allow == 0)
        return failed(arena, failure, DT_HTTP_ERR_DISABLED,
                      "outbound HTTP is off; start dtask serve with --http-activity-allow "
                      "HOSTS (or give the worker's HTTP activity an allow list)");
    request r;
    dt_status st = read_request(input, arena, &r, msg, sizeof msg);
    if (st == DT_ERR_INVALID_ARG)
        return failed(arena, failure, DT_HTTP_ERR_INVALID, msg);
    if (st != DT_OK)
        return st;
    int64_t t = r.timeout_ms > 0 ? r.timeout_ms : DT_HTTP_TIMEOUT_DEFAULT_MS;
    fetch_req fr = {r.method, r.uri, r.lines, r.n_lines, r.content,
                    t < a->max_exchange_ms ? t : a->max_exchange_ms};
    fetch_resp resp = {0};
    if ((st = httpcall_fetch(a, &fr, arena, cancel, &resp, failure)) != DT_OK || *failure)
        return st;
    return response_json(&resp, arena, result);
}

dt_status dt_http_activity_run(const dt_http_activity *a, const char *input, dt_arena *arena,
                               const char **result, const dt_failure **failure)
{
    return httpcall_run(a, input, arena, NULL, result, failure);
}

/* run_in_worker: the activity as a dt_worker runs it. The exchange's memory is an arena of
 * its own; what the worker keeps is copied into the activity's. */
static dt_status run_in_worker(dt_actx *ctx, const char *input, const char **output)
{
    const dt_http_activity *a = dt_activity_user(ctx);
    dt_arena *tmp = dt_arena_new();
    if (tmp == NULL)
        return DT_ERR_NOMEM;
    const char *res = NULL;
    const dt_failure *f = NULL;
    dt_status st = httpcall_run(a, input, tmp, NULL, &res, &f);
    if (st == DT_OK && f)
        st = dt_activity_fail(ctx, f->error_type, "%s", f->message);
    else if (st == DT_OK && res && (*output = dt_activity_printf(ctx, "%s", res)) == NULL)
        st = DT_ERR_NOMEM;
    dt_arena_free(tmp);
    return st;
}

dt_status dt_worker_add_http_activity(dt_worker *w, const dt_http_activity *a)
{
    return dt_worker_add_activity(w, DT_HTTP_ACTIVITY_NAME, run_in_worker, (void *)a);
}
