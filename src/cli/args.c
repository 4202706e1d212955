/* args.c — the operator commands' option parser and the checks of their values (JSON, times,
 * statuses, counts). Every problem is reported on stderr naming the command and the option,
 * and comes back as exit code 2, so each command only says what it accepts. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

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

/* take_opt: ARGV[*I] is an option of OPTS or a common one (--server, --token-file); store it
 * in OUT, advancing *I past its value. False after reporting a usage error. */
static bool take_opt(const cli_spec *spec, const cli_opt *opts, int argc, char **argv, int *i,
                     cli_args *out)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const cli_opt common[] = {{"--server", &out->server, NULL},
                              {"--token-file", &out->token_file, NULL}, {NULL, NULL, NULL}};
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
    out->server = env && env[0] ? env : CLI_DEFAULT_SERVER;
    env = getenv("DTASK_TOKEN_FILE");
    out->token_file = env && env[0] ? env : NULL;
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

/* digits: N decimal digits at *P (advanced past them) as a number; -1 if not N digits. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

/* parse_offset: "Z", "+HH:MM", "+HHMM", "-HH:MM" or "" (UTC) at P, in seconds east of UTC. */
static bool parse_offset(const char *p, long *secs)
{
    *secs = 0;
    if (*p == '\0' || strcmp(p, "Z") == 0 || strcmp(p, "z") == 0)
        return true;
    if (*p != '+' && *p != '-')
        return false;
    int sign = *p++ == '-' ? -1 : 1;
    int hh = digits(&p, 2);
    if (*p == ':')
        p++;
    int mm = digits(&p, 2);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || *p != '\0')
        return false;
    *secs = sign * (hh * 3600L + mm * 60L);
    return true;
}

/* skip: if *P is C, step past it. */
static bool skip(const char **p, char c)
{
    if (**p != c)
        return false;
    ++*p;
    return true;
}

/* parse_clock: "HH:MM[:SS[.fraction]]" at *P into TM and *MICROS. */
static bool parse_clock(const char **p, struct tm *tm, long *micros)
{
    tm->tm_hour = digits(p, 2);
    tm->tm_min = skip(p, ':') ? digits(p, 2) : -1;
    if (skip(p, ':'))
        tm->tm_sec = digits(p, 2);
    if (tm->tm_hour < 0 || tm->tm_hour > 23 || tm->tm_min < 0 || tm->tm_min > 59 ||
        tm->tm_sec < 0 || tm->tm_sec > 59)
        return false;
    if (skip(p, '.') || skip(p, ',')) {
        if (!isdigit((unsigned char)**p))
            return false;
        for (long scale = 100000; isdigit((unsigned char)**p); ++*p, scale /= 10)
            *micros += (**p - '0') * scale;
    }
    return true;
}

/* parse_iso: YYYY-MM-DD, optionally followed by THH:MM[:SS[.fraction]] and an offset. */
static bool parse_iso(const char *p, dt_time *out)
{
    struct tm tm = {0};
    int y = digits(&p, 4);
    int mo = skip(&p, '-') ? digits(&p, 2) : -1;
    int d = skip(&p, '-') ? digits(&p, 2) : -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    long micros = 0, offset = 0;
    if ((skip(&p, 'T') || skip(&p, 't') || skip(&p, ' ')) && !parse_clock(&p, &tm, &micros))
        return false;
    if (!parse_offset(p, &offset))
        return false;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d)   /* timegm moved a day that does not exist (Feb 30) */
        return false;
    *out = ((dt_time)t - offset) * 1000000 + micros;
    return true;
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
                                                 : parse_iso(text, out);
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
