/* token.c — the bearer token a server requires (`dtask serve --token-file`) and the operator
 * commands send (`--token-file` or $DTASK_TOKEN_FILE): read from a file, so it never shows in
 * a process listing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define TOKEN_FILE_MAX 4096

bool cli_read_token(const char *path, char **out, char *msg, size_t cap)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(msg, cap, "cannot read the token file %s: %s", path, strerror(errno));
        return false;
    }
    char *buf = malloc(TOKEN_FILE_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(msg, cap, "out of memory");
        return false;
    }
    size_t n = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || n > TOKEN_FILE_MAX) {
        snprintf(msg, cap, failed ? "cannot read the token file %s" :
                                    "the token file %s is over 4096 bytes", path);
        free(buf);
        return false;
    }
    buf[n] = '\0';
    size_t start = strspn(buf, " \t\r\n");
    size_t end = n;
    while (end > start && strchr(" \t\r\n", buf[end - 1]))
        end--;
    bool printable = end > start;
    for (size_t i = start; i < end; i++)
        if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7F)
            printable = false;
    if (end == start || !printable) {
        snprintf(msg, cap, end == start ? "the token file %s is empty" :
                 "the token in %s has spaces or control characters in it (one line, no spaces)",
                 path);
        free(buf);
        return false;
    }
    memmove(buf, buf + start, end - start);
    buf[end - start] = '\0';
    *out = buf;
    return true;
}
