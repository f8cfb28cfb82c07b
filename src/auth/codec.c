/*
 * Token events as stored JSON and the Token resource. A stored event holds
 * the secret's SHA-256 in hex, never the secret; the resource shows
 * neither, except the token's text in the first answer to its issue.
 */
#include <stdio.h>
#include <string.h>

#include "auth/token.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/jflat.h"

static const struct es_event_type type_issued = {"TokenIssued", 1, NULL};
static const struct es_event_type type_revoked = {"TokenRevoked", 1, NULL};

static const struct es_event_type *const types_by_kind[] = {
    [TOKEN_ISSUED] = &type_issued,
    [TOKEN_REVOKED] = &type_revoked,
};

const struct es_event_type *const token_event_types[] = {&type_issued, &type_revoked, NULL};

const struct es_event_type *token_event_type(enum token_event_kind kind)
{
    return types_by_kind[kind];
}

void token_event_encode(struct wx_buf *b, const struct token_event *e)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "tokenId", &first);
    wx_buf_json_str(b, e->token_id);
    if (e->kind == TOKEN_ISSUED) {
        char hex[2 * AUTH_HASH_BYTES + 1];
        auth_hash_hex(e->hash, hex);
        wx_buf_json_key(b, "role", &first);
        wx_buf_json_str(b, auth_role_name(e->role));
        wx_buf_json_key(b, "subject", &first);
        wx_buf_json_str(b, e->subject);
        wx_buf_json_key(b, "secretSha256", &first);
        wx_buf_json_str(b, hex);
        wx_buf_json_key(b, "expiresAtMs", &first);
        if (e->expires_at_ms > 0)
            wx_buf_add_i64(b, e->expires_at_ms);
        else
            wx_buf_adds(b, "null");
    }
    wx_buf_addc(b, '}');
}

int token_event_decode(const struct es_event *ev, char *text, size_t text_bytes,
                       struct token_event *e)
{
    memset(e, 0, sizeof(*e));
    if (strcmp(ev->type, type_issued.name) == 0)
        e->kind = TOKEN_ISSUED;
    else if (strcmp(ev->type, type_revoked.name) == 0)
        e->kind = TOKEN_REVOKED;
    else
        return WX_ERR_CORRUPT;
    struct wx_jflat fields;
    const struct wx_jflat *o = &fields;
    if (ev->data_len > TOKEN_EVENT_DATA_BYTES_MAX || ev->data_len >= text_bytes ||
        wx_jflat_parse(ev->data, ev->data_len, text, text_bytes, &fields) != 0)
        return WX_ERR_CORRUPT;
    e->occurred_at_ms = ev->occurred_at_ms;
    e->token_id = wx_jflat_str(o, "tokenId", WX_ID_BYTES_MAX);
    bool bad = e->token_id == NULL;
    if (e->kind == TOKEN_ISSUED) {
        e->subject = wx_jflat_str(o, "subject", WX_ID_BYTES_MAX);
        bad |= e->subject == NULL;
        bad |= !auth_role_parse(wx_jflat_str(o, "role", 16), &e->role);
        bad |= !auth_hash_unhex(wx_jflat_str(o, "secretSha256", 2 * AUTH_HASH_BYTES), e->hash);
        const struct wx_jflat_field *x = wx_jflat_get(o, "expiresAtMs");
        if (x == NULL || (x->type != WX_JFLAT_NULL && x->type != WX_JFLAT_INT))
            bad = true;
        else if (x->type == WX_JFLAT_INT)
            bad |= (e->expires_at_ms = x->i64) <= 0;
    }
    return bad ? WX_ERR_CORRUPT : 0;
}

static int token_evolve_stored(void *state, const struct es_event *ev)
{
    struct token_state *s = state;
    char text[TOKEN_EVENT_DATA_BYTES_MAX + 1];
    struct token_event e;
    int err = token_event_decode(ev, text, sizeof(text), &e);
    if (err)
        return err;
    /* The same facts the decider guarantees, checked on the way back in. */
    if ((e.kind == TOKEN_ISSUED) == s->exists || s->revoked)
        return WX_ERR_CORRUPT;
    token_evolve(s, &e);
    return 0;
}

const struct es_aggregate_type token_aggregate = {
    .name = "token",
    .category = TOKEN_CATEGORY,
    .state_bytes_max = sizeof(struct token_state),
    .init = token_state_init,
    .evolve_stored = token_evolve_stored,
};

static void key_time(struct wx_buf *b, const char *key, int64_t ms, bool *first)
{
    wx_buf_json_key(b, key, first);
    if (ms <= 0) {
        wx_buf_adds(b, "null");
        return;
    }
    char at[WX_RFC3339_BYTES];
    wx_time_format(ms, at);
    wx_buf_json_str(b, at);
}

void token_json(struct wx_buf *b, const char *token_id, const struct token_state *s,
                bool issued, const char *token)
{
    bool first = true;
    wx_buf_addc(b, '{');
    wx_buf_json_key(b, "tokenId", &first);
    wx_buf_json_str(b, token_id);
    if (issued) {
        wx_buf_json_key(b, "token", &first);
        if (token != NULL)
            wx_buf_json_str(b, token);
        else
            wx_buf_adds(b, "null");
    }
    wx_buf_json_key(b, "role", &first);
    wx_buf_json_str(b, auth_role_name(s->role));
    wx_buf_json_key(b, "subject", &first);
    wx_buf_json_str(b, s->subject);
    key_time(b, "createdAt", s->created_at_ms, &first);
    key_time(b, "expiresAt", s->expires_at_ms, &first);
    if (!issued) {
        wx_buf_json_key(b, "revoked", &first);
        wx_buf_adds(b, s->revoked ? "true" : "false");
    }
    wx_buf_addc(b, '}');
}

void token_stream_id(const char *token_id, char out[WX_STREAM_ID_BYTES_MAX + 1])
{
    snprintf(out, WX_STREAM_ID_BYTES_MAX + 1, TOKEN_CATEGORY ":%s", token_id);
}
