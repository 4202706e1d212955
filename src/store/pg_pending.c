/* pg_pending.c — TEMPORARY stand-ins for the instance functions pg_entity.c calls, until
 * pg_instance.c (written on main) lands: they answer DT_ERR_UNIMPLEMENTED, so an entity
 * step that starts an orchestration or answers one fails explicitly. DELETE THIS FILE when
 * merging main's pg_instance.c (its real definitions would clash with these at link time). */
#include "pg_internal.h"

dt_status pg_create_instance_tx(pg_store *s, const dt_new_instance *ni, dt_error *err)
{
    (void)s;
    (void)ni;
    return pg_unimplemented(err, "create_instance");
}

dt_status pg_insert_message_tx(pg_store *s, const dt_message *m, const char *default_id,
                               bool *delivered, dt_error *err)
{
    (void)s;
    (void)m;
    (void)default_id;
    *delivered = false;
    return pg_unimplemented(err, "send_message");
}
