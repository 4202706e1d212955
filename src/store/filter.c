/* filter.c — what every backend's queries and purges share: a dt_query checked and worked out
 * into the values a backend binds (status mask, time ranges, id range of the prefix, where a
 * page starts), the page size, and the continuation tokens (their one format, read here and
 * written here). The SQL that uses the values is each backend's own. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

int64_t store_terminal_mask(void)
{
    int64_t m = 0;
    for (int i = 0; i < STORE_STATUS_BITS; i++)
        if (dt_runtime_status_is_terminal((dt_runtime_status)i))
            m |= INT64_C(1) << i;
    return m;
}

dt_status store_filter_make(const dt_query *q, int64_t allowed, bool paging, store_filter *f,
                            dt_error *err)
{
    static const dt_query all;
    if (q == NULL)
        q = &all;
    memset(f, 0, sizeof *f);
    if (q->n_statuses > 0 && q->statuses == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "query: %zu statuses given but the list is NULL", q->n_statuses);
    int64_t mask = q->n_statuses ? 0 : STORE_ALL_STATUSES;
    for (size_t i = 0; i < q->n_statuses; i++) {
        int v = (int)q->statuses[i];
        if (v < 0 || v >= STORE_STATUS_BITS)
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "query: status %d is not a runtime status", v);
        mask |= INT64_C(1) << v;
    }
    f->mask = mask & allowed;
    f->from = q->created_from ? q->created_from : INT64_MIN;
    f->to = q->created_to ? q->created_to : INT64_MAX;
    f->done_from = q->completed_from;
    f->done_to = q->completed_to;
    f->name = q->name;
    f->version = q->version;
    f->lo = "";   /* no text sorts below the empty string */
    if (q->id_prefix != NULL && q->id_prefix[0] != '\0') {
        f->lo = q->id_prefix;
        dt_status r = store_prefix_end(q->id_prefix, &f->hi, err);
        if (r != DT_OK)
            return r;
    }
    if (paging && q->continuation != NULL && !q->by_id) {
        /* newest first: the token is "<created_at>:<instance id>" of the page's last row */
        char *end = NULL;
        long long at = strtoll(q->continuation, &end, 10);
        if (end == q->continuation || *end != ':') {
            store_filter_free(f);
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "query: continuation token '%.100s' is not one of a "
                                "newest-first query", q->continuation);
        }
        f->after_set = true;
        f->after_at = at;
        f->after_id = end + 1;
    } else if (paging && q->continuation != NULL) {
        /* the next page starts after the token; when the token sorts below the prefix range
         * the range's own start is the later one */
        if (strcmp(q->continuation, f->lo) >= 0)
            f->lo = q->continuation;
        f->skip = q->continuation;
    }
    return DT_OK;
}

void store_filter_free(store_filter *f)
{
    free(f->hi);
    f->hi = NULL;
}

/* query_page_size: Q's page size (0: DT_QUERY_PAGE_DEFAULT); DT_ERR_INVALID_ARG over
 * DT_QUERY_PAGE_MAX. */
static dt_status query_page_size(const dt_query *q, size_t *page, dt_error *err)
{
    *page = q && q->page_size ? q->page_size : DT_QUERY_PAGE_DEFAULT;
    if (*page > DT_QUERY_PAGE_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "query: page size %zu is over the maximum of %d", *page,
                            DT_QUERY_PAGE_MAX);
    return DT_OK;
}

dt_status store_entity_page_size(const dt_entity_query *q, size_t *page, dt_error *err)
{
    *page = q->page_size ? q->page_size : DT_QUERY_PAGE_DEFAULT;
    if (*page > DT_QUERY_PAGE_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "page size %zu is over the maximum %d",
                            *page, DT_QUERY_PAGE_MAX);
    return DT_OK;
}

dt_status store_query_make(const dt_query *q, size_t *page, store_filter *f, dt_error *err)
{
    dt_status r = query_page_size(q, page, err);
    if (r != DT_OK)
        return r;
    r = store_filter_make(q, STORE_ALL_STATUSES, true, f, err);
    if (r != DT_OK)
        store_filter_free(f);
    return r;
}

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

size_t store_state_bytes(const dt_instance_state *s)
{
    size_t n = len_of(s->input) + len_of(s->output) + len_of(s->custom_status) +
               len_of(s->tags);
    int depth = 0;
    for (const dt_failure *f = s->failure; f && depth < 64; f = f->inner, depth++)
        n += len_of(f->error_type) + len_of(f->message) + len_of(f->stack_trace) +
             len_of(f->properties);
    return n;
}

dt_status store_query_next(const dt_query *q, const dt_instance_state *last, dt_arena *arena,
                           const char **next, dt_error *err)
{
    if (q && q->by_id) {
        *next = last->instance_id;   /* already ARENA memory */
        return DT_OK;
    }
    *next = dt_arena_printf(arena, "%lld:%s", (long long)last->created_at, last->instance_id);
    if (*next == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for a continuation token");
    return DT_OK;
}
