/* server.c — the HTTP server on libmicrohttpd: binding the address, one thread per
 * connection (handlers call the hub, which may wait on disk), bearer-token checks, request
 * bodies collected up to a limit, and routing: /healthz, /openapi.json, /metrics, the API
 * under /runtime/webhooks/durabletask/ (instances.c, entities.c) and the dashboard's embedded
 * files. Bounded: connections at once and per client IP (MHD's limits), and a watchdog thread
 * that disconnects a client whose request does not arrive whole in time (slowloris, idle). */
#include <assert.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "core/budget.h"
#include "core/listen.h"
#include "http_internal.h"

#define DEFAULT_MAX_BODY ((size_t)1 << 20)
#define RESPONSE_FLOOR ((size_t)64 << 10)   /* a response this small is never refused */
/* A body over the limit is read and dropped (answering before reading it would make the
 * client's TCP stack see a reset and lose the 413); past this much, the connection is cut. */
#define DISCARD_MAX ((size_t)64 << 20)
/* A connection silent this long while its answer is being sent is closed by MHD (reading a
 * request is bounded by the request timeout, which the watchdog enforces). */
#define CONNECTION_TIMEOUT_S 60u

/* One open connection, as the watchdog sees it. DEADLINE is when its request must have
 * arrived whole (monotonic ms), 0 while a handler runs or once it was cut. */
typedef struct conn_watch {
    int fd;
    int64_t deadline;
    struct conn_watch *prev, *next;
} conn_watch;

struct dt_http_server {
    struct MHD_Daemon *daemon;
    dt_hub *hub;                /* one hub, or: */
    dt_hub_set *hubs;           /* task hubs, by the taskHub parameter */
    char *token;          /* NULL: no authentication */
    size_t max_body;
    int port;
    char **public_hosts;  /* lowercase; see dt_http_options */
    size_t n_public_hosts;
    int64_t request_timeout_ms;
    /* the bytes of the bodies of requests being served and of responses not yet sent: what a
     * client can make the server hold, bounded (max_held, --max-held-mb) */
    core_budget held;
    /* the watchdog: watch_mu guards the list and watch_stop. An entry leaves the list (MHD's
     * close notification) before MHD closes its descriptor, so a shutdown() under the lock
     * never reaches a reused descriptor. */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
    bool watch_made, watchdog_started, watch_stop;
    pthread_t watchdog;
    conn_watch *watched;
};

/* One request from its first line to its end. Created by on_uri (MHD's URI log callback,
 * which sees the path before MHD decodes it, so an encoded '/' stays inside its segment),
 * freed by on_done. */
typedef struct conn_req {
    char *uri;            /* as sent: path and query */
    bool started;
    unsigned reject;      /* non-zero: answer with this status once the body is drained */
    char why[256];        /* the refusal's message, when the status alone does not say */
    char *body;
    size_t len, cap;
    size_t discarded;
    size_t held;          /* bytes counted in the server's `held`, given back by on_done */
} conn_req;

/* ---- helpers the handlers share --------------------------------------------------------- */

/* pair_find: the value of the first of N name-value PAIRS named NAME, or NULL. */
static const char *pair_find(const char *const *pairs, size_t n, const char *name, bool nocase)
{
    for (size_t i = 0; i < n; i++)
        if ((nocase ? strcasecmp : strcmp)(pairs[2 * i], name) == 0)
            return pairs[2 * i + 1];
    return NULL;
}

const char *http_query(const http_request *rq, const char *name)
{
    if (rq->conn == NULL)
        return pair_find(rq->query, rq->n_query, name, false);
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_request *rq, const char *name)
{
    if (rq->conn == NULL)
        return pair_find(rq->headers, rq->n_headers, name, true);
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static const char *status_code_name(unsigned status)
{
    switch (status) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "PayloadTooLarge";
    case 421: return "MisdirectedRequest";
    case 507: return "InsufficientStorage";
    case 501: return "NotImplemented";
    case 503: return "ServiceUnavailable";
    default: return "Internal";
    }
}

static void response_clear(http_response *rs)
{
    free(rs->body);
    free(rs->location);
    free(rs->continuation);
    memset(rs, 0, sizeof *rs);
}

void http_reply_error(http_response *rs, unsigned status, const char *fmt, ...)
{
    response_clear(rs);
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jbuf jb;
    jb_init(&jb);
    jb_object_begin(&jb);
    jb_key(&jb, "error");
    jb_object_begin(&jb);
    jb_key(&jb, "code");
    jb_string(&jb, status_code_name(status));
    jb_key(&jb, "message");
    jb_string(&jb, msg);
    jb_object_end(&jb);
    jb_object_end(&jb);
    rs->status = status;
    rs->content_type = "application/json; charset=utf-8";
    rs->body = jb_finish(&jb, &rs->len);   /* NULL when out of memory: an empty body */
}

