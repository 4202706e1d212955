/* durabletask/store.h — the store contract. A store keeps instances, their histories, their
 * inboxes (messages waiting to be processed: ExecutionStarted, TaskCompleted, TimerFired, ...)
 * and activity work items, and hands work out under leases. It owns durability; it knows
 * nothing of orchestrator code. Every backend implements dt_store_ops and passes the same
 * contract suite (tests/store/). Callers use the dt_store_* wrappers below.
 *
 * Thread safety: a store may be called from many threads at once; each backend serializes
 * internally as it needs. Leases make it safe for several processes to share one store. */
#ifndef DURABLETASK_STORE_H
#define DURABLETASK_STORE_H

#include "durabletask/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dt_store dt_store;

/* ---- records exchanged with a store ----------------------------------------------------- */

/* A new instance (start, or a sub-orchestration created by an episode). The store writes the
 * instance row as Pending and an ExecutionStarted message into its inbox, visible at
 * scheduled_start (or at once). */
typedef struct dt_message dt_message;

typedef struct dt_new_instance {
    const char *instance_id;
    const char *execution_id;
    const char *name;
    const char *version;              /* may be NULL */
    const char *input;                /* JSON or NULL */
    dt_time created_at;
    dt_time scheduled_start;          /* 0: at once */
    const char *tags;                 /* JSON object of string values, or NULL */
    const char *trace_parent;         /* the starter's W3C trace context, or NULL */
    const char *trace_state;
    const char *parent_instance_id;   /* sub-orchestrations; NULL otherwise */
    const char *parent_execution_id;
    const char *parent_name;
    int32_t parent_task_id;
    /* Reuse policy: an existing instance with this id is replaced only if its status is one of
     * these; otherwise DT_ERR_ALREADY_EXISTS. With none given (n_replaceable == 0) the default
     * applies: a finished instance (terminal status) is replaced, a live one is refused;
     * with none given and REUSE_POLICY set, nothing is replaced. */
    const dt_runtime_status *replaceable;
    size_t n_replaceable;
    bool reuse_policy;
    /* Sub-orchestrations (PARENT_INSTANCE_ID set) have a rule of their own instead: an
     * existing instance is replaced only if it is finished and a child of the same parent (a
     * retry under the same id); any other (live, the parent itself, another's) is a conflict.
     * ON_CONFLICT, when set, is what a conflict does instead of DT_ERR_ALREADY_EXISTS: the
     * store delivers this message (the parent's SubOrchestrationInstanceFailed) in the same
     * transaction, and the existing instance stays as it is. A failure on it without a
     * message gets the store's reason ("instance 'x' already exists with status Running"). */
    const dt_message *on_conflict;
    /* IF_ABSENT: made only where no instance has the id, whatever its status or parent (a
     * failed child its parent's rewind starts again because it was purged); any existing
     * instance is a conflict, so ON_CONFLICT goes to it instead (the rewind). ON_FOREIGN,
     * when set, goes instead of ON_CONFLICT when the instance there is not a child of
     * PARENT_INSTANCE_ID (another has taken the purged child's id since: the parent's task
     * fails again, and the other instance is not touched). */
    bool if_absent;
    const dt_message *on_foreign;
} dt_new_instance;

/* A message into an instance's inbox. The event is stored as HistoryEvent bytes. */
struct dt_message {
    const char *instance_id;
    /* The execution the message belongs to (timer firings, task and sub-orchestration
     * results), or NULL for whichever execution is current (events, terminate, suspend...).
     * A leased item's incoming events carry it in event.execution_id, so the hub can drop
     * what a previous execution (before continue-as-new) left behind. */
    const char *execution_id;
    dt_time visible_at;               /* 0: at once; timers use their fire time */
    dt_event event;
    /* a rewind's request (dt_store_send_message only): the instance must be Failed, and
     * becomes Running, without output or failure, as the message goes in; DT_ERR_STATE if
     * it is not Failed, or is leased right now. */
    bool reopen;
};

/* A message to an entity: an operation signaled (EntityOperationSignaled) or called
 * (EntityOperationCalled, answered to its sender), or a lock request (EntityLockRequested).
 * Storing one creates the entity's row if it has none. */
typedef struct dt_entity_message {
    const char *entity_id;            /* @name@key, the name lowercase */
    dt_time visible_at;               /* 0: at once; a scheduled signal: its time */
    const char *sender;               /* the orchestration (or entity) that sent it; NULL: a
                                       * client */
    const char *sender_execution;     /* the sending orchestration's execution, or NULL */
    dt_event event;
} dt_entity_message;

/* An unlock an episode sends: ENTITY_ID's lock goes, if the episode's instance holds it
 * for SECTION. */
typedef struct dt_entity_unlock {
    const char *entity_id;
    const char *section;
} dt_entity_unlock;

