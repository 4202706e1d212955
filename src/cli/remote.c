/* remote.c — see remote.h. The one place that maps a call's outcome to a message and an exit
 * code: NOT_FOUND is 3, DEADLINE_EXCEEDED 4, UNAVAILABLE (and a call that could not be made)
 * 5, INVALID_ARGUMENT 2 (the server judged a value we passed on), anything else 1, always
 * with the server's own status details. */
#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote.h"

int cli_remote_open(cli_remote *r, const char *cmd, const cli_args *a)
{
    memset(r, 0, sizeof *r);
    r->cmd = cmd;
    r->server = a->server;
    char *token = NULL;
    char msg[600];
    if (a->token_file && !cli_read_token(a->token_file, &token, msg, sizeof msg)) {
        fprintf(stderr, "dtask %s: %s\n", cmd, msg);
        return CLI_EXIT_USAGE;
    }
    dt_error err = {0};
    int rc = CLI_EXIT_OK;
    if ((r->arena = dt_arena_new()) == NULL) {
        fprintf(stderr, "dtask %s: out of memory\n", cmd);
        rc = CLI_EXIT_FAILED;
    } else if (dt_grpc_conn_open(a->server, &r->conn, &err) != DT_OK) {
        fprintf(stderr, "dtask %s: cannot reach the server at %s: %s\n", cmd, a->server,
                err.message);
        rc = CLI_EXIT_UNREACHABLE;
    } else if (token && dt_grpc_conn_set_token(r->conn, token) != DT_OK) {
        fprintf(stderr, "dtask %s: out of memory\n", cmd);
        rc = CLI_EXIT_FAILED;
    } else if (a->task_hub && dt_grpc_conn_set_task_hub(r->conn, a->task_hub, &err) != DT_OK) {
        fprintf(stderr, "dtask %s: --taskhub: %s\n", cmd, err.message);
        rc = CLI_EXIT_USAGE;
    }
    free(token);
    if (rc != CLI_EXIT_OK)
        cli_remote_close(r);
    return rc;
}

void cli_remote_close(cli_remote *r)
{
    dt_grpc_conn_close(r->conn);
    dt_arena_free(r->arena);
    r->conn = NULL;
    r->arena = NULL;
}

bool cli_remote_reset_arena(cli_remote *r)
{
    dt_arena_free(r->arena);
    r->arena = dt_arena_new();
    return r->arena != NULL;
}

static void local_failure(dt_grpc_result *res, const char *what)
{
    res->code = GRPC_STATUS_OK;
    snprintf(res->details, sizeof res->details, "%.*s", (int)sizeof res->details - 1, what);
}

dt_status cli_rpc_try(cli_remote *r, const char *method, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *desc, int64_t timeout_ms, void **resp,
                      dt_grpc_result *res)
{
    memset(res, 0, sizeof *res);
    uint8_t *bytes = NULL, *answer = NULL;
    size_t len = 0, answer_len = 0;
    if (pb_pack(r->arena, req, &bytes, &len) != DT_OK) {
        local_failure(res, "out of memory");
        return DT_ERR_NOMEM;
    }
    dt_status st = dt_grpc_unary(r->conn, method, bytes, len, timeout_ms, &answer, &answer_len,
                                 res);
    if (st == DT_ERR_TIMEOUT)
        return st;
    if (st != DT_OK) {
        /* the call could not be made at all */
        res->code = GRPC_STATUS_UNAVAILABLE;
        snprintf(res->details, sizeof res->details, "%s", dt_strerror(st));
        free(answer);
        return st;
    }
    if (res->code != GRPC_STATUS_OK) {
        free(answer);
        return DT_ERR_IO;
    }
    dt_error err = {0};
    static const uint8_t empty[1];
    st = pb_unpack(r->arena, desc, answer ? answer : empty, answer_len, resp, &err);
    free(answer);
    if (st != DT_OK) {
        char what[600];
        snprintf(what, sizeof what, "the answer to %s does not parse: %s", method, err.message);
        local_failure(res, what);
    }
    return st;
}

