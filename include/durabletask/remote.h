/* durabletask/remote.h — the C SDK as a remote worker: the orchestrators and activities
 * registered on a dt_worker (sdk.h), run for a Durable Task gRPC server (`dtask serve`, a
 * sidecar, the Durable Task Scheduler) instead of an in-process hub. One thread holds the
 * server's work item stream and reconnects with backoff whenever it ends; a pool runs the
 * work through the same executor the in-process worker uses. */
#ifndef DURABLETASK_REMOTE_H
#define DURABLETASK_REMOTE_H

#include "durabletask/core.h"
#include "durabletask/sdk.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_remote_worker dt_remote_worker;

typedef struct dt_remote_options {
    int threads;                 /* work items run at once; 0: 6 */
    const char *token;           /* bearer token the server requires, or NULL (copied) */
    const char *task_hub;        /* the task hub to work for (the "taskhub" metadata), or NULL
                                  * for the server's default (copied) */
} dt_remote_options;

/* dt_remote_worker_start: run W's orchestrators and activities for the server at TARGET
 * ("127.0.0.1:4001"; NULL: DT_DEFAULT_GRPC_ADDRESS). The server is asked only for work W has
 * registered names for, so workers of other languages can share it. Returns at once; the
 * worker connects (and reconnects) in the background. W must not change and must outlive the
 * remote worker. Stop with dt_remote_worker_stop. */
dt_status dt_remote_worker_start(dt_worker *w, const char *target, const dt_remote_options *opts,
                                 dt_remote_worker **out, dt_error *err);

/* dt_remote_worker_stop: stop, drop work received but not yet run (the server redelivers it
 * when its lease ends), and free R. R may be NULL. */
void dt_remote_worker_stop(dt_remote_worker *r);

#ifdef __cplusplus
}
#endif
#endif
