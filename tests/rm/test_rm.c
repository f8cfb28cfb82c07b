/* The read-model database (rm/rm.h), one suite for both backends:
 *
 *   test_rm sqlite DIR     a file in DIR
 *   test_rm postgres URL   a schema of its own in that database
 *
 * The dialect hooks, statements binding text, int64 and NULL, upserts,
 * read snapshots, a failing pipelined write failing its transaction, the
 * columns a table has, and leases: one session at a time, released when
 * the session ends, and forgotten when it is lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/err.h"
#include "limits.h"
#include "rm/rm.h"

static const struct rm_ops *backend;
static struct rm_config config;
static char path[256], schema[64];

static void test_dialect_hooks(void **state)
{
    (void)state;
    char out[256];
    int params = 0;
    const char *sql = "CREATE TABLE t(id " RM_TEXT " PRIMARY KEY)" RM_WITHOUT_ROWID
                      "; SELECT '?1 {pg:x}' FROM t{sqlite: INDEXED BY t_{pg:no}i} WHERE a = ?12";
    assert_int_equal(rm_sql_dialect(sql, RM_DIALECT_SQLITE, false, out, sizeof(out), &params), 0);
    assert_string_equal(out, "CREATE TABLE t(id TEXT PRIMARY KEY) WITHOUT ROWID;"
                             " SELECT '?1 {pg:x}' FROM t INDEXED BY t_i WHERE a = ?12");
    assert_int_equal(params, 12);
    assert_int_equal(rm_sql_dialect(sql, RM_DIALECT_POSTGRES, true, out, sizeof(out), &params), 0);
    assert_string_equal(out, "CREATE TABLE t(id TEXT COLLATE \"C\" PRIMARY KEY);"
                             " SELECT '?1 {pg:x}' FROM t WHERE a = $12");
    assert_int_equal(rm_sql_dialect("SELECT {pg:1", RM_DIALECT_POSTGRES, true, out, sizeof(out),
                                    NULL),
                     WX_ERR_INVALID);
    assert_int_equal(rm_sql_dialect("SELECT 1", RM_DIALECT_SQLITE, false, out, 4, NULL),
                     WX_ERR_TOO_LARGE);
    assert_int_equal(rm_lease_key("s", "a"), rm_lease_key("s", "a"));
    assert_true(rm_lease_key("s", "a") != rm_lease_key("s", "b"));
}

static void open_db(struct rm_db **db, struct rm_conn **w)
{
    assert_int_equal(rm_open(backend, &config, db), 0);
    assert_int_equal(rm_conn_open(*db, RM_CONN_WRITER, w), 0);
}

static void make_table(struct rm_conn *w)
{
    assert_int_equal(rm_begin(w, RM_TX_DDL), 0);
    assert_int_equal(rm_exec(w, "DROP TABLE IF EXISTS things;"
                                "CREATE TABLE things(id " RM_TEXT " PRIMARY KEY, n BIGINT NOT NULL,"
                                " note TEXT)" RM_WITHOUT_ROWID ";"),
                     0);
    assert_int_equal(rm_commit(w), 0);
}

static void put(struct rm_conn *w, const char *id, int64_t n, const char *note)
{
    struct rm_stmt *st;
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n, note) VALUES (?1, ?2, ?3)"
                                   " ON CONFLICT (id) DO UPDATE SET n = things.n + excluded.n",
                                RM_PERSISTENT, &st),
                     0);
    rm_bind_text(st, 1, id);
    rm_bind_i64(st, 2, n);
    rm_bind_text(st, 3, note); /* NULL binds NULL */
    assert_int_equal(rm_run(st), 0);
    rm_finalize(st);
}

static void test_statements(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *w;
    open_db(&db, &w);
    make_table(w);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    put(w, "b", INT64_MIN, "it's \"quoted\"");
    put(w, "a", 5, NULL);
    put(w, "a", 2, "ignored");
    assert_int_equal(rm_commit(w), 0);

    struct rm_conn *r;
    assert_int_equal(rm_read_acquire(db, &r), 0);
    assert_int_equal(rm_begin(r, RM_TX_READ), 0);
    struct rm_stmt *st;
    assert_int_equal(rm_prepare(r, "SELECT id, n, note FROM things WHERE id > ?1 ORDER BY id", 0,
                                &st),
                     0);
    rm_bind_text(st, 1, "");
    bool row;
    assert_int_equal(rm_step(st, &row), 0);
    assert_true(row);
    assert_string_equal(rm_column_text(st, 0), "a");
    assert_int_equal(rm_column_i64(st, 1), 7);
    assert_true(rm_column_null(st, 2));
    assert_null(rm_column_text(st, 2));
    assert_int_equal(rm_step(st, &row), 0);
    assert_true(row);
    assert_int_equal(rm_column_i64(st, 1), INT64_MIN);
    assert_string_equal(rm_column_text(st, 2), "it's \"quoted\"");
    assert_int_equal(rm_column_len(st, 2), 13);
    assert_int_equal(rm_step(st, &row), 0);
    assert_false(row);
    /* Again, reset: the same rows. */
    rm_reset(st);
    rm_bind_text(st, 1, "a");
    assert_int_equal(rm_step(st, &row), 0);
    assert_true(row);
    assert_string_equal(rm_column_text(st, 0), "b");
    rm_finalize(st);
    int64_t n = 0;
    assert_int_equal(rm_prepare(r, "SELECT count(*) FROM things", 0, &st), 0);
    assert_int_equal(rm_run_i64(st, &n), 0);
    assert_int_equal(n, 2);
    rm_finalize(st);
    assert_int_equal(rm_end(r, 0), 0);
    rm_read_release(db, r);
    rm_conn_close(w);
    rm_close(db);
}

