/* fuzz_http_request.c — the HTTP API as a hostile client reaches it: routing, path and query
 * parameters, headers and JSON bodies, served by dt_http_handle (the server's own routing,
 * without a socket) on one hub in a temporary SQLite file, kept for the whole run so requests
 * meet the instances and entities earlier ones made. An input is a request as it goes on the
 * wire, more or less: "METHOD TARGET" on the first line, "Name: value" lines, an empty line,
 * the body. Every answer is a status the API gives; a 500 (a failure of ours, not the
 * caller's) is a finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durabletask/http.h"
#include "fuzz.h"

#define MAX_HEADERS 16

static dt_hub *hub;
static char dir[256];

static void remove_hub(void)
{
    dt_hub_close(hub);
    hub = NULL;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_http_request: could not remove %s\n", dir);
}

/* the_hub: opened on first use, closed and removed at exit. */
static dt_hub *the_hub(void)
{
    if (hub)
        return hub;
    const char *tmp = getenv("DT_TEST_TMP");
    if (tmp == NULL)
        tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/dt-fuzz-http-XXXXXX", tmp ? tmp : "/tmp");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp ? tmp : "/tmp");
    if (system(cmd) != 0 || mkdtemp(dir) == NULL)
        fuzz_fail(__FILE__, __LINE__, "cannot make a temporary folder");
    char path[300];
    snprintf(path, sizeof path, "%s/fuzz.db", dir);
    dt_hub_options o = {.db_path = path, .sync = DT_SYNC_OFF};
    dt_error err = {0};
    if (dt_hub_open(&o, &hub, &err) != DT_OK) {
        fprintf(stderr, "fuzz_http_request: %s\n", err.message);
        fuzz_fail(__FILE__, __LINE__, "cannot open the hub");
    }
    atexit(remove_hub);
    return hub;
}

/* next_line: the line at *P (up to END), NUL-terminated in place (a '\r' before the '\n' is
 * dropped); *P moves past it. NULL at END. */
static char *next_line(char **p, char *end)
{
    if (*p >= end)
        return NULL;
    char *line = *p;
    char *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    if (stop > line && stop[-1] == '\r')
        stop--;
    *stop = '\0';
    return line;
}

int dt_fuzz_http_request(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (text == NULL)
        return 0;
    char *p = text, *end = text + size;
    char *first = next_line(&p, end);
    char *sp = first ? strchr(first, ' ') : NULL;
    if (sp == NULL) {
        free(text);
        return 0;
    }
    *sp = '\0';
    const char *method = first, *target = sp + 1;
    const char *headers[MAX_HEADERS];
    size_t n = 0;
    for (char *line; (line = next_line(&p, end)) != NULL && line[0] != '\0';)
        if (n < MAX_HEADERS)
            headers[n++] = line;
    unsigned status = 0;
    char *body = NULL;
    size_t len = 0;
    dt_status st = dt_http_handle(the_hub(), method, target, headers, n, p, (size_t)(end - p),
                                  &status, &body, &len);
    if (st == DT_OK) {
        fuzz_check(status >= 200 && status <= 599, "a status out of range");
        if (status == 500)
            fprintf(stderr, "500: %s %s: %s\n", method, target, body);
        fuzz_check(status != 500, "a request answered 500 (our failure, not the caller's)");
        fuzz_check(body != NULL && strlen(body) <= len, "a body of another length");
    } else {
        fuzz_check(st == DT_ERR_NOMEM, "dt_http_handle refused a request");
    }
    free(body);
    free(text);
    return 0;
}
