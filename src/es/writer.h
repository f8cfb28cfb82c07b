/*
 * The single writer (DESIGN.md §2). One thread owns every write on a node:
 * it takes up to WX_WRITER_BATCH_COMMANDS_MAX queued commands, decides each
 * against in-memory state (so commands of one batch see each other's
 * effects), appends all their events and idempotency records in ONE store
 * transaction with one fsync, and only then completes them. A failed commit
 * fails every command of the batch that had something to write and throws
 * their staged state away. A commit that finds another writer (another
 * node on PostgreSQL) appended first does not fail: the commands that lost
 * the race leave the batch, the rest commit, and those are decided again
 * on fresh state (at most WX_WRITER_CONFLICT_RETRIES_MAX times, then 409).
 *
 * A command is a handler plus a payload. The handler runs on the writer
 * thread, loads aggregates through es_decide_load, stages events with
 * es_decide_emit and answers with es_decide_reply or es_decide_reject.
 * Idempotency-Key handling is the writer's, not the handler's.
 *
 * Ownership: the submitter owns the command and its arena; the writer
 * writes the results into them and calls `complete` exactly once, on the
 * writer thread. After `complete` the writer never touches the command.
 */
#ifndef WALLEX_ES_WRITER_H
#define WALLEX_ES_WRITER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/uuid.h"
#include "es/aggregate.h"
#include "es/event.h"
#include "es/outcome.h"
#include "obs/metrics.h"

struct es_store;
struct es_writer;
struct es_decide_ctx;
struct es_command;

typedef void (*es_command_fn)(struct es_decide_ctx *ctx, struct es_command *cmd);

struct es_command {
    /* Set by the submitter. */
    es_command_fn handle;
    void *payload;
    struct wx_arena *arena; /* results are allocated here, on the writer thread:
                               nobody else may use it until `complete` */
    const char *idem_key;   /* NULL without Idempotency-Key */
    const char *request;    /* method, path and body, for idempotency */
    size_t request_len;
    const char *correlation_id;
    const char *traceparent; /* NULL when absent */
    /* Who asks (DESIGN.md §14): every event of the command names them in
     * its metadata ("actor", "tokenId"). NULL when the application knows
     * no caller (authentication off, work of its own). */
    const char *actor;
    const char *token_id;
    /* The application's view of the caller, opaque to the core: handlers
     * that decide who may do what read it. NULL when none. */
    const void *principal;
    char command_id[WX_UUID_STR_BYTES];
    void (*complete)(struct es_command *cmd);
    void *complete_ctx;
    /* Optional: on the writer thread once the command's events are
     * durable, before `complete` (so before its client hears back), for
     * an effect outside the log that must already hold by then (a revoked
     * token refused from the next request). Not called when the command
     * wrote no event, failed, or was answered from an idempotency record. */
    void (*committed)(struct es_command *cmd);
    /* Optional: on the writer thread, before `complete`, after a run of
     * the handler whose events did not reach the log: it rejected or
     * failed, its batch did not commit, or it lost a version race to
     * another node (then this follows before it is decided again, on
     * fresh state, in the batch's next round). Each run of the handler is
     * followed by exactly one of `committed` and `discarded`; neither
     * follows a command answered without running it (an idempotency
     * replay, a key in use). For a domain that keeps state of its own in
     * the writer's memory as its handler stages events (an index over many
     * aggregates, which the writer's per-stream overlay cannot hold): what
     * was staged for this command did not happen. */
    void (*discarded)(struct es_command *cmd);
    /* Set by the writer before `discarded`: the run's events were sent in
     * a commit that failed, so they may be in the log after all (a commit
     * whose answer was lost). False when they surely are not: the run
     * rejected or failed, or the store named it the loser of a race. */
    bool may_be_in_log;

    /* Set by the writer before `complete`. */
    int status;
    const struct es_outcome *outcome;
    const char *body;
    size_t body_len;
    const char *location; /* NULL when none */
    bool has_position;
    struct es_position position; /* of the command's last event */
    bool replayed;               /* answered from an idempotency record */

    struct es_command *next; /* writer's queue link */
};

struct es_writer_config {
    struct es_store *store;
    const struct wx_clock *clock;
    int64_t idem_ttl_ms;
    size_t cache_streams_max;
    int64_t snapshot_every; /* events per stream between snapshots; 0: default */
    /* Send the version of every stream a command read but did not append
     * to along with its batch, so the store refuses the command if another
     * writer changed the stream since (a rejection on stale state is
     * decided again too). Always on for a shared store (es_store_shared);
     * tests set it for the memory store. */
    bool check_reads;
    /* Called on the writer thread after every successful commit, before the
     * commands complete (the projector's wake-up). May be NULL. */
    void (*on_commit)(void *ctx);
    void *on_commit_ctx;
};

