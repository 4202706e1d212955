/* worker.c — the registry of orchestrators, activities and entities, and the executor that
 * runs them (for the hub's dispatch loops and the remote worker alike): orchestrations
 * through the replay executor (resuming a cached session when one continues), activities
 * by a plain call, entity batches through
 * dt_entity_run. A name nobody registered fails the instance (or the activity) with an error
 * naming it, as the other Durable Task SDKs do. */
#include <stdlib.h>
#include <string.h>

#include "sdk_internal.h"

typedef struct entry {
    void *fn;        /* dt_orchestrator_fn or dt_activity_fn */
    void *user;
} entry;

/* Entries and their names side by side: NAMES is what dt_worker_filters hands out. */
typedef struct registry {
    entry *v;
    char **names;
    size_t n, cap_v, cap_names;
} registry;

struct dt_worker {
    registry orchestrators, activities;   /* written before start, read-only after */
    registry entities;                   /* by lowercase name */
    dt_hub *hub;                         /* while running in-process */
    session_cache *sessions;             /* suspended orchestrations (session.c) */
};

struct dt_actx {
    dt_arena *arena;
    const dt_activity_request *req;
    void *user;
    dt_failure *failure;
};

static const entry *registry_find(const registry *r, const char *name)
{
    for (size_t i = 0; name && i < r->n; i++)
        if (strcmp(r->names[i], name) == 0)
            return &r->v[i];
    return NULL;
}

static dt_status registry_add(registry *r, const char *name, void *fn, void *user)
{
    if (name == NULL || name[0] == '\0' || fn == NULL)
        return DT_ERR_INVALID_ARG;
    if (registry_find(r, name))
        return DT_ERR_ALREADY_EXISTS;
    entry *v = dt_grow(r->v, &r->cap_v, r->n + 1, sizeof *v);
    if (v == NULL)
        return DT_ERR_NOMEM;
    r->v = v;
    char **names = dt_grow(r->names, &r->cap_names, r->n + 1, sizeof *names);
    if (names == NULL)
        return DT_ERR_NOMEM;
    r->names = names;
    char *copy = strdup(name);
    if (copy == NULL)
        return DT_ERR_NOMEM;
    r->v[r->n] = (entry){fn, user};
    r->names[r->n++] = copy;
    return DT_OK;
}

static void registry_free(registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->names[i]);
    free(r->names);
    free(r->v);
}

dt_status dt_worker_new(dt_worker **out)
{
    dt_worker *w = calloc(1, sizeof *w);
    if (w == NULL)
        return DT_ERR_NOMEM;
    if (session_cache_new(DT_SESSIONS_DEFAULT, &w->sessions) != DT_OK) {
        free(w);
        return DT_ERR_NOMEM;
    }
    *out = w;
    return DT_OK;
}

void dt_worker_set_sessions(dt_worker *w, size_t max)
{
    session_cache_set_max(w->sessions, max);
}

size_t dt_worker_sessions(dt_worker *w)
{
    return session_cache_max(w->sessions);
}

void dt_worker_session_stats(dt_worker *w, dt_session_stats *out)
{
    session_cache_stats(w->sessions, out);
}

void dt_worker_free(dt_worker *w)
{
    if (w == NULL)
        return;
    dt_worker_stop(w);
    session_cache_free(w->sessions);
    registry_free(&w->orchestrators);
    registry_free(&w->activities);
    registry_free(&w->entities);
    free(w);
}

dt_status dt_worker_add_orchestrator(dt_worker *w, const char *name, dt_orchestrator_fn fn,
                                     void *user)
{
    return registry_add(&w->orchestrators, name, (void *)fn, user);
}

dt_status dt_worker_add_activity(dt_worker *w, const char *name, dt_activity_fn fn, void *user)
{
    return registry_add(&w->activities, name, (void *)fn, user);
}

