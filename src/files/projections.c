/*
 * The "items" consumer (files/projections.h): each event of an item
 * changes its row, and a change of place, name, trash or grants rewrites
 * what its subtree inherits (paths, depths, hidden flags, the closure rows
 * and the effective permissions) in the same transaction.
 *
 * Every apply is idempotent: the item's row carries the version of the
 * last event it took, and an event at or below it is skipped. The SQL is
 * the dialect SQLite and PostgreSQL share (ON CONFLICT, BIGINT, ?N, row
 * values, correlated subqueries, substr and length counting characters;
 * rm/rm.h). Ids, names and paths are RM_TEXT: they compare by their bytes
 * on both backends, so pages and the search's prefix ranges agree.
 */
#include "files/projections.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* ---- decoding each event once ---- */

static int codec_decode(const struct es_event *ev, void **out)
{
    *out = NULL;
    struct files_decoded *d = malloc(sizeof(*d));
    if (d == NULL)
        return WX_ERR_NOMEM;
    int err = files_event_decode(ev, d);
    if (err) {
        free(d);
        return err;
    }
    *out = d;
    return 0;
}

static void codec_release(void *decoded)
{
    free(decoded);
}

static const struct es_event_codec files_codec = {.decode = codec_decode, .release = codec_release};

static const char *const categories[] = {FILES_CATEGORY, NULL};

/* ---- statements ---- */

/* The items of ?1's subtree, ?1 included. */
#define SUBTREE "(SELECT descendant FROM item_tree{s} WHERE ancestor = ?1)"

enum {
    I_ROW,
    I_INSERT,
    I_TREE_SELF,
    I_TREE_UNDER,
    I_TOUCH,
    I_RENAME,
    I_PATHS,
    I_PARENT,
    I_TREE_DETACH,
    I_TREE_ATTACH,
    I_DEPTHS,
    I_HIDE,
    I_HIDDEN,
    I_FILE,
    I_TRASH,
    I_PERMISSIONS_TRASH,
    I_PURGE_PERMISSIONS,
    I_PURGE_GRANTS,
    I_PURGE_ITEMS,
    I_PURGE_TREE,
    I_GRANT_ADD,
    I_GRANT_DELETE,
    I_PERMISSIONS_CLEAR,
    I_PERMISSIONS_FILL,
    I_PERMISSIONS_RAISE,
    I_SUBJECT_CLEAR,
    I_SUBJECT_FILL,
    I_NEW_CLEAR,
    I_NEW_INHERIT,
    I_NEW_OWNER,
};