/* One orchestration work item: the instance's row and its visible inbox messages, leased to
 * one owner. The lease does not read the history (a hub keeps recent histories in memory);
 * it says how long the history is, and the holder reads what it lacks with
 * dt_store_load_history. All memory is in ARENA; free the item with dt_orch_item_free. */
typedef struct dt_orch_item {
    dt_arena *arena;
    const char *instance_id;
    const char *lock_token;           /* proves the lease at commit (a speculative
                                       * episode's: the lease its commit takes) */
    dt_time locked_until;
    dt_instance_state state;          /* the row as it was when leased */
    /* The number of history events the instance has. History events are numbered (seq) from
     * 0 without gaps, so these are seqs 0 .. history_len-1; continue-as-new (reset_history)
     * starts again at 0. Nothing is appended while the lease is held. */
    size_t history_len;
    /* Bumped each time the history is replaced (continue-as-new, rewind), which may keep its
     * execution id and reach any length: a copy of the history kept from an earlier lease
     * (the hub's cache, maybe on another node) is good only while this is the same. It starts
     * at the instance's creation time (µs), so an instance created again under the same id
     * (reuse, restart, purge and start) never repeats an earlier one's: each replacement
     * takes longer than a microsecond. */
    int64_t history_gen;
    /* The history, in order: left NULL/0 by the store. The lease holder may point them at the
     * history it loaded or cached (memory it keeps alive as long as the item). */
    const dt_event *past;
    size_t n_past;
    const dt_event *incoming;         /* new inbox messages, in arrival order. Each carries the
                                       * execution_id of its message (dt_message), if it had
                                       * one, in event.execution_id; an ExecutionStarted keeps
                                       * its own. */
    size_t n_incoming;
    const int64_t *message_ids;       /* store-private ids of INCOMING, deleted at commit */
    size_t n_message_ids;
} dt_orch_item;

/* One activity work item, leased to one owner. Free with dt_activity_item_free. */
typedef struct dt_activity_item {
    dt_arena *arena;
    int64_t id;                       /* store-private key */
    const char *instance_id;          /* the orchestration that scheduled it */
    const char *execution_id;
    int32_t task_id;                  /* the TaskScheduled event_id */
    const char *name;
    const char *version;
    const char *input;
    const char *trace_parent;         /* from its TaskScheduled event; may be NULL */
    const char *trace_state;
    const char *tags;
    const char *lock_token;
    dt_time locked_until;
    int32_t delivery_count;           /* 1 on first delivery, more after lease expiry */
} dt_activity_item;

/* An activity to enqueue: the TaskScheduled event of an episode. */
typedef struct dt_new_activity {
    const char *instance_id;
    const char *execution_id;
    const dt_event *scheduled;        /* type TaskScheduled: event_id, name, version, input,
                                       * trace_*, tags */
    dt_time visible_at;               /* 0: at once */
} dt_new_activity;

/* The result of one orchestration episode, committed atomically: history appended, the row
 * updated, activities and messages enqueued, consumed messages deleted, lease released. */
typedef struct dt_episode {
    const dt_orch_item *item;
    bool reset_history;               /* continue-as-new: APPEND replaces the history */
    const dt_event *append;
    size_t n_append;
    /* instance row after the episode */
    const char *name;                 /* set from ExecutionStarted when first seen; NULL: keep */
    const char *input;                /* likewise */
    const char *version;              /* continue-as-new with a new version; NULL: keep */
    const char *span_id;              /* the orchestration's tracing span; NULL: keep */
    const char *tags;                 /* the instance's tags, all of them; NULL: keep */
    dt_time span_start;
    const char *execution_id;         /* NULL: keep */
    dt_runtime_status status;
    const char *output;               /* NULL: none */
    const char *custom_status;        /* NULL: none */
    const dt_failure *failure;        /* NULL: none */
    dt_time completed_at;             /* 0 while not finished */
    const dt_new_activity *activities;
    size_t n_activities;
    const dt_message *messages;       /* to this or other instances (timers, events) */
    size_t n_messages;
    const dt_new_instance *instances; /* sub-orchestrations to create */
    size_t n_instances;
    const dt_entity_message *entity_messages;   /* signals, calls, lock requests sent */
    size_t n_entity_messages;
    const dt_entity_unlock *unlocks;  /* unlocks sent (applied at once) */
    size_t n_unlocks;
    bool release_locks;               /* the execution ended: every lock it holds goes */
    bool asked_locks;                 /* it ever asked for a lock, so the release may free
                                       * one that entities wait for (else a lock left to it
                                       * is one granted as it ended, and is only cleaned) */
    dt_time updated_at;               /* the row's last_updated_at; 0: the commit's clock */
    /* A speculative episode (stores for which dt_store_speculates is true): ITEM was not
     * leased from the store but made by the hub from CONSUMES, an activity result not yet
     * committed, and a history it keeps. Its commit deletes the activity's row under its
     * lease (the entry fails, DT_ERR_LEASE_LOST, if it is gone), then takes the instance's
     * lease itself, only if nobody holds the instance (an expired lease counts), no message
     * waits in its inbox, it is Running in ITEM's execution, and its history is ITEM's
     * generation and length; then applies the episode. The result never passes through the
     * inbox. When the instance is not so, the activity result goes to the inbox as a
     * DT_COMMIT_ACTIVITY entry's would, the episode is not applied, and REFUSED is set (the
     * entry's result says how the activity result went). Other stores refuse the commit
     * (DT_ERR_UNIMPLEMENTED). */
    const struct dt_activity_done *consumes;
    bool refused;                     /* out: the episode was not applied */
} dt_episode;

