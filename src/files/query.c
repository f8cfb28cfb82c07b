/*
 * Queries on the files read model (files/projections.h). Each runs in one
 * read transaction on the live table set and checks what the caller may
 * read on every item it answers: the caller's level is a column of every
 * row (its role's for an admin or a reader, else the highest of
 * item_permissions for its subject and for everyone), and an item at level
 * 0 is answered as absent.
 *
 * Lists under a folder need the folder readable; everything under a
 * readable folder is readable too (permissions only add up down the tree,
 * docs/architecture.md), so those lists filter nothing more by permission.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/id.h"
#include "base/map.h"
#include "base/unicode.h"
#include "files/projections.h"
#include "http/http.h"

/* The caller's level on item i: ?2 when its role gives one (admin 3,
 * reader 1), else its subject's (?1) or everyone's highest.
 *
 * Parameters: the caller is ?1 and ?2 in every statement with LEVEL, then
 * a list has its cursor in ?3 and ?4 and its limit in ?5, and what it needs
 * beyond that after them, so no statement leaves a number out (PostgreSQL
 * infers a parameter's type from its use, and one it does not see is an
 * error). */
#define LEVEL                                                                                      \
    "CASE WHEN ?2 > 0 THEN ?2 ELSE coalesce((SELECT max(p.level) FROM item_permissions{s} p"       \
    " WHERE p.item_id = i.id AND p.subject IN (?1, '*')), 0) END"

#define COLUMNS                                                                                    \
    "i.id, i.kind, i.name, i.parent_id, i.path, i.size, i.mime_type, i.content_hash,"              \
    " i.owner_id, i.created_by, i.updated_by, i.created_at_ms, i.updated_at_ms, i.hidden,"         \
    " i.version, i.trashed_at_ms, " LEVEL

enum {
    C_ID,
    C_KIND,
    C_NAME,
    C_PARENT,
    C_PATH,
    C_SIZE,
    C_MIME,
    C_HASH,
    C_OWNER,
    C_CREATED_BY,
    C_UPDATED_BY,
    C_CREATED,
    C_UPDATED,
    C_HIDDEN,
    C_VERSION,
    C_TRASHED_AT,
    C_LEVEL,
};

static void bind_caller(struct rm_stmt *st, const struct files_caller *who)
{
    int role = who->role == FILES_ROLE_ADMIN    ? FILES_LEVEL_MANAGE
               : who->role == FILES_ROLE_READER ? FILES_LEVEL_READ
                                                : 0;
    rm_bind_text(st, 1, who->subject);
    rm_bind_i64(st, 2, role);
}

/* Text column col into out (max + 1 bytes); NULL reads as "". */
static bool column_into(struct rm_stmt *st, int col, char *out, size_t max)
{
    const char *s = rm_column_text(st, col);
    size_t len = s ? strlen(s) : 0;
    if (len > max)
        return false;
    memcpy(out, s ? s : "", len);
    out[len] = '\0';
    return true;
}

/* The row at the statement's cursor: its item, level and whether hidden. */
static int row_item(struct rm_stmt *st, struct files_item *s, int64_t *version,
                    enum files_level *level, bool *hidden)
{
    files_item_init(s);
    s->exists = true;
    const char *kind = rm_column_text(st, C_KIND);
    s->kind = kind != NULL && strcmp(kind, "file") == 0 ? FILES_FILE : FILES_FOLDER;
    if (!column_into(st, C_NAME, s->name, FILES_NAME_BYTES_MAX) ||
        !column_into(st, C_PARENT, s->parent_id, WX_ID_BYTES_MAX) ||
        !column_into(st, C_OWNER, s->owner_id, WX_ID_BYTES_MAX) ||
        !column_into(st, C_CREATED_BY, s->created_by, WX_ID_BYTES_MAX) ||
        !column_into(st, C_UPDATED_BY, s->updated_by, WX_ID_BYTES_MAX) ||
        !column_into(st, C_MIME, s->mime_type, FILES_MIME_BYTES_MAX) ||
        !column_into(st, C_HASH, s->content_hash, FILES_HASH_BYTES_MAX))
        return WX_ERR_CORRUPT;
    s->size = rm_column_i64(st, C_SIZE);
    s->created_at_ms = rm_column_i64(st, C_CREATED);
    s->updated_at_ms = rm_column_i64(st, C_UPDATED);
    s->trashed_at_ms = rm_column_i64(st, C_TRASHED_AT);
    *version = rm_column_i64(st, C_VERSION);
    *hidden = rm_column_i64(st, C_HIDDEN) != 0;
    int64_t l = rm_column_i64(st, C_LEVEL);
    *level = l >= FILES_LEVEL_MANAGE ? FILES_LEVEL_MANAGE : l > 0 ? (enum files_level)l : 0;
    return 0;
}

