/* durabletask/hub.h — the engine. The hub takes client commands, leases work items to
 * workers (pulled through this API, or run in-process by its dispatch loops with an executor),
 * turns an orchestrator's actions into new history and messages, and commits each episode in
 * one store transaction, many episodes per transaction when busy (group commit). It renews the
 * leases of work in flight so that only a dead worker's work is redelivered. */
#ifndef DURABLETASK_HUB_H
#define DURABLETASK_HUB_H

#include "durabletask/core.h"
#include "durabletask/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_hub dt_hub;

/* The SQLite file a hub opens when given none (`dtask serve`, `dtask demo`). */
#define DT_DEFAULT_DB_PATH "./dtask-data/dtask.db"

/* How many activity results, and how many bytes of them, a hub holds waiting for room when
 * dt_hub_options says nothing (see dt_hub_waits_fn). */
#define DT_HUB_WAITING_RESULTS_DEFAULT 1024
#define DT_HUB_WAITING_BYTES_DEFAULT ((size_t)64 << 20)

typedef struct dt_hub_options {
    const char *db_path;        /* SQLite file or postgres:// URL; NULL: DT_DEFAULT_DB_PATH */
    const char *db_schema;      /* PostgreSQL: the schema of its tables; NULL: "dtask" */
    dt_store *store;            /* or an open store, which the hub then owns; overrides db_path */
    dt_sync_mode sync;          /* SQLite durability; default DT_SYNC_FULL */
    int64_t lease_ms;           /* work item lease; 0: 30000 */
    size_t max_batch;           /* most entries per group commit; 0: 256 */
    const char *owner;          /* lease owner name; NULL: "<hostname>:<pid>" */
    size_t max_history_bytes;   /* history payload bytes of one execution; 0: DT_HISTORY_MAX */
    /* true: an in-process activity's result is always committed before its orchestration's
     * next episode runs. false (the default): when the hub keeps the orchestration's history
     * and that episode would run here, it runs at once and commits with the result, one
     * commit instead of two (a speculative episode: see dispatch.c; SQLite only). */
    bool no_speculation;
    /* SQLite: the database file's size limit in bytes (0: none), so that clients cannot fill
     * the disk: writes past it fail DT_ERR_NO_SPACE naming it, as on a full disk, until
     * purges make room (dt_store_sqlite_limit_size). PostgreSQL: DT_ERR_INVALID_ARG. */
    uint64_t max_db_bytes;
    /* Activity results that may wait in the hub for room (dt_hub_waits_fn), and their bytes;
     * past either, a refusal is told at once. 0: DT_HUB_WAITING_RESULTS_DEFAULT,
     * DT_HUB_WAITING_BYTES_DEFAULT. */
    size_t max_waiting_results;
    size_t max_waiting_bytes;
} dt_hub_options;

/* dt_hub_open: open the store and start the committer and lease renewer. OPTS may be NULL for
 * the defaults. Close with dt_hub_close. */
dt_status dt_hub_open(const dt_hub_options *opts, dt_hub **out, dt_error *err);

/* dt_hub_id: a number naming HUB among every hub this process opened (never reused, unlike
 * an address), for remembering a hub without holding it. */
uint64_t dt_hub_id(const dt_hub *hub);

/* dt_hub_stop_waiting: results that wait for room (dt_hub_waits_fn) get one last try now and
 * their requesters hear how it went; none waits from here on, for good (a refused one waits
 * for its lease, and its activity runs again). For a server about to stop, whose calls wait
 * on them: it cannot stop before they are answered; and for a hub being deleted. */
void dt_hub_stop_waiting(dt_hub *hub);

/* dt_hub_close: stop the dispatch loops (each finishes the item it is running, as
 * dt_hub_stop does), commit everything queued for the committer, give work that was leased
 * but not yet handed to anyone back to the store for redelivery, close the store and free
 * the hub. Items that pull workers still hold must be completed or abandoned first (the gRPC
 * server's stop does that for its streams). HUB may be NULL. */
