/* wire.c — protobuf bytes: UTF-8 checks, a wire check that walks a message before protobuf-c
 * parses it (bounding nesting, refusing NULs and bad UTF-8 in strings), and pack and unpack
 * with every allocation in an arena. See pb.h. */
#include <stdint.h>
#include <string.h>

#include "pb.h"

/* ==== UTF-8 =============================================================================== */

bool pb_utf8_valid_n(const void *data, size_t n)
{
    return dt_utf8_valid_n(data, n);   /* core's, the one definition */
}

bool pb_utf8_valid(const char *s)
{
    return s == NULL || pb_utf8_valid_n(s, strlen(s));
}

/* ==== bytes =============================================================================== */

/* msg_name: DESC's name without the package, as the protocol's users know it. */
static const char *msg_name(const ProtobufCMessageDescriptor *desc)
{
    size_t n = desc->package_name ? strlen(desc->package_name) : 0;
    return n ? desc->name + n + 1 : desc->name;
}

/* read_varint: a base-128 varint at *P (< END), advancing *P; false if it runs off the end
 * or past ten bytes. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* check_msg: the bytes P..END as one DESC message at nesting DEPTH (the outermost is 1). Only
 * length-delimited fields need a look inside: a submessage is walked, a string checked; all
 * else is skipped by its wire type. */
static dt_status check_msg(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                           const uint8_t *end, int depth, dt_error *err)
{
    if (depth > PB_DEPTH_MAX)
        return dt_error_set(err, DT_ERR_INVALID_ARG,
                            "%s: messages nest deeper than %d levels", msg_name(desc),
                            PB_DEPTH_MAX);
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key))
            goto malformed;
        uint64_t number = key >> 3;
        unsigned wire_type = (unsigned)(key & 7);
        if (number == 0 || number > 536870911)   /* 2^29 - 1, the largest field number */
            goto malformed;
        switch (wire_type) {
        case 0:
            if (!read_varint(&p, end, &v))
                goto malformed;
            break;
        case 1:
            if (end - p < 8)
                goto malformed;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                goto malformed;
            p += 4;
            break;
        case 2: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                goto malformed;
            const uint8_t *body = p;
            p += v;
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(desc, (unsigned)number);
            if (f == NULL)
                break;   /* unknown: protobuf-c keeps its bytes without looking inside */
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                dt_status st = check_msg(f->descriptor, body, p, depth + 1, err);
                if (st != DT_OK)
                    return st;
            } else if (f->type == PROTOBUF_C_TYPE_STRING) {
                /* protobuf-c would keep the string NUL-terminated, cut at the first NUL */
                if (memchr(body, 0, (size_t)v) != NULL)
                    return dt_error_set(err, DT_ERR_INVALID_ARG,
                                        "%s.%s holds a NUL character", msg_name(desc), f->name);
                if (!pb_utf8_valid_n(body, (size_t)v))
                    return dt_error_set(err, DT_ERR_INVALID_ARG, "%s.%s is not valid UTF-8",
                                        msg_name(desc), f->name);
            }
            break;
        }
        default:
            return dt_error_set(err, DT_ERR_INVALID_ARG,
                                "%s field %llu has wire type %u (a group or no type at all), "
                                "which this server does not accept",
                                msg_name(desc), (unsigned long long)number, wire_type);
        }
    }
    return DT_OK;
malformed:
    return dt_error_set(err, DT_ERR_INVALID_ARG, "the bytes do not parse as a %s message",
                        msg_name(desc));
}

dt_status pb_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                        dt_error *err)
{
    if (desc == NULL || (buf == NULL && len > 0))
        return dt_error_set(err, DT_ERR_INVALID_ARG, "pb_wire_check needs a type and bytes");
    if (len == 0)
        return DT_OK;
    return check_msg(desc, buf, buf + len, 1, err);
}

