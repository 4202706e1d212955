/* maps.c — the protocol's free-form fields as our records keep them: maps of string tags
 * (map<string, string>) and failure properties (map<string, Value>, Value being
 * google.protobuf.Value's shape) to and from JSON objects, and the W3C trace context
 * (TraceContext). JSON because that is how tags already live in the store and the HTTP API;
 * jansson does the JSON. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

/* Every map<string, string> entry protobuf-c generates has this layout; pb_b_tags and
 * pb_r_tags handle them all through it. */
typedef struct string_entry {
    ProtobufCMessage base;
    char *key;
    char *value;
} string_entry;

_Static_assert(offsetof(string_entry, key) ==
                   offsetof(Dtpb__TaskScheduledEvent__TagsEntry, key) &&
               offsetof(string_entry, value) ==
                   offsetof(Dtpb__TaskScheduledEvent__TagsEntry, value) &&
               sizeof(string_entry) == sizeof(Dtpb__TaskScheduledEvent__TagsEntry),
               "map<string, string> entries share one layout");

/* How deep a property value may nest (objects and arrays). */
#define VALUE_DEPTH_MAX 32

static void b_bad(pb_builder *b, dt_status st)
{
    if (b->status == DT_OK)
        b->status = st;
}

/* parse_object: JSON text that must be an object; NULL (B's status set) otherwise. */
static json_t *parse_object(pb_builder *b, const char *json)
{
    dt_json_refused();
    json_t *obj = json_loads(json, JSON_DECODE_ANY, NULL);
    if (!json_is_object(obj)) {
        json_decref(obj);
        b_bad(b, obj == NULL && dt_json_refused() ? DT_ERR_NOMEM : DT_ERR_INVALID_ARG);
        return NULL;
    }
    return obj;
}

/* b_map: JSON (an object; NULL: none) as *N map entries, each made by ENTRY from a key and
 * its value (NULL after setting B's status). */
typedef void *(*entry_fn)(pb_builder *b, const char *key, json_t *value, const void *ctx);

static void **b_map(pb_builder *b, const char *json, entry_fn entry, const void *ctx,
                    size_t *n)
{
    *n = 0;
    if (json == NULL || b->status != DT_OK)
        return NULL;
    json_t *obj = parse_object(b, json);
    if (obj == NULL)
        return NULL;
    void **out = pb_b_array(b, json_object_size(obj), sizeof *out);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        void *e = out ? entry(b, k, v, ctx) : NULL;
        if (e == NULL || b->status != DT_OK)
            break;
        out[(*n)++] = e;
    }
    json_decref(obj);
    if (b->status != DT_OK) {
        *n = 0;
        return NULL;
    }
    return out;
}

/* tag_entry: one map<string, string> entry of the type CTX (its descriptor) describes. */
static void *tag_entry(pb_builder *b, const char *key, json_t *value, const void *ctx)
{
    if (!json_is_string(value)) {
        b_bad(b, DT_ERR_INVALID_ARG);
        return NULL;
    }
    string_entry *e = pb_b_msg(b, ctx);
    if (e == NULL)
        return NULL;
    e->key = dt_arena_strdup(b->arena, key);
    e->value = dt_arena_strdup(b->arena, json_string_value(value));
    if (e->key == NULL || e->value == NULL)
        b_bad(b, DT_ERR_NOMEM);
    return e;
}

void **pb_b_tags(pb_builder *b, const ProtobufCMessageDescriptor *entry, const char *json,
                 size_t *n)
{
    return b_map(b, json, tag_entry, entry, n);
}

/* dump: OBJ as compact JSON text, keys sorted, in R's arena (OBJ is released). */
static const char *dump(pb_reader *r, json_t *obj, const char *field)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    const char *c = text ? dt_arena_strdup(r->arena, text) : NULL;
    dt_json_free(text);
    if (c == NULL)
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading %s%s%s", PB_WHAT(r), field);
    return c;
}

const char *pb_r_tags(pb_reader *r, void *const *entries, size_t n, const char *field)
{
    if (n == 0 || r->status != DT_OK)
        return NULL;
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n; i++) {
        const string_entry *e = entries[i];
        const char *k = e && e->key ? e->key : "", *v = e && e->value ? e->value : "";
        if (!pb_utf8_valid(k) || !pb_utf8_valid(v)) {
            json_decref(obj);
            pb_r_bad(r, "%s%s%s: a tag is not valid UTF-8", PB_WHAT(r), field);
            return NULL;
        }
        if (json_object_set_new(obj, k, json_string(v)) != 0) {
            json_decref(obj);
            pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading %s%s%s", PB_WHAT(r), field);
            return NULL;
        }
    }
    return dump(r, obj, field);
}