/* The Item JSON of the row, without its closing brace when open is set
 * (the tree adds "children"). */
static int row_json(struct rm_stmt *st, struct wx_buf *out, bool open)
{
    struct files_item *s = malloc(sizeof(*s));
    if (s == NULL)
        return WX_ERR_NOMEM;
    int64_t version;
    struct files_view v = {.path = rm_column_text(st, C_PATH)};
    int err = row_item(st, s, &version, &v.level, &v.trashed);
    const char *id = rm_column_text(st, C_ID);
    if (!err && (id == NULL || v.path == NULL))
        err = WX_ERR_CORRUPT;
    if (!err) {
        files_item_json(out, id, s, version, &v);
        if (open && out->len > 0 && wx_buf_ok(out))
            out->len--; /* the closing brace */
    }
    free(s);
    return err;
}

/* One item as the caller sees it: kind, hidden and level, or
 * WX_ERR_NOT_FOUND when absent or unreadable. */
struct seen_item {
    bool folder;
    bool hidden;
    enum files_level level;
};

static int see(struct es_read *r, const struct files_caller *who, const char *id,
               struct seen_item *out)
{
    struct rm_stmt *st;
    int err = es_projector_prepare_live(
        r, "items", "SELECT i.kind, i.hidden, " LEVEL " FROM items{s} i WHERE i.id = ?3", &st,
        NULL);
    if (err)
        return err;
    rm_bind_text(st, 3, id);
    bind_caller(st, who);
    bool found = false;
    err = rm_step(st, &found);
    if (!err && found) {
        const char *kind = rm_column_text(st, 0);
        out->folder = kind != NULL && strcmp(kind, "folder") == 0;
        out->hidden = rm_column_i64(st, 1) != 0;
        out->level = (enum files_level)rm_column_i64(st, 2);
        err = out->level > FILES_LEVEL_NONE ? 0 : WX_ERR_NOT_FOUND;
    } else if (!err) {
        err = WX_ERR_NOT_FOUND;
    }
    rm_finalize(st);
    return err;
}

int files_query_get(struct es_projector *p, const struct files_caller *who, const char *id,
                    struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st = NULL;
    err = es_projector_prepare_live(
        r, "items", "SELECT " COLUMNS " FROM items{s} i WHERE i.id = ?3", &st, NULL);
    if (!err) {
        rm_bind_text(st, 3, id);
        bind_caller(st, who);
        bool found = false;
        err = rm_step(st, &found);
        if (!err && found && rm_column_i64(st, C_LEVEL) > 0)
            err = row_json(st, out, false);
        else if (!err)
            err = WX_ERR_NOT_FOUND;
    }
    rm_finalize(st);
    es_projector_read_end(p, r);
    return err;
}

int files_query_readable(struct es_projector *p, const struct files_caller *who, const char *id,
                         bool *readable_out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct seen_item it;
    err = see(r, who, id, &it);
    es_projector_read_end(p, r);
    *readable_out = err == 0;
    return err == WX_ERR_NOT_FOUND ? 0 : err;
}

/* ---- cursors ---- */

static const char hex_digits[] = "0123456789abcdef";

/* The hex of a name's bytes. */
static void cursor_hex(struct wx_buf *b, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        wx_buf_addc(b, hex_digits[*p >> 4]);
        wx_buf_addc(b, hex_digits[*p & 15]);
    }
}

/* The name of a cursor, from its hex: any bytes but NUL, at most a name's
 * length. Not checked as a name: a cursor only says where a page starts,
 * and the document (docs/openapi.yaml) lets a client send any such text
 * (list() reads one that is not UTF-8 as where it would sort). */
