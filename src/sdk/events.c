/* events.c — matching raised events to the code's waiters. Events of one name go to waiters
 * of that name first in, first out: an event goes to the earliest waiter still waiting when
 * it arrives, or is kept until a waiter asks. A waiter cancelled before an event arrives
 * does not take it. Names compare case-insensitively, as in the Durable Task Framework.
 * The matching is recomputed only when a waiter is added or cancelled. */
#include <strings.h>

#include "sdk_internal.h"

static bool same_event_name(const char *a, const char *b)
{
    return strcasecmp(a ? a : "", b ? b : "") == 0;
}

/* match_name: assign the events of NAME to its waiters, in order. A waiter cancelled before
 * an event arrived can take no later event either, so one forward pass suffices. */
static void match_name(dt_octx *c, const char *name, bool *seen)
{
    size_t w = 0;
    for (size_t i = 0; i < c->n_waiters; i++)
        if (same_event_name(c->waiters[i]->name, name))
            seen[i] = true;
    for (size_t r = 0; r < c->n_raised; r++) {
        size_t at = c->raised[r];
        if (!same_event_name(event_at(c, at)->name, name))
            continue;
        size_t ep = c->eff_pos[at];
        for (; w < c->n_waiters; w++) {
            dt_task *t = c->waiters[w];
            if (!same_event_name(t->name, name))
                continue;
            if (t->cancelled && t->cancelled_pos < ep)
                continue;   /* gave up before this event arrived */
            break;
        }
        if (w == c->n_waiters)
            return;       /* no waiter for this or any later event of the name: kept */
        c->waiters[w++]->event_index = at;
    }
}

static void match_all(dt_octx *c)
{
    bool *seen = dt_alloc(c, (c->n_waiters + 1) * sizeof *seen);
    /* from scratch: a waiter's match depends only on earlier events, waiters and
     * cancellations, so what the code has already received comes out the same */
    for (size_t i = 0; i < c->n_waiters; i++) {
        c->waiters[i]->event_index = POS_NEVER;
        c->waiters[i]->done = false;
    }
    for (size_t i = 0; i < c->n_waiters; i++)
        if (!seen[i])
            match_name(c, c->waiters[i]->name, seen);
    c->waiters_dirty = false;
}

void events_resolve(dt_octx *c, dt_task *t)
{
    if (c->waiters_dirty)
        match_all(c);
    if (t->event_index == POS_NEVER)
        return;
    const dt_event *e = event_at(c, t->event_index);
    size_t ep = c->eff_pos[t->event_index];
    t->done = true;
    t->done_pos = ep > t->created_pos ? ep : t->created_pos;
    t->result = e->input;
}

dt_event *events_unconsumed(dt_octx *c, size_t *n)
{
    if (c->waiters_dirty)
        match_all(c);
    bool *taken = dt_alloc(c, (c->n_events + 1) * sizeof *taken);
    for (size_t i = 0; i < c->n_waiters; i++)
        if (c->waiters[i]->event_index != POS_NEVER)
            taken[c->waiters[i]->event_index] = true;
    dt_event *out = dt_alloc(c, (c->n_raised + 1) * sizeof *out);
    *n = 0;
    for (size_t r = 0; r < c->n_raised; r++)
        if (!taken[c->raised[r]])
            out[(*n)++] = *event_at(c, c->raised[r]);
    return out;
}
