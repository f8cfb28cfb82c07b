/*
 * The id grammar of API.md, shared by every domain and by the HTTP layer:
 * walletId, orderId, productId, ownerId, subjects... are 1-64 characters
 * of [A-Za-z0-9._:-].
 */
#ifndef WALLEX_BASE_ID_H
#define WALLEX_BASE_ID_H

#include <stdbool.h>

bool wx_id_ok(const char *s);

#endif
