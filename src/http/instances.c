/* instances.c — the instance management API under /runtime/webhooks/durabletask/, shaped
 * like Durable Functions' HTTP API (same paths, query parameters and status codes where it
 * has them): start, status (with history), list with paging, raise event, terminate,
 * suspend, resume, rewind, restart, purge (one or by filter), and counts by status for the
 * dashboard. Each handler parses its parameters, makes one call of the hub's client API and
 * writes the answer; the hub's error messages name what was wrong and go out as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

/* ---- parameters (the shared ones are params.c's) ----------------------------------------- */

/* param_statuses: runtimeStatus as a comma-separated list of names into OUT (at most
 * CAP). */
static bool param_statuses(const http_request *rq, http_response *rs, dt_runtime_status *out,
                           size_t cap, size_t *n_out)
{
    *n_out = 0;
    const char *v = http_query(rq, "runtimeStatus");
    if (v == NULL)
        return true;
    const char *p = v;
    while (*p) {
        size_t len = strcspn(p, ",");
        char name[32];
        size_t start = 0;
        while (start < len && p[start] == ' ')
            start++;
        size_t end = len;
        while (end > start && p[end - 1] == ' ')
            end--;
        if (end > start) {
            dt_runtime_status st;
            bool ok = end - start < sizeof name;
            if (ok) {
                memcpy(name, p + start, end - start);
                name[end - start] = '\0';
                ok = dt_runtime_status_parse(name, &st) == DT_OK;
            }
            if (!ok) {
                http_reply_error(rs, 400,
                                 "runtimeStatus: '%.*s' is not a runtime status (Running, "
                                 "Completed, ContinuedAsNew, Failed, Canceled, Terminated, "
                                 "Pending, Suspended)",
                                 (int)(end - start > 100 ? 100 : end - start), p + start);
                return false;
            }
            if (*n_out == cap) {
                http_reply_error(rs, 400, "runtimeStatus lists more than %zu statuses", cap);
                return false;
            }
            out[(*n_out)++] = st;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

/* reason_json: the query parameter "reason" as a JSON string (malloc'd into *OUT), or NULL
 * when absent. */
static bool reason_json(const http_request *rq, http_response *rs, char **out)
{
    *out = NULL;
    const char *reason = http_query(rq, "reason");
    if (reason == NULL)
        return true;
    if (!dt_utf8_valid(reason)) {   /* refused, as a rewind's is, not silently replaced */
        http_reply_error(rs, 400, "reason is not valid UTF-8");
        return false;
    }
    jbuf jb;
    jb_init(&jb);
    jb_string(&jb, reason);
    size_t len;
    *out = jb_finish(&jb, &len);
    if (*out == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return false;
    }
    return true;
}

/* ---- URIs ------------------------------------------------------------------------------------ */

/* base_url: "http://HOST" from the request's Host header, or the loopback address and our
 * port when it is missing or has characters no host name has. In ARENA. */
static char *base_url(const http_request *rq, dt_arena *arena)
{
    const char *host = http_header(rq, "Host");
    if (host && host[0] && strlen(host) < 256 &&
        strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]") ==
            strlen(host))
        return dt_arena_printf(arena, "http://%s", host);
    return dt_arena_printf(arena, "http://127.0.0.1:%d", rq->port);
}

/* path_encode: S as one path segment (unreserved characters kept, the rest %XX). */
static char *path_encode(const char *s, dt_arena *arena)
{
    char *out = dt_arena_alloc(arena, strlen(s) * 3 + 1);
    if (out == NULL)
        return NULL;
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            *o++ = (char)*p;
        } else {
            snprintf(o, 4, "%%%02X", *p);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

static char *status_uri(const http_request *rq, const char *id, dt_arena *arena)
{
    char *base = base_url(rq, arena);
    char *enc = path_encode(id, arena);
    if (base == NULL || enc == NULL)
        return NULL;
    return dt_arena_printf(arena, "%s" HTTP_API_PREFIX "/instances/%s", base, enc);
}

/* put_started: 202 with the management URIs of instance ID, as Durable Functions' "check
 * status" payload, and Location: its status URI; what it builds them in is ARENA's. */
static void put_started(const http_request *rq, http_response *rs, const char *id,
                        dt_arena *arena)
{
    char *st = status_uri(rq, id, arena);
    if (st == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    static const struct {
        const char *key, *suffix;
    } uris[] = {
        {"statusQueryGetUri", ""},
        {"sendEventPostUri", "/raiseEvent/{eventName}"},
        {"terminatePostUri", "/terminate?reason={text}"},
        {"suspendPostUri", "/suspend?reason={text}"},
        {"resumePostUri", "/resume?reason={text}"},
        {"rewindPostUri", "/rewind?reason={text}"},
        {"purgeHistoryDeleteUri", ""},
        {"restartPostUri", "/restart"},
    };
    jbuf jb;
    jb_init(&jb);
    jb_object_begin(&jb);
    jb_key(&jb, "id");
    jb_string(&jb, id);
    /* on a named task hub, every URI names it too (as Durable Functions' do) */
    const char *hub = http_query(rq, "taskHub");
    char *hub_q = hub && hub[0] ? path_encode(hub, arena) : NULL;
    for (size_t i = 0; i < sizeof uris / sizeof uris[0]; i++) {
        const char *sep = strchr(uris[i].suffix, '?') ? "&" : "?";
        char *u = hub_q ? dt_arena_printf(arena, "%s%s%staskHub=%s", st, uris[i].suffix, sep,
                                          hub_q)
                        : dt_arena_printf(arena, "%s%s", st, uris[i].suffix);
        if (u == NULL)
            jb.oom = true;
        jb_key(&jb, uris[i].key);
        jb_string(&jb, u);
        if (i == 0)
            st = u;   /* statusQueryGetUri is the Location too */
    }
    jb_object_end(&jb);
    rs->body = jb_finish(&jb, &rs->len);
    rs->location = st ? strdup(st) : NULL;
    if (rs->body == NULL || rs->location == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    rs->status = 202;
    rs->content_type = HTTP_JSON_TYPE;
}

/* reply_started: put_started, in an arena of its own. */
static void reply_started(const http_request *rq, http_response *rs, const char *id)
{
    dt_arena *a = dt_arena_new();
    if (a == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    put_started(rq, rs, id, a);
    dt_arena_free(a);
}

static void reply_deleted(http_response *rs, size_t n)
{
    jbuf jb;
    jb_init(&jb);
    jb_object_begin(&jb);
    jb_key(&jb, "instancesDeleted");
    jb_int(&jb, (long long)n);
    jb_object_end(&jb);
    http_reply_json(rs, 200, &jb);
}

static void reply_accepted(http_response *rs)
{
    rs->status = 202;
    rs->content_type = NULL;
}

/* ---- handlers ------------------------------------------------------------------------------- */

/* POST orchestrators/{name}[/{instanceId}][?version=V], body: the input. */
static void start_instance(http_request *rq, http_response *rs, const char *name,
                           const char *id)
{
    const char *input;
    if (!http_body_json(rq, rs, &input))
        return;
    dt_start_request req = {.name = name, .instance_id = id, .input = input};
    const char *version = http_query(rq, "version");   /* ours: the orchestration's version */
    if (version && version[0])
        req.version = version;
    char new_id[DT_INSTANCE_ID_MAX + 1];
    dt_error err = {0};
    if (dt_hub_start(rq->hub, &req, new_id, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    reply_started(rq, rs, new_id);
}

#define HISTORY_TRIES 3   /* reads of a history replaced while it is read, before giving up */

/* A history shown in a GET instances/{id} as it is walked. */
typedef struct history_show {
    http_request *rq;
    http_response *rs;
    jbuf *jb;
    bool show_output;
    jb_names names;     /* from window to window */
    size_t counted;     /* of the memory it holds, by http_hold; kept over tries */
    bool answered;      /* refused on the way (http_hold) */
} history_show;

/* show_window (dt_history_fn): a window's events into the open "historyEvents" array; the
 * request holds one window and the JSON so far, never the whole history decoded, and the
 * JSON is counted against the server's bound (http_hold) as it grows. */
static dt_status show_window(void *arg, const dt_event *ev, size_t n, dt_arena *a,
                             dt_error *err)
{
    (void)a;
    history_show *h = arg;
    jb_history(h->jb, ev, n, h->show_output, &h->names);
    size_t holds = h->jb->cap + jb_names_bytes(&h->names);
    if (holds > h->counted && !http_hold(h->rq, h->rs, holds - h->counted)) {
        h->answered = true;
        return dt_error_set(err, DT_ERR_NO_SPACE, "refused");
    }
    h->counted = holds > h->counted ? holds : h->counted;
    return DT_OK;
}

/* GET instances/{id}: 200 once finished, 202 while not (Durable Functions' convention). */
static void get_instance(http_request *rq, http_response *rs, const char *id)
{
    bool history, history_output, input, ise;
    if (!http_param_bool(rq, rs, "showHistory", false, &history) ||
        !http_param_bool(rq, rs, "showHistoryOutput", false, &history_output) ||
        !http_param_bool(rq, rs, "showInput", true, &input) ||
        !http_param_bool(rq, rs, "returnInternalServerErrorOnFailure", false, &ise))
        return;
    dt_arena *a = dt_arena_new();
    if (a == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    dt_instance_state *s = NULL;
    jbuf jb;
    jb_init(&jb);
    history_show h = {.rq = rq, .rs = rs, .jb = &jb, .show_output = history_output};
    bool replaced = true;
    for (int tries = 0; replaced && tries < HISTORY_TRIES; tries++) {
        free(jb_finish(&jb, &(size_t){0}));
        jb_names_free(&h.names);
        replaced = false;
        dt_error err = {0};
        dt_status st = dt_hub_get(rq->hub, id, a, &s, &err);
        if (st == DT_OK)
            jb_state_open(&jb, s, input);
        if (st == DT_OK && history) {
            jb_key(&jb, "historyEvents");
            jb_array_begin(&jb);
            st = dt_hub_walk_history(rq->hub, id, show_window, &h, &replaced, &err);
            jb_array_end(&jb);
        }
        if (h.answered)
            goto done;
        if (st != DT_OK) {
            http_reply_dt_error(rs, &err, 409);
            goto done;
        }
        jb_object_end(&jb);
    }
    if (replaced) {
        http_reply_error(rs, 409, "the history of '%.100s' was replaced (continue-as-new or "
                         "rewind) each of %d times it was read; try again", id, HISTORY_TRIES);
        goto done;
    }
    bool finished = dt_runtime_status_is_terminal(s->status);
    unsigned code = finished ? 200 : 202;
    if (ise && s->status == DT_STATUS_FAILED)
        code = 500;
    http_reply_json(rs, code, &jb);
    if (code == 202 && rs->status == 202) {
        char *u = status_uri(rq, id, a);
        rs->location = u ? strdup(u) : NULL;    /* a header to poll; missing it is harmless */
    }
done:
    free(jb_finish(&jb, &(size_t){0}));
    jb_names_free(&h.names);
    dt_arena_free(a);
}

/* GET instances?runtimeStatus&createdTimeFrom&createdTimeTo&instanceIdPrefix&name&top&showInput,
 * paged by the x-ms-continuation-token header. */
static void list_instances(http_request *rq, http_response *rs)
{
    dt_runtime_status statuses[16];
    dt_query q = {.with_payloads = true, .statuses = statuses};
    bool show_input;
    if (!param_statuses(rq, rs, statuses, 16, &q.n_statuses) ||
        !http_param_bound(rq, rs, "createdTimeFrom", &q.created_from) ||
        !http_param_bound(rq, rs, "createdTimeTo", &q.created_to) ||
        !http_param_bool(rq, rs, "showInput", false, &show_input) ||
        !http_param_top(rq, rs, &q.page_size))
        return;
    const char *prefix = http_query(rq, "instanceIdPrefix");
    if (prefix && prefix[0])
        q.id_prefix = prefix;
    const char *name = http_query(rq, "name");   /* ours: orchestrator name, exact */
    if (name && name[0])
        q.name = name;
    const char *version = http_query(rq, "version");   /* ours: orchestration version, exact */
    if (version && version[0])
        q.version = version;
    const char *sort = http_query(rq, "sort");   /* ours: created (newest first, default) or id */
    if (sort && strcmp(sort, "id") == 0) {
        q.by_id = true;
    } else if (sort && sort[0] && strcmp(sort, "created") != 0) {
        http_reply_error(rs, 400, "sort must be 'created' (newest first) or 'id', not '%.40s'",
                         sort);
        return;
    }
    char cont[HTTP_TOKEN_MAX];
    if (!http_param_continuation(rq, rs, cont, &q.continuation))
        return;
    dt_arena *a = dt_arena_new();
    if (a == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    dt_instance_state *states = NULL;
    size_t n = 0;
    const char *next = NULL;
    dt_error err = {0};
    if (dt_hub_query(rq->hub, &q, a, &states, &n, &next, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        goto done;
    }
    jbuf jb;
    jb_init(&jb);
    jb_array_begin(&jb);
    for (size_t i = 0; i < n; i++)
        jb_state(&jb, &states[i], show_input);
    jb_array_end(&jb);
    http_reply_page(rs, &jb, next);
done:
    dt_arena_free(a);
}

/* GET counts: instances per runtime status, counted by the store in one statement. */
static void count_instances(http_request *rq, http_response *rs)
{
    size_t counts[DT_STATUS_COUNT];
    dt_error err = {0};
    if (dt_hub_count_by_status(rq->hub, counts, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    jbuf jb;
    jb_init(&jb);
    jb_object_begin(&jb);
    for (int s = 0; s < DT_STATUS_COUNT; s++) {
        jb_key(&jb, dt_runtime_status_name((dt_runtime_status)s));
        jb_int(&jb, (long long)counts[s]);
    }
    jb_object_end(&jb);
    http_reply_json(rs, 200, &jb);
}

/* DELETE instances?createdTimeFrom&createdTimeTo&runtimeStatus&instanceIdPrefix: purge the
 * finished instances that match. With no filter at all it is refused: one request (a stray
 * script, a forged one) would otherwise delete every finished instance; `all=true` says so
 * on purpose. */
static void purge_instances(http_request *rq, http_response *rs)
{
    dt_runtime_status statuses[16];
    dt_query q = {.statuses = statuses};
    if (!param_statuses(rq, rs, statuses, 16, &q.n_statuses) ||
        !http_param_bound(rq, rs, "createdTimeFrom", &q.created_from) ||
        !http_param_bound(rq, rs, "createdTimeTo", &q.created_to))
        return;
    const char *prefix = http_query(rq, "instanceIdPrefix");
    if (prefix && prefix[0])
        q.id_prefix = prefix;
    const char *all = http_query(rq, "all");
    if (q.n_statuses == 0 && q.created_from == 0 && q.created_to == 0 && q.id_prefix == NULL &&
        !(all && strcmp(all, "true") == 0)) {
        http_reply_error(rs, 400, "a purge needs a filter (runtimeStatus, createdTimeFrom, "
                         "createdTimeTo or instanceIdPrefix), or all=true to purge every "
                         "finished instance");
        return;
    }
    size_t n = 0;
    dt_error err = {0};
    if (dt_hub_purge_where(rq->hub, &q, &n, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    reply_deleted(rs, n);
}

static void purge_instance(http_request *rq, http_response *rs, const char *id)
{
    dt_error err = {0};
    if (dt_hub_purge(rq->hub, id, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    reply_deleted(rs, 1);
}

static void raise_event(http_request *rq, http_response *rs, const char *id, const char *name)
{
    const char *data;
    if (!http_body_json(rq, rs, &data))
        return;
    dt_error err = {0};
    if (dt_hub_raise_event(rq->hub, id, name, data, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 410);
        return;
    }
    reply_accepted(rs);
}

/* POST instances/{id}/terminate|suspend|resume?reason=TEXT: the reason is recorded as a JSON
 * string (terminate: as the instance's output). */
static void control(http_request *rq, http_response *rs, const char *id, const char *op)
{
    bool recursive = false;
    if (strcmp(op, "terminate") == 0 && !http_param_bool(rq, rs, "recursive", false, &recursive))
        return;
    char *reason;
    if (!reason_json(rq, rs, &reason))
        return;
    dt_error err = {0};
    dt_status st;
    if (strcmp(op, "terminate") == 0)
        st = dt_hub_terminate(rq->hub, id, reason, recursive, &err);
    else if (strcmp(op, "suspend") == 0)
        st = dt_hub_suspend(rq->hub, id, reason, &err);
    else
        st = dt_hub_resume(rq->hub, id, reason, &err);
    free(reason);
    if (st != DT_OK) {
        http_reply_dt_error(rs, &err, 410);
        return;
    }
    reply_accepted(rs);
}

/* POST instances/{id}/rewind?reason=TEXT: a Failed instance runs again from its last good
 * point; the reason is kept as the text given. 410 when it is not Failed, as Durable
 * Functions answers. */
static void rewind_instance(http_request *rq, http_response *rs, const char *id)
{
    dt_error err = {0};
    if (dt_hub_rewind(rq->hub, id, http_query(rq, "reason"), &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 410);
        return;
    }
    reply_accepted(rs);
}

/* POST instances/{id}/restart?newInstanceId=true (also Durable Functions' client name for
 * it, restartWithNewInstanceId): by default under the same id, which must have finished. */
static void restart_instance(http_request *rq, http_response *rs, const char *id)
{
    bool new_id;
    if (!http_param_bool(rq, rs, "newInstanceId", false, &new_id))
        return;
    if (!new_id && http_query(rq, "restartWithNewInstanceId") &&
        !http_param_bool(rq, rs, "restartWithNewInstanceId", false, &new_id))
        return;
    char out[DT_INSTANCE_ID_MAX + 1];
    dt_error err = {0};
    if (dt_hub_restart(rq->hub, id, new_id, out, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    reply_started(rq, rs, out);
}

/* ---- routing -------------------------------------------------------------------------------- */

static bool is(const char *method, const char *want, http_response *rs, const char *what,
               const char *allow)
{
    if (strcmp(method, want) == 0)
        return true;
    http_reply_error(rs, 405, "%s is not allowed on %s (allowed: %s)", method, what, allow);
    rs->allow = allow;
    return false;
}

void http_instances_handle(http_request *rq, http_response *rs)
{
    char **s = rq->seg;
    size_t n = rq->n_seg;
    const char *m = rq->method;
    if (n == 4 && strcmp(s[3], "counts") == 0) {
        if (is(m, "GET", rs, "counts", "GET"))
            count_instances(rq, rs);
        return;
    }
    if ((n == 5 || n == 6) && strcmp(s[3], "orchestrators") == 0) {
        if (is(m, "POST", rs, "orchestrators/{name}", "POST"))
            start_instance(rq, rs, s[4], n == 6 ? s[5] : NULL);
        return;
    }
    if (n >= 4 && strcmp(s[3], "instances") == 0) {
        if (n == 4) {
            if (strcmp(m, "GET") == 0)
                list_instances(rq, rs);
            else if (is(m, "DELETE", rs, "instances", "GET, DELETE"))
                purge_instances(rq, rs);
            return;
        }
        const char *id = s[4];
        if (n == 5) {
            if (strcmp(m, "GET") == 0)
                get_instance(rq, rs, id);
            else if (is(m, "DELETE", rs, "instances/{instanceId}", "GET, DELETE"))
                purge_instance(rq, rs, id);
            return;
        }
        const char *op = s[5];
        if (n == 6 && (strcmp(op, "terminate") == 0 || strcmp(op, "suspend") == 0 ||
                       strcmp(op, "resume") == 0)) {
            if (is(m, "POST", rs, op, "POST"))
                control(rq, rs, id, op);
            return;
        }
        if (n == 6 && strcmp(op, "rewind") == 0) {
            if (is(m, "POST", rs, "rewind", "POST"))
                rewind_instance(rq, rs, id);
            return;
        }
        if (n == 6 && strcmp(op, "restart") == 0) {
            if (is(m, "POST", rs, "restart", "POST"))
                restart_instance(rq, rs, id);
            return;
        }
        if (n == 7 && strcmp(op, "raiseEvent") == 0) {
            if (is(m, "POST", rs, "raiseEvent/{eventName}", "POST"))
                raise_event(rq, rs, id, s[6]);
            return;
        }
    }
    http_reply_error(rs, 404, "no such operation under " HTTP_API_PREFIX "/ (see /openapi.json)");
}