void dt_hub_close(dt_hub *hub);

/* dt_hub_tune_malloc: have glibc's malloc keep freed memory rather than give it back to the
 * kernel at once (up to 16 MiB at the top of each of its heaps; blocks under 8 MiB, every
 * payload, from the heaps rather than mmap). SQLite takes and frees a 64 KiB statement
 * journal for every savepoint, and a group commit opens one per entry: with glibc's defaults
 * each free hands the pages back (madvise) and the next commit faults them in again, about a
 * fifth of the embedded engine's CPU. The setting is the whole process's, so the library
 * never makes it on its own: `dtask` calls this at start, and an application that embeds a
 * hub may, before it opens one. Does nothing on a C library other than glibc. */
void dt_hub_tune_malloc(void);

/* ---- task hubs ---------------------------------------------------------------------------- */

/* A set of named task hubs, each a dt_hub on a database of its own (instances, queues,
 * histories and metrics never mix): the default hub on HUB.db_path, hub NAME on
 * <db_path>.hubs/NAME.db; on PostgreSQL, the default hub in schema "dtask" and hub NAME in
 * schema "dtask_NAME" (a longer name shortened with a hash of it) of the same database. A
 * hub opens on first use, or, with ALLOWED, only if it is one of those names (those open at
 * once); at most MAX_HUBS are open. See src/hub/hubs.c. */
#define DT_TASK_HUBS_MAX 32

typedef struct dt_hub_set dt_hub_set;
typedef struct dt_hub_ref dt_hub_ref;

typedef struct dt_hub_set_options {
    dt_hub_options hub;               /* for every hub; db_path is the default hub's */
    const char *const *allowed;       /* NULL: any valid name; else only these (copied) */
    size_t n_allowed;
    size_t max_hubs;                  /* 0: DT_TASK_HUBS_MAX */
} dt_hub_set_options;

/* dt_hub_set_open: the set, with the default hub (or every allowed one) open. Close with
 * dt_hub_set_close once nothing holds a reference. */
dt_status dt_hub_set_open(const dt_hub_set_options *opts, dt_hub_set **out, dt_error *err);

/* dt_hub_set_peek: as dt_hub_set_get, but only a hub already open and settled: *OUT NULL
 * (and nothing waited for or opened) otherwise. For callers that must not block. */
void dt_hub_set_peek(dt_hub_set *set, const char *name, dt_hub_ref **out);

/* dt_hub_set_get: a reference to hub NAME (NULL or "": DT_TASK_HUB_DEFAULT), opened if it is
 * not. DT_ERR_INVALID_ARG for a name that breaks dt_task_hub_validate, DT_ERR_NOT_FOUND for
 * one the set does not allow, DT_ERR_STATE when MAX_HUBS are open. Give it back with
 * dt_hub_ref_put; the hub is valid until then. */
dt_status dt_hub_set_get(dt_hub_set *set, const char *name, dt_hub_ref **out, dt_error *err);

/* dt_hub_set_find: as dt_hub_set_get, but a hub that is not there (not open, not allowed by
 * name, no database of its own from earlier) is not made: DT_ERR_NOT_FOUND. For reads a web
 * page may send across sites (an HTTP GET), which must not create hubs. */
dt_status dt_hub_set_find(dt_hub_set *set, const char *name, dt_hub_ref **out, dt_error *err);
dt_hub *dt_hub_ref_hub(const dt_hub_ref *ref);
const char *dt_hub_ref_name(const dt_hub_ref *ref);
/* dt_hub_ref_deleted: was the hub deleted since? (long users, like work item streams, stop) */
bool dt_hub_ref_deleted(dt_hub_ref *ref);
void dt_hub_ref_put(dt_hub_ref *ref);

/* dt_hub_set_delete: delete hub NAME with everything it holds: out of the set at once (the
 * name then means a new, empty hub), closed and its files removed when the last reference
 * goes. DT_ERR_NOT_FOUND if it is not open. */
