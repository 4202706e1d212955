/* encode.c — what the backends share: events and failures as they keep them (the codec's
 * blobs, with the failure to encode or decode named in the caller's error), and the upper
 * bound of an id prefix's range. */
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

dt_status store_encode_event(const dt_event *e, uint8_t **out, size_t *out_len, dt_error *err)
{
    *out = NULL;
    *out_len = 0;
    dt_status st = dt_event_encode(e, out, out_len);
    if (st != DT_OK)
        return dt_error_set(err, st, "cannot encode %s event: %s", dt_event_type_name(e->type),
                            dt_strerror(st));
    return DT_OK;
}

dt_status store_decode_blob(const void *p, size_t n, dt_arena *arena, dt_event *out,
                            dt_error *err, const char *what)
{
    dt_error derr;
    dt_error_clear(&derr);
    dt_status st = dt_event_decode(p, n, arena, out, &derr);
    if (st != DT_OK)
        return dt_error_set(err, st, "%s: %s", what, derr.message[0] ? derr.message
                                                                     : dt_strerror(st));
    return DT_OK;
}

dt_status store_encode_failure(const dt_failure *f, uint8_t **out, size_t *out_len,
                               dt_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (f == NULL)
        return DT_OK;
    dt_event e;
    dt_event_init(&e, DT_EVENT_TASK_FAILED, 0);
    e.failure = f;
    return store_encode_event(&e, out, out_len, err);
}

/* store_prefix_end: trailing 0xFF bytes cannot be incremented, so they go first */
dt_status store_prefix_end(const char *prefix, char **out, dt_error *err)
{
    *out = NULL;
    size_t n = strlen(prefix);
    while (n > 0 && (unsigned char)prefix[n - 1] == 0xFF)
        n--;
    if (n == 0)
        return DT_OK;
    char *hi = malloc(n + 1);
    if (hi == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory for the id prefix '%.100s'",
                            prefix);
    memcpy(hi, prefix, n);
    hi[n - 1] = (char)((unsigned char)hi[n - 1] + 1);
    hi[n] = '\0';
    *out = hi;
    return DT_OK;
}