static const char *const items_sql[] = {
    [I_ROW] = "SELECT version, depth, path, hidden FROM items{s} WHERE id = ?1",
    [I_INSERT] = "INSERT INTO items{s}(id, kind, name, parent_id, owner_id, size, mime_type,"
                 " content_hash, created_by, updated_by, created_at_ms, updated_at_ms, trashed,"
                 " trashed_at_ms, hidden, depth, path, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
                 " ?7, ?8, ?9, ?9, ?10, ?10, 0, NULL, ?11, ?12, ?13, 1)",
    [I_TREE_SELF] = "INSERT INTO item_tree{s}(ancestor, descendant, depth) VALUES (?1, ?1, 0)"
                    " ON CONFLICT DO NOTHING",
    [I_TREE_UNDER] = "INSERT INTO item_tree{s}(ancestor, descendant, depth)"
                     " SELECT ancestor, ?1, depth + 1 FROM item_tree{s} WHERE descendant = ?2"
                     " ON CONFLICT DO NOTHING",
    [I_TOUCH] = "UPDATE items{s} SET updated_by = ?2, updated_at_ms = ?3, version = ?4"
                " WHERE id = ?1",
    [I_RENAME] = "UPDATE items{s} SET name = ?2 WHERE id = ?1",
    /* ?2: the new path of ?1, ?3: its old one; characters on both sides
     * (SQLite's and PostgreSQL's length and substr count characters). */
    [I_PATHS] = "UPDATE items{s} SET path = ?2 || substr(path, length(?3) + 1)"
                " WHERE id IN " SUBTREE,
    [I_PARENT] = "UPDATE items{s} SET parent_id = ?2 WHERE id = ?1",
    /* A move: the subtree leaves every ancestor above ?1, then joins every
     * ancestor of the new parent ?2 (itself included). */
    [I_TREE_DETACH] =
        "DELETE FROM item_tree{s} WHERE descendant IN " SUBTREE " AND ancestor NOT IN " SUBTREE,
    [I_TREE_ATTACH] = "INSERT INTO item_tree{s}(ancestor, descendant, depth)"
                      " SELECT p.ancestor, t.descendant, p.depth + t.depth + 1"
                      " FROM item_tree{s} p, item_tree{s} t WHERE p.descendant = ?2"
                      " AND t.ancestor = ?1 ON CONFLICT DO NOTHING",
    [I_DEPTHS] = "UPDATE items{s} SET depth = ?2 + (SELECT t.depth FROM item_tree{s} t"
                 " WHERE t.ancestor = ?1 AND t.descendant = items{s}.id) WHERE id IN " SUBTREE,
    [I_HIDE] = "UPDATE items{s} SET hidden = 1 WHERE id IN " SUBTREE,
    [I_HIDDEN] = "UPDATE items{s} SET hidden = CASE WHEN EXISTS (SELECT 1 FROM item_tree{s} t"
                 " JOIN items{s} a ON a.id = t.ancestor WHERE t.descendant = items{s}.id AND"
                 " a.trashed = 1) THEN 1 ELSE 0 END WHERE id IN " SUBTREE,
    [I_FILE] = "UPDATE items{s} SET size = coalesce(?2, size), mime_type = coalesce(?3,"
               " mime_type), content_hash = coalesce(?4, content_hash) WHERE id = ?1",
    [I_TRASH] = "UPDATE items{s} SET trashed = ?2, trashed_at_ms = ?3 WHERE id = ?1",
    /* Every permission row carries its item's trashed_at_ms (NULL unless
     * the item is trashed itself), so a user's /trash is read from its
     * own rows (an index of the trashed ones by subject), not from every
     * item in the trash. */
    [I_PERMISSIONS_TRASH] = "UPDATE item_permissions{s} SET trashed_at_ms = (SELECT"
                            " trashed_at_ms FROM items{s} WHERE id = ?1) WHERE item_id = ?1",
    [I_PURGE_PERMISSIONS] = "DELETE FROM item_permissions{s} WHERE item_id IN " SUBTREE,
    [I_PURGE_GRANTS] = "DELETE FROM item_grants{s} WHERE item_id IN " SUBTREE,
    [I_PURGE_ITEMS] = "DELETE FROM items{s} WHERE id IN " SUBTREE,
    [I_PURGE_TREE] = "DELETE FROM item_tree{s} WHERE descendant IN " SUBTREE,
    [I_GRANT_ADD] = "INSERT INTO item_grants{s}(item_id, subject, level) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT DO NOTHING",
    [I_GRANT_DELETE] = "DELETE FROM item_grants{s} WHERE item_id = ?1 AND subject = ?2"
                       " AND level = ?3",
    /* Effective permissions of the subtree of ?1, recomputed: for each
     * item, each subject's highest grant on it or an ancestor, and manage
     * for the owners of it and its ancestors. */
    [I_PERMISSIONS_CLEAR] = "DELETE FROM item_permissions{s} WHERE item_id IN " SUBTREE,
    [I_PERMISSIONS_FILL] =
        "INSERT INTO item_permissions{s}(item_id, subject, level, trashed_at_ms)"
        " SELECT x.d, x.subject, max(x.level), it.trashed_at_ms FROM ("
        " SELECT t.descendant AS d, g.subject AS subject, g.level AS level"
        " FROM item_tree{s} t JOIN item_tree{s} a ON a.descendant = t.descendant"
        " JOIN item_grants{s} g ON g.item_id = a.ancestor WHERE t.ancestor = ?1"
        " UNION ALL SELECT t.descendant, i.owner_id, 3"
        " FROM item_tree{s} t JOIN item_tree{s} a ON a.descendant = t.descendant"
        " JOIN items{s} i ON i.id = a.ancestor WHERE t.ancestor = ?1"
        ") x JOIN items{s} it ON it.id = x.d GROUP BY x.d, x.subject, it.trashed_at_ms",
    /* A grant only raises: ?2 gets at least ?3 on the subtree. */
    [I_PERMISSIONS_RAISE] =
        "INSERT INTO item_permissions{s}(item_id, subject, level, trashed_at_ms)"
        " SELECT t.descendant, ?2, ?3, i.trashed_at_ms FROM item_tree{s} t JOIN items{s} i"
        " ON i.id = t.descendant WHERE t.ancestor = ?1"
        " ON CONFLICT(item_id, subject) DO UPDATE SET level = CASE WHEN excluded.level >"
        " item_permissions{s}.level THEN excluded.level ELSE item_permissions{s}.level END",
    /* A revoke: ?2's levels on the subtree, recomputed. */
    [I_SUBJECT_CLEAR] =
        "DELETE FROM item_permissions{s} WHERE subject = ?2 AND item_id IN " SUBTREE,
    [I_SUBJECT_FILL] =
        "INSERT INTO item_permissions{s}(item_id, subject, level, trashed_at_ms)"
        " SELECT x.d, ?2, max(x.level), it.trashed_at_ms FROM ("
        " SELECT t.descendant AS d, g.level AS level"
        " FROM item_tree{s} t JOIN item_tree{s} a ON a.descendant = t.descendant"
        " JOIN item_grants{s} g ON g.item_id = a.ancestor AND g.subject = ?2"
        " WHERE t.ancestor = ?1"
        " UNION ALL SELECT t.descendant, 3"
        " FROM item_tree{s} t JOIN item_tree{s} a ON a.descendant = t.descendant"
        " JOIN items{s} i ON i.id = a.ancestor AND i.owner_id = ?2 WHERE t.ancestor = ?1"
        ") x JOIN items{s} it ON it.id = x.d GROUP BY x.d, it.trashed_at_ms",
    /* A new item's permissions: its folder's, and manage for its owner (it
     * has no grants yet, and is not trashed). Each row by its key, so the
     * plan is the same at any size on both backends; the subtree's join
     * above, which PostgreSQL plans as hash joins over whole tables until
     * it has statistics, cost 2.5 ms a create at 4k items there. */
    [I_NEW_CLEAR] = "DELETE FROM item_permissions{s} WHERE item_id = ?1",
    [I_NEW_INHERIT] =
        "INSERT INTO item_permissions{s}(item_id, subject, level, trashed_at_ms)"
        " SELECT ?1, subject, level, NULL FROM item_permissions{s} WHERE item_id = ?2",
    [I_NEW_OWNER] =
        "INSERT INTO item_permissions{s}(item_id, subject, level, trashed_at_ms)"
        " VALUES (?1, ?2, 3, NULL) ON CONFLICT(item_id, subject) DO UPDATE SET level = 3",
    NULL,
};