/* The result of one activity: a TaskCompleted/TaskFailed message to the orchestration, and the
 * activity work item deleted, in one transaction. A message without an execution_id belongs to
 * the execution that scheduled the activity (item->execution_id). */
typedef struct dt_activity_done {
    const dt_activity_item *item;
    dt_message message;
} dt_activity_done;

/* ---- entities (see docs/design/entities.md) ---------------------------------------------- */

/* One entity work item: the entity's row and its visible messages, leased to one owner. The
 * lease holder decides what of them this step takes (the hub: src/hub/entity.c). All memory
 * is in ARENA; free with dt_entity_item_free. */
typedef struct dt_entity_item {
    dt_arena *arena;
    const char *entity_id;
    const char *lock_token;
    dt_time locked_until;
    const char *state;                /* JSON, NULL: the entity has no state */
    const char *locked_by;            /* the orchestration holding its lock, NULL: none */
    const char *locked_execution;
    const char *lock_section;         /* the critical section's id */
    const dt_entity_message *messages;   /* visible ones, in arrival order */
    const int64_t *message_ids;       /* store-private ids of MESSAGES */
    size_t n_messages;
} dt_entity_item;

/* The outcome of one entity step, committed atomically: the consumed messages deleted, the
 * state and lock updated, the answers and signals sent, orchestrations started, the lease
 * released. */
typedef struct dt_entity_step {
    const dt_entity_item *item;
    const int64_t *consumed;          /* message ids (of item->message_ids) deleted */
    size_t n_consumed;
    bool set_state;                   /* false: the state stays as it is */
    const char *state;                /* the new state; NULL: none (deleted) */
    bool set_lock;                    /* false: the lock stays as it is */
    const char *locked_by;            /* the new holder; NULL: unlocked */
    const char *locked_execution;
    const char *lock_section;
    const dt_message *messages;       /* to orchestrations: answers, lock grants */
    size_t n_messages;
    const dt_entity_message *entity_messages;   /* signals, lock requests passed on */
    size_t n_entity_messages;
    const dt_new_instance *instances; /* orchestrations started; one whose id is taken is
                                       * skipped, the step still commits */
    size_t n_instances;
} dt_entity_step;

/* One entry of a group commit: an episode, an activity result, or a new instance (a client's
 * start, which joins the group commit so concurrent starts share one fsync). */
typedef enum dt_commit_kind {
    DT_COMMIT_EPISODE = 1,
    DT_COMMIT_ACTIVITY = 2,
    DT_COMMIT_START = 3,
    DT_COMMIT_ENTITY = 4
} dt_commit_kind;

typedef struct dt_commit {
    dt_commit_kind kind;
    union {
        dt_episode episode;
        dt_activity_done activity;
        dt_new_instance start;
        dt_entity_step entity;
    } u;
    dt_status result;                 /* set by the store: DT_OK or DT_ERR_LEASE_LOST, ... */
    dt_error *error;                  /* optional: filled with the entry's own error when its
                                       * result is not DT_OK (DT_ERR_ALREADY_EXISTS, ...) */
} dt_commit;

/* What a commit may lease in its own transaction: the work the batch itself made ready (the
 * activities it enqueued, the instances it gave visible messages, the instances whose
 * episodes it committed that still have messages waiting). A hub that runs that work hands
 * it straight to its workers, without a lease transaction of its own. The caller supplies
 * the arrays (max_* pointers each) and the store fills the first n_* with items as the
 * lease_* calls make them (free each with dt_orch_item_free / dt_activity_item_free). */
typedef struct dt_commit_lease {
    const char *owner;
    dt_time now;
    int64_t lease_us;
    size_t max_orchestrations;        /* 0: lease no orchestrations */
    size_t max_activities;            /* 0: lease no activities */
    dt_orch_item **orchestrations;
    size_t n_orchestrations;          /* out */
    dt_activity_item **activities;
    size_t n_activities;              /* out */
} dt_commit_lease;

/* Lease filters (dt_name_filter, in core.h): which work a lease may take, by orchestrator or
 * activity name. An instance with a terminate message waiting is leased whatever the filter:
 * the hub ends it without running code, so a worker need not know its orchestrator. */

