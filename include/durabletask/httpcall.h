/* durabletask/httpcall.h — durable HTTP calls. An orchestration calls an HTTP endpoint with
 * dt_call_http; the exchange itself runs as the built-in activity BuiltIn::HttpActivity (one
 * exchange per run, with libcurl), so it is at-least-once and its response is in history, and
 * any SDK can schedule it by name with a Durable Functions-shaped request. `dtask serve` runs
 * the activity itself (dt_http_activity_host), only for the hosts --http-activity-allow names;
 * an in-process worker registers it with dt_worker_add_http_activity.
 *
 * Request (activity input; an array of one request is taken too, as the Java SDK sends it):
 *   {"method":"GET","uri":"https://...","headers":{"Name":"value" or ["v1","v2"]},
 *    "content":"body text" or null,"timeout":"00:01:40" (a .NET TimeSpan) or seconds,
 *    "asynchronousPatternEnabled":true}
 * Response (activity output):
 *   {"statusCode":200,"headers":{"Name":"value"},"content":"body text" or null}
 * A status of 4xx or 5xx is a response, not a failure; a failure is the exchange not
 * happening: a refused host or scheme, a bad request, a transport error, a timeout, a
 * response over the size limit, too many redirects. Its errorType says which (below). */
#ifndef DURABLETASK_HTTPCALL_H
#define DURABLETASK_HTTPCALL_H

#include "durabletask/core.h"
#include "durabletask/hub.h"
#include "durabletask/sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The activity's name, as the Durable Task SDKs schedule it. */
#define DT_HTTP_ACTIVITY_NAME "BuiltIn::HttpActivity"

/* Limits and defaults, one definition each. */
#define DT_HTTP_RESPONSE_MAX (1024 * 1024)          /* response body bytes */
#define DT_HTTP_TIMEOUT_DEFAULT_MS (100 * 1000)     /* a call, polling included (.NET's) */
#define DT_HTTP_TIMEOUT_MAX_MS (7LL * 24 * 3600 * 1000)   /* a call, polling included */
#define DT_HTTP_EXCHANGE_MAX_MS (5 * 60 * 1000)     /* one exchange, whatever the request says */
#define DT_HTTP_REDIRECTS_MAX 5
#define DT_HTTP_POLL_DEFAULT_MS 1000                /* a 202 without Retry-After */
#define DT_HTTP_POLL_MAX_MS (10 * 60 * 1000)        /* a larger Retry-After is lowered to it */

/* The errorType of each failure of the activity (and of dt_call_http). */
#define DT_HTTP_ERR_DISABLED "HttpActivityDisabled"   /* outbound HTTP is off here */
#define DT_HTTP_ERR_REFUSED "HttpActivityRefused"     /* host or scheme not allowed */
#define DT_HTTP_ERR_INVALID "HttpActivityInvalidRequest"   /* the request JSON breaks a rule */
#define DT_HTTP_ERR_TIMEOUT "HttpActivityTimeout"     /* no full answer in time */
#define DT_HTTP_ERR_TOO_LARGE "HttpActivityResponseTooLarge"
#define DT_HTTP_ERR_REDIRECTS "HttpActivityTooManyRedirects"
#define DT_HTTP_ERR_TRANSPORT "HttpActivityTransportError"   /* DNS, connect, TLS, reset */

/* ---- the activity (libcurl) ------------------------------------------------------------ */

typedef struct dt_http_activity dt_http_activity;

typedef struct dt_http_activity_options {
    /* The hosts the activity may reach, comma-separated: a name ("api.example.com"), an IP
     * address ("127.0.0.1", "::1"), or "*.example.com" for every name under example.com.
     * Matched case-insensitively against the URL's host (any port), before connecting and
     * again for every redirect target. NULL or "": none, every call fails with
     * HttpActivityDisabled. */
    const char *allow;
    size_t max_response_bytes;   /* 0: DT_HTTP_RESPONSE_MAX */
    int64_t max_exchange_ms;     /* 0: DT_HTTP_EXCHANGE_MAX_MS */
} dt_http_activity_options;

