/* rpc.h — the gRPC server's internals. server.c owns the gRPC server, its completion queue
 * and the poller thread; every call runs on a thread of its own and talks to gRPC through the
 * blocking helpers here (rpc_recv, rpc_send, rpc_finish), which start a batch and wait for
 * the poller to report it done. client_rpcs.c, get_work_items.c and worker_rpcs.c hold the
 * handlers; the messages they read and write are mapped to records by src/service/. */
#ifndef DT_GRPC_RPC_H
#define DT_GRPC_RPC_H

#include <grpc/grpc.h>
#include <pthread.h>
#include <stdbool.h>

#include "durabletask/grpc.h"

typedef struct rpc_call rpc_call;
typedef struct worker_registry worker_registry;

/* One request's bytes, owned by the handler (free with free()). */
typedef struct rpc_bytes {
    uint8_t *data;
    size_t len;
} rpc_bytes;

/* A handler serves one call from start to finish on a thread of its own and returns; the
 * call is freed after. */
typedef void (*rpc_handler)(rpc_call *call);

/* An asynchronous handler serves a call on the poller thread, so it must not block: it
 * returns false, having changed nothing, to have the method's handler serve the call on a
 * thread instead; true when it took the call, which it ends later, from any thread, with
 * rpc_finish (or rpc_reply, rpc_fail...): the last thing it does with the call. */
typedef bool (*rpc_async_handler)(rpc_call *call);

typedef struct rpc_method {
    const char *name;           /* "StartInstance": the path is "/TaskHubSidecarService/<name>" */
    rpc_handler handler;        /* NULL: answered UNIMPLEMENTED, naming the method */
    rpc_async_handler async;    /* NULL: none */
} rpc_method;

/* rpc_listener (listener.c): the plaintext server's accept loop, which hands gRPC at most
 * MAX connections at once, PER_CLIENT of them from one IP address. rpc_listener_start binds
 * ADDR ("ADDR:PORT"), sets *PORT, and starts taking connections for SERVER (started);
 * rpc_listener_stop stops taking them (those taken stay gRPC's); rpc_listener_free frees it
 * (stopped, and asked no more: its table answers rpc_listener_peer until then). */
typedef struct rpc_listener rpc_listener;
dt_status rpc_listener_start(grpc_server *server, const char *addr, unsigned max,
                             unsigned per_client, rpc_listener **out, int *port, dt_error *err);
void rpc_listener_stop(rpc_listener *l);
void rpc_listener_free(rpc_listener *l);

/* rpc_peer: a client's address, as the caps per client count it: an IPv4 one (IPv4-mapped
 * IPv6 too) as its 4 bytes, an IPv6 one as its 16; anything else (a unix socket) all alike,
 * LEN 0. rpc_peer_of makes one from a socket address; rpc_peer_same compares two.
 * rpc_listener_peer: in *OUT, the address of the connection L handed gRPC as descriptor FD;
 * false when L holds no such connection. */
typedef struct rpc_peer {
    unsigned char len;
    unsigned char b[16];
} rpc_peer;
struct sockaddr_storage;
rpc_peer rpc_peer_of(const struct sockaddr_storage *a);
bool rpc_peer_same(const rpc_peer *a, const rpc_peer *b);
bool rpc_listener_peer(rpc_listener *l, int fd, rpc_peer *out);

/* The tables, one per handler file. */
extern const rpc_method rpc_client_methods[];
extern const rpc_method rpc_worker_methods[];

/* rpc_hub / rpc_workers / rpc_method_name: what a handler works on (the task hub the call's
 * "taskhub" metadata names), the server's registry of work handed to remote workers, and the
 * method being served ("StartInstance"). */
dt_hub *rpc_hub(rpc_call *call);

/* rpc_hub_deleted: was the call's task hub deleted while the call ran? */
bool rpc_hub_deleted(rpc_call *call);

/* rpc_hubs / rpc_task_hub: the server's task hubs (NULL when it serves one hub) and the
 * name the call's metadata gives (DT_TASK_HUB_DEFAULT when none; "" when it is too long). */
dt_hub_set *rpc_hubs(rpc_call *call);
const char *rpc_task_hub(rpc_call *call);

/* rpc_metadata_is: does the call carry metadata KEY with exactly VALUE? */
bool rpc_metadata_is(rpc_call *call, const char *key, const char *value);
worker_registry *rpc_workers(rpc_call *call);
const char *rpc_method_name(const rpc_call *call);

/* rpc_stream_begin: serve CALL as a completion stream (DT_COMPLETION_STREAM_METHOD; see
 * server.c): its messages are read, and served as calls of their own, from now on; the
 * stream lets itself go when it ends. The caller still holds CALL. */
void rpc_stream_begin(rpc_call *call);

/* rpc_recv: read the request message. false if the client went away or sent none. */
bool rpc_recv(rpc_call *call, rpc_bytes *out);

/* rpc_send: send one message of a server stream: it is on its way (queued behind the ones
 * before; the caller waits only when SEND_QUEUE_MAX already wait). false if the client went
 * away or a message before could not be sent. */
bool rpc_send(rpc_call *call, const uint8_t *data, size_t len);

/* rpc_finish: send the response (DATA may be NULL for none) and the status, after the
 * messages a stream sent before; it waits for nothing else (the poller frees what the send
 * holds). MESSAGE goes to the client as the status details. Once per call: a second is
 * ignored. */