void http_reply_dt_error(http_response *rs, const dt_error *err, unsigned state_status)
{
    unsigned status;
    switch (err->code) {
    case DT_ERR_INVALID_ARG: status = 400; break;
    case DT_ERR_NOT_FOUND: status = 404; break;
    case DT_ERR_ALREADY_EXISTS: status = 409; break;
    case DT_ERR_STATE: status = state_status; break;
    case DT_ERR_UNIMPLEMENTED: status = 501; break;
    case DT_ERR_SHUTDOWN:
    case DT_ERR_NOMEM:   /* memory, or a bound on it, for now: try again */
    case DT_ERR_TIMEOUT: status = 503; break;
    case DT_ERR_NO_SPACE: status = 507; break;
    default: status = 500; break;
    }
    http_reply_error(rs, status, "%s", err->message[0] ? err->message : dt_strerror(err->code));
}

/* ---- authentication ------------------------------------------------------------------------ */

/* token_equal: GIVEN == WANT in time that depends on WANT's length only, so response times
 * do not tell how much of a guess was right. */
static bool token_equal(const char *given, size_t given_len, const char *want)
{
    size_t n = strlen(want);
    unsigned char diff = given_len != n;
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= g ^ (unsigned char)want[i];
    }
    return diff == 0;
}

static bool authorized(const dt_http_server *srv, struct MHD_Connection *conn)
{
    if (srv->token == NULL)
        return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    return token_equal(h, n, srv->token);
}

/* ---- paths -------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* split_path: the segments of PATH (up to '?'), percent-decoded, each malloc'd into SEG;
 * empty segments are skipped. 400 for a bad escape or an encoded NUL, 404 for too many
 * segments, 500 when out of memory; 0 on success. */
static unsigned split_path(const char *path, char **seg, size_t *n_seg)
{
    *n_seg = 0;
    const char *p = path;
    while (*p && *p != '?' && *p != '#') {
        if (*p == '/') {
            p++;
            continue;
        }
        size_t n = strcspn(p, "/?#");
        if (*n_seg == HTTP_MAX_SEGMENTS)
            return 404;
        char *s = malloc(n + 1);
        if (s == NULL)
            return 500;
        seg[(*n_seg)++] = s;
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] != '%') {
                s[j++] = p[i];
                continue;
            }
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return 400;
            s[j++] = (char)(hi * 16 + lo);
            i += 2;
        }
        s[j] = '\0';
        p += n;
    }
    return 0;
}

/* ---- routes of our own ---------------------------------------------------------------------- */

static void reply_static(http_response *rs, unsigned status, const char *type, const void *data,
                         size_t len)
{
    response_clear(rs);
    rs->status = status;
    rs->content_type = type;
    rs->static_body = data;
    rs->len = len;
}

static void method_not_allowed(http_response *rs, const char *method, const char *path,
                               const char *allow)
{
    http_reply_error(rs, 405, "%s is not allowed on %s (allowed: %s)", method, path, allow);
    rs->allow = allow;
}

static void reply_metrics(http_request *rq, http_response *rs)
{
    char *text = NULL;
    dt_status st = dt_hub_metrics_text(rq->hub, &text);
    if (st != DT_OK || text == NULL) {
        free(text);
        http_reply_error(rs, 500, "cannot render the metrics: %s", dt_strerror(st));
        return;
    }
    response_clear(rs);
    rs->status = 200;
    rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
    rs->body = text;    /* malloc'd by the hub; MHD frees it with free() */
    rs->len = strlen(text);
}

/* GET /healthz: "ok", or 503 naming why the store takes no writes (the disk is full, ...), so
 * a load balancer or an orchestrator of containers sees the trouble. */
static void reply_health(http_request *rq, http_response *rs)
{
    dt_error err = {0};
    if (dt_hub_health(rq->hub, &err) == DT_OK)
        reply_static(rs, 200, "text/plain; charset=utf-8", "ok", 2);
    else
        http_reply_error(rs, 503, "unhealthy: the store takes no writes: %s", err.message);
}

/* GET /taskhubs: the task hubs there are, as a JSON array of names (["default"] with one). */
static void reply_task_hubs(http_request *rq, http_response *rs)
{
    dt_arena *a = dt_arena_new();
    const char **names = NULL, *one = DT_TASK_HUB_DEFAULT;
    size_t n = 1;
    dt_error err = {0};
    dt_status st = a ? DT_OK : DT_ERR_NOMEM;
    if (st == DT_OK && rq->server->hubs)
        st = dt_hub_set_names(rq->server->hubs, a, &names, &n, &err);
    else
        names = &one;
    jbuf jb;
    jb_init(&jb);
    jb_array_begin(&jb);
    for (size_t i = 0; st == DT_OK && i < n; i++)
        jb_string(&jb, names[i]);
    jb_array_end(&jb);
    dt_arena_free(a);
    rs->body = jb_finish(&jb, &rs->len);
    if (st != DT_OK || rs->body == NULL) {
        http_reply_error(rs, 500, "cannot list the task hubs: %s",
                         st != DT_OK ? dt_strerror(st) : "out of memory");
        return;
    }
    rs->status = 200;
    rs->content_type = "application/json; charset=utf-8";
}

