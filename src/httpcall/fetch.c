/* fetch.c — one HTTP exchange with libcurl, for the HTTP activity. libcurl does not follow
 * redirects itself: each hop is its own transfer, so the URL of every hop is checked against
 * the allow list before anything connects to it, and at most DT_HTTP_REDIRECTS_MAX are
 * followed. Only http and https are ever spoken, no proxy from the environment is used, the
 * body is cut off past the activity's limit and the whole exchange (every hop) shares one
 * deadline. Everything the caller keeps is copied into its arena; the rest is freed here on
 * every path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "httpcall_internal.h"

/* A growing buffer with a hard limit; TOO_LARGE once something did not fit. */
typedef struct sink {
    char *buf;
    size_t len, cap, max;
    bool too_large;
} sink;

static bool sink_add(sink *s, const char *p, size_t k)
{
    if (k > s->max - s->len) {
        s->too_large = true;
        return false;
    }
    if (s->len + k + 1 > s->cap) {
        char *b = dt_grow(s->buf, &s->cap, s->len + k + 1, 1);
        if (b == NULL)
            return false;
        s->buf = b;
    }
    memcpy(s->buf + s->len, p, k);
    s->len += k;
    s->buf[s->len] = '\0';
    return true;
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    /* anything but the full count makes curl stop with CURLE_WRITE_ERROR */
    return sink_add(data, p, size * n) ? size * n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *data)
{
    sink *s = data;
    /* a new status line (after a 100 Continue) starts the headers afresh */
    if (size * n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        s->len = 0;
    return sink_add(s, p, size * n) ? size * n : 0;
}

static int on_progress(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const atomic_bool *cancel = data;
    return cancel && atomic_load(cancel) ? 1 : 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* One hop: the transfer and what it left behind. */
typedef struct hop {
    CURL *curl;
    struct curl_slist *lines;
    sink body, head;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode cc;
    long status;
} hop;

static void hop_free(hop *h)
{
    if (h->curl)
        curl_easy_cleanup(h->curl);
    curl_slist_free_all(h->lines);
    free(h->body.buf);
    free(h->head.buf);
    memset(h, 0, sizeof *h);
}

static bool add_line(hop *h, const char *line)
{
    struct curl_slist *l = curl_slist_append(h->lines, line);
    if (l == NULL)
        return false;
    h->lines = l;
    return true;
}

/* hop_run: one transfer of METHOD on URL (with the body if SEND_BODY; without credentials
 * if the hop left the first host). DT_ERR_NOMEM if it could not be set up; else DT_OK with
 * H->cc saying how the transfer went. */
static dt_status hop_run(hop *h, const dt_http_activity *a, const fetch_req *rq,
                         const char *url, const char *method, bool send_body,
                         bool drop_credentials, int64_t timeout_ms, const atomic_bool *cancel)
{
    memset(h, 0, sizeof *h);
    h->body.max = a->max_body;
    h->head.max = HTTPCALL_HEADERS_MAX;
    if ((h->curl = curl_easy_init()) == NULL)
        return DT_ERR_NOMEM;
    bool has_type = false;
    for (size_t i = 0; i < rq->n_headers; i++) {
        const char *line = rq->headers[i];
        if (drop_credentials && (header_is(line, "Authorization") || header_is(line, "Cookie") ||
                                 header_is(line, "Proxy-Authorization")))
            continue;
        has_type |= header_is(line, "Content-Type");
        if (!add_line(h, line))
            return DT_ERR_NOMEM;
    }
    /* a body is text unless the caller said otherwise (curl would call it a form); no
     * "Expect: 100-continue" round trip */
    if (!has_type && !add_line(h, send_body ? "Content-Type: text/plain; charset=utf-8"
                                            : "Content-Type:"))
        return DT_ERR_NOMEM;
    if (!add_line(h, "Expect:"))
        return DT_ERR_NOMEM;
    CURL *c = h->curl;
    bool ok = true;
#define SET(opt, val) ok = ok && curl_easy_setopt(c, opt, val) == CURLE_OK
    SET(CURLOPT_URL, url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, "");            /* no proxy from the environment */
    SET(CURLOPT_NOSIGNAL, 1L);         /* threads: no SIGALRM for DNS timeouts */
    SET(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout_ms < 30000 ? timeout_ms : 30000));
    SET(CURLOPT_USERAGENT, "durabletask-c");
    SET(CURLOPT_HTTPHEADER, h->lines);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, &h->body);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, &h->head);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)a->max_body);
    SET(CURLOPT_NOPROGRESS, 0L);
    SET(CURLOPT_XFERINFOFUNCTION, on_progress);
    SET(CURLOPT_XFERINFODATA, (void *)cancel);
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    if (strcmp(method, "HEAD") == 0 && !send_body) {
        SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0 && !send_body) {
        SET(CURLOPT_HTTPGET, 1L);
    } else {
        /* every other method sends its body (an empty one says Content-Length: 0) */
        const char *content = send_body ? rq->content : "";
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(content));
        SET(CURLOPT_POSTFIELDS, content);
        SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef SET
    if (!ok)
        return DT_ERR_NOMEM;
    h->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h->status);
    return DT_OK;
}

