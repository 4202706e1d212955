/* serve.c — `dtask serve`: the hub on a SQLite file with the Durable Task gRPC service, so
 * the Durable Task SDKs can use it as their backend, and the HTTP API and dashboard beside it.
 * Runs until SIGINT or SIGTERM; then work handed to remote workers is given back for
 * redelivery and the database closed cleanly. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/listen.h"
#include "durabletask/grpc.h"
#include "durabletask/http.h"
#include "durabletask/httpcall.h"

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: dtask serve [--grpc-listen ADDR:PORT] [--http-listen ADDR:PORT] [--no-http]\n"
            "                   [--token-file PATH] [--db PATH|URL] [--db-schema NAME]\n"
            "                   [--lease SECONDS] [--log-level LEVEL]\n"
            "                   [--health-ping-interval SECONDS] [--task-hubs NAME[,NAME...]]\n"
            "                   [--http-activity-allow HOST[,HOST...] | --no-http-activity]\n"
            "                   [--public-host NAME[,NAME...]] [--tls-cert PATH --tls-key PATH]\n"
            "                   [--max-calls N] [--max-streams N] [--max-calls-per-client N]\n"
            "                   [--max-streams-per-client N] [--request-timeout SECONDS]\n"
            "                   [--max-held-mb N] [--send-timeout SECONDS] [--max-db-mb N]\n"
            "                   [--max-connections N] [--max-per-client N]\n"
            "                   [--idle-timeout SECONDS]\n"
            "                   [--http-max-connections N] [--http-max-per-client N]\n"
            "                   [--no-completion-stream]\n\n"
            "Runs a hub with the Durable Task gRPC service (TaskHubSidecarService) and the HTTP\n"
            "API and dashboard. Point any Durable Task SDK at the gRPC address as its backend;\n"
            "open the HTTP address in a browser.\n\n"
            "  --grpc-listen ADDR:PORT  gRPC address (default " DT_DEFAULT_GRPC_ADDRESS ", loopback only)\n"
            "  --http-listen ADDR:PORT  HTTP address (default " DT_DEFAULT_HTTP_ADDRESS ", loopback only)\n"
            "  --no-http                serve no HTTP\n"
            "  --token-file PATH        require \"Authorization: Bearer <token>\" on HTTP and gRPC,\n"
            "                           with the token in PATH (surrounding whitespace trimmed)\n"
            "  --db PATH|URL            a SQLite file (default " DT_DEFAULT_DB_PATH "), or a\n"
            "                           PostgreSQL database postgres://USER@HOST:PORT/DB that\n"
            "                           many nodes may share\n"
            "  --db-schema NAME         PostgreSQL: the schema of the default hub's tables\n"
            "                           (default dtask; hub NAME's: <schema>_NAME)\n"
            "  --lease SECONDS          how long a work item is leased before another node or\n"
            "                           worker may take it, unless renewed (default 30)\n"
            "  --log-level LEVEL        debug, info (default), warn, error or off; one line per\n"
            "                           notable event, with level and instance id, to stderr\n"
            "  --health-ping-interval SECONDS\n"
            "                           send an idle work item stream a HealthPing this often\n"
            "                           (default 30; some SDKs drop a stream silent for 120)\n"
            "  --task-hubs NAME[,NAME...]\n"
            "                           serve only these task hubs (the \"taskhub\" metadata of\n"
            "                           gRPC calls, the taskHub parameter of HTTP requests);\n"
            "                           without it a hub is created on first use. The default\n"
            "                           hub (no name given) keeps --db; hub NAME is in\n"
            "                           <db>.hubs/NAME.db (PostgreSQL: schema <schema>_NAME)\n"
            "  --http-activity-allow HOST[,HOST...]\n"
            "                           run the built-in activity " DT_HTTP_ACTIVITY_NAME " (durable\n"
            "                           HTTP calls) for these hosts only: names, IP addresses or\n"
            "                           *.domain, any port, http and https; every redirect target\n"
            "                           is checked too. Without it outbound HTTP is off: the\n"
            "                           activity fails at once with " DT_HTTP_ERR_DISABLED ".\n"
            "                           Served for the default hub, or the --task-hubs hubs\n"
            "  --no-http-activity       do not take " DT_HTTP_ACTIVITY_NAME " work at all (leave it\n"
            "                           to a worker that registers it)\n"
            "  --no-completion-stream   do not serve the C SDK worker's completion stream (its\n"
            "                           completions then come as a unary call each, as the\n"
            "                           other SDKs send them); for comparisons\n"
            "  --tls-cert PATH, --tls-key PATH\n"
            "                           serve gRPC and HTTP over TLS with this certificate (chain)\n"
            "                           and private key, both PEM files\n"
            "  --public-host NAME[,NAME...]\n"
            "                           host names the HTTP API answers to besides IP addresses\n"
            "                           and localhost (a request naming any other Host is refused,\n"
            "                           so a web page cannot reach the API by DNS rebinding)\n"
            "\nLimits (a client beyond them is refused at once, and the others keep being served):\n"
            "  --max-calls N            gRPC calls served at once (default %d); more are answered\n"
            "                           RESOURCE_EXHAUSTED\n"
            "  --max-streams N          of them, streams (default %d; each SDK worker holds a\n"
            "                           GetWorkItems stream, plus a few calls at a time; the C\n"
            "                           SDK's worker a completion stream too)\n"
            "  --max-calls-per-client N, --max-streams-per-client N\n"
            "                           of them, from one IP address (default half of each;\n"
            "                           every client on this machine is 127.0.0.1)\n"
            "  --max-held-mb N          megabytes of messages held for clients at once, by gRPC\n"
            "                           and by HTTP each (default %zu): requests being served,\n"
            "                           answers not yet sent (a client that does not read keeps\n"
            "                           its answer); a request, or a read's answer over 64 KB,\n"
            "                           beyond it is refused (RESOURCE_EXHAUSTED, HTTP 503), a\n"
            "                           work item waits; and what reading JSON payloads holds,\n"
            "                           for the whole server\n"
            "  --max-db-mb N            SQLite: each task hub's database at most N MiB, its log\n"
            "                           an eighth of that (default: no limit but the disk); at\n"
            "                           nine tenths new instances, events and signals are\n"
            "                           refused as on a full disk (HTTP 507, RESOURCE_EXHAUSTED)\n"
            "                           until purges make room; the last tenth is for ending\n"
            "                           what is stored (at nineteen twentieths, only episodes\n"
            "                           that end their instance go in; terminate, purge)\n"
            "  --send-timeout SECONDS   while over half of --max-held-mb is held, a gRPC answer\n"
            "                           or stream message its client has not taken within this\n"
            "                           (default %d) ends its call (HTTP closes a connection\n"
            "                           with no progress in 60)\n"
            "  --request-timeout SECONDS\n"
            "                           a gRPC call's request message, an HTTP request's headers\n"
            "                           and body must arrive within this (default %d); slower\n"
            "                           clients are cut off\n"
            "  --max-connections N      gRPC connections kept at once (default %d, at most a\n"
            "                           quarter of the open-file limit, which serve raises to\n"
            "                           its hard limit); one past it is closed at once (TLS:\n"
            "                           not counted, gRPC's own listener takes them)\n"
            "  --max-per-client N       of them, from one IP address (default %d, or\n"
            "                           --max-connections if less)\n"
            "  --idle-timeout SECONDS   a gRPC connection with no call this long is closed\n"
            "                           (default %d; clients connect again when they next call)\n"
            "  --http-max-connections N HTTP connections at once (default %d, at most half the\n"
            "                           open-file limit)\n"
            "  --http-max-per-client N  HTTP connections at once from one IP address (default %d)\n",
            DT_GRPC_MAX_CALLS, DT_GRPC_MAX_STREAMS, DT_GRPC_MAX_HELD >> 20,
            DT_GRPC_SEND_TIMEOUT_MS / 1000,
            DT_REQUEST_TIMEOUT_MS / 1000, DT_GRPC_MAX_CONNECTIONS, DT_GRPC_MAX_PER_CLIENT,
            DT_GRPC_IDLE_TIMEOUT_MS / 1000, DT_HTTP_MAX_CONNECTIONS, DT_HTTP_MAX_PER_CLIENT);
}

/* timeout_arg: FLAG's ARG, seconds from 0.1 to MAX_S, into *MS; false after saying what was
 * wrong. */
