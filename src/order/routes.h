/*
 * The order HTTP routes of API.md and the writer-thread handler they
 * submit (order/commands.c). Handlers get a struct wx_app as req->app.
 */
#ifndef WALLEX_ORDER_ROUTES_H
#define WALLEX_ORDER_ROUTES_H

#include "es/writer.h"
#include "http/http.h"

/* On the writer thread: runs a struct order_command (the payload). */
void order_run_command(struct es_decide_ctx *ctx, struct es_command *cmd);

/* Ends with a {NULL} entry (es_domain.routes). */
extern const struct http_route order_routes[];

#endif
