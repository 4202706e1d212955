/* pg_entity.c — the PostgreSQL backend's entities: not built yet. What a commit calls here
 * answers DT_ERR_UNIMPLEMENTED, so an episode that touches entities fails alone (the rest of
 * its batch applies) with the reason named. */
#include "pg_internal.h"

dt_status pg_entity_message_tx(pg_store *s, const dt_entity_message *m, dt_error *err)
{
    (void)s;
    (void)m;
    return pg_unimplemented(err, "entity messages");
}

dt_status pg_entity_step_tx(pg_store *s, const dt_entity_step *step, dt_error *err)
{
    (void)s;
    (void)step;
    return pg_unimplemented(err, "entity steps");
}

dt_status pg_entity_unlock_tx(pg_store *s, const char *holder, const dt_entity_unlock *u,
                              dt_error *err)
{
    (void)s;
    (void)holder;
    (void)u;
    return pg_unimplemented(err, "entity unlocks");
}

dt_status pg_entity_release_tx(pg_store *s, const char *holder, dt_error *err)
{
    (void)s;
    (void)holder;
    return pg_unimplemented(err, "entity lock release");
}
