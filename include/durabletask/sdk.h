/* durabletask/sdk.h — the C programming model. Register orchestrators and activities on a
 * worker, then run it in-process against a hub. An orchestrator is re-run from its start
 * whenever its history must be replayed (its worker holds no session for it: see
 * dt_worker_set_sessions) and must be deterministic: it schedules work with dt_call_activity, waits with
 * dt_await (which ends the episode when the result is not in history yet), and allocates only
 * from its context's arena (dt_alloc, dt_printf), freed when the episode ends (or the
 * session does). Payloads are
 * JSON text, or a large-payload token another SDK sent (dt_payload_is_token). The same
 * worker runs against a remote server with remote.h. */
#ifndef DURABLETASK_SDK_H
#define DURABLETASK_SDK_H

#include "durabletask/core.h"
#include "durabletask/hub.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_worker dt_worker;
typedef struct dt_octx dt_octx;   /* orchestration context, one per episode */
typedef struct dt_actx dt_actx;   /* activity context, one per execution */
typedef struct dt_task dt_task;   /* something an orchestrator can await; arena-owned */
typedef struct dt_ectx dt_ectx;   /* entity context, one per operation */

/* An orchestrator: returns DT_OK with *OUTPUT (JSON or NULL, arena memory) to complete, or the
 * status of dt_fail to fail. */
typedef dt_status (*dt_orchestrator_fn)(dt_octx *ctx, const char *input, const char **output);

/* An activity: the real work. Returns DT_OK with *OUTPUT (JSON or NULL, from dt_activity_printf
 * or dt_activity_alloc, or static), or the status of dt_activity_fail. Runs at least once. */
typedef dt_status (*dt_activity_fn)(dt_actx *ctx, const char *input, const char **output);

/* An entity operation: OPERATION (as sent, any case) with INPUT (JSON or NULL) on the entity's
 * state (dt_entity_get_state / dt_entity_set_state). Returns DT_OK with *OUTPUT (JSON or NULL,
 * from dt_entity_printf or dt_entity_alloc, or static), or the status of dt_entity_fail: a
 * failed operation's state changes and signals are undone, and its caller gets the failure.
 * The operations of a batch run one after the other; each runs exactly once as far as the
 * state is concerned (its result commits with the state). */
typedef dt_status (*dt_entity_fn)(dt_ectx *ctx, const char *operation, const char *input,
                                  const char **output);

/* ---- worker ---------------------------------------------------------------------------- */

/* dt_worker_new: an empty registry. Free with dt_worker_free. */
dt_status dt_worker_new(dt_worker **out);

/* dt_worker_free: stop the worker if running and free it. W may be NULL. */
void dt_worker_free(dt_worker *w);

/* dt_worker_add_orchestrator / dt_worker_add_activity: register FN under NAME (copied) with
 * USER data (see dt_octx_user). DT_ERR_ALREADY_EXISTS if NAME is taken, DT_ERR_INVALID_ARG if
 * NAME is empty. Register everything before dt_worker_start. */
dt_status dt_worker_add_orchestrator(dt_worker *w, const char *name, dt_orchestrator_fn fn,
                                     void *user);
dt_status dt_worker_add_activity(dt_worker *w, const char *name, dt_activity_fn fn, void *user);

/* dt_worker_add_entity: register entity FN under NAME (compared lowercase, as entity ids
 * write it: the entity "@counter@k" runs the FN registered as "Counter" or "counter"). An
 * entity name no FN is registered for fails each of its operations (EntityNotRegistered). */
dt_status dt_worker_add_entity(dt_worker *w, const char *name, dt_entity_fn fn, void *user);

typedef struct dt_worker_options {
    int orchestration_threads;   /* 0: 2 */
    int activity_threads;        /* 0: 4 */
    /* false (the default): take only the orchestrations, activities and entities registered
     * on the worker, leaving other names to other programs sharing the hub. true: take every
     * work item; a name not registered fails (OrchestratorNotRegistered, ...). */
    bool all_names;
} dt_worker_options;

