/*
 * The wallet HTTP routes of API.md and the writer-thread handler they
 * submit (wallet/commands.c). Handlers get a struct wx_app as req->app.
 */
#ifndef WALLEX_WALLET_ROUTES_H
#define WALLEX_WALLET_ROUTES_H

#include <stddef.h>

#include "es/writer.h"
#include "http/http.h"

/* On the writer thread: runs a struct wallet_command (the payload). */
void wallet_run_command(struct es_decide_ctx *ctx, struct es_command *cmd);

void wallet_route_create(struct http_request *req);
void wallet_route_credit(struct http_request *req);
void wallet_route_debit(struct http_request *req);
void wallet_route_transfer(struct http_request *req);
void wallet_route_get(struct http_request *req);
void wallet_route_events(struct http_request *req);
void wallet_route_get_transfer(struct http_request *req);
void wallet_route_list(struct http_request *req);
void wallet_route_ledger(struct http_request *req);
void wallet_route_admin_rebuild(struct http_request *req);

/* Ends with a {NULL} entry (es_domain.routes). */
extern const struct http_route wallet_routes[];

#endif
