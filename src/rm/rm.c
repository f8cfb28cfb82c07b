/* The checked wrappers of the read-model database and the dialect hooks;
 * see rm.h. */
#include "rm/rm.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

/* Hooks nest this deep at most; ours nest two deep. */
#define RM_HOOK_DEPTH_MAX 8

int rm_open(const struct rm_ops *ops, const struct rm_config *config, struct rm_db **out)
{
    assert(ops != NULL && config != NULL && out != NULL);
    assert(ops->dialect != RM_DIALECT_SQLITE || config->path != NULL);
    assert(ops->dialect != RM_DIALECT_POSTGRES || (config->url != NULL && config->schema));
    int err = ops->open(config, out);
    assert(err || (*out)->ops == ops);
    return err;
}

void rm_close(struct rm_db *db)
{
    if (db != NULL)
        db->ops->close(db);
}

bool rm_shared(const struct rm_db *db)
{
    return db->ops->shared;
}

enum rm_dialect rm_dialect_of(const struct rm_db *db)
{
    return db->ops->dialect;
}

int rm_conn_open(struct rm_db *db, enum rm_conn_kind kind, struct rm_conn **out)
{
    int err = db->ops->conn_open(db, kind, out);
    assert(err || (*out)->db == db);
    return err;
}

void rm_conn_close(struct rm_conn *conn)
{
    if (conn != NULL)
        conn->db->ops->conn_close(conn);
}

int rm_read_acquire(struct rm_db *db, struct rm_conn **out)
{
    int err = db->ops->read_acquire(db, out);
    assert(err || (*out)->db == db);
    return err;
}

void rm_read_release(struct rm_db *db, struct rm_conn *conn)
{
    assert(conn->db == db);
    db->ops->read_release(db, conn);
}

int rm_exec(struct rm_conn *conn, const char *sql)
{
    assert(sql != NULL);
    return conn->db->ops->exec(conn, sql);
}

int rm_begin(struct rm_conn *conn, enum rm_tx kind)
{
    return conn->db->ops->begin(conn, kind);
}

int rm_commit(struct rm_conn *conn)
{
    return conn->db->ops->commit(conn);
}

void rm_rollback(struct rm_conn *conn)
{
    conn->db->ops->rollback(conn);
}

int rm_end(struct rm_conn *conn, int err)
{
    if (!err)
        err = rm_commit(conn);
    if (err)
        rm_rollback(conn);
    return err;
}

int rm_rows_split(const char *sql, char mark, int params, size_t *head_out, size_t *tail_out)
{
    static const char values[] = "VALUES (";
    const char *list = strstr(sql, values);
    if (strncmp(sql, "INSERT ", 7) != 0 || list == NULL || strcasestr(sql, "do update") != NULL)
        return WX_ERR_INVALID;
    const char *at = list + strlen(values);
    for (int i = 1; i <= params; i++) {
        char *end;
        if (*at != mark || strtol(at + 1, &end, 10) != i)
            return WX_ERR_INVALID;
        at = end;
        if (i < params) {
            if (strncmp(at, ", ", 2) != 0)
                return WX_ERR_INVALID;
            at += 2;
        }
    }
    /* A parameter after the list would name the first row's only. */
    if (*at != ')' || strchr(at, mark) != NULL)
        return WX_ERR_INVALID;
    *head_out = (size_t)(list - sql) + strlen("VALUES ");
    *tail_out = (size_t)(at + 1 - sql);
    return 0;
}

int rm_prepare(struct rm_conn *conn, const char *sql, unsigned flags, struct rm_stmt **out)
{
    assert(sql != NULL && out != NULL);
    *out = NULL;
    int err = conn->db->ops->prepare(conn, sql, flags, out);
    assert(err || ((*out)->conn == conn && (*out)->params >= 0));
    /* Both backends refuse what PostgreSQL could not gather, so a
     * statement that works on one works on the other. */
    size_t head, tail;
    if (!err && (flags & RM_ROWS) &&
        rm_rows_split(sql, '?', (*out)->params, &head, &tail) != 0) {
        rm_finalize(*out);
        *out = NULL;
        err = WX_ERR_INVALID;
    }
    return err;
}

void rm_finalize(struct rm_stmt *st)
{
    if (st != NULL)
        st->conn->db->ops->finalize(st);
}

void rm_reset(struct rm_stmt *st)
{
    st->conn->db->ops->reset(st);
}

void rm_bind_text(struct rm_stmt *st, int col, const char *text)
{
    if (text == NULL)
        rm_bind_null(st, col);
    else
        rm_bind_text_len(st, col, text, strlen(text));
}

void rm_bind_text_len(struct rm_stmt *st, int col, const char *text, size_t len)
{
    assert(col >= 1 && col <= st->params && text != NULL);
    st->conn->db->ops->bind_text(st, col, text, len);
}

void rm_bind_i64(struct rm_stmt *st, int col, int64_t value)
{
    assert(col >= 1 && col <= st->params);
    st->conn->db->ops->bind_i64(st, col, value);
}

void rm_bind_null(struct rm_stmt *st, int col)
{
    assert(col >= 1 && col <= st->params);
    st->conn->db->ops->bind_null(st, col);
}

int rm_step(struct rm_stmt *st, bool *row_out)
{
    return st->conn->db->ops->step(st, row_out);
}

int rm_run(struct rm_stmt *st)
{
    return st->conn->db->ops->run(st);
}