/* dt_worker_start: run W's orchestrators and activities in this process on HUB's dispatch
 * loops: only the names registered by now (see dt_worker_options.all_names). OPTS may be
 * NULL. Stop with dt_worker_stop (or dt_hub_close). */
dt_status dt_worker_start(dt_worker *w, dt_hub *hub, const dt_worker_options *opts,
                          dt_error *err);

/* dt_worker_stop: stop the dispatch loops started by dt_worker_start. */
void dt_worker_stop(dt_worker *w);

/* Extended sessions. Between episodes the worker keeps an orchestration's code suspended at
 * the await it is blocked on, with its arena (what it allocated stays valid), so the next
 * episode of that instance feeds it the new events instead of replaying its history from
 * the start: an episode costs what its new events cost, not what the history's length
 * does. A session is used only when the next request continues exactly the history it saw
 * (same execution, the events its last actions added); otherwise, or when the instance's
 * session was evicted, the episode replays in full, as without sessions. Either way the
 * code sees the same answers and the same non-determinism checks.
 * The code runs on a thread of the session's own (one per cached instance, parked while it
 * waits); orchestrator code must not rely on which thread runs it, as with replay. */
#define DT_SESSIONS_DEFAULT 256

/* dt_worker_set_sessions: keep at most MAX instances' sessions (least recently used evicted
 * first; default DT_SESSIONS_DEFAULT); 0 turns sessions off, so every episode replays.
 * Applies to the executor, so to in-process and remote workers alike; may be called while
 * it runs (sessions beyond the new bound are ended). dt_worker_stop and dt_worker_free end
 * every session, unwinding its code. */
void dt_worker_set_sessions(dt_worker *w, size_t max);

/* dt_worker_sessions: the bound dt_worker_set_sessions set (0: sessions are off). */
size_t dt_worker_sessions(dt_worker *w);

/* What W's sessions did since W was made (dt_worker_session_stats). */
typedef struct dt_session_stats {
    uint64_t hits;            /* episodes that resumed a session */
    uint64_t misses;          /* episodes with a past that ran from the start */
    uint64_t past_left_out;   /* requests whose past a server left out for a session */
    uint64_t past_missing;    /* of those, the ones no session continued: the caller had to
                               * fetch the history (remote.h does) */
} dt_session_stats;

void dt_worker_session_stats(dt_worker *w, dt_session_stats *out);

/* dt_worker_executor: W as a dt_executor (core.h), for hosts that drive work themselves: the
 * hub's dispatch loops, the remote worker (remote.h). W must outlive every use of it. */
dt_executor dt_worker_executor(dt_worker *w);

/* dt_worker_filters: the names registered on W, as work item filters: *ORCHESTRATORS and
 * *ACTIVITIES borrow W's memory, valid until the next dt_worker_add_*.
 * dt_worker_entity_filter: the entity names (lowercase) likewise. */
void dt_worker_filters(const dt_worker *w, dt_name_filter *orchestrators,
                       dt_name_filter *activities);
void dt_worker_entity_filter(const dt_worker *w, dt_name_filter *entities);

/* ---- orchestration context ---------------------------------------------------------------- */

/* A retry policy: a failed attempt is retried after a durable timer, so retries survive
 * restarts and history shows every attempt. The delay before attempt n+1 is
 * first_interval_ms * backoff_coefficient^(n-1), capped at max_interval_ms. */
typedef struct dt_retry_policy {
    int max_attempts;              /* attempts in all, first included; >= 1 */
    int64_t first_interval_ms;     /* > 0 */
    double backoff_coefficient;    /* >= 1; 0 means 1 */
    int64_t max_interval_ms;       /* 0: no cap; else >= first_interval_ms */
    int64_t retry_timeout_ms;      /* 0: none; no new attempt starts after this long */
    /* optional: retry only failures this returns true for (called during replay too, so it
     * must be deterministic) */
    bool (*handle)(const dt_failure *failure, void *user);
    void *handle_user;
} dt_retry_policy;

