/*
 * Recovery for the files read model: rebuild one item from its stream,
 * find drift between the read model and a fold of the log, and verify the
 * read model's own invariants.
 *
 * Drift folds the log into a tree index of its own (files_tree_fold_log,
 * the code the writer decides with) up to the "items" checkpoint, inside
 * one read transaction, and compares every item: its row (name, parent,
 * owner, trash, hidden, depth, path, version), its closure rows (exactly
 * its ancestors at their distances), its grants, and its effective
 * permissions (each subject's level recomputed from the tree). Verify
 * runs drift and then checks the read model against itself: the closure
 * table equals the one folded from the parents (a recursive query), the
 * permissions equal a recomputation from grants and owners, names are
 * unique among live siblings, paths and hidden flags follow the parents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"
#include "files/projections.h"
#include "files/service.h"
#include "store/store.h"

#define NONE FILES_NODE_NONE
/* Subjects with a level on one item, at most: an owner and 64 grantees a
 * level. */
#define SUBJECTS_MAX (FILES_DEPTH_MAX * (FILES_GRANTS_MAX + 1))

/* ---- drift ---- */

enum { Q_ROW, Q_CLOSURE, Q_PERMISSIONS, Q_GRANTS, Q_TOTALS, Q_LEN };

static const char *const drift_sql[Q_LEN] = {
    [Q_ROW] = "SELECT name, parent_id, owner_id, trashed, hidden, depth, path, version, kind"
              " FROM items{s} WHERE id = ?1",
    [Q_CLOSURE] = "SELECT ancestor, depth FROM item_tree{s} WHERE descendant = ?1",
    [Q_PERMISSIONS] = "SELECT subject, level FROM item_permissions{s} WHERE item_id = ?1",
    [Q_GRANTS] = "SELECT subject, level FROM item_grants{s} WHERE item_id = ?1",
    [Q_TOTALS] = "SELECT (SELECT count(*) FROM items{s}), (SELECT count(*) FROM item_tree{s}),"
                 " (SELECT count(*) FROM item_permissions{s}),"
                 " (SELECT count(*) FROM item_grants{s})",
};

struct scan {
    struct es_projector *p;
    struct es_read *r;
    struct es_drift_report *report;
    struct files_tree *tree;
    struct wx_map versions; /* item id -> version at the checkpoint */
    struct rm_stmt *st[Q_LEN];
    int64_t want[4], have[4]; /* rows expected and found: items, closure, permissions, grants */
    struct wx_buf path;
    const char **subjects; /* SUBJECTS_MAX */
    int err;
};

static void drift_add(struct scan *sc, const char *id, const char *model, const char *field,
                      const char *read_model, const char *events)
{
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_adds(&b, "{\"itemId\":");
    wx_buf_json_str(&b, id);
    wx_buf_adds(&b, ",\"model\":");
    wx_buf_json_str(&b, model);
    wx_buf_adds(&b, ",\"field\":");
    wx_buf_json_str(&b, field);
    wx_buf_adds(&b, ",\"readModel\":");
    wx_buf_json_str(&b, read_model ? read_model : "(none)");
    wx_buf_adds(&b, ",\"events\":");
    wx_buf_json_str(&b, events ? events : "(none)");
    wx_buf_addc(&b, '}');
    if (wx_buf_ok(&b))
        es_drift_report_add(sc->report, b.data, b.len);
    else
        sc->err = WX_ERR_NOMEM;
    wx_buf_free(&b);
}

static void drift_str(struct scan *sc, const char *id, const char *field, const char *have,
                      const char *want)
{
    if ((have == NULL) != (want == NULL) || (have != NULL && strcmp(have, want) != 0))
        drift_add(sc, id, "items", field, have, want);
}

static void drift_i64(struct scan *sc, const char *id, const char *model, const char *field,
                      int64_t have, int64_t want)
{
    if (have == want)
        return;
    char a[24], b[24];
    snprintf(a, sizeof(a), "%lld", (long long)have);
    snprintf(b, sizeof(b), "%lld", (long long)want);
    drift_add(sc, id, model, field, a, b);
}

static const char *col(struct rm_stmt *st, int i)
{
    return rm_column_text(st, i);
}

