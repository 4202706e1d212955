/* entity_cmds.c — `dtask entity get|signal|list|clean`: durable entities on a server, over
 * the protocol's SignalEntity, GetEntity, QueryEntities and CleanEntityStorage. Ids are
 * checked here first (so a malformed one is a usage error naming the rule, before any
 * connection); remote.c turns a call's failure into a message and an exit code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote.h"

static const char entity_usage[] =
    "usage: dtask entity <command> [options]\n\n"
    "Durable entities on a Durable Task gRPC server. An entity id is @name@key (the name\n"
    "is lowercased; at most 100 characters in all, none of / \\ # ?).\n\n"
    "  get ID                 show an entity's state, lock holder and backlog\n"
    "  signal ID OP [INPUT]   send operation OP with a JSON input, one way\n"
    "  list                   list entities (with state; --transient for the others)\n"
    "  clean                  remove empty entities and release orphaned locks\n\n"
    "Run 'dtask entity <command> --help' for its options.\n";

/* check_id: ID is an entity id; a usage error naming the rule if not. */
static bool check_id(const char *cmd, const char *id)
{
    dt_error err = {0};
    if (dt_entity_id_validate(id, &err) == DT_OK)
        return true;
    cli_usage_error(cmd, "%s", err.message);
    return false;
}

/* ---- get ------------------------------------------------------------------------------------ */

static const cli_spec get_spec = {
    "entity get", "ID", 1, 1,
    "usage: dtask entity get ID [--json] [--server ADDR:PORT]\n\n"
    "Shows entity ID (@name@key): last modified, the orchestration holding its lock, the\n"
    "messages waiting for it and its state. Exits 3 if it has no state.\n\n"
    "  --json               print one JSON object instead\n" CLI_SERVER_HELP};

static int entity_get(int argc, char **argv)
{
    bool json = false;
    const cli_opt opts[] = {{"--json", NULL, &json}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&get_spec, opts, argc, argv, &a, &rc))
        return rc;
    if (!check_id("entity get", a.pos[0]))
        return CLI_EXIT_USAGE;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "entity get", &a)) != CLI_EXIT_OK)
        return rc;
    Dtpb__GetEntityRequest req = DTPB__GET_ENTITY_REQUEST__INIT;
    req.instanceid = (char *)a.pos[0];
    req.includestate = true;
    void *m = NULL;
    rc = cli_rpc(&r, "GetEntity", &req.base, &dtpb__get_entity_response__descriptor, NULL, &m);
    const Dtpb__GetEntityResponse *resp = m;
    dt_entity_state e;
    dt_error err = {0};
    if (rc == CLI_EXIT_OK && (!resp->exists || resp->entity == NULL)) {
        fprintf(stderr, "dtask entity get: entity '%s' has no state on %s\n", a.pos[0], r.server);
        rc = CLI_EXIT_NOT_FOUND;
    } else if (rc == CLI_EXIT_OK && svc_entity_from_metadata(r.arena, resp->entity, &e, &err) !=
                                        DT_OK) {
        fprintf(stderr, "dtask entity get: the server's entity is not readable: %s\n",
                err.message);
        rc = CLI_EXIT_FAILED;
    } else if (rc == CLI_EXIT_OK && json) {
        cli_print_entity_json(stdout, &e, true);
        fputc('\n', stdout);
    } else if (rc == CLI_EXIT_OK) {
        cli_print_entity(stdout, &e);
    }
    cli_remote_close(&r);
    return rc;
}

/* ---- signal --------------------------------------------------------------------------------- */

static const cli_spec signal_spec = {
    "entity signal", "ID OP", 2, 3,
    "usage: dtask entity signal ID OP [INPUT] [--at TIME] [--server ADDR:PORT]\n\n"
    "Sends operation OP to entity ID (@name@key), one way: it runs when a worker that has\n"
    "the entity takes it. The entity need not exist yet.\n\n"
    "  INPUT                the operation's input, a JSON value ('5', '{\"n\":1}')\n"
    "  --at TIME            run it no earlier than TIME: ISO 8601 (2026-05-01T12:00:00Z) or\n"
    "                       +SECONDS from now\n" CLI_SERVER_HELP};

