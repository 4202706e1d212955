/* sdk_internal.h — the orchestration context and tasks, shared by the replay executor
 * (replay.c), tasks (tasks.c), external events (events.c) and retries (retry.c). */
#ifndef DT_SDK_INTERNAL_H
#define DT_SDK_INTERNAL_H

#include <setjmp.h>
#include <stdint.h>

#include "durabletask/sdk.h"

#define POS_NEVER ((size_t)-1)   /* an event that has not taken effect (suspended) */

typedef enum task_kind {
    TASK_ACTIVITY,
    TASK_TIMER,
    TASK_SUB_ORCHESTRATION,
    TASK_EVENT,
    TASK_ALL,
    TASK_ANY,
    TASK_ENTITY,                 /* an entity operation called */
    TASK_LOCK                    /* a critical section's locks */
} task_kind;

/* The retry state of an activity or sub-orchestration with a policy. Each failed attempt is
 * followed by a timer and a new attempt, all scheduled as history is replayed in order. */
typedef struct retry_state {
    dt_retry_policy policy;
    dt_action action;            /* what every attempt schedules */
    int attempts;                /* attempts scheduled so far */
    int32_t cur_seq;             /* the current attempt, or the timer before the next one */
    bool on_timer;
    dt_time first_time;          /* orchestration time of the first attempt */
    struct dt_task *next;        /* the context's list of tasks still retrying */
} retry_state;

/* A task is resolved against history; a leaf task, once done, stays done. "pos" is an index
 * into the episode's event list (past then new): the point in history at which the task is
 * done. Code that awaits it continues from there, which gives orchestration time and
 * is_replaying their meaning. Composite tasks are recomputed on every resolve, because a
 * retry processed later in the same await can finish a child earlier. */
struct dt_task {
    dt_octx *ctx;
    task_kind kind;
    int32_t seq;                 /* scheduling tasks: the sequence number */
    const char *name;
    size_t created_pos;
    dt_task **children;          /* when-all / when-any */
    size_t n_children;
    bool done, failed, cancelled;
    size_t done_pos, cancelled_pos;
    const char *result;
    const dt_failure *failure;
    size_t winner;               /* when-any */
    retry_state *retry;          /* NULL: no retries */
    size_t event_index;          /* event waiters: assigned EventRaised position, or POS_NEVER */
};

/* An entity call or lock request in history, by the request (or critical section) id its
 * answer names. */
typedef struct pending_answer {
    const char *request_id;
    int32_t seq;
} pending_answer;

/* Everything one episode knows. Allocated in the episode's arena. */
struct dt_octx {
    dt_arena *arena;
    const char *instance_id;
    const char *execution_id;    /* its ExecutionStarted's; NULL if it names none */
    const char *name;
    void *user;
    jmp_buf jmp;                 /* dt_await's way out when the episode must end */

    const dt_event *past;        /* positions 0 .. n_past-1 */
    const dt_event *fresh;       /* positions n_past .. n_events-1: this episode's new events */
    size_t n_events, n_past;
    const dt_event **evs;        /* sessions: every event by position (past and fresh unused) */
    size_t *eff_pos;             /* per event: where it takes effect (suspension defers) */
    const dt_event **scheduled;  /* by sequence number: the scheduling event in history */
    const dt_event **completed;  /* by sequence number: the completion event in history */
    size_t *completed_pos;
    size_t n_seq;                /* size of the three arrays above */
    dt_time *time_at;            /* orchestration time at each position */
    size_t *raised;              /* positions of EventRaised events in effect, in order */
    size_t n_raised;

    /* what indexing carries from one stretch of history to the next: a session indexes its
     * history as it grows (replay_index), a replay all of it at once */
    dt_time index_now;           /* orchestration time at the last event indexed */
    size_t held_from;            /* first event a suspension holds back, or POS_NEVER */
    pending_answer *pending;     /* entity calls and lock requests seen, in the arena */
    size_t n_pending, cap_pending;
    size_t cap_events, cap_seq, cap_raised;   /* a session's index arrays (malloc) */

    /* sessions (session.c): NULL when the episode replays from the start */
    struct session *session;
    bool abandoned;              /* the session is being destroyed: unwind, report nothing */
    dt_arena *out;               /* the episode's actions: the caller's arena (= arena in a
                                  * replay); the context's arena outlives the episode in a
                                  * session, and would grow by every episode's actions */

    size_t pos;                  /* how far into history the code has got */
    int32_t next_seq;
    uint32_t guid_counter;
    dt_action *actions;          /* new actions of this episode */
    size_t n_actions, cap_actions;
    const char *custom_status;
    const dt_failure *failure;   /* set by dt_fail or a failed await */
    bool nomem;

    dt_task **waiters;           /* event waiters in creation order */
    size_t n_waiters, cap_waiters;
    bool waiters_dirty;          /* a waiter was added or cancelled since the last matching */
    dt_task *retrying;           /* tasks with a retry state that are not done */

