/* main.c — the dtask binary: the table of subcommands, `dtask help [COMMAND]`, and dispatch.
 * The exit codes every command shares are listed in cli.h and in the usage below. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "durabletask/durabletask.h"


typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command operator_commands[] = {
    {"start", cli_start, "start an orchestration; prints its instance id"},
    {"status", cli_status, "show one instance (--json for scripts)"},
    {"list", cli_list, "list instances, filtered and paged"},
    {"history", cli_history, "show an instance's history"},
    {"raise", cli_raise, "send an event to an instance"},
    {"terminate", cli_terminate, "end an instance as Terminated"},
    {"suspend", cli_suspend, "pause an instance"},
    {"resume", cli_resume, "continue a suspended instance"},
    {"rewind", cli_rewind, "run a failed instance again from its last good point"},
    {"restart", cli_restart, "run a finished instance again"},
    {"purge", cli_purge, "delete finished instances and their histories"},
    {"wait", cli_wait, "wait for an instance to start or finish"},
    {"entity", cli_entity, "durable entities: get, signal, list, clean"},
    {NULL, NULL, NULL},
};

static const command host_commands[] = {
    {"serve", cli_serve, "run a hub with the Durable Task gRPC service"},
    {"worker", cli_worker, "run the demo's C orchestrators and activities for a server"},
    {"demo", cli_demo, "run the hello_cities orchestration on an embedded hub"},
    {"migrate", cli_migrate, "bring a database's schema up to this version"},
    {NULL, NULL, NULL},
};

static void list_commands(FILE *out, const command *cmds)
{
    for (const command *c = cmds; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: dtask <command> [options]\n\n"
                 "Operate instances and entities on a Durable Task gRPC server (dtask serve, or any\n"
                 "Durable Task backend) given by --server ADDR:PORT (default $DTASK_SERVER,\n"
                 "else " DT_DEFAULT_GRPC_ADDRESS "):\n");
    list_commands(out, operator_commands);
    fprintf(out, "\nRun things:\n");
    list_commands(out, host_commands);
    fprintf(out, "  %-10s %s\n", "version", "print the version");
    fprintf(out,
            "\nRun 'dtask help <command>' or 'dtask <command> --help' for its options.\n\n"
            "Exit codes:\n"
            "  0  success\n"
            "  1  the operation failed (for wait: the instance ended Failed, Terminated or\n"
            "     Canceled)\n"
            "  2  bad usage: an unknown option, a missing argument or a value that is not\n"
            "     valid (also when the server refuses a value as invalid)\n"
            "  3  no such instance (entity get: the entity has no state)\n"
            "  4  timed out\n"
            "  5  cannot reach the server\n");
}

static const command *find(const char *name)
{
    const command *tables[] = {operator_commands, host_commands};
    for (size_t t = 0; t < 2; t++)
        for (const command *c = tables[t]; c->name; c++)
            if (strcmp(c->name, name) == 0)
                return c;
    return NULL;
}

/* help: `dtask help` is the usage; `dtask help CMD [SUB]` is `dtask CMD [SUB] --help`. */
static int help(int argc, char **argv)
{
    if (argc < 1) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[0], "version") == 0) {
        printf("usage: dtask version\n\nPrints the version.\n");
        return CLI_EXIT_OK;
    }
    const command *c = find(argv[0]);
    if (c == NULL) {
        fprintf(stderr, "dtask help: no command '%s'\n", argv[0]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    /* `dtask help entity get` is `dtask entity get --help` */
    char flag[] = "--help";
    char *args[] = {argc > 1 ? argv[1] : flag, flag, NULL};
    return c->run(argc > 1 ? 2 : 1, args);
}

int main(int argc, char **argv)
{
    dt_hub_tune_malloc();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    const command *c = find(cmd);
    if (c)
        return c->run(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("dtask %s\n", DT_VERSION);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
        return help(argc - 2, argv + 2);
    fprintf(stderr, "dtask: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
