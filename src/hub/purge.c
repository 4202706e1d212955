/* purge.c — deleting finished instances: one by id, a filter's worth (the store's batches),
 * and recursively, an instance with the sub-orchestrations it started (read from its
 * history, and whose rows name it their parent), children first. Only finished instances
 * are ever deleted; a live child is left where it is, with everything below it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_internal.h"

/* Bounds on a recursive purge: the depth of the tree walked, and the instances it may visit
 * (each visit reads one history). */
#define TREE_DEPTH_MAX 64
#define TREE_VISITS_MAX 100000

/* log_purged: one line for a purge by filter that deleted N instances, naming the filter, so
 * an operator can tell afterwards where data went. */
static void log_purged(const dt_query *f, size_t n, bool recursive)
{
    char statuses[160] = "", from[40] = "", to[40] = "";
    size_t len = 0;
    for (size_t i = 0; f && i < f->n_statuses && len < sizeof statuses; i++)
        len += (size_t)snprintf(statuses + len, sizeof statuses - len, "%s%s", i ? "," : "",
                                dt_runtime_status_name(f->statuses[i]));
    /* a bound at the epoch is kept as -1 (dt_time_bound): it is logged as the epoch */
    if (f && f->created_from)
        dt_time_format(f->created_from < 0 ? 0 : f->created_from, from);
    if (f && f->created_to)
        dt_time_format(f->created_to < 0 ? 0 : f->created_to, to);
    dt_log(DT_LOG_INFO, NULL,
           "purged %zu instance%s%s (status %s, created %s..%s, name %s, id prefix %s)", n,
           n == 1 ? "" : "s", recursive ? " with their sub-orchestrations" : "",
           statuses[0] ? statuses : "any finished", from[0] ? from : "*", to[0] ? to : "*",
           f && f->name ? f->name : "*", f && f->id_prefix ? f->id_prefix : "*");
}