dt_status dt_hub_set_delete(dt_hub_set *set, const char *name, dt_error *err);

/* dt_hub_set_names: the names of the hubs there are (open, allowed, or on disk from earlier
 * runs), sorted, in ARENA. */
dt_status dt_hub_set_names(dt_hub_set *set, dt_arena *arena, const char ***out, size_t *n,
                           dt_error *err);

/* dt_hub_set_stop_waiting: dt_hub_stop_waiting for every hub of SET that is open. */
void dt_hub_set_stop_waiting(dt_hub_set *set);

void dt_hub_set_close(dt_hub_set *set);

/* ---- client operations ------------------------------------------------------------------ */

/* Payloads (inputs, event data, outputs, reasons) are JSON text or a large-payload token
 * (dt_payload_is_token), which passes through untouched; "not JSON" below means neither. */

/* dt_hub_start: create an instance. The id (given or generated) is written to ID_OUT.
 * DT_ERR_INVALID_ARG for a bad id, name, non-JSON input, tags (dt_tags_validate) or trace
 * context (dt_trace_validate), naming the field and the rule; DT_ERR_ALREADY_EXISTS for a live
 * instance with that id. Nothing is stored when it fails. */
dt_status dt_hub_start(dt_hub *hub, const dt_start_request *req,
                       char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err);

/* dt_hub_started_fn: how an asynchronous start ended: DT_OK and the instance's ID once it is
 * stored and durable, else the status dt_hub_start would have returned (ID NULL), with ERR
 * saying why. Called once, as dt_hub_done_fn is. */
typedef void (*dt_hub_started_fn)(void *arg, dt_status st, const dt_error *err,
                                  const char *id);

/* dt_hub_start_async: dt_hub_start without waiting; REQ's memory must stay valid until DONE
 * is called. */
void dt_hub_start_async(dt_hub *hub, const dt_start_request *req, dt_hub_started_fn done,
                        void *arg);

/* dt_hub_get: the state of ID, in ARENA. DT_ERR_NOT_FOUND if none. */
dt_status dt_hub_get(dt_hub *hub, const char *id, dt_arena *arena, dt_instance_state **out,
                     dt_error *err);

/* dt_hub_get_history: the history of ID, in ARENA. */
dt_status dt_hub_get_history(dt_hub *hub, const char *id, dt_arena *arena, dt_event **out,
                             size_t *n_out, dt_error *err);

/* dt_history_fn: one window of a history walked by dt_hub_walk_history: its N events EV, and
 * ARENA for the callee's own use; both are freed after the call. A status other than DT_OK
 * stops the walk. */
typedef dt_status (*dt_history_fn)(void *arg, const dt_event *ev, size_t n, dt_arena *arena,
                                   dt_error *err);

/* dt_hub_walk_history: ID's history, in order, to FN a window at a time (DT_HISTORY_WINDOW of
 * stored bytes), for a reader that must not hold a whole history at once: FN's status when
 * it stops the walk, else the reads'. A history replaced between two windows (continue-as-
 * new, rewind) ends the walk there with *REPLACED set: the windows before are of another
 * execution than the rest would be. */
dt_status dt_hub_walk_history(dt_hub *hub, const char *id, dt_history_fn fn, void *arg,
                              bool *replaced, dt_error *err);

typedef enum dt_wait_for {
    DT_WAIT_START = 1,      /* any status but Pending */
    DT_WAIT_COMPLETION = 2  /* a terminal status (or ContinuedAsNew's successor finishing) */
} dt_wait_for;

/* dt_hub_wait: block until ID reaches WHAT or TIMEOUT_MS passes (negative: no limit). Returns
 * the state read at that moment into ARENA; DT_ERR_TIMEOUT with the last state seen. An
 * instance that does not exist yet is waited for (as the Durable Task Framework's waits do:
 * one an entity or an orchestration will start may be waited on first): DT_ERR_NOT_FOUND
 * only when there is still none at the timeout, or at once for an id no instance can have
 * (dt_instance_id_validate). */
