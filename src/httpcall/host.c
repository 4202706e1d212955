/* host.c — the HTTP activity run by a server (`dtask serve`), with no worker of its own: for
 * each hub it serves, a few threads take only BuiltIn::HttpActivity work items through the
 * hub's pull API (a work filter naming no orchestration and only that activity, so every
 * other item stays for the SDK workers) and complete each with the activity's response or
 * failure. A thread holds its hub's reference for as long as it serves it; when the hub is
 * deleted it lets go, and takes the name up again (a new hub) a second later. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpcall_internal.h"

/* How long one wait for work lasts, so a stop is seen that soon. */
#define HOST_WAIT_MS 250

typedef struct host_thread {
    struct dt_http_activity_host *host;
    char name[DT_TASK_HUB_NAME_MAX + 1];
    pthread_t tid;
    bool started;
} host_thread;

struct dt_http_activity_host {
    dt_hub_set *hubs;
    const dt_http_activity *act;
    atomic_bool stop;            /* set once by stop; read by every thread and exchange */
    host_thread *threads;
    size_t n_threads;
};

static void pause_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* An item whose result was handed to the hub: what its log line needs, in ARENA with the
 * result itself, which the hub reads until it calls served_done. */
typedef struct served {
    dt_arena *arena;
    const char *instance_id;
    int32_t task_id;
} served;

static bool quiet(dt_status st)
{
    return st == DT_OK || st == DT_ERR_LEASE_LOST || st == DT_ERR_SHUTDOWN;
}

static void served_done(void *arg, dt_status st, const dt_error *err)
{
    served *s = arg;
    if (!quiet(st))
        dt_log(DT_LOG_WARN, s->instance_id, "%s (task %d): %s", DT_HTTP_ACTIVITY_NAME,
               (int)s->task_id, err ? err->message : dt_strerror(st));
    dt_arena_free(s->arena);
}

/* serve_one: run ITEM (taken from HUB) and hand it back completed, or given back if the
 * host is stopping or memory ran out. The result is handed over without waiting, as the
 * in-process loops hand theirs: one the store has no room for waits in the hub, its lease
 * kept, so a full database does not make the call again (dt_hub_waits_fn). */
static void serve_one(dt_http_activity_host *h, dt_hub *hub, dt_activity_item *item)
{
    dt_activity_request req;
    dt_hub_activity_request(item, &req);
    char id[DT_INSTANCE_ID_MAX + 1];   /* REQ's strings go with ITEM */
    snprintf(id, sizeof id, "%s", req.instance_id);
    int task_id = req.task_id;
    dt_error err = {0};
    dt_arena *arena = dt_arena_new();
    const char *result = NULL;
    const dt_failure *failure = NULL;
    dt_status st = arena ? httpcall_run(h->act, req.input, arena, &h->stop, &result, &failure)
                         : DT_ERR_NOMEM;
    served *s = st == DT_OK ? dt_arena_alloc(arena, sizeof *s) : NULL;
    if (s && (s->instance_id = dt_arena_strdup(arena, id)) != NULL) {
        s->arena = arena;
        s->task_id = task_id;
        dt_hub_complete_activity_async(hub, item, result, failure, served_done, NULL, s);
        return;
    }
    if (st == DT_OK)   /* made, but no memory to hand its result over */
        dt_log(DT_LOG_WARN, id, "%s (task %d): out of memory to hand its result over; the "
               "call will be made again", DT_HTTP_ACTIVITY_NAME, task_id);
    if (st == DT_ERR_SHUTDOWN)   /* cut short: whoever runs it next runs it whole */
        st = dt_hub_release_activity(hub, item, &err);
    else   /* failed to run, or no memory to hand it over */
        st = dt_hub_abandon_activity(hub, item, &err);
    if (!quiet(st))
        dt_log(DT_LOG_WARN, id, "%s (task %d): %s", DT_HTTP_ACTIVITY_NAME, task_id,
               err.message);
    dt_arena_free(arena);
}

static void *host_main(void *arg)
{
    host_thread *t = arg;
    dt_http_activity_host *h = t->host;
    const char *names[] = {DT_HTTP_ACTIVITY_NAME};
    dt_name_filter none = {NULL, 0, NULL}, only_http = {names, 1, NULL};
    dt_work_filter filter = {&none, &only_http, &none};
    dt_hub_ref *ref = NULL;
    while (!atomic_load(&h->stop)) {
        dt_error err = {0};
        if (ref == NULL && dt_hub_set_get(h->hubs, t->name, &ref, &err) != DT_OK) {
            ref = NULL;
            pause_ms(1000);
            continue;
        }
        if (dt_hub_ref_deleted(ref)) {
            dt_hub_ref_put(ref);
            ref = NULL;
            pause_ms(1000);
            continue;
        }
        dt_hub *hub = dt_hub_ref_hub(ref);
        dt_work work;
        dt_status st = dt_hub_next_work(hub, HOST_WAIT_MS, 0, DT_WORK_ACTIVITY, &filter, NULL,
                                        &work, &err);
        if (work.act)
            serve_one(h, hub, work.act);
        else if (st != DT_OK)   /* the hub is closing, or its store failed: not in a hot loop */
            pause_ms(HOST_WAIT_MS);
    }
    if (ref)
        dt_hub_ref_put(ref);
    return NULL;
}

dt_status dt_http_activity_host_start(dt_hub_set *hubs, const char *const *hub_names, size_t n,
                                      const dt_http_activity *a, int threads,
                                      dt_http_activity_host **out, dt_error *err)
{
    *out = NULL;
    size_t per = threads > 0 ? (size_t)threads : 2, n_hubs = n ? n : 1;
    for (size_t i = 0; i < n; i++) {
        dt_status st = dt_task_hub_validate(hub_names[i], err);
        if (st != DT_OK)
            return st;
    }
    dt_http_activity_host *h = calloc(1, sizeof *h);
    if (h == NULL || (h->threads = calloc(per * n_hubs, sizeof *h->threads)) == NULL) {
        free(h);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    }
    h->hubs = hubs;
    h->act = a;
    atomic_init(&h->stop, false);
    h->n_threads = per * n_hubs;
    for (size_t i = 0; i < h->n_threads; i++) {
        host_thread *t = &h->threads[i];
        t->host = h;
        snprintf(t->name, sizeof t->name, "%s", n ? hub_names[i / per] : DT_TASK_HUB_DEFAULT);
        int rc = pthread_create(&t->tid, NULL, host_main, t);
        if (rc != 0) {
            dt_http_activity_host_stop(h);
            return dt_error_set(err, DT_ERR_INTERNAL, "cannot start a thread for %s: %s",
                                DT_HTTP_ACTIVITY_NAME, strerror(rc));
        }
        t->started = true;
    }
    *out = h;
    return DT_OK;
}

void dt_http_activity_host_stop(dt_http_activity_host *h)
{
    if (h == NULL)
        return;
    atomic_store(&h->stop, true);
    for (size_t i = 0; i < h->n_threads; i++)
        if (h->threads[i].started)
            pthread_join(h->threads[i].tid, NULL);
    free(h->threads);
    free(h);
}
