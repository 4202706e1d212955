/* durabletask/codec.h — history events to and from protobuf bytes. The bytes are exactly the
 * Durable Task protocol's HistoryEvent message, so what the store keeps can be sent to a remote
 * worker as it is. The generated protobuf-c code stays behind this header. */
#ifndef DURABLETASK_CODEC_H
#define DURABLETASK_CODEC_H

#include "durabletask/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dt_event_encode: EVENT as HistoryEvent bytes. *OUT is malloc'd; the caller frees it with
 * free(). DT_ERR_INVALID_ARG if the event holds something the protocol cannot carry (an
 * unknown type or status, a time outside DT_TIME_MIN..DT_TIME_MAX, a failure chain deeper
 * than 64); DT_ERR_NOMEM. */
dt_status dt_event_encode(const dt_event *event, uint8_t **out, size_t *out_len);

/* dt_event_decode: parse LEN bytes of HistoryEvent into *OUT. Every string of the event is
 * copied into ARENA; nothing else needs freeing. DT_ERR_CORRUPT if the bytes are not a
 * HistoryEvent this codec knows (ERR says why). */
dt_status dt_event_decode(const uint8_t *buf, size_t len, dt_arena *arena, dt_event *out,
                          dt_error *err);

#ifdef __cplusplus
}
#endif
#endif
