/* entities.c — the durable entity API under /runtime/webhooks/durabletask/entities, shaped
 * like Durable Functions' (same paths, query parameters and status codes): read an entity's
 * state, signal it, list entities a page at a time; and ours: an entity with its metadata
 * (lock holder, backlog), and cleaning entity storage. An entity is addressed by name and key
 * in the path; the id the hub knows is "@name@key", checked here so a bad one is a 400 that
 * says what was wrong. */
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

/* ---- ids ------------------------------------------------------------------------------------ */

/* entity_id: "@NAME@KEY" into OUT; false after a 400 naming the problem (a name with '@',
 * an id over the length limit or with a character ids may not hold). */
static bool entity_id(http_response *rs, const char *name, const char *key,
                      char out[DT_INSTANCE_ID_MAX + 1])
{
    if (strchr(name, '@')) {
        http_reply_error(rs, 400, "entity name '%.100s' contains '@', which entity names may "
                         "not", name);
        return false;
    }
    char id[3 * DT_INSTANCE_ID_MAX];
    int n = snprintf(id, sizeof id, "@%s@%s", name, key);
    dt_error err = {0};
    if (n < 0 || (size_t)n >= sizeof id) {
        http_reply_error(rs, 400, "entity id '@%.40s@%.40s...' is over %d characters long",
                         name, key, DT_INSTANCE_ID_MAX);
        return false;
    }
    if (dt_entity_id_validate(id, &err) != DT_OK) {
        http_reply_error(rs, 400, "%s", err.message);
        return false;
    }
    memcpy(out, id, (size_t)n + 1);
    return true;
}

/* jb_entity: entity E as {entityId: {name, key}, lastOperationTime, lockedBy,
 * backlogQueueSize[, state]}: Durable Functions' list item and our metadata beside it. */
static void jb_entity(jbuf *jb, const dt_entity_state *e, bool with_state)
{
    char name[DT_INSTANCE_ID_MAX + 1];
    size_t n = dt_entity_id_name_len(e->entity_id);
    snprintf(name, sizeof name, "%.*s", (int)n, e->entity_id + 1);
    jb_object_begin(jb);
    jb_key(jb, "entityId");
    jb_object_begin(jb);
    jb_key(jb, "name");
    jb_string(jb, name);
    jb_key(jb, "key");
    jb_string(jb, e->entity_id + 1 + n + (e->entity_id[1 + n] == '@'));
    jb_object_end(jb);
    jb_key(jb, "lastOperationTime");
    jb_time(jb, e->last_modified);
    jb_key(jb, "lockedBy");
    jb_string(jb, e->locked_by);
    jb_key(jb, "backlogQueueSize");
    jb_int(jb, e->backlog);
    if (with_state) {
        jb_key(jb, "state");
        jb_payload(jb, e->has_state ? e->state : NULL);
    }
    jb_object_end(jb);
}

/* ---- handlers ------------------------------------------------------------------------------- */

/* GET entities/{name}/{key}: the state as the body (Durable Functions' answer), or with
 * showMetadata=true (ours) the entity as a list item has it, with its state. 404 while the
 * entity has no state. */
