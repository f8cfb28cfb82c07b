/*
 * Files events as stored JSON (flat objects, read back with base/jflat),
 * the item aggregate with its snapshots, and the Item resource of API.md.
 * Every event type is at its first schema. Decoding checks each field
 * against the rules that admitted it, and folding checks each event
 * against the state, so a damaged log is an error, never a crash.
 *
 * Who made a change is the event metadata's actor (es_command.actor), not
 * a field of the data: the audit fields createdBy and updatedBy come from
 * there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/jflat.h"
#include "files/files.h"

/* ---- event types ---- */

static const struct es_event_type types[] = {
    [FILES_FOLDER_CREATED] = {"FolderCreated", 1, NULL},
    [FILES_FILE_CREATED] = {"FileCreated", 1, NULL},
    [FILES_RENAMED] = {"ItemRenamed", 1, NULL},
    [FILES_MOVED] = {"ItemMoved", 1, NULL},
    [FILES_FILE_UPDATED] = {"FileUpdated", 1, NULL},
    [FILES_TRASHED] = {"ItemTrashed", 1, NULL},
    [FILES_RESTORED] = {"ItemRestored", 1, NULL},
    [FILES_PURGED] = {"ItemPurged", 1, NULL},
    [FILES_GRANT_ADDED] = {"GrantAdded", 1, NULL},
    [FILES_GRANT_REVOKED] = {"GrantRevoked", 1, NULL},
};
#define TYPES_LEN (sizeof(types) / sizeof(types[0]))

/* Every type the domain registers: the item events, and the tree
 * stream's (treelog.c; a shared store's only). */
const struct es_event_type *const files_event_types[] = {
    &types[0], &types[1], &types[2], &types[3], &types[4],           &types[5],
    &types[6], &types[7], &types[8], &types[9], &files_tree_changed, NULL,
};

const struct es_event_type *files_event_type(enum files_event_kind kind)
{
    return &types[kind];
}

/* ---- encoding ---- */

static void key_str(struct wx_buf *b, const char *key, const char *v, bool *first)
{
    wx_buf_json_key(b, key, first);
    if (v == NULL)
        wx_buf_adds(b, "null");
    else
        wx_buf_json_str(b, v);
}

static void key_i64(struct wx_buf *b, const char *key, int64_t v, bool *first)
{
    wx_buf_json_key(b, key, first);
    wx_buf_add_i64(b, v);
}

/* An optional member: left out when absent, never null. */
static void key_opt(struct wx_buf *b, const char *key, const char *v, bool *first)
{
    if (v != NULL)
        key_str(b, key, v, first);
}

void files_event_encode(struct wx_buf *b, const struct files_event *e)
{
    bool first = true;
    wx_buf_addc(b, '{');
    key_str(b, "itemId", e->item_id, &first);
    switch (e->kind) {
    case FILES_FOLDER_CREATED:
    case FILES_FILE_CREATED:
        key_str(b, "name", e->name, &first);
        key_opt(b, "parentId", e->parent_id, &first);
        key_str(b, "ownerId", e->owner_id, &first);
        if (e->kind == FILES_FILE_CREATED) {
            key_i64(b, "size", e->size, &first);
            key_str(b, "mimeType", e->mime_type, &first);
            key_opt(b, "contentHash", e->content_hash, &first);
        }
        break;
    case FILES_RENAMED:
        key_str(b, "name", e->name, &first);
        key_str(b, "previousName", e->previous_name, &first);
        break;
    case FILES_MOVED:
        key_str(b, "parentId", e->parent_id, &first);
        key_opt(b, "previousParentId", e->previous_parent_id, &first);
        break;
    case FILES_FILE_UPDATED:
        if (e->has_size)
            key_i64(b, "size", e->size, &first);
        key_opt(b, "mimeType", e->mime_type, &first);
        key_opt(b, "contentHash", e->content_hash, &first);
        break;
    case FILES_PURGED:
        key_str(b, "reason", e->by_retention ? "retention" : "request", &first);
        break;
    case FILES_GRANT_ADDED:
    case FILES_GRANT_REVOKED:
        key_str(b, "subject", e->subject, &first);
        key_str(b, "permission", files_level_name(e->permission), &first);
        break;
    case FILES_TRASHED:
    case FILES_RESTORED:
        break;
    }
    wx_buf_addc(b, '}');
}

