/* httptest.c — see httptest.h. libmicrohttpd, a thread per connection, so a slow answer
 * holds up only its own request. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "httptest.h"
#include "testutil.h"

#define BIG (2 * 1024 * 1024)

static const char *const paths[] = {"/ok", "/echo", "/held", "/fail", "/slow", "/big",
                                    "/bigstream", "/binary", "/poll/start", "/poll/status",
                                    "/poll/forever", "/redirect", "/loop", "/see-other",
                                    "/offsite", "/to-ftp"};
#define N_PATHS (sizeof paths / sizeof paths[0])

struct httptest {
    struct MHD_Daemon *daemon;
    int port;
    atomic_int hits[N_PATHS];
    atomic_bool stopping;
    atomic_bool released;   /* httptest_release: /held answers */
};

/* a request body as it arrives */
typedef struct upload {
    char *buf;
    size_t len;
} upload;

static int path_index(const char *path)
{
    for (size_t i = 0; i < N_PATHS; i++)
        if (strcmp(paths[i], path) == 0)
            return (int)i;
    return -1;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *body,
                             const char *const *headers)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    for (; headers && headers[0]; headers += 2)
        MHD_add_response_header(r, headers[0], headers[1]);
    enum MHD_Result res = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return res;
}

static ssize_t stream_x(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    if (pos >= BIG)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = BIG - pos < max ? BIG - pos : max;
    memset(buf, 'x', n);
    return (ssize_t)n;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
    return v ? v : "";
}

/* every X-Custom header of the request, joined by ", " (into a 256-byte buffer) */
static enum MHD_Result join_custom(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    char *out = cls;
    if (strcasecmp(key, "X-Custom") == 0) {
        size_t n = strlen(out);
        snprintf(out + n, 256 - n, "%s%s", n ? ", " : "", value);
    }
    return MHD_YES;
}

/* echo: the answer of /echo (see httptest.h) */
static enum MHD_Result echo(struct MHD_Connection *conn, const char *method, const upload *up)
{
    size_t n = (up->buf ? up->len : 0) + 1024;
    char *body = malloc(n);
    if (body == NULL)
        return MHD_NO;
    char custom[256] = "";
    MHD_get_connection_values(conn, MHD_HEADER_KIND, join_custom, custom);
    snprintf(body, n, "%s|%s|%s|%s|%s", method, custom, header(conn, "Content-Type"),
             header(conn, "Authorization"), up->buf ? up->buf : "");
    enum MHD_Result res = reply(conn, 200, body, NULL);
    free(body);
    return res;
}

