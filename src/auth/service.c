/*
 * The authenticator, the refresher and the first start; see service.h.
 */
#include "auth/service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proj/projector.h"
#include "store/store.h"

/* Why requests were refused, for /metrics. */
enum refusal {
    REFUSED_MISSING,
    REFUSED_INVALID, /* malformed, unknown, wrong secret */
    REFUSED_REVOKED,
    REFUSED_EXPIRED,
    REFUSED_LIMITED,
    REFUSED_FORBIDDEN,
    REFUSED_LOADING,
    REFUSALS,
};
static const char *const refusal_names[REFUSALS] = {
    "missing", "invalid", "revoked", "expired", "rate_limited", "forbidden", "loading",
};

struct auth_service {
    struct es_store *store;
    struct es_projector *projector;
    struct es_writer *writer;
    const struct wx_clock *clock;
    struct auth_table *table;
    struct http_authenticator authenticator;
    int64_t refresh_ms;
    int64_t start_wait_ms;
    struct es_position start_head; /* the log's head at start: ready once read */
    atomic_bool ready;

    /* The refresher's; `cursor` is its thread's alone once it runs. */
    struct es_position cursor;
    pthread_t thread;
    bool started;
    pthread_mutex_t lock; /* guards stopping and first_start_dir */
    pthread_cond_t cond;
    bool stopping;
    /* A first start asked for before the table was ready: the refresher
     * makes it once it is (malloc'd data directory; NULL when none). */
    char *first_start_dir;

    atomic_uint_fast64_t refused[REFUSALS];
    atomic_uint_fast64_t refresh_failures;
};

/* ---- the check of every request ---- */

/* Which roles may use which class of route (http_access): API.md's roles
 * as data. */
static const bool allowed[AUTH_ROLES][HTTP_ACCESS_OBSERVE + 1] = {
    [AUTH_ROLE_ADMIN] = {[HTTP_ACCESS_ADMIN] = true,
                         [HTTP_ACCESS_OPEN] = true,
                         [HTTP_ACCESS_QUERY] = true,
                         [HTTP_ACCESS_COMMAND] = true,
                         [HTTP_ACCESS_OBSERVE] = true},
    [AUTH_ROLE_USER] =
        {[HTTP_ACCESS_OPEN] = true, [HTTP_ACCESS_QUERY] = true, [HTTP_ACCESS_COMMAND] = true},
    [AUTH_ROLE_READER] =
        {[HTTP_ACCESS_OPEN] = true, [HTTP_ACCESS_QUERY] = true, [HTTP_ACCESS_OBSERVE] = true},
};

/* RFC 6750 §3: a request without credentials gets the scheme alone; one
 * with credentials that did not pass, error="invalid_token". */
static const char challenge[] = "Bearer realm=\"wallex\"";
static const char challenge_invalid[] = "Bearer realm=\"wallex\", error=\"invalid_token\"";

static bool refuse(struct auth_service *a, enum refusal why, struct http_refusal *r,
                   const struct es_outcome *o, const char *detail)
{
    atomic_fetch_add_explicit(&a->refused[why], 1, memory_order_relaxed);
    r->outcome = o;
    r->detail = detail;
    if (o == AUTH_unauthorized) {
        r->header = "WWW-Authenticate";
        r->value = why == REFUSED_MISSING ? challenge : challenge_invalid;
    }
    return false;
}

/* The token of "Authorization: Bearer <token>" (the scheme in any case,
 * RFC 9110 §11.1), or NULL. */
