/* listen.h — what the servers (HTTP, gRPC) share about sockets (internal; not installed):
 * a listening socket for "ADDR:PORT", its port, and how many connections a server may keep
 * within the process's descriptor limit. */
#ifndef DT_CORE_LISTEN_H
#define DT_CORE_LISTEN_H

#include <stdbool.h>

#include "durabletask/core.h"

/* core_listen: a listening socket (close-on-exec, blocking) for ADDR ("ADDR:PORT",
 * "[V6]:PORT", ":PORT" for every address), into *FD; *IPV6 says its family. WHAT ("HTTP",
 * "gRPC") names the server in ERR. */
dt_status core_listen(const char *what, const char *addr, int *fd, bool *ipv6, dt_error *err);

/* core_listen_all: as core_listen, but a socket for each address ADDR's host resolves to
 * (at most MAX, into FDS; *N of them, all on one port; *IPV6 the first's family), and for
 * every address ("", "0.0.0.0", "::") one socket for IPv6 and IPv4 both where the system has
 * IPv6: what gRPC's own listener binds. */
dt_status core_listen_all(const char *what, const char *addr, int *fds, size_t max, size_t *n,
                          bool *ipv6, dt_error *err);

/* core_bound_port: the port FD is bound to, or -1. */
int core_bound_port(int fd);

/* core_fd_share: WANT connections, kept under 1/PARTS of the process's descriptor limit,
 * which the store, the servers and their connections share (but at least 16, or WANT). */
unsigned core_fd_share(unsigned want, unsigned parts);

/* core_raise_fd_limit: the soft descriptor limit raised to the hard one, or 65,536 if that is
 * lower (a server's connections are capped within it; the default soft limit, often 1,024,
 * is low for one) */
void core_raise_fd_limit(void);

#endif
