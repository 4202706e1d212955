/* durabletask/grpc_client.h — a small gRPC client for TaskHubSidecarService, used by the C
 * SDK's remote worker (remote.h), the CLI, tools and tests: blocking calls, and unary calls
 * that call back when they end. It moves serialized messages; what is in them is the
 * caller's business. */
#ifndef DURABLETASK_GRPC_CLIENT_H
#define DURABLETASK_GRPC_CLIENT_H

#include "durabletask/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_grpc_conn dt_grpc_conn;
typedef struct dt_grpc_stream dt_grpc_stream;

/* The outcome of a call: a gRPC status code (0 is OK) and its details text. */
typedef struct dt_grpc_result {
    int code;
    char details[512];
} dt_grpc_result;

/* dt_grpc_conn_open: a plaintext channel to TARGET ("127.0.0.1:4001"; NULL:
 * DT_DEFAULT_GRPC_ADDRESS). Close with dt_grpc_conn_close. Connecting happens on the first
 * call. */
dt_status dt_grpc_conn_open(const char *target, dt_grpc_conn **out, dt_error *err);
void dt_grpc_conn_close(dt_grpc_conn *c);

/* dt_grpc_conn_wait: a retry's pause of MS. When C is not connected, it tries to connect
 * meanwhile and returns as soon as it is (after 100 ms at least): a call to an unreachable
 * server fails at once, and gRPC tries to connect again only while something waits on the
 * channel (else every 5 s). Not while dt_grpc_conn_close runs. */
void dt_grpc_conn_wait(dt_grpc_conn *c, int64_t ms);

/* dt_grpc_conn_set_token: send "authorization: Bearer TOKEN" (copied) on every later call;
 * NULL stops. Set it before calls start: it is not synchronized with calls in flight. */
dt_status dt_grpc_conn_set_token(dt_grpc_conn *c, const char *token);

/* dt_grpc_conn_set_task_hub: send "taskhub: NAME" (copied; NULL: none) on every later call,
 * so the server acts on that task hub. DT_ERR_INVALID_ARG for a name that cannot be one. */
dt_status dt_grpc_conn_set_task_hub(dt_grpc_conn *c, const char *name, dt_error *err);

/* dt_grpc_conn_set_list_order: send DT_GRPC_LIST_ORDER_METADATA: ORDER ("created", the
 * default, newest first; "id"; NULL: none) on every later call: `dtask serve` lists instances
 * in that order (the protocol's query has no order of its own). DT_ERR_INVALID_ARG for
 * another ORDER. */
#define DT_GRPC_LIST_ORDER_METADATA "dtask-list-order"
dt_status dt_grpc_conn_set_list_order(dt_grpc_conn *c, const char *order);

/* dt_grpc_conn_set_sessions: send DT_SESSIONS_METADATA: "1" on every later call (ON), or
 * not: the worker on this connection keeps extended sessions (core.h). */
void dt_grpc_conn_set_sessions(dt_grpc_conn *c, bool on);

/* dt_grpc_unary: call METHOD ("StartInstance") with REQ; on status OK, *RESP (malloc'd; free
 * with free()) holds the response. Returns DT_OK when the call completed with any status but
 * DEADLINE_EXCEEDED (the status in RES); DT_ERR_TIMEOUT when the deadline passed (RES says
 * DEADLINE_EXCEEDED); DT_ERR_IO when it could not be made; DT_ERR_NOMEM. */
dt_status dt_grpc_unary(dt_grpc_conn *c, const char *method, const uint8_t *req, size_t len,
                        int64_t timeout_ms, uint8_t **resp, size_t *resp_len,
                        dt_grpc_result *res);

/* dt_grpc_done_fn: how a call made with dt_grpc_unary_start ended: ST and RES as
 * dt_grpc_unary returns them, and on status OK the response's LEN bytes at RESP (valid during
 * the call only; RESP may be NULL when LEN is 0). Called once per call, from the connection's
 * own thread, one call at a time, possibly before dt_grpc_unary_start has returned. A callback
 * may start more calls on the connection (DT_ERR_SHUTDOWN once it is closing); it must not
 * close the connection (its thread would be freed under it) or block for long (every other
 * call's callback waits). */
