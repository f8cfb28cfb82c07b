/*
 * The wallet HTTP routes of API.md: handlers that validate requests into
 * wallet commands for the writer, and queries that fold the event log.
 */
#ifndef WALLEX_WALLET_ROUTES_H
#define WALLEX_WALLET_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

struct es_store;
struct es_writer;
struct es_projector;

/* The application context every wallet handler gets as req->app. */
struct wallet_service {
    struct es_store *store;
    struct es_writer *writer;
    struct es_projector *projector;
    char default_currency[4];
};

/* X-Min-Position for the routes' read_models: projector watches (give it
 * to the HTTP server with the wallet_service as its app). */
extern const struct http_read_side wallet_read_side;

void wallet_route_create(struct http_request *req);
void wallet_route_credit(struct http_request *req);
void wallet_route_debit(struct http_request *req);
void wallet_route_transfer(struct http_request *req);
void wallet_route_get(struct http_request *req);
void wallet_route_events(struct http_request *req);
void wallet_route_get_transfer(struct http_request *req);
void wallet_route_list(struct http_request *req);
void wallet_route_ledger(struct http_request *req);
void wallet_route_healthz(struct http_request *req);
void wallet_route_readyz(struct http_request *req);
void wallet_route_admin_projections(struct http_request *req);
void wallet_route_admin_rebuild_projection(struct http_request *req);
void wallet_route_admin_rebuild_wallet(struct http_request *req);
void wallet_route_admin_drift(struct http_request *req);
void wallet_route_metrics(struct http_request *req);
void wallet_route_openapi(struct http_request *req);

extern const struct http_route wallet_routes[];
extern const size_t wallet_routes_len;

#endif
