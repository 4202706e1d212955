/* log.c — one line per notable event, to stderr: "2026-11-25T15:22:53.123Z INFO [id] text".
 * The level is a process-wide setting (dtask serve --log-level). */
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>

#include "durabletask/core.h"

static atomic_int min_level = DT_LOG_WARN;

static const char *const names[] = {"debug", "info", "warn", "error", "off"};

void dt_log_set_level(dt_log_level level)
{
    atomic_store(&min_level, (int)level);
}

dt_status dt_log_level_parse(const char *name, dt_log_level *out)
{
    for (int i = 0; name && i <= DT_LOG_OFF; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = (dt_log_level)i;
            return DT_OK;
        }
    }
    return DT_ERR_INVALID_ARG;
}

void dt_log(dt_log_level level, const char *instance_id, const char *fmt, ...)
{
    if ((int)level < atomic_load(&min_level) || level >= DT_LOG_OFF)
        return;
    char ts[32], text[1024], line[1200];
    dt_time_format(dt_now(), ts);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    static const char *const upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    int n = snprintf(line, sizeof line, "%s %-5s %s%.100s%s%s\n", ts, upper[level],
                     instance_id ? "[" : "", instance_id ? instance_id : "",
                     instance_id ? "] " : "", text);
    /* one write, so lines from different threads do not interleave */
    fwrite(line, 1, n < (int)sizeof line ? (size_t)n : sizeof line - 1, stderr);
}
