/* testutil.c — temporary directories and small helpers for the tests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

static void mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

const char *test_tmpdir(const char *name)
{
    static char buf[1024];
    static unsigned counter;
    const char *root = getenv("DT_TEST_TMP");
    if (root == NULL || root[0] == '\0')
        root = "/tmp/dt-test";
    snprintf(buf, sizeof buf, "%s/%s-%d-%u-%ld", root, name, (int)getpid(), counter++,
             (long)time(NULL));
    mkdirs(buf);
    return buf;
}

const char *test_path(const char *dir, const char *file)
{
    static char bufs[4][1024];
    static unsigned next;
    char *b = bufs[next++ % 4];
    snprintf(b, 1024, "%s/%s", dir, file);
    return b;
}

void test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

char *test_json_string(size_t n, char c)
{
    char *s = malloc(n + 3);
    assert_non_null(s);
    s[0] = '"';
    memset(s + 1, c, n);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}
