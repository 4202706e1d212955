/* time.c — wall-clock time in microseconds, and its ISO 8601 form both ways: the one
 * formatter and the one parser every surface (HTTP, CLI) uses. */
#include <stdio.h>
#include <string.h>
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
    /* the year has four digits, zero-padded ("0001"), as ISO 8601 and dt_time_parse have
     * it; a year outside 0..9999 (beyond what the protocol carries) is written as it is */
    long long year = (long long)tm.tm_year + 1900;
    char text[64];
    snprintf(text, sizeof text, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    size_t n = strlen(text) < 31 ? strlen(text) : 31;
    memcpy(buf, text, n);
    buf[n] = '\0';
}

/* digits: exactly N decimal digits at *P as a number (advancing *P), or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

/* days_from_civil: days since 1970-01-01 of the proleptic Gregorian date Y-M-D (Howard
 * Hinnant's algorithm: exact for every year, no time_t or time zone involved). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* parse_clock: HH:MM[:SS[.fraction]] at *P into seconds of the day and microseconds. */
static bool parse_clock(const char **p, int64_t *secs, int64_t *us)
{
    int h = digits(p, 2);
    if (h < 0 || h > 23 || *(*p)++ != ':')
        return false;
    int mi = digits(p, 2);
    if (mi < 0 || mi > 59)
        return false;
    int sec = 0;
    if (**p == ':') {
        ++*p;
        sec = digits(p, 2);
        if (sec < 0 || sec > 60)   /* 60: a leap second, counted as the next one */
            return false;
        if (**p == '.' || **p == ',') {
            ++*p;
            int n = 0;
            for (int64_t scale = 100000; **p >= '0' && **p <= '9'; ++*p, n++) {
                *us += (**p - '0') * scale;
                scale /= 10;
            }
            if (n == 0)
                return false;
        }
    }
    *secs = h * 3600 + mi * 60 + sec;
    return true;
}

/* parse_zone: Z, +HH:MM, +HHMM, -HH:MM or -HHMM at P (the end of the text) as seconds east
 * of UTC; nothing at all is UTC. */
static bool parse_zone(const char *p, int64_t *offset)
{
    *offset = 0;
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0';
    if (*p != '+' && *p != '-')
        return *p == '\0';
    int sign = *p++ == '-' ? -1 : 1;
    int oh = digits(&p, 2);
    if (*p == ':')
        p++;
    int om = digits(&p, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59 || *p != '\0')
        return false;
    *offset = sign * (oh * 3600 + om * 60);
    return true;
}

dt_time dt_time_bound(dt_time t)
{
    return t == 0 ? -1 : t;
}

dt_status dt_time_parse(const char *text, dt_time *out)
{
    if (text == NULL || out == NULL)
        return DT_ERR_INVALID_ARG;
    const char *p = text;
    int y = digits(&p, 4);
    if (y < 1 || *p++ != '-')
        return DT_ERR_INVALID_ARG;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-')
        return DT_ERR_INVALID_ARG;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int d = digits(&p, 2);
    if (d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap_year(y)))
        return DT_ERR_INVALID_ARG;
    int64_t secs = 0, us = 0, offset = 0;
    if ((*p == 'T' || *p == 't' || *p == ' ') && (p++, !parse_clock(&p, &secs, &us)))
        return DT_ERR_INVALID_ARG;
    if (!parse_zone(p, &offset))
        return DT_ERR_INVALID_ARG;
    /* years 1..9999 and offsets under a day keep this far from overflowing */
    dt_time t = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + secs - offset) *
                 1000000) + us;
    if (t < DT_TIME_MIN || t > DT_TIME_MAX)
        return DT_ERR_INVALID_ARG;
    *out = t;
    return DT_OK;
}
