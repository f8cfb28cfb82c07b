/*
 * The read-model database: where the projector keeps the read models and
 * their checkpoints, where queries read them, and where the webhook
 * delivery state lives. One abstraction, two backends, reached through
 * `struct rm_ops` like the event store (store/store.h):
 *
 *   sqlite    a file beside the log (readmodel.db, delivery.db): one node;
 *   postgres  a schema in the log's database (<pg-schema>_read): every node
 *             reads it, and the nodes take turns writing it under leases.
 *
 * SQL is written once, in what the two dialects share: `?N` placeholders
 * (the PostgreSQL backend sends `$N`), BIGINT and TEXT columns, `INSERT ...
 * ON CONFLICT ... DO UPDATE/NOTHING` (SQLite >= 3.24), RETURNING (SQLite >=
 * 3.35). What truly differs is written inline for each backend, and the
 * other drops it: `{sqlite:WITHOUT ROWID}`, `{pg:FOR UPDATE}` (the hooks
 * nest, and a `}` closes the innermost). RM_TEXT and RM_WITHOUT_ROWID name
 * the common cases.
 *
 * A statement binds text, int64 and NULL, and is stepped row by row.
 * Statements that return nothing are run with rm_run: inside a write
 * transaction on PostgreSQL they are pipelined (sent without waiting for
 * their answer), so a projector batch of thousands of rows costs a few
 * round trips; their errors come back at the next rm_step, rm_exec or
 * rm_commit of the connection, and the transaction fails as a whole.
 * Statements prepared with RM_ROWS go further: their rows are gathered and
 * sent many to a statement.
 *
 * Leases: a named lease is held by one connection's session at a time
 * (PostgreSQL: an advisory lock; SQLite: always held, since one process
 * owns the data directory). What a lease guards is written on that same
 * connection, so a node that lost its session can commit nothing more.
 *
 * Thread model: a connection belongs to one thread at a time; the reader
 * pool and rm_db itself may be used from any thread.
 * Ownership: rm_close frees the database after every connection it lent
 * or opened is back or closed; rm_finalize frees a statement (NULL is
 * fine); text read from a row is valid until the next step, reset or
 * finalize of its statement.
 */
#ifndef WALLEX_RM_RM_H
#define WALLEX_RM_RM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Text columns, compared as bytes on both backends: SQLite's default
 * collation is BINARY; PostgreSQL's depends on the database's locale, so
 * ids would sort (and page) differently and index worse. */
#define RM_TEXT "TEXT{pg: COLLATE \"C\"}"
/* SQLite stores a table with a text primary key in that key's order. */
#define RM_WITHOUT_ROWID "{sqlite: WITHOUT ROWID}"

struct rm_db;
struct rm_conn;
struct rm_stmt;

enum rm_dialect { RM_DIALECT_SQLITE, RM_DIALECT_POSTGRES };

struct rm_config {
    const char *path;   /* sqlite: the file, or a "file:...?mode=memory" URI */
    const char *url;    /* postgres: connection string (URL or key=value) */
    const char *schema; /* postgres: the schema of these tables; created when missing */
    /* Derived data (read models): SQLite may run it without fsync under a
     * boot marker (rm/bootguard.h). Otherwise synchronous=NORMAL. */
    bool disposable;
    /* Offline tools rebuilding anyway: no fsync at all. */
    bool bulk;
    /* Another process may have the file open (drift beside a server): the
     * boot marker is left alone. */
    bool beside;
};

enum rm_conn_kind {
    RM_CONN_WRITER, /* one per writing thread: writes, DDL, leases */
    RM_CONN_READER, /* read only; from the pool (rm_read_acquire) */
};

enum rm_tx {
    RM_TX_READ,  /* one consistent snapshot for several queries */
    RM_TX_WRITE, /* rows; waits for other writers */
    RM_TX_DDL,   /* creates or drops tables: the nodes take turns */
};

