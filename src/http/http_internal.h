/* http_internal.h — what the HTTP layer's files share: the server, one request as a handler
 * sees it (decoded path segments, body, query and header lookups), the response a handler
 * fills in, and the JSON writer (json.c) that builds response bodies with payloads spliced
 * in unchanged. server.c owns the connection handling; instances.c and entities.c the API's
 * handlers, params.c what they read and write alike; openapi.c the OpenAPI document. */
#ifndef DT_HTTP_INTERNAL_H
#define DT_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "durabletask/http.h"

struct MHD_Connection;

#define HTTP_API_PREFIX "/runtime/webhooks/durabletask"
#define HTTP_JSON_TYPE "application/json; charset=utf-8"
#define HTTP_MAX_SEGMENTS 8

/* One request, as the handlers see it. Everything is owned by server.c and lives until the
 * response is queued. */
typedef struct http_request {
    dt_http_server *server;
    dt_hub *hub;
    struct MHD_Connection *conn;
    const char *method;              /* "GET", "POST", ...; HEAD is passed on as "GET" */
    char *seg[HTTP_MAX_SEGMENTS];    /* the path's segments, percent-decoded */
    size_t n_seg;
    const char *body;                /* NUL-terminated; "" when there was none */
    size_t body_len;
    int port;                        /* the server's port, for URIs when Host is missing */
    /* without a connection (dt_http_handle, CONN NULL): the decoded query parameters and the
     * headers, as name and value pairs */
    const char *const *query;
    size_t n_query;
    const char *const *headers;
    size_t n_headers;
    size_t held;                     /* bytes http_hold counted for the response being built */
} http_request;

/* What a handler answers. BODY is malloc'd (or NULL for none) and handed to MHD, which frees
 * it; STATIC_BODY is memory that outlives the server (embedded files), used when set. */
typedef struct http_response {
    unsigned status;
    const char *content_type;
    char *body;
    size_t len;
    const void *static_body;
    char *location;                  /* malloc'd or NULL: the Location header */
    char *continuation;              /* malloc'd or NULL: x-ms-continuation-token */
    const char *allow;               /* the Allow header of a 405 */
} http_response;

/* http_query: the decoded query parameter NAME of RQ, or NULL. */
const char *http_query(const http_request *rq, const char *name);

/* http_header: the request header NAME of RQ (case-insensitive), or NULL. */
const char *http_header(const http_request *rq, const char *name);

/* http_hold: count N more bytes of memory the response being built holds against the
 * server's bound on what its requests hold (--max-held-mb), so a response too large for now
 * is refused while it is built rather than after; false, nothing counted and RS answered
 * 503 naming the limit, when they do not fit. server.c settles what was counted once the
 * response is done. Nothing is counted without a bound (dt_http_handle). */
bool http_hold(http_request *rq, http_response *rs, size_t n);

/* http_reply_error: a JSON error body {"error":{"code","message"}} with STATUS; the code is
 * the status's name ("NotFound", ...). Replaces whatever RS held. */
void http_reply_error(http_response *rs, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* http_reply_dt_error: the HTTP status for a hub error, with STATE_STATUS for DT_ERR_STATE
 * (409 Conflict or 410 Gone, per operation), and the error body naming what was wrong. */
void http_reply_dt_error(http_response *rs, const dt_error *err, unsigned state_status);

/* http_instances_handle: the API under HTTP_API_PREFIX (RQ's segments after its three
 * prefix segments start at index 3). */
void http_instances_handle(http_request *rq, http_response *rs);

/* http_entities_handle: the entity API, HTTP_API_PREFIX/entities[/NAME[/KEY]] (entities.c). */
void http_entities_handle(http_request *rq, http_response *rs);

/* http_openapi_json: the OpenAPI 3.0 document describing the API (openapi.c); static text. */
const char *http_openapi_json(void);

/* ---- the JSON writer (json.c) ----------------------------------------------------------- */

/* A growing buffer of JSON text with a stack of open containers, so commas go where they
 * belong. Allocation failure is sticky: every later call does nothing and jb_finish returns
 * NULL. */
#define JB_MAX_DEPTH 16
typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
    int depth;
    bool is_array[JB_MAX_DEPTH];
    size_t count[JB_MAX_DEPTH];
    bool after_key;
} jbuf;

