/* replay.c — the replay executor. One episode runs the orchestrator once from its start over
 * the whole history (past events, then the new ones). Each scheduling call takes the next
 * sequence number and must match the history's scheduling event of that number (else the
 * code is non-deterministic); each await is answered from history, or ends the episode with a
 * longjmp back here when the answer is not there yet. The actions not yet in history are the
 * episode's result. Cost is linear in history length: history is indexed once, up front.
 * A session (session.c) runs the same code over the same index, grown as history arrives,
 * and suspends at the unanswered await instead of ending there. */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

/* scratch_get: N bytes of this thread's scratch memory, reused from episode to episode and
 * freed when the thread ends. The history's index is as long as the history, and an
 * episode of a 10,000-step orchestration would otherwise allocate, zero and release a
 * megabyte each time (page faults and TLB flushes that made replay cost per event grow). */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

typedef struct scratch {
    size_t cap;
    _Alignas(16) unsigned char data[];
} scratch;

static void scratch_make_key(void)
{
    pthread_key_create(&scratch_key, free);
}

static void *scratch_get(size_t n)
{
    pthread_once(&scratch_once, scratch_make_key);
    scratch *sc = pthread_getspecific(scratch_key);
    if (sc == NULL || sc->cap < n) {
        size_t cap = sc ? sc->cap : 4096;
        while (cap < n)
            cap *= 2;
        scratch *bigger = malloc(sizeof *bigger + cap);
        if (bigger == NULL)
            return NULL;
        bigger->cap = cap;
        free(sc);
        pthread_setspecific(scratch_key, bigger);
        sc = bigger;
    }
    return sc->data;
}

/* is_step: an event that took a sequence number: a scheduling event, or an entity message
 * the orchestration sent (kept in history under its action's id). */
static bool is_step(const dt_event *e)
{
    return dt_event_is_scheduling(e->type) || dt_event_is_entity_message(e->type);
}

/* answered_seq: the sequence number of the call or lock request answer E names among the N
 * seen so far (the latest first), or -1. */
static int32_t answered_seq(const pending_answer *p, size_t n, const dt_event *e)
{
    for (size_t i = n; e->request_id && i-- > 0;)
        if (p[i].request_id && strcmp(p[i].request_id, e->request_id) == 0)
            return p[i].seq;
    return -1;
}

/* take_effect: event I has taken effect at c->eff_pos[I]: a completion (or an entity's
 * answer) completes its sequence number, a raised event goes to the waiters. */
static void take_effect(dt_octx *c, size_t i)
{
    const dt_event *e = event_at(c, i);
    size_t at = c->eff_pos[i];
    /* an entity's answer completes the call (or lock request) it names */
    int32_t answered = dt_event_is_entity_answer(e->type)
                           ? answered_seq(c->pending, c->n_pending, e) : -1;
    if (answered >= 0 && c->completed[answered] == NULL) {
        c->completed[answered] = e;
        c->completed_pos[answered] = at;
    }
    /* the first completion of a sequence number counts; later ones are duplicates */
    if (dt_event_is_completion(e->type) && e->task_id >= 0 && c->completed[e->task_id] == NULL) {
        c->completed[e->task_id] = e;
        c->completed_pos[e->task_id] = at;
    }
    if (e->type == DT_EVENT_EVENT_RAISED) {
        c->raised[c->n_raised++] = i;
        c->waiters_dirty = true;   /* a waiter may get it */
    }
}

/* index_event: index event I; the arrays are big enough (see replay_index). Events that
 * arrive while the instance is suspended take effect where it is resumed (or never, if it
 * is not resumed yet), so code does not see them before: they are held, and take effect in
 * order when the ExecutionResumed comes. */
