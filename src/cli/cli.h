/* cli.h — the dtask subcommands, one file each. */
#ifndef DT_CLI_H
#define DT_CLI_H

#include <stdio.h>

#include "durabletask/sdk.h"

/* cli_demo: `dtask demo [--db PATH]`; ARGV excludes the subcommand. Returns the exit code. */
int cli_demo(int argc, char **argv);

/* cli_serve: `dtask serve [--grpc-listen ADDR:PORT] [--db PATH]`. */
int cli_serve(int argc, char **argv);

/* cli_worker: `dtask worker [--server ADDR:PORT]`. */
int cli_worker(int argc, char **argv);

/* cli_register_demo: register the demo's orchestrators (hello_cities, c_calls_js) and
 * activities (say_hello, c_greet) on W. */
dt_status cli_register_demo(dt_worker *w);

/* cli_print_history: a readable table of N events. */
void cli_print_history(FILE *out, const dt_event *ev, size_t n);

#endif
