/* hubs.c — task hubs: a set of named hubs, each a dt_hub on a database of its own, so
 * instances, queues, histories and metrics of one never mix with another's. A hub is opened
 * on first use (or only if it is one of the names the set allows) and stays open while the
 * server runs; the set holds at most max_hubs of them, each with its threads. Callers hold a
 * reference while they use a hub; deleting one takes it out of the set at once and closes it
 * and removes its files when the last reference goes (a work item stream notices within a
 * poll; the close runs on a thread of its own, as the last to let go may not block); a use of the name meanwhile waits for that, then gets a new, empty hub. A hub's
 * database is opened without the set's lock (its entry marked opening), so a slow open holds
 * up only the users of that name. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub_internal.h"

struct dt_hub_ref {
    dt_hub_set *set;
    char name[DT_TASK_HUB_NAME_MAX + 1];
    char *path;                 /* its database */
    char schema[64];            /* PostgreSQL: its schema ("" on SQLite) */
    dt_hub *hub;
    int refs;                   /* the set's mu */
    bool deleted;               /* the set's mu */
    bool opening;               /* the set's mu: its database is being opened, unlocked */
    struct dt_hub_ref *next;
};

struct dt_hub_set {
    dt_hub_set_options opts;
    char db_schema[64];                 /* PostgreSQL: opts.hub.db_schema's copy */
    char *db_path;
    char **allowed;
    size_t n_allowed, max_hubs;
    pthread_mutex_t mu;         /* the lists and every entry's refs and deleted */
    pthread_cond_t changed;     /* an entry finished opening, or left DYING */
    dt_hub_ref *hubs;
    size_t n_hubs;
    dt_hub_ref *dying;          /* deleted, still referenced or being closed */
    int closing;                /* closes running on threads of their own (close_later) */
};

/* How long a use of a name waits for its hub to finish opening or closing. */
#define BUSY_WAIT_MS 10000

/* hub_path: NAME's database: the set's own path for the default hub, else
 * <db_path>.hubs/<name>.db beside it (malloc'd; NULL when out of memory). */
static char *hub_path(const dt_hub_set *s, const char *name)
{
    if (strcmp(name, DT_TASK_HUB_DEFAULT) == 0 || dt_store_is_postgres(s->db_path))
        return strdup(s->db_path);
    size_t n = strlen(s->db_path) + strlen(name) + 16;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s.hubs/%s.db", s->db_path, name);
    return p;
}

static bool allowed(const dt_hub_set *s, const char *name)
{
    if (s->allowed == NULL)
        return true;
    for (size_t i = 0; i < s->n_allowed; i++)
        if (strcmp(s->allowed[i], name) == 0)
            return true;
    return false;
}

