/*
 * wallex: the server and its tools in one binary. Every flag also reads an
 * environment variable (WALLEX_LISTEN, WALLEX_DATA_DIR, ...), flags win.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/app.h"
#include "auth/auth.h"
#include "auth/service.h"
#include "auth/token.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/id.h"
#include "base/money.h"
#include "base/worker.h"
#include "bus/bus.h"
#include "bus/subscription.h"
#include "cli/bench.h"
#include "cli/migrate.h"
#include "cli/token.h"
#include "es/domain.h"
#include "es/writer.h"
#include "files/files.h"
#include "files/service.h"
#include "http/http.h"
#include "limits.h"
#include "obs/log.h"
#include "ops/ops.h"
#include "proj/projector.h"
#include "rm/rm.h"
#include "store/store.h"
#include "order/order.h"
#include "wallet/wallet.h"

/* The domains this binary serves: adding one is a line here and its own
 * folder under src/ (docs/architecture.md, "Adding a domain"). */
static const struct es_domain *const domains[] = {
    &wallet_domain,
    &order_domain,
    &bus_domain,
    &auth_domain,
    &files_domain,
};

#ifndef WALLEX_VERSION
#define WALLEX_VERSION "dev"
#endif

struct options {
    const char *listen;
    const char *data_dir;
    const char *store;
    const char *pg_url;
    const char *pg_schema;
    const char *currency;
    const char *log_level;
    const char *to;
    const char *url;
    const char *mix;
    const char *workload; /* bench: wallets | orders */
    const char *auth;     /* serve: on | off */
    const char *rate_limit_user; /* serve: RATE[,BURST] */
    int64_t user_rate_per_s, user_burst;
    const char *token;   /* bench, token create: an admin token for --url */
    bool url_given;      /* --url or WALLEX_URL: token create goes through a server */
    const char *role;    /* token create */
    const char *subject; /* token create */
    const char *expires; /* token create: RFC 3339 */
    int64_t wallets;
    int64_t ops;
    int64_t connections;
    int64_t seed;
    int64_t threads;
    int64_t idem_ttl_s;
    int64_t min_position_wait_ms;
    int64_t connections_max;
    int64_t connection_timeout_s;
    int64_t head_timeout_ms;
    int64_t body_timeout_ms;
    int64_t send_timeout_ms;
    int64_t unsent_bytes_max;
    int64_t snapshot_every;
    const char *from; /* events: a position token; migrate: a directory or URL */
    int64_t limit;
    /* the event bus */
    const char *redis_url;
    const char *redis_stream;
    int64_t redis_maxlen;
    bool redis_required;
    const char *retry_schedule;
    const char *webhook_timeout;
    const char *disable_after;
    bool deny_private;
    const char *trash_retention; /* serve: a duration, or 0 / off */
    int64_t trash_retention_ms;
};

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : fallback;
}

/* A boolean variable: set and not "0", "false" or "no". */
static bool env_flag(const char *name)
{
    const char *v = env_or(name, NULL);
    return v != NULL && strcmp(v, "0") != 0 && strcmp(v, "false") != 0 && strcmp(v, "no") != 0;
}

static void options_defaults(struct options *o)
{
    o->listen = env_or("WALLEX_LISTEN", "127.0.0.1:8080");
    o->data_dir = env_or("WALLEX_DATA_DIR", "./data");
    o->store = env_or("WALLEX_STORE", "sqlite");
    o->pg_url = env_or("WALLEX_PG_URL", NULL);
    o->pg_schema = env_or("WALLEX_PG_SCHEMA", "wallex");
    o->currency = env_or("WALLEX_DEFAULT_CURRENCY", "USD");
    o->log_level = env_or("WALLEX_LOG_LEVEL", "info");
    o->to = NULL;
    o->url = env_or("WALLEX_URL", "http://127.0.0.1:8080");
    o->mix = env_or("WALLEX_BENCH_MIX", "60,20,20");
    o->workload = env_or("WALLEX_BENCH_WORKLOAD", "wallets");
    o->auth = env_or("WALLEX_AUTH", "on");
    o->rate_limit_user = env_or("WALLEX_RATE_LIMIT_USER", NULL);
    o->user_rate_per_s = AUTH_USER_RATE_PER_S_DEFAULT;
    o->user_burst = AUTH_USER_BURST_DEFAULT;
    o->token = env_or("WALLEX_TOKEN", NULL);
    o->url_given = env_or("WALLEX_URL", NULL) != NULL;
    o->role = NULL;
    o->subject = NULL;
    o->expires = NULL;
    o->wallets = 1000;
    o->ops = 100000;
    o->connections = 64;
    o->seed = 0;
    o->threads = WX_HTTP_THREADS_DEFAULT;
    o->idem_ttl_s = WX_IDEM_TTL_MS_DEFAULT / 1000;
    o->min_position_wait_ms = WX_MIN_POSITION_WAIT_MS_DEFAULT;
    o->connections_max = WX_HTTP_CONNECTIONS_MAX;
    o->snapshot_every = WX_SNAPSHOT_EVERY_DEFAULT;
    o->connection_timeout_s = WX_HTTP_CONNECTION_TIMEOUT_S;
    o->head_timeout_ms = WX_HTTP_HEAD_TIMEOUT_MS_DEFAULT;
    o->body_timeout_ms = WX_HTTP_BODY_TIMEOUT_MS_DEFAULT;
    o->send_timeout_ms = WX_HTTP_SEND_TIMEOUT_MS_DEFAULT;
    o->unsent_bytes_max = WX_HTTP_OUT_BYTES_MAX;
    o->from = NULL;
    o->limit = INT64_MAX;
    o->redis_url = env_or("WALLEX_REDIS_URL", NULL);
    o->redis_stream = env_or("WALLEX_REDIS_STREAM", BUS_REDIS_STREAM_DEFAULT);
    o->redis_maxlen = 0;
    o->redis_required = env_flag("WALLEX_REDIS_REQUIRED");
    o->retry_schedule = env_or("WALLEX_WEBHOOK_RETRY_SCHEDULE", BUS_RETRY_SCHEDULE_DEFAULT);
    o->webhook_timeout = env_or("WALLEX_WEBHOOK_TIMEOUT", BUS_WEBHOOK_TIMEOUT_DEFAULT);
    o->disable_after = env_or("WALLEX_WEBHOOK_DISABLE_AFTER", BUS_DISABLE_AFTER_DEFAULT);
    o->deny_private = env_flag("WALLEX_WEBHOOK_DENY_PRIVATE");
    o->trash_retention = env_or("WALLEX_TRASH_RETENTION", FILES_TRASH_RETENTION_DEFAULT);
}

static bool int_opt(const char *name, const char *text, int64_t min, int64_t max, int64_t *out)
{
    if (text == NULL)
        return true;
    if (!http_parse_i64(text, min, max, out)) {
        fprintf(stderr, "wallex: %s must be an integer from %" PRId64 " to %" PRId64 "\n", name,
                min, max);
        return false;
    }
    return true;
}

static const char usage_main[] =
    "usage: wallex <command> [options]\n"
    "\n"
    "An event-sourced wallet and ledger server.\n"
    "\n"
    "commands:\n"
    "  serve     run the HTTP server\n"
    "  events    print the event log of a data directory as JSON lines\n"
    "  rebuild   rebuild every read model of a data directory from its log\n"
    "  drift     compare the read models with a fold of the log\n"
    "  verify    check the money invariants (exit 1 when one is broken)\n"
    "  backup    copy the event log of a running or stopped server (--to DIR)\n"
    "  migrate   copy the event log between SQLite and PostgreSQL (--from, --to)\n"
    "  bench     load generator: wallets, then a mix of operations or order lives\n"
    "            (--workload orders), then verification\n"
    "  token     create a bearer token (through a running server, or on a stopped\n"
    "            server's data directory)\n"
    "\n"
    "  wallex <command> --help   options of one command\n"
    "  wallex --version          the version\n";