static void compare_row(struct scan *sc, uint32_t n, const char *id)
{
    const struct files_tree *t = sc->tree;
    struct rm_stmt *st = sc->st[Q_ROW];
    rm_reset(st);
    rm_bind_text(st, 1, id);
    bool found = false;
    int err = rm_step(st, &found);
    if (err || !found) {
        if (err)
            sc->err = err;
        else
            drift_add(sc, id, "items", "exists", "false", "true");
        return;
    }
    uint32_t parent = files_tree_parent(t, n);
    wx_buf_reset(&sc->path);
    files_tree_path(t, n, &sc->path);
    drift_str(sc, id, "name", col(st, 0), files_tree_name(t, n));
    drift_str(sc, id, "parentId", col(st, 1), parent != NONE ? files_tree_id(t, parent) : NULL);
    drift_str(sc, id, "ownerId", col(st, 2), files_tree_owner(t, n));
    drift_i64(sc, id, "items", "trashed", rm_column_i64(st, 3), files_tree_trashed(t, n));
    drift_i64(sc, id, "items", "hidden", rm_column_i64(st, 4), files_tree_hidden(t, n));
    drift_i64(sc, id, "items", "depth", rm_column_i64(st, 5), files_tree_depth(t, n));
    drift_str(sc, id, "path", col(st, 6), wx_buf_ok(&sc->path) ? sc->path.data : "");
    drift_i64(sc, id, "items", "version", rm_column_i64(st, 7),
              (int64_t)(uintptr_t)wx_map_get(&sc->versions, id));
    drift_str(sc, id, "kind", col(st, 8),
              files_tree_kind(t, n) == FILES_FOLDER ? "folder" : "file");
}

/* The closure rows of n: exactly its ancestors and itself, each at its
 * distance. */
static void compare_closure(struct scan *sc, uint32_t n, const char *id)
{
    const struct files_tree *t = sc->tree;
    struct rm_stmt *st = sc->st[Q_CLOSURE];
    rm_reset(st);
    rm_bind_text(st, 1, id);
    int64_t rows = 0;
    bool row = false;
    int err;
    while ((err = rm_step(st, &row)) == 0 && row) {
        rows++;
        const char *ancestor = col(st, 0);
        int64_t depth = rm_column_i64(st, 1);
        uint32_t x = n;
        for (int64_t k = 0; k < depth && x != NONE; k++)
            x = files_tree_parent(t, x);
        if (x == NONE || strcmp(files_tree_id(t, x), ancestor) != 0) {
            char at[96];
            snprintf(at, sizeof(at), "ancestor at %lld", (long long)depth);
            drift_add(sc, id, "item_tree", at, ancestor, x != NONE ? files_tree_id(t, x) : NULL);
        }
    }
    if (err) {
        sc->err = err;
        return;
    }
    int64_t want = files_tree_depth(t, n);
    drift_i64(sc, id, "item_tree", "rows", rows, want);
    sc->want[1] += want;
}

/* Subjects with a level on n: owners and grantees of n and its ancestors,
 * each once (the tree interns them, so pointers compare). */

static void add_subject(const char **out, size_t *len, const char *s)
{
    for (size_t k = 0; k < *len; k++)
        if (out[k] == s)
            return;
    if (*len < SUBJECTS_MAX)
        out[(*len)++] = s;
}

static size_t subjects_of(const struct files_tree *t, uint32_t n, const char **out)
{
    size_t len = 0;
    const char *grantees[FILES_GRANTS_MAX];
    uint8_t levels[FILES_GRANTS_MAX];
    for (uint32_t x = n; x != NONE; x = files_tree_parent(t, x)) {
        add_subject(out, &len, files_tree_owner(t, x));
        size_t g = files_tree_grants(t, x, grantees, levels);
        for (size_t i = 0; i < g; i++)
            add_subject(out, &len, grantees[i]);
    }
    return len;
}

static void compare_permissions(struct scan *sc, uint32_t n, const char *id)
{
    const struct files_tree *t = sc->tree;
    struct rm_stmt *st = sc->st[Q_PERMISSIONS];
    rm_reset(st);
    rm_bind_text(st, 1, id);
    int64_t rows = 0;
    bool row = false;
    int err;
    while ((err = rm_step(st, &row)) == 0 && row) {
        rows++;
        const char *subject = col(st, 0);
        drift_i64(sc, id, "item_permissions", subject, rm_column_i64(st, 1),
                  files_tree_subject_level(t, n, subject));
    }
    if (err) {
        sc->err = err;
        return;
    }
    int64_t want = (int64_t)subjects_of(t, n, sc->subjects);
    drift_i64(sc, id, "item_permissions", "rows", rows, want);
    sc->want[2] += want;
}

