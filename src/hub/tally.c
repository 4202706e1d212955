/* tally.c — what a history holds that every episode asks about, counted as events are added
 * instead of by reading the history again: per task id, how many events schedule it and how
 * many complete it (episode_is_duplicate), how many sub-orchestrations it created (the room
 * an episode needs), whether it ever asked for an entity's lock (asked_for_locks), and how
 * many tasks are open (a speculative episode needs exactly one: dispatch.c). The
 * history cache keeps one per cached history (cache.c), so the 10,000th step of a long
 * orchestration asks these in constant time, not in time that grows with the history. The
 * task ids are whatever the worker sent: an open-addressing table, not an array indexed by
 * them. */
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

struct tally_slot {
    int32_t task_id;
    bool used;
    uint32_t scheduled, completed;
};

void tally_free(tally *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* slot_of: TASK_ID's first slot among CAP (a power of two, at least 2): the top bits of a
 * multiplicative hash, so ids that differ only in their high bits spread too. */
static size_t slot_of(int32_t task_id, size_t cap)
{
    int bits = __builtin_ctzll((unsigned long long)cap);
    return (size_t)(((uint32_t)task_id * 2654435761u) >> (32 - bits));
}

/* find: TASK_ID's slot, or the free one where it would go (CAP a power of two, not full). */
static tally_slot *find(tally_slot *slots, size_t cap, int32_t task_id)
{
    size_t i = slot_of(task_id, cap);
    while (slots[i].used && slots[i].task_id != task_id)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* grow: room for one more task id, the table at most half full. */
static dt_status grow(tally *t)
{
    if ((t->n + 1) * 2 <= t->cap)
        return DT_OK;
    size_t cap = t->cap ? t->cap * 2 : 64;
    tally_slot *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return DT_ERR_NOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].used)
            *find(slots, cap, t->slots[i].task_id) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return DT_OK;
}

dt_status tally_add(tally *t, const dt_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const dt_event *e = &ev[i];
        t->children += e->type == DT_EVENT_SUB_ORCHESTRATION_CREATED;
        t->locks += e->type == DT_EVENT_ENTITY_LOCK_REQUESTED;
        bool sched = dt_event_is_scheduling(e->type);
        if (!sched && !dt_event_is_completion(e->type))
            continue;
        int32_t id = sched ? e->event_id : e->task_id;
        if (grow(t) != DT_OK)
            return DT_ERR_NOMEM;
        tally_slot *s = find(t->slots, t->cap, id);
        if (!s->used) {
            s->used = true;
            s->task_id = id;
            t->n++;
        }
        if (sched) {
            s->scheduled++;
            t->open += e->type != DT_EVENT_EVENT_SENT;   /* the one nothing completes */
        } else {
            t->open -= s->completed < s->scheduled;
            s->completed++;
        }
    }
    return DT_OK;
}

void tally_task(const tally *t, int32_t task_id, size_t *scheduled, size_t *completed)
{
    if (t->cap == 0)
        return;
    const tally_slot *s = find(t->slots, t->cap, task_id);
    if (s->used) {
        *scheduled += s->scheduled;
        *completed += s->completed;
    }
}
