/* list_cmds.c — the operator commands over many instances or many events: `dtask list` (pages
 * of QueryInstances), `dtask history` (the StreamInstanceHistory stream) and `dtask purge` (one
 * instance or a filter, repeated while the server says there is more). */
#include <grpc/status.h>
#include <stdlib.h>
#include <string.h>

#include "remote.h"

#define PURGE_TIMEOUT_MS (10 * 60 * 1000)   /* one purge call may delete a great many */
#define HISTORY_NEXT_TIMEOUT_MS 60000       /* the longest wait for the next chunk */

/* The filter options list and purge share. */
typedef struct filter_opts {
    const char *status, *from, *to;
    dt_runtime_status statuses[8];
    size_t n_statuses;
    dt_time from_t, to_t;
} filter_opts;

/* check_filter: parse --status, --from and --to of F. */
static bool check_filter(const char *cmd, filter_opts *f)
{
    if (f->status && !cli_parse_statuses(cmd, "--status", f->status, f->statuses, &f->n_statuses))
        return false;
    if (f->from && !cli_parse_time(cmd, "--from", f->from, &f->from_t))
        return false;
    return f->to == NULL || cli_parse_time(cmd, "--to", f->to, &f->to_t);
}

static int out_of_memory(const char *cmd)
{
    fprintf(stderr, "dtask %s: out of memory\n", cmd);
    return CLI_EXIT_FAILED;
}

/* wire_filter: F's statuses and creation window as their protocol fields, in ARENA. */
static int wire_filter(dt_arena *arena, const char *cmd, const filter_opts *f, size_t *n_status,
                       Dtpb__OrchestrationStatus **status, Dtpb__Timestamp **from,
                       Dtpb__Timestamp **to)
{
    *status = dt_arena_alloc(arena, sizeof **status * 8);
    if (*status == NULL)
        return out_of_memory(cmd);
    for (size_t i = 0; i < f->n_statuses; i++)
        (*status)[i] = (Dtpb__OrchestrationStatus)f->statuses[i];
    *n_status = f->n_statuses;
    pb_builder b = PB_BUILDER(arena);
    if ((*from = pb_b_time(&b, f->from_t), b.status) != DT_OK)
        return cli_usage_error(cmd, "--from: '%s' is out of range", f->from);
    if ((*to = pb_b_time(&b, f->to_t), b.status) != DT_OK)
        return cli_usage_error(cmd, "--to: '%s' is out of range", f->to);
    return CLI_EXIT_OK;
}

/* ---- list ----------------------------------------------------------------------------------- */

static const cli_spec list_spec = {
    "list", "", 0, 0,
    "usage: dtask list [--status S[,S...]] [--name NAME] [--version V]\n"
    "                  [--from TIME] [--to TIME] [--prefix P] [--page-size N] [--sort created|id]\n"
    "                  [--all | --continuation TOKEN] [--json]\n"
    "                  [--server ADDR:PORT]\n\n"
    "Lists instances: id, name, status, created and last updated, one page at a time. When\n"
    "there are more, the command for the next page is printed on stderr.\n\n"
    "  --status S[,S...]    only these statuses (Running, Completed, Failed, Terminated,\n"
    "                       Pending, Suspended, ContinuedAsNew, Canceled)\n"
    "  --name NAME          only orchestrations named NAME. The protocol has no such filter,\n"
    "                       so dtask filters each page itself: a page may show fewer rows\n"
    "  --version V          only instances of orchestration version V (filtered by dtask,\n"
    "                       as --name is)\n"
    "  --from TIME, --to TIME  created in this window: ISO 8601 or +/-SECONDS from now\n"
    "  --prefix P           instance ids starting with P\n"
    "  --page-size N        instances per page (the server's default if not given)\n"
    "  --sort created|id    newest first (the default), or by instance id (dtask serve only)\n"
    "  --all                every page, one after the other\n"
    "  --continuation TOKEN the page after the one that printed TOKEN\n"
    "  --json               print a JSON array of instances instead\n" CLI_SERVER_HELP};

typedef struct list_opts {
    filter_opts f;
    const char *name, *version, *prefix, *page_size, *continuation, *sort;
    bool all, json;
    long page;
} list_opts;

