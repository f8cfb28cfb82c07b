/*
 * The files domain (seeds/002, API.md "Files and folders"): folders and
 * files as metadata (name, parent, size, MIME type, content hash, owner)
 * with audit fields, a trash and access-control lists inherited down the
 * tree. Storing file bytes is out of scope.
 *
 * Streams: "item:<id>", one per file or folder, so a command appends one
 * small event. The rules that span items (names unique among a folder's
 * live children, no folder under its own descendant, permissions
 * inherited from every ancestor) are decided against the tree index
 * (tree.c): every item's parent, name, owner, trash flag and own grants,
 * in the writer's memory, built from the log at start and updated as
 * commands stage their events. The single writer decides every command of
 * a node in turn against it, which is what makes two moves that would
 * together form a cycle refuse one of them.
 *
 * Nothing in this header does I/O: the deciders and the tree are pure and
 * tested without a database (tests/unit/files/); commands.c glues them to
 * the writer, projections.c, query.c and recovery.c to the read side.
 */
#ifndef WALLEX_FILES_FILES_H
#define WALLEX_FILES_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/aggregate.h"
#include "es/domain.h"
#include "es/outcome.h"
#include "limits.h"

#define FILES_CATEGORY "item"

/* ---- the files domain's bounds ---- */

/* A name (API.md): 1-255 bytes of UTF-8. */
#define FILES_NAME_BYTES_MAX 255
/* Nesting: a top-level folder is at depth 1, its children at 2. Google
 * Drive stops at 100; 64 keeps a path under 16 KiB and every walk up the
 * tree (permissions, cycles, paths) under 64 steps. */
#define FILES_DEPTH_MAX 64
/* A path: "/" and a name per level. */
#define FILES_PATH_BYTES_MAX (FILES_DEPTH_MAX * (FILES_NAME_BYTES_MAX + 1))
/* A MIME type (RFC 6838: type and subtype of at most 127 each, and
 * parameters): what fits in a header line people write. */
#define FILES_MIME_BYTES_MAX 255
/* A content hash as the client names it ("sha256:<64 hex>", base64 of
 * SHA-512 is 88): room for a hex SHA-512 with a prefix. */
#define FILES_HASH_BYTES_MAX 136
/* A file's size in bytes: 0 to 2^53 - 1, exact in every JSON reader
 * (JavaScript's numbers included). */
#define FILES_SIZE_MAX ((INT64_C(1) << 53) - 1)
/* Subjects with grants on one item (each with its own permissions). */
#define FILES_GRANTS_MAX 64
/* Items the tree index holds: node numbers are 32-bit; at about 200 bytes
 * an item (docs/architecture.md) this bound is ~3 GiB of memory. */
#define FILES_ITEMS_MAX (16u * 1024 * 1024)
/* GET /folders/{id}/tree: depth asked (1 to this) and the items one answer
 * may hold; a bigger subtree is read a page of children at a time. */
#define FILES_TREE_QUERY_DEPTH_MAX FILES_DEPTH_MAX
#define FILES_TREE_NODES_MAX 1000
/* GET /items?under=&prefix=: a subtree of at most this many items is
 * searched through its closure rows, all of them read and their names
 * sorted for each page (query.c says why); a larger one along the names'
 * index. A page of a search in a folder of 4,096 files took 7.4-8.1 ms
 * (p50) on the shared 2-core box at a load of 7; about 2 us a row. */
#define FILES_SEARCH_SUBTREE_SCAN_MAX 4096
/* A stored files event's data: a rename carries two names of at most 255
 * bytes, each escaped to at most 510 (quotes and backslashes), the id, and
 * keys; a file's creation the name, MIME type and hash. */
#define FILES_EVENT_DATA_BYTES_MAX 4096
/* An encoded item snapshot: the fields and up to 64 grants. */
#define FILES_SNAPSHOT_BYTES_MAX (16 * 1024)
/* Recovery's recursive queries over the read model's parents stop this
 * deep (far past FILES_DEPTH_MAX), so a cycle in a damaged read model ends
 * them. Text: it is pasted into SQL. */
#define FILES_RECURSION_DEPTH_MAX "1000"
/* Trash retention (--trash-retention, WALLEX_TRASH_RETENTION): Google
 * Drive's 30 days by default; the sweeper purges at most
 * FILES_SWEEP_PURGES_MAX items a pass, and passes every quarter of the
 * retention, at least every FILES_SWEEP_INTERVAL_MS_MAX and at most every
 * FILES_SWEEP_INTERVAL_MS_MIN. */
