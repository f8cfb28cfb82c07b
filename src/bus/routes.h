/*
 * The event bus's HTTP routes (API.md, Event bus): subscriptions (commands
 * through the writer, reads from the "subscriptions" read model), the
 * relays' status and the dead letters. Handlers get a struct wx_app whose
 * `bus` is the running bus. Admin only once tokens exist; until then, like
 * every admin route, open to whoever reaches the listen address.
 */
#ifndef WALLEX_BUS_ROUTES_H
#define WALLEX_BUS_ROUTES_H

#include "http/http.h"

void bus_route_create(struct http_request *req);
void bus_route_list(struct http_request *req);
void bus_route_get(struct http_request *req);
void bus_route_pause(struct http_request *req);
void bus_route_resume(struct http_request *req);
void bus_route_delete(struct http_request *req);
void bus_route_replay_from(struct http_request *req);
void bus_route_relays(struct http_request *req);
void bus_route_dead_letters(struct http_request *req);
void bus_route_replay_dead_letter(struct http_request *req);

/* Ends with a {NULL} entry (es_domain.routes). */
extern const struct http_route bus_routes[];

#endif