dt_status dt_hub_wait(dt_hub *hub, const char *id, dt_wait_for what, int64_t timeout_ms,
                      dt_arena *arena, dt_instance_state **out, dt_error *err);

/* dt_hub_wait_fn: how a wait made with dt_hub_wait_async is answered, from a thread of the
 * hub's (never the caller's of dt_hub_wait_async), one call at a time:
 *  - ST DT_OK, ROW the instance's state that reached what was waited for, durable (valid
 *    during the call only): the wait is over.
 *  - ST DT_ERR_TIMEOUT, ROW NULL: a quarter of a second passed (about; later when the
 *    hub's thread is behind): return true to wait on, false to end the wait here (the
 *    caller's client went away).
 *  - any other ST, ERR saying why (DT_ERR_NOT_FOUND: an id no instance can have;
 *    DT_ERR_SHUTDOWN: the hub is closing; the store cannot be read): the wait is over.
 * An instance that does not exist yet is waited for, as dt_hub_wait does.
 * The return value is read after DT_ERR_TIMEOUT only. */
typedef bool (*dt_hub_wait_fn)(void *arg, dt_status st, const dt_instance_state *row,
                               const dt_error *err);

/* dt_hub_wait_async: wait for ID to reach WHAT without holding a thread: FN(ARG, ...) is
 * called as dt_hub_wait_fn says, until a call ends the wait (at once, from the hub's
 * thread, when ID has reached WHAT already or no instance can have it: DT_ERR_NOT_FOUND).
 * Blocks on nothing: the hub's thread reads the state. DT_OK: the wait is made. Otherwise
 * none is, and FN is never called: DT_ERR_INVALID_ARG for no ID; DT_ERR_SHUTDOWN when the
 * hub is closing; DT_ERR_NOMEM. On a store shared by nodes (PostgreSQL) as on one of its
 * own: another node's change reaches the wait by the store's notification, or by the poll. */
dt_status dt_hub_wait_async(dt_hub *hub, const char *id, dt_wait_for what, dt_hub_wait_fn fn,
                            void *arg, dt_error *err);

/* dt_hub_raise_event: send event NAME with JSON DATA (NULL for none) to ID. DT_ERR_NOT_FOUND
 * if no such instance, DT_ERR_STATE if it has finished, DT_ERR_INVALID_ARG for an empty name
 * or data that is not JSON. */
dt_status dt_hub_raise_event(dt_hub *hub, const char *id, const char *name, const char *data,
                             dt_error *err);

/* dt_hub_terminate: end ID as Terminated with OUTPUT (JSON or NULL) as its output; with
 * RECURSE, its running sub-orchestrations too. DT_ERR_NOT_FOUND / DT_ERR_STATE (finished). */
dt_status dt_hub_terminate(dt_hub *hub, const char *id, const char *output, bool recurse,
                           dt_error *err);

/* dt_hub_suspend / dt_hub_resume: pause and continue ID; REASON (JSON or NULL) is recorded.
 * Events that arrive while suspended are kept and processed after resume. DT_ERR_NOT_FOUND /
 * DT_ERR_STATE (finished). */
dt_status dt_hub_suspend(dt_hub *hub, const char *id, const char *reason, dt_error *err);
dt_status dt_hub_resume(dt_hub *hub, const char *id, const char *reason, dt_error *err);

/* dt_hub_restart: run ID's orchestrator again with its original input, under the same id
 * (which must have finished; DT_ERR_STATE otherwise) or, with NEW_ID, a generated one. The
 * id of the new run is written to ID_OUT. */
dt_status dt_hub_restart(dt_hub *hub, const char *id, bool new_id,
                         char id_out[DT_INSTANCE_ID_MAX + 1], dt_error *err);

