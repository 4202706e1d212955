/* test_http_handle.c — dt_http_handle, the HTTP API served in this process without a socket
 * (what the http_request fuzz target drives): routing, query parameters (decoded as MHD
 * decodes them), headers and bodies reach the handlers as they do through the server. */
#include <stdlib.h>
#include <string.h>

#include "durabletask/http.h"
#include "testutil.h"

#define API "/runtime/webhooks/durabletask"

static dt_hub *open_hub(const char *name)
{
    dt_hub_options o = {.db_path = test_path(test_tmpdir(name), "hub.db"), .sync = DT_SYNC_OFF};
    dt_hub *hub = NULL;
    assert_int_equal(dt_hub_open(&o, &hub, NULL), DT_OK);
    return hub;
}

/* call: one request; its status, and its body in *OUT (freed by the caller). */
static unsigned call(dt_hub *hub, const char *method, const char *target, const char *header,
                     const char *body, char **out)
{
    unsigned status = 0;
    size_t len = 0;
    const char *headers[] = {header};
    assert_int_equal(dt_http_handle(hub, method, target, headers, header ? 1 : 0, body,
                                    body ? strlen(body) : 0, &status, out, &len),
                     DT_OK);
    assert_int_equal(strlen(*out), len);
    return status;
}

static void test_a_started_instance_reads_back_with_its_decoded_parameters(void **state)
{
    (void)state;
    dt_hub *hub = open_hub("http_handle_start");
    char *out = NULL;
    assert_int_equal(call(hub, "POST", API "/orchestrators/Hello/id%201?version=v+2",
                          "Host: example.test:81", "{\"city\":\"Tokyo\"}", &out), 202);
    /* the Location-style URIs in the answer use the Host header */
    assert_non_null(strstr(out, "http://example.test:81" API "/instances/id%201"));
    free(out);
    /* 202 while it has not finished, as Durable Functions answers */
    assert_int_equal(call(hub, "GET", API "/instances/id%201?showInput=true", NULL, NULL, &out),
                     202);
    assert_non_null(strstr(out, "\"name\":\"Hello\""));
    assert_non_null(strstr(out, "{\"city\":\"Tokyo\"}"));
    free(out);
    dt_instance_state *s = NULL;
    dt_arena *a = dt_arena_new();
    assert_int_equal(dt_hub_get(hub, "id 1", a, &s, NULL), DT_OK);
    assert_string_equal(s->version, "v 2");   /* '+' in a query is a space */
    dt_arena_free(a);
    dt_hub_close(hub);
}

static void test_errors_and_our_own_routes_answer_as_the_server_does(void **state)
{
    (void)state;
    dt_hub *hub = open_hub("http_handle_routes");
    char *out = NULL;
    assert_int_equal(call(hub, "HEAD", "/healthz", NULL, NULL, &out), 200);
    assert_string_equal(out, "ok");
    free(out);
    assert_int_equal(call(hub, "GET", API "/instances/missing", NULL, NULL, &out), 404);
    assert_non_null(strstr(out, "\"code\":\"NotFound\""));
    free(out);
    assert_int_equal(call(hub, "POST", API "/orchestrators/Hello", NULL, "{oops", &out), 400);
    free(out);
    assert_int_equal(call(hub, "GET", API "/instances/a%00b", NULL, NULL, &out), 400);
    free(out);
    assert_int_equal(call(hub, "DELETE", "/healthz", NULL, NULL, &out), 405);
    free(out);
    dt_hub_close(hub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_started_instance_reads_back_with_its_decoded_parameters),
        cmocka_unit_test(test_errors_and_our_own_routes_answer_as_the_server_does),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
