/*
 * Operations routes (health, readiness, metrics, OpenAPI, admin, the
 * dashboard and its live feed): one module whatever domains are composed;
 * handlers get a struct wx_app.
 */
#ifndef WALLEX_OPS_OPS_H
#define WALLEX_OPS_OPS_H

#include <stddef.h>

#include "http/http.h"

void ops_route_healthz(struct http_request *req);
void ops_route_readyz(struct http_request *req);
void ops_route_metrics(struct http_request *req);
void ops_route_openapi(struct http_request *req);
void ops_route_admin_projections(struct http_request *req);
void ops_route_admin_rebuild_projection(struct http_request *req);
void ops_route_admin_drift(struct http_request *req);
/* stats.c: the dashboard's live feed. */
void ops_route_admin_stats(struct http_request *req);
/* ui.c: the dashboard's page and files. */
void ops_route_ui(struct http_request *req);
void ops_route_ui_asset(struct http_request *req);

extern const struct http_route ops_routes[];
extern const size_t ops_routes_len;

#endif