/* fail: a failure of TYPE with the formatted message, in ARENA. */
static dt_status fail(dt_arena *arena, const dt_failure **failure, const char *type,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static dt_status fail(dt_arena *arena, const dt_failure **failure, const char *type,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_failure *f = dt_failure_vnew(arena, type, fmt, ap);
    va_end(ap);
    if (f == NULL || f->message == NULL || f->error_type == NULL)
        return DT_ERR_NOMEM;
    *failure = f;
    return DT_OK;
}

/* transfer_failed: the failure a transfer that did not complete is reported as. */
static dt_status transfer_failed(const hop *h, const dt_http_activity *a, const char *method,
                                 const char *url, int64_t timeout_ms, dt_arena *arena,
                                 const dt_failure **failure)
{
    if (h->body.too_large || h->cc == CURLE_FILESIZE_EXCEEDED)
        return fail(arena, failure, DT_HTTP_ERR_TOO_LARGE,
                    "response from %s '%s' is larger than %zu bytes", method, url, a->max_body);
    if (h->head.too_large)
        return fail(arena, failure, DT_HTTP_ERR_TOO_LARGE,
                    "response headers from %s '%s' are larger than %d bytes", method, url,
                    HTTPCALL_HEADERS_MAX);
    if (h->cc == CURLE_OPERATION_TIMEDOUT)
        return fail(arena, failure, DT_HTTP_ERR_TIMEOUT,
                    "no complete response from %s '%s' within %lld ms", method, url,
                    (long long)timeout_ms);
    if (h->cc == CURLE_UNSUPPORTED_PROTOCOL)
        return fail(arena, failure, DT_HTTP_ERR_REFUSED, "%s '%s': %s", method, url,
                    h->errbuf[0] ? h->errbuf : curl_easy_strerror(h->cc));
    if (h->cc == CURLE_WRITE_ERROR && h->body.too_large == false && h->head.too_large == false)
        return DT_ERR_NOMEM;   /* a sink could not grow */
    /* libcurl's error buffer says more than its code's sentence, when it has anything */
    return fail(arena, failure, DT_HTTP_ERR_TRANSPORT, "%s '%s' failed: %s", method, url,
                h->errbuf[0] ? h->errbuf : curl_easy_strerror(h->cc));
}

/* keep: the final hop's status, headers and body, copied into ARENA. */
static dt_status keep(hop *h, dt_arena *arena, fetch_resp *out)
{
    out->status = h->status;
    size_t n = 0;
    for (size_t i = 0; i < h->head.len; i++)
        n += h->head.buf[i] == '\n';
    out->headers = dt_arena_alloc(arena, (n ? n : 1) * sizeof *out->headers);
    if (out->headers == NULL)
        return DT_ERR_NOMEM;
    out->n_headers = 0;
    char *save = NULL;
    for (char *line = h->head.buf ? strtok_r(h->head.buf, "\r\n", &save) : NULL; line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        /* the status line and folded continuations (obsolete) carry no header of their own */
        if (colon == NULL || line[0] == ' ' || line[0] == '\t' || strncmp(line, "HTTP/", 5) == 0)
            continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t vl = strlen(v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        dt_http_header *hd = &out->headers[out->n_headers++];
        hd->name = dt_arena_strndup(arena, line, (size_t)(colon - line));
        hd->value = dt_arena_strndup(arena, v, vl);
        if (hd->name == NULL || hd->value == NULL)
            return DT_ERR_NOMEM;
    }
    out->body_len = h->body.len;
    char *b = dt_arena_alloc(arena, h->body.len + 1);
    if (b == NULL)
        return DT_ERR_NOMEM;
    if (h->body.len)
        memcpy(b, h->body.buf, h->body.len);
    out->body = b;
    return DT_OK;
}

static bool is_redirect(long status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

dt_status httpcall_fetch(const dt_http_activity *a, const fetch_req *rq, dt_arena *arena,
                         const atomic_bool *cancel, fetch_resp *out,
                         const dt_failure **failure)
{
    httpcall_global_init();
    *failure = NULL;
    char url[HTTPCALL_URL_MAX + 1], first_host[256], host[256], msg[512];
    const char *type, *method = rq->method;
    bool send_body = rq->content != NULL;
    snprintf(url, sizeof url, "%s", rq->uri ? rq->uri : "");
    int64_t deadline = now_ms() + rq->timeout_ms;
    for (int hops = 0;; hops++) {
        dt_status st = httpcall_check_url(a, url, &type, msg, sizeof msg, host, sizeof host);
        if (st == DT_ERR_NOMEM)
            return st;
        if (st != DT_OK)
            return hops == 0 ? fail(arena, failure, type, "%s", msg)
                             : fail(arena, failure, type, "redirect %d: %s", hops, msg);
        if (hops == 0)
            memcpy(first_host, host, sizeof host);
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return fail(arena, failure, DT_HTTP_ERR_TIMEOUT,
                        "no complete response from %s '%s' within %lld ms", method, url,
                        (long long)rq->timeout_ms);
        hop h;
        st = hop_run(&h, a, rq, url, method, send_body, strcmp(host, first_host) != 0, left,
                     cancel);
        if (st == DT_OK && h.cc == CURLE_ABORTED_BY_CALLBACK && cancel && atomic_load(cancel))
            st = DT_ERR_SHUTDOWN;
        else if (st == DT_OK && h.cc != CURLE_OK)
            st = transfer_failed(&h, a, method, url, rq->timeout_ms, arena, failure);
        else if (st == DT_OK && is_redirect(h.status)) {
            char *next = NULL;
            curl_easy_getinfo(h.curl, CURLINFO_REDIRECT_URL, &next);
            if (next && hops == DT_HTTP_REDIRECTS_MAX) {
                st = fail(arena, failure, DT_HTTP_ERR_REDIRECTS,
                          "more than %d redirects (a loop?), the last from '%s' to '%s'",
                          DT_HTTP_REDIRECTS_MAX, url, next);
            } else if (next && strlen(next) > HTTPCALL_URL_MAX) {
                st = fail(arena, failure, DT_HTTP_ERR_INVALID,
                          "redirect from '%s' to a URL longer than %d bytes", url,
                          HTTPCALL_URL_MAX);
            } else if (next) {
                snprintf(url, sizeof url, "%s", next);
                /* 303, and 301/302 after a POST, continue as a GET without the body (as
                 * browsers and .NET's HttpClient do); 307 and 308 repeat the request */
                if (h.status == 303 || (h.status != 307 && h.status != 308 &&
                                        strcmp(method, "POST") == 0)) {
                    method = strcmp(method, "HEAD") == 0 ? "HEAD" : "GET";
                    send_body = false;
                }
                hop_free(&h);
                continue;
            } else {
                st = keep(&h, arena, out);   /* a 3xx without Location is the answer */
            }
        } else if (st == DT_OK) {
            st = keep(&h, arena, out);
        }
        hop_free(&h);
        return st;
    }
}