/* ---- field rules, shared with parse.c's through files.h ---- */

static bool subject_ok(const char *s)
{
    return s != NULL && (strcmp(s, FILES_EVERYONE) == 0 || wx_id_ok(s));
}

static bool name_ok(const char *s)
{
    return s != NULL && files_name_ok(s, strlen(s));
}

/* ---- decoding ---- */

static int kind_of(const char *type, enum files_event_kind *out)
{
    for (size_t i = 0; i < TYPES_LEN; i++) {
        if (strcmp(type, types[i].name) == 0) {
            *out = (enum files_event_kind)i;
            return 0;
        }
    }
    return WX_ERR_CORRUPT;
}

/* An optional string: absent is NULL; present it must be a string of at
 * most max bytes (null or another type is corrupt). */
static const char *opt_str(const struct wx_jflat *o, const char *key, size_t max, bool *bad)
{
    if (wx_jflat_get(o, key) == NULL)
        return NULL;
    const char *s = wx_jflat_str(o, key, max);
    *bad |= s == NULL;
    return s;
}

static bool size_of(const struct wx_jflat *o, int64_t *out)
{
    return wx_jflat_i64(o, "size", out) && *out >= 0 && *out <= FILES_SIZE_MAX;
}

static bool decode_fields(const struct wx_jflat *o, struct files_event *e)
{
    bool bad = false;
    const char *s;
    switch (e->kind) {
    case FILES_FOLDER_CREATED:
    case FILES_FILE_CREATED:
        e->name = wx_jflat_str(o, "name", FILES_NAME_BYTES_MAX);
        e->parent_id = opt_str(o, "parentId", WX_ID_BYTES_MAX, &bad);
        e->owner_id = wx_jflat_str(o, "ownerId", WX_ID_BYTES_MAX);
        bad |= !name_ok(e->name) || (e->parent_id != NULL && !wx_id_ok(e->parent_id)) ||
               e->owner_id == NULL || !wx_id_ok(e->owner_id);
        if (e->kind == FILES_FOLDER_CREATED)
            return !bad;
        e->has_size = true;
        e->mime_type = wx_jflat_str(o, "mimeType", FILES_MIME_BYTES_MAX);
        e->content_hash = opt_str(o, "contentHash", FILES_HASH_BYTES_MAX, &bad);
        return !bad && e->parent_id != NULL && size_of(o, &e->size) && e->mime_type != NULL;
    case FILES_RENAMED:
        e->name = wx_jflat_str(o, "name", FILES_NAME_BYTES_MAX);
        e->previous_name = wx_jflat_str(o, "previousName", FILES_NAME_BYTES_MAX);
        return name_ok(e->name) && name_ok(e->previous_name);
    case FILES_MOVED:
        e->parent_id = wx_jflat_str(o, "parentId", WX_ID_BYTES_MAX);
        e->previous_parent_id = opt_str(o, "previousParentId", WX_ID_BYTES_MAX, &bad);
        return !bad && e->parent_id != NULL && wx_id_ok(e->parent_id);
    case FILES_FILE_UPDATED:
        e->has_size = wx_jflat_get(o, "size") != NULL;
        e->mime_type = opt_str(o, "mimeType", FILES_MIME_BYTES_MAX, &bad);
        e->content_hash = opt_str(o, "contentHash", FILES_HASH_BYTES_MAX, &bad);
        return !bad && (!e->has_size || size_of(o, &e->size));
    case FILES_PURGED:
        s = wx_jflat_str(o, "reason", 16);
        e->by_retention = s != NULL && strcmp(s, "retention") == 0;
        return s != NULL && (e->by_retention || strcmp(s, "request") == 0);
    case FILES_GRANT_ADDED:
    case FILES_GRANT_REVOKED:
        e->subject = wx_jflat_str(o, "subject", WX_ID_BYTES_MAX);
        s = wx_jflat_str(o, "permission", 16);
        return subject_ok(e->subject) && s != NULL && files_level_parse(s, &e->permission);
    case FILES_TRASHED:
    case FILES_RESTORED:
        return true;
    }
    return false;
}

