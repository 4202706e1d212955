/* retry.c — retry policies. A task with a policy is a chain: attempt, and on failure a
 * durable timer then the next attempt, until one succeeds or the policy gives up. The steps
 * are replayed in history order as the code's position advances (retry_advance), so the
 * sequence numbers they take interleave with the code's own calls exactly as they did when
 * they first ran, and history shows every attempt and every wait. */
#include <math.h>
#include <stdio.h>

#include "sdk_internal.h"

dt_status dt_retry_policy_validate(const dt_retry_policy *p, dt_error *err)
{
    if (p == NULL)
        return DT_OK;
    if (p->max_attempts < 1 || p->max_attempts > DT_RETRY_MAX_ATTEMPTS)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "retry policy max_attempts must be between 1 and %d (got %d)",
                            DT_RETRY_MAX_ATTEMPTS, p->max_attempts);
    if (p->first_interval_ms <= 0 || p->first_interval_ms > DT_RETRY_MAX_INTERVAL_MS)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "retry policy first_interval_ms must be between 1 and %lld "
                            "(got %lld)",
                            (long long)DT_RETRY_MAX_INTERVAL_MS, (long long)p->first_interval_ms);
    double k = p->backoff_coefficient;
    if (k != 0 && (!isfinite(k) || k < 1 || k > 1000))
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "retry policy backoff_coefficient must be between 1 and 1000 (got %g)",
                            k);
    if (p->max_interval_ms < 0 || p->max_interval_ms > DT_RETRY_MAX_INTERVAL_MS ||
        (p->max_interval_ms > 0 && p->max_interval_ms < p->first_interval_ms))
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "retry policy max_interval_ms must be 0 (no cap) or between "
                            "first_interval_ms and %lld (got %lld)",
                            (long long)DT_RETRY_MAX_INTERVAL_MS, (long long)p->max_interval_ms);
    if (p->retry_timeout_ms < 0)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "retry policy retry_timeout_ms must not be negative (got %lld)",
                            (long long)p->retry_timeout_ms);
    return DT_OK;
}

void retry_start(dt_octx *c, dt_task *t, const dt_retry_policy *p, const dt_action *a)
{
    retry_state *rs = dt_alloc(c, sizeof *rs);
    rs->policy = *p;
    rs->action = *a;
    /* later attempts are scheduled from here, when the caller's strings may be gone */
    rs->action.name = replay_strdup(c, a->name);
    rs->action.input = replay_strdup(c, a->input);
    rs->action.version = replay_strdup(c, a->version);
    rs->action.instance_id = replay_strdup(c, a->instance_id);
    rs->first_time = dt_octx_now(c);
    rs->attempts = 1;
    dt_action copy = *a;
    rs->cur_seq = replay_schedule(c, a->type, a->name, &copy);
    t->retry = rs;
    t->seq = rs->cur_seq;
    /* keep the list in creation order: ties in history position go to the older task */
    dt_task **tail = &c->retrying;
    while (*tail)
        tail = &(*tail)->retry->next;
    *tail = t;
}

void retry_resolve(dt_octx *c, dt_task *t)
{
    (void)c;
    (void)t;   /* retry_advance moves the chain; a retrying task is done when it says so */
}

static size_t trigger_of(const dt_octx *c, const dt_task *t)
{
    int32_t s = t->retry->cur_seq;
    if (s < 0 || (size_t)s >= c->n_seq || c->completed[s] == NULL)
        return POS_NEVER;
    return c->completed_pos[s];
}

static int64_t delay_ms(const dt_retry_policy *p, int attempts)
{
    double k = p->backoff_coefficient > 0 ? p->backoff_coefficient : 1;
    double d = (double)p->first_interval_ms * pow(k, attempts - 1);
    double cap = p->max_interval_ms > 0 ? (double)p->max_interval_ms
                                        : (double)DT_RETRY_MAX_INTERVAL_MS;
    return (int64_t)(d < cap ? d : cap);
}

static bool should_retry(dt_octx *c, const retry_state *rs, const dt_failure *f, dt_time now)
{
    if (rs->attempts >= rs->policy.max_attempts || (f && f->non_retriable))
        return false;
    if (rs->policy.retry_timeout_ms > 0 &&
        now - rs->first_time >= rs->policy.retry_timeout_ms * 1000)
        return false;
    (void)c;
    return rs->policy.handle == NULL || rs->policy.handle(f, rs->policy.handle_user);
}

/* step: what happened at POS to T's current attempt or timer, and what follows. */
static void step(dt_octx *c, dt_task *t, size_t pos)
{
    retry_state *rs = t->retry;
    const dt_event *e = c->completed[rs->cur_seq];
    if (rs->on_timer) {
        dt_action a = rs->action;
        rs->cur_seq = replay_schedule(c, a.type, a.name, &a);
        rs->attempts++;
        rs->on_timer = false;
        return;
    }
    bool failed = e->type == DT_EVENT_TASK_FAILED || e->type == DT_EVENT_SUB_ORCHESTRATION_FAILED;
    if (!failed) {
        t->done = true;
        t->done_pos = pos;
        t->result = e->result;
        return;
    }
    dt_time now = c->time_at[pos];
    if (should_retry(c, rs, e->failure, now)) {
        dt_action timer = {0};
        timer.fire_at = now + delay_ms(&rs->policy, rs->attempts) * 1000;
        rs->cur_seq = replay_schedule(c, DT_ACTION_CREATE_TIMER, NULL, &timer);
        rs->on_timer = true;
        return;
    }
    t->done = t->failed = true;
    t->done_pos = pos;
    t->failure = e->failure ? e->failure
                            : dt_failure_new(c->arena, "TaskFailed", "attempt %d failed",
                                             rs->attempts);
}

bool retry_advance(dt_octx *c, size_t limit)
{
    dt_task *best = NULL;
    size_t best_pos = POS_NEVER;
    for (dt_task **p = &c->retrying; *p;) {
        dt_task *t = *p;
        if (t->done) {          /* finished chains leave the list */
            *p = t->retry->next;
            continue;
        }
        size_t at = trigger_of(c, t);
        if (at != POS_NEVER && at <= limit && (best == NULL || at < best_pos)) {
            best = t;
            best_pos = at;
        }
        p = &t->retry->next;
    }
    if (best == NULL)
        return false;
    step(c, best, best_pos);
    return true;
}
