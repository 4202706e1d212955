/* server_internal.h — what the gRPC server's own files share (server.c: the calls, the poller,
 * the threads; held.c: the bytes held and the sends not taken; admit.c: who may take a slot;
 * stream.c: a worker's completion stream): the server and call records, and the functions
 * each file lends the others. Handlers see none of it: rpc.h is theirs. */
#ifndef DT_GRPC_SERVER_INTERNAL_H
#define DT_GRPC_SERVER_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <stdatomic.h>

#include "core/budget.h"
#include "rpc.h"

#define SEND_QUEUE_MAX 32      /* a stream's messages waiting to be sent, at most */
#define SEND_QUEUE_BYTES ((size_t)4 << 20)   /* ... and their bytes (one larger goes alone) */
#define ASYNC_MAX ((size_t)256 << 10)        /* larger requests are unpacked on a thread */

typedef enum tag_kind {
    TAG_NEW_CALL, TAG_BATCH, TAG_RECV, TAG_SEND, TAG_FINISH, TAG_CLOSE, TAG_SHUTDOWN
} tag_kind;

/* What the completion queue hands back: which call, and which of its operations. */
typedef struct rpc_tag {
    tag_kind kind;
    rpc_call *call;
} rpc_tag;

/* The calls and streams counted for one client (an IP address), while it has any: the caps
 * per client keep one from taking every slot. */
#define CLIENT_BUCKETS 256
typedef struct client_calls {
    struct client_calls *next;
    rpc_peer from;
    int calls, streams;
} client_calls;

struct dt_grpc_server {
    dt_hub *hub;                /* one hub, or: */
    dt_hub_set *hubs;           /* task hubs, chosen by each call's "taskhub" metadata */
    char *token;                /* required bearer token, or NULL */
    worker_registry *workers;
    grpc_server *server;
    rpc_listener *listener;     /* plaintext: our accept loop; TLS: NULL, gRPC's own */
    grpc_completion_queue *cq;
    pthread_t poller;
    bool poller_started;
    bool sync_made;             /* mu, idle and work exist */
    int port;
    int64_t health_ping_ms;
    size_t max_message;         /* the largest message sent or received */
    int max_calls, max_streams;
    int max_client_calls, max_client_streams;   /* of them, from one IP address */
    int64_t request_timeout_ms;
    int64_t send_timeout_ms;
    bool no_completion_stream;  /* DT_COMPLETION_STREAM_METHOD answered UNIMPLEMENTED */
    /* the bytes of messages held for calls (held.c); stream senders that wait for
     * room wait on `room` under held_mu, counted in room_waiters */
    core_budget held;
    pthread_mutex_t held_mu;
    pthread_cond_t room;
    atomic_int room_waiters;
    atomic_int waiting_calls;   /* unary calls whose result waits for room (rpc_waits) */
    atomic_bool stopping;
    /* call threads: mu guards all below. A thread that finished its call waits (on `work`)
     * for the next one, so a busy server does not create a thread per call; one that waits
     * longer than IDLE_EXIT_S goes away. */
    pthread_mutex_t mu;
    pthread_cond_t idle;        /* n_threads or n_calls reached 0 */
    pthread_cond_t work;        /* a call was queued for an idle thread, or stopping */
    int n_threads;
    int n_idle;
    int n_soon;                 /* threads done with a call, on their way to take the next */
    int n_calls;                /* calls taken, until served (n_calls <= max_calls) */
    int n_streams;              /* of them, GetWorkItems streams (<= max_streams) */
    rpc_call *queue_head, *queue_tail;
    client_calls *clients[CLIENT_BUCKETS];   /* the calls counted, by their client */
    /* calls whose request message the poller waits for, oldest (first due) first; the
     * poller's alone */
    rpc_call *recv_head, *recv_tail;
    /* calls with a message out to their client, oldest first (held.c) */
    pthread_mutex_t send_mu;
    rpc_call *sends_head, *sends_tail;
};

struct rpc_call {
    dt_grpc_server *srv;
    client_calls *client;       /* its client's count, while it holds a slot (counted) */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array metadata;
    char method[128];
    rpc_tag new_tag, batch_tag, recv_tag, send_tag, finish_tag, close_tag;
    /* mu guards everything below; the poller sets the flags, the call's thread waits. The
     * call is freed (settle) once nobody holds it: no thread or handler (OWNED), no batch
     * out, and its close watch done. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool owned;                 /* the poller, a thread or an asynchronous handler has it */
    bool async_owned;           /* ... an asynchronous handler: its rpc_finish lets go */
    bool batch_done, batch_ok;
    bool recv_pending, send_pending, finish_pending;
    bool finished;              /* rpc_finish was called */
    bool closed;                /* RECV_CLOSE_ON_SERVER completed */
    bool broken;                /* a stream message could not be sent */
    int cancelled;
    bool close_started;
    bool counted;               /* holds a slot (srv->n_calls) */
    bool md_sent;               /* initial metadata is out */
    bool stream;                /* a GetWorkItems or completion stream: in srv->n_streams */
    bool reap;                  /* to be let go of on a call thread (see rpc_finish) */
    /* a stream's messages: the one being sent, and those waiting behind it */
    grpc_byte_buffer *sending;
    size_t sending_len;
    grpc_byte_buffer *send_queue[SEND_QUEUE_MAX];
    size_t send_first, send_n, send_bytes;
    /* the answer being sent, freed when gRPC is done with it */
    grpc_byte_buffer *finish_bb;
    size_t finish_len;
    grpc_slice finish_details;
    bool has_details;
    /* the request message, as the poller received it */
    uint8_t *req_data;
    size_t req_len;
    size_t req_held;            /* the request's bytes, held until the call is freed */
    size_t tree_held;           /* ... and what unpacking it took (unpack) */
    bool have_req;
    /* waiting for its request message (the poller's list): until when */
    bool in_recv_list, timed_out;
    gpr_timespec recv_deadline;
    struct rpc_call *recv_prev, *recv_next;
    /* a message out (answer or stream message): in the server's sends list, due then */
    bool in_sends;
    gpr_timespec send_deadline;
    struct rpc_call *send_prev, *send_next;
    char task_hub[DT_TASK_HUB_NAME_MAX + 1];   /* from the metadata; "" if too long */
    dt_hub *hub;                /* the call's hub, and the reference that holds it */
    dt_hub_ref *hub_ref;
    grpc_byte_buffer *recv_buf;
    struct rpc_call *next;      /* in the queue for an idle thread */
    /* a completion stream (DT_COMPLETION_STREAM_METHOD): its children in service (under mu) */
    bool reader;                /* it is one */
    bool ended;                 /* no more messages: the client's last came, or it went away */
    bool finish_due;            /* it ended while held (OWNED): release finishes it */
    int children, slow_children;
    size_t children_bytes;
    int waiting, waiting_slow;  /* children out of the window, waiting for room (rpc_waits), */
    size_t waiting_bytes;       /* ... of them on threads, and their bytes */
    /* a child: one message of a completion stream, served as a call of its own */
    struct rpc_call *parent;
    size_t child_bytes;         /* the message's size, as counted in the parent's window */
    bool slow;                  /* served on a thread */
    bool waits;                 /* its result waits for room: a child in its parent's
                                 * WAITING, a unary call in the server's waiting_calls */
};

