/* pg_nodes.c — what the nodes sharing a PostgreSQL database keep of one another: each hub
 * says it is alive every few seconds (a row per node: when it started, when it was last heard
 * of), so every node can tell in /metrics and on the dashboard which nodes are alive (a node
 * gone for an hour is forgotten); and when the earliest work queued for later comes due, so
 * an idle node sleeps until then instead of polling. */
#include <stdlib.h>

#include "pg_internal.h"

#define FORGET_US ((int64_t)3600 * 1000000)

dt_status pg_heartbeat(dt_store *base, const char *node, dt_time started, dt_time now,
                       dt_error *err)
{
    pg_store *s = (pg_store *)base;
    if (node == NULL || node[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "heartbeat: no node name");
    pg_params p = PG_PARAMS_INIT;
    pg_text(&p, node);
    pg_int(&p, started);
    pg_int(&p, now);
    pg_int(&p, now - FORGET_US);
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_run(s,
                         "WITH gone AS (DELETE FROM nodes WHERE seen_at < $4 AND node <> $1)"
                         " INSERT INTO nodes (node, started_at, seen_at) VALUES ($1, $2, $3)"
                         " ON CONFLICT (node) DO UPDATE SET started_at = EXCLUDED.started_at,"
                         " seen_at = EXCLUDED.seen_at",
                         &p, NULL, err, "heartbeat");
    pthread_mutex_unlock(&s->mu);
    return r;
}

dt_status pg_nodes(dt_store *base, dt_time since, dt_arena *arena, dt_node_info **out,
                   size_t *n_out, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    pg_params p = PG_PARAMS_INIT;
    pg_int(&p, since);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_run(s, "SELECT node, started_at, seen_at FROM nodes WHERE seen_at >= $1"
                            " ORDER BY node",
                         &p, &res, err, "list nodes");
    pthread_mutex_unlock(&s->mu);
    size_t n = r == DT_OK ? (size_t)PQntuples(res) : 0;
    dt_node_info *v = n ? dt_arena_alloc(arena, n * sizeof *v) : NULL;
    if (n && v == NULL)
        r = dt_error_set(err, DT_ERR_NOMEM, "out of memory listing nodes");
    for (size_t i = 0; r == DT_OK && i < n; i++) {
        v[i].node = pg_col_text(arena, res, (int)i, 0, &r);
        v[i].started_at = pg_col_int(res, (int)i, 1);
        v[i].seen_at = pg_col_int(res, (int)i, 2);
        if (r != DT_OK)
            dt_error_set(err, r, "out of memory listing nodes");
    }
    PQclear(res);
    if (r == DT_OK) {
        *out = v;
        *n_out = n;
    }
    return r;
}

/* The earliest of each queue's visibility index past NOW, and of the work given back for
 * later (a retry: a lease held by nobody until its time). */
dt_status pg_next_due(dt_store *base, dt_time now, dt_time *due, dt_error *err)
{
    pg_store *s = (pg_store *)base;
    pg_params p = PG_PARAMS_INIT;
    pg_int(&p, now);
    PGresult *res = NULL;
    pthread_mutex_lock(&s->mu);
    dt_status r = pg_run(s,
                         "SELECT LEAST((SELECT MIN(visible_at) FROM inbox WHERE visible_at > $1),"
                         " (SELECT MIN(visible_at) FROM activities WHERE visible_at > $1),"
                         " (SELECT MIN(visible_at) FROM entity_inbox WHERE visible_at > $1),"
                         " (SELECT MIN(lock_expires) FROM instances"
                         "  WHERE lock_owner = '' AND lock_expires > $1),"
                         " (SELECT MIN(lock_expires) FROM activities"
                         "  WHERE lock_owner = '' AND lock_expires > $1),"
                         " (SELECT MIN(lock_expires) FROM entities"
                         "  WHERE lock_owner = '' AND lock_expires > $1))",
                         &p, &res, err, "find the next due work");
    pthread_mutex_unlock(&s->mu);
    *due = r == DT_OK ? pg_col_int(res, 0, 0) : 0;   /* NULL: nothing queued for later */
    PQclear(res);
    return r;
}