/* ---- helpers ---- */

/* An item's row as the consumer needs it. */
struct row {
    bool exists;
    int64_t version;
    int64_t depth;
    int64_t hidden;
    char path[FILES_PATH_BYTES_MAX + 1];
};

static int row_get(struct es_proj_tx *tx, const char *id, struct row *r)
{
    r->exists = false;
    struct rm_stmt *st = es_proj_stmt(tx, I_ROW);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, id);
    bool found = false;
    int err = rm_step(st, &found);
    if (!err && found) {
        const char *path = rm_column_text(st, 2);
        r->exists = true;
        r->version = rm_column_i64(st, 0);
        r->depth = rm_column_i64(st, 1);
        r->hidden = rm_column_i64(st, 3);
        if (path == NULL || strlen(path) > FILES_PATH_BYTES_MAX)
            err = WX_ERR_CORRUPT;
        else
            memcpy(r->path, path, strlen(path) + 1);
    }
    rm_reset(st);
    return err;
}

/* Runs statement `id` with ?1 = id and, when not NULL, ?2 and ?3 as text. */
static int run_text(struct es_proj_tx *tx, int stmt, const char *id, const char *a2, const char *a3)
{
    struct rm_stmt *st = es_proj_stmt(tx, stmt);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, id);
    if (a2 != NULL)
        rm_bind_text(st, 2, a2);
    if (a3 != NULL)
        rm_bind_text(st, 3, a3);
    return rm_run(st);
}