static int entity_signal(int argc, char **argv)
{
    const char *at = NULL;
    const cli_opt opts[] = {{"--at", &at, NULL}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&signal_spec, opts, argc, argv, &a, &rc))
        return rc;
    const char *input = a.n_pos == 3 ? a.pos[2] : NULL;
    dt_time when = 0;
    if (!check_id("entity signal", a.pos[0]))
        return CLI_EXIT_USAGE;
    if (a.pos[1][0] == '\0')
        return cli_usage_error("entity signal", "the operation OP is empty");
    if (input && !cli_check_json("entity signal", "INPUT", input))
        return CLI_EXIT_USAGE;
    if (at && !cli_parse_time("entity signal", "--at", at, &when))
        return CLI_EXIT_USAGE;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "entity signal", &a)) != CLI_EXIT_OK)
        return rc;
    Dtpb__SignalEntityRequest req = DTPB__SIGNAL_ENTITY_REQUEST__INIT;
    Dtpb__StringValue in = DTPB__STRING_VALUE__INIT;
    char rid[37];
    dt_instance_id_generate(rid);
    req.instanceid = (char *)a.pos[0];
    req.name = (char *)a.pos[1];
    req.requestid = rid;
    if (input) {
        in.value = (char *)input;
        req.input = &in;
    }
    pb_builder b = PB_BUILDER(r.arena);
    req.scheduledtime = pb_b_time(&b, when);
    req.requesttime = pb_b_time(&b, dt_now());
    void *m = NULL;
    if (b.status != DT_OK)
        rc = cli_usage_error("entity signal", "--at: '%s' is out of range", at);
    else
        rc = cli_rpc(&r, "SignalEntity", &req.base, &dtpb__signal_entity_response__descriptor,
                     NULL, &m);
    cli_remote_close(&r);
    return rc;
}

/* ---- list ----------------------------------------------------------------------------------- */

static const cli_spec list_spec = {
    "entity list", "", 0, 0,
    "usage: dtask entity list [--prefix P] [--state] [--transient] [--page-size N] [--all]\n"
    "                         [--json] [--server ADDR:PORT]\n\n"
    "Lists entities: id, last modified, lock holder, messages waiting (and their state with\n"
    "--state), one page at a time. When there are more, it says so on stderr.\n\n"
    "  --prefix P           entity ids starting with P (@name@key; the leading @ may be left\n"
    "                       out, so 'counter' lists the entities whose name starts so)\n"
    "  --state              show each state too\n"
    "  --transient          also entities without state that hold a lock or have messages\n"
    "                       waiting\n"
    "  --page-size N        entities per page (the server's default if not given)\n"
    "  --all                every page, one after the other\n"
    "  --json               print a JSON array of entities, with their states, instead\n"
    CLI_SERVER_HELP};

typedef struct list_opts {
    const char *prefix, *page_size;
    bool state, transient, all, json;
    long page;
} list_opts;

/* print_row: one entity, its state cut to what fits a line. */
static void print_row(const dt_entity_state *e, bool with_state)
{
    char when[32];
    dt_time_format(e->last_modified, when);
    printf("%-40s  %-24s  %-36s  %7d", e->entity_id, when, e->locked_by ? e->locked_by : "-",
           (int)e->backlog);
    if (with_state) {
        const char *s = e->state ? e->state : "(none)";
        printf("  %.60s%s", s, strlen(s) > 60 ? "..." : "");
    }
    putchar('\n');
}

/* print_page: the entities of one QueryEntities answer; *N counts them. */
static int print_page(cli_remote *r, const list_opts *o, const Dtpb__QueryEntitiesResponse *m,
                      size_t *n)
{
    for (size_t i = 0; i < m->n_entities; i++) {
        dt_entity_state e;
        dt_error err = {0};
        if (svc_entity_from_metadata(r->arena, m->entities[i], &e, &err) != DT_OK) {
            fprintf(stderr, "dtask entity list: the server sent an entity that is not "
                    "readable: %s\n", err.message);
            return CLI_EXIT_FAILED;
        }
        if (o->json) {
            fputs(*n ? ",\n " : "", stdout);
            cli_print_entity_json(stdout, &e, o->state);
        } else {
            print_row(&e, o->state);
        }
        ++*n;
    }
    return CLI_EXIT_OK;
}

/* list_pages: QueryEntities for Q (its prefix outside R's arena, which is emptied between
 * pages), one page or with --all every page. */
static int list_pages(cli_remote *r, const list_opts *o, Dtpb__EntityQuery *q)
{
    Dtpb__QueryEntitiesRequest req = DTPB__QUERY_ENTITIES_REQUEST__INIT;
    Dtpb__StringValue token = DTPB__STRING_VALUE__INIT;
    req.query = q;
    char *held = NULL;   /* the next page's token, kept across arena resets */
    size_t n = 0;
    int rc = CLI_EXIT_OK;
    if (o->json)
        fputc('[', stdout);
    else
        printf("%-40s  %-24s  %-36s  %7s%s\n", "id", "last modified", "locked by", "backlog",
               o->state ? "  state" : "");
    for (;;) {
        token.value = held;
        q->continuationtoken = held ? &token : NULL;
        void *m = NULL;
        rc = cli_rpc(r, "QueryEntities", &req.base, &dtpb__query_entities_response__descriptor,
                     NULL, &m);
        if (rc == CLI_EXIT_OK)
            rc = print_page(r, o, m, &n);
        free(held);
        held = NULL;
        const Dtpb__StringValue *t =
            rc == CLI_EXIT_OK ? ((Dtpb__QueryEntitiesResponse *)m)->continuationtoken : NULL;
        if (t && t->value && t->value[0] && (held = strdup(t->value)) == NULL) {
            fprintf(stderr, "dtask entity list: out of memory\n");
            rc = CLI_EXIT_FAILED;
        }
        if (rc != CLI_EXIT_OK || held == NULL || !o->all)
            break;
        if (!cli_remote_reset_arena(r)) {
            fprintf(stderr, "dtask entity list: out of memory\n");
            rc = CLI_EXIT_FAILED;
            break;
        }
    }
    if (o->json)
        fputs("]\n", stdout);
    if (rc == CLI_EXIT_OK && held)
        fprintf(stderr, "more entities follow: add --all to list every page\n");
    free(held);
    return rc;
}