/* A read transaction sees one snapshot: a write committed after its first
 * read stays out of it. */
static void test_read_snapshot(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *w, *r;
    open_db(&db, &w);
    make_table(w);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    put(w, "a", 1, NULL);
    assert_int_equal(rm_commit(w), 0);
    assert_int_equal(rm_read_acquire(db, &r), 0);
    assert_int_equal(rm_begin(r, RM_TX_READ), 0);
    struct rm_stmt *st;
    int64_t n = 0;
    assert_int_equal(rm_prepare(r, "SELECT sum(n) FROM things", 0, &st), 0);
    assert_int_equal(rm_run_i64(st, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    put(w, "a", 10, NULL);
    assert_int_equal(rm_commit(w), 0);
    assert_int_equal(rm_run_i64(st, &n), 0);
    assert_int_equal(n, 1);
    rm_finalize(st);
    assert_int_equal(rm_end(r, 0), 0);
    rm_read_release(db, r);
    rm_conn_close(w);
    rm_close(db);
}

/* A write that fails (a duplicate key) fails its transaction, however late
 * its error comes back, and nothing of the transaction is kept. */
static void test_failed_write_fails_the_transaction(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *w;
    open_db(&db, &w);
    make_table(w);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    struct rm_stmt *st;
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n) VALUES (?1, 1)", RM_PERSISTENT, &st),
                     0);
    rm_bind_text(st, 1, "x");
    int err = rm_run(st);
    rm_bind_text(st, 1, "x");
    if (!err)
        err = rm_run(st); /* SQLite says so here; PostgreSQL at the commit */
    if (!err)
        err = rm_commit(w);
    assert_int_equal(err, WX_ERR_CONFLICT);
    rm_rollback(w);
    rm_finalize(st);
    int64_t n = -1;
    assert_int_equal(rm_prepare(w, "SELECT count(*) FROM things", 0, &st), 0);
    assert_int_equal(rm_run_i64(st, &n), 0);
    assert_int_equal(n, 0);
    rm_finalize(st);
    /* The connection goes on. */
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    put(w, "y", 1, NULL);
    assert_int_equal(rm_commit(w), 0);
    rm_conn_close(w);
    rm_close(db);
}

static int64_t count_things(struct rm_conn *c, const char *where)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM things%s", where);
    struct rm_stmt *st;
    assert_int_equal(rm_prepare(c, sql, 0, &st), 0);
    int64_t n = -1;
    assert_int_equal(rm_run_i64(st, &n), 0);
    rm_finalize(st);
    return n;
}

static void put_rows(struct rm_stmt *st, int from, int to, int64_t n)
{
    for (int i = from; i < to; i++) {
        char id[16], note[16];
        snprintf(id, sizeof(id), "r%03d", i);
        snprintf(note, sizeof(note), "note%d", i);
        rm_reset(st);
        rm_bind_text(st, 1, id);
        rm_bind_i64(st, 2, n < 0 ? i : n);
        rm_bind_text(st, 3, i % 2 ? note : NULL);
        assert_int_equal(rm_run(st), 0);
    }
}

/* RM_ROWS: what PostgreSQL sends many rows to a statement reads back as if
 * sent one by one, whether the rows leave as a full set, at a read in the
 * same transaction, at the commit or at the statement's finalize; a
 * rollback keeps none; a statement of another shape is refused. */