/* held: the answer of /held (see httptest.h) */
static enum MHD_Result held(httptest *t, struct MHD_Connection *conn)
{
    while (!atomic_load(&t->released) && !atomic_load(&t->stopping))
        test_sleep_ms(10);
    const char *bytes = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "bytes");
    size_t n = bytes ? strtoul(bytes, NULL, 10) : 0;
    char *body = malloc(n + 1);
    if (body == NULL)
        return MHD_NO;
    memset(body, 'h', n);
    body[n] = '\0';
    enum MHD_Result res = reply(conn, 200, body, NULL);
    free(body);
    return res;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *data, size_t *data_size, void **req_cls)
{
    (void)version;
    httptest *t = cls;
    upload *up = *req_cls;
    if (up == NULL) {   /* the headers are in; the body (if any) follows */
        if ((up = calloc(1, sizeof *up)) == NULL)
            return MHD_NO;
        *req_cls = up;
        return MHD_YES;
    }
    if (*data_size) {
        char *b = realloc(up->buf, up->len + *data_size + 1);
        if (b == NULL)
            return MHD_NO;
        memcpy(b + up->len, data, *data_size);
        up->buf = b;
        up->len += *data_size;
        b[up->len] = '\0';
        *data_size = 0;
        return MHD_YES;
    }
    int i = path_index(url);
    if (i >= 0)
        atomic_fetch_add(&t->hits[i], 1);
    char where[128];
    if (strcmp(url, "/ok") == 0) {
        const char *h[] = {"X-Test", "yes", "X-Multi", "a", "X-Multi", "b", NULL};
        return reply(conn, 200, "hello", h);
    }
    if (strcmp(url, "/echo") == 0)
        return echo(conn, method, up);
    if (strcmp(url, "/held") == 0)
        return held(t, conn);
    if (strcmp(url, "/fail") == 0)
        return reply(conn, 500, "boom", NULL);
    if (strcmp(url, "/slow") == 0) {
        for (int k = 0; k < 60 && !atomic_load(&t->stopping); k++)
            test_sleep_ms(50);
        return reply(conn, 200, "late", NULL);
    }
    if (strcmp(url, "/big") == 0) {
        char *body = malloc(BIG);
        if (body == NULL)
            return MHD_NO;
        memset(body, 'x', BIG);
        struct MHD_Response *r = MHD_create_response_from_buffer(BIG, body,
                                                                 MHD_RESPMEM_MUST_FREE);
        enum MHD_Result res = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return res;
    }
    if (strcmp(url, "/bigstream") == 0) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                                   stream_x, NULL, NULL);
        enum MHD_Result res = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return res;
    }
    if (strcmp(url, "/binary") == 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(3, (void *)"\xff\x00" "a",
                                                                 MHD_RESPMEM_PERSISTENT);
        enum MHD_Result res = MHD_queue_response(conn, 200, r);
        MHD_destroy_response(r);
        return res;
    }
    if (strcmp(url, "/poll/start") == 0 ||
        (strcmp(url, "/poll/status") == 0 && atomic_load(&t->hits[i]) == 1)) {
        const char *h[] = {"Location", "/poll/status", "Retry-After", "1", NULL};
        return reply(conn, 202, "working", h);
    }
    if (strcmp(url, "/poll/status") == 0)
        return reply(conn, 200, "done", NULL);
    if (strcmp(url, "/poll/forever") == 0) {
        const char *h[] = {"Location", "/poll/forever", "Retry-After", "1", NULL};
        return reply(conn, 202, "still working", h);
    }
    const char *to = strcmp(url, "/redirect") == 0 ? "/ok"
                   : strcmp(url, "/loop") == 0 ? "/loop"
                   : strcmp(url, "/see-other") == 0 ? "/echo"
                   : strcmp(url, "/to-ftp") == 0 ? "ftp://127.0.0.1/file" : NULL;
    if (strcmp(url, "/offsite") == 0) {
        snprintf(where, sizeof where, "http://localhost:%d/ok", t->port);
        to = where;
    }
    if (to) {
        const char *h[] = {"Location", to, NULL};
        return reply(conn, strcmp(url, "/see-other") == 0 ? 303 : 302, "", h);
    }
    return reply(conn, 404, "no such route", NULL);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    upload *up = *req_cls;
    if (up) {
        free(up->buf);
        free(up);
        *req_cls = NULL;
    }
}

httptest *httptest_start(void)
{
    httptest *t = calloc(1, sizeof *t);
    assert_non_null(t);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    t->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                 0, NULL, NULL, on_request, t, MHD_OPTION_SOCK_ADDR, &sa,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_done, t, MHD_OPTION_END);
    if (t->daemon == NULL)
        fail_msg("the test HTTP server did not start");
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(t->daemon,
                                                           MHD_DAEMON_INFO_BIND_PORT);
    assert_non_null(info);
    t->port = info->port;
    assert_true(t->port > 0);
    return t;
}

int httptest_port(const httptest *t)
{
    return t->port;
}

const char *httptest_url(const httptest *t, const char *path)
{
    static _Thread_local char buf[4][256];
    static _Thread_local int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "http://127.0.0.1:%d%s", t->port, path);
    return b;
}

int httptest_hits(httptest *t, const char *path)
{
    int i = path_index(path);
    return i < 0 ? 0 : atomic_load(&t->hits[i]);
}

void httptest_release(httptest *t)
{
    atomic_store(&t->released, true);
}

void httptest_stop(httptest *t)
{
    if (t == NULL)
        return;
    atomic_store(&t->stopping, true);
    MHD_stop_daemon(t->daemon);
    free(t);
}