/* Counters for metrics and tests; read with atomic loads. */
struct es_writer_stats {
    atomic_uint_fast64_t batches;
    atomic_uint_fast64_t commands;
    atomic_uint_fast64_t events;
    atomic_uint_fast64_t commit_failures;
    atomic_uint_fast64_t conflicts;        /* commits that found a lost version race */
    atomic_uint_fast64_t conflict_retries; /* commands decided again after one */
    atomic_uint_fast64_t catch_up_events;  /* read to bring stale cached states up */
    atomic_uint_fast64_t idem_replays;
    atomic_uint_fast64_t cache_hits;
    atomic_uint_fast64_t cache_misses;
    atomic_uint_fast64_t queue_depth;
    atomic_uint_fast64_t idem_misses; /* keyed commands decided afresh */
    /* Commands by outcome, indexed by es_outcome_slot (every registered
     * table's rows: the writer starts after the domains registered). */
    atomic_uint_fast64_t *outcomes;
    size_t outcomes_len;
    struct wx_hist batch_commands;
    struct wx_hist commit_us;
};

/* Appends the writer's metrics in the Prometheus text format. */
void es_writer_metrics(const struct es_writer *writer, struct wx_buf *b);

int es_writer_start(const struct es_writer_config *config, struct es_writer **writer_out);
/* Completes everything queued, stops the thread and frees the writer.
 * Accepts NULL. */
void es_writer_stop(struct es_writer *writer);
/* Queues a command: 0, WX_ERR_FULL (queue at its bound) or WX_ERR_CLOSED.
 * On an error `complete` is not called. */
int es_writer_submit(struct es_writer *writer, struct es_command *cmd);
const struct es_writer_stats *es_writer_stats(const struct es_writer *writer);

/* ---- for command handlers, on the writer thread only ---- */

/* The aggregate's current state, including what earlier commands of this
 * batch staged. The pointer (to state_bytes_max bytes) is valid until the
 * handler returns; `version` is 0 for a stream that does not exist. */
int es_decide_load(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                   const char *stream_id, const void **state_out, int64_t *version_out);
/* Like es_decide_load for a stream the handler knows cannot exist yet (its
 * id was just generated): a fresh state, no store reads. The append still
 * expects version 0, so were the stream there after all, the commit would
 * refuse it rather than overwrite anything. */
int es_decide_load_new(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                       const char *stream_id, const void **state_out);
/* Stages one event on a stream this command loaded, with the stream's state
 * after it (state_bytes_max big, of which its type's state_bytes are
 * copied). The event is written with the type's current schema version;
 * data is copied. WX_ERR_TOO_LARGE past WX_COMMAND_EVENTS_MAX events or
 * WX_EVENT_DATA_BYTES_MAX bytes of data. */
struct es_event_type;
int es_decide_emit(struct es_decide_ctx *ctx, const char *stream_id,
                   const struct es_event_type *type, const char *data, size_t data_len,
                   const void *state_after);
/* The aggregate as it was at `version` (1..its current version), folded
 * from the store, for handlers that decide on history (a rollback).
 * WX_ERR_BUSY when that version is not committed yet (an earlier command
 * of this batch wrote it): the command then answers 503 and a retry after
 * the commit succeeds. The state lives until the handler returns. */
int es_decide_fold_at(struct es_decide_ctx *ctx, const struct es_aggregate_type *type,
                      const char *stream_id, int64_t version, const void **state_out);
/* Memory that lives until the handler returns (the batch's arena), zeroed,
 * aligned for any type; NULL when out of memory. */
void *es_decide_alloc(struct es_decide_ctx *ctx, size_t bytes);
/* Time of this command's events. */
int64_t es_decide_now_ms(const struct es_decide_ctx *ctx);
/* The command's actor (es_command.actor), NULL when none: what its
 * events' metadata name, for states that record who changed them. */
const char *es_decide_actor(const struct es_decide_ctx *ctx);
/* The command's principal (es_command.principal), NULL when none. */
const void *es_decide_principal(const struct es_decide_ctx *ctx);
/* The success answer; body is copied into the command's arena. */
void es_decide_reply(struct es_decide_ctx *ctx, int status, const char *body, size_t body_len,
                     const char *location);
/* A system failure inside the handler (the store could not be read, out of
 * memory): the command fails with 503 or 500, stages nothing and is not
 * remembered under its Idempotency-Key, so a retry can succeed. */
void es_decide_fail(struct es_decide_ctx *ctx, int err);
/* Whether the command has failed: es_decide_fail, or a call that could not
 * do its work (es_decide_reply out of memory for the answer). Its events
 * will not be sent; a handler that changed state of its own must undo it. */
bool es_decide_failed(const struct es_decide_ctx *ctx);
/* A business rejection: stages nothing, answers problem JSON. Remembered
 * under the command's Idempotency-Key like a success, unless its status is
 * 400 (API.md: validation failures are never remembered). */
void es_decide_reject(struct es_decide_ctx *ctx, const struct es_outcome *outcome,
                      const char *detail);
/* The same with more members in the problem JSON (es_problem_json_ext). */
void es_decide_reject_ext(struct es_decide_ctx *ctx, const struct es_outcome *outcome,
                          const char *detail, const char *extra);

#endif
