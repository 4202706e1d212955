/* fuzz.h — the fuzz targets' harnesses (fuzz/README.md says how they are run). Each takes one
 * input as libFuzzer hands it over and drives the code a hostile peer reaches with it; it
 * returns 0, and abort()s when an invariant of the code under test breaks (a sanitizer
 * report is the other way an input fails). The same functions are linked into a libFuzzer
 * program each (libfuzzer.c, the DT_FUZZ build) and into the regression test
 * (tests/unit/test_fuzz_regressions.c), which feeds them every saved input. */
#ifndef DT_FUZZ_H
#define DT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* pb_request: the first byte picks a message the gRPC server (or a worker, or the store)
 * reads; the rest is its bytes, through pb_unpack and the service mapping. */
int dt_fuzz_pb_request(const uint8_t *data, size_t size);

/* dt_fuzz_pb_selector: the first byte that picks DESC (a ProtobufCMessageDescriptor; NULL:
 * a stored HistoryEvent blob), or -1 if the target has no such message. */
int dt_fuzz_pb_selector(const void *desc);

/* http_request: "METHOD URI\n", header lines "Name: value\n", an empty line, the body; served
 * by dt_http_handle on a hub in a temporary SQLite file. */
int dt_fuzz_http_request(const uint8_t *data, size_t size);

/* json: the first byte picks the check (JSON, payload, tags, tags merge, entity id); the rest
 * is its text (tags merge: two texts split at the first NUL). */
int dt_fuzz_json(const uint8_t *data, size_t size);

/* time: the input as ISO 8601 text for dt_time_parse; what parses must survive
 * dt_time_format and a second parse to the millisecond. */
int dt_fuzz_time(const uint8_t *data, size_t size);

/* fuzz_check: abort naming WHAT when COND is false (an invariant broke). */
#define fuzz_check(cond, what)                                                                \
    do {                                                                                      \
        if (!(cond))                                                                          \
            fuzz_fail(__FILE__, __LINE__, (what));                                            \
    } while (0)
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* fuzz_text: the SIZE bytes at DATA as a NUL-terminated string (malloc'd; the caller frees);
 * NULL when out of memory. Inner NULs stay, so the text ends at the first one. */
char *fuzz_text(const uint8_t *data, size_t size);

#endif