/* shell_word: ARG as one word for a shell, quoted if it needs to be. */
static void shell_word(FILE *out, const char *arg)
{
    if (arg[0] && strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                              "0123456789_-+=.,:/@%") == strlen(arg)) {
        fprintf(out, " %s", arg);
        return;
    }
    fputs(" '", out);
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

/* print_next_hint: "next page: dtask list <the same options> --continuation TOKEN". */
static void print_next_hint(int argc, char **argv, const char *token)
{
    fputs("next page: dtask list", stderr);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--continuation") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--continuation=", 15) != 0)
            shell_word(stderr, argv[i]);
    }
    fputs(" --continuation", stderr);
    shell_word(stderr, token);
    fputc('\n', stderr);
}

static void print_header(const list_opts *o)
{
    if (o->json)
        fputc('[', stdout);
    else
        printf("%-36s  %-24s  %-14s  %-24s  %s\n", "id", "name", "status", "created",
               "updated");
}

static void print_row(const dt_instance_state *s)
{
    char created[32], updated[32];
    dt_time_format(s->created_at, created);
    dt_time_format(s->last_updated_at, updated);
    printf("%-36s  %-24s  %-14s  %-24s  %s\n", s->instance_id, s->name,
           dt_runtime_status_name(s->status), created, updated);
}

/* print_page: the rows of one page that pass the --name and --version filters; *N_PRINTED
 * counts them. */
static int print_page(cli_remote *r, const list_opts *o, const Dtpb__QueryInstancesResponse *m,
                      size_t *n_printed)
{
    for (size_t i = 0; i < m->n_orchestrationstate; i++) {
        dt_instance_state s;
        dt_error err = {0};
        if (svc_state_from_msg(r->arena, m->orchestrationstate[i], &s, &err) != DT_OK) {
            fprintf(stderr, "dtask list: the server sent a state that is not readable: %s\n",
                    err.message);
            return CLI_EXIT_FAILED;
        }
        if (o->name && strcmp(s.name, o->name) != 0)
            continue;
        if (o->version && strcmp(s.version ? s.version : "", o->version) != 0)
            continue;
        if (o->json) {
            fputs(*n_printed ? ",\n " : "", stdout);
            cli_print_state_json(stdout, &s, false);
        } else {
            print_row(&s);
        }
        ++*n_printed;
    }
    return CLI_EXIT_OK;
}

/* query_pages: ask for pages from the --continuation token on, printing each, until the last
 * page (with --all) or after one page. *NEXT: a copy (malloc'd) of the token for more, or
 * NULL. The table's header (or the JSON array's opening) comes with the first page: then
 * *OPENED is set. Q must not live in R's arena, which is emptied between pages. */
static int query_pages(cli_remote *r, const list_opts *o, Dtpb__InstanceQuery *q, char **next,
                       bool *opened)
{
    Dtpb__QueryInstancesRequest req = DTPB__QUERY_INSTANCES_REQUEST__INIT;
    Dtpb__StringValue token = DTPB__STRING_VALUE__INIT;
    req.query = q;
    size_t n_printed = 0;
    char *held = NULL;   /* the token of the page to ask for, kept across arena resets */
    *next = NULL;
    if (o->continuation && (held = strdup(o->continuation)) == NULL)
        return out_of_memory(r->cmd);
    int rc;
    for (;;) {
        token.value = held;
        q->continuationtoken = held ? &token : NULL;
        void *m = NULL;
        rc = cli_rpc(r, "QueryInstances", &req.base,
                     &dtpb__query_instances_response__descriptor, NULL, &m);
        if (rc == CLI_EXIT_OK && !*opened) {
            print_header(o);
            *opened = true;
        }
        if (rc == CLI_EXIT_OK)
            rc = print_page(r, o, m, &n_printed);
        free(held);
        held = NULL;
        if (rc != CLI_EXIT_OK)
            return rc;
        const Dtpb__StringValue *t = ((Dtpb__QueryInstancesResponse *)m)->continuationtoken;
        if (t && t->value && t->value[0] && (held = strdup(t->value)) == NULL)
            return out_of_memory(r->cmd);
        if (held == NULL || !o->all)
            break;
        /* this page is printed: its states can go */
        if (!cli_remote_reset_arena(r)) {
            free(held);
            return out_of_memory(r->cmd);
        }
    }
    *next = held;
    return CLI_EXIT_OK;
}