void jb_init(jbuf *jb);
void jb_object_begin(jbuf *jb);
void jb_object_end(jbuf *jb);
void jb_array_begin(jbuf *jb);
void jb_array_end(jbuf *jb);
void jb_key(jbuf *jb, const char *key);
void jb_string(jbuf *jb, const char *s);          /* NULL: null; invalid UTF-8 becomes U+FFFD */
void jb_int(jbuf *jb, long long v);
void jb_bool(jbuf *jb, bool v);
void jb_null(jbuf *jb);
void jb_time(jbuf *jb, dt_time t);                /* ISO 8601 string; 0: null */
/* jb_payload: a stored JSON payload, spliced in as it is (so numbers keep their exact text);
 * NULL: null. Text that is not one JSON value is written as a string instead. */
void jb_payload(jbuf *jb, const char *json);
/* jb_finish: the text (malloc'd, the caller frees) and its length; NULL if memory ran out.
 * Frees the buffer either way. */
char *jb_finish(jbuf *jb, size_t *len);

/* jb_failure: failure details {"errorType","errorMessage","stackTrace","innerFailure"}, or
 * null. */
void jb_failure(jbuf *jb, const dt_failure *f);

/* jb_state: an instance's status object; SHOW_INPUT adds its input. jb_state_open leaves the
 * object open, for "historyEvents" (jb_history) to follow before the caller ends it. */
void jb_state(jbuf *jb, const dt_instance_state *s, bool show_input);
void jb_state_open(jbuf *jb, const dt_instance_state *s, bool show_input);

/* The names scheduling events gave their event ids, kept from window to window of a history
 * (completions show the name of what they complete); freed with jb_names_free. */
typedef struct jb_names {
    const char **v;      /* by event_id; NULL where none */
    size_t cap;
    size_t seen;         /* events written so far */
    size_t bytes;        /* of the names kept */
    dt_arena *arena;
} jb_names;
void jb_names_free(jb_names *nm);

/* jb_names_bytes: the memory NM holds. */
size_t jb_names_bytes(const jb_names *nm);

/* jb_history: the N events of EV, the next of a history's, as elements of the open array;
 * their inputs and results only with SHOW_OUTPUT. NM carries names from earlier windows. */
void jb_history(jbuf *jb, const dt_event *ev, size_t n, bool show_output, jb_names *nm);

/* ---- parameters and answers every handler shares (params.c) ---------------------------- */

/* The parameter readers return false after putting a 400 naming the parameter into RS. */

/* http_param_bool: query parameter NAME as "true"/"false"/"1"/"0"; DEF when absent. */
bool http_param_bool(const http_request *rq, http_response *rs, const char *name, bool def,
                     bool *out);

/* http_param_time: query parameter NAME as an ISO 8601 time; 0 when absent. */
bool http_param_time(const http_request *rq, http_response *rs, const char *name, dt_time *out);
/* http_param_bound: http_param_time of a query's bound; given, it is never 0 (dt_time_bound). */
bool http_param_bound(const http_request *rq, http_response *rs, const char *name,
                      dt_time *out);

/* http_param_top: the page size "top", 1 to DT_QUERY_PAGE_MAX; *OUT untouched when absent. */
bool http_param_top(const http_request *rq, http_response *rs, size_t *out);

/* http_body_json: the request body as a JSON payload: NULL when empty (or only whitespace).
 * 400 for a body with a NUL byte; the hub checks that the rest is JSON. */
bool http_body_json(const http_request *rq, http_response *rs, const char **out);

/* http_param_continuation: the x-ms-continuation-token header, decoded into BUF (*OUT points
 * at it), or *OUT NULL when absent; 400 for a token this server did not give out. */
#define HTTP_TOKEN_MAX (4 * DT_INSTANCE_ID_MAX + 8)
bool http_param_continuation(const http_request *rq, http_response *rs,
                             char buf[HTTP_TOKEN_MAX], const char **out);

/* http_reply_json: STATUS with the JSON of JB as the body (500 when it ran out of memory). */
void http_reply_json(http_response *rs, unsigned status, jbuf *jb);

/* http_reply_page: 200 with JB, and NEXT (the store's token, NULL after the last page)
 * encoded in x-ms-continuation-token. */
void http_reply_page(http_response *rs, jbuf *jb, const char *next);

#endif
