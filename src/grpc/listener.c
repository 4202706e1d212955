/* listener.c — the plaintext gRPC server's own accept loop. gRPC core (1.51) neither counts
 * nor caps connections, and its accept loop stops for good once accept4 fails with EMFILE
 * (grpc/grpc#16058): a client that opened connections up to the descriptor limit kept the
 * server from taking any more, even after it let them go. So the plaintext server binds and
 * accepts itself, hands each connection to gRPC (grpc_server_add_channel_from_fd, which
 * serves it with the server's channel arguments), and keeps at most MAX of them, and at most
 * PER_CLIENT from one IP address: past that a new connection is closed at once, and said so
 * in the log. The server asks it which address a connection it handed gRPC came from
 * (gRPC names such a connection by its descriptor only), for the caps on calls per client.
 * gRPC closes the descriptors it is handed without telling us, so each is remembered with
 * its socket's inode, and the table is swept (fstat) when it is full, at most every
 * SWEEP_EVERY_MS: a descriptor closed, or reused since for another file, is free again; one
 * accept returns again was closed. Accepts come in bursts of at most BURST, so a connect
 * flood never keeps a stop waiting. Every address the host names is listened on (gRPC's own
 * listener did that too), with gRPC's TCP_USER_TIMEOUT.
 * A shortage of descriptors from elsewhere (EMFILE) is met with a spare one, let go for the
 * connection to be accepted and closed, then taken again: the loop never stops. (TLS
 * servers keep gRPC's own listener: gRPC takes plaintext descriptors only.) */
#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/listen.h"
#include "rpc.h"

#define SAY_EVERY_S 10   /* refusals are logged at most this often, with their count */
#define LISTEN_MAX 4     /* sockets: one per address the host resolves to */
#define BURST 64         /* accepts in a row before the loop looks whether to stop */
#define SWEEP_EVERY_MS 100   /* a full table is swept at most this often; in between, refuse */
#define USER_TIMEOUT_MS 20000   /* unacknowledged data this long ends a connection, as gRPC's
                                 * own listener sets it (its keepalive timeout) */

typedef rpc_peer peer;

typedef struct conn {
    int fd;
    ino_t ino;
    peer from;
} conn;

struct rpc_listener {
    grpc_server *server;
    grpc_server_credentials *creds;
    int fds[LISTEN_MAX]; /* listening, non-blocking */
    size_t n_fds;
    int wake[2];         /* a byte in wake[1] ends the loop, */
    atomic_bool stop;    /* ... and this, which a burst of accepts looks at */
    int spare;           /* held for a shortage of descriptors */
    pthread_t thread;
    conn *conns;         /* handed to gRPC: N of at most MAX; the accept loop's, which
                          * changes them under conns_mu (rpc_listener_peer reads them) */
    pthread_mutex_t conns_mu;
    unsigned n, max, per_client;
    unsigned long refused;
    time_t said;         /* refusals last logged */
    struct timespec swept;   /* the full table last swept */
};

static void nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static long ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000L + (now.tv_nsec - t->tv_nsec) / 1000000L;
}

/* sweep: forget the connections gRPC has closed (one fstat each: not for every connection a
 * flood brings while the table is full) */
static void sweep(rpc_listener *l)
{
    if (ms_since(&l->swept) < SWEEP_EVERY_MS)
        return;
    clock_gettime(CLOCK_MONOTONIC, &l->swept);
    pthread_mutex_lock(&l->conns_mu);
    for (unsigned i = 0; i < l->n;) {
        struct stat st;
        if (fstat(l->conns[i].fd, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == l->conns[i].ino)
            i++;
        else
            l->conns[i] = l->conns[--l->n];
    }
    pthread_mutex_unlock(&l->conns_mu);
}

static void refuse(rpc_listener *l, int fd, const char *why)
{
    close(fd);
    l->refused++;
    time_t now = time(NULL);
    if (now - l->said >= SAY_EVERY_S) {
        dt_log(DT_LOG_WARN, NULL, "gRPC: %lu connection(s) closed at once: %s", l->refused, why);
        l->said = now;
        l->refused = 0;
    }
}

bool rpc_peer_same(const rpc_peer *a, const rpc_peer *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

rpc_peer rpc_peer_of(const struct sockaddr_storage *a)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    peer p = {0};
    if (a->ss_family == AF_INET) {
        p.len = 4;
        memcpy(p.b, &((const struct sockaddr_in *)a)->sin_addr, 4);
    } else if (a->ss_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr;
        bool v4 = memcmp(b, mapped, sizeof mapped) == 0;
        p.len = v4 ? 4 : 16;
        memcpy(p.b, v4 ? b + 12 : b, p.len);
    }
    return p;
}

/* slot_of: where FD goes in the table: the entry of a connection gRPC closed that had its
 * number, or the end; and in *FROM_PEER how many others come from FROM */
static unsigned slot_of(const rpc_listener *l, int fd, const peer *from, unsigned *from_peer)
{
    unsigned at = l->n;
    *from_peer = 0;
    for (unsigned i = 0; i < l->n; i++) {
        if (l->conns[i].fd == fd)
            at = i;
        else if (rpc_peer_same(&l->conns[i].from, from))
            (*from_peer)++;
    }
    return at;
}

/* admit: FD, just accepted from FROM, to gRPC, if there is room: in all, and for FROM */
static void admit(rpc_listener *l, int fd, const peer *from)
{
    unsigned same, i = slot_of(l, fd, from, &same);
    if ((i == l->n && l->n == l->max) || same >= l->per_client) {
        sweep(l);
        i = slot_of(l, fd, from, &same);
    }
    if (i == l->n && l->n == l->max) {
        refuse(l, fd, "the server holds as many as it keeps (--max-connections)");
        return;
    }
    if (same >= l->per_client) {
        refuse(l, fd, "one address holds as many as it may (--max-per-client)");
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return;
    }
    int one = 1;   /* as gRPC's own listener sets it: small messages go out at once */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&l->conns_mu);
    if (i == l->n)
        l->n++;
    l->conns[i] = (conn){fd, st.st_ino, *from};
    pthread_mutex_unlock(&l->conns_mu);
    grpc_server_add_channel_from_fd(l->server, fd, l->creds);
}

