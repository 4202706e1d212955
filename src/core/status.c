/* status.c — status codes, their sentences, and the dt_error record. */
#include <stdio.h>
#include <string.h>

#include "durabletask/core.h"

const char *dt_strerror(dt_status status)
{
    switch (status) {
    case DT_OK: return "ok";
    case DT_ERR_INVALID_ARG: return "invalid argument";
    case DT_ERR_NOT_FOUND: return "not found";
    case DT_ERR_ALREADY_EXISTS: return "already exists";
    case DT_ERR_NOMEM: return "out of memory";
    case DT_ERR_IO: return "storage I/O error";
    case DT_ERR_CORRUPT: return "corrupt data";
    case DT_ERR_TIMEOUT: return "timed out";
    case DT_ERR_STATE: return "not allowed in the instance's current state";
    case DT_ERR_LEASE_LOST: return "work item lease lost";
    case DT_ERR_NONDETERMINISM: return "non-deterministic orchestrator";
    case DT_ERR_TASK_FAILED: return "task failed";
    case DT_ERR_SHUTDOWN: return "shutting down";
    case DT_ERR_UNIMPLEMENTED: return "not implemented";
    case DT_ERR_INTERNAL: return "internal error";
    case DT_ERR_NO_SPACE: return "no space (the disk is full, or the database at its size limit)";
    }
    return "unknown status";
}

dt_status dt_error_set(dt_error *err, dt_status code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void dt_error_clear(dt_error *err)
{
    if (err == NULL)
        return;
    err->code = DT_OK;
    err->message[0] = '\0';
}
