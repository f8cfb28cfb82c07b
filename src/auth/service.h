/*
 * Authentication on a running node: the token table, kept up to date, and
 * the HTTP server's authenticator over it.
 *
 * At start the table is loaded from the "tokens" read model, once that has
 * caught up with the log as it was (waiting up to AUTH_START_WAIT_MS;
 * until then every authenticated request is 503 projection_lagging, since
 * a token revoked in the part not yet read would otherwise pass). Then a
 * refresher thread reads the rows changed since its last look every
 * AUTH_REFRESH_MS: a token issued or revoked on another node sharing the
 * store is known here within that plus the read model's lag. A change this
 * node commits is in the table before its client hears back (the writer's
 * committed hook, auth/commands.c).
 *
 * Ownership: the service owns its table and thread; it borrows the store,
 * projector and writer, which must outlive it.
 */
#ifndef WALLEX_AUTH_SERVICE_H
#define WALLEX_AUTH_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/table.h"
#include "base/buf.h"
#include "base/clock.h"
#include "http/http.h"

/* How often every node reads the tokens read model for changes. API.md
 * promises that every node refuses a revoked token within 1 s: half of it
 * here, the rest for the read model's lag (milliseconds, measured in
 * docs/architecture.md). */
#define AUTH_REFRESH_MS 500
/* How long serve waits at start for the tokens read model to reach the
 * head of the log before it listens anyway (authenticated requests are
 * then 503 until it does). */
#define AUTH_START_WAIT_MS 10000
/* The subject of the admin token of a first start. */
#define AUTH_FIRST_SUBJECT "admin"
/* The file a first start writes it to, in the data directory (mode 0600). */
#define AUTH_FIRST_TOKEN_FILE "admin.token"

struct es_store;
struct es_projector;
struct es_writer;
struct auth_service;

struct auth_service_config {
    struct es_store *store;
    struct es_projector *projector;
    struct es_writer *writer;
    const struct wx_clock *clock;
    int64_t user_rate_per_s; /* 0: user tokens are not limited */
    int64_t user_burst;
    int64_t refresh_ms;    /* 0: AUTH_REFRESH_MS */
    int64_t start_wait_ms; /* 0: AUTH_START_WAIT_MS */
};

/* Loads the table (waiting for the read model as above) and starts the
 * refresher. */
int auth_service_start(const struct auth_service_config *config, struct auth_service **out);
/* Stops the refresher, which uses the writer (a deferred first start): call
 * before the writer stops. The table keeps answering the HTTP threads.
 * Accepts NULL; twice is once. */
void auth_service_quiesce(struct auth_service *a);
/* Quiesces and frees everything. Accepts NULL. Call after the HTTP server
 * has stopped. */
void auth_service_stop(struct auth_service *a);

struct auth_table *auth_service_table(struct auth_service *a);
/* The table has caught up with the log as it was at start. */
bool auth_service_ready(struct auth_service *a);
/* For http_server_config.authenticator; lives as long as the service. */
const struct http_authenticator *auth_service_authenticator(struct auth_service *a);

/* The first start: when no token has ever been issued, issues an admin
 * token, writes it to data_dir/admin.token (mode 0600, written before the
 * token exists, removed if it could not be issued) and says where in the
 * log, never the token itself. *created_out says whether it did. Before
 * the table is ready nobody knows whether a token exists: the refresher
 * then does it once the table is ready (a warning says so). */
int auth_service_first_start(struct auth_service *a, const char *data_dir, bool *created_out);

/* The service's gauges and counters in the Prometheus text format. */
void auth_service_metrics(struct auth_service *a, struct wx_buf *b);

#endif
