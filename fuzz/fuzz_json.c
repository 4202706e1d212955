/* fuzz_json.c — the text checks every surface runs on what a caller sends: JSON payloads,
 * large-payload tokens, tags and their merge (core's json.c), and instance, entity and task
 * hub names (instance_id.c). The first byte picks the check; the rest is the text. Besides
 * "no crash", the checks must agree with each other: tags are JSON, a token is a payload, a
 * merge is tags again and holds every key it was given, a normalized entity id is an entity
 * id and normalizes to itself. */
#include <stdlib.h>
#include <string.h>

#include "durabletask/core.h"
#include "fuzz.h"

static void check_json(const char *text)
{
    dt_error err = {0};
    dt_status json = dt_json_validate(text, "input", &err);
    fuzz_check(json == DT_OK || (json == DT_ERR_INVALID_ARG && err.message[0]),
               "dt_json_validate refused without INVALID_ARG and a message");
    dt_status payload = dt_payload_validate(text, "input", NULL);
    if (json == DT_OK || dt_payload_is_token(text))
        fuzz_check(payload == DT_OK, "JSON or a token is not a payload");
    else
        fuzz_check(payload != DT_OK, "a payload that is neither JSON nor a token");
    if (dt_payload_is_token(text))
        fuzz_check(strlen(text) <= DT_PAYLOAD_TOKEN_MAX, "a token over DT_PAYLOAD_TOKEN_MAX");
    dt_status tags = dt_tags_validate(text, "tags", &err);
    if (tags == DT_OK)
        fuzz_check(json == DT_OK, "tags that are not JSON");
}

/* A merge takes tags stored before dt_tags_validate's rules too (a NUL in a value, a key over
 * them, more than DT_TAGS_MAX in all), so it is checked against their form: never a merge of
 * what is not JSON, always one of two valid sets, which is tags again unless over the size. */
static void check_merge(dt_arena *a, const char *base, const char *extra)
{
    const char *merged = dt_tags_merge(a, base, extra);
    bool both = dt_tags_validate(base, "base", NULL) == DT_OK &&
                dt_tags_validate(extra, "extra", NULL) == DT_OK;
    if (merged == NULL) {
        fuzz_check(!both, "two sets of tags did not merge");
        return;
    }
    fuzz_check(dt_json_validate(base, "base", NULL) == DT_OK &&
                   dt_json_validate(extra, "extra", NULL) == DT_OK,
               "tags merged from something that is not JSON");
    if (both)
        fuzz_check(strlen(merged) > DT_TAGS_MAX || dt_tags_validate(merged, "merged", NULL) == DT_OK,
                   "a merge of tags is not tags");
    /* merging EXTRA once more changes nothing: every key of it is there with its value */
    const char *again = dt_tags_merge(a, merged, extra);
    fuzz_check(again != NULL && strcmp(again, merged) == 0, "a merge lost a key of EXTRA");
}

static void check_ids(dt_arena *a, const char *text)
{
    dt_error err = {0};
    if (dt_instance_id_validate(text, &err) == DT_OK) {
        size_t n = strlen(text);
        fuzz_check(n >= 1 && n <= DT_INSTANCE_ID_MAX, "an instance id of a length out of range");
        fuzz_check(text[0] != '@', "an instance id with the entity prefix");
        fuzz_check(strpbrk(text, "/\\#?") == NULL, "an instance id with a reserved character");
    }
    if (dt_entity_id_validate(text, &err) == DT_OK) {
        size_t n = strlen(text), name = dt_entity_id_name_len(text);
        fuzz_check(n <= DT_INSTANCE_ID_MAX && text[0] == '@', "an entity id out of shape");
        fuzz_check(name >= 1 && name + 1 < n && text[name + 1] == '@',
                   "an entity id's name length does not end at its second '@'");
        const char *norm = dt_entity_id_normalize(a, text, &err);
        fuzz_check(norm != NULL, "a valid entity id does not normalize");
        fuzz_check(dt_entity_id_validate(norm, NULL) == DT_OK, "a normalized id is not valid");
        const char *twice = dt_entity_id_normalize(a, norm, NULL);
        fuzz_check(twice != NULL && strcmp(twice, norm) == 0, "normalizing is not idempotent");
    } else {
        fuzz_check(dt_entity_id_normalize(a, text, NULL) == NULL,
                   "an invalid entity id normalized");
    }
    if (dt_task_hub_validate(text, &err) == DT_OK)
        fuzz_check(strlen(text) <= DT_TASK_HUB_NAME_MAX, "a task hub name over the limit");
}

int dt_fuzz_json(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = fuzz_text(data + 1, size - 1);
    dt_arena *a = dt_arena_new();
    if (text && a) {
        switch (data[0] % 3) {
        case 0:
            check_json(text);
            break;
        case 1: {
            /* BASE, a NUL, EXTRA; an empty BASE stands for none */
            size_t n = strlen(text);
            const char *extra = n < size - 1 ? text + n + 1 : "";
            check_merge(a, n ? text : NULL, extra);
            break;
        }
        default:
            check_ids(a, text);
            break;
        }
    }
    dt_arena_free(a);
    free(text);
    return 0;
}
