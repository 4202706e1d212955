/* candidates.c — the candidates a lease looks at, as every backend's search for work collects
 * them: instances, entities or activity rows, each once, the earliest visible first, up to a
 * cap. The searches themselves are the backends' (sqlite_candidates.c, pg_lease.c,
 * pg_entity.c); this is the set they fill. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

dt_status store_cands_make(size_t max, store_cands *out, dt_error *err)
{
    size_t cap = max < STORE_CANDS_MAX ? max : STORE_CANDS_MAX;
    /* room for one at least: calloc(0) may answer NULL */
    *out = (store_cands){calloc(cap ? cap : 1, sizeof *out->c), 0, cap};
    if (out->c == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory finding work");
    return DT_OK;
}

void store_cands_free(store_cands *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->c[i].id);
    free(c->c);
    *c = (store_cands){NULL, 0, 0};
}

bool store_cands_has(const store_cands *c, const char *id, int64_t row)
{
    for (size_t i = 0; i < c->n; i++)
        if (id ? strcmp(c->c[i].id, id) == 0 : c->c[i].row == row)
            return true;
    return false;
}

bool store_cands_add(store_cands *c, const char *id, int64_t row, dt_time at)
{
    size_t k = c->n;
    while (k > 0 && c->c[k - 1].at > at)
        k--;
    if (k == c->cap)
        return true;   /* later than every one kept */
    char *copy = NULL;
    if (id && (copy = strdup(id)) == NULL)
        return false;
    if (c->n == c->cap)   /* the latest drops out */
        free(c->c[--c->n].id);
    memmove(&c->c[k + 1], &c->c[k], (c->n - k) * sizeof *c->c);
    c->c[k] = (store_cand){copy, row, at};
    c->n++;
    return true;
}
