/* store_internal.h — what every backend shares: how events and failures are kept as blobs.
 * Not a public header. (encode.c) */
#ifndef DT_STORE_INTERNAL_H
#define DT_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "durabletask/codec.h"
#include "durabletask/store.h"

/* store_encode_event: dt_event_encode with the failure named in ERR. *OUT is malloc'd. */
dt_status store_encode_event(const dt_event *e, uint8_t **out, size_t *out_len, dt_error *err);

/* store_decode_blob: decode the event blob P (N bytes) into *OUT (strings in ARENA). WHAT
 * names the row for errors. */
dt_status store_decode_blob(const void *p, size_t n, dt_arena *arena, dt_event *out,
                            dt_error *err, const char *what);

/* store_encode_failure: an instance row's failure column holds the failure as a TaskFailed
 * HistoryEvent (only its failureDetails set), so one codec serves every blob. NULL failure
 * gives *OUT NULL. *OUT is malloc'd. */
dt_status store_encode_failure(const dt_failure *f, uint8_t **out, size_t *out_len,
                               dt_error *err);

/* store_prefix_end: the least string above every string that starts with PREFIX (bytewise, as
 * SQLite's BINARY collation and PostgreSQL's "C" compare): PREFIX with trailing 0xFF bytes
 * dropped and its last byte incremented. NULL in *OUT when there is none (PREFIX all 0xFF).
 * *OUT is malloc'd. */
dt_status store_prefix_end(const char *prefix, char **out, dt_error *err);

/* store_new_token: a lease token, OWNER ":" 16 hex digits, in ARENA, unlike every other of
 * the store (and, the owner naming the process, of every process). store_lease_end: NOW +
 * LEASE_US, saturating. (token.c) */
const char *store_new_token(dt_arena *arena, const char *owner);
dt_time store_lease_end(dt_time now, int64_t lease_us);

/* store_step_empties: does STEP leave its entity with no state and no lock? Only then may its
 * commit remove the row (when no message is left either), so the others skip the look. */
bool store_step_empties(const dt_entity_step *step);   /* rules.c */

/* store_entity_name: the name part of entity id ID, lowercase (as the row's name column
 * keeps it), in BUF of SIZE bytes. (rules.c) */
void store_entity_name(const char *id, char *buf, size_t size);

/* store_lease_lost: DT_ERR_LEASE_LOST for WHAT (renew, abandon, ...) on the lease of
 * instance or entity ID, or of activity ROW when ID is NULL, said in ERR. (rules.c) */
dt_status store_lease_lost(const char *what, const char *id, int64_t row, dt_error *err);

/* store_same_parent: is PARENT (an existing instance's parent, NULL: none) NI's parent?
 * (rules.c) */
bool store_same_parent(const dt_new_instance *ni, const char *parent);

/* store_may_replace: the reuse policy of NI, for an existing instance whose status is
 * EXISTING and whose parent is PARENT (NULL: none). (rules.c) */
bool store_may_replace(const dt_new_instance *ni, dt_runtime_status existing,
                       const char *parent);

/* store_started_message: the ExecutionStarted message of NI, created at CREATED, into *M (its
 * strings NI's). (rules.c) */
void store_started_message(const dt_new_instance *ni, dt_time created, dt_message *m);

/* store_conflict_message: NI's on_conflict message (its on_foreign one when set and the
 * instance there is not SAME_PARENT's child) as it is delivered when NI is refused; a
 * failure without a message takes WHY's (the reason the instance was not created). OUT holds
 * the copies it points into. (rules.c) */
typedef struct store_conflict {
    dt_message message;
    dt_failure failure;
    char reason[sizeof ((dt_error *)0)->message + 160];
} store_conflict;
void store_conflict_message(const dt_new_instance *ni, bool same_parent, const dt_error *why,
                            store_conflict *out);

/* ---- the candidates of a lease (candidates.c) ---------------------------------------------- */

#define STORE_CANDS_MAX 1024   /* the most one lease looks for */
#define STORE_PURGE_BATCH 500  /* the instances a purge by filter deletes a transaction */

/* A candidate: an instance or entity id (ID, malloc'd), or an activity's row id (ROW), and
 * when its work became visible (AT; 0 where the search's own order is kept). */
typedef struct store_cand {
    char *id;
    int64_t row;
    dt_time at;
} store_cand;

typedef struct store_cands {
    store_cand *c;
    size_t n, cap;
} store_cands;

/* store_cands_make: an empty set with room for MAX candidates, STORE_CANDS_MAX at the most.
 * store_cands_free: the ids and the room (also of a set that failed to fill). */
dt_status store_cands_make(size_t max, store_cands *out, dt_error *err);
void store_cands_free(store_cands *c);

/* store_cands_has: is ID (or, when ID is NULL, ROW) among C's candidates already? */
bool store_cands_has(const store_cands *c, const char *id, int64_t row);

/* store_cands_add: ID (copied) or ROW, visible since AT, into C if it is among the C->cap
 * earliest, after those of the same time (all AT equal: in the order added, the first cap
 * kept). False when out of memory. */
bool store_cands_add(store_cands *c, const char *id, int64_t row, dt_time at);

/* store_entity_item_new: a work item for entity ID, in an arena of its own, all else zero,
 * into *OUT (NULL on failure); the caller frees it with dt_entity_item_free. (store.c) */
dt_status store_entity_item_new(const char *id, dt_entity_item **out, dt_error *err);

/* ---- the instance filter of queries and purges (filter.c) ---------------------------------- */

#define STORE_STATUS_BITS 8   /* dt_runtime_status is 0 .. 7: a status mask fits a byte */
#define STORE_ALL_STATUSES ((INT64_C(1) << STORE_STATUS_BITS) - 1)

/* A dt_query worked out into the values a backend binds, never splices, into its filter: */
typedef struct store_filter {
    int64_t mask;                 /* bit N: status N is wanted */
    dt_time from, to;             /* created_at range, inclusive (INT64_MIN / INT64_MAX: open) */
    const char *name;             /* exact name, or NULL */
    const char *lo;               /* ids >= this ("" when open) */
    char *hi;                     /* ids < this (malloc'd, store_prefix_end); NULL: no end */
    const char *skip;             /* an id to leave out (the by-id token), or NULL */
    dt_time done_from, done_to;   /* completed_at range, inclusive; 0: open */
    const char *version;          /* exact version, or NULL; "" matches rows without one */
    bool after_set;               /* newest first: only rows after (AFTER_AT, AFTER_ID) in */
    dt_time after_at;             /* (created_at, instance_id) descending order */
    const char *after_id;
} store_filter;

/* store_terminal_mask: the status mask of the finished (terminal) statuses. */
int64_t store_terminal_mask(void);

/* store_filter_make: the values for Q (NULL: everything), its statuses limited to ALLOWED (a
 * mask). PAGING: honour the continuation token (by id: the last id of the previous page;
 * newest first: "<created_at>:<instance id>" of its last row). Strings point into Q. Free with
 * store_filter_free, also after a failure. DT_ERR_INVALID_ARG for a status out of range or
 * a token of the other order. */
dt_status store_filter_make(const dt_query *q, int64_t allowed, bool paging, store_filter *f,
                            dt_error *err);
void store_filter_free(store_filter *f);

/* store_query_make: what a query of instances Q works with: its page size (0:
 * DT_QUERY_PAGE_DEFAULT; DT_ERR_INVALID_ARG over DT_QUERY_PAGE_MAX) and its filter (every
 * status, the continuation token honoured; store_filter_make). Nothing to free on failure;
 * else free F with store_filter_free. */
dt_status store_query_make(const dt_query *q, size_t *page, store_filter *f, dt_error *err);

/* store_entity_page_size: an entity query Q's page size (0: DT_QUERY_PAGE_DEFAULT);
 * DT_ERR_INVALID_ARG over DT_QUERY_PAGE_MAX. */
dt_status store_entity_page_size(const dt_entity_query *q, size_t *page, dt_error *err);

/* store_state_bytes: the bytes of S's payloads, failure chain and tags (DT_QUERY_PAGE_BYTES) */
size_t store_state_bytes(const dt_instance_state *s);

/* store_query_next: the continuation token after LAST, the last row of a page of Q, in ARENA
 * (or LAST's own ARENA id by id). */
dt_status store_query_next(const dt_query *q, const dt_instance_state *last, dt_arena *arena,
                           const char **next, dt_error *err);

/* ---- what a group commit made ready (ready.c) ---------------------------------------------- */

/* What a batch made ready, kept while its entries apply when the caller asked to lease it
 * (dt_commit_lease): instances that may have work now, and the activity rows inserted. An
 * entry that rolls back takes its notes back with it (the counts are cut to where they were).
 * Ids point into the batch, which outlives the call. A note lost to a lack of memory only
 * means less is leased, never something wrongly. */