/* ---- failure properties: Value <-> JSON ----------------------------------------------------- */

static Dtpb__Value *b_value(pb_builder *b, json_t *j, int depth);

static Dtpb__Struct *b_struct(pb_builder *b, json_t *obj, int depth)
{
    Dtpb__Struct *s = pb_b_msg(b, &dtpb__struct__descriptor);
    Dtpb__Struct__FieldsEntry **f = pb_b_array(b, json_object_size(obj), sizeof *f);
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        Dtpb__Struct__FieldsEntry *e = pb_b_msg(b, &dtpb__struct__fields_entry__descriptor);
        if (s == NULL || f == NULL || e == NULL)
            return NULL;
        e->key = dt_arena_strdup(b->arena, k);
        e->value = b_value(b, v, depth + 1);
        if (e->key == NULL)
            b_bad(b, DT_ERR_NOMEM);
        if (b->status != DT_OK)
            return NULL;
        f[s->n_fields++] = e;
    }
    if (s)
        s->fields = f;
    return s;
}

static Dtpb__Value *b_value(pb_builder *b, json_t *j, int depth)
{
    if (depth > VALUE_DEPTH_MAX) {
        b_bad(b, DT_ERR_INVALID_ARG);
        return NULL;
    }
    Dtpb__Value *v = pb_b_msg(b, &dtpb__value__descriptor);
    if (v == NULL)
        return NULL;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        v->kind_case = DTPB__VALUE__KIND_STRUCT_VALUE;
        v->struct_value = b_struct(b, j, depth);
        break;
    case JSON_ARRAY: {
        Dtpb__ListValue *l = pb_b_msg(b, &dtpb__list_value__descriptor);
        Dtpb__Value **items = pb_b_array(b, json_array_size(j), sizeof *items);
        for (size_t i = 0; l && items && i < json_array_size(j) && b->status == DT_OK; i++)
            items[l->n_values++] = b_value(b, json_array_get(j, i), depth + 1);
        if (l)
            l->values = items;
        v->kind_case = DTPB__VALUE__KIND_LIST_VALUE;
        v->list_value = l;
        break;
    }
    case JSON_STRING:
        v->kind_case = DTPB__VALUE__KIND_STRING_VALUE;
        if ((v->string_value = dt_arena_strdup(b->arena, json_string_value(j))) == NULL)
            b_bad(b, DT_ERR_NOMEM);
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        v->kind_case = DTPB__VALUE__KIND_NUMBER_VALUE;
        v->number_value = json_number_value(j);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v->kind_case = DTPB__VALUE__KIND_BOOL_VALUE;
        v->bool_value = json_is_true(j);
        break;
    default:
        v->kind_case = DTPB__VALUE__KIND_NULL_VALUE;
        v->null_value = DTPB__NULL_VALUE__NULL_VALUE;
        break;
    }
    return v;
}

/* property_entry: one entry of a failure's properties. */
static void *property_entry(pb_builder *b, const char *key, json_t *value, const void *ctx)
{
    (void)ctx;
    Dtpb__TaskFailureDetails__PropertiesEntry *e =
        pb_b_msg(b, &dtpb__task_failure_details__properties_entry__descriptor);
    if (e == NULL)
        return NULL;
    e->key = dt_arena_strdup(b->arena, key);
    e->value = b_value(b, value, 1);
    if (e->key == NULL)
        b_bad(b, DT_ERR_NOMEM);
    return e;
}

Dtpb__TaskFailureDetails__PropertiesEntry **pb_b_properties(pb_builder *b, const char *json,
                                                            size_t *n)
{
    return (Dtpb__TaskFailureDetails__PropertiesEntry **)b_map(b, json, property_entry, NULL, n);
}

_Static_assert(offsetof(Dtpb__Struct__FieldsEntry, key) ==
                   offsetof(Dtpb__TaskFailureDetails__PropertiesEntry, key) &&
               offsetof(Dtpb__Struct__FieldsEntry, value) ==
                   offsetof(Dtpb__TaskFailureDetails__PropertiesEntry, value),
               "map<string, Value> entries share one layout");