static const char *cursor_unhex(const char *hex, size_t len, struct wx_arena *arena)
{
    if (len == 0 || len % 2 != 0 || len / 2 > FILES_NAME_BYTES_MAX)
        return NULL;
    char *name = wx_arena_alloc(arena, len / 2 + 1);
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = wx_hex_digit((unsigned char)hex[2 * i]);
        int lo = wx_hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            return NULL;
        name[i] = (char)(hi << 4 | lo);
    }
    name[len / 2] = '\0';
    return name;
}

static bool cursor_ms(const char *text, size_t len, int64_t *out)
{
    char ms[24];
    if (len == 0 || len >= sizeof(ms))
        return false;
    memcpy(ms, text, len);
    ms[len] = '\0';
    return http_parse_i64(ms, INT64_MIN, INT64_MAX, out);
}

bool files_cursor_parse(const char *text, enum files_cursor kind, struct files_page *page,
                        struct wx_arena *arena)
{
    const char *tilde = strrchr(text, '~');
    if (tilde == NULL || !wx_id_ok(tilde + 1) || text[0] != (char)kind)
        return false;
    const char *key = text + 1;
    bool ok = false;
    switch (kind) {
    case FILES_CURSOR_NAME:
        ok = (page->after_name = cursor_unhex(key, (size_t)(tilde - key), arena)) != NULL;
        break;
    case FILES_CURSOR_TIME:
        ok = cursor_ms(key, (size_t)(tilde - key), &page->after_ms);
        break;
    case FILES_CURSOR_BOTH: {
        const char *mid = memchr(key, '~', (size_t)(tilde - key));
        ok = mid != NULL && cursor_ms(key, (size_t)(mid - key), &page->after_ms) &&
             (page->after_name = cursor_unhex(mid + 1, (size_t)(tilde - mid - 1), arena)) != NULL;
        break;
    }
    }
    page->after_id = ok ? wx_arena_strdup(arena, tilde + 1) : NULL;
    page->after = page->after_id != NULL;
    return page->after;
}

/* ---- pages ---- */

/* How a page ends: the column whose value makes the cursor, and the prefix
 * its names must start with (search). A list whose best plan depends on
 * the data has `pick`, which chooses its statement in the list's read
 * transaction (replacing the one given). */
struct page_shape {
    bool by_name;
    enum files_cursor cursor;
    int time_column; /* C_UPDATED or C_TRASHED_AT */
    const char *prefix;
    const char *prefix_end; /* ?8: the first name past those with the prefix */
    int (*pick)(struct es_read *r, const char *folder, const struct page_shape *shape,
                const char **sql_out);
};

static void bind_page(struct rm_stmt *st, const struct files_page *page, bool by_name)
{
    if (by_name) {
        rm_bind_text(st, 3, page->after ? page->after_name : "");
        rm_bind_text(st, 4, page->after ? page->after_id : "");
    } else {
        /* No cursor: (time, id) < (the largest time, NULL) holds for every
         * row, since nothing happens at INT64_MAX ms. */
        rm_bind_i64(st, 3, page->after ? page->after_ms : INT64_MAX);
        if (page->after)
            rm_bind_text(st, 4, page->after_id);
    }
    rm_bind_i64(st, 5, (int64_t)page->limit + 1);
}

static int page_rows(struct rm_stmt *st, const struct files_page *page,
                     const struct page_shape *shape, struct wx_buf *out)
{
    size_t n = 0, prefix_len = shape->prefix ? strlen(shape->prefix) : 0;
    bool more = false;
    struct wx_buf cursor;
    wx_buf_init(&cursor);
    bool row = false;
    int err = 0;
    wx_buf_adds(out, "{\"data\":[");
    while (!err && (err = rm_step(st, &row)) == 0 && row) {
        const char *name = rm_column_text(st, C_NAME);
        if (prefix_len > 0 && (name == NULL || strncmp(name, shape->prefix, prefix_len) != 0))
            break; /* by name: no later row starts with the prefix either */
        if (n == page->limit || (n > 0 && out->len >= WX_PAGE_BYTES_MAX)) {
            more = true;
            break;
        }
        const char *id = rm_column_text(st, C_ID);
        wx_buf_reset(&cursor);
        wx_buf_addc(&cursor, (char)shape->cursor);
        if (shape->cursor != FILES_CURSOR_NAME)
            wx_buf_printf(&cursor, "%lld~", (long long)rm_column_i64(st, shape->time_column));
        if (shape->cursor != FILES_CURSOR_TIME) {
            cursor_hex(&cursor, name ? name : "");
            wx_buf_addc(&cursor, '~');
        }
        wx_buf_adds(&cursor, id ? id : "");
        if (n++ > 0)
            wx_buf_addc(out, ',');
        err = row_json(st, out, false);
    }
    wx_buf_adds(out, "],\"nextCursor\":");
    if (more) {
        wx_buf_addc(out, '"');
        wx_buf_add(out, cursor.data, cursor.len);
        wx_buf_adds(out, "\"}");
    } else {
        wx_buf_adds(out, "null}");
    }
    if (!err && (!wx_buf_ok(&cursor) || !wx_buf_ok(out)))
        err = WX_ERR_NOMEM;
    wx_buf_free(&cursor);
    return err;
}