static void compare_grants(struct scan *sc, uint32_t n, const char *id)
{
    const char *subjects[FILES_GRANTS_MAX];
    uint8_t levels[FILES_GRANTS_MAX];
    size_t len = files_tree_grants(sc->tree, n, subjects, levels);
    struct rm_stmt *st = sc->st[Q_GRANTS];
    rm_reset(st);
    rm_bind_text(st, 1, id);
    int64_t rows = 0, want = 0;
    bool row = false;
    int err;
    while ((err = rm_step(st, &row)) == 0 && row) {
        rows++;
        const char *subject = col(st, 0);
        int64_t level = rm_column_i64(st, 1);
        bool held = false;
        for (size_t g = 0; g < len && !held; g++)
            held = strcmp(subjects[g], subject) == 0 && level >= FILES_LEVEL_READ &&
                   level <= FILES_LEVEL_MANAGE && (levels[g] & (1u << level));
        if (!held)
            drift_add(sc, id, "item_grants", subject, files_level_name((enum files_level)level),
                      NULL);
    }
    if (err) {
        sc->err = err;
        return;
    }
    for (size_t g = 0; g < len; g++)
        want += __builtin_popcount(levels[g]);
    drift_i64(sc, id, "item_grants", "rows", rows, want);
    sc->want[3] += want;
}

/* Rows of items no longer in the tree show in the totals. */
static void compare_totals(struct scan *sc)
{
    static const char *const models[] = {"items", "item_tree", "item_permissions", "item_grants"};
    struct rm_stmt *st = sc->st[Q_TOTALS];
    sc->want[0] = (int64_t)files_tree_len(sc->tree);
    bool found = false;
    int err = rm_step(st, &found);
    if (err || !found) {
        sc->err = err ? err : WX_ERR_IO;
        return;
    }
    for (int i = 0; i < 4; i++)
        drift_i64(sc, "*", models[i], "rows", rm_column_i64(st, i), sc->want[i]);
}

static int drift_run(struct es_projector *p, struct scan *sc, struct es_drift_report *report)
{
    memset(sc, 0, sizeof(*sc));
    sc->p = p;
    sc->report = report;
    wx_map_init(&sc->versions);
    wx_buf_init(&sc->path);
    struct es_position at;
    sc->subjects = malloc(SUBJECTS_MAX * sizeof(*sc->subjects));
    int err = sc->subjects == NULL ? WX_ERR_NOMEM : es_projector_read_begin(p, &sc->r);
    if (!err)
        err = es_read_position(sc->r, "items", &at);
    for (int q = 0; q < Q_LEN && !err; q++)
        err = es_projector_prepare_live(sc->r, "items", drift_sql[q], &sc->st[q], NULL);
    if (!err)
        err = files_tree_fold_log(es_projector_store(p), &at, &sc->versions, &sc->tree, NULL);
    uint32_t cursor = 0, n;
    while (!err && !sc->err && (n = files_tree_next(sc->tree, &cursor)) != NONE) {
        const char *id = files_tree_id(sc->tree, n);
        compare_row(sc, n, id);
        compare_closure(sc, n, id);
        compare_permissions(sc, n, id);
        compare_grants(sc, n, id);
        report->checked++;
    }
    if (!err && !sc->err)
        compare_totals(sc);
    return err ? err : sc->err;
}

static void drift_done(struct scan *sc)
{
    for (int q = 0; q < Q_LEN; q++)
        rm_finalize(sc->st[q]);
    es_projector_read_end(sc->p, sc->r);
    files_tree_free(sc->tree);
    wx_map_free(&sc->versions);
    wx_buf_free(&sc->path);
    free(sc->subjects);
}

int files_drift(struct es_projector *p, struct es_drift_report *report)
{
    struct scan sc;
    int err = drift_run(p, &sc, report);
    drift_done(&sc);
    return err;
}

/* ---- verify ---- */