static int run_list(const list_opts *o, const cli_args *a, int argc, char **argv)
{
    cli_remote r;
    int rc = cli_remote_open(&r, "list", a);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o->sort && dt_grpc_conn_set_list_order(r.conn, o->sort) != DT_OK) {
        cli_remote_close(&r);
        return out_of_memory("list");
    }
    Dtpb__InstanceQuery q = DTPB__INSTANCE_QUERY__INIT;
    Dtpb__StringValue prefix = DTPB__STRING_VALUE__INIT;
    dt_arena *keep = dt_arena_new();   /* the query's filter, which outlives each page */
    rc = keep ? wire_filter(keep, "list", &o->f, &q.n_runtimestatus, &q.runtimestatus,
                            &q.createdtimefrom, &q.createdtimeto)
              : out_of_memory("list");
    q.maxinstancecount = (int32_t)o->page;
    if (o->prefix) {
        prefix.value = (char *)o->prefix;
        q.instanceidprefix = &prefix;
    }
    char *next = NULL;
    bool opened = false;
    if (rc == CLI_EXIT_OK)
        rc = query_pages(&r, o, &q, &next, &opened);
    if (o->json && opened)
        fputs("]\n", stdout);
    if (rc == CLI_EXIT_OK && next)
        print_next_hint(argc, argv, next);
    free(next);
    dt_arena_free(keep);
    cli_remote_close(&r);
    return rc;
}

int cli_list(int argc, char **argv)
{
    list_opts o = {0};
    const cli_opt opts[] = {
        {"--status", &o.f.status, NULL}, {"--name", &o.name, NULL},
        {"--version", &o.version, NULL}, {"--from", &o.f.from, NULL},     {"--to", &o.f.to, NULL},
        {"--prefix", &o.prefix, NULL},   {"--page-size", &o.page_size, NULL},
        {"--all", NULL, &o.all},         {"--continuation", &o.continuation, NULL},
        {"--json", NULL, &o.json},       {"--sort", &o.sort, NULL},
        {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&list_spec, opts, argc, argv, &a, &rc))
        return rc;
    if (o.all && o.continuation)
        return cli_usage_error("list", "--all and --continuation do not go together");
    if (o.sort && strcmp(o.sort, "created") != 0 && strcmp(o.sort, "id") != 0)
        return cli_usage_error("list", "--sort must be created or id, not '%s'", o.sort);
    if (!check_filter("list", &o.f))
        return CLI_EXIT_USAGE;
    if (o.page_size && !cli_parse_count("list", "--page-size", o.page_size, DT_QUERY_PAGE_MAX,
                                         &o.page))
        return CLI_EXIT_USAGE;
    return run_list(&o, &a, argc, argv);
}

/* ---- history -------------------------------------------------------------------------------- */

static const cli_spec history_spec = {
    "history", "ID", 1, 1,
    "usage: dtask history ID [--json] [--server ADDR:PORT]\n\n"
    "Prints instance ID's history: sequence number, event, timestamp, name#task and payload.\n"
    "Exits 3 if there is no such instance.\n\n"
    "  --json               print a JSON array of events instead\n" CLI_SERVER_HELP};

/* An event list that grows; the events' strings live in the remote's arena. */
typedef struct events {
    dt_event *ev;
    size_t n, cap;
} events;

/* add_chunk: the events of one HistoryChunk. An event this build cannot read (entities, say,
 * from another backend) is kept as a placeholder naming the problem, so numbering holds. */
