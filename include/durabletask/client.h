/* durabletask/client.h — managing instances: start, read state, wait, history, and the
 * lifecycle: raise, terminate, suspend, resume, restart, purge, query. The
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
    /* Id reuse policy: an existing instance with this id is replaced if its status is one of
     * these (a running one is then abandoned), else refused. None given: a finished instance
     * is replaced and a live one refused; none given with REUSE_POLICY set: nothing is
     * replaced (any existing instance refuses the start). */
    const dt_runtime_status *replaceable;
    size_t n_replaceable;
    bool reuse_policy;
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
 * for ID to leave Pending / to finish. DT_ERR_TIMEOUT with the last state seen in *OUT. An
 * instance not started yet is waited for: DT_ERR_NOT_FOUND when there is still none at the
 * timeout (dt_hub_wait). */
dt_status dt_client_wait_start(dt_client *c, const char *id, int64_t timeout_ms,
                               dt_arena *arena, dt_instance_state **out, dt_error *err);
dt_status dt_client_wait_completion(dt_client *c, const char *id, int64_t timeout_ms,
                                    dt_arena *arena, dt_instance_state **out, dt_error *err);

/* dt_client_get_history: the history events of ID in order, in ARENA. */
dt_status dt_client_get_history(dt_client *c, const char *id, dt_arena *arena,
                                dt_event **out, size_t *n_out, dt_error *err);

/* The lifecycle. Each says DT_ERR_NOT_FOUND for an unknown id and DT_ERR_STATE when the
 * instance's state does not allow it (see the dt_hub_* functions of the same name). */

/* dt_client_raise_event: deliver event NAME with JSON DATA to ID. */
dt_status dt_client_raise_event(dt_client *c, const char *id, const char *name,
                                const char *data, dt_error *err);

/* dt_client_terminate: end ID as Terminated with OUTPUT; RECURSE: its children too. */
dt_status dt_client_terminate(dt_client *c, const char *id, const char *output, bool recurse,
                              dt_error *err);

/* dt_client_suspend / dt_client_resume: pause / continue ID, recording REASON (JSON). */
dt_status dt_client_suspend(dt_client *c, const char *id, const char *reason, dt_error *err);
dt_status dt_client_resume(dt_client *c, const char *id, const char *reason, dt_error *err);

/* dt_client_rewind: run failed instance ID again from its last good point (its failed
 * activities and sub-orchestrations run again), recording REASON (text or NULL).
 * DT_ERR_STATE unless it is Failed. */
dt_status dt_client_rewind(dt_client *c, const char *id, const char *reason, dt_error *err);

/* dt_client_restart: a new run of ID's orchestrator with the same input, under the same id
 * or (NEW_ID) a generated one, written to ID_OUT. */
dt_status dt_client_restart(dt_client *c, const char *id, bool new_id,
                            char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err);

/* dt_client_purge: delete finished instance ID and its history. */
dt_status dt_client_purge(dt_client *c, const char *id, dt_error *err);

/* dt_client_purge_where: delete every finished instance FILTER matches; counts in *N. */
dt_status dt_client_purge_where(dt_client *c, const dt_query *filter, size_t *n,
                                dt_error *err);

/* dt_client_query: a page of instances matching Q into ARENA; pass *NEXT back as
 * Q->continuation for the next page; it is NULL after the last. */
dt_status dt_client_query(dt_client *c, const dt_query *q, dt_arena *arena,
                          dt_instance_state **out, size_t *n_out, const char **next,
                          dt_error *err);

/* ---- entities (see dt_hub_signal_entity and the rest in hub.h) ---- */

/* dt_client_signal_entity: send OPERATION with JSON INPUT to entity ID ("@name@key"), one
 * way, delivered at AT (0: at once). */
dt_status dt_client_signal_entity(dt_client *c, const char *id, const char *operation,
                                  const char *input, dt_time at, dt_error *err);

/* dt_client_get_entity: entity ID (with its state if WITH_STATE) into ARENA; DT_ERR_NOT_FOUND
 * while it has no state. */
dt_status dt_client_get_entity(dt_client *c, const char *id, bool with_state, dt_arena *arena,
                               dt_entity_state **out, dt_error *err);

/* dt_client_query_entities: a page of entities matching Q into ARENA (*NEXT as for
 * dt_client_query). */
dt_status dt_client_query_entities(dt_client *c, const dt_entity_query *q, dt_arena *arena,
                                   dt_entity_state **out, size_t *n_out, const char **next,
                                   dt_error *err);

/* dt_client_clean_entities: remove entities without state, lock or messages (REMOVE_EMPTY)
 * and release locks whose holder no longer runs (RELEASE_ORPHANED); counts in *REMOVED and
 * *RELEASED. */
dt_status dt_client_clean_entities(dt_client *c, bool remove_empty, bool release_orphaned,
                                   size_t *removed, size_t *released, dt_error *err);

#ifdef __cplusplus
}
#endif
#endif