/* dt_http_activity_new: the activity with OPTS (copied; NULL: outbound HTTP off).
 * DT_ERR_INVALID_ARG with ERR naming the entry if the allow list has a bad one. Free with
 * dt_http_activity_free once nothing runs it. */
dt_status dt_http_activity_new(const dt_http_activity_options *opts, dt_http_activity **out,
                               dt_error *err);
void dt_http_activity_free(dt_http_activity *a);

/* dt_http_activity_run: one run of the activity for INPUT (the request JSON): DT_OK with
 * *RESULT (the response JSON) or *FAILURE, both in ARENA. Another status only when out of
 * memory. Safe from many threads at once. */
dt_status dt_http_activity_run(const dt_http_activity *a, const char *input, dt_arena *arena,
                               const char **result, const dt_failure **failure);

/* dt_worker_add_http_activity: register A on W as BuiltIn::HttpActivity. A must outlive W. */
dt_status dt_worker_add_http_activity(dt_worker *w, const dt_http_activity *a);

/* ---- the activity run by a server (dtask serve) ---------------------------------------- */

typedef struct dt_http_activity_host dt_http_activity_host;

/* dt_http_activity_host_start: THREADS (0: 2) threads for each hub of HUB_NAMES (N names;
 * N == 0: the default hub) of HUBS that take only BuiltIn::HttpActivity work items from it
 * (the hub's pull API with a work filter) and run them with A (which may refuse them all).
 * A and HUBS must outlive the host. Stop with dt_http_activity_host_stop. */
dt_status dt_http_activity_host_start(dt_hub_set *hubs, const char *const *hub_names, size_t n,
                                      const dt_http_activity *a, int threads,
                                      dt_http_activity_host **out, dt_error *err);

/* dt_http_activity_host_stop: stop the threads (exchanges in flight are cut short and their
 * work items given back for redelivery) and free H. H may be NULL. Results already handed
 * to a hub are its own: one that waits there for room (dt_hub_waits_fn) waits on after
 * the stop, until it goes in or waiting ends (dt_hub_stop_waiting, dt_hub_close). */
void dt_http_activity_host_stop(dt_http_activity_host *h);

/* ---- the orchestration side ------------------------------------------------------------ */

typedef struct dt_http_header {
    const char *name;
    const char *value;
} dt_http_header;

typedef struct dt_http_request {
    const char *method;              /* NULL: "GET" */
    const char *uri;                 /* http:// or https:// */
    const dt_http_header *headers;
    size_t n_headers;
    const char *content;             /* the body, or NULL */
    int64_t timeout_ms;              /* the whole call, 202 polling included;
                                      * 0: DT_HTTP_TIMEOUT_DEFAULT_MS */
    bool no_async_pattern;           /* true: a 202 is the answer, not polled */
    const dt_retry_policy *retry;    /* retries of a failed exchange; NULL: none */
} dt_http_request;

typedef struct dt_http_response {
    int status_code;
    const dt_http_header *headers;   /* as the server sent them (repeats joined by ", ") */
    size_t n_headers;
    const char *content;             /* the body as text, or NULL */
    const char *json;                /* the activity's output, the DurableHttpResponse */
} dt_http_response;

/* dt_call_http: make the HTTP call REQ and wait for its final response (OUT, arena memory).
 * Like dt_await, the episode ends here until history has the answer. With the asynchronous
 * pattern on, a 202 Accepted with a Location header is followed: after Retry-After seconds
 * (1 if none), on a durable timer, a GET of Location, until a status other than 202 or the
 * timeout (then the call fails with HttpActivityTimeout). A failed call fails the
 * orchestration when FAILURE is NULL (as dt_await does); else returns DT_ERR_TASK_FAILED with
 * *FAILURE set (as dt_try_await does). */
dt_status dt_call_http(dt_octx *ctx, const dt_http_request *req, dt_http_response *out,
                       const dt_failure **failure);

/* dt_http_response_header: the value of header NAME (case-insensitive) in R, or NULL. */
const char *dt_http_response_header(const dt_http_response *r, const char *name);

#ifdef __cplusplus
}
#endif
#endif