static void test_rows(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *w;
    open_db(&db, &w);
    make_table(w);
    const char *sql = "INSERT INTO things(id, n, note) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (id) DO NOTHING";
    struct rm_stmt *st;
    assert_int_equal(rm_prepare(w, sql, RM_PERSISTENT | RM_ROWS, &st), 0);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    /* Two full sets and some; then the first id again, which stays. */
    put_rows(st, 0, 2 * WX_RM_ROWS_PER_STATEMENT + 22, -1);
    put_rows(st, 0, 1, 999);
    assert_int_equal(count_things(w, ""), 2 * WX_RM_ROWS_PER_STATEMENT + 22);
    put_rows(st, 200, 210, -1);
    assert_int_equal(rm_commit(w), 0);
    int64_t total = 2 * WX_RM_ROWS_PER_STATEMENT + 32;
    assert_int_equal(count_things(w, ""), total);
    assert_int_equal(count_things(w, " WHERE id = 'r000' AND n = 0 AND note IS NULL"), 1);
    assert_int_equal(count_things(w, " WHERE id = 'r209' AND n = 209 AND note = 'note209'"), 1);

    /* A rollback: a full set already sent and some gathered, none kept. */
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    put_rows(st, 300, 300 + WX_RM_ROWS_PER_STATEMENT + 6, -1);
    rm_rollback(w);
    assert_int_equal(count_things(w, ""), total);
    /* The statement goes on, and rows gathered at its finalize are kept. */
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    put_rows(st, 400, 403, -1);
    rm_finalize(st);
    assert_int_equal(rm_commit(w), 0);
    assert_int_equal(count_things(w, ""), total + 3);

    static const char *const refused[] = {
        "UPDATE things SET n = ?1 WHERE id = ?2",
        "INSERT INTO things(id, n) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET n = 1",
        "INSERT INTO things(id, n) VALUES (?2, ?1)",
        "INSERT INTO things(id, n) VALUES (?1, 5)",
        "INSERT INTO things(id, n) VALUES (?1, ?2) on conflict (id) do update set n = 1",
        "INSERT INTO things(id, n) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING RETURNING ?2",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_int_equal(rm_prepare(w, refused[i], RM_PERSISTENT | RM_ROWS, &st), WX_ERR_INVALID);
        assert_null(st);
    }
    rm_conn_close(w);
    rm_close(db);
}

/* A transaction that failed before its statements' first PREPAREs reached
 * PostgreSQL (a pipeline skips everything after an error) leaves them
 * usable: the next transaction prepares them again instead of running
 * statements the server never made. */
static void test_prepared_after_a_failed_transaction(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *w;
    open_db(&db, &w);
    make_table(w);
    struct rm_stmt *dup, *rows, *one;
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n) VALUES (?1, 1)", RM_PERSISTENT, &dup),
                     0);
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n, note) VALUES (?1, ?2, ?3)",
                                RM_PERSISTENT | RM_ROWS, &rows),
                     0);
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n) VALUES (?1, 2)", RM_PERSISTENT, &one),
                     0);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    rm_bind_text(dup, 1, "x");
    int err = rm_run(dup);
    rm_reset(dup);
    rm_bind_text(dup, 1, "x");
    if (!err)
        (void)rm_run(dup); /* fails here on SQLite, at the commit on PostgreSQL */
    put_rows(rows, 0, WX_RM_ROWS_PER_STATEMENT, -1);
    rm_bind_text(one, 1, "one");
    (void)rm_run(one);
    rm_rollback(w);
    assert_int_equal(count_things(w, ""), 0);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
        put_rows(rows, round * 100, round * 100 + WX_RM_ROWS_PER_STATEMENT, -1);
        rm_reset(one);
        rm_bind_text(one, 1, round == 0 ? "one" : "two");
        assert_int_equal(rm_run(one), 0);
        assert_int_equal(rm_commit(w), 0);
    }
    assert_int_equal(count_things(w, ""), 2 * WX_RM_ROWS_PER_STATEMENT + 2);
    rm_finalize(dup);
    rm_finalize(rows);
    rm_finalize(one);
    rm_conn_close(w);
    rm_close(db);
}

static int64_t server_statements(struct rm_conn *c)
{
    struct rm_stmt *st;
    assert_int_equal(rm_prepare(c, "SELECT count(*) FROM pg_prepared_statements", 0, &st), 0);
    int64_t n = -1;
    assert_int_equal(rm_run_i64(st, &n), 0);
    rm_finalize(st);
    return n;
}

/* PostgreSQL: a finalized statement leaves the server too, whether it was
 * finalized inside a write transaction or outside one (then at the next
 * write transaction's start), so set swaps and replays do not pile
 * prepared statements up on a session. */
