/* args.c — the operator commands' option parser and the checks of their values (JSON, times,
 * statuses, counts). Every problem is reported on stderr naming the command and the option,
 * and comes back as exit code 2, so each command only says what it accepts. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dtask %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try 'dtask %s --help')\n", cmd);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

static const cli_opt *find_opt(const cli_opt *opts, const char *arg, size_t len)
{
    for (const cli_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0)
            return o;
    return NULL;
}

/* take_opt: ARGV[*I] is an option of OPTS or a common one (--server, --token-file, --taskhub);
 * store it
 * in OUT, advancing *I past its value. False after reporting a usage error. */
static bool take_opt(const cli_spec *spec, const cli_opt *opts, int argc, char **argv, int *i,
                     cli_args *out)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const cli_opt common[] = {{"--server", &out->server, NULL},
                              {"--token-file", &out->token_file, NULL},
                              {"--taskhub", &out->task_hub, NULL}, {NULL, NULL, NULL}};
    const cli_opt *o = find_opt(opts, arg, len);
    if (o == NULL)
        o = find_opt(common, arg, len);
    if (o == NULL) {
        cli_usage_error(spec->cmd, "unknown option '%.*s'", (int)len, arg);
        return false;
    }
    if (o->flag) {
        if (eq) {
            cli_usage_error(spec->cmd, "%s takes no value", o->name);
            return false;
        }
        *o->flag = true;
        return true;
    }
    if (eq) {
        *o->value = eq + 1;
    } else if (*i + 1 < argc) {
        *o->value = argv[++*i];
    } else {
        cli_usage_error(spec->cmd, "%s needs a value", o->name);
        return false;
    }
    return true;
}

bool cli_parse(const cli_spec *spec, const cli_opt *opts, int argc, char **argv, cli_args *out,
               int *rc)
{
    memset(out, 0, sizeof *out);
    const char *env = getenv("DTASK_SERVER");
    out->server = env && env[0] ? env : DT_DEFAULT_GRPC_ADDRESS;
    env = getenv("DTASK_TOKEN_FILE");
    out->token_file = env && env[0] ? env : NULL;
    env = getenv("DTASK_TASKHUB");
    out->task_hub = env && env[0] ? env : NULL;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
            fputs(spec->usage, stdout);
            *rc = CLI_EXIT_OK;
            return false;
        }
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (!options_done && arg[0] == '-' && arg[1] != '\0') {
            if (!take_opt(spec, opts, argc, argv, &i, out)) {
                *rc = CLI_EXIT_USAGE;
                return false;
            }
        } else if (out->n_pos < spec->max_args && out->n_pos < CLI_MAX_ARGS) {
            out->pos[out->n_pos++] = arg;
        } else {
            *rc = cli_usage_error(spec->cmd, "unexpected argument '%s'", arg);
            return false;
        }
    }
    if (out->n_pos < spec->min_args) {
        *rc = cli_usage_error(spec->cmd, "missing %s", spec->args);
        return false;
    }
    if (out->server[0] == '\0') {
        *rc = cli_usage_error(spec->cmd, "--server is empty");
        return false;
    }
    return true;
}

bool cli_check_json(const char *cmd, const char *flag, const char *text)
{
    dt_error err = {0};
    if (dt_json_validate(text, flag, &err) == DT_OK)
        return true;
    fprintf(stderr, "dtask %s: %s\n", cmd, err.message);
    return false;
}

/* parse_relative: "+N" or "-N" seconds (fractions allowed) from now. */
static bool parse_relative(const char *text, dt_time *out)
{
    char *end = NULL;
    errno = 0;
    double secs = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || secs != secs || secs > 1e11 || secs < -1e11)
        return false;
    *out = dt_now() + (dt_time)(secs * 1e6);
    return true;
}

bool cli_parse_time(const char *cmd, const char *flag, const char *text, dt_time *out)
{
    bool ok = (text[0] == '+' || text[0] == '-') ? parse_relative(text, out)
                                                 : dt_time_parse(text, out) == DT_OK;
    if (!ok)
        cli_usage_error(cmd, "%s: '%s' is not a time: give ISO 8601 (2026-05-01T12:00:00Z) or "
                        "+/-SECONDS from now", flag, text);
    return ok;
}

bool cli_parse_statuses(const char *cmd, const char *flag, const char *text,
                        dt_runtime_status out[8], size_t *n)
{
    *n = 0;
    const char *p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        char name[32];
        if (len == 0 || len >= sizeof name || *n == 8) {
            cli_usage_error(cmd, "%s: '%s' is not a list of statuses (Running, Completed, "
                            "Failed, Terminated, Pending, Suspended, ...)", flag, text);
            return false;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (dt_runtime_status_parse(name, &out[*n]) != DT_OK) {
            cli_usage_error(cmd, "%s: no status '%s' (Running, Completed, ContinuedAsNew, "
                            "Failed, Canceled, Terminated, Pending, Suspended)", flag, name);
            return false;
        }
        ++*n;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

bool cli_parse_count(const char *cmd, const char *flag, const char *text, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
        cli_usage_error(cmd, "%s: '%s' is not a whole number from 1 to %ld", flag, text, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *cmd, const char *flag, const char *text, int64_t *ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v > 0) || v > 1e9) {
        cli_usage_error(cmd, "%s: '%s' is not a positive number of seconds", flag, text);
        return false;
    }
    *ms = (int64_t)(v * 1000);
    if (*ms == 0)
        *ms = 1;
    return true;
}
