/* grow.c — the one way a heap array grows: doubling, with overflow checked, leaving the old
 * array alone when it cannot. */
#include <stdint.h>
#include <stdlib.h>

#include "durabletask/core.h"

#define FIRST_CAP 8

void *dt_grow(void *v, size_t *cap, size_t need, size_t size)
{
    if (size == 0)
        return NULL;
    if (v != NULL && need <= *cap)
        return v;
    size_t n = v && *cap ? *cap : FIRST_CAP;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return NULL;
        n *= 2;
    }
    if (n > SIZE_MAX / size)
        return NULL;
    void *bigger = realloc(v, n * size);
    if (bigger == NULL)
        return NULL;
    *cap = n;
    return bigger;
}