dt_status pb_single_field(const uint8_t *buf, size_t len, uint32_t *number,
                          const uint8_t **body, size_t *body_len)
{
    const uint8_t *p = buf, *end = buf + len;
    uint64_t key, v;
    if (buf == NULL || !read_varint(&p, end, &key) || (key & 7) != 2 || (key >> 3) == 0 ||
        (key >> 3) > 536870911 || !read_varint(&p, end, &v) || v != (uint64_t)(end - p))
        return DT_ERR_INVALID_ARG;
    *number = (uint32_t)(key >> 3);
    *body = p;
    *body_len = (size_t)v;
    return DT_OK;
}

/* protobuf-c allocates the unpacked tree through these: all of it lands in the arena, and its
 * frees (of scratch space, or of a half-built tree on error) are left to the arena too. */
typedef struct unpacking {
    dt_arena *arena;
    pb_limit *limit;            /* or NULL */
    bool over;                  /* past limit->max */
    bool refused;               /* limit->charge said no */
    bool out_of_memory;         /* an allocation failed: the bytes may be fine */
} unpacking;

/* what an allocation of SIZE costs in the arena, which rounds each up to this (arena.c):
 * protobuf-c makes many of a byte or two */
#define ARENA_GRAIN 16

static void *arena_alloc(void *data, size_t size)
{
    unpacking *u = data;
    pb_limit *l = u->limit;
    size_t cost = size > SIZE_MAX - ARENA_GRAIN
                      ? SIZE_MAX
                      : (size + ARENA_GRAIN - 1) & ~(size_t)(ARENA_GRAIN - 1);
    if (l && (cost > l->max || l->used > l->max - cost)) {
        u->over = true;
        return NULL;
    }
    if (l && l->charge && !l->charge(l->ctx, cost)) {
        u->refused = true;
        return NULL;
    }
    if (l)
        l->used += cost;
    void *p = dt_arena_alloc(u->arena, size);
    if (p == NULL)
        u->out_of_memory = true;
    return p;
}

static void arena_free(void *arena, void *p)
{
    (void)arena;
    (void)p;
}

dt_status pb_unpack_limited(dt_arena *a, const ProtobufCMessageDescriptor *desc,
                            const uint8_t *buf, size_t len, pb_limit *lim, void **out,
                            dt_error *err)
{
    if (a == NULL || out == NULL)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "pb_unpack needs an arena and an output");
    dt_status st = pb_wire_check(desc, buf, len, err);
    if (st != DT_OK)
        return st;
    unpacking u = {.arena = a, .limit = lim};
    ProtobufCAllocator allocator = {arena_alloc, arena_free, &u};
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &allocator, len, buf);
    if (m == NULL && u.over)
        return dt_error_set(err, DT_ERR_INVALID_ARG, "a %s message of %zu bytes unpacks to "
                            "more than %zu bytes: too many fields for its size",
                            msg_name(desc), len, lim->max);
    if (m == NULL && (u.refused || u.out_of_memory))
        return dt_error_set(err, DT_ERR_NOMEM, "%s unpacking a %s message of %zu bytes",
                            u.refused ? "no room left" : "out of memory", msg_name(desc), len);
    if (m == NULL)
        /* the wire check passed, so this is a field of the wrong wire type or a bad length
         * inside a packed array */
        return dt_error_set(err, DT_ERR_INVALID_ARG, "%zu bytes do not parse as a %s message",
                            len, msg_name(desc));
    *out = m;
    return DT_OK;
}

dt_status pb_unpack(dt_arena *a, const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                    size_t len, void **out, dt_error *err)
{
    return pb_unpack_limited(a, desc, buf, len, NULL, out, err);
}

dt_status pb_pack(dt_arena *a, const ProtobufCMessage *msg, uint8_t **out, size_t *out_len)
{
    if (a == NULL || msg == NULL || out == NULL || out_len == NULL)
        return DT_ERR_INVALID_ARG;
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = dt_arena_alloc(a, len ? len : 1);
    if (buf == NULL)
        return DT_ERR_NOMEM;
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *out_len = len;
    return DT_OK;
}