/* Checks of the read model against itself, each a count that must be 0. */
static const struct {
    const char *what;
    const char *sql;
} checks[] = {
    {"closure rows missing from item_tree, folded from the parents",
     "WITH RECURSIVE up(descendant, ancestor, depth) AS (SELECT id, id, 0 FROM items{s}"
     " UNION ALL SELECT up.descendant, i.parent_id, up.depth + 1 FROM up JOIN items{s} i"
     " ON i.id = up.ancestor WHERE i.parent_id IS NOT NULL AND up.depth "
     "< " FILES_RECURSION_DEPTH_MAX
     ") SELECT count(*) FROM (SELECT ancestor, descendant, depth FROM up EXCEPT"
     " SELECT ancestor, descendant, depth FROM item_tree{s}) x"},
    {"rows of item_tree that the parents do not make",
     "WITH RECURSIVE up(descendant, ancestor, depth) AS (SELECT id, id, 0 FROM items{s}"
     " UNION ALL SELECT up.descendant, i.parent_id, up.depth + 1 FROM up JOIN items{s} i"
     " ON i.id = up.ancestor WHERE i.parent_id IS NOT NULL AND up.depth "
     "< " FILES_RECURSION_DEPTH_MAX
     ") SELECT count(*) FROM (SELECT ancestor, descendant, depth FROM item_tree{s} EXCEPT"
     " SELECT ancestor, descendant, depth FROM up) x"},
    {"effective permissions that differ from a recomputation from grants and owners",
     "WITH want(item_id, subject, level) AS (SELECT d, subject, max(level) FROM ("
     " SELECT t.descendant AS d, g.subject AS subject, g.level AS level FROM item_tree{s} t"
     " JOIN item_grants{s} g ON g.item_id = t.ancestor UNION ALL SELECT t.descendant,"
     " i.owner_id, 3 FROM item_tree{s} t JOIN items{s} i ON i.id = t.ancestor) x"
     " GROUP BY d, subject) SELECT (SELECT count(*) FROM (SELECT item_id, subject, level"
     " FROM want EXCEPT SELECT item_id, subject, level FROM item_permissions{s}) a) +"
     " (SELECT count(*) FROM (SELECT item_id, subject, level FROM item_permissions{s} EXCEPT"
     " SELECT item_id, subject, level FROM want) b)"},
    {"names held twice among a folder's live items or an owner's top-level folders",
     "SELECT (SELECT count(*) FROM (SELECT parent_id FROM items{s} WHERE trashed = 0 AND"
     " parent_id IS NOT NULL GROUP BY parent_id, name HAVING count(*) > 1) a) +"
     " (SELECT count(*) FROM (SELECT owner_id FROM items{s} WHERE trashed = 0 AND parent_id"
     " IS NULL GROUP BY owner_id, name HAVING count(*) > 1) b)"},
    {"items whose path, depth or hidden flag does not follow their parent's, or whose parent"
     " is missing or a file",
     "SELECT count(*) FROM items{s} c LEFT JOIN items{s} p ON p.id = c.parent_id WHERE"
     " (c.parent_id IS NULL AND (c.path <> '/' || c.name OR c.depth <> 1 OR c.hidden <>"
     " c.trashed)) OR (c.parent_id IS NOT NULL AND (p.id IS NULL OR p.kind <> 'folder' OR"
     " c.path <> p.path || '/' || c.name OR c.depth <> p.depth + 1 OR c.hidden <> CASE WHEN"
     " c.trashed = 1 OR p.hidden = 1 THEN 1 ELSE 0 END))"},
    {"permission rows whose trash time is not their item's (the index of a user's /trash)",
     "SELECT count(*) FROM item_permissions{s} p LEFT JOIN items{s} i ON i.id = p.item_id"
     " WHERE i.id IS NULL OR coalesce(p.trashed_at_ms, -1) <> coalesce(i.trashed_at_ms, -1)"
     " OR (i.trashed = 1) <> (i.trashed_at_ms IS NOT NULL)"},
};

static int check_model(struct scan *sc, struct wx_buf *v, size_t *n)
{
    int err = 0;
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]) && !err; i++) {
        struct rm_stmt *st;
        err = es_projector_prepare_live(sc->r, "items", checks[i].sql, &st, NULL);
        if (err)
            break;
        bool found = false;
        err = rm_step(st, &found);
        if (!err && !found)
            err = WX_ERR_IO; /* a count has a row */
        int64_t count = err ? 0 : rm_column_i64(st, 0);
        rm_finalize(st);
        if (count > 0) {
            char text[256];
            snprintf(text, sizeof(text), "%lld %s", (long long)count, checks[i].what);
            es_verify_violation(v, n, text);
        }
    }
    return err;
}