/* rm_prepare flags. */
#define RM_PERSISTENT 1u /* used again and again: prepared once per connection */
/* Each rm_run only adds a row, and nothing this transaction does later
 * reads or changes that row: PostgreSQL may then send the rows of many
 * runs as one statement (WX_RM_ROWS_PER_STATEMENT at a time, the rest at
 * the commit or before the transaction's next read), where each would
 * otherwise cost a statement's fixed price. The statement must be
 * `INSERT ... VALUES (?1, ?2, ..., ?N)`, plus at most `ON CONFLICT ... DO
 * NOTHING` (a DO UPDATE may not touch one row twice in a statement).
 * With RM_PERSISTENT; SQLite runs each at once. */
#define RM_ROWS 2u

struct rm_ops {
    const char *name;
    enum rm_dialect dialect;
    /* Several nodes share it: consumers take turns under leases. */
    bool shared;
    int (*open)(const struct rm_config *config, struct rm_db **out);
    void (*close)(struct rm_db *db);
    int (*conn_open)(struct rm_db *db, enum rm_conn_kind kind, struct rm_conn **out);
    void (*conn_close)(struct rm_conn *conn);
    int (*read_acquire)(struct rm_db *db, struct rm_conn **out);
    void (*read_release)(struct rm_db *db, struct rm_conn *conn);
    int (*exec)(struct rm_conn *conn, const char *sql);
    int (*begin)(struct rm_conn *conn, enum rm_tx kind);
    int (*commit)(struct rm_conn *conn);
    void (*rollback)(struct rm_conn *conn);
    int (*prepare)(struct rm_conn *conn, const char *sql, unsigned flags, struct rm_stmt **out);
    void (*finalize)(struct rm_stmt *st);
    void (*reset)(struct rm_stmt *st);
    void (*bind_text)(struct rm_stmt *st, int col, const char *text, size_t len);
    void (*bind_i64)(struct rm_stmt *st, int col, int64_t value);
    void (*bind_null)(struct rm_stmt *st, int col);
    int (*step)(struct rm_stmt *st, bool *row_out);
    int (*run)(struct rm_stmt *st);
    const char *(*column_text)(struct rm_stmt *st, int col);
    size_t (*column_len)(struct rm_stmt *st, int col);
    int64_t (*column_i64)(struct rm_stmt *st, int col);
    bool (*column_null)(struct rm_stmt *st, int col);
    int (*lease_try)(struct rm_conn *conn, const char *name, bool *held_out);
    bool (*lease_held)(struct rm_conn *conn, const char *name);
    void (*lease_release)(struct rm_conn *conn, const char *name);
};

/* Every backend puts these first in its own structs. */
struct rm_db {
    const struct rm_ops *ops;
};
struct rm_conn {
    struct rm_db *db;
};
struct rm_stmt {
    struct rm_conn *conn;
    int params;  /* the highest ?N in the SQL */
    int columns; /* columns of a row, once stepped */
};

extern const struct rm_ops rm_sqlite_ops;
extern const struct rm_ops rm_postgres_ops;

/* ---- the database ---- */

int rm_open(const struct rm_ops *ops, const struct rm_config *config, struct rm_db **out);
/* Accepts NULL. */
void rm_close(struct rm_db *db);
bool rm_shared(const struct rm_db *db);
enum rm_dialect rm_dialect_of(const struct rm_db *db);

/* ---- connections and transactions ---- */

int rm_conn_open(struct rm_db *db, enum rm_conn_kind kind, struct rm_conn **out);
/* Accepts NULL. Releases the connection's leases. */
void rm_conn_close(struct rm_conn *conn);
/* A read connection from the bounded pool; waits for one. */
int rm_read_acquire(struct rm_db *db, struct rm_conn **out);
void rm_read_release(struct rm_db *db, struct rm_conn *conn);

