/* durabletask/http.h — the HTTP/JSON API (shaped like the Durable Functions instance
 * management API, under /runtime/webhooks/durabletask/), the web dashboard at /, the OpenAPI
 * document at /openapi.json and Prometheus metrics at /metrics, over a hub. Built on
 * libmicrohttpd and jansson. Every operation goes through the hub's client operations. */
#ifndef DURABLETASK_HTTP_H
#define DURABLETASK_HTTP_H

#include "durabletask/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_http_server dt_http_server;

/* Where `dtask serve` listens for HTTP unless told otherwise: loopback only. */
#define DT_DEFAULT_HTTP_ADDRESS "127.0.0.1:4000"

/* Connections served at once unless told otherwise (each on a thread of its own; kept under
 * half the process's open-file limit), and from any one IP address: a few clients cannot
 * take them all. A connection beyond either is closed at once. */
#define DT_HTTP_MAX_CONNECTIONS 1024u
#define DT_HTTP_MAX_PER_CLIENT 64u

/* The bytes of request and response bodies the server holds at once unless told otherwise (a
 * client that does not read keeps its response until its connection ends). A request body,
 * or the response of a GET over 64 KB, beyond it is answered 503 (other responses are
 * counted, never refused); one larger than all of it goes when at most half is
 * held. */
#define DT_HTTP_MAX_HELD ((size_t)256 << 20)

typedef struct dt_http_options {
    const char *listen;          /* "ADDR:PORT"; NULL: DT_DEFAULT_HTTP_ADDRESS */
    const char *token;           /* non-NULL: every request needs "Authorization: Bearer <token>",
                                  * except /healthz and GETs of the dashboard's built-in
                                  * files (they hold no data). Without one, a request that
                                  * changes state must come from no browser or from the
                                  * dashboard's own origin (its Origin header, when it has
                                  * one, names this server): a page elsewhere is refused
                                  * (403), so it cannot forge requests in the user's name */
    size_t max_body;             /* largest request body, bytes; 0: 1 MiB */
    dt_hub_set *hubs;            /* serve these task hubs (the hub argument NULL): the API and
                                  * /metrics act on the hub of the taskHub query parameter
                                  * (none: DT_TASK_HUB_DEFAULT), /taskhubs lists them */
    /* Host names (case-insensitive) a request's Host header may name besides IP addresses
     * and "localhost": the names the server is reached by (behind a proxy, say). Any other
     * name is refused (421), so a web page whose own name resolves to this server (DNS
     * rebinding) cannot use it. */
    const char *const *public_hosts;
    size_t n_public_hosts;
    const char *tls_cert_pem;    /* both set: serve HTTPS with this certificate chain and key */
    const char *tls_key_pem;     /* (PEM text); neither: plain HTTP */
    unsigned max_connections;    /* connections at once; 0: DT_HTTP_MAX_CONNECTIONS */
    unsigned max_per_client;     /* of them, from one IP address; 0: DT_HTTP_MAX_PER_CLIENT */
    int64_t request_timeout_ms;  /* a request's headers and body must arrive within this of
                                  * the connection being opened or its last answer; a slower
                                  * or idle client is disconnected. 0: DT_REQUEST_TIMEOUT_MS */
    size_t max_held;             /* bytes of bodies held at once; 0: DT_HTTP_MAX_HELD */
} dt_http_options;

/* dt_http_server_start: serve HUB (or OPTS->hubs; either must outlive the server). Returns
 * once the port is bound; DT_ERR_IO naming the address if it cannot be. Stop with
 * dt_http_server_stop. */
dt_status dt_http_server_start(dt_hub *hub, const dt_http_options *opts, dt_http_server **out,
                               dt_error *err);

/* dt_http_server_port: the port actually bound (useful with port 0). */
int dt_http_server_port(const dt_http_server *s);

/* dt_http_server_stop: stop serving and free the server. S may be NULL. */
void dt_http_server_stop(dt_http_server *s);

/* dt_http_handle: answer one request in this process, without a socket: METHOD ("GET",
 * "POST", ...), TARGET (the path and query as a client sends them, percent-encoded),
 * N_HEADERS HEADERS ("Name: value" each) and BODY (BODY_LEN bytes; NULL when there is none),
 * routed and served on HUB as a server of HUB serves them, less what belongs to the
 * connection (the bearer token, the body limit). *STATUS is the HTTP status, *OUT the
 * response body (malloc'd and NUL-terminated; the caller frees it with free()) and *OUT_LEN
 * its length. DT_ERR_INVALID_ARG for missing arguments, DT_ERR_NOMEM. For tests, fuzzing
 * and putting the API behind another HTTP server. */
dt_status dt_http_handle(dt_hub *hub, const char *method, const char *target,
                         const char *const *headers, size_t n_headers, const char *body,
                         size_t body_len, unsigned *status, char **out, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif
