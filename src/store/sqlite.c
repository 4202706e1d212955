/* sqlite.c — the SQLite backend: opening a store file (parent directory, identity check, WAL,
 * synchronous mode, schema), the prepared-statement cache, the helpers the other backend files
 * share (binding, errors, transactions, event blobs), and close. The operations themselves are
 * in sqlite_instance.c, sqlite_lease.c, sqlite_commit.c and sqlite_query.c.
 *
 * Schema (user_version 6, application_id 'DTSK'): instances (one row per instance, with its
 * lease), history (instance_id, seq, event blob), inbox (messages with a visibility time and
 * the execution they belong to), activities (activity work items with their lease), entities
 * (one row per entity: state, lock holder, lease) and entity_inbox (their queues, with who
 * sent each message). Events are HistoryEvent bytes. Version 5 added the trace context and
 * tags of activities and the orchestration's tracing span, version 6 the entity tables;
 * version 4 and 5 files are migrated when opened, older ones, from development builds, are
 * refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "sqlite_internal.h"

#define SCHEMA_VERSION 8
#define MIGRATES_FROM 4   /* the oldest version migrate_sql brings up to date */
#define BASE_VERSION 6    /* schema_sql's shape: a new file takes the migrations after it */
#define APPLICATION_ID 0x4454534B /* 'DTSK' */
#define BUSY_TIMEOUT_MS 5000
#define CACHE_KB "32768"   /* page cache of each connection: 32 MB at most */
#define CHECKPOINT_PAGES 4000
#define TEXT_OF(x) #x
#define TEXT(x) TEXT_OF(x)   /* a number macro as a string literal */
#define READER_CACHE_KB "4096"   /* the reader connection's page cache */

_Static_assert(DT_STATUS_RUNNING == 0 && DT_STATUS_FAILED == 3,
               "ST_INSTANCE_REOPEN spells these statuses as numbers");

/* The entity tables (version 6). An entity's lease is lock_owner/lock_expires as for
 * instances; its lock (a critical section's) is locked_by/locked_execution/lock_section. */
#define ENTITY_SCHEMA                                                                          \
    "CREATE TABLE entities ("                                                                  \
    " instance_id TEXT PRIMARY KEY NOT NULL,"                                                  \
    " name TEXT NOT NULL,"                                                                     \
    " state TEXT,"                                                                             \
    " last_modified INTEGER NOT NULL,"                                                         \
    " locked_by TEXT,"                                                                         \
    " locked_execution TEXT,"                                                                  \
    " lock_section TEXT,"                                                                      \
    " lock_owner TEXT,"                                                                        \
    " lock_expires INTEGER NOT NULL DEFAULT 0);"                                               \
    "CREATE INDEX entities_by_holder ON entities (locked_by) WHERE locked_by IS NOT NULL;"     \
    "CREATE TABLE entity_inbox ("                                                              \
    " id INTEGER PRIMARY KEY,"                                                                 \
    " entity_id TEXT NOT NULL,"                                                                \
    " visible_at INTEGER NOT NULL,"                                                            \
    " sender TEXT,"                                                                            \
    " sender_execution TEXT,"                                                                  \
    " event BLOB NOT NULL);"                                                                   \
    "CREATE INDEX entity_inbox_by_entity ON entity_inbox (entity_id, id);"                     \
    "CREATE INDEX entity_inbox_by_visible ON entity_inbox (visible_at);"

/* Lists go newest first: an index for that order, made when a file is opened if it lacks it
 * (an index only: files of schema 6 with or without it are the same to every build). */
#define NEWEST_INDEX_SQL                                                                     \
    "CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_at, instance_id);"

/* The schema of version 6 (BASE_VERSION); later versions' changes are migrate_sql's, made on a
 * new file as on an old one, so both end the same. */
static const char *const schema_sql =
    "CREATE TABLE instances ("
    " instance_id TEXT PRIMARY KEY NOT NULL,"
    " execution_id TEXT,"
    " name TEXT,"
    " version TEXT,"
    " status INTEGER NOT NULL,"
    " input TEXT,"
    " output TEXT,"
    " custom_status TEXT,"
    " failure BLOB,"
    " created_at INTEGER NOT NULL,"
    " last_updated_at INTEGER NOT NULL,"
    " completed_at INTEGER NOT NULL DEFAULT 0,"
    " scheduled_start INTEGER NOT NULL DEFAULT 0,"
    " parent_instance_id TEXT,"
    " parent_execution_id TEXT,"
    " parent_name TEXT,"
    " parent_task_id INTEGER,"
    " tags TEXT,"
    " lock_owner TEXT,"
    " lock_expires INTEGER NOT NULL DEFAULT 0,"
    " span_id TEXT,"
    " span_start INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE history ("
    " instance_id TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " event BLOB NOT NULL,"
    " PRIMARY KEY (instance_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE inbox ("
    " id INTEGER PRIMARY KEY,"
    " instance_id TEXT NOT NULL,"
    " execution_id TEXT,"
    " visible_at INTEGER NOT NULL,"
    " kind INTEGER NOT NULL DEFAULT 0,"   /* the event's type: a terminate is found by it */
    " event BLOB NOT NULL);"
    "CREATE INDEX inbox_by_instance ON inbox (instance_id, id);"
    "CREATE INDEX inbox_by_visible ON inbox (visible_at);"
    "CREATE TABLE activities ("
    " id INTEGER PRIMARY KEY,"
    " instance_id TEXT NOT NULL,"
    " execution_id TEXT,"
    " task_id INTEGER NOT NULL,"
    " name TEXT,"
    " version TEXT,"
    " input TEXT,"
    " visible_at INTEGER NOT NULL,"
    " lock_owner TEXT,"
    " lock_expires INTEGER NOT NULL DEFAULT 0,"
    " delivery_count INTEGER NOT NULL DEFAULT 0,"
    " trace_parent TEXT,"
    " trace_state TEXT,"
    " tags TEXT);"
    "CREATE INDEX activities_by_visible ON activities (visible_at);"
    ENTITY_SCHEMA;

/* Version 7: work found by name. A filtered taker (a worker that registered some names) looks
 * up each of its names through an index, so what it costs does not grow with the work of
 * other names waiting (sqlite_candidates.c). An inbox message carries its instance's
 * orchestrator name (set as it goes in; ST_INBOX_RENAME when a new execution names another),
 * an entity message its entity's name; terminates are found by their own index, for any
 * filtered taker ends an instance without running its code. */
#define BY_NAME_SCHEMA                                                                         \
    "ALTER TABLE inbox ADD COLUMN name TEXT;"                                                  \
    "UPDATE inbox SET name = (SELECT i.name FROM instances i"                                  \
    " WHERE i.instance_id = inbox.instance_id);"                                               \
    "ALTER TABLE entity_inbox ADD COLUMN name TEXT;"                                           \
    "UPDATE entity_inbox SET name = (SELECT e.name FROM entities e"                            \
    " WHERE e.instance_id = entity_inbox.entity_id);"                                          \
    "CREATE INDEX inbox_by_name ON inbox (name, visible_at);"                                  \
    "CREATE INDEX inbox_terminates ON inbox (visible_at) WHERE kind = 5;"                      \
    "CREATE INDEX activities_by_name ON activities (name, visible_at);"                        \
    "CREATE INDEX entity_inbox_by_name ON entity_inbox (name, visible_at);"