dt_status dt_hub_purge(dt_hub *hub, const char *id, dt_error *err)
{
    if (id == NULL || id[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "purge: instance id is empty");
    dt_status st = dt_store_purge_instance(hub->store, id, err);
    if (st == DT_OK)
        dt_log(DT_LOG_INFO, id, "purged");
    return st;
}

dt_status dt_hub_purge_where(dt_hub *hub, const dt_query *filter, size_t *n_purged,
                             dt_error *err)
{
    *n_purged = 0;
    dt_status bad = limits_query_ranges(filter, "purge", err);
    if (bad != DT_OK)
        return bad;
    dt_query all = {0};
    dt_status st = dt_store_purge_instances(hub->store, filter ? filter : &all, n_purged, err);
    if (st == DT_OK)
        log_purged(filter, *n_purged, false);
    return st;
}

/* The ids a recursive purge has seen, in an open-addressed hash set (a fan-out may start a
 * hundred thousand children), so a child id that repeats an ancestor's (or another child's)
 * is visited once. */
typedef struct tree {
    dt_hub *hub;
    char **slot;                /* CAP slots, a power of two, at most half full */
    size_t n_seen, cap;
    size_t purged;
} tree;

static size_t slot_of(char *const *slot, size_t cap, const char *id)
{
    size_t i = hub_hash_id(id) & (cap - 1);
    while (slot[i] && strcmp(slot[i], id) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

/* grow: twice the slots, every id moved over; false when out of memory. */
static bool grow(tree *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    char **slot = calloc(cap, sizeof *slot);
    if (slot == NULL)
        return false;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i])
            slot[slot_of(slot, cap, t->slot[i])] = t->slot[i];
    free(t->slot);
    t->slot = slot;
    t->cap = cap;
    return true;
}

static bool seen_before(tree *t, const char *id, dt_status *st, dt_error *err)
{
    if (t->cap && t->slot[slot_of(t->slot, t->cap, id)])
        return true;
    if (t->n_seen >= TREE_VISITS_MAX) {
        *st = dt_error_set(err, DT_ERR_INVALID_ARG, "purge: more than %d instances below one",
                           TREE_VISITS_MAX);
        return true;
    }
    char *copy = (t->n_seen + 1) * 2 <= t->cap || grow(t) ? strdup(id) : NULL;
    if (copy == NULL) {
        *st = dt_error_set(err, DT_ERR_NOMEM, "purge: out of memory");
        return true;
    }
    t->slot[slot_of(t->slot, t->cap, id)] = copy;
    t->n_seen++;
    return false;
}

/* A history walked for the children it started: PARENT's, DEPTH levels below the purge's
 * root. */
typedef struct walk {
    tree *t;
    const char *parent;
    int depth;
} walk;

static dt_status purge_children(tree *t, const char *id, int depth, dt_error *err);

/* finished_child: is CHILD, which PARENT's history says it started, there, PARENT's child
 * (its row names PARENT: a start the store refused, for an id another instance held, or an
 * id since reused by someone else's start, is not), and finished? A live child is left with
 * everything below it. */
static dt_status finished_child(dt_hub *hub, const char *child, const char *parent, bool *yes,
                                dt_error *err)
{
    *yes = false;
    dt_arena *a = dt_arena_new();
    if (a == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "purge: out of memory");
    dt_instance_state *s = NULL;
    dt_status st = dt_store_get_instance(hub->store, child, a, &s, err);
    if (st == DT_OK)
        *yes = s->parent_instance_id && strcmp(s->parent_instance_id, parent) == 0 &&
               dt_runtime_status_is_terminal(s->status);
    dt_arena_free(a);
    return st == DT_ERR_NOT_FOUND ? DT_OK : st;
}

/* purge_window (dt_history_fn): the children a window of a history names, purged (theirs
 * first). */
static dt_status purge_window(void *arg, const dt_event *ev, size_t n, dt_arena *a,
                              dt_error *err)
{
    (void)a;
    walk *w = arg;
    dt_status st = DT_OK;
    for (size_t i = 0; st == DT_OK && i < n; i++) {
        const char *child = ev[i].instance_id;
        bool mine = false;
        if (ev[i].type != DT_EVENT_SUB_ORCHESTRATION_CREATED || child == NULL ||
            seen_before(w->t, child, &st, err) ||
            (st = finished_child(w->t->hub, child, w->parent, &mine, err)) != DT_OK || !mine)
            continue;
        st = purge_children(w->t, child, w->depth + 1, err);
        if (st != DT_OK)
            break;
        dt_error own;
        dt_status one = dt_store_purge_instance(w->t->hub->store, child, &own);
        if (one == DT_OK)
            w->t->purged++;
        else if (one != DT_ERR_NOT_FOUND && one != DT_ERR_STATE)
            st = dt_error_set(err, one, "%s", own.message);
    }
    return st;
}

/* purge_children: purge, children first, the finished sub-orchestrations ID started (its
 * history's SubOrchestrationInstanceCreated events, read a window at a time) and theirs.
 * Missing and live ones are left. */
static dt_status purge_children(tree *t, const char *id, int depth, dt_error *err)
{
    if (depth >= TREE_DEPTH_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "purge: sub-orchestrations nest deeper than %d levels below '%s'",
                            TREE_DEPTH_MAX, id);
    walk w = {.t = t, .parent = id, .depth = depth};
    bool replaced;   /* (restarted meanwhile: the children seen by then are purged) */
    dt_status st = dt_hub_walk_history(t->hub, id, purge_window, &w, &replaced, err);
    return st == DT_ERR_NOT_FOUND ? DT_OK : st;   /* gone already: nothing below it to find */
}

static void tree_free(tree *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slot[i]);
    free(t->slot);
}