/* GET /nodes: this node and the nodes alive on its hub's database (dt_hub_nodes). */
static void reply_nodes(http_request *rq, http_response *rs)
{
    dt_arena *a = dt_arena_new();
    dt_node_info *nodes = NULL;
    size_t n = 0;
    dt_error err = {0};
    dt_status st = a ? dt_hub_nodes(rq->hub, a, &nodes, &n, &err)
                     : dt_error_set(&err, DT_ERR_NOMEM, "out of memory");
    jbuf jb;
    jb_init(&jb);
    jb_object_begin(&jb);
    jb_key(&jb, "node");
    jb_string(&jb, dt_hub_node(rq->hub));
    jb_key(&jb, "nodes");
    jb_array_begin(&jb);
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        jb_object_begin(&jb);
        jb_key(&jb, "node");
        jb_string(&jb, nodes[i].node);
        jb_key(&jb, "startedAt");
        jb_time(&jb, nodes[i].started_at);
        jb_key(&jb, "lastSeen");
        jb_time(&jb, nodes[i].seen_at);
        jb_object_end(&jb);
    }
    jb_array_end(&jb);
    jb_object_end(&jb);
    dt_arena_free(a);
    rs->body = jb_finish(&jb, &rs->len);
    if (st != DT_OK || rs->body == NULL) {
        http_reply_error(rs, 500, "cannot list the nodes: %s",
                         st != DT_OK ? err.message : "out of memory");
        return;
    }
    rs->status = 200;
    rs->content_type = "application/json; charset=utf-8";
}

/* with_task_hub: run HANDLE on the hub of the taskHub parameter, held while it runs; 404
 * naming a hub the server does not have, 400 for a name that cannot be one. A GET (which
 * any web page may send, with no Origin check) reads only a hub that is there: it makes
 * none, so a page cannot fill the server's hubs with its own. */
static void with_task_hub(http_request *rq, http_response *rs,
                          void (*handle)(http_request *, http_response *))
{
    if (rq->server->hubs == NULL) {
        handle(rq, rs);
        return;
    }
    const char *name = http_query(rq, "taskHub");
    dt_hub_ref *ref = NULL;
    dt_error err = {0};
    dt_status st = strcmp(rq->method, "GET") == 0
                       ? dt_hub_set_find(rq->server->hubs, name, &ref, &err)
                       : dt_hub_set_get(rq->server->hubs, name, &ref, &err);
    if (st == DT_ERR_STATE) {
        http_reply_error(rs, 503, "%s", err.message);
        return;
    }
    if (st != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    rq->hub = dt_hub_ref_hub(ref);
    handle(rq, rs);
    dt_hub_ref_put(ref);
}

static void reply_openapi(http_request *rq, http_response *rs)
{
    (void)rq;
    reply_static(rs, 200, "application/json; charset=utf-8", http_openapi_json(),
                 strlen(http_openapi_json()));
}

/* The resources of one segment, GET only; HUB: read on the task hub the query names. */
static const struct {
    const char *name;
    void (*reply)(http_request *, http_response *);
    bool hub;
} resources[] = {
    {"healthz", reply_health, true},
    {"openapi.json", reply_openapi, false},
    {"taskhubs", reply_task_hubs, false},
    {"nodes", reply_nodes, true},
    {"metrics", reply_metrics, true},
};

static void route(http_request *rq, const char *path, http_response *rs)
{
    bool get = strcmp(rq->method, "GET") == 0;
    size_t n = rq->n_seg;
    char **s = rq->seg;
    for (size_t i = 0; n == 1 && i < sizeof resources / sizeof resources[0]; i++) {
        if (strcmp(s[0], resources[i].name) != 0)
            continue;
        char where[32];
        snprintf(where, sizeof where, "/%s", resources[i].name);
        if (!get)
            method_not_allowed(rs, rq->method, where, "GET");
        else if (resources[i].hub)
            with_task_hub(rq, rs, resources[i].reply);
        else
            resources[i].reply(rq, rs);
        return;
    }
    if (n >= 3 && strcmp(s[0], "runtime") == 0 && strcmp(s[1], "webhooks") == 0 &&
        strcmp(s[2], "durabletask") == 0) {
        bool entities = n >= 4 && strcmp(s[3], "entities") == 0;
        with_task_hub(rq, rs, entities ? http_entities_handle : http_instances_handle);
        return;
    }
    /* the dashboard's files: looked up by the path as sent, without its query */
    char file[256];
    size_t len = strcspn(path, "?#");
    const http_asset *a = NULL;
    if (len < sizeof file) {
        memcpy(file, path, len);
        file[len] = '\0';
        a = http_asset_find(file);
    }
    if (a && get)
        reply_static(rs, 200, a->mime, a->data, a->len);
    else if (a)
        method_not_allowed(rs, rq->method, file, "GET");
    else
        http_reply_error(rs, 404, "nothing at %.*s", (int)(len > 200 ? 200 : len), path);
}

/* route_path: RQ's path split into its segments, then routed; a path that cannot be split
 * is answered here. */
static void route_path(http_request *rq, const char *path, http_response *rs)
{
    unsigned bad = split_path(path, rq->seg, &rq->n_seg);
    if (bad == 400)
        http_reply_error(rs, 400, "the path has a bad percent-escape or an encoded NUL");
    else if (bad == 404)
        http_reply_error(rs, 404, "nothing at this path (too many segments)");
    else if (bad)
        http_reply_error(rs, 500, "out of memory");
    else
        route(rq, path, rs);
    for (size_t i = 0; i < rq->n_seg; i++)
        free(rq->seg[i]);
}

/* ---- the watchdog: request deadlines ------------------------------------------------------ */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* watch_set: start CONN's request clock (WAITING: its next request is due within the request
 * timeout) or stop it (a handler runs). */
