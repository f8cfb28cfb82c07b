/*
 * SQLite connections with lazily prepared statements, and a bounded pool of
 * read connections. Shared by the SQLite event store and the read-model
 * database so both open, tune and pool connections the same way.
 */
#ifndef WALLEX_STORE_SQLCONN_H
#define WALLEX_STORE_SQLCONN_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "limits.h"

#define SQLCONN_STMTS_MAX 32

/* One connection; statements are prepared on first use from `sql[id]`. */
struct sqlconn {
    sqlite3 *db;
    const char *const *sql; /* the statement table, SQLCONN_STMTS_MAX at most */
    sqlite3_stmt *stmts[SQLCONN_STMTS_MAX];
};

/* Opens path; `pragmas` and then `schema` (either may be NULL) run once.
 * A writer may create the file; readers are query_only. */
int sqlconn_open(struct sqlconn *c, const char *path, bool writer, const char *pragmas,
                 const char *schema, const char *const *sql);
/* Accepts a closed or never-opened connection. */
void sqlconn_close(struct sqlconn *c);
int sqlconn_exec(struct sqlconn *c, const char *sql);
/* The prepared statement for id, reset and unbound; NULL on error. */
sqlite3_stmt *sqlconn_stmt(struct sqlconn *c, int id);
/* Steps a statement that returns no row or one row of one integer, then
 * resets it. */
int sqlconn_run_i64(sqlite3_stmt *st, int64_t *value_out);
int sqlconn_err(int rc);
void sqlconn_bind_text(sqlite3_stmt *st, int col, const char *s);

/* A bounded pool of read connections to one file. */
struct sqlpool {
    const char *path;
    const char *pragmas;
    const char *const *sql;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sqlconn conns[WX_SQLITE_READERS_MAX];
    bool busy[WX_SQLITE_READERS_MAX];
    size_t open;
};

void sqlpool_init(struct sqlpool *p, const char *path, const char *pragmas,
                  const char *const *sql);
void sqlpool_destroy(struct sqlpool *p);
/* Waits for a free connection, opening one when below the bound. */
int sqlpool_acquire(struct sqlpool *p, struct sqlconn **conn_out);
void sqlpool_release(struct sqlpool *p, struct sqlconn *c);

#endif