/* ?1 = id, ?2 = text (may be NULL: SQL NULL), ?3 = integer. */
static int run_text_int(struct es_proj_tx *tx, int stmt, const char *id, const char *a2, int64_t a3)
{
    struct rm_stmt *st = es_proj_stmt(tx, stmt);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, id);
    if (a2 != NULL)
        rm_bind_text(st, 2, a2);
    rm_bind_i64(st, 3, a3);
    return rm_run(st);
}

static int run_ids(struct es_proj_tx *tx, const int *stmts, size_t n, const char *id)
{
    int err = 0;
    for (size_t i = 0; i < n && !err; i++)
        err = run_text(tx, stmts[i], id, NULL, NULL);
    return err;
}

/* parent_path + "/" + name (or "/" + name at the top) into out. */
static int join_path(const char *parent_path, const char *name, char out[FILES_PATH_BYTES_MAX + 1])
{
    int n = snprintf(out, FILES_PATH_BYTES_MAX + 1, "%s/%s", parent_path ? parent_path : "", name);
    return n < 0 || n > FILES_PATH_BYTES_MAX ? WX_ERR_CORRUPT : 0;
}

/* ---- events ---- */

static int apply_create(struct es_proj_tx *tx, const struct files_event *e)
{
    struct row parent = {.exists = false};
    int err = e->parent_id != NULL ? row_get(tx, e->parent_id, &parent) : 0;
    if (!err && e->parent_id != NULL && !parent.exists)
        err = WX_ERR_CORRUPT;
    char path[FILES_PATH_BYTES_MAX + 1];
    if (!err)
        err = join_path(e->parent_id ? parent.path : NULL, e->name, path);
    struct rm_stmt *st = err ? NULL : es_proj_stmt(tx, I_INSERT);
    if (err || st == NULL)
        return err ? err : WX_ERR_IO;
    bool file = e->kind == FILES_FILE_CREATED;
    rm_bind_text(st, 1, e->item_id);
    rm_bind_text(st, 2, file ? "file" : "folder");
    rm_bind_text(st, 3, e->name);
    rm_bind_text(st, 4, e->parent_id);
    rm_bind_text(st, 5, e->owner_id);
    if (file) {
        rm_bind_i64(st, 6, e->size);
        rm_bind_text(st, 7, e->mime_type);
        rm_bind_text(st, 8, e->content_hash);
    }
    rm_bind_text(st, 9, e->actor);
    rm_bind_i64(st, 10, e->occurred_at_ms);
    rm_bind_i64(st, 11, parent.exists ? parent.hidden : 0);
    rm_bind_i64(st, 12, parent.exists ? parent.depth + 1 : 1);
    rm_bind_text(st, 13, path);
    err = rm_run(st);
    if (!err)
        err = run_text(tx, I_TREE_SELF, e->item_id, NULL, NULL);
    if (!err && e->parent_id != NULL)
        err = run_text(tx, I_TREE_UNDER, e->item_id, e->parent_id, NULL);
    if (!err)
        err = run_text(tx, I_NEW_CLEAR, e->item_id, NULL, NULL);
    if (!err && e->parent_id != NULL)
        err = run_text(tx, I_NEW_INHERIT, e->item_id, e->parent_id, NULL);
    return err ? err : run_text(tx, I_NEW_OWNER, e->item_id, e->owner_id, NULL);
}

static int apply_rename(struct es_proj_tx *tx, const struct files_event *e, const struct row *r)
{
    char path[FILES_PATH_BYTES_MAX + 1];
    memcpy(path, r->path, sizeof(path));
    char *slash = strrchr(path, '/');
    if (slash == NULL)
        return WX_ERR_CORRUPT;
    *slash = '\0';
    char next[FILES_PATH_BYTES_MAX + 1];
    int err = join_path(path, e->name, next);
    if (!err)
        err = run_text(tx, I_RENAME, e->item_id, e->name, NULL);
    return err ? err : run_text(tx, I_PATHS, e->item_id, next, r->path);
}