static dt_status index_event(dt_octx *c, size_t i)
{
    const dt_event *e = event_at(c, i);
    if (e->type == DT_EVENT_ORCHESTRATOR_STARTED || (c->index_now == 0 && e->timestamp))
        c->index_now = e->timestamp;
    c->time_at[i] = c->index_now;
    /* replay_index sized the arrays to the largest sequence number seen */
    assert(!is_step(e) || e->event_id < (int32_t)c->n_seq);
    assert(!dt_event_is_completion(e->type) || e->task_id < (int32_t)c->n_seq);
    if (is_step(e) && e->event_id >= 0)
        c->scheduled[e->event_id] = e;
    if ((e->type == DT_EVENT_ENTITY_CALLED || e->type == DT_EVENT_ENTITY_LOCK_REQUESTED) &&
        e->event_id >= 0) {
        if (c->n_pending == c->cap_pending) {
            size_t cap = c->cap_pending ? c->cap_pending * 2 : 16;
            pending_answer *v = dt_arena_alloc(c->arena, cap * sizeof *v);
            if (v == NULL)
                return DT_ERR_NOMEM;
            if (c->n_pending)
                memcpy(v, c->pending, c->n_pending * sizeof *v);
            c->pending = v;
            c->cap_pending = cap;
        }
        c->pending[c->n_pending++] = (pending_answer){e->request_id, e->event_id};
    }
    if (c->held_from != POS_NEVER && e->type != DT_EVENT_EXECUTION_RESUMED) {
        c->eff_pos[i] = POS_NEVER;   /* held by the suspension */
        return DT_OK;
    }
    c->eff_pos[i] = i;
    if (e->type == DT_EVENT_EXECUTION_RESUMED && c->held_from != POS_NEVER) {
        for (size_t j = c->held_from; j < i; j++) {
            c->eff_pos[j] = i;
            take_effect(c, j);
        }
        c->held_from = POS_NEVER;
    }
    take_effect(c, i);
    if (e->type == DT_EVENT_EXECUTION_SUSPENDED)
        c->held_from = i + 1;
    return DT_OK;
}

/* grow_index: make a session's arrays hold N_EVENTS events, N_SEQ sequence numbers and
 * N_RAISED raised events; new sequence slots start empty. */
static dt_status grow_index(dt_octx *c, size_t n_events, size_t n_seq, size_t n_raised)
{
    if (n_events > c->cap_events) {
        size_t cap = c->cap_events ? c->cap_events : 64;
        while (cap < n_events)
            cap *= 2;
        dt_time *t = realloc(c->time_at, cap * sizeof *t);
        if (t == NULL)
            return DT_ERR_NOMEM;
        c->time_at = t;
        size_t *ep = realloc(c->eff_pos, cap * sizeof *ep);
        if (ep == NULL)
            return DT_ERR_NOMEM;
        c->eff_pos = ep;
        c->cap_events = cap;
    }
    if (n_raised > c->cap_raised) {
        size_t cap = c->cap_raised ? c->cap_raised : 16;
        while (cap < n_raised)
            cap *= 2;
        size_t *r = realloc(c->raised, cap * sizeof *r);
        if (r == NULL)
            return DT_ERR_NOMEM;
        c->raised = r;
        c->cap_raised = cap;
    }
    if (n_seq > c->cap_seq) {
        size_t cap = c->cap_seq ? c->cap_seq : 64, old = c->cap_seq;
        while (cap < n_seq)
            cap *= 2;
        const dt_event **sc = realloc(c->scheduled, cap * sizeof *sc);
        if (sc == NULL)
            return DT_ERR_NOMEM;
        c->scheduled = sc;
        const dt_event **cp = realloc(c->completed, cap * sizeof *cp);
        if (cp == NULL)
            return DT_ERR_NOMEM;
        c->completed = cp;
        size_t *pos = realloc(c->completed_pos, cap * sizeof *pos);
        if (pos == NULL)
            return DT_ERR_NOMEM;
        c->completed_pos = pos;
        memset(c->scheduled + old, 0, (cap - old) * sizeof *sc);
        memset(c->completed + old, 0, (cap - old) * sizeof *cp);
        memset(c->completed_pos + old, 0, (cap - old) * sizeof *pos);
        c->cap_seq = cap;
    }
    return DT_OK;
}

