/*
 * Request bodies into typed files commands: every validation rule that
 * needs no state (ids, names, sizes, MIME types, hashes, subjects,
 * permissions, unknown and null fields). Pure (no I/O, no clock), so the
 * fuzzer calls it directly. Strings of the command are copied into the
 * arena.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "base/id.h"
#include "files/files.h"
#include "http/http.h"
#include "http/json.h"

#define ID_RULE "1-64 characters of A-Z a-z 0-9 . _ : -"
#define NAME_RULE "1-255 bytes of UTF-8 without '/' or control characters, and not '.' or '..'"

/* RFC 6838 restricted-name characters. */
static bool mime_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           strchr("!#$&^_.+-", c) != NULL;
}

/* "type/subtype", each 1-127 restricted-name characters starting with a
 * letter or digit, then optional parameters in visible ASCII and spaces
 * ("text/plain; charset=utf-8"). */
static bool mime_ok(const char *s)
{
    size_t len = strlen(s), i = 0;
    if (len == 0 || len > FILES_MIME_BYTES_MAX)
        return false;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
        while (i < len && mime_char((unsigned char)s[i]))
            i++;
        if (i - start > 127)
            return false;
        if (part == 0 && (i == len || s[i++] != '/'))
            return false;
    }
    if (i < len && s[i] != ';' && s[i] != ' ')
        return false;
    for (; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
            return false;
    return true;
}

/* A hash as clients write one: hex, base64 or base64url, with an optional
 * algorithm prefix ("sha256:..."). */
static bool hash_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > FILES_HASH_BYTES_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr(":+/=_-", c) != NULL))
            return false;
    }
    return true;
}

static bool subject_ok(const char *s)
{
    return strcmp(s, FILES_EVERYONE) == 0 || wx_id_ok(s);
}

static bool get_name(struct json_object *obj, struct wx_arena *arena, const char **out)
{
    return http_json_string(obj, "name", HTTP_FIELD_REQUIRED, FILES_NAME_BYTES_MAX, arena, out) &&
           files_name_ok(*out, strlen(*out));
}

/* size: a JSON integer from 0 to 2^53 - 1. */
static bool get_size(struct json_object *obj, enum http_field need, bool *has, int64_t *out)
{
    struct json_object *v;
    *has = json_object_object_get_ex(obj, "size", &v);
    if (!*has)
        return need == HTTP_FIELD_OPTIONAL;
    return json_object_is_type(v, json_type_int) &&
           http_parse_i64(json_object_get_string(v), 0, FILES_SIZE_MAX, out);
}

static const char *parse_file_fields(struct json_object *obj, enum http_field need,
                                     struct wx_arena *arena, struct files_command *c)
{
    if (!get_size(obj, need, &c->has_size, &c->size))
        return "size must be an integer number of bytes from 0 to 9007199254740991";
    if (!http_json_string(obj, "mimeType", need, FILES_MIME_BYTES_MAX, arena, &c->mime_type) ||
        (c->mime_type != NULL && !mime_ok(c->mime_type)))
        return "mimeType must be a MIME type such as text/plain (RFC 6838), at most 255 bytes";
    if (!http_json_string(obj, "contentHash", HTTP_FIELD_OPTIONAL, FILES_HASH_BYTES_MAX, arena,
                          &c->content_hash) ||
        (c->content_hash != NULL && !hash_ok(c->content_hash)))
        return "contentHash must be 1-136 characters of A-Z a-z 0-9 : + / = _ -";
    return NULL;
}