void rpc_finish(rpc_call *call, const uint8_t *data, size_t len, grpc_status_code code,
                const char *message);

/* rpc_recv_msg: read the request and parse it as DESC into ARENA (pb_unpack: UTF-8 and depth
 * checked; what the parsed tree takes is counted with the held bytes until the call is
 * freed, and bounded for its size). false, with the call finished (INVALID_ARGUMENT naming
 * what was wrong, RESOURCE_EXHAUSTED when the held bytes are at their limit, or CANCELLED),
 * if there is none or it is refused. */
struct ProtobufCMessageDescriptor;
struct ProtobufCMessage;
bool rpc_recv_msg(rpc_call *call, dt_arena *arena, const struct ProtobufCMessageDescriptor *desc,
                  void **out);

/* RPC_HANDLER: the skeleton of a blocking handler FN: an arena, the request parsed into it
 * as TYPE (DESC), then the body that follows the macro, run only when the request parsed
 * (rpc_recv_msg finished the call otherwise); the arena is freed when the body returns. */
#define RPC_HANDLER(fn, type, desc)                                                          \
    static void fn##_body(rpc_call *c, dt_arena *a, type *r);                                \
    static void fn(rpc_call *c)                                                              \
    {                                                                                        \
        dt_arena *a = dt_arena_new();                                                        \
        void *r = NULL;                                                                      \
        if (a == NULL) /* unread: a completion stream's ends, its items go back */           \
            rpc_finish(c, NULL, 0, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");         \
        else if (rpc_recv_msg(c, a, &desc, &r))                                              \
            fn##_body(c, a, r);                                                              \
        dt_arena_free(a);                                                                    \
    }                                                                                        \
    static void fn##_body(rpc_call *c, dt_arena *a, type *r)

/* rpc_peek_msg: parse the request the poller read as DESC into ARENA without using it up;
 * false if there is none or it does not parse (the blocking handler then says why). */
bool rpc_peek_msg(rpc_call *call, dt_arena *arena, const struct ProtobufCMessageDescriptor *desc,
                  void **out);

/* What an asynchronous handler keeps until the hub answers: its call, and the arena its
 * request was parsed into (the work handed to the hub points into it). */
typedef struct rpc_pending {
    rpc_call *call;
    dt_arena *arena;
} rpc_pending;

/* rpc_pending_new: one for CALL, with a fresh arena (NULL when out of memory); freed, arena
 * and all, with rpc_pending_free. */
rpc_pending *rpc_pending_new(rpc_call *call);
void rpc_pending_free(rpc_pending *p);

/* rpc_reply: pack M and finish the call with it, status OK. */
void rpc_reply(rpc_call *call, const struct ProtobufCMessage *m);

/* rpc_fail_err: finish with the gRPC status for ST and ERR's message (or ST's sentence). */
void rpc_fail_err(rpc_call *call, dt_status st, const dt_error *err);

/* rpc_status_of: the gRPC status for a dt_status; rpc_fail: finish with it and MESSAGE. */
grpc_status_code rpc_status_of(dt_status st);
void rpc_fail(rpc_call *call, dt_status st, const char *message);

/* rpc_waits: may CALL's answer wait for room (its activity result would wait in the hub: a
 * full database)? Within bounds: a completion stream's child leaves its stream's window for
 * a second one (256 children, 16 MiB, 4 on threads), so the stream reads on (a worker's other
 * completions, those that end instances among them, are not held behind it); of unary
 * calls, at most RPC_WAITING_CALLS wait at once on the server (each holds a call slot, a
 * large one a thread). False past them: the result is refused at once. */
#define RPC_WAITING_CALLS 64
bool rpc_waits(rpc_call *call);

/* rpc_closed: true once the client cancelled or went away (deadline, disconnect). */
bool rpc_closed(rpc_call *call);

/* rpc_wait_closed: sleep until the call closes or MS milliseconds pass; true if closed. */
bool rpc_wait_closed(rpc_call *call, int64_t ms);

/* rpc_stopping: true once the server is stopping. */
bool rpc_stopping(rpc_call *call);

/* rpc_health_ping_ms: how long a work item stream may be idle before it gets a HealthPing. */
int64_t rpc_health_ping_ms(rpc_call *call);

/* rpc_max_message: the largest message the server sends or receives (--max-message). */
size_t rpc_max_message(rpc_call *call);

/* rpc_hold_kept: count N bytes that CALL's request leaves behind past the call (a chunked
 * completion's chunks, kept until its last) against the server's bound on what it holds
 * (--max-held-mb); false, nothing counted, when they do not fit, and then WHY (SIZE bytes)
 * says so. rpc_give_kept gives them back to the server (rpc_server_of: the call may be gone
 * by then), which must not be stopped before. */
bool rpc_hold_kept(rpc_call *call, size_t n, char *why, size_t size);
dt_grpc_server *rpc_server_of(rpc_call *call);
void rpc_give_kept(dt_grpc_server *srv, size_t n);

/* rpc_held_max: the most the server holds of its calls' messages (--max-held-mb).
 * rpc_held_pressed: is more than half of it held now? rpc_request_timeout_ms: how long a
 * request message may take to come (--request-timeout). */
size_t rpc_held_max(rpc_call *call);
bool rpc_held_pressed(rpc_call *call);
int64_t rpc_request_timeout_ms(rpc_call *call);

/* worker_registry: the work items handed to remote workers (workers.c). */
worker_registry *workers_new(void);
void workers_free(worker_registry *w);

#endif