static const char *code_name(int code)
{
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    if (code >= 0 && (size_t)code < sizeof names / sizeof names[0])
        return names[code];
    return "UNKNOWN";
}

int cli_no_instance(cli_remote *r, const char *id)
{
    fprintf(stderr, "dtask %s: no instance '%s' on %s\n", r->cmd, id, r->server);
    return CLI_EXIT_NOT_FOUND;
}

int cli_rpc_fail(cli_remote *r, const dt_grpc_result *res, const char *id)
{
    const char *cmd = r->cmd;
    switch (res->code) {
    case GRPC_STATUS_OK:
        fprintf(stderr, "dtask %s: %s\n", cmd, res->details);
        return CLI_EXIT_FAILED;
    case GRPC_STATUS_NOT_FOUND:
        if (id)
            return cli_no_instance(r, id);
        fprintf(stderr, "dtask %s: %s (NOT_FOUND)\n", cmd, res->details);
        return CLI_EXIT_NOT_FOUND;
    case GRPC_STATUS_UNAVAILABLE:
        fprintf(stderr, "dtask %s: cannot reach the server at %s: %s\n", cmd, r->server,
                res->details);
        return CLI_EXIT_UNREACHABLE;
    case GRPC_STATUS_DEADLINE_EXCEEDED:
        fprintf(stderr, "dtask %s: no answer from %s in time (%s)\n", cmd, r->server,
                res->details);
        return CLI_EXIT_TIMEOUT;
    case GRPC_STATUS_UNAUTHENTICATED:
    case GRPC_STATUS_PERMISSION_DENIED:
        fprintf(stderr, "dtask %s: %s (%s from %s; give the server's token with --token-file)\n",
                cmd, res->details, code_name(res->code), r->server);
        return CLI_EXIT_FAILED;
    default:
        fprintf(stderr, "dtask %s: %s (%s from %s)\n", cmd,
                res->details[0] ? res->details : "the server refused", code_name(res->code),
                r->server);
        return res->code == GRPC_STATUS_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
    }
}

int cli_rpc(cli_remote *r, const char *method, const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *desc, const char *id, void **resp)
{
    dt_grpc_result res;
    if (cli_rpc_try(r, method, req, desc, CLI_CALL_TIMEOUT_MS, resp, &res) == DT_OK)
        return CLI_EXIT_OK;
    return cli_rpc_fail(r, &res, id);
}

int cli_state_from_response(cli_remote *r, const char *id, const Dtpb__GetInstanceResponse *m,
                            dt_instance_state **out)
{
    if (!m->exists || m->orchestrationstate == NULL)
        return cli_no_instance(r, id);
    dt_instance_state *s = dt_arena_alloc(r->arena, sizeof *s);
    dt_error err = {0};
    if (s == NULL) {
        fprintf(stderr, "dtask %s: out of memory\n", r->cmd);
        return CLI_EXIT_FAILED;
    }
    if (svc_state_from_msg(r->arena, m->orchestrationstate, s, &err) != DT_OK) {
        fprintf(stderr, "dtask %s: the server's state of '%s' is not readable: %s\n", r->cmd,
                id, err.message);
        return CLI_EXIT_FAILED;
    }
    *out = s;
    return CLI_EXIT_OK;
}

int cli_get_state(cli_remote *r, const char *id, bool with_payloads, dt_instance_state **out)
{
    Dtpb__GetInstanceRequest req = DTPB__GET_INSTANCE_REQUEST__INIT;
    req.instanceid = (char *)id;
    req.getinputsandoutputs = with_payloads;
    void *m = NULL;
    int rc = cli_rpc(r, "GetInstance", &req.base, &dtpb__get_instance_response__descriptor, id,
                     &m);
    if (rc != CLI_EXIT_OK)
        return rc;
    return cli_state_from_response(r, id, m, out);
}