static int add_chunk(cli_remote *r, events *h, const uint8_t *msg, size_t len)
{
    void *m = NULL;
    dt_error err = {0};
    if (pb_unpack(r->arena, &dtpb__history_chunk__descriptor, msg, len, &m, &err) != DT_OK) {
        fprintf(stderr, "dtask history: a history chunk does not parse: %s\n", err.message);
        return CLI_EXIT_FAILED;
    }
    const Dtpb__HistoryChunk *chunk = m;
    for (size_t i = 0; i < chunk->n_events; i++) {
        dt_event *bigger = dt_grow(h->ev, &h->cap, h->n + 1, sizeof *bigger);
        if (bigger == NULL)
            return out_of_memory("history");
        h->ev = bigger;
        dt_event *e = &h->ev[h->n++];
        pb_reader rd = PB_READER(r->arena, &err, NULL);
        pb_r_event(&rd, chunk->events[i], e);
        if (rd.status != DT_OK) {
            pb_reader ts = PB_READER(r->arena, NULL, NULL);
            dt_event_init(e, DT_EVENT_NONE, pb_r_time(&ts, chunk->events[i]->timestamp, ""));
            e->input = dt_arena_strdup(r->arena, err.message);
        }
    }
    return CLI_EXIT_OK;
}

/* read_history: the whole StreamInstanceHistory stream of ID into H. */
static int read_history(cli_remote *r, const char *id, events *h)
{
    Dtpb__StreamInstanceHistoryRequest req = DTPB__STREAM_INSTANCE_HISTORY_REQUEST__INIT;
    req.instanceid = (char *)id;
    uint8_t *bytes = NULL;
    size_t len = 0;
    dt_grpc_stream *s = NULL;
    dt_error err = {0};
    if (pb_pack(r->arena, &req.base, &bytes, &len) != DT_OK ||
        dt_grpc_stream_open(r->conn, "StreamInstanceHistory", bytes, len, &s, &err) != DT_OK) {
        fprintf(stderr, "dtask history: cannot reach the server at %s: %s\n", r->server,
                err.message[0] ? err.message : "out of memory");
        return CLI_EXIT_UNREACHABLE;
    }
    int rc = CLI_EXIT_OK;
    for (;;) {
        uint8_t *msg = NULL;
        dt_grpc_result res = {0};
        dt_status st = dt_grpc_stream_next(s, HISTORY_NEXT_TIMEOUT_MS, &msg, &len, &res);
        if (st == DT_OK) {
            rc = add_chunk(r, h, msg, len);
            free(msg);
            if (rc == CLI_EXIT_OK)
                continue;
        } else if (st == DT_ERR_NOT_FOUND) {   /* the stream ended: how? */
            if (res.code != GRPC_STATUS_OK)
                rc = cli_rpc_fail(r, &res, id);
        } else {
            res.code = st == DT_ERR_TIMEOUT ? GRPC_STATUS_DEADLINE_EXCEEDED
                                            : GRPC_STATUS_UNAVAILABLE;
            snprintf(res.details, sizeof res.details, "%s", dt_strerror(st));
            rc = cli_rpc_fail(r, &res, id);
        }
        break;
    }
    dt_grpc_stream_close(s);
    return rc;
}

int cli_history(int argc, char **argv)
{
    bool json = false;
    const cli_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&history_spec, opts, argc, argv, &a, &rc))
        return rc;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "history", &a)) != CLI_EXIT_OK)
        return rc;
    events h = {0};
    rc = read_history(&r, a.pos[0], &h);
    /* an empty history may be an instance that does not exist: the stream does not say */
    dt_instance_state *s = NULL;
    if (rc == CLI_EXIT_OK && h.n == 0)
        rc = cli_get_state(&r, a.pos[0], false, &s);
    if (rc == CLI_EXIT_OK && json)
        cli_print_history_json(stdout, h.ev, h.n);
    else if (rc == CLI_EXIT_OK)
        cli_print_history(stdout, h.ev, h.n);
    free(h.ev);
    cli_remote_close(&r);
    return rc;
}

/* ---- purge ---------------------------------------------------------------------------------- */

static const cli_spec purge_spec = {
    "purge", "[ID]", 0, 1,
    "usage: dtask purge ID [--server ADDR:PORT]\n"
    "       dtask purge [--status S[,S...]] [--from TIME] [--to TIME] [--server ADDR:PORT]\n\n"
    "Deletes finished instances and their histories and prints how many were deleted:\n"
    "instance ID (exits 3 if there is none, 1 if it has not finished), or every finished\n"
    "instance that matches the filter (at least one of --status, --from, --to).\n\n"
    "  --status S[,S...]    only these statuses (Completed, Failed, Terminated, Canceled)\n"
    "  --from TIME, --to TIME  created in this window: ISO 8601 or +/-SECONDS from now\n"
    CLI_SERVER_HELP};