static void watch_set(dt_http_server *srv, struct MHD_Connection *conn, bool waiting)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_watch *w = ci ? ci->socket_context : NULL;
    if (w == NULL)
        return;
    pthread_mutex_lock(&srv->watch_mu);
    w->deadline = waiting ? mono_ms() + srv->request_timeout_ms : 0;
    pthread_mutex_unlock(&srv->watch_mu);
}

/* on_connection: a connection opened (watched, its first request due) or closed (forgotten). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    dt_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_watch *w = ci ? calloc(1, sizeof *w) : NULL;
        *socket_context = w;
        if (w == NULL)
            return;       /* unwatched: MHD's idle timeout still ends it */
        w->fd = ci->connect_fd;
        pthread_mutex_lock(&srv->watch_mu);
        w->deadline = mono_ms() + srv->request_timeout_ms;
        w->next = srv->watched;
        if (srv->watched)
            srv->watched->prev = w;
        srv->watched = w;
        pthread_mutex_unlock(&srv->watch_mu);
        return;
    }
    conn_watch *w = *socket_context;
    if (w == NULL)
        return;
    pthread_mutex_lock(&srv->watch_mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        srv->watched = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&srv->watch_mu);
    free(w);
    *socket_context = NULL;
}

/* watchdog_main: a few times per request timeout, disconnect every connection past its
 * deadline. shutdown() makes its thread see the end of the stream and close it. */
static void *watchdog_main(void *arg)
{
    dt_http_server *srv = arg;
    pthread_setname_np(pthread_self(), "dt-http-watch");
    int64_t period = srv->request_timeout_ms / 5;
    period = period < 20 ? 20 : period > 500 ? 500 : period;
    pthread_mutex_lock(&srv->watch_mu);
    while (!srv->watch_stop) {
        int64_t now = mono_ms();
        for (conn_watch *w = srv->watched; w; w = w->next)
            if (w->deadline != 0 && w->deadline <= now) {
                shutdown(w->fd, SHUT_RDWR);
                w->deadline = 0;
            }
        struct timespec until = dt_deadline_ms(period);
        pthread_cond_timedwait(&srv->watch_cv, &srv->watch_mu, &until);
    }
    pthread_mutex_unlock(&srv->watch_mu);
    return NULL;
}

/* ---- MHD callbacks ------------------------------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    conn_req *cr = calloc(1, sizeof *cr);
    if (cr == NULL)
        return NULL;
    cr->uri = strdup(uri ? uri : "/");
    if (cr->uri == NULL) {
        free(cr);
        return NULL;
    }
    return cr;
}

static void on_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    dt_http_server *srv = cls;
    watch_set(srv, conn, true);    /* answered: the next request on it is due in time */
    conn_req *cr = *req_cls;
    if (cr) {
        core_budget_give(&srv->held, cr->held);
        free(cr->uri);
        free(cr->body);
        free(cr);
        *req_cls = NULL;
    }
}

/* send_response: queue RS on CONN. Takes RS's memory (MHD frees the body; the rest is freed here). */
static enum MHD_Result send_response(struct MHD_Connection *conn, http_response *rs)
{
    struct MHD_Response *r;
    if (rs->static_body)
        r = MHD_create_response_from_buffer(rs->len, (void *)rs->static_body,
                                            MHD_RESPMEM_PERSISTENT);
    else if (rs->body)
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        response_clear(rs);
        return MHD_NO;
    }
    if (!rs->static_body)
        rs->body = NULL;    /* MHD owns it now */
    bool ok = true;
    if (rs->content_type)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type) ==
              MHD_YES;
    ok &= MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") == MHD_YES;
    if (!rs->static_body)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES;
    if (rs->location)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rs->location) == MHD_YES;
    if (rs->continuation)
        ok &= MHD_add_response_header(r, "x-ms-continuation-token", rs->continuation) ==
              MHD_YES;
    if (rs->allow)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rs->allow) == MHD_YES;
    if (rs->status == 401)
        ok &= MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer") == MHD_YES;
    enum MHD_Result res = ok ? MHD_queue_response(conn, rs->status, r) : MHD_NO;
    MHD_destroy_response(r);
    response_clear(rs);
    return res;
}

static enum MHD_Result send_reject(const dt_http_server *srv, struct MHD_Connection *conn,
                                   unsigned status, const char *why)
{
    http_response rs = {0};
    if (why && why[0])
        http_reply_error(&rs, status, "%s", why);
    else if (status == 401)
        http_reply_error(&rs, 401, "this server wants \"Authorization: Bearer <token>\"");
    else if (status == 413)
        http_reply_error(&rs, 413, "the request body is over the limit of %zu bytes",
                         srv->max_body);
    else
        http_reply_error(&rs, status, "out of memory for the request body");
    return send_response(conn, &rs);
}

static bool is_healthz(const char *uri)
{
    return strncmp(uri, "/healthz", 8) == 0 && (uri[8] == '\0' || uri[8] == '?');
}

