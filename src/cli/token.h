/* wallex token create through a running server: see token.c. */
#ifndef WALLEX_CLI_TOKEN_H
#define WALLEX_CLI_TOKEN_H

/* POST /admin/tokens {role, subject, expiresAt?} at url (http://IPv4:port
 * or http://localhost:port) with admin_token, and prints the new token
 * alone on one line of standard output. 0, or 1 after a message on
 * standard error. expires may be NULL. */
int token_create_url(const char *url, const char *admin_token, const char *role,
                     const char *subject, const char *expires);

#endif
