/*
 * The projector (DESIGN.md §4-5, §12): one thread that feeds every read
 * model ("consumer") from the event log. Each consumer has a checkpoint in
 * the read-model database (rm/rm.h) and writes its rows and its new
 * checkpoint in one transaction, and its apply is idempotent, so replaying
 * an event never counts twice.
 *
 * The read side lives in a SQLite file beside the log (readmodel.db) or,
 * with the PostgreSQL store, in a schema of the log's database that every
 * node shares. Each consumer's tables exist as set "_a" or "_b"; the
 * projections table says which set is live. A rebuild fills the other set
 * from the start of the log while the live one keeps serving, then swaps
 * them in one transaction. Readers look the live sets up inside their read
 * transaction, so they always see one consistent set.
 *
 * Several nodes: each consumer is projected by the node holding its lease
 * (rm_lease_try on the projector's own connection, which also writes the
 * consumer's rows and checkpoint, so a node that lost its session can
 * commit nothing more). The other nodes follow its checkpoint from the
 * database, to answer X-Min-Position and /admin/projections, and take the
 * lease over when its holder dies. Consumers' SQL is written once for both
 * backends (rm/rm.h).
 *
 * Ownership: the projector owns its read-model database, connections and
 * thread; consumers are static descriptions owned by the caller.
 */
#ifndef WALLEX_PROJ_PROJECTOR_H
#define WALLEX_PROJ_PROJECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "es/event.h"
#include "limits.h"
#include "rm/rm.h"

struct es_store;
struct es_projector;

#define ES_SET_BYTES 3 /* "_a" or "_b" and the NUL */

/* A consumer writing into one table set; statements are prepared lazily
 * from the consumer's templates with "{s}" replaced by the set suffix. */
struct es_proj_tx {
    const struct es_consumer *consumer;
    struct rm_conn *conn;
    char set[ES_SET_BYTES];
    struct rm_stmt *stmts[WX_CONSUMER_STMTS_MAX];
    /* Rows apply staged since the last fold (see es_consumer.fold). A
     * fresh handle has never folded, so its first staged rows fold at once,
     * with whatever an earlier run left staged. */
    int64_t staged;
    int64_t folded_at_ms; /* monotonic */
};

/* A column a release added to a consumer's table (es_consumer.columns_added). */
struct es_column_added {
    const char *table;  /* "dogs{s}" */
    const char *column; /* "walked_by" */
    const char *type;   /* in the common dialect: "TEXT", "BIGINT" */
};

struct es_consumer {
    const char *name;
    /* The stream categories it reads ("cat", "dog"), NULL-terminated;
     * NULL for every event. apply sees only those. */
    const char *const *categories;
    /* Decodes its events; consumers sharing a codec share one decode of
     * each event. NULL: apply gets decoded == NULL. */
    const struct es_event_codec *codec;
    /* CREATE statements, "{s}" for the set suffix; IF NOT EXISTS. Like
     * every statement here, in the common dialect (rm/rm.h). */
    const char *schema;
    /* Columns added to the schema's tables after they first shipped
     * (ended by an entry with table NULL; NULL for none), so a read model
     * an older release wrote keeps serving without a rebuild: at every
     * open each is added where the table lacks it. The schema itself has
     * them too, for tables created from now on. */
    const struct es_column_added *columns_added;
    /* DROP statements for one set. */
    const char *drop;
    /* Statement templates for apply, "{s}" for the set suffix. */
    const char *const *sql;
    /* Bit i set: sql[i] only adds rows that nothing later in the batch
     * reads or changes, so PostgreSQL may get them many to a statement
     * (RM_ROWS in rm/rm.h, which says the shape it must have). */
    unsigned adds_rows;
    /* Applies one event of its categories, in its type's current schema
     * (es_upcast ran first). Must be idempotent: the same event twice
     * leaves the same rows. `decoded` is what the consumer's codec made of
     * the event (NULL without codec). */
    int (*apply)(struct es_proj_tx *tx, const struct es_event *event, const void *decoded);
    /* Optional. A consumer may stage rows where they are cheap to write
     * (appended, in a small table) and count them in tx->staged; fold moves
     * them to their final place. The projector calls it inside a batch's
     * transaction once WX_PROJECTOR_FOLD_ROWS are staged or
     * WX_PROJECTOR_FOLD_MS have passed, when idle, and at close. Queries
     * must read staged rows too: folding changes where rows are, never
     * what the read model says. */
    int (*fold)(struct es_proj_tx *tx);
    /* Optional. Called on the projector thread once a rebuilt set has
     * replaced the live one (committed): the rows served from now on may
     * differ from those before, which a consumer's reader that caches
     * them must learn. */
    void (*swapped)(void);
};