int files_verify(struct es_projector *p, struct wx_buf *out, struct wx_buf *v,
                 size_t *violations_len)
{
    struct scan sc;
    struct wx_buf drifted;
    wx_buf_init(&drifted);
    struct es_drift_report report = {.items = &drifted};
    size_t n = *violations_len;
    int err = drift_run(p, &sc, &report);
    if (!err)
        err = check_model(&sc, v, &n);
    if (!err) {
        if (report.drifted > 0) {
            char text[96];
            snprintf(text, sizeof(text), "%zu differences between the files read model and the log",
                     report.drifted);
            es_verify_violation(v, &n, text);
        }
        wx_buf_printf(out,
                      "{\"items\":%lld,\"closureRows\":%lld,\"permissionRows\":%lld,"
                      "\"grantRows\":%lld,\"indexBytes\":%zu,\"drifted\":[",
                      (long long)sc.want[0], (long long)sc.want[1], (long long)sc.want[2],
                      (long long)sc.want[3], files_tree_bytes(sc.tree));
        wx_buf_add(out, drifted.data ? drifted.data : "", drifted.len);
        wx_buf_adds(out, "]}");
        *violations_len = n;
    }
    drift_done(&sc);
    wx_buf_free(&drifted);
    return err;
}

/* ---- one item's rebuild ---- */

/* The item's stream folded up to the "items" checkpoint, its own row and
 * grants written from it, then everything its subtree derives from the
 * parents (paths, depths, hidden flags, closure rows, in order from the
 * top) and the subtree's permissions recomputed. The subtree is found by
 * parent ids, not by the closure table, which is one of the things being
 * repaired. An item purged (itself or with a folder above) leaves with its
 * subtree. */
struct rebuild {
    const char *id;
    struct rm_conn *conn;
    char set[ES_SET_BYTES];
    struct es_position upto;
    struct files_item *s;
    int64_t version;
    struct wx_buf scratch;
};

static int rebuild_fold(void *arg, const struct es_event *stored)
{
    struct rebuild *r = arg;
    if (es_position_cmp(&stored->position, &r->upto) > 0)
        return 0;
    struct es_event ev;
    int err = es_upcast(stored, &ev, &r->scratch);
    if (!err)
        err = files_aggregate.evolve_stored(r->s, &ev);
    r->version = ev.version;
    return err;
}

/* Runs a statement with text parameters ?1.. (NULL binds SQL NULL). */
static int rb_run(struct rebuild *r, const char *tmpl, const char *const *args, size_t n)
{
    struct rm_stmt *st;
    int err = es_proj_prepare(r->conn, tmpl, r->set, &st);
    if (err)
        return err;
    for (size_t i = 0; i < n; i++)
        rm_bind_text(st, (int)i + 1, args[i]);
    err = rm_run(st);
    rm_finalize(st);
    return err;
}

static int rb_row(struct rebuild *r)
{
    const struct files_item *s = r->s;
    bool file = s->kind == FILES_FILE;
    struct rm_stmt *st;
    int err = es_proj_prepare(
        r->conn,
        "INSERT INTO items{s}(id, kind, name, parent_id, owner_id, size, mime_type, content_hash,"
        " created_by, updated_by, created_at_ms, updated_at_ms, trashed, trashed_at_ms, hidden,"
        " depth, path, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
        " ?14, 0, 0, '', ?15) ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, name ="
        " excluded.name, parent_id = excluded.parent_id, owner_id = excluded.owner_id, size ="
        " excluded.size, mime_type = excluded.mime_type, content_hash = excluded.content_hash,"
        " created_by = excluded.created_by, updated_by = excluded.updated_by, created_at_ms ="
        " excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms, trashed ="
        " excluded.trashed, trashed_at_ms = excluded.trashed_at_ms, version = excluded.version",
        r->set, &st);
    if (err)
        return err;
    rm_bind_text(st, 1, r->id);
    rm_bind_text(st, 2, file ? "file" : "folder");
    rm_bind_text(st, 3, s->name);
    rm_bind_text(st, 4, s->parent_id[0] ? s->parent_id : NULL);
    rm_bind_text(st, 5, s->owner_id);
    if (file) {
        rm_bind_i64(st, 6, s->size);
        rm_bind_text(st, 7, s->mime_type);
        rm_bind_text(st, 8, s->content_hash[0] ? s->content_hash : NULL);
    }
    rm_bind_text(st, 9, s->created_by);
    rm_bind_text(st, 10, s->updated_by);
    rm_bind_i64(st, 11, s->created_at_ms);
    rm_bind_i64(st, 12, s->updated_at_ms);
    rm_bind_i64(st, 13, s->trashed);
    if (s->trashed)
        rm_bind_i64(st, 14, s->trashed_at_ms);
    rm_bind_i64(st, 15, r->version);
    err = rm_run(st);
    rm_finalize(st);
    return err;
}

