/*
 * The files rules, as pure functions: no I/O, no clock reads, no
 * allocation. A decision reads the item's own state and the tree index
 * (parents, names, trash flags, owners and grants of every item); every
 * rule of API.md "Files and folders" lives here and is tested in
 * tests/unit/files/test_decide.c without a database.
 *
 * The order of the checks is the permission model's: an item the caller
 * cannot read is 404 (as if absent), one it can read but not change is
 * 403, and only then come the rules of the change itself (422, 409).
 */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "auth/auth.h"
#include "files/files.h"

#define NONE FILES_NODE_NONE

size_t files_item_bytes(const void *state)
{
    const struct files_item *s = state;
    assert(s->grants_len <= FILES_GRANTS_MAX);
    return offsetof(struct files_item, grants) + s->grants_len * sizeof(s->grants[0]);
}

void files_item_init(void *state)
{
    memset(state, 0, offsetof(struct files_item, grants));
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    assert(n < cap);
    memcpy(dst, src ? src : "", n);
    dst[n] = '\0';
}

static size_t find_grant(const struct files_item *s, const char *subject)
{
    for (size_t i = 0; i < s->grants_len; i++)
        if (strcmp(s->grants[i].subject, subject) == 0)
            return i;
    return SIZE_MAX;
}

enum files_level files_item_grant(const struct files_item *s, const char *subject)
{
    size_t g = find_grant(s, subject);
    if (g == SIZE_MAX)
        return FILES_LEVEL_NONE;
    for (int l = FILES_LEVEL_MANAGE; l > FILES_LEVEL_NONE; l--)
        if (s->grants[g].levels & (1u << l))
            return (enum files_level)l;
    return FILES_LEVEL_NONE;
}

static void evolve_grant(struct files_item *s, const struct files_event *e)
{
    uint8_t bit = (uint8_t)(1u << e->permission);
    size_t g = find_grant(s, e->subject);
    if (e->kind == FILES_GRANT_ADDED) {
        if (g == SIZE_MAX) {
            assert(s->grants_len < FILES_GRANTS_MAX);
            g = s->grants_len++;
            copy_str(s->grants[g].subject, sizeof(s->grants[g].subject), e->subject);
            s->grants[g].levels = 0;
        }
        s->grants[g].levels |= bit;
        return;
    }
    assert(g != SIZE_MAX);
    s->grants[g].levels &= (uint8_t)~bit;
    if (s->grants[g].levels == 0) { /* the others keep the order they came in */
        memmove(&s->grants[g], &s->grants[g + 1], (s->grants_len - g - 1) * sizeof(s->grants[0]));
        s->grants_len--;
    }
}

void files_evolve(struct files_item *s, const struct files_event *e)
{
    switch (e->kind) {
    case FILES_FOLDER_CREATED:
    case FILES_FILE_CREATED:
        assert(!s->exists);
        files_item_init(s);
        s->exists = true;
        s->kind = e->kind == FILES_FOLDER_CREATED ? FILES_FOLDER : FILES_FILE;
        copy_str(s->name, sizeof(s->name), e->name);
        copy_str(s->parent_id, sizeof(s->parent_id), e->parent_id);
        copy_str(s->owner_id, sizeof(s->owner_id), e->owner_id);
        copy_str(s->created_by, sizeof(s->created_by), e->actor);
        s->size = e->has_size ? e->size : 0;
        copy_str(s->mime_type, sizeof(s->mime_type), e->mime_type);
        copy_str(s->content_hash, sizeof(s->content_hash), e->content_hash);
        s->created_at_ms = e->occurred_at_ms;
        break;
    case FILES_RENAMED:
        copy_str(s->name, sizeof(s->name), e->name);
        break;
    case FILES_MOVED:
        copy_str(s->parent_id, sizeof(s->parent_id), e->parent_id);
        break;
    case FILES_FILE_UPDATED:
        if (e->has_size)
            s->size = e->size;
        if (e->mime_type != NULL)
            copy_str(s->mime_type, sizeof(s->mime_type), e->mime_type);
        if (e->content_hash != NULL)
            copy_str(s->content_hash, sizeof(s->content_hash), e->content_hash);
        break;
    case FILES_TRASHED:
        s->trashed = true;
        s->trashed_at_ms = e->occurred_at_ms;
        break;
    case FILES_RESTORED:
        s->trashed = false;
        s->trashed_at_ms = 0;
        break;
    case FILES_PURGED:
        s->purged = true;
        break;
    case FILES_GRANT_ADDED:
    case FILES_GRANT_REVOKED:
        evolve_grant(s, e);
        break;
    }
    copy_str(s->updated_by, sizeof(s->updated_by), e->actor);
    s->updated_at_ms = e->occurred_at_ms;
}