/* The prefix's end into out: the first name past every name that starts
 * with the prefix, which is the prefix with its last code point one higher
 * (UTF-8's byte order is its code points' order, and no code point's bytes
 * begin another's), skipping the surrogates; a last U+10FFFF is dropped and
 * the one before raised. False when there is no end (an empty prefix, or
 * one of U+10FFFF alone): every name from the prefix on has it. The end is
 * UTF-8 too, since PostgreSQL takes no other text; it may be 3 bytes
 * longer than the prefix. `prefix` is UTF-8 (the route checks it). */
static bool prefix_end(const char *prefix, char out[FILES_NAME_BYTES_MAX + 4 + 1])
{
    size_t len = strlen(prefix);
    assert(len <= FILES_NAME_BYTES_MAX);
    while (len > 0) {
        size_t at = len - 1;
        while (at > 0 && ((unsigned char)prefix[at] & 0xc0) == 0x80)
            at--;
        const unsigned char *c = (const unsigned char *)prefix + at;
        size_t n = len - at;
        uint32_t cp =
            n == 1   ? c[0]
            : n == 2 ? (uint32_t)(c[0] & 0x1f) << 6 | (c[1] & 0x3f)
            : n == 3 ? (uint32_t)(c[0] & 0x0f) << 12 | (uint32_t)(c[1] & 0x3f) << 6 | (c[2] & 0x3f)
                     : (uint32_t)(c[0] & 0x07) << 18 | (uint32_t)(c[1] & 0x3f) << 12 |
                           (uint32_t)(c[2] & 0x3f) << 6 | (c[3] & 0x3f);
        len = at;
        if (cp >= 0x10ffff)
            continue;
        cp = cp == 0xd7ff ? 0xe000 : cp + 1;
        memcpy(out, prefix, at);
        size_t k = wx_utf8_encode(cp, (unsigned char *)out + at);
        out[at + k] = '\0';
        return true;
    }
    return false;
}

/* A cursor's name that is not UTF-8 (any bytes are taken, list()) as the
 * first UTF-8 name past it, into out: no name equals it, so a page after
 * it is a page from that name on, with any id. The longest UTF-8 start of
 * the name, then the least character whose bytes sort past the rest (UTF-8
 * sorts as its code points, so one binary search finds it); when none
 * does, the start's end as a prefix's. False when no name is past it.
 * PostgreSQL takes no text but UTF-8; SQLite gets the same for the same
 * pages. */
static bool name_after(const char *name, char out[FILES_NAME_BYTES_MAX + 4 + 1])
{
    size_t len = strlen(name), v = 0;
    assert(len <= FILES_NAME_BYTES_MAX);
    for (;;) {
        size_t k = 1;
        while (k <= 4 && v + k <= len && !wx_utf8_valid(name + v, k))
            k++;
        if (k > 4 || v + k > len)
            break;
        v += k;
    }
    const unsigned char *rest = (const unsigned char *)name + v;
    size_t rest_len = len - v;
    /* Code points without the surrogates, by index. */
    uint32_t lo = 0, hi = 0x10ffff - 0x800 + 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2, cp = mid < 0xd800 ? mid : mid + 0x800;
        unsigned char c[4];
        size_t n = wx_utf8_encode(cp, c);
        int cmp = memcmp(c, rest, n < rest_len ? n : rest_len);
        if (cmp > 0 || (cmp == 0 && n > rest_len))
            hi = mid;
        else
            lo = mid + 1;
    }
    char start[FILES_NAME_BYTES_MAX + 1];
    memcpy(start, name, v);
    start[v] = '\0';
    if (lo > 0x10ffff - 0x800)
        return prefix_end(start, out);
    memcpy(out, start, v);
    size_t n = wx_utf8_encode(lo < 0xd800 ? lo : lo + 0x800, (unsigned char *)out + v);
    out[v + n] = '\0';
    return true;
}