/* A node of a database many share (dt_store_heartbeat, dt_store_nodes): its name (the hub's
 * lease owner, "<host>:<pid>"), when it started and when it was last heard of. */
typedef struct dt_node_info {
    const char *node;
    dt_time started_at;
    dt_time seen_at;
} dt_node_info;

/* ---- the contract ----------------------------------------------------------------------- */

/* How a watched store tells of other nodes' commits: see dt_store_watch. */
typedef void (*dt_store_changed_fn)(void *arg, const char *ids, bool work);

/* A window of one history, for a reader that pages through it (dt_store_read_history). */
typedef struct dt_history_window {
    dt_event *events;   /* in ARENA, in order; NULL when n is 0 */
    size_t n;
    int64_t gen;        /* the history's generation (dt_orch_item.history_gen) as read */
    bool more;          /* events follow the window */
} dt_history_window;

typedef struct dt_store_ops {
    const char *name;
    void (*close)(dt_store *s);
    dt_status (*create_instance)(dt_store *s, const dt_new_instance *ni, dt_error *err);
    dt_status (*send_message)(dt_store *s, const dt_message *m, dt_error *err);
    dt_status (*get_instance)(dt_store *s, const char *id, dt_arena *arena,
                              dt_instance_state **out, dt_error *err);
    dt_status (*read_history)(dt_store *s, const char *id, size_t from_seq, size_t max_bytes,
                              dt_arena *arena, dt_history_window *out, dt_error *err);
    dt_status (*lease_orchestrations)(dt_store *s, const char *owner, dt_time now,
                                      int64_t lease_us, size_t max,
                                      const dt_name_filter *names, dt_orch_item **out,
                                      size_t *n_out, dt_error *err);
    dt_status (*lease_activities)(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                                  size_t max, const dt_name_filter *names,
                                  dt_activity_item **out, size_t *n_out,
                                  dt_error *err);
    dt_status (*renew_orchestration)(dt_store *s, const dt_orch_item *item, dt_time until,
                                     dt_error *err);
    dt_status (*renew_activity)(dt_store *s, const dt_activity_item *item, dt_time until,
                                dt_error *err);
    dt_status (*abandon_orchestration)(dt_store *s, const dt_orch_item *item, dt_time retry_at,
                                       dt_error *err);
    dt_status (*abandon_activity)(dt_store *s, const dt_activity_item *item, dt_time retry_at,
                                  dt_error *err);
    dt_status (*commit)(dt_store *s, dt_commit *batch, size_t n, dt_commit_lease *lease,
                        uint64_t *ticket, dt_error *err);
    dt_status (*sync)(dt_store *s, uint64_t ticket, dt_error *err);
    bool (*sync_waits)(dt_store *s);   /* optional: false */
    uint64_t (*last_ticket)(dt_store *s);
    dt_status (*query_instances)(dt_store *s, const dt_query *q, dt_arena *arena,
                                 dt_instance_state **out, size_t *n_out, const char **next,
                                 dt_error *err);
    dt_status (*purge_instance)(dt_store *s, const char *id, dt_error *err);
    dt_status (*purge_instances)(dt_store *s, const dt_query *filter, size_t *n_purged,
                                 dt_error *err);
    dt_status (*queue_depths)(dt_store *s, dt_time now, size_t *orchestrations,
                              size_t *activities, dt_error *err);
    dt_status (*count_by_status)(dt_store *s, size_t counts[DT_STATUS_COUNT], dt_error *err);
    dt_status (*send_entity_message)(dt_store *s, const dt_entity_message *m, dt_error *err);
    dt_status (*lease_entities)(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                                size_t max, const dt_name_filter *names, dt_entity_item **out,
                                size_t *n_out, dt_error *err);
    dt_status (*renew_entity)(dt_store *s, const dt_entity_item *item, dt_time until,
                              dt_error *err);
    dt_status (*abandon_entity)(dt_store *s, const dt_entity_item *item, dt_time retry_at,
                                dt_error *err);
    dt_status (*get_entity)(dt_store *s, const char *id, bool with_state, dt_arena *arena,
                            dt_entity_state **out, dt_error *err);
    dt_status (*query_entities)(dt_store *s, const dt_entity_query *q, dt_arena *arena,
                                dt_entity_state **out, size_t *n_out, const char **next,
                                dt_error *err);
    dt_status (*clean_entities)(dt_store *s, bool remove_empty, bool release_orphaned,
                                dt_time now, size_t *removed, size_t *released,
                                dt_error *err);
    uint64_t (*search_steps)(dt_store *s);   /* NULL: the backend does not count */
    int (*schema_version)(dt_store *s);
    dt_status (*watch)(dt_store *s, dt_store_changed_fn changed, void *arg, dt_error *err);
    dt_status (*heartbeat)(dt_store *s, const char *node, dt_time started, dt_time now,
                           dt_error *err);
    dt_status (*nodes)(dt_store *s, dt_time since, dt_arena *arena, dt_node_info **out,
                       size_t *n_out, dt_error *err);
    dt_status (*next_due)(dt_store *s, dt_time now, dt_time *due, dt_error *err);
    bool (*speculates)(dt_store *s);   /* optional: false */
} dt_store_ops;