_Static_assert(DT_EVENT_EXECUTION_TERMINATED == 5, "inbox_terminates spells it as 5");

/* Version 8: the history's generation (dt_orch_item.history_gen), bumped whenever an episode
 * replaces the history, so a copy cached from an earlier lease is known stale. */
#define HISTORY_GEN_SCHEMA "ALTER TABLE instances ADD COLUMN history_gen INTEGER NOT NULL DEFAULT 0;"

/* Migrations, by the version they start from: each brings a file one version up. */
static const char *const migrate_sql[] = {
    /* 4 to 5: the columns version 5 added, at the end of their tables as above */
    [4] = "ALTER TABLE instances ADD COLUMN span_id TEXT;"
          "ALTER TABLE instances ADD COLUMN span_start INTEGER NOT NULL DEFAULT 0;"
          "ALTER TABLE activities ADD COLUMN trace_parent TEXT;"
          "ALTER TABLE activities ADD COLUMN trace_state TEXT;"
          "ALTER TABLE activities ADD COLUMN tags TEXT;",
    /* 5 to 6: the entity tables */
    [5] = ENTITY_SCHEMA,
    /* 6 to 7: names on queued work, and the indexes that find work by name */
    [6] = BY_NAME_SCHEMA,
    /* 7 to 8: the history's generation */
    [7] = HISTORY_GEN_SCHEMA,
};

/* Tables and indexes of ours; a foreign database that has any of these names conflicts. */
static const char *const schema_names[] = {
    "instances", "history", "inbox", "activities", "inbox_by_instance", "inbox_by_visible",
    "activities_by_visible", "entities", "entity_inbox", "entities_by_holder",
    "entity_inbox_by_entity", "entity_inbox_by_visible", "inbox_by_name", "inbox_terminates",
    "activities_by_name", "entity_inbox_by_name",
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT dt_entry",
    [ST_RELEASE] = "RELEASE dt_entry",
    [ST_ROLLBACK_TO] = "ROLLBACK TO dt_entry",

    [ST_INSTANCE_STATUS] =
        "SELECT status, parent_instance_id, history_gen FROM instances WHERE instance_id = ?1",
    [ST_INSTANCE_GET] = "SELECT " STORE_INSTANCE_COLUMNS " FROM instances WHERE instance_id = ?1",
    [ST_INSTANCE_INSERT] =
        "INSERT INTO instances (instance_id, execution_id, name, version, status, input,"
        " created_at, last_updated_at, scheduled_start, parent_instance_id,"
        " parent_execution_id, parent_name, parent_task_id, tags, history_gen)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?7)",
    [ST_INSTANCE_DELETE] = "DELETE FROM instances WHERE instance_id = ?1",
    /* A lease is an UPDATE and then a SELECT of the leased row: RETURNING collects its rows
     * in a temporary table made and dropped at every run, which cost more than both. */
    [ST_INSTANCE_LEASE] = "UPDATE instances SET lock_owner = ?2, lock_expires = ?3"
                          " WHERE instance_id = ?1",
    /* the commit's own leases: only an instance that is free and has a visible message */
    [ST_INSTANCE_LEASE_READY] =
        "UPDATE instances SET lock_owner = ?2, lock_expires = ?3"
        " WHERE instance_id = ?1 AND (lock_owner IS NULL OR lock_expires < ?4)"
        " AND EXISTS (SELECT 1 FROM inbox WHERE instance_id = ?1 AND visible_at <= ?4)",
    /* the leased row, its history generation and its history's length (seqs are dense) */
    [ST_INSTANCE_LEASED] =
        "SELECT " STORE_INSTANCE_COLUMNS ", history_gen,"
        " (SELECT COALESCE(MAX(seq) + 1, 0) FROM history WHERE instance_id = ?1)"
        " FROM instances WHERE instance_id = ?1",
    [ST_INSTANCE_RENEW] = "UPDATE instances SET lock_expires = ?3"
                          " WHERE instance_id = ?1 AND lock_owner = ?2",
    /* an abandon with a retry time keeps the row leased by nobody ('') until then */
    [ST_INSTANCE_ABANDON] = "UPDATE instances SET lock_expires = ?3,"
                            " lock_owner = CASE WHEN ?3 > 0 THEN '' ELSE NULL END"
                            " WHERE instance_id = ?1 AND lock_owner = ?2",
    [ST_INSTANCE_EPISODE_UPDATE] =
        "UPDATE instances SET status = ?2, output = ?3, custom_status = ?4, failure = ?5,"
        " completed_at = ?6, last_updated_at = ?7, name = COALESCE(?8, name),"
        " input = COALESCE(?9, input), execution_id = COALESCE(?10, execution_id),"
        " version = COALESCE(?12, version),"
        " span_start = CASE WHEN ?13 IS NULL THEN span_start ELSE ?14 END,"
        " span_id = COALESCE(?13, span_id), tags = COALESCE(?15, tags),"
        " history_gen = history_gen + ?16, lock_owner = NULL, lock_expires = 0"
        " WHERE instance_id = ?1 AND lock_owner = ?11",

    /* a speculative episode's lease (dt_episode.consumes), taken and released inside its
     * commit: only an instance that nobody holds (an expired lease too is refused: no clock
     * needed, and the result then goes to the inbox, which is never wrong), with nothing in
     * its inbox (a terminate, a suspend or an event that came first is seen first, with the
     * result, as without speculation; a timer not yet due too, to need no clock), Running
     * (?6), in the execution (?4), history generation (?5) and length (?7) the episode ran on */
    [ST_INSTANCE_CLAIM] =
        "UPDATE instances SET lock_owner = ?2, lock_expires = ?3"
        " WHERE instance_id = ?1 AND lock_owner IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM inbox WHERE instance_id = ?1)"
        " AND execution_id IS ?4 AND history_gen = ?5 AND status = ?6"
        " AND (SELECT COALESCE(MAX(seq) + 1, 0) FROM history WHERE instance_id = ?1) = ?7",

    /* a rewind: Failed (3) becomes Running (0) as its request goes in; not while a lease is
     * held, whose commit would put the old status back */
    [ST_INSTANCE_REOPEN] =
        "UPDATE instances SET status = 0, output = NULL, failure = NULL, completed_at = 0,"
        " last_updated_at = ?2 WHERE instance_id = ?1 AND status = 3"
        " AND (lock_owner IS NULL OR lock_owner = '' OR lock_expires < ?2)",
    [ST_HISTORY_LOAD] = "SELECT seq, event FROM history WHERE instance_id = ?1 AND seq >= ?2"
                        " AND seq < ?3 ORDER BY seq",
    /* length() of a blob reads its size from the record, not its pages */
    [ST_HISTORY_SIZES] = "SELECT seq, length(event) FROM history WHERE instance_id = ?1"
                         " AND seq >= ?2 ORDER BY seq",
    [ST_HISTORY_INSERT] = "INSERT INTO history (instance_id, seq, event) VALUES (?1, ?2, ?3)",
    [ST_HISTORY_DELETE] = "DELETE FROM history WHERE instance_id = ?1",

    /* only to an instance there is, with its name (inbox_by_name) */
    [ST_INBOX_INSERT] =
        "INSERT INTO inbox (instance_id, visible_at, event, execution_id, kind, name)"
        " SELECT ?1, ?2, ?3, ?4, ?5, name FROM instances WHERE instance_id = ?1",
    /* a new execution under another name: its waiting messages follow the name */
    [ST_INBOX_RENAME] = "UPDATE inbox SET name = ?2 WHERE instance_id = ?1 AND name IS NOT ?2",
    [ST_INBOX_LOAD_VISIBLE] = "SELECT id, event, execution_id FROM inbox"
                              " WHERE instance_id = ?1 AND visible_at <= ?2 ORDER BY id",
    [ST_INBOX_ANY_VISIBLE] = "SELECT 1 FROM inbox WHERE instance_id = ?1 AND visible_at <= ?2"
                             " LIMIT 1",
    [ST_INBOX_DELETE_ONE] = "DELETE FROM inbox WHERE id = ?1 AND instance_id = ?2",
    [ST_INBOX_DELETE_ALL] = "DELETE FROM inbox WHERE instance_id = ?1",
    /* instances with a visible message and no live lease, the longest due first, for a taker
     * of any name. DISTINCT (not GROUP BY ... ORDER BY MIN) so it streams along
     * inbox_by_visible and stops at the limit: a hundred thousand timers come due at once,
     * and each lease reads only what it takes. */
    [ST_ORCH_CANDIDATES] =
        "SELECT DISTINCT m.instance_id FROM inbox m"
        " JOIN instances i ON i.instance_id = m.instance_id"
        " WHERE m.visible_at <= ?1 AND (i.lock_owner IS NULL OR i.lock_expires < ?1)"
        " ORDER BY m.visible_at LIMIT ?2",
    /* The candidates of one name (?3) of a filter, at one version (?4; NULL: any), through
     * the name's index: a filtered taker reads its own names' work, never another's. Each
     * result is an id and when its work became visible, for the merge of the names
     * (sqlite_candidates.c). An instance may come once per message; the merge keeps one. */
    [ST_ORCH_NAMED] =
        "SELECT m.instance_id, m.visible_at FROM inbox m INDEXED BY inbox_by_name"
        " JOIN instances i ON i.instance_id = m.instance_id"
        " WHERE m.name = ?3 AND m.visible_at <= ?1"
        " AND (i.lock_owner IS NULL OR i.lock_expires < ?1)"
        " AND (?4 IS NULL OR COALESCE(i.version, '') = ?4)"
        " ORDER BY m.visible_at LIMIT ?2",
    /* instances with a terminate waiting, which every filtered taker takes */
    [ST_ORCH_TERMINATES] =
        "SELECT m.instance_id, m.visible_at FROM inbox m INDEXED BY inbox_terminates"
        " JOIN instances i ON i.instance_id = m.instance_id"
        " WHERE m.kind = 5 AND m.visible_at <= ?1"
        " AND (i.lock_owner IS NULL OR i.lock_expires < ?1)"
        " ORDER BY m.visible_at LIMIT ?2",

    /* ---- entities (sqlite_entity.c) ---- */
    [ST_ENTITY_UPSERT] = "INSERT INTO entities (instance_id, name, last_modified)"
                         " VALUES (?1, ?2, ?3) ON CONFLICT (instance_id) DO NOTHING",
    [ST_ENTITY_INBOX_INSERT] = "INSERT INTO entity_inbox (entity_id, visible_at, sender,"
                               " sender_execution, event, name)"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* entities with a message they may take (visible, and the holder's when locked) and no
     * live lease, for a taker of any name */
    [ST_ENTITY_CANDIDATES] =
        "SELECT DISTINCT m.entity_id FROM entity_inbox m"
        " JOIN entities e ON e.instance_id = m.entity_id"
        " WHERE m.visible_at <= ?1 AND (e.lock_owner IS NULL OR e.lock_expires < ?1)"
        " AND (e.locked_by IS NULL OR m.sender = e.locked_by)"
        " ORDER BY m.visible_at LIMIT ?2",
    /* the same for one name (?3) of a filter, as ST_ORCH_NAMED */
    [ST_ENTITY_NAMED] =
        "SELECT m.entity_id, m.visible_at FROM entity_inbox m INDEXED BY entity_inbox_by_name"
        " JOIN entities e ON e.instance_id = m.entity_id"
        " WHERE m.name = ?3 AND m.visible_at <= ?1"
        " AND (e.lock_owner IS NULL OR e.lock_expires < ?1)"
        " AND (e.locked_by IS NULL OR m.sender = e.locked_by)"
        " ORDER BY m.visible_at LIMIT ?2",
    [ST_ENTITY_LEASE] = "UPDATE entities SET lock_owner = ?2, lock_expires = ?3"
                        " WHERE instance_id = ?1 AND (lock_owner IS NULL OR lock_expires < ?4)"
                        " RETURNING state, locked_by, locked_execution, lock_section",
    /* what a step may take: visible, and the holder's when locked (?3); a bounded window */
    [ST_ENTITY_INBOX_LOAD] = "SELECT id, visible_at, sender, sender_execution, event"
                             " FROM entity_inbox WHERE entity_id = ?1 AND visible_at <= ?2"
                             " AND (?3 IS NULL OR sender = ?3) ORDER BY id LIMIT ?4",
    [ST_ENTITY_RENEW] = "UPDATE entities SET lock_expires = ?3"
                        " WHERE instance_id = ?1 AND lock_owner = ?2",
    [ST_ENTITY_ABANDON] = "UPDATE entities SET lock_expires = ?3,"
                          " lock_owner = CASE WHEN ?3 > 0 THEN '' ELSE NULL END"
                          " WHERE instance_id = ?1 AND lock_owner = ?2",
    [ST_ENTITY_STEP] =
        "UPDATE entities SET lock_owner = NULL, lock_expires = 0,"
        " last_modified = CASE WHEN ?4 THEN ?3 ELSE last_modified END,"
        " state = CASE WHEN ?4 THEN ?5 ELSE state END,"
        " locked_by = CASE WHEN ?6 THEN ?7 ELSE locked_by END,"
        " locked_execution = CASE WHEN ?6 THEN ?8 ELSE locked_execution END,"
        " lock_section = CASE WHEN ?6 THEN ?9 ELSE lock_section END"
        " WHERE instance_id = ?1 AND lock_owner = ?2",
    [ST_ENTITY_INBOX_DELETE_ONE] = "DELETE FROM entity_inbox WHERE id = ?1 AND entity_id = ?2",
    [ST_ENTITY_UNLOCK] = "UPDATE entities SET locked_by = NULL, locked_execution = NULL,"
                         " lock_section = NULL"
                         " WHERE instance_id = ?1 AND locked_by = ?2 AND lock_section = ?3",
    [ST_ENTITY_RELEASE_ALL] = "UPDATE entities SET locked_by = NULL, locked_execution = NULL,"
                              " lock_section = NULL WHERE locked_by = ?1",
    [ST_ENTITY_GET] = "SELECT instance_id, state, last_modified, locked_by,"
                      " (SELECT COUNT(*) FROM entity_inbox m WHERE m.entity_id = ?1)"
                      " FROM entities WHERE instance_id = ?1",
    /* ?1, ?2 the id range of the prefix (as STORE_FILTER_WHERE's ?5, ?6); ?3 the token;
     * ?4, ?5 the last-modified range; ?6 include entities without state that are transient
     * (locked, or with messages waiting; an empty row is a deleted entity, never listed);
     * ?7 the limit */
    [ST_ENTITY_QUERY] =
        "SELECT e.instance_id, e.state, e.last_modified, e.locked_by,"
        " (SELECT COUNT(*) FROM entity_inbox m WHERE m.entity_id = e.instance_id)"
        " FROM entities e WHERE e.instance_id >= ?1 AND e.instance_id < ?2"
        " AND (?3 IS NULL OR e.instance_id > ?3)"
        " AND e.last_modified >= ?4 AND e.last_modified < ?5"
        " AND (e.state IS NOT NULL OR (?6 AND (e.locked_by IS NOT NULL OR EXISTS"
        " (SELECT 1 FROM entity_inbox m WHERE m.entity_id = e.instance_id))))"
        " ORDER BY e.instance_id LIMIT ?7",
    [ST_ENTITY_CLEAN_EMPTY] =
        "DELETE FROM entities WHERE state IS NULL AND locked_by IS NULL"
        " AND (lock_owner IS NULL OR lock_expires < ?1)"
        " AND NOT EXISTS (SELECT 1 FROM entity_inbox m WHERE m.entity_id = entities.instance_id)",
    /* a step that left its entity with no state, lock or message removes it (entity.c) */
    [ST_ENTITY_DROP_EMPTY] =
        "DELETE FROM entities WHERE instance_id = ?1 AND state IS NULL AND locked_by IS NULL"
        " AND lock_owner IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM entity_inbox m WHERE m.entity_id = ?1)",
    /* a holder runs while Running (0), Pending (6) or Suspended (7) on the same execution */
    [ST_ENTITY_CLEAN_ORPHANED] =
        "UPDATE entities SET locked_by = NULL, locked_execution = NULL, lock_section = NULL"
        " WHERE locked_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM instances i"
        " WHERE i.instance_id = entities.locked_by AND i.status IN (0, 6, 7)"
        " AND (entities.locked_execution IS NULL"
        " OR i.execution_id IS entities.locked_execution))",

    [ST_ACTIVITY_INSERT] =
        "INSERT INTO activities (instance_id, execution_id, task_id, name, version, input,"
        " visible_at, trace_parent, trace_state, tags)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_ACTIVITY_CANDIDATES] =
        "SELECT id FROM activities WHERE visible_at <= ?1"
        " AND (lock_owner IS NULL OR lock_expires < ?1) ORDER BY id LIMIT ?2",
    /* the same for one name (?3) and version (?4; NULL: any) of a filter, as ST_ORCH_NAMED */
    [ST_ACTIVITY_NAMED] =
        "SELECT id, visible_at FROM activities INDEXED BY activities_by_name"
        " WHERE name = ?3 AND visible_at <= ?1 AND (lock_owner IS NULL OR lock_expires < ?1)"
        " AND (?4 IS NULL OR COALESCE(version, '') = ?4) ORDER BY visible_at, id LIMIT ?2",
    [ST_ACTIVITY_LEASE] =
        "UPDATE activities SET lock_owner = ?2, lock_expires = ?3,"
        " delivery_count = delivery_count + 1 WHERE id = ?1",
    [ST_ACTIVITY_LEASED] =
        "SELECT instance_id, execution_id, task_id, name, version, input, delivery_count,"
        " trace_parent, trace_state, tags FROM activities WHERE id = ?1",
    [ST_ACTIVITY_RENEW] =
        "UPDATE activities SET lock_expires = ?3 WHERE id = ?1 AND lock_owner = ?2",
    [ST_ACTIVITY_ABANDON] = "UPDATE activities SET lock_expires = ?3,"
                            " lock_owner = CASE WHEN ?3 > 0 THEN '' ELSE NULL END"
                            " WHERE id = ?1 AND lock_owner = ?2",
    [ST_ACTIVITY_DELETE_ONE] = "DELETE FROM activities WHERE id = ?1 AND lock_owner = ?2",
    [ST_ACTIVITY_DELETE_ALL] = "DELETE FROM activities WHERE instance_id = ?1",

    /* one row past the page (?8 is page size + 1) tells whether there is a next page */
    [ST_QUERY_FULL] = "SELECT " STORE_INSTANCE_COLUMNS " FROM instances" STORE_FILTER_WHERE
                      " ORDER BY instance_id LIMIT ?8",
    /* without payloads: the same columns, with NULL for input, output and custom status */
    [ST_QUERY_BRIEF] =
        "SELECT instance_id, execution_id, name, version, status, NULL, NULL, NULL, failure,"
        " created_at, last_updated_at, completed_at, scheduled_start, parent_instance_id, tags,"
        " span_id, span_start FROM instances" STORE_FILTER_WHERE " ORDER BY instance_id LIMIT ?8",
    /* the same, newest first (instances_by_created) */
    [ST_QUERY_FULL_NEWEST] = "SELECT " STORE_INSTANCE_COLUMNS " FROM instances"
                             STORE_FILTER_WHERE " ORDER BY created_at DESC, instance_id DESC"
                             " LIMIT ?8",
    [ST_QUERY_BRIEF_NEWEST] =
        "SELECT instance_id, execution_id, name, version, status, NULL, NULL, NULL, failure,"
        " created_at, last_updated_at, completed_at, scheduled_start, parent_instance_id, tags,"
        " span_id, span_start FROM instances" STORE_FILTER_WHERE
        " ORDER BY created_at DESC, instance_id DESC LIMIT ?8",
    /* a purge deletes what hangs off the matching rows first, then the rows */
    /* a purge by filter goes STORE_PURGE_BATCH instances (?14) a transaction: the first by
     * id of those the filter finds, the same set for each statement of one transaction */
    [ST_PURGE_HISTORY] = "DELETE FROM history WHERE instance_id IN"
                         " (SELECT instance_id FROM instances" STORE_FILTER_WHERE
                         " ORDER BY instance_id LIMIT ?14)",
    [ST_PURGE_INBOX] = "DELETE FROM inbox WHERE instance_id IN"
                       " (SELECT instance_id FROM instances" STORE_FILTER_WHERE
                       " ORDER BY instance_id LIMIT ?14)",
    [ST_PURGE_ACTIVITIES] = "DELETE FROM activities WHERE instance_id IN"
                            " (SELECT instance_id FROM instances" STORE_FILTER_WHERE
                            " ORDER BY instance_id LIMIT ?14)",
    [ST_DEPTH_ORCH] = "SELECT COUNT(DISTINCT instance_id) FROM inbox WHERE visible_at <= ?1",
    [ST_COUNT_BY_STATUS] = "SELECT status, COUNT(*) FROM instances GROUP BY status",
    [ST_DEPTH_ACT] = "SELECT COUNT(*) FROM activities WHERE visible_at <= ?1"
                     " AND (lock_owner IS NULL OR lock_expires < ?1)",
    [ST_PURGE_INSTANCES] = "DELETE FROM instances WHERE instance_id IN"
                           " (SELECT instance_id FROM instances" STORE_FILTER_WHERE
                           " ORDER BY instance_id LIMIT ?14)",
};

/* SIZE_IN_UNITS: N bytes as "%llu %s" arguments: whole MiB, else KiB */
#define SIZE_IN_UNITS(n) \
    (unsigned long long)((n) % (1u << 20) ? (n) >> 10 : (n) >> 20), (n) % (1u << 20) ? "KiB" : "MiB"

/* ---- shared helpers -------------------------------------------------------------------- */

static dt_status map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return DT_OK;
    case SQLITE_FULL: return DT_ERR_NO_SPACE;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_PROTOCOL: return DT_ERR_IO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT: return DT_ERR_CORRUPT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return DT_ERR_TIMEOUT;
    case SQLITE_NOMEM: return DT_ERR_NOMEM;
    case SQLITE_TOOBIG: return DT_ERR_INVALID_ARG;
    default: return DT_ERR_INTERNAL;
    }
}

dt_status store_db_error(sqlite_store *s, sqlite3 *db, int rc, dt_error *err, const char *what)
{
    dt_status st = map_rc(rc);
    if (st == DT_OK)
        st = DT_ERR_INTERNAL;   /* a caller saw an unexpected ROW/DONE */
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    uint64_t limit = atomic_load(&s->max_bytes);
    if (st == DT_ERR_NO_SPACE && limit)   /* the limit, or the disk: say both */
        return dt_error_set(err, st, "sqlite store '%s': %s: %s (the database's size limit is "
                            "%llu %s; purge instances to make room)", s->path, what, msg,
                            SIZE_IN_UNITS(limit));
    return dt_error_set(err, st, "sqlite store '%s': %s: %s", s->path, what, msg);
}

dt_status store_sql_error(sqlite_store *s, int rc, dt_error *err, const char *what)
{
    return store_db_error(s, s->db, rc, err, what);
}

sqlite3_stmt *store_stmt_of(sqlite3_stmt *const *stmts, store_stmt_id id)
{
    sqlite3_stmt *st = stmts[id];
    sqlite3_reset(st);   /* its result was seen when it last ran */
    sqlite3_clear_bindings(st);
    return st;
}

sqlite3_stmt *store_stmt(sqlite_store *s, store_stmt_id id)
{
    return store_stmt_of(s->stmts, id);
}

