/* durabletask/core.h — the data model every layer shares: status codes and errors, runtime
 * statuses, instance ids, time (ISO 8601 both ways), logging, JSON checks, growing arrays,
 * arenas, failure details, history events, orchestrator actions and instance states; the
 * requests several layers exchange (starts, queries, name filters), the executor contract,
 * and the limits and defaults every layer shares. Nothing here does I/O. Handles elsewhere are
 * opaque; the records here are plain data because every layer reads their fields. Their
 * strings live in an arena (or the caller's memory), never owned by the record itself. */
#ifndef DURABLETASK_CORE_H
#define DURABLETASK_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ---------------------------------------------------------------------- */

typedef enum dt_status {
    DT_OK = 0,
    DT_ERR_INVALID_ARG,     /* a caller-supplied value breaks a rule (id, JSON, option) */
    DT_ERR_NOT_FOUND,       /* no such instance, orchestrator, activity, ... */
    DT_ERR_ALREADY_EXISTS,  /* an instance with that id exists and may not be replaced */
    DT_ERR_NOMEM,           /* allocation failed */
    DT_ERR_IO,              /* the store could not read or write (disk, permissions) */
    DT_ERR_CORRUPT,         /* stored data or a message could not be decoded */
    DT_ERR_TIMEOUT,         /* a wait ran out of time */
    DT_ERR_STATE,           /* the operation does not fit the instance's current state */
    DT_ERR_LEASE_LOST,      /* the work item's lease expired or was taken by another worker */
    DT_ERR_NONDETERMINISM,  /* replay found code that no longer matches history */
    DT_ERR_TASK_FAILED,     /* an activity or orchestration failed; details in a dt_failure */
    DT_ERR_SHUTDOWN,        /* the hub or worker is stopping */
    DT_ERR_UNIMPLEMENTED,   /* the operation is not supported (yet) by this build or backend */
    DT_ERR_INTERNAL,        /* a broken invariant; a bug */
    DT_ERR_NO_SPACE         /* the store's disk is full, or its database at its size limit:
                             * nothing was written (retry later) */
} dt_status;

/* dt_strerror: a static sentence for STATUS. Never NULL. */
const char *dt_strerror(dt_status status);

/* A status with a message naming what was wrong. Fixed size so error paths never allocate. */
typedef struct dt_error {
    dt_status code;
    char message[512];
} dt_error;

/* dt_error_set: record CODE and a printf-style message in ERR (ERR may be NULL); returns CODE so
 * callers can write `return dt_error_set(err, DT_ERR_INVALID_ARG, "bad id '%s'", id);`. */
