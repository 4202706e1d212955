/* json_held.c — a bound on the memory jansson holds in the whole process. jansson builds a
 * tree to tell whether a text is JSON, and a tree can take fifty and more times its text
 * (each "{}" of "[{},{},...]" is a hash table): a few concurrent 1 MiB payloads could take
 * gigabytes. dt_json_limit_held installs allocation functions that count what jansson holds
 * and refuse past the bound, and says so to the thread that was refused (dt_json_refused),
 * so a refused parse is told apart from text that is not JSON. A thread that holds all there
 * is goes past the bound: one payload alone is always read (at most about a hundred times
 * DT_PAYLOAD_MAX), however low the bound; it is what many at once hold that is bounded. A
 * thread counts what it holds by its own allocations and frees, so jansson's memory is
 * freed by the thread that took it (all of ours is). */
#include <jansson.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "durabletask/core.h"

/* in front of every block: its size, so that the free can count it back; kept to malloc's
 * alignment, so the block after it keeps it too */
typedef union block_head {
    size_t size;
    max_align_t align;
} block_head;

static _Atomic size_t held, bound;
/* what this thread's allocations hold (less what it freed of others': then it counts others'
 * as more, which refuses sooner, never later) */
static _Thread_local int64_t mine;
static _Thread_local bool refused, exempt;

static void *counted_malloc(size_t n)
{
    if (n > SIZE_MAX - sizeof(block_head))
        return NULL;
    size_t size = n + sizeof(block_head);
    size_t before = atomic_fetch_add(&held, size);
    bool others = (int64_t)before > mine;
    if (before + size > atomic_load(&bound) && others && !exempt) {
        atomic_fetch_sub(&held, size);
        refused = true;
        return NULL;
    }
    block_head *h = malloc(size);
    if (h == NULL) {
        atomic_fetch_sub(&held, size);
        return NULL;
    }
    h->size = size;
    mine += (int64_t)size;
    return h + 1;
}

static void counted_free(void *p)
{
    if (p == NULL)
        return;
    block_head *h = (block_head *)p - 1;
    atomic_fetch_sub(&held, h->size);
    /* not below nothing: a block of another thread's freed here (none of ours is) would
     * make this thread count others' as more than they are, and refuse a payload alone */
    mine = mine > (int64_t)h->size ? mine - (int64_t)h->size : 0;
    free(h);
}

void dt_json_limit_held(size_t max_bytes)
{
    static atomic_flag installed = ATOMIC_FLAG_INIT;
    atomic_store(&bound, max_bytes ? max_bytes : SIZE_MAX);
    if (!atomic_flag_test_and_set(&installed))
        json_set_alloc_funcs(counted_malloc, counted_free);
}

size_t dt_json_held(void)
{
    return atomic_load(&held);
}

size_t dt_json_held_max(void)
{
    size_t b = atomic_load(&bound);
    return b == SIZE_MAX ? 0 : b;
}

bool dt_json_unbounded(bool on)
{
    bool was = exempt;
    exempt = on;
    return was;
}

void dt_json_free(void *p)
{
    json_free_t release = NULL;
    json_get_alloc_funcs(NULL, &release);
    (release ? release : free)(p);
}

bool dt_json_refused(void)
{
    bool r = refused;
    refused = false;
    return r;
}