/* is_public: what needs no token: /healthz, and GETs of the dashboard's built-in files. They
 * hold no data, and a browser cannot send a bearer token when it opens a page; the page then
 * sends the token with every API call it makes. A /healthz naming a task hub is not public:
 * asking for a hub opens it (makes it, unless --task-hubs lists them), and a caller without
 * the token must not fill the server's hubs. */
static bool is_public(struct MHD_Connection *conn, const char *method, const char *uri)
{
    if (is_healthz(uri))
        return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "taskHub") == NULL;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return false;
    char path[256];
    size_t n = strcspn(uri, "?");
    if (n >= sizeof path)
        return false;
    memcpy(path, uri, n);
    path[n] = '\0';
    return http_asset_find(path) != NULL;
}

/* host_part: the host of a Host header or an origin's authority (lowercase, without port or
 * brackets) into BUF; false if it does not fit. */
static bool host_part(const char *authority, char *buf, size_t size)
{
    const char *end;
    if (authority[0] == '[') {
        authority++;
        end = strchr(authority, ']');
        if (end == NULL)
            return false;
    } else {
        end = strchr(authority, ':');
        if (end == NULL)
            end = authority + strlen(authority);
    }
    size_t n = (size_t)(end - authority);
    if (n == 0 || n >= size)
        return false;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)authority[i]);
    buf[n] = '\0';
    return true;
}

/* host_allowed: may a request name HOST (a Host header's host part)? An IP address (no DNS
 * rebinding goes through one), localhost, or a name the server was told it has. */
static bool host_allowed(const dt_http_server *srv, const char *host)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1 ||
        strcmp(host, "localhost") == 0)
        return true;
    for (size_t i = 0; i < srv->n_public_hosts; i++)
        if (strcmp(srv->public_hosts[i], host) == 0)
            return true;
    return false;
}

static bool changes_state(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* browser_check: DNS rebinding and cross-site requests. The Host header must name this
 * server (421 otherwise); without a token, a request that changes state and comes from a
 * browser (it has an Origin) must come from a page of this server (403 otherwise). */
static unsigned browser_check(const dt_http_server *srv, struct MHD_Connection *conn,
                              const char *method, conn_req *cr)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    char h[256];
    if (host && (!host_part(host, h, sizeof h) || !host_allowed(srv, h))) {
        snprintf(cr->why, sizeof cr->why, "Host '%.100s' is not a name of this server; "
                 "start dtask serve with --public-host NAME to answer to it", host);
        return 421;
    }
    if (srv->token || !changes_state(method))
        return 0;
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (origin == NULL)
        return 0;   /* not a browser's cross-site request: browsers always send Origin */
    const char *auth = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    if (auth == NULL || host == NULL || strcasecmp(auth, host) != 0) {
        snprintf(cr->why, sizeof cr->why, "a %s from the web page at '%.100s' is refused: only "
                 "this server's own pages may change state without a token (--token-file)",
                 method, origin);
        return 403;
    }
    return 0;
}

/* nul_in_arg (MHD_KeyValueIteratorN): stop at a query parameter whose name or value holds a
 * NUL byte (%00), naming it in *CLS: read as a C string it would be cut short silently (a
 * taskHub=a%00b acting on hub a). */
static enum MHD_Result nul_in_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    if ((key && strlen(key) != key_size) || (value && strlen(value) != value_size)) {
        *(const char **)cls = key ? key : "";
        return MHD_NO;
    }
    return MHD_YES;
}

/* precheck: what to refuse a request for before its body: a Host that is not ours (421), a
 * browser's cross-site change (403), no or a wrong token (401), a declared length over the
 * limit (413). 0: go on. */
static unsigned precheck(const dt_http_server *srv, struct MHD_Connection *conn,
                         const char *method, conn_req *cr)
{
    unsigned refused = browser_check(srv, conn, method, cr);
    if (refused)
        return refused;
    const char *nul = NULL;
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, nul_in_arg, (void *)&nul);
    if (nul) {
        snprintf(cr->why, sizeof cr->why, "query parameter '%.60s' holds a NUL byte (%%00)", nul);
        return 400;
    }
    bool public = is_public(conn, method, cr->uri);
    if (!public && !authorized(srv, conn))
        return 401;
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    /* what needs no token takes no body either: a caller without the token must not make
     * the server hold bodies (counted against --max-held-mb) that others then miss */
    if (public && ((cl && strcmp(cl, "0") != 0) ||
                   MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_TRANSFER_ENCODING))) {
        snprintf(cr->why, sizeof cr->why, "%.40s %.100s takes no request body", method,
                 cr->uri);
        return 413;
    }
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == ERANGE || n > srv->max_body)
            return 413;
    }
    return 0;
}

/* held_refusal: why a body of N bytes (WHAT) is refused, into MSG. */
static void held_refusal(dt_http_server *srv, const char *what, size_t n, char *msg,
                         size_t size)
{
    snprintf(msg, size, "the server holds %zu bytes of bodies its requests have not finished "
             "with (limit %zu, dtask serve --max-held-mb): this %s of %zu bytes does not fit; "
             "try again later", core_budget_used(&srv->held), srv->held.max, what, n);
}