/* Limits that make a policy absurd rather than merely long: more than a year between
 * attempts, or more than 10,000 attempts. */
#define DT_RETRY_MAX_INTERVAL_MS (366LL * 24 * 3600 * 1000)
#define DT_RETRY_MAX_ATTEMPTS 10000

/* Options for a scheduled activity or sub-orchestration. */
typedef struct dt_task_options {
    const char *version;
    const char *instance_id;         /* sub-orchestrations: NULL derives
                                      * "<parent's execution id>:<seq>" */
    const dt_retry_policy *retry;    /* NULL: no retries */
} dt_task_options;

/* dt_retry_policy_validate: DT_OK, or DT_ERR_INVALID_ARG with ERR naming the bad field. */
dt_status dt_retry_policy_validate(const dt_retry_policy *p, dt_error *err);

/* dt_call_activity: schedule activity NAME with JSON INPUT (NULL for none). OPTS may be NULL.
 * The task is owned by the episode's arena. */
dt_task *dt_call_activity(dt_octx *ctx, const char *name, const char *input,
                          const dt_task_options *opts);

/* dt_call_sub_orchestrator: start orchestrator NAME as a child instance with JSON INPUT and
 * await its output like an activity's. OPTS->instance_id names the child (validated as any
 * id); NULL gives "<parent's execution id>:<sequence>" in hex (the Durable Task Framework's
 * form). The child's failure fails this task. */
dt_task *dt_call_sub_orchestrator(dt_octx *ctx, const char *name, const char *input,
                                  const dt_task_options *opts);

/* dt_create_timer: a durable timer that fires at FIRE_AT (a time in the past fires at once).
 * Times outside years 1..9999 fail the orchestration with InvalidTimer. */
dt_task *dt_create_timer(dt_octx *ctx, dt_time fire_at);

/* dt_wait_for_event: a task done when event NAME (case-insensitive) is raised to this
 * instance; its result is the event's data. Events raised before the wait are kept: the n-th
 * wait for a name receives the n-th event of that name, in arrival order. */
dt_task *dt_wait_for_event(dt_octx *ctx, const char *name);

/* dt_send_event: raise event NAME with JSON DATA on instance INSTANCE_ID (fire and forget; an
 * event for a missing or finished instance is dropped). */
void dt_send_event(dt_octx *ctx, const char *instance_id, const char *name, const char *data);

/* ---- entities from an orchestration -------------------------------------------------------- */

/* Entity ids are "@name@key" (core.h, dt_entity_id_validate); the name is lowercased. A
 * malformed id fails the orchestration (InvalidEntityId). */

/* dt_call_entity: run OPERATION with JSON INPUT (NULL: none) on entity ENTITY_ID and await its
 * result like an activity's; an operation that fails fails the task with its failure. Inside
 * a critical section only the locked entities may be called. */
dt_task *dt_call_entity(dt_octx *ctx, const char *entity_id, const char *operation,
                        const char *input);

/* dt_signal_entity: send OPERATION with INPUT to ENTITY_ID, one way; delivered at AT (0: at
 * once). Not allowed on an entity this orchestration holds locked. */
void dt_signal_entity(dt_octx *ctx, const char *entity_id, const char *operation,
                      const char *input, dt_time at);

/* dt_lock: enter a critical section over the N entities ENTITY_IDS: a task done when all are
 * locked for this orchestration (granted in one fixed order, so two orchestrations locking
 * overlapping sets never deadlock). While held, only this orchestration's calls reach them.
 * Held until dt_unlock, or until the orchestration ends in any way. One section at a time. */
dt_task *dt_lock(dt_octx *ctx, const char *const *entity_ids, size_t n);

/* dt_unlock: leave the critical section (nothing if none is held). */
void dt_unlock(dt_octx *ctx);

