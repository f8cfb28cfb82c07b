/* SQLite connections, statements and pools; see sqlconn.h. */
#include "store/sqlconn.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "obs/log.h"

int sqlconn_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_NOMEM:
        return WX_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return WX_ERR_BUSY;
    case SQLITE_CONSTRAINT:
        return WX_ERR_CONFLICT;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return WX_ERR_CORRUPT;
    case SQLITE_TOOBIG:
        return WX_ERR_TOO_LARGE;
    default:
        return WX_ERR_IO;
    }
}

void sqlconn_close(struct sqlconn *c)
{
    for (int i = 0; i < SQLCONN_STMTS_MAX; i++) {
        sqlite3_finalize(c->stmts[i]);
        c->stmts[i] = NULL;
    }
    sqlite3_close(c->db);
    c->db = NULL;
}

int sqlconn_exec(struct sqlconn *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        wx_logf(WX_LOG_ERROR, "sqlite: %.200s: %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return sqlconn_err(rc);
}

int sqlconn_open(struct sqlconn *c, const char *path, bool writer, const char *pragmas,
                 const char *schema, const char *const *sql)
{
    memset(c, 0, sizeof(*c));
    c->sql = sql;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI |
                (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        wx_logf(WX_LOG_ERROR, "sqlite: open %s: %s", path, sqlite3_errstr(rc));
        sqlconn_close(c);
        return sqlconn_err(rc) ? sqlconn_err(rc) : WX_ERR_IO;
    }
    sqlite3_busy_timeout(c->db, WX_SQLITE_BUSY_TIMEOUT_MS);
    int err = 0;
    if (pragmas != NULL)
        err = sqlconn_exec(c, pragmas);
    if (!err && !writer)
        err = sqlconn_exec(c, "PRAGMA query_only=1;");
    if (!err && schema != NULL)
        err = sqlconn_exec(c, schema);
    if (err)
        sqlconn_close(c);
    return err;
}

sqlite3_stmt *sqlconn_stmt(struct sqlconn *c, int id)
{
    assert(id >= 0 && id < SQLCONN_STMTS_MAX && c->sql != NULL && c->sql[id] != NULL);
    if (c->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(c->db, c->sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &c->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            wx_logf(WX_LOG_ERROR, "sqlite: prepare: %s", sqlite3_errmsg(c->db));
            return NULL;
        }
    }
    return c->stmts[id];
}

int sqlconn_run_i64(sqlite3_stmt *st, int64_t *value_out)
{
    int rc = sqlite3_step(st);
    int err = 0;
    if (rc == SQLITE_ROW) {
        if (value_out != NULL)
            *value_out = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        err = sqlconn_err(rc);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

void sqlconn_bind_text(sqlite3_stmt *st, int col, const char *s)
{
    sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
}

void sqlpool_init(struct sqlpool *p, const char *path, const char *pragmas,
                  const char *const *sql)
{
    memset(p, 0, sizeof(*p));
    p->path = path;
    p->pragmas = pragmas;
    p->sql = sql;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
}

void sqlpool_destroy(struct sqlpool *p)
{
    for (size_t i = 0; i < p->open; i++)
        sqlconn_close(&p->conns[i]);
    p->open = 0;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
}

int sqlpool_acquire(struct sqlpool *p, struct sqlconn **conn_out)
{
    int err = 0;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (size_t i = 0; i < p->open; i++) {
            if (!p->busy[i]) {
                p->busy[i] = true;
                *conn_out = &p->conns[i];
                goto out_unlock;
            }
        }
        if (p->open < WX_SQLITE_READERS_MAX) {
            size_t i = p->open;
            err = sqlconn_open(&p->conns[i], p->path, false, p->pragmas, NULL, p->sql);
            if (err)
                goto out_unlock;
            p->open++;
            p->busy[i] = true;
            *conn_out = &p->conns[i];
            goto out_unlock;
        }
        pthread_cond_wait(&p->cond, &p->lock);
    }
out_unlock:
    pthread_mutex_unlock(&p->lock);
    return err;
}

void sqlpool_release(struct sqlpool *p, struct sqlconn *c)
{
    pthread_mutex_lock(&p->lock);
    size_t i = (size_t)(c - p->conns);
    assert(i < p->open && p->busy[i]);
    p->busy[i] = false;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}
