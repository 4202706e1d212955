/* limits.c — the size rules for what workers hand back (the client's calls check their payloads
 * with dt_payload_check_size where they take them): an activity's result or failure over
 * DT_PAYLOAD_MAX fails the activity instead; an orchestrator action or custom status over it
 * fails the instance; a history over the hub's cap (DT_HISTORY_MAX) fails the instance; and a
 * work item given back without a result DT_POISON_DELIVERIES times in a row is parked by failing
 * its instance. Each failure names the limit, so the instance never waits for ever. */
#include <stdio.h>
#include <string.h>

#include "hub_internal.h"

#define FAILURE_DEPTH_MAX 32   /* the codec refuses deeper chains; this only bounds the walk */

static size_t len_of(const char *s) { return s ? strlen(s) : 0; }

size_t limits_failure_bytes(const dt_failure *f)
{
    size_t n = 0;
    for (int depth = 0; f && depth < FAILURE_DEPTH_MAX; f = f->inner, depth++)
        n += len_of(f->error_type) + len_of(f->message) + len_of(f->stack_trace) +
             len_of(f->properties);
    return n;
}

size_t limits_event_bytes(const dt_event *e)
{
    return len_of(e->name) + len_of(e->input) + len_of(e->result) + len_of(e->tags) +
           limits_failure_bytes(e->failure);
}

/* over: whether WHAT (N bytes) is over DT_PAYLOAD_MAX; if so WHY says so. */
static bool over(size_t n, const char *what, char *why, size_t why_len)
{
    if (n <= DT_PAYLOAD_MAX)
        return false;
    snprintf(why, why_len,
             "%s is %zu bytes, over the payload size limit of %zu bytes (1 MiB, DT_PAYLOAD_MAX)",
             what, n, DT_PAYLOAD_MAX);
    return true;
}

bool limits_activity_over(const char *result, const dt_failure *failure, char *why,
                          size_t why_len)
{
    return over(len_of(result), "the activity's result", why, why_len) ||
           over(limits_failure_bytes(failure), "the activity's failure details", why, why_len);
}

bool limits_result_over(const dt_orch_result *r, char *why, size_t why_len)
{
    if (over(len_of(r->custom_status), "the custom status", why, why_len))
        return true;
    char what[96];
    for (size_t i = 0; i < r->n_actions; i++) {
        const dt_action *a = &r->actions[i];
        size_t in = len_of(a->input);
        if (a->entity)
            in += len_of(a->entity->input);
        snprintf(what, sizeof what, "the input of action %d (type %d)", (int)a->id, (int)a->type);
        if (over(in, what, why, why_len))
            return true;
        snprintf(what, sizeof what, "the orchestration's result (action %d)", (int)a->id);
        if (over(len_of(a->result), what, why, why_len))
            return true;
        snprintf(what, sizeof what, "the orchestration's failure details (action %d)", (int)a->id);
        if (over(limits_failure_bytes(a->failure), what, why, why_len))
            return true;
        for (size_t k = 0; k < a->n_carryover; k++) {   /* carried over, or a rewind's history */
            snprintf(what, sizeof what, "event %zu carried by action %d", k, (int)a->id);
            if (over(limits_event_bytes(&a->carryover[k]), what, why, why_len))
                return true;
        }
    }
    return false;
}

dt_status limits_range(dt_time from, dt_time to, const char *op, const char *what,
                       dt_error *err)
{
    if (from != 0 && to != 0 && from > to)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s: the %s range ends before it begins",
                            op, what);
    return DT_OK;
}

dt_status limits_query_ranges(const dt_query *q, const char *op, dt_error *err)
{
    dt_status st = q ? limits_range(q->created_from, q->created_to, op, "created-time", err)
                     : DT_OK;
    if (st == DT_OK && q)
        st = limits_range(q->completed_from, q->completed_to, op, "completed-time", err);
    return st;
}

size_t limits_history_max(const dt_hub *hub)
{
    return hub->max_history ? hub->max_history : DT_HISTORY_MAX;
}
