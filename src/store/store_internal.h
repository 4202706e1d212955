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

/* store_may_replace: the reuse policy of NI, for an existing instance whose status is
 * EXISTING and whose parent is PARENT (NULL: none). (rules.c) */
bool store_may_replace(const dt_new_instance *ni, dt_runtime_status existing,
                       const char *parent);

/* store_started_message: the ExecutionStarted message of NI, created at CREATED, into *M (its
 * strings NI's). (rules.c) */
void store_started_message(const dt_new_instance *ni, dt_time created, dt_message *m);

/* store_conflict_message: NI's on_conflict message as it is delivered when NI is refused; a
 * failure without a message takes WHY's (the reason the instance was not created). OUT holds
 * the copies it points into. (rules.c) */
typedef struct store_conflict {
    dt_message message;
    dt_failure failure;
    char reason[sizeof ((dt_error *)0)->message + 160];
} store_conflict;
void store_conflict_message(const dt_new_instance *ni, const dt_error *why,
                            store_conflict *out);

#endif