static json_t *r_value(pb_reader *r, const Dtpb__Value *v, const char *field, int depth);

/* r_object: N map<string, Value> entries (a Struct's fields, a failure's properties) as a new
 * JSON object (NULL after a failure, which R records). */
static json_t *r_object(pb_reader *r, Dtpb__Struct__FieldsEntry *const *f, size_t n,
                        const char *field, int depth)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n; i++) {
        const char *k = f[i] && f[i]->key ? f[i]->key : "";
        if (!pb_utf8_valid(k)) {
            pb_r_bad(r, "%s%s%s: a key is not valid UTF-8", PB_WHAT(r), field);
            break;
        }
        json_t *x = r_value(r, f[i] ? f[i]->value : NULL, field, depth);
        if (x == NULL || json_object_set_new(obj, k, x) != 0)
            break;   /* r_value said why, or out of memory */
        if (i + 1 == n)
            return obj;
    }
    if (obj && n == 0)
        return obj;
    json_decref(obj);
    if (r->status == DT_OK)
        pb_r_fail(r, DT_ERR_NOMEM, "out of memory reading %s%s%s", PB_WHAT(r), field);
    return NULL;
}

/* r_value: V as a new JSON value (NULL after a failure, which R records). */
static json_t *r_value(pb_reader *r, const Dtpb__Value *v, const char *field, int depth)
{
    if (depth > VALUE_DEPTH_MAX) {
        pb_r_bad(r, "%s%s%s: values nest deeper than %d levels", PB_WHAT(r), field,
                 VALUE_DEPTH_MAX);
        return NULL;
    }
    if (v == NULL)
        return json_null();
    switch (v->kind_case) {
    case DTPB__VALUE__KIND_NUMBER_VALUE:   /* JSON has no NaN or infinity: null stands in */
        return isfinite(v->number_value) ? json_real(v->number_value) : json_null();
    case DTPB__VALUE__KIND_STRING_VALUE: {
        const char *s = v->string_value ? v->string_value : "";
        if (!pb_utf8_valid(s)) {
            pb_r_bad(r, "%s%s%s: a string value is not valid UTF-8", PB_WHAT(r), field);
            return NULL;
        }
        return json_string(s);
    }
    case DTPB__VALUE__KIND_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case DTPB__VALUE__KIND_STRUCT_VALUE:
        return v->struct_value ? r_object(r, v->struct_value->fields, v->struct_value->n_fields,
                                          field, depth + 1)
                               : json_object();
    case DTPB__VALUE__KIND_LIST_VALUE: {
        json_t *arr = json_array();
        const Dtpb__ListValue *l = v->list_value;
        for (size_t i = 0; arr && l && i < l->n_values; i++) {
            json_t *x = r_value(r, l->values[i], field, depth + 1);
            if (x == NULL || json_array_append_new(arr, x) != 0) {
                json_decref(arr);
                return NULL;   /* the caller says out of memory unless R says why */
            }
        }
        return arr;
    }
    default:
        return json_null();
    }
}

const char *pb_r_properties(pb_reader *r, Dtpb__TaskFailureDetails__PropertiesEntry *const *e,
                            size_t n, const char *field)
{
    if (n == 0 || r->status != DT_OK)
        return NULL;
    json_t *obj = r_object(r, (Dtpb__Struct__FieldsEntry *const *)e, n, field, 1);
    return obj ? dump(r, obj, field) : NULL;
}

/* ---- trace context ------------------------------------------------------------------------- */

Dtpb__TraceContext *pb_b_trace(pb_builder *b, const char *parent, const char *state)
{
    if (parent == NULL)
        return NULL;
    Dtpb__TraceContext *m = pb_b_msg(b, &dtpb__trace_context__descriptor);
    if (m) {
        m->traceparent = (char *)parent;
        m->tracestate = pb_b_sv(b, state);
    }
    return m;
}

void pb_r_trace(pb_reader *r, const Dtpb__TraceContext *m, const char **parent,
                const char **state, const char *field)
{
    *parent = *state = NULL;
    if (m == NULL || m->traceparent == NULL || m->traceparent[0] == '\0')
        return;
    *parent = pb_r_str(r, m->traceparent, field);
    *state = pb_r_sv(r, m->tracestate, field);
}
