/*
 * The wallet HTTP routes of API.md: handlers that validate requests into
 * wallet commands for the writer, and queries that fold the event log.
 */
#ifndef WALLEX_WALLET_ROUTES_H
#define WALLEX_WALLET_ROUTES_H

#include <stddef.h>

#include "http/http.h"

struct es_store;
struct es_writer;

/* The application context every wallet handler gets as req->app. */
struct wallet_service {
    struct es_store *store;
    struct es_writer *writer;
    char default_currency[4];
};

void wallet_route_create(struct http_request *req);
void wallet_route_credit(struct http_request *req);
void wallet_route_debit(struct http_request *req);
void wallet_route_transfer(struct http_request *req);
void wallet_route_get(struct http_request *req);
void wallet_route_events(struct http_request *req);
void wallet_route_get_transfer(struct http_request *req);
void wallet_route_healthz(struct http_request *req);

extern const struct http_route wallet_routes[];
extern const size_t wallet_routes_len;

#endif
