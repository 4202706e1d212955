/* hubfix.c — see hubfix.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubfix.h"

/* pg_url: the test server's URL into BUF when the tests run on PostgreSQL. */
static bool pg_url(char *buf, size_t size)
{
    const char *backend = getenv("DT_TEST_BACKEND"), *file = getenv("DT_TEST_PG_URL_FILE");
    if (backend == NULL || strcmp(backend, "postgres") != 0)
        return false;
    FILE *fp = file ? fopen(file, "r") : NULL;
    if (fp == NULL)
        fail_msg("DT_TEST_BACKEND=postgres without a DT_TEST_PG_URL_FILE to read");
    bool ok = fgets(buf, (int)size, fp) != NULL;
    fclose(fp);
    buf[strcspn(buf, "\r\n")] = '\0';
    return ok && buf[0];
}

void hubfix_open(hubfix *f, const char *name, const dt_hub_options *opts)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", test_tmpdir(name));
    snprintf(f->db, sizeof f->db, "%s/dt.db", f->dir);
    dt_hub_options o = {0};
    if (opts)
        o = *opts;
    if (pg_url(f->db, sizeof f->db)) {   /* a schema named after the fixture's fresh folder */
        uint64_t h = 1469598103934665603ULL;
        for (const char *c = f->dir; *c; c++)
            h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        snprintf(f->schema, sizeof f->schema, "e_%016llx", (unsigned long long)h);
        o.db_schema = f->schema;
    }
    o.db_path = f->db;
    dt_error err = {0};
    assert_ok(dt_hub_open(&o, &f->hub, &err), &err);
    assert_ok(dt_worker_new(&f->worker), NULL);
    assert_ok(dt_client_new(f->hub, &f->client), NULL);
    f->arena = dt_arena_new();
    assert_non_null(f->arena);
}

void hubfix_start(hubfix *f)
{
    dt_error err = {0};
    dt_worker_options wo = {.orchestration_threads = 2, .activity_threads = 4};
    assert_ok(dt_worker_start(f->worker, f->hub, &wo, &err), &err);
}

dt_instance_state *hubfix_run(hubfix *f, const char *name, const char *input,
                              char id[DT_INSTANCE_ID_MAX + 1])
{
    dt_error err = {0};
    char local[DT_INSTANCE_ID_MAX + 1];
    char *out = id ? id : local;
    dt_start_options so = {.input = input};
    assert_ok(dt_client_start(f->client, name, &so, out, &err), &err);
    dt_instance_state *s = NULL;
    assert_ok(dt_client_wait_completion(f->client, out, 60000, f->arena, &s, &err), &err);
    return s;
}

dt_event *hubfix_history(hubfix *f, const char *id, size_t *n)
{
    dt_error err = {0};
    dt_event *ev = NULL;
    assert_ok(dt_client_get_history(f->client, id, f->arena, &ev, n, &err), &err);
    return ev;
}

size_t hubfix_count(const dt_event *ev, size_t n, dt_event_type type)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ev[i].type == type;
    return c;
}

void hubfix_close(hubfix *f)
{
    dt_worker_free(f->worker);
    dt_client_free(f->client);
    dt_hub_close(f->hub);
    dt_arena_free(f->arena);
}

dt_status hubfix_echo(dt_actx *ctx, const char *input, const char **output)
{
    (void)ctx;
    *output = input;
    return DT_OK;
}

dt_status hubfix_inc(dt_actx *ctx, const char *input, const char **output)
{
    *output = dt_activity_printf(ctx, "%ld", strtol(input, NULL, 10) + 1);
    return DT_OK;
}

dt_status hubfix_chain(dt_octx *ctx, const char *input, const char **output)
{
    int n = atoi(input);
    const char *v = "0";
    for (int i = 0; i < n; i++)
        v = dt_await(ctx, dt_call_activity(ctx, "inc", v, NULL));
    *output = v;
    return DT_OK;
}

dt_status hubfix_sleepy(dt_actx *ctx, const char *input, const char **output)
{
    test_sleep_ms(atoi(input));
    *output = dt_activity_printf(ctx, "%s", input);
    return DT_OK;
}