static void empty_page(struct wx_buf *out)
{
    wx_buf_adds(out, "{\"data\":[],\"nextCursor\":null}");
}

/* Runs a list: `folder` (when not NULL) must be a readable folder, and an
 * empty page answers for a hidden one; ?6 is the folder, ?7 the extra. */
static int list(struct es_projector *p, const struct files_caller *who, const char *folder,
                const char *sql, const char *extra, const struct files_page *page,
                const struct page_shape *shape, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st = NULL;
    struct seen_item it = {.folder = true};
    if (folder != NULL)
        err = see(r, who, folder, &it);
    if (!err && !it.folder)
        err = WX_ERR_NOT_FOUND;
    if (!err && it.hidden) {
        empty_page(out);
        goto out;
    }
    struct files_page at = *page;
    char after_name[FILES_NAME_BYTES_MAX + 4 + 1];
    if (!err && shape->by_name && page->after &&
        !wx_utf8_valid(page->after_name, strlen(page->after_name))) {
        if (!name_after(page->after_name, after_name)) {
            empty_page(out);
            goto out;
        }
        at.after_name = after_name;
        at.after_id = ""; /* below every id */
    }
    if (!err && shape->pick != NULL)
        err = shape->pick(r, folder, shape, &sql);
    if (!err)
        err = es_projector_prepare_live(r, "items", sql, &st, NULL);
    if (!err) {
        if (folder != NULL)
            rm_bind_text(st, 6, folder);
        if (extra != NULL)
            rm_bind_text(st, 7, extra);
        if (shape->prefix_end != NULL)
            rm_bind_text(st, 8, shape->prefix_end);
        bind_caller(st, who);
        bind_page(st, &at, shape->by_name);
        err = page_rows(st, &at, shape, out);
    }
out:
    rm_finalize(st);
    es_projector_read_end(p, r);
    return err;
}

int files_query_children(struct es_projector *p, const struct files_caller *who, const char *id,
                         enum files_sort sort, const struct files_page *page, struct wx_buf *out)
{
    static const char *const sql[] = {
        [FILES_SORT_NAME] = "SELECT " COLUMNS " FROM items{s} i WHERE i.parent_id = ?6 AND"
                            " i.trashed = 0 AND (i.name, i.id) > (?3, ?4)"
                            " ORDER BY i.name, i.id LIMIT ?5",
        [FILES_SORT_UPDATED] = "SELECT " COLUMNS " FROM items{s} i WHERE i.parent_id = ?6 AND"
                               " i.trashed = 0 AND (i.updated_at_ms, i.id) < (?3, ?4)"
                               " ORDER BY i.updated_at_ms DESC, i.id DESC LIMIT ?5",
    };
    /* One cursor for both orders: a page of either continues after it. */
    struct page_shape shape = {
        .by_name = sort == FILES_SORT_NAME, .cursor = FILES_CURSOR_BOTH, .time_column = C_UPDATED};
    return list(p, who, id, sql[sort], NULL, page, &shape, out);
}

/* Search reads one of two ways. Along the names' index from the prefix to
 * its end, each name's place checked in the closure table: quick when the
 * subtree holds many of the names with the prefix, but it reads every name
 * with the prefix that lies elsewhere (a folder of 100 files in a tree of
 * 100k items, prefix "f" of 80k names outside it: 0.2-0.8 s a page; and
 * without the prefix's end it read on to the last name). Or the subtree's
 * closure rows, their names filtered and sorted: at most
 * FILES_SEARCH_SUBTREE_SCAN_MAX rows a page. So the subtree is counted
 * first, up to that bound, and a smaller one is read the second way. A
 * larger subtree with few of the prefix's names among many elsewhere is
 * still slow; an index of closure rows by (ancestor, name) would serve
 * every case, at the cost of one more B-tree on every closure row. ?8 is
 * the prefix's end (NULL without a prefix): in the first way it ends the
 * index range, as the prefix starts it. */
