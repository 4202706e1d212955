/* listen.c — listening sockets for the servers, and their share of the descriptor limit. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/listen.h"

/* the soft descriptor limit is raised no higher: a quarter of it is already 16,384 gRPC
 * connections */
#define FD_LIMIT_CEILING 65536

/* split: ADDR ("ADDR:PORT", "[V6]:PORT", ":PORT") into HOST (without brackets; "" for
 * every address) and PORT. */
static dt_status split(const char *what, const char *addr, char host[256], const char **port,
                       dt_error *err)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) > 65535)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s listen address '%s' is not ADDR:PORT",
                            what, addr);
    size_t hn = (size_t)(colon - addr);
    const char *h = addr;
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    if (hn >= 256)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s listen address '%s' is too long", what,
                            addr);
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = colon + 1;
    return DT_OK;
}

/* bind_one: a listening socket on AI (IPv6 and IPv4 both when DUAL), or -1 with *ERRNO_OUT */
static int bind_one(const struct addrinfo *ai, bool dual, int *errno_out)
{
    int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (s < 0) {
        *errno_out = errno;
        return -1;
    }
    int one = 1, zero = 0;
    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (dual && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) ||
        bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, SOMAXCONN) != 0) {
        *errno_out = errno;
        close(s);
        return -1;
    }
    return s;
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* listen_on: core_listen_all's work; DUAL: every address is one dual-stack socket */
static dt_status listen_on(const char *what, const char *addr, int *fds, size_t max, size_t *n,
                           bool *ipv6, bool dual, dt_error *err)
{
    *n = 0;
    char host[256];
    const char *port = NULL;
    dt_status st = split(what, addr, host, &port, err);
    if (st != DT_OK)
        return st;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int last_errno = 0;
    /* every address ("", "0.0.0.0", "::"): IPv6 and IPv4 on one socket where the system has
     * IPv6, as gRPC's own listener takes them; otherwise as the name resolves */
    bool every = host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
    if (dual && every && max > 0) {
        hints.ai_family = AF_INET6;
        hints.ai_flags |= AI_NUMERICHOST;
        if (getaddrinfo("::", port, &hints, &res) == 0 && res &&
            (fds[0] = bind_one(res, true, &last_errno)) >= 0) {
            *n = 1;
            *ipv6 = true;
        }
        freeaddrinfo(res);
        res = NULL;
        hints.ai_family = AF_UNSPEC;
        hints.ai_flags &= ~AI_NUMERICHOST;
        if (*n)
            return DT_OK;
    }
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
    if (gai != 0)
        return dt_error_set(err, DT_ERR_IO, "cannot listen on %s for %s: %s", addr, what,
                            gai_strerror(gai));
    /* a name may resolve to several addresses (localhost: ::1 and 127.0.0.1): each is bound,
     * on the port the first got when it was 0 */
    int first_port = 0;
    for (struct addrinfo *ai = res; ai && *n < max; ai = ai->ai_next) {
        if (first_port)
            set_port(ai->ai_addr, first_port);
        int s = bind_one(ai, false, &last_errno);
        if (s < 0)
            continue;
        if (*n == 0) {
            *ipv6 = ai->ai_family == AF_INET6;
            first_port = core_bound_port(s);
        }
        fds[(*n)++] = s;
    }
    freeaddrinfo(res);
    if (*n == 0)
        return dt_error_set(err, DT_ERR_IO, "cannot listen on %s for %s: %s", addr, what,
                            strerror(last_errno ? last_errno : EADDRNOTAVAIL));
    return DT_OK;
}

dt_status core_listen_all(const char *what, const char *addr, int *fds, size_t max, size_t *n,
                          bool *ipv6, dt_error *err)
{
    return listen_on(what, addr, fds, max, n, ipv6, true, err);
}

dt_status core_listen(const char *what, const char *addr, int *fd, bool *ipv6, dt_error *err)
{
    size_t n = 0;
    *fd = -1;
    return listen_on(what, addr, fd, 1, &n, ipv6, false, err);
}

int core_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

unsigned core_fd_share(unsigned want, unsigned parts)
{
    struct rlimit rl;
    if (parts == 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur / parts >= want)
        return want;
    unsigned share = rl.rlim_cur / parts > 16 ? (unsigned)(rl.rlim_cur / parts) : 16;
    return share < want ? share : want;
}

void core_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max &&
        rl.rlim_cur < FD_LIMIT_CEILING) {
        rl.rlim_cur = rl.rlim_max < FD_LIMIT_CEILING ? rl.rlim_max : FD_LIMIT_CEILING;
        setrlimit(RLIMIT_NOFILE, &rl);   /* a refusal leaves the limit as it was */
    }
}
