/* runtime_status.c — runtime status names, as the Durable Task SDKs print them. */
#include <strings.h>

#include "durabletask/core.h"

static const char *const names[] = {
    [DT_STATUS_RUNNING] = "Running",       [DT_STATUS_COMPLETED] = "Completed",
    [DT_STATUS_CONTINUED_AS_NEW] = "ContinuedAsNew", [DT_STATUS_FAILED] = "Failed",
    [DT_STATUS_CANCELED] = "Canceled",     [DT_STATUS_TERMINATED] = "Terminated",
    [DT_STATUS_PENDING] = "Pending",       [DT_STATUS_SUSPENDED] = "Suspended",
};

const char *dt_runtime_status_name(dt_runtime_status s)
{
    if ((unsigned)s < sizeof names / sizeof names[0])
        return names[s];
    return "Unknown";
}

dt_status dt_runtime_status_parse(const char *name, dt_runtime_status *out)
{
    if (name == NULL)
        return DT_ERR_INVALID_ARG;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = (dt_runtime_status)i;
            return DT_OK;
        }
    }
    return DT_ERR_INVALID_ARG;
}

bool dt_runtime_status_is_terminal(dt_runtime_status s)
{
    return s == DT_STATUS_COMPLETED || s == DT_STATUS_FAILED || s == DT_STATUS_TERMINATED ||
           s == DT_STATUS_CANCELED;
}