static int apply_move(struct es_proj_tx *tx, const struct files_event *e, const struct row *r)
{
    struct row parent;
    int err = row_get(tx, e->parent_id, &parent);
    if (!err && !parent.exists)
        err = WX_ERR_CORRUPT;
    const char *slash = strrchr(r->path, '/');
    char next[FILES_PATH_BYTES_MAX + 1];
    if (!err)
        err = slash != NULL ? join_path(parent.path, slash + 1, next) : WX_ERR_CORRUPT;
    if (!err)
        err = run_text(tx, I_TREE_DETACH, e->item_id, NULL, NULL);
    if (!err)
        err = run_text(tx, I_PARENT, e->item_id, e->parent_id, NULL);
    if (!err)
        err = run_text(tx, I_TREE_ATTACH, e->item_id, e->parent_id, NULL);
    if (!err) {
        struct rm_stmt *st = es_proj_stmt(tx, I_DEPTHS);
        if (st == NULL)
            return WX_ERR_IO;
        rm_bind_text(st, 1, e->item_id);
        rm_bind_i64(st, 2, parent.depth + 1);
        err = rm_run(st);
    }
    if (!err)
        err = run_text(tx, I_PATHS, e->item_id, next, r->path);
    static const int derived[] = {I_HIDDEN, I_PERMISSIONS_CLEAR, I_PERMISSIONS_FILL};
    return err ? err : run_ids(tx, derived, 3, e->item_id);
}

static int apply_file(struct es_proj_tx *tx, const struct files_event *e)
{
    struct rm_stmt *st = es_proj_stmt(tx, I_FILE);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->item_id);
    if (e->has_size)
        rm_bind_i64(st, 2, e->size);
    rm_bind_text(st, 3, e->mime_type);
    rm_bind_text(st, 4, e->content_hash);
    return rm_run(st);
}

static int apply_trash(struct es_proj_tx *tx, const struct files_event *e)
{
    bool trash = e->kind == FILES_TRASHED;
    struct rm_stmt *st = es_proj_stmt(tx, I_TRASH);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->item_id);
    rm_bind_i64(st, 2, trash);
    if (trash)
        rm_bind_i64(st, 3, e->occurred_at_ms);
    int err = rm_run(st);
    if (!err)
        err = run_text(tx, I_PERMISSIONS_TRASH, e->item_id, NULL, NULL);
    /* Restoring shows only what no other trashed folder above still hides. */
    return err ? err : run_text(tx, trash ? I_HIDE : I_HIDDEN, e->item_id, NULL, NULL);
}

static int apply_grant(struct es_proj_tx *tx, const struct files_event *e)
{
    bool add = e->kind == FILES_GRANT_ADDED;
    int err =
        run_text_int(tx, add ? I_GRANT_ADD : I_GRANT_DELETE, e->item_id, e->subject, e->permission);
    if (!err && add)
        return run_text_int(tx, I_PERMISSIONS_RAISE, e->item_id, e->subject, e->permission);
    if (!err)
        err = run_text(tx, I_SUBJECT_CLEAR, e->item_id, e->subject, NULL);
    return err ? err : run_text(tx, I_SUBJECT_FILL, e->item_id, e->subject, NULL);
}

static int touch(struct es_proj_tx *tx, const struct files_event *e, int64_t version)
{
    struct rm_stmt *st = es_proj_stmt(tx, I_TOUCH);
    if (st == NULL)
        return WX_ERR_IO;
    rm_bind_text(st, 1, e->item_id);
    rm_bind_text(st, 2, e->actor);
    rm_bind_i64(st, 3, e->occurred_at_ms);
    rm_bind_i64(st, 4, version);
    return rm_run(st);
}