static const char usage_serve[] =
    "usage: wallex serve [options]\n"
    "\n"
    "  --listen ADDR          host:port to listen on     WALLEX_LISTEN     (127.0.0.1:8080)\n"
    "  --data-dir DIR         where the SQLite files live WALLEX_DATA_DIR  (./data)\n"
    "  --store NAME           sqlite | postgres | memory WALLEX_STORE      (sqlite)\n"
    "  --pg URL               PostgreSQL connection URL  WALLEX_PG_URL\n"
    "                         (postgresql://user:pass@host:5432/db or key=value pairs)\n"
    "  --pg-schema NAME       schema of wallex's tables  WALLEX_PG_SCHEMA  (wallex)\n"
    "  --currency CODE        default wallet currency    WALLEX_DEFAULT_CURRENCY (USD)\n"
    "  --http-threads N       HTTP threads               WALLEX_HTTP_THREADS (2)\n"
    "  --idempotency-ttl S    Idempotency-Key lifetime   WALLEX_IDEMPOTENCY_TTL_S (86400)\n"
    "  --min-position-wait-ms N  longest X-Min-Position wait  WALLEX_MIN_POSITION_WAIT_MS (2000)\n"
    "  --log-level LEVEL      debug|info|warn|error      WALLEX_LOG_LEVEL  (info)\n"
    "  --connections-max N    open connections at most   WALLEX_CONNECTIONS_MAX (32768)\n"
    "  --connection-timeout-s N  idle keep-alive connection closes after  WALLEX_CONNECTION_TIMEOUT_S (30)\n"
    "  --head-timeout-ms N    a request's head must arrive within, from its first byte (408)\n"
    "                                                    WALLEX_HEAD_TIMEOUT_MS (10000)\n"
    "  --body-timeout-ms N    its body within, from the end of the head (408)\n"
    "                                                    WALLEX_BODY_TIMEOUT_MS (20000)\n"
    "  --send-timeout-ms N    an answer the client does not read for that long closes it\n"
    "                                                    WALLEX_SEND_TIMEOUT_MS (10000)\n"
    "  --unsent-bytes-max N   answer bytes clients have not read, past which large GET\n"
    "                         answers are 503      WALLEX_UNSENT_BYTES_MAX (67108864)\n"
    "  --snapshot-every N     events between snapshots   WALLEX_SNAPSHOT_EVERY (100)\n"
    "\n"
    "identity (docs/operations.md, \"Tokens and roles\"):\n"
    "  --auth on|off          bearer tokens on every route but /healthz, /readyz and\n"
    "                         /openapi.yaml            WALLEX_AUTH       (on)\n"
    "                         off is for throwaway local runs: refused unless --listen\n"
    "                         is loopback (127.0.0.0/8, [::1], localhost)\n"
    "  --rate-limit-user R[,B]  requests a second one user token may make, and its\n"
    "                         burst (0: unlimited)  WALLEX_RATE_LIMIT_USER (1000,2000)\n"
    "  The first start on an empty data directory writes an admin token to\n"
    "  DATA_DIR/admin.token (mode 0600): TOKEN=$(cat data/admin.token), then\n"
    "  curl -H \"Authorization: Bearer $TOKEN\" ...; more tokens: `wallex token --help`.\n"
    "\n"
    "event bus (docs/operations.md, \"The event bus\"):\n"
    "  --redis URL            publish every event to Redis Streams (redis://[:pass@]host[:port][/db])\n"
    "                                                    WALLEX_REDIS_URL  (off)\n"
    "  --redis-stream NAME    stream; {category} in it: one per category  WALLEX_REDIS_STREAM (wallex:events)\n"
    "  --redis-maxlen N       trim streams to about N entries (XADD MAXLEN ~; deletes\n"
    "                         entries consumer groups may not have read)  WALLEX_REDIS_MAXLEN (0: never)\n"
    "  --redis-required       /readyz fails while Redis cannot be reached  WALLEX_REDIS_REQUIRED (off)\n"
    "  --webhook-retry-schedule LIST  delays between attempts, then the dead-letter queue\n"
    "                         (ms, s, m, h, d)     WALLEX_WEBHOOK_RETRY_SCHEDULE (5s,5m,30m,2h,5h,10h,10h)\n"
    "  --webhook-timeout D    a receiver must answer 2xx within D  WALLEX_WEBHOOK_TIMEOUT (15s)\n"
    "  --webhook-disable-after D  a subscription failing this long is disabled\n"
    "                                                    WALLEX_WEBHOOK_DISABLE_AFTER (5d)\n"
    "  --webhook-deny-private refuse loopback and private receiver addresses\n"
    "                                                    WALLEX_WEBHOOK_DENY_PRIVATE (off)\n"
    "\n"
    "files and folders (docs/operations.md, \"Files and folders\"):\n"
    "  --trash-retention D    items in the trash longer than D are purged (an ItemPurged\n"
    "                         event by the server); 0 or off keeps them\n"
    "                                                    WALLEX_TRASH_RETENTION (30d)\n"
    "\n"
    "With --store postgres the log lives in PostgreSQL (several nodes may share\n"
    "it) and so do the read models (schema <pg-schema>_read) and the webhook\n"
    "delivery state (<pg-schema>_bus): any node answers any query, and each read\n"
    "model is projected by one node at a time. DATA_DIR keeps this node's lock\n"
    "file and the first start's admin.token. Every node decides files and folders:\n"
    "their tree changes race on one stream, files:tree (docs/architecture.md).\n"
    "\n"
    "Logs are JSON lines on stderr, one per request at info.\n"
    "\n"
    "SIGTERM or SIGINT stops accepting connections, finishes the requests in\n"
    "flight and exits 0.\n";

static const char usage_offline[] =
    "usage: wallex rebuild|drift|verify [--data-dir DIR] [--store postgres --pg URL]\n"
    "\n"
    "Offline tools on a data directory (WALLEX_DATA_DIR, ./data); run them on a\n"
    "stopped server. With --store postgres (WALLEX_STORE, WALLEX_PG_URL,\n"
    "--pg-schema) the log is read from PostgreSQL and the read side is\n"
    "DATA_DIR/readmodel.db, created when missing.\n"
    "  rebuild  drops every read model and projects the whole log again\n"
    "  drift    lists differences between read models and the log (exit 1 if any)\n"
    "  verify   catches the read models up, then checks that balances equal\n"
    "           credits minus debits, that no balance is negative, that every\n"
    "           credit and debit has exactly one ledger entry and that every\n"
    "           entry starts where the previous one ended; for orders, that each\n"
    "           total is the sum of its lines, that the statistics equal a\n"
    "           recount, and that every payment and refund has its wallet\n"
    "           movement and no other movement names an order; for files and\n"
    "           folders, that items, the closure table and the effective\n"
    "           permissions equal a fold of the log and a recomputation, and\n"
    "           that names are unique among live siblings (exit 1 if not)\n";

static const char usage_backup[] =
    "usage: wallex backup --to DIR [--data-dir DIR]\n"
    "\n"
    "Copies the event log (events.db) into DIR/events.db as of one commit,\n"
    "while the server keeps serving. The read models are not copied: they are\n"
    "rebuilt from the log when the server starts on the restored directory.\n"
    "Restore: stop the server, put the copy in an empty data directory, start.\n";

