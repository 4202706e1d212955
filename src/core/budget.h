/* budget.h — a count of bytes held against a limit, shared by threads without a lock
 * (internal; not installed). The servers bound the memory their clients can make them hold
 * with one: gRPC's messages (grpc/server.c), HTTP's bodies (http/server.c). */
#ifndef DT_CORE_BUDGET_H
#define DT_CORE_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct core_budget {
    atomic_size_t used;
    size_t max;
} core_budget;

/* core_budget_take: count N more bytes; false (nothing counted) if they would pass the limit.
 * Nothing always fits. A message larger than the whole limit goes when at most half of it is
 * held, so one can still go (the count then stays under half the limit plus that message). */
static inline bool core_budget_take(core_budget *b, size_t n)
{
    if (n == 0)
        return true;
    size_t used = atomic_load(&b->used);
    do {
        bool fits = used <= b->max && n <= b->max - used;
        bool alone = n > b->max && used <= b->max / 2;
        if (!fits && !alone)
            return false;
    } while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
    return true;
}

/* core_budget_take_fit: count N more bytes only if they fit under the limit (no exception for
 * a large one: for what is taken piece by piece). */
static inline bool core_budget_take_fit(core_budget *b, size_t n)
{
    size_t used = atomic_load(&b->used);
    do {
        if (used > b->max || n > b->max - used)
            return false;
    } while (!atomic_compare_exchange_weak(&b->used, &used, used + n));
    return true;
}

/* core_budget_force: count N more bytes whatever the limit (what is bounded elsewhere). */
static inline void core_budget_force(core_budget *b, size_t n)
{
    atomic_fetch_add(&b->used, n);
}

static inline void core_budget_give(core_budget *b, size_t n)
{
    atomic_fetch_sub(&b->used, n);
}

static inline size_t core_budget_used(core_budget *b)
{
    return atomic_load(&b->used);
}

#endif
