/*
 * The files read model as one projector consumer, "items", with four
 * tables that change together (a move rewrites paths, the closure rows and
 * the effective permissions of a whole subtree in the one transaction of
 * its event, so a query never sees the tree and the permissions disagree):
 *
 * - items: one row per live or trashed item, with its path, its depth,
 *   `trashed` (itself) and `hidden` (itself or a folder above it);
 * - item_tree: the closure table, a row (ancestor, descendant, depth) for
 *   every item and each of its ancestors and itself (depth 0);
 * - item_grants: the grants made on each item itself;
 * - item_permissions: the effective level of every subject that has one on
 *   an item (an owner or grantee of it or of a folder above it, or
 *   FILES_EVERYONE), denormalised for the permission check of every query.
 *
 * Then the queries on them (query.c) and recovery (recovery.c): one item's
 * rebuild, drift (the read model against a fold of the log) and verify
 * (the closure table against the parents, the permissions against a
 * recomputation).
 */
#ifndef WALLEX_FILES_PROJECTIONS_H
#define WALLEX_FILES_PROJECTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "es/domain.h"
#include "files/files.h"
#include "proj/projector.h"

extern const struct es_consumer files_consumer_items;
/* NULL-terminated, for the domain. */
extern const struct es_consumer *const files_consumers[];

/* ---- queries (query.c); each checks what the caller may read ---- */

/* GET /items/{id}: WX_ERR_NOT_FOUND when absent or not readable. */
int files_query_get(struct es_projector *p, const struct files_caller *who, const char *id,
                    struct wx_buf *out);
/* Whether the caller may read the item (for its events page). */
int files_query_readable(struct es_projector *p, const struct files_caller *who, const char *id,
                         bool *readable_out);

enum files_sort {
    FILES_SORT_NAME,
    FILES_SORT_UPDATED, /* newest first */
};

/* Paging of lists: the cursor of the last row seen. */
struct files_page {
    size_t limit;
    bool after;
    const char *after_name; /* name-sorted lists: the name (its bytes) */
    int64_t after_ms;       /* time-sorted lists */
    const char *after_id;
};
/* Cursors, by what they carry of the last item of a page: its name
 * ("n<hex of the name's bytes>~<id>": search, shared-with-me), its time
 * ("t<ms>~<id>": the trash), or both ("c<updatedAt ms>~<hex>~<id>": a
 * folder's children, so a cursor fits either order). */
enum files_cursor {
    FILES_CURSOR_NAME = 'n',
    FILES_CURSOR_TIME = 't',
    FILES_CURSOR_BOTH = 'c',
};
/* False when the text is no cursor of that kind. */
bool files_cursor_parse(const char *text, enum files_cursor kind, struct files_page *page,
                        struct wx_arena *arena);

/* GET /folders/{id}/children: WX_ERR_NOT_FOUND when the folder is absent,
 * a file, or not readable. */
int files_query_children(struct es_projector *p, const struct files_caller *who, const char *id,
                         enum files_sort sort, const struct files_page *page, struct wx_buf *out);
/* GET /folders/{id}/tree?depth=N: WX_ERR_TOO_LARGE past FILES_TREE_NODES_MAX. */
int files_query_tree(struct es_projector *p, const struct files_caller *who, const char *id,
                     int depth, struct wx_buf *out);
/* GET /items?under=&prefix=: names that start with prefix (bytes). */
int files_query_search(struct es_projector *p, const struct files_caller *who, const char *under,
                       const char *prefix, const struct files_page *page, struct wx_buf *out);
/* GET /shared-with-me: live items granted to the caller's subject itself,
 * by name. */
int files_query_shared(struct es_projector *p, const struct files_caller *who,
                       const struct files_page *page, struct wx_buf *out);
/* GET /trash: items trashed themselves that the caller may restore (write),
 * newest first; every one for an admin or a reader (who reads all). */
int files_query_trash(struct es_projector *p, const struct files_caller *who,
                      const struct files_page *page, struct wx_buf *out);

/* The sweeper: ids of up to max items trashed themselves before before_ms,
 * oldest first, into ids (each WX_ID_BYTES_MAX + 1). */
int files_query_expired(struct es_projector *p, int64_t before_ms, size_t max,
                        char (*ids)[WX_ID_BYTES_MAX + 1], size_t *len_out);

/* ---- recovery (recovery.c) ---- */

/* Rebuilds one item's rows from its stream (and what depends on them in
 * its subtree); WX_ERR_NOT_FOUND when it has no events. */
int files_rebuild_one(struct es_projector *p, const char *id);
/* es_domain.drift and es_domain.verify. */
int files_drift(struct es_projector *p, struct es_drift_report *report);
int files_verify(struct es_projector *p, struct wx_buf *out, struct wx_buf *violations,
                 size_t *violations_len);

#endif