static const char *parse_body(struct json_object *obj, struct wx_arena *arena,
                              struct files_command *c)
{
    const char *permission;
    switch (c->kind) {
    case FILES_CMD_CREATE_FOLDER:
    case FILES_CMD_CREATE_FILE: {
        bool file = c->kind == FILES_CMD_CREATE_FILE;
        if (!http_json_id(obj, file ? "fileId" : "folderId", HTTP_FIELD_OPTIONAL, arena,
                          &c->item_id))
            return file ? "fileId must be " ID_RULE : "folderId must be " ID_RULE;
        if (!get_name(obj, arena, &c->name))
            return "name is required: " NAME_RULE;
        if (!http_json_id(obj, "parentId", file ? HTTP_FIELD_REQUIRED : HTTP_FIELD_OPTIONAL, arena,
                          &c->parent_id))
            return file ? "parentId is required: the folder's id" : "parentId must be " ID_RULE;
        return file ? parse_file_fields(obj, HTTP_FIELD_REQUIRED, arena, c) : NULL;
    }
    case FILES_CMD_RENAME:
        return get_name(obj, arena, &c->name) ? NULL : "name is required: " NAME_RULE;
    case FILES_CMD_MOVE:
        if (!http_json_id(obj, "parentId", HTTP_FIELD_REQUIRED, arena, &c->parent_id))
            return "parentId is required: the id of the folder to move into";
        return NULL;
    case FILES_CMD_UPDATE:
        return parse_file_fields(obj, HTTP_FIELD_OPTIONAL, arena, c);
    case FILES_CMD_GRANT:
        if (!http_json_string(obj, "subject", HTTP_FIELD_REQUIRED, WX_ID_BYTES_MAX, arena,
                              &c->subject) ||
            !subject_ok(c->subject))
            return "subject is required: " ID_RULE ", or * for everyone with a token";
        if (!http_json_string(obj, "permission", HTTP_FIELD_REQUIRED, 16, arena, &permission) ||
            !files_level_parse(permission, &c->permission))
            return "permission is required: read, write or manage";
        return NULL;
    case FILES_CMD_TRASH:
    case FILES_CMD_RESTORE:
    case FILES_CMD_PURGE:
    case FILES_CMD_REVOKE:
        return NULL;
    }
    return "unknown command";
}

static const char *parse_path(enum files_command_kind kind, const char *item_id,
                              const char *subject, const char *permission, struct files_command *c)
{
    bool create = kind == FILES_CMD_CREATE_FOLDER || kind == FILES_CMD_CREATE_FILE;
    if (!create && (item_id == NULL || !wx_id_ok(item_id)))
        return "the item id must be " ID_RULE;
    c->item_id = create ? NULL : item_id;
    if (kind != FILES_CMD_REVOKE)
        return NULL;
    if (subject == NULL || !subject_ok(subject))
        return "the subject must be " ID_RULE ", or * for everyone with a token";
    if (permission == NULL || !files_level_parse(permission, &c->permission))
        return "the permission must be read, write or manage";
    c->subject = subject;
    return NULL;
}

bool files_command_parse(enum files_command_kind kind, const char *item_id, const char *subject,
                         const char *permission, const char *body, size_t len,
                         struct wx_arena *arena, struct files_command **cmd_out,
                         const struct es_outcome **outcome, const char **detail)
{
    static const char *const keys[FILES_COMMANDS][7] = {
        [FILES_CMD_CREATE_FOLDER] = {"folderId", "name", "parentId", NULL},
        [FILES_CMD_CREATE_FILE] = {"fileId", "name", "parentId", "size", "mimeType", "contentHash",
                                   NULL},
        [FILES_CMD_RENAME] = {"name", NULL},
        [FILES_CMD_MOVE] = {"parentId", NULL},
        [FILES_CMD_UPDATE] = {"size", "mimeType", "contentHash", NULL},
        [FILES_CMD_TRASH] = {NULL},
        [FILES_CMD_RESTORE] = {NULL},
        [FILES_CMD_PURGE] = {NULL},
        [FILES_CMD_GRANT] = {"subject", "permission", NULL},
        [FILES_CMD_REVOKE] = {NULL},
    };
    *outcome = ES_invalid_request;
    struct files_command *c = wx_arena_alloc(arena, sizeof(*c));
    if (c == NULL) {
        *outcome = ES_internal_error;
        *detail = "out of memory";
        return false;
    }
    c->kind = kind;
    *detail = parse_path(kind, item_id, subject, permission, c);
    if (*detail != NULL)
        return false;
    struct json_object *obj = NULL;
    *detail = http_json_body_object(body, len, keys[kind], arena, &obj);
    if (*detail == NULL)
        *detail = parse_body(obj, arena, c);
    json_object_put(obj);
    if (*detail != NULL)
        return false;
    *cmd_out = c;
    return true;
}
