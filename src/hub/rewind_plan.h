/* rewind_plan.h — what a rewind does with each step of a failed run (rewind_plan.c), for
 * rewind.c and for tests that hand it histories (internal; not installed). */
#ifndef DT_HUB_REWIND_PLAN_H
#define DT_HUB_REWIND_PLAN_H

#include "durabletask/core.h"

/* What a rewind does with each event of the failed run's history (rewind_plan.c): a step
 * stays (with its result), runs again (an activity or timer goes, to be scheduled again; a
 * child's creation stays, its failure goes, the child is rewound), or goes (a later attempt
 * of a chain that runs again, its timers). A result has its step's fate: KEEP or GONE. */
enum { REWIND_KEEP, REWIND_RERUN, REWIND_GONE };
typedef struct rewind_plan {
    unsigned char *fate;   /* per event */
    int32_t *gone;         /* the sequence numbers no step keeps, sorted */
    size_t n_gone;
} rewind_plan;

/* rewind_plan_make: the plan for the N events at EV, in ARENA: DT_OK or DT_ERR_NOMEM. */
dt_status rewind_plan_make(const dt_event *ev, size_t n, dt_arena *arena, rewind_plan *out);

#endif
