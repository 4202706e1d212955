/* json.c — payload checks. Payloads stay JSON text end to end (the other Durable Task SDKs
 * send text too); jansson only tells whether a text is one JSON value. A large-payload token
 * stands where the SDKs offloaded a payload: it is kept as it is, never parsed. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "durabletask/core.h"

dt_status dt_json_validate(const char *text, const char *what, dt_error *err)
{
    if (text == NULL)
        return DT_OK;
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (v == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s is not valid JSON: %s at line %d, column %d", what, je.text,
                            je.line, je.column);
    json_decref(v);
    return DT_OK;
}

dt_status dt_tags_validate(const char *text, const char *what, dt_error *err)
{
    dt_status st = dt_json_validate(text, what, err);
    if (st != DT_OK || text == NULL)
        return st;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    const char *key = NULL;
    json_t *val;
    bool ok = json_is_object(v);
    if (ok)
        json_object_foreach(v, key, val) if (!json_is_string(val)) {
            ok = false;
            break;
        }
    if (!ok)
        st = key ? dt_error_set(err, DT_ERR_INVALID_ARG, "%s: the value of '%.100s' is not a "
                                "string", what, key)
                 : dt_error_set(err, DT_ERR_INVALID_ARG, "%s is not a JSON object", what);
    json_decref(v);
    return st;
}

const char *dt_tags_merge(dt_arena *arena, const char *base, const char *extra)
{
    if (dt_tags_validate(base, "tags", NULL) != DT_OK ||
        dt_tags_validate(extra, "tags", NULL) != DT_OK || extra == NULL)
        return NULL;
    /* parsed as dt_tags_validate parsed them: a "\u0000" in a tag is valid there */
    json_t *all = base ? json_loads(base, JSON_ALLOW_NUL, NULL) : json_object();
    json_t *more = json_loads(extra, JSON_ALLOW_NUL, NULL);
    char *text = NULL;
    if (all && more && json_object_update(all, more) == 0)
        text = json_dumps(all, JSON_COMPACT | JSON_SORT_KEYS);
    const char *out = text ? dt_arena_strdup(arena, text) : NULL;
    free(text);
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
