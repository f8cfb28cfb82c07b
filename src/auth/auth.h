/*
 * Identity and access (DESIGN.md §14, API.md "Identity (tokens)"): who
 * calls, in which role, and what the other modules need of it. Callers
 * present opaque bearer tokens "wxt.<tokenId>.<secret>"; tokens are issued
 * and revoked as events of their own small domain (auth/token.h), kept in
 * memory for the check of every request (auth/table.h) and checked by the
 * HTTP server's authenticator (auth/service.h).
 *
 * This header is what domains use: the roles, the principal a request
 * carries (req->principal, es_command.principal) and the ownership rule.
 * Ownership itself is the domains': they know who owns a wallet or an
 * order; auth only says who is asking.
 */
#ifndef WALLEX_AUTH_AUTH_H
#define WALLEX_AUTH_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/uuid.h"
#include "es/domain.h"
#include "es/outcome.h"
#include "limits.h"

/* ---- the auth domain's bounds ---- */

/* Random bytes of a token's secret: 256 bits (the issue asks for at least
 * 128), 43 characters of base64url without padding. */
#define AUTH_SECRET_BYTES 32
#define AUTH_SECRET_TEXT_BYTES 43
/* SHA-256 of the secret: all that is ever stored. */
#define AUTH_HASH_BYTES 32
#define AUTH_TOKEN_PREFIX "wxt."
/* "wxt." + tokenId (a UUIDv7, 36) + "." + secret (43): 84 characters. */
#define AUTH_TOKEN_BYTES (sizeof(AUTH_TOKEN_PREFIX) - 1 + (WX_UUID_STR_BYTES - 1) + 1 + \
                          AUTH_SECRET_TEXT_BYTES)

/* ---- outcomes (es/outcome.h), append only ---- */

#define AUTH_OUTCOME_MAP(XX, P)                                                                   \
    XX(P, unauthorized, 401, "A valid bearer token is required")                                  \
    XX(P, forbidden, 403, "This token does not allow this")                                       \
    XX(P, rate_limited, 429, "Too many requests for this token")                                  \
    XX(P, token_not_found, 404, "Token not found")                                                \
    XX(P, too_many_tokens, 422, "No more tokens can be issued")

enum auth_outcome_id { AUTH_OUTCOME_MAP(ES_OUTCOME_ID, AUTH) AUTH_OUTCOMES_LEN };
extern const struct es_outcome auth_outcomes[];

#define AUTH_unauthorized (&auth_outcomes[AUTH_ID_unauthorized])
#define AUTH_forbidden (&auth_outcomes[AUTH_ID_forbidden])
#define AUTH_rate_limited (&auth_outcomes[AUTH_ID_rate_limited])
#define AUTH_token_not_found (&auth_outcomes[AUTH_ID_token_not_found])
#define AUTH_too_many_tokens (&auth_outcomes[AUTH_ID_too_many_tokens])

/* The token domain, for main's list (auth/domain.c). */
extern const struct es_domain auth_domain;

/* ---- roles and principals ---- */

/* API.md: admin does everything; user works on what it owns; reader reads
 * everything an admin sees and changes nothing. */
enum auth_role {
    AUTH_ROLE_ADMIN,
    AUTH_ROLE_USER,
    AUTH_ROLE_READER,
};
#define AUTH_ROLES 3

/* "admin", "user", "reader". */
const char *auth_role_name(enum auth_role role);
bool auth_role_parse(const char *name, enum auth_role *out);

/* The caller of one request, as its token says: req->principal (in the
 * request's arena), and es_command.principal for handlers on the writer
 * thread. */
struct auth_principal {
    enum auth_role role;
    char subject[WX_ID_BYTES_MAX + 1];
    char token_id[WX_UUID_STR_BYTES];
};

/* Whether the caller sees every resource, whoever owns it: an admin or a
 * reader, or anyone when authentication is off (no principal). */
bool auth_sees_all(const struct auth_principal *p);
/* Whether the caller may see (and, by its role, act on) a resource that
 * owner_id owns. */
bool auth_owns(const struct auth_principal *p, const char *owner_id);

/* ---- token text (auth/token.c) ---- */

/* A new token: a UUIDv7 id, a secret from getrandom(2), the token text
 * (AUTH_TOKEN_BYTES + 1) and the secret's hash. WX_ERR_IO without
 * randomness. */
int auth_token_new(int64_t now_ms, char token_id[WX_UUID_STR_BYTES],
                   char token[AUTH_TOKEN_BYTES + 1], unsigned char hash[AUTH_HASH_BYTES]);
/* Splits a token's text into its id and the hash of its secret; false for
 * anything that is not exactly such a token. Never reads past text_len. */
bool auth_token_parse(const char *text, size_t text_len, char token_id[WX_UUID_STR_BYTES],
                      unsigned char hash[AUTH_HASH_BYTES]);
/* Lower-case hex of a hash (2 * AUTH_HASH_BYTES + 1), and back. */
void auth_hash_hex(const unsigned char hash[AUTH_HASH_BYTES], char out[2 * AUTH_HASH_BYTES + 1]);
bool auth_hash_unhex(const char *hex, unsigned char out[AUTH_HASH_BYTES]);

#endif