/* dt_hub_rewind: run failed instance ID again from its last good point: its failed
 * activities run again, its failed sub-orchestrations are rewound too, what succeeded is
 * kept (see src/hub/rewind.c). REASON (text or NULL) is recorded on the ExecutionRewound
 * event. DT_ERR_NOT_FOUND; DT_ERR_STATE unless the instance is Failed. */
dt_status dt_hub_rewind(dt_hub *hub, const char *id, const char *reason, dt_error *err);

/* dt_hub_purge: delete finished instance ID and its history. DT_ERR_NOT_FOUND / DT_ERR_STATE
 * (not finished; nothing deleted). */
dt_status dt_hub_purge(dt_hub *hub, const char *id, dt_error *err);

/* dt_hub_purge_where: purge every finished instance matching FILTER; *N_PURGED says how many. */
dt_status dt_hub_purge_where(dt_hub *hub, const dt_query *filter, size_t *n_purged,
                             dt_error *err);

/* dt_hub_purge_recursive: purge finished instance ID and, first, the finished
 * sub-orchestrations it started (as its history names them), theirs, and so on; a child
 * still running is left, with everything below it. *N_PURGED counts every instance deleted.
 * DT_ERR_NOT_FOUND / DT_ERR_STATE for ID itself as dt_hub_purge (nothing deleted then). Not
 * one transaction: a failure part way leaves what was deleted deleted. */
dt_status dt_hub_purge_recursive(dt_hub *hub, const char *id, size_t *n_purged, dt_error *err);

/* dt_hub_purge_where_recursive: dt_hub_purge_recursive for every finished instance FILTER
 * matches (its ids read first, its statuses intersected with the finished ones). */
dt_status dt_hub_purge_where_recursive(dt_hub *hub, const dt_query *filter, size_t *n_purged,
                                       dt_error *err);

/* dt_hub_query: a page of instances matching Q, in ARENA; *NEXT is the continuation token or
 * NULL after the last page. */
dt_status dt_hub_query(dt_hub *hub, const dt_query *q, dt_arena *arena, dt_instance_state **out,
                       size_t *n_out, const char **next, dt_error *err);

/* dt_hub_count_by_status: how many instances the hub holds in each runtime status
 * (COUNTS[status]; dt_store_count_by_status). */
dt_status dt_hub_count_by_status(dt_hub *hub, size_t counts[DT_STATUS_COUNT], dt_error *err);

/* ---- entities ---------------------------------------------------------------------------- */

/* dt_hub_signal_entity: send operation OPERATION with INPUT (JSON or NULL) to entity ID
 * (@name@key; its name is lowercased), one way, visible AT (0: at once). REQUEST_ID (NULL:
 * generated) names the operation. The entity need not exist. DT_ERR_INVALID_ARG for a
 * malformed id, an empty operation or input that is not JSON. */
dt_status dt_hub_signal_entity(dt_hub *hub, const char *id, const char *operation,
                               const char *input, dt_time at, const char *request_id,
                               dt_error *err);

/* dt_hub_get_entity: entity ID (its state only WITH_STATE), in ARENA. DT_ERR_NOT_FOUND if it
 * has no state (an entity exists while it has state, as in Durable Functions). */
dt_status dt_hub_get_entity(dt_hub *hub, const char *id, bool with_state, dt_arena *arena,
                            dt_entity_state **out, dt_error *err);

/* dt_hub_query_entities: a page of entities matching Q, in ARENA (see dt_store_query_entities;
 * a prefix naming an entity's name is lowercased as ids are). */
dt_status dt_hub_query_entities(dt_hub *hub, const dt_entity_query *q, dt_arena *arena,
                                dt_entity_state **out, size_t *n_out, const char **next,
                                dt_error *err);

/* dt_hub_clean_entities: see dt_store_clean_entities. */
dt_status dt_hub_clean_entities(dt_hub *hub, bool remove_empty, bool release_orphaned,
                                size_t *removed, size_t *released, dt_error *err);

