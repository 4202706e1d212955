/* sync.h — helpers for the layers' locking invariants (internal; not installed). What a
 * comment says of a lock ("rq_mu held"), an assert checks: assert(core_mutex_held(&mu)). */
#ifndef DT_CORE_SYNC_H
#define DT_CORE_SYNC_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

/* core_mutex_held: MU is locked (by this thread or another: a default mutex cannot tell).
 * A trylock of a locked mutex fails with EBUSY without blocking; one that succeeds is undone
 * at once. For asserts only: under NDEBUG it is never called. */
static inline bool core_mutex_held(pthread_mutex_t *mu)
{
    if (pthread_mutex_trylock(mu) == EBUSY)
        return true;
    pthread_mutex_unlock(mu);
    return false;
}

#endif