dt_status dt_worker_add_entity(dt_worker *w, const char *name, dt_entity_fn fn, void *user)
{
    if (name == NULL || name[0] == '\0' || strchr(name, '@'))
        return DT_ERR_INVALID_ARG;
    char *low = strdup(name);
    if (low == NULL)
        return DT_ERR_NOMEM;
    for (char *p = low; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    dt_status st = registry_add(&w->entities, low, (void *)fn, user);
    free(low);
    return st;
}

/* ---- the executor --------------------------------------------------------------------- */

static dt_status run_orchestration(void *data, const dt_orch_request *req, dt_arena *arena,
                                   dt_orch_result *out)
{
    dt_worker *w = data;
    if (req->past_left_out)   /* the ExecutionStarted with the rest: only a session can run it */
        return session_run(w->sessions, NULL, NULL, req, arena, out);
    const dt_event *started = dt_orch_request_started(req);
    const char *name = started ? started->name : NULL;
    const entry *e = registry_find(&w->orchestrators, name);
    if (e == NULL) {
        dt_action *a = dt_arena_alloc(arena, sizeof *a);
        if (a == NULL)
            return DT_ERR_NOMEM;
        a->type = DT_ACTION_COMPLETE_ORCHESTRATION;
        a->id = -1;   /* the worker ends it, not the orchestrator's code */
        a->status = DT_STATUS_FAILED;
        a->failure = dt_failure_new(arena, "OrchestratorNotRegistered",
                                    "no orchestrator named '%s' is registered with the worker",
                                    name ? name : "");
        if (a->failure == NULL)
            return DT_ERR_NOMEM;
        out->actions = a;
        out->n_actions = 1;
        out->custom_status = NULL;
        return DT_OK;
    }
    return session_run(w->sessions, (dt_orchestrator_fn)e->fn, e->user, req, arena, out);
}

/* run_activity: call the activity and report its output or failure. Out of memory (for the
 * failure or the copy of the output) is DT_ERR_NOMEM: the item is given back and run again,
 * rather than completed without the result it produced. */
static dt_status run_activity(void *data, const dt_activity_request *req, dt_arena *arena,
                              const char **result, const dt_failure **failure)
{
    dt_worker *w = data;
    *result = NULL;
    *failure = NULL;
    const entry *e = registry_find(&w->activities, req->name);
    if (e == NULL) {
        *failure = dt_failure_new(arena, "ActivityNotRegistered",
                                  "no activity named '%s' is registered with the worker",
                                  req->name ? req->name : "");
        return *failure ? DT_OK : DT_ERR_NOMEM;
    }
    dt_actx ctx = {arena, req, e->user, NULL};
    const char *output = NULL;
    dt_status st = ((dt_activity_fn)e->fn)(&ctx, req->input, &output);
    dt_error err;
    if (st != DT_OK)
        *failure = ctx.failure ? ctx.failure
                               : dt_failure_new(arena, "ActivityError",
                                                "activity '%s' returned '%s'", req->name,
                                                dt_strerror(st));
    else if (output && dt_payload_validate(output, "activity output", &err) != DT_OK)
        *failure = dt_failure_new(arena, "InvalidOutput", "activity '%s': %s", req->name,
                                  err.message);
    else if (output == NULL)
        return DT_OK;
    else   /* a copy: OUTPUT may be the activity's static or stack memory */
        return (*result = dt_arena_strdup(arena, output)) ? DT_OK : DT_ERR_NOMEM;
    return *failure ? DT_OK : DT_ERR_NOMEM;
}

/* run_entity: the batch on the entity registered under its name; with none, each operation
 * fails (EntityNotRegistered) and the state stays, as the other SDKs answer. */
static dt_status run_entity(void *data, const dt_entity_request *req, dt_arena *arena,
                            dt_entity_result *out)
{
    dt_worker *w = data;
    size_t n = dt_entity_id_name_len(req->entity_id);
    char *name = dt_arena_strndup(arena, req->entity_id + 1, n);
    if (name == NULL)
        return DT_ERR_NOMEM;
    const entry *e = registry_find(&w->entities, name);
    if (e)
        return dt_entity_run((dt_entity_fn)e->fn, e->user, req, arena, out);
    dt_entity_op_result *r = dt_arena_alloc(arena, (req->n_operations + 1) * sizeof *r);
    dt_failure *f = dt_failure_new(arena, "EntityNotRegistered",
                                   "no entity named '%s' is registered with the worker", name);
    if (r == NULL || f == NULL)
        return DT_ERR_NOMEM;
    f->non_retriable = true;
    for (size_t i = 0; i < req->n_operations; i++)
        r[i].failure = f;
    *out = (dt_entity_result){r, req->n_operations, NULL, 0, req->state, NULL};
    return DT_OK;
}

dt_executor dt_worker_executor(dt_worker *w)
{
    return (dt_executor){w, run_orchestration, run_activity, run_entity};
}

dt_status dt_worker_start(dt_worker *w, dt_hub *hub, const dt_worker_options *opts,
                          dt_error *err)
{
    if (w->hub)
        return dt_error_set(err, DT_ERR_STATE, "worker is already running");
    int ot = opts && opts->orchestration_threads > 0 ? opts->orchestration_threads : 2;
    int at = opts && opts->activity_threads > 0 ? opts->activity_threads : 4;
    dt_executor ex = dt_worker_executor(w);
    if (w->entities.n == 0)
        ex.run_entity = NULL;   /* entities are left to a worker that has them */
    dt_name_filter orch, act, ent;
    dt_worker_filters(w, &orch, &act);
    dt_worker_entity_filter(w, &ent);
    dt_work_filter only = {&orch, &act, &ent};   /* dt_hub_run copies it */
    bool all = opts && opts->all_names;
    dt_status st = dt_hub_run(hub, &ex, all ? NULL : &only, ot, at, err);
    if (st == DT_OK)
        w->hub = hub;
    return st;
}

void dt_worker_filters(const dt_worker *w, dt_name_filter *orchestrators,
                       dt_name_filter *activities)
{
    /* any version of each name: the C SDK does not version what it registers */
    *orchestrators = (dt_name_filter){(const char *const *)w->orchestrators.names,
                                      w->orchestrators.n, NULL};
    *activities = (dt_name_filter){(const char *const *)w->activities.names, w->activities.n,
                                   NULL};
}

void dt_worker_entity_filter(const dt_worker *w, dt_name_filter *entities)
{
    *entities = (dt_name_filter){(const char *const *)w->entities.names, w->entities.n, NULL};
}

void dt_worker_stop(dt_worker *w)
{
    if (w && w->hub) {
        dt_hub_stop(w->hub);
        w->hub = NULL;
        session_cache_clear(w->sessions);   /* no episode runs now */
    }
}

/* ---- activity context ---------------------------------------------------------------- */

const char *dt_activity_instance_id(const dt_actx *c) { return c->req->instance_id; }
const char *dt_activity_name(const dt_actx *c) { return c->req->name; }
int32_t dt_activity_task_id(const dt_actx *c) { return c->req->task_id; }
void *dt_activity_user(const dt_actx *c) { return c->user; }
void *dt_activity_alloc(dt_actx *c, size_t n) { return dt_arena_alloc(c->arena, n); }

char *dt_activity_printf(dt_actx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = dt_arena_vprintf(c->arena, fmt, ap);
    va_end(ap);
    return s;
}

dt_status dt_activity_fail(dt_actx *c, const char *error_type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dt_failure *f = dt_failure_vnew(c->arena, error_type ? error_type : "ActivityFailed", fmt, ap);
    va_end(ap);
    if (f == NULL)
        return DT_ERR_NOMEM;
    c->failure = f;
    return DT_ERR_TASK_FAILED;
}