static const char search_by_names[] =
    "SELECT " COLUMNS " FROM items{s} i WHERE i.name >= ?7 AND (i.name, i.id) > (?3, ?4)"
    " AND i.hidden = 0 AND EXISTS (SELECT 1 FROM item_tree{s} t WHERE t.ancestor = ?6 AND"
    " t.descendant = i.id AND t.depth > 0) ORDER BY i.name, i.id LIMIT ?5";
static const char search_by_names_to_end[] =
    "SELECT " COLUMNS " FROM items{s} i WHERE i.name >= ?7 AND i.name < ?8 AND"
    " (i.name, i.id) > (?3, ?4) AND i.hidden = 0 AND EXISTS (SELECT 1 FROM item_tree{s} t"
    " WHERE t.ancestor = ?6 AND t.descendant = i.id AND t.depth > 0)"
    " ORDER BY i.name, i.id LIMIT ?5";
/* The page's ids first (CROSS JOIN keeps the closure rows outermost), so
 * the caller's level is looked up for the page's rows only. */
static const char search_in_subtree[] =
    "SELECT " COLUMNS " FROM (SELECT s.id AS id FROM item_tree{s} t CROSS JOIN items{s} s"
    " WHERE t.ancestor = ?6 AND t.depth > 0 AND s.id = t.descendant AND s.hidden = 0 AND"
    " s.name >= ?7 AND (CAST(?8 AS TEXT) IS NULL OR s.name < ?8) AND (s.name, s.id) > (?3, ?4)"
    " ORDER BY s.name, s.id LIMIT ?5) m CROSS JOIN items{s} i WHERE i.id = m.id"
    " ORDER BY i.name, i.id";

static int search_pick(struct es_read *r, const char *folder, const struct page_shape *shape,
                       const char **sql_out)
{
    struct rm_stmt *st;
    int err = es_projector_prepare_live(
        r, "items",
        "SELECT count(*) FROM (SELECT 1 FROM item_tree{s} WHERE ancestor = ?1 LIMIT ?2) x", &st,
        NULL);
    if (err)
        return err;
    rm_bind_text(st, 1, folder);
    rm_bind_i64(st, 2, FILES_SEARCH_SUBTREE_SCAN_MAX + 1); /* the folder's own row too */
    bool found = false;
    err = rm_step(st, &found);
    if (!err && !found)
        err = WX_ERR_IO; /* a count has a row */
    if (!err) {
        bool small = rm_column_i64(st, 0) <= FILES_SEARCH_SUBTREE_SCAN_MAX;
        *sql_out = small                       ? search_in_subtree
                   : shape->prefix_end != NULL ? search_by_names_to_end
                                               : search_by_names;
    }
    rm_finalize(st);
    return err;
}

int files_query_search(struct es_projector *p, const struct files_caller *who, const char *under,
                       const char *prefix, const struct files_page *page, struct wx_buf *out)
{
    char end[FILES_NAME_BYTES_MAX + 4 + 1];
    bool ended = prefix_end(prefix, end);
    struct page_shape shape = {.by_name = true,
                               .cursor = FILES_CURSOR_NAME,
                               .prefix = prefix,
                               .prefix_end = ended ? end : NULL,
                               .pick = search_pick};
    return list(p, who, under, search_by_names, prefix, page, &shape, out);
}

int files_query_shared(struct es_projector *p, const struct files_caller *who,
                       const struct files_page *page, struct wx_buf *out)
{
    if (who->subject == NULL) { /* no caller, no grants to one */
        empty_page(out);
        return 0;
    }
    static const char sql[] =
        "SELECT " COLUMNS " FROM items{s} i WHERE i.id IN (SELECT g.item_id FROM item_grants{s} g"
        " WHERE g.subject = ?1) AND i.owner_id <> ?1 AND i.hidden = 0 AND"
        " (i.name, i.id) > (?3, ?4) ORDER BY i.name, i.id LIMIT ?5";
    struct page_shape shape = {.by_name = true, .cursor = FILES_CURSOR_NAME};
    return list(p, who, NULL, sql, NULL, page, &shape, out);
}

