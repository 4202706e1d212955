/* remote.h — how the operator commands talk to a Durable Task gRPC server: one connection and
 * one arena per command, requests built as dtpb messages, and every failure turned into a
 * message on stderr and an exit code (cli.h) in one place. Internal to src/cli/. */
#ifndef DT_CLI_REMOTE_H
#define DT_CLI_REMOTE_H

#include "cli.h"
#include "durabletask/grpc_client.h"
#include "service/service.h"

/* Deadline of an ordinary call; purges and waits choose their own. */
#define CLI_CALL_TIMEOUT_MS 60000

typedef struct cli_remote {
    const char *cmd;          /* "status": every message starts "dtask status: " */
    const char *server;       /* ADDR:PORT, for messages */
    dt_grpc_conn *conn;
    dt_arena *arena;          /* requests and responses; freed by cli_remote_close */
} cli_remote;

/* cli_remote_open: a connection for command CMD to A's server, sending the token in A's token
 * file if it names one (connecting happens on the first call). Returns an exit code; on
 * failure nothing is left to close. */
int cli_remote_open(cli_remote *r, const char *cmd, const cli_args *a);

/* cli_remote_close: close the connection and free the arena. */
void cli_remote_close(cli_remote *r);

/* cli_remote_reset_arena: free what the arena holds (a long wait calls it between slices).
 * Every response read so far becomes invalid. False when out of memory. */
bool cli_remote_reset_arena(cli_remote *r);

/* cli_rpc_try: call METHOD with REQ within TIMEOUT_MS and parse the answer as a DESC message
 * into the arena (*RESP). DT_OK only when the call succeeded; otherwise RES says why: its
 * gRPC code (DEADLINE_EXCEEDED when the time ran out, UNAVAILABLE when the server could not be
 * reached) or, with code OK, a local failure (an answer that does not parse) in its details.
 * Prints nothing. */
dt_status cli_rpc_try(cli_remote *r, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *desc, int64_t timeout_ms, void **resp,
                      dt_grpc_result *res);

/* cli_rpc_fail: report the failure RES of a call on stderr and return its exit code. With ID,
 * NOT_FOUND reads "no instance 'ID' on SERVER". */
int cli_rpc_fail(cli_remote *r, const dt_grpc_result *res, const char *id);

/* cli_rpc: cli_rpc_try with the ordinary deadline, then cli_rpc_fail if it failed. Returns
 * the exit code. */
int cli_rpc(cli_remote *r, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, const char *id, void **resp);

/* cli_get_state: GetInstance for ID (payloads if WITH_PAYLOADS) as a state in the arena.
 * CLI_EXIT_NOT_FOUND, reported, when the server has no such instance. */
int cli_get_state(cli_remote *r, const char *id, bool with_payloads, dt_instance_state **out);

/* cli_state_from_response: the state of a GetInstanceResponse (also the answer of the wait
 * calls); as cli_get_state for a missing instance. */
int cli_state_from_response(cli_remote *r, const char *id, const Dtpb__GetInstanceResponse *m,
                            dt_instance_state **out);

/* cli_no_instance: report that the server has no instance ID; returns CLI_EXIT_NOT_FOUND. */
int cli_no_instance(cli_remote *r, const char *id);

#endif