/* store_ready's flags per id: MUST, work may be left if the lease does not take it (all but
 * the own instance of an episode that ended it); SENT, the batch gave it a message (else it is
 * only an episode's own instance, which may have none waiting). */
enum { READY_MUST = 1, READY_SENT = 2 };

typedef struct store_ready {
    bool on;
    dt_time now;
    const char **ids;
    unsigned char *flags;       /* per id, READY_*: */
    size_t n_ids, cap_ids, cap_flags;
    int64_t *acts;
    size_t n_acts, cap_acts;
    bool left;                  /* something was made ready that is not noted (not visible
                                 * yet, not to be leased, or no memory for the note) */
} store_ready;

/* store_ready_instance / store_ready_activity: note instance ID or activity ROW, visible
 * from VISIBLE_AT (not when that is later than RD->now, or RD is off: then RD->left is set).
 * store_ready_free: its arrays. */
void store_ready_instance(store_ready *rd, const char *id, dt_time visible_at);
/* store_ready_own: note ID, an episode's own instance, for the messages that came while the
 * episode ran (there may be none; if the episode ENDED it, they can wait: see store_ready). */
void store_ready_own(store_ready *rd, const char *id, bool ended);
void store_ready_activity(store_ready *rd, int64_t row, dt_time visible_at);
void store_ready_free(store_ready *rd);

/* store_ready_start: a commit of LEASE (NULL: it leases nothing) begins: nothing leased yet,
 * and the notes to keep, which are on when LEASE may take anything. */
store_ready store_ready_start(dt_commit_lease *lease);

/* store_lease_forget: free what L holds (its leases were rolled back, or never committed). */
void store_lease_forget(dt_commit_lease *L);

/* store_entry_level: errors that concern one entry of a batch only (the rest goes on; a
 * database that is full refuses only what would grow it); anything else means the database
 * itself failed and the whole transaction is rolled back. */
bool store_entry_level(dt_status r);

/* How a backend runs a batch's entries for store_run_batch. */
typedef enum store_savepoint_op {
    STORE_SAVEPOINT, STORE_RELEASE, STORE_ROLLBACK_TO
} store_savepoint_op;
typedef struct store_entry_ops {
    /* begin the batch's transaction (DEFERRED: its fsync comes later, SQLite's alone); roll
     * it back */
    dt_status (*begin)(void *store, bool deferred, dt_error *err);
    void (*rollback)(void *store);
    /* apply entry C (the batch's Ith) in the open transaction, noting in RD what it made
     * ready; *CHECKED once its lease check has passed (episodes and activity results) */
    dt_status (*apply)(void *store, dt_commit *c, size_t i, store_ready *rd, bool *checked,
                       dt_error *err);
    /* the entry savepoint: make, release or roll back to it */
    dt_status (*savepoint)(void *store, store_savepoint_op op, dt_error *err);
    /* the database ended the transaction on its own (after a refused statement), or
     * (PostgreSQL) only a rollback to the savepoint lets it go on */
    bool (*ended)(void *store);
    /* the transaction is no more: not even a savepoint can be rolled back to (SQLite after
     * a FULL, for one) */
    bool (*gone)(void *store);
} store_entry_ops;

/* store_run_batch: begin STORE's transaction and apply BATCH's N entries in it, each entry's
 * outcome in its result, noting what they made ready in RD; the transaction stays open for
 * the caller to lease in and commit (or roll back, on an error). An entry that is refused
 * must roll back alone. A start or an entity step can be refused after it wrote, so it runs
 * inside a savepoint. An episode or an activity result is refused by its first statement, the
 * lease check, which changes nothing when it refuses: those run without a savepoint (a
 * savepoint costs PostgreSQL two round trips and SQLite the making and freeing of its journal
 * state, a twentieth of a hello's CPU), and should one fail after its check (a statement
 * refused, or an invariant broken), the transaction is rolled back and the batch runs again
 * from the start with a savepoint per entry. Returns an error only for a failure that is the
 * batch's; ERR then holds it, else the first refused entry's (for logging). */
dt_status store_run_batch(const store_entry_ops *ops, void *store, bool deferred,
                          dt_commit *batch, size_t n, store_ready *rd, dt_error *err);

#endif