/* shed: out of descriptors: the spare one makes room to take a connection and close it, so
 * it leaves the backlog (and its client hears at once) instead of waking the loop for ever */
static void shed(rpc_listener *l, int lfd)
{
    if (l->spare < 0)   /* taken by another thread last time: try again */
        l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (l->spare >= 0) {
        close(l->spare);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            refuse(l, fd, "the process is out of file descriptors");
        l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    nap_ms(10);
}

/* take: up to BURST connections waiting on listening socket LFD */
static void take(rpc_listener *l, int lfd)
{
    for (int i = 0; i < BURST && !atomic_load(&l->stop); i++) {
        struct sockaddr_storage a;
        socklen_t len = sizeof a;
        int fd = accept4(lfd, (struct sockaddr *)&a, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            peer from = rpc_peer_of(&a);
            admit(l, fd, &from);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE)
            shed(l, lfd);
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            nap_ms(10);   /* ENOBUFS, ENOMEM...: not a busy loop meanwhile */
        return;
    }
}

static void *accept_main(void *arg)
{
    rpc_listener *l = arg;
    struct pollfd p[LISTEN_MAX + 1];
    for (size_t i = 0; i < l->n_fds; i++)
        p[i] = (struct pollfd){.fd = l->fds[i], .events = POLLIN};
    p[l->n_fds] = (struct pollfd){.fd = l->wake[0], .events = POLLIN};
    while (!atomic_load(&l->stop)) {
        if (poll(p, l->n_fds + 1, -1) < 0) {
            if (errno != EINTR)
                nap_ms(10);
            continue;
        }
        for (size_t i = 0; i < l->n_fds; i++)
            if (p[i].revents)
                take(l, l->fds[i]);
    }
    return NULL;
}

/* close_sockets: the listening sockets, the wake pipe and the spare descriptor: a stopped
 * listener takes no connection into its backlog (clients are refused at once) */
static void close_sockets(rpc_listener *l)
{
    for (size_t i = 0; i < l->n_fds; i++)
        close(l->fds[i]);
    l->n_fds = 0;
    for (int i = 0; i < 2; i++)
        if (l->wake[i] >= 0)
            close(l->wake[i]);
    l->wake[0] = l->wake[1] = -1;
    if (l->spare >= 0)
        close(l->spare);
    l->spare = -1;
}

static void listener_free(rpc_listener *l)
{
    close_sockets(l);
    if (l->creds)
        grpc_server_credentials_release(l->creds);
    free(l->conns);
    pthread_mutex_destroy(&l->conns_mu);
    free(l);
}

bool rpc_listener_peer(rpc_listener *l, int fd, rpc_peer *out)
{
    bool found = false;
    pthread_mutex_lock(&l->conns_mu);
    for (unsigned i = 0; i < l->n && !found; i++)
        if (l->conns[i].fd == fd) {
            *out = l->conns[i].from;
            found = true;
        }
    pthread_mutex_unlock(&l->conns_mu);
    return found;
}

dt_status rpc_listener_start(grpc_server *server, const char *addr, unsigned max,
                             unsigned per_client, rpc_listener **out, int *port, dt_error *err)
{
    *out = NULL;
    rpc_listener *l = calloc(1, sizeof *l);
    if (l == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    l->spare = l->wake[0] = l->wake[1] = -1;
    pthread_mutex_init(&l->conns_mu, NULL);
    l->server = server;
    l->max = max ? max : 1;
    l->per_client = per_client && per_client < l->max ? per_client : l->max;
    bool ipv6 = false;   /* gRPC learns the family from the descriptor */
    dt_status st = core_listen_all("gRPC", addr, l->fds, LISTEN_MAX, &l->n_fds, &ipv6, err);
    if (st != DT_OK) {
        listener_free(l);
        return st;
    }
    bool nonblocking = true;
    for (size_t i = 0; i < l->n_fds; i++) {
        int ms = USER_TIMEOUT_MS;   /* accepted connections inherit it */
        setsockopt(l->fds[i], IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
        nonblocking &= fcntl(l->fds[i], F_SETFL, fcntl(l->fds[i], F_GETFL) | O_NONBLOCK) == 0;
    }
    if (!nonblocking || (l->conns = calloc(l->max, sizeof *l->conns)) == NULL ||
        (l->creds = grpc_insecure_server_credentials_create()) == NULL ||
        pipe2(l->wake, O_CLOEXEC) != 0 ||
        (l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 ||
        pthread_create(&l->thread, NULL, accept_main, l) != 0) {
        listener_free(l);
        return dt_error_set(err, DT_ERR_NOMEM, "gRPC: cannot start the listener on %s", addr);
    }
    *port = core_bound_port(l->fds[0]);
    *out = l;
    return DT_OK;
}

void rpc_listener_stop(rpc_listener *l)
{
    if (l == NULL)
        return;
    atomic_store(&l->stop, true);
    char b = 0;
    while (write(l->wake[1], &b, 1) < 0 && errno == EINTR)
        ;
    pthread_join(l->thread, NULL);
    close_sockets(l);
}

void rpc_listener_free(rpc_listener *l)
{
    if (l)
        listener_free(l);
}
