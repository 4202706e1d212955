/* httpcall_internal.h — what the files of the httpcall layer share: the activity's settings
 * (activity.c), one HTTP exchange with libcurl (fetch.c), URL checks (url.c), and the run
 * with a cancel flag that the server's host threads use (host.c). */
#ifndef DT_HTTPCALL_INTERNAL_H
#define DT_HTTPCALL_INTERNAL_H

#include <stdatomic.h>

#include "durabletask/httpcall.h"

/* Longest URL taken (request, redirect target or Location). */
#define HTTPCALL_URL_MAX 8192
/* Most bytes of response headers kept. */
#define HTTPCALL_HEADERS_MAX (64 * 1024)

struct dt_http_activity {
    char **allow;                /* lowercase host names or "*.suffix"; read-only */
    size_t n_allow;
    size_t max_body;
    int64_t max_exchange_ms;
};

/* One exchange to make: strings borrowed from the caller. HEADERS are "Name: value" lines. */
typedef struct fetch_req {
    const char *method;
    const char *uri;
    const char *const *headers;
    size_t n_headers;
    const char *content;         /* NULL: no body */
    int64_t timeout_ms;          /* the whole exchange, redirects included */
} fetch_req;

/* Its response, in the caller's arena. */
typedef struct fetch_resp {
    long status;
    dt_http_header *headers;
    size_t n_headers;
    const char *body;            /* NUL-terminated, body_len bytes before it */
    size_t body_len;
} fetch_resp;

/* httpcall_fetch: make the exchange RQ for activity A (its allow list and limits), following
 * redirects. DT_OK with *OUT or *FAILURE set (ARENA memory); DT_ERR_SHUTDOWN when CANCEL
 * (may be NULL) turned true; DT_ERR_NOMEM. */
dt_status httpcall_fetch(const dt_http_activity *a, const fetch_req *rq, dt_arena *arena,
                         const atomic_bool *cancel, fetch_resp *out,
                         const dt_failure **failure);

/* httpcall_run: dt_http_activity_run with a cancel flag (see httpcall_fetch). */
dt_status httpcall_run(const dt_http_activity *a, const char *input, dt_arena *arena,
                       const atomic_bool *cancel, const char **result,
                       const dt_failure **failure);

/* httpcall_check_url: may A reach URL? DT_OK, or DT_ERR_INVALID_ARG with MSG (CAP bytes) and
 * *TYPE (one of DT_HTTP_ERR_*) saying why: not a URL, a scheme other than http and https, a
 * host the allow list does not name. *HOST_OUT (HOST_CAP bytes) gets the host, lowercase. */
dt_status httpcall_check_url(const dt_http_activity *a, const char *url, const char **type,
                             char *msg, size_t cap, char *host_out, size_t host_cap);

/* httpcall_resolve: REF (a Location header) resolved against BASE into OUT (CAP bytes);
 * false if either is not a URL or the result does not fit. */
bool httpcall_resolve(const char *base, const char *ref, char *out, size_t cap);

/* httpcall_global_init: curl_global_init, once per process. */
void httpcall_global_init(void);

#endif
