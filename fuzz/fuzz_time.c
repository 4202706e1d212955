/* fuzz_time.c — the ISO 8601 parser every surface uses for times a caller sends (HTTP query
 * parameters, the CLI). What parses is inside the protocol's range, and survives the
 * formatter and a second parse: dt_time_format writes milliseconds, so the second parse gives
 * the first time floored to the millisecond, and formats to the same text. */
#include <stdlib.h>
#include <string.h>

#include "durabletask/core.h"
#include "fuzz.h"

int dt_fuzz_time(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (text == NULL)
        return 0;
    dt_time t = 12345;
    dt_status st = dt_time_parse(text, &t);
    if (st != DT_OK) {
        fuzz_check(st == DT_ERR_INVALID_ARG, "a refusal that is not INVALID_ARG");
        fuzz_check(t == 12345, "a refused time changed its out-parameter");
    } else {
        fuzz_check(t >= DT_TIME_MIN && t <= DT_TIME_MAX, "a time outside the protocol's range");
        char once[32], twice[32];
        dt_time_format(t, once);
        dt_time back = 0;
        fuzz_check(dt_time_parse(once, &back) == DT_OK, "a formatted time does not parse");
        dt_time floor_ms = t - ((t % 1000) + 1000) % 1000;
        fuzz_check(back == floor_ms, "a formatted time parses to another millisecond");
        dt_time_format(back, twice);
        fuzz_check(strcmp(once, twice) == 0, "formatting is not stable");
    }
    free(text);
    return 0;
}
