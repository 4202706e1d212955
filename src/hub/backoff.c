/* backoff.c — how long work a worker gave up waits before it is handed out again. A worker
 * abandons what it cannot run (the SDKs' versioning "reject" mode, a completion the server
 * refused); handing it straight back would be a hot loop of deliveries. The wait starts at a
 * quarter second and doubles with each abandon in a row, up to ten seconds: an activity
 * counts by its delivery count (the store keeps it), an orchestration by a note the hub keeps
 * of the instances abandoned lately, forgotten when one of its episodes commits. */
#include <stdio.h>
#include <string.h>

#include "hub_internal.h"

#define BACKOFF_FIRST_US INT64_C(250000)
#define BACKOFF_MAX_US INT64_C(10000000)
#define NOTE_FORGET_US INT64_C(600000000)   /* an abandon this old starts a new run */

dt_time backoff_after(int n)
{
    dt_time d = BACKOFF_FIRST_US;
    for (int i = 1; i < n && d < BACKOFF_MAX_US; i++)
        d *= 2;
    return d < BACKOFF_MAX_US ? d : BACKOFF_MAX_US;
}

int backoff_note(dt_hub *hub, const char *id, dt_time now)
{
    pthread_mutex_lock(&hub->ls_mu);
    abandon_note *slot = NULL, *oldest = &hub->abandons[0];
    for (int i = 0; i < ABANDON_NOTES; i++) {
        abandon_note *n = &hub->abandons[i];
        if (n->count > 0 && strcmp(n->id, id) == 0) {
            slot = n;
            break;
        }
        if (n->count == 0 && (slot == NULL || slot->count != 0))
            slot = n;
        if (n->at < oldest->at)
            oldest = n;
    }
    if (slot == NULL)
        slot = oldest;   /* all in use: the least recent goes */
    if (slot->count > 0 && (strcmp(slot->id, id) != 0 || now - slot->at > NOTE_FORGET_US))
        slot->count = 0;
    if (slot->count == 0) {
        snprintf(slot->id, sizeof slot->id, "%s", id);
        hub->n_abandons += 1;
    }
    slot->count++;
    slot->at = now;
    int count = slot->count;
    pthread_mutex_unlock(&hub->ls_mu);
    return count;
}

void backoff_forget(dt_hub *hub, const char *id)
{
    if (atomic_load(&hub->n_abandons) == 0)
        return;   /* the common case costs one load */
    pthread_mutex_lock(&hub->ls_mu);
    for (int i = 0; i < ABANDON_NOTES; i++) {
        abandon_note *n = &hub->abandons[i];
        if (n->count > 0 && strcmp(n->id, id) == 0) {
            n->count = 0;
            hub->n_abandons -= 1;
            break;
        }
    }
    pthread_mutex_unlock(&hub->ls_mu);
}
