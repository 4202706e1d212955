/* instance_cmds.c — the operator commands on one instance: `dtask start`, `status`, `raise`,
 * `terminate`, `suspend`, `resume`, `rewind` and `restart`. Each checks its values here (JSON, times),
 * then makes one call to the server; remote.c turns failures into messages and exit codes. */
#include <stdio.h>

#include "remote.h"

/* ---- start ---------------------------------------------------------------------------------- */

static const cli_spec start_spec = {
    "start", "NAME", 1, 1,
    "usage: dtask start NAME [--id ID] [--input JSON] [--version V] [--start-at TIME]\n"
    "                   [--server ADDR:PORT]\n\n"
    "Starts orchestration NAME and prints its instance id.\n\n"
    "  --id ID              the instance id (default: a new UUID)\n"
    "  --input JSON         the orchestration's input, a JSON value ('\"Tokyo\"', '{\"n\":1}')\n"
    "  --version V          the orchestration's version (workers may take only some versions)\n"
    "  --start-at TIME      start later: ISO 8601 (2026-05-01T12:00:00Z; UTC unless an\n"
    "                       offset is given) or +SECONDS from now\n" CLI_SERVER_HELP};

int cli_start(int argc, char **argv)
{
    const char *id = NULL, *input = NULL, *at = NULL, *version = NULL;
    const cli_opt opts[] = {{"--id", &id, NULL},         {"--input", &input, NULL},
                            {"--version", &version, NULL}, {"--start-at", &at, NULL},
                            {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&start_spec, opts, argc, argv, &a, &rc))
        return rc;
    dt_time start_at = 0;
    if (input && !cli_check_json("start", "--input", input))
        return CLI_EXIT_USAGE;
    if (at && !cli_parse_time("start", "--start-at", at, &start_at))
        return CLI_EXIT_USAGE;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "start", &a)) != CLI_EXIT_OK)
        return rc;
    Dtpb__CreateInstanceRequest req = DTPB__CREATE_INSTANCE_REQUEST__INIT;
    Dtpb__StringValue in = DTPB__STRING_VALUE__INIT, ver = DTPB__STRING_VALUE__INIT;
    req.name = (char *)a.pos[0];
    if (version) {
        ver.value = (char *)version;
        req.version = &ver;
    }
    if (id)
        req.instanceid = (char *)id;
    if (input) {
        in.value = (char *)input;
        req.input = &in;
    }
    void *m = NULL;
    pb_builder b = PB_BUILDER(r.arena);
    req.scheduledstarttimestamp = pb_b_time(&b, start_at);
    if (b.status != DT_OK)
        rc = cli_usage_error("start", "--start-at: '%s' is out of range", at);
    else
        rc = cli_rpc(&r, "StartInstance", &req.base, &dtpb__create_instance_response__descriptor,
                     NULL, &m);
    if (rc == CLI_EXIT_OK)
        printf("%s\n", ((Dtpb__CreateInstanceResponse *)m)->instanceid);
    cli_remote_close(&r);
    return rc;
}

/* ---- status --------------------------------------------------------------------------------- */

static const cli_spec status_spec = {
    "status", "ID", 1, 1,
    "usage: dtask status ID [--json] [--no-payloads] [--server ADDR:PORT]\n\n"
    "Shows instance ID: name, status, times, input, output, custom status and failure.\n"
    "Exits 3 if there is no such instance.\n\n"
    "  --json               print one JSON object instead\n"
    "  --no-payloads        leave out input, output and custom status\n" CLI_SERVER_HELP};

int cli_status(int argc, char **argv)
{
    bool json = false, no_payloads = false;
    const cli_opt opts[] = {{"--json", NULL, &json}, {"--no-payloads", NULL, &no_payloads},
                            {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&status_spec, opts, argc, argv, &a, &rc))
        return rc;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "status", &a)) != CLI_EXIT_OK)
        return rc;
    dt_instance_state *s = NULL;
    rc = cli_get_state(&r, a.pos[0], !no_payloads, &s);
    if (rc == CLI_EXIT_OK && json) {
        cli_print_state_json(stdout, s, !no_payloads);
        fputc('\n', stdout);
    } else if (rc == CLI_EXIT_OK) {
        cli_print_state(stdout, s, !no_payloads);
    }
    cli_remote_close(&r);
    return rc;
}

