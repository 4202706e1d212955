/* arena.c — bump allocation in chunks; one free releases everything. Chunks grow from 1 KB
 * to 16 KB as an arena fills. Big requests get a chunk of their own so a 1 MB payload does
 * not waste the rest of a small chunk. The arena itself lives at the start of its first
 * chunk. Freed chunks of the five standard sizes wait in pools for the next arenas: a busy
 * hub makes and frees a dozen arenas per instance, often on different threads, and malloc
 * answered that with heap growth and trimming (page faults, madvise) and with frees into
 * other threads' heaps, each behind that heap's lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/core.h"

#define FIRST_CHUNK 1024         /* an arena's first chunk; each next one is twice the last */
#define CHUNK_SIZE (16 * 1024)   /* ... up to this: the standard chunk */
#define N_SIZES 5                /* the standard sizes, 1 KB .. 16 KB */
#define ALIGN 16
#define POOL_BYTES ((size_t)1 << 20)   /* kept per size, at most: 5 MB in all */
#if defined(__SANITIZE_ADDRESS__)
#define POOLED 0          /* under AddressSanitizer every chunk is freed, so it sees misuse */
#else
#define POOLED 1
#endif

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(ALIGN) unsigned char data[];
} chunk;

struct dt_arena {
    chunk *head;     /* the chunk being filled; older chunks follow */
    chunk *home;     /* the chunk that holds this struct: released last */
    size_t held;     /* the bytes of all its chunks (dt_arena_held) */
};

/* the arena's own bytes at the start of its first chunk, rounded to the alignment */
#define ARENA_BYTES ((sizeof(dt_arena) + ALIGN - 1) & ~(size_t)(ALIGN - 1))

static struct pool {
    pthread_mutex_t mu;
    chunk *free;
    size_t n;
} pools[N_SIZES] = {
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0}, {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0}, {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
    {PTHREAD_MUTEX_INITIALIZER, NULL, 0},
};

/* pool_of: the pool of chunks of CAP bytes, or NULL if CAP is not a standard size. */
static struct pool *pool_of(size_t cap)
{
    for (int i = 0; i < N_SIZES; i++)
        if (cap == (size_t)FIRST_CHUNK << i)
            return POOLED ? &pools[i] : NULL;
    return NULL;
}

/* chunk_release: C back to its pool if it has a standard size and there is room, else free. */
static void chunk_release(chunk *c)
{
    struct pool *p = pool_of(c->cap);
    if (p) {
        pthread_mutex_lock(&p->mu);
        if ((p->n + 1) * c->cap <= POOL_BYTES) {
            c->next = p->free;
            p->free = c;
            p->n++;
            c = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    free(c);
}

void dt_arena_free(dt_arena *arena)
{
    if (arena == NULL)
        return;
    chunk *home = arena->home;
    chunk *c = arena->head;
    while (c) {
        chunk *next = c->next;
        if (c != home)
            chunk_release(c);
        c = next;
    }
    chunk_release(home);   /* the arena itself goes with it */
}

static chunk *chunk_new(size_t cap)
{
    chunk *c = NULL;
    struct pool *p = pool_of(cap);
    if (p) {
        pthread_mutex_lock(&p->mu);
        if ((c = p->free) != NULL) {
            p->free = c->next;
            p->n--;
        }
        pthread_mutex_unlock(&p->mu);
    }
    if (c == NULL)
        c = malloc(sizeof(chunk) + cap);
    if (c == NULL)
        return NULL;
    c->next = NULL;
    c->used = 0;
    c->cap = cap;
    return c;
}

dt_arena *dt_arena_new(void)
{
    chunk *c = chunk_new(FIRST_CHUNK);
    if (c == NULL)
        return NULL;
    dt_arena *arena = (dt_arena *)c->data;
    c->used = ARENA_BYTES;
    arena->head = arena->home = c;
    arena->held = sizeof(chunk) + c->cap;
    return arena;
}

size_t dt_arena_held(const dt_arena *arena)
{
    return arena ? arena->held : 0;
}

void *dt_arena_alloc(dt_arena *arena, size_t n)
{
    size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (need < n)
        return NULL;   /* overflow */
    if (need == 0)
        need = ALIGN;
    chunk *c = arena->head;
    if (c == NULL || c->cap - c->used < need) {
        if (need > CHUNK_SIZE / 4) {
            /* a big block: its own chunk, linked behind the current one so the current
             * chunk's free space stays usable */
            chunk *big = chunk_new(need);
            if (big == NULL)
                return NULL;
            big->used = need;
            arena->held += sizeof(chunk) + need;
            if (c) {
                big->next = c->next;
                c->next = big;
            } else {
                arena->head = big;
            }
            memset(big->data, 0, need);
            return big->data;
        }
        /* small arenas stay small (the history cache keeps one per instance); busy ones
         * reach the standard size in a few steps */
        size_t cap = c ? c->cap * 2 : FIRST_CHUNK;
        if (cap > CHUNK_SIZE)
            cap = CHUNK_SIZE;
        while (cap < need)
            cap *= 2;
        c = chunk_new(cap);
        if (c == NULL)
            return NULL;
        arena->held += sizeof(chunk) + cap;
        c->next = arena->head;
        arena->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    memset(p, 0, need);
    return p;
}

void *dt_arena_memdup(dt_arena *arena, const void *p, size_t n)
{
    void *q = dt_arena_alloc(arena, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *dt_arena_strndup(dt_arena *arena, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char *q = dt_arena_alloc(arena, n + 1);
    if (q == NULL)
        return NULL;
    memcpy(q, s, n);
    q[n] = '\0';
    return q;
}

char *dt_arena_strdup(dt_arena *arena, const char *s)
{
    return s ? dt_arena_strndup(arena, s, strlen(s)) : NULL;
}

char *dt_arena_vprintf(dt_arena *arena, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *s = dt_arena_alloc(arena, (size_t)n + 1);
    if (s)
        vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

char *dt_arena_printf(dt_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = dt_arena_vprintf(arena, fmt, ap);
    va_end(ap);
    return s;
}
