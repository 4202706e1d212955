/* durabletask/grpc.h — the Durable Task gRPC service (TaskHubSidecarService) over a hub, so
 * that the official Durable Task SDKs (.NET, Java, Python, JavaScript, Go) can use the hub as
 * their backend, as clients and as remote workers. Built on gRPC's C core. */
#ifndef DURABLETASK_GRPC_H
#define DURABLETASK_GRPC_H

#include "durabletask/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_grpc_server dt_grpc_server;

/* The largest message the server sends or accepts unless told otherwise. */
#define DT_GRPC_MAX_MESSAGE ((size_t)16 << 20)

/* How long a work item stream may stay idle before it gets a HealthPing, unless told. */
#define DT_GRPC_HEALTH_PING_MS 30000

/* Calls served at once unless told otherwise (each holds a thread while it runs), and of them
 * GetWorkItems streams (an SDK worker holds one for its whole life, plus a few unary calls at a
 * time): room for a few hundred workers. A call beyond either is answered RESOURCE_EXHAUSTED
 * at once, on no thread. One client (an IP address) may hold half of each unless told
 * otherwise, so that it cannot take them all: on one machine, where every client is
 * 127.0.0.1, that is 512 calls and 128 streams (128 SDK workers, 64 of the C SDK's). */
#define DT_GRPC_MAX_CALLS 1024
#define DT_GRPC_MAX_STREAMS 256

/* The bytes of messages the server holds for its calls at once unless told otherwise: requests
 * until their call is done, answers and stream messages until sent (a client that does not
 * read keeps its answer). A request, or a read's large answer, beyond it is answered
 * RESOURCE_EXHAUSTED; a stream message waits; a message larger than all of it goes when at
 * most half is held. */
#define DT_GRPC_MAX_HELD ((size_t)256 << 20)

/* Connections kept at once unless told otherwise (each SDK client or worker holds one, however
 * many calls it makes), within a quarter of the process's descriptor limit: one past it is
 * closed at once. A connection with no call for DT_GRPC_IDLE_TIMEOUT_MS is closed (GOAWAY;
 * clients connect again when they next call), so idle ones do not keep the room. With TLS,
 * gRPC's own listener takes connections and does not count them. */
#define DT_GRPC_MAX_CONNECTIONS 1024
/* Of those, connections kept at once from one IP address (all of loopback's clients share
 * 127.0.0.1): past it, that address's next connection is closed at once, so one client cannot
 * take every connection the server keeps. */
#define DT_GRPC_MAX_PER_CLIENT 256
#define DT_GRPC_IDLE_TIMEOUT_MS 120000

/* How long a message the server sends (an answer, a stream's message) may wait for its client
 * to take it unless told otherwise, when more than half of max_held is held; then the call
 * ends (DEADLINE_EXCEEDED), and what it held goes. */
#define DT_GRPC_SEND_TIMEOUT_MS 60000

typedef struct dt_grpc_options {
    const char *listen;          /* "ADDR:PORT"; NULL: DT_DEFAULT_GRPC_ADDRESS (loopback) */
    size_t max_message;          /* largest message accepted, bytes; 0: DT_GRPC_MAX_MESSAGE */
    const char *token;           /* non-NULL: every call must carry the metadata
                                  * "authorization: Bearer <token>" (copied) */
    int64_t health_ping_ms;      /* a work item stream idle this long gets a HealthPing (the
                                  * .NET and Python SDKs drop a stream silent for 120 s);
                                  * 0: DT_GRPC_HEALTH_PING_MS */
    dt_hub_set *hubs;            /* serve these task hubs (the hub argument NULL): each call is
                                  * for the hub its "taskhub" metadata names, none meaning
                                  * DT_TASK_HUB_DEFAULT; CreateTaskHub/DeleteTaskHub served */
    const char *tls_cert_pem;    /* both set: serve TLS with this certificate chain and key */
    const char *tls_key_pem;     /* (PEM text); neither: plain HTTP/2 */
    int max_calls;               /* calls served at once; 0: DT_GRPC_MAX_CALLS */
    int max_streams;             /* streams among them (GetWorkItems, and the C SDK's completion
                                  * streams); 0: DT_GRPC_MAX_STREAMS
                                  * (at most max_calls) */
    int max_calls_per_client;    /* of max_calls, from one IP address (every client on this
                                  * machine is 127.0.0.1); 0: half of max_calls */
    int max_streams_per_client;  /* of max_streams, from one IP address; 0: half of
                                  * max_streams */
    int64_t request_timeout_ms;  /* a call whose request message has not arrived this long
                                  * after the call did is ended (DEADLINE_EXCEEDED);
                                  * 0: DT_REQUEST_TIMEOUT_MS */
    size_t max_held;             /* bytes of messages held for calls at once;
                                  * 0: DT_GRPC_MAX_HELD */
    int64_t send_timeout_ms;     /* a message not taken by its client this long ends its
                                  * call; 0: DT_GRPC_SEND_TIMEOUT_MS */
    int max_connections;         /* plaintext connections kept at once;
                                  * 0: DT_GRPC_MAX_CONNECTIONS */
    int max_per_client;          /* of them, from one IP address; 0: DT_GRPC_MAX_PER_CLIENT
                                  * (at most max_connections) */
    int64_t idle_timeout_ms;     /* a connection with no call this long is closed;
                                  * 0: DT_GRPC_IDLE_TIMEOUT_MS */
    bool no_completion_stream;   /* answer durabletask-c's own completion stream (the C SDK's
                                  * remote worker sends its completions on one stream rather
                                  * than a unary call each) UNIMPLEMENTED, as other servers do:
                                  * for tests and comparisons */
} dt_grpc_options;

/* dt_grpc_server_start: serve HUB (or OPTS->hubs; either must outlive the server) on
 * OPTS->listen. With one hub, calls are for it whatever hub they name. Returns once the port
 * is bound. DT_ERR_IO naming the address if it cannot be bound. Stop with
 * dt_grpc_server_stop. */
dt_status dt_grpc_server_start(dt_hub *hub, const dt_grpc_options *opts, dt_grpc_server **out,
                               dt_error *err);

/* dt_grpc_server_port: the port actually bound (useful with port 0). */
int dt_grpc_server_port(const dt_grpc_server *s);

/* dt_grpc_server_stop: cancel every call, give work items handed to remote workers back to
 * the hub for redelivery, wait for the handlers, and free the server. S may be NULL. */
void dt_grpc_server_stop(dt_grpc_server *s);

#ifdef __cplusplus
}
#endif
#endif
