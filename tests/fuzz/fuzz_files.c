/* libFuzzer: any bytes as the body of each files command (with a choice of
 * path parameters, good and bad), and as a name. A body must parse or be
 * refused with a reason, never crash; a parsed command must hold what the
 * parser promises the deciders (ids, names, sizes, MIME types, hashes,
 * subjects and permissions by their rules). The deciders then run it for
 * four callers against a small tree; an accepted change is applied to the
 * tree and the item's state, and its event must encode and decode back to
 * the same bytes. A name the rule accepts is well-formed UTF-8 of 1-255
 * bytes without '/' or control characters, and not "." or "..".
 *
 * Input: byte 0 picks the command, byte 1 the path parameters, the rest is
 * the body (and the name). */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/id.h"
#include "base/unicode.h"
#include "files/files.h"

static const char *const path_ids[] = {"a", "b", "f", "nope", "", "a b", "*"};
#define PATH_IDS (sizeof(path_ids) / sizeof(path_ids[0]))
static const char *const permissions[] = {"read", "write", "manage", "own", ""};

static void check_name(const uint8_t *s, size_t len)
{
    if (!files_name_ok((const char *)s, len))
        return;
    assert(len >= 1 && len <= FILES_NAME_BYTES_MAX && wx_utf8_valid((const char *)s, len));
    assert(!(len == 1 && s[0] == '.') && !(len == 2 && s[0] == '.' && s[1] == '.'));
    for (size_t i = 0; i < len; i++) {
        assert(s[i] >= 0x20 && s[i] != 0x7F && s[i] != '/');
        assert(!(s[i] == 0xC2 && s[i + 1] < 0xA0));
    }
}

static void check_parsed(const struct files_command *c, enum files_command_kind kind)
{
    assert(c->kind == kind);
    bool create = kind == FILES_CMD_CREATE_FOLDER || kind == FILES_CMD_CREATE_FILE;
    assert(create ? c->item_id == NULL || wx_id_ok(c->item_id) : wx_id_ok(c->item_id));
    if (create || kind == FILES_CMD_RENAME)
        assert(files_name_ok(c->name, strlen(c->name)));
    if (kind == FILES_CMD_CREATE_FILE || kind == FILES_CMD_MOVE)
        assert(c->parent_id != NULL);
    if (c->parent_id != NULL)
        assert(wx_id_ok(c->parent_id));
    if (kind == FILES_CMD_CREATE_FILE)
        assert(c->has_size && c->mime_type != NULL);
    if (c->has_size)
        assert(c->size >= 0 && c->size <= FILES_SIZE_MAX);
    assert(c->mime_type == NULL || strlen(c->mime_type) <= FILES_MIME_BYTES_MAX);
    assert(c->content_hash == NULL || strlen(c->content_hash) <= FILES_HASH_BYTES_MAX);
    if (kind == FILES_CMD_GRANT || kind == FILES_CMD_REVOKE) {
        assert(strcmp(c->subject, FILES_EVERYONE) == 0 || wx_id_ok(c->subject));
        assert(c->permission >= FILES_LEVEL_READ && c->permission <= FILES_LEVEL_MANAGE);
    }
}

static struct files_event made(enum files_event_kind kind, const char *id, const char *name,
                               const char *parent)
{
    return (struct files_event){.kind = kind,
                                .item_id = id,
                                .name = name,
                                .parent_id = parent,
                                .owner_id = "alice",
                                .actor = "alice",
                                .has_size = true,
                                .mime_type = "a/b"};
}

/* /A (a) > /A/B (b) > f, b shared with bob for write. */
static struct files_tree *sample(struct files_item states[3])
{
    struct files_tree *t;
    assert(files_tree_new(&t) == 0);
    struct files_event events[] = {
        made(FILES_FOLDER_CREATED, "a", "A", NULL),
        made(FILES_FOLDER_CREATED, "b", "B", "a"),
        made(FILES_FILE_CREATED, "f", "f", "b"),
    };
    for (size_t i = 0; i < 3; i++) {
        files_item_init(&states[i]);
        files_evolve(&states[i], &events[i]);
        assert(files_tree_apply(t, &events[i]) == 0);
    }
    struct files_event g = {.kind = FILES_GRANT_ADDED,
                            .item_id = "b",
                            .subject = "bob",
                            .permission = FILES_LEVEL_WRITE,
                            .actor = "alice"};
    files_evolve(&states[1], &g);
    assert(files_tree_apply(t, &g) == 0);
    return t;
}

static void roundtrip(const struct files_event *e)
{
    struct wx_buf b, again;
    wx_buf_init(&b);
    wx_buf_init(&again);
    files_event_encode(&b, e);
    assert(wx_buf_ok(&b) && b.len <= FILES_EVENT_DATA_BYTES_MAX);
    struct es_event ev = {.type = files_event_types[e->kind]->name,
                          .schema_version = 1,
                          .data = b.data,
                          .data_len = b.len,
                          .metadata = "{}",
                          .metadata_len = 2};
    struct files_decoded *d = malloc(sizeof(*d));
    assert(d != NULL && files_event_decode(&ev, d) == 0);
    files_event_encode(&again, &d->e);
    assert(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
    free(d);
    wx_buf_free(&b);
    wx_buf_free(&again);
}

static void decide_all(const struct files_command *parsed)
{
    static const struct files_caller callers[] = {{FILES_ROLE_USER, "alice"},
                                                  {FILES_ROLE_USER, "bob"},
                                                  {FILES_ROLE_USER, "carol"},
                                                  {FILES_ROLE_ADMIN, NULL}};
    struct files_command c = *parsed;
    if (c.item_id == NULL)
        c.item_id = "generated";
    struct files_item *states = malloc(3 * sizeof(*states));
    struct files_decision *d = malloc(sizeof(*d));
    assert(states != NULL && d != NULL);
    for (size_t k = 0; k < sizeof(callers) / sizeof(callers[0]); k++) {
        struct files_tree *t = sample(states);
        struct files_item *s = &states[2];
        struct files_item fresh;
        files_item_init(&fresh);
        if (strcmp(c.item_id, "a") == 0 || strcmp(c.item_id, "b") == 0)
            s = &states[strcmp(c.item_id, "b") == 0];
        else if (strcmp(c.item_id, "f") != 0)
            s = &fresh;
        files_decide(t, s, s->exists ? 1 : 0, &c, &callers[k], callers[k].subject, 1000, d);
        assert(d->outcome != NULL && (d->outcome == ES_OK || d->detail != NULL));
        if (d->outcome == ES_OK && d->changes) {
            roundtrip(&d->event);
            struct files_item next = *s;
            files_evolve(&next, &d->event);
            assert(files_tree_apply(t, &d->event) == 0);
        }
        files_tree_free(t);
    }
    free(d);
    free(states);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    check_name(data + 2, size - 2);
    enum files_command_kind kind = (enum files_command_kind)(data[0] % FILES_COMMANDS);
    const char *id = path_ids[data[1] % PATH_IDS];
    const char *subject = path_ids[(data[1] / PATH_IDS) % PATH_IDS];
    const char *permission = permissions[(data[1] >> 6) % 5];
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct files_command *c = NULL;
    const struct es_outcome *outcome = NULL;
    const char *detail = NULL;
    bool ok = files_command_parse(kind, id, subject, permission, (const char *)data + 2, size - 2,
                                  &arena, &c, &outcome, &detail);
    if (!ok) {
        assert(detail != NULL);
        assert(outcome == ES_invalid_request || outcome == ES_internal_error);
    } else {
        check_parsed(c, kind);
        decide_all(c);
    }
    wx_arena_release(&arena);
    return 0;
}