static int entity_list(int argc, char **argv)
{
    list_opts o = {0};
    const cli_opt opts[] = {{"--prefix", &o.prefix, NULL},    {"--state", NULL, &o.state},
                            {"--transient", NULL, &o.transient}, {"--page-size", &o.page_size, NULL},
                            {"--all", NULL, &o.all},          {"--json", NULL, &o.json},
                            {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&list_spec, opts, argc, argv, &a, &rc))
        return rc;
    o.state |= o.json;   /* scripts get the whole entity */
    if (o.page_size && !cli_parse_count("entity list", "--page-size", o.page_size,
                                        DT_QUERY_PAGE_MAX, &o.page))
        return CLI_EXIT_USAGE;
    /* the prefix as an id prefix: '@' in front unless given */
    char prefix[2 * DT_INSTANCE_ID_MAX + 2];
    if (o.prefix && strlen(o.prefix) > 2 * DT_INSTANCE_ID_MAX)
        return cli_usage_error("entity list", "--prefix is longer than any entity id");
    if (o.prefix)
        snprintf(prefix, sizeof prefix, "%s%s", o.prefix[0] == '@' ? "" : "@", o.prefix);
    cli_remote r;
    if ((rc = cli_remote_open(&r, "entity list", &a)) != CLI_EXIT_OK)
        return rc;
    Dtpb__EntityQuery q = DTPB__ENTITY_QUERY__INIT;
    Dtpb__StringValue starts = DTPB__STRING_VALUE__INIT;
    Dtpb__Int32Value size = DTPB__INT32_VALUE__INIT;
    if (o.prefix) {
        starts.value = prefix;
        q.instanceidstartswith = &starts;
    }
    if (o.page) {
        size.value = (int32_t)o.page;
        q.pagesize = &size;
    }
    q.includestate = o.state;
    q.includetransient = o.transient;
    rc = list_pages(&r, &o, &q);
    cli_remote_close(&r);
    return rc;
}

/* ---- clean ---------------------------------------------------------------------------------- */

static const cli_spec clean_spec = {
    "entity clean", "", 0, 0,
    "usage: dtask entity clean [--empty] [--locks] [--server ADDR:PORT]\n\n"
    "Cleans entity storage and prints what it did. Without options it does both:\n\n"
    "  --empty              remove entities with no state, no lock and no messages waiting\n"
    "  --locks              release locks held by orchestrations that have ended\n"
    CLI_SERVER_HELP};

static int entity_clean(int argc, char **argv)
{
    bool empty = false, locks = false;
    const cli_opt opts[] = {{"--empty", NULL, &empty}, {"--locks", NULL, &locks},
                            {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&clean_spec, opts, argc, argv, &a, &rc))
        return rc;
    if (!empty && !locks)
        empty = locks = true;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "entity clean", &a)) != CLI_EXIT_OK)
        return rc;
    Dtpb__CleanEntityStorageRequest req = DTPB__CLEAN_ENTITY_STORAGE_REQUEST__INIT;
    req.removeemptyentities = empty;
    req.releaseorphanedlocks = locks;
    long long removed = 0, released = 0;
    /* a server may clean a page at a time: go on while it gives a token */
    for (int pages = 0; rc == CLI_EXIT_OK; pages++) {
        void *m = NULL;
        rc = cli_rpc(&r, "CleanEntityStorage", &req.base,
                     &dtpb__clean_entity_storage_response__descriptor, NULL, &m);
        if (rc != CLI_EXIT_OK)
            break;
        const Dtpb__CleanEntityStorageResponse *resp = m;
        removed += resp->emptyentitiesremoved;
        released += resp->orphanedlocksreleased;
        if (resp->continuationtoken == NULL || resp->continuationtoken->value == NULL ||
            resp->continuationtoken->value[0] == '\0' || pages >= 100000)
            break;
        req.continuationtoken = resp->continuationtoken;
    }
    if (rc == CLI_EXIT_OK)
        printf("removed %lld empty entities, released %lld orphaned locks\n", removed, released);
    cli_remote_close(&r);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

int cli_entity(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = {{"get", entity_get}, {"signal", entity_signal}, {"list", entity_list},
                {"clean", entity_clean}};
    if (argc < 1) {
        fputs(entity_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(entity_usage, stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "dtask entity: unknown command '%s'\n", argv[0]);
    fputs(entity_usage, stderr);
    return CLI_EXIT_USAGE;
}