static const char *bearer(struct http_request *req, size_t *len_out)
{
    const char *h = http_header(req, "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    size_t len = strlen(h);
    while (len > 0 && h[len - 1] == ' ')
        len--;
    *len_out = len;
    return h;
}

static bool limited(struct auth_service *a, struct http_request *req, struct http_refusal *r,
                    int64_t retry_after_ns)
{
    int64_t s = (retry_after_ns + 999999999) / 1000000000;
    char *value = wx_arena_alloc(&req->arena, 24);
    if (value != NULL)
        snprintf(value, 24, "%lld", (long long)(s > 0 ? s : 1));
    refuse(a, REFUSED_LIMITED, r, AUTH_rate_limited,
           "this token made more requests than its rate allows; retry after Retry-After");
    r->header = "Retry-After";
    r->value = value != NULL ? value : "1";
    return false;
}

static bool authenticate(void *ctx, struct http_request *req, struct http_refusal *r)
{
    struct auth_service *a = ctx;
    if (!atomic_load_explicit(&a->ready, memory_order_acquire))
        return refuse(a, REFUSED_LOADING, r, ES_projection_lagging,
                      "the server is still loading its tokens; retry shortly");
    size_t len = 0;
    const char *text = bearer(req, &len);
    if (text == NULL)
        return refuse(a, REFUSED_MISSING, r, AUTH_unauthorized,
                      "send Authorization: Bearer <token>");
    char token_id[WX_UUID_STR_BYTES];
    unsigned char hash[AUTH_HASH_BYTES];
    if (!auth_token_parse(text, len, token_id, hash))
        return refuse(a, REFUSED_INVALID, r, AUTH_unauthorized, "the token is not valid");
    struct auth_principal *p = wx_arena_alloc(&req->arena, sizeof(*p));
    if (p == NULL) {
        r->outcome = ES_internal_error;
        r->detail = "out of memory";
        return false;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    int64_t retry_ns = 0;
    switch (auth_table_check(a->table, token_id, hash, wx_clock_now_ms(a->clock), now_ns, p,
                             &retry_ns)) {
    case AUTH_OK:
        break;
    case AUTH_UNKNOWN:
    case AUTH_BAD_SECRET:
        return refuse(a, REFUSED_INVALID, r, AUTH_unauthorized, "the token is not valid");
    case AUTH_REVOKED:
        return refuse(a, REFUSED_REVOKED, r, AUTH_unauthorized, "the token was revoked");
    case AUTH_EXPIRED:
        return refuse(a, REFUSED_EXPIRED, r, AUTH_unauthorized, "the token has expired");
    case AUTH_LIMITED:
        return limited(a, req, r, retry_ns);
    }
    if (!allowed[p->role][req->route->access])
        return refuse(a, REFUSED_FORBIDDEN, r, AUTH_forbidden,
                      p->role == AUTH_ROLE_READER ? "a reader token only reads"
                                                  : "this route needs an admin token");
    req->principal = p;
    req->idem_scope = p->subject;
    return true;
}

/* ---- the refresher ---- */

static int apply_row(void *ctx, const char *token_id, const struct token_state *s, int64_t version)
{
    struct auth_service *a = ctx;
    int err = auth_table_apply(a->table, token_id, s, version);
    if (err == WX_ERR_FULL) { /* the rest still load; the log says what is missing */
        wx_logf(WX_LOG_ERROR, "auth: token %s left out: the table holds %d tokens at most",
                token_id, AUTH_TABLE_TOKENS_MAX);
        return 0;
    }
    return err;
}

/* One read of the changed rows; sets ready once the read model is past
 * the log's head as it was at start. */
static int refresh(struct auth_service *a)
{
    int err = token_query_changes(a->projector, &a->cursor, apply_row, a);
    if (err) {
        atomic_fetch_add(&a->refresh_failures, 1);
        return err;
    }
    if (!atomic_load(&a->ready) && es_position_cmp(&a->cursor, &a->start_head) >= 0) {
        atomic_store_explicit(&a->ready, true, memory_order_release);
        wx_logf(WX_LOG_INFO, "auth: %zu tokens loaded", auth_table_len(a->table));
    }
    return 0;
}

static int make_first_token(struct auth_service *a, const char *data_dir, bool *created_out);

/* The first start asked for before the table was ready, now that it is. */
static void deferred_first_start(struct auth_service *a)
{
    pthread_mutex_lock(&a->lock);
    char *dir = a->first_start_dir;
    a->first_start_dir = NULL;
    pthread_mutex_unlock(&a->lock);
    bool created;
    int err = dir != NULL ? make_first_token(a, dir, &created) : 0;
    if (err)
        wx_logf(WX_LOG_ERROR, "auth: the first start's admin token: %s", wx_strerror(err));
    free(dir);
}

static void *refresher_main(void *arg)
{
    struct auth_service *a = arg;
    pthread_setname_np(pthread_self(), "wx-auth");
    int64_t failing_since = 0;
    pthread_mutex_lock(&a->lock);
    while (!a->stopping) {
        struct timespec until;
        wx_deadline_after_ms(a->refresh_ms, &until);
        pthread_cond_timedwait(&a->cond, &a->lock, &until);
        if (a->stopping)
            break;
        char *first_start_dir = a->first_start_dir;
        pthread_mutex_unlock(&a->lock);
        int err = refresh(a);
        if (!err && first_start_dir != NULL && auth_service_ready(a))
            deferred_first_start(a);
        if (err && failing_since == 0) {
            failing_since = wx_monotonic_ms();
            wx_logf(WX_LOG_ERROR, "auth: reading the tokens read model: %s", wx_strerror(err));
        } else if (!err && failing_since != 0) {
            wx_logf(WX_LOG_WARN, "auth: reading the tokens read model again after %lld ms",
                    (long long)(wx_monotonic_ms() - failing_since));
            failing_since = 0;
        }
        pthread_mutex_lock(&a->lock);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

/* At start: the read model may be behind the log (events appended while
 * no server ran, or by another node); wait a bounded time for it. */
static void initial_load(struct auth_service *a)
{
    int64_t deadline = wx_monotonic_ms() + a->start_wait_ms;
    for (;;) {
        int err = refresh(a);
        if (atomic_load(&a->ready))
            return;
        if (wx_monotonic_ms() >= deadline) {
            wx_logf(WX_LOG_WARN,
                    "auth: the tokens read model has not caught up with the log"
                    " after %lld ms (%s); authenticated requests are 503 until it"
                    " has",
                    (long long)a->start_wait_ms, err ? wx_strerror(err) : "still projecting");
            return;
        }
        es_projector_notify(a->projector);
        usleep(10 * 1000);
    }
}

int auth_service_start(const struct auth_service_config *config, struct auth_service **out)
{
    struct auth_service *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return WX_ERR_NOMEM;
    a->store = config->store;
    a->projector = config->projector;
    a->writer = config->writer;
    a->clock = config->clock;
    a->refresh_ms = config->refresh_ms > 0 ? config->refresh_ms : AUTH_REFRESH_MS;
    a->start_wait_ms = config->start_wait_ms > 0 ? config->start_wait_ms : AUTH_START_WAIT_MS;
    a->authenticator = (struct http_authenticator){.authenticate = authenticate, .ctx = a};
    a->cursor = es_position_start();
    atomic_init(&a->ready, false);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->cond, NULL);
    struct auth_table_config tc = {.user_rate_per_s = config->user_rate_per_s,
                                   .user_burst = config->user_burst};
    int err = auth_table_new(&tc, &a->table);
    if (!err)
        err = es_store_head(a->store, &a->start_head);
    if (err)
        goto err_free;
    initial_load(a);
    if (pthread_create(&a->thread, NULL, refresher_main, a) != 0) {
        err = WX_ERR_NOMEM;
        goto err_free;
    }
    a->started = true;
    *out = a;
    return 0;
err_free:
    auth_service_stop(a);
    return err;
}

void auth_service_quiesce(struct auth_service *a)
{
    if (a == NULL || !a->started)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_signal(&a->cond);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    a->started = false;
}

void auth_service_stop(struct auth_service *a)
{
    if (a == NULL)
        return;
    auth_service_quiesce(a);
    free(a->first_start_dir);
    auth_table_free(a->table);
    pthread_mutex_destroy(&a->lock);
    pthread_cond_destroy(&a->cond);
    free(a);
}

struct auth_table *auth_service_table(struct auth_service *a)
{
    return a->table;
}

bool auth_service_ready(struct auth_service *a)
{
    return atomic_load(&a->ready);
}

const struct http_authenticator *auth_service_authenticator(struct auth_service *a)
{
    return &a->authenticator;
}

/* ---- the first start ---- */

/* Writes the token to path, mode 0600, durably: a temporary file renamed
 * over it, so a crash leaves the old file or the new one. */
static int write_token_file(const char *path, const char *token)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return WX_ERR_TOO_LARGE;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return WX_ERR_IO;
    size_t len = strlen(token);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, token, len) == (ssize_t)len &&
              write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    ok &= close(fd) == 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return WX_ERR_IO;
    }
    return 0;
}

