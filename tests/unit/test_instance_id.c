/* test_instance_id.c — the rules for ids and names (instance and entity ids, names, versions,
 * task hubs, a worker's actions) and generated ids. */
#include <string.h>

#include "testutil.h"

static void test_valid_ids_are_accepted(void **state)
{
    (void)state;
    dt_error err;
    assert_ok(dt_instance_id_validate("order-42", &err), &err);
    assert_ok(dt_instance_id_validate("a", &err), &err);
    assert_ok(dt_instance_id_validate("with space and ünïcode", &err), &err);
    char hundred[101];
    memset(hundred, 'x', 100);
    hundred[100] = '\0';
    assert_ok(dt_instance_id_validate(hundred, &err), &err);
}

static void expect_invalid(const char *id, const char *needle)
{
    dt_error err;
    dt_error_clear(&err);
    assert_int_equal(dt_instance_id_validate(id, &err), DT_ERR_INVALID_ARG);
    assert_int_equal(err.code, DT_ERR_INVALID_ARG);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err.message, needle);
}

static void test_invalid_ids_are_refused_with_the_rule(void **state)
{
    (void)state;
    expect_invalid("", "empty");
    expect_invalid(NULL, "empty");
    char long_id[102];
    memset(long_id, 'x', 101);
    long_id[101] = '\0';
    expect_invalid(long_id, "101 characters");
    expect_invalid("@entity", "'@'");
    expect_invalid("a/b", "'/'");
    expect_invalid("a\\b", "'\\'");
    expect_invalid("a#b", "'#'");
    expect_invalid("a?b", "'?'");
    expect_invalid("tab\there", "control character");
    expect_invalid("del\x7f", "control character");
    expect_invalid("nl\nforged", "control character (0x0a) at byte 2");
    expect_invalid("c1-\xc2\x9b", "control character (U+009b)");
    expect_invalid("id\xe2\x80\xae" "evil", "bidirectional control character (U+202E) at byte 2");
    expect_invalid("\xe2\x81\xa6x", "(U+2066)");
    expect_invalid("x\xe2\x80\x8f", "(U+200F)");
    expect_invalid("x\xd8\x9c", "(U+061C)");
    assert_ok(dt_instance_id_validate("caf\xc3\xa9-\xe2\x80\x94-\xe2\x82\xac", NULL), NULL);   /* é — € */
    expect_invalid("bad\xff", "not valid UTF-8");
    expect_invalid("cut\xe2\x82", "not valid UTF-8");
    expect_invalid("\xed\xa0\x80surrogate", "not valid UTF-8");
    expect_invalid("\xc0\xafoverlong", "not valid UTF-8");
}

static void expect_name(dt_status got, const dt_error *err, const char *needle)
{
    assert_int_equal(got, DT_ERR_INVALID_ARG);
    if (strstr(err->message, needle) == NULL)
        fail_msg("message '%s' does not mention '%s'", err->message, needle);
}

static void test_names_and_versions_keep_the_shared_rules(void **state)
{
    (void)state;
    dt_error err;
    char max[DT_NAME_MAX + 2];
    memset(max, 'n', DT_NAME_MAX);
    max[DT_NAME_MAX] = '\0';
    assert_ok(dt_name_validate(max, "activity name", &err), &err);
    assert_ok(dt_name_validate("with/slash #and? ünï", "activity name", &err), &err);
    assert_ok(dt_name_validate("@entity-like", "orchestrator name", &err), &err);
    max[DT_NAME_MAX] = 'n';
    max[DT_NAME_MAX + 1] = '\0';
    expect_name(dt_name_validate(max, "activity name", &err), &err,
                "activity name is 257 characters long; at most 256 are allowed");
    expect_name(dt_name_validate("", "event name", &err), &err, "event name is empty");
    expect_name(dt_name_validate(NULL, "event name", &err), &err, "event name is empty");
    expect_name(dt_name_validate("a\rb", "event name", &err), &err,
                "event name has a control character (0x0d) at byte 1");
    expect_name(dt_name_validate("a\xff" "b", "operation name", &err), &err,
                "operation name is not valid UTF-8");
    assert_ok(dt_version_validate(NULL, "version", &err), &err);
    assert_ok(dt_version_validate("", "version", &err), &err);
    assert_ok(dt_version_validate("1.2.3-beta", "version", &err), &err);
    expect_name(dt_version_validate("1\t2", "orchestrator version", &err), &err,
                "orchestrator version has a control character");
    expect_name(dt_version_validate(max, "orchestrator version", &err), &err, "at most 256");
}

