/* httptest.h — a small HTTP server on 127.0.0.1 (a free port) for the tests of durable HTTP
 * calls, with one route per behaviour they need:
 *   /ok           200 "hello", X-Test: yes, X-Multi sent twice (a, b)
 *   /echo         200 "<method>|<X-Custom>|<Content-Type>|<Authorization>|<body>"
 *   /held?bytes=N 200 with N bytes of 'h', once httptest_release has been called
 *   /fail         500 "boom"
 *   /slow         200 "late" after 3 s
 *   /big          200 with 2 MiB of 'x' (Content-Length given)
 *   /bigstream    200 with 2 MiB of 'x', chunked (no length known in advance)
 *   /binary       200 with the bytes ff 00 'a'
 *   /poll/start   202, Location: /poll/status (relative), Retry-After: 1
 *   /poll/status  202 (as /poll/start) on its first hit, 200 "done" after
 *   /poll/forever 202, Location: /poll/forever, Retry-After: 1, always
 *   /redirect     302 to /ok;   /loop 302 to /loop;   /see-other 303 to /echo
 *   /offsite      302 to http://localhost:<port>/ok (another host name)
 *   /to-ftp       302 to ftp://127.0.0.1/file
 *   anything else 404 */
#ifndef DT_HTTPTEST_H
#define DT_HTTPTEST_H

typedef struct httptest httptest;

/* httptest_start: the server, listening; fails the test if it cannot start. */
httptest *httptest_start(void);

int httptest_port(const httptest *t);

/* httptest_url: "http://127.0.0.1:<port><path>" (one of 4 rotating static buffers). */
const char *httptest_url(const httptest *t, const char *path);

/* httptest_hits: how many requests PATH has had. */
int httptest_hits(httptest *t, const char *path);

/* httptest_release: /held answers from now on (those waiting at once). */
void httptest_release(httptest *t);

void httptest_stop(httptest *t);

#endif
