/*
 * POST /subscriptions bodies into typed commands: every rule that needs no
 * state. The URL is read by libcurl's own URL parser, the one that will
 * use it, so what passes here is what gets requested.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "bus/subscription.h"
#include "http/json.h"

bool bus_address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
        return (a >> 24) == 0 || (a >> 24) == 10 || (a >> 24) == 127 ||  /* this, private, loop */
               (a >> 20) == (172u << 4 | 1) ||                        /* 172.16/12 */
               (a >> 16) == (192u << 8 | 168) ||                      /* 192.168/16 */
               (a >> 16) == (169u << 8 | 254) ||                      /* link-local */
               (a >> 22) == (100u << 2 | 1) ||                        /* 100.64/10, CGNAT */
               a == 0xffffffffu;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, &a->s6_addr[12], 4);
            return bus_address_private((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LOOPBACK(a) ||
               IN6_IS_ADDR_LINKLOCAL(a) || (a->s6_addr[0] & 0xfe) == 0xfc; /* fc00::/7 */
    }
    return true; /* anything else is not on the Internet */
}

/* A host that names this machine or a private network. */
static bool host_private(const char *host)
{
    size_t len = strlen(host);
    if (strcasecmp(host, "localhost") == 0 ||
        (len > 10 && strcasecmp(host + len - 10, ".localhost") == 0))
        return true;
    char bare[64];
    /* curl gives IPv6 hosts in brackets. */
    if (host[0] == '[' && len >= 2 && len - 2 < sizeof(bare)) {
        memcpy(bare, host + 1, len - 2);
        bare[len - 2] = '\0';
        host = bare;
    }
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    if (inet_pton(AF_INET, host, &v4.sin_addr) == 1)
        return bus_address_private((const struct sockaddr *)&v4);
    if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1)
        return bus_address_private((const struct sockaddr *)&v6);
    return false; /* a name: its addresses are checked when connecting */
}

static const char *check_url(const char *url, bool deny_private)
{
    CURLU *u = curl_url();
    if (u == NULL)
        return "out of memory";
    char *scheme = NULL, *host = NULL;
    const char *detail = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        detail = "url must be an absolute http:// or https:// URL";
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        detail = "url must be an absolute http:// or https:// URL";
    else if (deny_private && host_private(host))
        detail = "url points at a loopback or private address, which this server refuses";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return detail;
}

/* eventTypes: known event type names or "*", each once, re-encoded. */
static const char *check_types(struct json_object *obj, struct wx_arena *arena, const char **out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(obj, "eventTypes", &v) || !json_object_is_type(v, json_type_array))
        return "eventTypes is required: an array of event type names, or [\"*\"] for all";
    size_t n = json_object_array_length(v);
    if (n == 0 || n > BUS_EVENT_TYPES_MAX)
        return "eventTypes must name 1 to 32 event types";
    struct wx_buf b;
    wx_buf_init(&b);
    wx_buf_addc(&b, '[');
    const char *detail = NULL;
    for (size_t i = 0; i < n && detail == NULL; i++) {
        struct json_object *t = json_object_array_get_idx(v, i);
        const char *name = json_object_is_type(t, json_type_string) ? json_object_get_string(t) : NULL;
        if (name == NULL || (strcmp(name, "*") != 0 && es_event_type_find(name) == NULL))
            detail = "eventTypes holds a name that is not an event type of this server";
        for (size_t k = 0; k < i && detail == NULL; k++)
            if (strcmp(name, json_object_get_string(json_object_array_get_idx(v, k))) == 0)
                detail = "eventTypes names an event type twice";
        if (detail == NULL) {
            if (i > 0)
                wx_buf_addc(&b, ',');
            wx_buf_json_str(&b, name);
        }
    }
    wx_buf_addc(&b, ']');
    if (detail == NULL && !wx_buf_ok(&b))
        detail = "out of memory";
    if (detail == NULL && (*out = wx_arena_strndup(arena, b.data, b.len)) == NULL)
        detail = "out of memory";
    wx_buf_free(&b);
    return detail;
}

bool subscription_parse_create(const char *body, size_t len, bool deny_private,
                               struct wx_arena *arena, struct subscription_command *c,
                               const char **detail)
{
    static const char *const keys[] = {"url", "eventTypes", "description", NULL};
    struct json_object *obj;
    if (!http_json_parse_object(body, len, &obj, detail))
        return false;
    const char *bad_key;
    memset(c, 0, sizeof(*c));
    c->kind = SUBSCRIPTION_CMD_CREATE;
    *detail = NULL;
    if (!http_json_only_keys(obj, keys, &bad_key)) {
        char *msg = wx_arena_alloc(arena, 128);
        if (msg != NULL)
            snprintf(msg, 128, "unknown field '%.64s'", bad_key);
        *detail = msg ? msg : "unknown field";
    } else if (!http_json_string(obj, "url", HTTP_FIELD_REQUIRED, BUS_URL_BYTES_MAX, arena,
                                 &c->url)) {
        *detail = "url is required: an http:// or https:// URL of at most 2048 bytes";
    } else if ((*detail = check_url(c->url, deny_private)) != NULL) {
    } else if ((*detail = check_types(obj, arena, &c->event_types)) != NULL) {
    } else if (!http_json_string(obj, "description", HTTP_FIELD_OPTIONAL,
                                 WX_DESCRIPTION_BYTES_MAX, arena, &c->description)) {
        *detail = "description must be a string of at most 1024 bytes";
    }
    json_object_put(obj);
    return *detail == NULL;
}