/* ---- commands that change an instance ------------------------------------------------------- */

/* call_once: open, make one call about instance ID, close; prints nothing on success. */
static int call_once(const char *cmd, const cli_args *a, const char *method,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *desc,
                     const char *id)
{
    cli_remote r;
    int rc = cli_remote_open(&r, cmd, a);
    void *m = NULL;
    if (rc == CLI_EXIT_OK)
        rc = cli_rpc(&r, method, req, desc, id, &m);
    cli_remote_close(&r);
    return rc;
}

static const cli_spec raise_spec = {
    "raise", "ID EVENT", 2, 2,
    "usage: dtask raise ID EVENT [--data JSON] [--server ADDR:PORT]\n\n"
    "Sends event EVENT to instance ID, with JSON data.\n\n"
    "  --data JSON          the event's data, a JSON value (default: none)\n" CLI_SERVER_HELP};

int cli_raise(int argc, char **argv)
{
    const char *data = NULL;
    const cli_opt opts[] = {{"--data", &data, NULL}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&raise_spec, opts, argc, argv, &a, &rc))
        return rc;
    if (data && !cli_check_json("raise", "--data", data))
        return CLI_EXIT_USAGE;
    Dtpb__RaiseEventRequest req = DTPB__RAISE_EVENT_REQUEST__INIT;
    Dtpb__StringValue d = DTPB__STRING_VALUE__INIT;
    req.instanceid = (char *)a.pos[0];
    req.name = (char *)a.pos[1];
    if (data) {
        d.value = (char *)data;
        req.input = &d;
    }
    return call_once("raise", &a, "RaiseEvent", &req.base,
                     &dtpb__raise_event_response__descriptor, a.pos[0]);
}

static const cli_spec terminate_spec = {
    "terminate", "ID", 1, 1,
    "usage: dtask terminate ID [--output JSON] [--recursive] [--server ADDR:PORT]\n\n"
    "Ends instance ID as Terminated without running more of its code.\n\n"
    "  --output JSON        its output, a JSON value (default: none)\n"
    "  --recursive          terminate its running sub-orchestrations too\n" CLI_SERVER_HELP};

int cli_terminate(int argc, char **argv)
{
    const char *output = NULL;
    bool recursive = false;
    const cli_opt opts[] = {{"--output", &output, NULL}, {"--recursive", NULL, &recursive},
                            {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&terminate_spec, opts, argc, argv, &a, &rc))
        return rc;
    if (output && !cli_check_json("terminate", "--output", output))
        return CLI_EXIT_USAGE;
    Dtpb__TerminateRequest req = DTPB__TERMINATE_REQUEST__INIT;
    Dtpb__StringValue o = DTPB__STRING_VALUE__INIT;
    req.instanceid = (char *)a.pos[0];
    req.recursive = recursive;
    if (output) {
        o.value = (char *)output;
        req.output = &o;
    }
    return call_once("terminate", &a, "TerminateInstance", &req.base,
                     &dtpb__terminate_response__descriptor, a.pos[0]);
}

static const cli_spec suspend_spec = {
    "suspend", "ID", 1, 1,
    "usage: dtask suspend ID [--reason TEXT] [--server ADDR:PORT]\n\n"
    "Pauses instance ID; events that arrive meanwhile are kept for the resume.\n\n"
    "  --reason TEXT        recorded in its history\n" CLI_SERVER_HELP};

static const cli_spec resume_spec = {
    "resume", "ID", 1, 1,
    "usage: dtask resume ID [--reason TEXT] [--server ADDR:PORT]\n\n"
    "Continues suspended instance ID.\n\n"
    "  --reason TEXT        recorded in its history\n" CLI_SERVER_HELP};