int rm_run_i64(struct rm_stmt *st, int64_t *value_out)
{
    bool row = false;
    int err = rm_step(st, &row);
    if (!err && row && value_out != NULL)
        *value_out = rm_column_i64(st, 0);
    rm_reset(st);
    return err;
}

const char *rm_column_text(struct rm_stmt *st, int col)
{
    assert(col >= 0 && col < st->columns);
    return st->conn->db->ops->column_text(st, col);
}

size_t rm_column_len(struct rm_stmt *st, int col)
{
    assert(col >= 0 && col < st->columns);
    return st->conn->db->ops->column_len(st, col);
}

int64_t rm_column_i64(struct rm_stmt *st, int col)
{
    assert(col >= 0 && col < st->columns);
    return st->conn->db->ops->column_i64(st, col);
}

bool rm_column_null(struct rm_stmt *st, int col)
{
    assert(col >= 0 && col < st->columns);
    return st->conn->db->ops->column_null(st, col);
}

int rm_column_exists(struct rm_conn *conn, const char *table, const char *column,
                     bool *exists_out)
{
    assert(table != NULL && column != NULL);
    /* Each catalog in its own terms; the search path's first schema is
     * this database's (rm/postgres.c). */
    static const char sql[] =
        "SELECT count(*) FROM {sqlite:pragma_table_info(?1) WHERE name = ?2}"
        "{pg:information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ?1 AND column_name = ?2}";
    struct rm_stmt *st;
    int err = rm_prepare(conn, sql, 0, &st);
    if (err)
        return err;
    rm_bind_text(st, 1, table);
    rm_bind_text(st, 2, column);
    int64_t n = 0;
    err = rm_run_i64(st, &n);
    rm_finalize(st);
    if (!err)
        *exists_out = n > 0;
    return err;
}

int rm_lease_try(struct rm_conn *conn, const char *name, bool *held_out)
{
    assert(name != NULL && name[0] != '\0');
    return conn->db->ops->lease_try(conn, name, held_out);
}

bool rm_lease_held(struct rm_conn *conn, const char *name)
{
    return conn->db->ops->lease_held(conn, name);
}

void rm_lease_release(struct rm_conn *conn, const char *name)
{
    conn->db->ops->lease_release(conn, name);
}

bool rm_lease_keep(struct rm_conn *conn, const char *name)
{
    bool held = false;
    rm_exec(conn, "SELECT 1"); /* a lost session shows here, and its lease goes */
    return rm_lease_try(conn, name, &held) == 0 && held;
}

/* ---- dialects ---- */

/* Writes n (>= 0) in decimal; returns its length. */
static size_t put_decimal(char *out, int n)
{
    char tmp[12];
    size_t len = 0;
    do {
        tmp[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    for (size_t i = 0; i < len; i++)
        out[i] = tmp[len - 1 - i];
    return len;
}

static bool hook_at(const char *p, const char *name, size_t *len_out)
{
    size_t n = strlen(name);
    if (p[0] != '{' || strncmp(p + 1, name, n) != 0 || p[1 + n] != ':')
        return false;
    *len_out = n + 2;
    return true;
}

int rm_sql_dialect(const char *sql, enum rm_dialect d, bool dollar_params, char *out,
                   size_t out_bytes, int *params_out)
{
    bool keep[RM_HOOK_DEPTH_MAX + 1] = {true};
    size_t depth = 0, o = 0;
    int params = 0;
    bool quoted = false;
    for (const char *p = sql; *p != '\0';) {
        size_t skip;
        bool sqlite_hook = !quoted && hook_at(p, "sqlite", &skip);
        if (sqlite_hook || (!quoted && hook_at(p, "pg", &skip))) {
            if (depth == RM_HOOK_DEPTH_MAX)
                return WX_ERR_INVALID;
            bool mine = sqlite_hook == (d == RM_DIALECT_SQLITE);
            keep[depth + 1] = keep[depth] && mine;
            depth++;
            p += skip;
            continue;
        }
        if (!quoted && *p == '}' && depth > 0) {
            depth--;
            p++;
            continue;
        }
        if (*p == '\'')
            quoted = !quoted;
        if (!keep[depth]) {
            p++;
            continue;
        }
        if (!quoted && *p == '?' && p[1] >= '0' && p[1] <= '9') {
            int n = 0;
            p++;
            while (*p >= '0' && *p <= '9' && n < 1000)
                n = n * 10 + (*p++ - '0');
            params = n > params ? n : params;
            if (o + 8 >= out_bytes)
                return WX_ERR_TOO_LARGE;
            out[o++] = dollar_params ? '$' : '?';
            o += put_decimal(out + o, n);
            continue;
        }
        if (o + 1 >= out_bytes)
            return WX_ERR_TOO_LARGE;
        out[o++] = *p++;
    }
    if (depth != 0 || quoted)
        return WX_ERR_INVALID;
    out[o] = '\0';
    if (params_out != NULL)
        *params_out = params;
    return 0;
}

int64_t rm_lease_key(const char *scope, const char *name)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a, 64 bits */
    for (const char *parts[] = {scope, "/", name}, **q = parts; q < parts + 3; q++)
        for (const unsigned char *c = (const unsigned char *)*q; *c != '\0'; c++)
            h = (h ^ *c) * 0x100000001b3u;
    return (int64_t)h;
}
