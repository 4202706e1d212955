/* sdk_internal.h — the orchestration context and tasks, shared by the replay executor
 * (replay.c), tasks (tasks.c), external events (events.c) and retries (retry.c). */
#ifndef DT_SDK_INTERNAL_H
#define DT_SDK_INTERNAL_H

#include <setjmp.h>

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
    const char *name;
    void *user;
    jmp_buf jmp;                 /* dt_await's way out when the episode must end */

    const dt_event *past;        /* positions 0 .. n_past-1 */
    const dt_event *fresh;       /* positions n_past .. n_events-1: this episode's new events */
    size_t n_events, n_past;
    size_t *eff_pos;             /* per event: where it takes effect (suspension defers) */
    const dt_event **scheduled;  /* by sequence number: the scheduling event in history */
    const dt_event **completed;  /* by sequence number: the completion event in history */
    size_t *completed_pos;
    size_t n_seq;                /* size of the three arrays above */
    dt_time *time_at;            /* orchestration time at each position */
    size_t *raised;              /* positions of EventRaised events in effect, in order */
    size_t n_raised;

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

/* replay_abort: end the episode now (not done yet, or failed); never returns. */
_Noreturn void replay_abort(dt_octx *c);

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
