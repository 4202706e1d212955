/* time.c — wall-clock time in microseconds and its ISO 8601 form. */
#include <stdio.h>
#include <time.h>

#include "durabletask/core.h"

dt_time dt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (dt_time)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec dt_deadline_ms(int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return until;
}

void dt_time_format(dt_time t, char buf[32])
{
    time_t secs = (time_t)(t / 1000000);
    int ms = (int)((t % 1000000) / 1000);
    if (t < 0 && t % 1000000 != 0) {    /* floor for times before 1970 */
        secs -= 1;
        ms = (int)((t % 1000000 + 1000000) / 1000);
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* strftime keeps the compiler's truncation analysis quiet for wide years */
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, 32, "%.19s.%03dZ", date, ms);
}