static void test_finalized_statements_leave_the_server(void **state)
{
    (void)state;
    if (backend != &rm_postgres_ops)
        return;
    struct rm_db *db;
    struct rm_conn *w;
    open_db(&db, &w);
    make_table(w);
    struct rm_stmt *a, *b;
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n) VALUES (?1, 1)", RM_PERSISTENT, &a),
                     0);
    assert_int_equal(rm_prepare(w, "INSERT INTO things(id, n) VALUES (?1, 2)", RM_PERSISTENT, &b),
                     0);
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    rm_bind_text(a, 1, "a");
    assert_int_equal(rm_run(a), 0);
    rm_bind_text(b, 1, "b");
    assert_int_equal(rm_run(b), 0);
    assert_int_equal(rm_commit(w), 0);
    int64_t before = server_statements(w);
    assert_true(before >= 2);
    rm_finalize(a); /* outside a transaction */
    assert_int_equal(rm_begin(w, RM_TX_WRITE), 0);
    rm_finalize(b); /* inside one */
    assert_int_equal(rm_commit(w), 0);
    assert_int_equal(server_statements(w), before - 2);
    rm_conn_close(w);
    rm_close(db);
}

/* The catalog says which columns a table has, inside a DDL transaction
 * too (the projector adds the columns a release added, where missing). */
static void test_column_exists(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *w;
    open_db(&db, &w);
    make_table(w);
    bool exists = false;
    assert_int_equal(rm_begin(w, RM_TX_DDL), 0);
    assert_int_equal(rm_column_exists(w, "things", "note", &exists), 0);
    assert_true(exists);
    assert_int_equal(rm_column_exists(w, "things", "later", &exists), 0);
    assert_false(exists);
    assert_int_equal(rm_exec(w, "ALTER TABLE things ADD COLUMN later TEXT"), 0);
    assert_int_equal(rm_column_exists(w, "things", "later", &exists), 0);
    assert_true(exists);
    assert_int_equal(rm_column_exists(w, "no_such_table", "note", &exists), 0);
    assert_false(exists);
    assert_int_equal(rm_commit(w), 0);
    assert_int_equal(rm_column_exists(w, "things", "later", &exists), 0);
    assert_true(exists);
    rm_conn_close(w);
    rm_close(db);
}

static void test_leases(void **state)
{
    (void)state;
    struct rm_db *db;
    struct rm_conn *a, *b;
    open_db(&db, &a);
    assert_int_equal(rm_conn_open(db, RM_CONN_WRITER, &b), 0);
    bool held = false;
    assert_int_equal(rm_lease_try(a, "x", &held), 0);
    assert_true(held && rm_lease_held(a, "x"));
    if (!rm_shared(db)) { /* one process owns the file: every lease is held */
        assert_int_equal(rm_lease_try(b, "x", &held), 0);
        assert_true(held);
        goto out_close;
    }
    assert_int_equal(rm_lease_try(b, "x", &held), 0);
    assert_false(held || rm_lease_held(b, "x"));
    assert_int_equal(rm_lease_try(b, "y", &held), 0);
    assert_true(held);
    /* Released, it is free for the other session. */
    rm_lease_release(a, "x");
    assert_false(rm_lease_held(a, "x"));
    assert_int_equal(rm_lease_try(b, "x", &held), 0);
    assert_true(held);
    /* A session lost takes its leases with it: b's ends under it, the
     * next begin makes a new one that holds nothing. */
    assert_int_not_equal(rm_exec(b, "SELECT pg_terminate_backend(pg_backend_pid())"), 0);
    assert_int_equal(rm_begin(b, RM_TX_WRITE), 0);
    assert_false(rm_lease_held(b, "x") || rm_lease_held(b, "y"));
    rm_rollback(b);
    held = false;
    for (int i = 0; i < 200 && !held; i++) { /* the server ends it a moment later */
        assert_int_equal(rm_lease_try(a, "x", &held), 0);
        if (!held)
            usleep(10 * 1000);
    }
    assert_true(held);
out_close:
    rm_conn_close(a);
    rm_conn_close(b);
    rm_close(db);
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "sqlite") != 0 && strcmp(argv[1], "postgres") != 0)) {
        fprintf(stderr, "usage: test_rm sqlite DIR | postgres URL\n");
        return 2;
    }
    if (strcmp(argv[1], "sqlite") == 0) {
        backend = &rm_sqlite_ops;
        snprintf(path, sizeof(path), "%s/rm-test.db", argv[2]);
        unlink(path);
        config.path = path;
    } else {
        backend = &rm_postgres_ops;
        snprintf(schema, sizeof(schema), "rm_test_%d", (int)getpid());
        config.url = argv[2];
        config.schema = schema;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dialect_hooks),
        cmocka_unit_test(test_statements),
        cmocka_unit_test(test_read_snapshot),
        cmocka_unit_test(test_failed_write_fails_the_transaction),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_prepared_after_a_failed_transaction),
        cmocka_unit_test(test_finalized_statements_leave_the_server),
        cmocka_unit_test(test_column_exists),
        cmocka_unit_test(test_leases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