#define FILES_TRASH_RETENTION_DEFAULT "30d"
#define FILES_SWEEP_PURGES_MAX 1000
#define FILES_SWEEP_INTERVAL_MS_MIN 100
#define FILES_SWEEP_INTERVAL_MS_MAX (60 * 1000)
/* Who the sweeper's purge events name as their actor. */
#define FILES_SWEEPER_ACTOR "system:trash-retention"
/* The tree stream of a shared store (treelog.c): a TreeChanged's data
 * (an id and a version), and the stream's snapshot (a count). */
#define FILES_TREE_CHANGED_BYTES_MAX 256
#define FILES_TREE_SNAPSHOT_BYTES_MAX 64
/* Other nodes' tree changes an index catches up with, a chunk of the
 * stream at a time (one read of the chunk, one of the item events it
 * names: 32 round trips for the most); further behind, it is folded again
 * from the log. */
#define FILES_TREE_CATCH_UP_CHUNK 256
#define FILES_TREE_CATCH_UP_EVENTS_MAX 4096
/* Who owns and changes items when authentication is off (no caller). */
#define FILES_ANONYMOUS "anonymous"

/* ---- outcomes (es/outcome.h), append only ---- */

/* `item_not_found`, `item_already_exists` and `too_many_items` are the
 * order domain's (an order's lines), so these say `file` for a file or a
 * folder. */
#define FILES_OUTCOME_MAP(XX, P)                                                                   \
    XX(P, file_not_found, 404, "File or folder not found")                                         \
    XX(P, parent_not_found, 404, "The parent folder was not found")                                \
    XX(P, grant_not_found, 404, "The item has no such grant")                                      \
    XX(P, file_already_exists, 409, "A file or folder with this id exists already")                \
    XX(P, name_taken, 409, "A live item of this folder has this name")                             \
    XX(P, cycle, 422, "A folder cannot move into itself or under its own descendant")              \
    XX(P, not_trashed, 422, "The item is not in the trash")                                        \
    XX(P, item_trashed, 422, "The item or a folder above it is in the trash")                      \
    XX(P, not_a_folder, 422, "Only folders hold items")                                            \
    XX(P, not_a_file, 422, "Only files have a size, a MIME type and a content hash")               \
    XX(P, too_deep, 422, "Folders nest at most 64 deep")                                           \
    XX(P, too_many_grants, 422, "The item has grants for as many subjects as it may")              \
    XX(P, tree_too_large, 422, "The tree holds more items than one answer may")                    \
    XX(P, too_many_files, 422, "The server holds as many files and folders as it may")

enum files_outcome_id { FILES_OUTCOME_MAP(ES_OUTCOME_ID, FILES) FILES_OUTCOMES_LEN };
extern const struct es_outcome files_outcomes[];

#define FILES_file_not_found (&files_outcomes[FILES_ID_file_not_found])
#define FILES_parent_not_found (&files_outcomes[FILES_ID_parent_not_found])
#define FILES_grant_not_found (&files_outcomes[FILES_ID_grant_not_found])
#define FILES_file_already_exists (&files_outcomes[FILES_ID_file_already_exists])
#define FILES_name_taken (&files_outcomes[FILES_ID_name_taken])
#define FILES_cycle (&files_outcomes[FILES_ID_cycle])
#define FILES_not_trashed (&files_outcomes[FILES_ID_not_trashed])
#define FILES_item_trashed (&files_outcomes[FILES_ID_item_trashed])
#define FILES_not_a_folder (&files_outcomes[FILES_ID_not_a_folder])
#define FILES_not_a_file (&files_outcomes[FILES_ID_not_a_file])
#define FILES_too_deep (&files_outcomes[FILES_ID_too_deep])
#define FILES_too_many_grants (&files_outcomes[FILES_ID_too_many_grants])
#define FILES_tree_too_large (&files_outcomes[FILES_ID_tree_too_large])
#define FILES_too_many_files (&files_outcomes[FILES_ID_too_many_files])

extern const struct es_domain files_domain;

/* ---- names (name.c) ---- */

