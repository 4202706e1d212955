/* migrate_cmd.c — `dtask migrate`: bring a database's schema up to this build's version and
 * say which it is. Opening a store migrates it anyway (`dtask serve` does at start-up); this
 * is the step an operator runs once before starting many nodes of a new version, and the
 * check that a database is one this build can use (a newer one is refused, naming both
 * versions). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_spec migrate_spec = {
    "migrate", "", 0, 0,
    "usage: dtask migrate [--db PATH|URL] [--schema NAME]\n"
    "\n"
    "Bring a database's schema up to this build's version (the same happens when dtask serve\n"
    "opens it) and print the version.\n"
    "\n"
    "  --db PATH|URL   a SQLite file, or a PostgreSQL URL postgres://USER@HOST:PORT/DB\n"
    "                  (default " DT_DEFAULT_DB_PATH ")\n"
    "  --schema NAME   PostgreSQL: the schema of the hub's tables (default dtask; task hub\n"
    "                  NAME of dtask serve: dtask_NAME)\n"};

int cli_migrate(int argc, char **argv)
{
    const char *db = DT_DEFAULT_DB_PATH, *schema = NULL;
    const cli_opt opts[] = {{"--db", &db, NULL}, {"--schema", &schema, NULL}, {NULL, NULL, NULL}};
    cli_args a;
    int rc;
    if (!cli_parse(&migrate_spec, opts, argc, argv, &a, &rc))
        return rc;
    bool pg = dt_store_is_postgres(db);
    if (schema && !pg)
        return cli_usage_error("migrate", "--schema is for a PostgreSQL --db only");
    dt_store *s = NULL;
    dt_error err;
    dt_status st = pg ? dt_store_open_postgres(db, schema, &s, &err)
                      : dt_store_open_sqlite(db, DT_SYNC_FULL, &s, &err);
    if (st != DT_OK) {
        fprintf(stderr, "dtask migrate: %s\n", err.message);
        return st == DT_ERR_INVALID_ARG ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
    }
    printf("%s schema version %d: up to date\n", pg ? "PostgreSQL" : "SQLite",
           dt_store_schema_version(s));
    dt_store_close(s);
    return CLI_EXIT_OK;
}
