/* durabletask/client.h — managing instances: start, read state, wait, read history. The
 * client works through the hub's client operations; it never reaches into the store. Results
 * are read into an arena the caller passes and frees. */
#ifndef DURABLETASK_CLIENT_H
#define DURABLETASK_CLIENT_H

#include "durabletask/core.h"
#include "durabletask/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_client dt_client;

/* dt_client_new: a client of HUB (which must outlive it). Free with dt_client_free. */
dt_status dt_client_new(dt_hub *hub, dt_client **out);
void dt_client_free(dt_client *c);

typedef struct dt_start_options {
    const char *instance_id;     /* NULL: generated */
    const char *input;           /* JSON or NULL */
    const char *version;
    dt_time start_at;            /* 0: at once; else the scheduled start time */
} dt_start_options;

/* dt_client_start: start orchestrator NAME. OPTS may be NULL. The instance id is written to
 * ID_OUT. DT_ERR_INVALID_ARG for a bad id or input that is not JSON, DT_ERR_ALREADY_EXISTS
 * when a live instance has that id; nothing is stored then. */
dt_status dt_client_start(dt_client *c, const char *name, const dt_start_options *opts,
                          char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err);

/* dt_client_get: the state of ID (status, input, output, custom status, failure, times) in
 * ARENA. DT_ERR_NOT_FOUND if there is no such instance. */
dt_status dt_client_get(dt_client *c, const char *id, dt_arena *arena,
                        dt_instance_state **out, dt_error *err);

/* dt_client_wait_start / dt_client_wait_completion: wait up to TIMEOUT_MS (negative: no limit)
 * for ID to leave Pending / to finish. DT_ERR_TIMEOUT with the last state seen in *OUT. */
dt_status dt_client_wait_start(dt_client *c, const char *id, int64_t timeout_ms,
                               dt_arena *arena, dt_instance_state **out, dt_error *err);
dt_status dt_client_wait_completion(dt_client *c, const char *id, int64_t timeout_ms,
                                    dt_arena *arena, dt_instance_state **out, dt_error *err);

/* dt_client_get_history: the history events of ID in order, in ARENA. */
dt_status dt_client_get_history(dt_client *c, const char *id, dt_arena *arena,
                                dt_event **out, size_t *n_out, dt_error *err);

#ifdef __cplusplus
}
#endif
#endif