static const char usage_bench[] =
    "usage: wallex bench [options]\n"
    "\n"
    "Creates wallets (1,000,000.00 each), then runs one of two workloads over\n"
    "keep-alive connections, prints ops/s and latency percentiles per operation,\n"
    "and verifies the server's books against its own (exit 1 when they differ).\n"
    "\n"
    "  wallets (default)  a mix of transfers, credits and debits; then balances\n"
    "                     add up, every wallet's ledger matches its events, no drift\n"
    "  orders             each connection creates an order of 3 items, confirms it\n"
    "                     and pays it from a random wallet, then the next; then every\n"
    "                     wallet holds its funds minus the orders paid from it, each\n"
    "                     paid order was debited exactly once, GET /orders lists every\n"
    "                     order with the status and total the bench saw, no drift\n"
    "\n"
    "  --url URL          server                  WALLEX_URL (http://127.0.0.1:8080)\n"
    "  --workload NAME    wallets | orders        WALLEX_BENCH_WORKLOAD (wallets)\n"
    "  --wallets N        wallets to create       WALLEX_BENCH_WALLETS (1000)\n"
    "  --ops N            operations to run (order commands for orders)\n"
    "                                             WALLEX_BENCH_OPS (100000)\n"
    "  --connections N    keep-alive connections  WALLEX_BENCH_CONNECTIONS (64)\n"
    "  --mix T,C,D        wallets workload: percent transfers, credits, debits\n"
    "                                             WALLEX_BENCH_MIX (60,20,20)\n"
    "  --seed N           random seed (0: from the clock)\n"
    "  --token TOKEN      an admin token, when the server has authentication on\n"
    "                                             WALLEX_TOKEN (else the first start's\n"
    "                                             DATA_DIR/admin.token, when readable)\n"
    "  --data-dir DIR     where to look for admin.token  WALLEX_DATA_DIR (./data)\n";

static const char usage_token[] =
    "usage: wallex token create --role admin|user|reader --subject ID [--expires RFC3339]\n"
    "                           [--url URL | --data-dir DIR]\n"
    "\n"
    "Creates a bearer token and prints it alone on one line of standard output\n"
    "(shown once: only its hash is kept). Roles (API.md, \"Identity\"):\n"
    "  admin   everything, the admin routes and /metrics included\n"
    "  user    creates wallets and orders owned by its subject, and works on those\n"
    "          alone (transfers from its own wallets to any wallet)\n"
    "  reader  reads everything an admin can read, /metrics included; no commands\n"
    "\n"
    "  --role R           admin | user | reader\n"
    "  --subject ID       who the token speaks for: 1-64 of A-Z a-z 0-9 . _ : -\n"
    "  --expires T        refused from then on (RFC 3339; default: never)\n"
    "  --url URL          through a running server (POST /admin/tokens) with the\n"
    "                     admin token in WALLEX_TOKEN         WALLEX_URL\n"
    "  --data-dir DIR     on a stopped server's data directory  WALLEX_DATA_DIR (./data)\n"
    "                     (refused while a server holds it: use --url)\n"
    "\n"
    "Rotation: create the new token, move clients to it, then revoke the old one\n"
    "(DELETE /admin/tokens/{tokenId}); every node refuses it within a second.\n";

static const char usage_events[] =
    "usage: wallex events [options]\n"
    "\n"
    "Prints the event log, oldest first, one JSON object a line.\n"
    "\n"
    "  --data-dir DIR   the data directory            WALLEX_DATA_DIR (./data)\n"
    "  --store NAME     sqlite | postgres             WALLEX_STORE (sqlite)\n"
    "  --pg URL         PostgreSQL connection URL     WALLEX_PG_URL\n"
    "  --from POS       start after this position (an X-Position token)  (0)\n"
    "  --limit N        print at most N events        (all)\n";

static const char usage_migrate[] =
    "usage: wallex migrate --from DIR|URL --to URL|DIR [--pg-schema NAME]\n"
    "\n"
    "Copies the event log between a SQLite data directory and a PostgreSQL\n"
    "database (a postgres:// or postgresql:// URL, or key=value pairs), either\n"
    "way, on stopped servers. Every event is copied exactly: id, stream,\n"
    "version, type, schema version, data, metadata and time; positions are the\n"
    "target's own. Snapshots and idempotency records are not copied: streams\n"
    "are snapshotted again as they grow, and Idempotency-Keys used before the\n"
    "migration are not remembered after it.\n"
    "\n"
    "The target must be empty at the first start (a new or empty directory, a\n"
    "database without wallex tables in the schema). An interrupted copy is\n"
    "resumed by running the same command again. Afterwards run `wallex verify`\n"
    "on the target: its read side is built from the copied log.\n";