    /* the critical section (entities.c): its id and the entities it locks, sorted */
    const char *section;
    const char **locked;
    size_t n_locked;

    bool continue_as_new;
    const char *can_input;
    bool can_keep_events;
};

/* event_at: the event at position I of the history (past, then new). Two arrays rather than a
 * copy into one: copying a long history every episode would cost more than replaying it. */
static inline const dt_event *event_at(const dt_octx *c, size_t i)
{
    if (c->evs)
        return c->evs[i];
    return i < c->n_past ? &c->past[i] : &c->fresh[i - c->n_past];
}

/* replay_schedule: register a scheduling call of TYPE and NAME with the next sequence number;
 * checks it against history, or adds ACTION as a new action. Returns the sequence. Entity
 * messages (sendEntityMessage) are scheduling steps too: their event is ACTION's entity. */
int32_t replay_schedule(dt_octx *c, dt_action_type type, const char *name, dt_action *action);

/* replay_resolve: bring T up to date with history. */
void replay_resolve(dt_octx *c, dt_task *t);

/* replay_strdup: a copy of STR (NULL gives NULL) in the episode's arena; out of memory ends
 * the episode as dt_alloc does. A copy, not dt_printf: steps replay it on every episode. */
char *replay_strdup(dt_octx *c, const char *str);

/* replay_abort: end the episode now (failed, out of memory, abandoned); never returns. */
_Noreturn void replay_abort(dt_octx *c);

/* replay_block: the code awaits something history does not have yet. A replay ends the
 * episode (replay_abort); a session suspends the code until the next episode brings more
 * history, and returns then (the caller resolves again). */
void replay_block(dt_octx *c);

/* replay_index: index events FROM .. c->n_events-1 (see replay.c). A replay indexes all of
 * them once into the thread's scratch; a session (c->evs set) as they arrive, into arrays it
 * owns, grown here. DT_ERR_NOMEM when memory runs out. */
dt_status replay_index(dt_octx *c, size_t from);

/* replay_execute: run FN from its start over what C has indexed, to its first unanswered
 * await (an episode's end) or its return, adding the completing action then. Records an
 * out-of-memory in c->nomem; in a session, returns when the code ends or is abandoned. */
void replay_execute(dt_octx *c, dt_orchestrator_fn fn, const char *input);

/* replay_free_index: free a session's index arrays (c->evs and the by-position and
 * by-sequence arrays); a replay's live in the thread's scratch and are not freed here. */
void replay_free_index(dt_octx *c);

/* ---- sessions (session.c) ---------------------------------------------------------------- */

/* A cache of suspended orchestrations, one per instance, for one worker. */
typedef struct session_cache session_cache;

/* session_cache_new: a cache of at most MAX sessions (0: none, every episode replays).
 * Free with session_cache_free, which destroys every session. */
dt_status session_cache_new(size_t max, session_cache **out);
void session_cache_free(session_cache *sc);

/* session_cache_clear: destroy every session (their code unwound), keeping the bound. */
void session_cache_clear(session_cache *sc);

/* session_cache_max: the bound (0: sessions are off). */
size_t session_cache_max(session_cache *sc);

/* session_cache_set_max: change the bound, evicting what no longer fits (0 drops all). */
void session_cache_set_max(session_cache *sc, size_t max);

/* session_cache_stats: what the sessions did (see dt_session_stats). */
void session_cache_stats(session_cache *sc, dt_session_stats *out);

/* session_run: one episode of FN (USER) for REQ, as dt_replay_run promises (the result in
 * ARENA), resuming REQ's instance's cached session when REQ continues exactly what it saw,
 * and otherwise running FN from its start in a new session it then keeps. When REQ's past
 * was left out (req->past_left_out), FN is NULL: only a session can answer, and without one
 * that continues, DT_ERR_NOT_FOUND. */
dt_status session_run(session_cache *sc, dt_orchestrator_fn fn, void *user,
                      const dt_orch_request *req, dt_arena *arena, dt_orch_result *out);

/* session_wait: called by the session's code (replay_block): hand the episode back to the
 * caller and wait for the next one. False: the session is being destroyed. */
bool session_wait(struct session *s);

/* replay_fail: fail the orchestration with a new failure and end the episode. */
_Noreturn void replay_fail(dt_octx *c, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* task_new: a task of KIND created at the code's current position. */
dt_task *task_new(dt_octx *c, task_kind kind);

/* events_resolve / events_unconsumed: see events.c. */
void events_resolve(dt_octx *c, dt_task *t);
dt_event *events_unconsumed(dt_octx *c, size_t *n);

/* retry_*: see retry.c. */
void retry_start(dt_octx *c, dt_task *t, const dt_retry_policy *p, const dt_action *a);
bool retry_advance(dt_octx *c, size_t limit);
void retry_resolve(dt_octx *c, dt_task *t);

#endif