/* dt_octx_in_critical_section: is the orchestration in a critical section (dt_lock called,
 * dt_unlock not yet)? */
bool dt_octx_in_critical_section(const dt_octx *ctx);

/* dt_cancel: stop waiting for T. An event waiter gives up its place, so a later event goes to
 * the next waiter (or is kept); a timer's firing is ignored. The losing branch of a timeout
 * race is cancelled this way. Activities and sub-orchestrations run on regardless (this only
 * affects timers and event waiters). Awaiting a cancelled task fails with TaskCanceled. */
void dt_cancel(dt_octx *ctx, dt_task *t);

/* dt_continue_as_new: end this execution and start the orchestrator afresh with INPUT and an
 * empty history. With KEEP_EVENTS, events raised but not yet received are carried over to
 * the new execution. Use as `return dt_continue_as_new(ctx, input, true);`. */
dt_status dt_continue_as_new(dt_octx *ctx, const char *input, bool keep_events);

/* dt_await: the task's result (JSON or NULL) once history has it. If it is not done yet the
 * episode ends here and this call does not return; the orchestrator is re-run when something
 * new arrives. If the task failed, the orchestration fails with that failure (as inner
 * failure) and this call does not return: use dt_try_await to handle failures. */
const char *dt_await(dt_octx *ctx, dt_task *task);

/* dt_try_await: like dt_await, but a failed task returns DT_ERR_TASK_FAILED with *FAILURE set
 * (arena memory) instead of failing the orchestration. RESULT and FAILURE may be NULL. */
dt_status dt_try_await(dt_octx *ctx, dt_task *task, const char **result,
                       const dt_failure **failure);

/* dt_when_all: a task done when all N tasks are done; its result is a JSON array of their
 * results in order ("null" for none). It fails with the first failure in history order. */
dt_task *dt_when_all(dt_octx *ctx, dt_task *const *tasks, size_t n);

/* dt_when_any: a task done when the first of N tasks is done (in history order); its result
 * is that task's result. Failures count as done; see dt_task_winner. */
dt_task *dt_when_any(dt_octx *ctx, dt_task *const *tasks, size_t n);

/* dt_task_winner: for a done when-any task, the index of the task that finished first. */
size_t dt_task_winner(const dt_task *any);

/* dt_task_is_done / dt_task_result / dt_task_failure: a task's state as history has it so far. */
bool dt_task_is_done(const dt_task *t);
const char *dt_task_result(const dt_task *t);
const dt_failure *dt_task_failure(const dt_task *t);

/* dt_fail: record a failure of the orchestration (ERROR_TYPE and the formatted message) and
 * return DT_ERR_TASK_FAILED, so `return dt_fail(ctx, "InvalidInput", "no city");` fails it. */