static int rb_grants(struct rebuild *r)
{
    const char *args[1] = {r->id};
    int err = rb_run(r, "DELETE FROM item_grants{s} WHERE item_id = ?1", args, 1);
    struct rm_stmt *st = NULL;
    if (!err)
        err = es_proj_prepare(r->conn,
                              "INSERT INTO item_grants{s}(item_id, subject, level)"
                              " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                              r->set, &st);
    for (size_t g = 0; g < r->s->grants_len && !err; g++) {
        for (int l = FILES_LEVEL_READ; l <= FILES_LEVEL_MANAGE && !err; l++) {
            if (!(r->s->grants[g].levels & (1u << l)))
                continue;
            rm_bind_text(st, 1, r->id);
            rm_bind_text(st, 2, r->s->grants[g].subject);
            rm_bind_i64(st, 3, l);
            err = rm_run(st);
        }
    }
    rm_finalize(st);
    return err;
}

/* The subtree of the item by parent ids, parents first: ids into a buffer
 * of NUL-terminated strings. */
static int rb_subtree(struct rebuild *r, struct wx_buf *ids, size_t *len_out)
{
    struct rm_stmt *st;
    int err =
        es_proj_prepare(r->conn,
                        "WITH RECURSIVE sub(id, d) AS (SELECT CAST(?1 AS TEXT)"
                        "{pg: COLLATE \"C\"}, 0 UNION ALL SELECT i.id,"
                        " sub.d + 1 FROM items{s} i JOIN sub ON i.parent_id = sub.id WHERE"
                        " sub.d < " FILES_RECURSION_DEPTH_MAX ") SELECT id FROM sub ORDER BY d",
                        r->set, &st);
    if (err)
        return err;
    rm_bind_text(st, 1, r->id);
    size_t n = 0;
    bool row = false;
    while ((err = rm_step(st, &row)) == 0 && row) {
        const char *id = col(st, 0);
        wx_buf_add(ids, id, strlen(id) + 1);
        n++;
    }
    rm_finalize(st);
    *len_out = n;
    if (err)
        return err;
    return wx_buf_ok(ids) ? 0 : WX_ERR_NOMEM;
}

/* One item of the subtree, its parent already right: path, depth, hidden
 * flag and closure rows from the parent's. */
static int rb_derive(struct rebuild *r, const char *id)
{
    const char *args[1] = {id};
    static const char *const steps[] = {
        "UPDATE items{s} SET path = coalesce((SELECT p.path FROM items{s} p WHERE p.id ="
        " items{s}.parent_id), '') || '/' || name, depth = coalesce((SELECT p.depth FROM"
        " items{s} p WHERE p.id = items{s}.parent_id), 0) + 1, hidden = CASE WHEN trashed = 1"
        " OR coalesce((SELECT p.hidden FROM items{s} p WHERE p.id = items{s}.parent_id), 0) = 1"
        " THEN 1 ELSE 0 END WHERE id = ?1",
        "DELETE FROM item_tree{s} WHERE descendant = ?1",
        "INSERT INTO item_tree{s}(ancestor, descendant, depth) VALUES (?1, ?1, 0)",
        "INSERT INTO item_tree{s}(ancestor, descendant, depth) SELECT t.ancestor, ?1, t.depth + 1"
        " FROM item_tree{s} t WHERE t.descendant = (SELECT parent_id FROM items{s} WHERE id ="
        " ?1) ON CONFLICT DO NOTHING",
    };
    int err = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !err; i++)
        err = rb_run(r, steps[i], args, 1);
    return err;
}