int files_query_trash(struct es_projector *p, const struct files_caller *who,
                      const struct files_page *page, struct wx_buf *out)
{
    /* An admin or a reader sees every item in the trash: the trash's own
     * index, newest first. */
    static const char everyone[] = "SELECT " COLUMNS " FROM items{s} i WHERE i.trashed = 1 AND"
                                   " (i.trashed_at_ms, i.id) < (?3, ?4)"
                                   " ORDER BY i.trashed_at_ms DESC, i.id DESC LIMIT ?5";
    /* A user, what it may restore (write): the newest of its own
     * permission rows on trashed items and of everyone's (their partial
     * index, newest first), each cut at the page, so a page costs a page,
     * not everything in the trash (4k items trashed by others made an
     * empty /trash take 37 ms) nor everything the caller may restore. */
    static const char restorable[] =
        "SELECT " COLUMNS " FROM (SELECT id FROM (SELECT p.item_id AS id FROM item_permissions{s} p"
        " WHERE p.subject = ?1 AND p.trashed_at_ms IS NOT NULL AND (p.trashed_at_ms, p.item_id)"
        " < (?3, ?4) AND p.level >= 2 ORDER BY p.trashed_at_ms DESC, p.item_id DESC LIMIT ?5) a"
        " UNION SELECT id FROM (SELECT p.item_id AS id FROM item_permissions{s} p"
        " WHERE p.subject = '*' AND p.trashed_at_ms IS NOT NULL AND (p.trashed_at_ms, p.item_id)"
        " < (?3, ?4) AND p.level >= 2 ORDER BY p.trashed_at_ms DESC, p.item_id DESC LIMIT ?5) b)"
        " m CROSS JOIN items{s} i WHERE i.id = m.id AND i.trashed = 1"
        " ORDER BY i.trashed_at_ms DESC, i.id DESC LIMIT ?5";
    struct page_shape shape = {
        .by_name = false, .cursor = FILES_CURSOR_TIME, .time_column = C_TRASHED_AT};
    bool all = who->role == FILES_ROLE_ADMIN || who->role == FILES_ROLE_READER;
    if (!all && who->subject == NULL) { /* no caller, nothing of its own */
        empty_page(out);
        return 0;
    }
    return list(p, who, NULL, all ? everyone : restorable, NULL, page, &shape, out);
}

/* ---- the tree ---- */

struct tree_node {
    size_t json_at, json_len; /* in the nodes' buffer, without the closing brace */
    bool folder;
    int depth;
    size_t first_child, next; /* SIZE_MAX: none */
    size_t last_child;
};

static void tree_render(const struct tree_node *nodes, const struct wx_buf *json, size_t i,
                        int depth_max, struct wx_buf *out)
{
    const struct tree_node *n = &nodes[i];
    wx_buf_add(out, json->data + n->json_at, n->json_len);
    if (n->folder && n->depth < depth_max) {
        wx_buf_adds(out, ",\"children\":[");
        for (size_t c = n->first_child; c != SIZE_MAX; c = nodes[c].next) {
            if (c != n->first_child)
                wx_buf_addc(out, ',');
            tree_render(nodes, json, c, depth_max, out);
        }
        wx_buf_addc(out, ']');
    }
    wx_buf_addc(out, '}');
}

/* The root and every live item under it to depth_max, nested. */
static int tree_rows(struct rm_stmt *st, int depth_max, struct wx_buf *out)
{
    struct tree_node *nodes = calloc(FILES_TREE_NODES_MAX + 1, sizeof(*nodes));
    struct wx_map index; /* id -> node + 1 */
    struct wx_buf json;
    wx_map_init(&index);
    wx_buf_init(&json);
    size_t n = 0;
    bool row = false;
    int err = nodes == NULL ? WX_ERR_NOMEM : 0;
    while (!err && (err = rm_step(st, &row)) == 0 && row) {
        if (n == FILES_TREE_NODES_MAX + 1) {
            err = WX_ERR_TOO_LARGE;
            break;
        }
        struct tree_node *t = &nodes[n];
        const char *id = rm_column_text(st, C_ID);
        const char *parent = rm_column_text(st, C_PARENT);
        const char *kind = rm_column_text(st, C_KIND);
        t->folder = kind != NULL && strcmp(kind, "folder") == 0;
        t->depth = (int)rm_column_i64(st, C_LEVEL + 1);
        t->first_child = t->next = t->last_child = SIZE_MAX;
        t->json_at = json.len;
        err = row_json(st, &json, true);
        t->json_len = json.len - t->json_at;
        if (!err && (id == NULL || wx_map_put(&index, id, (void *)(uintptr_t)(n + 1)) != 0))
            err = WX_ERR_NOMEM;
        /* Rows come by depth: a node's parent is in the index already. */
        void *pv = n > 0 && parent != NULL ? wx_map_get(&index, parent) : NULL;
        if (!err && n > 0 && pv == NULL)
            err = WX_ERR_CORRUPT;
        if (!err && n > 0) {
            struct tree_node *pn = &nodes[(uintptr_t)pv - 1];
            if (pn->last_child == SIZE_MAX)
                pn->first_child = n;
            else
                nodes[pn->last_child].next = n;
            pn->last_child = n;
        }
        n++;
    }
    if (!err && n == 0)
        err = WX_ERR_NOT_FOUND;
    if (!err && !wx_buf_ok(&json))
        err = WX_ERR_NOMEM;
    if (!err)
        tree_render(nodes, &json, 0, depth_max, out);
    free(nodes);
    wx_map_free(&index);
    wx_buf_free(&json);
    return err;
}

