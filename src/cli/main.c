/* main.c — the dtask binary: dispatch to a subcommand. Exit codes: 0 success, 1 the operation
 * failed, 2 bad usage. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define DTASK_VERSION "0.1.0"

static void usage(FILE *out)
{
    fprintf(out, "usage: dtask <command> [options]\n\n"
                 "commands:\n"
                 "  demo      run the hello_cities orchestration on an embedded hub\n"
                 "  serve     run a hub with the Durable Task gRPC service\n"
                 "  worker    run the demo's C orchestrators and activities for a server\n"
                 "  version   print the version\n\n"
                 "Run 'dtask <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "demo") == 0)
        return cli_demo(argc - 2, argv + 2);
    if (strcmp(cmd, "serve") == 0)
        return cli_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "worker") == 0)
        return cli_worker(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("dtask %s\n", DTASK_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "dtask: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