/* pause_or_go: suspend and resume have the same shape; their requests the same layout. */
static int pause_or_go(const cli_spec *spec, int argc, char **argv, bool suspend)
{
    const char *reason = NULL;
    const cli_opt opts[] = {{"--reason", &reason, NULL}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(spec, opts, argc, argv, &a, &rc))
        return rc;
    Dtpb__StringValue why = DTPB__STRING_VALUE__INIT;
    why.value = (char *)reason;
    if (suspend) {
        Dtpb__SuspendRequest req = DTPB__SUSPEND_REQUEST__INIT;
        req.instanceid = (char *)a.pos[0];
        req.reason = reason ? &why : NULL;
        return call_once("suspend", &a, "SuspendInstance", &req.base,
                         &dtpb__suspend_response__descriptor, a.pos[0]);
    }
    Dtpb__ResumeRequest req = DTPB__RESUME_REQUEST__INIT;
    req.instanceid = (char *)a.pos[0];
    req.reason = reason ? &why : NULL;
    return call_once("resume", &a, "ResumeInstance", &req.base,
                     &dtpb__resume_response__descriptor, a.pos[0]);
}

int cli_suspend(int argc, char **argv)
{
    return pause_or_go(&suspend_spec, argc, argv, true);
}

int cli_resume(int argc, char **argv)
{
    return pause_or_go(&resume_spec, argc, argv, false);
}

static const cli_spec rewind_spec = {
    "rewind", "ID", 1, 1,
    "usage: dtask rewind ID [--reason TEXT] [--server ADDR:PORT]\n\n"
    "Runs failed instance ID again from its last good point: its failed activities and\n"
    "sub-orchestrations run again, what succeeded is kept. Exits 1 if it is not Failed.\n\n"
    "  --reason TEXT        recorded in its history\n" CLI_SERVER_HELP};

int cli_rewind(int argc, char **argv)
{
    const char *reason = NULL;
    const cli_opt opts[] = {{"--reason", &reason, NULL}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&rewind_spec, opts, argc, argv, &a, &rc))
        return rc;
    Dtpb__StringValue why = DTPB__STRING_VALUE__INIT;
    why.value = (char *)reason;
    Dtpb__RewindInstanceRequest req = DTPB__REWIND_INSTANCE_REQUEST__INIT;
    req.instanceid = (char *)a.pos[0];
    req.reason = reason ? &why : NULL;
    return call_once("rewind", &a, "RewindInstance", &req.base,
                     &dtpb__rewind_instance_response__descriptor, a.pos[0]);
}

static const cli_spec restart_spec = {
    "restart", "ID", 1, 1,
    "usage: dtask restart ID [--new-id] [--server ADDR:PORT]\n\n"
    "Runs finished instance ID's orchestration again with its original input and prints\n"
    "the id of the new run.\n\n"
    "  --new-id             run it under a new instance id (default: the same id)\n"
    CLI_SERVER_HELP};

int cli_restart(int argc, char **argv)
{
    bool new_id = false;
    const cli_opt opts[] = {{"--new-id", NULL, &new_id}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&restart_spec, opts, argc, argv, &a, &rc))
        return rc;
    cli_remote r;
    if ((rc = cli_remote_open(&r, "restart", &a)) != CLI_EXIT_OK)
        return rc;
    Dtpb__RestartInstanceRequest req = DTPB__RESTART_INSTANCE_REQUEST__INIT;
    req.instanceid = (char *)a.pos[0];
    req.restartwithnewinstanceid = new_id;
    void *m = NULL;
    rc = cli_rpc(&r, "RestartInstance", &req.base, &dtpb__restart_instance_response__descriptor,
                 a.pos[0], &m);
    if (rc == CLI_EXIT_OK)
        printf("%s\n", ((Dtpb__RestartInstanceResponse *)m)->instanceid);
    cli_remote_close(&r);
    return rc;
}