int files_query_tree(struct es_projector *p, const struct files_caller *who, const char *id,
                     int depth, struct wx_buf *out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st = NULL;
    struct seen_item it;
    err = see(r, who, id, &it);
    if (!err && !it.folder)
        err = WX_ERR_NOT_FOUND;
    /* The root at depth 0 even when trashed; below it only live items,
     * found from the parents (the children's index), so an answer costs
     * its own rows: the closure table holds every descendant at every
     * depth, and a depth=1 tree of a folder with 100k items below read all
     * their closure rows (23 ms). Trashed children are not descended
     * into, which leaves exactly the items not hidden. The recursion ends
     * one row past the bound: SQLite ends it at a LIMIT in the recursive
     * CTE, which PostgreSQL does not implement; there the CTE's rows are
     * made as they are read, so a LIMIT on reading them ends it. The root's
     * id is cast to the ids' collation (PostgreSQL wants one for both
     * terms). Rows by depth, then name: each parent before its children,
     * siblings in order. */
    if (!err)
        err = es_projector_prepare_live(
            r, "items",
            "WITH RECURSIVE sub(id, depth) AS (SELECT CAST(?3 AS TEXT){pg: COLLATE \"C\"}, 0"
            " UNION ALL SELECT k.id, sub.depth + 1 FROM sub JOIN items{s} k"
            " ON k.parent_id = sub.id WHERE sub.depth < ?4 AND k.trashed = 0{sqlite: LIMIT ?5})"
            " SELECT " COLUMNS ", sub.depth FROM {sqlite:sub}{pg:(SELECT id, depth FROM sub"
            " LIMIT ?5) sub} CROSS JOIN items{s} i WHERE i.id = sub.id"
            " ORDER BY sub.depth, i.name, i.id",
            &st, NULL);
    if (!err) {
        rm_bind_text(st, 3, id);
        rm_bind_i64(st, 4, it.hidden ? 0 : depth);
        rm_bind_i64(st, 5, FILES_TREE_NODES_MAX + 2);
        bind_caller(st, who);
        err = tree_rows(st, depth, out);
    }
    rm_finalize(st);
    es_projector_read_end(p, r);
    return err;
}

/* ---- the sweeper's ---- */

int files_query_expired(struct es_projector *p, int64_t before_ms, size_t max,
                        char (*ids)[WX_ID_BYTES_MAX + 1], size_t *len_out)
{
    struct es_read *r;
    int err = es_projector_read_begin(p, &r);
    if (err)
        return err;
    struct rm_stmt *st = NULL;
    err = es_projector_prepare_live(r, "items",
                                    "SELECT id FROM items{s} WHERE trashed = 1 AND"
                                    " trashed_at_ms < ?1 ORDER BY trashed_at_ms, id LIMIT ?2",
                                    &st, NULL);
    size_t n = 0;
    if (!err) {
        rm_bind_i64(st, 1, before_ms);
        rm_bind_i64(st, 2, (int64_t)max);
        bool row = false;
        while (n < max && (err = rm_step(st, &row)) == 0 && row)
            if (column_into(st, 0, ids[n], WX_ID_BYTES_MAX))
                n++;
    }
    rm_finalize(st);
    es_projector_read_end(p, r);
    *len_out = n;
    return err;
}
