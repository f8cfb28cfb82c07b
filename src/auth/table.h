/*
 * Every token this node knows, in memory, for the check every request
 * makes: one map lookup by id, a constant-time comparison of the secret's
 * hash, the role and expiry, and for user tokens the rate limit. HTTP
 * threads read it under a read lock; the writer thread (a change it just
 * committed) and the refresher (changes read from the "tokens" read
 * model, which any node's projector may have written) update it under the
 * write lock, each change only if it is newer than what the table holds,
 * so a late read of an old row never undoes a revocation.
 *
 * The rate limit is a token bucket kept as GCRA: one atomic timestamp
 * (the "theoretical arrival time") per token, moved forward by one
 * interval per request with a compare-and-swap; a request that would move
 * it more than a burst ahead of now is refused, and the difference is how
 * long to wait. No lock is taken for it beyond the table's read lock.
 *
 * Ownership: the table owns its entries; check copies what it returns.
 */
#ifndef WALLEX_AUTH_TABLE_H
#define WALLEX_AUTH_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/token.h"

/* Tokens one table holds, revoked ones included (about 200 bytes each):
 * past it new tokens are refused (422 too_many_tokens). Tokens are issued
 * by operators; a million is far past any use we know of. */
#define AUTH_TABLE_TOKENS_MAX (1024 * 1024)

/* A user token's requests (API.md: 1,000 a second, bursts of 2,000;
 * --rate-limit-user). Admin and reader tokens are not limited. */
#define AUTH_USER_RATE_PER_S_DEFAULT 1000
#define AUTH_USER_BURST_DEFAULT 2000

struct auth_table;

struct auth_table_config {
    int64_t user_rate_per_s; /* 0: user tokens are not limited */
    int64_t user_burst;      /* requests at once from rest; at least 1 */
    size_t tokens_max;       /* 0: AUTH_TABLE_TOKENS_MAX */
};

int auth_table_new(const struct auth_table_config *config, struct auth_table **out);
/* Accepts NULL. */
void auth_table_free(struct auth_table *t);

/* Takes the token's state at `version` (its stream's version) unless the
 * table holds that version or a later one; a revocation is never undone.
 * WX_ERR_FULL past tokens_max, WX_ERR_NOMEM. Any thread. */
int auth_table_apply(struct auth_table *t, const char *token_id, const struct token_state *s,
                     int64_t version);
/* Tokens held, revoked and expired ones included. */
size_t auth_table_len(struct auth_table *t);
bool auth_table_full(struct auth_table *t);

enum auth_verdict {
    AUTH_OK,
    AUTH_UNKNOWN,    /* no token with this id */
    AUTH_BAD_SECRET, /* the id exists, the secret is not its */
    AUTH_REVOKED,
    AUTH_EXPIRED,
    AUTH_LIMITED, /* a user token over its rate: *retry_after_ns says how long */
};

/* The check of one request's token (its id and the hash of the secret it
 * presented) at wall-clock now_ms (expiry) and monotonic now_ns (the rate
 * limit). On AUTH_OK and AUTH_LIMITED *out is the token's principal. Any
 * thread; takes the read lock only. */
enum auth_verdict auth_table_check(struct auth_table *t, const char *token_id,
                                   const unsigned char hash[AUTH_HASH_BYTES], int64_t now_ms,
                                   int64_t now_ns, struct auth_principal *out,
                                   int64_t *retry_after_ns);

#endif