/* dt_hub_health: DT_OK while the store takes writes; after a write failed because the disk is
 * full (DT_ERR_NO_SPACE) or the store could not write (DT_ERR_IO), that status with ERR
 * naming the cause, until a write succeeds again. */
dt_status dt_hub_health(dt_hub *hub, dt_error *err);

/* dt_hub_node: this hub's node name ("<host>:<pid>", its lease owner). dt_hub_nodes: the nodes
 * alive on its database (heard of within DT_NODE_ALIVE_MS), into ARENA, by name: on a store
 * many nodes share (PostgreSQL) every hub says it is alive every DT_NODE_HEARTBEAT_MS; on
 * one a process owns (SQLite) it is this one alone. */
#define DT_NODE_HEARTBEAT_MS 2000
#define DT_NODE_ALIVE_MS 10000
const char *dt_hub_node(const dt_hub *hub);
dt_status dt_hub_nodes(dt_hub *hub, dt_arena *arena, dt_node_info **out, size_t *n_out,
                       dt_error *err);

/* dt_hub_metrics_text: the hub's metrics in Prometheus text format. *OUT is malloc'd; free
 * it with free(). */
dt_status dt_hub_metrics_text(dt_hub *hub, char **out);

/* ---- worker operations (pull) ----------------------------------------------------------- */

/* A pull worker (the gRPC service's work item streams) leases items, runs them elsewhere and
 * completes or abandons each exactly once. Until then the hub renews the item's lease; the
 * complete and abandon calls take the item over and free it, whatever their result, so the
 * caller never frees an item itself. */

/* dt_hub_next_orchestration: wait up to TIMEOUT_MS for an orchestration work item and lease it.
 * *OUT is NULL on timeout (status DT_OK). */
dt_status dt_hub_next_orchestration(dt_hub *hub, int64_t timeout_ms, dt_orch_item **out,
                                    dt_error *err);

/* dt_hub_orch_request: ITEM as the executor contract has it (instance, past events, new
 * events, led by the episode's OrchestratorStarted). *OUT borrows ITEM's memory: valid until
 * ITEM is completed or abandoned. */
void dt_hub_orch_request(const dt_orch_item *item, dt_orch_request *out);

/* dt_hub_complete_orchestration: turn RESULT's actions into history, messages and work items
 * and commit them atomically with the consumed inbox messages. DT_ERR_LEASE_LOST (nothing
 * applied) if another worker holds the instance now. Frees ITEM. */
dt_status dt_hub_complete_orchestration(dt_hub *hub, dt_orch_item *item,
                                        const dt_orch_result *result, dt_error *err);

/* dt_hub_done_fn: how an asynchronous completion ended: DT_OK once its commit is durable,
 * else the status dt_hub_complete_* would have returned, with ERR saying why. Called exactly
 * once, from a hub thread (the committer or the syncer), or from the caller's own thread
 * before the call returns when nothing could be handed over: it must not block. */
typedef void (*dt_hub_done_fn)(void *arg, dt_status st, const dt_error *err);

/* dt_hub_complete_orchestration_async: dt_hub_complete_orchestration without waiting: the
 * result goes to the group commit and DONE(ARG, ...) hears how it went. RESULT's memory must
 * stay valid until then. Frees ITEM. */
void dt_hub_complete_orchestration_async(dt_hub *hub, dt_orch_item *item,
                                         const dt_orch_result *result, dt_hub_done_fn done,
                                         void *arg);

/* dt_hub_abandon_orchestration: give ITEM back unprocessed because the worker cannot run it
 * (or its result could not be taken): it is redelivered after a back-off that doubles with
 * each abandon of the instance in a row, from a quarter second to ten, so no worker is
 * handed the same thing in a hot loop. Frees ITEM. */
dt_status dt_hub_abandon_orchestration(dt_hub *hub, dt_orch_item *item, dt_error *err);