int files_event_decode(const struct es_event *ev, struct files_decoded *d)
{
    memset(&d->e, 0, sizeof(d->e));
    if (kind_of(ev->type, &d->e.kind) != 0)
        return WX_ERR_CORRUPT;
    /* Only current data is read here: readers upcast first (es_upcast). */
    if (ev->schema_version != types[d->e.kind].schema_version)
        return WX_ERR_CORRUPT;
    struct wx_jflat o;
    if (ev->data_len > FILES_EVENT_DATA_BYTES_MAX ||
        wx_jflat_parse(ev->data, ev->data_len, d->text, sizeof(d->text), &o) != 0)
        return WX_ERR_CORRUPT;
    d->e.item_id = wx_jflat_str(&o, "itemId", WX_ID_BYTES_MAX);
    if (d->e.item_id == NULL || !wx_id_ok(d->e.item_id) || !decode_fields(&o, &d->e))
        return WX_ERR_CORRUPT;
    d->e.actor = es_event_actor(ev, d->actor) ? d->actor : FILES_ANONYMOUS;
    d->e.occurred_at_ms = ev->occurred_at_ms;
    return 0;
}

/* ---- the aggregate ---- */

/* The facts the deciders guarantee for one item, checked on the way back
 * in; those between items are the tree's (files_tree_apply). */
static bool fits_state(const struct files_item *s, const struct files_event *e)
{
    bool held = false;
    uint8_t levels = 0;
    switch (e->kind) {
    case FILES_FOLDER_CREATED:
    case FILES_FILE_CREATED:
        return !s->exists;
    case FILES_FILE_UPDATED:
        return s->exists && !s->purged && s->kind == FILES_FILE;
    case FILES_TRASHED:
        return s->exists && !s->purged && !s->trashed;
    case FILES_RESTORED:
        return s->exists && !s->purged && s->trashed;
    case FILES_GRANT_ADDED:
    case FILES_GRANT_REVOKED:
        if (!s->exists || s->purged)
            return false;
        for (size_t g = 0; g < s->grants_len; g++) {
            if (strcmp(s->grants[g].subject, e->subject) == 0) {
                held = true;
                levels = s->grants[g].levels;
            }
        }
        if (e->kind == FILES_GRANT_REVOKED)
            return levels & (1u << e->permission);
        return !(levels & (1u << e->permission)) && (held || s->grants_len < FILES_GRANTS_MAX);
    default:
        return s->exists && !s->purged;
    }
}