bool http_hold(http_request *rq, http_response *rs, size_t n)
{
    dt_http_server *srv = rq->server;
    if (srv == NULL || srv->held.max == 0 || n == 0)
        return true;
    /* a small response is never refused, as on_request never refuses one; for a larger,
     * what the others hold decides, as for a whole response: one larger than the bound goes
     * when they hold at most half of it (core_budget_take) */
    bool taken = core_budget_take(&srv->held, n);
    bool small = rq->held + n <= RESPONSE_FLOOR;
    if (!taken && (small || core_budget_used(&srv->held) - rq->held <= srv->held.max / 2)) {
        core_budget_force(&srv->held, n);
        taken = true;
    }
    if (taken) {
        rq->held += n;
        return true;
    }
    char why[300];
    held_refusal(srv, "response", rq->held + n, why, sizeof why);
    http_reply_error(rs, 503, "%s", why);
    return false;
}

static bool expects_continue(struct MHD_Connection *conn)
{
    const char *e = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
    return e && strcasecmp(e, "100-continue") == 0;
}

/* body_drop: free CR's body and give back what it held. */
static void body_drop(dt_http_server *srv, conn_req *cr)
{
    free(cr->body);
    cr->body = NULL;
    cr->len = cr->cap = 0;
    core_budget_give(&srv->held, cr->held);
    cr->held = 0;
}

/* take_body: append N bytes of DATA to CR's body, or count them as dropped once the body is
 * refused. false: cut the connection (too much dropped). */
static bool take_body(dt_http_server *srv, conn_req *cr, const char *data, size_t n)
{
    if (cr->reject == 0 && n > srv->max_body - cr->len) {
        cr->reject = 413;
        body_drop(srv, cr);
    }
    if (cr->reject) {
        cr->discarded += n;
        return cr->discarded <= DISCARD_MAX;
    }
    if (cr->len + n + 1 > cr->cap) {
        /* not dt_grow: the doubling stops at the body limit, so a connection never holds
         * more than max_body + 1 bytes however its body arrives */
        size_t cap = cr->cap ? cr->cap : 4096;
        while (cap < cr->len + n + 1)
            cap *= 2;
        if (cap > srv->max_body + 1)
            cap = srv->max_body + 1;
        if (!core_budget_take(&srv->held, cap - cr->cap)) {
            held_refusal(srv, "request body", cr->len + n, cr->why, sizeof cr->why);
            cr->reject = 503;
            body_drop(srv, cr);
            cr->discarded += n;
            return true;
        }
        cr->held += cap - cr->cap;
        char *b = realloc(cr->body, cap);
        if (b == NULL) {
            cr->reject = 500;
            body_drop(srv, cr);
            cr->discarded += n;
            return true;
        }
        cr->body = b;
        cr->cap = cap;
    }
    memcpy(cr->body + cr->len, data, n);
    cr->len += n;
    cr->body[cr->len] = '\0';
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)url;    /* decoded by MHD; we split the path as sent (conn_req.uri) */
    (void)version;
    dt_http_server *srv = cls;
    conn_req *cr = *req_cls;
    if (cr == NULL)
        return MHD_NO;    /* out of memory at the request line */
    if (!cr->started) {
        cr->started = true;
        cr->reject = precheck(srv, conn, method, cr);
        /* a client that waits for "100 Continue" has sent no body yet: answer at once */
        if (cr->reject && expects_continue(conn))
            return send_reject(srv, conn, cr->reject, cr->why);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(srv, cr, upload_data, n) ? MHD_YES : MHD_NO;
    }
    watch_set(srv, conn, false);   /* the request is all here: a handler may take its time */
    if (cr->reject)
        return send_reject(srv, conn, cr->reject, cr->why);

    http_request rq = {
        .server = srv,
        .hub = srv->hub,
        .conn = conn,
        .method = strcmp(method, "HEAD") == 0 ? "GET" : method,
        .body = cr->body ? cr->body : "",
        .body_len = cr->len,
        .port = srv->port,
    };
    http_response rs = {0};
    route_path(&rq, cr->uri, &rs);
    if (rs.status == 0)
        http_reply_error(&rs, 500, "no response (a bug)");
    /* the request's body is done with; the response is counted until on_done (MHD has sent
     * it, or the client is gone), and refused only for a large read: what a change did is
     * done, and small answers (the dashboard's) keep being served */
    body_drop(srv, cr);
    /* counted by http_hold while the response was built: the body (jb_finish leaves it no
     * larger than it is) takes its place, and the rest, if any, is given back */
    size_t counted = rq.held;
    if (rs.body && !rs.static_body && rs.len > 0) {
        /* HEAD reads as GET */
        bool refusable = strcmp(rq.method, "GET") == 0 && rs.len > RESPONSE_FLOOR;
        size_t more = rs.len > counted ? rs.len - counted : 0;
        if (!refusable)
            core_budget_force(&srv->held, more);
        if (!refusable || core_budget_take(&srv->held, more)) {
            cr->held = rs.len;
            counted = counted + more - rs.len;
        } else {
            char why[300];
            held_refusal(srv, "response", rs.len, why, sizeof why);
            response_clear(&rs);
            http_reply_error(&rs, 503, "%s", why);
        }
    }
    core_budget_give(&srv->held, counted);   /* held while it was built, and no longer */
    return send_response(conn, &rs);
}