/* Decodes an event once for all the consumers that share the codec.
 * decode may set *out to NULL for events none of them reads; release
 * accepts NULL. */
struct es_event_codec {
    int (*decode)(const struct es_event *event, void **out);
    void (*release)(void *decoded);
};

/* Returns the statement `id`, ready to bind, or NULL on error. */
struct rm_stmt *es_proj_stmt(struct es_proj_tx *tx, int id);
void es_proj_tx_init(struct es_proj_tx *tx, const struct es_consumer *c, struct rm_conn *conn,
                     const char *set);
void es_proj_tx_finalize(struct es_proj_tx *tx);
/* Writes `tmpl` with every "{s}" replaced by set into out. */
int es_proj_sql(const char *tmpl, const char *set, char *out, size_t out_bytes);
/* Prepares `tmpl` for set on conn (not kept: for queries and tools). */
int es_proj_prepare(struct rm_conn *conn, const char *tmpl, const char *set,
                    struct rm_stmt **st_out);

struct es_projector_config {
    struct es_store *store;
    /* The read-model database: its backend and settings (rm/rm.h). */
    const struct rm_ops *backend;
    struct rm_config rm;
    const struct es_consumer *const *consumers;
    size_t consumers_len;
};

/* Opens the read side and its schema; no thread yet. */
int es_projector_open(const struct es_projector_config *config, struct es_projector **out);
/* Starts the projection thread. */
int es_projector_start(struct es_projector *p);
/* Stops the thread (if started) and frees everything. Accepts NULL. No
 * watch may be left registered (the HTTP server stops first). */
void es_projector_close(struct es_projector *p);
/* Wakes the thread: new events were committed. Any thread. */
void es_projector_notify(struct es_projector *p);

/* One pass over every consumer, for offline tools. *progress_out is set
 * when any consumer moved. */
int es_projector_step(struct es_projector *p, bool *progress_out);
/* Drops every table set and checkpoint: the next steps rebuild from the
 * start of the log. Only without the thread. */
int es_projector_reset(struct es_projector *p);

/* A wake-up for when read models reach a position, without blocking
 * anyone (X-Min-Position parks its request on one). The caller owns it and
 * keeps it alive until it has fired or es_projector_unwatch withdrew it. */
struct es_projector_watch {
    const char *const *names; /* NULL-terminated; NULL means every consumer */
    struct es_position position;
    /* On the projector thread, outside its lock, once every named
     * consumer's live checkpoint is at or past position. The watch is no
     * longer registered when it runs, and the projector does not touch it
     * after. */
    void (*reached)(struct es_projector_watch *watch);
    struct es_projector_watch *prev, *next; /* private */
};

/* Registers w, unless the read models are there already: then
 * *reached_out is true and nothing is registered (w->reached will not be
 * called). WX_ERR_FULL past WX_PROJECTOR_WATCHES_MAX registered watches. */
int es_projector_watch(struct es_projector *p, struct es_projector_watch *w, bool *reached_out);
/* Withdraws a registered watch: true when withdrawn (reached will not be
 * called); false when it has fired already or is firing now. */
bool es_projector_unwatch(struct es_projector *p, struct es_projector_watch *w);
/* No consumer is failed. */
bool es_projector_ready(struct es_projector *p);
/* Starts rebuilding a consumer: 0, WX_ERR_NOT_FOUND, or WX_ERR_BUSY when a
 * rebuild is already running. On any node: the consumer's holder fills
 * the other set and swaps it in. */
int es_projector_rebuild(struct es_projector *p, const char *name);

/* Offline tools on a shared read side: waits until every consumer this
 * process does not project has reached `head` on the node that does, at
 * most timeout_ms (WX_ERR_BUSY then). */
int es_projector_await(struct es_projector *p, const struct es_position *head, int64_t timeout_ms);

/* Upper bounds (ms) of the lag histogram buckets; one more bucket holds
 * everything above the last bound. */
#define ES_LAG_BUCKETS 12
extern const int64_t es_lag_bucket_ms[ES_LAG_BUCKETS];

struct es_projection_status {
    uint64_t lag_counts[ES_LAG_BUCKETS + 1]; /* events by occurredAt-to-projected lag */
    const char *name;
    struct es_position position;
    const char *status;     /* "running", "rebuilding", "failed" */
    const char *last_error; /* NULL when none; copied into the arena */
    bool rebuilding;
    struct es_position rebuild_position;
    bool here; /* this node projects it (holds its lease) */
};

/* A consumer's live checkpoint as this process's projector last committed
 * it (on a shared read side, for a consumer another node holds: the
 * holder's, as last read), from memory (no read transaction):
 * WX_ERR_NOT_FOUND for a name it does not run. */
