/* json.c — payload checks. Payloads stay JSON text end to end (the other Durable Task SDKs
 * send text too); jansson only tells whether a text is one JSON value. */
#include <jansson.h>
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
