/* remote.h — the remote worker's internals (remote.c), started by dt_worker_connect. */
#ifndef DT_SDK_REMOTE_H
#define DT_SDK_REMOTE_H

#include <pthread.h>

#include "durabletask/sdk.h"

typedef struct remote remote;

/* remote_start: run EX's work from the server at TARGET on THREADS threads. ORCHS and ACTS
 * name what EX can run (borrowed until remote_stop): the server is asked for that work only,
 * so workers of other languages on the same hub get theirs. */
dt_status remote_start(const dt_executor *ex, const char *target, const char *token, int threads,
                       const char *const *orchs, size_t n_orchs, const char *const *acts,
                       size_t n_acts, remote **out, dt_error *err);

/* remote_stop: stop, drop work received but not run (the server redelivers it), free R. */
void remote_stop(remote *r);

#endif