/* Every backend's handle starts with this header. */
struct dt_store {
    const dt_store_ops *ops;
};

/* ---- opening backends ------------------------------------------------------------------- */

typedef enum dt_sync_mode {
    DT_SYNC_FULL = 0,   /* default: fsync on every commit; durable against power loss */
    DT_SYNC_NORMAL = 1, /* WAL fsync at checkpoints only: survives process crashes, not power loss */
    DT_SYNC_OFF = 2     /* no fsync at all; for throw-away data */
} dt_sync_mode;

/* dt_store_open_sqlite: open (creating if needed) the SQLite store at PATH, with the parent
 * directory created if missing. WAL, synchronous per SYNC. DT_ERR_IO if the file cannot be
 * created or opened, DT_ERR_CORRUPT if it is not a durabletask database; ERR names the path.
 * Close with dt_store_close. The first open in a process, if SQLite is not initialized yet
 * (and no other thread is initializing it), turns off SQLite's allocation statistics for the
 * whole process (SQLITE_CONFIG_MEMSTATUS: sqlite3_memory_used then reads 0); a program that
 * wants them initializes SQLite first. */
dt_status dt_store_open_sqlite(const char *path, dt_sync_mode sync, dt_store **out,
                               dt_error *err);

/* dt_store_sqlite_limit_size: keep the SQLite STORE's database at most MAX_BYTES (whole
 * pages; 0: no limit beyond SQLite's own). A write that would grow it past the limit fails
 * DT_ERR_NO_SPACE, as on a full disk, its error naming the limit; in a dt_store_commit only
 * that entry fails (its result says so) and the others go in. From nineteen twentieths in
 * use, an episode that does not end its instance fails so too, before it writes: the last
 * twentieth is for ending instances (terminations rewrite rows, which needs room for a
 * while). Deleting (purging) frees pages that later writes reuse. A database already larger keeps its size and may not grow.
 * Its write-ahead log is checkpointed and cut back to an eighth of the limit (SQLite's
 * wal_autocheckpoint and journal_size_limit), so the files stay within about 9/8 of it while
 * checkpoints can run. DT_ERR_INVALID_ARG for a store that is not SQLite's (PostgreSQL has
 * quotas of its own). */
dt_status dt_store_sqlite_limit_size(dt_store *store, uint64_t max_bytes, dt_error *err);

/* dt_store_room: is there room for new work from clients (instances, events, signals)?
 * DT_ERR_NO_SPACE, naming the limit, once a SQLite store with a size limit has nine tenths of
 * it in use: the last tenth is kept for what ends or finishes work already stored (results,
 * terminations, purges), so a database clients filled can still be emptied. DT_OK otherwise,
 * and always for stores without a limit. */
dt_status dt_store_room(dt_store *store, dt_error *err);

/* dt_store_open_postgres: open the PostgreSQL store at URL (a libpq connection URI or
 * key=value string, e.g. "postgres://user@host:5432/db"), its tables in the PostgreSQL schema
 * SCHEMA (NULL: "dtask"; letters, digits and '_', at most 63: one task hub each), made or
 * migrated when opened, under an advisory lock, so nodes starting together migrate once.
 * DT_ERR_IO if it cannot connect, DT_ERR_CORRUPT if the schema was written by a newer
 * version; ERR names the server (never the password). The backend is being built (issue 16):
 * operations it does not do yet answer DT_ERR_UNIMPLEMENTED naming them. Close with
 * dt_store_close. */
dt_status dt_store_open_postgres(const char *url, const char *schema, dt_store **out,
                                 dt_error *err);

/* dt_store_is_postgres: does PATH name a PostgreSQL database (a postgres:// or postgresql://
 * URL) rather than a SQLite file? */
bool dt_store_is_postgres(const char *path);

/* dt_store_drop_postgres: drop schema SCHEMA of the PostgreSQL database at URL with all it
 * holds (a task hub deleted); DT_ERR_NOT_FOUND when there is no such schema. */
dt_status dt_store_drop_postgres(const char *url, const char *schema, dt_error *err);

/* ---- calling a store -------------------------------------------------------------------- */

/* dt_store_close: close S and free it. S may be NULL. */
void dt_store_close(dt_store *s);

/* dt_store_create_instance: DT_ERR_ALREADY_EXISTS if the id is taken and the reuse policy
 * refuses; nothing is changed then. */
dt_status dt_store_create_instance(dt_store *s, const dt_new_instance *ni, dt_error *err);

