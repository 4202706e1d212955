/* sync.h — helpers for the layers' locking invariants (internal; not installed). What a
 * comment says of a lock ("rq_mu held"), an assert checks: assert(core_mutex_held(&mu)). */
#ifndef DT_CORE_SYNC_H
#define DT_CORE_SYNC_H

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

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

/* core_mutex_init_fast: MU made a mutex that spins a little before it sleeps (glibc's adaptive
 * kind). For the locks a thread takes right after another wakes it (a condition signalled
 * under the lock, a queue handed over): the waker lets go within microseconds, and sleeping
 * on the lock instead costs both threads a futex call and the woken one a second wake-up. */
static inline int core_mutex_init_fast(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    if (pthread_mutexattr_init(&a) != 0)
        return pthread_mutex_init(mu, NULL);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
    int rc = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return rc;
}

/* core_absl_deadlock_checks_off: gRPC core locks with Abseil's Mutex, and the Abseil that
 * Debian ships is built with its deadlock detector on: every lock records itself in a global
 * lock-order graph (under one global lock), a few percent of a busy server's and worker's CPU
 * for a check meant for debugging. Turned off, when this Abseil has the switch, through the
 * C++ function's symbol (looked up, so another build without it simply keeps its default). */
static inline void core_absl_deadlock_checks_off(void)
{
    void *f = dlsym(RTLD_DEFAULT, "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_"
                                  "15OnDeadlockCycleE");
    if (f) {
        void (*set_mode)(int) = (void (*)(int))(uintptr_t)f;
        set_mode(0);   /* absl::OnDeadlockCycle::kIgnore */
    }
}

#endif
