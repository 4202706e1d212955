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

dt_status core_listen(const char *what, const char *addr, int *fd, bool *ipv6, dt_error *err)
{
    *fd = -1;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) > 65535)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s listen address '%s' is not ADDR:PORT",
                            what, addr);
    char host[256];
    size_t hn = (size_t)(colon - addr);
    const char *h = addr;
    if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
    }
    if (hn >= sizeof host)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s listen address '%s' is too long", what,
                            addr);
    memcpy(host, h, hn);
    host[hn] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(hn ? host : NULL, colon + 1, &hints, &res);
    if (gai != 0)
        return dt_error_set(err, DT_ERR_IO, "cannot listen on %s for %s: %s", addr, what,
                            gai_strerror(gai));
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai && *fd < 0; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (s < 0) {
            last_errno = errno;
            continue;
        }
        int one = 1;
        if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(s, ai->ai_addr, ai->ai_addrlen) != 0 || listen(s, SOMAXCONN) != 0) {
            last_errno = errno;
            close(s);
            continue;
        }
        *ipv6 = ai->ai_family == AF_INET6;
        *fd = s;
    }
    freeaddrinfo(res);
    if (*fd < 0)
        return dt_error_set(err, DT_ERR_IO, "cannot listen on %s for %s: %s", addr, what,
                            strerror(last_errno ? last_errno : EADDRNOTAVAIL));
    return DT_OK;
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
    return rl.rlim_cur / parts > 16 ? (unsigned)(rl.rlim_cur / parts) : 16;
}

void core_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);   /* a refusal leaves the limit as it was */
    }
}
