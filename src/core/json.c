/* json.c — payload checks. Payloads stay JSON text end to end (the other Durable Task SDKs
 * send text too); jansson only tells whether a text is one JSON value. A large-payload token
 * stands where the SDKs offloaded a payload: it is kept as it is, never parsed. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/core.h"

/* refused: WHAT could not be read now, for dt_json_limit_held's bound (DT_ERR_NOMEM). */
static dt_status refused(const char *what, dt_error *err)
{
    return dt_error_set(err, DT_ERR_NOMEM, "%s could not be read now: reading JSON would take "
                        "the server past its bound of %zu MiB for JSON being read "
                        "(--max-held-mb); try again later", what, dt_json_held_max() >> 20);
}

dt_status dt_json_validate(const char *text, const char *what, dt_error *err)
{
    if (text == NULL)
        return DT_OK;
    json_error_t je;
    dt_json_refused();
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (v == NULL && dt_json_refused())
        return refused(what, err);
    if (v == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s is not valid JSON: %s at line %d, column %d", what, je.text,
                            je.line, je.column);
    json_decref(v);
    return DT_OK;
}

/* tags_object: TEXT (not NULL) parsed as tags are everywhere, a JSON object of string values,
 * into *OUT (the caller releases it); on failure ERR names WHAT and the rule. "\u0000" parses
 * here (JSON_ALLOW_NUL), as it did before dt_tags_validate refused it, so tags stored then
 * still merge. */
static dt_status tags_object(const char *text, const char *what, json_t **out, dt_error *err)
{
    dt_status st = dt_json_validate(text, what, err);
    if (st != DT_OK)
        return st;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (v == NULL && dt_json_refused())
        return refused(what, err);
    if (!json_is_object(v)) {
        json_decref(v);
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s is not a JSON object", what);
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) if (!json_is_string(val)) {
        st = dt_error_set(err, DT_ERR_INVALID_ARG, "%s: the value of '%.100s' is not a string",
                          what, key);
        json_decref(v);   /* after the message: KEY is V's */
        return st;
    }
    *out = v;
    return DT_OK;
}

/* check_tag: one tag of tags WHAT by the rules in core.h. The key is echoed only once it has
 * passed the rules of names, so a message never carries a control character. */
static dt_status check_tag(const char *key, json_t *val, const char *what, dt_error *err)
{
    dt_error own;
    if (dt_name_validate(key, "a key", &own) != DT_OK)
        return dt_error_set(err, own.code, "%s: %s", what, own.message);
    if (strlen(json_string_value(val)) != json_string_length(val))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s: the value of '%.100s' holds a NUL "
                            "character (\\u0000), which the protocol's strings cannot carry",
                            what, key);
    return DT_OK;
}

dt_status dt_tags_validate(const char *text, const char *what, dt_error *err)
{
    if (text == NULL)
        return DT_OK;
    size_t n = strlen(text);   /* before parsing: a 14 MB object is refused unread */
    if (n > DT_TAGS_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s are %zu bytes of JSON text, over the tags size limit of %zu "
                            "bytes (64 KiB, DT_TAGS_MAX)",
                            what, n, DT_TAGS_MAX);
    json_t *v = NULL;
    dt_status st = tags_object(text, what, &v, err);
    const char *key;
    json_t *val;
    if (st == DT_OK)
        json_object_foreach(v, key, val) if ((st = check_tag(key, val, what, err)) != DT_OK)
            break;
    json_decref(v);
    return st;
}

const char *dt_tags_merge(dt_arena *arena, const char *base, const char *extra)
{
    json_t *all = NULL, *more = NULL;
    if (extra == NULL || tags_object(extra, "tags", &more, NULL) != DT_OK ||
        (base ? tags_object(base, "tags", &all, NULL) : DT_OK) != DT_OK) {
        json_decref(more);
        return NULL;
    }
    if (all == NULL)
        all = json_object();
    char *text = NULL;
    if (all && json_object_update(all, more) == 0)
        text = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
    const char *out = text ? dt_arena_strdup(arena, text) : NULL;
    dt_json_free(text);
    json_decref(all);
    json_decref(more);
    return out;
}

bool dt_payload_is_token(const char *text)
{
    if (text == NULL || strncmp(text, "blob:v", 6) != 0)
        return false;
    const char *p = text + 6;
    const char *digits = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == digits || *p++ != ':' || *p == '\0')
        return false;
    for (; *p; p++)
        if (*p < 0x21 || *p > 0x7e || p - text >= DT_PAYLOAD_TOKEN_MAX)
            return false;
    return true;
}

dt_status dt_payload_validate(const char *text, const char *what, dt_error *err)
{
    return dt_payload_is_token(text) ? DT_OK : dt_json_validate(text, what, err);
}

dt_status dt_payload_check_size(const char *text, const char *what, dt_error *err)
{
    size_t n = text ? strlen(text) : 0;
    if (n <= DT_PAYLOAD_MAX)
        return DT_OK;
    return dt_error_set(err, DT_ERR_INVALID_ARG,
                        "%s is %zu bytes, over the payload size limit of %zu bytes (1 MiB, "
                        "DT_PAYLOAD_MAX)",
                        what, n, DT_PAYLOAD_MAX);
}