void replay_free_index(dt_octx *c)
{
    assert(c->evs != NULL);
    free(c->evs);
    free(c->time_at);
    free(c->eff_pos);
    free(c->raised);
    free(c->scheduled);
    free(c->completed);
    free(c->completed_pos);
}

/* replay_index: find, by sequence number, what was scheduled and what completed among the
 * events FROM .. n_events-1, the raised events, and the orchestration time at every
 * position. A first pass sizes the arrays: a replay's come from the thread's scratch (all
 * at once, FROM is 0), a session's grow. */
dt_status replay_index(dt_octx *c, size_t from)
{
    int32_t max_seq = (int32_t)c->n_seq - 1;
    size_t n_raised = 0;
    for (size_t i = from; i < c->n_events; i++) {
        const dt_event *e = event_at(c, i);
        if (is_step(e) && e->event_id > max_seq)
            max_seq = e->event_id;
        if (dt_event_is_completion(e->type) && e->task_id > max_seq)
            max_seq = e->task_id;
        n_raised += e->type == DT_EVENT_EVENT_RAISED;
    }
    size_t n_seq = (size_t)(max_seq + 1);
    if (c->evs) {
        dt_status st = grow_index(c, c->n_events + 1, n_seq + 1, c->n_raised + n_raised + 1);
        if (st != DT_OK)
            return st;
    } else {
        assert(from == 0 && c->n_seq == 0);
        size_t ne = c->n_events + 1, ns = n_seq + 1;
        /* every array holds 8-byte slots; they live in the thread's scratch (see scratch_get) */
        uint64_t *p = scratch_get((2 * ne + (n_raised + 1) + 3 * ns) * sizeof *p);
        if (p == NULL)
            return DT_ERR_NOMEM;
        c->time_at = (dt_time *)p;
        c->eff_pos = (size_t *)(p += ne);
        c->raised = (size_t *)(p += ne);
        c->scheduled = (const dt_event **)(p += n_raised + 1);
        c->completed = (const dt_event **)(p += ns);
        c->completed_pos = (size_t *)(p += ns);
        /* filled sparsely, by sequence number: they start empty (time_at, eff_pos and raised
         * are written before they are read) */
        memset(c->scheduled, 0, 3 * ns * sizeof *p);
    }
    c->n_seq = n_seq;
    for (size_t i = from; i < c->n_events; i++) {
        dt_status st = index_event(c, i);
        if (st != DT_OK)
            return st;
    }
    return DT_OK;
}

_Noreturn void replay_abort(dt_octx *c)
{
    longjmp(c->jmp, 1);
}

_Noreturn void replay_fail(dt_octx *c, const char *type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_failure *f = dt_failure_vnew(c->arena, type, fmt, ap);
    va_end(ap);
    if (f == NULL)
        c->nomem = true;
    else
        c->failure = f;
    replay_abort(c);
}

static dt_action *push_action(dt_octx *c)
{
    if (c->n_actions == c->cap_actions) {
        size_t cap = c->cap_actions ? c->cap_actions * 2 : 16;
        dt_action *a = dt_arena_alloc(c->out, cap * sizeof *a);
        if (a == NULL) {
            c->nomem = true;
            replay_abort(c);
        }
        if (c->n_actions)
            memcpy(a, c->actions, c->n_actions * sizeof *a);
        c->actions = a;
        c->cap_actions = cap;
    }
    dt_action *a = &c->actions[c->n_actions++];
    memset(a, 0, sizeof *a);
    return a;
}

/* out_strdup: a copy of STR in the episode's output arena (see dt_octx.out). */
static const char *out_strdup(dt_octx *c, const char *str)
{
    if (str == NULL)
        return NULL;
    char *s = dt_arena_strdup(c->out, str);
    if (s == NULL) {
        c->nomem = true;
        replay_abort(c);
    }
    return s;
}

