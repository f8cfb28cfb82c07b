/*
 * Token commands on the writer thread: load the token, run the decider
 * (auth/decide.c), stage its event and answer. What the handler answers is
 * what an Idempotency-Key record keeps, so an issue answers its token as
 * null there; the committed hook, once the event is durable, puts the
 * token's text into the first answer alone and the change into the
 * node's table, before the client hears back.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "auth/table.h"
#include "auth/token.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/uuid.h"
#include "obs/log.h"

static int run(struct es_decide_ctx *ctx, struct token_command *c)
{
    char stream[WX_STREAM_ID_BYTES_MAX + 1];
    token_stream_id(c->token_id, stream);
    const void *loaded;
    int64_t version = 0;
    /* An issued token's id is a fresh UUIDv7: nothing to read. */
    int err = c->kind == TOKEN_CMD_ISSUE
                  ? es_decide_load_new(ctx, &token_aggregate, stream, &loaded)
                  : es_decide_load(ctx, &token_aggregate, stream, &loaded, &version);
    if (err)
        return err;
    struct token_state s;
    memcpy(&s, loaded, sizeof(s));
    struct token_decision d;
    token_decide(&s, c, es_decide_now_ms(ctx), &d);
    if (d.outcome != ES_OK) {
        es_decide_reject(ctx, d.outcome, d.detail);
        return 0;
    }
    if (d.events_len > 0) {
        token_evolve(&s, &d.event);
        struct wx_buf b;
        wx_buf_init(&b);
        token_event_encode(&b, &d.event);
        assert(!wx_buf_ok(&b) || b.len <= TOKEN_EVENT_DATA_BYTES_MAX);
        err = wx_buf_ok(&b) ? es_decide_emit(ctx, stream, token_event_type(d.event.kind), b.data,
                                             b.len, &s)
                            : WX_ERR_NOMEM;
        wx_buf_free(&b);
        if (err)
            return err;
        version++;
    }
    c->after = s;
    c->version_after = version;
    if (c->kind == TOKEN_CMD_REVOKE) {
        es_decide_reply(ctx, 204, "", 0, NULL);
        return 0;
    }
    struct wx_buf b;
    wx_buf_init(&b);
    token_json(&b, c->token_id, &s, true, NULL);
    char location[32 + WX_ID_BYTES_MAX];
    snprintf(location, sizeof(location), "/admin/tokens/%s", c->token_id);
    if (wx_buf_ok(&b))
        es_decide_reply(ctx, 201, b.data, b.len, location);
    else
        err = WX_ERR_NOMEM;
    wx_buf_free(&b);
    return err;
}

void token_run_command(struct es_decide_ctx *ctx, struct es_command *cmd)
{
    int err = run(ctx, cmd->payload);
    if (err)
        es_decide_fail(ctx, err);
}

void token_committed(struct es_command *cmd)
{
    struct token_command *c = cmd->payload;
    if (c->table != NULL) {
        int err = auth_table_apply(c->table, c->token_id, &c->after, c->version_after);
        if (err) /* the refresher will bring it from the read model */
            wx_logf(WX_LOG_ERROR, "auth: token %s not in the table yet: %s", c->token_id,
                    wx_strerror(err));
    }
    if (c->kind != TOKEN_CMD_ISSUE || c->token == NULL)
        return;
    struct wx_buf b;
    wx_buf_init(&b);
    token_json(&b, c->token_id, &c->after, true, c->token);
    char *body = wx_buf_ok(&b) ? wx_arena_strndup(cmd->arena, b.data, b.len) : NULL;
    if (body != NULL) { /* without memory the answer keeps "token":null */
        cmd->body = body;
        cmd->body_len = b.len;
    }
    wx_buf_free(&b);
}

/* ---- issuing without an HTTP request ---- */

struct wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void wait_complete(struct es_command *cmd)
{
    struct wait *w = cmd->complete_ctx;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int token_issue_wait(struct es_writer *writer, struct auth_table *table, enum auth_role role,
                     const char *subject, int64_t expires_at_ms, const char *actor,
                     const char *token_id, const unsigned char hash[AUTH_HASH_BYTES])
{
    struct token_command c = {
        .kind = TOKEN_CMD_ISSUE,
        .token_id = token_id,
        .role = role,
        .subject = subject,
        .expires_at_ms = expires_at_ms,
        .table = table,
    };
    memcpy(c.hash, hash, sizeof(c.hash));
    struct wx_arena arena;
    wx_arena_init(&arena);
    struct es_command cmd = {
        .handle = token_run_command,
        .payload = &c,
        .arena = &arena,
        .actor = actor,
        .complete = wait_complete,
        .committed = token_committed,
    };
    struct wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    cmd.complete_ctx = &w;
    int err = wx_uuid7(wx_clock_now_ms(&wx_clock_system), cmd.command_id);
    if (!err)
        err = es_writer_submit(writer, &cmd);
    if (!err) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        if (cmd.status != 201)
            err = cmd.status == 503 ? WX_ERR_IO : WX_ERR_INVALID;
    }
    wx_arena_release(&arena);
    return err;
}