void store_bind_text(sqlite3_stmt *st, int i, const char *v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

void store_bind_int64(sqlite3_stmt *st, int i, int64_t v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(st, i, v);
}

void store_bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n, int *rc)
{
    static const uint8_t empty[1];
    if (*rc != SQLITE_OK)
        return;
    /* a NULL pointer would bind SQL NULL; an empty blob is still a blob */
    *rc = sqlite3_bind_blob64(st, i, p ? p : empty, n, SQLITE_STATIC);
}

const char *store_col_text(dt_arena *arena, sqlite3_stmt *stmt, int col, dt_status *st)
{
    if (*st != DT_OK || sqlite3_column_type(stmt, col) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(stmt, col);
    int n = sqlite3_column_bytes(stmt, col);
    char *c = t ? dt_arena_strndup(arena, (const char *)t, (size_t)n) : NULL;
    if (c == NULL)
        *st = DT_ERR_NOMEM;
    return c;
}

dt_status store_step_done(sqlite_store *s, sqlite3_stmt *stmt, dt_error *err, const char *what)
{
    int rc = sqlite3_step(stmt);
    dt_status st = DT_OK;
    if (rc != SQLITE_DONE)
        st = store_sql_error(s, rc, err, what);
    sqlite3_reset(stmt);
    return st;
}

dt_status store_exec(sqlite_store *s, store_stmt_id id, dt_error *err, const char *what)
{
    return store_step_done(s, store_stmt(s, id), err, what);
}

/* set_relaxed: synchronous NORMAL (RELAXED) or back to FULL, when the store is FULL. */
static dt_status set_relaxed(sqlite_store *s, bool relaxed, dt_error *err)
{
    if (!s->full_sync || s->relaxed == relaxed)
        return DT_OK;
    int rc = sqlite3_exec(s->db, relaxed ? "PRAGMA synchronous = NORMAL"
                                         : "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sql_error(s, rc, err, "set synchronous");
    s->relaxed = relaxed;
    return DT_OK;
}

dt_status store_begin_write(sqlite_store *s, dt_error *err)
{
    dt_status st = set_relaxed(s, false, err);   /* every durable write is FULL again */
    if (st != DT_OK)
        return st;
    return store_exec(s, ST_BEGIN_IMMEDIATE, err, "begin write transaction");
}

dt_status store_begin_lease(sqlite_store *s, dt_error *err)
{
    dt_status st = set_relaxed(s, true, err);
    if (st != DT_OK)
        return st;
    return store_exec(s, ST_BEGIN_IMMEDIATE, err, "begin lease transaction");
}

dt_status store_begin_read(sqlite_store *s, dt_error *err)
{
    return store_exec(s, ST_BEGIN_READ, err, "begin read transaction");
}

dt_status store_commit_tx(sqlite_store *s, dt_error *err)
{
    dt_status r = store_exec(s, ST_COMMIT, err, "commit");
    /* a commit sends what its WAL file held before SQLite publishes it (sqlite_vfs.c), so
     * nothing is left unless a write failed; what a failed commit held goes unwritten with its
     * rollback */
    if (r != DT_OK || store_sqlite_vfs_flush(s->db))
        return r;
    /* the commit is in the log but a frame's header is not: no later sync may vouch for it
     * (for ever, as after a failed fsync: the batch is reported failed though its rows,
     * leases included, stay; nothing is told durable until a restart) */
    pthread_mutex_lock(&s->sync_mu);
    s->sync_failed = true;
    pthread_mutex_unlock(&s->sync_mu);
    return dt_error_set(err, DT_ERR_IO, "write to the write-ahead log of %s failed", s->path);
}

void store_rollback(sqlite_store *s)
{
    /* After some errors (IOERR, FULL, ...) SQLite has already rolled back on its own. */
    if (!sqlite3_get_autocommit(s->db))
        store_exec(s, ST_ROLLBACK, NULL, "rollback");
}

dt_status store_decode_column(sqlite3_stmt *stmt, int col, dt_arena *arena, dt_event *out,
                              dt_error *err, const char *what)
{
    return store_decode_blob(sqlite3_column_blob(stmt, col),
                             (size_t)sqlite3_column_bytes(stmt, col), arena, out, err, what);
}

dt_status store_read_instance(sqlite3_stmt *stmt, dt_arena *arena, dt_instance_state *state,
                              dt_error *err)
{
    dt_status st = DT_OK;
    memset(state, 0, sizeof *state);
    state->instance_id = store_col_text(arena, stmt, 0, &st);
    state->execution_id = store_col_text(arena, stmt, 1, &st);
    state->name = store_col_text(arena, stmt, 2, &st);
    state->version = store_col_text(arena, stmt, 3, &st);
    state->status = (dt_runtime_status)sqlite3_column_int(stmt, 4);
    state->input = store_col_text(arena, stmt, 5, &st);
    state->output = store_col_text(arena, stmt, 6, &st);
    state->custom_status = store_col_text(arena, stmt, 7, &st);
    state->created_at = sqlite3_column_int64(stmt, 9);
    state->last_updated_at = sqlite3_column_int64(stmt, 10);
    state->completed_at = sqlite3_column_int64(stmt, 11);
    state->scheduled_start = sqlite3_column_int64(stmt, 12);
    state->parent_instance_id = store_col_text(arena, stmt, 13, &st);
    state->tags = store_col_text(arena, stmt, 14, &st);
    state->span_id = store_col_text(arena, stmt, 15, &st);
    state->span_start = sqlite3_column_int64(stmt, 16);
    if (st != DT_OK)
        return dt_error_set(err, st, "out of memory reading an instance row");
    if (sqlite3_column_type(stmt, 8) != SQLITE_NULL) {
        dt_event fe;
        st = store_decode_column(stmt, 8, arena, &fe, err, "instance failure details");
        if (st != DT_OK)
            return st;
        state->failure = fe.failure;
    }
    return DT_OK;
}

/* ---- opening ------------------------------------------------------------------------- */

/* make_parent_dirs: mkdir -p of PATH's directory part. */
static dt_status make_parent_dirs(const char *path, dt_error *err)
{
    size_t len = strlen(path);
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening '%s'", path);
    memcpy(buf, path, len + 1);
    char *slash = strrchr(buf, '/');
    dt_status st = DT_OK;
    if (slash == NULL || slash == buf)
        goto done;   /* in the current directory or directly under / */
    *slash = '\0';
    for (char *p = buf + 1;; p++) {
        bool end = (*p == '\0');
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0) {
            int e = errno;
            struct stat sb;
            if (e != EEXIST) {
                st = dt_error_set(err, DT_ERR_IO, "cannot create directory '%s' for store '%s': %s",
                                  buf, path, strerror(e));
                goto done;
            }
            if (stat(buf, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
                st = dt_error_set(err, DT_ERR_IO,
                                  "cannot create store '%s': '%s' exists and is not a directory",
                                  path, buf);
                goto done;
            }
        }
        if (end)
            break;
        *p = '/';
    }
done:
    free(buf);
    return st;
}

/* Run a pragma (or other one-row query) once and read its first column. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            *out = 0;
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(out, cap, "%s", t ? (const char *)t : "");
            rc = SQLITE_OK;
        } else if (rc == SQLITE_DONE) {
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static dt_status open_error(sqlite_store *s, int rc, dt_error *err, const char *what)
{
    dt_status st = map_rc(rc);
    if (st == DT_OK || st == DT_ERR_INTERNAL)
        st = DT_ERR_IO;
    if (st == DT_ERR_CORRUPT)
        return dt_error_set(err, st, "'%s' is not a durabletask database: %s (%s)", s->path,
                            sqlite3_errmsg(s->db), what);
    return dt_error_set(err, st, "cannot open store '%s': %s: %s", s->path, what,
                        sqlite3_errmsg(s->db));
}

/* check_identity: is the file ours (*CREATE false), empty of our names (*CREATE true, *FROM
 * 0), ours at a version to migrate (*CREATE true, *FROM that version), or something else
 * (DT_ERR_CORRUPT)? Only reads. */
static dt_status check_identity(sqlite_store *s, bool *create, int64_t *from, dt_error *err)
{
    *from = 0;
    int64_t app_id = 0, version = 0;
    int rc = query_int(s->db, "PRAGMA application_id", &app_id);
    if (rc == SQLITE_OK)
        rc = query_int(s->db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        return open_error(s, rc, err, "reading the schema version");
    if (app_id == APPLICATION_ID) {
        if (version >= MIGRATES_FROM && version < SCHEMA_VERSION) {
            *create = true;
            *from = version;
            return DT_OK;
        }
        if (version < SCHEMA_VERSION)
            return dt_error_set(err, DT_ERR_CORRUPT,
                                "store '%s' has schema version %lld, from an older development "
                                "build; this build needs version %d and does not migrate it "
                                "(delete the file to start afresh)",
                                s->path, (long long)version, SCHEMA_VERSION);
        if (version != SCHEMA_VERSION)
            return dt_error_set(err, DT_ERR_CORRUPT,
                                "store '%s' has schema version %lld; this build knows %d",
                                s->path, (long long)version, SCHEMA_VERSION);
        *create = false;
        return DT_OK;
    }
    if (app_id != 0 || version != 0)
        return dt_error_set(err, DT_ERR_CORRUPT,
                            "'%s' is not a durabletask database (application_id %lld, "
                            "user_version %lld)",
                            s->path, (long long)app_id, (long long)version);
    /* A plain SQLite database: ours to initialise unless it already uses our names. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_master WHERE name = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return open_error(s, rc, err, "reading the schema");
    dt_status result = DT_OK;
    for (size_t i = 0; i < sizeof schema_names / sizeof schema_names[0]; i++) {
        sqlite3_reset(st);
        rc = sqlite3_bind_text(st, 1, schema_names[i], -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            result = dt_error_set(err, DT_ERR_CORRUPT,
                                  "'%s' is not a durabletask database: it has a '%s' of its "
                                  "own",
                                  s->path, schema_names[i]);
            break;
        }
        if (rc != SQLITE_DONE) {
            result = open_error(s, rc, err, "reading the schema");
            break;
        }
    }
    sqlite3_finalize(st);
    *create = true;
    return result;
}

static dt_status create_schema(sqlite_store *s, dt_error *err)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return open_error(s, rc, err, "begin schema transaction");
    bool create = false;
    int64_t from = 0;
    /* again under the write lock: another process may have created it meanwhile */
    dt_status st = check_identity(s, &create, &from, err);
    if (st == DT_OK && create) {
        char pragmas[128];
        snprintf(pragmas, sizeof pragmas, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 APPLICATION_ID, SCHEMA_VERSION);
        if (from == 0)
            rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, NEWEST_INDEX_SQL, NULL, NULL, NULL);
        for (int64_t v = from ? from : BASE_VERSION; v < SCHEMA_VERSION && rc == SQLITE_OK; v++)
            rc = sqlite3_exec(s->db, migrate_sql[v], NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            st = open_error(s, rc, err, "creating the schema");
    } else if (st == DT_OK) {
        rc = sqlite3_exec(s->db, NEWEST_INDEX_SQL, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            st = open_error(s, rc, err, "end schema transaction");
    }
    if (st != DT_OK && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

/* open_beside: a connection for reads beside the writer, in *DB (closed by the caller, as
 * sqlite3_open_v2's are, whatever it returns). */
static int open_beside(sqlite_store *s, sqlite3 **db)
{
    int rc = sqlite3_open_v2(s->path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             store_sqlite_vfs());
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
        rc = sqlite3_exec(*db, "PRAGMA cache_size = -" READER_CACHE_KB, NULL, NULL, NULL);
    }
    return rc;
}

/* The statements a history window is read with (store_sqlite_read_history), and a query
 * (store_sqlite_query_instances). */
static const store_stmt_id HIST_STMTS[] = {ST_BEGIN_READ, ST_COMMIT, ST_INSTANCE_STATUS,
                                           ST_HISTORY_SIZES, ST_HISTORY_LOAD, ST_QUERY_FULL,
                                           ST_QUERY_BRIEF, ST_QUERY_FULL_NEWEST,
                                           ST_QUERY_BRIEF_NEWEST};

static void close_hist(sqlite_store *s)
{
    for (size_t i = 0; i < sizeof HIST_STMTS / sizeof HIST_STMTS[0]; i++) {
        sqlite3_finalize(s->hist_stmts[HIST_STMTS[i]]);
        s->hist_stmts[HIST_STMTS[i]] = NULL;
    }
    sqlite3_close(s->hist);
    s->hist = NULL;
}

/* open_hist: the history reader connection (see sqlite_internal.h). Without it, windows are
 * read on the writer's connection, as they were before. */
static void open_hist(sqlite_store *s)
{
    int rc = open_beside(s, &s->hist);
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof HIST_STMTS / sizeof HIST_STMTS[0]; i++)
        rc = sqlite3_prepare_v3(s->hist, stmt_sql[HIST_STMTS[i]], -1, SQLITE_PREPARE_PERSISTENT,
                                &s->hist_stmts[HIST_STMTS[i]], NULL);
    if (rc != SQLITE_OK)
        close_hist(s);
}

/* open_reader: the reader connection (see store_sqlite_get_instance). Without it, reads
 * share the writer's connection, as they did before. */
static void open_reader(sqlite_store *s)
{
    int rc = open_beside(s, &s->reader);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->reader, stmt_sql[ST_INSTANCE_GET], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->reader_get, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(s->reader_get);
        sqlite3_close(s->reader);
        s->reader_get = NULL;
        s->reader = NULL;
    }
}

static void sqlite_close(dt_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_finalize(s->reader_get);
    sqlite3_close(s->reader);
    pthread_mutex_destroy(&s->reader_mu);
    close_hist(s);
    pthread_mutex_destroy(&s->hist_mu);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    sqlite3_close(s->db);
    if (s->wal_fd >= 0)
        close(s->wal_fd);
    pthread_mutex_destroy(&s->sync_mu);
    free(s->wal_path);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static int sqlite_schema_version(dt_store *s)
{
    (void)s;
    return SCHEMA_VERSION;   /* opening migrated it */
}

static bool sqlite_speculates(dt_store *s)
{
    (void)s;
    return true;
}

static bool sqlite_sync_waits(dt_store *s)
{
    return ((sqlite_store *)s)->full_sync;   /* deferred commits are fsynced by sync */
}

static const dt_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .create_instance = store_sqlite_create_instance,
    .send_message = store_sqlite_send_message,
    .get_instance = store_sqlite_get_instance,
    .read_history = store_sqlite_read_history,
    .queue_depths = store_sqlite_queue_depths,
    .count_by_status = store_sqlite_count_by_status,
    .lease_orchestrations = store_sqlite_lease_orchestrations,
    .lease_activities = store_sqlite_lease_activities,
    .renew_orchestration = store_sqlite_renew_orchestration,
    .renew_activity = store_sqlite_renew_activity,
    .abandon_orchestration = store_sqlite_abandon_orchestration,
    .abandon_activity = store_sqlite_abandon_activity,
    .commit = store_sqlite_commit,
    .sync = store_sqlite_sync,
    .sync_waits = sqlite_sync_waits,
    .speculates = sqlite_speculates,
    .last_ticket = store_sqlite_last_ticket,
    .query_instances = store_sqlite_query_instances,
    .purge_instance = store_sqlite_purge_instance,
    .purge_instances = store_sqlite_purge_instances,
    .send_entity_message = store_sqlite_send_entity_message,
    .lease_entities = store_sqlite_lease_entities,
    .renew_entity = store_sqlite_renew_entity,
    .abandon_entity = store_sqlite_abandon_entity,
    .get_entity = store_sqlite_get_entity,
    .query_entities = store_sqlite_query_entities,
    .clean_entities = store_sqlite_clean_entities,
    .search_steps = store_sqlite_search_steps,
    .schema_version = sqlite_schema_version,
};

dt_status dt_store_sqlite_limit_size(dt_store *store, uint64_t max_bytes, dt_error *err)
{
    if (store == NULL || store->ops != &sqlite_ops)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "a database size limit is for SQLite "
                            "stores (PostgreSQL: use its own quotas)");
    sqlite_store *s = (sqlite_store *)store;
    pthread_mutex_lock(&s->mu);
    int64_t page = 0;
    int rc = query_int(s->db, "PRAGMA page_size", &page);
    /* SQLite's own largest page count when there is no limit of ours */
    uint64_t pages = max_bytes && page > 0 ? max_bytes / (uint64_t)page : 4294967294ULL;
    /* the log is checkpointed, and cut back, at an eighth of the limit */
    uint64_t log = pages / 8 < 16                 ? 16
                   : pages / 8 > CHECKPOINT_PAGES ? CHECKPOINT_PAGES
                                                  : pages / 8;
    char sql[160];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %llu; PRAGMA wal_autocheckpoint = %llu; "
             "PRAGMA journal_size_limit = %lld", (unsigned long long)(pages ? pages : 1),
             (unsigned long long)(max_bytes ? log : CHECKPOINT_PAGES),
             max_bytes ? (long long)(log * (uint64_t)page) : -1LL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    dt_status st = DT_OK;
    if (rc == SQLITE_OK) {
        atomic_store(&s->max_bytes, max_bytes);
        s->max_pages = max_bytes ? pages : 0;
        store_sqlite_look_at_size(s);
    } else {
        st = store_sql_error(s, rc, err, "setting the size limit");
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* in_use: the pages S has in use (not free), or -1 when it cannot say (mu held). */
static int64_t in_use(sqlite_store *s)
{
    int64_t pages = 0, free_pages = 0;
    if (query_int(s->db, "PRAGMA page_count", &pages) != SQLITE_OK ||
        query_int(s->db, "PRAGMA freelist_count", &free_pages) != SQLITE_OK)
        return -1;
    return pages - free_pages;
}

void store_sqlite_look_at_size(sqlite_store *s)
{
    int64_t used = s->max_pages ? in_use(s) : 0;
    if (used >= 0)
        atomic_store(&s->near_full, s->max_pages && (uint64_t)used * 10 >= s->max_pages * 9);
}

dt_status store_sqlite_room_to_go_on(sqlite_store *s, const char *id, dt_error *err)
{
    if (!atomic_load(&s->near_full) || s->max_pages == 0)   /* below nine tenths, no limit */
        return DT_OK;
    int64_t used = in_use(s);
    if (used < 0 || (uint64_t)used * 20 < s->max_pages * 19)
        return DT_OK;
    return dt_error_set(err, DT_ERR_NO_SPACE, "sqlite store '%s': the database has nineteen "
                        "twentieths of its size limit of %llu %s in use: only episodes that "
                        "end their instance go in until purges make room (instance '%s' "
                        "waits)", s->path, SIZE_IN_UNITS(atomic_load(&s->max_bytes)), id);
}

dt_status dt_store_room(dt_store *store, dt_error *err)
{
    if (store == NULL || store->ops != &sqlite_ops)
        return DT_OK;
    sqlite_store *s = (sqlite_store *)store;
    if (!atomic_load(&s->near_full))
        return DT_OK;
    pthread_mutex_lock(&s->mu);   /* purges since the last commit count */
    store_sqlite_look_at_size(s);
    pthread_mutex_unlock(&s->mu);
    if (!atomic_load(&s->near_full))
        return DT_OK;
    return dt_error_set(err, DT_ERR_NO_SPACE, "sqlite store '%s': the database has nine tenths "
                        "of its size limit of %llu %s in use: new instances, events and "
                        "signals are refused until purges make room (what is stored still "
                        "runs and ends; terminate and purge work)", s->path,
                        SIZE_IN_UNITS(atomic_load(&s->max_bytes)));
}

dt_status dt_store_open_sqlite(const char *path, dt_sync_mode sync, dt_store **out,
                               dt_error *err)
{
    if (out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "dt_store_open_sqlite: OUT is NULL");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return dt_error_set(err, DT_ERR_INVALID_ARG, "store path is empty");
    if (dt_store_is_postgres(path))   /* else a file would be made at "postgres:/..." */
        return dt_error_set(err, DT_ERR_INVALID_ARG, "the store path is a PostgreSQL URL, not "
                            "a SQLite file: open it with dt_store_open_postgres (or "
                            "dt_hub_open)");   /* not repeated: it may hold a password */
    const char *sync_sql;
    switch (sync) {
    case DT_SYNC_FULL: sync_sql = "PRAGMA synchronous = FULL"; break;
    case DT_SYNC_NORMAL: sync_sql = "PRAGMA synchronous = NORMAL"; break;
    case DT_SYNC_OFF: sync_sql = "PRAGMA synchronous = OFF"; break;
    default:
        return dt_error_set(err, DT_ERR_INVALID_ARG, "unknown sync mode %d for store '%s'",
                            (int)sync, path);
    }
    dt_status st = make_parent_dirs(path, err);
    if (st != DT_OK)
        return st;

    sqlite_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening '%s'", path);
    s->base.ops = &sqlite_ops;
    s->wal_fd = -1;
    s->path = strdup(path);
    if (s->path == NULL) {
        free(s);
        return dt_error_set(err, DT_ERR_NOMEM, "out of memory opening '%s'", path);
    }
    int made = 0;   /* mutexes created so far: mu, sync_mu, reader_mu, hist_mu */
    pthread_mutex_t *mus[4] = {&s->mu, &s->sync_mu, &s->reader_mu, &s->hist_mu};
    while (made < 4 && pthread_mutex_init(mus[made], NULL) == 0)
        made++;
    if (made < 4) {
        while (made > 0)
            pthread_mutex_destroy(mus[--made]);
        free(s->path);
        free(s);
        return dt_error_set(err, DT_ERR_NOMEM, "cannot create a mutex for store '%s'", path);
    }

    /* NOMUTEX: s->mu already serializes every use of the connection. */
    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             store_sqlite_vfs());
    if (rc != SQLITE_OK) {
        st = dt_error_set(err, DT_ERR_IO, "cannot open store '%s': %s", path,
                          s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    s->wal_path = strdup(sqlite3_filename_wal(sqlite3_db_filename(s->db, "main")));
    if (s->wal_path == NULL) {
        st = dt_error_set(err, DT_ERR_NOMEM, "out of memory opening '%s'", path);
        goto fail;
    }

    /* Identify the file before writing anything to it: a file that is not ours (garbage or
     * someone else's database) must be left exactly as it was. */
    bool create = false;
    int64_t from = 0;
    st = check_identity(s, &create, &from, err);
    if (st != DT_OK)
        goto fail;
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        st = dt_error_set(err, DT_ERR_IO, "cannot open store '%s': the file is read-only", path);
        goto fail;
    }

    char mode[32];
    rc = query_text(s->db, "PRAGMA journal_mode = WAL", mode, sizeof mode);
    if (rc != SQLITE_OK) {
        st = open_error(s, rc, err, "switching to WAL");
        goto fail;
    }
    if (strcmp(mode, "wal") != 0) {
        st = dt_error_set(err, DT_ERR_IO,
                          "cannot open store '%s': journal mode stays '%s', WAL is required",
                          path, mode);
        goto fail;
    }
    rc = sqlite3_exec(s->db, sync_sql, NULL, NULL, NULL);
    s->full_sync = sync == DT_SYNC_FULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
    /* the page cache holds the hot part of the tables and their indexes (the default 2 MB
     * makes a busy hub read its own recent pages back from the OS on every commit) */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "PRAGMA cache_size = -" CACHE_KB, NULL, NULL, NULL);
    /* checkpoints every 4000 pages (16 MB of log), not every 1000: the hot pages (instance
     * rows, index leaves) are written to the log many times between two checkpoints and
     * copied back once, and the committer, which runs them, stops a quarter as often */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "PRAGMA wal_autocheckpoint = " TEXT(CHECKPOINT_PAGES), NULL, NULL,
                          NULL);
    /* statement journals in memory: the group commit opens a savepoint per entry, and
     * SQLite spills a savepoint's journal past 64 KiB to a temporary file, so a busy
     * batch wrote every page it touched twice more (a page number and the page) to a file
     * nobody reads after the commit: 20 pwrites of a `hello`'s 45 */
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = open_error(s, rc, err, "setting pragmas");
        goto fail;
    }
    if (create) {
        st = create_schema(s, err);
        if (st != DT_OK)
            goto fail;
    }

    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[i],
                                NULL);
        if (rc != SQLITE_OK) {
            st = open_error(s, rc, err, "preparing statements");
            goto fail;
        }
    }
    open_reader(s);
    open_hist(s);
    dt_error_clear(err);
    *out = &s->base;
    return DT_OK;

fail:
    sqlite_close(&s->base);
    return st;
}
