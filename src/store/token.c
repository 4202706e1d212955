/* token.c — lease tokens and lease ends, as every backend makes them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/random.h>

#include "store_internal.h"

/* new_token: OWNER ":" 16 hex digits, in ARENA. A token must differ from every other token
 * of the store; the owner names the process, and within it a counter, mixed with a random
 * seed drawn once (no system call per lease), does the rest. */
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;
static uint64_t seed;
static _Atomic uint64_t token_counter;

static void draw_seed(void)
{
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t n = getrandom((uint8_t *)&seed + got, sizeof seed - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
}

const char *store_new_token(dt_arena *arena, const char *owner)
{
    pthread_once(&seed_once, draw_seed);
    /* splitmix64 of seed + counter: distinct counters give distinct values */
    uint64_t z = seed + atomic_fetch_add(&token_counter, 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return dt_arena_printf(arena, "%s:%016llx", owner && owner[0] ? owner : "worker",
                           (unsigned long long)z);
}

dt_time store_lease_end(dt_time now, int64_t lease_us)
{
    if (lease_us < 0)
        lease_us = 0;
    return now > INT64_MAX - lease_us ? INT64_MAX : now + lease_us;
}