/* purge_call: one PurgeInstances call; *DELETED and *MORE from its answer. */
static int purge_call(cli_remote *r, const Dtpb__PurgeInstancesRequest *req, const char *id,
                      long long *deleted, bool *more)
{
    void *m = NULL;
    dt_grpc_result res;
    if (cli_rpc_try(r, "PurgeInstances", &req->base, &dtpb__purge_instances_response__descriptor,
                    PURGE_TIMEOUT_MS, &m, &res) != DT_OK)
        return cli_rpc_fail(r, &res, id);
    const Dtpb__PurgeInstancesResponse *resp = m;
    *deleted += resp->deletedinstancecount;
    *more = resp->iscomplete && !resp->iscomplete->value;
    return CLI_EXIT_OK;
}

static int purge_one(cli_remote *r, const char *id)
{
    dt_instance_state *s = NULL;
    int rc = cli_get_state(r, id, false, &s);
    Dtpb__PurgeInstancesRequest req = DTPB__PURGE_INSTANCES_REQUEST__INIT;
    req.request_case = DTPB__PURGE_INSTANCES_REQUEST__REQUEST_INSTANCE_ID;
    req.instanceid = (char *)id;
    req.isorchestration = true;
    long long deleted = 0;
    bool more = false;
    if (rc == CLI_EXIT_OK && !dt_runtime_status_is_terminal(s->status)) {
        fprintf(stderr, "dtask purge: instance '%s' is %s: only finished instances are "
                "purged\n", id, dt_runtime_status_name(s->status));
        rc = CLI_EXIT_FAILED;
    }
    if (rc == CLI_EXIT_OK)
        rc = purge_call(r, &req, id, &deleted, &more);
    if (rc == CLI_EXIT_OK)
        printf("%lld\n", deleted);
    return rc;
}

static int purge_where(cli_remote *r, const filter_opts *f)
{
    Dtpb__PurgeInstanceFilter filter = DTPB__PURGE_INSTANCE_FILTER__INIT;
    Dtpb__PurgeInstancesRequest req = DTPB__PURGE_INSTANCES_REQUEST__INIT;
    int rc = wire_filter(r->arena, r->cmd, f, &filter.n_runtimestatus, &filter.runtimestatus,
                         &filter.createdtimefrom, &filter.createdtimeto);
    req.request_case = DTPB__PURGE_INSTANCES_REQUEST__REQUEST_PURGE_INSTANCE_FILTER;
    req.purgeinstancefilter = &filter;
    long long deleted = 0;
    bool more = true;
    if (rc == CLI_EXIT_OK)
        fprintf(stderr, "purging...\n");
    while (rc == CLI_EXIT_OK && more) {
        rc = purge_call(r, &req, NULL, &deleted, &more);
        if (rc == CLI_EXIT_OK && more)
            fprintf(stderr, "purging... %lld deleted so far\n", deleted);
    }
    if (rc == CLI_EXIT_OK) {
        fprintf(stderr, "deleted %lld\n", deleted);
        printf("%lld\n", deleted);
    }
    return rc;
}

int cli_purge(int argc, char **argv)
{
    filter_opts f = {0};
    const cli_opt opts[] = {{"--status", &f.status, NULL}, {"--from", &f.from, NULL},
                            {"--to", &f.to, NULL}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&purge_spec, opts, argc, argv, &a, &rc))
        return rc;
    bool filtered = f.status || f.from || f.to;
    if (a.n_pos == 1 && filtered)
        return cli_usage_error("purge", "give an ID or a filter, not both");
    if (a.n_pos == 0 && !filtered)
        return cli_usage_error("purge", "give an ID, or a filter: --status, --from or --to");
    if (!check_filter("purge", &f))
        return CLI_EXIT_USAGE;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "purge", &a)) != CLI_EXIT_OK)
        return rc;
    rc = a.n_pos == 1 ? purge_one(&r, a.pos[0]) : purge_where(&r, &f);
    cli_remote_close(&r);
    return rc;
}