enum { OPT_LISTEN = 256, OPT_DATA_DIR, OPT_STORE, OPT_PG, OPT_PG_SCHEMA, OPT_CURRENCY, OPT_THREADS,
       OPT_IDEM_TTL, OPT_MIN_POS_WAIT, OPT_LOG_LEVEL, OPT_TO, OPT_CONNS, OPT_CONN_TIMEOUT,
       OPT_HEAD_TIMEOUT, OPT_BODY_TIMEOUT, OPT_SEND_TIMEOUT, OPT_UNSENT_MAX,
       OPT_SNAPSHOT_EVERY, OPT_URL, OPT_WALLETS, OPT_OPS, OPT_CONNECTIONS, OPT_MIX, OPT_SEED, OPT_FROM, OPT_LIMIT,
       OPT_REDIS, OPT_REDIS_STREAM, OPT_REDIS_MAXLEN, OPT_REDIS_REQUIRED, OPT_RETRY_SCHEDULE,
       OPT_WEBHOOK_TIMEOUT, OPT_DISABLE_AFTER, OPT_DENY_PRIVATE, OPT_WORKLOAD, OPT_AUTH,
       OPT_RATE_LIMIT_USER, OPT_TOKEN, OPT_ROLE, OPT_SUBJECT, OPT_EXPIRES, OPT_TRASH_RETENTION,
       OPT_HELP };

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"store", required_argument, NULL, OPT_STORE},
    {"pg", required_argument, NULL, OPT_PG},
    {"pg-schema", required_argument, NULL, OPT_PG_SCHEMA},
    {"currency", required_argument, NULL, OPT_CURRENCY},
    {"http-threads", required_argument, NULL, OPT_THREADS},
    {"idempotency-ttl", required_argument, NULL, OPT_IDEM_TTL},
    {"min-position-wait-ms", required_argument, NULL, OPT_MIN_POS_WAIT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"to", required_argument, NULL, OPT_TO},
    {"connections-max", required_argument, NULL, OPT_CONNS},
    {"connection-timeout-s", required_argument, NULL, OPT_CONN_TIMEOUT},
    {"head-timeout-ms", required_argument, NULL, OPT_HEAD_TIMEOUT},
    {"body-timeout-ms", required_argument, NULL, OPT_BODY_TIMEOUT},
    {"send-timeout-ms", required_argument, NULL, OPT_SEND_TIMEOUT},
    {"unsent-bytes-max", required_argument, NULL, OPT_UNSENT_MAX},
    {"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
    {"url", required_argument, NULL, OPT_URL},
    {"wallets", required_argument, NULL, OPT_WALLETS},
    {"ops", required_argument, NULL, OPT_OPS},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"mix", required_argument, NULL, OPT_MIX},
    {"seed", required_argument, NULL, OPT_SEED},
    {"from", required_argument, NULL, OPT_FROM},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"redis-stream", required_argument, NULL, OPT_REDIS_STREAM},
    {"redis-maxlen", required_argument, NULL, OPT_REDIS_MAXLEN},
    {"redis-required", no_argument, NULL, OPT_REDIS_REQUIRED},
    {"webhook-retry-schedule", required_argument, NULL, OPT_RETRY_SCHEDULE},
    {"webhook-timeout", required_argument, NULL, OPT_WEBHOOK_TIMEOUT},
    {"webhook-disable-after", required_argument, NULL, OPT_DISABLE_AFTER},
    {"webhook-deny-private", no_argument, NULL, OPT_DENY_PRIVATE},
    {"workload", required_argument, NULL, OPT_WORKLOAD},
    {"auth", required_argument, NULL, OPT_AUTH},
    {"rate-limit-user", required_argument, NULL, OPT_RATE_LIMIT_USER},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"role", required_argument, NULL, OPT_ROLE},
    {"subject", required_argument, NULL, OPT_SUBJECT},
    {"expires", required_argument, NULL, OPT_EXPIRES},
    {"trash-retention", required_argument, NULL, OPT_TRASH_RETENTION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Integer flags as given (flag, else variable, else NULL), checked and
 * converted once every flag is read. */
struct int_texts {
    const char *threads, *ttl, *limit, *min_wait, *conns, *wallets, *ops, *connections,
        *seed, *snapshot_every, *conn_timeout, *maxlen, *head_timeout, *body_timeout,
        *send_timeout, *unsent_max;
};

/* --rate-limit-user RATE[,BURST]: the burst is twice the rate unless
 * given (API.md's default is 1,000 and 2,000). 0, or 2 after a message. */
static int rate_limit_parse(struct options *o)
{
    const char *text = o->rate_limit_user;
    if (text == NULL)
        return 0;
    char rate[32];
    const char *comma = strchr(text, ',');
    size_t n = comma ? (size_t)(comma - text) : strlen(text);
    if (n >= sizeof(rate))
        n = sizeof(rate) - 1;
    memcpy(rate, text, n);
    rate[n] = '\0';
    if (!int_opt("--rate-limit-user", rate, 0, 1000000000, &o->user_rate_per_s))
        return 2;
    o->user_burst = 2 * o->user_rate_per_s;
    if (comma != NULL && !int_opt("--rate-limit-user's burst", comma + 1, 1, 1000000000,
                                  &o->user_burst))
        return 2;
    if (o->user_burst < 1)
        o->user_burst = 1;
    return 0;
}

/* The integers, the log level and the currency; 0, or 2 after a message. */
static int options_check(const struct int_texts *t, struct options *o)
{
    if (!int_opt("--http-threads", t->threads, 1, WX_HTTP_THREADS_MAX, &o->threads) ||
        !int_opt("--idempotency-ttl", t->ttl, 1, INT64_MAX / 1000, &o->idem_ttl_s) ||
        !int_opt("--min-position-wait-ms", t->min_wait, 0, WX_MIN_POSITION_WAIT_MS_MAX,
                 &o->min_position_wait_ms) ||
        !int_opt("--connections-max", t->conns, 1, WX_HTTP_CONNECTIONS_MAX, &o->connections_max) ||
        !int_opt("--connection-timeout-s", t->conn_timeout, 1, 3600, &o->connection_timeout_s) ||
        !int_opt("--head-timeout-ms", t->head_timeout, 100, 3600000, &o->head_timeout_ms) ||
        !int_opt("--body-timeout-ms", t->body_timeout, 100, 3600000, &o->body_timeout_ms) ||
        !int_opt("--send-timeout-ms", t->send_timeout, 100, 3600000, &o->send_timeout_ms) ||
        !int_opt("--unsent-bytes-max", t->unsent_max, 1 << 20, INT64_C(1) << 40,
                 &o->unsent_bytes_max) ||
        !int_opt("--snapshot-every", t->snapshot_every, 2, 1000000000, &o->snapshot_every) ||
        !int_opt("--wallets", t->wallets, 2, 10000000, &o->wallets) ||
        !int_opt("--ops", t->ops, 1, INT64_MAX / 2, &o->ops) ||
        !int_opt("--connections", t->connections, 1, 4096, &o->connections) ||
        !int_opt("--seed", t->seed, 0, INT64_MAX, &o->seed) ||
        !int_opt("--limit", t->limit, 1, INT64_MAX, &o->limit) ||
        !int_opt("--redis-maxlen", t->maxlen, 0, INT64_MAX, &o->redis_maxlen))
        return 2;
    enum wx_log_level level;
    if (!wx_log_parse_level(o->log_level, &level)) {
        fprintf(stderr, "wallex: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    wx_log_set_level(level);
    if (wx_currency_exponent(o->currency) < 0) {
        fprintf(stderr, "wallex: --currency %s is not an ISO 4217 code\n", o->currency);
        return 2;
    }
    if (strcmp(o->auth, "on") != 0 && strcmp(o->auth, "off") != 0) {
        fprintf(stderr, "wallex: --auth must be on or off\n");
        return 2;
    }
    o->trash_retention_ms = 0;
    if (strcmp(o->trash_retention, "0") != 0 && strcmp(o->trash_retention, "off") != 0 &&
        !bus_duration_parse(o->trash_retention, INT64_MAX / 2, &o->trash_retention_ms)) {
        fprintf(stderr, "wallex: --trash-retention must be a duration such as 30d (ms, s, m, h,"
                        " d), or 0 or off\n");
        return 2;
    }
    return rate_limit_parse(o);
}

/* Parses flags into o; returns 0 to go on, 1 after --help, 2 on error. */
static int parse_options(int argc, char **argv, const char *usage, struct options *o)
{
    struct int_texts t = {
        .threads = env_or("WALLEX_HTTP_THREADS", NULL),
        .ttl = env_or("WALLEX_IDEMPOTENCY_TTL_S", NULL),
        .min_wait = env_or("WALLEX_MIN_POSITION_WAIT_MS", NULL),
        .conns = env_or("WALLEX_CONNECTIONS_MAX", NULL),
        .wallets = env_or("WALLEX_BENCH_WALLETS", NULL),
        .ops = env_or("WALLEX_BENCH_OPS", NULL),
        .connections = env_or("WALLEX_BENCH_CONNECTIONS", NULL),
        .snapshot_every = env_or("WALLEX_SNAPSHOT_EVERY", NULL),
        .conn_timeout = env_or("WALLEX_CONNECTION_TIMEOUT_S", NULL),
        .maxlen = env_or("WALLEX_REDIS_MAXLEN", NULL),
        .head_timeout = env_or("WALLEX_HEAD_TIMEOUT_MS", NULL),
        .body_timeout = env_or("WALLEX_BODY_TIMEOUT_MS", NULL),
        .send_timeout = env_or("WALLEX_SEND_TIMEOUT_MS", NULL),
        .unsent_max = env_or("WALLEX_UNSENT_BYTES_MAX", NULL),
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (c) {
        case OPT_LISTEN: o->listen = optarg; break;
        case OPT_DATA_DIR: o->data_dir = optarg; break;
        case OPT_STORE: o->store = optarg; break;
        case OPT_PG: o->pg_url = optarg; break;
        case OPT_PG_SCHEMA: o->pg_schema = optarg; break;
        case OPT_CURRENCY: o->currency = optarg; break;
        case OPT_THREADS: t.threads = optarg; break;
        case OPT_IDEM_TTL: t.ttl = optarg; break;
        case OPT_MIN_POS_WAIT: t.min_wait = optarg; break;
        case OPT_LOG_LEVEL: o->log_level = optarg; break;
        case OPT_TO: o->to = optarg; break;
        case OPT_CONNS: t.conns = optarg; break;
        case OPT_CONN_TIMEOUT: t.conn_timeout = optarg; break;
        case OPT_HEAD_TIMEOUT: t.head_timeout = optarg; break;
        case OPT_BODY_TIMEOUT: t.body_timeout = optarg; break;
        case OPT_SEND_TIMEOUT: t.send_timeout = optarg; break;
        case OPT_UNSENT_MAX: t.unsent_max = optarg; break;
        case OPT_SNAPSHOT_EVERY: t.snapshot_every = optarg; break;
        case OPT_URL: o->url = optarg; o->url_given = true; break;
        case OPT_WALLETS: t.wallets = optarg; break;
        case OPT_OPS: t.ops = optarg; break;
        case OPT_CONNECTIONS: t.connections = optarg; break;
        case OPT_MIX: o->mix = optarg; break;
        case OPT_WORKLOAD: o->workload = optarg; break;
        case OPT_AUTH: o->auth = optarg; break;
        case OPT_RATE_LIMIT_USER: o->rate_limit_user = optarg; break;
        case OPT_TOKEN: o->token = optarg; break;
        case OPT_ROLE: o->role = optarg; break;
        case OPT_SUBJECT: o->subject = optarg; break;
        case OPT_EXPIRES: o->expires = optarg; break;
        case OPT_SEED: t.seed = optarg; break;
        case OPT_FROM: o->from = optarg; break;
        case OPT_LIMIT: t.limit = optarg; break;
        case OPT_REDIS: o->redis_url = optarg; break;
        case OPT_REDIS_STREAM: o->redis_stream = optarg; break;
        case OPT_REDIS_MAXLEN: t.maxlen = optarg; break;
        case OPT_REDIS_REQUIRED: o->redis_required = true; break;
        case OPT_RETRY_SCHEDULE: o->retry_schedule = optarg; break;
        case OPT_WEBHOOK_TIMEOUT: o->webhook_timeout = optarg; break;
        case OPT_DISABLE_AFTER: o->disable_after = optarg; break;
        case OPT_DENY_PRIVATE: o->deny_private = true; break;
        case OPT_TRASH_RETENTION: o->trash_retention = optarg; break;
        case OPT_HELP: fputs(usage, stdout); return 1;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wallex: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return options_check(&t, o);
}

/* One writer per data directory: a server, or an offline tool that writes
 * the read side. The lock is released when the process ends, however. */
static int lock_data_dir(const char *data_dir, const char *what)
{
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "wallex: cannot create %s: %s\n", data_dir, strerror(errno));
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/LOCK", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "wallex %s: %s is in use by another wallex (serve, rebuild or verify)%s\n",
                what, data_dir,
                strcmp(what, "token") == 0 ? ": while a server holds it, create the token through"
                                             " the server: --url URL with an admin token in"
                                             " WALLEX_TOKEN"
                                           : "");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd; /* kept open for the life of the process */
}

/* Thousands of connections need thousands of descriptors: the connection
 * limit plus room for the databases. Root may raise the hard limit too;
 * anyone may raise the soft one up to the hard one. */
static void raise_fd_limit(int64_t connections_max)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections_max + WX_HTTP_CONNECTIONS_SPARE + 1024;
    if (rl.rlim_max < want) {
        struct rlimit raised = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max < want)
        wx_logf(WX_LOG_WARN, "open files are limited to %llu; fewer than %lld connections fit",
                (unsigned long long)rl.rlim_max, (long long)connections_max);
}

static bool is_postgres(const struct options *o)
{
    return strcmp(o->store, "postgres") == 0;
}

/* Exit code of a command whose store cannot be reached (PostgreSQL down or
 * refusing us), so scripts and supervisors can tell it from bad usage. */
#define EXIT_STORE_UNREACHABLE 3

/* How a command opens the store: a server creates it; tools that work on
 * a log do not create one; tools that only read may run beside a server and
 * must never wait on its write locks (wallex events, drift). */
enum open_mode { OPEN_CREATE, OPEN_EXISTING, OPEN_READ_ONLY };

static int open_store(const struct options *o, enum open_mode mode, struct es_store **store)
{
    struct es_store_config cfg = {.data_dir = o->data_dir, .url = o->pg_url,
                                  .pg_schema = o->pg_schema, .must_exist = mode != OPEN_CREATE,
                                  .read_only = mode == OPEN_READ_ONLY};
    if (is_postgres(o) && o->pg_url == NULL) {
        fprintf(stderr, "wallex: --store postgres needs --pg URL (or WALLEX_PG_URL)\n");
        return WX_ERR_INVALID;
    }
    if (es_store_backend(o->store) == NULL) {
        fprintf(stderr, "wallex: --store must be sqlite, postgres or memory\n");
        return WX_ERR_INVALID;
    }
    int err = es_store_open(o->store, &cfg, store);
    if (err == WX_ERR_IO && is_postgres(o))
        fprintf(stderr, "wallex: cannot reach PostgreSQL (the reason is logged above); check"
                        " --pg / WALLEX_PG_URL and that the server is running\n");
    else if (err == WX_ERR_NOT_FOUND && is_postgres(o))
        fprintf(stderr, "wallex: no wallex log in schema %s of that database\n", o->pg_schema);
    else if (err == WX_ERR_INVALID && is_postgres(o))
        fprintf(stderr, "wallex: cannot use schema %s of that database (the reason is logged"
                        " above)\n", o->pg_schema);
    else if (err)
        fprintf(stderr, "wallex: cannot open the %s store in %s: %s\n", o->store, o->data_dir,
                wx_strerror(err));
    return err;
}

static int open_store_exit_code(int err)
{
    return err == WX_ERR_IO ? EXIT_STORE_UNREACHABLE : 1;
}

/* Every command starts alike: defaults, environment, flags, and for the
 * offline tools an existing data directory. -1 to go on, else the exit code. */
static int command_start(int argc, char **argv, const char *usage, struct options *o,
                         bool need_data_dir)
{
    options_defaults(o);
    int rc = parse_options(argc, argv, usage, o);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (need_data_dir && strcmp(o->store, "sqlite") == 0 && access(o->data_dir, F_OK) != 0) {
        fprintf(stderr, "wallex: no data directory at %s\n", o->data_dir);
        return 1;
    }
    return -1;
}

static void notify_projector(void *ctx)
{
    es_projector_notify(ctx);
}

/* The schema of the read models on PostgreSQL: beside the log's, so
 * several installations in one database keep apart. */
#define READ_SCHEMA_SUFFIX "_read"

/* The read side: readmodel.db beside a SQLite log, or schema
 * <pg-schema>_read beside a PostgreSQL log, shared by every node. A memory
 * store starts with an empty log every time, so its read side starts
 * empty too. bulk: offline tools rebuilding anyway (no fsync); beside:
 * another process may have it open. */
static int open_projector(const struct options *o, struct es_store *store, bool bulk,
                          bool beside, struct es_projector **out)
{
    char path[4096], schema[128];
    bool memory = strcmp(o->store, "memory") == 0;
    snprintf(path, sizeof(path), "%s/%s", o->data_dir,
             memory ? "readmodel-memory.db" : "readmodel.db");
    snprintf(schema, sizeof(schema), "%s" READ_SCHEMA_SUFFIX, o->pg_schema);
    const struct es_consumer **consumers = NULL;
    size_t consumers_len = 0;
    int err = wx_app_consumers(&consumers, &consumers_len);
    if (err) {
        fprintf(stderr, "wallex: the domains have too many read models: %s\n", wx_strerror(err));
        return err;
    }
    struct es_projector_config cfg = {
        .store = store,
        .backend = is_postgres(o) ? &rm_postgres_ops : &rm_sqlite_ops,
        .rm = {.path = path, .url = o->pg_url, .schema = schema, .disposable = true,
               .bulk = bulk, .beside = beside},
        .consumers = consumers,
        .consumers_len = consumers_len,
    };
    err = es_projector_open(&cfg, out);
    free(consumers); /* the projector keeps the consumers, not the list */
    if (!err && memory)
        err = es_projector_reset(*out);
    if (err) {
        fprintf(stderr, "wallex: cannot open the read side %s: %s\n",
                is_postgres(o) ? schema : path, wx_strerror(err));
        es_projector_close(*out);
        *out = NULL;
    }
    return err;
}

/* What the writer wakes after each commit: the projector, then whatever
 * else follows the log (the event bus). A listener may be added while the
 * writer runs: its slot is written before the count that publishes it. */
struct commit_listeners {
    void (*fn[WX_COMMIT_LISTENERS_MAX])(void *ctx);
    void *ctx[WX_COMMIT_LISTENERS_MAX];
    atomic_size_t len;
};

static void listeners_add(struct commit_listeners *l, void (*fn)(void *), void *ctx)
{
    size_t n = atomic_load(&l->len);
    assert(n < WX_COMMIT_LISTENERS_MAX);
    l->fn[n] = fn;
    l->ctx[n] = ctx;
    atomic_store(&l->len, n + 1);
}

static void notify_listeners(void *arg)
{
    struct commit_listeners *l = arg;
    size_t n = atomic_load(&l->len);
    for (size_t i = 0; i < n; i++)
        l->fn[i](l->ctx[i]);
}

/* The bus's settings from the flags; false (with a message) when one is
 * malformed. */
static bool bus_settings(const struct options *o, struct bus_config *c)
{
    memset(c, 0, sizeof(*c));
    c->data_dir = o->data_dir;
    c->memory = strcmp(o->store, "memory") == 0;
    c->pg_url = is_postgres(o) ? o->pg_url : NULL;
    c->pg_schema = o->pg_schema;
    c->redis_url = o->redis_url;
    c->redis_stream = o->redis_stream;
    c->redis_maxlen = o->redis_maxlen;
    c->redis_required = o->redis_required;
    c->deny_private = o->deny_private;
    const char *bad = NULL;
    if (o->redis_url != NULL && strncmp(o->redis_url, "redis://", 8) != 0)
        bad = "--redis must look like redis://[:password@]host[:port][/db]";
    else if (!bus_schedule_parse(o->retry_schedule, c->retry_ms, &c->retry_len))
        bad = "--webhook-retry-schedule must be 1 to 16 delays such as 5s,5m,30m (ms, s, m, h, d)";
    else if (!bus_duration_parse(o->webhook_timeout, BUS_WEBHOOK_TIMEOUT_MS_MAX,
                                 &c->webhook_timeout_ms))
        bad = "--webhook-timeout must be a duration such as 15s, at most 5m";
    else if (!bus_duration_parse(o->disable_after, INT64_MAX / 2, &c->disable_after_ms))
        bad = "--webhook-disable-after must be a duration such as 5d";
    if (bad != NULL)
        fprintf(stderr, "wallex: %s\n", bad);
    return bad == NULL;
}

/* Everything a running server holds, in the order it starts. */
struct serve {
    struct es_store *store;
    struct es_projector *projector;
    struct commit_listeners listeners;
    struct es_writer *writer;
    struct bus *bus;
    struct wx_worker *admin;
    struct auth_service *auth; /* NULL with --auth off */
    struct wx_app app;
    struct http_route *routes;
    size_t routes_len;
    struct http_server *http;
    int exit_code; /* when it could not start: EXIT_STORE_UNREACHABLE or 1 */
};

/* Tokens: the table, loaded before the server listens, and on a first
 * start an admin token in DATA_DIR/admin.token. */
static int serve_auth(const struct options *o, struct serve *sv)
{
    struct auth_service_config ac = {
        .store = sv->store,
        .projector = sv->projector,
        .writer = sv->writer,
        .clock = &wx_clock_system,
        .user_rate_per_s = o->user_rate_per_s,
        .user_burst = o->user_burst,
    };
    int err = auth_service_start(&ac, &sv->auth);
    bool created = false;
    if (!err)
        err = auth_service_first_start(sv->auth, o->data_dir, &created);
    if (err) {
        fprintf(stderr, "wallex: cannot start authentication: %s\n", wx_strerror(err));
        return err;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", o->data_dir, AUTH_FIRST_TOKEN_FILE);
    if (!created && access(path, F_OK) == 0) /* `make run` says where it is, every time */
        wx_log_always("the first start's admin token is in %s", path);
    return 0;
}

static int serve_open(const struct options *o, struct bus_config *bc, struct serve *sv)
{
    int err = open_store(o, OPEN_CREATE, &sv->store);
    sv->exit_code = err ? open_store_exit_code(err) : 1;
    if (!err)
        err = open_projector(o, sv->store, false, false, &sv->projector);
    if (!err)
        err = es_projector_start(sv->projector);
    if (err)
        return err;
    listeners_add(&sv->listeners, notify_projector, sv->projector);
    struct es_writer_config wcfg = {
        .store = sv->store,
        .clock = &wx_clock_system,
        .idem_ttl_ms = o->idem_ttl_s * 1000,
        .snapshot_every = o->snapshot_every,
        .on_commit = notify_listeners,
        .on_commit_ctx = &sv->listeners,
    };
    if ((err = es_writer_start(&wcfg, &sv->writer)) != 0) {
        fprintf(stderr, "wallex: cannot start the writer: %s\n", wx_strerror(err));
        return err;
    }
    bc->store = sv->store;
    bc->projector = sv->projector;
    bc->writer = sv->writer;
    if ((err = bus_start(bc, &sv->bus)) != 0) {
        fprintf(stderr, "wallex: cannot start the event bus: %s\n", wx_strerror(err));
        return err;
    }
    listeners_add(&sv->listeners, bus_notify, sv->bus);
    if ((err = wx_worker_start("wx-admin", WX_ADMIN_QUEUE_MAX, &sv->admin)) != 0)
        return err;
    if (strcmp(o->auth, "on") == 0 && (err = serve_auth(o, sv)) != 0)
        return err;
    struct files_config fc = {
        .store = sv->store,
        .writer = sv->writer,
        .projector = sv->projector,
        .clock = &wx_clock_system,
        .retention_ms = o->trash_retention_ms,
    };
    if ((err = files_start(&fc)) != 0) {
        fprintf(stderr, "wallex: cannot start the files domain: %s\n", wx_strerror(err));
        return err;
    }
    sv->app = (struct wx_app){
        .store = sv->store,
        .writer = sv->writer,
        .projector = sv->projector,
        .admin = sv->admin,
        .bus = sv->bus,
        .auth = sv->auth,
    };
    snprintf(sv->app.default_currency, sizeof(sv->app.default_currency), "%s", o->currency);
    if ((err = wx_app_routes(ops_routes, ops_routes_len, &sv->routes, &sv->routes_len)) != 0)
        return err;
    struct http_server_config hcfg = {
        .listen = o->listen,
        .threads = (unsigned)o->threads,
        .connections_max = (unsigned)o->connections_max,
        .connection_timeout_s = (unsigned)o->connection_timeout_s,
        .head_timeout_ms = o->head_timeout_ms,
        .body_timeout_ms = o->body_timeout_ms,
        .send_timeout_ms = o->send_timeout_ms,
        .unsent_bytes_max = (size_t)o->unsent_bytes_max,
        .routes = sv->routes,
        .routes_len = sv->routes_len,
        .app = &sv->app,
        .writer = sv->writer,
        .read_side = &wx_read_side,
        .min_position_wait_ms = o->min_position_wait_ms,
        .authenticator = sv->auth ? auth_service_authenticator(sv->auth) : NULL,
    };
    return http_server_start(&hcfg, &sv->http);
}

/* Stops in the order that leaves nobody waiting and frees in the reverse
 * order of use: from the drain on no handler starts (keep-alive clients
 * that go on sending get 503 shutting_down and Connection: close, so
 * nothing reaches the writer or its statistics once it is freed); requests
 * in flight end, the delivery thread stops submitting, the writer
 * completes every queued command (so no connection stays parked), then
 * the HTTP threads stop and the rest is freed. */
static void serve_close(struct serve *sv)
{
    if (sv->http != NULL) {
        http_server_drain(sv->http);
        int64_t deadline = wx_monotonic_ms() + WX_SHUTDOWN_GRACE_MS;
        while (http_server_active(sv->http) > 0 && wx_monotonic_ms() < deadline)
            usleep(10 * 1000);
    }
    /* Admin jobs still queued run to their end (their requests wait for
     * them) while everything they use is still there. */
    wx_worker_stop(sv->admin);
    bus_stop(sv->bus);
    files_quiesce();                /* its sweeper submits to the writer */
    auth_service_quiesce(sv->auth); /* its refresher may submit to the writer */
    es_writer_stop(sv->writer);
    files_stop();
    http_server_stop(sv->http);
    auth_service_stop(sv->auth);
    free(sv->routes);
    bus_free(sv->bus);
    es_projector_close(sv->projector);
    es_store_close(sv->store);
}

/* 127.0.0.0/8, [::1] or localhost, with a port: only this machine can
 * reach it. */
static bool listen_is_loopback(const char *listen)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL)
        return false;
    size_t n = (size_t)(colon - listen);
    if ((n == 9 && strncmp(listen, "localhost", 9) == 0) ||
        (n == 5 && strncmp(listen, "[::1]", 5) == 0))
        return true;
    char host[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n >= sizeof(host))
        return false;
    memcpy(host, listen, n);
    host[n] = '\0';
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* Redis's protected mode, for money: no authentication only where nobody
 * else can connect, and loudly. False after a message. */
static bool auth_settings_ok(const struct options *o)
{
    bool loopback = listen_is_loopback(o->listen);
    if (strcmp(o->auth, "off") == 0) {
        if (!loopback) {
            fprintf(stderr,
                    "wallex serve: --auth off is refused on %s: without authentication anyone"
                    " who reaches that address can move money. Listen on loopback"
                    " (127.0.0.1:PORT, [::1]:PORT, localhost:PORT) or keep --auth on.\n",
                    o->listen);
            return false;
        }
        wx_logf(WX_LOG_WARN, "authentication is OFF (--auth off): every route is open to"
                             " whoever reaches %s; for throwaway local runs only", o->listen);
    } else if (!loopback) {
        wx_logf(WX_LOG_WARN, "listening on %s, beyond this machine: bearer tokens travel in"
                             " clear text unless a TLS proxy is in front", o->listen);
    }
    return true;
}

static int cmd_serve(int argc, char **argv)
{
    struct options o;
    int rc = command_start(argc, argv, usage_serve, &o, false);
    if (rc >= 0)
        return rc;
    struct bus_config bc;
    if (!bus_settings(&o, &bc))
        return 2;
    if (!auth_settings_ok(&o))
        return 2;

    /* Signals are taken synchronously by this thread with sigwait; every
     * thread started from here on inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(o.connections_max);
    /* The data directory holds the log on SQLite and the read side on both. */
    if (strcmp(o.store, "memory") != 0 && lock_data_dir(o.data_dir, "serve") < 0)
        return 1;

    struct serve sv = {0};
    int err = serve_open(&o, &bc, &sv);
    if (!err && is_postgres(&o))
        wx_log_always("wallex %s: serving http://%s (port %u), postgres store (schema %s),"
                      " read side in schema %s" READ_SCHEMA_SUFFIX,
                      WALLEX_VERSION, o.listen, http_server_port(sv.http), o.pg_schema,
                      o.pg_schema);
    else if (!err)
        wx_log_always("wallex %s: serving http://%s (port %u), %s store in %s", WALLEX_VERSION,
                      o.listen, http_server_port(sv.http), o.store, o.data_dir);
    if (!err) {
        int sig = 0;
        sigwait(&sigs, &sig);
        wx_logf(WX_LOG_INFO, "%s: finishing requests in flight", strsignal(sig));
    }
    serve_close(&sv);
    if (!err)
        wx_log_always("stopped");
    return err ? sv.exit_code : 0;
}

struct print_ctx {
    struct es_position last;
    int64_t printed;
};

static int print_event(void *arg, const struct es_event *ev)
{
    struct print_ctx *ctx = arg;
    struct wx_buf b;
    wx_buf_init(&b);
    es_event_json(&b, ev);
    wx_buf_addc(&b, '\n');
    int err = wx_buf_ok(&b) && fwrite(b.data, 1, b.len, stdout) == b.len ? 0 : WX_ERR_IO;
    wx_buf_free(&b);
    ctx->last = ev->position;
    ctx->printed++;
    return err;
}

static int cmd_events(int argc, char **argv)
{
    struct options o;
    int rc = command_start(argc, argv, usage_events, &o, true);
    if (rc >= 0)
        return rc;
    /* --from is a position token; pages follow the last position read, and
     * the count is of events printed, not of positions. */
    struct print_ctx ctx = {.last = es_position_start()};
    if (o.from != NULL && !es_position_parse(o.from, &ctx.last)) {
        fprintf(stderr, "wallex events: --from must be a position token (N or N.N)\n");
        return 2;
    }
    struct es_store *store;
    int err = open_store(&o, OPEN_READ_ONLY, &store);
    if (err)
        return open_store_exit_code(err);
    while (ctx.printed < o.limit && !err) {
        int64_t before = ctx.printed, left = o.limit - ctx.printed;
        struct es_position after = ctx.last;
        err = es_store_read_log(store, &after, left > WX_SCAN_BATCH_EVENTS_MAX
                                                   ? WX_SCAN_BATCH_EVENTS_MAX
                                                   : (size_t)left,
                                print_event, &ctx);
        if (ctx.printed == before)
            break;
    }
    es_store_close(store);
    if (err)
        fprintf(stderr, "wallex: reading the log: %s\n", wx_strerror(err));
    return err ? 1 : 0;
}

/* Steps the projector until every read model reached the head of the log,
 * showing progress on a terminal. */
static int catch_up(struct es_store *store, struct es_projector *p, const char *what)
{
    struct es_position head;
    int err = es_store_head(store, &head);
    bool tty = isatty(STDERR_FILENO);
    int64_t started = wx_monotonic_ms(), shown = 0;
    for (bool progress = true; progress && !err;) {
        err = es_projector_step(p, &progress);
        struct wx_arena arena;
        wx_arena_init(&arena);
        struct es_projection_status *list;
        size_t n;
        if (!es_projector_status(p, &arena, &list, &n)) {
            for (size_t i = 0; i < n && !err; i++) {
                if (list[i].last_error != NULL) {
                    fprintf(stderr, "wallex: %s: %s\n", list[i].name, list[i].last_error);
                    err = WX_ERR_IO;
                }
            }
            if (tty && n > 0 && wx_monotonic_ms() - shown > 200) {
                shown = wx_monotonic_ms();
                uint64_t at = list[n - 1].position.lo;
                fprintf(stderr, "\r%s: %llu / %llu events (%3llu%%)", what,
                        (unsigned long long)at, (unsigned long long)head.lo,
                        (unsigned long long)(head.lo ? at * 100 / head.lo : 100));
            }
        }
        wx_arena_release(&arena);
    }
    /* On a shared read side a running node may project some read models:
     * they are caught up when it has brought them to this head. */
    if (!err && (err = es_projector_await(p, &head, WX_TOOL_AWAIT_MS)) == WX_ERR_BUSY)
        fprintf(stderr, "\nwallex: read models projected by another node did not reach the log's"
                        " head within %d s\n", WX_TOOL_AWAIT_MS / 1000);
    int64_t ms = wx_monotonic_ms() - started;
    if (tty)
        fputc('\n', stderr);
    if (!err)
        fprintf(stderr, "%s: %llu events in %lld ms (%llu events/s)\n", what,
                (unsigned long long)head.lo, (long long)ms,
                (unsigned long long)(ms > 0 ? head.lo * 1000 / (uint64_t)ms : head.lo));
    return err;
}

static int cmd_offline(const char *cmd, int argc, char **argv)
{
    struct options o;
    int rc = command_start(argc, argv, usage_offline, &o, true);
    if (rc >= 0)
        return rc;
    struct es_store *store = NULL;
    struct es_projector *p = NULL;
    /* drift only reads; rebuild and verify write the read side. */
    if (strcmp(cmd, "drift") != 0 && lock_data_dir(o.data_dir, cmd) < 0)
        return 1;
    bool drift = strcmp(cmd, "drift") == 0;
    int err = open_store(&o, drift ? OPEN_READ_ONLY : OPEN_EXISTING, &store);
    if (err)
        return open_store_exit_code(err);
    if (open_projector(&o, store, true, drift, &p)) {
        es_store_close(store);
        return 1;
    }
    bool ok = true;
    struct wx_buf b;
    wx_buf_init(&b);
    if (strcmp(cmd, "rebuild") == 0) {
        err = es_projector_reset(p);
        if (!err)
            err = catch_up(store, p, "rebuild");
    } else if (strcmp(cmd, "drift") == 0) {
        size_t drifted = 0;
        err = wx_app_drift(p, &b, &drifted);
        ok = drifted == 0;
    } else {
        err = catch_up(store, p, "catch up");
        if (!err)
            err = wx_app_verify(p, &b, &ok);
    }
    if (!err && b.len > 0)
        printf("%s\n", b.data);
    if (err)
        fprintf(stderr, "wallex %s: %s\n", cmd, wx_strerror(err));
    wx_buf_free(&b);
    es_projector_close(p);
    es_store_close(store);
    return err ? 1 : ok ? 0 : 1;
}

static int cmd_backup(int argc, char **argv)
{
    struct options o;
    int rc = command_start(argc, argv, usage_backup, &o, false);
    if (rc >= 0)
        return rc;
    if (o.to == NULL) {
        fputs(usage_backup, stderr);
        return 2;
    }
    if (access(o.data_dir, F_OK) != 0) {
        fprintf(stderr, "wallex: no data directory at %s\n", o.data_dir);
        return 1;
    }
    if (is_postgres(&o)) {
        fprintf(stderr, "wallex backup: a PostgreSQL log is backed up with PostgreSQL's own"
                        " tools (pg_dump -n %s, or base backups); see docs/operations.md\n",
                o.pg_schema);
        return 2;
    }
    struct es_store *store;
    int err = open_store(&o, OPEN_READ_ONLY, &store);
    if (err)
        return open_store_exit_code(err);
    struct es_position head;
    err = es_store_head(store, &head);
    int64_t started = wx_monotonic_ms();
    if (!err)
        err = es_store_backup(store, o.to);
    es_store_close(store);
    if (err == WX_ERR_CONFLICT)
        fprintf(stderr, "wallex backup: %s/events.db exists; choose an empty directory\n", o.to);
    else if (err)
        fprintf(stderr, "wallex backup: %s\n", wx_strerror(err));
    else
        fprintf(stderr, "backup: %s/events.db, at least up to position %llu, in %lld ms\n", o.to,
                (unsigned long long)head.lo, (long long)(wx_monotonic_ms() - started));
    return err ? 1 : 0;
}

/* DATA_DIR/admin.token of a first start, when it is there and readable:
 * the bench on this machine finds the token `make run` wrote. */
static const char *admin_token_file(const char *data_dir, char *out, size_t out_bytes)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", data_dir, AUTH_FIRST_TOKEN_FILE);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    bool got = fgets(out, (int)out_bytes, f) != NULL;
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    return got && out[0] != '\0' ? out : NULL;
}

static int cmd_bench(int argc, char **argv)
{
    struct options o;
    int rc = command_start(argc, argv, usage_bench, &o, false);
    if (rc >= 0)
        return rc;
    struct bench_options b = {
        .wallets = o.wallets,
        .ops = o.ops,
        .connections = o.connections,
        .seed = (uint64_t)o.seed,
    };
    /* http://IPv4:port only: the bench talks to a server of ours. */
    char host[64];
    unsigned port = 0, t = 0, c = 0, d = 0;
    int n = 0;
    if (sscanf(o.url, "http://%63[0-9.]:%u%n", host, &port, &n) != 2 || o.url[n] != '\0' ||
        port == 0 || port > 65535) {
        fprintf(stderr, "wallex bench: --url must look like http://127.0.0.1:8080\n");
        return 2;
    }
    if (sscanf(o.mix, "%u,%u,%u%n", &t, &c, &d, &n) != 3 || o.mix[n] != '\0' ||
        t + c + d != 100) {
        fprintf(stderr, "wallex bench: --mix must be three percentages adding up to 100\n");
        return 2;
    }
    if (strcmp(o.workload, "wallets") != 0 && strcmp(o.workload, "orders") != 0) {
        fprintf(stderr, "wallex bench: --workload must be wallets or orders\n");
        return 2;
    }
    b.orders = strcmp(o.workload, "orders") == 0;
    char token[AUTH_TOKEN_BYTES + 2] = "";
    b.token = o.token != NULL ? o.token : admin_token_file(o.data_dir, token, sizeof(token));
    b.host = host;
    b.port = (uint16_t)port;
    b.mix_transfer = t;
    b.mix_credit = c;
    return wallex_bench(&b);
}

/* On a stopped server's data directory: the TokenIssued event goes into
 * the log through a writer of our own; the server's read model takes it
 * when it next starts, before it listens. */
static int token_create_offline(const struct options *o, enum auth_role role,
                                int64_t expires_at_ms)
{
    if (lock_data_dir(o->data_dir, "token") < 0)
        return 1;
    struct es_store *store;
    if (open_store(o, OPEN_CREATE, &store))
        return 1;
    struct es_writer *writer = NULL;
    struct es_writer_config wcfg = {.store = store, .clock = &wx_clock_system};
    char id[WX_UUID_STR_BYTES], token[AUTH_TOKEN_BYTES + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    int err = es_writer_start(&wcfg, &writer);
    if (!err)
        err = auth_token_new(wx_clock_now_ms(&wx_clock_system), id, token, hash);
    if (!err)
        err = token_issue_wait(writer, NULL, role, o->subject, expires_at_ms, "system:cli", id,
                               hash);
    es_writer_stop(writer);
    es_store_close(store);
    if (err) {
        fprintf(stderr, "wallex token: %s\n", wx_strerror(err));
        return 1;
    }
    fprintf(stderr, "token %s: %s for %s, in %s\n", id, auth_role_name(role), o->subject,
            o->data_dir);
    printf("%s\n", token);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_token(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_token, stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "create") != 0) {
        fputs(usage_token, stderr);
        return 2;
    }
    struct options o;
    int rc = command_start(argc - 1, argv + 1, usage_token, &o, false);
    if (rc >= 0)
        return rc;
    enum auth_role role;
    int64_t expires_at_ms = 0;
    const char *bad = NULL;
    if (!auth_role_parse(o.role, &role))
        bad = "--role must be admin, user or reader";
    else if (o.subject == NULL || !wx_id_ok(o.subject))
        bad = "--subject must be 1-64 characters of A-Z a-z 0-9 . _ : -";
    else if (o.expires != NULL && (!wx_time_parse(o.expires, &expires_at_ms) ||
                                   expires_at_ms <= wx_clock_now_ms(&wx_clock_system)))
        bad = "--expires must be an RFC 3339 time in the future";
    if (bad != NULL) {
        fprintf(stderr, "wallex token: %s\n", bad);
        return 2;
    }
    if (o.url_given)
        return token_create_url(o.url, o.token, o.role, o.subject, o.expires);
    return token_create_offline(&o, role, expires_at_ms);
}

/* A PostgreSQL connection string rather than a directory. */
static bool looks_like_pg(const char *spec)
{
    return strncmp(spec, "postgres://", 11) == 0 || strncmp(spec, "postgresql://", 13) == 0 ||
           strchr(spec, '=') != NULL;
}

static int cmd_migrate(int argc, char **argv)
{
    struct options o;
    int rc = command_start(argc, argv, usage_migrate, &o, false);
    if (rc >= 0)
        return rc;
    if (o.from == NULL || o.to == NULL) {
        fputs(usage_migrate, stderr);
        return 2;
    }
    bool from_pg = looks_like_pg(o.from), to_pg = looks_like_pg(o.to);
    if (from_pg == to_pg) {
        fprintf(stderr, "wallex migrate: one side must be a directory and the other a"
                        " PostgreSQL URL\n");
        return 2;
    }
    struct es_store_config from = {.data_dir = o.from, .url = o.from, .pg_schema = o.pg_schema};
    struct es_store_config to = {.data_dir = o.to, .url = o.to, .pg_schema = o.pg_schema};
    struct migrate_options m = {
        .from_backend = from_pg ? "postgres" : "sqlite",
        .from = &from,
        .to_backend = to_pg ? "postgres" : "sqlite",
        .to = &to,
    };
    return wallex_migrate(&m);
}

int main(int argc, char **argv)
{
    wx_fault_init(env_or("WALLEX_FAULT_DIR", NULL));
    int err = es_domains_register(domains, sizeof(domains) / sizeof(domains[0]));
    if (err) {
        fprintf(stderr, "wallex: the domains do not fit together: %s\n", wx_strerror(err));
        return 1;
    }
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("wallex %s\n", WALLEX_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "events") == 0)
        return cmd_events(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0)
        return cmd_backup(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return cmd_bench(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "rebuild") == 0 || strcmp(cmd, "drift") == 0 || strcmp(cmd, "verify") == 0)
        return cmd_offline(cmd, argc - 1, argv + 1);
    fprintf(stderr, "wallex: unknown command '%s'\n\n%s", cmd, usage_main);
    return 2;
}