/* API.md: 1-255 bytes of well-formed UTF-8, no '/', no control character
 * (C0, DEL, C1), not "." or "..". Names are compared byte for byte, so
 * case matters ("a" and "A" are two names) and no normalisation happens:
 * the rule is stated in docs/architecture.md. */
bool files_name_ok(const char *name, size_t len);

/* ---- permissions and callers ---- */

/* manage implies write implies read (API.md), so a permission is a level
 * and the union of grants is their maximum. */
enum files_level {
    FILES_LEVEL_NONE = 0,
    FILES_LEVEL_READ = 1,
    FILES_LEVEL_WRITE = 2,
    FILES_LEVEL_MANAGE = 3,
};

/* "read", "write", "manage"; false for anything else. */
const char *files_level_name(enum files_level level);
bool files_level_parse(const char *name, enum files_level *out);
/* The subject of grants to everyone with a token. */
#define FILES_EVERYONE "*"

/* Who asks, as the deciders and the tree see it (auth/auth.h's roles):
 * an admin (or anyone without authentication) may do everything, a
 * reader read everything, a user what ownership and grants give it. */
enum files_role {
    FILES_ROLE_ADMIN,
    FILES_ROLE_READER,
    FILES_ROLE_USER,
};

struct files_caller {
    enum files_role role;
    const char *subject; /* NULL without authentication */
};

/* ---- state: one item ---- */

enum files_kind {
    FILES_FOLDER,
    FILES_FILE,
};

/* A subject's own grants on an item: a bit per level (1 << level). */
struct files_grant {
    char subject[WX_ID_BYTES_MAX + 1];
    uint8_t levels;
};

/* The grants come last: the state in use is the part up to grants_len
 * (es_aggregate_type.state_bytes), so the writer caches a small item
 * small. */
struct files_item {
    bool exists;
    bool trashed; /* trashed itself: the top of a trashed subtree */
    bool purged;
    enum files_kind kind;
    char name[FILES_NAME_BYTES_MAX + 1];
    char parent_id[WX_ID_BYTES_MAX + 1]; /* "" for a top-level folder */
    char owner_id[WX_ID_BYTES_MAX + 1];
    char created_by[WX_ID_BYTES_MAX + 1];
    char updated_by[WX_ID_BYTES_MAX + 1];
    int64_t size;
    char mime_type[FILES_MIME_BYTES_MAX + 1];
    char content_hash[FILES_HASH_BYTES_MAX + 1]; /* "" when none */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    int64_t trashed_at_ms;
    size_t grants_len;
    struct files_grant grants[FILES_GRANTS_MAX];
};

size_t files_item_bytes(const void *state);
void files_item_init(void *state);
/* The highest level the subject was granted on this item itself. */
enum files_level files_item_grant(const struct files_item *s, const char *subject);

/* ---- events ---- */

enum files_event_kind {
    FILES_FOLDER_CREATED,
    FILES_FILE_CREATED,
    FILES_RENAMED,
    FILES_MOVED,
    FILES_FILE_UPDATED,
    FILES_TRASHED,
    FILES_RESTORED,
    FILES_PURGED,
    FILES_GRANT_ADDED,
    FILES_GRANT_REVOKED,
};

/* One typed event. Strings are borrowed from the command, the state or
 * the decoded JSON and live as long as those. */
struct files_event {
    enum files_event_kind kind;
    const char *item_id;
    const char *name;               /* created, renamed */
    const char *previous_name;      /* renamed */
    const char *parent_id;          /* created (NULL: a top-level folder), moved */
    const char *previous_parent_id; /* moved (NULL: it was top-level) */
    const char *owner_id;           /* created */
    bool has_size;                  /* file created (always), file updated */
    int64_t size;
    const char *mime_type;    /* file created (always), file updated (NULL: unchanged) */
    const char *content_hash; /* file created, file updated (NULL: none / unchanged) */
    const char *subject;      /* grant added, revoked */
    enum files_level permission;
    bool by_retention; /* purged by the trash's retention, not asked for */
    const char *actor; /* who (metadata's actor, FILES_ANONYMOUS without one) */
    int64_t occurred_at_ms;
};

/* Pure: apply one event the deciders produced (or the decoder checked). */
void files_evolve(struct files_item *s, const struct files_event *e);

/* ---- the tree index (tree.c) ---- */

