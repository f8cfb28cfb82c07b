/*
 * The token rules as pure functions: no I/O, no clock reads, no
 * allocation. Tested in tests/unit/auth/test_token.c.
 */
#include <assert.h>
#include <string.h>

#include "auth/token.h"

void token_state_init(void *state)
{
    memset(state, 0, sizeof(struct token_state));
}

void token_evolve(struct token_state *s, const struct token_event *e)
{
    switch (e->kind) {
    case TOKEN_ISSUED: {
        assert(!s->exists);
        size_t n = strlen(e->subject);
        assert(n <= WX_ID_BYTES_MAX);
        s->exists = true;
        s->role = e->role;
        memcpy(s->subject, e->subject, n + 1);
        memcpy(s->hash, e->hash, sizeof(s->hash));
        s->expires_at_ms = e->expires_at_ms;
        s->created_at_ms = e->occurred_at_ms;
        break;
    }
    case TOKEN_REVOKED:
        assert(s->exists && !s->revoked);
        s->revoked = true;
        break;
    }
    s->updated_at_ms = e->occurred_at_ms;
}

void token_decide(const struct token_state *s, const struct token_command *c, int64_t now_ms,
                  struct token_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->outcome = ES_OK;
    out->event.kind = c->kind == TOKEN_CMD_ISSUE ? TOKEN_ISSUED : TOKEN_REVOKED;
    out->event.token_id = c->token_id;
    out->event.occurred_at_ms = now_ms;
    if (c->kind == TOKEN_CMD_ISSUE) {
        /* The id is a fresh UUIDv7: taken only by a bug, or by a replayed
         * command without its Idempotency-Key. */
        if (s->exists) {
            out->outcome = ES_version_conflict;
            out->detail = "a token with this id exists";
            return;
        }
        out->event.role = c->role;
        out->event.subject = c->subject;
        memcpy(out->event.hash, c->hash, sizeof(out->event.hash));
        out->event.expires_at_ms = c->expires_at_ms;
        out->events_len = 1;
        return;
    }
    if (!s->exists) {
        out->outcome = AUTH_token_not_found;
        out->detail = "no token with this tokenId";
        return;
    }
    /* Revoking twice is one revocation: DELETE is idempotent. */
    out->events_len = s->revoked ? 0 : 1;
}