int es_projector_position(struct es_projector *p, const char *name, struct es_position *out);

/* Events the projector has read from the log: an event read once for
 * every consumer it fed counts once (the consumers share reads). */
uint64_t es_projector_events_read(struct es_projector *p);

/* Copies the status of every consumer into arena memory. */
int es_projector_status(struct es_projector *p, struct wx_arena *arena,
                        struct es_projection_status **list_out, size_t *len_out);

/* Runs fn on the projector thread (or inline without one) with the write
 * connection, and waits for it. fn's error is returned; WX_ERR_CLOSED once
 * the thread is stopping. Callers are done before es_projector_close (the
 * server stops HTTP first), which frees p. */
int es_projector_job(struct es_projector *p,
                     int (*fn)(struct es_projector *p, struct rm_conn *conn, void *ctx), void *ctx);
/* es_projector_job for a job that rebuilds one aggregate's rows in one
 * transaction: on a shared read side that transaction can lose to another
 * node's projector (a deadlock, a set swapped away by its rebuild:
 * WX_ERR_BUSY, rolled back), so it is run again, at most
 * WX_PROJECTOR_JOB_TRIES times in all, waiting a little longer each time. */
int es_projector_replay_job(struct es_projector *p,
                            int (*fn)(struct es_projector *p, struct rm_conn *conn, void *ctx),
                            void *ctx);
/* For es_projector_job functions that rebuild one aggregate's rows: in
 * the job's open write transaction, the consumer's checkpoint is locked
 * (its holder's next batch waits, on whichever node), `forget` deletes
 * what the consumer has of the stream (its rows, its part of totals), then
 * the stream's events up to the consumer's live checkpoint are applied
 * again through the consumer's own apply, so the rows come back exactly as
 * the projector would have written them. `forget` gets the consumer's
 * live-set handle and ctx. Lock the consumers in the order the domain
 * registered them. */
int es_projector_replay_stream(struct es_projector *p, struct rm_conn *conn, const char *consumer,
                               const char *stream_id,
                               int (*forget)(struct es_proj_tx *tx, void *ctx), void *ctx);
/* For es_projector_job functions that rewrite a consumer's rows their own
 * way rather than through its apply (a domain repairing what one
 * aggregate's rows imply elsewhere): in the job's open write transaction,
 * locks the consumer's checkpoint as es_projector_replay_stream does, and
 * gives its live set and position, up to which the rows are to be
 * rewritten. */
int es_projector_lock_live(struct es_projector *p, struct rm_conn *conn, const char *consumer,
                           char set_out[ES_SET_BYTES], struct es_position *position_out);
/* A forget for es_projector_replay_stream: runs each statement of a
 * NULL-terminated list (`{s}` for the set) with ?1 bound to the text in
 * `arg`. */
struct es_forget_sql {
    const char *const *sql;
    const char *arg;
};
int es_projector_forget_sql(struct es_proj_tx *tx, void *forget_sql);

const struct es_consumer *es_projector_consumer(struct es_projector *p, const char *name);
struct es_store *es_projector_store(struct es_projector *p);
/* The read-model database (the relay's lease lives there). */
struct rm_db *es_projector_rm(struct es_projector *p);

/* A read transaction for queries: one read connection, and every
 * consumer's live set and checkpoint as that transaction sees them, so the
 * set a query looks up stays consistent with the rows it reads. */
struct es_read;
struct wx_buf;
int es_projector_read_begin(struct es_projector *p, struct es_read **out);
/* Ends the transaction and frees r. Accepts NULL. */
void es_projector_read_end(struct es_projector *p, struct es_read *r);
/* Prepares `tmpl` against the live set of consumer `name`; position_out
 * (may be NULL) gets that consumer's checkpoint in the same snapshot. */
int es_projector_prepare_live(struct es_read *r, const char *name, const char *tmpl,
                              struct rm_stmt **st_out, struct es_position *position_out);
/* One row of a page as JSON. */
typedef int (*es_page_row_fn)(struct rm_stmt *st, struct wx_buf *out);
/* A page of consumer `name`'s rows ordered by a text id, the rows' column
 * 0: `tmpl` selects those after ?1 (the cursor, "" from the start) up to
 * ?2 (limit + 1, to know whether more follow). Writes
 * {"data":[...],"nextCursor":"i<last id>"|null}; after may be NULL. */
int es_projector_id_page(struct es_projector *p, const char *name, const char *tmpl,
                         const char *after, size_t limit, es_page_row_fn row, struct wx_buf *out);
/* The consumer's checkpoint in the read transaction's snapshot. */
int es_read_position(struct es_read *r, const char *name, struct es_position *position_out);

#endif
