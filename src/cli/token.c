/*
 * wallex token create --url: one blocking HTTP/1.1 request to a running
 * server of ours (plain http on this machine or a private network; put TLS
 * in front of anything farther), read to the end of the connection.
 */
#include "cli/token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"

/* The answer to one token request: a few hundred bytes. */
#define TOKEN_ANSWER_BYTES_MAX (64 * 1024)
/* The server answers a command after its fsync: milliseconds. */
#define TOKEN_TIMEOUT_S 30

static int connect_url(const char *url)
{
    char host[64];
    unsigned port = 0;
    int n = 0;
    if (sscanf(url, "http://%63[^:/]:%u%n", host, &port, &n) != 2 ||
        (url[n] != '\0' && strcmp(url + n, "/") != 0) || port == 0 || port > 65535) {
        fprintf(stderr, "wallex token: --url must look like http://127.0.0.1:8080\n");
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &a.sin_addr) !=
        1) {
        fprintf(stderr, "wallex token: --url needs an IPv4 address or localhost\n");
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = TOKEN_TIMEOUT_S};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fprintf(stderr, "wallex token: cannot connect to %s: %s\n", url, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Sends the request and reads the whole answer into out. */
static int exchange(int fd, const struct wx_buf *request, struct wx_buf *out)
{
    size_t sent = 0;
    while (sent < request->len) {
        ssize_t n = write(fd, request->data + sent, request->len - sent);
        if (n <= 0)
            return -1;
        sent += (size_t)n;
    }
    char chunk[4096];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n == 0)
            return 0;
        if (n < 0 || out->len + (size_t)n > TOKEN_ANSWER_BYTES_MAX)
            return -1;
        wx_buf_add(out, chunk, (size_t)n);
    }
}

/* The token of a 201's JSON body, printed; else the problem, explained. */
static int report(const struct wx_buf *answer)
{
    int status = 0;
    const char *body = answer->data ? strstr(answer->data, "\r\n\r\n") : NULL;
    if (body == NULL || sscanf(answer->data, "HTTP/1.1 %d", &status) != 1) {
        fprintf(stderr, "wallex token: the server's answer did not read\n");
        return 1;
    }
    body += 4;
    struct json_object *o = json_tokener_parse(body), *v = NULL;
    int rc = 1;
    if (status == 201 && json_object_object_get_ex(o, "token", &v) &&
        json_object_is_type(v, json_type_string)) {
        printf("%s\n", json_object_get_string(v));
        rc = fflush(stdout) == 0 ? 0 : 1;
    } else if (json_object_object_get_ex(o, "detail", &v)) {
        fprintf(stderr, "wallex token: %d: %s%s\n", status, json_object_get_string(v),
                status == 401 ? " (WALLEX_TOKEN must hold an admin token)" : "");
    } else {
        fprintf(stderr, "wallex token: the server answered %d\n", status);
    }
    json_object_put(o);
    return rc;
}

int token_create_url(const char *url, const char *admin_token, const char *role,
                     const char *subject, const char *expires)
{
    if (admin_token == NULL) {
        fprintf(stderr, "wallex token: --url needs an admin token in WALLEX_TOKEN (or --token)\n");
        return 1;
    }
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "role", json_object_new_string(role));
    json_object_object_add(o, "subject", json_object_new_string(subject));
    if (expires != NULL)
        json_object_object_add(o, "expiresAt", json_object_new_string(expires));
    const char *json = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    struct wx_buf request, answer;
    wx_buf_init(&request);
    wx_buf_init(&answer);
    wx_buf_printf(&request,
                  "POST /admin/tokens HTTP/1.1\r\nHost: wallex\r\nConnection: close\r\n"
                  "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n\r\n%s",
                  admin_token, strlen(json), json);
    json_object_put(o);
    int rc = 1;
    int fd = wx_buf_ok(&request) ? connect_url(url) : -1;
    if (fd >= 0) {
        if (exchange(fd, &request, &answer) != 0 || !wx_buf_ok(&answer))
            fprintf(stderr, "wallex token: no complete answer from %s\n", url);
        else
            rc = report(&answer);
        close(fd);
    }
    wx_buf_free(&request);
    wx_buf_free(&answer);
    return rc;
}
