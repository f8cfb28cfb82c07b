/*
 * Tokens as a small domain of their own (DESIGN.md §11 and §14): the
 * stream "token:<tokenId>" holds TokenIssued {tokenId, role, subject,
 * secretSha256, expiresAtMs|null} and at most one TokenRevoked {tokenId}.
 * Pure deciders and evolve here (decide.c), events and the resource
 * (codec.c), the writer-thread handler (commands.c), the "tokens" read
 * model every node loads its table from (projections.c), the routes
 * (routes.c).
 */
#ifndef WALLEX_AUTH_TOKEN_H
#define WALLEX_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/buf.h"
#include "es/aggregate.h"
#include "es/writer.h"
#include "http/http.h"

#define TOKEN_CATEGORY "token"
/* A stored token event's data: an id, a role, a subject (64), a hex hash
 * (64) and a time, with keys: under 300 bytes. */
#define TOKEN_EVENT_DATA_BYTES_MAX 512

struct auth_table;

struct token_state {
    bool exists;
    bool revoked;
    enum auth_role role;
    char subject[WX_ID_BYTES_MAX + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    int64_t expires_at_ms; /* 0: never */
    int64_t created_at_ms;
    int64_t updated_at_ms;
};

enum token_event_kind {
    TOKEN_ISSUED,
    TOKEN_REVOKED,
};

struct token_event {
    enum token_event_kind kind;
    const char *token_id;
    enum auth_role role;    /* issued */
    const char *subject;    /* issued */
    unsigned char hash[AUTH_HASH_BYTES]; /* issued */
    int64_t expires_at_ms;  /* issued; 0: never */
    int64_t occurred_at_ms;
};

enum token_command_kind {
    TOKEN_CMD_ISSUE,
    TOKEN_CMD_REVOKE,
};

struct token_command {
    enum token_command_kind kind;
    const char *token_id; /* generated for an issue */
    enum auth_role role;
    const char *subject;
    unsigned char hash[AUTH_HASH_BYTES];
    int64_t expires_at_ms; /* 0: never */
    /* The token's text, for an issue's first answer only: never stored,
     * never in an idempotency record (auth/commands.c). */
    const char *token;
    /* Where the change goes once committed (NULL: nowhere, offline). */
    struct auth_table *table;
    /* Written on the writer thread: the token after the command, for the
     * committed hook. */
    struct token_state after;
    int64_t version_after;
};

struct token_decision {
    const struct es_outcome *outcome; /* ES_OK or the rule broken */
    const char *detail;
    struct token_event event;
    size_t events_len; /* 0: revoking a revoked token changes nothing */
};

void token_state_init(void *state);
/* Pure: the event must be valid for the state (deciders only make such). */
void token_evolve(struct token_state *s, const struct token_event *e);
void token_decide(const struct token_state *s, const struct token_command *c, int64_t now_ms,
                  struct token_decision *out);

/* ---- codec.c ---- */

const struct es_event_type *token_event_type(enum token_event_kind kind);
extern const struct es_event_type *const token_event_types[];
void token_event_encode(struct wx_buf *b, const struct token_event *e);
/* Decodes a stored event; strings go into text (ev->data_len + 1 bytes at
 * least). WX_ERR_CORRUPT when it does not read. */
int token_event_decode(const struct es_event *ev, char *text, size_t text_bytes,
                       struct token_event *e);
extern const struct es_aggregate_type token_aggregate;

/* The Token resource of API.md: tokenId, role, subject, createdAt,
 * expiresAt; with `token` (its text, or null where it is not known: what
 * an idempotency record keeps) for the answer to an issue, with `revoked`
 * for listings. */
void token_json(struct wx_buf *b, const char *token_id, const struct token_state *s, bool issued,
                const char *token);
void token_stream_id(const char *token_id, char out[WX_STREAM_ID_BYTES_MAX + 1]);

/* ---- commands.c ---- */

/* On the writer thread: runs a struct token_command (the payload). */
void token_run_command(struct es_decide_ctx *ctx, struct es_command *cmd);
/* es_command.committed of token commands: the change into the payload's
 * table, and an issue's token into its first answer. */
void token_committed(struct es_command *cmd);
/* Issues a token made by auth_token_new through the writer and waits for
 * it (serve's first start, `wallex token create --data-dir`). actor names
 * the issuer in the event's metadata; table (may be NULL) gets the token
 * at once. */
int token_issue_wait(struct es_writer *writer, struct auth_table *table, enum auth_role role,
                     const char *subject, int64_t expires_at_ms, const char *actor,
                     const char *token_id, const unsigned char hash[AUTH_HASH_BYTES]);

/* ---- projections.c: the "tokens" read model ---- */

struct es_projector;
extern const struct es_consumer token_consumer;
extern const struct es_consumer *const token_consumers[];

/* A page of tokens ordered by id (UUIDv7: issue order), ids after `after`. */
int token_query_list(struct es_projector *p, const char *after, size_t limit,
                     struct wx_buf *out);
/* Every token row changed after *cursor (a read-model checkpoint; start
 * for all), in one read transaction: fn(ctx, id, state, version) each,
 * then *cursor is that transaction's checkpoint, so no change is missed
 * or seen twice between calls. */
typedef int (*token_row_fn)(void *ctx, const char *token_id, const struct token_state *s,
                            int64_t version);
int token_query_changes(struct es_projector *p, struct es_position *cursor, token_row_fn fn,
                        void *ctx);

/* ---- routes.c ---- */

extern const struct http_route token_routes[];

#endif
