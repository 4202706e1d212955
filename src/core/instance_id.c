/* instance_id.c — the rules for every identifier and name a caller or a worker gives: UTF-8, instance
 * ids, entity ids, orchestrator/activity/event/operation names, versions, task hub names, trace
 * context; random instance ids (UUID v4) and execution ids. Every path (HTTP, gRPC, worker
 * actions, CLI, the SDK) checks with these, so the rules live here once. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "durabletask/core.h"

bool dt_utf8_valid_n(const void *data, size_t n)
{
    const unsigned char *s = data;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;   /* a continuation byte where a character should start, or 0xf8.. */
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms would let one character hide behind another's bytes */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool dt_utf8_valid(const char *s)
{
    return s == NULL || dt_utf8_valid_n(s, strlen(s));
}

/* bidi_control: the code point (or 0) at S, valid UTF-8, if it is one that reorders how the
 * text around it is shown (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069): with
 * one an id can look like another in a list, a log or the dashboard ("Trojan Source"). */
static unsigned bidi_control(const unsigned char *s)
{
    if (s[0] == 0xd8 && s[1] == 0x9c)
        return 0x061c;
    if (s[0] != 0xe2 || (s[1] != 0x80 && s[1] != 0x81))
        return 0;
    unsigned cp = 0x2000 + ((unsigned)(s[1] & 0x3f) << 6) + (s[2] & 0x3f);
    bool reorders = cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
                    (cp >= 0x2066 && cp <= 0x2069);
    return reorders ? cp : 0;
}

/* check_text: the rules every identifier and name shares: valid UTF-8, at most MAX bytes, no
 * control characters (C0, DEL, and the C1 range U+0080..U+009F, which some terminals obey:
 * a newline in a name would forge a log line), no bidirectional controls. WHAT names the
 * field in ERR. The caller has ruled out NULL. */
static dt_status check_text(const char *s, size_t max, const char *what, dt_error *err)
{
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s is %zu characters long; at most %zu are allowed", what,
                            strlen(s), max);
    if (!dt_utf8_valid_n(s, len))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s is not valid UTF-8", what);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool c1 = c == 0xc2 && (unsigned char)s[i + 1] >= 0x80 &&
                  (unsigned char)s[i + 1] <= 0x9f;   /* UTF-8 valid: s[i + 1] exists */
        if (c < 0x20 || c == 0x7f || c1)
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "%s has a control character (%s%02x) at byte %zu", what,
                                c1 ? "U+00" : "0x", c1 ? (unsigned char)s[i + 1] : c, i);
        unsigned bidi = bidi_control((const unsigned char *)s + i);
        if (bidi)
            return dt_error_set(err, DT_ERR_INVALID_ARG, "%s has a bidirectional control "
                                "character (U+%04X) at byte %zu", what, bidi, i);
    }
    return DT_OK;
}

/* check_id: the rules instance and entity ids share; WHAT names the kind in ERR. */
static dt_status check_id(const char *id, const char *what, dt_error *err)
{
    if (id == NULL || id[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s is empty", what);
    dt_status st = check_text(id, DT_INSTANCE_ID_MAX, what, err);
    if (st != DT_OK)
        return st;
    for (const char *p = id; *p; p++)
        if (*p == '/' || *p == '\\' || *p == '#' || *p == '?')
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "%s '%s' contains '%c', which is not allowed", what, id, *p);
    return DT_OK;
}

dt_status dt_name_validate(const char *name, const char *what, dt_error *err)
{
    if (name == NULL || name[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s is empty", what);
    return check_text(name, DT_NAME_MAX, what, err);
}

dt_status dt_version_validate(const char *version, const char *what, dt_error *err)
{
    return version == NULL ? DT_OK : check_text(version, DT_VERSION_MAX, what, err);
}

dt_status dt_instance_id_validate(const char *id, dt_error *err)
{
    dt_status st = check_id(id, "instance id", err);
    if (st == DT_OK && id[0] == '@')
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "instance id '%s' starts with '@', which is reserved for entities", id);
    return st;
}

size_t dt_entity_id_name_len(const char *id)
{
    const char *at = strchr(id + 1, '@');
    return at ? (size_t)(at - id - 1) : strlen(id + 1);
}

dt_status dt_entity_id_validate(const char *id, dt_error *err)
{
    dt_status st = check_id(id, "entity id", err);
    if (st != DT_OK)
        return st;
    if (id[0] != '@' || strchr(id + 1, '@') == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "entity id '%s' is not of the form @name@key", id);
    if (id[1] == '@')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "entity id '%s' has an empty name", id);
    return DT_OK;
}

const char *dt_entity_id_normalize(dt_arena *arena, const char *id, dt_error *err)
{
    if (dt_entity_id_validate(id, err) != DT_OK)
        return NULL;
    char *c = dt_arena_strdup(arena, id);
    if (c == NULL) {
        dt_error_set(err, DT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 1, n = dt_entity_id_name_len(id); i <= n; i++)
        c[i] = (char)tolower((unsigned char)c[i]);
    return c;
}

dt_status dt_task_hub_validate(const char *name, dt_error *err)
{
    if (name == NULL || name[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "task hub name is empty");
    /* the shared rules first, so the name is echoed below only when it is printable text */
    dt_status st = check_text(name, DT_TASK_HUB_NAME_MAX, "task hub name", err);
    if (st != DT_OK)
        return st;
    for (size_t i = 0, len = strlen(name); i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_')))
            return dt_error_set(err, DT_ERR_INVALID_ARG, "task hub name '%.64s' may hold only "
                                "letters, digits, '-' and '_', and start with a letter or digit",
                                name);
    }
    return DT_OK;
}

/* check_ascii: S (NULL: none) is at most MAX bytes of printable ASCII, a space only where
 * SPACES allows one: the character set of the W3C trace headers. WHAT names the field. */
static dt_status check_ascii(const char *s, size_t max, bool spaces, const char *what,
                             dt_error *err)
{
    if (s == NULL)
        return DT_OK;
    size_t len = strnlen(s, max + 1);
    if (len > max)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s is %zu bytes long; at most %zu are "
                            "allowed", what, strlen(s), max);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x7e || c < 0x20 || (c == ' ' && !spaces))
            return dt_error_set(err, DT_ERR_INVALID_ARG, "%s has a byte that is not printable "
                                "ASCII%s (0x%02x) at byte %zu", what,
                                spaces ? "" : " or is a space", c, i);
    }
    return DT_OK;
}

dt_status dt_trace_validate(const char *parent, const char *state, dt_error *err)
{
    dt_status st = check_ascii(parent, DT_TRACE_PARENT_MAX, false, "traceParent", err);
    return st == DT_OK ? check_ascii(state, DT_TRACE_STATE_MAX, true, "traceState", err) : st;
}

dt_status dt_span_id_validate(const char *span_id, dt_error *err)
{
    return check_ascii(span_id, DT_SPAN_ID_MAX, false, "spanID", err);
}

static void random_bytes(unsigned char *b, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(b + got, len - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
}

void dt_execution_id_generate(char out[33])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

void dt_instance_id_generate(char out[37])
{
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}