/* ---- deciders ---- */

static void reject(struct files_decision *d, const struct es_outcome *o, const char *detail)
{
    d->outcome = o;
    d->detail = detail;
    d->changes = false;
}

/* A rule broken: the decision is that rejection. */
#define REFUSE(d, outcome, detail)                                                                 \
    do {                                                                                           \
        reject(d, outcome, detail);                                                                \
        return;                                                                                    \
    } while (0)

/* Nothing to change: the answer is the item as it is. */
#define UNCHANGED(d)                                                                               \
    do {                                                                                           \
        (d)->changes = false;                                                                      \
        return;                                                                                    \
    } while (0)

static enum files_level level(const struct files_tree *t, uint32_t n,
                              const struct files_caller *who)
{
    return files_tree_level(t, n, who);
}

/* The owner of what the caller creates. */
static const char *creator(const struct files_caller *who)
{
    return who->subject != NULL ? who->subject : FILES_ANONYMOUS;
}

static void decide_create(const struct files_tree *t, int64_t version,
                          const struct files_command *c, const struct files_caller *who,
                          struct files_decision *d)
{
    uint32_t p = NONE;
    if (c->parent_id != NULL) {
        p = files_tree_find(t, c->parent_id);
        if (p == NONE || level(t, p, who) < FILES_LEVEL_READ)
            REFUSE(d, FILES_parent_not_found, "no folder with this parentId");
        if (level(t, p, who) < FILES_LEVEL_WRITE)
            REFUSE(d, AUTH_forbidden, "creating here needs write on the folder");
        if (files_tree_kind(t, p) != FILES_FOLDER)
            REFUSE(d, FILES_not_a_folder, "the parent is a file");
        if (files_tree_hidden(t, p))
            REFUSE(d, FILES_item_trashed, "the folder is in the trash");
        if (files_tree_depth(t, p) + 1 > FILES_DEPTH_MAX)
            REFUSE(d, FILES_too_deep, "folders nest at most 64 deep");
    } else if (who->role == FILES_ROLE_READER) {
        REFUSE(d, AUTH_forbidden, "a reader creates nothing");
    }
    const char *owner = creator(who);
    if (version > 0 || files_tree_find(t, c->item_id) != NONE)
        REFUSE(d, FILES_file_already_exists, "a file or folder has this id already");
    if (files_tree_named(t, p, owner, c->name) != NONE)
        REFUSE(d, FILES_name_taken,
               p == NONE ? "you have a top-level folder with this name"
                         : "the folder has a live item with this name");
    if (files_tree_len(t) >= FILES_ITEMS_MAX)
        REFUSE(d, FILES_too_many_files, "the server holds as many items as it may");
    struct files_event *e = &d->event;
    e->kind = c->kind == FILES_CMD_CREATE_FOLDER ? FILES_FOLDER_CREATED : FILES_FILE_CREATED;
    e->name = c->name;
    e->parent_id = c->parent_id;
    e->owner_id = owner;
    if (c->kind == FILES_CMD_CREATE_FILE) {
        e->has_size = true;
        e->size = c->size;
        e->mime_type = c->mime_type;
        e->content_hash = c->content_hash;
    }
}