static void test_entity_ids_and_task_hubs_keep_the_same_rules(void **state)
{
    (void)state;
    dt_error err;
    assert_ok(dt_entity_id_validate("@counter@ünï", &err), &err);
    expect_name(dt_entity_id_validate("@counter@\xff", &err), &err, "entity id is not valid UTF-8");
    expect_name(dt_entity_id_validate("@counter@a\nb", &err), &err, "control character");
    expect_name(dt_task_hub_validate("hub\xff", &err), &err, "task hub name is not valid UTF-8");
    expect_name(dt_task_hub_validate("hub\n", &err), &err, "control character");
}

static void test_actions_are_checked_naming_the_action_and_field(void **state)
{
    (void)state;
    dt_error err;
    const char *type;
    dt_action a = {.type = DT_ACTION_CREATE_SUB_ORCHESTRATION, .id = 7, .name = "child",
                   .instance_id = "@bad/id"};
    assert_int_equal(dt_action_validate(&a, &type, &err), DT_ERR_INVALID_ARG);
    assert_string_equal(type, "InvalidInstanceId");
    assert_string_equal(err.message, "createSubOrchestration action 7: instance id '@bad/id' "
                        "contains '/', which is not allowed");
    a.instance_id = "@entity@x";
    assert_int_equal(dt_action_validate(&a, &type, &err), DT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.message, "reserved for entities"));
    a.instance_id = "kid";
    assert_ok(dt_action_validate(&a, &type, &err), &err);
    a.version = "v\x01";
    expect_name(dt_action_validate(&a, &type, &err), &err, "orchestrator version has a control");
    assert_string_equal(type, "InvalidName");
    dt_action t = {.type = DT_ACTION_SCHEDULE_TASK, .id = 2, .name = ""};
    expect_name(dt_action_validate(&t, &type, &err), &err,
                "scheduleTask action 2: activity name is empty");
    dt_action e = {.type = DT_ACTION_SEND_EVENT, .id = 3, .name = "ev", .instance_id = "a?b"};
    expect_name(dt_action_validate(&e, &type, &err), &err, "sendEvent action 3: instance id");
    dt_action x = {.type = DT_ACTION_TERMINATE_ORCHESTRATION, .id = 4, .instance_id = NULL};
    expect_name(dt_action_validate(&x, &type, &err), &err, "instance id is empty");
    dt_action tm = {.type = DT_ACTION_CREATE_TIMER, .id = 5, .fire_at = DT_TIME_MAX + 1};
    expect_name(dt_action_validate(&tm, &type, &err), &err, "outside years 1 to 9999");
    assert_string_equal(type, "InvalidTimer");
    dt_event op;
    dt_event_init(&op, DT_EVENT_ENTITY_SIGNALED, 0);
    op.name = "add\n";
    dt_action m = {.type = DT_ACTION_SEND_ENTITY_MESSAGE, .id = 6, .entity = &op};
    expect_name(dt_action_validate(&m, &type, &err), &err,
                "sendEntityMessage action 6: entity operation name has a control character");
}