static void get_entity(http_request *rq, http_response *rs, const char *id)
{
    bool meta;
    if (!http_param_bool(rq, rs, "showMetadata", false, &meta))
        return;
    dt_arena *a = dt_arena_new();
    if (a == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    dt_entity_state *e = NULL;
    dt_error err = {0};
    if (dt_hub_get_entity(rq->hub, id, true, a, &e, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
    } else {
        jbuf jb;
        jb_init(&jb);
        if (meta)
            jb_entity(&jb, e, true);
        else
            jb_payload(&jb, e->state);
        http_reply_json(rs, 200, &jb);
    }
    dt_arena_free(a);
}

/* POST entities/{name}/{key}?op=OPERATION[&scheduledTime=T], body: the operation's input (any
 * JSON value, or none). 202: the signal is queued; the entity need not exist. */
static void signal_entity(http_request *rq, http_response *rs, const char *id)
{
    const char *op = http_query(rq, "op");
    if (op == NULL || op[0] == '\0') {
        http_reply_error(rs, 400, "query parameter op (the operation to signal) is missing");
        return;
    }
    const char *input;
    dt_time at;
    if (!http_param_time(rq, rs, "scheduledTime", &at) || !http_body_json(rq, rs, &input))
        return;
    dt_error err = {0};
    if (dt_hub_signal_entity(rq->hub, id, op, input, at, NULL, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    rs->status = 202;
}

/* GET entities[/{name}]?fetchState&lastOperationTimeFrom&lastOperationTimeTo&top, paged by the
 * x-ms-continuation-token header; ours: includeTransient (entities without state that hold a
 * lock or have messages waiting), keyPrefix (under a name) or entityIdPrefix (without one: a
 * prefix of "@name@key", its leading '@' optional). */
static void list_entities(http_request *rq, http_response *rs, const char *name)
{
    dt_entity_query q = {0};
    if (!http_param_bool(rq, rs, "fetchState", false, &q.with_state) ||
        !http_param_bool(rq, rs, "includeTransient", false, &q.include_transient) ||
        !http_param_bound(rq, rs, "lastOperationTimeFrom", &q.modified_from) ||
        !http_param_bound(rq, rs, "lastOperationTimeTo", &q.modified_to) ||
        !http_param_top(rq, rs, &q.page_size))
        return;
    char cont[HTTP_TOKEN_MAX];
    if (!http_param_continuation(rq, rs, cont, &q.continuation))
        return;
    const char *key_prefix = http_query(rq, "keyPrefix");
    const char *id_prefix = http_query(rq, "entityIdPrefix");
    if (name && strchr(name, '@')) {
        http_reply_error(rs, 400, "entity name '%.100s' contains '@', which entity names may "
                         "not", name);
        return;
    }
    if (name == NULL && key_prefix) {
        http_reply_error(rs, 400, "keyPrefix needs an entity name in the path "
                         "(entities/{entityName}?keyPrefix=...); use entityIdPrefix here");
        return;
    }
    dt_arena *a = dt_arena_new();
    if (a == NULL) {
        http_reply_error(rs, 500, "out of memory");
        return;
    }
    if (name)
        q.id_prefix = dt_arena_printf(a, "@%s@%s", name, key_prefix ? key_prefix : "");
    else if (id_prefix && id_prefix[0])
        q.id_prefix = dt_arena_printf(a, "%s%s", id_prefix[0] == '@' ? "" : "@", id_prefix);
    dt_entity_state *rows = NULL;
    size_t n = 0;
    const char *next = NULL;
    dt_error err = {0};
    if ((name || (id_prefix && id_prefix[0])) && q.id_prefix == NULL) {
        http_reply_error(rs, 500, "out of memory");
    } else if (dt_hub_query_entities(rq->hub, &q, a, &rows, &n, &next, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
    } else {
        jbuf jb;
        jb_init(&jb);
        jb_array_begin(&jb);
        for (size_t i = 0; i < n; i++)
            jb_entity(&jb, &rows[i], q.with_state);
        jb_array_end(&jb);
        http_reply_page(rs, &jb, next);
    }
    dt_arena_free(a);
}

/* DELETE entities?removeEmptyEntities&releaseOrphanedLocks (both true by default): clean
 * entity storage (ours; the protocol's CleanEntityStorage). */
static void clean_entities(http_request *rq, http_response *rs)
{
    bool empty, locks;
    if (!http_param_bool(rq, rs, "removeEmptyEntities", true, &empty) ||
        !http_param_bool(rq, rs, "releaseOrphanedLocks", true, &locks))
        return;
    size_t removed = 0, released = 0;
    dt_error err = {0};
    if (dt_hub_clean_entities(rq->hub, empty, locks, &removed, &released, &err) != DT_OK) {
        http_reply_dt_error(rs, &err, 409);
        return;
    }
    jbuf jb;
    jb_init(&jb);
    jb_object_begin(&jb);
    jb_key(&jb, "emptyEntitiesRemoved");
    jb_int(&jb, (long long)removed);
    jb_key(&jb, "orphanedLocksReleased");
    jb_int(&jb, (long long)released);
    jb_object_end(&jb);
    http_reply_json(rs, 200, &jb);
}

/* ---- routing -------------------------------------------------------------------------------- */

static void not_allowed(http_response *rs, const char *method, const char *what,
                        const char *allow)
{
    http_reply_error(rs, 405, "%s is not allowed on %s (allowed: %s)", method, what, allow);
    rs->allow = allow;
}

void http_entities_handle(http_request *rq, http_response *rs)
{
    char **s = rq->seg;
    size_t n = rq->n_seg;
    const char *m = rq->method;
    bool get = strcmp(m, "GET") == 0;
    if (n == 4) {
        if (get)
            list_entities(rq, rs, NULL);
        else if (strcmp(m, "DELETE") == 0)
            clean_entities(rq, rs);
        else
            not_allowed(rs, m, "entities", "GET, DELETE");
        return;
    }
    if (n == 5) {
        if (get)
            list_entities(rq, rs, s[4]);
        else
            not_allowed(rs, m, "entities/{entityName}", "GET");
        return;
    }
    char id[DT_INSTANCE_ID_MAX + 1];
    if (n == 6) {
        if (!get && strcmp(m, "POST") != 0)
            not_allowed(rs, m, "entities/{entityName}/{entityKey}", "GET, POST");
        else if (entity_id(rs, s[4], s[5], id))
            (get ? get_entity : signal_entity)(rq, rs, id);
        return;
    }
    http_reply_error(rs, 404, "no such operation under " HTTP_API_PREFIX "/entities/ (an "
                     "entity is entities/{entityName}/{entityKey}; a key with '/' cannot be one)");
}