/* Every live item of the log as a node: parent, name, kind, owner, trash
 * flag and own grants, with a hash of ids and a hash of (folder, name) for
 * the live children. Pure (memory only) and single-threaded: the writer
 * thread owns the server's; recovery folds one of its own from the log.
 * Purged items leave it with their subtrees. */
#define FILES_NODE_NONE UINT32_MAX

struct files_tree;

int files_tree_new(struct files_tree **out);
/* Accepts NULL. */
void files_tree_free(struct files_tree *t);
/* Applies one event. WX_ERR_CORRUPT when it does not fit the tree (an
 * unknown item or parent, a name already held, a parent that is a file),
 * WX_ERR_NOMEM or WX_ERR_FULL (FILES_ITEMS_MAX); on any error the tree is
 * as it was. */
int files_tree_apply(struct files_tree *t, const struct files_event *e);

/* A purge in two steps, for the writer's index, where a staged change
 * may still lose a race to another node (commands.c): staged, the item
 * and everything under it are out of sight (files_tree_find says NONE);
 * settled, they are gone (committed: whether flagged or not, the log has
 * it) or back as they were (WX_ERR_CORRUPT when it was not staged). A
 * purge staged under another unmarks the nodes of both when undone: the
 * caller marks the inner one again. */
int files_tree_purge_stage(struct files_tree *t, const char *id);
int files_tree_purge_settle(struct files_tree *t, const char *id, bool committed);
/* An undone move (commands.c): back under parent_id, or to the owner's
 * top level when NULL (which no event does). WX_ERR_CORRUPT when it does
 * not fit; WX_ERR_NOMEM. */
int files_tree_move_back(struct files_tree *t, const char *id, const char *parent_id);

/* Nodes in use, and the bytes the tree holds (arrays, tables, strings). */
size_t files_tree_len(const struct files_tree *t);
size_t files_tree_bytes(const struct files_tree *t);
/* Iterates over nodes in use: start with *cursor = 0; FILES_NODE_NONE at
 * the end. */
uint32_t files_tree_next(const struct files_tree *t, uint32_t *cursor);

uint32_t files_tree_find(const struct files_tree *t, const char *id);
const char *files_tree_id(const struct files_tree *t, uint32_t n);
const char *files_tree_name(const struct files_tree *t, uint32_t n);
uint32_t files_tree_parent(const struct files_tree *t, uint32_t n);
enum files_kind files_tree_kind(const struct files_tree *t, uint32_t n);
const char *files_tree_owner(const struct files_tree *t, uint32_t n);
/* Trashed itself. */
bool files_tree_trashed(const struct files_tree *t, uint32_t n);
/* Trashed itself or under a trashed folder: out of listings. */
bool files_tree_hidden(const struct files_tree *t, uint32_t n);
/* 1 for a top-level folder. */
int files_tree_depth(const struct files_tree *t, uint32_t n);
/* Levels below n: 0 for a file or an empty folder. O(subtree). */
int files_tree_height(const struct files_tree *t, uint32_t n);
/* Items under n, n excluded. O(subtree). */
size_t files_tree_descendants(const struct files_tree *t, uint32_t n);
/* n is a or lies under a. */
bool files_tree_within(const struct files_tree *t, uint32_t n, uint32_t a);
/* The live child of folder p with this name (for a top-level folder,
 * p == FILES_NODE_NONE and the owner's top-level folders), or NONE. */
uint32_t files_tree_named(const struct files_tree *t, uint32_t p, const char *owner,
                          const char *name);
/* What the caller may do with n: its role, ownership of n or an ancestor,
 * and grants to its subject or to everyone on n and every ancestor. */
enum files_level files_tree_level(const struct files_tree *t, uint32_t n,
                                  const struct files_caller *who);
/* The subject's level from n's own grants and ownership, and from its
 * ancestors', as recovery compares with item_permissions. */
enum files_level files_tree_subject_level(const struct files_tree *t, uint32_t n,
                                          const char *subject);
/* Subjects with an own grant on n: *len_out of them into subjects (at most
 * FILES_GRANTS_MAX), each with its levels bits. */
size_t files_tree_grants(const struct files_tree *t, uint32_t n, const char **subjects,
                         uint8_t *levels);
/* "/top/.../name" into out. */
void files_tree_path(const struct files_tree *t, uint32_t n, struct wx_buf *out);

/* ---- commands ---- */