/* purge_recursive: dt_hub_purge_recursive without its log line. */
static dt_status purge_recursive(dt_hub *hub, const char *id, size_t *n_purged, dt_error *err)
{
    *n_purged = 0;
    if (id == NULL || id[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "purge: instance id is empty");
    /* the instance itself must be finished before anything below it goes */
    dt_arena *a = dt_arena_new();
    if (a == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "purge: out of memory");
    dt_instance_state *s = NULL;
    dt_status st = dt_store_get_instance(hub->store, id, a, &s, err);
    if (st == DT_OK && !dt_runtime_status_is_terminal(s->status))
        st = dt_error_set(err, DT_ERR_STATE, "cannot purge instance '%s': it is %s (only "
                          "finished instances can be purged)", id,
                          dt_runtime_status_name(s->status));
    dt_arena_free(a);
    tree t = {.hub = hub};
    if (st == DT_OK && !seen_before(&t, id, &st, err))
        st = purge_children(&t, id, 0, err);
    if (st == DT_OK && (st = dt_store_purge_instance(hub->store, id, err)) == DT_OK)
        t.purged++;
    *n_purged = t.purged;
    tree_free(&t);
    return st;
}

dt_status dt_hub_purge_recursive(dt_hub *hub, const char *id, size_t *n_purged, dt_error *err)
{
    dt_status st = purge_recursive(hub, id, n_purged, err);
    if (st == DT_OK)
        dt_log(DT_LOG_INFO, id, "purged with its finished sub-orchestrations (%zu instance%s)",
               *n_purged, *n_purged == 1 ? "" : "s");
    return st;
}

dt_status dt_hub_purge_where_recursive(dt_hub *hub, const dt_query *filter, size_t *n_purged,
                                       dt_error *err)
{
    *n_purged = 0;
    dt_status bad = limits_query_ranges(filter, "purge", err);
    if (bad != DT_OK)
        return bad;
    static const dt_runtime_status finished[] = {DT_STATUS_COMPLETED, DT_STATUS_FAILED,
                                                 DT_STATUS_TERMINATED, DT_STATUS_CANCELED};
    dt_query q = filter ? *filter : (dt_query){0};
    if (q.n_statuses == 0) {
        q.statuses = finished;
        q.n_statuses = 4;
    }
    q.page_size = DT_QUERY_PAGE_MAX;
    q.with_payloads = false;
    q.continuation = NULL;
    /* a page at a time, each purged before the next is read: the pages go newest first
     * and each starts after the last row of the one before (a key, not an offset), so rows
     * purged meanwhile do not move them; an instance a tree before it took is not found */
    dt_status st = DT_OK;
    char *token = NULL;   /* the next page's, in the heap: it outlives its page's arena */
    char *ids[DT_QUERY_PAGE_MAX];
    do {
        size_t n_ids = 0;
        dt_arena *a = dt_arena_new();
        dt_instance_state *page = NULL;
        size_t n = 0;
        const char *next = NULL;
        q.continuation = token;
        st = a ? dt_store_query_instances(hub->store, &q, a, &page, &n, &next, err)
               : dt_error_set(err, DT_ERR_NOMEM, "purge: out of memory");
        for (size_t i = 0; st == DT_OK && i < n && n_ids < DT_QUERY_PAGE_MAX; i++) {
            if (!dt_runtime_status_is_terminal(page[i].status))
                continue;   /* the filter named a live status: live ones are never purged */
            if ((ids[n_ids] = strdup(page[i].instance_id)) == NULL)
                st = dt_error_set(err, DT_ERR_NOMEM, "purge: out of memory");
            else
                n_ids++;
        }
        free(token);
        token = NULL;
        if (st == DT_OK && next && (token = strdup(next)) == NULL)
            st = dt_error_set(err, DT_ERR_NOMEM, "purge: out of memory");
        dt_arena_free(a);
        for (size_t i = 0; i < n_ids; i++) {
            size_t k = 0;
            dt_status one = st == DT_OK ? purge_recursive(hub, ids[i], &k, err) : DT_OK;
            *n_purged += k;
            if (one != DT_OK && one != DT_ERR_NOT_FOUND && one != DT_ERR_STATE)
                st = one;   /* purged by an earlier one's tree, or changed since: not an error */
            free(ids[i]);
        }
    } while (st == DT_OK && token != NULL);
    free(token);
    if (st == DT_OK)
        log_purged(&q, *n_purged, true);
    return st;
}