static void decide_rename(const struct files_tree *t, uint32_t n, const struct files_command *c,
                          struct files_decision *d)
{
    if (files_tree_hidden(t, n))
        REFUSE(d, FILES_item_trashed, "restore the item before renaming it");
    const char *name = files_tree_name(t, n);
    if (strcmp(name, c->name) == 0)
        UNCHANGED(d);
    uint32_t holder = files_tree_named(t, files_tree_parent(t, n), files_tree_owner(t, n), c->name);
    if (holder != NONE && holder != n)
        REFUSE(d, FILES_name_taken, "the folder has a live item with this name");
    d->event.kind = FILES_RENAMED;
    d->event.name = c->name;
    d->event.previous_name = name;
}

static void decide_move(const struct files_tree *t, uint32_t n, const struct files_command *c,
                        const struct files_caller *who, struct files_decision *d)
{
    uint32_t p = files_tree_find(t, c->parent_id);
    if (p == NONE || level(t, p, who) < FILES_LEVEL_READ)
        REFUSE(d, FILES_parent_not_found, "no folder with this parentId");
    if (level(t, p, who) < FILES_LEVEL_WRITE)
        REFUSE(d, AUTH_forbidden, "moving here needs write on the folder");
    if (files_tree_hidden(t, n) || files_tree_hidden(t, p))
        REFUSE(d, FILES_item_trashed, "the item or the folder is in the trash");
    if (files_tree_kind(t, p) != FILES_FOLDER)
        REFUSE(d, FILES_not_a_folder, "the parent is a file");
    if (files_tree_within(t, p, n))
        REFUSE(d, FILES_cycle, "a folder cannot move into itself or its own subtree");
    uint32_t from = files_tree_parent(t, n);
    if (from == p)
        UNCHANGED(d);
    if (files_tree_depth(t, p) + 1 + files_tree_height(t, n) > FILES_DEPTH_MAX)
        REFUSE(d, FILES_too_deep, "folders would nest more than 64 deep");
    if (files_tree_named(t, p, NULL, files_tree_name(t, n)) != NONE)
        REFUSE(d, FILES_name_taken, "the folder has a live item with this name");
    d->event.kind = FILES_MOVED;
    d->event.parent_id = c->parent_id;
    d->event.previous_parent_id = from != NONE ? files_tree_id(t, from) : NULL;
}

static void decide_update(const struct files_tree *t, uint32_t n, const struct files_item *s,
                          const struct files_command *c, struct files_decision *d)
{
    if (files_tree_kind(t, n) != FILES_FILE)
        REFUSE(d, FILES_not_a_file, "a folder has no size, MIME type or content hash");
    if (files_tree_hidden(t, n))
        REFUSE(d, FILES_item_trashed, "restore the file before changing it");
    struct files_event *e = &d->event;
    e->kind = FILES_FILE_UPDATED;
    e->has_size = c->has_size && c->size != s->size;
    e->size = c->size;
    if (c->mime_type != NULL && strcmp(c->mime_type, s->mime_type) != 0)
        e->mime_type = c->mime_type;
    if (c->content_hash != NULL && strcmp(c->content_hash, s->content_hash) != 0)
        e->content_hash = c->content_hash;
    if (!e->has_size && e->mime_type == NULL && e->content_hash == NULL)
        d->changes = false;
}

static void decide_restore(const struct files_tree *t, uint32_t n, struct files_decision *d)
{
    if (!files_tree_trashed(t, n))
        REFUSE(d, FILES_not_trashed, "the item was not trashed itself");
    uint32_t p = files_tree_parent(t, n);
    if (p != NONE && files_tree_hidden(t, p))
        REFUSE(d, FILES_item_trashed, "the folder it is in is in the trash: restore that");
    if (files_tree_named(t, p, files_tree_owner(t, n), files_tree_name(t, n)) != NONE)
        REFUSE(d, FILES_name_taken, "a live item has taken its name meanwhile");
    d->event.kind = FILES_RESTORED;
}

