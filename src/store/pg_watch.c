/* pg_watch.c — how nodes sharing a PostgreSQL database wake one another: every transaction
 * that may have made work (a commit, a start, a message, a lease given back) ends with a
 * NOTIFY on the schema's channel, and a watching store keeps a connection of its own that
 * LISTENs on it and calls the hub back on each notification, so new work starts within
 * milliseconds on any node instead of at its next poll. PostgreSQL delivers a notification
 * only when its transaction commits, and folds repeats within one transaction into one. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pg_internal.h"

#define WATCH_POLL_MS 200        /* how often the listener looks at its stop flag */
#define RECONNECT_MS 1000        /* the wait between attempts when the server is gone */

/* The payload: "" when it does not say which instances changed (too many to name: then any
 * may have, and there may be work), else "\n" (there may be work for any node) or "\t" (the
 * committing node leased all the work it made) and the ids, one per line (none: no instance's
 * state changed). */
dt_status pg_notify_tx(pg_store *s, const char *ids, bool work, dt_error *err)
{
    char *payload = NULL;
    if (ids && strlen(ids) < PG_NOTIFY_MAX && (payload = malloc(strlen(ids) + 2)))
        sprintf(payload, "%c%s", work ? '\n' : '\t', ids);
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, s->schema);
    pg_text(&p, payload ? payload : "");
    dt_status r = pg_run(s, "SELECT pg_notify($1, $2)", &p, NULL, err, "notify");
    free(payload);
    return r;
}

/* listen: a connection LISTENing on S's channel, or NULL (the reason logged once per outage
 * by the caller's back-off). */
static PGconn *listen_conn(pg_store *s)
{
    PGconn *c = PQconnectdb(s->url);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    char sql[96];
    snprintf(sql, sizeof sql, "LISTEN \"%s\"", s->schema);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *watch_loop(void *arg)
{
    pg_store *s = arg;
    PGconn *c = NULL;
    bool down = false;
    while (!atomic_load(&s->watch_stop)) {
        if (c == NULL) {
            if ((c = listen_conn(s)) == NULL) {
                if (!down)
                    dt_log(DT_LOG_WARN, NULL, "PostgreSQL at %s is unreachable: listening for "
                           "other nodes' work again every %d ms until it answers",
                           s->where, RECONNECT_MS);
                down = true;
                sleep_ms(RECONNECT_MS);
                continue;
            }
            if (down)
                dt_log(DT_LOG_INFO, NULL, "PostgreSQL at %s answers again", s->where);
            down = false;
            /* what was said while this connection was not listening is lost: look */
            s->watch_fn(s->watch_arg, NULL, true);
        }
        struct pollfd pfd = {PQsocket(c), POLLIN, 0};
        int n = poll(&pfd, 1, WATCH_POLL_MS);
        if (n < 0 && errno != EINTR) {
            dt_log(DT_LOG_ERROR, NULL, "the listener for other nodes' work stops (poll: %s); "
                   "they are found by polling only", strerror(errno));
            break;
        }
        if (n <= 0)
            continue;
        if (!PQconsumeInput(c)) {   /* the connection broke: listen again */
            PQfinish(c);
            c = NULL;
            continue;
        }
        for (PGnotify *note; (note = PQnotifies(c)) != NULL; PQfreemem(note)) {
            const char *p = note->extra;
            bool said = p && (p[0] == '\n' || p[0] == '\t');
            s->watch_fn(s->watch_arg, said ? p + 1 : NULL, !said || p[0] == '\n');
        }
    }
    PQfinish(c);
    return NULL;
}

dt_status pg_watch(dt_store *base, dt_store_changed_fn changed, void *arg,
                   dt_error *err)
{
    pg_store *s = (pg_store *)base;
    if (s->watching)
        return dt_error_set(err, DT_ERR_STATE, "this PostgreSQL store is watched already");
    s->watch_fn = changed;
    s->watch_arg = arg;
    atomic_store(&s->watch_stop, false);
    if (pthread_create(&s->watch_thread, NULL, watch_loop, s) != 0)
        return dt_error_set(err, DT_ERR_NOMEM, "cannot start the PostgreSQL listener thread");
    s->watching = true;
    return DT_OK;
}

void pg_unwatch(pg_store *s)
{
    if (!s->watching)
        return;
    atomic_store(&s->watch_stop, true);
    pthread_join(s->watch_thread, NULL);
    s->watching = false;
}
