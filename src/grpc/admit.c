/* admit.c — who may take a slot of the gRPC server: the bearer token, when the server wants
 * one, and the caps on calls and work item streams at once, the server's and each client's
 * (an IP address: gRPC's name for the peer, or the listener's for a connection it handed
 * over). The poller asks before any thread takes a call or any read waits on its client. */
#include <arpa/inet.h>
#include <grpc/support/alloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_internal.h"

/* rpc_authorized: the token comes as "authorization: Bearer <token>"; the comparison takes
 * the same time wherever the first difference is. */
bool rpc_authorized(const rpc_call *c)
{
    const char *token = c->srv->token;
    if (token == NULL)
        return true;
    for (size_t i = 0; i < c->metadata.count; i++) {
        const grpc_metadata *md = &c->metadata.metadata[i];
        if (grpc_slice_str_cmp(md->key, "authorization") != 0)
            continue;
        size_t len = GRPC_SLICE_LENGTH(md->value), tlen = strlen(token);
        const unsigned char *v = GRPC_SLICE_START_PTR(md->value);
        if (len != tlen + 7 || memcmp(v, "Bearer ", 7) != 0)
            return false;
        unsigned char diff = 0;
        for (size_t k = 0; k < tlen; k++)
            diff |= (unsigned char)(v[7 + k] ^ (unsigned char)token[k]);
        return diff == 0;
    }
    return false;
}

/* call_peer: the address call C came from. gRPC names it ("ipv4:ADDR:PORT",
 * "ipv6:[ADDR]:PORT"), or, on a connection our listener handed it, names the descriptor
 * ("fd:N"), whose address the listener knows. What cannot be told counts as one client. */
static rpc_peer call_peer(dt_grpc_server *srv, rpc_call *c)
{
    rpc_peer p = {0};
    char *name = grpc_call_get_peer(c->call);
    if (name == NULL)
        return p;
    struct sockaddr_storage a = {0};
    char addr[64] = "";
    const char *at = NULL, *end = NULL;
    if (strncmp(name, "fd:", 3) == 0) {
        if (srv->listener)
            rpc_listener_peer(srv->listener, atoi(name + 3), &p);
    } else if (strncmp(name, "ipv4:", 5) == 0) {
        at = name + 5;
        end = strrchr(at, ':');
        a.ss_family = AF_INET;
    } else if (strncmp(name, "ipv6:", 5) == 0) {
        at = name + 5 + (name[5] == '[') + 3 * (strncmp(name + 5, "%5B", 3) == 0);
        end = name[5] == '[' ? strchr(at, ']') : strstr(at, "%5D");
        a.ss_family = AF_INET6;
    }
    if (at && end && end > at && (size_t)(end - at) < sizeof addr) {
        memcpy(addr, at, (size_t)(end - at));
        addr[strcspn(addr, "%")] = '\0';   /* an IPv6 zone ("%25eth0") names no other client */
        void *dst = a.ss_family == AF_INET ? (void *)&((struct sockaddr_in *)&a)->sin_addr
                                           : (void *)&((struct sockaddr_in6 *)&a)->sin6_addr;
        if (inet_pton(a.ss_family, addr, dst) == 1)
            p = rpc_peer_of(&a);
    }
    gpr_free(name);
    return p;
}

static unsigned client_bucket(const rpc_peer *p)
{
    unsigned h = 2166136261u;   /* FNV-1a */
    for (unsigned i = 0; i < p->len; i++)
        h = (h ^ p->b[i]) * 16777619u;
    return h % CLIENT_BUCKETS;
}

/* client_find: the count of client P (srv->mu held), or NULL when it holds no slot */
static client_calls *client_find(dt_grpc_server *srv, const rpc_peer *p)
{
    client_calls *k = srv->clients[client_bucket(p)];
    while (k && !rpc_peer_same(&k->from, p))
        k = k->next;
    return k;
}

/* rpc_client_let_go: a client with no slot left is forgotten */
void rpc_client_let_go(dt_grpc_server *srv, rpc_call *c)
{
    client_calls *k = c->client;
    if (k == NULL)
        return;
    c->client = NULL;
    k->calls--;
    k->streams -= c->stream;
    if (k->calls > 0)
        return;
    client_calls **at = &srv->clients[client_bucket(&k->from)];
    while (*at != k)
        at = &(*at)->next;
    *at = k->next;
    free(k);
}

/* peer_text: P as text in BUF, for a refusal: BUF */
static const char *peer_text(const rpc_peer *p, char *buf, size_t size)
{
    if (p->len == 0 || !inet_ntop(p->len == 4 ? AF_INET : AF_INET6, p->b, buf, (socklen_t)size))
        snprintf(buf, size, "unknown");
    return buf;
}

bool rpc_take_slot(dt_grpc_server *srv, rpc_call *c, char *msg, size_t size)
{
    c->stream = strcmp(c->method, "GetWorkItems") == 0 ||
                strcmp(c->method, DT_COMPLETION_STREAM_METHOD) == 0;
    rpc_peer from = call_peer(srv, c);
    char who[INET6_ADDRSTRLEN];
    msg[0] = '\0';
    pthread_mutex_lock(&srv->mu);
    client_calls *k = client_find(srv, &from);
    if (srv->n_calls >= srv->max_calls)
        snprintf(msg, size, "the server is serving its limit of %d calls at once (dtask "
                 "serve --max-calls); try again later", srv->max_calls);
    else if (c->stream && srv->n_streams >= srv->max_streams)
        snprintf(msg, size, "the server is serving its limit of %d streams (work items, "
                 "completions) at once (dtask serve --max-streams); try again later",
                 srv->max_streams);
    else if (k && k->calls >= srv->max_client_calls)
        snprintf(msg, size, "the server is serving its limit of %d calls at once from one "
                 "client, %s (dtask serve --max-calls-per-client); try again later",
                 srv->max_client_calls, peer_text(&from, who, sizeof who));
    else if (k && c->stream && k->streams >= srv->max_client_streams)
        snprintf(msg, size, "the server is serving its limit of %d streams at once from "
                 "one client, %s (dtask serve --max-streams-per-client); try again later",
                 srv->max_client_streams, peer_text(&from, who, sizeof who));
    else if (k == NULL && (k = calloc(1, sizeof *k)) != NULL) {
        unsigned b = client_bucket(&from);
        k->from = from;
        k->next = srv->clients[b];
        srv->clients[b] = k;
    }
    if (msg[0] == '\0' && k == NULL)
        snprintf(msg, size, "the server is out of memory; try again later");
    if (msg[0] == '\0') {
        srv->n_calls++;
        srv->n_streams += c->stream;
        k->calls++;
        k->streams += c->stream;
        c->client = k;
        c->counted = true;
    }
    pthread_mutex_unlock(&srv->mu);
    if (msg[0] == '\0')
        return true;
    c->stream = false;
    return false;
}