static bool timeout_arg(const char *flag, const char *arg, int64_t max_s, int64_t *ms)
{
    if (!cli_parse_seconds("serve", flag, arg, ms))
        return false;
    if (*ms < 100 || *ms > max_s * 1000) {
        fprintf(stderr, "dtask serve: %s must be seconds from 0.1 to %lld (got '%s')\n", flag,
                (long long)max_s, arg);
        return false;
    }
    return true;
}

/* read_pem: the PEM file PATH (at most 1 MiB) into *OUT (malloc'd); false after saying what
 * was wrong. */
static bool read_pem(const char *path, const char *what, char **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    char *buf = f ? malloc((1u << 20) + 1) : NULL;
    size_t n = buf ? fread(buf, 1, 1u << 20, f) : 0;
    bool ok = buf && !ferror(f) && n > 0 && n < (1u << 20);
    if (f)
        fclose(f);
    if (!ok) {
        fprintf(stderr, "dtask serve: cannot read the TLS %s %s%s%s\n", what, path,
                f == NULL ? ": " : buf == NULL ? ": out of memory" : " (empty, or over 1 MiB)",
                f == NULL ? strerror(errno) : "");
        free(buf);
        return false;
    }
    buf[n] = '\0';
    if (strstr(buf, "-----BEGIN ") == NULL) {
        fprintf(stderr, "dtask serve: the TLS %s %s is not PEM\n", what, path);
        free(buf);
        return false;
    }
    *out = buf;
    return true;
}

