/* worker.c — the registry of orchestrators and activities, and the executor that runs them
 * for the hub's dispatch loops: orchestrations through the replay executor, activities by a
 * plain call. A name nobody registered fails the instance (or the activity) with an error
 * naming it, as the other Durable Task SDKs do. */
#include <stdlib.h>
#include <string.h>

#include "durabletask/sdk.h"
#include "sdk/remote.h"

typedef struct entry {
    char *name;
    void *fn;        /* dt_orchestrator_fn or dt_activity_fn */
    void *user;
} entry;

typedef struct registry {
    entry *v;
    size_t n, cap;
} registry;

struct dt_worker {
    registry orchestrators, activities;   /* written before start, read-only after */
    dt_hub *hub;                         /* while running in-process */
    remote *remote;                      /* while running against a server */
    const char **names;                  /* orchestrator then activity names, for remote */
};

struct dt_actx {
    dt_arena *arena;
    const dt_activity_item *item;
    void *user;
    dt_failure *failure;
};

static const entry *registry_find(const registry *r, const char *name)
{
    for (size_t i = 0; name && i < r->n; i++)
        if (strcmp(r->v[i].name, name) == 0)
            return &r->v[i];
    return NULL;
}

static dt_status registry_add(registry *r, const char *name, void *fn, void *user)
{
    if (name == NULL || name[0] == '\0' || fn == NULL)
        return DT_ERR_INVALID_ARG;
    if (registry_find(r, name))
        return DT_ERR_ALREADY_EXISTS;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        entry *v = realloc(r->v, cap * sizeof *v);
        if (v == NULL)
            return DT_ERR_NOMEM;
        r->v = v;
        r->cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL)
        return DT_ERR_NOMEM;
    r->v[r->n++] = (entry){copy, fn, user};
    return DT_OK;
}

static void registry_free(registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].name);
    free(r->v);
}

dt_status dt_worker_new(dt_worker **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? DT_OK : DT_ERR_NOMEM;
}

void dt_worker_free(dt_worker *w)
{
    if (w == NULL)
        return;
    dt_worker_stop(w);
    registry_free(&w->orchestrators);
    registry_free(&w->activities);
    free(w->names);
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

/* ---- the executor --------------------------------------------------------------------- */

static dt_status run_orchestration(void *data, const dt_orch_item *item, dt_arena *arena,
                                   dt_orch_result *out)
{
    dt_worker *w = data;
    const char *name = item->state.name;
    const entry *e = registry_find(&w->orchestrators, name);
    if (e == NULL) {
        dt_action *a = dt_arena_alloc(arena, sizeof *a);
        if (a == NULL)
            return DT_ERR_NOMEM;
        a->type = DT_ACTION_COMPLETE_ORCHESTRATION;
        a->status = DT_STATUS_FAILED;
        a->failure = dt_failure_new(arena, "OrchestratorNotRegistered",
                                    "no orchestrator named '%s' is registered with the worker",
                                    name ? name : "");
        out->actions = a;
        out->n_actions = 1;
        out->custom_status = NULL;
        return DT_OK;
    }
    return dt_replay_run((dt_orchestrator_fn)e->fn, e->user, item->instance_id, item->past,
                         item->n_past, item->incoming, item->n_incoming, arena, out);
}

static dt_status run_activity(void *data, const dt_activity_item *item, dt_arena *arena,
                              const char **result, const dt_failure **failure)
{
    dt_worker *w = data;
    *result = NULL;
    *failure = NULL;
    const entry *e = registry_find(&w->activities, item->name);
    if (e == NULL) {
        *failure = dt_failure_new(arena, "ActivityNotRegistered",
                                  "no activity named '%s' is registered with the worker",
                                  item->name ? item->name : "");
        return DT_OK;
    }
    dt_actx ctx = {arena, item, e->user, NULL};
    const char *output = NULL;
    dt_status st = ((dt_activity_fn)e->fn)(&ctx, item->input, &output);
    if (st == DT_OK) {
        dt_error err;
        if (output && dt_json_validate(output, "activity output", &err) != DT_OK) {
            *failure = dt_failure_new(arena, "InvalidOutput", "activity '%s': %s", item->name,
                                      err.message);
            return DT_OK;
        }
        *result = output ? dt_arena_strdup(arena, output) : NULL;
        return DT_OK;
    }
    *failure = ctx.failure ? ctx.failure
                           : dt_failure_new(arena, "ActivityError", "activity '%s' returned '%s'",
                                            item->name, dt_strerror(st));
    return DT_OK;
}

dt_executor dt_worker_executor(dt_worker *w)
{
    return (dt_executor){w, run_orchestration, run_activity};
}

dt_status dt_worker_start(dt_worker *w, dt_hub *hub, const dt_worker_options *opts,
                          dt_error *err)
{
    if (w->hub || w->remote)
        return dt_error_set(err, DT_ERR_STATE, "worker is already running");
    int ot = opts && opts->orchestration_threads > 0 ? opts->orchestration_threads : 2;
    int at = opts && opts->activity_threads > 0 ? opts->activity_threads : 4;
    dt_executor ex = dt_worker_executor(w);
    dt_status st = dt_hub_run(hub, &ex, ot, at, err);
    if (st == DT_OK)
        w->hub = hub;
    return st;
}

dt_status dt_worker_connect(dt_worker *w, const char *target, const dt_worker_options *opts,
                            dt_error *err)
{
    if (w->hub || w->remote)
        return dt_error_set(err, DT_ERR_STATE, "worker is already running");
    if (target == NULL || target[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "no server address given");
    int ot = opts && opts->orchestration_threads > 0 ? opts->orchestration_threads : 2;
    int at = opts && opts->activity_threads > 0 ? opts->activity_threads : 4;
    /* the names of what we run: the server sends us that work only */
    size_t no = w->orchestrators.n, na = w->activities.n;
    free(w->names);
    w->names = calloc(no + na + 1, sizeof *w->names);
    if (w->names == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < no; i++)
        w->names[i] = w->orchestrators.v[i].name;
    for (size_t i = 0; i < na; i++)
        w->names[no + i] = w->activities.v[i].name;
    dt_executor ex = dt_worker_executor(w);
    return remote_start(&ex, target, opts ? opts->token : NULL, ot + at, w->names, no,
                        w->names + no, na, &w->remote, err);
}

void dt_worker_stop(dt_worker *w)
{
    if (w && w->hub) {
        dt_hub_stop(w->hub);
        w->hub = NULL;
    }
    if (w && w->remote) {
        remote_stop(w->remote);
        w->remote = NULL;
    }
}

/* ---- activity context ---------------------------------------------------------------- */

const char *dt_activity_instance_id(const dt_actx *c) { return c->item->instance_id; }
const char *dt_activity_name(const dt_actx *c) { return c->item->name; }
int32_t dt_activity_task_id(const dt_actx *c) { return c->item->task_id; }
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
    dt_failure *f = dt_arena_alloc(c->arena, sizeof *f);
    if (f == NULL)
        return DT_ERR_NOMEM;
    f->error_type = dt_arena_strdup(c->arena, error_type ? error_type : "ActivityFailed");
    va_list ap;
    va_start(ap, fmt);
    f->message = dt_arena_vprintf(c->arena, fmt, ap);
    va_end(ap);
    c->failure = f;
    return DT_ERR_TASK_FAILED;
}