static int files_evolve_stored(void *state, const struct es_event *ev)
{
    struct files_decoded *d = malloc(sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    int err = files_event_decode(ev, d);
    if (!err && !fits_state(state, &d->e))
        err = WX_ERR_CORRUPT;
    if (!err)
        files_evolve(state, &d->e);
    free(d);
    return err;
}

/* Grants in a snapshot: "subject=levels,..." (neither ',' nor '=' is in
 * a subject), so the snapshot stays one flat object. */
static void grants_text(struct wx_buf *b, const struct files_item *s)
{
    wx_buf_addc(b, '"');
    for (size_t g = 0; g < s->grants_len; g++)
        wx_buf_printf(b, "%s%s=%u", g ? "," : "", s->grants[g].subject,
                      (unsigned)s->grants[g].levels);
    wx_buf_addc(b, '"');
}

static bool grants_parse(const char *text, struct files_item *s)
{
    s->grants_len = 0;
    while (*text != '\0') {
        const char *eq = strchr(text, '=');
        if (eq == NULL || eq == text || (size_t)(eq - text) > WX_ID_BYTES_MAX ||
            s->grants_len == FILES_GRANTS_MAX)
            return false;
        struct files_grant *g = &s->grants[s->grants_len++];
        memcpy(g->subject, text, (size_t)(eq - text));
        g->subject[eq - text] = '\0';
        char *end;
        unsigned long levels = strtoul(eq + 1, &end, 10);
        if (!subject_ok(g->subject) || end == eq + 1 || levels == 0 || levels > 0xE ||
            (levels & 1) || (*end != ',' && *end != '\0'))
            return false;
        g->levels = (uint8_t)levels;
        text = *end == ',' ? end + 1 : end;
        if (*end == ',' && *text == '\0')
            return false;
    }
    return true;
}

static const char *state_name(const struct files_item *s)
{
    return s->purged ? "purged" : s->trashed ? "trashed" : "live";
}

static void files_encode(const void *state, struct wx_buf *b)
{
    const struct files_item *s = state;
    bool first = true;
    wx_buf_addc(b, '{');
    key_i64(b, "schema", 1, &first);
    key_str(b, "kind", s->kind == FILES_FOLDER ? "folder" : "file", &first);
    key_str(b, "state", state_name(s), &first);
    key_str(b, "name", s->name, &first);
    key_str(b, "parentId", s->parent_id, &first);
    key_str(b, "ownerId", s->owner_id, &first);
    key_str(b, "createdBy", s->created_by, &first);
    key_str(b, "updatedBy", s->updated_by, &first);
    key_i64(b, "size", s->size, &first);
    key_str(b, "mimeType", s->mime_type, &first);
    key_str(b, "contentHash", s->content_hash, &first);
    key_i64(b, "createdAtMs", s->created_at_ms, &first);
    key_i64(b, "updatedAtMs", s->updated_at_ms, &first);
    key_i64(b, "trashedAtMs", s->trashed_at_ms, &first);
    wx_buf_json_key(b, "grants", &first);
    grants_text(b, s);
    wx_buf_addc(b, '}');
}

/* A string member copied into out (max + 1 bytes). */
static bool get_into(const struct wx_jflat *o, const char *key, char *out, size_t max)
{
    const char *s = wx_jflat_str(o, key, max);
    if (s == NULL)
        return false;
    memcpy(out, s, strlen(s) + 1);
    return true;
}

static bool decode_snapshot(const struct wx_jflat *o, struct files_item *s)
{
    int64_t schema = 0;
    const char *kind = wx_jflat_str(o, "kind", 8), *st = wx_jflat_str(o, "state", 8);
    const char *grants = wx_jflat_str(o, "grants", FILES_SNAPSHOT_BYTES_MAX);
    if (!wx_jflat_i64(o, "schema", &schema) || schema != 1 || kind == NULL || st == NULL ||
        grants == NULL || !get_into(o, "name", s->name, FILES_NAME_BYTES_MAX) ||
        !get_into(o, "parentId", s->parent_id, WX_ID_BYTES_MAX) ||
        !get_into(o, "ownerId", s->owner_id, WX_ID_BYTES_MAX) ||
        !get_into(o, "createdBy", s->created_by, WX_ID_BYTES_MAX) ||
        !get_into(o, "updatedBy", s->updated_by, WX_ID_BYTES_MAX) ||
        !get_into(o, "mimeType", s->mime_type, FILES_MIME_BYTES_MAX) ||
        !get_into(o, "contentHash", s->content_hash, FILES_HASH_BYTES_MAX) ||
        !wx_jflat_i64(o, "size", &s->size) || !wx_jflat_i64(o, "createdAtMs", &s->created_at_ms) ||
        !wx_jflat_i64(o, "updatedAtMs", &s->updated_at_ms) ||
        !wx_jflat_i64(o, "trashedAtMs", &s->trashed_at_ms) || !grants_parse(grants, s))
        return false;
    s->kind = strcmp(kind, "folder") == 0 ? FILES_FOLDER : FILES_FILE;
    s->trashed = strcmp(st, "trashed") == 0;
    s->purged = strcmp(st, "purged") == 0;
    return (s->kind == FILES_FOLDER || strcmp(kind, "file") == 0) &&
           (s->trashed || s->purged || strcmp(st, "live") == 0) && name_ok(s->name) &&
           s->size >= 0 && s->size <= FILES_SIZE_MAX;
}

static int files_decode(const char *data, size_t len, void *state)
{
    struct files_item *s = state;
    files_item_init(s);
    if (len > FILES_SNAPSHOT_BYTES_MAX)
        return WX_ERR_CORRUPT;
    char *text = malloc(len + 1);
    if (text == NULL)
        return WX_ERR_NOMEM;
    struct wx_jflat o;
    bool ok = wx_jflat_parse(data, len, text, len + 1, &o) == 0 && decode_snapshot(&o, s);
    free(text);
    if (!ok) {
        files_item_init(s);
        return WX_ERR_CORRUPT;
    }
    s->exists = true;
    return 0;
}

const struct es_aggregate_type files_aggregate = {
    .name = "item",
    .category = FILES_CATEGORY,
    .state_bytes_max = sizeof(struct files_item),
    .state_bytes = files_item_bytes,
    .init = files_item_init,
    .evolve_stored = files_evolve_stored,
    .encode = files_encode,
    .decode = files_decode,
    .snapshot_bytes_max = FILES_SNAPSHOT_BYTES_MAX,
};

/* ---- the Item resource ---- */

static void key_time(struct wx_buf *b, const char *key, int64_t ms, bool *first)
{
    char at[WX_RFC3339_BYTES];
    wx_time_format(ms, at);
    key_str(b, key, at, first);
}

void files_level_json(struct wx_buf *b, enum files_level level)
{
    wx_buf_addc(b, '[');
    for (int l = FILES_LEVEL_READ; l <= (int)level; l++)
        wx_buf_printf(b, "%s\"%s\"", l > FILES_LEVEL_READ ? "," : "", files_level_name(l));
    wx_buf_addc(b, ']');
}

void files_item_json(struct wx_buf *b, const char *id, const struct files_item *s, int64_t version,
                     const struct files_view *v)
{
    bool first = true;
    bool file = s->kind == FILES_FILE;
    wx_buf_addc(b, '{');
    key_str(b, "id", id, &first);
    key_str(b, "kind", file ? "file" : "folder", &first);
    key_str(b, "name", s->name, &first);
    key_str(b, "parentId", s->parent_id[0] ? s->parent_id : NULL, &first);
    key_str(b, "path", v->path, &first);
    wx_buf_json_key(b, "size", &first);
    if (file)
        wx_buf_add_i64(b, s->size);
    else
        wx_buf_adds(b, "null");
    key_str(b, "mimeType", file ? s->mime_type : NULL, &first);
    key_str(b, "contentHash", file && s->content_hash[0] ? s->content_hash : NULL, &first);
    key_str(b, "ownerId", s->owner_id, &first);
    key_str(b, "createdBy", s->created_by, &first);
    key_str(b, "updatedBy", s->updated_by, &first);
    key_time(b, "createdAt", s->created_at_ms, &first);
    key_time(b, "updatedAt", s->updated_at_ms, &first);
    wx_buf_json_key(b, "trashed", &first);
    wx_buf_adds(b, v->trashed ? "true" : "false");
    key_i64(b, "version", version, &first);
    wx_buf_json_key(b, "permissions", &first);
    files_level_json(b, v->level);
    wx_buf_addc(b, '}');
}

void files_stream_id(const char *id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, FILES_CATEGORY ":%s", id);
}
