/* cli.h — the dtask subcommands and what they share: exit codes, the option parser and value
 * checks (args.c) and the printing of states, histories and entities (print.c). The operator commands
 * talk to a server over gRPC through src/cli/remote.h (not durabletask/remote.h, the remote
 * worker). */
#ifndef DT_CLI_H
#define DT_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "durabletask/sdk.h"

/* Exit codes, the same for every command (documented in `dtask --help`). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,       /* the operation failed; for wait: ended other than Completed */
    CLI_EXIT_USAGE = 2,        /* bad usage or a value that is not valid */
    CLI_EXIT_NOT_FOUND = 3,    /* no such instance */
    CLI_EXIT_TIMEOUT = 4,      /* timed out */
    CLI_EXIT_UNREACHABLE = 5   /* cannot reach the server */
};

/* The --server, --token-file and --taskhub lines of every operator command's --help. */
#define CLI_SERVER_HELP \
    "  --server ADDR:PORT   the Durable Task gRPC server (default: $DTASK_SERVER, else\n" \
    "                       " DT_DEFAULT_GRPC_ADDRESS ")\n" \
    "  --token-file PATH    send the bearer token in PATH, for a server that requires one\n" \
    "                       (default: $DTASK_TOKEN_FILE, if set)\n"                         \
    "  --taskhub NAME       act on task hub NAME (default: $DTASK_TASKHUB, else the\n"       \
    "                       server's default hub)\n"

/* ---- subcommands: ARGV excludes the subcommand; each returns the exit code ------------------ */

int cli_demo(int argc, char **argv);      /* demo.c */
int cli_serve(int argc, char **argv);     /* serve.c */
int cli_migrate(int argc, char **argv);   /* migrate_cmd.c */
int cli_worker(int argc, char **argv);    /* worker_cmd.c */
int cli_start(int argc, char **argv);     /* instance_cmds.c */
int cli_status(int argc, char **argv);
int cli_raise(int argc, char **argv);
int cli_terminate(int argc, char **argv);
int cli_suspend(int argc, char **argv);
int cli_rewind(int argc, char **argv);
int cli_resume(int argc, char **argv);
int cli_restart(int argc, char **argv);
int cli_list(int argc, char **argv);      /* list_cmds.c */
int cli_history(int argc, char **argv);
int cli_purge(int argc, char **argv);
int cli_wait(int argc, char **argv);      /* wait_cmd.c */
int cli_entity(int argc, char **argv);    /* entity_cmds.c: get, signal, list, clean */

/* The demo's own database: not `dtask serve`'s (DT_DEFAULT_DB_PATH), so running the demo
 * never takes or leaves work in the hub other programs use. */
#define CLI_DEMO_DB_PATH "./dtask-data/demo.db"

/* cli_register_demo: register the demo's orchestrators (hello_cities, c_calls_js) and
 * activities (say_hello, c_greet) on W. */
dt_status cli_register_demo(dt_worker *w);

/* ---- options (args.c) ----------------------------------------------------------------------- */

/* One option of a command: with VALUE set it takes a value ("--input JSON" or "--input=JSON"),
 * stored there (pointing into argv); with FLAG set it is a flag. Lists end with {NULL}. */
typedef struct cli_opt {
    const char *name;
    const char **value;
    bool *flag;
} cli_opt;

/* What a command accepts besides its options: ARGS names its positional arguments for
 * messages ("ID EVENT"), between MIN_ARGS and MAX_ARGS of them; USAGE is its --help text. */
typedef struct cli_spec {
    const char *cmd;
    const char *args;
    int min_args, max_args;
    const char *usage;
} cli_spec;

#define CLI_MAX_ARGS 4

/* What every operator command gets: --server, --token-file, --taskhub and the positional
 * arguments. */
typedef struct cli_args {
    const char *server;
    const char *token_file;   /* NULL: send no token */
    const char *task_hub;     /* NULL: the server's default hub */
    const char *pos[CLI_MAX_ARGS];
    int n_pos;
} cli_args;

/* cli_parse: read ARGV by SPEC and OPTS (--server, --token-file and --help are added to every
 * command;
 * "--" ends the options). True: run the command with OUT. False: *RC is the exit code, the
 * help printed (0) or a usage error reported on stderr (2). */
bool cli_parse(const cli_spec *spec, const cli_opt *opts, int argc, char **argv, cli_args *out,
               int *rc);

/* cli_usage_error: print "dtask CMD: <message> (try 'dtask CMD --help')" on stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value checks below report a bad value as a usage error naming FLAG, and return false. */

/* cli_check_json: TEXT is one JSON value. */
bool cli_check_json(const char *cmd, const char *flag, const char *text);

/* cli_parse_time: an ISO 8601 UTC time ("2026-05-01", "2026-05-01T12:00:00Z", with an offset
 * "+02:00" or fractional seconds), or "+N" / "-N" seconds from now. */
bool cli_parse_time(const char *cmd, const char *flag, const char *text, dt_time *out);

/* cli_parse_statuses: a comma-separated list of runtime status names (case-insensitive) into
 * OUT, at most 8. */
bool cli_parse_statuses(const char *cmd, const char *flag, const char *text,
                        dt_runtime_status out[8], size_t *n);

/* cli_parse_count: a whole number from 1 to MAX. */
bool cli_parse_count(const char *cmd, const char *flag, const char *text, long max, long *out);

/* cli_parse_seconds: a positive number of seconds (fractions allowed), in milliseconds. */
bool cli_parse_seconds(const char *cmd, const char *flag, const char *text, int64_t *ms);

/* cli_read_token: the token in PATH, surrounding whitespace trimmed, into *OUT (malloc'd; free
 * it). False, with a message for the user in MSG, if it cannot be read, is empty, is over 4096
 * bytes or has spaces or control characters inside. (token.c) */
bool cli_read_token(const char *path, char **out, char *msg, size_t cap);

/* ---- output (print.c) ----------------------------------------------------------------------- */

/* cli_print_history: a readable table of N events (seq, event, timestamp, name#id, payload). */
void cli_print_history(FILE *out, const dt_event *ev, size_t n);

/* cli_print_history_json: the events as one JSON array, one object per event. */
void cli_print_history_json(FILE *out, const dt_event *ev, size_t n);

/* cli_print_state: a readable block for S; input, output and custom status only WITH_PAYLOADS. */
void cli_print_state(FILE *out, const dt_instance_state *s, bool with_payloads);

/* cli_print_state_json: S as one JSON object (no newline after it). */
void cli_print_state_json(FILE *out, const dt_instance_state *s, bool with_payloads);

/* cli_print_entity: a readable block for entity E (id, last modified, lock holder, backlog,
 * state). cli_print_entity_json: E as one JSON object, its state only WITH_STATE. */
void cli_print_entity(FILE *out, const dt_entity_state *e);
void cli_print_entity_json(FILE *out, const dt_entity_state *e, bool with_state);

/* cli_print_failure: "Type: message", then each inner failure's as "caused by ...", each line
 * starting with INDENT after the first. */
void cli_print_failure(FILE *out, const dt_failure *f, const char *indent);

#endif