dt_status dt_error_set(dt_error *err, dt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dt_error_clear: reset ERR to DT_OK with an empty message (ERR may be NULL). */
void dt_error_clear(dt_error *err);

/* ---- runtime status (numbers match the Durable Task protocol's OrchestrationStatus) ---- */

typedef enum dt_runtime_status {
    DT_STATUS_RUNNING = 0,
    DT_STATUS_COMPLETED = 1,
    DT_STATUS_CONTINUED_AS_NEW = 2,
    DT_STATUS_FAILED = 3,
    DT_STATUS_CANCELED = 4,
    DT_STATUS_TERMINATED = 5,
    DT_STATUS_PENDING = 6,
    DT_STATUS_SUSPENDED = 7
} dt_runtime_status;
#define DT_STATUS_COUNT 8   /* the statuses above, for arrays indexed by them */

/* dt_runtime_status_name: "Running", "Completed", ... as the Durable Task SDKs print them. */
const char *dt_runtime_status_name(dt_runtime_status s);

/* dt_runtime_status_parse: the inverse of dt_runtime_status_name (case-insensitive). */
dt_status dt_runtime_status_parse(const char *name, dt_runtime_status *out);

/* dt_runtime_status_is_terminal: Completed, Failed, Terminated or Canceled. */
bool dt_runtime_status_is_terminal(dt_runtime_status s);

/* ---- time --------------------------------------------------------------------------- */

/* Wall-clock time in microseconds since the Unix epoch, UTC. */
typedef int64_t dt_time;

/* dt_now: the current wall-clock time. */
dt_time dt_now(void);

/* dt_deadline_ms: the CLOCK_REALTIME moment MS milliseconds from now, as
 * pthread_cond_timedwait takes it. */
struct timespec dt_deadline_ms(int64_t ms);

/* The range of times the Durable Task protocol can carry (its Timestamp): from
 * 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z. The other SDKs refuse times outside it,
 * so we never write one: the codec refuses them both ways and timers outside it fail. */
#define DT_TIME_MIN INT64_C(-62135596800000000)
#define DT_TIME_MAX INT64_C(253402300799999999)

/* dt_time_format: ISO 8601 UTC with milliseconds ("2026-11-25T15:22:53.123Z") into BUF. */
void dt_time_format(dt_time t, char buf[32]);

/* dt_time_parse: TEXT as an ISO 8601 time: YYYY-MM-DD, optionally followed by 'T' (or 't' or
 * a space) and HH:MM[:SS[.fraction]], then 'Z' or an offset (+HH:MM, +HHMM, -HH:MM, -HHMM);
 * no zone means UTC. A leap second (SS = 60) counts as the first second of the next minute,
 * as POSIX time has no leap seconds; fraction digits past the sixth are dropped.
 * DT_ERR_INVALID_ARG (OUT untouched) for anything else: a day the month does not have, an
 * hour past 23, trailing text, or a time outside DT_TIME_MIN..DT_TIME_MAX. */
dt_status dt_time_parse(const char *text, dt_time *out);

/* dt_time_bound: T, a time given as a bound of a query (dt_query, dt_entity_query), as their
 * fields keep it. A 0 there means "no bound", so a bound at the epoch itself is kept as -1,
 * a microsecond before it (nothing we store is dated in between: an instance's completed_at
 * is 0 only while it has not completed, and a completed-time bound matches completed
 * instances only); any other T as it is. */
dt_time dt_time_bound(dt_time t);

/* ---- logging ---------------------------------------------------------------------------- */

typedef enum dt_log_level {
    DT_LOG_DEBUG = 0,
    DT_LOG_INFO = 1,
    DT_LOG_WARN = 2,
    DT_LOG_ERROR = 3,
    DT_LOG_OFF = 4
} dt_log_level;

/* dt_log_set_level: lines below LEVEL are not written. The default is DT_LOG_WARN. */
void dt_log_set_level(dt_log_level level);

/* dt_log_level_parse: "debug", "info", "warn", "error" or "off" (case-insensitive). */
dt_status dt_log_level_parse(const char *name, dt_log_level *out);

/* dt_log: one line to stderr: time, level, instance id (if any) and the message. Safe from
 * any thread; a line is written whole. */
void dt_log(dt_log_level level, const char *instance_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct dt_arena dt_arena;   /* see "arenas" below */

/* ---- instance ids ------------------------------------------------------------------- */

#define DT_INSTANCE_ID_MAX 100

/* Every identifier and name, on every path in (HTTP, gRPC, worker actions, the CLI, the SDK),
 * is checked with the functions below, which share these rules: valid UTF-8 (what the
 * protocol's string fields must hold, or protobuf-validating SDKs refuse every message that
 * carries it), no control characters (C0, DEL, C1: a newline would forge a log line), and a
 * length limit in bytes. On failure ERR names the field and the rule. */

/* dt_utf8_valid_n: the N bytes at DATA (need not be NUL-terminated; a NUL byte is valid) are
 * well-formed UTF-8: no stray continuation bytes, no overlong forms, no surrogates, nothing
 * past U+10FFFF. dt_utf8_valid: the same for a NUL-terminated S; NULL counts as valid. */
bool dt_utf8_valid_n(const void *data, size_t n);
bool dt_utf8_valid(const char *s);

/* dt_instance_id_validate: the Durable Task rules: 1 to 100 bytes, not starting with '@'
 * (reserved for entities), none of '/', '\\', '#', '?', and the shared rules above. */
dt_status dt_instance_id_validate(const char *id, dt_error *err);

/* Names: of orchestrators, activities, events and entity operations. Versions: of
 * orchestrations and activities. */
#define DT_NAME_MAX 256
#define DT_VERSION_MAX 256
/* Entity messages: a request id (of a signal, call or critical section) keeps the rules of a
 * name (dt_name_validate) when one is given; a critical section locks at most DT_LOCK_SET_MAX
 * entities. Every entity work item carries them, so they are bounded as names are. */
#define DT_LOCK_SET_MAX 256

/* dt_name_validate: NAME is 1 to DT_NAME_MAX bytes under the shared rules. WHAT names the
 * field in ERR ("orchestrator name", "event name", ...). */
dt_status dt_name_validate(const char *name, const char *what, dt_error *err);

/* dt_version_validate: VERSION is NULL (none), or 0 to DT_VERSION_MAX bytes under the shared
 * rules ("" is no version, as the protocol has it). WHAT names the field in ERR. */
dt_status dt_version_validate(const char *version, const char *what, dt_error *err);

/* Task hub names: the hub a call is for (the protocol's "taskhub" metadata, the HTTP API's
 * taskHub parameter). No name means DT_TASK_HUB_DEFAULT. */
#define DT_TASK_HUB_DEFAULT "default"
#define DT_TASK_HUB_NAME_MAX 64

/* Entity ids: '@' + name + '@' + key (the Durable Task SDKs' form). The name is not empty
 * and has no '@' (the SDKs lowercase it); the key is the rest and may be empty. The whole id
 * follows the instance id rules but for its leading '@'. */

/* dt_entity_id_validate: ID is an entity id as above (1 to DT_INSTANCE_ID_MAX bytes, none of
 * '/', '\\', '#', '?', and the shared rules). On failure ERR names the rule. */
dt_status dt_entity_id_validate(const char *id, dt_error *err);

/* dt_entity_id_name_len: the length of ID's name part (ID valid), for comparing names. */
size_t dt_entity_id_name_len(const char *id);

/* dt_entity_id_normalize: ID with its name lowercased, in ARENA; NULL when out of memory or ID
 * is not an entity id (ERR says why). */
const char *dt_entity_id_normalize(dt_arena *arena, const char *id, dt_error *err);

/* dt_task_hub_validate: 1 to DT_TASK_HUB_NAME_MAX letters, digits, '-' and '_', starting with a
 * letter or digit (a hub's name is also its database file's). ERR names the rule and NAME. */
dt_status dt_task_hub_validate(const char *name, dt_error *err);

/* dt_instance_id_generate: a new random id (a UUID v4 in canonical form) into OUT. */
void dt_instance_id_generate(char out[37]);

/* dt_execution_id_generate: a new execution id, 32 lowercase hex digits (the form the Durable
 * Task SDKs expect, e.g. in the JavaScript SDK's default sub-orchestration ids). */
void dt_execution_id_generate(char out[33]);

/* ---- JSON payloads -------------------------------------------------------------------- */

/* dt_json_validate: DT_OK if TEXT is one complete JSON value (NULL counts as "no payload" and
 * is valid). On failure ERR says where the text stops being JSON; WHAT names the payload.
 * DT_ERR_NOMEM, naming the bound, when reading it would take jansson past
 * dt_json_limit_held's bound (try again later). */
dt_status dt_json_validate(const char *text, const char *what, dt_error *err);

/* dt_json_limit_held: bound the memory jansson holds in the whole process to MAX_BYTES (0: no
 * bound): jansson builds a tree to read a text, and a tree can take fifty and more times the
 * text, so concurrent large payloads could take gigabytes. Past the bound jansson's
 * allocations fail and the parse with them, unless nothing else holds any: one payload alone
 * is always read (at most about a hundred times DT_PAYLOAD_MAX), so the bound is on what
 * many at once hold. It installs jansson's allocation functions, so
 * call it before anything in the process uses jansson (`dtask serve` does, from
 * --max-held-mb); later calls change the bound only. A program that never calls it keeps
 * jansson's own. */
void dt_json_limit_held(size_t max_bytes);

/* dt_json_held: the bytes jansson holds now (0 unless dt_json_limit_held counts them);
 * dt_json_held_max: the bound (0: none). */
size_t dt_json_held(void);
size_t dt_json_held_max(void);

/* dt_json_unbounded: with ON, this thread's use of jansson goes past the bound (for what must
 * not fail for it: a result built after its effect, an HTTP answer); the setting before. */
bool dt_json_unbounded(bool on);

/* dt_json_free: free P, what jansson allocated and handed over (json_dumps's text): with
 * dt_json_limit_held's functions installed, free() would be wrong for it. NULL is fine. */
void dt_json_free(void *p);

/* dt_json_refused: was one of jansson's allocations on this thread refused for the bound
 * since the last call? (The call clears it.) Callers of jansson tell a refused parse from
 * text that is not JSON by it. */
bool dt_json_refused(void);

/* Tags: a JSON object of string values, on an instance (given at its start, added as it
 * completes) and on what it schedules (activities, sub-orchestrations). They travel whole in
 * every work item, GetInstance answer and row of a listing, so they are bounded like payloads:
 * at most DT_TAGS_MAX bytes of JSON text in all (a page of listed rows, each with its tags,
 * still fits a 4 MiB message by DT_QUERY_PAGE_BYTES). Each key follows the rules of a name
 * (dt_name_validate: 1 to DT_NAME_MAX bytes, no control characters: a key is shown as a label
 * and a newline in it would forge a line); a value is any string but for NUL, which the
 * protocol's strings cannot carry (newlines are fine). */
#define DT_TAGS_MAX ((size_t)64 << 10)

/* dt_tags_validate: DT_OK if TEXT (NULL: none) is tags by the rules above, the form tags take
 * on every path in; WHAT names them in ERR, with the rule and the limit. */
dt_status dt_tags_validate(const char *text, const char *what, dt_error *err);

/* Trace context: the W3C traceparent and tracestate that a caller or an orchestration passes
 * on (the protocol's parentTraceContext), and the span id a worker reports for an
 * orchestration's own span. They are copied into the work items of what they start, so every
 * path in bounds them and keeps them to the headers' character set: printable ASCII, with
 * spaces only in a tracestate (around its commas). A traceparent is at most
 * DT_TRACE_PARENT_MAX bytes (a version-00 one is 55; later versions may add fields), a
 * tracestate at most DT_TRACE_STATE_MAX (what W3C asks every vendor to pass on), a span id
 * at most DT_SPAN_ID_MAX (W3C's are 16 hex digits). */
#define DT_TRACE_PARENT_MAX 64
#define DT_TRACE_STATE_MAX 512
#define DT_SPAN_ID_MAX 64

/* dt_trace_validate: PARENT and STATE (either NULL: none) keep the rules above. On failure ERR
 * names the field ("traceParent", "traceState") and the rule. */
dt_status dt_trace_validate(const char *parent, const char *state, dt_error *err);

/* dt_span_id_validate: SPAN_ID (NULL: none) keeps the rules above ("spanID" in ERR). */
dt_status dt_span_id_validate(const char *span_id, dt_error *err);

/* dt_payload_is_token: TEXT is a large-payload token, what the SDKs' payload offload sends in
 * place of a payload kept elsewhere ("blob:v1:<container>:<blob>", "blob:v2:..."): "blob:v",
 * a version number, ':', then up to DT_PAYLOAD_TOKEN_MAX bytes in all of printable ASCII. No
 * JSON text starts so, so the two never mix. */
#define DT_PAYLOAD_TOKEN_MAX 2048
bool dt_payload_is_token(const char *text);

/* dt_payload_validate: DT_OK if TEXT is a payload: JSON (as dt_json_validate) or a
 * large-payload token, which passes through untouched. */
dt_status dt_payload_validate(const char *text, const char *what, dt_error *err);

/* Size limits, enforced by the hub on the way in so every surface (gRPC, HTTP, the C API and
 * worker actions) has the same rule. DT_PAYLOAD_MAX bounds one payload: a start input, event
 * data, a terminate or suspend reason, an activity input or result, a failure's details, a
 * custom status, an orchestration's output, an entity operation's input. 1 MiB, so a work item
 * carrying three of them still fits the 4 MiB that the .NET, Java, Python and JavaScript SDKs
 * receive by default (and a request carrying one fits the HTTP API's 1 MiB body with room for
 * nothing else, which is why the HTTP limit is not larger). A payload over it is refused
 * (DT_ERR_INVALID_ARG, naming the limit); one a worker returns fails what it completes
 * (PayloadTooLarge). DT_HISTORY_MAX bounds the payload bytes of one execution's history (its
 * events' names, inputs, results and failures): an episode that would leave a running
 * instance's history over it fails the instance instead (HistoryTooLarge), so an instance
 * never grows past what every replay loads into memory and a worker reads at every episode.
 * dt_hub_options.max_history_bytes lowers or raises it for one hub. */
#define DT_PAYLOAD_MAX ((size_t)1 << 20)
#define DT_HISTORY_MAX ((size_t)64 << 20)

/* An orchestration work item given back without a result (abandoned by its worker, or its
 * worker's stream broke while it held it) this many times in a row is a poison item: the hub
 * fails its instance (PoisonWorkItem), counts it (dtask_poison_items_total) and logs it. */
#define DT_POISON_DELIVERIES 10

/* A worker's work item filter lists at most this many names (with their versions, each
 * name-and-version one) of each kind. A filtered worker's search for work looks each one up
 * while work of any name is waiting, so the cap bounds what one idle stream can cost; more
 * is refused (DT_ERR_INVALID_ARG, naming the limit). */
#define DT_FILTER_MAX 1000

/* dt_payload_check_size: DT_OK if TEXT (NULL is none) is at most DT_PAYLOAD_MAX bytes; else
 * DT_ERR_INVALID_ARG with ERR naming WHAT, its size and the limit. */
dt_status dt_payload_check_size(const char *text, const char *what, dt_error *err);

/* ---- growing arrays -------------------------------------------------------------------- */

/* dt_grow: make room for NEED elements of SIZE bytes in the heap array V (NULL: none yet),
 * whose capacity is *CAP. Returns the array to use from now on (V itself when it has room),
 * with *CAP updated; NULL when out of memory or the size overflows, with V and *CAP
 * untouched (V is still the caller's to free). Capacity at least doubles, so appending one
 * at a time costs amortized constant time. Free the array with free(). */
void *dt_grow(void *v, size_t *cap, size_t need, size_t size);

/* ---- arenas ------------------------------------------------------------------------------ */

/* A bump allocator: many allocations, one free. Replay code allocates only from the episode's
 * arena, so a dt_await that ends the episode early leaks nothing. Not thread-safe. */

/* dt_arena_new: a new empty arena; NULL when out of memory. Free with dt_arena_free. */
dt_arena *dt_arena_new(void);

/* dt_arena_free: release the arena and every allocation from it. ARENA may be NULL. */
void dt_arena_free(dt_arena *arena);

/* dt_arena_held: the bytes ARENA holds from the allocator (all its chunks, used or not); 0 for
 * NULL. What keeping it costs, for callers that count memory a client makes them keep. */
size_t dt_arena_held(const dt_arena *arena);

/* dt_arena_alloc: N zeroed bytes aligned for any type, owned by ARENA; NULL when out of memory. */
void *dt_arena_alloc(dt_arena *arena, size_t n);

/* dt_arena_strdup / dt_arena_strndup: a copy of S in ARENA (NULL in gives NULL out). */
char *dt_arena_strdup(dt_arena *arena, const char *s);
char *dt_arena_strndup(dt_arena *arena, const char *s, size_t n);

/* dt_arena_memdup: a copy of N bytes in ARENA. */
void *dt_arena_memdup(dt_arena *arena, const void *p, size_t n);

/* dt_tags_merge: the tags of BASE with those of EXTRA added (EXTRA's value wins for a key in
 * both), as a JSON object in ARENA, keys sorted; NULL when out of memory or either is not an
 * object of strings (BASE NULL: none). Only their form is checked, not dt_tags_validate's
 * limits: BASE may be tags stored before those limits, and the caller checks the result. */
const char *dt_tags_merge(dt_arena *arena, const char *base, const char *extra);


/* dt_arena_printf / dt_arena_vprintf: a formatted string in ARENA; NULL when out of memory. */
char *dt_arena_printf(dt_arena *arena, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *dt_arena_vprintf(dt_arena *arena, const char *fmt, va_list ap);

/* ---- failure details (TaskFailureDetails) -------------------------------------------- */

typedef struct dt_failure {
    const char *error_type;      /* e.g. "ActivityNotRegistered", "TaskFailed" */
    const char *message;
    const char *stack_trace;     /* optional, may be NULL */
    struct dt_failure *inner;    /* optional cause, may be NULL */
    bool non_retriable;
    /* optional: the SDK's exception properties, a JSON object (the protocol's map of Values) */
    const char *properties;
} dt_failure;

/* dt_failure_new / dt_failure_vnew: a failure in ARENA with copies of TYPE and the formatted
 * message; NULL when out of memory (a message that did not fit is NULL). */
dt_failure *dt_failure_new(dt_arena *arena, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
dt_failure *dt_failure_vnew(dt_arena *arena, const char *type, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* dt_failure_copy: a deep copy of F (and its inner chain) in ARENA; NULL in gives NULL out. */
dt_failure *dt_failure_copy(dt_arena *arena, const dt_failure *f);

/* ---- history events -------------------------------------------------------------------- */

/* Event types: the values are the field numbers of HistoryEvent's eventType oneof in the
 * Durable Task protocol, so the codec maps them one to one. */
typedef enum dt_event_type {
    DT_EVENT_NONE = 0,
    DT_EVENT_EXECUTION_STARTED = 3,
    DT_EVENT_EXECUTION_COMPLETED = 4,
    DT_EVENT_EXECUTION_TERMINATED = 5,
    DT_EVENT_TASK_SCHEDULED = 6,
    DT_EVENT_TASK_COMPLETED = 7,
    DT_EVENT_TASK_FAILED = 8,
    DT_EVENT_SUB_ORCHESTRATION_CREATED = 9,
    DT_EVENT_SUB_ORCHESTRATION_COMPLETED = 10,
    DT_EVENT_SUB_ORCHESTRATION_FAILED = 11,
    DT_EVENT_TIMER_CREATED = 12,
    DT_EVENT_TIMER_FIRED = 13,
    DT_EVENT_ORCHESTRATOR_STARTED = 14,
    DT_EVENT_ORCHESTRATOR_COMPLETED = 15,
    DT_EVENT_EVENT_SENT = 16,
    DT_EVENT_EVENT_RAISED = 17,
    DT_EVENT_GENERIC = 18,
    DT_EVENT_HISTORY_STATE = 19,
    DT_EVENT_CONTINUE_AS_NEW = 20,
    DT_EVENT_EXECUTION_SUSPENDED = 21,
    DT_EVENT_EXECUTION_RESUMED = 22,
    DT_EVENT_ENTITY_SIGNALED = 23,        /* EntityOperationSignaled */
    DT_EVENT_ENTITY_CALLED = 24,          /* EntityOperationCalled */
    DT_EVENT_ENTITY_COMPLETED = 25,       /* EntityOperationCompleted */
    DT_EVENT_ENTITY_FAILED = 26,          /* EntityOperationFailed */
    DT_EVENT_ENTITY_LOCK_REQUESTED = 27,  /* EntityLockRequested */
    DT_EVENT_ENTITY_LOCK_GRANTED = 28,    /* EntityLockGranted */
    DT_EVENT_ENTITY_UNLOCK_SENT = 29,     /* EntityUnlockSent */
    DT_EVENT_EXECUTION_REWOUND = 30
} dt_event_type;

/* dt_event_type_name: "ExecutionStarted", "TaskScheduled", ... (the protocol's names). */
const char *dt_event_type_name(dt_event_type t);

/* dt_event_is_scheduling: an event an orchestrator's action put in history under its own
 * sequence number (event_id): TaskScheduled, TimerCreated, SubOrchestrationInstanceCreated,
 * EventSent. Inline: replay and the hub ask it of every event of every episode. */
static inline bool dt_event_is_scheduling(dt_event_type t)
{
    return t == DT_EVENT_TASK_SCHEDULED || t == DT_EVENT_TIMER_CREATED ||
           t == DT_EVENT_SUB_ORCHESTRATION_CREATED || t == DT_EVENT_EVENT_SENT;
}

/* dt_event_is_entity_message: an event an orchestration sends to entities (its
 * sendEntityMessage action's, kept in its history under the action's id): an operation
 * signaled or called, a lock requested, an unlock sent. */
static inline bool dt_event_is_entity_message(dt_event_type t)
{
    return t == DT_EVENT_ENTITY_SIGNALED || t == DT_EVENT_ENTITY_CALLED ||
           t == DT_EVENT_ENTITY_LOCK_REQUESTED || t == DT_EVENT_ENTITY_UNLOCK_SENT;
}

/* dt_event_is_entity_answer: an answer to an orchestration from an entity, naming what it
 * answers by request_id: an operation completed or failed, a lock granted. */
static inline bool dt_event_is_entity_answer(dt_event_type t)
{
    return t == DT_EVENT_ENTITY_COMPLETED || t == DT_EVENT_ENTITY_FAILED ||
           t == DT_EVENT_ENTITY_LOCK_GRANTED;
}

/* dt_event_is_completion: an event that finishes a scheduled task, naming it by task_id (the
 * scheduling event's event_id): TaskCompleted, TaskFailed, TimerFired,
 * SubOrchestrationInstanceCompleted, SubOrchestrationInstanceFailed. Inline, as above. */
static inline bool dt_event_is_completion(dt_event_type t)
{
    return t == DT_EVENT_TASK_COMPLETED || t == DT_EVENT_TASK_FAILED ||
           t == DT_EVENT_TIMER_FIRED || t == DT_EVENT_SUB_ORCHESTRATION_COMPLETED ||
           t == DT_EVENT_SUB_ORCHESTRATION_FAILED;
}

/* One history event. A flat record: each type uses the fields its protocol message has, the
 * rest stay zero/NULL. Strings are JSON payloads or names, owned by the arena the event came
 * from.
 *
 *  type                      fields used
 *  ExecutionStarted          name, version, input, instance_id, execution_id, scheduled_start,
 *                            parent_* (sub-orchestrations), trace_*, tags
 *  ExecutionCompleted        status, result, failure
 *  ExecutionTerminated       input (reason/output), recurse
 *  TaskScheduled             event_id, name, version, input, trace_*, tags
 *  TaskCompleted             task_id (the TaskScheduled event_id), result
 *  TaskFailed                task_id, failure
 *  SubOrchestrationCreated   event_id, instance_id, name, version, input, trace_*, tags
 *  SubOrchestrationCompleted task_id, result
 *  SubOrchestrationFailed    task_id, failure
 *  TimerCreated              event_id, fire_at
 *  TimerFired                task_id (the TimerCreated event_id), fire_at
 *  EventSent                 event_id, instance_id, name, input
 *  EventRaised               name, input
 *  GenericEvent              input (data)
 *  ContinueAsNew             input
 *  ExecutionSuspended/Resumed input (reason)
 *  ExecutionRewound          input (reason), parent_execution_id and instance_id (rewinding
 *                            a sub-orchestration: its parent's new execution, its own id)
 *  EntityOperationSignaled   request_id, name (operation), fire_at (scheduled time), input,
 *                            instance_id (the target entity)
 *  EntityOperationCalled     the same, and parent_instance_id/parent_execution_id (caller)
 *  EntityOperationCompleted  request_id, result
 *  EntityOperationFailed     request_id, failure
 *  EntityLockRequested       request_id (critical section), lock_set, position,
 *                            parent_instance_id
 *  EntityLockGranted         request_id (critical section)
 *  EntityUnlockSent          request_id (critical section), parent_instance_id, instance_id
 *                            (the target entity)
 */
typedef struct dt_event {
    dt_event_type type;
    int32_t event_id;           /* sequence number of a scheduling event; ExecutionStarted 0,
                                 * ExecutionCompleted its completing action's (-1 when the hub
                                 * ends the instance); else -1 */
    dt_time timestamp;
    const char *name;
    const char *version;
    const char *input;
    const char *result;
    const char *instance_id;
    const char *execution_id;
    int32_t task_id;
    dt_time fire_at;
    dt_time scheduled_start;
    dt_runtime_status status;
    const dt_failure *failure;
    bool recurse;
    /* parent of a sub-orchestration (ExecutionStarted only); parent_instance_id NULL if none */
    const char *parent_instance_id;
    const char *parent_execution_id;
    const char *parent_name;
    int32_t parent_task_id;
    /* W3C trace context of the caller (the protocol's parentTraceContext), so the SDKs'
     * tracing spans join up; trace_parent NULL if none */
    const char *trace_parent;
    const char *trace_state;
    const char *tags;           /* JSON object of string values, or NULL */
    /* entity events: the operation's request id, or the critical section's id */
    const char *request_id;
    /* EntityLockRequested: the entities to lock (`@name@key` ids) and how far along them */
    const char *const *lock_set;
    size_t n_lock_set;
    int32_t position;
} dt_event;

/* dt_event_init: zero E and set TYPE, event_id -1 and TIMESTAMP. */
void dt_event_init(dt_event *e, dt_event_type type, dt_time timestamp);

/* dt_event_copy: a deep copy of SRC into DST with all strings in ARENA. */
dt_status dt_event_copy(dt_arena *arena, const dt_event *src, dt_event *dst);

/* ---- orchestrator actions ------------------------------------------------------------- */

/* What one episode of an orchestrator asks for. Values match OrchestratorAction's oneof. */
typedef enum dt_action_type {
    DT_ACTION_SCHEDULE_TASK = 2,
    DT_ACTION_CREATE_SUB_ORCHESTRATION = 3,
    DT_ACTION_CREATE_TIMER = 4,
    DT_ACTION_SEND_EVENT = 5,
    DT_ACTION_COMPLETE_ORCHESTRATION = 6,
    DT_ACTION_TERMINATE_ORCHESTRATION = 7,
    DT_ACTION_SEND_ENTITY_MESSAGE = 8,
    DT_ACTION_REWIND = 9
} dt_action_type;

typedef struct dt_action {
    dt_action_type type;
    int32_t id;                 /* sequence number (the event_id of the scheduling event) */
    const char *name;           /* activity, sub-orchestrator or event name */
    const char *version;
    const char *input;          /* JSON input / event data / terminate reason */
    const char *instance_id;    /* sub-orchestration or event target */
    dt_time fire_at;            /* timer */
    /* complete: */
    dt_runtime_status status;
    const char *result;
    const dt_failure *failure;
    bool recurse;
    /* continue-as-new (status ContinuedAsNew, result = the new input): events to carry over;
     * rewind: the new history */
    const dt_event *carryover;
    size_t n_carryover;
    /* schedule task, create sub-orchestration: the caller's trace context; every kind: tags
     * (a JSON object of string values, or NULL) */
    const char *trace_parent;
    const char *trace_state;
    const char *tags;
    /* send entity message: the event it sends (signaled, called, lock requested, unlock
     * sent), as the orchestration's history keeps it */
    const dt_event *entity;
} dt_action;

/* dt_action_copy: a deep copy of SRC into DST with all strings (failure and carried-over
 * events included) in ARENA. */
dt_status dt_action_copy(dt_arena *arena, const dt_action *src, dt_action *dst);

/* dt_action_validate: A keeps the rules for every id and name it carries (dt_name_validate,
 * dt_version_validate, dt_instance_id_validate; a timer's time in DT_TIME_MIN..DT_TIME_MAX),
 * and for its tags and trace context (dt_tags_validate, dt_trace_validate).
 * The hub checks a worker's actions with it, the SDK its own before they leave: an action
 * that breaks one fails its orchestration, never becomes a record. On a breach ERR names the
 * action, its id and the field, and *TYPE (if TYPE is not NULL) the failure type to report:
 * "InvalidInstanceId", "InvalidName", "InvalidTimer", "InvalidEntityMessage" (a request id
 * or lock set over the rules of DT_LOCK_SET_MAX), "InvalidTags" or "InvalidTraceContext".
 * A continue-as-new's carried-over events keep the rules of event names; a rewind's new
 * history, those of each event's own path, tags and trace context included. Entity ids are
 * the caller's to check (they are normalized as they are checked). */
dt_status dt_action_validate(const dt_action *a, const char **type, dt_error *err);

/* ---- instance state --------------------------------------------------------------------- */

/* What a client sees of one instance. Strings live in the arena the state was read into. */
typedef struct dt_instance_state {
    const char *instance_id;
    const char *execution_id;
    const char *name;
    const char *version;
    dt_runtime_status status;
    const char *input;           /* JSON, NULL if none */
    const char *output;          /* JSON, NULL if none */
    const char *custom_status;   /* JSON, NULL if none */
    const dt_failure *failure;   /* set when status is Failed */
    dt_time created_at;
    dt_time last_updated_at;
    dt_time completed_at;        /* 0 while not finished */
    dt_time scheduled_start;     /* 0 if started at once */
    const char *parent_instance_id;
    const char *tags;            /* JSON object of string values given at start, NULL if none */
    /* the orchestration's tracing span as its worker last reported it (NULL: none) */
    const char *span_id;
    dt_time span_start;
} dt_instance_state;

/* dt_instance_state_copy: a deep copy of S in ARENA; NULL when out of memory. */
dt_instance_state *dt_instance_state_copy(dt_arena *arena, const dt_instance_state *s);

/* ---- requests several layers exchange ------------------------------------------------------ */

/* A start: what a client asks for (the C client, the gRPC service's StartInstance, the HTTP
 * API), as the hub takes it. */
typedef struct dt_start_request {
    const char *name;                 /* orchestrator name; required */
    const char *instance_id;          /* NULL: a new id is generated */
    const char *input;                /* JSON or NULL */
    const char *version;              /* may be NULL */
    dt_time start_at;                 /* 0: at once */
    const char *tags;                 /* JSON object of string values, or NULL */
    const char *trace_parent;         /* the caller's W3C trace context, or NULL */
    const char *trace_state;
    /* Reuse policy: an existing instance with this id is replaced only if its status is one of
     * these; otherwise the start is refused. None given (n_replaceable == 0): a finished
     * instance (terminal status) is replaced, a live one refused, unless REUSE_POLICY says
     * the empty list is the policy itself: then nothing is replaced (the protocol's policy
     * with no statuses, the SDKs' "dedupe every status"). */
    const dt_runtime_status *replaceable;
    size_t n_replaceable;
    bool reuse_policy;
} dt_start_request;

/* Page sizes of instance queries: 0 asks for the default; more than the maximum is refused
 * by the hub and the store. The gRPC surface lowers a larger request to the maximum (a page
 * may always hold fewer than asked, as the protocol allows); HTTP and the CLI refuse it. */
#define DT_QUERY_PAGE_DEFAULT 100
#define DT_QUERY_PAGE_MAX 1000

/* A page of a query holds at most this many bytes of payloads, failures and tags (or one row,
 * when that row alone has more): one query holds that much, not DT_QUERY_PAGE_MAX rows of
 * DT_PAYLOAD_MAX (or DT_TAGS_MAX) each, and a page with the rows' other fields fits in the
 * 4 MiB message that the SDKs' gRPC clients receive by default. */
#define DT_QUERY_PAGE_BYTES ((size_t)3 << 20)

/* A filter over instances, for queries and purges. Zero/NULL fields match everything; a time
 * bound at the epoch itself is -1 (dt_time_bound). */
typedef struct dt_query {
    const dt_runtime_status *statuses;   /* any of these */
    size_t n_statuses;
    dt_time created_from;                /* created_at >= this (0: open) */
    dt_time created_to;                  /* created_at <= this (0: open) */
    dt_time completed_from;              /* completed_at >= this (0: open); a bound on it
                                          * matches only finished instances */
    dt_time completed_to;                /* completed_at <= this (0: open) */
    const char *name;                    /* exact orchestrator name */
    const char *version;                 /* exact version; "" matches instances without one */
    const char *id_prefix;               /* instance id starts with this */
    size_t page_size;                    /* queries: 0 means DT_QUERY_PAGE_DEFAULT; at most
                                          * DT_QUERY_PAGE_MAX. A page ends sooner, with a
                                          * continuation, once its rows' payloads (and
                                          * failures, tags) reach DT_QUERY_PAGE_BYTES */
    const char *continuation;            /* queries: from the previous page; NULL: first */
    bool with_payloads;                  /* queries: read input, output, custom status too */
    bool by_id;                          /* queries: in instance id order; false (the
                                          * default): newest first (created_at, then id,
                                          * descending) */
} dt_query;

/* What a client sees of an entity. */
typedef struct dt_entity_state {
    const char *entity_id;
    const char *state;                /* JSON; NULL: none (or not asked for) */
    bool has_state;
    dt_time last_modified;
    const char *locked_by;            /* the orchestration holding its lock, NULL: none */
    int32_t backlog;                  /* messages waiting, visible or not */
} dt_entity_state;

/* A filter over entities. A time bound at the epoch itself is -1 (dt_time_bound). */
typedef struct dt_entity_query {
    const char *id_prefix;            /* instance id starts with this (NULL: any) */
    dt_time modified_from;            /* last_modified >= this (0: open) */
    dt_time modified_to;              /* last_modified < this (0: open) */
    bool with_state;                  /* read the state too */
    bool include_transient;           /* also entities without state (locked or with
                                       * messages waiting) */
    size_t page_size;                 /* 0: DT_QUERY_PAGE_DEFAULT; at most DT_QUERY_PAGE_MAX */
    const char *continuation;         /* the last id of the previous page; NULL: first */
} dt_entity_query;

/* Versions, as a work item filter lists them for one name. */
typedef struct dt_version_list {
    const char *const *v;
    size_t n;                         /* 0: any version */
} dt_version_list;

/* Which work a worker takes, by orchestrator or activity name and, for each name, version
 * (the Durable Task protocol's work item filters). A NULL filter pointer means any name. */
typedef struct dt_name_filter {
    const char *const *names;
    size_t n;                         /* 0: matches nothing */
    /* NULL, or one list per name (parallel to NAMES): the versions of that name taken; an
     * empty list takes any. A missing version matches "" (the SDKs' "no version"). */
    const dt_version_list *versions;
} dt_name_filter;

/* dt_name_filter_match: does F (NULL: any work) take NAME at VERSION (NULL: none)? */
bool dt_name_filter_match(const dt_name_filter *f, const char *name, const char *version);

/* dt_name_filter_copy: a deep copy of SRC (not NULL) into DST, all in ARENA. */
dt_status dt_name_filter_copy(dt_arena *arena, const dt_name_filter *src, dt_name_filter *dst);

/* ---- the executor contract ------------------------------------------------------------------ */

/* One orchestration episode to run, as the Durable Task protocol's OrchestratorRequest says
 * it: the instance, its history so far (PAST, replayed) and what is new (NEW_EVENTS, applied
 * in order). The orchestrator's name is the ExecutionStarted event's. */
typedef struct dt_orch_request {
    const char *instance_id;
    const char *execution_id;         /* may be NULL */
    const dt_event *past;
    size_t n_past;
    const dt_event *new_events;
    size_t n_new;
    /* the orchestration's own tracing span, as the worker last reported it (NULL: none yet) */
    const char *span_id;
    dt_time span_start;
    /* Extended sessions: how many past events the server left out (PAST is empty then)
     * because this worker's session for the instance holds them; DT_PAST_COUNT_UNKNOWN if
     * it did not say how many; 0: PAST is the whole history. An executor that holds no such
     * session answers DT_ERR_NOT_FOUND: the caller fetches the history and asks again. */
    size_t past_left_out;
} dt_orch_request;

#define DT_PAST_COUNT_UNKNOWN ((size_t)-1)

/* The gRPC metadata by which a worker's GetWorkItems call says it keeps extended sessions
 * (value "1"): `dtask serve` may then leave out the past events of an instance whose last
 * episode that same stream ran (OrchestratorRequest.properties say so, as the Durable Task
 * Framework's: IsExtendedSession, IncludeState false, and our PastEventCount). */
#define DT_SESSIONS_METADATA "dtask-extended-sessions"

/* durabletask-c's own worker method (dtask serve only): a worker's completions on one client
 * stream of WorkerCompletion messages rather than a unary call each; the server sends the
 * initial metadata DT_COMPLETION_STREAM_METADATA: "1" at once, so a worker tells it from a
 * server without the method (which answers UNIMPLEMENTED) and falls back to unary calls. */
#define DT_COMPLETION_STREAM_METHOD "durabletask.c.Worker/CompleteTasks"
#define DT_COMPLETION_STREAM_METADATA "dtask-completion-stream"

/* What one orchestration episode produced: its actions and custom status. */
typedef struct dt_orch_result {
    const dt_action *actions;
    size_t n_actions;
    const char *custom_status;        /* JSON or NULL */
    const char *span_id;              /* the orchestration's tracing span, or NULL */
    dt_time span_start;
} dt_orch_result;

/* One activity to run, as the protocol's ActivityRequest says it. */
typedef struct dt_activity_request {
    const char *instance_id;          /* the orchestration that scheduled it */
    const char *execution_id;         /* may be NULL */
    int32_t task_id;                  /* its TaskScheduled event_id */
    const char *name;
    const char *version;              /* may be NULL */
    const char *input;                /* JSON or NULL */
    const char *trace_parent;         /* from its TaskScheduled event; may be NULL */
    const char *trace_state;
    const char *tags;                 /* JSON object of string values, or NULL */
} dt_activity_request;

/* One entity batch to run (the protocol's EntityRequest): the entity, its state (NULL: none)
 * and its operations in order, each an EntityOperationSignaled or EntityOperationCalled
 * event (request_id, name = the operation, input). */
typedef struct dt_entity_request {
    const char *entity_id;            /* @name@key */
    const char *state;                /* JSON, or NULL */
    const dt_event *operations;
    size_t n_operations;
} dt_entity_request;

/* What an operation returned: RESULT (JSON or NULL), or FAILURE if it threw (its own state
 * change and actions are undone by the worker; the batch goes on). */
typedef struct dt_entity_op_result {
    const char *result;
    const dt_failure *failure;
} dt_entity_op_result;

/* What an operation sent: a signal to an entity, or a new orchestration. */
typedef enum dt_entity_action_type {
    DT_ENTITY_SIGNAL = 2,             /* the protocol's OperationAction member numbers */
    DT_ENTITY_START_ORCHESTRATION = 3
} dt_entity_action_type;

typedef struct dt_entity_action {
    dt_entity_action_type type;
    const char *instance_id;          /* the entity signaled, or the new orchestration's id
                                       * (NULL: one is generated) */
    const char *name;                 /* the operation, or the orchestrator */
    const char *version;              /* orchestrations: may be NULL */
    const char *input;                /* JSON or NULL */
    dt_time at;                       /* scheduled time; 0: at once */
} dt_entity_action;

/* The result of an entity batch (the protocol's EntityBatchResult). RESULTS has one entry per
 * operation run, in order; fewer than asked leaves the rest queued. STATE is the state after
 * the batch (NULL: the entity has no state now). FAILURE set means the batch as a whole could
 * not run: nothing of it applies and it is delivered again later. */
typedef struct dt_entity_result {
    const dt_entity_op_result *results;
    size_t n_results;
    const dt_entity_action *actions;
    size_t n_actions;
    const char *state;
    const dt_failure *failure;
} dt_entity_result;

/* The largest entity state a batch may leave, in bytes: a batch that would leave more fails
 * each of its operations (EntityStateTooLarge) and keeps the state it had. Half of the 4 MiB
 * the SDKs' workers receive at most, so an entity's work item (its state and a batch of at
 * most 1 MiB of inputs) always reaches them. */
#define DT_ENTITY_STATE_MAX (2u << 20)

/* How work is run: the C SDK's worker is one (dt_worker_executor); the hub's dispatch loops
 * and the remote worker call it. Both callbacks may be called from several threads at once.
 * Whatever they return lives in ARENA, which the caller frees after using the result.
 * run_activity sets *RESULT (JSON or NULL) on success, or *FAILURE. A status other than DT_OK
 * means the work could not be run at all (out of memory): it is given back for redelivery. */
typedef struct dt_executor {
    void *data;
    dt_status (*run_orchestration)(void *data, const dt_orch_request *req, dt_arena *arena,
                                   dt_orch_result *out);
    dt_status (*run_activity)(void *data, const dt_activity_request *req, dt_arena *arena,
                              const char **result, const dt_failure **failure);
    /* may be NULL: this executor runs no entities */
    dt_status (*run_entity)(void *data, const dt_entity_request *req, dt_arena *arena,
                            dt_entity_result *out);
} dt_executor;

/* dt_orch_request_started: REQ's ExecutionStarted event (past events first, then new ones),
 * which names the orchestrator and holds its input; NULL when there is none. */
const dt_event *dt_orch_request_started(const dt_orch_request *req);

/* ---- defaults the surfaces share ---------------------------------------------------------- */

/* Where `dtask serve` listens for gRPC, and where clients and remote workers look for it:
 * loopback only, unless told otherwise. */
#define DT_DEFAULT_GRPC_ADDRESS "127.0.0.1:4001"

/* How long the servers wait for a request to arrive whole once its connection or call is
 * there: a gRPC call's request message, an HTTP request's headers and body. A client slower
 * than this is cut off, so silent and trickling clients cannot hold the servers' slots. */
#define DT_REQUEST_TIMEOUT_MS 10000

#ifdef __cplusplus
}
#endif
#endif