static void test_trace_context_is_bounded_printable_ascii(void **state)
{
    (void)state;
    dt_error err;
    const char *w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_ok(dt_trace_validate(NULL, NULL, &err), &err);
    assert_ok(dt_trace_validate(w3c, NULL, &err), &err);
    assert_ok(dt_trace_validate(w3c, "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE", &err), &err);
    char tstate[DT_TRACE_STATE_MAX + 2];
    memset(tstate, 's', sizeof tstate - 1);
    tstate[DT_TRACE_STATE_MAX] = '\0';
    assert_ok(dt_trace_validate(w3c, tstate, &err), &err);
    tstate[DT_TRACE_STATE_MAX] = 's';
    tstate[DT_TRACE_STATE_MAX + 1] = '\0';
    expect_name(dt_trace_validate(w3c, tstate, &err), &err,
                "traceState is 513 bytes long; at most 512 are allowed");
    char parent[DT_TRACE_PARENT_MAX + 2];
    memset(parent, 'f', sizeof parent - 1);
    parent[DT_TRACE_PARENT_MAX + 1] = '\0';
    expect_name(dt_trace_validate(parent, NULL, &err), &err,
                "traceParent is 65 bytes long; at most 64 are allowed");
    expect_name(dt_trace_validate("00-ab\n-01", NULL, &err), &err,
                "traceParent has a byte that is not printable ASCII or is a space (0x0a) at byte 5");
    expect_name(dt_trace_validate("00 ab", NULL, &err), &err, "(0x20) at byte 2");
    expect_name(dt_trace_validate(w3c, "k=caf\xc3\xa9", &err), &err,
                "traceState has a byte that is not printable ASCII (0xc3) at byte 5");
    assert_ok(dt_span_id_validate(NULL, &err), &err);
    assert_ok(dt_span_id_validate("00f067aa0ba902b7", &err), &err);
    expect_name(dt_span_id_validate("span\x01", &err), &err, "spanID has a byte that is not");
    expect_name(dt_span_id_validate(parent, &err), &err, "spanID is 65 bytes long");
}

/* An action's tags and trace context keep the rules a client's start keeps, naming the action;
 * so does a rewind's new history. */
static void test_action_tags_and_trace_context_are_checked(void **state)
{
    (void)state;
    dt_error err;
    const char *type;
    dt_action a = {.type = DT_ACTION_CREATE_SUB_ORCHESTRATION, .id = 3, .name = "child",
                   .instance_id = "kid", .tags = "{\"team\":\"a\"}",
                   .trace_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
    assert_ok(dt_action_validate(&a, &type, &err), &err);
    a.tags = "{\"bad\\nkey\":\"a\"}";
    expect_name(dt_action_validate(&a, &type, &err), &err,
                "createSubOrchestration action 3: tags: a key has a control character");
    assert_string_equal(type, "InvalidTags");
    a.tags = NULL;
    a.trace_state = "k=\x7f";
    expect_name(dt_action_validate(&a, &type, &err), &err,
                "createSubOrchestration action 3: traceState has a byte that is not printable");
    assert_string_equal(type, "InvalidTraceContext");
    dt_action t = {.type = DT_ACTION_SCHEDULE_TASK, .id = 4, .name = "act", .tags = "[]"};
    expect_name(dt_action_validate(&t, &type, &err), &err,
                "scheduleTask action 4: tags is not a JSON object");
    dt_action c = {.type = DT_ACTION_COMPLETE_ORCHESTRATION, .id = 5,
                   .status = DT_STATUS_COMPLETED, .tags = "{\"\":\"x\"}"};
    expect_name(dt_action_validate(&c, &type, &err), &err,
                "completeOrchestration action 5: tags: a key is empty");
    dt_event history[1];
    dt_event_init(&history[0], DT_EVENT_TASK_SCHEDULED, 0);
    history[0].name = "act";
    history[0].tags = "{\"k\\u0001\":\"x\"}";
    dt_action r = {.type = DT_ACTION_REWIND, .id = 6, .carryover = history, .n_carryover = 1};
    expect_name(dt_action_validate(&r, &type, &err), &err,
                "new history event 0: tags: a key has a control character");
    assert_string_equal(type, "InvalidRewind");
}

static void test_generated_ids_are_valid_and_distinct(void **state)
{
    (void)state;
    char a[37], b[37];
    dt_instance_id_generate(a);
    dt_instance_id_generate(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_int_equal(a[14], '4');
    assert_ok(dt_instance_id_validate(a, NULL), NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids_are_accepted),
        cmocka_unit_test(test_invalid_ids_are_refused_with_the_rule),
        cmocka_unit_test(test_generated_ids_are_valid_and_distinct),
        cmocka_unit_test(test_names_and_versions_keep_the_shared_rules),
        cmocka_unit_test(test_entity_ids_and_task_hubs_keep_the_same_rules),
        cmocka_unit_test(test_actions_are_checked_naming_the_action_and_field),
        cmocka_unit_test(test_trace_context_is_bounded_printable_ascii),
        cmocka_unit_test(test_action_tags_and_trace_context_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