/* ---- one request in this process (dt_http_handle) ----------------------------------------- */

/* unescape: S decoded in place as MHD decodes query arguments: '+' is a space, %XX a byte
 * (an escape that is not one stays as it is). */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        int hi = r[0] == '%' ? hexval(r[1]) : -1;
        int lo = hi >= 0 ? hexval(r[2]) : -1;
        if (lo >= 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
}

/* split_query: the parameters of QUERY (a malloc'd copy, cut in place) as name-value pairs
 * in PAIRS (room for MAX pairs; the rest are dropped); a name without '=' has the value "". */
static size_t split_query(char *query, const char **pairs, size_t max)
{
    size_t n = 0;
    for (char *p = query, *next; p && n < max; p = next) {
        next = strchr(p, '&');
        if (next)
            *next++ = '\0';
        if (*p == '\0')
            continue;
        char *eq = strchr(p, '=');
        if (eq)
            *eq++ = '\0';
        unescape(p);
        if (eq)
            unescape(eq);
        pairs[2 * n] = p;
        pairs[2 * n + 1] = eq ? eq : "";
        n++;
    }
    return n;
}

#define HANDLE_MAX_PAIRS 64

dt_status dt_http_handle(dt_hub *hub, const char *method, const char *target,
                         const char *const *headers, size_t n_headers, const char *body,
                         size_t body_len, unsigned *status, char **out, size_t *out_len)
{
    if (hub == NULL || method == NULL || target == NULL || status == NULL || out == NULL ||
        out_len == NULL || (body == NULL && body_len > 0) || (headers == NULL && n_headers > 0))
        return DT_ERR_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    dt_http_server srv = {.hub = hub, .max_body = DEFAULT_MAX_BODY, .port = 0};
    const char *qpairs[2 * HANDLE_MAX_PAIRS], *hpairs[2 * HANDLE_MAX_PAIRS];
    char *hcopy[HANDLE_MAX_PAIRS] = {0};
    size_t nh = 0;
    const char *q = strchr(target, '?');
    char *query = q ? strdup(q + 1) : NULL;
    char *text = malloc(body_len + 1);
    dt_status st = (q && query == NULL) || text == NULL ? DT_ERR_NOMEM : DT_OK;
    for (size_t i = 0; st == DT_OK && i < n_headers && nh < HANDLE_MAX_PAIRS; i++) {
        const char *colon = strchr(headers[i], ':');
        if (colon == NULL)
            continue;
        char *h = hcopy[nh] = strdup(headers[i]);
        if (h == NULL) {
            st = DT_ERR_NOMEM;
            break;
        }
        h[colon - headers[i]] = '\0';
        const char *v = h + (colon - headers[i]) + 1;
        v += strspn(v, " \t");
        hpairs[2 * nh] = h;
        hpairs[2 * nh + 1] = v;
        nh++;
    }
    http_response rs = {0};
    if (st == DT_OK) {
        if (body_len)
            memcpy(text, body, body_len);
        text[body_len] = '\0';
        http_request rq = {
            .server = &srv,
            .hub = hub,
            .method = strcmp(method, "HEAD") == 0 ? "GET" : method,
            .body = text,
            .body_len = body_len,
            .query = qpairs,
            .n_query = query ? split_query(query, qpairs, HANDLE_MAX_PAIRS) : 0,
            .headers = hpairs,
            .n_headers = nh,
        };
        route_path(&rq, target, &rs);
        if (rs.status == 0)
            http_reply_error(&rs, 500, "no response (a bug)");
        const void *data = rs.static_body ? rs.static_body : rs.body;
        *out = malloc(rs.len + 1);
        if (*out == NULL) {
            st = DT_ERR_NOMEM;
        } else {
            if (rs.len)
                memcpy(*out, data, rs.len);
            (*out)[rs.len] = '\0';
            *out_len = rs.len;
            *status = rs.status;
        }
    }
    response_clear(&rs);
    for (size_t i = 0; i < nh; i++)
        free(hcopy[i]);
    free(query);
    free(text);
    return st;
}

/* ---- start and stop --------------------------------------------------------------------- */

/* server_free: the one teardown, for a failed start and for stop alike: MHD_stop_daemon
 * waits for every connection's thread, so nothing uses SRV after it. */
static void server_free(dt_http_server *srv)
{
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    assert(core_budget_used(&srv->held) == 0);   /* every request done, its bodies given back */
    if (srv->watchdog_started) {
        pthread_mutex_lock(&srv->watch_mu);
        srv->watch_stop = true;
        pthread_cond_signal(&srv->watch_cv);
        pthread_mutex_unlock(&srv->watch_mu);
        pthread_join(srv->watchdog, NULL);
    }
    if (srv->watch_made) {
        assert(srv->watched == NULL);   /* MHD reported every connection closed */
        pthread_mutex_destroy(&srv->watch_mu);
        pthread_cond_destroy(&srv->watch_cv);
    }
    free(srv->token);
    for (size_t i = 0; i < srv->n_public_hosts; i++)
        free(srv->public_hosts[i]);
    free(srv->public_hosts);
    free(srv);
}