static int apply_items(struct es_proj_tx *tx, const struct es_event *ev, const void *decoded)
{
    const struct files_event *e = &((const struct files_decoded *)decoded)->e;
    struct row *r = malloc(sizeof(*r));
    if (r == NULL)
        return WX_ERR_NOMEM;
    int err = row_get(tx, e->item_id, r);
    int64_t have = r->exists ? r->version : 0;
    if (err || have >= ev->version)
        goto out; /* applied already */
    if (have + 1 != ev->version) {
        err = WX_ERR_CORRUPT; /* a gap: the read model missed an event */
        goto out;
    }
    static const int purge[] = {I_PURGE_PERMISSIONS, I_PURGE_GRANTS, I_PURGE_ITEMS, I_PURGE_TREE};
    switch (e->kind) {
    case FILES_FOLDER_CREATED:
    case FILES_FILE_CREATED:
        err = apply_create(tx, e);
        goto out; /* its row is at version 1 already */
    case FILES_RENAMED:
        err = apply_rename(tx, e, r);
        break;
    case FILES_MOVED:
        err = apply_move(tx, e, r);
        break;
    case FILES_FILE_UPDATED:
        err = apply_file(tx, e);
        break;
    case FILES_TRASHED:
    case FILES_RESTORED:
        err = apply_trash(tx, e);
        break;
    case FILES_PURGED:
        err = run_ids(tx, purge, 4, e->item_id);
        goto out; /* no row left */
    case FILES_GRANT_ADDED:
    case FILES_GRANT_REVOKED:
        err = apply_grant(tx, e);
        break;
    }
    if (!err)
        err = touch(tx, e, ev->version);
out:
    free(r);
    return err;
}

const struct es_consumer files_consumer_items = {
    .name = "items",
    .categories = categories,
    .codec = &files_codec,
    .schema =
        "CREATE TABLE IF NOT EXISTS items{s}(id " RM_TEXT " PRIMARY KEY, kind TEXT NOT NULL,"
        " name " RM_TEXT " NOT NULL, parent_id " RM_TEXT ", owner_id " RM_TEXT " NOT NULL,"
        " size BIGINT, mime_type TEXT, content_hash TEXT, created_by TEXT NOT NULL,"
        " updated_by TEXT NOT NULL, created_at_ms BIGINT NOT NULL,"
        " updated_at_ms BIGINT NOT NULL, trashed BIGINT NOT NULL, trashed_at_ms BIGINT,"
        " hidden BIGINT NOT NULL, depth BIGINT NOT NULL, path " RM_TEXT " NOT NULL,"
        " version BIGINT NOT NULL)" RM_WITHOUT_ROWID ";"
        "CREATE INDEX IF NOT EXISTS items{s}_by_name ON items{s}(parent_id, trashed, name, id);"
        "CREATE INDEX IF NOT EXISTS items{s}_by_time"
        " ON items{s}(parent_id, trashed, updated_at_ms, id);"
        "CREATE INDEX IF NOT EXISTS items{s}_names ON items{s}(name, id);"
        "CREATE INDEX IF NOT EXISTS items{s}_trash ON items{s}(trashed, trashed_at_ms, id);"
        "CREATE TABLE IF NOT EXISTS item_tree{s}(ancestor " RM_TEXT " NOT NULL,"
        " descendant " RM_TEXT " NOT NULL, depth BIGINT NOT NULL,"
        " PRIMARY KEY(ancestor, descendant))" RM_WITHOUT_ROWID ";"
        "CREATE INDEX IF NOT EXISTS item_tree{s}_up ON item_tree{s}(descendant, depth);"
        "CREATE TABLE IF NOT EXISTS item_grants{s}(item_id " RM_TEXT " NOT NULL,"
        " subject " RM_TEXT " NOT NULL, level BIGINT NOT NULL,"
        " PRIMARY KEY(item_id, subject, level))" RM_WITHOUT_ROWID ";"
        "CREATE INDEX IF NOT EXISTS item_grants{s}_subject ON item_grants{s}(subject, item_id);"
        "CREATE TABLE IF NOT EXISTS item_permissions{s}(item_id " RM_TEXT " NOT NULL,"
        " subject " RM_TEXT " NOT NULL, level BIGINT NOT NULL, trashed_at_ms BIGINT,"
        " PRIMARY KEY(item_id, subject))" RM_WITHOUT_ROWID ";"
        /* Partial: only the rows of trashed items, on both backends. */
        "CREATE INDEX IF NOT EXISTS item_permissions{s}_trash ON item_permissions{s}(subject,"
        " trashed_at_ms, item_id, level) WHERE trashed_at_ms IS NOT NULL;",
    .drop = "DROP TABLE IF EXISTS items{s}; DROP TABLE IF EXISTS item_tree{s};"
            " DROP TABLE IF EXISTS item_grants{s}; DROP TABLE IF EXISTS item_permissions{s};",
    .sql = items_sql,
    .apply = apply_items,
};

const struct es_consumer *const files_consumers[] = {
    &files_consumer_items,
    NULL,
};