/* dt_hub_retry_orchestration: give ITEM back for redelivery in a second: its result could not
 * be taken for want of memory or room (the server's bounds, not the work's fault), so it is
 * not counted as a delivery without a result (see DT_POISON_DELIVERIES). Frees ITEM. */
dt_status dt_hub_retry_orchestration(dt_hub *hub, dt_orch_item *item, dt_error *err);

/* dt_hub_release_orchestration: give ITEM back for redelivery at once: the worker holding it
 * went away (its stream ended), and another may run it now. Frees ITEM. */
dt_status dt_hub_release_orchestration(dt_hub *hub, dt_orch_item *item, dt_error *err);

/* dt_hub_next_activity / dt_hub_activity_request / dt_hub_complete_activity /
 * dt_hub_abandon_activity: the same for activities. Completing sends TaskCompleted (FAILURE
 * NULL) or TaskFailed to the orchestration and deletes the work item, in one transaction. */
dt_status dt_hub_next_activity(dt_hub *hub, int64_t timeout_ms, dt_activity_item **out,
                               dt_error *err);
void dt_hub_activity_request(const dt_activity_item *item, dt_activity_request *out);
dt_status dt_hub_complete_activity(dt_hub *hub, dt_activity_item *item, const char *result,
                                   const dt_failure *failure, dt_error *err);
/* dt_hub_waits_fn: an asynchronous activity result that the store had no room for (a full
 * database) or the hub no memory may wait, its lease kept (the activity does not run again),
 * tried again (after 1, 2, 4, then every 8 s, sooner when another went in) until it
 * goes in, or until waiting ends (dt_hub_stop_waiting, dt_hub_close; then DONE hears the
 * refusal). WAITS(ARG) is asked once, when it would first wait, from a hub thread, before
 * DONE: true if the caller can hold it (and may stop counting it as in service), false to
 * hear the refusal at once (its activity then runs again after its lease). The hub holds at
 * most dt_hub_options.max_waiting_results, max_waiting_bytes waiting. It must not block. */
typedef bool (*dt_hub_waits_fn)(void *arg);

/* dt_hub_complete_activity_async: the same without waiting, as for orchestrations; RESULT
 * and FAILURE must stay valid until DONE is called. WAITS may be NULL. Frees ITEM. */
void dt_hub_complete_activity_async(dt_hub *hub, dt_activity_item *item, const char *result,
                                    const dt_failure *failure, dt_hub_done_fn done,
                                    dt_hub_waits_fn waits, void *arg);
dt_status dt_hub_abandon_activity(dt_hub *hub, dt_activity_item *item, dt_error *err);
dt_status dt_hub_release_activity(dt_hub *hub, dt_activity_item *item, dt_error *err);

/* dt_hub_deliver_activity_result: the result of activity TASK_ID of run EXECUTION_ID of
 * INSTANCE_ID from a worker that no longer holds its work item (its stream ended and the item
 * went back): delivered to the orchestration all the same, so a long activity is not lost to
 * a reconnect. Whichever result of that task reaches the orchestration first is kept; a later
 * one (the redelivered run's) is a duplicate and dropped. DT_ERR_NOT_FOUND if the instance is
 * gone. */
dt_status dt_hub_deliver_activity_result(dt_hub *hub, const char *instance_id,
                                         const char *execution_id, int32_t task_id,
                                         const char *result, const dt_failure *failure,
                                         dt_error *err);

/* Which work a worker takes: orchestrations, activities and entities of these names only
 * (NULL: any; a filter with no names: none of that kind). Entity names are compared
 * lowercase, as the SDKs write them. */
typedef struct dt_work_filter {
    const dt_name_filter *orchestrations;
    const dt_name_filter *activities;
    const dt_name_filter *entities;
} dt_work_filter;