dt_status dt_http_server_start(dt_hub *hub, const dt_http_options *opts, dt_http_server **out,
                               dt_error *err)
{
    *out = NULL;
    if ((hub == NULL) == (opts == NULL || opts->hubs == NULL))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "HTTP server: a hub or task hubs, one of "
                            "the two");
    const char *listen_addr = opts && opts->listen ? opts->listen : DT_DEFAULT_HTTP_ADDRESS;
    if (opts && opts->token && opts->token[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "HTTP server: the token is empty");
    if (opts && (opts->tls_cert_pem == NULL) != (opts->tls_key_pem == NULL))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "HTTP server: TLS needs both a certificate "
                            "and a key");
    unsigned max_conns = opts && opts->max_connections ? opts->max_connections
                                                       : DT_HTTP_MAX_CONNECTIONS;
    unsigned per_client = opts && opts->max_per_client ? opts->max_per_client
                                                       : DT_HTTP_MAX_PER_CLIENT;
    if (opts && opts->request_timeout_ms < 0)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "HTTP server: the request timeout (%lld ms) "
                            "cannot be negative", (long long)opts->request_timeout_ms);
    dt_http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    srv->hub = hub;
    srv->hubs = opts ? opts->hubs : NULL;
    srv->max_body = opts && opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    srv->held.max = opts && opts->max_held ? opts->max_held : DT_HTTP_MAX_HELD;
    srv->request_timeout_ms = opts && opts->request_timeout_ms > 0 ? opts->request_timeout_ms
                                                                   : DT_REQUEST_TIMEOUT_MS;
    dt_status st;
    if (pthread_mutex_init(&srv->watch_mu, NULL) != 0) {
        st = dt_error_set(err, DT_ERR_NOMEM, "HTTP server: cannot create a mutex");
        goto fail;
    }
    if (pthread_cond_init(&srv->watch_cv, NULL) != 0) {
        pthread_mutex_destroy(&srv->watch_mu);
        st = dt_error_set(err, DT_ERR_NOMEM, "HTTP server: cannot create a condition variable");
        goto fail;
    }
    srv->watch_made = true;
    if (opts && opts->token && (srv->token = strdup(opts->token)) == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    size_t n_hosts = opts ? opts->n_public_hosts : 0;
    if (n_hosts && (srv->public_hosts = calloc(n_hosts, sizeof *srv->public_hosts)) == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_hosts; i++) {
        char h[256];
        const char *given = opts->public_hosts[i] ? opts->public_hosts[i] : "";
        if (!host_part(given, h, sizeof h)) {
            st = dt_error_set(err, DT_ERR_INVALID_ARG, "HTTP server: public host '%.100s' is "
                              "not a host name", given);
            goto fail;
        }
        if ((srv->public_hosts[i] = strdup(h)) == NULL) {
            st = dt_error_set(err, DT_ERR_NOMEM, "out of memory");
            goto fail;
        }
        srv->n_public_hosts++;
    }
    int fd = -1;
    bool ipv6 = false;
    st = core_listen("HTTP", listen_addr, &fd, &ipv6, err);
    if (st != DT_OK)
        goto fail;
    srv->port = core_bound_port(fd);
    /* MHD gets a duplicate: it owns (and closes) that one on success, and whether it closes
     * it on a failed start is not documented, so our own descriptor is always closed here
     * and never twice. */
    int mhd_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (mhd_fd < 0) {
        st = dt_error_set(err, DT_ERR_IO, "cannot listen on %s: %s", listen_addr,
                          strerror(errno));
        close(fd);
        goto fail;
    }
    fcntl(mhd_fd, F_SETFL, fcntl(mhd_fd, F_GETFL) | O_NONBLOCK);
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | (ipv6 ? MHD_USE_IPv6 : 0);
    bool tls = opts && opts->tls_cert_pem && opts->tls_key_pem;
    /* the TLS options go last: without TLS they end the list early (MHD_OPTION_END) */
    srv->daemon = MHD_start_daemon(
        flags | (tls ? MHD_USE_TLS : 0), 0, NULL, NULL, on_request, srv,
        MHD_OPTION_LISTEN_SOCKET, mhd_fd, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_LIMIT, core_fd_share(max_conns, 2),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_client, MHD_OPTION_CONNECTION_TIMEOUT,
        CONNECTION_TIMEOUT_S, tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
        tls ? opts->tls_cert_pem : NULL, MHD_OPTION_HTTPS_MEM_KEY, tls ? opts->tls_key_pem : NULL,
        MHD_OPTION_END);
    close(fd);
    if (srv->daemon == NULL || srv->port < 0) {
        st = dt_error_set(err, DT_ERR_IO, "cannot serve HTTP%s on %s: libmicrohttpd did not start%s",
                          tls ? "S" : "", listen_addr,
                          tls ? " (is the certificate or key not usable PEM?)" : "");
        goto fail;
    }
    if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
        st = dt_error_set(err, DT_ERR_NOMEM, "HTTP server: cannot start the watchdog thread");
        goto fail;
    }
    srv->watchdog_started = true;
    *out = srv;
    return DT_OK;
fail:
    server_free(srv);
    return st;
}

int dt_http_server_port(const dt_http_server *s)
{
    return s ? s->port : -1;
}

void dt_http_server_stop(dt_http_server *s)
{
    if (s == NULL)
        return;
    server_free(s);
}