/* split_hubs: the names of --task-hubs A,B,... into NAMES (pointing into *BUF, malloc'd);
 * false after saying what was wrong. */
static bool split_hubs(const char *list, char **buf, const char **names, size_t *n)
{
    *n = 0;
    if ((*buf = strdup(list)) == NULL) {
        fprintf(stderr, "dtask serve: out of memory\n");
        return false;
    }
    for (char *save = NULL, *t = strtok_r(*buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        dt_error err = {0};
        if (dt_task_hub_validate(t, &err) != DT_OK) {
            fprintf(stderr, "dtask serve: --task-hubs: %s\n", err.message);
            return false;
        }
        if (*n == DT_TASK_HUBS_MAX) {
            fprintf(stderr, "dtask serve: --task-hubs names more than %d hubs\n",
                    DT_TASK_HUBS_MAX);
            return false;
        }
        names[(*n)++] = t;
    }
    if (*n == 0) {
        fprintf(stderr, "dtask serve: --task-hubs names no hub\n");
        return false;
    }
    return true;
}

/* within: is VALUE (FLAG, 0 when not given) at most LIMIT (that of LIMIT_FLAG)? Says why not. */
static bool within(const char *flag, long value, const char *limit_flag, long limit)
{
    if (value <= limit)
        return true;
    fprintf(stderr, "dtask serve: %s (%ld) cannot be more than %s (%ld)\n", flag, value,
            limit_flag, limit);
    return false;
}

int cli_serve(int argc, char **argv)
{
    const char *listen = DT_DEFAULT_GRPC_ADDRESS;
    const char *http_listen = DT_DEFAULT_HTTP_ADDRESS;
    const char *token_file = NULL;
    bool http = true;
    const char *db = DT_DEFAULT_DB_PATH;
    int64_t ping_ms = 0;
    const char *task_hubs = NULL, *db_schema = NULL;
    int64_t lease_ms = 0;
    const char *http_allow = NULL;
    const char *public_hosts = NULL;
    const char *tls_cert_file = NULL, *tls_key_file = NULL;
    bool http_activity = true, completion_stream = true;
    long max_calls = 0, max_streams = 0, http_max_conns = 0, http_max_per_client = 0;
    long max_client_calls = 0, max_client_streams = 0;
    long max_connections = 0, max_per_client = 0;
    long max_held_mb = 0, max_db_mb = 0;
    int64_t request_timeout_ms = 0, send_timeout_ms = 0, idle_timeout_ms = 0;
    dt_log_set_level(DT_LOG_INFO);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--grpc-listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--http-listen") == 0 && i + 1 < argc) {
            http_listen = argv[++i];
        } else if (strcmp(argv[i], "--no-http") == 0) {
            http = false;
        } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
            token_file = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            dt_log_level level;
            if (dt_log_level_parse(argv[++i], &level) != DT_OK) {
                fprintf(stderr, "dtask serve: --log-level must be debug, info, warn, error or "
                                "off (got '%s')\n", argv[i]);
                return 2;
            }
            dt_log_set_level(level);
        } else if (strcmp(argv[i], "--health-ping-interval") == 0 && i + 1 < argc) {
            char *end = NULL;
            double secs = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(secs >= 0.05 && secs <= 3600)) {
                fprintf(stderr, "dtask serve: --health-ping-interval must be seconds from 0.05 "
                                "to 3600 (got '%s')\n", argv[i]);
                return 2;
            }
            ping_ms = (int64_t)(secs * 1000);
        } else if (strcmp(argv[i], "--lease") == 0 && i + 1 < argc) {
            char *end = NULL;
            double secs = strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(secs >= 1 && secs <= 3600)) {
                fprintf(stderr, "dtask serve: --lease must be seconds from 1 to 3600 (got '%s')\n",
                        argv[i]);
                return 2;
            }
            lease_ms = (int64_t)(secs * 1000);
        } else if (strcmp(argv[i], "--db-schema") == 0 && i + 1 < argc) {
            db_schema = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--task-hubs") == 0 && i + 1 < argc) {
            task_hubs = argv[++i];
        } else if (strcmp(argv[i], "--http-activity-allow") == 0 && i + 1 < argc) {
            http_allow = argv[++i];
        } else if (strcmp(argv[i], "--no-http-activity") == 0) {
            http_activity = false;
        } else if (strcmp(argv[i], "--no-completion-stream") == 0) {
            completion_stream = false;
        } else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc) {
            tls_cert_file = argv[++i];
        } else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc) {
            tls_key_file = argv[++i];
        } else if (strcmp(argv[i], "--public-host") == 0 && i + 1 < argc) {
            public_hosts = argv[++i];
        } else if (strcmp(argv[i], "--max-calls") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-calls", argv[++i], 100000, &max_calls))
                return 2;
        } else if (strcmp(argv[i], "--max-streams") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-streams", argv[++i], 100000, &max_streams))
                return 2;
        } else if (strcmp(argv[i], "--max-calls-per-client") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-calls-per-client", argv[++i], 100000,
                                 &max_client_calls))
                return 2;
        } else if (strcmp(argv[i], "--max-streams-per-client") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-streams-per-client", argv[++i], 100000,
                                 &max_client_streams))
                return 2;
        } else if (strcmp(argv[i], "--max-db-mb") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-db-mb", argv[++i], 1 << 24, &max_db_mb))
                return 2;
        } else if (strcmp(argv[i], "--max-held-mb") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-held-mb", argv[++i], 1 << 20, &max_held_mb))
                return 2;
        } else if (strcmp(argv[i], "--http-max-connections") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--http-max-connections", argv[++i], 100000,
                                 &http_max_conns))
                return 2;
        } else if (strcmp(argv[i], "--http-max-per-client") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--http-max-per-client", argv[++i], 100000,
                                 &http_max_per_client))
                return 2;
        } else if (strcmp(argv[i], "--request-timeout") == 0 && i + 1 < argc) {
            if (!timeout_arg("--request-timeout", argv[++i], 3600, &request_timeout_ms))
                return 2;
        } else if (strcmp(argv[i], "--send-timeout") == 0 && i + 1 < argc) {
            if (!timeout_arg("--send-timeout", argv[++i], 3600, &send_timeout_ms))
                return 2;
        } else if (strcmp(argv[i], "--idle-timeout") == 0 && i + 1 < argc) {
            if (!timeout_arg("--idle-timeout", argv[++i], 86400, &idle_timeout_ms))
                return 2;
        } else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-connections", argv[++i], 1000000,
                                 &max_connections))
                return 2;
        } else if (strcmp(argv[i], "--max-per-client") == 0 && i + 1 < argc) {
            if (!cli_parse_count("serve", "--max-per-client", argv[++i], 1000000,
                                 &max_per_client))
                return 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            serve_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "dtask serve: unknown or incomplete argument '%s'\n", argv[i]);
            serve_usage(stderr);
            return 2;
        }
    }
    long calls = max_calls ? max_calls : DT_GRPC_MAX_CALLS;
    long streams = max_streams ? max_streams : DT_GRPC_MAX_STREAMS;
    if (!within("--max-streams", max_streams, "--max-calls", calls) ||
        !within("--max-calls-per-client", max_client_calls, "--max-calls", calls) ||
        !within("--max-streams-per-client", max_client_streams, "--max-streams",
                streams < calls ? streams : calls) ||
        !within("--max-per-client", max_per_client, "--max-connections",
                max_connections ? max_connections : DT_GRPC_MAX_CONNECTIONS) ||
        !within("--http-max-per-client", http_max_per_client, "--http-max-connections",
                http_max_conns ? http_max_conns : DT_HTTP_MAX_CONNECTIONS))
        return 2;
    if (http_allow && !http_activity) {
        fprintf(stderr, "dtask serve: --http-activity-allow and --no-http-activity exclude "
                        "each other\n");
        return 2;
    }
    if ((tls_cert_file == NULL) != (tls_key_file == NULL)) {
        fprintf(stderr, "dtask serve: --tls-cert and --tls-key go together\n");
        return 2;
    }
    core_raise_fd_limit();   /* the servers keep their connections within it */
    char *tls_cert = NULL, *tls_key = NULL;
    if (tls_cert_file && (!read_pem(tls_cert_file, "certificate", &tls_cert) ||
                          !read_pem(tls_key_file, "key", &tls_key))) {
        free(tls_cert);
        return 2;
    }
    /* outbound HTTP: only to the hosts named; checked before anything starts */
    dt_http_activity *http_act = NULL;
    dt_http_activity_options hao = {.allow = http_allow};
    dt_error herr = {0};
    if (http_activity && dt_http_activity_new(&hao, &http_act, &herr) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", herr.message);
        free(tls_cert);
        free(tls_key);
        return 2;
    }
    /* one token guards both services */
    char *token = NULL;
    if (token_file) {
        char msg[512];
        if (!cli_read_token(token_file, &token, msg, sizeof msg)) {
            fprintf(stderr, "dtask serve: %s\n", msg);
            dt_http_activity_free(http_act);
            free(tls_cert);
            free(tls_key);
            return 2;
        }
    }
    /* block the stop signals in every thread; this one waits for them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    dt_error err = {0};
    dt_hub_set *hubs = NULL;
    dt_grpc_server *srv = NULL;
    dt_http_server *web = NULL;
    dt_http_activity_host *http_host = NULL;
    char *names_buf = NULL, *hosts_buf = NULL;
    const char *names[DT_TASK_HUBS_MAX];
    const char *hosts[32];
    size_t n_hosts = 0;
    if (public_hosts && (hosts_buf = strdup(public_hosts)) == NULL)
        goto done;
    for (char *save = NULL, *t = hosts_buf ? strtok_r(hosts_buf, ",", &save) : NULL; t;
         t = strtok_r(NULL, ",", &save)) {
        if (n_hosts == sizeof hosts / sizeof hosts[0]) {
            fprintf(stderr, "dtask serve: --public-host names more than %zu hosts\n", n_hosts);
            rc = 2;
            goto done;
        }
        hosts[n_hosts++] = t;
    }
    if (db_schema && !dt_store_is_postgres(db)) {
        fprintf(stderr, "dtask serve: --db-schema is for a PostgreSQL --db only\n");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    if (max_db_mb && dt_store_is_postgres(db)) {
        fprintf(stderr, "dtask serve: --max-db-mb is for a SQLite --db only (PostgreSQL: use "
                        "its own quotas)\n");
        rc = CLI_EXIT_USAGE;
        goto done;
    }
    /* before anything uses jansson: what it holds to read JSON is bounded like messages */
    dt_json_limit_held(max_held_mb ? (size_t)max_held_mb << 20 : DT_GRPC_MAX_HELD);
    dt_hub_set_options ho = {.hub = {.db_path = db, .db_schema = db_schema, .lease_ms = lease_ms,
                                     .max_db_bytes = (uint64_t)max_db_mb << 20}};
    if (task_hubs && !split_hubs(task_hubs, &names_buf, names, &ho.n_allowed)) {
        rc = 2;
        goto done;
    }
    ho.allowed = task_hubs ? names : NULL;
    if (dt_hub_set_open(&ho, &hubs, &err) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", err.message);
        goto done;
    }
    dt_grpc_options go = {.listen = listen, .token = token, .health_ping_ms = ping_ms,
                          .hubs = hubs, .tls_cert_pem = tls_cert, .tls_key_pem = tls_key,
                          .max_calls = (int)max_calls, .max_streams = (int)max_streams,
                          .max_calls_per_client = (int)max_client_calls,
                          .max_streams_per_client = (int)max_client_streams,
                          .request_timeout_ms = request_timeout_ms,
                          .max_held = (size_t)max_held_mb << 20,
                          .send_timeout_ms = send_timeout_ms,
                          .max_connections = (int)max_connections,
                          .max_per_client = (int)max_per_client,
                          .idle_timeout_ms = idle_timeout_ms,
                          .no_completion_stream = !completion_stream};
    if (dt_grpc_server_start(NULL, &go, &srv, &err) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", err.message);
        goto done;
    }
    dt_http_options wo = {.listen = http_listen, .token = token, .hubs = hubs,
                          .public_hosts = hosts, .n_public_hosts = n_hosts,
                          .tls_cert_pem = tls_cert, .tls_key_pem = tls_key,
                          .max_connections = (unsigned)http_max_conns,
                          .max_per_client = (unsigned)http_max_per_client,
                          .request_timeout_ms = request_timeout_ms,
                          .max_held = (size_t)max_held_mb << 20};
    if (http && dt_http_server_start(NULL, &wo, &web, &err) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", err.message);
        goto done;
    }
    if (http_act && dt_http_activity_host_start(hubs, task_hubs ? names : NULL,
                                                task_hubs ? ho.n_allowed : 0, http_act, 0,
                                                &http_host, &err) != DT_OK) {
        fprintf(stderr, "dtask serve: %s\n", err.message);
        goto done;
    }
    char http_where[300];
    if (web)
        snprintf(http_where, sizeof http_where, "HTTP%s on %s (port %d)", tls_cert ? "S" : "",
                 http_listen, dt_http_server_port(web));
    else
        snprintf(http_where, sizeof http_where, "no HTTP");
    fprintf(stderr, "dtask serve: gRPC%s on %s (port %d), %s, database %s%s; outbound HTTP %s%s\n",
            tls_cert ? " over TLS" : "", listen, dt_grpc_server_port(srv), http_where, db,
            token ? "; bearer token required" : "",
            !http_activity ? "left to workers" : http_allow ? "to " : "off",
            http_allow ? http_allow : "");
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "dtask serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
done:
    dt_http_activity_host_stop(http_host);
    dt_http_server_stop(web);
    dt_grpc_server_stop(srv);
    dt_hub_set_close(hubs);
    dt_http_activity_free(http_act);
    free(names_buf);
    free(hosts_buf);
    free(token);
    free(tls_cert);
    free(tls_key);
    return rc;
}