dt_status dt_fail(dt_octx *ctx, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dt_fail_with: fail the orchestration with F as the inner failure of a new failure. */
dt_status dt_fail_with(dt_octx *ctx, const dt_failure *inner, const char *error_type,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* dt_alloc / dt_printf: memory from the episode's arena, freed when the episode ends. */
void *dt_alloc(dt_octx *ctx, size_t n);
char *dt_printf(dt_octx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dt_octx_now: orchestration time, the same on every replay (the timestamp of the episode in
 * which the code reached this point). */
dt_time dt_octx_now(dt_octx *ctx);

/* dt_octx_new_guid: a GUID that is the same on every replay (derived from the instance id,
 * orchestration time and a counter), as arena memory. */
const char *dt_octx_new_guid(dt_octx *ctx);

/* dt_octx_is_replaying: true while the code is re-running steps already in history. */
bool dt_octx_is_replaying(dt_octx *ctx);

/* dt_octx_log: print a line to stderr ("[instance] message") unless replaying, so each line is
 * printed once however often the code is replayed. */
void dt_octx_log(dt_octx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dt_octx_set_custom_status: JSON shown to clients (copied). NULL clears it. */
void dt_octx_set_custom_status(dt_octx *ctx, const char *json);

const char *dt_octx_instance_id(const dt_octx *ctx);
const char *dt_octx_name(const dt_octx *ctx);
void *dt_octx_user(const dt_octx *ctx);

/* ---- activity context ----------------------------------------------------------------------- */

const char *dt_activity_instance_id(const dt_actx *ctx);
const char *dt_activity_name(const dt_actx *ctx);
int32_t dt_activity_task_id(const dt_actx *ctx);
void *dt_activity_user(const dt_actx *ctx);

/* dt_activity_alloc / dt_activity_printf: memory freed after the result is committed. */
void *dt_activity_alloc(dt_actx *ctx, size_t n);
char *dt_activity_printf(dt_actx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dt_activity_fail: record the activity's failure and return DT_ERR_TASK_FAILED. */
dt_status dt_activity_fail(dt_actx *ctx, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- entity context ------------------------------------------------------------------------- */

/* dt_entity_get_state: the entity's state (JSON), NULL when it has none. */
const char *dt_entity_get_state(dt_ectx *ctx);

/* dt_entity_set_state: the entity's new state (JSON, copied); NULL deletes it (an entity
 * without state does not exist for clients). DT_ERR_INVALID_ARG when JSON is not JSON. */
dt_status dt_entity_set_state(dt_ectx *ctx, const char *json);

/* dt_entity_delete_state: dt_entity_set_state(ctx, NULL). */
void dt_entity_delete_state(dt_ectx *ctx);

/* dt_entity_signal_entity: send OPERATION with INPUT to another entity (or this one) when
 * this operation commits; AT as for dt_signal_entity. */
dt_status dt_entity_signal_entity(dt_ectx *ctx, const char *entity_id, const char *operation,
                                  const char *input, dt_time at);

/* dt_entity_start_orchestration: start orchestrator NAME with INPUT as a new instance when
 * this operation commits; its id is written to ID_OUT (INSTANCE_ID, or a generated one). */
dt_status dt_entity_start_orchestration(dt_ectx *ctx, const char *name, const char *input,
                                        const char *instance_id,
                                        char id_out[DT_INSTANCE_ID_MAX + 1]);

const char *dt_entity_id(const dt_ectx *ctx);     /* "@name@key" */
const char *dt_entity_key(const dt_ectx *ctx);    /* the part after the second '@' */
void *dt_entity_user(const dt_ectx *ctx);

/* dt_entity_alloc / dt_entity_printf: memory freed after the batch is committed. */
void *dt_entity_alloc(dt_ectx *ctx, size_t n);
char *dt_entity_printf(dt_ectx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dt_entity_fail: record the operation's failure and return DT_ERR_TASK_FAILED. */
dt_status dt_entity_fail(dt_ectx *ctx, const char *error_type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the executor (shared by in-process and remote workers) ------------------------------- */

/* dt_replay_run: run orchestrator FN (with USER) for the episode REQ, producing the actions of
 * this episode in RESULT (arena memory). What dt_worker_executor runs for a registered
 * orchestrator without a session; exposed for tests and hosts with their own registry.
 * DT_ERR_NOT_FOUND if REQ's past was left out (req->past_left_out): there is nothing to
 * replay. */
dt_status dt_replay_run(dt_orchestrator_fn fn, void *user, const dt_orch_request *req,
                        dt_arena *arena, dt_orch_result *result);

/* dt_entity_run: run entity FN (with USER) over the batch REQ, into OUT (arena memory): each
 * operation in turn on the state the previous one left; a failed one's changes undone. What
 * dt_worker_executor runs for a registered entity. */
dt_status dt_entity_run(dt_entity_fn fn, void *user, const dt_entity_request *req,
                        dt_arena *arena, dt_entity_result *out);

#ifdef __cplusplus
}
#endif
#endif