/* The first start's token, once the table is known to be complete. */
static int make_first_token(struct auth_service *a, const char *data_dir, bool *created_out)
{
    *created_out = false;
    if (auth_table_len(a->table) > 0)
        return 0;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, AUTH_FIRST_TOKEN_FILE) >=
        sizeof(path))
        return WX_ERR_TOO_LARGE;
    char id[WX_UUID_STR_BYTES], token[AUTH_TOKEN_BYTES + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    int err = auth_token_new(wx_clock_now_ms(a->clock), id, token, hash);
    /* The file first: a token that exists must be known to someone. */
    if (!err && (err = write_token_file(path, token)) != 0)
        wx_logf(WX_LOG_ERROR, "auth: cannot write %s", path);
    memset(token, 0, sizeof(token));
    if (!err) {
        err = token_issue_wait(a->writer, a->table, AUTH_ROLE_ADMIN, AUTH_FIRST_SUBJECT, 0,
                               "system:first-start", id, hash);
        if (err)
            unlink(path);
    }
    if (err)
        return err;
    wx_log_always("first start: an admin token (tokenId %s) is in %s (mode 0600)", id, path);
    *created_out = true;
    return 0;
}

int auth_service_first_start(struct auth_service *a, const char *data_dir, bool *created_out)
{
    *created_out = false;
    if (auth_service_ready(a))
        return make_first_token(a, data_dir, created_out);
    /* Whether a token was ever issued is known once the read model has
     * caught up (a large log upgraded from a release without tokens: its
     * tokens read model starts from the log's beginning). */
    char *dir = strdup(data_dir);
    if (dir == NULL)
        return WX_ERR_NOMEM;
    pthread_mutex_lock(&a->lock);
    free(a->first_start_dir);
    a->first_start_dir = dir;
    pthread_mutex_unlock(&a->lock);
    wx_logf(WX_LOG_WARN,
            "auth: if no token exists yet, the first start's admin token will be"
            " made in %s once the tokens read model has caught up",
            data_dir);
    return 0;
}

void auth_service_metrics(struct auth_service *a, struct wx_buf *b)
{
    wx_metric_header(b, "wallex_auth_tokens", "gauge",
                     "Tokens this node knows, revoked and expired ones included.");
    wx_buf_printf(b, "wallex_auth_tokens %zu\n", auth_table_len(a->table));
    wx_metric_header(b, "wallex_auth_refused_total", "counter",
                     "Requests refused by authentication, by reason.");
    for (int i = 0; i < REFUSALS; i++)
        wx_buf_printf(b, "wallex_auth_refused_total{reason=\"%s\"} %llu\n", refusal_names[i],
                      (unsigned long long)atomic_load(&a->refused[i]));
    wx_metric_header(b, "wallex_auth_refresh_failures_total", "counter",
                     "Reads of the tokens read model that failed.");
    wx_buf_printf(b, "wallex_auth_refresh_failures_total %llu\n",
                  (unsigned long long)atomic_load(&a->refresh_failures));
}
