/* instance_id.c — the Durable Task instance id rules, entity ids, task hub names, random instance ids
 * (UUID v4) and execution ids. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "durabletask/core.h"

/* check_id: the rules instance and entity ids share; WHAT names the kind in ERR. */
static dt_status check_id(const char *id, const char *what, dt_error *err)
{
    if (id == NULL || id[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%s is empty", what);
    size_t len = strnlen(id, DT_INSTANCE_ID_MAX + 1);
    if (len > DT_INSTANCE_ID_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s is %zu characters long; at most %d are allowed", what,
                            strlen(id), DT_INSTANCE_ID_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x20 || c == 0x7f)
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "%s has a control character (0x%02x) at position %zu", what, c,
                                i);
        if (c == '/' || c == '\\' || c == '#' || c == '?')
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "%s '%s' contains '%c', which is not allowed", what, id, c);
    }
    return DT_OK;
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
    size_t len = strnlen(name, DT_TASK_HUB_NAME_MAX + 1);
    if (len > DT_TASK_HUB_NAME_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "task hub name '%.64s...' is longer than "
                            "%d characters", name, DT_TASK_HUB_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '-' && c != '_')))
            return dt_error_set(err, DT_ERR_INVALID_ARG, "task hub name '%.64s' may hold only "
                                "letters, digits, '-' and '_', and start with a letter or digit",
                                name);
    }
    return DT_OK;
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