static int rb_forget(struct rebuild *r, const char *id)
{
    const char *args[1] = {id};
    static const char *const steps[] = {
        "DELETE FROM items{s} WHERE id = ?1",
        "DELETE FROM item_grants{s} WHERE item_id = ?1",
        "DELETE FROM item_permissions{s} WHERE item_id = ?1",
        "DELETE FROM item_tree{s} WHERE descendant = ?1 OR ancestor = ?1",
    };
    int err = 0;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]) && !err; i++)
        err = rb_run(r, steps[i], args, 1);
    return err;
}

static int rb_parent_exists(struct rebuild *r, bool *out)
{
    *out = true;
    if (r->s->parent_id[0] == '\0')
        return 0;
    struct rm_stmt *st;
    int err = es_proj_prepare(r->conn, "SELECT 1 FROM items{s} WHERE id = ?1", r->set, &st);
    if (err)
        return err;
    rm_bind_text(st, 1, r->s->parent_id);
    err = rm_step(st, out);
    rm_finalize(st);
    return err;
}

static int rb_apply(struct rebuild *r)
{
    bool parent = true;
    int err = rb_parent_exists(r, &parent);
    bool gone = r->s->purged || !parent;
    if (!err && !gone)
        err = rb_row(r);
    if (!err && !gone)
        err = rb_grants(r);
    struct wx_buf ids;
    wx_buf_init(&ids);
    size_t n = 0;
    if (!err)
        err = rb_subtree(r, &ids, &n);
    const char *id = ids.data;
    for (size_t i = 0; i < n && !err; i++, id += strlen(id) + 1)
        err = gone ? rb_forget(r, id) : rb_derive(r, id);
    wx_buf_free(&ids);
    const char *args[1] = {r->id};
    if (!err && !gone)
        err = rb_run(r,
                     "DELETE FROM item_permissions{s} WHERE item_id IN (SELECT descendant FROM"
                     " item_tree{s} WHERE ancestor = ?1)",
                     args, 1);
    if (!err && !gone)
        err = rb_run(r,
                     "INSERT INTO item_permissions{s}(item_id, subject, level, trashed_at_ms)"
                     " SELECT x.d, x.subject, max(x.level), it.trashed_at_ms FROM ("
                     " SELECT t.descendant AS d, g.subject AS subject, g.level AS level"
                     " FROM item_tree{s} t JOIN item_tree{s} a ON a.descendant = t.descendant"
                     " JOIN item_grants{s} g ON g.item_id = a.ancestor WHERE t.ancestor = ?1"
                     " UNION ALL SELECT t.descendant, i.owner_id, 3"
                     " FROM item_tree{s} t JOIN item_tree{s} a ON a.descendant = t.descendant"
                     " JOIN items{s} i ON i.id = a.ancestor WHERE t.ancestor = ?1"
                     ") x JOIN items{s} it ON it.id = x.d GROUP BY x.d, x.subject,"
                     " it.trashed_at_ms",
                     args, 1);
    return err;
}

static int rebuild_one_job(struct es_projector *p, struct rm_conn *conn, void *ctx)
{
    struct rebuild r = {.id = ctx, .conn = conn};
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    files_stream_id(r.id, stream);
    r.s = malloc(sizeof(*r.s));
    if (r.s == NULL)
        return WX_ERR_NOMEM;
    files_item_init(r.s);
    wx_buf_init(&r.scratch);
    int err = rm_begin(conn, RM_TX_WRITE);
    if (err)
        goto out_free;
    err = es_projector_lock_live(p, conn, "items", r.set, &r.upto);
    if (!err)
        err = es_store_read_stream(es_projector_store(p), stream, 1, WX_STREAM_EVENTS_FOLD_MAX,
                                   rebuild_fold, &r);
    if (!err && r.version == 0)
        err = WX_ERR_NOT_FOUND; /* nothing of it at the checkpoint yet */
    if (!err)
        err = rb_apply(&r);
    err = rm_end(conn, err);
out_free:
    wx_buf_free(&r.scratch);
    free(r.s);
    return err;
}

int files_rebuild_one(struct es_projector *p, const char *id)
{
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    files_stream_id(id, stream);
    int64_t version;
    int err = es_store_stream_version(es_projector_store(p), stream, &version);
    if (!err && version == 0)
        err = WX_ERR_NOT_FOUND;
    if (!err)
        err = es_projector_replay_job(p, rebuild_one_job, (void *)id);
    return err;
}