static dt_event_type scheduling_event_of(dt_action_type t)
{
    switch (t) {
    case DT_ACTION_SCHEDULE_TASK: return DT_EVENT_TASK_SCHEDULED;
    case DT_ACTION_CREATE_TIMER: return DT_EVENT_TIMER_CREATED;
    case DT_ACTION_CREATE_SUB_ORCHESTRATION: return DT_EVENT_SUB_ORCHESTRATION_CREATED;
    case DT_ACTION_SEND_EVENT: return DT_EVENT_EVENT_SENT;
    default: return DT_EVENT_NONE;
    }
}

static bool same_name(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int32_t replay_schedule(dt_octx *c, dt_action_type type, const char *name, dt_action *action)
{
    int32_t seq = c->next_seq++;
    dt_event_type want = scheduling_event_of(type);
    if (type == DT_ACTION_SEND_ENTITY_MESSAGE)
        want = action->entity->type;
    const dt_event *h = (size_t)seq < c->n_seq ? c->scheduled[seq] : NULL;
    if (h != NULL) {
        bool named = type != DT_ACTION_CREATE_TIMER && name != NULL;
        if (h->type != want || (named && !same_name(h->name, name)))
            replay_fail(c, "NonDeterminismError",
                        "non-deterministic orchestrator '%s': history has %s '%s' at sequence "
                        "%d, but the code now schedules %s '%s' there; orchestrator code must "
                        "not change the order or names of the steps of instances in flight",
                        c->name ? c->name : "", dt_event_type_name(h->type),
                        h->name ? h->name : "", seq, dt_event_type_name(want),
                        name ? name : "");
        return seq;   /* already in history: replaying, nothing new to do */
    }
    /* a new action: its strings may be the caller's (stack, say), so copy them now */
    if (action->input) {
        dt_error err;
        if (dt_payload_validate(action->input, "input", &err) != DT_OK)
            replay_fail(c, "InvalidInput", "%s '%s': %s", dt_event_type_name(want),
                        name ? name : "", err.message);
    }
    /* the rules the hub checks a worker's actions with, here first, so the failure names
     * the call that broke one (a derived sub-orchestration id is checked below) */
    dt_action check = *action;
    check.type = type;
    check.id = seq;
    if (type == DT_ACTION_CREATE_SUB_ORCHESTRATION && check.instance_id == NULL) {
        /* the execution's id, as the Durable Task Framework's and the JavaScript SDK's: a new
         * execution (continue-as-new, a rewind that renumbered its steps) never derives the
         * id of a child an earlier one made */
        const char *from = c->execution_id && *c->execution_id ? c->execution_id
                                                               : c->instance_id;
        check.instance_id = dt_arena_printf(c->out, "%s:%04x", from ? from : "", (unsigned)seq);
        if (check.instance_id == NULL) {
            c->nomem = true;
            replay_abort(c);
        }
    }
    dt_error verr;
    const char *vtype;
    if (dt_action_validate(&check, &vtype, &verr) != DT_OK)
        replay_fail(c, vtype, "%s", verr.message);
    dt_action *a = push_action(c);
    *a = *action;
    a->type = type;
    a->id = seq;
    a->name = out_strdup(c, action->name);
    a->input = out_strdup(c, action->input);
    a->version = out_strdup(c, action->version);
    if (action->entity) {
        dt_event *e = dt_arena_alloc(c->out, sizeof *e);
        if (e == NULL || dt_event_copy(c->out, action->entity, e) != DT_OK) {
            c->nomem = true;
            replay_abort(c);
        }
        a->entity = e;
    }
    if (action->instance_id)
        a->instance_id = out_strdup(c, action->instance_id);
    else if (type == DT_ACTION_CREATE_SUB_ORCHESTRATION)
        a->instance_id = check.instance_id;   /* derived above, in the episode's arena */
    return seq;
}

/* finish: the orchestrator returned or failed; add the completing action. */
static void finish(dt_octx *c, dt_status st, const char *output)
{
    dt_action *a;
    if (st == DT_OK && c->continue_as_new) {
        a = push_action(c);
        a->status = DT_STATUS_CONTINUED_AS_NEW;
        a->result = c->can_input;
        if (c->can_keep_events)
            a->carryover = events_unconsumed(c, &a->n_carryover);
    } else if (st == DT_OK) {
        a = push_action(c);
        a->status = DT_STATUS_COMPLETED;
        a->result = output;
    } else {
        /* work scheduled in a failing episode would only run for a dead instance */
        c->n_actions = 0;
        a = push_action(c);
        a->status = DT_STATUS_FAILED;
        a->failure = c->failure ? c->failure
                                : dt_failure_new(c->arena, "OrchestratorError",
                                                 "orchestrator '%s' returned '%s'",
                                                 c->name ? c->name : "", dt_strerror(st));
    }
    a->type = DT_ACTION_COMPLETE_ORCHESTRATION;
    a->id = c->next_seq++;
    if (c->out != c->arena) {
        /* a session: its output, failure and carried-over events are in the session's
         * arena, which goes when the session does, before the caller reads the result */
        dt_action copy;
        if (dt_action_copy(c->out, a, &copy) != DT_OK) {
            c->nomem = true;
            return;
        }
        *a = copy;
    }
}

void replay_execute(dt_octx *c, dt_orchestrator_fn fn, const char *input)
{
    /* everything read after the longjmp lives in *c, not in locals */
    if (setjmp(c->jmp) == 0) {
        const char *output = NULL;
        dt_status st = fn(c, input, &output);
        if (st == DT_OK && output != NULL) {
            dt_error err;
            if (dt_payload_validate(output, "orchestrator output", &err) != DT_OK) {
                c->failure = dt_failure_new(c->arena, "InvalidOutput", "orchestrator '%s': %s",
                                            c->name ? c->name : "", err.message);
                st = DT_ERR_INVALID_ARG;
            }
        }
        finish(c, st, output);
    } else if (c->failure && !c->nomem && !c->abandoned) {
        finish(c, DT_ERR_TASK_FAILED, NULL);
    }
    /* else: out of memory, abandoned, or (a replay) blocked on something not in history
     * yet; then the actions so far are the result */
}

void replay_block(dt_octx *c)
{
    if (c->session == NULL || !session_wait(c->session)) {
        c->abandoned = c->session != NULL;
        replay_abort(c);
    }
}

dt_status dt_replay_run(dt_orchestrator_fn fn, void *user, const dt_orch_request *req,
                        dt_arena *arena, dt_orch_result *result)
{
    if (req->past_left_out)
        return DT_ERR_NOT_FOUND;   /* nothing to replay: the caller fetches the history */
    dt_octx *c = dt_arena_alloc(arena, sizeof *c);
    if (c == NULL)
        return DT_ERR_NOMEM;
    c->arena = c->out = arena;
    c->user = user;
    c->instance_id = req->instance_id;
    c->past = req->past;
    c->fresh = req->new_events;
    c->n_events = req->n_past + req->n_new;
    c->n_past = req->n_past;
    c->held_from = POS_NEVER;
    dt_status st = replay_index(c, 0);
    if (st != DT_OK)
        return st;
    const dt_event *started = dt_orch_request_started(req);
    c->name = started ? started->name : NULL;
    c->execution_id = started ? started->execution_id : NULL;
    replay_execute(c, fn, started ? started->input : NULL);
    if (c->nomem)
        return DT_ERR_NOMEM;
    result->actions = c->actions;
    result->n_actions = c->n_actions;
    result->custom_status = c->custom_status;
    return DT_OK;
}

dt_status dt_continue_as_new(dt_octx *c, const char *input, bool keep_events)
{
    dt_error err;
    if (dt_payload_validate(input, "continue-as-new input", &err) != DT_OK)
        return dt_fail(c, "InvalidInput", "orchestrator '%s': %s", c->name ? c->name : "",
                       err.message);
    c->continue_as_new = true;
    c->can_input = replay_strdup(c, input);
    c->can_keep_events = keep_events;
    return DT_OK;
}

/* ---- context accessors ---------------------------------------------------------------- */

void *dt_alloc(dt_octx *c, size_t n)
{
    void *p = dt_arena_alloc(c->arena, n);
    if (p == NULL) {
        c->nomem = true;
        replay_abort(c);
    }
    return p;
}

char *replay_strdup(dt_octx *c, const char *str)
{
    if (str == NULL)
        return NULL;
    size_t n = strlen(str) + 1;
    char *s = dt_alloc(c, n);
    memcpy(s, str, n);
    return s;
}

char *dt_printf(dt_octx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = dt_arena_vprintf(c->arena, fmt, ap);
    va_end(ap);
    if (s == NULL) {
        c->nomem = true;
        replay_abort(c);
    }
    return s;
}

dt_time dt_octx_now(dt_octx *c)
{
    if (c->n_events == 0)
        return 0;
    size_t p = c->pos < c->n_events ? c->pos : c->n_events - 1;
    return c->time_at[p];
}

bool dt_octx_is_replaying(dt_octx *c)
{
    return c->pos < c->n_past;
}

/* A deterministic GUID: FNV-1a over instance id, orchestration time and a counter, spread
 * over 128 bits and formatted as a UUID (version 5 layout, name-based). */
const char *dt_octx_new_guid(dt_octx *c)
{
    char name[256];
    snprintf(name, sizeof name, "%s_%lld_%u", c->instance_id ? c->instance_id : "",
             (long long)dt_octx_now(c), c->guid_counter++);
    uint64_t h1 = 1469598103934665603ULL, h2 = 0x9E3779B97F4A7C15ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h1 = (h1 ^ *p) * 1099511628211ULL;
        h2 = (h2 ^ *p) * 0x100000001b3ULL + (h2 >> 29);
    }
    unsigned char b[16];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(h1 >> (i * 8));
        b[8 + i] = (unsigned char)(h2 >> (i * 8));
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x50);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    return dt_printf(c,
                     "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                     b[12], b[13], b[14], b[15]);
}