typedef void (*dt_grpc_done_fn)(void *arg, dt_status st, const uint8_t *resp, size_t len,
                                const dt_grpc_result *res);

/* dt_grpc_unary_start: dt_grpc_unary without waiting: call METHOD with REQ (copied), and have
 * DONE(ARG, ...) told how it ended. Many calls may be in flight and hold no thread each; the
 * first such call starts the connection's thread, which all later ones share. DT_OK: DONE
 * will be called (by dt_grpc_conn_close at the latest, which cancels what is still in
 * flight: ST DT_OK, RES CANCELLED). Otherwise DONE never is: DT_ERR_SHUTDOWN from a callback
 * of a connection that is closing, DT_ERR_IO, DT_ERR_NOMEM. As with every call, no thread may
 * start one while another closes the connection. */
dt_status dt_grpc_unary_start(dt_grpc_conn *c, const char *method, const uint8_t *req,
                              size_t len, int64_t timeout_ms, dt_grpc_done_fn done, void *arg);

/* dt_grpc_stream_open: start server-streaming METHOD with REQ. */
dt_status dt_grpc_stream_open(dt_grpc_conn *c, const char *method, const uint8_t *req,
                              size_t len, dt_grpc_stream **out, dt_error *err);

/* dt_grpc_stream_next: the next message (malloc'd) within TIMEOUT_MS. DT_ERR_TIMEOUT if none
 * came yet (the stream stays usable); DT_ERR_NOT_FOUND when the stream ended, with its status
 * in RES. */
dt_status dt_grpc_stream_next(dt_grpc_stream *s, int64_t timeout_ms, uint8_t **msg,
                              size_t *len, dt_grpc_result *res);

/* dt_grpc_stream_close: cancel the stream if still open and free it. */
void dt_grpc_stream_close(dt_grpc_stream *s);

/* A client stream: many messages to one method, no answer to each (durabletask-c's own
 * DT_COMPLETION_STREAM_METHOD). */
typedef struct dt_grpc_sender dt_grpc_sender;

/* dt_grpc_sender_open: start client-streaming PATH ("durabletask.c.Worker/CompleteTasks",
 * without the leading '/') and wait up to TIMEOUT_MS for the server's initial metadata, which
 * must hold the key MARKER (NULL: anything will do). DT_ERR_UNIMPLEMENTED when the server
 * answered so (it has no such method; RES has its status), DT_ERR_TIMEOUT, DT_ERR_IO for
 * anything else (RES may say more), DT_ERR_NOMEM. Close with dt_grpc_sender_close. */
dt_status dt_grpc_sender_open(dt_grpc_conn *c, const char *path, const char *marker,
                              int64_t timeout_ms, dt_grpc_sender **out, dt_grpc_result *res);

/* dt_grpc_sender_send: send LEN bytes at MSG (copied) as the next message; threads take
 * turns. MORE: another message follows at once, so this one may wait in gRPC's buffer and go
 * out with it (one write for both); the last of a burst goes with MORE false. DT_ERR_IO once
 * the stream is over (the server ended it, or went away, or took no message for 30 s: the
 * stream is then cancelled): the message may or may not have arrived, and every later send
 * fails too. */
dt_status dt_grpc_sender_send(dt_grpc_sender *s, const uint8_t *msg, size_t len, bool more);

/* dt_grpc_sender_broken: is the stream over (a send failed, or the server ended it)?
 * Does not wait. */
bool dt_grpc_sender_broken(dt_grpc_sender *s);

/* dt_grpc_sender_close: tell the server there is no more, wait (at most 5 s) for its status,
 * and free S. S may be NULL. */
void dt_grpc_sender_close(dt_grpc_sender *s);

#ifdef __cplusplus
}
#endif
#endif