/* dt_store_send_message: append M to its instance's inbox. DT_ERR_NOT_FOUND if no instance. */
dt_status dt_store_send_message(dt_store *s, const dt_message *m, dt_error *err);

/* dt_store_get_instance: the row of ID, read into ARENA. DT_ERR_NOT_FOUND if none. */
dt_status dt_store_get_instance(dt_store *s, const char *id, dt_arena *arena,
                                dt_instance_state **out, dt_error *err);

/* dt_store_get_history: the history of ID in order, read into ARENA. DT_ERR_NOT_FOUND if no
 * such instance; an instance that has not run yet has an empty history. */
dt_status dt_store_get_history(dt_store *s, const char *id, dt_arena *arena, dt_event **out,
                               size_t *n_out, dt_error *err);

/* dt_store_load_history: the history events of ID with seq >= FROM_SEQ, in order, decoded into
 * ARENA: *N_OUT events (*OUT NULL and *N_OUT 0 when there are none, e.g. FROM_SEQ at or past
 * the end). Meant for the holder of ID's lease, which knows the length (item->history_len)
 * and may have the first FROM_SEQ events already; under the lease nothing is appended
 * meanwhile. DT_ERR_NOT_FOUND if no such instance. */
dt_status dt_store_load_history(dt_store *s, const char *id, size_t from_seq, dt_arena *arena,
                                dt_event **out, size_t *n_out, dt_error *err);

/* dt_store_read_history: the events of ID with seq >= FROM_SEQ, in order, decoded into ARENA,
 * as many as fit in MAX_BYTES of stored bytes (always one at least; 0: no bound; a store may
 * end a bounded window sooner after many small events, never later), with the history's
 * generation read in the same snapshot. A reader that pages through a history with it holds
 * one window at a time, never the whole; a generation that differs from the one its first
 * window saw means the history was replaced (continue-as-new, rewind) in between, and the
 * windows do not belong together. DT_ERR_NOT_FOUND if no such instance. */
dt_status dt_store_read_history(dt_store *s, const char *id, size_t from_seq, size_t max_bytes,
                                dt_arena *arena, dt_history_window *out, dt_error *err);

/* The stored bytes the server's readers (a history streamed, shown over HTTP, walked by a
 * recursive purge) read at a time. */
#define DT_HISTORY_WINDOW ((size_t)256 << 10)

/* dt_store_lease_orchestrations: lease up to MAX instances that have visible inbox messages and
 * no live lease, until NOW + LEASE_US. OUT is a caller-supplied array of MAX pointers; the
 * store fills the first *N_OUT (0 when there is no work), each item allocated inside its own
 * arena and freed by the caller with dt_orch_item_free. Items carry history_len, not the
 * history itself (past is NULL): see dt_orch_item and dt_store_load_history. */
dt_status dt_store_lease_orchestrations(dt_store *s, const char *owner, dt_time now,
                                        int64_t lease_us, size_t max,
                                        const dt_name_filter *names, dt_orch_item **out,
                                        size_t *n_out, dt_error *err);

/* dt_store_lease_activities: likewise for activity work items (OUT again a caller-supplied
 * array of MAX pointers); free each with dt_activity_item_free. With NAMES, both lease only
 * work of those orchestrator / activity names. */
dt_status dt_store_lease_activities(dt_store *s, const char *owner, dt_time now,
                                    int64_t lease_us, size_t max,
                                    const dt_name_filter *names, dt_activity_item **out,
                                    size_t *n_out, dt_error *err);

/* dt_store_watch: call CHANGED(ARG, IDS, WORK), from a thread of the store's, whenever another
 * handle on the same database (another node) commits something that may be work or changes
 * an instance: a backend shared by many nodes wakes them this way instead of their polling
 * (PostgreSQL: LISTEN/NOTIFY). IDS names the instances whose state the commit changed, one per
 * line, for the waits on them; NULL when it does not say (any may have). WORK: whether the
 * commit may have left work for any node to take; false when the committing node leased all
 * it made ready for itself (dt_commit_lease), so other nodes' takers need not look. Calls may
 * come in bursts and for one's own commits too; they stop when S is closed. One watcher per
 * store. DT_ERR_UNIMPLEMENTED for a backend that has no such thing (SQLite: other processes'
 * work is found by polling). */
dt_status dt_store_watch(dt_store *s, dt_store_changed_fn changed, void *arg, dt_error *err);

/* dt_store_heartbeat: record that NODE, started at STARTED, is alive at NOW; nodes not heard
 * of for an hour are forgotten. dt_store_nodes: the nodes heard of at or after SINCE, by
 * name, into ARENA (*OUT NULL when none). Both DT_ERR_UNIMPLEMENTED for a backend one process
 * owns (SQLite). */
dt_status dt_store_heartbeat(dt_store *s, const char *node, dt_time started, dt_time now,
                             dt_error *err);
