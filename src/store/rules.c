/* rules.c — what every backend decides the same way about instances: whether a creation may
 * replace an existing instance (the reuse policy), the ExecutionStarted message of a new one,
 * and the message a refused sub-orchestration sends its parent; about entities, the name a
 * row keeps and when a step empties one; and the error of a lease no longer held. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "store_internal.h"

bool store_step_empties(const dt_entity_step *step)
{
    const char *state = step->set_state ? step->state : step->item->state;
    const char *holder = step->set_lock ? step->locked_by : step->item->locked_by;
    return state == NULL && holder == NULL;
}

void store_entity_name(const char *id, char *buf, size_t size)
{
    size_t n = dt_entity_id_name_len(id);
    if (n >= size)
        n = size - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)tolower((unsigned char)id[1 + i]);
    buf[n] = '\0';
}

dt_status store_lease_lost(const char *what, const char *id, int64_t row, dt_error *err)
{
    if (id)
        return dt_error_set(err, DT_ERR_LEASE_LOST, "%s: the lease on '%s' is no longer held",
                            what, id);
    return dt_error_set(err, DT_ERR_LEASE_LOST,
                        "%s: the lease on activity %lld is no longer held", what,
                        (long long)row);
}

bool store_same_parent(const dt_new_instance *ni, const char *parent)
{
    return parent && ni->parent_instance_id && strcmp(parent, ni->parent_instance_id) == 0;
}

bool store_may_replace(const dt_new_instance *ni, dt_runtime_status existing,
                       const char *parent)
{
    if (ni->if_absent)
        return false;
    if (ni->parent_instance_id)
        return dt_runtime_status_is_terminal(existing) && store_same_parent(ni, parent);
    if (ni->n_replaceable == 0 || ni->replaceable == NULL)
        return !ni->reuse_policy && dt_runtime_status_is_terminal(existing);
    for (size_t i = 0; i < ni->n_replaceable; i++)
        if (ni->replaceable[i] == existing)
            return true;
    return false;
}

void store_started_message(const dt_new_instance *ni, dt_time created, dt_message *m)
{
    memset(m, 0, sizeof *m);
    m->instance_id = ni->instance_id;
    m->execution_id = ni->execution_id;
    m->visible_at = ni->scheduled_start ? ni->scheduled_start : created;
    dt_event_init(&m->event, DT_EVENT_EXECUTION_STARTED, created);
    m->event.event_id = 0;   /* as the Durable Task Scheduler numbers it */
    m->event.name = ni->name;
    m->event.version = ni->version;
    m->event.input = ni->input;
    m->event.instance_id = ni->instance_id;
    m->event.execution_id = ni->execution_id;
    m->event.scheduled_start = ni->scheduled_start;
    m->event.parent_instance_id = ni->parent_instance_id;
    m->event.parent_execution_id = ni->parent_execution_id;
    m->event.parent_name = ni->parent_name;
    m->event.parent_task_id = ni->parent_task_id;
    m->event.trace_parent = ni->trace_parent;
    m->event.trace_state = ni->trace_state;
    m->event.tags = ni->tags;
}

void store_conflict_message(const dt_new_instance *ni, bool same_parent, const dt_error *why,
                            store_conflict *out)
{
    const dt_message *m = ni->on_foreign && !same_parent ? ni->on_foreign : ni->on_conflict;
    out->message = *m;
    if (m->event.failure && m->event.failure->message == NULL) {
        snprintf(out->reason, sizeof out->reason,
                 "sub-orchestration '%.100s' was not started: %s", ni->instance_id,
                 why ? why->message : "the id is in use");
        out->failure = *m->event.failure;
        out->failure.message = out->reason;
        out->message.event.failure = &out->failure;
    }
}