enum files_command_kind {
    FILES_CMD_CREATE_FOLDER,
    FILES_CMD_CREATE_FILE,
    FILES_CMD_RENAME,
    FILES_CMD_MOVE,
    FILES_CMD_UPDATE,
    FILES_CMD_TRASH,
    FILES_CMD_RESTORE,
    FILES_CMD_PURGE,
    FILES_CMD_GRANT,
    FILES_CMD_REVOKE,
};
#define FILES_COMMANDS 10

/* A parsed, syntactically valid command. */
struct files_command {
    enum files_command_kind kind;
    const char *item_id;
    bool item_id_generated; /* by the server: its stream cannot exist yet */
    const char *name;       /* create, rename */
    const char *parent_id;  /* create (NULL: a top-level folder), move */
    bool has_size;          /* create file (always), update */
    int64_t size;
    const char *mime_type;    /* create file (always), update: NULL unchanged */
    const char *content_hash; /* create file, update: NULL none / unchanged */
    const char *subject;      /* grant, revoke */
    enum files_level permission;
    /* A purge by the trash's retention: only an item trashed itself before
     * this instant goes (it may have been restored, or trashed again,
     * since the sweeper looked). */
    bool by_retention;
    int64_t trashed_before_ms;
};

struct files_decision {
    const struct es_outcome *outcome; /* ES_OK or the rule broken */
    const char *detail;               /* static text */
    bool changes;                     /* false: nothing to do, answer the item as it is */
    struct files_event event;         /* when it changes something */
};

/* Pure: decides c against the tree and the item's own state (s, at
 * version; for a create the new id's stream, version 0 when free).
 * `actor` goes into the event; now_ms is its time. */
void files_decide(const struct files_tree *t, const struct files_item *s, int64_t version,
                  const struct files_command *c, const struct files_caller *who, const char *actor,
                  int64_t now_ms, struct files_decision *out);

/* ---- parse.c: request bodies (pure, for the fuzzer too) ---- */

struct wx_arena;
/* Parses a request body (empty means {}) into a command; item_id, subject
 * and permission are the path's where the route has them (checked here).
 * On failure *detail says why (400 invalid_request, or 500 without memory
 * in *outcome). */
bool files_command_parse(enum files_command_kind kind, const char *item_id, const char *subject,
                         const char *permission, const char *body, size_t len,
                         struct wx_arena *arena, struct files_command **cmd_out,
                         const struct es_outcome **outcome, const char **detail);

/* ---- codec.c: stored events, snapshots, the Item resource ---- */

extern const struct es_event_type *const files_event_types[];
const struct es_event_type *files_event_type(enum files_event_kind kind);
void files_event_encode(struct wx_buf *b, const struct files_event *e);

struct es_event;
/* A decoded stored event; its strings live in text (FILES_EVENT_DATA_BYTES_MAX
 * + 1 bytes) and actor. */
struct files_decoded {
    struct files_event e;
    char text[FILES_EVENT_DATA_BYTES_MAX + 1];
    char actor[WX_ID_BYTES_MAX + 1];
};
/* Decodes a stored event in its current schema (upcast first).
 * WX_ERR_CORRUPT when it does not read or breaks a bound. */
int files_event_decode(const struct es_event *ev, struct files_decoded *d);

extern const struct es_aggregate_type files_aggregate;

/* What an Item answer shows besides the item's own state. */
struct files_view {
    const char *path;
    bool trashed;           /* itself or under a trashed folder */
    enum files_level level; /* the caller's */
};
/* The Item resource of API.md. */
void files_item_json(struct wx_buf *b, const char *id, const struct files_item *s, int64_t version,
                     const struct files_view *v);
/* ["read", "write"] for a level. */
void files_level_json(struct wx_buf *b, enum files_level level);

void files_stream_id(const char *id, char out[WX_STREAM_ID_BYTES_MAX + 1]);

/* ---- treelog.c: the tree stream of a shared store ---- */

/* On a shared store (several nodes) every change of the tree index also
 * appends a TreeChanged ({"itemId", "itemVersion"}: the item event it
 * goes with) to this one stream, so that two nodes' tree changes race on
 * its versions (treelog.c says how). */
#define FILES_TREE_CATEGORY "files"
#define FILES_TREE_STREAM "files:tree"

extern const struct es_aggregate_type files_tree_log_aggregate;
extern const struct es_event_type files_tree_changed;

#endif