/* ---- server.c ---------------------------------------------------------------------------- */

/* rpc_call_new: a call record for SRV, held by the poller (NULL: out of memory);
 * rpc_call_free frees one nothing holds, and what it holds. */
rpc_call *rpc_call_new(dt_grpc_server *srv);
void rpc_call_free(rpc_call *c);

/* rpc_settle: unlock C's mutex (held) and free C if nothing holds it any more. */
void rpc_settle(rpc_call *c);

/* rpc_to_thread: serve C on a call thread, an idle one or a new one. */
void rpc_to_thread(dt_grpc_server *srv, rpc_call *c);

/* rpc_find_method: the method table's entry for METHOD, or NULL. */
const rpc_method *rpc_find_method(const char *method);

/* rpc_take_received: the bytes of the message C's read brought (malloc'd, *LEN of them; NULL
 * if none or out of memory), its buffer freed. */
uint8_t *rpc_take_received(rpc_call *c, size_t *len);

/* ---- held.c ------------------------------------------------------------------------------ */

/* rpc_hold: count N more bytes held; false (nothing counted) if they do not fit, unless
 * FORCE. rpc_unhold gives N back and wakes the senders waiting for room. */
bool rpc_hold(dt_grpc_server *srv, size_t n, bool force);
void rpc_unhold(dt_grpc_server *srv, size_t n);

/* rpc_hold_answer: count an answer of N bytes; false if it is larger than the floor every
 * answer may have and does not fit. */
bool rpc_hold_answer(dt_grpc_server *srv, size_t n);

/* rpc_hold_waiting: hold N bytes for a stream message of C, waiting for room; false if C
 * closes (or the server stops) first. */
bool rpc_hold_waiting(rpc_call *c, size_t n);

/* rpc_drop_sent: free BB, a message of N bytes the server sent (or meant to), and what it
 * held; rpc_drop_unsent: the same for one never given to gRPC. */
void rpc_drop_sent(dt_grpc_server *srv, grpc_byte_buffer *bb, size_t n);
void rpc_drop_unsent(dt_grpc_server *srv, grpc_byte_buffer *bb);

/* rpc_held_refusal: the words a refused request or answer (WHAT, N bytes) ends with, into
 * MSG. */
void rpc_held_refusal(dt_grpc_server *srv, const char *what, size_t n, char *msg, size_t size);

/* rpc_sends_add: C's message goes out now, due within the send timeout; rpc_sends_remove:
 * it went (or never started); rpc_expire_sends (the poller): end the calls whose message has
 * waited too long, when the held bytes are under pressure. */
void rpc_sends_add(rpc_call *c);
void rpc_sends_remove(rpc_call *c);
void rpc_expire_sends(dt_grpc_server *srv);

/* ---- admit.c ----------------------------------------------------------------------------- */

/* rpc_authorized: C carries the bearer token the server wants, or it wants none. */
bool rpc_authorized(const rpc_call *c);

/* rpc_take_slot: count call C against the caps on calls and streams, the server's and its
 * client's; false, with the refusal in MSG, when one is reached. rpc_client_let_go: C gives
 * its client's slot back (srv->mu held). */
bool rpc_take_slot(dt_grpc_server *srv, rpc_call *c, char *msg, size_t size);
void rpc_client_let_go(dt_grpc_server *srv, rpc_call *c);

/* ---- stream.c ---------------------------------------------------------------------------- */

/* rpc_stream_received: completion stream C's read finished (OK: with a message): serve the
 * message as a child call. */
void rpc_stream_received(dt_grpc_server *srv, rpc_call *c, bool ok);

/* rpc_child_finish: child C is answered (CODE, MESSAGE), and nobody hears it; with ENDS, a
 * RESOURCE_EXHAUSTED ends its stream (no room to read it: its item is not known);
 * rpc_child_done: C is being freed, which makes room in its stream's window. */
void rpc_child_finish(rpc_call *c, grpc_status_code code, const char *message, bool ends);
void rpc_child_done(rpc_call *c);

#endif