/* Runs one or more statements without parameters (DDL), at once. */
int rm_exec(struct rm_conn *conn, const char *sql);
int rm_begin(struct rm_conn *conn, enum rm_tx kind);
/* Fails when any statement of the transaction failed (then nothing of it
 * is kept). */
int rm_commit(struct rm_conn *conn);
void rm_rollback(struct rm_conn *conn);
/* Commits when err is 0, else rolls back; returns the first error. */
int rm_end(struct rm_conn *conn, int err);

/* ---- statements ---- */

/* `sql` in the common dialect (above). */
int rm_prepare(struct rm_conn *conn, const char *sql, unsigned flags, struct rm_stmt **out);
void rm_finalize(struct rm_stmt *st);
/* Back to before the first step, with no bindings. */
void rm_reset(struct rm_stmt *st);
/* Parameters count from 1 (?1). Text is used where it is, until the
 * statement is stepped or run: NULL binds NULL. */
void rm_bind_text(struct rm_stmt *st, int col, const char *text);
void rm_bind_text_len(struct rm_stmt *st, int col, const char *text, size_t len);
void rm_bind_i64(struct rm_stmt *st, int col, int64_t value);
void rm_bind_null(struct rm_stmt *st, int col);
/* The next row: *row_out false at the end. */
int rm_step(struct rm_stmt *st, bool *row_out);
/* Runs a statement whose rows nobody reads, then resets it (see the file
 * comment: may be deferred inside a write transaction). */
int rm_run(struct rm_stmt *st);
/* Runs a statement of one integer (or none: *value_out untouched), then
 * resets it. */
int rm_run_i64(struct rm_stmt *st, int64_t *value_out);
/* Columns count from 0. NULL for a NULL value. */
const char *rm_column_text(struct rm_stmt *st, int col);
size_t rm_column_len(struct rm_stmt *st, int col);
int64_t rm_column_i64(struct rm_stmt *st, int col);
bool rm_column_null(struct rm_stmt *st, int col);

/* Whether `table` (in this database's schema) has `column`: for columns a
 * later release adds to tables an older one created. Inside a transaction
 * too; it fails none. */
int rm_column_exists(struct rm_conn *conn, const char *table, const char *column,
                     bool *exists_out);

/* ---- leases ---- */

/* Takes the named lease on this connection's session unless another
 * session holds it; *held_out says whether this one holds it now. */
int rm_lease_try(struct rm_conn *conn, const char *name, bool *held_out);
/* Whether this connection still holds it (false once its session was
 * lost and made again). */
bool rm_lease_held(struct rm_conn *conn, const char *name);
void rm_lease_release(struct rm_conn *conn, const char *name);
/* For a connection kept only to hold one lease (a singleton job on one
 * node of several): checks its session first, since a lost one has lost
 * its leases (and is made again), then tries the lease. Whether this
 * connection holds it now; false on any error. */
bool rm_lease_keep(struct rm_conn *conn, const char *name);

/* ---- for backends ---- */

/* Writes `sql` for dialect d into out: the segments of the other dialect
 * dropped; with dollar_params, ?N as $N. WX_ERR_TOO_LARGE when it does
 * not fit, WX_ERR_INVALID for an unclosed hook. *params_out: the highest N. */
int rm_sql_dialect(const char *sql, enum rm_dialect d, bool dollar_params, char *out,
                   size_t out_bytes, int *params_out);

/* The VALUES list of an RM_ROWS statement: with `mark` '?' (the common
 * dialect) or '$', sql must be `INSERT ... VALUES (<mark>1, ...,
 * <mark>params)`, no parameter after it and no DO UPDATE; *head_out ends after "VALUES " and
 * *tail_out starts after the ")". WX_ERR_INVALID otherwise. */
int rm_rows_split(const char *sql, char mark, int params, size_t *head_out, size_t *tail_out);

/* A 64-bit key for a lease name (FNV-1a), the same on every node. */
int64_t rm_lease_key(const char *scope, const char *name);

#endif