static dt_hub_ref *find(dt_hub_ref *list, const char *name)
{
    for (dt_hub_ref *r = list; r; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    return NULL;
}

/* unlink_from: take R out of *LIST (mu held). */
static void unlink_from(dt_hub_ref **list, dt_hub_ref *r)
{
    for (dt_hub_ref **p = list; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

/* destroy: close R's hub and free it; with REMOVE, its database files go too. */
static void destroy(dt_hub_ref *r, bool remove);

#define SCHEMA_KEPT 40   /* of a name too long for a schema, the bytes kept before its hash */

/* hashed_shape: is FULL (a "BASE_NAME") spelled as a shortened one is, its first
 * SCHEMA_KEPT bytes, '_' and 16 hex digits? A hub whose name makes one is shortened too, so
 * that it cannot take the schema of another hub, whose long name was shortened to it. */
static bool hashed_shape(const char *full)
{
    if (strlen(full) != SCHEMA_KEPT + 17 || full[SCHEMA_KEPT] != '_')
        return false;
    for (const char *c = full + SCHEMA_KEPT + 1; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* pg_schema: the PostgreSQL schema of hub NAME of set S: its base schema (--db-schema,
 * default "dtask") for the default hub, "BASE_NAME" for the others, or, when that is longer
 * than an identifier may be (or spelled as a shortened one is), its first 40 bytes and a
 * hash of the whole. */
static void pg_schema(const dt_hub_set *s, const char *name, char *out, size_t size)
{
    const char *base = s->opts.hub.db_schema ? s->opts.hub.db_schema : "dtask";
    if (strcmp(name, DT_TASK_HUB_DEFAULT) == 0) {
        snprintf(out, size, "%s", base);
        return;
    }
    char full[160];
    snprintf(full, sizeof full, "%s_%s", base, name);
    if (strlen(full) <= 63 && !hashed_shape(full)) {
        snprintf(out, size, "%s", full);
        return;
    }
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (const char *c = full; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    snprintf(out, size, "%.*s_%016llx", SCHEMA_KEPT, full, (unsigned long long)h);
}

/* remove_files: a closed hub's database PATH and its -wal and -shm files; on PostgreSQL, its
 * SCHEMA. */
static void remove_files(const char *path, const char *schema)
{
    if (dt_store_is_postgres(path)) {
        if (schema[0] && dt_store_drop_postgres(path, schema, NULL) != DT_OK)
            dt_log(DT_LOG_WARN, NULL, "task hub schema %s could not be dropped", schema);
        return;
    }
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; path && i < 3; i++) {
        size_t n = strlen(path) + 8;
        char *p = malloc(n);
        if (p) {
            snprintf(p, n, "%s%s", path, suffixes[i]);
            unlink(p);
            free(p);
        }
    }
}

/* finish_delete: R, deleted and no longer referenced, is closed and its files removed; then
 * it leaves the dying list, and whoever waits to use its name goes on. */
static void finish_delete(dt_hub_set *s, dt_hub_ref *r)
{
    dt_hub_close(r->hub);
    r->hub = NULL;
    remove_files(r->path, r->schema);
    pthread_mutex_lock(&s->mu);
    unlink_from(&s->dying, r);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    destroy(r, false);
}

static void destroy(dt_hub_ref *r, bool remove)
{
    dt_hub_close(r->hub);
    if (remove)
        remove_files(r->path, r->schema);
    free(r->path);
    free(r);
}

/* open_hub: a new entry for NAME with its hub opened. Called with mu held; the entry is in
 * the list, marked opening, while its database is opened without the lock (that may take a
 * while: recovery, a migration), so other hubs' calls go on and a second first use of the
 * name waits for this one. */
static dt_status open_hub(dt_hub_set *s, const char *name, dt_hub_ref **out, dt_error *err)
{
    if (s->n_hubs >= s->max_hubs)
        return dt_error_set(err, DT_ERR_STATE, "task hub '%s' cannot be opened: this server "
                            "holds at most %zu task hubs", name, s->max_hubs);
    dt_hub_ref *r = calloc(1, sizeof *r);
    if (r == NULL || (r->path = hub_path(s, name)) == NULL) {
        free(r);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening task hub '%s'", name);
    }
    snprintf(r->name, sizeof r->name, "%s", name);
    if (dt_store_is_postgres(s->db_path))
        pg_schema(s, name, r->schema, sizeof r->schema);
    r->set = s;
    r->opening = true;
    r->next = s->hubs;
    s->hubs = r;
    s->n_hubs++;
    dt_hub_options ho = s->opts.hub;
    ho.db_path = r->path;
    ho.db_schema = r->schema[0] ? r->schema : NULL;
    ho.store = NULL;
    pthread_mutex_unlock(&s->mu);
    dt_status st = dt_hub_open(&ho, &r->hub, err);
    pthread_mutex_lock(&s->mu);
    r->opening = false;
    pthread_cond_broadcast(&s->changed);
    if (st != DT_OK) {
        unlink_from(&s->hubs, r);
        s->n_hubs--;
        free(r->path);
        free(r);
        return st;
    }
    *out = r;
    return DT_OK;
}

/* settle: wait (mu held) until NAME is neither opening nor being deleted; its open entry,
 * or NULL. DT_ERR_STATE after BUSY_WAIT_MS. */
static dt_status settle(dt_hub_set *s, const char *name, dt_hub_ref **out, dt_error *err)
{
    struct timespec until = dt_deadline_ms(BUSY_WAIT_MS);
    for (;;) {
        dt_hub_ref *r = find(s->hubs, name);
        bool busy = r ? r->opening : find(s->dying, name) != NULL;
        if (!busy) {
            *out = r;
            return DT_OK;
        }
        if (pthread_cond_timedwait(&s->changed, &s->mu, &until) != 0)
            return dt_error_set(err, DT_ERR_STATE, "task hub '%s' is still being %s", name,
                                r ? "opened" : "deleted");
    }
}

static dt_status copy_allowed(dt_hub_set *s, const dt_hub_set_options *o, dt_error *err)
{
    if (o->allowed == NULL)
        return DT_OK;
    s->allowed = calloc(o->n_allowed ? o->n_allowed : 1, sizeof *s->allowed);
    if (s->allowed == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < o->n_allowed; i++) {
        dt_status st = dt_task_hub_validate(o->allowed[i], err);
        if (st != DT_OK)
            return st;
        if (allowed(s, o->allowed[i]))
            continue;   /* named twice: one hub */
        if ((s->allowed[s->n_allowed] = strdup(o->allowed[i])) == NULL)
            return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        s->n_allowed++;
    }
    return DT_OK;
}

dt_status dt_hub_set_open(const dt_hub_set_options *o, dt_hub_set **out, dt_error *err)
{
    if (o && o->hub.db_schema && strlen(o->hub.db_schema) > 63)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "PostgreSQL schema name '%.80s...' is "
                            "longer than the 63 bytes of an identifier",
                            o->hub.db_schema);
    dt_hub_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    if (o)
        s->opts = *o;
    s->db_path = strdup(s->opts.hub.db_path ? s->opts.hub.db_path : DT_DEFAULT_DB_PATH);
    if (s->opts.hub.db_schema) {   /* a copy of ours: the caller's may go */
        snprintf(s->db_schema, sizeof s->db_schema, "%s", s->opts.hub.db_schema);
        s->opts.hub.db_schema = s->db_schema;
    }
    s->max_hubs = s->opts.max_hubs ? s->opts.max_hubs : DT_TASK_HUBS_MAX;
    dt_status st = s->db_path ? copy_allowed(s, &s->opts, err)
                              : dt_error_set(err, DT_ERR_NOMEM, "out of memory");
    if (st == DT_OK && pthread_mutex_init(&s->mu, NULL) != 0)
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot create the task hubs' mutex");
    else if (st == DT_OK && pthread_cond_init(&s->changed, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        st = dt_error_set(err, DT_ERR_NOMEM, "cannot create the task hubs' condition");
    }
    if (st != DT_OK) {
        for (size_t i = 0; i < s->n_allowed; i++)
            free(s->allowed[i]);
        free(s->allowed);
        free(s->db_path);
        free(s);
        return st;
    }
    s->opts.allowed = NULL;   /* the caller's; the set keeps its own copy */
    /* the default hub (or, with a list, each allowed one) at once: a database that cannot be
     * opened is an error at start, not at the first call */
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; st == DT_OK && i < (s->allowed ? s->n_allowed : 1); i++) {
        dt_hub_ref *r = NULL;
        st = open_hub(s, s->allowed ? s->allowed[i] : DT_TASK_HUB_DEFAULT, &r, err);
    }
    pthread_mutex_unlock(&s->mu);
    if (st != DT_OK) {
        dt_hub_set_close(s);
        return st;
    }
    *out = s;
    return DT_OK;
}

void dt_hub_set_peek(dt_hub_set *s, const char *name, dt_hub_ref **out)
{
    *out = NULL;
    if (name == NULL || name[0] == '\0')
        name = DT_TASK_HUB_DEFAULT;
    if (dt_task_hub_validate(name, NULL) != DT_OK || !allowed(s, name))
        return;
    pthread_mutex_lock(&s->mu);
    dt_hub_ref *r = find(s->hubs, name);
    if (r && !r->opening && !r->deleted) {
        r->refs++;
        *out = r;
    }
    pthread_mutex_unlock(&s->mu);
}

/* on_disk: has hub NAME a database of its own from earlier (SQLite: its file)? On
 * PostgreSQL a hub's schema is not looked for: only hubs open or allowed count. */
static bool on_disk(const dt_hub_set *s, const char *name)
{
    if (dt_store_is_postgres(s->db_path))
        return false;
    char *path = hub_path(s, name);
    bool there = path && access(path, F_OK) == 0;
    free(path);
    return there;
}

/* get: dt_hub_set_get, or with OPEN_NEW false dt_hub_set_find. */
static dt_status get(dt_hub_set *s, const char *name, bool open_new, dt_hub_ref **out,
                     dt_error *err)
{
    if (name == NULL || name[0] == '\0')
        name = DT_TASK_HUB_DEFAULT;
    dt_status st = dt_task_hub_validate(name, err);
    if (st != DT_OK)
        return st;
    if (!allowed(s, name))
        return dt_error_set(err, DT_ERR_NOT_FOUND, "task hub '%s' does not exist on this "
                            "server (it serves only the hubs dtask serve --task-hubs names)",
                            name);
    pthread_mutex_lock(&s->mu);
    dt_hub_ref *r = NULL;
    st = settle(s, name, &r, err);
    /* (the file is looked for only when the hub is not open: not on every read) */
    if (r == NULL && st == DT_OK && !open_new && !s->allowed &&
        strcmp(name, DT_TASK_HUB_DEFAULT) != 0 && !on_disk(s, name))
        st = dt_error_set(err, DT_ERR_NOT_FOUND, "task hub '%s' does not exist (a read does "
                          "not make one: starting an instance in it, or CreateTaskHub, does)",
                          name);
    if (r == NULL && st == DT_OK)
        st = open_hub(s, name, &r, err);
    if (st == DT_OK)
        r->refs++;
    pthread_mutex_unlock(&s->mu);
    if (st == DT_OK)
        *out = r;
    return st;
}

dt_status dt_hub_set_get(dt_hub_set *s, const char *name, dt_hub_ref **out, dt_error *err)
{
    return get(s, name, true, out, err);
}

dt_status dt_hub_set_find(dt_hub_set *s, const char *name, dt_hub_ref **out, dt_error *err)
{
    return get(s, name, false, out, err);
}

dt_hub *dt_hub_ref_hub(const dt_hub_ref *r) { return r->hub; }

const char *dt_hub_ref_name(const dt_hub_ref *r) { return r->name; }

bool dt_hub_ref_deleted(dt_hub_ref *r)
{
    pthread_mutex_lock(&r->set->mu);
    bool d = r->deleted;
    pthread_mutex_unlock(&r->set->mu);
    return d;
}

static void *closer_main(void *arg)
{
    dt_hub_ref *r = arg;
    dt_hub_set *s = r->set;
    pthread_setname_np(pthread_self(), "dt-hub-close");
    finish_delete(s, r);
    pthread_mutex_lock(&s->mu);
    s->closing--;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* close_later: R, deleted, lost its last reference (counted in its set's closing): finish the delete
 * on a thread of its own, since whoever let go may be one that must not block (the gRPC
 * poller frees calls, and closing a hub stops and joins its threads); here, if no thread can
 * be made. */
static void close_later(dt_hub_ref *r)
{
    pthread_attr_t attr;
    pthread_t t;
    bool made = pthread_attr_init(&attr) == 0;
    if (made) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        made = pthread_create(&t, &attr, closer_main, r) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!made)
        closer_main(r);
}

void dt_hub_ref_put(dt_hub_ref *r)
{
    if (r == NULL)
        return;
    dt_hub_set *s = r->set;
    pthread_mutex_lock(&s->mu);
    bool last = --r->refs == 0 && r->deleted;
    s->closing += last;   /* counted at once: dt_hub_set_close waits for it */
    pthread_mutex_unlock(&s->mu);
    if (last)
        close_later(r);
}

void dt_hub_set_stop_waiting(dt_hub_set *s)
{
    /* the open hubs (deleted ones stopped when they were deleted; a hub that closes sees to
     * its own) */
    pthread_mutex_lock(&s->mu);
    for (dt_hub_ref *r = s->hubs; r; r = r->next)
        if (r->hub && !r->opening)
            dt_hub_stop_waiting(r->hub);
    pthread_mutex_unlock(&s->mu);
}

dt_status dt_hub_set_delete(dt_hub_set *s, const char *name, dt_error *err)
{
    if (name == NULL || name[0] == '\0')
        name = DT_TASK_HUB_DEFAULT;
    dt_status st = dt_task_hub_validate(name, err);
    if (st != DT_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    dt_hub_ref *r = NULL;
    bool now = false;
    st = settle(s, name, &r, err);
    if (st != DT_OK) {
        /* said why */
    } else if (r == NULL && allowed(s, name)) {
        /* not open in this run: a hub an earlier run left on disk goes, files and all (on
         * PostgreSQL its schema, if there is one) */
        char *path = hub_path(s, name), schema[64] = "";
        bool there;
        if (dt_store_is_postgres(s->db_path)) {
            pg_schema(s, name, schema, sizeof schema);
            dt_status dr = dt_store_drop_postgres(s->db_path, schema, err);
            there = dr != DT_ERR_NOT_FOUND;
            if (dr != DT_OK && there)
                st = dr;   /* the server could not drop it: said why */
        } else if ((there = path && access(path, F_OK) == 0)) {
            remove_files(path, schema);
        }
        free(path);
        if (!there)
            st = dt_error_set(err, DT_ERR_NOT_FOUND, "task hub '%s' does not exist", name);
    } else if (r == NULL) {
        st = dt_error_set(err, DT_ERR_NOT_FOUND, "task hub '%s' does not exist", name);
    } else {
        unlink_from(&s->hubs, r);   /* dying: the name means a new, empty hub once it is gone */
        s->n_hubs--;
        r->next = s->dying;
        s->dying = r;
        r->deleted = true;
        now = r->refs == 0;
        /* results waiting for room in it would hold its references for ever */
        if (!now && r->hub)
            dt_hub_stop_waiting(r->hub);
    }
    pthread_mutex_unlock(&s->mu);
    if (now)
        finish_delete(s, r);
    return st;
}

/* add_name: NAME into the list *OUT (N of CAP) unless there, in arena A. */
static bool add_name(dt_arena *a, const char ***out, size_t *n, size_t *cap, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*out)[i], name) == 0)
            return true;
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        const char **bigger = dt_arena_alloc(a, c * sizeof *bigger);
        if (bigger == NULL)
            return false;
        if (*n)
            memcpy(bigger, *out, *n * sizeof *bigger);
        *out = bigger;
        *cap = c;
    }
    return ((*out)[(*n)++] = dt_arena_strdup(a, name)) != NULL;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

dt_status dt_hub_set_names(dt_hub_set *s, dt_arena *a, const char ***out, size_t *n,
                           dt_error *err)
{
    size_t cap = 0;
    bool ok = true;
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&s->mu);
    for (dt_hub_ref *r = s->hubs; r && ok; r = r->next)
        ok = add_name(a, out, n, &cap, r->name);
    for (size_t i = 0; i < s->n_allowed && ok; i++)
        ok = add_name(a, out, n, &cap, s->allowed[i]);
    pthread_mutex_unlock(&s->mu);
    /* and the hubs of earlier runs, still on disk */
    size_t dn = strlen(s->db_path) + 8;
    char *dir = malloc(dn);
    DIR *d = dir ? (snprintf(dir, dn, "%s.hubs", s->db_path), opendir(dir)) : NULL;
    for (struct dirent *e; ok && d && (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        char name[DT_TASK_HUB_NAME_MAX + 4];
        if (len < 4 || len - 3 > DT_TASK_HUB_NAME_MAX || strcmp(e->d_name + len - 3, ".db") != 0)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(len - 3), e->d_name);
        if (dt_task_hub_validate(name, NULL) == DT_OK && allowed(s, name))
            ok = add_name(a, out, n, &cap, name);
    }
    if (d)
        closedir(d);
    free(dir);
    if (!ok)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory listing task hubs");
    if (*n > 1)
        qsort((void *)*out, *n, sizeof **out, by_name);
    return DT_OK;
}

void dt_hub_set_close(dt_hub_set *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);   /* the deleted hubs still closing, on their threads */
    while (s->closing > 0)
        pthread_cond_wait(&s->changed, &s->mu);
    pthread_mutex_unlock(&s->mu);
    while (s->hubs) {
        dt_hub_ref *r = s->hubs;
        s->hubs = r->next;
        destroy(r, false);
    }
    for (size_t i = 0; i < s->n_allowed; i++)
        free(s->allowed[i]);
    free(s->allowed);
    free(s->db_path);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