/* The kinds of work item, for dt_hub_next_work. */
enum { DT_WORK_ORCHESTRATION = 1, DT_WORK_ACTIVITY = 2, DT_WORK_ENTITY = 4 };

/* One leased work item of any kind: exactly one member set, or none. */
typedef struct dt_work {
    dt_orch_item *orch;
    dt_activity_item *act;
    dt_entity_item *ent;
} dt_work;

/* A taker's bell: another thread's way to end the taker's wait for work early. A work item
 * stream whose worker holds as many items as it said it takes waits only for the other
 * kinds; when one of its items comes back, its bell tells it to look again at once (without
 * it, the stream would look again only when its wait timed out). */
typedef struct dt_hub_bell dt_hub_bell;

/* dt_hub_bell_new: a bell, not rung; NULL when out of memory. Free with dt_hub_bell_free
 * once no wait and no ring uses it. */
dt_hub_bell *dt_hub_bell_new(void);
void dt_hub_bell_free(dt_hub_bell *bell);

/* dt_hub_bell_ring: the dt_hub_next_work of HUB waiting with BELL returns now, with nothing
 * (its caller looks again with what it wants now); if none is waiting, the next one returns
 * without waiting. */
void dt_hub_bell_ring(dt_hub *hub, dt_hub_bell *bell);

/* dt_hub_next_work: wait up to TIMEOUT_MS for a work item of the kinds WANT (a mask of
 * DT_WORK_*; 0: none, it only waits) that FILTER (NULL: any) allows, and lease it into *OUT
 * (all NULL on timeout, or when BELL, if not NULL, is rung). Kinds are tried in turn
 * starting after the one FIRST names, so a caller that passes its last kind back alternates
 * fairly. */
dt_status dt_hub_next_work(dt_hub *hub, int64_t timeout_ms, int first, int want,
                           const dt_work_filter *filter, dt_hub_bell *bell, dt_work *out,
                           dt_error *err);

/* dt_hub_entity_request: ITEM as the executor contract has it; borrows ITEM's memory. */
void dt_hub_entity_request(const dt_entity_item *item, dt_entity_request *out);

/* dt_hub_complete_entity: apply RESULT of ITEM's batch: the state, the answers to callers,
 * the signals and orchestrations it sent, and the consumed messages, in one commit. A
 * RESULT with a batch failure, or with more results than operations, is given back as
 * dt_hub_abandon_entity does. DT_ERR_LEASE_LOST (nothing applied) if the lease is gone.
 * Frees ITEM. */
dt_status dt_hub_complete_entity(dt_hub *hub, dt_entity_item *item, const dt_entity_result *res,
                                 dt_error *err);

/* dt_hub_abandon_entity / dt_hub_release_entity: give ITEM back, after a back-off or at
 * once, as for orchestrations. Frees ITEM. */
dt_status dt_hub_abandon_entity(dt_hub *hub, dt_entity_item *item, dt_error *err);
dt_status dt_hub_release_entity(dt_hub *hub, dt_entity_item *item, dt_error *err);

/* ---- in-process dispatch ------------------------------------------------------------------ */

/* dt_hub_run: start ORCH_THREADS orchestration and ACT_THREADS activity dispatch loops that
 * pull the work FILTER allows (copied; NULL: every item of the hub, whatever its name) and
 * run it with EX (copied; see dt_executor in core.h). A filter is what lets programs share a
 * hub: each one's loops leave the others' names in the store. The arena a callback's result
 * lives in is freed after the commit. Stopped by dt_hub_stop or dt_hub_close. */
dt_status dt_hub_run(dt_hub *hub, const dt_executor *ex, const dt_work_filter *filter,
                     int orch_threads, int act_threads, dt_error *err);

/* dt_hub_stop: stop the dispatch loops and wait for them. Each finishes the item it is
 * running and hands its result to the committer; work leased for the loops but not started
 * is given back to the store. */
void dt_hub_stop(dt_hub *hub);

#ifdef __cplusplus
}
#endif
#endif