static void decide_purge(const struct files_tree *t, uint32_t n, const struct files_item *s,
                         const struct files_command *c, struct files_decision *d)
{
    if (!files_tree_hidden(t, n))
        REFUSE(d, FILES_not_trashed, "only items in the trash are purged");
    if (c->by_retention && (!files_tree_trashed(t, n) || s->trashed_at_ms >= c->trashed_before_ms))
        REFUSE(d, FILES_not_trashed, "restored or trashed again since");
    d->event.kind = FILES_PURGED;
    d->event.by_retention = c->by_retention;
}

static void decide_grant(const struct files_item *s, const struct files_command *c,
                         struct files_decision *d)
{
    bool held = false; /* the subject has grants of its own here */
    uint8_t levels = 0;
    for (size_t g = 0; g < s->grants_len; g++) {
        if (strcmp(s->grants[g].subject, c->subject) == 0) {
            held = true;
            levels = s->grants[g].levels;
        }
    }
    bool has = levels & (1u << c->permission);
    if (c->kind == FILES_CMD_REVOKE) {
        if (!has)
            REFUSE(d, FILES_grant_not_found, "the item has no such grant of its own");
        d->event.kind = FILES_GRANT_REVOKED;
    } else {
        if (has)
            UNCHANGED(d);
        if (!held && s->grants_len == FILES_GRANTS_MAX)
            REFUSE(d, FILES_too_many_grants, "an item has grants for at most 64 subjects");
        d->event.kind = FILES_GRANT_ADDED;
    }
    d->event.subject = c->subject;
    d->event.permission = c->permission;
}

/* What each change needs of the caller on the item itself. */
static enum files_level needed(enum files_command_kind kind)
{
    switch (kind) {
    case FILES_CMD_PURGE:
    case FILES_CMD_GRANT:
    case FILES_CMD_REVOKE:
        return FILES_LEVEL_MANAGE;
    default:
        return FILES_LEVEL_WRITE;
    }
}

void files_decide(const struct files_tree *t, const struct files_item *s, int64_t version,
                  const struct files_command *c, const struct files_caller *who, const char *actor,
                  int64_t now_ms, struct files_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->outcome = ES_OK;
    d->changes = true;
    d->event.item_id = c->item_id;
    d->event.actor = actor != NULL ? actor : FILES_ANONYMOUS;
    d->event.occurred_at_ms = now_ms;
    if (c->kind == FILES_CMD_CREATE_FOLDER || c->kind == FILES_CMD_CREATE_FILE) {
        decide_create(t, version, c, who, d);
        return;
    }
    uint32_t n = files_tree_find(t, c->item_id);
    if (n == NONE || level(t, n, who) < FILES_LEVEL_READ)
        REFUSE(d, FILES_file_not_found, "no file or folder with this id");
    if (level(t, n, who) < needed(c->kind))
        REFUSE(d, AUTH_forbidden,
               needed(c->kind) == FILES_LEVEL_MANAGE ? "this needs manage on the item"
                                                     : "this needs write on the item");
    switch (c->kind) {
    case FILES_CMD_RENAME:
        decide_rename(t, n, c, d);
        return;
    case FILES_CMD_MOVE:
        decide_move(t, n, c, who, d);
        return;
    case FILES_CMD_UPDATE:
        decide_update(t, n, s, c, d);
        return;
    case FILES_CMD_TRASH:
        if (files_tree_hidden(t, n))
            UNCHANGED(d); /* in the trash already, itself or with a folder */
        d->event.kind = FILES_TRASHED;
        return;
    case FILES_CMD_RESTORE:
        decide_restore(t, n, d);
        return;
    case FILES_CMD_PURGE:
        decide_purge(t, n, s, c, d);
        return;
    case FILES_CMD_GRANT:
    case FILES_CMD_REVOKE:
        decide_grant(s, c, d);
        return;
    default:
        REFUSE(d, ES_invalid_request, "unknown command");
    }
}
