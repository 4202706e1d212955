/* wiretest.h — what the protocol tests (test_codec, test_pb, test_service) share: comparing
 * records field by field, checking an error's code and message, and a tiny protobuf writer,
 * independent of protobuf-c, for protocol bytes built by hand from the field numbers. */
#ifndef DT_WIRETEST_H
#define DT_WIRETEST_H

#include "testutil.h"

/* assert_same_*: WANT and GOT are equal field by field (strings by content, NULL apart from
 * ""); a failure names the field. */
void assert_same_str(const char *want, const char *got, const char *field);
void assert_same_failure(const dt_failure *want, const dt_failure *got);
void assert_same_event(const dt_event *want, const dt_event *got);
void assert_same_action(const dt_action *want, const dt_action *got);
void assert_same_state(const dt_instance_state *want, const dt_instance_state *got);

/* expect_error: ST is CODE, ERR says CODE too, and ERR's message mentions NEEDLE (if any). */
void expect_error(dt_status st, const dt_error *err, dt_status code, const char *needle);

/* A message's bytes, written field by field. */
typedef struct wire {
    uint8_t b[4096];
    size_t n;
} wire;

void w_varint(wire *w, uint64_t v);
/* w_int: an int32/int64/bool/enum field; negative numbers are ten bytes, as protobuf says. */
void w_int(wire *w, unsigned field, int64_t v);
void w_bytes(wire *w, unsigned field, const void *p, size_t n);
void w_str(wire *w, unsigned field, const char *s);
void w_msg(wire *w, unsigned field, const wire *sub);
/* w_sv: a StringValue; an empty value is an empty message, still present. */
void w_sv(wire *w, unsigned field, const char *s);
/* w_ts: a Timestamp {seconds = 1, nanos = 2}, zero fields left out. */
void w_ts(wire *w, unsigned field, int64_t seconds, int32_t nanos);

/* expect_bytes: GOT (N bytes) is exactly WANT's bytes; both are printed when not. */
void expect_bytes(const uint8_t *got, size_t n, const wire *want, const char *what);

#endif
