/* params.c — what every API handler reads and writes the same way: boolean, time and page
 * size query parameters, a JSON request body, continuation tokens (the store's, an instance
 * or entity id, in base64url so any id fits in a header) and JSON answers. Each reader that
 * refuses a value fills in a 400 naming the parameter and the value. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

bool http_param_bool(const http_request *rq, http_response *rs, const char *name, bool def,
                     bool *out)
{
    const char *v = http_query(rq, name);
    *out = def;
    if (v == NULL || v[0] == '\0')
        return true;
    if (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0) {
        *out = true;
        return true;
    }
    if (strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0) {
        *out = false;
        return true;
    }
    http_reply_error(rs, 400, "query parameter %s must be true or false, not '%.100s'", name, v);
    return false;
}

bool http_param_time(const http_request *rq, http_response *rs, const char *name, dt_time *out)
{
    const char *v = http_query(rq, name);
    *out = 0;
    if (v == NULL || v[0] == '\0')
        return true;
    if (dt_time_parse(v, out) == DT_OK)
        return true;
    http_reply_error(rs, 400,
                     "query parameter %s must be an ISO 8601 time such as "
                     "2026-01-31T12:00:00Z, not '%.100s'",
                     name, v);
    return false;
}

bool http_param_bound(const http_request *rq, http_response *rs, const char *name, dt_time *out)
{
    if (!http_param_time(rq, rs, name, out))
        return false;
    const char *v = http_query(rq, name);
    if (v && v[0])
        *out = dt_time_bound(*out);
    return true;
}

bool http_param_top(const http_request *rq, http_response *rs, size_t *out)
{
    const char *top = http_query(rq, "top");
    if (top == NULL || top[0] == '\0')
        return true;
    char *end;
    long v = strtol(top, &end, 10);
    if (*end != '\0' || v < 1 || v > DT_QUERY_PAGE_MAX) {
        http_reply_error(rs, 400, "top must be a number from 1 to %d, not '%.50s'",
                         DT_QUERY_PAGE_MAX, top);
        return false;
    }
    *out = (size_t)v;
    return true;
}

bool http_body_json(const http_request *rq, http_response *rs, const char **out)
{
    *out = NULL;
    if (strlen(rq->body) != rq->body_len) {
        http_reply_error(rs, 400, "the request body contains a NUL byte");
        return false;
    }
    if (rq->body[strspn(rq->body, " \t\r\n")] != '\0')
        *out = rq->body;
    return true;
}

/* ---- continuation tokens ------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* token_encode: S in base64url without padding (malloc'd; NULL when out of memory). */
static char *token_encode(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n / 3 * 4 + 5);
    if (out == NULL)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)u[i + 1] << 8;
        if (i + 2 < n)
            v |= u[i + 2];
        out[j++] = b64[(v >> 18) & 63];
        out[j++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = b64[v & 63];
    }
    out[j] = '\0';
    return out;
}

/* token_decode: the text of token S into OUT (CAP bytes); false if S is not one of ours. */
static bool token_decode(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s), j = 0;
    if (n % 4 == 1)
        return false;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = s[i] ? strchr(b64, s[i]) : NULL;
        if (c == NULL)
            return false;
        acc = (acc << 6) | (uint32_t)(c - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (j + 1 >= cap)
                return false;
            out[j++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[j] = '\0';
    return j > 0 && strlen(out) == j;
}

bool http_param_continuation(const http_request *rq, http_response *rs,
                             char buf[HTTP_TOKEN_MAX], const char **out)
{
    *out = NULL;
    const char *tok = http_header(rq, "x-ms-continuation-token");
    if (tok == NULL || tok[0] == '\0')
        return true;
    if (!token_decode(tok, buf, HTTP_TOKEN_MAX)) {
        http_reply_error(rs, 400, "x-ms-continuation-token '%.100s' is not one this server "
                         "gave out", tok);
        return false;
    }
    *out = buf;
    return true;
}

/* ---- answers ------------------------------------------------------------------------------ */

void http_reply_json(http_response *rs, unsigned status, jbuf *jb)
{
    rs->body = jb_finish(jb, &rs->len);
    if (rs->body == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    rs->status = status;
    rs->content_type = HTTP_JSON_TYPE;
}

void http_reply_page(http_response *rs, jbuf *jb, const char *next)
{
    http_reply_json(rs, 200, jb);
    if (rs->status == 200 && next) {
        rs->continuation = token_encode(next);
        if (rs->continuation == NULL)
            http_reply_error(rs, 500, "out of memory");
    }
}