dt_status dt_store_nodes(dt_store *s, dt_time since, dt_arena *arena, dt_node_info **out,
                         size_t *n_out, dt_error *err);

/* dt_store_next_due: when the earliest work queued for later (a timer, a scheduled start or
 * signal, a retry) becomes visible after NOW, into *DUE (0: nothing is queued for later).
 * A watched store's hub polls for work only at that time, on a change, or once a second, so
 * an idle node costs almost nothing. DT_ERR_UNIMPLEMENTED where the hub polls anyway. */
dt_status dt_store_next_due(dt_store *s, dt_time now, dt_time *due, dt_error *err);

/* dt_store_schema_version: the version of S's schema (each backend numbers its own), which
 * opening brought up to date. */
int dt_store_schema_version(dt_store *s);

/* dt_store_search_steps: how much reading the searches for work to lease have done since S
 * was opened, in the backend's own unit (SQLite: virtual machine steps of those statements),
 * or 0 when the backend does not count. It grows with the rows a search reads: the tests use
 * it to show that a filtered lease never reads the work of names it does not take. */
uint64_t dt_store_search_steps(dt_store *s);

/* dt_store_renew_*: extend a lease still held to UNTIL. DT_ERR_LEASE_LOST if it is not held. */
dt_status dt_store_renew_orchestration(dt_store *s, const dt_orch_item *item, dt_time until,
                                       dt_error *err);
dt_status dt_store_renew_activity(dt_store *s, const dt_activity_item *item, dt_time until,
                                  dt_error *err);

/* dt_store_abandon_*: give the lease up so the work is redelivered: from RETRY_AT, or at
 * once when RETRY_AT is 0 or past (until then nobody may lease it, and the old lease's
 * token is no longer good for anything). Nothing else changes. DT_ERR_LEASE_LOST if it was
 * not held. */
dt_status dt_store_abandon_orchestration(dt_store *s, const dt_orch_item *item,
                                         dt_time retry_at, dt_error *err);
dt_status dt_store_abandon_activity(dt_store *s, const dt_activity_item *item, dt_time retry_at,
                                    dt_error *err);

/* dt_store_commit: commit BATCH in one transaction (group commit). Each entry whose lease is
 * no longer held gets result DT_ERR_LEASE_LOST and changes nothing; the others are applied.
 * Returns an error only if the transaction as a whole failed, in which case nothing of the
 * batch was applied and every entry's result is that error. */
dt_status dt_store_commit(dt_store *s, dt_commit *batch, size_t n, dt_error *err);

/* dt_commit_touches_entities: may an entry of BATCH that applied have given an entity work (a
 * message, a lock let go)? Commits lease no entities: their takers look in the store. */
bool dt_commit_touches_entities(const dt_commit *batch, size_t n);

/* dt_store_commit_lease: dt_store_commit, and in the same transaction lease what the batch
 * made ready, as LEASE asks (see dt_commit_lease). Leasing is best effort: work it does not
 * take stays for the lease_* calls. On error nothing is leased (n_* are 0). */
dt_status dt_store_commit_lease(dt_store *s, dt_commit *batch, size_t n, dt_commit_lease *lease,
                                dt_error *err);

/* dt_store_commit_deferred: dt_store_commit_lease, but the store may return before the commit
 * is durable: *TICKET names it, and dt_store_sync(TICKET) makes it durable (a store whose
 * commits are durable when they return numbers them all the same, so a read can wait until
 * the caller has told of what it sees: dt_store_last_ticket; 0 only for a batch that failed
 * before anything could be seen). Until then the caller tells no one of the outcome (no waiter woken, no result
 * answered, no leased work run), so a power cut can lose only what nobody was told of; the
 * committer meanwhile prepares the next batch, so the fsync of one batch overlaps the work
 * of the next. A read of the store may see a commit before it is durable. */
dt_status dt_store_commit_deferred(dt_store *s, dt_commit *batch, size_t n,
                                   dt_commit_lease *lease, uint64_t *ticket, dt_error *err);

/* dt_store_sync: make every commit up to TICKET durable (one fsync covers all of them).
 * Safe to call from another thread while commits go on. DT_ERR_IO if the disk refused. */
dt_status dt_store_sync(dt_store *s, uint64_t ticket, dt_error *err);

/* dt_store_sync_waits: does dt_store_sync wait for a disk (an fsync, worth sharing among
 * commits), or are deferred commits durable when they return (nothing to share)? */
bool dt_store_sync_waits(dt_store *s);

/* dt_store_speculates: does the store commit speculative episodes (dt_episode.consumes)? */
bool dt_store_speculates(dt_store *s);

/* dt_store_last_ticket: the ticket of the latest deferred commit (0: none yet). Whatever a
 * read sees was committed at or before it: a reader that must see only durable state waits
 * until that ticket is synced. */
uint64_t dt_store_last_ticket(dt_store *s);