void dt_octx_log(dt_octx *c, const char *fmt, ...)
{
    if (dt_octx_is_replaying(c))
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[%s] %s\n", c->instance_id ? c->instance_id : "", line);
}

void dt_octx_set_custom_status(dt_octx *c, const char *json)
{
    c->custom_status = replay_strdup(c, json);
}

const char *dt_octx_instance_id(const dt_octx *c) { return c->instance_id; }
const char *dt_octx_name(const dt_octx *c) { return c->name; }
void *dt_octx_user(const dt_octx *c) { return c->user; }

static dt_status fail_v(dt_octx *c, const dt_failure *inner, const char *type, const char *fmt,
                        va_list ap)
{
    dt_failure *f = dt_failure_vnew(c->arena, type ? type : "OrchestrationFailed", fmt, ap);
    if (f == NULL) {
        c->nomem = true;
        return DT_ERR_NOMEM;
    }
    f->inner = (dt_failure *)inner;
    c->failure = f;
    return DT_ERR_TASK_FAILED;
}

dt_status dt_fail(dt_octx *c, const char *error_type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_status st = fail_v(c, NULL, error_type, fmt, ap);
    va_end(ap);
    return st;
}

dt_status dt_fail_with(dt_octx *c, const dt_failure *inner, const char *error_type,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_status st = fail_v(c, inner, error_type, fmt, ap);
    va_end(ap);
    return st;
}
