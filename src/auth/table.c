/* The in-memory token table and the rate limit; see table.h. */
#include "auth/table.h"

#include <assert.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/map.h"

struct entry {
    unsigned char hash[AUTH_HASH_BYTES];
    enum auth_role role;
    bool revoked;
    int64_t expires_at_ms; /* 0: never */
    int64_t version;
    char subject[WX_ID_BYTES_MAX + 1];
    char token_id[WX_UUID_STR_BYTES];
    /* GCRA: when the token's next request is due at the sustained rate
     * (monotonic ns); requests may run up to a burst ahead of it. */
    _Atomic int64_t tat_ns;
};

struct auth_table {
    pthread_rwlock_t lock;
    struct wx_map map; /* token id -> struct entry; under lock */
    size_t tokens_max;
    int64_t interval_ns; /* between a user token's requests at its rate; 0: no limit */
    int64_t burst_ns;    /* how far ahead of now the bucket may run */
};

int auth_table_new(const struct auth_table_config *config, struct auth_table **out)
{
    struct auth_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return WX_ERR_NOMEM;
    /* Writers are rare and short; preferring them keeps a steady stream
     * of readers from holding a revocation back. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&t->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    wx_map_init(&t->map);
    t->tokens_max = config->tokens_max > 0 ? config->tokens_max : AUTH_TABLE_TOKENS_MAX;
    if (config->user_rate_per_s > 0) {
        int64_t burst = config->user_burst > 0 ? config->user_burst : 1;
        t->interval_ns = 1000000000 / config->user_rate_per_s;
        if (t->interval_ns == 0)
            t->interval_ns = 1;
        t->burst_ns = t->interval_ns * burst;
    }
    *out = t;
    return 0;
}

void auth_table_free(struct auth_table *t)
{
    if (t == NULL)
        return;
    size_t cursor = 0;
    const char *key;
    void *value;
    while (wx_map_next(&t->map, &cursor, &key, &value))
        free(value);
    wx_map_free(&t->map);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

static void entry_set(struct entry *e, const struct token_state *s, int64_t version)
{
    memcpy(e->hash, s->hash, sizeof(e->hash));
    e->role = s->role;
    e->revoked |= s->revoked; /* final: a late row never undoes it */
    e->expires_at_ms = s->expires_at_ms;
    e->version = version;
    memcpy(e->subject, s->subject, sizeof(e->subject));
}

int auth_table_apply(struct auth_table *t, const char *token_id, const struct token_state *s,
                     int64_t version)
{
    assert(s->exists && version >= 1);
    assert(strlen(token_id) < WX_UUID_STR_BYTES);
    int err = 0;
    pthread_rwlock_wrlock(&t->lock);
    struct entry *e = wx_map_get(&t->map, token_id);
    if (e != NULL) {
        if (version > e->version)
            entry_set(e, s, version);
        goto out_unlock;
    }
    if (t->map.len >= t->tokens_max) {
        err = WX_ERR_FULL;
        goto out_unlock;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        err = WX_ERR_NOMEM;
        goto out_unlock;
    }
    memcpy(e->token_id, token_id, strlen(token_id) + 1);
    atomic_init(&e->tat_ns, 0);
    entry_set(e, s, version);
    if (wx_map_put(&t->map, token_id, e) != 0) {
        free(e);
        err = WX_ERR_NOMEM;
    }
out_unlock:
    pthread_rwlock_unlock(&t->lock);
    return err;
}

size_t auth_table_len(struct auth_table *t)
{
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->map.len;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

bool auth_table_full(struct auth_table *t)
{
    return auth_table_len(t) >= t->tokens_max;
}

/* One request against the token's bucket: 0 when it may go, else how long
 * (ns) until it could. */
static int64_t rate_take(const struct auth_table *t, struct entry *e, int64_t now_ns)
{
    int64_t tat = atomic_load_explicit(&e->tat_ns, memory_order_relaxed);
    int64_t next;
    do {
        next = (tat > now_ns ? tat : now_ns) + t->interval_ns;
        if (next - now_ns > t->burst_ns)
            return next - now_ns - t->burst_ns;
    } while (!atomic_compare_exchange_weak_explicit(&e->tat_ns, &tat, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

enum auth_verdict auth_table_check(struct auth_table *t, const char *token_id,
                                   const unsigned char hash[AUTH_HASH_BYTES], int64_t now_ms,
                                   int64_t now_ns, struct auth_principal *out,
                                   int64_t *retry_after_ns)
{
    enum auth_verdict v = AUTH_OK;
    pthread_rwlock_rdlock(&t->lock);
    struct entry *e = wx_map_get(&t->map, token_id);
    if (e == NULL)
        v = AUTH_UNKNOWN;
    else if (CRYPTO_memcmp(e->hash, hash, AUTH_HASH_BYTES) != 0)
        v = AUTH_BAD_SECRET;
    else if (e->revoked)
        v = AUTH_REVOKED;
    else if (e->expires_at_ms > 0 && now_ms >= e->expires_at_ms)
        v = AUTH_EXPIRED;
    if (v == AUTH_OK) {
        out->role = e->role;
        memcpy(out->subject, e->subject, sizeof(out->subject));
        memcpy(out->token_id, e->token_id, sizeof(out->token_id));
        if (e->role == AUTH_ROLE_USER && t->interval_ns > 0) {
            *retry_after_ns = rate_take(t, e, now_ns);
            if (*retry_after_ns > 0)
                v = AUTH_LIMITED;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return v;
}