/* dt_store_query_instances: instances matching Q, ordered by instance id (bytewise), at most a
 * page. *OUT is an array of *N_OUT states in ARENA (NULL when none); *NEXT is the continuation
 * token for the next page (ARENA memory; the last instance id of this page) or NULL when no
 * more match. The id prefix is literal: no character in it is a wildcard. Without
 * with_payloads, input, output and custom status are NULL. DT_ERR_INVALID_ARG for a page size
 * over DT_QUERY_PAGE_MAX or a status that is not a dt_runtime_status. */
dt_status dt_store_query_instances(dt_store *s, const dt_query *q, dt_arena *arena,
                                   dt_instance_state **out, size_t *n_out, const char **next,
                                   dt_error *err);

/* dt_store_purge_instance: delete instance ID with its history, inbox and activities.
 * DT_ERR_NOT_FOUND if none; DT_ERR_STATE (nothing deleted, ERR names the id and status) if it
 * has not finished (its status is not terminal). */
dt_status dt_store_purge_instance(dt_store *s, const char *id, dt_error *err);

/* dt_store_purge_instances: purge every finished instance matching FILTER (its statuses, if
 * given, are intersected with the terminal ones; paging fields are ignored), a batch of
 * instances a transaction (each whole: an instance goes with everything that hangs off it),
 * so a large purge does not hold up the store's other work until it is done; *N_PURGED says
 * how many went, also when a later batch failed. A live instance is never purged.
 * DT_ERR_INVALID_ARG for a status that is not a dt_runtime_status. */
dt_status dt_store_purge_instances(dt_store *s, const dt_query *filter, size_t *n_purged,
                                   dt_error *err);

/* dt_store_queue_depths: how many instances have messages visible at NOW, and how many
 * activity work items are visible at NOW and not leased (for metrics). */
dt_status dt_store_queue_depths(dt_store *s, dt_time now, size_t *orchestrations,
                                size_t *activities, dt_error *err);

/* dt_store_count_by_status: how many instances the store holds in each runtime status
 * (COUNTS[status]), counted by the database in one statement, not row by row here. */
dt_status dt_store_count_by_status(dt_store *s, size_t counts[DT_STATUS_COUNT], dt_error *err);

/* ---- entities ---------------------------------------------------------------------------- */

/* dt_store_send_entity_message: append M to its entity's queue (the row is created if there
 * is none). DT_ERR_INVALID_ARG for a malformed entity id. */
dt_status dt_store_send_entity_message(dt_store *s, const dt_entity_message *m, dt_error *err);

/* dt_store_lease_entities: lease up to MAX entities that have a message they may take at NOW
 * (visible, and from the lock holder when locked) and no live lease, as the lease_* calls
 * above (OUT a caller-supplied array of MAX pointers). Each item holds every visible message
 * of its entity. NAMES (NULL: any) takes only entities of those names (lowercase). Free each
 * with dt_entity_item_free. */
dt_status dt_store_lease_entities(dt_store *s, const char *owner, dt_time now, int64_t lease_us,
                                  size_t max, const dt_name_filter *names, dt_entity_item **out,
                                  size_t *n_out, dt_error *err);

/* dt_store_renew_entity / dt_store_abandon_entity: as for orchestrations. */
dt_status dt_store_renew_entity(dt_store *s, const dt_entity_item *item, dt_time until,
                                dt_error *err);
dt_status dt_store_abandon_entity(dt_store *s, const dt_entity_item *item, dt_time retry_at,
                                  dt_error *err);

/* dt_store_get_entity: entity ID as a client sees it, in ARENA (the state only WITH_STATE).
 * DT_ERR_NOT_FOUND if there is no row. */
dt_status dt_store_get_entity(dt_store *s, const char *id, bool with_state, dt_arena *arena,
                              dt_entity_state **out, dt_error *err);

/* dt_store_query_entities: a page of entities matching Q, ordered by id, in ARENA; *NEXT as
 * for instances. */
dt_status dt_store_query_entities(dt_store *s, const dt_entity_query *q, dt_arena *arena,
                                  dt_entity_state **out, size_t *n_out, const char **next,
                                  dt_error *err);

/* dt_store_clean_entities: with REMOVE_EMPTY, delete the rows of entities without state,
 * lock, messages or lease; with RELEASE_ORPHANED, release locks whose holder is not running
 * (missing, finished, or on another execution). Counts in *REMOVED and *RELEASED. */
dt_status dt_store_clean_entities(dt_store *s, bool remove_empty, bool release_orphaned,
                                  dt_time now, size_t *removed, size_t *released,
                                  dt_error *err);

/* dt_orch_item_free / dt_activity_item_free / dt_entity_item_free: free an item and everything
 * in its arena. */
void dt_orch_item_free(dt_orch_item *item);
void dt_activity_item_free(dt_activity_item *item);
void dt_entity_item_free(dt_entity_item *item);

#ifdef __cplusplus
}
#endif
#endif
